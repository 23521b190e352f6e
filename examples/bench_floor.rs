//! The floor under a scan of a bench lab: the network operations a scan of it cannot do without,
//! and nothing else. Every SRV question over one UDP socket, at most 64 outstanding (the DNS
//! window vlmcs-audit grows to); the answer's additional addresses; a connect to each address
//! with the timeout, once per address and port; on each connection that opens, the KMS bind and
//! its reply; on one thread of the runtime vlmcs-audit uses. No resends, no emulator tells, no
//! classification, no report. `bench/run` runs it beside vlmcs-audit in the same lab: what a
//! scan costs above this row is the tool's own work, what this row costs is the machine's (the
//! lab's BIND and listener share its cores).
//!
//!     cargo run --release --example bench_floor -- SERVER SRV-QUERIES-FILE TIMEOUT-MS
//!
//! Prints one line: `dns_end_ms answered probes kms refused timed_out other`.
//!
//! Below that floor, the machine's own limit for a lab of many endpoints: the connects alone (no
//! DNS, no bind, the connection closed as soon as it opens), spread over THREADS threads of one
//! runtime each. A scan cannot end before the last of its connects has started and waited out
//! the timeout.
//!
//!     cargo run --release --example bench_floor -- --connects ENDPOINTS-FILE PORT TIMEOUT-MS THREADS
//!
//! Prints one line: `last_started_ms connects open refused timed_out other`.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, Query};
use hickory_proto::rr::{Name, RData, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, UdpSocket};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

const WINDOW: usize = 64;

#[derive(Clone, Copy)]
enum Outcome {
    Kms,
    Refused,
    TimedOut,
    Other,
}

fn main() {
    if std::env::args().nth(1).as_deref() == Some("--connects") {
        println!("{}", connects_alone());
        return;
    }
    let usage = "usage: bench_floor SERVER SRV-QUERIES-FILE TIMEOUT-MS";
    let mut args = std::env::args().skip(1);
    let server: SocketAddr = args.next().expect(usage).parse().expect(usage);
    let queries = std::fs::read_to_string(args.next().expect(usage)).expect("the queries file");
    let timeout = Duration::from_millis(args.next().expect(usage).parse().expect(usage));
    let names: Vec<Name> = queries
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .map(|name| Name::from_ascii(format!("{name}.")).expect("a DNS name"))
        .collect();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let line = runtime.block_on(floor(server, names, timeout));
    println!("{line}");
}

fn connects_alone() -> String {
    let usage = "usage: bench_floor --connects ENDPOINTS-FILE PORT TIMEOUT-MS THREADS";
    let mut args = std::env::args().skip(2);
    let addresses = std::fs::read_to_string(args.next().expect(usage)).expect("the endpoints file");
    let port: u16 = args.next().expect(usage).parse().expect(usage);
    let timeout = Duration::from_millis(args.next().expect(usage).parse().expect(usage));
    let threads: usize = args.next().expect(usage).parse().expect(usage);
    let endpoints: Vec<SocketAddr> = addresses
        .lines()
        .map(|line| SocketAddr::new(line.trim().parse().expect("an address"), port))
        .collect();
    let started = Instant::now();
    let shares: Vec<Vec<SocketAddr>> = endpoints
        .chunks(endpoints.len().div_ceil(threads.max(1)).max(1))
        .map(<[SocketAddr]>::to_vec)
        .collect();
    let workers: Vec<_> = shares
        .into_iter()
        .map(|share| {
            std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("a runtime");
                runtime.block_on(async move {
                    let mut connects = JoinSet::new();
                    for endpoint in share {
                        connects.spawn(async move {
                            let deadline = tokio::time::Instant::now() + timeout;
                            match connect(endpoint, deadline).await {
                                // Counted in the first column: opened (no bind is sent).
                                Ok(_) => Outcome::Kms,
                                Err(outcome) => outcome,
                            }
                        });
                        // Each connect issued before the next is spawned, so the last start is
                        // when the last system call went out.
                        tokio::task::yield_now().await;
                    }
                    let last_started = started.elapsed();
                    let mut counts = [0usize; 4];
                    while let Some(outcome) = connects.join_next().await {
                        counts[outcome.expect("a connect") as usize] += 1;
                    }
                    (last_started, counts)
                })
            })
        })
        .collect();
    let mut last_started = Duration::ZERO;
    let mut counts = [0usize; 4];
    for worker in workers {
        let (started, share) = worker.join().expect("a worker");
        last_started = last_started.max(started);
        for (total, n) in counts.iter_mut().zip(share) {
            *total += n;
        }
    }
    format!("{} {}", last_started.as_millis(), tally(counts))
}

