//! The audit model: what was observed (DNS answers, target addresses, probe results) and what
//! it means (findings). Discovery and probing fill in observations, classification turns them
//! into findings, and every renderer reads the same [`Report`]. Field names here are the JSON
//! contract documented in README: add fields, never rename or remove them. [`name`] holds DNS
//! names as they travel between the steps.

use crate::support::value::{ValueError, shown};
use std::fmt;
use std::net::{IpAddr, SocketAddr};

use crate::model::name::DnsName;
use serde::{Deserialize, Serialize};

pub mod ad_node;
mod allowlist;
pub mod name;
pub use allowlist::Allowlist;

/// How bad a finding is. Ordered: `Ok < Info < Warning < Critical`.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Nothing to report.
    #[default]
    Ok,
    /// Worth knowing; nothing is broken.
    Info,
    /// Something clients may trip over; fix it soon.
    Warning,
    /// Clients fail, or activations go where they must not: fix it now.
    Critical,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Ok => "ok",
            Self::Info => "info",
            Self::Warning => "warning",
            Self::Critical => "critical",
        })
    }
}

/// Stable finding codes. The kebab-case spelling is the contract (README lists them all).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FindingCode {
    /// A record that leads to a working, authorized KMS host.
    Healthy,
    /// Nothing answers on the record's port (refused, unreachable or silent).
    DeadHost,
    /// Something answers on the port, but not the KMS RPC interface.
    NotKms,
    /// A live KMS host that is not on the allowlist (a client with a KMS host key?).
    UnauthorizedHost,
    /// An endpoint that accepts binds no conforming RPC runtime accepts: a KMS emulator.
    KmsEmulator,
    /// The record's target has no address (NXDOMAIN or NODATA): the record dangles.
    NoAddress,
    /// A target that is an alias (CNAME), `.` (no service) or port 0.
    InvalidTarget,
    /// The same host and port published more than once.
    DuplicateRecord,
    /// A record on another port than 1688.
    NonstandardPort,
    /// No `_vlmcs._tcp` record where records are expected.
    NoRecords,
    /// No record of the domain leads to a working, authorized KMS host.
    NoHealthyHost,
    /// The authoritative servers give different record sets.
    ServerDisagreement,
    /// An authoritative server did not answer usably.
    ServerFailure,
    /// A host the config expects in this domain (`kms_hosts`) is not published there.
    AuthorizedHostMissing,
    /// An authorized host reached under a name that is not its own (a CNAME, or another A
    /// name for its address).
    HostAlias,
    /// An allowlisted host name that does not resolve: the allowlist is stale.
    AllowlistUnresolved,
    /// An endpoint whose binds show emulator habits, none of them conclusive.
    PossibleEmulator,
    /// Drift (with a state file): a record that was not there at the last scan.
    NewRecord,
    /// Drift: a record that was there at the last scan and is gone.
    RecordGone,
    /// Drift: a record whose status changed since the last scan.
    StatusChanged,
    /// Drift: a record that keeps going between healthy and failing.
    Flapping,
    /// Drift: a record that has been failing since an earlier scan.
    StillFailing,
    /// AD (`scan --ad`): who registered a record and when, or that it is static.
    Registration,
    /// AD: the `_vlmcs._tcp` node lets a broad group (Domain Computers, Authenticated Users,
    /// ...) publish a host: any machine given a KMS host key can register itself.
    OpenNode,
    /// AD: in a zone with aging on, a dynamic record its host stopped refreshing.
    StaleRegistration,
    /// The `_vlmcs._tcp` name is an alias (CNAME) of another name, which KMS clients follow.
    SrvAlias,
}

