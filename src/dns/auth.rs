//! Authentication of dynamic updates: one place that every mechanism joins. TSIG (HMAC-SHA2)
//! today; GSS-TSIG (Kerberos) is the next variant of [`Auth`].
//!
//! Secrets come from a file or an environment variable, never from the command line (visible
//! in `ps`), and never reach a log or an error message: [`TsigKey`]'s `Debug` hides them.

use std::fmt;
use std::path::Path;

use base64::Engine as _;
use hickory_proto::rr::Name;
use hickory_proto::rr::rdata::tsig::TsigAlgorithm;

use crate::dns::tsig::{HmacProvider, MacProvider};

/// Environment variable that may hold a TSIG key (BIND `key { ... };` text, or
/// `[algorithm:]name:base64secret` as `dig -y` takes it).
pub const KEY_ENV: &str = "VLMCS_TSIG_KEY";

/// How updates are authenticated.
#[derive(Debug, Clone)]
pub enum Auth {
    /// Unsigned updates, for zones that accept them (`--no-auth`, explicit).
    None,
    /// TSIG (RFC 8945) with a shared key.
    Tsig(TsigKey),
    /// GSS-TSIG with Kerberos (Active Directory secure updates).
    #[cfg(feature = "gss")]
    Gss(crate::dns::gss::GssSettings),
}

impl Auth {
    /// The MAC provider that signs updates to `server`, `None` for unsigned updates. GSS-TSIG
    /// negotiates a context with the server first, for `DNS/<spn_host>`.
    pub(crate) async fn mac_provider(
        &self,
        server: std::net::SocketAddr,
        spn_host: Option<&Name>,
        timeout: std::time::Duration,
    ) -> Result<Option<Box<dyn MacProvider + Send>>, SigningError> {
        // Only GSS-TSIG negotiates with the server; without the `gss` feature these go unused.
        #[cfg(not(feature = "gss"))]
        let _ = (server, spn_host, timeout);
        match self {
            Self::None => Ok(None),
            Self::Tsig(key) => Ok(Some(Box::new(HmacProvider {
                name: key.name.clone(),
                algorithm: key.algorithm.clone(),
                secret: key.secret.clone(),
            }))),
            #[cfg(feature = "gss")]
            Self::Gss(settings) => {
                let host = match (&settings.spn_host, spn_host) {
                    (Some(h), _) => h.clone(),
                    (None, Some(n)) => n.to_ascii(),
                    (None, None) => {
                        return Err(SigningError::SpnUnknown);
                    }
                };
                let provider = crate::dns::gss::negotiate(server, &host, settings, timeout).await?;
                Ok(Some(Box::new(provider)))
            }
        }
    }

    /// Which kind of authentication, for messages that depend on it.
    pub(crate) fn kind(&self) -> AuthKind {
        match self {
            Self::None => AuthKind::None,
            Self::Tsig(_) => AuthKind::Tsig,
            #[cfg(feature = "gss")]
            Self::Gss(_) => AuthKind::Gss,
        }
    }

    /// What to say in plans and logs (never the secret).
    pub(crate) fn describe(&self) -> String {
        match self {
            Self::None => "unsigned (--no-auth)".into(),
            Self::Tsig(k) => format!(
                "TSIG key {} ({})",
                crate::dns::presentation(&k.name),
                algorithm_name(&k.algorithm)
            ),
            #[cfg(feature = "gss")]
            Self::Gss(g) => format!(
                "GSS-TSIG (Kerberos{})",
                g.principal
                    .as_deref()
                    .map(|p| format!(", {p}"))
                    .unwrap_or_default()
            ),
        }
    }
}

/// Why updates cannot be signed.
#[derive(Debug, thiserror::Error)]
pub enum SigningError {
    /// GSS-TSIG without a known DNS server host name.
    #[error("the DNS server's principal is unknown: pass --gss-spn HOST (the server's FQDN)")]
    SpnUnknown,
    /// The GSS-TSIG negotiation failed.
    #[cfg(feature = "gss")]
    #[error("{0}")]
    Gss(#[from] crate::dns::gss::GssError),
}

/// Which mechanism signs updates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AuthKind {
    None,
    Tsig,
    Gss,
}

