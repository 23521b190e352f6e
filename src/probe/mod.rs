//! Probing one address: TCP connect, DCE/RPC `bind` for the KMS interface, read the answer.
//! Side-effect free: no RPC request is sent, so the KMS host's client count never changes.
//! In comes an address and port; out goes what answered there ([`crate::model`]'s probe
//! result). [`rpc`] holds the PDUs: the bind written, the reply read.

pub mod rpc;

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use futures_util::future::{BoxFuture, Shared};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tokio::time::timeout_at;

use crate::model::name::DnsName;
use crate::model::{EmulatorEvidence, EmulatorTell, ProbeObservation, ProbeOutcome};
use crate::support::time::millis;
use rpc::{
    Bind, BindAck, BindReply, KMS_INTERFACE, MADE_UP_INTERFACE, NDR32, NDR64, SyntaxId,
    parse_bind_reply, parse_header,
};

/// The call id of our bind; any constant works, the reply must echo it.
const CALL_ID: u32 = 2;
/// Our presentation contexts, in order: NDR first (older RPC servers nak a bind whose first
/// context is not NDR), then NDR64.
const OFFERED: [SyntaxId; 2] = [NDR32, NDR64];
/// py-kms answers every bind with this association group.
const PY_KMS_ASSOC_GROUP: u32 = 0x1063_bf3f;
/// An offer no conforming server grants as is: above the 5840 bytes Windows negotiates down to.
const ODD_FRAG: u16 = 65535;

/// What to do at each address.
#[derive(Debug, Clone, Copy)]
pub struct ProbeOptions {
    /// Budget for connect + bind + reply, per address.
    pub timeout: Duration,
    /// After a successful bind, bind again in ways only an emulator accepts.
    pub check_emulator: bool,
}

/// Probes for a whole scan: each (address, port) once, its result shared by every record (of
/// every domain) that points at it — the outcome is a property of the endpoint — under a bound
/// of its own: a connect that only waits costs one socket, not one of the slots that protect
/// DNS servers and CPU. The results of the last [`REMEMBERED`] endpoints are kept: a scan of
/// hundreds of thousands of distinct hosts does not hold every one of them to the end (an
/// endpoint met again after that is probed again).
#[derive(Debug)]
pub struct Prober {
    options: ProbeOptions,
    sockets: Arc<Semaphore>,
    done: std::sync::Mutex<Remembered>,
}

/// How many endpoints' results a scan keeps for records still to come (about 300 bytes each).
pub const REMEMBERED: usize = 65_536;

/// A probe running as a task of its own (started when it was first asked for), or its result:
/// every record that points at the endpoint waits on a clone.
#[derive(Clone)]
pub struct PendingProbe(Shared<BoxFuture<'static, Arc<EndpointProbe>>>);

impl PendingProbe {
    fn finished(&self) -> bool {
        self.0.peek().is_some()
    }
}

impl std::fmt::Debug for PendingProbe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = if self.finished() { "done" } else { "running" };
        write!(f, "PendingProbe({state})")
    }
}

impl std::future::Future for PendingProbe {
    type Output = Arc<EndpointProbe>;
    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        std::pin::Pin::new(&mut self.0).poll(cx)
    }
}

#[derive(Debug, Default)]
struct Remembered {
    results: HashMap<SocketAddr, PendingProbe>,
    /// Endpoints in the order they were first asked for: the oldest finished ones go first.
    order: std::collections::VecDeque<SocketAddr>,
    probed: usize,
}

impl Remembered {
    fn get(&mut self, endpoint: SocketAddr, start: impl FnOnce() -> PendingProbe) -> PendingProbe {
        if let Some(pending) = self.results.get(&endpoint) {
            return pending.clone();
        }
        let pending = start();
        self.results.insert(endpoint, pending.clone());
        self.order.push_back(endpoint);
        self.probed += 1;
        // Forget the oldest finished results; one still running stays (records wait for it).
        // A few steps per new endpoint keep up with one new endpoint each.
        for _ in 0..self.order.len().min(64) {
            if self.results.len() <= REMEMBERED {
                break;
            }
            let Some(oldest) = self.order.pop_front() else {
                break;
            };
            if self
                .results
                .get(&oldest)
                .is_some_and(PendingProbe::finished)
            {
                self.results.remove(&oldest);
            } else {
                self.order.push_back(oldest);
            }
        }
        pending
    }
}

