//! Names from DNS are attacker-controlled: property tests with hostile strings for the quoting
//! of every shell the fix-it report writes for, against the real POSIX shell where there is one.

use std::process::Command;

use proptest::prelude::*;
use vlmcs_audit::support::quote;

/// Strings rich in what breaks shells: quotes, `$()`, backticks, `;`, `&`, `|`, newlines, `%`.
fn hostile() -> impl Strategy<Value = String> {
    let pieces = prop::sample::select(vec![
        "'", "\"", "$(", ")", "`", ";", "&", "|", "\n", "%", "%PATH%", "^", "!", "\\", " ", "*",
        "?", "~", "#", "\u{2018}", "\u{2019}", "$HOME", "${IFS}", "<", ">", "kms1", ".", "-", "_",
        "é", "\t",
    ]);
    prop::collection::vec(pieces, 0..12).prop_map(|v| v.concat())
}

/// Reads back a PowerShell verbatim string the way the PowerShell language spec defines it: a
/// single-quote character ends the string unless the next character is one too.
fn powershell_unquote(quoted: &str) -> Option<String> {
    let is_quote = |c: char| matches!(c, '\'' | '\u{2018}' | '\u{2019}' | '\u{201A}' | '\u{201B}');
    let mut chars = quoted.chars().peekable();
    if !is_quote(chars.next()?) {
        return None;
    }
    let mut out = String::new();
    while let Some(c) = chars.next() {
        if is_quote(c) {
            match chars.peek() {
                Some(&next) if is_quote(next) => {
                    out.push(next);
                    chars.next();
                }
                None => return Some(out),
                Some(_) => return None, // the string ended early: injection
            }
        } else {
            out.push(c);
        }
    }
    None
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn sh_quoting_survives_a_real_shell(text in hostile()) {
        let quoted = quote::sh(&text);
        let out = Command::new("sh").arg("-c").arg(format!("printf '%s' {quoted}")).output().unwrap();
        prop_assert_eq!(String::from_utf8_lossy(&out.stdout).into_owned(), text);
    }

    #[test]
    fn powershell_quoting_is_one_verbatim_string(text in hostile()) {
        let quoted = quote::powershell(&text);
        prop_assert_eq!(powershell_unquote(&quoted), Some(text));
    }

    #[test]
    fn cmd_gets_only_plain_host_names(text in hostile()) {
        if let Some(arg) = quote::cmd(&text) {
            prop_assert!(arg.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)), "{arg:?}");
        }
    }
}