/// `total kms refused timed_out other`.
fn tally(counts: [usize; 4]) -> String {
    format!(
        "{} {} {} {} {}",
        counts.iter().sum::<usize>(),
        counts[Outcome::Kms as usize],
        counts[Outcome::Refused as usize],
        counts[Outcome::TimedOut as usize],
        counts[Outcome::Other as usize],
    )
}

async fn floor(server: SocketAddr, names: Vec<Name>, timeout: Duration) -> String {
    let started = Instant::now();
    let socket = Arc::new(UdpSocket::bind("0.0.0.0:0").await.expect("a UDP socket"));
    socket.connect(server).await.expect("the server");
    let window = Arc::new(Semaphore::new(WINDOW));
    let total = names.len();
    let sender = {
        let (socket, window) = (socket.clone(), window.clone());
        tokio::spawn(async move {
            for (i, name) in names.into_iter().enumerate() {
                // Returned when the reply comes.
                window.acquire().await.expect("never closed").forget();
                let mut query = Message::query();
                query.metadata.id = i as u16;
                query.metadata.recursion_desired = false;
                query.add_query(Query::query(name, RecordType::SRV));
                let bytes = query.to_vec().expect("a query");
                socket.send(&bytes).await.expect("sent");
            }
        })
    };
    let bind = Arc::new(
        vlmcs_audit::probe::rpc::Bind::new(
            2,
            vlmcs_audit::probe::rpc::KMS_INTERFACE,
            &[
                vlmcs_audit::probe::rpc::NDR32,
                vlmcs_audit::probe::rpc::NDR64,
            ],
        )
        .encode(),
    );
    let mut probes = JoinSet::new();
    let mut probed = std::collections::HashSet::new();
    let mut buffer = vec![0u8; 4096];
    let mut answered = 0;
    // Replies end when every question is answered, or when none came for a timeout (a lost one:
    // the lab is loss-free, and the floor does not resend).
    while answered < total {
        let Ok(Ok(n)) = tokio::time::timeout(timeout, socket.recv(&mut buffer)).await else {
            break;
        };
        let Ok(reply) = Message::from_vec(&buffer[..n]) else {
            continue;
        };
        answered += 1;
        window.add_permits(1);
        let mut addresses: HashMap<&Name, Vec<IpAddr>> = HashMap::new();
        for record in &reply.additionals {
            if let RData::A(a) = &record.data {
                addresses
                    .entry(&record.name)
                    .or_default()
                    .push(IpAddr::V4(a.0));
            }
        }
        for record in &reply.answers {
            if let RData::SRV(srv) = &record.data {
                for address in addresses.get(&srv.target).into_iter().flatten() {
                    let endpoint = SocketAddr::new(*address, srv.port);
                    if probed.insert(endpoint) {
                        probes.spawn(probe(endpoint, bind.clone(), timeout));
                    }
                }
            }
        }
    }
    let dns_end = started.elapsed();
    sender.abort();
    let mut counts = [0usize; 4];
    while let Some(outcome) = probes.join_next().await {
        counts[outcome.expect("a probe") as usize] += 1;
    }
    format!("{} {answered} {}", dns_end.as_millis(), tally(counts))
}

async fn connect(
    endpoint: SocketAddr,
    deadline: tokio::time::Instant,
) -> Result<tokio::net::TcpStream, Outcome> {
    let socket = TcpSocket::new_v4().map_err(|_| Outcome::Other)?;
    match tokio::time::timeout_at(deadline, socket.connect(endpoint)).await {
        Err(_) => Err(Outcome::TimedOut),
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => Err(Outcome::Refused),
        Ok(Err(_)) => Err(Outcome::Other),
        Ok(Ok(stream)) => Ok(stream),
    }
}

async fn probe(endpoint: SocketAddr, bind: Arc<Vec<u8>>, timeout: Duration) -> Outcome {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut stream = match connect(endpoint, deadline).await {
        Ok(stream) => stream,
        Err(outcome) => return outcome,
    };
    let exchange = async {
        stream.write_all(&bind).await?;
        let mut header = [0u8; 16];
        stream.read_exact(&mut header).await?;
        let length = usize::from(u16::from_le_bytes([header[8], header[9]]));
        let mut body = vec![0u8; length.saturating_sub(16)];
        stream.read_exact(&mut body).await?;
        Ok::<_, std::io::Error>(header[2])
    };
    match tokio::time::timeout_at(deadline, exchange).await {
        // A bind_ack (packet type 12).
        Ok(Ok(12)) => Outcome::Kms,
        _ => Outcome::Other,
    }
}
