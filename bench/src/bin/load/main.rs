//! `cargo run -p kvixi-bench --release --bin load [-- [bots] [--starts N] [axum actix rocket]]`:
//! simulated browsers log in to each example app over real loopback HTTP, while bots hit
//! its login route.
//!
//! For each framework, a fresh child process serves the example app with its embedded
//! Kvixi emulator (this binary in `serve` mode, running [`kvixi_examples::serve::run`]
//! as the example binaries do). Browsers are reqwest clients with a cookie jar each,
//! following redirects by hand: login -> emulator `/api/oauth?...&mock_user=alice` ->
//! callback -> `/me`. Bots are anonymous hand-written HTTP/1.1 clients on
//! `GET /auth/kvixi/login?return_to=/private`. Every phase is bounded in requests and in
//! time, every request times out, and nothing is sent anywhere but 127.0.0.1. The run
//! prints two tables:
//!
//! - full logins per second and p50/p99 latency with 16 browsers at once (10 000 logins,
//!   which leave 10 000 logged-in sessions in the app's memory store), and with 1;
//!   failed logins with 200 browsers at once; the same for `GET /me` alone; the app's
//!   resident memory (`VmRSS`) before and after those 10 000 sessions, and its CPU time
//!   per login;
//! - the bot phase ([`bots`]): logins with and without 32 bots, the login-start rate (bots
//!   alone, bots with browsers, and wrk as a cross-check), `VmRSS` before and after
//!   `--starts` anonymous login starts (default 1 000 000) on the default store, and
//!   Redis's key count around as many on the Redis store (a throwaway `redis-server`).
//!
//! `load bots axum` runs only the bot phase, for one framework (or several);
//! `load slow-kvixi axum` the slow-Kvixi attack ([`slow_kvixi`]); `load soak axum
//! --minutes 10` a fleet under traffic and faults ([`soak`]).

mod anonymous;
mod bots;
mod browser;
mod child;
mod phase;
mod report;
mod serve;
mod slow_kvixi;
mod soak;
mod wrk;

use std::process::ExitCode;
use std::time::Duration;

use kvixi_examples::serve::Framework;
use kvixi_mock::fixture::{ALICE, ALICE_USER_ID};
use kvixi_mock::{Endpoint, Fault};

use crate::bots::Runtimes;
use crate::child::{App, OwnKvixi, Sessions, cpu_time_of};
use crate::phase::{Plan, Work};
use crate::report::Measured;

/// The example binaries' allocator (see `examples/src/bin`): the instances this binary
/// serves in `serve` mode run exactly as those do.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Logged-in sessions the app holds when its memory is read.
pub const SESSIONS: u64 = 10_000;

/// How long Kvixi takes over each call in the burst phase, by default: about a real
/// Kvixi's round trip across the internet.
const DEFAULT_KVIXI_DELAY: Duration = Duration::from_millis(100);

/// Browsers that log in at once in the burst phase.
pub const BURST: u64 = 1_000;

/// What the command line asks for.
struct Request {
    /// Only the bot phase.
    bots_only: bool,
    /// How long Kvixi takes over each call in the burst phase (`--kvixi-delay`).
    kvixi_delay: Duration,
    /// Anonymous login starts per framework and store.
    starts: u64,
    frameworks: Vec<&'static str>,
}

fn parse_args(args: &[String]) -> Result<Request, String> {
    let mut request = Request {
        bots_only: false,
        kvixi_delay: DEFAULT_KVIXI_DELAY,
        starts: bots::DEFAULT_STARTS,
        frameworks: Vec::new(),
    };
    let mut args = args.iter().map(String::as_str).peekable();
    if args.peek() == Some(&"bots") {
        request.bots_only = true;
        args.next();
    }
    while let Some(arg) = args.next() {
        let delay = if arg == "--kvixi-delay" {
            Some(args.next())
        } else {
            arg.strip_prefix("--kvixi-delay=").map(Some)
        };
        if let Some(delay) = delay {
            request.kvixi_delay = delay
                .and_then(|d| d.strip_suffix("ms").unwrap_or(d).parse().ok())
                .map(Duration::from_millis)
                .ok_or("--kvixi-delay takes milliseconds, such as 100ms")?;
            continue;
        }
        let starts = if arg == "--starts" {
            Some(args.next())
        } else {
            arg.strip_prefix("--starts=").map(Some)
        };
        if let Some(starts) = starts {
            request.starts = starts
                .and_then(|n| n.replace('_', "").parse().ok())
                .filter(|n| *n > 0)
                .ok_or("--starts takes a positive number of anonymous login starts")?;
            continue;
        }
        match arg.parse::<Framework>() {
            Ok(framework) => request.frameworks.push(framework.name()),
            Err(_) => {
                return Err(format!(
                    "unknown argument {arg:?}: load [bots] [--starts N] [--kvixi-delay MS] [axum] [actix] [rocket]"
                ));
            }
        }
    }
    if request.frameworks.is_empty() {
        request.frameworks = Framework::ALL.map(Framework::name).to_vec();
    }
    Ok(request)
}

