//! The Nagios / Icinga plugin output (plugin guidelines): one status line naming the worst
//! domains, perfdata after `|`, and a few lines of detail — at most [`MAX_OUTPUT`] bytes however
//! many domains were scanned. The exit code is the scan's, as for every format.

use std::fmt::Write as _;

use super::{ReportError, ReportView};
use crate::model::{Finding, Severity};

/// Nagios keeps 4 KB of plugin output by default.
pub(crate) const MAX_OUTPUT: usize = 4096;
/// Domains named on the status line.
const NAMED_ON_STATUS: usize = 3;
/// Findings listed in the long output.
const DETAIL_LINES: usize = 10;

#[derive(Default)]
struct Tally {
    domains: usize,
    incomplete: usize,
    records: usize,
    healthy: usize,
    dead: usize,
    not_kms: usize,
    unauthorized: usize,
    /// Domains at the report's worst severity: name and their worst finding.
    worst: Vec<(String, String)>,
    worst_count: usize,
    /// The worst findings, worst first (kept short).
    details: Vec<(Severity, String)>,
}

pub(crate) fn write(
    report: &dyn ReportView,
    out: &mut dyn std::io::Write,
) -> Result<(), ReportError> {
    let head = report.head();
    let mut tally = Tally::default();
    report.for_each_domain(&mut |d, findings| {
        tally.domains += 1;
        tally.incomplete += usize::from(!d.summary.complete);
        tally.records += d.summary.records;
        tally.healthy += d.summary.healthy;
        tally.dead += d.summary.dead;
        tally.not_kms += d.summary.not_kms;
        tally.unauthorized += d.summary.unauthorized;
        // The domain's worst finding, one that names a host when there is one.
        let at_worst = || {
            findings
                .iter()
                .filter(|f| f.severity == head.worst_severity)
        };
        let worst = at_worst()
            .find(|f| f.target.is_some())
            .or_else(|| at_worst().next());
        if let Some(f) = worst.filter(|f| f.severity >= Severity::Warning) {
            tally.worst_count += 1;
            if tally.worst.len() < NAMED_ON_STATUS {
                tally.worst.push((short(&d.observation.domain), what(f)));
            }
        }
        for f in findings.iter().filter(|f| f.severity >= Severity::Warning) {
            if tally.details.len() < DETAIL_LINES {
                tally.details.push((
                    f.severity,
                    format!("{}: {}", safe(&f.domain), safe(&f.detail)),
                ));
            } else if let Some(i) = tally.details.iter().position(|(s, _)| *s < f.severity) {
                tally.details[i] = (
                    f.severity,
                    format!("{}: {}", safe(&f.domain), safe(&f.detail)),
                );
            }
        }
        Ok(())
    })?;
    let text = render(head, &tally);
    Ok(out.write_all(text.as_bytes())?)
}

fn render(head: &crate::model::Report, t: &Tally) -> String {
    let state = match head.exit_code {
        0 => "OK",
        1 => "WARNING",
        2 => "CRITICAL",
        _ => "UNKNOWN",
    };
    let mut status = format!("VLMCS {state} - ");
    if head.exit_code == 0 {
        let _ = write!(
            status,
            "{} domain(s), {} healthy KMS endpoint(s)",
            t.domains, t.healthy
        );
    } else if t.worst_count > 0 {
        let named: Vec<String> = t.worst.iter().map(|(d, w)| format!("{d} ({w})")).collect();
        let _ = write!(
            status,
            "{} domain(s) {}: {}",
            t.worst_count,
            head.worst_severity,
            named.join(", ")
        );
        if t.worst_count > t.worst.len() {
            let _ = write!(status, ", and {} more", t.worst_count - t.worst.len());
        }
    } else {
        let _ = write!(
            status,
            "{} of {} domain(s) could not be scanned completely",
            t.incomplete, t.domains
        );
    }
    let perfdata = format!(
        "domains={} incomplete={};;;0 records={};;;0 healthy={};;;0 dead={};;;0 not_kms={};;;0 unauthorized={};;;0 duration={:.3}s;;;0",
        t.domains,
        t.incomplete,
        t.records,
        t.healthy,
        t.dead,
        t.not_kms,
        t.unauthorized,
        head.duration_ms / 1000.0
    );
    // Status line, then the long output; perfdata once, after the first `|`.
    let mut text = format!("{} | {perfdata}\n", clip(&status, 1024));
    let mut details: Vec<&(Severity, String)> = t.details.iter().collect();
    details.sort_by_key(|(s, _)| std::cmp::Reverse(*s));
    for (severity, line) in details {
        let line = format!("[{severity}] {}\n", clip(line, 300));
        if text.len() + line.len() > MAX_OUTPUT - 64 {
            break;
        }
        text.push_str(&line);
    }
    text
}

/// `code target` of a finding, for the status line.
fn what(f: &Finding) -> String {
    match &f.target {
        Some(target) => format!("{} {}", f.code, short(target)),
        None => f.code.to_string(),
    }
}

/// A host or domain name's first label: `corp.example.com` → `corp`.
fn short(name: &str) -> String {
    safe(name.split('.').next().unwrap_or(name))
}

/// DNS data is hostile: no control characters, and no `|` (it starts the perfdata).
fn safe(text: &str) -> String {
    super::terminal_safe(text).replace('|', "/")
}

fn clip(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max.saturating_sub(3);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &text[..end])
}
