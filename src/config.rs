//! Configuration: the YAML file and the command line, merged once into validated
//! [`ScanSettings`]. Nothing downstream sees YAML or clap types.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Deserializer};

use crate::model::{DomainPolicy, HostPattern};
use crate::support::value::{ValueError, shown};

/// Defaults an administrator can rely on (and README documents).
/// Each DNS query, probe and update (scan, clean and restore alike): long enough for a distant
/// server, short enough that a scan of dead hosts, which costs about one timeout, ends soon.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(3);
/// Active Directory over LDAP needs more: a Kerberos bind is several round trips (the KDC for a
/// ticket, then the DC), so the directory gets the timeout set for the scan but at least
/// [`AD_TIMEOUT_FLOOR`], and [`DEFAULT_AD_TIMEOUT`] when none is set.
pub const DEFAULT_AD_TIMEOUT: Duration = Duration::from_secs(10);
pub(crate) const AD_TIMEOUT_FLOOR: Duration = Duration::from_secs(5);

/// The timeout of the directory's operations, from the timeout set for the scan (flag, else
/// config file), if any.
pub fn ad_timeout(set: Option<Timeout>) -> Duration {
    set.map_or(DEFAULT_AD_TIMEOUT, |t| t.0.max(AD_TIMEOUT_FLOOR))
}
pub(crate) const DEFAULT_CONCURRENCY: usize = 256;
pub(crate) const DEFAULT_NAMESERVER_PORT: u16 = 53;
/// Queries per second towards one DNS server: far below what a domain controller serves, and
/// enough to scan thousands of domains in seconds.
/// No rate cap by default: the window of outstanding queries per server is the politeness
/// (see `mux`); `--qps` is a hard cap on top for servers that need one.
pub(crate) const DEFAULT_QPS: u32 = 0;

/// What went wrong with the configuration; always says where and what to do.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read (missing, too large, not a regular file, ...).
    #[error(transparent)]
    File(crate::support::fsio::FileError),
    /// The YAML is malformed or holds a value that is refused.
    #[error("{path}:{line}:{column}: {message}")]
    Syntax {
        /// The config file.
        path: PathBuf,
        /// Where in it (1-based).
        line: usize,
        /// The column (1-based).
        column: usize,
        /// What is wrong, and what would do.
        message: String,
    },
    /// A flag's value, or what the file and the flags say together.
    #[error("{0}")]
    Argument(String),
    /// A value named on the command line.
    #[error(transparent)]
    Value(#[from] ValueError),
}

/// The config file as written. Unknown keys are errors: a typo must not silently disable a
/// setting.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// The domains to audit: names, or maps with `name`, `kms_hosts` and `servers`.
    #[serde(default)]
    pub domains: Vec<DomainEntry>,
    /// Hosts (names, addresses, networks) authorized to serve KMS anywhere.
    #[serde(default)]
    pub authorized_hosts: Vec<HostEntry>,
    /// DNS servers to ask instead of discovering the authoritative ones.
    #[serde(default)]
    pub servers: Vec<ServerEntry>,
    /// Recursive resolvers for discovery and target lookups.
    #[serde(default)]
    pub resolvers: Vec<ServerEntry>,
    /// Port of the authoritative servers found through NS records.
    pub nameserver_port: Option<Port>,
    /// Timeout of each DNS query and each probe.
    pub timeout: Option<Timeout>,
    /// How many DNS queries and probes run at once.
    pub concurrency: Option<Concurrency>,
    /// A cap on queries per second towards any one DNS server.
    pub qps: Option<Qps>,
    /// `false` skips the extra bind that tells KMS emulators from Windows KMS hosts.
    pub check_emulator: Option<bool>,
    /// Defaults for `clean`.
    pub clean: Option<CleanFileConfig>,
    /// `ad:` — audit the domains Active Directory knows (feature `ad`).
    pub ad: Option<AdFileConfig>,
    /// AD groups whose computers are authorized KMS hosts (with `ad:`).
    #[serde(default)]
    pub authorized_groups: Vec<String>,
}

/// The `ad:` section: where to read the directory (`ad: {}` finds a DC through DNS).
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdFileConfig {
    /// A domain controller's host name, instead of the one `_ldap._tcp.dc._msdcs` names.
    pub dc: Option<String>,
}

/// The `clean:` section: defaults for the cleanup command.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CleanFileConfig {
    /// How long a record must have been failing across scans before it may be deleted.
    pub dead_for: Option<Grace>,
    /// Refuse to delete anything when more than this percentage of probed hosts look dead.
    pub max_dead_percent: Option<Percent>,
    /// The state file (history of every record across scans).
    pub state_file: Option<PathBuf>,
    /// The JSON-lines audit log.
    pub audit_log: Option<PathBuf>,
    /// TSIG key file (BIND `key { ... };` format).
    pub tsig_key: Option<PathBuf>,
    /// Send updates here instead of the zone's SOA MNAME.
    pub primary: Option<ServerEntry>,
}

/// A whole number that must lie in `MIN..=MAX`, checked where it is read: a flag (clap names
/// the flag) or the config file (the error carries the line and column).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ranged<const MIN: u64, const MAX: u64>(pub u64);

