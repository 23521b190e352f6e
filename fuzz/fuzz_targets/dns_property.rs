//! The MS-DNSP `dNSProperty` parser: a zone's settings as an LDAP server returns them.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = vlmcs_audit::ad::node::parse_property(data);
    // Several values at once, cut where the first byte says.
    let cut = usize::from(data.first().copied().unwrap_or(1)).max(1);
    let _ = vlmcs_audit::ad::node::ZoneAging::from_properties(data.chunks(cut));
});
