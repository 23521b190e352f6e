//! The command line: clap definitions, turned into validated settings before any work starts.
//! `main.rs` only calls [`run`].

use std::io::IsTerminal;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use std::time::Duration;

use vlmcs_audit::auth::{self, Auth};
use vlmcs_audit::clean;
use vlmcs_audit::config::{self, Overrides};
use vlmcs_audit::model::exit_code;
use vlmcs_audit::report::{self, Format, ReportError};

/// `--format`: the library's [`Format`], with the help text of each value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum OutputFormat {
    /// Tables for people (default on a terminal).
    Table,
    /// The JSON document described in README (default when not on a terminal).
    Json,
    /// The same document as YAML.
    Yaml,
    /// Prometheus text format, for node-exporter's textfile collector.
    Prometheus,
    /// One JSON object per finding and line, for log shippers.
    Jsonl,
    /// One row per finding (RFC 4180), for spreadsheets.
    Csv,
    /// A Nagios/Icinga plugin's output: status line, perfdata, a few lines (at most 4 KB).
    Nagios,
}

impl From<OutputFormat> for Format {
    fn from(format: OutputFormat) -> Self {
        match format {
            OutputFormat::Table => Self::Table,
            OutputFormat::Json => Self::Json,
            OutputFormat::Yaml => Self::Yaml,
            OutputFormat::Prometheus => Self::Prometheus,
            OutputFormat::Jsonl => Self::Jsonl,
            OutputFormat::Csv => Self::Csv,
            OutputFormat::Nagios => Self::Nagios,
        }
    }
}
use vlmcs_audit::scan;
use vlmcs_audit::state;

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
pub(crate) struct Cli {
    /// More diagnostics on stderr (-v info, -vv debug); RUST_LOG works too.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    /// No progress bar.
    #[arg(short, long, global = true)]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Enumerate, probe and classify the _vlmcs._tcp records of one or more domains.
    Scan(ScanArgs),
    /// Delete stale _vlmcs._tcp records through RFC 2136 dynamic update (plan only unless --apply).
    Clean(Box<CleanArgs>),
    /// Put back the records that a `clean` run deleted, from its undo file.
    Restore(RestoreArgs),
    /// A fix-it report (Markdown or HTML) from a fresh scan or a saved JSON scan.
    Report(ReportArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print a man page (roff) to standard output: vlmcs-audit(1), or a subcommand's
    /// (`man scan` is vlmcs-audit-scan(1)).
    Man {
        #[arg(value_enum)]
        subcommand: Option<ManPage>,
    },
}

/// The subcommands that have a page of their own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum ManPage {
    Scan,
    Clean,
    Restore,
    Report,
    Completions,
}