/// `--concurrency`: a bound on work in flight; beyond this it only exhausts sockets.
pub type Concurrency = Ranged<1, 100_000>;
/// `--qps`: queries per second per DNS server, 0 for no limit.
pub type Qps = Ranged<0, 1_000_000>;
/// `--max-dead-percent`.
pub type Percent = Ranged<0, 100>;
/// A TCP/UDP port to send to.
pub type Port = Ranged<1, 65_535>;

impl<const MIN: u64, const MAX: u64> Ranged<MIN, MAX> {
    /// Parses a flag's value.
    pub fn parse(text: &str) -> Result<Self, ValueError> {
        let value: u64 = text.trim().parse().map_err(|_| ValueError::NotANumber {
            text: shown(text),
            min: MIN,
            max: MAX,
        })?;
        Self::new(value)
    }

    pub(crate) fn new(value: u64) -> Result<Self, ValueError> {
        if (MIN..=MAX).contains(&value) {
            Ok(Self(value))
        } else {
            Err(ValueError::NumberOutOfRange {
                value,
                min: MIN,
                max: MAX,
            })
        }
    }
}

impl<'de, const MIN: u64, const MAX: u64> Deserialize<'de> for Ranged<MIN, MAX> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = u64::deserialize(deserializer)?;
        Self::new(value).map_err(serde::de::Error::custom)
    }
}

/// A duration that must lie in `MIN_MS..=MAX_MS` milliseconds; `0` is accepted as a bare
/// number when the range allows zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BoundedDuration<const MIN_MS: u64, const MAX_MS: u64>(pub Duration);

/// The timeout of each DNS query and each probe.
pub type Timeout = BoundedDuration<1, 600_000>;
/// How long a record must have failed before `clean` may delete it (up to ten years, as
/// humantime counts them: `10y` is 3,652.5 days).
pub type Grace = BoundedDuration<0, 315_576_000_000>;
/// How long to wait for another run's lock.
pub type LockWait = BoundedDuration<0, 3_600_000>;

impl<const MIN_MS: u64, const MAX_MS: u64> BoundedDuration<MIN_MS, MAX_MS> {
    /// Parses a flag's or the file's value: `2s`, `500ms`, `24h`, or a bare number of seconds.
    pub fn parse(text: &str) -> Result<Self, ValueError> {
        let trimmed = text.trim();
        let (min, max) = (
            show_duration(Duration::from_millis(MIN_MS)),
            show_duration(Duration::from_millis(MAX_MS)),
        );
        // A bare number is seconds, as dig and nc take it (`--timeout 2`).
        let d = if let Ok(seconds) = trimmed.parse::<u64>() {
            Duration::from_secs(seconds)
        } else {
            humantime::parse_duration(trimmed).map_err(|e| ValueError::NotADuration {
                text: shown(trimmed),
                cause: e.to_string(),
                min: min.clone(),
                max: max.clone(),
            })?
        };
        if d < Duration::from_millis(MIN_MS) || d > Duration::from_millis(MAX_MS) {
            return Err(ValueError::DurationOutOfRange {
                text: shown(trimmed),
                min,
                max,
            });
        }
        Ok(Self(d))
    }
}

fn show_duration(d: Duration) -> String {
    if d.is_zero() {
        "0".into()
    } else {
        humantime::format_duration(d).to_string()
    }
}

impl<'de, const MIN_MS: u64, const MAX_MS: u64> Deserialize<'de>
    for BoundedDuration<MIN_MS, MAX_MS>
{
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor<const A: u64, const B: u64>;
        impl<'de, const A: u64, const B: u64> serde::de::Visitor<'de> for Visitor<A, B> {
            type Value = BoundedDuration<A, B>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a duration such as `2s`, `500ms` or `24h`")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
                BoundedDuration::parse(v).map_err(E::custom)
            }
            // `dead_for: 0` is a number in YAML.
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Self::Value, E> {
                BoundedDuration::parse(&v.to_string()).map_err(E::custom)
            }
        }
        deserializer.deserialize_any(Visitor::<MIN_MS, MAX_MS>)
    }
}

/// A domain: either a bare name or a map with per-domain settings.
#[derive(Debug, Clone)]
pub struct DomainEntry {
    /// The domain, lower-case, without the final dot.
    pub name: String,
    /// Hosts that should be published in this domain (and are authorized in it).
    pub kms_hosts: Vec<HostEntry>,
    /// DNS servers to ask for this domain.
    pub servers: Vec<ServerEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DomainMap {
    name: DomainName,
    #[serde(default)]
    kms_hosts: Vec<HostEntry>,
    #[serde(default)]
    servers: Vec<ServerEntry>,
}

impl<'de> Deserialize<'de> for DomainEntry {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = DomainEntry;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a domain name, or a map with `name`, `kms_hosts` and `servers`")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<DomainEntry, E> {
                Ok(DomainEntry {
                    name: validate_domain(v).map_err(E::custom)?,
                    kms_hosts: vec![],
                    servers: vec![],
                })
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<DomainEntry, A::Error> {
                let m = DomainMap::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
                Ok(DomainEntry {
                    name: m.name.0,
                    kms_hosts: m.kms_hosts,
                    servers: m.servers,
                })
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// Every entry below is validated where it is read, so its error carries a line number.
#[derive(Deserialize)]
#[serde(try_from = "String")]
struct DomainName(String);

impl TryFrom<String> for DomainName {
    type Error = ValueError;

    fn try_from(text: String) -> Result<Self, ValueError> {
        validate_domain(&text).map(Self)
    }
}

/// An allowlist entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "String")]
pub struct HostEntry(pub HostPattern);

impl TryFrom<String> for HostEntry {
    type Error = ValueError;

    fn try_from(text: String) -> Result<Self, ValueError> {
        HostPattern::parse(&text).map(Self)
    }
}

/// A DNS server address, `ADDR` or `ADDR:PORT` (`[v6]:port` for IPv6 with a port).
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(try_from = "String")]
pub struct ServerEntry(pub SocketAddr);

impl TryFrom<String> for ServerEntry {
    type Error = ValueError;

