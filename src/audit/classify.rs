//! Classification: a pure function from what was observed about one domain to findings.
//! Nothing here does I/O, so every rule is unit-tested with hand-built observations.
//!
//! "Where do we decide a host is dead?" — here, and only here.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use crate::model::name::DnsName;
use crate::model::{
    DomainObservation, DomainPolicy, DomainSummary, Finding, FindingCode, ProbeObservation,
    ProbeOutcome, QueryStatus, RecordVerdict, ServerObservation, Severity, SrvRecord, display_addr,
};

/// The port KMS hosts listen on unless `slmgr /sprt` changed it.
pub(crate) const KMS_PORT: u16 = 1688;

/// Classifies one domain. Findings come out in a stable order: domain-level findings first,
/// then per record/target/address in record order.
pub(crate) fn classify(
    obs: &DomainObservation,
    policy: &DomainPolicy,
) -> (Vec<Finding>, DomainSummary) {
    let mut out = Findings {
        domain: &obs.domain,
        list: Vec::new(),
    };
    let mut summary = DomainSummary {
        records: obs.records.len(),
        ..DomainSummary::default()
    };
    if let Some(err) = &obs.discovery_error {
        out.about_domain(
            FindingCode::ServerFailure,
            Severity::Critical,
            format!("could not find the authoritative servers: {err}"),
        );
        directory::findings(obs, policy, &mut out);
        return finish(out.list, summary);
    }
    let Some(answering) = server_failures(obs, &mut out) else {
        directory::findings(obs, policy, &mut out);
        return finish(out.list, summary);
    };
    // Without the zone, `clean` cannot address an update and the report cannot say where the
    // records live: the domain is not completely scanned.
    summary.complete = obs.zone.is_some();
    if obs.zone.is_none() {
        out.about_domain(
            FindingCode::ServerFailure,
            Severity::Warning,
            format!(
                "the zone holding {} could not be learnt (no SOA from the servers asked): the records below are as the servers answered, but `clean` could not address an update",
                obs.query_name
            ),
        );
    }
    oversized_answers(obs, &answering, &mut out);
    disagreement(obs, &answering, &mut out);
    let unfollowed_alias = aliases(obs, &answering, &mut out);
    // What clients find behind the alias is not known from here.
    summary.complete &= !unfollowed_alias;
    if obs.records.is_empty() {
        if !unfollowed_alias {
            no_records(obs, &answering, policy, &mut out);
        }
    } else {
        record_shape(obs, &mut out);
        let healthy = hosts(obs, policy, &mut out, &mut summary);
        shared_addresses(obs, &mut out);
        if healthy == 0 {
            out.about_domain(
                FindingCode::NoHealthyHost,
                Severity::Critical,
                format!(
                    "{} record(s) published, none leads to a working authorized KMS host: clients fail with 0xC004F074",
                    obs.records.len()
                ),
            );
        }
    }
    missing_authorized_hosts(obs, policy, &mut out);
    unresolved_expected_hosts(policy, &mut out);
    directory::findings(obs, policy, &mut out);
    finish(out.list, summary)
}

/// A finding for each server that gave no usable answer; the servers that did answer, or
/// `None` when none did (the domain could not be scanned).
fn server_failures<'o>(
    obs: &'o DomainObservation,
    out: &mut Findings<'_>,
) -> Option<Vec<&'o ServerObservation>> {
    let answering: Vec<_> = obs
        .servers
        .iter()
        .filter(|s| s.status.is_answer())
        .collect();
    let all_failed = answering.is_empty();
    let severity = if all_failed {
        Severity::Critical
    } else {
        Severity::Warning
    };
    for server in obs.servers.iter().filter(|s| !s.status.is_answer()) {
        let mut detail = format!(
            "authoritative server {} for {}: {}",
            server_label(server),
            obs.query_name,
            server.status.describe()
        );
        // A timeout says all there is to say, but for the evidence against a held-back
        // server; other details add the cause.
        if let Some(extra) = &server.detail
            && (server.status != QueryStatus::Timeout || crate::dns::is_held_back_detail(extra))
        {
            detail.push_str(&format!(" — {extra}"));
        }
        // The server in the finding's own fields: address and port.
        out.push(
            FindingCode::ServerFailure,
            severity,
            None,
            Some(server.address.port()),
            Some(server.address.ip()),
            detail,
        );
    }
    if obs.servers.is_empty() {
        out.about_domain(
            FindingCode::ServerFailure,
            Severity::Critical,
            "no authoritative server to ask".into(),
        );
    }
    (!all_failed).then_some(answering)
}

