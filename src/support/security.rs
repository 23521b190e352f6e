//! A self-relative security descriptor (MS-DTYP 2.4.6): the owner and the DACL of an object —
//! a `dnsNode` as AD returns its `nTSecurityDescriptor` (what the entries allow there is
//! [`crate::ad::security`]'s), or a file on Windows (who may read a key file: [`file_access`]).
//!
//! Layout: revision (1), sbz1 (1), control (2), then four little-endian offsets from the start
//! of the descriptor — owner, group, SACL, DACL — each 0 when absent. A SID (2.4.2.2): revision,
//! sub-authority count, a 6-byte big-endian authority, 4-byte little-endian sub-authorities. An
//! ACL (2.4.5): revision, sbz1, size (2), ACE count (2), sbz2 (2), then the ACEs, each with a
//! header of type (1), flags (1), size (2).

use std::fmt;

/// ACE types (MS-DTYP 2.4.4.1): allowed, denied, and their object forms.
pub(crate) const ACE_ALLOWED: u8 = 0x00;
pub(crate) const ACE_DENIED: u8 = 0x01;
pub(crate) const ACE_ALLOWED_OBJECT: u8 = 0x05;
pub(crate) const ACE_DENIED_OBJECT: u8 = 0x06;
/// ACE flag: the entry came from a parent.
pub(crate) const INHERITED_ACE: u8 = 0x10;
/// ACE flag: the entry applies to children only, not to the object itself.
pub(crate) const INHERIT_ONLY_ACE: u8 = 0x08;
/// Object ACE flags: which GUIDs follow the mask.
pub(crate) const OBJECT_TYPE_PRESENT: u32 = 0x1;
pub(crate) const INHERITED_OBJECT_TYPE_PRESENT: u32 = 0x2;

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

    /// A well-known SID: `authority` and its sub-authorities (`5, [18]` is `S-1-5-18`, SYSTEM).
    pub fn well_known(authority: u64, sub_authorities: &[u32]) -> Self {
        Self {
            revision: 1,
            authority,
            sub_authorities: sub_authorities.to_vec(),
        }
    }

    /// The SID in its binary form (MS-DTYP 2.4.2.2), as Windows functions take it.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = vec![self.revision, self.sub_authorities.len() as u8];
        out.extend_from_slice(&self.authority.to_be_bytes()[2..]);
        for sub in &self.sub_authorities {
            out.extend_from_slice(&sub.to_le_bytes());
        }
        out
    }

    /// The name Windows gives a well-known SID that file permissions often name, if it is one.
    pub fn well_known_name(&self) -> Option<&'static str> {
        match (self.authority, self.sub_authorities.as_slice()) {
            (1, [0]) => Some("Everyone"),
            (5, [4]) => Some("INTERACTIVE"),
            (5, [11]) => Some("Authenticated Users"),
            (5, [18]) => Some("SYSTEM"),
            (5, [32, 544]) => Some("Administrators"),
            (5, [32, 545]) => Some("Users"),
            (5, [32, 546]) => Some("Guests"),
            _ => self.broad_group(),
        }
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

/// File rights (MS-DTYP 2.4.3, winnt.h) that let a principal read a secret or change it.
const FILE_READ_DATA: u32 = 0x0000_0001;
const FILE_WRITE_DATA: u32 = 0x0000_0002;
const FILE_APPEND_DATA: u32 = 0x0000_0004;
const FILE_WRITE_DAC: u32 = 0x0004_0000;
const FILE_WRITE_OWNER: u32 = 0x0008_0000;
const FILE_GENERIC_ALL: u32 = 0x1000_0000;
const FILE_GENERIC_WRITE: u32 = 0x4000_0000;
const FILE_GENERIC_READ: u32 = 0x8000_0000;

/// What one principal other than a file's owner, SYSTEM and the Administrators may do with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForeignAccess {
    /// The principal (`S-1-1-0` is Everyone, also for a file without a DACL).
    pub sid: Sid,
    /// What it may do: `read`, `change`, or both.
    pub rights: Vec<&'static str>,
}

