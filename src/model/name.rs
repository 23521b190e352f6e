//! [`DnsName`]: a DNS name as the model carries it. Compared case-insensitively (RFC 4343),
//! written in the project's own RFC 1035 presentation form (hickory 0.26 writes octal escapes,
//! hickory-dns issue 2631), and parsed once, where it enters the tool.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use hickory_proto::rr::Name;
use serde::{Deserialize, Serialize};

/// Holds the name's presentation form (as [`presentation`] writes it), shared: a name is
/// compared, hashed and written far more often than it is sent, a scan clones each target
/// name into its records, targets, probes and verdicts, and a clone costs a reference count.
#[derive(Clone, Deserialize)]
#[serde(try_from = "String")]
pub struct DnsName(Arc<str>);

impl DnsName {
    /// The name in presentation form (escaped, with the final dot).
    pub fn new(name: Name) -> Self {
        Self(presentation(&name).into())
    }

    /// Reads a name in presentation form (`\DDD` and `\X` escapes); `None` when it is not one.
    pub fn parse(text: &str) -> Option<Self> {
        if is_plain(text) {
            return Some(Self(text.into()));
        }
        parse_presentation(text).map(Self::new)
    }

    /// Reads a host name as fully qualified, with or without its final dot.
    pub fn parse_fqdn(text: &str) -> Option<Self> {
        if is_plain(text) {
            return Some(Self(match text.strip_suffix('.') {
                Some(_) => text.into(),
                None => format!("{text}.").into(),
            }));
        }
        let mut name = parse_presentation(text)?;
        name.set_fqdn(true);
        Some(Self::new(name))
    }

    /// The name as hickory sends it.
    pub fn to_name(&self) -> Name {
        if let Some(body) = self.plain_body()
            && let Ok(mut name) = Name::from_labels(body.split('.').map(str::as_bytes))
        {
            name.set_fqdn(body.len() < self.0.len());
            return name;
        }
        parse_presentation(&self.0).expect("a DnsName holds presentation text it wrote itself")
    }

    /// Whether `name` is this name, ignoring ASCII case and whether either is fully qualified
    /// (as hickory's `eq_ignore_root`), without converting either: a scan matches every
    /// target against the addresses in its SRV answer's additional section.
    pub fn spells(&self, name: &Name) -> bool {
        let body_len = self.0.strip_suffix('.').unwrap_or(&self.0).len();
        // `Name::len` counts a dot per label (its last standing for the root): a plain name of
        // another length is another name, and most names compared here are.
        if name.len() != body_len + 1 && is_plain(&self.0) {
            return false;
        }
        let Some(body) = self.plain_body() else {
            return same_name(&self.to_name(), name);
        };
        let mut labels = name.iter();
        body.split('.').all(|text| {
            labels
                .next()
                .is_some_and(|label| label.eq_ignore_ascii_case(text.as_bytes()))
        }) && labels.next().is_none()
    }

    /// Whether this name is `zone` or below it (ASCII case aside).
    pub fn is_within(&self, zone: &DnsName) -> bool {
        if let (Some(name), Some(apex)) = (self.plain_body(), zone.plain_body()) {
            // Plain names hold no escaped dots: a suffix that starts a label is an ancestor.
            let (name, apex) = (name.as_bytes(), apex.as_bytes());
            return name.eq_ignore_ascii_case(apex)
                || (name.len() > apex.len()
                    && name[name.len() - apex.len() - 1] == b'.'
                    && name[name.len() - apex.len()..].eq_ignore_ascii_case(apex));
        }
        zone.to_name().zone_of(&self.to_name())
    }

    /// The name without its final dot, when it is plain (see [`is_plain`]).
    fn plain_body(&self) -> Option<&str> {
        is_plain(&self.0).then(|| self.0.strip_suffix('.').unwrap_or(&self.0))
    }

    /// `.`: "no service here" as an SRV target (RFC 2782).
    pub fn is_root(&self) -> bool {
        &*self.0 == "."
    }