/// Servers that answered more SRV records than a scan examines.
fn oversized_answers(
    obs: &DomainObservation,
    answering: &[&ServerObservation],
    out: &mut Findings<'_>,
) {
    for server in answering {
        if let Some(total) = server.records_answered {
            out.about_domain(
                FindingCode::ServerFailure,
                Severity::Warning,
                format!(
                    "{} answered {total} SRV records for {}; only the first {} (in sort order) were examined: a real KMS RRset has a handful, so the zone is broken or hostile",
                    server_label(server),
                    obs.query_name,
                    crate::model::MAX_RRSET
                ),
            );
        }
    }
}

/// The `_vlmcs._tcp` name as an alias (CNAME), as each server answered it: info when its
/// records came in the answer (they are the ones examined), a warning when the chain leads out
/// of what the server answers, whose records this scan did not see. True in the latter case:
/// the domain's clients find records there, so "no records" would be wrong.
fn aliases(
    obs: &DomainObservation,
    answering: &[&ServerObservation],
    out: &mut Findings<'_>,
) -> bool {
    let mut seen = std::collections::BTreeSet::new();
    let mut unfollowed = false;
    for server in answering {
        let Some(alias) = &server.alias else {
            continue;
        };
        let followed = !server.records.is_empty();
        unfollowed |= !followed;
        if !seen.insert((alias, followed)) {
            continue;
        }
        if followed {
            out.about_domain(
                FindingCode::SrvAlias,
                Severity::Info,
                format!(
                    "{} is an alias (CNAME) of {alias}: KMS clients follow it, and the records examined are {alias}'s ({} answered them); `clean` leaves them to the domain that holds them",
                    obs.query_name,
                    server_label(server)
                ),
            );
        } else {
            out.about_domain(
                FindingCode::SrvAlias,
                Severity::Warning,
                format!(
                    "{} is an alias (CNAME) of {alias}, which {} does not answer for: KMS clients follow it to the records there, which this scan of the domain did not examine; scan the domain of {alias}",
                    obs.query_name,
                    server_label(server)
                ),
            );
        }
    }
    unfollowed
}

/// NXDOMAIN or NODATA: critical where KMS clients look, info for a search-list domain.
fn no_records(
    obs: &DomainObservation,
    answering: &[&ServerObservation],
    policy: &DomainPolicy,
    out: &mut Findings<'_>,
) {
    let how = if answering.iter().all(|s| s.status == QueryStatus::NxDomain) {
        "does not exist (NXDOMAIN)"
    } else {
        "has no SRV records"
    };
    let (severity, consequence) = if policy.expect_records {
        (
            Severity::Critical,
            "KMS clients in this domain cannot discover a host (0x8007232B)",
        )
    } else {
        (
            Severity::Info,
            "clients will look in their other search domains",
        )
    };
    out.about_domain(
        FindingCode::NoRecords,
        severity,
        format!("{} {how}: {consequence}", obs.query_name),
    );
}

/// The statuses a record can have, most telling first: a record works if any address works;
/// otherwise the most specific failure names it.
const RECORD_STATUSES: [FindingCode; 6] = [
    FindingCode::Healthy,
    FindingCode::UnauthorizedHost,
    FindingCode::NotKms,
    FindingCode::DeadHost,
    FindingCode::NoAddress,
    FindingCode::InvalidTarget,
];

/// One verdict per record of `obs`, from this domain's `findings`: where a record's status
/// and whether the evidence is certain are decided, for everything downstream.
pub(crate) fn verdicts(obs: &DomainObservation, findings: &[Finding]) -> Vec<RecordVerdict> {
    // Each finding's target read once, not once per record and status.
    let targets: Vec<Option<DnsName>> = findings
        .iter()
        .map(|f| f.target.as_deref().and_then(DnsName::parse_fqdn))
        .collect();
    obs.records
        .iter()
        .map(|record| {
            let about: Vec<&Finding> = findings
                .iter()
                .zip(&targets)
                .filter(|(f, target)| {
                    target.as_ref() == Some(&record.target)
                        && f.port.is_none_or(|p| p == record.port)
                })
                .map(|(f, _)| f)
                .collect();
            let decided = RECORD_STATUSES
                .iter()
                .find_map(|code| about.iter().copied().find(|f| f.code == *code));
            let status = decided.map_or(FindingCode::Healthy, |f| f.code);
            let uncertain_because = match status {
                FindingCode::NoAddress => obs
                    .target(&record.target)
                    .and_then(|t| t.resolution_error.as_ref())
                    .filter(|e| !e.proves_dangling())
                    .map(|e| {
                        format!(
                            "the target's addresses could not be looked up ({e}): not certain it is dangling"
                        )
                    }),
                _ => None,
            };
            RecordVerdict {
                priority: record.priority,
                weight: record.weight,
                port: record.port,
                target: record.target.clone(),
                status,
                certain: uncertain_because.is_none(),
                uncertain_because,
                evidence: decided.map(|f| f.detail.clone()).unwrap_or_default(),
            }
        })
        .collect()
}

