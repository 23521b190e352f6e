//! This machine's DNS configuration (`/etc/resolv.conf`; the registry on Windows): the
//! resolvers it uses and the domains it searches, where a KMS client running here would look.

use std::collections::BTreeSet;
use std::net::SocketAddr;

use crate::model::normalize_name;

/// The configuration could not be read. Its text is hickory's; callers say what it was for.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SystemConfigError(
    /// hickory's error, whose type differs by platform.
    #[source]
    Box<dyn std::error::Error + Send + Sync>,
);

/// The recursive resolvers this machine uses, each on port 53.
pub fn resolvers() -> Result<Vec<SocketAddr>, SystemConfigError> {
    let (config, _) = hickory_resolver::system_conf::read_system_conf()
        .map_err(|e| SystemConfigError(Box::new(e)))?;
    Ok(config
        .name_servers()
        .iter()
        .map(|ns| SocketAddr::new(ns.ip, 53))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect())
}

/// The machine's DNS suffix search list (the primary domain first), where a KMS client
/// running here would look for `_vlmcs._tcp` records.
#[cfg(windows)]
pub fn search_domains() -> Result<Vec<String>, SystemConfigError> {
    Ok(windows_search_domains())
}

/// Where a Windows KMS client looks: the primary DNS suffix first, then the suffix search list
/// (Group Policy's, else the one configured), else each interface's own suffix (set by hand or
/// by DHCP). Read from the registry, where Windows keeps them (hickory's reader looks for them
/// as values of the wrong key and finds none).
#[cfg(windows)]
fn windows_search_domains() -> Vec<String> {
    use crate::support::windows::{machine_string, machine_subkeys};
    const TCPIP: &str = r"SYSTEM\CurrentControlSet\Services\Tcpip\Parameters";
    const POLICY: &str = r"SOFTWARE\Policies\Microsoft\Windows NT\DNSClient";
    let primary = machine_string(POLICY, "PrimaryDnsSuffix")
        .or_else(|| machine_string(TCPIP, "Domain"))
        .or_else(|| machine_string(TCPIP, "NV Domain"));
    let mut names: Vec<String> = primary.into_iter().collect();
    match machine_string(POLICY, "SearchList").or_else(|| machine_string(TCPIP, "SearchList")) {
        Some(list) => names.extend(list.split([',', ' ']).map(str::to_owned)),
        None => {
            let interfaces = format!(r"{TCPIP}\Interfaces");
            for interface in machine_subkeys(&interfaces) {
                let key = format!(r"{interfaces}\{interface}");
                names.extend(
                    machine_string(&key, "Domain").or_else(|| machine_string(&key, "DhcpDomain")),
                );
            }
        }
    }
    distinct_names(names)
}

/// The machine's DNS suffix search list (the primary domain first), where a KMS client
/// running here would look for `_vlmcs._tcp` records.
#[cfg(not(windows))]
pub fn search_domains() -> Result<Vec<String>, SystemConfigError> {
    let (config, _) = hickory_resolver::system_conf::read_system_conf()
        .map_err(|e| SystemConfigError(Box::new(e)))?;
    Ok(distinct_names(
        config
            .domain()
            .into_iter()
            .chain(config.search())
            .map(|name| name.to_ascii()),
    ))
}

/// The names normalized, each once, in their order; empty ones left out.
fn distinct_names(names: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for name in names {
        let n = normalize_name(&name);
        if !n.is_empty() && !out.contains(&n) {
            out.push(n);
        }
    }
    out
}
