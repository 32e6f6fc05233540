//! Whatever Kvixi answers, reading the user never panics, and an accepted user has an
//! id and survives the session's round trip.
#![no_main]

use kvixi_core::KvixiUser;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(body) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    if let Ok(user) = KvixiUser::from_user_info_response(&body) {
        assert!(!user.id.trim().is_empty());
        let stored = serde_json::to_string(&user).expect("a user serializes");
        let back: KvixiUser = serde_json::from_str(&stored).expect("and reads back");
        assert_eq!(back, user);
    }
});