/// A TSIG key. `Debug` and `Display` show the name and algorithm only.
#[derive(Clone)]
pub struct TsigKey {
    /// The key's name, as the server knows it.
    pub name: Name,
    /// The HMAC algorithm.
    pub algorithm: TsigAlgorithm,
    secret: Vec<u8>,
}

impl fmt::Debug for TsigKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TsigKey")
            .field("name", &self.name.to_ascii())
            .field("algorithm", &algorithm_name(&self.algorithm))
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// Why a key could not be used.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The key file could not be read, or is not a secret's file.
    #[error(transparent)]
    File(#[from] crate::support::fsio::FileError),
    /// The key text is not one tsig-keygen or `dig -y` writes.
    #[error("{origin}: {message}")]
    Parse {
        /// Where the text came from (a file, the environment).
        origin: String,
        /// What is wrong (never the secret).
        message: String,
    },
    /// The key is unusable (an unknown algorithm, a short secret).
    #[error("{0}")]
    Key(String),
    /// A key given where a path was expected (not shown).
    #[error(
        "{given_by} takes the path of a key file, and its value looks like a key itself, so it is not shown ({cause}): put the key in a file only you can read ({}) and give that file, or set {KEY_ENV}",
        PRIVATE_KEY_FILE
    )]
    KeyAsPath {
        /// The flag or config key that gave it.
        given_by: String,
        /// Why the path did not open.
        cause: String,
    },
}

/// How a front end asked updates to be authenticated (`--tsig-key`, `--no-auth`, `--gss` and
/// its `--keytab`, `--principal`, `--gss-spn`).
#[derive(Debug, Clone, Default)]
pub struct AuthRequest {
    /// A TSIG key file.
    pub tsig_key: Option<std::path::PathBuf>,
    /// Unsigned updates, asked for explicitly.
    pub no_auth: bool,
    /// GSS-TSIG with Kerberos.
    pub gss: bool,
    /// With `gss`: a keytab for unattended runs.
    pub keytab: Option<std::path::PathBuf>,
    /// With `gss`: the client principal (default: the ticket cache's).
    pub principal: Option<String>,
    /// With `gss`: the DNS server's host name for its `DNS/<host>` principal.
    pub spn_host: Option<String>,
}

/// How to make a key file that only its owner can read, on this system.
const PRIVATE_KEY_FILE: &str = if cfg!(windows) {
    "`tsig-keygen NAME > FILE` on a BIND host, then `icacls FILE /inheritance:r /grant:r \"%USERNAME%:F\" *S-1-5-18:F *S-1-5-32-544:F`"
} else {
    "`tsig-keygen NAME > FILE; chmod 600 FILE`"
};

/// What to do when GSS-TSIG was asked of a build without it, on this system.
const GSS_NOT_BUILT_IN: &str = if cfg!(windows) {
    "GSS-TSIG (--gss) is not in the Windows build yet: sign with a TSIG key (--tsig-key), or run the Linux build with --gss"
} else {
    "this vlmcs-audit was built without GSS-TSIG support: rebuild with `cargo build --release --features gss` (needs libkrb5-dev and libclang-dev)"
};

/// Why no authentication could be chosen.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    /// The key (or keytab) that was named cannot be used.
    #[error(transparent)]
    Key(#[from] AuthError),
    /// An update was asked for and nothing authenticates it.
    #[error(
        "an update needs authentication: give --tsig-key FILE (or set {KEY_ENV}), or --no-auth for a zone that accepts unsigned updates"
    )]
    Missing,
    /// The keytab is not a file only this user can read.
    #[error("--keytab: {0}")]
    Keytab(#[source] crate::support::fsio::FileError),
    /// GSS-TSIG was asked for and this build has none.
    #[error("{}", GSS_NOT_BUILT_IN)]
    GssNotBuiltIn,
}

