//! The commands, below every front end (the command line, a scheduled task, a library user):
//! each takes one request — flags, config file, directory — builds its settings once in
//! [`settings`], runs, and returns a result that the renderers write. The binary only parses
//! flags into a request and writes what comes back.

pub mod clean;
pub mod files;
pub mod report;
pub mod restore;
pub mod scan;
pub mod settings;

use crate::report::{Format, ReportError};

/// A command's result as a JSON or YAML document; other formats are `command`'s own or none.
fn document<T: serde::Serialize>(
    value: &T,
    format: Format,
    command: &'static str,
) -> Result<String, ReportError> {
    match format {
        Format::Json => Ok(serde_json::to_string_pretty(value).map_err(ReportError::Json)? + "\n"),
        Format::Yaml => serde_norway::to_string(value).map_err(ReportError::Yaml),
        Format::Table | Format::Prometheus | Format::Jsonl | Format::Csv | Format::Nagios => {
            Err(ReportError::Unsupported { command })
        }
    }
}
