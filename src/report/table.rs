//! The terminal rendering: a summary per domain, then the findings, worst first.

use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{Cell, Color, ContentArrangement, Table};

use crate::classify::display_addr;
use crate::model::{Report, Severity};

pub fn render(report: &Report, color: bool) -> String {
    let mut out = String::new();
    let verdict = match report.exit_code {
        0 => "OK",
        1 => "WARNING",
        2 => "CRITICAL",
        _ => "UNKNOWN (scan incomplete)",
    };
    out.push_str(&format!(
        "vlmcs-audit {}: {} domain(s) scanned in {:.1} s (timeout {} ms) — {verdict}, exit code {}\n\n",
        report.version,
        report.domains.len(),
        report.duration_ms / 1000.0,
        report.timeout_ms,
        report.exit_code
    ));

    let mut summary = new_table();
    summary.set_header([
        "domain",
        "servers",
        "records",
        "probed",
        "healthy",
        "dead",
        "not KMS",
        "unauthorized",
        "worst",
    ]);
    for d in &report.domains {
        let answering = d
            .observation
            .servers
            .iter()
            .filter(|s| s.status.is_answer())
            .count();
        let worst = d.summary.worst.unwrap_or(Severity::Ok);
        summary.add_row(vec![
            Cell::new(clean(&d.observation.domain)),
            Cell::new(format!(
                "{answering}/{} {}",
                d.observation.servers.len(),
                d.observation.servers_from
            )),
            Cell::new(d.summary.records),
            Cell::new(d.summary.hosts_probed),
            Cell::new(d.summary.healthy),
            Cell::new(d.summary.dead),
            Cell::new(d.summary.not_kms),
            Cell::new(d.summary.unauthorized),
            severity_cell(worst, color),
        ]);
    }
    out.push_str(&summary.to_string());
    out.push_str("\n\n");

    let mut findings = new_table();
    findings.set_header([
        "severity", "domain", "code", "target", "port", "address", "detail",
    ]);
    let mut ordered: Vec<_> = report.findings.iter().enumerate().collect();
    // Worst first within each domain, domains in scan order, otherwise as classified.
    let domain_rank = |name: &str| {
        report
            .domains
            .iter()
            .position(|d| d.observation.domain == name)
    };
    ordered.sort_by_key(|(i, f)| (domain_rank(&f.domain), std::cmp::Reverse(f.severity), *i));
    for (_, f) in ordered {
        findings.add_row(vec![
            severity_cell(f.severity, color),
            Cell::new(clean(&f.domain)),
            Cell::new(f.code.as_str()),
            Cell::new(f.target.as_deref().map(clean).unwrap_or_default()),
            Cell::new(f.port.map(|p| p.to_string()).unwrap_or_default()),
            Cell::new(f.address.map(display_addr).unwrap_or_default()),
            Cell::new(clean(&f.detail)),
        ]);
    }
    out.push_str(&findings.to_string());
    out.push('\n');
    for note in &report.notes {
        out.push_str(&format!("\nnote: {}\n", clean(note)));
    }
    out
}

fn new_table() -> Table {
    let mut table = Table::new();
    table
        .load_preset(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_width(terminal_width());
    table
}

fn terminal_width() -> u16 {
    std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(160)
}

fn severity_cell(severity: Severity, color: bool) -> Cell {
    let cell = Cell::new(severity.to_string());
    if !color {
        return cell;
    }
    cell.fg(match severity {
        Severity::Ok => Color::Green,
        Severity::Info => Color::Cyan,
        Severity::Warning => Color::Yellow,
        Severity::Critical => Color::Red,
    })
}

/// DNS data can carry any bytes: never let control characters (escape sequences) reach a
/// terminal.
fn clean(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { '\u{fffd}' } else { c })
        .collect()
}