impl ManPage {
    fn names(self) -> (&'static str, &'static str) {
        match self {
            Self::Scan => ("scan", "vlmcs-audit-scan"),
            Self::Clean => ("clean", "vlmcs-audit-clean"),
            Self::Restore => ("restore", "vlmcs-audit-restore"),
            Self::Report => ("report", "vlmcs-audit-report"),
            Self::Completions => ("completions", "vlmcs-audit-completions"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum ReportFormat {
    Markdown,
    Html,
    /// The scan's metrics, for node-exporter's textfile collector: a scheduled run scans once
    /// (JSON with --state) and makes both the page and the metrics from that one scan.
    Prometheus,
}

#[derive(Debug, Args)]
struct ReportArgs {
    #[command(flatten)]
    target: TargetArgs,
    #[command(flatten)]
    directory: AdArgs,
    /// Build the report from a saved `scan --format json` instead of scanning.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["domains", "servers", "config", "ad", "allow_group"])]
    from: Option<PathBuf>,
    /// Report format.
    #[arg(short, long, value_enum, default_value = "markdown")]
    format: ReportFormat,
    /// Write the report to FILE instead of standard output.
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
}

/// What to audit and how: shared by `scan` and `clean`.
#[derive(Debug, Args)]
struct TargetArgs {
    /// Domains to audit (default: the config's domains, else this machine's DNS search domains).
    #[arg(value_name = "DOMAIN")]
    domains: Vec<String>,
    /// YAML configuration file (see examples/audit.yaml).
    #[arg(short, long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Ask this DNS server instead of discovering the authoritative ones (repeatable).
    #[arg(short, long = "server", value_name = "ADDR[:PORT]", value_parser = config::parse_server)]
    servers: Vec<std::net::SocketAddr>,
    /// Recursive resolver for discovery and target lookups (repeatable; default: the system's).
    #[arg(long = "resolver", value_name = "ADDR[:PORT]", value_parser = config::parse_server)]
    resolvers: Vec<std::net::SocketAddr>,
    /// Authorize a KMS host by name, address or network (repeatable; adds to the config).
    #[arg(long = "allow", value_name = "HOST", value_parser = vlmcs_audit::model::HostPattern::parse)]
    allow: Vec<vlmcs_audit::model::HostPattern>,
    /// Timeout of each DNS query and each host probe, e.g. 2s or 500ms (1ms to 10m) [default: 3s].
    #[arg(short, long, value_name = "DURATION", value_parser = config::Timeout::parse)]
    timeout: Option<config::Timeout>,
    /// How many DNS queries and probes run at once (1 to 100000) [default: 256].
    #[arg(long, value_name = "N", value_parser = config::Concurrency::parse)]
    concurrency: Option<config::Concurrency>,
    /// A hard cap on queries per second towards any one DNS server, on top of the adaptive
    /// window (up to 1000000) [default: 0, no cap].
    #[arg(long, value_name = "N", value_parser = config::Qps::parse)]
    qps: Option<config::Qps>,
    /// Port of the authoritative servers found through NS records [default: 53].
    #[arg(long, value_name = "PORT", value_parser = config::Port::parse)]
    nameserver_port: Option<config::Port>,
    /// Skip the extra bind (one more connection per live endpoint, once per scan) that tells
    /// KMS emulators from Windows KMS hosts.
    #[arg(long)]
    no_emulator_check: bool,
}

/// How to print.
#[derive(Debug, Args)]
struct OutputArgs {
    /// Output format [default: table on a terminal, json otherwise].
    #[arg(short, long, value_enum)]
    format: Option<OutputFormat>,
    /// Write the report to FILE instead of standard output.
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Never color the table (NO_COLOR is honoured too).
    #[arg(long)]
    no_color: bool,
}

#[derive(Debug, Args)]
#[command(after_help = AFTER_HELP)]
struct ScanArgs {
    #[command(flatten)]
    target: TargetArgs,
    #[command(flatten)]
    directory: AdArgs,
    /// Keep a state file across scans and report drift: new and gone records, status changes,
    /// hosts failing since earlier scans, flapping hosts.
    #[arg(long = "state", value_name = "FILE")]
    state_file: Option<PathBuf>,
    /// With --state: show only what changed since the last scan.
    #[arg(long, requires = "state_file")]
    since_last: bool,
    #[command(flatten)]
    output: OutputArgs,
}

/// Active Directory as a source of domains and authorized hosts: shared by `scan` and `report`.
#[derive(Debug, Default, Args)]
struct AdArgs {
    /// Audit the domains Active Directory knows — the forest's domains and its AD-integrated
    /// zones — read over LDAP with Kerberos (the ticket from `kinit`) from a domain controller
    /// of this machine's domain (`_ldap._tcp.dc._msdcs`), or --dc; added to any DOMAIN given
    /// (config: `ad:`).
    #[arg(long)]
    ad: bool,
    /// With --ad: this domain controller (its host name, for the ldap/HOST principal).
    #[arg(long, value_name = "HOST", requires = "ad")]
    dc: Option<String>,
    /// With --ad: authorize the computers in this AD group (nested membership included) by
    /// their DNS host names — typically the group given rights on the _VLMCS nodes (repeatable;
    /// adds to --allow and the config's lists; config: `authorized_groups:`).
    #[arg(long, value_name = "GROUP")]
    allow_group: Vec<String>,
}

#[derive(Debug, Args)]
struct AuthArgs {
    /// TSIG key file as `tsig-keygen`/`ddns-confgen` write it (or set VLMCS_TSIG_KEY).
    #[arg(long, value_name = "FILE")]
    tsig_key: Option<PathBuf>,
    /// Send unsigned updates, for zones that accept them.
    #[arg(long, conflicts_with_all = ["tsig_key", "gss"])]
    no_auth: bool,
    /// GSS-TSIG with Kerberos (Active Directory secure updates): the ticket from `kinit`, or --keytab.
    #[arg(long, conflicts_with = "tsig_key")]
    gss: bool,
    /// Keytab for unattended GSS-TSIG runs (with --principal).
    #[arg(long, value_name = "FILE", requires = "gss")]
    keytab: Option<PathBuf>,
    /// Kerberos principal to use, e.g. svc-vlmcs@CORP.EXAMPLE.COM [default: the ticket cache's].
    #[arg(long, value_name = "PRINCIPAL", requires = "gss")]
    principal: Option<String>,
    /// The DNS server's host name for its DNS/<host> principal [default: the zone's SOA MNAME].
    #[arg(long, value_name = "HOST", requires = "gss")]
    gss_spn: Option<String>,
}

#[derive(Debug, Args)]
#[command(after_help = CLEAN_AFTER_HELP)]
struct CleanArgs {
    #[command(flatten)]
    target: TargetArgs,
    #[command(flatten)]
    auth: AuthArgs,
    /// Really delete (without it, only the plan is shown).
    #[arg(long)]
    apply: bool,
    /// Do not ask for confirmation (required with --apply when not on a terminal).
    #[arg(long)]
    yes: bool,
    /// Delete a record only after it has failed this long across scans, e.g. 24h or 0 [default: 24h].
    #[arg(long, value_name = "DURATION", value_parser = config::Grace::parse)]
    dead_for: Option<config::Grace>,
    /// Also delete live KMS hosts that are not on the allowlist.
    #[arg(long)]
    include_unauthorized: bool,
    /// Refuse to delete when more than this percentage of probed hosts look dead (0 to 100) [default: 50].
    #[arg(long, value_name = "PERCENT", value_parser = config::Percent::parse)]
    max_dead_percent: Option<config::Percent>,
    /// Delete even when most hosts look dead (a network partition on the auditor's side?).
    #[arg(long)]
    force: bool,
    /// Allow deleting the last record of a domain.
    #[arg(long)]
    allow_empty: bool,
    /// Send updates to this server instead of the zone's primary (SOA MNAME).
    #[arg(long, value_name = "ADDR[:PORT]", value_parser = config::parse_server)]
    primary: Option<std::net::SocketAddr>,
    /// State file (history of every record across scans).
    #[arg(long = "state", value_name = "FILE")]
    state_file: Option<PathBuf>,
    /// How long to wait for another run holding the state file's lock (0 to 1h).
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = config::LockWait::parse)]
    lock_wait: config::LockWait,
    /// Undo file to append deleted records to [default: undo-<time>.txt here].
    #[arg(long, value_name = "FILE")]
    undo_file: Option<PathBuf>,
    /// JSON-lines audit log [default: audit.jsonl beside the state file].
    #[arg(long, value_name = "FILE")]
    audit_log: Option<PathBuf>,
    #[command(flatten)]
    output: OutputArgs,
}

#[derive(Debug, Args)]
struct RestoreArgs {
    /// An undo file written by `clean`.
    #[arg(value_name = "UNDO_FILE")]
    undo_file: PathBuf,
    #[command(flatten)]
    auth: AuthArgs,
    /// Send the updates here instead of the server named in the undo file.
    #[arg(short, long = "server", value_name = "ADDR[:PORT]", value_parser = config::parse_server)]
    server: Option<std::net::SocketAddr>,
    /// Timeout of each update and of the read-back before it (1ms to 10m) [default: 3s, as for
    /// scan and clean].
    #[arg(short, long, value_name = "DURATION", value_parser = config::Timeout::parse)]
    timeout: Option<config::Timeout>,
    /// JSON-lines audit log to append to.
    #[arg(long, value_name = "FILE")]
    audit_log: Option<PathBuf>,
    /// Add an entry whose TTL differs from the records already at its name with their TTL
    /// (DNS keeps one TTL per RRset); without it such an entry is refused.
    #[arg(long)]
    keep_live_ttl: bool,
    #[command(flatten)]
    output: OutputArgs,
}

const CLEAN_AFTER_HELP: &str = "\
Without --apply, clean only prints the plan. With --apply it asks before deleting (unless --yes),
re-probes each record just before deleting it, writes the record to the undo file first, and
deletes it with an RFC 2136 prerequisite that the RRset is still exactly what was audited.

Exit codes: 0 done (or nothing to do), 1 a safety rail kept failing records, 2 a delete failed,
3 nothing could be done (bad input, lock held, not confirmed).

Examples:
  vlmcs-audit clean corp.example.com                                  # plan only
  vlmcs-audit clean corp.example.com --tsig-key /etc/vlmcs/ddns.key --apply
  vlmcs-audit clean --config audit.yaml --apply --yes                 # unattended
  vlmcs-audit restore undo-2026-11-28T101500Z.txt --tsig-key /etc/vlmcs/ddns.key";

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
    init_logging(cli.verbose);
    raise_open_file_limit();
    prepare_kerberos_environment(&cli.command);
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
        Command::Completions { shell } => {
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
            emit(&STDOUT, &script).map(|()| exit_code::OK)
        }
        Command::Man { subcommand } => {
            let command = <Cli as clap::CommandFactory>::command();
            let command = match subcommand.map(ManPage::names) {
                None => command,
                Some((name, title)) => match command.find_subcommand(name) {
                    Some(sub) => sub.clone().name(title).bin_name(title),
                    None => command,
                },
            };
            let mut page = Vec::new();
            clap_mangen::Man::new(command)
                .render(&mut page)
                .map_err(|e| format!("rendering the man page: {e}"))
                .and_then(|()| emit(&STDOUT, &String::from_utf8_lossy(&page)))
                .map(|()| exit_code::OK)
        }
    };
    match result {
        Ok(code) => code,
        Err(message) => {
            eprintln!("error: {message}");
            exit_code::UNKNOWN
        }
    }
}

