//! The attributed velocity tax (the `system_tax` view, `estimate`): how much slower a feature
//! is when it touches a system, estimated jointly from every shipped feature of the window so
//! that a system is not blamed for the systems it travels with.
//!
//! The model: for a feature i with estimate e_i and actual a_i,
//!
//!   ln(a_i / e_i) = c + Σ_s β_s · touches_is + ε_i
//!
//! fitted by ridge regression with β shrunk towards 0 (c is not shrunk) and the ridge weight
//! chosen from the data (empirical Bayes, MacKay's fixed point: a prior β_s ~ N(0, τ²), noise
//! ε ~ N(0, σ²), λ = σ²/τ²). A system with many features is barely shrunk; one with a handful
//! is pulled towards the common level exp(c) and its interval is wide. The tax is the expected
//! ratio of a feature touching only s, back-transformed with Duan's smearing estimate:
//!
//!   tax_s = exp(c + β_s) · mean_i exp(ε̂_i)
//!
//! The 90% interval is the posterior one, c + β_s ± t(0.95, df) · sd (df = n − 1 − the fit's
//! effective number of system parameters). Every input is sorted before it is summed, so the
//! same rows give the same bits in any order, layout or core count.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, Float64Array, Float64Builder, Int64Array, ListArray, ListBuilder, StringArray,
    StringBuilder, StructArray,
};
use datafusion::arrow::buffer::OffsetBuffer;
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Fields, Float64Type};
use datafusion::common::{Result as DfResult, ScalarValue};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{Accumulator, AggregateUDF, AggregateUDFImpl, Signature, Volatility};

use crate::exact::{ExactSum, percentile_cont};
use crate::stats::{cholesky, cholesky_inverse, cholesky_solve, student_t_quantile};

/// One shipped feature as the fit reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    pub id: String,
    pub systems: Vec<String>,
    pub estimated: Option<f64>,
    pub actual: Option<f64>,
}

/// How sure the tax is; the rule is in `queries/system_tax.sql`'s header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Confidence {
    High,
    Medium,
    Low,
}

impl Confidence {
    /// high: at least 30 features and an interval whose high end is at most 1.25 times its low
    /// end; medium: at least 10 features and at most 1.6 times; low: anything else.
    pub fn of(features: u64, low: Option<f64>, high: Option<f64>) -> Self {
        let width = match (low, high) {
            (Some(l), Some(h)) if l > 0.0 => h / l,
            _ => return Confidence::Low,
        };
        if features >= 30 && width <= 1.25 {
            Confidence::High
        } else if features >= 10 && width <= 1.6 {
            Confidence::Medium
        } else {
            Confidence::Low
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Confidence::High => "high",
            Confidence::Medium => "medium",
            Confidence::Low => "low",
        }
    }
}

/// One row of `system_tax`.
#[derive(Debug, Clone, PartialEq)]
pub struct SystemTax {
    pub system: String,
    pub features: u64,
    pub solo_features: u64,
    pub tax: Option<f64>,
    pub tax_low: Option<f64>,
    pub tax_high: Option<f64>,
    pub naive_ratio: Option<f64>,
    pub attributed_extra_weeks: Option<f64>,
    pub confidence: Confidence,
}

/// The fitted model over one window's features.
#[derive(Debug, Clone)]
pub struct Fit {
    /// Every system of the window, sorted; parameter 1 + i is systems[i]'s β.
    systems: Vec<String>,
    /// Per system: features in the fit.
    fitted: Vec<u64>,
    model: Model,
    /// Features of the window left out of the fit (weeks missing or not above 0).
    pub excluded: u64,
    rows: Vec<SystemTax>,
}

/// How a feature's systems combine into its slowdown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Combine {
    /// The taxes multiply: ln ratio = c + Σ β_s.
    Multiply,
    /// The slowest system sets the pace: ln ratio = max β_s.
    Slowest,
}

/// A new feature's slowdown as the model combines its systems.
#[derive(Debug, Clone, PartialEq)]
pub struct Prediction {
    /// Median, and the 80% interval, of actual / estimated.
    pub p50: f64,
    pub low: f64,
    pub high: f64,
}

/// Quantiles of the fitted features' residuals used for a prediction interval.
const PREDICTION_LOW: f64 = 0.10;
const PREDICTION_HIGH: f64 = 0.90;