struct Findings<'a> {
    domain: &'a str,
    list: Vec<Finding>,
}

impl Findings<'_> {
    /// A finding about the domain as a whole (no target, port or address).
    fn about_domain(&mut self, code: FindingCode, severity: Severity, detail: String) {
        self.push(code, severity, None, None, None, detail);
    }

    fn push(
        &mut self,
        code: FindingCode,
        severity: Severity,
        target: Option<String>,
        port: Option<u16>,
        address: Option<IpAddr>,
        detail: String,
    ) {
        self.list.push(Finding {
            domain: self.domain.to_string(),
            code,
            severity,
            target,
            port,
            address,
            detail,
        });
    }
}

fn finish(findings: Vec<Finding>, mut summary: DomainSummary) -> (Vec<Finding>, DomainSummary) {
    summary.worst = findings.iter().map(|f| f.severity).max();
    (findings, summary)
}

/// Servers that answered authoritatively but with different RRsets.
fn disagreement(
    obs: &DomainObservation,
    answering: &[&crate::model::ServerObservation],
    out: &mut Findings<'_>,
) {
    if answering.len() < 2 {
        return;
    }
    let sets: Vec<BTreeSet<_>> = answering
        .iter()
        .map(|s| s.records.iter().map(SrvRecord::rdata_key).collect())
        .collect();
    if sets.windows(2).all(|w| w[0] == w[1]) {
        return;
    }
    for record in &obs.records {
        let key = record.rdata_key();
        let (with, without): (Vec<_>, Vec<_>) = answering
            .iter()
            .zip(&sets)
            .partition(|(_, set)| set.contains(&key));
        if without.is_empty() {
            continue;
        }
        let names = |v: &[(&&crate::model::ServerObservation, &BTreeSet<_>)]| {
            v.iter()
                .map(|(s, _)| server_label(s))
                .collect::<Vec<_>>()
                .join(", ")
        };
        out.push(
            FindingCode::ServerDisagreement,
            Severity::Warning,
            Some(record.target.to_string()),
            Some(record.port),
            None,
            format!(
                "{record} is served by {} but not by {}: replication lag or a stale secondary",
                names(&with),
                names(&without)
            ),
        );
    }
}

/// Per-record checks that need no probing: `.` targets, ports, duplicates, aliases.
fn record_shape(obs: &DomainObservation, out: &mut Findings<'_>) {
    let mut by_target_port: BTreeMap<(&DnsName, u16), Vec<&SrvRecord>> = BTreeMap::new();
    for record in &obs.records {
        by_target_port
            .entry((&record.target, record.port))
            .or_default()
            .push(record);
    }
    let mut reported_duplicates = BTreeSet::new();
    let mut reported_alias = BTreeSet::new();
    for record in &obs.records {
        if record.is_unusable() {
            let why = if record.is_root_target() {
                "target `.` means \"no service here\" (RFC 2782); KMS clients cannot use it"
            } else {
                "port 0 is no port a host can listen on; KMS clients cannot use the record (not probed)"
            };
            out.push(
                FindingCode::InvalidTarget,
                Severity::Warning,
                Some(record.target.to_string()),
                Some(record.port),
                None,
                format!("{record}: {why}"),
            );
            continue;
        }
        if record.port != KMS_PORT {
            out.push(
                FindingCode::NonstandardPort,
                Severity::Info,
                Some(record.target.to_string()),
                Some(record.port),
                None,
                format!(
                    "{record}: port {} instead of {KMS_PORT}; fine only if the host was moved with `slmgr /sprt`",
                    record.port
                ),
            );
        }
        let key = (&record.target, record.port);
        let group = &by_target_port[&key];
        if group.len() > 1 && reported_duplicates.insert(key) {
            let listed = group
                .iter()
                .map(|r| format!("{} {}", r.priority, r.weight))
                .collect::<Vec<_>>()
                .join("; ");
            out.push(
                FindingCode::DuplicateRecord,
                Severity::Warning,
                Some(record.target.to_string()),
                Some(record.port),
                None,
                format!(
                    "{} is published {} times for port {} (priority weight: {listed}): clients weigh it more than intended",
                    record.target,
                    group.len(),
                    record.port
                ),
            );
        }
        if let Some(target) = obs.target(&record.target)
            && let Some(alias) = &target.cname
            && reported_alias.insert(key.0.clone())
        {
            out.push(
                FindingCode::InvalidTarget,
                Severity::Warning,
                Some(record.target.to_string()),
                Some(record.port),
                None,
                format!(
                    "target {} is an alias (CNAME to {alias}); RFC 2782 requires the host's own name",
                    record.target
                ),
            );
        }
    }
}

