//! Real TCP listeners that behave like the things a `_vlmcs._tcp` record can point at: a KMS
//! host, a KMS emulator, another RPC service, a web server, a blackholed host, ...

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::task::JoinHandle;

use crate::rpc_server;
use vlmcs_audit::probe::rpc::{
    self, BindAck, ContextResult, KMS_INTERFACE, NDR32, NDR64, SyntaxId,
};

/// How a stand-in answers a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behavior {
    /// A Windows 8+ KMS host: accepts the KMS interface with NDR64 (or NDR when that is all
    /// that is offered), rejects any other interface.
    Kms,
    /// vlmcsd, default build: checks the interface UUID but not its version, copies the
    /// request header and fragment sizes into its reply, NDR only.
    Vlmcsd,
    /// vlmcsd started with `-N1`: the same, with NDR64.
    VlmcsdNdr64,
    /// vlmcsd built with `SIMPLE_RPC`: accepts any interface.
    VlmcsdSimpleRpc,
    /// py-kms: never reads the interface, answers from a table keyed by transfer syntax (drops
    /// the connection on one it does not know), multiplex flag always set, constant
    /// association group.
    PyKms,
    /// Checks interface and version as C706 says, but copies the request's header and
    /// fragment sizes into its reply: what an emulator patched against the version tell would
    /// look like. Only supporting tells.
    Lax,
    /// An RPC server without the KMS interface: `bind_ack` rejecting every context.
    OtherRpc,
    /// An RPC server that refuses the bind outright: `bind_nak`.
    Nak,
    /// A web server on the port: answers with an HTTP error.
    Http,
    /// Accepts the connection and never says anything.
    Silent,
    /// Accepts the connection and closes it at once.
    Close,
    /// Accepts the connection and resets it (RST, as a host firewall or a crashed service does).
    Reset,
    /// Answers with 64 KiB of noise.
    Garbage,
    /// Sends the first half of a valid `bind_ack`, then closes.
    CloseMidPdu,
    /// Sends a valid `bind_ack` one byte per second.
    Slowloris,
    /// A well-formed `bind_ack` that "accepts" with a transfer syntax nobody offered: an
    /// answer meant for a different interface or a confused server.
    WrongAck,
}

/// A running stand-in; stops when dropped.
pub struct StandIn {
    pub address: SocketAddr,
    task: JoinHandle<()>,
    accepted: Arc<AtomicUsize>,
}

impl Drop for StandIn {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl StandIn {
    /// Listens on `address` and answers every connection with `behavior`.
    /// (`Kms` is a conforming C706 / MS-RPCE runtime, as measured on Samba: it negotiates
    /// fragment sizes, drops PFC_MAYBE, and rejects other interfaces and versions.)
    pub async fn start(address: SocketAddr, behavior: Behavior) -> io::Result<Self> {
        Self::serve_listener(TcpListener::bind(address).await?, behavior)
    }

    /// Serves an already bound listener (e.g. one made in another network namespace). Must be
    /// called within a tokio runtime.
    pub fn from_std(listener: std::net::TcpListener, behavior: Behavior) -> io::Result<Self> {
        listener.set_nonblocking(true)?;
        Self::serve_listener(TcpListener::from_std(listener)?, behavior)
    }

    /// How many connections it has accepted so far.
    pub fn connections(&self) -> usize {
        self.accepted.load(Ordering::Relaxed)
    }

    /// The same count, readable after the stand-in has moved elsewhere (a shared bed).
    pub fn connection_counter(&self) -> Arc<AtomicUsize> {
        self.accepted.clone()
    }

    fn serve_listener(listener: TcpListener, behavior: Behavior) -> io::Result<Self> {
        let address = listener.local_addr()?;
        let accepted = Arc::new(AtomicUsize::new(0));
        let counter = accepted.clone();
        let task = tokio::spawn(async move {
            // vlmcsd seeds its association groups at random and counts up per connection.
            let mut assoc_group = seed(address.port());
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                assoc_group = assoc_group.wrapping_add(1);
                counter.fetch_add(1, Ordering::Relaxed);
                tokio::spawn(async move {
                    let _ = serve(stream, behavior, assoc_group).await;
                });
            }
        });
        Ok(Self {
            address,
            task,
            accepted,
        })
    }
}

/// A value that differs between runs and listeners.
fn seed(salt: u16) -> u32 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    mix(nanos ^ u32::from(salt) << 16)
}

