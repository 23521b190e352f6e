//! `scan` against Knot DNS and PowerDNS where their answers differ from BIND's in a way that
//! matters to the scan: when an SRV answer's additional section runs out of room, BIND leaves out
//! every target's addresses, PowerDNS (4.7) sends an empty answer with TC, and Knot leaves out
//! RRsets one by one, so that a target can come with its A and without its AAAA (and no TC bit:
//! RFC 2181 section 9 allows it).

use std::collections::BTreeSet;
use std::net::{SocketAddr, UdpSocket};
use std::sync::OnceLock;
use std::time::Duration;

use hickory_proto::op::{Edns, Message, Query};
use hickory_proto::rr::{Name, RecordType};
use serde_json::Value;
use vlmcs_lab::knot::{Knot, KnotKey};
use vlmcs_lab::pdns::PowerDns;
use vlmcs_lab::{self as lab, Zone};

use crate::common::{scan_at, scratch, serve_forever};

const ORIGIN: &str = "scan-servers.test.";
/// Domains `dualN` with N dual-stack SRV targets: around the count where a 1232-byte answer
/// fills up, so that the cut falls inside some target's addresses for one N or another.
const SIZES: std::ops::RangeInclusive<usize> = 13..=20;

fn zone() -> Zone {
    let mut body = String::new();
    for n in SIZES {
        for i in 0..n {
            body += &format!(
                "_vlmcs._tcp.dual{n} IN SRV {i} 0 1688 dual{n}-{i:02}\n\
                 dual{n}-{i:02} IN A 127.0.0.1\n\
                 dual{n}-{i:02} IN AAAA ::1\n"
            );
        }
    }
    Zone::new(ORIGIN, lab::zone_text(ORIGIN, 1, &body))
}

/// Neither server is sent an update here; both want a key in their configuration.
const UNUSED_KEY: &str = "unused";
const UNUSED_SECRET: &str = "c2NhbiBzZXJ2ZXJzIHRlc3Qga2V5LCBub3QgdXNlZA==";

fn knot() -> SocketAddr {
    static SERVER: OnceLock<SocketAddr> = OnceLock::new();
    *SERVER.get_or_init(|| {
        serve_forever(|| async {
            let key = KnotKey {
                name: UNUSED_KEY,
                algorithm: "hmac-sha256",
                secret: UNUSED_SECRET,
            };
            let knot = Knot::start(&scratch("scan-knot"), lab::LOOPBACK, &[zone()], &key).await?;
            Ok((knot.address, knot))
        })
    })
}

fn power_dns() -> SocketAddr {
    static SERVER: OnceLock<SocketAddr> = OnceLock::new();
    *SERVER.get_or_init(|| {
        serve_forever(|| async {
            let pdns = PowerDns::start(
                &scratch("scan-pdns"),
                lab::LOOPBACK,
                &[zone()],
                UNUSED_KEY,
                UNUSED_SECRET,
            )
            .await?;
            Ok((pdns.address, pdns))
        })
    })
}

/// The targets whose A is in the UDP answer's additional section and whose AAAA is not.
fn targets_cut_in_half(server: SocketAddr, domain: &str) -> Vec<String> {
    let mut query = Message::query();
    query.metadata.id = 4711;
    query.add_query(Query::query(
        Name::from_ascii(format!("_vlmcs._tcp.{domain}.{ORIGIN}")).unwrap(),
        RecordType::SRV,
    ));
    let mut edns = Edns::new();
    edns.set_max_payload(1232);
    query.set_edns(edns);
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    socket.send_to(&query.to_vec().unwrap(), server).unwrap();
    let mut buffer = [0u8; 4096];
    let n = socket.recv(&mut buffer).unwrap();
    let reply = Message::from_vec(&buffer[..n]).unwrap();
    assert!(
        !reply.metadata.truncation,
        "{domain}: the answer itself fits"
    );
    let with = |kind: RecordType| -> BTreeSet<String> {
        reply
            .additionals
            .iter()
            .filter(|r| r.record_type() == kind)
            .map(|r| r.name.to_ascii())
            .collect()
    };
    with(RecordType::A)
        .difference(&with(RecordType::AAAA))
        .filter(|name| name.starts_with("dual"))
        .cloned()
        .collect()
}

/// Scans every `dualN` domain on `server` and checks that every target came out with both its
/// addresses; returns the report.
fn scan_finds_both_addresses_of_every_target(server: SocketAddr) -> Value {
    let domains: Vec<String> = SIZES.map(|n| format!("dual{n}.{ORIGIN}")).collect();
    let names: Vec<&str> = domains.iter().map(String::as_str).collect();
    let report = scan_at(server, &[], &names).json();
    let scanned = report["domains"].as_array().unwrap();
    assert_eq!(scanned.len(), domains.len(), "{report:#}");
    for (n, domain) in SIZES.zip(scanned) {
        let targets = domain["targets"].as_array().unwrap();
        assert_eq!(targets.len(), n, "{domain:#}");
        for target in targets {
            let addresses: Vec<&str> = target["addresses"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a.as_str().unwrap())
                .collect();
            assert_eq!(
                addresses,
                ["127.0.0.1", "::1"],
                "{} of {}: both its addresses, however the answer was cut",
                target["target"],
                domain["domain"]
            );
        }
    }
    report
}

#[test]
fn addresses_knot_leaves_out_of_a_full_answer_are_looked_up() {
    let server = knot();
    let half_cut: Vec<(String, Vec<String>)> = SIZES
        .map(|n| format!("dual{n}"))
        .map(|domain| {
            let cut = targets_cut_in_half(server, &domain);
            (domain, cut)
        })
        .filter(|(_, cut)| !cut.is_empty())
        .collect();
    // The bed must show what the test is about, or it proves nothing.
    assert!(
        !half_cut.is_empty(),
        "no Knot answer kept a target's A without its AAAA: the bed no longer reproduces the cut"
    );
    let report = scan_finds_both_addresses_of_every_target(server);
    // Where the cut fell inside a target, the addresses were asked for, not read from the answer.
    for (domain, cut) in &half_cut {
        let domain_report = report["domains"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| {
                d["domain"].as_str().unwrap() == format!("{domain}.{ORIGIN}").trim_end_matches('.')
            })
            .unwrap();
        for name in cut {
            let target = domain_report["targets"]
                .as_array()
                .unwrap()
                .iter()
                .find(|t| t["target"] == name.as_str())
                .unwrap();
            assert_eq!(target["source"], "lookup", "{target:#}");
        }
    }
}

/// PowerDNS truncates instead (measured: an empty answer with TC for every `dualN`), so the
/// scan's TCP leg gets the whole answer.
#[test]
fn power_dns_answers_near_the_size_limit_lose_no_address() {
    scan_finds_both_addresses_of_every_target(power_dns());
}
