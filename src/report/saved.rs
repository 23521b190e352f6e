//! A saved JSON scan (`report --from`), read as a stream: the head and the findings are kept,
//! each domain goes to a [`Spool`] as soon as it is read, so a report of a scan of any size is
//! rendered without holding its domains (the whole document in memory took 4.7 times its size).
//! A document whose domains come before its findings (keys sorted, `jq -S`) cannot be
//! streamed that way: it is read whole.

use std::collections::HashMap;
use std::fmt;
use std::io::{self, BufReader, Read};
use std::path::Path;

use serde::Deserializer as _;
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::spool::{Spool, Spooled};
use crate::model::{DomainReport, Finding, Report};

/// Why a saved scan could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SavedError {
    /// The file could not be read.
    #[error(transparent)]
    File(#[from] crate::support::fsio::FileError),
    /// Not a JSON scan this tool wrote.
    #[error(
        "{path}:{line}:{column}: not a vlmcs-audit JSON scan ({message}); write one with `vlmcs-audit scan --format json`"
    )]
    Json {
        /// The file.
        path: String,
        /// Where in it (1-based).
        line: usize,
        /// The column (1-based).
        column: usize,
        /// What the JSON reader said.
        message: String,
    },
    /// The spool file for its domains could not be written.
    #[error("{path}: keeping the scan's domains in a spool file: {source}")]
    Spool {
        /// The saved scan.
        path: String,
        /// What the file system said.
        #[source]
        source: io::Error,
    },
}

/// Reads the saved scan at `path` (a regular file within [`crate::support::fsio::SAVED_SCAN`]'s bound).
pub fn load(path: &Path) -> Result<Spooled, SavedError> {
    let shown = path.display().to_string();
    let json_error = |e: serde_json::Error| SavedError::Json {
        path: shown.clone(),
        line: e.line(),
        column: e.column(),
        message: crate::support::quote::message_for_terminal(&e.to_string()),
    };
    let spool_error = |source: io::Error| SavedError::Spool {
        path: shown.clone(),
        source,
    };
    let file = crate::support::fsio::open_bounded(path, crate::support::fsio::SAVED_SCAN)?;
    let mut spool = Spool::new().map_err(spool_error)?;
    let mut deserializer = serde_json::Deserializer::from_reader(BufReader::with_capacity(
        1 << 20,
        file.take(crate::support::fsio::SAVED_SCAN.max_bytes),
    ));
    let streamed = deserializer.deserialize_map(Document { spool: &mut spool });
    let head = match streamed {
        Ok(Some(head)) => {
            deserializer.end().map_err(json_error)?;
            head
        }
        // Domains before findings: read whole (the only way to pair them).
        Ok(None) => return load_whole(path, spool_error, json_error),
        Err(e) => return Err(json_error(e)),
    };
    spool.finish(head).map_err(spool_error)
}

fn load_whole(
    path: &Path,
    spool_error: impl Fn(io::Error) -> SavedError,
    json_error: impl Fn(serde_json::Error) -> SavedError,
) -> Result<Spooled, SavedError> {
    let file = crate::support::fsio::open_bounded(path, crate::support::fsio::SAVED_SCAN)?;
    let mut report: Report = serde_json::from_reader(BufReader::with_capacity(
        1 << 20,
        file.take(crate::support::fsio::SAVED_SCAN.max_bytes),
    ))
    .map_err(json_error)?;
    let mut spool = Spool::new().map_err(&spool_error)?;
    let mut by_domain = index(std::mem::take(&mut report.findings));
    for domain in std::mem::take(&mut report.domains) {
        let findings = by_domain
            .remove(&domain.observation.domain)
            .unwrap_or_default();
        spool.push(&domain, &findings).map_err(&spool_error)?;
    }
    spool.finish(report).map_err(spool_error)
}

fn index(findings: Vec<Finding>) -> HashMap<String, Vec<Finding>> {
    let mut by_domain: HashMap<String, Vec<Finding>> = HashMap::new();
    for f in findings {
        by_domain.entry(f.domain.clone()).or_default().push(f);
    }
    by_domain
}

