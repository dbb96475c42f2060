//! Decisions built on the views (data-model.md, "Decisions built on the views"): the debt-taxed
//! estimate of a new feature and the return of paying debt down. Every number comes from a
//! view; nothing is recomputed on the side.

use chrono::{Months, NaiveDate};
use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::{Date32Type, Float64Type};

use crate::engine::{QueryResult, Session};
use crate::error::{Error, Result};
use crate::tax::{Confidence, Fit, Observations};
use crate::views::closest_names;
use crate::window::Window;

/// One system of an estimate.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SystemRatio {
    pub system: String,
    /// Its attributed tax in the window (system_tax) with the 90% interval; `None` when the
    /// window has no fitted feature on it (it counts at the common level, with the prior's
    /// uncertainty).
    pub tax: Option<f64>,
    pub tax_low: Option<f64>,
    pub tax_high: Option<f64>,
    /// Shipped features on it in the window.
    pub features: u64,
    pub confidence: Option<Confidence>,
    /// The plain average ratio (slowdown_by_system), for comparison.
    pub slowdown_ratio: Option<f64>,
    /// The known systems closest to an unknown name.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub closest: Vec<String>,
}

/// A new feature's estimate with the debt tax of the systems it touches.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Estimate {
    pub base_weeks: f64,
    /// The median of actual / estimated for a feature touching these systems, as the model
    /// combines their taxes.
    pub multiplier: f64,
    /// The system with the largest tax; `None` when no system has data.
    pub driving_system: Option<String>,
    /// The median (P50), then the 80% interval, in weeks.
    pub estimated_weeks: f64,
    pub low_weeks: f64,
    pub high_weeks: f64,
    pub systems: Vec<SystemRatio>,
    #[serde(skip)]
    pub window: Option<Window>,
}

/// A number as the sentences write it: one decimal, without a trailing ".0".
fn short(x: f64) -> String {
    let s = format!("{x:.1}");
    s.strip_suffix(".0").map(str::to_string).unwrap_or(s)
}

impl std::fmt::Display for Estimate {
    /// "touches auth-service (3.2x, 90%: 2.8–3.6) and api-gateway (1.1x, 90%: 1–1.2): estimate
    /// 3.5 weeks (80%: 2.6–4.9), not 1"
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let weeks = |w: f64| if short(w) == "1" { "1 week".to_string() } else { format!("{} weeks", short(w)) };
        let interval = format!("80%: {}–{}", short(self.low_weeks), short(self.high_weeks));
        if self.driving_system.is_none() {
            return write!(
                f,
                "no data for these systems: estimate {} ({interval}, at the common level), not {}",
                weeks(self.estimated_weeks),
                short(self.base_weeks)
            );
        }
        let parts: Vec<String> = self
            .systems
            .iter()
            .map(|s| match (s.tax, s.tax_low, s.tax_high) {
                (Some(t), Some(l), Some(h)) => format!("{} ({}x, 90%: {}–{})", s.system, short(t), short(l), short(h)),
                _ => format!("{} (no data)", s.system),
            })
            .collect();
        let list = match parts.as_slice() {
            [one] => one.clone(),
            [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
            [] => String::new(),
        };
        write!(
            f,
            "touches {list}: estimate {} ({interval}), not {}",
            weeks(self.estimated_weeks),
            short(self.base_weeks)
        )
    }
}

/// The window's fitted tax model (system_tax's, over the same rows).
pub async fn tax_fit(session: &Session) -> Result<(Fit, Option<Window>)> {
    let result = session.execute("SELECT systems, estimated_weeks, actual_weeks FROM window_features").await?;
    let mut observations = Observations::new();
    for batch in &result.batches {
        observations.append_columns(batch.columns())?;
    }
    Ok((Fit::new(observations), result.window))
}

