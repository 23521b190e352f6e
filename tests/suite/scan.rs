//! `vlmcs-audit scan` against real BIND 9 servers and real TCP listeners.

use crate::common::{self, BIG_RRSET, bed, codes, findings, run, scan, scan_at, udp_front};
use serde_json::Value;

fn only_domain(report: &Value) -> &Value {
    let domains = report["domains"].as_array().unwrap();
    assert_eq!(domains.len(), 1, "{report:#}");
    &domains[0]
}

fn name(text: &str) -> vlmcs_audit::model::name::DnsName {
    vlmcs_audit::model::name::DnsName::parse(text).unwrap()
}

fn pair(code: &str, severity: &str) -> (String, String) {
    (code.to_string(), severity.to_string())
}

#[test]
fn kms_listener_is_healthy_and_exits_zero() {
    let run = scan(&["healthy"], &[]);
    let report = run.json();
    assert_eq!(
        findings(&report),
        vec![pair("healthy", "ok")],
        "{}",
        run.stdout
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let f = &report["findings"][0];
    assert_eq!(f["domain"], "healthy.audit.test");
    assert_eq!(f["target"], "kms1.audit.test.");
    assert_eq!(f["port"], 1688);
    assert_eq!(f["address"], lab_address(11));
    let d = only_domain(&report);
    assert_eq!(d["records"][0]["ttl"], 300);
    assert_eq!(d["targets"][0]["source"], "additional");
    assert_eq!(d["probes"][0]["outcome"], "kms-rpc");
    assert_eq!(d["probes"][0]["transfer_syntax"], "NDR64");
    assert!(d["probes"][0]["duration_ms"].as_f64().unwrap() >= 0.0);
    assert_eq!(d["servers"][0]["status"], "answer");
    // Without an allowlist the report says that rogue hosts cannot be told apart.
    assert_eq!(report["allowlist_configured"], false);
    assert!(
        report["notes"][0]
            .as_str()
            .unwrap()
            .contains("cannot be told apart")
    );
}

fn lab_address(n: u8) -> String {
    vlmcs_lab::host(bed().net, n).to_string()
}

#[test]
fn an_srv_name_that_is_an_alias_is_followed_and_never_reported_empty() {
    let run = scan(&["aliased", "faralias"], &[]);
    let report = run.json();
    let domains = report["domains"].as_array().unwrap();
    // In the zone: BIND's answer carries the chain and the records at its end, which are
    // examined as the domain's own (clients follow the alias).
    let aliased = &domains[0];
    assert_eq!(
        aliased["servers"][0]["alias"], "_vlmcs._tcp.healthy.audit.test.",
        "{aliased:#}"
    );
    assert_eq!(aliased["records"][0]["target"], "kms1.audit.test.");
    assert_eq!(aliased["probes"][0]["outcome"], "kms-rpc");
    assert_eq!(aliased["summary"]["complete"], true);
    // Out of the zone: the chain leaves the answer; a warning, not "no records", and the zone
    // is still learnt (the alias lives in its parent's zone).
    let far = &domains[1];
    assert_eq!(far["servers"][0]["alias"], "_vlmcs._tcp.elsewhere.example.");
    assert_eq!(far["zone"], "audit.test.");
    assert_eq!(far["summary"]["complete"], false);
    assert_eq!(
        findings(&report),
        [
            pair("srv-alias", "info"),
            pair("healthy", "ok"),
            pair("srv-alias", "warning")
        ]
    );
    let domains_of_findings: Vec<&str> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["domain"].as_str().unwrap())
        .collect();
    assert_eq!(
        domains_of_findings,
        [
            "aliased.audit.test",
            "aliased.audit.test",
            "faralias.audit.test"
        ]
    );
    // Nothing healthy is known for the far one: the scan is not "OK".
    assert_ne!(run.code, 0, "{}", run.stdout);
}

/// A server in front of `upstream` that answers the SRV question for `_vlmcs._tcp.selfalias`
/// with a CNAME of that name to itself (NOERROR, authoritative), as some servers serve such a
/// loop (BIND answers SERVFAIL); everything else goes to `upstream`.
fn server_with_a_self_alias(upstream: std::net::SocketAddr) -> std::net::SocketAddr {
    use hickory_proto::op::{Message, MessageType};
    use hickory_proto::rr::{RData, Record, rdata::CNAME};
    udp_front(upstream, usize::MAX, move |query, forward| {
        let mut message = Message::from_vec(query).ok()?;
        let asked = message.queries.first()?.name().clone();
        if !asked
            .to_ascii()
            .eq_ignore_ascii_case("_vlmcs._tcp.selfalias.audit.test.")
        {
            return forward(query);
        }
        message.metadata.message_type = MessageType::Response;
        message.metadata.authoritative = true;
        message.answers.push(Record::from_rdata(
            asked.clone(),
            300,
            RData::CNAME(CNAME(asked)),
        ));
        message.to_vec().ok()
    })
}

#[test]
fn an_srv_name_that_is_an_alias_of_itself_is_an_alias_not_an_empty_name() {
    let server = server_with_a_self_alias(bed().primary);
    let run = scan_at(server, &[], &["selfalias.audit.test"]);
    let report = run.json();
    let domain = &report["domains"][0];
    assert_eq!(
        domain["servers"][0]["alias"], "_vlmcs._tcp.selfalias.audit.test.",
        "{domain:#}"
    );
    assert_eq!(
        findings(&report),
        [pair("srv-alias", "warning")],
        "{}",
        run.stdout
    );
}

#[test]
fn unusable_replies_are_reported_as_such_not_as_silence_or_an_empty_answer() {
    for (mangle, expected) in [
        // Opcode 9 in an otherwise good answer: never taken for NODATA or an answer.
        (
            (|reply: &mut Vec<u8>| reply[2] = (reply[2] & 0x87) | (9 << 3)) as fn(&mut Vec<u8>),
            "opcode 9",
        ),
        // Counts that lie: fifty answers announced, none there.
        (|reply: &mut Vec<u8>| reply[7] = 50, "does not parse"),
    ] {
        let server = udp_front(bed().primary, usize::MAX, move |query, forward| {
            let mut reply = forward(query)?;
            mangle(&mut reply);
            Some(reply)
        });
        let run = scan_at(server, &[], &["healthy.audit.test"]);
        let report = run.json();
        let entry = &report["domains"][0]["servers"][0];
        assert_eq!(entry["status"], "other-error", "{entry:#}");
        let detail = entry["detail"].as_str().unwrap();
        assert!(detail.contains(expected), "{detail}");
        assert_eq!(run.code, 3, "{}", run.stdout);
    }
}

#[test]
fn web_server_on_1688_is_not_kms() {
    let report = scan(&["notkms"], &[]).json();
    assert_eq!(codes(&report), ["not-kms", "no-healthy-host"]);
    let detail = report["findings"][0]["detail"].as_str().unwrap();
    assert!(
        detail.contains("not DCE/RPC") && detail.contains("HTTP/1.1"),
        "{detail}"
    );
}

#[test]
fn bind_nak_is_not_kms() {
    let report = scan(&["nak"], &[]).json();
    assert_eq!(codes(&report), ["not-kms", "no-healthy-host"]);
    assert_eq!(only_domain(&report)["probes"][0]["outcome"], "rpc-nak");
}

#[test]
fn rpc_server_without_the_kms_interface_is_not_kms() {
    let report = scan(&["rpc"], &[]).json();
    assert_eq!(codes(&report), ["not-kms", "no-healthy-host"]);
    assert_eq!(only_domain(&report)["probes"][0]["outcome"], "rpc-rejected");
}

#[test]
fn hostile_listeners_end_as_not_kms_within_the_timeout() {
    for (domain, outcome) in [
        ("silent", "silent"),
        ("garbage", "not-rpc"),
        ("midpdu", "not-rpc"),
        ("slow", "silent"),
        ("wrongack", "not-rpc"),
    ] {
        let run = scan(&[domain], &[]);
        let report = run.json();
        assert_eq!(codes(&report), ["not-kms", "no-healthy-host"], "{domain}");
        let probe = &only_domain(&report)["probes"][0];
        assert_eq!(probe["outcome"], outcome, "{domain}: {probe:#}");
        // Bounded by the 1 s timeout (with slack for a loaded machine), never hanging.
        assert!(
            probe["duration_ms"].as_f64().unwrap() < 1500.0,
            "{domain}: {probe:#}"
        );
        assert_eq!(run.code, 2);
    }
}

#[test]
fn kms_emulator_is_recognised() {
    let report = scan(&["emu"], &[]).json();
    assert_eq!(codes(&report), ["kms-emulator", "healthy"]);
    assert_eq!(
        only_domain(&report)["probes"][0]["accepts_any_interface"],
        true
    );
    // The check can be switched off.
    let report = scan(&["emu"], &["--no-emulator-check"]).json();
    assert_eq!(codes(&report), ["healthy"]);
}

