//! Every file the tool reads or writes goes through here.
//!
//! Reading: whatever path we are given is hostile until checked. It is opened without
//! blocking (a FIFO must not hang the run), must be a regular file, and is read only up to a
//! bound that fits what it should hold (`/dev/zero` must not eat the machine's memory). Secrets
//! (TSIG keys, keytabs) must also belong to the user running the tool (or root) and be
//! unreadable by anyone else.
//!
//! Writing: a report (`-o`) goes where the user pointed, deliberately: symbolic links are
//! followed, a regular file is replaced atomically (temp file + rename in its directory) with
//! its mode and owner kept, a character device or a FIFO (`/dev/stdout`, `/dev/null`, a pipe to a
//! log shipper) is written directly and never replaced, anything else (a directory, a block
//! device, a socket) is refused. The tool's own records — state file, undo file, audit log —
//! never follow a symbolic link (a link planted where root writes is the classic attack) and are
//! created private (0600).

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

#[cfg(unix)]
use rustix::fs::OFlags;

/// What a file is for, and how large it may be. The bounds are far above anything real and far
/// below what would hurt the machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Kind {
    /// What the file is, for messages ("config file", "TSIG key file").
    pub what: &'static str,
    pub(crate) max_bytes: u64,
}

pub(crate) const CONFIG: Kind = Kind {
    what: "config file",
    max_bytes: 64 << 20,
};
pub(crate) const TSIG_KEY: Kind = Kind {
    what: "TSIG key file",
    max_bytes: 64 << 10,
};
/// A Kerberos keytab (GSS-TSIG's `--keytab`).
pub const KEYTAB: Kind = Kind {
    what: "keytab",
    max_bytes: 16 << 20,
};
pub(crate) const STATE: Kind = Kind {
    what: "state file",
    max_bytes: 2 << 30,
};
pub(crate) const UNDO: Kind = Kind {
    what: "undo file",
    max_bytes: 64 << 20,
};
pub(crate) const SAVED_SCAN: Kind = Kind {
    what: "saved scan",
    max_bytes: 4 << 30,
};
pub(crate) const AUDIT_LOG: Kind = Kind {
    what: "audit log",
    max_bytes: u64::MAX,
};
pub(crate) const REPORT: Kind = Kind {
    what: "report",
    max_bytes: u64::MAX,
};

/// Why a file could not be used. Each message says which file, what is wrong and what to do.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// The file could not be opened.
    #[error("cannot open {what} {path}: {source}")]
    Open {
        /// What the file is.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// What the system said.
        source: io::Error,
    },
    /// The file could not be read.
    #[error("cannot read {what} {path}: {source}")]
    Read {
        /// What the file is.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// What the system said.
        source: io::Error,
    },
    /// The file could not be written.
    #[error("cannot write {what} {path}: {source}")]
    Write {
        /// What the file is.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// What the system said.
        source: io::Error,
    },
    /// A directory, device, FIFO or socket where a file is read.
    #[error("{what} {path} is {found}, not a regular file: give the path of a file")]
    NotRegular {
        /// What the file is.
        what: &'static str,
        /// The path.
        path: PathBuf,
        /// What is there instead.
        found: &'static str,
    },
    /// Something a report cannot be written to (a directory, a socket).
    #[error(
        "{what} {path} is {found}: vlmcs-audit writes reports to files, character devices and FIFOs only"
    )]
    NotWritable {
        /// What the file is.
        what: &'static str,
        /// The path.
        path: PathBuf,
        /// What is there instead.
        found: &'static str,
    },
    /// Larger than such a file can honestly be.
    #[error(
        "{what} {path} is larger than {max} bytes ({size} bytes or more): this is not a file vlmcs-audit wrote or expects; check the path"
    )]
    TooLarge {
        /// What the file is.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Its size in bytes.
        size: u64,
        /// The most this kind of file may hold.
        max: u64,
    },
    /// A symbolic link where the tool keeps a file of its own (it could point anywhere).
    #[error(
        "{what} {path} is a symbolic link{target}: vlmcs-audit does not follow links for the files it keeps itself; give the real path"
    )]
    Symlink {
        /// What the file is.
        what: &'static str,
        /// The link.
        path: PathBuf,
        /// Where it points, as a phrase (" to /x", or empty).
        target: String,
    },
    /// A secret owned by another user than this one (or root).
    #[error(
        "{what} {path} belongs to another user (uid {owner}, this run is uid {me}): a secret must belong to the user who runs vlmcs-audit (or root); `chown` it or run as its owner"
    )]
    Owner {
        /// What the file is.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Its owner's uid.
        owner: u32,
        /// This process's uid.
        me: u32,
    },
    /// A secret that another principal may read or change (Windows: its DACL).
    #[error("{0}")]
    SharedSecret(Box<SharedSecret>),
    /// A secret that others may read or write.
    #[error(
        "{what} {path} can be read or written by other users (mode {mode:04o}): a key anyone can read lets anyone change your zone; run `chmod 600 {path}`"
    )]
    Permissions {
        /// What the file is.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
}