/// What the flags say about the audit, for the library's one settings path.
fn audit_request(
    target: TargetArgs,
    directory: &AdArgs,
) -> vlmcs_audit::command::settings::Request {
    vlmcs_audit::command::settings::Request {
        overrides: Overrides {
            domains: target.domains,
            servers: target.servers,
            resolvers: target.resolvers,
            allow: target.allow,
            timeout: target.timeout,
            concurrency: target.concurrency,
            qps: target.qps,
            nameserver_port: target.nameserver_port,
            no_emulator_check: target.no_emulator_check,
        },
        config: target.config,
        directory: vlmcs_audit::command::settings::DirectoryRequest {
            ad: directory.ad,
            dc: directory.dc.clone(),
            allow_groups: directory.allow_group.clone(),
        },
    }
}

/// A progress bar on stderr when a person is watching: stdout and stderr on a terminal, no
/// --quiet. It appears only once the scan has taken a moment.
fn progress_bar(domains: usize, quiet: bool) -> Option<indicatif::ProgressBar> {
    if quiet || !std::io::stdout().is_terminal() || !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = indicatif::ProgressBar::with_draw_target(
        Some(domains as u64),
        indicatif::ProgressDrawTarget::hidden(),
    );
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{spinner} scanning {pos}/{len} domains [{elapsed}] {wide_bar}",
    ) {
        bar.set_style(style);
    }
    let shown = bar.clone();
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(700));
        if !shown.is_finished() {
            shown.set_draw_target(indicatif::ProgressDrawTarget::stderr());
            shown.enable_steady_tick(Duration::from_millis(120));
        }
    });
    Some(bar)
}

