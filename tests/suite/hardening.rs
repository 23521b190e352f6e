//! What the tool is given cannot hurt the machine, leak a key or widen what it changes: hostile
//! files, flags and paths, run through the real binary. No DNS server is needed: every case
//! here must fail (or succeed) before any query is sent.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::common::Run;

const SECRET: &str = "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0IQ==";
const KEYGEN: &str = "key \"ddns-key\" {\n\talgorithm hmac-sha256;\n\tsecret \"c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0IQ==\";\n};\n";
const LAB_SCAN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/lab-scan.json");

fn is_root() -> bool {
    vlmcs_audit::support::fsio::current_uid() == 0
}

fn run_env(args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut command = Command::new(env!("CARGO_BIN_EXE_vlmcs-audit"));
    command
        .args(args)
        .env_remove("RUST_LOG")
        .env_remove("VLMCS_TSIG_KEY");
    for (k, v) in env {
        command.env(k, v);
    }
    let output = command.output().expect("run vlmcs-audit");
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

fn run(args: &[&str]) -> Run {
    run_env(args, &[])
}

fn write(dir: &Path, name: &str, text: &[u8], mode: u32) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    path
}

fn undo_text(extra: &str) -> String {
    format!(
        "server 127.0.0.1 9\nzone corp.example.com.\n{extra}update add _vlmcs._tcp.corp.example.com. 300 IN SRV 0 0 1688 kms.corp.example.com.\nsend\n"
    )
}

/// Arguments and environment of one run.
type Case = (Vec<String>, Vec<(&'static str, String)>);

#[test]
fn no_error_path_ever_prints_key_material() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let undo = write(d, "undo.txt", undo_text("").as_bytes(), 0o600);
    let undo = undo.to_str().unwrap();
    let keyed_undo = write(
        d,
        "keyed-undo.txt",
        undo_text(&format!("key hmac-sha256:ddns-key {SECRET}\n")).as_bytes(),
        0o600,
    );
    let algorithm_secret = write(
        d,
        "alg.key",
        KEYGEN.replace("hmac-sha256", SECRET).as_bytes(),
        0o600,
    );
    let name_secret = write(
        d,
        "name.key",
        KEYGEN.replace("ddns-key", SECRET).as_bytes(),
        0o600,
    );
    let bad_base64 = write(
        d,
        "b64.key",
        KEYGEN.replace(SECRET, &format!("{SECRET}*!")).as_bytes(),
        0o600,
    );
    let open_to_all = write(d, "open.key", KEYGEN.as_bytes(), 0o644);
    let not_utf8 = write(
        d,
        "latin1.key",
        &[KEYGEN.as_bytes(), b"\xe9\xff"].concat(),
        0o600,
    );
    let cases: Vec<Case> = vec![
        // The secret in the name's field of the environment form.
        (
            vec!["restore".into(), undo.into()],
            vec![("VLMCS_TSIG_KEY", format!("{SECRET}:ddns-key"))],
        ),
        (
            vec!["restore".into(), undo.into()],
            vec![("VLMCS_TSIG_KEY", format!("{SECRET}:ddns-key:{SECRET}"))],
        ),
        (
            vec!["restore".into(), undo.into()],
            vec![("VLMCS_TSIG_KEY", format!("hmac-sha256:ddns-key:{SECRET}#"))],
        ),
        (
            vec!["restore".into(), undo.into()],
            vec![("VLMCS_TSIG_KEY", KEYGEN.replace("hmac-sha256", SECRET))],
        ),
        (
            vec![
                "restore".into(),
                keyed_undo.display().to_string(),
                "--no-auth".into(),
            ],
            vec![],
        ),
    ];
    let mut cases = cases;
    for key in [
        &algorithm_secret,
        &name_secret,
        &bad_base64,
        &open_to_all,
        &not_utf8,
    ] {
        cases.push((
            vec![
                "restore".into(),
                undo.into(),
                "--tsig-key".into(),
                key.display().to_string(),
            ],
            vec![],
        ));
        cases.push((
            vec![
                "clean".into(),
                "corp.example.com".into(),
                "--server".into(),
                "127.0.0.1:9".into(),
                "--tsig-key".into(),
                key.display().to_string(),
                "-vv".into(),
            ],
            vec![],
        ));
    }
    for (args, env) in &cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let out = run_env(&args, &env);
        assert_eq!(
            out.code, 3,
            "{args:?} {env:?}: {}{}",
            out.stdout, out.stderr
        );
        assert!(!out.stderr.is_empty(), "{args:?}: no error message");
        for text in [&out.stdout, &out.stderr] {
            // The base64 text, and any long piece of it.
            assert!(
                !text.contains(&SECRET[..12]) && !text.contains(&SECRET[20..32]),
                "{args:?} {env:?} printed key material:\n{text}"
            );
        }
    }
}

