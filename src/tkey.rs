//! TKEY (RFC 2930) in GSS-API mode (RFC 3645): the query that carries a GSS token to the DNS
//! server and the answer that carries the server's token back. hickory 0.26 has no TKEY type,
//! so the record is written and read here as type 249.

// Only the `gss` feature negotiates TKEY; the parser is built (and fuzzed) in every build.
#![cfg_attr(not(feature = "gss"), allow(dead_code))]

use hickory_proto::rr::Name;

use crate::tsig::{Wire, name_wire};

pub(crate) const TYPE_TKEY: u16 = 249;
const CLASS_ANY: u16 = 255;
/// TKEY mode 3: GSS-API negotiation.
pub(crate) const MODE_GSSAPI: u16 = 3;

/// `gss-tsig.`: the algorithm name of GSS-TSIG in TKEY and TSIG records.
pub(crate) fn gss_tsig_algorithm() -> Name {
    Name::from_ascii("gss-tsig.").expect("valid name")
}

/// A TKEY query for `context` carrying `token`, the TKEY record in the additional section as
/// RFC 3645 and `nsupdate -g` put it. `now` is seconds since the epoch.
pub(crate) fn query(id: u16, context: &Name, token: &[u8], now: u32) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&[0, 0]); // QUERY, no flags
    out.extend_from_slice(&1u16.to_be_bytes()); // QDCOUNT
    out.extend_from_slice(&0u16.to_be_bytes()); // ANCOUNT
    out.extend_from_slice(&0u16.to_be_bytes()); // NSCOUNT
    out.extend_from_slice(&1u16.to_be_bytes()); // ARCOUNT
    let owner = name_wire(context, false);
    out.extend_from_slice(&owner);
    out.extend_from_slice(&TYPE_TKEY.to_be_bytes());
    out.extend_from_slice(&CLASS_ANY.to_be_bytes());

    let mut rdata = name_wire(&gss_tsig_algorithm(), false);
    rdata.extend_from_slice(&now.to_be_bytes()); // inception
    rdata.extend_from_slice(&now.saturating_add(86_400).to_be_bytes()); // expiration
    rdata.extend_from_slice(&MODE_GSSAPI.to_be_bytes());
    rdata.extend_from_slice(&0u16.to_be_bytes()); // error
    rdata.extend_from_slice(&(token.len() as u16).to_be_bytes());
    rdata.extend_from_slice(token);
    rdata.extend_from_slice(&0u16.to_be_bytes()); // other size

    out.extend_from_slice(&owner);
    out.extend_from_slice(&TYPE_TKEY.to_be_bytes());
    out.extend_from_slice(&CLASS_ANY.to_be_bytes());
    out.extend_from_slice(&0u32.to_be_bytes()); // TTL
    out.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
    out.extend_from_slice(&rdata);
    out
}

/// The TKEY record of an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The DNS response code of the reply.
    pub rcode: u8,
    /// The TKEY record, if the answer section held one for the context.
    pub tkey: Option<Tkey>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tkey {
    pub algorithm: Name,
    pub mode: u16,
    /// TKEY error (RFC 2930 / 8945 codes: 16 BADSIG, 17 BADKEY, 18 BADTIME, 19 BADMODE, 20 BADNAME, 21 BADALG).
    pub error: u16,
    /// The server's GSS token.
    pub key: Vec<u8>,
}

/// Parses the reply to a TKEY query with `id` for `context`.
pub fn parse_answer(reply: &[u8], id: u16, context: &Name) -> Result<Answer, String> {
    let mut r = Wire::new(reply);
    let reply_id = r.u16()?;
    if reply_id != id {
        return Err("reply id does not match the TKEY query".into());
    }
    let flags = r.u16()?;
    let rcode = (flags & 0x000f) as u8;
    let qd = r.u16()?;
    let an = r.u16()?;
    r.skip(4)?;
    for _ in 0..qd {
        r.skip_name()?;
        r.skip(4)?;
    }
    for _ in 0..an {
        let owner = r.name()?;
        let rtype = r.u16()?;
        r.skip(6)?;
        let len = r.u16()? as usize;
        let rdata = r.bytes(len)?;
        if rtype == TYPE_TKEY
            && owner
                .to_lowercase()
                .eq_ignore_root_case(&context.to_lowercase())
        {
            return Ok(Answer {
                rcode,
                tkey: Some(parse_rdata(rdata)?),
            });
        }
    }
    Ok(Answer { rcode, tkey: None })
}

