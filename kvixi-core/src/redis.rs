//! The one shared-state setting: `KVIXI_REDIS_URL` ([`ConfigBuilder::redis_url`]).
//!
//! With it, [`KvixiBuilder::build`](crate::KvixiBuilder::build) connects one fred pool
//! per process ([`Kvixi::redis`](crate::Kvixi::redis), feature `redis`), and everything
//! several instances must share goes there: the adapters' sessions, the revocation
//! stamps ([`RedisRevocations`](crate::RedisRevocations)) and the spent pending logins.
//! Every command touches one key, so a Redis Cluster serves it as well as one server.
//!
//! [`ConfigBuilder::redis_url`]: crate::ConfigBuilder::redis_url

use std::fmt;

use crate::error::Error;

/// The URL forms accepted, for the error that names them.
const URL_FORMS: &str = "redis://[:password@]host:port[/db], rediss://… (TLS), \
redis-sentinel://host:port?sentinelServiceName=NAME&node=host:port or \
redis-cluster://host:port?node=host:port";

/// A Redis URL, validated. It may carry a password: its `Debug` shows only the form.
#[derive(Clone)]
pub struct RedisUrl(String);

impl RedisUrl {
    /// `url` when it is a Redis URL of a form fred reads; the error names `setting` and
    /// never repeats the URL (it may hold a password).
    pub(crate) fn parse(url: &str, setting: &'static str) -> Result<RedisUrl, Error> {
        let url = url.trim();
        let invalid = |problem: String| Error::Config { setting, problem };
        let scheme = url.split_once("://").map(|(scheme, _)| scheme);
        if !matches!(
            scheme,
            Some(
                "redis"
                    | "rediss"
                    | "redis-sentinel"
                    | "rediss-sentinel"
                    | "redis-cluster"
                    | "rediss-cluster"
            )
        ) {
            return Err(invalid(format!("is not a Redis URL; use {URL_FORMS}")));
        }
        check_with_fred(url).map_err(|problem| {
            let problem = crate::secret::redact_url(&problem, url);
            invalid(format!(
                "is not a valid Redis URL ({problem}); use {URL_FORMS}"
            ))
        })?;
        Ok(RedisUrl(url.to_owned()))
    }

    /// The URL itself, password included: for the Redis client only.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Which topology the URL names: `redis`, `sentinel` or `cluster`.
    pub fn topology(&self) -> &'static str {
        let scheme = self.0.split_once("://").map_or("", |(scheme, _)| scheme);
        if scheme.ends_with("-sentinel") {
            "sentinel"
        } else if scheme.ends_with("-cluster") {
            "cluster"
        } else {
            "redis"
        }
    }
}

impl fmt::Debug for RedisUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RedisUrl({}, [REDACTED])", self.topology())
    }
}

#[cfg(feature = "redis")]
fn check_with_fred(url: &str) -> Result<(), String> {
    fred::prelude::Config::from_url(url)
        .map(drop)
        .map_err(|error| error.details().to_owned())
}

#[cfg(not(feature = "redis"))]
fn check_with_fred(_url: &str) -> Result<(), String> {
    Err(
        "this build of kvixi-core has no Redis support: enable its `redis` feature \
         (the adapters enable it by default)"
            .to_owned(),
    )
}

#[cfg(feature = "redis")]
pub use connected::redis_pool;
#[cfg(feature = "redis")]
pub(crate) use connected::{Shared, spend_login};

#[cfg(feature = "redis")]
mod connected {
    use std::time::Duration;

    use fred::prelude::{
        ClientLike, Config as FredConfig, ConnectionConfig, KeysInterface, PerformanceConfig, Pool,
        ReconnectPolicy,
    };
    use fred::types::config::Options;
    use fred::types::{Expiration, SetOptions};

    use crate::config::Config;
    use crate::error::Error;