/// The authentication `request` asks for: GSS-TSIG; else the key file from the request or from
/// `config_key` (the config's `clean: tsig_key:`); else `--no-auth`; else the key in
/// [`KEY_ENV`]. An update (`needed`) must have one of them; a plan need not, but a key that is
/// named is checked at once.
pub fn resolve(
    request: &AuthRequest,
    config_key: Option<&Path>,
    needed: bool,
) -> Result<Auth, ResolveError> {
    if request.gss {
        return gss(request);
    }
    if let Some(path) = request.tsig_key.as_deref().or(config_key) {
        let given_by = if request.tsig_key.is_some() {
            "--tsig-key"
        } else {
            "the config's `clean: tsig_key:`"
        };
        return Ok(Auth::Tsig(load_key_file(path, given_by)?));
    }
    if request.no_auth {
        return Ok(Auth::None);
    }
    if let Some(key) = key_from_env(KEY_ENV)? {
        return Ok(Auth::Tsig(key));
    }
    if needed {
        return Err(ResolveError::Missing);
    }
    Ok(Auth::None)
}

#[cfg(feature = "gss")]
fn gss(request: &AuthRequest) -> Result<Auth, ResolveError> {
    if let Some(keytab) = &request.keytab {
        crate::support::fsio::check_secret(keytab, crate::support::fsio::KEYTAB)
            .map_err(ResolveError::Keytab)?;
    }
    Ok(Auth::Gss(crate::dns::gss::GssSettings {
        principal: request.principal.clone(),
        keytab: request.keytab.clone(),
        spn_host: request.spn_host.clone(),
    }))
}

#[cfg(not(feature = "gss"))]
fn gss(_request: &AuthRequest) -> Result<Auth, ResolveError> {
    Err(ResolveError::GssNotBuiltIn)
}

/// Reads a key file in the format `tsig-keygen` and `ddns-confgen` write: a regular file of
/// this user's (or root's) that no one else can read or write. `given_by` names where the path
/// came from (`--tsig-key`, a config key): a path that looks like a key itself (the
/// `name:secret` form given where a file is expected) is never shown, only where it came from.
pub fn load_key_file(path: &Path, given_by: &str) -> Result<TsigKey, AuthError> {
    let shown = path.display().to_string();
    if could_be_key_material(&shown) {
        let cause = match crate::support::fsio::read_secret(path, crate::support::fsio::TSIG_KEY) {
            Err(e) => e.without_path(),
            // A file by that name exists; its name still looks like a key, so say nothing of it.
            Ok(_) => "a file of that name exists, but a key's name must not look like a key".into(),
        };
        return Err(AuthError::KeyAsPath {
            given_by: given_by.to_string(),
            cause,
        });
    }
    let bytes = crate::support::fsio::read_secret(path, crate::support::fsio::TSIG_KEY)?;
    // Never quote the bytes: a non-UTF-8 file may still hold the secret.
    let text = String::from_utf8(bytes).map_err(|_| AuthError::Parse {
        origin: shown.clone(),
        message: "not UTF-8 text: a TSIG key file is text as `tsig-keygen` writes it".into(),
    })?;
    parse_key_text(&text, &shown)
}

/// Whether a text (a path that was given, a field of a key) could hold key material: a BIND key
/// block, or a `:`-separated part that could be a secret.
fn could_be_key_material(text: &str) -> bool {
    text.contains('{') || text.split(':').any(|part| could_be_secret(part.trim()))
}

/// The base64 alphabet with or without padding: `tsig-keygen` pads, people copying a secret by
/// hand often drop the `=`.
const BASE64_ANY_PADDING: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    base64::engine::GeneralPurposeConfig::new()
        .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
);

/// The fewest bytes a text must decode to for it to pass as an HMAC secret (the hash lengths,
/// what `tsig-keygen` makes, are 32, 48 and 64; hand-made keys of 16 exist).
const PLAUSIBLE_SECRET_BYTES: usize = 16;

/// Whether `text` decodes as base64 to something as long as a TSIG secret.
fn could_be_secret(text: &str) -> bool {
    decoded_len(text).is_some_and(|n| n >= PLAUSIBLE_SECRET_BYTES)
}

/// How many bytes `text` (whitespace ignored) decodes to as base64, if it is base64.
fn decoded_len(text: &str) -> Option<usize> {
    let compact: String = text.split_whitespace().collect();
    BASE64_ANY_PADDING.decode(compact).ok().map(|b| b.len())
}

/// Whether `len` is the length of a secret `tsig-keygen` or `ddns-confgen` makes.
fn keygen_length(len: usize) -> bool {
    matches!(len, 32 | 48 | 64)
}

