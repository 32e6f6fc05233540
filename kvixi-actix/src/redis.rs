//! `RedisStore`: actix-session's sessions in Redis through fred, for several instances
//! behind a load balancer (feature `redis`, on by default).

use std::collections::HashMap;
use std::fmt;
use std::time::{Duration as StdDuration, Instant};

use actix_session::storage::{
    LoadError, SaveError, SessionKey, SessionStore, UpdateError, generate_session_key,
};
use actix_web::cookie::time::Duration;
use fred::clients::WithOptions;
use fred::prelude::{ClientLike, KeysInterface, Options, Pool};
use fred::types::{Expiration, SetOptions, Value};
use kvixi_core::Kvixi;
use moka::sync::Cache;

/// The entries of one session, as actix-session hands them over (JSON text).
type State = HashMap<String, String>;

/// The prefix of every session's key: `kvixi:session:{session key}`.
const KEY_PREFIX: &str = "kvixi:session:";

/// The longest an active session goes without its time to live being pushed back.
const REFRESH_EVERY: StdDuration = StdDuration::from_secs(60);

/// Most sessions whose last refresh one process remembers; past it, a forgotten session
/// costs one early `EXPIRE`, nothing else.
const MAX_REMEMBERED: u64 = 100_000;

/// How many fresh session keys a save tries before it gives up (a collision of 64 random
/// alphanumerics is next to impossible: this bounds a misbehaving server, not chance).
const SAVE_ATTEMPTS: usize = 4;

/// [`Config::session_store_timeout`](kvixi_core::Config::session_store_timeout)'s
/// default: the store timeout of [`RedisStore::new`] until told otherwise.
const DEFAULT_STORE_TIMEOUT: StdDuration = StdDuration::from_secs(2);

/// Sessions in Redis, on a fred [`Pool`]: what
/// [`KvixiAppExt::with_kvixi`](crate::KvixiAppExt::with_kvixi) uses when the
/// [`Config`](kvixi_core::Config) names a Redis (`KVIXI_REDIS_URL`), on the flow's own
/// pool ([`RedisStore::from_flow`]). Build one yourself only to pass it to
/// [`with_kvixi_store`](crate::KvixiAppExt::with_kvixi_store).
///
/// - **One key per session**, `kvixi:session:{session key}`, holding the session's
///   entries as JSON and expiring after the idle timeout. Every command touches one key,
///   so a Redis Cluster serves it like one server.
/// - **One command per logged-in request** on average: reading the session is one `GET`.
///   Pushing its expiry back (actix-session asks at every request) is one `EXPIRE`, sent
///   by each process at most once per min(60 s, idle timeout / 4) for a session, and so
///   is the cookie with a fresh `Max-Age` (behind
///   [`session_middleware`](crate::session_middleware)). An active session therefore
///   never ends while it is in use; an idle one may end up to that refresh interval
///   before the idle timeout after its last request, never after it.
/// - A login is one `SET NX` under a fresh 64-character key, a change one `SET XX`
///   (a session that expired meanwhile is saved under a new key, never revived), a
///   logout one `DEL`.
/// - **Nothing sent after the caller gave up.** Each call to the store, all its
///   commands together, gets 4/5 of the store timeout
///   ([`timeout`](RedisStore::timeout)), each command the time left, through fred's own
///   per-command timeout: a command still queued in fred (Redis away, the pool
///   reconnecting) when that time is out is dropped by fred, never sent when Redis
///   comes back, after kvixi already answered 503.
///
/// Errors of Redis and of fred are the store's errors: behind
/// [`session_middleware`](crate::session_middleware), a 503 for the requests that need
/// the session. Clones share the pool and what the store remembers.
///
/// ```
/// # async fn run(pool: fred::prelude::Pool, config: kvixi_actix::Config) -> Result<(), kvixi_core::Error> {
/// use actix_web::App;
/// use kvixi_actix::{Kvixi, KvixiAppExt, RedisStore};
///
/// // A pool of the app's own: the revocations go to the same Redis.
/// let kvixi = Kvixi::builder(config)
///     .revocations(kvixi_core::RedisRevocations::new(pool.clone()))
///     .build()?;
/// // Built once, outside `HttpServer::new`, and cloned into each worker.
/// let store = RedisStore::new(pool).timeout(kvixi.config().session_store_timeout());
/// let app = App::new().with_kvixi_store(kvixi, store);
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct RedisStore {
    pool: Pool,
    /// The pool with every command bounded by a whole store call's time: for the calls
    /// of one command (a `GET`, an `EXPIRE`, a `DEL`), at no cost per call.
    bounded: WithOptions<Pool>,
    /// How long one store call may take, all its commands together.
    budget: StdDuration,
    /// When each session's expiry was last pushed back by this process.
    refreshed: Cache<String, Instant>,
}

