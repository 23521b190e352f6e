//! `report`: what a fix-it report or the metrics are made from — a saved scan, read as a stream,
//! or a fresh scan built from the same settings as `scan`'s (the directory included).

use std::path::Path;

use crate::model::Report;
use crate::report::ReportView;
use crate::report::saved::{SavedError, load};
use crate::report::spool::Spooled;

use super::settings::{Request, build};

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
    #[error(transparent)]
    Saved(#[from] SavedError),
    /// The settings could not be built (flags, config file, directory).
    #[error("{0}")]
    Settings(String),
}

/// The saved scan at `from`, else a scan of what `request` describes.
pub async fn source(from: Option<&Path>, request: Request) -> Result<Source, SourceError> {
    if let Some(path) = from {
        return Ok(Source::Saved(load(path)?));
    }
    let audit = build(request).await.map_err(SourceError::Settings)?;
    let mut report = crate::scan::run(&audit.settings).await;
    report.notes.extend(audit.notes);
    Ok(Source::Scanned(report))
}
