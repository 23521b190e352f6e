//! Configuration: the YAML file and the command line, merged once into validated
//! [`ScanSettings`]. Nothing downstream sees YAML or clap types.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Deserializer};

use crate::model::{DomainPolicy, HostPattern, normalize_name};

/// Defaults an administrator can rely on (and README documents).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(3);
pub const DEFAULT_CONCURRENCY: usize = 256;
pub const DEFAULT_NAMESERVER_PORT: u16 = 53;
/// Queries per second towards one DNS server: far below what a domain controller serves, and
/// enough to scan thousands of domains in seconds.
pub const DEFAULT_QPS: u32 = 1000;

/// What went wrong with the configuration; always says where and what to do.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}:{line}:{column}: {message}")]
    Syntax {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
    #[error("{0}")]
    Argument(String),
}

/// The config file as written. Unknown keys are errors: a typo must not silently disable a
/// setting.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    #[serde(default)]
    pub domains: Vec<DomainEntry>,
    #[serde(default)]
    pub authorized_hosts: Vec<HostEntry>,
    #[serde(default)]
    pub servers: Vec<ServerEntry>,
    #[serde(default)]
    pub resolvers: Vec<ServerEntry>,
    pub nameserver_port: Option<u16>,
    pub timeout: Option<DurationEntry>,
    pub concurrency: Option<usize>,
    pub qps: Option<u32>,
    pub check_emulator: Option<bool>,
    pub clean: Option<CleanFileConfig>,
}

/// The `clean:` section: defaults for the cleanup command.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CleanFileConfig {
    /// How long a record must have been failing across scans before it may be deleted.
    pub dead_for: Option<GraceEntry>,
    /// Refuse to delete anything when more than this percentage of probed hosts look dead.
    pub max_dead_percent: Option<u8>,
    pub state_file: Option<PathBuf>,
    pub audit_log: Option<PathBuf>,
    /// TSIG key file (BIND `key { ... };` format).
    pub tsig_key: Option<PathBuf>,
    /// Send updates here instead of the zone's SOA MNAME.
    pub primary: Option<ServerEntry>,
}

/// A grace period: like a duration, but zero is allowed.
#[derive(Debug, Clone, Copy)]
pub struct GraceEntry(pub Duration);

impl<'de> Deserialize<'de> for GraceEntry {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        parse_grace(&text)
            .map(Self)
            .map_err(serde::de::Error::custom)
    }
}

/// Parses a grace period such as `24h`, `90m` or `0`.
pub fn parse_grace(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    humantime::parse_duration(text)
        .map_err(|e| format!("`{text}` is not a duration ({e}); write e.g. `24h`, `90m` or `0`"))
}

/// A domain: either a bare name or a map with per-domain settings.
#[derive(Debug, Clone)]
pub struct DomainEntry {
    pub name: String,
    pub kms_hosts: Vec<HostEntry>,
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

struct DomainName(String);

impl<'de> Deserialize<'de> for DomainName {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        validate_domain(&text)
            .map(Self)
            .map_err(serde::de::Error::custom)
    }
}

/// An allowlist entry, validated where it is read so errors carry a line number.
#[derive(Debug, Clone)]
pub struct HostEntry(pub HostPattern);

impl<'de> Deserialize<'de> for HostEntry {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        HostPattern::parse(&text)
            .map(Self)
            .map_err(serde::de::Error::custom)
    }
}

/// A DNS server address, `ADDR` or `ADDR:PORT` (`[v6]:port` for IPv6 with a port).
#[derive(Debug, Clone, Copy)]
pub struct ServerEntry(pub SocketAddr);

impl<'de> Deserialize<'de> for ServerEntry {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        parse_server(&text)
            .map(Self)
            .map_err(serde::de::Error::custom)
    }
}

/// A duration such as `2s`, `500ms`, `1m 30s`.
#[derive(Debug, Clone, Copy)]
pub struct DurationEntry(pub Duration);