    fn try_from(text: String) -> Result<Self, ValueError> {
        parse_server(&text).map(Self)
    }
}

/// Parses `ADDR[:PORT]`; port 53 when none is given. IPv6 addresses go in brackets
/// (`[2001:db8::53]`, `[::1]:5353`): without them `::1:53` would silently be the address
/// `::0.1.0.83`, not `::1` port 53.
pub fn parse_server(text: &str) -> Result<SocketAddr, ValueError> {
    let text = text.trim();
    let address = if let Ok(addr) = text.parse::<SocketAddr>() {
        addr
    } else if let Ok(ip) = text.parse::<std::net::Ipv4Addr>() {
        SocketAddr::new(IpAddr::V4(ip), DEFAULT_NAMESERVER_PORT)
    } else if let Some(ip) = text
        .strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .and_then(|t| t.parse::<std::net::Ipv6Addr>().ok())
    {
        SocketAddr::new(IpAddr::V6(ip), DEFAULT_NAMESERVER_PORT)
    } else if text.parse::<std::net::Ipv6Addr>().is_ok() {
        return Err(ValueError::Ipv6WithoutBrackets { text: shown(text) });
    } else {
        return Err(ValueError::NotAServer { text: shown(text) });
    };
    if address.ip().is_unspecified() {
        return Err(ValueError::UnspecifiedServer {
            text: shown(text),
            address: address.ip(),
        });
    }
    if address.port() == 0 {
        return Err(ValueError::PortZero { text: shown(text) });
    }
    Ok(address)
}

pub(crate) use crate::model::validate_domain;

/// Loads and parses a config file (a regular file of bounded size). Errors name the file, line
/// and column.
pub fn load_file(path: &Path) -> Result<FileConfig, ConfigError> {
    let bytes = crate::support::fsio::read(path, crate::support::fsio::CONFIG)
        .map_err(ConfigError::File)?;
    // A byte-order mark (Notepad writes one) is not part of the YAML.
    let bytes = bytes.strip_prefix("\u{feff}".as_bytes()).unwrap_or(&bytes);
    let text = std::str::from_utf8(bytes).map_err(|e| {
        let offset = e.valid_up_to();
        let (line, column) = line_and_column(&bytes[..offset]);
        ConfigError::Syntax {
            path: path.to_path_buf(),
            line,
            column,
            message: format!(
                "byte offset {offset} is not UTF-8: the config file must be UTF-8 text (convert it, e.g. with `iconv -t UTF-8`)"
            ),
        }
    })?;
    parse_file(path, text)
}

fn line_and_column(before: &[u8]) -> (usize, usize) {
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    let column = String::from_utf8_lossy(&before[start..]).chars().count() + 1;
    (line, column)
}

/// How deep a config may nest. A real one nests four levels; thousands make the YAML parser
/// quadratic (100,000 levels took 17 s).
const MAX_NESTING: usize = 64;

/// Finds nesting deeper than [`MAX_NESTING`] before the YAML parser sees it: flow collections
/// (`[[[`, `{{{`), indentation, and compact block sequences (`- - -`). Conservative: it may
/// count a level too many, never too few.
fn check_nesting(text: &str) -> Result<(), (usize, usize)> {
    let mut flow = 0usize;
    for (index, line) in text.lines().enumerate() {
        let indent = line.len() - line.trim_start_matches([' ', '\t']).len();
        let mut block = indent / 2;
        let mut rest = line.trim_start_matches([' ', '\t']);
        while let Some(after) = rest
            .strip_prefix("- ")
            .or_else(|| rest.strip_prefix("? "))
            .or_else(|| rest.strip_prefix(": "))
        {
            block += 1;
            rest = after.trim_start_matches(' ');
        }
        if block > MAX_NESTING {
            return Err((index + 1, 1));
        }
        let mut quote: Option<char> = None;
        for (column, c) in line.chars().enumerate() {
            match (quote, c) {
                (Some(q), c) if c == q => quote = None,
                (Some(_), _) => {}
                (None, '\'' | '"') => quote = Some(c),
                (None, '#') => break,
                (None, '[' | '{') => {
                    flow += 1;
                    if flow + block > MAX_NESTING {
                        return Err((index + 1, column + 1));
                    }
                }
                (None, ']' | '}') => flow = flow.saturating_sub(1),
                _ => {}
            }
        }
    }
    Ok(())
}

/// Parses config text (separate from reading for tests and fuzzing).
pub fn parse_file(path: &Path, text: &str) -> Result<FileConfig, ConfigError> {
    if text.trim().is_empty() {
        return Ok(FileConfig::default());
    }
    if let Err((line, column)) = check_nesting(text) {
        return Err(ConfigError::Syntax {
            path: path.to_path_buf(),
            line,
            column,
            message: format!(
                "nested more than {MAX_NESTING} levels deep: a vlmcs-audit config nests a few levels (see examples/audit.yaml)"
            ),
        });
    }
    serde_norway::from_str(text).map_err(|e| {
        let (line, column) = e
            .location()
            .map(|l| {
                refine_location(text, l.index(), &e.to_string()).unwrap_or((l.line(), l.column()))
            })
            .unwrap_or((1, 1));
        // The location is already in our prefix; drop serde's own " at line X column Y".
        let message = e.to_string();
        let message = match message.find(" at line ") {
            Some(i) => message[..i].to_string(),
            None => message,
        };
        // The parser quotes the input: no control bytes, no megabytes, on the terminal.
        let message = crate::support::quote::message_for_terminal(&message);
        ConfigError::Syntax {
            path: path.to_path_buf(),
            line,
            column,
            message,
        }
    })
}

/// The YAML parser reports a bad sequence item at the start of the sequence (and some values
/// at their mapping). Our validators quote the bad value in backticks: point at the first place
/// from there on where it stands as a whole scalar — never inside another value (`0` in
/// `10.0.0.1`).
fn refine_location(text: &str, from: usize, message: &str) -> Option<(usize, usize)> {
    let quoted = message.split('`').nth(1).filter(|q| !q.is_empty())?;
    let starts_token = |b: u8| {
        matches!(
            b,
            b' ' | b'\t' | b'\n' | b'[' | b',' | b':' | b'-' | b'"' | b'\'' | b'{'
        )
    };
    let ends_token = |b: u8| {
        matches!(
            b,
            b' ' | b'\t' | b'\r' | b'\n' | b']' | b',' | b'"' | b'\'' | b'#' | b'}'
        )
    };
    let whole_scalar = |at: usize| {
        let before_ok = at == 0 || starts_token(text.as_bytes()[at - 1]);
        let end = at + quoted.len();
        let after_ok = end >= text.len() || ends_token(text.as_bytes()[end]);
        before_ok && after_ok
    };
    let offset = text
        .get(from..)?
        .match_indices(quoted)
        .map(|(i, _)| from + i)
        .find(|&at| whole_scalar(at))?;
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
    Some((line, column))
}

/// Settings from the command line that override or extend the file.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    /// The domains named on the command line.
    pub domains: Vec<String>,
    /// `--server`: servers to ask instead of discovering the authoritative ones.
    pub servers: Vec<SocketAddr>,
    /// `--resolver`: recursive resolvers for discovery and target lookups.
    pub resolvers: Vec<SocketAddr>,
    /// `--allow`: hosts authorized on top of the file's.
    pub allow: Vec<HostPattern>,
    /// `--timeout`.
    pub timeout: Option<Timeout>,
    /// `--concurrency`.
    pub concurrency: Option<Concurrency>,
    /// `--qps`.
    pub qps: Option<Qps>,
    /// `--nameserver-port`.
    pub nameserver_port: Option<Port>,
    /// `--no-emulator-check`.
    pub no_emulator_check: bool,
    /// Of `domains`, those where no record is no problem (AD-integrated zones that are not a
    /// forest domain: KMS hosts publish in their own domain).
    pub optional_domains: Vec<String>,
    /// What Active Directory holds about each domain's `_vlmcs._tcp` node, by lower-case
    /// domain name.
    pub directory_nodes: std::collections::HashMap<String, crate::model::ad_node::AdNode>,
}

/// One domain to scan, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct DomainSettings {
    /// The domain, lower-case, without the final dot.
    pub name: String,
    /// Servers to ask instead of discovering the authoritative ones.
    pub servers: Vec<SocketAddr>,
    /// Who may serve KMS for it.
    pub policy: DomainPolicy,
    /// What Active Directory holds about the domain's `_vlmcs._tcp` node (`scan --ad`).
    pub ad: Option<Box<crate::model::ad_node::AdNode>>,
}

