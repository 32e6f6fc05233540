//! The HTTP client for Kvixi's API: the key exchange and the profile read.

use std::sync::Once;
use std::time::Duration;

use serde_json::Value;
use tracing::Instrument;
use url::Url;

use crate::config::Config;
use crate::error::Error;
use crate::secret::{AccessToken, AuthKey, redact};
use crate::user::KvixiUser;

/// Calls Kvixi's API for one app. Cheap to clone: one pooled connection set.
///
/// No error it returns, and no tracing event it emits, contains the app secret, an
/// auth_key or an access token; redirects from the API are not followed.
#[derive(Clone, Debug)]
pub struct KvixiClient {
    http: reqwest::Client,
    config: Config,
}

impl KvixiClient {
    /// Builds the client: rustls (ring), no redirects, the configured timeout.
    pub fn new(config: Config) -> Result<KvixiClient, Error> {
        install_crypto_provider();
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(config.http_timeout())
            .timeout(config.http_timeout())
            .user_agent(concat!("kvixi-rs/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::Config {
                setting: "http client",
                problem: format!("could not be built: {}", e.without_url()),
            })?;
        Ok(KvixiClient { http, config })
    }

    /// The configuration this client uses.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Step 2: exchanges a single-use auth_key for an access token.
    pub async fn authorize(&self, auth_key: &AuthKey) -> Result<AccessToken, Error> {
        let url = self.endpoint(
            "/api/authorize",
            &[
                ("app_id", self.config.app_id()),
                ("app_secret", self.config.app_secret().secret()),
                ("auth_key", auth_key.secret()),
            ],
        );
        let secrets = [self.config.app_secret().secret(), auth_key.secret()];
        let span = tracing::debug_span!("kvixi.authorize", app_id = self.config.app_id());
        let started = std::time::Instant::now();
        let body = self.get_json(url, &secrets).instrument(span).await;
        crate::telemetry::provider_call("authorize", started.elapsed());
        let body = body?;
        match body.get("access_token") {
            Some(Value::String(token)) if !token.is_empty() => Ok(AccessToken::new(token.clone())),
            _ => Err(Error::ProviderMalformed {
                problem: "the authorize answer has no non-empty access_token".into(),
            }),
        }
    }

    /// Step 3: reads the profile of the token's user.
    pub async fn user_info(&self, token: &AccessToken) -> Result<KvixiUser, Error> {
        let url = self.endpoint("/api/get_user_info", &[("access_token", token.secret())]);
        let span = tracing::debug_span!("kvixi.user_info");
        let started = std::time::Instant::now();
        let body = self
            .get_json(url, &[token.secret(), self.config.app_secret().secret()])
            .instrument(span)
            .await;
        crate::telemetry::provider_call("user_info", started.elapsed());
        let body = body?;
        KvixiUser::from_user_info_response(&body).map_err(|problem| Error::ProviderMalformed {
            problem: problem.to_string(),
        })
    }

    fn endpoint(&self, path: &str, params: &[(&str, &str)]) -> Url {
        let mut url = self.config.base_url().clone();
        url.set_path(path);
        url.query_pairs_mut().clear().extend_pairs(params);
        url
    }

    /// GETs `url` and reads a JSON answer, deciding failure by the body as Kvixi
    /// answers errors with HTTP 200. `secrets` are scrubbed from any provider message.
    async fn get_json(&self, url: Url, secrets: &[&str]) -> Result<Value, Error> {
        let limit = self.config.max_response_bytes();
        let timeout = self.config.http_timeout();
        let call = async {
            let mut response = self
                .http
                .get(url)
                .send()
                .await
                .map_err(|e| transport(&e, timeout))?;
            let status = response.status();
            tracing::debug!(status = status.as_u16(), "kvixi answered");
            if !status.is_success() {
                return Err(Error::ProviderStatus {
                    status: status.as_u16(),
                });
            }
            if response
                .content_length()
                .is_some_and(|len| len > limit as u64)
            {
                return Err(Error::ProviderBodyTooLarge { limit });
            }
            let mut body = Vec::new();
            while let Some(chunk) = response.chunk().await.map_err(|e| transport(&e, timeout))? {
                if body.len() + chunk.len() > limit {
                    return Err(Error::ProviderBodyTooLarge { limit });
                }
                body.extend_from_slice(&chunk);
            }
            Ok(body)
        };
        // One deadline for connect, headers and body together.
        let body = tokio::time::timeout(timeout, call)
            .await
            .map_err(|_| Error::ProviderTimeout { after: timeout })??;
        let value: Value = serde_json::from_slice(&body).map_err(|e| Error::ProviderMalformed {
            problem: format!("the answer is not JSON ({e})"),
        })?;
        if value.get("error").is_some_and(is_truthy) {
            let message = value
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("(no message)");
            return Err(classify(&redact(truncate(message, 300), secrets)));
        }
        Ok(value)
    }
}

