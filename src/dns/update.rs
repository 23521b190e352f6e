//! RFC 2136 dynamic updates, built and checked here rather than in hickory's client: every
//! delete carries a value-dependent "RRset exists" prerequisite (hickory's `delete_by_rdata`
//! sends none), and the reply's response code and TSIG error are read directly (hickory turns a
//! rejected key into an opaque protocol error).
//!
//! Updates go over TCP: an UPDATE must not be resent blindly after a lost UDP reply.

use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::SRV;
use hickory_proto::rr::rdata::tsig::TsigError;
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};

use crate::dns::auth::{Auth, AuthKind};
use crate::dns::tsig::{self, MacProvider};
use crate::dns::{self, ExchangeError, exchange_tcp};
use crate::model::SrvRecord;

/// One change to send.
#[derive(Debug, Clone)]
pub enum Change {
    /// Delete exactly `victim`, only if the RRset at the owner is still exactly `rrset`.
    DeleteExact {
        /// The RRset as audited: the delete's prerequisite.
        rrset: Vec<SrvRecord>,
        /// The record to delete.
        victim: SrvRecord,
    },
    /// Add `record` (with its TTL); used by `restore`.
    Add {
        /// The record to add.
        record: SrvRecord,
    },
}

/// Why an update did not succeed. Each variant says what it means and what to check.
#[derive(Debug, thiserror::Error)]
pub enum UpdateError {
    /// TSIG BADKEY: the server does not know the key.
    #[error(
        "authentication failed: the server does not know the key `{key}` (TSIG BADKEY); check the key name and that the server's configuration includes it"
    )]
    BadKey {
        /// The key's name.
        key: String,
    },
    /// TSIG BADSIG: the secrets differ.
    #[error(
        "authentication failed: the signature did not verify (TSIG BADSIG): the secret of key `{key}` differs from the server's"
    )]
    BadSig {
        /// The key's name.
        key: String,
    },
    /// TSIG BADTIME: the clocks differ.
    #[error(
        "authentication failed: the server rejected the signature's time (TSIG BADTIME): this machine's clock and the server's differ by more than 5 minutes; fix time sync (NTP)"
    )]
    BadTime,
    /// An unsigned refusal of a signed update: the server could not verify it.
    #[error(
        "authentication failed: the server did not accept our signature (an unsigned {rcode} to a signed update): wrong secret, unknown key name, or clock skew — the server's log says which (PowerDNS answers this way); check the key file against the server's key and this machine's clock (NTP)"
    )]
    SignatureNotAccepted {
        /// The response code.
        rcode: String,
    },
    /// NOTAUTH to a signed update: the key is not allowed for the zone.
    #[error("authentication failed: NOTAUTH{0}; the server does not accept this key for the zone")]
    NotAuth(String),
    /// REFUSED: the server's policy.
    #[error("refused by the server's policy (REFUSED): {0}")]
    Refused(String),
    /// NOTAUTH to an unsigned update.
    #[error(
        "the server answered NOTAUTH to an unsigned update: either it requires authentication for this zone (Knot says NOTAUTH when no ACL allows the update; give a key with --tsig-key) or it is not authoritative for zone {zone} (check the primary, --primary)"
    )]
    UnsignedNotAuth {
        /// The zone.
        zone: String,
    },
    /// NXRRSET: the prerequisite failed, the RRset changed.
    #[error(
        "the RRset changed since it was audited (NXRRSET: a host re-registered or someone edited the records); nothing was changed, re-run to plan again"
    )]
    RrsetChanged,
    /// NOTZONE: the server does not serve the zone.
    #[error(
        "the server is not authoritative for zone {zone} (NOTZONE/NOTAUTH for the zone): check which server is the zone's primary (SOA MNAME) or pass --server"
    )]
    NotZone {
        /// The zone.
        zone: String,
    },
    /// SERVFAIL: the server failed.
    #[error(
        "the server failed to process the update (SERVFAIL): check its logs (journal or zone file permissions, a read-only secondary)"
    )]
    ServFail,
    /// Any other response code.
    #[error("the server answered {0}")]
    OtherResponse(String),
    /// No reply in time: the outcome is unknown.
    #[error(
        "no reply from {server} within {timeout:?}: the update may or may not have been applied; re-scan before doing anything else"
    )]
    Timeout {
        /// The server.
        server: SocketAddr,
        /// How long was waited.
        timeout: Duration,
    },
    /// The update could not be sent.
    #[error("cannot reach {server}: {message}")]
    Network {
        /// The server.
        server: SocketAddr,
        /// What the network said.
        message: String,
    },
    /// The connection failed after sending: the outcome is unknown.
    #[error(
        "the connection to {server} failed after the update was sent ({message}): it may or may not have been applied; the next scan will tell, re-scan before anything else"
    )]
    AfterSend {
        /// The server.
        server: SocketAddr,
        /// What the network said.
        message: String,
    },
    /// A reply that cannot be trusted (unparseable, another id, unsigned).
    #[error("the reply could not be verified ({0}); the update may have been applied: re-scan")]
    Unverified(String),
    /// A reply whose signature did not verify.
    #[error("the reply could not be verified ({0}); the update may have been applied: re-scan")]
    UnverifiedSignature(#[source] tsig::SignatureError),
    /// An unsigned error reply to a signed update: nobody vouches for it.
    #[error(
        "the server answered {rcode} without signing its reply to a signed update: the reply cannot be verified and the update may have been applied; re-scan before anything else"
    )]
    UnsignedReply {
        /// The response code.
        rcode: String,
    },
    /// The update could not be signed (a GSS-TSIG negotiation failed, say).
    #[error("authentication failed: {0}")]
    Auth(#[source] crate::dns::auth::SigningError),
    /// This machine could not build or sign the update.
    #[error("{0}")]
    Local(String),
}

