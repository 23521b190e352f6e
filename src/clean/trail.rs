//! The trail a cleanup leaves: an undo file in `nsupdate` syntax (so that `nsupdate -k` or
//! `vlmcs-audit restore` puts every deleted record back) and a JSON-lines audit log. Both are
//! appended and flushed to disk *before* the change they describe is sent.

use std::fs::File;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use hickory_proto::rr::Name;
use serde::Serialize;

use crate::model::SrvRecord;

/// An undo file, created on the first record it is given: private (0600), never through a
/// symbolic link, appended to when it exists.
pub(crate) struct UndoFile {
    path: PathBuf,
    file: Option<File>,
}

impl UndoFile {
    pub(crate) fn new(path: &Path) -> Self {
        Self {
            path: path.to_path_buf(),
            file: None,
        }
    }

    pub(crate) fn written(&self) -> bool {
        self.file.is_some()
    }

    /// Appends the commands that re-add `record` at `owner` in `zone`, and syncs them to disk.
    pub(crate) fn append(
        &mut self,
        server: SocketAddr,
        zone: &Name,
        owner: &Name,
        record: &SrvRecord,
    ) -> Result<(), crate::support::fsio::FileError> {
        let failed = |source: std::io::Error| crate::support::fsio::FileError::Write {
            what: crate::support::fsio::UNDO.what,
            path: self.path.clone(),
            source,
        };
        let block = undo_block(server, zone, owner, record)
            .map_err(|e| failed(std::io::Error::new(std::io::ErrorKind::InvalidData, e)))?;
        if self.file.is_none() {
            let mut file =
                crate::support::fsio::open_append(&self.path, crate::support::fsio::UNDO)?;
            let shown = one_line(&self.path.display().to_string());
            // check-names: nsupdate refuses to add a target that is not a host name (a hostile
            // name is exactly what may have to be put back) and then misreads the rest.
            write!(
                file,
                "; vlmcs-audit undo file, {}\n; Puts back what `vlmcs-audit clean` deleted: `vlmcs-audit restore {shown}` or `nsupdate -k KEYFILE {shown}`\ncheck-names no\n",
                crate::support::time::rfc3339(std::time::SystemTime::now()),
            )
            .map_err(failed)?;
            self.file = Some(file);
        }
        let file = self.file.as_mut().expect("opened above");
        file.write_all(block.as_bytes()).map_err(failed)?;
        file.sync_all().map_err(failed)
    }

    /// Appends a comment line (for what happened to the block above it).
    pub(crate) fn note(&mut self, text: &str) -> std::io::Result<()> {
        let Some(file) = self.file.as_mut() else {
            return Ok(());
        };
        writeln!(file, "; {}", one_line(text))?;
        file.sync_all()
    }
}

/// Text for a comment line: control characters (a newline would start a command) blanked.
fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// A name as `nsupdate` must read it back: every byte that is not a letter, digit, `-` or `_`
/// escaped (`\&`, `\032`), so that no shell-like or zone-file character (`;`, `$`, `|`, `%`,
/// spaces, newlines) can change how the line is read.
pub(crate) fn undo_name(name: &Name) -> String {
    crate::dns::escaped(name, |byte| {
        byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_'
    })
}

/// `server`, `zone`, `update add`, `send`: one self-contained nsupdate block per record.
pub fn undo_block(
    server: SocketAddr,
    zone: &Name,
    owner: &Name,
    record: &SrvRecord,
) -> Result<String, UndoProblem> {
    let target = record.target.to_name();
    Ok(format!(
        "server {} {}\nzone {}\nupdate add {} {} IN SRV {} {} {} {}\nsend\n",
        server.ip(),
        server.port(),
        undo_name(zone),
        undo_name(owner),
        record.ttl,
        record.priority,
        record.weight,
        record.port,
        undo_name(&target)
    ))
}

