//! Where a report goes: a file (see [`crate::support::fsio::write_report`]: replaced atomically, so a
//! textfile collector or a web server never sees half a file; a device or FIFO written
//! directly) or standard output (`-` too). A closed pipe on standard output (`| head`) ends
//! quietly; any other write error is an error, never a silently truncated report.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::ReportError;

/// Why a report could not be written.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    /// The renderer failed while writing to the file.
    #[error("cannot write the report to {}: {source}", path.display())]
    Render {
        /// The file.
        path: PathBuf,
        /// The renderer's error.
        #[source]
        source: ReportError,
    },
    /// The file could not be written (or replaced).
    #[error(transparent)]
    File(#[from] crate::support::fsio::FileError),
    /// Standard output refused the report.
    #[error("cannot write the report to standard output: {0}")]
    Stdout(#[source] ReportError),
}

/// Runs `write` against `destination`: the file at that path, or standard output for `None`
/// and `-`.
pub fn write_to(
    destination: Option<&Path>,
    write: impl FnOnce(&mut dyn Write) -> Result<(), ReportError>,
) -> Result<(), OutputError> {
    // The renderer's own error, when it is the one that failed.
    let mut failure: Option<ReportError> = None;
    let run = |out: &mut dyn Write| -> std::io::Result<()> {
        write(out).map_err(|e| {
            let io = std::io::Error::other(e.to_string());
            failure = Some(e);
            io
        })?;
        out.flush()
    };
    match destination {
        Some(path) if path != Path::new("-") => crate::support::fsio::write_report(path, run)
            .map_err(|e| match failure.take() {
                Some(source) => OutputError::Render {
                    path: path.to_path_buf(),
                    source,
                },
                None => OutputError::File(e),
            }),
        _ => {
            let mut stdout = std::io::BufWriter::new(std::io::stdout().lock());
            let result = run(&mut stdout);
            let error = match (result, failure) {
                (Ok(()), _) => return Ok(()),
                (Err(_), Some(renderer)) => renderer,
                (Err(flush), None) => ReportError::Write(flush),
            };
            if error.is_closed_pipe() {
                Ok(())
            } else {
                Err(OutputError::Stdout(error))
            }
        }
    }
}

/// Writes `text` to `destination` as [`write_to`] does.
pub fn write_text(destination: Option<&Path>, text: &str) -> Result<(), OutputError> {
    write_to(destination, |out| Ok(out.write_all(text.as_bytes())?))
}
