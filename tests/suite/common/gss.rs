//! What the two GSS-TSIG beds (BIND + MIT KDC, Samba AD) share: the `clean --apply` argument
//! list and how its outcome is read.

use std::path::Path;
use std::process::Output;

use serde_json::Value;

/// `--allow HOST --dead-for 0 --apply --yes` and the run's own state, undo and audit files
/// in `dir`.
pub(crate) fn apply_args(dir: &Path, allow: &str) -> Vec<String> {
    std::fs::create_dir_all(dir).unwrap();
    let file = |name: &str| dir.join(name).display().to_string();
    vec![
        "--allow".into(),
        allow.into(),
        "--dead-for".into(),
        "0".into(),
        "--apply".into(),
        "--yes".into(),
        "--state".into(),
        file("state.json"),
        "--undo-file".into(),
        file("undo.txt"),
        "--audit-log".into(),
        file("audit.jsonl"),
    ]
}

/// A `clean` run: its exit code, its JSON report (`null` when it failed before writing one),
/// its standard error.
pub(crate) struct Outcome {
    pub(crate) code: i32,
    pub(crate) json: Value,
    pub(crate) stderr: String,
}

impl From<Output> for Outcome {
    fn from(output: Output) -> Self {
        let stdout = String::from_utf8_lossy(&output.stdout);
        Self {
            code: output.status.code().unwrap_or(-1),
            json: serde_json::from_str(&stdout).unwrap_or(Value::Null),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

impl Outcome {
    /// The first result's message, or standard error when there is none.
    pub(crate) fn message(&self) -> String {
        self.json["results"][0]["message"]
            .as_str()
            .unwrap_or(&self.stderr)
            .to_string()
    }
}
