//! What DNS servers send back to updates and TKEY negotiations, as the tool reads it.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = vlmcs_audit::dns::tsig::read_tsig(data);
    let context = hickory_proto::rr::Name::from_ascii("1.sig-vlmcs-audit.").unwrap();
    let id = u16::from_be_bytes([
        data.first().copied().unwrap_or(0),
        data.get(1).copied().unwrap_or(0),
    ]);
    let _ = vlmcs_audit::dns::tkey::parse_answer(data, id, &context);
});