async fn scan_command(args: ScanArgs, quiet: bool) -> Result<i32, String> {
    let lock = args.state_file.as_deref().map(state::lock_path);
    distinct(&[
        ("-o", args.output.output.as_deref()),
        ("the state file (--state)", args.state_file.as_deref()),
        ("the state's lock file", lock.as_deref()),
    ])?;
    let audit =
        vlmcs_audit::command::settings::build(audit_request(args.target, &args.directory)).await?;
    let (settings, ad_notes) = (audit.settings, audit.notes);
    tracing::info!(domains = settings.domains.len(), timeout = ?settings.timeout, "scan starting");
    // Lock the state before scanning, so two scans never interleave their updates.
    let locked = match &args.state_file {
        Some(path) => Some(
            state::LockedState::open_waiting(path, Duration::from_secs(30))
                .await
                .map_err(|e| e.to_string())?,
        ),
        None => None,
    };
    let bar = progress_bar(settings.domains.len(), quiet);
    let tick = bar.clone().map(|bar| move || bar.inc(1));
    let (format, color) = output_format(&args.output);
    let Some(mut locked) = locked else {
        // Without a state file nothing needs the whole scan at once: each domain goes to a
        // spool file as it is finished, and the report is rendered from there — for JSON,
        // rendered as it goes, so that writing the report is copying it.
        let progress = tick.as_ref().map(|t| t as scan::Progress);
        let finished = |head: vlmcs_audit::model::Report| {
            if let Some(bar) = &bar {
                bar.finish_and_clear();
            }
            tracing::info!(ms = head.duration_ms, "scan finished, writing the report");
            let mut head = head;
            head.notes.extend(ad_notes);
            head
        };
        if format == Format::Json {
            let mut spool = vlmcs_audit::report::json_spool::JsonSpool::new()
                .map_err(|e| format!("cannot start the scan: {e}"))?;
            let head = finished(spooled_scan(&settings, progress, &mut spool).await?);
            let mut spooled = spool
                .finish(head)
                .map_err(|e| format!("cannot keep the scan's results: {e}"))?;
            emit_with(&args.output, |out| spooled.write(out))?;
            return Ok(spooled.head.exit_code);
        }
        let mut spool = vlmcs_audit::report::spool::Spool::new()
            .map_err(|e| format!("cannot start the scan: {e}"))?;
        let head = finished(spooled_scan(&settings, progress, &mut spool).await?);
        let spooled = spool
            .finish(head)
            .map_err(|e| format!("cannot keep the scan's results: {e}"))?;
        emit_with(&args.output, |out| {
            report::write(&spooled, format, color, out)
        })?;
        return Ok(spooled.head.exit_code);
    };
    let mut report =
        scan::run_with_progress(&settings, tick.as_ref().map(|t| t as scan::Progress)).await;
    report.notes.extend(ad_notes);
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    vlmcs_audit::drift::record_scan(&mut locked, &mut report, std::time::SystemTime::now(), true)
        .map_err(|e| e.to_string())?;
    if args.since_last {
        vlmcs_audit::drift::keep_changes(&mut report);
        // Nothing changed: nothing to say (cron mails only when there is output).
        if report.findings.is_empty() {
            return Ok(vlmcs_audit::model::exit_code::OK);
        }
    }
    emit_with(&args.output, |out| {
        report::write(&report, format, color, out)
    })?;
    Ok(report.exit_code)
}