/// One `update add` read back from an undo file, checked: an SRV record at
/// `_vlmcs._tcp.<domain>` inside its zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UndoEntry {
    /// The server the record was deleted from (where it goes back).
    pub server: SocketAddr,
    /// The record's zone.
    pub zone: Name,
    /// The record's owner name.
    pub owner: Name,
    /// The record, with its TTL.
    pub record: SrvRecord,
    /// The undo file's line.
    pub line: usize,
}

/// The largest TTL a record may carry (RFC 2181, section 8).
const MAX_TTL: u32 = 0x7fff_ffff;

/// Reads an undo file: exactly the nsupdate subset that [`UndoFile`] writes, and only SRV
/// additions at `_vlmcs._tcp.<domain>` (owner compared label by label) inside the named zone.
/// Anything else is refused, naming its line, before anything is sent. Errors never quote a
/// line: a hand-made undo file may carry a `key` line with a secret.
pub fn parse_undo(text: &str, origin: &str) -> Result<Vec<UndoEntry>, UndoError> {
    let mut server: Option<SocketAddr> = None;
    let mut zone: Option<Name> = None;
    let mut entries = Vec::new();
    // A byte-order mark (an editor's) is not part of the first line.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    for (index, raw) in text.lines().enumerate() {
        let err = |problem: UndoProblem| UndoError {
            origin: origin.to_string(),
            line: Some(index + 1),
            problem,
        };
        // Names in an undo file are escaped (\000): a raw control character (a NUL) is no
        // part of one, and nsupdate would read the line differently.
        if raw
            .chars()
            .any(|c| c.is_control() && c != '\t' && c != '\r')
        {
            return Err(err(UndoProblem::ControlCharacter));
        }
        let line = raw.trim();
        if line.is_empty() || line.starts_with(';') {
            continue;
        }
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            [
                "check-names",
                "no" | "yes" | "on" | "off" | "true" | "false",
            ]
            | ["send"] => {}
            ["server", ip, rest @ ..] if rest.len() <= 1 => {
                server = Some(server_line(ip, rest.first().copied()).map_err(err)?);
            }
            ["zone", z] => zone = Some(fqdn(z).ok_or_else(|| err(UndoProblem::Zone))?),
            ["update", "add", owner, ttl, rest @ ..] => {
                let (owner, record) = add_line(owner, ttl, rest, zone.as_ref()).map_err(err)?;
                entries.push(UndoEntry {
                    server: server.ok_or_else(|| err(UndoProblem::NoServer))?,
                    zone: zone.clone().ok_or_else(|| err(UndoProblem::NoZone))?,
                    owner,
                    record,
                    line: index + 1,
                });
            }
            ["update", "delete" | "del", ..] => return Err(err(UndoProblem::Delete)),
            [word, ..] if let Some(command) = NSUPDATE_WORDS.iter().find(|w| *w == word) => {
                return Err(err(UndoProblem::NsupdateCommand(command)));
            }
            _ => return Err(err(UndoProblem::Unknown)),
        }
    }
    if entries.is_empty() {
        return Err(UndoError {
            origin: origin.to_string(),
            line: None,
            problem: UndoProblem::Empty,
        });
    }
    Ok(entries)
}

/// `server IP [PORT]`.
fn server_line(ip: &str, port: Option<&str>) -> Result<SocketAddr, UndoProblem> {
    let ip: std::net::IpAddr = ip.parse().map_err(|_| UndoProblem::ServerAddress)?;
    let port = match port {
        None => 53,
        Some(port) => port
            .parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or(UndoProblem::ServerPort)?,
    };
    Ok(SocketAddr::new(ip, port))
}

