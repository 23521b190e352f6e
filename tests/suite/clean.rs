//! `vlmcs-audit clean` and `restore` against a real BIND 9 that accepts TSIG-signed updates.
//! Every test works in a zone of its own, so tests run concurrently on one server; the zone's
//! contents are checked afterwards with `dig`, not with the tool's word.

use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;

use crate::common::Run;
use crate::common::updates::{KEY_NAME, ServerKind, UpdateBed, origin, rr};
use serde_json::Value;

const ZONES: &[(&str, &[&str])] = &[
    ("eplan", &["kms1", "dead", "gone", "rogue"]),
    ("eapply", &["kms1", "dead", "gone", "rogue"]),
    ("ekeys", &["kms1", "dead"]),
    ("plan", &["kms1", "dead", "gone", "rogue"]),
    ("apply", &["kms1", "dead", "gone", "rogue"]),
    ("unauth", &["kms1", "rogue"]),
    ("keys", &["kms1", "dead"]),
    ("perm", &["kms1", "dead"]),
    ("nxrrset", &["kms1", "dead"]),
    ("partition", &["hole1", "hole2"]),
    ("grace", &["kms1", "dead"]),
    ("lock", &["kms1", "dead"]),
    ("nsupdate", &["kms1", "dead"]),
    ("last", &["dead"]),
    ("mname", &["kms1", "dead"]),
    ("skew", &["kms1", "dead"]),
    ("lag", &["kms1", "dead"]),
    ("confirm", &["kms1", "dead"]),
    ("fixit", &["kms1", "dead", "gone"]),
    ("drift", &["kms1", "dead"]),
    ("outage", &["kms1", "dead", "gone"]),
    ("unknown", &["kms1", "dead"]),
    ("ttl", &["kms1", "dead"]),
    ("refuse", &["kms1", "dead"]),
    ("hostile", &["kms1"]),
    ("full", &["kms1", "dead", "gone"]),
    ("fifo", &["kms1", "dead", "gone"]),
    ("badmac", &["kms1", "dead"]),
    ("unsignedfail", &["kms1", "dead"]),
    ("rttl", &["kms1", "dead"]),
    ("wine", &["kms1", "dead"]),
];

static BED: OnceLock<UpdateBed> = OnceLock::new();

pub(crate) fn bed() -> &'static UpdateBed {
    BED.get_or_init(|| crate::common::updates::start(ServerKind::Bind, ZONES))
}

fn dig(zone: &str) -> Vec<String> {
    bed().dig(zone)
}

fn clean(zone: &str, extra: &[&str]) -> Run {
    bed().clean(zone, extra)
}

/// `clean --apply --yes` of the zone's domain with the bed's key, failing records deleted at
/// once (`--dead-for 0`), and `extra` flags.
fn clean_applied(zone: &str, extra: &[&str]) -> Run {
    let mut args = vec!["--dead-for", "0", "--tsig-key", key(), "--apply", "--yes"];
    args.extend(extra);
    clean(zone, &args)
}

fn files(zone: &str) -> crate::common::updates::Files {
    bed().files(zone)
}

fn key() -> &'static str {
    bed().key()
}

fn plan_of(report: &Value) -> Vec<(String, String, bool)> {
    report["plan"]["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            let target = i["record"]["target"].as_str().unwrap();
            let label = target.split('.').next().unwrap().to_string();
            (
                label,
                i["reason"].as_str().unwrap().to_string(),
                i["delete"].as_bool().unwrap(),
            )
        })
        .collect()
}

#[test]
fn plan_only_changes_nothing() {
    let before = dig("plan");
    assert_eq!(before.len(), 4);
    let run = clean("plan", &["--dead-for", "0", "--tsig-key", key()]);
    let report = run.json();
    assert_eq!(
        run.code, 1,
        "a kept failing record (the rogue host) is a warning: {}",
        run.stdout
    );
    assert_eq!(
        plan_of(&report),
        vec![
            ("dead".into(), "dead-host".into(), true),
            ("gone".into(), "no-address".into(), true),
            ("rogue".into(), "unauthorized-host".into(), false),
        ]
    );
    assert_eq!(report["applied"], false);
    assert_eq!(dig("plan"), before, "a plan must not change DNS");
    assert!(!files("plan").undo.exists());
}

