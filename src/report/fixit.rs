//! Fix-it reports: for each finding, what was seen, why it matters to KMS clients, and the
//! exact steps to fix it, as a model rendered to Markdown and to one self-contained HTML file.
//!
//! Every name that came from DNS goes through [`crate::support::quote`]: a command is generated only for
//! valid host names (and quoted even then); anything else is shown, never put into a command.
//!
//! Shown, data is shown as it is: the fields that are data (an item's title and what was seen,
//! the domain, the summary, the notes) are rendered literally, and data inside prose (steps,
//! load notes) is delimited (see [`lit`]), so that no name can become Markdown or HTML markup.

use crate::model::name::without_final_dot;
use std::fmt::Write as _;

use crate::audit::classify::KMS_PORT;
use crate::model::ServersFrom;
use crate::model::display_addr;
use crate::model::name::DnsName;
use crate::model::{
    DomainObservation, DomainReport, Finding, FindingCode, Report, Severity, SrvRecord,
};
use crate::report::{ReportError, ReportView};
use crate::support::quote;

const GVLK_WINDOWS: &str =
    "https://learn.microsoft.com/en-us/windows-server/get-started/kms-client-activation-keys";
const GVLK_OFFICE: &str =
    "https://learn.microsoft.com/en-us/office/volume-license-activation/gvlks";
/// slmgr through cscript: it waits for each step and prints to the console.
const SLMGR: &str = "cscript //nologo %windir%\\system32\\slmgr.vbs";
const SPP_KEY: &str =
    r"HKLM\SOFTWARE\Microsoft\Windows NT\CurrentVersion\SoftwareProtectionPlatform";

/// A block of commands for one shell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Commands {
    /// `sh`, `powershell` or `bat` (cmd.exe).
    pub shell: &'static str,
    /// Where to run it, e.g. "on a machine with nsupdate and the zone's key".
    pub context: String,
    /// The commands, to paste as they are.
    pub code: String,
}

/// Start and end of data inside prose: private-use characters, removed from the data itself.
const LIT_START: char = '\u{E000}';
const LIT_END: char = '\u{E001}';

/// Data (a name from DNS, a group from the directory) to be put into prose: delimited, so that
/// each renderer shows it literally however it is spelled.
fn lit(data: &str) -> String {
    let mut out = String::with_capacity(data.len() + 6);
    out.push(LIT_START);
    out.extend(data.chars().filter(|c| *c != LIT_START && *c != LIT_END));
    out.push(LIT_END);
    out
}

/// The code spans the tool itself writes into finding details and report notes (which are
/// data otherwise: they carry names): kept as code when such text is shown. A name that
/// happens to contain one is shown the same, only set as code there.
const TOOL_CODE_SPANS: &[&str] = &[
    "`clean`",
    "`.`",
    "`slmgr /sprt`",
    "`resolvers`",
    "`authorized_hosts`",
];

/// A finding's detail or a report note: data, but for the tool's own code spans.
fn data_with_tool_spans(text: &str) -> String {
    let mut out = lit(text);
    for span in TOOL_CODE_SPANS {
        out = out.replace(span, &format!("{LIT_END}{span}{LIT_START}"));
    }
    out
}

/// Prose split into its parts: `(true, data)` for what [`lit`] delimited, `(false, prose)`.
fn parts(text: &str) -> Vec<(bool, &str)> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find(LIT_START) {
        if start > 0 {
            out.push((false, &rest[..start]));
        }
        let inner = &rest[start + LIT_START.len_utf8()..];
        let end = inner.find(LIT_END).unwrap_or(inner.len());
        out.push((true, &inner[..end]));
        rest = inner.get(end + LIT_END.len_utf8()..).unwrap_or("");
    }
    if !rest.is_empty() {
        out.push((false, rest));
    }
    out
}

/// One finding explained. `title` is data (shown literally); `seen` is data delimited by
/// [`lit`] around the tool's own code spans; `impact` and `steps` are prose whose data is
/// delimited.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    /// How bad it is.
    pub severity: Severity,
    /// The finding.
    pub code: FindingCode,
    /// What it is about (a record, a host).
    pub title: String,
    /// What the scan saw.
    pub seen: Vec<String>,
    pub(crate) impact: String,
    /// What to do, in order.
    pub steps: Vec<String>,
    pub(crate) commands: Vec<Commands>,
}

/// One domain. `domain` and `summary` are data; `load` is prose whose data is delimited.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    /// The domain.
    pub domain: String,
    /// Its counts, in a line.
    pub summary: String,
    /// What to fix, worst first.
    pub items: Vec<Item>,
    /// One script that deletes every stale record of the domain at once.
    pub cleanup: Vec<Commands>,
    /// Priority/weight spread of healthy hosts and the client caching note.
    pub load: Vec<String>,
}

/// The whole report. `generated` is data (from the scan, which may be a saved file), `notes`
/// data delimited by [`lit`] around the tool's code spans; `title` and `overview` are the
/// tool's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FixIt {
    /// The page's title.
    pub title: String,
    /// When and how the scan was made.
    pub generated: String,
    pub(crate) overview: String,
    /// The scan's notes.
    pub notes: Vec<String>,
    /// One per domain with something to fix.
    pub sections: Vec<Section>,
}

/// Builds the fix-it model from a scan report.
pub fn build(report: &Report) -> FixIt {
    let problems = report
        .findings
        .iter()
        .filter(|f| f.severity >= Severity::Warning)
        .count();
    let mut fix = front_of(report, report.domains.len(), problems);
    // The in-memory view indexes findings by domain once (never fails).
    let _ = crate::report::ReportView::for_each_domain(report, &mut |d, findings| {
        fix.sections.push(section(d, findings));
        Ok(())
    });
    fix
}

/// The report without its sections: title, the scan, the count of problems, the notes.
fn front(view: &dyn ReportView) -> Result<FixIt, ReportError> {
    let mut problems = 0usize;
    view.for_each_finding(&mut |f| {
        if f.severity >= Severity::Warning {
            problems += 1;
        }
        Ok(())
    })?;
    Ok(front_of(view.head(), view.domain_count(), problems))
}

fn front_of(head: &Report, domains: usize, problems: usize) -> FixIt {
    FixIt {
        title: "KMS in DNS: fix-it report".into(),
        generated: format!("vlmcs-audit {} — scan of {}", head.version, head.started_at),
        overview: format!(
            "{domains} domain(s), {problems} problem(s) to fix (worst: {}).",
            head.worst_severity
        ),
        notes: head.notes.iter().map(|n| data_with_tool_spans(n)).collect(),
        sections: Vec::new(),
    }
}

/// The Markdown report of any view (a saved scan on disk, say), written section by section as
/// the domains are read: nothing but one domain is held at a time.
pub fn markdown_to(view: &dyn ReportView, out: &mut dyn std::io::Write) -> Result<(), ReportError> {
    let head = front(view)?;
    out.write_all(md_front(&head).as_bytes())?;
    view.for_each_domain(&mut |d, findings| {
        out.write_all(md_section(&section(d, findings)).as_bytes())?;
        Ok(())
    })
}