/// Who besides the owner, SYSTEM (`S-1-5-18`) and the Administrators (`S-1-5-32-544`) may read
/// or change the file that `descriptor` protects, as Windows decides it for a key file: each
/// allowing entry that applies to the file itself (not to children only), with what it gives.
/// A descriptor without a DACL lets everyone do everything. Deny entries are not weighed: a
/// secret is private when nothing else is allowed, not when a deny happens to come first.
pub fn foreign_file_access(descriptor: &SecurityDescriptor) -> Vec<ForeignAccess> {
    let Some(dacl) = &descriptor.dacl else {
        return vec![ForeignAccess {
            sid: Sid::well_known(1, &[0]),
            rights: vec!["read", "change"],
        }];
    };
    let trusted = [
        Some(Sid::well_known(5, &[18])),
        Some(Sid::well_known(5, &[32, 544])),
        // OWNER RIGHTS: whoever owns the file, which is the owner's own entry.
        Some(Sid::well_known(3, &[4])),
        descriptor.owner.clone(),
    ];
    let mut found: Vec<ForeignAccess> = Vec::new();
    for ace in dacl {
        let (AceKind::Allowed | AceKind::AllowedObject) = ace.kind else {
            continue;
        };
        let Some(sid) = &ace.sid else { continue };
        if ace.flags & INHERIT_ONLY_ACE != 0 || trusted.contains(&Some(sid.clone())) {
            continue;
        }
        let mut rights = Vec::new();
        if ace.mask & (FILE_READ_DATA | FILE_GENERIC_READ | FILE_GENERIC_ALL) != 0 {
            rights.push("read");
        }
        let change = FILE_WRITE_DATA
            | FILE_APPEND_DATA
            | FILE_WRITE_DAC
            | FILE_WRITE_OWNER
            | FILE_GENERIC_WRITE
            | FILE_GENERIC_ALL;
        if ace.mask & change != 0 {
            rights.push("change");
        }
        if rights.is_empty() {
            continue;
        }
        match found.iter_mut().find(|f| f.sid == *sid) {
            Some(known) => {
                for right in rights {
                    if !known.rights.contains(&right) {
                        known.rights.push(right);
                    }
                }
            }
            None => found.push(ForeignAccess {
                sid: sid.clone(),
                rights,
            }),
        }
    }
    found
}

/// Descriptors written as Windows writes them (MS-DTYP 2.4.6, self-relative), for tests.
#[cfg(test)]
pub(crate) mod encode {
    use super::*;

    pub(crate) fn ace(kind: u8, flags: u8, mask: u32, object: Option<Guid>, sid: &Sid) -> Vec<u8> {
        let mut body = mask.to_le_bytes().to_vec();
        if kind == ACE_ALLOWED_OBJECT || kind == ACE_DENIED_OBJECT {
            body.extend_from_slice(&u32::from(object.is_some()).to_le_bytes());
            if let Some(g) = object {
                body.extend_from_slice(&g.0);
            }
        }
        body.extend_from_slice(&sid.to_bytes());
        while !body.len().is_multiple_of(4) {
            body.push(0);
        }
        let mut out = vec![kind, flags];
        out.extend_from_slice(&((body.len() + 4) as u16).to_le_bytes());
        out.extend_from_slice(&body);
        out
    }

    /// A self-relative descriptor: owner, then a DACL of `aces`.
    pub(crate) fn descriptor(owner: &Sid, aces: &[Vec<u8>]) -> Vec<u8> {
        let owner = owner.to_bytes();
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
}

#[cfg(test)]
mod tests {
    use super::encode::{ace, descriptor};
    use super::*;

    fn sid(text: &str) -> Sid {
        Sid::from_text(text).unwrap()
    }

