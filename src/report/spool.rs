//! A scan's finished domains, kept on disk instead of in memory: one compact JSON line per
//! domain (with its findings) in an unlinked temporary file in `$TMPDIR`, about 3 KB a domain.
//! The renderers read it back one domain at a time ([`ReportView`]), so the memory a scan needs
//! is set by the domains in flight, not by how many there are.

use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Seek, SeekFrom, Write};

use serde::{Deserialize, Serialize};

use super::ReportError;
use super::view::{DomainVisit, FindingVisit, ReportView};
use crate::model::{
    DomainObservation, DomainReport, DomainSummary, Finding, RecordVerdict, Report,
};

/// A spooled domain: the report's parts side by side rather than the report itself, whose
/// flattened observation serde can only read back through a buffered copy of every field.
#[derive(Serialize)]
struct EntryRef<'a> {
    findings: &'a [Finding],
    observation: &'a DomainObservation,
    summary: &'a DomainSummary,
    verdicts: &'a [RecordVerdict],
}

#[derive(Deserialize)]
struct Entry {
    findings: Vec<Finding>,
    observation: DomainObservation,
    summary: DomainSummary,
    verdicts: Vec<RecordVerdict>,
}

/// The same line when only its findings are wanted: the rest is skipped, not built.
#[derive(Deserialize)]
struct FindingsOnly {
    findings: Vec<Finding>,
}

/// Domains as the scan finishes them.
pub struct Spool {
    out: BufWriter<File>,
    domains: usize,
}

impl Spool {
    /// A new spool in the system's temporary directory; the file has no name from the start,
    /// so nothing is left behind however the run ends.
    pub fn new() -> io::Result<Self> {
        Ok(Self {
            out: BufWriter::with_capacity(1 << 17, anonymous_file()?),
            domains: 0,
        })
    }

    pub(crate) fn push(&mut self, domain: &DomainReport, findings: &[Finding]) -> io::Result<()> {
        let entry = EntryRef {
            findings,
            observation: &domain.observation,
            summary: &domain.summary,
            verdicts: &domain.verdicts,
        };
        serde_json::to_writer(&mut self.out, &entry).map_err(io::Error::other)?;
        self.out.write_all(b"\n")?;
        self.domains += 1;
        Ok(())
    }

    /// The finished report: `head` (without findings and domains) and what was spooled.
    pub fn finish(self, head: Report) -> io::Result<Spooled> {
        let file = self.out.into_inner().map_err(|e| e.into_error())?;
        Ok(Spooled {
            head,
            file,
            domains: self.domains,
        })
    }
}

/// A new file in the system's temporary directory that has no name (nothing is left behind
/// however the run ends), readable and writable by this user only.
pub(crate) fn anonymous_file() -> io::Result<File> {
    let dir = std::env::temp_dir();
    for attempt in 0..100u32 {
        let path = dir.join(format!(
            ".vlmcs-audit-spool-{}-{attempt}",
            std::process::id()
        ));
        let mut options = std::fs::OpenOptions::new();
        options.read(true).write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options
                .mode(0o600)
                .custom_flags(crate::support::fsio::open_flags(
                    rustix::fs::OFlags::NOFOLLOW,
                ));
        }
        match options.open(&path) {
            Ok(file) => {
                std::fs::remove_file(&path)?;
                return Ok(file);
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => {
                return Err(io::Error::new(
                    e.kind(),
                    format!("cannot create a spool file in {}: {e}", dir.display()),
                ));
            }
        }
    }
    Err(io::Error::other(format!(
        "cannot create a spool file in {}",
        dir.display()
    )))
}

/// A report whose domains are in a [`Spool`].
pub struct Spooled {
    /// The report without its findings and domains (they are in the spool).
    pub head: Report,
    file: File,
    domains: usize,
}

