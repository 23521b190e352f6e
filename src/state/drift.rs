//! Drift between scans, from the state file: records that appeared (how a wrongly registered
//! client shows up when there is no allowlist), records that went, status changes, hosts that
//! keep failing and hosts that flap. Added to the report as findings of their own.

use std::time::SystemTime;

use crate::model::name::DnsName;
use crate::model::{Finding, FindingCode, Report, Severity};
use crate::state::{State, record_key};

/// A record that changed healthy/failing this many times or more is flapping.
pub(crate) const FLAPPING_TRANSITIONS: u32 = 3;

/// Folds a finished scan into the locked state, the one sequence every command that scans with
/// a state file runs: settle the deletes whose outcome was unknown (their notes go into the
/// report), observe every record, mark the scan, save; with `drift`, the report also gets what
/// changed since the previous scan ([`apply`]).
pub fn record_scan(
    locked: &mut crate::state::LockedState,
    report: &mut Report,
    now: SystemTime,
    drift: bool,
) -> Result<(), crate::state::StateError> {
    let settled = locked.state.settle_unknown_deletes(report);
    report.notes.extend(settled);
    let before = drift.then(|| locked.state.clone());
    locked.state.observe(report, now);
    locked.state.finish_scan(now);
    if let Some(before) = &before {
        apply(report, before, &locked.state, now);
    }
    locked.save()
}

/// Compares the state before this scan with the state after it and adds drift findings to the
/// report (its worst severity and exit code are updated). The first scan of a state file
/// reports no drift: there is nothing to compare with.
pub fn apply(report: &mut Report, before: &State, after: &State, now: SystemTime) {
    if before.last_scan.is_none() {
        report.notes.push(
            "first scan with this state file: drift is reported from the next scan on".into(),
        );
        return;
    }
    let since = before
        .last_scan
        .map_or_else(|| "?".to_string(), |t| t.to_string());
    let mut added = Vec::new();
    for domain in report.domains.iter().filter(|d| d.summary.complete) {
        let name = &domain.observation.domain;
        for record in &domain.observation.records {
            let key = record_key(name, record);
            let Some(now_state) = after.records.get(&key) else {
                continue;
            };
            let seen = Seen {
                domain: name,
                record,
                before: before.records.get(&key),
                now: now_state,
            };
            added.extend(seen.appeared_or_changed(&since, report.allowlist_configured));
            added.extend(seen.unstable(now));
        }
        added.extend(gone(name, before, after, &since));
    }
    report.findings.extend(added);
    report.settle_severity();
}

/// One record of this scan with its history, before and after folding the scan in.
struct Seen<'a> {
    domain: &'a str,
    record: &'a crate::model::SrvRecord,
    before: Option<&'a crate::state::RecordState>,
    now: &'a crate::state::RecordState,
}

impl Seen<'_> {
    fn finding(&self, code: FindingCode, severity: Severity, detail: String) -> Finding {
        Finding {
            domain: self.domain.to_string(),
            code,
            severity,
            target: Some(self.record.target.to_string()),
            port: Some(self.record.port),
            address: None,
            detail,
        }
    }

    /// New since the last scan, back after being gone, or with another status.
    fn appeared_or_changed(&self, since: &str, allowlist_configured: bool) -> Option<Finding> {
        let record = self.record;
        match self.before {
            None => Some(self.finding(
                FindingCode::NewRecord,
                if allowlist_configured {
                    Severity::Info
                } else {
                    Severity::Warning
                },
                format!(
                    "{record} appeared since the last scan ({since}){}{}",
                    self.now
                        .registered_by
                        .as_ref()
                        .map(|a| format!("; AD names its host's computer account: {a}"))
                        .unwrap_or_default(),
                    if allowlist_configured {
                        ""
                    } else {
                        "; without an allowlist, a new host is how a client that became a KMS host by mistake shows up"
                    }
                ),
            )),
            Some(old) if old.gone_since.is_some() => Some(self.finding(
                FindingCode::NewRecord,
                Severity::Info,
                format!(
                    "{record} is back (it was gone since {})",
                    old.gone_since
                        .map_or_else(|| "?".to_string(), |t| t.to_string())
                ),
            )),
            Some(old) if old.last_status != self.now.last_status => {
                let worse = self.now.last_status != FindingCode::Healthy;
                Some(self.finding(
                    FindingCode::StatusChanged,
                    if worse {
                        Severity::Warning
                    } else {
                        Severity::Info
                    },
                    format!(
                        "{record}: {} → {} since the last scan",
                        old.last_status, self.now.last_status
                    ),
                ))
            }
            Some(_) => None,
        }
    }

    /// Flapping, and failing since an earlier scan.
    fn unstable(&self, now: SystemTime) -> Vec<Finding> {
        let (record, state) = (self.record, self.now);
        let mut out = Vec::new();
        if state.transitions >= FLAPPING_TRANSITIONS {
            out.push(self.finding(
                FindingCode::Flapping,
                Severity::Warning,
                format!(
                    "{record} went between healthy and failing {} times (last change {}): an unstable host or network path",
                    state.transitions,
                    state.changed_at.map_or_else(|| "?".to_string(), |t| t.to_string())
                ),
            ));
        }
        if let Some(failing) = state.failing_since
            && let Ok(age) = now.duration_since(failing.0)
            && age.as_secs() > 0
            && state.last_status != FindingCode::Healthy
        {
            out.push(self.finding(
                FindingCode::StillFailing,
                Severity::Info,
                format!(
                    "{record} has been failing ({}) since {failing}, for {}",
                    state.last_status,
                    humantime::format_duration(std::time::Duration::from_secs(age.as_secs()))
                ),
            ));
        }
        out
    }
}

