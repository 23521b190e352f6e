use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, SystemTime};

use super::*;
use crate::model::{
    DomainObservation, DomainPolicy, HostPattern, ProbeObservation, ProbeOutcome, QueryStatus,
    ResolutionError, ServerObservation, SrvRecord, TargetObservation,
};
use crate::state::State;

fn srv(target: &str) -> SrvRecord {
    SrvRecord {
        priority: 0,
        weight: 0,
        port: 1688,
        target: format!("{target}.corp.example.com.").as_str().into(),
        ttl: 3600,
    }
}

fn ip(n: u8) -> IpAddr {
    IpAddr::from([192, 0, 2, n])
}

/// A domain with `hosts`: (name, address byte, outcome); `None` outcome means no address.
fn domain(hosts: &[(&str, u8, Option<ProbeOutcome>)]) -> DomainObservation {
    let records: Vec<SrvRecord> = hosts.iter().map(|(h, _, _)| srv(h)).collect();
    DomainObservation {
        domain: "corp.example.com".into(),
        query_name: "_vlmcs._tcp.corp.example.com.".into(),
        zone: Some("corp.example.com.".into()),
        primary: None,
        servers_from: crate::model::ServersFrom::Configured,
        discovery_error: None,
        servers: vec![ServerObservation {
            name: "ns1".into(),
            records_answered: None,
            alias: None,
            address: SocketAddr::new(ip(53), 53),
            status: QueryStatus::Answer,
            transport: crate::model::Transport::Udp,
            truncated_over_udp: false,
            records: records.clone(),
            response_code: None,
            detail: None,
            duration_ms: 1.0,
        }],
        records,
        targets: hosts
            .iter()
            .map(|(h, n, outcome)| TargetObservation {
                target: srv(h).target,
                source: crate::model::AddressSource::Lookup,
                cname: None,
                addresses: if outcome.is_some() {
                    vec![ip(*n)]
                } else {
                    vec![]
                },
                resolution_error: outcome.is_none().then(|| ResolutionError::NxDomain {
                    name: "gone.".into(),
                }),
            })
            .collect(),
        probes: hosts
            .iter()
            .filter_map(|(h, n, outcome)| {
                outcome.map(|o| ProbeObservation {
                    target: srv(h).target,
                    address: ip(*n),
                    port: 1688,
                    outcome: o,
                    duration_ms: 1.0,
                    connect_ms: None,
                    detail: format!("{o:?}"),
                    transfer_syntax: None,
                    accepts_any_interface: false,
                    emulator_evidence: Vec::new(),
                })
            })
            .collect(),
        dns_ms: 0.0,
        ad: None,
    }
}

fn policy() -> DomainPolicy {
    DomainPolicy {
        authorized: Some(std::sync::Arc::new(
            vec![HostPattern::parse("kms1.corp.example.com").unwrap()].into(),
        )),
        expected: vec![],
        expect_records: true,
        identities: None,
    }
}

fn plan_for(obs: DomainObservation, options: &CleanOptions) -> Plan {
    let policy = policy();
    let report = crate::audit::scan::assemble(vec![(obs, &policy)], true, vec![]);
    let mut state = State::default();
    let now = SystemTime::now();
    state.observe(&report, now);
    plan(&report, &state, now, options)
}

fn now_options() -> CleanOptions {
    CleanOptions {
        dead_for: Duration::ZERO,
        ..CleanOptions::default()
    }
}

fn summary(plan: &Plan) -> Vec<(String, FindingCode, bool)> {
    plan.items
        .iter()
        .map(|i| {
            (
                i.record
                    .target
                    .to_string()
                    .split('.')
                    .next()
                    .unwrap()
                    .to_string(),
                i.reason,
                i.delete,
            )
        })
        .collect()
}

const HEALTHY: Option<ProbeOutcome> = Some(ProbeOutcome::KmsRpc);
const REFUSED: Option<ProbeOutcome> = Some(ProbeOutcome::Refused);
const WEB: Option<ProbeOutcome> = Some(ProbeOutcome::NotRpc);

