//! The state file: what each record looked like across scans (first seen, last seen, last
//! healthy, failing since). One small JSON file, written atomically (temp file + rename) and
//! locked against concurrent runs. `clean --dead-for` reads it; [`drift`] compares a scan with
//! it. In comes a finished report; out go the report's drift findings and the saved file.

pub mod drift;

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use serde::{Deserialize, Serialize};

use crate::model::{FindingCode, Report, SrvRecord, normalize_name};
pub use crate::support::time::Timestamp;

/// The state file format this build writes. Version 1 is the first; a later format adds a
/// migration in [`State::from_json`].
pub(crate) const STATE_VERSION: u32 = 1;

/// The history of one record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordState {
    /// The record's domain.
    pub domain: String,
    /// The record.
    pub record: SrvRecord,
    pub(crate) first_seen: Timestamp,
    pub(crate) last_seen: Timestamp,
    pub(crate) last_healthy: Option<Timestamp>,
    /// Since when the record has been failing without interruption (dead, dangling, not KMS,
    /// invalid, unauthorized); `None` while healthy.
    pub failing_since: Option<Timestamp>,
    /// Since when the record has been missing from DNS, if it is.
    pub gone_since: Option<Timestamp>,
    /// The finding code of the last scan (`healthy`, `dead-host`, ...).
    pub last_status: FindingCode,
    /// How often the record went from healthy to failing or back (flapping).
    #[serde(default)]
    pub transitions: u32,
    /// The status before the last one changed, and when it changed.
    #[serde(default)]
    pub previous_status: Option<FindingCode>,
    #[serde(default)]
    pub(crate) changed_at: Option<Timestamp>,
    /// A delete of this record was sent and its outcome is unknown (the connection failed after
    /// the request went out): the next scan settles it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delete_unknown_since: Option<Timestamp>,
    /// This record's delete was sent, and its audit-log line could not be written (the run
    /// stopped there): the next scan says so, once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delete_unaudited: Option<UnauditedDelete>,
    /// `scan --ad`: the computer account whose host the record names (the machine that
    /// registered it), as AD last said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registered_by: Option<String>,
}

/// A delete that went out without its audit-log line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnauditedDelete {
    /// When it was sent.
    pub at: Timestamp,
    /// Why the line could not be written, and what the delete's outcome was.
    pub why: String,
}

/// The whole state file: every record seen, by key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct State {
    /// The file's format version.
    pub version: u32,
    /// When the last scan was folded in.
    #[serde(default)]
    pub last_scan: Option<Timestamp>,
    /// Every record seen, by its key (domain and record data).
    pub records: BTreeMap<String, RecordState>,
}

impl Default for State {
    fn default() -> Self {
        Self {
            version: STATE_VERSION,
            last_scan: None,
            records: BTreeMap::new(),
        }
    }
}

impl State {
    /// Reads a state file's text: the version first (a newer format is refused, never
    /// misread), then every field typed, then every record's key checked against its content.
    /// Errors name the field.
    pub(crate) fn from_json(text: &[u8]) -> Result<Self, String> {
        #[derive(Deserialize)]
        struct Version {
            version: Option<serde_json::Value>,
        }
        let header: Version = serde_json::from_slice(text).map_err(|e| e.to_string())?;
        match header.version.as_ref().and_then(serde_json::Value::as_u64) {
            Some(v) if v == u64::from(STATE_VERSION) => {}
            Some(v) if v > u64::from(STATE_VERSION) => {
                return Err(format!(
                    "version {v} was written by a newer vlmcs-audit (this one reads version {STATE_VERSION}); upgrade, or give another --state file"
                ));
            }
            _ => {
                return Err(format!(
                    "`version` is {}, not a state file version this vlmcs-audit knows ({STATE_VERSION})",
                    header
                        .version
                        .map_or_else(|| "missing".to_string(), |v| v.to_string())
                ));
            }
        }
        let mut de = serde_json::Deserializer::from_slice(text);
        let state: State = serde_path_to_error::deserialize(&mut de).map_err(|e| {
            let inner = e.inner();
            format!(
                "field `{}`: {} (line {}, column {})",
                e.path(),
                strip_position(&inner.to_string()),
                inner.line(),
                inner.column()
            )
        })?;
        for (key, entry) in &state.records {
            if *key != record_key(&entry.domain, &entry.record) {
                return Err(format!(
                    "field `records.{key}`: the key does not match its domain and record (edited by hand?)"
                ));
            }
        }
        Ok(state)
    }
}

