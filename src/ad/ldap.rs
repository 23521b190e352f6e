//! Reading Active Directory over LDAP (feature `ad`): a SASL GSSAPI bind with a sealing layer
//! on port 389 — what Samba's defaults and Windows DCs that require LDAP signing accept — from
//! the Kerberos ticket cache, then plain searches. Entries are read from the BER the server
//! sent with every step checked: a hostile or broken server gets an error, never a panic.

use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

use ldap3::asn1::StructureTag;
use ldap3::{Ldap, LdapConnAsync, LdapConnSettings, ResultEntry, Scope};

/// Why the directory could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdError {
    /// No TCP connection to the DC.
    Connect { dc: String, detail: String },
    /// The Kerberos bind failed (no ticket, wrong realm, no such service principal).
    Bind { dc: String, detail: String },
    /// The server answered, but not as an Active Directory DC does.
    NotAd { dc: String, detail: String },
    /// A search failed or its answer could not be read.
    Search { what: String, detail: String },
    /// The allowlist group is not in the directory, or not one group.
    Group { group: String, detail: String },
}

impl fmt::Display for AdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Connect { dc, detail } => write!(
                f,
                "cannot reach the domain controller {dc} over LDAP (port 389): {detail}"
            ),
            Self::Bind { dc, detail } => write!(
                f,
                "Kerberos (SASL GSSAPI) bind to {dc} failed: {detail}. A ticket is needed: run \
                 `kinit` (or `kinit -k -t KEYTAB PRINCIPAL`) first, and name the DC by its host \
                 name (ldap/HOST is the service principal)"
            ),
            Self::NotAd { dc, detail } => write!(
                f,
                "{dc} is not an Active Directory domain controller: {detail}"
            ),
            Self::Search { what, detail } => write!(f, "reading {what} from AD: {detail}"),
            Self::Group { group, detail } => write!(
                f,
                "--allow-group {group:?}: {detail} (give the group's sAMAccountName, its name, or its DN)"
            ),
        }
    }
}

impl std::error::Error for AdError {}

/// The naming contexts a DC announces in its rootDSE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RootDse {
    pub default_naming_context: String,
    pub configuration_naming_context: String,
    pub naming_contexts: Vec<String>,
}

/// A bound connection to a DC.
pub struct Directory {
    ldap: Ldap,
    dc: String,
    pub root: RootDse,
}

/// One entry: its DN and its attributes (names lower-cased), every value as bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Entry {
    pub dn: String,
    pub attributes: HashMap<String, Vec<Vec<u8>>>,
}

impl Entry {
    /// The first value of `name` as text.
    pub fn text(&self, name: &str) -> Option<String> {
        let value = self.attributes.get(&name.to_ascii_lowercase())?.first()?;
        std::str::from_utf8(value).ok().map(str::to_owned)
    }

    /// Every value of `name` as text (values that are not UTF-8 are left out).
    pub fn texts(&self, name: &str) -> Vec<String> {
        self.attributes
            .get(&name.to_ascii_lowercase())
            .into_iter()
            .flatten()
            .filter_map(|v| std::str::from_utf8(v).ok().map(str::to_owned))
            .collect()
    }
}

impl Directory {
    /// Connects to `dc` (a host name: Kerberos needs it for `ldap/<dc>`) on port 389 and binds
    /// with the ticket cache's credentials.
    pub async fn connect(dc: &str, timeout: Duration) -> Result<Self, AdError> {
        let settings = LdapConnSettings::new().set_conn_timeout(timeout);
        let url = format!("ldap://{dc}:389");
        let (conn, mut ldap) = LdapConnAsync::with_settings(settings, &url)
            .await
            .map_err(|e| AdError::Connect {
                dc: dc.to_string(),
                detail: e.to_string(),
            })?;
        ldap3::drive!(conn);
        ldap.with_timeout(timeout);
        let bound = ldap
            .sasl_gssapi_bind(dc)
            .await
            .and_then(ldap3::LdapResult::success);
        if let Err(e) = bound {
            return Err(AdError::Bind {
                dc: dc.to_string(),
                detail: e.to_string(),
            });
        }
        let mut directory = Self {
            ldap,
            dc: dc.to_string(),
            root: RootDse {
                default_naming_context: String::new(),
                configuration_naming_context: String::new(),
                naming_contexts: Vec::new(),
            },
        };
        let root = directory
            .search(
                "the rootDSE",
                "",
                Scope::Base,
                "(objectClass=*)",
                &[
                    "defaultNamingContext",
                    "configurationNamingContext",
                    "namingContexts",
                ],
            )
            .await?
            .into_iter()
            .next()
            .unwrap_or_default();
        let not_ad = |what: &str| AdError::NotAd {
            dc: dc.to_string(),
            detail: format!("its rootDSE has no {what}"),
        };
        directory.root = RootDse {
            default_naming_context: root
                .text("defaultNamingContext")
                .ok_or_else(|| not_ad("defaultNamingContext"))?,
            configuration_naming_context: root
                .text("configurationNamingContext")
                .ok_or_else(|| not_ad("configurationNamingContext"))?,
            naming_contexts: root.texts("namingContexts"),
        };
        Ok(directory)
    }