impl FindingCode {
    /// Every code, in the order README lists them.
    pub const ALL: [FindingCode; 26] = [
        Self::Healthy,
        Self::DeadHost,
        Self::NotKms,
        Self::UnauthorizedHost,
        Self::KmsEmulator,
        Self::NoAddress,
        Self::InvalidTarget,
        Self::DuplicateRecord,
        Self::NonstandardPort,
        Self::NoRecords,
        Self::NoHealthyHost,
        Self::ServerDisagreement,
        Self::ServerFailure,
        Self::AuthorizedHostMissing,
        Self::HostAlias,
        Self::AllowlistUnresolved,
        Self::PossibleEmulator,
        Self::NewRecord,
        Self::RecordGone,
        Self::StatusChanged,
        Self::Flapping,
        Self::StillFailing,
        Self::Registration,
        Self::OpenNode,
        Self::StaleRegistration,
        Self::SrvAlias,
    ];

    /// Findings made from what Active Directory holds (`scan --ad`), not from DNS.
    pub fn from_directory(self) -> bool {
        matches!(
            self,
            Self::Registration | Self::OpenNode | Self::StaleRegistration
        )
    }

    /// The code as the JSON contract spells it (kebab-case).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Healthy => "healthy",
            Self::DeadHost => "dead-host",
            Self::NotKms => "not-kms",
            Self::UnauthorizedHost => "unauthorized-host",
            Self::KmsEmulator => "kms-emulator",
            Self::NoAddress => "no-address",
            Self::InvalidTarget => "invalid-target",
            Self::DuplicateRecord => "duplicate-record",
            Self::NonstandardPort => "nonstandard-port",
            Self::NoRecords => "no-records",
            Self::NoHealthyHost => "no-healthy-host",
            Self::ServerDisagreement => "server-disagreement",
            Self::ServerFailure => "server-failure",
            Self::AuthorizedHostMissing => "authorized-host-missing",
            Self::HostAlias => "host-alias",
            Self::AllowlistUnresolved => "allowlist-unresolved",
            Self::PossibleEmulator => "possible-emulator",
            Self::NewRecord => "new-record",
            Self::RecordGone => "record-gone",
            Self::StatusChanged => "status-changed",
            Self::Flapping => "flapping",
            Self::StillFailing => "still-failing",
            Self::Registration => "registration",
            Self::OpenNode => "open-node",
            Self::StaleRegistration => "stale-registration",
            Self::SrvAlias => "srv-alias",
        }
    }
}

impl fmt::Display for FindingCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One conclusion about one domain, record, target or address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// The domain the finding is about.
    pub domain: String,
    /// What was found.
    pub code: FindingCode,
    /// How bad it is.
    pub severity: Severity,
    /// The SRV target (or host name) concerned, when one is.
    pub target: Option<String>,
    /// The port concerned, when one is.
    pub port: Option<u16>,
    /// The address concerned, when one is.
    pub address: Option<IpAddr>,
    /// What was seen, in words.
    pub detail: String,
}

/// One SRV record as published (RFC 2782 fields plus TTL). `target` is in presentation form
/// with the trailing dot, so that `.` (no service) stays distinguishable.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct SrvRecord {
    /// Lower is tried first (RFC 2782).
    pub priority: u16,
    /// Share among records of equal priority.
    pub weight: u16,
    /// The port clients connect to.
    pub port: u16,
    /// The host clients are sent to.
    pub target: DnsName,
    /// Time to live, in seconds.
    pub ttl: u32,
}

impl SrvRecord {
    /// The RDATA identity of the record; TTL differences between servers are not disagreement.
    pub(crate) fn rdata_key(&self) -> (u16, u16, u16, DnsName) {
        (self.priority, self.weight, self.port, self.target.clone())
    }

    pub(crate) fn is_root_target(&self) -> bool {
        self.target.is_root()
    }

    /// Target `.` ("no service here", RFC 2782) or port 0 (no host listens there): no client
    /// can use the record, and there is nothing to resolve or probe.
    pub(crate) fn is_unusable(&self) -> bool {
        self.is_root_target() || self.port == 0
    }
}

impl fmt::Display for SrvRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "SRV {} {} {} {}",
            self.priority, self.weight, self.port, self.target
        )
    }
}

