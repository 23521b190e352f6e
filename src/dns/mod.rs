//! DNS on the wire, everything the audit and the cleanup say to a DNS server. In come names
//! and servers; out go answers as each server gave them, and updates with their outcome.
//!
//! - here: one DNS question to one server, through hickory's client: UDP first, TCP when the
//!   answer comes back truncated. No cache and no resolver logic: the auditor wants to see
//!   exactly what each server says, including the response code and the AA bit.
//! - [`mux`]: many questions over one UDP socket per server, paced, with servers that fall
//!   silent held back.
//! - [`system`]: this machine's resolvers and search domains.
//! - [`update`]: RFC 2136 dynamic updates (exact-record deletes and adds, with prerequisites),
//!   signed through [`auth`]: TSIG ([`tsig`], RFC 8945) or GSS-TSIG (`gss`, RFC 3645, after
//!   the TKEY exchange of [`tkey`]).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use hickory_net::NetError;
use hickory_net::client::Client;
use hickory_net::runtime::TokioRuntimeProvider;
use hickory_net::tcp::TcpClientStream;
use hickory_net::udp::UdpClientStream;
use hickory_net::xfer::DnsHandle;
use hickory_proto::op::{DnsRequest, DnsRequestOptions, Message, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// UDP channels and TCP connections shared by a scan's queries.
pub mod auth;
#[cfg(feature = "gss")]
pub mod gss;
pub(crate) mod mux;
pub mod system;
pub mod tkey;
pub mod tsig;
pub mod update;

pub(crate) use crate::model::Transport;
// Names in presentation form live with the names; kept here too for the callers that read DNS.
pub use crate::model::name::parse_presentation;
pub(crate) use crate::model::name::{escaped, presentation};

/// A reply from a server, whatever its response code.
#[derive(Debug, Clone)]
pub struct Reply {
    /// The message as the server sent it.
    pub message: Message,
    /// The transport of the final answer.
    pub transport: Transport,
    /// The UDP answer had the TC bit and the question was asked again over TCP.
    pub truncated_over_udp: bool,
    /// Time from the first question to the final answer.
    pub elapsed: Duration,
    /// The reply's size on the wire, in bytes.
    pub wire_len: usize,
}

/// A message as it came off the wire, with its size there.
pub(crate) struct Received {
    pub(crate) message: Message,
    pub(crate) wire_len: usize,
}

/// The UDP payload size this tool advertises (EDNS, RFC 6891): the DNS Flag Day 2020 value,
/// which avoids IP fragmentation on any common path.
pub(crate) const EDNS_PAYLOAD: u16 = 1232;

impl Reply {
    pub(crate) fn response_code(&self) -> ResponseCode {
        self.message.metadata.response_code
    }

    /// Whether the server answered with authority (the AA bit).
    pub fn authoritative(&self) -> bool {
        self.message.metadata.authoritative
    }

    /// Whether the server may have left records out of the additional section for want of room:
    /// a server may drop additional data without setting TC (RFC 2181 section 9), and some do it
    /// by the RRset (Knot leaves out the AAAA of an SRV target and keeps its A). True when the
    /// reply came within one address record of the names it carries addresses for (an owner
    /// name as long as the longest of them, uncompressed, its fixed fields and an IPv6 address)
    /// of the size the server had to keep to: the payload size both sides advertise over UDP
    /// (512 without EDNS), 65,535 bytes over TCP.
    pub(crate) fn additional_may_be_cut(&self) -> bool {
        let limit = match self.transport {
            Transport::Tcp => usize::from(u16::MAX),
            Transport::Udp => match &self.message.edns {
                Some(edns) => usize::from(edns.max_payload().clamp(512, EDNS_PAYLOAD)),
                None => 512,
            },
        };
        // Names the additional section holds addresses for: SRV targets, name servers.
        let longest_name = self
            .message
            .answers
            .iter()
            .chain(&self.message.authorities)
            .filter_map(|r| match &r.data {
                RData::SRV(srv) => Some(srv.target.len() + 1),
                RData::NS(ns) => Some(ns.0.len() + 1),
                _ => None,
            })
            .max()
            .unwrap_or(255);
        // Type, class, TTL and length, then an IPv6 address.
        self.wire_len + longest_name + 10 + 16 > limit
    }
}

/// Why no reply came back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    /// No answer within the timeout.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// The question could not be sent or the connection failed.
    #[error("{0}")]
    Network(String),
    /// Only replies that could not be used (malformed, another question, ...).
    #[error("unusable reply: {0}")]
    Malformed(String),
    /// The server left a query without a usable answer for a whole timeout and has sent none
    /// since (nothing, or only replies that could not be used): it is not asked for every name
    /// any more (see `mux`), and this query was not sent.
    #[error(
        "no usable answer: the server has given none over {transport} for {} ({unanswered} queries unanswered or held back, timeout {}); it is asked again once every {} in case it comes back",
        seconds(*silent_for),
        seconds(*timeout),
        seconds(*recheck)
    )]
    HeldBack {
        /// The transport the server is silent on.
        transport: Transport,
        /// How long it has given no usable answer.
        silent_for: Duration,
        /// Queries left unanswered or held back since.
        unanswered: u64,
        /// The scan's timeout.
        timeout: Duration,
        /// How often it is asked again.
        recheck: Duration,
    },
    /// The TCP leg failed: after a truncated UDP answer (`udp_failure: None`), or after UDP
    /// itself failed (nothing listening there, say) and TCP was tried before concluding.
    #[error("over TCP{}: {error}", match udp_failure { Some(u) => format!(" (UDP: {u})"), None => " after a truncated UDP answer".into() })]
    OverTcp {
        /// How UDP failed, when it did.
        udp_failure: Option<String>,
        /// How TCP failed.
        error: Box<QueryError>,
    },
}

