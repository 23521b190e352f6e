//! Discovery: which servers are authoritative for `_vlmcs._tcp.<domain>`, what each of them
//! publishes there, and which addresses the SRV targets have.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use tokio::sync::Semaphore;

use crate::dns::{self, QueryError, QueryOptions, Reply};
use crate::model::name::{DnsName, same_name};
use crate::model::{
    AddressSource, QueryStatus, ResolutionError, ServerObservation, SrvRecord, TargetObservation,
    Transport,
};
use crate::support::time::millis;

/// Why the authoritative servers of a name could not be found. The texts go into the report.
#[derive(Debug, Clone, thiserror::Error)]
pub(crate) enum DiscoveryError {
    #[error("no resolver configured")]
    NoResolver,
    /// Every resolver failed; what each said.
    #[error("{}", .0.iter().map(|(r, why)| format!("{r}: {why}")).collect::<Vec<_>>().join("; "))]
    Resolvers(Vec<(SocketAddr, ResolverFailure)>),
    #[error("SOA lookup for {name} failed: {source}")]
    SoaLookup {
        name: String,
        #[source]
        source: Box<DiscoveryError>,
    },
    #[error("no SOA record found for {name} ({rcode}): the domain may not exist")]
    NoSoa { name: String, rcode: ResponseCode },
    #[error("NS lookup for zone {zone} failed: {source}")]
    NsLookup {
        zone: String,
        #[source]
        source: Box<DiscoveryError>,
    },
    #[error("zone {zone} has no NS records")]
    NoNameServers { zone: String },
    #[error("none of the name servers of {zone} could be resolved: {}", .problems.join("; "))]
    NameServersUnresolved { zone: String, problems: Vec<String> },
    /// An authoritative server asked directly did not answer.
    #[error("{0}")]
    Query(#[source] QueryError),
    #[error("no SOA in the reply ({rcode})")]
    NoSoaInReply { rcode: ResponseCode },
}

/// What one resolver answered instead of an answer.
#[derive(Debug, Clone, thiserror::Error)]
pub(crate) enum ResolverFailure {
    #[error("{0}")]
    Answered(ResponseCode),
    #[error("{0}")]
    Failed(#[source] QueryError),
}

/// The authoritative servers of the zone that holds a name.
#[derive(Debug, Clone)]
pub(crate) struct Authorities {
    pub zone: Name,
    /// SOA MNAME: the primary, where dynamic updates go.
    pub primary: Name,
    pub servers: Vec<(String, SocketAddr)>,
}

pub use crate::model::MAX_RRSET;

/// Asks DNS questions under the scan's concurrency bound and timeout.
#[derive(Clone)]
pub(crate) struct Asker {
    pub permits: Arc<Semaphore>,
    pub timeout: Duration,
    pub pacer: Arc<Pacer>,
    /// The scan's UDP channels, one per server.
    pub mux: Arc<crate::dns::mux::Mux>,
    /// Each zone's primary (SOA MNAME) as each server names it, asked once per scan.
    primaries: Arc<std::sync::Mutex<PrimaryCache>>,
}

type PrimaryCache =
    std::collections::HashMap<(SocketAddr, Name), Arc<tokio::sync::OnceCell<Option<Name>>>>;

/// Politeness towards each DNS server: on average at most `qps` queries per second start
/// towards any one server address (0: no limit), with bursts of a tenth of a second's worth
/// (a token bucket, as the generic cell rate algorithm). Queries wait for their slot rather
/// than being dropped.
#[derive(Debug, Default)]
pub(crate) struct Pacer {
    interval: Option<Duration>,
    burst: Duration,
    /// Per server: the theoretical arrival time of the next query.
    next: std::sync::Mutex<std::collections::HashMap<SocketAddr, std::time::Instant>>,
}

impl Pacer {
    pub(crate) fn new(qps: u32) -> Self {
        let interval = (qps > 0).then(|| Duration::from_secs(1) / qps);
        Self {
            interval,
            burst: interval.map(|i| i * (qps / 10).max(1)).unwrap_or_default(),
            next: Default::default(),
        }
    }