/// A `tsig-keygen` secret (32 bytes) copied without its `=`: no `+` or `/` in it either, so
/// nothing but its length tells it from a key name.
const UNPADDED: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY";

#[test]
fn a_key_written_the_wrong_way_round_is_refused_and_never_shown() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let undo = write(d, "undo.txt", undo_text("").as_bytes(), 0o600);
    let undo = undo.to_str().unwrap();
    let as_value = format!("hmac-sha256:ddns-key:{UNPADDED}");
    let config = write(
        d,
        "audit.yaml",
        format!("domains: [corp.example.com]\nclean:\n  tsig_key: \"{as_value}\"\n").as_bytes(),
        0o600,
    );
    let clean = |extra: &[&str]| -> Vec<String> {
        let mut args: Vec<String> = [
            "clean",
            "corp.example.com",
            "--server",
            "127.0.0.1:9",
            "-vv",
        ]
        .map(String::from)
        .to_vec();
        args.extend(extra.iter().map(|s| s.to_string()));
        args
    };
    let restore = |extra: &[&str]| -> Vec<String> {
        let mut args = vec!["restore".to_string(), undo.to_string()];
        args.extend(extra.iter().map(|s| s.to_string()));
        args
    };
    let swapped = format!("hmac-sha256:{UNPADDED}:ddns");
    // Each case with what its error must say.
    let cases: Vec<(Case, &str)> = vec![
        // Fields swapped in the environment form (the secret where the name goes).
        (
            (clean(&[]), vec![("VLMCS_TSIG_KEY", swapped.clone())]),
            "swapped",
        ),
        (
            (restore(&[]), vec![("VLMCS_TSIG_KEY", swapped.clone())]),
            "swapped",
        ),
        (
            (
                restore(&[]),
                vec![("VLMCS_TSIG_KEY", format!("{UNPADDED}:tsig"))],
            ),
            "swapped",
        ),
        // The environment form given where a key file's path goes: flag and config.
        (
            (clean(&["--tsig-key", &as_value]), vec![]),
            "--tsig-key takes the path",
        ),
        (
            (restore(&["--tsig-key", &as_value]), vec![]),
            "--tsig-key takes the path",
        ),
        (
            (clean(&["--config", config.to_str().unwrap()]), vec![]),
            "the config's `clean: tsig_key:` takes the path",
        ),
    ];
    for ((args, env), expected) in &cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let out = run_env(&args, &env);
        assert_ne!(out.code, 0, "{args:?} {env:?}: accepted");
        assert!(
            out.stderr.contains(expected),
            "{args:?} {env:?}: {}",
            out.stderr
        );
        for text in [&out.stdout, &out.stderr] {
            assert!(
                !text.contains(&UNPADDED[..10]) && !text.contains(&UNPADDED[20..30]),
                "{args:?} {env:?} printed key material:\n{text}"
            );
        }
    }
}

