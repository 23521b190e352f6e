//! The scan pipeline: for every domain at once, discover → query each authoritative server →
//! resolve targets → probe every address → classify. Every network operation holds a permit of
//! one shared semaphore (`concurrency`) and has its own timeout, so a scan of many blackholed
//! hosts costs about one timeout rather than one per host.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Instant;

use futures_util::StreamExt;
use futures_util::future::join_all;
use hickory_proto::rr::Name;
use tokio::sync::Semaphore;

use crate::audit::classify::classify;
use crate::audit::discover::{self, Asker};
use crate::config::{DomainSettings, ScanSettings};
use crate::model::name::DnsName;
use crate::model::{
    DomainObservation, DomainReport, Finding, ProbeObservation, Report, Severity, SrvRecord,
    normalize_name,
};
use crate::probe::{self, PendingProbe, ProbeOptions, Prober};

/// Runs a whole scan, held in memory. Never fails: what could not be done is in the report
/// (and makes it incomplete, exit code 3).
pub async fn run(settings: &ScanSettings) -> Report {
    run_with_progress(settings, None).await
}

/// Called once per domain scanned (a progress bar is the binary's business).
pub type Progress<'a> = &'a (dyn Fn() + Sync);

/// [`run`], calling `progress` once per domain scanned.
pub async fn run_with_progress(settings: &ScanSettings, progress: Option<Progress<'_>>) -> Report {
    let mut collected = Collect::default();
    let mut report = run_into(settings, progress, &mut collected)
        .await
        .unwrap_or_else(|never| match never {});
    report.findings = collected.findings;
    report.domains = collected.domains;
    report
}

/// Receives each domain as soon as it is classified, in the order of the settings.
pub trait DomainSink {
    /// Why a domain could not be kept.
    type Error;
    /// Keeps one finished domain and its findings.
    fn domain(&mut self, domain: DomainReport, findings: Vec<Finding>) -> Result<(), Self::Error>;
}

/// Keeps everything in memory.
#[derive(Default)]
struct Collect {
    findings: Vec<Finding>,
    domains: Vec<DomainReport>,
}

impl DomainSink for Collect {
    type Error = std::convert::Infallible;
    fn domain(
        &mut self,
        domain: DomainReport,
        mut findings: Vec<Finding>,
    ) -> Result<(), Self::Error> {
        self.findings.append(&mut findings);
        self.domains.push(domain);
        Ok(())
    }
}

/// Runs a whole scan, handing each domain to `sink` as it is finished; returns the report's
/// head (its `findings` and `domains` are the sink's). Fails only when the sink does.
pub async fn run_into<K: DomainSink>(
    settings: &ScanSettings,
    progress: Option<Progress<'_>>,
    sink: &mut K,
) -> Result<Report, K::Error> {
    let started_at = crate::support::time::Timestamp::now();
    let clock = Instant::now();
    let asker = Asker::new(settings.concurrency, settings.timeout, settings.qps);
    let prober = Prober::new(
        ProbeOptions {
            timeout: settings.timeout,
            check_emulator: settings.check_emulator,
        },
        probe::socket_budget(settings.concurrency),
    );
    let mut notes = Vec::new();
    let needs_resolvers = settings.resolvers.is_empty();
    let resolvers = if needs_resolvers {
        match crate::dns::system::resolvers() {
            Ok(list) => list,
            Err(e) => {
                notes.push(format!(
                    "the system's resolvers could not be read ({e}); set `resolvers` in the config"
                ));
                Vec::new()
            }
        }
    } else {
        settings.resolvers.clone()
    };

    let (identities, unresolved) = resolve_identities(settings, &asker, &resolvers).await;
    notes.extend(unresolved);
    // Domains enter the scan through a window, so that a million of them are never all in
    // flight (each holds its futures and sockets); the window is wide enough that the pacer
    // and the concurrency bound, not the window, set the pace. Each leaves it classified.
    // Domains asking DNS at once: enough to keep every server's window full (each domain asks
    // one question per server, more when it discovers them).
    let dns_phase = Semaphore::new((2 * settings.concurrency).max(64));
    let mut finished = futures_util::stream::iter(&settings.domains)
        .map(|d| {
            let (asker, resolvers, prober, dns_phase) = (&asker, &resolvers, &prober, &dns_phase);
            let mut policy = d.policy.clone();
            policy.identities = identities.get(&d.servers).cloned();
            async move {
                let observation =
                    scan_domain(d, asker, resolvers, prober, settings, dns_phase).await;
                let classified = classify_domain(*observation, &policy);
                if let Some(tick) = progress {
                    tick();
                }
                classified
            }
        })
        .buffered(domain_window(settings));
    let mut tally = Tally::default();
    // Unconstrained: thousands of domains' futures share this one task, and tokio's
    // per-task budget would otherwise make every poll past the 128th return Pending and wake
    // the task again at once, so the scan would spin over futures that are not ready.
    tokio::task::unconstrained(async {
        while let Some((domain, findings)) = finished.next().await {
            tally.add(&domain, &findings);
            sink.domain(domain, findings)?;
        }
        Ok::<_, K::Error>(())
    })
    .await?;
    let mut report = tally.head(settings.allowlist_configured(), notes);
    report.started_at = started_at;
    report.duration_ms = crate::support::time::millis(clock.elapsed());
    report.timeout_ms = settings.timeout.as_millis() as u64;
    Ok(report)
}