impl Prober {
    /// `sockets`: how many probe connections may be open at once.
    pub fn new(options: ProbeOptions, sockets: usize) -> Self {
        Self {
            options,
            sockets: Arc::new(Semaphore::new(sockets.max(1))),
            done: std::sync::Mutex::new(Remembered::default()),
        }
    }

    /// The endpoint's probe, started now on first use: probes run whether or not anyone polls
    /// the result yet, so a domain may start all of its probes and then wait for them one by
    /// one. Must be called inside the runtime.
    pub fn request(&self, address: IpAddr, port: u16) -> PendingProbe {
        let endpoint = SocketAddr::new(address, port);
        let mut done = self.done.lock().unwrap_or_else(|e| e.into_inner());
        done.get(endpoint, || {
            let (sockets, options) = (Arc::clone(&self.sockets), self.options);
            // A task of its own: the probe's state belongs to the one task that runs it, not
            // to every record that waits for its result. Never closed: acquiring cannot fail.
            let task = tokio::spawn(async move {
                let _socket = sockets.acquire_owned().await.ok();
                probe_endpoint(endpoint, options).await
            });
            // A probe that panicked panics in whoever waits for it too; it is never cancelled
            // (the runtime outlives the scan).
            let joined = async move {
                Arc::new(
                    task.await
                        .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic())),
                )
            };
            PendingProbe(joined.boxed().shared())
        })
    }

    /// The endpoint's observation, probed on first use, under `target`'s name.
    pub async fn probe(&self, target: &DnsName, address: IpAddr, port: u16) -> ProbeObservation {
        self.request(address, port).await.named(target)
    }

    /// How many distinct endpoints have been probed.
    pub fn endpoints(&self) -> usize {
        self.done
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .probed
    }
}

/// How many probe connections a scan keeps open at once: the DNS concurrency at least, and the
/// open-file limit less a reserve for everything else (DNS sockets — at most 512 UDP channels
/// and their TCP connections — the spool, the output, the state), capped: a probe holds
/// nothing but its socket, and a blackholed host holds it for the whole timeout, so a budget
/// smaller than the dead hosts of a large scan makes the scan wait one timeout per budgetful.
pub fn socket_budget(concurrency: usize) -> usize {
    #[cfg(unix)]
    const RESERVE: u64 = 1024;
    #[cfg(unix)]
    let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile)
        .current
        .map_or(32_768, |n| {
            usize::try_from(n.saturating_sub(RESERVE)).unwrap_or(usize::MAX)
        });
    #[cfg(not(unix))]
    let limit = 512;
    limit.clamp(64, 32_768).max(concurrency)
}

/// What a probe found at an endpoint: a [`ProbeObservation`] without the name a record gave
/// the address.
#[derive(Debug, Clone)]
pub struct EndpointProbe {
    /// The address probed.
    pub address: IpAddr,
    /// The port probed.
    pub port: u16,
    /// What answered there.
    pub outcome: ProbeOutcome,
    /// Time from the start of the connect to the end of the probe.
    pub duration_ms: f64,
    pub(crate) connect_ms: Option<f64>,
    /// What the probe saw, in words.
    pub detail: String,
    /// The transfer syntax the endpoint accepted (`NDR` or `NDR64`).
    pub transfer_syntax: Option<String>,
    /// What the endpoint's binds showed that a conforming runtime does not.
    pub emulator_evidence: Vec<EmulatorEvidence>,
}

impl EndpointProbe {
    /// The observation of a record whose target is `target`.
    pub fn named(&self, target: &DnsName) -> ProbeObservation {
        ProbeObservation {
            target: target.clone(),
            address: self.address,
            port: self.port,
            outcome: self.outcome,
            duration_ms: self.duration_ms,
            connect_ms: self.connect_ms,
            detail: self.detail.clone(),
            transfer_syntax: self.transfer_syntax.clone(),
            accepts_any_interface: self
                .emulator_evidence
                .iter()
                .any(|e| e.tell == EmulatorTell::AcceptsAnyInterface),
            emulator_evidence: self.emulator_evidence.clone(),
        }
    }
}