    /// Waits until a query to `server` may start.
    pub(crate) async fn wait(&self, server: SocketAddr) {
        let Some(interval) = self.interval else {
            return;
        };
        let slot = {
            let mut next = self.next.lock().unwrap_or_else(|e| e.into_inner());
            let now = std::time::Instant::now();
            let tat = next
                .get(&server)
                .copied()
                .filter(|t| *t > now)
                .unwrap_or(now);
            next.insert(server, tat + interval);
            // Within the burst allowance the query goes now; beyond it, it waits its turn.
            tat.checked_sub(self.burst).filter(|s| *s > now)
        };
        if let Some(slot) = slot {
            tokio::time::sleep_until(slot.into()).await;
        }
    }
}

impl Asker {
    /// An asker for a scan's settings.
    pub(crate) fn new(concurrency: usize, timeout: Duration, qps: u32) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(concurrency)),
            timeout,
            pacer: Arc::new(Pacer::new(qps)),
            mux: Arc::default(),
            primaries: Arc::default(),
        }
    }

    pub(crate) async fn ask(
        &self,
        server: SocketAddr,
        name: &Name,
        rtype: RecordType,
        recursion: bool,
    ) -> Result<Reply, QueryError> {
        // A held-back server: the query fails now, without waiting for its turn.
        if let Some(refused) = self.mux.refusal(server, Transport::Udp, self.timeout) {
            return Err(refused);
        }
        self.pacer.wait(server).await;
        let _permit = self
            .permits
            .acquire()
            .await
            .expect("semaphore never closed");
        dns::query_via(
            Some(&self.mux),
            server,
            name,
            rtype,
            QueryOptions {
                recursion_desired: recursion,
                timeout: self.timeout,
            },
        )
        .await
    }

    /// Asks each resolver in turn until one gives an answer (NOERROR or NXDOMAIN).
    async fn ask_resolvers(
        &self,
        resolvers: &[SocketAddr],
        name: &Name,
        rtype: RecordType,
    ) -> Result<Reply, DiscoveryError> {
        let mut errors = Vec::new();
        for &resolver in resolvers {
            match self.ask(resolver, name, rtype, true).await {
                Ok(reply)
                    if matches!(
                        reply.response_code(),
                        ResponseCode::NoError | ResponseCode::NXDomain
                    ) =>
                {
                    return Ok(reply);
                }
                Ok(reply) => {
                    errors.push((resolver, ResolverFailure::Answered(reply.response_code())));
                }
                Err(e) => errors.push((resolver, ResolverFailure::Failed(e))),
            }
        }
        if errors.is_empty() {
            return Err(DiscoveryError::NoResolver);
        }
        Err(DiscoveryError::Resolvers(errors))
    }

    /// Finds the zone holding `name` (SOA), its name servers (NS) and their addresses,
    /// asking the recursive `resolvers`.
    pub(crate) async fn authorities(
        &self,
        resolvers: &[SocketAddr],
        name: &Name,
        nameserver_port: u16,
    ) -> Result<Authorities, DiscoveryError> {
        let soa_reply = self
            .ask_resolvers(resolvers, name, RecordType::SOA)
            .await
            .map_err(|e| DiscoveryError::SoaLookup {
                name: dns::presentation(name),
                source: Box::new(e),
            })?;
        let (zone, primary) = soa_of(
            soa_reply
                .message
                .answers
                .iter()
                .chain(&soa_reply.message.authorities),
        )
        .ok_or_else(|| DiscoveryError::NoSoa {
            name: dns::presentation(name),
            rcode: soa_reply.response_code(),
        })?;

        let ns_reply = self
            .ask_resolvers(resolvers, &zone, RecordType::NS)
            .await
            .map_err(|e| DiscoveryError::NsLookup {
                zone: dns::presentation(&zone),
                source: Box::new(e),
            })?;
        let ns_names: Vec<Name> = ns_reply
            .message
            .answers
            .iter()
            .filter_map(|r| match &r.data {
                RData::NS(ns) => Some(ns.0.clone()),
                _ => None,
            })
            .collect();
        if ns_names.is_empty() {
            return Err(DiscoveryError::NoNameServers {
                zone: dns::presentation(&zone),
            });
        }
        // Glue from an answer that may have run out of room may lack a server's AAAA (or A):
        // then every name server is looked up, as a target of such an SRV answer is.
        let glue: &[Record] = if ns_reply.additional_may_be_cut() {
            &[]
        } else {
            &ns_reply.message.additionals
        };
        let servers = self
            .name_server_addresses(resolvers, &ns_names, glue, nameserver_port)
            .await
            .map_err(|problems| DiscoveryError::NameServersUnresolved {
                zone: dns::presentation(&zone),
                problems,
            })?;
        Ok(Authorities {
            zone,
            primary,
            servers,
        })
    }

    /// The addresses of the name servers, from the glue or looked up; what went wrong with
    /// each when none has one.
    async fn name_server_addresses(
        &self,
        resolvers: &[SocketAddr],
        ns_names: &[Name],
        glue: &[Record],
        nameserver_port: u16,
    ) -> Result<Vec<(String, SocketAddr)>, Vec<String>> {
        let mut servers = Vec::new();
        let mut problems = Vec::new();
        let lookups = ns_names.iter().map(|ns| async move {
            let from_glue = addresses_in(glue, ns);
            let addresses = if from_glue.is_empty() {
                self.resolve_with(resolvers, ns).await
            } else {
                Ok(from_glue)
            };
            (ns, addresses)
        });
        for (ns, addresses) in futures_util::future::join_all(lookups).await {
            match addresses {
                Ok(list) if !list.is_empty() => {
                    servers.extend(
                        list.into_iter().map(|ip| {
                            (dns::presentation(ns), SocketAddr::new(ip, nameserver_port))
                        }),
                    );
                }
                Ok(_) => problems.push(format!("{} has no address", dns::presentation(ns))),
                Err(e) => problems.push(format!("{}: {e}", dns::presentation(ns))),
            }
        }
        if servers.is_empty() {
            return Err(problems);
        }
        Ok(servers)
    }

    /// The primary (SOA MNAME) of `zone` as `server` has it, asked once per (server, zone) for
    /// the whole scan; `None` when the server does not say.
    pub(crate) async fn primary_of(&self, server: SocketAddr, zone: &Name) -> Option<Name> {
        let cell = self
            .primaries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .entry((server, zone.to_lowercase()))
            .or_default()
            .clone();
        cell.get_or_init(|| async {
            let (owner, primary) = self.zone_of(server, zone).await.ok()?;
            same_name(&owner, zone).then_some(primary)
        })
        .await
        .clone()
    }

    /// The zone that holds `name`, as `server` (authoritative) sees it: the owner of the SOA
    /// in its answer or authority section, with the SOA MNAME (the primary's host name).
    pub(crate) async fn zone_of(
        &self,
        server: SocketAddr,
        name: &Name,
    ) -> Result<(Name, Name), DiscoveryError> {
        let reply = self
            .ask(server, name, RecordType::SOA, false)
            .await
            .map_err(DiscoveryError::Query)?;
        let in_reply = |reply: &Reply| {
            soa_of(
                reply
                    .message
                    .answers
                    .iter()
                    .chain(&reply.message.authorities),
            )
            .ok_or_else(|| DiscoveryError::NoSoaInReply {
                rcode: reply.response_code(),
            })
        };
        let found = in_reply(&reply);
        // An alias answers the SOA question with its CNAME (and, when it points out of the
        // zone, nothing else): it lives in its parent's zone, since a zone's apex cannot be an
        // alias (RFC 1034 section 3.6.2).
        if found.is_err() && !name.is_root() && alias_end(&reply.message.answers, name).is_some() {
            let parent = self
                .ask(server, &name.base_name(), RecordType::SOA, false)
                .await
                .map_err(DiscoveryError::Query)?;
            return in_reply(&parent);
        }
        found
    }

    async fn resolve_with(
        &self,
        resolvers: &[SocketAddr],
        name: &Name,
    ) -> Result<Vec<IpAddr>, DiscoveryError> {
        let (a, aaaa) = tokio::join!(
            self.ask_resolvers(resolvers, name, RecordType::A),
            self.ask_resolvers(resolvers, name, RecordType::AAAA)
        );
        let mut out = Vec::new();
        for reply in [&a, &aaaa].into_iter().flatten() {
            out.extend(addresses_in(&reply.message.answers, name));
        }
        if out.is_empty()
            && let (Err(e), _) | (_, Err(e)) = (&a, &aaaa)
        {
            return Err(e.clone());
        }
        Ok(out)
    }

    /// Asks one authoritative server for the SRV RRset, recursion off.
    pub(crate) async fn query_srv(
        &self,
        server_name: &str,
        server: SocketAddr,
        query_name: &Name,
    ) -> (ServerObservation, Option<Message>) {
        let started = std::time::Instant::now();
        let result = self.ask(server, query_name, RecordType::SRV, false).await;
        let mut observation = ServerObservation {
            name: server_name.to_string(),
            records_answered: None,
            alias: None,
            address: server,
            status: QueryStatus::OtherError,
            transport: Transport::Udp,
            truncated_over_udp: false,
            records: Vec::new(),
            response_code: None,
            detail: None,
            duration_ms: millis(started.elapsed()),
        };
        let reply = match result {
            Err(error) => {
                if let QueryError::OverTcp { udp_failure, .. } = &error {
                    observation.transport = Transport::Tcp;
                    observation.truncated_over_udp = udp_failure.is_none();
                }
                observation.status = match error.innermost() {
                    QueryError::Timeout(_) | QueryError::HeldBack { .. } => QueryStatus::Timeout,
                    QueryError::Network(_) => QueryStatus::NetworkError,
                    QueryError::Malformed(_) | QueryError::OverTcp { .. } => {
                        QueryStatus::OtherError
                    }
                };
                observation.detail = Some(error.to_string());
                return (observation, None);
            }
            Ok(reply) => reply,
        };
        observation.transport = reply.transport;
        observation.truncated_over_udp = reply.truncated_over_udp;
        observation.duration_ms = millis(reply.elapsed);
        let rcode = reply.response_code();
        observation.response_code = Some(rcode.to_string());
        observation.status = match rcode {
            ResponseCode::ServFail => QueryStatus::ServFail,
            ResponseCode::Refused => QueryStatus::Refused,
            _ if !matches!(rcode, ResponseCode::NoError | ResponseCode::NXDomain) => {
                observation.detail = Some(format!("response code {rcode}"));
                QueryStatus::OtherError
            }
            _ if !reply.authoritative() => QueryStatus::NotAuthoritative,
            ResponseCode::NXDomain => QueryStatus::NxDomain,
            _ => {
                // An alias is followed as far as the answer goes, as a client's resolver does.
                let alias = alias_end(&reply.message.answers, query_name);
                let owner = alias.as_ref().unwrap_or(query_name);
                observation.records = srv_records(&reply.message.answers, owner);
                observation.alias = alias.map(DnsName::new);
                if observation.records.len() > MAX_RRSET {
                    observation.records_answered = Some(observation.records.len());
                    observation.records.truncate(MAX_RRSET);
                }
                if observation.records.is_empty() {
                    QueryStatus::NoData
                } else {
                    QueryStatus::Answer
                }
            }
        };
        let may_be_cut = reply.additional_may_be_cut();
        let mut message = reply.message;
        if may_be_cut {
            // Some of the targets' addresses may be missing from it, with nothing to tell which:
            // every target of this answer is looked up instead (A and AAAA).
            message.additionals.clear();
        }
        (observation, Some(message))
    }

    /// Resolves one SRV target: the additional sections of the SRV answers first, then the
    /// servers that were asked for the SRV records (authoritative answers only), then the
    /// resolvers.
    pub(crate) async fn resolve_target(
        &self,
        target: &DnsName,
        srv_replies: &[Message],
        servers: &[SocketAddr],
        resolvers: &[SocketAddr],
    ) -> TargetObservation {
        let mut observation = TargetObservation {
            target: target.clone(),
            source: AddressSource::None,
            cname: None,
            addresses: Vec::new(),
            resolution_error: None,
        };
        let additional = srv_replies.iter().flat_map(|m| &m.additionals);
        let from_additional = addresses_where(additional, |owner| target.spells(owner));
        if !from_additional.is_empty() {
            observation.source = AddressSource::Additional;
            observation.addresses = dedup(from_additional);
            return observation;
        }
        let mut name = target.to_name();
        // Follow CNAMEs ourselves (bounded), so an alias to another zone still resolves.
        for _ in 0..8 {
            match self.lookup_addresses(&name, servers, resolvers).await {
                Lookup::Addresses {
                    addresses,
                    cname,
                    source,
                } => {
                    observation.source = source;
                    if let Some(alias) = cname {
                        observation
                            .cname
                            .get_or_insert_with(|| dns::presentation(&alias));
                        if addresses.is_empty() {
                            name = alias;
                            continue;
                        }
                    }
                    if addresses.is_empty() {
                        observation.resolution_error = Some(ResolutionError::NoData);
                    }
                    observation.addresses = dedup(addresses);
                    return observation;
                }
                Lookup::NxDomain => {
                    observation.source = AddressSource::Lookup;
                    observation.resolution_error = Some(ResolutionError::NxDomain {
                        name: dns::presentation(&name),
                    });
                    return observation;
                }
                Lookup::Failed(e) => {
                    observation.resolution_error = Some(ResolutionError::LookupFailed(e));
                    return observation;
                }
            }
        }
        observation.resolution_error = Some(ResolutionError::ChainTooLong);
        observation
    }

    async fn lookup_addresses(
        &self,
        name: &Name,
        servers: &[SocketAddr],
        resolvers: &[SocketAddr],
    ) -> Lookup {
        // Authoritative servers first (recursion off, AA required), then the resolvers.
        let candidates = servers
            .iter()
            .map(|s| (*s, false))
            .chain(resolvers.iter().map(|s| (*s, true)));
        let mut errors = Vec::new();
        for (server, recursion) in candidates {
            let (a, aaaa) = tokio::join!(
                self.ask(server, name, RecordType::A, recursion),
                self.ask(server, name, RecordType::AAAA, recursion)
            );
            let usable = |r: &Result<Reply, QueryError>| match r {
                Ok(reply) => {
                    matches!(
                        reply.response_code(),
                        ResponseCode::NoError | ResponseCode::NXDomain
                    ) && (recursion || reply.authoritative())
                }
                Err(_) => false,
            };
            if !usable(&a) && !usable(&aaaa) {
                for r in [&a, &aaaa] {
                    match r {
                        Ok(reply) => errors.push(format!("{server}: {}", reply.response_code())),
                        Err(e) => errors.push(format!("{server}: {e}")),
                    }
                }
                continue;
            }
            let replies: Vec<&Reply> = [&a, &aaaa]
                .into_iter()
                .flatten()
                .filter(|r| usable(&Ok((*r).clone())))
                .collect();
            if replies
                .iter()
                .all(|r| r.response_code() == ResponseCode::NXDomain)
            {
                return Lookup::NxDomain;
            }
            let mut addresses = Vec::new();
            let mut cname = None;
            for reply in &replies {
                let (found, alias) = follow_chain(&reply.message.answers, name);
                addresses.extend(found);
                cname = cname.or(alias);
            }
            return Lookup::Addresses {
                addresses,
                cname,
                source: AddressSource::Lookup,
            };
        }
        if errors.is_empty() {
            return Lookup::Failed("no server or resolver to ask".into());
        }
        Lookup::Failed(errors.join("; "))
    }
}

