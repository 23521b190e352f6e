//! The trail a cleanup leaves: an undo file in `nsupdate` syntax (so that `nsupdate -k` or
//! `vlmcs-audit restore` puts every deleted record back) and a JSON-lines audit log. Both are
//! appended and flushed to disk *before* the change they describe is sent.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::model::SrvRecord;

/// An undo file, created on the first record it is given.
pub struct UndoFile {
    path: PathBuf,
    file: Option<File>,
}

impl UndoFile {
    pub fn new(path: &Path) -> Self {
        Self {
            path: path.to_path_buf(),
            file: None,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn written(&self) -> bool {
        self.file.is_some()
    }

    /// Appends the commands that re-add `record` at `owner`, and syncs them to disk.
    pub fn append(
        &mut self,
        server: SocketAddr,
        zone: &str,
        owner: &str,
        record: &SrvRecord,
    ) -> std::io::Result<()> {
        if self.file.is_none() {
            let mut file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.path)?;
            writeln!(
                file,
                "; vlmcs-audit undo file, {}\n; Puts back what `vlmcs-audit clean` deleted: `vlmcs-audit restore {}` or `nsupdate -k KEYFILE {}`",
                crate::state::rfc3339(std::time::SystemTime::now()),
                self.path.display(),
                self.path.display()
            )?;
            self.file = Some(file);
        }
        let file = self.file.as_mut().expect("opened above");
        write!(file, "{}", undo_block(server, zone, owner, record))?;
        file.sync_all()
    }
}

impl UndoFile {
    /// Appends a comment line (for what happened to the block above it).
    pub fn note(&mut self, text: &str) -> std::io::Result<()> {
        let Some(file) = self.file.as_mut() else {
            return Ok(());
        };
        let line: String = text
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        writeln!(file, "; {line}")?;
        file.sync_all()
    }
}

/// `server`, `zone`, `update add`, `send`: one self-contained nsupdate block per record.
pub fn undo_block(server: SocketAddr, zone: &str, owner: &str, record: &SrvRecord) -> String {
    format!(
        "server {} {}\nzone {zone}\nupdate add {owner} {} IN SRV {} {} {} {}\nsend\n",
        server.ip(),
        server.port(),
        record.ttl,
        record.priority,
        record.weight,
        record.port,
        record.target
    )
}

/// One `update add` read back from an undo file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UndoEntry {
    pub server: SocketAddr,
    pub zone: String,
    pub owner: String,
    pub record: SrvRecord,
    pub line: usize,
}

/// Parses an undo file (the subset of nsupdate syntax that `UndoFile` writes).
pub fn parse_undo(text: &str, origin: &str) -> Result<Vec<UndoEntry>, String> {
    let mut server: Option<SocketAddr> = None;
    let mut zone: Option<String> = None;
    let mut entries = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let line_no = index + 1;
        let line = raw.trim();
        let err = |what: &str| format!("{origin}:{line_no}: {what}: `{line}`");
        if line.is_empty() || line.starts_with(';') {
            continue;
        }
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["server", ip, port] => {
                let ip = ip.parse().map_err(|_| err("bad server address"))?;
                let port = port.parse().map_err(|_| err("bad server port"))?;
                server = Some(SocketAddr::new(ip, port));
            }
            ["server", ip] => {
                server = Some(SocketAddr::new(
                    ip.parse().map_err(|_| err("bad server address"))?,
                    53,
                ));
            }
            ["zone", z] => zone = Some((*z).to_string()),
            ["send"] => {}
            ["update", "add", owner, ttl, rest @ ..] => {
                let rest: Vec<&str> = rest
                    .iter()
                    .copied()
                    .filter(|w| !w.eq_ignore_ascii_case("IN"))
                    .collect();
                if rest
                    .first()
                    .is_some_and(|kind| !kind.eq_ignore_ascii_case("SRV"))
                {
                    return Err(err("only SRV records are restored"));
                }
                let [_, priority, weight, port, target] = rest.as_slice() else {
                    return Err(err(
                        "expected `update add OWNER TTL IN SRV PRIORITY WEIGHT PORT TARGET`",
                    ));
                };
                let number = |w: &str| w.parse::<u16>().map_err(|_| err("bad number"));
                entries.push(UndoEntry {
                    server: server.ok_or_else(|| err("`update add` before any `server` line"))?,
                    zone: zone
                        .clone()
                        .ok_or_else(|| err("`update add` before any `zone` line"))?,
                    owner: (*owner).to_string(),
                    record: SrvRecord {
                        priority: number(priority)?,
                        weight: number(weight)?,
                        port: number(port)?,
                        target: (*target).to_string(),
                        ttl: ttl.parse().map_err(|_| err("bad TTL"))?,
                    },
                    line: line_no,
                });
            }
            _ => return Err(err("not a line an undo file contains")),
        }
    }
    if entries.is_empty() {
        return Err(format!(
            "{origin}: no `update add` line: nothing to restore"
        ));
    }
    Ok(entries)
}

