//! The roadmap forecast (`debtlens plan`): when each team's backlog will be done, and what paying
//! a system's debt down would move.
//!
//! A Monte Carlo over the items of each team in priority order. In each trial every item takes
//! its estimate times a ratio drawn from its forecast (`forecast::ItemForecast`, the distribution
//! `backlog_forecast` reads its P50 and P85 from) and starts on the first of the team's slots to
//! come free (not before its planned_start); the team works as many items at once as it had
//! features in progress on average in its history. The draws are stratified (each item's trials
//! take one draw from each 1/N of its distribution, in a shuffled order), seeded per item, so the
//! same seed gives the same dates, and a paid-down forecast uses the same draws as today's: the
//! difference between the two is the paydown's, not the dice's.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};

use chrono::{Duration, NaiveDate, Utc};
use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::{Date32Type, Float64Type, Int64Type, TimestampMicrosecondType};

use crate::decisions::tax_fit;
use crate::engine::Session;
use crate::error::{Error, Result};
use crate::forecast::{ARCHITECTURE_RATIO, DEBT_SHARE, Forecaster, ItemForecast};
use crate::sample::Rng;
use crate::window::Window;

/// One item to schedule.
#[derive(Debug, Clone)]
pub struct Job<'a> {
    pub estimated_weeks: f64,
    /// Days after the plan's start before which it cannot start.
    pub not_before: f64,
    pub forecast: &'a ItemForecast,
}

/// Percentiles of one quantity over the trials.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Spread {
    pub p50: f64,
    pub p85: f64,
    pub mean: f64,
}

/// What the simulation found: per job, its finish (days after the start) and its mean duration
/// (weeks); the whole roadmap's finish.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub finish: Vec<Spread>,
    /// Each job's mean duration in weeks.
    pub weeks: Vec<f64>,
    pub done: Spread,
}