async fn clean_command(args: CleanArgs) -> Result<i32, String> {
    // The config's `ad:` and `authorized_groups:` count here too: who is authorized decides
    // what --include-unauthorized may delete.
    let audit =
        vlmcs_audit::command::settings::build(audit_request(args.target, &AdArgs::default()))
            .await?;
    let (settings, ad_notes, section) = (audit.settings, audit.notes, audit.clean);
    let clean_settings = vlmcs_audit::command::clean::settings(
        config::CleanOverrides {
            dead_for: args.dead_for,
            max_dead_percent: args.max_dead_percent,
            include_unauthorized: args.include_unauthorized,
            force: args.force,
            allow_empty: args.allow_empty,
            primary: args.primary,
            state_file: args.state_file,
            audit_log: args.audit_log,
            undo_file: args.undo_file,
            tsig_key: args.auth.tsig_key.clone(),
        },
        section,
        args.output.output.as_deref(),
    )
    .map_err(|e| e.to_string())?;
    let auth = resolve_auth(&args.auth, clean_settings.tsig_key.as_deref(), args.apply)?;
    if args.apply && !args.yes && !std::io::stdin().is_terminal() {
        return Err("refusing to change DNS without confirmation: standard input is not a terminal; add --yes for unattended runs".into());
    }
    let yes = args.yes;
    let request = clean::CleanRequest {
        options: clean_settings.options,
        apply: args.apply,
        auth,
        state_path: clean_settings.state_path,
        lock_wait: args.lock_wait.0,
        undo_path: clean_settings.undo_path,
        audit_path: clean_settings.audit_path,
        primary: clean_settings.primary,
        confirm: Box::new(move |plan| yes || confirm_on_terminal(plan)),
    };
    let mut result = clean::run(&settings, request)
        .await
        .map_err(|e| e.to_string())?;
    result.scan.notes.extend(ad_notes);
    let (format, _) = output_format(&args.output);
    let text = match format {
        Format::Table => clean::render_table(&result),
        Format::Json => serde_json::to_string_pretty(&result).map_err(|e| e.to_string())? + "\n",
        Format::Yaml => serde_norway::to_string(&result).map_err(|e| e.to_string())?,
        Format::Prometheus | Format::Jsonl | Format::Csv | Format::Nagios => {
            return Err("clean prints table, json or yaml".into());
        }
    };
    emit(&args.output, &text)?;
    Ok(result.exit_code)
}

