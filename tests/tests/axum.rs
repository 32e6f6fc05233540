//! Every scenario against the axum adapter's example app.

kvixi_e2e::scenarios!(kvixi_e2e::apps::axum);