/// How far an update error reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scope {
    /// The server's answer about this zone: other domains may still be done.
    Domain,
    /// Keys, clocks, transport, lost replies: every further update would fare the same, or
    /// the state of DNS is unknown. Stop the run.
    Run,
}

impl UpdateError {
    /// Which updates an error stops: the one policy that `clean` and `restore` both follow.
    pub(crate) fn scope(&self) -> Scope {
        match self {
            Self::RrsetChanged
            | Self::NotZone { .. }
            | Self::Refused(_)
            | Self::ServFail
            | Self::OtherResponse(_) => Scope::Domain,
            _ => Scope::Run,
        }
    }

    /// The request went out and no trustworthy answer came back: DNS may or may not have
    /// changed. A reply to a signed request that cannot be verified is such a case whatever it
    /// says (a server that applied the update may still send a broken MAC or an unsigned
    /// SERVFAIL), but for an unsigned refusal: that is how servers answer a signature they could
    /// not verify (PowerDNS), and a forged one can only keep a record.
    pub(crate) fn outcome_unknown(&self) -> bool {
        matches!(
            self,
            Self::Timeout { .. }
                | Self::AfterSend { .. }
                | Self::Unverified(_)
                | Self::UnverifiedSignature(_)
                | Self::UnsignedReply { .. }
        )
    }
}

/// A successful update, for the audit trail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    /// How the reply was authenticated (`tsig`, `unsigned`).
    pub verified: String,
}

/// Where an update goes: the server, its zone, and the server's host name (the SOA MNAME),
/// which GSS-TSIG needs for the service principal.
#[derive(Debug, Clone)]
pub struct Destination {
    /// The server the update goes to (the zone's primary, or --primary).
    pub server: SocketAddr,
    /// The zone the update is for.
    pub zone: Name,
    /// The server's host name, for GSS-TSIG's DNS/<host> principal.
    pub server_name: Option<Name>,
}

/// Sends `change` for `owner` to the destination.
pub async fn send(
    to: &Destination,
    owner: &Name,
    change: &Change,
    auth: &Auth,
    timeout: Duration,
) -> Result<Applied, UpdateError> {
    let unsigned = build(&to.zone, owner, change)?
        .to_vec()
        .map_err(|e| UpdateError::Local(format!("encoding the update: {e}")))?;
    let provider = auth
        .mac_provider(to.server, to.server_name.as_ref(), timeout)
        .await
        .map_err(UpdateError::Auth)?;
    send_bytes(
        to.server,
        &to.zone,
        unsigned,
        provider,
        auth.kind(),
        timeout,
    )
    .await
}

