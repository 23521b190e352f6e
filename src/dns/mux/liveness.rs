//! Which DNS servers answer at all, as resolvers keep it: a server that let a query go unanswered
//! for a whole timeout, and sent nothing else since that query left, is held back — every
//! further query to it fails at once with the evidence, so one dead server costs the scan one
//! timeout instead of one per domain — and one query per interval still goes out to see whether
//! it came back. Any answer makes it an ordinary server again.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::lock;
use crate::dns::QueryError;
use crate::model::Transport;

/// A held-back server is asked again at most this often, and never more often than once per
/// timeout (one re-check outstanding at a time): a low rate, as resolvers re-probe a server
/// they marked unreachable.
const MIN_RECHECK: Duration = Duration::from_secs(1);

/// What a query may do towards a server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Admission {
    /// The server answers: an ordinary query.
    Ordinary,
    /// The server is held back and this query checks whether it is back: it goes out like an
    /// ordinary one, and its answer (or silence) decides.
    Recheck,
}

/// The evidence against a held-back server.
#[derive(Debug, Clone, Copy)]
struct HeldBack {
    /// When the first query that found the server silent was sent.
    silent_since: Instant,
    /// Queries that went unanswered (timed out) or were not sent because of it.
    unanswered: u64,
    /// When the next re-check may go out.
    next_recheck: Instant,
    /// A re-check is on its way: no second one until it ends.
    rechecking: bool,
}

#[derive(Debug, Default)]
struct Server {
    last_heard: Option<Instant>,
    held_back: Option<HeldBack>,
}

/// Liveness of every server (and transport) the scan asked.
#[derive(Debug, Default)]
pub(crate) struct Liveness {
    servers: Mutex<HashMap<(SocketAddr, Transport), Server>>,
}

impl Liveness {
    /// Whether a query to `server` may go out now; the error, with the evidence, when the
    /// server is held back and it is not yet time to check on it again.
    pub(crate) fn admit(
        &self,
        server: SocketAddr,
        transport: Transport,
        timeout: Duration,
        now: Instant,
    ) -> Result<Admission, QueryError> {
        self.decide(server, transport, timeout, now, true)
    }

    /// The error a query to `server` would meet right now, without taking the re-check when
    /// one is due (that query then goes on to [`Self::admit`]): lets a caller skip its pacing
    /// and concurrency queues for a query that cannot go out.
    pub(crate) fn refusal(
        &self,
        server: SocketAddr,
        transport: Transport,
        timeout: Duration,
        now: Instant,
    ) -> Option<QueryError> {
        self.decide(server, transport, timeout, now, false).err()
    }

    /// A refused query counts as unanswered; a due re-check is taken only with `take_recheck`.
    fn decide(
        &self,
        server: SocketAddr,
        transport: Transport,
        timeout: Duration,
        now: Instant,
        take_recheck: bool,
    ) -> Result<Admission, QueryError> {
        let mut servers = lock(&self.servers);
        let Some(held) = servers
            .get_mut(&(server, transport))
            .and_then(|s| s.held_back.as_mut())
        else {
            return Ok(Admission::Ordinary);
        };
        if !held.rechecking && now >= held.next_recheck {
            held.rechecking |= take_recheck;
            return Ok(Admission::Recheck);
        }
        held.unanswered += 1;
        Err(refusal(held, transport, timeout, now))
    }

    #[cfg(test)]
    pub(crate) fn is_held_back(&self, server: SocketAddr, transport: Transport) -> bool {
        lock(&self.servers)
            .get(&(server, transport))
            .is_some_and(|s| s.held_back.is_some())
    }

    /// An answer arrived from `server`: it is alive (and no longer held back).
    pub(crate) fn heard(&self, server: SocketAddr, transport: Transport, now: Instant) {
        let mut servers = lock(&self.servers);
        let entry = servers.entry((server, transport)).or_default();
        entry.last_heard = Some(now);
        if let Some(held) = entry.held_back.take() {
            tracing::info!(%server, %transport, unanswered = held.unanswered, "the server answers again");
        }
    }

    /// A query sent at `sent` got no answer until `now`. When it waited at least half a
    /// timeout (a query asked again late, without EDNS say, with little time left proves
    /// nothing) and nothing else came from the server since it was sent, the server is held
    /// back (returns true the first time).
    pub(crate) fn unanswered(
        &self,
        server: SocketAddr,
        transport: Transport,
        sent: Instant,
        timeout: Duration,
        now: Instant,
    ) -> bool {
        if now.saturating_duration_since(sent) < timeout / 2 {
            return false;
        }
        let mut servers = lock(&self.servers);
        let entry = servers.entry((server, transport)).or_default();
        if entry.last_heard.is_some_and(|heard| heard >= sent) {
            // It answered others meanwhile: a lost query, not a dead server.
            return false;
        }
        let next_recheck = now + recheck_interval(timeout);
        match entry.held_back.as_mut() {
            Some(held) => {
                held.unanswered += 1;
                held.rechecking = false;
                held.next_recheck = held.next_recheck.max(next_recheck);
                false
            }
            None => {
                tracing::warn!(%server, %transport, "no answer for {timeout:?}: holding the server back");
                entry.held_back = Some(HeldBack {
                    silent_since: sent,
                    unanswered: 1,
                    next_recheck,
                    rechecking: false,
                });
                true
            }
        }
    }