impl<'de> Deserialize<'de> for DurationEntry {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        parse_duration(&text)
            .map(Self)
            .map_err(serde::de::Error::custom)
    }
}

/// Parses `ADDR[:PORT]`; port 53 when none is given.
pub fn parse_server(text: &str) -> Result<SocketAddr, String> {
    let text = text.trim();
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(addr);
    }
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, DEFAULT_NAMESERVER_PORT));
    }
    Err(format!(
        "`{text}` is not a DNS server address: write an IP address with an optional port, e.g. `10.0.0.5`, `10.0.0.5:5353` or `[2001:db8::53]:53`"
    ))
}

/// Parses a human duration (`2s`, `500ms`); zero is refused.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(text.trim()).map_err(|e| {
        format!("`{text}` is not a duration ({e}); write e.g. `2s`, `500ms` or `1m`")
    })?;
    if d.is_zero() {
        return Err(format!("`{text}`: the timeout must be greater than zero"));
    }
    Ok(d)
}

/// Checks a domain name given by the user; returns it lower-cased without the trailing dot.
pub fn validate_domain(text: &str) -> Result<String, String> {
    let name = normalize_name(text);
    if name.starts_with("_vlmcs._tcp") {
        return Err(format!(
            "`{text}`: give the domain (e.g. `corp.example.com`), not the `_vlmcs._tcp` name"
        ));
    }
    match HostPattern::parse(&name) {
        Ok(HostPattern::Name(n)) if n.contains('.') || !n.is_empty() => Ok(n),
        _ => Err(format!(
            "`{text}` is not a valid domain name (labels of letters, digits and `-`, separated by dots)"
        )),
    }
}

/// Loads and parses a config file. Errors name the file, line and column.
pub fn load_file(path: &Path) -> Result<FileConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse_file(path, &text)
}

/// Parses config text (separate from reading for tests and fuzzing).
pub fn parse_file(path: &Path, text: &str) -> Result<FileConfig, ConfigError> {
    if text.trim().is_empty() {
        return Ok(FileConfig::default());
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
        ConfigError::Syntax {
            path: path.to_path_buf(),
            line,
            column,
            message,
        }
    })
}

/// The YAML parser reports a bad sequence item at the start of the sequence. Our validators
/// quote the bad value in backticks, so look for it from there on to point at its own line.
fn refine_location(text: &str, from: usize, message: &str) -> Option<(usize, usize)> {
    let quoted = message.split('`').nth(1).filter(|q| !q.is_empty())?;
    let offset = from + text.get(from..)?.find(quoted)?;
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
    Some((line, column))
}

/// Settings from the command line that override or extend the file.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub domains: Vec<String>,
    pub servers: Vec<String>,
    pub resolvers: Vec<String>,
    pub allow: Vec<String>,
    pub timeout: Option<String>,
    pub concurrency: Option<usize>,
    pub qps: Option<u32>,
    pub nameserver_port: Option<u16>,
    pub no_emulator_check: bool,
}

/// One domain to scan, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct DomainSettings {
    pub name: String,
    /// Servers to ask instead of discovering the authoritative ones.
    pub servers: Vec<SocketAddr>,
    pub policy: DomainPolicy,
}

/// Everything a scan needs, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct ScanSettings {
    pub domains: Vec<DomainSettings>,
    /// Recursive resolvers for discovery (SOA, NS, target addresses); empty: the system's.
    pub resolvers: Vec<SocketAddr>,
    pub nameserver_port: u16,
    pub timeout: Duration,
    pub concurrency: usize,
    /// Queries per second towards any one DNS server (0: no limit).
    pub qps: u32,
    pub check_emulator: bool,
    pub allowlist_configured: bool,
}

