//! GSS-TSIG (RFC 3645) with Kerberos through the system's GSS-API library (MIT krb5 via
//! `libgssapi`; cargo feature `gss`): credentials from the ticket cache or a keytab, the TKEY
//! negotiation with the DNS server, and a [`MacProvider`] that signs with the context's MIC.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hickory_proto::rr::Name;
use hickory_proto::rr::rdata::tsig::TsigAlgorithm;
use libgssapi::context::{ClientCtx, CtxFlags, SecurityContext};
use libgssapi::credential::{Cred, CredUsage};
use libgssapi::name::Name as GssName;
use libgssapi::oid::{GSS_MECH_SPNEGO, GSS_NT_KRB5_PRINCIPAL};

use crate::dns::tkey;
use crate::dns::tsig::{self, MacError, MacProvider};

/// How to authenticate with Kerberos.
#[derive(Debug, Clone, Default)]
pub struct GssSettings {
    /// The client principal (`svc-vlmcs@CORP.EXAMPLE.COM`); default: the ticket cache's.
    pub principal: Option<String>,
    /// A keytab for unattended runs (used through `KRB5_CLIENT_KTNAME`, set at start-up).
    pub keytab: Option<PathBuf>,
    /// The DNS server's service principal host, overriding the zone's SOA MNAME.
    pub spn_host: Option<String>,
}

/// A negotiated GSS-TSIG context: the key name and the GSS context that signs.
pub(crate) struct GssProvider {
    key_name: Name,
    ctx: ClientCtx,
}

impl MacProvider for GssProvider {
    fn algorithm(&self) -> TsigAlgorithm {
        TsigAlgorithm::Gss
    }

    fn key_name(&self) -> Name {
        self.key_name.clone()
    }

    fn sign(&mut self, data: &[u8]) -> Result<Vec<u8>, MacError> {
        self.ctx
            .get_mic(data)
            .map(|b| b.to_vec())
            .map_err(|e| MacError(format!("GSS get_mic: {e}")))
    }

    fn verify(&mut self, data: &[u8], mac: &[u8]) -> Result<(), MacError> {
        self.ctx
            .verify_mic(data, mac)
            .map_err(|e| MacError(format!("GSS verify_mic: {e}")))
    }
}

/// Turns a GSS-API error into what the administrator should do.
pub(crate) fn explain(error: &libgssapi::error::Error, spn: &str) -> String {
    let text = error.to_string();
    let lower = text.to_ascii_lowercase();
    let advice = if lower.contains("no kerberos credentials")
        || lower.contains("no credentials cache")
        || lower.contains("credentials cache file")
    {
        "no Kerberos ticket: run `kinit user@REALM` first, or give --keytab and --principal for unattended runs"
    } else if lower.contains("expired") {
        "the Kerberos ticket has expired: run `kinit` again (or use --keytab)"
    } else if lower.contains("not found in kerberos database")
        && lower.contains(&spn.to_ascii_lowercase())
    {
        "the KDC does not know the DNS server's principal: check --gss-spn (default DNS/<SOA MNAME>) and the server's registration"
    } else if lower.contains("clock skew") {
        "clock skew between this machine and the KDC or DNS server is too great: fix time sync (NTP)"
    } else if lower.contains("cannot contact any kdc")
        || lower.contains("cannot find kdc")
        || lower.contains("unable to reach")
    {
        "the KDC cannot be reached: check krb5.conf (or KRB5_CONFIG), DNS SRV records for the KDC, and the network"
    } else if lower.contains("client not found") || lower.contains("not found in kerberos database")
    {
        "the KDC does not know the client principal: check --principal"
    } else if lower.contains("wrong realm")
        || lower.contains("cannot find realm")
        || lower.contains("realm")
    {
        "the principal's realm is not the DNS server's: check the realm of your ticket and of the SPN"
    } else {
        "Kerberos failed"
    };
    format!("{advice} (GSS-API for {spn}: {})", text.trim())
}

