//! Rocket 0.5: the `KvixiUser` guard against a hand-written handler that decrypts the
//! same private cookie and reads the same tower-sessions store (in memory, and on Redis).

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::Criterion;
use kvixi_core::CookieKey;
use kvixi_core::flow::AUTH_RECORD_KEY;
use kvixi_mock::fixture::{ALICE, ALICE_USER_ID};
use kvixi_rocket::{KvixiFairing, KvixiUser, RequireLogin, SESSION_COOKIE};
use rocket::http::uri::Origin;
use rocket::http::{Cookie, CookieJar, Header, Status};
use rocket::local::asynchronous::{Client, LocalRequest};
use rocket::request::{FromRequest, Outcome, Request};
use rocket::response::{self, Responder, Response};
use rocket::{Build, Rocket, State};
use tower_sessions_core::SessionStore;
use tower_sessions_core::session::Id;
use tower_sessions_memory_store::MemoryStore;

use crate::floor::{ACCEPT_BROWSER as BROWSER, ACCEPT_JSON as JSON};
use crate::provider::Provider;
use crate::record::{self, bench};
use crate::shared::{Backend, FloorStore};
use crate::{app_data, floor, table};

#[rocket::get("/me")]
fn kvixi_me(user: KvixiUser) -> String {
    user.0.id
}

#[rocket::get("/me")]
fn kvixi_app_me(user: kvixi_rocket::AppUser<app_data::BenchMember>) -> String {
    std::hint::black_box(user.data.local_id);
    user.user.id
}

/// What the floor looks at, only to answer a visitor: borrowed, nothing copied.
struct Visitor<'r> {
    accept: Option<&'r str>,
    requested_with: Option<&'r str>,
    uri: &'r Origin<'r>,
}

#[rocket::async_trait]
impl<'r> FromRequest<'r> for Visitor<'r> {
    type Error = std::convert::Infallible;

    async fn from_request(request: &'r Request<'_>) -> Outcome<Self, Self::Error> {
        let headers = request.headers();
        Outcome::Success(Visitor {
            accept: headers.get_one("Accept"),
            requested_with: headers.get_one("X-Requested-With"),
            uri: request.uri(),
        })
    }
}

/// The floor's answer to a visitor.
struct Refused {
    prefers_json: bool,
    path_and_query: String,
}

impl<'r> Responder<'r, 'static> for Refused {
    fn respond_to(self, _request: &'r Request<'_>) -> response::Result<'static> {
        let mut response = Response::build();
        if self.prefers_json {
            response
                .status(Status::Unauthorized)
                .raw_header("content-type", "application/json")
                .sized_body(
                    floor::UNAUTHORIZED_JSON.len(),
                    std::io::Cursor::new(floor::UNAUTHORIZED_JSON),
                );
        } else {
            response
                .status(Status::SeeOther)
                .raw_header("location", floor::login_location(&self.path_and_query));
        }
        for (name, value) in floor::HEADERS {
            response.raw_header(name, value);
        }
        response.ok()
    }
}

/// The floor: the private cookie decrypted, the record loaded from the store and the
/// auth record read from it, by hand.
#[rocket::get("/me")]
async fn floor_me(
    cookies: &CookieJar<'_>,
    store: &State<MemoryStore>,
    key: &State<CookieKey>,
    visitor: Visitor<'_>,
) -> Result<String, Refused> {
    floor_user(cookies, store.inner(), key, visitor).await
}

/// The floor on a shared store (Redis, SQLite, Postgres).
#[rocket::get("/me")]
async fn floor_me_shared(
    cookies: &CookieJar<'_>,
    store: &State<FloorStore>,
    key: &State<CookieKey>,
    visitor: Visitor<'_>,
) -> Result<String, Refused> {
    floor_user(cookies, store.inner(), key, visitor).await
}

/// What both floors answer, from whichever store holds the sessions.
async fn floor_user<St: SessionStore>(
    cookies: &CookieJar<'_>,
    store: &St,
    key: &CookieKey,
    visitor: Visitor<'_>,
) -> Result<String, Refused> {
    // Sealed with the app's cookie key, as kvixi-rocket seals it.
    let id = cookies
        .get(SESSION_COOKIE)
        .and_then(|cookie| key.open(SESSION_COOKIE, cookie.value()))
        .and_then(|id| id.parse::<Id>().ok());
    let record = match id {
        Some(id) => store.load(&id).await.ok().flatten(),
        None => None,
    };
    let user = record
        .and_then(|mut record| record.data.remove(AUTH_RECORD_KEY))
        .and_then(floor::auth_record);
    match user {
        Some(record) => Ok(record.user.id),
        None => Err(Refused {
            prefers_json: floor::prefers_json(visitor.accept, visitor.requested_with),
            path_and_query: visitor.uri.to_string(),
        }),
    }
}

