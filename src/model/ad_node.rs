//! What Active Directory holds about one domain's `_vlmcs._tcp` node, as the report keeps it:
//! the zone's aging settings, the node's owner, the broad groups its DACL lets publish, and
//! each record's registration time and the computer account whose host it names. Read by
//! [`crate::ad`]'s LDAP reader (feature `ad`), judged by `classify`, rendered by every report format.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::SrvRecord;
use crate::model::name::DnsName;
use crate::support::time::Timestamp;

/// One domain's `_vlmcs._tcp` node as AD stores it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdNode {
    /// The AD-integrated zone that holds the node.
    pub zone: String,
    /// The node's DN; `None` when the zone has no such node (nothing published through AD).
    pub node_dn: Option<String>,
    /// When the directory was read: the stamps' ages are measured from here.
    pub read_at: Timestamp,
    /// The zone's aging settings (its `dNSProperty` values); `None` when they were unreadable.
    pub aging: Option<ZoneAging>,
    /// The node's owner: the account that created it (the first host to register, unless an
    /// administrator took it over). `None` when the security descriptor could not be read.
    pub owner: Option<Principal>,
    /// Entries of the node's DACL that let a broad group publish a host here.
    #[serde(default)]
    pub broad_grants: Vec<BroadGrant>,
    /// The node's SRV records with what AD keeps about each.
    #[serde(default)]
    pub records: Vec<AdRecord>,
    /// The KMS hosts' group the allowlist came from (`--allow-group`), for the fix-it commands.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hosts_group: Option<String>,
    /// What could not be read (then the findings that need it are not made, never guessed).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

impl AdNode {
    /// What AD holds about `record` (the same priority, weight, port and target), if the node
    /// holds it.
    pub fn record_for(&self, record: &SrvRecord) -> Option<&AdRecord> {
        self.records
            .iter()
            .find(|r| r.rdata() == (record.priority, record.weight, record.port, &record.target))
    }
}

/// A zone's aging (scavenging) settings, MS-DNSP 2.3.2.1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ZoneAging {
    /// Whether aging (scavenging) is on for the zone.
    pub enabled: bool,
    /// Hours after a refresh during which another refresh does not move the stamp.
    pub no_refresh_hours: u32,
    pub(crate) refresh_hours: u32,
}

/// An account as the directory names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Principal {
    /// The SID, `S-1-5-21-...`.
    pub sid: String,
    /// `sAMAccountName` (`KMS1$` for a computer), when the SID is an account of the domain.
    pub account: Option<String>,
    /// `dNSHostName`, for a computer account.
    pub host: Option<String>,
}

impl fmt::Display for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.account, &self.host) {
            (Some(account), Some(host)) => write!(f, "{account} ({host})"),
            (Some(account), None) => f.write_str(account),
            _ => write!(f, "{} (no account of this domain)", self.sid),
        }
    }
}

/// A DACL entry that gives a broad group (Everyone, Authenticated Users, Domain Computers,
/// Domain Users) a right that lets any of its members publish a host on the node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BroadGrant {
    /// The group's name.
    pub group: String,
    /// Its SID.
    pub sid: String,
    /// The rights that let a member publish, in words.
    pub rights: Vec<String>,
    /// Inherited from the zone or above: to be changed there, not on the node.
    pub inherited: bool,
}

/// One SRV value of the node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdRecord {
    /// Lower is tried first.
    pub priority: u16,
    /// Share among records of equal priority.
    pub weight: u16,
    /// The port clients connect to.
    pub port: u16,
    /// The host clients are sent to.
    pub target: DnsName,
    /// Time to live, in seconds.
    pub ttl: u32,
    /// The registration (or, with aging on, last refresh) time; `None` for a static record.
    pub stamp: Option<Timestamp>,
    /// The computer account whose `dNSHostName` is the target: a KMS host registers its own
    /// name, so for a dynamic record this is the machine that registered it.
    pub host_account: Option<Principal>,
}

impl AdRecord {
    /// The record's data, for comparing and sorting.
    pub(crate) fn rdata(&self) -> (u16, u16, u16, &DnsName) {
        (self.priority, self.weight, self.port, &self.target)
    }
}

/// One `dNSProperty` value (MS-DNSP 2.3.2.1): its property id and data. Layout, all
/// little-endian: DataLength (4), NameLength (4), Flag (4), Version (4, = 1), Id (4), Data
/// (DataLength bytes), Name (measured: 1 byte after a 1-byte datum, 4 after a DWORD).
pub fn parse_property(value: &[u8]) -> Result<(u32, &[u8]), PropertyError> {
    let word = |at: usize| -> Option<u32> {
        Some(u32::from_le_bytes(value.get(at..at + 4)?.try_into().ok()?))
    };
    let (Some(length), Some(version), Some(id)) = (word(0), word(12), word(16)) else {
        return Err(PropertyError::ShortHeader(value.len()));
    };
    if version != 1 {
        return Err(PropertyError::Version(version));
    }
    let data = usize::try_from(length)
        .ok()
        .and_then(|len| value.get(20..20usize.checked_add(len)?))
        .ok_or(PropertyError::ShortData {
            declared: length,
            held: value.len() - 20,
        })?;
    Ok((id, data))
}