#[test]
fn failing_records_are_planned_with_their_reason_and_healthy_ones_are_not_listed() {
    let plan = plan_for(
        domain(&[
            ("kms1", 1, HEALTHY),
            ("old", 2, REFUSED),
            ("gone", 3, None),
            ("web", 4, WEB),
            ("kms2", 5, HEALTHY),
        ]),
        &now_options(),
    );
    assert_eq!(
        summary(&plan),
        vec![
            ("old".into(), FindingCode::DeadHost, true),
            ("gone".into(), FindingCode::NoAddress, true),
            ("web".into(), FindingCode::NotKms, true),
            ("kms2".into(), FindingCode::UnauthorizedHost, false),
        ]
    );
    assert!(plan.refused.is_none());
    let rogue = &plan.items[3];
    assert!(
        rogue
            .keep_because
            .as_ref()
            .unwrap()
            .contains("--include-unauthorized")
    );
}

#[test]
fn unauthorized_hosts_are_deleted_only_when_asked() {
    let options = CleanOptions {
        include_unauthorized: true,
        ..now_options()
    };
    let plan = plan_for(
        domain(&[("kms1", 1, HEALTHY), ("kms2", 5, HEALTHY)]),
        &options,
    );
    assert_eq!(
        summary(&plan),
        vec![("kms2".into(), FindingCode::UnauthorizedHost, true)]
    );
}

#[test]
fn grace_period_keeps_fresh_failures() {
    let plan = plan_for(
        domain(&[("kms1", 1, HEALTHY), ("old", 2, REFUSED)]),
        &CleanOptions::default(),
    );
    assert!(!plan.items[0].delete);
    assert!(
        plan.items[0]
            .keep_because
            .as_ref()
            .unwrap()
            .contains("less than --dead-for 1day"),
        "{:?}",
        plan.items[0]
    );
    assert_eq!(plan.items[0].failing_for_s, Some(0));
}

#[test]
fn most_hosts_dead_refuses_everything_unless_forced() {
    let obs = domain(&[
        ("kms1", 1, HEALTHY),
        ("a", 2, REFUSED),
        ("b", 3, Some(ProbeOutcome::ConnectTimeout)),
    ]);
    let plan = plan_for(obs.clone(), &now_options());
    assert!(
        plan.refused
            .as_ref()
            .unwrap()
            .contains("2 of 3 probed hosts look dead (67 %"),
        "{:?}",
        plan.refused
    );
    assert!(plan.items.iter().all(|i| !i.delete));
    let forced = plan_for(
        obs,
        &CleanOptions {
            force: true,
            ..now_options()
        },
    );
    assert!(forced.refused.is_none());
    assert_eq!(forced.deletions().count(), 2);
    // Exactly half is not more than half.
    let half = plan_for(
        domain(&[("kms1", 1, HEALTHY), ("a", 2, REFUSED)]),
        &now_options(),
    );
    assert!(half.refused.is_none());
}

#[test]
fn the_last_record_is_kept_unless_allow_empty() {
    let obs = domain(&[("a", 2, None), ("b", 3, None)]);
    let plan = plan_for(obs.clone(), &now_options());
    assert_eq!(plan.deletions().count(), 1);
    assert!(
        plan.items[1]
            .keep_because
            .as_ref()
            .unwrap()
            .contains("last record")
    );
    let plan = plan_for(
        obs,
        &CleanOptions {
            allow_empty: true,
            ..now_options()
        },
    );
    assert_eq!(plan.deletions().count(), 2);
}

#[test]
fn a_lookup_that_timed_out_is_never_a_deletion_candidate_whatever_the_flags() {
    let mut obs = domain(&[("kms1", 1, HEALTHY), ("gone", 3, None)]);
    obs.targets[1].resolution_error = Some(ResolutionError::LookupFailed(
        "127.0.0.1:53: no answer within 2s".into(),
    ));
    let options = CleanOptions {
        include_unauthorized: true,
        force: true,
        allow_empty: true,
        ..now_options()
    };
    let report = crate::audit::scan::assemble(vec![(obs, &policy())], true, vec![]);
    let verdict = &report.domains[0].verdicts[1];
    assert_eq!(verdict.status, FindingCode::NoAddress);
    assert!(!verdict.certain);
    assert!(
        verdict
            .uncertain_because
            .as_deref()
            .unwrap()
            .contains("no answer within 2s")
    );
    let mut state = State::default();
    let now = SystemTime::now();
    state.observe(&report, now - Duration::from_secs(90 * 24 * 3600));
    state.observe(&report, now);
    let plan = plan(&report, &state, now, &options);
    assert_eq!(plan.deletions().count(), 0, "{plan:#?}");
    // NXDOMAIN and NODATA are proof; each kind is told apart by type, not by its sentence.
    for (error, certain) in [
        (
            ResolutionError::NxDomain {
                name: "gone.".into(),
            },
            true,
        ),
        (ResolutionError::NoData, true),
        (ResolutionError::LookupFailed("SERVFAIL".into()), false),
        (ResolutionError::InvalidName, false),
        (ResolutionError::ChainTooLong, false),
    ] {
        assert_eq!(error.proves_dangling(), certain, "{error}");
        // A saved report reads back to the same kind.
        assert_eq!(ResolutionError::from_text(&error.to_string()), error);
    }
}