async fn report_command(args: ReportArgs) -> Result<i32, String> {
    distinct(&[
        ("the saved scan (--from)", args.from.as_deref()),
        ("-o", args.output.as_deref()),
    ])?;
    // A saved scan is read as a stream; otherwise the same audit as `scan` with the same file.
    let source = vlmcs_audit::command::report::source(
        args.from.as_deref(),
        audit_request(args.target, &args.directory),
    )
    .await
    .map_err(|e| e.to_string())?;
    let view = source.view();
    let output = OutputArgs {
        format: None,
        output: args.output,
        no_color: true,
    };
    emit_with(&output, |out| match args.format {
        ReportFormat::Markdown => vlmcs_audit::fixit::markdown_to(view, out),
        ReportFormat::Html => vlmcs_audit::fixit::html_to(view, out),
        ReportFormat::Prometheus => report::write(view, Format::Prometheus, false, out),
    })?;
    // The report was written: that is this command's success. The scan's severity is `scan`'s
    // exit code (a scheduler would show a written report as a failed task).
    Ok(exit_code::OK)
}

async fn restore_command(args: RestoreArgs) -> Result<i32, String> {
    distinct(&[
        ("the undo file", Some(&args.undo_file)),
        ("the audit log (--audit-log)", args.audit_log.as_deref()),
        ("-o", args.output.output.as_deref()),
    ])?;
    let auth = resolve_auth(&args.auth, None, true)?;
    let options = clean::RestoreOptions {
        server: args.server,
        timeout: args.timeout.map_or(config::DEFAULT_TIMEOUT, |t| t.0),
        keep_live_ttl: args.keep_live_ttl,
    };
    let (results, code) = vlmcs_audit::command::restore::run(
        &args.undo_file,
        args.audit_log.as_deref(),
        &auth,
        options,
    )
    .await
    .map_err(|e| e.to_string())?;
    let (format, _) = output_format(&args.output);
    let text = match format {
        Format::Table => results
            .iter()
            .map(|r| {
                format!(
                    "line {}: {} {} at {}: {}\n",
                    r.line, r.owner, r.record, r.server, r.result
                )
            })
            .collect(),
        Format::Json => serde_json::to_string_pretty(&results).map_err(|e| e.to_string())? + "\n",
        Format::Yaml => serde_norway::to_string(&results).map_err(|e| e.to_string())?,
        Format::Prometheus | Format::Jsonl | Format::Csv | Format::Nagios => {
            return Err("restore prints table, json or yaml".into());
        }
    };
    emit(&args.output, &text)?;
    Ok(code)
}

