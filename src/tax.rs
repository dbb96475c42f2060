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
//! effective number of system parameters). Every sum over features is order-independent (fixed
//! point or `ExactSum`), so the same rows give the same bits in any order, layout or core count.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, Float64Array, Int64Array, ListArray, StringArray, StructArray, UInt32Array,
};
use datafusion::arrow::buffer::OffsetBuffer;
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Fields, Float64Type, UInt32Type};
use datafusion::common::{Result as DfResult, ScalarValue};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{Accumulator, AggregateUDF, AggregateUDFImpl, Signature, Volatility};

use crate::exact::{ExactSum, percentile_cont};
use crate::forecast::Forecaster;
use crate::stats::{cholesky, cholesky_inverse, cholesky_solve, student_t_quantile};

/// One shipped feature as the fit reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    pub systems: Vec<String>,
    pub estimated: Option<f64>,
    pub actual: Option<f64>,
}

/// The window's features as the fit reads them, in flat buffers, the system names numbered
/// as they are first seen. Appending a batch allocates nothing per feature, only for a name not
/// seen before.
#[derive(Debug, Clone, Default)]
pub struct Observations {
    names: Vec<String>,
    numbers: HashMap<String, u32, BuildHasherDefault<Fnv>>,
    /// Each feature's system numbers.
    systems: Lists,
    estimated: Vec<Option<f64>>,
    actual: Vec<Option<f64>>,
    /// Each feature's cost of delay per week (`delay_cost` reads it; the tax does not).
    values: Vec<Option<f64>>,
}

impl Observations {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.estimated.len()
    }

    pub fn is_empty(&self) -> bool {
        self.estimated.is_empty()
    }

    fn number(&mut self, name: &str) -> u32 {
        if let Some(&n) = self.numbers.get(name) {
            return n;
        }
        let n = self.names.len() as u32;
        self.names.push(name.to_string());
        self.numbers.insert(name.to_string(), n);
        n
    }

    /// Appends one feature.
    pub fn push<'a>(
        &mut self,
        systems: impl IntoIterator<Item = &'a str>,
        estimated: Option<f64>,
        actual: Option<f64>,
    ) {
        self.push_valued(systems, estimated, actual, None);
    }

    /// Appends one feature with its cost of delay per week.
    pub fn push_valued<'a>(
        &mut self,
        systems: impl IntoIterator<Item = &'a str>,
        estimated: Option<f64>,
        actual: Option<f64>,
        value: Option<f64>,
    ) {
        for s in systems {
            let n = self.number(s);
            self.systems.values.push(n);
        }
        self.end_feature(estimated, actual, value);
    }

    /// Closes the feature whose systems were just pushed.
    fn end_feature(&mut self, estimated: Option<f64>, actual: Option<f64>, value: Option<f64>) {
        self.systems.close();
        self.estimated.push(estimated);
        self.actual.push(actual);
        self.values.push(value);
    }

    /// Appends the rows of three columns (systems, estimated_weeks, actual_weeks), or four with
    /// the cost of delay per week. A null list or name reads as no system.
    pub fn append_columns(&mut self, columns: &[ArrayRef]) -> DfResult<()> {
        let (systems, estimated, actual, value) = match columns {
            [systems, estimated, actual] => (systems, estimated, actual, None),
            [systems, estimated, actual, value] => (systems, estimated, actual, Some(value)),
            _ => {
                return datafusion::common::plan_err!(
                    "velocity_tax takes systems, estimated_weeks, actual_weeks (and delay_cost also \
                     cost_of_delay_per_week)"
                );
            }
        };
        let (list_offsets, names) = match systems.data_type() {
            DataType::List(_) => {
                let list = systems.as_list::<i32>();
                (list.value_offsets().iter().map(|o| *o as usize).collect::<Vec<usize>>(), list.values().clone())
            }
            DataType::LargeList(_) => {
                let list = systems.as_list::<i64>();
                (list.value_offsets().iter().map(|o| *o as usize).collect::<Vec<usize>>(), list.values().clone())
            }
            other => {
                return datafusion::common::plan_err!("velocity_tax: systems must be a list of names, not {other}");
            }
        };
        // Only the names the rows cover (a sliced list's values may reach past them).
        let (first, last) = (list_offsets[0], list_offsets[list_offsets.len() - 1]);
        let names = utf8(&names.slice(first, last - first))?;
        let numbers: Vec<Option<u32>> = names.iter().map(|n| n.map(|n| self.number(n))).collect();
        let estimated = cast(estimated, &DataType::Float64)?;
        let estimated = estimated.as_primitive::<Float64Type>();
        let actual = cast(actual, &DataType::Float64)?;
        let actual = actual.as_primitive::<Float64Type>();
        let value = value.map(|v| cast(v, &DataType::Float64)).transpose()?;
        let value = value.as_ref().map(|v| v.as_primitive::<Float64Type>());
        for i in 0..systems.len() {
            if systems.is_valid(i) {
                self.systems
                    .values
                    .extend(numbers[list_offsets[i] - first..list_offsets[i + 1] - first].iter().flatten());
            }
            self.end_feature(
                estimated.is_valid(i).then(|| estimated.value(i)),
                actual.is_valid(i).then(|| actual.value(i)),
                value.and_then(|v| v.is_valid(i).then(|| v.value(i))),
            );
        }
        Ok(())
    }

    fn bytes(&self) -> usize {
        self.systems.bytes()
            + (self.estimated.capacity() + self.actual.capacity() + self.values.capacity())
                * std::mem::size_of::<Option<f64>>()
            + self.names.iter().map(|n| 2 * n.capacity() + 64).sum::<usize>()
    }
}