enum Lookup {
    Addresses {
        addresses: Vec<IpAddr>,
        /// The first alias, when `name` is a CNAME.
        cname: Option<Name>,
        source: AddressSource,
    },
    NxDomain,
    Failed(String),
}

/// The zone and primary (SOA owner and MNAME) named by the first SOA among `records`.
/// The zone an authoritative answer for `name` came from, by the NS RRset in its authority
/// section (its owner is the zone's apex), when the server put it there (BIND does for
/// queries without recursion; Knot and PowerDNS do not).
pub(crate) fn zone_from_ns<'a>(
    records: impl IntoIterator<Item = &'a Record>,
    name: &Name,
) -> Option<Name> {
    records.into_iter().find_map(|r| match &r.data {
        RData::NS(_) if r.name.zone_of(name) => Some(r.name.clone()),
        _ => None,
    })
}

pub(crate) fn soa_of<'a>(records: impl IntoIterator<Item = &'a Record>) -> Option<(Name, Name)> {
    records.into_iter().find_map(|r| match &r.data {
        RData::SOA(soa) => Some((r.name.clone(), soa.mname.clone())),
        _ => None,
    })
}

/// Addresses of `name` in a CNAME chain within `records`; also the first alias, if any.
/// When the chain leaves the records, the addresses are empty and the last alias is returned
/// so the caller can look it up.
fn follow_chain(records: &[Record], name: &Name) -> (Vec<IpAddr>, Option<Name>) {
    let end = alias_end(records, name);
    let found = addresses_in(records, end.as_ref().unwrap_or(name));
    if found.is_empty() {
        return (found, end);
    }
    (found, cname_of(records, name).cloned())
}

