//! The bot phase (issue 12): browsers logging in while anonymous bots hammer the login
//! route, and what a large number of anonymous login starts costs the app's memory (the
//! default store) and Redis (the Redis store).
//!
//! Against a fresh child with the default store:
//! 1. warm-up: 320 logins and logouts (16 browsers) and 20 000 login starts (bots);
//! 2. `VmRSS`, then `starts` anonymous login starts by the bots alone, then `VmRSS` again;
//! 3. 5 000 full logins by 16 browsers, then 5 000 more while the bots run;
//! 4. wrk on the login route for 10 s, as a cross-check of the bots' rate.
//!
//! Against a fresh child on a throwaway `redis-server` (skipped when it is not installed):
//! warm-up, 100 logins that stay, Redis's key count, `starts` anonymous login starts,
//! the key count again.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use kvixi_mock::fixture::{ALICE, ALICE_USER_ID};
use tokio::runtime::Runtime;

use crate::anonymous::{self, Swarm, SwarmOutcome};
use crate::child::{App, Sessions};
use crate::phase::{self, Outcome, Plan, Work};
use crate::wrk::{self, WrkOutcome};
use kvixi_bench::redis_server::Redis;

/// Browsers logging in, with and without bots.
pub const BROWSERS: usize = 16;
/// Bots at once, one connection each.
pub const BOTS: usize = 32;
/// Full logins by the browsers, alone and again with the bots.
pub const LOGINS: u64 = 5_000;
/// Logins that stay in Redis while its keys are counted.
pub const REDIS_SESSIONS: u64 = 100;
/// Login starts that warm the app up before its memory is read.
const WARM_UP_STARTS: u64 = 20_000;
/// Bots run alongside the browsers until these are done; this only bounds them.
const BOTS_WITH_BROWSERS_CAP: u64 = 20_000_000;
/// The default number of anonymous login starts per framework and store.
pub const DEFAULT_STARTS: u64 = 1_000_000;

/// Everything the bot phase measured against one framework's example.
pub struct BotsMeasured {
    /// The framework's name.
    pub framework: &'static str,
    /// Full logins by [`BROWSERS`] browsers, no bots.
    pub logins_alone: Outcome,
    /// The same while [`BOTS`] bots hit the login route.
    pub logins_with_bots: Outcome,
    /// What the bots did meanwhile.
    pub bots_with_browsers: SwarmOutcome,
    /// The anonymous login starts of the memory measurement, bots alone.
    pub bots_alone: SwarmOutcome,
    /// `VmRSS` before those starts.
    pub rss_before: Option<u64>,
    /// `VmRSS` after them.
    pub rss_after: Option<u64>,
    /// wrk's figure, or why there is none.
    pub wrk: Result<WrkOutcome, String>,
    /// The Redis store's figures, or why there are none.
    pub redis: Result<RedisMeasured, String>,
}

/// The Redis column of one framework.
pub struct RedisMeasured {
    /// The logins whose sessions stay in Redis while the keys are counted.
    pub sessions: Outcome,
    /// `DBSIZE` before the anonymous login starts.
    pub keys_before: u64,
    /// `DBSIZE` after them.
    pub keys_after: u64,
    /// The anonymous login starts.
    pub bots: SwarmOutcome,
}

/// The runtimes the load runs on: browsers on one, bots on another, so that the kernel
/// shares the cores between them rather than one scheduler's queue.
pub struct Runtimes<'a> {
    /// The browsers' runtime.
    pub browsers: &'a Runtime,
    /// The bots' runtime.
    pub bots: &'a Runtime,
}

/// How long a swarm of `total` login starts may take, at worst ~2 000 a second.
fn deadline_for(total: u64) -> Duration {
    Duration::from_secs(60 + total / 2_000)
}

fn logins(runtimes: &Runtimes<'_>, app: &App, framework: &str, work: Work, total: u64) -> Outcome {
    let plan = Plan {
        work,
        browsers: BROWSERS,
        total,
        deadline: Duration::from_secs(120),
    };
    let outcome = runtimes
        .browsers
        .block_on(phase::run(plan, &app.url, ALICE, ALICE_USER_ID));
    log_logins(framework, "", &outcome);
    outcome
}

fn log_logins(framework: &str, with: &str, outcome: &Outcome) {
    eprintln!(
        "load: {framework} {:?} x{}{with}: {} ok, {} failed, {} not started in {:.1?}",
        outcome.plan.work,
        outcome.plan.browsers,
        outcome.latencies.len(),
        outcome.failures,
        outcome.not_started,
        outcome.elapsed
    );
    for example in &outcome.examples {
        eprintln!("load:   {example}");
    }
}

fn log_swarm(framework: &str, what: &str, outcome: &SwarmOutcome) {
    eprintln!(
        "load: {framework} {what}: {} bots, {} login starts answered 303 ({:.0}/s), {} failed, \
         {} not sent, {} session cookies handed out, in {:.1?}",
        outcome.plan.connections,
        outcome.answered,
        outcome.rate(),
        outcome.failures,
        outcome.not_started,
        outcome.session_cookies,
        outcome.elapsed
    );
    for example in &outcome.examples {
        eprintln!("load:   {example}");
    }
}