impl RedisStore {
    /// Sessions in the Redis behind `pool` (connected, or connecting: `pool.init()`),
    /// for a [`Config::session_store_timeout`](kvixi_core::Config::session_store_timeout)
    /// of 2 s (the default; else set [`timeout`](RedisStore::timeout)).
    pub fn new(pool: Pool) -> Self {
        let refreshed = Cache::builder()
            .max_capacity(MAX_REMEMBERED)
            .time_to_live(REFRESH_EVERY)
            .build();
        let budget = budget(DEFAULT_STORE_TIMEOUT);
        RedisStore {
            bounded: pool.with_options(&bounded_by(budget)),
            pool,
            budget,
            refreshed,
        }
    }

    /// Sessions in the flow's Redis (`KVIXI_REDIS_URL`), on its own pool
    /// ([`Kvixi::redis`]) and with its config's store timeout: `None` when the config
    /// names no Redis.
    pub fn from_flow(kvixi: &Kvixi) -> Option<Self> {
        let pool = kvixi.redis()?;
        Some(RedisStore::new(pool.clone()).timeout(kvixi.config().session_store_timeout()))
    }

    /// The store timeout of the app: the
    /// [`Config::session_store_timeout`](kvixi_core::Config::session_store_timeout)
    /// of the flow it serves, after which kvixi answers 503. Each store call ends a
    /// little before it (4/5 of it), so that fred drops its commands before kvixi gives
    /// up on them. [`session_middleware`](crate::session_middleware) and
    /// [`with_kvixi_store`](crate::KvixiAppExt::with_kvixi_store) set it from their
    /// config.
    #[must_use]
    pub fn timeout(mut self, store_timeout: StdDuration) -> Self {
        self.budget = budget(store_timeout);
        self.bounded = self.pool.with_options(&bounded_by(self.budget));
        self
    }

    /// When a store call starting now must be over.
    fn deadline(&self) -> Instant {
        Instant::now() + self.budget
    }

    /// The pool for the next command of a call due by `deadline`, bounded by the time
    /// left; an error (nothing sent) once there is none.
    fn before(&self, deadline: Instant) -> anyhow::Result<WithOptions<Pool>> {
        let left = deadline.saturating_duration_since(Instant::now());
        // fred reads a zero timeout as none at all.
        if left.is_zero() {
            return Err(anyhow::anyhow!(
                "the session store call ran out of time before its next command"
            ));
        }
        Ok(self.pool.with_options(&bounded_by(left)))
    }

    /// Writes `body` under a fresh session key that no session holds yet, by `deadline`.
    async fn insert_new(
        &self,
        body: &str,
        ttl: &Duration,
        deadline: Instant,
    ) -> anyhow::Result<SessionKey> {
        for _ in 0..SAVE_ATTEMPTS {
            let session_key = generate_session_key();
            let set: Value = self
                .before(deadline)?
                .set(
                    redis_key(&session_key),
                    body,
                    Some(expiration(ttl)),
                    Some(SetOptions::NX),
                    false,
                )
                .await?;
            if !set.is_null() {
                self.remember_refresh(&session_key);
                return Ok(session_key);
            }
        }
        Err(anyhow::anyhow!(
            "Redis refused {SAVE_ATTEMPTS} fresh session keys in a row"
        ))
    }