/// B x the model's combination of the touched systems' taxes (median and 80% interval).
pub async fn estimate(session: &Session, base_weeks: f64, systems: &[String]) -> Result<Estimate> {
    if !(base_weeks.is_finite() && base_weeks > 0.0) {
        return Err(Error::Usage(format!("--weeks must be a number greater than 0, not {base_weeks}")));
    }
    if systems.is_empty() {
        return Err(Error::Usage("--systems needs at least one system".into()));
    }
    let (fit, window) = tax_fit(session).await?;
    let mut ratios = Vec::with_capacity(systems.len());
    for name in systems {
        let row = fit.system(name);
        let closest = if row.is_none() { closest_names(name, fit.system_names()) } else { Vec::new() };
        ratios.push(SystemRatio {
            system: name.clone(),
            tax: row.and_then(|r| r.tax),
            tax_low: row.and_then(|r| r.tax_low),
            tax_high: row.and_then(|r| r.tax_high),
            features: row.map_or(0, |r| r.features),
            confidence: row.map(|r| r.confidence),
            slowdown_ratio: row.and_then(|r| r.naive_ratio),
            closest,
        });
    }
    let driving = ratios
        .iter()
        .filter_map(|r| r.tax.map(|x| (x, r)))
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, r)| r.system.clone());
    let prediction = fit.predict(systems).ok_or_else(|| {
        Error::Usage(
            "the window has no shipped feature with estimated and actual weeks: nothing to estimate from".into(),
        )
    })?;
    Ok(Estimate {
        base_weeks,
        multiplier: prediction.p50,
        driving_system: driving,
        estimated_weeks: base_weeks * prediction.p50,
        low_weeks: base_weeks * prediction.low,
        high_weeks: base_weeks * prediction.high,
        systems: ratios,
        window,
    })
}

/// The return of paying debt down.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Paydown {
    pub invest: f64,
    pub current_efficiency: f64,
    pub target_efficiency: f64,
    pub months: u32,
    pub yearly_capacity: f64,
    /// C x M/12 x (T - E)
    pub capacity_returned: f64,
    /// capacity_returned - invest
    pub net_return: f64,
    /// Months until the capacity returned equals the investment.
    pub payback_months: f64,
    /// Where E and C came from.
    pub basis: String,
    /// The range the inputs imply: a 90% interval of E from the spread of the periods'
    /// efficiencies (Student's t over the periods), carried through the formula. `None` with
    /// fewer than two periods.
    pub range: Option<PaydownRange>,
    /// The return priced in delayed value as well (`--value cost_of_delay`).
    pub delayed_value: Option<DelayedValue>,
}

/// The paydown's return in product's unit: the value of the valued features that ship earlier.
/// A feature of e estimated weeks takes e / E weeks today and e / T after, so each week of
/// valued work saves (1/E − 1/T) weeks of its cost of delay.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct DelayedValue {
    /// Shipped features of the window with and without a cost of delay.
    pub valued_features: u64,
    pub unvalued_features: u64,
    /// V: the valued features' cost of delay per week times their estimated weeks, per average
    /// month of the window (30.436875 days).
    pub valued_work_per_month: f64,
    /// V x M x (1/E - 1/T)
    pub value_returned: f64,
    /// value_returned - invest
    pub net_value_return: f64,
    /// Months until the value returned equals the investment.
    pub value_payback_months: f64,
    /// value_returned at the ends of E's 90% interval (with `range`; `None` when its low end is
    /// 0).
    pub value_returned_low: Option<f64>,
    pub value_returned_high: Option<f64>,
}

/// Paydown's numbers at the ends of E's 90% interval (a higher E returns less).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct PaydownRange {
    pub periods: usize,
    pub efficiency_low: f64,
    pub efficiency_high: f64,
    pub capacity_returned_low: f64,
    pub capacity_returned_high: f64,
    pub net_return_low: f64,
    pub net_return_high: f64,
    pub payback_months_low: f64,
    pub payback_months_high: f64,
}