/// Refuses a run two of whose files are one (see [`vlmcs_audit::fsio::check_distinct`]), before
/// anything is read, sent or written.
fn distinct(files: &[(&str, Option<&std::path::Path>)]) -> Result<(), String> {
    let files: Vec<vlmcs_audit::fsio::RunFile<'_>> = files
        .iter()
        .filter_map(|(role, path)| path.map(|path| vlmcs_audit::fsio::RunFile { role, path }))
        .collect();
    vlmcs_audit::fsio::check_distinct(&files).map_err(|e| e.to_string())
}

/// The key from --tsig-key, the config, or VLMCS_TSIG_KEY; or --no-auth. An update needs one
/// of them; a plan does not, but a key that is given is checked at once.
fn resolve_auth(
    args: &AuthArgs,
    config_key: Option<&std::path::Path>,
    needed: bool,
) -> Result<Auth, String> {
    if args.gss {
        return gss_auth(args);
    }
    if let Some(path) = args.tsig_key.as_deref().or(config_key) {
        let given_by = if args.tsig_key.is_some() {
            "--tsig-key"
        } else {
            "the config's `clean: tsig_key:`"
        };
        return auth::load_key_file(path, given_by)
            .map(Auth::Tsig)
            .map_err(|e| e.to_string());
    }
    if args.no_auth {
        return Ok(Auth::None);
    }
    if let Some(key) = auth::key_from_env(auth::KEY_ENV).map_err(|e| e.to_string())? {
        return Ok(Auth::Tsig(key));
    }
    if needed {
        return Err(format!(
            "an update needs authentication: give --tsig-key FILE (or set {}), or --no-auth for a zone that accepts unsigned updates",
            auth::KEY_ENV
        ));
    }
    Ok(Auth::None)
}

#[cfg(feature = "gss")]
fn gss_auth(args: &AuthArgs) -> Result<Auth, String> {
    if let Some(keytab) = &args.keytab {
        vlmcs_audit::fsio::check_secret(keytab, vlmcs_audit::fsio::KEYTAB)
            .map_err(|e| format!("--keytab: {e}"))?;
    }
    Ok(Auth::Gss(vlmcs_audit::gss::GssSettings {
        principal: args.principal.clone(),
        keytab: args.keytab.clone(),
        spn_host: args.gss_spn.clone(),
    }))
}

/// A scan whose domains go to `sink` as they are finished; the report's head.
async fn spooled_scan<K: scan::DomainSink>(
    settings: &config::ScanSettings,
    progress: Option<scan::Progress<'_>>,
    sink: &mut K,
) -> Result<vlmcs_audit::model::Report, String>
where
    K::Error: std::fmt::Display,
{
    scan::run_into(settings, progress, sink).await.map_err(|e| {
        format!(
            "cannot keep the scan's results in {}: {e}",
            std::env::temp_dir().display()
        )
    })
}

