//! The command line: clap definitions, turned into validated settings before any work starts.
//! `main.rs` only calls [`run`].

use std::io::IsTerminal;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::config::{self, Overrides};
use crate::discover;
use crate::model::exit_code;
use crate::report::{self, Format};
use crate::scan;

const AFTER_HELP: &str = "\
Exit codes (Nagios/Icinga convention):
  0  nothing above info        1  at least one warning
  2  at least one critical     3  the scan could not run or complete (bad input, DNS unreachable)

Examples:
  vlmcs-audit scan corp.example.com emea.corp.example.com
  vlmcs-audit scan --config audit.yaml --format json
  vlmcs-audit scan --server 10.0.0.5:53 corp.example.com
  vlmcs-audit scan            # this machine's DNS search domains, where a KMS client would look";

#[derive(Debug, Parser)]
#[command(
    name = "vlmcs-audit",
    version,
    about = "Audit the _vlmcs._tcp SRV records that announce Microsoft KMS hosts",
    long_about = "Audit the _vlmcs._tcp SRV records that announce Microsoft KMS hosts: ask every \
authoritative server what is published, resolve every target, check each host for a live KMS RPC \
endpoint (a DCE/RPC bind only: no activation request, no change to any host's client count), and \
report what is healthy, dead, rogue or broken.",
    after_help = AFTER_HELP
)]
pub struct Cli {
    /// More diagnostics on stderr (-v info, -vv debug); RUST_LOG works too.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Enumerate, probe and classify the _vlmcs._tcp records of one or more domains.
    Scan(ScanArgs),
}

#[derive(Debug, Args)]
#[command(after_help = AFTER_HELP)]
struct ScanArgs {
    /// Domains to audit (default: the config's domains, else this machine's DNS search domains).
    #[arg(value_name = "DOMAIN")]
    domains: Vec<String>,
    /// YAML configuration file (see examples/audit.yaml).
    #[arg(short, long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Ask this DNS server instead of discovering the authoritative ones (repeatable).
    #[arg(short, long = "server", value_name = "ADDR[:PORT]")]
    servers: Vec<String>,
    /// Recursive resolver for discovery and target lookups (repeatable; default: the system's).
    #[arg(long = "resolver", value_name = "ADDR[:PORT]")]
    resolvers: Vec<String>,
    /// Authorize a KMS host by name, address or network (repeatable; adds to the config).
    #[arg(long = "allow", value_name = "HOST")]
    allow: Vec<String>,
    /// Output format [default: table on a terminal, json otherwise].
    #[arg(short, long, value_enum)]
    format: Option<Format>,
    /// Write the report to FILE instead of standard output.
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Timeout of each DNS query and each host probe, e.g. 2s or 500ms [default: 3s].
    #[arg(short, long, value_name = "DURATION")]
    timeout: Option<String>,
    /// How many DNS queries and probes run at once [default: 256].
    #[arg(long, value_name = "N")]
    concurrency: Option<usize>,
    /// Port of the authoritative servers found through NS records [default: 53].
    #[arg(long, value_name = "PORT")]
    nameserver_port: Option<u16>,
    /// Skip the second bind that tells KMS emulators from Windows KMS hosts.
    #[arg(long)]
    no_emulator_check: bool,
    /// Never color the table (NO_COLOR is honoured too).
    #[arg(long)]
    no_color: bool,
}

/// Parses `args`, runs the command and returns the process exit code.
pub fn run<I, T>(args: I) -> i32
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
    init_logging(cli.verbose);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return exit_code::UNKNOWN;
        }
    };
    match cli.command {
        Command::Scan(args) => match runtime.block_on(scan_command(args)) {
            Ok(code) => code,
            Err(message) => {
                eprintln!("error: {message}");
                exit_code::UNKNOWN
            }
        },
    }
}

async fn scan_command(args: ScanArgs) -> Result<i32, String> {
    let file = match &args.config {
        Some(path) => Some((
            path.as_path(),
            config::load_file(path).map_err(|e| e.to_string())?,
        )),
        None => None,
    };
    let overrides = Overrides {
        domains: args.domains,
        servers: args.servers,
        resolvers: args.resolvers,
        allow: args.allow,
        timeout: args.timeout,
        concurrency: args.concurrency,
        nameserver_port: args.nameserver_port,
        no_emulator_check: args.no_emulator_check,
    };
    let settings = config::build(file, &overrides, discover::system_search_domains)
        .map_err(|e| e.to_string())?;
    tracing::info!(domains = settings.domains.len(), timeout = ?settings.timeout, "scan starting");
    let report = scan::run(&settings).await;

    let to_terminal = args.output.is_none() && std::io::stdout().is_terminal();
    let format = args.format.unwrap_or(if to_terminal {
        Format::Table
    } else {
        Format::Json
    });
    let color = to_terminal && !args.no_color && std::env::var_os("NO_COLOR").is_none();
    let text = report::render(&report, format, color)?;
    match &args.output {
        Some(path) => std::fs::write(path, text)
            .map_err(|e| format!("cannot write the report to {}: {e}", path.display()))?,
        None => {
            use std::io::Write;
            let mut stdout = std::io::stdout().lock();
            // A closed pipe (`| head`) is not worth a panic.
            let _ = stdout.write_all(text.as_bytes());
            let _ = stdout.flush();
        }
    }
    Ok(report.exit_code)
}

fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
