//! Renderers: one [`Report`] model, several formats. JSON is the stable contract for scripts
//! and monitoring; YAML is the same document; the table is for people.

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
    }
}
