//! A self-relative security descriptor (MS-DTYP 2.4.6), as AD returns `nTSecurityDescriptor`
//! under the SD-flags control: the owner and the DACL of a `dnsNode`, and which of the DACL's
//! entries let a principal publish a record there.
//!
//! Layout: revision (1), sbz1 (1), control (2), then four little-endian offsets from the start
//! of the descriptor — owner, group, SACL, DACL — each 0 when absent. A SID (2.4.2.2): revision,
//! sub-authority count, a 6-byte big-endian authority, 4-byte little-endian sub-authorities. An
//! ACL (2.4.5): revision, sbz1, size (2), ACE count (2), sbz2 (2), then the ACEs, each with a
//! header of type (1), flags (1), size (2).

use std::fmt;

/// Access rights that let a principal put a host into a node (ADS_RIGHTS_ENUM).
pub const CREATE_CHILD: u32 = 0x0000_0001;
pub(crate) const WRITE_PROPERTY: u32 = 0x0000_0020;
pub(crate) const WRITE_DAC: u32 = 0x0004_0000;
pub(crate) const WRITE_OWNER: u32 = 0x0008_0000;
/// Never stored in a descriptor AD returns (it maps them), but honoured if one comes.
pub const GENERIC_ALL: u32 = 0x1000_0000;
pub(crate) const GENERIC_WRITE: u32 = 0x4000_0000;

/// `schemaIDGUID` of the `dnsRecord` attribute: an object ACE for it grants writing records.
pub const DNS_RECORD_ATTRIBUTE: Guid = Guid::parse_const("e0fa1e69-9b45-11d0-afdd-00c04fd930c9");
/// `schemaIDGUID` of the `dnsNode` class: an object ACE for it grants creating nodes.
pub const DNS_NODE_CLASS: Guid = Guid::parse_const("e0fa1e8c-9b45-11d0-afdd-00c04fd930c9");

const ACE_ALLOWED: u8 = 0x00;
const ACE_DENIED: u8 = 0x01;
const ACE_ALLOWED_OBJECT: u8 = 0x05;
const ACE_DENIED_OBJECT: u8 = 0x06;
/// ACE flag: the entry came from a parent.
const INHERITED_ACE: u8 = 0x10;
/// ACE flag: the entry applies to children only, not to the object itself.
const INHERIT_ONLY_ACE: u8 = 0x08;
/// Object ACE flags: which GUIDs follow the mask.
const OBJECT_TYPE_PRESENT: u32 = 0x1;
const INHERITED_OBJECT_TYPE_PRESENT: u32 = 0x2;

/// A security identifier.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Sid {
    pub(crate) revision: u8,
    /// 48 bits.
    pub authority: u64,
    /// The sub-authorities, the last of them the RID.
    pub sub_authorities: Vec<u32>,
}

impl Sid {
    /// Reads a SID at the start of `bytes`; returns it and its length.
    pub fn parse(bytes: &[u8]) -> Result<(Self, usize), SecurityError> {
        let [revision, count, authority @ ..] = bytes else {
            return Err(SecurityError::new("a SID shorter than its 2-byte header"));
        };
        let len = 8 + 4 * usize::from(*count);
        if *revision != 1 {
            return Err(SecurityError::new(format!(
                "SID revision {revision} (only 1 is defined)"
            )));
        }
        if *count > 15 {
            return Err(SecurityError::new(format!(
                "a SID with {count} sub-authorities (at most 15)"
            )));
        }
        if bytes.len() < len {
            return Err(SecurityError::new(format!(
                "a SID of {len} bytes with {} present",
                bytes.len()
            )));
        }
        let authority = authority[..6]
            .iter()
            .fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
        let sub_authorities = bytes[8..len]
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        Ok((
            Self {
                revision: *revision,
                authority,
                sub_authorities,
            },
            len,
        ))
    }

