//! TKEY (RFC 2930) in GSS-API mode (RFC 3645): the query that carries a GSS token to the DNS
//! server and the answer that carries the server's token back. hickory 0.26 has no TKEY type,
//! so the record is written and read here as type 249.

// Only the `gss` feature negotiates TKEY; the parser is built (and fuzzed) in every build.
#![cfg_attr(not(feature = "gss"), allow(dead_code))]

use hickory_proto::ProtoError;
use hickory_proto::op::{Message, MessageType, OpCode, Query};
use hickory_proto::rr::rdata::NULL;
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};
use hickory_proto::serialize::binary::{
    BinDecodable, BinDecoder, BinEncodable, BinEncoder, DecodeError, NameEncoding,
};

/// TKEY's record type, which hickory knows only as a number.
pub(crate) const TYPE_TKEY: RecordType = RecordType::Unknown(249);
/// TKEY mode 3: GSS-API negotiation.
pub(crate) const MODE_GSSAPI: u16 = 3;

/// `gss-tsig.`: the algorithm name of GSS-TSIG in TKEY and TSIG records.
pub(crate) fn gss_tsig_algorithm() -> Name {
    Name::from_ascii("gss-tsig.").expect("valid name")
}

/// A TKEY query for `context` carrying `token`, the TKEY record in the additional section as
/// RFC 3645 and `nsupdate -g` put it, names uncompressed. `now` is seconds since the epoch.
pub(crate) fn query(
    id: u16,
    context: &Name,
    token: &[u8],
    now: u32,
) -> Result<Vec<u8>, ProtoError> {
    let mut rdata = Vec::new();
    {
        let mut encoder = BinEncoder::new(&mut rdata);
        let mut e = encoder.with_name_encoding(NameEncoding::Uncompressed);
        gss_tsig_algorithm().emit(&mut e)?;
        e.emit_u32(now)?; // inception
        e.emit_u32(now.saturating_add(86_400))?; // expiration
        e.emit_u16(MODE_GSSAPI)?;
        e.emit_u16(0)?; // error
        e.emit_u16(token.len() as u16)?;
        e.emit_vec(token)?;
        e.emit_u16(0)?; // other size
    }
    let mut message = Message::new(id, MessageType::Query, OpCode::Query);
    let mut question = Query::query(context.clone(), TYPE_TKEY);
    question.set_query_class(DNSClass::ANY);
    message.add_query(question);
    let mut record = Record::from_rdata(
        context.clone(),
        0,
        RData::Unknown {
            code: TYPE_TKEY,
            rdata: NULL::with(rdata),
        },
    );
    record.dns_class = DNSClass::ANY;
    message.add_additional(record);
    let mut out = Vec::new();
    let mut encoder = BinEncoder::new(&mut out);
    message.emit(&mut encoder.with_name_encoding(NameEncoding::Uncompressed))?;
    Ok(out)
}

/// The TKEY record of an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The DNS response code of the reply.
    pub rcode: u8,
    /// The TKEY record, if the answer section held one for the context.
    pub tkey: Option<Tkey>,
}

/// A TKEY record (RFC 2930) as a server answers a negotiation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tkey {
    /// The algorithm (`gss-tsig`).
    pub algorithm: Name,
    /// The mode (3: GSS-API negotiation).
    pub mode: u16,
    /// TKEY error (RFC 2930 / 8945 codes: 16 BADSIG, 17 BADKEY, 18 BADTIME, 19 BADMODE, 20 BADNAME, 21 BADALG).
    pub error: u16,
    /// The server's GSS token.
    pub key: Vec<u8>,
}

/// Why a TKEY answer could not be read.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AnswerError {
    /// Not a DNS message.
    #[error("the TKEY answer is not a DNS message: {0}")]
    Malformed(#[from] DecodeError),
    /// A reply to another query.
    #[error("the reply's id does not match the TKEY query")]
    WrongId,
}

/// Parses the reply to a TKEY query with `id` for `context`.
pub fn parse_answer(reply: &[u8], id: u16, context: &Name) -> Result<Answer, AnswerError> {
    let message = Message::from_vec(reply)?;
    if message.metadata.id != id {
        return Err(AnswerError::WrongId);
    }
    let rcode = (u16::from(message.metadata.response_code) & 0x000f) as u8;
    for record in &message.answers {
        if let RData::Unknown { code, rdata } = &record.data
            && *code == TYPE_TKEY
            && crate::model::name::same_name(&record.name, context)
        {
            return Ok(Answer {
                rcode,
                tkey: Some(parse_rdata(&rdata.anything)?),
            });
        }
    }
    Ok(Answer { rcode, tkey: None })
}

