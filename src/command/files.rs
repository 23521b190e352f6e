//! The files one run reads and writes, under the names a person gave them, checked to be
//! distinct before anything is read, sent or written (see [`check_distinct`]).

use std::path::Path;

use crate::support::fsio::{Collision, RunFile, check_distinct};

/// Each file a command may use; `None` for those it does not.
#[derive(Debug, Clone, Copy, Default)]
pub struct FileRoles<'a> {
    /// The report (`-o`).
    pub output: Option<&'a Path>,
    /// A saved scan read back (`report --from`).
    pub saved_scan: Option<&'a Path>,
    /// The state file (`--state`); its lock file beside it counts too.
    pub state: Option<&'a Path>,
    /// The undo file (`clean --undo-file`, `restore UNDO_FILE`).
    pub undo: Option<&'a Path>,
    /// The JSON-lines audit log (`--audit-log`).
    pub audit_log: Option<&'a Path>,
}

/// Refuses a run two of whose files are one (a report written over the undo file would leave
/// nothing to restore; `-o` onto the state would corrupt the next run).
pub fn check_run_files(roles: &FileRoles<'_>) -> Result<(), Collision> {
    let lock = roles.state.map(crate::state::lock_path);
    let named = [
        ("-o", roles.output),
        ("the saved scan (--from)", roles.saved_scan),
        ("the state file (--state)", roles.state),
        ("the state's lock file", lock.as_deref()),
        ("the undo file", roles.undo),
        ("the audit log (--audit-log)", roles.audit_log),
    ];
    let files: Vec<RunFile<'_>> = named
        .iter()
        .filter_map(|&(role, path)| path.map(|path| RunFile { role, path }))
        .collect();
    check_distinct(&files)
}
