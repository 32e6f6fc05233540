//! actix-session's middleware, set up for the login flow.

use actix_session::SessionMiddleware;
use actix_session::config::{CookieContentSecurity, PersistentSession, TtlExtensionPolicy};
use actix_session::storage::SessionStore;
use actix_web::cookie::time::Duration;
use actix_web::cookie::{Key, SameSite};
use kvixi_core::{Config, SESSION_COOKIE};

/// How long a session lasts without a request.
const IDLE_LIFETIME: Duration = Duration::hours(24);

/// The key for [`session_middleware`], derived from the app's cookie key
/// (`KVIXI_COOKIE_KEY`): the one secret every instance behind a load balancer shares.
pub fn session_key(config: &Config) -> Key {
    Key::derive_from(config.cookie_key().secret())
}

/// The session middleware the Kvixi routes and extractors need, over `store`.
///
/// The cookie holds only the session key, encrypted with `key` (use
/// [`session_key`]`(config)`, so that the app's cookie key is the one shared secret): named
/// [`SESSION_COOKIE`], `HttpOnly`, `SameSite=Lax` (Strict would lose the session on the
/// way back from Kvixi), `Secure` when the redirect URL is https, `Path=/`. A session
/// ends after a day without requests. Every instance behind a load balancer needs the
/// same `key` and a shared store (`RedisSessionStore`, with
/// the `redis` feature); create the store once, outside `HttpServer::new`'s closure,
/// and clone it into each worker.
pub fn session_middleware<S: SessionStore>(
    config: &Config,
    store: S,
    key: Key,
) -> SessionMiddleware<S> {
    SessionMiddleware::builder(store, key)
        .cookie_name(SESSION_COOKIE.to_owned())
        .cookie_content_security(CookieContentSecurity::Private)
        .cookie_http_only(true)
        .cookie_same_site(SameSite::Lax)
        .cookie_secure(config.cookie_secure())
        .cookie_path("/".to_owned())
        .session_lifecycle(
            PersistentSession::default()
                .session_ttl(IDLE_LIFETIME)
                .session_ttl_extension_policy(TtlExtensionPolicy::OnEveryRequest),
        )
        .build()
}
