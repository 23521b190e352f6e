//! GSS-TSIG (Kerberos) secure updates against BIND 9 with a real MIT Kerberos KDC: strict
//! RFC 3645 behaviour. Built and run with `--features gss` (CI does).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

use crate::common::gss::{Outcome, apply_args};
use vlmcs_lab::kdc::{Kdc, kinit_with};
use vlmcs_lab::{self as lab, Behavior, Named, StandIn, Zone};

const REALM: &str = "GSS.TEST";
const ZONE: &str = "gss.test.";
const PASSWORD: &str = "updater-password";

struct Bed {
    server: SocketAddr,
    dir: PathBuf,
    env: Vec<(String, String)>,
    ccache: PathBuf,
    svc_keytab: PathBuf,
}

static BED: OnceLock<Bed> = OnceLock::new();

fn bed() -> &'static Bed {
    BED.get_or_init(|| crate::common::serve_forever(start))
}

/// Zones, one per test, each `_vlmcs._tcp.<zone>` with a healthy and a dead host.
const ZONES: &[&str] = &["delete", "keytab", "refused", "restore", "errors", "fixit"];

async fn start() -> Result<(Bed, (Kdc, Named, StandIn)), String> {
    let dir = crate::common::scratch("gss-bind");
    let kdc = Kdc::start(&dir.join("kdc"), REALM)?;
    let dns_keytab = dir.join("dns.keytab");
    kdc.add_user("updater", PASSWORD)?;
    kdc.add_user("svc-vlmcs", "svc-password")?;
    kdc.add_user("nobody", "nobody-password")?;
    let svc_keytab = dir.join("svc.keytab");
    kdc.export("svc-vlmcs", &svc_keytab)?;
    let ccache = dir.join("ccache");
    kdc.kinit("updater", PASSWORD, &ccache)?;
    let mut env = kdc.env();
    let net = lab::random_loopback_net();
    let kms = StandIn::start(SocketAddr::new(lab::host(net, 11), 1688), Behavior::Kms)
        .await
        .map_err(|e| e.to_string())?;
    let mut zones = Vec::new();
    for (i, name) in ZONES.iter().enumerate() {
        let origin = format!("{name}.{ZONE}");
        // The SPN comes from the SOA MNAME: every zone names the same server, ns1.gss.test.
        let body = format!(
            "kms1 IN A {}\ndead IN A {}\n_vlmcs._tcp IN SRV 0 0 1688 kms1\n_vlmcs._tcp IN SRV 0 0 1688 dead\n",
            lab::host(net, 11),
            lab::host(net, 14)
        );
        let text = format!(
            "$TTL 300\n@ IN SOA ns1.{ZONE} hostmaster.{ZONE} {} 3600 600 86400 300\n@ IN NS ns1.{ZONE}\n{body}",
            i + 1
        );
        zones.push(Zone::new(&origin, text).with_options(&format!(
            "update-policy {{ grant updater@{REALM} zonesub ANY; grant svc-vlmcs@{REALM} zonesub ANY; }};"
        )));
    }
    let dns_principal = format!("DNS/ns1.{}", ZONE.trim_end_matches('.'));
    kdc.add_service(&dns_principal, &dns_keytab)?;
    let named = Named::start_with(
        &dir.join("named"),
        lab::LOOPBACK,
        &zones,
        "",
        &format!("tkey-gssapi-keytab \"{}\";", dns_keytab.display()),
        &env,
    )
    .await?;
    env.push(("KRB5CCNAME".into(), format!("FILE:{}", ccache.display())));
    let bed = Bed {
        server: named.address,
        dir,
        env,
        ccache,
        svc_keytab,
    };
    Ok((bed, (kdc, named, kms)))
}

fn dig(zone: &str) -> Vec<String> {
    let bed = bed();
    let out = Command::new("dig")
        .args([
            "+norec",
            "+tcp",
            "+short",
            "-p",
            &bed.server.port().to_string(),
            "@127.0.0.1",
        ])
        .arg(format!("_vlmcs._tcp.{zone}.{ZONE}"))
        .arg("SRV")
        .output()
        .unwrap();
    let mut lines: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    lines.sort();
    lines
}

