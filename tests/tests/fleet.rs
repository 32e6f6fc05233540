//! A fleet of example processes on one Redis (standalone, Sentinel, Cluster), for every
//! framework: one test per (scenario, framework), so a failure names both.
//!
//! `cargo test -p kvixi-e2e --test fleet --all-features -- --nocapture`

/// One `#[tokio::test]` per scenario of [`kvixi_e2e::fleet`] for the framework `$framework`.
macro_rules! fleet_scenarios {
    ($framework:ident; $($scenario:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $scenario() {
                let example = kvixi_e2e::fleet::Example::new(
                    env!("CARGO_BIN_EXE_kvixi-instance"),
                    kvixi_e2e::fleet::Framework::$framework,
                );
                kvixi_e2e::fleet::$scenario(example).await
            }
        )*
    };
}

macro_rules! all_fleet_scenarios {
    ($framework:ident) => {
        fleet_scenarios!($framework;
            three_instances_one_redis,
            rolling_key_rotation,
            sentinel_failover,
            cluster,
            tls_redis,
            three_instances_one_postgres,
            rolling_key_rotation_on_postgres,
            sqlite_sessions_survive_a_kill_and_restart,
            sqlite_serves_32_browsers_at_once,
        );
    };
}

mod axum {
    all_fleet_scenarios!(Axum);
}

mod actix {
    all_fleet_scenarios!(Actix);
}

mod rocket {
    all_fleet_scenarios!(Rocket);
}
