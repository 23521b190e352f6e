//! Renderers: one [`Report`] model, several formats. JSON is the stable contract for scripts
//! and monitoring; YAML is the same document; the table is for people.

pub mod prometheus;
mod table;

use crate::model::Report;

/// Output formats of `scan`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
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
}

/// Writes `report` to `out`, streaming the JSON and YAML documents.
pub fn write(
    report: &Report,
    format: Format,
    color: bool,
    out: &mut dyn std::io::Write,
) -> Result<(), String> {
    match format {
        Format::Json => {
            serde_json::to_writer_pretty(&mut *out, report)
                .map_err(|e| format!("writing JSON: {e}"))?;
            out.write_all(b"\n").map_err(|e| e.to_string())
        }
        Format::Yaml => {
            serde_norway::to_writer(out, report).map_err(|e| format!("writing YAML: {e}"))
        }
        other => {
            let text = render(report, other, color)?;
            out.write_all(text.as_bytes()).map_err(|e| e.to_string())
        }
    }
}

/// Renders `report`; `color` applies to the table only.
pub fn render(report: &Report, format: Format, color: bool) -> Result<String, String> {
    match format {
        Format::Table => Ok(table::render(report, color)),
        Format::Json => serde_json::to_string_pretty(report)
            .map(|mut s| {
                s.push('\n');
                s
            })
            .map_err(|e| format!("rendering JSON: {e}")),
        Format::Yaml => serde_norway::to_string(report).map_err(|e| format!("rendering YAML: {e}")),
        Format::Prometheus => Ok(prometheus::render(report)),
        Format::Jsonl => json_lines(report),
    }
}

/// One line per finding, each carrying the scan's time and exit code, so that every line
/// stands on its own in a log pipeline.
fn json_lines(report: &Report) -> Result<String, String> {
    let mut out = String::new();
    for finding in &report.findings {
        let mut value = serde_json::to_value(finding).map_err(|e| e.to_string())?;
        if let Some(map) = value.as_object_mut() {
            map.insert("time".into(), report.started_at.clone().into());
            map.insert("tool".into(), report.tool.clone().into());
            map.insert("scan_exit_code".into(), report.exit_code.into());
        }
        out.push_str(&serde_json::to_string(&value).map_err(|e| e.to_string())?);
        out.push('\n');
    }
    Ok(out)
}