fn parse_rdata(rdata: &[u8]) -> Result<Tkey, String> {
    let mut r = Wire::new(rdata);
    let algorithm = r.name()?;
    r.skip(8)?; // inception, expiration
    let mode = r.u16()?;
    let error = r.u16()?;
    let key_len = r.u16()? as usize;
    let key = r.bytes(key_len)?.to_vec();
    let other_len = r.u16()? as usize;
    r.skip(other_len)?;
    Ok(Tkey {
        algorithm,
        mode,
        error,
        key,
    })
}

/// Describes a TKEY error code.
pub(crate) fn describe_error(code: u16) -> &'static str {
    match code {
        16 => "BADSIG: the server could not verify the token",
        17 => {
            "BADKEY: the server rejected the GSS token (a wrong SPN, a ticket it cannot decrypt, or clock skew between this machine and the server: check the DNS/<host> principal, its keytab, and time sync)"
        }
        18 => "BADTIME: clock skew between this machine and the server or KDC",
        19 => "BADMODE: the server does not do GSS-API TKEY",
        20 => "BADNAME: the server rejected the context name",
        21 => "BADALG: the server does not support gss-tsig",
        _ => "TKEY error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn context() -> Name {
        Name::from_ascii("12345.sig-vlmcs-audit.").unwrap()
    }

    /// A server's answer: the query echoed with QR set and the TKEY moved to the answer.
    fn answer_for(query_bytes: &[u8], server_token: &[u8], error: u16) -> Vec<u8> {
        let mut out = query_bytes[..12].to_vec();
        out[2] |= 0x80;
        out[6..8].copy_from_slice(&1u16.to_be_bytes());
        out[10..12].copy_from_slice(&0u16.to_be_bytes());
        let owner = name_wire(&context(), false);
        out.extend_from_slice(&owner);
        out.extend_from_slice(&TYPE_TKEY.to_be_bytes());
        out.extend_from_slice(&CLASS_ANY.to_be_bytes());
        // Compressed owner in the answer, as servers write it.
        out.extend_from_slice(&[0xc0, 12]);
        out.extend_from_slice(&TYPE_TKEY.to_be_bytes());
        out.extend_from_slice(&CLASS_ANY.to_be_bytes());
        out.extend_from_slice(&0u32.to_be_bytes());
        let mut rdata = name_wire(&gss_tsig_algorithm(), false);
        rdata.extend_from_slice(&[0; 8]);
        rdata.extend_from_slice(&MODE_GSSAPI.to_be_bytes());
        rdata.extend_from_slice(&error.to_be_bytes());
        rdata.extend_from_slice(&(server_token.len() as u16).to_be_bytes());
        rdata.extend_from_slice(server_token);
        rdata.extend_from_slice(&0u16.to_be_bytes());
        out.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
        out.extend_from_slice(&rdata);
        out
    }

    #[test]
    fn query_is_well_formed_and_hickory_reads_it() {
        let bytes = query(7, &context(), b"client-token", 1_700_000_000);
        let message = hickory_proto::op::Message::from_vec(&bytes).unwrap();
        assert_eq!(
            message.queries[0].query_type(),
            hickory_proto::rr::RecordType::Unknown(249)
        );
        assert_eq!(message.additionals.len(), 1);
        assert_eq!(message.additionals[0].name, context());
        // The algorithm name inside the RDATA is uncompressed.
        assert!(bytes.windows(10).any(|w| w == b"\x08gss-tsig\x00"));
    }

    #[test]
    fn answer_token_and_error_are_read() {
        let q = query(9, &context(), b"t1", 1);
        let a = parse_answer(&answer_for(&q, b"server-token", 0), 9, &context()).unwrap();
        let tkey = a.tkey.unwrap();
        assert_eq!(tkey.key, b"server-token");
        assert_eq!(tkey.mode, MODE_GSSAPI);
        assert_eq!(tkey.algorithm, gss_tsig_algorithm());
        let a = parse_answer(&answer_for(&q, b"", 17), 9, &context()).unwrap();
        assert_eq!(a.tkey.unwrap().error, 17);
        assert!(parse_answer(&answer_for(&q, b"", 0), 10, &context()).is_err());
    }

    #[test]
    fn truncated_answers_are_errors() {
        let q = query(9, &context(), b"t1", 1);
        let full = answer_for(&q, b"server-token", 0);
        for cut in 0..full.len() {
            let _ = parse_answer(&full[..cut], 9, &context());
        }
        assert!(parse_answer(&full[..full.len() - 3], 9, &context()).is_err());
    }
}