/// Whether a server's `detail` is the evidence of a held-back server (which a report shows),
/// rather than a plain timeout (which says nothing the status does not).
pub(crate) fn is_held_back_detail(detail: &str) -> bool {
    detail.starts_with(HELD_BACK_PREFIX)
}

const HELD_BACK_PREFIX: &str = "no usable answer: the server has given none";

/// A duration for messages, to a tenth of a second ("2.5 s").
fn seconds(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}

impl QueryError {
    /// The failure itself, whichever transport it happened on.
    pub(crate) fn innermost(&self) -> &QueryError {
        match self {
            Self::OverTcp { error, .. } => error.innermost(),
            other => other,
        }
    }
}

/// How to ask.
#[derive(Debug, Clone, Copy)]
pub struct QueryOptions {
    /// Set RD. Off for authoritative servers (a recursing server would answer from its
    /// cache), on for the bootstrap resolver.
    pub recursion_desired: bool,
    /// The whole question's time, both legs included.
    pub timeout: Duration,
}

/// Asks `server` for `name`/`record_type`, over UDP and then TCP if the answer was truncated.
/// The whole exchange, both transports included, is bounded by `options.timeout`.
pub async fn query(
    server: SocketAddr,
    name: &Name,
    record_type: RecordType,
    options: QueryOptions,
) -> Result<Reply, QueryError> {
    query_via(None, server, name, record_type, options).await
}

/// [`query`], its UDP leg through the scan's shared channels when `mux` is given (resends on
/// the server's RTT, within its window), else through a client of its own.
pub(crate) async fn query_via(
    mux: Option<&crate::dns::mux::Mux>,
    server: SocketAddr,
    name: &Name,
    record_type: RecordType,
    options: QueryOptions,
) -> Result<Reply, QueryError> {
    let started = Instant::now();
    let question = Question {
        server,
        name,
        record_type,
        options,
        deadline: started + options.timeout,
    };
    let mut edns = Edns::On;
    let mut udp = udp_leg(mux, &question, edns).await;
    if let Ok(received) = &udp
        && knows_no_edns(&received.message)
    {
        tracing::debug!(%server, name = %presentation(name), "FORMERR without OPT: asking again without EDNS");
        edns = Edns::Off;
        udp = udp_leg(mux, &question, edns).await;
    }
    let udp_failure = match udp {
        Ok(received) if !received.message.metadata.truncation => {
            return Ok(Reply {
                message: received.message,
                transport: Transport::Udp,
                truncated_over_udp: false,
                elapsed: started.elapsed(),
                wire_len: received.wire_len,
            });
        }
        Ok(_) => {
            tracing::debug!(%server, name = %presentation(name), "UDP answer truncated, asking again over TCP");
            None
        }
        // Nothing answered over UDP (port unreachable): a server may still serve TCP, and
        // saying which transport failed how is worth the rest of the deadline.
        Err(QueryError::Network(e)) => Some(e),
        Err(e) => return Err(e),
    };
    let truncated_over_udp = udp_failure.is_none();
    let over_tcp = match mux {
        // The scan's shared, pipelined connection to the server.
        Some(mux) => mux
            .exchange_tcp(
                server,
                request_message(name, record_type, options, edns),
                question.deadline,
                options.timeout,
            )
            .await
            .map(|received| Reply {
                message: received.message,
                transport: Transport::Tcp,
                truncated_over_udp: false,
                elapsed: started.elapsed(),
                wire_len: received.wire_len,
            }),
        None => tcp_leg(server, name, record_type, options, edns, started).await,
    };
    let mut reply = over_tcp.map_err(|error| QueryError::OverTcp {
        udp_failure,
        error: Box::new(error),
    })?;
    reply.truncated_over_udp = truncated_over_udp;
    Ok(reply)
}

