//! What Active Directory says about a domain's `_vlmcs._tcp` node (`scan --ad`), judged: who
//! registered each record and when, whether a broad group may publish hosts there, and which
//! dynamic records their hosts stopped refreshing. Only what was read is judged: an unreadable
//! descriptor or aging setting leaves its findings out (the node's notes say so).

use std::time::Duration;

use super::Findings;
use crate::ad::node::{AdNode, AdRecord, ZoneAging};
use crate::model::{DomainObservation, DomainPolicy, FindingCode, Severity};

/// A KMS host re-registers every 24 hours; with aging on, a refresh inside the no-refresh
/// interval leaves the stamp, so a live host's stamp is at most the interval plus a day old.
/// One more day of slack before calling it stale.
const STALE_SLACK: Duration = Duration::from_secs(48 * 3600);

pub(super) fn findings(obs: &DomainObservation, policy: &DomainPolicy, out: &mut Findings<'_>) {
    let Some(node) = &obs.ad else { return };
    let Some(dn) = &node.node_dn else { return };
    for grant in &node.broad_grants {
        out.about_domain(
            FindingCode::OpenNode,
            Severity::Warning,
            format!(
                "the _vlmcs._tcp node in AD zone {} ({dn}) gives {} ({}) these rights: {}{}. Any machine in that group that gets a KMS host key (CSVLK) by mistake publishes itself here, and clients are sent to it; give the rights to the KMS hosts' group instead",
                node.zone,
                grant.group,
                grant.sid,
                grant.rights.join(", "),
                if grant.inherited {
                    " — inherited from the zone (or above), so it is to be changed there"
                } else {
                    ""
                },
            ),
        );
    }
    for record in &node.records {
        registration(node, record, policy, out);
        if let Some(aging) = node.aging {
            stale(node, aging, record, out);
        }
    }
}

/// Who registered the record and when (info), with the rogue registration's fingerprint: a
/// record naming a host that is neither the node owner's nor authorized.
fn registration(node: &AdNode, record: &AdRecord, policy: &DomainPolicy, out: &mut Findings<'_>) {
    let target = record.target.to_string();
    let when = match (record.stamp, node.aging) {
        (None, _) => "static: added by hand (or, on Samba, registered into a node that already held a static record); AD keeps no registration time for it and never ages it out".to_string(),
        (Some(stamp), Some(ZoneAging { enabled: true, no_refresh_hours, .. })) => format!(
            "registered dynamically; stamped {stamp} (zone {} has aging on: the stamp moves at the first refresh after its {no_refresh_hours}-hour no-refresh interval)",
            node.zone
        ),
        (Some(stamp), Some(_)) => format!(
            "registered dynamically, first at {stamp} (zone {} has aging off, so refreshes never move the stamp: it says when the record was first registered, not whether its host still refreshes it)",
            node.zone
        ),
        (Some(stamp), None) => format!("registered dynamically; stamped {stamp}"),
    };
    let whose = match &record.host_account {
        Some(account) => format!("; it names the host of the computer account {account}"),
        None => "; no computer account of the domain has this host name".to_string(),
    };
    let owner_host = node.owner.as_ref().and_then(|o| o.host.as_deref());
    let host = crate::model::normalize_name(&target);
    let owner = match &node.owner {
        Some(owner) => format!("; the node's owner is {owner}"),
        None => String::new(),
    };
    let authorized = policy
        .authorized
        .as_ref()
        .map(|_| policy.allows_name(&host));
    let fingerprint = if record.stamp.is_some()
        && node.owner.is_some()
        && owner_host != Some(host.as_str())
        && authorized == Some(false)
    {
        ". Neither the node owner's host nor an authorized host: the fingerprint of a machine that registered itself as a KMS host"
    } else {
        ""
    };
    out.push(
        FindingCode::Registration,
        Severity::Info,
        Some(target),
        Some(record.port),
        None,
        format!("{when}{whose}{owner}{fingerprint}"),
    );
}

