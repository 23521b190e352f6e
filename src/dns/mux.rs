//! UDP to DNS servers the way resolvers do it: per server, one connected socket shared by every
//! query of the scan (the kernel drops datagrams from any other source), random query IDs, a
//! table of pending queries matched on (ID, question), retransmission on an RTT estimate with
//! exponential backoff and jitter, and a window of outstanding queries that shrinks when the
//! server loses or refuses queries and grows while it answers.
//!
//! Sockets are bounded by construction: at most [`MAX_CHANNELS`] servers get a channel of their
//! own; queries to further servers each use a socket of their own for their lifetime, under the
//! scan's concurrency bound. So "too many open files" cannot come from DNS.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, MessageType, Query};
use tokio::net::UdpSocket;
use tokio::sync::{Notify, oneshot};
use tokio::task::JoinHandle;

use crate::dns::{QueryError, Received};
use crate::model::Transport;

mod liveness;
use liveness::{Admission, Liveness};

/// Servers with a channel (socket, reader task, RTT, window) of their own.
pub(crate) const MAX_CHANNELS: usize = 512;
/// The largest UDP reply read (EDNS buffer 1232 is what we advertise; a server may send more).
const MAX_DATAGRAM: usize = 4096;

/// RFC 6298-style round-trip estimate, per server.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Rtt {
    srtt: Option<Duration>,
    rttvar: Duration,
}

impl Rtt {
    /// Before any sample: about what resolvers start with for an unknown server.
    pub(crate) const INITIAL: Duration = Duration::from_millis(400);
    /// Loopback and LAN servers answer in well under a millisecond; below this, a
    /// retransmission would only add load.
    pub(crate) const FLOOR: Duration = Duration::from_millis(50);
    pub(crate) const CEILING: Duration = Duration::from_secs(3);

    pub(crate) fn rto(&self) -> Duration {
        match self.srtt {
            None => Self::INITIAL,
            Some(srtt) => (srtt + 4 * self.rttvar).clamp(Self::FLOOR, Self::CEILING),
        }
    }

    /// A round trip measured on a query that was sent once (Karn: never on a resend).
    pub(crate) fn sample(&mut self, rtt: Duration) {
        match self.srtt {
            None => {
                self.srtt = Some(rtt);
                self.rttvar = rtt / 2;
            }
            Some(srtt) => {
                let delta = srtt.abs_diff(rtt);
                self.rttvar = self.rttvar * 3 / 4 + delta / 4;
                self.srtt = Some(srtt * 7 / 8 + rtt / 8);
            }
        }
    }

    /// How long to wait after try `attempt` (0 first): the RTO doubled per resend, with ±25 %
    /// jitter (`unit` in 0..1) so that the resends of a burst do not arrive together again.
    pub(crate) fn wait(&self, attempt: u32, unit: f64) -> Duration {
        let base = self.rto().saturating_mul(1 << attempt.min(6));
        base.mul_f64(0.75 + unit.clamp(0.0, 1.0) / 2.0)
            .min(Self::CEILING * 2)
    }
}

/// Outstanding queries allowed towards one server: additive increase while it answers,
/// halved (at most once per `COOLDOWN`) when a query is lost or refused.
#[derive(Debug, Clone)]
pub(crate) struct Window {
    limit: f64,
    outstanding: usize,
    last_cut: Option<Instant>,
}

impl Window {
    pub(crate) const INITIAL: f64 = 32.0;
    /// Random loss on a path is not congestion: below this the resends of a few lost queries
    /// would hold every place and starve the rest.
    pub(crate) const MIN: f64 = 8.0;
    pub(crate) const MAX: f64 = 64.0;
    const COOLDOWN: Duration = Duration::from_millis(100);

    pub(crate) fn new() -> Self {
        Self {
            limit: Self::INITIAL,
            outstanding: 0,
            last_cut: None,
        }
    }

    pub(crate) fn limit(&self) -> usize {
        self.limit as usize
    }

    pub(crate) fn try_acquire(&mut self) -> bool {
        if self.outstanding < self.limit() {
            self.outstanding += 1;
            true
        } else {
            false
        }
    }

    pub(crate) fn release(&mut self) {
        self.outstanding = self.outstanding.saturating_sub(1);
    }

    pub(crate) fn on_answer(&mut self) {
        self.limit = (self.limit + 1.0 / self.limit).min(Self::MAX);
    }