/// Runs `trials` trials of `jobs` (in priority order) over `slots` parallel slots.
pub fn simulate(jobs: &[Job], slots: usize, trials: usize, seed: u64) -> Outcome {
    let slots = slots.max(1);
    let trials = trials.max(1);
    // Each job's durations in days, one per trial: stratified draws in a shuffled order.
    let mut durations: Vec<Vec<f64>> = Vec::with_capacity(jobs.len());
    for (j, job) in jobs.iter().enumerate() {
        let mut rng = Rng(seed ^ (j as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let mut order: Vec<u32> = (0..trials as u32).collect();
        for i in (1..trials).rev() {
            order.swap(i, rng.below(i + 1));
        }
        let days = 7.0 * job.estimated_weeks;
        durations.push(
            order.iter().map(|&k| days * job.forecast.quantile((f64::from(k) + rng.f64()) / trials as f64)).collect(),
        );
    }
    let mut finish: Vec<Vec<f64>> = vec![Vec::with_capacity(trials); jobs.len()];
    let mut done = Vec::with_capacity(trials);
    // The slots as a min-heap of (time it comes free, slot): times are never negative, so their
    // bits order as the times do; equal times take the lowest-numbered slot.
    let mut free: BinaryHeap<Reverse<(u64, usize)>> = BinaryHeap::with_capacity(slots);
    for t in 0..trials {
        free.clear();
        free.extend((0..slots).map(|s| Reverse((0f64.to_bits(), s))));
        let mut last = 0.0f64;
        for ((job, drawn), finished) in jobs.iter().zip(&durations).zip(finish.iter_mut()) {
            let Some(Reverse((bits, slot))) = free.pop() else { break };
            let end = f64::from_bits(bits).max(job.not_before) + drawn[t];
            free.push(Reverse((end.to_bits(), slot)));
            finished.push(end);
            last = last.max(end);
        }
        done.push(last);
    }
    let weeks: Vec<f64> = durations.iter().map(|d| mean(d) / 7.0).collect();
    Outcome { finish: finish.iter_mut().map(|f| spread(f)).collect(), weeks, done: spread(&mut done) }
}

/// The mean, summed in the trials' order (the same order every run).
fn mean(values: &[f64]) -> f64 {
    if values.is_empty() { 0.0 } else { values.iter().sum::<f64>() / values.len() as f64 }
}

/// P50, P85 (interpolated as `percentile_cont`) and the mean of some values; reorders them.
fn spread(values: &mut [f64]) -> Spread {
    if values.is_empty() {
        return Spread { p50: 0.0, p85: 0.0, mean: 0.0 };
    }
    let mean = mean(values);
    Spread { p50: select_quantile(values, 0.5), p85: select_quantile(values, 0.85), mean }
}

/// The value at probability p, as `percentile_cont` interpolates it, by selection rather than a
/// sort (the two order statistics around p · (n − 1)).
fn select_quantile(values: &mut [f64], p: f64) -> f64 {
    let position = p * (values.len() - 1) as f64;
    let first = position.floor() as usize;
    let (_, lo, above) = values.select_nth_unstable_by(first, f64::total_cmp);
    let lo = *lo;
    let fraction = position - first as f64;
    if fraction == 0.0 || above.is_empty() {
        return lo;
    }
    let hi = above.iter().copied().fold(f64::INFINITY, f64::min);
    lo + (hi - lo) * fraction
}

/// What to plan.
#[derive(Debug, Clone)]
pub struct PlanOptions {
    pub team: Option<String>,
    pub start: Option<NaiveDate>,
    pub trials: usize,
    pub seed: u64,
    /// Systems whose tax is paid down: to the common level, or to the tax given.
    pub paydown: Vec<(String, Option<f64>)>,
    /// Items worked at once, for every team, instead of each team's history.
    pub slots: Option<usize>,
    pub debt_share: f64,
    pub architecture_ratio: f64,
}

impl Default for PlanOptions {
    fn default() -> Self {
        Self {
            team: None,
            start: None,
            trials: 10_000,
            seed: 42,
            paydown: vec![],
            slots: None,
            debt_share: DEBT_SHARE,
            architecture_ratio: ARCHITECTURE_RATIO,
        }
    }
}

/// The roadmap forecast.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Roadmap {
    pub start: NaiveDate,
    pub trials: usize,
    pub seed: u64,
    /// The systems paid down, with the tax each is set to.
    pub paydown: Vec<PaidSystem>,
    /// What an engineer-week costs (debt_cost's rate); `None` without capacity rows.
    pub cost_per_engineer_week: Option<f64>,
    pub teams: Vec<TeamPlan>,
    #[serde(skip)]
    pub window: Option<Window>,
    /// Paid-down systems the window has no features on (nothing to pay down).
    #[serde(skip)]
    pub unknown_paydown: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct PaidSystem {
    pub system: String,
    pub tax_today: Option<f64>,
    pub tax_after: f64,
}

/// One team's forecast.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct TeamPlan {
    /// `None` for the items no team owns yet.
    pub team: Option<String>,
    /// Items worked at once, and the shipped features it was measured from (0 when given or
    /// when the team has no history: then 1).
    pub slots: usize,
    pub slots_from_features: usize,
    pub done_p50: NaiveDate,
    pub done_p85: NaiveDate,
    pub paid: Option<PaidTeam>,
    pub items: Vec<PlannedItem>,
}

/// The team's forecast with the paydown.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct PaidTeam {
    pub done_p50: NaiveDate,
    pub done_p85: NaiveDate,
    /// The mean work the paydown saves over the team's items, in engineer-weeks, and its money.
    pub weeks_returned: f64,
    pub money_returned: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct PlannedItem {
    pub item_id: String,
    pub title: String,
    pub priority: Option<i64>,
    pub systems: Vec<String>,
    pub estimated_weeks: f64,
    pub p50_weeks: f64,
    pub p85_weeks: f64,
    pub p50_finish: NaiveDate,
    pub p85_finish: NaiveDate,
    pub flag: Option<String>,
    pub paid_p50_finish: Option<NaiveDate>,
    pub paid_p85_finish: Option<NaiveDate>,
}

/// The jobs of a team's items with their forecasts.
fn jobs_of<'a>(items: &[BacklogRow], forecasts: &'a [ItemForecast], start: NaiveDate) -> Vec<Job<'a>> {
    items
        .iter()
        .zip(forecasts)
        .map(|(i, forecast)| Job {
            estimated_weeks: i.estimated_weeks,
            not_before: i.planned_start.map_or(0.0, |d| (d - start).num_days().max(0) as f64),
            forecast,
        })
        .collect()
}

/// A backlog row.
struct BacklogRow {
    item_id: String,
    title: String,
    team: Option<String>,
    systems: Vec<String>,
    estimated_weeks: f64,
    priority: Option<i64>,
    planned_start: Option<NaiveDate>,
}