/// `vlmcs-audit clean` on `zone` with the realm's environment, `env` overriding it.
fn clean(zone: &str, extra: &[&str], env: &[(&str, String)]) -> Outcome {
    let bed = bed();
    let dir = bed.dir.join(zone);
    let domain = format!("{zone}.{ZONE}");
    Command::new(env!("CARGO_BIN_EXE_vlmcs-audit"))
        .envs(bed.env.iter().cloned())
        .envs(env.iter().map(|(k, v)| (*k, v.clone())))
        .args([
            "clean",
            &domain,
            "--server",
            &bed.server.to_string(),
            "--timeout",
            "2s",
            "--format",
            "json",
        ])
        .args(apply_args(&dir, &format!("kms1.{domain}")))
        .args(extra)
        .output()
        .unwrap()
        .into()
}

#[test]
fn stale_record_is_deleted_with_the_users_ticket_and_the_healthy_one_stays() {
    let run = clean("delete", &["--gss"], &[]);
    assert_eq!(
        dig("delete"),
        vec![format!("0 0 1688 kms1.delete.{ZONE}")],
        "{:#} {}",
        run.json,
        run.stderr
    );
    assert_eq!(run.json["results"][0]["result"], "deleted");
    assert_eq!(run.code, 0);
    assert!(run.json["auth"].as_str().unwrap().contains("GSS-TSIG"));
}

#[test]
fn a_keytab_and_principal_work_without_any_ticket() {
    let bed = bed();
    let keytab = bed.svc_keytab.to_str().unwrap().to_string();
    let principal = format!("svc-vlmcs@{REALM}");
    let run = clean(
        "keytab",
        &["--gss", "--keytab", &keytab, "--principal", &principal],
        &[("KRB5CCNAME", "FILE:/nonexistent/ccache".into())],
    );
    assert_eq!(
        dig("keytab"),
        vec![format!("0 0 1688 kms1.keytab.{ZONE}")],
        "{:#} {}",
        run.json,
        run.stderr
    );
}

#[test]
fn no_ticket_wrong_realm_and_unsigned_fail_clearly_and_change_nothing() {
    let before = dig("refused");
    assert_eq!(before.len(), 2);
    let no_ticket = clean(
        "refused",
        &["--gss"],
        &[(
            "KRB5CCNAME",
            format!("FILE:{}", bed().dir.join("empty-ccache").display()),
        )],
    );
    assert!(
        no_ticket.message().contains("no Kerberos ticket"),
        "{}",
        no_ticket.message()
    );
    assert_eq!(no_ticket.code, 2);
    let wrong_realm = clean(
        "refused",
        &["--gss", "--principal", "updater@OTHER.TEST"],
        &[],
    );
    let text = wrong_realm.message();
    assert!(text.contains("authentication failed"), "{text}");
    assert_eq!(wrong_realm.code, 2);
    let unsigned = clean("refused", &["--no-auth"], &[]);
    assert!(
        unsigned.message().contains("REFUSED"),
        "{}",
        unsigned.message()
    );
    assert_eq!(dig("refused"), before);
    // The account exists and has a ticket but no rights: REFUSED, with the AD advice.
    let nobody_cache = bed().dir.join("nobody-ccache");
    let kdc_env = bed().env.clone();
    kinit_with(
        Command::new("kinit"),
        &kdc_env,
        &[],
        &format!("nobody@{REALM}"),
        "nobody-password",
        &nobody_cache,
    )
    .unwrap();
    let no_rights = clean(
        "refused",
        &["--gss"],
        &[("KRB5CCNAME", format!("FILE:{}", nobody_cache.display()))],
    );
    let text = no_rights.message();
    assert!(
        text.contains("REFUSED") && text.contains("_vlmcs._tcp node"),
        "{text}"
    );
    assert_eq!(dig("refused"), before);
}

#[test]
fn the_undo_file_restores_with_gss_too() {
    let before = dig("restore");
    clean("restore", &["--gss"], &[]);
    assert_eq!(dig("restore").len(), 1);
    let bed = bed();
    let output = Command::new(env!("CARGO_BIN_EXE_vlmcs-audit"))
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
    assert_eq!(dig("restore"), before);
    let _ = &bed.ccache;
}