fn addresses_in<'a>(records: impl IntoIterator<Item = &'a Record>, name: &Name) -> Vec<IpAddr> {
    addresses_where(records, |owner| same_name(owner, name))
}

/// The A and AAAA addresses among `records` whose owner `is_wanted`.
fn addresses_where<'a>(
    records: impl IntoIterator<Item = &'a Record>,
    is_wanted: impl Fn(&Name) -> bool,
) -> Vec<IpAddr> {
    records
        .into_iter()
        .filter(|r| is_wanted(&r.name))
        .filter_map(|r| match &r.data {
            RData::A(a) => Some(IpAddr::V4(a.0)),
            RData::AAAA(a) => Some(IpAddr::V6(a.0)),
            _ => None,
        })
        .collect()
}

fn dedup(mut list: Vec<IpAddr>) -> Vec<IpAddr> {
    list.sort();
    list.dedup();
    list
}

/// Where the CNAME chain that starts at `name` in `answers` ends, when `name` is an alias
/// (at most 8 links; a loop ends where it closes).
pub(crate) fn alias_end(answers: &[Record], name: &Name) -> Option<Name> {
    let mut current = name;
    let mut seen = 0;
    while seen < 8 {
        let Some(next) = cname_of(answers, current) else {
            break;
        };
        if same_name(next, name) {
            // A loop back to the start; a name that is an alias of itself is still an alias
            // (clients find nothing behind it, which is not "no records here").
            if seen == 0 {
                return Some(name.clone());
            }
            break;
        }
        current = next;
        seen += 1;
    }
    (seen > 0).then(|| current.clone())
}