/// One line of the audit log.
#[derive(Debug, Serialize)]
pub struct AuditEntry<'a> {
    pub time: String,
    pub action: &'a str,
    pub server: String,
    pub zone: &'a str,
    pub owner: &'a str,
    pub record: String,
    pub ttl: u32,
    pub auth: String,
    /// `ok`, `skipped` or the error.
    pub result: String,
}

/// The JSON-lines audit log, appended and synced line by line.
pub struct AuditLog {
    file: File,
}

impl AuditLog {
    pub fn open(path: &Path) -> std::io::Result<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        Ok(Self {
            file: OpenOptions::new().create(true).append(true).open(path)?,
        })
    }

    pub fn write(&mut self, entry: &AuditEntry<'_>) -> std::io::Result<()> {
        let line = serde_json::to_string(entry).map_err(std::io::Error::other)?;
        writeln!(self.file, "{line}")?;
        self.file.sync_data()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn undo_blocks_parse_back_to_the_same_records() {
        let record = SrvRecord {
            priority: 10,
            weight: 5,
            port: 1688,
            target: "evil\\027\\$\\(x\\).corp.example.com.".into(),
            ttl: 1200,
        };
        let server: SocketAddr = "192.0.2.53:5353".parse().unwrap();
        let text = format!(
            "; comment\n{}{}",
            undo_block(
                server,
                "corp.example.com.",
                "_vlmcs._tcp.corp.example.com.",
                &record
            ),
            undo_block(
                "[2001:db8::53]:53".parse().unwrap(),
                "corp.example.com.",
                "_vlmcs._tcp.corp.example.com.",
                &record
            )
        );
        assert!(
            text.contains("update add _vlmcs._tcp.corp.example.com. 1200 IN SRV 10 5 1688 evil")
        );
        let entries = parse_undo(&text, "undo.txt").unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].record, record);
        assert_eq!(entries[0].server, server);
        assert_eq!(entries[1].server, "[2001:db8::53]:53".parse().unwrap());
    }

    #[test]
    fn bad_undo_files_name_the_line() {
        let e = parse_undo(
            "server 192.0.2.1 53\nzone x.\nupdate add o. 60 IN A 192.0.2.1\n",
            "u",
        )
        .unwrap_err();
        assert!(e.starts_with("u:3:") && e.contains("only SRV"), "{e}");
        let e = parse_undo("update add o. 60 IN SRV 0 0 1688 t.\n", "u").unwrap_err();
        assert!(e.contains("before any `server`"), "{e}");
        let e = parse_undo("rm -rf /\n", "u").unwrap_err();
        assert!(e.contains("u:1:"), "{e}");
        assert!(
            parse_undo("; nothing\n", "u")
                .unwrap_err()
                .contains("nothing to restore")
        );
    }
}
