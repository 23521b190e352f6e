//! `report`: what a fix-it report or the metrics are made from — a saved scan, read as a stream,
//! or a fresh scan built from the same settings as `scan`'s (the directory included).

use std::path::Path;

use crate::model::Report;
use crate::report::ReportView;
use crate::report::saved::{SavedError, load};
use crate::report::spool::Spooled;

use super::files::{FileRoles, check_run_files};
use super::settings::{Request, SettingsError, build};

/// The scan a report is made from.
pub enum Source {
    /// A saved `scan --format json`, its domains spooled to disk as they were read.
    Saved(Spooled),
    /// A scan run for this report.
    Scanned(Report),
}

impl Source {
    /// Every renderer reads either the same way.
    pub fn view(&self) -> &dyn ReportView {
        match self {
            Self::Saved(spooled) => spooled,
            Self::Scanned(report) => report,
        }
    }
}

/// Why there is nothing to report from.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// Two of the run's files are one.
    #[error(transparent)]
    Files(#[from] crate::support::fsio::Collision),
    /// The saved scan could not be read.
    #[error(transparent)]
    Saved(#[from] SavedError),
    /// The settings could not be built (flags, config file, directory).
    #[error(transparent)]
    Settings(#[from] SettingsError),
}

/// The saved scan at `from`, else a scan of what `request` describes; `output` (where the
/// report goes) is checked not to be the saved scan.
pub async fn source(
    from: Option<&Path>,
    request: Request,
    output: Option<&Path>,
) -> Result<Source, SourceError> {
    check_run_files(&FileRoles {
        output,
        saved_scan: from,
        ..FileRoles::default()
    })?;
    if let Some(path) = from {
        return Ok(Source::Saved(load(path)?));
    }
    let audit = build(request).await?;
    let mut report = crate::audit::scan::run(&audit.settings).await;
    report.notes.extend(audit.notes);
    Ok(Source::Scanned(report))
}