/// A 32-bit mixer (murmur3's finalizer), for association groups that look random.
fn mix(mut x: u32) -> u32 {
    x ^= x >> 16;
    x = x.wrapping_mul(0x85eb_ca6b);
    x ^= x >> 13;
    x = x.wrapping_mul(0xc2b2_ae35);
    x ^ (x >> 16)
}

async fn serve(mut stream: TcpStream, behavior: Behavior, assoc_group: u32) -> io::Result<()> {
    match behavior {
        Behavior::Close => return Ok(()),
        Behavior::Reset => {
            stream.set_zero_linger()?;
            return Ok(());
        }
        Behavior::Silent => {
            // Hold the connection open and read whatever comes, answering nothing.
            let mut sink = [0u8; 512];
            while stream.read(&mut sink).await? > 0 {}
            return Ok(());
        }
        Behavior::Http => {
            let mut buf = [0u8; 512];
            let _ = stream.read(&mut buf).await?;
            stream
                .write_all(
                    b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                )
                .await?;
            return Ok(());
        }
        Behavior::Garbage => {
            let mut buf = [0u8; 512];
            let _ = stream.read(&mut buf).await?;
            let mut state = 0x9e37_79b9_7f4a_7c15u64;
            let noise: Vec<u8> = (0..64 * 1024)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    state as u8
                })
                .collect();
            stream.write_all(&noise).await?;
            return Ok(());
        }
        _ => {}
    }
    let Some(request) = read_bind(&mut stream).await? else {
        return Ok(());
    };
    let port = stream.local_addr()?.port();
    let Some(reply) = answer_bind(behavior, &request, port, assoc_group) else {
        // What py-kms does with a bind it cannot answer: an exception, the connection closed.
        return Ok(());
    };
    match behavior {
        Behavior::CloseMidPdu => {
            stream.write_all(&reply[..reply.len() / 2]).await?;
            return Ok(());
        }
        Behavior::Slowloris => {
            for byte in reply {
                stream.write_all(&[byte]).await?;
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
        _ => stream.write_all(&reply).await?,
    }
    // Let the client close first, as an RPC server would wait for the next PDU.
    let mut sink = [0u8; 64];
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut sink)).await;
    Ok(())
}

/// The reply each implementation sends to `request` (a bind PDU), from its source and the
/// measurements in `shared/notes/kms-emulators.md`; `None` when it drops the connection.
pub fn answer_bind(
    behavior: Behavior,
    request: &[u8],
    port: u16,
    assoc_group: u32,
) -> Option<Vec<u8>> {
    let bind = rpc_server::parse_bind(request).ok()?;
    let port = port.to_string();
    let reply = match behavior {
        Behavior::Nak => return Some(rpc_server::encode_nak(bind.call_id, 4)),
        Behavior::WrongAck => rpc_server::plain_ack(
            bind.call_id,
            &port,
            &vec![ContextResult::acceptance(rpc::MADE_UP_INTERFACE); bind.contexts.len()],
        ),
        Behavior::Vlmcsd | Behavior::VlmcsdNdr64 | Behavior::VlmcsdSimpleRpc => echoed_ack(
            &bind,
            port,
            assoc_group,
            vlmcsd_results(behavior, &bind.contexts),
        ),
        Behavior::Lax => echoed_ack(&bind, port, assoc_group, conforming_results(&bind.contexts)),
        Behavior::PyKms => BindAck {
            call_id: bind.call_id,
            flags: rpc::PFC_FIRST_FRAG | rpc::PFC_LAST_FRAG | rpc::PFC_CONC_MPX,
            auth_length: bind.auth_length,
            max_xmit_frag: bind.max_xmit_frag,
            max_recv_frag: bind.max_recv_frag,
            assoc_group: 0x1063_bf3f,
            secondary_address: port,
            results: bind
                .contexts
                .iter()
                .map(|c| py_kms_result(c.transfer_syntaxes.first()?))
                .collect::<Option<Vec<_>>>()?,
        },
        Behavior::OtherRpc => BindAck {
            assoc_group,
            ..rpc_server::plain_ack(
                bind.call_id,
                &port,
                &vec![ContextResult::rejection(1); bind.contexts.len()],
            )
        },
        _ => {
            // Samba's rule (tested against Windows, its source says): the smaller of the two
            // offers, clamped to 2048..=5840, both ways.
            let frag = bind
                .max_xmit_frag
                .min(bind.max_recv_frag)
                .clamp(2048, rpc::STANDARD_FRAG);
            BindAck {
                call_id: bind.call_id,
                flags: rpc::PFC_FIRST_FRAG
                    | rpc::PFC_LAST_FRAG
                    | bind.flags & (rpc::PFC_SUPPORT_HEADER_SIGN | rpc::PFC_CONC_MPX),
                auth_length: 0,
                max_xmit_frag: frag,
                max_recv_frag: frag,
                assoc_group: mix(assoc_group),
                secondary_address: port,
                results: conforming_results(&bind.contexts),
            }
        }
    };
    Some(rpc_server::encode_ack(&reply))
}

