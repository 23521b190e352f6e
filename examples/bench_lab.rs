//! The benchmark's lab: one BIND zone with N domains (default 10,000), each with three
//! `_vlmcs._tcp` records — a live KMS-RPC listener, a closed port and a blackholed address
//! (a third of all records) — on loopback. Writes `bench.yaml` and `domains.txt` into the
//! directory given, prints `READY`, and serves until its standard input closes.
//!
//!     cargo run --release --example bench_lab -- DIR [DOMAINS]

use std::fmt::Write as _;
use std::io::Read;
use std::net::SocketAddr;

use vlmcs_lab::{self as lab, Behavior, Blackhole, Named, StandIn, Zone};

/// Distinct hosts of each kind; domain i uses host i % HOSTS of each.
const HOSTS: u8 = 20;

fn main() {
    let mut args = std::env::args().skip(1);
    let dir = std::path::PathBuf::from(args.next().expect("usage: bench_lab DIR [DOMAINS]"));
    let domains: usize = args
        .next()
        .map(|d| d.parse().expect("DOMAINS is a number"))
        .unwrap_or(10_000);
    std::fs::create_dir_all(&dir).unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let net = lab::random_loopback_net();
    let host = |kind: u8, k: u8| std::net::IpAddr::from([net[0], net[1], kind, k + 1]);
    let (_live, _holes, named) = runtime.block_on(async {
        let mut live = Vec::new();
        let mut holes = Vec::new();
        for k in 0..HOSTS {
            live.push(StandIn::start(SocketAddr::new(host(1, k), 1688), Behavior::Kms).await.unwrap());
            holes.push(Blackhole::start(SocketAddr::new(host(3, k), 1688)).await.unwrap());
        }
        let origin = "bench.test.";
        let mut body = String::with_capacity(domains * 160);
        for k in 0..HOSTS {
            let _ = writeln!(body, "live-{k} IN A {}\nclosed-{k} IN A {}\nhole-{k} IN A {}", host(1, k), host(2, k), host(3, k));
        }
        for i in 0..domains {
            let k = i % HOSTS as usize;
            let _ = writeln!(
                body,
                "_vlmcs._tcp.d{i} IN SRV 0 0 1688 live-{k}\n_vlmcs._tcp.d{i} IN SRV 10 0 1688 closed-{k}\n_vlmcs._tcp.d{i} IN SRV 20 0 1688 hole-{k}"
            );
        }
        let zone = Zone::new(origin, lab::zone_text(origin, 1, &body));
        let named = Named::start(&dir.join("named"), lab::LOOPBACK, &[zone], "").await.unwrap();
        (live, holes, named)
    });
    let mut config = format!("servers: [\"{}\"]\nauthorized_hosts:\n", named.address);
    for k in 0..HOSTS {
        let _ = writeln!(config, "  - live-{k}.bench.test");
    }
    config.push_str("domains:\n");
    let mut list = String::new();
    for i in 0..domains {
        let _ = writeln!(config, "  - d{i}.bench.test");
        let _ = writeln!(list, "d{i}.bench.test");
    }
    std::fs::write(dir.join("bench.yaml"), config).unwrap();
    std::fs::write(dir.join("domains.txt"), list).unwrap();
    std::fs::write(dir.join("server"), named.address.to_string()).unwrap();
    println!("READY {}", named.address);
    // Serve until the script closes our stdin.
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
    drop(named);
}
