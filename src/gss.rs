//! GSS-TSIG (RFC 3645) with Kerberos through the system's GSS-API library (MIT krb5 via
//! `libgssapi`; cargo feature `gss`): credentials from the ticket cache or a keytab, the TKEY
//! negotiation with the DNS server, and a [`MacProvider`] that signs with the context's MIC.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hickory_proto::rr::Name;
use libgssapi::context::{ClientCtx, CtxFlags, SecurityContext};
use libgssapi::credential::{Cred, CredUsage};
use libgssapi::name::Name as GssName;
use libgssapi::oid::{GSS_MECH_SPNEGO, GSS_NT_KRB5_PRINCIPAL};

use crate::tkey;
use crate::tsig::{self, MacProvider};

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
    fn algorithm(&self) -> Name {
        tkey::gss_tsig_algorithm()
    }

    fn key_name(&self) -> Name {
        self.key_name.clone()
    }

    fn sign(&mut self, data: &[u8]) -> Result<Vec<u8>, String> {
        self.ctx
            .get_mic(data)
            .map(|b| b.to_vec())
            .map_err(|e| format!("GSS get_mic: {e}"))
    }

    fn verify(&mut self, data: &[u8], mac: &[u8]) -> Result<(), String> {
        self.ctx
            .verify_mic(data, mac)
            .map_err(|e| format!("GSS verify_mic: {e}"))
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

/// Negotiates a GSS-TSIG context with `server` for the service principal `DNS/<spn_host>`.
pub(crate) async fn negotiate(
    server: SocketAddr,
    spn_host: &str,
    settings: &GssSettings,
    timeout: Duration,
) -> Result<GssProvider, String> {
    let spn = format!("DNS/{}", spn_host.trim_end_matches('.'));
    let desired = match &settings.principal {
        Some(p) => Some(
            GssName::new(p.as_bytes(), Some(GSS_NT_KRB5_PRINCIPAL))
                .map_err(|e| format!("--principal {p}: {e}"))?,
        ),
        None => None,
    };
    let cred = Cred::acquire(desired.as_ref(), None, CredUsage::Initiate, None)
        .map_err(|e| explain(&e, &spn))?;
    let target = GssName::new(spn.as_bytes(), Some(GSS_NT_KRB5_PRINCIPAL))
        .map_err(|e| format!("SPN {spn}: {e}"))?;
    let flags = CtxFlags::GSS_C_MUTUAL_FLAG
        | CtxFlags::GSS_C_REPLAY_FLAG
        | CtxFlags::GSS_C_INTEG_FLAG
        | CtxFlags::GSS_C_SEQUENCE_FLAG;
    let mut ctx = ClientCtx::new(Some(cred), target, flags, Some(GSS_MECH_SPNEGO));
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let context_name = Name::from_ascii(format!("{}.sig-vlmcs-audit.", random_u32()))
        .map_err(|e| e.to_string())?;
    let mut token = ctx
        .step(None, None)
        .map_err(|e| explain(&e, &spn))?
        .map(|b| b.to_vec())
        .unwrap_or_default();
    let mut last_reply = Vec::new();
    for _round in 0..8 {
        let id = random_u32() as u16;
        let query = tkey::query(id, &context_name, &token, now as u32);
        let reply = crate::dns::exchange_tcp(server, &query, timeout)
            .await
            .map_err(|e| match e {
                crate::dns::ExchangeError::NoReply { .. } => {
                    format!("no TKEY answer from {server} within {timeout:?}")
                }
                other => other.to_string(),
            })?;
        let answer = tkey::parse_answer(&reply, id, &context_name)?;
        if answer.rcode != 0 {
            let code = hickory_proto::op::ResponseCode::from(0, answer.rcode);
            return Err(format!(
                "the server answered the TKEY negotiation with {code}: it does not do GSS-TSIG for us (is this the zone's Windows/Samba/BIND server with a DNS/{spn_host} key?)"
            ));
        }
        let tkey = answer
            .tkey
            .ok_or("the server's TKEY answer holds no TKEY record")?;
        if tkey.error != 0 {
            return Err(format!(
                "TKEY negotiation failed: {} (for {spn})",
                tkey::describe_error(tkey.error)
            ));
        }
        last_reply = reply;
        match ctx
            .step(Some(&tkey.key), None)
            .map_err(|e| explain(&e, &spn))?
        {
            Some(next) if !next.is_empty() && !ctx.is_complete() => token = next.to_vec(),
            _ => break,
        }
    }
    if !ctx.is_complete() {
        return Err(format!("the GSS context with {server} did not complete"));
    }
    let mut provider = GssProvider {
        key_name: context_name,
        ctx,
    };
    // The final TKEY answer may be signed with the new context (BIND does): check it.
    if tsig::split_tsig(&last_reply).ok().flatten().is_some() {
        let (_, form) = tsig::verify_reply(&last_reply, &[], &mut provider)
            .map_err(|e| format!("the TKEY answer: {e}"))?;
        tracing::info!(?form, "TKEY answer signature verified");
    }
    Ok(provider)
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
