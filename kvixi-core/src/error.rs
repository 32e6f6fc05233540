//! The one error type of kvixi-core, with its HTTP status and user-safe message.

use std::time::Duration;

/// Everything that can go wrong in the Kvixi login flow.
///
/// `Display` is for the developer (logs): it may include Kvixi's own message, but never
/// the app secret, an auth_key or an access token. What an end user may see is
/// [`Error::user_message`]; what the response status is, [`Error::status`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The configuration is unusable; `setting` names the variable or builder method.
    #[error("{setting} {problem}")]
    Config {
        /// The environment variable or builder method at fault.
        setting: &'static str,
        /// What is wrong and how to fix it.
        problem: String,
    },
    /// A callback arrived but no login was started in this browser session (login CSRF,
    /// a replayed link, or cookies blocked).
    #[error("callback without a pending login in this session")]
    NoPendingLogin,
    /// The login was started too long ago.
    #[error("the pending login is older than {max:?}")]
    PendingLoginExpired {
        /// The configured lifetime of a pending login.
        max: Duration,
    },
    /// The person refused the app on Kvixi's page.
    #[error("the person denied access on Kvixi")]
    AccessDenied,
    /// The callback has no `auth_key`, or an empty one.
    #[error("callback without an auth_key")]
    MissingAuthKey,
    /// The callback's `auth_key` is not a plausible key (too long, odd characters, repeated).
    #[error("callback with a malformed auth_key")]
    MalformedAuthKey,
    /// Kvixi refused the auth_key (already used, unknown or expired).
    #[error("Kvixi refused the auth_key: {provider_message}")]
    AuthKeyRejected {
        /// Kvixi's message, for the developer.
        provider_message: String,
    },
    /// The application's `on_login` hook refused this user.
    #[error("the application refused the login: {reason}")]
    LoginRefused {
        /// The reason the hook gave, for the developer.
        reason: String,
    },
    /// The application's `on_login` hook could not decide now (its own database failed):
    /// nothing stored, the browser may log in again in a moment.
    #[error("the application could not admit the login now: {reason}")]
    LoginUnavailable {
        /// The reason the hook gave, for the developer.
        reason: String,
    },
    /// Kvixi says the app id or secret is wrong, or the app is disabled.
    #[error("Kvixi refused the app's credentials: {provider_message}")]
    AppCredentialsRejected {
        /// Kvixi's message, for the developer.
        provider_message: String,
    },
    /// The access token has expired; a new login is needed to get another.
    #[error("the Kvixi access token has expired")]
    TokenExpired,
    /// Nobody is logged in.
    #[error("not logged in")]
    NotLoggedIn,
    /// A user is logged in, and a route-group guard's predicate refuses them.
    #[error("the logged-in user is not allowed on this route")]
    NotAllowed,
    /// A user is logged in, but longer ago than a recent-login guard accepts
    /// ([`Requirement::recent`](crate::guard::Requirement::recent)): log in again.
    #[error("the login is older than this route accepts")]
    LoginTooOld,
    /// "Your devices": the handle names none of the user's listed sessions (or is not a
    /// handle at all). Says nothing more, whoever's it is.
    #[error("no such session of the user's")]
    UnknownSession,
    /// Kvixi answered with an error this library does not classify.
    #[error("Kvixi answered with an error: {provider_message}")]
    ProviderError {
        /// Kvixi's message, for the developer.
        provider_message: String,
    },
    /// Kvixi answered with a non-success HTTP status.
    #[error("Kvixi answered HTTP {status}")]
    ProviderStatus {
        /// The HTTP status code.
        status: u16,
    },
    /// Kvixi's answer is not what the API documents.
    #[error("Kvixi's answer is malformed: {problem}")]
    ProviderMalformed {
        /// What is wrong with it.
        problem: String,
    },
    /// Kvixi's answer is larger than the configured cap.
    #[error("Kvixi's answer is larger than {limit} bytes")]
    ProviderBodyTooLarge {
        /// The cap, in bytes.
        limit: usize,
    },
    /// Kvixi did not answer in time.
    #[error("Kvixi did not answer within {after:?}")]
    ProviderTimeout {
        /// The configured timeout.
        after: Duration,
    },
    /// Kvixi could not be reached (DNS, connection refused, TLS).
    #[error("Kvixi is unreachable: {problem}")]
    ProviderUnreachable {
        /// The transport error, without its URL.
        problem: String,
    },
    /// Every slot for calls to Kvixi stayed taken (Kvixi is slow and many callbacks are
    /// waiting on it): the callback was not tried, its pending login is still good.
    #[error("too many calls to Kvixi in flight; retry after {retry_after} s")]
    ProviderBusy {
        /// Seconds after which to try again (`Retry-After`).
        retry_after: u64,
    },
    /// Kvixi has been failing (timeouts, no connection, 5xx), so the circuit breaker
    /// answers at once without calling it: the pending login is still good.
    #[error("Kvixi is failing; calls to it resume in {retry_after} s")]
    ProviderCircuitOpen {
        /// Seconds until the breaker lets a call through again (`Retry-After`).
        retry_after: u64,
    },
    /// The session could not be used (a value that does not serialize, a misuse).
    #[error("session error: {0}")]
    Session(String),
    /// The session store (Redis) failed or did not answer within the configured
    /// timeout: nobody can be told logged in or out until it is back.
    #[error("session store unavailable: {problem}")]
    SessionStoreUnavailable {
        /// What the store said, or the timeout.
        problem: String,
    },
    /// The app's `on_login` hook returned app data larger than the auth record allows;
    /// the login was refused and nothing stored (the app's bug: 500).
    #[error(
        "on_login returned {bytes} bytes of app data (as JSON); the limit is {limit} bytes: keep ids and roles there and look the rest up"
    )]
    AppDataTooLarge {
        /// The size of the value as JSON.
        bytes: usize,
        /// [`MAX_APP_DATA_BYTES`](crate::MAX_APP_DATA_BYTES).
        limit: usize,
    },
}