/// One question to one server, and when its time is up.
struct Question<'a> {
    server: SocketAddr,
    name: &'a Name,
    record_type: RecordType,
    options: QueryOptions,
    deadline: Instant,
}

/// The question over UDP: through the scan's channels when `mux` is given, else through a
/// client of its own.
async fn udp_leg(
    mux: Option<&crate::dns::mux::Mux>,
    question: &Question<'_>,
    edns: Edns,
) -> Result<Received, QueryError> {
    let Question {
        server,
        name,
        record_type,
        options,
        deadline,
    } = *question;
    let Some(mux) = mux else {
        return bounded(
            deadline,
            options.timeout,
            ask_udp(server, name, record_type, options, edns),
        )
        .await;
    };
    // All of the timeout for the first question, what is left of it for a retry without
    // EDNS; a timeout is the query's own.
    let budget = match edns {
        Edns::On => options.timeout,
        Edns::Off => deadline.saturating_duration_since(Instant::now()),
    };
    match mux
        .exchange(
            server,
            request_message(name, record_type, options, edns),
            budget,
            options.timeout,
        )
        .await
    {
        Err(QueryError::Timeout(_)) => Err(QueryError::Timeout(options.timeout)),
        other => other,
    }
}

/// Asks `server` over TCP only: for reading back what an update (always over TCP) will meet.
pub(crate) async fn query_tcp(
    server: SocketAddr,
    name: &Name,
    record_type: RecordType,
    options: QueryOptions,
) -> Result<Reply, QueryError> {
    let started = Instant::now();
    let reply = tcp_leg(server, name, record_type, options, Edns::On, started).await?;
    if knows_no_edns(&reply.message) {
        return tcp_leg(server, name, record_type, options, Edns::Off, started).await;
    }
    Ok(reply)
}

/// The TCP exchange, within what is left of the deadline that began at `started`.
async fn tcp_leg(
    server: SocketAddr,
    name: &Name,
    record_type: RecordType,
    options: QueryOptions,
    edns: Edns,
    started: Instant,
) -> Result<Reply, QueryError> {
    let deadline = started + options.timeout;
    let received = bounded(
        deadline,
        options.timeout,
        ask_tcp(server, name, record_type, options, edns, deadline),
    )
    .await?;
    Ok(Reply {
        message: received.message,
        transport: Transport::Tcp,
        truncated_over_udp: false,
        elapsed: started.elapsed(),
        wire_len: received.wire_len,
    })
}

async fn bounded<T>(
    deadline: Instant,
    timeout: Duration,
    fut: impl std::future::Future<Output = Result<T, QueryError>>,
) -> Result<T, QueryError> {
    match tokio::time::timeout_at(deadline.into(), fut).await {
        Ok(result) => result,
        Err(_) => Err(QueryError::Timeout(timeout)),
    }
}

/// Whether a query carries an EDNS OPT record (RFC 6891).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Edns {
    On,
    /// For a server that answered FORMERR without an OPT record: it does not know EDNS.
    Off,
}

/// A FORMERR without an OPT record: the server (or a middlebox) does not know EDNS, and the
/// question is to be asked again without it (RFC 6891 section 7). The scan's channels accept
/// one with the header alone, as such servers send; hickory's own client (outside scans)
/// needs the question echoed.
fn knows_no_edns(reply: &Message) -> bool {
    reply.metadata.response_code == ResponseCode::FormErr && reply.edns.is_none()
}

/// The query as a message (ID set by whoever sends it): RD as asked, EDNS with a 1232-byte
/// buffer unless `edns` is off, as [`request`] builds it for hickory's client.
fn request_message(
    name: &Name,
    record_type: RecordType,
    options: QueryOptions,
    edns: Edns,
) -> Message {
    let mut message = Message::new(
        0,
        hickory_proto::op::MessageType::Query,
        hickory_proto::op::OpCode::Query,
    );
    message.metadata.recursion_desired = options.recursion_desired;
    message.add_query(Query::query(name.clone(), record_type));
    if edns == Edns::On {
        let mut opt = hickory_proto::op::Edns::new();
        opt.set_max_payload(EDNS_PAYLOAD);
        message.set_edns(opt);
    }
    message
}