/// Everything a scan needs, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct ScanSettings {
    /// The domains, each once, in the order given.
    pub domains: Vec<DomainSettings>,
    /// Recursive resolvers for discovery (SOA, NS, target addresses); empty: the system's.
    pub resolvers: Vec<SocketAddr>,
    /// Port of the authoritative servers found through NS records.
    pub nameserver_port: u16,
    /// Timeout of each DNS query and each probe.
    pub timeout: Duration,
    /// How many DNS queries and probes run at once.
    pub concurrency: usize,
    /// Queries per second towards any one DNS server (0: no limit).
    pub qps: u32,
    /// Whether to run the extra bind that tells KMS emulators from Windows KMS hosts.
    pub check_emulator: bool,
}

impl ScanSettings {
    /// Whether an allowlist is configured (the domains' policies say it: each has one, or none
    /// has).
    pub fn allowlist_configured(&self) -> bool {
        self.domains.iter().any(|d| d.policy.authorized.is_some())
    }
}

/// Which domains, each with whether records must be there: the command line, else the file,
/// else this machine's search list (the first search domain is its own: records must be
/// there; the others are where clients look next, so an empty one is only worth knowing).
fn domains_to_scan<SearchError: std::fmt::Display>(
    file: &FileConfig,
    overrides: &Overrides,
    search_domains: impl FnOnce() -> Result<Vec<String>, SearchError>,
) -> Result<Vec<(DomainEntry, bool)>, ConfigError> {
    let arg = ConfigError::Argument;
    let mut entries: Vec<(DomainEntry, bool)> = Vec::new();
    if !overrides.domains.is_empty() {
        for d in &overrides.domains {
            let name = validate_domain(d)?;
            let from_file = file.domains.iter().find(|e| e.name == name).cloned();
            let expect_records = !overrides.optional_domains.contains(d);
            entries.push((
                from_file.unwrap_or(DomainEntry {
                    name,
                    kms_hosts: vec![],
                    servers: vec![],
                }),
                expect_records,
            ));
        }
    } else if !file.domains.is_empty() {
        entries = file.domains.iter().cloned().map(|d| (d, true)).collect();
    } else {
        let found = search_domains().map_err(|e| {
            arg(format!(
                "no domain given and the system's DNS search domains could not be read ({e}); name the domains to scan"
            ))
        })?;
        if found.is_empty() {
            return Err(arg(
                "no domain given and this machine has no DNS search domains; name the domains to scan, e.g. `vlmcs-audit scan corp.example.com`".into(),
            ));
        }
        // The first search domain is the machine's own: records must be there. The others
        // are where clients look next, so an empty one is only worth knowing.
        for (i, d) in found.iter().enumerate() {
            let name = validate_domain(d)?;
            entries.push((
                DomainEntry {
                    name,
                    kms_hosts: vec![],
                    servers: vec![],
                },
                i == 0,
            ));
        }
    }
    Ok(entries)
}

