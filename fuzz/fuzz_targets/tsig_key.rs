//! The TSIG key file parser (BIND `key { ... };` text).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = vlmcs_audit::dns::auth::parse_key_text(text, "fuzz");
    }
});
