//! The scenario lists a session store decides, with every app keeping its sessions,
//! revocations and spent logins in a database of its own on a throwaway Postgres server
//! that this test process starts (`KVIXI_DATABASE_URL`).

kvixi_e2e::store_scenarios!(kvixi_e2e::SuiteStore::Postgres);

/// Postgres stops at once and starts again: 503 within the store timeout, nobody logged
/// out, recovery on its own.
mod outage {
    mod axum {
        kvixi_e2e::scenarios!(@each kvixi_e2e::apps::axum;
            database_outage_answers_503_and_logs_no_one_out);
    }
    mod actix {
        kvixi_e2e::scenarios!(@each kvixi_e2e::apps::actix;
            database_outage_answers_503_and_logs_no_one_out);
    }
    mod rocket {
        kvixi_e2e::scenarios!(@each kvixi_e2e::apps::rocket;
            database_outage_answers_503_and_logs_no_one_out);
    }
}
