//! Real TCP listeners that behave like the things a `_vlmcs._tcp` record can point at: a KMS
//! host, a KMS emulator, another RPC service, a web server, a blackholed host, ...

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::task::JoinHandle;

use crate::rpc::{self, ContextResult, KMS_INTERFACE, NDR32, NDR64, SyntaxId};

/// How a stand-in answers a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behavior {
    /// A Windows 8+ KMS host: accepts the KMS interface with NDR64 (or NDR when that is all
    /// that is offered), rejects any other interface.
    Kms,
    /// A KMS emulator (vlmcsd and friends with the "any interface" tell): accepts every bind.
    Emulator,
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
}

impl Drop for StandIn {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl StandIn {
    /// Listens on `address` and answers every connection with `behavior`.
    pub async fn start(address: SocketAddr, behavior: Behavior) -> io::Result<Self> {
        Self::serve_listener(TcpListener::bind(address).await?, behavior)
    }

    /// Serves an already bound listener (e.g. one made in another network namespace). Must be
    /// called within a tokio runtime.
    pub fn from_std(listener: std::net::TcpListener, behavior: Behavior) -> io::Result<Self> {
        listener.set_nonblocking(true)?;
        Self::serve_listener(TcpListener::from_std(listener)?, behavior)
    }

    fn serve_listener(listener: TcpListener, behavior: Behavior) -> io::Result<Self> {
        let address = listener.local_addr()?;
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                tokio::spawn(async move {
                    let _ = serve(stream, behavior).await;
                });
            }
        });
        Ok(Self { address, task })
    }
}

async fn serve(mut stream: TcpStream, behavior: Behavior) -> io::Result<()> {
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
    let Some((call_id, contexts)) = read_bind(&mut stream).await? else {
        return Ok(());
    };
    let reply = match behavior {
        Behavior::Nak => rpc::encode_bind_nak(call_id, 4),
        Behavior::WrongAck => rpc::encode_bind_ack(
            call_id,
            "1688",
            &contexts
                .iter()
                .map(|_| ContextResult {
                    result: 0,
                    reason: 0,
                    transfer_syntax: rpc::MADE_UP_INTERFACE,
                })
                .collect::<Vec<_>>(),
        ),
        _ => rpc::encode_bind_ack(
            call_id,
            &stream.local_addr()?.port().to_string(),
            &results(behavior, &contexts),
        ),
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

fn results(behavior: Behavior, contexts: &[rpc::OfferedContext]) -> Vec<ContextResult> {
    let reject = |reason| ContextResult {
        result: 2,
        reason,
        transfer_syntax: SyntaxId {
            uuid: [0; 16],
            version_major: 0,
            version_minor: 0,
        },
    };
    let accept = |syntax| ContextResult {
        result: 0,
        reason: 0,
        transfer_syntax: syntax,
    };
    let offers_ndr64 = contexts
        .iter()
        .any(|c| c.transfer_syntaxes.contains(&NDR64));
    contexts
        .iter()
        .map(|c| {
            let serves = match behavior {
                Behavior::Kms | Behavior::CloseMidPdu | Behavior::Slowloris => {
                    c.abstract_syntax == KMS_INTERFACE
                }
                Behavior::Emulator => true,
                _ => false,
            };
            if !serves {
                return reject(1);
            }
            // Windows prefers NDR64 when it is offered, like the hosts the probe meets.
            let wanted = if offers_ndr64 { NDR64 } else { NDR32 };
            if c.transfer_syntaxes.contains(&wanted) {
                accept(wanted)
            } else {
                reject(2)
            }
        })
        .collect()
}

async fn read_bind(stream: &mut TcpStream) -> io::Result<Option<(u32, Vec<rpc::OfferedContext>)>> {
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
    Ok(rpc::parse_bind(&pdu).ok())
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
