//! Carrying out a plan: for each record, re-probe, write the undo line, send the conditional
//! delete, log it; then check that every authoritative server stopped serving what was deleted.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::SystemTime;

use hickory_proto::rr::{Name, RecordType};
use serde::Serialize;

use super::plan::{Plan, PlanItem};
use super::trail::{AuditEntry, AuditLog, UndoFile};
use crate::audit::discover::Asker;
use crate::config::ScanSettings;
use crate::dns;
use crate::dns::auth::Auth;
use crate::dns::update::{self, Change, Destination, Scope, UpdateError};
use crate::model::name::DnsName;
use crate::model::{FindingCode, ProbeOutcome, Report, SrvRecord};
use crate::probe::{self, ProbeOptions};

/// How one planned deletion ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ActionOutcome {
    /// Deleted, and checked gone.
    Deleted,
    /// Not attempted: a safety rail or an earlier failure kept it.
    Skipped,
    /// Not applied: the server said no, or nothing was sent.
    Failed,
    /// Sent, and no trustworthy reply came back: the next scan settles it.
    Unknown,
}

impl std::fmt::Display for ActionOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Deleted => "deleted",
            Self::Skipped => "skipped",
            Self::Failed => "failed",
            Self::Unknown => "unknown",
        })
    }
}

/// What happened to one planned deletion.
#[derive(Debug, Clone, Serialize)]
pub struct ActionResult {
    /// The record's domain.
    pub domain: String,
    /// The record.
    pub record: SrvRecord,
    /// How it ended.
    pub result: ActionOutcome,
    /// What happened, in words.
    pub message: String,
    /// The server the delete went to, when one was chosen.
    pub server: Option<String>,
    /// The zone the delete was for, when it was found.
    pub zone: Option<String>,
    /// Authoritative servers that still served the record after the delete.
    pub still_served_by: Vec<String>,
}

impl ActionResult {
    /// The result of `item` before anything was tried: skipped, until a phase says otherwise.
    fn untried(item: &PlanItem) -> Self {
        Self {
            domain: item.domain.clone(),
            record: item.record.clone(),
            result: ActionOutcome::Skipped,
            message: String::new(),
            server: None,
            zone: None,
            still_served_by: Vec::new(),
        }
    }
}

/// Why a domain's updates have nowhere to go.
#[derive(Debug, Clone, thiserror::Error)]
pub(crate) enum DestinationError {
    #[error("{owner} is not a valid owner name")]
    BadOwner { owner: String },
    #[error("the primary (SOA MNAME) of {owner} is unknown: pass --primary")]
    PrimaryUnknown { owner: String },
    #[error("the primary {primary} (SOA MNAME) has no address: pass --primary")]
    PrimaryUnresolved { primary: String },
    #[error("cannot find the zone of {owner} at {server}: {source}")]
    ZoneUnknown {
        owner: String,
        server: SocketAddr,
        #[source]
        source: crate::audit::discover::DiscoveryError,
    },
}

/// What carries from one delete to the next.
#[derive(Default)]
struct Progress {
    /// The RRset as it is now, per domain: the prerequisite of each next delete.
    rrsets: BTreeMap<String, Vec<SrvRecord>>,
    /// Where each domain's updates go (found once).
    targets: BTreeMap<String, Result<Destination, DestinationError>>,
    /// Domains no further delete may touch, and why.
    stopped_domains: BTreeMap<String, String>,
    /// Set when nothing more may be sent at all, and why.
    stopped_run: Option<String>,
}

impl Progress {
    fn stopped(&self, domain: &str) -> Option<&String> {
        self.stopped_run
            .as_ref()
            .or(self.stopped_domains.get(domain))
    }

    fn stop_domain(&mut self, domain: &str, why: String) {
        self.stopped_domains.insert(domain.to_string(), why);
    }
}

/// Why the RRset read back just before a delete does not allow it.
enum RereadError {
    /// It differs from what was audited (a safety rail: skipped).
    Changed(String),
    /// It could not be read (a failure: nothing was sent).
    Unreadable(String),
}

pub(crate) struct Applier<'a> {
    pub settings: &'a ScanSettings,
    pub auth: &'a Auth,
    pub resolvers: Vec<SocketAddr>,
    /// `--primary`: send every update here.
    pub primary_override: Option<SocketAddr>,
    pub undo: UndoFile,
    pub audit: AuditLog,
    /// Set when an audit-log line could not be written: the run stopped before the next
    /// delete; the deletes that went out without their line, and why.
    pub unaudited: Vec<(PlanItem, String)>,
}

