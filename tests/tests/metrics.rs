//! The example's `/metrics`, scraped around one login, one failed login and one logout,
//! on every framework. The recorder is global to the process and the tests of a binary
//! run at once, so this binary holds one test, which runs the frameworks in turn: no
//! other login moves the counters meanwhile.

use kvixi_e2e::apps;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_move_by_one_per_login_failure_and_logout_on_every_framework() {
    for start in [apps::axum as kvixi_e2e::StartApp, apps::actix, apps::rocket] {
        kvixi_e2e::metrics_count_one_login_one_failure_and_one_logout(start).await;
    }
}