/// Reads a key from the environment variable `var`, if it is set.
pub fn key_from_env(var: &str) -> Result<Option<TsigKey>, AuthError> {
    let Some(value) = std::env::var_os(var) else {
        return Ok(None);
    };
    key_from_value(
        &value.to_string_lossy(),
        &format!("environment variable {var}"),
    )
    .map(Some)
}

/// Reads a key given as text: a BIND `key { ... };` block or `[algorithm:]name:base64secret`.
pub(crate) fn key_from_value(value: &str, origin: &str) -> Result<TsigKey, AuthError> {
    let origin = origin.to_string();
    if value.contains('{') {
        return parse_key_text(value, &origin);
    }
    // `[algorithm:]name:secret`
    let parts: Vec<&str> = value.trim().split(':').collect();
    let (algorithm, name, secret) = match parts.as_slice() {
        [name, secret] => ("hmac-sha256", *name, *secret),
        [algorithm, name, secret] => (*algorithm, *name, *secret),
        _ => {
            return Err(AuthError::Parse {
                origin,
                message: "expected `[algorithm:]name:base64secret` or a BIND `key \"name\" { ... };` block".into(),
            });
        }
    };
    build_key(name, algorithm, secret, &origin)
}

/// Parses BIND `key "name" { algorithm hmac-sha256; secret "base64"; };` text. Exactly one key
/// must be present.
pub fn parse_key_text(text: &str, origin: &str) -> Result<TsigKey, AuthError> {
    let err = |message: String| AuthError::Parse {
        origin: origin.to_string(),
        message,
    };
    let tokens = tokenize(text).map_err(err)?;
    let mut keys = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        if tokens[i].text != "key" || tokens[i].quoted {
            i += 1;
            continue;
        }
        let name = tokens
            .get(i + 1)
            .ok_or_else(|| err(format!("line {}: `key` without a name", tokens[i].line)))?;
        if tokens.get(i + 2).map(|t| t.text.as_str()) != Some("{") {
            return Err(err(format!(
                "line {}: expected `{{` after the key name",
                name.line
            )));
        }
        let mut algorithm = None;
        let mut secret = String::new();
        let mut j = i + 3;
        loop {
            let Some(token) = tokens.get(j) else {
                return Err(err(format!(
                    "line {}: the key block has no closing `}}`",
                    name.line
                )));
            };
            match token.text.as_str() {
                "}" if !token.quoted => break,
                "algorithm" if !token.quoted => {
                    algorithm = tokens.get(j + 1).map(|t| t.text.clone());
                    j += 2;
                }
                "secret" if !token.quoted => {
                    j += 1;
                    // A secret may be split over several quoted strings.
                    while let Some(t) = tokens.get(j).filter(|t| t.quoted) {
                        secret.push_str(&t.text);
                        j += 1;
                    }
                }
                _ => j += 1,
            }
        }
        let algorithm = algorithm
            .ok_or_else(|| err(format!("line {}: the key has no `algorithm`", name.line)))?;
        if secret.is_empty() {
            return Err(err(format!("line {}: the key has no `secret`", name.line)));
        }
        keys.push(build_key(&name.text, &algorithm, &secret, origin)?);
        i = j + 1;
    }
    match keys.len() {
        0 => Err(err(
            "no `key \"name\" { algorithm ...; secret \"...\"; };` block found".into(),
        )),
        1 => Ok(keys.remove(0)),
        n => Err(err(format!("{n} keys found; give a file with exactly one"))),
    }
}

