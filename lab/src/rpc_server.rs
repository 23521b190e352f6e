//! The server side of a DCE/RPC bind (C706 chapter 12), for the stand-in KMS hosts: read a
//! `bind`, write a `bind_ack` or a `bind_nak`. The auditor only ever writes binds and reads
//! replies ([`vlmcs_audit::probe::rpc`]); this is the other half, which only the test bed needs.

use vlmcs_audit::probe::rpc::{
    Bind, BindAck, ContextResult, HEADER_LEN, OfferedContext, PFC_FIRST_FRAG, PFC_LAST_FRAG,
    PacketType, ParseError, PduReader, RPC_VERSION, RPC_VERSION_MINOR, STANDARD_FRAG,
    encode_header, parse_header,
};

/// A plain acknowledgement: first + last fragment, 5840-byte fragments.
pub fn plain_ack(call_id: u32, secondary_address: &str, results: &[ContextResult]) -> BindAck {
    BindAck {
        call_id,
        flags: PFC_FIRST_FRAG | PFC_LAST_FRAG,
        auth_length: 0,
        max_xmit_frag: STANDARD_FRAG,
        max_recv_frag: STANDARD_FRAG,
        assoc_group: 0x0001_2345,
        secondary_address: secondary_address.to_string(),
        results: results.to_vec(),
    }
}

/// The `bind_ack` PDU of `ack` (C706 12.6.4.4).
pub fn encode_ack(ack: &BindAck) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&ack.max_xmit_frag.to_le_bytes());
    body.extend_from_slice(&ack.max_recv_frag.to_le_bytes());
    body.extend_from_slice(&ack.assoc_group.to_le_bytes());
    let mut port = ack.secondary_address.as_bytes().to_vec();
    port.push(0);
    body.extend_from_slice(&(port.len() as u16).to_le_bytes());
    body.extend_from_slice(&port);
    // Align the result list to 4 bytes counted from the start of the PDU.
    while !(HEADER_LEN + body.len()).is_multiple_of(4) {
        body.push(0);
    }
    body.push(ack.results.len() as u8);
    body.extend_from_slice(&[0, 0, 0]);
    for r in &ack.results {
        body.extend_from_slice(&r.result.to_le_bytes());
        body.extend_from_slice(&r.reason.to_le_bytes());
        r.transfer_syntax.encode(&mut body);
    }
    let mut pdu = encode_header(
        PacketType::BindAck,
        ack.flags,
        ack.auth_length,
        ack.call_id,
        body.len(),
    );
    pdu.extend_from_slice(&body);
    pdu
}

/// A `bind_nak` with the given provider reject reason.
pub fn encode_nak(call_id: u32, reason: u16) -> Vec<u8> {
    let mut body = reason.to_le_bytes().to_vec();
    body.push(1); // n_protocols
    body.extend_from_slice(&[RPC_VERSION, RPC_VERSION_MINOR]);
    let mut pdu = encode_header(
        PacketType::BindNak,
        PFC_FIRST_FRAG | PFC_LAST_FRAG,
        0,
        call_id,
        body.len(),
    );
    pdu.extend_from_slice(&body);
    pdu
}

/// Parses a `bind` PDU, every length checked against the bytes present.
pub fn parse_bind(pdu: &[u8]) -> Result<Bind, ParseError> {
    let header = parse_header(pdu)?;
    if header.packet_type != PacketType::Bind {
        return Err(ParseError::Malformed("bind: wrong packet type"));
    }
    let pdu = pdu.get(..header.frag_length).ok_or(ParseError::Truncated {
        needed: header.frag_length,
        got: pdu.len(),
    })?;
    let reader = PduReader::new(pdu, header.little_endian);
    let count = reader.u8_at(24)? as usize;
    let mut offset = 28;
    let mut contexts = Vec::with_capacity(count);
    for _ in 0..count {
        let context_id = reader.u16_at(offset)?;
        let n_transfer = reader.u8_at(offset + 2)? as usize;
        let abstract_syntax = reader.syntax_at(offset + 4)?;
        offset += 24;
        let mut transfer_syntaxes = Vec::with_capacity(n_transfer);
        for _ in 0..n_transfer {
            transfer_syntaxes.push(reader.syntax_at(offset)?);
            offset += 20;
        }
        contexts.push(OfferedContext {
            context_id,
            abstract_syntax,
            transfer_syntaxes,
        });
    }
    Ok(Bind {
        call_id: header.call_id,
        flags: header.flags,
        auth_length: reader.u16_at(10)?,
        max_xmit_frag: reader.u16_at(16)?,
        max_recv_frag: reader.u16_at(18)?,
        assoc_group: reader.u32_at(20)?,
        contexts,
    })
}