/// Who else may read or change a secret, and the command that makes it private again.
#[derive(Debug, Clone, thiserror::Error)]
#[error(
    "{what} {path} can be {rights} by {principal}: a key others can read lets them change your zone; keep it to its owner, SYSTEM and Administrators: `{fix}`"
)]
pub struct SharedSecret {
    /// What the file is.
    pub what: &'static str,
    /// The file.
    pub path: PathBuf,
    /// The first such principal, by name where known, and SID.
    pub principal: String,
    /// What it may do (`read`, `change`).
    pub rights: String,
    /// The icacls command that leaves the owner, SYSTEM and Administrators alone.
    pub fix: String,
}

impl FileError {
    /// The message without the path (for a path that must not be shown: it may be a secret
    /// given where a path was expected).
    pub fn without_path(&self) -> String {
        let hidden = PathBuf::from("(not shown)");
        let mut copy = match self {
            Self::Open { what, source, .. } => Self::Open {
                what,
                path: hidden,
                source: io::Error::new(source.kind(), source.to_string()),
            },
            Self::Read { what, source, .. } => Self::Read {
                what,
                path: hidden,
                source: io::Error::new(source.kind(), source.to_string()),
            },
            Self::Write { what, source, .. } => Self::Write {
                what,
                path: hidden,
                source: io::Error::new(source.kind(), source.to_string()),
            },
            Self::NotRegular { what, found, .. } => Self::NotRegular {
                what,
                path: hidden,
                found,
            },
            Self::NotWritable { what, found, .. } => Self::NotWritable {
                what,
                path: hidden,
                found,
            },
            Self::TooLarge {
                what, size, max, ..
            } => Self::TooLarge {
                what,
                path: hidden,
                size: *size,
                max: *max,
            },
            // The command names the path: only the principal and the rights are kept.
            Self::SharedSecret(shared) => Self::SharedSecret(Box::new(SharedSecret {
                path: hidden,
                fix: "icacls FILE /inheritance:r ... (see `icacls /?`)".into(),
                ..(**shared).clone()
            })),
            // A link's target is a path too.
            Self::Symlink { what, .. } => Self::Symlink {
                what,
                path: hidden,
                target: String::new(),
            },
            Self::Owner {
                what, owner, me, ..
            } => Self::Owner {
                what,
                path: hidden,
                owner: *owner,
                me: *me,
            },
            Self::Permissions { what, mode, .. } => Self::Permissions {
                what,
                path: hidden,
                mode: *mode,
            },
        }
        .to_string();
        copy.truncate(copy.trim_end().len());
        copy
    }
}

/// One file a run reads or writes, under the name a person gave it (`--state`, `-o`, ...).
#[derive(Debug, Clone, Copy)]
pub struct RunFile<'a> {
    /// Who gave the path (`--state`, `-o`, "the undo file").
    pub role: &'a str,
    /// The path as given.
    pub path: &'a Path,
}

/// Two of a run's files are one file.
#[derive(Debug, thiserror::Error)]
#[error(
    "{first} and {second} are the same file ({path}): the run would overwrite one with the other; give each its own path"
)]
pub struct Collision {
    /// The first file's role.
    pub first: String,
    /// The second file's role.
    pub second: String,
    /// The one file both name.
    pub path: String,
}

