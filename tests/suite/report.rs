//! Fix-it reports: a snapshot of the lab's Markdown report (from a saved scan, so it is
//! stable), a self-contained HTML file, and hostile names kept out of every generated command.

use std::path::Path;

use crate::common::run;
use serde_json::Value;

const FIXTURE: &str = "tests/fixtures/lab-scan.json";

fn fixture_path(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
        .display()
        .to_string()
}

#[test]
fn markdown_report_of_the_lab_matches_its_snapshot() {
    let out = run(&["report", "--from", &fixture_path("lab-scan.json")]);
    // The report was written: exit 0, whatever the scan found (that is `scan`'s exit code).
    assert_eq!(out.code, 0, "{}", out.stderr);
    // A change shows as a diff; `cargo insta review` (or INSTA_UPDATE=always) accepts it.
    insta::assert_snapshot!("lab-report", out.stdout);
    // One emulator published under two names is one item per problem, not one per name.
    assert_eq!(out.stdout.matches("### WARNING — kms-emulator").count(), 1);
    assert!(
        out.stdout
            .contains("### WARNING — kms-emulator: emu.kms-lab.test., kms-alias.kms-lab.test.")
    );
    // The parts an admin acts on are there.
    for needle in [
        "Get-DnsServerResourceRecord -ZoneName 'kms-lab.test' -Name '_vlmcs._tcp.corp' -RRType Srv | Where-Object { $_.RecordData.DomainName -eq 'old-kms.kms-lab.test.' -and $_.RecordData.Port -eq 1688 -and $_.RecordData.Priority -eq 0 -and $_.RecordData.Weight -eq 0 } | Remove-DnsServerResourceRecord -ZoneName 'kms-lab.test' -WhatIf",
        "update delete _vlmcs._tcp.corp.kms-lab.test. SRV 0 0 1688 old-kms.kms-lab.test.",
        "slmgr.vbs /upk",
        "0xC004C008",
        "0x8007232B",
        "0xC004F074",
        "DnsDomainPublishList",
        "slmgr.vbs /ckhc",
        "vlmcs-audit clean 'corp.kms-lab.test'",
    ] {
        assert!(out.stdout.contains(needle), "missing {needle:?}");
    }
    // Nothing pasteable is a placeholder a shell would misread (`<...>` is a redirect in cmd),
    // slmgr runs through cscript (which waits), and the publish list is appended to, never
    // replaced.
    for block in code_blocks(&out.stdout) {
        assert!(!block.contains('<') || block.contains("<<'EOF'"), "{block}");
        for line in block.lines().filter(|l| l.contains("slmgr.vbs")) {
            assert!(
                line.starts_with("cscript //nologo %windir%\\system32\\slmgr.vbs"),
                "{line}"
            );
        }
        assert!(
            !block.contains("/v DnsDomainPublishList /t REG_MULTI_SZ"),
            "{block}"
        );
    }
    assert!(out.stdout.contains("/ipk REPLACE-WITH-GVLK"));
    assert!(out.stdout.contains("-notcontains $line"));
    // The load notes list only authorized, genuine hosts: not the rogue, not the emulator.
    for line in out
        .stdout
        .lines()
        .filter(|l| l.starts_with("- Healthy hosts:"))
    {
        assert!(
            !line.contains("pc-042") && !line.contains("emu.") && !line.contains("kms-alias"),
            "{line}"
        );
    }
    // Every Remove-DnsServerResourceRecord is fed exactly one record, selected by its target,
    // port, priority and weight (without a selection the cmdlet removes every SRV record of
    // the name), and is previewed with -WhatIf first.
    let removes: Vec<&str> = out
        .stdout
        .lines()
        .filter(|l| l.contains("Remove-DnsServerResourceRecord"))
        .collect();
    assert!(!removes.is_empty());
    for pair in removes.chunks(2) {
        for line in pair {
            assert!(
                line.starts_with("Get-DnsServerResourceRecord ")
                    && ["DomainName -eq", "Port -eq", "Priority -eq", "Weight -eq"]
                        .iter()
                        .all(|field| line.contains(field)),
                "{line}"
            );
        }
        assert!(
            pair[0].ends_with("-WhatIf") && pair[1].ends_with("-Force"),
            "{pair:?}"
        );
    }
}