/// The name `name` is an alias of, when `records` hold a CNAME at it.
fn cname_of<'a>(records: &'a [Record], name: &Name) -> Option<&'a Name> {
    records.iter().find_map(|r| match &r.data {
        RData::CNAME(c) if same_name(&r.name, name) => Some(&c.0),
        _ => None,
    })
}

/// The SRV RRset at `owner` as `server` serves it with authority, read over TCP as an update
/// goes (what `clean` reads back before a delete, `restore` before an addition); `Err` says why
/// it could not be read (a failed query, an answer without authority or with another rcode).
pub(crate) async fn live_srv_rrset(
    server: SocketAddr,
    owner: &Name,
    timeout: Duration,
) -> Result<Vec<SrvRecord>, LiveRrsetError> {
    let options = QueryOptions {
        recursion_desired: false,
        timeout,
    };
    let reply = dns::query_tcp(server, owner, RecordType::SRV, options).await?;
    let rcode = reply.response_code();
    if !reply.authoritative() || !matches!(rcode, ResponseCode::NoError | ResponseCode::NXDomain) {
        return Err(LiveRrsetError::Answer {
            rcode,
            authoritative: reply.authoritative(),
        });
    }
    Ok(srv_records(&reply.message.answers, owner))
}

/// Why a live RRset could not be read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum LiveRrsetError {
    /// The query failed.
    #[error("{0}")]
    Query(#[from] QueryError),
    /// An answer that does not say what is there: another rcode, or without authority.
    #[error("{rcode}{}", if *.authoritative { "" } else { ", not authoritative" })]
    Answer {
        rcode: ResponseCode,
        authoritative: bool,
    },
}

