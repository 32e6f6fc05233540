//! Every scenario against the Rocket adapter's example app.

kvixi_e2e::scenarios!(kvixi_e2e::apps::rocket);
