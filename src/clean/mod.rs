//! `clean`: the one command that changes DNS. Fresh scan → state → plan → (confirmation) →
//! re-probe, undo line, conditional exact delete, audit line → check every server.
//! Dry-run unless `--apply`; everything uncertain is kept.

pub(crate) mod apply;
pub(crate) mod plan;
pub mod trail;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{ContentArrangement, Table};
use serde::Serialize;

use crate::config::ScanSettings;
use crate::dns::auth::Auth;
use crate::model::{Report, exit_code};
use crate::state::LockedState;
pub use apply::{ActionOutcome, ActionResult};
pub use plan::{CleanOptions, Plan, PlanItem};

/// Everything `clean` needs beyond the scan settings.
pub struct CleanRequest {
    /// The safety rails.
    pub options: CleanOptions,
    /// Really delete; without it only the plan is made.
    pub apply: bool,
    /// How updates are authenticated.
    pub auth: Auth,
    /// The state file (locked for the whole run).
    pub state_path: PathBuf,
    /// How long to wait for another run's lock.
    pub lock_wait: Duration,
    /// The undo file deleted records are appended to, before each delete.
    pub undo_path: PathBuf,
    /// The JSON-lines audit log.
    pub audit_path: PathBuf,
    /// Send updates here instead of the zone's primary (SOA MNAME).
    pub primary: Option<SocketAddr>,
    /// Asked before anything is changed; returns false to abort. Not called without `apply`.
    pub confirm: Box<dyn FnOnce(&Plan) -> bool + Send>,
}

/// What `clean` did, for every renderer.
#[derive(Debug, Clone, Serialize)]
pub struct CleanReport {
    /// Whether deletes were sent (`--apply`, confirmed).
    pub applied: bool,
    /// How updates were authenticated, in words (never a secret).
    pub auth: String,
    /// What the plan deletes and keeps, and why.
    pub plan: Plan,
    /// What became of each delete.
    pub results: Vec<ActionResult>,
    /// The undo file, when anything was deleted.
    pub undo_file: Option<String>,
    /// The audit log, when anything was sent.
    pub audit_log: Option<String>,
    /// What people should know about the run.
    pub notes: Vec<String>,
    /// The process exit code (see `clean --help`).
    pub exit_code: i32,
    /// The scan the plan was made from.
    pub scan: Report,
    /// Deletes that went out without their audit-log line (the run stopped after the first).
    #[serde(skip)]
    pub unaudited: Vec<(PlanItem, String)>,
}