#[test]
fn kerberos_failures_each_say_what_to_fix_and_change_nothing() {
    let bed = bed();
    let before = dig("errors");
    // An SPN the KDC does not know.
    let unknown_spn = clean("errors", &["--gss", "--gss-spn", "nosuch.gss.test"], &[]);
    assert!(
        unknown_spn
            .message()
            .contains("does not know the DNS server's principal"),
        "{}",
        unknown_spn.message()
    );
    // The KDC cannot be reached (a krb5.conf whose KDC port has nothing behind it).
    let dead_kdc = bed.dir.join("dead-kdc.conf");
    let conf = std::fs::read_to_string(&bed.env[0].1).unwrap();
    let port = conf
        .split("kdc = 127.0.0.1:")
        .nth(1)
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .to_string();
    std::fs::write(
        &dead_kdc,
        conf.replace(&format!("127.0.0.1:{port}"), "127.0.0.1:9"),
    )
    .unwrap();
    // A fresh cache holds only the TGT, so the service ticket must come from the KDC.
    let fresh = |name: &str| {
        let path = bed.dir.join(name);
        kinit_with(
            Command::new("kinit"),
            &bed.env,
            &[],
            &format!("updater@{REALM}"),
            PASSWORD,
            &path,
        )
        .unwrap();
        format!("FILE:{}", path.display())
    };
    let unreachable = clean(
        "errors",
        &["--gss"],
        &[
            ("KRB5_CONFIG", dead_kdc.display().to_string()),
            ("KRB5CCNAME", fresh("tgt-only-1")),
        ],
    );
    assert!(
        unreachable.message().contains("KDC cannot be reached"),
        "{}",
        unreachable.message()
    );
    // An expired ticket.
    let short = bed.dir.join("short-ccache");
    kinit_with(
        Command::new("kinit"),
        &bed.env,
        &["-l", "2s"],
        &format!("updater@{REALM}"),
        PASSWORD,
        &short,
    )
    .unwrap();
    std::thread::sleep(std::time::Duration::from_secs(3));
    let expired = clean(
        "errors",
        &["--gss"],
        &[("KRB5CCNAME", format!("FILE:{}", short.display()))],
    );
    assert!(
        expired.message().contains("expired"),
        "{}",
        expired.message()
    );
    // This machine's clock an hour ahead (libfaketime): the KDC refuses the request.
    let libfaketime = std::fs::read_dir("/usr/lib")
        .unwrap()
        .flatten()
        .map(|d| d.path().join("faketime/libfaketime.so.1"))
        .find(|p| p.is_file())
        .expect("libfaketime (Debian package faketime)");
    let skewed = clean(
        "errors",
        &["--gss"],
        &[
            ("LD_PRELOAD", libfaketime.display().to_string()),
            ("FAKETIME", "+1h".into()),
            ("FAKETIME_DONT_FAKE_MONOTONIC", "1".into()),
            ("KRB5CCNAME", fresh("tgt-only-2")),
        ],
    );
    assert!(
        skewed.message().contains("clock skew"),
        "{}",
        skewed.message()
    );
    for outcome in [&unknown_spn, &unreachable, &expired, &skewed] {
        assert_eq!(outcome.code, 2);
    }
    assert_eq!(dig("errors"), before);
}

/// The fix-it report's Kerberos form of the domain script (`kinit`, then `nsupdate -g`) really
/// deletes the stale record in a secure-updates zone, with the user's ticket.
#[test]
fn the_fix_it_reports_kerberos_script_really_deletes_the_record() {
    let bed = bed();
    let domain = format!("fixit.{ZONE}");
    let domain = domain.trim_end_matches('.');
    let report = Command::new(env!("CARGO_BIN_EXE_vlmcs-audit"))
        .envs(bed.env.iter().cloned())
        .args(["report", domain, "--server", &bed.server.to_string()])
        .args(["--allow", &format!("kms1.{domain}"), "--timeout", "2s"])
        .output()
        .unwrap();
    let markdown = String::from_utf8_lossy(&report.stdout);
    let block = markdown
        .split("```sh\n")
        .skip(1)
        .filter_map(|b| b.split("\n```").next())
        .find(|b| b.contains("nsupdate -g"))
        .unwrap_or_else(|| panic!("no Kerberos block in:\n{markdown}"));
    // The ticket is the bed's: the `kinit` line is what an admin runs first.
    let script: String = block
        .lines()
        .filter(|l| !l.starts_with("kinit "))
        .collect::<Vec<_>>()
        .join("\n");
    let run = Command::new("sh")
        .envs(bed.env.iter().cloned())
        .args(["-c", &script])
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{script}\n{}{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
    assert_eq!(dig("fixit"), vec![format!("0 0 1688 kms1.{domain}.")]);
}