/// Maps Kvixi's error messages to what the caller can do about them.
fn classify(message: &str) -> Error {
    let lower = message.to_ascii_lowercase();
    let provider_message = message.to_owned();
    if lower.contains("expired access_token") {
        Error::TokenExpired
    } else if lower.contains("invalid app_id")
        || lower.contains("invalid app_secret")
        || lower.contains("doesn't exist or has been disabled")
        || lower.contains("disabled by the admin")
    {
        Error::AppCredentialsRejected { provider_message }
    } else if lower.contains("invalid auth_key") {
        Error::AuthKeyRejected { provider_message }
    } else {
        Error::ProviderError { provider_message }
    }
}

fn is_truthy(value: &Value) -> bool {
    match value {
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|n| n != 0.0),
        Value::String(s) => !s.is_empty() && s != "0" && s != "false",
        Value::Null => false,
        Value::Array(_) | Value::Object(_) => true,
    }
}

fn truncate(text: &str, max_chars: usize) -> &str {
    match text.char_indices().nth(max_chars) {
        Some((at, _)) => &text[..at],
        None => text,
    }
}

/// A reqwest error, stripped of its URL (which holds the secret and keys).
fn transport(error: &reqwest::Error, timeout: Duration) -> Error {
    if error.is_timeout() {
        return Error::ProviderTimeout { after: timeout };
    }
    let problem = describe(error);
    if error.is_connect() {
        Error::ProviderUnreachable { problem }
    } else {
        Error::ProviderMalformed { problem }
    }
}

/// The error chain without any URL.
fn describe(error: &reqwest::Error) -> String {
    let mut text = String::new();
    let mut source: Option<&dyn std::error::Error> = std::error::Error::source(error);
    text.push_str(if error.is_connect() {
        "connection failed"
    } else if error.is_body() || error.is_decode() {
        "reading the answer failed"
    } else {
        "request failed"
    });
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !cause_text.contains("http://") && !cause_text.contains("https://") {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// reqwest is built without a default TLS crypto provider (to avoid aws-lc-sys);
/// install ring's once unless the application installed one already.
fn install_crypto_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        if rustls::crypto::CryptoProvider::get_default().is_none() {
            let _ = rustls::crypto::ring::default_provider().install_default();
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_messages_are_classified() {
        assert!(matches!(
            classify("Bad Request, expired access_token"),
            Error::TokenExpired
        ));
        assert!(matches!(
            classify("Bad Request, invalid app_secret"),
            Error::AppCredentialsRejected { .. }
        ));
        assert!(matches!(
            classify("Bad Request, invalid app_id"),
            Error::AppCredentialsRejected { .. }
        ));
        assert!(matches!(
            classify(
                "Error, the application you are trying to use doesn't exist or has been disabled"
            ),
            Error::AppCredentialsRejected { .. }
        ));
        assert!(matches!(
            classify("Bad Request, invalid auth_key"),
            Error::AuthKeyRejected { .. }
        ));
        assert!(matches!(
            classify("Please try again later"),
            Error::ProviderError { .. }
        ));
    }

    #[test]
    fn truncation_respects_char_boundaries() {
        assert_eq!(truncate("héllo", 2), "hé");
        assert_eq!(truncate("hi", 10), "hi");
    }
}
