//! One value of the `dnsRecord` attribute (MS-DNSP 2.3.2.2 `DNS_RPC_RECORD`'s directory form):
//!
//! | field | bytes | order |
//! |---|---|---|
//! | DataLength | 2 | little-endian |
//! | Type | 2 | little-endian (33 SRV, 0 tombstone) |
//! | Version | 1 | 5 |
//! | Rank | 1 | |
//! | Flags | 2 | little-endian |
//! | Serial | 4 | little-endian |
//! | TtlSeconds | 4 | big-endian |
//! | Reserved | 4 | |
//! | TimeStamp | 4 | little-endian, hours since 1601-01-01 UTC; 0: static |
//! | Data | DataLength | by type |
//!
//! SRV data: priority, weight, port (big-endian), then the target as a `DNS_COUNT_NAME`: a
//! length byte (the labels with their length prefixes and the final zero), a label-count
//! byte, the labels, a zero byte.

use std::fmt;

use hickory_proto::rr::Name;

use crate::model::name::DnsName;

/// The record types this tool reads.
pub const TYPE_TOMBSTONE: u16 = 0;
pub(crate) const TYPE_SRV: u16 = 33;
/// The only version MS-DNSP defines.
const VERSION: u8 = 5;
const HEADER_LEN: usize = 24;
/// Seconds from 1601-01-01 (the Windows epoch) to 1970-01-01.
const WINDOWS_TO_UNIX_SECONDS: i64 = 11_644_473_600;

/// One parsed `dnsRecord` value.
#[derive(Debug, Clone, PartialEq)]
pub struct DnsRecordValue {
    /// The record's type (33 for SRV).
    pub record_type: u16,
    pub(crate) rank: u8,
    /// The value's flags (unused by AD, kept as read).
    pub flags: u16,
    /// Rewritten for every value of a node whenever the node is rewritten (measured on Samba):
    /// it says nothing about when this record was added.
    pub serial: u32,
    /// Time to live, in seconds.
    pub ttl: u32,
    /// When the record was registered or last refreshed, or static.
    pub stamp: Stamp,
    /// The record's data.
    pub data: RecordData,
}

/// When a dynamic record was registered or last refreshed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stamp {
    /// 0: added by hand — or, on Samba, dynamically into a node that holds a static record.
    Static,
    /// Hours since 1601-01-01 00:00 UTC.
    Hours(u32),
}

impl Stamp {
    /// Seconds since the Unix epoch, for a dynamic record.
    pub fn unix_seconds(self) -> Option<i64> {
        match self {
            Self::Static => None,
            Self::Hours(hours) => Some(i64::from(hours) * 3600 - WINDOWS_TO_UNIX_SECONDS),
        }
    }
}

/// The record's data, for the types this tool reads.
#[derive(Debug, Clone, PartialEq)]
pub enum RecordData {
    /// An SRV record.
    Srv {
        /// Lower is tried first.
        priority: u16,
        /// Share among records of equal priority.
        weight: u16,
        /// The port clients connect to.
        port: u16,
        /// The host clients are sent to.
        target: DnsName,
    },
    /// A deleted node's one value: when it was deleted (a FILETIME, 100 ns since 1601).
    Tombstone {
        /// When it was deleted (a Windows FILETIME).
        deleted_filetime: u64,
    },
    /// Any other type, kept as bytes.
    Other(Vec<u8>),
}

/// Why a value could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DnsRecordError {
    /// Fewer bytes than the 24-byte header.
    Short {
        /// Bytes present.
        len: usize,
    },
    /// The header's DataLength does not match the bytes after the header.
    DataLength {
        /// Bytes the header declares.
        declared: usize,
        /// Bytes present.
        present: usize,
    },
    /// A version other than 5.
    Version(u8),
    /// The type's data is malformed (what, where).
    Data(String),
}

impl fmt::Display for DnsRecordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Short { len } => write!(
                f,
                "dnsRecord value of {len} bytes is shorter than its 24-byte header"
            ),
            Self::DataLength { declared, present } => write!(
                f,
                "dnsRecord value declares {declared} bytes of data but holds {present}"
            ),
            Self::Version(v) => write!(f, "dnsRecord value of version {v} (only 5 is defined)"),
            Self::Data(what) => write!(f, "dnsRecord data: {what}"),
        }
    }
}

