//! The test bed shared by every test of one test binary: two real BIND 9 servers on loopback
//! serving a zone generated for this run (the second one a stale copy), and real TCP
//! listeners behind the records. Started once, on first use, on a runtime thread of its own;
//! `named` dies with that thread when the test binary exits.

#[cfg(feature = "gss")]
pub(crate) mod gss;
pub(crate) mod updates;

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

use vlmcs_lab::{self as lab, Behavior, Blackhole, Named, StandIn, Zone};

pub(crate) const ZONE: &str = "audit.test.";
/// How many SRV records the `big` domain has: far more than fit a 1232-byte UDP answer.
pub(crate) const BIG_RRSET: usize = 80;

pub(crate) struct Bed {
    pub(crate) net: [u8; 3],
    pub(crate) primary: SocketAddr,
    pub(crate) stale: SocketAddr,
    pub(crate) dir: PathBuf,
    /// Connections accepted by the `shared` host (one test's own).
    pub(crate) shared_connections: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

/// Hosts of the bed: name, last address byte, behavior (`None`: nothing listens).
pub(crate) const HOSTS: &[(&str, u8, Option<Behavior>)] = &[
    ("kms1", 11, Some(Behavior::Kms)),
    ("web", 12, Some(Behavior::Http)),
    ("nak", 13, Some(Behavior::Nak)),
    ("closed", 14, None),
    ("rpc", 16, Some(Behavior::OtherRpc)),
    ("emu", 17, Some(Behavior::PyKms)),
    ("silent", 18, Some(Behavior::Silent)),
    ("garbage", 19, Some(Behavior::Garbage)),
    ("midpdu", 20, Some(Behavior::CloseMidPdu)),
    ("slow", 21, Some(Behavior::Slowloris)),
    ("wrongack", 22, Some(Behavior::WrongAck)),
    // A second live KMS host, on an address of its own: never on the allowlist.
    ("rogue", 23, Some(Behavior::Kms)),
    // The most common emulator: rejects unknown interfaces, accepts any version.
    ("vlmcsd", 24, Some(Behavior::Vlmcsd)),
    // A KMS host that several domains (and two names) point at: probed once per scan.
    ("shared", 25, Some(Behavior::Kms)),
];
pub(crate) const BLACKHOLE: (&str, u8) = ("hole", 15);

fn zone_body(bed_net: [u8; 3], stale: bool) -> String {
    let mut body = String::new();
    for (name, n, _) in HOSTS {
        let _ = writeln!(body, "{name} IN A {}", lab::host(bed_net, *n));
    }
    let _ = writeln!(
        body,
        "{} IN A {}",
        BLACKHOLE.0,
        lab::host(bed_net, BLACKHOLE.1)
    );
    body.push_str("alias IN CNAME kms1\n");
    // kms1 under names that are not its own: another A name for its address, and the alias.
    let _ = writeln!(body, "kms1-other IN A {}", lab::host(bed_net, 11));
    body.push_str(
        "_vlmcs._tcp.aliases IN SRV 0 0 1688 kms1\n\
         _vlmcs._tcp.aliases IN SRV 10 0 1688 kms1-other\n\
         _vlmcs._tcp.aliases IN SRV 20 0 1688 alias\n\
         _vlmcs._tcp.aliases IN SRV 30 0 1688 rogue\n",
    );
    // One domain per situation, named after it.
    for (domain, target) in [
        ("healthy", "kms1"),
        ("notkms", "web"),
        ("nak", "nak"),
        ("closed", "closed"),
        ("hole", "hole"),
        ("dangling", "nowhere"),
        ("cname", "alias"),
        ("rpc", "rpc"),
        ("emu", "emu"),
        ("vlmcsd", "vlmcsd"),
        ("silent", "silent"),
        ("garbage", "garbage"),
        ("midpdu", "midpdu"),
        ("slow", "slow"),
        ("wrongack", "wrongack"),
        ("disagree", "kms1"),
    ] {
        let _ = writeln!(body, "_vlmcs._tcp.{domain} IN SRV 0 0 1688 {target}");
    }
    let _ = writeln!(body, "shared-too IN A {}", lab::host(bed_net, 25));
    for domain in ["shared1", "shared2", "shared3"] {
        let _ = writeln!(body, "_vlmcs._tcp.{domain} IN SRV 0 0 1688 shared");
    }
    body.push_str("_vlmcs._tcp.shared3 IN SRV 10 0 1688 shared-too\n");
    // The SRV name as an alias, of a name in the zone and of one outside it.
    body.push_str("_vlmcs._tcp.aliased IN CNAME _vlmcs._tcp.healthy\n");
    body.push_str("_vlmcs._tcp.faralias IN CNAME _vlmcs._tcp.elsewhere.example.\n");
    body.push_str("_vlmcs._tcp.outzone IN SRV 0 0 1688 kms-out.other.test.\n");
    body.push_str("_vlmcs._tcp.root IN SRV 0 0 0 .\n");
    // A live KMS host's name on port 0, where nothing can listen.
    body.push_str("_vlmcs._tcp.port0 IN SRV 0 0 0 kms1\n");
    body.push_str("_vlmcs._tcp.dup IN SRV 0 0 1688 kms1\n_vlmcs._tcp.dup IN SRV 10 5 1688 kms1\n");
    body.push_str("_vlmcs._tcp.nodata IN TXT \"no KMS here\"\n");
    // A delegation: the server answers with a referral (no AA bit), as a lame server would.
    body.push_str("lame IN NS ns.elsewhere.example.\n");
    // A target whose name carries an escape sequence and a newline: DNS data is hostile.
    body.push_str(
        "_vlmcs._tcp.hostile IN SRV 0 0 1688 evil\\027[31m\\010\\$\\(reboot\\).audit.test.\n",
    );
    for i in 0..BIG_RRSET {
        let _ = writeln!(body, "_vlmcs._tcp.big IN SRV {i} 0 1688 big-{i:03}");
        let _ = writeln!(body, "big-{i:03} IN A {}", lab::host(bed_net, 11));
    }
    if !stale {
        body.push_str("_vlmcs._tcp.disagree IN SRV 0 0 1688 closed\n");
    }
    body
}

/// This run's own directory under $TMPDIR (made by `tempfile`, one per test binary run):
/// every bed and test keeps its files in a subdirectory of it.
pub(crate) fn scratch(subdir: &str) -> PathBuf {
    static SCRATCH: OnceLock<tempfile::TempDir> = OnceLock::new();
    let root = SCRATCH.get_or_init(|| {
        tempfile::Builder::new()
            .prefix("vlmcs-audit-test-")
            .tempdir()
            .expect("a temporary directory")
    });
    let dir = root.path().join(subdir);
    std::fs::create_dir_all(&dir).expect("a test directory");
    dir
}

static BED: OnceLock<Bed> = OnceLock::new();

/// The bed, started on first use.
pub(crate) fn bed() -> &'static Bed {
    BED.get_or_init(|| serve_forever(start))
}