fn section(domain: &DomainReport, findings: &[&Finding]) -> Section {
    let obs = &domain.observation;
    let s = &domain.summary;
    let summary = format!(
        "{} record(s) published, {} healthy, {} dead, {} not KMS, {} unauthorized — servers asked: {}",
        s.records,
        s.healthy,
        s.dead,
        s.not_kms,
        s.unauthorized,
        if obs.servers.is_empty() {
            "none".to_string()
        } else {
            obs.servers
                .iter()
                .map(|sv| format!("{} ({})", sv.name, sv.status.short()))
                .collect::<Vec<_>>()
                .join(", ")
        }
    );
    // A record's registration (AD) is context, not a problem: it is shown with the items of
    // the record it is about.
    let mut problems: Vec<&Finding> = findings
        .iter()
        .copied()
        .filter(|f| f.severity > Severity::Ok && f.code != FindingCode::Registration)
        .collect();
    problems.sort_by_key(|f| std::cmp::Reverse(f.severity));
    // One item per problem at one endpoint: an emulator published under two names is one
    // emulator, not two (its findings are grouped by code, severity and address).
    let mut items: Vec<Item> = Vec::new();
    let mut endpoints: Vec<Option<ProblemAt>> = Vec::new();
    for f in problems {
        let endpoint = f.address.map(|a| (f.code, f.severity, a, f.port));
        let next = item(domain, f);
        match endpoint.and_then(|e| endpoints.iter().position(|k| *k == Some(e))) {
            Some(at) => merge_item(&mut items[at], next),
            None => {
                items.push(next);
                endpoints.push(endpoint);
            }
        }
    }
    Section {
        domain: obs.domain.clone(),
        summary,
        items,
        cleanup: domain_cleanup(domain, findings),
        load: load_notes(domain, findings),
    }
}

/// A problem at one endpoint: code, severity, address, port.
type ProblemAt = (FindingCode, Severity, std::net::IpAddr, Option<u16>);

/// Folds `other` (the same problem at the same endpoint, under another name) into `into`.
fn merge_item(into: &mut Item, other: Item) {
    if let Some((_, target)) = other.title.split_once(": ") {
        into.title.push_str(&format!(", {target}"));
    }
    for line in other.seen {
        if !into.seen.contains(&line) {
            into.seen.push(line);
        }
    }
    for commands in other.commands {
        if !into.commands.contains(&commands) {
            into.commands.push(commands);
        }
    }
}

/// The records a finding is about (the same target, as a name, and port).
fn records_of<'a>(domain: &'a DomainReport, f: &Finding) -> Vec<&'a SrvRecord> {
    let Some(target) = f.target.as_deref().and_then(DnsName::parse_fqdn) else {
        return Vec::new();
    };
    domain
        .observation
        .records
        .iter()
        .filter(|r| r.target == target && f.port.is_none_or(|p| p == r.port))
        .collect()
}

fn item(domain: &DomainReport, f: &Finding) -> Item {
    let obs = &domain.observation;
    let mut seen = vec![data_with_tool_spans(&f.detail)];
    for record in records_of(domain, f) {
        seen.push(lit(&format!(
            "{} {} IN {}",
            obs.query_name, record.ttl, record
        )));
    }
    if let Some(address) = f.address
        && let Some(p) = obs
            .probes
            .iter()
            .find(|p| p.address == address && Some(p.port) == f.port)
    {
        seen.push(lit(&format!(
            "probe of {}:{}: {} in {:.0} ms",
            display_addr(address),
            p.port,
            p.detail,
            p.duration_ms
        )));
    }
    seen.extend(registrations(domain, f).iter().map(|r| lit(r)));
    let (impact, mut steps, commands) = advice(domain, f);
    // A step that points "below" must find a command there.
    if commands.is_empty() {
        for step in &mut steps {
            *step = step.replace(
                "(below)",
                "(no command is given: a name involved is not a valid host name; delete the record in the DNS console)",
            );
        }
    }
    Item {
        severity: f.severity,
        code: f.code,
        title: format!(
            "{}{}",
            f.code,
            f.target
                .as_deref()
                .map(|t| format!(": {t}"))
                .unwrap_or_default()
        ),
        seen,
        impact,
        steps,
        commands,
    }
}

/// What Active Directory says of the records a finding is about (`scan --ad`): who
/// registered each, and when.
fn registrations(domain: &DomainReport, f: &Finding) -> Vec<String> {
    let Some(node) = &domain.observation.ad else {
        return Vec::new();
    };
    records_of(domain, f)
        .into_iter()
        .filter_map(|record| {
            let registered = node.record_for(record)?;
            let when = registered.stamp.map_or_else(
                || "static (no registration time)".to_string(),
                |t| format!("stamped {t}"),
            );
            let who = registered.host_account.as_ref().map_or_else(
                || "no computer account has its host name".to_string(),
                |a| format!("its host is the computer account {a}"),
            );
            let owner = node
                .owner
                .as_ref()
                .map(|o| format!("; the node's owner is {o}"))
                .unwrap_or_default();
            Some(format!(
                "Active Directory ({}): {record} — {when}; {who}{owner}",
                node.zone
            ))
        })
        .collect()
}

/// What clients see, what to do, and the commands for it.
type Advice = (String, Vec<String>, Vec<Commands>);