/// Refuses a run whose files coincide (`--undo-file u.txt -o u.txt` would replace the undo
/// file with the report; `-o` onto the state would corrupt the next run). Compared by
/// identity after resolving links: device and inode for files that exist, the resolved
/// directory and name for those still to be made. Standard output (`-`) and character devices
/// (`/dev/null`, a terminal) may be shared: nothing is overwritten there.
pub fn check_distinct(files: &[RunFile<'_>]) -> Result<(), Collision> {
    let identities: Vec<(RunFile<'_>, Identity)> = files
        .iter()
        .filter(|f| f.path != Path::new("-"))
        .filter_map(|f| identity(f.path).map(|id| (*f, id)))
        .collect();
    for (i, (a, id_a)) in identities.iter().enumerate() {
        if let Some((b, _)) = identities[i + 1..].iter().find(|(_, id_b)| id_b == id_a) {
            return Err(Collision {
                first: a.role.to_string(),
                second: b.role.to_string(),
                path: a.path.display().to_string(),
            });
        }
    }
    Ok(())
}

#[derive(Debug, PartialEq, Eq)]
enum Identity {
    /// A file that exists: its device and inode.
    #[cfg(unix)]
    Existing(u64, u64),
    /// A file by its resolved path: one still to be made, or any file where there is no inode.
    Resolved(PathBuf),
}

/// What makes `path` the file it is; `None` for a character device (shared harmlessly).
fn identity(path: &Path) -> Option<Identity> {
    if is_windows_device(path) {
        return None;
    }
    match std::fs::metadata(path) {
        Ok(meta) => {
            #[cfg(unix)]
            {
                use std::os::unix::fs::{FileTypeExt, MetadataExt};
                if meta.file_type().is_char_device() {
                    return None;
                }
                Some(Identity::Existing(meta.dev(), meta.ino()))
            }
            #[cfg(not(unix))]
            {
                let _ = meta;
                Some(Identity::Resolved(
                    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf()),
                ))
            }
        }
        // Not there yet (or a dangling link): where it would be made.
        Err(_) => Some(Identity::Resolved(would_be_made_at(path, 0))),
    }
}

/// The path a file that does not exist yet would be made at: a dangling link followed (a few
/// hops), the directory resolved.
fn would_be_made_at(path: &Path, hops: u32) -> PathBuf {
    if hops < 8
        && let Ok(target) = std::fs::read_link(path)
    {
        let next = match path.parent() {
            Some(dir) if target.is_relative() => dir.join(target),
            _ => target,
        };
        return would_be_made_at(&next, hops + 1);
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let dir = std::fs::canonicalize(dir).unwrap_or_else(|_| {
        std::env::current_dir()
            .map(|cwd| cwd.join(dir))
            .unwrap_or_else(|_| dir.to_path_buf())
    });
    match path.file_name() {
        Some(name) => dir.join(name),
        None => dir,
    }
}

/// Reads a regular file of `kind`, up to its bound.
pub fn read(path: &Path, kind: Kind) -> Result<Vec<u8>, FileError> {
    let (mut file, _) = open_regular(path, kind)?;
    read_bounded(&mut file, path, kind)
}

/// Reads a regular file of `kind` as UTF-8 text.
pub fn read_text(path: &Path, kind: Kind) -> Result<String, FileError> {
    let bytes = read(path, kind)?;
    String::from_utf8(bytes).map_err(|e| FileError::Read {
        what: kind.what,
        path: path.to_path_buf(),
        source: io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "not UTF-8 text (invalid byte at offset {}); the file must be UTF-8",
                e.utf8_error().valid_up_to()
            ),
        ),
    })
}

/// Opens a regular file of `kind` to read it as a stream, refusing it when it is larger than
/// the kind's bound (read it through `take(kind.max_bytes)`: it may still grow).
pub fn open_bounded(path: &Path, kind: Kind) -> Result<File, FileError> {
    let (file, meta) = open_regular(path, kind)?;
    if meta.len() > kind.max_bytes {
        return Err(too_large(path, kind, meta.len()));
    }
    Ok(file)
}

/// Reads a secret: a regular file owned by this user (or root) that nobody else may read or
/// write.
pub(crate) fn read_secret(path: &Path, kind: Kind) -> Result<Vec<u8>, FileError> {
    let (mut file, meta) = open_regular(path, kind)?;
    check_private(path, kind, &file, &meta)?;
    read_bounded(&mut file, path, kind)
}

/// Checks a secret that another library reads (a keytab): the same rules as [`read_secret`].
pub fn check_secret(path: &Path, kind: Kind) -> Result<(), FileError> {
    let (file, meta) = open_regular(path, kind)?;
    check_private(path, kind, &file, &meta)?;
    if meta.len() > kind.max_bytes {
        return Err(too_large(path, kind, meta.len()));
    }
    Ok(())
}