#[test]
fn a_key_file_or_keytab_of_another_user_or_not_a_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let undo = write(dir.path(), "undo.txt", undo_text("").as_bytes(), 0o600);
    let undo = undo.to_str().unwrap();
    let fifo = dir.path().join("key.fifo");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let started = Instant::now();
    let out = run(&["restore", undo, "--tsig-key", fifo.to_str().unwrap()]);
    assert_eq!(out.code, 3);
    assert!(out.stderr.contains("FIFO"), "{}", out.stderr);
    assert!(started.elapsed() < Duration::from_secs(5), "a FIFO hangs");
    let out = run(&["restore", undo, "--tsig-key", "/dev/zero"]);
    assert!(out.stderr.contains("character device"), "{}", out.stderr);
    if !is_root() {
        eprintln!("skipped: the other-owner case needs root (chown)");
        return;
    }
    let key = write(dir.path(), "other.key", KEYGEN.as_bytes(), 0o600);
    std::os::unix::fs::chown(&key, Some(65534), Some(65534)).unwrap();
    let out = run(&["restore", undo, "--tsig-key", key.to_str().unwrap()]);
    assert_eq!(out.code, 3);
    assert!(
        out.stderr.contains("belongs to another user (uid 65534"),
        "{}",
        out.stderr
    );
    if cfg!(feature = "gss") {
        let keytab = write(dir.path(), "svc.keytab", b"\x05\x02", 0o600);
        std::os::unix::fs::chown(&keytab, Some(65534), Some(65534)).unwrap();
        let out = run(&[
            "restore",
            undo,
            "--gss",
            "--keytab",
            keytab.to_str().unwrap(),
        ]);
        assert_eq!(out.code, 3);
        assert!(
            out.stderr.contains("--keytab") && out.stderr.contains("another user"),
            "{}",
            out.stderr
        );
        let loose = write(dir.path(), "loose.keytab", b"\x05\x02", 0o640);
        let out = run(&[
            "restore",
            undo,
            "--gss",
            "--keytab",
            loose.to_str().unwrap(),
        ]);
        assert!(out.stderr.contains("mode 0640"), "{}", out.stderr);
    }
}

#[test]
fn output_goes_where_meant_devices_and_fifos_are_written_not_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let report = |output: &Path| {
        run(&[
            "report",
            "--from",
            LAB_SCAN,
            "--format",
            "markdown",
            "-o",
            output.to_str().unwrap(),
        ])
    };
    // A report that exists keeps its mode (0600 stays 0600).
    let existing = write(d, "kms.md", b"old", 0o600);
    let out = report(&existing);
    assert!(out.code <= 2, "{}", out.stderr);
    assert!(std::fs::read_to_string(&existing).unwrap().contains("# "));
    let mode = std::fs::metadata(&existing).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    // A link is followed: the link stays, its file gets the report.
    let link = d.join("current.md");
    std::os::unix::fs::symlink(&existing, &link).unwrap();
    std::fs::write(&existing, "old").unwrap();
    report(&link);
    assert!(
        std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert!(std::fs::read_to_string(&existing).unwrap().contains("# "));
    // A FIFO is written into, never replaced by a file.
    let fifo = d.join("report.fifo");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let reader_path = fifo.clone();
    let reader = std::thread::spawn(move || std::fs::read_to_string(reader_path).unwrap());
    let out = report(&fifo);
    assert!(out.code <= 2, "{}", out.stderr);
    assert!(reader.join().unwrap().contains("# "));
    use std::os::unix::fs::FileTypeExt;
    assert!(std::fs::metadata(&fifo).unwrap().file_type().is_fifo());
    // A directory is refused with a clear message.
    let out = report(d);
    assert_eq!(out.code, 3);
    assert!(out.stderr.contains("is a directory"), "{}", out.stderr);
    // A character device of our own (the null device's numbers), never the system's.
    if is_root() {
        let null = d.join("null");
        let made = Command::new("mknod")
            .arg(&null)
            .args(["c", "1", "3"])
            .status()
            .unwrap();
        assert!(made.success());
        let out = report(&null);
        assert!(out.code <= 2, "{}", out.stderr);
        assert!(
            std::fs::metadata(&null)
                .unwrap()
                .file_type()
                .is_char_device(),
            "the device was replaced by a file"
        );
    } else {
        eprintln!("skipped: mknod needs root");
    }
    // `-o -` is standard output.
    let out = report(Path::new("-"));
    assert!(out.stdout.contains("# "), "{}", out.stderr);
}

