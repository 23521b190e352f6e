//! TSIG (RFC 8945) on the wire, with the MAC left to a [`MacProvider`]: HMAC for TSIG keys,
//! a GSS-API MIC for GSS-TSIG (RFC 3645). Written here rather than taken from hickory because
//! GSS-TSIG needs what hickory does not do: a pluggable MAC, an uncompressed TSIG owner name
//! (Windows rejects a compressed one), and verification of replies signed the way Samba and
//! Windows sign them (without the request MAC's length prefix).

use hickory_proto::rr::Name;
use hickory_proto::rr::rdata::tsig::TsigAlgorithm;

/// TSIG resource record type.
const TYPE_TSIG: u16 = 250;
/// Class ANY.
const CLASS_ANY: u16 = 255;

/// Computes and checks MACs over TSIG signing data.
pub(crate) trait MacProvider {
    /// The algorithm name that goes into the TSIG record (`hmac-sha256.`, `gss-tsig.`).
    fn algorithm(&self) -> Name;
    /// The key name (the TSIG owner).
    fn key_name(&self) -> Name;
    fn sign(&mut self, data: &[u8]) -> Result<Vec<u8>, String>;
    fn verify(&mut self, data: &[u8], mac: &[u8]) -> Result<(), String>;
}

/// HMAC keys through hickory's MAC primitives.
pub(crate) struct HmacProvider {
    pub name: Name,
    pub algorithm: TsigAlgorithm,
    pub secret: Vec<u8>,
}

impl MacProvider for HmacProvider {
    fn algorithm(&self) -> Name {
        self.algorithm.to_name()
    }

    fn key_name(&self) -> Name {
        self.name.clone()
    }

    fn sign(&mut self, data: &[u8]) -> Result<Vec<u8>, String> {
        self.algorithm
            .mac_data(&self.secret, data)
            .map_err(|e| e.to_string())
    }

    fn verify(&mut self, data: &[u8], mac: &[u8]) -> Result<(), String> {
        self.algorithm
            .verify_mac(&self.secret, data, mac)
            .map_err(|_| "MAC mismatch".to_string())
    }
}

/// The TSIG fields of a signed message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TsigFields {
    pub key_name: Name,
    pub algorithm: Name,
    pub time_signed: u64,
    pub fudge: u16,
    pub mac: Vec<u8>,
    pub original_id: u16,
    pub error: u16,
    pub other: Vec<u8>,
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

/// Signs `message` (wire bytes without TSIG) and appends the TSIG record, owner name
/// uncompressed. `time_signed` is seconds since the epoch.
pub(crate) fn sign(
    message: &[u8],
    mac: &mut dyn MacProvider,
    time_signed: u64,
    fudge: u16,
) -> Result<Signed, String> {
    if message.len() < 12 {
        return Err("message shorter than a DNS header".into());
    }
    let original_id = u16::from_be_bytes([message[0], message[1]]);
    let key_name = mac.key_name();
    let algorithm = mac.algorithm();
    let mut data = message.to_vec();
    push_variables(&mut data, &key_name, &algorithm, time_signed, fudge, 0, &[]);
    let tag = mac.sign(&data)?;
    let fields = TsigFields {
        key_name,
        algorithm,
        time_signed,
        fudge,
        mac: tag.clone(),
        original_id,
        error: 0,
        other: Vec::new(),
    };
    let mut bytes = message.to_vec();
    bytes.extend_from_slice(&encode_record(&fields));
    let arcount = u16::from_be_bytes([bytes[10], bytes[11]])
        .checked_add(1)
        .ok_or("too many records")?;
    bytes[10..12].copy_from_slice(&arcount.to_be_bytes());
    Ok(Signed { bytes, mac: tag })
}

/// Verifies a reply's TSIG against the request's MAC: the RFC 8945 form first, then the form
/// without the length prefix. Returns the fields and the form that matched.
pub(crate) fn verify_reply(
    reply: &[u8],
    request_mac: &[u8],
    mac: &mut dyn MacProvider,
) -> Result<(TsigFields, ReplyForm), String> {
    let (body, fields) = split_tsig(reply)?.ok_or("the reply is not signed")?;
    if fields.error != 0 {
        return Err(format!("the reply carries TSIG error {}", fields.error));
    }
    let variables = {
        let mut v = Vec::new();
        push_variables(
            &mut v,
            &fields.key_name,
            &fields.algorithm,
            fields.time_signed,
            fields.fudge,
            fields.error,
            &fields.other,
        );
        v
    };
    let with_length = {
        let mut d = (request_mac.len() as u16).to_be_bytes().to_vec();
        d.extend_from_slice(request_mac);
        d.extend_from_slice(&body);
        d.extend_from_slice(&variables);
        d
    };
    if mac.verify(&with_length, &fields.mac).is_ok() {
        return Ok((fields, ReplyForm::Rfc8945));
    }
    let without_length = {
        let mut d = request_mac.to_vec();
        d.extend_from_slice(&body);
        d.extend_from_slice(&variables);
        d
    };
    match mac.verify(&without_length, &fields.mac) {
        Ok(()) => Ok((fields, ReplyForm::WithoutMacLength)),
        Err(e) => Err(format!("the reply's signature does not verify ({e})")),
    }
}