    /// The bytes every comparison uses: the presentation form, lower-cased.
    fn folded(&self) -> impl Iterator<Item = u8> + '_ {
        self.0.bytes().map(|b| b.to_ascii_lowercase())
    }
}

/// Whether two names are the same, ignoring ASCII case (RFC 4343) and whether either is fully
/// qualified, as hickory's `eq_ignore_root` (which orders both names label by label from the
/// root): names of different lengths, most of those compared, at once; equal ones at about half
/// its cost (callgrind).
pub(crate) fn same_name(a: &Name, b: &Name) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let (mut left, mut right) = (a.iter(), b.iter());
    loop {
        match (left.next(), right.next()) {
            (None, None) => return true,
            (Some(l), Some(r)) if l.eq_ignore_ascii_case(r) => {}
            _ => return false,
        }
    }
}

/// Whether `text` is already the presentation form of the name it spells, with nothing to
/// escape or check beyond its shape: labels of 1 to 63 letters, digits, hyphens and underscores,
/// at most 253 bytes without a final dot (255 on the wire). Most names are; they skip the
/// detour through hickory.
fn is_plain(text: &str) -> bool {
    let body = text.strip_suffix('.').unwrap_or(text).as_bytes();
    if body.is_empty() || body.len() > 253 {
        return false;
    }
    // One pass over the bytes (names are read and compared by the million in a big scan).
    let mut label_len = 0;
    for &b in body {
        if b == b'.' {
            if label_len == 0 {
                return false;
            }
            label_len = 0;
        } else if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' {
            label_len += 1;
            if label_len > 63 {
                return false;
            }
        } else {
            return false;
        }
    }
    label_len > 0
}

impl PartialEq for DnsName {
    fn eq(&self, other: &Self) -> bool {
        self.0.eq_ignore_ascii_case(&other.0)
    }
}

impl Eq for DnsName {}

impl Ord for DnsName {
    /// By presentation form, ignoring case: the order reports list records in.
    fn cmp(&self, other: &Self) -> Ordering {
        self.folded().cmp(other.folded())
    }
}

impl PartialOrd for DnsName {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Hash for DnsName {
    fn hash<H: Hasher>(&self, state: &mut H) {
        for b in self.folded() {
            state.write_u8(b);
        }
    }
}

impl fmt::Display for DnsName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for DnsName {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl fmt::Debug for DnsName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DnsName({self})")
    }
}

impl From<Name> for DnsName {
    fn from(name: Name) -> Self {
        Self::new(name)
    }
}

/// Test shorthand: `"kms1.example.".into()`.
#[cfg(test)]
impl From<&str> for DnsName {
    fn from(text: &str) -> Self {
        Self::parse(text).expect("a valid name in a test")
    }
}

impl TryFrom<String> for DnsName {
    type Error = &'static str;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        Self::parse(&text).ok_or("not a DNS name in presentation form (RFC 1035)")
    }
}

impl From<DnsName> for String {
    fn from(name: DnsName) -> Self {
        name.0.to_string()
    }
}

/// A name in RFC 1035 presentation form, as BIND and `nsupdate` read it: special characters
/// backslash-escaped, bytes outside printable ASCII as `\DDD` (decimal), trailing dot when
/// fully qualified, `.` for the root. (hickory's own text form is not always re-readable by
/// A name written without its final dot (`corp.example.com`, not `corp.example.com.`): how
/// commands, messages and AD's attributes write names. The one place a dot is trimmed;
/// comparisons go through [`crate::model::normalize_name`] or [`DnsName`].
pub fn without_final_dot(text: &str) -> &str {
    text.strip_suffix('.').unwrap_or(text)
}

/// BIND, and names from DNS can carry any byte.)
pub(crate) fn presentation(name: &Name) -> String {
    escaped(name, |byte| {
        !matches!(byte, b'.' | b'\\' | b'"' | b'(' | b')' | b';' | b'@' | b'$')
    })
}