/// `update add OWNER TTL [IN] SRV PRIORITY WEIGHT PORT TARGET`, inside `zone`.
fn add_line(
    owner: &str,
    ttl: &str,
    rest: &[&str],
    zone: Option<&Name>,
) -> Result<(Name, SrvRecord), UndoProblem> {
    let rest = match rest {
        [class, rest @ ..] if class.eq_ignore_ascii_case("IN") => rest,
        rest => rest,
    };
    if rest
        .first()
        .is_some_and(|kind| !kind.eq_ignore_ascii_case("SRV"))
    {
        return Err(UndoProblem::NotSrv);
    }
    let [_, priority, weight, port, target] = rest else {
        return Err(UndoProblem::Shape);
    };
    let owner = fqdn(owner).ok_or(UndoProblem::OwnerName)?;
    check_owner(&owner)?;
    if !zone.ok_or(UndoProblem::NoZone)?.zone_of(&owner) {
        return Err(UndoProblem::OutsideZone);
    }
    let number =
        |w: &str, what: &'static str| w.parse::<u16>().map_err(|_| UndoProblem::Number(what));
    let ttl = ttl
        .parse::<u32>()
        .ok()
        .filter(|t| *t <= MAX_TTL)
        .ok_or(UndoProblem::Ttl)?;
    let target = fqdn(target).ok_or(UndoProblem::Target)?;
    Ok((
        owner,
        SrvRecord {
            priority: number(priority, "priority")?,
            weight: number(weight, "weight")?,
            port: number(port, "port")?,
            target: crate::model::name::DnsName::new(target),
            ttl,
        },
    ))
}

/// nsupdate's own commands: named in errors, as they carry no data of their own to leak.
const NSUPDATE_WORDS: &[&str] = &[
    "key",
    "prereq",
    "update",
    "class",
    "ttl",
    "local",
    "realm",
    "gsstsig",
    "oldgsstsig",
    "answer",
    "show",
    "debug",
    "quit",
    "lifetime",
];

fn fqdn(text: &str) -> Option<Name> {
    crate::dns::parse_presentation(text).filter(Name::is_fqdn)
}

/// The owner must be `_vlmcs._tcp.<domain>`, label by label (so `_vlmcs\046_tcp.x` is not), with
/// a domain that `clean` could have scanned: what `clean` writes, and nothing else.
fn check_owner(owner: &Name) -> Result<(), UndoProblem> {
    let labels: Vec<&[u8]> = owner.iter().collect();
    let is_vlmcs = labels.len() > 2
        && labels[0].eq_ignore_ascii_case(b"_vlmcs")
        && labels[1].eq_ignore_ascii_case(b"_tcp");
    if !is_vlmcs {
        return Err(UndoProblem::NotVlmcs);
    }
    let domain =
        Name::from_labels(labels[2..].iter().copied()).map_err(|_| UndoProblem::OwnerDomainName)?;
    crate::model::validate_domain(&crate::dns::presentation(&domain))
        .map(|_| ())
        .map_err(|_| UndoProblem::OwnerDomain)
}

/// An undo file line that `restore` will not act on; never quotes the line (a hand-made undo
/// file may carry a `key` line with a secret).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{origin}{}: {problem}", line.map(|l| format!(":{l}")).unwrap_or_default())]
pub struct UndoError {
    /// The undo file.
    pub origin: String,
    /// The line, when the problem is one line's.
    pub line: Option<usize>,
    /// What is wrong.
    pub problem: UndoProblem,
}

