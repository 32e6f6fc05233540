//! The emulator's data: apps, users, outstanding auth_keys and issued access tokens.
//!
//! Every operation takes "now" as a parameter, so the rules (single use, expiry, token reuse)
//! are tested here without a server or a clock.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use rand::Rng as _;
use rand::distr::Alphanumeric;
use serde::{Deserialize, Serialize};

use crate::api_error::ApiError;
use crate::{App, Error, Fixture, User, UserInfo};

/// How long an auth_key stays exchangeable after it is issued: ten minutes.
pub const AUTH_KEY_LIFETIME: Duration = Duration::from_secs(10 * 60);
/// Length of a random auth_key or token: 43 alphanumeric characters carry over 256 bits.
const CREDENTIAL_LEN: usize = 43;

/// Everything the emulator knows, as `GET /_mock/state` shows it (secrets and keys included:
/// this is a development tool; passwords are never shown).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateSnapshot {
    /// Registered apps, with their secrets.
    pub apps: Vec<App>,
    /// auth_keys issued and not yet used nor expired, sorted.
    pub auth_keys: Vec<String>,
    /// Access tokens issued, expired ones included, sorted.
    pub access_tokens: Vec<String>,
    /// Users, as the API would answer them.
    pub users: Vec<UserInfo>,
}

#[derive(Debug)]
struct AuthKeyGrant {
    app_id: String,
    user_name: String,
    issued_at: Instant,
}

#[derive(Debug)]
struct TokenGrant {
    app_id: String,
    user_name: String,
    expires_at: Instant,
}

/// Apps, users and the credentials issued to them.
#[derive(Debug)]
pub(crate) struct Registry {
    apps: Vec<App>,
    users: Vec<User>,
    auth_keys: HashMap<String, AuthKeyGrant>,
    tokens: HashMap<String, TokenGrant>,
    token_lifetime: Duration,
}

impl Registry {
    /// A registry holding the fixture's apps and users.
    pub(crate) fn new(fixture: Fixture, token_lifetime: Duration) -> Self {
        let mut registry = Self {
            apps: Vec::new(),
            users: Vec::new(),
            auth_keys: HashMap::new(),
            tokens: HashMap::new(),
            token_lifetime,
        };
        fixture
            .apps
            .into_iter()
            .for_each(|app| registry.register_app(app));
        fixture
            .users
            .into_iter()
            .for_each(|user| registry.add_user(user));
        registry
    }

    /// Registers an app, replacing one with the same app_id.
    pub(crate) fn register_app(&mut self, app: App) {
        match self
            .apps
            .iter_mut()
            .find(|known| known.app_id == app.app_id)
        {
            Some(known) => *known = app,
            None => self.apps.push(app),
        }
    }

    /// Adds a user, replacing one with the same user name.
    pub(crate) fn add_user(&mut self, user: User) {
        match self
            .users
            .iter_mut()
            .find(|known| known.user_name == user.user_name)
        {
            Some(known) => *known = user,
            None => self.users.push(user),
        }
    }

    /// The app registered under `app_id`.
    pub(crate) fn app(&self, app_id: &str) -> Option<&App> {
        self.apps.iter().find(|app| app.app_id == app_id)
    }

    /// The user named `user_name`.
    pub(crate) fn user(&self, user_name: &str) -> Option<&User> {
        self.users.iter().find(|user| user.user_name == user_name)
    }

    /// The user named `user_name` when `password` is theirs.
    pub(crate) fn check_password(&self, user_name: &str, password: &str) -> Option<&User> {
        self.user(user_name)
            .filter(|user| user.password == password)
    }

    /// Issues a fresh single-use auth_key for `user_name` approving `app_id`.
    pub(crate) fn issue_auth_key(
        &mut self,
        app_id: &str,
        user_name: &str,
        now: Instant,
    ) -> Result<String, Error> {
        if self.app(app_id).is_none() {
            return Err(Error::UnknownApp {
                app_id: app_id.to_owned(),
            });
        }
        if self.user(user_name).is_none() {
            return Err(Error::UnknownUser {
                user_name: user_name.to_owned(),
            });
        }
        self.auth_keys
            .retain(|_, grant| !auth_key_expired(grant, now));
        let key = random_credential();
        self.auth_keys.insert(
            key.clone(),
            AuthKeyGrant {
                app_id: app_id.to_owned(),
                user_name: user_name.to_owned(),
                issued_at: now,
            },
        );
        Ok(key)
    }

    /// Step 2: exchanges an auth_key for an access token, consuming the key.
    ///
    /// The token still valid for the same app and user is answered again, as the platform does.
    pub(crate) fn exchange(
        &mut self,
        app_id: &str,
        app_secret: &str,
        auth_key: &str,
        now: Instant,
    ) -> Result<String, ApiError> {
        let app = self.app(app_id).ok_or(ApiError::InvalidAppId)?;
        if app.app_secret != app_secret {
            return Err(ApiError::InvalidAppSecret);
        }
        let grant = self
            .auth_keys
            .get(auth_key)
            .ok_or(ApiError::InvalidAuthKey)?;
        if auth_key_expired(grant, now) {
            self.auth_keys.remove(auth_key);
            return Err(ApiError::InvalidAuthKey);
        }
        if grant.app_id != app_id {
            return Err(ApiError::InvalidAuthKey);
        }
        let grant = self
            .auth_keys
            .remove(auth_key)
            .ok_or(ApiError::InvalidAuthKey)?;

        let valid = self.tokens.iter().find(|(_, token)| {
            token.app_id == grant.app_id
                && token.user_name == grant.user_name
                && token.expires_at > now
        });
        if let Some((token, _)) = valid {
            return Ok(token.clone());
        }
        let token = random_credential();
        self.tokens.insert(
            token.clone(),
            TokenGrant {
                app_id: grant.app_id,
                user_name: grant.user_name,
                expires_at: now + self.token_lifetime,
            },
        );
        Ok(token)
    }

