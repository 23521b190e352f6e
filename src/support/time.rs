//! Points in time as the tool writes them: RFC 3339, UTC, whole seconds.

use crate::support::value::{ValueError, shown};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

/// A point in time, written as RFC 3339 (UTC, seconds) in the state file and reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Timestamp(pub SystemTime);

impl Timestamp {
    /// This moment.
    pub fn now() -> Self {
        Self(SystemTime::now())
    }

    /// Seconds since the Unix epoch (0 for a time before it).
    pub fn unix_seconds(self) -> u64 {
        self.0
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    }

    pub(crate) fn parse(text: &str) -> Result<Self, ValueError> {
        humantime::parse_rfc3339_weak(text)
            .map(Self)
            .map_err(|_| ValueError::NotATime { text: shown(text) })
    }
}

impl std::fmt::Display for Timestamp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&rfc3339(self.0))
    }
}

impl TryFrom<String> for Timestamp {
    type Error = ValueError;

    fn try_from(text: String) -> Result<Self, ValueError> {
        Self::parse(&text)
    }
}

impl From<Timestamp> for String {
    fn from(time: Timestamp) -> Self {
        rfc3339(time.0)
    }
}

/// `2026-11-29T06:55:13Z`.
pub(crate) fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

/// Milliseconds with one decimal, as reports show durations.
pub(crate) fn millis(d: std::time::Duration) -> f64 {
    (d.as_secs_f64() * 10_000.0).round() / 10.0
}
