//! The one table the run ends with: medians per request and the ratios that matter.

use crate::record::median_ns;

/// A logged-in session reading the user.
pub const AUTHENTICATED: &str = "authenticated";
/// A logged-in session reading the user, with sessions on Redis (issue 22).
pub const AUTHENTICATED_REDIS: &str = "authenticated-redis";
/// The same with sessions in a SQLite file (issue 28).
pub const AUTHENTICATED_SQLITE: &str = "authenticated-sqlite";
/// The same with sessions on a Postgres server (issue 28).
pub const AUTHENTICATED_POSTGRES: &str = "authenticated-postgres";
/// No session, a client that prefers JSON: 401.
pub const ANONYMOUS_JSON: &str = "anonymous-json";
/// No session, a browser navigation: 303 to the login route.
pub const ANONYMOUS_BROWSER: &str = "anonymous-browser";

/// The hand-written handler on the same session layer and store.
pub const FLOOR: &str = "floor";
/// The adapter's `KvixiUser` extractor.
pub const KVIXI: &str = "kvixi";
/// axum-login's `login_required!` + `AuthSession`, on the same store.
pub const PEER: &str = "axum-login";
/// The route-group guard (issue 13) in front of a handler that takes no extractor and
/// answers the user the guard passed on.
pub const GUARDED: &str = "guarded";

/// A hand-written group guard in the framework's own middleware (axum's and actix's
/// `from_fn`, a Rocket fairing with a request-local cache), doing the floor's work and
/// passing the user on as the kvixi guard does, in front of the same handler: what the
/// framework's guard mechanism costs by itself, kvixi or not.
pub const HAND_GUARD: &str = "hand-guard";

const FRAMEWORKS: [&str; 3] = ["axum", "actix", "rocket"];

/// The benchmark id criterion shows.
pub fn id(path: &str, framework: &str, variant: &str) -> String {
    format!("{path}/{framework}/{variant}")
}

fn micros(ns: Option<f64>) -> String {
    ns.map_or_else(|| "-".to_owned(), |ns| format!("{:.2} µs", ns / 1000.0))
}

fn ratio(numerator: Option<f64>, denominator: Option<f64>) -> String {
    match (numerator, denominator) {
        (Some(n), Some(d)) if d > 0.0 => format!("{:.3}", n / d),
        _ => "-".to_owned(),
    }
}

/// Prints the table of every benchmark that ran.
pub fn print(auth_record_bytes: Option<usize>) {
    println!();
    println!("kvixi-rs extractors: median time per request over criterion's samples");
    println!(
        "{:<19} {:<7} {:>11} {:>11} {:>11} {:>12} {:>13}",
        "path", "server", "floor", "kvixi", "axum-login", "kvixi/floor", "kvixi/a-login"
    );
    for path in [
        AUTHENTICATED,
        AUTHENTICATED_REDIS,
        AUTHENTICATED_SQLITE,
        AUTHENTICATED_POSTGRES,
        ANONYMOUS_JSON,
        ANONYMOUS_BROWSER,
    ] {
        for framework in FRAMEWORKS {
            let floor = median_ns(&id(path, framework, FLOOR));
            let kvixi = median_ns(&id(path, framework, KVIXI));
            let peer = median_ns(&id(path, framework, PEER));
            if floor.is_none() && kvixi.is_none() && peer.is_none() {
                continue;
            }
            println!(
                "{:<19} {:<7} {:>11} {:>11} {:>11} {:>12} {:>13}",
                path,
                framework,
                micros(floor),
                micros(kvixi),
                micros(peer),
                ratio(kvixi, floor),
                ratio(kvixi, peer),
            );
        }
    }
    println!();
    println!("route-group guard, authenticated: handler without extractor behind the guard");
    println!(
        "{:<7} {:>11} {:>11} {:>14}",
        "server", "floor", "guarded", "guarded/floor"
    );
    for framework in FRAMEWORKS {
        let floor = median_ns(&id(AUTHENTICATED, framework, FLOOR));
        let guarded = median_ns(&id(AUTHENTICATED, framework, GUARDED));
        if guarded.is_none() {
            continue;
        }
        println!(
            "{:<7} {:>11} {:>11} {:>14}",
            framework,
            micros(floor),
            micros(guarded),
            ratio(guarded, floor),
        );
    }
    println!();
    println!(
        "authenticated, interleaved: time / the floor's, median of {} rounds in which each variant serves one batch (~20 ms) right after the others",
        crate::record::ROUNDS
    );
    println!(
        "{:<7} {:>12} {:>14} {:>16} {:>17}",
        "server", "kvixi/floor", "guarded/floor", "kvixi-app/floor", "axum-login/floor"
    );
    for framework in FRAMEWORKS {
        let of = |variant: &str| {
            crate::record::interleaved_ratio(&id(AUTHENTICATED, framework, variant))
                .map_or_else(|| "-".to_owned(), |ratio| format!("{ratio:.3}"))
        };
        if crate::record::interleaved_ratio(&id(AUTHENTICATED, framework, KVIXI)).is_none() {
            continue;
        }
        println!(
            "{:<7} {:>12} {:>14} {:>16} {:>17}",
            framework,
            of(KVIXI),
            of(GUARDED),
            of(crate::app_data::KVIXI_APP),
            of(PEER),
        );
    }
    println!();
    println!(
        "group guards, interleaved: the framework's own guard mechanism (a hand-written guard doing the floor's work) against the floor, and kvixi's guard against it (median of the rounds' ratios)"
    );
    println!(
        "{:<7} {:>18} {:>22}",
        "server", "hand-guard/floor", "guarded/hand-guard"
    );
    for framework in FRAMEWORKS {
        let hand = id(AUTHENTICATED, framework, HAND_GUARD);
        let Some(hand_ratio) = crate::record::interleaved_ratio(&hand) else {
            continue;
        };
        let kvixi =
            crate::record::interleaved_between(&id(AUTHENTICATED, framework, GUARDED), &hand)
                .map_or_else(|| "-".to_owned(), |ratio| format!("{ratio:.3}"));
        println!(
            "{:<7} {:>18} {:>22}",
            framework,
            format!("{hand_ratio:.3}"),
            kvixi
        );
    }
    print_shared();
    if let Some(bytes) = auth_record_bytes {
        println!(
            "auth record of alice (full-profile fixture) as stored in the session: {bytes} bytes of JSON"
        );
    }
    println!(
        "targets: authenticated kvixi/floor and guarded/floor <= 1.05 on every framework (criterion medians and interleaved), on Redis, SQLite and Postgres too; kvixi/axum-login < 1; auth record <= 1024 bytes; Redis keys per logged-in user <= 3 (the session, the spent login, the devices index)"
    );
}