#[test]
fn apply_deletes_dead_and_dangling_keeps_healthy_and_rogue_and_restore_puts_them_back() {
    let before = bed().dig_full("apply");
    assert!(before[0].contains(" 300 IN SRV "), "{before:?}");
    let run = clean_applied("apply", &[]);
    let report = run.json();
    assert_eq!(
        dig("apply"),
        vec![rr("apply", "kms1"), rr("apply", "rogue")],
        "{}",
        run.stdout
    );
    let results: Vec<(&str, &str)> = report["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["record"]["target"].as_str().unwrap(),
                r["result"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        results,
        [
            ("dead.apply.clean.test.", "deleted"),
            ("gone.apply.clean.test.", "deleted")
        ]
    );
    // Nothing failed; the rogue host was held back: exit 1.
    assert_eq!(run.code, 1, "{}", run.stderr);

    let f = files("apply");
    let undo = std::fs::read_to_string(&f.undo).unwrap();
    assert_eq!(undo.matches("update add ").count(), 2, "{undo}");
    assert!(
        undo.contains(
            "update add _vlmcs._tcp.apply.clean.test. 300 IN SRV 0 0 1688 dead.apply.clean.test."
        ),
        "{undo}"
    );
    let audit: Vec<Value> = std::fs::read_to_string(&f.audit)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(audit.len(), 2);
    assert!(
        audit
            .iter()
            .all(|a| a["result"] == "ok" && a["action"] == "delete")
    );
    assert!(audit[0]["auth"].as_str().unwrap().contains(KEY_NAME));
    use std::os::unix::fs::PermissionsExt;
    for private in [&f.undo, &f.audit] {
        let mode = std::fs::metadata(private).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", private.display());
    }
    // The secret never reaches the logs or the report.
    let secret = bed().secret.as_str();
    assert!(
        !run.stdout.contains(secret)
            && !std::fs::read_to_string(&f.audit).unwrap().contains(secret)
    );

    let restored = crate::common::run(&[
        "restore",
        f.undo.to_str().unwrap(),
        "--tsig-key",
        key(),
        "--format",
        "json",
    ]);
    assert_eq!(restored.code, 0, "{} {}", restored.stdout, restored.stderr);
    assert_eq!(
        bed().dig_full("apply"),
        before,
        "restore must bring back every record, byte for byte"
    );
}

#[test]
fn unauthorized_hosts_go_only_with_include_unauthorized() {
    let run = clean_applied("unauth", &[]);
    assert_eq!(dig("unauth").len(), 2, "{}", run.stdout);
    let run = clean(
        "unauth",
        &[
            "--dead-for",
            "0",
            "--tsig-key",
            key(),
            "--apply",
            "--yes",
            "--include-unauthorized",
        ],
    );
    assert_eq!(dig("unauth"), vec![rr("unauth", "kms1")], "{}", run.stdout);
    assert_eq!(run.code, 0);
}

#[test]
fn bad_keys_fail_each_with_its_own_message_and_change_nothing() {
    let before = dig("keys");
    let (wrong_secret, unknown_name) = bed().bad_keys("keys");
    for (args, expected) in [
        (vec!["--tsig-key", wrong_secret.to_str().unwrap()], "BADSIG"),
        (vec!["--tsig-key", unknown_name.to_str().unwrap()], "BADKEY"),
        (vec!["--no-auth"], "REFUSED"),
    ] {
        let mut argv = vec!["--dead-for", "0", "--apply", "--yes"];
        argv.extend(&args);
        let run = clean("keys", &argv);
        let report = run.json();
        let message = report["results"][0]["message"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        assert!(message.contains(expected), "{expected}: {message}");
        assert_eq!(report["results"][0]["result"], "failed");
        assert_eq!(run.code, 2, "{expected}");
        assert_eq!(dig("keys"), before, "{expected}: DNS changed");
    }
    // No key at all, and a key file others can read: refused before anything is sent.
    let run = clean("keys", &["--dead-for", "0", "--apply", "--yes"]);
    assert_eq!(run.code, 3);
    assert!(
        run.stderr.contains("needs authentication"),
        "{}",
        run.stderr
    );
}

#[test]
fn key_file_readable_by_others_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let loose = bed().dir.join("loose.key");
    std::fs::copy(key(), &loose).unwrap();
    std::fs::set_permissions(&loose, std::fs::Permissions::from_mode(0o644)).unwrap();
    let before = dig("perm");
    let run = clean(
        "perm",
        &[
            "--dead-for",
            "0",
            "--apply",
            "--yes",
            "--tsig-key",
            loose.to_str().unwrap(),
        ],
    );
    assert_eq!(run.code, 3);
    assert!(
        run.stderr.contains("mode 0644") && run.stderr.contains("chmod 600"),
        "{}",
        run.stderr
    );
    assert_eq!(dig("perm"), before);
}

/// `clean --apply` of `zone` through the library, with `between` run where the confirmation
/// would be: after the scan, before the first delete.
fn clean_with_a_change_in_between(
    zone: &str,
    between: impl FnOnce() + Send + 'static,
) -> vlmcs_audit::clean::CleanReport {
    let bed = bed();
    let settings = vlmcs_audit::config::build(
        None,
        &vlmcs_audit::config::Overrides {
            domains: vec![origin(zone)],
            servers: vec![bed.server],
            allow: vec![
                vlmcs_audit::model::HostPattern::parse(&format!("kms1.{}", origin(zone))).unwrap(),
            ],
            timeout: Some(vlmcs_audit::config::Timeout::parse("1s").unwrap()),
            ..Default::default()
        },
        || Ok::<_, std::convert::Infallible>(vec![]),
    )
    .unwrap();
    let f = files(zone);
    let key = vlmcs_audit::dns::auth::load_key_file(Path::new(key()), "the test").unwrap();
    let request = vlmcs_audit::clean::CleanRequest {
        options: vlmcs_audit::clean::CleanOptions {
            dead_for: std::time::Duration::ZERO,
            ..Default::default()
        },
        apply: true,
        auth: vlmcs_audit::dns::auth::Auth::Tsig(key),
        state_path: f.state,
        lock_wait: std::time::Duration::from_secs(5),
        undo_path: f.undo,
        audit_path: f.audit,
        primary: None,
        confirm: Box::new(move |_| {
            between();
            true
        }),
    };
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(vlmcs_audit::clean::run(&settings, request))
        .unwrap()
}

#[test]
fn rrset_changed_between_scan_and_delete_is_left_alone() {
    let before = dig("nxrrset");
    // Between the scan and the delete, a host registers itself (as KMS hosts do daily).
    let report = clean_with_a_change_in_between("nxrrset", || {
        nsupdate(
            "nxrrset",
            &format!(
                "update add _vlmcs._tcp.{z} 300 IN SRV 0 0 1688 newhost.{z}",
                z = origin("nxrrset")
            ),
        );
    });
    // Read back from the primary just before the delete, the change stops it before anything
    // is sent (NXRRSET from the server remains the guard against a change in the last moment).
    let result = &report.results[0];
    assert_eq!(result.result, vlmcs_audit::clean::ActionOutcome::Skipped);
    assert!(
        result.message.contains("changed since it was audited"),
        "{}",
        result.message
    );
    assert!(!files("nxrrset").undo.exists());
    let mut expected = before.clone();
    expected.push(rr("nxrrset", "newhost"));
    expected.sort();
    assert_eq!(
        dig("nxrrset"),
        expected,
        "the dead record must still be there, next to the new one"
    );
}

#[test]
fn partition_deletes_nothing_without_force() {
    let before = dig("partition");
    let run = clean_applied("partition", &[]);
    let report = run.json();
    assert!(
        report["plan"]["refused"]
            .as_str()
            .unwrap()
            .contains("2 of 2 probed hosts look dead"),
        "{report:#}"
    );
    assert!(
        report["plan"]["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i["delete"] == false)
    );
    assert_eq!(run.code, 1);
    assert_eq!(dig("partition"), before);
    // With --force the dead records go, but the last one stays unless --allow-empty.
    let run = clean(
        "partition",
        &[
            "--dead-for",
            "0",
            "--tsig-key",
            key(),
            "--apply",
            "--yes",
            "--force",
        ],
    );
    assert_eq!(dig("partition").len(), 1, "{}", run.stdout);
}

#[test]
fn the_last_record_stays_unless_allow_empty() {
    // One dead host out of one is "most hosts dead" too: --force gets past that rail.
    let run = clean(
        "last",
        &[
            "--dead-for",
            "0",
            "--tsig-key",
            key(),
            "--apply",
            "--yes",
            "--force",
        ],
    );
    let report = run.json();
    assert!(
        report["plan"]["items"][0]["keep_because"]
            .as_str()
            .unwrap()
            .contains("last record")
    );
    assert_eq!(dig("last").len(), 1);
    clean(
        "last",
        &[
            "--dead-for",
            "0",
            "--tsig-key",
            key(),
            "--apply",
            "--yes",
            "--force",
            "--allow-empty",
        ],
    );
    assert!(dig("last").is_empty());
}

#[test]
fn dead_for_waits_until_the_state_says_long_enough() {
    let run = clean(
        "grace",
        &["--dead-for", "1h", "--tsig-key", key(), "--apply", "--yes"],
    );
    let report = run.json();
    let why = report["plan"]["items"][0]["keep_because"].as_str().unwrap();
    assert!(why.contains("--dead-for 1h"), "{why}");
    assert_eq!(dig("grace").len(), 2);
    // Age the state: the record has been failing for two hours.
    let f = files("grace");
    let mut state: Value =
        serde_json::from_str(&std::fs::read_to_string(&f.state).unwrap()).unwrap();
    let two_hours_ago = humantime::format_rfc3339_seconds(
        std::time::SystemTime::now() - std::time::Duration::from_secs(7200),
    )
    .to_string();
    for (_, record) in state["records"].as_object_mut().unwrap() {
        if record["failing_since"].is_string() {
            record["failing_since"] = Value::String(two_hours_ago.clone());
        }
    }
    std::fs::write(&f.state, serde_json::to_string(&state).unwrap()).unwrap();
    clean(
        "grace",
        &["--dead-for", "1h", "--tsig-key", key(), "--apply", "--yes"],
    );
    assert_eq!(dig("grace"), vec![rr("grace", "kms1")]);
}

#[test]
fn a_second_run_on_the_same_state_waits_then_fails_clearly() {
    let f = files("lock");
    let held =
        vlmcs_audit::state::LockedState::open(&f.state, std::time::Duration::from_secs(1)).unwrap();
    let before = dig("lock");
    let run = clean(
        "lock",
        &[
            "--dead-for",
            "0",
            "--tsig-key",
            key(),
            "--apply",
            "--yes",
            "--lock-wait",
            "1s",
        ],
    );
    assert_eq!(run.code, 3);
    assert!(run.stderr.contains("holds the lock"), "{}", run.stderr);
    assert_eq!(dig("lock"), before);
    drop(held);
    let run = clean(
        "lock",
        &[
            "--dead-for",
            "0",
            "--tsig-key",
            key(),
            "--apply",
            "--yes",
            "--lock-wait",
            "1s",
        ],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    // The state file is intact JSON after both runs.
    let _: Value = serde_json::from_str(&std::fs::read_to_string(&f.state).unwrap()).unwrap();
}

#[test]
fn undo_file_works_with_nsupdate_too() {
    let before = dig("nsupdate");
    clean_applied("nsupdate", &[]);
    assert_eq!(dig("nsupdate").len(), 1);
    let status = Command::new("nsupdate")
        .arg("-k")
        .arg(key())
        .arg(files("nsupdate").undo)
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(dig("nsupdate"), before);
}

#[test]
fn without_apply_confirmation_is_required_off_a_terminal() {
    let run = clean("plan", &["--dead-for", "0", "--tsig-key", key(), "--apply"]);
    assert_eq!(run.code, 3);
    assert!(run.stderr.contains("add --yes"), "{}", run.stderr);
}

#[test]
fn updates_go_to_the_soa_mname_when_servers_are_discovered() {
    let bed = bed();
    let f = files("mname");
    let resolver = bed.server.to_string();
    let port = bed.server.port().to_string();
    let domain = origin("mname");
    let allow = format!("kms1.{domain}");
    let (state, undo, audit) = (
        f.state.to_str().unwrap(),
        f.undo.to_str().unwrap(),
        f.audit.to_str().unwrap(),
    );
    let run = crate::common::run(&[
        "clean",
        &domain,
        "--resolver",
        &resolver,
        "--nameserver-port",
        &port,
        "--timeout",
        "1s",
        "--format",
        "json",
        "--allow",
        &allow,
        "--state",
        state,
        "--undo-file",
        undo,
        "--audit-log",
        audit,
        "--dead-for",
        "0",
        "--tsig-key",
        key(),
        "--apply",
        "--yes",
    ]);
    let report = run.json();
    assert_eq!(report["scan"]["domains"][0]["servers_from"], "discovered");
    assert_eq!(
        report["scan"]["domains"][0]["primary"],
        format!("ns1.{domain}")
    );
    assert_eq!(
        report["results"][0]["server"],
        format!("127.0.0.1:{port}"),
        "{}",
        run.stdout
    );
    assert_eq!(dig("mname"), vec![rr("mname", "kms1")]);
}

#[test]
fn clock_skew_is_reported_as_badtime() {
    // libfaketime moves this process's clock an hour back; the server sees a stale signature.
    let before = dig("skew");
    let run = bed().clean_at_clock(
        "skew",
        "-1h",
        &["--dead-for", "0", "--tsig-key", key(), "--apply", "--yes"],
    );
    let report = run.json();
    let message = report["results"][0]["message"].as_str().unwrap();
    assert!(
        message.contains("BADTIME") && message.contains("clock"),
        "{message}"
    );
    assert_eq!(run.code, 2);
    assert_eq!(dig("skew"), before);
}

#[test]
fn a_secondary_that_still_serves_the_record_is_reported_not_failed() {
    let copy = bed().lagging_copy.unwrap().to_string();
    let run = clean(
        "lag",
        &[
            "--server",
            &copy,
            "--dead-for",
            "0",
            "--tsig-key",
            key(),
            "--apply",
            "--yes",
        ],
    );
    let report = run.json();
    let result = &report["results"][0];
    assert_eq!(result["result"], "deleted", "{}", run.stdout);
    assert_eq!(result["still_served_by"], serde_json::json!([copy]));
    assert!(
        result["message"]
            .as_str()
            .unwrap()
            .contains("replication lag")
    );
    assert_eq!(run.code, 0);
    assert_eq!(dig("lag"), vec![rr("lag", "kms1")]);
}

/// Runs `clean` on a pseudo-terminal (util-linux `script`), typing `answer` at the prompt.
fn clean_on_terminal(zone: &str, answer: &str) -> (i32, String) {
    let bed = bed();
    let f = files(zone);
    let domain = origin(zone);
    let command = format!(
        "{} clean {domain} --server {} --timeout 1s --allow kms1.{domain} --state {} --undo-file {} --audit-log {} --dead-for 0 --tsig-key {} --apply --format json",
        env!("CARGO_BIN_EXE_vlmcs-audit"),
        bed.server,
        f.state.display(),
        f.undo.display(),
        f.audit.display(),
        key()
    );
    // The pty buffers the answer until the scan reaches its prompt.
    let output = crate::common::run_with_input(
        Command::new("script").args(["-qec", &command, "/dev/null"]),
        format!("{answer}\n").as_bytes(),
    );
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
    )
}

#[test]
fn on_a_terminal_apply_asks_first() {
    let before = dig("confirm");
    let (code, screen) = clean_on_terminal("confirm", "no");
    assert!(screen.contains("About to delete 1 record(s)"), "{screen}");
    assert!(screen.contains("not confirmed"), "{screen}");
    assert_eq!(code, 3);
    assert_eq!(dig("confirm"), before);
    let (code, screen) = clean_on_terminal("confirm", "yes");
    assert_eq!(code, 0, "{screen}");
    assert_eq!(dig("confirm"), vec![rr("confirm", "kms1")]);
}

#[test]
fn the_fix_it_reports_nsupdate_script_really_deletes_the_record() {
    let bed = bed();
    let domain = origin("fixit");
    let scan = crate::common::run(&[
        "scan",
        &domain,
        "--server",
        &bed.server.to_string(),
        "--timeout",
        "1s",
        "--format",
        "json",
    ]);
    let saved = files("fixit").state.with_file_name("scan.json");
    std::fs::write(&saved, &scan.stdout).unwrap();
    let report = crate::common::run(&["report", "--from", saved.to_str().unwrap()]);
    // One script for the domain: a dead host and a dangling record, one UPDATE, one
    // prerequisite (per-record scripts would each fail after the first).
    let scripts: Vec<&str> = report
        .stdout
        .split("```")
        .skip(1)
        .step_by(2)
        .filter(|block| block.contains("nsupdate -k"))
        .collect();
    assert_eq!(scripts.len(), 1, "{}", report.stdout);
    let script = scripts[0]
        .trim_start_matches("sh\n")
        .replace("/path/to/ddns.key", key());
    assert_eq!(script.matches("update delete").count(), 2, "{script}");
    let out = Command::new("sh").arg("-c").arg(&script).output().unwrap();
    assert!(
        out.status.success(),
        "{script}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(dig("fixit"), vec![rr("fixit", "kms1")], "{script}");
}

/// Edits a zone from outside with `nsupdate -k` (as a KMS host or an admin would).
fn nsupdate(zone: &str, lines: &str) {
    let script = format!(
        "server 127.0.0.1 {}\nzone {}\n{lines}\nsend\n",
        bed().server.port(),
        origin(zone)
    );
    let out = crate::common::run_with_input(
        Command::new("nsupdate").arg("-k").arg(key()),
        script.as_bytes(),
    );
    assert!(
        out.status.success(),
        "nsupdate: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn drift_across_three_scans_of_an_edited_zone() {
    let bed = bed();
    let state = files("drift").state.with_file_name("scan-state.json");
    let state_arg = state.to_str().unwrap().to_string();
    let domain = origin("drift");
    let server = bed.server.to_string();
    let run_scan = |extra: &[&str]| {
        let mut argv = vec![
            "scan",
            domain.as_str(),
            "--server",
            &server,
            "--timeout",
            "1s",
            "--format",
            "json",
            "--state",
            &state_arg,
        ];
        argv.extend(extra);
        crate::common::run(&argv)
    };
    let scan = |extra: &[&str]| run_scan(extra).json();
    let drift_codes = |report: &Value| -> Vec<(String, String)> {
        let mut v: Vec<(String, String)> = report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| {
                [
                    "new-record",
                    "record-gone",
                    "status-changed",
                    "flapping",
                    "still-failing",
                ]
                .contains(&f["code"].as_str().unwrap())
            })
            .map(|f| {
                (
                    f["code"].as_str().unwrap().to_string(),
                    f["target"]
                        .as_str()
                        .unwrap()
                        .split('.')
                        .next()
                        .unwrap()
                        .to_string(),
                )
            })
            .collect();
        v.sort();
        v
    };
    let first = scan(&[]);
    assert!(drift_codes(&first).is_empty());
    assert!(
        first["notes"]
            .to_string()
            .contains("first scan with this state file")
    );

    // A client registers itself; the dead host's record is removed.
    let o = origin("drift");
    nsupdate(
        "drift",
        &format!(
            "update add _vlmcs._tcp.{o} 300 IN SRV 0 0 1688 pc-7.{o}\nupdate delete _vlmcs._tcp.{o} SRV 0 0 1688 dead.{o}"
        ),
    );
    let second = scan(&[]);
    assert_eq!(
        drift_codes(&second),
        vec![
            ("new-record".into(), "pc-7".into()),
            ("record-gone".into(), "dead".into())
        ],
        "{second:#}"
    );
    let new = second["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["code"] == "new-record")
        .unwrap();
    assert_eq!(
        new["severity"], "warning",
        "without an allowlist a new host is a warning"
    );

    // The dead record comes back; pc-7 is still dangling.
    nsupdate(
        "drift",
        &format!("update add _vlmcs._tcp.{o} 300 IN SRV 0 0 1688 dead.{o}"),
    );
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let third = scan(&["--since-last"]);
    let codes: Vec<String> = third["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["code"].as_str().unwrap().to_string())
        .collect();
    // Only what changed: the record that is back, with its own findings (it is still dead,
    // and has been failing since before it went).
    assert_eq!(
        codes,
        ["dead-host", "new-record", "still-failing"],
        "--since-last shows only what changed: {third:#}"
    );
    assert!(
        third["findings"][1]["detail"]
            .as_str()
            .unwrap()
            .contains("is back")
    );
    let full = scan(&[]);
    assert!(
        drift_codes(&full).contains(&("still-failing".into(), "pc-7".into())),
        "{full:#}"
    );
    // Nothing changed since: nothing printed and exit 0, so cron mails only on change.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let quiet = run_scan(&["--since-last"]);
    assert_eq!(quiet.code, 0, "{}", quiet.stderr);
    assert!(quiet.stdout.is_empty(), "{}", quiet.stdout);
}

/// What a [`proxy`] does with one connection.
#[derive(Clone, Copy)]
enum Relay {
    /// Carries the connection both ways.
    Both,
    /// Delivers the request upstream, reads the reply, and closes without passing it on: a
    /// primary that applied the update and dropped the connection.
    SwallowReply,
    /// Passes the request, and passes the reply on with one byte of its MAC (near the end of
    /// the TSIG record) flipped: applied, and a reply that fails verification.
    CorruptMac,
    /// Passes the request, and answers with an unsigned SERVFAIL of its own: applied, and a
    /// reply that cannot be verified.
    UnsignedServfail,
}

/// A TCP proxy to `upstream` that handles one connection per entry of `plan`, in order, and
/// then stops listening (the primary goes away).
fn proxy(upstream: std::net::SocketAddr, plan: Vec<Relay>) -> std::net::SocketAddr {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for relay in plan {
            let Ok((mut client, _)) = listener.accept() else {
                return;
            };
            let mut server = std::net::TcpStream::connect(upstream).unwrap();
            match relay {
                Relay::Both => {
                    let (mut c_read, mut s_write) =
                        (client.try_clone().unwrap(), server.try_clone().unwrap());
                    let up = std::thread::spawn(move || {
                        let _ = std::io::copy(&mut c_read, &mut s_write);
                        let _ = s_write.shutdown(std::net::Shutdown::Write);
                    });
                    let _ = std::io::copy(&mut server, &mut client);
                    let _ = up.join();
                }
                Relay::SwallowReply | Relay::CorruptMac | Relay::UnsignedServfail => {
                    let mut len = [0u8; 2];
                    client.read_exact(&mut len).unwrap();
                    let mut request = vec![0u8; u16::from_be_bytes(len) as usize];
                    client.read_exact(&mut request).unwrap();
                    server.write_all(&len).unwrap();
                    server.write_all(&request).unwrap();
                    let mut reply_len = [0u8; 2];
                    server.read_exact(&mut reply_len).unwrap();
                    let mut reply = vec![0u8; u16::from_be_bytes(reply_len) as usize];
                    server.read_exact(&mut reply).unwrap();
                    let forged = match relay {
                        Relay::CorruptMac => {
                            // MAC, original ID, error, other length (0): the MAC ends 6
                            // bytes before the end.
                            let at = reply.len() - 10;
                            reply[at] ^= 0x55;
                            reply
                        }
                        Relay::UnsignedServfail => {
                            // QR, opcode UPDATE, rcode SERVFAIL; no sections, no TSIG.
                            let mut header = request[..2].to_vec();
                            header.extend_from_slice(&[0xa8, 0x02, 0, 0, 0, 0, 0, 0, 0, 0]);
                            header
                        }
                        _ => {
                            drop(client);
                            continue;
                        }
                    };
                    let _ = client.write_all(&(forged.len() as u16).to_be_bytes());
                    let _ = client.write_all(&forged);
                }
            }
        }
    });
    address
}

#[test]
fn the_primary_going_away_between_two_deletes_is_recorded_and_a_rerun_finishes() {
    let bed = bed();
    // The read-back and the delete of the first record, then nothing.
    let proxy = proxy(bed.server, vec![Relay::Both, Relay::Both]).to_string();
    let run = clean_applied("outage", &["--primary", &proxy]);
    let report = run.json();
    let results: Vec<(&str, &str)> = report["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["record"]["target"]
                    .as_str()
                    .unwrap()
                    .split('.')
                    .next()
                    .unwrap(),
                r["result"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        results,
        [("dead", "deleted"), ("gone", "failed")],
        "{}",
        run.stdout
    );
    assert_eq!(run.code, 2);
    assert_eq!(
        dig("outage"),
        vec![rr("outage", "gone"), rr("outage", "kms1")]
    );
    let f = files("outage");
    let audit: Vec<Value> = std::fs::read_to_string(&f.audit)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(audit.len(), 2);
    assert_eq!(audit[0]["result"], "ok");
    assert!(
        audit[1]["result"]
            .as_str()
            .unwrap()
            .contains("cannot read the RRset back"),
        "{:#}",
        audit[1]
    );
    // Nothing was sent for the second record, so the undo file holds only the first.
    let undo = std::fs::read_to_string(&f.undo).unwrap();
    assert_eq!(undo.matches("update add ").count(), 1, "{undo}");
    // A rerun against the real primary continues where the first stopped.
    let rerun = clean_applied("outage", &[]);
    assert_eq!(rerun.code, 0, "{}", rerun.stdout);
    assert_eq!(dig("outage"), vec![rr("outage", "kms1")]);
}

#[test]
fn an_update_whose_reply_is_lost_is_unknown_and_the_next_scan_settles_it() {
    let bed = bed();
    // Read-back over the proxy, then the delete: applied upstream, the reply never arrives.
    let proxy = proxy(bed.server, vec![Relay::Both, Relay::SwallowReply]).to_string();
    let run = clean_applied("unknown", &["--primary", &proxy]);
    assert_eq!(run.code, 2, "{}", run.stdout);
    let report = run.json();
    let result = &report["results"][0];
    assert_eq!(result["result"], "unknown", "{}", run.stdout);
    assert!(
        result["message"]
            .as_str()
            .unwrap()
            .contains("may or may not have been applied"),
        "{result:#}"
    );
    assert_eq!(
        dig("unknown"),
        vec![rr("unknown", "kms1")],
        "it was applied"
    );
    let f = files("unknown");
    let audit = std::fs::read_to_string(&f.audit).unwrap();
    assert!(audit.contains("\"result\":\"unknown: "), "{audit}");
    let undo = std::fs::read_to_string(&f.undo).unwrap();
    assert!(
        undo.contains("; the outcome of the delete above is unknown"),
        "{undo}"
    );
    // The next scan with the same state file says what became of it.
    let scan = crate::common::run(&[
        "scan",
        &origin("unknown"),
        "--server",
        &bed.server.to_string(),
        "--state",
        f.state.to_str().unwrap(),
        "--format",
        "json",
    ]);
    let notes = scan.json()["notes"].to_string();
    assert!(notes.contains("took effect: the record is gone"), "{notes}");
}

#[test]
fn a_ttl_change_between_scan_and_delete_stops_the_domain() {
    let bed = bed();
    let before = bed.dig_full("ttl");
    assert!(
        before.iter().all(|r| r.contains(" 300 IN SRV ")),
        "{before:?}"
    );
    // Between the scan and the delete, only the RRset's TTL changes.
    let report = clean_with_a_change_in_between("ttl", || {
        nsupdate(
            "ttl",
            &format!(
                "update add _vlmcs._tcp.{z} 900 IN SRV 0 0 1688 kms1.{z}",
                z = origin("ttl")
            ),
        );
    });
    let result = &report.results[0];
    assert_eq!(result.result, vlmcs_audit::clean::ActionOutcome::Skipped);
    assert!(
        result
            .message
            .contains("TTL changed since it was audited (300 → 900)"),
        "{}",
        result.message
    );
    let after = bed.dig_full("ttl");
    assert_eq!(after.len(), before.len(), "{after:?}");
    assert!(
        after.iter().all(|r| r.contains(" 900 IN SRV ")),
        "{after:?}"
    );
    assert!(!files("ttl").undo.exists());
}

#[test]
fn restore_refuses_anything_but_vlmcs_srv_additions_before_sending_anything() {
    let bed = bed();
    let zone = origin("refuse");
    let before = bed.axfr("refuse");
    let dir = tempfile::tempdir().unwrap();
    let good = format!("update add _vlmcs._tcp.{zone} 300 IN SRV 0 0 1688 kms9.{zone}\nsend\n");
    for (owner, why) in [
        (format!("www.{zone}"), "owner"),
        (format!("_ldap._tcp.{zone}"), "owner"),
        (zone.clone(), "owner"),
        (format!("*._tcp.{zone}"), "owner"),
        (format!("_vlmcs\\046_tcp.{zone}"), "owner"),
        (
            "_vlmcs._tcp.elsewhere.test.".to_string(),
            "not inside the zone",
        ),
    ] {
        // A good block first: it must not be sent either, since a later line is refused.
        let text = format!(
            "server 127.0.0.1 {port}\nzone {zone}\n{good}update add {owner} 300 IN SRV 0 0 1688 kms9.{zone}\nsend\n",
            port = bed.server.port()
        );
        let path = dir.path().join("undo.txt");
        std::fs::write(&path, &text).unwrap();
        let run = crate::common::run(&["restore", path.to_str().unwrap(), "--tsig-key", key()]);
        assert_eq!(run.code, 3, "{owner}: {} {}", run.stdout, run.stderr);
        assert!(
            run.stderr.contains("undo.txt:5:") && run.stderr.contains(why),
            "{owner}: {}",
            run.stderr
        );
        assert_eq!(bed.axfr("refuse"), before, "{owner}: the zone changed");
    }
}

#[test]
fn an_undo_file_with_hostile_names_replays_in_nsupdate() {
    use vlmcs_audit::clean::trail::undo_block;
    use vlmcs_audit::dns::parse_presentation;
    let bed = bed();
    let zone = parse_presentation(&origin("hostile")).unwrap();
    let owner = parse_presentation(&format!("_vlmcs._tcp.{}", origin("hostile"))).unwrap();
    let targets = [
        "&calc|%PATH%.h.test.".to_string(),
        "evil\\032name\\;\\$\\(reboot\\)\\\"x.h.test.".to_string(),
        "caf\\195\\169\\010line.h.test.".to_string(),
        format!("plain.{}", origin("hostile")),
    ];
    let mut text = String::from("; header as clean writes it\ncheck-names no\n");
    for target in &targets {
        let record = vlmcs_audit::model::SrvRecord {
            priority: 0,
            weight: 0,
            port: 1688,
            target: vlmcs_audit::model::name::DnsName::parse(target).unwrap(),
            ttl: 300,
        };
        text.push_str(&undo_block(bed.server, &zone, &owner, &record).unwrap());
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("undo.txt");
    std::fs::write(&path, &text).unwrap();
    let status = Command::new("nsupdate")
        .arg("-k")
        .arg(bed.key_file.as_os_str())
        .arg(&path)
        .status()
        .unwrap();
    assert!(status.success(), "nsupdate could not replay:\n{text}");
    // Every target is there, byte for byte (dig prints its own escapes; compare the names).
    let served: Vec<hickory_proto::rr::Name> = bed
        .dig_full("hostile")
        .iter()
        .map(|line| parse_presentation(line.rsplit(' ').next().unwrap()).unwrap())
        .collect();
    for target in &targets {
        let wanted = parse_presentation(target).unwrap();
        assert!(served.contains(&wanted), "{target} missing from {served:?}");
    }
    // And vlmcs-audit's own reader takes the same file.
    let entries = vlmcs_audit::clean::trail::parse_undo(&text, "undo.txt").unwrap();
    assert_eq!(entries.len(), targets.len());
}

#[test]
fn an_audit_log_that_cannot_be_written_stops_the_run_before_the_next_delete() {
    // /dev/full takes the open and fails every write with ENOSPC: a full disk.
    let before = dig("full");
    assert_eq!(before.len(), 3);
    let run = clean_applied("full", &["--audit-log", "/dev/full"]);
    let report = run.json();
    let results: Vec<&str> = report["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["result"].as_str().unwrap())
        .collect();
    // The first delete went out, its line could not be written: nothing more was sent.
    assert_eq!(results, ["deleted", "skipped"], "{}", run.stdout);
    assert!(
        report["results"][1]["message"]
            .as_str()
            .unwrap()
            .contains("the audit log cannot be written"),
        "{}",
        run.stdout
    );
    assert_eq!(dig("full").len(), 2, "only one record may go");
    assert_eq!(run.code, 2, "{}", run.stderr);
    let f = files("full");
    let undo = std::fs::read_to_string(&f.undo).unwrap();
    assert!(undo.contains("; the cleanup stopped here"), "{undo}");
    assert_eq!(undo.matches("update add ").count(), 1, "{undo}");
    // The state remembers it, and the next scan with it says so once.
    let state = std::fs::read_to_string(&f.state).unwrap();
    assert!(state.contains("delete_unaudited"), "{state}");
    let next = clean("full", &["--dead-for", "0"]).json();
    let notes = next["scan"]["notes"].to_string();
    assert!(notes.contains("is not in the audit log"), "{notes}");
    let state = std::fs::read_to_string(&f.state).unwrap();
    assert!(!state.contains("delete_unaudited"), "said once: {state}");
}

#[test]
fn a_fifo_as_the_audit_log_gets_every_line_and_no_sync_error() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("audit.pipe");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::read_to_string(fifo).unwrap())
    };
    let run = clean_applied("fifo", &["--audit-log", fifo.to_str().unwrap()]);
    let lines = reader.join().unwrap();
    assert_eq!(dig("fifo"), vec![rr("fifo", "kms1")], "{}", run.stdout);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(!run.stderr.contains("audit log"), "{}", run.stderr);
    let entries: Vec<Value> = lines
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(entries.len(), 2, "{lines}");
    assert!(entries.iter().all(|e| e["result"] == "ok"), "{lines}");
}

#[test]
fn an_applied_delete_whose_reply_cannot_be_verified_is_unknown() {
    let bed = bed();
    for (zone, relay) in [
        ("badmac", Relay::CorruptMac),
        ("unsignedfail", Relay::UnsignedServfail),
    ] {
        let proxy = proxy(bed.server, vec![Relay::Both, relay]).to_string();
        let run = clean_applied(zone, &["--primary", &proxy]);
        let report = run.json();
        let result = &report["results"][0];
        assert_eq!(result["result"], "unknown", "{zone}: {}", run.stdout);
        assert_eq!(run.code, 2, "{zone}");
        assert_eq!(dig(zone), vec![rr(zone, "kms1")], "{zone}: it was applied");
        let f = files(zone);
        let audit = std::fs::read_to_string(&f.audit).unwrap();
        assert!(audit.contains("\"result\":\"unknown: "), "{zone}: {audit}");
        let undo = std::fs::read_to_string(&f.undo).unwrap();
        assert!(undo.contains("is unknown"), "{zone}: {undo}");
        let state = std::fs::read_to_string(&f.state).unwrap();
        assert!(state.contains("delete_unknown_since"), "{zone}: {state}");
    }
}

/// An undo file of `blocks` (owner-relative target label, TTL) for `zone`, at the bed's server.
fn undo_file_for(dir: &Path, zone: &str, entries: &[(&str, u32)]) -> std::path::PathBuf {
    let origin = origin(zone);
    let mut text = format!("server 127.0.0.1 {}\nzone {origin}\n", bed().server.port());
    for (label, ttl) in entries {
        text.push_str(&format!(
            "update add _vlmcs._tcp.{origin} {ttl} IN SRV 0 0 1688 {label}.{origin}\nsend\n"
        ));
    }
    let path = dir.join(format!("undo-{zone}.txt"));
    std::fs::write(&path, text).unwrap();
    path
}

fn restore_run(undo: &Path, extra: &[&str]) -> (Run, Vec<String>) {
    let mut args = vec![
        "restore",
        undo.to_str().unwrap(),
        "--tsig-key",
        key(),
        "--format",
        "json",
    ];
    args.extend(extra);
    let run = crate::common::run(&args);
    let results = run
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["result"].as_str().unwrap().to_string())
        .collect();
    (run, results)
}

#[test]
fn restore_never_changes_the_ttl_of_records_it_did_not_write() {
    let bed = bed();
    let dir = tempfile::tempdir().unwrap();
    let before = bed.dig_full("rttl");
    assert!(
        before.iter().all(|r| r.contains(" 300 IN SRV ")),
        "{before:?}"
    );
    // A record that is already there, and one whose TTL differs from the live RRset's.
    let undo = undo_file_for(
        dir.path(),
        "rttl",
        &[("kms1", 300), ("back", 2_147_483_647)],
    );
    let (run, results) = restore_run(&undo, &[]);
    assert_eq!(results[0], "already there: nothing sent", "{}", run.stdout);
    assert!(
        results[1].starts_with("refused: the records already at this name have TTL 300"),
        "{}",
        run.stdout
    );
    assert_eq!(run.code, 2);
    assert_eq!(bed.dig_full("rttl"), before, "nothing may change");
    // With --keep-live-ttl the record comes back with the RRset's TTL.
    let (run, results) = restore_run(&undo, &["--keep-live-ttl"]);
    assert_eq!(
        results[1], "restored with the live TTL 300 (the undo file said 2147483647)",
        "{}",
        run.stdout
    );
    assert_eq!(run.code, 0, "{}", run.stdout);
    let after = bed.dig_full("rttl");
    assert_eq!(after.len(), 3, "{after:?}");
    assert!(
        after.iter().all(|r| r.contains(" 300 IN SRV ")),
        "{after:?}"
    );
}

#[test]
fn restore_stops_after_a_run_of_server_failures() {
    let dir = tempfile::tempdir().unwrap();
    // A zone the server does not serve: every read-back is REFUSED.
    let entries: Vec<(String, u32)> = (0..40).map(|i| (format!("h{i}"), 300)).collect();
    let entries: Vec<(&str, u32)> = entries.iter().map(|(l, t)| (l.as_str(), *t)).collect();
    let undo = undo_file_for(dir.path(), "notserved", &entries);
    let (run, results) = restore_run(&undo, &[]);
    assert_eq!(results.len(), 40, "{}", run.stdout);
    let limit = vlmcs_audit::clean::RESTORE_MAX_FAILURES_IN_A_ROW;
    assert!(
        results[..limit]
            .iter()
            .all(|r| r.starts_with("refused: cannot read")),
        "{results:?}"
    );
    assert!(
        results[limit..]
            .iter()
            .all(|r| r.starts_with("not attempted")),
        "{results:?}"
    );
    assert_eq!(run.code, 2);
}
