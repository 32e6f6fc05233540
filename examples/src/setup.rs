//! What every example binary does before serving: read the environment, start the
//! embedded emulator when no real Kvixi app is configured, build the flow.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use kvixi_core::{Config, Kvixi, KvixiBuilder};
use kvixi_mock::{App, Emulator};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
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
    /// The process's Prometheus recorder, which `/metrics` renders (see [`metrics`]).
    pub metrics: PrometheusHandle,
    /// The SQLite file the example keeps everything in by default, when it does.
    pub sqlite_file: Option<PathBuf>,
}

/// The SQLite file of the example's default store, in `KVIXI_EXAMPLE_DIR` (default: the
/// working directory).
pub const SQLITE_FILE: &str = "kvixi-example.db";

/// The cookie key the example makes once and keeps beside its SQLite file when
/// `KVIXI_COOKIE_KEY` is not set.
pub const KEY_FILE: &str = "kvixi-example.key";

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
    // Before the flow exists, so that the recorder sees everything it counts.
    let metrics = metrics().clone();
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    let addr: SocketAddr = var("KVIXI_EXAMPLE_ADDR")
        .unwrap_or_else(|| "127.0.0.1:3000".into())
        .parse()
        .map_err(|e| format!("KVIXI_EXAMPLE_ADDR is not an address like 127.0.0.1:3000: {e}"))?;
    let public_url = var("KVIXI_PUBLIC_URL")
        .unwrap_or_else(|| format!("http://localhost:{}", addr.port()))
        .trim_end_matches('/')
        .to_owned();

    // Without KVIXI_REDIS_URL or KVIXI_DATABASE_URL: a SQLite file in the example's
    // directory, so that a restart logs nobody out. `KVIXI_EXAMPLE_STORE=memory` keeps
    // the sessions in the process instead (the load tool's memory rows).
    let dir = PathBuf::from(var("KVIXI_EXAMPLE_DIR").unwrap_or_else(|| ".".into()));
    let redis = var("KVIXI_REDIS_URL").is_some();
    let in_memory = var("KVIXI_EXAMPLE_STORE").is_some_and(|store| store == "memory");
    let database_url = var("KVIXI_DATABASE_URL").or_else(|| {
        (!redis && !in_memory).then(|| format!("sqlite://{}", dir.join(SQLITE_FILE).display()))
    });
    let sqlite_file = database_url
        .as_deref()
        .and_then(|url| url.strip_prefix("sqlite://"))
        .map(|path| PathBuf::from(path.split('?').next().unwrap_or(path)));
    let cookie_key = match (var("KVIXI_COOKIE_KEY"), &sqlite_file) {
        (Some(key), _) => Some(key),
        // One machine: the key is made once and kept beside the file, so that a restart
        // with no settings at all keeps everyone logged in.
        (None, Some(file)) => Some(key_beside(file)?),
        // In memory, a key for this run: a restart logs everyone out anyway.
        (None, None) if in_memory && !redis && database_url.is_none() => Some(random_hex(32)),
        // Instances sharing sessions must also share the key of the cookies that carry
        // a started login and the session id, or a login started on one fails on another.
        (None, None) => {
            return Err(format!(
                "KVIXI_COOKIE_KEY is not set: with KVIXI_REDIS_URL or a Postgres KVIXI_DATABASE_URL, set it to {COOKIE_KEY_HELP}"
            )
            .into());
        }
    };
    // The environment as the library reads it, with the example's defaults.
    let settings = move |name: &str| match name {
        "KVIXI_COOKIE_KEY" => cookie_key.clone(),
        "KVIXI_DATABASE_URL" => database_url.clone(),
        other => var(other),
    };

    if var("KVIXI_APP_ID").is_some() {
        // Reads KVIXI_COOKIE_KEY, KVIXI_PREVIOUS_COOKIE_KEYS, KVIXI_REDIS_URL and
        // KVIXI_DATABASE_URL too, and names whichever is wrong.
        let kvixi = flow(Config::from_lookup(settings)?, customize).await?;
        return Ok(Example {
            kvixi,
            addr,
            public_url,
            emulator: None,
            metrics,
            sqlite_file,
        });
    }

    // No real app: register one with the embedded emulator, under a secret made for
    // this run and never printed.
    let redirect_url = format!("{public_url}/auth/kvixi/callback");
    let secret = random_hex(24);
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
    // The emulator's app, and everything else from the environment as a real app reads
    // it.
    let base_url = emulator.base_url();
    let config = Config::from_lookup(|name| match name {
        "KVIXI_APP_ID" => Some(DEMO_APP_ID.to_owned()),
        "KVIXI_APP_SECRET" => Some(secret.clone()),
        "KVIXI_REDIRECT_URL" => Some(redirect_url.clone()),
        "KVIXI_BASE_URL" => Some(base_url.clone()),
        other => settings(other),
    })?;
    Ok(Example {
        kvixi: flow(config, customize).await?,
        addr,
        public_url,
        emulator: Some(emulator),
        metrics,
        sqlite_file,
    })
}