/// Probes `address:port` and records what happened (with the emulator binds when asked for).
/// Never fails: every outcome is an observation.
pub async fn probe(
    target: &DnsName,
    address: IpAddr,
    port: u16,
    options: ProbeOptions,
) -> ProbeObservation {
    probe_endpoint(SocketAddr::new(address, port), options)
        .await
        .named(target)
}

/// [`probe`] without a name.
pub async fn probe_endpoint(endpoint: SocketAddr, options: ProbeOptions) -> EndpointProbe {
    let started = Instant::now();
    let budget = Budget::new(options.timeout);
    // The connect alone is not boxed: it is all a blackholed host ever gets, and a scan of
    // thousands of dead hosts holds thousands of these for the whole timeout. What follows a
    // connect is.
    let connected = connect(endpoint, budget).await;
    let (result, evidence) = after_connect(endpoint, connected, budget, options).await;
    EndpointProbe {
        address: endpoint.ip(),
        port: endpoint.port(),
        outcome: result.outcome,
        duration_ms: millis(started.elapsed()),
        connect_ms: result.connect.map(millis),
        detail: result.detail,
        transfer_syntax: result.transfer_syntax,
        emulator_evidence: evidence,
    }
}

/// The tells bind first: its first contexts are the ordinary bind's (the KMS interface 1.0
/// with NDR, then NDR64), which a runtime answers on their own (C706 12.6.3.1), so a KMS host
/// that accepts them is judged from this one connection, with every tell. Anything else — a
/// refusal of the odd bind, a hang-up (py-kms on the negotiation context), a reply that is not
/// DCE/RPC — leaves the verdict to the ordinary bind on a second connection, within the same
/// budget; a failed connect is final. The tells bind waits half the budget for its reply, so
/// that a server that ignores it still has time to answer the ordinary bind.
async fn bind_with_tells(
    endpoint: SocketAddr,
    connected: Connected,
    budget: Budget,
) -> (BindResult, Vec<EmulatorEvidence>) {
    let timeout = budget.timeout;
    let full = &BINDS.tells;
    let first = exchange(
        connected,
        full,
        Budget {
            reply_within: Some(timeout / 2),
            ..budget
        },
    )
    .await;
    if let Some(ack) = &first.ack
        && let Some(kms) = ordinary_answer(&full.bind, ack, first.connect)
    {
        let mut evidence = standard_bind_tells(&full.bind, ack);
        add_tells(&mut evidence, tells_bind_evidence(&full.bind, ack));
        return (kms, evidence);
    }
    let standard = &BINDS.standard;
    let result = bind_once(endpoint, standard, budget).await;
    let Some(standard_ack) = result
        .ack
        .as_ref()
        .filter(|_| result.outcome == ProbeOutcome::KmsRpc)
    else {
        return (result, Vec::new());
    };
    let mut evidence = standard_bind_tells(&standard.bind, standard_ack);
    let hung_up = first.ack.is_none() && first.outcome == ProbeOutcome::Closed;
    if hung_up {
        add_tells(
            &mut evidence,
            Box::pin(after_hang_up(endpoint, timeout)).await,
        );
    } else if let Some(ack) = &first.ack {
        add_tells(&mut evidence, tells_bind_evidence(&full.bind, ack));
    }
    (result, evidence)
}

/// Adds the tells `evidence` does not have yet.
fn add_tells(evidence: &mut Vec<EmulatorEvidence>, more: Vec<EmulatorEvidence>) {
    for tell in more {
        if !evidence.iter().any(|e| e.tell == tell.tell) {
            evidence.push(tell);
        }
    }
}

/// The ordinary bind's verdict read from the tells bind's answer to its first contexts (the
/// KMS interface 1.0 with each transfer syntax, as the ordinary bind offers it): `Some` only
/// when one of them was accepted as an honest runtime accepts it.
fn ordinary_answer(full: &Bind, ack: &BindAck, connect: Option<Duration>) -> Option<BindResult> {
    let ordinary = OFFERED.len();
    if ack.results.len() != full.contexts.len() || full.contexts.len() < ordinary {
        return None;
    }
    let mut answered = ack.clone();
    answered.results.truncate(ordinary);
    let result = interpret_ack(&full.contexts[..ordinary], answered, connect);
    (result.outcome == ProbeOutcome::KmsRpc).then_some(result)
}