/// Unresolved allowlisted names listed by name in the report's notes; beyond them, a count.
const UNRESOLVED_NAMED: usize = 10;

/// Resolves every allowlisted host name (A and AAAA) through the servers each domain is
/// scanned with and the resolvers, once per name and set of servers, at most `concurrency`
/// names at a time: authorization then goes by the host's addresses, not only by the spelling
/// of a record's target. Also returns notes on the names that do not resolve anywhere they are
/// used (the allowlist is stale): the first few by name, then how many more.
async fn resolve_identities(
    settings: &ScanSettings,
    asker: &Asker,
    resolvers: &[SocketAddr],
) -> (
    BTreeMap<Vec<SocketAddr>, std::sync::Arc<crate::model::Identities>>,
    Vec<String>,
) {
    let AllowlistNames {
        names,
        expected,
        server_sets,
    } = allowlisted_names(settings);
    let mut by_servers = BTreeMap::new();
    if names.is_empty() {
        return (by_servers, Vec::new());
    }
    // The first unresolved names (in name order) and how many there are, over all server sets.
    let mut unresolved_named = BTreeMap::<std::sync::Arc<str>, String>::new();
    let mut unresolved = std::collections::HashSet::<std::sync::Arc<str>>::new();
    let in_flight = settings.concurrency.max(1);
    for servers in server_sets {
        let servers = &servers;
        let mut lookups = futures_util::stream::iter(names.iter())
            .map(|name| async move {
                let Some(host) = DnsName::parse(&format!("{name}.")) else {
                    return (name, Err("not a valid host name".to_string()));
                };
                let found = asker.resolve_target(&host, &[], servers, resolvers).await;
                let result = if found.addresses.is_empty() {
                    Err(found
                        .resolution_error
                        .map_or_else(|| "no address".to_string(), |e| e.to_string()))
                } else {
                    Ok(found.addresses)
                };
                (name, result)
            })
            .buffer_unordered(in_flight);
        let mut identities = crate::model::Identities::default();
        while let Some((name, result)) = lookups.next().await {
            if let Err(why) = &result
                && unresolved.insert(name.clone())
            {
                unresolved_named.insert(name.clone(), why.clone());
                if unresolved_named.len() > UNRESOLVED_NAMED {
                    unresolved_named.pop_last();
                }
            }
            identities.add(name, &result, expected.contains(name));
        }
        by_servers.insert(servers.clone(), std::sync::Arc::new(identities));
    }
    let notes = unresolved_notes(unresolved_named, unresolved.len(), names.len());
    (by_servers, notes)
}

/// The names of every host on an allowlist (the global one, walked once: every domain shares
/// it) or expected in a domain, sorted and once each; the expected ones; and the sets of
/// servers the domains are scanned with.
fn allowlisted_names(settings: &ScanSettings) -> AllowlistNames {
    let mut lists: Vec<&std::sync::Arc<crate::model::Allowlist>> = Vec::new();
    let mut expected: std::collections::HashSet<std::sync::Arc<str>> = Default::default();
    let mut server_sets = std::collections::BTreeSet::new();
    for d in &settings.domains {
        if let Some(list) = &d.policy.authorized
            && !lists.iter().any(|l| std::sync::Arc::ptr_eq(l, list))
        {
            lists.push(list);
        }
        for pattern in &d.policy.expected {
            if let crate::model::HostPattern::Name(name) = pattern {
                expected.insert(std::sync::Arc::from(name.as_str()));
            }
        }
        server_sets.insert(d.servers.clone());
    }
    let mut names: Vec<std::sync::Arc<str>> = lists
        .iter()
        .flat_map(|l| l.names().cloned())
        .chain(expected.iter().cloned())
        .collect();
    names.sort_unstable();
    names.dedup();
    AllowlistNames {
        names,
        expected,
        server_sets,
    }
}