    /// Connections in the process's pool: enough for a busy instance's one command per
    /// request (fred pipelines on each connection).
    const POOL_SIZE: usize = 4;

    /// Most commands waiting on one connection (while Redis is away, say).
    const MAX_QUEUED_COMMANDS: usize = 4096;

    /// The process's connection to the shared Redis.
    #[derive(Clone)]
    pub(crate) struct Shared {
        pub(crate) pool: Pool,
    }

    impl Shared {
        /// A pool for `config`'s Redis URL, connecting in the background. Needs a tokio
        /// runtime (the connections are tasks).
        pub(crate) fn connect(config: &Config) -> Result<Option<Shared>, Error> {
            let Some(url) = config.redis_url() else {
                return Ok(None);
            };
            let pool = redis_pool(url.expose(), config)?;
            tracing::info!(topology = url.topology(), "kvixi: shared state in Redis");
            Ok(Some(Shared { pool }))
        }

        /// Waits until every connection of the pool is up, at most `limit`.
        pub(crate) async fn ready(&self, limit: Duration) -> Result<(), Error> {
            match tokio::time::timeout(limit, self.pool.wait_for_connect()).await {
                Ok(Ok(())) => Ok(()),
                Ok(Err(error)) => Err(unavailable(&error)),
                Err(_) => Err(Error::SessionStoreUnavailable {
                    problem: format!("Redis did not answer within {limit:?}"),
                }),
            }
        }
    }

