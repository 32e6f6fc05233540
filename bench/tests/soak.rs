//! The README's test command runs a one-minute soak (`load soak <framework> --seconds 60`)
//! on each framework, one after the other: three instances on a Sentinel group under
//! browsers, bots and hostile requests, while the schedule's faults happen; and the same
//! on one Postgres (`--store postgres`, a restart of the server in place of the failover). A lost
//! session, a breach, a 5xx outside a fault's window, an unexpected answer, a panic in an
//! instance's log: any fails the run (`load` exits non-zero), and so the test.

#![forbid(unsafe_code)]

use std::process::Command;
use std::sync::Mutex;

/// One soak at a time: each wants the machine's two cores to itself.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn soak(framework: &str, store: &str) {
    let _turn = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if store == "sentinel"
        && (!kvixi_e2e::service::available("/usr/bin/redis-server", "redis-server")
            || !kvixi_e2e::service::available("/usr/bin/redis-cli", "redis-tools"))
    {
        return;
    }
    if store == "postgres" && !kvixi_e2e::postgres::installed() {
        return;
    }
    let out = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("soak")
        .join(store);
    let run = Command::new(env!("CARGO_BIN_EXE_load"))
        .args([
            "soak",
            framework,
            "--seconds",
            "60",
            "--store",
            store,
            "--out",
        ])
        .arg(&out)
        // The flow's audit events (logins, logouts, revocations: no secrets) in the
        // instances' logs, which the run copies to `soak-<framework>-logs/`.
        .env(
            "KVIXI_SOAK_LOG",
            "warn,kvixi_core=info,kvixi_axum=info,kvixi_actix=info,kvixi_rocket=info",
        )
        .output()
        .expect("the load binary runs");
    let report = String::from_utf8_lossy(&run.stdout);
    let log = String::from_utf8_lossy(&run.stderr);
    println!("{log}\n{report}");
    assert!(
        run.status.success(),
        "the {framework} soak failed ({}); the instances' logs are in {}:\n{report}\n{log}",
        run.status,
        out.join(format!(
            "soak-{framework}{}-logs",
            if store == "postgres" { "-postgres" } else { "" }
        ))
        .display()
    );
    assert!(
        report.contains("| lost sessions | 0 |") && report.contains("| breaches | 0 |"),
        "the {framework} soak's report counts no lost session and no breach:\n{report}"
    );
}

#[test]
fn a_minute_of_faults_on_axum_loses_no_session() {
    soak("axum", "sentinel");
}

#[test]
fn a_minute_of_faults_on_actix_loses_no_session() {
    soak("actix", "sentinel");
}

#[test]
fn a_minute_of_faults_on_rocket_loses_no_session() {
    soak("rocket", "sentinel");
}

#[test]
fn a_minute_of_faults_on_postgres_with_axum_loses_no_session() {
    soak("axum", "postgres");
}

#[test]
fn a_minute_of_faults_on_postgres_with_actix_loses_no_session() {
    soak("actix", "postgres");
}

#[test]
fn a_minute_of_faults_on_postgres_with_rocket_loses_no_session() {
    soak("rocket", "postgres");
}