/// The cookie key kept in [`KEY_FILE`] beside `sqlite_file`, made (64 random hex
/// characters, the file readable by its owner only) when missing.
fn key_beside(sqlite_file: &Path) -> Result<String, Box<dyn std::error::Error>> {
    let path = sqlite_file
        .parent()
        .filter(|parent| !parent.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .join(KEY_FILE);
    match std::fs::read_to_string(&path) {
        Ok(key) if !key.trim().is_empty() => return Ok(key.trim().to_owned()),
        Ok(_) => {}
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
        Err(error) => return Err(format!("cannot read {}: {error}", path.display()).into()),
    }
    let key = random_hex(32);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(&path)
        .map_err(|error| format!("cannot create {}: {error}", path.display()))?;
    std::io::Write::write_all(&mut file, key.as_bytes())
        .map_err(|error| format!("cannot write {}: {error}", path.display()))?;
    tracing::info!(path = %path.display(), "kvixi example: made a cookie key and kept it beside the SQLite file");
    Ok(key)
}

/// The content type of the Prometheus text format, which `/metrics` answers.
pub const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4";

/// Bucket bounds (seconds) of the library's `*_duration_seconds` histograms: from a
/// session store on the same host to Kvixi's 10 s timeout.
const DURATION_BUCKETS: [f64; 13] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// How often the recorder's histograms are drained, scraped or not.
const METRICS_UPKEEP: Duration = Duration::from_secs(5);

/// The process's Prometheus recorder, installed as the `metrics` facade's global
/// recorder on first use (every app of the process, the suite's in-process apps included,
/// shares it): what each example's `/metrics` renders. If another recorder was installed
/// first, the handle renders nothing and a warning says why.
pub fn metrics() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(install_metrics)
}

fn install_metrics() -> PrometheusHandle {
    // Histograms with buckets, which Prometheus can add up across instances (the
    // default would be summaries). Only empty bounds are refused.
    let builder = PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Suffix("_duration_seconds".into()),
            &DURATION_BUCKETS,
        )
        .unwrap_or_else(|_| PrometheusBuilder::new());
    match builder.install_recorder() {
        Ok(handle) => {
            // `install_recorder` leaves the upkeep (draining histogram samples) to us;
            // a thread of its own, since each framework runs its own runtime.
            let upkeep = handle.clone();
            let spawned = std::thread::Builder::new()
                .name("metrics-upkeep".into())
                .spawn(move || {
                    loop {
                        std::thread::sleep(METRICS_UPKEEP);
                        upkeep.run_upkeep();
                    }
                });
            if let Err(error) = spawned {
                tracing::warn!(%error, "no metrics upkeep thread: histograms drain at each scrape only");
            }
            handle
        }
        Err(error) => {
            tracing::warn!(%error, "another metrics recorder is installed: /metrics shows none of kvixi's metrics");
            PrometheusBuilder::new().build_recorder().handle()
        }
    }
}

/// `bytes` random bytes, in hex.
fn random_hex(bytes: usize) -> String {
    let mut random = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut random);
    random.iter().map(|b| format!("{b:02x}")).collect()
}

/// How long the first connection to Redis or the database may take before the example
/// gives up.
const STORE_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The example's flow, with its `on_login`. With `KVIXI_REDIS_URL` or
/// `KVIXI_DATABASE_URL` the library keeps sessions, revocation stamps and spent logins
/// there by itself; the example refuses to start while that store does not answer, so
/// that a wrong URL shows at once, and with a database it runs its own migrations (the
/// `members` table) on the flow's pool.
async fn flow(
    config: Config,
    customize: impl FnOnce(KvixiBuilder) -> KvixiBuilder,
) -> Result<Kvixi, Box<dyn std::error::Error>> {
    let members = crate::member::Members::default();
    let admit = members.clone();
    let builder = Kvixi::builder(config).on_login(move |user, token| {
        let members = admit.clone();
        async move { members.admit(user, token).await }
    });
    let kvixi = customize(builder).build()?;
    kvixi
        .redis_ready(STORE_CONNECT_TIMEOUT)
        .await
        .map_err(|error| format!("cannot connect to the Redis of KVIXI_REDIS_URL: {error}"))?;
    kvixi
        .database_ready(STORE_CONNECT_TIMEOUT)
        .await
        .map_err(|error| format!("cannot use the database of KVIXI_DATABASE_URL: {error}"))?;
    if let Some(database) = kvixi.database() {
        members
            .open(database)
            .await
            .map_err(|error| format!("cannot migrate the members table: {error}"))?;
    }
    Ok(kvixi)
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
        let config = self.kvixi.config();
        match (config.redis_url(), config.database_url(), &self.sqlite_file) {
            (Some(url), _, _) => println!(
                "Sessions in Redis ({}, KVIXI_REDIS_URL), shared by every instance with the same KVIXI_COOKIE_KEY",
                url.topology()
            ),
            (None, Some(_), Some(file)) => println!(
                "Sessions and members in the SQLite file {} (kept across restarts; KVIXI_DATABASE_URL or KVIXI_REDIS_URL switch the store)",
                std::path::absolute(file)
                    .unwrap_or_else(|_| file.clone())
                    .display()
            ),
            (None, Some(_), None) => println!(
                "Sessions and members in Postgres (KVIXI_DATABASE_URL), shared by every instance with the same KVIXI_COOKIE_KEY"
            ),
            (None, None, _) => println!("Sessions in this process's memory"),
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