#[test]
fn html_report_is_one_self_contained_file() {
    let out = run(&[
        "report",
        "--from",
        &fixture_path("lab-scan.json"),
        "--format",
        "html",
    ]);
    let html = out.stdout;
    assert!(html.starts_with("<!DOCTYPE html>") && html.trim_end().ends_with("</html>"));
    assert!(!html.contains("<script"), "no scripts");
    assert!(!html.contains("src="), "no external assets");
    assert!(!html.contains("<link"), "no stylesheets to fetch");
    assert!(html.contains("<style>"));
    assert!(html.contains("Remove-DnsServerResourceRecord"));
    // Everything from the scan is escaped: the only tags are ours.
    assert!(!html.contains("<kms"));
    // Layout: one overall banner, a cross-domain table, domains worst first.
    assert!(
        html.contains("<div class=\"banner critical\">Overall: CRITICAL"),
        "{html}"
    );
    assert!(html.contains("<table class=\"domains\">"));
    let first_section = &html[html.find("<section").unwrap()..];
    let first_heading = &first_section[..first_section.find("</h2>").unwrap()];
    let worst_first = [
        "corp.kms-lab.test",
        "branch.kms-lab.test",
        "empty.kms-lab.test",
        "nodata.kms-lab.test",
    ];
    assert!(
        worst_first.iter().any(|d| first_heading.contains(d)),
        "{first_heading}"
    );
    assert!(
        !first_heading.contains("hq.kms-lab.test"),
        "a warning-only domain is not first"
    );
    // Inline code is code, not literal backticks, outside the command blocks; URLs are links.
    let prose: String = html
        .split("<pre>")
        .map(|part| part.split_once("</pre>").map_or(part, |(_, after)| after))
        .collect();
    assert!(!prose.contains('`'), "literal backticks in prose");
    assert!(prose.contains("<code>"));
    assert!(html.contains("<a href=\"https://"), "links");
    // Long command lines wrap on screen and in print rather than being cut off.
    assert!(html.contains("white-space:pre-wrap"));
}

/// The fixture with one record's target replaced by `hostile` everywhere it appears.
fn with_hostile_target(hostile: &str) -> String {
    let text =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(FIXTURE)).unwrap();
    let mut scan: Value = serde_json::from_str(&text).unwrap();
    let replace = |v: &mut Value| {
        let s = serde_json::to_string(v)
            .unwrap()
            .replace("old-kms.kms-lab.test.", hostile);
        *v = serde_json::from_str(&s).unwrap();
    };
    replace(&mut scan);
    let dir = crate::common::scratch("report");
    let path = dir.join(format!("hostile-{}.json", hostile.len()));
    std::fs::write(&path, serde_json::to_string(&scan).unwrap()).unwrap();
    path.display().to_string()
}

fn code_blocks(markdown: &str) -> Vec<String> {
    markdown
        .split("```")
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect()
}

#[test]
fn hostile_names_are_shown_but_never_put_into_a_command() {
    for hostile in [
        "old$(reboot).kms-lab.test.",
        "old`reboot`.kms-lab.test.",
        "old;reboot;.kms-lab.test.",
        "old' ; Remove-Item C:\\\\ -Recurse ; '.kms-lab.test.",
        "old%COMSPEC%&calc.kms-lab.test.",
        "old|nc\\nevil.kms-lab.test.",
    ] {
        let path = with_hostile_target(hostile);
        let out = run(&["report", "--from", &path]);
        assert!(out.stdout.contains("dead-host"), "{}", out.stderr);
        let marker = hostile.split('.').next().unwrap();
        for block in code_blocks(&out.stdout) {
            assert!(
                !block.contains(marker),
                "{hostile:?} reached a command:\n{block}"
            );
        }
        assert!(
            out.stdout.contains("reboot")
                || out.stdout.contains("calc")
                || out.stdout.contains("nc")
                || out.stdout.contains("Remove-Item"),
            "the name must still be shown"
        );
        let html = run(&["report", "--from", &path, "--format", "html"]).stdout;
        assert!(!html.contains("<script") && !html.contains("\u{1b}"));
    }
}

/// The Markdown section of one finding: from its heading to the next.
fn section<'a>(markdown: &'a str, heading: &str) -> &'a str {
    let start = markdown
        .find(heading)
        .unwrap_or_else(|| panic!("no {heading:?}"));
    let rest = &markdown[start + heading.len()..];
    &rest[..rest.find("\n### ").unwrap_or(rest.len())]
}