/// A dynamic record older than the zone's no-refresh interval plus two days, in a zone with
/// aging on: its host stopped refreshing it. With aging off the stamp never moves, so nothing
/// is stale by it.
fn stale(node: &AdNode, aging: ZoneAging, record: &AdRecord, out: &mut Findings<'_>) {
    let Some(stamp) = record.stamp else { return };
    if !aging.enabled {
        return;
    }
    let Ok(age) = node.read_at.0.duration_since(stamp.0) else {
        return;
    };
    let limit = Duration::from_secs(u64::from(aging.no_refresh_hours) * 3600) + STALE_SLACK;
    if age <= limit {
        return;
    }
    out.push(
        FindingCode::StaleRegistration,
        Severity::Warning,
        Some(record.target.to_string()),
        Some(record.port),
        None,
        format!(
            "not refreshed since {stamp} ({:.1} days before the scan): zone {} has aging on with a {}-hour no-refresh interval and a KMS host refreshes its record every 24 hours, so its host stopped registering (gone, renamed, or no longer a KMS host); scavenging deletes the record once the {}-hour refresh interval has passed too",
            age.as_secs_f64() / 86_400.0,
            node.zone,
            aging.no_refresh_hours,
            aging.refresh_hours,
        ),
    );
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;
    use crate::ad::node::{BroadGrant, Principal};
    use crate::model::{Finding, HostPattern};
    use crate::support::time::Timestamp;

    const READ_AT: u64 = 1_800_000_000;

    fn account(name: &str) -> Principal {
        Principal {
            sid: format!("S-1-5-21-1-2-3-{}", name.len()),
            account: Some(format!("{name}$")),
            host: Some(format!("{name}.corp.example")),
        }
    }

    fn record(host: &str, hours_old: Option<u64>) -> AdRecord {
        AdRecord {
            priority: 0,
            weight: 0,
            port: 1688,
            target: format!("{host}.corp.example.").as_str().into(),
            ttl: 3600,
            stamp: hours_old
                .map(|h| Timestamp(UNIX_EPOCH + Duration::from_secs(READ_AT - h * 3600))),
            host_account: Some(account(host)),
        }
    }

    fn node(aging: Option<ZoneAging>, records: Vec<AdRecord>) -> AdNode {
        AdNode {
            zone: "corp.example".into(),
            node_dn: Some("DC=_vlmcs._tcp,DC=corp.example,CN=MicrosoftDNS,DC=DomainDnsZones,DC=corp,DC=example".into()),
            read_at: Timestamp(UNIX_EPOCH + Duration::from_secs(READ_AT)),
            aging,
            owner: Some(account("kms1")),
            broad_grants: Vec::new(),
            records,
            hosts_group: None,
            notes: Vec::new(),
        }
    }

    fn judge(node: AdNode, policy: &DomainPolicy) -> Vec<Finding> {
        let mut obs: DomainObservation = serde_json::from_value(serde_json::json!({
            "domain": "corp.example", "query_name": "_vlmcs._tcp.corp.example.", "zone": null,
            "primary": null, "servers_from": "configured", "discovery_error": null,
            "servers": [], "records": [], "targets": [], "probes": []
        }))
        .unwrap();
        obs.ad = Some(Box::new(node));
        let mut out = Findings {
            domain: "corp.example",
            list: Vec::new(),
        };
        findings(&obs, policy, &mut out);
        out.list
    }

    fn aging(enabled: bool) -> Option<ZoneAging> {
        Some(ZoneAging {
            enabled,
            no_refresh_hours: 168,
            refresh_hours: 168,
        })
    }

    fn stale_targets(found: &[Finding]) -> Vec<&str> {
        found
            .iter()
            .filter(|f| f.code == FindingCode::StaleRegistration)
            .filter_map(|f| f.target.as_deref())
            .collect()
    }

    #[test]
    fn stale_only_past_the_no_refresh_interval_plus_two_days_with_aging_on() {
        let records = vec![
            record("fresh", Some(168 + 47)),
            record("gone", Some(168 + 49)),
        ];
        let on = judge(node(aging(true), records.clone()), &DomainPolicy::default());
        assert_eq!(stale_targets(&on), ["gone.corp.example."]);
        let stale = on
            .iter()
            .find(|f| f.code == FindingCode::StaleRegistration)
            .unwrap();
        assert_eq!(stale.severity, Severity::Warning);
        assert!(
            stale.detail.contains("9.0 days before the scan"),
            "{}",
            stale.detail
        );
        // Aging off: the stamp is the first registration, never staleness; unknown aging: no
        // judgement either.
        let off = judge(
            node(aging(false), records.clone()),
            &DomainPolicy::default(),
        );
        assert!(stale_targets(&off).is_empty());
        assert!(off.iter().any(|f| f.code == FindingCode::Registration
            && f.detail.contains("registered dynamically, first at")));
        let unknown = judge(node(None, records), &DomainPolicy::default());
        assert!(stale_targets(&unknown).is_empty());
    }

    #[test]
    fn static_records_are_info_and_never_stale() {
        let found = judge(
            node(aging(true), vec![record("old", None)]),
            &DomainPolicy::default(),
        );
        assert_eq!(found.len(), 1);
        assert_eq!(
            (found[0].code, found[0].severity),
            (FindingCode::Registration, Severity::Info)
        );
        assert!(found[0].detail.starts_with("static"), "{}", found[0].detail);
    }

    #[test]
    fn the_rogue_fingerprint_needs_an_allowlist_and_another_host_than_the_owner() {
        let records = vec![
            record("kms1", Some(1)),
            record("kms2", Some(1)),
            record("pc7", Some(1)),
        ];
        let policy = DomainPolicy {
            authorized: Some(Arc::new(crate::model::Allowlist::from(vec![
                HostPattern::parse("kms1.corp.example").unwrap(),
                HostPattern::parse("kms2.corp.example").unwrap(),
            ]))),
            ..DomainPolicy::default()
        };
        let fingerprinted = |found: &[Finding]| -> Vec<String> {
            found
                .iter()
                .filter(|f| f.detail.contains("fingerprint"))
                .filter_map(|f| f.target.clone())
                .collect()
        };
        let found = judge(node(aging(false), records.clone()), &policy);
        assert_eq!(fingerprinted(&found), ["pc7.corp.example."]);
        let pc7 = found
            .iter()
            .find(|f| f.target.as_deref() == Some("pc7.corp.example."))
            .unwrap();
        assert!(
            pc7.detail.contains("computer account pc7$") && pc7.detail.contains("owner is kms1$"),
            "{}",
            pc7.detail
        );
        // Without an allowlist nothing says which hosts are rogue.
        assert!(
            fingerprinted(&judge(
                node(aging(false), records),
                &DomainPolicy::default()
            ))
            .is_empty()
        );
    }

    #[test]
    fn an_open_node_names_the_group_the_rights_and_where_to_change_them() {
        let mut open = node(aging(false), Vec::new());
        open.broad_grants = vec![
            BroadGrant {
                group: "Domain Computers".into(),
                sid: "S-1-5-21-1-2-3-515".into(),
                rights: vec!["write all properties".into()],
                inherited: false,
            },
            BroadGrant {
                group: "Authenticated Users".into(),
                sid: "S-1-5-11".into(),
                rights: vec!["create child objects".into()],
                inherited: true,
            },
        ];
        let found = judge(open.clone(), &DomainPolicy::default());
        let details: Vec<&str> = found
            .iter()
            .filter(|f| (f.code, f.severity) == (FindingCode::OpenNode, Severity::Warning))
            .map(|f| f.detail.as_str())
            .collect();
        assert_eq!(details.len(), 2);
        assert!(
            details[0].contains("Domain Computers (S-1-5-21-1-2-3-515)")
                && details[0].contains("write all properties")
                && !details[0].contains("inherited")
        );
        assert!(
            details[1].contains("Authenticated Users")
                && details[1].contains("inherited from the zone")
        );
        // A zone without the node: nothing to judge.
        open.node_dn = None;
        assert!(judge(open, &DomainPolicy::default()).is_empty());
    }
}