fn open_regular(path: &Path, kind: Kind) -> Result<(File, std::fs::Metadata), FileError> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        // O_NONBLOCK: opening a FIFO must not wait for a writer. It changes nothing for the
        // reads of a regular file, the only kind we go on to read.
        options.custom_flags(open_flags(OFlags::NONBLOCK | OFlags::NOCTTY));
    }
    let file = options.open(path).map_err(|source| {
        // Windows refuses to open a directory as a file ("Access denied"): say what is there.
        match std::fs::metadata(path) {
            Ok(meta) if meta.is_dir() => FileError::NotRegular {
                what: kind.what,
                path: path.to_path_buf(),
                found: describe_type(&meta.file_type()),
            },
            _ => FileError::Open {
                what: kind.what,
                path: path.to_path_buf(),
                source,
            },
        }
    })?;
    let meta = file.metadata().map_err(|source| FileError::Read {
        what: kind.what,
        path: path.to_path_buf(),
        source,
    })?;
    if !meta.is_file() {
        return Err(FileError::NotRegular {
            what: kind.what,
            path: path.to_path_buf(),
            found: describe_type(&meta.file_type()),
        });
    }
    if meta.len() > kind.max_bytes {
        return Err(too_large(path, kind, meta.len()));
    }
    Ok((file, meta))
}

/// Reads at most the bound (plus one byte, to tell a file that grew past it).
fn read_bounded(file: &mut File, path: &Path, kind: Kind) -> Result<Vec<u8>, FileError> {
    let mut bytes = Vec::new();
    file.take(kind.max_bytes.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|source| FileError::Read {
            what: kind.what,
            path: path.to_path_buf(),
            source,
        })?;
    if bytes.len() as u64 > kind.max_bytes {
        return Err(too_large(path, kind, bytes.len() as u64));
    }
    Ok(bytes)
}

fn too_large(path: &Path, kind: Kind, size: u64) -> FileError {
    FileError::TooLarge {
        what: kind.what,
        path: path.to_path_buf(),
        size,
        max: kind.max_bytes,
    }
}

#[cfg(unix)]
fn check_private(
    path: &Path,
    kind: Kind,
    _file: &File,
    meta: &std::fs::Metadata,
) -> Result<(), FileError> {
    use std::os::unix::fs::MetadataExt;
    let me = current_uid();
    if meta.uid() != me && meta.uid() != 0 {
        return Err(FileError::Owner {
            what: kind.what,
            path: path.to_path_buf(),
            owner: meta.uid(),
            me,
        });
    }
    let mode = meta.mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(FileError::Permissions {
            what: kind.what,
            path: path.to_path_buf(),
            mode,
        });
    }
    Ok(())
}

/// On Windows the open handle's DACL: nobody but the owner, SYSTEM and the Administrators may
/// read or change a secret (see [`super::security::foreign_file_access`]).
#[cfg(windows)]
fn check_private(
    path: &Path,
    kind: Kind,
    file: &File,
    _meta: &std::fs::Metadata,
) -> Result<(), FileError> {
    use super::security::{SecurityDescriptor, foreign_file_access};
    let unreadable = |source: io::Error| FileError::Read {
        what: kind.what,
        path: path.to_path_buf(),
        source,
    };
    let bytes = super::windows::descriptor_of(file).map_err(unreadable)?;
    let descriptor = SecurityDescriptor::parse(&bytes)
        .map_err(|e| unreadable(io::Error::new(io::ErrorKind::InvalidData, e.to_string())))?;
    let Some(foreign) = foreign_file_access(&descriptor).into_iter().next() else {
        return Ok(());
    };
    let named = |sid: &super::security::Sid| {
        let name =
            super::windows::account_name(sid).or_else(|| sid.well_known_name().map(str::to_owned));
        match name {
            Some(name) => format!("{name} ({sid})"),
            None => sid.to_string(),
        }
    };
    let owner = descriptor
        .owner
        .as_ref()
        .map_or_else(|| "%USERNAME%".to_string(), |o| format!("*{o}"));
    Err(FileError::SharedSecret(Box::new(SharedSecret {
        what: kind.what,
        path: path.to_path_buf(),
        principal: named(&foreign.sid),
        rights: foreign.rights.join(" and "),
        fix: format!(
            "icacls \"{}\" /inheritance:r /remove:g *{} /grant:r {owner}:F *S-1-5-18:F *S-1-5-32-544:F",
            path.display(),
            foreign.sid
        ),
    })))
}

#[cfg(not(any(unix, windows)))]
fn check_private(
    _path: &Path,
    _kind: Kind,
    _file: &File,
    _meta: &std::fs::Metadata,
) -> Result<(), FileError> {
    Ok(())
}

/// This process's effective user id.
#[cfg(unix)]
pub fn current_uid() -> u32 {
    rustix::process::geteuid().as_raw()
}

/// `OpenOptionsExt::custom_flags` takes the raw `open(2)` flags.
#[cfg(unix)]
pub(crate) fn open_flags(flags: OFlags) -> i32 {
    flags.bits() as i32
}

