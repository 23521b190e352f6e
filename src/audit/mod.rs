//! The audit: from a domain's settings to its findings. [`discover`] asks the authoritative
//! servers for the `_vlmcs._tcp` records and resolves each target (through [`crate::dns`]),
//! [`crate::probe`] checks each host, [`classify`] turns what was seen into findings; [`scan`]
//! runs the three for every domain and hands each finished domain on. In come
//! [`crate::config::ScanSettings`]; out goes a [`crate::model::Report`].

pub mod classify;
pub mod discover;
pub mod scan;