impl Applier<'_> {
    /// Deletes what the plan says, one record at a time, in plan order.
    pub(crate) async fn apply(&mut self, report: &Report, plan: &Plan) -> Vec<ActionResult> {
        let asker = Asker::new(
            self.settings.concurrency,
            self.settings.timeout,
            self.settings.qps,
        );
        let mut progress = Progress::default();
        let mut results = Vec::new();
        for item in plan.deletions() {
            let Some(domain) = report
                .domains
                .iter()
                .find(|d| d.observation.domain == item.domain)
            else {
                continue;
            };
            let result = self
                .delete_one(&asker, &domain.observation, item, &mut progress)
                .await;
            results.push(result);
        }
        self.confirm_gone(&asker, report, &mut results).await;
        results
    }

    /// One planned deletion, in phases: not stopped, still dead, where to send it, read the
    /// RRset back, undo line, the conditional delete, and what its answer means for the rest.
    async fn delete_one(
        &mut self,
        asker: &Asker,
        obs: &crate::model::DomainObservation,
        item: &PlanItem,
        progress: &mut Progress,
    ) -> ActionResult {
        let mut result = ActionResult::untried(item);
        if let Some(why) = progress.stopped(&item.domain) {
            result.message = format!("not attempted: {why}");
            return result;
        }
        if let Some(why) = self.alive_again(obs, item).await {
            result.message = why;
            self.log_or_stop(item, None, "", "skipped: answers again", progress);
            return result;
        }
        let target = match self.destination(asker, obs, &item.domain, progress).await {
            Ok(t) => t,
            Err(why) => {
                result.result = ActionOutcome::Failed;
                result.message = why.clone();
                progress.stop_domain(&item.domain, why);
                return result;
            }
        };
        let zone_text = dns::presentation(&target.zone);
        result.server = Some(target.server.to_string());
        result.zone = Some(zone_text.clone());
        let rrset = progress
            .rrsets
            .entry(item.domain.clone())
            .or_insert_with(|| obs.records.clone())
            .clone();
        let Some(owner) = dns::parse_presentation(&item.owner) else {
            result.result = ActionOutcome::Failed;
            result.message = format!("owner {} is not a valid name", item.owner);
            return result;
        };
        // RFC 2136 prerequisites compare values, never TTLs: read the RRset back from the
        // server the delete goes to, so a changed TTL (or anything else) stops this domain
        // before anything is sent, and the undo line carries the TTL that is really there.
        if let Err(e) = self.rrset_unchanged(target.server, &owner, &rrset).await {
            let (why, logged) = match e {
                RereadError::Changed(why) => {
                    result.message = format!("not deleted: {why}");
                    (why.clone(), format!("skipped: {why}"))
                }
                RereadError::Unreadable(why) => {
                    result.result = ActionOutcome::Failed;
                    result.message = why.clone();
                    (why.clone(), why)
                }
            };
            progress.stop_domain(&item.domain, why);
            self.log_or_stop(item, Some(target.server), &zone_text, &logged, progress);
            return result;
        }
        if let Err(e) = self
            .undo
            .append(target.server, &target.zone, &owner, &item.record)
        {
            // Without the undo line written, nothing may be deleted.
            let why = e.to_string();
            result.result = ActionOutcome::Failed;
            result.message = why.clone();
            progress.stopped_run = Some(why);
            return result;
        }
        let change = Change::DeleteExact {
            rrset,
            victim: item.record.clone(),
        };
        let sent = update::send(&target, &owner, &change, self.auth, self.settings.timeout).await;
        self.settle(item, target.server, &zone_text, sent, progress, &mut result);
        result
    }

    /// Where a domain's updates go, found once per domain (a failure too, as its text).
    async fn destination(
        &self,
        asker: &Asker,
        obs: &crate::model::DomainObservation,
        domain: &str,
        progress: &mut Progress,
    ) -> Result<Destination, String> {
        if !progress.targets.contains_key(domain) {
            let target = self.update_target(asker, obs).await;
            progress.targets.insert(domain.to_string(), target);
        }
        progress.targets[domain].clone().map_err(|e| e.to_string())
    }

    /// Records what the delete's answer means: for this record, the audit log and the undo
    /// file, and for the deletes still to come (this domain, or the whole run).
    fn settle(
        &mut self,
        item: &PlanItem,
        server: SocketAddr,
        zone_text: &str,
        sent: Result<update::Applied, UpdateError>,
        progress: &mut Progress,
        result: &mut ActionResult,
    ) {
        match sent {
            Ok(applied) => {
                result.result = ActionOutcome::Deleted;
                result.message = format!("deleted ({}; reply {})", item.reason, applied.verified);
                if let Some(set) = progress.rrsets.get_mut(&item.domain) {
                    set.retain(|r| r.rdata_key() != item.record.rdata_key());
                }
                self.log_or_stop(item, Some(server), zone_text, "ok", progress);
            }
            Err(e) if e.outcome_unknown() => {
                result.result = ActionOutcome::Unknown;
                result.message = e.to_string();
                self.log_or_stop(
                    item,
                    Some(server),
                    zone_text,
                    &format!("unknown: {e}"),
                    progress,
                );
                let _ = self.undo.note(
                    "the outcome of the delete above is unknown (the request was sent, no trustworthy reply came back): the record may or may not still be there; restoring it is harmless either way",
                );
                progress.stopped_run = Some(format!(
                    "the outcome of an earlier delete is unknown ({e}); re-scan first"
                ));
            }
            Err(e) => {
                result.result = ActionOutcome::Failed;
                result.message = e.to_string();
                self.log_or_stop(item, Some(server), zone_text, &e.to_string(), progress);
                // The undo block was written before the attempt: say what became of it.
                let _ = self.undo.note(&format!(
                    "the delete above was not applied ({e}); restoring it re-adds a record that is still there, which changes nothing"
                ));
                match (e.scope(), &e) {
                    // This domain's RRset moved: re-plan it, never retry blindly.
                    (_, UpdateError::RrsetChanged) => progress.stop_domain(
                        &item.domain,
                        "the RRset changed (NXRRSET); re-run to plan again".into(),
                    ),
                    (Scope::Domain, _) => progress.stop_domain(
                        &item.domain,
                        format!("an earlier delete in this domain failed: {e}"),
                    ),
                    // Keys, clocks and transport affect every update: stop everything.
                    (Scope::Run, _) => {
                        progress.stopped_run = Some(format!("an earlier delete failed: {e}"));
                    }
                }
            }
        }
    }

    /// Asks `server` (where the delete goes) for the RRset and compares it, values and TTLs,
    /// with what the plan expects; `Err` says what differs or why it could not be read.
    async fn rrset_unchanged(
        &self,
        server: SocketAddr,
        owner: &Name,
        expected: &[SrvRecord],
    ) -> Result<(), RereadError> {
        let seen = crate::audit::discover::live_srv_rrset(server, owner, self.settings.timeout)
            .await
            .map_err(|why| {
                RereadError::Unreadable(format!(
                    "cannot read the RRset back from {server} before deleting ({why}); nothing was changed"
                ))
            })?;
        let mut want: Vec<&SrvRecord> = expected.iter().collect();
        let mut have: Vec<&SrvRecord> = seen.iter().collect();
        want.sort();
        have.sort();
        if want == have {
            return Ok(());
        }
        let same_values = want.len() == have.len()
            && want
                .iter()
                .zip(&have)
                .all(|(a, b)| a.rdata_key() == b.rdata_key());
        Err(RereadError::Changed(if same_values {
            let ttls = |set: &[&SrvRecord]| {
                let mut t: Vec<String> = set.iter().map(|r| r.ttl.to_string()).collect();
                t.dedup();
                t.join("/")
            };
            format!(
                "the RRset's TTL changed since it was audited ({} → {}); nothing was changed, re-run to plan again",
                ttls(&want),
                ttls(&have)
            )
        } else {
            format!(
                "the RRset at {server} changed since it was audited ({} records then, {} now); nothing was changed, re-run to plan again",
                want.len(),
                have.len()
            )
        }))
    }

    /// Re-probes a dead or non-KMS record's addresses; `Some(reason)` when it now answers.
    async fn alive_again(
        &self,
        obs: &crate::model::DomainObservation,
        item: &PlanItem,
    ) -> Option<String> {
        if !matches!(item.reason, FindingCode::DeadHost | FindingCode::NotKms) {
            return None;
        }
        let target = obs.target(&item.record.target)?;
        let options = ProbeOptions {
            timeout: self.settings.timeout,
            check_emulator: false,
        };
        let probes = futures_util::future::join_all(
            target
                .addresses
                .iter()
                .map(|a| probe::probe(&item.record.target, *a, item.record.port, options)),
        )
        .await;
        let revived = probes.iter().find(|p| match item.reason {
            FindingCode::DeadHost => !p.outcome.is_dead(),
            _ => p.outcome == ProbeOutcome::KmsRpc,
        })?;
        Some(format!(
            "kept: re-probed just before deleting, {} now answers ({})",
            crate::model::display_addr(revived.address),
            revived.detail
        ))
    }

    /// The server and zone for a domain's updates: `--primary`, else the first configured
    /// server, else the zone's SOA MNAME.
    async fn update_target(
        &self,
        asker: &Asker,
        obs: &crate::model::DomainObservation,
    ) -> Result<Destination, DestinationError> {
        let owner =
            dns::parse_presentation(&obs.query_name).ok_or_else(|| DestinationError::BadOwner {
                owner: obs.query_name.clone(),
            })?;
        let configured = obs
            .servers
            .first()
            .filter(|_| obs.servers_from == crate::model::ServersFrom::Configured)
            .map(|s| s.address);
        let server = match (self.primary_override, configured) {
            (Some(p), _) => p,
            (None, Some(s)) => s,
            (None, None) => {
                let mname = obs.primary.as_ref().map(DnsName::to_name).ok_or_else(|| {
                    DestinationError::PrimaryUnknown {
                        owner: obs.query_name.clone(),
                    }
                })?;
                let address = self.resolve(asker, &mname).await.ok_or_else(|| {
                    DestinationError::PrimaryUnresolved {
                        primary: dns::presentation(&mname),
                    }
                })?;
                SocketAddr::new(address, self.settings.nameserver_port)
            }
        };
        let known = obs
            .zone
            .as_ref()
            .map(DnsName::to_name)
            .zip(obs.primary.as_ref().map(DnsName::to_name));
        let (zone, server_name) = match known {
            Some(found) => found,
            None => asker.zone_of(server, &owner).await.map_err(|source| {
                DestinationError::ZoneUnknown {
                    owner: obs.query_name.clone(),
                    server,
                    source,
                }
            })?,
        };
        Ok(Destination {
            server,
            zone,
            server_name: Some(server_name),
        })
    }

    async fn resolve(&self, asker: &Asker, name: &Name) -> Option<std::net::IpAddr> {
        for resolver in &self.resolvers {
            for rtype in [RecordType::A, RecordType::AAAA] {
                if let Ok(reply) = asker.ask(*resolver, name, rtype, true).await {
                    let found = reply.message.answers.iter().find_map(|r| match &r.data {
                        hickory_proto::rr::RData::A(a) => Some(std::net::IpAddr::V4(a.0)),
                        hickory_proto::rr::RData::AAAA(a) => Some(std::net::IpAddr::V6(a.0)),
                        _ => None,
                    });
                    if found.is_some() {
                        return found;
                    }
                }
            }
        }
        None
    }

    /// Asks every authoritative server again; records still served are reported (replication
    /// lag), not treated as failures.
    async fn confirm_gone(&self, asker: &Asker, report: &Report, results: &mut [ActionResult]) {
        for result in results
            .iter_mut()
            .filter(|r| r.result == ActionOutcome::Deleted)
        {
            let Some(domain) = report
                .domains
                .iter()
                .find(|d| d.observation.domain == result.domain)
            else {
                continue;
            };
            let Some(owner) = dns::parse_presentation(&domain.observation.query_name) else {
                continue;
            };
            for server in &domain.observation.servers {
                let (now, _) = asker.query_srv(&server.name, server.address, &owner).await;
                if now
                    .records
                    .iter()
                    .any(|r| r.rdata_key() == result.record.rdata_key())
                {
                    result.still_served_by.push(server.name.clone());
                }
            }
            if !result.still_served_by.is_empty() {
                result.message.push_str(&format!(
                    "; still served by {} (replication lag: check again later)",
                    result.still_served_by.join(", ")
                ));
            }
        }
    }

    /// Writes the audit line of an outcome. The audit trail is a precondition of deleting: when
    /// the line cannot be written, nothing more is sent (the undo file says where it stopped)
    /// and a delete that went out without its line is remembered.
    fn log_or_stop(
        &mut self,
        item: &PlanItem,
        server: Option<SocketAddr>,
        zone: &str,
        result: &str,
        progress: &mut Progress,
    ) {
        let Err(e) = self.log(item, server, zone, result) else {
            return;
        };
        let why = format!("the audit log cannot be written ({e})");
        tracing::error!("{why}: no further delete is sent");
        let _ = self.undo.note(&format!(
            "the cleanup stopped here: {why}; the outcome above ({result}) is not in the audit log"
        ));
        if result == "ok" || result.starts_with("unknown") {
            self.unaudited
                .push((item.clone(), format!("{why}; outcome: {result}")));
        }
        progress.stopped_run = Some(format!(
            "{why}: no record is deleted without its audit line; free the space or fix the path and run again"
        ));
    }

    fn log(
        &mut self,
        item: &PlanItem,
        server: Option<SocketAddr>,
        zone: &str,
        result: &str,
    ) -> std::io::Result<()> {
        let entry = AuditEntry {
            time: crate::support::time::rfc3339(SystemTime::now()),
            action: "delete",
            server: server.map(|s| s.to_string()).unwrap_or_default(),
            zone,
            owner: &item.owner,
            record: item.record.to_string(),
            ttl: item.record.ttl,
            auth: self.auth.describe(),
            result: result.to_string(),
        };
        self.audit.write(&entry)
    }
}
