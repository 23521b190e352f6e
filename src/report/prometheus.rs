//! Prometheus text exposition (node-exporter textfile collector): per domain and per host
//! gauges, and the scan's own timestamp, duration and completeness.

use std::fmt::Write as _;

use super::{ReportError, ReportView};
use crate::classify::display_addr;
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
    let head = report.head();
    let mut text = String::new();
    let flush = |text: &mut String, out: &mut dyn std::io::Write| {
        let result = out.write_all(text.as_bytes()).map_err(ReportError::Write);
        text.clear();
        result
    };
    let started = head.started_at.unix_seconds();
    family(
        &mut text,
        "vlmcs_audit_scan_timestamp_seconds",
        "Unix time the scan started.",
    );
    let _ = writeln!(text, "vlmcs_audit_scan_timestamp_seconds {started}");
    family(
        &mut text,
        "vlmcs_audit_scan_duration_seconds",
        "How long the scan took.",
    );
    let _ = writeln!(
        text,
        "vlmcs_audit_scan_duration_seconds {}",
        head.duration_ms / 1000.0
    );
    family(
        &mut text,
        "vlmcs_audit_scan_complete",
        "1 when every domain could be scanned.",
    );
    let _ = writeln!(
        text,
        "vlmcs_audit_scan_complete {}",
        u8::from(head.complete)
    );
    family(
        &mut text,
        "vlmcs_audit_exit_code",
        "The scan's exit code (0 ok, 1 warning, 2 critical, 3 unknown).",
    );
    let _ = writeln!(text, "vlmcs_audit_exit_code {}", head.exit_code);
    flush(&mut text, out)?;

    let per_domain: [(&str, &str, SummaryField); 5] = [
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
        family(&mut text, name, help);
        report.for_each_domain(&mut |d, _| {
            let _ = writeln!(
                text,
                "{name}{{domain=\"{}\"}} {}",
                label(&d.observation.domain),
                value(&d.summary)
            );
            flush(&mut text, out)
        })?;
        flush(&mut text, out)?;
    }
    family(
        &mut text,
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
        flush(&mut text, out)
    })?;
    // Two families from the same probes: each in a pass of its own.
    for (name, help, up) in [
        (
            "vlmcs_audit_host_up",
            "1 when the endpoint answered the KMS RPC bind.",
            true,
        ),
        (
            "vlmcs_audit_host_probe_seconds",
            "How long the endpoint's probe took.",
            false,
        ),
    ] {
        family(&mut text, name, help);
        report.for_each_domain(&mut |d, _| {
            for p in &d.observation.probes {
                let labels = format!(
                    "domain=\"{}\",target=\"{}\",address=\"{}\",port=\"{}\"",
                    label(&d.observation.domain),
                    label(&p.target.to_string()),
                    label(&display_addr(p.address)),
                    p.port
                );
                if up {
                    let _ = writeln!(
                        text,
                        "{name}{{{labels}}} {}",
                        u8::from(p.outcome == ProbeOutcome::KmsRpc)
                    );
                } else {
                    let _ = writeln!(text, "{name}{{{labels}}} {}", p.duration_ms / 1000.0);
                }
            }
            flush(&mut text, out)
        })?;
        flush(&mut text, out)?;
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