/// Per target and address: resolution and probe findings. Returns how many healthy
/// (live and authorized) endpoints were found.
fn hosts(
    obs: &DomainObservation,
    policy: &DomainPolicy,
    out: &mut Findings<'_>,
    summary: &mut DomainSummary,
) -> usize {
    let mut healthy = 0;
    let mut seen = BTreeSet::new();
    for record in obs.records.iter().filter(|r| !r.is_unusable()) {
        if !seen.insert((&record.target, record.port)) {
            continue;
        }
        let target = obs.target(&record.target);
        let addresses = target.map(|t| t.addresses.as_slice()).unwrap_or_default();
        if addresses.is_empty() {
            let why = target
                .and_then(|t| t.resolution_error.as_ref())
                .map_or_else(|| "no A or AAAA record".into(), ToString::to_string);
            out.push(
                FindingCode::NoAddress,
                Severity::Warning,
                Some(record.target.to_string()),
                Some(record.port),
                None,
                format!(
                    "{record}: the target has no address ({why}); the record is dangling{}",
                    address_written_as_name(&record.target)
                ),
            );
            continue;
        }
        for probe in obs.probes_of(record) {
            summary.hosts_probed += 1;
            let alias = target.and_then(|t| t.cname.as_deref());
            if probe_finding(record, probe, alias, policy, out, summary) {
                healthy += 1;
            }
        }
    }
    healthy
}

/// A hint when an SRV target is an IP address written as a name (`10.0.0.5.`): RFC 2782 wants a
/// host name there, and clients look the text up as one.
fn address_written_as_name(target: &DnsName) -> String {
    let text = target.to_string();
    let bare = text.strip_suffix('.').unwrap_or(&text);
    match bare.parse::<IpAddr>() {
        Ok(address) => format!(
            " (the target is the address {address} written as a name: an SRV target must be a host name with an A or AAAA record, RFC 2782)"
        ),
        Err(_) => String::new(),
    }
}

/// What the emulator tells add up to: a strong one makes `kms-emulator`, supporting ones alone
/// only `possible-emulator` (info). The text lists every tell.
fn emulator_finding(probe: &ProbeObservation) -> Option<(FindingCode, Severity, String)> {
    let (strong, supporting): (Vec<_>, Vec<_>) = probe
        .emulator_evidence
        .iter()
        .partition(|e| e.tell.is_strong());
    let list = |tells: &[&crate::model::EmulatorEvidence]| {
        tells
            .iter()
            .map(|e| e.detail.as_str())
            .collect::<Vec<_>>()
            .join("; ")
    };
    let also = if supporting.is_empty() {
        String::new()
    } else {
        format!(" Also: {}.", list(&supporting))
    };
    if !strong.is_empty() {
        Some((
            FindingCode::KmsEmulator,
            Severity::Warning,
            format!(
                "is a KMS emulator (such as vlmcsd or py-kms), not Windows: it {}.{also} (Measured against vlmcsd and py-kms; what a Windows KMS host does is taken from C706 / MS-RPCE and was not checked against one.)",
                list(&strong)
            ),
        ))
    } else if probe.accepts_any_interface {
        // An observation from before the tells were recorded one by one.
        Some((
            FindingCode::KmsEmulator,
            Severity::Warning,
            "also accepted a bind for an interface nobody serves: a KMS emulator (such as vlmcsd or py-kms), not Windows".into(),
        ))
    } else if !supporting.is_empty() {
        Some((
            FindingCode::PossibleEmulator,
            Severity::Info,
            format!(
                "answers binds the way KMS emulators do, though nothing conclusive: {}",
                list(&supporting)
            ),
        ))
    } else {
        None
    }
}

