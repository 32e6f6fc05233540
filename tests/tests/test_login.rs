//! An app's own tests log a user in with `testing::log_in_as`: no emulator, no port, no
//! network. On each framework's example app, that user reaches a handler that takes the
//! user, then logs out through the real logout route.

use kvixi_core::{Config, Kvixi, KvixiUser};

/// A flow whose provider is never reached: nothing here may call Kvixi.
fn kvixi() -> Kvixi {
    let config = Config::builder(
        "test-login-app",
        "test-login-secret",
        "http://localhost:3000/auth/kvixi/callback",
    )
    .base_url("http://127.0.0.1:9")
    .build()
    .expect("valid config");
    Kvixi::new(config).expect("flow builds")
}

fn erin() -> KvixiUser {
    KvixiUser {
        first_name: Some("Erin".into()),
        ..KvixiUser::test("erin")
    }
}

#[tokio::test]
async fn axum_app_test_login_reaches_the_user_and_logs_out() {
    use axum::body::Body;
    use axum::http::{Request, StatusCode, header};
    use tower::ServiceExt;

    let kvixi = kvixi();
    let app = kvixi_examples::axum_app::router(kvixi.clone());
    let cookie = kvixi_axum::testing::log_in_as(&app, &kvixi, erin())
        .await
        .expect("logged in");
    let send = |method: &str, path: &str| {
        Request::builder()
            .method(method)
            .uri(path)
            .header(header::ACCEPT, "application/json")
            .header(header::COOKIE, cookie.clone())
            .body(Body::empty())
            .expect("request")
    };
    let me = app
        .clone()
        .oneshot(send("GET", "/me"))
        .await
        .expect("answer");
    assert_eq!(me.status(), StatusCode::OK);
    let body = axum::body::to_bytes(me.into_body(), 64 * 1024)
        .await
        .expect("body");
    let user: serde_json::Value = serde_json::from_slice(&body).expect("JSON");
    assert_eq!(user["id"], "test-erin");
    assert_eq!(user["first_name"], "Erin");

    let logout = app
        .clone()
        .oneshot(send("POST", "/auth/kvixi/logout"))
        .await
        .expect("answer");
    assert_eq!(logout.status(), StatusCode::SEE_OTHER);
    let after = app.oneshot(send("GET", "/me")).await.expect("answer");
    assert_eq!(after.status(), StatusCode::UNAUTHORIZED);
}

#[actix_web::test]
async fn actix_app_test_login_reaches_the_user_and_logs_out() {
    use actix_web::http::{StatusCode, header};
    use actix_web::test;

    let kvixi = kvixi();
    let app = test::init_service(kvixi_examples::actix_app::app(kvixi.clone())).await;
    let cookie = kvixi_actix::testing::log_in_as(&app, &kvixi, erin())
        .await
        .expect("logged in");
    let me = test::TestRequest::get()
        .uri("/me")
        .insert_header((header::ACCEPT, "application/json"))
        .cookie(cookie.clone())
        .to_request();
    let user: serde_json::Value = test::call_and_read_body_json(&app, me).await;
    assert_eq!(user["id"], "test-erin");
    assert_eq!(user["first_name"], "Erin");

    let logout = test::TestRequest::post()
        .uri("/auth/kvixi/logout")
        .cookie(cookie.clone())
        .to_request();
    let logout = test::call_service(&app, logout).await;
    assert_eq!(logout.status(), StatusCode::SEE_OTHER);
    let after = test::TestRequest::get()
        .uri("/me")
        .insert_header((header::ACCEPT, "application/json"))
        .cookie(cookie)
        .to_request();
    assert_eq!(
        test::call_service(&app, after).await.status(),
        StatusCode::UNAUTHORIZED
    );
}

#[rocket::async_test]
async fn rocket_app_test_login_reaches_the_user_and_logs_out() {
    use rocket::http::{Accept, Status};
    use rocket::local::asynchronous::Client;

    let figment = rocket::Config::figment().merge(("log_level", "off"));
    let client = Client::tracked(kvixi_examples::rocket_app::rocket(kvixi(), figment))
        .await
        .expect("the rocket ignites");
    kvixi_rocket::testing::log_in_as(&client, erin())
        .await
        .expect("logged in");
    let me = client.get("/me").header(Accept::JSON).dispatch().await;
    assert_eq!(me.status(), Status::Ok);
    let user: serde_json::Value = me.into_json().await.expect("JSON");
    assert_eq!(user["id"], "test-erin");
    assert_eq!(user["first_name"], "Erin");

    let logout = client.post("/auth/kvixi/logout").dispatch().await;
    assert_eq!(logout.status(), Status::SeeOther);
    let after = client.get("/me").header(Accept::JSON).dispatch().await;
    assert_eq!(after.status(), Status::Unauthorized);
}
