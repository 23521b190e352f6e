//! The MS-DNSP `dnsRecord` value parser: bytes an LDAP server returns for a dnsNode.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(value) = vlmcs_audit::ad::dns_record::parse(data) {
        // Whatever parses must print (targets are attacker-controlled names).
        if let vlmcs_audit::ad::dns_record::RecordData::Srv { target, .. } = &value.data {
            let _ = target.to_string();
        }
        let _ = value.stamp.unix_seconds();
    }
});