/// Signs (when `mac` is given), sends and checks one UPDATE given as wire bytes.
pub(crate) async fn send_bytes(
    server: SocketAddr,
    zone: &Name,
    unsigned: Vec<u8>,
    mut mac: Option<Box<dyn MacProvider + Send>>,
    kind: AuthKind,
    timeout: Duration,
) -> Result<Applied, UpdateError> {
    let (request, request_mac, key) = sign_request(unsigned, mac.as_deref_mut())?;
    let request_id = u16::from_be_bytes([request[0], request[1]]);
    let reply_bytes = exchange_tcp(server, &request, timeout).await?;
    let reply = Message::from_vec(&reply_bytes)
        .map_err(|e| UpdateError::Unverified(format!("unparseable reply: {e}")))?;
    if reply.metadata.id != request_id {
        return Err(UpdateError::Unverified(
            "reply id does not match the request".into(),
        ));
    }
    let rcode = reply.metadata.response_code;
    let outcome = map_rcode(rcode, zone, kind);
    let Some(mut provider) = mac else {
        return outcome.map(|()| Applied {
            verified: "unsigned".into(),
        });
    };
    let signature = tsig::read_tsig(&reply_bytes)
        .map_err(|e| UpdateError::UnverifiedSignature(tsig::SignatureError::Decode(e)))?;
    let verified = match signature.as_ref().map(|record| record.data.error) {
        // A TSIG error is the precise reason; the server cannot sign such replies.
        Some(Some(error)) => {
            return Err(match error {
                TsigError::BadKey => UpdateError::BadKey { key },
                TsigError::BadSig => UpdateError::BadSig { key },
                TsigError::BadTime => UpdateError::BadTime,
                other => UpdateError::NotAuth(format!(" (TSIG error {other:?})")),
            });
        }
        // Verify whatever the reply says: an unsigned NXRRSET could be forged too.
        Some(_) => match tsig::verify_reply(&reply_bytes, &request_mac, provider.as_mut()) {
            Ok(tsig::ReplyForm::Rfc8945) => "tsig",
            Ok(tsig::ReplyForm::WithoutMacLength) => {
                "tsig (reply MAC without the request MAC length, as Samba and Windows sign)"
            }
            Err(e) => return Err(UpdateError::UnverifiedSignature(e)),
        },
        None if rcode == ResponseCode::NoError => {
            return Err(UpdateError::Unverified(
                "the server did not sign its reply".into(),
            ));
        }
        // A signed update refused without a signature: the server could not verify ours (a
        // server that verified it signs even its refusals). A key failure, not a policy.
        None if matches!(rcode, ResponseCode::Refused | ResponseCode::NotAuth) => {
            return Err(UpdateError::SignatureNotAccepted {
                rcode: rcode.to_string(),
            });
        }
        // Other unsigned error replies (SERVFAIL, FORMERR, NOTIMP) to a signed request: no
        // server that verified ours answers unsigned, and nobody vouches for the rcode.
        None => {
            return Err(UpdateError::UnsignedReply {
                rcode: rcode.to_string(),
            });
        }
    };
    tracing::info!(%server, verified, "update reply verified");
    outcome.map(|()| Applied {
        verified: verified.into(),
    })
}