#[test]
fn reads_are_bounded_regular_files_only() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // A sparse 100 MB config: refused by its size, without reading it.
    let big = d.join("big.yaml");
    let file = std::fs::File::create(&big).unwrap();
    file.set_len(100 << 20).unwrap();
    let started = Instant::now();
    let out = run(&["scan", "--config", big.to_str().unwrap()]);
    assert_eq!(out.code, 3);
    assert!(out.stderr.contains("larger than"), "{}", out.stderr);
    assert!(started.elapsed() < Duration::from_secs(5));
    for (args, expect) in [
        (vec!["scan", "--config", "/dev/zero"], "character device"),
        (vec!["report", "--from", "/dev/zero"], "character device"),
        (
            vec!["restore", "/dev/zero", "--no-auth"],
            "character device",
        ),
        (vec!["scan", "--config", "/tmp"], "directory"),
    ] {
        let out = run(&args);
        assert_eq!(out.code, 3, "{args:?}");
        assert!(out.stderr.contains(expect), "{args:?}: {}", out.stderr);
    }
    let state_fifo = d.join("state.fifo");
    assert!(
        Command::new("mkfifo")
            .arg(&state_fifo)
            .status()
            .unwrap()
            .success()
    );
    let started = Instant::now();
    let out = run(&[
        "scan",
        "corp.example.com",
        "--server",
        "127.0.0.1:9",
        "--state",
        state_fifo.to_str().unwrap(),
    ]);
    assert_eq!(out.code, 3);
    assert!(out.stderr.contains("FIFO"), "{}", out.stderr);
    assert!(started.elapsed() < Duration::from_secs(5), "a FIFO hangs");
}

#[test]
fn numbers_are_range_checked_with_the_range_in_the_message() {
    for (flag, value, expect) in [
        ("--concurrency", "18446744073709551615", "1 to 100000"),
        ("--concurrency", "0", "1 to 100000"),
        ("--timeout", "18446744073709551615s", "allowed: 1ms to 10m"),
        ("--timeout", "999999999999h", "allowed: 1ms to 10m"),
        ("--timeout", "0s", "allowed: 1ms to 10m"),
        ("--qps", "4294967296", "0 to 1000000"),
        ("--nameserver-port", "0", "1 to 65535"),
    ] {
        let out = run(&["scan", "corp.example.com", flag, value]);
        assert_eq!(out.code, 3, "{flag} {value}: {}", out.stderr);
        assert!(
            out.stderr.contains(flag) && out.stderr.contains(expect),
            "{flag} {value}: {}",
            out.stderr
        );
        assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
    }
    for (flag, value, expect) in [
        ("--max-dead-percent", "101", "0 to 100"),
        ("--dead-for", "99999999999d", "allowed: 0 to"),
        ("--lock-wait", "2h", "allowed: 0 to 1h"),
    ] {
        let out = run(&["clean", "corp.example.com", flag, value]);
        assert_eq!(out.code, 3, "{flag} {value}: {}", out.stderr);
        assert!(
            out.stderr.contains(flag) && out.stderr.contains(expect),
            "{flag} {value}: {}",
            out.stderr
        );
    }
}

