//! A self-contained KMS-in-DNS lab on loopback: two BIND servers that serve the same zone
//! (one of them stale), and real TCP listeners behind every record — a KMS host, a dead
//! host, a blackholed host, a client that became a KMS host, a web server on 1688, an RPC
//! server without the KMS interface, a KMS emulator. `examples/lab.rs` scans it for the
//! README's demo; the integration tests build their own scenarios from the same parts.
//!
//! Linux routes all of 127.0.0.0/8 to the loopback interface, so every host gets its own
//! address (127.X.Y.n) and listens on the real KMS port 1688, without root. BIND only listens
//! on addresses configured on an interface, so the DNS servers use 127.0.0.1 and free ports.

pub mod kdc;
pub mod knot;
pub mod listeners;
pub mod named;
pub mod netns;
pub mod pdns;
pub mod rpc_server;
pub mod samba;
pub mod slapd;

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

pub use listeners::{Behavior, Blackhole, StandIn};
pub use named::{Named, Zone};

/// Runs `command` to its end; its standard output, or what it printed when it failed.
pub(crate) fn run(command: &mut std::process::Command) -> Result<String, String> {
    let out = command.output().map_err(|e| format!("{command:?}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{command:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Where the lab's DNS servers listen.
pub const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// The lab's zone; every lab domain lives under it.
pub const LAB_ZONE: &str = "kms-lab.test.";

/// A /24 on loopback picked at random, so that concurrent labs do not collide.
pub fn random_loopback_net() -> [u8; 3] {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let mixed = nanos ^ (std::process::id().wrapping_mul(2_654_435_761));
    [
        127,
        (mixed % 200) as u8 + 20,
        ((mixed >> 8) % 250) as u8 + 1,
    ]
}

/// The address `.n` in a lab network.
pub fn host(net: [u8; 3], n: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(net[0], net[1], net[2], n))
}

/// A zone file with SOA and NS (`ns1` at 127.0.0.1, where the lab's BIND listens) followed
/// by `body`.
pub fn zone_text(origin: &str, serial: u32, body: &str) -> String {
    format!(
        "$TTL 300\n\
         @ IN SOA ns1.{origin} hostmaster.{origin} {serial} 3600 600 86400 300\n\
         @ IN NS ns1.{origin}\n\
         ns1 IN A 127.0.0.1\n\
         {body}\n"
    )
}

/// The demo lab, running.
pub struct Lab {
    pub net: [u8; 3],
    pub primary: Named,
    pub stale_secondary: Named,
    pub dir: PathBuf,
    /// The `audit.yaml` written for this lab.
    pub config_path: PathBuf,
    _stand_ins: Vec<StandIn>,
    _blackhole: Blackhole,
}

/// Every host of the demo: name, address suffix, port and behavior (`None`: nothing listens).
const DEMO_HOSTS: &[(&str, u8, u16, Option<Behavior>)] = &[
    ("kms1", 11, 1688, Some(Behavior::Kms)),
    ("kms2", 12, 11688, Some(Behavior::Kms)),
    ("old-kms", 13, 1688, None),
    ("pc-042", 15, 1688, Some(Behavior::Kms)),
    ("web01", 16, 1688, Some(Behavior::Http)),
    ("rpc01", 17, 1688, Some(Behavior::OtherRpc)),
    ("emu", 18, 1688, Some(Behavior::Vlmcsd)),
    ("nak01", 19, 1688, Some(Behavior::Nak)),
    ("odd01", 20, 1688, Some(Behavior::Lax)),
];
const BLACKHOLED_HOST: (&str, u8) = ("lost-kms", 14);

impl Lab {
    /// Starts everything under `dir` (which must exist and be writable).
    pub async fn start(dir: &Path) -> Result<Self, String> {
        let mut last = String::new();
        for _ in 0..5 {
            match Self::try_start(dir, random_loopback_net()).await {
                Ok(lab) => return Ok(lab),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    async fn try_start(dir: &Path, net: [u8; 3]) -> Result<Self, String> {
        let mut stand_ins = Vec::new();
        for (name, n, port, behavior) in DEMO_HOSTS {
            if let Some(behavior) = behavior {
                let at = SocketAddr::new(host(net, *n), *port);
                let stand_in = StandIn::start(at, *behavior)
                    .await
                    .map_err(|e| format!("{name}: listening on {at}: {e}"))?;
                stand_ins.push(stand_in);
            }
        }
        let blackhole_at = SocketAddr::new(host(net, BLACKHOLED_HOST.1), 1688);
        let blackhole = Blackhole::start(blackhole_at)
            .await
            .map_err(|e| format!("{}: {e}", BLACKHOLED_HOST.0))?;

        let full = demo_zone_body(net, true);
        let stale = demo_zone_body(net, false);
        let primary = Named::start(
            &dir.join("ns-primary"),
            LOOPBACK,
            &[Zone::new(LAB_ZONE, zone_text(LAB_ZONE, 2026112802, &full))],
            "",
        )
        .await?;
        let stale_secondary = Named::start(
            &dir.join("ns-stale"),
            LOOPBACK,
            &[Zone::new(LAB_ZONE, zone_text(LAB_ZONE, 2026112801, &stale))],
            "",
        )
        .await?;
        // Port 9 (discard) on .3 has nothing behind it: a server that does not answer.
        let dead_server = SocketAddr::new(host(net, 3), 9);
        let config_path = dir.join("audit.yaml");
        std::fs::write(
            &config_path,
            demo_config(
                net,
                &[primary.address, stale_secondary.address],
                dead_server,
            ),
        )
        .map_err(|e| format!("writing {}: {e}", config_path.display()))?;
        Ok(Self {
            net,
            primary,
            stale_secondary,
            dir: dir.to_path_buf(),
            config_path,
            _stand_ins: stand_ins,
            _blackhole: blackhole,
        })
    }
}

fn demo_zone_body(net: [u8; 3], with_rogue: bool) -> String {
    let mut body = String::new();
    for (name, n, _, _) in DEMO_HOSTS {
        let _ = writeln!(body, "{name} IN A {}", host(net, *n));
    }
    let _ = writeln!(
        body,
        "{} IN A {}",
        BLACKHOLED_HOST.0,
        host(net, BLACKHOLED_HOST.1)
    );
    // kms1 under two names that are not its own: another A name for its address, and a CNAME.
    let kms1 = DEMO_HOSTS
        .iter()
        .find(|h| h.0 == "kms1")
        .map_or(11, |h| h.1);
    let _ = writeln!(body, "kms1-legacy IN A {}", host(net, kms1));
    body.push_str(
        "kms-alias IN CNAME emu\n\
         kms1-cname IN CNAME kms1\n\
         _vlmcs._tcp.hq IN SRV 0 0 1688 kms1\n\
         _vlmcs._tcp.hq IN SRV 10 0 1688 kms1-legacy\n\
         _vlmcs._tcp.hq IN SRV 20 0 1688 kms1-cname\n\
         _vlmcs._tcp.corp IN SRV 0 0 1688 kms1\n\
         _vlmcs._tcp.corp IN SRV 10 0 1688 kms1\n\
         _vlmcs._tcp.corp IN SRV 0 0 11688 kms2\n\
         _vlmcs._tcp.corp IN SRV 0 0 1688 old-kms\n\
         _vlmcs._tcp.corp IN SRV 0 0 1688 lost-kms\n\
         _vlmcs._tcp.corp IN SRV 0 0 1688 web01\n\
         _vlmcs._tcp.corp IN SRV 0 0 1688 gone\n\
         _vlmcs._tcp.branch IN SRV 0 0 1688 .\n\
         _vlmcs._tcp.branch IN SRV 0 0 1688 kms-alias\n\
         _vlmcs._tcp.branch IN SRV 0 0 1688 emu\n\
         _vlmcs._tcp.branch IN SRV 0 0 1688 rpc01\n\
         _vlmcs._tcp.branch IN SRV 0 0 1688 nak01\n\
         _vlmcs._tcp.branch IN SRV 0 0 1688 odd01\n\
         _vlmcs._tcp.nodata IN TXT \"KMS hosts are published elsewhere\"\n\
         _vlmcs._tcp.sales IN CNAME _vlmcs._tcp.hq\n",
    );
    if with_rogue {
        body.push_str("_vlmcs._tcp.corp IN SRV 0 0 1688 pc-042\n");
    }
    body
}

fn demo_config(net: [u8; 3], servers: &[SocketAddr], dead_server: SocketAddr) -> String {
    let servers: Vec<String> = servers.iter().map(|s| format!("\"{s}\"")).collect();
    let servers = servers.join(", ");
    format!(
        "# Generated by the vlmcs-audit lab for the loopback net {}.{}.{}.0/24.\n\
         timeout: 2s\n\
         concurrency: 64\n\
         servers: [{servers}]\n\
         authorized_hosts:\n  - kms1.kms-lab.test\n  - kms2.kms-lab.test\n\
         domains:\n\
         \x20 - name: hq.kms-lab.test\n\
         \x20   servers: [{servers}, \"{dead_server}\"]\n\
         \x20 - name: corp.kms-lab.test\n\
         \x20   kms_hosts: [kms1.kms-lab.test, kms3.kms-lab.test]\n\
         \x20 - branch.kms-lab.test\n\
         \x20 - empty.kms-lab.test\n\
         \x20 - nodata.kms-lab.test\n\
         \x20 - sales.kms-lab.test\n",
        net[0], net[1], net[2]
    )
}