/// What the ordinary bind's `bind_ack` gives away by itself.
fn standard_bind_tells(sent: &Bind, ack: &BindAck) -> Vec<EmulatorEvidence> {
    let mut evidence = Vec::new();
    if ack.flags & rpc::PFC_CONC_MPX != 0 && sent.flags & rpc::PFC_CONC_MPX == 0 {
        evidence.push(EmulatorEvidence::new(
            EmulatorTell::MultiplexUnasked,
            format!(
                "the bind_ack sets the multiplex flag (flags {:#04x}) that our bind did not ask for (flags {:#04x}), as py-kms always does",
                ack.flags, sent.flags
            ),
        ));
    }
    if ack.assoc_group == PY_KMS_ASSOC_GROUP {
        evidence.push(EmulatorEvidence::new(
            EmulatorTell::ConstantAssocGroup,
            format!(
                "association group {PY_KMS_ASSOC_GROUP:#010x}, the constant py-kms answers with"
            ),
        ));
    }
    evidence
}

/// The tells in the answer to a tells bind (`sent`): the KMS interface accepted as 2.0, the
/// made-up interface accepted, and the odd header and fragment offers echoed.
fn tells_bind_evidence(sent: &Bind, ack: &BindAck) -> Vec<EmulatorEvidence> {
    let mut evidence = Vec::new();
    if ack.results.len() != sent.contexts.len() {
        return evidence;
    }
    let accepted = |interface: SyntaxId| {
        sent.contexts
            .iter()
            .zip(&ack.results)
            .any(|(offered, result)| {
                offered.abstract_syntax == interface
                    && result.result == rpc::ContextResult::ACCEPTANCE
            })
    };
    if accepted(KMS_INTERFACE.with_version(2, 0)) {
        evidence.push(EmulatorEvidence::new(
            EmulatorTell::AcceptsWrongVersion,
            "accepted a bind for the KMS interface as version 2.0; a conforming RPC runtime rejects a major version it does not serve (C706 12.6.3.1, measured on Samba), vlmcsd and py-kms accept any version",
        ));
    }
    if accepted(MADE_UP_INTERFACE) {
        evidence.push(EmulatorEvidence::new(
            EmulatorTell::AcceptsAnyInterface,
            format!(
                "accepted a bind for an interface nobody serves ({MADE_UP_INTERFACE}), as py-kms and a SIMPLE_RPC build of vlmcsd do"
            ),
        ));
    }
    evidence.extend(odd_bind_tells(sent, ack));
    evidence
}

/// py-kms hangs up on the feature negotiation context it does not know: the same tells bind
/// without it gives the other tells, and a plain bind with the negotiation context alone
/// decides that tell. Binds only: nothing here is counted as a client.
async fn after_hang_up(endpoint: SocketAddr, timeout: Duration) -> Vec<EmulatorEvidence> {
    let plain = &BINDS.tells_without_negotiation;
    let mut evidence = bind_once(endpoint, plain, Budget::new(timeout))
        .await
        .ack
        .map(|ack| tells_bind_evidence(&plain.bind, &ack))
        .unwrap_or_default();
    if bind_once(endpoint, &BINDS.negotiation, Budget::new(timeout))
        .await
        .outcome
        == ProbeOutcome::Closed
    {
        evidence.push(EmulatorEvidence::new(
            EmulatorTell::DropsFeatureNegotiation,
            "closed the connection without a reply when the bind carried a feature negotiation context with bits no client sets (a conforming runtime answers it, measured on Samba; py-kms drops it)",
        ));
    }
    evidence
}

/// A bind and its encoding, made once: a probe that waits for a connect holds a reference.
struct Prepared {
    bind: Bind,
    bytes: Vec<u8>,
}

impl Prepared {
    fn new(bind: Bind) -> Self {
        let bytes = bind.encode();
        Self { bind, bytes }
    }
}

/// Every bind a probe sends.
struct Binds {
    /// The ordinary bind: the KMS interface with NDR, then NDR64.
    standard: Prepared,
    /// The ordinary contexts and every tell.
    tells: Prepared,
    /// The same without the feature negotiation context py-kms hangs up on.
    tells_without_negotiation: Prepared,
    /// The KMS interface with NDR and the odd feature negotiation context alone.
    negotiation: Prepared,
}