/// How an authoritative server answered the SRV query.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum QueryStatus {
    /// NOERROR, authoritative, with SRV records.
    Answer,
    /// NOERROR, authoritative, no SRV records at the name (the name exists).
    #[serde(rename = "nodata")]
    NoData,
    /// NXDOMAIN, authoritative: the name does not exist.
    #[serde(rename = "nxdomain")]
    NxDomain,
    /// SERVFAIL: the server failed to answer.
    #[serde(rename = "servfail")]
    ServFail,
    /// REFUSED: the server refused to answer.
    Refused,
    /// The server answered without the AA bit: it is not authoritative for the zone (lame).
    NotAuthoritative,
    /// No answer within the timeout.
    Timeout,
    /// Could not reach the server (connection refused, unreachable, socket error).
    NetworkError,
    /// Any other response code (FORMERR, NOTIMP, ...), or a reply that could not be parsed.
    OtherError,
}

impl QueryStatus {
    /// True when the server gave a usable, authoritative answer (positive or negative).
    pub(crate) fn is_answer(self) -> bool {
        matches!(self, Self::Answer | Self::NoData | Self::NxDomain)
    }

    /// One word for tables.
    pub(crate) fn short(self) -> &'static str {
        match self {
            Self::Answer => "answer",
            Self::NoData => "NODATA",
            Self::NxDomain => "NXDOMAIN",
            Self::ServFail => "SERVFAIL",
            Self::Refused => "REFUSED",
            Self::NotAuthoritative => "not-authoritative",
            Self::Timeout => "timeout",
            Self::NetworkError => "unreachable",
            Self::OtherError => "error",
        }
    }

    pub(crate) fn describe(self) -> &'static str {
        match self {
            Self::Answer => "answered",
            Self::NoData => "NODATA (name exists, no SRV records)",
            Self::NxDomain => "NXDOMAIN (name does not exist)",
            Self::ServFail => "SERVFAIL (the server could not load or serve the zone)",
            Self::Refused => "REFUSED (the server does not serve this zone to us)",
            Self::NotAuthoritative => {
                "answer without the AA bit (lame delegation: the server is not authoritative)"
            }
            Self::Timeout => "no answer before the timeout",
            Self::NetworkError => "unreachable",
            Self::OtherError => "error",
        }
    }
}

/// Which transport carried a server's final answer (or its failure).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Transport {
    /// UDP.
    Udp,
    /// TCP (the UDP answer was truncated, or UDP failed).
    Tcp,
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Udp => "udp",
            Self::Tcp => "tcp",
        })
    }
}

/// Where a domain's servers came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ServersFrom {
    /// `--server`, or `servers` in the config.
    Configured,
    /// SOA and NS lookups through the resolvers.
    Discovered,
}

impl fmt::Display for ServersFrom {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Configured => "configured",
            Self::Discovered => "discovered",
        })
    }
}

/// Where a target's addresses came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AddressSource {
    /// The additional section of the SRV answer.
    Additional,
    /// An A/AAAA lookup.
    Lookup,
    /// Nowhere (the name could not be looked up).
    None,
}

/// One authoritative server's answer for `_vlmcs._tcp.<domain>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServerObservation {
    /// The server's host name where known (from NS), else its address.
    pub name: String,
    /// The address the question went to.
    pub address: SocketAddr,
    /// How the server answered.
    pub status: QueryStatus,
    /// `udp`, or `tcp` when the UDP answer was truncated (or UDP failed over to TCP).
    pub transport: Transport,
    /// The UDP answer was truncated, so the question was asked again over TCP.
    pub truncated_over_udp: bool,
    /// The SRV records in the answer, sorted.
    pub records: Vec<SrvRecord>,
    /// How many SRV records the server answered, when that was more than a scan examines
    /// (`records` then holds the first ones).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub records_answered: Option<usize>,
    /// The name the SRV question led to through CNAMEs in this server's answer, when the
    /// `_vlmcs._tcp` name is an alias (clients follow it): `records` are that name's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alias: Option<DnsName>,
    /// The response code as the server gave it, when it answered.
    pub response_code: Option<String>,
    /// What went wrong, when something did.
    pub detail: Option<String>,
    /// Time from the question to the answer (or the failure).
    pub duration_ms: f64,
}

