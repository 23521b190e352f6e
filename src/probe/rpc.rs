//! DCE/RPC connection-oriented PDUs (C706 chapter 12, MS-RPCE), just enough to ask an
//! `ncacn_ip_tcp` endpoint whether it serves the KMS interface.
//!
//! The check is a `bind` and nothing else: no request PDU is ever sent, so a KMS host never
//! counts the auditor as a client. Everything read here comes from the network and is parsed
//! defensively: every length is checked against the bytes actually present.

use std::fmt;

/// An RPC interface or transfer syntax identifier: a UUID plus a `major.minor` version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyntaxId {
    /// The UUID's 16 bytes in text order.
    pub uuid: [u8; 16],
    /// The interface's major version.
    pub version_major: u16,
    /// The interface's minor version.
    pub version_minor: u16,
}

impl SyntaxId {
    /// Builds a syntax id from a UUID in its usual text form (`8-4-4-4-12` hex digits).
    pub(crate) const fn new(uuid: &str, version_major: u16, version_minor: u16) -> Self {
        Self {
            uuid: crate::support::uuid::parse(uuid),
            version_major,
            version_minor,
        }
    }

    /// The all-zero syntax id that rejected contexts carry.
    pub const NIL: Self = Self {
        uuid: [0; 16],
        version_major: 0,
        version_minor: 0,
    };

    /// The same interface with another version.
    pub const fn with_version(self, version_major: u16, version_minor: u16) -> Self {
        Self {
            version_major,
            version_minor,
            ..self
        }
    }

    /// True when both name the same UUID, whatever the versions.
    pub fn same_uuid(&self, other: &Self) -> bool {
        self.uuid == other.uuid
    }

    /// Appends the syntax id as NDR writes it (the UUID's first three fields little-endian).
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&uuid_to_ndr(&self.uuid));
        out.extend_from_slice(&self.version_major.to_le_bytes());
        out.extend_from_slice(&self.version_minor.to_le_bytes());
    }
}

impl SyntaxId {
    /// Reads a syntax id of 20 bytes (UUID, major, minor) in the PDU's byte order.
    pub fn decode(raw: &[u8], little_endian: bool) -> Result<Self, ParseError> {
        let field = |at: usize| -> Result<[u8; 2], ParseError> {
            raw.get(at..at + 2)
                .and_then(|b| b.try_into().ok())
                .ok_or(ParseError::Truncated {
                    needed: 20,
                    got: raw.len(),
                })
        };
        let (major, minor) = (field(16)?, field(18)?);
        let uuid = raw.get(..16).ok_or(ParseError::Truncated {
            needed: 20,
            got: raw.len(),
        })?;
        Ok(if little_endian {
            Self {
                uuid: uuid_from_ndr(uuid),
                version_major: u16::from_le_bytes(major),
                version_minor: u16::from_le_bytes(minor),
            }
        } else {
            Self {
                uuid: uuid.try_into().map_err(|_| ParseError::Malformed("uuid"))?,
                version_major: u16::from_be_bytes(major),
                version_minor: u16::from_be_bytes(minor),
            }
        })
    }
}

impl fmt::Display for SyntaxId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let u = &self.uuid;
        write!(
            f,
            "{:02x}{:02x}{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}{:02x}{:02x}{:02x}{:02x} v{}.{}",
            u[0],
            u[1],
            u[2],
            u[3],
            u[4],
            u[5],
            u[6],
            u[7],
            u[8],
            u[9],
            u[10],
            u[11],
            u[12],
            u[13],
            u[14],
            u[15],
            self.version_major,
            self.version_minor
        )
    }
}

