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

/// The interleaved comparison's ratio to the floor, by benchmark id.
static INTERLEAVED: Mutex<BTreeMap<String, f64>> = Mutex::new(BTreeMap::new());

/// The interleaved comparison's batch times, round by round, by benchmark id: for ratios
/// between two variants other than the floor ([`interleaved_between`]).
static ROUND_TIMES: Mutex<BTreeMap<String, Vec<f64>>> = Mutex::new(BTreeMap::new());

/// Rounds of the interleaved comparison (odd: the median is one of them).
pub const ROUNDS: usize = 41;

/// About how long one variant serves in one round.
const BATCH_TIME: Duration = Duration::from_millis(20);

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

/// A variant of the interleaved comparison: its benchmark id and its routine.
pub type Variant<'a> = (String, &'a mut dyn FnMut(u64) -> Duration);

/// The ratio each variant's time bears to the floor's, measured interleaved: in each of
/// [`ROUNDS`] rounds every variant serves one batch right after the others (the order
/// turning round by round), and the ratio of a round compares batches a few tens of
/// milliseconds apart; the median over rounds is recorded. Criterion measures one
/// benchmark for seconds after another, so a machine whose speed drifts in between
/// (a shared, noisy one) moves its ratios by a few percent; here the drift cancels.
///
/// `variants[0]` is the floor. Runs only for variants whose criterion benchmark ran
/// (so a command-line filter applies here too), and never under `KVIXI_BENCH_ONLY`.
pub fn interleave(variants: &mut [Variant<'_>]) {
    interleave_rounds(variants, ROUNDS);
}

/// [`interleave`] over `rounds` rounds (odd): more for the Redis rows, whose requests
/// wait on another process and vary more.
pub fn interleave_rounds(variants: &mut [Variant<'_>], rounds: usize) {
    if only().is_some() {
        return;
    }
    let mut variants: Vec<&mut Variant<'_>> = variants
        .iter_mut()
        .filter(|(id, _)| median_ns(id).is_some())
        .collect();
    if variants.len() < 2 {
        return;
    }
    let calibration = 256;
    let per_request = (variants[0].1)(calibration).as_secs_f64() / calibration as f64;
    let batch = ((BATCH_TIME.as_secs_f64() / per_request.max(1e-9)) as u64).max(16);
    let n = variants.len();
    let mut ratios = vec![Vec::with_capacity(rounds); n];
    let mut all_times = vec![Vec::with_capacity(rounds); n];
    for round in 0..=rounds {
        let mut times = vec![0.0; n];
        for k in 0..n {
            let i = (round + k) % n;
            times[i] = (variants[i].1)(batch).as_secs_f64();
        }
        // Round 0 warms every variant up and is not counted.
        if round > 0 {
            for i in 1..n {
                ratios[i].push(times[i] / times[0]);
            }
            for i in 0..n {
                all_times[i].push(times[i]);
            }
        }
    }
    let mut round_times = ROUND_TIMES.lock().unwrap_or_else(PoisonError::into_inner);
    for (i, variant) in variants.iter().enumerate() {
        round_times.insert(variant.0.clone(), all_times[i].clone());
    }
    drop(round_times);
    let mut recorded = INTERLEAVED.lock().unwrap_or_else(PoisonError::into_inner);
    for (i, variant) in variants.iter().enumerate().skip(1) {
        let mut round_ratios = std::mem::take(&mut ratios[i]);
        round_ratios.sort_by(f64::total_cmp);
        recorded.insert(variant.0.clone(), round_ratios[round_ratios.len() / 2]);
    }
}

/// The interleaved ratio of `id` to its floor, when it was measured.
pub fn interleaved_ratio(id: &str) -> Option<f64> {
    INTERLEAVED
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get(id)
        .copied()
}

/// The median over the interleaved rounds of `numerator`'s batch time to
/// `denominator`'s (two variants of one comparison), when both were measured.
pub fn interleaved_between(numerator: &str, denominator: &str) -> Option<f64> {
    let times = ROUND_TIMES.lock().unwrap_or_else(PoisonError::into_inner);
    let (top, bottom) = (times.get(numerator)?, times.get(denominator)?);
    let mut ratios: Vec<f64> = top.iter().zip(bottom).map(|(t, b)| t / b).collect();
    if ratios.is_empty() {
        return None;
    }
    ratios.sort_by(f64::total_cmp);
    Some(ratios[ratios.len() / 2])
}

/// `KVIXI_BENCH_ONLY=<id>:<iterations>`, when set.
pub fn only() -> Option<(String, u64)> {
    let value = std::env::var("KVIXI_BENCH_ONLY").ok()?;
    let (id, iters) = value.rsplit_once(':')?;
    Some((id.to_owned(), iters.parse().ok()?))
}