/// The tells each implementation shows, probed over real TCP connections.
#[test]
fn each_emulator_is_caught_by_its_own_tells_and_a_conforming_runtime_by_none() {
    use vlmcs_audit::model::{EmulatorTell as T, ProbeOutcome};
    use vlmcs_audit::probe::{ProbeOptions, Prober, probe};
    use vlmcs_lab::{Behavior, StandIn};
    let expected: [(Behavior, &[T]); 6] = [
        (Behavior::Kms, &[]),
        (Behavior::Lax, &[T::EchoesFragmentSizes, T::EchoesMaybeFlag]),
        (
            Behavior::Vlmcsd,
            &[
                T::AcceptsWrongVersion,
                T::EchoesFragmentSizes,
                T::EchoesMaybeFlag,
            ],
        ),
        (
            Behavior::VlmcsdNdr64,
            &[
                T::AcceptsWrongVersion,
                T::EchoesFragmentSizes,
                T::EchoesMaybeFlag,
            ],
        ),
        (
            Behavior::VlmcsdSimpleRpc,
            &[
                T::AcceptsWrongVersion,
                T::AcceptsAnyInterface,
                T::EchoesFragmentSizes,
                T::EchoesMaybeFlag,
            ],
        ),
        (
            Behavior::PyKms,
            &[
                T::MultiplexUnasked,
                T::ConstantAssocGroup,
                T::AcceptsWrongVersion,
                T::AcceptsAnyInterface,
                T::EchoesFragmentSizes,
                T::DropsFeatureNegotiation,
            ],
        ),
    ];
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let options = ProbeOptions {
            timeout: std::time::Duration::from_secs(2),
            check_emulator: true,
        };
        for (behavior, tells) in expected {
            let stand_in = StandIn::start("127.0.0.1:0".parse().unwrap(), behavior)
                .await
                .unwrap();
            let (ip, port) = (stand_in.address.ip(), stand_in.address.port());
            let prober = Prober::new(options, 16);
            let first = prober.probe(&name("a.test."), ip, port).await;
            assert_eq!(
                first.outcome,
                ProbeOutcome::KmsRpc,
                "{behavior:?}: {first:?}"
            );
            let got: Vec<T> = first.emulator_evidence.iter().map(|e| e.tell).collect();
            assert_eq!(got, tells, "{behavior:?}: {first:#?}");
            assert_eq!(
                first.is_emulator(),
                tells.iter().any(|t| t.is_strong()),
                "{behavior:?}"
            );
            assert_eq!(
                first.accepts_any_interface,
                tells.contains(&T::AcceptsAnyInterface)
            );
            // One bind with every tell, whose first contexts are the ordinary bind's: one
            // connection, once per endpoint per scan. py-kms hangs up on the feature
            // negotiation context, which costs it the ordinary bind, the same tells bind
            // without that context and the plain negotiation bind: four.
            // A second record that points at it costs none: the result is the endpoint's.
            let second = prober.probe(&name("b.test."), ip, port).await;
            assert_eq!(second.target, name("b.test."));
            assert_eq!(second.emulator_evidence, first.emulator_evidence);
            assert_eq!(second.outcome, first.outcome);
            let connections = if matches!(behavior, Behavior::PyKms) {
                4
            } else {
                1
            };
            assert_eq!(stand_in.connections(), connections, "{behavior:?}");
            assert_eq!(prober.endpoints(), 1);
            // Switched off: one connection, no evidence.
            let off = ProbeOptions {
                check_emulator: false,
                ..options
            };
            let plain = probe(&name("c.test."), ip, port, off).await;
            assert!(plain.emulator_evidence.is_empty() && !plain.accepts_any_interface);
            assert_eq!(stand_in.connections(), connections + 1, "{behavior:?}");
        }
    });
}

#[test]
fn default_vlmcsd_which_rejects_unknown_interfaces_is_caught_through_dns() {
    let report = scan(&["vlmcsd"], &[]).json();
    assert_eq!(codes(&report), ["kms-emulator", "healthy"]);
    let probe = &only_domain(&report)["probes"][0];
    assert_eq!(probe["accepts_any_interface"], false);
    let tells: Vec<(&str, &str)> = probe["emulator_evidence"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["tell"].as_str().unwrap(), e["strength"].as_str().unwrap()))
        .collect();
    assert_eq!(
        tells,
        [
            ("accepts-wrong-version", "strong"),
            ("echoes-fragment-sizes", "supporting"),
            ("echoes-maybe-flag", "supporting")
        ]
    );
    let detail = report["findings"][0]["detail"].as_str().unwrap();
    assert!(detail.contains("version 2.0"), "{detail}");
    assert!(detail.contains("not checked against"), "{detail}");
    // A conforming host shows nothing, and its JSON has no evidence field at all.
    let report = scan(&["healthy"], &[]).json();
    assert!(
        only_domain(&report)["probes"][0]
            .get("emulator_evidence")
            .is_none()
    );
}

#[test]
fn closed_port_is_a_dead_host() {
    let run = scan(&["closed"], &[]);
    let report = run.json();
    assert_eq!(
        findings(&report),
        vec![
            pair("dead-host", "warning"),
            pair("no-healthy-host", "critical")
        ]
    );
    assert_eq!(only_domain(&report)["probes"][0]["outcome"], "refused");
    assert_eq!(run.code, 2);
}

#[test]
fn blackholed_address_is_dead_by_timeout() {
    let report = scan(&["hole"], &[]).json();
    assert_eq!(codes(&report), ["dead-host", "no-healthy-host"]);
    let probe = &only_domain(&report)["probes"][0];
    assert_eq!(probe["outcome"], "connect-timeout");
    let ms = probe["duration_ms"].as_f64().unwrap();
    assert!((900.0..1500.0).contains(&ms), "{probe:#}");
}

#[test]
fn dangling_target_has_no_address() {
    let report = scan(&["dangling"], &[]).json();
    assert_eq!(codes(&report), ["no-address", "no-healthy-host"]);
    let target = &only_domain(&report)["targets"][0];
    assert!(
        target["resolution_error"]
            .as_str()
            .unwrap()
            .contains("NXDOMAIN"),
        "{target:#}"
    );
    assert_eq!(report["findings"][0]["address"], Value::Null);
}

#[test]
fn root_target_is_invalid() {
    let report = scan(&["root"], &[]).json();
    assert_eq!(codes(&report), ["invalid-target", "no-healthy-host"]);
    assert_eq!(report["findings"][0]["target"], ".");
    assert!(
        only_domain(&report)["probes"]
            .as_array()
            .unwrap()
            .is_empty()
    );
}

/// Port 0 is no port: the record is unusable whatever its target (here a live KMS host), not
/// a "nonstandard port" of a dead host.
#[test]
fn port_zero_is_invalid_and_not_probed() {
    let report = scan(&["port0"], &[]).json();
    assert_eq!(codes(&report), ["invalid-target", "no-healthy-host"]);
    assert_eq!(report["findings"][0]["target"], "kms1.audit.test.");
    assert_eq!(report["findings"][0]["port"], 0);
    let domain = only_domain(&report);
    assert!(domain["probes"].as_array().unwrap().is_empty());
    assert_eq!(domain["verdicts"][0]["status"], "invalid-target");
}

#[test]
fn cname_target_is_invalid_but_probed_through_the_alias() {
    let report = scan(&["cname"], &[]).json();
    assert_eq!(codes(&report), ["invalid-target", "healthy"]);
    let target = &only_domain(&report)["targets"][0];
    assert_eq!(target["cname"], "kms1.audit.test.");
    assert_eq!(target["addresses"][0], lab_address(11));
}

#[test]
fn duplicated_record_is_reported() {
    let report = scan(&["dup"], &[]).json();
    assert_eq!(codes(&report), ["duplicate-record", "healthy"]);
    assert_eq!(only_domain(&report)["records"].as_array().unwrap().len(), 2);
}

#[test]
fn large_rrset_comes_back_whole_over_tcp() {
    let report = scan(&["big"], &["--no-emulator-check"]).json();
    let d = only_domain(&report);
    let server = &d["servers"][0];
    assert_eq!(server["truncated_over_udp"], true, "{server:#}");
    assert_eq!(server["transport"], "tcp");
    assert_eq!(d["records"].as_array().unwrap().len(), BIG_RRSET);
    assert_eq!(d["summary"]["healthy"], BIG_RRSET);
    // 80 names for one address: reported as one host under many names.
    assert_eq!(
        codes(&report).iter().filter(|c| *c == "healthy").count(),
        BIG_RRSET
    );
}

#[test]
fn nxdomain_and_nodata_are_told_apart() {
    let report = scan(&["missing", "nodata"], &[]).json();
    assert_eq!(codes(&report), ["no-records", "no-records"]);
    assert_eq!(report["domains"][0]["servers"][0]["status"], "nxdomain");
    assert_eq!(report["domains"][1]["servers"][0]["status"], "nodata");
    // The negative answers' SOA names the zone.
    assert_eq!(report["domains"][0]["zone"], "audit.test.");
    assert_eq!(report["domains"][1]["primary"], "ns1.audit.test.");
    assert!(
        report["findings"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("NXDOMAIN")
    );
    assert!(
        report["findings"][1]["detail"]
            .as_str()
            .unwrap()
            .contains("no SRV records")
    );
}

#[test]
fn servers_that_disagree_are_reported() {
    let stale = bed().stale.to_string();
    let report = scan(&["disagree"], &["--server", &stale]).json();
    let found = codes(&report);
    assert!(
        found.contains(&"server-disagreement".to_string()),
        "{found:?}"
    );
    let f = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["code"] == "server-disagreement")
        .unwrap();
    assert_eq!(f["target"], "closed.audit.test.");
    assert!(
        f["detail"]
            .as_str()
            .unwrap()
            .contains(&format!("but not by {stale}")),
        "{f:#}"
    );
    assert_eq!(only_domain(&report)["servers"].as_array().unwrap().len(), 2);
    // The same two servers agree about a domain they both serve alike.
    let report = scan(&["healthy"], &["--server", &stale]).json();
    assert_eq!(codes(&report), ["healthy"]);
}

