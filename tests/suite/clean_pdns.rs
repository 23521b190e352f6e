//! `vlmcs-audit clean` and `restore` against a real PowerDNS Authoritative Server with TSIG:
//! the third server implementation, and the one that answers every key it cannot verify (a
//! wrong secret, an unknown key name, a clock far off) with a plain, unsigned REFUSED.

use std::path::Path;
use std::sync::OnceLock;

use crate::common::updates::{ServerKind, UpdateBed, origin};

const ZONES: &[(&str, &[&str])] = &[
    ("pplan", &["kms1", "dead", "gone", "rogue"]),
    ("papply", &["kms1", "dead", "gone", "rogue"]),
    ("pkeys", &["kms1", "dead"]),
    ("pskew", &["kms1", "dead"]),
    ("pnxrrset", &["kms1", "dead"]),
];

static BED: OnceLock<UpdateBed> = OnceLock::new();

pub(crate) fn bed() -> &'static UpdateBed {
    BED.get_or_init(|| crate::common::updates::start(ServerKind::PowerDns, ZONES))
}

/// The third key failure PowerDNS answers with an unsigned REFUSED (a wrong secret and an
/// unknown key name are in `every_server`): a clock two hours off (libfaketime on our side).
/// A key failure (the run stops, exit 2), said as such, never "refused by policy".
#[test]
fn pdns_clock_skew_is_a_key_failure_not_policy() {
    let bed = bed();
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
    use vlmcs_audit::dns::update::{Change, Destination, UpdateError, send};
    use vlmcs_audit::model::SrvRecord;
    let bed = bed();
    let before = bed.dig("pnxrrset");
    let record = |host: &str| SrvRecord {
        priority: 0,
        weight: 0,
        port: 1688,
        target: vlmcs_audit::model::name::DnsName::parse(&format!("{host}.{}", origin("pnxrrset")))
            .unwrap(),
        ttl: 300,
    };
    let key = vlmcs_audit::dns::auth::load_key_file(Path::new(bed.key()), "the test").unwrap();
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
        &vlmcs_audit::dns::auth::Auth::Tsig(key),
        std::time::Duration::from_secs(2),
    ));
    assert!(
        matches!(outcome, Err(UpdateError::RrsetChanged)),
        "{outcome:?}"
    );
    assert_eq!(bed.dig("pnxrrset"), before);
}
