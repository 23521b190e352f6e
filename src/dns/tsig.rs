//! TSIG (RFC 8945) with the MAC left to a [`MacProvider`]: HMAC for TSIG keys, a GSS-API MIC
//! for GSS-TSIG (RFC 3645). The signing data and the record are hickory-proto's own
//! (`emit_tsig_for_mac`, `signed_bitmessage_to_buf`, `TSIG`); what hickory's `TSigner` does not
//! do is added here: a pluggable MAC, an uncompressed TSIG owner name written as given (Windows
//! rejects a compressed one), and replies signed the way Samba and Windows sign them (without
//! the request MAC's length prefix).

use hickory_proto::ProtoError;
use hickory_proto::op::Message;
use hickory_proto::rr::rdata::tsig::{
    TSIG, TsigAlgorithm, make_tsig_record, signed_bitmessage_to_buf,
};
use hickory_proto::rr::{Name, Record};
use hickory_proto::serialize::binary::{BinEncodable, BinEncoder, DecodeError, NameEncoding};

/// A MAC that could not be computed or did not match.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct MacError(pub String);

/// Computes and checks MACs over TSIG signing data.
pub(crate) trait MacProvider {
    /// The algorithm that goes into the TSIG record (`hmac-sha256.`, `gss-tsig.`).
    fn algorithm(&self) -> TsigAlgorithm;
    /// The key name (the TSIG owner).
    fn key_name(&self) -> Name;
    fn sign(&mut self, data: &[u8]) -> Result<Vec<u8>, MacError>;
    fn verify(&mut self, data: &[u8], mac: &[u8]) -> Result<(), MacError>;
}

