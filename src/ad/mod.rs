//! Active Directory as the source of truth (issue 14): what AD stores about DNS, read from its
//! binary forms. These parsers take bytes an LDAP server returned — attacker-controlled as
//! much as any DNS data — and check every length against the bytes present.
//!
//! - [`dns_record`]: one value of a `dnsNode`'s `dnsRecord` attribute (MS-DNSP 2.3.2.2).
//! - [`security`]: a self-relative security descriptor (MS-DTYP 2.4.6): the owner and the DACL
//!   of a node, and which of its entries let a principal publish a record there.

pub mod dns_record;
#[cfg(feature = "ad")]
pub mod ldap;
/// What the report keeps of a node: part of the model (`crate::model::ad_node`).
pub use crate::model::ad_node as node;
pub mod security;
