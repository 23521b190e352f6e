//! Planning a cleanup: a pure function from a fresh scan, the state file and the options to
//! the list of records that may be deleted, each with its reason, and of those that may not,
//! each with why not. Every safety rail that needs no network lives here.

use std::time::SystemTime;

use serde::Serialize;

use crate::model::{FindingCode, ProbeOutcome, QueryStatus, RecordVerdict, Report, SrvRecord};
use crate::state::State;

pub use crate::config::CleanOptions;

/// One record the plan talks about.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlanItem {
    /// The record's domain.
    pub domain: String,
    /// The owner name, `_vlmcs._tcp.<domain>.`
    pub owner: String,
    /// The record.
    pub record: SrvRecord,
    /// The finding code that makes it a candidate.
    pub reason: FindingCode,
    /// The finding's detail.
    pub detail: String,
    /// True when the plan deletes it.
    pub delete: bool,
    /// Why it is kept although it fails.
    pub keep_because: Option<String>,
    /// How long it has been failing across scans (state file).
    pub failing_for_s: Option<u64>,
}

/// The plan.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Plan {
    /// How many records were probed.
    pub probed: usize,
    /// How many of them look dead.
    pub dead: usize,
    /// Set when the plan refuses to delete anything at all, and why.
    pub refused: Option<String>,
    /// Every failing record, deleted or kept.
    pub items: Vec<PlanItem>,
}

impl Plan {
    /// The items the plan deletes.
    pub fn deletions(&self) -> impl Iterator<Item = &PlanItem> {
        self.items.iter().filter(|i| i.delete)
    }
}

/// Builds the plan. `state` must already include this scan (so that a first sighting counts
/// as failing for zero seconds).
pub(crate) fn plan(
    report: &Report,
    state: &State,
    now: SystemTime,
    options: &CleanOptions,
) -> Plan {
    let probes: Vec<_> = report
        .domains
        .iter()
        .flat_map(|d| &d.observation.probes)
        .collect();
    let probed = probes.len();
    let dead = probes.iter().filter(|p| p.outcome.is_dead()).count();
    let share = if probed == 0 {
        0.0
    } else {
        dead as f64 / probed as f64
    };
    let refused = (share > options.max_dead_share && !options.force).then(|| {
        format!(
            "{dead} of {probed} probed hosts look dead ({:.0} %, more than the {:.0} % limit): the auditor's own network is the likelier culprit; nothing will be deleted (check connectivity, or pass --force if the hosts really are gone)",
            share * 100.0,
            options.max_dead_share * 100.0
        )
    });

    let items = report
        .domains
        .iter()
        .flat_map(|domain| domain_items(domain, state, now, options, refused.as_deref()))
        .collect();
    Plan {
        probed,
        dead,
        refused,
        items,
    }
}

/// One domain's candidates, each with the first rail that keeps it (or none: delete).
fn domain_items(
    domain: &crate::model::DomainReport,
    state: &State,
    now: SystemTime,
    options: &CleanOptions,
    refused: Option<&str>,
) -> Vec<PlanItem> {
    let obs = &domain.observation;
    let uncertain = domain_uncertainty(domain);
    let mut items = Vec::new();
    for record in &obs.records {
        let Some(verdict) = domain.verdict(record) else {
            continue;
        };
        let Some((reason, detail, keep)) = candidate(obs, record, verdict, options) else {
            continue;
        };
        let failing_for = state.failing_for(&obs.domain, record, now);
        let too_recent = (failing_for.unwrap_or_default() < options.dead_for).then(|| {
            format!(
                "failing for {} across scans, less than --dead-for {}",
                humantime::format_duration(failing_for.unwrap_or_default()),
                humantime::format_duration(options.dead_for)
            )
        });
        let keep = keep
            .or_else(|| uncertain.clone())
            .or(too_recent)
            .or_else(|| refused.map(str::to_string));
        items.push(PlanItem {
            domain: obs.domain.clone(),
            owner: obs.query_name.clone(),
            record: record.clone(),
            reason,
            detail,
            delete: keep.is_none(),
            keep_because: keep,
            failing_for_s: failing_for.map(|d| d.as_secs()),
        });
    }
    // Never empty the node by accident: in Active Directory whoever registers next owns it.
    let deleting = items.iter().filter(|i| i.delete).count();
    if deleting > 0
        && deleting == obs.records.len()
        && !options.allow_empty
        && let Some(last) = items.iter_mut().rev().find(|i| i.delete)
    {
        last.delete = false;
        last.keep_because = Some(format!(
            "it is the last record of {}: deleting it leaves clients nothing to find (and in Active Directory the next host to register would own the node); pass --allow-empty to delete it anyway",
            obs.query_name
        ));
    }
    items
}

/// Why a domain's RRset cannot be trusted enough to change, if it cannot.
fn domain_uncertainty(domain: &crate::model::DomainReport) -> Option<String> {
    let obs = &domain.observation;
    if !domain.summary.complete {
        return Some("the domain could not be scanned completely".into());
    }
    if obs.servers.iter().any(|s| !s.status.is_answer()) {
        return Some("not every authoritative server answered: the RRset is uncertain".into());
    }
    if let Some(alias) = obs.servers.iter().find_map(|s| s.alias.as_ref()) {
        return Some(format!(
            "{} is an alias (CNAME) of {alias}: the records are {alias}'s, to be cleaned through the domain that holds them",
            obs.query_name
        ));
    }
    let answering: Vec<_> = obs
        .servers
        .iter()
        .filter(|s| s.status == QueryStatus::Answer || s.status.is_answer())
        .collect();
    let first: Vec<_> = answering
        .first()
        .map(|s| s.records.iter().map(SrvRecord::rdata_key).collect())
        .unwrap_or_default();
    let agree = answering.iter().all(|s| {
        let mut keys: Vec<_> = s.records.iter().map(SrvRecord::rdata_key).collect();
        let mut expected = first.clone();
        keys.sort();
        expected.sort();
        keys == expected
    });
    (!agree).then(|| "the authoritative servers disagree about the RRset (replication lag?): wait until they agree".into())
}

/// Whether `record` is a deletion candidate, from its verdict: its reason, a detail, and a
/// reason to keep it anyway (flags not given, uncertain evidence).
fn candidate(
    obs: &crate::model::DomainObservation,
    record: &SrvRecord,
    verdict: &RecordVerdict,
    options: &CleanOptions,
) -> Option<(FindingCode, String, Option<String>)> {
    let status = verdict.status;
    let detail = verdict.evidence.clone();
    let keep = match status {
        FindingCode::UnauthorizedHost => (!options.include_unauthorized).then(|| {
            "a live host not on the allowlist is only deleted with --include-unauthorized (fix the host first, or its record comes back within a day)".to_string()
        }),
        FindingCode::DeadHost | FindingCode::NotKms => None,
        FindingCode::NoAddress => None,
        FindingCode::InvalidTarget => obs
            .probes_of(record)
            .any(|p| p.outcome == ProbeOutcome::KmsRpc)
            .then(|| {
                "the alias leads to a working KMS host: publish the host's own name first, then remove the alias record".to_string()
            }),
        _ => return None,
    };
    // Evidence that cannot support a deletion keeps the record whatever the flags say.
    Some((status, detail, verdict.uncertain_because.clone().or(keep)))
}

#[cfg(test)]
mod tests;
