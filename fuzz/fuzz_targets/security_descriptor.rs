//! The self-relative security descriptor parser: a dnsNode's owner and DACL as AD returns them.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(sd) = vlmcs_audit::ad::security::SecurityDescriptor::parse(data) {
        let _ = sd.owner.map(|o| o.to_string());
        for ace in sd.dacl.iter().flatten() {
            let _ = ace.publishing_rights();
            let _ = ace.sid.as_ref().map(|s| (s.to_string(), s.broad_group()));
        }
    }
});