/// A rocket with the bench's secret key and Rocket's own log off.
fn base() -> Rocket<Build> {
    let figment = rocket::Config::figment()
        .merge(("log_level", "off"))
        .merge(("secret_key", vec![7u8; 64]));
    rocket::custom(figment)
}

/// `GET /me?tab=1` with `accept`, and the session cookie when there is one.
fn me_request<'c>(
    client: &'c Client,
    cookie: Option<&str>,
    accept: &'static str,
) -> LocalRequest<'c> {
    let request = client
        .get("/me?tab=1")
        .header(Header::new("Accept", accept));
    match cookie {
        Some(cookie) => request.cookie(Cookie::new(SESSION_COOKIE, cookie.to_owned())),
        None => request,
    }
}

async fn run(client: &Client, cookie: Option<&str>, accept: &'static str, iters: u64) -> Duration {
    let start = Instant::now();
    for _ in 0..iters {
        let response = me_request(client, cookie, accept).dispatch().await;
        black_box(response.status());
        drop(black_box(response));
    }
    start.elapsed()
}

async fn expect(client: &Client, cookie: Option<&str>, accept: &'static str, status: u16) {
    let response = me_request(client, cookie, accept).dispatch().await;
    assert_eq!(response.status().code, status, "{accept}");
    if status == 200 {
        assert_eq!(response.into_string().await.as_deref(), Some(ALICE_USER_ID));
    }
}

/// Runs the Rocket benchmarks.
pub fn benches(criterion: &mut Criterion, provider: &Provider) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let kvixi = provider.kvixi();
    let store = MemoryStore::default();
    let kvixi_rocket = || {
        base()
            .mount("/", rocket::routes![kvixi_me])
            .attach(KvixiFairing::new(kvixi.clone()).store(store.clone()))
    };

    let (kvixi_client, floor_client, guarded_client, cookie) = runtime.block_on(async {
        // A tracked client logs alice in and keeps the encrypted cookie; the measured
        // clients are untracked and send that same cookie.
        let browser = Client::tracked(kvixi_rocket()).await.expect("ignites");
        kvixi_rocket::testing::log_in(&browser, provider.emulator(), ALICE)
            .await
            .expect("alice logs in");
        let cookie = browser
            .cookies()
            .get(SESSION_COOKIE)
            .expect("the session cookie")
            .value()
            .to_owned();
        let kvixi_client = Client::untracked(kvixi_rocket()).await.expect("ignites");
        // The group guard in front of the same handler, whose `KvixiUser` then comes from
        // the request-local cache (Rocket handlers see request state only through guards).
        let guarded_client = Client::untracked(kvixi_rocket().attach(RequireLogin::under("/me")))
            .await
            .expect("ignites");
        let floor_client = Client::untracked(
            base()
                .mount("/", rocket::routes![floor_me])
                .manage(store.clone())
                .manage(kvixi.config().cookie_key().clone()),
        )
        .await
        .expect("ignites");
        for client in [&kvixi_client, &floor_client, &guarded_client] {
            expect(client, Some(&cookie), JSON, 200).await;
            expect(client, None, JSON, 401).await;
            expect(client, None, BROWSER, 303).await;
        }
        (kvixi_client, floor_client, guarded_client, cookie)
    });

    let cookie = Some(cookie.as_str());
    let cases = [
        (table::AUTHENTICATED, cookie, JSON),
        (table::ANONYMOUS_JSON, None, JSON),
        (table::ANONYMOUS_BROWSER, None, BROWSER),
    ];
    for (path, cookie, accept) in cases {
        for (variant, client) in [(table::FLOOR, &floor_client), (table::KVIXI, &kvixi_client)] {
            bench(criterion, &table::id(path, "rocket", variant), |iters| {
                runtime.block_on(run(client, cookie, accept, iters))
            });
        }
    }
    bench(
        criterion,
        &table::id(table::AUTHENTICATED, "rocket", table::GUARDED),
        |iters| runtime.block_on(run(&guarded_client, cookie, JSON, iters)),
    );

    // Issue 14: the app's own data, typed, from the same record.
    let app_data_client = runtime.block_on(async {
        let rocket = base()
            .mount("/", rocket::routes![kvixi_app_me])
            .attach(KvixiFairing::new(kvixi.clone()).store(store.clone()));
        let client = Client::untracked(rocket).await.expect("ignites");
        expect(&client, cookie, JSON, 200).await;
        client
    });
    let app_id = table::id(table::AUTHENTICATED, "rocket", app_data::KVIXI_APP);
    bench(criterion, &app_id, |iters| {
        runtime.block_on(run(&app_data_client, cookie, JSON, iters))
    });

    let authenticated = |variant: &str| table::id(table::AUTHENTICATED, "rocket", variant);
    let me = |client: &Client, n: u64| runtime.block_on(run(client, cookie, JSON, n));
    record::interleave(&mut [
        (authenticated(table::FLOOR), &mut |n| me(&floor_client, n)),
        (authenticated(table::KVIXI), &mut |n| me(&kvixi_client, n)),
        (authenticated(table::GUARDED), &mut |n| {
            me(&guarded_client, n)
        }),
        (authenticated(app_data::KVIXI_APP), &mut |n| {
            me(&app_data_client, n)
        }),
    ]);
}

