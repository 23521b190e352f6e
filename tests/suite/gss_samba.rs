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
use vlmcs_lab::samba::{SambaDc, bind_in_netns};
use vlmcs_lab::{Behavior, StandIn};

const REALM: &str = "AD.TEST";
const PASSWORD: &str = "Passw0rd!Lab";
/// One owner name per test under the AD zone.
const NAMES: &[&str] = &["delete", "refused", "restore"];

struct Bed {
    netns: String,
    dir: PathBuf,
    env: Vec<(String, String)>,
}

static BED: OnceLock<Option<Bed>> = OnceLock::new();

fn is_root() -> bool {
    vlmcs_audit::fsio::current_uid() == 0
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
            Ok((bed, (dc, kms)))
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
    for name in ["sample", "opened"] {
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

/// The `dnsNode` of `_vlmcs._tcp.<name>.ad.test`.
fn node_dn(name: &str) -> String {
    format!("DC=_vlmcs._tcp.{name},DC=ad.test,CN=MicrosoftDNS,DC=DomainDnsZones,DC=ad,DC=test")
}

fn in_netns(bed: &Bed, program: &str) -> Command {
    let mut c = Command::new("ip");
    c.args(["netns", "exec", &bed.netns, program]);
    c
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
    use base64::Engine as _;
    let out = in_netns(bed, "ldapsearch")
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
        .args(["nTSecurityDescriptor", "dnsRecord"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "ldapsearch: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // LDIF: continuation lines start with one space; `name:: base64` for binary values.
    let unfolded = text.replace("\n ", "");
    unfolded
        .lines()
        .filter_map(|line| {
            let (attribute, value) = line.split_once(":: ")?;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(value.trim())
                .unwrap();
            Some((attribute.to_string(), bytes))
        })
        .collect()
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
            ["ad.test", "branch.test"],
            "{how:?}: {stderr}"
        );
    }

    let no_ticket: Vec<(String, String)> = bed
        .env
        .iter()
        .map(|(k, v)| match k.as_str() {
            "KRB5CCNAME" => (
                k.clone(),
                format!("FILE:{}", bed.dir.join("none").display()),
            ),
            _ => (k.clone(), v.clone()),
        })
        .collect();
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
    assert_eq!(codes(&stdout, &stderr), ["healthy"], "{stderr}");
    // The same from the config file.
    let config = bed.dir.join("groups.yaml");
    std::fs::write(
        &config,
        "ad:\n  dc: dc1.ad.test\nauthorized_groups: [\"KMS Hosts\"]\n",
    )
    .unwrap();
    let (_, stdout, stderr) = scan(&["--config", &config.display().to_string()]);
    assert_eq!(codes(&stdout, &stderr), ["healthy"], "{stderr}");
    let (_, stdout, stderr) = scan(&[&dc[..], &["--allow-group", "Other Hosts"]].concat());
    assert!(
        codes(&stdout, &stderr).contains(&"unauthorized-host".to_string()),
        "{stdout}"
    );
    let (code, stdout, stderr) = scan(&[&dc[..], &["--allow-group", "No Such Group"]].concat());
    assert_eq!(code, Some(3), "{stderr}");
    assert!(stdout.is_empty());
    assert!(stderr.contains("no such group"), "{stderr}");
    // A group without --ad: said, not ignored.
    let (code, _, stderr) = scan(&["--allow-group", "KMS Hosts"]);
    assert_eq!(code, Some(3), "{stderr}");
    assert!(stderr.contains("add --ad"), "{stderr}");
}