    /// The DNS names of the forest's domains (crossRef objects with the NT-domain flag, 0x2 in
    /// systemFlags) and of its AD-integrated zones (dnsZone objects in the DomainDnsZones and
    /// ForestDnsZones partitions and the legacy System container), without the zones AD keeps
    /// for itself (RootDNSServers, `_msdcs.`, `..TrustAnchors`, `..InProgress`, reverse zones).
    /// Sorted, each once.
    pub async fn dns_domains(&mut self) -> Result<Vec<String>, AdError> {
        let partitions = format!("CN=Partitions,{}", self.root.configuration_naming_context);
        let mut names: Vec<String> = self
            .search(
                "the forest's domains",
                &partitions,
                Scope::OneLevel,
                "(&(objectClass=crossRef)(systemFlags:1.2.840.113556.1.4.803:=2))",
                &["dnsRoot"],
            )
            .await?
            .iter()
            .flat_map(|e| e.texts("dnsRoot"))
            .collect();
        let mut containers: Vec<String> = self
            .root
            .naming_contexts
            .iter()
            .filter(|nc| {
                let lower = nc.to_ascii_lowercase();
                lower.starts_with("dc=domaindnszones,") || lower.starts_with("dc=forestdnszones,")
            })
            .map(|nc| format!("CN=MicrosoftDNS,{nc}"))
            .collect();
        containers.push(format!(
            "CN=MicrosoftDNS,CN=System,{}",
            self.root.default_naming_context
        ));
        for container in containers {
            // A container that does not exist (no legacy zones) is not an error.
            let zones = match self
                .search(
                    "DNS zones",
                    &container,
                    Scope::OneLevel,
                    "(objectClass=dnsZone)",
                    &["dc"],
                )
                .await
            {
                Ok(zones) => zones,
                Err(AdError::Search { detail, .. }) if detail.contains("noSuchObject") => continue,
                Err(e) => return Err(e),
            };
            names.extend(zones.iter().filter_map(|e| e.text("dc")));
        }
        let mut names: Vec<String> = names
            .into_iter()
            .map(|n| n.trim_end_matches('.').to_ascii_lowercase())
            .filter(|n| is_client_domain(n))
            .collect();
        names.sort();
        names.dedup();
        Ok(names)
    }

    /// The DNS host names of the computers in `group` (its sAMAccountName, cn or DN), nested
    /// membership included (LDAP_MATCHING_RULE_IN_CHAIN). Sorted, each once.
    pub async fn group_hosts(&mut self, group: &str) -> Result<Vec<String>, AdError> {
        let base = self.root.default_naming_context.clone();
        let group_error = |detail: String| AdError::Group {
            group: group.to_string(),
            detail,
        };
        let filter = if looks_like_dn(group) {
            format!(
                "(&(objectClass=group)(distinguishedName={}))",
                ldap3::ldap_escape(group)
            )
        } else {
            let name = ldap3::ldap_escape(group);
            format!("(&(objectClass=group)(|(sAMAccountName={name})(cn={name})))")
        };
        let groups = self
            .search(
                "the allowlist group",
                &base,
                Scope::Subtree,
                &filter,
                &["cn"],
            )
            .await?;
        let dn = match groups.as_slice() {
            [one] => one.dn.clone(),
            [] => return Err(group_error(format!("no such group under {base}"))),
            many => {
                return Err(group_error(format!(
                    "{} groups match: {}",
                    many.len(),
                    many.iter()
                        .map(|g| g.dn.as_str())
                        .collect::<Vec<_>>()
                        .join("; ")
                )));
            }
        };
        let members = self
            .search(
                "the allowlist group's members",
                &base,
                Scope::Subtree,
                &format!(
                    "(&(objectClass=computer)(memberOf:1.2.840.113556.1.4.1941:={}))",
                    ldap3::ldap_escape(&dn)
                ),
                &["dNSHostName"],
            )
            .await?;
        let mut hosts: Vec<String> = members
            .iter()
            .filter_map(|m| m.text("dNSHostName"))
            .map(|h| h.trim_end_matches('.').to_ascii_lowercase())
            .filter(|h| !h.is_empty())
            .collect();
        hosts.sort();
        hosts.dedup();
        if hosts.is_empty() {
            return Err(group_error(format!(
                "{dn} has no computer members with a DNS host name: an allowlist from it would authorize nobody"
            )));
        }
        Ok(hosts)
    }

