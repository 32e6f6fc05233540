//! The Redis scenarios against every adapter: one module per framework, so a failure
//! names both.

mod axum {
    kvixi_e2e::redis_scenarios!(kvixi_e2e::apps::axum_redis);
}

mod actix {
    kvixi_e2e::redis_scenarios!(kvixi_e2e::apps::actix_redis);
}

mod rocket {
    kvixi_e2e::redis_scenarios!(kvixi_e2e::apps::rocket_redis);
}

kvixi_e2e::redis_session_scenarios!();