impl std::fmt::Display for Paydown {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let money = |x: f64| format!("{}${}", if x < 0.0 { "-" } else { "" }, crate::numbers::count(x.abs()));
        writeln!(f, "current efficiency E = {:.3} ({})", self.current_efficiency, self.basis)?;
        writeln!(
            f,
            "capacity returned = C x M/12 x (T - E) = {} x {}/12 x ({:.3} - {:.3}) = {}",
            money(self.yearly_capacity),
            self.months,
            self.target_efficiency,
            self.current_efficiency,
            money(self.capacity_returned)
        )?;
        writeln!(
            f,
            "net return = {} - {} = {}",
            money(self.capacity_returned),
            money(self.invest),
            money(self.net_return)
        )?;
        write!(f, "payback: {:.1} months", self.payback_months)?;
        if let Some(v) = &self.delayed_value {
            write!(
                f,
                "\ndelayed value returned = V x M x (1/E - 1/T) = {} x {} x (1/{:.3} - 1/{:.3}) = {}\n\
                 (V: the cost of delay per week times the estimated weeks of the window's {} valued features, per month; \
                 {} without a value left out)\n\
                 net return in delayed value = {} - {} = {}\n\
                 payback in delayed value: {:.1} months",
                money(v.valued_work_per_month),
                self.months,
                self.current_efficiency,
                self.target_efficiency,
                money(v.value_returned),
                v.valued_features,
                v.unvalued_features,
                money(v.value_returned),
                money(self.invest),
                money(v.net_value_return),
                v.value_payback_months
            )?;
        }
        if let Some(r) = &self.range {
            let months = |m: f64| if m.is_finite() { format!("{m:.1}") } else { "never".into() };
            write!(
                f,
                "\nrange (90% interval of E over {} periods: {:.3}–{:.3}): capacity returned {}–{}, net return {}–{}, payback {}–{} months",
                r.periods,
                r.efficiency_low,
                r.efficiency_high,
                money(r.capacity_returned_low),
                money(r.capacity_returned_high),
                money(r.net_return_low),
                money(r.net_return_high),
                months(r.payback_months_low),
                months(r.payback_months_high)
            )?;
            if let Some((low, high)) =
                self.delayed_value.as_ref().and_then(|v| v.value_returned_low.zip(v.value_returned_high))
            {
                write!(f, ", delayed value returned {}–{}", money(low), money(high))?;
            }
        }
        Ok(())
    }
}

/// Defaults from the store: E and C from capacity_efficiency over the last twelve months of
/// capacity rows, the organisation-wide rows when there are any.
pub async fn paydown(
    session: &Session,
    invest: f64,
    target: f64,
    months: u32,
    capacity: Option<f64>,
    value: PaydownValue,
) -> Result<Paydown> {
    if !(invest.is_finite() && invest >= 0.0) {
        return Err(Error::Usage(format!("--invest must be a number of at least 0, not {invest}")));
    }
    if !(target > 0.0 && target <= 1.0) {
        return Err(Error::Usage(format!("--target must be an efficiency in (0, 1], not {target}")));
    }
    if months == 0 {
        return Err(Error::Usage("--months must be at least 1".into()));
    }
    let rows = session.view("capacity_efficiency").await?;
    let rows = capacity_rows(&rows);
    let latest_end = rows.iter().map(|r| r.period_end).max().ok_or_else(|| {
        Error::Usage("the store has no capacity rows: give the yearly capacity with --capacity, and ingest capacity to measure efficiency".into())
    })?;
    let since = latest_end.checked_sub_months(Months::new(12)).unwrap_or(NaiveDate::MIN);
    let org_wide = rows.iter().any(|r| r.team.is_none());
    let recent: Vec<&CapacityRow> =
        rows.iter().filter(|r| r.period_start >= since && (r.team.is_none() == org_wide)).collect();
    let (estimated, actual): (f64, f64) = recent
        .iter()
        .fold((0.0, 0.0), |(e, a), r| (e + r.estimated_weeks.unwrap_or(0.0), a + r.actual_weeks.unwrap_or(0.0)));
    if actual <= 0.0 {
        return Err(Error::Usage(format!(
            "no shipped features in the capacity periods since {since}: efficiency cannot be measured"
        )));
    }
    let current = estimated / actual;
    if target <= current {
        return Err(Error::Usage(format!(
            "--target {target} is not above the current efficiency {current:.3}: paying down debt to reach it returns nothing"
        )));
    }
    let covered_days: i64 = recent.iter().map(|r| (r.period_end - r.period_start).num_days()).sum();
    let budget: f64 = recent.iter().map(|r| r.budget).sum();
    let measured_capacity = if covered_days > 0 { budget * 365.0 / covered_days as f64 } else { budget };
    let yearly_capacity = capacity.unwrap_or(measured_capacity);
    let monthly_gain = yearly_capacity / 12.0 * (target - current);
    let capacity_returned = monthly_gain * f64::from(months);
    let at = |e: f64| {
        let gain = yearly_capacity / 12.0 * (target - e);
        let returned = gain * f64::from(months);
        (returned, returned - invest, if gain > 0.0 { invest / gain } else { f64::INFINITY })
    };
    let range = efficiency_interval(&recent, current).map(|(low, high)| {
        let (returned_high, net_high, payback_low) = at(low);
        let (returned_low, net_low, payback_high) = at(high);
        PaydownRange {
            periods: recent.iter().filter(|r| r.actual_weeks.is_some_and(|a| a > 0.0)).count(),
            efficiency_low: low,
            efficiency_high: high,
            capacity_returned_low: returned_low,
            capacity_returned_high: returned_high,
            net_return_low: net_low,
            net_return_high: net_high,
            payback_months_low: payback_low,
            payback_months_high: payback_high,
        }
    });
    let scope = if org_wide { "organisation-wide" } else { "all teams" };
    let basis = format!(
        "capacity_efficiency, {} {scope} rows from {since} to {latest_end}{}",
        recent.len(),
        if capacity.is_some() {
            "; C from --capacity".to_string()
        } else {
            format!("; C = their budget per year, {yearly_capacity:.0}")
        }
    );
    let delayed_value = match value {
        PaydownValue::Capacity => None,
        PaydownValue::CostOfDelay => {
            let (low, high) =
                range.as_ref().map_or((None, None), |r| (Some(r.efficiency_low), Some(r.efficiency_high)));
            Some(delayed_value(session, invest, current, target, months, low, high).await?)
        }
    };
    Ok(Paydown {
        invest,
        current_efficiency: current,
        target_efficiency: target,
        months,
        yearly_capacity,
        capacity_returned,
        net_return: capacity_returned - invest,
        payback_months: if monthly_gain > 0.0 { invest / monthly_gain } else { f64::INFINITY },
        basis,
        range,
        delayed_value,
    })
}