fn describe_type(file_type: &std::fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if file_type.is_char_device() {
            return "a character device";
        }
        if file_type.is_block_device() {
            return "a block device";
        }
        if file_type.is_fifo() {
            return "a FIFO (named pipe)";
        }
        if file_type.is_socket() {
            return "a socket";
        }
    }
    if file_type.is_dir() {
        "a directory"
    } else if file_type.is_symlink() {
        "a symbolic link"
    } else if file_type.is_file() {
        "a regular file"
    } else {
        "not a regular file"
    }
}

/// Writes a report to `path` as the module documentation says: links followed, a regular file
/// replaced atomically keeping its mode and owner, a character device or FIFO written directly,
/// anything else refused. `-` is standard output.
pub fn write_report(
    path: &Path,
    write: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> Result<(), FileError> {
    let kind = REPORT;
    let failed = |source: io::Error| FileError::Write {
        what: kind.what,
        path: path.to_path_buf(),
        source,
    };
    if is_windows_device(path) {
        // `-o NUL` discards, `-o CON` is the console: written directly, as /dev/null is.
        let mut device = std::fs::OpenOptions::new()
            .write(true)
            .open(path)
            .map_err(failed)?;
        write(&mut device).map_err(failed)?;
        return device.flush().map_err(failed);
    }
    match std::fs::metadata(path) {
        Ok(meta) if meta.is_file() => {
            // Replace the file the link points at, not the link.
            let real = std::fs::canonicalize(path).map_err(failed)?;
            replace_atomically(&real, kind, Some(&meta), write)
        }
        Ok(meta) if is_stream(&meta.file_type()) => {
            let mut file = open_stream(path, FIFO_READER_WAIT).map_err(failed)?;
            write(&mut file).map_err(failed)?;
            file.flush().map_err(failed)
        }
        Ok(meta) => Err(FileError::NotWritable {
            what: kind.what,
            path: path.to_path_buf(),
            found: describe_type(&meta.file_type()),
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            if let Ok(link) = std::fs::symlink_metadata(path)
                && link.file_type().is_symlink()
            {
                let target = std::fs::read_link(path)
                    .map(|t| format!(" to {}, which does not exist", t.display()))
                    .unwrap_or_default();
                return Err(failed(io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("it is a symbolic link{target}"),
                )));
            }
            replace_atomically(path, kind, None, write)
        }
        Err(e) => Err(failed(e)),
    }
}

/// How long a report waits for a FIFO's reader to appear before giving up.
const FIFO_READER_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// Opens a character device or FIFO for writing. A FIFO without a reader is waited for up to
/// `wait` (opening it blocking would wait forever, after the whole scan), then refused.
fn open_stream(path: &Path, wait: std::time::Duration) -> io::Result<File> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        let started = std::time::Instant::now();
        loop {
            let opened = std::fs::OpenOptions::new()
                .write(true)
                .custom_flags(open_flags(OFlags::NONBLOCK | OFlags::NOCTTY))
                .open(path);
            match opened {
                Ok(file) => {
                    // Blocking writes from here: a slow reader is waited for, not an error.
                    if let Ok(flags) = rustix::fs::fcntl_getfl(&file) {
                        let _ = rustix::fs::fcntl_setfl(&file, flags - OFlags::NONBLOCK);
                    }
                    return Ok(file);
                }
                // ENXIO: a FIFO that nobody reads (yet).
                Err(e) if e.raw_os_error() == Some(rustix::io::Errno::NXIO.raw_os_error()) => {
                    if started.elapsed() >= wait {
                        return Err(io::Error::new(
                            io::ErrorKind::TimedOut,
                            format!(
                                "it is a FIFO (named pipe) that nothing read from for {} s; start the reading side first (e.g. `cat FIFO`), or write to a file",
                                wait.as_secs()
                            ),
                        ));
                    }
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
                Err(e) => return Err(e),
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = wait;
        std::fs::OpenOptions::new().write(true).open(path)
    }
}

/// A Windows device (see [`names_windows_device`]); never on other systems.
fn is_windows_device(path: &Path) -> bool {
    cfg!(windows) && names_windows_device(path)
}

/// Whether Windows reads `path` as a device: `NUL`, `CON`, `COM1`, ... in any case, with or
/// without a folder or an extension (`C:\out\nul.txt` is `NUL`), or a `\\.\` path.
fn names_windows_device(path: &Path) -> bool {
    let text = path.to_string_lossy();
    if text.starts_with(r"\\.\") || text.starts_with(r"\\?\GLOBALROOT") {
        return true;
    }
    // The last component, after either separator.
    let name = text
        .rsplit(['\\', '/'])
        .next()
        .unwrap_or_default()
        .to_ascii_uppercase();
    let stem = name
        .split('.')
        .next()
        .unwrap_or_default()
        .trim_end_matches([' ', ':']);
    matches!(stem, "NUL" | "CON" | "PRN" | "AUX" | "CONIN$" | "CONOUT$")
        || ((stem.starts_with("COM") || stem.starts_with("LPT"))
            && stem.len() == 4
            && stem.as_bytes()[3].is_ascii_digit()
            && stem.as_bytes()[3] != b'0')
}

fn is_stream(file_type: &std::fs::FileType) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        file_type.is_char_device() || file_type.is_fifo()
    }
    #[cfg(not(unix))]
    {
        let _ = file_type;
        false
    }
}