#[test]
fn servfail_refused_and_silence_are_kept_apart() {
    let bed = bed();
    let primary = bed.primary.to_string();
    // SERVFAIL: a zone that failed to load.
    let run = crate::common::run(&[
        "scan",
        "--format",
        "json",
        "--timeout",
        "1s",
        "--server",
        &primary,
        "broken.test",
    ]);
    let report = run.json();
    assert_eq!(report["domains"][0]["servers"][0]["status"], "servfail");
    assert_eq!(findings(&report), vec![pair("server-failure", "critical")]);
    assert_eq!(run.code, 3, "no usable answer: the state is unknown");
    // REFUSED: a zone the server does not serve.
    let report = crate::common::run(&[
        "scan",
        "--format",
        "json",
        "--timeout",
        "1s",
        "--server",
        &primary,
        "example.org",
    ])
    .json();
    assert_eq!(report["domains"][0]["servers"][0]["status"], "refused");
    // A server that never answers (UDP to a loopback address where nothing listens on 53 is
    // refused at once; an unrouted one would time out): the status says which.
    let silent = format!("{}:9", vlmcs_lab::host(bed.net, 99));
    let report = crate::common::run(&[
        "scan",
        "--format",
        "json",
        "--timeout",
        "1s",
        "--server",
        &silent,
        "healthy.audit.test",
    ])
    .json();
    let status = report["domains"][0]["servers"][0]["status"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(status == "network-error" || status == "timeout", "{status}");
    // One failing server next to a working one is a warning, and the scan is complete.
    let run = scan(&["healthy"], &["--server", &silent]);
    let report = run.json();
    assert_eq!(
        findings(&report),
        vec![pair("server-failure", "warning"), pair("healthy", "ok")]
    );
    assert_eq!(run.code, 1);
}

#[test]
fn allowlist_tells_rogue_hosts_apart() {
    let run = scan(&["healthy"], &["--allow", "kms9.audit.test"]);
    let report = run.json();
    assert_eq!(
        findings(&report),
        vec![
            pair("unauthorized-host", "critical"),
            pair("no-healthy-host", "critical")
        ]
    );
    assert_eq!(report["allowlist_configured"], true);
    assert_eq!(run.code, 2);
    let addr = lab_address(11);
    let report = scan(&["healthy"], &["--allow", &addr]).json();
    assert_eq!(codes(&report), ["healthy"]);
}

#[test]
fn config_file_drives_domains_allowlist_and_expected_hosts() {
    let bed = bed();
    let path = bed.dir.join("expected.yaml");
    std::fs::write(
        &path,
        format!(
            "servers: ['{}']\ntimeout: 1s\nauthorized_hosts: [kms1.audit.test]\ndomains:\n  - name: healthy.audit.test\n    kms_hosts: [kms1.audit.test, kms2.audit.test]\n",
            bed.primary
        ),
    )
    .unwrap();
    let run = run(&[
        "scan",
        "--format",
        "json",
        "--config",
        path.to_str().unwrap(),
    ]);
    let report = run.json();
    assert_eq!(
        findings(&report),
        vec![
            pair("healthy", "ok"),
            pair("authorized-host-missing", "warning"),
            // kms2 is not only unpublished, it does not resolve at all.
            pair("allowlist-unresolved", "warning")
        ]
    );
    assert_eq!(report["findings"][1]["target"], "kms2.audit.test.");
    assert_eq!(report["findings"][2]["target"], "kms2.audit.test.");
    assert_eq!(run.code, 1);
}

#[test]
fn authoritative_servers_are_discovered_from_soa_and_ns() {
    let bed = bed();
    let resolver = bed.primary.to_string();
    let port = bed.primary.port().to_string();
    let run = run(&[
        "scan",
        "--format",
        "json",
        "--timeout",
        "1s",
        "--resolver",
        &resolver,
        "--nameserver-port",
        &port,
        "healthy.audit.test",
    ]);
    let report = run.json();
    let d = only_domain(&report);
    assert_eq!(d["servers_from"], "discovered");
    assert_eq!(d["zone"], "audit.test.");
    assert_eq!(d["servers"][0]["name"], "ns1.audit.test.");
    assert_eq!(d["servers"][0]["address"], resolver);
    assert_eq!(codes(&report), ["healthy"]);
    // A domain whose zone cannot be found is a discovery failure: exit 3.
    let run = crate::common::run(&[
        "scan",
        "--format",
        "json",
        "--timeout",
        "1s",
        "--resolver",
        &resolver,
        "nowhere.example",
    ]);
    let report = run.json();
    assert!(
        report["domains"][0]["discovery_error"].is_string(),
        "{report:#}"
    );
    assert_eq!(run.code, 3);
}

#[test]
fn many_domains_with_blackholed_hosts_take_about_one_timeout() {
    // Ten domains at once, several of them behind the blackhole: the scan costs one
    // timeout, not one per host. (Loose bound; the benchmark measures precisely.)
    let run = scan(
        &[
            "hole", "healthy", "closed", "hole", "notkms", "dup", "cname", "nak", "rpc", "dangling",
        ],
        &[],
    );
    let report = run.json();
    let ms = report["duration_ms"].as_f64().unwrap();
    assert!(ms < 2900.0, "scan took {ms} ms with a 1 s timeout");
}

#[test]
fn json_contract_has_the_documented_fields() {
    let report = scan(&["healthy", "dangling"], &[]).json();
    for key in [
        "tool",
        "version",
        "started_at",
        "duration_ms",
        "timeout_ms",
        "complete",
        "worst_severity",
        "exit_code",
        "notes",
        "findings",
        "domains",
    ] {
        assert!(report.get(key).is_some(), "missing top-level `{key}`");
    }
    for f in report["findings"].as_array().unwrap() {
        for key in [
            "domain", "code", "severity", "target", "port", "address", "detail",
        ] {
            assert!(f.get(key).is_some(), "finding without `{key}`: {f:#}");
        }
    }
    let d = &report["domains"][0];
    for key in [
        "domain",
        "query_name",
        "servers",
        "records",
        "targets",
        "probes",
        "summary",
        "zone",
        "primary",
        "dns_ms",
    ] {
        assert!(d.get(key).is_some(), "domain without `{key}`");
    }
    // With --server, the zone and its primary come from the server's own SOA.
    assert_eq!(d["zone"], "audit.test.");
    assert_eq!(d["primary"], "ns1.audit.test.");
    assert_eq!(report["exit_code"], 2);
    // One verdict per record, decided once: healthy here, a certain dangling record there.
    let verdict = |domain: usize| report["domains"][domain]["verdicts"][0].clone();
    assert_eq!(verdict(0)["status"], "healthy", "{:#}", verdict(0));
    assert_eq!(verdict(0)["target"], "kms1.audit.test.");
    assert_eq!(verdict(0)["port"], 1688);
    assert_eq!(verdict(1)["status"], "no-address", "{:#}", verdict(1));
    assert_eq!(verdict(1)["certain"], true);
    assert!(verdict(1).get("uncertain_because").is_none());
    assert!(
        verdict(1)["evidence"]
            .as_str()
            .unwrap()
            .contains("NXDOMAIN"),
        "{:#}",
        verdict(1)
    );
}

#[test]
fn yaml_and_table_render_the_same_findings() {
    let yaml = scan(&["closed"], &["--format", "yaml"]);
    let parsed: serde_json::Value = serde_norway::from_str(&yaml.stdout).unwrap();
    assert_eq!(codes(&parsed), ["dead-host", "no-healthy-host"]);
    let table = scan(&["closed"], &["--format", "table"]);
    assert!(
        table.stdout.contains("dead-host") && table.stdout.contains("no-healthy-host"),
        "{}",
        table.stdout
    );
    assert!(table.stdout.contains("CRITICAL, exit code 2"));
    assert_eq!(table.code, 2);
}

#[test]
fn referral_without_the_aa_bit_is_not_authoritative() {
    let run = scan(&["lame"], &[]);
    let report = run.json();
    assert_eq!(
        report["domains"][0]["servers"][0]["status"],
        "not-authoritative"
    );
    assert_eq!(findings(&report), vec![pair("server-failure", "critical")]);
    assert!(
        report["findings"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("lame")
    );
    assert_eq!(run.code, 3);
}

#[test]
fn hostile_target_names_reach_no_terminal_raw() {
    let json = scan(&["hostile"], &[]).json();
    let target = json["domains"][0]["records"][0]["target"]
        .as_str()
        .unwrap()
        .to_string();
    // The name is kept in DNS presentation form: control bytes escaped, nothing raw.
    assert!(!target.chars().any(char::is_control), "{target:?}");
    assert!(
        target.starts_with("evil\\027[31m\\010\\$\\(reboot\\)."),
        "{target:?}"
    );
    assert_eq!(codes(&json), ["no-address", "no-healthy-host"]);
    // The odd name was looked up as itself (and does not exist), not rejected as unparseable.
    let resolution = json["domains"][0]["targets"][0]["resolution_error"]
        .as_str()
        .unwrap();
    assert!(resolution.starts_with("NXDOMAIN"), "{resolution}");
    // Shown in zone-file syntax (decimal escapes), never hickory's octal `\033`.
    assert!(
        resolution.contains("evil\\027[31m\\010\\$\\(reboot\\).audit.test."),
        "{resolution}"
    );
    assert!(!resolution.contains("\\033"), "{resolution}");
    let table = scan(&["hostile"], &["--format", "table"]);
    assert!(
        !table.stdout.contains('\u{1b}'),
        "escape sequence reached the terminal output"
    );
}

#[test]
fn without_domains_the_machines_search_list_is_scanned() {
    // A private /etc/resolv.conf needs a mount namespace, which needs root (CI runs as root).
    if vlmcs_audit::support::fsio::current_uid() != 0 {
        eprintln!("skipped: needs root to give the scan a private /etc/resolv.conf");
        return;
    }
    let bed = bed();
    let resolv = bed.dir.join("resolv.conf");
    std::fs::write(
        &resolv,
        "nameserver 127.0.0.1\nsearch healthy.audit.test nodata.audit.test\n",
    )
    .unwrap();
    let output = std::process::Command::new("unshare")
        .args(["--mount", "sh", "-c", "mount --bind \"$1\" /etc/resolv.conf && exec \"$2\" scan --format json --timeout 1s --server \"$3\"", "sh"])
        .arg(&resolv)
        .arg(env!("CARGO_BIN_EXE_vlmcs-audit"))
        .arg(bed.primary.to_string())
        .output()
        .expect("unshare");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let report: Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("{e}: {stdout} {}", String::from_utf8_lossy(&output.stderr)));
    assert_eq!(
        crate::common::domain_names(&report),
        ["healthy.audit.test", "nodata.audit.test"]
    );
    // The machine's own domain has a healthy host; an empty later search domain is only info.
    assert_eq!(
        findings(&report),
        vec![pair("healthy", "ok"), pair("no-records", "info")]
    );
    assert_eq!(output.status.code(), Some(0));
}

#[test]
fn output_file_gets_json_by_default() {
    let path = bed().dir.join("report.json");
    let target = path.to_str().unwrap().to_string();
    let server = bed().primary.to_string();
    let run = run(&[
        "scan",
        "--timeout",
        "1s",
        "--server",
        &server,
        "--output",
        &target,
        "healthy.audit.test",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.is_empty());
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(codes(&report), ["healthy"]);
}

/// Prometheus' own linter (`promtool check metrics`, Debian package prometheus) finds nothing to
/// say about the exposition: HELP and TYPE for every family, units and suffixes as it wants them.
#[test]
fn promtool_finds_the_metrics_clean() {
    let run = scan(
        &["healthy", "closed", "notkms", "emu"],
        &["--format", "prometheus"],
    );
    assert!(
        run.stdout.contains("vlmcs_audit_findings"),
        "{}",
        run.stdout
    );
    let out = crate::common::run_with_input(
        std::process::Command::new("promtool").args(["check", "metrics"]),
        run.stdout.as_bytes(),
    );
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && said.trim().is_empty(),
        "promtool: {said}\n{}",
        run.stdout
    );
}

#[test]
fn prometheus_output_parses_with_a_real_parser() {
    let run = scan(&["healthy", "closed"], &["--format", "prometheus"]);
    let lines = run.stdout.lines().map(|l| Ok(l.to_string()));
    let scrape = prometheus_parse::Scrape::parse(lines).expect("valid exposition format");
    let value = |name: &str, domain: Option<&str>| -> f64 {
        let sample = scrape
            .samples
            .iter()
            .find(|s| s.metric == name && domain.is_none_or(|d| s.labels.get("domain") == Some(d)))
            .unwrap_or_else(|| panic!("no {name} in\n{}", run.stdout));
        match sample.value {
            prometheus_parse::Value::Gauge(v) | prometheus_parse::Value::Untyped(v) => v,
            ref other => panic!("{other:?}"),
        }
    };
    assert_eq!(
        value("vlmcs_audit_domain_healthy", Some("healthy.audit.test")),
        1.0
    );
    assert_eq!(
        value("vlmcs_audit_domain_dead", Some("closed.audit.test")),
        1.0
    );
    assert_eq!(value("vlmcs_audit_exit_code", None), 2.0);
    assert_eq!(value("vlmcs_audit_scan_complete", None), 1.0);
    assert!(value("vlmcs_audit_scan_timestamp_seconds", None) > 1.7e9);
    let up: Vec<_> = scrape
        .samples
        .iter()
        .filter(|s| s.metric == "vlmcs_audit_host_up")
        .collect();
    assert_eq!(up.len(), 2);
    assert!(
        up.iter()
            .any(|s| s.labels.get("target") == Some("kms1.audit.test."))
    );
    assert_eq!(run.code, 2);
    // An unscannable domain must not look like an empty one: a completeness gauge per domain.
    assert_eq!(
        value("vlmcs_audit_domain_complete", Some("healthy.audit.test")),
        1.0
    );
    let servers: Vec<_> = scrape
        .samples
        .iter()
        .filter(|s| s.metric == "vlmcs_audit_dns_server_up")
        .collect();
    assert_eq!(servers.len(), 2, "one per domain and server");
    assert!(
        servers
            .iter()
            .all(|s| s.labels.get("status") == Some("answer"))
    );
    let findings = |code: &str, severity: &str| {
        scrape
            .samples
            .iter()
            .find(|s| {
                s.metric == "vlmcs_audit_findings"
                    && s.labels.get("code") == Some(code)
                    && s.labels.get("severity") == Some(severity)
            })
            .map(|s| match s.value {
                prometheus_parse::Value::Gauge(v) | prometheus_parse::Value::Untyped(v) => v,
                _ => f64::NAN,
            })
    };
    assert_eq!(findings("dead-host", "warning"), Some(1.0));
    assert_eq!(findings("no-healthy-host", "critical"), Some(1.0));
    assert_eq!(findings("healthy", "ok"), Some(1.0));
    let build = scrape
        .samples
        .iter()
        .find(|s| s.metric == "vlmcs_audit_build_info")
        .expect("build info");
    assert_eq!(build.labels.get("version"), Some(env!("CARGO_PKG_VERSION")));
    // A domain that cannot be scanned: complete 0.
    let dead_server = std::net::SocketAddr::new(vlmcs_lab::host(bed().net, 99), 53).to_string();
    let run = crate::common::run(&[
        "scan",
        "--format",
        "prometheus",
        "--timeout",
        "1s",
        "--server",
        &dead_server,
        "healthy.audit.test",
    ]);
    assert!(
        run.stdout
            .contains("vlmcs_audit_domain_complete{domain=\"healthy.audit.test\"} 0"),
        "{}",
        run.stdout
    );
}

#[test]
fn json_lines_carry_one_finding_each() {
    let run = scan(&["healthy", "closed"], &["--format", "jsonl"]);
    let lines: Vec<Value> = run
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3, "{}", run.stdout);
    assert!(
        lines
            .iter()
            .all(|l| l["time"].is_string() && l["scan_exit_code"] == 2)
    );
    assert_eq!(lines[1]["code"], "dead-host");
}