#[test]
fn config_errors_carry_file_line_and_column_for_every_value() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for (text, line, expect) in [
        (
            "domains: [a.example]\nconcurrency: 18446744073709551615\n",
            2,
            "1 to 100000",
        ),
        (
            "domains: [a.example]\ntimeout: 999999999999h\n",
            2,
            "allowed: 1ms to 10m",
        ),
        ("domains: [a.example]\nqps: 2000000\n", 2, "0 to 1000000"),
        (
            "domains: [a.example]\nclean:\n  max_dead_percent: 150\n",
            3,
            "0 to 100",
        ),
        (
            "domains: [a.example]\nclean:\n  dead_for: soon\n",
            3,
            "not a duration",
        ),
        (
            "domains: [a.example]\nclean:\n  primary: '::1:53'\n",
            3,
            "brackets",
        ),
    ] {
        let path = write(d, "audit.yaml", text.as_bytes(), 0o600);
        for command in ["scan", "clean"] {
            let out = run(&[command, "--config", path.to_str().unwrap()]);
            assert_eq!(out.code, 3, "{text}");
            let prefix = format!("{}:{line}:", path.display());
            assert!(
                out.stderr.contains(&prefix) && out.stderr.contains(expect),
                "{text}: {}",
                out.stderr
            );
            assert!(
                !out.stderr.contains("error: --"),
                "reported as a flag: {}",
                out.stderr
            );
        }
    }
    // Not UTF-8: the line, column and byte offset, and what to do.
    let path = write(d, "latin1.yaml", b"domains:\n  - caf\xe9.example\n", 0o600);
    let out = run(&["scan", "--config", path.to_str().unwrap()]);
    assert_eq!(out.code, 3);
    assert!(
        out.stderr.contains("latin1.yaml:2:8:")
            && out.stderr.contains("byte offset 16")
            && out.stderr.contains("UTF-8"),
        "{}",
        out.stderr
    );
}

#[test]
fn deep_nesting_is_refused_quickly() {
    let dir = tempfile::tempdir().unwrap();
    for text in [
        format!(
            "authorized_hosts: {}{}\n",
            "[".repeat(300_000),
            "]".repeat(300_000)
        ),
        format!("domains:\n{}x\n", "- ".repeat(100_000)),
    ] {
        let path = write(dir.path(), "deep.yaml", text.as_bytes(), 0o600);
        let started = Instant::now();
        let out = run(&["scan", "--config", path.to_str().unwrap()]);
        assert_eq!(out.code, 3);
        assert!(out.stderr.contains("nested more than"), "{}", out.stderr);
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "took {:?}",
            started.elapsed()
        );
    }
}

