//! One audit's settings from everything that can say something about it: the flags (as
//! [`Overrides`]), the config file and, with `--ad` or the file's `ad:`, Active Directory (its
//! domains and AD-integrated zones, the hosts of the authorized groups, what it says of each
//! `_vlmcs._tcp` node). The one place `scan`, `report` and `clean` build them, so that the same
//! file is the same audit for every command.

use std::path::PathBuf;
use std::time::Duration;

use crate::config::{self, CleanFileConfig, Overrides, ScanSettings};
use crate::discover;

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
    /// Built once; nothing after this changes them.
    pub settings: ScanSettings,
    /// What the directory could not say, for the report.
    pub notes: Vec<String>,
    /// The config's `clean:` section.
    pub clean: CleanFileConfig,
}

/// Builds the audit's settings from `request`.
pub async fn build(request: Request) -> Result<Audit, String> {
    let Request {
        mut overrides,
        config: config_path,
        directory,
    } = request;
    let file = config_path
        .as_deref()
        .map(|path| config::load_file(path).map_err(|e| e.to_string()))
        .transpose()?;
    let file_ad = file.as_ref().and_then(|f| f.ad.clone());
    let groups: Vec<String> = directory
        .allow_groups
        .iter()
        .chain(file.iter().flat_map(|f| &f.authorized_groups))
        .cloned()
        .collect();
    let ad = directory.ad || file_ad.is_some();
    if !ad && !groups.is_empty() {
        return Err("--allow-group (config `authorized_groups:`) reads the group from Active Directory: add --ad (config `ad:`)".into());
    }
    let mut session_found = None;
    // AD-integrated zones that are not a forest domain: KMS hosts publish in their own
    // domain, so an empty one is only worth knowing.
    let mut zones_only: Vec<String> = Vec::new();
    if ad {
        let dc = directory.dc.clone().or(file_ad.and_then(|a| a.dc));
        // The config file's `timeout:` reaches the directory too.
        let timeout =
            config::ad_timeout(overrides.timeout.or(file.as_ref().and_then(|f| f.timeout)));
        let (found, hosts, session) = ad_domains(dc.as_deref(), &groups, timeout).await?;
        session_found = Some(session);
        let dc = dc.unwrap_or_else(|| "the domain controller".into());
        for host in hosts {
            let pattern = crate::model::HostPattern::parse(&host)
                .map_err(|e| format!("a host name from AD: {e}"))?;
            overrides.allow.push(pattern);
        }
        if found.is_empty() {
            return Err(format!(
                "{dc} knows no domain or AD-integrated zone that KMS clients could search"
            ));
        }
        tracing::info!(dc = %dc, domains = found.len(), "domains from Active Directory");
        for (domain, forest_domain) in found {
            if !overrides.domains.contains(&domain) {
                if !forest_domain {
                    zones_only.push(domain.clone());
                }
                overrides.domains.push(domain);
            }
        }
    }
    let clean = file
        .as_ref()
        .and_then(|f| f.clean.clone())
        .unwrap_or_default();
    let mut settings = config::build(file, &overrides, discover::system_search_domains)
        .map_err(|e| e.to_string())?;
    for domain in &mut settings.domains {
        if zones_only.contains(&domain.name) {
            domain.policy.expect_records = false;
        }
    }
    let mut notes = Vec::new();
    if let Some(mut session) = session_found {
        // What AD says of the nodes adds to the scan; a directory that stops answering here
        // leaves those findings out, said in the report, rather than the scan undone.
        notes = attach_ad_nodes(&mut session, &mut settings, groups.first())
            .await
            .unwrap_or_else(|e| {
                vec![format!(
                    "the _vlmcs._tcp nodes could not be read from Active Directory ({e}): who registered the records, the nodes' permissions and their stamps are not reported"
                )]
            });
    }
    Ok(Audit {
        settings,
        notes,
        clean,
    })
}

/// A bound connection to a domain controller (nothing without feature `ad`).
#[cfg(feature = "ad")]
type AdSession = crate::ad::ldap::Directory;
#[cfg(not(feature = "ad"))]
type AdSession = std::convert::Infallible;

/// Reads what AD holds about each domain's `_vlmcs._tcp` node into its settings; returns the
/// report notes for what could not be read.
#[cfg(feature = "ad")]
async fn attach_ad_nodes(
    session: &mut AdSession,
    settings: &mut ScanSettings,
    hosts_group: Option<&String>,
) -> Result<Vec<String>, String> {
    let names: Vec<String> = settings.domains.iter().map(|d| d.name.clone()).collect();
    let mut nodes = session
        .vlmcs_nodes(&names, hosts_group.map(String::as_str))
        .await
        .map_err(|e| e.to_string())?;
    let mut notes = Vec::new();
    let mut outside = Vec::new();
    for domain in &mut settings.domains {
        domain.ad = nodes
            .remove(&domain.name.to_ascii_lowercase())
            .map(Box::new);
        match &domain.ad {
            Some(node) => notes.extend(node.notes.iter().map(|n| format!("{}: {n}", domain.name))),
            None => outside.push(domain.name.clone()),
        }
    }
    if !outside.is_empty() {
        notes.push(format!(
            "{} domain(s) lie in no AD-integrated zone, so AD says nothing about who registered their records: {}",
            outside.len(),
            outside.join(", ")
        ));
    }
    Ok(notes)
}

#[cfg(not(feature = "ad"))]
async fn attach_ad_nodes(
    session: &mut AdSession,
    _settings: &mut ScanSettings,
    _hosts_group: Option<&String>,
) -> Result<Vec<String>, String> {
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
) -> Result<(Vec<(String, bool)>, Vec<String>, AdSession), String> {
    use crate::ad::ldap::{Directory, find_dcs};
    let candidates = match dc {
        Some(dc) => vec![dc.to_string()],
        None => {
            let domain = discover::system_search_domains()?
                .into_iter()
                .next()
                .ok_or("--ad: this machine has no DNS domain to find a domain controller in: give --dc HOST")?;
            find_dcs(&domain, timeout)
                .await
                .map_err(|e| e.to_string())?
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
            Err(e) => failures.push(e.to_string()),
        }
    }
    let Some(mut directory) = bound else {
        return Err(failures.join("; "));
    };
    let domains = directory.dns_domains().await.map_err(|e| e.to_string())?;
    let mut hosts = Vec::new();
    for group in groups {
        hosts.extend(
            directory
                .group_hosts(group)
                .await
                .map_err(|e| e.to_string())?,
        );
    }
    Ok((domains, hosts, directory))
}

#[cfg(not(feature = "ad"))]
async fn ad_domains(
    _dc: Option<&str>,
    _groups: &[String],
    _timeout: Duration,
) -> Result<(Vec<(String, bool)>, Vec<String>, AdSession), String> {
    Err("this vlmcs-audit was built without Active Directory support: rebuild with `cargo build --release --features ad` (needs libkrb5-dev and libclang-dev)".into())
}