#[test]
fn a_plain_dead_host_next_to_hostile_names_still_gets_its_delete_commands() {
    let path = with_hostile_target("old$(reboot).kms-lab.test.");
    let out = run(&["report", "--from", &path]);
    let lost = section(&out.stdout, "dead-host: lost-kms.kms-lab.test.");
    assert!(lost.contains("(below)"), "{lost}");
    assert!(
        lost.contains("vlmcs-audit clean 'corp.kms-lab.test'"),
        "{lost}"
    );
    assert!(
        lost.contains("$_.RecordData.DomainName -eq 'lost-kms.kms-lab.test.'"),
        "{lost}"
    );
    // Its nsupdate prerequisite would have to list the hostile name: left out, and said so.
    assert!(!lost.contains("nsupdate -k"), "{lost}");
    assert!(lost.contains("nsupdate form is left out"), "{lost}");
    // The hostile record itself: vlmcs-audit only, no PowerShell line with its name.
    let hostile = section(&out.stdout, "dead-host: old$(reboot)");
    assert!(
        hostile.contains("vlmcs-audit clean 'corp.kms-lab.test'"),
        "{hostile}"
    );
    assert!(
        !hostile.contains("Remove-DnsServerResourceRecord"),
        "{hostile}"
    );
}

#[test]
fn a_saved_scan_whose_domain_is_not_a_domain_name_puts_it_in_no_command() {
    let text =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(FIXTURE)).unwrap();
    let hostile = "corp.kms-lab.test; rm -rf ~";
    let text = text.replace("\"corp.kms-lab.test\"", &format!("\"{hostile}\""));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("scan.json");
    std::fs::write(&path, text).unwrap();
    let out = run(&["report", "--from", path.to_str().unwrap()]);
    assert!(out.stdout.contains("rm -rf"), "the domain is still shown");
    for block in code_blocks(&out.stdout) {
        assert!(!block.contains("rm -rf"), "reached a command:\n{block}");
    }
}

