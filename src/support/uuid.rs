//! UUIDs written as text in the code: RPC interfaces and transfer syntaxes, AD's schema GUIDs.

/// Parses `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx` into its 16 bytes in text order.
/// Used only on constants, so a malformed literal fails at compile time.
pub const fn parse(text: &str) -> [u8; 16] {
    let s = text.as_bytes();
    assert!(s.len() == 36, "UUID literal must be 36 characters");
    let mut out = [0u8; 16];
    let mut i = 0;
    let mut n = 0;
    while i < s.len() {
        if s[i] == b'-' {
            i += 1;
            continue;
        }
        out[n] = hex_value(s[i]) << 4 | hex_value(s[i + 1]);
        n += 1;
        i += 2;
    }
    assert!(n == 16, "UUID literal must hold 32 hex digits");
    out
}

const fn hex_value(c: u8) -> u8 {
    match c {
        b'0'..=b'9' => c - b'0',
        b'a'..=b'f' => c - b'a' + 10,
        b'A'..=b'F' => c - b'A' + 10,
        _ => panic!("bad hex digit in UUID literal"),
    }
}
