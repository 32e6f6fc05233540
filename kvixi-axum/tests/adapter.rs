//! What is specific to the axum adapter; the user-visible flow is proven for every
//! adapter by the end-to-end suite in `tests/`.

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use axum::routing::get;
use kvixi_axum::{Kvixi, KvixiRouterExt, KvixiUser};
use kvixi_core::Config;
use tower::ServiceExt;

async fn me(user: KvixiUser) -> String {
    user.id.clone()
}

fn kvixi(redirect_url: &str, base_url: &str) -> Kvixi {
    let config = Config::builder("app", "secret", redirect_url)
        .base_url(base_url)
        .build()
        .expect("valid config");
    Kvixi::new(config).expect("flow builds")
}

#[tokio::test]
async fn extractor_without_the_layer_names_the_fix() {
    let app: Router = Router::new().route("/me", get(me));
    let response = app
        .oneshot(Request::get("/me").body(Body::empty()).expect("request"))
        .await
        .expect("infallible");
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let body = axum::body::to_bytes(response.into_body(), 4096)
        .await
        .expect("body");
    let text = String::from_utf8_lossy(&body);
    assert!(text.contains("with_kvixi"), "{text}");
}

#[tokio::test]
async fn https_redirect_url_makes_the_session_cookie_secure() {
    let kvixi = kvixi(
        "https://app.example/auth/kvixi/callback",
        "http://127.0.0.1:9",
    );
    let app = Router::new()
        .route("/me", get(me))
        .with_kvixi(kvixi.clone());
    let mut request = Request::get("/auth/kvixi/callback")
        .body(Body::empty())
        .expect("request");
    request
        .extensions_mut()
        .insert(kvixi_core::testing::TestLogin(kvixi_core::KvixiUser::test(
            "dan",
        )));
    let response = app.oneshot(request).await.expect("infallible");
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let cookie = response
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .find(|value| value.starts_with(kvixi_core::SESSION_COOKIE))
        .expect("a session cookie")
        .to_ascii_lowercase();
    assert!(cookie.contains("; secure"), "{cookie}");
    assert!(cookie.contains("samesite=lax"), "{cookie}");
    assert!(cookie.contains("httponly"), "{cookie}");
}

#[tokio::test]
async fn testing_helper_logs_a_fixture_user_in_on_the_router() {
    let callback = "http://localhost:3000/auth/kvixi/callback";
    let emulator = kvixi_mock::Emulator::builder()
        .app(kvixi_mock::App::new("app", "secret", callback))
        .start("127.0.0.1:0")
        .await
        .expect("emulator");
    let kvixi = kvixi(callback, &emulator.base_url());
    let app = Router::new()
        .route("/me", get(me))
        .with_kvixi(kvixi.clone());
    let cookie = kvixi_axum::testing::log_in(&app, &kvixi, &emulator, "bob")
        .await
        .expect("logged in");
    let response = app
        .oneshot(
            Request::get("/me")
                .header(header::COOKIE, cookie)
                .body(Body::empty())
                .expect("request"),
        )
        .await
        .expect("infallible");
    assert_eq!(response.status(), StatusCode::OK);
    let body = axum::body::to_bytes(response.into_body(), 4096)
        .await
        .expect("body");
    assert_eq!(&body[..], kvixi_mock::fixture::BOB_USER_ID.as_bytes());
}