#[test]
fn uncertain_evidence_keeps_records() {
    // A lookup that failed is not proof that the name is gone.
    let mut obs = domain(&[("kms1", 1, HEALTHY), ("gone", 3, None)]);
    obs.targets[1].resolution_error = Some(ResolutionError::LookupFailed(
        "127.0.0.1:53: no answer within 2s".into(),
    ));
    let plan = plan_for(obs, &now_options());
    assert!(
        plan.items[0]
            .keep_because
            .as_ref()
            .unwrap()
            .contains("not certain")
    );

    // Servers that disagree: nothing in the domain is touched.
    let mut obs = domain(&[("kms1", 1, HEALTHY), ("old", 2, REFUSED)]);
    let mut other = obs.servers[0].clone();
    other.name = "ns2".into();
    other.records.pop();
    obs.servers.push(other);
    let plan = plan_for(obs, &now_options());
    assert!(
        plan.items[0]
            .keep_because
            .as_ref()
            .unwrap()
            .contains("disagree")
    );

    // A server that failed: same.
    let mut obs = domain(&[("kms1", 1, HEALTHY), ("old", 2, REFUSED)]);
    let mut other = obs.servers[0].clone();
    other.status = QueryStatus::Timeout;
    obs.servers.push(other);
    let plan = plan_for(obs, &now_options());
    assert!(
        plan.items[0]
            .keep_because
            .as_ref()
            .unwrap()
            .contains("not every authoritative server")
    );
}

#[test]
fn root_target_is_a_candidate_and_a_working_alias_is_not() {
    let mut obs = domain(&[("kms1", 1, HEALTHY)]);
    let dot = SrvRecord {
        target: ".".into(),
        ..srv("x")
    };
    obs.records.push(dot.clone());
    obs.servers[0].records.push(dot);
    let plan = plan_for(obs, &now_options());
    assert_eq!(plan.items.len(), 1);
    assert_eq!(plan.items[0].reason, FindingCode::InvalidTarget);
    assert!(plan.items[0].delete);

    let mut obs = domain(&[("alias", 1, HEALTHY)]);
    obs.targets[0].cname = Some("kms1.corp.example.com.".into());
    let policy = DomainPolicy {
        authorized: None,
        ..policy()
    };
    let report = crate::audit::scan::assemble(vec![(obs, &policy)], false, vec![]);
    let mut state = State::default();
    state.observe(&report, SystemTime::now());
    let aliased = super::plan(&report, &state, SystemTime::now(), &now_options());
    assert!(aliased.items.is_empty(), "{:?}", aliased.items);
}

#[test]
fn records_behind_an_alias_are_left_to_the_domain_that_holds_them() {
    let mut obs = domain(&[("kms1", 1, HEALTHY), ("old", 2, REFUSED), ("gone", 3, None)]);
    obs.servers[0].alias = Some("_vlmcs._tcp.other.example.com.".into());
    let plan = plan_for(obs, &now_options());
    assert_eq!(
        summary(&plan),
        vec![
            ("old".into(), FindingCode::DeadHost, false),
            ("gone".into(), FindingCode::NoAddress, false),
        ]
    );
    for item in &plan.items {
        let why = item.keep_because.as_deref().unwrap();
        assert!(
            why.contains("alias (CNAME) of _vlmcs._tcp.other.example.com."),
            "{why}"
        );
    }
}