#[test]
fn ipv6_servers_need_brackets_and_unspecified_addresses_are_refused() {
    let out = run(&["scan", "corp.example.com", "--server", "::1:53"]);
    assert_eq!(out.code, 3);
    assert!(out.stderr.contains("[::1:53]"), "{}", out.stderr);
    let out = run(&["scan", "corp.example.com", "--server", "0.0.0.0:53"]);
    assert_eq!(out.code, 3);
    assert!(out.stderr.contains("any address"), "{}", out.stderr);
    let out = run(&["clean", "corp.example.com", "--primary", "::1"]);
    assert_eq!(out.code, 3);
    assert!(
        out.stderr.contains("--primary") && out.stderr.contains("brackets"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_test_namespace_is_removed_when_its_process_dies_however_it_dies() {
    if !is_root() {
        eprintln!("skipped: network namespaces need root");
        return;
    }
    let netns = format!("vlmcs-audit-reaptest-{}", std::process::id());
    assert!(
        Command::new("ip")
            .args(["netns", "add", &netns])
            .status()
            .unwrap()
            .success()
    );
    let etc = Path::new("/etc/netns").join(&netns);
    std::fs::create_dir_all(&etc).unwrap();
    // The "test process": killed with SIGKILL, so nothing of its own runs on the way out.
    let mut owner = Command::new("sleep").arg("60").spawn().unwrap();
    vlmcs_lab::netns::remove_netns_when_gone(&netns, owner.id());
    let ns_path = Path::new("/var/run/netns").join(&netns);
    std::thread::sleep(Duration::from_millis(1500));
    assert!(ns_path.exists(), "removed while its process lives");
    owner.kill().unwrap();
    owner.wait().unwrap();
    let started = Instant::now();
    while (ns_path.exists() || etc.exists()) && started.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(!ns_path.exists() && !etc.exists(), "{netns} left behind");
}

#[test]
fn a_full_disk_is_an_error_and_a_closed_pipe_is_not() {
    // /dev/full: every write fails with ENOSPC, as on a full disk.
    let out = run(&["report", "--from", LAB_SCAN, "-o", "/dev/full"]);
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert!(out.stderr.contains("No space left"), "{}", out.stderr);
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_vlmcs-audit"))
        .args(["report", "--from", LAB_SCAN])
        .stdout(full)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("standard output"), "{stderr}");
    // A reader that goes away after one byte (`| head -c1`) of a report far larger than a pipe
    // holds: no error, the report's own exit code.
    let mut scan: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(LAB_SCAN).unwrap()).unwrap();
    let domains = scan["domains"].as_array().unwrap().clone();
    let findings = scan["findings"].as_array().unwrap().clone();
    for copy in 0..60 {
        let rename = |mut v: serde_json::Value| {
            let name = format!("c{copy}.{}", v["domain"].as_str().unwrap());
            v["domain"] = name.into();
            v
        };
        for d in &domains {
            scan["domains"]
                .as_array_mut()
                .unwrap()
                .push(rename(d.clone()));
        }
        for f in &findings {
            scan["findings"]
                .as_array_mut()
                .unwrap()
                .push(rename(f.clone()));
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big-scan.json");
    std::fs::write(&big, serde_json::to_vec(&scan).unwrap()).unwrap();
    let output = crate::common::run_into_closed_pipe(&["report", "--from", big.to_str().unwrap()]);
    assert!(
        std::fs::metadata(&big).unwrap().len() > 1 << 20,
        "the report must not fit a pipe's buffer"
    );
    assert_eq!(
        output.status.code(),
        Some(0),
        "a written report is a success"
    );
    assert!(
        output.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn a_run_whose_own_files_coincide_is_refused_before_anything_is_sent() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir(d.join("sub")).unwrap();
    let p = |name: &str| d.join(name).display().to_string();
    let undo = write(d, "undo.txt", undo_text("").as_bytes(), 0o600);
    let state = write(d, "state.json", b"", 0o600);
    std::os::unix::fs::symlink(&state, d.join("link-to-state")).unwrap();
    std::fs::hard_link(&undo, d.join("hard-undo.txt")).unwrap();
    let scan_json = write(d, "scan.json", b"{}", 0o600);
    let clean = |files: &[&str]| -> Vec<String> {
        let mut args: Vec<String> = ["clean", "corp.example.com", "--server", "127.0.0.1:9"]
            .map(String::from)
            .to_vec();
        args.extend(files.iter().map(|s| s.to_string()));
        args
    };
    let cases: Vec<Vec<String>> = vec![
        // The report over the undo file: the restore would find nothing.
        clean(&["--undo-file", &p("u.txt"), "-o", &p("u.txt")]),
        // The same file spelled another way, before it exists.
        clean(&["--undo-file", &p("u2.txt"), "-o", &p("sub/../u2.txt")]),
        clean(&["--state", &p("s.json"), "-o", &p("s.json")]),
        clean(&["--audit-log", &p("a.log"), "--undo-file", &p("a.log")]),
        clean(&["--undo-file", &p("st.json"), "--state", &p("st.json")]),
        clean(&["--undo-file", &p("st.json.lock"), "--state", &p("st.json")]),
        // Through a symbolic link, and a hard link: one inode.
        clean(&["--state", &p("state.json"), "-o", &p("link-to-state")]),
        clean(&[
            "--undo-file",
            &p("hard-undo.txt"),
            "--audit-log",
            undo.to_str().unwrap(),
        ]),
        [
            "scan",
            "corp.example.com",
            "--server",
            "127.0.0.1:9",
            "--state",
        ]
        .map(String::from)
        .into_iter()
        .chain([p("state.json"), "-o".into(), p("state.json")])
        .collect(),
        vec![
            "restore".into(),
            undo.display().to_string(),
            "--no-auth".into(),
            "-o".into(),
            p("hard-undo.txt"),
        ],
        vec![
            "report".into(),
            "--from".into(),
            scan_json.display().to_string(),
            "-o".into(),
            scan_json.display().to_string(),
        ],
    ];
    for args in &cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let started = Instant::now();
        let out = run(&args);
        assert_ne!(out.code, 0, "{args:?} accepted");
        assert!(
            out.stderr.contains("are the same file"),
            "{args:?}: {}",
            out.stderr
        );
        assert!(started.elapsed() < Duration::from_secs(2), "{args:?}");
    }
    // Nothing was written over: the undo file and the state are as they were.
    assert_eq!(std::fs::read_to_string(&undo).unwrap(), undo_text(""));
    assert_eq!(std::fs::read(&state).unwrap(), b"");
    assert!(!d.join("u.txt").exists() && !d.join("s.json").exists());
    // Devices may be shared: nothing is overwritten there.
    let shared = clean(&[
        "--undo-file",
        "/dev/null",
        "--audit-log",
        "/dev/null",
        "-o",
        "/dev/null",
        "--state",
        &p("fresh-state.json"),
        "--timeout",
        "100ms",
    ]);
    let out = run(&shared.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(!out.stderr.contains("same file"), "{}", out.stderr);
}

#[test]
fn config_errors_echo_no_control_bytes_and_no_megabytes_and_a_bom_is_fine() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let huge = "x".repeat(2_000_000);
    for (name, text) in [
        ("nul.yaml", "domains: [\"corp\\0.example\"]\n".to_string()),
        (
            "esc.yaml",
            "domains: [\"corp\\e[31m.example\"]\n".to_string(),
        ),
        ("huge.yaml", format!("domains: [{huge}.example]\n")),
        ("hugekey.yaml", format!("domains: [a.example]\n{huge}: 1\n")),
        (
            "hugetime.yaml",
            format!("domains: [a.example]\ntimeout: {huge}\n"),
        ),
    ] {
        let path = write(d, name, text.as_bytes(), 0o600);
        let out = run(&["scan", "--config", path.to_str().unwrap()]);
        assert_eq!(out.code, 3, "{name}");
        assert!(out.stderr.contains(name), "{name}: {}", out.stderr);
        assert!(
            out.stderr.len() < 2_000,
            "{name}: {} bytes on stderr",
            out.stderr.len()
        );
        assert!(
            !out.stderr.chars().any(|c| c.is_control() && c != '\n'),
            "{name}: {:?}",
            out.stderr
        );
    }
    // A byte-order mark (Notepad's) before the YAML, and --dead-for at README's ten years.
    let bom = write(
        d,
        "bom.yaml",
        "\u{feff}domains: [corp.example.com]\nclean:\n  dead_for: 10y\n".as_bytes(),
        0o600,
    );
    let out = run(&[
        "clean",
        "--config",
        bom.to_str().unwrap(),
        "--server",
        "127.0.0.1:9",
        "--timeout",
        "100ms",
        "--state",
        d.join("state.json").to_str().unwrap(),
        "--dead-for",
        "10y",
        "--format",
        "json",
    ]);
    assert!(!out.stderr.contains("bom.yaml:"), "{}", out.stderr);
    assert!(!out.stderr.contains("out of range"), "{}", out.stderr);
    assert!(
        out.stdout.contains("\"plan\""),
        "{}{}",
        out.stdout,
        out.stderr
    );
}
