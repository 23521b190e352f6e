//! The command line: clap → the library's request → the command → the renderer. The
//! decisions are the library's ([`vlmcs_audit::command`]); here are the flags ([`args`]) and
//! what depends on the terminal ([`terminal`]). `main.rs` only calls [`run`].

mod args;
mod terminal;

use clap::Parser as _;
use vlmcs_audit::command;
use vlmcs_audit::model::exit_code;
use vlmcs_audit::report::output::{write_text, write_to};
use vlmcs_audit::report::{self, Format};

use args::{CleanArgs, Cli, Command, ManPage, ReportArgs, ReportFormat, RestoreArgs, ScanArgs};

/// Any command's failure, its causes kept for the message.
type Failure = Box<dyn std::error::Error + Send + Sync>;

/// Parses `args`, runs the command and returns the process exit code.
pub(crate) fn run<I, T>(args: I) -> i32
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            // clap would exit 2, which monitoring reads as CRITICAL: bad usage is UNKNOWN.
            return match e.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => {
                    exit_code::OK
                }
                _ => exit_code::UNKNOWN,
            };
        }
    };
    terminal::init_logging(cli.verbose);
    terminal::raise_open_file_limit();
    terminal::prepare_kerberos_environment(&cli.command);
    // One thread, as massdns and nmap: the work is waiting on sockets, and a scan of 10,000
    // domains spent a sixth of its CPU waking threads to hand replies and probe results from
    // one to another (BENCHMARKS.md). Blocking steps (the state file's lock) use tokio's
    // blocking pool.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return exit_code::UNKNOWN;
        }
    };
    let quiet = cli.quiet;
    let result = match cli.command {
        Command::Scan(args) => runtime.block_on(scan_command(args, quiet)),
        Command::Clean(args) => runtime.block_on(clean_command(*args)),
        Command::Restore(args) => runtime.block_on(restore_command(args)),
        Command::Report(args) => runtime.block_on(report_command(args)),
        Command::Completions { shell } => completions(shell),
        Command::Man { subcommand } => man_page(subcommand),
    };
    match result {
        Ok(code) => code,
        Err(failure) => {
            print_error(failure.as_ref());
            exit_code::UNKNOWN
        }
    }
}

async fn scan_command(args: ScanArgs, quiet: bool) -> Result<i32, Failure> {
    let (format, color) = terminal::output_format(&args.output);
    let output = args.output.output.clone();
    let progress = terminal::Progress::new(quiet);
    let scanned = command::scan::run(
        args.request(format),
        progress
            .as_ref()
            .map(|p| p as &dyn command::scan::ScanProgress),
    )
    .await;
    if let Some(progress) = &progress {
        progress.finish();
    }
    let mut outcome = scanned?;
    if outcome.has_report() {
        write_to(output.as_deref(), |out| outcome.write(format, color, out))?;
    }
    Ok(outcome.exit_code())
}

async fn clean_command(args: CleanArgs) -> Result<i32, Failure> {
    let (format, _) = terminal::output_format(&args.output);
    let output = args.output.output.clone();
    let yes = args.yes;
    let prepared = command::clean::prepare(args.command()).await?;
    if prepared.applies() && !yes && !terminal::can_confirm() {
        return Err("refusing to change DNS without confirmation: standard input is not a terminal; add --yes for unattended runs".into());
    }
    let result = prepared
        .run(Box::new(move |plan| yes || terminal::confirm(plan)))
        .await?;
    write_text(output.as_deref(), &command::clean::render(&result, format)?)?;
    Ok(result.exit_code)
}

async fn report_command(args: ReportArgs) -> Result<i32, Failure> {
    // A saved scan is read as a stream; otherwise the same audit as `scan` with the same file.
    let source = command::report::source(
        args.from.as_deref(),
        args.target.request(&args.directory),
        args.output.as_deref(),
    )
    .await?;
    let view = source.view();
    write_to(args.output.as_deref(), |out| match args.format {
        ReportFormat::Markdown => vlmcs_audit::report::fixit::markdown_to(view, out),
        ReportFormat::Html => vlmcs_audit::report::fixit::html_to(view, out),
        ReportFormat::Prometheus => report::write(view, Format::Prometheus, false, out),
    })?;
    // The report was written: that is this command's success. The scan's severity is `scan`'s
    // exit code (a scheduler would show a written report as a failed task).
    Ok(exit_code::OK)
}

async fn restore_command(args: RestoreArgs) -> Result<i32, Failure> {
    let (format, _) = terminal::output_format(&args.output);
    let output = args.output.output.clone();
    let (results, code) = command::restore::run(args.request()).await?;
    write_text(
        output.as_deref(),
        &command::restore::render(&results, format)?,
    )?;
    Ok(code)
}

/// The shell completion script for `shell`.
fn completions(shell: clap_complete::Shell) -> Result<i32, Failure> {
    let mut command = <Cli as clap::CommandFactory>::command();
    // Into a buffer first: clap_complete panics on a closed pipe (`| head`).
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut command, "vlmcs-audit", &mut script);
    let mut script = String::from_utf8_lossy(&script).into_owned();
    if shell == clap_complete::Shell::Bash {
        // clap_complete (issue 6421) names a hyphenated binary's subcommand states two
        // ways (`vlmcs__audit__subcmd__scan` and `vlmcs__subcmd__audit__subcmd__scan`),
        // so no subcommand's options complete: make them one.
        script = script.replace("vlmcs__subcmd__audit", "vlmcs__audit");
    }
    write_text(None, &script)?;
    Ok(exit_code::OK)
}

/// The man page of the program or of one subcommand.
fn man_page(subcommand: Option<ManPage>) -> Result<i32, Failure> {
    let command = <Cli as clap::CommandFactory>::command();
    let command = match subcommand.map(ManPage::names) {
        None => command,
        Some((name, title)) => match command.find_subcommand(name) {
            Some(sub) => sub.clone().name(title).bin_name(title),
            None => command,
        },
    };
    let mut page = Vec::new();
    clap_mangen::Man::new(command).render(&mut page)?;
    write_text(None, &String::from_utf8_lossy(&page))?;
    Ok(exit_code::OK)
}

/// `error: …`, then each cause the message does not already say.
fn print_error(error: &(dyn std::error::Error + 'static)) {
    for line in error_lines(error) {
        eprintln!("{line}");
    }
}

fn error_lines(error: &(dyn std::error::Error + 'static)) -> Vec<String> {
    let mut said = error.to_string();
    let mut lines = vec![format!("error: {said}")];
    let mut cause = error.source();
    while let Some(e) = cause {
        let text = e.to_string();
        if !said.contains(&text) {
            lines.push(format!("  caused by: {text}"));
            said = text;
        }
        cause = e.source();
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::error_lines;

    #[derive(Debug, thiserror::Error)]
    #[error("cannot read the state")]
    struct Outer(#[source] std::io::Error);

    #[derive(Debug, thiserror::Error)]
    #[error("cannot read the state: {0}")]
    struct Saying(#[source] std::io::Error);

    #[test]
    fn causes_are_printed_once() {
        let io = || std::io::Error::other("disk on fire");
        assert_eq!(
            error_lines(&Outer(io())),
            ["error: cannot read the state", "  caused by: disk on fire"]
        );
        // A message that already says its cause does not repeat it.
        assert_eq!(
            error_lines(&Saying(io())),
            ["error: cannot read the state: disk on fire"]
        );
    }
}