#[test]
fn bind_ack_accepting_a_syntax_nobody_offered_is_not_kms() {
    let report = scan(&["wrongack"], &[]).json();
    let detail = only_domain(&report)["probes"][0]["detail"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(detail.contains("which was not offered there"), "{detail}");
}

#[test]
fn ipv6_only_target_on_loopback_is_probed_over_ipv6() {
    let report = scan(&["v6"], &[]).json();
    assert_eq!(codes(&report), ["nonstandard-port", "healthy"]);
    let healthy = &report["findings"][1];
    assert_eq!(healthy["address"], "::1");
    assert!(
        healthy["detail"].as_str().unwrap().contains("[::1]:"),
        "{healthy:#}"
    );
    assert_eq!(only_domain(&report)["targets"][0]["addresses"][0], "::1");
}

/// A server (or middlebox) that does not know EDNS, in front of `upstream`: a query with an OPT
/// record gets FORMERR with the header alone, as such servers answer; one without is carried
/// to `upstream` and back. Returns its address and how many FORMERRs it sent.
fn edns_intolerant_server(
    upstream: std::net::SocketAddr,
) -> (
    std::net::SocketAddr,
    std::sync::Arc<std::sync::atomic::AtomicUsize>,
) {
    use hickory_proto::op::{Message, MessageType, OpCode, ResponseCode};
    let formerrs = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = formerrs.clone();
    let address = udp_front(upstream, usize::MAX, move |bytes, forward| {
        let query = Message::from_vec(bytes).ok()?;
        if query.edns.is_none() {
            return forward(bytes);
        }
        counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut formerr = Message::new(query.metadata.id, MessageType::Response, OpCode::Query);
        formerr.metadata.response_code = ResponseCode::FormErr;
        formerr.to_vec().ok()
    });
    (address, formerrs)
}

#[test]
fn a_server_that_does_not_know_edns_is_asked_again_without_it() {
    let (server, formerrs) = edns_intolerant_server(bed().primary);
    let run = scan_at(server, &[], &["healthy.audit.test"]);
    let report = run.json();
    assert_eq!(
        findings(&report),
        vec![pair("healthy", "ok")],
        "{}",
        run.stdout
    );
    let domain = only_domain(&report);
    assert_eq!(domain["summary"]["complete"], true);
    assert_eq!(domain["zone"], "audit.test.");
    assert_eq!(domain["servers"][0]["status"], "answer");
    assert_eq!(run.code, 0, "{}", run.stderr);
    // Every question went out with EDNS first (RFC 6891 section 7: the fallback follows a
    // FORMERR without OPT, never precedes it).
    assert!(
        formerrs.load(std::sync::atomic::Ordering::Relaxed) >= 1,
        "no query carried EDNS"
    );
}

/// A domain controller that also recurses, in front of `upstream`: to the answer for
/// `_vlmcs._tcp.outzone.audit.test` it adds, in the additional section, an address of the
/// target from "its cache" — `stale`, where the host used to be.
fn server_adding_cached_addresses(
    upstream: std::net::SocketAddr,
    stale: std::net::IpAddr,
) -> std::net::SocketAddr {
    use hickory_proto::op::Message;
    use hickory_proto::rr::{Name, RData, Record, rdata::A};
    udp_front(upstream, usize::MAX, move |query, forward| {
        let reply = forward(query)?;
        let mut message = Message::from_vec(&reply).ok()?;
        let asked = message.queries.first()?.name().to_ascii();
        if asked != "_vlmcs._tcp.outzone.audit.test." {
            return Some(reply);
        }
        let std::net::IpAddr::V4(stale) = stale else {
            return Some(reply);
        };
        let target = Name::from_ascii("kms-out.other.test.").unwrap();
        message
            .additionals
            .push(Record::from_rdata(target, 300, RData::A(A(stale))));
        message.to_vec().ok()
    })
}

#[test]
fn addresses_from_outside_the_zone_are_looked_up_not_taken_from_the_answer() {
    let hole: std::net::IpAddr = lab_address(15).parse().unwrap();
    let server = server_adding_cached_addresses(bed().primary, hole);
    let run = scan_at(server, &[], &["outzone.audit.test", "healthy.audit.test"]);
    let report = run.json();
    let domains = report["domains"].as_array().unwrap();
    // The answer named the blackholed address; the target's own zone says kms1's.
    let out = &domains[0]["targets"][0];
    assert_eq!(out["target"], "kms-out.other.test.", "{out:#}");
    assert_eq!(out["source"], "lookup", "{out:#}");
    assert_eq!(out["addresses"], serde_json::json!([lab_address(11)]));
    assert_eq!(domains[0]["probes"][0]["outcome"], "kms-rpc");
    assert_eq!(
        findings(&report)[0],
        pair("healthy", "ok"),
        "{}",
        run.stdout
    );
    // A target in the zone still comes from the answer.
    assert_eq!(domains[1]["targets"][0]["source"], "additional");
}

/// A UDP relay to `upstream` that carries `answers` queries and then dies (its socket closes,
/// so later queries meet a closed port): an authoritative server going away mid-scan.
fn dying_dns_server(upstream: std::net::SocketAddr, answers: usize) -> std::net::SocketAddr {
    udp_front(upstream, answers, |query, forward| forward(query))
}

#[test]
fn a_server_dying_mid_scan_leaves_clear_findings_and_exit_3() {
    let server = dying_dns_server(bed().primary, 2).to_string();
    let run = run(&[
        "scan",
        "--format",
        "json",
        "--timeout",
        "1s",
        "--concurrency",
        "1",
        "--qps",
        "0",
        "--server",
        &server,
        "healthy.audit.test",
        "closed.audit.test",
        "nak.audit.test",
    ]);
    let report = run.json();
    let statuses: Vec<String> = report["domains"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["servers"][0]["status"].as_str().unwrap().to_string())
        .collect();
    assert!(statuses.contains(&"answer".to_string()), "{statuses:?}");
    assert!(
        statuses
            .iter()
            .any(|s| s == "network-error" || s == "timeout"),
        "{statuses:?}"
    );
    assert!(codes(&report).contains(&"server-failure".to_string()));
    assert_eq!(run.code, 3, "a domain no server answered for is unknown");
    assert!(report["duration_ms"].as_f64().unwrap() < 4000.0);
}

#[test]
fn a_server_that_never_answers_times_out_within_the_deadline() {
    // Bound, never read: queries vanish as into a firewall that drops them.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let address = silent.local_addr().unwrap().to_string();
    let started = std::time::Instant::now();
    let run = run(&[
        "scan",
        "--format",
        "json",
        "--timeout",
        "1s",
        "--server",
        &address,
        "healthy.audit.test",
    ]);
    let report = run.json();
    assert_eq!(
        report["domains"][0]["servers"][0]["status"], "timeout",
        "{:#}",
        report["domains"][0]["servers"][0]
    );
    assert_eq!(findings(&report), vec![pair("server-failure", "critical")]);
    assert_eq!(run.code, 3);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    drop(silent);
}

#[test]
fn a_truncated_answer_then_a_silent_tcp_server_is_a_tcp_timeout() {
    // Over UDP every answer is truncated (TC); over TCP the server accepts and never answers.
    let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = tcp.local_addr().unwrap();
    let udp = std::net::UdpSocket::bind(address).unwrap();
    std::thread::spawn(move || {
        let mut buf = [0u8; 1500];
        while let Ok((n, from)) = udp.recv_from(&mut buf) {
            // Header + question only: QR, AA and TC set, no records.
            let mut end = 12;
            while end < n && buf[end] != 0 {
                end += 1 + buf[end] as usize;
            }
            let end = (end + 5).min(n);
            let mut reply = buf[..end].to_vec();
            reply[2] = 0x80 | 0x04 | 0x02 | (buf[2] & 0x01);
            reply[3] = 0;
            reply[6..12].fill(0);
            let _ = udp.send_to(&reply, from);
        }
    });
    std::thread::spawn(move || {
        let mut open = Vec::new();
        while let Ok((stream, _)) = tcp.accept() {
            open.push(stream);
        }
    });
    let started = std::time::Instant::now();
    let report = run(&[
        "scan",
        "--format",
        "json",
        "--timeout",
        "1s",
        "--server",
        &address.to_string(),
        "healthy.audit.test",
    ])
    .json();
    let server = &report["domains"][0]["servers"][0];
    assert_eq!(server["status"], "timeout", "{server:#}");
    assert_eq!(server["transport"], "tcp", "{server:#}");
    assert_eq!(server["truncated_over_udp"], true, "{server:#}");
    let detail = server["detail"].as_str().unwrap();
    assert!(
        detail.contains("over TCP after a truncated UDP answer: no answer within 1s"),
        "{detail}"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(3));
}

#[test]
fn a_peer_that_resets_gets_the_same_verdict_every_time() {
    use vlmcs_audit::model::ProbeOutcome;
    use vlmcs_audit::probe::{ProbeOptions, probe};
    use vlmcs_lab::{Behavior, StandIn};
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let outcomes: Vec<ProbeOutcome> = runtime.block_on(async {
        let reset = StandIn::start("127.0.0.1:0".parse().unwrap(), Behavior::Reset)
            .await
            .unwrap();
        let options = ProbeOptions {
            timeout: std::time::Duration::from_secs(1),
            check_emulator: false,
        };
        let mut outcomes = Vec::new();
        // Sequential and concurrent, so the reset lands before and after connect() returns.
        for _ in 0..20 {
            outcomes.push(
                probe(
                    &name("reset.test."),
                    reset.address.ip(),
                    reset.address.port(),
                    options,
                )
                .await
                .outcome,
            );
        }
        let reset_name = name("reset.test.");
        let together = futures_util::future::join_all((0..40).map(|_| {
            probe(
                &reset_name,
                reset.address.ip(),
                reset.address.port(),
                options,
            )
        }))
        .await;
        outcomes.extend(together.into_iter().map(|p| p.outcome));
        outcomes
    });
    assert!(
        outcomes.iter().all(|o| *o == ProbeOutcome::Closed),
        "{outcomes:?}"
    );
}

/// A hostile authoritative server for `huge.test.`: UDP answers are truncated; over TCP,
/// `_vlmcs._tcp.huge.test.` has `count` SRV records (ports 1000 up) for `h.huge.test.`, which
/// is 127.0.0.1; anything else is NXDOMAIN.
fn hostile_huge_server(count: u16) -> std::net::SocketAddr {
    use hickory_proto::op::{Message, MessageType, ResponseCode};
    use hickory_proto::rr::rdata::{A, SRV};
    use hickory_proto::rr::{Name, RData, Record, RecordType};
    use std::io::{Read, Write};
    let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = tcp.local_addr().unwrap();
    let udp = std::net::UdpSocket::bind(address).unwrap();
    let answer = move |query: &[u8], over_tcp: bool| -> Vec<u8> {
        let query = Message::from_vec(query).unwrap();
        let mut reply = Message::new(
            query.metadata.id,
            MessageType::Response,
            query.metadata.op_code,
        );
        reply.metadata.authoritative = true;
        let question = query.queries[0].clone();
        let name = question.name().clone();
        reply.add_query(question.clone());
        // A one-letter target: SRV targets are never compressed, and 2,501 records must fit.
        let host = Name::from_ascii("h.").unwrap();
        if !over_tcp {
            reply.metadata.truncation = true;
        } else if name == Name::from_ascii("_vlmcs._tcp.huge.test.").unwrap() {
            // By hand: hickory's encoder stops short of this many records. Each answer points
            // at the question's name (offset 12).
            reply.add_answer(Record::from_rdata(
                name.clone(),
                60,
                RData::SRV(SRV::new(0, 0, 1000, host.clone())),
            ));
            let mut wire = reply.to_vec().unwrap();
            let one = wire.split_off(wire.len() - 21);
            assert_eq!(&one[..2], &[0xc0, 0x0c]);
            for i in 0..count {
                let mut rr = one.clone();
                rr[16..18].copy_from_slice(&(1000 + i).to_be_bytes());
                wire.extend_from_slice(&rr);
            }
            wire[6..8].copy_from_slice(&count.to_be_bytes());
            return wire;
        } else if name == host && question.query_type() == RecordType::A {
            reply.add_answer(Record::from_rdata(host, 60, RData::A(A::new(127, 0, 0, 1))));
        } else if name != host {
            reply.metadata.response_code = ResponseCode::NXDomain;
        }
        reply.to_vec().unwrap()
    };
    let udp_answer = answer;
    std::thread::spawn(move || {
        let mut buf = [0u8; 1500];
        while let Ok((n, from)) = udp.recv_from(&mut buf) {
            let _ = udp.send_to(&udp_answer(&buf[..n], false), from);
        }
    });
    std::thread::spawn(move || {
        while let Ok((mut stream, _)) = tcp.accept() {
            std::thread::spawn(move || {
                let mut len = [0u8; 2];
                while stream.read_exact(&mut len).is_ok() {
                    let mut query = vec![0u8; u16::from_be_bytes(len) as usize];
                    if stream.read_exact(&mut query).is_err() {
                        return;
                    }
                    let reply = answer(&query, true);
                    let framed = [&(reply.len() as u16).to_be_bytes()[..], &reply].concat();
                    if stream.write_all(&framed).is_err() {
                        return;
                    }
                }
            });
        }
    });
    address
}

#[test]
fn a_huge_rrset_is_bounded_and_said_to_be() {
    let server = hostile_huge_server(2_501);
    let started = std::time::Instant::now();
    let run = scan_at(server, &[], &["huge.test"]);
    let report = run.json();
    let observed = &report["domains"][0]["servers"][0];
    assert_eq!(observed["records_answered"], 2_501, "{observed:#}");
    assert_eq!(
        report["domains"][0]["records"].as_array().unwrap().len(),
        vlmcs_audit::audit::discover::MAX_RRSET
    );
    let said = |needle: &str| {
        report["findings"].as_array().unwrap().iter().any(|f| {
            f["code"] == "server-failure" && f["detail"].as_str().unwrap().contains(needle)
        })
    };
    assert!(
        said("answered 2501 SRV records"),
        "a finding says the RRset was cut"
    );
    // This server has no SOA for its zone: the domain is not completely scanned, and says so.
    assert!(said("could not be learnt"), "{report:#}");
    assert_eq!(report["complete"], false);
    assert_eq!(run.code, 3);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(6),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn authorization_goes_by_identity_not_by_the_spelling_of_the_target() {
    let run = scan(&["aliases"], &["--allow", "kms1.audit.test"]);
    let report = run.json();
    let by_target = |code: &str| -> Vec<String> {
        let mut targets: Vec<String> = report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["code"] == code)
            .map(|f| f["target"].as_str().unwrap().to_string())
            .collect();
        targets.sort();
        targets
    };
    // The CNAME and the other A name reach kms1 itself: healthy, and said to be aliases.
    assert_eq!(
        by_target("healthy"),
        [
            "alias.audit.test.",
            "kms1-other.audit.test.",
            "kms1.audit.test."
        ]
    );
    assert_eq!(
        by_target("host-alias"),
        ["alias.audit.test.", "kms1-other.audit.test."]
    );
    // Only the host on an address of its own is unauthorized; the domain has a healthy host.
    assert_eq!(by_target("unauthorized-host"), ["rogue.audit.test."]);
    assert!(by_target("no-healthy-host").is_empty());
    let verdicts: Vec<(String, String)> = report["domains"][0]["verdicts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["target"].as_str().unwrap().to_string(),
                v["status"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        verdicts,
        [
            ("kms1.audit.test.".to_string(), "healthy".to_string()),
            ("kms1-other.audit.test.".into(), "healthy".into()),
            ("alias.audit.test.".into(), "healthy".into()),
            ("rogue.audit.test.".into(), "unauthorized-host".into()),
        ]
    );
    assert_eq!(run.code, 2, "the rogue host is critical");
    // A host expected here and published only under another name is not missing.
    let report = scan_with_config(
        "expected-alias.yaml",
        "domains:\n  - name: cname.audit.test\n    kms_hosts: [kms1.audit.test]\n",
    )
    .json();
    let codes = codes(&report);
    assert!(codes.contains(&"host-alias".to_string()), "{codes:?}");
    assert!(
        !codes.contains(&"authorized-host-missing".to_string()),
        "{codes:?}"
    );
}

#[test]
fn an_allowlisted_name_that_does_not_resolve_is_said_to_be_stale() {
    // A global entry: a note for the whole scan.
    let report = scan(
        &["healthy"],
        &[
            "--allow",
            "kms1.audit.test",
            "--allow",
            "retired.audit.test",
        ],
    )
    .json();
    let notes = report["notes"].to_string();
    assert!(
        notes.contains("retired.audit.test does not resolve") && notes.contains("NXDOMAIN"),
        "{notes}"
    );
    // A host expected in one domain (`kms_hosts`): a warning in that domain.
    let run = scan_with_config(
        "stale-allowlist.yaml",
        "domains:\n  - name: healthy.audit.test\n    kms_hosts: [kms1.audit.test, retired.audit.test]\n",
    );
    let report = run.json();
    let stale = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["code"] == "allowlist-unresolved")
        .expect("a finding for the stale entry");
    assert_eq!(stale["severity"], "warning");
    assert_eq!(stale["target"], "retired.audit.test.");
}

/// A JSON scan of the bed's primary with the config `yaml` (written to `name` in the bed).
fn scan_with_config(name: &str, yaml: &str) -> crate::common::Run {
    let bed = bed();
    let config = bed.dir.join(name);
    std::fs::write(&config, yaml).unwrap();
    crate::common::run(&[
        "scan",
        "--format",
        "json",
        "--timeout",
        "1s",
        "--server",
        &bed.primary.to_string(),
        "--config",
        config.to_str().unwrap(),
    ])
}

#[test]
fn csv_output_reads_back_with_a_real_csv_parser() {
    let csv = scan(&["hostile", "closed", "healthy"], &["--format", "csv"]);
    let json = scan(&["hostile", "closed", "healthy"], &[]).json();
    // Python's csv module, as a spreadsheet would read it: one row per finding.
    let out = crate::common::run_with_input(
        std::process::Command::new("python3").args([
            "-c",
            "import csv,sys,json; rows=list(csv.reader(sys.stdin, strict=True)); print(json.dumps(rows))",
        ]),
        csv.stdout.as_bytes(),
    );
    assert!(out.status.success());
    let rows: Vec<Vec<String>> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        rows[0],
        [
            "domain", "code", "severity", "target", "port", "address", "detail"
        ]
    );
    let findings = json["findings"].as_array().unwrap();
    assert_eq!(rows.len() - 1, findings.len());
    for (row, finding) in rows[1..].iter().zip(findings) {
        assert_eq!(row[1], finding["code"].as_str().unwrap());
        // Targets come from DNS (the hostile one has escapes): read back unchanged.
        assert_eq!(row[3], finding["target"].as_str().unwrap_or_default());
    }
    assert_eq!(csv.code, json["exit_code"].as_i64().unwrap() as i32);
}

