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

use std::sync::Arc;

use chrono::{Duration, NaiveDate, Utc};
use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, Date32Array, Float64Array, Int64Array, RecordBatch, StringArray, UInt64Array,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::arrow::datatypes::{Date32Type, Float64Type, Int64Type, TimestampMicrosecondType};

use crate::decisions::tax_fit;
use crate::engine::{QueryResult, Session};
use crate::error::{Error, Result};
use crate::forecast::{ARCHITECTURE_RATIO, DEBT_SHARE, Forecaster, ItemForecast};
use crate::sample::Rng;
use crate::tax::Fit;
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

impl PlanOptions {
    /// Refuses what no forecast can use, in the flags' words.
    pub fn check(&self) -> Result<()> {
        if self.trials == 0 {
            return Err(Error::Usage("--trials must be at least 1".into()));
        }
        if self.slots == Some(0) {
            return Err(Error::Usage("--slots must be at least 1".into()));
        }
        for (system, tax) in &self.paydown {
            if tax.is_some_and(|t| !(t.is_finite() && t > 0.0)) {
                return Err(Error::Usage(format!("--paydown {system}=TAX: the tax must be a number above 0")));
            }
        }
        if !(self.debt_share.is_finite() && self.debt_share >= 0.0) {
            return Err(Error::Usage(format!("--debt-share must be a number of at least 0, not {}", self.debt_share)));
        }
        if !(self.architecture_ratio.is_finite() && self.architecture_ratio > 0.0) {
            return Err(Error::Usage(format!(
                "--architecture-ratio must be a number above 0, not {}",
                self.architecture_ratio
            )));
        }
        Ok(())
    }
}

/// `--start`'s value: a day, YYYY-MM-DD.
pub fn parse_day(s: &str) -> std::result::Result<NaiveDate, String> {
    NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").map_err(|e| format!("`{s}` is not a date (YYYY-MM-DD): {e}"))
}

/// `--paydown`'s value: `SYSTEM` (to the common level) or `SYSTEM=TAX`.
pub fn parse_paydown(s: &str) -> std::result::Result<(String, Option<f64>), String> {
    let (system, tax) = match s.split_once('=') {
        Some((system, tax)) => {
            let t: f64 = tax.trim().parse().map_err(|_| format!("`{tax}` is not a tax (a number such as 1.2)"))?;
            if !(t.is_finite() && t > 0.0) {
                return Err(format!("the tax of {system} must be above 0, not {tax}"));
            }
            (system, Some(t))
        }
        None => (s, None),
    };
    let system = system.trim();
    if system.is_empty() {
        return Err("--paydown needs a system name".into());
    }
    Ok((system.to_string(), tax))
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
    /// The delayed value the earlier finishes bring forward over the team's valued items: each
    /// one's cost of delay per week times the weeks its mean finish moves; `None` when no item
    /// of the team has a cost of delay.
    pub value_brought_forward: Option<f64>,
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
    pub cost_of_delay_per_week: Option<f64>,
    pub paid_p50_finish: Option<NaiveDate>,
    pub paid_p85_finish: Option<NaiveDate>,
    /// With a paydown and a cost of delay: the value its earlier (mean) finish brings forward.
    pub value_brought_forward: Option<f64>,
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
    cost_of_delay: Option<f64>,
}

/// The forecast of the store's backlog, per team.
pub async fn plan(session: &Session, options: &PlanOptions) -> Result<Roadmap> {
    Ok(Planner::prepare(session, options).await?.run(&options.paydown))
}

/// Everything a forecast reads from the store, read once: the window's fitted model, the
/// backlog by team, each team's parallelism and the cost of an engineer-week. `run` then
/// simulates today's world beside a paid-down one, as often as asked (the report tries every
/// system for the best paydown) without reading or fitting again.
pub struct Planner {
    options: PlanOptions,
    fit: Fit,
    today: Forecaster,
    window: Option<Window>,
    start: NaiveDate,
    by_team: BTreeMap<Option<String>, Vec<BacklogRow>>,
    history: BTreeMap<Option<String>, (usize, usize)>,
    cost: Option<f64>,
}