impl Fit {
    pub fn new(mut observations: Vec<Observation>) -> Fit {
        for o in &mut observations {
            o.systems.sort();
            o.systems.dedup();
        }
        observations.retain(|o| !o.systems.is_empty());
        // One order whatever order the rows came in: every sum below is then the same. By a
        // fixed hash of the id first (cheaper to compare than the text), then the whole row.
        let mut order: Vec<(u64, usize)> = observations.iter().enumerate().map(|(i, o)| (fnv1a(&o.id), i)).collect();
        order.sort_unstable_by(|a, b| {
            let (x, y) = (&observations[a.1], &observations[b.1]);
            a.0.cmp(&b.0)
                .then_with(|| x.id.cmp(&y.id))
                .then_with(|| x.systems.cmp(&y.systems))
                .then_with(|| cmp_weeks(x.estimated, y.estimated))
                .then_with(|| cmp_weeks(x.actual, y.actual))
        });
        let mut slots: Vec<Option<Observation>> = observations.into_iter().map(Some).collect();
        let observations: Vec<Observation> = order.iter().filter_map(|(_, i)| slots[*i].take()).collect();
        // The systems, sorted, and each observation's as indexes into them: one pass that numbers
        // names as they come, then the numbers remapped to the sorted order.
        let mut seen: HashMap<&str, usize, BuildHasherDefault<Fnv>> = HashMap::default();
        let mut touched: Vec<Vec<usize>> = observations
            .iter()
            .map(|o| {
                o.systems
                    .iter()
                    .map(|s| {
                        let next = seen.len();
                        *seen.entry(s.as_str()).or_insert(next)
                    })
                    .collect()
            })
            .collect();
        let mut names: Vec<(&str, usize)> = seen.into_iter().collect();
        names.sort_unstable();
        let mut rank = vec![0; names.len()];
        for (sorted, (_, first)) in names.iter().enumerate() {
            rank[*first] = sorted;
        }
        for t in &mut touched {
            for s in t.iter_mut() {
                *s = rank[*s];
            }
        }
        let systems: Vec<String> = names.iter().map(|(s, _)| s.to_string()).collect();
        let p = systems.len();

        // The fit's rows: log-ratio and the parameters it touches.
        let mut rows: Vec<(Vec<usize>, f64)> = Vec::new();
        let mut excluded = 0;
        let mut fitted = vec![0u64; p];
        for (o, touched) in observations.iter().zip(&touched) {
            match (o.estimated, o.actual) {
                (Some(e), Some(a)) if e > 0.0 && a > 0.0 && (a / e).is_finite() && (a / e) > 0.0 => {
                    for &s in touched {
                        fitted[s] += 1;
                    }
                    rows.push((touched.clone(), (a / e).ln()));
                }
                _ => excluded += 1,
            }
        }

        let model = Model::fit(&rows, p);
        let mut fit = Fit { systems, fitted, model, excluded, rows: Vec::new() };
        fit.rows = fit.system_rows(&observations, &touched);
        fit
    }

    /// The view's rows, in the order of the system names.
    pub fn rows(&self) -> &[SystemTax] {
        &self.rows
    }

    /// Features in the fit.
    pub fn fitted_features(&self) -> usize {
        self.model.residuals.len()
    }

    /// The combination rule the data chose.
    pub fn combine(&self) -> Combine {
        self.model.combine
    }