    /// A lost query, SERVFAIL or REFUSED: the server is struggling or unwilling.
    pub(crate) fn on_trouble(&mut self, now: Instant) {
        if self
            .last_cut
            .is_none_or(|t| now.duration_since(t) >= Self::COOLDOWN)
        {
            self.limit = (self.limit / 2.0).max(Self::MIN);
            self.last_cut = Some(now);
        }
    }
}

/// What became of one datagram that arrived on a channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Routed {
    Delivered,
    /// No query with that ID is waiting (late, duplicate, or forged).
    Unexpected,
    /// A query with that ID waits, but for another question: not its answer.
    WrongQuestion,
    /// Not a DNS response at all.
    Malformed,
}

/// The queries waiting for an answer on one channel, by ID.
#[derive(Default)]
pub(crate) struct Pending {
    waiting: HashMap<u16, Waiting>,
}

/// One query waiting for its answer.
struct Waiting {
    question: Query,
    tx: oneshot::Sender<Received>,
    /// Why the last datagram with this query's ID could not be its answer (unparseable, not a
    /// response, another opcode): the query goes on waiting for a good one, and if none comes
    /// the failure is this, not a timeout.
    rejected: Option<String>,
}

impl Pending {
    pub(crate) fn contains(&self, id: u16) -> bool {
        self.waiting.contains_key(&id)
    }

    pub(crate) fn insert(&mut self, id: u16, question: Query, tx: oneshot::Sender<Received>) {
        self.waiting.insert(
            id,
            Waiting {
                question,
                tx,
                rejected: None,
            },
        );
    }

    pub(crate) fn remove(&mut self, id: u16) {
        self.waiting.remove(&id);
    }

    /// Why the replies with this ID so far were unusable, if any came.
    pub(crate) fn rejected(&self, id: u16) -> Option<String> {
        self.waiting.get(&id).and_then(|w| w.rejected.clone())
    }

    /// Hands `datagram` to the query it answers, if it answers one: the same ID, a response
    /// to a standard query (opcode QUERY), and the same question (name compared
    /// case-insensitively, type and class).
    pub(crate) fn route(&mut self, datagram: &[u8]) -> Routed {
        let Some(id) = datagram.get(..2).map(|b| u16::from_be_bytes([b[0], b[1]])) else {
            return Routed::Malformed;
        };
        let Some(waiting) = self.waiting.get_mut(&id) else {
            return Routed::Unexpected;
        };
        let message = match Message::from_vec(datagram) {
            Ok(message) => message,
            Err(e) => {
                waiting.rejected = Some(format!("a reply that does not parse ({e})"));
                return Routed::Malformed;
            }
        };
        if message.metadata.message_type != MessageType::Response {
            waiting.rejected = Some("a message with the query's ID that is not a response".into());
            return Routed::Malformed;
        }
        if message.metadata.op_code != hickory_proto::op::OpCode::Query {
            waiting.rejected = Some(format!(
                "a reply with opcode {} to a standard query (opcode QUERY)",
                u8::from(message.metadata.op_code)
            ));
            return Routed::Malformed;
        }
        let matches = |q: &Query| match message.queries.as_slice() {
            [asked] => {
                crate::model::name::same_name(asked.name(), q.name())
                    && asked.query_type() == q.query_type()
                    && asked.query_class() == q.query_class()
            }
            // A server that does not know EDNS may answer FORMERR with the header alone, as
            // resolvers accept (the question is then asked again without EDNS).
            [] => message.metadata.response_code == hickory_proto::op::ResponseCode::FormErr,
            _ => false,
        };
        if !matches(&waiting.question) {
            return Routed::WrongQuestion;
        }
        if let Some(waiting) = self.waiting.remove(&id) {
            let _ = waiting.tx.send(Received {
                message,
                wire_len: datagram.len(),
            });
        }
        Routed::Delivered
    }
}

/// Counters of what the channels saw, for the report's debug log and for tests.
#[derive(Debug, Default)]
pub(crate) struct Stats {
    pub(crate) sent: AtomicU64,
    pub(crate) resent: AtomicU64,
    pub(crate) dropped: AtomicU64,
}

/// One server's channel.
struct Channel {
    /// Set by the reader when its socket fails for good: the next query opens a new channel.
    dead: Arc<std::sync::atomic::AtomicBool>,
    socket: Arc<UdpSocket>,
    pending: Arc<Mutex<Pending>>,
    reader: JoinHandle<()>,
    rtt: Mutex<Rtt>,
    window: Mutex<Window>,
    opened: Notify,
}