/// serde_json appends " at line L column C"; the caller says where in its own words.
fn strip_position(message: &str) -> &str {
    message.find(" at line ").map_or(message, |i| &message[..i])
}

/// The key of a record in the state: domain and RDATA (TTL changes are the same record).
pub(crate) fn record_key(domain: &str, record: &SrvRecord) -> String {
    format!(
        "{} {} {} {} {}",
        normalize_name(domain),
        record.priority,
        record.weight,
        record.port,
        record.target.to_string().to_ascii_lowercase()
    )
}

/// The account AD names for `record`'s host, when the scan read the node from AD.
fn registrant(domain: &crate::model::DomainReport, record: &SrvRecord) -> Option<String> {
    domain
        .observation
        .ad
        .as_ref()?
        .record_for(record)?
        .host_account
        .as_ref()?
        .account
        .clone()
}

impl State {
    /// Folds a scan into the state. Domains that could not be scanned completely are left
    /// alone: an outage of the auditor must not look like records disappearing.
    pub fn observe(&mut self, report: &Report, now: SystemTime) {
        let now = Timestamp(now);
        for domain in report.domains.iter().filter(|d| d.summary.complete) {
            let name = &domain.observation.domain;
            let mut present = std::collections::BTreeSet::new();
            for record in &domain.observation.records {
                let key = record_key(name, record);
                // classify decided it; a report without verdicts (older) counts it as healthy,
                // which never makes a record a deletion candidate.
                let status = domain
                    .verdict(record)
                    .map_or(FindingCode::Healthy, |v| v.status);
                let entry = self
                    .records
                    .entry(key.clone())
                    .or_insert_with(|| RecordState {
                        domain: name.clone(),
                        record: record.clone(),
                        first_seen: now,
                        last_seen: now,
                        last_healthy: None,
                        failing_since: None,
                        gone_since: None,
                        last_status: status,
                        transitions: 0,
                        previous_status: None,
                        changed_at: None,
                        delete_unknown_since: None,
                        delete_unaudited: None,
                        registered_by: None,
                    });
                present.insert(key);
                if let Some(account) = registrant(domain, record) {
                    entry.registered_by = Some(account);
                }
                entry.record.ttl = record.ttl;
                entry.last_seen = now;
                entry.gone_since = None;
                if entry.last_status != status {
                    let was_healthy = entry.last_status == FindingCode::Healthy;
                    if was_healthy != (status == FindingCode::Healthy) {
                        entry.transitions += 1;
                    }
                    entry.previous_status = Some(entry.last_status);
                    entry.changed_at = Some(now);
                }
                entry.last_status = status;
                if status == FindingCode::Healthy {
                    entry.last_healthy = Some(now);
                    entry.failing_since = None;
                } else if entry.failing_since.is_none() {
                    entry.failing_since = Some(now);
                }
            }
            for (key, entry) in self.records.iter_mut() {
                if entry.domain == *name && !present.contains(key) && entry.gone_since.is_none() {
                    entry.gone_since = Some(now);
                }
            }
        }
    }

    /// Settles the deletes whose outcome was unknown (sent, no trustworthy reply), now that a
    /// complete scan shows whether each record is still published; one note per record.
    pub fn settle_unknown_deletes(&mut self, report: &Report) -> Vec<String> {
        let mut notes = Vec::new();
        for entry in self.records.values_mut() {
            if let Some(unaudited) = entry.delete_unaudited.take() {
                notes.push(format!(
                    "{}: the delete of {} at {} is not in the audit log ({}); the cleanup stopped there, and its undo file holds the record",
                    entry.domain, entry.record, unaudited.at, unaudited.why
                ));
            }
        }
        for domain in report.domains.iter().filter(|d| d.summary.complete) {
            let name = &domain.observation.domain;
            for entry in self.records.values_mut().filter(|e| e.domain == *name) {
                let Some(sent) = entry.delete_unknown_since.take() else {
                    continue;
                };
                let still_there = domain
                    .observation
                    .records
                    .iter()
                    .any(|r| r.rdata_key() == entry.record.rdata_key());
                notes.push(format!(
                    "{name}: the delete of {} sent at {sent} (outcome unknown then) {}",
                    entry.record,
                    if still_there {
                        "did not take effect: the record is still published"
                    } else {
                        "took effect: the record is gone"
                    }
                ));
            }
        }
        notes
    }