impl Spooled {
    fn each_line<T: serde::de::DeserializeOwned>(
        &self,
        visit: &mut dyn FnMut(T) -> Result<(), ReportError>,
    ) -> Result<(), ReportError> {
        let failed = ReportError::Spool;
        (&self.file).seek(SeekFrom::Start(0)).map_err(failed)?;
        let mut reader = BufReader::with_capacity(1 << 20, &self.file);
        let mut line = Vec::new();
        loop {
            line.clear();
            if reader.read_until(b'\n', &mut line).map_err(failed)? == 0 {
                return Ok(());
            }
            let entry: T = serde_json::from_slice(&line)
                .map_err(|e| failed(io::Error::new(io::ErrorKind::InvalidData, e)))?;
            visit(entry)?;
        }
    }
}

impl ReportView for Spooled {
    fn head(&self) -> &Report {
        &self.head
    }

    fn domain_count(&self) -> usize {
        self.domains
    }

    fn for_each_finding(&self, visit: &mut FindingVisit<'_>) -> Result<(), ReportError> {
        self.each_line(&mut |entry: FindingsOnly| entry.findings.iter().try_for_each(&mut *visit))
    }

    fn for_each_domain(&self, visit: &mut DomainVisit<'_>) -> Result<(), ReportError> {
        self.each_line(&mut |entry: Entry| {
            let findings: Vec<&Finding> = entry.findings.iter().collect();
            let domain = DomainReport {
                observation: entry.observation,
                summary: entry.summary,
                verdicts: entry.verdicts,
            };
            visit(&domain, &findings)
        })
    }
}

/// Each domain goes to the spool as the scan finishes it.
impl crate::audit::scan::DomainSink for Spool {
    type Error = std::io::Error;
    fn domain(
        &mut self,
        domain: crate::model::DomainReport,
        findings: Vec<crate::model::Finding>,
    ) -> Result<(), Self::Error> {
        self.push(&domain, &findings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{Format, write};

    #[test]
    fn a_spooled_report_renders_byte_for_byte_like_one_in_memory() {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/lab-scan.json"
        ))
        .unwrap();
        let report: Report = serde_json::from_str(&text).unwrap();
        let mut spool = Spool::new().unwrap();
        let (domains, head) = crate::report::as_scanned(&report);
        for (d, findings) in domains {
            spool.push(d, &findings).unwrap();
        }
        let spooled = spool.finish(head).unwrap();
        for format in [
            Format::Json,
            Format::Yaml,
            Format::Table,
            Format::Prometheus,
            Format::Jsonl,
            Format::Csv,
        ] {
            let (mut memory, mut disk) = (Vec::new(), Vec::new());
            write(&report, format, false, &mut memory).unwrap();
            write(&spooled, format, false, &mut disk).unwrap();
            assert!(memory.len() > 100, "{format:?}");
            assert!(memory == disk, "{format:?} differs");
        }
        // And the streamed JSON document is exactly what serde writes for the model.
        let mut streamed = Vec::new();
        write(&spooled, Format::Json, false, &mut streamed).unwrap();
        let whole = serde_json::to_string_pretty(&report).unwrap() + "\n";
        assert_eq!(String::from_utf8(streamed).unwrap(), whole);
        let mut yaml = Vec::new();
        write(&spooled, Format::Yaml, false, &mut yaml).unwrap();
        assert_eq!(
            String::from_utf8(yaml).unwrap(),
            serde_norway::to_string(&report).unwrap()
        );
    }

    #[test]
    fn the_typed_model_writes_the_json_contract_of_0_1_unchanged_but_for_verdicts() {
        // The fixture was written by vlmcs-audit 0.1, whose model held strings where the typed
        // one holds enums (transport, servers_from, source, resolution errors, ...).
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/lab-scan.json"
        ))
        .unwrap();
        let report: Report = serde_json::from_str(&text).unwrap();
        let mut again = serde_json::to_value(&report).unwrap();
        let before: serde_json::Value = serde_json::from_str(&text).unwrap();
        for (domain, old) in again["domains"]
            .as_array_mut()
            .unwrap()
            .iter_mut()
            .zip(before["domains"].as_array().unwrap())
        {
            let fields = domain.as_object_mut().unwrap();
            assert_eq!(fields.remove("verdicts"), Some(serde_json::json!([])));
            // The fixture predates `dns_ms` (which reads back as its default).
            if old.get("dns_ms").is_none() {
                fields.remove("dns_ms");
            }
        }
        assert_eq!(again, before);
    }
}
