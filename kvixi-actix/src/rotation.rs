//! Cookie key rotation for the session cookie: one sealed with a previous key
//! (`KVIXI_PREVIOUS_COOKIE_KEYS`) is sealed again with the current one.
//!
//! actix-session opens its cookie with one key. Before it reads the request, the
//! request's session cookie that only a previous key opens is replaced, in the `Cookie`
//! header, by the same session key sealed with the current key; the answer hands the
//! browser that cookie, unless actix-session set (or cleared) the session cookie itself,
//! which it does not when the store kept the session's expiry ([`RedisStore`] between
//! two refreshes). A cookie no key opens is left alone (actix-session treats it as no
//! session).
//!
//! [`RedisStore`]: https://docs.rs/kvixi-actix/latest/kvixi_actix/struct.RedisStore.html
//!
//! It must run before anything reads the request's cookies: actix-web keeps the first
//! parse of the `Cookie` header. [`KvixiSessionService`](crate::KvixiSessionService) calls
//! it first thing, right outside actix-session; a middleware outside ours that reads
//! the cookies first defeats it (said in `session_middleware`'s docs).
//!
//! With previous keys, every request carrying the session cookie costs one decryption
//! with the current key here, besides actix-session's own.

use actix_web::cookie::{Cookie, CookieJar, Key, SameSite};
use actix_web::dev::ServiceRequest;
use actix_web::http::header::{self, HeaderMap, HeaderValue};
use kvixi_core::{Config, SESSION_COOKIE};

use crate::middleware::{session_ttl, sets_session_cookie};

/// The keys a session cookie may be sealed with, and the cookie's attributes.
pub(crate) struct Rotation {
    current: Key,
    previous: Vec<Key>,
    /// The cookie as actix-session sets it, value aside.
    template: Cookie<'static>,
}

/// The session cookie of a request, sealed again with the current key.
pub(crate) struct Resealed(Cookie<'static>);

impl Rotation {
    /// The rotation for `config`'s previous cookie keys, `current` sealing; `None`
    /// without previous keys (nothing to do then, at no cost).
    pub(crate) fn new(config: &Config, current: &Key) -> Option<Rotation> {
        let previous: Vec<Key> = config
            .previous_cookie_keys()
            .iter()
            .map(|key| Key::derive_from(key.secret()))
            .collect();
        if previous.is_empty() {
            return None;
        }
        // What actix-session's `set_session_cookie` sets, as `session_middleware`
        // configures it.
        let template = Cookie::build(SESSION_COOKIE, "")
            .secure(config.cookie_secure())
            .http_only(true)
            .same_site(SameSite::Lax)
            .path("/")
            .max_age(session_ttl(config))
            .finish();
        Some(Rotation {
            current: current.clone(),
            previous,
            template,
        })
    }

    /// When the request's session cookie opens with a previous key only, rewrites the
    /// request's `Cookie` header with it sealed by the current key, and returns that.
    ///
    /// Every request carrying the session cookie pays one decryption here, with the
    /// current key, to learn that there is nothing to do (actix-session then decrypts
    /// the cookie once more); only a cookie the current key does not open is tried with
    /// the previous ones.
    pub(crate) fn reseal(&self, request: &mut ServiceRequest) -> Option<Resealed> {
        let sent = session_cookie(request.headers())?;
        // An empty jar: `decrypt` alone, nothing stored in it.
        let jar = CookieJar::new();
        if jar.private(&self.current).decrypt(sent.clone()).is_some() {
            return None;
        }
        let session_key = self
            .previous
            .iter()
            .find_map(|key| jar.private(key).decrypt(sent.clone()))?;

        let mut cookie = self.template.clone();
        cookie.set_value(session_key.value().to_owned());
        let mut sealing = CookieJar::new();
        sealing.private_mut(&self.current).add(cookie);
        let sealed = sealing.get(SESSION_COOKIE)?.clone();
        replace_session_cookie(request.headers_mut(), &sealed);
        tracing::debug!("session cookie sealed with a previous key: sealed again");
        Some(Resealed(sealed))
    }

    /// Gives the browser the cookie sealed again, unless the answer already sets (or
    /// clears) the session cookie.
    pub(crate) fn hand_back(&self, headers: &mut HeaderMap, resealed: Resealed) {
        if headers.get_all(header::SET_COOKIE).any(sets_session_cookie) {
            return;
        }
        match HeaderValue::from_str(&resealed.0.encoded().to_string()) {
            Ok(value) => headers.append(header::SET_COOKIE, value),
            // Base64 and fixed attributes: always a valid header value.
            Err(_) => tracing::warn!("the session cookie sealed again is no header value"),
        }
    }
}

/// The request's session cookie (the first one, as actix-session reads it), decoded.
fn session_cookie(headers: &HeaderMap) -> Option<Cookie<'static>> {
    headers
        .get_all(header::COOKIE)
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| Cookie::parse_encoded(pair.trim()).ok())
        .find(|cookie| cookie.name() == SESSION_COOKIE)
        .map(Cookie::into_owned)
}

