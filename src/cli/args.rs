//! The flags: clap's definitions, each command's turned into the library's request. No
//! decisions here beyond what clap checks (ranges, conflicts).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use vlmcs_audit::command::clean::CleanCommand;
use vlmcs_audit::command::restore::RestoreRequest;
use vlmcs_audit::command::scan::ScanRequest;
use vlmcs_audit::command::settings::{DirectoryRequest, Request};
use vlmcs_audit::config::{self, CleanOverrides, Overrides};
use vlmcs_audit::dns::auth::AuthRequest;
use vlmcs_audit::report::Format;

/// `--format`: the library's [`Format`], with the help text of each value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum OutputFormat {
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

pub(crate) const AFTER_HELP: &str = "\
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
    pub(crate) verbose: u8,
    /// No progress bar.
    #[arg(short, long, global = true)]
    pub(crate) quiet: bool,
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
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
pub(crate) enum ManPage {
    Scan,
    Clean,
    Restore,
    Report,
    Completions,
}

impl ManPage {
    pub(crate) fn names(self) -> (&'static str, &'static str) {
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
pub(crate) enum ReportFormat {
    Markdown,
    Html,
    /// The scan's metrics, for node-exporter's textfile collector: a scheduled run scans once
    /// (JSON with --state) and makes both the page and the metrics from that one scan.
    Prometheus,
}

#[derive(Debug, Args)]
pub(crate) struct ReportArgs {
    #[command(flatten)]
    pub(crate) target: TargetArgs,
    #[command(flatten)]
    pub(crate) directory: AdArgs,
    /// Build the report from a saved `scan --format json` instead of scanning.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["domains", "servers", "config", "ad", "allow_group"])]
    pub(crate) from: Option<PathBuf>,
    /// Report format.
    #[arg(short, long, value_enum, default_value = "markdown")]
    pub(crate) format: ReportFormat,
    /// Write the report to FILE instead of standard output.
    #[arg(short, long, value_name = "FILE")]
    pub(crate) output: Option<PathBuf>,
}

/// What to audit and how: shared by `scan` and `clean`.
#[derive(Debug, Args)]
pub(crate) struct TargetArgs {
    /// Domains to audit (default: the config's domains, else this machine's DNS search domains).
    #[arg(value_name = "DOMAIN")]
    pub(crate) domains: Vec<String>,
    /// YAML configuration file (see examples/audit.yaml).
    #[arg(short, long, value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,
    /// Ask this DNS server instead of discovering the authoritative ones (repeatable).
    #[arg(short, long = "server", value_name = "ADDR[:PORT]", value_parser = config::parse_server)]
    pub(crate) servers: Vec<std::net::SocketAddr>,
    /// Recursive resolver for discovery and target lookups (repeatable; default: the system's).
    #[arg(long = "resolver", value_name = "ADDR[:PORT]", value_parser = config::parse_server)]
    pub(crate) resolvers: Vec<std::net::SocketAddr>,
    /// Authorize a KMS host by name, address or network (repeatable; adds to the config).
    #[arg(long = "allow", value_name = "HOST", value_parser = vlmcs_audit::model::HostPattern::parse)]
    pub(crate) allow: Vec<vlmcs_audit::model::HostPattern>,
    /// Timeout of each DNS query and each host probe, e.g. 2s or 500ms (1ms to 10m) [default: 3s].
    #[arg(short, long, value_name = "DURATION", value_parser = config::Timeout::parse)]
    pub(crate) timeout: Option<config::Timeout>,
    /// How many DNS queries and probes run at once (1 to 100000) [default: 256].
    #[arg(long, value_name = "N", value_parser = config::Concurrency::parse)]
    pub(crate) concurrency: Option<config::Concurrency>,
    /// A hard cap on queries per second towards any one DNS server, on top of the adaptive
    /// window (up to 1000000) [default: 0, no cap].
    #[arg(long, value_name = "N", value_parser = config::Qps::parse)]
    pub(crate) qps: Option<config::Qps>,
    /// Port of the authoritative servers found through NS records [default: 53].
    #[arg(long, value_name = "PORT", value_parser = config::Port::parse)]
    pub(crate) nameserver_port: Option<config::Port>,
    /// Skip the extra bind (one more connection per live endpoint, once per scan) that tells
    /// KMS emulators from Windows KMS hosts.
    #[arg(long)]
    pub(crate) no_emulator_check: bool,
}

/// How to print.
#[derive(Debug, Args)]
pub(crate) struct OutputArgs {
    /// Output format [default: table on a terminal, json otherwise].
    #[arg(short, long, value_enum)]
    pub(crate) format: Option<OutputFormat>,
    /// Write the report to FILE instead of standard output.
    #[arg(short, long, value_name = "FILE")]
    pub(crate) output: Option<PathBuf>,
    /// Never color the table (NO_COLOR is honoured too).
    #[arg(long)]
    pub(crate) no_color: bool,
}

#[derive(Debug, Args)]
#[command(after_help = AFTER_HELP)]
pub(crate) struct ScanArgs {
    #[command(flatten)]
    pub(crate) target: TargetArgs,
    #[command(flatten)]
    pub(crate) directory: AdArgs,
    /// Keep a state file across scans and report drift: new and gone records, status changes,
    /// hosts failing since earlier scans, flapping hosts.
    #[arg(long = "state", value_name = "FILE")]
    pub(crate) state_file: Option<PathBuf>,
    /// With --state: show only what changed since the last scan.
    #[arg(long, requires = "state_file")]
    pub(crate) since_last: bool,
    #[command(flatten)]
    pub(crate) output: OutputArgs,
}

/// Active Directory as a source of domains and authorized hosts: shared by `scan` and `report`.
#[derive(Debug, Default, Args)]
pub(crate) struct AdArgs {
    /// Audit the domains Active Directory knows — the forest's domains and its AD-integrated
    /// zones — read over LDAP with Kerberos (the ticket from `kinit`) from a domain controller
    /// of this machine's domain (`_ldap._tcp.dc._msdcs`), or --dc; added to any DOMAIN given
    /// (config: `ad:`).
    #[arg(long)]
    pub(crate) ad: bool,
    /// With --ad: this domain controller (its host name, for the ldap/HOST principal).
    #[arg(long, value_name = "HOST", requires = "ad")]
    pub(crate) dc: Option<String>,
    /// With --ad: authorize the computers in this AD group (nested membership included) by
    /// their DNS host names — typically the group given rights on the _VLMCS nodes (repeatable;
    /// adds to --allow and the config's lists; config: `authorized_groups:`).
    #[arg(long, value_name = "GROUP")]
    pub(crate) allow_group: Vec<String>,
}

#[derive(Debug, Args)]
pub(crate) struct AuthArgs {
    /// TSIG key file as `tsig-keygen`/`ddns-confgen` write it (or set VLMCS_TSIG_KEY).
    #[arg(long, value_name = "FILE")]
    pub(crate) tsig_key: Option<PathBuf>,
    /// Send unsigned updates, for zones that accept them.
    #[arg(long, conflicts_with_all = ["tsig_key", "gss"])]
    pub(crate) no_auth: bool,
    /// GSS-TSIG with Kerberos (Active Directory secure updates): the ticket from `kinit`, or --keytab.
    #[arg(long, conflicts_with = "tsig_key")]
    pub(crate) gss: bool,
    /// Keytab for unattended GSS-TSIG runs (with --principal).
    #[arg(long, value_name = "FILE", requires = "gss")]
    pub(crate) keytab: Option<PathBuf>,
    /// Kerberos principal to use, e.g. svc-vlmcs@CORP.EXAMPLE.COM [default: the ticket cache's].
    #[arg(long, value_name = "PRINCIPAL", requires = "gss")]
    pub(crate) principal: Option<String>,
    /// The DNS server's host name for its DNS/<host> principal [default: the zone's SOA MNAME].
    #[arg(long, value_name = "HOST", requires = "gss")]
    pub(crate) gss_spn: Option<String>,
}

#[derive(Debug, Args)]
#[command(after_help = CLEAN_AFTER_HELP)]
pub(crate) struct CleanArgs {
    #[command(flatten)]
    pub(crate) target: TargetArgs,
    #[command(flatten)]
    pub(crate) auth: AuthArgs,
    /// Really delete (without it, only the plan is shown).
    #[arg(long)]
    pub(crate) apply: bool,
    /// Do not ask for confirmation (required with --apply when not on a terminal).
    #[arg(long)]
    pub(crate) yes: bool,
    /// Delete a record only after it has failed this long across scans, e.g. 24h or 0 [default: 24h].
    #[arg(long, value_name = "DURATION", value_parser = config::Grace::parse)]
    pub(crate) dead_for: Option<config::Grace>,
    /// Also delete live KMS hosts that are not on the allowlist.
    #[arg(long)]
    pub(crate) include_unauthorized: bool,
    /// Refuse to delete when more than this percentage of probed hosts look dead (0 to 100) [default: 50].
    #[arg(long, value_name = "PERCENT", value_parser = config::Percent::parse)]
    pub(crate) max_dead_percent: Option<config::Percent>,
    /// Delete even when most hosts look dead (a network partition on the auditor's side?).
    #[arg(long)]
    pub(crate) force: bool,
    /// Allow deleting the last record of a domain.
    #[arg(long)]
    pub(crate) allow_empty: bool,
    /// Send updates to this server instead of the zone's primary (SOA MNAME).
    #[arg(long, value_name = "ADDR[:PORT]", value_parser = config::parse_server)]
    pub(crate) primary: Option<std::net::SocketAddr>,
    /// State file (history of every record across scans).
    #[arg(long = "state", value_name = "FILE")]
    pub(crate) state_file: Option<PathBuf>,
    /// How long to wait for another run holding the state file's lock (0 to 1h) [default: 30s].
    #[arg(long, value_name = "DURATION", value_parser = config::LockWait::parse)]
    pub(crate) lock_wait: Option<config::LockWait>,
    /// Undo file to append deleted records to [default: undo-<time>.txt here].
    #[arg(long, value_name = "FILE")]
    pub(crate) undo_file: Option<PathBuf>,
    /// JSON-lines audit log [default: audit.jsonl beside the state file].
    #[arg(long, value_name = "FILE")]
    pub(crate) audit_log: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) output: OutputArgs,
}

#[derive(Debug, Args)]
pub(crate) struct RestoreArgs {
    /// An undo file written by `clean`.
    #[arg(value_name = "UNDO_FILE")]
    pub(crate) undo_file: PathBuf,
    #[command(flatten)]
    pub(crate) auth: AuthArgs,
    /// Send the updates here instead of the server named in the undo file.
    #[arg(short, long = "server", value_name = "ADDR[:PORT]", value_parser = config::parse_server)]
    pub(crate) server: Option<std::net::SocketAddr>,
    /// Timeout of each update and of the read-back before it (1ms to 10m) [default: 3s, as for
    /// scan and clean].
    #[arg(short, long, value_name = "DURATION", value_parser = config::Timeout::parse)]
    pub(crate) timeout: Option<config::Timeout>,
    /// JSON-lines audit log to append to.
    #[arg(long, value_name = "FILE")]
    pub(crate) audit_log: Option<PathBuf>,
    /// Add an entry whose TTL differs from the records already at its name with their TTL
    /// (DNS keeps one TTL per RRset); without it such an entry is refused.
    #[arg(long)]
    pub(crate) keep_live_ttl: bool,
    #[command(flatten)]
    pub(crate) output: OutputArgs,
}

pub(crate) const CLEAN_AFTER_HELP: &str = "\
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

impl TargetArgs {
    /// What the flags say about the audit, for the library's one settings path.
    pub(crate) fn request(self, directory: &AdArgs) -> Request {
        Request {
            overrides: Overrides {
                domains: self.domains,
                servers: self.servers,
                resolvers: self.resolvers,
                allow: self.allow,
                timeout: self.timeout,
                concurrency: self.concurrency,
                qps: self.qps,
                nameserver_port: self.nameserver_port,
                no_emulator_check: self.no_emulator_check,
                ..Overrides::default()
            },
            config: self.config,
            directory: DirectoryRequest {
                ad: directory.ad,
                dc: directory.dc.clone(),
                allow_groups: directory.allow_group.clone(),
            },
        }
    }
}

impl AuthArgs {
    /// The authentication asked for.
    pub(crate) fn request(&self) -> AuthRequest {
        AuthRequest {
            tsig_key: self.tsig_key.clone(),
            no_auth: self.no_auth,
            gss: self.gss,
            keytab: self.keytab.clone(),
            principal: self.principal.clone(),
            spn_host: self.gss_spn.clone(),
        }
    }
}

impl ScanArgs {
    /// The scan asked for, its report in `format`.
    pub(crate) fn request(self, format: Format) -> ScanRequest {
        ScanRequest {
            audit: self.target.request(&self.directory),
            state_file: self.state_file,
            since_last: self.since_last,
            format,
            output: self.output.output,
        }
    }
}

impl CleanArgs {
    /// The cleanup asked for.
    pub(crate) fn command(self) -> CleanCommand {
        CleanCommand {
            // The config's `ad:` and `authorized_groups:` count (clean has no --ad of its own).
            audit: self.target.request(&AdArgs::default()),
            flags: CleanOverrides {
                dead_for: self.dead_for,
                max_dead_percent: self.max_dead_percent,
                include_unauthorized: self.include_unauthorized,
                force: self.force,
                allow_empty: self.allow_empty,
                primary: self.primary,
                state_file: self.state_file,
                audit_log: self.audit_log,
                undo_file: self.undo_file,
            },
            auth: self.auth.request(),
            apply: self.apply,
            lock_wait: self.lock_wait.map(|w| w.0),
            output: self.output.output,
        }
    }
}

impl RestoreArgs {
    /// The restore asked for.
    pub(crate) fn request(self) -> RestoreRequest {
        RestoreRequest {
            undo_file: self.undo_file,
            audit_log: self.audit_log,
            output: self.output.output,
            auth: self.auth.request(),
            server: self.server,
            timeout: self.timeout.map(|t| t.0),
            keep_live_ttl: self.keep_live_ttl,
        }
    }
}
