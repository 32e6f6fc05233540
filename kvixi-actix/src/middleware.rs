//! actix-session's middleware, set up for the login flow and for session store outages.

use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;

use actix_session::SessionMiddleware;
use actix_session::config::{CookieContentSecurity, PersistentSession, TtlExtensionPolicy};
use actix_session::storage::SessionStore;
use actix_web::HttpMessage;
use actix_web::body::{EitherBody, MessageBody};
use actix_web::cookie::time::Duration;
use actix_web::cookie::{Key, SameSite};
use actix_web::dev::{Service, ServiceRequest, ServiceResponse, Transform, forward_ready};
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderMap, HeaderValue};
use kvixi_core::{Config, Reply, SESSION_COOKIE};

use crate::resilient::{Reporting, ResilientStore, StoreReport};
use crate::response::respond;
use crate::rotation::Rotation;

/// The key for [`session_middleware`], derived from the app's cookie key
/// (`KVIXI_COOKIE_KEY`): the one secret every instance behind a load balancer shares.
pub fn session_key(config: &Config) -> Key {
    Key::derive_from(config.cookie_key().secret())
}

/// The session middleware the Kvixi routes and extractors need, over `store`: the
/// low-level form, which checks nothing. [`with_kvixi`](crate::KvixiAppExt::with_kvixi)
/// sets it up with the store the `Config` calls for, and
/// [`with_kvixi_store`](crate::KvixiAppExt::with_kvixi_store) with a store of the
/// app's own, refusing to start when that store may be shared by several instances
/// while the revocations are not ([`Kvixi::check_own_store`](kvixi_core::Kvixi::check_own_store)):
/// prefer them. Used directly, this middleware does not make that check.
///
/// The cookie holds only the session key, encrypted with `key` (use
/// [`session_key`]`(config)`, so that the app's cookie key is the one shared secret): named
/// [`SESSION_COOKIE`], `HttpOnly`, `SameSite=Lax` (Strict would lose the session on the
/// way back from Kvixi), `Secure` when the redirect URL is https, `Path=/`. A session
/// ends after [`Config::idle_timeout`] without requests (24 h by default). Every
/// instance behind a load balancer needs the same `key` and a shared store (such as
/// [`RedisStore`](crate::RedisStore)); create the store once, outside
/// `HttpServer::new`'s closure, and clone it into each worker.
///
/// # When the store is down
///
/// Each call to `store` gets at most
/// [`Config::session_store_timeout`](kvixi_core::Config::session_store_timeout) (a
/// [`RedisStore`](crate::RedisStore) is set to that timeout here). When the
/// store fails or does not answer in time:
///
/// - requests that need the session (the Kvixi extractors, `Option<KvixiUser>`
///   included, the callback and logout routes, a handler writing to the session) are
///   answered 503 by the core: JSON for API clients, a page for browsers. Nobody is
///   treated as logged out, and logout does not claim success while the session may
///   still be stored;
/// - other requests are served as usual: actix-session's own answer would be a 500
///   for every request carrying the session cookie;
/// - the stored session is left as it was (no write, no new session over it, no
///   session cookie sent), so it works again as soon as the store is back.
///
/// # Cookie key rotation
///
/// A session cookie sealed with one of [`Config::previous_cookie_keys`]
/// (`KVIXI_PREVIOUS_COOKIE_KEYS`) rather than `key` still opens its session, and the
/// answer seals it again with `key`: nobody is logged out by a rotation. Without
/// previous keys this costs nothing. With some, every request carrying the session
/// cookie costs one more decryption with `key` (to tell whether the cookie needs
/// sealing again; actix-session then opens it once more), and a cookie `key` does not
/// open one more per previous key tried.
///
/// The cookie sealed again reaches actix-session by rewriting the request's `Cookie`
/// header before actix-session reads it. actix-web parses a request's cookies once and
/// keeps that parse: a middleware wrapped *outside* this one (registered with `wrap`
/// after it) that reads the request's cookies before this one runs leaves actix-session
/// the old parse, and a cookie sealed with a previous key then opens no session.
pub fn session_middleware<S: SessionStore + 'static>(
    config: &Config,
    store: S,
    key: Key,
) -> KvixiSessionMiddleware<S> {
    let rotation = Rotation::new(config, &key).map(Rc::new);
    let store = with_store_timeout(store, config);
    let store = ResilientStore::new(store, config.session_store_timeout());
    let sessions = SessionMiddleware::builder(store, key)
        .cookie_name(SESSION_COOKIE.to_owned())
        .cookie_content_security(CookieContentSecurity::Private)
        .cookie_http_only(true)
        .cookie_same_site(SameSite::Lax)
        .cookie_secure(config.cookie_secure())
        .cookie_path("/".to_owned())
        .session_lifecycle(
            PersistentSession::default()
                // Config::idle_timeout (24 h by default).
                .session_ttl(session_ttl(config))
                // actix-session asks the store at every request; the store decides what
                // that costs (`RedisStore` pushes the expiry back once a minute at most).
                .session_ttl_extension_policy(TtlExtensionPolicy::OnEveryRequest),
        )
        .build();
    KvixiSessionMiddleware {
        sessions,
        config: Rc::new(config.clone()),
        rotation,
        refusal: None,
    }
}