/// Splits a message into its bytes without the TSIG record (ARCOUNT decremented, ID restored
/// to the original ID) and the TSIG fields; `None` when the last additional record is not TSIG.
pub fn split_tsig(message: &[u8]) -> Result<Option<(Vec<u8>, TsigFields)>, String> {
    let mut r = Wire::new(message);
    r.skip(4)?;
    let qd = r.u16()?;
    let an = r.u16()?;
    let ns = r.u16()?;
    let ar = r.u16()?;
    if ar == 0 {
        return Ok(None);
    }
    for _ in 0..qd {
        r.skip_name()?;
        r.skip(4)?;
    }
    let before_last = u32::from(an) + u32::from(ns) + u32::from(ar) - 1;
    for _ in 0..before_last {
        r.skip_record()?;
    }
    let tsig_start = r.pos;
    let key_name = r.name()?;
    let rtype = r.u16()?;
    if rtype != TYPE_TSIG {
        return Ok(None);
    }
    r.skip(6)?; // class, TTL
    let rdlength = r.u16()? as usize;
    let rdata_end = r.pos.checked_add(rdlength).ok_or("bad length")?;
    if rdata_end > message.len() {
        return Err("TSIG record runs past the message".into());
    }
    let algorithm = r.name()?;
    let time_signed = (u64::from(r.u16()?) << 32) | u64::from(r.u32()?);
    let fudge = r.u16()?;
    let mac_len = r.u16()? as usize;
    let mac = r.bytes(mac_len)?.to_vec();
    let original_id = r.u16()?;
    let error = r.u16()?;
    let other_len = r.u16()? as usize;
    let other = r.bytes(other_len)?.to_vec();
    if r.pos != rdata_end {
        return Err("TSIG record length mismatch".into());
    }
    let mut body = message[..tsig_start].to_vec();
    body[0..2].copy_from_slice(&original_id.to_be_bytes());
    body[10..12].copy_from_slice(&(ar - 1).to_be_bytes());
    Ok(Some((
        body,
        TsigFields {
            key_name,
            algorithm,
            time_signed,
            fudge,
            mac,
            original_id,
            error,
            other,
        },
    )))
}

/// The TSIG variables of the signing data (RFC 8945 4.3.3): names canonical (lower case,
/// uncompressed), class ANY, TTL 0.
fn push_variables(
    out: &mut Vec<u8>,
    key: &Name,
    algorithm: &Name,
    time: u64,
    fudge: u16,
    error: u16,
    other: &[u8],
) {
    out.extend_from_slice(&name_wire(key, true));
    out.extend_from_slice(&CLASS_ANY.to_be_bytes());
    out.extend_from_slice(&0u32.to_be_bytes());
    out.extend_from_slice(&name_wire(algorithm, true));
    out.extend_from_slice(&time_48(time));
    out.extend_from_slice(&fudge.to_be_bytes());
    out.extend_from_slice(&error.to_be_bytes());
    out.extend_from_slice(&(other.len() as u16).to_be_bytes());
    out.extend_from_slice(other);
}

fn encode_record(f: &TsigFields) -> Vec<u8> {
    let mut rdata = name_wire(&f.algorithm, false);
    rdata.extend_from_slice(&time_48(f.time_signed));
    rdata.extend_from_slice(&f.fudge.to_be_bytes());
    rdata.extend_from_slice(&(f.mac.len() as u16).to_be_bytes());
    rdata.extend_from_slice(&f.mac);
    rdata.extend_from_slice(&f.original_id.to_be_bytes());
    rdata.extend_from_slice(&f.error.to_be_bytes());
    rdata.extend_from_slice(&(f.other.len() as u16).to_be_bytes());
    rdata.extend_from_slice(&f.other);
    let mut out = name_wire(&f.key_name, false);
    out.extend_from_slice(&TYPE_TSIG.to_be_bytes());
    out.extend_from_slice(&CLASS_ANY.to_be_bytes());
    out.extend_from_slice(&0u32.to_be_bytes());
    out.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
    out.extend_from_slice(&rdata);
    out
}

fn time_48(t: u64) -> [u8; 6] {
    let b = t.to_be_bytes();
    [b[2], b[3], b[4], b[5], b[6], b[7]]
}

/// A name in uncompressed wire form, optionally lower-cased (canonical).
pub(crate) fn name_wire(name: &Name, lowercase: bool) -> Vec<u8> {
    let mut out = Vec::new();
    for label in name.iter() {
        out.push(label.len() as u8);
        if lowercase {
            out.extend(label.iter().map(u8::to_ascii_lowercase));
        } else {
            out.extend_from_slice(label);
        }
    }
    out.push(0);
    out
}

/// A bounds-checked reader over a DNS message.
pub(crate) struct Wire<'a> {
    bytes: &'a [u8],
    pub pos: usize,
}

