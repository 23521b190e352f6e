//! What `clean` and `restore` guarantee on every update server, one test body run against each
//! implementation (BIND 9, Knot DNS, PowerDNS): the plan changes nothing; dead and dangling
//! records go, healthy and rogue ones stay, and `restore` puts back exactly what went (TTLs
//! included); a wrong secret and an unknown key name fail as key failures and change nothing.

use crate::common::run;
use crate::common::updates::{UpdateBed, rr};

/// How one server kind says "this key is wrong".
pub(crate) struct KeyFailures {
    pub(crate) wrong_secret: &'static str,
    pub(crate) unknown_name: &'static str,
}

pub(crate) fn plan_only_changes_nothing(bed: &UpdateBed, zone: &str) {
    let before = bed.dig_full(zone);
    assert_eq!(before.len(), 4, "{before:?}");
    let run = bed.clean(zone, &["--dead-for", "0", "--tsig-key", bed.key()]);
    let report = run.json();
    let planned: Vec<(String, bool)> = report["plan"]["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            let target = i["record"]["target"].as_str().unwrap();
            let host = target.split('.').next().unwrap().to_string();
            (host, i["delete"] == true)
        })
        .collect();
    assert_eq!(
        planned,
        [
            ("dead".to_string(), true),
            ("gone".to_string(), true),
            ("rogue".to_string(), false)
        ],
        "{}",
        run.stdout
    );
    assert_eq!(run.code, 1, "a kept failing record is a warning");
    assert_eq!(bed.dig_full(zone), before, "a plan must not change DNS");
    assert!(!bed.files(zone).undo.exists());
}

pub(crate) fn deletes_dead_and_dangling_and_restore_brings_them_back(bed: &UpdateBed, zone: &str) {
    let before = bed.dig_full(zone);
    let cleaned = bed.clean(
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
    assert_eq!(
        bed.dig(zone),
        vec![rr(zone, "kms1"), rr(zone, "rogue")],
        "{}",
        cleaned.stdout
    );
    let results = cleaned.json()["results"].as_array().unwrap().clone();
    assert_eq!(results.len(), 2, "{}", cleaned.stdout);
    assert!(
        results.iter().all(|r| r["result"] == "deleted"),
        "{}",
        cleaned.stdout
    );
    // The rogue host is kept (a live host off the allowlist needs --include-unauthorized).
    assert_eq!(cleaned.code, 1, "{}{}", cleaned.stdout, cleaned.stderr);
    let undo = bed.files(zone).undo;
    let restored = run(&["restore", undo.to_str().unwrap(), "--tsig-key", bed.key()]);
    assert_eq!(restored.code, 0, "{}{}", restored.stdout, restored.stderr);
    assert_eq!(bed.dig_full(zone), before, "TTLs included");
}

pub(crate) fn bad_keys_fail_and_change_nothing(bed: &UpdateBed, zone: &str, says: &KeyFailures) {
    let before = bed.dig_full(zone);
    let (wrong_secret, unknown_name) = bed.bad_keys(&format!("{zone}-keys"));
    for (key, expected) in [
        (&wrong_secret, says.wrong_secret),
        (&unknown_name, says.unknown_name),
    ] {
        let run = bed.clean(
            zone,
            &[
                "--dead-for",
                "0",
                "--apply",
                "--yes",
                "--tsig-key",
                key.to_str().unwrap(),
            ],
        );
        let report = run.json();
        let message = report["results"][0]["message"].as_str().unwrap_or_default();
        assert!(message.contains(expected), "{expected}: {message}");
        assert!(
            !message.contains("policy"),
            "a key failure, not a policy: {message}"
        );
        assert_eq!(report["results"][0]["result"], "failed");
        // A key failure stops the run: exit 2, and nothing else was attempted.
        assert_eq!(run.code, 2, "{expected}");
        assert_eq!(bed.dig_full(zone), before, "{expected}: DNS changed");
    }
}

/// The three tests for one server kind, against its bed and its zones `<prefix>plan`,
/// `<prefix>apply` and `<prefix>keys`.
macro_rules! every_server {
    ($kind:ident, $bed:path, $prefix:literal, $says:expr) => {
        mod $kind {
            use super::*;

            #[test]
            fn plan_only_changes_nothing() {
                super::plan_only_changes_nothing($bed(), concat!($prefix, "plan"));
            }

            #[test]
            fn deletes_dead_and_dangling_and_restore_brings_them_back() {
                super::deletes_dead_and_dangling_and_restore_brings_them_back(
                    $bed(),
                    concat!($prefix, "apply"),
                );
            }

            #[test]
            fn bad_keys_fail_and_change_nothing() {
                super::bad_keys_fail_and_change_nothing($bed(), concat!($prefix, "keys"), &$says);
            }
        }
    };
}

const RFC_8945: KeyFailures = KeyFailures {
    wrong_secret: "BADSIG",
    unknown_name: "BADKEY",
};

every_server!(bind, crate::clean::bed, "e", RFC_8945);
every_server!(knot, crate::clean_knot::bed, "k", RFC_8945);
// PowerDNS answers both with an unsigned REFUSED.
every_server!(
    powerdns,
    crate::clean_pdns::bed,
    "p",
    KeyFailures {
        wrong_secret: "did not accept our signature",
        unknown_name: "did not accept our signature",
    }
);
