//! `clean`'s own settings: the safety rails and the paths of its files, from its flags and the
//! config's `clean:` section, checked before anything is read from DNS or sent to it.

use std::path::Path;

use crate::config::{CleanFileConfig, CleanOverrides, CleanSettings};
use crate::fsio::{Collision, RunFile, check_distinct};

/// The settings of one cleanup, its files checked to be distinct from one another and from
/// the report's `output` (a report written over the undo file would leave nothing to restore).
pub fn settings(
    flags: CleanOverrides,
    file: CleanFileConfig,
    output: Option<&Path>,
) -> Result<CleanSettings, Collision> {
    let settings = CleanSettings::resolve(
        flags,
        file,
        crate::state::default_path(),
        std::time::SystemTime::now(),
    );
    let lock = crate::state::lock_path(&settings.state_path);
    let mut files = vec![
        RunFile {
            role: "the state file (--state)",
            path: &settings.state_path,
        },
        RunFile {
            role: "the state's lock file",
            path: &lock,
        },
        RunFile {
            role: "the undo file (--undo-file)",
            path: &settings.undo_path,
        },
        RunFile {
            role: "the audit log (--audit-log)",
            path: &settings.audit_path,
        },
    ];
    if let Some(path) = output {
        files.insert(0, RunFile { role: "-o", path });
    }
    check_distinct(&files)?;
    Ok(settings)
}