/// The KMS activation interface (MS-KMS / ncacn_ip_tcp port 1688).
pub const KMS_INTERFACE: SyntaxId = SyntaxId::new("51c82175-844e-4750-b0d8-ec255555bc06", 1, 0);
/// NDR 2.0, the classic transfer syntax ("NDR32").
pub const NDR32: SyntaxId = SyntaxId::new("8a885d04-1ceb-11c9-9fe8-08002b104860", 2, 0);
/// NDR64, preferred by Windows 8 / Server 2012 and later.
pub const NDR64: SyntaxId = SyntaxId::new("71710533-beba-4937-8319-b5dbef9ccc36", 1, 0);
/// An interface nobody serves ("kmsaudit-probe" in hex-ish): a server that accepts a bind for it
/// accepts anything, which is how KMS emulators give themselves away.
pub const MADE_UP_INTERFACE: SyntaxId = SyntaxId::new("6b6d7361-7564-6974-8000-70726f626521", 1, 0);

/// Largest PDU we accept in reply to a bind. Our bind advertises 5840-byte fragments; a
/// `bind_ack` is a few dozen bytes. Anything larger is not an honest answer.
pub(crate) const MAX_REPLY_FRAGMENT: usize = 8192;
/// Size of the common header that starts every connection-oriented PDU.
pub const HEADER_LEN: usize = 16;

/// The protocol version every PDU carries (C706 12.6.3.1 `rpc_vers`, `rpc_vers_minor`).
pub const RPC_VERSION: u8 = 5;
/// See [`RPC_VERSION`].
pub const RPC_VERSION_MINOR: u8 = 0;
/// Header flags (C706 12.6.3.1 `pfc_flags`).
pub const PFC_FIRST_FRAG: u8 = 0x01;
/// The PDU is the last fragment of its call.
pub const PFC_LAST_FRAG: u8 = 0x02;
/// MS-RPCE 2.2.2.3: the client supports header signing; a server echoes it when it does too.
pub const PFC_SUPPORT_HEADER_SIGN: u8 = 0x04;
/// Concurrent multiplexing on one connection (C706 `PFC_CONC_MPX`).
pub const PFC_CONC_MPX: u8 = 0x10;
/// "Maybe" call semantics (C706 `PFC_MAYBE`); meaningless in a bind.
pub(crate) const PFC_MAYBE: u8 = 0x40;
/// The fragment size Windows clients offer, and the largest a conforming server grants.
pub const STANDARD_FRAG: u16 = 5840;

/// The bind-time feature negotiation "transfer syntax" (MS-RPCE 3.3.1.5.3): a fixed first half
/// and a feature bitmask in the second half of the UUID, version 1.0.
pub const fn feature_negotiation(bitmask: u64) -> SyntaxId {
    let mut syntax = SyntaxId::new("6cb71c2c-9812-4540-0000-000000000000", 1, 0);
    let bytes = bitmask.to_le_bytes();
    let mut i = 0;
    while i < 8 {
        syntax.uuid[8 + i] = bytes[i];
        i += 1;
    }
    syntax
}

/// Packet types (C706 12.6.4.1) that a reply to `bind` can be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PacketType {
    /// A call's request (0).
    Request,
    /// A call's response (2).
    Response,
    /// A fault (3).
    Fault,
    /// A bind (11).
    Bind,
    /// A bind accepted, context by context (12).
    BindAck,
    /// A bind refused (13).
    BindNak,
    /// Any other type, by number.
    Other(u8),
}

impl PacketType {
    fn from_u8(v: u8) -> Self {
        match v {
            0 => Self::Request,
            2 => Self::Response,
            3 => Self::Fault,
            11 => Self::Bind,
            12 => Self::BindAck,
            13 => Self::BindNak,
            other => Self::Other(other),
        }
    }

    /// The type's number on the wire.
    pub fn to_u8(self) -> u8 {
        match self {
            Self::Request => 0,
            Self::Response => 2,
            Self::Fault => 3,
            Self::Bind => 11,
            Self::BindAck => 12,
            Self::BindNak => 13,
            Self::Other(v) => v,
        }
    }
}

/// Result of one presentation context in a `bind_ack` (C706 12.6.3.1 `p_cont_def_result_t`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContextResult {
    /// 0 acceptance, 1 user rejection, 2 provider rejection, 3 negotiate ack.
    pub result: u16,
    /// For a provider rejection: 1 abstract syntax not supported, 2 transfer syntax not supported.
    pub reason: u16,
    /// The transfer syntax accepted (all zero when rejected).
    pub transfer_syntax: SyntaxId,
}