fn advice(domain: &DomainReport, f: &Finding) -> Advice {
    let records = records_of(domain, f);
    let delete = || delete_commands(domain, &records, f.code == FindingCode::UnauthorizedHost);
    let target = f.target.clone().unwrap_or_default();
    match f.code {
        FindingCode::DeadHost => (
            "Clients that pick this record wait for a timeout before trying another host; with no other host they fail with 0x800706BA (RPC server unavailable) or 0xC004F074 (no KMS host could be contacted).".into(),
            vec![
                "If the host is gone for good, delete its record (below). If it should be alive, start the Software Protection service (sppsvc) and open TCP 1688 in its firewall.".into(),
                "Clients pinned to it (`slmgr.vbs /skms`) keep trying it: on those clients run `slmgr.vbs /ckms` (back to DNS discovery) or pin a healthy host with `slmgr.vbs /skms HOST:1688`, then `slmgr.vbs /ato`; `slmgr.vbs /dlv` shows which host they use.".into(),
            ],
            delete(),
        ),
        FindingCode::NoAddress => (
            "Clients cannot resolve this target; they skip it, after a lookup delay. With no other record they fail with 0xC004F074.".into(),
            vec!["The record is dangling: delete it (below), or give the host its A/AAAA record back if it still exists.".into()],
            delete(),
        ),
        FindingCode::InvalidTarget => (
            "RFC 2782 forbids an alias (CNAME) target and uses `.` for \"no service\", and no host listens on port 0: clients may skip the record or behave inconsistently.".into(),
            vec!["Publish the KMS host under its own name (its DnsDomainPublishList does that), then delete this record (below).".into()],
            delete(),
        ),
        FindingCode::NotKms => (
            "Something answers on the port but it is not a KMS host: clients sent here fail (0xC004F074 when no real host answers).".into(),
            vec!["Delete the record (below); if the host should be a KMS host, check that the KMS host key is installed and activated (`slmgr.vbs /dlv`).".into()],
            delete(),
        ),
        FindingCode::DuplicateRecord => (
            "The same host is published more than once: clients pick it more often than the priority/weight plan says.".into(),
            vec!["Keep one record per host and port; delete the extra one (its priority/weight is in the record list above).".into()],
            Vec::new(),
        ),
        FindingCode::KmsEmulator => (
            "Clients that find this endpoint are \"activated\" by an emulator, not by your licensed KMS host: an unlicensed activation, and nothing your KMS host counts or reports.".into(),
            vec![
                format!(
                    "This endpoint accepts binds a conforming RPC runtime rejects (the finding lists what it showed): a KMS emulator such as vlmcsd or py-kms, not Windows (emulators rarely run on Windows, so no Windows command is given). Find the machine at {} and stop the emulator there; then delete its record (below).",
                    f.address.map_or_else(|| shown(&target), display_addr)
                ),
            ],
            delete(),
        ),
        FindingCode::UnauthorizedHost => unauthorized_host_advice(&target, delete()),
        FindingCode::NoRecords => no_records_advice(domain),
        FindingCode::NoHealthyHost => (
            "No record leads to a working authorized KMS host: every client of this domain that needs activation fails (0xC004F074).".into(),
            vec!["Fix or replace a KMS host first (the items above say which records are stale), then clean up the stale records.".into()],
            Vec::new(),
        ),
        FindingCode::ServerDisagreement => (
            "Clients get different answers depending on which DNS server they ask: replication lag, or a secondary that stopped transferring the zone.".into(),
            vec!["Compare the SOA serials of the servers and force replication (Active Directory: `repadmin /syncall /AdeP`; BIND: `rndc retransfer ZONE` on the secondary).".into()],
            Vec::new(),
        ),
        FindingCode::ServerFailure => (
            "An authoritative server did not answer properly; clients that use it (through their resolvers) may see failures (0x8007232A).".into(),
            vec!["Check that the server is up, serves the zone (not lame) and answers from the auditor's network.".into()],
            Vec::new(),
        ),
        FindingCode::AuthorizedHostMissing => (
            "A host that should serve this domain is not published in it: its clients depend on the other hosts only.".into(),
            vec![format!(
                "On {}: check DnsDomainPublishList under {SPP_KEY} and the Application log for event 12293 (publishing failed) / 12294 (published). In Active Directory the first host to register owns the _vlmcs._tcp node: grant the KMS hosts (a group) Full Control on it in each zone.",
                shown(&target)
            )],
            Vec::new(),
        ),
        FindingCode::HostAlias => (
            "Clients reach an authorized KMS host, but under a name that is not its own: it works, yet the record does not follow the host if it moves, and RFC 2782 asks for the host's own name.".into(),
            vec!["Publish the host under its own name (its DnsDomainPublishList, or `slmgr.vbs /sdns` on it), then remove this record (`vlmcs-audit clean` lists it as an invalid target when it is a CNAME).".into()],
            Vec::new(),
        ),
        FindingCode::PossibleEmulator => (
            "Clients may be activated by something other than a Windows KMS host: the endpoint's binds show habits of KMS emulators, though none that proves one.".into(),
            vec![format!(
                "Check what runs on {} (on Windows: `Get-NetTCPConnection -LocalPort 1688 -State Listen | ForEach-Object {{ Get-Process -Id $_.OwningProcess }}`; elsewhere `ss -ltnp 'sport = :1688'`). A Windows KMS host shows sppsvc (svchost); anything else is an emulator: stop it and delete its record.",
                f.address.map_or_else(|| shown(&target), display_addr)
            )],
            Vec::new(),
        ),
        FindingCode::AllowlistUnresolved => (
            "An authorized host name does not resolve: the allowlist names a host that is gone or misspelt, and authorization by that name rests on its spelling alone.".into(),
            vec!["Correct or remove the entry (authorized_hosts or kms_hosts in the config, --allow).".into()],
            Vec::new(),
        ),
        FindingCode::NonstandardPort => (
            "Clients follow the port in the record; fine if the host really listens there.".into(),
            vec!["Confirm the host's port (`slmgr.vbs /sprt` sets it) and that the firewall allows it.".into()],
            Vec::new(),
        ),
        FindingCode::NewRecord => (
            "A host clients may now be sent to. If nobody installed a KMS host on purpose, it is probably a client that got a KMS host key by mistake.".into(),
            vec!["Check the host: `slmgr.vbs /dlv` on it shows whether it is a KMS host; if it should be, add it to the allowlist (authorized_hosts).".into()],
            Vec::new(),
        ),
        FindingCode::RecordGone => (
            "Clients no longer find this host through DNS; those that cached it keep using it while it answers.".into(),
            vec!["If the host was retired on purpose, nothing to do. Otherwise check its publishing (event 12293) and DNS scavenging.".into()],
            Vec::new(),
        ),
        FindingCode::StatusChanged | FindingCode::Flapping | FindingCode::StillFailing => (
            "How the record behaved across scans: see the other findings for this record.".into(),
            Vec::new(),
            Vec::new(),
        ),
        FindingCode::OpenNode => open_node_advice(domain, f),
        FindingCode::SrvAlias => (
            "KMS clients follow the alias (CNAME) and use the records of the name it points to: they find what that name publishes, and a change there changes this domain too.".into(),
            vec!["Fine if it is meant (one set of KMS records for several domains). `clean` leaves records behind an alias alone: scan and clean the domain that holds them. Publishing into each domain instead is what KMS hosts do themselves (DnsDomainPublishList).".into()],
            Vec::new(),
        ),
        FindingCode::StaleRegistration => (
            "The host stopped refreshing its record, yet clients are still sent to it until scavenging (if enabled on a server) removes it.".into(),
            vec!["If the host is gone, delete its record now (below) rather than waiting for scavenging; if it should be alive, check its Software Protection service and event 12293 (publishing failed) in its Application log.".into()],
            delete(),
        ),
        // No items of their own: nothing to fix, and a registration is shown with its
        // record's items (`registrations`).
        FindingCode::Healthy | FindingCode::Registration => (String::new(), Vec::new(), Vec::new()),
    }
}