/// SRV records for `owner` in an answer section, in presentation form.
pub(crate) fn srv_records(answers: &[Record], owner: &Name) -> Vec<SrvRecord> {
    let mut out: Vec<SrvRecord> = answers
        .iter()
        .filter(|r| same_name(&r.name, owner))
        .filter_map(|r| match &r.data {
            RData::SRV(srv) => Some(SrvRecord {
                priority: srv.priority,
                weight: srv.weight,
                port: srv.port,
                target: DnsName::new(srv.target.clone()),
                ttl: r.ttl,
            }),
            _ => None,
        })
        .collect();
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alias_chains_end_where_the_records_do_and_loops_end() {
        let name = |text: &str| Name::from_ascii(text).unwrap();
        let cname = |from: &str, to: &str| {
            Record::from_rdata(
                name(from),
                300,
                RData::CNAME(hickory_proto::rr::rdata::CNAME(name(to))),
            )
        };
        let a = |owner: &str| {
            Record::from_rdata(
                name(owner),
                300,
                RData::A(hickory_proto::rr::rdata::A::new(192, 0, 2, 1)),
            )
        };
        let start = name("_vlmcs._tcp.a.example.");
        // Not an alias.
        assert_eq!(alias_end(&[a("_vlmcs._tcp.a.example.")], &start), None);
        // Two links, in any order, names in any case.
        let chain = [
            cname("_VLMCS._tcp.b.example.", "_vlmcs._tcp.c.example."),
            cname("_vlmcs._tcp.a.example.", "_vlmcs._tcp.B.example."),
        ];
        assert_eq!(
            alias_end(&chain, &start),
            Some(name("_vlmcs._tcp.c.example."))
        );
        // A loop back to the start ends before it closes; any loop ends within 8 links.
        let looped = [
            cname("_vlmcs._tcp.a.example.", "_vlmcs._tcp.b.example."),
            cname("_vlmcs._tcp.b.example.", "_vlmcs._tcp.a.example."),
        ];
        assert_eq!(
            alias_end(&looped, &start),
            Some(name("_vlmcs._tcp.b.example."))
        );
        let cycle = [
            cname("_vlmcs._tcp.a.example.", "_vlmcs._tcp.b.example."),
            cname("_vlmcs._tcp.b.example.", "_vlmcs._tcp.c.example."),
            cname("_vlmcs._tcp.c.example.", "_vlmcs._tcp.b.example."),
        ];
        assert!(alias_end(&cycle, &start).is_some());
        // An alias of itself is an alias (of itself), as a loop of two is.
        let own = [cname("_vlmcs._tcp.a.example.", "_VLMCS._tcp.A.example.")];
        assert_eq!(alias_end(&own, &start), Some(start.clone()));
        // Addresses at the end of a chain, with the first alias; none: where to look next.
        let (found, first) = follow_chain(
            &[
                cname("t.example.", "u.example."),
                cname("u.example.", "v.example."),
                a("v.example."),
            ],
            &name("t.example."),
        );
        assert_eq!((found.len(), first), (1, Some(name("u.example."))));
        let (found, resume) = follow_chain(
            &[
                cname("t.example.", "u.example."),
                cname("u.example.", "w.other."),
            ],
            &name("t.example."),
        );
        assert_eq!((found.len(), resume), (0, Some(name("w.other."))));
    }

    #[tokio::test]
    async fn pacer_spaces_queries_per_server_only() {
        let pacer = Pacer::new(100);
        let a: SocketAddr = "192.0.2.1:53".parse().unwrap();
        let b: SocketAddr = "192.0.2.2:53".parse().unwrap();
        // A burst of a tenth of a second's worth (10 queries) goes at once...
        let started = std::time::Instant::now();
        for _ in 0..10 {
            pacer.wait(a).await;
        }
        assert!(
            started.elapsed() < Duration::from_millis(15),
            "{:?}",
            started.elapsed()
        );
        // ...then the rate holds: 5 more take about 50 ms.
        let started = std::time::Instant::now();
        for _ in 0..5 {
            pacer.wait(a).await;
        }
        let one_server = started.elapsed();
        assert!(one_server >= Duration::from_millis(40), "{one_server:?}");
        let started = std::time::Instant::now();
        pacer.wait(b).await;
        assert!(
            started.elapsed() < Duration::from_millis(5),
            "another server does not wait"
        );
        let unlimited = Pacer::new(0);
        let started = std::time::Instant::now();
        for _ in 0..1000 {
            unlimited.wait(a).await;
        }
        assert!(started.elapsed() < Duration::from_millis(50));
    }
}
