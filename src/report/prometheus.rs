//! Prometheus text exposition (node-exporter textfile collector): per domain and per host
//! gauges, and the scan's own timestamp, duration and completeness.

use std::fmt::Write as _;

use super::{ReportError, ReportView};
use crate::model::display_addr;
use crate::model::{ProbeOutcome, Severity};

/// Label values come from DNS: escape `\`, `"` and newlines as the format requires.
fn label(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c if c.is_control() => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

fn family(out: &mut String, name: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
}

/// Reads one count out of a domain summary.
type SummaryField = fn(&crate::model::DomainSummary) -> usize;

/// Writes the metrics, one family after the other (one pass over the domains per family).
pub(crate) fn write(
    report: &dyn ReportView,
    out: &mut dyn std::io::Write,
) -> Result<(), ReportError> {
    let mut text = scan_families(report.head());
    flush(&mut text, out)?;
    per_domain_families(report, &mut text, out)?;
    server_family(report, &mut text, out)?;
    finding_family(report, &mut text, out)?;
    probe_families(report, &mut text, out)
}

/// 1 per DNS server and domain when the server gave a usable answer.
fn server_family(
    report: &dyn ReportView,
    text: &mut String,
    out: &mut dyn std::io::Write,
) -> Result<(), ReportError> {
    family(
        text,
        "vlmcs_audit_dns_server_up",
        "1 when the DNS server gave a usable answer for the domain's _vlmcs._tcp name.",
    );
    report.for_each_domain(&mut |d, _| {
        for s in &d.observation.servers {
            let _ = writeln!(
                text,
                "vlmcs_audit_dns_server_up{{domain=\"{}\",server=\"{}\",status=\"{}\"}} {}",
                label(&d.observation.domain),
                label(&s.address.to_string()),
                label(&format!("{:?}", s.status).to_ascii_lowercase()),
                u8::from(s.status.is_answer())
            );
        }
        flush(text, out)
    })
}

/// The findings of the whole scan, counted per code and severity.
fn finding_family(
    report: &dyn ReportView,
    text: &mut String,
    out: &mut dyn std::io::Write,
) -> Result<(), ReportError> {
    let mut counts: std::collections::BTreeMap<(&'static str, Severity), usize> =
        std::collections::BTreeMap::new();
    report.for_each_finding(&mut |f| {
        *counts.entry((f.code.as_str(), f.severity)).or_default() += 1;
        Ok(())
    })?;
    family(
        text,
        "vlmcs_audit_findings",
        "Findings of the scan per code and severity.",
    );
    for ((code, severity), count) in counts {
        let _ = writeln!(
            text,
            "vlmcs_audit_findings{{code=\"{code}\",severity=\"{severity}\"}} {count}"
        );
    }
    flush(text, out)
}

fn flush(text: &mut String, out: &mut dyn std::io::Write) -> Result<(), ReportError> {
    let result = out.write_all(text.as_bytes()).map_err(ReportError::Write);
    text.clear();
    result
}

/// One value each, about the scan as a whole.
fn scan_families(head: &crate::model::Report) -> String {
    let mut text = String::new();
    let gauges: [(&str, &str, String); 5] = [
        (
            "vlmcs_audit_build_info",
            "Always 1; the version of vlmcs-audit in a label.",
            String::new(),
        ),
        (
            "vlmcs_audit_scan_timestamp_seconds",
            "Unix time the scan started.",
            head.started_at.unix_seconds().to_string(),
        ),
        (
            "vlmcs_audit_scan_duration_seconds",
            "How long the scan took.",
            (head.duration_ms / 1000.0).to_string(),
        ),
        (
            "vlmcs_audit_scan_complete",
            "1 when every domain could be scanned.",
            u8::from(head.complete).to_string(),
        ),
        (
            "vlmcs_audit_exit_code",
            "The scan's exit code (0 ok, 1 warning, 2 critical, 3 unknown).",
            head.exit_code.to_string(),
        ),
    ];
    for (name, help, value) in gauges {
        family(&mut text, name, help);
        if value.is_empty() {
            let _ = writeln!(text, "{name}{{version=\"{}\"}} 1", label(&head.version));
        } else {
            let _ = writeln!(text, "{name} {value}");
        }
    }
    text
}

/// The summary counts and the findings per severity, one line per domain.
fn per_domain_families(
    report: &dyn ReportView,
    text: &mut String,
    out: &mut dyn std::io::Write,
) -> Result<(), ReportError> {
    let per_domain: [(&str, &str, SummaryField); 6] = [
        (
            "vlmcs_audit_domain_complete",
            "1 when the domain could be scanned completely (0: its figures are not to be trusted).",
            |s| usize::from(s.complete),
        ),
        (
            "vlmcs_audit_domain_records",
            "SRV records published for the domain.",
            |s| s.records,
        ),
        (
            "vlmcs_audit_domain_healthy",
            "Healthy authorized KMS endpoints.",
            |s| s.healthy,
        ),
        (
            "vlmcs_audit_domain_dead",
            "Endpoints that refuse or drop connections.",
            |s| s.dead,
        ),
        (
            "vlmcs_audit_domain_not_kms",
            "Endpoints that answer but are not KMS hosts.",
            |s| s.not_kms,
        ),
        (
            "vlmcs_audit_domain_unauthorized",
            "Live KMS hosts not on the allowlist.",
            |s| s.unauthorized,
        ),
    ];
    for (name, help, value) in per_domain {
        family(text, name, help);
        report.for_each_domain(&mut |d, _| {
            let _ = writeln!(
                text,
                "{name}{{domain=\"{}\"}} {}",
                label(&d.observation.domain),
                value(&d.summary)
            );
            flush(text, out)
        })?;
        flush(text, out)?;
    }
    family(
        text,
        "vlmcs_audit_domain_findings",
        "Findings per domain and severity.",
    );
    report.for_each_domain(&mut |d, findings| {
        for severity in [Severity::Info, Severity::Warning, Severity::Critical] {
            let count = findings.iter().filter(|f| f.severity == severity).count();
            let _ = writeln!(
                text,
                "vlmcs_audit_domain_findings{{domain=\"{}\",severity=\"{severity}\"}} {count}",
                label(&d.observation.domain)
            );
        }
        flush(text, out)
    })
}

/// Two families from the same probes: each in a pass of its own.
fn probe_families(
    report: &dyn ReportView,
    text: &mut String,
    out: &mut dyn std::io::Write,
) -> Result<(), ReportError> {
    type ProbeValue = fn(&crate::model::ProbeObservation) -> String;
    let families: [(&str, &str, ProbeValue); 2] = [
        (
            "vlmcs_audit_host_up",
            "1 when the endpoint answered the KMS RPC bind.",
            |p| u8::from(p.outcome == ProbeOutcome::KmsRpc).to_string(),
        ),
        (
            "vlmcs_audit_host_probe_seconds",
            "How long the endpoint's probe took.",
            |p| (p.duration_ms / 1000.0).to_string(),
        ),
    ];
    for (name, help, value) in families {
        family(text, name, help);
        report.for_each_domain(&mut |d, _| {
            for p in &d.observation.probes {
                let _ = writeln!(
                    text,
                    "{name}{{domain=\"{}\",target=\"{}\",address=\"{}\",port=\"{}\"}} {}",
                    label(&d.observation.domain),
                    label(&p.target.to_string()),
                    label(&display_addr(p.address)),
                    p.port,
                    value(p)
                );
            }
            flush(text, out)
        })?;
        flush(text, out)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
        assert_eq!(label("x\u{1b}y"), "x\u{fffd}y");
    }
}
