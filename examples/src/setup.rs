//! What every example binary does before serving: read the environment, start the
//! embedded emulator when no real Kvixi app is configured, build the flow.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use fred::prelude::{ClientLike, Config as RedisConfig, PerformanceConfig, Pool, ReconnectPolicy};
use kvixi_core::{Config, CookieKey, Kvixi, KvixiBuilder};
use kvixi_mock::{App, Emulator};
use rand::RngCore;

/// App id the embedded emulator registers.
pub const DEMO_APP_ID: &str = "kvixi-demo";

/// A configured example, ready to serve.
pub struct Example {
    /// The login flow.
    pub kvixi: Kvixi,
    /// Where the app listens (`KVIXI_EXAMPLE_ADDR`, default `127.0.0.1:3000`).
    pub addr: SocketAddr,
    /// The app's public URL (`KVIXI_PUBLIC_URL`, default `http://localhost:{port}`).
    pub public_url: String,
    /// The embedded emulator, when `KVIXI_APP_ID` is not set. Keep it alive.
    pub emulator: Option<Emulator>,
    /// `KVIXI_REDIS_URL`: keep sessions in this Redis, shared by every instance, instead
    /// of the process's memory. May hold a password: never print it.
    pub redis_url: Option<String>,
}

/// What `KVIXI_COOKIE_KEY` must be, for the error that asks for it.
const COOKIE_KEY_HELP: &str = "at least 32 random characters, the same on every instance \
(make one with `openssl rand -base64 48`)";

/// Reads the environment and starts the embedded emulator if needed. Logs go to stderr,
/// filtered by `RUST_LOG` (default `info`).
pub async fn from_env() -> Result<Example, Box<dyn std::error::Error>> {
    from_env_with(|builder| builder).await
}

/// Like [`from_env`], with the flow's builder passed through `customize` (an example's
/// own pages, say).
pub async fn from_env_with(
    customize: impl FnOnce(KvixiBuilder) -> KvixiBuilder,
) -> Result<Example, Box<dyn std::error::Error>> {
    init_tracing();
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    let addr: SocketAddr = var("KVIXI_EXAMPLE_ADDR")
        .unwrap_or_else(|| "127.0.0.1:3000".into())
        .parse()
        .map_err(|e| format!("KVIXI_EXAMPLE_ADDR is not an address like 127.0.0.1:3000: {e}"))?;
    let public_url = var("KVIXI_PUBLIC_URL")
        .unwrap_or_else(|| format!("http://localhost:{}", addr.port()))
        .trim_end_matches('/')
        .to_owned();

    let redis_url = var("KVIXI_REDIS_URL");
    let cookie_key = var("KVIXI_COOKIE_KEY");
    // Instances sharing sessions must also share the key of the cookies that carry a
    // started login and the session id, or a login started on one fails on another.
    if redis_url.is_some() && cookie_key.is_none() {
        return Err(format!(
            "KVIXI_COOKIE_KEY is not set: with KVIXI_REDIS_URL, set it to {COOKIE_KEY_HELP}"
        )
        .into());
    }
    if let Some(short) = cookie_key
        .as_ref()
        .filter(|key| key.len() < CookieKey::MIN_LEN)
    {
        return Err(format!(
            "KVIXI_COOKIE_KEY is {} characters long; set it to {COOKIE_KEY_HELP}",
            short.len()
        )
        .into());
    }

    if var("KVIXI_APP_ID").is_some() {
        // Reads KVIXI_COOKIE_KEY too, and names it when it is missing.
        let kvixi = flow(Config::from_env()?, redis_url.as_deref(), customize).await?;
        return Ok(Example {
            kvixi,
            addr,
            public_url,
            emulator: None,
            redis_url,
        });
    }

    // No real app: register one with the embedded emulator, under a secret made for
    // this run and never printed.
    let redirect_url = format!("{public_url}/auth/kvixi/callback");
    let mut secret_bytes = [0u8; 24];
    rand::rng().fill_bytes(&mut secret_bytes);
    let secret: String = secret_bytes.iter().map(|b| format!("{b:02x}")).collect();
    let mock_addr = var("KVIXI_MOCK_ADDR").unwrap_or_else(|| "127.0.0.1:8787".into());
    let emulator = Emulator::builder()
        .app(App::new(DEMO_APP_ID, &secret, &redirect_url))
        .start(mock_addr.as_str())
        .await
        .map_err(|e| {
            format!(
                "could not start the embedded Kvixi emulator on {mock_addr} (KVIXI_MOCK_ADDR): {e}"
            )
        })?;
    let mut config =
        Config::builder(DEMO_APP_ID, secret, redirect_url).base_url(emulator.base_url());
    // Without KVIXI_COOKIE_KEY the builder makes a key for this run: a restart then
    // logs everyone out, as the memory store would anyway.
    if let Some(key) = cookie_key {
        config = config.cookie_key(key.into_bytes());
    }
    Ok(Example {
        kvixi: flow(config.build()?, redis_url.as_deref(), customize).await?,
        addr,
        public_url,
        emulator: Some(emulator),
        redis_url,
    })
}

