//! A DNS server that stops answering costs the scan one timeout, not one per domain: it is held
//! back (every later query to it fails at once, with the evidence) and asked again now and then,
//! and used again when it answers. Against the bed's real BIND, a socket that never answers and
//! relays in front of BIND that fall silent.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::{Run, bed, run, udp_front};

/// Names under the bed's zone that do not exist: BIND answers NXDOMAIN (with the SOA) at once.
fn domains(count: usize) -> Vec<String> {
    (0..count)
        .map(|i| format!("absent{i:04}.audit.test"))
        .collect()
}

fn scan_with(servers: &[SocketAddr], flags: &[&str], domains: &[String]) -> Run {
    let servers: Vec<String> = servers.iter().map(ToString::to_string).collect();
    let mut argv = vec!["scan", "--format", "json", "--timeout", "1s"];
    for server in &servers {
        argv.extend(["--server", server.as_str()]);
    }
    argv.extend(flags);
    argv.extend(domains.iter().map(String::as_str));
    run(&argv)
}

/// What each domain's entry for `server` says: its status and detail.
fn statuses(report: &Value, server: SocketAddr) -> Vec<(String, String)> {
    report["domains"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            let entry = d["servers"]
                .as_array()
                .unwrap()
                .iter()
                .find(|s| s["address"] == server.to_string())
                .unwrap_or_else(|| panic!("{server} missing from {d:#}"));
            (
                entry["status"].as_str().unwrap().to_string(),
                entry["detail"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

/// The statuses in order, as runs ("nxdomain x42, timeout x558"), for messages.
fn runs(entries: &[(String, String)]) -> String {
    let mut out: Vec<(String, usize)> = Vec::new();
    for (status, _) in entries {
        match out.last_mut() {
            Some((last, n)) if last == status => *n += 1,
            _ => out.push((status.clone(), 1)),
        }
    }
    out.iter()
        .map(|(s, n)| format!("{s} x{n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn seconds(report: &Value) -> f64 {
    report["duration_ms"].as_f64().unwrap() / 1000.0
}

#[test]
fn a_silent_server_costs_one_timeout_for_a_thousand_domains() {
    let names = domains(1000);
    // The live server alone: its DNS time, measured in the same run.
    let live = scan_with(&[bed().primary], &[], &names).json();
    // Bound, never read: queries vanish as into a firewall that drops them.
    let silent_socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let silent = silent_socket.local_addr().unwrap();
    let started = Instant::now();
    let run = scan_with(&[bed().primary, silent], &[], &names);
    let wall = started.elapsed();
    let report = run.json();
    assert_eq!(report["domains"].as_array().unwrap().len(), 1000);
    let extra = seconds(&report) - seconds(&live);
    // About one timeout (1 s) on top of the live server's time; per domain it was 0.1 s.
    assert!(
        extra < 2.0,
        "{extra:.2} s more than the live server alone ({:.2} s); wall {wall:?}",
        seconds(&live)
    );
    let silent_entries = statuses(&report, silent);
    assert!(
        silent_entries.iter().all(|(status, _)| status == "timeout"),
        "{}",
        runs(&silent_entries)
    );
    // All but the first window's queries were held back, and say why.
    let held_back = silent_entries
        .iter()
        .filter(|(_, detail)| detail.contains("has given none over udp"))
        .count();
    assert!(held_back >= 900, "{held_back} of 1000 held back");
    assert!(
        statuses(&report, bed().primary)
            .iter()
            .all(|(status, _)| status == "nxdomain")
    );
    // The finding carries the evidence.
    let finding = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .find(|f| f["code"] == "server-failure")
        .unwrap();
    assert!(
        finding["detail"]
            .as_str()
            .unwrap()
            .contains("queries unanswered or held back"),
        "{finding:#}"
    );
    drop(silent_socket);
}

/// A relay to `upstream` whose `behaviour` is asked, per datagram (counted from 0) and the time
/// since the first one, whether to answer. Also returns the distinct questions it saw (resends
/// of one query count once).
fn relay(
    upstream: SocketAddr,
    behaviour: impl Fn(usize, Duration) -> bool + Send + 'static,
) -> (SocketAddr, Arc<std::sync::Mutex<HashSet<String>>>) {
    let questions = Arc::new(std::sync::Mutex::new(HashSet::new()));
    let seen = questions.clone();
    let counter = AtomicUsize::new(0);
    let mut first: Option<Instant> = None;
    let address = udp_front(upstream, usize::MAX, move |query, forward| {
        let n = counter.fetch_add(1, Ordering::Relaxed);
        if let Ok(message) = hickory_proto::op::Message::from_vec(query)
            && let Some(question) = message.queries.first()
        {
            seen.lock().unwrap().insert(question.name().to_ascii());
        }
        let since = first.get_or_insert_with(Instant::now).elapsed();
        if behaviour(n, since) {
            forward(query)
        } else {
            None
        }
    });
    (address, questions)
}

#[test]
fn a_server_that_answers_the_first_queries_then_falls_silent_is_held_back() {
    let names = domains(400);
    let (front, seen) = relay(bed().primary, |n, _| n < 40);
    let report = scan_with(&[bed().primary, front], &[], &names).json();
    let entries = statuses(&report, front);
    let answered = entries.iter().filter(|(s, _)| s == "nxdomain").count();
    assert!((1..=40).contains(&answered), "{}", runs(&entries));
    assert!(
        entries
            .iter()
            .all(|(s, _)| s == "nxdomain" || s == "timeout"),
        "{}",
        runs(&entries)
    );
    assert!(
        seconds(&report) < 3.0,
        "{:.2} s for 400 domains",
        seconds(&report)
    );
    // Far fewer questions reached it than there were domains: the first 40, the window of
    // queries that found it silent, and a re-check or two; the rest were held back.
    let reached = seen.lock().unwrap().len();
    assert!(
        reached < 150,
        "{reached} questions reached the silent server"
    );
}

#[test]
fn a_server_that_comes_back_mid_scan_is_used_again() {
    let names = domains(600);
    // Answers 30 queries, is silent for 1.5 s, then answers again.
    let silence_started = std::sync::Mutex::new(None::<Duration>);
    let (front, _) = relay(bed().primary, move |n, since| {
        if n < 30 {
            return true;
        }
        let mut started = silence_started.lock().unwrap();
        let began = *started.get_or_insert(since);
        since.saturating_sub(began) >= Duration::from_millis(1500)
    });
    // Paced at 150 queries a second per server: the scan lasts about 4 s.
    let report = scan_with(&[bed().primary, front], &["--qps", "150"], &names).json();
    let entries = statuses(&report, front);
    assert_eq!(entries[0].0, "nxdomain");
    let answered = entries.iter().filter(|(s, _)| s == "nxdomain").count();
    let held_back = entries.len() - answered;
    // Domains are reported in order, not in the order their questions went out (those that
    // wait for their turn at the DNS step enter later), so count: 30 before the silence, and
    // after it the rest of the paced scan (about 2 s of 4) answered again.
    assert!(
        held_back > 0 && answered >= 150,
        "{} in {:.2} s",
        runs(&entries),
        seconds(&report)
    );
}

#[test]
fn a_server_that_only_sends_unusable_replies_is_held_back_too() {
    let names = domains(400);
    // Every reply comes back with opcode 9: answered, never usably.
    let front = udp_front(bed().primary, usize::MAX, |query, forward| {
        let mut reply = forward(query)?;
        reply[2] = (reply[2] & 0x87) | (9 << 3);
        Some(reply)
    });
    let report = scan_with(&[bed().primary, front], &[], &names).json();
    let entries = statuses(&report, front);
    let unusable = entries
        .iter()
        .filter(|(s, d)| s == "other-error" && d.contains("opcode 9"))
        .count();
    let held_back = entries
        .iter()
        .filter(|(s, d)| s == "timeout" && d.contains("has given none over udp"))
        .count();
    assert!(unusable >= 1, "{}", runs(&entries));
    assert_eq!(unusable + held_back, 400, "{}", runs(&entries));
    assert!(held_back >= 300, "{}", runs(&entries));
    assert!(
        seconds(&report) < 3.0,
        "{:.2} s for 400 domains",
        seconds(&report)
    );
}
