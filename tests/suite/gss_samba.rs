//! GSS-TSIG against a real Active Directory domain controller: Samba 4 with its internal DNS,
//! provisioned per run in a network namespace the harness creates (root only; CI runs as root).
//! The zone takes secure updates only, tickets carry a PAC, and replies are signed the
//! Windows way (without the request MAC's length), which the tool must accept and report.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

use crate::common::gss::{Outcome, apply_args};
use vlmcs_lab::kdc::kinit_with;
use vlmcs_lab::netns::bind_in_netns;
use vlmcs_lab::samba::SambaDc;
use vlmcs_lab::{Behavior, StandIn};

const REALM: &str = "AD.TEST";
const PASSWORD: &str = "Passw0rd!Lab";
const AUDITOR_PASSWORD: &str = "Aud1tor!Pass";
/// One owner name per test under the AD zone.
const NAMES: &[&str] = &["delete", "refused", "restore"];
/// The AD scenario's machines: two KMS hosts (in the group "Fleet KMS") and a workstation
/// that got a KMS host key, each registering its own record as its machine account.
const FLEET: [(&str, &str); 3] = [
    ("kmsa", "127.0.0.11"),
    ("kmsb", "127.0.0.12"),
    ("ws1", "127.0.0.13"),
];
/// Where OpenLDAP's slapd answers LDAP in the DC's namespace: a server that is not AD.
const NOT_AD: &str = "127.0.0.20";
/// The zones of the AD scenario: aging on (1-hour intervals) and off.
const AGING_ZONES: [(&str, bool); 2] = [("aging.test", true), ("noaging.test", false)];

struct Bed {
    netns: String,
    dir: PathBuf,
    env: Vec<(String, String)>,
}

static BED: OnceLock<Option<Bed>> = OnceLock::new();

fn is_root() -> bool {
    vlmcs_audit::support::fsio::current_uid() == 0
}

/// The bed, or `None` (test skipped, said on stderr) when not root.
fn bed() -> Option<&'static Bed> {
    BED.get_or_init(|| {
        if !is_root() {
            eprintln!("skipped: a Samba AD DC in a network namespace needs root");
            return None;
        }
        Some(crate::common::serve_forever(|| async {
            let (bed, dc) = start()?;
            // The healthy KMS host lives inside the DC's namespace.
            let listener = bind_in_netns(&bed.netns, SocketAddr::from(([127, 0, 0, 3], 1688)))
                .map_err(|e| e.to_string())?;
            let kms = StandIn::from_std(listener, Behavior::Kms).map_err(|e| e.to_string())?;
            // The fleet's two KMS hosts and the workstation that made itself one.
            let mut fleet = Vec::new();
            for (_, address) in FLEET {
                let listener =
                    bind_in_netns(&bed.netns, SocketAddr::new(address.parse().unwrap(), 1688))
                        .map_err(|e| e.to_string())?;
                fleet.push(StandIn::from_std(listener, Behavior::Kms).map_err(|e| e.to_string())?);
            }
            // An LDAP server that is not AD, beside the DC.
            let slapd = vlmcs_lab::slapd::Slapd::start_in_netns(
                &bed.dir.join("slapd"),
                &bed.netns,
                NOT_AD.parse().unwrap(),
            )?;
            Ok((bed, (dc, kms, fleet, slapd)))
        }))
    })
    .as_ref()
}

