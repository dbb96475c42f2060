use super::*;
use crate::tax::{Fit, Observation};

/// One system taking `ratio` x with a log-normal spread `sigma`, from `n` solo features.
fn model(ratio: f64, sigma: f64, n: usize, seed: u64) -> Forecaster {
    let mut rng = Rng(seed);
    let features: Vec<Observation> = (0..n)
        .map(|_| Observation {
            systems: vec!["x".into()],
            estimated: Some(1.0),
            actual: Some(ratio * (sigma * rng.normal()).exp()),
        })
        .collect();
    Fit::new(features).forecaster()
}

#[test]
fn one_item_on_one_slot_finishes_at_its_own_quantiles() {
    let f = model(2.0, 0.4, 400, 1);
    let item = f.item(&["x"]).unwrap();
    let jobs = [Job { estimated_weeks: 3.0, not_before: 0.0, forecast: &item }];
    let o = simulate(&jobs, 1, 10_000, 42);
    let (p50, p85) = (21.0 * item.p50(), 21.0 * item.p85());
    assert!((o.finish[0].p50 - p50).abs() < 1e-3 * p50, "{} vs {p50}", o.finish[0].p50);
    assert!((o.finish[0].p85 - p85).abs() < 1e-3 * p85, "{} vs {p85}", o.finish[0].p85);
    assert_eq!(o.done, o.finish[0]);
}

#[test]
fn the_same_seed_gives_the_same_outcome_and_another_seed_another() {
    let f = model(1.5, 0.5, 200, 2);
    let items: Vec<ItemForecast> = (0..30).map(|_| f.item(&["x"]).unwrap()).collect();
    let jobs: Vec<Job> = items
        .iter()
        .enumerate()
        .map(|(i, forecast)| Job { estimated_weeks: 1.0 + (i % 4) as f64, not_before: 0.0, forecast })
        .collect();
    let a = simulate(&jobs, 3, 2000, 7);
    assert_eq!(a, simulate(&jobs, 3, 2000, 7));
    assert_ne!(a, simulate(&jobs, 3, 2000, 8));
}

#[test]
fn slots_run_items_side_by_side_and_a_planned_start_waits() {
    let f = model(1.0, 0.0, 50, 3);
    let item = f.item(&["x"]).unwrap();
    let jobs: Vec<Job> = (0..4).map(|_| Job { estimated_weeks: 1.0, not_before: 0.0, forecast: &item }).collect();
    let one = simulate(&jobs, 1, 1000, 1);
    let two = simulate(&jobs, 2, 1000, 1);
    // No spread in the history: each item takes its estimate, give or take the model's own
    // uncertainty, so four one-week items take four weeks on one slot and two on two.
    assert!((one.done.p50 / 28.0 - 1.0).abs() < 0.05, "{:?}", one.done);
    assert!((two.done.p50 / 14.0 - 1.0).abs() < 0.05, "{:?}", two.done);
    let late = [Job { estimated_weeks: 1.0, not_before: 30.0, forecast: &item }];
    assert!(simulate(&late, 1, 1000, 1).finish[0].p50 > 36.0);
}

#[test]
fn parallelism_is_the_mean_number_open_over_their_union() {
    // Two at once for ten days, then one for ten days, then a gap: (20 + 10) / 20 = 1.5 -> 2.
    assert_eq!(parallelism(&mut [(0, 20), (0, 10), (100, 100)]), 2);
    assert_eq!(parallelism(&mut [(0, 10), (20, 30)]), 1);
    assert_eq!(parallelism(&mut [(0, 10), (0, 10), (0, 10)]), 3);
    assert_eq!(parallelism(&mut []), 1);
}