/// The request as sent (signed now when `mac` is given), its MAC (the reply's MAC covers it)
/// and the key's name for errors.
fn sign_request(
    unsigned: Vec<u8>,
    mac: Option<&mut (dyn MacProvider + Send + 'static)>,
) -> Result<(Vec<u8>, Vec<u8>, String), UpdateError> {
    let Some(provider) = mac else {
        return Ok((unsigned, Vec::new(), String::new()));
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let key = dns::presentation(&provider.key_name());
    let signed = tsig::sign(&unsigned, provider, now, 300)
        .map_err(|e| UpdateError::Local(format!("signing the update: {e}")))?;
    Ok((signed.bytes, signed.mac, key))
}

fn map_rcode(rcode: ResponseCode, zone: &Name, kind: AuthKind) -> Result<(), UpdateError> {
    let signed = kind != AuthKind::None;
    match rcode {
        ResponseCode::NoError => Ok(()),
        ResponseCode::NXRRSet => Err(UpdateError::RrsetChanged),
        ResponseCode::NotZone => Err(UpdateError::NotZone {
            zone: dns::presentation(zone),
        }),
        ResponseCode::NotAuth if signed => Err(UpdateError::NotAuth(String::new())),
        ResponseCode::NotAuth => Err(UpdateError::UnsignedNotAuth {
            zone: dns::presentation(zone),
        }),
        ResponseCode::Refused if kind == AuthKind::Gss => Err(UpdateError::Refused(
            "the account has no right to change the _vlmcs._tcp node: in Active Directory the node belongs to the first KMS host that registered it; grant a delegated group (with your account) Write/Delete rights on _vlmcs._tcp in each zone".into(),
        )),
        ResponseCode::Refused if signed => Err(UpdateError::Refused(
            "the key is not allowed to change this name (check update-policy / allow-update, or the ACL on the _vlmcs._tcp node)".into(),
        )),
        ResponseCode::Refused => Err(UpdateError::Refused(
            "the zone does not accept unsigned updates from here: give a key with --tsig-key".into(),
        )),
        ResponseCode::ServFail => Err(UpdateError::ServFail),
        other => Err(UpdateError::OtherResponse(other.to_string())),
    }
}

/// Builds the UPDATE message (RFC 2136 section 2): zone, prerequisites, updates.
pub(crate) fn build(zone: &Name, owner: &Name, change: &Change) -> Result<Message, UpdateError> {
    let mut message = Message::new(rand_id(), MessageType::Query, OpCode::Update);
    let mut zone_query = Query::query(zone.clone(), RecordType::SOA);
    zone_query.set_query_class(DNSClass::IN);
    message.add_query(zone_query);
    match change {
        Change::DeleteExact { rrset, victim } => {
            // Value-dependent "RRset exists" (2.4.2): every RR of the audited RRset, class IN,
            // TTL 0. The server compares the whole set.
            for record in rrset {
                message.add_answer(srv_record(owner, record, DNSClass::IN, 0)?);
            }
            // Delete one RR (2.5.4): class NONE, TTL 0.
            message.add_authority(srv_record(owner, victim, DNSClass::NONE, 0)?);
        }
        Change::Add { record } => {
            message.add_authority(srv_record(owner, record, DNSClass::IN, record.ttl)?);
        }
    }
    Ok(message)
}

fn srv_record(
    owner: &Name,
    record: &SrvRecord,
    class: DNSClass,
    ttl: u32,
) -> Result<Record, UpdateError> {
    let target = record.target.to_name();
    let mut rr = Record::from_rdata(
        owner.clone(),
        ttl,
        RData::SRV(SRV::new(
            record.priority,
            record.weight,
            record.port,
            target,
        )),
    );
    rr.dns_class = class;
    Ok(rr)
}

fn rand_id() -> u16 {
    // Not a security boundary over TCP; still avoid predictable ids.
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    (nanos ^ (nanos >> 16) ^ std::process::id()) as u16
}

impl From<ExchangeError> for UpdateError {
    fn from(error: ExchangeError) -> Self {
        match error {
            ExchangeError::NotSent { server, message } => Self::Network { server, message },
            ExchangeError::NoReply { server, timeout } => Self::Timeout { server, timeout },
            ExchangeError::AfterSend { server, message } => Self::AfterSend { server, message },
            ExchangeError::TooLarge => Self::Local("update too large".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn srv(target: &str) -> SrvRecord {
        SrvRecord {
            priority: 0,
            weight: 0,
            port: 1688,
            target: target.into(),
            ttl: 3600,
        }
    }

    #[test]
    fn delete_carries_the_whole_rrset_as_prerequisite_and_deletes_one_rr() {
        let zone = Name::from_ascii("corp.example.com.").unwrap();
        let owner = Name::from_ascii("_vlmcs._tcp.corp.example.com.").unwrap();
        let rrset = vec![srv("kms1.corp.example.com."), srv("old.corp.example.com.")];
        let message = build(
            &zone,
            &owner,
            &Change::DeleteExact {
                rrset: rrset.clone(),
                victim: rrset[1].clone(),
            },
        )
        .unwrap();
        assert_eq!(message.metadata.op_code, OpCode::Update);
        assert_eq!(message.queries[0].name(), &zone);
        assert_eq!(message.queries[0].query_type(), RecordType::SOA);
        assert_eq!(message.answers.len(), 2);
        assert!(
            message
                .answers
                .iter()
                .all(|r| r.dns_class == DNSClass::IN && r.ttl == 0)
        );
        assert_eq!(message.authorities.len(), 1);
        let delete = &message.authorities[0];
        assert_eq!(delete.dns_class, DNSClass::NONE);
        assert_eq!(delete.ttl, 0);
        match &delete.data {
            RData::SRV(s) => assert_eq!(s.target.to_ascii(), "old.corp.example.com."),
            other => panic!("{other:?}"),
        }
        // And it survives the wire.
        let wire = message.to_vec().unwrap();
        let back = Message::from_vec(&wire).unwrap();
        assert_eq!(back.answers.len(), 2);
        assert_eq!(back.authorities[0].dns_class, DNSClass::NONE);
    }

    #[test]
    fn add_keeps_the_original_ttl() {
        let zone = Name::from_ascii("corp.example.com.").unwrap();
        let owner = Name::from_ascii("_vlmcs._tcp.corp.example.com.").unwrap();
        let message = build(
            &zone,
            &owner,
            &Change::Add {
                record: srv("kms1.corp.example.com."),
            },
        )
        .unwrap();
        assert!(message.answers.is_empty());
        assert_eq!(message.authorities[0].ttl, 3600);
        assert_eq!(message.authorities[0].dns_class, DNSClass::IN);
    }

    #[test]
    fn an_unverified_signature_stops_the_run_and_a_policy_refusal_only_the_domain() {
        let key = UpdateError::SignatureNotAccepted {
            rcode: "Refused".into(),
        };
        assert_eq!(key.scope(), Scope::Run);
        assert!(key.to_string().contains("did not accept our signature"));
        assert_eq!(UpdateError::Refused("policy".into()).scope(), Scope::Domain);
        assert!(
            UpdateError::AfterSend {
                server: "192.0.2.1:53".parse().unwrap(),
                message: "early eof".into()
            }
            .outcome_unknown()
        );
    }

    #[test]
    fn response_codes_map_to_their_own_errors() {
        let zone = Name::from_ascii("corp.example.com.").unwrap();
        assert!(matches!(
            map_rcode(ResponseCode::NoError, &zone, AuthKind::Tsig),
            Ok(())
        ));
        assert!(matches!(
            map_rcode(ResponseCode::NXRRSet, &zone, AuthKind::Tsig),
            Err(UpdateError::RrsetChanged)
        ));
        assert!(matches!(
            map_rcode(ResponseCode::NotZone, &zone, AuthKind::Tsig),
            Err(UpdateError::NotZone { .. })
        ));
        assert!(
            matches!(map_rcode(ResponseCode::Refused, &zone, AuthKind::None), Err(UpdateError::Refused(m)) if m.contains("--tsig-key"))
        );
        assert!(
            matches!(map_rcode(ResponseCode::Refused, &zone, AuthKind::Tsig), Err(UpdateError::Refused(m)) if m.contains("update-policy"))
        );
        assert!(matches!(
            map_rcode(ResponseCode::ServFail, &zone, AuthKind::Tsig),
            Err(UpdateError::ServFail)
        ));
        assert!(matches!(
            map_rcode(ResponseCode::NotAuth, &zone, AuthKind::Tsig),
            Err(UpdateError::NotAuth(_))
        ));
    }
}
