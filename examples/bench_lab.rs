//! The benchmark's lab: one BIND zone with N domains (default 10,000), each with three
//! `_vlmcs._tcp` records — a live KMS-RPC listener, a closed port and a blackholed address
//! (a third of all records) — on loopback. Writes `bench.yaml`, `domains.txt`,
//! `srv-queries.txt` (the DNS questions a scan asks, for dnsperf), `queries.txt` (those and
//! every target's A and AAAA, for a tool that cannot use additional data) and `endpoints.txt` (every
//! target address, for nmap) into the directory given, prints `READY <server>`, and serves
//! until its standard input closes.
//!
//!     cargo run --release --example bench_lab -- DIR [DOMAINS] [shared|distinct]
//!
//! `shared` (the default): 20 hosts of each kind, shared by all domains (60 endpoints).
//! `distinct`: every record its own address — live ones in 127.12.0.0/14, closed ones in
//! 127.20.0.0/14, blackholed ones in 127.32.0.0/14, all on port 1688 — served by one listener
//! on 0.0.0.0:1688. The closed and blackholed ranges need two firewall rules (a TCP reset and a
//! drop) that `bench/run` installs; run it in a network namespace of its own, as bench/run does.

use std::fmt::Write as _;
use std::io::Read;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use vlmcs_lab::{self as lab, Behavior, Blackhole, Named, StandIn, Zone};

/// Distinct hosts of each kind in the shared lab; domain i uses host i % SHARED_HOSTS of each.
const SHARED_HOSTS: usize = 20;
/// First octet after 127 of each kind's range in the distinct lab.
const LIVE: u8 = 12;
const CLOSED: u8 = 20;
const HOLE: u8 = 32;

/// The address of host `i` of a kind in the distinct lab: 250 × 250 hosts per /16 (no .0 or
/// .255 octets), then the next /16.
fn distinct_host(kind: u8, i: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(
        127,
        kind + (i / 62_500) as u8,
        (i / 250 % 250) as u8 + 1,
        (i % 250) as u8 + 1,
    ))
}

fn main() {
    let mut args = std::env::args().skip(1);
    let usage = "usage: bench_lab DIR [DOMAINS] [shared|distinct]";
    let dir = std::path::PathBuf::from(args.next().expect(usage));
    let domains: usize = args
        .next()
        .map(|d| d.parse().expect("DOMAINS is a number"))
        .unwrap_or(10_000);
    let distinct = match args.next().as_deref() {
        None | Some("shared") => false,
        Some("distinct") => true,
        Some(other) => panic!("{other}: {usage}"),
    };
    assert!(
        domains <= 4 * 62_500,
        "the distinct lab has room for 250,000 domains"
    );
    std::fs::create_dir_all(&dir).unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let net = lab::random_loopback_net();
    let shared_host = |kind: u8, k: usize| IpAddr::from([net[0], net[1], kind, k as u8 + 1]);
    // Names and addresses of the three targets of domain i.
    let targets = |i: usize| -> [(String, IpAddr); 3] {
        if distinct {
            [
                (format!("live-{i}"), distinct_host(LIVE, i)),
                (format!("closed-{i}"), distinct_host(CLOSED, i)),
                (format!("hole-{i}"), distinct_host(HOLE, i)),
            ]
        } else {
            let k = i % SHARED_HOSTS;
            [
                (format!("live-{k}"), shared_host(1, k)),
                (format!("closed-{k}"), shared_host(2, k)),
                (format!("hole-{k}"), shared_host(3, k)),
            ]
        }
    };
    let hosts = if distinct {
        domains
    } else {
        SHARED_HOSTS.min(domains)
    };
    let origin = "bench.test.";
    let (_live, _holes, named) = runtime.block_on(async {
        let mut live = Vec::new();
        let mut holes = Vec::new();
        if distinct {
            // One listener stands in for every live host: its accept queue must hold what
            // thousands of hosts' queues would (bench/run raises the namespace's somaxconn).
            let socket = tokio::net::TcpSocket::new_v4().unwrap();
            socket.set_reuseaddr(true).unwrap();
            socket
                .bind(SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 1688))
                .unwrap();
            let listener = socket.listen(65_535).unwrap().into_std().unwrap();
            live.push(StandIn::from_std(listener, Behavior::Kms).unwrap());
        } else {
            for k in 0..hosts {
                let [(_, up), _, (_, hole)] = targets(k);
                live.push(
                    StandIn::start(SocketAddr::new(up, 1688), Behavior::Kms)
                        .await
                        .unwrap(),
                );
                holes.push(Blackhole::start(SocketAddr::new(hole, 1688)).await.unwrap());
            }
        }
        let mut body = String::with_capacity(domains * 200);
        for i in 0..hosts {
            for (name, address) in targets(i) {
                let _ = writeln!(body, "{name} IN A {address}");
            }
        }
        for i in 0..domains {
            for (priority, (name, _)) in targets(i).iter().enumerate() {
                let _ = writeln!(
                    body,
                    "_vlmcs._tcp.d{i} IN SRV {} 0 1688 {name}",
                    priority * 10
                );
            }
        }
        let zone = Zone::new(origin, lab::zone_text(origin, 1, &body));
        let named = Named::start(&dir.join("named"), lab::LOOPBACK, &[zone], "")
            .await
            .unwrap();
        (live, holes, named)
    });
    let mut config = format!("servers: [\"{}\"]\n", named.address);
    if !distinct {
        config.push_str("authorized_hosts:\n");
        for k in 0..hosts {
            let _ = writeln!(config, "  - live-{k}.bench.test");
        }
    }
    config.push_str("domains:\n");
    let mut list = String::new();
    let mut queries = String::new();
    let mut endpoints = String::new();
    for i in 0..domains {
        let _ = writeln!(config, "  - d{i}.bench.test");
        let _ = writeln!(list, "d{i}.bench.test");
        let _ = writeln!(queries, "_vlmcs._tcp.d{i}.bench.test SRV");
    }
    // What a scan asks: the SRV question per domain (the targets' addresses come in the
    // answer's additional section).
    std::fs::write(dir.join("srv-queries.txt"), &queries).unwrap();
    for i in 0..hosts {
        for (name, address) in targets(i) {
            let _ = writeln!(queries, "{name}.bench.test A\n{name}.bench.test AAAA");
            let _ = writeln!(endpoints, "{address}");
        }
    }
    std::fs::write(dir.join("bench.yaml"), config).unwrap();
    std::fs::write(dir.join("domains.txt"), list).unwrap();
    std::fs::write(dir.join("queries.txt"), queries).unwrap();
    std::fs::write(dir.join("endpoints.txt"), endpoints).unwrap();
    std::fs::write(dir.join("server"), named.address.to_string()).unwrap();
    println!("READY {}", named.address);
    // Serve until the script closes our stdin.
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
    drop(named);
}