/// Replaces one of the tool's own files (the state file) atomically. A symbolic link or anything
/// but a regular file at `path` is refused; an existing file keeps its mode, a new one is 0600.
pub(crate) fn write_private(
    path: &Path,
    kind: Kind,
    write: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> Result<(), FileError> {
    let existing = own_file_metadata(path, kind)?;
    replace_atomically(path, kind, existing.as_ref(), write)
}

/// The metadata of one of the tool's own files, `None` if it does not exist yet; a symbolic
/// link or a non-regular file is an error.
pub(crate) fn own_file_metadata(
    path: &Path,
    kind: Kind,
) -> Result<Option<std::fs::Metadata>, FileError> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => Err(symlink_error(path, kind)),
        Ok(meta) if !meta.is_file() => Err(FileError::NotRegular {
            what: kind.what,
            path: path.to_path_buf(),
            found: describe_type(&meta.file_type()),
        }),
        Ok(meta) => Ok(Some(meta)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(FileError::Open {
            what: kind.what,
            path: path.to_path_buf(),
            source,
        }),
    }
}

fn symlink_error(path: &Path, kind: Kind) -> FileError {
    FileError::Symlink {
        what: kind.what,
        path: path.to_path_buf(),
        target: std::fs::read_link(path)
            .map(|t| format!(" (to {})", t.display()))
            .unwrap_or_default(),
    }
}