    /// Reads a SID in its string form (`S-1-5-21-...`).
    pub fn from_text(text: &str) -> Option<Self> {
        let mut parts = text.strip_prefix("S-")?.split('-');
        let revision = parts.next()?.parse().ok()?;
        let authority = parts.next()?.parse().ok().filter(|a| *a < 1 << 48)?;
        let sub_authorities = parts
            .map(|p| p.parse().ok())
            .collect::<Option<Vec<u32>>>()?;
        (revision == 1 && sub_authorities.len() <= 15).then_some(Self {
            revision,
            authority,
            sub_authorities,
        })
    }

    /// The relative identifier: the last sub-authority (513 Domain Users, 515 Domain
    /// Computers, ...).
    pub fn rid(&self) -> Option<u32> {
        self.sub_authorities.last().copied()
    }

    /// The domain part of a domain account's SID (all but the RID).
    pub fn domain(&self) -> Option<Self> {
        let (_, domain) = self.sub_authorities.split_last()?;
        Some(Self {
            sub_authorities: domain.to_vec(),
            ..self.clone()
        })
    }

    /// The principals broad enough that a right given to them is given to any machine: Everyone,
    /// Authenticated Users, and a domain's Users and Computers groups.
    pub fn broad_group(&self) -> Option<&'static str> {
        match (self.authority, self.sub_authorities.as_slice()) {
            (1, [0]) => Some("Everyone"),
            (5, [11]) => Some("Authenticated Users"),
            (5, [21, _, _, _, 513]) => Some("Domain Users"),
            (5, [21, _, _, _, 515]) => Some("Domain Computers"),
            _ => None,
        }
    }
}

impl fmt::Display for Sid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "S-{}-{}", self.revision, self.authority)?;
        for sub in &self.sub_authorities {
            write!(f, "-{sub}")?;
        }
        Ok(())
    }
}

/// A GUID in its little-endian wire form (the first three fields little-endian).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Guid(pub [u8; 16]);

impl Guid {
    /// Parses `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx` at compile time (a typo is a build
    /// error): the first three fields go little-endian, as on the wire.
    pub const fn parse_const(text: &str) -> Self {
        let b = crate::support::uuid::parse(text);
        Self([
            b[3], b[2], b[1], b[0], b[5], b[4], b[7], b[6], b[8], b[9], b[10], b[11], b[12], b[13],
            b[14], b[15],
        ])
    }
}

impl fmt::Display for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        write!(
            f,
            "{:02x}{:02x}{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-",
            b[3], b[2], b[1], b[0], b[5], b[4], b[7], b[6], b[8], b[9]
        )?;
        b[10..].iter().try_for_each(|x| write!(f, "{x:02x}"))
    }
}

/// What an entry does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AceKind {
    /// ACCESS_ALLOWED_ACE.
    Allowed,
    /// ACCESS_DENIED_ACE.
    Denied,
    /// ACCESS_ALLOWED_OBJECT_ACE: limited to a property, property set or class.
    AllowedObject,
    /// ACCESS_DENIED_OBJECT_ACE.
    DeniedObject,
    /// Another type (audit, callback, ...): kept so the count is right, never read.
    Other(u8),
}

/// One access control entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ace {
    /// What the entry does.
    pub kind: AceKind,
    /// Inheritance flags (INHERITED_ACE, ...).
    pub flags: u8,
    pub(crate) mask: u32,
    /// For an object ACE: the property, property set or class it is limited to.
    pub object_type: Option<Guid>,
    pub(crate) inherited_object_type: Option<Guid>,
    /// `None` for an entry of another type, whose body is not read.
    pub sid: Option<Sid>,
}

impl Ace {
    /// Whether the entry came from a parent (the zone, or above): to be changed there.
    pub fn inherited(&self) -> bool {
        self.flags & INHERITED_ACE != 0
    }