/// What is wrong with an undo file or one of its lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum UndoProblem {
    /// A `server` line without an IP address.
    #[error("`server` needs an IP address")]
    ServerAddress,
    /// A `server` line with a bad port.
    #[error("`server`: bad port")]
    ServerPort,
    /// A `zone` line without a valid name.
    #[error("`zone` is not a valid fully qualified name")]
    Zone,
    /// A record of another type.
    #[error("only SRV records are restored")]
    NotSrv,
    /// An `update add` line of another shape.
    #[error("expected `update add OWNER TTL IN SRV PRIORITY WEIGHT PORT TARGET`")]
    Shape,
    /// An owner that is not a valid name.
    #[error("the owner is not a valid fully qualified name")]
    OwnerName,
    /// An owner outside `_vlmcs._tcp`.
    #[error("the owner is not `_vlmcs._tcp.<domain>`: restore only puts back KMS SRV records")]
    NotVlmcs,
    /// An owner whose domain is not a valid name.
    #[error("the owner's domain is not a valid name")]
    OwnerDomainName,
    /// An owner whose domain `clean` would not scan.
    #[error("the owner's domain is not a host name that `clean` scans")]
    OwnerDomain,
    /// An addition before any `zone` line.
    #[error("`update add` before any `zone` line")]
    NoZone,
    /// An owner outside its zone.
    #[error("the owner is not inside the zone named above it")]
    OutsideZone,
    /// A priority, weight or port out of range (named).
    #[error("the {0} is not a number from 0 to 65535")]
    Number(&'static str),
    /// A TTL out of range.
    #[error("the TTL is not a number from 0 to 2147483647")]
    Ttl,
    /// A target that is not a valid name.
    #[error("the target is not a valid fully qualified name")]
    Target,
    /// An addition before any `server` line.
    #[error("`update add` before any `server` line")]
    NoServer,
    /// A delete: restore only adds.
    #[error("`update delete`: restore only adds records back")]
    Delete,
    /// An nsupdate command that no undo file holds (`key`, ...).
    #[error(
        "`{0}` lines are not part of an undo file (give keys with --tsig-key or VLMCS_TSIG_KEY, never inside it)"
    )]
    NsupdateCommand(&'static str),
    /// Any other line.
    #[error(
        "not a line an undo file contains (only `server`, `zone`, `update add ... SRV ...`, `send` and `; comments`)"
    )]
    Unknown,
    /// A raw control character.
    #[error(
        "a raw control character (a NUL, an escape): names in an undo file are written escaped, as \\000"
    )]
    ControlCharacter,
    /// Nothing to restore.
    #[error("no `update add` line: nothing to restore")]
    Empty,
}

/// One line of the audit log.
#[derive(Debug, Serialize)]
pub(crate) struct AuditEntry<'a> {
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
    /// A regular file is synced after each line; a FIFO or character device (a logger's
    /// pipe, a terminal) has nothing to sync, and fdatasync fails there (EINVAL).
    regular: bool,
}

impl AuditLog {
    /// Opens (or creates, 0600) the log for appending; never through a symbolic link.
    pub fn open(path: &Path) -> Result<Self, crate::support::fsio::FileError> {
        let file = crate::support::fsio::open_append(path, crate::support::fsio::AUDIT_LOG)?;
        let regular = file.metadata().is_ok_and(|m| m.is_file());
        Ok(Self { file, regular })
    }