/// Every renderer sees the destination's own error: a reader that goes away (`| head -c1`)
/// ends the scan quietly with the scan's exit code, a full disk is an error (exit 3) that says
/// so.
#[test]
fn every_format_stops_quietly_on_a_closed_pipe_and_loudly_on_a_full_disk() {
    use std::process::Command;
    let bed = bed();
    let server = bed.primary.to_string();
    for format in [
        "json",
        "yaml",
        "csv",
        "table",
        "jsonl",
        "prometheus",
        "nagios",
    ] {
        let args = [
            "scan",
            "--timeout",
            "1s",
            "--server",
            &server,
            "--format",
            format,
            "big.audit.test",
            "aliases.audit.test",
            "healthy.audit.test",
        ];
        // The encoders that wrap the writer's error in their own, with output larger than a
        // pipe holds: the closed pipe is seen mid-document.
        if matches!(format, "json" | "yaml") {
            let whole = Command::new(env!("CARGO_BIN_EXE_vlmcs-audit"))
                .args(args)
                .output()
                .unwrap();
            assert!(
                whole.stdout.len() > 1 << 16,
                "{format}: too small to fill a pipe"
            );
            let output = crate::common::run_into_closed_pipe(&args);
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert!(stderr.is_empty(), "{format}: {stderr}");
            assert_eq!(
                output.status.code(),
                whole.status.code(),
                "{format}: {stderr}"
            );
        }

        let full = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap();
        let output = Command::new(env!("CARGO_BIN_EXE_vlmcs-audit"))
            .args(args)
            .stdout(full)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(3), "{format}: {stderr}");
        assert!(
            stderr.contains("No space left on device"),
            "{format}: {stderr}"
        );
    }
}

