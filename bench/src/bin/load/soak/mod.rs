//! `load soak <framework> [--minutes N | --seconds N] [--failovers 2] [--out DIR]`: a fleet under real
//! traffic while Redis, Kvixi and instances fail, and a ledger of everything lost.
//!
//! It starts and owns every process, all on 127.0.0.1: a Redis primary, its replica and
//! three sentinels; the Kvixi emulator (in this process); three instances of the example
//! (this binary in `serve` mode, configured by the environment like a deployment: one
//! `KVIXI_REDIS_URL` naming the sentinels, one `KVIXI_COOKIE_KEY`, `RUST_BACKTRACE=1`
//! and no `RUST_LIB_BACKTRACE`, whatever the caller's shell has). A round-robin balancer
//! (in this process) spreads the requests of
//!
//! - 32 browsers, two per user, that log in, read `/me`, `/me/app`, `/account` and
//!   `/private`, sometimes log out or log out everywhere, and log in again; each knows
//!   whether it should be logged in;
//! - 32 bots on the login route and the callback, with made-up keys;
//! - a trickle of hostile requests: forged, replayed and tampered session cookies, huge
//!   and malformed query strings, wrong methods;
//! - open-loop reads of four sessions that never log out, sent on time at `--rate N` a
//!   second (by default half of what a short calibration at the start finds the fleet
//!   serving), each timed from when it was due (`open_loop`).
//!
//! A watch checks every instance each second (its process and a `GET /`); an instance
//! not serving, or skipped by the balancer, outside its own restart fails the run.
//! Each fault's window excuses only what that fault touches (`faults::Timings`): a Kvixi
//! fault the callbacks, a store fault the session reads and writes for the store timeout,
//! a restart the requests to that instance.
//!
//! The faults come on a schedule printed at the start ([`faults::Schedule`]). The ledger
//! counts a browser found logged out when it should not be (a lost session), a 200 for
//! someone who should be anonymous (a breach), every 5xx outside a fault's window, and
//! any other answer no scenario expects; it samples every instance's resident memory (and
//! the anonymous part of it) and open file descriptors each second. The report is a table
//! per fault and the totals, in the terminal and as Markdown (`DIR/soak-<framework>.md`),
//! with an SVG time line (`DIR/soak-<framework>.svg`); the instances' logs are copied to
//! `DIR/soak-<framework>-logs/` (`KVIXI_SOAK_LOG` sets their `RUST_LOG`, `warn` by
//! default). The exit status is a failure when any count is not zero, an instance logged
//! a panic or was not serving outside its restart, or an instance's memory at the end is
//! more than 10 % above its first minute's; a run of 5 minutes or more also fails when a
//! class of request spent more than 25 % of it excused, or the open-loop p99 outside the
//! windows is over 20 ms.

mod attackers;
mod faults;
mod ledger;
mod open_loop;
mod report;
mod svg;
mod traffic;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kvixi_e2e::fleet::{Example, Fleet, Framework, Keys};
use kvixi_e2e::postgres::Postgres;
use kvixi_e2e::topology::SentinelGroup;
use kvixi_mock::User as MockUser;

use self::faults::{Schedule, Store, Targets, Timings};
use self::ledger::Ledger;
use self::report::{Run, Sample};
use self::traffic::{Browser, Shared, User};

/// Browsers (two per user), bots, and the pause of each bot and of the hostile trickle.
const BROWSERS: usize = 32;
const BOTS: usize = 32;
const BOT_PACE: Duration = Duration::from_millis(200);
const HOSTILE_PACE: Duration = Duration::from_millis(100);
/// How long a finishing task may take to end after the run.
const DRAIN: Duration = Duration::from_secs(20);
/// The instances' environment beside the kvixi settings, as a deployment sets it: a
/// panic prints its backtrace (`RUST_BACKTRACE=1`, for the log check), and
/// `RUST_LIB_BACKTRACE` is not set (the fleet removes it), so any library error that
/// captures a backtrace does so here too: since no adapter keeps an `anyhow`-erroring
/// session store any longer (issue 27), a store outage must not cost memory for it.
const INSTANCE_ENV: [(&str, &str); 1] = [("RUST_BACKTRACE", "1")];

