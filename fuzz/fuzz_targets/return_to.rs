//! Every output of the `return_to` sanitizer is a path on this site.
#![no_main]

use kvixi_core::ReturnTo;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let raw = String::from_utf8_lossy(data);
    let default = ReturnTo::root();
    let out = ReturnTo::sanitize(Some(&raw), &default);
    let path = out.as_str();
    assert!(path.starts_with('/'), "{path:?}");
    assert!(!path.starts_with("//") && !path.starts_with("/\\"), "{path:?}");
    assert!(!path.contains('\\'), "{path:?}");
    assert!(!path.chars().any(char::is_control), "{path:?}");
    assert!(path.len() <= kvixi_core::MAX_RETURN_TO_LEN, "{path:?}");
    // A browser resolving it against our origin stays on our origin.
    let base = url::Url::parse("https://app.example/some/page").expect("base");
    let resolved = base.join(path).expect("a path always resolves");
    assert_eq!(resolved.origin(), base.origin(), "{path:?}");
    assert!(resolved.username().is_empty() && resolved.password().is_none());
    // Sanitizing is idempotent.
    assert_eq!(ReturnTo::sanitize(Some(path), &default).as_str(), path);
});