    /// Marks the time of the scan just folded in.
    pub fn finish_scan(&mut self, now: SystemTime) {
        self.last_scan = Some(Timestamp(now));
    }

    /// How long the record has been failing, as of `now`.
    pub(crate) fn failing_for(
        &self,
        domain: &str,
        record: &SrvRecord,
        now: SystemTime,
    ) -> Option<Duration> {
        let since = self
            .records
            .get(&record_key(domain, record))?
            .failing_since?;
        now.duration_since(since.0).ok()
    }
}

/// Why the state file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// The file is not one the tool keeps (a link, a device, another owner's).
    #[error(transparent)]
    File(#[from] crate::support::fsio::FileError),
    /// The file or its lock could not be read or written.
    #[error("state file {path}: {message}")]
    Io {
        /// The state file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// The file is not a state file this version reads.
    #[error("state file {path} is not valid: {message}; move it aside to start over")]
    Corrupt {
        /// The state file.
        path: PathBuf,
        /// What is wrong, and where.
        message: String,
    },
    /// Another run holds the lock.
    #[error(
        "another vlmcs-audit run holds the lock on {path} ({holder}); waited {waited:?}. Try again when it has finished"
    )]
    Locked {
        /// The state file.
        path: PathBuf,
        /// Who holds it, as the lock file says.
        holder: String,
        /// How long was waited.
        waited: Duration,
    },
}

/// How long a run waits for another run that holds the state file's lock (`clean
/// --lock-wait` changes it): a scheduled scan outlasts a cleanup in progress rather than fail.
pub const DEFAULT_LOCK_WAIT: Duration = Duration::from_secs(30);

/// An exclusive hold on a state file for the length of a run. Released when dropped.
pub struct LockedState {
    path: PathBuf,
    _lock: File,
    /// The state as read; [`LockedState::save`] writes it back.
    pub state: State,
}

impl LockedState {
    /// [`Self::open`] on a blocking thread: waiting for the lock must not hold a worker of
    /// the async runtime (the scan's own tasks run there).
    pub async fn open_waiting(path: &Path, wait: Duration) -> Result<Self, StateError> {
        let owned = path.to_path_buf();
        tokio::task::spawn_blocking(move || Self::open(&owned, wait))
            .await
            .unwrap_or_else(|e| {
                Err(StateError::Io {
                    path: path.to_path_buf(),
                    message: format!("waiting for the lock failed: {e}"),
                })
            })
    }