fn start() -> Result<(Bed, SambaDc), String> {
    let dir = std::env::temp_dir().join(format!("vlmcs-audit-samba-{}", std::process::id()));
    let netns = format!("vlmcs-audit-{}", std::process::id());
    let dc = SambaDc::start(&dir.join("dc"), &netns, REALM, "ADTEST", PASSWORD)?;
    let conf = dir.join("dc/etc/smb.conf");
    // Samba's LDAP server comes up a little after its DNS: a refused connection is retried.
    let samba_tool = |args: &[&str]| -> Result<(), String> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let out = dc
                .command("samba-tool")
                .args(args)
                .args(["-H", "ldap://dc1.ad.test", "-U", "Administrator"])
                .arg(format!("--password={PASSWORD}"))
                .arg("-s")
                .arg(&conf)
                .output()
                .map_err(|e| e.to_string())?;
            let said = format!(
                "samba-tool {args:?}: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            if out.status.success() {
                return Ok(());
            }
            if !said.contains("CONNECTION_REFUSED") || std::time::Instant::now() > deadline {
                return Err(said);
            }
            std::thread::sleep(std::time::Duration::from_millis(500));
        }
    };
    // kms1 as a computer account (its dNSHostName kms1.ad.test and its A record come with
    // --ip-address), and another computer.
    samba_tool(&["computer", "create", "kms1", "--ip-address=127.0.0.3"])?;
    samba_tool(&["computer", "create", "other", "--ip-address=127.0.0.9"])?;
    dc.samba_tool_dns(&["add", "127.0.0.2", "ad.test", "dead", "A", "127.0.0.4"])?;
    let add_srv = |name: &str, target: &str| {
        dc.samba_tool_dns(&[
            "add",
            "127.0.0.2",
            "ad.test",
            &format!("_vlmcs._tcp.{name}"),
            "SRV",
            &format!("{target}.ad.test 1688 0 0"),
        ])
    };
    for name in NAMES {
        for target in ["kms1", "dead"] {
            add_srv(name, target)?;
        }
    }
    // Two nodes for the AD parsers: one as an administrator adds it, one opened to Domain
    // Computers the way a too-wide fix for event 12293 does.
    for name in ["sample", "opened", "hidden"] {
        add_srv(name, "kms1")?;
    }
    // A second AD-integrated zone, for `scan --ad` to find beside the domain's own.
    dc.samba_tool_dns(&["zonecreate", "127.0.0.2", "branch.test"])?;
    let opened = format!("--objectdn={}", node_dn("opened"));
    samba_tool(&[
        "dsacl",
        "set",
        &opened,
        "--sddl=(A;;RPWPCRCCDCLCLORCWOWDSDDTSW;;;DC)",
    ])?;
    // The KMS hosts' group, kms1 in it through a nested group; another group with another
    // computer.
    for group in ["KMS Hosts", "KMS Site A", "Other Hosts"] {
        samba_tool(&["group", "add", group])?;
    }
    samba_tool(&["group", "addmembers", "KMS Hosts", "KMS Site A"])?;
    samba_tool(&["group", "addmembers", "KMS Site A", "kms1$"])?;
    samba_tool(&["group", "addmembers", "Other Hosts", "other$"])?;
    let ccache = dir.join("admin.ccache");
    let realm_env = [(
        "KRB5_CONFIG".to_string(),
        dc.krb5_conf.display().to_string(),
    )];
    kinit_with(
        dc.command("kinit"),
        &realm_env,
        &[],
        &format!("Administrator@{REALM}"),
        PASSWORD,
        &ccache,
    )?;
    fleet(&dc, &dir, &samba_tool)?;
    // An account that may not read the `hidden` node's security descriptor (READ_CONTROL
    // denied), with its own ticket.
    samba_tool(&["user", "create", "auditor", AUDITOR_PASSWORD])?;
    let auditor = account_sid(&dc, &dir, "(sAMAccountName=auditor)")?;
    samba_tool(&[
        "dsacl",
        "set",
        &format!("--objectdn={}", node_dn("hidden")),
        &format!("--sddl=(D;;RC;;;{auditor})"),
    ])?;
    kinit_with(
        dc.command("kinit"),
        &realm_env,
        &[],
        &format!("auditor@{REALM}"),
        AUDITOR_PASSWORD,
        &dir.join("auditor.ccache"),
    )?;
    let env = vec![
        (
            "KRB5_CONFIG".to_string(),
            dc.krb5_conf.display().to_string(),
        ),
        (
            "KRB5CCNAME".to_string(),
            format!("FILE:{}", ccache.display()),
        ),
    ];
    Ok((
        Bed {
            netns: dc.netns.clone(),
            dir,
            env,
        },
        dc,
    ))
}

