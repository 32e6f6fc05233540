//! The callback's and the login's raw query strings: no panic, and only plausible keys
//! or safe paths come out.
#![no_main]

use kvixi_core::flow::{self, PendingLogin, UnixTime};
use kvixi_core::{Config, ReturnTo};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let query = String::from_utf8_lossy(data);
    let config = Config::builder("app", "secret", "https://app.example/auth/kvixi/callback")
        .build()
        .expect("valid config");
    let pending = PendingLogin {
        id: "id".into(),
        created_at: UnixTime(1_000),
        return_to: ReturnTo::root(),
    };
    if let Ok(accepted) = flow::accept_callback(&config, Some(pending), Some(&query), UnixTime(1_001)) {
        let key = accepted.auth_key.secret();
        assert!(!key.is_empty() && key.len() <= flow::MAX_AUTH_KEY_LEN);
        assert!(key.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.~".contains(&b)));
    }
    let start = flow::start_login(&config, Some(&query), "id".into(), UnixTime(1));
    let path = start.pending.return_to.as_str();
    assert!(path.starts_with('/') && !path.starts_with("//"), "{path:?}");
    assert_eq!(start.redirect.host_str(), Some("kvixi.com"));
});
