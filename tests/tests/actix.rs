//! Every scenario against the actix adapter's example app.

kvixi_e2e::scenarios!(kvixi_e2e::apps::actix);