/// A `bind_ack` whose header is the request's, retyped (flags and auth_length come back) and
/// whose fragment sizes are the request's: what vlmcsd and the lax runtime send.
fn echoed_ack(
    bind: &rpc::Bind,
    port: String,
    assoc_group: u32,
    results: Vec<ContextResult>,
) -> BindAck {
    BindAck {
        call_id: bind.call_id,
        flags: bind.flags,
        auth_length: bind.auth_length,
        max_xmit_frag: bind.max_xmit_frag,
        max_recv_frag: bind.max_recv_frag,
        assoc_group,
        secondary_address: port,
        results,
    }
}

/// The feature bitmask of a bind-time feature negotiation syntax, if `syntax` is one.
fn negotiation_bits(syntax: &SyntaxId) -> Option<u8> {
    let template = rpc::feature_negotiation(0);
    (syntax.uuid[..8] == template.uuid[..8]).then_some(syntax.uuid[8])
}

/// A C706 / MS-RPCE server of the KMS interface v1.0 that prefers NDR64, as Windows 8+ does.
fn conforming_results(contexts: &[rpc::OfferedContext]) -> Vec<ContextResult> {
    let wanted = if contexts
        .iter()
        .any(|c| c.transfer_syntaxes.contains(&NDR64))
    {
        NDR64
    } else {
        NDR32
    };
    let mut accepted = false;
    contexts
        .iter()
        .map(|c| {
            if let Some(bits) = c.transfer_syntaxes.iter().find_map(negotiation_bits) {
                return negotiate_ack(bits);
            }
            // The major version must match and the client's minor may not exceed ours (the
            // KMS interface is v1.0).
            let served = c.abstract_syntax == KMS_INTERFACE;
            if !served {
                ContextResult::rejection(1)
            } else if !accepted && c.transfer_syntaxes.contains(&wanted) {
                accepted = true;
                ContextResult::acceptance(wanted)
            } else {
                ContextResult::rejection(2)
            }
        })
        .collect()
}

/// MS-RPCE 3.3.1.5.3: result 3 (negotiate ack), the supported features as the reason.
fn negotiate_ack(bits: u8) -> ContextResult {
    ContextResult {
        result: 3,
        reason: u16::from(bits & 3),
        transfer_syntax: SyntaxId::NIL,
    }
}

/// vlmcsd compares the interface UUID only (never its version; `SIMPLE_RPC` not even that) and
/// reads the first transfer syntax of each context.
fn vlmcsd_results(behavior: Behavior, contexts: &[rpc::OfferedContext]) -> Vec<ContextResult> {
    let first = |c: &rpc::OfferedContext| c.transfer_syntaxes.first().copied();
    let ndr64 =
        behavior == Behavior::VlmcsdNdr64 && contexts.iter().any(|c| first(c) == Some(NDR64));
    let wanted = if ndr64 { NDR64 } else { NDR32 };
    contexts
        .iter()
        .map(|c| {
            if behavior != Behavior::VlmcsdSimpleRpc && !c.abstract_syntax.same_uuid(&KMS_INTERFACE)
            {
                return ContextResult::rejection(1);
            }
            match first(c) {
                Some(syntax) if syntax == wanted => ContextResult::acceptance(wanted),
                Some(syntax) => {
                    negotiation_bits(&syntax).map_or(ContextResult::rejection(2), negotiate_ack)
                }
                None => ContextResult::rejection(2),
            }
        })
        .collect()
}

/// py-kms' table of prepared results, keyed by transfer syntax UUID; `None` for any other key
/// (a `KeyError` that closes the connection).
fn py_kms_result(syntax: &SyntaxId) -> Option<ContextResult> {
    if syntax.same_uuid(&NDR32) {
        Some(ContextResult::acceptance(NDR32))
    } else if syntax.same_uuid(&NDR64) {
        Some(ContextResult::rejection(2))
    } else if syntax.same_uuid(&rpc::feature_negotiation(3)) {
        Some(negotiate_ack(3))
    } else {
        None
    }
}