/// How `paydown` prices the return.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum PaydownValue {
    /// In engineering capacity (the budget the efficiency gain frees).
    #[default]
    Capacity,
    /// In delayed value as well: the cost of delay of the valued features that ship earlier.
    #[value(name = "cost_of_delay")]
    CostOfDelay,
}

/// The valued work of the window and what the efficiency gain returns in its cost of delay.
async fn delayed_value(
    session: &Session,
    invest: f64,
    current: f64,
    target: f64,
    months: u32,
    efficiency_low: Option<f64>,
    efficiency_high: Option<f64>,
) -> Result<DelayedValue> {
    let result = session
        .execute(
            "SELECT count(cost_of_delay_per_week), count(*) - count(cost_of_delay_per_week), \
             sum(cost_of_delay_per_week * estimated_weeks) * 30.436875 / window_days() FROM window_features",
        )
        .await?;
    let batch = result.batches.iter().find(|b| b.num_rows() > 0);
    let count = |i: usize| -> u64 {
        batch.map_or(0, |b| {
            datafusion::arrow::compute::cast(b.column(i), &datafusion::arrow::datatypes::DataType::UInt64)
                .map_or(0, |c| c.as_primitive::<datafusion::arrow::datatypes::UInt64Type>().value(0))
        })
    };
    let (valued, unvalued) = (count(0), count(1));
    let per_month =
        batch.and_then(|b| b.column(2).as_primitive_opt::<Float64Type>().filter(|c| c.is_valid(0)).map(|c| c.value(0)));
    let Some(per_month) = per_month.filter(|_| valued > 0) else {
        return Err(Error::Usage(format!(
            "--value cost_of_delay: none of the window's {unvalued} shipped features has a cost_of_delay_per_week; \
             ingest it with the features (README, \"Cost of delay\") or price the return in capacity"
        )));
    };
    let returned = |e: f64| per_month * f64::from(months) * (1.0 / e - 1.0 / target);
    let value_returned = returned(current);
    let monthly = value_returned / f64::from(months);
    Ok(DelayedValue {
        valued_features: valued,
        unvalued_features: unvalued,
        valued_work_per_month: per_month,
        value_returned,
        net_value_return: value_returned - invest,
        value_payback_months: if monthly > 0.0 { invest / monthly } else { f64::INFINITY },
        // A lower efficiency returns more.
        value_returned_low: efficiency_high.map(returned),
        value_returned_high: efficiency_low.filter(|e| *e > 0.0).map(returned),
    })
}

