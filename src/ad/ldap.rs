//! Reading Active Directory over LDAP (feature `ad`): a SASL GSSAPI bind with a sealing layer
//! on port 389 — what Samba's defaults and Windows DCs that require LDAP signing accept — from
//! the Kerberos ticket cache, then plain searches. Entries are read from the BER the server
//! sent with every step checked: a hostile or broken server gets an error, never a panic.

use crate::model::name::without_final_dot;
use crate::model::normalize_name;
use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

use ldap3::asn1::StructureTag;
use ldap3::controls::RawControl;
use ldap3::{Ldap, LdapConnAsync, LdapConnSettings, ResultEntry, Scope};

use super::dns_record::{self, RecordData};
use super::node::{AdNode, AdRecord, BroadGrant, Principal, ZoneAging};
use super::security::{SecurityDescriptor, Sid};

/// Why the directory could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdError {
    /// No TCP connection to the DC.
    Connect {
        /// The domain controller.
        dc: String,
        /// What the network said.
        detail: String,
    },
    /// The Kerberos bind failed (no ticket, wrong realm, no such service principal).
    Bind {
        /// The domain controller.
        dc: String,
        /// What SASL or Kerberos said.
        detail: String,
    },
    /// The server answered, but not as an Active Directory DC does.
    NotAd {
        /// The server.
        dc: String,
        /// What it lacks.
        detail: String,
    },
    /// A search failed or its answer could not be read.
    Search {
        /// What was read.
        what: String,
        /// What the server said.
        detail: String,
    },
    /// The allowlist group is not in the directory, or not one group.
    Group {
        /// The group as given.
        group: String,
        /// What is wrong.
        detail: String,
    },
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
    pub(crate) default_naming_context: String,
    pub(crate) configuration_naming_context: String,
    pub(crate) naming_contexts: Vec<String>,
}

/// A bound connection to a DC.
pub struct Directory {
    ldap: Ldap,
    dc: String,
    /// For every operation: ldap3 applies a timeout to the next operation only.
    timeout: Duration,
    /// What the DC's root DSE says (naming contexts, DNS host name).
    pub root: RootDse,
    /// The AD-integrated zones, read once: the domains to audit and their nodes both need them.
    zones: Option<std::sync::Arc<[Zone]>>,
}

