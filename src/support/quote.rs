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

/// A value someone gave (a flag, a config value), for an error message: control characters
/// escaped (a NUL or an escape sequence must not reach the terminal or a log) and a long value
/// cut, with its length said (a 60 MB value is not worth 60 MB on stderr).
pub fn for_message(text: &str) -> String {
    escaped_and_cut(text, 80, "")
}

/// A whole message whose parts were not all ours (a parser's, quoting the input): the same
/// treatment, with room for a sentence.
pub fn message_for_terminal(text: &str) -> String {
    escaped_and_cut(text, 600, "message cut; ")
}

/// `text` with control characters (and a byte-order mark) escaped, cut after `shown`
/// characters with `… (<cut_note>N bytes in all)`.
fn escaped_and_cut(text: &str, shown: usize, cut_note: &str) -> String {
    let mut out = String::new();
    for (count, c) in text.chars().enumerate() {
        if count == shown {
            out.push_str(&format!("… ({cut_note}{} bytes in all)", text.len()));
            break;
        }
        if c.is_control() || c == '\u{feff}' {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// DNS data can carry any bytes: never let control characters (escape sequences) reach a
/// terminal.
pub(crate) fn terminal_safe(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { '\u{fffd}' } else { c })
        .collect()
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
    fn values_in_messages_have_no_control_characters_and_a_bounded_length() {
        assert_eq!(for_message("corp.example.com"), "corp.example.com");
        assert_eq!(for_message("a\u{0}b\u{1b}[31m"), "a\\u{0}b\\u{1b}[31m");
        let long = "x".repeat(60_000_000);
        let shown = for_message(&long);
        assert!(shown.len() < 200, "{}", shown.len());
        assert!(shown.ends_with("(60000000 bytes in all)"), "{shown}");
        let message = message_for_terminal(&format!("invalid value: \"{long}\""));
        assert!(message.len() < 800);
        assert_eq!(message_for_terminal("fine"), "fine");
    }

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