/// `store` bounded by `config`'s store timeout where it bounds itself: a
/// [`RedisStore`](crate::RedisStore) ends each call, fred's commands included, a little
/// before the middleware gives up on it.
pub(crate) fn with_store_timeout<S: 'static>(store: S, config: &Config) -> S {
    #[cfg(feature = "redis")]
    {
        let mut store = store;
        if let Some(redis) =
            (&mut store as &mut dyn std::any::Any).downcast_mut::<crate::RedisStore>()
        {
            *redis = redis.clone().timeout(config.session_store_timeout());
        }
        store
    }
    #[cfg(not(feature = "redis"))]
    {
        let _ = config;
        store
    }
}

/// The session's time to live and its cookie's `Max-Age`: [`Config::idle_timeout`].
pub(crate) fn session_ttl(config: &Config) -> Duration {
    Duration::seconds(i64::try_from(config.idle_timeout().as_secs()).unwrap_or(i64::MAX))
}

/// actix-session's `SessionMiddleware` as the Kvixi flow needs it, with its answers to
/// a session store outage; built by [`session_middleware`], applied with `App::wrap`.
pub struct KvixiSessionMiddleware<S: SessionStore> {
    sessions: SessionMiddleware<ResilientStore<S>>,
    config: Rc<Config>,
    rotation: Option<Rc<Rotation>>,
    /// Why the app must not start, if it must not: each worker's start fails.
    refusal: Option<Rc<kvixi_core::Error>>,
}

impl<S: SessionStore> KvixiSessionMiddleware<S> {
    /// The middleware, failing the app's start with `error` (logged) instead of serving.
    pub(crate) fn refusing_to_start(mut self, error: kvixi_core::Error) -> Self {
        self.refusal = Some(Rc::new(error));
        self
    }
}

/// actix-session's service over `Sv` behind the store wrapper.
type Sessions<Sv, S> =
    <SessionMiddleware<ResilientStore<S>> as Transform<Sv, ServiceRequest>>::Transform;

impl<Sv, B, S> Transform<Sv, ServiceRequest> for KvixiSessionMiddleware<S>
where
    Sv: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    Sv::Future: 'static,
    B: MessageBody + 'static,
    S: SessionStore + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = actix_web::Error;
    type Transform = KvixiSessionService<Sessions<Sv, S>>;
    type InitError = ();
    type Future = Pin<Box<dyn Future<Output = Result<Self::Transform, ()>>>>;

    fn new_transform(&self, service: Sv) -> Self::Future {
        if let Some(error) = &self.refusal {
            // `HttpServer` (and `test::init_service`) fail to start: a misconfigured
            // fleet never serves, and no worker panics.
            tracing::error!(%error, "kvixi: the app cannot start");
            return Box::pin(std::future::ready(Err(())));
        }
        let sessions = self.sessions.new_transform(service);
        let config = Rc::clone(&self.config);
        let rotation = self.rotation.clone();
        Box::pin(async move {
            Ok(KvixiSessionService {
                sessions: sessions.await?,
                config,
                rotation,
            })
        })
    }
}

