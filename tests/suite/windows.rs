//! The Windows build (`vlmcs-audit.exe`, cross-built by `scripts/windows`) run under wine
//! against the same real beds as the Linux binary: BIND on loopback, the TCP stand-ins, the
//! TSIG-signed update bed. `scripts/test` builds it and names it in `VLMCS_WINDOWS_EXE` (the
//! test bed's `bcryptprimitives.dll`, which wine 8 lacks, lies beside it: see
//! `lab/wine/bcryptprimitives.c`). Without that variable these tests say so and pass, unless
//! `VLMCS_REQUIRE_WINDOWS` is set (as `scripts/test` sets it), when they fail.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::common::{self, Run, check_report_schema, codes, findings};

const WINE: &str = "/usr/lib/wine/wine64";

/// The exe, or `None` (after saying why) when this run has none.
fn exe() -> Option<&'static Path> {
    static EXE: OnceLock<Option<PathBuf>> = OnceLock::new();
    EXE.get_or_init(|| {
        let found = std::env::var_os("VLMCS_WINDOWS_EXE").map(PathBuf::from);
        match &found {
            Some(path) => assert!(
                path.is_file(),
                "VLMCS_WINDOWS_EXE={} is not a file: run scripts/windows wine-bed",
                path.display()
            ),
            None if std::env::var_os("VLMCS_REQUIRE_WINDOWS").is_some() => {
                panic!("VLMCS_REQUIRE_WINDOWS is set but VLMCS_WINDOWS_EXE is not")
            }
            None => eprintln!(
                "the Windows build is not tested in this run: scripts/test builds it (scripts/windows wine-bed) and sets VLMCS_WINDOWS_EXE"
            ),
        }
        found
    })
    .as_deref()
}

/// A wine prefix of this test binary's own, made once (its first start takes seconds).
fn prefix() -> &'static Path {
    static PREFIX: OnceLock<PathBuf> = OnceLock::new();
    PREFIX.get_or_init(|| {
        let dir = common::scratch("wine-prefix");
        let out = wine_command(&dir, Path::new("cmd"))
            .args(["/c", "exit"])
            .output()
            .expect("wine64 (Debian package wine64) must be installed");
        assert!(
            out.status.success(),
            "wine did not start: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        dir
    })
}

fn wine_command(prefix: &Path, program: &Path) -> Command {
    let mut command = Command::new(WINE);
    command
        .arg(program)
        .env("WINEPREFIX", prefix)
        .env("WINEDEBUG", "-all")
        // No display: wine's console programs need none, and its probes for one only cost time.
        .env_remove("DISPLAY")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null());
    command
}

/// Runs the exe under wine with `args`.
fn run_exe(exe: &Path, args: &[&str]) -> Run {
    run_exe_in(exe, Path::new("."), args)
}