/// Replace a broad group's rights on the `_vlmcs._tcp` node by the KMS hosts' group, as
/// Microsoft's KMS deployment guide has it (Full Control for a global group of the KMS hosts).
fn open_node_advice(domain: &DomainReport, f: &Finding) -> Advice {
    let impact = "Any machine in the group can publish itself as a KMS host: a client that gets a KMS host key (CSVLK) by mistake is advertised to every client (0xC004F041, 0xC004F038) and uses up the key's activations (0xC004C008).".to_string();
    let node = domain.observation.ad.as_ref();
    let grant = node.and_then(|n| n.broad_grants.iter().find(|g| f.detail.contains(&g.sid)));
    let (Some(node), Some(grant)) = (node, grant) else {
        return (impact, Vec::new(), Vec::new());
    };
    let Some(dn) = &node.node_dn else {
        return (impact, Vec::new(), Vec::new());
    };
    if grant.inherited {
        return (
            impact,
            vec![format!(
                "The entry for {} is inherited: find the inheritable entry on the zone object (the parent of {}) or above and remove it; a default zone gives Authenticated Users only \"create child\" on the zone itself, not inherited, which this tool does not report.",
                lit(&grant.group),
                lit(dn)
            )],
            Vec::new(),
        );
    }
    let group = node.hosts_group.as_deref().unwrap_or("KMS Hosts");
    let mut steps = vec![format!(
        "Remove the rights of {} on the node and give Full Control to the KMS hosts' group instead (below){}; hosts not in the group can then no longer register here, and their records stay until deleted.",
        lit(&grant.group),
        if node.hosts_group.is_some() {
            ""
        } else {
            " — the commands name the group \"KMS Hosts\": put your group's name there, or create it with the KMS hosts as members"
        }
    )];
    steps.push(
        "Then delete the records of machines that are not KMS hosts (the unauthorized-host items)."
            .into(),
    );
    let code = format!(
        "Import-Module ActiveDirectory\n$node = {node_q}\n$acl = Get-Acl -LiteralPath $node\n$acl.PurgeAccessRules([Security.Principal.SecurityIdentifier]{sid_q})\n$kmsHosts = (Get-ADGroup -Identity {group_q}).SID\n$acl.AddAccessRule([DirectoryServices.ActiveDirectoryAccessRule]::new($kmsHosts, 'GenericAll', 'Allow'))\nSet-Acl -LiteralPath $node -AclObject $acl",
        node_q = quote::powershell(&format!("AD:{dn}")),
        sid_q = quote::powershell(&grant.sid),
        group_q = quote::powershell(group),
    );
    (
        impact,
        steps,
        vec![Commands {
            shell: "powershell",
            context: "as a domain admin, on a machine with the ActiveDirectory module (RSAT)"
                .into(),
            code,
        }],
    )
}

/// A client that became a KMS host: give it its client key back, stop it publishing, then
/// delete its record.
fn unauthorized_host_advice(target: &str, delete: Vec<Commands>) -> Advice {
    let steps = vec![
        format!(
            "On the host ({}), put the KMS client setup key (GVLK) for its edition back and activate against your real KMS host (Windows keys: {GVLK_WINDOWS}; Office: {GVLK_OFFICE}). The report does not guess the edition: replace REPLACE-WITH-GVLK below before running it.",
            shown(target)
        ),
        format!("Stop it publishing: `slmgr.vbs /cdns`, or set DisableDnsPublishing=1 under {SPP_KEY} and restart sppsvc."),
        "Then delete its record (below, or `vlmcs-audit clean --include-unauthorized`): the record comes back within a day unless the host is fixed first.".into(),
    ];
    // cscript waits for each step (a bare `slmgr.vbs` opens a dialog and returns at
    // once, so /ato could run before /ipk finished).
    let mut commands = vec![Commands {
        shell: "bat",
        context: "on that host, in an elevated Command Prompt (replace REPLACE-WITH-GVLK first)"
            .into(),
        code: format!(
            "{SLMGR} /upk\n{SLMGR} /ipk REPLACE-WITH-GVLK\n{SLMGR} /cdns\nreg add \"{SPP_KEY}\" /v DisableDnsPublishing /t REG_DWORD /d 1 /f\nnet stop sppsvc && net start sppsvc\n{SLMGR} /ato\n{SLMGR} /dlv"
        ),
    }];
    commands.extend(delete);
    (
        "Clients sent to this host fail with 0xC004F041 (the host is not activated) or 0xC004F038 (below its activation threshold); on the host itself, activating the KMS host key (CSVLK) fails with 0xC004C008 once the key's activations at Microsoft are used up by such stray installs.".into(),
        steps,
        commands,
    )
}

/// No host published here: publish one (read-append-write, never replacing a host's list), or
/// point the clients elsewhere.
fn no_records_advice(domain: &DomainReport) -> Advice {
    let mut commands = Vec::new();
    if let Some(d) = quote::cmd(&domain.observation.domain) {
        // Read, append if missing, write back: never replace the host's list.
        let line = quote::powershell(&format!("{d},0,0"));
        commands.push(Commands {
            shell: "powershell",
            context: "on an existing KMS host, elevated: adds this domain to its DnsDomainPublishList if missing, keeping the lines it has (repeat on every KMS host)".into(),
            code: format!(
                "$key = 'HKLM:\\{}'\n$line = {line}\n$list = @((Get-ItemProperty -Path $key -Name DnsDomainPublishList -ErrorAction SilentlyContinue).DnsDomainPublishList | Where-Object {{ $_ }})\nif ($list -notcontains $line) {{ Set-ItemProperty -Path $key -Name DnsDomainPublishList -Type MultiString -Value ($list + $line) }}\nRestart-Service sppsvc",
                SPP_KEY.trim_start_matches("HKLM\\")
            ),
        });
        commands.push(Commands {
            shell: "bat",
            context: "or on the clients: look for hosts in another domain only (replace REPLACE-WITH-KMS-DOMAIN first)".into(),
            code: format!("{SLMGR} /skms-domain REPLACE-WITH-KMS-DOMAIN\n{SLMGR} /ato"),
        });
    }
    (
        "Clients in this domain find no KMS host: activation fails with 0x8007232B (DNS name does not exist).".into(),
        vec!["Publish an existing KMS host into this domain through its DnsDomainPublishList (`domain,priority,weight`), or point the clients elsewhere.".into()],
        commands,
    )
}

/// A DNS name for prose: as it is when it is a valid host name, escaped and marked otherwise.
fn shown(name: &str) -> String {
    if quote::is_valid_hostname(name) {
        lit(name)
    } else {
        format!(
            "{} (not a valid host name; shown escaped, left out of every command)",
            lit(&name.escape_debug().to_string())
        )
    }
}

/// vlmcs-audit and PowerShell commands that delete exactly these records (nsupdate is one script
/// per domain: [`domain_cleanup`]). A name that is not a valid host name never goes into a
/// command: each command is given when the names it needs are fit for it (vlmcs-audit: the
/// domain; PowerShell: the zone, owner and this record's target).
fn delete_commands(
    domain: &DomainReport,
    records: &[&SrvRecord],
    unauthorized: bool,
) -> Vec<Commands> {
    let obs = &domain.observation;
    if records.is_empty() {
        return Vec::new();
    }
    let (owner, zone) = obs.owner_and_zone();
    let owner = owner.as_str();
    let names_fit = quote::is_valid_hostname(owner) && quote::is_valid_hostname(&zone);
    let rrset_fits = names_fit
        && obs
            .records
            .iter()
            .all(|r| quote::is_valid_hostname(&r.target.to_string()));
    let fit: Vec<&SrvRecord> = records
        .iter()
        .copied()
        .filter(|r| names_fit && quote::is_valid_hostname(&r.target.to_string()))
        .collect();
    let mut out: Vec<Commands> = clean_command(obs, unauthorized, rrset_fits)
        .into_iter()
        .collect();
    if !fit.is_empty() {
        out.push(powershell_removal(owner, &zone, &fit));
    }
    out
}

