//! A DNS server that accepts TSIG-signed updates (BIND 9 or Knot), with one zone per test so
//! that tests run concurrently, and the listeners behind the records. Shared by the cleanup
//! tests of both servers.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine as _;
use vlmcs_lab::knot::{Knot, KnotKey};
use vlmcs_lab::pdns::PowerDns;
use vlmcs_lab::{self as lab, Behavior, Blackhole, Named, StandIn, Zone};

use super::{Run, run};

pub(crate) const KEY_NAME: &str = "vlmcs-test-key";
pub(crate) const HOSTS: &[(&str, u8)] = &[
    ("kms1", 11),
    ("dead", 14),
    ("rogue", 15),
    ("hole1", 16),
    ("hole2", 17),
];

#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum ServerKind {
    Bind,
    Knot,
    PowerDns,
}

pub(crate) struct UpdateBed {
    pub(crate) server: SocketAddr,
    /// BIND only: a second server with a static copy of the zones, which never sees the
    /// updates: a secondary that lags.
    pub(crate) lagging_copy: Option<SocketAddr>,
    pub(crate) dir: PathBuf,
    pub(crate) key_file: PathBuf,
    pub(crate) secret: String,
}

pub(crate) fn origin(zone: &str) -> String {
    format!("{zone}.clean.test.")
}

/// Starts the bed on a thread of its own that lives as long as the test binary.
pub(crate) fn start(
    kind: ServerKind,
    zones: &'static [(&'static str, &'static [&'static str])],
) -> UpdateBed {
    super::serve_forever(move || start_async(kind, zones))
}

enum DnsServer {
    Bind(Named),
    Knot(Knot),
    PowerDns(PowerDns),
}

type Keep = (Vec<StandIn>, Vec<Blackhole>, DnsServer, Option<Named>);

async fn start_async(
    kind: ServerKind,
    zone_list: &[(&str, &[&str])],
) -> Result<(UpdateBed, Keep), String> {
    let label = match kind {
        ServerKind::Bind => "bind",
        ServerKind::Knot => "knot",
        ServerKind::PowerDns => "pdns",
    };
    let dir = super::scratch(&format!("clean-{label}"));
    let secret = base64::engine::general_purpose::STANDARD.encode(
        (0..32u8)
            .map(|i| i.wrapping_mul(37).wrapping_add(std::process::id() as u8))
            .collect::<Vec<_>>(),
    );
    let key_block =
        format!("key \"{KEY_NAME}\" {{\n\talgorithm hmac-sha256;\n\tsecret \"{secret}\";\n}};\n");
    let key_file = dir.join("ddns.key");
    write_private(&key_file, &key_block);
    let mut last = String::new();
    for _ in 0..5 {
        let net = lab::random_loopback_net();
        let at = |n: u8| SocketAddr::new(lab::host(net, n), 1688);
        let listeners = async {
            let kms = StandIn::start(at(11), Behavior::Kms).await?;
            let rogue = StandIn::start(at(15), Behavior::Kms).await?;
            let holes = vec![
                Blackhole::start(at(16)).await?,
                Blackhole::start(at(17)).await?,
            ];
            Ok::<_, std::io::Error>((vec![kms, rogue], holes))
        };
        let (stand_ins, holes) = match listeners.await {
            Ok(l) => l,
            Err(e) => {
                last = e.to_string();
                continue;
            }
        };
        let zones: Vec<Zone> = zone_list
            .iter()
            .map(|(name, targets)| {
                let o = origin(name);
                let mut body = String::new();
                for (host, n) in HOSTS {
                    let _ = writeln!(body, "{host} IN A {}", lab::host(net, *n));
                }
                for t in *targets {
                    let _ = writeln!(body, "_vlmcs._tcp IN SRV 0 0 1688 {t}");
                }
                Zone::new(&o, lab::zone_text(&o, 1, &body)).with_options(&format!(
                    "update-policy {{ grant {KEY_NAME} zonesub ANY; }};"
                ))
            })
            .collect();
        let server = match kind {
            ServerKind::Bind => DnsServer::Bind(
                Named::start(&dir.join("named"), lab::LOOPBACK, &zones, &key_block).await?,
            ),
            ServerKind::Knot => {
                let key = KnotKey {
                    name: KEY_NAME,
                    algorithm: "hmac-sha256",
                    secret: &secret,
                };
                DnsServer::Knot(Knot::start(&dir.join("knot"), lab::LOOPBACK, &zones, &key).await?)
            }
            ServerKind::PowerDns => DnsServer::PowerDns(
                PowerDns::start(&dir.join("pdns"), lab::LOOPBACK, &zones, KEY_NAME, &secret)
                    .await?,
            ),
        };
        let address = match &server {
            DnsServer::Bind(n) => n.address,
            DnsServer::Knot(k) => k.address,
            DnsServer::PowerDns(p) => p.address,
        };
        let copy = match kind {
            ServerKind::Bind => {
                Some(Named::start(&dir.join("copy"), lab::LOOPBACK, &zones, &key_block).await?)
            }
            ServerKind::Knot | ServerKind::PowerDns => None,
        };
        let bed = UpdateBed {
            server: address,
            lagging_copy: copy.as_ref().map(|c| c.address),
            dir: dir.clone(),
            key_file: key_file.clone(),
            secret: secret.clone(),
        };
        return Ok((bed, (stand_ins, holes, server, copy)));
    }
    Err(last)
}