/// A 90% interval of the efficiency E around the pooled `current`, from the spread of the
/// periods' own efficiencies: current ± t(0.95, n − 1) · sd / √n. `None` with fewer than two
/// periods that shipped anything.
fn efficiency_interval(periods: &[&CapacityRow], current: f64) -> Option<(f64, f64)> {
    let e: Vec<f64> = periods
        .iter()
        .filter_map(|r| match (r.estimated_weeks, r.actual_weeks) {
            (Some(est), Some(act)) if act > 0.0 => Some(est / act),
            _ => None,
        })
        .collect();
    let n = e.len();
    if n < 2 {
        return None;
    }
    let mean = e.iter().sum::<f64>() / n as f64;
    let sd = (e.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt();
    let half = crate::stats::student_t_quantile(0.95, (n - 1) as f64)? * sd / (n as f64).sqrt();
    Some(((current - half).max(0.0), current + half))
}

struct CapacityRow {
    period_start: NaiveDate,
    period_end: NaiveDate,
    team: Option<String>,
    budget: f64,
    estimated_weeks: Option<f64>,
    actual_weeks: Option<f64>,
}

fn capacity_rows(result: &QueryResult) -> Vec<CapacityRow> {
    let mut out = Vec::new();
    for batch in &result.batches {
        let col = |name: &str| batch.column_by_name(name).expect("a capacity_efficiency column");
        let start = col("period_start").as_primitive::<Date32Type>();
        let end = col("period_end").as_primitive::<Date32Type>();
        let team = datafusion::arrow::compute::cast(col("team"), &datafusion::arrow::datatypes::DataType::Utf8)
            .expect("team is text");
        let team = team.as_string::<i32>();
        let budget = col("budget").as_primitive::<Float64Type>();
        let est = col("estimated_weeks").as_primitive::<Float64Type>();
        let act = col("actual_weeks").as_primitive::<Float64Type>();
        for i in 0..batch.num_rows() {
            let (Some(s), Some(e)) = (start.value_as_date(i), end.value_as_date(i)) else { continue };
            out.push(CapacityRow {
                period_start: s,
                period_end: e,
                team: team.is_valid(i).then(|| team.value(i).to_string()),
                budget: budget.value(i),
                estimated_weeks: est.is_valid(i).then(|| est.value(i)),
                actual_weeks: act.is_valid(i).then(|| act.value(i)),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn system(name: &str, tax: Option<(f64, f64, f64)>) -> SystemRatio {
        SystemRatio {
            system: name.into(),
            tax: tax.map(|t| t.0),
            tax_low: tax.map(|t| t.1),
            tax_high: tax.map(|t| t.2),
            features: 40,
            confidence: None,
            slowdown_ratio: None,
            closest: vec![],
        }
    }

    #[test]
    fn the_estimate_reads_as_one_sentence() {
        let e = Estimate {
            base_weeks: 1.0,
            multiplier: 3.52,
            driving_system: Some("auth-service".into()),
            estimated_weeks: 3.52,
            low_weeks: 2.6,
            high_weeks: 4.94,
            systems: vec![system("auth-service", Some((3.2, 2.8, 3.6))), system("api-gateway", Some((1.1, 1.0, 1.2)))],
            window: None,
        };
        assert_eq!(
            e.to_string(),
            "touches auth-service (3.2x, 90%: 2.8–3.6) and api-gateway (1.1x, 90%: 1–1.2): estimate 3.5 weeks (80%: 2.6–4.9), not 1"
        );
        let none = Estimate {
            driving_system: None,
            estimated_weeks: 2.2,
            low_weeks: 1.0,
            high_weeks: 5.0,
            systems: vec![system("nope", None)],
            ..e
        };
        assert_eq!(
            none.to_string(),
            "no data for these systems: estimate 2.2 weeks (80%: 1–5, at the common level), not 1"
        );
    }
}
