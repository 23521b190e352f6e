//! One audit's settings from everything that can say something about it: the flags (as
//! [`Overrides`]), the config file and, with `--ad` or the file's `ad:`, Active Directory (its
//! domains and AD-integrated zones, the hosts of the authorized groups, what it says of each
//! `_vlmcs._tcp` node). The one place `scan`, `report` and `clean` build them, so that the same
//! file is the same audit for every command.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use crate::config::{self, CleanFileConfig, ConfigError, Overrides, ScanSettings};
use crate::model::ad_node::AdNode;

/// What a front end was given.
#[derive(Debug, Clone, Default)]
pub struct Request {
    /// The flags that say something about the audit.
    pub overrides: Overrides,
    /// The config file, if one was named.
    pub config: Option<PathBuf>,
    /// What to ask Active Directory, if anything.
    pub directory: DirectoryRequest,
}

/// Active Directory as a source of domains and authorized hosts (`--ad`, `--dc`,
/// `--allow-group`; the config's `ad:` and `authorized_groups:` add to them).
#[derive(Debug, Clone, Default)]
pub struct DirectoryRequest {
    /// Audit the domains and zones the directory knows (`--ad`).
    pub ad: bool,
    /// This domain controller rather than one found through DNS (`--dc`).
    pub dc: Option<String>,
    /// Authorize the computers of these groups (`--allow-group`).
    pub allow_groups: Vec<String>,
}

/// The settings of one audit, the notes the directory adds to its report, and the config's
/// `clean:` section (for `clean`).
#[derive(Debug)]
pub struct Audit {
    /// Built once, here; nothing changes them afterwards.
    pub settings: ScanSettings,
    /// What the directory could not say, for the report.
    pub notes: Vec<String>,
    /// The config's `clean:` section.
    pub clean: CleanFileConfig,
}

/// Why an audit's settings could not be built.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// The config file or a flag.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Groups are read from the directory, which was not asked for.
    #[error(
        "--allow-group (config `authorized_groups:`) reads the group from Active Directory: add --ad (config `ad:`)"
    )]
    GroupsNeedDirectory,
    /// Active Directory could not say what to audit.
    #[error(transparent)]
    Directory(#[from] DirectoryError),
}

