//! `cargo run -p kvixi-bench --release --bin load [-- axum actix rocket]`: simulated
//! browsers log in to each example app over real loopback HTTP.
//!
//! For each framework, a fresh child process serves the example app with its embedded
//! Kvixi emulator (this binary in `serve` mode, built from `kvixi_examples` as the
//! example binaries are). Browsers are reqwest clients with a cookie jar each, following
//! redirects by hand: login -> emulator `/api/oauth?...&mock_user=alice` -> callback ->
//! `/me`. Every phase is bounded in requests and in time, every request times out, and
//! nothing is sent anywhere but 127.0.0.1. The run prints one table:
//!
//! - full logins per second and p50/p99 latency with 16 browsers at once (10 000 logins,
//!   which leave 10 000 logged-in sessions in the app's memory store), and with 1;
//! - failed logins with 200 browsers at once;
//! - the same for `GET /me` alone;
//! - the app's resident memory (`VmRSS`) before and after those 10 000 sessions, and its
//!   CPU time per login.

mod browser;
mod child;
mod phase;
mod report;
mod serve;

use std::process::ExitCode;
use std::time::Duration;

use kvixi_mock::fixture::{ALICE, ALICE_USER_ID};

use crate::child::{App, cpu_time_of};
use crate::phase::{Plan, Work};
use crate::report::Measured;

/// Logged-in sessions the app holds when its memory is read.
pub const SESSIONS: u64 = 10_000;

const FRAMEWORKS: [&str; 3] = ["axum", "actix", "rocket"];

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("serve") {
        return serve::serve(args.get(1).map_or("", String::as_str));
    }
    let mut frameworks: Vec<&'static str> = Vec::new();
    for arg in &args {
        match FRAMEWORKS.iter().find(|known| *known == arg) {
            Some(known) => frameworks.push(known),
            None => {
                eprintln!("error: unknown framework {arg:?}; pick among axum, actix, rocket");
                return ExitCode::FAILURE;
            }
        }
    }
    if frameworks.is_empty() {
        frameworks = FRAMEWORKS.to_vec();
    }
    // reqwest is built without a default TLS provider; loopback http needs none, but
    // the client builder wants one installed.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: no runtime: {error}");
            return ExitCode::FAILURE;
        }
    };

    let mut results = Vec::new();
    for framework in frameworks {
        eprintln!("load: {framework} ...");
        match measure(&runtime, framework) {
            Ok(measured) => results.push(measured),
            Err(error) => {
                eprintln!("error: {framework}: {error}");
                return ExitCode::FAILURE;
            }
        }
    }
    report::print(&results);
    ExitCode::SUCCESS
}

/// Every phase against a fresh process of `framework`'s example.
fn measure(runtime: &tokio::runtime::Runtime, framework: &'static str) -> Result<Measured, String> {
    let app = App::start(framework)?;
    let url = app.url.clone();
    let run = |plan: Plan| {
        let outcome = runtime.block_on(phase::run(plan, &url, ALICE, ALICE_USER_ID));
        eprintln!(
            "load: {framework} {:?} x{}: {} ok, {} failed, {} not started in {:.1?}",
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
    };
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
    })
}
