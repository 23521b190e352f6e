//! The DCE/RPC reply parser: everything a port 1688 listener sends back.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = vlmcs_audit::probe::rpc::parse_header(data);
    let _ = vlmcs_audit::probe::rpc::parse_bind_reply(data, 2);
});
