//! Every scenario against the actix adapter's example app.

kvixi_e2e::scenarios!(kvixi_e2e::apps::actix);
kvixi_e2e::guard_scenarios!(kvixi_e2e::apps::actix);
kvixi_e2e::session_scenarios!(kvixi_e2e::apps::actix);
kvixi_e2e::provider_scenarios!(kvixi_e2e::apps::actix);
