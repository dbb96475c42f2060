//! The forecast of planned work (the `backlog_forecast` view, `debtlens plan`): how long an item
//! of the backlog will take, from the fitted model of the attributed tax (`system_tax`).
//!
//! An item touching systems S with estimate e takes e · r weeks, where ln r is the model's
//! combination of S's taxes (c + Σ β_s, or the slowest β_s, as the window chose) plus a residual
//! like the fitted features'. Its quantile function, at probability u:
//!
//!   ln r(u) = centre ± √((k · (ε(u) − ε(½)))² + t(u, df)² · v)
//!
//! with centre = the combination + the residuals' median ε(½), ε(u) the fitted residuals'
//! quantile, k = √(n / df) (in-sample residuals are narrower than a new feature's), v the
//! variance of the combination (the parameters' uncertainty) and the sign that of u − ½. It is
//! the interval `estimate` gives, at every u: the view reads u = 0.5 and 0.85 from it, the Monte
//! Carlo of `plan` draws u. The function is kept on a grid of 1,000 probabilities ((k + ½)/1000)
//! and interpolated linearly, so the view and the simulation read the same distribution.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, Float64Array, StringArray, StructArray};
use datafusion::arrow::datatypes::{DataType, Field, Fields, Float64Type};
use datafusion::common::Result as DfResult;
use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility};
use serde::{Deserialize, Serialize};

use crate::stats::student_t_quantile;
use crate::tax::Combine;

/// The probabilities of the grid: (k + ½) / GRID.
pub const GRID: usize = 1000;

/// The defaults of the flags: the taxes add half to the item; P85 is three times the estimate.
pub const DEBT_SHARE: f64 = 0.5;
pub const ARCHITECTURE_RATIO: f64 = 3.0;

/// The model of one window as the forecasts need it (`Fit::forecaster`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Forecaster {
    /// The window's systems, sorted; parameter 1 + i is systems[i]'s β.
    pub(crate) systems: Vec<String>,
    /// Whether the fit had features on the system (one without counts at the common level).
    pub(crate) fitted: Vec<bool>,
    /// system_tax's tax of each system.
    pub(crate) taxes: Vec<Option<f64>>,
    pub(crate) combine: Combine,
    pub(crate) theta: Vec<f64>,
    /// Row-major, (p + 1)².
    pub(crate) cov: Vec<f64>,
    /// The prior of a β without data: N(prior_mean, tau2); prior_mean is the common level.
    pub(crate) prior_mean: f64,
    pub(crate) tau2: f64,
    pub(crate) smear: f64,
    /// The fitted residuals' median.
    pub(crate) median: f64,
    /// k · (ε(u) − ε(½)) at the grid's probabilities.
    pub(crate) spread: Vec<f64>,
    /// t(u, df) at the grid's probabilities.
    pub(crate) z: Vec<f64>,
    /// Features in the fit (none: nothing can be forecast).
    pub(crate) features: usize,
}

/// One item's forecast.
#[derive(Debug, Clone, PartialEq)]
pub struct ItemForecast {
    /// actual / estimated at the grid's probabilities, increasing.
    pub ratios: Vec<f64>,
    /// The touched system that adds the most (the largest β among those with data), with its
    /// tax.
    pub driving: Option<(String, f64)>,
    /// The median ratio of an item whose systems are all at the common level.
    pub healthy: f64,
}

impl ItemForecast {
    /// actual / estimated at probability p, read off the grid.
    pub fn quantile(&self, p: f64) -> f64 {
        let x = (p * GRID as f64 - 0.5).clamp(0.0, (GRID - 1) as f64);
        let (lo, f) = (x.floor() as usize, x - x.floor());
        let hi = (lo + 1).min(GRID - 1);
        self.ratios[lo] + (self.ratios[hi] - self.ratios[lo]) * f
    }

    pub fn p50(&self) -> f64 {
        self.quantile(0.5)
    }

    pub fn p85(&self) -> f64 {
        self.quantile(0.85)
    }