static BINDS: std::sync::LazyLock<Binds> = std::sync::LazyLock::new(|| Binds {
    standard: Prepared::new(Bind::new(CALL_ID, KMS_INTERFACE, &OFFERED)),
    tells: Prepared::new(tells_bind(true)),
    tells_without_negotiation: Prepared::new(tells_bind(false)),
    negotiation: Prepared::new(Bind::new(
        CALL_ID,
        KMS_INTERFACE,
        &[NDR32, rpc::feature_negotiation(0xff)],
    )),
});

/// The tells in one bind: odd header flags (PFC_MAYBE) and 65535-byte fragment offers; the KMS
/// interface as version 1.0 (so that an honest runtime has a context to accept and answers
/// with a `bind_ack`), as version 2.0, and a made-up interface, each with NDR and NDR64 as the
/// ordinary bind offers them; and, with `negotiation`, a feature negotiation context with bits
/// no client sets.
fn tells_bind(negotiation: bool) -> Bind {
    let interfaces = [
        KMS_INTERFACE,
        KMS_INTERFACE.with_version(2, 0),
        MADE_UP_INTERFACE,
    ];
    let mut offers: Vec<(SyntaxId, SyntaxId)> = interfaces
        .iter()
        .flat_map(|interface| OFFERED.map(|transfer| (*interface, transfer)))
        .collect();
    if negotiation {
        offers.push((KMS_INTERFACE, rpc::feature_negotiation(0xff)));
    }
    Bind {
        flags: rpc::PFC_FIRST_FRAG | rpc::PFC_LAST_FRAG | rpc::PFC_MAYBE,
        max_xmit_frag: ODD_FRAG,
        max_recv_frag: ODD_FRAG,
        contexts: offers
            .into_iter()
            .enumerate()
            .map(|(id, (abstract_syntax, transfer))| rpc::OfferedContext {
                context_id: id as u16,
                abstract_syntax,
                transfer_syntaxes: vec![transfer],
            })
            .collect(),
        ..Bind::new(CALL_ID, KMS_INTERFACE, &[])
    }
}

/// What the bind with PFC_MAYBE and 65535-byte fragments gets back.
fn odd_bind_tells(sent: &Bind, ack: &BindAck) -> Vec<EmulatorEvidence> {
    let mut evidence = Vec::new();
    if (ack.max_xmit_frag, ack.max_recv_frag) == (sent.max_xmit_frag, sent.max_recv_frag) {
        evidence.push(EmulatorEvidence::new(
            EmulatorTell::EchoesFragmentSizes,
            format!(
                "echoed an offer of {}/{}-byte fragments instead of negotiating them (a conforming runtime grants at most 5840)",
                sent.max_xmit_frag, sent.max_recv_frag
            ),
        ));
    }
    if ack.flags & rpc::PFC_MAYBE != 0 {
        evidence.push(EmulatorEvidence::new(
            EmulatorTell::EchoesMaybeFlag,
            format!(
                "echoed PFC_MAYBE (bind flags {:#04x}, bind_ack flags {:#04x}): the reply copies the request header",
                sent.flags, ack.flags
            ),
        ));
    }
    evidence.extend(
        standard_bind_tells(sent, ack)
            .into_iter()
            .filter(|e| e.tell == EmulatorTell::MultiplexUnasked),
    );
    evidence
}

struct BindResult {
    outcome: ProbeOutcome,
    connect: Option<Duration>,
    detail: String,
    transfer_syntax: Option<String>,
    /// The `bind_ack`, when one came.
    ack: Option<BindAck>,
}

impl BindResult {
    fn new(outcome: ProbeOutcome, connect: Option<Duration>, detail: impl Into<String>) -> Self {
        Self {
            outcome,
            connect,
            detail: detail.into(),
            transfer_syntax: None,
            ack: None,
        }
    }
}

/// How long one bind may take.
#[derive(Debug, Clone, Copy)]
struct Budget {
    /// Connect, send and reply all end here.
    deadline: Instant,
    /// The reply is awaited at most this long after the connect (and never past `deadline`).
    reply_within: Option<Duration>,
    /// The whole budget, for the messages.
    timeout: Duration,
}