impl Error {
    /// The HTTP status an adapter answers with: 4xx for the browser's fault, 502/503/504
    /// for Kvixi's, 500 only for this server's own configuration or store.
    pub fn status(&self) -> u16 {
        match self {
            Error::NoPendingLogin
            | Error::PendingLoginExpired { .. }
            | Error::MissingAuthKey
            | Error::MalformedAuthKey
            | Error::AuthKeyRejected { .. } => 400,
            Error::TokenExpired | Error::NotLoggedIn | Error::LoginTooOld => 401,
            Error::AccessDenied | Error::LoginRefused { .. } | Error::NotAllowed => 403,
            Error::UnknownSession => 404,
            Error::AppCredentialsRejected { .. }
            | Error::ProviderError { .. }
            | Error::ProviderStatus { .. }
            | Error::ProviderMalformed { .. }
            | Error::ProviderBodyTooLarge { .. } => 502,
            Error::ProviderUnreachable { .. }
            | Error::SessionStoreUnavailable { .. }
            | Error::LoginUnavailable { .. }
            | Error::ProviderBusy { .. }
            | Error::ProviderCircuitOpen { .. } => 503,
            Error::ProviderTimeout { .. } => 504,
            Error::Config { .. } | Error::Session(_) | Error::AppDataTooLarge { .. } => 500,
        }
    }