/// A name in presentation form where the printable ASCII bytes for which `plain` is false are
/// backslash-escaped (`\;`), and every byte outside printable ASCII is `\DDD` (decimal).
pub(crate) fn escaped(name: &Name, plain: impl Fn(u8) -> bool) -> String {
    if name.is_root() {
        return ".".into();
    }
    // The wire length is the text's when nothing needs escaping.
    let mut out = String::with_capacity(name.len());
    for label in name.iter() {
        for &byte in label {
            match byte {
                0x21..=0x7e if plain(byte) => out.push(byte as char),
                0x21..=0x7e => {
                    out.push('\\');
                    out.push(byte as char);
                }
                _ => {
                    out.push('\\');
                    for digit in [byte / 100, byte / 10 % 10, byte % 10] {
                        out.push(char::from(b'0' + digit));
                    }
                }
            }
        }
        out.push('.');
    }
    if !name.is_fqdn() {
        out.pop();
    }
    out
}

/// Reads a name written by [`presentation`] (RFC 1035 decimal escapes) back into a `Name`.
pub fn parse_presentation(text: &str) -> Option<Name> {
    if text == "." {
        return Some(Name::root());
    }
    let mut labels: Vec<Vec<u8>> = vec![Vec::new()];
    // Whether the text ends with a dot that is not escaped (`a\\.` ends with one, `a\.` not).
    let mut fqdn = false;
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        fqdn = false;
        match bytes[i] {
            b'\\' => {
                let digits = bytes
                    .get(i + 1..i + 4)
                    .filter(|d| d.iter().all(u8::is_ascii_digit));
                match digits {
                    Some(d) => {
                        let value: u16 = std::str::from_utf8(d).ok()?.parse().ok()?;
                        labels.last_mut()?.push(u8::try_from(value).ok()?);
                        i += 4;
                    }
                    None => {
                        labels.last_mut()?.push(*bytes.get(i + 1)?);
                        i += 2;
                    }
                }
            }
            b'.' => {
                labels.push(Vec::new());
                fqdn = true;
                i += 1;
            }
            byte => {
                labels.last_mut()?.push(byte);
                i += 1;
            }
        }
    }
    if fqdn {
        labels.pop();
    }
    if labels.iter().any(Vec::is_empty) {
        return None;
    }
    let mut name = Name::from_labels(labels).ok()?;
    name.set_fqdn(fqdn);
    Some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(text: &str) -> DnsName {
        DnsName::parse(text).unwrap()
    }

    #[test]
    fn case_is_ignored_everywhere_but_in_what_is_written() {
        let a = name("KMS1.Corp.Example.");
        let b = name("kms1.corp.example.");
        assert_eq!(a, b);
        assert_eq!(a.cmp(&b), Ordering::Equal);
        let hash = |n: &DnsName| {
            let mut h = std::collections::hash_map::DefaultHasher::new();
            n.hash(&mut h);
            h.finish()
        };
        assert_eq!(hash(&a), hash(&b));
        assert_eq!(a.to_string(), "KMS1.Corp.Example.");
        assert_ne!(name("kms1.corp.example."), name("kms2.corp.example."));
        assert_ne!(name("a.example."), name("a.example"));
    }

    #[test]
    fn order_and_hash_follow_the_presentation_form() {
        // The folded bytes are exactly the lower-cased presentation text, escapes included.
        for text in [
            ".",
            "a.",
            "a",
            "evil\\027[31m\\010\\$\\(reboot\\).a\\.b.corp.",
            "x\\255y.Example.",
            "under_score.Example.COM.",
        ] {
            let n = name(text);
            let folded: Vec<u8> = n.folded().collect();
            assert_eq!(
                String::from_utf8(folded).unwrap(),
                n.to_string().to_ascii_lowercase(),
                "{text}"
            );
        }
        let mut names = [name("b.x."), name("A.x."), name("a-b.x."), name(".")];
        names.sort();
        let shown: Vec<String> = names.iter().map(ToString::to_string).collect();
        assert_eq!(shown, [".", "a-b.x.", "A.x.", "b.x."]);
    }

    #[test]
    fn plain_names_read_as_the_parser_reads_them() {
        let long_label = "a".repeat(63);
        let too_long_label = "a".repeat(64);
        let long_name = format!(
            "{}.{}.{}.{}",
            "b".repeat(63),
            "c".repeat(63),
            "d".repeat(63),
            "e".repeat(61)
        );
        let too_long_name = format!("{long_name}x");
        for text in [
            "kms1.Corp.example.",
            "kms1.corp.example",
            "_vlmcs._tcp.x-y.",
            "a",
            "a.",
            "1.2.3.4.",
            long_label.as_str(),
            too_long_label.as_str(),
            long_name.as_str(),
            too_long_name.as_str(),
            "a..b",
            ".a",
            "..",
            "a.b..",
        ] {
            let shown = |n: Option<DnsName>| n.map(|n| n.to_string());
            let slow = parse_presentation(text).map(DnsName::new);
            if let Some(name) = DnsName::parse(text) {
                let back = name.to_name();
                let read = parse_presentation(text).unwrap();
                assert_eq!((&back, back.is_fqdn()), (&read, read.is_fqdn()), "{text}");
            }
            assert_eq!(shown(DnsName::parse(text)), shown(slow), "{text}");
            let slow_fqdn = parse_presentation(text).map(|mut n| {
                n.set_fqdn(true);
                DnsName::new(n)
            });
            let fast_fqdn = DnsName::parse_fqdn(text);
            if let Some(name) = &fast_fqdn {
                assert_eq!(DnsName::new(name.to_name()).to_string(), name.to_string());
            }
            assert_eq!(shown(fast_fqdn), shown(slow_fqdn), "{text}");
        }
        assert!(is_plain(&long_name) && !is_plain(&too_long_name) && !is_plain(&too_long_label));
    }

    #[test]
    fn spells_matches_as_hickory_compares() {
        let texts = [
            "kms1.corp.example.",
            "KMS1.Corp.Example",
            "kms1.corp.example.com.",
            "kms2.corp.example.",
            "kms1.corp",
            "corp.example.",
            "a\\.b.example.",
            "a.b.example.",
            "a\\066.example.",
            "a\\.example.",
            "aB.example.",
            "ab.example.",
            "*.example.",
            "x.",
            ".",
        ];
        for ours in texts {
            let ours = name(ours);
            for theirs in texts {
                let theirs = parse_presentation(theirs).unwrap();
                let expected = ours.to_name().eq_ignore_root(&theirs);
                assert_eq!(ours.spells(&theirs), expected, "{ours} against {theirs:?}");
                assert_eq!(
                    same_name(&ours.to_name(), &theirs),
                    expected,
                    "{ours} against {theirs:?}"
                );
            }
        }
        assert!(name("KMS1.corp.example").spells(&name("kms1.CORP.example.").to_name()));
        assert!(!name("kms1.corp.example.").spells(&name("kms1.corp.example.com.").to_name()));
    }

    #[test]
    fn within_a_zone_as_hickory_says() {
        let names = [
            "kms1.corp.example.",
            "KMS1.Corp.Example.",
            "corp.example.",
            "xcorp.example.",
            "example.",
            "kms1.corp.example.com.",
            "a\\.corp.example.",
            "a.b\\.corp.example.",
            "b\\.corp.example.",
            ".",
        ];
        for name in names {
            for zone in names {
                let (name, zone) = (self::name(name), self::name(zone));
                assert_eq!(
                    name.is_within(&zone),
                    zone.to_name().zone_of(&name.to_name()),
                    "{name} within {zone}"
                );
            }
        }
        assert!(name("kms1.Corp.example.").is_within(&name("corp.EXAMPLE.")));
        assert!(!name("kms1.xcorp.example.").is_within(&name("corp.example.")));
    }

    #[test]
    fn json_round_trips_through_the_presentation_form() {
        let n = name("evil\\027[31m.corp.");
        let json = serde_json::to_string(&n).unwrap();
        assert_eq!(json, "\"evil\\\\027[31m.corp.\"");
        assert_eq!(serde_json::from_str::<DnsName>(&json).unwrap(), n);
        assert!(serde_json::from_str::<DnsName>("\"a..b\"").is_err());
    }
}