impl Budget {
    fn new(timeout: Duration) -> Self {
        Self {
            deadline: Instant::now() + timeout,
            reply_within: None,
            timeout,
        }
    }
}

/// One connection, one bind, one reply.
async fn bind_once(
    endpoint: SocketAddr,
    prepared: &'static Prepared,
    budget: Budget,
) -> BindResult {
    match connect(endpoint, budget).await {
        Ok(connected) => exchange(connected, prepared, budget).await,
        Err(failed) => failed,
    }
}

/// What follows the connect, boxed: the binds on an established connection, or a failed
/// connect's result as it is. Made outside the caller's `async`, which would otherwise reserve
/// room for the unboxed future (and, matching on the connect there, for its result) too.
fn after_connect(
    endpoint: SocketAddr,
    connected: Result<Connected, BindResult>,
    budget: Budget,
    options: ProbeOptions,
) -> BoxFuture<'static, (BindResult, Vec<EmulatorEvidence>)> {
    let connected = match connected {
        Ok(connected) => connected,
        Err(failed) => return futures_util::future::ready((failed, Vec::new())).boxed(),
    };
    if options.check_emulator {
        bind_with_tells(endpoint, connected, budget).boxed()
    } else {
        async move {
            let result = exchange(connected, &BINDS.standard, budget).await;
            (result, Vec::new())
        }
        .boxed()
    }
}

/// An established connection and how long it took.
struct Connected {
    stream: TcpStream,
    took: Duration,
}

/// The TCP connect, within the budget; a failure is the probe's result.
async fn connect(endpoint: SocketAddr, budget: Budget) -> Result<Connected, BindResult> {
    let started = Instant::now();
    let socket = match endpoint {
        SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4(),
        SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6(),
    };
    let socket = match socket {
        Ok(socket) => socket,
        Err(e) => return Err(connect_error(&e)),
    };
    match timeout_at(budget.deadline.into(), socket.connect(endpoint)).await {
        Err(_) => Err(BindResult::new(
            ProbeOutcome::ConnectTimeout,
            None,
            format!(
                "TCP connect timed out after {:?} (host down or port filtered)",
                budget.timeout
            ),
        )),
        Ok(Err(e)) => Err(connect_error(&e)),
        Ok(Ok(stream)) => Ok(Connected {
            stream,
            took: started.elapsed(),
        }),
    }
}

/// The bind on an established connection, and its reply.
async fn exchange(connected: Connected, prepared: &'static Prepared, budget: Budget) -> BindResult {
    let bind = &prepared.bind;
    let timeout = budget.timeout;
    let Connected { mut stream, took } = connected;
    let connect = Some(took);
    let deadline = budget.reply_within.map_or(budget.deadline, |wait| {
        budget.deadline.min(Instant::now() + wait)
    });
    let deadline = tokio::time::Instant::from(deadline);
    // No TCP_NODELAY: the bind is one write on an idle connection, which Nagle never holds.
    let bind_bytes = &prepared.bytes;
    match timeout_at(deadline, stream.write_all(bind_bytes)).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            return BindResult::new(
                ProbeOutcome::Closed,
                connect,
                format!("connection dropped while sending the bind: {e}"),
            );
        }
        Err(_) => {
            return BindResult::new(
                ProbeOutcome::Silent,
                connect,
                "the port accepted TCP but did not take our bind before the timeout",
            );
        }
    }
    let pdu = match timeout_at(deadline, read_pdu(&mut stream)).await {
        Err(_) => {
            return BindResult::new(
                ProbeOutcome::Silent,
                connect,
                format!("the port accepted TCP but sent no complete reply within {timeout:?}"),
            );
        }
        Ok(Err(ReadFailure::ClosedBeforeReply)) => {
            return BindResult::new(
                ProbeOutcome::Closed,
                connect,
                "the port accepted TCP, then closed without replying to the RPC bind",
            );
        }
        Ok(Err(ReadFailure::NotRpc(detail))) => {
            return BindResult::new(ProbeOutcome::NotRpc, connect, detail);
        }
        Ok(Ok(pdu)) => pdu,
    };
    // Dropping the stream closes it (a FIN, as shutdown would send): one system call, not two.
    drop(stream);
    match parse_bind_reply(&pdu, bind.call_id) {
        Err(e) => BindResult::new(
            ProbeOutcome::NotRpc,
            connect,
            format!("malformed DCE/RPC reply: {e}"),
        ),
        Ok(reply) => interpret(bind, reply, connect),
    }
}