impl std::error::Error for DnsRecordError {}

/// Reads one `dnsRecord` value.
pub fn parse(value: &[u8]) -> Result<DnsRecordValue, DnsRecordError> {
    let Some((header, data)) = value.split_first_chunk::<HEADER_LEN>() else {
        return Err(DnsRecordError::Short { len: value.len() });
    };
    let le16 = |at: usize| u16::from_le_bytes([header[at], header[at + 1]]);
    let le32 = |at: usize| {
        u32::from_le_bytes([header[at], header[at + 1], header[at + 2], header[at + 3]])
    };
    let declared = usize::from(le16(0));
    if declared != data.len() {
        return Err(DnsRecordError::DataLength {
            declared,
            present: data.len(),
        });
    }
    let record_type = le16(2);
    if header[4] != VERSION {
        return Err(DnsRecordError::Version(header[4]));
    }
    let stamp = match le32(20) {
        0 => Stamp::Static,
        hours => Stamp::Hours(hours),
    };
    let data = match record_type {
        TYPE_SRV => parse_srv(data)?,
        TYPE_TOMBSTONE => {
            let filetime: [u8; 8] = data.try_into().map_err(|_| {
                DnsRecordError::Data(format!(
                    "a tombstone holds an 8-byte time, not {} bytes",
                    data.len()
                ))
            })?;
            RecordData::Tombstone {
                deleted_filetime: u64::from_le_bytes(filetime),
            }
        }
        _ => RecordData::Other(data.to_vec()),
    };
    Ok(DnsRecordValue {
        record_type,
        rank: header[5],
        flags: le16(6),
        serial: le32(8),
        ttl: u32::from_be_bytes([header[12], header[13], header[14], header[15]]),
        stamp,
        data,
    })
}

fn parse_srv(data: &[u8]) -> Result<RecordData, DnsRecordError> {
    let bad = |what: String| DnsRecordError::Data(what);
    let Some((fixed, name)) = data.split_first_chunk::<6>() else {
        return Err(bad(format!(
            "an SRV record needs 6 bytes before its target, has {}",
            data.len()
        )));
    };
    let be16 = |at: usize| u16::from_be_bytes([fixed[at], fixed[at + 1]]);
    Ok(RecordData::Srv {
        priority: be16(0),
        weight: be16(2),
        port: be16(4),
        target: parse_count_name(name)?,
    })
}