/// Records of `domain` that were published at the last scan and are gone now.
fn gone(domain: &str, before: &State, after: &State, since: &str) -> Vec<Finding> {
    before
        .records
        .iter()
        .filter(|(key, old)| {
            old.domain == domain
                && old.gone_since.is_none()
                && after
                    .records
                    .get(*key)
                    .is_some_and(|s| s.gone_since.is_some())
        })
        .map(|(_, old)| Finding {
            domain: domain.to_string(),
            code: FindingCode::RecordGone,
            severity: Severity::Info,
            target: Some(old.record.target.to_string()),
            port: Some(old.record.port),
            address: None,
            detail: format!(
                "{} is no longer published (it was at the last scan, {since})",
                old.record
            ),
        })
        .collect()
}

/// Keeps only what changed since the last scan (`--since-last`): the drift findings, and the
/// findings of each record they are about (a new `not-kms` record shows as `not-kms` too, not
/// only as `new-record`); the worst severity and exit code follow what is kept.
pub fn keep_changes(report: &mut Report) {
    // The record a finding is about: its domain, target (as a name) and port.
    let about = |f: &Finding| {
        let target = f.target.as_deref().and_then(DnsName::parse_fqdn)?;
        Some((f.domain.clone(), target, f.port))
    };
    let changed: std::collections::HashSet<_> = report
        .findings
        .iter()
        .filter(|f| is_drift(f.code))
        .filter_map(about)
        .collect();
    report
        .findings
        .retain(|f| is_drift(f.code) || about(f).is_some_and(|key| changed.contains(&key)));
    report.settle_severity();
}

/// The codes that describe change rather than state (`--since-last` keeps only these).
pub fn is_drift(code: FindingCode) -> bool {
    matches!(
        code,
        FindingCode::NewRecord
            | FindingCode::RecordGone
            | FindingCode::StatusChanged
            | FindingCode::Flapping
    )
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::time::{Duration, SystemTime};

    use super::*;
    use crate::model::{
        DomainObservation, DomainPolicy, QueryStatus, ServerObservation, SrvRecord,
    };

    fn report() -> Report {
        let record = SrvRecord {
            priority: 0,
            weight: 0,
            port: 1688,
            target: "kms1.corp.example.com.".into(),
            ttl: 300,
        };
        let obs = DomainObservation {
            domain: "corp.example.com".into(),
            query_name: "_vlmcs._tcp.corp.example.com.".into(),
            zone: Some("corp.example.com.".into()),
            primary: Some("ns.corp.example.com.".into()),
            servers_from: crate::model::ServersFrom::Configured,
            discovery_error: None,
            servers: vec![ServerObservation {
                name: "ns".into(),
                records_answered: None,
                alias: None,
                address: SocketAddr::from(([192, 0, 2, 1], 53)),
                status: QueryStatus::Answer,
                transport: crate::model::Transport::Udp,
                truncated_over_udp: false,
                records: vec![record.clone()],
                response_code: None,
                detail: None,
                duration_ms: 1.0,
            }],
            records: vec![record],
            targets: vec![],
            probes: vec![],
            dns_ms: 0.0,
            ad: None,
        };
        crate::audit::scan::assemble(vec![(obs, &DomainPolicy::default())], true, vec![])
    }

    #[test]
    fn a_record_that_keeps_changing_is_flapping() {
        let r = report();
        let start = SystemTime::now() - Duration::from_secs(3600);
        let mut before = State::default();
        before.observe(&r, start);
        before.finish_scan(start);
        let key = before.records.keys().next().unwrap().clone();
        before.records.get_mut(&key).unwrap().transitions = FLAPPING_TRANSITIONS;
        let mut after = before.clone();
        after.observe(&r, SystemTime::now());
        let mut r2 = r.clone();
        apply(&mut r2, &before, &after, SystemTime::now());
        assert!(
            r2.findings
                .iter()
                .any(|f| f.code == FindingCode::Flapping && f.severity == Severity::Warning)
        );
        assert!(r2.exit_code >= 1);
    }

    #[test]
    fn the_first_scan_reports_no_drift() {
        let mut r = report();
        let findings = r.findings.len();
        apply(
            &mut r,
            &State::default(),
            &State::default(),
            SystemTime::now(),
        );
        assert_eq!(r.findings.len(), findings);
        assert!(r.notes.iter().any(|n| n.contains("first scan")));
    }
}
