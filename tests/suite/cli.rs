//! The command line's contract: usage errors, config errors and their exit codes. No DNS
//! server is needed for these.

use crate::common::run;

fn temp_config(name: &str, text: &str) -> std::path::PathBuf {
    let dir = crate::common::scratch("cli");
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn malformed_config_names_file_line_and_column_and_exits_3() {
    let path = temp_config(
        "bad.yaml",
        "domains:\n  - corp.example.com\ntimeout: 2s\nconcurrency: lots\n",
    );
    let run = run(&["scan", "--config", path.to_str().unwrap()]);
    assert_eq!(run.code, 3);
    let expected = format!("{}:4:", path.display());
    assert!(run.stderr.contains(&expected), "{}", run.stderr);
    assert!(run.stderr.contains("concurrency"), "{}", run.stderr);
    assert!(run.stdout.is_empty());
}

#[test]
fn hostile_allowlist_entry_is_refused_with_its_line() {
    let path = temp_config(
        "hostile.yaml",
        "authorized_hosts:\n  - kms1.corp.example.com\n  - \"$(reboot)\"\n",
    );
    let run = run(&[
        "scan",
        "--config",
        path.to_str().unwrap(),
        "corp.example.com",
    ]);
    assert_eq!(run.code, 3);
    assert!(run.stderr.contains(":3:"), "{}", run.stderr);
    assert!(
        run.stderr.contains("not a valid host name"),
        "{}",
        run.stderr
    );
}

#[test]
fn missing_config_file_is_a_clear_error() {
    let run = run(&["scan", "--config", "/nonexistent/audit.yaml"]);
    assert_eq!(run.code, 3);
    assert!(
        run.stderr
            .contains("cannot open config file /nonexistent/audit.yaml"),
        "{}",
        run.stderr
    );
}

#[test]
fn usage_errors_exit_3_not_2() {
    // 2 means CRITICAL to a monitoring system; a typo in a command line is UNKNOWN.
    let run = run(&["scan", "--no-such-flag"]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    let run = crate::common::run(&["scan", "--timeout", "soon", "corp.example.com"]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(run.stderr.contains("--timeout"), "{}", run.stderr);
}

#[test]
fn bad_domain_and_server_are_named_in_the_error() {
    let run = run(&["scan", "--server", "dns.example.com", "corp.example.com"]);
    assert_eq!(run.code, 3);
    // clap's value parser names the flag; the message says what is wrong and what to write.
    assert!(
        run.stderr.contains("'--server <ADDR[:PORT]>'")
            && run
                .stderr
                .contains("`dns.example.com` is not a DNS server address"),
        "{}",
        run.stderr
    );
    let run = crate::common::run(&["scan", "corp example"]);
    assert_eq!(run.code, 3);
    assert!(
        run.stderr.contains("not a valid domain name"),
        "{}",
        run.stderr
    );
}

#[test]
fn help_and_version_exit_0() {
    let help = run(&["scan", "--help"]);
    assert_eq!(help.code, 0);
    assert!(help.stdout.contains("Exit codes"), "{}", help.stdout);
    let version = run(&["--version"]);
    assert_eq!(version.code, 0);
    assert!(version.stdout.contains(env!("CARGO_PKG_VERSION")));
}

#[test]
fn completions_and_man_page_come_from_the_command_line_definition() {
    let bash = run(&["completions", "bash"]);
    assert_eq!(bash.code, 0);
    assert!(
        bash.stdout.contains("complete") && bash.stdout.contains("--tsig-key"),
        "{}",
        bash.stdout
    );
    let out = std::process::Command::new("bash")
        .arg("-n")
        .arg("-c")
        .arg(&bash.stdout)
        .status()
        .unwrap();
    assert!(out.success(), "the bash completion script does not parse");
    let man = run(&["man"]);
    assert_eq!(man.code, 0);
    assert!(
        man.stdout.contains(".TH vlmcs-audit 1") && man.stdout.contains("clean"),
        "{}",
        man.stdout
    );
    // A page per subcommand: vlmcs-audit-scan(1) and the others, each with its own options.
    for (subcommand, option) in [
        ("scan", "\\-\\-format"),
        ("clean", "\\-\\-tsig\\-key"),
        ("restore", "undo"),
        ("report", "\\-\\-from"),
        ("completions", "bash"),
    ] {
        let page = run(&["man", subcommand]);
        assert_eq!(page.code, 0, "{}", page.stderr);
        assert!(
            page.stdout
                .contains(&format!(".TH vlmcs-audit-{subcommand} 1")),
            "{}",
            page.stdout
        );
        assert!(
            page.stdout.contains(option),
            "{subcommand}: {}",
            page.stdout
        );
    }
    assert_eq!(run(&["man", "nope"]).code, 3);
}

/// An error points at the offending value, even when the same text occurs earlier in the file
/// (inside another value or a comment).
#[test]
fn config_errors_point_at_the_offending_node_not_at_an_earlier_lookalike() {
    for (text, line, column) in [
        // `0` is inside the server address first.
        ("servers: [\"10.0.0.1:53\"]\nconcurrency: 0\n", 2, 14),
        // `5399` is inside the server address first.
        (
            "domains: [a.example]\nservers: [\"10.0.0.1:5399\"]\nnameserver_port: 5399999\n",
            3,
            18,
        ),
        // The bad list item after a comment that spells it.
        (
            "# bad.host is not a name\ndomains:\n  - good.example\n  - \"bad..host\"\n",
            4,
            6,
        ),
    ] {
        let path = temp_config("lookalike.yaml", text);
        let run = run(&["scan", "--config", path.to_str().unwrap()]);
        assert_eq!(run.code, 3, "{}", run.stderr);
        let at = format!("{}:{line}:{column}:", path.display());
        assert!(run.stderr.contains(&at), "want {at} in {}", run.stderr);
    }
}

/// Bash completion works for the subcommands' options too (clap_complete names a hyphenated
/// binary's states two ways; the script is mended), checked in a real bash.
#[test]
fn bash_completes_subcommand_options_and_their_values() {
    let script = run(&["completions", "bash"]);
    assert_eq!(script.code, 0, "{}", script.stderr);
    let path = crate::common::scratch("completion").join("vlmcs-audit.bash");
    std::fs::write(&path, &script.stdout).unwrap();
    let complete = |line: &str| -> Vec<String> {
        let words: Vec<&str> = line.split(' ').collect();
        let cword = words.len() - 1;
        let program = format!(
            "source {}\nCOMP_WORDS=({})\nCOMP_CWORD={cword}\nCOMP_LINE='{line}'\nCOMP_POINT=${{#COMP_LINE}}\n_vlmcs__audit vlmcs-audit '{}' '{}'\nprintf '%s\\n' \"${{COMPREPLY[@]}}\"\n",
            path.display(),
            words
                .iter()
                .map(|w| format!("'{w}'"))
                .collect::<Vec<_>>()
                .join(" "),
            words[cword],
            words[cword - 1],
        );
        let out = std::process::Command::new("bash")
            .args(["--norc", "--noprofile", "-c", &program])
            .output()
            .expect("bash");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .collect()
    };
    let formats = complete("vlmcs-audit scan --format ");
    for format in [
        "table",
        "json",
        "yaml",
        "prometheus",
        "jsonl",
        "csv",
        "nagios",
    ] {
        assert!(formats.iter().any(|f| f == format), "{format}: {formats:?}");
    }
    let options = complete("vlmcs-audit clean --");
    assert!(options.iter().any(|o| o == "--tsig-key"), "{options:?}");
    assert!(options.iter().any(|o| o == "--apply"), "{options:?}");
    let subcommands = complete("vlmcs-audit ");
    assert!(subcommands.iter().any(|s| s == "scan"), "{subcommands:?}");
}

/// The shipped systemd unit is hardened: `systemd-analyze security` rates its exposure at 2.0
/// or less (a network client that writes three files needs nothing more).
#[test]
fn the_shipped_systemd_unit_is_hardened() {
    let unit = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples/schedule/vlmcs-audit.service");
    let out = std::process::Command::new("systemd-analyze")
        .args(["security", "--offline=true"])
        .arg(&unit)
        .output()
        .expect("systemd-analyze (Debian package systemd) must be installed");
    let text = String::from_utf8_lossy(&out.stdout);
    let score: f64 = text
        .lines()
        .find_map(|l| {
            l.split("Overall exposure level for vlmcs-audit.service: ")
                .nth(1)
        })
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no exposure score in:\n{text}"));
    assert!(score <= 2.0, "exposure {score}:\n{text}");
}