/// The shared-store rows: the `KvixiUser` guard behind the one-line setup on
/// `KVIXI_REDIS_URL` or `KVIXI_DATABASE_URL` (`KvixiFairing::new`: the store the config
/// names, on the flow's pool) against the floor reading the same store crate on that pool.
pub fn shared_benches(criterion: &mut Criterion, provider: &Provider, backend: &Backend) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let kvixi = runtime.block_on(backend.kvixi(provider, "rocket"));
    let kvixi_rocket = || {
        base()
            .mount("/", rocket::routes![kvixi_me])
            .attach(KvixiFairing::new(kvixi.clone()))
    };
    // Each user logs in with a tracked client of its own, a browser with its own jar;
    // the sealed session cookie is what the measured, untracked clients send.
    let log_in = |user: &str| {
        runtime.block_on(async {
            let browser = Client::tracked(kvixi_rocket()).await.expect("ignites");
            kvixi_rocket::testing::log_in(&browser, provider.emulator(), user)
                .await
                .unwrap_or_else(|error| panic!("{user} logs in: {error}"));
            let cookie = browser
                .cookies()
                .get(SESSION_COOKIE)
                .map(|c| c.value().to_owned());
            cookie.expect("the session cookie")
        })
    };
    let cookie = log_in(ALICE);
    let (kvixi_client, floor_client) = runtime.block_on(async {
        let kvixi_client = Client::untracked(kvixi_rocket()).await.expect("ignites");
        let floor_client = Client::untracked(
            base()
                .mount("/", rocket::routes![floor_me_shared])
                .manage(backend.floor_store(&kvixi))
                .manage(kvixi.config().cookie_key().clone()),
        )
        .await
        .expect("ignites");
        for client in [&kvixi_client, &floor_client] {
            expect(client, Some(&cookie), JSON, 200).await;
            expect(client, None, JSON, 401).await;
        }
        (kvixi_client, floor_client)
    });
    backend.log_in_users("rocket", |user| drop(log_in(user)));

    let id = |variant: &str| table::id(backend.path(), "rocket", variant);
    let me = |client: &Client, n: u64| runtime.block_on(run(client, Some(&cookie), JSON, n));
    bench(criterion, &id(table::FLOOR), |n| me(&floor_client, n));
    bench(criterion, &id(table::KVIXI), |n| me(&kvixi_client, n));
    record::interleave_rounds(
        &mut [
            (id(table::FLOOR), &mut |n| me(&floor_client, n)),
            (id(table::KVIXI), &mut |n| me(&kvixi_client, n)),
        ],
        crate::shared::ROUNDS,
    );
    crate::shared::count_queries(&id(table::FLOOR), crate::shared::COUNTED_REQUESTS, |n| {
        me(&floor_client, n);
    });
    crate::shared::count_queries(&id(table::KVIXI), crate::shared::COUNTED_REQUESTS, |n| {
        me(&kvixi_client, n);
    });
}