/// Merges the file (if any) and the command line. `search_domains` is called only when
/// neither names a domain: where a KMS client would look.
pub fn build<SearchError: std::fmt::Display>(
    file: Option<FileConfig>,
    overrides: &Overrides,
    search_domains: impl FnOnce() -> Result<Vec<String>, SearchError>,
) -> Result<ScanSettings, ConfigError> {
    let file = file.unwrap_or_default();

    // Flags arrive parsed (clap's value parsers name the flag in their errors).
    let mut authorized: Vec<HostPattern> =
        file.authorized_hosts.iter().map(|h| h.0.clone()).collect();
    authorized.extend(overrides.allow.iter().cloned());
    let cli_servers = overrides.servers.clone();
    let file_servers: Vec<SocketAddr> = file.servers.iter().map(|s| s.0).collect();
    let resolvers = if overrides.resolvers.is_empty() {
        file.resolvers.iter().map(|s| s.0).collect()
    } else {
        overrides.resolvers.clone()
    };
    let per_domain_expected: bool = file.domains.iter().any(|d| !d.kms_hosts.is_empty());
    let allowlist_configured = !authorized.is_empty() || per_domain_expected;

    let mut entries = domains_to_scan(&file, overrides, search_domains)?;
    let mut seen = std::collections::BTreeSet::new();
    entries.retain(|(e, _)| seen.insert(e.name.clone()));

    let shared = std::sync::Arc::new(authorized.into_iter().collect::<crate::model::Allowlist>());
    let domains = entries
        .into_iter()
        .map(|(entry, expect_records)| {
            let servers = if !cli_servers.is_empty() {
                cli_servers.clone()
            } else if !entry.servers.is_empty() {
                entry.servers.iter().map(|s| s.0).collect()
            } else {
                file_servers.clone()
            };
            let policy = domain_policy(&entry, &shared, allowlist_configured, expect_records);
            let ad = overrides
                .directory_nodes
                .get(&entry.name.to_ascii_lowercase())
                .cloned()
                .map(Box::new);
            DomainSettings {
                name: entry.name,
                servers,
                policy,
                ad,
            }
        })
        .collect();

    // Every number was range-checked where it was read (flag or file).
    let timeout = overrides
        .timeout
        .or(file.timeout)
        .map_or(DEFAULT_TIMEOUT, |t| t.0);
    let concurrency = overrides
        .concurrency
        .or(file.concurrency)
        .map_or(DEFAULT_CONCURRENCY, |c| c.0 as usize);
    let qps = overrides
        .qps
        .or(file.qps)
        .map_or(DEFAULT_QPS, |q| q.0 as u32);
    let nameserver_port = overrides
        .nameserver_port
        .or(file.nameserver_port)
        .map_or(DEFAULT_NAMESERVER_PORT, |p| p.0 as u16);
    Ok(ScanSettings {
        domains,
        resolvers,
        nameserver_port,
        timeout,
        concurrency,
        qps,
        check_emulator: !overrides.no_emulator_check && file.check_emulator.unwrap_or(true),
    })
}

