//! `cargo bench -p kvixi-bench`: the cost of an authenticated request through each
//! adapter's `KvixiUser` extractor, side by side in one run with
//!
//! - the floor: the same framework, the same session layer and store, and a handler that
//!   reads the auth record the flow stored by hand and answers the user id;
//! - the peer (axum only): axum-login's `login_required!` + `AuthSession` on the same
//!   tower-sessions `MemoryStore`;
//! - the route-group guard (issue 13): each adapter's one-line guard in front of a handler
//!   that takes no extractor and answers the user the guard passed on;
//!
//! and the anonymous paths (401 for a JSON client, 303 to login for a browser); and the
//! authenticated path with sessions on Redis (issue 22: the one-line setup on
//! `KVIXI_REDIS_URL`, against the floor on the same Redis store, on a `redis-server` the
//! run starts and stops itself; `cargo bench -p kvixi-bench -- authenticated-redis` runs
//! only those rows), with the Redis keys each logged-in user leaves; and the same on the
//! app's own database (issue 28: `KVIXI_DATABASE_URL` on a SQLite file and on a
//! throwaway Postgres server, `-- authenticated-sqlite`, `-- authenticated-postgres`),
//! against a floor that reads the same `kvixi_sessions` row with tower-sessions-sqlx-store.
//! Each
//! framework is driven in process the idiomatic way (axum: `oneshot` on the `Router`,
//! finalized as `axum::serve` does; actix: `init_service` + `call_service`; Rocket: the
//! local asynchronous `Client`), one
//! request after another inside one `block_on` per sample, so the figures are the
//! framework, the session and the extractor. After criterion's own report, one table of
//! medians and ratios, and the authenticated ratios measured again interleaved (each
//! variant serving a short batch right after the others, round after round), which a
//! machine whose speed drifts between criterion's benchmarks does not skew.

mod actix;
mod app_data;
mod axum;
mod floor;
mod provider;
mod record;
mod rocket;
mod shared;
mod table;

use std::time::Duration;

use criterion::Criterion;

/// Samples per benchmark; the table reads the last this many routine calls of each.
const SAMPLE_SIZE: usize = 40;

fn main() {
    let mut criterion = Criterion::default()
        .sample_size(SAMPLE_SIZE)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    // KVIXI_BENCH_RECORDER=prometheus: every row with the examples' Prometheus recorder
    // installed as the metrics facade's global recorder (issue 19: the extractors cost
    // the same with metrics recorded); without it, the facade's no-op.
    if std::env::var("KVIXI_BENCH_RECORDER").is_ok_and(|r| r == "prometheus") {
        let _ = kvixi_examples::setup::metrics();
        println!("metrics: the Prometheus recorder is installed");
    }
    let provider = provider::Provider::start();
    shared::install_query_counter();
    let backends = shared::Backend::all();
    shared::add_users(&provider);

    // With KVIXI_BENCH_ONLY, only the framework of that benchmark is set up.
    let wanted = |framework: &str| {
        record::only().is_none_or(|(id, _)| id.split('/').nth(1) == Some(framework))
    };
    let mut auth_record_bytes = None;
    if wanted("axum") {
        auth_record_bytes = Some(axum::benches(&mut criterion, &provider));
    }
    if wanted("actix") {
        actix::benches(&mut criterion, &provider);
    }
    if wanted("rocket") {
        rocket::benches(&mut criterion, &provider);
    }
    for backend in &backends {
        if wanted("axum") {
            axum::shared_benches(&mut criterion, &provider, backend);
        }
        if wanted("actix") {
            actix::shared_benches(&mut criterion, &provider, backend);
        }
        if wanted("rocket") {
            rocket::shared_benches(&mut criterion, &provider, backend);
        }
    }

    if record::only().is_none() {
        criterion.final_summary();
        table::print(auth_record_bytes);
        app_data::print();
    }
}
