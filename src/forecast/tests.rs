use super::*;
use crate::tax::{Fit, Observation};

fn feature(systems: &[&str], estimated: f64, actual: f64) -> Observation {
    Observation {
        systems: systems.iter().map(|s| s.to_string()).collect(),
        estimated: Some(estimated),
        actual: Some(actual),
    }
}

/// Two systems with no spread: `slow` takes 3x, `fast` 1x, each on twenty solo features.
fn two_systems() -> Forecaster {
    let mut features = Vec::new();
    for _ in 0..20 {
        features.push(feature(&["slow"], 1.0, 3.0));
        features.push(feature(&["fast"], 2.0, 2.0));
    }
    Fit::new(features).forecaster()
}

#[test]
fn the_grid_is_increasing_and_its_median_is_the_model_s() {
    let f = two_systems();
    let slow = f.item(&["slow"]).unwrap();
    assert!(slow.ratios.windows(2).all(|w| w[0] <= w[1]));
    assert!((slow.p50() - 3.0).abs() < 0.05, "{}", slow.p50());
    assert!(slow.p85() > slow.p50());
    let fast = f.item(&["fast"]).unwrap();
    assert!((fast.p50() - 1.0).abs() < 0.05, "{}", fast.p50());
    assert_eq!(slow.driving.as_ref().map(|d| d.0.as_str()), Some("slow"));
}

#[test]
fn the_model_goes_through_json_unchanged() {
    let f = two_systems();
    let back: Forecaster = serde_json::from_str(&serde_json::to_string(&f).unwrap()).unwrap();
    // serde_json reads a float back to within a unit in the last place.
    let (a, b) = (back.item(&["slow"]).unwrap(), f.item(&["slow"]).unwrap());
    assert!(a.ratios.iter().zip(&b.ratios).all(|(x, y)| (x - y).abs() <= 1e-12 * y.abs()));
}