/// What the addresses of one SRV target turned out to be.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TargetObservation {
    /// The SRV target.
    pub target: DnsName,
    /// Where the addresses came from: `additional` (the SRV answer), `lookup` or `none`.
    pub source: AddressSource,
    /// The alias this target points to, when the target is a CNAME (RFC 2782 forbids it).
    pub cname: Option<String>,
    /// Its IPv4 and IPv6 addresses.
    pub addresses: Vec<IpAddr>,
    /// Why there are no addresses (NXDOMAIN, NODATA, lookup failure), when there are none.
    pub resolution_error: Option<ResolutionError>,
}

/// Why a target has no address. Only NXDOMAIN and NODATA prove a record dangling; a failed
/// lookup proves nothing. Written in reports as its sentence (the JSON contract's string).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub enum ResolutionError {
    /// The name does not exist (an authoritative or recursive NXDOMAIN).
    NxDomain {
        /// The name that does not exist (the target, or the end of its alias chain).
        name: String,
    },
    /// The name exists, without A or AAAA records.
    NoData,
    /// No server gave a usable answer (timeouts, SERVFAIL, REFUSED...).
    LookupFailed(String),
    /// The target cannot even be written as a DNS name.
    InvalidName,
    /// The CNAME chain did not end within the bound.
    ChainTooLong,
}

impl ResolutionError {
    /// Whether DNS itself says the target has no address (and the record dangles).
    pub(crate) fn proves_dangling(&self) -> bool {
        matches!(self, Self::NxDomain { .. } | Self::NoData)
    }

    /// Reads the sentence back (a saved report). Unknown text proves nothing.
    pub(crate) fn from_text(text: &str) -> Self {
        if text == Self::NoData.to_string() {
            Self::NoData
        } else if text == Self::InvalidName.to_string() {
            Self::InvalidName
        } else if text == Self::ChainTooLong.to_string() {
            Self::ChainTooLong
        } else if let Some(name) = text
            .strip_prefix("NXDOMAIN: ")
            .and_then(|t| t.strip_suffix(" does not exist"))
        {
            Self::NxDomain {
                name: name.to_string(),
            }
        } else {
            Self::LookupFailed(
                text.strip_prefix("lookup failed: ")
                    .unwrap_or(text)
                    .to_string(),
            )
        }
    }
}

impl fmt::Display for ResolutionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NxDomain { name } => write!(f, "NXDOMAIN: {name} does not exist"),
            Self::NoData => f.write_str("NODATA: the name exists but has no A or AAAA record"),
            Self::LookupFailed(why) => write!(f, "lookup failed: {why}"),
            Self::InvalidName => f.write_str("the target is not a valid DNS name"),
            Self::ChainTooLong => f.write_str("CNAME chain longer than 8 links"),
        }
    }
}

impl From<String> for ResolutionError {
    fn from(text: String) -> Self {
        Self::from_text(&text)
    }
}

impl From<ResolutionError> for String {
    fn from(error: ResolutionError) -> Self {
        error.to_string()
    }
}

/// The verdict on one SRV record, decided once in `classify`: what `state`, `clean` and drift
/// read. `status` is the record's worst-news code (`healthy`, `unauthorized-host`, `not-kms`,
/// `dead-host`, `no-address`, `invalid-target`); `certain` is false when the evidence cannot
/// support a deletion (a failed lookup is not a dangling record).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordVerdict {
    /// The record's priority.
    pub priority: u16,
    /// The record's weight.
    pub weight: u16,
    /// The record's port.
    pub port: u16,
    /// The record's target.
    pub target: DnsName,
    /// The record's worst-news finding code.
    pub status: FindingCode,
    /// Whether the evidence would support deleting the record.
    pub certain: bool,
    /// Why it would not, when `certain` is false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uncertain_because: Option<String>,
    /// The finding that decided it, for people.
    pub evidence: String,
}

