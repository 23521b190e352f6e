//! `clean`: the audit's settings, `clean`'s own (the safety rails and the paths of its files,
//! from its flags and the config's `clean:` section) and the authentication of its updates,
//! all checked before anything is read from DNS or sent to it; then the cleanup itself
//! ([`crate::clean::run`]).

use std::path::PathBuf;
use std::time::Duration;

use crate::clean::{CleanError, CleanReport, CleanRequest, Plan};
use crate::config::{CleanFileConfig, CleanOverrides, CleanSettings, ScanSettings};
use crate::dns::auth::{AuthRequest, ResolveError};
use crate::report::{Format, ReportError};
use crate::support::fsio::Collision;

use super::files::{FileRoles, check_run_files};
use super::settings::{Request, SettingsError, build};

/// A cleanup as a front end asks for it.
#[derive(Debug, Clone, Default)]
pub struct CleanCommand {
    /// What to audit (the config's `ad:` and `authorized_groups:` count here too: who is
    /// authorized decides what `--include-unauthorized` may delete).
    pub audit: Request,
    /// `clean`'s own flags.
    pub flags: CleanOverrides,
    /// How updates are authenticated.
    pub auth: AuthRequest,
    /// Really delete (`--apply`); without it only the plan is made.
    pub apply: bool,
    /// How long to wait for another run's lock on the state file (default:
    /// [`crate::state::DEFAULT_LOCK_WAIT`]).
    pub lock_wait: Option<Duration>,
    /// Where the report goes, checked to be none of the cleanup's files.
    pub output: Option<PathBuf>,
}

/// Why a cleanup did not start, or stopped before deleting anything.
#[derive(Debug, thiserror::Error)]
pub enum CleanCommandError {
    /// The audit's settings could not be built.
    #[error(transparent)]
    Settings(#[from] SettingsError),
    /// Two of the run's files are one.
    #[error(transparent)]
    Files(#[from] Collision),
    /// No usable authentication.
    #[error(transparent)]
    Auth(#[from] ResolveError),
    /// The cleanup itself (see [`CleanError`]).
    #[error(transparent)]
    Clean(#[from] CleanError),
}

/// A cleanup whose every setting is checked: ready to scan and, with `--apply`, to delete.
pub struct PreparedClean {
    settings: ScanSettings,
    request: CleanRequest,
    notes: Vec<String>,
}

/// Builds and checks everything `command` needs, without a query sent.
pub async fn prepare(command: CleanCommand) -> Result<PreparedClean, CleanCommandError> {
    let audit = build(command.audit).await?;
    let clean = settings(command.flags, audit.clean, command.output.as_deref())?;
    let auth = crate::dns::auth::resolve(&command.auth, clean.tsig_key.as_deref(), command.apply)?;
    let request = CleanRequest {
        options: clean.options,
        apply: command.apply,
        auth,
        state_path: clean.state_path,
        lock_wait: command.lock_wait.unwrap_or(crate::state::DEFAULT_LOCK_WAIT),
        undo_path: clean.undo_path,
        audit_path: clean.audit_path,
        primary: clean.primary,
        confirm: Box::new(|_| false),
    };
    Ok(PreparedClean {
        settings: audit.settings,
        request,
        notes: audit.notes,
    })
}

impl PreparedClean {
    /// Whether this cleanup deletes (`--apply`), and so asks for confirmation.
    pub fn applies(&self) -> bool {
        self.request.apply
    }

    /// Scans, plans and, with `--apply`, deletes once `confirm` agrees to the plan.
    pub async fn run(
        mut self,
        confirm: Box<dyn FnOnce(&Plan) -> bool + Send>,
    ) -> Result<CleanReport, CleanCommandError> {
        self.request.confirm = confirm;
        let mut report = crate::clean::run(&self.settings, self.request).await?;
        report.scan.notes.extend(self.notes);
        Ok(report)
    }
}

/// The settings of one cleanup, its files checked to be distinct from one another and from
/// the report's `output` (a report written over the undo file would leave nothing to restore).
pub fn settings(
    flags: CleanOverrides,
    file: CleanFileConfig,
    output: Option<&std::path::Path>,
) -> Result<CleanSettings, Collision> {
    let settings = CleanSettings::resolve(
        flags,
        file,
        crate::state::default_path(),
        std::time::SystemTime::now(),
    );
    check_run_files(&FileRoles {
        output,
        state: Some(&settings.state_path),
        undo: Some(&settings.undo_path),
        audit_log: Some(&settings.audit_path),
        ..FileRoles::default()
    })?;
    Ok(settings)
}

/// What a cleanup did, as text in `format`: a table, JSON or YAML.
pub fn render(report: &CleanReport, format: Format) -> Result<String, ReportError> {
    match format {
        Format::Table => Ok(crate::clean::render_table(report)),
        _ => super::document(report, format, "clean"),
    }
}