    /// Locks `path` (via `path.lock`), waiting up to `wait`, then reads it (empty if absent).
    pub fn open(path: &Path, wait: Duration) -> Result<Self, StateError> {
        let io = |message: String| StateError::Io {
            path: path.to_path_buf(),
            message,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
            && !dir.exists()
        {
            crate::support::fsio::create_private_dir(dir)
                .map_err(|e| io(format!("creating {}: {e}", dir.display())))?;
        }
        // Refuse a link or a device before taking the lock, and again when reading.
        crate::support::fsio::own_file_metadata(path, crate::support::fsio::STATE)?;
        let lock_path = lock_path(path);
        let opened =
            crate::support::fsio::open_own(&lock_path, crate::support::fsio::OwnOpen::ReadWrite);
        let mut lock =
            opened.map_err(|e| io(format!("opening lock file {}: {e}", lock_path.display())))?;
        if !lock.metadata().is_ok_and(|m| m.is_file()) {
            return Err(io(format!(
                "lock file {} is not a regular file",
                lock_path.display()
            )));
        }
        let started = Instant::now();
        loop {
            match lock.try_lock() {
                Ok(()) => break,
                Err(std::fs::TryLockError::WouldBlock) if started.elapsed() < wait => {
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(std::fs::TryLockError::WouldBlock) => {
                    let mut holder = String::new();
                    let _ = std::io::Read::take(&lock, 64).read_to_string(&mut holder);
                    return Err(StateError::Locked {
                        path: path.to_path_buf(),
                        holder: if holder.trim().is_empty() {
                            "unknown process".into()
                        } else {
                            holder.trim().to_string()
                        },
                        waited: wait,
                    });
                }
                Err(std::fs::TryLockError::Error(e)) => return Err(io(format!("locking: {e}"))),
            }
        }
        let _ = lock.set_len(0);
        let _ = write!(lock, "pid {}", std::process::id());
        let state =
            match crate::support::fsio::own_file_metadata(path, crate::support::fsio::STATE)? {
                None => State::default(),
                Some(_) => {
                    let bytes = crate::support::fsio::read(path, crate::support::fsio::STATE)?;
                    State::from_json(&bytes).map_err(|message| StateError::Corrupt {
                        path: path.to_path_buf(),
                        message,
                    })?
                }
            };
        Ok(Self {
            path: path.to_path_buf(),
            _lock: lock,
            state,
        })
    }

    /// Writes the state atomically: a temp file in the same directory, fsync, rename.
    pub fn save(&self) -> Result<(), StateError> {
        crate::support::fsio::write_private(&self.path, crate::support::fsio::STATE, |out| {
            serde_json::to_writer_pretty(&mut *out, &self.state).map_err(std::io::Error::other)?;
            out.write_all(b"\n")
        })?;
        Ok(())
    }
}

/// The lock file beside a state file (`state.json.lock`).
pub fn lock_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".lock");
    path.with_file_name(name)
}