/// What [`resolve_identities`] resolves, and through which servers.
struct AllowlistNames {
    names: Vec<std::sync::Arc<str>>,
    expected: std::collections::HashSet<std::sync::Arc<str>>,
    server_sets: std::collections::BTreeSet<Vec<SocketAddr>>,
}

/// The report's notes on the allowlisted names that resolve nowhere: the first few by name
/// (with why), then how many more.
fn unresolved_notes(
    named: BTreeMap<std::sync::Arc<str>, String>,
    unresolved: usize,
    listed: usize,
) -> Vec<String> {
    let mut notes: Vec<String> = named
        .into_iter()
        .map(|(name, why)| {
            format!(
                "the authorized host {name} does not resolve ({why}): the allowlist is stale, and authorization by this name rests on its spelling alone"
            )
        })
        .collect();
    if unresolved > UNRESOLVED_NAMED {
        notes.push(format!(
            "{} more authorized host names do not resolve ({} in all, of {} on the allowlist): the allowlist is stale",
            unresolved - UNRESOLVED_NAMED,
            unresolved,
            listed
        ));
    }
    notes
}

/// How many domains are scanned at once: four per concurrency slot, at least as many as the
/// pacer lets through in two timeouts and a second, and as many as probes may be open (a
/// domain that only waits for a blackholed host holds a socket and a few KB, and must not
/// keep the next domains from starting).
fn domain_window(settings: &ScanSettings) -> usize {
    let paced = (f64::from(settings.qps) * (2.0 * settings.timeout.as_secs_f64() + 1.0)) as usize;
    (4 * settings.concurrency)
        .max(paced)
        .max(probe::socket_budget(settings.concurrency))
        .max(64)
}

fn classify_domain(
    observation: DomainObservation,
    policy: &crate::model::DomainPolicy,
) -> (DomainReport, Vec<Finding>) {
    let (findings, summary) = classify(&observation, policy);
    let verdicts = crate::audit::classify::verdicts(&observation, &findings);
    (
        DomainReport {
            observation,
            summary,
            verdicts,
        },
        findings,
    )
}

/// What the report's head needs from every domain.
#[derive(Default)]
struct Tally {
    incomplete: bool,
    worst: Severity,
}

impl Tally {
    fn add(&mut self, domain: &DomainReport, findings: &[Finding]) {
        self.incomplete |= !domain.summary.complete;
        if let Some(worst) = findings.iter().map(|f| f.severity).max() {
            self.worst = self.worst.max(worst);
        }
    }

    /// The report without findings and domains (timings are the caller's).
    fn head(&self, allowlist_configured: bool, mut notes: Vec<String>) -> Report {
        if !allowlist_configured {
            notes.push(
                "no allowlist is configured: every live KMS host counts as healthy, so a client that became a KMS host by mistake cannot be told apart from a real one; list your hosts under `authorized_hosts` in the config or pass --allow".into(),
            );
        }
        let complete = !self.incomplete;
        Report {
            tool: "vlmcs-audit".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            started_at: crate::support::time::Timestamp::now(),
            duration_ms: 0.0,
            timeout_ms: 0,
            allowlist_configured,
            complete,
            worst_severity: self.worst,
            exit_code: Report::compute_exit_code(complete, self.worst),
            notes,
            findings: Vec::new(),
            domains: Vec::new(),
        }
    }
}

/// Classifies every domain and builds the report (without timings): the pure end of the
/// pipeline, for tests that start from hand-made observations.
#[cfg(test)]
pub(crate) fn assemble(
    observations: Vec<(DomainObservation, &crate::model::DomainPolicy)>,
    allowlist_configured: bool,
    notes: Vec<String>,
) -> Report {
    let mut tally = Tally::default();
    let mut collected = Collect::default();
    for (observation, policy) in observations {
        let (domain, findings) = classify_domain(observation, policy);
        tally.add(&domain, &findings);
        let Ok(()) = collected.domain(domain, findings);
    }
    let mut report = tally.head(allowlist_configured, notes);
    report.findings = collected.findings;
    report.domains = collected.domains;
    report
}