/// Starts a test bed on a thread of its own whose runtime keeps its servers and listeners
/// (`Keep`) alive until the test binary exits, and returns the bed's description.
pub(crate) fn serve_forever<B, K, F, Fut>(start: F) -> B
where
    B: Send + 'static,
    K: 'static,
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Result<(B, K), String>>,
{
    serve_forever_in(None, start)
}

/// [`serve_forever`], inside network namespace `netns` when given: the bed's thread enters it
/// before it starts its runtime, so the runtime's threads, sockets and servers are all in there.
pub(crate) fn serve_forever_in<B, K, F, Fut>(netns: Option<String>, start: F) -> B
where
    B: Send + 'static,
    K: 'static,
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Result<(B, K), String>>,
{
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        if let Some(netns) = &netns
            && let Err(e) = vlmcs_lab::netns::enter(netns)
        {
            tx.send(Err(format!("entering namespace {netns}: {e}")))
                .unwrap();
            return;
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async move {
            match start().await {
                Ok((bed, keep)) => {
                    tx.send(Ok(bed)).unwrap();
                    let _keep = keep;
                    std::future::pending::<()>().await;
                }
                Err(e) => tx.send(Err(e)).unwrap(),
            }
        });
    });
    match rx.recv().expect("test bed thread") {
        Ok(bed) => bed,
        Err(e) => panic!("the test bed did not start: {e}"),
    }
}

type Keep = (Vec<StandIn>, Blackhole, Named, Named);