    /// A short, stable code for JSON answers (`"no_pending_login"`, …).
    pub fn code(&self) -> &'static str {
        match self {
            Error::Config { .. } => "server_misconfigured",
            Error::NoPendingLogin => "no_pending_login",
            Error::PendingLoginExpired { .. } => "login_expired",
            Error::AccessDenied => "access_denied",
            Error::MissingAuthKey => "missing_auth_key",
            Error::MalformedAuthKey => "malformed_auth_key",
            Error::AuthKeyRejected { .. } => "auth_key_rejected",
            Error::LoginRefused { .. } => "login_refused",
            Error::LoginUnavailable { .. } => "login_unavailable",
            Error::AppCredentialsRejected { .. } => "provider_refused_app",
            Error::TokenExpired => "token_expired",
            Error::NotLoggedIn => "not_logged_in",
            Error::NotAllowed => "not_allowed",
            Error::UnknownSession => "unknown_session",
            Error::LoginTooOld => "login_too_old",
            Error::ProviderError { .. } => "provider_error",
            Error::ProviderStatus { .. } => "provider_status",
            Error::ProviderMalformed { .. } => "provider_malformed",
            Error::ProviderBodyTooLarge { .. } => "provider_body_too_large",
            Error::ProviderTimeout { .. } => "provider_timeout",
            Error::ProviderUnreachable { .. } => "provider_unreachable",
            Error::ProviderBusy { .. } => "provider_busy",
            Error::ProviderCircuitOpen { .. } => "provider_unavailable",
            Error::Session(_) => "session_error",
            Error::SessionStoreUnavailable { .. } => "session_store_unavailable",
            Error::AppDataTooLarge { .. } => "app_data_too_large",
        }
    }

    /// What the end user may read: no provider message, no internals.
    pub fn user_message(&self) -> &'static str {
        match self {
            Error::NoPendingLogin => {
                "This login link was not started from this browser, or it was already used. Please log in again."
            }
            Error::PendingLoginExpired { .. } => "The login took too long. Please log in again.",
            Error::AccessDenied => {
                "You chose not to share your Kvixi account, so you are not logged in."
            }
            Error::MissingAuthKey | Error::MalformedAuthKey | Error::AuthKeyRejected { .. } => {
                "Kvixi did not confirm this login (the link may have been used already). Please log in again."
            }
            Error::LoginRefused { .. } => "This account is not allowed to log in here.",
            Error::LoginUnavailable { .. } => {
                "This site cannot complete logins right now. Please log in again in a moment."
            }
            Error::TokenExpired => "Your Kvixi session has expired. Please log in again.",
            Error::NotLoggedIn => "You need to log in with Kvixi to see this page.",
            Error::NotAllowed => "Your account is not allowed to see this page.",
            Error::UnknownSession => "There is no such session among yours.",
            Error::LoginTooOld => "This page needs a recent login. Please log in with Kvixi again.",
            Error::AppCredentialsRejected { .. } | Error::Config { .. } => {
                "Logging in with Kvixi is not set up correctly on this site. Please try again later."
            }
            Error::ProviderError { .. }
            | Error::ProviderStatus { .. }
            | Error::ProviderMalformed { .. }
            | Error::ProviderBodyTooLarge { .. } => {
                "Kvixi gave an unexpected answer. Please try again in a moment."
            }
            Error::ProviderUnreachable { .. } | Error::ProviderCircuitOpen { .. } => {
                "Kvixi cannot be reached right now. Please try again in a moment."
            }
            Error::ProviderBusy { .. } => {
                "Many people are logging in right now. Please try again in a moment."
            }
            Error::ProviderTimeout { .. } => {
                "Kvixi took too long to answer. Please try again in a moment."
            }
            Error::Session(_) | Error::AppDataTooLarge { .. } => {
                "Something went wrong on our side. Please try again."
            }
            Error::SessionStoreUnavailable { .. } => {
                "This site cannot read its sessions right now. Nobody was logged out; please try again in a moment."
            }
        }
    }

    /// Seconds after which the request may succeed (`Retry-After`), for the answers
    /// that know it.
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            Error::ProviderBusy { retry_after } | Error::ProviderCircuitOpen { retry_after } => {
                Some(*retry_after)
            }
            _ => None,
        }
    }

    /// Whether this failure is the provider's (logged at `warn`) rather than the browser's.
    pub fn is_provider_failure(&self) -> bool {
        self.status() >= 502
            && !matches!(
                self,
                Error::SessionStoreUnavailable { .. } | Error::LoginUnavailable { .. }
            )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn browser_faults_are_4xx_and_provider_faults_5xx() {
        assert_eq!(Error::NoPendingLogin.status(), 400);
        assert_eq!(Error::AccessDenied.status(), 403);
        assert_eq!(Error::LoginRefused { reason: "x".into() }.status(), 403);
        assert_eq!(Error::LoginUnavailable { reason: "x".into() }.status(), 503);
        assert_eq!(Error::ProviderStatus { status: 500 }.status(), 502);
        assert_eq!(
            Error::ProviderTimeout {
                after: Duration::from_secs(1)
            }
            .status(),
            504
        );
        assert_eq!(
            Error::ProviderUnreachable {
                problem: "x".into()
            }
            .status(),
            503
        );
    }

    #[test]
    fn user_message_never_carries_the_provider_message() {
        let err = Error::ProviderError {
            provider_message: "SQLSTATE secret-ish detail".into(),
        };
        assert!(!err.user_message().contains("SQLSTATE"));
        assert!(
            err.to_string().contains("SQLSTATE"),
            "kept for the developer"
        );
    }
}
