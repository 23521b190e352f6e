//! A value that a person wrote — a flag, a config entry, a line of a saved file — and why it is
//! not one the tool takes. Each message says what was written (made safe to print), what is
//! wrong and what would do.

use crate::support::quote::for_message;

/// Why a written value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    /// Not a whole number.
    #[error("`{text}` is not a whole number; allowed: {min} to {max}")]
    NotANumber {
        /// What was written.
        text: String,
        /// The least allowed.
        min: u64,
        /// The most allowed.
        max: u64,
    },
    /// A number outside its range.
    #[error("`{value}` is out of range; allowed: {min} to {max}")]
    NumberOutOfRange {
        /// The number.
        value: u64,
        /// The least allowed.
        min: u64,
        /// The most allowed.
        max: u64,
    },
    /// Not a duration humantime reads.
    #[error(
        "`{text}` is not a duration ({cause}); write e.g. `2s`, `500ms` or `24h`; allowed: {min} to {max}"
    )]
    NotADuration {
        /// What was written.
        text: String,
        /// What the duration parser said.
        cause: String,
        /// The shortest allowed, written out.
        min: String,
        /// The longest allowed, written out.
        max: String,
    },
    /// A duration outside its range.
    #[error("`{text}` is out of range; allowed: {min} to {max}")]
    DurationOutOfRange {
        /// What was written.
        text: String,
        /// The shortest allowed, written out.
        min: String,
        /// The longest allowed, written out.
        max: String,
    },
    /// An IPv6 address without brackets, whose port could not be told from its last group.
    #[error(
        "`{text}`: write an IPv6 address in brackets, `[{text}]` (port 53) or `[ADDRESS]:PORT`: without them a port cannot be told from the address's last group"
    )]
    Ipv6WithoutBrackets {
        /// What was written.
        text: String,
    },
    /// Not an address with an optional port.
    #[error(
        "`{text}` is not a DNS server address: write an IP address with an optional port, e.g. `10.0.0.5`, `10.0.0.5:5353`, `[2001:db8::53]` or `[2001:db8::53]:5353`"
    )]
    NotAServer {
        /// What was written.
        text: String,
    },
    /// `0.0.0.0` or `::`: no server to ask.
    #[error(
        "`{text}`: {address} means \"any address\" and is not a server to ask; write the server's own address (e.g. 127.0.0.1 for this machine)"
    )]
    UnspecifiedServer {
        /// What was written.
        text: String,
        /// The address it names.
        address: std::net::IpAddr,
    },
    /// Port 0.
    #[error("`{text}`: port 0 is not a port to send to")]
    PortZero {
        /// What was written.
        text: String,
    },
    /// The record's owner name where the domain was wanted.
    #[error("`{text}`: give the domain (e.g. `corp.example.com`), not the `_vlmcs._tcp` name")]
    VlmcsOwnerName {
        /// What was written.
        text: String,
    },
    /// Not a domain name.
    #[error(
        "`{text}` is not a valid domain name (labels of letters, digits and `-`, separated by dots)"
    )]
    NotADomain {
        /// What was written.
        text: String,
    },
    /// Neither an address, a network nor a name.
    #[error("`{text}` is neither an IP address, a network nor a host name")]
    NotAHost {
        /// What was written.
        text: String,
    },
    /// A name with a label that no host name has.
    #[error(
        "`{text}` is not a valid host name (labels of letters, digits, `-` and `_`, separated by dots)"
    )]
    NotAHostName {
        /// What was written.
        text: String,
    },
    /// Not a time.
    #[error("`{text}` is not an RFC 3339 time such as 2026-11-28T10:15:00Z")]
    NotATime {
        /// What was written.
        text: String,
    },
}

/// What was written, safe to print (control bytes escaped, length bounded).
pub(crate) fn shown(text: &str) -> String {
    for_message(text)
}
