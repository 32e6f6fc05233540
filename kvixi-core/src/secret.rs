//! Credentials of the Kvixi flow, wrapped so that `Debug` never prints them.
//!
//! Each value is read only through an explicit `.secret()`, as in `oauth2-rs`: a
//! stray `{:?}` in a log line prints `[REDACTED]`.

use std::fmt;

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

macro_rules! secret_newtype {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone)]
        pub struct $name(SecretString);

        impl $name {
            /// Wraps a value.
            pub fn new(value: impl Into<String>) -> Self {
                Self(SecretString::from(value.into()))
            }

            /// The value itself: call only where it leaves for Kvixi.
            pub fn secret(&self) -> &str {
                self.0.expose_secret()
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(concat!(stringify!($name), "([REDACTED])"))
            }
        }

        impl PartialEq for $name {
            fn eq(&self, other: &Self) -> bool {
                self.secret() == other.secret()
            }
        }

        impl Eq for $name {}
    };
}

secret_newtype!(
    /// The app secret from Kvixi's app dashboard. It never reaches a browser or a log.
    AppSecret
);
secret_newtype!(
    /// The single-use key Kvixi hands the browser on the way back to the callback.
    AuthKey
);
secret_newtype!(
    /// The token for calling Kvixi on the user's behalf; valid for at most an hour.
    AccessToken
);

// The access token lives in the server-side session, so it must (de)serialize.
impl Serialize for AccessToken {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.secret())
    }
}

impl<'de> Deserialize<'de> for AccessToken {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(AccessToken::new)
    }
}

/// Replaces every occurrence of each non-empty secret in `text` by `[REDACTED]`.
///
/// Used on provider messages before they are kept in an error: a hostile or buggy
/// provider may echo what it was sent.
pub(crate) fn redact(text: &str, secrets: &[&str]) -> String {
    let mut out = text.to_owned();
    for secret in secrets.iter().filter(|s| !s.is_empty()) {
        out = out.replace(secret, "[REDACTED]");
    }
    out
}

/// `text` without `url` or the password `url` carries: for the errors of a Redis or
/// database URL, which must never repeat a credential.
pub(crate) fn redact_url(text: &str, url: &str) -> String {
    let password = url::Url::parse(url)
        .ok()
        .and_then(|parsed| parsed.password().map(str::to_owned))
        .unwrap_or_default();
    redact(text, &[url, &password])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_prints_the_value() {
        let token = AccessToken::new("tok-123");
        let secret = AppSecret::new("shh");
        let key = AuthKey::new("key-9");
        let printed = format!("{token:?} {secret:?} {key:?}");
        assert!(!printed.contains("tok-123"));
        assert!(!printed.contains("shh"));
        assert!(!printed.contains("key-9"));
        assert!(printed.contains("[REDACTED]"));
    }

    #[test]
    fn access_token_round_trips_through_json() {
        let token = AccessToken::new("tok-123");
        let json = serde_json::to_string(&token).unwrap();
        assert_eq!(json, "\"tok-123\"");
        let back: AccessToken = serde_json::from_str(&json).unwrap();
        assert_eq!(back, token);
    }

    #[test]
    fn redact_hides_every_secret() {
        let out = redact("bad key abc and secret xyz", &["abc", "xyz", ""]);
        assert_eq!(out, "bad key [REDACTED] and secret [REDACTED]");
    }
}

/// The key that encrypts and authenticates this library's cookies (the `cookie`
/// crate's private jar: AES-256-GCM, the cookie's name as associated data).
///
/// Every instance behind a load balancer needs the same key (`KVIXI_COOKIE_KEY`).
#[derive(Clone)]
pub struct CookieKey(cookie::Key);

impl CookieKey {
    /// Fewest bytes of key material accepted.
    pub const MIN_LEN: usize = 32;

    /// A key derived from `material` (at least [`CookieKey::MIN_LEN`] bytes), or
    /// `None` when it is too short.
    pub fn derive(material: &[u8]) -> Option<CookieKey> {
        (material.len() >= Self::MIN_LEN).then(|| CookieKey(cookie::Key::derive_from(material)))
    }

    /// A random key, good for one process only.
    pub fn random() -> CookieKey {
        CookieKey(cookie::Key::generate())
    }

    /// The 64 bytes of key material, for an adapter whose framework encrypts its own
    /// session cookie (derive a key of its own from them).
    pub fn secret(&self) -> &[u8] {
        self.0.master()
    }

    /// `value` encrypted and authenticated for a cookie called `name`.
    pub fn seal(&self, name: &str, value: &str) -> String {
        let mut jar = cookie::CookieJar::new();
        jar.private_mut(&self.0)
            .add(cookie::Cookie::new(name.to_owned(), value.to_owned()));
        jar.get(name)
            .map(|sealed| sealed.value().to_owned())
            .unwrap_or_default()
    }

    /// The value sealed by [`CookieKey::seal`] for `name`, or `None` when `sealed` was
    /// not made with this key for this name (forged, tampered with, or another cookie's).
    /// A percent-encoded value (as some clients send cookies back) is decoded first:
    /// a sealed value is base64, which has no `%`.
    pub fn open(&self, name: &str, sealed: &str) -> Option<String> {
        let sealed = percent_encoding::percent_decode_str(sealed)
            .decode_utf8()
            .ok()?
            .into_owned();
        let jar = cookie::CookieJar::new();
        jar.private(&self.0)
            .decrypt(cookie::Cookie::new(name.to_owned(), sealed))
            .map(|cookie| cookie.value().to_owned())
    }
}

impl fmt::Debug for CookieKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CookieKey([REDACTED])")
    }
}