async fn start() -> Result<(Bed, Keep), String> {
    let dir = scratch("scan-bed");
    let mut last = String::new();
    for _ in 0..5 {
        let net = lab::random_loopback_net();
        let mut stand_ins = Vec::new();
        let mut failed = false;
        for (name, n, behavior) in HOSTS {
            if let Some(b) = behavior {
                match StandIn::start(SocketAddr::new(lab::host(net, *n), 1688), *b).await {
                    Ok(s) => stand_ins.push(s),
                    Err(e) => {
                        last = format!("{name}: {e}");
                        failed = true;
                        break;
                    }
                }
            }
        }
        if failed {
            continue;
        }
        let blackhole =
            match Blackhole::start(SocketAddr::new(lab::host(net, BLACKHOLE.1), 1688)).await {
                Ok(b) => b,
                Err(e) => {
                    last = e.to_string();
                    continue;
                }
            };
        // An IPv6-only KMS host on ::1, on a port of its own (published in the record).
        let v6 = match StandIn::start("[::1]:0".parse().unwrap(), Behavior::Kms).await {
            Ok(l) => l,
            Err(e) => {
                last = format!("[::1]: {e}");
                continue;
            }
        };
        let v6_records = format!(
            "kms6 IN AAAA ::1\n_vlmcs._tcp.v6 IN SRV 0 0 {} kms6\n",
            v6.address.port()
        );
        stand_ins.push(v6);
        let zone = |stale: bool, serial: u32| {
            let body = format!("{}{v6_records}", zone_body(net, stale));
            Zone::new(ZONE, lab::zone_text(ZONE, serial, &body))
        };
        // A second zone on the primary, holding a target of an audit.test record.
        let other = Zone::new(
            "other.test.",
            lab::zone_text(
                "other.test.",
                1,
                &format!("kms-out IN A {}\n", lab::host(net, 11)),
            ),
        );
        // A zone that fails to load: BIND answers SERVFAIL for it.
        let broken = Zone::new(
            "broken.test.",
            "$TTL 300\n@ IN SOA ns1 hostmaster 1 3600 600 86400 300\n@ IN NS\n".into(),
        );
        let primary = Named::start(
            &dir.join("primary"),
            lab::LOOPBACK,
            &[zone(false, 2), other, broken],
            "",
        )
        .await?;
        let stale = Named::start(&dir.join("stale"), lab::LOOPBACK, &[zone(true, 1)], "").await?;
        let shared_connections = stand_ins
            .iter()
            .find(|s| s.address.ip() == lab::host(net, 25))
            .map(StandIn::connection_counter)
            .ok_or("the shared host did not start")?;
        let bed = Bed {
            net,
            primary: primary.address,
            stale: stale.address,
            dir: dir.clone(),
            shared_connections,
        };
        return Ok((bed, (stand_ins, blackhole, primary, stale)));
    }
    Err(last)
}

/// The result of running the real binary.
pub(crate) struct Run {
    pub(crate) code: i32,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

impl Run {
    /// Standard output as JSON; a scan report in it (alone, or as a clean report's `scan`) is
    /// checked against the shipped schema, so every test that reads a report checks the contract.
    pub(crate) fn json(&self) -> serde_json::Value {
        let value: serde_json::Value = serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e}):\n{}\nstderr:\n{}",
                self.stdout, self.stderr
            )
        });
        for report in [&value, &value["scan"]] {
            if report["tool"] == "vlmcs-audit" {
                check_report_schema(report);
            }
        }
        value
    }
}

/// Checks `report` against `docs/report.schema.json`.
pub(crate) fn check_report_schema(report: &serde_json::Value) {
    let errors = schema_errors(report);
    assert!(
        errors.is_empty(),
        "the report breaks its schema: {errors:#?}"
    );
}

/// What `docs/report.schema.json` finds wrong with `report` (the first few).
pub(crate) fn schema_errors(report: &serde_json::Value) -> Vec<String> {
    static SCHEMA: OnceLock<jsonschema::Validator> = OnceLock::new();
    let validator = SCHEMA.get_or_init(|| {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/report.schema.json");
        let schema: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path).expect("the schema"))
                .expect("JSON");
        jsonschema::validator_for(&schema).expect("a valid JSON Schema")
    });
    validator
        .iter_errors(report)
        .take(5)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect()
}

/// Runs `vlmcs-audit` with `args`.
/// Runs `vlmcs-audit args` with a reader that takes one byte of its output and goes away
/// (`| head -c1`); returns how it ended.
pub(crate) fn run_into_closed_pipe(args: &[&str]) -> std::process::Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_vlmcs-audit"))
        .args(args)
        .env_remove("RUST_LOG")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run vlmcs-audit");
    let mut stdout = child.stdout.take().expect("piped");
    let mut one = [0u8; 1];
    std::io::Read::read_exact(&mut stdout, &mut one).expect("a first byte");
    drop(stdout);
    child.wait_with_output().expect("vlmcs-audit ends")
}

