//! Probing one address: TCP connect, DCE/RPC `bind` for the KMS interface, read the answer.
//! Side-effect free: no RPC request is sent, so the KMS host's client count never changes.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout_at;

use crate::discover::millis;
use crate::model::{ProbeObservation, ProbeOutcome};
use crate::rpc::{
    self, BindReply, KMS_INTERFACE, MADE_UP_INTERFACE, NDR32, NDR64, SyntaxId, parse_bind_reply,
    parse_header,
};

/// The call id of our bind; any constant works, the reply must echo it.
const CALL_ID: u32 = 2;
/// Our presentation contexts, in order: NDR first (older RPC servers nak a bind whose first
/// context is not NDR), then NDR64.
const OFFERED: [SyntaxId; 2] = [NDR32, NDR64];

/// What to do at each address.
#[derive(Debug, Clone, Copy)]
pub struct ProbeOptions {
    /// Budget for connect + bind + reply, per address.
    pub timeout: Duration,
    /// After a successful bind, bind again for a made-up interface to spot KMS emulators.
    pub check_emulator: bool,
}

/// Probes `address:port` and records what happened. Never fails: every outcome is an
/// observation.
pub async fn probe(
    target: &str,
    address: IpAddr,
    port: u16,
    options: ProbeOptions,
) -> ProbeObservation {
    let started = Instant::now();
    let endpoint = SocketAddr::new(address, port);
    let result = bind_once(endpoint, KMS_INTERFACE, options.timeout).await;
    let mut observation = ProbeObservation {
        target: target.to_string(),
        address,
        port,
        outcome: result.outcome,
        duration_ms: millis(started.elapsed()),
        connect_ms: result.connect.map(millis),
        detail: result.detail,
        transfer_syntax: result.transfer_syntax,
        accepts_any_interface: false,
    };
    if observation.outcome == ProbeOutcome::KmsRpc && options.check_emulator {
        let second = bind_once(endpoint, MADE_UP_INTERFACE, options.timeout).await;
        observation.accepts_any_interface = second.outcome == ProbeOutcome::KmsRpc;
    }
    observation
}

struct BindResult {
    outcome: ProbeOutcome,
    connect: Option<Duration>,
    detail: String,
    transfer_syntax: Option<String>,
}

impl BindResult {
    fn new(outcome: ProbeOutcome, connect: Option<Duration>, detail: impl Into<String>) -> Self {
        Self {
            outcome,
            connect,
            detail: detail.into(),
            transfer_syntax: None,
        }
    }
}

/// One connection, one bind for `interface` offering NDR (context 0) and NDR64 (context 1):
/// older RPC servers nak a bind whose first context is not NDR.
async fn bind_once(endpoint: SocketAddr, interface: SyntaxId, timeout: Duration) -> BindResult {
    let started = Instant::now();
    let deadline = (started + timeout).into();
    let mut stream = match timeout_at(deadline, TcpStream::connect(endpoint)).await {
        Err(_) => {
            return BindResult::new(
                ProbeOutcome::ConnectTimeout,
                None,
                format!("TCP connect timed out after {timeout:?} (host down or port filtered)"),
            );
        }
        Ok(Err(e)) => return connect_error(&e),
        Ok(Ok(stream)) => stream,
    };
    let connect = Some(started.elapsed());
    let _ = stream.set_nodelay(true);
    let bind = rpc::encode_bind(CALL_ID, interface, &OFFERED);
    match timeout_at(deadline, stream.write_all(&bind)).await {
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
    let _ = stream.shutdown().await;
    match parse_bind_reply(&pdu, CALL_ID) {
        Err(e) => BindResult::new(
            ProbeOutcome::NotRpc,
            connect,
            format!("malformed DCE/RPC reply: {e}"),
        ),
        Ok(reply) => interpret(reply, connect),
    }
}

fn interpret(reply: BindReply, connect: Option<Duration>) -> BindResult {
    match &reply {
        // One result per offered context, and an accepted one must name the transfer syntax we
        // offered in that context: anything else is not an honest KMS endpoint.
        BindReply::Ack { results, .. } if results.len() != OFFERED.len() => BindResult::new(
            ProbeOutcome::NotRpc,
            connect,
            format!(
                "bind_ack with {} results for {} offered contexts",
                results.len(),
                OFFERED.len()
            ),
        ),
        BindReply::Ack { results, .. } => match reply.accepted_context() {
            Some(index) if results[index].transfer_syntax != OFFERED[index] => BindResult::new(
                ProbeOutcome::NotRpc,
                connect,
                format!(
                    "bind_ack accepted context {index} with transfer syntax {}, which was not offered there",
                    results[index].transfer_syntax
                ),
            ),
            Some(index) => {
                let syntax = if OFFERED[index] == NDR64 {
                    "NDR64"
                } else {
                    "NDR"
                };
                BindResult {
                    outcome: ProbeOutcome::KmsRpc,
                    connect,
                    detail: format!("bind_ack: KMS interface accepted with {syntax}"),
                    transfer_syntax: Some(syntax.to_string()),
                }
            }
            None => {
                let why = results
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
            }
        },
        BindReply::Nak { reason } => BindResult::new(
            ProbeOutcome::RpcNak,
            connect,
            format!("an RPC server that refused the bind (bind_nak, reason {reason})"),
        ),
        BindReply::Fault { status } => BindResult::new(
            ProbeOutcome::RpcNak,
            connect,
            format!("an RPC server that answered the bind with a fault (status {status:#010x})"),
        ),
        BindReply::Unexpected { packet_type } => BindResult::new(
            ProbeOutcome::NotRpc,
            connect,
            format!("DCE/RPC packet type {packet_type} in reply to a bind"),
        ),
    }
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
