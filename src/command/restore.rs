//! `restore`: an undo file read, checked whole before anything is sent, and its records put
//! back one by one (see [`crate::clean::restore`] for what each addition checks first).

use std::path::PathBuf;
use std::time::Duration;

use crate::clean::trail::{AuditLog, UndoError, parse_undo};
use crate::clean::{RestoreOptions, RestoreResult, restore};
use crate::dns::auth::{AuthRequest, ResolveError};
use crate::report::{Format, ReportError};
use crate::support::fsio::{Collision, FileError};

use super::files::{FileRoles, check_run_files};

/// A restore as a front end asks for it.
#[derive(Debug, Clone, Default)]
pub struct RestoreRequest {
    /// The undo file a cleanup wrote.
    pub undo_file: PathBuf,
    /// Append each addition to this JSON-lines audit log.
    pub audit_log: Option<PathBuf>,
    /// Where the report goes, checked to be neither of the files above.
    pub output: Option<PathBuf>,
    /// How the updates are authenticated (one is needed).
    pub auth: AuthRequest,
    /// Send every update here instead of the server named in the undo file.
    pub server: Option<std::net::SocketAddr>,
    /// Each update's and read-back's timeout (default: [`crate::config::DEFAULT_TIMEOUT`], as
    /// for scan and clean).
    pub timeout: Option<Duration>,
    /// See [`RestoreOptions::keep_live_ttl`].
    pub keep_live_ttl: bool,
}

/// Why nothing was restored.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    /// Two of the run's files are one.
    #[error(transparent)]
    Files(#[from] Collision),
    /// No usable authentication.
    #[error(transparent)]
    Auth(#[from] ResolveError),
    /// The undo file could not be read.
    #[error(transparent)]
    UndoFile(FileError),
    /// The undo file is not one `clean` wrote (nothing was sent).
    #[error(transparent)]
    Undo(#[from] UndoError),
    /// The audit log could not be opened for appending.
    #[error("cannot open the audit log {}: {source}", path.display())]
    AuditLog {
        /// The log's path.
        path: PathBuf,
        /// Why.
        #[source]
        source: FileError,
    },
}

/// Restores the undo file `request` names. Returns what became of each entry and the exit code.
pub async fn run(request: RestoreRequest) -> Result<(Vec<RestoreResult>, i32), RestoreError> {
    check_run_files(&FileRoles {
        undo: Some(&request.undo_file),
        audit_log: request.audit_log.as_deref(),
        output: request.output.as_deref(),
        ..FileRoles::default()
    })?;
    let auth = crate::dns::auth::resolve(&request.auth, None, true)?;
    let undo_file = &request.undo_file;
    let text = crate::support::fsio::read_text(undo_file, crate::support::fsio::UNDO)
        .map_err(RestoreError::UndoFile)?;
    let entries = parse_undo(&text, &undo_file.display().to_string())?;
    let mut audit = request
        .audit_log
        .as_deref()
        .map(|path| {
            AuditLog::open(path).map_err(|source| RestoreError::AuditLog {
                path: path.to_path_buf(),
                source,
            })
        })
        .transpose()?;
    let options = RestoreOptions {
        server: request.server,
        timeout: request.timeout.unwrap_or(crate::config::DEFAULT_TIMEOUT),
        keep_live_ttl: request.keep_live_ttl,
    };
    Ok(restore(&entries, &auth, options, audit.as_mut()).await)
}

/// What became of each entry, as text in `format`: a line each, JSON or YAML.
pub fn render(results: &[RestoreResult], format: Format) -> Result<String, ReportError> {
    match format {
        Format::Table => Ok(results
            .iter()
            .map(|r| {
                format!(
                    "line {}: {} {} at {}: {}\n",
                    r.line, r.owner, r.record, r.server, r.result
                )
            })
            .collect()),
        _ => super::document(&results, format, "restore"),
    }
}
