//! What is specific to the actix adapter; the flow a user sees is proven for every
//! adapter by the end-to-end suite in `tests/`.

use actix_web::cookie::SameSite;
use actix_web::http::StatusCode;
use actix_web::{App, test, web};
use kvixi_actix::{Kvixi, KvixiAppExt, KvixiUser};
use kvixi_core::{Config, SESSION_COOKIE};
use tower_sessions_core::session::{Id, Record};
use tower_sessions_core::session_store;

async fn me(user: KvixiUser) -> String {
    user.id.clone()
}

/// A flow whose provider is never called by these tests.
fn kvixi(redirect_url: &str) -> Kvixi {
    let config = Config::builder("app", "secret", redirect_url)
        .base_url("http://127.0.0.1:9")
        .build()
        .expect("valid config");
    Kvixi::new(config).expect("flow builds")
}

#[actix_web::test]
async fn extractor_without_configure_names_the_fix() {
    let app = test::init_service(App::new().route("/me", web::get().to(me))).await;
    let response = test::call_service(&app, test::TestRequest::get().uri("/me").to_request()).await;
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let body = test::read_body(response).await;
    let text = String::from_utf8_lossy(&body);
    assert!(text.contains(".with_kvixi(kvixi)"), "{text}");
}

/// The cookies a request to `uri` sets, on an app redirecting to `redirect_url`; with
/// `log_in`, the request is a test login (the callback route writing alice's session).
async fn cookies_set_by(
    redirect_url: &str,
    uri: &str,
    log_in: bool,
) -> Vec<actix_web::cookie::Cookie<'static>> {
    let kvixi = kvixi(redirect_url);
    let app = test::init_service(App::new().with_kvixi(kvixi.clone())).await;
    let request = test::TestRequest::get().uri(uri).to_request();
    #[cfg(feature = "testing")]
    if log_in {
        let alice = kvixi_core::testing::TestLogin(kvixi_core::KvixiUser::test("alice"));
        actix_web::HttpMessage::extensions_mut(&request).insert(alice);
    }
    #[cfg(not(feature = "testing"))]
    let _ = log_in;
    let response = test::call_service(&app, request).await;
    assert!(response.status().is_success() || response.status().is_redirection());
    response
        .response()
        .cookies()
        .map(|cookie| cookie.into_owned())
        .collect()
}

/// The session cookie, as a login sets it.
#[cfg(feature = "testing")]
async fn session_cookie(redirect_url: &str) -> actix_web::cookie::Cookie<'static> {
    cookies_set_by(redirect_url, "/auth/kvixi/callback", true)
        .await
        .into_iter()
        .find(|cookie| cookie.name() == SESSION_COOKIE)
        .expect("a session cookie")
}

#[actix_web::test]
async fn login_start_sets_only_the_login_cookie_scoped_to_the_callback() {
    let cookies = cookies_set_by(
        "https://app.example/auth/kvixi/callback",
        "/auth/kvixi/login",
        false,
    )
    .await;
    assert!(
        cookies.iter().all(|cookie| cookie.name() != SESSION_COOKIE),
        "no session for a visitor who only started a login: {cookies:?}"
    );
    let login = cookies
        .iter()
        .find(|cookie| cookie.name() == kvixi_core::flow::LOGIN_COOKIE)
        .expect("the login cookie");
    assert_eq!(login.path(), Some("/auth/kvixi/callback"));
    assert_eq!(login.http_only(), Some(true));
    assert_eq!(login.secure(), Some(true));
    assert_eq!(login.same_site(), Some(SameSite::Lax));
    assert_eq!(
        login.max_age(),
        Some(actix_web::cookie::time::Duration::minutes(10))
    );
}

#[cfg(feature = "testing")]
#[actix_web::test]
async fn session_cookie_is_http_only_lax_and_site_wide() {
    let cookie = session_cookie("http://localhost:3000/auth/kvixi/callback").await;
    assert_eq!(cookie.http_only(), Some(true));
    assert_eq!(cookie.same_site(), Some(SameSite::Lax));
    assert_eq!(cookie.path(), Some("/"));
    assert_eq!(
        cookie.expires(),
        None,
        "ends with the browser: the store decides"
    );
    assert!(
        !cookie.value().contains("alice"),
        "only a sealed session id"
    );
    assert_ne!(
        cookie.secure(),
        Some(true),
        "plain http: a Secure cookie would be lost"
    );
}

#[cfg(feature = "testing")]
#[actix_web::test]
async fn https_redirect_url_makes_the_session_cookie_secure() {
    let cookie = session_cookie("https://app.example/auth/kvixi/callback").await;
    assert_eq!(cookie.secure(), Some(true));
}