/// `vlmcs-audit clean` for the domain: plan first, then apply (`None` when the domain is not
/// a name `clean` takes).
fn clean_command(
    obs: &DomainObservation,
    unauthorized: bool,
    rrset_fits: bool,
) -> Option<Commands> {
    if !crate::model::validate_domain(&obs.domain).is_ok_and(|d| d == obs.domain) {
        return None;
    }
    let flags = if unauthorized {
        " --include-unauthorized"
    } else {
        ""
    };
    let domain_arg = quote::sh(&obs.domain);
    Some(Commands {
        shell: "sh",
        context: format!(
            "safely, with vlmcs-audit (re-probes, keeps an undo file){}",
            if unauthorized {
                ""
            } else if rrset_fits {
                "; by hand: the nsupdate script under \"Clean up this domain\" below"
            } else {
                "; the nsupdate form is left out because the RRset holds names that are not host names"
            }
        ),
        code: format!(
            "vlmcs-audit clean {domain_arg} --tsig-key /path/to/ddns.key{flags}          # the plan first\nvlmcs-audit clean {domain_arg} --tsig-key /path/to/ddns.key{flags} --apply   # Active Directory: --gss instead of --tsig-key"
        ),
    })
}

/// Select the exact record, preview the removal, then remove it: no guess about the cmdlet's
/// -RecordData string form, and never every SRV record of the name.
fn powershell_removal(owner: &str, zone: &str, records: &[&SrvRecord]) -> Commands {
    let relative = owner
        .strip_suffix(zone)
        .map(without_final_dot)
        .filter(|r| !r.is_empty())
        .unwrap_or("@");
    let zone_q = quote::powershell(zone);
    let mut ps = String::new();
    for r in records {
        let target = r.target.to_string();
        let target = if target.ends_with('.') {
            target
        } else {
            format!("{target}.")
        };
        let select = format!(
            "Get-DnsServerResourceRecord -ZoneName {zone_q} -Name {name_q} -RRType Srv | Where-Object {{ $_.RecordData.DomainName -eq {target_q} -and $_.RecordData.Port -eq {} -and $_.RecordData.Priority -eq {} -and $_.RecordData.Weight -eq {} }}",
            r.port,
            r.priority,
            r.weight,
            name_q = quote::powershell(relative),
            target_q = quote::powershell(&target),
        );
        let _ = writeln!(
            ps,
            "{select} | Remove-DnsServerResourceRecord -ZoneName {zone_q} -WhatIf"
        );
        let _ = writeln!(
            ps,
            "{select} | Remove-DnsServerResourceRecord -ZoneName {zone_q} -Force"
        );
    }
    Commands {
        shell: "powershell",
        context: "on a Windows DNS server, or with -ComputerName DC: the first line shows what would go (-WhatIf), the second removes exactly that record".into(),
        code: ps.trim_end().to_string(),
    }
}

/// The records' verdicts; a scan saved before verdicts existed gets them decided now, the way
/// classify does.
fn verdicts_of<'a>(
    domain: &'a DomainReport,
    findings: &[&Finding],
) -> std::borrow::Cow<'a, [crate::model::RecordVerdict]> {
    if domain.verdicts.is_empty() {
        let owned: Vec<Finding> = findings.iter().map(|f| (*f).clone()).collect();
        std::borrow::Cow::Owned(crate::audit::classify::verdicts(
            &domain.observation,
            &owned,
        ))
    } else {
        std::borrow::Cow::Borrowed(&domain.verdicts)
    }
}

/// One nsupdate script that deletes every stale record of the domain in one UPDATE, under one
/// prerequisite (the whole RRset as the scan saw it): per-record scripts would each carry the
/// same prerequisite, and the second would fail once the first had run. Stale is what `clean`
/// deletes by default: dead, not KMS, certainly dangling, or an alias that leads nowhere
/// working; never a live host off the allowlist. None when a name is unfit for a command.
fn domain_cleanup(domain: &DomainReport, findings: &[&Finding]) -> Vec<Commands> {
    let obs = &domain.observation;
    let stale = stale_records(domain, findings);
    let (owner, zone) = obs.owner_and_zone();
    let (owner, zone) = (owner.as_str(), zone.as_str());
    let fits = quote::is_valid_hostname(owner)
        && quote::is_valid_hostname(zone)
        && obs
            .records
            .iter()
            .all(|r| quote::is_valid_hostname(&r.target.to_string()));
    if stale.is_empty() || !fits {
        return Vec::new();
    }
    let server = update_server(obs);
    let mut script = format!("server {server}\nzone {zone}.\n");
    for r in &obs.records {
        let _ = writeln!(
            script,
            "prereq yxrrset {owner}. SRV {} {} {} {}",
            r.priority, r.weight, r.port, r.target
        );
    }
    for r in &stale {
        let _ = writeln!(
            script,
            "update delete {owner}. SRV {} {} {} {}",
            r.priority, r.weight, r.port, r.target
        );
    }
    script.push_str("send\nEOF");
    vec![
        Commands {
            shell: "sh",
            context: format!(
                "by hand with nsupdate and a TSIG key: deletes the {} stale record(s) of this domain in one update, and only while the RRset is still exactly what the scan saw; run it once (after any change, scan again)",
                stale.len()
            ),
            code: format!("nsupdate -k /path/to/ddns.key <<'EOF'\n{script}"),
        },
        Commands {
            shell: "sh",
            context: "or, in an Active Directory-integrated zone (secure dynamic updates only), the same update signed with Kerberos (GSS-TSIG): a ticket of an account allowed to change the records first (replace REPLACE-WITH-ADMIN@REALM), then `nsupdate -g`; `vlmcs-audit clean --gss` does the same with its safety rails".into(),
            code: format!("kinit REPLACE-WITH-ADMIN@REALM\nnsupdate -g <<'EOF'\n{script}"),
        },
    ]
}

/// The records a domain's verdicts say are stale for certain: dead, not KMS, without an
/// address, or an invalid target that no KMS host answers behind.
fn stale_records<'a>(domain: &'a DomainReport, findings: &[&Finding]) -> Vec<&'a SrvRecord> {
    let obs = &domain.observation;
    let verdicts = verdicts_of(domain, findings);
    obs.records
        .iter()
        .filter(|r| {
            verdicts.iter().any(|v| {
                v.is_for(r)
                    && v.certain
                    && match v.status {
                        FindingCode::DeadHost | FindingCode::NotKms | FindingCode::NoAddress => {
                            true
                        }
                        FindingCode::InvalidTarget => !obs
                            .probes_of(r)
                            .any(|p| p.outcome == crate::model::ProbeOutcome::KmsRpc),
                        _ => false,
                    }
            })
        })
        .collect()
}