    /// The session's expiry was just set: no `EXPIRE` for it before a while.
    fn remember_refresh(&self, session_key: &SessionKey) {
        self.refreshed
            .insert(session_key.as_ref().to_owned(), Instant::now());
    }

    /// Whether the session's expiry was pushed back by this process lately enough.
    fn recently_refreshed(&self, session_key: &SessionKey, ttl: &Duration) -> bool {
        // A short idle timeout is pushed back more often, so that it still holds.
        let every = REFRESH_EVERY.min(std_duration(ttl) / 4);
        self.refreshed
            .get(session_key.as_ref())
            .is_some_and(|at| at.elapsed() < every)
    }
}

/// How long one store call may take for a store timeout of `store_timeout`: 4/5 of it,
/// as the flow's pool bounds a command (`kvixi_core::redis_pool`). The caller's clock
/// starts first; fred's must ring first, or the command it drops is still queued.
fn budget(store_timeout: StdDuration) -> StdDuration {
    (store_timeout * 4 / 5).max(StdDuration::from_millis(1))
}

/// fred's options for a command that must be over within `timeout` (not zero).
fn bounded_by(timeout: StdDuration) -> Options {
    Options {
        timeout: Some(timeout),
        ..Options::default()
    }
}

impl fmt::Debug for RedisStore {
    // Never the session keys it remembers: each one opens a session.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("key_prefix", &KEY_PREFIX)
            .field("budget", &self.budget)
            .finish_non_exhaustive()
    }
}

/// The Redis key of a session.
fn redis_key(session_key: &SessionKey) -> String {
    format!("{KEY_PREFIX}{}", session_key.as_ref())
}

/// A time to live as a Rust duration; a negative one has already ended.
fn std_duration(ttl: &Duration) -> StdDuration {
    StdDuration::try_from(*ttl).unwrap_or_default()
}

/// `EX` seconds: at least one (Redis refuses zero), whole seconds as actix-session gives.
fn expiration(ttl: &Duration) -> Expiration {
    Expiration::EX(ttl.whole_seconds().max(1))
}

impl SessionStore for RedisStore {
    async fn load(&self, session_key: &SessionKey) -> Result<Option<State>, LoadError> {
        // One command: `bounded` gives it the whole call's time, from now, with no
        // `Options` built per request (`with_options` would clone the pool's handle).
        let stored: Value = self
            .bounded
            .get(redis_key(session_key))
            .await
            .map_err(|error| LoadError::Other(error.into()))?;
        let body = match &stored {
            Value::Null => return Ok(None),
            Value::String(text) => text.as_bytes(),
            Value::Bytes(bytes) => bytes.as_ref(),
            other => {
                let kind = other.kind();
                return Err(LoadError::Deserialization(anyhow::anyhow!(
                    "the session is a Redis {kind:?}, not a string"
                )));
            }
        };
        serde_json::from_slice(body)
            .map(Some)
            .map_err(|error| LoadError::Deserialization(error.into()))
    }

    async fn save(&self, session_state: State, ttl: &Duration) -> Result<SessionKey, SaveError> {
        let deadline = self.deadline();
        let body = serde_json::to_string(&session_state)
            .map_err(|error| SaveError::Serialization(error.into()))?;
        self.insert_new(&body, ttl, deadline)
            .await
            .map_err(SaveError::Other)
    }

    async fn update(
        &self,
        session_key: SessionKey,
        session_state: State,
        ttl: &Duration,
    ) -> Result<SessionKey, UpdateError> {
        // `SET XX`, then maybe `SET NX`s: all of them within one call's time.
        let deadline = self.deadline();
        let body = serde_json::to_string(&session_state)
            .map_err(|error| UpdateError::Serialization(error.into()))?;
        let set: Value = self
            .before(deadline)
            .map_err(UpdateError::Other)?
            .set(
                redis_key(&session_key),
                body.as_str(),
                Some(expiration(ttl)),
                Some(SetOptions::XX),
                false,
            )
            .await
            .map_err(|error| UpdateError::Other(error.into()))?;
        if set.is_null() {
            // Expired since it was loaded: never bring a key back, start anew.
            self.refreshed.invalidate(session_key.as_ref());
            return self
                .insert_new(&body, ttl, deadline)
                .await
                .map_err(UpdateError::Other);
        }
        self.remember_refresh(&session_key);
        Ok(session_key)
    }