/// Who may serve KMS for one domain: the global allowlist (shared by every domain, never
/// copied) plus the domain's own `kms_hosts`, which are also expected to be published.
fn domain_policy(
    entry: &DomainEntry,
    shared: &std::sync::Arc<crate::model::Allowlist>,
    allowlist_configured: bool,
    expect_records: bool,
) -> DomainPolicy {
    let expected: Vec<HostPattern> = entry.kms_hosts.iter().map(|h| h.0.clone()).collect();
    DomainPolicy {
        authorized: allowlist_configured.then(|| shared.clone()),
        expected,
        expect_records,
        identities: None,
    }
}

/// What the administrator allowed `clean` to do (its safety rails), resolved from flags, the
/// config's `clean:` section and these defaults.
#[derive(Debug, Clone)]
pub struct CleanOptions {
    /// A record becomes a candidate only after failing this long across scans.
    pub dead_for: Duration,
    /// Also delete live KMS hosts that are not on the allowlist.
    pub include_unauthorized: bool,
    /// Refuse everything when more than this share of probed hosts look dead.
    pub max_dead_share: f64,
    /// Override the share rule.
    pub force: bool,
    /// Allow deleting the last record of a domain.
    pub allow_empty: bool,
}

impl Default for CleanOptions {
    fn default() -> Self {
        Self {
            dead_for: Duration::from_secs(24 * 3600),
            include_unauthorized: false,
            max_dead_share: 0.5,
            force: false,
            allow_empty: false,
        }
    }
}

/// `clean`'s own flags, as parsed (each range-checked by its value parser).
#[derive(Debug, Clone, Default)]
pub struct CleanOverrides {
    /// `--dead-for`.
    pub dead_for: Option<Grace>,
    /// `--max-dead-percent`.
    pub max_dead_percent: Option<Percent>,
    /// `--include-unauthorized`.
    pub include_unauthorized: bool,
    /// `--force`.
    pub force: bool,
    /// `--allow-empty`.
    pub allow_empty: bool,
    /// `--primary`.
    pub primary: Option<SocketAddr>,
    /// `--state`.
    pub state_file: Option<PathBuf>,
    /// `--audit-log`.
    pub audit_log: Option<PathBuf>,
    /// `--undo-file`.
    pub undo_file: Option<PathBuf>,
}

/// Everything `clean` needs beyond the scan settings, resolved once: flag, else the file's
/// `clean:` section, else the default.
#[derive(Debug, Clone)]
pub struct CleanSettings {
    /// The safety rails.
    pub options: CleanOptions,
    /// Send updates here instead of the zone's primary.
    pub primary: Option<SocketAddr>,
    /// The state file.
    pub state_path: PathBuf,
    /// The JSON-lines audit log.
    pub audit_path: PathBuf,
    /// The undo file deleted records are appended to.
    pub undo_path: PathBuf,
    /// The config's `clean: tsig_key:` (a flag's key is the authentication request's).
    pub tsig_key: Option<PathBuf>,
}