/// The group guard decides at once on a loaded session, and falls back to the core's
/// full read when it cannot: a session past its lifetime is over and its record
/// removed, so it stays anonymous once the clock is back; a user refused by the
/// predicate gets 403.
#[cfg(feature = "testing")]
#[actix_web::test]
async fn group_guard_admits_refuses_and_ends_a_session_past_its_lifetime() {
    use actix_web::{HttpResponse, web::ReqData};
    use kvixi_actix::RequireLogin;

    async fn account(user: ReqData<KvixiUser>) -> HttpResponse {
        HttpResponse::Ok().body(user.id.clone())
    }
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};

    let clock = Arc::new(AtomicU64::new(1_800_000_000));
    let app_clock = clock.clone();
    let config = Config::builder("app", "secret", "http://localhost:3000/auth/kvixi/callback")
        .base_url("http://127.0.0.1:9")
        .max_session_lifetime(std::time::Duration::from_secs(3600))
        .build()
        .expect("valid config");
    let kvixi = Kvixi::builder(config)
        .clock(move || kvixi_core::UnixTime(app_clock.load(Ordering::SeqCst)))
        .build()
        .expect("flow builds");
    let app = test::init_service(
        App::new().with_kvixi(kvixi.clone()).service(
            web::scope("/account")
                .wrap(RequireLogin::new())
                .route("", web::get().to(account))
                .service(
                    web::scope("/unverified")
                        .wrap(RequireLogin::new().allow(|user| !user.verified))
                        .route("", web::get().to(account)),
                ),
        ),
    )
    .await;
    let cookie = kvixi_actix::testing::log_in_as(&app, &kvixi, kvixi_core::KvixiUser::test("erin"))
        .await
        .expect("logged in without Kvixi");
    let get = |path: &str| {
        test::TestRequest::get()
            .uri(path)
            .insert_header(("accept", "application/json"))
            .cookie(cookie.clone())
            .to_request()
    };

    let response = test::call_service(&app, get("/account")).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(test::read_body(response).await, "test-erin");
    let response = test::call_service(&app, get("/account/unverified")).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN, "erin is verified");

    // Past the lifetime: over, and the full read removes the record.
    clock.fetch_add(2 * 3600, Ordering::SeqCst);
    let response = test::call_service(&app, get("/account")).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let body = test::read_body(response).await;
    assert!(String::from_utf8_lossy(&body).contains("not_logged_in"));
    // Back within it: still anonymous, because the record is gone.
    clock.fetch_sub(2 * 3600, Ordering::SeqCst);
    let response = test::call_service(&app, get("/account")).await;
    assert_eq!(
        response.status(),
        StatusCode::UNAUTHORIZED,
        "the ended session's record was removed"
    );
}

/// A flow sealing cookies with `key` and opening them with `previous` too.
#[cfg(feature = "testing")]
fn keyed(key: &str, previous: &[&str]) -> Kvixi {
    let config = Config::builder("app", "secret", "http://localhost:3000/auth/kvixi/callback")
        .base_url("http://127.0.0.1:9")
        .cookie_key(key)
        .previous_cookie_keys(previous.iter().copied())
        .build()
        .expect("valid config");
    Kvixi::new(config).expect("flow builds")
}

/// A key rotation logs nobody out, even behind a middleware wrapped *outside*
/// `with_kvixi` that reads the request's cookies before it (actix-web keeps that first
/// parse of the `Cookie` header): the answer seals the cookie again with the new key,
/// which alone opens it once the old key is dropped.
#[cfg(feature = "testing")]
#[actix_web::test]
async fn a_key_rotation_logs_nobody_out_behind_a_middleware_that_reads_cookies_first() {
    use actix_web::dev::Service;
    use std::sync::{Arc, Mutex};

    const OLD: &str = "the-old-cookie-key-of-at-least-32-bytes!!";
    const NEW: &str = "the-new-cookie-key-of-at-least-32-bytes!!";
    let store = kvixi_actix::MemoryStore::default();
    let before = keyed(OLD, &[]);
    let app = test::init_service(App::new().with_kvixi_store(before.clone(), store.clone())).await;
    let alice = kvixi_core::KvixiUser::test("alice");
    let old = kvixi_actix::testing::log_in_as(&app, &before, alice)
        .await
        .expect("logged in with the old key");

    // Restarted with the new key current and the old one previous, behind a middleware
    // that parses the cookies first.
    let seen = Arc::new(Mutex::new(Vec::new()));
    let app = |kvixi: Kvixi| {
        let seen = Arc::clone(&seen);
        App::new()
            .with_kvixi_store(kvixi, store.clone())
            .route("/me", web::get().to(me))
            .wrap_fn(move |request, service| {
                let names = request.cookies().map(|cookies| {
                    let names = cookies.iter().map(|cookie| cookie.name().to_owned());
                    names.collect::<Vec<_>>()
                });
                seen.lock()
                    .expect("not poisoned")
                    .push(names.unwrap_or_default());
                service.call(request)
            })
    };
    let get = |cookie: &actix_web::cookie::Cookie<'static>| {
        test::TestRequest::get()
            .uri("/me")
            .insert_header(("accept", "application/json"))
            .cookie(cookie.clone())
            .to_request()
    };
    let rotated = test::init_service(app(keyed(NEW, &[OLD]))).await;
    let response = test::call_service(&rotated, get(&old)).await;
    assert_eq!(response.status(), StatusCode::OK, "still logged in");
    let resealed = response
        .response()
        .cookies()
        .find(|cookie| cookie.name() == SESSION_COOKIE)
        .map(|cookie| cookie.into_owned())
        .expect("the session cookie sealed again with the new key");
    assert_ne!(resealed.value(), old.value());
    assert_eq!(resealed.http_only(), Some(true));
    assert_eq!(resealed.same_site(), Some(SameSite::Lax));
    assert_eq!(resealed.path(), Some("/"));
    assert_eq!(test::read_body(response).await, "test-alice");
    assert_eq!(
        seen.lock().expect("not poisoned").as_slice(),
        [vec![SESSION_COOKIE.to_owned()]],
        "the outer middleware parsed the cookies first"
    );

    // The old key dropped: the resealed cookie still opens the session, the old one not.
    let later = test::init_service(app(keyed(NEW, &[]))).await;
    let response = test::call_service(&later, get(&resealed)).await;
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "the resealed cookie opens"
    );
    let response = test::call_service(&later, get(&old)).await;
    assert_eq!(
        response.status(),
        StatusCode::UNAUTHORIZED,
        "the old key is gone"
    );
}