impl RecordVerdict {
    pub(crate) fn is_for(&self, record: &SrvRecord) -> bool {
        self.priority == record.priority
            && self.weight == record.weight
            && self.port == record.port
            && self.target == record.target
    }
}

/// How the TCP + RPC probe of one address ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProbeOutcome {
    /// `bind_ack` with the KMS interface accepted: a live KMS endpoint.
    KmsRpc,
    /// `bind_ack` with every context rejected: RPC is spoken here, but not the KMS interface.
    RpcRejected,
    /// `bind_nak` or `fault`.
    RpcNak,
    /// Something answered, but not DCE/RPC (or malformed DCE/RPC).
    NotRpc,
    /// The connection was accepted, then nothing came back before the timeout.
    Silent,
    /// The connection was accepted and then closed without a reply.
    Closed,
    /// TCP connection refused (RST): nothing listens there.
    Refused,
    /// No route, host unreachable, network unreachable.
    Unreachable,
    /// The TCP handshake did not complete before the timeout (filtered or host down).
    ConnectTimeout,
}

impl ProbeOutcome {
    /// The port does not accept TCP at all: the host (or the service on it) is gone.
    pub(crate) fn is_dead(self) -> bool {
        matches!(
            self,
            Self::Refused | Self::Unreachable | Self::ConnectTimeout
        )
    }
}

/// One probe of one address of one target on one port.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProbeObservation {
    /// The SRV target probed.
    pub target: DnsName,
    /// The address probed.
    pub address: IpAddr,
    /// The port probed.
    pub port: u16,
    /// What answered there.
    pub outcome: ProbeOutcome,
    /// Time from the start of the connect to the end of the probe.
    pub duration_ms: f64,
    /// Time to establish the TCP connection, when it was established.
    pub connect_ms: Option<f64>,
    /// What the probe saw, in words.
    pub detail: String,
    /// The transfer syntax the endpoint accepted (`NDR` or `NDR64`).
    pub transfer_syntax: Option<String>,
    /// The endpoint also accepted a bind for an interface nobody serves.
    pub accepts_any_interface: bool,
    /// What the endpoint's binds showed that a conforming RPC runtime does not (empty for one
    /// that behaved as C706 / MS-RPCE say, and when the emulator check was skipped).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub emulator_evidence: Vec<EmulatorEvidence>,
}

impl ProbeObservation {
    /// At least one tell that a conforming RPC runtime cannot show: a KMS emulator.
    pub fn is_emulator(&self) -> bool {
        self.accepts_any_interface || self.emulator_evidence.iter().any(|e| e.tell.is_strong())
    }
}

/// One thing a bind showed about the RPC runtime behind an endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmulatorEvidence {
    /// What the bind showed.
    pub tell: EmulatorTell,
    /// `strong` (a conforming runtime never shows it) or `supporting`.
    pub strength: TellStrength,
    /// What was sent and what came back.
    pub detail: String,
}

impl EmulatorEvidence {
    pub(crate) fn new(tell: EmulatorTell, detail: impl Into<String>) -> Self {
        Self {
            tell,
            strength: if tell.is_strong() {
                TellStrength::Strong
            } else {
                TellStrength::Supporting
            },
            detail: detail.into(),
        }
    }
}

/// The emulator tells, measured against vlmcsd and py-kms and calibrated on Samba's conforming
/// DCE/RPC runtime (`shared/notes/kms-emulators.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EmulatorTell {
    /// The KMS interface accepted as version 2.0: C706 requires the major version to match.
    AcceptsWrongVersion,
    /// A made-up interface accepted.
    AcceptsAnyInterface,
    /// An out-of-range fragment size offer (65535/65535) echoed instead of negotiated.
    EchoesFragmentSizes,
    /// PFC_MAYBE, meaningless in a bind, echoed.
    EchoesMaybeFlag,
    /// The multiplex flag set although the bind did not ask for it.
    MultiplexUnasked,
    /// py-kms' hard-coded association group 0x1063bf3f.
    ConstantAssocGroup,
    /// The connection dropped on a bind-time feature negotiation context.
    DropsFeatureNegotiation,
}