impl Drop for Channel {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

/// One server's TCP connection, shared by every query that must go over TCP (a truncated UDP
/// answer), pipelined: each query written as it comes, the answers routed by ID.
struct TcpChannel {
    writer: tokio::sync::Mutex<tokio::net::tcp::OwnedWriteHalf>,
    pending: Arc<Mutex<Pending>>,
    dead: Arc<std::sync::atomic::AtomicBool>,
    reader: JoinHandle<()>,
}

impl Drop for TcpChannel {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

/// A server's TCP connection, if one is open; locked across a connect.
type TcpSlot = tokio::sync::Mutex<Option<Arc<TcpChannel>>>;

/// The scan's UDP channels to DNS servers (and TCP connections for truncated answers).
#[derive(Default)]
pub(crate) struct Mux {
    /// Per server, its connection; each server's own lock is held across its connect, so that
    /// two queries share one connection and a server that does not accept holds up no other.
    tcp: Mutex<HashMap<SocketAddr, Arc<TcpSlot>>>,
    channels: Mutex<HashMap<SocketAddr, Arc<Channel>>>,
    ids: Mutex<IdSource>,
    pub(crate) stats: Arc<Stats>,
    /// Servers that stopped answering, held back (one timeout per scan, not per query).
    liveness: Liveness,
}

impl Mux {
    /// The error a query to `server` over `transport` would meet now because the server is
    /// held back (see [`liveness`]), without waiting for anything: callers skip their queues.
    pub(crate) fn refusal(
        &self,
        server: SocketAddr,
        transport: Transport,
        timeout: Duration,
    ) -> Option<QueryError> {
        self.liveness
            .refusal(server, transport, timeout, Instant::now())
    }

    /// Sends `request` (its ID is chosen here) to `server` over UDP until an answer to its
    /// question arrives or `budget` has passed since it was first sent (`timeout` is the
    /// scan's, for the evidence against a silent server). Waiting for a place in the server's
    /// window comes before: a struggling server makes the scan slower, not its answers "lost";
    /// a server that answers nothing is held back, and the queries waiting for it fail at once.
    pub(crate) async fn exchange(
        &self,
        server: SocketAddr,
        mut request: Message,
        budget: Duration,
        timeout: Duration,
    ) -> Result<Received, QueryError> {
        let question = question_of(&request)?;
        let admission = self
            .liveness
            .admit(server, Transport::Udp, timeout, Instant::now())?;
        let _recheck = RecheckGuard::new(&self.liveness, server, Transport::Udp, admission);
        let channel = match self.channel(server).await {
            Some(channel) => channel,
            None => {
                let deadline = Instant::now() + budget;
                return self.one_off(server, request, deadline, budget).await;
            }
        };
        let _slot = Slot::acquire(&channel, admission, || {
            self.liveness
                .refusal(server, Transport::Udp, timeout, Instant::now())
        })
        .await?;
        let deadline = Instant::now() + budget;
        let (registered, mut rx) = self.register(&channel.pending, question);
        let bytes = registered.encode(&mut request)?;
        let started = Instant::now();
        for attempt in 0.. {
            if attempt == 0 {
                self.stats.sent.fetch_add(1, Ordering::Relaxed);
            } else {
                self.stats.resent.fetch_add(1, Ordering::Relaxed);
            }
            if let Err(e) = channel.socket.send(&bytes).await {
                return Err(QueryError::Network(e.to_string()));
            }
            let wait = lock(&channel.rtt)
                .wait(attempt, lock(&self.ids).unit())
                .min(deadline.saturating_duration_since(Instant::now()));
            match tokio::time::timeout(wait, &mut rx).await {
                Ok(Ok(received)) => {
                    // Only a first attempt's answer times the server: a resent query's answer
                    // could be to either copy.
                    let rtt = (attempt == 0).then(|| started.elapsed());
                    self.answered(server, &channel, rtt, &received);
                    return Ok(received);
                }
                // The reader dropped the query: the port is unreachable (ICMP), or the socket
                // failed. Either way no answer will come on this channel.
                Ok(Err(_)) => {
                    return Err(QueryError::Network(
                        "connection refused (nothing serves DNS on that port)".into(),
                    ));
                }
                Err(_) => {
                    let now = Instant::now();
                    lock(&channel.window).on_trouble(now);
                    if now >= deadline {
                        // No usable answer, silence or only unusable replies, counts against
                        // the server; once it is held back, the queries waiting for a place
                        // are refused now.
                        if self
                            .liveness
                            .unanswered(server, Transport::Udp, started, timeout, now)
                        {
                            channel.opened.notify_waiters();
                        }
                        // An unusable reply is what to report, not silence.
                        return Err(match lock(&channel.pending).rejected(registered.id) {
                            Some(why) => QueryError::Malformed(why),
                            None => QueryError::Timeout(budget),
                        });
                    }
                }
            }
        }
        Err(QueryError::Timeout(budget))
    }

