//! How each framework's example app is started for the suite: in memory (the
//! [`StartApp`](crate::StartApp) functions) or on a Redis session store (the
//! [`StartRedisApp`](crate::StartRedisApp) functions, whose instances all share the same
//! cookie key, as instances behind a load balancer must).

use std::time::{Duration, Instant};

use kvixi_core::Kvixi;
use tower_sessions_redis_store::RedisStore;

use crate::Stop;

/// The secret key every Rocket instance of a test shares.
const SHARED_KEY: [u8; 64] = [7; 64];

/// A fred pool set up as the library sets up its own for `KVIXI_REDIS_URL` (it
/// reconnects, and gives a command up before kvixi's store timeout instead of replaying
/// it later), for the scenarios that pass their own store.
async fn fred_pool(
    redis_url: &str,
    kvixi: &Kvixi,
) -> tower_sessions_redis_store::fred::prelude::Pool {
    use tower_sessions_redis_store::fred::prelude::ClientLike;
    let pool = kvixi_core::redis_pool(redis_url, kvixi.config()).expect("a Redis URL");
    tokio::time::timeout(Duration::from_secs(10), pool.wait_for_connect())
        .await
        .expect("redis answers in time")
        .expect("redis connects");
    pool
}

/// The axum example on the test's tokio runtime.
pub fn axum(kvixi: Kvixi, listener: std::net::TcpListener) {
    let listener = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
    let app = kvixi_examples::axum_app::router(kvixi);
    tokio::spawn(async move { axum::serve(listener, app).await });
}

/// The axum example on Redis: the one-line setup when the flow's config names the Redis
/// (`KVIXI_REDIS_URL`), else tower-sessions' Redis store passed by the app.
pub fn axum_redis(kvixi: Kvixi, listener: std::net::TcpListener, redis_url: String) -> Stop {
    let listener = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
    let task = tokio::spawn(async move {
        let app = match kvixi.redis() {
            Some(_) => kvixi_examples::axum_app::router(kvixi),
            None => {
                let store = RedisStore::new(fred_pool(&redis_url, &kvixi).await);
                kvixi_examples::axum_app::router_with_store(kvixi, store)
            }
        };
        axum::serve(listener, app).await
    });
    Stop::new(move || task.abort())
}

/// The actix example from a thread of its own: actix runs its own single-threaded
/// runtime (a `System`), apart from the test's tokio runtime. The one-line setup: the
/// flow's config has no Redis, so one memory store serves the flow.
pub fn actix(kvixi: Kvixi, listener: std::net::TcpListener) {
    actix_on(kvixi, listener, None).detach();
}

/// The actix example on Redis: the one-line setup when the flow's config names the Redis
/// (`KVIXI_REDIS_URL`), else tower-sessions' Redis store passed by the app.
pub fn actix_redis(kvixi: Kvixi, listener: std::net::TcpListener, redis_url: String) -> Stop {
    actix_on(kvixi, listener, Some(redis_url))
}

fn actix_on(kvixi: Kvixi, listener: std::net::TcpListener, redis_url: Option<String>) -> Stop {
    let (handle_tx, handle_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            // One worker, and no signal handling: the test stops the server.
            let server = match redis_url {
                Some(url) if kvixi.redis().is_none() => {
                    // The pool's connections run on this thread's runtime, as the server does.
                    let store = RedisStore::new(fred_pool(&url, &kvixi).await);
                    actix_web::HttpServer::new(move || {
                        kvixi_examples::actix_app::app_with_store(kvixi.clone(), store.clone())
                    })
                    .workers(1)
                    .disable_signals()
                    .listen(listener)?
                    .run()
                }
                _ => actix_web::HttpServer::new(move || {
                    kvixi_examples::actix_app::app(kvixi.clone())
                })
                .workers(1)
                .disable_signals()
                .listen(listener)?
                .run(),
            };
            let _ = handle_tx.send(server.handle());
            server.await
        })
    });
    let handle = handle_rx.recv().expect("the actix instance starts");
    Stop::new(move || drop(handle.stop(false)))
}

fn rocket_figment(port: u16) -> rocket::figment::Figment {
    rocket::figment::Figment::from(rocket::Config::debug_default())
        .merge(("address", "127.0.0.1"))
        .merge(("port", port))
        .merge(("log_level", "off"))
        .merge(("secret_key", SHARED_KEY.to_vec()))
        .merge(("workers", 2))
        .merge(("shutdown.ctrlc", false))
        .merge(("cli_colors", false))
}

/// The Rocket example. Rocket 0.5 binds its own listener: free the port, launch on it,
/// and return once it accepts connections, so that no scenario races the bind.
pub fn rocket(kvixi: Kvixi, listener: std::net::TcpListener) {
    rocket_on(kvixi, listener, None).detach();
}

/// The Rocket example on Redis: the one-line setup when the flow's config names the
/// Redis (`KVIXI_REDIS_URL`), else tower-sessions' Redis store passed by the app.
pub fn rocket_redis(kvixi: Kvixi, listener: std::net::TcpListener, redis_url: String) -> Stop {
    rocket_on(kvixi, listener, Some(redis_url))
}

fn rocket_on(kvixi: Kvixi, listener: std::net::TcpListener, redis_url: Option<String>) -> Stop {
    let port = listener.local_addr().expect("bound").port();
    drop(listener);
    let figment = rocket_figment(port);
    let task = tokio::spawn(async move {
        let app = match redis_url {
            Some(url) if kvixi.redis().is_none() => {
                let store = RedisStore::new(fred_pool(&url, &kvixi).await);
                kvixi_examples::rocket_app::rocket_with_store(kvixi, figment, store)
            }
            _ => kvixi_examples::rocket_app::rocket(kvixi, figment),
        };
        if let Err(error) = app.launch().await {
            panic!("the Rocket app did not launch: {error}");
        }
    });
    tokio::task::block_in_place(|| {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !crate::service::listens(port) {
            assert!(Instant::now() < deadline, "the Rocket app never listened");
            std::thread::sleep(Duration::from_millis(10));
        }
    });
    Stop::new(move || task.abort())
}
