//! `vlmcs-audit clean` and `restore` against a real PowerDNS Authoritative Server with TSIG:
//! the third server implementation, and the one that answers every key it cannot verify (a
//! wrong secret, an unknown key name, a clock far off) with a plain, unsigned REFUSED.


use std::path::Path;
use std::sync::OnceLock;

use crate::common::updates::{ServerKind, UpdateBed, origin, rr};

const ZONES: &[(&str, &[&str])] = &[
    ("papply", &["kms1", "dead", "gone", "rogue"]),
    ("pkeys", &["kms1", "dead"]),
    ("pskew", &["kms1", "dead"]),
    ("pnxrrset", &["kms1", "dead"]),
];

static BED: OnceLock<UpdateBed> = OnceLock::new();

fn bed() -> &'static UpdateBed {
    BED.get_or_init(|| crate::common::updates::start(ServerKind::PowerDns, ZONES))
}

#[test]
fn pdns_deletes_dead_and_dangling_and_restore_brings_them_back() {
    let bed = bed();
    let before = bed.dig_full("papply");
    let run = bed.clean(
        "papply",
        &[
            "--dead-for",
            "0",
            "--tsig-key",
            bed.key(),
            "--apply",
            "--yes",
        ],
    );
    // 1: the rogue host is kept (a live host off the allowlist needs --include-unauthorized).
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert_eq!(
        bed.dig("papply"),
        vec![rr("papply", "kms1"), rr("papply", "rogue")],
        "{}",
        run.stdout
    );
    let undo = bed.files("papply").undo;
    let restored = crate::common::run(&["restore", undo.to_str().unwrap(), "--tsig-key", bed.key()]);
    assert_eq!(restored.code, 0, "{}{}", restored.stdout, restored.stderr);
    assert_eq!(bed.dig_full("papply"), before, "TTLs included");
}

/// The three key failures PowerDNS answers alike: each is a key failure (the run stops, exit
/// 2), said as such, never "refused by policy"; nothing changes.
#[test]
fn pdns_key_failures_are_key_failures_not_policy() {
    let bed = bed();
    let before = bed.dig("pkeys");
    let (wrong_secret, unknown_name) = bed.bad_keys("pkeys-keys");
    for key in [&wrong_secret, &unknown_name] {
        let run = bed.clean(
            "pkeys",
            &[
                "--dead-for",
                "0",
                "--apply",
                "--yes",
                "--tsig-key",
                key.to_str().unwrap(),
            ],
        );
        assert_key_failure(&run.stdout, run.code);
        assert_eq!(bed.dig("pkeys"), before, "{}: DNS changed", key.display());
    }
    // A clock two hours off (libfaketime on our side).
    let before = bed.dig("pskew");
    let run = bed.clean_at_clock(
        "pskew",
        "-2h",
        &[
            "--dead-for",
            "0",
            "--tsig-key",
            bed.key(),
            "--apply",
            "--yes",
        ],
    );
    assert_key_failure(&run.stdout, run.code);
    assert_eq!(bed.dig("pskew"), before);
}

fn assert_key_failure(stdout: &str, code: i32) {
    let report: serde_json::Value =
        serde_json::from_str(stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    let message = report["results"][0]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("did not accept our signature") && !message.contains("policy"),
        "{message}"
    );
    assert_eq!(report["results"][0]["result"], "failed");
    assert_eq!(code, 2);
}

/// A delete whose prerequisite no longer holds gets NXRRSET from PowerDNS too (sent directly:
/// `clean` itself reads the RRset back first and would not send it).
#[test]
fn pdns_answers_a_stale_prerequisite_with_nxrrset() {
    use vlmcs_audit::dns::parse_presentation;
    use vlmcs_audit::model::SrvRecord;
    use vlmcs_audit::update::{Change, Destination, UpdateError, send};
    let bed = bed();
    let before = bed.dig("pnxrrset");
    let record = |host: &str| SrvRecord {
        priority: 0,
        weight: 0,
        port: 1688,
        target: vlmcs_audit::name::DnsName::parse(&format!("{host}.{}", origin("pnxrrset")))
            .unwrap(),
        ttl: 300,
    };
    let key = vlmcs_audit::auth::load_key_file(Path::new(bed.key())).unwrap();
    let destination = Destination {
        server: bed.server,
        zone: parse_presentation(&origin("pnxrrset")).unwrap(),
        server_name: None,
    };
    let owner = parse_presentation(&format!("_vlmcs._tcp.{}", origin("pnxrrset"))).unwrap();
    // The audited RRset had a third record that is not there (any more).
    let change = Change::DeleteExact {
        rrset: vec![record("kms1"), record("dead"), record("newhost")],
        victim: record("dead"),
    };
    let outcome = tokio::runtime::Runtime::new().unwrap().block_on(send(
        &destination,
        &owner,
        &change,
        &vlmcs_audit::auth::Auth::Tsig(key),
        std::time::Duration::from_secs(2),
    ));
    assert!(
        matches!(outcome, Err(UpdateError::RrsetChanged)),
        "{outcome:?}"
    );
    assert_eq!(bed.dig("pnxrrset"), before);
}