/// The service [`KvixiSessionMiddleware`] wraps around the app.
pub struct KvixiSessionService<Inner> {
    sessions: Inner,
    config: Rc<Config>,
    /// `None` without previous cookie keys: nothing to do then.
    rotation: Option<Rc<Rotation>>,
}

impl<Inner, B> Service<ServiceRequest> for KvixiSessionService<Inner>
where
    Inner: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error>,
    Inner::Future: Unpin + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>>>>;

    forward_ready!(sessions);

    fn call(&self, mut request: ServiceRequest) -> Self::Future {
        let report = Rc::new(StoreReport::default());
        // Read now: an error leaves no request to read it from (and holding a clone of the
        // request would keep actix from routing it).
        let json = wants_json(request.headers());
        // A cookie sealed with a previous key: actix-session sees it sealed with the current.
        let resealed = self
            .rotation
            .as_ref()
            .and_then(|rotation| Some((Rc::clone(rotation), rotation.reseal(&mut request)?)));
        let answer = Reporting::new(Rc::clone(&report), self.sessions.call(request));
        let config = Rc::clone(&self.config);
        Box::pin(async move {
            let answer = answer.await;
            match report.problem() {
                None => answer.map(|mut response| {
                    if report.expiry_kept() {
                        // actix-session re-sends the cookie at each request to refresh its
                        // `Max-Age`; the store kept the expiry, so the cookie keeps its own.
                        drop_session_cookie(response.headers_mut());
                    }
                    if let Some((rotation, resealed)) = resealed {
                        rotation.hand_back(response.headers_mut(), resealed);
                    }
                    response.map_into_left_body()
                }),
                Some(problem) => {
                    let unavailable = Unavailable {
                        problem,
                        json,
                        config: &config,
                    };
                    unavailable.answer(answer)
                }
            }
        })
    }
}

/// Whether the request would rather have JSON than HTML; the core reads the headers.
fn wants_json(headers: &HeaderMap) -> bool {
    let value = |name: &str| headers.get(name).and_then(|value| value.to_str().ok());
    kvixi_core::flow::prefers_json(value("accept"), value("x-requested-with"))
}

/// Left in a request's extensions by a Kvixi extractor that found the session store
/// unavailable: the request needed its session, even where `Option<KvixiUser>` turned
/// the refusal into `None`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SessionWasNeeded;

/// A request during which the session store failed.
struct Unavailable<'c> {
    problem: String,
    json: bool,
    config: &'c Config,
}

impl Unavailable<'_> {
    /// The app's own answer when it did without the session, the core's 503 when it
    /// needed it (an extractor said so, or actix-session could not write it), and never
    /// a session cookie.
    fn answer<B: MessageBody>(
        self,
        answer: Result<ServiceResponse<B>, actix_web::Error>,
    ) -> Result<ServiceResponse<EitherBody<B>>, actix_web::Error> {
        let response = match answer {
            Ok(response) => response,
            // actix-session could not write the session (or was refused): not the app's
            // fault. Answered by the adapter's error, which renders the core's reply.
            Err(error) => {
                tracing::debug!(%error, "the session middleware failed during a store outage");
                let (error, reply) = self.decided();
                let reply = Box::new(reply);
                return Err(crate::Error::Session { error, reply }.into());
            }
        };
        let needed = response
            .request()
            .extensions()
            .contains::<SessionWasNeeded>();
        if needed && response.status() != StatusCode::SERVICE_UNAVAILABLE {
            let (request, _) = response.into_parts();
            let (_, reply) = self.decided();
            return Ok(ServiceResponse::new(request, respond(reply)).map_into_right_body());
        }
        let mut response = response.map_into_left_body();
        drop_session_cookie(response.headers_mut());
        Ok(response)
    }

    /// The core's error and the reply it decides, logged once.
    fn decided(self) -> (kvixi_core::Error, Reply) {
        let error = kvixi_core::Error::SessionStoreUnavailable {
            problem: self.problem,
        };
        tracing::debug!(%error, code = error.code(), "kvixi answers 503");
        let reply = Reply::error(self.config, &error, self.json);
        (error, reply)
    }
}