/// A store that refuses every call, as a Redis client without a connection does.
#[derive(Clone, Debug)]
struct Down;

#[kvixi_core::async_trait]
impl kvixi_actix::SessionStore for Down {
    async fn save(&self, _: &Record) -> session_store::Result<()> {
        Err(session_store::Error::Backend("Connection refused".into()))
    }
    async fn load(&self, _: &Id) -> session_store::Result<Option<Record>> {
        Err(session_store::Error::Backend("Connection refused".into()))
    }
    async fn delete(&self, _: &Id) -> session_store::Result<()> {
        Err(session_store::Error::Backend("Connection refused".into()))
    }
}

/// While the store is down, a request that needs the session gets 503, never a login
/// nor a visitor's page (`Option<KvixiUser>` included), logout claims no success and no
/// session cookie goes out; pages that do not read the session are served.
#[actix_web::test]
async fn while_the_store_is_down_a_user_gets_503_never_a_login() {
    async fn maybe(user: Option<KvixiUser>) -> String {
        user.map_or_else(|| "anonymous".to_owned(), |user| user.id.clone())
    }
    let config = Config::builder("app", "secret", "http://localhost:3000/auth/kvixi/callback")
        .base_url("http://127.0.0.1:9")
        .build()
        .expect("valid config");
    let kvixi = Kvixi::builder(config)
        .revocations(kvixi_core::MemoryRevocations::default())
        .build()
        .expect("flow builds");
    let sealed = kvixi
        .config()
        .cookie_key()
        .seal(SESSION_COOKIE, &Id::default().to_string());
    let session = actix_web::cookie::Cookie::new(SESSION_COOKIE, sealed);
    let app = test::init_service(
        App::new()
            .with_kvixi_store(kvixi, Down)
            .route("/me", web::get().to(me))
            .route("/maybe", web::get().to(maybe))
            .route("/public", web::get().to(|| async { "public" })),
    )
    .await;
    let call = async |method: test::TestRequest, uri: &str, accept: &str| {
        let request = method
            .uri(uri)
            .insert_header(("accept", accept))
            .cookie(session.clone());
        let response = test::call_service(&app, request.to_request()).await;
        let cookies = response.response().cookies().count();
        (response.status(), cookies, test::read_body(response).await)
    };
    for (uri, accept) in [
        ("/me", "application/json"),
        ("/me", "text/html"),
        ("/maybe", "text/html"),
    ] {
        let (status, cookies, body) = call(test::TestRequest::get(), uri, accept).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{uri} {accept}");
        assert_eq!(cookies, 0, "{uri} {accept}");
        if accept == "application/json" {
            assert!(String::from_utf8_lossy(&body).contains("session_store_unavailable"));
        }
    }
    let logout = call(test::TestRequest::post(), "/auth/kvixi/logout", "text/html").await;
    assert_eq!(
        logout.0,
        StatusCode::SERVICE_UNAVAILABLE,
        "no false success"
    );
    assert_eq!(logout.1, 0, "the cookie is not cleared");
    let public = call(test::TestRequest::get(), "/public", "text/html").await;
    assert_eq!((public.0, public.2), (StatusCode::OK, "public".into()));
}