    async fn update_ttl(&self, session_key: &SessionKey, ttl: &Duration) -> anyhow::Result<()> {
        if self.recently_refreshed(session_key, ttl) {
            // The cookie's `Max-Age` is not sent again either: both expire together.
            crate::resilient::report_expiry_kept();
            return Ok(());
        }
        let key = redis_key(session_key);
        // One command, the call's whole time: `bounded`.
        if ttl.whole_seconds() <= 0 {
            let _: Value = self.bounded.del(key).await?;
        } else {
            let _: Value = self.bounded.expire(key, ttl.whole_seconds(), None).await?;
        }
        // Remembered once Redis took it: a failed refresh is tried again next request.
        self.remember_refresh(session_key);
        Ok(())
    }

    async fn delete(&self, session_key: &SessionKey) -> anyhow::Result<()> {
        self.refreshed.invalidate(session_key.as_ref());
        let _: Value = self.bounded.del(redis_key(session_key)).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::net::TcpStream;
    use std::process::{Child, Command, Stdio};

    use actix_web::cookie::{Cookie, CookieJar, Key};
    use actix_web::http::StatusCode;
    use actix_web::test::{self, TestRequest};
    use actix_web::{App, web};
    use fred::prelude::{ClientLike, Config as RedisConfig};
    use fred::types::{ClusterHash, CustomCommand};
    use kvixi_core::flow::AUTH_RECORD_KEY;
    use kvixi_core::{Config, Kvixi, SESSION_COOKIE};

    use super::*;
    use crate::{KvixiAppExt, KvixiUser, configure, session_middleware};

    const TTL: Duration = Duration::hours(1);

    /// A `redis-server` of this test's own on a free port, stopped when dropped.
    struct Redis {
        child: Option<Child>,
        port: u16,
    }

    const SERVER: &str = "/usr/bin/redis-server";

    impl Redis {
        /// A fresh Redis; `None` (the test skips) without `redis-server`.
        fn start() -> Option<Redis> {
            if !std::path::Path::new(SERVER).exists() {
                assert!(
                    std::env::var("CI").as_deref() != Ok("true"),
                    "{SERVER} is missing"
                );
                eprintln!("skipped: {SERVER} is not installed");
                return None;
            }
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|listener| listener.local_addr())
                .expect("a free port")
                .port();
            let mut redis = Redis { child: None, port };
            redis.restart();
            Some(redis)
        }

        /// Starts it (again, empty) on its port, and waits until it accepts connections.
        fn restart(&mut self) {
            let child = Command::new(SERVER)
                .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
                .args(["--save", "", "--appendonly", "no"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("redis-server starts");
            self.child = Some(child);
            let started = Instant::now();
            while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
                assert!(started.elapsed() < StdDuration::from_secs(10), "no Redis");
                std::thread::sleep(StdDuration::from_millis(20));
            }
        }

        /// Kills it: connections drop, nothing answers on its port.
        fn stop(&mut self) {
            if let Some(mut child) = self.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }

        fn url(&self) -> String {
            format!("redis://127.0.0.1:{}", self.port)
        }
    }

    impl Drop for Redis {
        fn drop(&mut self) {
            self.stop();
        }
    }

    /// A fresh Redis and a store on it; `None` (the test skips) without `redis-server`.
    async fn store() -> Option<(Redis, RedisStore)> {
        let redis = Redis::start()?;
        let config = RedisConfig::from_url(&redis.url()).unwrap();
        let pool = Pool::new(config, None, None, None, 1).unwrap();
        pool.init().await.expect("Redis answers");
        Some((redis, RedisStore::new(pool)))
    }

    /// Runs a command of no fred interface.
    async fn custom<T: fred::types::FromValue>(
        pool: &Pool,
        command: &'static str,
        args: Vec<&str>,
    ) -> T {
        let command = CustomCommand::new_static(command, ClusterHash::Random, false);
        pool.next().custom(command, args).await.unwrap()
    }

    fn state(value: &str) -> State {
        HashMap::from([("k".to_owned(), value.to_owned())])
    }

    async fn ttl_of(store: &RedisStore, key: &SessionKey) -> i64 {
        store.pool.ttl(redis_key(key)).await.unwrap()
    }

    /// Commands Redis has processed so far (this `INFO` included).
    async fn commands_processed(store: &RedisStore) -> u64 {
        let stats: String = custom(&store.pool, "INFO", vec!["stats"]).await;
        stats
            .lines()
            .find_map(|line| line.strip_prefix("total_commands_processed:"))
            .and_then(|count| count.trim().parse().ok())
            .expect("the command count")
    }

    #[actix_web::test]
    async fn a_saved_session_loads_until_deleted_under_one_key() {
        let Some((_redis, store)) = store().await else {
            return;
        };
        let key = store.save(state("1"), &TTL).await.unwrap();
        assert_eq!(key.as_ref().len(), 64);
        assert_eq!(store.load(&key).await.unwrap(), Some(state("1")));
        let raw: Option<String> = store
            .pool
            .get(format!("kvixi:session:{}", key.as_ref()))
            .await
            .unwrap();
        assert_eq!(raw.as_deref(), Some(r#"{"k":"1"}"#));
        assert!((3590..=3600).contains(&ttl_of(&store, &key).await));

        let key = store.update(key, state("2"), &TTL).await.unwrap();
        assert_eq!(store.load(&key).await.unwrap(), Some(state("2")));
        store.delete(&key).await.unwrap();
        assert_eq!(store.load(&key).await.unwrap(), None);
    }

    #[actix_web::test]
    async fn an_expired_session_is_not_revived_by_an_update() {
        let Some((_redis, store)) = store().await else {
            return;
        };
        let old = store.save(state("1"), &TTL).await.unwrap();
        let old_text = old.as_ref().to_owned();
        let _: Value = store.pool.del(redis_key(&old)).await.unwrap();
        let new = store.update(old, state("2"), &TTL).await.unwrap();
        assert_ne!(new.as_ref(), old_text);
        assert_eq!(store.load(&new).await.unwrap(), Some(state("2")));
        let old = SessionKey::try_from(old_text).unwrap();
        assert_eq!(store.load(&old).await.unwrap(), None);
    }

    #[actix_web::test]
    async fn the_expiry_is_pushed_back_at_most_once_a_minute() {
        let Some((_redis, store)) = store().await else {
            return;
        };
        let key = store.save(state("1"), &TTL).await.unwrap();
        let _: Value = store.pool.expire(redis_key(&key), 100, None).await.unwrap();
        // Saved just now: this process pushed the expiry back less than a minute ago.
        store.update_ttl(&key, &TTL).await.unwrap();
        assert!(
            ttl_of(&store, &key).await <= 100,
            "no EXPIRE within the minute"
        );

        store.refreshed.invalidate(key.as_ref()); // a minute later
        store.update_ttl(&key, &TTL).await.unwrap();
        assert!(ttl_of(&store, &key).await > 3500, "pushed back");
        let _: Value = store.pool.expire(redis_key(&key), 100, None).await.unwrap();
        store.update_ttl(&key, &TTL).await.unwrap();
        assert!(ttl_of(&store, &key).await <= 100, "once");

        // A short idle timeout is pushed back more often than once a minute.
        let short = Duration::seconds(8);
        store.refreshed.insert(
            key.as_ref().to_owned(),
            Instant::now() - StdDuration::from_secs(3),
        );
        store.update_ttl(&key, &short).await.unwrap();
        assert!(
            ttl_of(&store, &key).await <= 8,
            "pushed back after a quarter"
        );
    }

    #[actix_web::test]
    async fn a_logged_in_request_costs_one_redis_command() {
        let Some((_redis, store)) = store().await else {
            return;
        };
        let config = Config::builder("app", "secret", "http://localhost/auth/kvixi/callback")
            .base_url("http://127.0.0.1:9")
            .build()
            .unwrap();
        let kvixi = Kvixi::new(config).unwrap();
        let key = Key::generate();
        let app = test::init_service(
            App::new()
                .wrap(session_middleware(
                    kvixi.config(),
                    store.clone(),
                    key.clone(),
                ))
                .configure(configure(kvixi.clone()))
                .route(
                    "/me",
                    web::get().to(|user: KvixiUser| async move { user.id.clone() }),
                ),
        )
        .await;
        let now = kvixi_core::UnixTime::now().0;
        let record = serde_json::json!({
            "user": {"id": "1001", "name": "alice"},
            "obtained_at": now,
            "token_expires_at": now + 3600,
        });
        let auth = HashMap::from([(AUTH_RECORD_KEY.to_owned(), record.to_string())]);
        let session = String::from(store.save(auth, &TTL).await.unwrap());
        let mut jar = CookieJar::new();
        jar.private_mut(&key)
            .add(Cookie::new(SESSION_COOKIE, session.clone()));
        let cookie = jar.get(SESSION_COOKIE).unwrap().clone();
        let me = || {
            TestRequest::get()
                .uri("/me")
                .insert_header(("accept", "application/json"))
                .cookie(cookie.clone())
                .to_request()
        };
        let sets_cookie = |response: &actix_web::dev::ServiceResponse<_>| {
            response
                .response()
                .cookies()
                .find(|cookie| cookie.name() == SESSION_COOKIE)
                .map(Cookie::into_owned)
        };

        let before = commands_processed(&store).await;
        for _ in 0..10 {
            let response = test::call_service(&app, me()).await;
            assert_eq!(response.status(), StatusCode::OK);
            assert_eq!(sets_cookie(&response), None, "nor a cookie to refresh");
        }
        let spent = commands_processed(&store).await - before - 1;
        assert_eq!(
            spent, 10,
            "one GET per request, no EXPIRE within the minute"
        );

        // A minute later: one EXPIRE, and the cookie with a fresh Max-Age.
        store.refreshed.invalidate(session.as_str());
        let before = commands_processed(&store).await;
        let response = test::call_service(&app, me()).await;
        assert_eq!(response.status(), StatusCode::OK);
        let refreshed = sets_cookie(&response).expect("the cookie, refreshed");
        assert_eq!(refreshed.max_age(), Some(Duration::hours(24)));
        assert_eq!(
            commands_processed(&store).await - before - 1,
            2,
            "GET, EXPIRE"
        );
        let session = SessionKey::try_from(session).unwrap();
        assert!(ttl_of(&store, &session).await > 86_000);
    }

    #[actix_web::test]
    async fn a_cookie_under_a_previous_key_is_sealed_again_without_an_expire() {
        let Some((_redis, store)) = store().await else {
            return;
        };
        let (old, new) = ([0xa_u8; 64], [0xb_u8; 64]);
        let config = Config::builder("app", "secret", "http://localhost/auth/kvixi/callback")
            .base_url("http://127.0.0.1:9")
            .cookie_key(new.to_vec())
            .previous_cookie_keys([old.to_vec()])
            .build()
            .unwrap();
        let kvixi = Kvixi::new(config).unwrap();
        let app = test::init_service(
            App::new()
                .wrap(session_middleware(
                    kvixi.config(),
                    store.clone(),
                    crate::session_key(kvixi.config()),
                ))
                .configure(configure(kvixi.clone()))
                .route(
                    "/me",
                    web::get().to(|user: KvixiUser| async move { user.id.clone() }),
                ),
        )
        .await;
        let now = kvixi_core::UnixTime::now().0;
        let record = serde_json::json!({
            "user": {"id": "1001", "name": "alice"},
            "obtained_at": now,
            "token_expires_at": now + 3600,
        });
        let auth = HashMap::from([(AUTH_RECORD_KEY.to_owned(), record.to_string())]);
        let session = String::from(store.save(auth, &TTL).await.unwrap());
        // The session cookie's key as an app with `material` as its cookie key derives it.
        let session_key_of = |material: &[u8; 64]| {
            let config = Config::builder("app", "secret", "http://localhost/auth/kvixi/callback")
                .cookie_key(material.to_vec())
                .build()
                .unwrap();
            crate::session_key(&config)
        };
        let seal = |material: &[u8; 64]| {
            let mut jar = CookieJar::new();
            jar.private_mut(&session_key_of(material))
                .add(Cookie::new(SESSION_COOKIE, session.clone()));
            jar.get(SESSION_COOKIE).unwrap().clone()
        };

        let request = TestRequest::get()
            .uri("/me")
            .insert_header(("accept", "application/json"))
            .cookie(seal(&old));
        let before = commands_processed(&store).await;
        let response = test::call_service(&app, request.to_request()).await;
        assert_eq!(response.status(), StatusCode::OK, "still logged in");
        assert_eq!(
            commands_processed(&store).await - before - 1,
            1,
            "the GET alone: no EXPIRE, no write"
        );
        let stored = SessionKey::try_from(session.clone()).unwrap();
        assert!(
            ttl_of(&store, &stored).await <= 3600,
            "the expiry as saved, not pushed back to the 24 h idle timeout"
        );
        // The store kept the expiry (saved moments ago), so actix-session's cookie was
        // dropped: this one is the cookie sealed again.
        let resealed = response
            .response()
            .cookies()
            .find(|cookie| cookie.name() == SESSION_COOKIE)
            .map(Cookie::into_owned)
            .expect("the cookie sealed again");
        let mut jar = CookieJar::new();
        jar.add_original(resealed.clone());
        let opened = jar.private(&session_key_of(&new)).get(SESSION_COOKIE);
        assert_eq!(opened.map(|c| c.value().to_owned()), Some(session.clone()));
        assert_eq!(resealed.max_age(), Some(Duration::hours(24)));
        assert_eq!(resealed.path(), Some("/"));
    }

    /// A logged-in alice in `store`: her session's key.
    async fn alice(store: &RedisStore) -> String {
        let now = kvixi_core::UnixTime::now().0;
        let record = serde_json::json!({
            "user": {"id": "1001", "name": "alice"},
            "obtained_at": now,
            "token_expires_at": now + 3600,
        });
        let auth = HashMap::from([(AUTH_RECORD_KEY.to_owned(), record.to_string())]);
        String::from(store.save(auth, &TTL).await.unwrap())
    }

    #[actix_web::test]
    async fn a_logged_in_request_through_with_kvixi_costs_one_redis_command_on_average() {
        let Some((redis, counter)) = store().await else {
            return;
        };
        // The one-line setup: sessions and revocation stamps (cached 1 s) in that Redis.
        let config = Config::builder("app", "secret", "http://localhost/auth/kvixi/callback")
            .base_url("http://127.0.0.1:9")
            .redis_url(redis.url())
            .build()
            .unwrap();
        let kvixi = Kvixi::new(config).unwrap();
        kvixi
            .redis_ready(StdDuration::from_secs(10))
            .await
            .expect("Redis answers");
        let app = test::init_service(App::new().with_kvixi(kvixi.clone()).route(
            "/me",
            web::get().to(|user: KvixiUser| async move { user.id.clone() }),
        ))
        .await;
        let session = alice(&RedisStore::from_flow(&kvixi).expect("a Redis")).await;
        let mut jar = CookieJar::new();
        jar.private_mut(&crate::session_key(kvixi.config()))
            .add(Cookie::new(SESSION_COOKIE, session));
        let cookie = jar.get(SESSION_COOKIE).unwrap().clone();

        const REQUESTS: u32 = 50;
        let before = commands_processed(&counter).await;
        for _ in 0..REQUESTS {
            let request = TestRequest::get()
                .uri("/me")
                .insert_header(("accept", "application/json"))
                .cookie(cookie.clone());
            let response = test::call_service(&app, request.to_request()).await;
            assert_eq!(response.status(), StatusCode::OK);
        }
        let spent = commands_processed(&counter).await - before - 1;
        let average = spent as f64 / f64::from(REQUESTS);
        assert!(
            average <= 1.1,
            "{spent} Redis commands for {REQUESTS} logged-in requests"
        );
    }

    #[actix_web::test]
    async fn no_command_reaches_redis_after_the_store_call_gave_up() {
        let Some(mut redis) = Redis::start() else {
            return;
        };
        // A pool as an app may build it: reconnecting, and no command timeout of its
        // own, so that only the store's deadline bounds the commands it queues.
        let config = RedisConfig::from_url(&redis.url()).unwrap();
        let reconnect = fred::prelude::ReconnectPolicy::new_constant(0, 20);
        let pool = Pool::new(config, None, None, Some(reconnect), 1).unwrap();
        pool.init().await.expect("Redis answers");
        let store_timeout = StdDuration::from_millis(300);
        let store = RedisStore::new(pool.clone()).timeout(store_timeout);

        redis.stop();
        // What `session_middleware` does: give up on the call after the store timeout.
        let outcome =
            actix_web::rt::time::timeout(store_timeout, store.save(state("1"), &TTL)).await;
        assert!(
            matches!(outcome, Ok(Err(_))),
            "the store gave up by itself, before its caller: {outcome:?}"
        );

        // Redis is back: a command still queued in fred would be written now.
        redis.restart();
        pool.wait_for_connect().await.expect("reconnected");
        actix_web::rt::time::sleep(StdDuration::from_millis(200)).await;
        let keys: u64 = custom(&pool, "DBSIZE", vec![]).await;
        assert_eq!(keys, 0, "no session saved after the caller answered 503");
    }

    #[test]
    fn a_call_out_of_time_sends_no_further_command() {
        let pool = Pool::new(RedisConfig::default(), None, None, None, 1).unwrap();
        let store = RedisStore::new(pool).timeout(StdDuration::from_millis(500));
        assert!(store.before(Instant::now()).is_err());
        let next = store.before(store.deadline()).expect("time left");
        let left = next.options().timeout.expect("a timeout");
        assert!(left <= StdDuration::from_millis(400), "{left:?}");
        assert_eq!(
            store.bounded.options().timeout,
            Some(StdDuration::from_millis(400))
        );
    }

    #[test]
    fn new_assumes_the_default_store_timeout() {
        let config = Config::builder("app", "secret", "http://localhost/auth/kvixi/callback")
            .build()
            .unwrap();
        assert_eq!(config.session_store_timeout(), DEFAULT_STORE_TIMEOUT);
    }

    #[test]
    fn session_middleware_sets_a_redis_store_to_its_timeout() {
        let pool = Pool::new(RedisConfig::default(), None, None, None, 1).unwrap();
        let config = Config::builder("app", "secret", "http://localhost/auth/kvixi/callback")
            .session_store_timeout(StdDuration::from_millis(250))
            .build()
            .unwrap();
        let store = crate::middleware::with_store_timeout(RedisStore::new(pool), &config);
        assert_eq!(store.budget, StdDuration::from_millis(200));
        assert_eq!(
            store.bounded.options().timeout,
            Some(StdDuration::from_millis(200))
        );
    }

    #[test]
    fn debug_shows_no_session_key() {
        let pool = Pool::new(RedisConfig::default(), None, None, None, 1).unwrap();
        let store = RedisStore::new(pool);
        store
            .refreshed
            .insert("secret-session-key".to_owned(), Instant::now());
        let debug = format!("{store:?}");
        assert!(!debug.contains("secret-session-key"), "{debug}");
    }
}
