//! Decisions built on the views (data-model.md, "Decisions built on the views"): the debt-taxed
//! estimate of a new feature and the return of paying debt down. Every number comes from a
//! view; nothing is recomputed on the side.

use chrono::{Months, NaiveDate};
use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::{Date32Type, Float64Type};

use crate::engine::{QueryResult, Session};
use crate::error::{Error, Result};
use crate::views::closest_names;
use crate::window::Window;

/// One system of an estimate.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SystemRatio {
    pub system: String,
    /// Its slowdown_ratio in the window; `None` when the window has no data for it (it counts
    /// 1.0).
    pub slowdown_ratio: Option<f64>,
    /// The known systems closest to an unknown name.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub closest: Vec<String>,
}

/// A new feature's estimate with the debt tax of the systems it touches.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Estimate {
    pub base_weeks: f64,
    pub multiplier: f64,
    /// The system with the largest ratio; `None` when no system has data.
    pub driving_system: Option<String>,
    pub estimated_weeks: f64,
    pub systems: Vec<SystemRatio>,
    #[serde(skip)]
    pub window: Option<Window>,
}

impl std::fmt::Display for Estimate {
    /// "touches auth-service (3.2x slower): estimate 3.2 weeks, not 1"
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let number = |w: f64| {
            let s = format!("{w:.1}");
            s.strip_suffix(".0").map(str::to_string).unwrap_or(s)
        };
        let weeks = |w: f64| if number(w) == "1" { "1 week".to_string() } else { format!("{} weeks", number(w)) };
        match &self.driving_system {
            Some(system) => {
                let how = if self.multiplier >= 1.0 {
                    format!("{}x slower", number(self.multiplier))
                } else {
                    format!("{}x, faster than estimated", number(self.multiplier))
                };
                write!(
                    f,
                    "touches {system} ({how}): estimate {}, not {}",
                    weeks(self.estimated_weeks),
                    number(self.base_weeks)
                )
            }
            None => write!(f, "no data for these systems: estimate {}, as given", weeks(self.base_weeks)),
        }
    }
}

/// B x max over S of slowdown_ratio; a system without data counts 1.0.
pub async fn estimate(session: &Session, base_weeks: f64, systems: &[String]) -> Result<Estimate> {
    if !(base_weeks.is_finite() && base_weeks > 0.0) {
        return Err(Error::Usage(format!("--weeks must be a number greater than 0, not {base_weeks}")));
    }
    if systems.is_empty() {
        return Err(Error::Usage("--systems needs at least one system".into()));
    }
    let result = session.view("slowdown_by_system").await?;
    let known = column_pairs(&result, "system", "slowdown_ratio");
    let mut ratios = Vec::with_capacity(systems.len());
    for name in systems {
        let found = known.iter().find(|(s, _)| s == name);
        let closest =
            if found.is_none() { closest_names(name, known.iter().map(|(s, _)| s.as_str())) } else { Vec::new() };
        ratios.push(SystemRatio { system: name.clone(), slowdown_ratio: found.and_then(|(_, r)| *r), closest });
    }
    let driving = ratios
        .iter()
        .filter_map(|r| r.slowdown_ratio.map(|x| (x, r)))
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .filter(|(x, _)| *x > 1.0 || ratios.iter().all(|r| r.slowdown_ratio.is_some()));
    let multiplier = driving.map_or(1.0, |(x, _)| x);
    Ok(Estimate {
        base_weeks,
        multiplier,
        driving_system: driving.map(|(_, r)| r.system.clone()),
        estimated_weeks: base_weeks * multiplier,
        systems: ratios,
        window: result.window,
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
        write!(f, "payback: {:.1} months", self.payback_months)
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
    })
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

/// (text, optional float) pairs of two columns of a result.
fn column_pairs(result: &QueryResult, text: &str, number: &str) -> Vec<(String, Option<f64>)> {
    let mut out = Vec::new();
    for batch in &result.batches {
        let (Some(t), Some(n)) = (batch.column_by_name(text), batch.column_by_name(number)) else { continue };
        let t = datafusion::arrow::compute::cast(t, &datafusion::arrow::datatypes::DataType::Utf8).expect("text");
        let t = t.as_string::<i32>();
        let n = n.as_primitive::<Float64Type>();
        for i in 0..batch.num_rows() {
            if t.is_valid(i) {
                out.push((t.value(i).to_string(), n.is_valid(i).then(|| n.value(i))));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn estimate(multiplier: f64, driving: Option<&str>) -> Estimate {
        Estimate {
            base_weeks: 1.0,
            multiplier,
            driving_system: driving.map(str::to_string),
            estimated_weeks: multiplier,
            systems: vec![],
            window: None,
        }
    }

    #[test]
    fn the_estimate_reads_as_one_sentence() {
        assert_eq!(
            estimate(3.2, Some("auth-service")).to_string(),
            "touches auth-service (3.2x slower): estimate 3.2 weeks, not 1"
        );
        assert_eq!(estimate(1.0, None).to_string(), "no data for these systems: estimate 1 week, as given");
        let mut e = estimate(1.8, Some("payment-flow"));
        e.base_weeks = 3.0;
        e.estimated_weeks = 5.4;
        assert_eq!(e.to_string(), "touches payment-flow (1.8x slower): estimate 5.4 weeks, not 3");
    }
}