/// Why a message could not be signed or a reply's signature not be checked.
#[derive(Debug, thiserror::Error)]
pub enum SignatureError {
    /// Not a DNS message.
    #[error("the message is not a DNS message: {0}")]
    Decode(#[source] DecodeError),
    /// The message could not be encoded.
    #[error("the message could not be encoded: {0}")]
    Encode(#[source] ProtoError),
    /// The reply carries no TSIG record.
    #[error("the reply is not signed")]
    Unsigned,
    /// The reply's TSIG record carries an error.
    #[error("the reply carries TSIG error {0}")]
    ServerError(u16),
    /// The MAC could not be computed.
    #[error("computing the MAC: {0}")]
    Mac(#[source] MacError),
    /// The MAC does not match.
    #[error("the reply's signature does not verify ({0})")]
    Mismatch(#[source] MacError),
}

/// HMAC keys through hickory's MAC primitives.
pub(crate) struct HmacProvider {
    pub name: Name,
    pub algorithm: TsigAlgorithm,
    pub secret: Vec<u8>,
}

impl MacProvider for HmacProvider {
    fn algorithm(&self) -> TsigAlgorithm {
        self.algorithm.clone()
    }

    fn key_name(&self) -> Name {
        self.name.clone()
    }

    fn sign(&mut self, data: &[u8]) -> Result<Vec<u8>, MacError> {
        self.algorithm
            .mac_data(&self.secret, data)
            .map_err(|e| MacError(e.to_string()))
    }

    fn verify(&mut self, data: &[u8], mac: &[u8]) -> Result<(), MacError> {
        self.algorithm
            .verify_mac(&self.secret, data, mac)
            .map_err(|_| MacError("MAC mismatch".into()))
    }
}

/// A signed request: the bytes to send and the MAC the reply's signature covers.
pub(crate) struct Signed {
    pub bytes: Vec<u8>,
    pub mac: Vec<u8>,
}

/// Which signing-data form a reply's MAC matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReplyForm {
    /// RFC 8945: the request MAC with its 2-byte length first.
    Rfc8945,
    /// The request MAC without its length (Samba, and per BIND's notes Windows DNS).
    WithoutMacLength,
}

/// Signs `message` (wire bytes without TSIG) and appends the TSIG record. `time_signed` is
/// seconds since the epoch.
pub(crate) fn sign(
    message: &[u8],
    mac: &mut dyn MacProvider,
    time_signed: u64,
    fudge: u16,
) -> Result<Signed, SignatureError> {
    let original_id = match message {
        [high, low, ..] if message.len() >= 12 => u16::from_be_bytes([*high, *low]),
        _ => return Err(SignatureError::Decode(DecodeError::InsufficientBytes)),
    };
    let key_name = mac.key_name();
    let unsigned = TSIG::new(
        mac.algorithm(),
        time_signed,
        fudge,
        Vec::new(),
        original_id,
        None,
        Vec::new(),
    );
    // RFC 8945 4.3.3: the message, then the TSIG variables (names canonical).
    let mut data = message.to_vec();
    data.extend_from_slice(&encode(|e| unsigned.emit_tsig_for_mac(e, &key_name))?);
    let tag = mac.sign(&data).map_err(SignatureError::Mac)?;
    let bytes = append_tsig(message, key_name, unsigned.set_mac(tag.clone()))?;
    Ok(Signed { bytes, mac: tag })
}

/// `message` with `tsig` appended as its last additional record, owner name uncompressed and as
/// given, ARCOUNT counted up.
pub(crate) fn append_tsig(
    message: &[u8],
    key_name: Name,
    tsig: TSIG,
) -> Result<Vec<u8>, SignatureError> {
    let record = make_tsig_record(key_name, tsig);
    let mut bytes = message.to_vec();
    bytes.extend_from_slice(&encode(|e| {
        record.emit(&mut e.with_name_encoding(NameEncoding::Uncompressed))
    })?);
    let arcount = u16::from_be_bytes([bytes[10], bytes[11]])
        .checked_add(1)
        .ok_or(SignatureError::Decode(DecodeError::InsufficientBytes))?;
    bytes[10..12].copy_from_slice(&arcount.to_be_bytes());
    Ok(bytes)
}

fn encode(
    emit: impl FnOnce(&mut BinEncoder<'_>) -> Result<(), ProtoError>,
) -> Result<Vec<u8>, SignatureError> {
    let mut out = Vec::new();
    emit(&mut BinEncoder::new(&mut out)).map_err(SignatureError::Encode)?;
    Ok(out)
}

/// The TSIG record of a message, if its last additional record is one.
pub fn read_tsig(message: &[u8]) -> Result<Option<Record<TSIG>>, DecodeError> {
    Ok(Message::from_vec(message)?.signature().cloned())
}

/// Verifies a reply's TSIG against the request's MAC: the RFC 8945 form first, then the form
/// without the length prefix. Returns the form that matched.
pub(crate) fn verify_reply(
    reply: &[u8],
    request_mac: &[u8],
    mac: &mut dyn MacProvider,
) -> Result<ReplyForm, SignatureError> {
    let record = read_tsig(reply)
        .map_err(SignatureError::Decode)?
        .ok_or(SignatureError::Unsigned)?;
    if let Some(error) = record.data.error {
        return Err(SignatureError::ServerError(u16::from(error)));
    }
    let (data, _) =
        signed_bitmessage_to_buf(reply, Some(request_mac), true).map_err(SignatureError::Encode)?;
    if mac.verify(&data, &record.data.mac).is_ok() {
        return Ok(ReplyForm::Rfc8945);
    }
    // The same data without the 2-byte length of the request MAC.
    mac.verify(&data[2..], &record.data.mac)
        .map(|()| ReplyForm::WithoutMacLength)
        .map_err(SignatureError::Mismatch)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::rr::TSigner;

    fn provider() -> HmacProvider {
        HmacProvider {
            name: Name::from_ascii("Test-Key.example.").unwrap(),
            algorithm: TsigAlgorithm::HmacSha256,
            secret: b"0123456789abcdef0123456789abcdef".to_vec(),
        }
    }

    fn update_bytes() -> Vec<u8> {
        use crate::dns::update::{Change, build};
        let zone = Name::from_ascii("corp.example.com.").unwrap();
        let owner = Name::from_ascii("_vlmcs._tcp.corp.example.com.").unwrap();
        let record = crate::model::SrvRecord {
            priority: 0,
            weight: 0,
            port: 1688,
            target: "old.corp.example.com.".into(),
            ttl: 300,
        };
        build(
            &zone,
            &owner,
            &Change::DeleteExact {
                rrset: vec![record.clone()],
                victim: record,
            },
        )
        .unwrap()
        .to_vec()
        .unwrap()
    }

    #[test]
    fn our_signature_verifies_with_hickorys_independent_implementation() {
        let mut p = provider();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let signed = sign(&update_bytes(), &mut p, now, 300).unwrap();
        let signer = TSigner::new(
            p.secret.clone(),
            TsigAlgorithm::HmacSha256,
            p.name.clone(),
            300,
        )
        .unwrap();
        let (mac, _, _) = signer
            .verify_message_byte(&signed.bytes, None, true)
            .unwrap();
        assert_eq!(mac, signed.mac);
        // The owner name is written uncompressed and as given.
        let record = read_tsig(&signed.bytes).unwrap().unwrap();
        assert_eq!(record.name.to_ascii(), "Test-Key.example.");
        assert_eq!(record.data.algorithm, TsigAlgorithm::HmacSha256);
        assert!(
            signed
                .bytes
                .windows(18)
                .any(|w| w == b"\x08Test-Key\x07example\x00")
        );
    }

    /// Signs a reply the way a server does, with or without the MAC length prefix.
    fn server_reply(request: &Signed, with_length: bool, p: &mut HmacProvider) -> Vec<u8> {
        use hickory_proto::op::MessageType;
        let mut message = Message::from_vec(&request.bytes).unwrap();
        let tsig = message.take_signature().unwrap();
        message.metadata.message_type = MessageType::Response;
        let body = message.to_vec().unwrap();
        let mut data = Vec::new();
        if with_length {
            data.extend_from_slice(&(request.mac.len() as u16).to_be_bytes());
        }
        data.extend_from_slice(&request.mac);
        data.extend_from_slice(&body);
        let unsigned = TSIG::new(
            tsig.data.algorithm.clone(),
            tsig.data.time,
            tsig.data.fudge,
            Vec::new(),
            message.metadata.id,
            None,
            Vec::new(),
        );
        data.extend_from_slice(&encode(|e| unsigned.emit_tsig_for_mac(e, &tsig.name)).unwrap());
        let tag = p.sign(&data).unwrap();
        append_tsig(&body, tsig.name.clone(), unsigned.set_mac(tag)).unwrap()
    }

    #[test]
    fn replies_verify_in_both_forms_and_say_which() {
        let mut p = provider();
        let request = sign(&update_bytes(), &mut p, 1_700_000_000, 300).unwrap();
        let strict = server_reply(&request, true, &mut p);
        assert_eq!(
            verify_reply(&strict, &request.mac, &mut p).unwrap(),
            ReplyForm::Rfc8945
        );
        let samba = server_reply(&request, false, &mut p);
        assert_eq!(
            verify_reply(&samba, &request.mac, &mut p).unwrap(),
            ReplyForm::WithoutMacLength
        );
        // A flipped bit in the signed data is caught (here: `old` becomes `Old`, still a
        // well-formed message).
        let mut tampered = strict.clone();
        let at = tampered.windows(4).position(|w| w == b"\x03old").unwrap();
        tampered[at + 1] ^= 0x20;
        assert!(matches!(
            verify_reply(&tampered, &request.mac, &mut p),
            Err(SignatureError::Mismatch(_))
        ));
        // An unsigned reply is an error, not a pass.
        let mut unsigned = Message::from_vec(&strict).unwrap();
        unsigned.take_signature();
        let unsigned = unsigned.to_vec().unwrap();
        assert!(matches!(
            verify_reply(&unsigned, &request.mac, &mut p),
            Err(SignatureError::Unsigned)
        ));
        // A TSIG error from the server is reported as such.
        let request_tsig = read_tsig(&request.bytes).unwrap().unwrap();
        let body = {
            let mut m = Message::from_vec(&request.bytes).unwrap();
            m.take_signature();
            m.to_vec().unwrap()
        };
        let with_error = TSIG::new(
            TsigAlgorithm::HmacSha256,
            1_700_000_000,
            300,
            Vec::new(),
            0,
            Some(hickory_proto::rr::rdata::tsig::TsigError::BadSig),
            Vec::new(),
        );
        let refused = append_tsig(&body, request_tsig.name.clone(), with_error).unwrap();
        assert!(matches!(
            verify_reply(&refused, &request.mac, &mut p),
            Err(SignatureError::ServerError(16))
        ));
    }

    #[test]
    fn hostile_messages_do_not_panic_the_reader_or_the_verifier() {
        let mut p = provider();
        let signed = sign(&update_bytes(), &mut p, 1_700_000_000, 300).unwrap();
        for cut in 0..signed.bytes.len() {
            let _ = read_tsig(&signed.bytes[..cut]);
            assert!(verify_reply(&signed.bytes[..cut], &signed.mac, &mut p).is_err());
        }
        // A compression pointer loop.
        let mut looped = vec![0u8; 12];
        looped[5] = 1; // QDCOUNT 1
        looped[11] = 1; // ARCOUNT 1
        looped.extend_from_slice(&[0xc0, 12]);
        assert!(read_tsig(&looped).is_err());
        // Too short to sign.
        assert!(sign(&[0; 11], &mut p, 0, 300).is_err());
    }
}