impl CleanSettings {
    /// `state_default` is where the state lives when neither flag nor file says; the undo file
    /// defaults to `undo-<now>.txt` here.
    pub fn resolve(
        flags: CleanOverrides,
        file: CleanFileConfig,
        state_default: PathBuf,
        now: std::time::SystemTime,
    ) -> Self {
        let defaults = CleanOptions::default();
        let dead_for = flags
            .dead_for
            .or(file.dead_for)
            .map_or(defaults.dead_for, |g| g.0);
        let max_dead_share = flags
            .max_dead_percent
            .or(file.max_dead_percent)
            .map_or(defaults.max_dead_share, |p| p.0 as f64 / 100.0);
        let state_path = flags
            .state_file
            .or(file.state_file)
            .unwrap_or(state_default);
        let audit_path = flags
            .audit_log
            .or(file.audit_log)
            .unwrap_or_else(|| state_path.with_file_name("audit.jsonl"));
        let undo_path = flags.undo_file.unwrap_or_else(|| {
            let stamp = crate::support::time::rfc3339(now).replace(':', "");
            let name = format!("undo-{stamp}.txt");
            // Windows: beside the state (`%ProgramData%\vlmcs-audit`), not wherever the task
            // or the console happened to start (often C:\Windows\System32).
            if cfg!(windows) {
                state_path.with_file_name(name)
            } else {
                PathBuf::from(name)
            }
        });
        Self {
            options: CleanOptions {
                dead_for,
                include_unauthorized: flags.include_unauthorized,
                max_dead_share,
                force: flags.force,
                allow_empty: flags.allow_empty,
            },
            primary: flags.primary.or(file.primary.map(|p| p.0)),
            state_path,
            audit_path,
            undo_path,
            tsig_key: file.tsig_key,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<FileConfig, ConfigError> {
        parse_file(Path::new("audit.yaml"), text)
    }

    fn no_search() -> Result<Vec<String>, std::io::Error> {
        Err(std::io::Error::other("not expected"))
    }

    #[test]
    fn full_example_parses() {
        let cfg = parse(
            "domains:\n  - corp.example.com\n  - name: emea.corp.example.com\n    kms_hosts: [kms2.emea.corp.example.com, 10.1.0.5]\n    servers: ['10.1.0.53']\nauthorized_hosts: [kms1.corp.example.com, 10.0.0.0/24]\ntimeout: 1500ms\nconcurrency: 10\n",
        )
        .unwrap();
        let s = build(Some(cfg), &Overrides::default(), no_search).unwrap();
        assert_eq!(s.domains.len(), 2);
        assert_eq!(s.domains[1].servers, vec!["10.1.0.53:53".parse().unwrap()]);
        assert_eq!(s.domains[1].policy.expected.len(), 2);
        // Per-domain hosts are authorized in their domain, global ones everywhere (one list,
        // shared, not copied into the domain that adds its own).
        let (emea, corp) = (&s.domains[1].policy, &s.domains[0].policy);
        assert!(std::sync::Arc::ptr_eq(
            emea.authorized.as_ref().unwrap(),
            corp.authorized.as_ref().unwrap()
        ));
        assert_eq!(corp.authorized.as_ref().unwrap().len(), 2);
        for (policy, allowed) in [(emea, true), (corp, false)] {
            assert_eq!(policy.allows_name("kms2.emea.corp.example.com."), allowed);
            assert_eq!(policy.allows_address("10.1.0.5".parse().unwrap()), allowed);
            assert!(policy.allows_name("KMS1.corp.example.com"));
            assert!(policy.allows_address("10.0.0.77".parse().unwrap()));
        }
        assert_eq!(s.timeout, Duration::from_millis(1500));
        assert_eq!(s.concurrency, 10);
        assert!(s.allowlist_configured());
    }

    #[test]
    fn syntax_errors_name_file_line_and_column() {
        let err = parse("domains:\n  - corp.example.com\ntimeout: [1\n").unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with("audit.yaml:"), "{text}");
        assert!(
            matches!(
                err,
                ConfigError::Syntax { line: 4, .. } | ConfigError::Syntax { line: 3, .. }
            ),
            "{text}"
        );
    }

    #[test]
    fn bad_values_point_at_their_line() {
        let err = parse("domains:\n  - corp.example.com\nauthorized_hosts:\n  - kms1.corp\n  - 'kms 2; rm -rf /'\n").unwrap_err();
        let text = err.to_string();
        assert!(text.contains("audit.yaml:5:6:"), "{text}");
        assert!(text.contains("not a valid host name"), "{text}");

        let err = parse("timeout: soon\n").unwrap_err().to_string();
        assert!(
            err.contains("audit.yaml:1:") && err.contains("not a duration"),
            "{err}"
        );

        let err = parse("servers: [ns1.example.com]\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("not a DNS server address"), "{err}");
    }

    #[test]
    fn unknown_keys_are_rejected_with_the_expected_ones() {
        let err = parse("timout: 2s\n").unwrap_err().to_string();
        assert!(err.contains("audit.yaml:1:1"), "{err}");
        assert!(err.contains("unknown field `timout`"), "{err}");
        assert!(err.contains("timeout"), "{err}");
        let err = parse("domains:\n  - name: a.example\n    kms_host: [x.example]\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("unknown field `kms_host`") && err.contains("audit.yaml:3:"),
            "{err}"
        );
    }

    #[test]
    fn wrong_shapes_say_what_was_expected() {
        let err = parse("domains: corp.example.com\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("expected a sequence"), "{err}");
        let err = parse("domains:\n  - 42\n").unwrap_err().to_string();
        assert!(err.contains("a domain name, or a map"), "{err}");
    }

    #[test]
    fn command_line_overrides_the_file() {
        let cfg =
            parse("domains: [a.example.com, b.example.com]\nservers: ['192.0.2.1']\ntimeout: 5s\n")
                .unwrap();
        let overrides = Overrides {
            domains: vec!["B.example.com.".into()],
            servers: vec!["192.0.2.9:5353".parse().unwrap()],
            timeout: Some(Timeout::parse("1s").unwrap()),
            allow: vec![HostPattern::parse("kms.example.com").unwrap()],
            ..Overrides::default()
        };
        let s = build(Some(cfg), &overrides, no_search).unwrap();
        assert_eq!(s.domains.len(), 1);
        assert_eq!(s.domains[0].name, "b.example.com");
        assert_eq!(
            s.domains[0].servers,
            vec!["192.0.2.9:5353".parse().unwrap()]
        );
        assert_eq!(s.timeout, Duration::from_secs(1));
        assert!(s.allowlist_configured());
    }

    #[test]
    fn without_domains_the_search_list_is_used() {
        let s = build(None, &Overrides::default(), || {
            Ok::<_, std::convert::Infallible>(vec!["corp.example.com".into(), "example.com".into()])
        })
        .unwrap();
        let names: Vec<_> = s.domains.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(names, ["corp.example.com", "example.com"]);
        assert!(s.domains[0].policy.expect_records);
        assert!(!s.domains[1].policy.expect_records);
        assert!(s.domains[0].policy.authorized.is_none());
        let err = build(None, &Overrides::default(), || {
            Ok::<_, std::convert::Infallible>(vec![])
        })
        .unwrap_err();
        assert!(err.to_string().contains("no DNS search domains"));
    }

    #[test]
    fn bad_arguments_are_reported_with_their_flag() {
        let bad = |o: Overrides| build(None, &o, no_search).unwrap_err().to_string();
        let err = bad(Overrides {
            domains: vec!["_vlmcs._tcp.corp.example.com".into()],
            ..Overrides::default()
        });
        assert!(err.contains("not the `_vlmcs._tcp` name"), "{err}");
    }

    #[test]
    fn a_bare_number_of_seconds_is_a_duration() {
        assert_eq!(Timeout::parse("2").unwrap().0, Duration::from_secs(2));
        assert_eq!(Grace::parse("0").unwrap().0, Duration::ZERO);
        // The directory's timeout follows the scan's, with a floor; its own default otherwise.
        assert_eq!(ad_timeout(None), DEFAULT_AD_TIMEOUT);
        assert_eq!(ad_timeout(Timeout::parse("1s").ok()), AD_TIMEOUT_FLOOR);
        assert_eq!(
            ad_timeout(Timeout::parse("20s").ok()),
            Duration::from_secs(20)
        );
        // README says up to ten years: as humantime counts them.
        assert!(Grace::parse("10y").is_ok());
        assert!(Grace::parse("3652days").is_ok());
        assert!(Grace::parse("11y").is_err());
        assert!(
            Timeout::parse("0")
                .unwrap_err()
                .to_string()
                .contains("allowed: 1ms to 10m")
        );
        assert!(Timeout::parse("601").is_err());
    }

    #[test]
    fn servers_parse_in_every_usual_form() {
        assert_eq!(
            parse_server("10.0.0.5").unwrap(),
            "10.0.0.5:53".parse().unwrap()
        );
        assert_eq!(
            parse_server("10.0.0.5:5353").unwrap(),
            "10.0.0.5:5353".parse().unwrap()
        );
        assert_eq!(
            parse_server("[2001:db8::1]").unwrap(),
            "[2001:db8::1]:53".parse().unwrap()
        );
        // `::1:53` is a valid address (`::0.1.0.83`): never guess that it meant a port.
        let err = parse_server("::1:53").unwrap_err().to_string();
        assert!(
            err.contains("brackets") && err.contains("[::1:53]"),
            "{err}"
        );
        let err = parse_server("0.0.0.0:53").unwrap_err().to_string();
        assert!(err.contains("any address"), "{err}");
        assert!(parse_server("[::]:53").is_err());
        assert!(parse_server("10.0.0.5:0").is_err());
        assert_eq!(
            parse_server("[2001:db8::1]:54").unwrap(),
            "[2001:db8::1]:54".parse().unwrap()
        );
        assert!(parse_server("10.0.0.5:99999").is_err());
    }

    #[test]
    fn clean_settings_take_the_flag_then_the_file_then_the_default() {
        let file = parse("clean:\n  dead_for: 2h\n  max_dead_percent: 20\n  state_file: /srv/s.json\n  primary: '192.0.2.53'\n")
            .unwrap()
            .clean
            .unwrap();
        let now = humantime::parse_rfc3339("2026-11-29T10:15:00Z").unwrap();
        let from_file = CleanSettings::resolve(
            CleanOverrides::default(),
            file.clone(),
            PathBuf::from("/var/lib/x/state.json"),
            now,
        );
        assert_eq!(from_file.options.dead_for, Duration::from_secs(7200));
        assert_eq!(from_file.options.max_dead_share, 0.2);
        assert_eq!(from_file.state_path, PathBuf::from("/srv/s.json"));
        assert_eq!(from_file.audit_path, PathBuf::from("/srv/audit.jsonl"));
        assert_eq!(
            from_file.undo_path,
            PathBuf::from("undo-2026-11-29T101500Z.txt")
        );
        assert_eq!(from_file.primary, Some("192.0.2.53:53".parse().unwrap()));
        let flags = CleanOverrides {
            dead_for: Some(Grace::parse("0").unwrap()),
            max_dead_percent: Some(Percent::new(90).unwrap()),
            state_file: Some(PathBuf::from("/tmp/other.json")),
            ..CleanOverrides::default()
        };
        let from_flags = CleanSettings::resolve(flags, file, PathBuf::from("/d"), now);
        assert_eq!(from_flags.options.dead_for, Duration::ZERO);
        assert_eq!(from_flags.options.max_dead_share, 0.9);
        assert_eq!(from_flags.audit_path, PathBuf::from("/tmp/audit.jsonl"));
        let defaults = CleanSettings::resolve(
            CleanOverrides::default(),
            CleanFileConfig::default(),
            PathBuf::from("/d/state.json"),
            now,
        );
        assert_eq!(defaults.options.dead_for, Duration::from_secs(24 * 3600));
        assert_eq!(defaults.options.max_dead_share, 0.5);
        assert_eq!(defaults.state_path, PathBuf::from("/d/state.json"));
    }

    #[test]
    fn the_example_config_in_the_repository_is_valid() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/audit.yaml");
        let cfg = load_file(&path).unwrap();
        build(Some(cfg), &Overrides::default(), no_search).unwrap();
    }
}