    /// The rights this entry gives on the node itself that let its trustee put a host there:
    /// writing `dnsRecord` (or every property), creating children, or taking over the node by
    /// its DACL or owner. Empty for a deny entry, one for children only, or one limited to
    /// another property or class.
    pub fn publishing_rights(&self) -> Vec<&'static str> {
        let object_ace = match self.kind {
            AceKind::Allowed => false,
            AceKind::AllowedObject => true,
            _ => return Vec::new(),
        };
        if self.flags & INHERIT_ONLY_ACE != 0 {
            return Vec::new();
        }
        // An object ACE limited to an object type applies to that property or class only.
        let limited_to = if object_ace { self.object_type } else { None };
        let for_records = limited_to.is_none_or(|g| g == DNS_RECORD_ATTRIBUTE);
        let for_nodes = limited_to.is_none_or(|g| g == DNS_NODE_CLASS);
        let mut rights = Vec::new();
        if self.mask & GENERIC_ALL != 0 {
            rights.push("full control (GENERIC_ALL)");
        }
        if self.mask & GENERIC_WRITE != 0 {
            rights.push("write (GENERIC_WRITE)");
        }
        if self.mask & WRITE_PROPERTY != 0 && for_records {
            rights.push(if limited_to.is_some() {
                "write the dnsRecord property"
            } else {
                "write all properties"
            });
        }
        if self.mask & CREATE_CHILD != 0 && for_nodes {
            rights.push("create child objects");
        }
        if limited_to.is_none() {
            if self.mask & WRITE_DAC != 0 {
                rights.push("change permissions (WRITE_DAC)");
            }
            if self.mask & WRITE_OWNER != 0 {
                rights.push("take ownership (WRITE_OWNER)");
            }
        }
        rights
    }
}

/// The parts of a descriptor this tool reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecurityDescriptor {
    /// The descriptor's control flags.
    pub control: u16,
    /// The owner, when present.
    pub owner: Option<Sid>,
    /// The primary group, when present.
    pub group: Option<Sid>,
    /// `None` when the descriptor has no DACL (everyone has every right) — a different thing
    /// from an empty DACL (nobody has any).
    pub dacl: Option<Vec<Ace>>,
}

impl SecurityDescriptor {
    /// Reads a self-relative descriptor.
    pub fn parse(bytes: &[u8]) -> Result<Self, SecurityError> {
        let Some((header, _)) = bytes.split_first_chunk::<20>() else {
            return Err(SecurityError::new(format!(
                "a security descriptor of {} bytes (the header alone is 20)",
                bytes.len()
            )));
        };
        if header[0] != 1 {
            return Err(SecurityError::new(format!(
                "security descriptor revision {} (only 1 is defined)",
                header[0]
            )));
        }
        let control = u16::from_le_bytes([header[2], header[3]]);
        const SELF_RELATIVE: u16 = 0x8000;
        const DACL_PRESENT: u16 = 0x0004;
        if control & SELF_RELATIVE == 0 {
            return Err(SecurityError::new(
                "not a self-relative security descriptor",
            ));
        }
        let offset = |at: usize| {
            u32::from_le_bytes([header[at], header[at + 1], header[at + 2], header[at + 3]])
                as usize
        };
        let at = |what: &str, offset: usize| {
            bytes
                .get(offset..)
                .filter(|rest| !rest.is_empty())
                .ok_or_else(|| {
                    SecurityError::new(format!(
                        "the {what} offset {offset} is past the descriptor's {} bytes",
                        bytes.len()
                    ))
                })
        };
        let sid_at = |what: &str, offset: usize| -> Result<Option<Sid>, SecurityError> {
            if offset == 0 {
                return Ok(None);
            }
            Sid::parse(at(what, offset)?)
                .map(|(sid, _)| Some(sid))
                .map_err(|e| SecurityError::new(format!("the {what}: {e}")))
        };
        let owner = sid_at("owner", offset(4))?;
        let group = sid_at("group", offset(8))?;
        let dacl = match offset(16) {
            0 => None,
            _ if control & DACL_PRESENT == 0 => None,
            dacl => Some(parse_acl(at("DACL", dacl)?)?),
        };
        Ok(Self {
            control,
            owner,
            group,
            dacl,
        })
    }
}