/// The finding for one probe; true when the endpoint is healthy and authorized.
fn probe_finding(
    record: &SrvRecord,
    probe: &ProbeObservation,
    alias: Option<&str>,
    policy: &DomainPolicy,
    out: &mut Findings<'_>,
    summary: &mut DomainSummary,
) -> bool {
    let at = format!("{}:{}", display_addr(probe.address), probe.port);
    let timing = format!("{:.0} ms", probe.duration_ms);
    let (code, detail) = match probe.outcome {
        ProbeOutcome::KmsRpc => {
            return live_kms_finding(record, probe, alias, policy, out, summary);
        }
        outcome if outcome.is_dead() => {
            summary.dead += 1;
            (
                FindingCode::DeadHost,
                format!(
                    "{} at {at}: {} ({timing}); clients that try it lose time or fail with 0x800706BA",
                    record.target, probe.detail
                ),
            )
        }
        _ => {
            summary.not_kms += 1;
            (
                FindingCode::NotKms,
                format!(
                    "{} at {at} accepts TCP but is not a KMS host: {} ({timing})",
                    record.target, probe.detail
                ),
            )
        }
    };
    out.push(
        code,
        Severity::Warning,
        Some(record.target.to_string()),
        Some(record.port),
        Some(probe.address),
        detail,
    );
    false
}

/// A live KMS endpoint: healthy when authorized (with a note when reached under another name
/// or when it is an emulator), otherwise a rogue host. True when healthy.
fn live_kms_finding(
    record: &SrvRecord,
    probe: &ProbeObservation,
    alias: Option<&str>,
    policy: &DomainPolicy,
    out: &mut Findings<'_>,
    summary: &mut DomainSummary,
) -> bool {
    let at = format!("{}:{}", display_addr(probe.address), probe.port);
    let mut push = |code, severity, detail| {
        out.push(
            code,
            severity,
            Some(record.target.to_string()),
            Some(record.port),
            Some(probe.address),
            detail,
        )
    };
    let authorization = authorize(&record.target.to_string(), probe.address, alias, policy);
    if let Authorization::OtherName { host, how } = &authorization {
        push(
            FindingCode::HostAlias,
            Severity::Info,
            format!(
                "{} at {at} is the authorized KMS host {host}, published under another name ({how}); RFC 2782 wants the host's own name in the record",
                record.target
            ),
        );
    }
    if let Some((code, severity, detail)) = emulator_finding(probe) {
        push(
            code,
            severity,
            format!("{} at {at} {detail}", record.target),
        );
    }
    if matches!(authorization, Authorization::Unauthorized) {
        summary.unauthorized += 1;
        push(
            FindingCode::UnauthorizedHost,
            Severity::Critical,
            format!(
                "{} at {at} is a live KMS host that is not on the allowlist: typically a client with a KMS host key (CSVLK) installed by mistake. Clients sent to it fail with 0xC004F041 (it is not activated) or 0xC004F038 (below its activation threshold); activating its key uses up the CSVLK's activations at Microsoft (0xC004C008 once they are gone)",
                record.target
            ),
        );
        return false;
    }
    summary.healthy += 1;
    let how = if policy.authorized.is_some() {
        "authorized KMS host"
    } else {
        "KMS host (no allowlist to check it against)"
    };
    push(
        FindingCode::Healthy,
        Severity::Ok,
        format!(
            "{} at {at} answers the KMS RPC interface ({}, {:.0} ms): {how}",
            record.target,
            probe.transfer_syntax.as_deref().unwrap_or("accepted"),
            probe.duration_ms
        ),
    );
    true
}

/// Who an endpoint is, as far as the allowlist goes.
enum Authorization {
    /// No allowlist: every live KMS host counts.
    NoAllowlist,
    /// By the record's own target name, or by an address or network entry.
    Listed,
    /// An allowlisted host reached under another name: a CNAME to it, or another A/AAAA name
    /// for its address.
    OtherName {
        host: String,
        how: &'static str,
    },
    Unauthorized,
}