    /// What an answer from `server` teaches: it is alive, its round trip (when `rtt` is
    /// known), and whether its window may grow (an answer) or must shrink (SERVFAIL, REFUSED:
    /// a server in trouble).
    fn answered(
        &self,
        server: SocketAddr,
        channel: &Channel,
        rtt: Option<Duration>,
        received: &Received,
    ) {
        let now = Instant::now();
        self.liveness.heard(server, Transport::Udp, now);
        if let Some(rtt) = rtt {
            lock(&channel.rtt).sample(rtt);
        }
        let troubled = matches!(
            received.message.metadata.response_code,
            hickory_proto::op::ResponseCode::ServFail | hickory_proto::op::ResponseCode::Refused
        );
        let mut window = lock(&channel.window);
        if troubled {
            window.on_trouble(now);
        } else {
            window.on_answer();
        }
    }

    /// Sends `request` over the server's shared TCP connection (opened on first use, opened
    /// again once if the server closed it) and waits for its answer until `deadline`.
    pub(crate) async fn exchange_tcp(
        &self,
        server: SocketAddr,
        request: Message,
        deadline: Instant,
        timeout: Duration,
    ) -> Result<Received, QueryError> {
        let admission = self
            .liveness
            .admit(server, Transport::Tcp, timeout, Instant::now())?;
        let _recheck = RecheckGuard::new(&self.liveness, server, Transport::Tcp, admission);
        let started = Instant::now();
        let result = self.tcp_attempts(server, request, deadline, timeout).await;
        let now = Instant::now();
        match &result {
            Ok(_) => self.liveness.heard(server, Transport::Tcp, now),
            Err(QueryError::Timeout(_)) => {
                self.liveness
                    .unanswered(server, Transport::Tcp, started, timeout, now);
            }
            Err(_) => {}
        }
        result
    }

    async fn tcp_attempts(
        &self,
        server: SocketAddr,
        request: Message,
        deadline: Instant,
        timeout: Duration,
    ) -> Result<Received, QueryError> {
        let mut last = None;
        for _ in 0..2 {
            let channel =
                match tokio::time::timeout_at(deadline.into(), self.tcp_channel(server)).await {
                    Err(_) => return Err(QueryError::Timeout(timeout)),
                    Ok(Err(e)) => return Err(QueryError::Network(e.to_string())),
                    Ok(Ok(channel)) => channel,
                };
            match self
                .over(&channel, request.clone(), deadline, timeout)
                .await
            {
                // The server closed the connection (idle, or it does not pipeline): once more.
                Err(QueryError::Network(e)) if channel.dead.load(Ordering::Relaxed) => {
                    last = Some(QueryError::Network(e));
                }
                other => return other,
            }
        }
        Err(last.unwrap_or(QueryError::Timeout(timeout)))
    }

    async fn over(
        &self,
        channel: &TcpChannel,
        mut request: Message,
        deadline: Instant,
        timeout: Duration,
    ) -> Result<Received, QueryError> {
        let question = question_of(&request)?;
        let (registered, rx) = self.register(&channel.pending, question);
        let bytes = registered.encode(&mut request)?;
        let len = u16::try_from(bytes.len())
            .map_err(|_| QueryError::Malformed("query too large".into()))?;
        let mut framed = len.to_be_bytes().to_vec();
        framed.extend_from_slice(&bytes);
        let exchange = async {
            {
                use tokio::io::AsyncWriteExt;
                let mut writer = channel.writer.lock().await;
                if let Err(e) = writer.write_all(&framed).await {
                    channel.dead.store(true, Ordering::Relaxed);
                    return Err(QueryError::Network(e.to_string()));
                }
            }
            self.stats.sent.fetch_add(1, Ordering::Relaxed);
            rx.await.map_err(|_| {
                QueryError::Network("the server closed the TCP connection before answering".into())
            })
        };
        match tokio::time::timeout_at(deadline.into(), exchange).await {
            Ok(result) => result,
            Err(_) => Err(match lock(&channel.pending).rejected(registered.id) {
                Some(why) => QueryError::Malformed(why),
                None => QueryError::Timeout(timeout),
            }),
        }
    }