/// The forecast of the store's backlog, per team.
pub async fn plan(session: &Session, options: &PlanOptions) -> Result<Roadmap> {
    if options.trials == 0 {
        return Err(Error::Usage("--trials must be at least 1".into()));
    }
    if options.slots == Some(0) {
        return Err(Error::Usage("--slots must be at least 1".into()));
    }
    for (system, tax) in &options.paydown {
        if tax.is_some_and(|t| !(t.is_finite() && t > 0.0)) {
            return Err(Error::Usage(format!("--paydown {system}=TAX: the tax must be a number above 0")));
        }
    }
    let (fit, window) = tax_fit(session).await?;
    if fit.fitted_features() == 0 {
        return Err(Error::Usage(
            "the window has no shipped feature with estimated and actual weeks: nothing to forecast from".into(),
        ));
    }
    let today = fit.forecaster();
    let mut paid = today.clone();
    let mut paydown = Vec::new();
    let mut unknown_paydown = Vec::new();
    for (system, tax) in &options.paydown {
        if !today.knows(system) {
            unknown_paydown.push(system.clone());
            continue;
        }
        paid = paid.paid_down(system, *tax);
        paydown.push(PaidSystem {
            system: system.clone(),
            tax_today: fit.system(system).and_then(|r| r.tax),
            tax_after: tax.unwrap_or_else(|| today.common_tax()),
        });
    }
    let start = match options.start {
        Some(d) => d,
        None => window.map_or_else(|| Utc::now().date_naive(), |w| w.as_of.date_naive()) + Duration::days(1),
    };
    let rows = backlog_rows(session).await?;
    let mut by_team: BTreeMap<Option<String>, Vec<BacklogRow>> = BTreeMap::new();
    for row in rows {
        by_team.entry(row.team.clone()).or_default().push(row);
    }
    if let Some(team) = &options.team
        && !by_team.contains_key(&Some(team.clone()))
    {
        let names: Vec<&str> = by_team.keys().flatten().map(String::as_str).collect();
        let hint = match crate::views::closest_names(team, names.iter().copied()).as_slice() {
            [] => {
                format!("the backlog's teams are {}", if names.is_empty() { "none".into() } else { names.join(", ") })
            }
            close => format!("did you mean {}?", close.join(" or ")),
        };
        return Err(Error::Usage(format!("no backlog item of team `{team}`: {hint}")));
    }
    let history = concurrency(session).await?;
    let cost = cost_per_engineer_week(session).await?;
    let date = |days: f64| start + Duration::days(days.round() as i64);
    let mut teams = Vec::new();
    for (team, items) in by_team {
        if options.team.is_some() && team != options.team {
            continue;
        }
        let (slots, measured) = match options.slots {
            Some(n) => (n, 0),
            None => history.get(&team).copied().unwrap_or((1, 0)),
        };
        let forecasts = |model: &Forecaster| -> Vec<ItemForecast> {
            items.iter().map(|i| model.item(&i.systems).expect("the window has fitted features")).collect()
        };
        let (now, after) = (forecasts(&today), forecasts(&paid));
        let now_jobs = jobs_of(&items, &now, start);
        let after_jobs = jobs_of(&items, &after, start);
        let outcome = simulate(&now_jobs, slots, options.trials, options.seed);
        let paid_outcome = (!paydown.is_empty()).then(|| simulate(&after_jobs, slots, options.trials, options.seed));
        let planned = items
            .iter()
            .enumerate()
            .map(|(j, i)| PlannedItem {
                item_id: i.item_id.clone(),
                title: i.title.clone(),
                priority: i.priority,
                systems: i.systems.clone(),
                estimated_weeks: i.estimated_weeks,
                p50_weeks: i.estimated_weeks * now[j].p50(),
                p85_weeks: i.estimated_weeks * now[j].p85(),
                p50_finish: date(outcome.finish[j].p50),
                p85_finish: date(outcome.finish[j].p85),
                flag: now[j].flag(options.debt_share, options.architecture_ratio),
                paid_p50_finish: paid_outcome.as_ref().map(|o| date(o.finish[j].p50)),
                paid_p85_finish: paid_outcome.as_ref().map(|o| date(o.finish[j].p85)),
            })
            .collect();
        let paid_team = paid_outcome.map(|o| {
            let weeks_returned: f64 = outcome.weeks.iter().zip(&o.weeks).map(|(a, b)| a - b).sum();
            PaidTeam {
                done_p50: date(o.done.p50),
                done_p85: date(o.done.p85),
                weeks_returned,
                money_returned: cost.map(|c| weeks_returned * c),
            }
        });
        teams.push(TeamPlan {
            team,
            slots,
            slots_from_features: measured,
            done_p50: date(outcome.done.p50),
            done_p85: date(outcome.done.p85),
            paid: paid_team,
            items: planned,
        });
    }
    Ok(Roadmap {
        start,
        trials: options.trials,
        seed: options.seed,
        paydown,
        cost_per_engineer_week: cost,
        teams,
        window,
        unknown_paydown,
    })
}