/// An endpoint is probed once per scan, whichever domains and names point at it: three
/// domains, one of them under two names, cost the one bind (with the emulator tells) once.
#[test]
fn an_endpoint_is_probed_once_per_scan_for_every_record_that_points_at_it() {
    use std::sync::atomic::Ordering;
    let counter = &bed().shared_connections;
    let before = counter.load(Ordering::SeqCst);
    let report = scan(&["shared1", "shared2", "shared3"], &[]).json();
    assert_eq!(counter.load(Ordering::SeqCst) - before, 1, "{report:#}");
    let probes: Vec<&Value> = report["domains"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|d| d["probes"].as_array().unwrap())
        .collect();
    assert_eq!(probes.len(), 4, "one per (domain, name)");
    assert!(probes.iter().all(|p| p["outcome"] == "kms-rpc"));
    // Each record keeps its own name; the observation is the endpoint's.
    assert!(
        probes
            .iter()
            .any(|p| p["target"] == format!("shared-too.{}", common::ZONE))
    );
    let before = counter.load(Ordering::SeqCst);
    scan(&["shared1", "shared2"], &["--no-emulator-check"]);
    assert_eq!(counter.load(Ordering::SeqCst) - before, 1);
}

/// What a [`lossy_relay`] loses.
#[derive(Clone, Copy)]
enum Loss {
    /// Every other query it receives.
    EveryOtherQuery,
    /// Each reply with this probability, in percent (a seeded, reproducible sequence).
    RepliesPercent(u64),
}

