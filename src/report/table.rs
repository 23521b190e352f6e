//! The terminal rendering: a summary per domain, then the findings, worst first.

use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{Cell, Color, ContentArrangement, Table};

use super::{ReportError, ReportView};
use crate::model::display_addr;
use crate::model::{Finding, Severity};

/// Writes the tables: the summary row of every domain, then each domain's findings.
pub(super) fn write(
    report: &dyn ReportView,
    color: bool,
    out: &mut dyn std::io::Write,
) -> Result<(), ReportError> {
    let head = report.head();
    let verdict = match head.exit_code {
        0 => "OK",
        1 => "WARNING",
        2 => "CRITICAL",
        _ => "UNKNOWN (scan incomplete)",
    };
    write!(
        out,
        "vlmcs-audit {}: {} domain(s) scanned in {:.1} s (timeout {} ms) — {verdict}, exit code {}\n\n",
        head.version,
        report.domain_count(),
        head.duration_ms / 1000.0,
        head.timeout_ms,
        head.exit_code
    )?;

    write!(out, "{}\n\n", summary_table(report, color)?)?;

    report.for_each_domain(&mut |d, findings| {
        let name = &d.observation.domain;
        writeln!(out, "{}  ({})", clean(name), clean(&servers_line(d)))?;
        let mut table = new_table();
        table.set_header(["severity", "code", "where", "detail"]);
        // Worst first, otherwise in the order classification produced them.
        let mut ordered: Vec<(usize, &&Finding)> = findings.iter().enumerate().collect();
        ordered.sort_by_key(|(i, f)| (std::cmp::Reverse(f.severity), *i));
        for (_, f) in ordered {
            table.add_row(vec![
                severity_cell(f.severity, color),
                Cell::new(f.code.as_str()),
                Cell::new(clean(&location(f))),
                Cell::new(clean(&f.detail)),
            ]);
        }
        write!(out, "{table}\n\n").map_err(ReportError::Write)
    })?;
    for note in &head.notes {
        write!(out, "\nnote: {}\n", clean(note))?;
    }
    Ok(())
}

/// One row per domain: its servers, counts and worst severity.
fn summary_table(report: &dyn ReportView, color: bool) -> Result<Table, ReportError> {
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
    report.for_each_domain(&mut |d, _| {
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
        Ok(())
    })?;
    Ok(summary)
}

/// `target:port @ address`, whichever parts the finding has.
fn location(f: &crate::model::Finding) -> String {
    let mut text = f.target.clone().unwrap_or_default();
    if let Some(port) = f.port {
        text.push_str(&format!(":{port}"));
    }
    if let Some(address) = f.address {
        if !text.is_empty() {
            text.push_str(" @ ");
        }
        text.push_str(&display_addr(address));
    }
    text
}

fn servers_line(d: &crate::model::DomainReport) -> String {
    let o = &d.observation;
    let servers: Vec<String> = o
        .servers
        .iter()
        .map(|s| format!("{} {}", s.name, s.status.short()))
        .collect();
    let zone = o
        .zone
        .as_ref()
        .map(|z| format!("zone {z}, "))
        .unwrap_or_default();
    if servers.is_empty() {
        format!("{zone}no server asked")
    } else {
        format!("{zone}{} servers: {}", o.servers_from, servers.join(", "))
    }
}

fn new_table() -> Table {
    let mut table = Table::new();
    table
        .load_preset(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic);
    // On a terminal comfy-table measures it; elsewhere (files, pipes) COLUMNS or 160.
    match std::env::var("COLUMNS").ok().and_then(|c| c.parse().ok()) {
        Some(width) => {
            table.set_width(width);
        }
        None if table.width().is_none() => {
            table.set_width(160);
        }
        None => {}
    }
    table
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

pub(crate) use crate::support::quote::terminal_safe as clean;