    /// Weeks of an item of `estimated` weeks that the taxes add beyond the common level (at the
    /// median; never below 0).
    pub fn debt_weeks(&self, estimated: f64) -> f64 {
        (estimated * (self.p50() - self.healthy)).max(0.0)
    }

    /// `debt: auth-service 3.2x` when the taxes add at least `debt_share` to the item,
    /// `architecture first` when its P85 is at least `architecture_ratio` times the estimate.
    pub fn flag(&self, debt_share: f64, architecture_ratio: f64) -> Option<String> {
        match &self.driving {
            Some((system, tax)) if self.healthy > 0.0 && self.p50() >= self.healthy * (1.0 + debt_share) => {
                Some(format!("debt: {system} {tax:.1}x"))
            }
            _ if self.p85() >= architecture_ratio => Some("architecture first".into()),
            _ => None,
        }
    }
}

/// An item's log-slowdown under the fitted rule: its mean and variance, and the mean of an item
/// whose systems are all at the common level. `known`: the parameters (1 + system index) of its
/// systems with data; `unknown`: how many have none (each counts at the prior). Shared by
/// `Fit::predict` (estimate) and the forecasts.
pub(crate) fn combination(
    combine: Combine,
    theta: &[f64],
    cov: &[f64],
    (prior_mean, tau2): (f64, f64),
    known: &[usize],
    unknown: usize,
) -> (f64, f64, f64) {
    let q = theta.len();
    match combine {
        Combine::Multiply => {
            let touched: Vec<usize> = std::iter::once(0).chain(known.iter().copied()).collect();
            let mean = touched.iter().map(|&j| theta[j]).sum::<f64>() + unknown as f64 * prior_mean;
            let mut var = unknown as f64 * tau2;
            for &i in &touched {
                for &j in &touched {
                    var += cov[i * q + j];
                }
            }
            (mean, var, theta[0] + (known.len() + unknown) as f64 * prior_mean)
        }
        Combine::Slowest => {
            // The slowest known system, or the common level when an unknown one may be.
            let slowest = known.iter().map(|&j| (theta[j], cov[j * q + j])).max_by(|a, b| a.0.total_cmp(&b.0));
            let (mean, var) = match slowest {
                Some((b, v)) if unknown == 0 || b >= prior_mean => (b, v),
                _ => (prior_mean, tau2),
            };
            (mean, var, prior_mean)
        }
    }
}

/// The value at probability p of sorted values, interpolated as `percentile_cont`.
pub(crate) fn sorted_quantile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let position = p * (sorted.len() - 1) as f64;
    let (first, second) = (position.floor() as usize, position.ceil() as usize);
    sorted[first] + (sorted[second] - sorted[first]) * (position - first as f64)
}

/// The grid's probabilities.
fn grid() -> impl Iterator<Item = f64> {
    (0..GRID).map(|k| (k as f64 + 0.5) / GRID as f64)
}

