//! The YAML config loader and its validation.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let path = std::path::Path::new("fuzz.yaml");
        if let Ok(file) = vlmcs_audit::config::parse_file(path, text) {
            let _ =
                vlmcs_audit::config::build(Some(file), &Default::default(), || {
                Ok::<_, std::convert::Infallible>(vec![])
            });
        }
    }
});
