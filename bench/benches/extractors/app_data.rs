//! Issue 14: the authenticated path reading the app's own data typed (`AppUser<T>`),
//! with a revocation on record, against the same floor.

use serde::{Deserialize, Serialize};

use crate::record::median_ns;
use crate::table::{AUTHENTICATED, FLOOR, KVIXI, PEER, id};

/// The adapter's `AppUser<BenchMember>` extractor, on a record that holds app data.
pub const KVIXI_APP: &str = "kvixi-app";

/// A typical app value: a local id and a few roles.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BenchMember {
    /// The app's own user id.
    pub local_id: u64,
    /// What the user may do.
    pub roles: Vec<String>,
}

/// What every bench flow's `on_login` returns.
pub fn typical() -> BenchMember {
    BenchMember {
        local_id: 1_000_042,
        roles: vec!["member".into(), "editor".into(), "billing-admin".into()],
    }
}

/// Prints the app-data rows: `AppUser<T>` and `KvixiUser` against the floor (and
/// axum-login), every flow holding one revocation stamp.
pub fn print() {
    println!();
    println!(
        "issue 14: authenticated with app data in the record and a revocation stamp on record"
    );
    println!(
        "{:<7} {:>11} {:>11} {:>11} {:>11} {:>12} {:>15} {:>16}",
        "server",
        "floor",
        "kvixi",
        "kvixi-app",
        "axum-login",
        "kvixi/floor",
        "kvixi-app/floor",
        "kvixi-app/a-login"
    );
    for framework in ["axum", "actix", "rocket"] {
        let floor = median_ns(&id(AUTHENTICATED, framework, FLOOR));
        let kvixi = median_ns(&id(AUTHENTICATED, framework, KVIXI));
        let app = median_ns(&id(AUTHENTICATED, framework, KVIXI_APP));
        let peer = median_ns(&id(AUTHENTICATED, framework, PEER));
        if app.is_none() {
            continue;
        }
        let micros = |ns: Option<f64>| ns.map_or("-".into(), |ns| format!("{:.2} µs", ns / 1e3));
        let ratio = |n: Option<f64>, d: Option<f64>| match (n, d) {
            (Some(n), Some(d)) if d > 0.0 => format!("{:.3}", n / d),
            _ => "-".to_owned(),
        };
        println!(
            "{:<7} {:>11} {:>11} {:>11} {:>11} {:>12} {:>15} {:>16}",
            framework,
            micros(floor),
            micros(kvixi),
            micros(app),
            micros(peer),
            ratio(kvixi, floor),
            ratio(app, floor),
            ratio(app, peer),
        );
    }
    println!("targets (issue 14): kvixi-app/floor <= 1.10; kvixi-app/axum-login < 1");
}