/// The shared-store rows' interleaved ratios, and the keys each logged-in user left in
/// Redis.
fn print_shared() {
    for (path, what) in [
        (
            AUTHENTICATED_REDIS,
            "on Redis (the one-line setup on KVIXI_REDIS_URL)",
        ),
        (
            AUTHENTICATED_SQLITE,
            "on SQLite (the one-line setup on KVIXI_DATABASE_URL=sqlite://…)",
        ),
        (
            AUTHENTICATED_POSTGRES,
            "on Postgres (the one-line setup on KVIXI_DATABASE_URL=postgres://…)",
        ),
    ] {
        let redis = path == AUTHENTICATED_REDIS;
        let measured: Vec<&str> = FRAMEWORKS
            .into_iter()
            .filter(|framework| median_ns(&id(path, framework, KVIXI)).is_some())
            .collect();
        if measured.is_empty() {
            continue;
        }
        println!();
        println!(
            "authenticated {what}: criterion medians, the interleaved ratio over {} rounds{}",
            crate::shared::ROUNDS,
            if redis {
                format!(
                    ", and the keys {} users logged in through the flow left in Redis",
                    crate::shared::USERS
                )
            } else {
                String::new()
            }
        );
        println!(
            "{:<7} {:>11} {:>11} {:>12} {:>20} {:>20} {:>16}",
            "server",
            "floor",
            "kvixi",
            "kvixi/floor",
            "interleaved k/floor",
            "Redis keys per user",
            "SQL per request"
        );
        for framework in measured {
            let floor = median_ns(&id(path, framework, FLOOR));
            let kvixi = median_ns(&id(path, framework, KVIXI));
            let interleaved = crate::record::interleaved_ratio(&id(path, framework, KVIXI))
                .map_or_else(|| "-".to_owned(), |ratio| format!("{ratio:.3}"));
            let keys = crate::shared::keys_per_user_of(framework)
                .filter(|_| redis)
                .map_or_else(|| "-".to_owned(), |keys| format!("{keys:.2}"));
            let queries = |variant: &str| {
                crate::shared::queries_per_request(&id(path, framework, variant))
                    .map_or_else(|| "-".to_owned(), |q| format!("{q:.3}"))
            };
            let queries = if redis {
                "-".to_owned()
            } else {
                format!("{} ({} floor)", queries(KVIXI), queries(FLOOR))
            };
            println!(
                "{:<7} {:>11} {:>11} {:>12} {:>20} {:>20} {:>16}",
                framework,
                micros(floor),
                micros(kvixi),
                ratio(kvixi, floor),
                interleaved,
                keys,
                queries
            );
        }
    }
}