/// Where nsupdate sends: the server the scan asked when servers were given, else the zone's
/// primary (MNAME), else a placeholder to replace.
fn update_server(obs: &crate::model::DomainObservation) -> String {
    let primary = obs.primary.as_ref().map(ToString::to_string);
    match (obs.servers_from, obs.servers.first(), primary.as_deref()) {
        (ServersFrom::Configured, Some(s), _) if s.address.port() == 53 => {
            s.address.ip().to_string()
        }
        (ServersFrom::Configured, Some(s), _) => {
            format!("{} {}", s.address.ip(), s.address.port())
        }
        (_, _, Some(p)) if quote::is_valid_hostname(p) => without_final_dot(p).to_string(),
        _ => "REPLACE-WITH-PRIMARY-SERVER".into(),
    }
}

/// Load notes: the spread of the hosts clients can really use — authorized, genuine (no
/// emulator tell), by the records' verdicts.
fn load_notes(domain: &DomainReport, findings: &[&Finding]) -> Vec<String> {
    let obs = &domain.observation;
    let verdicts = verdicts_of(domain, findings);
    let healthy: Vec<&SrvRecord> = obs
        .records
        .iter()
        .filter(|r| {
            verdicts
                .iter()
                .any(|v| v.is_for(r) && v.status == FindingCode::Healthy)
                && obs
                    .probes_of(r)
                    .any(|p| p.outcome == crate::model::ProbeOutcome::KmsRpc && !p.is_emulator())
        })
        .collect();
    if healthy.is_empty() {
        return Vec::new();
    }
    let spread: Vec<String> = healthy
        .iter()
        .map(|r| {
            format!(
                "{} (priority {}, weight {}{})",
                lit(&r.target.to_string()),
                r.priority,
                r.weight,
                if r.port == KMS_PORT {
                    String::new()
                } else {
                    format!(", port {}", r.port)
                }
            )
        })
        .collect();
    vec![
        format!("Healthy hosts: {}.", spread.join("; ")),
        "Clients cache the first host that answered them (host caching is on by default), so adding a host does not spread existing load; priority and weight matter only at first discovery. They are set per domain in each host's DnsDomainPublishList lines (`domain,priority,weight`), and `slmgr.vbs /ckhc` turns client-side host caching off.".into(),
    ]
}

/// Markdown rendering.
pub fn markdown(fix: &FixIt) -> String {
    let mut out = md_front(fix);
    for section in &fix.sections {
        out.push_str(&md_section(section));
    }
    out
}

/// The title, the scan, the overview and the notes.
fn md_front(fix: &FixIt) -> String {
    let mut out = format!(
        "# {}\n\n_{}_\n\n{}\n",
        fix.title,
        md_literal(&fix.generated),
        fix.overview
    );
    for note in &fix.notes {
        let _ = write!(out, "\n> **Note:** {}\n", md_mixed(note, false));
    }
    out
}

/// One domain's section.
fn md_section(section: &Section) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "\n## {}\n\n{}\n",
        md_literal(&section.domain),
        md_literal(&section.summary)
    );
    if section.items.is_empty() {
        out.push_str("\nNothing to fix.\n");
    }
    for item in &section.items {
        let _ = write!(
            out,
            "\n### {} — {}\n\n**What was seen**\n\n",
            item.severity.to_string().to_uppercase(),
            md_literal(&item.title)
        );
        for line in &item.seen {
            let _ = writeln!(out, "- {}", md_mixed(line, false));
        }
        if !item.impact.is_empty() {
            let _ = write!(
                out,
                "\n**Why it matters to clients:** {}\n",
                md_text(&item.impact)
            );
        }
        if !item.steps.is_empty() {
            out.push_str("\n**How to fix it**\n\n");
            for (i, step) in item.steps.iter().enumerate() {
                let _ = writeln!(out, "{}. {}", i + 1, md_text(step));
            }
        }
        md_commands(&mut out, &item.commands);
    }
    if !section.cleanup.is_empty() {
        out.push_str("\n**Clean up this domain**\n");
        md_commands(&mut out, &section.cleanup);
    }
    if !section.load.is_empty() {
        out.push_str("\n**Load**\n\n");
        for line in &section.load {
            let _ = writeln!(out, "- {}", md_text(line));
        }
    }
    out
}

/// Blocks of commands, each under its context in italics.
fn md_commands(out: &mut String, commands: &[Commands]) {
    for c in commands {
        let _ = write!(
            out,
            "\n_{}_\n\n```{}\n{}\n```\n",
            md_text(&c.context),
            c.shell,
            c.code
        );
    }
}

/// The tool's prose (its `code` spans kept) with the data in it shown literally.
fn md_text(text: &str) -> String {
    md_mixed(text, true)
}

/// Prose and data: `data_inside_prose` when the prose around the data may hold emphasis (see
/// [`md_data`]); false for data whose only prose is the tool's code spans.
fn md_mixed(text: &str, data_inside_prose: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for (is_data, part) in parts(text) {
        if is_data {
            out.push_str(&md_data(part, data_inside_prose));
            continue;
        }
        for c in part.chars() {
            match c {
                c if c.is_control() => out.push('\u{fffd}'),
                '<' => out.push_str("&lt;"),
                '>' => out.push_str("&gt;"),
                c => out.push(c),
            }
        }
    }
    out
}

