//! `scan`: one audit from its settings; with a state file, the state folded in and the drift
//! since the last scan; out comes the report, in the form it is best written from.

use std::path::PathBuf;
use std::time::SystemTime;

use crate::audit::scan::{DomainSink, Progress};
use crate::model::{Report, exit_code};
use crate::report::json_spool::{JsonSpool, JsonSpooled};
use crate::report::spool::{Spool, Spooled};
use crate::report::{Format, ReportError};
use crate::state::{LockedState, StateError};

use super::files::{FileRoles, check_run_files};
use super::settings::{Request, SettingsError, build};

/// A scan as a front end asks for it.
#[derive(Debug, Clone, Default)]
pub struct ScanRequest {
    /// What to audit and how.
    pub audit: Request,
    /// Keep the history of every record here and report drift (`--state`).
    pub state_file: Option<PathBuf>,
    /// With a state file: report only what changed since the last scan (`--since-last`).
    pub since_last: bool,
    /// The format the report will be written in: JSON is rendered as the scan goes.
    pub format: Format,
    /// Where the report goes, checked to be none of the scan's other files.
    pub output: Option<PathBuf>,
}

/// A finished scan, ready to be written.
pub enum ScanOutcome {
    /// The JSON document, its findings and domains already rendered on disk.
    Json(JsonSpooled),
    /// Every domain in a spool file (no state file: nothing needs the whole scan at once).
    Spooled(Spooled),
    /// The whole report in memory (a state file needs it all for drift).
    InMemory(Report),
    /// `--since-last` and nothing changed: nothing to say (cron mails only when there is
    /// output), and nothing is written.
    Unchanged,
}

impl ScanOutcome {
    /// The process exit code (Nagios convention, see [`exit_code`]).
    pub fn exit_code(&self) -> i32 {
        match self {
            Self::Json(spooled) => spooled.head.exit_code,
            Self::Spooled(spooled) => spooled.head.exit_code,
            Self::InMemory(report) => report.exit_code,
            Self::Unchanged => exit_code::OK,
        }
    }

    /// Whether there is a report to write.
    pub fn has_report(&self) -> bool {
        !matches!(self, Self::Unchanged)
    }

    /// Writes the report in `format` (the request's, for [`Self::Json`]).
    pub fn write(
        &mut self,
        format: Format,
        color: bool,
        out: &mut dyn std::io::Write,
    ) -> Result<(), ReportError> {
        match self {
            Self::Json(spooled) => spooled.write(out),
            Self::Spooled(spooled) => crate::report::write(spooled, format, color, out),
            Self::InMemory(report) => crate::report::write(report, format, color, out),
            Self::Unchanged => Ok(()),
        }
    }
}

/// Why a scan did not run or its results could not be kept.
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    /// Two of the run's files are one.
    #[error(transparent)]
    Files(#[from] crate::support::fsio::Collision),
    /// The settings could not be built.
    #[error(transparent)]
    Settings(#[from] SettingsError),
    /// The state file could not be locked, read or saved.
    #[error(transparent)]
    State(#[from] StateError),
    /// A spool file in the temporary directory could not be written.
    #[error("cannot keep the scan's results in {}: {source}", dir.display())]
    Spool {
        /// The temporary directory.
        dir: PathBuf,
        /// What the file system said.
        #[source]
        source: std::io::Error,
    },
}

/// Told how far a scan has come (a progress bar is the front end's business).
pub trait ScanProgress: Sync {
    /// The settings are built: this many domains will be scanned.
    fn started(&self, domains: usize);
    /// One more domain is finished.
    fn domain_done(&self);
}

impl ScanError {
    /// A spool file in the temporary directory could not be written or read back.
    fn spool(source: std::io::Error) -> Self {
        Self::Spool {
            dir: std::env::temp_dir(),
            source,
        }
    }
}

/// Runs the scan `request` describes, telling `progress` how far it has come.
pub async fn run(
    request: ScanRequest,
    progress: Option<&dyn ScanProgress>,
) -> Result<ScanOutcome, ScanError> {
    check_run_files(&FileRoles {
        output: request.output.as_deref(),
        state: request.state_file.as_deref(),
        ..FileRoles::default()
    })?;
    let audit = build(request.audit).await?;
    let (settings, directory_notes) = (audit.settings, audit.notes);
    tracing::info!(domains = settings.domains.len(), timeout = ?settings.timeout, "scan starting");
    if let Some(progress) = progress {
        progress.started(settings.domains.len());
    }
    let tick = progress.map(|p| move || p.domain_done());
    let progress = tick.as_ref().map(|t| t as Progress<'_>);
    let Some(state_file) = &request.state_file else {
        // Without a state file nothing needs the whole scan at once: each domain goes to a
        // spool file as it is finished, and the report is rendered from there — for JSON,
        // rendered as it goes, so that writing the report is copying it.
        let spool_failed = ScanError::spool;
        if request.format == Format::Json {
            let mut spool = JsonSpool::new().map_err(spool_failed)?;
            let head = spooled(&settings, progress, &mut spool, directory_notes).await?;
            return Ok(ScanOutcome::Json(spool.finish(head).map_err(spool_failed)?));
        }
        let mut spool = Spool::new().map_err(spool_failed)?;
        let head = spooled(&settings, progress, &mut spool, directory_notes).await?;
        return Ok(ScanOutcome::Spooled(
            spool.finish(head).map_err(spool_failed)?,
        ));
    };
    // Locked before scanning, so that two scans never interleave their updates.
    let mut locked = LockedState::open_waiting(state_file, crate::state::DEFAULT_LOCK_WAIT).await?;
    let mut report = crate::audit::scan::run_with_progress(&settings, progress).await;
    report.notes.extend(directory_notes);
    crate::state::drift::record_scan(&mut locked, &mut report, SystemTime::now(), true)?;
    if request.since_last {
        crate::state::drift::keep_changes(&mut report);
        if report.findings.is_empty() {
            return Ok(ScanOutcome::Unchanged);
        }
    }
    Ok(ScanOutcome::InMemory(report))
}

/// A scan whose domains go to `sink` as they are finished; the report's head.
async fn spooled<K: DomainSink<Error = std::io::Error>>(
    settings: &crate::config::ScanSettings,
    progress: Option<Progress<'_>>,
    sink: &mut K,
    notes: Vec<String>,
) -> Result<Report, ScanError> {
    let mut head = crate::audit::scan::run_into(settings, progress, sink)
        .await
        .map_err(ScanError::spool)?;
    tracing::info!(ms = head.duration_ms, "scan finished, writing the report");
    head.notes.extend(notes);
    Ok(head)
}