fn parse_rdata(rdata: &[u8]) -> Result<Tkey, DecodeError> {
    let mut d = BinDecoder::new(rdata);
    let algorithm = Name::read(&mut d)?;
    d.read_slice(8)?; // inception, expiration
    let mode = d.read_u16()?.unverified(/* any mode is reported as is */);
    let error = d.read_u16()?.unverified(/* any error is reported as is */);
    let key_len = d.read_u16()?.unverified(/* bounded by the slice read next */);
    let key = d.read_slice(key_len as usize)?.unverified().to_vec();
    let other_len = d.read_u16()?.unverified(/* bounded by the slice read next */);
    d.read_slice(other_len as usize)?;
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

    /// A server's answer, written byte by byte: the question echoed with QR set and the TKEY
    /// in the answer section under a compressed owner, as servers write it.
    fn answer_for(query_bytes: &[u8], server_token: &[u8], error: u16) -> Vec<u8> {
        let mut out = query_bytes[..12].to_vec();
        out[2] |= 0x80;
        out[6..8].copy_from_slice(&1u16.to_be_bytes());
        out[10..12].copy_from_slice(&0u16.to_be_bytes());
        out.extend_from_slice(b"\x0512345\x0fsig-vlmcs-audit\x00");
        out.extend_from_slice(&[0, 249, 0, 255]);
        out.extend_from_slice(&[0xc0, 12]);
        out.extend_from_slice(&[0, 249, 0, 255]);
        out.extend_from_slice(&0u32.to_be_bytes());
        let mut rdata = b"\x08gss-tsig\x00".to_vec();
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
        let bytes = query(7, &context(), b"client-token", 1_700_000_000).unwrap();
        let message = hickory_proto::op::Message::from_vec(&bytes).unwrap();
        assert_eq!(message.queries[0].query_type(), TYPE_TKEY);
        assert_eq!(message.queries[0].query_class(), DNSClass::ANY);
        assert_eq!(message.additionals.len(), 1);
        assert_eq!(message.additionals[0].name, context());
        assert_eq!(message.additionals[0].dns_class, DNSClass::ANY);
        // Every name uncompressed: the context twice in full, the algorithm inside the RDATA.
        let owner = b"\x0512345\x0fsig-vlmcs-audit\x00";
        assert_eq!(bytes.windows(owner.len()).filter(|w| w == owner).count(), 2);
        assert!(bytes.windows(10).any(|w| w == b"\x08gss-tsig\x00"));
        assert!(!bytes.contains(&0xc0));
    }

    #[test]
    fn answer_token_and_error_are_read() {
        let q = query(9, &context(), b"t1", 1).unwrap();
        let a = parse_answer(&answer_for(&q, b"server-token", 0), 9, &context()).unwrap();
        let tkey = a.tkey.unwrap();
        assert_eq!(tkey.key, b"server-token");
        assert_eq!(tkey.mode, MODE_GSSAPI);
        assert_eq!(tkey.algorithm, gss_tsig_algorithm());
        // The server may write the context name in another case.
        let upper = Name::from_ascii("12345.SIG-VLMCS-AUDIT.").unwrap();
        let a = parse_answer(&answer_for(&q, b"server-token", 0), 9, &upper).unwrap();
        assert!(a.tkey.is_some());
        let a = parse_answer(&answer_for(&q, b"", 17), 9, &context()).unwrap();
        assert_eq!(a.tkey.unwrap().error, 17);
        assert!(parse_answer(&answer_for(&q, b"", 0), 10, &context()).is_err());
    }

    #[test]
    fn truncated_answers_are_errors() {
        let q = query(9, &context(), b"t1", 1).unwrap();
        let full = answer_for(&q, b"server-token", 0);
        for cut in 0..full.len() {
            let _ = parse_answer(&full[..cut], 9, &context());
        }
        assert!(parse_answer(&full[..full.len() - 3], 9, &context()).is_err());
    }
}