/// The AD scenario, in each of [`AGING_ZONES`]: kmsa registers first (and so owns the node),
/// the "Fleet KMS" group gets Full Control on the node (Microsoft's fix for event 12293) and
/// kmsb registers, the node is then opened to Domain Computers (the too-wide fix) and the
/// workstation ws1 registers itself, an administrator adds a static record for `old`, and
/// kmsb's stamp is set back three days. Every registration is a GSS-TSIG update signed as the
/// machine's own account, judged by querying (Samba's replies fail `nsupdate -g`'s check).
fn fleet(
    dc: &SambaDc,
    dir: &std::path::Path,
    samba_tool: &dyn Fn(&[&str]) -> Result<(), String>,
) -> Result<(), String> {
    for (host, address) in FLEET {
        let account = format!("{host}$");
        samba_tool(&[
            "computer",
            "create",
            host,
            &format!("--ip-address={address}"),
        ])?;
        samba_tool(&[
            "user",
            "setpassword",
            &account,
            "--newpassword=Mach1ne!Pass",
        ])?;
        samba_tool(&["user", "enable", &account])?;
        let out = dc
            .command("samba-tool")
            .args(["domain", "exportkeytab"])
            .arg(dir.join(format!("{host}.keytab")))
            .arg(format!("--principal={account}@{REALM}"))
            .arg("-s")
            .arg(dir.join("dc/etc/smb.conf"))
            .output()
            .map_err(|e| e.to_string())?;
        if !out.status.success() {
            return Err(format!(
                "exportkeytab {host}: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
    }
    samba_tool(&["group", "add", "Fleet KMS"])?;
    samba_tool(&["group", "addmembers", "Fleet KMS", "kmsa$,kmsb$"])?;
    let group_sid = account_sid(dc, dir, "(sAMAccountName=Fleet KMS)")?;
    for (zone, aging) in AGING_ZONES {
        dc.samba_tool_dns(&["zonecreate", "127.0.0.2", zone])?;
        if aging {
            dc.samba_tool_dns(&[
                "zoneoptions",
                "127.0.0.2",
                zone,
                "--aging=1",
                "--norefreshinterval=1",
                "--refreshinterval=1",
            ])?;
        }
        let node = format!(
            "--objectdn=DC=_vlmcs._tcp,DC={zone},CN=MicrosoftDNS,DC=DomainDnsZones,DC=ad,DC=test"
        );
        register(dc, dir, "kmsa", zone)?;
        samba_tool(&[
            "dsacl",
            "set",
            &node,
            &format!("--sddl=(A;;RPWPCRCCDCLCLORCWOWDSDDTSW;;;{group_sid})"),
        ])?;
        register(dc, dir, "kmsb", zone)?;
        samba_tool(&[
            "dsacl",
            "set",
            &node,
            "--sddl=(A;;RPWPCRCCDCLCLORCWOWDSDDTSW;;;DC)",
        ])?;
        register(dc, dir, "ws1", zone)?;
        dc.samba_tool_dns(&[
            "add",
            "127.0.0.2",
            zone,
            "_vlmcs._tcp",
            "SRV",
            "old.ad.test 1688 0 0",
        ])?;
        set_stamp_back(dc, dir, zone, "kmsb.ad.test", 72)?;
    }
    Ok(())
}

/// `host` adds `_vlmcs._tcp.<zone> SRV 0 0 1688 <host>.ad.test.` with GSS-TSIG as its machine
/// account, from its keytab.
fn register(dc: &SambaDc, dir: &std::path::Path, host: &str, zone: &str) -> Result<(), String> {
    let ccache = format!("FILE:{}", dir.join(format!("{host}.ccache")).display());
    let env = [
        ("KRB5_CONFIG", dc.krb5_conf.display().to_string()),
        ("KRB5CCNAME", ccache),
    ];
    let out = dc
        .command("kinit")
        .envs(env.iter().cloned())
        .arg("-k")
        .arg("-t")
        .arg(dir.join(format!("{host}.keytab")))
        .arg(format!("{host}$@{REALM}"))
        .output()
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!(
            "kinit as {host}$: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let script = format!(
        "server 127.0.0.2\nzone {zone}\nupdate add _vlmcs._tcp.{zone} 3600 SRV 0 0 1688 {host}.ad.test.\nsend\n"
    );
    let said = crate::common::run_with_input(
        dc.command("nsupdate").envs(env.iter().cloned()).arg("-g"),
        script.as_bytes(),
    );
    let answer = dc
        .command("dig")
        .args([
            "+short",
            "+norec",
            "@127.0.0.2",
            &format!("_vlmcs._tcp.{zone}"),
            "SRV",
        ])
        .output()
        .map_err(|e| e.to_string())?;
    if !String::from_utf8_lossy(&answer.stdout).contains(&format!(" {host}.ad.test.")) {
        return Err(format!(
            "{host} could not register in {zone}: {}{}",
            String::from_utf8_lossy(&said.stdout),
            String::from_utf8_lossy(&said.stderr)
        ));
    }
    Ok(())
}

/// The SID of the account `filter` finds (as the admin), in its text form.
fn account_sid(dc: &SambaDc, dir: &std::path::Path, filter: &str) -> Result<String, String> {
    let mut search = admin_ldap(dc, dir, "ldapsearch");
    search.args(["-LLL", "-b", "DC=ad,DC=test", filter, "objectSid"]);
    let bytes = binary_values(search)?
        .into_iter()
        .find_map(|(attribute, value)| (attribute == "objectSid").then_some(value))
        .ok_or_else(|| format!("ldapsearch {filter}: no objectSid"))?;
    let (sid, _) = vlmcs_audit::ad::security::Sid::parse(&bytes).map_err(|e| e.to_string())?;
    Ok(sid.to_string())
}

/// Runs an `ldapsearch` and returns the binary values of its LDIF (`name:: base64`, lines
/// folded with a leading space joined first), attribute by attribute.
fn binary_values(mut search: Command) -> Result<Vec<(String, Vec<u8>)>, String> {
    use base64::Engine as _;
    let out = search.output().map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(format!(
            "ldapsearch: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    text.replace("\n ", "")
        .lines()
        .filter_map(|line| line.split_once(":: "))
        .map(|(attribute, value)| {
            base64::engine::general_purpose::STANDARD
                .decode(value.trim())
                .map(|bytes| (attribute.to_string(), bytes))
                .map_err(|e| format!("ldapsearch: {attribute}: {e}"))
        })
        .collect()
}

/// An OpenLDAP client command bound as the administrator (GSSAPI, the admin's ticket).
fn admin_ldap(dc: &SambaDc, dir: &std::path::Path, program: &str) -> Command {
    let mut command = dc.command(program);
    command
        .env("KRB5_CONFIG", &dc.krb5_conf)
        .env(
            "KRB5CCNAME",
            format!("FILE:{}", dir.join("admin.ccache").display()),
        )
        .args(["-Q", "-N", "-Y", "GSSAPI", "-H", "ldap://dc1.ad.test"]);
    command
}

/// Moves the stamp of the record for `target` in `zone`'s `_vlmcs._tcp` node `hours` back, as
/// if its host had stopped refreshing it then (one LDAP modify: the old value out, the new in).
fn set_stamp_back(
    dc: &SambaDc,
    dir: &std::path::Path,
    zone: &str,
    target: &str,
    hours: u32,
) -> Result<(), String> {
    use base64::Engine as _;
    let engine = base64::engine::general_purpose::STANDARD;
    let dn = format!("DC=_vlmcs._tcp,DC={zone},CN=MicrosoftDNS,DC=DomainDnsZones,DC=ad,DC=test");
    let mut search = admin_ldap(dc, dir, "ldapsearch");
    search.args(["-LLL", "-s", "base", "-b", &dn, "dnsRecord"]);
    let old = binary_values(search)?
        .into_iter()
        .filter(|(attribute, _)| attribute == "dnsRecord")
        .map(|(_, value)| value)
        .find(|v| vlmcs_audit::ad::dns_record::parse(v).is_ok_and(|r| matches!(&r.data, vlmcs_audit::ad::dns_record::RecordData::Srv { target: t, .. } if t.to_string() == format!("{target}."))))
        .ok_or_else(|| format!("no record for {target} in {dn}"))?;
    let mut new = old.clone();
    let stamp = u32::from_le_bytes(new[20..24].try_into().unwrap()) - hours;
    new[20..24].copy_from_slice(&stamp.to_le_bytes());
    // Samba checks each change against its DNS rules; the admin may rewrite a node's values.
    let ldif = format!(
        "dn: {dn}\nchangetype: modify\ndelete: dnsRecord\ndnsRecord:: {}\n-\nadd: dnsRecord\ndnsRecord:: {}\n-\n",
        engine.encode(&old),
        engine.encode(&new)
    );
    let said =
        crate::common::run_with_input(&mut admin_ldap(dc, dir, "ldapmodify"), ldif.as_bytes());
    if !said.status.success() {
        return Err(format!(
            "ldapmodify: {}",
            String::from_utf8_lossy(&said.stderr)
        ));
    }
    Ok(())
}

/// The `dnsNode` of `_vlmcs._tcp.<name>.ad.test`.
fn node_dn(name: &str) -> String {
    format!("DC=_vlmcs._tcp.{name},DC=ad.test,CN=MicrosoftDNS,DC=DomainDnsZones,DC=ad,DC=test")
}

fn in_netns(bed: &Bed, program: &str) -> Command {
    vlmcs_lab::netns::command(&bed.netns, program)
}

fn dig(bed: &Bed, name: &str) -> Vec<String> {
    let out = in_netns(bed, "dig")
        .args([
            "+norec",
            "+tcp",
            "+short",
            "@127.0.0.2",
            &format!("_vlmcs._tcp.{name}.ad.test"),
            "SRV",
        ])
        .output()
        .unwrap();
    let mut lines: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    lines.sort();
    lines
}

fn clean(bed: &Bed, name: &str, extra: &[&str], env: &[(&str, String)]) -> Outcome {
    let dir = bed.dir.join(name);
    let domain = format!("{name}.ad.test");
    in_netns(bed, env!("CARGO_BIN_EXE_vlmcs-audit"))
        .envs(bed.env.iter().cloned())
        .envs(env.iter().map(|(k, v)| (*k, v.clone())))
        .args([
            "clean",
            &domain,
            "--server",
            "127.0.0.2",
            "--timeout",
            "3s",
            "--format",
            "json",
            "-v",
        ])
        .args(apply_args(&dir, "kms1.ad.test"))
        .args(extra)
        .output()
        .unwrap()
        .into()
}

#[test]
fn samba_stale_record_is_deleted_and_the_reply_quirk_is_accepted_and_reported() {
    let Some(bed) = bed() else { return };
    let run = clean(bed, "delete", &["--gss"], &[]);
    assert_eq!(
        dig(bed, "delete"),
        vec!["0 0 1688 kms1.ad.test.".to_string()],
        "{:#} {}",
        run.json,
        run.stderr
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let text = run.message();
    assert!(text.contains("without the request MAC length"), "{text}");
}

#[test]
fn samba_no_ticket_wrong_realm_and_unsigned_fail_clearly_and_change_nothing() {
    let Some(bed) = bed() else { return };
    let before = dig(bed, "refused");
    assert_eq!(before.len(), 2);
    let no_ticket = clean(
        bed,
        "refused",
        &["--gss"],
        &[(
            "KRB5CCNAME",
            format!("FILE:{}", bed.dir.join("none").display()),
        )],
    );
    assert!(
        no_ticket.message().contains("no Kerberos ticket"),
        "{}",
        no_ticket.message()
    );
    let wrong_realm = clean(
        bed,
        "refused",
        &["--gss", "--principal", "Administrator@OTHER.TEST"],
        &[],
    );
    assert!(
        wrong_realm.message().contains("authentication failed"),
        "{}",
        wrong_realm.message()
    );
    let unsigned = clean(bed, "refused", &["--no-auth"], &[]);
    assert!(
        unsigned.message().contains("REFUSED"),
        "{}",
        unsigned.message()
    );
    for outcome in [&no_ticket, &wrong_realm, &unsigned] {
        assert_eq!(outcome.code, 2);
    }
    assert_eq!(dig(bed, "refused"), before);
}

#[test]
fn samba_undo_file_restores_the_record() {
    let Some(bed) = bed() else { return };
    let before = dig(bed, "restore");
    clean(bed, "restore", &["--gss"], &[]);
    assert_eq!(dig(bed, "restore").len(), 1);
    let output = in_netns(bed, env!("CARGO_BIN_EXE_vlmcs-audit"))
        .envs(bed.env.iter().cloned())
        .arg("restore")
        .arg(bed.dir.join("restore").join("undo.txt"))
        .arg("--gss")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(dig(bed, "restore"), before);
}

/// A node's `dnsRecord` values and `nTSecurityDescriptor`, read as an LDAP client reads them:
/// SASL GSSAPI with a sealing layer (what Samba's defaults require) as the administrator, with
/// the SD-flags control asking for owner and DACL (`30 03 02 01 05`).
fn node_attributes(bed: &Bed, name: &str) -> Vec<(String, Vec<u8>)> {
    let mut search = in_netns(bed, "ldapsearch");
    search
        .envs(bed.env.iter().cloned())
        .args([
            "-LLL",
            "-Q",
            "-N",
            "-Y",
            "GSSAPI",
            "-H",
            "ldap://dc1.ad.test",
            "-s",
            "base",
        ])
        .args([
            "-E",
            "!1.2.840.113556.1.4.801=::MAMCAQU=",
            "-b",
            &node_dn(name),
        ])
        .args(["nTSecurityDescriptor", "dnsRecord"]);
    binary_values(search).unwrap()
}

/// What AD stores about two `_vlmcs._tcp` nodes, parsed by the project's own parsers from the
/// DC's bytes: the record an administrator added is static (stamp 0) with its target and port;
/// the node belongs to a domain account and Everyone may only read it; once `dsacl` opened the
/// second node to Domain Computers, that group may publish a host there.
#[test]
fn samba_node_records_and_security_descriptors_parse() {
    use vlmcs_audit::ad::dns_record::{self, RecordData, Stamp};
    use vlmcs_audit::ad::security::{SecurityDescriptor, Sid};
    let Some(bed) = bed() else { return };
    let sample = node_attributes(bed, "sample");
    let records: Vec<_> = sample
        .iter()
        .filter(|(a, _)| a == "dnsRecord")
        .map(|(_, v)| dns_record::parse(v).unwrap())
        .collect();
    assert_eq!(records.len(), 1, "{sample:?}");
    assert_eq!(records[0].stamp, Stamp::Static);
    let RecordData::Srv { port, target, .. } = &records[0].data else {
        panic!("{records:?}")
    };
    assert_eq!(
        (*port, target.to_string().as_str()),
        (1688, "kms1.ad.test.")
    );

    let descriptor = |attributes: &[(String, Vec<u8>)]| {
        let (_, bytes) = attributes
            .iter()
            .find(|(a, _)| a == "nTSecurityDescriptor")
            .unwrap_or_else(|| panic!("no descriptor in {attributes:?}"));
        SecurityDescriptor::parse(bytes).unwrap()
    };
    let sd = descriptor(&sample);
    let owner = sd.owner.clone().unwrap();
    assert_eq!(owner.sub_authorities.first(), Some(&21), "{owner}");
    let dacl = sd.dacl.unwrap();
    let everyone = Sid::from_text("S-1-1-0").unwrap();
    let system = Sid::from_text("S-1-5-18").unwrap();
    assert!(
        dacl.iter()
            .filter(|a| a.sid.as_ref() == Some(&everyone))
            .all(|a| a.publishing_rights().is_empty()),
        "{dacl:#?}"
    );
    assert!(
        dacl.iter()
            .any(|a| a.sid.as_ref() == Some(&system) && !a.publishing_rights().is_empty()),
        "{dacl:#?}"
    );
    let broad = |dacl: &[vlmcs_audit::ad::security::Ace]| -> Vec<&'static str> {
        dacl.iter()
            .filter(|a| !a.publishing_rights().is_empty())
            .filter_map(|a| a.sid.as_ref()?.broad_group())
            .collect()
    };
    assert!(broad(&dacl).is_empty(), "{dacl:#?}");
    let opened = descriptor(&node_attributes(bed, "opened")).dacl.unwrap();
    assert_eq!(broad(&opened), ["Domain Computers"], "{opened:#?}");
}

/// `scan --ad` takes the domains to audit from the directory: the forest's domain and its
/// AD-integrated zones, without those AD keeps for itself (`_msdcs.ad.test`, RootDNSServers);
/// without a ticket it says what to do and scans nothing.
#[cfg(feature = "ad")]
#[test]
fn samba_domains_to_audit_come_from_active_directory() {
    let Some(bed) = bed() else { return };
    let scan = |env: &[(String, String)], how: &[&str]| {
        in_netns(bed, env!("CARGO_BIN_EXE_vlmcs-audit"))
            .envs(env.iter().cloned())
            .args(["scan", "--server", "127.0.0.2"])
            .args(how)
            .args(["--timeout", "2s", "--format", "json", "--no-emulator-check"])
            .output()
            .unwrap()
    };
    // The DC named, then found as Windows finds one (`_ldap._tcp.dc._msdcs.ad.test`, the
    // namespace's search domain), then from the config file.
    let config = bed.dir.join("ad.yaml");
    std::fs::write(&config, "ad: {}\n").unwrap();
    let config = config.display().to_string();
    for how in [
        &["--ad", "--dc", "dc1.ad.test"][..],
        &["--ad"][..],
        &["--config", config.as_str()][..],
    ] {
        let out = scan(&bed.env, how);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        let report: serde_json::Value = serde_json::from_str(&stdout)
            .unwrap_or_else(|e| panic!("{how:?}: {e}: {stdout}{stderr}"));
        assert_eq!(
            crate::common::domain_names(&report),
            ["ad.test", "aging.test", "branch.test", "noaging.test"],
            "{how:?}: {stderr}"
        );
        // Records are expected in the forest's domain, not in every other zone.
        let no_records = |domain: &str| {
            report["findings"]
                .as_array()
                .unwrap()
                .iter()
                .find(|f| f["domain"] == domain && f["code"] == "no-records")
                .map(|f| f["severity"].as_str().unwrap().to_string())
        };
        assert_eq!(
            no_records("ad.test").as_deref(),
            Some("critical"),
            "{how:?}"
        );
        assert_eq!(
            no_records("branch.test").as_deref(),
            Some("info"),
            "{how:?}"
        );
    }

    let no_ticket = with_ccache(bed, "none");
    // An LDAP server that is not a DC: said before any Kerberos is tried.
    let out = scan(&bed.env, &["--ad", "--dc", NOT_AD]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(out.stdout.is_empty());
    assert!(
        stderr.contains(&format!(
            "{NOT_AD} is not an Active Directory domain controller"
        )) && stderr.contains("1.2.840.113556.1.4.800"),
        "{stderr}"
    );

    let out = scan(&no_ticket, &["--ad", "--dc", "dc1.ad.test"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(out.stdout.is_empty());
    assert!(
        stderr.contains("Kerberos (SASL GSSAPI) bind to dc1.ad.test failed")
            && stderr.contains("kinit"),
        "{stderr}"
    );
}

/// `--allow-group` authorizes the computers of an AD group, nested membership included, by their
/// DNS host names: kms1 is in "KMS Hosts" through "KMS Site A" and is healthy; against "Other
/// Hosts" the same host is unauthorized; a group that does not exist is a clear error.
#[cfg(feature = "ad")]
#[test]
fn samba_allowlist_from_an_ad_group_with_nested_membership() {
    let Some(bed) = bed() else { return };
    let scan = |how: &[&str]| {
        let out = in_netns(bed, env!("CARGO_BIN_EXE_vlmcs-audit"))
            .envs(bed.env.iter().cloned())
            .args(["scan", "sample.ad.test", "--server", "127.0.0.2"])
            .args(how)
            .args(["--timeout", "2s", "--format", "json", "--no-emulator-check"])
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let codes = |stdout: &str, stderr: &str| -> Vec<String> {
        let report: serde_json::Value =
            serde_json::from_str(stdout).unwrap_or_else(|e| panic!("{e}: {stdout}{stderr}"));
        report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["domain"] == "sample.ad.test")
            .map(|f| f["code"].as_str().unwrap().to_string())
            .collect()
    };
    let dc = ["--ad", "--dc", "dc1.ad.test"];
    let (_, stdout, stderr) = scan(&[&dc[..], &["--allow-group", "KMS Hosts"]].concat());
    assert_eq!(
        codes(&stdout, &stderr),
        ["healthy", "registration"],
        "{stderr}"
    );
    // The same from the config file.
    let config = bed.dir.join("groups.yaml");
    std::fs::write(
        &config,
        "ad:\n  dc: dc1.ad.test\nauthorized_groups: [\"KMS Hosts\"]\n",
    )
    .unwrap();
    let (_, stdout, stderr) = scan(&["--config", &config.display().to_string()]);
    assert_eq!(
        codes(&stdout, &stderr),
        ["healthy", "registration"],
        "{stderr}"
    );
    let (_, stdout, stderr) = scan(&[&dc[..], &["--allow-group", "Other Hosts"]].concat());
    assert!(
        codes(&stdout, &stderr).contains(&"unauthorized-host".to_string()),
        "{stdout}"
    );
    // `report` with the same file audits the same as `scan` (it ignored `ad:` and
    // `authorized_groups:`: no allowlist, nothing unauthorized, exit 0).
    let other = bed.dir.join("other-groups.yaml");
    std::fs::write(
        &other,
        "ad:\n  dc: dc1.ad.test\nauthorized_groups: [\"Other Hosts\"]\n",
    )
    .unwrap();
    let report = |config: &std::path::Path| {
        let out = in_netns(bed, env!("CARGO_BIN_EXE_vlmcs-audit"))
            .envs(bed.env.iter().cloned())
            .args([
                "report",
                "sample.ad.test",
                "--server",
                "127.0.0.2",
                "--config",
            ])
            .arg(config)
            .args(["--timeout", "2s", "--no-emulator-check"])
            .output()
            .unwrap();
        (
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    // The section of sample.ad.test (the directory adds its other domains after it).
    let sample = |markdown: &str| -> String {
        let start = markdown
            .find("\n## sample.ad.test\n")
            .expect("the domain's section");
        let rest = &markdown[start + 1..];
        rest[..rest[3..].find("\n## ").map_or(rest.len(), |i| i + 3)].to_string()
    };
    let (stdout, stderr) = report(&other);
    assert!(
        sample(&stdout).contains("— unauthorized-host: kms1.ad.test."),
        "{stdout}{stderr}"
    );
    assert!(!stdout.contains("no allowlist is configured"), "{stdout}");
    let (stdout, stderr) = report(&config);
    let section = sample(&stdout);
    assert!(section.contains("1 healthy"), "{section}{stderr}");
    assert!(!section.contains("unauthorized-host"), "{section}");
    // And `clean` plans from the same audit: with --include-unauthorized, kms1 is a deletion
    // candidate only where the file's group does not hold it (a plan: nothing is sent). Its
    // only record, so the last-record rail keeps it.
    let plan = |config: &std::path::Path| -> Vec<String> {
        let out = in_netns(bed, env!("CARGO_BIN_EXE_vlmcs-audit"))
            .envs(bed.env.iter().cloned())
            .args([
                "clean",
                "sample.ad.test",
                "--server",
                "127.0.0.2",
                "--config",
            ])
            .arg(config)
            .arg("--state")
            .arg(
                bed.dir
                    .join(format!("plan-{}.json", config.display().to_string().len())),
            )
            .args(["--timeout", "2s", "--no-emulator-check", "--dead-for", "0"])
            .args(["--include-unauthorized", "--format", "json"])
            .output()
            .unwrap();
        let report: serde_json::Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
        report["plan"]["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|i| i["domain"] == "sample.ad.test")
            .map(|i| format!("{} {}", i["reason"].as_str().unwrap(), i["delete"]))
            .collect()
    };
    assert_eq!(plan(&other), ["unauthorized-host false"]);
    assert!(plan(&config).is_empty());
    let (code, stdout, stderr) = scan(&[&dc[..], &["--allow-group", "No Such Group"]].concat());
    assert_eq!(code, Some(3), "{stderr}");
    assert!(stdout.is_empty());
    assert!(stderr.contains("no such group"), "{stderr}");
    // A group without --ad: said, not ignored.
    let (code, _, stderr) = scan(&["--allow-group", "KMS Hosts"]);
    assert_eq!(code, Some(3), "{stderr}");
    assert!(stderr.contains("add --ad"), "{stderr}");
}

/// The bed's environment with the ticket cache `name` in the bed's directory instead of the
/// administrator's (a missing file: no ticket).
#[cfg(feature = "ad")]
fn with_ccache(bed: &Bed, name: &str) -> Vec<(String, String)> {
    bed.env
        .iter()
        .map(|(k, v)| match k.as_str() {
            "KRB5CCNAME" => (k.clone(), format!("FILE:{}", bed.dir.join(name).display())),
            _ => (k.clone(), v.clone()),
        })
        .collect()
}

/// The findings of [`ad_scan`] with `code`, in the report's order.
#[cfg(feature = "ad")]
fn of_code<'a>(
    findings: &'a [(String, String, String)],
    code: &str,
) -> Vec<&'a (String, String, String)> {
    findings.iter().filter(|(c, _, _)| c == code).collect()
}

/// `scan --ad` over the JSON of one domain: its findings as (code, target, detail) and the
/// domain's `ad` part.
#[cfg(feature = "ad")]
fn ad_scan(
    bed: &Bed,
    env: &[(String, String)],
    domain: &str,
    extra: &[&str],
) -> (
    serde_json::Value,
    Vec<(String, String, String)>,
    serde_json::Value,
) {
    let out = in_netns(bed, env!("CARGO_BIN_EXE_vlmcs-audit"))
        .envs(env.iter().cloned())
        .args([
            "scan",
            domain,
            "--server",
            "127.0.0.2",
            "--ad",
            "--dc",
            "dc1.ad.test",
        ])
        .args(extra)
        .args(["--timeout", "2s", "--format", "json", "--no-emulator-check"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let report: serde_json::Value =
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}{stderr}"));
    let invalid = crate::common::schema_errors(&report);
    assert!(invalid.is_empty(), "{invalid:#?}");
    let findings = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["domain"] == domain)
        .map(|f| {
            (
                f["code"].as_str().unwrap().to_string(),
                f["target"].as_str().unwrap_or("").to_string(),
                f["detail"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let node = report["domains"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["domain"] == domain)
        .map(|d| d["ad"].clone())
        .unwrap_or_default();
    (report, findings, node)
}

/// The scenario, with zone aging on and off: `scan --ad --allow-group "Fleet KMS"`
/// authorizes exactly kmsa and kmsb, names ws1's machine account as the registrant of the
/// rogue record, reports the node opened to Domain Computers, kmsb's record as not refreshed
/// for three days only where aging is on, and the administrator's record as static. The
/// fix-it report gives the PowerShell that replaces the broad grant by the group.
#[cfg(feature = "ad")]
#[test]
fn samba_ad_says_who_registered_what_since_when_and_who_could() {
    let Some(bed) = bed() else { return };
    for (zone, aging) in AGING_ZONES {
        let (report, findings, node) =
            ad_scan(bed, &bed.env, zone, &["--allow-group", "Fleet KMS"]);
        let targets = |code: &str| -> Vec<&str> {
            let mut t: Vec<&str> = of_code(&findings, code)
                .iter()
                .map(|(_, t, _)| t.as_str())
                .collect();
            t.sort_unstable();
            t
        };
        let detail = |code: &str, target: &str| -> &str {
            findings
                .iter()
                .find(|(c, t, _)| c == code && t == target)
                .map(|(_, _, d)| d.as_str())
                .unwrap_or_else(|| panic!("{zone}: no {code} for {target}: {findings:#?}"))
        };
        assert_eq!(
            targets("healthy"),
            ["kmsa.ad.test.", "kmsb.ad.test."],
            "{zone}: {findings:#?}"
        );
        assert_eq!(
            targets("unauthorized-host"),
            ["ws1.ad.test."],
            "{zone}: {findings:#?}"
        );
        assert_eq!(
            targets("registration"),
            [
                "kmsa.ad.test.",
                "kmsb.ad.test.",
                "old.ad.test.",
                "ws1.ad.test."
            ],
            "{zone}"
        );
        // The rogue record: ws1's own machine account registered it, and the fingerprint.
        let rogue = detail("registration", "ws1.ad.test.");
        assert!(
            rogue.contains("computer account ws1$") && rogue.contains("fingerprint"),
            "{rogue}"
        );
        for host in ["kmsa.ad.test.", "kmsb.ad.test."] {
            let own = detail("registration", host);
            assert!(
                !own.contains("fingerprint") && own.contains("owner is kmsa$"),
                "{own}"
            );
        }
        assert!(
            detail("registration", "old.ad.test.").starts_with("static"),
            "{findings:#?}"
        );
        let open: Vec<&str> = of_code(&findings, "open-node")
            .iter()
            .map(|(_, _, d)| d.as_str())
            .collect();
        assert_eq!(open.len(), 1, "{zone}: {findings:#?}");
        assert!(
            open[0].contains("Domain Computers") && open[0].contains("-515)"),
            "{}",
            open[0]
        );

        // The JSON: the owner, the aging read from the zone, kmsb's stamp three days back.
        assert_eq!(node["owner"]["account"], "kmsa$", "{node:#}");
        assert_eq!(node["aging"]["enabled"], aging, "{node:#}");
        let stamp_of = |host: &str| {
            let record = node["records"]
                .as_array()
                .unwrap()
                .iter()
                .find(|r| r["target"] == host)
                .unwrap_or_else(|| panic!("{host}: {node:#}"));
            record["stamp"]
                .as_str()
                .map(|s| humantime::parse_rfc3339(s).unwrap())
        };
        let read_at = humantime::parse_rfc3339(node["read_at"].as_str().unwrap()).unwrap();
        let kmsb = stamp_of("kmsb.ad.test.").unwrap();
        let kmsa = stamp_of("kmsa.ad.test.").unwrap();
        assert_eq!(
            kmsa.duration_since(kmsb).unwrap().as_secs(),
            72 * 3600,
            "{node:#}"
        );
        let age = read_at.duration_since(kmsb).unwrap().as_secs();
        assert!((72 * 3600..75 * 3600).contains(&age), "{age} s: {node:#}");
        assert_eq!(stamp_of("old.ad.test."), None, "{node:#}");

        let kmsb_text = humantime::format_rfc3339_seconds(kmsb).to_string();
        if aging {
            assert_eq!(
                targets("stale-registration"),
                ["kmsb.ad.test."],
                "{findings:#?}"
            );
            let stale = detail("stale-registration", "kmsb.ad.test.");
            assert!(
                stale.contains(&format!("not refreshed since {kmsb_text}")),
                "{stale}"
            );
        } else {
            assert!(targets("stale-registration").is_empty(), "{findings:#?}");
            let first = detail("registration", "kmsb.ad.test.");
            assert!(
                first.contains(&format!("first at {kmsb_text}")) && first.contains("aging off"),
                "{first}"
            );
        }

        // The fix-it report from the saved scan: the grant replaced by the group, exactly.
        let saved = bed.dir.join(format!("{zone}.json"));
        std::fs::write(&saved, report.to_string()).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_vlmcs-audit"))
            .args(["report", "--from"])
            .arg(&saved)
            .args(["--format", "markdown"])
            .output()
            .unwrap();
        let page = String::from_utf8_lossy(&out.stdout);
        let sid = node["broad_grants"][0]["sid"].as_str().unwrap();
        assert!(
            page.contains(&format!(
                "PurgeAccessRules([Security.Principal.SecurityIdentifier]'{sid}')"
            )) && page.contains("Get-ADGroup -Identity 'Fleet KMS'")
                && page.contains(&format!(
                    "'AD:DC=_vlmcs._tcp,DC={zone},CN=MicrosoftDNS,DC=DomainDnsZones,DC=ad,DC=test'"
                )),
            "{page}"
        );
        // The rogue record's item says who registered it; registrations are no items of their
        // own (context, not problems).
        assert!(
            page.contains("its host is the computer account ws1$ (ws1.ad.test)")
                && !page.contains("— registration:"),
            "{page}"
        );
    }
}

/// An account that may not read a node's security descriptor gets the records and their
/// stamps, a note saying the owner and permissions were not read, and no finding that would
/// need them — nothing guessed.
#[cfg(feature = "ad")]
#[test]
fn samba_an_unreadable_descriptor_is_a_note_not_a_guess() {
    let Some(bed) = bed() else { return };
    let auditor = with_ccache(bed, "auditor.ccache");
    let (report, findings, node) = ad_scan(bed, &auditor, "hidden.ad.test", &[]);
    let notes = report["notes"].to_string();
    assert!(
        notes.contains("hidden.ad.test: the security descriptor of DC=_vlmcs._tcp.hidden,")
            && notes.contains("not reported"),
        "{notes}"
    );
    assert!(
        node["owner"].is_null() && node["broad_grants"] == serde_json::json!([]),
        "{node:#}"
    );
    let registration: Vec<&str> = of_code(&findings, "registration")
        .iter()
        .map(|(_, _, d)| d.as_str())
        .collect();
    assert_eq!(registration.len(), 1, "{findings:#?}");
    assert!(
        registration[0].starts_with("static") && !registration[0].contains("owner"),
        "{}",
        registration[0]
    );
    // The administrator reads the same node's owner.
    let (_, _, node) = ad_scan(bed, &bed.env, "hidden.ad.test", &[]);
    assert!(
        node["owner"]["sid"]
            .as_str()
            .is_some_and(|s| s.starts_with("S-1-5-")),
        "{node:#}"
    );
}

/// The state file keeps the account AD names for each record's host, and drift says it: a
/// record new since the last scan (here: taken out of the state file by hand) comes with the
/// machine account that registered it.
#[cfg(feature = "ad")]
#[test]
fn samba_drift_names_the_account_behind_a_new_record() {
    let Some(bed) = bed() else { return };
    let state = bed.dir.join("drift-state.json");
    let _ = std::fs::remove_file(&state);
    let state_arg = state.display().to_string();
    let extra = ["--allow-group", "Fleet KMS", "--state", state_arg.as_str()];
    ad_scan(bed, &bed.env, "noaging.test", &extra);
    let mut saved: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&state).unwrap()).unwrap();
    let records = saved["records"].as_object_mut().unwrap();
    let ws1 = records
        .iter()
        .find(|(_, r)| r["domain"] == "noaging.test" && r["record"]["target"] == "ws1.ad.test.")
        .map(|(k, r)| (k.clone(), r.clone()))
        .unwrap_or_else(|| panic!("{records:#?}"));
    assert_eq!(ws1.1["registered_by"], "ws1$", "{:#}", ws1.1);
    records.remove(&ws1.0);
    std::fs::write(&state, saved.to_string()).unwrap();
    let (_, findings, _) = ad_scan(bed, &bed.env, "noaging.test", &extra);
    let new = of_code(&findings, "new-record");
    assert_eq!(new.len(), 1, "{findings:#?}");
    assert_eq!(new[0].1, "ws1.ad.test.");
    assert!(new[0].2.contains("computer account: ws1$"), "{}", new[0].2);
}