/// How long the first connection to Redis may take before the example gives up.
pub(crate) const REDIS_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections in an example's fred pool.
const REDIS_POOL_SIZE: usize = 4;

/// The error for a Redis that does not answer. The URL itself is not repeated: it may
/// hold a password.
pub(crate) fn redis_unreachable(error: impl fmt::Display) -> String {
    format!("cannot connect to the Redis of KVIXI_REDIS_URL: {error}")
}

pub(crate) fn no_answer() -> String {
    format!("no answer within {REDIS_CONNECT_TIMEOUT:?}")
}

/// A connected fred pool: for tower-sessions' Redis store (axum, Rocket) and, on every
/// framework, for the revocation stamps that every instance must see.
///
/// Set up to survive a Redis outage: fred reconnects (without a policy it never does) and
/// drops a command a little before kvixi's own store timeout (otherwise fred queues it
/// while Redis is down and sends it when Redis is back, after kvixi already answered 503).
pub async fn redis_pool(url: &str, kvixi_config: &kvixi_core::Config) -> Result<Pool, String> {
    let config = RedisConfig::from_url(url).map_err(|e| {
        format!("KVIXI_REDIS_URL is not a Redis URL like redis://127.0.0.1:6379: {e}")
    })?;
    let performance = PerformanceConfig {
        default_command_timeout: kvixi_config.session_store_timeout() * 4 / 5,
        ..PerformanceConfig::default()
    };
    let reconnect = ReconnectPolicy::new_constant(0, 100);
    let pool = Pool::new(
        config,
        Some(performance),
        None,
        Some(reconnect),
        REDIS_POOL_SIZE,
    )
    .map_err(redis_unreachable)?;
    match tokio::time::timeout(REDIS_CONNECT_TIMEOUT, pool.init()).await {
        Ok(Ok(_)) => Ok(pool),
        Ok(Err(error)) => Err(redis_unreachable(error)),
        Err(_) => Err(redis_unreachable(no_answer())),
    }
}

/// The example's flow: its `on_login`, and with Redis the revocation stamps there too, so
/// that a revocation on one instance reaches every other.
async fn flow(
    config: Config,
    redis_url: Option<&str>,
    customize: impl FnOnce(KvixiBuilder) -> KvixiBuilder,
) -> Result<Kvixi, Box<dyn std::error::Error>> {
    let mut builder = Kvixi::builder(config.clone()).on_login(crate::member::admit);
    if let Some(url) = redis_url {
        let pool = redis_pool(url, &config).await?;
        builder = builder.revocations(kvixi_core::RedisRevocations::new(pool));
    }
    Ok(customize(builder).build()?)
}

impl Example {
    /// Prints where to go and, with the emulator, whom to log in as.
    pub fn announce(&self, framework: &str) {
        println!("kvixi-rs {framework} example: open {}/", self.public_url);
        match &self.emulator {
            Some(emulator) => {
                println!(
                    "Kvixi emulator at {} (offline; set KVIXI_APP_ID to use a real app)",
                    emulator.base_url()
                );
                println!("Log in as one of:");
                for (name, password) in [
                    (
                        kvixi_mock::fixture::ALICE,
                        kvixi_mock::fixture::ALICE_PASSWORD,
                    ),
                    (kvixi_mock::fixture::BOB, kvixi_mock::fixture::BOB_PASSWORD),
                ] {
                    println!("  user name {name:<8} password {password}");
                }
            }
            None => println!("Using Kvixi at {}", self.kvixi.config().base_url()),
        }
        match self.redis_url {
            Some(_) => println!(
                "Sessions in Redis (KVIXI_REDIS_URL), shared by every instance with the same KVIXI_COOKIE_KEY"
            ),
            None => {
                println!("Sessions in this process's memory (set KVIXI_REDIS_URL to share them)")
            }
        }
    }
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .try_init();
}
