//! What is specific to the actix adapter; the flow a user sees is proven for every
//! adapter by the end-to-end suite in `tests/`.

use actix_web::cookie::{Key, SameSite};
use actix_web::http::StatusCode;
use actix_web::{App, test, web};
use kvixi_actix::{Kvixi, KvixiUser, MemoryStore};
use kvixi_core::{Config, SESSION_COOKIE};

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
    assert!(
        text.contains(".configure(kvixi_actix::configure(kvixi))"),
        "{text}"
    );
}

/// The session cookie a login sets, for a flow redirecting to `redirect_url`.
async fn login_cookie(redirect_url: &str) -> actix_web::cookie::Cookie<'static> {
    let kvixi = kvixi(redirect_url);
    let app = test::init_service(
        App::new()
            .wrap(kvixi_actix::session_middleware(
                kvixi.config(),
                MemoryStore::default(),
                Key::generate(),
            ))
            .configure(kvixi_actix::configure(kvixi.clone())),
    )
    .await;
    let request = test::TestRequest::get()
        .uri("/auth/kvixi/login")
        .to_request();
    let response = test::call_service(&app, request).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    response
        .response()
        .cookies()
        .find(|cookie| cookie.name() == SESSION_COOKIE)
        .map(|cookie| cookie.into_owned())
        .expect("a session cookie")
}

#[actix_web::test]
async fn session_cookie_is_http_only_lax_and_site_wide() {
    let cookie = login_cookie("http://localhost:3000/auth/kvixi/callback").await;
    assert_eq!(cookie.http_only(), Some(true));
    assert_eq!(cookie.same_site(), Some(SameSite::Lax));
    assert_eq!(cookie.path(), Some("/"));
    assert_ne!(
        cookie.secure(),
        Some(true),
        "plain http: a Secure cookie would be lost"
    );
}

#[actix_web::test]
async fn https_redirect_url_makes_the_session_cookie_secure() {
    let cookie = login_cookie("https://app.example/auth/kvixi/callback").await;
    assert_eq!(cookie.secure(), Some(true));
}