/// Why a zone's `dNSProperty` value could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PropertyError {
    /// Fewer bytes than the 20-byte header.
    #[error("a dNSProperty value of {0} bytes (the header alone is 20)")]
    ShortHeader(usize),
    /// A version the specification does not define.
    #[error("a dNSProperty value of version {0} (only 1 is defined)")]
    Version(u32),
    /// Less data than the header declares.
    #[error("a dNSProperty value declares {declared} bytes of data but holds {held}")]
    ShortData {
        /// What the header says.
        declared: u32,
        /// What follows the header.
        held: usize,
    },
    /// A property that is a DWORD holds another size.
    #[error("dNSProperty {id:#x} holds {len} bytes, not 4")]
    NotADword {
        /// The property id.
        id: u32,
        /// Its data's size.
        len: usize,
    },
}

const PROPERTY_NOREFRESH_INTERVAL: u32 = 0x10;
const PROPERTY_REFRESH_INTERVAL: u32 = 0x20;
const PROPERTY_AGING_STATE: u32 = 0x40;
/// The specification's default for both intervals (7 days), also what a 0 stands for.
const DEFAULT_INTERVAL_HOURS: u32 = 168;

impl ZoneAging {
    /// The aging settings from a zone's `dNSProperty` values. A property that is absent or
    /// has no data takes the specification's default (aging off, 168 hours); one that is
    /// present but unreadable is an error: aging is then unknown, not assumed off.
    pub fn from_properties<'a>(
        values: impl IntoIterator<Item = &'a [u8]>,
    ) -> Result<Self, PropertyError> {
        let mut aging = Self {
            enabled: false,
            no_refresh_hours: DEFAULT_INTERVAL_HOURS,
            refresh_hours: DEFAULT_INTERVAL_HOURS,
        };
        for value in values {
            let (id, data) = parse_property(value)?;
            if data.is_empty() {
                continue;
            }
            let dword = || -> Result<u32, PropertyError> {
                let bytes: [u8; 4] = data.try_into().map_err(|_| PropertyError::NotADword {
                    id,
                    len: data.len(),
                })?;
                Ok(u32::from_le_bytes(bytes))
            };
            match id {
                PROPERTY_AGING_STATE => aging.enabled = dword()? != 0,
                PROPERTY_NOREFRESH_INTERVAL => {
                    aging.no_refresh_hours = Some(dword()?)
                        .filter(|h| *h != 0)
                        .unwrap_or(DEFAULT_INTERVAL_HOURS);
                }
                PROPERTY_REFRESH_INTERVAL => {
                    aging.refresh_hours = Some(dword()?)
                        .filter(|h| *h != 0)
                        .unwrap_or(DEFAULT_INTERVAL_HOURS);
                }
                _ => {}
            }
        }
        Ok(aging)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `dNSProperty` values of a Samba zone after `samba-tool dns zoneoptions ... --aging=1
    /// --norefreshinterval=1 --refreshinterval=1` (taken from the DC with ldapsearch).
    const SAMBA_AGING_ON: [&str; 7] = [
        "04000000000000000000000001000000010000000100000000000000",
        "0100000000000000000000000100000002000000020000000000",
        "08000000000000000000000001000000080000000000000000000000000000000000000000",
        "04000000000000000000000001000000100000000100000000000000",
        "04000000000000000000000001000000200000000100000000000000",
        "04000000000000000000000001000000400000000100000000000000",
        "04000000000000000000000001000000120000000000000000000000",
    ];

    fn hex(text: &str) -> Vec<u8> {
        (0..text.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn samba_zone_properties_give_its_aging() {
        let values: Vec<Vec<u8>> = SAMBA_AGING_ON.iter().map(|v| hex(v)).collect();
        let aging = ZoneAging::from_properties(values.iter().map(Vec::as_slice)).unwrap();
        assert_eq!(
            aging,
            ZoneAging {
                enabled: true,
                no_refresh_hours: 1,
                refresh_hours: 1
            }
        );
        // A new zone's defaults: aging off, 168 hours (0xa8).
        let off = [
            hex("04000000000000000000000001000000400000000000000000000000"),
            hex("04000000000000000000000001000000100000000000000000000000"),
        ];
        let aging = ZoneAging::from_properties(off.iter().map(Vec::as_slice)).unwrap();
        assert_eq!(
            aging,
            ZoneAging {
                enabled: false,
                no_refresh_hours: 168,
                refresh_hours: 168
            }
        );
    }

    #[test]
    fn broken_properties_are_errors_not_defaults() {
        for bad in [
            &b""[..],
            &hex("0400000000000000000000000100000040000000")[..],
            &hex("04000000000000000000000002000000400000000100000000000000")[..],
            &hex("ffffffff000000000000000001000000400000000100000000000000")[..],
            &hex("0200000000000000000000000100000040000000010000000000")[..],
        ] {
            assert!(ZoneAging::from_properties([bad]).is_err(), "{bad:02x?}");
        }
    }
}
