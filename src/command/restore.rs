//! `restore`: an undo file read, checked whole before anything is sent, and its records put
//! back one by one (see [`crate::clean::restore`] for what each addition checks first).

use std::path::{Path, PathBuf};

use crate::auth::Auth;
use crate::clean::trail::{AuditLog, UndoError, parse_undo};
use crate::clean::{RestoreOptions, RestoreResult, restore};
use crate::fsio::FileError;

/// Why nothing was restored.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    #[error(transparent)]
    UndoFile(FileError),
    #[error(transparent)]
    Undo(#[from] UndoError),
    #[error("cannot open the audit log {}: {source}", path.display())]
    AuditLog {
        path: PathBuf,
        #[source]
        source: FileError,
    },
}

/// Restores the undo file at `undo_file`, logging each addition to `audit_log` when given.
/// Returns what became of each entry and the exit code.
pub async fn run(
    undo_file: &Path,
    audit_log: Option<&Path>,
    auth: &Auth,
    options: RestoreOptions,
) -> Result<(Vec<RestoreResult>, i32), RestoreError> {
    let text =
        crate::fsio::read_text(undo_file, crate::fsio::UNDO).map_err(RestoreError::UndoFile)?;
    let entries = parse_undo(&text, &undo_file.display().to_string())?;
    let mut audit = audit_log
        .map(|path| {
            AuditLog::open(path).map_err(|source| RestoreError::AuditLog {
                path: path.to_path_buf(),
                source,
            })
        })
        .transpose()?;
    Ok(restore(&entries, auth, options, audit.as_mut()).await)
}