fn request(name: &Name, record_type: RecordType, options: QueryOptions, edns: Edns) -> DnsRequest {
    let mut request_options = DnsRequestOptions::default();
    request_options.recursion_desired = options.recursion_desired;
    request_options.use_edns = edns == Edns::On;
    // A large EDNS buffer keeps big RRsets on UDP where the path allows; truncation still
    // falls back to TCP.
    request_options.edns_payload_len = EDNS_PAYLOAD;
    DnsRequest::from_query(Query::query(name.clone(), record_type), request_options)
}

async fn ask_udp(
    server: SocketAddr,
    name: &Name,
    record_type: RecordType,
    options: QueryOptions,
    edns: Edns,
) -> Result<Received, QueryError> {
    let stream = UdpClientStream::builder(server, TokioRuntimeProvider::default())
        // Our own deadline (in `query`) must fire first, so that silence reads as a timeout
        // rather than as hickory's stream ending.
        .with_timeout(Some(options.timeout + Duration::from_secs(1)))
        .build();
    let (client, background) = Client::<TokioRuntimeProvider>::from_sender(stream);
    let background = tokio::spawn(background);
    let result = first_response(
        &client,
        request(name, record_type, options, edns),
        options.timeout,
    )
    .await;
    background.abort();
    result
}

async fn ask_tcp(
    server: SocketAddr,
    name: &Name,
    record_type: RecordType,
    options: QueryOptions,
    edns: Edns,
    deadline: Instant,
) -> Result<Received, QueryError> {
    let remaining = deadline.saturating_duration_since(Instant::now());
    // The provider owns the connection's background task: it must outlive the exchange.
    let provider = TokioRuntimeProvider::default();
    // hickory's own timeout must not fire first: silence reads as our timeout, not as a
    // closed connection.
    let exchange = TcpClientStream::exchange(
        server,
        None,
        remaining + Duration::from_secs(1),
        Some(1),
        provider.clone(),
    )
    .await
    .map_err(|e| net_error(e, remaining))?;
    let result = first_response(
        &exchange,
        request(name, record_type, options, edns),
        remaining,
    )
    .await;
    drop(provider);
    result
}

async fn first_response<H: DnsHandle>(
    handle: &H,
    request: DnsRequest,
    timeout: Duration,
) -> Result<Received, QueryError> {
    let mut responses = handle.send(request);
    match responses.next().await {
        Some(Ok(response)) => Ok(Received {
            wire_len: response.as_buffer().len(),
            message: response.into_message(),
        }),
        Some(Err(e)) => Err(net_error(e, timeout)),
        None => Err(QueryError::Network(
            "no reply: the connection was closed (nothing serves DNS there)".into(),
        )),
    }
}

fn net_error(error: NetError, timeout: Duration) -> QueryError {
    match error {
        NetError::Timeout => QueryError::Timeout(timeout),
        NetError::Io(e) => QueryError::Network(e.to_string()),
        NetError::Proto(e) => QueryError::Malformed(e.to_string()),
        other => QueryError::Network(other.to_string()),
    }
}

/// Why a TCP exchange failed, and whether the request reached the server.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExchangeError {
    /// Nothing was sent, or only part of it (a server discards a partial message).
    #[error("cannot reach {server}: {message}")]
    NotSent {
        /// The server.
        server: SocketAddr,
        /// What the network said.
        message: String,
    },
    /// Sent, and no reply within the time: the outcome is unknown.
    #[error("no reply from {server} within {timeout:?}")]
    NoReply {
        /// The server.
        server: SocketAddr,
        /// How long was waited.
        timeout: Duration,
    },
    /// Sent, then the connection failed: the outcome is unknown.
    #[error("the connection to {server} failed after the request was sent ({message})")]
    AfterSend {
        /// The server.
        server: SocketAddr,
        /// What the network said.
        message: String,
    },
    /// More than 65,535 bytes.
    #[error("the request is larger than a DNS message over TCP can be")]
    TooLarge,
}