    fn system_rows(&self, observations: &[Observation], touched: &[Vec<usize>]) -> Vec<SystemTax> {
        let p = self.systems.len();
        let mut features = vec![0u64; p];
        let mut solo = vec![0u64; p];
        let mut naive: Vec<ExactSum> = vec![ExactSum::new(); p];
        let mut extra: Vec<ExactSum> = vec![ExactSum::new(); p];
        let taxes: Vec<Option<(f64, f64, f64)>> = (0..p).map(|s| self.tax_of(s)).collect();
        // A feature's extra weeks are shared in proportion to each touched system's log tax
        // (systems at or below 1x take none); when no touched system is above 1x, equally.
        let weight: Vec<f64> = taxes.iter().map(|t| t.map_or(0.0, |(tax, _, _)| tax.ln().max(0.0))).collect();
        for (o, touched) in observations.iter().zip(touched) {
            for &s in touched {
                features[s] += 1;
                if touched.len() == 1 {
                    solo[s] += 1;
                }
                // avg(actual / NULLIF(estimated, 0)), as slowdown_by_system.
                if let (Some(e), Some(a)) = (o.estimated, o.actual)
                    && e != 0.0
                {
                    naive[s].add(a / e);
                }
            }
            if let (Some(e), Some(a)) = (o.estimated, o.actual) {
                let total_weight: f64 = touched.iter().map(|&s| weight[s]).sum();
                for &s in touched {
                    let share = if total_weight > 0.0 { weight[s] / total_weight } else { 1.0 / touched.len() as f64 };
                    extra[s].add((a - e) * share);
                }
            }
        }
        (0..p)
            .map(|s| {
                let t = taxes[s];
                let (low, high) = (t.map(|t| t.1), t.map(|t| t.2));
                SystemTax {
                    system: self.systems[s].clone(),
                    features: features[s],
                    solo_features: solo[s],
                    tax: t.map(|t| t.0),
                    tax_low: low,
                    tax_high: high,
                    naive_ratio: naive[s].mean(),
                    attributed_extra_weeks: extra[s].value(),
                    confidence: Confidence::of(features[s], low, high),
                }
            })
            .collect()
    }

    /// (tax, low, high) of system index s; `None` when no feature of it is in the fit.
    fn tax_of(&self, s: usize) -> Option<(f64, f64, f64)> {
        if self.fitted[s] == 0 {
            return None;
        }
        let m = &self.model;
        let q = self.systems.len() + 1;
        let j = s + 1;
        let mean = m.theta[0] + m.theta[j];
        let var = m.cov[0] + 2.0 * m.cov[j] + m.cov[j * q + j];
        let z = student_t_quantile(0.95, m.df).unwrap_or(f64::INFINITY);
        let sd = var.max(0.0).sqrt();
        Some((mean.exp() * m.smear, (mean - z * sd).exp() * m.smear, (mean + z * sd).exp() * m.smear))
    }

    /// The system's row, `None` for a system the window does not have.
    pub fn system(&self, name: &str) -> Option<&SystemTax> {
        self.rows.iter().find(|r| r.system == name)
    }

    /// The system names of the window, sorted.
    pub fn system_names(&self) -> impl Iterator<Item = &str> {
        self.systems.iter().map(String::as_str)
    }

    /// A new feature touching `systems`: its actual/estimated ratio's median and 80% interval,
    /// from the model's combination of the systems and the fitted features' residuals, widened
    /// by the parameters' uncertainty. A system the window has no fitted features for counts at
    /// the common level with the prior's uncertainty. `None` when the window has no feature to
    /// fit.
    pub fn predict(&self, systems: &[String]) -> Option<Prediction> {
        let m = &self.model;
        if m.residuals.is_empty() {
            return None;
        }
        let q = self.systems.len() + 1;
        let mut known: Vec<usize> = Vec::new();
        let mut unknown = 0usize;
        let mut names: Vec<&String> = systems.iter().collect();
        names.sort();
        names.dedup();
        for name in names {
            match self.systems.binary_search(name) {
                Ok(s) if self.fitted[s] > 0 => known.push(s + 1),
                _ => unknown += 1,
            }
        }
        let (mean, var) = match m.combine {
            Combine::Multiply => {
                let touched: Vec<usize> = std::iter::once(0).chain(known.iter().copied()).collect();
                let mean = touched.iter().map(|&j| m.theta[j]).sum::<f64>() + unknown as f64 * m.prior_mean;
                let mut var = unknown as f64 * m.tau2;
                for &i in &touched {
                    for &j in &touched {
                        var += m.cov[i * q + j];
                    }
                }
                (mean, var)
            }
            Combine::Slowest => {
                // The slowest known system, or the common level when an unknown one may be.
                let slowest = known.iter().map(|&j| (m.theta[j], m.cov[j * q + j])).max_by(|a, b| a.0.total_cmp(&b.0));
                match slowest {
                    Some((b, v)) if unknown == 0 || b >= m.prior_mean => (b, v),
                    _ => (m.prior_mean, m.tau2),
                }
            }
        };
        let mut r = m.residuals.clone();
        let n = r.len() as f64;
        let median = percentile_cont(&mut r, 0.5, false).unwrap_or(0.0);
        let lo = percentile_cont(&mut r, PREDICTION_LOW, false).unwrap_or(0.0);
        let hi = percentile_cont(&mut r, PREDICTION_HIGH, false).unwrap_or(0.0);
        // In-sample residuals are narrower than a new feature's by about n / df.
        let inflate = (n / m.df).sqrt();
        let z = student_t_quantile(PREDICTION_HIGH, m.df).unwrap_or(f64::INFINITY);
        let param = z * z * var.max(0.0);
        let down = (((median - lo) * inflate).powi(2) + param).sqrt();
        let up = (((hi - median) * inflate).powi(2) + param).sqrt();
        let centre = mean + median;
        Some(Prediction { p50: centre.exp(), low: (centre - down).exp(), high: (centre + up).exp() })
    }
}