/// `load slow-kvixi <framework>… [--bots N] [--hold SECONDS]`.
fn slow_kvixi_phase(args: &[String]) -> ExitCode {
    let (mut frameworks, mut bots, mut hold) = (
        Vec::new(),
        slow_kvixi::DEFAULT_BOTS,
        slow_kvixi::DEFAULT_HOLD,
    );
    let mut args = args.iter().map(String::as_str);
    while let Some(arg) = args.next() {
        let parsed = match arg {
            "--bots" => args.next().and_then(|n| n.parse().ok()).map(|n| bots = n),
            "--hold" => args
                .next()
                .and_then(|s| s.parse().ok())
                .map(|s| hold = Duration::from_secs(s)),
            name => name
                .parse::<Framework>()
                .ok()
                .map(|framework| frameworks.push(framework.name())),
        };
        if parsed.is_none() {
            eprintln!(
                "error: load slow-kvixi <axum|actix|rocket>… [--bots N] [--hold SECONDS]: {arg:?}?"
            );
            return ExitCode::FAILURE;
        }
    }
    if frameworks.is_empty() {
        frameworks = Framework::ALL.map(Framework::name).to_vec();
    }
    for framework in frameworks {
        let plan = slow_kvixi::Plan {
            framework,
            bots,
            hold,
        };
        if let Err(error) = slow_kvixi::run(&plan) {
            eprintln!("error: {framework}: {error}");
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("serve") {
        return serve::serve(args.get(1).map_or("", String::as_str));
    }
    if args.first().map(String::as_str) == Some("soak") {
        return soak::main(&args[1..]);
    }
    if args.first().map(String::as_str) == Some("slow-kvixi") {
        return slow_kvixi_phase(&args[1..]);
    }
    let request = match parse_args(&args) {
        Ok(request) => request,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::FAILURE;
        }
    };
    // reqwest is built without a default TLS provider; loopback http needs none, but
    // the client builder wants one installed.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtimes = tokio::runtime::Runtime::new().and_then(|browsers| {
        let bots = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("bot")
            .enable_all()
            .build()?;
        Ok((browsers, bots))
    });
    let (runtime, bots_runtime) = match runtimes {
        Ok(runtimes) => runtimes,
        Err(error) => {
            eprintln!("error: no runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let runtimes = Runtimes {
        browsers: &runtime,
        bots: &bots_runtime,
    };

    let (mut results, mut bot_results) = (Vec::new(), Vec::new());
    for framework in request.frameworks {
        if !request.bots_only {
            eprintln!("load: {framework} ...");
            match measure(&runtime, framework, request.kvixi_delay) {
                Ok(measured) => results.push(measured),
                Err(error) => {
                    eprintln!("error: {framework}: {error}");
                    return ExitCode::FAILURE;
                }
            }
        }
        eprintln!("load: {framework} bots ...");
        match bots::measure(&runtimes, framework, request.starts) {
            Ok(measured) => bot_results.push(measured),
            Err(error) => {
                eprintln!("error: {framework}: {error}");
                return ExitCode::FAILURE;
            }
        }
    }
    if !request.bots_only {
        report::print(&results);
    }
    report::print_bots(&bot_results, request.starts);
    ExitCode::SUCCESS
}

/// Runs `plan` against the app at `url` and says how it went, under `label`.
fn run_phase(
    runtime: &tokio::runtime::Runtime,
    label: &str,
    url: &url::Url,
    plan: Plan,
) -> phase::Outcome {
    let outcome = runtime.block_on(phase::run(plan, url, ALICE, ALICE_USER_ID));
    eprintln!(
        "load: {label} {:?} x{}: {} ok, {} failed, {} not started in {:.1?}",
        plan.work,
        plan.browsers,
        outcome.latencies.len(),
        outcome.failures,
        outcome.not_started,
        outcome.elapsed
    );
    for example in &outcome.examples {
        eprintln!("load:   {example}");
    }
    outcome
}

/// Every phase against a fresh process of `framework`'s example.
fn measure(
    runtime: &tokio::runtime::Runtime,
    framework: &'static str,
    kvixi_delay: Duration,
) -> Result<Measured, String> {
    let burst = measure_burst(runtime, framework, kvixi_delay)?;
    let app = App::start(framework, Sessions::Memory)?;
    let url = app.url.clone();
    let run = |plan: Plan| run_phase(runtime, framework, &url, plan);
    let cpu = || (app.cpu_time(), cpu_time_of("self"));

    // Connections, buffers and lazily built state settle in; the store ends empty.
    run(Plan {
        work: Work::LoginLogout,
        browsers: 16,
        total: 320,
        deadline: Duration::from_secs(60),
    });
    std::thread::sleep(Duration::from_millis(300));
    let rss_before = app.rss_bytes();

    let (app_cpu, own_cpu) = cpu();
    let logins_16 = run(Plan {
        work: Work::Login,
        browsers: 16,
        total: SESSIONS,
        deadline: Duration::from_secs(180),
    });
    let (app_cpu_after, own_cpu_after) = cpu();
    std::thread::sleep(Duration::from_millis(300));
    let rss_after = app.rss_bytes();

    let logins_1 = run(Plan {
        work: Work::Login,
        browsers: 1,
        total: 300,
        deadline: Duration::from_secs(30),
    });
    let (me_app_cpu, me_own_cpu) = cpu();
    let me_16 = run(Plan {
        work: Work::Me,
        browsers: 16,
        total: 20_000,
        deadline: Duration::from_secs(60),
    });
    let (me_app_cpu_after, me_own_cpu_after) = cpu();
    let me_1 = run(Plan {
        work: Work::Me,
        browsers: 1,
        total: 2_000,
        deadline: Duration::from_secs(30),
    });
    let logins_200 = run(Plan {
        work: Work::Login,
        browsers: 200,
        total: 1_000,
        deadline: Duration::from_secs(120),
    });
    let me_200 = run(Plan {
        work: Work::Me,
        browsers: 200,
        total: 10_000,
        deadline: Duration::from_secs(120),
    });

    let per = |before: Option<Duration>, after: Option<Duration>, count: usize| {
        Some((after? - before?) / u32::try_from(count.max(1)).ok()?)
    };
    Ok(Measured {
        framework,
        app_cpu_per_login: per(app_cpu, app_cpu_after, logins_16.latencies.len()),
        own_cpu_per_login: per(own_cpu, own_cpu_after, logins_16.latencies.len()),
        app_cpu_per_me: per(me_app_cpu, me_app_cpu_after, me_16.latencies.len()),
        own_cpu_per_me: per(me_own_cpu, me_own_cpu_after, me_16.latencies.len()),
        sessions: logins_16.latencies.len(),
        rss_before,
        rss_after,
        logins_16,
        logins_1,
        logins_200,
        me_16,
        me_1,
        me_200,
        burst,
        kvixi_delay,
    })
}

/// [`BURST`] browsers log in at once to a fresh app whose Kvixi (the load's own
/// emulator) takes `delay` over every call, after a warm-up at that speed: a burst
/// against a healthy Kvixi across the internet.
fn measure_burst(
    runtime: &tokio::runtime::Runtime,
    framework: &'static str,
    delay: Duration,
) -> Result<phase::Outcome, String> {
    let emulator = runtime
        .block_on(kvixi_mock::Emulator::builder().start("127.0.0.1:0"))
        .map_err(|e| format!("the emulator does not start: {e}"))?;
    for endpoint in [Endpoint::OAuth, Endpoint::Authorize, Endpoint::UserInfo] {
        emulator.inject_fault(endpoint, Fault::Delay(delay));
    }
    let app = App::start_with(
        framework,
        Sessions::Memory,
        Some(OwnKvixi {
            emulator: &emulator,
        }),
    )?;
    let label = format!("{framework} Kvixi {delay:?}");
    let run = |plan: Plan| run_phase(runtime, &label, &app.url, plan);
    run(Plan {
        work: Work::LoginLogout,
        browsers: 16,
        total: 160,
        deadline: Duration::from_secs(60),
    });
    let burst = run(Plan {
        work: Work::Login,
        browsers: BURST as usize,
        total: BURST,
        deadline: Duration::from_secs(120),
    });
    drop(app);
    runtime.block_on(emulator.shutdown());
    Ok(burst)
}
