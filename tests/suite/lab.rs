//! The README's demo: the loopback lab, scanned through the real CLI, shows every finding code.

use vlmcs_audit::model::FindingCode;

#[test]
fn the_demo_lab_shows_every_finding_code() {
    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path().to_path_buf();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let lab = runtime
        .block_on(vlmcs_lab::Lab::start(&dir))
        .unwrap_or_else(|e| panic!("lab did not start: {e}"));
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_vlmcs-audit"))
        .args(["scan", "--format", "json", "--config"])
        .arg(&lab.config_path)
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let seen: std::collections::BTreeSet<&str> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["code"].as_str().unwrap())
        .collect();
    // Drift codes need a state file and earlier scans, AD's need a DC (tests/suite/gss_samba.rs);
    // everything else shows in one scan.
    for code in FindingCode::ALL.into_iter().filter(|c| {
        !vlmcs_audit::state::drift::is_drift(*c)
            && *c != FindingCode::StillFailing
            && !c.from_directory()
    }) {
        assert!(
            seen.contains(code.as_str()),
            "the demo does not show `{code}`: {seen:?}"
        );
    }
    assert_eq!(output.status.code(), Some(2));
    // One blackholed host, 2 s timeout: the scan takes about one timeout.
    let ms = report["duration_ms"].as_f64().unwrap();
    assert!(ms < 4000.0, "{ms} ms");
    drop(lab);
    drop(scratch);
}