/// Writes to a new temporary file beside `path` (never following a link, never reusing a
/// name), syncs it, gives it `existing`'s mode and owner (or 0600 for the tool's own files, the
/// umask's default for a new report), and renames it over `path`.
fn replace_atomically(
    path: &Path,
    kind: Kind,
    existing: Option<&std::fs::Metadata>,
    write: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> Result<(), FileError> {
    let failed = |source: io::Error| FileError::Write {
        what: kind.what,
        path: path.to_path_buf(),
        source,
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| failed(io::Error::other("the path has no file name")))?;
    let (tmp, file) = create_temp(&dir, name, kind).map_err(failed)?;
    let result = (|| {
        let mut buffered = io::BufWriter::new(&file);
        write(&mut buffered)?;
        buffered.flush()?;
        drop(buffered);
        set_mode_and_owner(&file, kind, existing)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(failed(e));
    }
    if let Ok(d) = File::open(&dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

fn create_temp(dir: &Path, name: &std::ffi::OsStr, kind: Kind) -> io::Result<(PathBuf, File)> {
    let mut attempt = 0u32;
    loop {
        let mut tmp_name = std::ffi::OsString::from(".");
        tmp_name.push(name);
        tmp_name.push(format!(".tmp.{}.{attempt}", std::process::id()));
        let tmp = dir.join(tmp_name);
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options
                .custom_flags(open_flags(OFlags::NOFOLLOW))
                .mode(if kind == REPORT { 0o666 } else { 0o600 });
        }
        // Windows: the tool's own files get a private DACL from the start; a report the folder's.
        #[cfg(windows)]
        let opened = if kind == REPORT {
            options.open(&tmp)
        } else {
            super::windows::open_private(&tmp, super::windows::Create::New)
        };
        #[cfg(not(windows))]
        let opened = options.open(&tmp);
        match opened {
            Ok(file) => return Ok((tmp, file)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && attempt < 100 => attempt += 1,
            Err(e) => return Err(e),
        }
    }
}

#[cfg(unix)]
fn set_mode_and_owner(
    file: &File,
    kind: Kind,
    existing: Option<&std::fs::Metadata>,
) -> io::Result<()> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let Some(meta) = existing else {
        return Ok(());
    };
    // Owner first: chown clears set-id bits, the mode below puts back what was there.
    if current_uid() == 0 && (meta.uid() != 0 || meta.gid() != 0) {
        let _ = std::os::unix::fs::fchown(file, Some(meta.uid()), Some(meta.gid()));
    }
    let _ = kind;
    file.set_permissions(std::fs::Permissions::from_mode(meta.mode() & 0o7777))
}

#[cfg(not(unix))]
fn set_mode_and_owner(
    _file: &File,
    _kind: Kind,
    _existing: Option<&std::fs::Metadata>,
) -> io::Result<()> {
    Ok(())
}

/// Opens one of the tool's own append-only files (undo file, audit log): never through a
/// symbolic link, created 0600. The undo file must be a regular file (it is read back by
/// `restore`); the audit log may also be a character device or a FIFO (a log shipper).
pub(crate) fn open_append(path: &Path, kind: Kind) -> Result<File, FileError> {
    let open_error = |source: io::Error| FileError::Open {
        what: kind.what,
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
        && !dir.exists()
    {
        create_private_dir(dir).map_err(open_error)?;
    }
    let file = match open_own(path, OwnOpen::Append) {
        Ok(file) => file,
        Err(_) if is_symlink(path) => return Err(symlink_error(path, kind)),
        Err(e) => return Err(open_error(e)),
    };
    let meta = file.metadata().map_err(open_error)?;
    let acceptable = meta.is_file() || (kind == AUDIT_LOG && is_stream(&meta.file_type()));
    if !acceptable {
        return Err(FileError::NotRegular {
            what: kind.what,
            path: path.to_path_buf(),
            found: describe_type(&meta.file_type()),
        });
    }
    #[cfg(unix)]
    {
        // Back to blocking writes: O_NONBLOCK was only for the open of a FIFO (which fails
        // at once without a reader). A FIFO's reader that is slow is waited for: every audit
        // line must arrive, and a non-blocking write would fail with EAGAIN when the pipe is full.
        if let Ok(flags) = rustix::fs::fcntl_getfl(&file) {
            let _ = rustix::fs::fcntl_setfl(&file, flags - OFlags::NONBLOCK);
        }
    }
    Ok(file)
}

/// How one of the tool's own files is opened by [`open_own`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OwnOpen {
    /// Appended to, created when missing (undo file, audit log).
    Append,
    /// Read and written, created when missing, never truncated (the state's lock).
    ReadWrite,
}

/// Opens one of the tool's own files, creating it private: on Unix never through a symbolic
/// link, without blocking on a FIFO or taking a terminal, mode 0600; on Windows with a
/// protected DACL of the owner, SYSTEM and Administrators (see [`super::windows::open_private`]).
/// An existing file keeps its own permissions.
pub(crate) fn open_own(path: &Path, how: OwnOpen) -> io::Result<File> {
    #[cfg(windows)]
    {
        let how = match how {
            OwnOpen::Append => super::windows::Create::Append,
            OwnOpen::ReadWrite => super::windows::Create::ReadWrite,
        };
        super::windows::open_private(path, how)
    }
    #[cfg(not(windows))]
    {
        let mut options = std::fs::OpenOptions::new();
        match how {
            OwnOpen::Append => options.append(true).create(true),
            OwnOpen::ReadWrite => options.read(true).write(true).create(true).truncate(false),
        };
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options
                .custom_flags(open_flags(
                    OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::NOCTTY,
                ))
                .mode(0o600);
        }
        options.open(path)
    }
}

fn is_symlink(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink())
}

/// Creates a directory (and its parents) for the tool's own files, private to this user.
pub(crate) fn create_private_dir(dir: &Path) -> io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_device_names_are_known_as_windows_reads_them() {
        for device in [
            "NUL",
            "nul",
            "C:\\out\\nul.txt",
            "con",
            "CONOUT$",
            "COM1",
            "lpt9",
            "aux.log",
            r"\\.\pipe\x",
            "NUL:",
            "x/Nul",
        ] {
            assert!(names_windows_device(Path::new(device)), "{device}");
        }
        for file in [
            "null",
            "nul2",
            "COM0",
            "COM10",
            "console.txt",
            "C:\\nul\\report.json",
            "report",
        ] {
            assert!(!names_windows_device(Path::new(file)), "{file}");
        }
    }

    #[cfg(unix)]
    #[test]
    fn a_fifo_without_a_reader_is_given_up_on_and_one_with_a_reader_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("out.pipe");
        rustix::fs::mknodat(
            rustix::fs::CWD,
            &fifo,
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::from_raw_mode(0o600),
            0,
        )
        .unwrap();
        let started = std::time::Instant::now();
        let err = open_stream(&fifo, std::time::Duration::from_millis(200)).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert!(err.to_string().contains("nothing read from"), "{err}");
        assert!(started.elapsed() < std::time::Duration::from_secs(2));
        let reader = {
            let fifo = fifo.clone();
            std::thread::spawn(move || std::fs::read_to_string(fifo).unwrap())
        };
        let mut file = open_stream(&fifo, std::time::Duration::from_secs(10)).unwrap();
        file.write_all(b"report\n").unwrap();
        drop(file);
        assert_eq!(reader.join().unwrap(), "report\n");
    }
    #[cfg(unix)]
    use std::os::unix::fs::PermissionsExt;

    fn dir() -> tempfile::TempDir {
        tempfile::tempdir().unwrap()
    }

    #[test]
    fn reads_are_bounded_and_regular_only() {
        let d = dir();
        let small = d.path().join("small");
        std::fs::write(&small, "abc").unwrap();
        let tiny = Kind {
            what: "thing",
            max_bytes: 2,
        };
        let err = read(&small, tiny).unwrap_err().to_string();
        assert!(err.contains("larger than 2 bytes"), "{err}");
        assert_eq!(read(&small, CONFIG).unwrap(), b"abc");
        let err = read(d.path(), CONFIG).unwrap_err().to_string();
        assert!(err.contains("is a directory"), "{err}");
        #[cfg(unix)]
        {
            let err = read(Path::new("/dev/zero"), CONFIG)
                .unwrap_err()
                .to_string();
            assert!(err.contains("character device"), "{err}");
        }
    }

    #[test]
    fn a_fifo_is_refused_without_waiting_for_a_writer() {
        let d = dir();
        let fifo = d.path().join("fifo");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());
        let err = read(&fifo, STATE).unwrap_err().to_string();
        assert!(err.contains("FIFO"), "{err}");
    }

    #[test]
    fn non_utf8_text_names_the_offset() {
        let d = dir();
        let path = d.path().join("latin1");
        std::fs::write(&path, b"ab\xe9cd").unwrap();
        let err = read_text(&path, CONFIG).unwrap_err().to_string();
        assert!(err.contains("offset 2") && err.contains("UTF-8"), "{err}");
    }

    #[cfg(unix)]
    #[test]
    fn secrets_must_be_private() {
        let d = dir();
        let path = d.path().join("key");
        std::fs::write(&path, "k").unwrap();
        for (mode, ok) in [(0o600, true), (0o400, true), (0o640, false), (0o604, false)] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            let result = read_secret(&path, TSIG_KEY);
            assert_eq!(result.is_ok(), ok, "mode {mode:o}: {result:?}");
            if !ok {
                let err = result.unwrap_err().to_string();
                assert!(err.contains("chmod 600"), "{err}");
            }
        }
    }

    #[cfg(unix)]
    #[test]
    fn reports_replace_files_atomically_keeping_their_mode() {
        let d = dir();
        let path = d.path().join("report.json");
        std::fs::write(&path, "old").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        write_report(&path, |w: &mut dyn Write| w.write_all(b"new")).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        // Through a link: the link stays, the file it points at is replaced.
        let link = d.path().join("link.json");
        std::os::unix::fs::symlink(&path, &link).unwrap();
        write_report(&link, |w: &mut dyn Write| w.write_all(b"via link")).unwrap();
        assert!(
            std::fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "via link");
        let leftovers = std::fs::read_dir(d.path())
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .contains(".tmp.")
            })
            .count();
        assert_eq!(leftovers, 0);
        let err = write_report(d.path(), |w: &mut dyn Write| w.write_all(b"x"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("directory"), "{err}");
    }

    #[cfg(unix)]
    #[test]
    fn own_files_refuse_links() {
        let d = dir();
        let real = d.path().join("real");
        std::fs::write(&real, "precious").unwrap();
        let link = d.path().join("state.json");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let err = write_private(&link, STATE, |w: &mut dyn Write| w.write_all(b"{}"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("symbolic link"), "{err}");
        let err = open_append(&link, UNDO).unwrap_err().to_string();
        assert!(err.contains("symbolic link"), "{err}");
        assert_eq!(std::fs::read_to_string(&real).unwrap(), "precious");
        let fresh = d.path().join("sub/undo.txt");
        open_append(&fresh, UNDO).unwrap();
        let mode = std::fs::metadata(&fresh).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
}