    /// Appends one line as a single write (a pipe's reader sees whole lines), synced to disk
    /// when the log is a regular file.
    pub(crate) fn write(&mut self, entry: &AuditEntry<'_>) -> std::io::Result<()> {
        let mut line = serde_json::to_string(entry).map_err(std::io::Error::other)?;
        line.push('\n');
        self.file.write_all(line.as_bytes())?;
        if self.regular {
            self.file.sync_data()?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(text: &str) -> Name {
        crate::dns::parse_presentation(text).unwrap()
    }

    const HEAD: &str = "server 192.0.2.1 53\nzone corp.example.com.\n";

    #[test]
    fn undo_blocks_parse_back_to_the_same_records() {
        let record = SrvRecord {
            priority: 10,
            weight: 5,
            port: 1688,
            target: "evil\\027\\$\\(x\\)&calc|%PATH%.corp.example.com.".into(),
            ttl: 1200,
        };
        let server: SocketAddr = "192.0.2.53:5353".parse().unwrap();
        let zone = name("corp.example.com.");
        let owner = name("_vlmcs._tcp.corp.example.com.");
        let text = format!(
            "; comment\ncheck-names no\n{}{}",
            undo_block(server, &zone, &owner, &record).unwrap(),
            undo_block("[2001:db8::53]:53".parse().unwrap(), &zone, &owner, &record).unwrap()
        );
        assert!(
            text.contains(
                "update add _vlmcs._tcp.corp.example.com. 1200 IN SRV 10 5 1688 evil\\027\\$\\(x\\)\\&calc\\|\\%PATH\\%.corp.example.com.\n"
            ),
            "{text}"
        );
        let entries = parse_undo(&text, "undo.txt").unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!(
            entries[0].record.target.to_name().to_string(),
            record.target.to_name().to_string(),
            "the same name, whatever its escapes"
        );
        assert_eq!(entries[0].record.target, record.target);
        assert_eq!(entries[0].server, server);
        assert_eq!(entries[0].owner, owner);
        assert_eq!(entries[1].server, "[2001:db8::53]:53".parse().unwrap());
    }

    #[test]
    fn only_vlmcs_srv_additions_inside_their_zone_are_accepted() {
        let refused = |line: &str| {
            parse_undo(&format!("{HEAD}{line}\nsend\n"), "u")
                .unwrap_err()
                .to_string()
        };
        for owner in [
            "www.corp.example.com.",
            "_ldap._tcp.corp.example.com.",
            "corp.example.com.",
            "*._tcp.corp.example.com.",
            "_vlmcs\\046_tcp.corp.example.com.",
            "_vlmcs._udp.corp.example.com.",
            "_vlmcs._tcp.",
        ] {
            let e = refused(&format!(
                "update add {owner} 300 IN SRV 0 0 1688 kms.corp.example.com."
            ));
            assert!(e.starts_with("u:3:") && e.contains("owner"), "{owner}: {e}");
        }
        let e =
            refused("update add _vlmcs._tcp.other.example. 300 IN SRV 0 0 1688 kms.other.example.");
        assert!(e.contains("not inside the zone"), "{e}");
        let e = refused("update add _vlmcs._tcp.corp.example.com. 300 IN A 192.0.2.1");
        assert!(e.contains("only SRV"), "{e}");
        let e = refused("update delete _vlmcs._tcp.corp.example.com. SRV");
        assert!(e.contains("only adds"), "{e}");
        let e = refused("update add _vlmcs._tcp.corp.example.com. 4294967295 IN SRV 0 0 1688 k.");
        assert!(e.contains("TTL"), "{e}");
        // Case does not matter; relative names do.
        parse_undo(
            &format!(
                "{HEAD}update add _VLMCS._TCP.Corp.Example.COM. 300 SRV 0 0 1688 k.example.\n"
            ),
            "u",
        )
        .unwrap();
        let e = refused("update add _vlmcs._tcp.corp.example.com 300 IN SRV 0 0 1688 k.");
        assert!(e.contains("fully qualified"), "{e}");
    }

    #[test]
    fn a_byte_order_mark_is_skipped_and_a_raw_nul_is_refused() {
        let good = format!(
            "{HEAD}update add _vlmcs._tcp.corp.example.com. 300 IN SRV 0 0 1688 k.corp.example.com.\n"
        );
        assert_eq!(
            parse_undo(&format!("\u{feff}{good}"), "u").unwrap().len(),
            1
        );
        let nul = good.replace("k.corp", "k\u{0}x.corp");
        let e = parse_undo(&nul, "u").unwrap_err();
        assert_eq!(e.problem, UndoProblem::ControlCharacter);
        assert!(!e.to_string().contains('\u{0}'));
    }

    #[test]
    fn errors_name_the_line_and_never_quote_it() {
        let secret = "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0IQ==";
        for line in [
            format!("key hmac-sha256:ddns {secret}"),
            secret.to_string(),
            format!("update add {secret} 300 IN SRV 0 0 1688 k."),
            format!("zone {secret}."),
            format!("server {secret}"),
        ] {
            let e = parse_undo(&format!("{HEAD}{line}\n"), "u")
                .unwrap_err()
                .to_string();
            assert!(!e.contains("c2VjcmV0"), "secret in an error: {e}");
        }
        let e = parse_undo(
            "update add _vlmcs._tcp.a.example. 60 IN SRV 0 0 1688 t.\n",
            "u",
        )
        .unwrap_err();
        assert_eq!(e.problem, UndoProblem::NoZone);
        assert_eq!(e.line, Some(1));
        assert!(e.to_string().starts_with("u:1: "), "{e}");
        let e = parse_undo("; nothing\n", "u").unwrap_err();
        assert_eq!((e.line, e.problem), (None, UndoProblem::Empty));
        assert!(e.to_string().contains("nothing to restore"));
    }
}
