//! Framework-neutral HTTP answers, which each adapter turns into its own response type.

use serde_json::json;

use crate::config::Config;
use crate::error::Error;

const NOT_LOGGED_IN_JSON: &str =
    r#"{"error":"not_logged_in","message":"You need to log in with Kvixi to see this page."}"#;

/// An HTTP answer decided by the core. Adapters copy it into their response type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    /// The HTTP status.
    pub status: u16,
    /// The `Location` header, for redirects.
    pub location: Option<String>,
    /// The `Content-Type` header, when there is a body.
    pub content_type: Option<&'static str>,
    /// The body (may be empty).
    pub body: String,
    /// One `Set-Cookie` header of the flow's own (the login cookie), to be appended
    /// beside the session layer's.
    pub set_cookie: Option<String>,
    /// The `Retry-After` header (seconds), on answers that know when to try again.
    pub retry_after: Option<String>,
}

impl Reply {
    /// Every header of the reply: `Location` and `Content-Type` when set, and on every
    /// flow answer `Cache-Control: no-store` (nothing here may be cached) and
    /// `Referrer-Policy: no-referrer` (a callback URL holds an auth_key); `Set-Cookie`
    /// when the flow sets its login cookie (append it: the session layer may set another).
    pub fn headers(&self) -> impl Iterator<Item = (&'static str, &str)> {
        [
            ("location", self.location.as_deref()),
            ("content-type", self.content_type),
            ("cache-control", Some("no-store")),
            ("referrer-policy", Some("no-referrer")),
            ("set-cookie", self.set_cookie.as_deref()),
            ("retry-after", self.retry_after.as_deref()),
        ]
        .into_iter()
        .filter_map(|(name, value)| value.map(|value| (name, value)))
    }

    /// A 303 See Other to `location`.
    pub fn see_other(location: impl Into<String>) -> Reply {
        Reply {
            status: 303,
            location: Some(location.into()),
            content_type: None,
            body: String::new(),
            set_cookie: None,
            retry_after: None,
        }
    }

    /// A plain-text answer (an adapter's own failure, such as a missing layer).
    pub fn plain(status: u16, body: impl Into<String>) -> Reply {
        Reply {
            status,
            location: None,
            content_type: Some("text/plain; charset=utf-8"),
            body: body.into(),
            set_cookie: None,
            retry_after: None,
        }
    }

    /// This reply with the flow's `Set-Cookie` header.
    pub fn with_cookie(mut self, set_cookie: Option<String>) -> Reply {
        self.set_cookie = set_cookie;
        self
    }

    /// The 401 JSON answer for an API request without a user; the same as
    /// `Reply::error(config, &Error::NotLoggedIn, true)`, without building it each time
    /// (every anonymous API request gets it).
    pub fn not_logged_in_json() -> Reply {
        Reply {
            status: 401,
            location: None,
            content_type: Some("application/json"),
            body: NOT_LOGGED_IN_JSON.to_owned(),
            set_cookie: None,
            retry_after: None,
        }
    }

    /// The page (or JSON) for a failed request: the status and a user-safe message,
    /// with a "try again" link to the login route. Nothing of Kvixi's own message.
    pub fn error(config: &Config, error: &Error, prefers_json: bool) -> Reply {
        if prefers_json {
            return Reply {
                status: error.status(),
                location: None,
                content_type: Some("application/json"),
                body: json!({"error": error.code(), "message": error.user_message()}).to_string(),
                set_cookie: None,
                retry_after: error.retry_after().map(|seconds| seconds.to_string()),
            };
        }
        let login = html_escape::encode_double_quoted_attribute(config.login_path());
        let title = if error.is_provider_failure() {
            "Kvixi is not answering properly"
        } else if matches!(error, Error::SessionStoreUnavailable { .. }) {
            "Sessions are unavailable for a moment"
        } else if matches!(error, Error::NotAllowed) {
            "This page is not open to your account"
        } else {
            "Login with Kvixi did not complete"
        };
        let body = format!(
            "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<title>{title}</title>\
<style>body{{font-family:system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem;color:#222}}\
a.button{{display:inline-block;padding:.5rem 1rem;background:#3457d5;color:#fff;border-radius:.3rem;text-decoration:none}}\
code{{color:#666}}</style></head>\
<body><h1>{title}</h1><p>{message}</p>\
<p><a class=\"button\" id=\"try-again\" href=\"{login}\">Try again</a> <a href=\"/\">Home</a></p>\
<p><code>{code} ({status})</code></p></body></html>\n",
            message = html_escape::encode_text(error.user_message()),
            code = error.code(),
            status = error.status(),
        );
        Reply {
            status: error.status(),
            location: None,
            content_type: Some("text/html; charset=utf-8"),
            body,
            set_cookie: None,
            retry_after: error.retry_after().map(|seconds| seconds.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        Config::builder("a", "s", "http://localhost/cb")
            .build()
            .unwrap()
    }

    #[test]
    fn html_error_page_offers_try_again_and_hides_the_provider_message() {
        let err = Error::ProviderError {
            provider_message: "<script>x</script> db password".into(),
        };
        let reply = Reply::error(&config(), &err, false);
        assert_eq!(reply.status, 502);
        assert!(reply.body.contains("Try again"));
        assert!(reply.body.contains("href=\"/auth/kvixi/login\""));
        assert!(!reply.body.contains("db password"));
        assert!(!reply.body.contains("<script>"));
    }

    #[test]
    fn every_reply_forbids_caching_and_referrers() {
        let reply = Reply::see_other("/next");
        let headers: Vec<_> = reply.headers().collect();
        assert_eq!(
            headers,
            [
                ("location", "/next"),
                ("cache-control", "no-store"),
                ("referrer-policy", "no-referrer")
            ]
        );
    }

    #[test]
    fn the_prebuilt_401_is_the_generic_one() {
        assert_eq!(
            Reply::not_logged_in_json(),
            Reply::error(&config(), &Error::NotLoggedIn, true)
        );
    }

    #[test]
    fn json_error_names_a_stable_code() {
        let reply = Reply::error(&config(), &Error::NoPendingLogin, true);
        assert_eq!(reply.status, 400);
        assert_eq!(reply.content_type, Some("application/json"));
        let body: serde_json::Value = serde_json::from_str(&reply.body).unwrap();
        assert_eq!(body["error"], "no_pending_login");
    }
}