/// A UDP relay in front of `upstream` that loses datagrams as `loss` says. Returns its address
/// and how many queries it has received (resends included).
fn lossy_relay(
    upstream: std::net::SocketAddr,
    loss: Loss,
) -> (
    std::net::SocketAddr,
    std::sync::Arc<std::sync::atomic::AtomicUsize>,
) {
    let front = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    udp_relay_on(front, upstream, loss)
}

/// A relay for UDP and TCP on one address in front of `upstream` (UDP passed as is, TCP piped
/// byte for byte); returns its address and how many TCP connections it accepted.
fn counting_relay(
    upstream: std::net::SocketAddr,
) -> (
    std::net::SocketAddr,
    std::sync::Arc<std::sync::atomic::AtomicUsize>,
) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = tcp.local_addr().unwrap();
    let udp = std::net::UdpSocket::bind(address).unwrap();
    udp_relay_on(udp, upstream, Loss::RepliesPercent(0));
    let connections = std::sync::Arc::new(AtomicUsize::new(0));
    let counter = connections.clone();
    std::thread::spawn(move || {
        for client in tcp.incoming().flatten() {
            counter.fetch_add(1, Ordering::SeqCst);
            let Ok(server) = std::net::TcpStream::connect(upstream) else {
                continue;
            };
            let (mut c2, mut s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
            let (mut c, mut s) = (client, server);
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut c, &mut s);
                let _ = s.shutdown(std::net::Shutdown::Write);
            });
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut s2, &mut c2);
            });
        }
    });
    (address, connections)
}

/// Relays UDP arriving on `front` to `upstream` and back, losing what `loss` says.
fn udp_relay_on(
    front: std::net::UdpSocket,
    upstream: std::net::SocketAddr,
    loss: Loss,
) -> (
    std::net::SocketAddr,
    std::sync::Arc<std::sync::atomic::AtomicUsize>,
) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let address = front.local_addr().unwrap();
    let seen = std::sync::Arc::new(AtomicUsize::new(0));
    let counter = seen.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        let mut random = 0x2545_f491_4f6c_dd1du64;
        let mut lose_reply = move || {
            random ^= random << 13;
            random ^= random >> 7;
            random ^= random << 17;
            matches!(loss, Loss::RepliesPercent(p) if random % 100 < p)
        };
        // One upstream socket per client address, so replies find their way back.
        let mut backs: std::collections::HashMap<std::net::SocketAddr, std::net::UdpSocket> =
            std::collections::HashMap::new();
        front
            .set_read_timeout(Some(std::time::Duration::from_millis(1)))
            .unwrap();
        loop {
            while let Ok((n, client)) = front.recv_from(&mut buf) {
                let number = counter.fetch_add(1, Ordering::SeqCst);
                if matches!(loss, Loss::EveryOtherQuery) && number.is_multiple_of(2) {
                    continue;
                }
                let back = backs.entry(client).or_insert_with(|| {
                    let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
                    s.connect(upstream).unwrap();
                    s.set_nonblocking(true).unwrap();
                    s
                });
                let _ = back.send(&buf[..n]);
            }
            for (client, back) in &backs {
                while let Ok(n) = back.recv(&mut buf) {
                    if !lose_reply() {
                        let _ = front.send_to(&buf[..n], client);
                    }
                }
            }
        }
    });
    (address, seen)
}