/// Data as Markdown that renders to exactly this text: every character that can start
/// inline markup backslash-escaped (CommonMark lets any ASCII punctuation be), `<` and `>` as
/// entities, control characters as U+FFFD, and a leading character that would start a block
/// (heading, quote, list) escaped. Underscores are escaped only where they could take part in
/// emphasis (CommonMark's flanking rules), so that `_vlmcs._tcp` reads as it is: those that
/// could close one always, those that could open one too when the data sits inside prose
/// (`inside_prose`), where a closer may follow outside it.
fn md_data(text: &str, inside_prose: bool) -> String {
    let chars: Vec<char> = text
        .chars()
        .filter(|c| *c != LIT_START && *c != LIT_END)
        .collect();
    let mut out = String::with_capacity(text.len() + 8);
    let digits = chars.iter().take_while(|c| c.is_ascii_digit()).count();
    for (i, &c) in chars.iter().enumerate() {
        let block_start = (i == 0 && matches!(c, '#' | '>' | '+' | '-' | '='))
            || (i == digits && digits > 0 && matches!(c, '.' | ')'));
        match c {
            c if c.is_control() => out.push('\u{fffd}'),
            '<' => out.push_str("&lt;"),
            '>' if !block_start => out.push_str("&gt;"),
            '_' => {
                let (prev, next) = (
                    i.checked_sub(1).map(|j| chars[j]),
                    chars.get(i + 1).copied(),
                );
                let (opens, closes) = underscore_flanks(prev, next);
                if closes || (inside_prose && opens) {
                    out.push('\\');
                }
                out.push('_');
            }
            '\\' | '`' | '*' | '[' | ']' | '&' | '~' | '|' | '!' => {
                out.push('\\');
                out.push(c);
            }
            c if block_start => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

/// Whether an underscore between `prev` and `next` (`None`: the edge of the text, which counts
/// as white space) may open and may close emphasis (CommonMark 0.31, 6.2). A neighbouring
/// underscore counts as punctuation, which errs towards escaping.
fn underscore_flanks(prev: Option<char>, next: Option<char>) -> (bool, bool) {
    let space = |c: Option<char>| c.is_none_or(char::is_whitespace);
    let punct = |c: Option<char>| c.is_some_and(|c| !c.is_alphanumeric() && !c.is_whitespace());
    let left = !space(next) && (!punct(next) || space(prev) || punct(prev));
    let right = !space(prev) && (!punct(prev) || space(next) || punct(next));
    (
        left && (!right || punct(prev)),
        right && (!left || punct(next)),
    )
}

/// Data that is a whole paragraph, list item or heading of its own.
fn md_literal(text: &str) -> String {
    md_data(text, false)
}

/// Prose for HTML: escaped, `code` spans as `<code>`, and http(s) URLs as links; the data in
/// it escaped only.
fn html_text(text: &str) -> String {
    parts(text)
        .into_iter()
        .map(|(is_data, part)| {
            if is_data {
                html_escape(part)
            } else {
                html_prose(part)
            }
        })
        .collect()
}

fn html_prose(text: &str) -> String {
    let escaped = html_escape(text);
    let ticks = escaped.matches('`').count();
    let mut out = String::with_capacity(escaped.len());
    for (i, part) in escaped.split('`').enumerate() {
        // Odd parts were between backticks (an unpaired last one stays literal).
        if i % 2 == 1 && ticks > i {
            let _ = write!(out, "<code>{part}</code>");
        } else {
            if i % 2 == 1 {
                out.push('`');
            }
            out.push_str(&linked(part));
        }
    }
    out
}

/// http(s) URLs in escaped text as links (the text itself is already escaped).
fn linked(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find("https://").or_else(|| rest.find("http://")) {
        out.push_str(&rest[..at]);
        let url = &rest[at..];
        let end = url
            .find(|c: char| c.is_whitespace() || c == ')' || c == ';' || c == ',')
            .unwrap_or(url.len());
        let (url, after) = url.split_at(end);
        let (url, trailing) = match url.strip_suffix('.') {
            Some(u) => (u, "."),
            None => (url, ""),
        };
        let _ = write!(out, "<a href=\"{url}\">{url}</a>{trailing}");
        rest = after;
    }
    out.push_str(rest);
    out
}

fn html_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            LIT_START | LIT_END => {}
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() && c != '\n' => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

/// One self-contained HTML file: inline CSS, no scripts, no external assets.
pub fn html(fix: &FixIt) -> String {
    let rows: Vec<Row> = fix.sections.iter().enumerate().map(Row::of).collect();
    let mut out = html_front(fix, &rows);
    for row in worst_first(&rows) {
        out.push_str(&html_section(row.index, &fix.sections[row.index]));
    }
    out.push_str(HTML_END);
    out
}

/// The HTML report of any view (a saved scan on disk, say): a first pass for the banner and
/// the table of domains, then one pass per severity for the sections, worst first; nothing
/// but a line per domain and one domain's section is held at a time.
pub fn html_to(view: &dyn ReportView, out: &mut dyn std::io::Write) -> Result<(), ReportError> {
    let head = front(view)?;
    // One pass: each section rendered at once into the spool of its severity, a line per
    // domain kept for the banner and the table; then the spools in order, worst first.
    let mut spools = Vec::with_capacity(SEVERITIES_WORST_FIRST.len());
    for _ in SEVERITIES_WORST_FIRST {
        spools.push(std::io::BufWriter::new(
            crate::report::spool::anonymous_file().map_err(ReportError::Spool)?,
        ));
    }
    let mut rows: Vec<Row> = Vec::new();
    view.for_each_domain(&mut |d, findings| {
        let section = section(d, findings);
        let row = Row::of((rows.len(), &section));
        let rank = SEVERITIES_WORST_FIRST
            .iter()
            .position(|s| *s == row.worst)
            .unwrap_or(SEVERITIES_WORST_FIRST.len() - 1);
        std::io::Write::write_all(
            &mut spools[rank],
            html_section(row.index, &section).as_bytes(),
        )
        .map_err(ReportError::Spool)?;
        rows.push(row);
        Ok(())
    })?;
    out.write_all(html_front(&head, &rows).as_bytes())?;
    for spool in spools {
        let mut file = spool
            .into_inner()
            .map_err(|e| ReportError::Spool(e.into_error()))?;
        std::io::Seek::seek(&mut file, std::io::SeekFrom::Start(0)).map_err(ReportError::Spool)?;
        std::io::copy(&mut file, out)?;
    }
    out.write_all(HTML_END.as_bytes())?;
    Ok(())
}

const SEVERITIES_WORST_FIRST: [Severity; 4] = [
    Severity::Critical,
    Severity::Warning,
    Severity::Info,
    Severity::Ok,
];

const HTML_END: &str = "</main>\n</body>\n</html>\n";

/// What the banner and the table of domains need of a section (a line per domain is all
/// that the streaming renderer keeps).
struct Row {
    index: usize,
    worst: Severity,
    items: usize,
    domain: String,
    summary: String,
}

impl Row {
    fn of((index, section): (usize, &Section)) -> Self {
        Self {
            index,
            worst: worst_of(section),
            items: section.items.len(),
            domain: section.domain.clone(),
            summary: section.summary.clone(),
        }
    }
}

/// A section's worst severity (`ok` when it has nothing to fix).
fn worst_of(section: &Section) -> Severity {
    section
        .items
        .iter()
        .map(|i| i.severity)
        .max()
        .unwrap_or(Severity::Ok)
}

/// Worst domains first, in report order within a severity; each keeps its anchor.
fn worst_first(rows: &[Row]) -> Vec<&Row> {
    let mut order: Vec<&Row> = rows.iter().collect();
    order.sort_by_key(|row| std::cmp::Reverse(row.worst));
    order
}

/// Everything before the sections: head, banner, notes, the table of domains.
fn html_front(fix: &FixIt, rows: &[Row]) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>{}</title>\n<style>\n{CSS}</style>\n</head>\n<body>\n<header><h1>{}</h1><p class=\"meta\">{}</p><p class=\"overview\">{}</p></header>\n",
        html_escape(&fix.title),
        html_escape(&fix.title),
        html_escape(&fix.generated),
        html_text(&fix.overview)
    );
    let order = worst_first(rows);
    html_banner(&mut out, &order);
    for note in &fix.notes {
        let _ = writeln!(out, "<p class=\"note\">{}</p>", html_text(note));
    }
    out.push_str("<nav><table class=\"domains\">\n<thead><tr><th>domain</th><th>worst</th><th>to fix</th><th>summary</th></tr></thead>\n<tbody>\n");
    for row in &order {
        let _ = writeln!(
            out,
            "<tr><td><a href=\"#d{i}\">{}</a></td><td><span class=\"sev {worst}\">{worst}</span></td><td>{}</td><td>{}</td></tr>",
            html_escape(&row.domain),
            row.items,
            html_escape(&row.summary),
            i = row.index,
            worst = row.worst,
        );
    }
    out.push_str("</tbody></table></nav>\n<main>\n");
    out
}

/// One domain's section, anchored by its place in the report.
fn html_section(i: usize, section: &Section) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "<section id=\"d{i}\">\n<h2>{}</h2>\n<p class=\"summary\">{}</p>\n",
        html_escape(&section.domain),
        html_escape(&section.summary)
    );
    if section.items.is_empty() {
        out.push_str("<p class=\"ok\">Nothing to fix.</p>\n");
    }
    for item in &section.items {
        html_item(&mut out, item);
    }
    if !section.cleanup.is_empty() {
        out.push_str("<h4>Clean up this domain</h4>\n");
        html_commands(&mut out, &section.cleanup);
    }
    if !section.load.is_empty() {
        out.push_str("<h4>Load</h4>\n<ul class=\"load\">\n");
        for line in &section.load {
            let _ = writeln!(out, "<li>{}</li>", html_text(line));
        }
        out.push_str("</ul>\n");
    }
    out.push_str("</section>\n");
    out
}