/// Reads one bind PDU (header and body), unparsed.
async fn read_bind(stream: &mut TcpStream) -> io::Result<Option<Vec<u8>>> {
    let mut header = [0u8; rpc::HEADER_LEN];
    if stream.read_exact(&mut header).await.is_err() {
        return Ok(None);
    }
    let Ok(parsed) = rpc::parse_header(&header) else {
        return Ok(None);
    };
    let mut pdu = vec![0u8; parsed.frag_length];
    pdu[..rpc::HEADER_LEN].copy_from_slice(&header);
    stream.read_exact(&mut pdu[rpc::HEADER_LEN..]).await?;
    Ok(Some(pdu))
}

/// An address where TCP connects never complete, as with a host that is down behind a
/// firewall that drops packets. Made without root: a listener whose accept queue is full
/// makes the kernel drop further SYNs, so `connect` hangs until the client gives up.
pub struct Blackhole {
    pub address: SocketAddr,
    _listener: TcpListener,
    _fillers: Vec<TcpStream>,
}

impl Blackhole {
    pub async fn start(address: SocketAddr) -> io::Result<Self> {
        let socket = match address {
            SocketAddr::V4(_) => TcpSocket::new_v4()?,
            SocketAddr::V6(_) => TcpSocket::new_v6()?,
        };
        socket.set_reuseaddr(true)?;
        socket.bind(address)?;
        let listener = socket.listen(0)?;
        let address = listener.local_addr()?;
        let mut fillers = Vec::new();
        // Fill the accept queue until a connection attempt stalls; that is the proof.
        for _ in 0..16 {
            match tokio::time::timeout(Duration::from_millis(300), TcpStream::connect(address))
                .await
            {
                Ok(Ok(stream)) => fillers.push(stream),
                Ok(Err(e)) => return Err(e),
                Err(_) => {
                    return Ok(Self {
                        address,
                        _listener: listener,
                        _fillers: fillers,
                    });
                }
            }
        }
        Err(io::Error::other(format!(
            "could not make {address} drop connections (the accept queue never filled)"
        )))
    }
}

#[cfg(test)]
mod tests {
    //! Each emulator's answers, row by row from `shared/notes/kms-emulators.md`.
    use super::*;
    use vlmcs_audit::probe::rpc::{Bind, BindReply, MADE_UP_INTERFACE, parse_bind_reply};

    const EMULATORS: [Behavior; 4] = [
        Behavior::Vlmcsd,
        Behavior::VlmcsdNdr64,
        Behavior::VlmcsdSimpleRpc,
        Behavior::PyKms,
    ];

    fn ack(behavior: Behavior, bind: &Bind) -> Option<BindAck> {
        let reply = answer_bind(behavior, &bind.encode(), 1688, 0x2a00_0001)?;
        match parse_bind_reply(&reply, bind.call_id).unwrap() {
            BindReply::Ack(ack) => Some(ack),
            other => panic!("{behavior:?}: {other:?}"),
        }
    }

    fn results(behavior: Behavior, bind: &Bind) -> Vec<(u16, u16)> {
        ack(behavior, bind)
            .unwrap()
            .results
            .iter()
            .map(|r| (r.result, r.reason))
            .collect()
    }

    fn standard(interface: SyntaxId) -> Bind {
        Bind::new(2, interface, &[NDR32, NDR64])
    }

    #[test]
    fn the_standard_bind() {
        for (behavior, expected) in [
            (Behavior::Vlmcsd, [(0, 0), (2, 2)]),
            (Behavior::VlmcsdNdr64, [(2, 2), (0, 0)]),
            (Behavior::VlmcsdSimpleRpc, [(0, 0), (2, 2)]),
            (Behavior::PyKms, [(0, 0), (2, 2)]),
            (Behavior::Kms, [(2, 2), (0, 0)]),
        ] {
            assert_eq!(
                results(behavior, &standard(KMS_INTERFACE)),
                expected,
                "{behavior:?}"
            );
        }
        let py = ack(Behavior::PyKms, &standard(KMS_INTERFACE)).unwrap();
        assert_eq!((py.flags, py.assoc_group), (0x13, 0x1063_bf3f));
        assert_eq!(py.results[0].transfer_syntax, NDR32);
        let vlmcsd = ack(Behavior::Vlmcsd, &standard(KMS_INTERFACE)).unwrap();
        assert_eq!((vlmcsd.flags, vlmcsd.assoc_group), (0x03, 0x2a00_0001));
        assert_eq!(vlmcsd.secondary_address, "1688");
    }