/// The top-level object: the head's fields read into a [`Report`] without findings and
/// domains, the findings indexed, the domains spooled with theirs. `None`: the domains came
/// before the findings.
struct Document<'s> {
    spool: &'s mut Spool,
}

impl<'de> Visitor<'de> for Document<'_> {
    type Value = Option<Report>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a vlmcs-audit scan report (a JSON object)")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut head = Head::default();
        let mut findings: Option<HashMap<String, Vec<Finding>>> = None;
        let mut domains_seen = false;
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "tool" => head.tool = Some(map.next_value()?),
                "version" => head.version = Some(map.next_value()?),
                "started_at" => head.started_at = Some(map.next_value()?),
                "duration_ms" => head.duration_ms = Some(map.next_value()?),
                "timeout_ms" => head.timeout_ms = Some(map.next_value()?),
                "allowlist_configured" => head.allowlist_configured = Some(map.next_value()?),
                "complete" => head.complete = Some(map.next_value()?),
                "worst_severity" => head.worst_severity = Some(map.next_value()?),
                "exit_code" => head.exit_code = Some(map.next_value()?),
                "notes" => head.notes = Some(map.next_value()?),
                "findings" => findings = Some(index(map.next_value()?)),
                "domains" => {
                    let Some(by_domain) = findings.as_mut() else {
                        // Skip the rest: the caller reads the file whole instead.
                        map.next_value::<IgnoredAny>()?;
                        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                        return Ok(None);
                    };
                    map.next_value_seed(Domains {
                        spool: &mut *self.spool,
                        findings: by_domain,
                    })?;
                    domains_seen = true;
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        if findings.is_none() {
            return Err(de::Error::missing_field("findings"));
        }
        if !domains_seen {
            return Err(de::Error::missing_field("domains"));
        }
        head.into_report().map(Some)
    }
}

/// The head's fields as they arrive.
#[derive(Default)]
struct Head {
    tool: Option<String>,
    version: Option<String>,
    started_at: Option<crate::support::time::Timestamp>,
    duration_ms: Option<f64>,
    timeout_ms: Option<u64>,
    allowlist_configured: Option<bool>,
    complete: Option<bool>,
    worst_severity: Option<crate::model::Severity>,
    exit_code: Option<i32>,
    notes: Option<Vec<String>>,
}

impl Head {
    fn into_report<E: de::Error>(self) -> Result<Report, E> {
        fn need<T, E: de::Error>(value: Option<T>, name: &'static str) -> Result<T, E> {
            value.ok_or_else(|| E::missing_field(name))
        }
        Ok(Report {
            tool: need(self.tool, "tool")?,
            version: need(self.version, "version")?,
            started_at: need(self.started_at, "started_at")?,
            duration_ms: need(self.duration_ms, "duration_ms")?,
            timeout_ms: need(self.timeout_ms, "timeout_ms")?,
            allowlist_configured: need(self.allowlist_configured, "allowlist_configured")?,
            complete: need(self.complete, "complete")?,
            worst_severity: need(self.worst_severity, "worst_severity")?,
            exit_code: need(self.exit_code, "exit_code")?,
            notes: need(self.notes, "notes")?,
            findings: Vec::new(),
            domains: Vec::new(),
        })
    }
}

/// The `domains` array: each element read, given its findings, and spooled at once.
struct Domains<'a> {
    spool: &'a mut Spool,
    findings: &'a mut HashMap<String, Vec<Finding>>,
}

impl<'de> DeserializeSeed<'de> for Domains<'_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Domains<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of domains")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(domain) = seq.next_element::<DomainReport>()? {
            let findings = self
                .findings
                .remove(&domain.observation.domain)
                .unwrap_or_default();
            self.spool
                .push(&domain, &findings)
                .map_err(|e| de::Error::custom(format!("spool: {e}")))?;
        }
        Ok(())
    }
}