impl ContextResult {
    pub(crate) const ACCEPTANCE: u16 = 0;

    /// A provider rejection for `reason`, with the all-zero transfer syntax servers send.
    pub const fn rejection(reason: u16) -> Self {
        Self {
            result: 2,
            reason,
            transfer_syntax: SyntaxId::NIL,
        }
    }

    /// An acceptance of `transfer_syntax`.
    pub const fn acceptance(transfer_syntax: SyntaxId) -> Self {
        Self {
            result: Self::ACCEPTANCE,
            reason: 0,
            transfer_syntax,
        }
    }

    /// The result in words, for findings.
    pub fn describe(&self) -> String {
        match (self.result, self.reason) {
            (0, _) => "accepted".into(),
            (1, _) => "user rejection".into(),
            (2, 1) => "provider rejection: abstract syntax (interface) not supported".into(),
            (2, 2) => "provider rejection: transfer syntax not supported".into(),
            (2, r) => format!("provider rejection (reason {r})"),
            (3, _) => "negotiate ack".into(),
            (r, reason) => format!("unknown result {r} (reason {reason})"),
        }
    }
}

/// What a server answered to our `bind`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BindReply {
    /// A `bind_ack`: the per-context results, in the order of the contexts we offered.
    Ack(BindAck),
    /// A `bind_nak` with its provider reject reason (C706 12.6.4.2).
    Nak {
        /// The provider reject reason (4: protocol version not supported, ...).
        reason: u16,
    },
    /// A `fault` PDU with its status code.
    Fault {
        /// The fault's status code (`nca_s_*`, or a Windows status).
        status: u32,
    },
    /// Valid DCE/RPC, but a packet type that makes no sense as an answer to `bind`.
    Unexpected {
        /// The packet type's number.
        packet_type: u8,
    },
}

impl BindReply {
    /// The context id (index in our offer) that was accepted, if any.
    #[cfg(test)]
    fn accepted_context(&self) -> Option<usize> {
        match self {
            Self::Ack(ack) => ack
                .results
                .iter()
                .position(|r| r.result == ContextResult::ACCEPTANCE),
            _ => None,
        }
    }
}

/// Why a reply could not be understood as DCE/RPC.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// Another protocol, or another version of this one.
    #[error("not DCE/RPC (version {major}.{minor}, expected 5.0)")]
    NotRpc {
        /// The major version read.
        major: u8,
        /// The minor version read.
        minor: u8,
    },
    /// Fewer bytes than a length in the PDU promised.
    #[error("reply truncated: needed {needed} bytes, got {got}")]
    Truncated {
        /// Bytes needed.
        needed: usize,
        /// Bytes present.
        got: usize,
    },
    /// A fragment larger than an honest reply to a bind.
    #[error("reply fragment of {0} bytes is larger than the {MAX_REPLY_FRAGMENT}-byte limit")]
    Oversized(usize),
    /// A fragment length smaller than the header it is part of.
    #[error("fragment length {0} is smaller than the 16-byte header")]
    BadFragmentLength(usize),
    /// An answer to another call.
    #[error("reply call id {got} does not match request call id {expected}")]
    CallIdMismatch {
        /// The call id of the bind sent.
        expected: u32,
        /// The call id of the reply.
        got: u32,
    },
    /// A middle or last fragment where a PDU starts.
    #[error("reply is not the first fragment of a PDU")]
    NotFirstFragment,
    /// An integer representation other than little- or big-endian.
    #[error("unsupported data representation {0:#04x}")]
    UnsupportedDataRepresentation(u8),
    /// A field that holds what it cannot (named).
    #[error("malformed {0}")]
    Malformed(&'static str),
}