fn parse_acl(bytes: &[u8]) -> Result<Vec<Ace>, SecurityError> {
    let Some((header, _)) = bytes.split_first_chunk::<8>() else {
        return Err(SecurityError::new("an ACL shorter than its 8-byte header"));
    };
    let size = usize::from(u16::from_le_bytes([header[2], header[3]]));
    let count = usize::from(u16::from_le_bytes([header[4], header[5]]));
    let Some(body) = bytes.get(8..size) else {
        return Err(SecurityError::new(format!(
            "an ACL of {size} bytes with {} present",
            bytes.len()
        )));
    };
    let mut aces = Vec::with_capacity(count.min(body.len() / 8));
    let mut rest = body;
    for index in 0..count {
        let ace = parse_ace(rest).map_err(|e| SecurityError::new(format!("ACE {index}: {e}")))?;
        rest = &rest[ace.1..];
        aces.push(ace.0);
    }
    Ok(aces)
}

/// One ACE at the start of `bytes`; returns it and its size.
fn parse_ace(bytes: &[u8]) -> Result<(Ace, usize), SecurityError> {
    let Some((header, _)) = bytes.split_first_chunk::<8>() else {
        return Err(SecurityError::new("shorter than an ACE header and mask"));
    };
    let size = usize::from(u16::from_le_bytes([header[2], header[3]]));
    if size < 8 || !size.is_multiple_of(4) {
        return Err(SecurityError::new(format!("an ACE size of {size}")));
    }
    let Some(ace) = bytes.get(..size) else {
        return Err(SecurityError::new(format!(
            "an ACE of {size} bytes with {} present",
            bytes.len()
        )));
    };
    let kind = match header[0] {
        ACE_ALLOWED => AceKind::Allowed,
        ACE_DENIED => AceKind::Denied,
        ACE_ALLOWED_OBJECT => AceKind::AllowedObject,
        ACE_DENIED_OBJECT => AceKind::DeniedObject,
        other => AceKind::Other(other),
    };
    let mask = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
    let mut body = &ace[8..];
    let (mut object_type, mut inherited_object_type) = (None, None);
    if matches!(kind, AceKind::AllowedObject | AceKind::DeniedObject) {
        let Some((flags, rest)) = body.split_first_chunk::<4>() else {
            return Err(SecurityError::new("an object ACE without its flags"));
        };
        body = rest;
        let flags = u32::from_le_bytes(*flags);
        let mut guid = |present: bool| -> Result<Option<Guid>, SecurityError> {
            if !present {
                return Ok(None);
            }
            let Some((guid, rest)) = body.split_first_chunk::<16>() else {
                return Err(SecurityError::new("an object ACE cut inside a GUID"));
            };
            body = rest;
            Ok(Some(Guid(*guid)))
        };
        object_type = guid(flags & OBJECT_TYPE_PRESENT != 0)?;
        inherited_object_type = guid(flags & INHERITED_OBJECT_TYPE_PRESENT != 0)?;
    }
    let sid = match kind {
        AceKind::Other(_) => None,
        _ => Some(Sid::parse(body)?.0),
    };
    Ok((
        Ace {
            kind,
            flags: header[1],
            mask,
            object_type,
            inherited_object_type,
            sid,
        },
        size,
    ))
}

/// A descriptor that cannot be read: what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecurityError(String);

impl SecurityError {
    fn new(what: impl Into<String>) -> Self {
        Self(what.into())
    }
}

impl fmt::Display for SecurityError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "security descriptor: {}", self.0)
    }
}

impl std::error::Error for SecurityError {}

#[cfg(test)]
mod tests {
    use super::*;

    fn sid_bytes(sid: &Sid) -> Vec<u8> {
        let mut out = vec![sid.revision, sid.sub_authorities.len() as u8];
        out.extend_from_slice(&sid.authority.to_be_bytes()[2..]);
        for sub in &sid.sub_authorities {
            out.extend_from_slice(&sub.to_le_bytes());
        }
        out
    }

