//! Renderers: one [`Report`] model, several formats. JSON is the stable contract for scripts
//! and monitoring; YAML is the same document; the table is for people.

pub mod fixit;
pub mod json_spool;
mod nagios;
pub mod output;
pub(crate) mod prometheus;
pub mod saved;
pub mod spool;
mod table;
pub(crate) use crate::support::quote::terminal_safe;
pub(crate) mod view;

use std::io;

#[cfg(test)]
use crate::model::Report;
pub use view::ReportView;

/// Output formats of `scan`. The default is JSON, what a scan writes when no person reads it
/// (the command line picks a table on a terminal).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// Tables for people (default on a terminal).
    Table,
    /// The JSON document described in README (default when not on a terminal).
    #[default]
    Json,
    /// The same document as YAML.
    Yaml,
    /// Prometheus text format, for node-exporter's textfile collector.
    Prometheus,
    /// One JSON object per finding and line, for log shippers.
    Jsonl,
    /// One row per finding (RFC 4180), for spreadsheets.
    Csv,
    /// A Nagios/Icinga plugin's output: a status line, perfdata, a few lines of detail.
    Nagios,
}

/// Why a report could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The destination refused the bytes: a full disk, a closed pipe, ...
    #[error("{0}")]
    Write(#[source] io::Error),
    /// The JSON encoder failed.
    #[error("encoding JSON: {0}")]
    Json(#[source] serde_json::Error),
    /// The YAML encoder failed.
    #[error("encoding YAML: {0}")]
    Yaml(#[source] serde_norway::Error),
    /// A command's result has no form in this format.
    #[error("{command} prints table, json or yaml")]
    Unsupported {
        /// The command (`clean`, `restore`).
        command: &'static str,
    },
    /// The scan's spool file could not be read back.
    #[error("reading back the scan's spool file: {0}")]
    Spool(#[source] io::Error),
}

impl ReportError {
    /// The reader went away (`| head`): the report was cut short on purpose, nothing to say.
    pub fn is_closed_pipe(&self) -> bool {
        matches!(self, Self::Write(e) if e.kind() == io::ErrorKind::BrokenPipe)
    }
}

impl From<io::Error> for ReportError {
    fn from(error: io::Error) -> Self {
        Self::Write(error)
    }
}

/// A writer that remembers its first failure: the encoders wrap the destination's error in
/// their own, and the destination's is the one that says what happened.
struct Tracked<'a> {
    inner: &'a mut dyn io::Write,
    failure: Option<io::Error>,
}

impl Tracked<'_> {
    fn note<T>(&mut self, result: io::Result<T>) -> io::Result<T> {
        if let Err(e) = &result
            && self.failure.is_none()
        {
            self.failure = Some(io::Error::new(e.kind(), e.to_string()));
        }
        result
    }
}

impl io::Write for Tracked<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let result = self.inner.write(buf);
        self.note(result)
    }

    fn flush(&mut self) -> io::Result<()> {
        let result = self.inner.flush();
        self.note(result)
    }
}

/// Writes `report` to `out`, streaming every format: the JSON and YAML documents element by
/// element, the others domain by domain. When `out` fails, that failure is the error.
pub fn write(
    report: &dyn ReportView,
    format: Format,
    color: bool,
    out: &mut dyn io::Write,
) -> Result<(), ReportError> {
    let mut tracked = Tracked {
        inner: out,
        failure: None,
    };
    // Buffered in front of the tracking: the encoders write a few bytes at a time.
    let result = {
        let mut buffered = io::BufWriter::with_capacity(1 << 16, &mut tracked);
        encode(report, format, color, &mut buffered)
            .and_then(|()| io::Write::flush(&mut buffered).map_err(ReportError::from))
    };
    match (result, tracked.failure) {
        (Err(_), Some(failure)) => Err(ReportError::Write(failure)),
        (result, _) => result,
    }
}

fn encode(
    report: &dyn ReportView,
    format: Format,
    color: bool,
    out: &mut dyn io::Write,
) -> Result<(), ReportError> {
    let document = view::Document(report);
    match format {
        Format::Json => {
            // A concrete writer for the encoder: its many small writes are then copies into
            // the buffer, not calls through `dyn Write`.
            let mut buffered = io::BufWriter::with_capacity(1 << 16, &mut *out);
            serde_json::to_writer_pretty(&mut buffered, &document).map_err(ReportError::Json)?;
            io::Write::write_all(&mut buffered, b"\n")?;
            Ok(io::Write::flush(&mut buffered)?)
        }
        Format::Yaml => serde_norway::to_writer(out, &document).map_err(ReportError::Yaml),
        Format::Table => table::write(report, color, out),
        Format::Prometheus => prometheus::write(report, out),
        Format::Jsonl => json_lines(report, out),
        Format::Csv => csv(report, out),
        Format::Nagios => nagios::write(report, out),
    }
}

/// One row per finding, RFC 4180 (CRLF, fields with `,` `"` or line breaks quoted, quotes
/// doubled). DNS data is hostile and spreadsheets run formulas: a cell that would start with
/// `=`, `+`, `-`, `@`, a tab or a carriage return is prefixed with `'`.
fn csv(report: &dyn ReportView, out: &mut dyn io::Write) -> Result<(), ReportError> {
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
    out.write_all(b"domain,code,severity,target,port,address,detail\r\n")?;
    report.for_each_finding(&mut |f| {
        let row = [
            cell(&f.domain),
            cell(f.code.as_str()),
            cell(&f.severity.to_string()),
            cell(f.target.as_deref().unwrap_or_default()),
            f.port.map(|p| p.to_string()).unwrap_or_default(),
            f.address
                .map(|a| cell(&crate::model::display_addr(a)))
                .unwrap_or_default(),
            cell(&f.detail),
        ];
        Ok(write!(out, "{}\r\n", row.join(","))?)
    })
}

/// Renders `report` into a string.
#[cfg(test)]
fn render(report: &Report, format: Format, color: bool) -> Result<String, ReportError> {
    let mut out = Vec::new();
    write(report, format, color, &mut out)?;
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// `report` as a scan hands it to a spool: each domain with its own findings, in order, and
/// the head without them.
#[cfg(test)]
fn as_scanned(
    report: &Report,
) -> (
    Vec<(&crate::model::DomainReport, Vec<crate::model::Finding>)>,
    Report,
) {
    let domains = report
        .domains
        .iter()
        .map(|d| {
            let findings = report
                .findings
                .iter()
                .filter(|f| f.domain == d.observation.domain)
                .cloned()
                .collect();
            (d, findings)
        })
        .collect();
    let mut head = report.clone();
    head.findings.clear();
    head.domains.clear();
    (domains, head)
}

/// One line per finding, each carrying the scan's time and exit code, so that every line
/// stands on its own in a log pipeline.
fn json_lines(report: &dyn ReportView, out: &mut dyn io::Write) -> Result<(), ReportError> {
    let head = report.head();
    report.for_each_finding(&mut |finding| {
        let mut value = serde_json::to_value(finding).map_err(ReportError::Json)?;
        if let Some(map) = value.as_object_mut() {
            map.insert("time".into(), head.started_at.to_string().into());
            map.insert("tool".into(), head.tool.clone().into());
            map.insert("scan_exit_code".into(), head.exit_code.into());
        }
        serde_json::to_writer(&mut *out, &value).map_err(ReportError::Json)?;
        Ok(out.write_all(b"\n")?)
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
