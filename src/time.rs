//! Points in time as the tool writes them: RFC 3339, UTC, whole seconds.

use std::time::SystemTime;

use serde::{Deserialize, Serialize};

/// A point in time, written as RFC 3339 (UTC, seconds) in the state file and reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Timestamp(pub SystemTime);

impl Timestamp {
    pub fn now() -> Self {
        Self(SystemTime::now())
    }

    /// Seconds since the Unix epoch (0 for a time before it).
    pub fn unix_seconds(self) -> u64 {
        self.0
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    }

    pub(crate) fn parse(text: &str) -> Result<Self, String> {
        humantime::parse_rfc3339_weak(text)
            .map(Self)
            .map_err(|_| format!("`{text}` is not an RFC 3339 time such as 2026-11-28T10:15:00Z"))
    }
}

impl std::fmt::Display for Timestamp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&rfc3339(self.0))
    }
}

impl Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&rfc3339(self.0))
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// `2026-11-29T06:55:13Z`.
pub(crate) fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}