/// One line for the whole report: the worst severity and how many domains are at each.
fn html_banner(out: &mut String, order: &[&Row]) {
    let overall = order.first().map_or(Severity::Ok, |row| row.worst);
    let mut counts = Vec::new();
    for severity in SEVERITIES_WORST_FIRST {
        let n = order.iter().filter(|row| row.worst == severity).count();
        if n > 0 {
            counts.push(format!("{n} {severity}"));
        }
    }
    let _ = writeln!(
        out,
        "<div class=\"banner {overall}\">Overall: {} — {} domain(s): {}</div>",
        overall.to_string().to_uppercase(),
        order.len(),
        counts.join(", ")
    );
}

/// One finding's article: what was seen, why it matters, the steps and their commands.
fn html_item(out: &mut String, item: &Item) {
    let _ = write!(
        out,
        "<article class=\"item {sev}\">\n<h3><span class=\"sev {sev}\">{sev}</span> {}</h3>\n<h4>What was seen</h4>\n<ul>\n",
        html_escape(&item.title),
        sev = item.severity
    );
    for line in &item.seen {
        let _ = writeln!(out, "<li>{}</li>", html_text(line));
    }
    out.push_str("</ul>\n");
    if !item.impact.is_empty() {
        let _ = writeln!(
            out,
            "<p class=\"impact\"><strong>Why it matters to clients:</strong> {}</p>",
            html_text(&item.impact)
        );
    }
    if !item.steps.is_empty() {
        out.push_str("<h4>How to fix it</h4>\n<ol>\n");
        for step in &item.steps {
            let _ = writeln!(out, "<li>{}</li>", html_text(step));
        }
        out.push_str("</ol>\n");
    }
    html_commands(out, &item.commands);
    out.push_str("</article>\n");
}

fn html_commands(out: &mut String, commands: &[Commands]) {
    for c in commands {
        let _ = writeln!(
            out,
            "<p class=\"context\">{} <span class=\"shell\">{}</span></p>\n<pre><code>{}</code></pre>",
            html_text(&c.context),
            c.shell,
            html_escape(&c.code)
        );
    }
}

const CSS: &str = "body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:0;color:#1d2228;background:#f5f6f8;line-height:1.45}
header{background:#1f3a5f;color:#fff;padding:1.2rem 2rem}header h1{margin:0 0 .3rem;font-size:1.6rem}
.meta{opacity:.8;margin:0}.overview{font-size:1.1rem;margin:.4rem 0 0}
nav{padding:.6rem 2rem;background:#fff;border-bottom:1px solid #dde1e6}nav ul{list-style:none;margin:0;padding:0;display:flex;flex-wrap:wrap;gap:.4rem 1.2rem}
nav a{text-decoration:none;color:#1f3a5f}main{padding:1rem 2rem}
table.domains{border-collapse:collapse;width:100%;font-size:.9rem}table.domains th,table.domains td{text-align:left;padding:.25rem .6rem;border-bottom:1px solid #e3e7eb;vertical-align:top}
.banner{margin:0;padding:.6rem 2rem;font-weight:600;color:#fff;background:#2e7d32}.banner.critical{background:#c62828}.banner.warning{background:#ef8f00}.banner.info{background:#1976d2}
code{background:#e8ecf0;padding:.05rem .3rem;border-radius:3px;font-size:.9em}pre code{background:none;padding:0}
section{background:#fff;border:1px solid #dde1e6;border-radius:8px;padding:1rem 1.4rem;margin:1rem 0}
h2{margin:.2rem 0;font-size:1.3rem}.summary{color:#4a5560;margin-top:.2rem}
article{border-left:4px solid #9aa5b1;padding:.2rem 1rem;margin:1rem 0}article.critical{border-color:#c62828}article.warning{border-color:#ef8f00}article.info{border-color:#1976d2}
h3{font-size:1.05rem;margin:.4rem 0}h4{font-size:.9rem;text-transform:uppercase;letter-spacing:.04em;color:#4a5560;margin:.8rem 0 .3rem}
.sev{display:inline-block;font-size:.75rem;font-weight:600;text-transform:uppercase;padding:.1rem .45rem;border-radius:4px;color:#fff;background:#9aa5b1;vertical-align:middle}
.sev.critical{background:#c62828}.sev.warning{background:#ef8f00}.sev.info{background:#1976d2}.sev.ok{background:#2e7d32}
pre{background:#0f1720;color:#e6edf3;padding:.7rem 1rem;border-radius:6px;overflow-x:auto;font-size:.85rem;white-space:pre-wrap;overflow-wrap:anywhere}
table.domains td:first-child{white-space:nowrap}
@page{margin:12mm}
@media print{body{background:#fff;font-size:10pt;print-color-adjust:exact;-webkit-print-color-adjust:exact}header,.banner{padding-left:1rem;padding-right:1rem}main{padding:0}.note{margin:.6rem 0}
section{border:0;padding:0;break-inside:auto}pre{white-space:pre-wrap;overflow-wrap:anywhere;color:#000;background:#f1f3f5;border:1px solid #ccc;font-size:8pt;break-inside:avoid}
h2,h3,h4,.context{break-after:avoid}tr{break-inside:avoid}}
.context{margin:.6rem 0 .2rem;color:#4a5560;font-style:italic}.shell{font-style:normal;font-size:.75rem;background:#e8ecf0;padding:.05rem .35rem;border-radius:3px}
.note{margin:1rem 2rem;padding:.6rem 1rem;background:#fff8e1;border:1px solid #ffe082;border-radius:6px}.ok{color:#2e7d32}
";