/// One entry: its DN and its attributes (names lower-cased), every value as bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Entry {
    /// The entry's distinguished name.
    pub dn: String,
    /// Its attributes by lower-cased name, every value as bytes.
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
        announces_active_directory(&mut ldap, dc, timeout).await?;
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
            timeout,
            zones: None,
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
    /// Sorted, each once, each with whether it is one of the forest's domains: where KMS hosts
    /// publish themselves by default, so records are expected there and not in other zones.
    pub async fn dns_domains(&mut self) -> Result<Vec<(String, bool)>, AdError> {
        let partitions = format!("CN=Partitions,{}", self.root.configuration_naming_context);
        let mut names: Vec<(String, bool)> = self
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
            .map(|n| (n, true))
            .collect();
        names.extend(self.zones().await?.iter().map(|z| (z.name.clone(), false)));
        let mut names: Vec<(String, bool)> = names
            .into_iter()
            .map(|(n, domain)| (normalize_name(&n), domain))
            .filter(|(n, _)| is_client_domain(n))
            .collect();
        // A forest domain sorts before the zone of the same name, and is the one kept.
        names.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
        names.dedup_by(|later, kept| later.0 == kept.0);
        Ok(names)
    }

    /// The AD-integrated zones: the dnsZone objects in the DomainDnsZones and ForestDnsZones
    /// partitions and the legacy System container, with their DNs and `dNSProperty` values.
    /// Read on first use.
    async fn zones(&mut self) -> Result<std::sync::Arc<[Zone]>, AdError> {
        if let Some(zones) = &self.zones {
            return Ok(std::sync::Arc::clone(zones));
        }
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
        let mut zones = Vec::new();
        for container in containers {
            // A container that does not exist (no legacy zones) is not an error.
            let found = match self
                .search(
                    "DNS zones",
                    &container,
                    Scope::OneLevel,
                    "(objectClass=dnsZone)",
                    &["dc", "dNSProperty"],
                )
                .await
            {
                Ok(found) => found,
                Err(AdError::Search { detail, .. }) if detail.contains("noSuchObject") => continue,
                Err(e) => return Err(e),
            };
            zones.extend(found.into_iter().filter_map(|mut e| {
                let name = normalize_name(&e.text("dc")?);
                let properties = e.attributes.remove("dnsproperty").unwrap_or_default();
                Some(Zone {
                    name,
                    dn: e.dn,
                    properties,
                })
            }));
        }
        let zones: std::sync::Arc<[Zone]> = zones.into();
        self.zones = Some(std::sync::Arc::clone(&zones));
        Ok(zones)
    }

    /// What AD holds about the `_vlmcs._tcp` node of each of `domains` that lies in an
    /// AD-integrated zone: the zone's aging, the node's owner and broad grants (read with the
    /// SD-flags control, owner + DACL, which an ordinary user may read), and its records with
    /// the computer account each names. Domains outside AD's zones are left out.
    pub async fn vlmcs_nodes(
        &mut self,
        domains: &[String],
        hosts_group: Option<&str>,
    ) -> Result<HashMap<String, AdNode>, AdError> {
        let zones = self.zones().await?;
        let mut accounts = Accounts::default();
        let mut nodes = HashMap::new();
        for domain in domains {
            let domain = normalize_name(domain);
            // The zone that holds `_vlmcs._tcp.<domain>`: the longest one it ends in.
            let Some(zone) = zones
                .iter()
                .filter(|z| domain == z.name || domain.ends_with(&format!(".{}", z.name)))
                .max_by_key(|z| z.name.len())
            else {
                continue;
            };
            let node = self.node(&domain, zone, hosts_group, &mut accounts).await?;
            nodes.insert(domain, node);
        }
        Ok(nodes)
    }

    /// What AD holds about `domain`'s `_vlmcs._tcp` node in `zone`: the zone's aging, the
    /// node's owner and broad grants, its SRV records with the computer account each names.
    /// A node that is absent or tombstoned has none of these; what could not be read is a note.
    async fn node(
        &mut self,
        domain: &str,
        zone: &Zone,
        hosts_group: Option<&str>,
        accounts: &mut Accounts,
    ) -> Result<AdNode, AdError> {
        let mut node = unread_node(zone, hosts_group);
        let relative = match domain.strip_suffix(&zone.name) {
            Some("") | None => "_vlmcs._tcp".to_string(),
            Some(rest) => format!("_vlmcs._tcp.{}", without_final_dot(rest)),
        };
        let found = self
            .search_with(
                "the _vlmcs._tcp node",
                &zone.dn,
                Scope::OneLevel,
                &format!(
                    "(&(objectClass=dnsNode)(dc={}))",
                    ldap3::ldap_escape(&relative)
                ),
                &["dnsRecord", "nTSecurityDescriptor", "dNSTombstoned"],
                Some(sd_flags_owner_and_dacl()),
            )
            .await?;
        let Some(entry) = found.into_iter().next() else {
            return Ok(node);
        };
        if entry
            .text("dNSTombstoned")
            .is_some_and(|t| t.eq_ignore_ascii_case("TRUE"))
        {
            return Ok(node);
        }
        node.node_dn = Some(entry.dn.clone());
        self.read_security(&mut node, &entry, accounts).await?;
        self.read_records(&mut node, &entry, accounts).await?;
        Ok(node)
    }

    /// The node's owner and broad grants, from its security descriptor.
    async fn read_security(
        &mut self,
        node: &mut AdNode,
        entry: &Entry,
        accounts: &mut Accounts,
    ) -> Result<(), AdError> {
        match entry.attributes.get("ntsecuritydescriptor").and_then(|v| v.first()) {
            None => node.notes.push(format!(
                "the security descriptor of {} was not returned (the account lacks the right to read it): its owner and permissions are not reported",
                entry.dn
            )),
            Some(bytes) => match SecurityDescriptor::parse(bytes) {
                Err(e) => node.notes.push(format!(
                    "the security descriptor of {} could not be read ({e}): its owner and permissions are not reported",
                    entry.dn
                )),
                Ok(sd) => {
                    if let Some(owner) = &sd.owner {
                        node.owner = Some(self.principal(owner, accounts).await?);
                    }
                    node.broad_grants = broad_grants(&sd);
                }
            },
        }
        Ok(())
    }

    /// The node's SRV records, each with the computer account its target names, in rdata order.
    async fn read_records(
        &mut self,
        node: &mut AdNode,
        entry: &Entry,
        accounts: &mut Accounts,
    ) -> Result<(), AdError> {
        for value in entry.attributes.get("dnsrecord").into_iter().flatten() {
            let record = match dns_record::parse(value) {
                Ok(record) => record,
                Err(e) => {
                    node.notes
                        .push(format!("a record of {} could not be read: {e}", entry.dn));
                    continue;
                }
            };
            let RecordData::Srv {
                priority,
                weight,
                port,
                target,
            } = record.data
            else {
                continue;
            };
            let host_account = self.host_account(&target.to_string(), accounts).await?;
            node.records.push(AdRecord {
                priority,
                weight,
                port,
                target,
                ttl: record.ttl,
                stamp: record.stamp.unix_seconds().map(|s| {
                    crate::support::time::Timestamp(
                        std::time::UNIX_EPOCH
                            + Duration::from_secs(u64::try_from(s).unwrap_or_default()),
                    )
                }),
                host_account,
            });
        }
        node.records.sort_by(|a, b| a.rdata().cmp(&b.rdata()));
        Ok(())
    }

    /// The account a SID names (searched by `objectSid`), once per SID.
    async fn principal(
        &mut self,
        sid: &Sid,
        accounts: &mut Accounts,
    ) -> Result<Principal, AdError> {
        let text = sid.to_string();
        if let Some(known) = accounts.by_sid.get(&text) {
            return Ok(known.clone());
        }
        let entry = self
            .find_in_domain(
                "the node owner's account",
                &format!("(objectSid={text})"),
                &["sAMAccountName", "dNSHostName"],
            )
            .await?;
        let principal = Principal {
            sid: text.clone(),
            account: entry.as_ref().and_then(|e| e.text("sAMAccountName")),
            host: entry
                .as_ref()
                .and_then(|e| e.text("dNSHostName"))
                .map(|h| normalize_name(&h)),
        };
        accounts.by_sid.insert(text, principal.clone());
        Ok(principal)
    }

    /// The computer account whose `dNSHostName` is `target`, once per name.
    async fn host_account(
        &mut self,
        target: &str,
        accounts: &mut Accounts,
    ) -> Result<Option<Principal>, AdError> {
        let host = normalize_name(target);
        if let Some(known) = accounts.by_host.get(&host) {
            return Ok(known.clone());
        }
        let found = self
            .find_in_domain(
                "the computer account of a record's host",
                &format!(
                    "(&(objectClass=computer)(dNSHostName={}))",
                    ldap3::ldap_escape(&host)
                ),
                &["sAMAccountName", "objectSid"],
            )
            .await?;
        let principal = found.map(|e| Principal {
            sid: e
                .attributes
                .get("objectsid")
                .and_then(|v| v.first())
                .and_then(|b| Sid::parse(b).ok())
                .map(|(sid, _)| sid.to_string())
                .unwrap_or_default(),
            account: e.text("sAMAccountName"),
            host: Some(host.clone()),
        });
        accounts.by_host.insert(host, principal.clone());
        Ok(principal)
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
            .map(|h| normalize_name(&h))
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

    /// The first entry `filter` finds in the domain's naming context.
    async fn find_in_domain(
        &mut self,
        what: &str,
        filter: &str,
        attributes: &[&str],
    ) -> Result<Option<Entry>, AdError> {
        let base = self.root.default_naming_context.clone();
        let found = self
            .search(what, &base, Scope::Subtree, filter, attributes)
            .await?;
        Ok(found.into_iter().next())
    }

    async fn search(
        &mut self,
        what: &str,
        base: &str,
        scope: Scope,
        filter: &str,
        attributes: &[&str],
    ) -> Result<Vec<Entry>, AdError> {
        self.search_with(what, base, scope, filter, attributes, None)
            .await
    }

    async fn search_with(
        &mut self,
        what: &str,
        base: &str,
        scope: Scope,
        filter: &str,
        attributes: &[&str],
        control: Option<RawControl>,
    ) -> Result<Vec<Entry>, AdError> {
        let failed = |detail: String| AdError::Search {
            what: what.to_string(),
            detail,
        };
        if let Some(control) = control {
            self.ldap.with_controls(control);
        }
        self.ldap.with_timeout(self.timeout);
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

/// LDAP_CAP_ACTIVE_DIRECTORY_OID: in a rootDSE's supportedCapabilities, "this is AD".
const CAPABILITY_ACTIVE_DIRECTORY: &str = "1.2.840.113556.1.4.800";

/// Reads the rootDSE anonymously (AD lets anyone read it) before any Kerberos is tried: a
/// server that does not announce Active Directory, or offers no GSSAPI, is told apart from a
/// DC the bind failed on. A server that hides its rootDSE from anonymous readers is left to
/// the bind and the rootDSE checks after it.
async fn announces_active_directory(
    ldap: &mut Ldap,
    dc: &str,
    timeout: Duration,
) -> Result<(), AdError> {
    ldap.with_timeout(timeout);
    let Ok((entries, _)) = ldap
        .search(
            "",
            Scope::Base,
            "(objectClass=*)",
            vec!["supportedCapabilities", "supportedSASLMechanisms"],
        )
        .await
        .and_then(ldap3::SearchResult::success)
    else {
        return Ok(());
    };
    let Some(root) = entries.into_iter().next().and_then(entry) else {
        return Ok(());
    };
    let not_ad = |detail: String| AdError::NotAd {
        dc: dc.to_string(),
        detail,
    };
    if !root
        .texts("supportedCapabilities")
        .iter()
        .any(|c| c == CAPABILITY_ACTIVE_DIRECTORY)
    {
        return Err(not_ad(format!(
            "its rootDSE does not announce Active Directory ({CAPABILITY_ACTIVE_DIRECTORY} is not among its supportedCapabilities): name a domain controller with --dc"
        )));
    }
    let mechanisms = root.texts("supportedSASLMechanisms");
    if !mechanisms.iter().any(|m| m.eq_ignore_ascii_case("GSSAPI")) {
        return Err(not_ad(format!(
            "it offers no Kerberos (SASL GSSAPI) bind, only {}",
            if mechanisms.is_empty() {
                "none".to_string()
            } else {
                mechanisms.join(", ")
            }
        )));
    }
    Ok(())
}

/// The domain controllers of `domain`, found the way Windows finds one: the SRV records of
/// `_ldap._tcp.dc._msdcs.<domain>` from the system's resolvers, best first (lowest priority,
/// then highest weight).
pub async fn find_dcs(domain: &str, timeout: Duration) -> Result<Vec<String>, AdError> {
    use hickory_proto::rr::{Name, RData, RecordType};
    let query = format!("_ldap._tcp.dc._msdcs.{}.", without_final_dot(domain));
    let failed = |detail: String| AdError::Search {
        what: format!("the domain controllers of {domain} ({query} SRV)"),
        detail,
    };
    let name = Name::from_ascii(&query).map_err(|e| failed(e.to_string()))?;
    let resolvers = crate::dns::system::resolvers().map_err(|e| failed(e.to_string()))?;
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
                    normalize_name(&srv.target.to_ascii()),
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

/// An AD-integrated zone.
struct Zone {
    name: String,
    dn: String,
    properties: Vec<Vec<u8>>,
}

/// Accounts already looked up, by SID and by host name.
#[derive(Default)]
struct Accounts {
    by_sid: HashMap<String, Principal>,
    by_host: HashMap<String, Option<Principal>>,
}

/// LDAP_SERVER_SD_FLAGS_OID asking for the owner and the DACL only (`SEQUENCE { INTEGER 5 }`):
/// what an ordinary authenticated user may read; without it the descriptor is left out.
fn sd_flags_owner_and_dacl() -> RawControl {
    RawControl {
        ctype: "1.2.840.113556.1.4.801".into(),
        crit: false,
        val: Some(vec![0x30, 0x03, 0x02, 0x01, 0x05]),
    }
}

/// A node before its entry is read: the zone's aging (a note when it cannot be read: no
/// record is then judged stale) and nothing else.
fn unread_node(zone: &Zone, hosts_group: Option<&str>) -> AdNode {
    let mut notes = Vec::new();
    let aging = match ZoneAging::from_properties(zone.properties.iter().map(Vec::as_slice)) {
        Ok(aging) => Some(aging),
        Err(e) => {
            notes.push(format!(
                "the aging settings of zone {} could not be read ({e}): no record is judged stale",
                zone.name
            ));
            None
        }
    };
    AdNode {
        zone: zone.name.clone(),
        node_dn: None,
        read_at: crate::support::time::Timestamp::now(),
        aging,
        owner: None,
        broad_grants: Vec::new(),
        records: Vec::new(),
        hosts_group: hosts_group.map(str::to_owned),
        notes,
    }
}

/// The DACL entries that let a broad group publish a host on the node.
fn broad_grants(sd: &SecurityDescriptor) -> Vec<BroadGrant> {
    if sd.dacl.is_none() {
        // No DACL at all: every right to everyone.
        return vec![BroadGrant {
            group: "Everyone".into(),
            sid: "S-1-1-0".into(),
            rights: vec!["every right (the node has no DACL)".into()],
            inherited: false,
        }];
    }
    sd.dacl
        .iter()
        .flatten()
        .filter_map(|ace| {
            let sid = ace.sid.as_ref()?;
            let group = sid.broad_group()?;
            let rights = ace.publishing_rights();
            (!rights.is_empty()).then(|| BroadGrant {
                group: group.to_string(),
                sid: sid.to_string(),
                rights: rights.into_iter().map(str::to_owned).collect(),
                inherited: ace.inherited(),
            })
        })
        .collect()
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