/// Half the queries lost: every domain still completes, through resends on the same channel
/// (about twice the queries, not a timeout per loss).
#[test]
fn a_server_that_answers_every_other_query_still_gives_complete_results() {
    use std::sync::atomic::Ordering;
    let (relay, seen) = lossy_relay(bed().primary, Loss::EveryOtherQuery);
    let domains = [
        "healthy", "notkms", "closed", "dup", "cname", "nodata", "emu", "rpc",
    ];
    let names: Vec<String> = domains
        .iter()
        .map(|d| format!("{d}.{}", common::ZONE))
        .collect();
    let started = std::time::Instant::now();
    let report = scan_through_server(relay, &names);
    assert_eq!(report["complete"], true, "{report:#}");
    for d in report["domains"].as_array().unwrap() {
        assert!(
            d["servers"]
                .as_array()
                .unwrap()
                .iter()
                .all(|s| s["status"] != "timeout"),
            "{d:#}"
        );
    }
    let direct = scan(&domains, &["--no-emulator-check"]).json();
    for (a, b) in report["domains"]
        .as_array()
        .unwrap()
        .iter()
        .zip(direct["domains"].as_array().unwrap())
    {
        assert_eq!(a["records"], b["records"], "{}", a["domain"]);
    }
    // Resent at the RTT, not at the 2 s timeout: the whole scan stays well under a timeout
    // per lost query.
    assert!(
        started.elapsed() < std::time::Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    let queries = seen.load(Ordering::SeqCst);
    assert!(queries >= 2 * domains.len(), "{queries}");
}

/// The text of zone `many.test.` with `count` domains, each with one SRV record for `kms1`
/// (the bed's), and the domains' names.
fn many_domains_zone(count: usize) -> (String, Vec<String>) {
    use std::fmt::Write as _;
    let kms1 = vlmcs_lab::host(bed().net, 11);
    let mut body = format!("kms1 IN A {kms1}\n");
    let mut domains = Vec::new();
    for i in 0..count {
        let _ = writeln!(body, "_vlmcs._tcp.d{i:05} IN SRV 0 0 1688 kms1");
        domains.push(format!("d{i:05}.many.test"));
    }
    (body, domains)
}

/// [`many_domains_zone`] on a BIND of its own; returns its server.
fn many_domains_server(count: usize) -> (std::net::SocketAddr, Vec<String>) {
    static SERVERS: std::sync::Mutex<Vec<vlmcs_lab::Named>> = std::sync::Mutex::new(Vec::new());
    let (body, domains) = many_domains_zone(count);
    let named = zone_server("many.test.", &body, &format!("many-{count}"));
    let address = named.address;
    SERVERS.lock().unwrap().push(named);
    (address, domains)
}

/// A scan config for `domains` on `server`, probes without the emulator binds (what these loss
/// tests count is DNS).
fn many_domains_config(server: std::net::SocketAddr, domains: &[String]) -> std::path::PathBuf {
    let config = common::scratch("many-config").join(format!("many-{server}.yaml"));
    let mut text = format!("servers: [\"{server}\"]\ncheck_emulator: false\ndomains:\n");
    for d in domains {
        text.push_str(&format!("  - {d}\n"));
    }
    std::fs::write(&config, text).unwrap();
    config
}

/// How many domains of a JSON report are incomplete.
fn incomplete(report: &Value) -> usize {
    report["domains"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["summary"]["complete"] != true)
        .count()
}

/// What issue 12 asks of a scan under loss, from (incomplete domains, queries the server was
/// sent) at 0 %, 2 % and 20 % of replies lost: none incomplete at 2 %, at most 0.5 % at 20 %,
/// and resends cost at most 1.5 times the queries of the loss-free run.
fn assert_loss_is_absorbed(domains: usize, runs: [(usize, usize); 3]) {
    let [
        (clean_incomplete, clean_queries),
        (at_2, queries_2),
        (at_20, queries_20),
    ] = runs;
    assert_eq!(clean_incomplete, 0);
    // One SRV query per domain and one SOA for the zone they share.
    assert_eq!(clean_queries, domains + 1);
    assert_eq!(at_2, 0, "2 % loss");
    assert!(
        queries_2 * 10 <= clean_queries * 15,
        "2 %: {queries_2} vs {clean_queries}"
    );
    assert!(at_20 * 200 <= domains, "20 %: {at_20} incomplete");
    assert!(
        queries_20 * 10 <= clean_queries * 15,
        "20 %: {queries_20} vs {clean_queries}"
    );
    eprintln!("loss-free {clean_queries} queries; 20 %: {queries_20} queries, {at_20} incomplete");
}

/// 1,000 domains through a relay that loses replies (counts, not times).
#[test]
fn lost_replies_are_resent_without_losing_domains_or_flooding_the_server() {
    use std::sync::atomic::Ordering;
    let (server, domains) = many_domains_server(1000);
    let scan_through = |loss: Loss| {
        let (relay, seen) = lossy_relay(server, loss);
        let config = many_domains_config(relay, &domains);
        // 4 s: the test suite shares two cores with a Samba DC being provisioned, and a relay
        // thread held off the CPU for two seconds is not what this test measures.
        let report = run(&[
            "scan",
            "--config",
            config.to_str().unwrap(),
            "--timeout",
            "4s",
            "--format",
            "json",
        ])
        .json();
        (incomplete(&report), seen.load(Ordering::SeqCst))
    };
    let runs = [0, 2, 20].map(|rate| scan_through(Loss::RepliesPercent(rate)));
    assert_loss_is_absorbed(domains.len(), runs);
}

/// The same 1,000 domains with the loss made by the kernel: BIND and the scan in a network
/// namespace of this test's own, where an nftables rule drops the server's replies at random
/// (`numgen`) and counts the queries it is sent. Root only.
#[test]
fn replies_dropped_by_the_kernel_are_resent_without_losing_domains() {
    if vlmcs_audit::support::fsio::current_uid() != 0 {
        eprintln!("skipped: a network namespace and nftables rules need root");
        return;
    }
    let netns = format!("vlmcs-loss-{}", std::process::id());
    vlmcs_lab::netns::create(&netns).unwrap();
    let (body, domains) = many_domains_zone(1000);
    let dir = common::scratch("loss-netns");
    let server = common::serve_forever_in(Some(netns.clone()), move || async move {
        let zone = vlmcs_lab::Zone::new("many.test.", vlmcs_lab::zone_text("many.test.", 1, &body));
        let named = vlmcs_lab::Named::start(&dir, vlmcs_lab::LOOPBACK, &[zone], "").await?;
        Ok((named.address, named))
    });
    let config = many_domains_config(server, &domains);
    let in_netns = |program: &str| vlmcs_lab::netns::command(&netns, program);
    let nft = |script: &str| {
        let output = common::run_with_input(in_netns("nft").args(["-f", "-"]), script.as_bytes());
        assert!(
            output.status.success(),
            "nft: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    };
    let port = server.port();
    let scan_with_loss = |rate: u32| {
        nft(&format!(
            "table ip loss {{\n  chain out {{\n    type filter hook output priority -1; policy accept;\n    udp dport {port} counter\n    udp sport {port} numgen random mod 100 < {rate} drop\n  }}\n}}\n"
        ));
        let output = in_netns(env!("CARGO_BIN_EXE_vlmcs-audit"))
            .args(["scan", "--config", config.to_str().unwrap()])
            .args(["--timeout", "4s", "--format", "json"])
            .output()
            .unwrap();
        let report: Value = serde_json::from_slice(&output.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&output.stderr)));
        let listed = in_netns("nft")
            .args(["list", "table", "ip", "loss"])
            .output()
            .unwrap();
        let listed = String::from_utf8_lossy(&listed.stdout);
        let queries: usize = listed
            .split("packets ")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no counter in:\n{listed}"));
        nft("delete table ip loss\n");
        (incomplete(&report), queries)
    };
    let runs = [0, 2, 20].map(scan_with_loss);
    assert_loss_is_absorbed(domains.len(), runs);
}

/// Answers too big for UDP go over TCP, and every such query of a scan shares one pipelined
/// connection to the server: six domains with 60 records each, one TCP connection.
#[test]
fn truncated_answers_share_one_tcp_connection_per_server() {
    use std::fmt::Write as _;
    use std::sync::atomic::Ordering;
    let kms1 = vlmcs_lab::host(bed().net, 11);
    let mut body = format!("kms1 IN A {kms1}\n");
    let domains: Vec<String> = (0..6).map(|i| format!("wide{i}.wide.test")).collect();
    for i in 0..6 {
        for r in 0..60 {
            let _ = writeln!(body, "_vlmcs._tcp.wide{i} IN SRV {r} 0 1688 kms1");
        }
    }
    let named = zone_server("wide.test.", &body, "wide");
    let (relay, connections) = counting_relay(named.address);
    let report = scan_through_server(relay, &domains);
    for d in report["domains"].as_array().unwrap() {
        assert_eq!(
            d["records"].as_array().unwrap().len(),
            60,
            "{}",
            d["domain"]
        );
        assert_eq!(d["servers"][0]["transport"], "tcp");
        assert_eq!(d["servers"][0]["truncated_over_udp"], true);
    }
    assert_eq!(report["complete"], true);
    assert_eq!(
        connections.load(Ordering::SeqCst),
        1,
        "one shared connection"
    );
    drop(named);
}

/// The JSON contract: every finding's target is a name with its trailing dot, and a server
/// failure names its server in the address and port fields.
#[test]
fn finding_targets_carry_their_dot_and_server_failures_name_their_server() {
    let bed = bed();
    let report = scan(&["aliases", "disagree", "healthy"], &[]).json();
    for f in report["findings"].as_array().unwrap() {
        if let Some(target) = f["target"].as_str() {
            assert!(target.ends_with('.'), "{f:#}");
        }
    }
    // Two servers, one of them not answering for this name: its address and port are fields.
    let dead = std::net::SocketAddr::new(vlmcs_lab::host(bed.net, 99), 53);
    let run = run(&[
        "scan",
        "--format",
        "json",
        "--timeout",
        "1s",
        "--server",
        &bed.primary.to_string(),
        "--server",
        &dead.to_string(),
        "healthy.audit.test",
    ]);
    let report = run.json();
    let failure = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["code"] == "server-failure")
        .expect("the dead server is a finding");
    assert_eq!(failure["address"], dead.ip().to_string());
    assert_eq!(failure["port"], 53);
}

/// `--format nagios` on 200 domains with problems: one status line naming the worst, perfdata
/// in the plugin-guidelines format, a few lines of detail, at most 4 KB, the scan's exit code.
#[test]
fn nagios_output_stays_small_and_well_formed_however_many_domains() {
    use std::fmt::Write as _;
    let net = bed().net;
    let mut body = String::new();
    for (name, n) in [("kms1", 11), ("closed", 14), ("rogue", 23)] {
        let _ = writeln!(body, "{name} IN A {}", vlmcs_lab::host(net, n));
    }
    let mut domains = Vec::new();
    for i in 0..200 {
        let target = ["kms1", "closed", "rogue"][i % 3];
        let _ = writeln!(body, "_vlmcs._tcp.n{i:03} IN SRV 0 0 1688 {target}");
        domains.push(format!("n{i:03}.nagios.test"));
    }
    let named = zone_server("nagios.test.", &body, "nagios");
    let server = named.address.to_string();
    let mut argv = vec![
        "scan",
        "--timeout",
        "1s",
        "--server",
        server.as_str(),
        "--allow",
        "kms1.nagios.test",
        "--no-emulator-check",
        "--format",
        "nagios",
    ];
    argv.extend(domains.iter().map(String::as_str));
    let out = run(&argv);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stdout.len() <= 4096, "{} bytes", out.stdout.len());
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert!(lines.len() <= 11, "{lines:#?}");
    let (status, perfdata) = lines[0].split_once(" | ").expect("perfdata after ` | `");
    assert_eq!(
        status,
        "VLMCS CRITICAL - 133 domain(s) critical: n001 (no-healthy-host), n002 (unauthorized-host rogue), n004 (no-healthy-host), and 130 more"
    );
    // 'label'=value[UOM];[warn];[crit];[min];[max], space separated.
    let values: std::collections::BTreeMap<&str, &str> = perfdata
        .split(' ')
        .map(|item| {
            let (label, rest) = item.split_once('=').expect("label=value");
            assert!(
                label.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
                "{label}"
            );
            (label, rest.split(';').next().unwrap())
        })
        .collect();
    assert_eq!(values["domains"], "200");
    assert_eq!(values["records"], "200");
    assert_eq!(values["healthy"], "67");
    assert_eq!(values["dead"], "67");
    assert_eq!(values["unauthorized"], "66");
    assert!(values["duration"].ends_with('s'));
    assert!(lines[1].starts_with("[critical] "), "{}", lines[1]);
    drop(named);
}

/// The shipped schema (docs/report.schema.json) holds every report the tests read (checked in
/// `Run::json`), and it does catch a broken contract.
#[test]
fn the_report_schema_catches_a_broken_contract() {
    let report = scan(&["healthy", "closed"], &[]).json();
    assert!(common::schema_errors(&report).is_empty());
    let mut no_dot = report.clone();
    no_dot["findings"][0]["target"] = "kms1.audit.test".into();
    assert!(!common::schema_errors(&no_dot).is_empty());
    let mut bad_code = report.clone();
    bad_code["exit_code"] = 7.into();
    assert!(!common::schema_errors(&bad_code).is_empty());
    let mut missing = report;
    missing["domains"][0]
        .as_object_mut()
        .unwrap()
        .remove("summary");
    assert!(!common::schema_errors(&missing).is_empty());
}

/// A BIND of its own serving `origin` with `body` (SOA and NS added), files under `dir`.
fn zone_server(origin: &str, body: &str, dir: &str) -> vlmcs_lab::Named {
    let zone = vlmcs_lab::Zone::new(origin, vlmcs_lab::zone_text(origin, 1, body));
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(vlmcs_lab::Named::start(
            &common::scratch(dir),
            vlmcs_lab::LOOPBACK,
            &[zone],
            "",
        ))
        .unwrap()
}

/// `scan --format json` of `domains` (full names) against `server` only, 2 s timeout, without
/// the emulator binds.
fn scan_through_server(server: std::net::SocketAddr, domains: &[String]) -> Value {
    let names: Vec<&str> = domains.iter().map(String::as_str).collect();
    scan_at(server, &["--no-emulator-check"], &names).json()
}