/// Why a cleanup stopped before deleting anything, or could not record what it did.
#[derive(Debug, thiserror::Error)]
pub enum CleanError {
    /// The state file could not be locked, read or saved.
    #[error("{0}")]
    State(#[from] crate::state::StateError),
    /// The plan was not confirmed.
    #[error("not confirmed: nothing was changed")]
    NotConfirmed,
    /// The audit log could not be opened.
    #[error("cannot open the audit log {}: {source}; nothing was changed", path.display())]
    AuditLog {
        /// The log.
        path: std::path::PathBuf,
        /// Why.
        #[source]
        source: crate::support::fsio::FileError,
    },
}

/// Runs a cleanup. Errors are conditions under which nothing was changed, except a state file
/// that could not be saved after the deletes (the error says so).
pub async fn run(
    settings: &ScanSettings,
    mut request: CleanRequest,
) -> Result<CleanReport, CleanError> {
    // Hold the state lock for the whole run: two cleanups must never interleave.
    let mut locked = LockedState::open_waiting(&request.state_path, request.lock_wait).await?;
    let mut clean = scan_and_plan(settings, &request, &mut locked).await?;
    let deletions = clean.plan.deletions().count();
    if !request.apply {
        if deletions > 0 {
            clean.notes.push(format!(
                "plan only: {deletions} record(s) would be deleted; add --apply to delete them"
            ));
        }
        clean.exit_code = plan_exit_code(&clean);
        return Ok(clean);
    }
    if deletions == 0 {
        clean.notes.push("nothing to delete".into());
        clean.exit_code = plan_exit_code(&clean);
        return Ok(clean);
    }
    // Asked once: the rest of the request stays borrowable.
    let confirm = std::mem::replace(&mut request.confirm, Box::new(|_| false));
    if !confirm(&clean.plan) {
        return Err(CleanError::NotConfirmed);
    }
    apply_plan(settings, &request, &mut clean).await?;
    remember_unaudited_deletes(&clean, &mut locked)?;
    if remember_unknown_outcomes(&clean, &mut locked)? {
        clean.notes.push(
            "the outcome of some deletes is unknown: the next scan with this state file reports whether they took effect"
                .into(),
        );
    }
    clean.exit_code = if !clean.unaudited.is_empty()
        || clean
            .results
            .iter()
            .any(|r| matches!(r.result, ActionOutcome::Failed | ActionOutcome::Unknown))
    {
        exit_code::CRITICAL
    } else {
        plan_exit_code(&clean)
    };
    Ok(clean)
}

/// Scans, folds the scan into the state (saved at once), and plans from both.
async fn scan_and_plan(
    settings: &ScanSettings,
    request: &CleanRequest,
    locked: &mut LockedState,
) -> Result<CleanReport, CleanError> {
    let mut report = crate::audit::scan::run(settings).await;
    let now = SystemTime::now();
    crate::state::drift::record_scan(locked, &mut report, now, false)?;
    let plan = plan::plan(&report, &locked.state, now, &request.options);
    let mut notes = Vec::new();
    if !report.complete {
        notes.push("some domains could not be scanned completely; their records are kept".into());
    }
    if !report.allowlist_configured {
        notes.push(
            "no allowlist: rogue KMS hosts count as healthy and are never planned for deletion"
                .into(),
        );
    }
    Ok(CleanReport {
        applied: false,
        auth: request.auth.describe(),
        plan,
        results: Vec::new(),
        undo_file: None,
        audit_log: None,
        notes,
        exit_code: exit_code::OK,
        scan: report,
        unaudited: Vec::new(),
    })
}

/// Sends the plan's deletes, with the audit log and undo file.
async fn apply_plan(
    settings: &ScanSettings,
    request: &CleanRequest,
    clean: &mut CleanReport,
) -> Result<(), CleanError> {
    let resolvers = if settings.resolvers.is_empty() {
        crate::dns::system::resolvers().unwrap_or_default()
    } else {
        settings.resolvers.clone()
    };
    let audit =
        trail::AuditLog::open(&request.audit_path).map_err(|source| CleanError::AuditLog {
            path: request.audit_path.clone(),
            source,
        })?;
    let mut applier = apply::Applier {
        settings,
        auth: &request.auth,
        resolvers,
        primary_override: request.primary,
        undo: trail::UndoFile::new(&request.undo_path),
        audit,
        unaudited: Vec::new(),
    };
    clean.results = applier.apply(&clean.scan, &clean.plan).await;
    clean.applied = true;
    if let Some((_, why)) = applier.unaudited.first() {
        clean.notes.push(format!(
            "the cleanup stopped: {why}; no further record was deleted (the undo file and the state file say where it stopped)"
        ));
    }
    clean.unaudited = std::mem::take(&mut applier.unaudited);
    if applier.undo.written() {
        clean.undo_file = Some(request.undo_path.display().to_string());
    }
    clean.audit_log = Some(request.audit_path.display().to_string());
    Ok(())
}

/// A delete that went out without its audit line is remembered: the next scan says so.
fn remember_unaudited_deletes(
    clean: &CleanReport,
    locked: &mut LockedState,
) -> Result<(), CleanError> {
    if clean.unaudited.is_empty() {
        return Ok(());
    }
    for (item, why) in &clean.unaudited {
        let key = crate::state::record_key(&item.domain, &item.record);
        if let Some(entry) = locked.state.records.get_mut(&key) {
            entry.delete_unaudited = Some(crate::state::UnauditedDelete {
                at: crate::support::time::Timestamp::now(),
                why: why.clone(),
            });
        }
    }
    locked.save()?;
    Ok(())
}

/// A delete whose outcome is unknown is remembered: the next scan says what became of it.
/// True when there was one.
fn remember_unknown_outcomes(
    clean: &CleanReport,
    locked: &mut LockedState,
) -> Result<bool, CleanError> {
    let mut unknown = false;
    for r in clean
        .results
        .iter()
        .filter(|r| r.result == ActionOutcome::Unknown)
    {
        unknown = true;
        let key = crate::state::record_key(&r.domain, &r.record);
        if let Some(entry) = locked.state.records.get_mut(&key) {
            entry.delete_unknown_since = Some(crate::support::time::Timestamp::now());
        }
    }
    if unknown {
        locked.save()?;
    }
    Ok(unknown)
}

/// 0 when nothing was held back, 1 when a safety rail (or a missing flag) kept a failing
/// record.
fn plan_exit_code(clean: &CleanReport) -> i32 {
    let held_back = clean.plan.refused.is_some()
        || clean.plan.items.iter().any(|i| !i.delete)
        || clean
            .results
            .iter()
            .any(|r| r.result == ActionOutcome::Skipped);
    if held_back {
        exit_code::WARNING
    } else {
        exit_code::OK
    }
}

/// The plan and results as tables.
pub fn render_table(clean: &CleanReport) -> String {
    let mut out = String::new();
    let deleting = clean.plan.deletions().count();
    out.push_str(&format!(
        "vlmcs-audit clean: {} candidate record(s), {deleting} to delete{}; authentication: {}\n",
        clean.plan.items.len(),
        if clean.applied { "" } else { " (plan only)" },
        clean.auth
    ));
    if let Some(why) = &clean.plan.refused {
        out.push_str(&format!("REFUSED: {why}\n"));
    }
    let mut table = Table::new();
    table
        .load_preset(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_width(160)
        .set_header(["domain", "record", "reason", "plan", "why"]);
    for item in &clean.plan.items {
        table.add_row(vec![
            crate::support::quote::terminal_safe(&item.domain),
            crate::support::quote::terminal_safe(&item.record.to_string()),
            item.reason.as_str().to_string(),
            if item.delete {
                "delete".into()
            } else {
                "keep".into()
            },
            crate::support::quote::terminal_safe(
                item.keep_because.as_deref().unwrap_or(&item.detail),
            ),
        ]);
    }
    out.push_str(&table.to_string());
    out.push('\n');
    if !clean.results.is_empty() {
        let mut table = Table::new();
        table
            .load_preset(UTF8_FULL_CONDENSED)
            .set_content_arrangement(ContentArrangement::Dynamic)
            .set_width(160)
            .set_header(["domain", "record", "result", "server", "message"]);
        for r in &clean.results {
            table.add_row(vec![
                crate::support::quote::terminal_safe(&r.domain),
                crate::support::quote::terminal_safe(&r.record.to_string()),
                r.result.to_string(),
                r.server.clone().unwrap_or_default(),
                crate::support::quote::terminal_safe(&r.message),
            ]);
        }
        out.push_str(&table.to_string());
        out.push('\n');
    }
    if let Some(undo) = &clean.undo_file {
        out.push_str(&format!("undo file: {undo} (vlmcs-audit restore {undo})\n"));
    }
    if let Some(log) = &clean.audit_log {
        out.push_str(&format!("audit log: {log}\n"));
    }
    for note in &clean.notes {
        out.push_str(&format!(
            "note: {}\n",
            crate::support::quote::terminal_safe(note)
        ));
    }
    out
}

/// Result of putting one undo entry back.
#[derive(Debug, Clone, Serialize)]
pub struct RestoreResult {
    /// The undo file's line.
    pub line: usize,
    /// The record's owner name.
    pub owner: String,
    /// The record.
    pub record: String,
    /// The server the addition went to.
    pub server: String,
    /// What became of it, in words.
    pub result: String,
}

/// How `restore` treats what it finds.
#[derive(Debug, Clone, Copy)]
pub struct RestoreOptions {
    /// Send every update here instead of the server named in the undo file.
    pub server: Option<SocketAddr>,
    /// Each update's and read-back's timeout.
    pub timeout: Duration,
    /// An entry whose TTL differs from the records already at its name is added with their TTL
    /// (DNS keeps one TTL per RRset: adding it with its own would move them all); without this
    /// such an entry is refused.
    pub keep_live_ttl: bool,
}

/// Entries in a row that the servers refuse or fail before `restore` stops: an undo file's
/// entries go to a zone's primary, a few per zone; this many failures in a row across them
/// means the servers (or the key's rights) are broken, and sending the rest (thousands, after a
/// large cleanup) would only load a server that already fails.
pub const RESTORE_MAX_FAILURES_IN_A_ROW: usize = 10;

/// Re-adds every record of an undo file, in order, each after reading the live RRset at its
/// name (a record already there is left alone, a TTL that would change the RRset's is refused
/// or, with `keep_live_ttl`, replaced by the live one). Stops at the first authentication or
/// transport failure (the rest would fail the same way) and after
/// [`RESTORE_MAX_FAILURES_IN_A_ROW`] failures in a row.
pub async fn restore(
    entries: &[trail::UndoEntry],
    auth: &Auth,
    options: RestoreOptions,
    audit: Option<&mut trail::AuditLog>,
) -> (Vec<RestoreResult>, i32) {
    let mut results = Vec::new();
    let mut code = exit_code::OK;
    let mut audit = audit;
    let mut failures_in_a_row = 0;
    for (index, entry) in entries.iter().enumerate() {
        if failures_in_a_row >= RESTORE_MAX_FAILURES_IN_A_ROW {
            for rest in &entries[index..] {
                results.push(RestoreResult {
                    line: rest.line,
                    owner: crate::dns::presentation(&rest.owner),
                    record: rest.record.to_string(),
                    server: options.server.unwrap_or(rest.server).to_string(),
                    result: format!(
                        "not attempted: {RESTORE_MAX_FAILURES_IN_A_ROW} entries in a row failed; fix the server and run restore again (records already back are left alone)"
                    ),
                });
            }
            break;
        }
        let server = options.server.unwrap_or(entry.server);
        let outcome = restore_one(entry, server, auth, options).await;
        let (result, logged, failed, stop) = judge_restore(&outcome, entry);
        let record = match &outcome {
            Ok(RestoreStep::Added(record)) => record.clone(),
            _ => entry.record.clone(),
        };
        let owner = crate::dns::presentation(&entry.owner);
        if let Some(log) = audit.as_deref_mut() {
            let _ = log.write(&trail::AuditEntry {
                time: crate::support::time::rfc3339(SystemTime::now()),
                action: "add",
                server: server.to_string(),
                zone: &crate::dns::presentation(&entry.zone),
                owner: &owner,
                record: record.to_string(),
                ttl: record.ttl,
                auth: auth.describe(),
                result: logged,
            });
        }
        results.push(RestoreResult {
            line: entry.line,
            owner,
            record: record.to_string(),
            server: server.to_string(),
            result,
        });
        if failed {
            code = exit_code::CRITICAL;
            failures_in_a_row += 1;
        } else {
            failures_in_a_row = 0;
        }
        if stop {
            break;
        }
    }
    (results, code)
}

/// What one entry's outcome says: the result shown, the audit log's result, whether it failed,
/// and whether the run stops (the rest would fail the same way, or its outcome is unknown).
fn judge_restore(
    outcome: &Result<RestoreStep, RestoreError>,
    entry: &trail::UndoEntry,
) -> (String, String, bool, bool) {
    match outcome {
        Ok(RestoreStep::Added(record)) => (
            if record.ttl == entry.record.ttl {
                "restored".to_string()
            } else {
                format!(
                    "restored with the live TTL {} (the undo file said {})",
                    record.ttl, entry.record.ttl
                )
            },
            "ok".to_string(),
            false,
            false,
        ),
        Ok(RestoreStep::AlreadyThere) => (
            "already there: nothing sent".to_string(),
            "skipped: already there".to_string(),
            false,
            false,
        ),
        Err(RestoreError::Refused(why)) => (
            format!("refused: {why}"),
            format!("refused: {why}"),
            true,
            false,
        ),
        Err(RestoreError::Update(e)) if e.outcome_unknown() => {
            let text = format!("unknown: {e}");
            (text.clone(), text, true, true)
        }
        Err(RestoreError::Update(e)) => {
            let text = format!("failed: {e}");
            (
                text.clone(),
                text,
                true,
                e.scope() == crate::dns::update::Scope::Run,
            )
        }
    }
}

/// What restoring one entry did.
enum RestoreStep {
    /// Added, with this record (its TTL the live one when that was kept).
    Added(crate::model::SrvRecord),
    /// The record was already published: nothing sent.
    AlreadyThere,
}

enum RestoreError {
    /// Not sent: what is live does not allow it, or could not be read.
    Refused(String),
    Update(crate::dns::update::UpdateError),
}

/// Reads the RRset at the entry's name from `server`, decides, and sends the addition.
async fn restore_one(
    entry: &trail::UndoEntry,
    server: SocketAddr,
    auth: &Auth,
    options: RestoreOptions,
) -> Result<RestoreStep, RestoreError> {
    let live = crate::audit::discover::live_srv_rrset(server, &entry.owner, options.timeout)
        .await
        .map_err(|why| {
            RestoreError::Refused(format!(
                "cannot read the records at this name from {server} before adding ({why}); nothing was sent"
            ))
        })?;
    if live
        .iter()
        .any(|r| r.rdata_key() == entry.record.rdata_key())
    {
        return Ok(RestoreStep::AlreadyThere);
    }
    let mut record = entry.record.clone();
    if let Some(live_ttl) = live.first().map(|r| r.ttl)
        && live_ttl != record.ttl
    {
        if !options.keep_live_ttl {
            return Err(RestoreError::Refused(format!(
                "the records already at this name have TTL {live_ttl} and this entry {}: adding it would move them all to {} (DNS keeps one TTL per RRset); add --keep-live-ttl to add it with TTL {live_ttl}",
                record.ttl, record.ttl
            )));
        }
        record.ttl = live_ttl;
    }
    // GSS-TSIG needs the server's name: the SOA MNAME, as the server itself reports it.
    let server_name = if auth.kind() == crate::dns::auth::AuthKind::Gss {
        let asker = crate::audit::discover::Asker::new(1, options.timeout, 0);
        asker
            .zone_of(server, &entry.owner)
            .await
            .ok()
            .map(|(_, mname)| mname)
    } else {
        None
    };
    let destination = crate::dns::update::Destination {
        server,
        zone: entry.zone.clone(),
        server_name,
    };
    let change = crate::dns::update::Change::Add {
        record: record.clone(),
    };
    crate::dns::update::send(&destination, &entry.owner, &change, auth, options.timeout)
        .await
        .map_err(RestoreError::Update)?;
    Ok(RestoreStep::Added(record))
}
