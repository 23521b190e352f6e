//! What the entries of a `dnsNode`'s DACL allow: which of them let a principal publish a record
//! there (the descriptor itself is read by [`crate::support::security`]).

use crate::support::security::INHERIT_ONLY_ACE;
pub use crate::support::security::{Ace, AceKind, Guid, SecurityDescriptor, SecurityError, Sid};

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

impl Ace {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::support::security::*;

    use crate::support::security::encode::{ace, descriptor};

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
        let (parsed, len) = Sid::parse(&machine.to_bytes()).unwrap();
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