/// Why no GSS-TSIG context could be negotiated. The texts say what to do.
#[derive(Debug, thiserror::Error)]
pub enum GssError {
    /// Kerberos said no; the text is [`explain`]'s.
    #[error("{explanation}")]
    Kerberos {
        /// What Kerberos said, with what to do.
        explanation: String,
        /// GSS-API's error.
        #[source]
        source: libgssapi::error::Error,
    },
    /// The client principal is not a valid name.
    #[error("--principal {principal}: {source}")]
    Principal {
        /// The principal given.
        principal: String,
        /// GSS-API's error.
        #[source]
        source: libgssapi::error::Error,
    },
    /// The service principal is not a valid name.
    #[error("SPN {spn}: {source}")]
    Spn {
        /// The service principal.
        spn: String,
        /// GSS-API's error.
        #[source]
        source: libgssapi::error::Error,
    },
    /// The TKEY query could not be built.
    #[error("building the TKEY query: {0}")]
    Query(#[source] hickory_proto::ProtoError),
    /// No TKEY answer in time.
    #[error("no TKEY answer from {server} within {timeout:?}")]
    NoAnswer {
        /// The DNS server.
        server: SocketAddr,
        /// How long was waited.
        timeout: Duration,
    },
    /// The TKEY exchange over TCP failed.
    #[error("{0}")]
    Exchange(#[source] crate::dns::ExchangeError),
    /// The TKEY answer could not be read.
    #[error("{0}")]
    Answer(#[source] tkey::AnswerError),
    /// The server answered the negotiation with an error rcode.
    #[error(
        "the server answered the TKEY negotiation with {code}: it does not do GSS-TSIG for us (is this the zone's Windows/Samba/BIND server with a DNS/{spn_host} key?)"
    )]
    Refused {
        /// The response code.
        code: hickory_proto::op::ResponseCode,
        /// The host of the DNS/<host> principal.
        spn_host: String,
    },
    /// An answer without a TKEY record.
    #[error("the server's TKEY answer holds no TKEY record")]
    NoTkey,
    /// A TKEY record with an error code.
    #[error("TKEY negotiation failed: {} (for {spn})", tkey::describe_error(*code))]
    Tkey {
        /// The TKEY error code.
        code: u16,
        /// The service principal.
        spn: String,
    },
    /// The exchange ended before the context was established.
    #[error("the GSS context with {server} did not complete")]
    Incomplete {
        /// The DNS server.
        server: SocketAddr,
    },
    /// The final TKEY answer's signature did not verify.
    #[error("the TKEY answer: {0}")]
    AnswerSignature(#[source] tsig::SignatureError),
}

/// Negotiates a GSS-TSIG context with `server` for the service principal `DNS/<spn_host>`.
pub(crate) async fn negotiate(
    server: SocketAddr,
    spn_host: &str,
    settings: &GssSettings,
    timeout: Duration,
) -> Result<GssProvider, GssError> {
    let spn = format!("DNS/{}", crate::model::name::without_final_dot(spn_host));
    let kerberos = |source: libgssapi::error::Error| GssError::Kerberos {
        explanation: explain(&source, &spn),
        source,
    };
    let desired = match &settings.principal {
        Some(p) => Some(
            GssName::new(p.as_bytes(), Some(GSS_NT_KRB5_PRINCIPAL)).map_err(|source| {
                GssError::Principal {
                    principal: p.clone(),
                    source,
                }
            })?,
        ),
        None => None,
    };
    let cred =
        Cred::acquire(desired.as_ref(), None, CredUsage::Initiate, None).map_err(kerberos)?;
    let target = GssName::new(spn.as_bytes(), Some(GSS_NT_KRB5_PRINCIPAL)).map_err(|source| {
        GssError::Spn {
            spn: spn.clone(),
            source,
        }
    })?;
    let flags = CtxFlags::GSS_C_MUTUAL_FLAG
        | CtxFlags::GSS_C_REPLAY_FLAG
        | CtxFlags::GSS_C_INTEG_FLAG
        | CtxFlags::GSS_C_SEQUENCE_FLAG;
    let mut ctx = ClientCtx::new(Some(cred), target, flags, Some(GSS_MECH_SPNEGO));
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let context_name =
        Name::from_ascii(format!("{}.sig-vlmcs-audit.", random_u32())).map_err(GssError::Query)?;
    let mut token = ctx
        .step(None, None)
        .map_err(kerberos)?
        .map(|b| b.to_vec())
        .unwrap_or_default();
    let mut last_reply = Vec::new();
    for _round in 0..8 {
        let round = Round {
            server,
            timeout,
            context: &context_name,
            now: now as u32,
            spn_host,
            spn: &spn,
        };
        let (reply, server_token) = round.exchange(&token).await?;
        last_reply = reply;
        match ctx.step(Some(&server_token), None).map_err(kerberos)? {
            Some(next) if !next.is_empty() && !ctx.is_complete() => token = next.to_vec(),
            _ => break,
        }
    }
    if !ctx.is_complete() {
        return Err(GssError::Incomplete { server });
    }
    let mut provider = GssProvider {
        key_name: context_name,
        ctx,
    };
    // The final TKEY answer may be signed with the new context (BIND does): check it.
    if tsig::read_tsig(&last_reply).ok().flatten().is_some() {
        let form = tsig::verify_reply(&last_reply, &[], &mut provider)
            .map_err(GssError::AnswerSignature)?;
        tracing::info!(?form, "TKEY answer signature verified");
    }
    Ok(provider)
}

/// One TKEY round trip of a negotiation.
struct Round<'a> {
    server: SocketAddr,
    timeout: Duration,
    context: &'a Name,
    now: u32,
    spn_host: &'a str,
    spn: &'a str,
}

impl Round<'_> {
    /// Sends our token; returns the reply and the server's token.
    async fn exchange(&self, token: &[u8]) -> Result<(Vec<u8>, Vec<u8>), GssError> {
        let (server, timeout) = (self.server, self.timeout);
        let id = random_u32() as u16;
        let query = tkey::query(id, self.context, token, self.now).map_err(GssError::Query)?;
        let reply = crate::dns::exchange_tcp(server, &query, timeout)
            .await
            .map_err(|e| match e {
                crate::dns::ExchangeError::NoReply { .. } => GssError::NoAnswer { server, timeout },
                other => GssError::Exchange(other),
            })?;
        let answer = tkey::parse_answer(&reply, id, self.context).map_err(GssError::Answer)?;
        if answer.rcode != 0 {
            return Err(GssError::Refused {
                code: hickory_proto::op::ResponseCode::from(0, answer.rcode),
                spn_host: self.spn_host.to_string(),
            });
        }
        let tkey = answer.tkey.ok_or(GssError::NoTkey)?;
        if tkey.error != 0 {
            return Err(GssError::Tkey {
                code: tkey.error,
                spn: self.spn.to_string(),
            });
        }
        Ok((reply, tkey.key))
    }
}

fn random_u32() -> u32 {
    let mut bytes = [0u8; 4];
    if getrandom(&mut bytes).is_err() {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        return nanos ^ std::process::id();
    }
    u32::from_be_bytes(bytes)
}

fn getrandom(buf: &mut [u8]) -> std::io::Result<()> {
    use std::io::Read;
    std::fs::File::open("/dev/urandom")?.read_exact(buf)
}