fn interpret(bind: &Bind, reply: BindReply, connect: Option<Duration>) -> BindResult {
    let (outcome, detail) = match reply {
        BindReply::Ack(ack) => return interpret_ack(&bind.contexts, ack, connect),
        BindReply::Nak { reason } => (
            ProbeOutcome::RpcNak,
            format!("an RPC server that refused the bind (bind_nak, reason {reason})"),
        ),
        BindReply::Fault { status } => (
            ProbeOutcome::RpcNak,
            format!("an RPC server that answered the bind with a fault (status {status:#010x})"),
        ),
        BindReply::Unexpected { packet_type } => (
            ProbeOutcome::NotRpc,
            format!("DCE/RPC packet type {packet_type} in reply to a bind"),
        ),
    };
    BindResult::new(outcome, connect, detail)
}

/// A `bind_ack`: one result per offered context, and an accepted one must name the transfer
/// syntax offered in that context; anything else is not an honest KMS endpoint.
fn interpret_ack(
    offered: &[rpc::OfferedContext],
    ack: BindAck,
    connect: Option<Duration>,
) -> BindResult {
    let accepted = ack
        .results
        .iter()
        .position(|r| r.result == rpc::ContextResult::ACCEPTANCE);
    let mut result = if ack.results.len() != offered.len() {
        BindResult::new(
            ProbeOutcome::NotRpc,
            connect,
            format!(
                "bind_ack with {} results for {} offered contexts",
                ack.results.len(),
                offered.len()
            ),
        )
    } else if let Some(index) = accepted {
        let syntax = ack.results[index].transfer_syntax;
        if !offered[index].transfer_syntaxes.contains(&syntax) {
            BindResult::new(
                ProbeOutcome::NotRpc,
                connect,
                format!(
                    "bind_ack accepted context {index} with transfer syntax {syntax}, which was not offered there"
                ),
            )
        } else {
            let name = if syntax == NDR64 { "NDR64" } else { "NDR" };
            BindResult {
                transfer_syntax: Some(name.to_string()),
                ..BindResult::new(
                    ProbeOutcome::KmsRpc,
                    connect,
                    format!("bind_ack: KMS interface accepted with {name}"),
                )
            }
        }
    } else {
        let why = ack
            .results
            .iter()
            .map(|r| r.describe())
            .collect::<Vec<_>>()
            .join("; ");
        BindResult::new(
            ProbeOutcome::RpcRejected,
            connect,
            format!(
                "an RPC server without the KMS interface (bind_ack rejected every context: {why})"
            ),
        )
    };
    result.ack = Some(ack);
    result
}

fn connect_error(e: &io::Error) -> BindResult {
    let (outcome, what) = match e.kind() {
        io::ErrorKind::ConnectionRefused => (
            ProbeOutcome::Refused,
            "TCP connection refused (nothing listens on the port)",
        ),
        io::ErrorKind::TimedOut => (ProbeOutcome::ConnectTimeout, "TCP connect timed out"),
        // The handshake completed (a reset is only sent on an established connection) and the
        // peer reset it before the connect returned: the same as a reset after it returned, so
        // the verdict does not depend on which came first.
        io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted => (
            ProbeOutcome::Closed,
            "the port accepted TCP, then reset the connection",
        ),
        io::ErrorKind::HostUnreachable => (ProbeOutcome::Unreachable, "host unreachable"),
        io::ErrorKind::NetworkUnreachable => (ProbeOutcome::Unreachable, "network unreachable"),
        _ => (ProbeOutcome::Unreachable, "TCP connect failed"),
    };
    BindResult::new(outcome, None, format!("{what}: {e}"))
}

enum ReadFailure {
    ClosedBeforeReply,
    NotRpc(String),
}