/// `testing::log_in_as` through `app`, then `/me` with the cookie it returns: the user id.
async fn me_after_log_in_as(app: Router, kvixi: &Kvixi) -> (StatusCode, String) {
    let user = kvixi_core::KvixiUser::test("carol");
    let cookie = kvixi_axum::testing::log_in_as(&app, kvixi, user)
        .await
        .expect("logged in without Kvixi");
    let response = app
        .oneshot(
            Request::get("/me")
                .header(header::COOKIE, cookie)
                .body(Body::empty())
                .expect("request"),
        )
        .await
        .expect("infallible");
    let status = response.status();
    let body = axum::body::to_bytes(response.into_body(), 4096)
        .await
        .expect("body");
    (status, String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test]
async fn log_in_as_needs_no_emulator_with_the_default_store_or_the_apps_own() {
    // Port 9 never answers: nothing here may call Kvixi.
    let kvixi = kvixi(
        "http://localhost:3000/auth/kvixi/callback",
        "http://127.0.0.1:9",
    );
    let default_store = Router::new()
        .route("/me", get(me))
        .with_kvixi(kvixi.clone());
    assert_eq!(
        me_after_log_in_as(default_store, &kvixi).await,
        (StatusCode::OK, "test-carol".to_owned())
    );

    let store = kvixi_core::MemoryStore::new(10);
    let own_store = Router::new()
        .route("/me", get(me))
        .with_kvixi_store(kvixi.clone(), store.clone());
    assert_eq!(
        me_after_log_in_as(own_store, &kvixi).await,
        (StatusCode::OK, "test-carol".to_owned())
    );
    assert_eq!(
        store.len(),
        1,
        "the session is in the store the app passed in"
    );
}

#[tokio::test]
async fn a_client_cannot_ask_for_a_test_login() {
    let kvixi = kvixi(
        "http://localhost:3000/auth/kvixi/callback",
        "http://127.0.0.1:9",
    );
    let app = Router::new().route("/me", get(me)).with_kvixi(kvixi);
    // Without the in-process extension, the callback is a callback: no pending login.
    let response = app
        .oneshot(
            Request::get("/auth/kvixi/callback")
                .header("x-kvixi-test-login", "carol")
                .body(Body::empty())
                .expect("request"),
        )
        .await
        .expect("infallible");
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let session_cookie = format!("{}=", kvixi_core::SESSION_COOKIE);
    assert!(
        response
            .headers()
            .get_all(header::SET_COOKIE)
            .iter()
            .all(|value| !value.to_str().unwrap_or("").starts_with(&session_cookie)),
        "no session is created"
    );
}

/// A store in memory that makes every call wait on a timer, as a networked store (Redis)
/// waits on its socket: the group guard's read does not answer on its first poll, and
/// goes on only when the task's own waker is woken (a lost wake-up hangs the request,
/// which the test's timeout turns into a failure).
#[derive(Clone, Debug)]
struct Waiting(kvixi_core::MemoryStore);

#[kvixi_core::async_trait]
impl tower_sessions::SessionStore for Waiting {
    async fn create(
        &self,
        record: &mut tower_sessions::session::Record,
    ) -> tower_sessions::session_store::Result<()> {
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        self.0.create(record).await
    }
    async fn save(
        &self,
        record: &tower_sessions::session::Record,
    ) -> tower_sessions::session_store::Result<()> {
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        self.0.save(record).await
    }
    async fn load(
        &self,
        id: &tower_sessions::session::Id,
    ) -> tower_sessions::session_store::Result<Option<tower_sessions::session::Record>> {
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        self.0.load(id).await
    }
    async fn delete(
        &self,
        id: &tower_sessions::session::Id,
    ) -> tower_sessions::session_store::Result<()> {
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        self.0.delete(id).await
    }
}

#[tokio::test]
async fn group_guards_admit_and_refuse_when_the_store_makes_them_wait() {
    use axum::Extension;
    use kvixi_axum::require_login;

    async fn name(Extension(user): Extension<KvixiUser>) -> String {
        user.id.clone()
    }
    // A test double wrapping a memory store: per process, as its revocations say.
    let config = Config::builder("app", "secret", "http://localhost:3000/auth/kvixi/callback")
        .base_url("http://127.0.0.1:9")
        .build()
        .expect("valid config");
    let kvixi = Kvixi::builder(config)
        .revocations(kvixi_core::MemoryRevocations::default())
        .build()
        .expect("flow builds");
    let unverified_only = Router::new()
        .route("/account/unverified", get(name))
        .route_layer(require_login().allow(|user| !user.verified));
    let app = Router::new()
        .route("/account", get(name))
        .merge(unverified_only)
        .route_layer(require_login())
        .route("/me", get(me))
        .with_kvixi_store(kvixi.clone(), Waiting(kvixi_core::MemoryStore::new(10)));
    let cookie = kvixi_axum::testing::log_in_as(&app, &kvixi, kvixi_core::KvixiUser::test("dave"))
        .await
        .expect("logged in without Kvixi");

    let get = |path: &'static str, cookie: Option<&axum::http::HeaderValue>| {
        let mut request = Request::get(path).header(header::ACCEPT, "application/json");
        if let Some(cookie) = cookie {
            request = request.header(header::COOKIE, cookie.clone());
        }
        let app = app.clone();
        async move {
            let call = app.oneshot(request.body(Body::empty()).expect("request"));
            let response = tokio::time::timeout(std::time::Duration::from_secs(5), call)
                .await
                .expect("answered: no wake-up lost")
                .expect("infallible");
            let status = response.status();
            let body = axum::body::to_bytes(response.into_body(), 4096)
                .await
                .expect("body");
            (status, String::from_utf8_lossy(&body).into_owned())
        }
    };
    assert_eq!(
        get("/account", Some(&cookie)).await,
        (StatusCode::OK, "test-dave".to_owned())
    );
    let (status, body) = get("/account/unverified", Some(&cookie)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "dave is verified: {body}");
    assert!(body.contains("not_allowed"), "{body}");
    let (status, body) = get("/account", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert!(body.contains("not_logged_in"), "{body}");
}

#[test]
#[should_panic(expected = "KVIXI_REDIS_URL")]
fn an_own_shared_store_with_per_process_revocations_fails_at_startup() {
    let kvixi = kvixi(
        "http://localhost:3000/auth/kvixi/callback",
        "http://127.0.0.1:9",
    );
    // Any store but a memory store may be shared by several instances.
    let _ = Router::<()>::new().with_kvixi_store(kvixi, Waiting(kvixi_core::MemoryStore::new(10)));
}

#[test]
fn an_own_store_passes_with_revocations_chosen_or_in_memory() {
    let _ = Router::<()>::new().with_kvixi_store(
        kvixi(
            "http://localhost:3000/auth/kvixi/callback",
            "http://127.0.0.1:9",
        ),
        kvixi_core::MemoryStore::new(10),
    );
    let config = Config::builder("app", "secret", "http://localhost:3000/auth/kvixi/callback")
        .build()
        .expect("valid config");
    let chosen = Kvixi::builder(config)
        .revocations(kvixi_core::MemoryRevocations::default())
        .build()
        .expect("flow builds");
    let _ = Router::<()>::new().with_kvixi_store(chosen, Waiting(kvixi_core::MemoryStore::new(10)));
}
