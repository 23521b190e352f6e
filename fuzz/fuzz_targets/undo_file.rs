//! The undo-file reader of `restore`: whatever it accepts must be an SRV addition at
//! `_vlmcs._tcp.<domain>` inside its zone, and its errors never quote a line.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        match vlmcs_audit::clean::trail::parse_undo(text, "fuzz.txt") {
            Ok(entries) => {
                for entry in entries {
                    let labels: Vec<&[u8]> = entry.owner.iter().collect();
                    assert!(labels.len() > 2);
                    assert!(labels[0].eq_ignore_ascii_case(b"_vlmcs"));
                    assert!(labels[1].eq_ignore_ascii_case(b"_tcp"));
                    assert!(entry.zone.zone_of(&entry.owner));
                }
            }
            Err(e) => assert!(e.to_string().starts_with("fuzz.txt")),
        }
    }
});