/// The 64-bit FNV-1a hash: fixed on every platform and run, unlike std's hasher, and quick on
/// short keys (feature ids, system names).
fn fnv1a(text: &str) -> u64 {
    let mut h = Fnv::default();
    h.write(text.as_bytes());
    h.finish()
}

struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl Hasher for Fnv {
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

/// An order for optional floats: none first, then IEEE total order.
fn cmp_weeks(a: Option<f64>, b: Option<f64>) -> std::cmp::Ordering {
    match (a, b) {
        (Some(x), Some(y)) => x.total_cmp(&y),
        _ => a.is_some().cmp(&b.is_some()),
    }
}

/// One fitted combination rule. Parameter 0 is the intercept c (0 for `Slowest`), parameter
/// 1 + s system s's β; a solo feature's log-ratio is θ₀ + θ₁₊ₛ under either rule.
#[derive(Debug, Clone)]
struct Model {
    combine: Combine,
    theta: Vec<f64>,
    /// The posterior covariance of theta, row-major ((p + 1)²).
    cov: Vec<f64>,
    /// The prior of a β without data: N(prior_mean, tau2).
    prior_mean: f64,
    tau2: f64,
    smear: f64,
    /// The residuals of the fit, sorted.
    residuals: Vec<f64>,
    rss: f64,
    /// Residual degrees of freedom (n − 1 − effective system parameters, plus the noise
    /// prior's).
    df: f64,
}

/// Features touching several systems needed before the slowest-system rule is considered.
const MIN_FEATURES_TO_CHOOSE: usize = 20;

impl Model {
    /// `rows`: (system indexes, log ratio), in a fixed order. `p`: the number of systems. Both
    /// rules are fitted; the one that leaves the smaller residual sum of squares is kept, the
    /// multiplicative one on a tie.
    fn fit(rows: &[(Vec<usize>, f64)], p: usize) -> Model {
        let multiply = Model::multiply(rows, p);
        // Only features that touch several systems tell the rules apart; on a handful of them
        // the choice would follow chance, so the default rule stands.
        if rows.iter().filter(|(t, _)| t.len() > 1).count() < MIN_FEATURES_TO_CHOOSE {
            return multiply;
        }
        let slowest = Model::slowest(rows, p, &multiply);
        // A tie (both rules fit as well, as when no feature's systems disagree) is not decided
        // by rounding: the slowest-system rule must fit better by more than that.
        if slowest.rss < multiply.rss * (1.0 - 1e-9) - 1e-300 { slowest } else { multiply }
    }

    fn empty(p: usize, combine: Combine) -> Model {
        let q = p + 1;
        Model {
            combine,
            theta: vec![0.0; q],
            cov: vec![0.0; q * q],
            prior_mean: 0.0,
            tau2: 0.0,
            smear: 1.0,
            residuals: vec![],
            rss: 0.0,
            df: 1.0,
        }
    }

    /// The ridge fit of ln ratio = c + Σ β_s with its weight chosen by MacKay's fixed point.
    fn multiply(rows: &[(Vec<usize>, f64)], p: usize) -> Model {
        let q = p + 1;
        let n = rows.len();
        if n == 0 {
            return Model::empty(p, Combine::Multiply);
        }
        // XᵀX and Xᵀy, the intercept first.
        let mut xtx = vec![0.0; q * q];
        let mut xty = vec![0.0; q];
        let mut sum_y = ExactSum::new();
        for (touched, y) in rows {
            xtx[0] += 1.0;
            xty[0] += y;
            sum_y.add(*y);
            for &s in touched {
                let j = s + 1;
                xtx[j] += 1.0;
                xtx[j * q] += 1.0;
                xty[j] += y;
                for &t in touched {
                    xtx[j * q + t + 1] += 1.0;
                }
            }
        }
        let mean_y = sum_y.mean().unwrap_or(0.0);
        let var_y = rows.iter().map(|(_, y)| (y - mean_y).powi(2)).sum::<f64>() / n as f64;
        let scale = if var_y > 0.0 { var_y } else { 1.0 };
        let (mut sigma2, mut tau2) = (scale, scale);
        let mut last = None;
        for _ in 0..200 {
            let lambda = (sigma2 / tau2).clamp(1e-9, 1e9);
            let (theta, inv) = solve(&xtx, &xty, q, lambda);
            // Row by row: yᵀy − 2θᵀXᵀy + θᵀXᵀXθ cancels to noise when the fit is close, and the
            // weight would follow the noise.
            let rss: f64 = rows.iter().map(|(t, y)| (y - predict(&theta, t)).powi(2)).sum();
            // γ: the effective number of system parameters the data determine.
            let gamma: f64 = (1..q).map(|j| 1.0 - lambda * inv[j * q + j]).sum::<f64>().max(0.0);
            let beta2: f64 = theta[1..].iter().map(|b| b * b).sum();
            tau2 = if gamma > 1e-12 && beta2 > 0.0 { beta2 / gamma } else { scale * 1e-9 };
            sigma2 = noise_variance(rss, n as f64 - 1.0 - gamma);
            let done = last.is_some_and(|l: f64| (l - lambda).abs() <= 1e-9 * lambda);
            last = Some(lambda);
            if done {
                break;
            }
        }
        let lambda = (sigma2 / tau2).clamp(1e-9, 1e9);
        let (theta, inv) = solve(&xtx, &xty, q, lambda);
        let gamma: f64 = (1..q).map(|j| 1.0 - lambda * inv[j * q + j]).sum::<f64>().max(0.0);
        let residuals: Vec<f64> = rows.iter().map(|(t, y)| y - predict(&theta, t)).collect();
        // The interval: the noise with its weak prior, and the posterior under the prior weight
        // that noise implies (the estimate keeps the data's own weight).
        let (sigma2, df) = noise(&residuals, n as f64 - 1.0 - gamma);
        let lambda = (sigma2 / tau2).clamp(1e-9, 1e9);
        let (_, inv) = solve(&xtx, &xty, q, lambda);
        let cov = inv.iter().map(|v| v * sigma2).collect();
        Model::finish(Combine::Multiply, theta, cov, 0.0, tau2, residuals, df)
    }

    /// ln ratio = max over the touched systems of β_s, each β_s shrunk towards a common level m
    /// (prior N(m, τ²), weight λ = σ²/τ² by the same fixed point). Fitted by alternating: each
    /// feature is assigned to its slowest system, each β_s is the shrunk mean of its features,
    /// until the assignment holds. Starts from the multiplicative fit's solo levels.
    fn slowest(rows: &[(Vec<usize>, f64)], p: usize, start: &Model) -> Model {
        let q = p + 1;
        let n = rows.len();
        let mut beta: Vec<f64> = (0..p).map(|s| start.theta[0] + start.theta[s + 1]).collect();
        let scale = start.residuals.iter().map(|r| r * r).sum::<f64>() / n as f64 + 1e-12;
        let (mut sigma2, mut tau2) = (scale, scale);
        let mut assigned: Vec<usize> = vec![usize::MAX; n];
        let mut count = vec![0.0f64; p];
        let mut lambda = 1.0;
        let mut m = 0.0;
        // The assignment can cycle through a few features whose two slowest systems are all but
        // equal: stop once fewer than one feature in a thousand moves (or after 30 passes).
        for pass in 0..30 {
            let mut changed = 0usize;
            for (i, (touched, _)) in rows.iter().enumerate() {
                let a = slowest_of(&beta, touched);
                changed += usize::from(assigned[i] != a);
                assigned[i] = a;
            }
            if changed == 0 || (pass > 0 && changed * 1000 <= n) {
                break;
            }
            // Each system's features under this assignment, summed in the rows' fixed order.
            count = vec![0.0; p];
            let mut sum = vec![0.0; p];
            for (i, (_, y)) in rows.iter().enumerate() {
                count[assigned[i]] += 1.0;
                sum[assigned[i]] += y;
            }
            // The spread within each system, about its own mean (two passes: no cancellation).
            let mean: Vec<f64> = (0..p).map(|s| if count[s] > 0.0 { sum[s] / count[s] } else { 0.0 }).collect();
            let mut within = vec![0.0; p];
            for (i, (_, y)) in rows.iter().enumerate() {
                within[assigned[i]] += (y - mean[assigned[i]]).powi(2);
            }
            let with_data = count.iter().filter(|c| **c > 0.0).count().max(1) as f64;
            // The shrinkage for this assignment: β, the common level m and λ by the fixed point.
            for _ in 0..500 {
                let last = lambda;
                lambda = (sigma2 / tau2).clamp(1e-9, 1e9);
                m = (0..p).filter(|&s| count[s] > 0.0).map(|s| beta[s]).sum::<f64>() / with_data;
                for s in 0..p {
                    beta[s] = (sum[s] + lambda * m) / (count[s] + lambda);
                }
                let rss: f64 = (0..p).map(|s| within[s] + count[s] * (mean[s] - beta[s]).powi(2)).sum();
                let gamma: f64 = count.iter().map(|c| c / (c + lambda)).sum();
                let spread: f64 = (0..p).filter(|&s| count[s] > 0.0).map(|s| (beta[s] - m).powi(2)).sum();
                tau2 = if spread > 0.0 { spread / gamma.max(1e-12) } else { scale * 1e-9 };
                sigma2 = noise_variance(rss, n as f64 - gamma);
                if (last - lambda).abs() <= 1e-9 * lambda {
                    break;
                }
            }
        }
        // The assignment the last β imply.
        for (i, (touched, _)) in rows.iter().enumerate() {
            assigned[i] = slowest_of(&beta, touched);
        }
        let residuals: Vec<f64> = rows.iter().enumerate().map(|(i, (_, y))| y - beta[assigned[i]]).collect();
        let gamma: f64 = count.iter().map(|c| c / (c + lambda)).sum();
        let (sigma2, df) = noise(&residuals, n as f64 - gamma);
        let lambda = (sigma2 / tau2).clamp(1e-9, 1e9);
        let mut theta = vec![0.0; q];
        let mut cov = vec![0.0; q * q];
        for s in 0..p {
            theta[s + 1] = beta[s];
            cov[(s + 1) * q + s + 1] = sigma2 / (count[s] + lambda);
        }
        Model::finish(Combine::Slowest, theta, cov, m, tau2, residuals, df)
    }

    fn finish(
        combine: Combine,
        theta: Vec<f64>,
        cov: Vec<f64>,
        prior_mean: f64,
        tau2: f64,
        mut residuals: Vec<f64>,
        df: f64,
    ) -> Model {
        let mut smear = ExactSum::new();
        let mut rss = ExactSum::new();
        for r in &residuals {
            smear.add(r.exp());
            rss.add(r * r);
        }
        residuals.sort_by(f64::total_cmp);
        Model {
            combine,
            theta,
            cov,
            prior_mean,
            tau2,
            smear: smear.mean().unwrap_or(1.0),
            residuals,
            rss: rss.value().unwrap_or(0.0),
            df,
        }
    }
}

/// A weak prior on the noise: as if two more features had shown a log-ratio spread of 0.5 (a
/// ratio off by a factor of about 1.65 either way), so that a window of a handful of features is
/// not certain of its taxes (one feature alone would otherwise have no spread at all, and a fit
/// with as many systems as features would choose its shrinkage from rounding noise). It weighs
/// little past a few dozen features.
const NOISE_PRIOR_DF: f64 = 2.0;
const NOISE_PRIOR_VARIANCE: f64 = 0.25;

/// σ² and its degrees of freedom from the residuals and the data's own degrees of freedom.
fn noise(residuals: &[f64], df: f64) -> (f64, f64) {
    let rss: f64 = residuals.iter().map(|r| r * r).sum();
    (noise_variance(rss, df), df.max(0.0) + NOISE_PRIOR_DF)
}

fn noise_variance(rss: f64, df: f64) -> f64 {
    (rss + NOISE_PRIOR_DF * NOISE_PRIOR_VARIANCE) / (df.max(0.0) + NOISE_PRIOR_DF)
}

/// The touched system with the largest β (the first of equals).
fn slowest_of(beta: &[f64], touched: &[usize]) -> usize {
    let mut best = touched[0];
    for &s in &touched[1..] {
        if beta[s] > beta[best] {
            best = s;
        }
    }
    best
}

fn predict(theta: &[f64], touched: &[usize]) -> f64 {
    theta[0] + touched.iter().map(|&s| theta[s + 1]).sum::<f64>()
}

/// θ = (XᵀX + λD)⁻¹ Xᵀy and the inverse, D the identity but for the intercept.
fn solve(xtx: &[f64], xty: &[f64], q: usize, lambda: f64) -> (Vec<f64>, Vec<f64>) {
    let mut m = xtx.to_vec();
    for j in 1..q {
        m[j * q + j] += lambda;
    }
    // Positive definite for any λ > 0 (the intercept's diagonal is n > 0); a λ too small to
    // keep it so numerically is raised until it does.
    let mut extra = lambda;
    let l = loop {
        if let Some(l) = cholesky(&m, q) {
            break l;
        }
        for j in 1..q {
            m[j * q + j] += extra;
        }
        extra *= 10.0;
    };
    (cholesky_solve(&l, q, xty), cholesky_inverse(&l, q))
}

// The aggregate function behind the view.

/// `velocity_tax(feature_id, systems, estimated_weeks, actual_weeks)`: the `system_tax` rows
/// of the features aggregated, as a list of structs (the view unnests it).
#[derive(Debug, PartialEq, Eq, Hash)]
struct VelocityTax {
    signature: Signature,
}

/// The struct of one `system_tax` row.
pub fn row_fields() -> Fields {
    Fields::from(vec![
        Field::new("system", DataType::Utf8, false),
        Field::new("features", DataType::Int64, false),
        Field::new("solo_features", DataType::Int64, false),
        Field::new("tax", DataType::Float64, true),
        Field::new("tax_low", DataType::Float64, true),
        Field::new("tax_high", DataType::Float64, true),
        Field::new("naive_ratio", DataType::Float64, true),
        Field::new("attributed_extra_weeks", DataType::Float64, true),
        Field::new("confidence", DataType::Utf8, false),
    ])
}

fn list_of(t: DataType) -> DataType {
    DataType::List(Arc::new(Field::new_list_field(t, true)))
}

impl AggregateUDFImpl for VelocityTax {
    fn name(&self) -> &str {
        "velocity_tax"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _arg_types: &[DataType]) -> DfResult<DataType> {
        Ok(list_of(DataType::Struct(row_fields())))
    }
    fn accumulator(&self, _args: AccumulatorArgs) -> DfResult<Box<dyn Accumulator>> {
        Ok(Box::new(TaxAccumulator { observations: Vec::new() }))
    }
    fn state_fields(&self, args: StateFieldsArgs) -> DfResult<Vec<FieldRef>> {
        let name = |part: &str| format!("{}[{part}]", args.name);
        Ok(vec![
            Arc::new(Field::new(name("ids"), list_of(DataType::Utf8), true)),
            Arc::new(Field::new(name("systems"), list_of(list_of(DataType::Utf8)), true)),
            Arc::new(Field::new(name("estimated"), list_of(DataType::Float64), true)),
            Arc::new(Field::new(name("actual"), list_of(DataType::Float64), true)),
        ])
    }
}

/// The registered function.
pub fn function() -> AggregateUDF {
    AggregateUDF::new_from_impl(VelocityTax { signature: Signature::any(4, Volatility::Immutable) })
}

#[derive(Debug)]
struct TaxAccumulator {
    observations: Vec<Observation>,
}

/// Appends the rows of four columns (id, systems, estimated, actual) as observations.
pub fn collect_observations(columns: &[ArrayRef], out: &mut Vec<Observation>) -> DfResult<()> {
    let [ids, systems, estimated, actual] = columns else {
        return datafusion::common::plan_err!("velocity_tax takes feature_id, systems, estimated_weeks, actual_weeks");
    };
    let ids = cast(ids, &DataType::Utf8)?;
    let ids = ids.as_string::<i32>();
    let systems = cast(systems, &list_of(DataType::Utf8))?;
    let systems = systems.as_list::<i32>();
    let estimated = cast(estimated, &DataType::Float64)?;
    let estimated = estimated.as_primitive::<Float64Type>();
    let actual = cast(actual, &DataType::Float64)?;
    let actual = actual.as_primitive::<Float64Type>();
    let names = systems.values().as_string::<i32>();
    let offsets = systems.value_offsets();
    for i in 0..ids.len() {
        let mut touched = Vec::new();
        if systems.is_valid(i) {
            for j in offsets[i] as usize..offsets[i + 1] as usize {
                if names.is_valid(j) {
                    touched.push(names.value(j).to_string());
                }
            }
        }
        out.push(Observation {
            id: if ids.is_valid(i) { ids.value(i).to_string() } else { String::new() },
            systems: touched,
            estimated: estimated.is_valid(i).then(|| estimated.value(i)),
            actual: actual.is_valid(i).then(|| actual.value(i)),
        });
    }
    Ok(())
}

impl Accumulator for TaxAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> DfResult<()> {
        collect_observations(values, &mut self.observations)
    }

    fn evaluate(&mut self) -> DfResult<ScalarValue> {
        let fit = Fit::new(std::mem::take(&mut self.observations));
        Ok(ScalarValue::List(Arc::new(rows_array(fit.rows()))))
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self)
            + self
                .observations
                .iter()
                .map(|o| {
                    std::mem::size_of::<Observation>()
                        + o.id.capacity()
                        + o.systems.iter().map(|s| s.capacity() + 24).sum::<usize>()
                })
                .sum::<usize>()
    }

    fn state(&mut self) -> DfResult<Vec<ScalarValue>> {
        let mut ids = ListBuilder::new(StringBuilder::new());
        let mut systems = ListBuilder::new(ListBuilder::new(StringBuilder::new()));
        let mut estimated = ListBuilder::new(Float64Builder::new());
        let mut actual = ListBuilder::new(Float64Builder::new());
        for o in self.observations.drain(..) {
            ids.values().append_value(&o.id);
            for s in &o.systems {
                systems.values().values().append_value(s);
            }
            systems.values().append(true);
            estimated.values().append_option(o.estimated);
            actual.values().append_option(o.actual);
        }
        ids.append(true);
        systems.append(true);
        estimated.append(true);
        actual.append(true);
        Ok(vec![
            ScalarValue::List(Arc::new(ids.finish())),
            ScalarValue::List(Arc::new(systems.finish())),
            ScalarValue::List(Arc::new(estimated.finish())),
            ScalarValue::List(Arc::new(actual.finish())),
        ])
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> DfResult<()> {
        let lists: Vec<&ListArray> = states.iter().map(|s| s.as_list::<i32>()).collect();
        for i in 0..lists[0].len() {
            if lists.iter().any(|l| l.is_null(i)) {
                continue;
            }
            let columns: Vec<ArrayRef> = lists.iter().map(|l| l.value(i)).collect();
            collect_observations(&columns, &mut self.observations)?;
        }
        Ok(())
    }
}

/// The rows as one list of structs.
fn rows_array(rows: &[SystemTax]) -> ListArray {
    let float =
        |f: fn(&SystemTax) -> Option<f64>| -> ArrayRef { Arc::new(rows.iter().map(f).collect::<Float64Array>()) };
    let columns: Vec<ArrayRef> = vec![
        Arc::new(rows.iter().map(|r| Some(r.system.as_str())).collect::<StringArray>()),
        Arc::new(rows.iter().map(|r| Some(r.features as i64)).collect::<Int64Array>()),
        Arc::new(rows.iter().map(|r| Some(r.solo_features as i64)).collect::<Int64Array>()),
        float(|r| r.tax),
        float(|r| r.tax_low),
        float(|r| r.tax_high),
        float(|r| r.naive_ratio),
        float(|r| r.attributed_extra_weeks),
        Arc::new(rows.iter().map(|r| Some(r.confidence.as_str())).collect::<StringArray>()),
    ];
    let structs = StructArray::new(row_fields(), columns, None);
    ListArray::new(
        Arc::new(Field::new_list_field(DataType::Struct(row_fields()), true)),
        OffsetBuffer::from_lengths([rows.len()]),
        Arc::new(structs),
        None,
    )
}

#[cfg(test)]
mod tests;
