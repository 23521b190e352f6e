//! The JSON report of a scan, written as the scan finishes each domain: every finding and
//! every domain is rendered as it will appear in the document (pretty, at its depth) into one
//! of two unlinked temporary files, so that writing the report at the end is copying bytes —
//! not reading a scan back and encoding it again. The document is byte for byte what serde
//! writes for the [`Report`] (tested).

use std::fs::File;
use std::io::{self, BufWriter, Seek, SeekFrom, Write};

use serde::Serialize;

use super::ReportError;
use super::spool::anonymous_file;
use super::view::Head;
use crate::model::{DomainReport, Finding, Report};

/// Array elements of the report's `findings` and `domains` sit two levels deep.
const ELEMENT_INDENT: &[u8] = b"    ";

/// One rendered array: its elements, separated, in a temporary file.
struct Rendered {
    out: BufWriter<File>,
    count: usize,
}

impl Rendered {
    fn new() -> io::Result<Self> {
        Ok(Self {
            out: BufWriter::with_capacity(1 << 17, anonymous_file()?),
            count: 0,
        })
    }

    /// Appends `value` as the array's next element, indented to its depth, straight into the
    /// file's buffer.
    fn push(&mut self, value: &impl Serialize) -> io::Result<()> {
        if self.count > 0 {
            self.out.write_all(b",\n")?;
        }
        self.out.write_all(ELEMENT_INDENT)?;
        let mut encoder =
            serde_json::Serializer::with_formatter(&mut self.out, ElementFormatter::new());
        value.serialize(&mut encoder).map_err(io::Error::other)?;
        self.count += 1;
        Ok(())
    }

    fn finish(self) -> io::Result<(File, usize)> {
        let mut file = self.out.into_inner().map_err(|e| e.into_error())?;
        file.seek(SeekFrom::Start(0))?;
        Ok((file, self.count))
    }
}

/// serde_json's pretty layout (two spaces a level) for an element of an array that is itself
/// a member of the document's top object: every line after the first indented by
/// [`ELEMENT_INDENT`], written as it is encoded. Not serde_json's `PrettyFormatter` walked two
/// levels down: that writes each level of indentation apart, 26 M more instructions per 1,000
/// domains (a tenth of a scan's user-space work, callgrind).
struct ElementFormatter {
    depth: usize,
    has_value: bool,
}

impl ElementFormatter {
    /// The array's elements are two levels down.
    const BASE: usize = 2;

    fn new() -> Self {
        Self {
            depth: Self::BASE,
            has_value: false,
        }
    }

    /// A line break and the indentation of `depth`, in one write for the depths JSON reports
    /// reach.
    fn line<W: ?Sized + Write>(&self, out: &mut W, depth: usize) -> io::Result<()> {
        const LINE: &[u8; 33] = b"\n                                ";
        match LINE.get(..1 + 2 * depth) {
            Some(line) => out.write_all(line),
            None => {
                out.write_all(b"\n")?;
                (0..depth).try_for_each(|_| out.write_all(b"  "))
            }
        }
    }

    /// An array or object opens one level deeper.
    fn open<W: ?Sized + Write>(&mut self, out: &mut W, bracket: &[u8]) -> io::Result<()> {
        self.depth += 1;
        self.has_value = false;
        out.write_all(bracket)
    }

    /// It closes on a line of its own, unless it is empty.
    fn close<W: ?Sized + Write>(&mut self, out: &mut W, bracket: &[u8]) -> io::Result<()> {
        self.depth -= 1;
        if self.has_value {
            self.line(out, self.depth)?;
        }
        out.write_all(bracket)
    }

    /// Each element or key on a line of its own, after a comma unless it is the first.
    fn item<W: ?Sized + Write>(&self, out: &mut W, first: bool) -> io::Result<()> {
        if !first {
            out.write_all(b",")?;
        }
        self.line(out, self.depth)
    }
}

impl serde_json::ser::Formatter for ElementFormatter {
    fn begin_array<W: ?Sized + Write>(&mut self, out: &mut W) -> io::Result<()> {
        self.open(out, b"[")
    }

    fn end_array<W: ?Sized + Write>(&mut self, out: &mut W) -> io::Result<()> {
        self.close(out, b"]")
    }

    fn begin_array_value<W: ?Sized + Write>(&mut self, out: &mut W, first: bool) -> io::Result<()> {
        self.item(out, first)
    }

    fn end_array_value<W: ?Sized + Write>(&mut self, _out: &mut W) -> io::Result<()> {
        self.has_value = true;
        Ok(())
    }

    fn begin_object<W: ?Sized + Write>(&mut self, out: &mut W) -> io::Result<()> {
        self.open(out, b"{")
    }