/// What the command line asks for.
struct Plan {
    framework: Framework,
    duration: Duration,
    /// 1, or 2 for a second failover late in the run.
    failovers: u8,
    /// `--store postgres`: the instances on one Postgres server instead of Sentinel.
    postgres: bool,
    /// `--rate N`: the open-loop reads a second; `None`: half the calibrated capacity.
    rate: Option<f64>,
    out: PathBuf,
}

/// `load soak …`: runs the soak and prints its report.
pub fn main(args: &[String]) -> ExitCode {
    let plan = match parse(args) {
        Ok(plan) => plan,
        Err(error) => {
            eprintln!(
                "error: {error}\nusage: load soak <axum|actix|rocket> [--minutes N | --seconds N] [--failovers 1|2] [--store sentinel|postgres] [--rate N] [--out DIR]"
            );
            return ExitCode::FAILURE;
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: no runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(&plan)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

fn parse(args: &[String]) -> Result<Plan, String> {
    let mut framework = None;
    let mut duration = Duration::from_secs(600);
    let mut out = PathBuf::from("target/soak");
    let mut failovers = 1;
    let mut postgres = false;
    let mut rate = None;
    let mut args = args.iter().map(String::as_str);
    while let Some(arg) = args.next() {
        match arg {
            "--minutes" | "--seconds" => {
                let unit = if arg == "--minutes" { 60.0 } else { 1.0 };
                let n: f64 = args
                    .next()
                    .and_then(|n| n.parse().ok())
                    .filter(|n: &f64| *n >= 1.0)
                    .ok_or(format!("{arg} takes a number, 1 or more"))?;
                duration = Duration::from_secs_f64(n * unit);
            }
            "--out" => out = PathBuf::from(args.next().ok_or("--out takes a directory")?),
            "--rate" => {
                rate = Some(
                    args.next()
                        .and_then(|n| n.parse::<f64>().ok())
                        .filter(|n| (1.0..=100_000.0).contains(n))
                        .ok_or("--rate takes requests a second, 1 to 100000")?,
                );
            }
            "--store" => match args.next() {
                Some("postgres") => postgres = true,
                Some("sentinel" | "redis") => postgres = false,
                _ => return Err("--store takes sentinel or postgres".into()),
            },
            "--failovers" => {
                failovers = args
                    .next()
                    .and_then(|n| n.parse().ok())
                    .filter(|n| (1..=2).contains(n))
                    .ok_or("--failovers takes 1 or 2")?;
            }
            name => {
                framework = Some(name.parse::<Framework>().map_err(|e| e.to_string())?);
            }
        }
    }
    Ok(Plan {
        framework: framework.ok_or("which framework?")?,
        duration,
        failovers,
        postgres,
        rate,
        out,
    })
}

/// A cookie key for one run: 64 random hex digits.
fn cookie_key() -> String {
    let mut bytes = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

async fn run(plan: &Plan) -> Result<bool, String> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let framework = plan.framework;
    let schedule = Schedule::for_run(plan.duration, plan.failovers, plan.postgres);
    eprintln!(
        "soak: {framework}, {:.0} s: 3 instances on {}, \
         {BROWSERS} browsers, {BOTS} bots, hostile requests every {HOSTILE_PACE:?}; faults:",
        plan.duration.as_secs_f64(),
        if plan.postgres {
            "one Postgres"
        } else {
            "Sentinel (primary, replica, 3 sentinels)"
        }
    );
    for line in schedule.describe() {
        eprintln!("soak:   {line}");
    }
    let timings = Timings::of_instances();
    eprintln!("soak: windows, derived from the instances' timeouts:");
    for line in timings.describe() {
        eprintln!("soak:   {line}");
    }

    let (store, store_url) = if plan.postgres {
        let postgres = tokio::task::block_in_place(Postgres::start)
            .ok_or("the soak on Postgres needs postgresql (apt-get install postgresql)")?;
        let url = postgres.new_database().await;
        (Store::Postgres(postgres), url)
    } else {
        let redis = tokio::task::block_in_place(SentinelGroup::start).ok_or(
            "the soak needs redis-server and redis-cli (apt-get install redis-server redis-tools)",
        )?;
        let url = redis.url();
        (Store::Sentinel(redis), url)
    };
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let example = Example::with_args(exe, &["serve"], framework);
    let keys = (cookie_key(), cookie_key());
    // The instances are set up as a deployment would be, whatever this shell has: logs
    // at warn, a backtrace for a panic (see `INSTANCE_ENV`).
    let mut env: Vec<(String, String)> = INSTANCE_ENV
        .iter()
        .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
        .collect();
    env.push((
        "RUST_LOG".to_owned(),
        std::env::var("KVIXI_SOAK_LOG").unwrap_or_else(|_| "warn".to_owned()),
    ));
    let fleet = Fleet::start_with_env(&example, &store_url, 3, Keys::only(&keys.0), env).await;
    let users: Vec<Arc<User>> = (0..BROWSERS / 2).map(|n| Arc::new(User::new(n))).collect();
    let readers_from = BROWSERS / 2;
    let reader_users = open_loop::Readers::users(readers_from);
    for user in users.iter().map(|user| &**user).chain(reader_users.iter()) {
        fleet
            .emulator
            .add_user(MockUser::new(&user.id, &user.name, "soak-password"));
    }

    let ledger = Arc::new(Ledger::new());
    let shared = Arc::new(Shared::new(fleet.bases(), ledger.clone(), BROWSERS));
    let pids = Arc::new(Mutex::new(fleet.pids()));
    let mut targets = Targets {
        fleet,
        store,
        keys,
        pids: pids.clone(),
        timings,
        after_failover: deliberate_break(),
    };

    let mut tasks = Vec::new();
    for index in 0..BROWSERS {
        let browser = Browser::new(index, users[index / 2].clone());
        tasks.push(tokio::spawn(browser.run(shared.clone())));
    }
    for index in 0..BOTS {
        tasks.push(tokio::spawn(attackers::bot(
            index,
            shared.clone(),
            BOT_PACE,
        )));
    }
    tasks.push(tokio::spawn(attackers::hostile(
        shared.clone(),
        HOSTILE_PACE,
    )));
    let samples = Arc::new(Mutex::new(Vec::new()));
    let sampler = tokio::spawn(sample(ledger.clone(), pids.clone(), samples.clone()));
    tasks.push(tokio::spawn(open_loop::watch(shared.clone(), pids.clone())));

    // The open-loop reads: their sessions, the fleet's capacity beside the browsers, and
    // half of it (or `--rate`) sent on time whatever the answers do.
    let readers = open_loop::Readers::log_in(&shared, readers_from).await?;
    let capacity = open_loop::calibrate(&shared, &readers).await;
    let rate = plan.rate.unwrap_or((capacity / 2.0).max(10.0));
    eprintln!(
        "soak: {:5.1}s calibration: the fleet serves {capacity:.0} reads/s beside the browsers; \
         open-loop reads at {rate:.0}/s{}",
        ledger.now(),
        if plan.rate.is_some() {
            " (--rate)"
        } else {
            " (half of it)"
        }
    );
    let dropped = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    tasks.push(tokio::spawn(open_loop::drive(
        shared.clone(),
        readers,
        rate,
        timings.store_timeout,
        dropped.clone(),
    )));

    let windows = targets.drive(&schedule, &shared).await;
    let end = plan
        .duration
        .as_secs_f64()
        .max(windows.last().map_or(0.0, |w| w.end) + 5.0);
    tokio::time::sleep_until(ledger.at(end).into()).await;
    shared.stop();
    let drained = Instant::now();
    for task in tasks {
        let left = DRAIN.saturating_sub(drained.elapsed());
        match tokio::time::timeout(left, task).await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => return Err(format!("a traffic task failed: {error}")),
            Err(_) => return Err(format!("a traffic task did not end within {DRAIN:?}")),
        }
    }
    sampler.abort();
    let logs_now = targets.fleet.logs();
    let panics = panics(&logs_now);
    keep_logs(
        &logs_now,
        &plan.out.join(format!(
            "soak-{}{}-logs",
            framework.name(),
            if plan.postgres { "-postgres" } else { "" }
        )),
    );
    let samples = samples
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    let run = Run {
        framework: framework.name(),
        store: if plan.postgres {
            "one Postgres"
        } else {
            "Sentinel"
        },
        stem: if plan.postgres {
            format!("soak-{}-postgres", framework.name())
        } else {
            format!("soak-{}", framework.name())
        },
        seconds: ledger.now(),
        windows,
        ledger: &ledger,
        samples,
        panics,
        logs: logs_now,
        open_loop: report::OpenLoop {
            capacity,
            rate,
            dropped: dropped.load(std::sync::atomic::Ordering::Relaxed),
        },
    };
    let passed = report::print(&run, &plan.out)?;
    Ok(passed)
}

/// `KVIXI_SOAK_BREAK=flush-promoted`: a deliberate break to show the ledger catches a
/// failover that loses data: the promoted replica is emptied (`FLUSHALL`) as soon as
/// Sentinel has promoted it. Never set in the test command.
fn deliberate_break() -> Option<faults::AfterFailover> {
    match std::env::var("KVIXI_SOAK_BREAK").ok()?.as_str() {
        "flush-promoted" => Some(Box::new(|redis: &SentinelGroup| {
            let port = redis
                .current_primary()
                .and_then(|primary| primary.rsplit(':').next()?.parse::<u16>().ok());
            if let Some(port) = port {
                let answer = kvixi_e2e::topology::cli(port, &["flushall"]);
                eprintln!("soak: KVIXI_SOAK_BREAK: FLUSHALL on the promoted {port}: {answer}");
            }
        })),
        other => {
            eprintln!("soak: KVIXI_SOAK_BREAK={other} is not a break this run knows");
            None
        }
    }
}

/// Every second: each instance's resident memory and open file descriptors.
async fn sample(
    ledger: Arc<Ledger>,
    pids: Arc<Mutex<Vec<Option<u32>>>>,
    samples: Arc<Mutex<Vec<Sample>>>,
) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tick.tick().await;
        let pids = pids
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        let memory: Vec<Option<(u64, u64)>> =
            pids.iter().map(|pid| pid.and_then(rss_bytes)).collect();
        let sample = Sample {
            at: ledger.now(),
            rss: memory.iter().map(|m| m.map(|(rss, _)| rss)).collect(),
            anon: memory.iter().map(|m| m.map(|(_, anon)| anon)).collect(),
            fds: pids.iter().map(|pid| pid.and_then(open_fds)).collect(),
            pids,
        };
        samples
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(sample);
    }
}

