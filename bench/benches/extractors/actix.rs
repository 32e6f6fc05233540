//! actix-web 4: `KvixiUser` against a hand-written handler that opens the same sealed
//! session cookie and reads the same tower-sessions store (in memory, and on Redis).

use std::hint::black_box;
use std::time::{Duration, Instant};

use actix_web::body::{EitherBody, MessageBody};
use actix_web::cookie::Cookie;
use actix_web::dev::{Service, ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::{Next, from_fn};
use actix_web::test::{self, TestRequest};
use actix_web::{App, Either, HttpMessage, HttpRequest, HttpResponse, web};
use criterion::Criterion;
use kvixi_actix::{KvixiAppExt, KvixiUser, MemoryStore, RequireLogin, SESSION_COOKIE};
use kvixi_core::CookieKey;
use kvixi_core::flow::{self, AUTH_RECORD_KEY};
use kvixi_mock::fixture::{ALICE, ALICE_USER_ID};
use tower_sessions_core::SessionStore;
use tower_sessions_core::session::Id;

use crate::floor::{ACCEPT_BROWSER as BROWSER, ACCEPT_JSON as JSON};
use crate::provider::Provider;
use crate::record::{self, bench};
use crate::shared::{Backend, FloorStore};
use crate::{app_data, floor, table};

async fn kvixi_app_me(user: kvixi_actix::AppUser<app_data::BenchMember>) -> String {
    std::hint::black_box(user.data.local_id);
    user.user.id
}

async fn kvixi_me(user: KvixiUser) -> String {
    user.0.id
}

/// Behind the group guard: no extractor, the user the guard left in the extensions
/// (taken, as the floor takes the id out of the record).
async fn guarded_me(request: HttpRequest) -> Either<String, HttpResponse> {
    let user = request.extensions_mut().remove::<KvixiUser>();
    match user {
        Some(user) => Either::Left(user.0.id),
        None => Either::Right(HttpResponse::InternalServerError().finish()),
    }
}

/// What the floor reads: the store kvixi's sessions are in, and the app's cookie key.
struct Floor<St> {
    store: St,
    key: CookieKey,
}

/// The floor: the session cookie opened with the app's cookie key, the record loaded
/// from the store and the auth record read from it, by hand.
async fn floor_me<St: SessionStore>(
    request: HttpRequest,
    floor: web::Data<Floor<St>>,
) -> Either<String, HttpResponse> {
    match floor_user(&request, &floor).await {
        Some(user) => Either::Left(user.id),
        None => Either::Right(floor_anonymous(&request)),
    }
}

/// The floor's work: the user of the request's session, if any.
async fn floor_user<St: SessionStore>(
    request: &HttpRequest,
    floor: &Floor<St>,
) -> Option<kvixi_core::KvixiUser> {
    let cookies = request.headers().get_all(header::COOKIE);
    let id = flow::cookie_value(cookies.filter_map(|v| v.to_str().ok()), SESSION_COOKIE)
        .and_then(|sealed| floor.key.open(SESSION_COOKIE, sealed))
        .and_then(|id| id.parse::<Id>().ok());
    let record = match id {
        Some(id) => floor.store.load(&id).await.ok().flatten(),
        None => None,
    };
    record
        .and_then(|mut record| record.data.remove(AUTH_RECORD_KEY))
        .and_then(floor::auth_record)
        .map(|record| record.user)
}

/// The hand-written group guard ([`table::HAND_GUARD`]): the floor's work in actix's own
/// `from_fn` middleware on the scope, the user left in the extensions for the handler,
/// as `RequireLogin` leaves it.
async fn hand_guard(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let user = match request.app_data::<web::Data<Floor<MemoryStore>>>() {
        Some(floor) => floor_user(request.request(), floor).await,
        None => None,
    };
    match user {
        Some(user) => {
            request.extensions_mut().insert(KvixiUser(user));
            next.call(request)
                .await
                .map(ServiceResponse::map_into_left_body)
        }
        None => {
            let response = floor_anonymous(request.request());
            Ok(request.into_response(response).map_into_right_body())
        }
    }
}

fn floor_anonymous(request: &HttpRequest) -> HttpResponse {
    let headers = request.headers();
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let mut response = if floor::prefers_json(text("accept"), text("x-requested-with")) {
        HttpResponse::Unauthorized()
            .content_type("application/json")
            .body(floor::UNAUTHORIZED_JSON)
    } else {
        let path = request.uri().path_and_query().map_or("/", |pq| pq.as_str());
        HttpResponse::SeeOther()
            .insert_header((header::LOCATION, floor::login_location(path)))
            .finish()
    };
    for (name, value) in floor::HEADERS {
        response.headers_mut().insert(
            header::HeaderName::from_static(name),
            header::HeaderValue::from_static(value),
        );
    }
    response
}

fn request(cookie: Option<&Cookie<'static>>, accept: &'static str) -> actix_http::Request {
    let mut request = TestRequest::get()
        .uri("/me?tab=1")
        .insert_header((header::ACCEPT, accept));
    if let Some(cookie) = cookie {
        request = request.cookie(cookie.clone());
    }
    request.to_request()
}

/// `iters` requests one after another; the time they took.
async fn run<S, B>(
    app: &S,
    cookie: Option<&Cookie<'static>>,
    accept: &'static str,
    iters: u64,
) -> Duration
where
    S: Service<actix_http::Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
{
    let start = Instant::now();
    for _ in 0..iters {
        let response = test::call_service(app, request(cookie, accept)).await;
        black_box(response.status());
        drop(black_box(response));
    }
    start.elapsed()
}

async fn expect<S, B>(app: &S, cookie: Option<&Cookie<'static>>, accept: &'static str, status: u16)
where
    S: Service<actix_http::Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: actix_web::body::MessageBody,
{
    let response = test::call_service(app, request(cookie, accept)).await;
    assert_eq!(response.status().as_u16(), status, "{accept}");
    if status == 200 {
        let body = test::read_body(response).await;
        assert_eq!(body, ALICE_USER_ID.as_bytes());
    }
}

/// Runs the actix benchmarks.
pub fn benches(criterion: &mut Criterion, provider: &Provider) {
    let system = actix_web::rt::System::new();
    let kvixi = provider.kvixi();
    let store = MemoryStore::default();
    let kvixi_app = system.block_on(test::init_service(
        App::new()
            .with_kvixi_store(kvixi.clone(), store.clone())
            .route("/me", web::get().to(kvixi_me)),
    ));
    let guarded_app = system.block_on(test::init_service(
        App::new()
            .with_kvixi_store(kvixi.clone(), store.clone())
            .service(
                web::scope("/me")
                    .wrap(RequireLogin::new())
                    .route("", web::get().to(guarded_me)),
            ),
    ));
    let floor = web::Data::new(Floor {
        store: store.clone(),
        key: kvixi.config().cookie_key().clone(),
    });
    let hand_guard_app = system.block_on(test::init_service(
        App::new().app_data(floor.clone()).service(
            web::scope("/me")
                .wrap(from_fn(hand_guard))
                .route("", web::get().to(guarded_me)),
        ),
    ));
    let floor_app = system.block_on(test::init_service(
        App::new()
            .app_data(floor)
            .route("/me", web::get().to(floor_me::<MemoryStore>)),
    ));
    let cookie = system
        .block_on(kvixi_actix::testing::log_in(
            &kvixi_app,
            &kvixi,
            provider.emulator(),
            ALICE,
        ))
        .expect("alice logs in");

    system.block_on(async {
        expect(&kvixi_app, Some(&cookie), JSON, 200).await;
        expect(&floor_app, Some(&cookie), JSON, 200).await;
        expect(&guarded_app, Some(&cookie), JSON, 200).await;
        expect(&guarded_app, None, JSON, 401).await;
        expect(&hand_guard_app, Some(&cookie), JSON, 200).await;
        expect(&hand_guard_app, None, JSON, 401).await;
        for accept in [JSON, BROWSER] {
            let status = if accept == JSON { 401 } else { 303 };
            expect(&kvixi_app, None, accept, status).await;
            expect(&floor_app, None, accept, status).await;
        }
    });

    let cookie = Some(&cookie);
    let mut both = |path: &str, cookie: Option<&Cookie<'static>>, accept: &'static str| {
        bench(
            criterion,
            &table::id(path, "actix", table::FLOOR),
            |iters| system.block_on(run(&floor_app, cookie, accept, iters)),
        );
        bench(
            criterion,
            &table::id(path, "actix", table::KVIXI),
            |iters| system.block_on(run(&kvixi_app, cookie, accept, iters)),
        );
    };
    both(table::AUTHENTICATED, cookie, JSON);
    both(table::ANONYMOUS_JSON, None, JSON);
    both(table::ANONYMOUS_BROWSER, None, BROWSER);
    bench(
        criterion,
        &table::id(table::AUTHENTICATED, "actix", table::GUARDED),
        |iters| system.block_on(run(&guarded_app, cookie, JSON, iters)),
    );
    bench(
        criterion,
        &table::id(table::AUTHENTICATED, "actix", table::HAND_GUARD),
        |iters| system.block_on(run(&hand_guard_app, cookie, JSON, iters)),
    );

    // Issue 14: the app's own data, typed, from the same record.
    let app_data_app = system.block_on(test::init_service(
        App::new()
            .with_kvixi_store(kvixi.clone(), store.clone())
            .route("/me", web::get().to(kvixi_app_me)),
    ));
    system.block_on(expect(&app_data_app, cookie, JSON, 200));
    let app_id = table::id(table::AUTHENTICATED, "actix", app_data::KVIXI_APP);
    bench(criterion, &app_id, |iters| {
        system.block_on(run(&app_data_app, cookie, JSON, iters))
    });

    let authenticated = |variant: &str| table::id(table::AUTHENTICATED, "actix", variant);
    record::interleave(&mut [
        (authenticated(table::FLOOR), &mut |n| {
            system.block_on(run(&floor_app, cookie, JSON, n))
        }),
        (authenticated(table::KVIXI), &mut |n| {
            system.block_on(run(&kvixi_app, cookie, JSON, n))
        }),
        (authenticated(table::GUARDED), &mut |n| {
            system.block_on(run(&guarded_app, cookie, JSON, n))
        }),
        (authenticated(table::HAND_GUARD), &mut |n| {
            system.block_on(run(&hand_guard_app, cookie, JSON, n))
        }),
        (authenticated(app_data::KVIXI_APP), &mut |n| {
            system.block_on(run(&app_data_app, cookie, JSON, n))
        }),
    ]);
}

/// The shared-store rows: `KvixiUser` behind the one-line setup on `KVIXI_REDIS_URL` or
/// `KVIXI_DATABASE_URL` (`App::with_kvixi`: the store the config names, on the flow's
/// pool) against the floor reading the same store crate on that pool.
pub fn shared_benches(criterion: &mut Criterion, provider: &Provider, backend: &Backend) {
    let system = actix_web::rt::System::new();
    let kvixi = system.block_on(backend.kvixi(provider, "actix"));
    let kvixi_app = system.block_on(test::init_service(
        App::new()
            .with_kvixi(kvixi.clone())
            .route("/me", web::get().to(kvixi_me)),
    ));
    let floor = web::Data::new(Floor {
        store: backend.floor_store(&kvixi),
        key: kvixi.config().cookie_key().clone(),
    });
    let floor_app = system.block_on(test::init_service(
        App::new()
            .app_data(floor)
            .route("/me", web::get().to(floor_me::<FloorStore>)),
    ));
    let log_in = |user: &str| {
        system
            .block_on(kvixi_actix::testing::log_in(
                &kvixi_app,
                &kvixi,
                provider.emulator(),
                user,
            ))
            .unwrap_or_else(|error| panic!("{user} logs in: {error}"))
    };
    let cookie = log_in(ALICE);
    system.block_on(async {
        expect(&kvixi_app, Some(&cookie), JSON, 200).await;
        expect(&floor_app, Some(&cookie), JSON, 200).await;
        expect(&kvixi_app, None, JSON, 401).await;
        expect(&floor_app, None, JSON, 401).await;
    });
    backend.log_in_users("actix", |user| drop(log_in(user)));

    let id = |variant: &str| table::id(backend.path(), "actix", variant);
    let cookie = Some(&cookie);
    bench(criterion, &id(table::FLOOR), |n| {
        system.block_on(run(&floor_app, cookie, JSON, n))
    });
    bench(criterion, &id(table::KVIXI), |n| {
        system.block_on(run(&kvixi_app, cookie, JSON, n))
    });
    record::interleave_rounds(
        &mut [
            (id(table::FLOOR), &mut |n| {
                system.block_on(run(&floor_app, cookie, JSON, n))
            }),
            (id(table::KVIXI), &mut |n| {
                system.block_on(run(&kvixi_app, cookie, JSON, n))
            }),
        ],
        crate::shared::ROUNDS,
    );
    crate::shared::count_queries(&id(table::FLOOR), crate::shared::COUNTED_REQUESTS, |n| {
        system.block_on(run(&floor_app, cookie, JSON, n));
    });
    crate::shared::count_queries(&id(table::KVIXI), crate::shared::COUNTED_REQUESTS, |n| {
        system.block_on(run(&kvixi_app, cookie, JSON, n));
    });
}