/// A `bind` PDU: what a client offers, and what a server reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bind {
    /// Pairs the reply with the request.
    pub call_id: u32,
    /// The header's `pfc_flags`.
    pub flags: u8,
    /// The header's `auth_length` (we never send an auth verifier; servers may echo it).
    pub auth_length: u16,
    /// The largest fragment the client sends.
    pub max_xmit_frag: u16,
    /// The largest fragment the client takes.
    pub max_recv_frag: u16,
    /// 0 asks for a new association group.
    pub assoc_group: u32,
    /// The presentation contexts offered.
    pub contexts: Vec<OfferedContext>,
}

impl Bind {
    /// The bind MS-RPCE clients send: `interface` with each of `transfer_syntaxes` as its own
    /// presentation context (context id = index), 5840-byte fragments, a new association.
    pub fn new(call_id: u32, interface: SyntaxId, transfer_syntaxes: &[SyntaxId]) -> Self {
        Self {
            call_id,
            flags: PFC_FIRST_FRAG | PFC_LAST_FRAG,
            auth_length: 0,
            max_xmit_frag: STANDARD_FRAG,
            max_recv_frag: STANDARD_FRAG,
            assoc_group: 0,
            contexts: transfer_syntaxes
                .iter()
                .enumerate()
                .map(|(context_id, transfer)| OfferedContext {
                    context_id: context_id as u16,
                    abstract_syntax: interface,
                    transfer_syntaxes: vec![*transfer],
                })
                .collect(),
        }
    }

    /// The PDU's bytes (little-endian, as Windows clients send it).
    pub fn encode(&self) -> Vec<u8> {
        let mut body = Vec::with_capacity(12 + self.contexts.len() * 44);
        body.extend_from_slice(&self.max_xmit_frag.to_le_bytes());
        body.extend_from_slice(&self.max_recv_frag.to_le_bytes());
        body.extend_from_slice(&self.assoc_group.to_le_bytes());
        body.push(self.contexts.len() as u8); // n_context_elem
        body.extend_from_slice(&[0, 0, 0]); // reserved
        for context in &self.contexts {
            body.extend_from_slice(&context.context_id.to_le_bytes());
            body.push(context.transfer_syntaxes.len() as u8);
            body.push(0); // reserved
            context.abstract_syntax.encode(&mut body);
            for transfer in &context.transfer_syntaxes {
                transfer.encode(&mut body);
            }
        }
        let mut pdu = encode_header(
            PacketType::Bind,
            self.flags,
            self.auth_length,
            self.call_id,
            body.len(),
        );
        pdu.extend_from_slice(&body);
        pdu
    }
}

/// Encodes the standard bind (see [`Bind::new`]).
#[cfg(test)]
fn encode_bind(call_id: u32, interface: SyntaxId, transfer_syntaxes: &[SyntaxId]) -> Vec<u8> {
    Bind::new(call_id, interface, transfer_syntaxes).encode()
}

/// A `bind_ack` PDU (C706 12.6.4.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindAck {
    /// The call id of the bind it answers.
    pub call_id: u32,
    /// The header's `pfc_flags`.
    pub flags: u8,
    /// The header's `auth_length`.
    pub auth_length: u16,
    /// The largest fragment the server sends.
    pub max_xmit_frag: u16,
    /// The largest fragment the server takes.
    pub max_recv_frag: u16,
    /// The association group the server assigned.
    pub assoc_group: u32,
    /// The server's port as text (NUL and control characters removed when parsed).
    pub secondary_address: String,
    /// One result per context offered, in the offer's order.
    pub results: Vec<ContextResult>,
}

/// The 16-byte common header of a PDU whose body is `body_len` bytes (little-endian, as every
/// PDU this crate writes).
pub fn encode_header(
    packet_type: PacketType,
    flags: u8,
    auth_length: u16,
    call_id: u32,
    body_len: usize,
) -> Vec<u8> {
    let frag_length = (HEADER_LEN + body_len) as u16;
    let mut out = Vec::with_capacity(HEADER_LEN + body_len);
    out.extend_from_slice(&[
        RPC_VERSION,
        RPC_VERSION_MINOR,
        packet_type.to_u8(),
        flags,
        0x10, // little-endian integers, ASCII, IEEE floats
        0,
        0,
        0,
    ]);
    out.extend_from_slice(&frag_length.to_le_bytes());
    out.extend_from_slice(&auth_length.to_le_bytes());
    out.extend_from_slice(&call_id.to_le_bytes());
    out
}