    /// A fred pool on the Redis at `url` set up as [`Kvixi`](crate::Kvixi) sets up its own
    /// (for `KVIXI_REDIS_URL`), connecting in the background: for an app that passes its
    /// own store on the same settings. It reconnects at once and then every 100 ms (a
    /// Sentinel failover or a restart is followed within a fraction of a second), and a
    /// command gives up after 4/5 of the config's
    /// [`session_store_timeout`](Config::session_store_timeout) instead of being sent
    /// after kvixi already answered 503. Starting while Redis is away is an outage like
    /// any other. Needs a tokio runtime; `pool.wait_for_connect()` waits for it.
    pub fn redis_pool(url: &str, config: &Config) -> Result<Pool, Error> {
        let setting = "redis_url";
        let url = super::RedisUrl::parse(url, setting)?;
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(Error::Config {
                setting,
                problem: "is set, and the Redis connection needs a tokio runtime: build \
                          the Kvixi flow inside the app's async main"
                    .into(),
            });
        }
        let mut fred_config = FredConfig::from_url(url.expose()).map_err(|_| Error::Config {
            setting,
            problem: "is not a valid Redis URL".into(),
        })?;
        fred_config.fail_fast = false;
        let store_timeout = config.session_store_timeout();
        let performance = PerformanceConfig {
            default_command_timeout: store_timeout * 4 / 5,
            ..PerformanceConfig::default()
        };
        let connection = ConnectionConfig {
            connection_timeout: store_timeout.max(Duration::from_millis(500)),
            internal_command_timeout: store_timeout.max(Duration::from_millis(500)),
            // A command is tried once more after a connection drops, not three times.
            max_command_attempts: 2,
            // Bounded: during an outage, commands past this many per connection are
            // refused at once (a 503), not queued without end.
            max_command_buffer_len: MAX_QUEUED_COMMANDS,
            ..ConnectionConfig::default()
        };
        let reconnect = ReconnectPolicy::new_constant(0, 100);
        let pool = Pool::new(
            fred_config,
            Some(performance),
            Some(connection),
            Some(reconnect),
            POOL_SIZE,
        )
        .map_err(|error| Error::Config {
            setting,
            problem: format!("cannot set up the Redis client: {}", error.details()),
        })?;
        drop(pool.connect_pool());
        Ok(pool)
    }

    /// A Redis failure as the 503 every adapter answers (nobody logged in or out).
    pub(crate) fn unavailable(error: &fred::error::Error) -> Error {
        Error::SessionStoreUnavailable {
            problem: format!("Redis: {}", error.details()),
        }
    }

    /// Marks the pending login `id` spent for the whole fleet: an atomic set-if-absent
    /// that expires with the pending login. `false` when some instance spent it already.
    pub(crate) async fn spend_login(
        pool: &Pool,
        id: &str,
        remaining: Duration,
        timeout: Duration,
    ) -> Result<bool, Error> {
        let seconds = i64::try_from(remaining.as_secs().max(1)).unwrap_or(i64::MAX);
        // Sent once: a `SET NX` that Redis applied but whose answer was lost would, sent
        // again, answer "already spent" and refuse the very login that spent it.
        let once = Options {
            max_attempts: Some(1),
            ..Options::default()
        };
        let client = pool.with_options(&once);
        let set = client.set::<Option<String>, _, _>(
            format!("kvixi:login:{id}"),
            1,
            Some(Expiration::EX(seconds)),
            Some(SetOptions::NX),
            false,
        );
        match tokio::time::timeout(timeout, set).await {
            // `SET … NX` answers OK when it set the key, nil when the key existed.
            Ok(Ok(answer)) => Ok(answer.is_some()),
            Ok(Err(error)) => Err(unavailable(&error)),
            Err(_) => Err(Error::SessionStoreUnavailable {
                problem: format!("Redis did not answer within {timeout:?}"),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problem(url: &str) -> String {
        match RedisUrl::parse(url, "KVIXI_REDIS_URL") {
            Err(Error::Config { setting, problem }) => {
                assert_eq!(setting, "KVIXI_REDIS_URL");
                problem
            }
            other => panic!("{url}: expected a config error, got {other:?}"),
        }
    }

    #[cfg(feature = "redis")]
    #[test]
    fn every_url_form_fred_reads_is_accepted() {
        for (url, topology) in [
            ("redis://127.0.0.1:6379", "redis"),
            ("redis://:s3cret@cache.internal:6380/2", "redis"),
            ("redis://user:s3cret@cache.internal", "redis"),
            ("rediss://:s3cret@cache.internal:6380", "redis"),
            (
                "redis-sentinel://127.0.0.1:26379?sentinelServiceName=kvixi&node=127.0.0.1:26380",
                "sentinel",
            ),
            (
                "redis-cluster://127.0.0.1:7000?node=127.0.0.1:7001&node=127.0.0.1:7002",
                "cluster",
            ),
        ] {
            let parsed = RedisUrl::parse(url, "KVIXI_REDIS_URL")
                .unwrap_or_else(|e| panic!("{url} refused: {e}"));
            assert_eq!(parsed.topology(), topology, "{url}");
            assert_eq!(parsed.expose(), url);
            let debug = format!("{parsed:?}");
            assert!(
                !debug.contains("s3cret") && !debug.contains("cache"),
                "{debug}"
            );
        }
    }

    #[test]
    fn a_bad_url_is_refused_by_name_without_its_password() {
        for url in [
            "",
            "127.0.0.1:6379",
            "http://:s3cret@127.0.0.1:6379",
            "postgres://u:s3cret@db/app",
            "redis://:s3cret@",
            "redis-sentinel://:s3cret@127.0.0.1:26379",
            "redis-cluster://:s3cret@:7000",
            "redis://:s3cret@127.0.0.1:notaport",
        ] {
            let problem = problem(url);
            assert!(!problem.contains("s3cret"), "{url}: {problem}");
            assert!(
                problem.contains("redis://"),
                "{url}: names the forms: {problem}"
            );
        }
    }

    #[cfg(feature = "redis")]
    #[test]
    fn a_sentinel_url_needs_its_service_name() {
        let problem = problem("redis-sentinel://:s3cret@127.0.0.1:26379?node=127.0.0.1:26380");
        assert!(!problem.contains("s3cret"), "{problem}");
        assert!(problem.contains("sentinelServiceName"), "{problem}");
    }
}