/// Reads one PDU: the 16-byte header, then the rest of `frag_length`, never more than the
/// parser's limit.
async fn read_pdu(stream: &mut TcpStream) -> Result<Vec<u8>, ReadFailure> {
    let mut header = [0u8; rpc::HEADER_LEN];
    let mut got = 0;
    while got < rpc::HEADER_LEN {
        match stream.read(&mut header[got..]).await {
            Ok(0) | Err(_) => break,
            Ok(n) => got += n,
        }
        // Judge the first bytes as soon as they arrive: a banner or garbage need not fill a
        // header before we know it is not DCE/RPC.
        if header[0] != 5 || (got >= 2 && header[1] != 0) {
            return Err(ReadFailure::NotRpc(format!(
                "the reply is not DCE/RPC; first bytes: {}",
                printable(&header[..got])
            )));
        }
    }
    if got == 0 {
        return Err(ReadFailure::ClosedBeforeReply);
    }
    if got < rpc::HEADER_LEN {
        return Err(ReadFailure::NotRpc(format!(
            "connection closed after {got} bytes of an RPC header"
        )));
    }
    let parsed = parse_header(&header)
        .map_err(|e| ReadFailure::NotRpc(format!("the reply is not DCE/RPC: {e}")))?;
    let mut pdu = vec![0u8; parsed.frag_length];
    pdu[..rpc::HEADER_LEN].copy_from_slice(&header);
    let body = read_up_to(stream, &mut pdu[rpc::HEADER_LEN..]).await;
    if rpc::HEADER_LEN + body < parsed.frag_length {
        return Err(ReadFailure::NotRpc(format!(
            "connection closed mid-PDU ({} of {} bytes)",
            rpc::HEADER_LEN + body,
            parsed.frag_length
        )));
    }
    Ok(pdu)
}

/// Fills `buf` until it is full or the peer closes (or errors); returns how much arrived.
async fn read_up_to(stream: &mut TcpStream, buf: &mut [u8]) -> usize {
    let mut filled = 0;
    while filled < buf.len() {
        match stream.read(&mut buf[filled..]).await {
            Ok(0) | Err(_) => break,
            Ok(n) => filled += n,
        }
    }
    filled
}

/// A short, safe rendering of bytes from the network, for the report.
fn printable(bytes: &[u8]) -> String {
    let text: String = bytes
        .iter()
        .take(16)
        .map(|&b| {
            if b.is_ascii_graphic() || b == b' ' {
                b as char
            } else {
                '.'
            }
        })
        .collect();
    format!("{text:?}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finished(endpoint: SocketAddr) -> EndpointProbe {
        EndpointProbe {
            address: endpoint.ip(),
            port: endpoint.port(),
            outcome: ProbeOutcome::Refused,
            duration_ms: 1.0,
            connect_ms: None,
            detail: String::new(),
            transfer_syntax: None,
            emulator_evidence: Vec::new(),
        }
    }

    fn endpoint(n: usize) -> SocketAddr {
        SocketAddr::new(IpAddr::from((n as u32 + 1).to_be_bytes()), 1688)
    }

    #[test]
    fn the_oldest_finished_results_are_forgotten_and_running_ones_kept() {
        let mut remembered = Remembered::default();
        let never = || PendingProbe(futures_util::future::pending().boxed().shared());
        let done = |n: usize| {
            let probe = Arc::new(finished(endpoint(n)));
            let pending = PendingProbe(futures_util::future::ready(probe).boxed().shared());
            assert!(pending.clone().now_or_never().is_some());
            pending
        };
        // The first endpoint's probe is still running; every other one has finished.
        let running = remembered.get(endpoint(0), never);
        for n in 1..REMEMBERED + 10 {
            remembered.get(endpoint(n), || done(n));
        }
        assert_eq!(remembered.results.len(), REMEMBERED);
        assert_eq!(remembered.probed, REMEMBERED + 10);
        // Asked again, a remembered endpoint is the same probe: probed once.
        let again = remembered.get(endpoint(0), || panic!("probed twice"));
        assert!(again.0.ptr_eq(&running.0));
        let newest = remembered.get(endpoint(REMEMBERED + 9), || panic!("probed twice"));
        assert_eq!(
            newest.0.peek().map(|o| o.address),
            Some(endpoint(REMEMBERED + 9).ip())
        );
        assert_eq!(remembered.probed, REMEMBERED + 10);
        // The oldest finished ones were forgotten: met again, they are new (probed again).
        assert!(!remembered.get(endpoint(1), never).finished());
        assert_eq!(remembered.probed, REMEMBERED + 11);
        assert!(remembered.results.len() <= REMEMBERED);
    }
}
