//! axum 0.8: `KvixiUser` against a hand-written handler on the same tower-sessions layer
//! and store, and against axum-login on that same store; and on Redis, against the
//! hand-written handler on the same Redis store.

use std::collections::HashMap;
use std::convert::Infallible;
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{Next, from_fn};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum_login::{AuthManagerLayerBuilder, AuthSession, AuthUser, AuthnBackend, login_required};
use criterion::Criterion;
use kvixi_axum::{KvixiRouterExt, KvixiUser, SESSION_COOKIE, require_login, session_layer};
use kvixi_core::flow::AUTH_RECORD_KEY;
use kvixi_mock::fixture::{ALICE, ALICE_USER_ID};
use tower::ServiceExt;
use tower_sessions::session::Id;
use tower_sessions::{MemoryStore, Session, SessionStore};

use crate::provider::Provider;
use crate::record::{self, bench};
use crate::shared::Backend;
use crate::{app_data, floor, table};

async fn kvixi_me(user: KvixiUser) -> String {
    user.0.id
}

async fn kvixi_app_me(user: kvixi_axum::AppUser<app_data::BenchMember>) -> String {
    std::hint::black_box(user.data.local_id);
    user.user.id
}

/// Behind the group guard: no extractor, the user the guard left in the extensions
/// (taken, as the floor takes the id out of the record).
async fn guarded_me(mut request: Request) -> Response {
    match request.extensions_mut().remove::<KvixiUser>() {
        Some(user) => user.0.id.into_response(),
        None => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

/// The hand-written group guard ([`table::HAND_GUARD`]): the floor's work in axum's own
/// `from_fn` middleware, the user left in the extensions for the handler, as
/// `require_login` leaves it.
async fn hand_guard(session: Session, mut request: Request, next: Next) -> Response {
    match session.get_value(AUTH_RECORD_KEY).await {
        Ok(Some(value)) => match floor::auth_record(value) {
            Some(record) => {
                request.extensions_mut().insert(KvixiUser(record.user));
                next.run(request).await
            }
            None => floor_anonymous(&request),
        },
        Ok(None) => floor_anonymous(&request),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

/// The floor: the auth record read from the session by hand. It takes the request by
/// value (no copy of its headers) and looks at it only to answer a visitor.
async fn floor_me(session: Session, request: Request) -> Response {
    match session.get_value(AUTH_RECORD_KEY).await {
        Ok(Some(value)) => match floor::auth_record(value) {
            Some(record) => record.user.id.into_response(),
            None => floor_anonymous(&request),
        },
        Ok(None) => floor_anonymous(&request),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

fn floor_anonymous(request: &Request) -> Response {
    let (headers, uri) = (request.headers(), request.uri());
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let mut response = if floor::prefers_json(text("accept"), text("x-requested-with")) {
        let mut response = (StatusCode::UNAUTHORIZED, floor::UNAUTHORIZED_JSON).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        response
    } else {
        let path = uri.path_and_query().map_or("/", |pq| pq.as_str());
        let location = floor::login_location(path);
        let mut response = StatusCode::SEE_OTHER.into_response();
        if let Ok(location) = HeaderValue::try_from(location) {
            response.headers_mut().insert(header::LOCATION, location);
        }
        response
    };
    for (name, value) in floor::HEADERS {
        response
            .headers_mut()
            .insert(name, HeaderValue::from_static(value));
    }
    response
}

/// The peer's user: the profile in the backend's memory, and the hash that validates
/// the session (a password hash in axum-login's examples).
#[derive(Clone, Debug)]
struct PeerUser {
    profile: kvixi_core::KvixiUser,
    auth_hash: [u8; 32],
}

impl AuthUser for PeerUser {
    type Id = String;
    fn id(&self) -> String {
        self.profile.id.clone()
    }
    fn session_auth_hash(&self) -> &[u8] {
        &self.auth_hash
    }
}

/// The cheapest possible axum-login backend: users in a map in memory.
#[derive(Clone, Debug)]
struct PeerBackend {
    users: Arc<HashMap<String, PeerUser>>,
}

impl AuthnBackend for PeerBackend {
    type User = PeerUser;
    type Credentials = String;
    type Error = Infallible;

    async fn authenticate(&self, user_id: String) -> Result<Option<PeerUser>, Infallible> {
        Ok(self.users.get(&user_id).cloned())
    }

    async fn get_user(&self, user_id: &String) -> Result<Option<PeerUser>, Infallible> {
        Ok(self.users.get(user_id).cloned())
    }
}

async fn peer_me(auth: AuthSession<PeerBackend>) -> Response {
    match auth.user {
        Some(user) => user.profile.id.into_response(),
        None => StatusCode::UNAUTHORIZED.into_response(),
    }
}

async fn peer_log_in(mut auth: AuthSession<PeerBackend>) -> StatusCode {
    match auth.authenticate(ALICE_USER_ID.to_owned()).await {
        Ok(Some(user)) if auth.login(&user).await.is_ok() => StatusCode::NO_CONTENT,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

fn request(uri: &str, cookie: Option<&HeaderValue>, accept: &'static str) -> Request {
    let mut request = Request::builder().uri(uri).header(header::ACCEPT, accept);
    if let Some(cookie) = cookie {
        request = request.header(header::COOKIE, cookie.clone());
    }
    request.body(Body::empty()).expect("a valid request")
}

/// `iters` requests one after another; the time they took.
async fn run(
    app: &Router,
    cookie: Option<&HeaderValue>,
    accept: &'static str,
    iters: u64,
) -> Duration {
    let start = Instant::now();
    for _ in 0..iters {
        let response = app
            .clone()
            .oneshot(request("/me?tab=1", cookie, accept))
            .await
            .unwrap_or_else(|never| match never {});
        black_box(response.status());
        drop(black_box(response));
    }
    start.elapsed()
}

async fn expect(app: &Router, cookie: Option<&HeaderValue>, accept: &'static str, status: u16) {
    let response = app
        .clone()
        .oneshot(request("/me?tab=1", cookie, accept))
        .await
        .unwrap_or_else(|never| match never {});
    assert_eq!(response.status().as_u16(), status, "{accept}");
    if status == 200 {
        let body = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .expect("a body");
        assert_eq!(body, ALICE_USER_ID.as_bytes());
    }
}

/// The router as `axum::serve` runs it: finalized once with its state, so that its
/// handlers are not turned into routes again at every request (which `oneshot` on an
/// unfinalized router does, at a cost that grows with each `route_layer`).
fn served(router: Router) -> Router {
    router.with_state(())
}

/// The session id a `Cookie` header names.
fn session_id(cookie: &HeaderValue) -> Id {
    let text = cookie.to_str().expect("an ASCII cookie");
    let value = text
        .strip_prefix(&format!("{SESSION_COOKIE}="))
        .expect("the session cookie");
    value.parse().expect("a session id")
}

/// Runs the axum benchmarks; returns the size of alice's auth record as stored (JSON).
pub fn benches(criterion: &mut Criterion, provider: &Provider) -> usize {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let kvixi = provider.kvixi();
    let store = MemoryStore::default();

    let kvixi_app = served(
        Router::new()
            .route("/me", get(kvixi_me))
            .with_kvixi_store(kvixi.clone(), store.clone()),
    );
    let guarded_app = served(
        Router::new()
            .route("/me", get(guarded_me))
            .route_layer(require_login())
            .with_kvixi_store(kvixi.clone(), store.clone()),
    );
    let floor_app = served(
        Router::new()
            .route("/me", get(floor_me))
            .layer(session_layer(kvixi.config(), store.clone())),
    );
    let hand_guard_app = served(
        Router::new()
            .route("/me", get(guarded_me))
            .route_layer(from_fn(hand_guard))
            .layer(session_layer(kvixi.config(), store.clone())),
    );

    let cookie = runtime
        .block_on(kvixi_axum::testing::log_in(
            &kvixi_app,
            &kvixi,
            provider.emulator(),
            ALICE,
        ))
        .expect("alice logs in");
    let record = runtime
        .block_on(store.load(&session_id(&cookie)))
        .expect("the store answers")
        .expect("the logged-in session");
    let stored = record
        .data
        .get(AUTH_RECORD_KEY)
        .expect("the auth record in the session");
    let auth_record_bytes = match stored {
        serde_json::Value::String(text) => text.len(),
        other => serde_json::to_vec(other).expect("JSON").len(),
    };
    let profile = floor::auth_record(stored.clone())
        .expect("an auth record")
        .user;

    let backend = PeerBackend {
        users: Arc::new(HashMap::from([(
            profile.id.clone(),
            PeerUser {
                profile,
                auth_hash: [0x5a; 32],
            },
        )])),
    };
    let peer_app = served(
        Router::new()
            .route("/me", get(peer_me))
            .route_layer(login_required!(PeerBackend))
            .route("/login", post(peer_log_in))
            .layer(
                AuthManagerLayerBuilder::new(backend, session_layer(kvixi.config(), store.clone()))
                    .build(),
            ),
    );
    let peer_cookie = runtime.block_on(async {
        let login = Request::post("/login")
            .body(Body::empty())
            .expect("a request");
        let response = peer_app
            .clone()
            .oneshot(login)
            .await
            .unwrap_or_else(|n| match n {});
        assert_eq!(response.status(), StatusCode::NO_CONTENT);
        let set_cookie = response.headers()[header::SET_COOKIE]
            .to_str()
            .expect("ASCII");
        let pair = set_cookie.split(';').next().expect("name=value");
        HeaderValue::try_from(pair).expect("a header value")
    });

    use floor::{ACCEPT_BROWSER as BROWSER, ACCEPT_JSON as JSON};
    runtime.block_on(async {
        for app in [&kvixi_app, &floor_app, &guarded_app, &hand_guard_app] {
            expect(app, Some(&cookie), JSON, 200).await;
            expect(app, None, JSON, 401).await;
            expect(app, None, BROWSER, 303).await;
        }
        expect(&peer_app, Some(&peer_cookie), JSON, 200).await;
        expect(&peer_app, None, JSON, 401).await;
    });

    let cases: [(&str, &str, &Router, Option<&HeaderValue>, &'static str); 10] = [
        (
            table::AUTHENTICATED,
            table::FLOOR,
            &floor_app,
            Some(&cookie),
            JSON,
        ),
        (
            table::AUTHENTICATED,
            table::KVIXI,
            &kvixi_app,
            Some(&cookie),
            JSON,
        ),
        (
            table::AUTHENTICATED,
            table::GUARDED,
            &guarded_app,
            Some(&cookie),
            JSON,
        ),
        (
            table::AUTHENTICATED,
            table::HAND_GUARD,
            &hand_guard_app,
            Some(&cookie),
            JSON,
        ),
        (
            table::AUTHENTICATED,
            table::PEER,
            &peer_app,
            Some(&peer_cookie),
            JSON,
        ),
        (table::ANONYMOUS_JSON, table::FLOOR, &floor_app, None, JSON),
        (table::ANONYMOUS_JSON, table::KVIXI, &kvixi_app, None, JSON),
        (table::ANONYMOUS_JSON, table::PEER, &peer_app, None, JSON),
        (
            table::ANONYMOUS_BROWSER,
            table::FLOOR,
            &floor_app,
            None,
            BROWSER,
        ),
        (
            table::ANONYMOUS_BROWSER,
            table::KVIXI,
            &kvixi_app,
            None,
            BROWSER,
        ),
    ];
    for (path, variant, app, cookie, accept) in cases {
        bench(criterion, &table::id(path, "axum", variant), |iters| {
            runtime.block_on(run(app, cookie, accept, iters))
        });
    }
    // Issue 14: the app's own data, typed, from the same record.
    let app_data_app = served(
        Router::new()
            .route("/me", get(kvixi_app_me))
            .with_kvixi_store(kvixi.clone(), store.clone()),
    );
    runtime.block_on(expect(&app_data_app, Some(&cookie), JSON, 200));
    let app_id = table::id(table::AUTHENTICATED, "axum", app_data::KVIXI_APP);
    bench(criterion, &app_id, |iters| {
        runtime.block_on(run(&app_data_app, Some(&cookie), JSON, iters))
    });

    let authenticated = |variant: &str| table::id(table::AUTHENTICATED, "axum", variant);
    let me = |app: &Router, cookie: &HeaderValue, n: u64| {
        runtime.block_on(run(app, Some(cookie), JSON, n))
    };
    record::interleave(&mut [
        (authenticated(table::FLOOR), &mut |n| {
            me(&floor_app, &cookie, n)
        }),
        (authenticated(table::KVIXI), &mut |n| {
            me(&kvixi_app, &cookie, n)
        }),
        (authenticated(table::GUARDED), &mut |n| {
            me(&guarded_app, &cookie, n)
        }),
        (authenticated(table::HAND_GUARD), &mut |n| {
            me(&hand_guard_app, &cookie, n)
        }),
        (authenticated(app_data::KVIXI_APP), &mut |n| {
            me(&app_data_app, &cookie, n)
        }),
        (authenticated(table::PEER), &mut |n| {
            me(&peer_app, &peer_cookie, n)
        }),
    ]);
    auth_record_bytes
}

/// The shared-store rows: `KvixiUser` behind the one-line setup on `KVIXI_REDIS_URL` or
/// `KVIXI_DATABASE_URL` (`with_kvixi`: the store the config names, on the flow's pool)
/// against the floor on the same session layer and the same store crate on that pool.
pub fn shared_benches(criterion: &mut Criterion, provider: &Provider, backend: &Backend) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let kvixi = runtime.block_on(backend.kvixi(provider, "axum"));
    let kvixi_app = served(
        Router::new()
            .route("/me", get(kvixi_me))
            .with_kvixi(kvixi.clone()),
    );
    let floor_app = served(
        Router::new()
            .route("/me", get(floor_me))
            .layer(session_layer(kvixi.config(), backend.floor_store(&kvixi))),
    );
    let log_in = |user: &str| {
        runtime
            .block_on(kvixi_axum::testing::log_in(
                &kvixi_app,
                &kvixi,
                provider.emulator(),
                user,
            ))
            .unwrap_or_else(|error| panic!("{user} logs in: {error}"))
    };
    let cookie = log_in(ALICE);
    use floor::ACCEPT_JSON as JSON;
    runtime.block_on(async {
        for app in [&kvixi_app, &floor_app] {
            expect(app, Some(&cookie), JSON, 200).await;
            expect(app, None, JSON, 401).await;
        }
    });
    backend.log_in_users("axum", |user| drop(log_in(user)));

    let id = |variant: &str| table::id(backend.path(), "axum", variant);
    let me = |app: &Router, n: u64| runtime.block_on(run(app, Some(&cookie), JSON, n));
    bench(criterion, &id(table::FLOOR), |n| me(&floor_app, n));
    bench(criterion, &id(table::KVIXI), |n| me(&kvixi_app, n));
    record::interleave_rounds(
        &mut [
            (id(table::FLOOR), &mut |n| me(&floor_app, n)),
            (id(table::KVIXI), &mut |n| me(&kvixi_app, n)),
        ],
        crate::shared::ROUNDS,
    );
    crate::shared::count_queries(&id(table::FLOOR), crate::shared::COUNTED_REQUESTS, |n| {
        me(&floor_app, n);
    });
    crate::shared::count_queries(&id(table::KVIXI), crate::shared::COUNTED_REQUESTS, |n| {
        me(&kvixi_app, n);
    });
}