/// Why Active Directory could not say which domains to audit or who is authorized.
#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    /// This build has no LDAP client.
    #[error("{}", if cfg!(windows) {
        "reading Active Directory (--ad, `ad:`) is not in the Windows build yet: name the domains (and --allow the KMS hosts), or run the Linux build with --ad"
    } else {
        "this vlmcs-audit was built without Active Directory support: rebuild with `cargo build --release --features ad` (needs libkrb5-dev and libclang-dev)"
    })]
    NotBuiltIn,
    /// No DC was named and this machine's domain could not be read.
    #[error("--ad: give --dc HOST: {0}")]
    SystemConfig(#[from] crate::dns::system::SystemConfigError),
    /// No DC was named and this machine has no domain to look one up in.
    #[error("--ad: this machine has no DNS domain to find a domain controller in: give --dc HOST")]
    NoLocalDomain,
    /// The directory's answer or its absence.
    #[cfg(feature = "ad")]
    #[error(transparent)]
    Ad(#[from] crate::ad::ldap::AdError),
    /// Every domain controller tried failed; what each said.
    #[cfg(feature = "ad")]
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    NoDcAnswered(Vec<crate::ad::ldap::AdError>),
    /// The directory knows nothing a KMS client could search.
    #[error("{dc} knows no domain or AD-integrated zone that KMS clients could search")]
    NoDomains {
        /// The DC asked, or "the domain controller".
        dc: String,
    },
    /// A group member's host name is not a host name.
    #[error("a host name from AD: {0}")]
    HostName(#[source] crate::support::value::ValueError),
}

/// Builds the audit's settings from `request`: the directory first (it adds domains, hosts and
/// what it holds about each node), then the file and the flags, merged once by
/// [`config::build`].
pub async fn build(request: Request) -> Result<Audit, SettingsError> {
    let Request {
        mut overrides,
        config: config_path,
        directory,
    } = request;
    let file = config_path.as_deref().map(config::load_file).transpose()?;
    let file_ad = file.as_ref().and_then(|f| f.ad.clone());
    let groups: Vec<String> = directory
        .allow_groups
        .iter()
        .chain(file.iter().flat_map(|f| &f.authorized_groups))
        .cloned()
        .collect();
    let ad = directory.ad || file_ad.is_some();
    if !ad && !groups.is_empty() {
        return Err(SettingsError::GroupsNeedDirectory);
    }
    let mut notes = Vec::new();
    if ad {
        let dc = directory.dc.clone().or(file_ad.and_then(|a| a.dc));
        // The config file's `timeout:` reaches the directory too.
        let timeout =
            config::ad_timeout(overrides.timeout.or(file.as_ref().and_then(|f| f.timeout)));
        notes = from_directory(dc, &groups, timeout, &mut overrides).await?;
    }
    let clean = file
        .as_ref()
        .and_then(|f| f.clean.clone())
        .unwrap_or_default();
    let settings = config::build(file, &overrides, crate::dns::system::search_domains)?;
    Ok(Audit {
        settings,
        notes,
        clean,
    })
}

/// Adds what the directory says to `overrides`: its domains and zones (the zones that are no
/// forest domain as optional), the hosts of `groups` to the allowlist, and what it holds about
/// each domain's node. Returns the report's notes on what could not be read.
async fn from_directory(
    dc: Option<String>,
    groups: &[String],
    timeout: Duration,
    overrides: &mut Overrides,
) -> Result<Vec<String>, DirectoryError> {
    let (found, hosts, mut session) = ad_domains(dc.as_deref(), groups, timeout).await?;
    let dc = dc.unwrap_or_else(|| "the domain controller".into());
    for host in hosts {
        let pattern = crate::model::HostPattern::parse(&host).map_err(DirectoryError::HostName)?;
        overrides.allow.push(pattern);
    }
    if found.is_empty() {
        return Err(DirectoryError::NoDomains { dc });
    }
    tracing::info!(dc = %dc, domains = found.len(), "domains from Active Directory");
    for (domain, forest_domain) in found {
        if !overrides.domains.contains(&domain) {
            // AD-integrated zones that are not a forest domain: KMS hosts publish in their
            // own domain, so an empty one is only worth knowing.
            if !forest_domain {
                overrides.optional_domains.push(domain.clone());
            }
            overrides.domains.push(domain);
        }
    }
    // What AD says of the nodes adds to the scan; a directory that stops answering here
    // leaves those findings out, said in the report, rather than the scan undone.
    let names: Vec<String> = overrides
        .domains
        .iter()
        .filter_map(|d| crate::model::validate_domain(d).ok())
        .collect();
    match read_nodes(&mut session, &names, groups.first()).await {
        Ok(nodes) => {
            let notes = node_notes(&names, &nodes);
            overrides.directory_nodes = nodes;
            Ok(notes)
        }
        Err(e) => Ok(vec![format!(
            "the _vlmcs._tcp nodes could not be read from Active Directory ({e}): who registered the records, the nodes' permissions and their stamps are not reported"
        )]),
    }
}

/// The notes of the nodes read, and which domains lie in no AD-integrated zone.
fn node_notes(names: &[String], nodes: &HashMap<String, AdNode>) -> Vec<String> {
    let mut notes = Vec::new();
    let mut outside = Vec::new();
    for name in names {
        match nodes.get(&name.to_ascii_lowercase()) {
            Some(node) => notes.extend(node.notes.iter().map(|n| format!("{name}: {n}"))),
            None => outside.push(name.clone()),
        }
    }
    if !outside.is_empty() {
        notes.push(format!(
            "{} domain(s) lie in no AD-integrated zone, so AD says nothing about who registered their records: {}",
            outside.len(),
            outside.join(", ")
        ));
    }
    notes
}

/// A bound connection to a domain controller (nothing without feature `ad`).
#[cfg(feature = "ad")]
type AdSession = crate::ad::ldap::Directory;
#[cfg(not(feature = "ad"))]
type AdSession = std::convert::Infallible;

/// What AD holds about each of `names`' `_vlmcs._tcp` node, by lower-case name.
#[cfg(feature = "ad")]
async fn read_nodes(
    session: &mut AdSession,
    names: &[String],
    hosts_group: Option<&String>,
) -> Result<HashMap<String, AdNode>, crate::ad::ldap::AdError> {
    session
        .vlmcs_nodes(names, hosts_group.map(String::as_str))
        .await
}

#[cfg(not(feature = "ad"))]
async fn read_nodes(
    session: &mut AdSession,
    _names: &[String],
    _hosts_group: Option<&String>,
) -> Result<HashMap<String, AdNode>, DirectoryError> {
    match *session {}
}

/// The domains and zones the directory knows, the host names of the computers in `groups`,
/// and the bound connection: from `dc`, else from the first domain controller of this
/// machine's domain that answers.
#[cfg(feature = "ad")]
async fn ad_domains(
    dc: Option<&str>,
    groups: &[String],
    timeout: Duration,
) -> Result<(Vec<(String, bool)>, Vec<String>, AdSession), DirectoryError> {
    use crate::ad::ldap::{Directory, find_dcs};
    let candidates = match dc {
        Some(dc) => vec![dc.to_string()],
        None => {
            let domain = crate::dns::system::search_domains()?
                .into_iter()
                .next()
                .ok_or(DirectoryError::NoLocalDomain)?;
            find_dcs(&domain, timeout).await?
        }
    };
    let mut failures = Vec::new();
    let mut bound = None;
    for candidate in &candidates {
        match Directory::connect(candidate, timeout).await {
            Ok(directory) => {
                bound = Some(directory);
                break;
            }
            Err(e) => failures.push(e),
        }
    }
    let Some(mut directory) = bound else {
        return Err(DirectoryError::NoDcAnswered(failures));
    };
    let domains = directory.dns_domains().await?;
    let mut hosts = Vec::new();
    for group in groups {
        hosts.extend(directory.group_hosts(group).await?);
    }
    Ok((domains, hosts, directory))
}

#[cfg(not(feature = "ad"))]
async fn ad_domains(
    _dc: Option<&str>,
    _groups: &[String],
    _timeout: Duration,
) -> Result<(Vec<(String, bool)>, Vec<String>, AdSession), DirectoryError> {
    Err(DirectoryError::NotBuiltIn)
}