#[cfg(not(feature = "gss"))]
fn gss_auth(_args: &AuthArgs) -> Result<Auth, String> {
    Err("this vlmcs-audit was built without GSS-TSIG support: rebuild with `cargo build --release --features gss` (needs libkrb5-dev and libclang-dev)".into())
}

/// Every probe and TCP query holds a socket: lift the soft limit on open files to the hard
/// limit, so a high --concurrency is not cut short by the default of 1024.
fn raise_open_file_limit() {
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
fn prepare_kerberos_environment(command: &Command) {
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

fn confirm_on_terminal(plan: &clean::Plan) -> bool {
    use std::io::{BufRead, Write};
    let count = plan.deletions().count();
    eprintln!("About to delete {count} record(s) from DNS:");
    for item in plan.deletions() {
        eprintln!(
            "  {} SRV {} {} {} {}  ({})",
            item.owner,
            item.record.priority,
            item.record.weight,
            item.record.port,
            item.record.target,
            item.reason
        );
    }
    eprint!("Type `yes` to delete them: ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    let _ = std::io::stdin().lock().read_line(&mut answer);
    answer.trim() == "yes"
}

fn output_format(output: &OutputArgs) -> (Format, bool) {
    let to_terminal = output.output.is_none() && std::io::stdout().is_terminal();
    let format = output.format.map_or(
        if to_terminal {
            Format::Table
        } else {
            Format::Json
        },
        Format::from,
    );
    let color = to_terminal && !output.no_color && std::env::var_os("NO_COLOR").is_none();
    (format, color)
}

/// Plain text to standard output.
const STDOUT: OutputArgs = OutputArgs {
    format: None,
    output: None,
    no_color: true,
};

fn emit(output: &OutputArgs, text: &str) -> Result<(), String> {
    emit_with(output, |out| Ok(out.write_all(text.as_bytes())?))
}

/// Runs `write` against the output: a file (see [`vlmcs_audit::fsio::write_report`]: replaced
/// atomically, so a textfile collector or a web server never sees half a file; a device or FIFO
/// written directly) or standard output (`-o -` too). A closed pipe on standard output (`| head`)
/// ends quietly; any other write error is an error, never a silently truncated report.
fn emit_with(
    output: &OutputArgs,
    write: impl FnOnce(&mut dyn std::io::Write) -> Result<(), ReportError>,
) -> Result<(), String> {
    use std::io::Write;
    // The renderer's own error, when it is the one that failed.
    let mut failure: Option<ReportError> = None;
    let run = |out: &mut dyn Write| -> std::io::Result<()> {
        write(out).map_err(|e| {
            let io = std::io::Error::other(e.to_string());
            failure = Some(e);
            io
        })?;
        out.flush()
    };
    match output.output.as_deref() {
        Some(path) if path != std::path::Path::new("-") => {
            vlmcs_audit::fsio::write_report(path, run).map_err(|e| match failure.take() {
                Some(f) => format!("cannot write the report to {}: {f}", path.display()),
                None => e.to_string(),
            })
        }
        _ => {
            let mut stdout = std::io::BufWriter::new(std::io::stdout().lock());
            let result = run(&mut stdout);
            let error = match (result, failure) {
                (Ok(()), _) => return Ok(()),
                (Err(_), Some(renderer)) => renderer,
                (Err(flush), None) => ReportError::Write(flush),
            };
            if error.is_closed_pipe() {
                Ok(())
            } else {
                Err(format!(
                    "cannot write the report to standard output: {error}"
                ))
            }
        }
    }
}

fn init_logging(verbose: u8) {
    // hickory's own warnings (a reply from an unexpected source, say) are ours to report in
    // findings; they show from -v on.
    let default = match verbose {
        0 => "warn,hickory_net=error,hickory_proto=error,hickory_resolver=error",
        1 => "info,hickory_net=warn,hickory_proto=warn,hickory_resolver=warn",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