fn build_key(
    name: &str,
    algorithm: &str,
    secret: &str,
    origin: &str,
) -> Result<TsigKey, AuthError> {
    let err = |message: String| AuthError::Parse {
        origin: origin.to_string(),
        message,
    };
    let algorithm = match crate::model::normalize_name(algorithm).as_str() {
        "hmac-sha256" => TsigAlgorithm::HmacSha256,
        "hmac-sha384" => TsigAlgorithm::HmacSha384,
        "hmac-sha512" => TsigAlgorithm::HmacSha512,
        // Name an algorithm only when it is a known one: a value in the wrong field may be
        // the secret itself, and no error ever shows key material.
        known @ ("hmac-md5" | "hmac-sha1" | "hmac-sha224" | "gss-tsig" | "gss.microsoft.com") => {
            return Err(err(format!(
                "the algorithm {known} is not supported: use hmac-sha256, hmac-sha384 or hmac-sha512 (`tsig-keygen -a hmac-sha256 NAME`)"
            )));
        }
        _ => {
            return Err(err(
                "the algorithm is not one of hmac-sha256, hmac-sha384 or hmac-sha512 (`tsig-keygen -a hmac-sha256 NAME`); check the order of the fields".into(),
            ));
        }
    };
    // The fields are checked against each other before either is used: a secret in the
    // name's field would be shown in plans and logs and sent on the wire as the key's name.
    let name = name.trim();
    if name.contains(['+', '/', '=']) {
        return Err(err(
            "the key name contains `+`, `/` or `=` and looks like a base64 secret: check the order of the fields (`[algorithm:]name:secret`)".into(),
        ));
    }
    let name_bytes = decoded_len(crate::model::name::without_final_dot(name));
    let secret_bytes = decoded_len(secret);
    let name_could_be_secret = name_bytes.is_some_and(|n| n >= PLAUSIBLE_SECRET_BYTES);
    let secret_could_be_secret = secret_bytes.is_some_and(|n| n >= PLAUSIBLE_SECRET_BYTES);
    let swapped = name_could_be_secret
        && (!secret_could_be_secret
            || (name_bytes.is_some_and(keygen_length) && !secret_bytes.is_some_and(keygen_length)));
    if swapped {
        return Err(err(
            "the fields look swapped: the key name decodes as base64 to a secret's length and the secret does not (neither is shown); write `[algorithm:]name:secret`, or in a key file `key \"NAME\" { algorithm ...; secret \"BASE64\"; };`".into(),
        ));
    }
    let name = Name::from_ascii(name).map_err(|_| {
        err("the key name is not a valid DNS name; check the order of the fields (`[algorithm:]name:secret`)".into())
    })?;
    let secret = BASE64_ANY_PADDING
        .decode(secret.split_whitespace().collect::<String>())
        .map_err(|_| err("the secret is not valid base64".into()))?;
    if secret.is_empty() {
        return Err(err("the secret is empty".into()));
    }
    Ok(TsigKey {
        name,
        algorithm,
        secret,
    })
}

pub(crate) fn algorithm_name(algorithm: &TsigAlgorithm) -> String {
    crate::model::name::without_final_dot(&algorithm.to_name().to_ascii()).to_string()
}

struct Token {
    text: String,
    quoted: bool,
    line: usize,
}