/// Authorization by identity, not by spelling: the target's name, its alias (CNAME), or its
/// address belonging to an allowlisted host (names resolved by the scan).
fn authorize(
    target: &str,
    address: IpAddr,
    alias: Option<&str>,
    policy: &DomainPolicy,
) -> Authorization {
    if policy.authorized.is_none() {
        return Authorization::NoAllowlist;
    }
    if policy.allows_name(target) || policy.allows_address(address) {
        return Authorization::Listed;
    }
    if let Some(alias) = alias
        && policy.allows_name(alias)
    {
        return Authorization::OtherName {
            host: alias.to_string(),
            how: "a CNAME to it",
        };
    }
    let listed_owner = policy
        .identities
        .as_ref()
        .and_then(|ids| ids.owner_of(address))
        .filter(|owner| policy.allows_name(owner));
    match listed_owner {
        Some(owner) => Authorization::OtherName {
            host: format!("{owner}."),
            how: "another name for its address",
        },
        None => Authorization::Unauthorized,
    }
}

/// Allowlisted hosts of this domain (`kms_hosts`) whose names do not resolve.
fn unresolved_expected_hosts(policy: &DomainPolicy, out: &mut Findings<'_>) {
    let Some(identities) = &policy.identities else {
        return;
    };
    for expected in &policy.expected {
        if let crate::model::HostPattern::Name(name) = expected
            && let Some(Err(why)) = identities.by_name.get(name)
        {
            out.push(
                FindingCode::AllowlistUnresolved,
                Severity::Warning,
                Some(format!("{name}.")),
                None,
                None,
                format!(
                    "the authorized KMS host {name} does not resolve ({why}): the allowlist is stale, and authorization by this name rests on its spelling alone"
                ),
            );
        }
    }
}

/// Distinct target names that resolve to the same address and port: one host counted twice.
fn shared_addresses(obs: &DomainObservation, out: &mut Findings<'_>) {
    let mut names_by_endpoint: BTreeMap<(IpAddr, u16), BTreeSet<&DnsName>> = BTreeMap::new();
    for record in obs.records.iter().filter(|r| !r.is_unusable()) {
        if let Some(target) = obs.target(&record.target) {
            for address in &target.addresses {
                names_by_endpoint
                    .entry((*address, record.port))
                    .or_default()
                    .insert(&record.target);
            }
        }
    }
    for ((address, port), names) in names_by_endpoint {
        if names.len() > 1 {
            let listed = names
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ");
            out.push(
                FindingCode::DuplicateRecord,
                Severity::Info,
                names.first().map(ToString::to_string),
                Some(port),
                Some(address),
                format!(
                    "{listed} all point at {}:{port}: one host published under several names",
                    display_addr(address)
                ),
            );
        }
    }
}

fn missing_authorized_hosts(
    obs: &DomainObservation,
    policy: &DomainPolicy,
    out: &mut Findings<'_>,
) {
    for expected in &policy.expected {
        // Its own addresses, when the scan resolved its name: published under another name
        // still counts (and says so in a host-alias finding).
        let own: &[IpAddr] = match (expected, &policy.identities) {
            (crate::model::HostPattern::Name(name), Some(ids)) => ids
                .by_name
                .get(name)
                .and_then(|r| r.as_ref().ok())
                .map_or(&[], Vec::as_slice),
            _ => &[],
        };
        let published = obs.records.iter().any(|r| {
            expected.matches_name(&r.target.to_string())
                || obs.target(&r.target).is_some_and(|t| {
                    t.addresses
                        .iter()
                        .any(|a| expected.matches_address(*a) || own.contains(a))
                })
        });
        if !published {
            let (target, address) = match expected {
                crate::model::HostPattern::Name(n) => (Some(format!("{n}.")), None),
                crate::model::HostPattern::Network(net) => (None, Some(net.addr())),
            };
            out.push(
                FindingCode::AuthorizedHostMissing,
                Severity::Warning,
                target,
                None,
                address,
                format!(
                    "authorized KMS host {expected} should serve {} but no record in {} points at it (check its DnsDomainPublishList and event 12293)",
                    obs.domain, obs.query_name
                ),
            );
        }
    }
}

/// `ns1.example.com. (192.0.2.1:53)`, or just the address when the server has no name.
fn server_label(server: &crate::model::ServerObservation) -> String {
    if server.name == server.address.to_string() {
        server.name.clone()
    } else {
        format!("{} ({})", server.name, server.address)
    }
}

#[cfg(test)]
mod tests;

mod directory;