/// One presentation context of a `bind`: what the client offers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfferedContext {
    /// Its number, answered by the result in the same place.
    pub context_id: u16,
    /// The interface asked for.
    pub abstract_syntax: SyntaxId,
    /// The transfer syntaxes offered for it.
    pub transfer_syntaxes: Vec<SyntaxId>,
}

/// The parts of the common header a reader needs before the body arrives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// What kind of PDU.
    pub packet_type: PacketType,
    /// The header's `pfc_flags`.
    pub flags: u8,
    /// Whether integers are little-endian.
    pub little_endian: bool,
    /// The whole fragment's length, header included.
    pub frag_length: usize,
    /// Pairs the reply with the request.
    pub call_id: u32,
}

/// Parses and validates the 16-byte common header.
pub fn parse_header(bytes: &[u8]) -> Result<Header, ParseError> {
    let head = bytes.get(..HEADER_LEN).ok_or(ParseError::Truncated {
        needed: HEADER_LEN,
        got: bytes.len(),
    })?;
    if head[0] != RPC_VERSION || head[1] != RPC_VERSION_MINOR {
        return Err(ParseError::NotRpc {
            major: head[0],
            minor: head[1],
        });
    }
    let little_endian = match head[4] >> 4 {
        1 => true,
        0 => false,
        _ => return Err(ParseError::UnsupportedDataRepresentation(head[4])),
    };
    let reader = PduReader::new(head, little_endian);
    let frag_length = reader.u16_at(8)? as usize;
    if frag_length < HEADER_LEN {
        return Err(ParseError::BadFragmentLength(frag_length));
    }
    if frag_length > MAX_REPLY_FRAGMENT {
        return Err(ParseError::Oversized(frag_length));
    }
    Ok(Header {
        packet_type: PacketType::from_u8(head[2]),
        flags: head[3],
        little_endian,
        frag_length,
        call_id: reader.u32_at(12)?,
    })
}

/// Parses a complete reply PDU (header and body) to a `bind` sent with `call_id`.
pub fn parse_bind_reply(pdu: &[u8], call_id: u32) -> Result<BindReply, ParseError> {
    let header = parse_header(pdu)?;
    if pdu.len() < header.frag_length {
        return Err(ParseError::Truncated {
            needed: header.frag_length,
            got: pdu.len(),
        });
    }
    if header.flags & PFC_FIRST_FRAG == 0 {
        return Err(ParseError::NotFirstFragment);
    }
    if header.call_id != call_id {
        return Err(ParseError::CallIdMismatch {
            expected: call_id,
            got: header.call_id,
        });
    }
    let pdu = PduReader::new(&pdu[..header.frag_length], header.little_endian);
    match header.packet_type {
        PacketType::BindAck => parse_bind_ack(&pdu, header),
        PacketType::BindNak => Ok(BindReply::Nak {
            reason: pdu.u16_at(HEADER_LEN)?,
        }),
        // fault: alloc_hint(4) p_cont_id(2) cancel_count(1) reserved(1) status(4)
        PacketType::Fault => Ok(BindReply::Fault {
            status: pdu.u32_at(HEADER_LEN + 8)?,
        }),
        other => Ok(BindReply::Unexpected {
            packet_type: other.to_u8(),
        }),
    }
}