impl Forecaster {
    /// Built from a fitted model: `residuals` sorted, `df` the residual degrees of freedom.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        systems: Vec<String>,
        fitted: Vec<bool>,
        taxes: Vec<Option<f64>>,
        combine: Combine,
        theta: Vec<f64>,
        cov: Vec<f64>,
        (prior_mean, tau2, smear): (f64, f64, f64),
        residuals: &[f64],
        df: f64,
    ) -> Forecaster {
        let n = residuals.len();
        let median = sorted_quantile(residuals, 0.5);
        let inflate = if n > 0 && df > 0.0 { (n as f64 / df).sqrt() } else { 1.0 };
        let spread = grid().map(|u| inflate * (sorted_quantile(residuals, u) - median)).collect();
        let z = grid().map(|u| student_t_quantile(u, df).unwrap_or(0.0)).collect();
        Forecaster {
            systems,
            fitted,
            taxes,
            combine,
            theta,
            cov,
            prior_mean,
            tau2,
            smear,
            median,
            spread,
            z,
            features: n,
        }
    }

    /// The forecast of an item touching `systems`; `None` when the window has no feature to fit.
    pub fn item<S: AsRef<str>>(&self, systems: &[S]) -> Option<ItemForecast> {
        if self.features == 0 {
            return None;
        }
        let mut names: Vec<&str> = systems.iter().map(AsRef::as_ref).collect();
        names.sort_unstable();
        names.dedup();
        let mut known: Vec<usize> = Vec::new();
        let mut unknown = 0usize;
        for name in names {
            match self.systems.binary_search_by(|s| s.as_str().cmp(name)) {
                Ok(s) if self.fitted[s] => known.push(s + 1),
                _ => unknown += 1,
            }
        }
        let driving = known
            .iter()
            .map(|&j| (j, self.theta[j]))
            .fold(None, |best: Option<(usize, f64)>, (j, b)| match best {
                Some((_, top)) if top >= b => best,
                _ => Some((j, b)),
            })
            .and_then(|(j, _)| self.taxes[j - 1].map(|tax| (self.systems[j - 1].clone(), tax)));
        let (mean, var, common) =
            combination(self.combine, &self.theta, &self.cov, (self.prior_mean, self.tau2), &known, unknown);
        let centre = mean + self.median;
        let ratios = self
            .spread
            .iter()
            .zip(&self.z)
            .map(|(s, z)| {
                let half = (s * s + z * z * var.max(0.0)).sqrt();
                (centre + if *z < 0.0 || *s < 0.0 { -half } else { half }).exp()
            })
            .collect();
        Some(ItemForecast { ratios, driving, healthy: (common + self.median).exp() })
    }

    /// Whether the window has features on `system`.
    pub fn knows(&self, system: &str) -> bool {
        self.systems.binary_search_by(|s| s.as_str().cmp(system)).is_ok_and(|s| self.fitted[s])
    }

    /// The same model with `system`'s tax set to `tax`, or to the common level: the paid-down
    /// world of `plan --paydown`. Its β is then known exactly (no variance). A system the window
    /// has no features on is left as it is (it already counts at the common level).
    pub fn paid_down(&self, system: &str, tax: Option<f64>) -> Forecaster {
        let mut out = self.clone();
        let Ok(s) = self.systems.binary_search_by(|name| name.as_str().cmp(system)) else { return out };
        if !self.fitted[s] {
            return out;
        }
        let (q, j) = (self.systems.len() + 1, s + 1);
        let offset = match self.combine {
            Combine::Multiply => self.theta[0],
            Combine::Slowest => 0.0,
        };
        let beta = match tax {
            Some(t) => (t / self.smear).ln() - offset,
            None => self.prior_mean,
        };
        out.theta[j] = beta;
        for i in 0..q {
            out.cov[i * q + j] = 0.0;
            out.cov[j * q + i] = 0.0;
        }
        out.taxes[s] = Some((offset + beta).exp() * self.smear);
        out
    }

    /// The common level as a tax: a system with β at the prior's mean.
    pub fn common_tax(&self) -> f64 {
        let offset = if self.combine == Combine::Multiply { self.theta[0] } else { 0.0 };
        (offset + self.prior_mean).exp() * self.smear
    }
}

// The SQL function of the view: `item_forecast(tax_model(...), systems, estimated_weeks)`.

/// The struct `item_forecast` returns.
pub fn item_fields() -> Fields {
    Fields::from(vec![
        Field::new("p50_weeks", DataType::Float64, true),
        Field::new("p85_weeks", DataType::Float64, true),
        Field::new("driving_system", DataType::Utf8, true),
        Field::new("driving_tax", DataType::Float64, true),
        Field::new("debt_weeks", DataType::Float64, true),
        Field::new("flag", DataType::Utf8, true),
    ])
}

/// `item_forecast(model, systems, estimated_weeks [, debt_share, architecture_ratio])`: an
/// item's forecast from the model `tax_model` returns, as a struct of the view's columns. Null
/// fields where the window has nothing to fit or the estimate is missing or not above 0.
#[derive(Debug, PartialEq, Eq, Hash)]
struct ItemForecastUdf {
    signature: Signature,
}