async fn scan_domain(
    domain: &DomainSettings,
    asker: &Asker,
    resolvers: &[SocketAddr],
    prober: &Prober,
    settings: &ScanSettings,
    dns_phase: &Semaphore,
) -> Box<DomainObservation> {
    // Boxed: the DNS phase's state (messages, nested queries, some KB) is freed before the
    // domain waits for its probes; and made only when the domain may start asking, so the
    // domains that wait for their turn at the servers' windows hold nothing yet. Never
    // closed: acquiring cannot fail.
    let (mut observation, probes) = {
        let _turn = dns_phase.acquire().await.ok();
        Box::pin(async {
            let observation = Box::new(domain_dns(domain, asker, resolvers, settings).await);
            let probes = if observation.discovery_error.is_none() && !observation.servers.is_empty()
            {
                start_probes(prober, &observation)
            } else {
                Vec::new()
            };
            (observation, probes)
        })
        .await
    };
    // A domain waiting two seconds for a blackholed host holds its observation and a handle
    // per endpoint, nothing more.
    observation.probes = wait_for_probes(probes).await;
    observation
}

/// Discovery, the SRV answers, the zone and the targets' addresses.
async fn domain_dns(
    domain: &DomainSettings,
    asker: &Asker,
    resolvers: &[SocketAddr],
    settings: &ScanSettings,
) -> DomainObservation {
    let started = Instant::now();
    let query_text = format!("_vlmcs._tcp.{}.", domain.name);
    let mut observation = DomainObservation {
        domain: domain.name.clone(),
        query_name: query_text.clone(),
        zone: None,
        primary: None,
        servers_from: crate::model::ServersFrom::Configured,
        discovery_error: None,
        servers: Vec::new(),
        records: Vec::new(),
        targets: Vec::new(),
        probes: Vec::new(),
        dns_ms: 0.0,
        ad: domain.ad.clone(),
    };
    let query_name = match Name::from_ascii(&query_text) {
        Ok(n) => n,
        Err(e) => {
            observation.discovery_error =
                Some(format!("{query_text} is not a valid DNS name: {e}"));
            return observation;
        }
    };
    let Some(servers) = servers_to_ask(
        domain,
        asker,
        resolvers,
        settings,
        &query_name,
        &mut observation,
    )
    .await
    else {
        return observation;
    };
    let replies = ask_servers(asker, &servers, &query_name, &mut observation).await;
    if observation.zone.is_none() {
        learn_zone(asker, &replies, &query_name, &mut observation).await;
    }
    let server_addresses: Vec<SocketAddr> = servers.iter().map(|(_, a)| *a).collect();
    resolve_targets(
        asker,
        &replies,
        &server_addresses,
        resolvers,
        &mut observation,
    )
    .await;
    observation.dns_ms = crate::support::time::millis(started.elapsed());
    observation
}

/// The configured servers, or the authoritative ones found through SOA and NS (`None` when
/// discovery failed: the observation says why).
async fn servers_to_ask(
    domain: &DomainSettings,
    asker: &Asker,
    resolvers: &[SocketAddr],
    settings: &ScanSettings,
    query_name: &Name,
    observation: &mut DomainObservation,
) -> Option<Vec<(String, SocketAddr)>> {
    if !domain.servers.is_empty() {
        return Some(domain.servers.iter().map(|a| (a.to_string(), *a)).collect());
    }
    observation.servers_from = crate::model::ServersFrom::Discovered;
    match asker
        .authorities(resolvers, query_name, settings.nameserver_port)
        .await
    {
        Ok(found) => {
            observation.zone = Some(DnsName::new(found.zone));
            observation.primary = Some(DnsName::new(found.primary));
            Some(found.servers)
        }
        Err(e) => {
            observation.discovery_error = Some(e.to_string());
            None
        }
    }
}