/// The backlog in priority order (items without one last, then by item_id).
async fn backlog_rows(session: &Session) -> Result<Vec<BacklogRow>> {
    let result = session
        .execute(
            "SELECT item_id, title, team, systems, estimated_weeks, priority, planned_start FROM backlog \
             ORDER BY priority NULLS LAST, item_id",
        )
        .await?;
    let mut rows = Vec::new();
    for batch in &result.batches {
        let text =
            |i: usize| datafusion::arrow::compute::cast(batch.column(i), &datafusion::arrow::datatypes::DataType::Utf8);
        let (id, title, team) = (text(0)?, text(1)?, text(2)?);
        let (id, title, team) = (id.as_string::<i32>(), title.as_string::<i32>(), team.as_string::<i32>());
        let estimated = batch.column(4).as_primitive::<Float64Type>();
        let priority = batch.column(5).as_primitive::<Int64Type>();
        let planned = batch.column(6).as_primitive::<Date32Type>();
        for r in 0..batch.num_rows() {
            rows.push(BacklogRow {
                item_id: id.value(r).to_string(),
                title: title.value(r).to_string(),
                team: team.is_valid(r).then(|| team.value(r).to_string()),
                systems: crate::schema::list_items(batch.column(3), r)?.unwrap_or_default(),
                estimated_weeks: estimated.value(r),
                priority: priority.is_valid(r).then(|| priority.value(r)),
                planned_start: planned.is_valid(r).then(|| planned.value_as_date(r)).flatten(),
            });
        }
    }
    Ok(rows)
}

/// Each team's parallelism: the features it had in progress at once, on average over the days
/// it had any (the sum of its shipped features' durations over the length of their union),
/// rounded, at least 1; with the number of features measured. From every shipped feature with
/// both dates, not only the window's.
async fn concurrency(session: &Session) -> Result<BTreeMap<Option<String>, (usize, usize)>> {
    let result = session
        .execute(
            "SELECT team, started_at, shipped_at FROM features \
             WHERE started_at IS NOT NULL AND shipped_at IS NOT NULL AND shipped_at > started_at",
        )
        .await?;
    let mut spans: BTreeMap<Option<String>, Vec<(i64, i64)>> = BTreeMap::new();
    for batch in &result.batches {
        let team = datafusion::arrow::compute::cast(batch.column(0), &datafusion::arrow::datatypes::DataType::Utf8)?;
        let team = team.as_string::<i32>();
        let micros = |i: usize| {
            datafusion::arrow::compute::cast(
                batch.column(i),
                &datafusion::arrow::datatypes::DataType::Timestamp(
                    datafusion::arrow::datatypes::TimeUnit::Microsecond,
                    Some("UTC".into()),
                ),
            )
        };
        let (started, shipped) = (micros(1)?, micros(2)?);
        let (started, shipped) =
            (started.as_primitive::<TimestampMicrosecondType>(), shipped.as_primitive::<TimestampMicrosecondType>());
        for r in 0..batch.num_rows() {
            let key = team.is_valid(r).then(|| team.value(r).to_string());
            spans.entry(key).or_default().push((started.value(r), shipped.value(r)));
        }
    }
    Ok(spans.into_iter().map(|(team, mut s)| (team, (parallelism(&mut s), s.len()))).collect())
}

/// The mean number of intervals open at once over their union.
pub fn parallelism(spans: &mut [(i64, i64)]) -> usize {
    spans.sort_unstable();
    let busy: i128 = spans.iter().map(|(a, b)| i128::from(b - a)).sum();
    let mut union: i128 = 0;
    let mut current: Option<(i64, i64)> = None;
    for &(a, b) in spans.iter() {
        current = match current {
            Some((s, e)) if a <= e => Some((s, e.max(b))),
            Some((s, e)) => {
                union += i128::from(e - s);
                Some((a, b))
            }
            None => Some((a, b)),
        };
    }
    if let Some((s, e)) = current {
        union += i128::from(e - s);
    }
    if union <= 0 { 1 } else { ((busy as f64 / union as f64).round() as usize).max(1) }
}

/// debt_cost's cost of an engineer-week: the budget over the engineer-weeks of the capacity rows
/// that overlap the window.
async fn cost_per_engineer_week(session: &Session) -> Result<Option<f64>> {
    let result = session.execute("SELECT max(cost_per_engineer_week) FROM debt_cost").await?;
    Ok(result.batches.iter().find(|b| b.num_rows() > 0).and_then(|b| {
        let c = datafusion::arrow::compute::cast(b.column(0), &datafusion::arrow::datatypes::DataType::Float64).ok()?;
        let c = c.as_primitive::<Float64Type>();
        c.is_valid(0).then(|| c.value(0))
    }))
}

/// A date as the sentences write it: `14 Apr 2027`.
pub fn day(d: NaiveDate) -> String {
    d.format("%-d %b %Y").to_string()
}

#[cfg(test)]
mod tests;