fn parse_bind_ack(pdu: &PduReader<'_>, header: Header) -> Result<BindReply, ParseError> {
    let max_xmit_frag = pdu.u16_at(16)?;
    let max_recv_frag = pdu.u16_at(18)?;
    let assoc_group = pdu.u32_at(20)?;
    let sec_addr_len = pdu.u16_at(24)? as usize;
    let sec_addr = pdu.slice(26, sec_addr_len)?;
    let secondary_address = String::from_utf8_lossy(sec_addr)
        .trim_end_matches('\0')
        .chars()
        .filter(|c| !c.is_control())
        .collect();
    let mut offset = 26 + sec_addr_len;
    offset += (4 - offset % 4) % 4;
    let n_results = pdu.u8_at(offset)? as usize;
    offset += 4;
    let mut results = Vec::with_capacity(n_results);
    for _ in 0..n_results {
        let result = pdu.u16_at(offset)?;
        let reason = pdu.u16_at(offset + 2)?;
        let transfer_syntax = pdu.syntax_at(offset + 4)?;
        results.push(ContextResult {
            result,
            reason,
            transfer_syntax,
        });
        offset += 24;
    }
    Ok(BindReply::Ack(BindAck {
        call_id: header.call_id,
        flags: header.flags,
        auth_length: pdu.u16_at(10)?,
        max_xmit_frag,
        max_recv_frag,
        assoc_group,
        secondary_address,
        results,
    }))
}

/// Bounds-checked reads of a PDU in its byte order: every read past the end is a
/// `Truncated` error, never a panic. The reply parser's, and the test bed's for the binds it
/// reads.
pub struct PduReader<'a> {
    bytes: &'a [u8],
    little_endian: bool,
}

impl<'a> PduReader<'a> {
    /// A reader of `bytes`, whose integers are little-endian or not (the header's drep).
    pub fn new(bytes: &'a [u8], little_endian: bool) -> Self {
        Self {
            bytes,
            little_endian,
        }
    }

    /// `len` bytes at `offset`.
    pub fn slice(&self, offset: usize, len: usize) -> Result<&'a [u8], ParseError> {
        let end = offset
            .checked_add(len)
            .ok_or(ParseError::Malformed("length"))?;
        self.bytes.get(offset..end).ok_or(ParseError::Truncated {
            needed: end,
            got: self.bytes.len(),
        })
    }

    /// The byte at `offset`.
    pub fn u8_at(&self, offset: usize) -> Result<u8, ParseError> {
        Ok(self.slice(offset, 1)?[0])
    }

    /// The 16-bit integer at `offset`.
    pub fn u16_at(&self, offset: usize) -> Result<u16, ParseError> {
        let b: [u8; 2] = self.slice(offset, 2)?.try_into().expect("2 bytes");
        Ok(if self.little_endian {
            u16::from_le_bytes(b)
        } else {
            u16::from_be_bytes(b)
        })
    }

    /// The 32-bit integer at `offset`.
    pub fn u32_at(&self, offset: usize) -> Result<u32, ParseError> {
        let b: [u8; 4] = self.slice(offset, 4)?.try_into().expect("4 bytes");
        Ok(if self.little_endian {
            u32::from_le_bytes(b)
        } else {
            u32::from_be_bytes(b)
        })
    }

    /// The 20-byte syntax id at `offset`.
    pub fn syntax_at(&self, offset: usize) -> Result<SyntaxId, ParseError> {
        SyntaxId::decode(self.slice(offset, 20)?, self.little_endian)
    }
}

/// NDR puts the first three UUID fields in little-endian order; the last 8 bytes as they are.
fn uuid_to_ndr(u: &[u8; 16]) -> [u8; 16] {
    let mut out = *u;
    out[0..4].reverse();
    out[4..6].reverse();
    out[6..8].reverse();
    out
}