impl From<Vec<Observation>> for Observations {
    fn from(features: Vec<Observation>) -> Self {
        let mut out = Observations::new();
        for o in &features {
            out.push(o.systems.iter().map(String::as_str), o.estimated, o.actual);
        }
        out
    }
}

/// A string column as Utf8 (cast only when it is another string type).
fn utf8(a: &ArrayRef) -> DfResult<StringArray> {
    Ok(match a.data_type() {
        DataType::Utf8 => a.as_string::<i32>().clone(),
        _ => cast(a, &DataType::Utf8)?.as_string::<i32>().clone(),
    })
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
    /// The window's features with at least one system, each one's systems as sorted, distinct
    /// indexes into `systems`.
    features: Features,
}

/// How a feature's systems combine into its slowdown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
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
    pub fn new(observations: impl Into<Observations>) -> Fit {
        let o: Observations = observations.into();
        // The systems sorted, and each feature's as sorted, distinct indexes into them. Features
        // without a system are not the view's.
        let mut by_name: Vec<u32> = (0..o.names.len() as u32).collect();
        by_name.sort_unstable_by(|a, b| o.names[*a as usize].cmp(&o.names[*b as usize]));
        let mut rank = vec![0u32; by_name.len()];
        for (sorted, first) in by_name.iter().enumerate() {
            rank[*first as usize] = sorted as u32;
        }
        let mut features = Features::default();
        for (i, systems) in o.systems.iter().enumerate() {
            let all = &mut features.touched.values;
            let start = all.len();
            all.extend(systems.iter().map(|&s| rank[s as usize]));
            all[start..].sort_unstable();
            let mut kept = start;
            for j in start..all.len() {
                if kept == start || all[j] != all[kept - 1] {
                    all[kept] = all[j];
                    kept += 1;
                }
            }
            all.truncate(kept);
            if kept > start {
                features.touched.close();
                features.estimated.push(o.estimated[i]);
                features.actual.push(o.actual[i]);
                features.values.push(o.values[i]);
            }
        }
        let systems: Vec<String> = by_name.iter().map(|&s| o.names[s as usize].clone()).collect();
        let p = systems.len();

        // The fit's rows: log-ratio and the systems touched. Every sum over them is
        // order-independent (`Fixed`), so the rows' order (the files', the partitions') does not
        // change a bit of the answer.
        let mut rows = Rows::default();
        let mut excluded = 0;
        let mut fitted = vec![0u64; p];
        for (i, touched) in features.touched.iter().enumerate() {
            match (features.estimated[i], features.actual[i]) {
                (Some(e), Some(a)) if e > 0.0 && a > 0.0 && (a / e).is_finite() && (a / e) > 0.0 => {
                    for &s in touched {
                        fitted[s as usize] += 1;
                    }
                    rows.push(touched, (a / e).ln());
                }
                _ => excluded += 1,
            }
        }

        let model = Model::fit(&rows, p);
        let mut fit = Fit { systems, fitted, model, excluded, rows: Vec::new(), features };
        fit.rows = fit.system_rows();
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

    fn system_rows(&self) -> Vec<SystemTax> {
        let all = &self.features;
        let p = self.systems.len();
        let mut features = vec![0u64; p];
        let mut solo = vec![0u64; p];
        let mut naive: Vec<ExactSum> = vec![ExactSum::new(); p];
        let mut extra: Vec<ExactSum> = vec![ExactSum::new(); p];
        let taxes: Vec<Option<(f64, f64, f64)>> = (0..p).map(|s| self.tax_of(s)).collect();
        let weight = share_weights(&taxes);
        for (i, touched) in all.touched.iter().enumerate() {
            let (estimated, actual) = (all.estimated[i], all.actual[i]);
            for &s in touched {
                let s = s as usize;
                features[s] += 1;
                if touched.len() == 1 {
                    solo[s] += 1;
                }
                // avg(actual / NULLIF(estimated, 0)), as slowdown_by_system.
                if let (Some(e), Some(a)) = (estimated, actual)
                    && e != 0.0
                {
                    naive[s].add(a / e);
                }
            }
            if let (Some(e), Some(a)) = (estimated, actual) {
                for &s in touched {
                    extra[s as usize].add((a - e) * share(touched, &weight, s as usize));
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

    /// `delay_cost`'s rows, one per system in the order of the names, then the organisation's
    /// (`ORGANISATION`): each valued feature's weeks late (actual − estimated, not below 0)
    /// shared among its systems as `system_tax` shares its extra weeks, and those weeks times
    /// its cost of delay per week. The 90% interval joins the two uncertainties: which system the
    /// delay belongs to (the shares with the system's tax at the ends of its 90% interval, the
    /// others as fitted) and which features the window happened to hold (the costs as a sum of
    /// events: ± 1.645 √(Σ x²) of the features' costs x, the low end not below 0).
    /// No rows for a window without features.
    pub fn delay_costs(&self) -> Vec<DelayCost> {
        let all = &self.features;
        if all.estimated.is_empty() {
            return Vec::new();
        }
        let p = self.systems.len();
        let taxes: Vec<Option<(f64, f64, f64)>> = (0..p).map(|s| self.tax_of(s)).collect();
        let weight = share_weights(&taxes);
        let mut rows: Vec<DelayCost> = self
            .systems
            .iter()
            .map(|s| DelayCost { system: s.clone(), ..DelayCost::default() })
            .chain([DelayCost { system: ORGANISATION.to_string(), ..DelayCost::default() }])
            .collect();
        // Per row: weeks, cost, and the cost at the low and the high end of the attribution
        // with their sums of squares (the sampling variance of a sum of events).
        let mut sums = vec![std::array::from_fn::<ExactSum, 6, _>(|_| ExactSum::new()); p + 1];
        let mut add = |row: usize, weeks: f64, cost: f64, low: f64, high: f64| {
            let sum = &mut sums[row];
            for (k, x) in [weeks, cost, low, high, low * low, high * high].into_iter().enumerate() {
                sum[k].add(x);
            }
        };
        for (i, touched) in all.touched.iter().enumerate() {
            let Some(value) = all.values[i] else {
                for &s in touched {
                    rows[s as usize].features_unvalued += 1;
                }
                rows[p].features_unvalued += 1;
                continue;
            };
            rows[p].features_valued += 1;
            let late = match (all.estimated[i], all.actual[i]) {
                (Some(e), Some(a)) => (a - e).max(0.0),
                _ => 0.0,
            };
            add(p, late, late * value, late * value, late * value);
            for &s in touched {
                let s = s as usize;
                rows[s].features_valued += 1;
                let point = share(touched, &weight, s);
                let at = |end: fn(&(f64, f64, f64)) -> f64| match taxes[s] {
                    Some(t) => share_with(touched, &weight, s, end(&t).ln().max(0.0)),
                    None => point,
                };
                // The share moves with the tax except through the fallback to equal shares: the
                // ends in order, the point between them.
                let ends = [at(|t| t.1), at(|t| t.2), point];
                let low = ends.iter().copied().fold(f64::INFINITY, f64::min);
                let high = ends.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                add(s, late * point, late * point * value, late * low * value, late * high * value);
            }
        }
        for (row, sum) in rows.iter_mut().zip(&sums) {
            let total = |k: usize| sum[k].value().unwrap_or(0.0);
            row.attributed_delay_weeks = total(0);
            row.cost_of_delay = total(1);
            row.cost_low = (total(2) - Z90 * total(4).sqrt()).max(0.0);
            row.cost_high = total(3) + Z90 * total(5).sqrt();
        }
        rows
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

    /// The model as the forecasts of planned items read it (`backlog_forecast`, `plan`).
    pub fn forecaster(&self) -> Forecaster {
        let m = &self.model;
        Forecaster::new(
            self.systems.clone(),
            self.fitted.iter().map(|&n| n > 0).collect(),
            self.rows.iter().map(|r| r.tax).collect(),
            m.combine,
            m.theta.clone(),
            m.cov.clone(),
            (m.prior_mean, m.tau2, m.smear),
            &m.residuals,
            m.df,
        )
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
        let (mean, var, _) =
            crate::forecast::combination(m.combine, &m.theta, &m.cov, (m.prior_mean, m.tau2), &known, unknown);
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

/// The 64-bit FNV-1a hash, for the maps of system names and sets: quick on short keys.
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

/// A sum that is the same in any order: each term rounded to a multiple of 2⁻⁶⁴ and added as
/// a 128-bit integer, which is exact and so associative. Each term is good to 2⁻⁶⁴; terms are
/// log-ratios (at most about 1,420 in size) and their squares, so a sum of 2³² of them stays far
/// inside the integer's range.
#[derive(Debug, Clone, Copy, Default)]
struct Fixed(i128);

const FIXED_ONE: f64 = 18_446_744_073_709_551_616.0; // 2^64

impl Fixed {
    fn add(&mut self, x: f64) {
        // `as` rounds towards zero, and takes NaN to 0 and a term too large to the limit.
        self.0 = self.0.wrapping_add((x * FIXED_ONE) as i128);
    }

    /// Adds another sum, exactly.
    fn merge(&mut self, other: Fixed) {
        self.0 = self.0.wrapping_add(other.0);
    }

    fn value(self) -> f64 {
        self.0 as f64 / FIXED_ONE
    }
}

/// Lists of system numbers end to end: list i is values[offsets[i]..offsets[i + 1]].
#[derive(Debug, Clone)]
struct Lists {
    values: Vec<u32>,
    offsets: Vec<usize>,
}

impl Default for Lists {
    fn default() -> Self {
        Lists { values: Vec::new(), offsets: vec![0] }
    }
}

impl Lists {
    fn push(&mut self, list: &[u32]) {
        self.values.extend_from_slice(list);
        self.close();
    }

    /// Ends the list whose values were just appended.
    fn close(&mut self) {
        self.offsets.push(self.values.len());
    }

    fn iter(&self) -> impl Iterator<Item = &[u32]> + '_ {
        self.offsets.windows(2).map(|w| &self.values[w[0]..w[1]])
    }

    fn bytes(&self) -> usize {
        self.values.capacity() * 4 + self.offsets.capacity() * std::mem::size_of::<usize>()
    }
}

/// How much of a feature's weeks each system takes, by the log of its tax (systems at or below
/// 1x, or without a tax, weigh 0).
fn share_weights(taxes: &[Option<(f64, f64, f64)>]) -> Vec<f64> {
    taxes.iter().map(|t| t.map_or(0.0, |(tax, _, _)| tax.ln().max(0.0))).collect()
}

/// System s's share of a feature touching `touched`: its weight over theirs, or an equal share
/// when none of them weighs anything (no touched system above 1x).
fn share(touched: &[u32], weight: &[f64], s: usize) -> f64 {
    share_with(touched, weight, s, weight[s])
}

/// `share` with system s weighing `own` instead (its tax at an end of its interval).
fn share_with(touched: &[u32], weight: &[f64], s: usize, own: f64) -> f64 {
    let total: f64 = touched.iter().map(|&t| if t as usize == s { own } else { weight[t as usize] }).sum();
    if total > 0.0 { own / total } else { 1.0 / touched.len() as f64 }
}

/// The standard normal's 95th percentile: a two-sided 90% interval is ± this many sd.
const Z90: f64 = 1.644_853_626_951_472_2;

/// The name of `delay_cost`'s organisation row.
pub const ORGANISATION: &str = "(organisation)";

/// One row of `delay_cost`, before the window's length turns it into a monthly figure.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DelayCost {
    pub system: String,
    pub features_valued: u64,
    pub features_unvalued: u64,
    pub attributed_delay_weeks: f64,
    pub cost_of_delay: f64,
    pub cost_low: f64,
    pub cost_high: f64,
}

/// The fit's rows: the systems each feature touches and its log-ratio.
#[derive(Debug, Default)]
struct Rows {
    touched: Lists,
    y: Vec<f64>,
}

impl Rows {
    fn push(&mut self, touched: &[u32], y: f64) {
        self.touched.push(touched);
        self.y.push(y);
    }

    fn len(&self) -> usize {
        self.y.len()
    }

    fn iter(&self) -> impl Iterator<Item = (&[u32], f64)> + '_ {
        self.touched.iter().zip(self.y.iter().copied())
    }
}

/// The window's features with at least one system, fitted or not.
#[derive(Debug, Clone, Default)]
struct Features {
    touched: Lists,
    estimated: Vec<Option<f64>>,
    actual: Vec<Option<f64>>,
    values: Vec<Option<f64>>,
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
    /// The fitted log-ratio of each set of systems the rows touch (`Groups`' order).
    prediction: Vec<f64>,
    /// The residuals of the fit, sorted.
    residuals: Vec<f64>,
    rss: f64,
    /// Residual degrees of freedom (n − 1 − effective system parameters, plus the noise
    /// prior's).
    df: f64,
}

/// Features touching several systems needed before the slowest-system rule is considered.
const MIN_FEATURES_TO_CHOOSE: usize = 20;

/// The fit's rows gathered by the set of systems they touch. Rows with one set have one
/// prediction under either rule, so the fits go over the sets (a few hundred) rather than the
/// rows (a million): a set's residual sum of squares about any prediction x is its spread about
/// its own mean plus n · (mean − x)², with no cancellation.
struct Groups {
    /// Each set's systems, the sets in sorted order (so sums over them are in a fixed order).
    sets: Lists,
    n: Vec<f64>,
    /// Σ y of each set, in fixed point (sums of them are exact).
    sum: Vec<Fixed>,
    mean: Vec<f64>,
    /// Σ (y − mean)² of each set.
    within: Vec<f64>,
    /// The set of each row.
    of_row: Vec<u32>,
}

impl Groups {
    fn new(rows: &Rows) -> Groups {
        let mut index: HashMap<&[u32], u32, BuildHasherDefault<Fnv>> = HashMap::default();
        let mut first_seen: Vec<&[u32]> = Vec::new();
        let mut of_row: Vec<u32> = rows
            .iter()
            .map(|(touched, _)| {
                *index.entry(touched).or_insert_with(|| {
                    first_seen.push(touched);
                    first_seen.len() as u32 - 1
                })
            })
            .collect();
        let mut order: Vec<u32> = (0..first_seen.len() as u32).collect();
        order.sort_unstable_by(|a, b| first_seen[*a as usize].cmp(first_seen[*b as usize]));
        let mut rank = vec![0u32; order.len()];
        let mut sets = Lists::default();
        for (sorted, &g) in order.iter().enumerate() {
            rank[g as usize] = sorted as u32;
            sets.push(first_seen[g as usize]);
        }
        let k = order.len();
        let (mut n, mut sum) = (vec![0.0; k], vec![Fixed::default(); k]);
        for (g, (_, y)) in of_row.iter_mut().zip(rows.iter()) {
            *g = rank[*g as usize];
            n[*g as usize] += 1.0;
            sum[*g as usize].add(y);
        }
        let mean: Vec<f64> = (0..k).map(|g| sum[g].value() / n[g]).collect();
        let mut within = vec![Fixed::default(); k];
        for (&g, (_, y)) in of_row.iter().zip(rows.iter()) {
            within[g as usize].add((y - mean[g as usize]).powi(2));
        }
        let within = within.into_iter().map(Fixed::value).collect();
        Groups { sets, n, sum, mean, within, of_row }
    }

    /// Σ over the rows of (y − the prediction of its set)².
    fn rss(&self, prediction: &[f64]) -> f64 {
        (0..self.n.len()).map(|g| self.within[g] + self.n[g] * (self.mean[g] - prediction[g]).powi(2)).sum()
    }

    /// Each row's y less the prediction of its set, in the rows' order.
    fn residuals(&self, rows: &Rows, prediction: &[f64]) -> Vec<f64> {
        self.of_row.iter().zip(rows.iter()).map(|(&g, (_, y))| y - prediction[g as usize]).collect()
    }
}

impl Model {
    /// `rows`: (system indexes, log ratio). `p`: the number of systems. Both rules are fitted;
    /// the one that leaves the smaller residual sum of squares is kept, the multiplicative one
    /// on a tie.
    fn fit(rows: &Rows, p: usize) -> Model {
        let groups = Groups::new(rows);
        let multiply = Model::multiply(rows, &groups, p);
        // Only features that touch several systems tell the rules apart; on a handful of them
        // the choice would follow chance, so the default rule stands.
        let several: f64 = groups.sets.iter().zip(&groups.n).filter(|(t, _)| t.len() > 1).map(|(_, n)| n).sum();
        let mut chosen = if several < MIN_FEATURES_TO_CHOOSE as f64 {
            multiply
        } else {
            let slowest = Model::slowest(rows, &groups, p, &multiply);
            // A tie (both rules fit as well, as when no feature's systems disagree) is not
            // decided by rounding: the slowest-system rule must fit better by more than that.
            if slowest.rss < multiply.rss * (1.0 - 1e-9) - 1e-300 { slowest } else { multiply }
        };
        // The chosen rule's residuals, sorted (for prediction intervals), and the smearing
        // factor they give.
        let mut residuals = groups.residuals(rows, &chosen.prediction);
        let mut smear = ExactSum::new();
        for r in &residuals {
            smear.add(r.exp());
        }
        residuals.sort_unstable_by(f64::total_cmp);
        chosen.smear = smear.mean().unwrap_or(1.0);
        chosen.residuals = residuals;
        chosen
    }

    fn empty(p: usize, combine: Combine) -> Model {
        let q = p + 1;
        Model { combine, ..Model::unsmeared(vec![0.0; q], vec![0.0; q * q], 0.0, vec![], 0.0, 1.0) }
    }

    /// The ridge fit of ln ratio = c + Σ β_s with its weight chosen by MacKay's fixed point.
    fn multiply(rows: &Rows, groups: &Groups, p: usize) -> Model {
        let q = p + 1;
        let n = rows.len();
        if n == 0 {
            return Model::empty(p, Combine::Multiply);
        }
        // XᵀX and Xᵀy, the intercept first.
        let mut xtx = vec![0.0; q * q];
        let mut xty = vec![Fixed::default(); q];
        for (g, touched) in groups.sets.iter().enumerate() {
            let (count, sum) = (groups.n[g], groups.sum[g]);
            xtx[0] += count;
            xty[0].merge(sum);
            for &s in touched {
                let j = s as usize + 1;
                xtx[j] += count;
                xtx[j * q] += count;
                xty[j].merge(sum);
                for &t in touched {
                    xtx[j * q + t as usize + 1] += count;
                }
            }
        }
        let xty: Vec<f64> = xty.into_iter().map(Fixed::value).collect();
        let mean_y = xty[0] / n as f64;
        let var_y = groups.rss(&vec![mean_y; groups.n.len()]) / n as f64;
        let scale = if var_y > 0.0 { var_y } else { 1.0 };
        let (mut sigma2, mut tau2) = (scale, scale);
        let predictions = |theta: &[f64]| -> Vec<f64> { groups.sets.iter().map(|t| predict(theta, t)).collect() };
        let mut last = None;
        for _ in 0..200 {
            let lambda = (sigma2 / tau2).clamp(1e-9, 1e9);
            let (theta, inv) = solve(&xtx, &xty, q, lambda);
            let rss = groups.rss(&predictions(&theta));
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
        let prediction = predictions(&theta);
        // The interval: the noise with its weak prior, and the posterior under the prior weight
        // that noise implies (the estimate keeps the data's own weight).
        let rss = groups.rss(&prediction);
        let (sigma2, df) = noise(rss, n as f64 - 1.0 - gamma);
        let lambda = (sigma2 / tau2).clamp(1e-9, 1e9);
        let (_, inv) = solve(&xtx, &xty, q, lambda);
        let cov = inv.iter().map(|v| v * sigma2).collect();
        Model { combine: Combine::Multiply, prior_mean: 0.0, ..Model::unsmeared(theta, cov, tau2, prediction, rss, df) }
    }

    /// ln ratio = max over the touched systems of β_s, each β_s shrunk towards a common level m
    /// (prior N(m, τ²), weight λ = σ²/τ² by the same fixed point). Fitted by alternating: each
    /// feature is assigned to its slowest system, each β_s is the shrunk mean of its features,
    /// until the assignment holds. Starts from the multiplicative fit's solo levels.
    fn slowest(rows: &Rows, groups: &Groups, p: usize, start: &Model) -> Model {
        let q = p + 1;
        let n = rows.len();
        let k = groups.n.len();
        let mut beta: Vec<f64> = (0..p).map(|s| start.theta[0] + start.theta[s + 1]).collect();
        let scale = start.rss / n as f64 + 1e-12;
        let (mut sigma2, mut tau2) = (scale, scale);
        let mut assigned: Vec<usize> = vec![usize::MAX; k];
        let mut count = vec![0.0f64; p];
        let mut lambda = 1.0;
        let mut m = 0.0;
        // The assignment can cycle through a few features whose two slowest systems are all but
        // equal: stop once fewer than one feature in a thousand moves (or after 30 passes).
        for pass in 0..30 {
            let mut changed = 0.0;
            for (g, touched) in groups.sets.iter().enumerate() {
                let a = slowest_of(&beta, touched);
                if assigned[g] != a {
                    changed += groups.n[g];
                }
                assigned[g] = a;
            }
            if changed == 0.0 || (pass > 0 && changed * 1000.0 <= n as f64) {
                break;
            }
            // Each system's features under this assignment.
            count = vec![0.0; p];
            let mut sum = vec![Fixed::default(); p];
            for g in 0..k {
                count[assigned[g]] += groups.n[g];
                sum[assigned[g]].merge(groups.sum[g]);
            }
            let sum: Vec<f64> = sum.into_iter().map(Fixed::value).collect();
            let mean: Vec<f64> = (0..p).map(|s| if count[s] > 0.0 { sum[s] / count[s] } else { 0.0 }).collect();
            // The spread within each system, about its own mean.
            let mut within = vec![0.0; p];
            for g in 0..k {
                within[assigned[g]] += groups.within[g] + groups.n[g] * (groups.mean[g] - mean[assigned[g]]).powi(2);
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
        let prediction: Vec<f64> = groups.sets.iter().map(|touched| beta[slowest_of(&beta, touched)]).collect();
        let gamma: f64 = count.iter().map(|c| c / (c + lambda)).sum();
        let rss = groups.rss(&prediction);
        let (sigma2, df) = noise(rss, n as f64 - gamma);
        let lambda = (sigma2 / tau2).clamp(1e-9, 1e9);
        let mut theta = vec![0.0; q];
        let mut cov = vec![0.0; q * q];
        for s in 0..p {
            theta[s + 1] = beta[s];
            cov[(s + 1) * q + s + 1] = sigma2 / (count[s] + lambda);
        }
        Model { combine: Combine::Slowest, prior_mean: m, ..Model::unsmeared(theta, cov, tau2, prediction, rss, df) }
    }

    /// A fitted rule before `fit` adds the chosen one's residuals and smearing factor.
    fn unsmeared(theta: Vec<f64>, cov: Vec<f64>, tau2: f64, prediction: Vec<f64>, rss: f64, df: f64) -> Model {
        Model {
            combine: Combine::Multiply,
            theta,
            cov,
            prior_mean: 0.0,
            tau2,
            smear: 1.0,
            prediction,
            residuals: vec![],
            rss,
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

/// σ² and its degrees of freedom from the residual sum of squares and the data's own degrees
/// of freedom.
fn noise(rss: f64, df: f64) -> (f64, f64) {
    (noise_variance(rss, df), df.max(0.0) + NOISE_PRIOR_DF)
}

fn noise_variance(rss: f64, df: f64) -> f64 {
    (rss + NOISE_PRIOR_DF * NOISE_PRIOR_VARIANCE) / (df.max(0.0) + NOISE_PRIOR_DF)
}

/// The touched system with the largest β (the first of equals).
fn slowest_of(beta: &[f64], touched: &[u32]) -> usize {
    let mut best = touched[0] as usize;
    for &s in &touched[1..] {
        if beta[s as usize] > beta[best] {
            best = s as usize;
        }
    }
    best
}

fn predict(theta: &[f64], touched: &[u32]) -> f64 {
    theta[0] + touched.iter().map(|&s| theta[s as usize + 1]).sum::<f64>()
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

/// `velocity_tax(systems, estimated_weeks, actual_weeks)`: the `system_tax` rows
/// of the features aggregated, as a list of structs (the view unnests it).
#[derive(Debug, PartialEq, Eq, Hash)]
struct VelocityTax {
    signature: Signature,
    output: Output,
}

/// What the aggregate returns: `velocity_tax`, system_tax's rows; `tax_model`, the fitted model
/// (as JSON text) that `item_forecast` reads; `delay_cost`, the delay_cost view's rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Output {
    Rows,
    Model,
    DelayCost,
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

/// The struct of one `delay_cost` row (`Fit::delay_costs`).
pub fn delay_cost_fields() -> Fields {
    Fields::from(vec![
        Field::new("system", DataType::Utf8, false),
        Field::new("features_valued", DataType::Int64, false),
        Field::new("features_unvalued", DataType::Int64, false),
        Field::new("attributed_delay_weeks", DataType::Float64, false),
        Field::new("cost_of_delay", DataType::Float64, false),
        Field::new("cost_low", DataType::Float64, false),
        Field::new("cost_high", DataType::Float64, false),
    ])
}

fn list_of(t: DataType) -> DataType {
    DataType::List(Arc::new(Field::new_list_field(t, true)))
}

impl AggregateUDFImpl for VelocityTax {
    fn name(&self) -> &str {
        match self.output {
            Output::Rows => "velocity_tax",
            Output::Model => "tax_model",
            Output::DelayCost => "delay_cost",
        }
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _arg_types: &[DataType]) -> DfResult<DataType> {
        Ok(match self.output {
            Output::Rows => list_of(DataType::Struct(row_fields())),
            Output::Model => DataType::Utf8,
            Output::DelayCost => list_of(DataType::Struct(delay_cost_fields())),
        })
    }
    fn accumulator(&self, _args: AccumulatorArgs) -> DfResult<Box<dyn Accumulator>> {
        Ok(Box::new(TaxAccumulator { observations: Observations::new(), output: self.output }))
    }
    fn state_fields(&self, args: StateFieldsArgs) -> DfResult<Vec<FieldRef>> {
        let name = |part: &str| format!("{}[{part}]", args.name);
        Ok(vec![
            Arc::new(Field::new(name("systems"), list_of(list_of(DataType::UInt32)), true)),
            Arc::new(Field::new(name("names"), list_of(DataType::Utf8), true)),
            Arc::new(Field::new(name("estimated"), list_of(DataType::Float64), true)),
            Arc::new(Field::new(name("actual"), list_of(DataType::Float64), true)),
            Arc::new(Field::new(name("values"), list_of(DataType::Float64), true)),
        ])
    }
}

/// The registered functions: `velocity_tax` (the system_tax view) and `tax_model` (the model
/// backlog_forecast applies), over the same three arguments, and `delay_cost` (the delay_cost
/// view), over those and the cost of delay per week.
pub fn functions() -> [AggregateUDF; 3] {
    [Output::Rows, Output::Model, Output::DelayCost].map(|output| {
        let arguments = if output == Output::DelayCost { 4 } else { 3 };
        AggregateUDF::new_from_impl(VelocityTax { signature: Signature::any(arguments, Volatility::Immutable), output })
    })
}

#[derive(Debug)]
struct TaxAccumulator {
    observations: Observations,
    output: Output,
}

impl Accumulator for TaxAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> DfResult<()> {
        self.observations.append_columns(values)
    }

    fn evaluate(&mut self) -> DfResult<ScalarValue> {
        let fit = Fit::new(std::mem::take(&mut self.observations));
        match self.output {
            Output::Rows => Ok(ScalarValue::List(Arc::new(rows_array(fit.rows())))),
            Output::Model => serde_json::to_string(&fit.forecaster())
                .map(|json| ScalarValue::Utf8(Some(json)))
                .map_err(|e| datafusion::common::DataFusionError::Internal(format!("tax_model: {e}"))),
            Output::DelayCost => Ok(ScalarValue::List(Arc::new(delay_cost_array(&fit.delay_costs())))),
        }
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self) + self.observations.bytes()
    }

    /// The features as one row: each feature's system numbers, the names those number,
    /// estimated and actual weeks.
    fn state(&mut self) -> DfResult<Vec<ScalarValue>> {
        let o = std::mem::take(&mut self.observations);
        let offsets = |v: &[usize]| -> DfResult<OffsetBuffer<i32>> {
            let v: Result<Vec<i32>, _> = v.iter().map(|&x| i32::try_from(x)).collect();
            match v {
                Ok(v) => Ok(OffsetBuffer::new(v.into())),
                Err(_) => datafusion::common::exec_err!("velocity_tax: over 2^31 systems touched in one partition"),
            }
        };
        let systems = ListArray::try_new(
            Arc::new(Field::new_list_field(DataType::UInt32, true)),
            offsets(&o.systems.offsets)?,
            Arc::new(UInt32Array::from(o.systems.values)),
            None,
        )?;
        let names: StringArray = o.names.iter().map(|n| Some(n.as_str())).collect();
        let estimated: Float64Array = o.estimated.into_iter().collect();
        let actual: Float64Array = o.actual.into_iter().collect();
        let values: Float64Array = o.values.into_iter().collect();
        Ok([Arc::new(systems) as ArrayRef, Arc::new(names), Arc::new(estimated), Arc::new(actual), Arc::new(values)]
            .into_iter()
            .map(|values| {
                let field = Arc::new(Field::new_list_field(values.data_type().clone(), true));
                let len = values.len();
                ScalarValue::List(Arc::new(ListArray::new(field, OffsetBuffer::from_lengths([len]), values, None)))
            })
            .collect())
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> DfResult<()> {
        let [systems, names, estimated, actual, values] = states else {
            return datafusion::common::internal_err!("velocity_tax: a state of {} columns", states.len());
        };
        let (systems, names, estimated, actual, values) = (
            systems.as_list::<i32>(),
            names.as_list::<i32>(),
            estimated.as_list::<i32>(),
            actual.as_list::<i32>(),
            values.as_list::<i32>(),
        );
        for row in 0..systems.len() {
            if systems.is_null(row) {
                continue;
            }
            let names = names.value(row);
            let names = names.as_string::<i32>();
            let numbers: Vec<u32> = names.iter().map(|n| self.observations.number(n.unwrap_or(""))).collect();
            let features = systems.value(row);
            let features = features.as_list::<i32>();
            let (estimated, actual, values) = (estimated.value(row), actual.value(row), values.value(row));
            let (estimated, actual, values) = (
                estimated.as_primitive::<Float64Type>(),
                actual.as_primitive::<Float64Type>(),
                values.as_primitive::<Float64Type>(),
            );
            for i in 0..features.len() {
                let touched = features.value(i);
                let touched = touched.as_primitive::<UInt32Type>();
                self.observations.systems.values.extend(touched.values().iter().map(|&s| numbers[s as usize]));
                self.observations.end_feature(
                    estimated.is_valid(i).then(|| estimated.value(i)),
                    actual.is_valid(i).then(|| actual.value(i)),
                    values.is_valid(i).then(|| values.value(i)),
                );
            }
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
    one_list(row_fields(), columns, rows.len())
}

/// Columns of `len` rows as one list value of structs (an aggregate's rows, which its view
/// unnests).
fn one_list(fields: Fields, columns: Vec<ArrayRef>, len: usize) -> ListArray {
    let structs = StructArray::new(fields.clone(), columns, None);
    ListArray::new(
        Arc::new(Field::new_list_field(DataType::Struct(fields), true)),
        OffsetBuffer::from_lengths([len]),
        Arc::new(structs),
        None,
    )
}

/// `delay_cost`'s rows as one list of structs.
fn delay_cost_array(rows: &[DelayCost]) -> ListArray {
    let float = |f: fn(&DelayCost) -> f64| -> ArrayRef { Arc::new(rows.iter().map(f).collect::<Float64Array>()) };
    let count =
        |f: fn(&DelayCost) -> u64| -> ArrayRef { Arc::new(rows.iter().map(|r| f(r) as i64).collect::<Int64Array>()) };
    let columns: Vec<ArrayRef> = vec![
        Arc::new(rows.iter().map(|r| Some(r.system.as_str())).collect::<StringArray>()),
        count(|r| r.features_valued),
        count(|r| r.features_unvalued),
        float(|r| r.attributed_delay_weeks),
        float(|r| r.cost_of_delay),
        float(|r| r.cost_low),
        float(|r| r.cost_high),
    ];
    one_list(delay_cost_fields(), columns, rows.len())
}

#[cfg(test)]
mod tests;