impl EmulatorTell {
    /// Whether a conforming RPC runtime can never show this tell.
    pub fn is_strong(self) -> bool {
        matches!(self, Self::AcceptsWrongVersion | Self::AcceptsAnyInterface)
    }
}

/// How much one tell says about the runtime behind an endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TellStrength {
    /// A conforming runtime never shows it: an emulator.
    Strong,
    /// Seen in emulators, though not proof on its own.
    Supporting,
}

/// Everything observed about one domain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DomainObservation {
    /// The domain, lower-case, without the final dot.
    pub domain: String,
    /// The name asked: `_vlmcs._tcp.<domain>.`.
    pub query_name: String,
    /// The zone that holds the query name (from SOA), where discovery found it.
    pub zone: Option<DnsName>,
    /// The zone's primary server (SOA MNAME), where dynamic updates go, when discovered.
    pub primary: Option<DnsName>,
    /// Where the list of servers came from: `discovered` (SOA + NS), `configured`.
    pub servers_from: ServersFrom,
    /// Discovery failed before any authoritative server could be asked.
    pub discovery_error: Option<String>,
    /// What each authoritative server answered.
    pub servers: Vec<ServerObservation>,
    /// The union of the SRV records that any server returned, sorted.
    pub records: Vec<SrvRecord>,
    /// What each target's addresses turned out to be.
    pub targets: Vec<TargetObservation>,
    /// Every probe of every address of every target.
    pub probes: Vec<ProbeObservation>,
    /// Time from the start of this domain's scan until its DNS work (discovery, SRV queries,
    /// target lookups) was done and probing began.
    #[serde(default)]
    pub dns_ms: f64,
    /// What Active Directory holds about the `_vlmcs._tcp` node (`scan --ad`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ad: Option<Box<ad_node::AdNode>>,
}

impl DomainObservation {
    /// The owner name (`_vlmcs._tcp.<domain>`) and its zone (the domain when no zone was
    /// found), written as commands write them: without the final dot.
    pub fn owner_and_zone(&self) -> (String, String) {
        let zone = self
            .zone
            .as_ref()
            .map_or_else(|| self.domain.clone(), ToString::to_string);
        (
            name::without_final_dot(&self.query_name).to_string(),
            name::without_final_dot(&zone).to_string(),
        )
    }

    /// What was learned about the addresses of `target` (names compared case-insensitively).
    pub(crate) fn target(&self, target: &DnsName) -> Option<&TargetObservation> {
        self.targets.iter().find(|t| &t.target == target)
    }

    /// The probes of `record`'s target on `record`'s port, one per address.
    pub(crate) fn probes_of<'a>(
        &'a self,
        record: &SrvRecord,
    ) -> impl Iterator<Item = &'a ProbeObservation> {
        self.probes
            .iter()
            .filter(move |p| p.port == record.port && p.target == record.target)
    }
}

/// The most SRV records of one RRset that a scan examines (resolves, probes). A KMS domain has
/// a few; thousands (a hostile or broken server) would only cost time and memory.
pub const MAX_RRSET: usize = 256;

/// Checks a domain name given by the user; returns it lower-cased without the trailing dot.
pub(crate) fn validate_domain(text: &str) -> Result<String, ValueError> {
    let name = normalize_name(text);
    if name.starts_with("_vlmcs._tcp") {
        return Err(ValueError::VlmcsOwnerName { text: shown(text) });
    }
    match HostPattern::parse(&name) {
        Ok(HostPattern::Name(n)) if n.contains('.') || !n.is_empty() => Ok(n),
        _ => Err(ValueError::NotADomain { text: shown(text) }),
    }
}

/// A host entry of an allowlist: a host name or an address / network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum HostPattern {
    /// An address (a one-address network) or a network.
    Network(ipnet::IpNet),
    /// A host name, lower-case, without the final dot.
    Name(String),
}