    async fn search(
        &mut self,
        what: &str,
        base: &str,
        scope: Scope,
        filter: &str,
        attributes: &[&str],
    ) -> Result<Vec<Entry>, AdError> {
        let failed = |detail: String| AdError::Search {
            what: what.to_string(),
            detail,
        };
        let result = self
            .ldap
            .search(base, scope, filter, attributes.to_vec())
            .await
            .map_err(|e| failed(e.to_string()))?;
        let (entries, _) = result.success().map_err(|e| failed(e.to_string()))?;
        entries
            .into_iter()
            .map(|re| {
                entry(re).ok_or_else(|| {
                    failed(format!("{} sent an entry that is not valid LDAP", self.dc))
                })
            })
            .collect()
    }
}

/// The domain controllers of `domain`, found the way Windows finds one: the SRV records of
/// `_ldap._tcp.dc._msdcs.<domain>` from the system's resolvers, best first (lowest priority,
/// then highest weight).
pub async fn find_dcs(domain: &str, timeout: Duration) -> Result<Vec<String>, AdError> {
    use hickory_proto::rr::{Name, RData, RecordType};
    let query = format!("_ldap._tcp.dc._msdcs.{}.", domain.trim_end_matches('.'));
    let failed = |detail: String| AdError::Search {
        what: format!("the domain controllers of {domain} ({query} SRV)"),
        detail,
    };
    let name = Name::from_ascii(&query).map_err(|e| failed(e.to_string()))?;
    let resolvers = crate::discover::system_resolvers().map_err(|e| failed(e.to_string()))?;
    let mut last = String::from("no resolver in the system's configuration");
    for resolver in resolvers {
        let options = crate::dns::QueryOptions {
            recursion_desired: true,
            timeout,
        };
        let reply = match crate::dns::query(resolver, &name, RecordType::SRV, options).await {
            Ok(reply) => reply,
            Err(e) => {
                last = format!("{resolver}: {e}");
                continue;
            }
        };
        let mut found: Vec<(u16, std::cmp::Reverse<u16>, String)> = reply
            .message
            .answers
            .iter()
            .filter_map(|r| match &r.data {
                RData::SRV(srv) if !srv.target.is_root() => Some((
                    srv.priority,
                    std::cmp::Reverse(srv.weight),
                    srv.target
                        .to_ascii()
                        .trim_end_matches('.')
                        .to_ascii_lowercase(),
                )),
                _ => None,
            })
            .collect();
        found.sort();
        let mut dcs: Vec<String> = found.into_iter().map(|(_, _, host)| host).collect();
        dcs.dedup();
        if !dcs.is_empty() {
            return Ok(dcs);
        }
        last = format!("{resolver}: {}", reply.message.metadata.response_code);
    }
    Err(failed(format!(
        "no domain controller found ({last}); give one with --dc HOST"
    )))
}

/// `CN=...,DC=...`: a distinguished name rather than a group's name.
fn looks_like_dn(text: &str) -> bool {
    text.contains('=') && text.contains(',')
}

/// A zone KMS clients could search: not one AD keeps for itself.
fn is_client_domain(name: &str) -> bool {
    !(name.is_empty()
        || name == "rootdnsservers"
        || name.starts_with("..")
        || name.starts_with('_')
        || name.contains("._msdcs.")
        || name.ends_with(".in-addr.arpa")
        || name.ends_with(".ip6.arpa"))
}

/// A SearchResultEntry (RFC 4511 4.5.2: `[APPLICATION 4] SEQUENCE { objectName, attributes }`)
/// read without trusting it.
fn entry(result: ResultEntry) -> Option<Entry> {
    let mut parts = result.0.match_id(4)?.expect_constructed()?.into_iter();
    let dn = String::from_utf8(parts.next()?.expect_primitive()?).ok()?;
    let mut attributes: HashMap<String, Vec<Vec<u8>>> = HashMap::new();
    for attribute in parts.next()?.expect_constructed()? {
        let mut pair = attribute.expect_constructed()?.into_iter();
        let name = String::from_utf8(pair.next()?.expect_primitive()?).ok()?;
        let values = pair
            .next()?
            .expect_constructed()?
            .into_iter()
            .map(StructureTag::expect_primitive)
            .collect::<Option<Vec<Vec<u8>>>>()?;
        attributes
            .entry(name.to_ascii_lowercase())
            .or_default()
            .extend(values);
    }
    Some(Entry { dn, attributes })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_zones_ad_keeps_for_itself_are_not_client_domains() {
        for own in [
            "rootdnsservers",
            "_msdcs.ad.test",
            "..trustanchors",
            "..inprogress-1234",
            "2.0.127.in-addr.arpa",
            "",
        ] {
            assert!(!is_client_domain(own), "{own}");
        }
        for client in ["ad.test", "branch.ad.test", "corp.example"] {
            assert!(is_client_domain(client), "{client}");
        }
    }
}
