use std::net::{IpAddr, SocketAddr};

use super::*;
use crate::model::{HostPattern, ProbeObservation, ServerObservation, TargetObservation};

fn srv(priority: u16, weight: u16, port: u16, target: &str) -> SrvRecord {
    SrvRecord {
        priority,
        weight,
        port,
        target: target.into(),
        ttl: 3600,
    }
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn server(n: u8, status: QueryStatus, records: Vec<SrvRecord>) -> ServerObservation {
    ServerObservation {
        records_answered: None,
        alias: None,
        name: format!("ns{n}.example.com."),
        address: SocketAddr::new(ip(&format!("192.0.2.{n}")), 53),
        status,
        transport: crate::model::Transport::Udp,
        truncated_over_udp: false,
        records,
        response_code: None,
        detail: None,
        duration_ms: 1.0,
    }
}

fn target(name: &str, addresses: &[&str]) -> TargetObservation {
    TargetObservation {
        target: name.into(),
        source: crate::model::AddressSource::Lookup,
        cname: None,
        addresses: addresses.iter().map(|a| ip(a)).collect(),
        resolution_error: if addresses.is_empty() {
            Some(crate::model::ResolutionError::NxDomain {
                name: name.to_string(),
            })
        } else {
            None
        },
    }
}

fn probe(target: &str, address: &str, port: u16, outcome: ProbeOutcome) -> ProbeObservation {
    ProbeObservation {
        target: target.into(),
        address: ip(address),
        port,
        outcome,
        duration_ms: 3.0,
        connect_ms: Some(1.0),
        detail: format!("{outcome:?}"),
        transfer_syntax: (outcome == ProbeOutcome::KmsRpc).then(|| "NDR".into()),
        accepts_any_interface: false,
        emulator_evidence: Vec::new(),
    }
}

/// A domain whose one server returned `records`, with the given targets and probes.
fn domain(
    records: Vec<SrvRecord>,
    targets: Vec<TargetObservation>,
    probes: Vec<ProbeObservation>,
) -> DomainObservation {
    DomainObservation {
        domain: "corp.example.com".into(),
        query_name: "_vlmcs._tcp.corp.example.com.".into(),
        zone: Some("corp.example.com.".into()),
        primary: None,
        servers_from: crate::model::ServersFrom::Configured,
        discovery_error: None,
        servers: vec![server(1, QueryStatus::Answer, records.clone())],
        records,
        targets,
        probes,
        dns_ms: 0.0,
        ad: None,
    }
}

fn healthy_domain() -> DomainObservation {
    domain(
        vec![srv(0, 0, 1688, "kms1.corp.example.com.")],
        vec![target("kms1.corp.example.com.", &["192.0.2.10"])],
        vec![probe(
            "kms1.corp.example.com.",
            "192.0.2.10",
            1688,
            ProbeOutcome::KmsRpc,
        )],
    )
}

fn no_allowlist() -> DomainPolicy {
    DomainPolicy {
        authorized: None,
        expected: vec![],
        expect_records: true,
        identities: None,
    }
}

fn allow(entries: &[&str]) -> DomainPolicy {
    DomainPolicy {
        authorized: Some(std::sync::Arc::new(
            entries
                .iter()
                .map(|e| HostPattern::parse(e).unwrap())
                .collect(),
        )),
        expected: vec![],
        expect_records: true,
        identities: None,
    }
}

fn codes(findings: &[Finding]) -> Vec<(FindingCode, Severity)> {
    findings.iter().map(|f| (f.code, f.severity)).collect()
}

#[test]
fn one_live_host_without_allowlist_is_healthy() {
    let (findings, summary) = classify(&healthy_domain(), &no_allowlist());
    assert_eq!(codes(&findings), vec![(FindingCode::Healthy, Severity::Ok)]);
    let f = &findings[0];
    assert_eq!(f.target.as_deref(), Some("kms1.corp.example.com."));
    assert_eq!(f.port, Some(1688));
    assert_eq!(f.address, Some(ip("192.0.2.10")));
    assert!(f.detail.contains("no allowlist"), "{}", f.detail);
    assert_eq!(summary.healthy, 1);
    assert_eq!(summary.worst, Some(Severity::Ok));
    assert!(summary.complete);
}

#[test]
fn allowlisted_by_name_or_address_is_healthy() {
    for entry in [
        "kms1.corp.example.com",
        "KMS1.Corp.Example.com.",
        "192.0.2.10",
        "192.0.2.0/24",
    ] {
        let (findings, _) = classify(&healthy_domain(), &allow(&[entry]));
        assert_eq!(
            codes(&findings),
            vec![(FindingCode::Healthy, Severity::Ok)],
            "{entry}"
        );
    }
}

#[test]
fn live_host_missing_from_allowlist_is_unauthorized_and_leaves_no_healthy_host() {
    let (findings, summary) = classify(&healthy_domain(), &allow(&["kms9.corp.example.com"]));
    assert_eq!(
        codes(&findings),
        vec![
            (FindingCode::UnauthorizedHost, Severity::Critical),
            (FindingCode::NoHealthyHost, Severity::Critical),
        ]
    );
    assert!(findings[0].detail.contains("0xC004C008"));
    assert_eq!(summary.unauthorized, 1);
    assert_eq!(summary.healthy, 0);
}

#[test]
fn unauthorized_host_next_to_a_healthy_one() {
    let obs = domain(
        vec![
            srv(0, 0, 1688, "kms1.corp.example.com."),
            srv(0, 0, 1688, "pc42.corp.example.com."),
        ],
        vec![
            target("kms1.corp.example.com.", &["192.0.2.10"]),
            target("pc42.corp.example.com.", &["192.0.2.42"]),
        ],
        vec![
            probe(
                "kms1.corp.example.com.",
                "192.0.2.10",
                1688,
                ProbeOutcome::KmsRpc,
            ),
            probe(
                "pc42.corp.example.com.",
                "192.0.2.42",
                1688,
                ProbeOutcome::KmsRpc,
            ),
        ],
    );
    let (findings, _) = classify(&obs, &allow(&["kms1.corp.example.com"]));
    assert_eq!(
        codes(&findings),
        vec![
            (FindingCode::Healthy, Severity::Ok),
            (FindingCode::UnauthorizedHost, Severity::Critical),
        ]
    );
    assert_eq!(
        findings[1].target.as_deref(),
        Some("pc42.corp.example.com.")
    );
}

#[test]
fn dead_outcomes_are_dead_hosts() {
    for outcome in [
        ProbeOutcome::Refused,
        ProbeOutcome::Unreachable,
        ProbeOutcome::ConnectTimeout,
    ] {
        let obs = domain(
            vec![srv(0, 0, 1688, "old.corp.example.com.")],
            vec![target("old.corp.example.com.", &["192.0.2.20"])],
            vec![probe("old.corp.example.com.", "192.0.2.20", 1688, outcome)],
        );
        let (findings, summary) = classify(&obs, &no_allowlist());
        assert_eq!(
            codes(&findings),
            vec![
                (FindingCode::DeadHost, Severity::Warning),
                (FindingCode::NoHealthyHost, Severity::Critical),
            ],
            "{outcome:?}"
        );
        assert_eq!(summary.dead, 1);
    }
}

#[test]
fn open_port_without_kms_rpc_is_not_kms() {
    for outcome in [
        ProbeOutcome::RpcRejected,
        ProbeOutcome::RpcNak,
        ProbeOutcome::NotRpc,
        ProbeOutcome::Silent,
        ProbeOutcome::Closed,
    ] {
        let obs = domain(
            vec![srv(0, 0, 1688, "web.corp.example.com.")],
            vec![target("web.corp.example.com.", &["192.0.2.30"])],
            vec![probe("web.corp.example.com.", "192.0.2.30", 1688, outcome)],
        );
        let (findings, summary) = classify(&obs, &no_allowlist());
        assert_eq!(findings[0].code, FindingCode::NotKms, "{outcome:?}");
        assert_eq!(findings[0].severity, Severity::Warning);
        assert_eq!(summary.not_kms, 1);
        assert_eq!(findings.last().unwrap().code, FindingCode::NoHealthyHost);
    }
}

#[test]
fn dead_host_next_to_a_healthy_one_is_only_a_warning() {
    let mut obs = healthy_domain();
    obs.records.push(srv(10, 0, 1688, "old.corp.example.com."));
    obs.targets
        .push(target("old.corp.example.com.", &["192.0.2.20"]));
    obs.probes.push(probe(
        "old.corp.example.com.",
        "192.0.2.20",
        1688,
        ProbeOutcome::Refused,
    ));
    obs.servers[0].records = obs.records.clone();
    let (findings, summary) = classify(&obs, &no_allowlist());
    assert_eq!(
        codes(&findings),
        vec![
            (FindingCode::Healthy, Severity::Ok),
            (FindingCode::DeadHost, Severity::Warning)
        ]
    );
    assert_eq!(summary.worst, Some(Severity::Warning));
}

#[test]
fn every_address_of_a_target_is_judged_on_its_own() {
    let obs = domain(
        vec![srv(0, 0, 1688, "kms1.corp.example.com.")],
        vec![target(
            "kms1.corp.example.com.",
            &["192.0.2.10", "2001:db8::10"],
        )],
        vec![
            probe(
                "kms1.corp.example.com.",
                "192.0.2.10",
                1688,
                ProbeOutcome::KmsRpc,
            ),
            probe(
                "kms1.corp.example.com.",
                "2001:db8::10",
                1688,
                ProbeOutcome::ConnectTimeout,
            ),
        ],
    );
    let (findings, summary) = classify(&obs, &no_allowlist());
    assert_eq!(
        codes(&findings),
        vec![
            (FindingCode::Healthy, Severity::Ok),
            (FindingCode::DeadHost, Severity::Warning)
        ]
    );
    assert_eq!(findings[1].address, Some(ip("2001:db8::10")));
    assert!(
        findings[1].detail.contains("[2001:db8::10]:1688"),
        "{}",
        findings[1].detail
    );
    assert_eq!(summary.hosts_probed, 2);
}

#[test]
fn dangling_target_is_no_address() {
    let obs = domain(
        vec![srv(0, 0, 1688, "gone.corp.example.com.")],
        vec![target("gone.corp.example.com.", &[])],
        vec![],
    );
    let (findings, _) = classify(&obs, &no_allowlist());
    assert_eq!(
        codes(&findings),
        vec![
            (FindingCode::NoAddress, Severity::Warning),
            (FindingCode::NoHealthyHost, Severity::Critical),
        ]
    );
    assert!(findings[0].detail.contains("NXDOMAIN"));
    assert_eq!(findings[0].address, None);
}

#[test]
fn root_target_is_invalid_and_not_probed() {
    let obs = domain(vec![srv(0, 0, 0, ".")], vec![], vec![]);
    let (findings, _) = classify(&obs, &no_allowlist());
    assert_eq!(
        codes(&findings),
        vec![
            (FindingCode::InvalidTarget, Severity::Warning),
            (FindingCode::NoHealthyHost, Severity::Critical),
        ]
    );
    assert!(findings[0].detail.contains("RFC 2782"));
}

#[test]
fn cname_target_is_invalid_but_its_addresses_are_still_probed() {
    let mut t = target("alias.corp.example.com.", &["192.0.2.10"]);
    t.cname = Some("kms1.corp.example.com.".into());
    let obs = domain(
        vec![srv(0, 0, 1688, "alias.corp.example.com.")],
        vec![t],
        vec![probe(
            "alias.corp.example.com.",
            "192.0.2.10",
            1688,
            ProbeOutcome::KmsRpc,
        )],
    );
    let (findings, _) = classify(&obs, &no_allowlist());
    assert_eq!(
        codes(&findings),
        vec![
            (FindingCode::InvalidTarget, Severity::Warning),
            (FindingCode::Healthy, Severity::Ok)
        ]
    );
    assert!(
        findings[0]
            .detail
            .contains("CNAME to kms1.corp.example.com.")
    );
}

#[test]
fn same_target_twice_is_a_duplicate_reported_once() {
    let obs = domain(
        vec![
            srv(0, 0, 1688, "kms1.corp.example.com."),
            srv(0, 50, 1688, "KMS1.corp.example.com."),
            srv(10, 0, 1688, "kms1.corp.example.com."),
        ],
        vec![target("kms1.corp.example.com.", &["192.0.2.10"])],
        vec![probe(
            "kms1.corp.example.com.",
            "192.0.2.10",
            1688,
            ProbeOutcome::KmsRpc,
        )],
    );
    let (findings, summary) = classify(&obs, &no_allowlist());
    assert_eq!(
        codes(&findings),
        vec![
            (FindingCode::DuplicateRecord, Severity::Warning),
            (FindingCode::Healthy, Severity::Ok)
        ]
    );
    assert!(
        findings[0].detail.contains("3 times"),
        "{}",
        findings[0].detail
    );
    // The one host was probed and counted once.
    assert_eq!(summary.hosts_probed, 1);
}

#[test]
fn two_names_for_one_address_is_an_informational_duplicate() {
    let obs = domain(
        vec![
            srv(0, 0, 1688, "kms1.corp.example.com."),
            srv(0, 0, 1688, "kms.corp.example.com."),
        ],
        vec![
            target("kms1.corp.example.com.", &["192.0.2.10"]),
            target("kms.corp.example.com.", &["192.0.2.10"]),
        ],
        vec![
            probe(
                "kms1.corp.example.com.",
                "192.0.2.10",
                1688,
                ProbeOutcome::KmsRpc,
            ),
            probe(
                "kms.corp.example.com.",
                "192.0.2.10",
                1688,
                ProbeOutcome::KmsRpc,
            ),
        ],
    );
    let (findings, _) = classify(&obs, &no_allowlist());
    let dup: Vec<_> = findings
        .iter()
        .filter(|f| f.code == FindingCode::DuplicateRecord)
        .collect();
    assert_eq!(dup.len(), 1);
    assert_eq!(dup[0].severity, Severity::Info);
    assert_eq!(dup[0].address, Some(ip("192.0.2.10")));
}

#[test]
fn nonstandard_port_is_informational() {
    let obs = domain(
        vec![srv(0, 0, 11688, "kms1.corp.example.com.")],
        vec![target("kms1.corp.example.com.", &["192.0.2.10"])],
        vec![probe(
            "kms1.corp.example.com.",
            "192.0.2.10",
            11688,
            ProbeOutcome::KmsRpc,
        )],
    );
    let (findings, _) = classify(&obs, &no_allowlist());
    assert_eq!(
        codes(&findings),
        vec![
            (FindingCode::NonstandardPort, Severity::Info),
            (FindingCode::Healthy, Severity::Ok)
        ]
    );
    assert_eq!(findings[0].port, Some(11688));
}

#[test]
fn kms_emulator_is_flagged_but_still_serves() {
    let mut obs = healthy_domain();
    obs.probes[0].accepts_any_interface = true;
    let (findings, _) = classify(&obs, &no_allowlist());
    assert_eq!(
        codes(&findings),
        vec![
            (FindingCode::KmsEmulator, Severity::Warning),
            (FindingCode::Healthy, Severity::Ok)
        ]
    );
}

#[test]
fn one_strong_tell_makes_an_emulator_supporting_ones_alone_only_a_possibility() {
    use crate::model::{EmulatorEvidence, EmulatorTell};
    let version = EmulatorEvidence::new(EmulatorTell::AcceptsWrongVersion, "took v2.0");
    let frags = EmulatorEvidence::new(EmulatorTell::EchoesFragmentSizes, "echoed 65535");
    let maybe = EmulatorEvidence::new(EmulatorTell::EchoesMaybeFlag, "echoed 0x40");

    let mut obs = healthy_domain();
    obs.probes[0].emulator_evidence = vec![version.clone(), frags.clone()];
    let (findings, summary) = classify(&obs, &no_allowlist());
    assert_eq!(
        codes(&findings),
        vec![
            (FindingCode::KmsEmulator, Severity::Warning),
            (FindingCode::Healthy, Severity::Ok)
        ]
    );
    assert!(
        findings[0].detail.contains("took v2.0"),
        "{}",
        findings[0].detail
    );
    assert!(
        findings[0].detail.contains("Also: echoed 65535"),
        "{}",
        findings[0].detail
    );
    assert!(
        findings[0].detail.contains("not checked against"),
        "{}",
        findings[0].detail
    );
    assert_eq!(summary.healthy, 1);
    assert!(obs.probes[0].is_emulator());

    obs.probes[0].emulator_evidence = vec![frags, maybe];
    let (findings, _) = classify(&obs, &no_allowlist());
    assert_eq!(
        codes(&findings),
        vec![
            (FindingCode::PossibleEmulator, Severity::Info),
            (FindingCode::Healthy, Severity::Ok)
        ]
    );
    assert!(findings[0].detail.contains("echoed 65535; echoed 0x40"));
    assert!(!obs.probes[0].is_emulator());
}

#[test]
fn nxdomain_and_nodata_are_no_records() {
    for status in [QueryStatus::NxDomain, QueryStatus::NoData] {
        let mut obs = domain(vec![], vec![], vec![]);
        obs.servers[0].status = status;
        let (findings, summary) = classify(&obs, &no_allowlist());
        assert_eq!(
            codes(&findings),
            vec![(FindingCode::NoRecords, Severity::Critical)],
            "{status:?}"
        );
        assert!(findings[0].detail.contains("0x8007232B"));
        let expected = if status == QueryStatus::NxDomain {
            "NXDOMAIN"
        } else {
            "no SRV records"
        };
        assert!(
            findings[0].detail.contains(expected),
            "{}",
            findings[0].detail
        );
        assert!(summary.complete);
    }
}

#[test]
fn no_records_in_a_search_domain_nobody_asked_for_is_informational() {
    let mut obs = domain(vec![], vec![], vec![]);
    obs.servers[0].status = QueryStatus::NxDomain;
    let mut policy = no_allowlist();
    policy.expect_records = false;
    let (findings, _) = classify(&obs, &policy);
    assert_eq!(
        codes(&findings),
        vec![(FindingCode::NoRecords, Severity::Info)]
    );
}

#[test]
fn failing_server_next_to_an_answering_one_is_a_warning() {
    for status in [
        QueryStatus::ServFail,
        QueryStatus::Refused,
        QueryStatus::NotAuthoritative,
        QueryStatus::Timeout,
        QueryStatus::NetworkError,
        QueryStatus::OtherError,
    ] {
        let mut obs = healthy_domain();
        obs.servers.push(server(2, status, vec![]));
        let (findings, summary) = classify(&obs, &no_allowlist());
        assert_eq!(
            codes(&findings),
            vec![
                (FindingCode::ServerFailure, Severity::Warning),
                (FindingCode::Healthy, Severity::Ok)
            ],
            "{status:?}"
        );
        assert!(findings[0].detail.contains(status.describe()));
        assert!(summary.complete);
    }
}

#[test]
fn every_server_failing_leaves_the_domain_incomplete() {
    let mut obs = domain(vec![], vec![], vec![]);
    obs.servers = vec![
        server(1, QueryStatus::Timeout, vec![]),
        server(2, QueryStatus::ServFail, vec![]),
    ];
    let (findings, summary) = classify(&obs, &no_allowlist());
    assert_eq!(
        codes(&findings),
        vec![
            (FindingCode::ServerFailure, Severity::Critical),
            (FindingCode::ServerFailure, Severity::Critical),
        ]
    );
    assert!(!summary.complete);
}

#[test]
fn discovery_failure_leaves_the_domain_incomplete() {
    let mut obs = domain(vec![], vec![], vec![]);
    obs.servers.clear();
    obs.discovery_error = Some("SOA lookup timed out".into());
    let (findings, summary) = classify(&obs, &no_allowlist());
    assert_eq!(
        codes(&findings),
        vec![(FindingCode::ServerFailure, Severity::Critical)]
    );
    assert!(findings[0].detail.contains("SOA lookup timed out"));
    assert!(!summary.complete);
}

#[test]
fn servers_that_disagree_are_reported_per_record() {
    let mut obs = healthy_domain();
    obs.records.push(srv(0, 0, 1688, "kms2.corp.example.com."));
    obs.targets
        .push(target("kms2.corp.example.com.", &["192.0.2.11"]));
    obs.probes.push(probe(
        "kms2.corp.example.com.",
        "192.0.2.11",
        1688,
        ProbeOutcome::KmsRpc,
    ));
    obs.servers[0].records = obs.records.clone();
    obs.servers.push(server(
        2,
        QueryStatus::Answer,
        vec![srv(0, 0, 1688, "kms1.corp.example.com.")],
    ));
    let (findings, _) = classify(&obs, &no_allowlist());
    let disagree: Vec<_> = findings
        .iter()
        .filter(|f| f.code == FindingCode::ServerDisagreement)
        .collect();
    assert_eq!(disagree.len(), 1);
    assert_eq!(
        disagree[0].target.as_deref(),
        Some("kms2.corp.example.com.")
    );
    assert!(
        disagree[0].detail.contains("not by ns2.example.com."),
        "{}",
        disagree[0].detail
    );
}

#[test]
fn nodata_on_one_server_and_records_on_another_disagree() {
    let mut obs = healthy_domain();
    obs.servers.push(server(2, QueryStatus::NxDomain, vec![]));
    let (findings, _) = classify(&obs, &no_allowlist());
    assert!(
        findings
            .iter()
            .any(|f| f.code == FindingCode::ServerDisagreement)
    );
}

#[test]
fn ttl_differences_are_not_disagreement() {
    let mut obs = healthy_domain();
    let mut other = obs.records.clone();
    other[0].ttl = 60;
    obs.servers.push(server(2, QueryStatus::Answer, other));
    let (findings, _) = classify(&obs, &no_allowlist());
    assert_eq!(codes(&findings), vec![(FindingCode::Healthy, Severity::Ok)]);
}

#[test]
fn expected_host_not_published_is_missing() {
    let mut policy = allow(&[
        "kms1.corp.example.com",
        "kms2.corp.example.com",
        "192.0.2.99",
    ]);
    policy.expected = [
        "kms1.corp.example.com",
        "kms2.corp.example.com",
        "192.0.2.99",
        "192.0.2.10",
    ]
    .iter()
    .map(|e| HostPattern::parse(e).unwrap())
    .collect();
    let (findings, _) = classify(&healthy_domain(), &policy);
    assert_eq!(
        codes(&findings),
        vec![
            (FindingCode::Healthy, Severity::Ok),
            (FindingCode::AuthorizedHostMissing, Severity::Warning),
            (FindingCode::AuthorizedHostMissing, Severity::Warning),
        ]
    );
    assert_eq!(
        findings[1].target.as_deref(),
        Some("kms2.corp.example.com.")
    );
    assert_eq!(findings[2].address, Some(ip("192.0.2.99")));
}

#[test]
fn expected_host_in_an_empty_domain_is_missing_too() {
    let mut obs = domain(vec![], vec![], vec![]);
    obs.servers[0].status = QueryStatus::NoData;
    let mut policy = allow(&["kms1.corp.example.com"]);
    policy.expected = vec![HostPattern::parse("kms1.corp.example.com").unwrap()];
    let (findings, _) = classify(&obs, &policy);
    assert_eq!(
        codes(&findings),
        vec![
            (FindingCode::NoRecords, Severity::Critical),
            (FindingCode::AuthorizedHostMissing, Severity::Warning),
        ]
    );
}

#[test]
fn every_code_has_a_distinct_kebab_case_spelling() {
    let mut seen = std::collections::BTreeSet::new();
    for code in FindingCode::ALL {
        let json = serde_json::to_string(&code).unwrap();
        assert_eq!(json, format!("\"{}\"", code.as_str()));
        assert!(
            code.as_str()
                .chars()
                .all(|c| c.is_ascii_lowercase() || c == '-')
        );
        assert!(seen.insert(code.as_str()));
    }
}

#[test]
fn host_patterns_reject_garbage() {
    assert!(HostPattern::parse("").is_err());
    assert!(HostPattern::parse("kms 1.corp").is_err());
    assert!(HostPattern::parse("kms;rm -rf /").is_err());
    assert!(HostPattern::parse("a..b").is_err());
    assert_eq!(
        HostPattern::parse("10.0.0.5").unwrap().to_string(),
        "10.0.0.5"
    );
    assert_eq!(
        HostPattern::parse("10.0.0.0/8").unwrap().to_string(),
        "10.0.0.0/8"
    );
    assert_eq!(
        HostPattern::parse("KMS.Corp.").unwrap().to_string(),
        "kms.corp"
    );
}

#[test]
fn exit_codes_follow_the_nagios_convention() {
    use crate::model::Report;
    assert_eq!(Report::compute_exit_code(true, Severity::Ok), 0);
    assert_eq!(Report::compute_exit_code(true, Severity::Info), 0);
    assert_eq!(Report::compute_exit_code(true, Severity::Warning), 1);
    assert_eq!(Report::compute_exit_code(true, Severity::Critical), 2);
    assert_eq!(Report::compute_exit_code(false, Severity::Ok), 3);
}

#[test]
fn an_alias_is_reported_and_never_taken_for_missing_records() {
    // Followed in the answer: the records are examined, the alias is an info.
    let mut followed = healthy_domain();
    followed.servers[0].alias = Some("_vlmcs._tcp.hub.example.com.".into());
    let (findings, summary) = classify(&followed, &no_allowlist());
    assert_eq!(
        codes(&findings),
        vec![
            (FindingCode::SrvAlias, Severity::Info),
            (FindingCode::Healthy, Severity::Ok)
        ]
    );
    assert!(summary.complete);
    // Leading out of what the server answers: a warning, no "no-records", not complete.
    let mut unfollowed = domain(Vec::new(), Vec::new(), Vec::new());
    unfollowed.servers[0].status = QueryStatus::NoData;
    unfollowed.servers[0].alias = Some("_vlmcs._tcp.example.org.".into());
    let (findings, summary) = classify(&unfollowed, &no_allowlist());
    assert_eq!(
        codes(&findings),
        vec![(FindingCode::SrvAlias, Severity::Warning)]
    );
    assert!(
        findings[0]
            .detail
            .contains("scan the domain of _vlmcs._tcp.example.org.")
    );
    assert!(!summary.complete);
}

#[test]
fn an_address_written_as_a_target_name_is_said_to_be_one() {
    let obs = domain(
        vec![srv(0, 0, 1688, "10.0.0.5.")],
        vec![target("10.0.0.5.", &[])],
        Vec::new(),
    );
    let (findings, _) = classify(&obs, &no_allowlist());
    assert_eq!(findings[0].code, FindingCode::NoAddress);
    assert!(
        findings[0]
            .detail
            .contains("the target is the address 10.0.0.5 written as a name"),
        "{}",
        findings[0].detail
    );
    // An ordinary dangling name gets no such hint.
    let obs = domain(
        vec![srv(0, 0, 1688, "gone.corp.example.com.")],
        vec![target("gone.corp.example.com.", &[])],
        Vec::new(),
    );
    let (findings, _) = classify(&obs, &no_allowlist());
    assert!(!findings[0].detail.contains("written as a name"));
}
