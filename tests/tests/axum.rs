//! Every scenario against the axum adapter's example app.

fn start(kvixi: kvixi_core::Kvixi, listener: std::net::TcpListener) {
    let listener = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
    let app = kvixi_examples::axum_app::router(kvixi);
    tokio::spawn(async move { axum::serve(listener, app).await });
}

kvixi_e2e::scenarios!(start);