    fn ace(kind: u8, flags: u8, mask: u32, object: Option<Guid>, sid: &Sid) -> Vec<u8> {
        let mut body = mask.to_le_bytes().to_vec();
        if kind == ACE_ALLOWED_OBJECT || kind == ACE_DENIED_OBJECT {
            body.extend_from_slice(&u32::from(object.is_some()).to_le_bytes());
            if let Some(g) = object {
                body.extend_from_slice(&g.0);
            }
        }
        body.extend_from_slice(&sid_bytes(sid));
        while !body.len().is_multiple_of(4) {
            body.push(0);
        }
        let mut out = vec![kind, flags];
        out.extend_from_slice(&((body.len() + 4) as u16).to_le_bytes());
        out.extend_from_slice(&body);
        out
    }

    /// A self-relative descriptor: owner, then a DACL of `aces`.
    fn descriptor(owner: &Sid, aces: &[Vec<u8>]) -> Vec<u8> {
        let owner = sid_bytes(owner);
        let acl_size = 8 + aces.iter().map(Vec::len).sum::<usize>();
        let mut out = vec![1, 0];
        out.extend_from_slice(&(0x8000u16 | 0x0004).to_le_bytes());
        out.extend_from_slice(&20u32.to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes());
        out.extend_from_slice(&((20 + owner.len()) as u32).to_le_bytes());
        out.extend_from_slice(&owner);
        out.extend_from_slice(&[2, 0]);
        out.extend_from_slice(&(acl_size as u16).to_le_bytes());
        out.extend_from_slice(&(aces.len() as u16).to_le_bytes());
        out.extend_from_slice(&[0, 0]);
        aces.iter().for_each(|a| out.extend_from_slice(a));
        out
    }

    fn sid(text: &str) -> Sid {
        Sid::from_text(text).unwrap()
    }

    #[test]
    fn sids_read_and_print_both_ways() {
        let machine = sid("S-1-5-21-1004336348-1177238915-682003330-1105");
        assert_eq!(
            machine.to_string(),
            "S-1-5-21-1004336348-1177238915-682003330-1105"
        );
        let (parsed, len) = Sid::parse(&sid_bytes(&machine)).unwrap();
        assert_eq!((parsed, len), (machine.clone(), 28));
        assert_eq!(machine.rid(), Some(1105));
        assert_eq!(
            machine.domain().unwrap().to_string(),
            "S-1-5-21-1004336348-1177238915-682003330"
        );
        assert_eq!(sid("S-1-5-11").broad_group(), Some("Authenticated Users"));
        assert_eq!(sid("S-1-1-0").broad_group(), Some("Everyone"));
        assert_eq!(
            sid("S-1-5-21-1-2-3-515").broad_group(),
            Some("Domain Computers")
        );
        assert_eq!(machine.broad_group(), None);
        assert_eq!(Sid::from_text("S-1-5-x"), None);
        assert_eq!(Sid::from_text("S-2-5-11"), None);
    }

    #[test]
    fn guids_in_wire_order() {
        assert_eq!(
            DNS_RECORD_ATTRIBUTE.to_string(),
            "e0fa1e69-9b45-11d0-afdd-00c04fd930c9"
        );
        assert_eq!(&DNS_NODE_CLASS.0[..4], &[0x8c, 0x1e, 0xfa, 0xe0]);
    }