    /// Puts a query for `question` in `pending` under a fresh random ID; it leaves the table
    /// when the returned guard is dropped, however the exchange ends.
    fn register<'p>(
        &self,
        pending: &'p Mutex<Pending>,
        question: Query,
    ) -> (Registered<'p>, oneshot::Receiver<Received>) {
        let (tx, rx) = oneshot::channel();
        let mut table = lock(pending);
        let id = lock(&self.ids).free(|id| table.contains(id));
        table.insert(id, question, tx);
        (Registered { pending, id }, rx)
    }

    /// The server's TCP connection, connected on first use (and again after it died).
    async fn tcp_channel(&self, server: SocketAddr) -> std::io::Result<Arc<TcpChannel>> {
        let slot = lock(&self.tcp).entry(server).or_default().clone();
        // Held across the connect: two queries that need TCP at once share one connection.
        let mut connection = slot.lock().await;
        if let Some(existing) = connection.as_ref()
            && !existing.dead.load(Ordering::Relaxed)
        {
            return Ok(existing.clone());
        }
        let stream = tokio::net::TcpStream::connect(server).await?;
        let _ = stream.set_nodelay(true);
        let (read, write) = stream.into_split();
        let pending = Arc::new(Mutex::new(Pending::default()));
        let dead = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let reader = tokio::spawn(read_tcp_replies(
            read,
            pending.clone(),
            dead.clone(),
            self.stats.clone(),
        ));
        let channel = Arc::new(TcpChannel {
            writer: tokio::sync::Mutex::new(write),
            pending,
            dead,
            reader,
        });
        *connection = Some(channel.clone());
        Ok(channel)
    }

    /// The server's channel, opened on first use; `None` when [`MAX_CHANNELS`] are open.
    async fn channel(&self, server: SocketAddr) -> Option<Arc<Channel>> {
        if let Some(existing) = lock(&self.channels).get(&server)
            && !existing.dead.load(Ordering::Relaxed)
        {
            return Some(existing.clone());
        }
        let socket = Arc::new(connected(server).await.ok()?);
        let pending = Arc::new(Mutex::new(Pending::default()));
        let dead = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let reader = tokio::spawn(read_replies(
            socket.clone(),
            pending.clone(),
            self.stats.clone(),
            dead.clone(),
        ));
        let channel = Arc::new(Channel {
            dead,
            socket,
            pending,
            reader,
            rtt: Mutex::new(Rtt::default()),
            window: Mutex::new(Window::new()),
            opened: Notify::new(),
        });
        let mut channels = lock(&self.channels);
        channels.retain(|_, c| !c.dead.load(Ordering::Relaxed));
        if channels.len() >= MAX_CHANNELS && !channels.contains_key(&server) {
            return None;
        }
        // Two first queries may race here: the first channel in the map wins.
        Some(channels.entry(server).or_insert(channel).clone())
    }

    /// A query to a server beyond the channel budget: a socket of its own, for this query only.
    async fn one_off(
        &self,
        server: SocketAddr,
        mut request: Message,
        deadline: Instant,
        timeout: Duration,
    ) -> Result<Received, QueryError> {
        let socket = connected(server)
            .await
            .map_err(|e| QueryError::Network(e.to_string()))?;
        let id = lock(&self.ids).free(|_| false);
        request.metadata.id = id;
        let question = request.queries.first().cloned();
        let bytes = request
            .to_vec()
            .map_err(|e| QueryError::Malformed(e.to_string()))?;
        let mut pending = Pending::default();
        let (tx, mut rx) = oneshot::channel();
        if let Some(q) = question {
            pending.insert(id, q, tx);
        }
        let exchange = async {
            socket
                .send(&bytes)
                .await
                .map_err(|e| QueryError::Network(e.to_string()))?;
            let mut buf = vec![0u8; MAX_DATAGRAM];
            loop {
                let n = socket
                    .recv(&mut buf)
                    .await
                    .map_err(|e| QueryError::Network(e.to_string()))?;
                if pending.route(&buf[..n]) == Routed::Delivered {
                    return rx
                        .try_recv()
                        .map_err(|_| QueryError::Network("no reply".into()));
                }
                self.stats.dropped.fetch_add(1, Ordering::Relaxed);
            }
        };
        match tokio::time::timeout_at(deadline.into(), exchange).await {
            Ok(result) => result,
            Err(_) => Err(QueryError::Timeout(timeout)),
        }
    }
}

/// The question a reply must repeat to be ours.
fn question_of(request: &Message) -> Result<Query, QueryError> {
    request
        .queries
        .first()
        .cloned()
        .ok_or_else(|| QueryError::Malformed("a query without a question".into()))
}

/// A UDP socket on a random port, connected to `server`: the kernel then drops datagrams from
/// any other address, and reports ICMP errors (nothing listening) to us.
async fn connected(server: SocketAddr) -> std::io::Result<UdpSocket> {
    let local: SocketAddr = if server.is_ipv6() {
        "[::]:0".parse().expect("a socket address")
    } else {
        "0.0.0.0:0".parse().expect("a socket address")
    };
    let socket = UdpSocket::bind(local).await?;
    #[cfg(windows)]
    crate::support::windows::ignore_udp_resets(&socket)?;
    socket.connect(server).await?;
    Ok(socket)
}

/// Reads the channel's datagrams and routes each to its query. Ends when the socket fails,
/// which drops every waiting query's sender: they fail at once instead of timing out.
async fn read_replies(
    socket: Arc<UdpSocket>,
    pending: Arc<Mutex<Pending>>,
    stats: Arc<Stats>,
    dead: Arc<std::sync::atomic::AtomicBool>,
) {
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        match socket.recv(&mut buf).await {
            Ok(n) => {
                if lock(&pending).route(&buf[..n]) != Routed::Delivered {
                    stats.dropped.fetch_add(1, Ordering::Relaxed);
                }
            }
            // ICMP port unreachable on a connected socket: nothing serves DNS there. Fail
            // the waiting queries now rather than let each time out. Windows reports it as a
            // reset (WSAECONNRESET) and, unlike Linux, on the next receive of any later reply
            // too: the socket stays usable either way.
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::ConnectionRefused | std::io::ErrorKind::ConnectionReset
                ) =>
            {
                lock(&pending).waiting.clear();
            }
            Err(_) => {
                dead.store(true, Ordering::Relaxed);
                lock(&pending).waiting.clear();
                return;
            }
        }
    }
}

