//! `vlmcs-audit clean` and `restore` against a real Knot DNS with TSIG: the same guarantees as
//! with BIND, from a second server implementation.


use std::sync::OnceLock;

use crate::common::updates::{ServerKind, UpdateBed, rr};

const ZONES: &[(&str, &[&str])] = &[
    ("kplan", &["kms1", "dead", "gone", "rogue"]),
    ("kapply", &["kms1", "dead", "gone", "rogue"]),
    ("kkeys", &["kms1", "dead"]),
];

static BED: OnceLock<UpdateBed> = OnceLock::new();

fn bed() -> &'static UpdateBed {
    BED.get_or_init(|| crate::common::updates::start(ServerKind::Knot, ZONES))
}

#[test]
fn knot_plan_only_changes_nothing() {
    let bed = bed();
    let before = bed.dig("kplan");
    assert_eq!(before.len(), 4);
    let run = bed.clean("kplan", &["--dead-for", "0", "--tsig-key", bed.key()]);
    let report = run.json();
    let deleting = report["plan"]["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["delete"] == true)
        .count();
    assert_eq!(deleting, 2, "{}", run.stdout);
    assert_eq!(bed.dig("kplan"), before);
}

#[test]
fn knot_deletes_dead_and_dangling_and_restore_brings_them_back() {
    let bed = bed();
    let before = bed.dig("kapply");
    let run = bed.clean(
        "kapply",
        &[
            "--dead-for",
            "0",
            "--tsig-key",
            bed.key(),
            "--apply",
            "--yes",
        ],
    );
    assert_eq!(
        bed.dig("kapply"),
        vec![rr("kapply", "kms1"), rr("kapply", "rogue")],
        "{}",
        run.stdout
    );
    let report = run.json();
    assert!(
        report["results"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["result"] == "deleted"),
        "{}",
        run.stdout
    );
    let undo = bed.files("kapply").undo;
    let restored = crate::common::run(&["restore", undo.to_str().unwrap(), "--tsig-key", bed.key()]);
    assert_eq!(restored.code, 0, "{}{}", restored.stdout, restored.stderr);
    assert_eq!(bed.dig("kapply"), before);
}

#[test]
fn knot_bad_keys_fail_clearly_and_change_nothing() {
    let bed = bed();
    let before = bed.dig("kkeys");
    let (wrong_secret, unknown_name) = bed.bad_keys("kkeys-keys");
    for (args, expected) in [
        (vec!["--tsig-key", wrong_secret.to_str().unwrap()], "BADSIG"),
        (vec!["--tsig-key", unknown_name.to_str().unwrap()], "BADKEY"),
        (vec!["--no-auth"], "authentication"),
    ] {
        let mut argv = vec!["--dead-for", "0", "--apply", "--yes"];
        argv.extend(&args);
        let run = bed.clean("kkeys", &argv);
        let report = run.json();
        let message = report["results"][0]["message"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        assert!(message.contains(expected), "{expected}: {message}");
        assert_eq!(run.code, 2);
        assert_eq!(bed.dig("kkeys"), before, "{expected}: DNS changed");
    }
}