/// Merges the file (if any) and the command line. `search_domains` is called only when
/// neither names a domain: where a KMS client would look.
pub fn build(
    file: Option<(&Path, FileConfig)>,
    overrides: &Overrides,
    search_domains: impl FnOnce() -> Result<Vec<String>, String>,
) -> Result<ScanSettings, ConfigError> {
    let (path, file) = match file {
        Some((p, f)) => (Some(p.to_path_buf()), f),
        None => (None, FileConfig::default()),
    };
    let arg = ConfigError::Argument;

    let mut authorized: Vec<HostPattern> =
        file.authorized_hosts.iter().map(|h| h.0.clone()).collect();
    for a in &overrides.allow {
        authorized.push(HostPattern::parse(a).map_err(|e| arg(format!("--allow: {e}")))?);
    }
    let cli_servers = overrides
        .servers
        .iter()
        .map(|s| parse_server(s).map_err(|e| arg(format!("--server: {e}"))))
        .collect::<Result<Vec<_>, _>>()?;
    let file_servers: Vec<SocketAddr> = file.servers.iter().map(|s| s.0).collect();
    let resolvers = if overrides.resolvers.is_empty() {
        file.resolvers.iter().map(|s| s.0).collect()
    } else {
        overrides
            .resolvers
            .iter()
            .map(|s| parse_server(s).map_err(|e| arg(format!("--resolver: {e}"))))
            .collect::<Result<Vec<_>, _>>()?
    };
    let per_domain_expected: bool = file.domains.iter().any(|d| !d.kms_hosts.is_empty());
    let allowlist_configured = !authorized.is_empty() || per_domain_expected;

    // Which domains: the command line, else the file, else the search list.
    let mut entries: Vec<(DomainEntry, bool)> = Vec::new();
    if !overrides.domains.is_empty() {
        for d in &overrides.domains {
            let name = validate_domain(d).map_err(arg)?;
            let from_file = file.domains.iter().find(|e| e.name == name).cloned();
            entries.push((
                from_file.unwrap_or(DomainEntry {
                    name,
                    kms_hosts: vec![],
                    servers: vec![],
                }),
                true,
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
            let name = validate_domain(d).map_err(arg)?;
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
    let mut seen = std::collections::BTreeSet::new();
    entries.retain(|(e, _)| seen.insert(e.name.clone()));

    let domains = entries
        .into_iter()
        .map(|(entry, expect_records)| {
            let expected: Vec<HostPattern> = entry.kms_hosts.iter().map(|h| h.0.clone()).collect();
            let mut allowed = authorized.clone();
            allowed.extend(expected.iter().cloned());
            let servers = if !cli_servers.is_empty() {
                cli_servers.clone()
            } else if !entry.servers.is_empty() {
                entry.servers.iter().map(|s| s.0).collect()
            } else {
                file_servers.clone()
            };
            DomainSettings {
                name: entry.name,
                servers,
                policy: DomainPolicy {
                    authorized: allowlist_configured.then_some(allowed),
                    expected,
                    expect_records,
                },
            }
        })
        .collect();

    let timeout = match &overrides.timeout {
        Some(t) => parse_duration(t).map_err(|e| arg(format!("--timeout: {e}")))?,
        None => file.timeout.map(|d| d.0).unwrap_or(DEFAULT_TIMEOUT),
    };
    let concurrency = overrides
        .concurrency
        .or(file.concurrency)
        .unwrap_or(DEFAULT_CONCURRENCY);
    if concurrency == 0 {
        let message = "concurrency must be at least 1".to_string();
        return Err(match (&overrides.concurrency, path) {
            (None, Some(path)) => ConfigError::Invalid { path, message },
            _ => arg(format!("--concurrency: {message}")),
        });
    }
    Ok(ScanSettings {
        domains,
        resolvers,
        nameserver_port: overrides
            .nameserver_port
            .or(file.nameserver_port)
            .unwrap_or(DEFAULT_NAMESERVER_PORT),
        timeout,
        concurrency,
        qps: overrides.qps.or(file.qps).unwrap_or(DEFAULT_QPS),
        check_emulator: !overrides.no_emulator_check && file.check_emulator.unwrap_or(true),
        allowlist_configured,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<FileConfig, ConfigError> {
        parse_file(Path::new("audit.yaml"), text)
    }

    fn no_search() -> Result<Vec<String>, String> {
        Err("not expected".into())
    }

    #[test]
    fn full_example_parses() {
        let cfg = parse(
            "domains:\n  - corp.example.com\n  - name: emea.corp.example.com\n    kms_hosts: [kms2.emea.corp.example.com, 10.1.0.5]\n    servers: ['10.1.0.53']\nauthorized_hosts: [kms1.corp.example.com, 10.0.0.0/24]\ntimeout: 1500ms\nconcurrency: 10\n",
        )
        .unwrap();
        let s = build(
            Some((Path::new("a.yaml"), cfg)),
            &Overrides::default(),
            no_search,
        )
        .unwrap();
        assert_eq!(s.domains.len(), 2);
        assert_eq!(s.domains[1].servers, vec!["10.1.0.53:53".parse().unwrap()]);
        assert_eq!(s.domains[1].policy.expected.len(), 2);
        // Per-domain hosts are authorized in their domain, global ones everywhere.
        assert_eq!(s.domains[1].policy.authorized.as_ref().unwrap().len(), 4);
        assert_eq!(s.domains[0].policy.authorized.as_ref().unwrap().len(), 2);
        assert_eq!(s.timeout, Duration::from_millis(1500));
        assert_eq!(s.concurrency, 10);
        assert!(s.allowlist_configured);
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
            servers: vec!["192.0.2.9:5353".into()],
            timeout: Some("1s".into()),
            allow: vec!["kms.example.com".into()],
            ..Overrides::default()
        };
        let s = build(Some((Path::new("a.yaml"), cfg)), &overrides, no_search).unwrap();
        assert_eq!(s.domains.len(), 1);
        assert_eq!(s.domains[0].name, "b.example.com");
        assert_eq!(
            s.domains[0].servers,
            vec!["192.0.2.9:5353".parse().unwrap()]
        );
        assert_eq!(s.timeout, Duration::from_secs(1));
        assert!(s.allowlist_configured);
    }

    #[test]
    fn without_domains_the_search_list_is_used() {
        let s = build(None, &Overrides::default(), || {
            Ok(vec!["corp.example.com".into(), "example.com".into()])
        })
        .unwrap();
        let names: Vec<_> = s.domains.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(names, ["corp.example.com", "example.com"]);
        assert!(s.domains[0].policy.expect_records);
        assert!(!s.domains[1].policy.expect_records);
        assert!(s.domains[0].policy.authorized.is_none());
        let err = build(None, &Overrides::default(), || Ok(vec![])).unwrap_err();
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
        let err = bad(Overrides {
            domains: vec!["a.example".into()],
            servers: vec!["nonsense".into()],
            ..Overrides::default()
        });
        assert!(err.starts_with("--server:"), "{err}");
        let err = bad(Overrides {
            domains: vec!["a.example".into()],
            timeout: Some("0s".into()),
            ..Overrides::default()
        });
        assert!(err.contains("greater than zero"), "{err}");
        let err = bad(Overrides {
            domains: vec!["a.example".into()],
            concurrency: Some(0),
            ..Overrides::default()
        });
        assert!(err.contains("at least 1"), "{err}");
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
            parse_server("2001:db8::1").unwrap(),
            "[2001:db8::1]:53".parse().unwrap()
        );
        assert_eq!(
            parse_server("[2001:db8::1]:54").unwrap(),
            "[2001:db8::1]:54".parse().unwrap()
        );
        assert!(parse_server("10.0.0.5:99999").is_err());
    }

    #[test]
    fn the_example_config_in_the_repository_is_valid() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/audit.yaml");
        let cfg = load_file(&path).unwrap();
        build(Some((&path, cfg)), &Overrides::default(), no_search).unwrap();
    }
}
