//! Runs a benchmark through criterion and keeps its per-request times for the table.
//!
//! Criterion calls an `iter_custom` routine during warm-up (1, 2, 4, … iterations) and
//! then exactly `sample_size` times for the samples, so the last `SAMPLE_SIZE` calls are
//! the samples criterion analyses; their median is criterion's "median" estimate.
//!
//! For instruction counts, `KVIXI_BENCH_ONLY=<id>:<iterations>` skips criterion and runs
//! that one benchmark's routine once with that many requests (after the same setup), so
//! `valgrind --tool=callgrind` on two iteration counts gives the instructions of one
//! request by difference.

use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use criterion::Criterion;

use crate::SAMPLE_SIZE;

/// Nanoseconds per iteration of every routine call, by benchmark id.
static TIMES: Mutex<BTreeMap<String, Vec<f64>>> = Mutex::new(BTreeMap::new());

/// Benchmarks `routine` (which runs `iters` requests and returns how long they took)
/// under `id` = `path/framework/variant`.
pub fn bench(criterion: &mut Criterion, id: &str, mut routine: impl FnMut(u64) -> Duration) {
    if let Some((only, iters)) = only() {
        if only == id {
            let elapsed = routine(iters);
            println!("{id}: {iters} requests in {elapsed:?}");
        }
        return;
    }
    criterion.bench_function(id, |bencher| {
        bencher.iter_custom(|iters| {
            let elapsed = routine(iters);
            let per_iteration = elapsed.as_nanos() as f64 / iters.max(1) as f64;
            TIMES
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .entry(id.to_owned())
                .or_default()
                .push(per_iteration);
            elapsed
        });
    });
}

/// The median time per request of `id`'s samples, in nanoseconds; `None` when the
/// benchmark did not run (filtered out on the command line).
pub fn median_ns(id: &str) -> Option<f64> {
    let times = TIMES.lock().unwrap_or_else(PoisonError::into_inner);
    let all = times.get(id)?;
    let mut samples = all[all.len().saturating_sub(SAMPLE_SIZE)..].to_vec();
    samples.sort_by(f64::total_cmp);
    let middle = samples.len() / 2;
    match samples.len() {
        0 => None,
        n if n % 2 == 1 => Some(samples[middle]),
        _ => Some((samples[middle - 1] + samples[middle]) / 2.0),
    }
}

/// `KVIXI_BENCH_ONLY=<id>:<iterations>`, when set.
pub fn only() -> Option<(String, u64)> {
    let value = std::env::var("KVIXI_BENCH_ONLY").ok()?;
    let (id, iters) = value.rsplit_once(':')?;
    Some((id.to_owned(), iters.parse().ok()?))
}