/// Runs the exe under wine with `args`, in the folder `dir`.
fn run_exe_in(exe: &Path, dir: &Path, args: &[&str]) -> Run {
    let output = wine_command(prefix(), exe)
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run the exe under wine");
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// `scan --format json --timeout 2s` of `domains` (relative to the bed's zone) on the primary.
fn scan_exe(exe: &Path, domains: &[&str], extra: &[&str]) -> Run {
    let server = common::bed().primary.to_string();
    let names: Vec<String> = domains.iter().map(|d| format!("{d}.audit.test")).collect();
    let mut args = vec!["scan", "--timeout", "2s", "--server", server.as_str()];
    if !extra.contains(&"--format") {
        args.extend(["--format", "json"]);
    }
    args.extend(extra);
    args.extend(names.iter().map(String::as_str));
    run_exe(exe, &args)
}

#[test]
fn the_exe_scans_with_the_findings_and_exit_codes_of_the_linux_build() {
    let Some(exe) = exe() else { return };
    // 0: a healthy domain; the JSON is the same document, schema and all.
    let healthy = scan_exe(exe, &["healthy"], &[]);
    assert_eq!(healthy.code, 0, "{}", healthy.stderr);
    let report = healthy.json();
    check_report_schema(&report);
    assert_eq!(
        findings(&report),
        [("healthy".to_string(), "ok".to_string())]
    );
    assert_eq!(report["domains"][0]["probes"][0]["outcome"], "kms-rpc");
    // 1: a warning (the same host published twice).
    let dup = scan_exe(exe, &["dup"], &[]);
    assert_eq!(dup.code, 1, "{}", dup.stdout);
    assert_eq!(codes(&dup.json()), ["duplicate-record", "healthy"]);
    // 2: a dead host, the domain's only one; and a web server that is no KMS host.
    let dead = scan_exe(exe, &["closed", "notkms"], &[]);
    assert_eq!(dead.code, 2, "{}", dead.stdout);
    let found = codes(&dead.json());
    for code in ["dead-host", "not-kms", "no-healthy-host"] {
        assert!(found.contains(&code.to_string()), "{found:?}");
    }
    // 3: bad input, said on stderr.
    let bad = run_exe(exe, &["scan", "--server", "127.0.0.1:9", "bad..name"]);
    assert_eq!(bad.code, 3);
    assert!(
        bad.stderr.contains("is not a valid domain name"),
        "{}",
        bad.stderr
    );
    // The table, as a person reads it on a console.
    let table = scan_exe(exe, &["closed"], &["--format", "table"]);
    assert_eq!(table.code, 2);
    assert!(
        table.stdout.contains("closed.audit.test"),
        "{}",
        table.stdout
    );
    assert!(table.stdout.contains("dead-host"), "{}", table.stdout);
}

#[test]
fn the_exe_deletes_with_tsig_and_restore_puts_the_record_back() {
    let Some(exe) = exe() else { return };
    let bed = crate::clean::bed();
    let zone = "wine";
    let before = bed.dig(zone);
    assert!(before.iter().any(|r| r.contains("dead.")), "{before:?}");
    let args = bed.clean_args(
        zone,
        &[
            "--dead-for",
            "0",
            "--tsig-key",
            bed.key(),
            "--apply",
            "--yes",
        ],
    );
    let cleaned = run_exe(exe, &args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(cleaned.code, 0, "{}\n{}", cleaned.stdout, cleaned.stderr);
    let after = bed.dig(zone);
    assert!(!after.iter().any(|r| r.contains("dead.")), "{after:?}");
    assert!(after.iter().any(|r| r.contains("kms1.")), "{after:?}");
    let files = bed.files(zone);
    let undo = std::fs::read_to_string(&files.undo).unwrap();
    assert!(
        undo.contains("update add _vlmcs._tcp.wine.clean.test."),
        "{undo}"
    );
    assert!(
        std::fs::read_to_string(&files.audit)
            .unwrap()
            .contains("\"delete\"")
    );
    // The exe's own files get a protected DACL of the owner, SYSTEM and Administrators: wine
    // shows it on the host as no permission for others (a report keeps the folder's default).
    for file in [&files.undo, &files.audit, &files.state] {
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(file).unwrap().permissions(),
        );
        assert_eq!(mode & 0o007, 0, "{}: {mode:o}", file.display());
    }
    // Put back from the undo file the exe wrote, with the same key.
    let undo_path = files.undo.to_str().unwrap();
    let restored = run_exe(
        exe,
        &[
            "restore",
            undo_path,
            "--tsig-key",
            bed.key(),
            "--format",
            "json",
        ],
    );
    assert_eq!(restored.code, 0, "{}\n{}", restored.stdout, restored.stderr);
    assert_eq!(restored.json()[0]["result"], "restored");
    assert_eq!(bed.dig(zone), before);
}

#[test]
fn the_exe_writes_files_and_reports_from_a_saved_scan() {
    let Some(exe) = exe() else { return };
    let dir = common::scratch("wine-files");
    let saved = dir.join("scan.json");
    let scanned = scan_exe(
        exe,
        &["healthy", "closed"],
        &["-o", saved.to_str().unwrap()],
    );
    assert_eq!(scanned.code, 2, "{}", scanned.stderr);
    assert!(scanned.stdout.is_empty(), "{}", scanned.stdout);
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&saved).unwrap()).unwrap();
    check_report_schema(&report);
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&saved).unwrap().permissions());
    assert_eq!(
        mode & 0o004,
        0o004,
        "a report is for others to read: {mode:o}"
    );
    let page = dir.join("page.html");
    let made = run_exe(
        exe,
        &[
            "report",
            "--from",
            saved.to_str().unwrap(),
            "--format",
            "html",
            "-o",
            page.to_str().unwrap(),
        ],
    );
    assert_eq!(made.code, 0, "{}", made.stderr);
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.contains("closed.audit.test") && html.contains("</html>"));
    // The Linux build reads what the exe wrote, and makes the same page from it.
    let linux_page = dir.join("linux.html");
    let linux = common::run(&[
        "report",
        "--from",
        saved.to_str().unwrap(),
        "--format",
        "html",
        "-o",
        linux_page.to_str().unwrap(),
    ]);
    assert_eq!(linux.code, 0, "{}", linux.stderr);
    assert_eq!(std::fs::read_to_string(&linux_page).unwrap(), html);
    // A key that is not a key file is refused before anything is sent.
    let not_a_file = refused_key(exe, &saved, dir.to_str().unwrap());
    assert!(not_a_file.contains("not a regular file"), "{not_a_file}");
    let pasted = refused_key(
        exe,
        &saved,
        "hmac-sha256:k:MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
    );
    assert!(
        pasted.contains("looks like a key itself")
            && pasted.contains("icacls")
            && !pasted.contains("chmod")
            && !pasted.contains("MDEyMzQ1"),
        "{pasted}"
    );
    // A key file others may read: wine shows the host's mode 0644 as a DACL that lets Everyone
    // read; the exe refuses it from that DACL, names who may read it and how to fix it.
    let shared_key = dir.join("shared.key");
    std::fs::copy(crate::clean::bed().key(), &shared_key).unwrap();
    std::fs::set_permissions(
        &shared_key,
        std::os::unix::fs::PermissionsExt::from_mode(0o644),
    )
    .unwrap();
    let shared = refused_key(exe, &saved, shared_key.to_str().unwrap());
    assert!(
        shared.contains("can be read by Everyone (S-1-1-0)")
            && shared.contains("icacls")
            && shared.contains("/inheritance:r"),
        "{shared}"
    );
    // `-o NUL` discards the report, as Windows users mean it: no file of that name is made.
    let server = common::bed().primary.to_string();
    let discarded = run_exe_in(
        exe,
        &dir,
        &[
            "scan",
            "--server",
            &server,
            "-o",
            "NUL",
            "--format",
            "csv",
            "healthy.audit.test",
        ],
    );
    assert_eq!(discarded.code, 0, "{}", discarded.stderr);
    assert!(discarded.stdout.is_empty());
    assert!(!dir.join("NUL").exists() && !dir.join("nul").exists());
    // Kerberos is not in the Windows build yet: said as such, not as a rebuild on Linux.
    let gss = run_exe(exe, &["restore", saved.to_str().unwrap(), "--gss"]);
    assert_eq!(gss.code, 3);
    assert!(
        gss.stderr.contains("not in the Windows build yet"),
        "{}",
        gss.stderr
    );
    let ad = run_exe(exe, &["scan", "--ad", "--server", "127.0.0.1:9"]);
    assert_eq!(ad.code, 3);
    assert!(
        ad.stderr.contains("not in the Windows build yet"),
        "{}",
        ad.stderr
    );
    // A config error names the file, line and column.
    let config = dir.join("bad.yaml");
    std::fs::write(&config, "domains: [a..b]\n").unwrap();
    let bad = run_exe(exe, &["scan", "--config", config.to_str().unwrap()]);
    assert_eq!(bad.code, 3);
    assert!(bad.stderr.contains("bad.yaml:1:11"), "{}", bad.stderr);
}

