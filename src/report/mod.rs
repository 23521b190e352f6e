//! Renderers: one [`Report`] model, several formats. JSON is the stable contract for scripts
//! and monitoring; YAML is the same document; the table is for people.

pub(crate) mod prometheus;
pub mod spool;
mod table;
pub(crate) use table::clean as terminal_safe;
pub(crate) mod view;

#[cfg(test)]
use crate::model::Report;
pub(crate) use view::ReportView;

/// Output formats of `scan`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Tables for people (default on a terminal).
    Table,
    /// The JSON document described in README (default when not on a terminal).
    Json,
    /// The same document as YAML.
    Yaml,
    /// Prometheus text format, for node-exporter's textfile collector.
    Prometheus,
    /// One JSON object per finding and line, for log shippers.
    Jsonl,
    /// One row per finding (RFC 4180), for spreadsheets.
    Csv,
}

/// Writes `report` to `out`, streaming every format: the JSON and YAML documents element by
/// element, the others domain by domain.
pub fn write(
    report: &dyn ReportView,
    format: Format,
    color: bool,
    out: &mut dyn std::io::Write,
) -> Result<(), String> {
    let document = view::Document(report);
    match format {
        Format::Json => {
            serde_json::to_writer_pretty(&mut *out, &document)
                .map_err(|e| format!("writing JSON: {e}"))?;
            out.write_all(b"\n").map_err(|e| e.to_string())
        }
        Format::Yaml => {
            serde_norway::to_writer(out, &document).map_err(|e| format!("writing YAML: {e}"))
        }
        Format::Table => table::write(report, color, out),
        Format::Prometheus => prometheus::write(report, out),
        Format::Jsonl => json_lines(report, out),
        Format::Csv => csv(report, out),
    }
}

/// One row per finding, RFC 4180 (CRLF, fields with `,` `"` or line breaks quoted, quotes
/// doubled). DNS data is hostile and spreadsheets run formulas: a cell that would start with
/// `=`, `+`, `-`, `@`, a tab or a carriage return is prefixed with `'`.
fn csv(report: &dyn ReportView, out: &mut dyn std::io::Write) -> Result<(), String> {
    fn cell(text: &str) -> String {
        let text = if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
            format!("'{text}")
        } else {
            text.to_string()
        };
        if text.contains([',', '"', '\n', '\r']) {
            format!("\"{}\"", text.replace('"', "\"\""))
        } else {
            text
        }
    }
    let io = |e: std::io::Error| e.to_string();
    out.write_all(b"domain,code,severity,target,port,address,detail\r\n")
        .map_err(io)?;
    report.for_each_finding(&mut |f| {
        let row = [
            cell(&f.domain),
            cell(f.code.as_str()),
            cell(&f.severity.to_string()),
            cell(f.target.as_deref().unwrap_or_default()),
            f.port.map(|p| p.to_string()).unwrap_or_default(),
            f.address
                .map(|a| cell(&crate::classify::display_addr(a)))
                .unwrap_or_default(),
            cell(&f.detail),
        ];
        write!(out, "{}\r\n", row.join(",")).map_err(io)
    })
}

/// Renders `report` into a string.
#[cfg(test)]
fn render(report: &Report, format: Format, color: bool) -> Result<String, String> {
    let mut out = Vec::new();
    write(report, format, color, &mut out)?;
    String::from_utf8(out).map_err(|e| e.to_string())
}

/// One line per finding, each carrying the scan's time and exit code, so that every line
/// stands on its own in a log pipeline.
fn json_lines(report: &dyn ReportView, out: &mut dyn std::io::Write) -> Result<(), String> {
    let head = report.head();
    report.for_each_finding(&mut |finding| {
        let mut value = serde_json::to_value(finding).map_err(|e| e.to_string())?;
        if let Some(map) = value.as_object_mut() {
            map.insert("time".into(), head.started_at.clone().into());
            map.insert("tool".into(), head.tool.clone().into());
            map.insert("scan_exit_code".into(), head.exit_code.into());
        }
        serde_json::to_writer(&mut *out, &value).map_err(|e| e.to_string())?;
        out.write_all(b"\n").map_err(|e| e.to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Finding, FindingCode, Severity};

    #[test]
    fn csv_quotes_per_rfc_4180_and_defuses_formulas() {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/lab-scan.json"
        ))
        .unwrap();
        let mut report: Report = serde_json::from_str(&text).unwrap();
        report.findings = vec![Finding {
            domain: "corp.example.com".into(),
            code: FindingCode::DeadHost,
            severity: Severity::Warning,
            target: Some("=HYPERLINK(\"http://x\"),a.example.".into()),
            port: Some(1688),
            address: Some("192.0.2.7".parse().unwrap()),
            detail: "-2+3 said \"line\nbreak\"".into(),
        }];
        let out = render(&report, Format::Csv, false).unwrap();
        assert_eq!(
            out,
            "domain,code,severity,target,port,address,detail\r\n\
             corp.example.com,dead-host,warning,\"'=HYPERLINK(\"\"http://x\"\"),a.example.\",1688,192.0.2.7,\"'-2+3 said \"\"line\nbreak\"\"\"\r\n"
        );
    }
}