    /// A re-check ended without an answer and without a timeout of its own (the query was
    /// abandoned): let the next one go.
    pub(crate) fn recheck_abandoned(&self, server: SocketAddr, transport: Transport) {
        if let Some(held) = lock(&self.servers)
            .get_mut(&(server, transport))
            .and_then(|s| s.held_back.as_mut())
        {
            held.rechecking = false;
        }
    }
}

fn recheck_interval(timeout: Duration) -> Duration {
    timeout.max(MIN_RECHECK)
}

fn refusal(held: &HeldBack, transport: Transport, timeout: Duration, now: Instant) -> QueryError {
    QueryError::HeldBack {
        transport,
        silent_for: now.saturating_duration_since(held.silent_since),
        unanswered: held.unanswered,
        timeout,
        recheck: recheck_interval(timeout),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const UDP: Transport = Transport::Udp;

    fn server() -> SocketAddr {
        "127.0.0.1:53".parse().unwrap()
    }

    #[test]
    fn a_lost_query_of_a_server_that_answers_others_holds_nothing_back() {
        let live = Liveness::default();
        let t0 = Instant::now();
        let timeout = Duration::from_secs(1);
        live.heard(server(), UDP, t0 + Duration::from_millis(500));
        // Sent before the answer above: the server spoke since.
        assert!(!live.unanswered(server(), UDP, t0, timeout, t0 + timeout));
        assert_eq!(
            live.admit(server(), UDP, timeout, t0 + timeout).unwrap(),
            Admission::Ordinary
        );
    }

    #[test]
    fn a_silent_server_is_refused_at_once_rechecked_now_and_then_and_back_on_an_answer() {
        let live = Liveness::default();
        let t0 = Instant::now();
        let timeout = Duration::from_secs(2);
        live.heard(server(), UDP, t0);
        let sent = t0 + Duration::from_millis(10);
        assert!(live.unanswered(server(), UDP, sent, timeout, sent + timeout));
        // A second timeout of the same silence does not start it again.
        assert!(!live.unanswered(server(), UDP, sent, timeout, sent + timeout));
        let now = sent + timeout + Duration::from_millis(1);
        let err = live.admit(server(), UDP, timeout, now).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("3 queries"), "{text}");
        assert!(text.contains("timeout 2.0 s"), "{text}");
        assert!(crate::dns::is_held_back_detail(&text), "{text}");
        assert!(live.refusal(server(), UDP, timeout, now).is_some());
        // Another server and the other transport are not concerned.
        let other: SocketAddr = "127.0.0.2:53".parse().unwrap();
        assert_eq!(
            live.admit(other, UDP, timeout, now).unwrap(),
            Admission::Ordinary
        );
        assert_eq!(
            live.admit(server(), Transport::Tcp, timeout, now).unwrap(),
            Admission::Ordinary
        );
        // After the interval one query re-checks; only one at a time.
        let later = sent + timeout * 2 + Duration::from_millis(1);
        assert!(live.refusal(server(), UDP, timeout, later).is_none());
        assert_eq!(
            live.admit(server(), UDP, timeout, later).unwrap(),
            Admission::Recheck
        );
        assert!(live.admit(server(), UDP, timeout, later).is_err());
        // The re-check times out too: still held back, the next one an interval later.
        assert!(!live.unanswered(server(), UDP, later, timeout, later + timeout));
        assert!(live.admit(server(), UDP, timeout, later + timeout).is_err());
        let again = later + timeout * 2;
        assert_eq!(
            live.admit(server(), UDP, timeout, again).unwrap(),
            Admission::Recheck
        );
        // It answers: ordinary again.
        live.heard(server(), UDP, again + Duration::from_millis(1));
        assert!(!live.is_held_back(server(), UDP));
        assert_eq!(
            live.admit(server(), UDP, timeout, again).unwrap(),
            Admission::Ordinary
        );
    }

    #[test]
    fn a_query_that_waited_less_than_half_a_timeout_proves_nothing() {
        let live = Liveness::default();
        let t0 = Instant::now();
        let timeout = Duration::from_secs(2);
        assert!(!live.unanswered(server(), UDP, t0, timeout, t0 + timeout / 3));
        assert!(live.admit(server(), UDP, timeout, t0 + timeout).is_ok());
        assert!(live.unanswered(server(), UDP, t0, timeout, t0 + timeout / 2));
    }

    #[test]
    fn an_abandoned_recheck_lets_the_next_one_go() {
        let live = Liveness::default();
        let t0 = Instant::now();
        let timeout = Duration::from_millis(100);
        assert!(live.unanswered(server(), UDP, t0, timeout, t0 + timeout));
        let later = t0 + Duration::from_secs(5);
        assert_eq!(
            live.admit(server(), UDP, timeout, later).unwrap(),
            Admission::Recheck
        );
        assert!(live.admit(server(), UDP, timeout, later).is_err());
        live.recheck_abandoned(server(), UDP);
        assert_eq!(
            live.admit(server(), UDP, timeout, later).unwrap(),
            Admission::Recheck
        );
    }
}