impl HostPattern {
    /// Parses a name or an address (`10.0.0.5`, `2001:db8::5`, `10.0.0.0/24`).
    pub fn parse(text: &str) -> Result<Self, ValueError> {
        let text = text.trim();
        if let Ok(ip) = text.parse::<IpAddr>() {
            return Ok(Self::Network(ipnet::IpNet::from(ip)));
        }
        if let Ok(net) = text.parse::<ipnet::IpNet>() {
            return Ok(Self::Network(net));
        }
        let name = normalize_name(text);
        if name.is_empty() || name.len() > 253 {
            return Err(ValueError::NotAHost { text: shown(text) });
        }
        let label_ok = |l: &str| {
            !l.is_empty()
                && l.len() <= 63
                && l.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        };
        if !name.split('.').all(label_ok) {
            return Err(ValueError::NotAHostName { text: shown(text) });
        }
        Ok(Self::Name(name))
    }

    pub(crate) fn matches_name(&self, target: &str) -> bool {
        matches!(self, Self::Name(n) if *n == normalize_name(target))
    }

    pub(crate) fn matches_address(&self, address: IpAddr) -> bool {
        matches!(self, Self::Network(net) if net.contains(&address))
    }
}

impl fmt::Display for HostPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Network(net) if net.prefix_len() == net.max_prefix_len() => {
                write!(f, "{}", net.addr())
            }
            Self::Network(net) => write!(f, "{net}"),
            Self::Name(n) => f.write_str(n),
        }
    }
}

/// Lower-case, no trailing dot: how host names are compared.
pub(crate) fn normalize_name(name: &str) -> String {
    name.trim().trim_end_matches('.').to_ascii_lowercase()
}

/// Who may serve KMS for one domain.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DomainPolicy {
    /// Hosts allowed to be KMS hosts anywhere (the global allowlist; this domain's own
    /// `expected` hosts are allowed too); `None` when no allowlist is configured at all, in
    /// which case rogue hosts cannot be told apart. One list shared by every domain.
    pub authorized: Option<std::sync::Arc<Allowlist>>,
    /// Hosts that should be published in this domain (the per-domain entries).
    pub expected: Vec<HostPattern>,
    /// Whether this domain is expected to have records (false for search-list domains that
    /// were not asked for explicitly).
    pub expect_records: bool,
    /// The addresses of the allowlisted host names, as the scan resolved them (shared).
    #[serde(skip)]
    pub identities: Option<std::sync::Arc<Identities>>,
}

impl DomainPolicy {
    /// Whether `name` is allowed here: on the allowlist or one of this domain's own hosts.
    pub(crate) fn allows_name(&self, name: &str) -> bool {
        self.authorized
            .as_ref()
            .is_some_and(|list| list.matches_name(name))
            || self.expected.iter().any(|p| p.matches_name(name))
    }

    /// Whether `address` lies in an allowed network (or is an allowed address).
    pub(crate) fn allows_address(&self, address: IpAddr) -> bool {
        self.authorized
            .as_ref()
            .is_some_and(|list| list.matches_address(address))
            || self.expected.iter().any(|p| p.matches_address(address))
    }
}

/// What the allowlisted host names resolved to, through the servers and resolvers the scan
/// uses: the identity of each authorized host, beyond the spelling of its name. Kept compact:
/// an address → name index for every name, the whole answer only for the names that some
/// domain expects to see published (its `kms_hosts`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Identities {
    /// Address → the allowlisted name it belongs to (the first in name order).
    pub by_address: std::collections::HashMap<IpAddr, std::sync::Arc<str>>,
    /// Expected hosts' names → their addresses, or why there are none.
    pub by_name: std::collections::BTreeMap<String, Result<Vec<IpAddr>, String>>,
}

impl Identities {
    /// The allowlisted name whose addresses include `address`, if any.
    pub(crate) fn owner_of(&self, address: IpAddr) -> Option<&str> {
        self.by_address.get(&address).map(AsRef::as_ref)
    }