    #[test]
    fn interfaces_and_versions() {
        let newer = standard(KMS_INTERFACE.with_version(2, 0));
        let minor = standard(KMS_INTERFACE.with_version(1, 1));
        let made_up = standard(MADE_UP_INTERFACE);
        for behavior in EMULATORS {
            assert!(results(behavior, &newer).contains(&(0, 0)), "{behavior:?}");
            assert!(results(behavior, &minor).contains(&(0, 0)), "{behavior:?}");
        }
        for bind in [&newer, &minor, &made_up] {
            assert_eq!(results(Behavior::Kms, bind), [(2, 1), (2, 1)]);
        }
        assert_eq!(results(Behavior::Vlmcsd, &made_up), [(2, 1), (2, 1)]);
        assert_eq!(results(Behavior::VlmcsdNdr64, &made_up), [(2, 1), (2, 1)]);
        assert!(results(Behavior::VlmcsdSimpleRpc, &made_up).contains(&(0, 0)));
        assert!(results(Behavior::PyKms, &made_up).contains(&(0, 0)));
        // Never the interface a conforming server serves: an RPC server without KMS rejects.
        assert_eq!(results(Behavior::OtherRpc, &newer), [(2, 1), (2, 1)]);
    }

    #[test]
    fn fragment_sizes() {
        for (offer, conforming) in [
            ((65535, 65535), (5840, 5840)),
            ((1111, 2222), (2048, 2048)),
            ((4280, 4280), (4280, 4280)),
        ] {
            let bind = Bind {
                max_xmit_frag: offer.0,
                max_recv_frag: offer.1,
                ..standard(KMS_INTERFACE)
            };
            for behavior in EMULATORS {
                let a = ack(behavior, &bind).unwrap();
                assert_eq!((a.max_xmit_frag, a.max_recv_frag), offer, "{behavior:?}");
            }
            let a = ack(Behavior::Kms, &bind).unwrap();
            assert_eq!((a.max_xmit_frag, a.max_recv_frag), conforming);
        }
    }

    #[test]
    fn flags_and_auth_length() {
        for (sent, vlmcsd, py_kms, conforming) in [
            (0x43, 0x43, 0x13, 0x03),
            (0x07, 0x07, 0x13, 0x07),
            (0x03, 0x03, 0x13, 0x03),
        ] {
            let bind = Bind {
                flags: sent,
                ..standard(KMS_INTERFACE)
            };
            assert_eq!(ack(Behavior::Vlmcsd, &bind).unwrap().flags, vlmcsd);
            assert_eq!(ack(Behavior::VlmcsdSimpleRpc, &bind).unwrap().flags, vlmcsd);
            assert_eq!(ack(Behavior::PyKms, &bind).unwrap().flags, py_kms);
            assert_eq!(ack(Behavior::Kms, &bind).unwrap().flags, conforming);
        }
        // vlmcsd copies the header: an auth_length comes back with no auth trailer.
        let bind = Bind {
            auth_length: 40,
            ..standard(KMS_INTERFACE)
        };
        assert_eq!(ack(Behavior::Vlmcsd, &bind).unwrap().auth_length, 40);
    }

    #[test]
    fn feature_negotiation_and_unknown_transfer_syntaxes() {
        for (bits, reason) in [(0xff, 3), (0x01, 1), (0x00, 0)] {
            let bind = Bind::new(2, KMS_INTERFACE, &[NDR32, rpc::feature_negotiation(bits)]);
            for behavior in [Behavior::Vlmcsd, Behavior::VlmcsdSimpleRpc, Behavior::Kms] {
                assert_eq!(
                    results(behavior, &bind),
                    [(0, 0), (3, reason)],
                    "{behavior:?}"
                );
            }
            let dropped = answer_bind(Behavior::PyKms, &bind.encode(), 1688, 1).is_none();
            assert_eq!(dropped, bits != 0x03, "py-kms, bits {bits:#x}");
        }
        // What Windows clients send (bits 0x03) is in py-kms' table.
        let windows = Bind::new(
            2,
            KMS_INTERFACE,
            &[NDR32, NDR64, rpc::feature_negotiation(3)],
        );
        assert_eq!(results(Behavior::PyKms, &windows), [(0, 0), (2, 2), (3, 3)]);

        let unknown = Bind::new(2, KMS_INTERFACE, &[MADE_UP_INTERFACE]);
        assert_eq!(results(Behavior::Vlmcsd, &unknown), [(2, 2)]);
        assert_eq!(results(Behavior::Kms, &unknown), [(2, 2)]);
        assert!(answer_bind(Behavior::PyKms, &unknown.encode(), 1688, 1).is_none());
    }
}