/// Asks every server for the SRV RRset; the records are the union of the answers, in the
/// order clients weigh them. Returns the answering servers' messages (their additional and
/// authority sections serve later steps).
async fn ask_servers(
    asker: &Asker,
    servers: &[(String, SocketAddr)],
    query_name: &Name,
    observation: &mut DomainObservation,
) -> Vec<hickory_proto::op::Message> {
    let answers = join_all(
        servers
            .iter()
            .map(|(name, address)| asker.query_srv(name, *address, query_name)),
    )
    .await;
    let mut replies = Vec::new();
    let mut union: BTreeMap<_, SrvRecord> = BTreeMap::new();
    // Exactly as many as asked: a domain waiting for its probes holds this for seconds.
    observation.servers.reserve_exact(answers.len());
    for (server, reply) in answers {
        if server.status.is_answer() {
            for record in &server.records {
                union
                    .entry(record.rdata_key())
                    .or_insert_with(|| record.clone());
            }
            replies.extend(reply);
        }
        observation.servers.push(server);
    }
    let mut records: Vec<SrvRecord> = union.into_values().collect();
    // Reports list records by priority, then heaviest first, then by target name.
    records.sort_by_cached_key(|r| {
        (
            r.priority,
            std::cmp::Reverse(r.weight),
            normalize_name(&r.target.to_string()),
            r.port,
        )
    });
    observation.records = records;
    replies
}

/// Configured servers skip discovery: learn which zone holds the name (and its primary), so
/// that reports and updates name the real zone. A negative answer carries the SOA already;
/// otherwise ask the first server that answered.
async fn learn_zone(
    asker: &Asker,
    replies: &[hickory_proto::op::Message],
    query_name: &Name,
    observation: &mut DomainObservation,
) {
    let authorities = || replies.iter().flat_map(|m| &m.authorities);
    let answering = observation.servers.iter().find(|s| s.status.is_answer());
    let found = match (discover::soa_of(authorities()), answering) {
        // A negative answer carries the SOA itself.
        (Some(found), _) => Some(found),
        (None, Some(answering)) => {
            let server = answering.address;
            match discover::zone_from_ns(authorities(), query_name) {
                // The zone is named by the answer: its primary is asked once per scan.
                Some(zone) => asker
                    .primary_of(server, &zone)
                    .await
                    .map(|primary| (zone, primary)),
                None => asker.zone_of(server, query_name).await.ok(),
            }
        }
        (None, None) => None,
    };
    if let Some((zone, primary)) = found {
        observation.zone = Some(DnsName::new(zone));
        observation.primary = Some(DnsName::new(primary));
    }
}

/// Resolves every target once, in record order. Addresses in the SRV answers' additional
/// sections count only for targets inside the zone that answered: of anything else the server
/// is no authority, and a domain controller that also recurses puts addresses from its cache
/// there (RFC 2181 section 5.4.1 ranks such data last) — those targets are looked up instead.
async fn resolve_targets(
    asker: &Asker,
    replies: &[hickory_proto::op::Message],
    servers: &[SocketAddr],
    resolvers: &[SocketAddr],
    observation: &mut DomainObservation,
) {
    let mut seen = std::collections::HashSet::new();
    let target_names: Vec<&DnsName> = observation
        .records
        .iter()
        .filter(|r| !r.is_unusable())
        .map(|r| &r.target)
        .filter(|t| seen.insert(*t))
        .collect();
    let zone = observation.zone.clone();
    let targets = join_all(target_names.iter().map(|t| {
        let in_zone = zone.as_ref().is_none_or(|zone| t.is_within(zone));
        let replies = if in_zone { replies } else { &[] };
        asker.resolve_target(t, replies, servers, resolvers)
    }))
    .await;
    observation.targets = targets;
}

/// Starts a probe of every address of every (target, port) of the domain (the prober probes
/// each endpoint once per scan), each under its target's name.
fn start_probes(prober: &Prober, observation: &DomainObservation) -> Vec<(DnsName, PendingProbe)> {
    let mut probes = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for record in observation.records.iter().filter(|r| !r.is_unusable()) {
        let Some(target) = observation.target(&record.target) else {
            continue;
        };
        for address in &target.addresses {
            if seen.insert((&record.target, *address, record.port)) {
                let probe = prober.request(*address, record.port);
                probes.push((record.target.clone(), probe));
            }
        }
    }
    probes
}

/// The probes' observations, in the order they were started: they all run already, so waiting
/// for them one by one costs no time.
async fn wait_for_probes(probes: Vec<(DnsName, PendingProbe)>) -> Vec<ProbeObservation> {
    for (_, probe) in &probes {
        probe.clone().await;
    }
    let mut observations = Vec::with_capacity(probes.len());
    for (target, probe) in probes {
        observations.push(probe.await.named(&target));
    }
    observations
}