pub fn function() -> ScalarUDF {
    ScalarUDF::new_from_impl(ItemForecastUdf { signature: Signature::variadic_any(Volatility::Immutable) })
}

impl ScalarUDFImpl for ItemForecastUdf {
    fn name(&self) -> &str {
        "item_forecast"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, args: &[DataType]) -> DfResult<DataType> {
        if !(3..=5).contains(&args.len()) {
            return datafusion::common::plan_err!(
                "item_forecast(model, systems, estimated_weeks [, debt_share, architecture_ratio]) takes 3 to 5 arguments, not {}",
                args.len()
            );
        }
        Ok(DataType::Struct(item_fields()))
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let rows = args.number_rows;
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let text = |a: &ArrayRef| datafusion::arrow::compute::cast(a, &DataType::Utf8);
        let float =
            |a: &ArrayRef| -> DfResult<ArrayRef> { Ok(datafusion::arrow::compute::cast(a, &DataType::Float64)?) };
        let model = text(&arrays[0])?;
        let model = model.as_string::<i32>();
        let systems = &arrays[1];
        let estimated = float(&arrays[2])?;
        let estimated = estimated.as_primitive::<Float64Type>();
        let threshold = |i: usize| -> DfResult<Option<Float64Array>> {
            arrays.get(i).map(|a| float(a).map(|a| a.as_primitive::<Float64Type>().clone())).transpose()
        };
        let (share, ratio) = (threshold(3)?, threshold(4)?);
        let at = |a: &Option<Float64Array>, i: usize, default: f64| match a {
            Some(a) if a.is_valid(i) => a.value(i),
            _ => default,
        };
        // The model is the same text on every row of a query: parsed once.
        let mut parsed: Option<(String, Forecaster)> = None;
        let (mut p50, mut p85, mut driving, mut driving_tax, mut debt, mut flag) =
            (vec![], vec![], vec![], vec![], vec![], vec![]);
        for i in 0..rows {
            let forecast = if model.is_valid(i) && estimated.is_valid(i) && estimated.value(i) > 0.0 {
                let json = model.value(i);
                if parsed.as_ref().is_none_or(|(text, _)| text != json) {
                    let f: Forecaster = serde_json::from_str(json).map_err(|e| {
                        datafusion::common::DataFusionError::Execution(format!(
                            "item_forecast: the model is not one tax_model() made: {e}"
                        ))
                    })?;
                    parsed = Some((json.to_string(), f));
                }
                let names = crate::schema::list_items(systems, i)
                    .map_err(|e| datafusion::common::DataFusionError::Execution(format!("item_forecast: {e}")))?
                    .unwrap_or_default();
                parsed.as_ref().and_then(|(_, f)| f.item(&names))
            } else {
                None
            };
            let e = if estimated.is_valid(i) { estimated.value(i) } else { 0.0 };
            p50.push(forecast.as_ref().map(|f| e * f.p50()));
            p85.push(forecast.as_ref().map(|f| e * f.p85()));
            driving.push(forecast.as_ref().and_then(|f| f.driving.as_ref().map(|d| d.0.clone())));
            driving_tax.push(forecast.as_ref().and_then(|f| f.driving.as_ref().map(|d| d.1)));
            debt.push(forecast.as_ref().map(|f| f.debt_weeks(e)));
            flag.push(
                forecast.as_ref().and_then(|f| f.flag(at(&share, i, DEBT_SHARE), at(&ratio, i, ARCHITECTURE_RATIO))),
            );
        }
        let columns: Vec<ArrayRef> = vec![
            Arc::new(Float64Array::from(p50)),
            Arc::new(Float64Array::from(p85)),
            Arc::new(StringArray::from(driving)),
            Arc::new(Float64Array::from(driving_tax)),
            Arc::new(Float64Array::from(debt)),
            Arc::new(StringArray::from(flag)),
        ];
        Ok(ColumnarValue::Array(Arc::new(StructArray::try_new(item_fields(), columns, None)?)))
    }
}

#[cfg(test)]
mod tests;