/// The `Cookie` headers with every session cookie's value replaced by `sealed`'s, the
/// other cookies exactly as sent.
fn replace_session_cookie(headers: &mut HeaderMap, sealed: &Cookie<'_>) {
    let pair = sealed.encoded().stripped().to_string();
    let rewritten: Vec<HeaderValue> = headers
        .get_all(header::COOKIE)
        .filter_map(|value| {
            let Ok(text) = value.to_str() else {
                return Some(value.clone());
            };
            let pairs: Vec<&str> = text
                .split(';')
                .map(|part| {
                    let name = part.split_once('=').map_or(part, |(name, _)| name);
                    if name.trim() == SESSION_COOKIE {
                        pair.as_str()
                    } else {
                        part.trim()
                    }
                })
                .collect();
            HeaderValue::from_str(&pairs.join("; ")).ok()
        })
        .collect();
    headers.remove(header::COOKIE);
    for value in rewritten {
        headers.append(header::COOKIE, value);
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use actix_session::storage::SessionStore;
    use actix_web::http::StatusCode;
    use actix_web::test::{self, TestRequest};
    use actix_web::{App, web};
    use kvixi_core::Kvixi;
    use kvixi_core::flow::AUTH_RECORD_KEY;

    use super::*;
    use crate::{KvixiUser, MemoryStore, configure, session_key, session_middleware};

    const KEY_A: [u8; 64] = [0xa; 64];
    const KEY_B: [u8; 64] = [0xb; 64];

    /// A flow sealing with `current`, opening with `previous` too.
    fn kvixi(current: [u8; 64], previous: &[[u8; 64]]) -> Kvixi {
        let config = Config::builder("app", "secret", "http://localhost/auth/kvixi/callback")
            .base_url("http://127.0.0.1:9")
            .cookie_key(current.to_vec())
            .previous_cookie_keys(previous.iter().map(|key| key.to_vec()))
            .build()
            .expect("valid config");
        Kvixi::new(config).expect("flow builds")
    }

    async fn me(user: KvixiUser) -> String {
        user.id.clone()
    }

    /// The app as an instance runs it: sessions in `store`, shared by every instance.
    macro_rules! app {
        ($kvixi:expr, $store:expr) => {
            test::init_service(
                App::new()
                    .wrap(session_middleware(
                        $kvixi.config(),
                        $store.clone(),
                        session_key($kvixi.config()),
                    ))
                    .configure(configure($kvixi.clone()))
                    .route("/me", web::get().to(me)),
            )
            .await
        };
    }

    /// Alice's session in `store`, and its cookie as `kvixi` seals it.
    async fn alice_session(store: &MemoryStore, kvixi: &Kvixi) -> (String, Cookie<'static>) {
        let now = kvixi_core::UnixTime::now().0;
        let record = serde_json::json!({
            "user": {"id": "1001", "name": "alice"},
            "obtained_at": now,
            "token_expires_at": now + 3600,
        });
        let state = HashMap::from([(AUTH_RECORD_KEY.to_owned(), record.to_string())]);
        let ttl = actix_web::cookie::time::Duration::hours(1);
        let session = String::from(store.save(state, &ttl).await.expect("saved"));
        let mut jar = CookieJar::new();
        jar.private_mut(&session_key(kvixi.config()))
            .add(Cookie::new(SESSION_COOKIE, session.clone()));
        (session, jar.get(SESSION_COOKIE).expect("sealed").clone())
    }

    fn me_request(cookie: &Cookie<'static>) -> TestRequest {
        TestRequest::get()
            .uri("/me")
            .insert_header((header::ACCEPT, "application/json"))
            .cookie(cookie.clone())
    }

    fn set_session_cookie<B>(
        response: &actix_web::dev::ServiceResponse<B>,
    ) -> Option<Cookie<'static>> {
        response
            .response()
            .cookies()
            .find(|cookie| cookie.name() == SESSION_COOKIE)
            .map(Cookie::into_owned)
    }

    /// The session key `cookie` holds, if `kvixi`'s current key opens it.
    fn opened(cookie: &Cookie<'static>, kvixi: &Kvixi) -> Option<String> {
        let mut jar = CookieJar::new();
        jar.add_original(cookie.clone());
        let key = session_key(kvixi.config());
        let opened = jar.private(&key).get(SESSION_COOKIE)?;
        Some(opened.value().to_owned())
    }

    #[actix_web::test]
    async fn a_key_rotation_logs_nobody_out_and_reseals_the_cookie() {
        let store = MemoryStore::default();
        let before = kvixi(KEY_A, &[]);
        let (session, old_cookie) = alice_session(&store, &before).await;
        let app = app!(before, store);
        let response = test::call_service(&app, me_request(&old_cookie).to_request()).await;
        assert_eq!(response.status(), StatusCode::OK, "logged in under A");

        // Restarted: B seals, A still opens.
        let rotating = kvixi(KEY_B, &[KEY_A]);
        let app = app!(rotating, store);
        let response = test::call_service(&app, me_request(&old_cookie).to_request()).await;
        assert_eq!(response.status(), StatusCode::OK, "still logged in");
        let new_cookie = set_session_cookie(&response).expect("the cookie sealed again");
        assert_eq!(test::read_body(response).await, "1001");
        assert_eq!(opened(&new_cookie, &rotating), Some(session.clone()));
        assert_eq!(opened(&new_cookie, &before), None, "sealed with B, not A");
        assert_eq!(new_cookie.http_only(), Some(true));
        assert_eq!(new_cookie.same_site(), Some(SameSite::Lax));
        assert_eq!(new_cookie.path(), Some("/"));

        // Restarted again without A: the new cookie works, the old one no longer.
        let after = kvixi(KEY_B, &[]);
        let app = app!(after, store);
        let response = test::call_service(&app, me_request(&new_cookie).to_request()).await;
        assert_eq!(response.status(), StatusCode::OK, "the resealed cookie");
        assert_eq!(test::read_body(response).await, "1001");
        let response = test::call_service(&app, me_request(&old_cookie).to_request()).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "A retired");
    }

    #[actix_web::test]
    async fn a_cookie_no_key_opens_stays_anonymous_and_untouched() {
        let store = MemoryStore::default();
        let stranger = kvixi([0xc; 64], &[]);
        let (_, foreign) = alice_session(&store, &stranger).await;
        let rotating = kvixi(KEY_B, &[KEY_A]);
        let app = app!(rotating, store);
        let response = test::call_service(&app, me_request(&foreign).to_request()).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert!(set_session_cookie(&response).is_none());
    }

    #[test]
    fn without_previous_keys_there_is_nothing_to_do() {
        let flow = kvixi(KEY_B, &[]);
        assert!(Rotation::new(flow.config(), &session_key(flow.config())).is_none());
    }

    #[test]
    fn the_answer_hands_the_resealed_cookie_back_unless_it_sets_one() {
        let flow = kvixi(KEY_B, &[KEY_A]);
        let current = session_key(flow.config());
        let rotation = Rotation::new(flow.config(), &current).expect("a rotation");
        let mut sealing = CookieJar::new();
        let mut cookie = rotation.template.clone();
        cookie.set_value("session-key");
        sealing.private_mut(&current).add(cookie);
        let sealed = sealing.get(SESSION_COOKIE).expect("sealed").clone();

        let mut headers = HeaderMap::new();
        rotation.hand_back(&mut headers, Resealed(sealed.clone()));
        let set = headers.get(header::SET_COOKIE).expect("handed back");
        let set = Cookie::parse_encoded(set.to_str().unwrap().to_owned()).unwrap();
        assert_eq!(opened(&set, &flow).as_deref(), Some("session-key"));
        assert_eq!(set.max_age(), Some(session_ttl(flow.config())));
        assert_eq!(set.http_only(), Some(true));

        let mut headers = HeaderMap::new();
        let own = HeaderValue::from_static("kvixi_session=; Max-Age=0");
        headers.append(header::SET_COOKIE, own.clone());
        rotation.hand_back(&mut headers, Resealed(sealed));
        let all: Vec<_> = headers.get_all(header::SET_COOKIE).collect();
        assert_eq!(all, [own], "actix-session's own cookie wins");
    }

    fn headers(cookie: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.append(header::COOKIE, HeaderValue::from_str(cookie).unwrap());
        headers
    }

    #[test]
    fn only_the_session_cookie_is_replaced() {
        let mut headers = headers("a=1; kvixi_session=old%2Bvalue;b=x=y");
        replace_session_cookie(&mut headers, &Cookie::new(SESSION_COOKIE, "new"));
        let sent = headers.get(header::COOKIE).unwrap().to_str().unwrap();
        assert_eq!(sent, "a=1; kvixi_session=new; b=x=y");
    }

    #[test]
    fn the_session_cookie_is_found_decoded_among_others() {
        let found = session_cookie(&headers("a=1; kvixi_session=old%2Bvalue")).unwrap();
        assert_eq!(found.value(), "old+value");
        assert!(session_cookie(&headers("a=1")).is_none());
    }
}