/// `restore UNDO --tsig-key KEY`, which must be refused before anything is sent (exit 3; the
/// undo file is not even read): what it said.
fn refused_key(exe: &Path, undo: &Path, key: &str) -> String {
    let run = run_exe(exe, &["restore", undo.to_str().unwrap(), "--tsig-key", key]);
    assert_eq!(run.code, 3, "{key}: {}", run.stderr);
    run.stderr
}

#[test]
fn the_exe_keeps_state_and_a_second_run_waits_for_its_lock() {
    let Some(exe) = exe() else { return };
    let dir = common::scratch("wine-state");
    let state = dir.join("state.json");
    let state_arg = state.to_str().unwrap();
    let first = scan_exe(exe, &["healthy"], &["--state", state_arg]);
    assert_eq!(first.code, 0, "{}", first.stderr);
    assert!(first.stdout.contains("first scan with this state file"));
    let second = scan_exe(exe, &["healthy"], &["--state", state_arg]);
    assert_eq!(second.code, 0, "{}", second.stderr);
    assert!(!second.stdout.contains("first scan with this state file"));
    let kept: serde_json::Value = serde_json::from_slice(&std::fs::read(&state).unwrap()).unwrap();
    assert_eq!(kept["records"].as_object().unwrap().len(), 1, "{kept}");
    // A scan that waits on a silent server holds the lock; a cleanup that may not wait is
    // refused meanwhile, and says who holds it.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let silent_addr = silent.local_addr().unwrap().to_string();
    let mut holder = wine_command(prefix(), exe)
        .args([
            "scan",
            "--state",
            state_arg,
            "--server",
            &silent_addr,
            "--timeout",
            "6s",
            "--format",
            "json",
            "healthy.audit.test",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // The earlier runs left their pid in the lock file: the holder's is awaited.
    let lock = dir.join("state.json.lock");
    std::fs::remove_file(&lock).unwrap();
    let started = Instant::now();
    while std::fs::read_to_string(&lock).map_or(true, |t| !t.starts_with("pid")) {
        assert!(started.elapsed() < Duration::from_secs(20), "no lock taken");
        std::thread::sleep(Duration::from_millis(100));
    }
    let refused = run_exe(
        exe,
        &[
            "clean",
            "healthy.audit.test",
            "--server",
            &silent_addr,
            "--state",
            state_arg,
            "--lock-wait",
            "0",
        ],
    );
    let _ = holder.wait();
    assert_eq!(refused.code, 3, "{}", refused.stderr);
    assert!(
        refused.stderr.contains("holds the lock"),
        "{}",
        refused.stderr
    );
}

#[test]
fn the_exe_scans_the_search_domains_windows_keeps_in_the_registry() {
    let Some(exe) = exe() else { return };
    // A domain member's primary DNS suffix and its suffix search list, where Windows keeps
    // them (hickory's own reader finds neither: it looks them up as values of the wrong key).
    let key = r"HKLM\System\CurrentControlSet\Services\Tcpip\Parameters";
    for (value, data) in [
        ("Domain", "dup.audit.test"),
        ("SearchList", "healthy.audit.test,dup.audit.test"),
    ] {
        let out = wine_command(prefix(), Path::new("reg"))
            .args(["add", key, "/v", value, "/t", "REG_SZ", "/d", data, "/f"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let server = common::bed().primary.to_string();
    let scanned = run_exe(
        exe,
        &[
            "scan",
            "--server",
            &server,
            "--timeout",
            "2s",
            "--format",
            "json",
        ],
    );
    assert_eq!(scanned.code, 1, "{}", scanned.stderr);
    assert_eq!(
        common::domain_names(&scanned.json()),
        ["dup.audit.test", "healthy.audit.test"]
    );
}

#[test]
fn the_exe_keeps_its_default_files_under_programdata() {
    let Some(exe) = exe() else { return };
    let server = common::bed().primary.to_string();
    let state = prefix().join("drive_c/ProgramData/vlmcs-audit/state.json");
    let _ = std::fs::remove_file(&state);
    // A plan (no --apply) with no --state: the state goes to %ProgramData%\vlmcs-audit.
    let planned = run_exe(
        exe,
        &[
            "clean",
            "healthy.audit.test",
            "--server",
            &server,
            "--format",
            "json",
        ],
    );
    assert_eq!(planned.code, 0, "{}", planned.stderr);
    let kept: serde_json::Value = serde_json::from_slice(&std::fs::read(&state).unwrap()).unwrap();
    // (The scheduled-task test keeps its state in the same place: other records may be there.)
    let records = kept["records"].as_object().unwrap();
    assert!(
        records
            .values()
            .any(|r| r["domain"] == "healthy.audit.test"),
        "{kept}"
    );
}

/// The actions of the shipped Task Scheduler task (`examples/schedule/vlmcs-audit-task.xml`), run
/// in order as the task runs them: one scan with the state, then the page and the metrics from
/// that scan.
#[test]
fn the_shipped_scheduled_task_scans_once_and_makes_the_page_and_the_metrics() {
    let Some(exe) = exe() else { return };
    let task = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/schedule/vlmcs-audit-task.xml"),
    )
    .unwrap();
    let actions: Vec<String> = task
        .split("<Arguments>")
        .skip(1)
        .map(|rest| rest.split("</Arguments>").next().unwrap().to_string())
        .collect();
    assert_eq!(actions.len(), 3, "{task}");
    assert!(actions[0].starts_with("scan ") && actions[0].contains("--state"));
    assert!(actions[1..].iter().all(|a| a.starts_with("report --from ")));
    // The task's folders in the prefix, and a config that names the bed's domains and server.
    let drive = prefix().join("drive_c");
    let data = drive.join("ProgramData/vlmcs-audit");
    let textfiles = drive.join("Program Files/windows_exporter/textfile_inputs");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::create_dir_all(&textfiles).unwrap();
    let server = common::bed().primary;
    std::fs::write(
        data.join("audit.yaml"),
        format!(
            "domains: [healthy.audit.test, closed.audit.test]\nservers: [\"{server}\"]\ntimeout: 2s\n"
        ),
    )
    .unwrap();
    for (i, action) in actions.iter().enumerate() {
        // Task Scheduler splits the arguments as the C runtime does: quoted paths hold spaces.
        let args = split_windows_arguments(action);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let ran = run_exe(exe, &args);
        let expected = if i == 0 { 2 } else { 0 };
        assert_eq!(ran.code, expected, "{action}: {}", ran.stderr);
    }
    let page = std::fs::read_to_string(data.join("kms-report.html")).unwrap();
    assert!(page.contains("closed.audit.test"));
    let metrics = std::fs::read_to_string(textfiles.join("vlmcs_audit.prom")).unwrap();
    assert!(metrics.contains("vlmcs_audit_"), "{metrics}");
    assert!(data.join("state.json").is_file());
}

/// Splits a command line as Windows programs do for double quotes (no escapes needed here).
fn split_windows_arguments(line: &str) -> Vec<String> {
    let mut args = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    let mut started = false;
    for c in line.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                started = true;
            }
            ' ' if !quoted => {
                if started {
                    args.push(std::mem::take(&mut current));
                    started = false;
                }
            }
            c => {
                current.push(c);
                started = true;
            }
        }
    }
    if started {
        args.push(current);
    }
    args
}
