//! What every renderer reads: the report's head (everything but the findings and domains) and
//! one pass at a time over its findings and its domains. A [`Report`] held in memory is one
//! view; a [`super::spool::Spooled`] report, whose domains were written to disk as the scan
//! finished them, is the other — so a scan of a million domains renders without ever holding
//! them all.

use std::collections::HashMap;

use serde::ser::{Error as _, SerializeSeq, SerializeStruct};
use serde::{Serialize, Serializer};

use super::ReportError;
use crate::model::{DomainReport, Finding, Report};

/// A callback for one domain and its findings (in classification order).
pub(crate) type DomainVisit<'v> =
    dyn FnMut(&DomainReport, &[&Finding]) -> Result<(), ReportError> + 'v;
/// A callback for one finding.
pub(crate) type FindingVisit<'v> = dyn FnMut(&Finding) -> Result<(), ReportError> + 'v;

/// A report as the renderers read it, whether it is held in memory ([`Report`]) or spooled to
/// disk: the head, then one pass over the findings and one over the domains.
pub trait ReportView {
    /// The report's fields; its `findings` and `domains` may be empty (see the passes below).
    fn head(&self) -> &Report;
    /// How many domains the report holds.
    fn domain_count(&self) -> usize;
    /// Every finding, in the report's order.
    fn for_each_finding(&self, visit: &mut FindingVisit<'_>) -> Result<(), ReportError>;
    /// Every domain in the report's order, with its own findings.
    fn for_each_domain(&self, visit: &mut DomainVisit<'_>) -> Result<(), ReportError>;
}

impl ReportView for Report {
    fn head(&self) -> &Report {
        self
    }

    fn domain_count(&self) -> usize {
        self.domains.len()
    }

    fn for_each_finding(&self, visit: &mut FindingVisit<'_>) -> Result<(), ReportError> {
        self.findings.iter().try_for_each(visit)
    }

    fn for_each_domain(&self, visit: &mut DomainVisit<'_>) -> Result<(), ReportError> {
        // One index, not a search of every finding per domain.
        let mut by_domain: HashMap<&str, Vec<&Finding>> = HashMap::new();
        for f in &self.findings {
            by_domain.entry(f.domain.as_str()).or_default().push(f);
        }
        for d in &self.domains {
            let findings = by_domain
                .get(d.observation.domain.as_str())
                .map_or(&[][..], Vec::as_slice);
            visit(d, findings)?;
        }
        Ok(())
    }
}

/// Serializes any view as the report document, field for field in [`Report`]'s order, the
/// findings and domains streamed one by one.
pub(crate) struct Document<'a>(pub &'a dyn ReportView);

impl Serialize for Document<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut doc = serializer.serialize_struct("Report", 12)?;
        head_fields(self.0.head(), &mut doc)?;
        doc.serialize_field("findings", &Findings(self.0))?;
        doc.serialize_field("domains", &Domains(self.0))?;
        doc.end()
    }
}

/// The report's fields before its findings, in [`Report`]'s order.
fn head_fields<S: SerializeStruct>(head: &Report, doc: &mut S) -> Result<(), S::Error> {
    doc.serialize_field("tool", &head.tool)?;
    doc.serialize_field("version", &head.version)?;
    doc.serialize_field("started_at", &head.started_at)?;
    doc.serialize_field("duration_ms", &head.duration_ms)?;
    doc.serialize_field("timeout_ms", &head.timeout_ms)?;
    doc.serialize_field("allowlist_configured", &head.allowlist_configured)?;
    doc.serialize_field("complete", &head.complete)?;
    doc.serialize_field("worst_severity", &head.worst_severity)?;
    doc.serialize_field("exit_code", &head.exit_code)?;
    doc.serialize_field("notes", &head.notes)
}

/// Just the head's fields, as a document of their own.
pub(crate) struct Head<'a>(pub &'a Report);

impl Serialize for Head<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut doc = serializer.serialize_struct("Report", 10)?;
        head_fields(self.0, &mut doc)?;
        doc.end()
    }
}

struct Findings<'a>(&'a dyn ReportView);

impl Serialize for Findings<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        stream_seq(serializer, |element| {
            self.0.for_each_finding(&mut |f| element(f))
        })
    }
}

struct Domains<'a>(&'a dyn ReportView);

impl Serialize for Domains<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        stream_seq(serializer, |element| {
            self.0.for_each_domain(&mut |d, _| element(d))
        })
    }
}

/// A sequence of unknown length whose elements `walk` hands over one at a time; a failure of
/// the serializer stops the walk and is returned as itself.
fn stream_seq<S: Serializer, T: Serialize>(
    serializer: S,
    walk: impl FnOnce(&mut dyn FnMut(&T) -> Result<(), ReportError>) -> Result<(), ReportError>,
) -> Result<S::Ok, S::Error> {
    let mut seq = serializer.serialize_seq(None)?;
    let mut failed = None;
    let walked = walk(&mut |item| {
        seq.serialize_element(item).map_err(|e| {
            // Stops the walk; the serializer's own error is what is returned below.
            let stop = ReportError::Write(std::io::Error::other(e.to_string()));
            failed = Some(e);
            stop
        })
    });
    if let Some(e) = failed {
        return Err(e);
    }
    walked.map_err(S::Error::custom)?;
    seq.end()
}