    fn end_object<W: ?Sized + Write>(&mut self, out: &mut W) -> io::Result<()> {
        self.close(out, b"}")
    }

    fn begin_object_key<W: ?Sized + Write>(&mut self, out: &mut W, first: bool) -> io::Result<()> {
        self.item(out, first)
    }

    fn begin_object_value<W: ?Sized + Write>(&mut self, out: &mut W) -> io::Result<()> {
        out.write_all(b": ")
    }

    fn end_object_value<W: ?Sized + Write>(&mut self, _out: &mut W) -> io::Result<()> {
        self.has_value = true;
        Ok(())
    }
}

/// Findings and domains as the scan finishes them, already in their JSON form.
pub struct JsonSpool {
    findings: Rendered,
    domains: Rendered,
}

impl JsonSpool {
    /// Two empty spool files in the temporary directory.
    pub fn new() -> io::Result<Self> {
        Ok(Self {
            findings: Rendered::new()?,
            domains: Rendered::new()?,
        })
    }

    pub(crate) fn push(&mut self, domain: &DomainReport, findings: &[Finding]) -> io::Result<()> {
        for finding in findings {
            self.findings.push(finding)?;
        }
        self.domains.push(domain)
    }

    /// The finished report: `head` (without findings and domains) and what was rendered.
    pub fn finish(self, head: Report) -> io::Result<JsonSpooled> {
        Ok(JsonSpooled {
            head,
            findings: self.findings.finish()?,
            domains: self.domains.finish()?,
        })
    }
}

/// A JSON report whose findings and domains are rendered on disk.
pub struct JsonSpooled {
    /// The report without its findings and domains (they are on disk).
    pub head: Report,
    findings: (File, usize),
    domains: (File, usize),
}

impl JsonSpooled {
    /// Writes the document: the head's fields, then the two arrays copied from disk.
    pub fn write(&mut self, out: &mut dyn Write) -> Result<(), ReportError> {
        let mut head = serde_json::to_vec_pretty(&Head(&self.head)).map_err(ReportError::Json)?;
        // The head is a document of its own: it ends with its closing brace.
        if head.ends_with(b"\n}") {
            head.truncate(head.len() - 2);
        }
        out.write_all(&head)?;
        for (name, (file, count)) in [
            ("findings", &mut self.findings),
            ("domains", &mut self.domains),
        ] {
            write!(out, ",\n  \"{name}\": [")?;
            if *count > 0 {
                out.write_all(b"\n")?;
                copy(file, out)?;
                out.write_all(b"\n  ")?;
            }
            out.write_all(b"]")?;
        }
        out.write_all(b"\n}\n")?;
        Ok(())
    }
}

/// The spool file's bytes into `out`; a failure to read is the spool's, one to write is the
/// destination's.
fn copy(file: &mut File, out: &mut dyn Write) -> Result<(), ReportError> {
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        let n = io::Read::read(file, &mut buffer).map_err(ReportError::Spool)?;
        if n == 0 {
            return Ok(());
        }
        out.write_all(&buffer[..n])?;
    }
}

/// Each domain goes to the spool as the scan finishes it.
impl crate::audit::scan::DomainSink for JsonSpool {
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

    fn spooled(report: &Report) -> JsonSpooled {
        let mut spool = JsonSpool::new().unwrap();
        let (domains, head) = crate::report::as_scanned(report);
        for (d, findings) in domains {
            spool.push(d, &findings).unwrap();
        }
        spool.finish(head).unwrap()
    }

    #[test]
    fn the_document_is_byte_for_byte_what_serde_writes_for_the_report() {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/lab-scan.json"
        ))
        .unwrap();
        let mut report: Report = serde_json::from_str(&text).unwrap();
        // Findings in domain order, as a scan hands them over.
        let order: Vec<String> = report
            .domains
            .iter()
            .map(|d| d.observation.domain.clone())
            .collect();
        report
            .findings
            .sort_by_key(|f| order.iter().position(|d| *d == f.domain));
        let mut written = Vec::new();
        spooled(&report).write(&mut written).unwrap();
        assert_eq!(
            String::from_utf8(written).unwrap(),
            serde_json::to_string_pretty(&report).unwrap() + "\n"
        );
        // Empty arrays and notes are written as serde writes them too.
        report.findings.clear();
        report.domains.clear();
        report.notes.clear();
        let mut written = Vec::new();
        spooled(&report).write(&mut written).unwrap();
        assert_eq!(
            String::from_utf8(written).unwrap(),
            serde_json::to_string_pretty(&report).unwrap() + "\n"
        );
    }
}