impl Planner {
    /// Checks the options and reads what the forecast needs.
    pub async fn prepare(session: &Session, options: &PlanOptions) -> Result<Self> {
        options.check()?;
        let (fit, window) = tax_fit(session).await?;
        if fit.fitted_features() == 0 {
            return Err(Error::Usage(
                "the window has no shipped feature with estimated and actual weeks: nothing to forecast from".into(),
            ));
        }
        let today = fit.forecaster();
        let start = match options.start {
            Some(d) => d,
            None => window.map_or_else(|| Utc::now().date_naive(), |w| w.as_of.date_naive()) + Duration::days(1),
        };
        let mut by_team: BTreeMap<Option<String>, Vec<BacklogRow>> = BTreeMap::new();
        for row in backlog_rows(session).await? {
            by_team.entry(row.team.clone()).or_default().push(row);
        }
        if let Some(team) = &options.team {
            if !by_team.contains_key(&Some(team.clone())) {
                let names: Vec<&str> = by_team.keys().flatten().map(String::as_str).collect();
                let hint = match crate::views::closest_names(team, names.iter().copied()).as_slice() {
                    [] => format!(
                        "the backlog's teams are {}",
                        if names.is_empty() { "none".into() } else { names.join(", ") }
                    ),
                    close => format!("did you mean {}?", close.join(" or ")),
                };
                return Err(Error::Usage(format!("no backlog item of team `{team}`: {hint}")));
            }
            by_team.retain(|t, _| t.as_ref() == Some(team));
        }
        let history = concurrency(session).await?;
        let cost = cost_per_engineer_week(session).await?;
        Ok(Self { options: options.clone(), fit, today, window, start, by_team, history, cost })
    }

    /// The systems worth trying to pay down: touched by a backlog item, rated by the window's
    /// fit, with a tax above the common level; sorted by name.
    pub fn paydown_candidates(&self) -> Vec<String> {
        let common = self.today.common_tax();
        let mut systems: Vec<String> = self
            .by_team
            .values()
            .flatten()
            .flat_map(|i| i.systems.iter())
            .filter(|s| self.today.knows(s))
            .filter(|s| self.fit.system(s).and_then(|r| r.tax).is_some_and(|t| t > common))
            .cloned()
            .collect();
        systems.sort();
        systems.dedup();
        systems
    }

    /// The forecast, today and (when `paydown` names systems) with their debt paid down.
    pub fn run(&self, paydown: &[(String, Option<f64>)]) -> Roadmap {
        let options = &self.options;
        let today = &self.today;
        let mut paid = today.clone();
        let mut paid_systems = Vec::new();
        let mut unknown_paydown = Vec::new();
        for (system, tax) in paydown {
            if !today.knows(system) {
                unknown_paydown.push(system.clone());
                continue;
            }
            paid = paid.paid_down(system, *tax);
            paid_systems.push(PaidSystem {
                system: system.clone(),
                tax_today: self.fit.system(system).and_then(|r| r.tax),
                tax_after: tax.unwrap_or_else(|| today.common_tax()),
            });
        }
        let start = self.start;
        let date = |days: f64| start + Duration::days(days.round() as i64);
        let mut teams = Vec::new();
        for (team, items) in &self.by_team {
            let (slots, measured) = match options.slots {
                Some(n) => (n, 0),
                None => self.history.get(team).copied().unwrap_or((1, 0)),
            };
            let forecasts = |model: &Forecaster| -> Vec<ItemForecast> {
                items.iter().map(|i| model.item(&i.systems).expect("the window has fitted features")).collect()
            };
            let now = forecasts(today);
            let outcome = simulate(&jobs_of(items, &now, start), slots, options.trials, options.seed);
            let after = (!paid_systems.is_empty()).then(|| forecasts(&paid));
            let paid_outcome = after
                .as_ref()
                .map(|after| simulate(&jobs_of(items, after, start), slots, options.trials, options.seed));
            // Each valued item's delayed value brought forward: its cost of delay per week times
            // the weeks its mean finish moves (the draws are the same in both worlds).
            let brought = |j: usize| -> Option<f64> {
                let o = paid_outcome.as_ref()?;
                Some(items[j].cost_of_delay? * (outcome.finish[j].mean - o.finish[j].mean) / 7.0)
            };
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
                    cost_of_delay_per_week: i.cost_of_delay,
                    paid_p50_finish: paid_outcome.as_ref().map(|o| date(o.finish[j].p50)),
                    paid_p85_finish: paid_outcome.as_ref().map(|o| date(o.finish[j].p85)),
                    value_brought_forward: brought(j),
                })
                .collect::<Vec<PlannedItem>>();
            let value_brought_forward = exact_sum(planned.iter().filter_map(|i| i.value_brought_forward));
            let paid_team = paid_outcome.map(|o| {
                let weeks_returned: f64 = outcome.weeks.iter().zip(&o.weeks).map(|(a, b)| a - b).sum();
                PaidTeam {
                    done_p50: date(o.done.p50),
                    done_p85: date(o.done.p85),
                    weeks_returned,
                    money_returned: self.cost.map(|c| weeks_returned * c),
                    value_brought_forward,
                }
            });
            teams.push(TeamPlan {
                team: team.clone(),
                slots,
                slots_from_features: measured,
                done_p50: date(outcome.done.p50),
                done_p85: date(outcome.done.p85),
                paid: paid_team,
                items: planned,
            });
        }
        Roadmap {
            start,
            trials: options.trials,
            seed: options.seed,
            paydown: paid_systems,
            cost_per_engineer_week: self.cost,
            teams,
            window: self.window,
            unknown_paydown,
        }
    }
}