/// Reads length-prefixed answers off a TCP connection and routes each to its query. On EOF or
/// an error the connection is dead: the waiting queries fail at once (their senders drop).
async fn read_tcp_replies(
    mut read: tokio::net::tcp::OwnedReadHalf,
    pending: Arc<Mutex<Pending>>,
    dead: Arc<std::sync::atomic::AtomicBool>,
    stats: Arc<Stats>,
) {
    use tokio::io::AsyncReadExt;
    let mut buf = Vec::new();
    loop {
        let mut len = [0u8; 2];
        if read.read_exact(&mut len).await.is_err() {
            break;
        }
        buf.resize(usize::from(u16::from_be_bytes(len)), 0);
        if read.read_exact(&mut buf).await.is_err() {
            break;
        }
        if lock(&pending).route(&buf) != Routed::Delivered {
            stats.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
    dead.store(true, Ordering::Relaxed);
    lock(&pending).waiting.clear();
}

/// A place in the server's window, released when dropped.
struct Slot<'a> {
    channel: &'a Channel,
}

impl<'a> Slot<'a> {
    /// Waits for a place; an ordinary query gives up as soon as `refused` has an error for it
    /// (the server was held back while it waited), a re-check waits for its place.
    async fn acquire(
        channel: &'a Channel,
        admission: Admission,
        refused: impl Fn() -> Option<QueryError>,
    ) -> Result<Slot<'a>, QueryError> {
        loop {
            let notified = channel.opened.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if lock(&channel.window).try_acquire() {
                return Ok(Slot { channel });
            }
            if admission == Admission::Ordinary
                && let Some(error) = refused()
            {
                return Err(error);
            }
            notified.await;
        }
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        lock(&self.channel.window).release();
        self.channel.opened.notify_one();
    }
}

/// A re-check of a held-back server that ends without a verdict (its query abandoned, a socket
/// error) lets the next one go.
struct RecheckGuard<'a> {
    liveness: &'a Liveness,
    server: SocketAddr,
    transport: Transport,
    admission: Admission,
}

impl<'a> RecheckGuard<'a> {
    fn new(
        liveness: &'a Liveness,
        server: SocketAddr,
        transport: Transport,
        admission: Admission,
    ) -> Self {
        Self {
            liveness,
            server,
            transport,
            admission,
        }
    }
}

impl Drop for RecheckGuard<'_> {
    fn drop(&mut self) {
        if self.admission == Admission::Recheck {
            self.liveness.recheck_abandoned(self.server, self.transport);
        }
    }
}

/// Takes the query out of the table however the exchange ends.
struct Registered<'a> {
    pending: &'a Mutex<Pending>,
    id: u16,
}

impl Registered<'_> {
    /// The request on the wire, under this registration's ID.
    fn encode(&self, request: &mut Message) -> Result<Vec<u8>, QueryError> {
        request.metadata.id = self.id;
        request
            .to_vec()
            .map_err(|e| QueryError::Malformed(e.to_string()))
    }
}

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        lock(self.pending).remove(self.id);
    }
}