/// One request and its reply over a new TCP connection (RFC 1035 4.2.2 framing), within
/// `timeout`. Used for updates and TKEY, whose messages hickory's client does not build.
pub(crate) async fn exchange_tcp(
    server: SocketAddr,
    request: &[u8],
    timeout: Duration,
) -> Result<Vec<u8>, ExchangeError> {
    let deadline = tokio::time::Instant::now() + timeout;
    let not_sent = |message: String| ExchangeError::NotSent { server, message };
    let len = u16::try_from(request.len()).map_err(|_| ExchangeError::TooLarge)?;
    let mut stream = match tokio::time::timeout_at(deadline, TcpStream::connect(server)).await {
        Err(_) => {
            return Err(not_sent(format!(
                "no TCP connection within {timeout:?}; nothing was sent"
            )));
        }
        Ok(Err(e)) => return Err(not_sent(format!("{e}; nothing was sent"))),
        Ok(Ok(stream)) => stream,
    };
    let mut framed = len.to_be_bytes().to_vec();
    framed.extend_from_slice(request);
    match tokio::time::timeout_at(deadline, stream.write_all(&framed)).await {
        Err(_) => {
            return Err(not_sent(format!(
                "the request could not be written within {timeout:?}; the server discards a partial request"
            )));
        }
        Ok(Err(e)) => {
            return Err(not_sent(format!(
                "{e} while sending; the server discards a partial request"
            )));
        }
        Ok(Ok(())) => {}
    }
    let read = async {
        let mut len = [0u8; 2];
        stream.read_exact(&mut len).await?;
        let mut reply = vec![0u8; u16::from_be_bytes(len) as usize];
        stream.read_exact(&mut reply).await?;
        Ok::<_, std::io::Error>(reply)
    };
    match tokio::time::timeout_at(deadline, read).await {
        Err(_) => Err(ExchangeError::NoReply { server, timeout }),
        Ok(Err(e)) => Err(ExchangeError::AfterSend {
            server,
            message: e.to_string(),
        }),
        Ok(Ok(reply)) => Ok(reply),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One function against an in-process stand-in (a real server that refuses EDNS over TCP
    /// is not in the test beds): the read-back asks again without EDNS after a FORMERR
    /// without OPT, and only then.
    #[tokio::test]
    async fn the_tcp_read_back_asks_again_without_edns_after_formerr() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let server = listener.local_addr().unwrap();
        let asked = tokio::spawn(async move {
            let mut with_edns = Vec::new();
            while with_edns.len() < 2 {
                let (mut stream, _) = listener.accept().await.unwrap();
                let length = usize::from(stream.read_u16().await.unwrap());
                let mut bytes = vec![0; length];
                stream.read_exact(&mut bytes).await.unwrap();
                let query = Message::from_vec(&bytes).unwrap();
                with_edns.push(query.edns.is_some());
                let mut reply = Message::new(
                    query.metadata.id,
                    hickory_proto::op::MessageType::Response,
                    hickory_proto::op::OpCode::Query,
                );
                reply.add_query(query.queries[0].clone());
                reply.metadata.authoritative = true;
                if query.edns.is_some() {
                    reply.metadata.response_code = hickory_proto::op::ResponseCode::FormErr;
                }
                let out = reply.to_vec().unwrap();
                stream.write_u16(out.len() as u16).await.unwrap();
                stream.write_all(&out).await.unwrap();
            }
            with_edns
        });
        let options = QueryOptions {
            recursion_desired: false,
            timeout: Duration::from_secs(5),
        };
        let name = Name::from_ascii("_vlmcs._tcp.example.").unwrap();
        let reply = query_tcp(server, &name, RecordType::SRV, options)
            .await
            .unwrap();
        assert_eq!(
            reply.message.metadata.response_code,
            hickory_proto::op::ResponseCode::NoError
        );
        assert_eq!(asked.await.unwrap(), [true, false]);
    }

    #[test]
    fn additional_data_may_be_cut_only_near_the_size_limit() {
        let reply = |transport, server_payload: Option<u16>, wire_len| {
            let mut message = Message::query();
            if let Some(payload) = server_payload {
                let mut edns = hickory_proto::op::Edns::new();
                edns.set_max_payload(payload);
                message.set_edns(edns);
            }
            Reply {
                message,
                transport,
                truncated_over_udp: false,
                elapsed: Duration::ZERO,
                wire_len,
            }
        };
        let cut = |transport, payload, len| reply(transport, payload, len).additional_may_be_cut();
        // Room for one more address RRset of the largest name (281 bytes) below our 1232.
        assert!(!cut(Transport::Udp, Some(1232), 277));
        assert!(!cut(Transport::Udp, Some(1232), 951));
        assert!(cut(Transport::Udp, Some(1232), 952));
        // A server that offers more still sends no more than we advertised.
        assert!(cut(Transport::Udp, Some(4096), 1224));
        // One that offers less keeps to its own size; one without EDNS to 512.
        assert!(cut(Transport::Udp, Some(512), 300));
        assert!(!cut(Transport::Udp, None, 231));
        assert!(cut(Transport::Udp, None, 232));
        assert!(!cut(Transport::Tcp, None, 60_000));
        assert!(cut(Transport::Tcp, None, 65_300));
        // With the answer's SRV targets known, one address record of the longest of them
        // (here 23 bytes on the wire, 49 with its fields and an IPv6 address).
        let with_target = |edns: Option<u16>, wire_len| {
            let mut reply = reply(Transport::Udp, edns, wire_len);
            let target = Name::from_ascii("kms1.corp.example.com.").unwrap();
            reply
                .message
                .add_answer(hickory_proto::rr::Record::from_rdata(
                    Name::from_ascii("_vlmcs._tcp.corp.example.com.").unwrap(),
                    300,
                    RData::SRV(hickory_proto::rr::rdata::SRV::new(0, 0, 1688, target)),
                ));
            reply.additional_may_be_cut()
        };
        assert!(!with_target(Some(1232), 1183));
        assert!(with_target(Some(1232), 1184));
        assert!(!with_target(None, 463));
        assert!(with_target(None, 464));
    }

    #[test]
    fn presentation_escapes_the_way_bind_reads_it() {
        let name = Name::from_labels(vec![
            b"evil\x1b[31m\n$(reboot)".to_vec(),
            b"a.b".to_vec(),
            b"corp".to_vec(),
        ])
        .unwrap();
        let mut fqdn = name.clone();
        fqdn.set_fqdn(true);
        assert_eq!(
            presentation(&fqdn),
            "evil\\027[31m\\010\\$\\(reboot\\).a\\.b.corp."
        );
        assert_eq!(presentation(&Name::root()), ".");
        assert_eq!(
            presentation(&Name::from_ascii("KMS1.Corp.Example.com.").unwrap()),
            "KMS1.Corp.Example.com."
        );
        assert_eq!(
            presentation(&Name::from_labels(vec![b"a b".to_vec()]).unwrap()),
            "a\\032b."
        );
        // And it reads back to the same name, as the target lookups rely on.
        assert_eq!(parse_presentation(&presentation(&fqdn)).unwrap(), fqdn);
        assert_eq!(
            parse_presentation("kms1.corp.example.com.").unwrap(),
            Name::from_ascii("kms1.corp.example.com.").unwrap()
        );
        assert_eq!(parse_presentation(".").unwrap(), Name::root());
        assert!(parse_presentation("a..b").is_none());
        assert!(parse_presentation("a\\999b").is_none());
    }

    /// Every name reads back from its presentation form, whatever bytes its labels hold: a label
    /// that ends in a backslash (`a\\.`) is fully qualified, one that ends in a dot (`a\.`) is not.
    #[test]
    fn any_name_reads_back_from_its_presentation_form() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let special = [
            b'\\', b'.', b'0', b'9', b' ', 0, 255, b'a', b'Z', b'$', b'"',
        ];
        for round in 0..5000 {
            let labels: Vec<Vec<u8>> = (0..1 + next() % 4)
                .map(|_| {
                    (0..1 + next() % 6)
                        .map(|_| {
                            let r = next();
                            if r % 2 == 0 {
                                special[(r / 2 % special.len() as u64) as usize]
                            } else {
                                (r >> 8) as u8
                            }
                        })
                        .collect()
                })
                .collect();
            let mut name = Name::from_labels(labels).unwrap();
            name.set_fqdn(round % 3 != 0);
            let text = presentation(&name);
            let back = parse_presentation(&text).unwrap_or_else(|| panic!("{text}"));
            assert_eq!(back, name, "{text}");
            assert_eq!(back.is_fqdn(), name.is_fqdn(), "{text}");
        }
        let backslash = Name::from_labels(vec![b"a\\".to_vec()]).unwrap();
        assert_eq!(presentation(&backslash), "a\\\\.");
        assert_eq!(parse_presentation("a\\\\.").unwrap(), backslash);
        assert!(!parse_presentation("a\\.").unwrap().is_fqdn());
    }
}