#[cfg(test)]
mod tests {
    //! The auditor's reply parser against this server side: what it writes, it reads back.
    use super::*;
    use vlmcs_audit::probe::rpc::{
        BindReply, KMS_INTERFACE, NDR32, NDR64, SyntaxId, parse_bind_reply,
    };

    fn ack_pdu(call_id: u32, secondary_address: &str, results: &[ContextResult]) -> Vec<u8> {
        encode_ack(&plain_ack(call_id, secondary_address, results))
    }

    fn bind(call_id: u32, interface: SyntaxId, transfer_syntaxes: &[SyntaxId]) -> Vec<u8> {
        Bind::new(call_id, interface, transfer_syntaxes).encode()
    }

    trait Accepted {
        /// The context id (index in the offer) that was accepted, if any.
        fn accepted_context(&self) -> Option<usize>;
    }

    impl Accepted for BindReply {
        /// The context id (index in the offer) that was accepted, if any.
        fn accepted_context(&self) -> Option<usize> {
            match self {
                Self::Ack(ack) => ack.results.iter().position(|r| r.result == 0),
                _ => None,
            }
        }
    }

    fn accepted(transfer: SyntaxId) -> ContextResult {
        ContextResult::acceptance(transfer)
    }

    fn rejected(reason: u16) -> ContextResult {
        ContextResult::rejection(reason)
    }

    #[test]
    fn ack_round_trips_and_reports_the_accepted_context() {
        let ack = ack_pdu(9, "1688", &[rejected(2), accepted(NDR64)]);
        let reply = parse_bind_reply(&ack, 9).unwrap();
        assert_eq!(reply.accepted_context(), Some(1));
        match reply {
            BindReply::Ack(ack) => {
                assert_eq!(ack.secondary_address, "1688");
                assert_eq!(ack.results[1].transfer_syntax, NDR64);
                assert_eq!(
                    ack.results[0].describe(),
                    "provider rejection: transfer syntax not supported"
                );
            }
            other => panic!("expected ack, got {other:?}"),
        }
    }

    #[test]
    fn ack_padding_depends_on_secondary_address_length() {
        for addr in ["", "1", "12", "135", "1688", "49667", "abcdefgh"] {
            let ack = ack_pdu(1, addr, &[accepted(NDR32)]);
            let reply = parse_bind_reply(&ack, 1).unwrap();
            assert_eq!(reply.accepted_context(), Some(0), "address {addr:?}");
        }
    }

    #[test]
    fn ack_with_every_context_rejected_is_not_accepted() {
        let ack = ack_pdu(1, "1688", &[rejected(1), rejected(1)]);
        assert_eq!(parse_bind_reply(&ack, 1).unwrap().accepted_context(), None);
    }

