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
pub fn search_domains() -> Result<Vec<String>, SystemConfigError> {
    let (config, _) = hickory_resolver::system_conf::read_system_conf()
        .map_err(|e| SystemConfigError(Box::new(e)))?;
    let mut out: Vec<String> = Vec::new();
    for name in config.domain().into_iter().chain(config.search()) {
        let n = normalize_name(&name.to_ascii());
        if !n.is_empty() && !out.contains(&n) {
            out.push(n);
        }
    }
    Ok(out)
}