impl Roadmap {
    /// The engineer-weeks the paydown returns over every team (0 without a paydown).
    pub fn weeks_returned(&self) -> f64 {
        self.teams.iter().filter_map(|t| t.paid.as_ref()).map(|p| p.weeks_returned).sum()
    }

    /// Their money at debt_cost's rate, when the store has capacity rows.
    pub fn money_returned(&self) -> Option<f64> {
        self.cost_per_engineer_week.map(|c| c * self.weeks_returned())
    }
}

/// The backlog in priority order (items without one last, then by item_id).
async fn backlog_rows(session: &Session) -> Result<Vec<BacklogRow>> {
    let result = session
        .execute(
            "SELECT item_id, title, team, systems, estimated_weeks, priority, planned_start, cost_of_delay_per_week \
             FROM backlog ORDER BY priority NULLS LAST, item_id",
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
        let value = batch.column(7).as_primitive::<Float64Type>();
        for r in 0..batch.num_rows() {
            rows.push(BacklogRow {
                item_id: id.value(r).to_string(),
                title: title.value(r).to_string(),
                team: team.is_valid(r).then(|| team.value(r).to_string()),
                systems: crate::schema::list_items(batch.column(3), r)?.unwrap_or_default(),
                estimated_weeks: estimated.value(r),
                priority: priority.is_valid(r).then(|| priority.value(r)),
                planned_start: planned.is_valid(r).then(|| planned.value_as_date(r)).flatten(),
                cost_of_delay: value.is_valid(r).then(|| value.value(r)),
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

// How a roadmap reads: the sentences (plan's table output, the report) and the rows (every
// other format, batch).
impl Roadmap {
    /// The sentences over the table: per team, when it is done, and what the paydown moves.
    pub fn summary(&self) -> String {
        let r = self;
        let mut out =
            format!("roadmap from {} ({} trials, seed {}): P50 and P85 finish dates\n", day(r.start), r.trials, r.seed);
        for t in &r.teams {
            out.push_str(&r.team_sentence(t));
            out.push('\n');
        }
        out
    }

    /// "checkout: 9 items, 2 at once (from 310 features): done P50 3 Feb 2027, P85 10 Mar 2027;
    /// paying down auth-service (3.2x -> 1.6x) moves P85 to 20 Feb 2027 (18 days earlier) and
    /// returns 11.2 engineer-weeks ($45K)"
    pub fn team_sentence(&self, t: &TeamPlan) -> String {
        let r = self;
        let name = t.team.as_deref().unwrap_or("(no team)");
        let at_once = if t.slots_from_features > 0 {
            format!("{} at once (from {} features)", t.slots, t.slots_from_features)
        } else {
            format!("{} at once", t.slots)
        };
        let mut s = format!(
            "{name}: {} item{}, {at_once}: done P50 {}, P85 {}",
            t.items.len(),
            if t.items.len() == 1 { "" } else { "s" },
            day(t.done_p50),
            day(t.done_p85)
        );
        if let Some(p) = &t.paid {
            let systems: Vec<String> = r
                .paydown
                .iter()
                .map(|s| match s.tax_today {
                    Some(today) => format!("{} ({today:.1}x -> {:.1}x)", s.system, s.tax_after),
                    None => format!("{} (-> {:.1}x)", s.system, s.tax_after),
                })
                .collect();
            let days = (t.done_p85 - p.done_p85).num_days();
            if days == 0 && p.weeks_returned.abs() < 0.05 {
                s.push_str(&format!("; paying down {} changes nothing here", systems.join(" and ")));
                return s;
            }
            let moved = match days {
                0 => "does not move P85".to_string(),
                d if d > 0 => {
                    format!("moves P85 to {} ({d} day{} earlier)", day(p.done_p85), if d == 1 { "" } else { "s" })
                }
                d => format!("moves P85 to {} ({} days later)", day(p.done_p85), -d),
            };
            let money =
                p.money_returned.map(|m| format!(" (${})", crate::numbers::count(m.max(0.0)))).unwrap_or_default();
            s.push_str(&format!(
                "; paying down {} {moved} and returns {:.1} engineer-weeks{money}",
                systems.join(" and "),
                p.weeks_returned
            ));
            if let Some(v) = p.value_brought_forward {
                let valued = t.items.iter().filter(|i| i.cost_of_delay_per_week.is_some()).count();
                s.push_str(&format!(
                    ", bringing ${} of delayed value forward ({valued} of {} items valued)",
                    crate::numbers::count(v.max(0.0)),
                    t.items.len()
                ));
            }
        }
        s
    }

    /// One row per item, with its team's dates.
    pub fn rows(&self) -> Result<QueryResult> {
        let r = self;
        let paid = !r.paydown.is_empty();
        let mut fields = vec![
            Field::new("team", DataType::Utf8, true),
            Field::new("item_id", DataType::Utf8, false),
            Field::new("title", DataType::Utf8, false),
            Field::new("priority", DataType::Int64, true),
            Field::new("estimated_weeks", DataType::Float64, false),
            Field::new("p50_weeks", DataType::Float64, false),
            Field::new("p85_weeks", DataType::Float64, false),
            Field::new("p50_finish", DataType::Date32, false),
            Field::new("p85_finish", DataType::Date32, false),
            Field::new("flag", DataType::Utf8, true),
            Field::new("slots", DataType::UInt64, false),
            Field::new("team_done_p50", DataType::Date32, false),
            Field::new("team_done_p85", DataType::Date32, false),
            Field::new("cost_of_delay_per_week", DataType::Float64, true),
        ];
        if paid {
            fields.extend([
                Field::new("paid_p50_finish", DataType::Date32, true),
                Field::new("paid_p85_finish", DataType::Date32, true),
                Field::new("team_paid_done_p50", DataType::Date32, true),
                Field::new("team_paid_done_p85", DataType::Date32, true),
                Field::new("team_weeks_returned", DataType::Float64, true),
                Field::new("team_money_returned", DataType::Float64, true),
                Field::new("value_brought_forward", DataType::Float64, true),
                Field::new("team_value_brought_forward", DataType::Float64, true),
            ]);
        }
        let schema = Arc::new(Schema::new(fields));
        let items: Vec<(&TeamPlan, &PlannedItem)> =
            r.teams.iter().flat_map(|t| t.items.iter().map(move |i| (t, i))).collect();
        let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).expect("a date");
        let days = |d: NaiveDate| (d - epoch).num_days() as i32;
        let date = |f: &dyn Fn(&(&TeamPlan, &PlannedItem)) -> Option<NaiveDate>| -> ArrayRef {
            Arc::new(items.iter().map(|x| f(x).map(days)).collect::<Date32Array>())
        };
        let float = |f: &dyn Fn(&(&TeamPlan, &PlannedItem)) -> Option<f64>| -> ArrayRef {
            Arc::new(items.iter().map(f).collect::<Float64Array>())
        };
        let text = |f: &dyn Fn(&(&TeamPlan, &PlannedItem)) -> Option<String>| -> ArrayRef {
            Arc::new(items.iter().map(f).collect::<StringArray>())
        };
        let mut columns: Vec<ArrayRef> = vec![
            text(&|(t, _)| t.team.clone()),
            text(&|(_, i)| Some(i.item_id.clone())),
            text(&|(_, i)| Some(i.title.clone())),
            Arc::new(items.iter().map(|(_, i)| i.priority).collect::<Int64Array>()),
            float(&|(_, i)| Some(i.estimated_weeks)),
            float(&|(_, i)| Some(i.p50_weeks)),
            float(&|(_, i)| Some(i.p85_weeks)),
            date(&|(_, i)| Some(i.p50_finish)),
            date(&|(_, i)| Some(i.p85_finish)),
            text(&|(_, i)| i.flag.clone()),
            Arc::new(items.iter().map(|(t, _)| Some(t.slots as u64)).collect::<UInt64Array>()),
            date(&|(t, _)| Some(t.done_p50)),
            date(&|(t, _)| Some(t.done_p85)),
            float(&|(_, i)| i.cost_of_delay_per_week),
        ];
        if paid {
            columns.extend([
                date(&|(_, i)| i.paid_p50_finish),
                date(&|(_, i)| i.paid_p85_finish),
                date(&|(t, _)| t.paid.as_ref().map(|p| p.done_p50)),
                date(&|(t, _)| t.paid.as_ref().map(|p| p.done_p85)),
                float(&|(t, _)| t.paid.as_ref().map(|p| p.weeks_returned)),
                float(&|(t, _)| t.paid.as_ref().and_then(|p| p.money_returned)),
                float(&|(_, i)| i.value_brought_forward),
                float(&|(t, _)| t.paid.as_ref().and_then(|p| p.value_brought_forward)),
            ]);
        }
        let batch = RecordBatch::try_new(Arc::clone(&schema), columns)?;
        Ok(QueryResult { schema, batches: vec![batch], window: None })
    }
}

/// The exact sum of some values, `None` for none.
fn exact_sum(values: impl Iterator<Item = f64>) -> Option<f64> {
    let mut sum = crate::exact::ExactSum::new();
    values.for_each(|v| sum.add(v));
    sum.value()
}

/// A date as the sentences write it: `14 Apr 2027`.
pub fn day(d: NaiveDate) -> String {
    d.format("%-d %b %Y").to_string()
}

#[cfg(test)]
mod tests;
