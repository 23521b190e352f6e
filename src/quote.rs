//! Quoting what came from DNS for the shell it is pasted into. DNS data is attacker-controlled:
//! a record can carry any name. Only valid host names ever enter a generated command, and even
//! those are quoted; anything else is shown as text, never as part of a command.

/// A host name fit for a command: labels of letters, digits, `-` and `_` (SRV owner labels),
/// 1–63 characters each, 253 at most in all, an optional trailing dot. Nothing else.
pub(crate) fn is_valid_hostname(name: &str) -> bool {
    let bare = name.strip_suffix('.').unwrap_or(name);
    !bare.is_empty()
        && bare.len() <= 253
        && bare.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                && !label.starts_with('-')
        })
}

/// POSIX sh: single quotes, with `'` written as `'\''`. Safe for any string.
pub fn sh(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// PowerShell: a verbatim single-quoted string; PowerShell also treats the typographic single
/// quotes as quote characters, so every one of them is doubled too. Safe for any string.
pub fn powershell(text: &str) -> String {
    let mut out = String::from("'");
    for c in text.chars() {
        if matches!(c, '\'' | '\u{2018}' | '\u{2019}' | '\u{201A}' | '\u{201B}') {
            out.push(c);
        }
        out.push(c);
    }
    out.push('\'');
    out
}

/// cmd.exe has no quoting that neutralises `%`, `^`, `&` and `"` in every context, so it gets
/// valid host names only (which need no quoting), and `None` for anything else.
pub fn cmd(text: &str) -> Option<String> {
    is_valid_hostname(text).then(|| text.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_names() {
        for ok in [
            "kms1.corp.example.com",
            "kms1.corp.example.com.",
            "_vlmcs._tcp.corp",
            "a",
            "x-1.y_2",
        ] {
            assert!(is_valid_hostname(ok), "{ok}");
        }
        for bad in [
            "",
            ".",
            "a..b",
            "-a.b",
            "a b",
            "a;b",
            "a$(b)",
            "a`b`",
            "a'b",
            "a\"b",
            "a&b",
            "a|b",
            "a%b%",
            "a\nb",
            "ä.example",
            &"a".repeat(64),
            &format!("{}.com", "a.".repeat(130)),
        ] {
            assert!(!is_valid_hostname(bad), "{bad:?}");
        }
    }

    #[test]
    fn quoting_forms() {
        assert_eq!(sh("a'b"), r"'a'\''b'");
        assert_eq!(powershell("a'b\u{2019}c"), "'a''b\u{2019}\u{2019}c'");
        assert_eq!(cmd("kms1.corp"), Some("kms1.corp".into()));
        assert_eq!(cmd("a&b"), None);
    }
}
