//! What depends on the person at the terminal and on the process: the progress bar, the
//! confirmation before deleting, the format chosen by where the output goes, logging, and the
//! process set-up done before any thread starts.

use std::io::IsTerminal;
use std::time::Duration;

use vlmcs_audit::clean::Plan;
use vlmcs_audit::command::scan::ScanProgress;
use vlmcs_audit::report::Format;

use super::args::{Command, OutputArgs};

/// A progress bar on stderr when a person is watching: stdout and stderr on a terminal, no
/// --quiet. It appears only once the scan has taken a moment.
pub(crate) struct Progress(indicatif::ProgressBar);

impl Progress {
    pub(crate) fn new(quiet: bool) -> Option<Self> {
        if quiet || !std::io::stdout().is_terminal() || !std::io::stderr().is_terminal() {
            return None;
        }
        let bar = indicatif::ProgressBar::hidden();
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "{spinner} scanning {pos}/{len} domains [{elapsed}] {wide_bar}",
        ) {
            bar.set_style(style);
        }
        Some(Self(bar))
    }

    /// Clears the bar before the report is written.
    pub(crate) fn finish(&self) {
        self.0.finish_and_clear();
    }
}

impl ScanProgress for Progress {
    fn started(&self, domains: usize) {
        self.0.set_length(domains as u64);
        let shown = self.0.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(700));
            if !shown.is_finished() {
                shown.set_draw_target(indicatif::ProgressDrawTarget::stderr());
                shown.enable_steady_tick(Duration::from_millis(120));
            }
        });
    }

    fn domain_done(&self) {
        self.0.inc(1);
    }
}

/// Asks on the terminal before anything is deleted; only `yes` agrees.
pub(crate) fn confirm(plan: &Plan) -> bool {
    use std::io::{BufRead, Write};
    let count = plan.deletions().count();
    eprintln!("About to delete {count} record(s) from DNS:");
    for item in plan.deletions() {
        eprintln!("  {} {}  ({})", item.owner, item.record, item.reason);
    }
    eprint!("Type `yes` to delete them: ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    let _ = std::io::stdin().lock().read_line(&mut answer);
    answer.trim() == "yes"
}

/// Whether a confirmation can be asked for at all.
pub(crate) fn can_confirm() -> bool {
    std::io::stdin().is_terminal()
}

/// The format asked for, else a table on a terminal and JSON elsewhere; and whether to color.
pub(crate) fn output_format(output: &OutputArgs) -> (Format, bool) {
    let to_terminal = output.output.is_none() && std::io::stdout().is_terminal();
    let format = output.format.map_or(
        if to_terminal {
            Format::Table
        } else {
            Format::Json
        },
        Format::from,
    );
    let color = to_terminal
        && !output.no_color
        && std::env::var_os("NO_COLOR").is_none()
        && console_shows_colour();
    (format, color)
}

/// Whether colours written as escape sequences show as colours: always on Unix terminals; on
/// Windows once the console's VT processing is on (Windows 10 and later).
fn console_shows_colour() -> bool {
    #[cfg(windows)]
    return vlmcs_audit::support::windows::enable_virtual_terminal();
    #[cfg(not(windows))]
    true
}

/// Diagnostics on stderr: warnings, `-v` info, `-vv` debug; `RUST_LOG` wins.
pub(crate) fn init_logging(verbose: u8) {
    // hickory's own warnings (a reply from an unexpected source, say) are ours to report in
    // findings; they show from -v on.
    let default = match verbose {
        0 => "warn,hickory_net=error,hickory_proto=error,hickory_resolver=error",
        1 => "info,hickory_net=warn,hickory_proto=warn,hickory_resolver=warn",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    // Colour only for a person at a terminal (never in a log file, a pipe or a journal), and
    // not on Windows, whose classic console shows escape sequences as they are.
    let colour =
        std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none() && !cfg!(windows);
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(colour)
        .try_init();
}

/// Every probe and TCP query holds a socket: lift the soft limit on open files to the hard
/// limit, so a high --concurrency is not cut short by the default of 1024.
pub(crate) fn raise_open_file_limit() {
    #[cfg(unix)]
    {
        use rustix::process::{Resource, getrlimit, setrlimit};
        let limit = getrlimit(Resource::Nofile);
        if limit.current < limit.maximum {
            let raised = rustix::process::Rlimit {
                current: limit.maximum,
                ..limit
            };
            let _ = setrlimit(Resource::Nofile, raised);
        }
    }
}

/// A keytab is handed to MIT Kerberos through the environment, which must be set before any
/// thread starts; a private in-memory ticket cache keeps the user's own cache untouched.
#[allow(
    unsafe_code,
    reason = "set_var before any thread exists: the only way to pass MIT Kerberos a keytab"
)]
pub(crate) fn prepare_kerberos_environment(command: &Command) {
    let keytab = match command {
        Command::Clean(args) => args.auth.keytab.as_ref(),
        Command::Restore(args) => args.auth.keytab.as_ref(),
        Command::Scan(_)
        | Command::Report(_)
        | Command::Completions { .. }
        | Command::Man { .. } => None,
    };
    if let Some(keytab) = keytab {
        // SAFETY: called before the async runtime (or any other thread) is started.
        unsafe {
            std::env::set_var("KRB5_CLIENT_KTNAME", keytab);
            std::env::set_var("KRB5CCNAME", "MEMORY:vlmcs-audit");
        }
    }
}
