//! The state file: what each record looked like across scans (first seen, last seen, last
//! healthy, failing since). One small JSON file, written atomically (temp file + rename) and
//! locked against concurrent runs. `clean --dead-for` reads it; drift reports will too.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use serde::{Deserialize, Serialize};

use crate::model::{FindingCode, Report, SrvRecord, normalize_name};

pub const STATE_VERSION: u32 = 1;

/// The history of one record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordState {
    pub domain: String,
    pub record: SrvRecord,
    /// RFC 3339 times.
    pub first_seen: String,
    pub last_seen: String,
    pub last_healthy: Option<String>,
    /// Since when the record has been failing without interruption (dead, dangling, not KMS,
    /// invalid, unauthorized); `None` while healthy.
    pub failing_since: Option<String>,
    /// Since when the record has been missing from DNS, if it is.
    pub gone_since: Option<String>,
    /// The finding code of the last scan (`healthy`, `dead-host`, ...).
    pub last_status: String,
    /// How often the record went from healthy to failing or back (flapping).
    #[serde(default)]
    pub transitions: u32,
    /// The status before the last one changed, and when it changed.
    #[serde(default)]
    pub previous_status: Option<String>,
    #[serde(default)]
    pub changed_at: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    pub version: u32,
    /// When the last scan was folded in.
    #[serde(default)]
    pub last_scan: Option<String>,
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

/// The key of a record in the state: domain and RDATA (TTL changes are the same record).
pub fn record_key(domain: &str, record: &SrvRecord) -> String {
    format!(
        "{} {} {} {} {}",
        normalize_name(domain),
        record.priority,
        record.weight,
        record.port,
        record.target.to_ascii_lowercase()
    )
}

pub fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

pub fn parse_time(text: &str) -> Option<SystemTime> {
    humantime::parse_rfc3339_weak(text).ok()
}

/// The worst-news finding code for each record of a domain, as the state remembers it.
pub fn record_status(report: &Report, domain: &str, record: &SrvRecord) -> FindingCode {
    let target = normalize_name(&record.target);
    let codes: Vec<FindingCode> = report
        .findings
        .iter()
        .filter(|f| f.domain == domain)
        .filter(|f| f.target.as_deref().map(normalize_name) == Some(target.clone()))
        .filter(|f| f.port.is_none() || f.port == Some(record.port))
        .map(|f| f.code)
        .collect();
    // A record works if any address works; otherwise the most specific failure names it.
    for code in [
        FindingCode::Healthy,
        FindingCode::UnauthorizedHost,
        FindingCode::NotKms,
        FindingCode::DeadHost,
        FindingCode::NoAddress,
        FindingCode::InvalidTarget,
    ] {
        if codes.contains(&code) {
            return code;
        }
    }
    FindingCode::Healthy
}

impl State {
    /// Folds a scan into the state. Domains that could not be scanned completely are left
    /// alone: an outage of the auditor must not look like records disappearing.
    pub fn observe(&mut self, report: &Report, now: SystemTime) {
        let now_text = rfc3339(now);
        for domain in report.domains.iter().filter(|d| d.summary.complete) {
            let name = &domain.observation.domain;
            let mut present = Vec::new();
            for record in &domain.observation.records {
                let key = record_key(name, record);
                present.push(key.clone());
                let status = record_status(report, name, record);
                let entry = self.records.entry(key).or_insert_with(|| RecordState {
                    domain: name.clone(),
                    record: record.clone(),
                    first_seen: now_text.clone(),
                    last_seen: now_text.clone(),
                    last_healthy: None,
                    failing_since: None,
                    gone_since: None,
                    last_status: status.as_str().into(),
                    transitions: 0,
                    previous_status: None,
                    changed_at: None,
                });
                entry.record.ttl = record.ttl;
                entry.last_seen = now_text.clone();
                entry.gone_since = None;
                if entry.last_status != status.as_str() {
                    let was_healthy = entry.last_status == FindingCode::Healthy.as_str();
                    if was_healthy != (status == FindingCode::Healthy) {
                        entry.transitions += 1;
                    }
                    entry.previous_status = Some(std::mem::take(&mut entry.last_status));
                    entry.changed_at = Some(now_text.clone());
                }
                entry.last_status = status.as_str().into();
                if status == FindingCode::Healthy {
                    entry.last_healthy = Some(now_text.clone());
                    entry.failing_since = None;
                } else if entry.failing_since.is_none() {
                    entry.failing_since = Some(now_text.clone());
                }
            }
            for (key, entry) in self.records.iter_mut() {
                if entry.domain == *name && !present.contains(key) && entry.gone_since.is_none() {
                    entry.gone_since = Some(now_text.clone());
                }
            }
        }
    }