fn uuid_from_ndr(b: &[u8]) -> [u8; 16] {
    let mut out = [0u8; 16];
    out.copy_from_slice(&b[..16]);
    uuid_to_ndr(&out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bind_matches_the_bytes_windows_clients_send() {
        let pdu = encode_bind(2, KMS_INTERFACE, &[NDR32]);
        // Header: v5.0, bind, first+last, LE drep, frag_length 72, no auth, call id 2.
        assert_eq!(
            &pdu[..16],
            &[5, 0, 11, 3, 0x10, 0, 0, 0, 72, 0, 0, 0, 2, 0, 0, 0]
        );
        assert_eq!(pdu.len(), 72);
        // max frags 5840 (0x16d0), assoc group 0, one context.
        assert_eq!(
            &pdu[16..28],
            &[0xd0, 0x16, 0xd0, 0x16, 0, 0, 0, 0, 1, 0, 0, 0]
        );
        // KMS interface UUID in NDR byte order, version 1.0.
        assert_eq!(
            &pdu[32..52],
            &[
                0x75, 0x21, 0xc8, 0x51, 0x4e, 0x84, 0x50, 0x47, 0xb0, 0xd8, 0xec, 0x25, 0x55, 0x55,
                0xbc, 0x06, 1, 0, 0, 0
            ]
        );
        // NDR transfer syntax 8a885d04-1ceb-11c9-9fe8-08002b104860 v2.
        assert_eq!(
            &pdu[52..72],
            &[
                0x04, 0x5d, 0x88, 0x8a, 0xeb, 0x1c, 0xc9, 0x11, 0x9f, 0xe8, 0x08, 0x00, 0x2b, 0x10,
                0x48, 0x60, 2, 0, 0, 0
            ]
        );
    }

    #[test]
    fn bind_with_two_contexts_numbers_them() {
        let pdu = encode_bind(7, KMS_INTERFACE, &[NDR32, NDR64]);
        assert_eq!(pdu.len(), 28 + 2 * 44);
        assert_eq!(pdu[24], 2);
        assert_eq!(&pdu[28..30], &[0, 0]);
        assert_eq!(&pdu[72..74], &[1, 0]);
    }

    #[test]
    fn big_endian_ack_is_understood() {
        // Same ack as a big-endian server would write it.
        let mut pdu = vec![5, 0, 12, 3, 0x00, 0, 0, 0];
        let body_len = 8 + 2 + 5 + 1 + 4 + 24; // frags+group, len, "1688\0", pad, list, result
        pdu.extend_from_slice(&((16 + body_len) as u16).to_be_bytes());
        pdu.extend_from_slice(&[0, 0]);
        pdu.extend_from_slice(&3u32.to_be_bytes());
        pdu.extend_from_slice(&[0x16, 0xd0, 0x16, 0xd0, 0, 0, 0, 1]);
        pdu.extend_from_slice(&5u16.to_be_bytes());
        pdu.extend_from_slice(b"1688\0");
        pdu.push(0); // pad 31 -> 32
        pdu.extend_from_slice(&[1, 0, 0, 0]);
        pdu.extend_from_slice(&[0, 0, 0, 0]);
        pdu.extend_from_slice(&NDR32.uuid);
        pdu.extend_from_slice(&[0, 2, 0, 0]);
        let reply = parse_bind_reply(&pdu, 3).unwrap();
        assert_eq!(reply.accepted_context(), Some(0));
        let BindReply::Ack(ack) = reply else {
            panic!("expected an ack")
        };
        assert_eq!(ack.results[0].transfer_syntax, NDR32);
        assert_eq!((ack.assoc_group, ack.flags), (1, 3));
    }

    #[test]
    fn every_byte_prefix_of_random_noise_parses_without_panicking() {
        // A cheap deterministic fuzz: xorshift noise with a valid header glued on.
        let mut state = 0x2545_f491_4f6c_dd1du64;
        for round in 0..2000 {
            let mut bytes = vec![5u8, 0, 12, 3, 0x10, 0, 0, 0];
            let len = (round % 300) as u16;
            bytes.extend_from_slice(&len.to_le_bytes());
            bytes.extend_from_slice(&[0, 0, 1, 0, 0, 0]);
            for _ in 0..(round % 320) {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                bytes.push(state as u8);
            }
            let _ = parse_bind_reply(&bytes, 1);
        }
    }

    #[test]
    fn syntax_ids_display_in_text_form() {
        assert_eq!(
            KMS_INTERFACE.to_string(),
            "51c82175-844e-4750-b0d8-ec255555bc06 v1.0"
        );
        // MS-RPCE 3.3.1.5.3: what Windows clients offer (bitmask 0x03).
        assert_eq!(
            feature_negotiation(3).to_string(),
            "6cb71c2c-9812-4540-0300-000000000000 v1.0"
        );
    }
}