/// `VmRSS` of `pid` and the anonymous part of it (`RssAnon`: the heap and the stacks,
/// not the pages of the binary), in bytes.
fn rss_bytes(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib = |field: &str| -> Option<u64> {
        let line = status.lines().find(|line| line.starts_with(field))?;
        line.split_whitespace().nth(1)?.parse().ok()
    };
    Some((kib("VmRSS:")? * 1024, kib("RssAnon:")? * 1024))
}

/// How many file descriptors `pid` has open.
fn open_fds(pid: u32) -> Option<u64> {
    Some(std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count() as u64)
}

/// Copies the instances' logs (they live in a directory removed with the fleet) to `dir`.
fn keep_logs(logs: &[PathBuf], dir: &std::path::Path) {
    let _ = std::fs::remove_dir_all(dir);
    if std::fs::create_dir_all(dir).is_err() {
        return;
    }
    for log in logs {
        if let Some(name) = log.file_name() {
            let _ = std::fs::copy(log, dir.join(name));
        }
    }
}

/// The lines of the instances' logs that report a panic.
fn panics(logs: &[PathBuf]) -> Vec<String> {
    logs.iter()
        .flat_map(|log| {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            let name = log
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            text.lines()
                .filter(|line| line.contains("panicked"))
                .map(|line| format!("{name}: {line}"))
                .collect::<Vec<_>>()
        })
        .collect()
}