impl<'a> Wire<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, pos: 0 }
    }

    pub(crate) fn bytes(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self.pos.checked_add(n).ok_or("bad length")?;
        let out = self.bytes.get(self.pos..end).ok_or("message truncated")?;
        self.pos = end;
        Ok(out)
    }

    pub(crate) fn skip(&mut self, n: usize) -> Result<(), String> {
        self.bytes(n).map(|_| ())
    }

    pub(crate) fn u16(&mut self) -> Result<u16, String> {
        let b = self.bytes(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    pub(crate) fn u32(&mut self) -> Result<u32, String> {
        let b = self.bytes(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub(crate) fn skip_name(&mut self) -> Result<(), String> {
        self.name().map(|_| ())
    }

    /// Reads a possibly compressed name; the position ends after it in the original stream.
    pub(crate) fn name(&mut self) -> Result<Name, String> {
        let mut labels: Vec<Vec<u8>> = Vec::new();
        let mut pos = self.pos;
        let mut end_after: Option<usize> = None;
        for _ in 0..128 {
            let len = *self.bytes.get(pos).ok_or("message truncated in a name")? as usize;
            match len {
                0 => {
                    self.pos = end_after.unwrap_or(pos + 1);
                    let mut name = Name::from_labels(labels).map_err(|e| e.to_string())?;
                    name.set_fqdn(true);
                    return Ok(name);
                }
                l if l & 0xc0 == 0xc0 => {
                    let low = *self
                        .bytes
                        .get(pos + 1)
                        .ok_or("message truncated in a pointer")?
                        as usize;
                    end_after.get_or_insert(pos + 2);
                    pos = ((l & 0x3f) << 8) | low;
                }
                l if l < 64 => {
                    let label = self
                        .bytes
                        .get(pos + 1..pos + 1 + l)
                        .ok_or("message truncated in a label")?;
                    labels.push(label.to_vec());
                    pos += 1 + l;
                }
                _ => return Err("bad label type".into()),
            }
        }
        Err("name compression loop".into())
    }

    pub(crate) fn skip_record(&mut self) -> Result<(), String> {
        self.skip_name()?;
        self.skip(8)?;
        let len = self.u16()? as usize;
        self.skip(len)
    }
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
        use crate::update::{Change, build};
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
        let (_, fields) = split_tsig(&signed.bytes).unwrap().unwrap();
        assert_eq!(fields.key_name.to_ascii(), "Test-Key.example.");
        assert_eq!(fields.algorithm.to_ascii(), "hmac-sha256.");
    }

    /// Signs a reply the way a server does, with or without the MAC length prefix.
    fn server_reply(request: &Signed, with_length: bool, p: &mut HmacProvider) -> Vec<u8> {
        let mut reply = request.bytes[..].to_vec();
        // Strip the request's TSIG, flip QR, sign as a reply.
        let (body, fields) = split_tsig(&reply).unwrap().unwrap();
        reply = body;
        reply[2] |= 0x80;
        let mut data = Vec::new();
        if with_length {
            data.extend_from_slice(&(request.mac.len() as u16).to_be_bytes());
        }
        data.extend_from_slice(&request.mac);
        data.extend_from_slice(&reply);
        push_variables(
            &mut data,
            &fields.key_name,
            &fields.algorithm,
            fields.time_signed,
            fields.fudge,
            0,
            &[],
        );
        let tag = p.sign(&data).unwrap();
        let record = encode_record(&TsigFields { mac: tag, ..fields });
        reply.extend_from_slice(&record);
        let ar = u16::from_be_bytes([reply[10], reply[11]]) + 1;
        reply[10..12].copy_from_slice(&ar.to_be_bytes());
        reply
    }

    #[test]
    fn replies_verify_in_both_forms_and_say_which() {
        let mut p = provider();
        let request = sign(&update_bytes(), &mut p, 1_700_000_000, 300).unwrap();
        let strict = server_reply(&request, true, &mut p);
        assert_eq!(
            verify_reply(&strict, &request.mac, &mut p).unwrap().1,
            ReplyForm::Rfc8945
        );
        let samba = server_reply(&request, false, &mut p);
        assert_eq!(
            verify_reply(&samba, &request.mac, &mut p).unwrap().1,
            ReplyForm::WithoutMacLength
        );
        // A flipped bit anywhere in the reply is caught.
        let mut tampered = strict.clone();
        tampered[5] ^= 1;
        assert!(verify_reply(&tampered, &request.mac, &mut p).is_err());
        // An unsigned reply is an error, not a pass.
        let (unsigned, _) = split_tsig(&strict).unwrap().unwrap();
        assert!(
            verify_reply(&unsigned, &request.mac, &mut p)
                .unwrap_err()
                .contains("not signed")
        );
    }

    #[test]
    fn hostile_messages_do_not_panic_the_splitter() {
        let signed = sign(&update_bytes(), &mut provider(), 1_700_000_000, 300).unwrap();
        for cut in 0..signed.bytes.len() {
            let _ = split_tsig(&signed.bytes[..cut]);
        }
        // A compression pointer loop.
        let mut looped = vec![0u8; 12];
        looped[5] = 1; // QDCOUNT 1
        looped[11] = 1; // ARCOUNT 1
        looped.extend_from_slice(&[0xc0, 12]);
        assert!(split_tsig(&looped).is_err());
    }
}