    #[test]
    fn a_node_opened_to_domain_computers_and_owned_by_a_host() {
        let host = sid("S-1-5-21-1-2-3-1105");
        let computers = sid("S-1-5-21-1-2-3-515");
        let bytes = descriptor(
            &host,
            &[
                // The owner's full control, as a node's creator gets it.
                ace(ACE_ALLOWED, 0, 0x000f_01ff, None, &host),
                // What `dsacl set ... (A;;RPWPCRCCDCLCLORCWOWDSDDTSW;;;DC)` gives.
                ace(ACE_ALLOWED, 0, 0x000f_01ff, None, &computers),
                // Everyone may read (inherited): no publishing right.
                ace(
                    ACE_ALLOWED,
                    INHERITED_ACE,
                    0x0002_0094,
                    None,
                    &sid("S-1-1-0"),
                ),
                // Authenticated Users may write one other property only.
                ace(
                    ACE_ALLOWED_OBJECT,
                    0,
                    WRITE_PROPERTY,
                    Some(Guid::parse_const("bf967a86-0de6-11d0-a285-00aa003049e2")),
                    &sid("S-1-5-11"),
                ),
                // Domain Users may write dnsRecord itself.
                ace(
                    ACE_ALLOWED_OBJECT,
                    0,
                    WRITE_PROPERTY,
                    Some(DNS_RECORD_ATTRIBUTE),
                    &sid("S-1-5-21-1-2-3-513"),
                ),
                // Denied and inherit-only entries grant nothing here.
                ace(ACE_DENIED, 0, WRITE_PROPERTY, None, &sid("S-1-5-11")),
                ace(
                    ACE_ALLOWED,
                    INHERIT_ONLY_ACE,
                    WRITE_PROPERTY,
                    None,
                    &sid("S-1-5-11"),
                ),
            ],
        );
        let sd = SecurityDescriptor::parse(&bytes).unwrap();
        assert_eq!(sd.owner.as_ref(), Some(&host));
        assert_eq!(sd.group, None);
        let dacl = sd.dacl.unwrap();
        assert_eq!(dacl.len(), 7);
        let rights: Vec<(String, Vec<&str>)> = dacl
            .iter()
            .map(|a| (a.sid.as_ref().unwrap().to_string(), a.publishing_rights()))
            .collect();
        let full = vec![
            "write all properties",
            "create child objects",
            "change permissions (WRITE_DAC)",
            "take ownership (WRITE_OWNER)",
        ];
        assert_eq!(rights[0].1, full);
        assert_eq!(rights[1], ("S-1-5-21-1-2-3-515".to_string(), full.clone()));
        assert!(rights[2].1.is_empty());
        assert!(dacl[2].inherited());
        assert!(rights[3].1.is_empty(), "{:?}", rights[3]);
        assert_eq!(rights[4].1, ["write the dnsRecord property"]);
        assert!(rights[5].1.is_empty() && rights[6].1.is_empty());
    }

    #[test]
    fn no_dacl_and_malformed_descriptors() {
        let host = sid("S-1-5-21-1-2-3-1105");
        let mut bytes = descriptor(&host, &[]);
        let sd = SecurityDescriptor::parse(&bytes).unwrap();
        assert_eq!(sd.dacl, Some(Vec::new()));
        // DACL_PRESENT cleared: no DACL at all.
        bytes[2] &= !0x04;
        assert_eq!(SecurityDescriptor::parse(&bytes).unwrap().dacl, None);

        let good = descriptor(&host, &[ace(ACE_ALLOWED, 0, 0x20, None, &host)]);
        // Every truncation and every single-byte change: an error or a value, never a panic.
        for cut in 0..good.len() {
            let _ = SecurityDescriptor::parse(&good[..cut]);
        }
        for at in 0..good.len() {
            for byte in [0, 1, 0x7f, 0x80, 0xff] {
                let mut bad = good.clone();
                bad[at] = byte;
                let _ = SecurityDescriptor::parse(&bad);
            }
        }
        let mut past = good.clone();
        past[4..8].copy_from_slice(&5000u32.to_le_bytes());
        let error = SecurityDescriptor::parse(&past).unwrap_err().to_string();
        assert!(error.contains("owner offset 5000"), "{error}");
        let mut count = good.clone();
        let acl = 20 + 28;
        count[acl + 4] = 2;
        let error = SecurityDescriptor::parse(&count).unwrap_err().to_string();
        assert!(error.contains("ACE 1"), "{error}");
    }
}