/// A `DNS_COUNT_NAME` that fills `bytes` exactly.
fn parse_count_name(bytes: &[u8]) -> Result<DnsName, DnsRecordError> {
    let bad = |what: String| DnsRecordError::Data(format!("SRV target: {what}"));
    let [length, count, labels @ ..] = bytes else {
        return Err(bad(format!("{} bytes, no name header", bytes.len())));
    };
    if usize::from(*length) != labels.len() {
        return Err(bad(format!(
            "the name's length byte says {length}, {} bytes follow",
            labels.len()
        )));
    }
    let mut parts: Vec<&[u8]> = Vec::with_capacity(usize::from(*count));
    let mut rest = labels;
    loop {
        match rest {
            [0] => break,
            [len, tail @ ..] if *len != 0 && usize::from(*len) <= tail.len() => {
                let (label, after) = tail.split_at(usize::from(*len));
                parts.push(label);
                rest = after;
            }
            _ => return Err(bad("labels overrun the name or miss its final zero".into())),
        }
    }
    if parts.len() != usize::from(*count) {
        return Err(bad(format!(
            "{} labels where the count byte says {count}",
            parts.len()
        )));
    }
    let mut name = Name::from_labels(parts).map_err(|e| bad(e.to_string()))?;
    name.set_fqdn(true);
    Ok(DnsName::new(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Taken from a Samba 4.17 DC (../shared/notes/ad-dns.md): `SRV 0 0 1688 kms1.ad.test.`,
    /// dynamic, TTL 3600, stamped 2026-11-29 03:00 UTC.
    const SAMBA_SRV: [u8; 46] = [
        0x16, 0x00, 0x21, 0x00, 0x05, 0xf0, 0x00, 0x00, 0x6e, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0e,
        0x10, 0x00, 0x00, 0x00, 0x00, 0xc3, 0xf7, 0x38, 0x00, 0x00, 0x00, 0x00, 0x00, 0x06, 0x98,
        0x0e, 0x03, 0x04, 0x6b, 0x6d, 0x73, 0x31, 0x02, 0x61, 0x64, 0x04, 0x74, 0x65, 0x73, 0x74,
        0x00,
    ];

    #[test]
    fn a_value_from_a_samba_dc() {
        let value = parse(&SAMBA_SRV).unwrap();
        assert_eq!(value.record_type, TYPE_SRV);
        assert_eq!(value.rank, 0xf0);
        assert_eq!(value.serial, 110);
        assert_eq!(value.ttl, 3600);
        assert_eq!(value.stamp, Stamp::Hours(0x0038_f7c3));
        // 2026-11-29T03:00:00Z
        assert_eq!(value.stamp.unix_seconds(), Some(1_795_921_200));
        assert_eq!(
            value.data,
            RecordData::Srv {
                priority: 0,
                weight: 0,
                port: 1688,
                target: DnsName::parse("kms1.ad.test.").unwrap(),
            }
        );
    }

    #[test]
    fn a_static_record_and_a_tombstone() {
        let mut value = SAMBA_SRV;
        value[20..24].copy_from_slice(&[0; 4]);
        assert_eq!(parse(&value).unwrap().stamp, Stamp::Static);
        assert_eq!(Stamp::Static.unix_seconds(), None);

        let mut tombstone = vec![8, 0, 0, 0, 5, 0, 0, 0];
        tombstone.extend_from_slice(&[0; 16]);
        tombstone.extend_from_slice(&0x01db_0000_0000_0000u64.to_le_bytes());
        assert_eq!(
            parse(&tombstone).unwrap().data,
            RecordData::Tombstone {
                deleted_filetime: 0x01db_0000_0000_0000
            }
        );
    }

    #[test]
    fn a_label_with_any_bytes_stays_one_label() {
        // Target "a.b\0" as one 4-byte label, then "test": the dot and the NUL are data, never
        // separators.
        let name = [11, 2, 4, b'a', b'.', b'b', 0, 4, b't', b'e', b's', b't', 0];
        let mut value = SAMBA_SRV[..HEADER_LEN + 6].to_vec();
        value.extend_from_slice(&name);
        let data_len = (value.len() - HEADER_LEN) as u16;
        value[0..2].copy_from_slice(&data_len.to_le_bytes());
        let parsed = parse(&value).unwrap();
        let RecordData::Srv { target, .. } = parsed.data else {
            panic!("{parsed:?}")
        };
        assert_eq!(target.to_name().num_labels(), 2);
        assert_eq!(target.to_string(), "a\\.b\\000.test.");
    }

    #[test]
    fn every_malformation_is_an_error_not_a_panic() {
        assert_eq!(parse(&[0; 10]), Err(DnsRecordError::Short { len: 10 }));
        let mut long = SAMBA_SRV.to_vec();
        long.push(0);
        assert!(matches!(
            parse(&long),
            Err(DnsRecordError::DataLength { .. })
        ));
        let mut version = SAMBA_SRV;
        version[4] = 4;
        assert_eq!(parse(&version), Err(DnsRecordError::Version(4)));
        // Every truncation, and every single-byte change of the name: an error or a value,
        // never a panic.
        for cut in 0..SAMBA_SRV.len() {
            let mut value = SAMBA_SRV[..cut].to_vec();
            if cut >= 2 {
                let len = cut.saturating_sub(HEADER_LEN) as u16;
                value[0..2].copy_from_slice(&len.to_le_bytes());
            }
            let _ = parse(&value);
        }
        for at in 30..SAMBA_SRV.len() {
            for byte in [0, 1, 0x3f, 0x40, 0xff] {
                let mut value = SAMBA_SRV;
                value[at] = byte;
                let _ = parse(&value);
            }
        }
        // Wrong count byte, wrong length byte, missing final zero.
        let mut count = SAMBA_SRV;
        count[31] = 2;
        assert!(matches!(parse(&count), Err(DnsRecordError::Data(_))));
        let mut length = SAMBA_SRV;
        length[30] = 13;
        assert!(matches!(parse(&length), Err(DnsRecordError::Data(_))));
    }
}