/// Query IDs and jitter: a SplitMix64 stream seeded from the OS, so IDs are unpredictable to an
/// off-path spoofer and never derived from the time alone.
struct IdSource {
    state: u64,
}

impl Default for IdSource {
    fn default() -> Self {
        let mut seed = [0u8; 8];
        let from_os = std::fs::File::open("/dev/urandom")
            .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut seed));
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let state = if from_os.is_ok() {
            u64::from_le_bytes(seed)
        } else {
            nanos ^ u64::from(std::process::id()) << 32
        };
        Self { state }
    }
}

impl IdSource {
    fn next(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A random ID that `taken` does not claim (65,536 IDs, a window of at most 256 taken).
    fn free(&mut self, taken: impl Fn(u16) -> bool) -> u16 {
        loop {
            let id = self.next() as u16;
            if !taken(id) {
                return id;
            }
        }
    }

    /// A uniform number in 0..1, for jitter.
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::OpCode;
    use hickory_proto::rr::{Name, RecordType};

    fn question(name: &str) -> Query {
        Query::query(Name::from_ascii(name).unwrap(), RecordType::SRV)
    }

    fn reply(id: u16, name: &str, rtype: RecordType) -> Vec<u8> {
        let mut m = Message::new(id, MessageType::Response, OpCode::Query);
        m.add_query(Query::query(Name::from_ascii(name).unwrap(), rtype));
        m.to_vec().unwrap()
    }

    #[test]
    fn replies_reach_only_the_query_they_answer() {
        let mut pending = Pending::default();
        let (tx, mut rx) = oneshot::channel();
        pending.insert(7, question("_vlmcs._tcp.a.example."), tx);
        // Another ID: late, duplicate or forged.
        assert_eq!(
            pending.route(&reply(8, "_vlmcs._tcp.a.example.", RecordType::SRV)),
            Routed::Unexpected
        );
        // The right ID, the wrong question (name, then type): not delivered, still waiting.
        assert_eq!(
            pending.route(&reply(7, "_vlmcs._tcp.b.example.", RecordType::SRV)),
            Routed::WrongQuestion
        );
        assert_eq!(
            pending.route(&reply(7, "_vlmcs._tcp.a.example.", RecordType::A)),
            Routed::WrongQuestion
        );
        assert!(rx.try_recv().is_err());
        // Garbage and a query (not a response) with the right ID.
        assert_eq!(pending.route(&[0, 7, 1]), Routed::Malformed);
        let mut query = Message::new(7, MessageType::Query, OpCode::Query);
        query.add_query(question("_vlmcs._tcp.a.example."));
        assert_eq!(pending.route(&query.to_vec().unwrap()), Routed::Malformed);
        assert_eq!(pending.route(&[0]), Routed::Malformed);
        // The answer, its name in another case: delivered once; a duplicate is unexpected.
        let answer = reply(7, "_VLMCS._tcp.A.example.", RecordType::SRV);
        assert_eq!(pending.route(&answer), Routed::Delivered);
        let delivered = rx.try_recv().unwrap();
        assert_eq!(delivered.message.metadata.id, 7);
        assert_eq!(delivered.wire_len, answer.len());
        assert_eq!(pending.route(&answer), Routed::Unexpected);
    }

    #[test]
    fn an_unusable_reply_is_remembered_as_the_reason_while_the_query_waits() {
        let mut pending = Pending::default();
        let (tx, mut rx) = oneshot::channel();
        pending.insert(5, question("_vlmcs._tcp.a.example."), tx);
        assert_eq!(pending.rejected(5), None);
        // Opcode 9, otherwise the right answer: not taken for one.
        let mut other = Message::new(5, MessageType::Response, OpCode::Unknown(9));
        other.add_query(question("_vlmcs._tcp.a.example."));
        assert_eq!(pending.route(&other.to_vec().unwrap()), Routed::Malformed);
        assert!(rx.try_recv().is_err());
        let why = pending.rejected(5).unwrap();
        assert!(why.contains("opcode 9"), "{why}");
        // A compression pointer that points at itself: does not parse.
        let mut looped = reply(5, "_vlmcs._tcp.a.example.", RecordType::SRV);
        looped.truncate(12);
        looped[5] = 1; // QDCOUNT 1
        looped.extend_from_slice(&[0xc0, 12, 0, 33, 0, 1]);
        assert_eq!(pending.route(&looped), Routed::Malformed);
        assert!(pending.rejected(5).unwrap().contains("does not parse"));
        // The good answer still arrives.
        let answer = reply(5, "_vlmcs._tcp.a.example.", RecordType::SRV);
        assert_eq!(pending.route(&answer), Routed::Delivered);
        assert!(rx.try_recv().is_ok());
    }

    #[test]
    fn a_formerr_without_a_question_is_an_answer_and_nothing_else_without_one_is() {
        let header_only = |id: u16, rcode: hickory_proto::op::ResponseCode| {
            let mut m = Message::new(id, MessageType::Response, OpCode::Query);
            m.metadata.response_code = rcode;
            m.to_vec().unwrap()
        };
        let mut pending = Pending::default();
        let (tx, mut rx) = oneshot::channel();
        pending.insert(9, question("_vlmcs._tcp.a.example."), tx);
        assert_eq!(
            pending.route(&header_only(9, hickory_proto::op::ResponseCode::NoError)),
            Routed::WrongQuestion
        );
        assert_eq!(
            pending.route(&header_only(9, hickory_proto::op::ResponseCode::ServFail)),
            Routed::WrongQuestion
        );
        assert!(rx.try_recv().is_err());
        assert_eq!(
            pending.route(&header_only(9, hickory_proto::op::ResponseCode::FormErr)),
            Routed::Delivered
        );
        let delivered = rx.try_recv().unwrap().message;
        assert_eq!(
            delivered.metadata.response_code,
            hickory_proto::op::ResponseCode::FormErr
        );
    }

    #[test]
    fn ids_are_random_and_never_one_in_use() {
        let mut ids = IdSource::default();
        let taken: std::collections::HashSet<u16> = (0..60_000).collect();
        for _ in 0..100 {
            assert!(ids.free(|id| taken.contains(&id)) >= 60_000);
        }
        let drawn: std::collections::HashSet<u16> = (0..1000).map(|_| ids.next() as u16).collect();
        assert!(drawn.len() > 980, "IDs repeat too often: {}", drawn.len());
        let units: Vec<f64> = (0..1000).map(|_| ids.unit()).collect();
        assert!(units.iter().all(|u| (0.0..1.0).contains(u)));
    }

    #[test]
    fn the_rto_follows_the_samples_within_floor_and_ceiling_and_backs_off_with_jitter() {
        let mut rtt = Rtt::default();
        assert_eq!(rtt.rto(), Rtt::INITIAL);
        rtt.sample(Duration::from_micros(200));
        assert_eq!(rtt.rto(), Rtt::FLOOR, "loopback: the floor");
        for _ in 0..20 {
            rtt.sample(Duration::from_millis(100));
        }
        let rto = rtt.rto();
        assert!(
            rto >= Duration::from_millis(100) && rto < Duration::from_millis(250),
            "{rto:?}"
        );
        // Doubling per resend, jittered within ±25 %.
        for attempt in 0..4 {
            let base = rto * (1 << attempt);
            let low = rtt.wait(attempt, 0.0);
            let high = rtt.wait(attempt, 0.999);
            assert!(
                low >= base.mul_f64(0.74) && high <= base.mul_f64(1.26),
                "{attempt}"
            );
            assert!(high > low);
        }
        for _ in 0..50 {
            rtt.sample(Duration::from_secs(10));
        }
        assert_eq!(rtt.rto(), Rtt::CEILING);
        assert!(rtt.wait(10, 0.5) <= Rtt::CEILING * 2);
    }

    #[test]
    fn the_window_halves_on_trouble_at_most_once_per_cooldown_and_grows_slowly() {
        let mut window = Window::new();
        let initial = window.limit();
        for _ in 0..initial {
            assert!(window.try_acquire());
        }
        assert!(!window.try_acquire(), "full");
        window.release();
        assert!(window.try_acquire());
        let now = Instant::now();
        window.on_trouble(now);
        assert_eq!(window.limit(), initial / 2);
        window.on_trouble(now + Duration::from_millis(10));
        assert_eq!(window.limit(), initial / 2, "one cut per cooldown");
        for i in 1..10 {
            window.on_trouble(now + Window::COOLDOWN * i);
        }
        assert_eq!(window.limit(), Window::MIN as usize);
        // Additive increase: about one per window of answers.
        let before = window.limit();
        for _ in 0..before * 3 {
            window.on_answer();
        }
        assert!(window.limit() > before && window.limit() <= before + 3);
        for _ in 0..100_000 {
            window.on_answer();
        }
        assert_eq!(window.limit(), Window::MAX as usize);
    }
}