    /// FILE_ALL_ACCESS and what Windows grants "Read & execute" (0x1200a9).
    const FULL: u32 = 0x001f_01ff;
    const READ_EXECUTE: u32 = 0x0012_00a9;
    const INHERITED: u8 = 0x10;

    fn access(bytes: &[u8]) -> Vec<(String, Vec<&'static str>)> {
        foreign_file_access(&SecurityDescriptor::parse(bytes).unwrap())
            .into_iter()
            .map(|f| (f.sid.to_string(), f.rights))
            .collect()
    }

    #[test]
    fn a_key_file_of_the_owner_system_and_administrators_alone_is_private() {
        let me = sid("S-1-5-21-1004336348-1177238915-682003330-1001");
        // What `icacls key /inheritance:r /grant:r me:F SYSTEM:F Administrators:F` leaves.
        let bytes = descriptor(
            &me,
            &[
                ace(ACE_ALLOWED, 0, FULL, None, &me),
                ace(ACE_ALLOWED, 0, FULL, None, &sid("S-1-5-18")),
                ace(ACE_ALLOWED, 0, FULL, None, &sid("S-1-5-32-544")),
            ],
        );
        assert_eq!(access(&bytes), []);
    }

    #[test]
    fn a_file_under_a_default_folder_can_be_read_by_users() {
        let me = sid("S-1-5-21-1004336348-1177238915-682003330-1001");
        // A file in C:\ProgramData or a new folder of C:\ inherits "Users: read & execute"
        // (and, on C:\ itself, Authenticated Users may change it).
        let bytes = descriptor(
            &me,
            &[
                ace(ACE_ALLOWED, INHERITED, FULL, None, &sid("S-1-5-18")),
                ace(ACE_ALLOWED, INHERITED, FULL, None, &sid("S-1-5-32-544")),
                ace(
                    ACE_ALLOWED,
                    INHERITED,
                    READ_EXECUTE,
                    None,
                    &sid("S-1-5-32-545"),
                ),
                ace(ACE_ALLOWED, INHERITED, 0x0013_01bf, None, &sid("S-1-5-11")),
                // CREATOR OWNER for children only: not an entry of this file.
                ace(
                    ACE_ALLOWED,
                    INHERITED | INHERIT_ONLY_ACE,
                    FULL,
                    None,
                    &sid("S-1-3-0"),
                ),
            ],
        );
        assert_eq!(
            access(&bytes),
            [
                ("S-1-5-32-545".to_string(), vec!["read"]),
                ("S-1-5-11".to_string(), vec!["read", "change"]),
            ]
        );
        assert_eq!(sid("S-1-5-32-545").well_known_name(), Some("Users"));
    }

    #[test]
    fn generic_rights_count_and_a_missing_dacl_lets_everyone_in() {
        let me = sid("S-1-5-21-1-2-3-1001");
        let other = sid("S-1-5-21-1-2-3-1002");
        let bytes = descriptor(
            &me,
            &[
                ace(ACE_ALLOWED, 0, FILE_GENERIC_READ, None, &other),
                ace(ACE_ALLOWED, 0, FILE_WRITE_DAC, None, &other),
                // A deny does not make up for an allow.
                ace(ACE_DENIED, 0, FULL, None, &sid("S-1-1-0")),
                // Rights that neither read nor change the data: reading attributes.
                ace(ACE_ALLOWED, 0, 0x0000_0080, None, &sid("S-1-1-0")),
            ],
        );
        assert_eq!(
            access(&bytes),
            [(other.to_string(), vec!["read", "change"])]
        );
        let mut no_dacl = descriptor(&me, &[]);
        // Clear DACL_PRESENT and the DACL's offset: no DACL at all.
        no_dacl[2] &= !0x04;
        no_dacl[16..20].copy_from_slice(&0u32.to_le_bytes());
        assert_eq!(
            access(&no_dacl),
            [("S-1-1-0".to_string(), vec!["read", "change"])]
        );
    }
}