    #[test]
    fn nak_and_fault_are_recognised() {
        let nak = encode_nak(4, 4);
        assert_eq!(
            parse_bind_reply(&nak, 4).unwrap(),
            BindReply::Nak { reason: 4 }
        );
        let mut fault = encode_header(PacketType::Fault, 3, 0, 4, 16);
        fault.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0, 0x05, 0, 0, 0x1c, 0, 0, 0, 0]);
        assert_eq!(
            parse_bind_reply(&fault, 4).unwrap(),
            BindReply::Fault {
                status: 0x1c00_0005
            }
        );
    }

    #[test]
    fn truncated_replies_are_errors_not_panics() {
        let ack = ack_pdu(1, "1688", &[accepted(NDR32)]);
        for cut in 0..ack.len() {
            let err = parse_bind_reply(&ack[..cut], 1).unwrap_err();
            assert!(
                matches!(err, ParseError::Truncated { .. }),
                "cut at {cut}: {err:?}"
            );
        }
    }

    #[test]
    fn lying_lengths_inside_the_body_are_errors() {
        let mut ack = ack_pdu(1, "1688", &[accepted(NDR32)]);
        // Secondary address length far beyond the fragment.
        ack[24] = 0xff;
        ack[25] = 0xff;
        assert!(matches!(
            parse_bind_reply(&ack, 1),
            Err(ParseError::Truncated { .. })
        ));
        // Result count larger than the results present.
        let mut ack = ack_pdu(1, "1688", &[accepted(NDR32)]);
        ack[32] = 200;
        assert!(matches!(
            parse_bind_reply(&ack, 1),
            Err(ParseError::Truncated { .. })
        ));
    }

    #[test]
    fn oversized_and_undersized_fragments_are_rejected() {
        let mut ack = ack_pdu(1, "1688", &[accepted(NDR32)]);
        ack[8..10].copy_from_slice(&0xffffu16.to_le_bytes());
        assert_eq!(parse_header(&ack), Err(ParseError::Oversized(0xffff)));
        ack[8..10].copy_from_slice(&4u16.to_le_bytes());
        assert_eq!(parse_header(&ack), Err(ParseError::BadFragmentLength(4)));
    }

    #[test]
    fn garbage_is_not_rpc() {
        assert!(matches!(
            parse_header(b"HTTP/1.1 400 Bad Request\r\n"),
            Err(ParseError::NotRpc { major: b'H', .. })
        ));
        assert!(matches!(
            parse_header(b"SSH-2.0-OpenSSH_9.2p1\r\n"),
            Err(ParseError::NotRpc { .. })
        ));
        let mut bad_drep = encode_nak(1, 0);
        bad_drep[4] = 0x20;
        assert_eq!(
            parse_header(&bad_drep),
            Err(ParseError::UnsupportedDataRepresentation(0x20))
        );
    }

    #[test]
    fn call_id_and_fragment_flags_are_checked() {
        let ack = ack_pdu(1, "1688", &[accepted(NDR32)]);
        assert_eq!(
            parse_bind_reply(&ack, 2),
            Err(ParseError::CallIdMismatch {
                expected: 2,
                got: 1
            })
        );
        let mut middle = ack.clone();
        middle[3] = 0;
        assert_eq!(
            parse_bind_reply(&middle, 1),
            Err(ParseError::NotFirstFragment)
        );
    }

    #[test]
    fn unexpected_packet_type_is_reported() {
        let mut pdu = encode_nak(1, 0);
        pdu[2] = 2; // response
        assert_eq!(
            parse_bind_reply(&pdu, 1).unwrap(),
            BindReply::Unexpected { packet_type: 2 }
        );
    }

    #[test]
    fn bind_round_trips_through_the_server_side_parser() {
        let pdu = bind(5, KMS_INTERFACE, &[NDR32, NDR64]);
        let bind = parse_bind(&pdu).unwrap();
        assert_eq!(bind, Bind::new(5, KMS_INTERFACE, &[NDR32, NDR64]));
        assert_eq!(bind.contexts[1].context_id, 1);
        assert_eq!(bind.contexts[1].transfer_syntaxes, vec![NDR64]);
        let odd = Bind {
            flags: 0x43,
            max_xmit_frag: 65535,
            max_recv_frag: 1111,
            assoc_group: 7,
            ..bind
        };
        assert_eq!(parse_bind(&odd.encode()).unwrap(), odd);
        for cut in 0..pdu.len() {
            assert!(parse_bind(&pdu[..cut]).is_err());
        }
    }
}