/// `total` anonymous login starts by the bots alone.
fn swarm(
    runtimes: &Runtimes<'_>,
    app: &App,
    framework: &str,
    what: &str,
    total: u64,
) -> SwarmOutcome {
    let plan = Swarm {
        connections: BOTS,
        total,
        deadline: deadline_for(total),
    };
    let stop = Arc::new(AtomicBool::new(false));
    let outcome = runtimes.bots.block_on(anonymous::run(plan, app.addr, stop));
    log_swarm(framework, what, &outcome);
    outcome
}

fn settled_rss(app: &App) -> Option<u64> {
    std::thread::sleep(Duration::from_millis(300));
    app.rss_bytes()
}

/// The bot phase against `framework`'s example: `starts` anonymous login starts for
/// the memory figure and again for the Redis one.
pub fn measure(
    runtimes: &Runtimes<'_>,
    framework: &'static str,
    starts: u64,
) -> Result<BotsMeasured, String> {
    let app = App::start(framework, Sessions::Memory)?;
    logins(runtimes, &app, framework, Work::LoginLogout, 320);
    swarm(runtimes, &app, framework, "warm-up", WARM_UP_STARTS);

    let rss_before = settled_rss(&app);
    let bots_alone = swarm(runtimes, &app, framework, "bots alone", starts);
    let rss_after = settled_rss(&app);

    let logins_alone = logins(runtimes, &app, framework, Work::Login, LOGINS);
    let (logins_with_bots, bots_with_browsers) = logins_under_bots(runtimes, &app);
    log_logins(framework, " with bots", &logins_with_bots);
    log_swarm(framework, "bots with browsers", &bots_with_browsers);

    let wrk = wrk::login_starts(&app.url);
    match &wrk {
        Ok(outcome) => eprintln!(
            "load: {framework} wrk: {:.0} req/s, {} requests, {} errors",
            outcome.rate, outcome.requests, outcome.errors
        ),
        Err(why) => eprintln!("load: {framework} wrk: no figure: {why}"),
    }
    drop(app);

    let redis = measure_redis(runtimes, framework, starts);
    if let Err(why) = &redis {
        eprintln!("load: {framework} Redis column skipped: {why}");
    }
    Ok(BotsMeasured {
        framework,
        logins_alone,
        logins_with_bots,
        bots_with_browsers,
        bots_alone,
        rss_before,
        rss_after,
        wrk,
        redis,
    })
}

/// [`LOGINS`] full logins while the bots run; the bots stop when the browsers are done.
fn logins_under_bots(runtimes: &Runtimes<'_>, app: &App) -> (Outcome, SwarmOutcome) {
    let plan = Plan {
        work: Work::Login,
        browsers: BROWSERS,
        total: LOGINS,
        deadline: Duration::from_secs(180),
    };
    let stop = Arc::new(AtomicBool::new(false));
    let bots = runtimes.bots.spawn(anonymous::run(
        Swarm {
            connections: BOTS,
            total: BOTS_WITH_BROWSERS_CAP,
            deadline: plan.deadline + Duration::from_secs(10),
        },
        app.addr,
        stop.clone(),
    ));
    // The bots are at full speed before the first browser starts.
    std::thread::sleep(Duration::from_millis(500));
    let logins = runtimes
        .browsers
        .block_on(phase::run(plan, &app.url, ALICE, ALICE_USER_ID));
    stop.store(true, Ordering::Relaxed);
    let bots = match runtimes.bots.block_on(bots) {
        Ok(outcome) => outcome,
        Err(join) => SwarmOutcome {
            plan: Swarm {
                connections: BOTS,
                total: BOTS_WITH_BROWSERS_CAP,
                deadline: plan.deadline,
            },
            elapsed: Duration::ZERO,
            answered: 0,
            session_cookies: 0,
            failures: 1,
            examples: vec![format!("the bots' task ended: {join}")],
            not_started: 0,
        },
    };
    (logins, bots)
}

fn measure_redis(
    runtimes: &Runtimes<'_>,
    framework: &'static str,
    starts: u64,
) -> Result<RedisMeasured, String> {
    let redis = Redis::start().map_err(|why| why.to_string())?;
    let app = App::start(framework, Sessions::Redis(&redis.url()))?;
    logins(runtimes, &app, framework, Work::LoginLogout, 320);
    let sessions = logins(runtimes, &app, framework, Work::Login, REDIS_SESSIONS);
    let keys_before = redis.key_count()?;
    let bots = swarm(runtimes, &app, framework, "bots alone, Redis store", starts);
    std::thread::sleep(Duration::from_millis(300));
    let keys_after = redis.key_count()?;
    eprintln!("load: {framework} Redis keys: {keys_before} before, {keys_after} after");
    Ok(RedisMeasured {
        sessions,
        keys_before,
        keys_after,
        bots,
    })
}
