//! `return_to`: where the browser goes after login, limited to paths of this site.

use std::fmt;

use serde::{Deserialize, Serialize};
use url::Url;

/// Longest `return_to` kept; longer values fall back to the default.
pub const MAX_RETURN_TO_LEN: usize = 1024;

/// A same-site relative path (with optional query and fragment) to redirect to after login.
///
/// A `ReturnTo` always starts with a single `/`, never with `//` or `/\`, and holds no
/// control character, so a browser resolves it against this site's origin and nowhere
/// else. Build one with [`ReturnTo::sanitize`] (untrusted input, falls back to a default)
/// or [`ReturnTo::parse`] (configuration, fails instead).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ReturnTo(String);

/// Why a value is not a same-site path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NotSameSitePath;

impl fmt::Display for NotSameSitePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("must be a path on this site starting with a single '/' (like /dashboard)")
    }
}

impl ReturnTo {
    /// The root path `/`.
    pub fn root() -> Self {
        ReturnTo("/".to_owned())
    }

    /// Keeps `raw` if it is a same-site path, otherwise returns `default`.
    pub fn sanitize(raw: Option<&str>, default: &ReturnTo) -> ReturnTo {
        raw.and_then(|raw| Self::parse(raw).ok())
            .unwrap_or_else(|| default.clone())
    }

    /// Accepts `raw` only if it is a same-site path; the result is normalized
    /// (`/a/../b` becomes `/b`, unsafe characters percent-encoded).
    pub fn parse(raw: &str) -> Result<ReturnTo, NotSameSitePath> {
        if !looks_same_site_decoded(raw) {
            return Err(NotSameSitePath);
        }
        // Resolve against a placeholder origin, exactly as a browser would, and keep
        // the result only if it stayed on that origin.
        const ORIGIN: &str = "https://same-site.invalid";
        let base = Url::parse(ORIGIN).map_err(|_| NotSameSitePath)?;
        let joined = base.join(raw).map_err(|_| NotSameSitePath)?;
        if joined.origin() != base.origin()
            || !joined.username().is_empty()
            || joined.password().is_some()
        {
            return Err(NotSameSitePath);
        }
        // Dot segments may have been removed (`%2E.` counts as `..`): the result gets
        // the same checks as the input.
        let normalized = &joined[url::Position::BeforePath..];
        if !looks_same_site_decoded(normalized) {
            return Err(NotSameSitePath);
        }
        Ok(ReturnTo(normalized.to_owned()))
    }

    /// The path, ready for a `Location` header.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Length and [`looks_same_site`] for the value and each of its percent-decodings:
/// `/%2F%2Fevil.com` or `/%5Cevil.com` are decoded by some servers and proxies before a
/// browser sees them.
fn looks_same_site_decoded(value: &str) -> bool {
    if value.is_empty() || value.len() > MAX_RETURN_TO_LEN || !looks_same_site(value) {
        return false;
    }
    let mut decoded = value.to_owned();
    for _ in 0..3 {
        let next = percent_encoding::percent_decode_str(&decoded)
            .decode_utf8_lossy()
            .into_owned();
        if !looks_same_site(&next) {
            return false;
        }
        if next == decoded {
            break;
        }
        decoded = next;
    }
    true
}

/// The checks that must hold both for the raw value and for every decoding of it.
fn looks_same_site(value: &str) -> bool {
    let bytes = value.as_bytes();
    bytes.first() == Some(&b'/')
        && !matches!(bytes.get(1), Some(b'/' | b'\\'))
        && !value.contains('\\')
        && !value.chars().any(|c| c.is_control() || is_invisible(c))
}

/// Characters that render as nothing yet change how a URL is read or shown.
fn is_invisible(c: char) -> bool {
    matches!(c, '\u{200B}'..='\u{200F}' | '\u{2028}'..='\u{202E}' | '\u{2060}'..='\u{2064}' | '\u{FEFF}')
}

impl fmt::Display for ReturnTo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for ReturnTo {
    type Error = NotSameSitePath;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        ReturnTo::parse(&value)
    }
}

impl From<ReturnTo> for String {
    fn from(value: ReturnTo) -> Self {
        value.0
    }
}

impl Default for ReturnTo {
    fn default() -> Self {
        ReturnTo::root()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sanitize(raw: &str) -> String {
        ReturnTo::sanitize(Some(raw), &ReturnTo::root()).0
    }

    #[test]
    fn hostile_values_fall_back_to_the_default() {
        let long = format!("/{}", "a".repeat(MAX_RETURN_TO_LEN));
        let hostile = [
            "",
            "//evil.com",
            "///evil.com",
            "/\\evil.com",
            "\\\\evil.com",
            "/\\/evil.com",
            "https://evil.com",
            "http://evil.com/path",
            "HTTPS://evil.com",
            "javascript:alert(1)",
            "JaVaScRiPt:alert(1)",
            "data:text/html,<script>alert(1)</script>",
            "evil.com",
            "//evil.com/%2F..",
            "/%2F%2Fevil.com",
            "/%2f%2fevil.com",
            "/%5Cevil.com",
            "/%5cevil.com",
            "/%252F%252Fevil.com",
            "/\t/evil.com",
            "/\n/evil.com",
            "/path\r\nSet-Cookie: a=b",
            "/%0d%0aSet-Cookie:%20a=b",
            "/\u{0000}",
            "/\u{202E}moc.live",
            "/\u{200B}/evil.com",
            " /leading-space",
            "//@evil.com",
            "/.//evil.com",
            "/..//evil.com",
            "/a/../..//evil.com",
            // Found by the fuzzer: `%2E.` is a dot segment, and what is left decodes to `//`.
            "/%2E..e/%2E./%2F./",
            long.as_str(),
        ];
        for raw in hostile {
            assert_eq!(sanitize(raw), "/", "{raw:?} must not survive");
        }
    }

    #[test]
    fn legitimate_paths_survive() {
        let legit = [
            ("/", "/"),
            ("/private", "/private"),
            ("/private?tab=2&x=y", "/private?tab=2&x=y"),
            ("/search?q=a%20b", "/search?q=a%20b"),
            ("/a/b/../c", "/a/c"),
            ("/docs#section-2", "/docs#section-2"),
            ("/caf\u{e9}", "/caf%C3%A9"),
            (
                "/me?return=https://x.example",
                "/me?return=https://x.example",
            ),
        ];
        for (raw, expected) in legit {
            assert_eq!(sanitize(raw), expected, "{raw:?}");
        }
    }

    #[test]
    fn sanitizing_is_idempotent() {
        for raw in [
            "/a/./b/../c?x=%2F#f",
            "/%2E%2E/x",
            "/caf\u{e9}",
            "/a/%2e./b",
        ] {
            let once = sanitize(raw);
            assert_eq!(sanitize(&once), once, "{raw:?}");
        }
    }

    #[test]
    fn missing_value_uses_the_configured_default() {
        let default = ReturnTo::parse("/home").unwrap();
        assert_eq!(ReturnTo::sanitize(None, &default), default);
        assert_eq!(ReturnTo::sanitize(Some("//x"), &default), default);
    }

    #[test]
    fn deserializing_rechecks_the_value() {
        assert!(serde_json::from_str::<ReturnTo>("\"//evil.com\"").is_err());
        let ok: ReturnTo = serde_json::from_str("\"/ok\"").unwrap();
        assert_eq!(ok.as_str(), "/ok");
    }
}