/// Where the state lives by default: /var/lib for root, the XDG state directory otherwise; on
/// Windows `%ProgramData%\vlmcs-audit`, where a scheduled task's account and an administrator
/// find the same file (the files the tool makes there are private to their owner, SYSTEM and
/// Administrators).
pub fn default_path() -> PathBuf {
    if cfg!(windows)
        && let Some(data) = std::env::var_os("ProgramData")
    {
        return PathBuf::from(data).join("vlmcs-audit").join("state.json");
    }
    if is_root() {
        return PathBuf::from("/var/lib/vlmcs-audit/state.json");
    }
    let base = std::env::var_os("XDG_STATE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))
        .or_else(|| std::env::var_os("LOCALAPPDATA").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("."));
    base.join("vlmcs-audit").join("state.json")
}

#[cfg(unix)]
fn is_root() -> bool {
    crate::support::fsio::current_uid() == 0
}

#[cfg(not(unix))]
fn is_root() -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("vlmcs-state-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir.join("state.json")
    }

    #[test]
    fn second_holder_waits_then_fails_clearly() {
        let path = temp("lock");
        let first = LockedState::open(&path, Duration::from_secs(1)).unwrap();
        let err = LockedState::open(&path, Duration::from_millis(300))
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("holds the lock") && err.contains(&format!("pid {}", std::process::id())),
            "{err}"
        );
        drop(first);
        LockedState::open(&path, Duration::from_millis(300)).unwrap();
    }

    #[test]
    fn save_is_atomic_and_round_trips() {
        let path = temp("save");
        let mut locked = LockedState::open(&path, Duration::from_secs(1)).unwrap();
        let record = SrvRecord {
            priority: 0,
            weight: 0,
            port: 1688,
            target: "kms1.corp.example.com.".into(),
            ttl: 3600,
        };
        locked.state.records.insert(
            record_key("corp.example.com", &record),
            RecordState {
                domain: "corp.example.com".into(),
                record: SrvRecord {
                    priority: 0,
                    weight: 0,
                    port: 1688,
                    target: "kms1.corp.example.com.".into(),
                    ttl: 3600,
                },
                first_seen: at("2026-11-28T10:00:00Z"),
                last_seen: at("2026-11-28T10:00:00Z"),
                last_healthy: None,
                failing_since: Some(at("2026-11-28T10:00:00Z")),
                gone_since: None,
                last_status: FindingCode::DeadHost,
                transitions: 0,
                previous_status: None,
                changed_at: None,
                delete_unknown_since: None,
                delete_unaudited: None,
                registered_by: None,
            },
        );
        locked.save().unwrap();
        let leftovers: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.contains(".tmp."))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
        drop(locked);
        let again = LockedState::open(&path, Duration::from_secs(1)).unwrap();
        assert_eq!(again.state.records.len(), 1);
        let since =
            again
                .state
                .failing_for("corp.example.com", &record, at("2026-11-28T11:00:00Z").0);
        assert_eq!(since, Some(Duration::from_secs(3600)));
    }

    fn at(text: &str) -> Timestamp {
        Timestamp::parse(text).unwrap()
    }

    const VALID: &str = r#"{
  "version": 1,
  "last_scan": "2026-11-28T10:00:00Z",
  "records": {
    "corp.example.com 0 0 1688 kms1.corp.example.com.": {
      "domain": "corp.example.com",
      "record": { "priority": 0, "weight": 0, "port": 1688, "target": "kms1.corp.example.com.", "ttl": 3600 },
      "first_seen": "2026-11-28T10:00:00Z",
      "last_seen": "2026-11-28T10:00:00Z",
      "last_healthy": null,
      "failing_since": "2026-11-28T10:00:00Z",
      "gone_since": null,
      "last_status": "dead-host"
    }
  }
}"#;

    #[test]
    fn state_files_are_validated_on_load_field_by_field() {
        let state = State::from_json(VALID.as_bytes()).unwrap();
        assert_eq!(state.records.len(), 1);
        let bad = |from: &str, to: &str| {
            assert!(VALID.contains(from), "{from}");
            State::from_json(VALID.replacen(from, to, 1).as_bytes()).unwrap_err()
        };
        let err = bad("\"version\": 1", "\"version\": 99");
        assert!(err.contains("version 99") && err.contains("newer"), "{err}");
        let err = bad("\"version\": 1", "\"version\": \"one\"");
        assert!(err.contains("`version`"), "{err}");
        let err = bad(
            "\"failing_since\": \"2026-11-28T10:00:00Z\"",
            "\"failing_since\": \"last tuesday\"",
        );
        assert!(
            err.contains("failing_since") && err.contains("RFC 3339") && err.contains("line 11"),
            "{err}"
        );
        let err = bad(
            "\"last_status\": \"dead-host\"",
            "\"last_status\": \"fine\"",
        );
        assert!(err.contains("last_status"), "{err}");
        let err = bad("\"port\": 1688", "\"port\": 1689");
        assert!(err.contains("does not match"), "{err}");
        let err = bad(
            "\"gone_since\": null",
            "\"gone_since\": null, \"gone_sinse\": null",
        );
        assert!(err.contains("unknown field"), "{err}");
    }

    #[cfg(unix)]
    #[test]
    fn a_linked_or_special_state_file_is_refused_and_left_alone() {
        let path = temp("link");
        let real = path.with_file_name("elsewhere.json");
        std::fs::write(&real, VALID).unwrap();
        std::os::unix::fs::symlink(&real, &path).unwrap();
        let err = LockedState::open(&path, Duration::from_secs(1))
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("symbolic link"), "{err}");
        assert_eq!(std::fs::read_to_string(&real).unwrap(), VALID);
        let fifo = temp("fifo");
        assert!(
            std::process::Command::new("mkfifo")
                .arg(&fifo)
                .status()
                .unwrap()
                .success()
        );
        let err = LockedState::open(&fifo, Duration::from_secs(1))
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("FIFO"), "{err}");
    }

    #[cfg(unix)]
    #[test]
    fn a_new_state_file_is_private_and_an_existing_one_keeps_its_mode() {
        use std::os::unix::fs::PermissionsExt;
        let path = temp("mode");
        let locked = LockedState::open(&path, Duration::from_secs(1)).unwrap();
        locked.save().unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        locked.save().unwrap();
        assert_eq!(mode(&path), 0o640);
    }

    #[test]
    fn corrupt_state_is_reported_not_overwritten() {
        let path = temp("corrupt");
        std::fs::write(&path, "{ not json").unwrap();
        let err = LockedState::open(&path, Duration::from_secs(1))
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("not valid") && err.contains("move it aside"),
            "{err}"
        );
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "{ not json");
    }
}
