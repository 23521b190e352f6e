//! The allowlist, indexed: host names in a hash set, networks by prefix length, so that a check
//! costs the same for ten entries as for a million, and an entry costs its text and little more.

use std::collections::{BTreeMap, HashSet};
use std::net::IpAddr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::{HostPattern, normalize_name};

/// Hosts allowed to be KMS hosts: names (normalized: lower case, no trailing dot) and networks.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "Vec<HostPattern>", into = "Vec<HostPattern>")]
pub struct Allowlist {
    names: HashSet<Arc<str>>,
    /// Per prefix length, the networks of that length (their host bits cleared).
    v4: BTreeMap<u8, HashSet<ipnet::Ipv4Net>>,
    v6: BTreeMap<u8, HashSet<ipnet::Ipv6Net>>,
    networks: usize,
}

impl Allowlist {
    /// How many names and networks the list holds.
    pub fn len(&self) -> usize {
        self.names.len() + self.networks
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Adds one entry (a repeated one is kept once).
    pub fn insert(&mut self, pattern: &HostPattern) {
        match pattern {
            HostPattern::Name(name) => {
                if !self.names.contains(name.as_str()) {
                    self.names.insert(Arc::from(name.as_str()));
                }
            }
            HostPattern::Network(ipnet::IpNet::V4(net)) => {
                if self
                    .v4
                    .entry(net.prefix_len())
                    .or_default()
                    .insert(net.trunc())
                {
                    self.networks += 1;
                }
            }
            HostPattern::Network(ipnet::IpNet::V6(net)) => {
                if self
                    .v6
                    .entry(net.prefix_len())
                    .or_default()
                    .insert(net.trunc())
                {
                    self.networks += 1;
                }
            }
        }
    }

    /// Whether `name` (any case, with or without the trailing dot) is listed.
    pub fn matches_name(&self, name: &str) -> bool {
        !self.names.is_empty() && self.names.contains(normalize_name(name).as_str())
    }

    /// Whether `address` lies in a listed network (a listed address is a network of one).
    pub fn matches_address(&self, address: IpAddr) -> bool {
        match address {
            IpAddr::V4(a) => self.v4.iter().any(|(len, nets)| {
                ipnet::Ipv4Net::new(a, *len).is_ok_and(|net| nets.contains(&net.trunc()))
            }),
            IpAddr::V6(a) => self.v6.iter().any(|(len, nets)| {
                ipnet::Ipv6Net::new(a, *len).is_ok_and(|net| nets.contains(&net.trunc()))
            }),
        }
    }

    /// The listed names, in no particular order.
    pub fn names(&self) -> impl Iterator<Item = &Arc<str>> {
        self.names.iter()
    }

    /// Every entry, names in order, then networks.
    pub fn patterns(&self) -> Vec<HostPattern> {
        let mut names: Vec<&str> = self.names.iter().map(AsRef::as_ref).collect();
        names.sort_unstable();
        let mut out: Vec<HostPattern> = names
            .into_iter()
            .map(|n| HostPattern::Name(n.to_string()))
            .collect();
        for nets in self.v4.values() {
            out.extend(nets.iter().map(|n| HostPattern::Network((*n).into())));
        }
        for nets in self.v6.values() {
            out.extend(nets.iter().map(|n| HostPattern::Network((*n).into())));
        }
        out
    }
}

impl FromIterator<HostPattern> for Allowlist {
    fn from_iter<I: IntoIterator<Item = HostPattern>>(iter: I) -> Self {
        let mut list = Self::default();
        for pattern in iter {
            list.insert(&pattern);
        }
        list
    }
}

impl From<Vec<HostPattern>> for Allowlist {
    fn from(patterns: Vec<HostPattern>) -> Self {
        patterns.into_iter().collect()
    }
}

impl From<Allowlist> for Vec<HostPattern> {
    fn from(list: Allowlist) -> Self {
        list.patterns()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(entries: &[&str]) -> Allowlist {
        entries
            .iter()
            .map(|e| HostPattern::parse(e).unwrap())
            .collect()
    }

    #[test]
    fn names_and_networks_match_as_the_patterns_did() {
        let allow = list(&[
            "KMS1.corp.example.",
            "10.1.0.0/16",
            "192.0.2.7",
            "2001:db8::/32",
            "kms1.corp.example",
        ]);
        assert_eq!(allow.len(), 4, "a repeated name is one entry");
        assert!(allow.matches_name("kms1.CORP.example."));
        assert!(!allow.matches_name("kms2.corp.example"));
        for (address, listed) in [
            ("10.1.200.3", true),
            ("10.2.0.1", false),
            ("192.0.2.7", true),
            ("192.0.2.8", false),
            ("2001:db8:1::5", true),
            ("2001:db9::5", false),
        ] {
            assert_eq!(
                allow.matches_address(address.parse().unwrap()),
                listed,
                "{address}"
            );
        }
        // A network written with host bits set still covers its range.
        assert!(list(&["10.9.9.9/8"]).matches_address("10.200.0.1".parse().unwrap()));
        let back: Vec<String> = allow.patterns().iter().map(ToString::to_string).collect();
        assert_eq!(back[0], "kms1.corp.example");
        assert!(back.contains(&"10.1.0.0/16".to_string()));
    }

    #[test]
    fn a_hundred_thousand_names_cost_little_and_check_at_once() {
        let allow: Allowlist = (0..100_000)
            .map(|i| HostPattern::Name(format!("kms-{i:06}.corp.example")))
            .collect();
        assert_eq!(allow.len(), 100_000);
        let started = std::time::Instant::now();
        for i in 0..100_000 {
            assert!(allow.matches_name(&format!("kms-{i:06}.corp.example.")));
        }
        assert!(!allow.matches_address("10.0.0.1".parse().unwrap()));
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
    }
}