    /// Step 3: the user an access token was issued for; `Ok(None)` when that user is gone
    /// (the platform then answers `[]`).
    pub(crate) fn user_for_token(
        &self,
        access_token: &str,
        now: Instant,
    ) -> Result<Option<&User>, ApiError> {
        let token = self
            .tokens
            .get(access_token)
            .ok_or(ApiError::InvalidAccessToken)?;
        if token.expires_at <= now {
            return Err(ApiError::ExpiredAccessToken);
        }
        Ok(self.user(&token.user_name))
    }

    /// The whole state, users answered with absolute URLs under `base_url`.
    pub(crate) fn snapshot(&self, base_url: &str, now: Instant) -> StateSnapshot {
        let mut auth_keys: Vec<String> = self
            .auth_keys
            .iter()
            .filter(|(_, grant)| !auth_key_expired(grant, now))
            .map(|(key, _)| key.clone())
            .collect();
        auth_keys.sort();
        let mut access_tokens: Vec<String> = self.tokens.keys().cloned().collect();
        access_tokens.sort();
        StateSnapshot {
            apps: self.apps.clone(),
            auth_keys,
            access_tokens,
            users: self.users.iter().map(|user| user.info(base_url)).collect(),
        }
    }
}

fn auth_key_expired(grant: &AuthKeyGrant, now: Instant) -> bool {
    now >= grant.issued_at + AUTH_KEY_LIFETIME
}

/// A random URL-safe credential.
fn random_credential() -> String {
    rand::rng()
        .sample_iter(Alphanumeric)
        .take(CREDENTIAL_LEN)
        .map(char::from)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixture::{ALICE, BOB};

    const HOUR: Duration = Duration::from_secs(3600);

    fn registry() -> Registry {
        let mut fixture = Fixture::default();
        fixture
            .apps
            .push(App::new("app", "secret", "http://127.0.0.1/cb"));
        fixture
            .apps
            .push(App::new("other", "other-secret", "http://127.0.0.1/cb2"));
        Registry::new(fixture, HOUR)
    }

    #[test]
    fn auth_key_is_single_use() {
        let mut registry = registry();
        let now = Instant::now();
        let key = registry.issue_auth_key("app", ALICE, now).unwrap();
        assert!(registry.exchange("app", "secret", &key, now).is_ok());
        assert_eq!(
            registry.exchange("app", "secret", &key, now),
            Err(ApiError::InvalidAuthKey)
        );
    }

    #[test]
    fn auth_key_of_another_app_is_refused_and_kept() {
        let mut registry = registry();
        let now = Instant::now();
        let key = registry.issue_auth_key("app", ALICE, now).unwrap();
        assert_eq!(
            registry.exchange("other", "other-secret", &key, now),
            Err(ApiError::InvalidAuthKey)
        );
        assert!(registry.exchange("app", "secret", &key, now).is_ok());
    }

    #[test]
    fn wrong_secret_does_not_consume_the_key() {
        let mut registry = registry();
        let now = Instant::now();
        let key = registry.issue_auth_key("app", ALICE, now).unwrap();
        assert_eq!(
            registry.exchange("app", "nope", &key, now),
            Err(ApiError::InvalidAppSecret)
        );
        assert!(registry.exchange("app", "secret", &key, now).is_ok());
    }

    #[test]
    fn auth_key_expires_after_ten_minutes() {
        let mut registry = registry();
        let now = Instant::now();
        let key = registry.issue_auth_key("app", ALICE, now).unwrap();
        assert_eq!(
            registry.exchange("app", "secret", &key, now + AUTH_KEY_LIFETIME),
            Err(ApiError::InvalidAuthKey)
        );
    }

    #[test]
    fn valid_token_is_reused_and_expired_one_replaced() {
        let mut registry = registry();
        let now = Instant::now();
        let first_key = registry.issue_auth_key("app", ALICE, now).unwrap();
        let first = registry.exchange("app", "secret", &first_key, now).unwrap();
        let second_key = registry.issue_auth_key("app", ALICE, now).unwrap();
        assert_eq!(
            registry
                .exchange("app", "secret", &second_key, now)
                .unwrap(),
            first
        );

        let bob_key = registry.issue_auth_key("app", BOB, now).unwrap();
        assert_ne!(
            registry.exchange("app", "secret", &bob_key, now).unwrap(),
            first
        );

        let later = now + HOUR;
        assert_eq!(
            registry.user_for_token(&first, later).err(),
            Some(ApiError::ExpiredAccessToken)
        );
        let third_key = registry.issue_auth_key("app", ALICE, later).unwrap();
        let third = registry
            .exchange("app", "secret", &third_key, later)
            .unwrap();
        assert_ne!(third, first);
        assert_eq!(
            registry
                .user_for_token(&third, later)
                .unwrap()
                .map(|u| u.user_name.as_str()),
            Some(ALICE)
        );
    }

    #[test]
    fn issuing_for_unknown_app_or_user_fails() {
        let mut registry = registry();
        let now = Instant::now();
        assert!(matches!(
            registry.issue_auth_key("nope", ALICE, now),
            Err(Error::UnknownApp { .. })
        ));
        assert!(matches!(
            registry.issue_auth_key("app", "nobody", now),
            Err(Error::UnknownUser { .. })
        ));
    }

    #[test]
    fn credentials_are_long_and_url_safe() {
        let credential = random_credential();
        assert_eq!(credential.len(), CREDENTIAL_LEN);
        assert!(credential.chars().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(credential, random_credential());
    }
}