pub(crate) fn write_private(path: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

/// `"0 0 1688 kms1.<zone>.clean.test."`
pub(crate) fn rr(zone: &str, target: &str) -> String {
    format!("0 0 1688 {target}.{}", origin(zone))
}

/// Paths of one test's files.
pub(crate) struct Files {
    pub(crate) state: PathBuf,
    pub(crate) undo: PathBuf,
    pub(crate) audit: PathBuf,
}

impl UpdateBed {
    /// The zone's SRV RRset as `dig` sees it, sorted: `"0 0 1688 kms1.<zone>."`.
    pub(crate) fn dig(&self, zone: &str) -> Vec<String> {
        self.dig_full(zone)
            .iter()
            .map(|line| {
                line.split_whitespace()
                    .skip(4)
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect()
    }

    /// The whole records, owner, TTL, class, type and data: what "byte for byte" compares.
    pub(crate) fn dig_full(&self, zone: &str) -> Vec<String> {
        let out = Command::new("dig")
            .args([
                "+norec",
                "+tcp",
                "+noall",
                "+answer",
                "-p",
                &self.server.port().to_string(),
                "@127.0.0.1",
            ])
            .arg(format!("_vlmcs._tcp.{}", origin(zone)))
            .arg("SRV")
            .output()
            .expect("dig (bind9-dnsutils) must be installed");
        let mut lines: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
            .filter(|l| !l.is_empty())
            .collect();
        lines.sort();
        lines
    }

    /// Two key files that must fail, in `dir` under the bed: the right name with a wrong
    /// secret, and the right secret under a name the server does not know.
    pub(crate) fn bad_keys(&self, dir: &str) -> (PathBuf, PathBuf) {
        let dir = self.dir.join(dir);
        std::fs::create_dir_all(&dir).unwrap();
        let wrong_secret = dir.join("wrong-secret.key");
        write_private(
            &wrong_secret,
            &format!(
                "key \"{KEY_NAME}\" {{ algorithm hmac-sha256; secret \"d3Jvbmctc2VjcmV0LXdyb25nLXNlY3JldC13cm9uZyE=\"; }};\n"
            ),
        );
        let unknown_name = dir.join("unknown-name.key");
        write_private(
            &unknown_name,
            &std::fs::read_to_string(&self.key_file)
                .unwrap()
                .replace(KEY_NAME, "nobody-knows-this-key"),
        );
        (wrong_secret, unknown_name)
    }

    /// The whole zone by AXFR (SOA serial included), to show that nothing at all changed.
    pub(crate) fn axfr(&self, zone: &str) -> Vec<String> {
        let out = Command::new("dig")
            .args([
                "+noall",
                "+answer",
                "-p",
                &self.server.port().to_string(),
                "@127.0.0.1",
            ])
            .arg(origin(zone))
            .arg("AXFR")
            .output()
            .expect("dig (bind9-dnsutils) must be installed");
        let mut lines: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
            .filter(|l| !l.is_empty() && !l.starts_with(';'))
            .collect();
        assert!(lines.len() > 2, "AXFR of {zone} failed: {lines:?}");
        lines.sort();
        lines
    }

    pub(crate) fn files(&self, zone: &str) -> Files {
        let dir = self.dir.join(zone);
        std::fs::create_dir_all(&dir).unwrap();
        Files {
            state: dir.join("state.json"),
            undo: dir.join("undo.txt"),
            audit: dir.join("audit.jsonl"),
        }
    }

    pub(crate) fn key(&self) -> &str {
        self.key_file.to_str().unwrap()
    }

    /// `vlmcs-audit clean <zone> --server ... --format json` with the test's files and `extra`.
    pub(crate) fn clean(&self, zone: &str, extra: &[&str]) -> Run {
        let argv = self.clean_args(zone, extra);
        run(&argv.iter().map(String::as_str).collect::<Vec<_>>())
    }

    /// `clean` with this process's clock moved by `offset` (libfaketime, e.g. `-2h`).
    pub(crate) fn clean_at_clock(&self, zone: &str, offset: &str, extra: &[&str]) -> Run {
        let output = Command::new("faketime")
            .env("FAKETIME_DONT_FAKE_MONOTONIC", "1")
            .args(["-f", offset, env!("CARGO_BIN_EXE_vlmcs-audit")])
            .args(self.clean_args(zone, extra))
            .env_remove("RUST_LOG")
            .output()
            .expect("faketime (Debian package faketime) must be installed");
        Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// `clean` of the zone's domain against this server, with this zone's own files.
    pub(crate) fn clean_args(&self, zone: &str, extra: &[&str]) -> Vec<String> {
        let f = self.files(zone);
        let domain = origin(zone);
        let mut argv: Vec<String> = vec![
            "clean".into(),
            domain.clone(),
            "--server".into(),
            self.server.to_string(),
            "--timeout".into(),
            "1s".into(),
            "--format".into(),
            "json".into(),
            "--allow".into(),
            format!("kms1.{domain}"),
            "--state".into(),
            f.state.display().to_string(),
            "--undo-file".into(),
            f.undo.display().to_string(),
        ];
        // A test may give its own audit log (a device, a FIFO).
        if !extra.contains(&"--audit-log") {
            argv.extend(["--audit-log".into(), f.audit.display().to_string()]);
        }
        argv.extend(extra.iter().map(|a| a.to_string()));
        argv
    }
}