/// A scheduled run scans once and makes the metrics from the saved scan: `report --from
/// --format prometheus` gives what `scan --format prometheus` gives, and exits 0.
#[test]
fn metrics_come_from_a_saved_scan_too() {
    let out = run(&[
        "report",
        "--from",
        &fixture_path("lab-scan.json"),
        "--format",
        "prometheus",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let lines = out.stdout.lines().map(|l| Ok(l.to_string()));
    let scrape = prometheus_parse::Scrape::parse(lines).expect("valid exposition format");
    let exit = scrape
        .samples
        .iter()
        .find(|s| s.metric == "vlmcs_audit_exit_code")
        .expect("the scan's exit code");
    assert!(
        matches!(exit.value, prometheus_parse::Value::Gauge(v) | prometheus_parse::Value::Untyped(v) if v == 2.0)
    );
    assert!(
        scrape
            .samples
            .iter()
            .any(|s| s.metric == "vlmcs_audit_domain_complete")
    );
}

/// The text a CommonMark renderer shows for each heading and list item of `markdown`, with the
/// inline markup that made it up (emphasis, links, code, HTML).
fn rendered_blocks(markdown: &str) -> Vec<(String, Vec<String>)> {
    use pulldown_cmark::{Event, Parser, Tag, TagEnd};
    let mut blocks = Vec::new();
    let mut current: Option<(String, Vec<String>)> = None;
    for event in Parser::new(markdown) {
        match event {
            Event::Start(Tag::Heading { .. } | Tag::Item) => {
                current = Some((String::new(), Vec::new()));
            }
            Event::End(TagEnd::Heading(_) | TagEnd::Item) => blocks.extend(current.take()),
            Event::Text(t) => {
                if let Some((text, _)) = current.as_mut() {
                    text.push_str(&t);
                }
            }
            Event::Code(t) => {
                if let Some((text, markup)) = current.as_mut() {
                    text.push_str(&t);
                    markup.push("code".into());
                }
            }
            Event::Start(tag) => {
                if let Some((_, markup)) = current.as_mut() {
                    markup.push(format!("{tag:?}"));
                }
            }
            Event::InlineHtml(h) | Event::Html(h) => {
                if let Some((text, markup)) = current.as_mut() {
                    text.push_str(&h);
                    markup.push("html".into());
                }
            }
            Event::SoftBreak | Event::HardBreak => {
                if let Some((text, _)) = current.as_mut() {
                    text.push(' ');
                }
            }
            _ => {}
        }
    }
    blocks
}

#[test]
fn markdown_shows_every_hostile_name_as_it_is_in_dns() {
    // JSON-escaped, as they go into the saved scan: markup of every kind, and the HTML test's set.
    for escaped in [
        "old`*star*_[link]\\\\(http://x\\\\)`.kms-lab.test.",
        "_under_score_.kms-lab.test.",
        "**strong**.<b>bold</b>.kms-lab.test.",
        "old&amp;copy;~~gone~~|pipe|.kms-lab.test.",
        "#1.[x](javascript:alert(1)).kms-lab.test.",
        "old$(reboot).kms-lab.test.",
        "old`reboot`.kms-lab.test.",
        "old' ; Remove-Item C:\\\\ -Recurse ; '.kms-lab.test.",
        "old%COMSPEC%&calc.kms-lab.test.",
    ] {
        let name: String = serde_json::from_str(&format!("\"{escaped}\"")).unwrap();
        let path = with_hostile_target(escaped);
        let markdown = run(&["report", "--from", &path]).stdout;
        let blocks = rendered_blocks(&markdown);
        let heading = blocks
            .iter()
            .find(|(text, _)| text.contains("dead-host: ") && text.contains(&name))
            .unwrap_or_else(|| panic!("{name:?}: no heading shows it:\n{blocks:#?}"));
        assert!(
            heading.0.ends_with(&format!("dead-host: {name}")),
            "{name:?} shown as {:?}",
            heading.0
        );
        assert!(
            heading.1.is_empty(),
            "{name:?} became markup: {:?}",
            heading.1
        );
        // The record line spells the target in presentation form (RFC 1035 escapes).
        let presented = vlmcs_audit::model::name::DnsName::parse(&name)
            .unwrap()
            .to_string();
        let record = format!("_vlmcs._tcp.corp.kms-lab.test. 300 IN SRV 0 0 1688 {presented}");
        let item = blocks
            .iter()
            .find(|(text, _)| *text == record)
            .unwrap_or_else(|| {
                panic!("{name:?}: the record line is not shown as it is:\n{blocks:#?}")
            });
        assert!(item.1.is_empty(), "{name:?} became markup: {:?}", item.1);
        // The HTML report shows the same text (escaped, never markup).
        let html = run(&["report", "--from", &path, "--format", "html"]).stdout;
        let escaped_html = name
            .replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
            .replace('\'', "&#39;");
        assert!(
            html.contains(&escaped_html),
            "{name:?} not in the HTML as it is"
        );
    }
}

#[test]
fn a_saved_scan_is_read_as_a_stream_in_any_key_order_and_a_cut_one_is_an_error() {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join(FIXTURE);
    let original = run(&["report", "--from", fixture.to_str().unwrap()]);
    assert_eq!(original.code, 0, "{}", original.stderr);
    let dir = tempfile::tempdir().unwrap();
    // Keys sorted (as `jq -S` writes them): the domains come before the findings.
    let value: Value = serde_json::from_str(&std::fs::read_to_string(&fixture).unwrap()).unwrap();
    let sorted = dir.path().join("sorted.json");
    std::fs::write(&sorted, serde_json::to_string(&value).unwrap()).unwrap();
    let text = std::fs::read_to_string(&sorted).unwrap();
    assert!(text.find("\"domains\"") < text.find("\"findings\""));
    for format in ["markdown", "html", "prometheus"] {
        let a = run(&[
            "report",
            "--from",
            fixture.to_str().unwrap(),
            "--format",
            format,
        ]);
        let b = run(&[
            "report",
            "--from",
            sorted.to_str().unwrap(),
            "--format",
            format,
        ]);
        assert_eq!(a.stdout, b.stdout, "{format}");
        assert!(!a.stdout.is_empty(), "{format}");
    }
    // Cut in the middle of the domains: an error naming the place, nothing written.
    let full = std::fs::read_to_string(&fixture).unwrap();
    let cut = dir.path().join("cut.json");
    std::fs::write(&cut, &full[..full.len() * 2 / 3]).unwrap();
    let out_path = dir.path().join("report.md");
    let out = run(&[
        "report",
        "--from",
        cut.to_str().unwrap(),
        "-o",
        out_path.to_str().unwrap(),
    ]);
    assert_eq!(out.code, 3, "{}", out.stdout);
    assert!(
        out.stderr.contains("cut.json:") && out.stderr.contains("not a vlmcs-audit JSON scan"),
        "{}",
        out.stderr
    );
    assert!(!out_path.exists(), "a partial report was written");
}