/// Removes the session cookie actix-session sets on every answer (a TTL extension
/// refreshes its `Max-Age`): when the store extended nothing (an outage, or an
/// extension moments ago), and nothing else may change.
fn drop_session_cookie(headers: &mut HeaderMap) {
    if !headers.get_all(header::SET_COOKIE).any(sets_session_cookie) {
        return;
    }
    let kept: Vec<_> = headers
        .get_all(header::SET_COOKIE)
        .filter(|value| !sets_session_cookie(value))
        .cloned()
        .collect();
    headers.remove(header::SET_COOKIE);
    for value in kept {
        headers.append(header::SET_COOKIE, value);
    }
}

/// Whether a `Set-Cookie` value sets (or clears) the session cookie: it starts with
/// [`SESSION_COOKIE`] and `=`, compared as bytes (this runs on most answers).
pub(crate) fn sets_session_cookie(value: &HeaderValue) -> bool {
    value
        .as_bytes()
        .strip_prefix(SESSION_COOKIE.as_bytes())
        .is_some_and(|rest| rest.first() == Some(&b'='))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::time::{Duration as StdDuration, Instant};

    use actix_session::Session;
    use actix_web::cookie::{Cookie, CookieJar};
    use actix_web::test::{self, TestRequest};
    use actix_web::{App, web};
    use kvixi_core::Kvixi;
    use kvixi_core::flow::AUTH_RECORD_KEY;

    use super::*;
    use crate::resilient::tests::{Flaky, Mode};
    use crate::{KvixiUser, configure};

    const TIMEOUT: StdDuration = StdDuration::from_millis(100);
    /// Far above the timeout, far below what a stuck request would take.
    const BOUND: StdDuration = StdDuration::from_secs(1);

    fn kvixi() -> Kvixi {
        let config = Config::builder("app", "secret", "http://localhost/auth/kvixi/callback")
            .base_url("http://127.0.0.1:9")
            .session_store_timeout(TIMEOUT)
            .build()
            .expect("valid config");
        Kvixi::new(config).expect("flow builds")
    }

    async fn me(user: KvixiUser) -> String {
        user.id.clone()
    }

    async fn maybe(user: Option<KvixiUser>) -> String {
        user.map_or_else(|| "anonymous".to_owned(), |user| user.id.clone())
    }

    async fn public() -> &'static str {
        "public"
    }

    async fn cart(session: Session) -> actix_web::Result<&'static str> {
        session.insert("cart", [1])?;
        Ok("added")
    }

    /// The real middleware over `$store`, the Kvixi routes and a few pages.
    macro_rules! app {
        ($kvixi:expr, $store:expr, $key:expr) => {
            test::init_service(
                App::new()
                    .wrap(session_middleware(
                        $kvixi.config(),
                        $store.clone(),
                        $key.clone(),
                    ))
                    .configure(configure($kvixi.clone()))
                    .route("/me", web::get().to(me))
                    .route("/maybe", web::get().to(maybe))
                    .route("/public", web::get().to(public))
                    .route("/cart", web::get().to(cart)),
            )
            .await
        };
    }

    /// Stores alice's session, logged in now, in `store` directly: its cookie, sealed
    /// with `key`.
    async fn alice_session(store: &Flaky, key: &Key) -> Cookie<'static> {
        let now = kvixi_core::UnixTime::now().0;
        let record = serde_json::json!({
            "user": {"id": "1001", "name": "alice"},
            "obtained_at": now,
            "token_expires_at": now + 3600,
        });
        let state = HashMap::from([(AUTH_RECORD_KEY.to_owned(), record.to_string())]);
        let session_key = store
            .memory
            .save(state, &Duration::hours(1))
            .await
            .expect("saved");
        let mut jar = CookieJar::new();
        jar.private_mut(key)
            .add(Cookie::new(SESSION_COOKIE, String::from(session_key)));
        jar.get(SESSION_COOKIE).expect("sealed").clone()
    }

    fn browser(uri: &str, cookie: &Cookie<'static>) -> TestRequest {
        TestRequest::get()
            .uri(uri)
            .insert_header((header::ACCEPT, "text/html"))
            .cookie(cookie.clone())
    }

    fn api(uri: &str, cookie: &Cookie<'static>) -> TestRequest {
        TestRequest::get()
            .uri(uri)
            .insert_header((header::ACCEPT, "application/json"))
            .cookie(cookie.clone())
    }

    fn sets_session_cookie<B>(response: &ServiceResponse<B>) -> bool {
        response
            .response()
            .cookies()
            .any(|cookie| cookie.name() == SESSION_COOKIE)
    }

    fn content_type<B>(response: &ServiceResponse<B>) -> String {
        response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    }

    #[test]
    fn only_the_session_cookie_is_dropped_from_the_answer() {
        let mut headers = HeaderMap::new();
        for value in [
            "kvixi_session=sealed; Path=/; HttpOnly",
            "kvixi_session_hint=1",
            "theme=kvixi_session=dark",
            "kvixi_session=; Max-Age=0",
        ] {
            headers.append(header::SET_COOKIE, HeaderValue::from_static(value));
        }
        drop_session_cookie(&mut headers);
        let kept: Vec<_> = headers.get_all(header::SET_COOKIE).collect();
        assert_eq!(kept, ["kvixi_session_hint=1", "theme=kvixi_session=dark"]);
    }

    #[actix_web::test]
    async fn a_healthy_store_serves_the_user_and_extends_the_session() {
        let (kvixi, store, key) = (kvixi(), Flaky::default(), Key::generate());
        let app = app!(kvixi, store, key);
        let cookie = alice_session(&store, &key).await;
        let response = test::call_service(&app, api("/me", &cookie).to_request()).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert!(
            sets_session_cookie(&response),
            "the TTL extension refreshes it"
        );
        assert_eq!(test::read_body(response).await, "1001");
    }

    #[actix_web::test]
    async fn while_the_store_is_down_a_user_gets_503_in_time_never_a_login() {
        for mode in [Mode::Refusing, Mode::Hanging] {
            let (kvixi, store, key) = (kvixi(), Flaky::default(), Key::generate());
            let app = app!(kvixi, store, key);
            let cookie = alice_session(&store, &key).await;
            store.set(mode);

            let started = Instant::now();
            let json = test::call_service(&app, api("/me", &cookie).to_request()).await;
            assert!(
                started.elapsed() < BOUND,
                "{mode:?}: {:?}",
                started.elapsed()
            );
            assert_eq!(json.status(), StatusCode::SERVICE_UNAVAILABLE, "{mode:?}");
            assert!(!sets_session_cookie(&json), "{mode:?}");
            let body: serde_json::Value =
                serde_json::from_slice(&test::read_body(json).await).expect("JSON");
            assert_eq!(body["error"], "session_store_unavailable", "{mode:?}");

            for page in ["/me", "/maybe"] {
                let started = Instant::now();
                let html = test::call_service(&app, browser(page, &cookie).to_request()).await;
                assert!(started.elapsed() < BOUND, "{mode:?} {page}");
                assert_eq!(
                    html.status(),
                    StatusCode::SERVICE_UNAVAILABLE,
                    "{mode:?} {page}: not a redirect to login, not anonymous"
                );
                assert!(
                    content_type(&html).starts_with("text/html"),
                    "{mode:?} {page}"
                );
                assert!(!sets_session_cookie(&html), "{mode:?} {page}");
            }
        }
    }

    #[actix_web::test]
    async fn while_the_store_is_down_pages_without_the_session_are_served() {
        let (kvixi, store, key) = (kvixi(), Flaky::default(), Key::generate());
        let app = app!(kvixi, store, key);
        let cookie = alice_session(&store, &key).await;
        store.set(Mode::Refusing);

        let page = test::call_service(&app, browser("/public", &cookie).to_request()).await;
        assert_eq!(page.status(), StatusCode::OK, "not actix-session's 500");
        assert!(!sets_session_cookie(&page));
        assert_eq!(test::read_body(page).await, "public");

        let login =
            test::call_service(&app, browser("/auth/kvixi/login", &cookie).to_request()).await;
        assert_eq!(login.status(), StatusCode::SEE_OTHER);
        assert!(!sets_session_cookie(&login));

        let visitor = TestRequest::get().uri("/maybe").to_request();
        let visitor = test::call_service(&app, visitor).await;
        assert_eq!(
            test::read_body(visitor).await,
            "anonymous",
            "no cookie, no store call"
        );
    }

    #[actix_web::test]
    async fn logout_during_an_outage_is_refused_and_the_session_outlives_it() {
        let (kvixi, store, key) = (kvixi(), Flaky::default(), Key::generate());
        let app = app!(kvixi, store, key);
        let cookie = alice_session(&store, &key).await;
        store.set(Mode::Hanging);

        let logout = TestRequest::post()
            .uri("/auth/kvixi/logout")
            .insert_header((header::ACCEPT, "text/html"))
            .cookie(cookie.clone())
            .to_request();
        let logout = test::call_service(&app, logout).await;
        assert_eq!(
            logout.status(),
            StatusCode::SERVICE_UNAVAILABLE,
            "no false success"
        );
        assert!(!sets_session_cookie(&logout), "the cookie is not cleared");

        store.set(Mode::Up);
        let me = test::call_service(&app, api("/me", &cookie).to_request()).await;
        assert_eq!(me.status(), StatusCode::OK, "the same cookie works again");
        assert_eq!(test::read_body(me).await, "1001");
    }

    #[actix_web::test]
    async fn nothing_is_written_during_an_outage() {
        let (kvixi, store, key) = (kvixi(), Flaky::default(), Key::generate());
        let app = app!(kvixi, store, key);
        let cookie = alice_session(&store, &key).await;
        store.set(Mode::Refusing);

        // actix-session fails these requests; the server answers the error's response.
        let before = store.calls();
        let write = browser("/cart", &cookie).to_request();
        let write = test::try_call_service(&app, write)
            .await
            .map(drop)
            .expect_err("the write is refused")
            .error_response();
        assert_eq!(
            write.status(),
            StatusCode::SERVICE_UNAVAILABLE,
            "not a lost write"
        );
        assert!(
            write
                .cookies()
                .all(|cookie| cookie.name() != SESSION_COOKIE)
        );
        assert_eq!(
            store.calls(),
            before + 1,
            "the load alone reached the store"
        );

        let fresh = TestRequest::get().uri("/cart").to_request();
        let fresh = test::try_call_service(&app, fresh)
            .await
            .map(drop)
            .expect_err("no new session")
            .error_response();
        assert_eq!(
            fresh.status(),
            StatusCode::SERVICE_UNAVAILABLE,
            "a new session that cannot be saved: 503, not actix-session's 500"
        );
        assert!(
            fresh
                .cookies()
                .all(|cookie| cookie.name() != SESSION_COOKIE)
        );

        store.set(Mode::Up);
        let me = test::call_service(&app, api("/me", &cookie).to_request()).await;
        assert_eq!(test::read_body(me).await, "1001", "the session as it was");
    }
}