    /// Records what `name` resolved to; `expected`: keep the whole answer for it.
    pub(crate) fn add(
        &mut self,
        name: &std::sync::Arc<str>,
        found: &Result<Vec<IpAddr>, String>,
        expected: bool,
    ) {
        if let Ok(addresses) = found {
            for address in addresses {
                let owner = self
                    .by_address
                    .entry(*address)
                    .or_insert_with(|| name.clone());
                if **name < **owner {
                    *owner = name.clone();
                }
            }
        }
        if expected {
            self.by_name.insert(name.to_string(), found.clone());
        }
    }
}

/// Counts per domain, for the summary line and for monitoring.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DomainSummary {
    /// How many records the domain publishes.
    pub records: usize,
    pub(crate) hosts_probed: usize,
    /// Records that lead to a working, authorized KMS host.
    pub healthy: usize,
    /// Records whose host does not answer.
    pub dead: usize,
    pub(crate) not_kms: usize,
    /// Live KMS hosts that are not on the allowlist.
    pub unauthorized: usize,
    /// The worst severity among the domain's findings.
    pub worst: Option<Severity>,
    /// False when no authoritative server gave a usable answer: the state is unknown.
    pub complete: bool,
}

/// One domain in the report: what was seen, and the summary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DomainReport {
    /// What was seen.
    #[serde(flatten)]
    pub observation: DomainObservation,
    /// The counts.
    pub summary: DomainSummary,
    /// One per record of `observation.records`, in the same order.
    #[serde(default)]
    pub verdicts: Vec<RecordVerdict>,
}

impl DomainReport {
    /// The verdict on one of this domain's records.
    pub(crate) fn verdict(&self, record: &SrvRecord) -> Option<&RecordVerdict> {
        self.verdicts.iter().find(|v| v.is_for(record))
    }
}

/// The whole result of a scan: the one model every renderer reads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// `vlmcs-audit`.
    pub tool: String,
    /// This build's version.
    pub version: String,
    /// When the scan started (RFC 3339 in JSON).
    pub started_at: crate::support::time::Timestamp,
    /// How long the scan took.
    pub duration_ms: f64,
    /// The timeout of each query and probe.
    pub timeout_ms: u64,
    /// Whether an allowlist was configured (without one, rogue hosts cannot be told apart).
    pub allowlist_configured: bool,
    /// True when every domain could be scanned (exit code 3 otherwise).
    pub complete: bool,
    /// The worst severity found, `ok` when there were no findings.
    pub worst_severity: Severity,
    /// The Nagios-style exit code this report maps to.
    pub exit_code: i32,
    /// What the scan could not do or check, for people.
    pub notes: Vec<String>,
    /// Every finding, domain by domain.
    pub findings: Vec<Finding>,
    /// Every domain scanned.
    pub domains: Vec<DomainReport>,
}

/// Nagios / Icinga plugin exit codes.
pub mod exit_code {
    /// Nothing above info.
    pub const OK: i32 = 0;
    pub(crate) const WARNING: i32 = 1;
    pub(crate) const CRITICAL: i32 = 2;
    /// The scan could not run or complete.
    pub const UNKNOWN: i32 = 3;
}

impl Report {
    /// Recomputes the worst severity and the exit code after findings were added or removed.
    pub(crate) fn settle_severity(&mut self) {
        self.worst_severity = self
            .findings
            .iter()
            .map(|f| f.severity)
            .max()
            .unwrap_or(Severity::Ok);
        self.exit_code = Self::compute_exit_code(self.complete, self.worst_severity);
    }

    /// 0 nothing above info, 1 warning, 2 critical, 3 the scan could not complete.
    pub(crate) fn compute_exit_code(complete: bool, worst: Severity) -> i32 {
        if !complete {
            return exit_code::UNKNOWN;
        }
        match worst {
            Severity::Ok | Severity::Info => exit_code::OK,
            Severity::Warning => exit_code::WARNING,
            Severity::Critical => exit_code::CRITICAL,
        }
    }
}

/// IPv6 addresses in `host:port` text need brackets.
pub(crate) fn display_addr(address: IpAddr) -> String {
    match address {
        IpAddr::V4(a) => a.to_string(),
        IpAddr::V6(a) => format!("[{a}]"),
    }
}