/// Runs `command` with `input` on its standard input (written from a thread of its own, so a
/// child that answers while it reads never blocks on a full pipe); its standard output and
/// error are captured.
pub(crate) fn run_with_input(command: &mut Command, input: &[u8]) -> std::process::Output {
    use std::io::Write;
    use std::process::Stdio;
    let program = command.get_program().to_string_lossy().into_owned();
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("{program} could not be started ({e}): scripts/setup-debian installs what the tests run")
        });
    let mut stdin = child.stdin.take().expect("piped");
    let input = input.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let output = child.wait_with_output().expect("the child ends");
    writer
        .join()
        .expect("the writer ends")
        .unwrap_or_else(|e| panic!("writing to {program}: {e}"));
    output
}

pub(crate) fn run(args: &[&str]) -> Run {
    let output = Command::new(env!("CARGO_BIN_EXE_vlmcs-audit"))
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .expect("run vlmcs-audit");
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Scans `domains` (relative to the zone: `healthy` → `healthy.audit.test`) against the
/// primary server, as JSON, with extra `args`.
pub(crate) fn scan(domains: &[&str], args: &[&str]) -> Run {
    let bed = bed();
    let server = bed.primary.to_string();
    let names: Vec<String> = domains.iter().map(|d| format!("{d}.audit.test")).collect();
    let mut argv = vec!["scan", "--timeout", "1s", "--server", server.as_str()];
    if !args.contains(&"--format") {
        argv.extend(["--format", "json"]);
    }
    argv.extend(args);
    argv.extend(names.iter().map(String::as_str));
    run(&argv)
}

/// `scan --format json --timeout 2s` of `domains` on `server` alone, with `flags`.
pub(crate) fn scan_at(server: std::net::SocketAddr, flags: &[&str], domains: &[&str]) -> Run {
    let server = server.to_string();
    let mut argv = vec![
        "scan",
        "--format",
        "json",
        "--timeout",
        "2s",
        "--server",
        server.as_str(),
    ];
    argv.extend(flags);
    argv.extend(domains);
    run(&argv)
}

/// The report's domains, in order.
pub(crate) fn domain_names(report: &serde_json::Value) -> Vec<&str> {
    report["domains"]
        .as_array()
        .expect("domains array")
        .iter()
        .map(|d| d["domain"].as_str().expect("a domain name"))
        .collect()
}

/// `(code, target, port, address)` of every finding, for compact assertions.
pub(crate) fn findings(report: &serde_json::Value) -> Vec<(String, String)> {
    report["findings"]
        .as_array()
        .expect("findings array")
        .iter()
        .map(|f| {
            (
                f["code"].as_str().unwrap().to_string(),
                f["severity"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

pub(crate) fn codes(report: &serde_json::Value) -> Vec<String> {
    findings(report).into_iter().map(|(c, _)| c).collect()
}

/// A UDP server on loopback in front of `upstream`, one query at a time: `answer` gets each
/// query and a way to carry bytes upstream (and get the reply), and returns what goes back
/// (nothing: silence). After `queries` queries the server goes away: its socket closes, so later
/// queries meet a closed port.
pub(crate) fn udp_front(
    upstream: std::net::SocketAddr,
    queries: usize,
    mut answer: impl FnMut(&[u8], &dyn Fn(&[u8]) -> Option<Vec<u8>>) -> Option<Vec<u8>> + Send + 'static,
) -> std::net::SocketAddr {
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let address = socket.local_addr().unwrap();
    std::thread::spawn(move || {
        let relay = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        relay.connect(upstream).unwrap();
        relay
            .set_read_timeout(Some(std::time::Duration::from_secs(2)))
            .unwrap();
        let forward = |query: &[u8]| {
            relay.send(query).ok()?;
            let mut buf = [0u8; 4096];
            let n = relay.recv(&mut buf).ok()?;
            Some(buf[..n].to_vec())
        };
        let mut buf = [0u8; 4096];
        for _ in 0..queries {
            let Ok((n, client)) = socket.recv_from(&mut buf) else {
                return;
            };
            if let Some(reply) = answer(&buf[..n], &forward) {
                let _ = socket.send_to(&reply, client);
            }
        }
    });
    address
}