    /// Marks the time of the scan just folded in.
    pub fn finish_scan(&mut self, now: SystemTime) {
        self.last_scan = Some(rfc3339(now));
    }

    /// How long the record has been failing, as of `now`.
    pub fn failing_for(
        &self,
        domain: &str,
        record: &SrvRecord,
        now: SystemTime,
    ) -> Option<Duration> {
        let since = self
            .records
            .get(&record_key(domain, record))?
            .failing_since
            .as_deref()?;
        now.duration_since(parse_time(since)?).ok()
    }
}

/// Why the state file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("state file {path}: {message}")]
    Io { path: PathBuf, message: String },
    #[error("state file {path} is not valid ({message}); move it aside to start over")]
    Corrupt { path: PathBuf, message: String },
    #[error(
        "another vlmcs-audit run holds the lock on {path} ({holder}); waited {waited:?}. Try again when it has finished"
    )]
    Locked {
        path: PathBuf,
        holder: String,
        waited: Duration,
    },
}

/// An exclusive hold on a state file for the length of a run. Released when dropped.
pub struct LockedState {
    path: PathBuf,
    _lock: File,
    pub state: State,
}

impl LockedState {
    /// Locks `path` (via `path.lock`), waiting up to `wait`, then reads it (empty if absent).
    pub fn open(path: &Path, wait: Duration) -> Result<Self, StateError> {
        let io = |message: String| StateError::Io {
            path: path.to_path_buf(),
            message,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| io(format!("creating {}: {e}", dir.display())))?;
        }
        let lock_path = lock_path(path);
        let mut lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&lock_path)
            .map_err(|e| io(format!("opening lock file {}: {e}", lock_path.display())))?;
        let started = Instant::now();
        loop {
            match lock.try_lock() {
                Ok(()) => break,
                Err(std::fs::TryLockError::WouldBlock) if started.elapsed() < wait => {
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(std::fs::TryLockError::WouldBlock) => {
                    let holder = std::fs::read_to_string(&lock_path).unwrap_or_default();
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
        let state = match std::fs::read_to_string(path) {
            Ok(text) => serde_json::from_str(&text).map_err(|e| StateError::Corrupt {
                path: path.to_path_buf(),
                message: e.to_string(),
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => State::default(),
            Err(e) => return Err(io(e.to_string())),
        };
        Ok(Self {
            path: path.to_path_buf(),
            _lock: lock,
            state,
        })
    }

    /// Writes the state atomically: a temp file in the same directory, fsync, rename.
    pub fn save(&self) -> Result<(), StateError> {
        let io = |message: String| StateError::Io {
            path: self.path.clone(),
            message,
        };
        let text = serde_json::to_string_pretty(&self.state).map_err(|e| io(e.to_string()))?;
        let tmp = self
            .path
            .with_extension(format!("tmp.{}", std::process::id()));
        {
            let mut file =
                File::create(&tmp).map_err(|e| io(format!("writing {}: {e}", tmp.display())))?;
            file.write_all(text.as_bytes())
                .map_err(|e| io(e.to_string()))?;
            file.sync_all().map_err(|e| io(e.to_string()))?;
        }
        std::fs::rename(&tmp, &self.path).map_err(|e| io(format!("renaming into place: {e}")))?;
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty())
            && let Ok(d) = File::open(dir)
        {
            let _ = d.sync_all();
        }
        Ok(())
    }
}

fn lock_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".lock");
    path.with_file_name(name)
}

/// Where the state lives by default: /var/lib for root, the XDG state directory otherwise.
pub fn default_path() -> PathBuf {
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

#[cfg(target_os = "linux")]
fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

#[cfg(not(target_os = "linux"))]
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
        locked.state.records.insert(
            "k".into(),
            RecordState {
                domain: "corp.example.com".into(),
                record: SrvRecord {
                    priority: 0,
                    weight: 0,
                    port: 1688,
                    target: "kms1.corp.example.com.".into(),
                    ttl: 3600,
                },
                first_seen: "2026-11-28T10:00:00Z".into(),
                last_seen: "2026-11-28T10:00:00Z".into(),
                last_healthy: None,
                failing_since: Some("2026-11-28T10:00:00Z".into()),
                gone_since: None,
                last_status: "dead-host".into(),
                transitions: 0,
                previous_status: None,
                changed_at: None,
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
        let record = &again.state.records["k"].record;
        let since = again.state.failing_for(
            "corp.example.com",
            record,
            parse_time("2026-11-28T11:00:00Z").unwrap(),
        );
        assert_eq!(
            since, None,
            "the key is not the record key, so nothing is found"
        );
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