/// named.conf tokens: words, quoted strings, `{ } ;`; comments (`#`, `//`, `/* */`) skipped.
fn tokenize(text: &str) -> Result<Vec<Token>, String> {
    let mut tokens = Vec::new();
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    let mut line = 1;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '\n' => {
                line += 1;
                i += 1;
            }
            c if c.is_whitespace() || c == ';' => i += 1,
            '#' => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
            }
            '/' if chars.get(i + 1) == Some(&'/') => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
            }
            '/' if chars.get(i + 1) == Some(&'*') => {
                i += 2;
                while i < chars.len() && !(chars[i] == '*' && chars.get(i + 1) == Some(&'/')) {
                    if chars[i] == '\n' {
                        line += 1;
                    }
                    i += 1;
                }
                i += 2;
            }
            '{' | '}' => {
                tokens.push(Token {
                    text: c.to_string(),
                    quoted: false,
                    line,
                });
                i += 1;
            }
            '"' => {
                let start = line;
                let mut s = String::new();
                i += 1;
                while i < chars.len() && chars[i] != '"' {
                    if chars[i] == '\n' {
                        line += 1;
                    }
                    s.push(chars[i]);
                    i += 1;
                }
                if i >= chars.len() {
                    return Err(format!("line {start}: unterminated quoted string"));
                }
                i += 1;
                tokens.push(Token {
                    text: s,
                    quoted: true,
                    line: start,
                });
            }
            _ => {
                let mut s = String::new();
                while i < chars.len() && !chars[i].is_whitespace() && !"{};\"".contains(chars[i]) {
                    s.push(chars[i]);
                    i += 1;
                }
                tokens.push(Token {
                    text: s,
                    quoted: false,
                    line,
                });
            }
        }
    }
    Ok(tokens)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEYGEN: &str = "key \"ddns-key.corp.example.com\" {\n\talgorithm hmac-sha256;\n\tsecret \"c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0IQ==\";\n};\n";

    #[test]
    fn reads_what_tsig_keygen_writes() {
        let key = parse_key_text(KEYGEN, "k").unwrap();
        assert_eq!(key.name.to_ascii(), "ddns-key.corp.example.com");
        assert_eq!(key.algorithm, TsigAlgorithm::HmacSha256);
        assert_eq!(key.secret, b"secret-secret-secret-secret!");
    }

    #[test]
    fn ddns_confgen_output_with_comments_is_read() {
        let text = "# To activate this key, place the following in named.conf\n/* a\nblock */\nkey \"ddns-key\" {\n\talgorithm hmac-sha512; // strong\n\tsecret \"c2Vj\" \"cmV0\";\n};\n# zone \"x\" { update-policy { grant ddns-key zonesub ANY; }; };\n";
        let key = parse_key_text(text, "k").unwrap();
        assert_eq!(key.algorithm, TsigAlgorithm::HmacSha512);
        assert_eq!(key.secret, b"secret");
    }

    #[test]
    fn bad_key_texts_get_specific_errors() {
        let e = |t: &str| parse_key_text(t, "key.conf").unwrap_err().to_string();
        assert!(e("").contains("no `key"));
        assert!(
            e("key \"k\" { algorithm hmac-md5; secret \"c2Vj\"; };")
                .contains("hmac-md5 is not supported")
        );
        assert!(e("key \"k\" { algorithm hmac-sha256; };").contains("no `secret`"));
        assert!(e("key \"k\" { secret \"c2Vj\"; };").contains("no `algorithm`"));
        assert!(e("key \"k\" { algorithm hmac-sha256; secret \"c2Vj").contains("unterminated"));
        let two = format!("{KEYGEN}{}", KEYGEN.replace("ddns-key", "other"));
        assert!(e(&two).contains("2 keys"));
        let bad = e("key \"k\" { algorithm hmac-sha256; secret \"not*base64!SECRETVALUE\"; };");
        assert!(bad.contains("not valid base64"), "{bad}");
        assert!(
            !bad.contains("SECRETVALUE"),
            "the secret leaked into an error: {bad}"
        );
    }

    #[test]
    fn debug_output_hides_the_secret() {
        let key = parse_key_text(KEYGEN, "k").unwrap();
        let shown = format!("{key:?} {:?}", Auth::Tsig(key.clone()));
        assert!(!shown.contains("c2VjcmV0"), "{shown}");
        assert!(!shown.contains("secret-secret"), "{shown}");
        assert!(shown.contains("<redacted>"));
        assert_eq!(
            Auth::Tsig(key).describe(),
            "TSIG key ddns-key.corp.example.com (hmac-sha256)"
        );
    }

    #[cfg(unix)]
    #[test]
    fn key_files_readable_by_others_are_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ddns.key");
        std::fs::write(&path, KEYGEN).unwrap();
        for mode in [0o644, 0o640, 0o660, 0o604] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            let err = load_key_file(&path, "k").unwrap_err().to_string();
            assert!(
                err.contains(&format!("mode {mode:04o}")) && err.contains("chmod 600"),
                "{err}"
            );
        }
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        load_key_file(&path, "k").unwrap();
    }

    #[test]
    fn no_parse_error_shows_key_material() {
        const SECRET: &str = "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0IQ==";
        let texts = [
            // The secret in the name's field (environment form), and in the algorithm's.
            format!("{SECRET}:ddns-key"),
            format!("hmac-sha256:{SECRET}:ddns-key"),
            format!("{SECRET}:ddns-key:{SECRET}"),
            format!("key \"ddns\" {{ algorithm {SECRET}; secret \"{SECRET}\"; }};"),
            format!("key \"{SECRET}\" {{ algorithm hmac-sha256; secret \"{SECRET}\"; }};"),
            format!("key \"ddns\" {{ algorithm hmac-sha256; secret \"{SECRET}*\"; }};"),
            format!("key \"ddns\" {{ algorithm hmac-sha256; secret \"{SECRET}\";"),
        ];
        for text in &texts {
            let err = if text.contains('{') {
                parse_key_text(text, "key.conf").unwrap_err().to_string()
            } else {
                let parts: Vec<&str> = text.split(':').collect();
                let (algorithm, name, secret) = match parts.as_slice() {
                    [n, s] => ("hmac-sha256", *n, *s),
                    [a, n, s] => (*a, *n, *s),
                    _ => unreachable!(),
                };
                build_key(name, algorithm, secret, "env")
                    .unwrap_err()
                    .to_string()
            };
            assert!(!err.contains("c2VjcmV0"), "key material in an error: {err}");
        }
    }

    /// 32 bytes, as `tsig-keygen` makes them, written without the `=` (no `+` or `/` in it).
    const UNPADDED: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY";

    #[test]
    fn swapped_fields_are_refused_without_echoing_either() {
        for value in [
            format!("hmac-sha256:{UNPADDED}:ddns-key"),
            format!("{UNPADDED}:tsig"),
            format!("hmac-sha256:{UNPADDED}:kmsupdatekey"),
            // A key name that is itself long base64 does not pass for the secret's length.
            format!("hmac-sha256:{UNPADDED}:kmsupdatekeyforcontrollers"),
        ] {
            let err = key_from_value(&value, "environment variable VLMCS_TSIG_KEY")
                .unwrap_err()
                .to_string();
            assert!(err.contains("swapped"), "{value}: {err}");
            assert!(!err.contains("MDEy") && !err.contains("tsig:"), "{err}");
            assert!(
                !err.contains("ddns-key") && !err.contains("kmsupdatekey"),
                "{err}"
            );
        }
        let text = format!("key \"{UNPADDED}\" {{ algorithm hmac-sha256; secret \"c2Vj\"; }};");
        let err = parse_key_text(&text, "k").unwrap_err().to_string();
        assert!(err.contains("swapped") && !err.contains("MDEy"), "{err}");
    }

    #[test]
    fn right_fields_pass_an_unpadded_secret_and_a_long_camel_case_name_included() {
        let key = key_from_value(&format!("hmac-sha256:ddns-key:{UNPADDED}"), "env").unwrap();
        assert_eq!(key.secret, b"0123456789abcdef0123456789abcdef");
        let padded = format!("{UNPADDED}=");
        let key =
            key_from_value(&format!("KmsUpdateKeyForDomainControllers:{padded}"), "env").unwrap();
        assert_eq!(key.name.to_ascii(), "KmsUpdateKeyForDomainControllers");
        assert_eq!(key.secret.len(), 32);
    }

    #[test]
    fn a_key_given_where_a_file_is_expected_is_never_shown() {
        for value in [
            format!("hmac-sha256:ddns-key:{UNPADDED}"),
            UNPADDED.to_string(),
            format!("key \"k\" {{ secret \"{UNPADDED}\"; }};"),
        ] {
            let err = load_key_file(Path::new(&value), "--tsig-key")
                .unwrap_err()
                .to_string();
            assert!(err.starts_with("--tsig-key takes the path"), "{err}");
            assert!(!err.contains("MDEy"), "{err}");
            assert!(err.contains("No such file"), "{err}");
        }
        // An ordinary path is named, as any file error names it.
        let err = load_key_file(Path::new("/nonexistent/ddns.key"), "--tsig-key")
            .unwrap_err()
            .to_string();
        assert!(err.contains("/nonexistent/ddns.key"), "{err}");
    }

    #[test]
    fn env_forms_are_read() {
        // The value as the environment variable would carry it (no set_var: tests run in threads).
        let a = key_from_value("hmac-sha384:k1.example:c2VjcmV0", "env").unwrap();
        assert_eq!(a.algorithm, TsigAlgorithm::HmacSha384);
        assert_eq!(a.name.to_ascii(), "k1.example");
        let b = key_from_value(KEYGEN, "env").unwrap();
        assert_eq!(b.name.to_ascii(), "ddns-key.corp.example.com");
        assert!(key_from_value("nonsense", "env").is_err());
        assert!(key_from_env("VLMCS_TEST_KEY_UNSET").unwrap().is_none());
    }
}
