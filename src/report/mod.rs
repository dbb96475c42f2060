//! The monthly technical-health review (data-model.md, "Decisions built on the views"): the
//! window, the headline findings as sentences in business terms, the system_health table, the
//! top delay reasons, capacity efficiency and the 80/20 split over the last four periods, DoD
//! compliance by team, the velocity trend of the slowest systems and, when the store has a
//! backlog, the roadmap review (each team's dates, the best single paydown, the items flagged).
//!
//! Every number is read from a view by SQL; this module only chooses rows, words and formats.
//! The same [`Report`] is rendered as Markdown ([`markdown`]) and as one self-contained HTML
//! page with inline SVG charts ([`html`], [`charts`]).

pub mod charts;
pub mod html;
pub mod markdown;

use chrono::{Datelike, NaiveDate};
use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Float64Type, Int64Type};

use std::cmp::Reverse;

use crate::engine::{QueryResult, Session};
use crate::error::Result;
use crate::roadmap::{PlanOptions, Planner, day};
use crate::window::Window;

/// How a column's numbers read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Text,
    Count,
    /// A slowdown: `3.22x`.
    Ratio,
    /// Days or weeks: `341.5`.
    Amount,
    /// Money in the store's currency: `$1.56M`.
    Money,
    /// A share of 1: `54%`.
    Share,
    /// Hours: `71.7 h`.
    Hours,
    /// Percentage points (a gap between shares): `-6.1 pts`.
    Points,
    /// A small rate, to two decimals: `0.23`.
    Rate,
}

/// One cell read from a view.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Int(i64),
    Float(f64),
    Text(String),
}

impl Value {
    pub fn number(&self) -> Option<f64> {
        match self {
            Value::Int(i) => Some(*i as f64),
            Value::Float(f) => Some(*f),
            _ => None,
        }
    }

    pub fn text(&self) -> Option<&str> {
        match self {
            Value::Text(s) => Some(s),
            _ => None,
        }
    }

    /// The cell as a reader sees it.
    pub fn show(&self, kind: Kind) -> String {
        let Some(x) = self.number() else {
            return match self {
                Value::Text(s) => s.clone(),
                _ => "–".into(),
            };
        };
        match kind {
            Kind::Text | Kind::Count => count(x),
            Kind::Ratio => format!("{x:.2}x"),
            Kind::Amount => trim(format!("{x:.1}")),
            Kind::Money => money(x),
            Kind::Share => percent(x),
            Kind::Hours => format!("{x:.1} h"),
            Kind::Points => format!("{:+.1} pts", x * 100.0),
            Kind::Rate => format!("{x:.2}"),
        }
    }
}

fn trim(s: String) -> String {
    s.strip_suffix(".0").map(str::to_string).unwrap_or(s)
}

pub use crate::numbers::{count, money, percent};

/// A table of a section: the columns shown and their rows.
#[derive(Debug, Clone)]
pub struct Table {
    pub columns: Vec<(String, Kind)>,
    pub rows: Vec<Vec<Value>>,
}

impl Table {
    /// The rows of `result`, typed by the kinds given per column name (text for the others).
    fn from_result(result: &QueryResult, kinds: &[(&str, Kind)]) -> Result<Self> {
        let kind_of = |name: &str| kinds.iter().find(|(n, _)| *n == name).map_or(Kind::Text, |(_, k)| *k);
        let columns: Vec<(String, Kind)> =
            result.schema.fields().iter().map(|f| (f.name().clone(), kind_of(f.name()))).collect();
        Ok(Self { columns, rows: values(result)? })
    }

    pub fn column(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|(n, _)| n == name)
    }

    /// The cell of `row` in the column named `name` (null when there is no such column).
    pub fn get<'r>(&self, row: &'r [Value], name: &str) -> &'r Value {
        static NULL: Value = Value::Null;
        self.column(name).and_then(|i| row.get(i)).unwrap_or(&NULL)
    }

    /// The cells of one column.
    pub fn cells(&self, name: &str) -> Vec<&Value> {
        match self.column(name) {
            Some(i) => self.rows.iter().map(|r| &r[i]).collect(),
            None => vec![],
        }
    }

    pub fn shown(&self, row: usize, column: usize) -> String {
        self.rows[row][column].show(self.columns[column].1)
    }
}

/// The cells of a result: integers, floats, and everything else as text.
fn values(result: &QueryResult) -> Result<Vec<Vec<Value>>> {
    let mut rows = Vec::new();
    for batch in &result.batches {
        let columns: Vec<Vec<Value>> = batch
            .columns()
            .iter()
            .map(|c| {
                let t = c.data_type();
                Ok(if t.is_integer() {
                    let c = cast(c, &DataType::Int64)?;
                    let c = c.as_primitive::<Int64Type>();
                    (0..c.len()).map(|i| if c.is_valid(i) { Value::Int(c.value(i)) } else { Value::Null }).collect()
                } else if t.is_floating() || matches!(t, DataType::Decimal128(..) | DataType::Decimal256(..)) {
                    let c = cast(c, &DataType::Float64)?;
                    let c = c.as_primitive::<Float64Type>();
                    (0..c.len()).map(|i| if c.is_valid(i) { Value::Float(c.value(i)) } else { Value::Null }).collect()
                } else {
                    let c = cast(c, &DataType::Utf8)?;
                    let c = c.as_string::<i32>();
                    (0..c.len())
                        .map(|i| if c.is_valid(i) { Value::Text(c.value(i).to_string()) } else { Value::Null })
                        .collect()
                })
            })
            .collect::<Result<_>>()?;
        for i in 0..batch.num_rows() {
            rows.push(columns.iter().map(|c| c[i].clone()).collect());
        }
    }
    Ok(rows)
}

/// A chart of a section, drawn in the HTML report.
#[derive(Debug, Clone)]
pub enum Chart {
    /// One horizontal bar per label, with an optional reference line (1.0x for slowdown).
    /// `intervals`: a (low, high) whisker per bar where there is one (empty: none).
    Bars {
        title: String,
        labels: Vec<String>,
        values: Vec<f64>,
        intervals: Vec<Option<(f64, f64)>>,
        kind: Kind,
        reference: Option<f64>,
    },
    /// Lines over categories on the x axis (quarters, months); gaps where a value is missing.
    Lines { title: String, x: Vec<String>, series: Vec<(String, Vec<Option<f64>>)>, kind: Kind },
}

/// One section of the review.
#[derive(Debug, Clone)]
pub struct Section {
    /// The anchor of the section in HTML.
    pub id: &'static str,
    pub title: &'static str,
    /// What the section shows and where its numbers come from.
    pub about: String,
    pub table: Table,
    pub charts: Vec<Chart>,
    /// What to say when the table is empty.
    pub empty: &'static str,
}

/// The whole review.
#[derive(Debug, Clone)]
pub struct Report {
    pub store: String,
    pub window: Window,
    pub headlines: Vec<String>,
    pub sections: Vec<Section>,
}

impl Report {
    pub fn section(&self, id: &str) -> Option<&Section> {
        self.sections.iter().find(|s| s.id == id)
    }

    /// "1 Aug 2026 – 31 Oct 2026 (90 days)"
    pub fn window_text(&self) -> String {
        format!(
            "{} – {} ({} days)",
            self.window.start().format("%-d %b %Y"),
            self.window.as_of.format("%-d %b %Y"),
            self.window.days
        )
    }
}

/// "2026-Q3" for a calendar quarter, else "2026-07-01 – 2026-09-30".
fn period_label(start: &str, end: &str) -> String {
    let (Ok(s), Ok(e)) = (NaiveDate::parse_from_str(start, "%Y-%m-%d"), NaiveDate::parse_from_str(end, "%Y-%m-%d"))
    else {
        return format!("{start} – {end}");
    };
    let quarter = s.day() == 1 && (s.month() - 1) % 3 == 0 && s.checked_add_months(chrono::Months::new(3)) == Some(e);
    if quarter {
        format!("{}-Q{}", s.year(), (s.month() - 1) / 3 + 1)
    } else if s.day() == 1 && s.checked_add_months(chrono::Months::new(1)) == Some(e) {
        s.format("%b %Y").to_string()
    } else {
        format!("{s} – {}", e.pred_opt().unwrap_or(e))
    }
}

/// The rows of the capacity section: efficiency and split joined per capacity row, for the last
/// four periods that started by the end of the window, organisation-wide rows when the store has
/// any (else every team's rows).
const CAPACITY_SQL: &str = "
WITH scope AS (SELECT coalesce(bool_or(team IS NULL), false) AS org_wide FROM capacity_efficiency),
periods AS (
    SELECT DISTINCT period_start FROM capacity_efficiency, scope
    WHERE (team IS NULL) = scope.org_wide AND period_start <= CAST(window_end() AS DATE)
    ORDER BY period_start DESC LIMIT 4
)
SELECT CAST(e.period_start AS VARCHAR) AS starts, CAST(e.period_end AS VARCHAR) AS ends,
       coalesce(e.team, '(organisation)') AS scope, e.budget, e.features_shipped, e.efficiency, e.absorbed_budget,
       e.absorbed_budget / NULLIF(e.budget, 0) AS absorbed_share,
       s.quality_share, s.quality_share_target, s.gap
FROM capacity_efficiency e
JOIN capacity_split s
  ON s.period_start = e.period_start AND s.period_end = e.period_end AND s.team IS NOT DISTINCT FROM e.team
CROSS JOIN scope
WHERE (e.team IS NULL) = scope.org_wide AND e.period_start IN (SELECT period_start FROM periods)
ORDER BY e.period_start, e.team NULLS FIRST";

/// Gathers the review from the views, in the session's window: one function per section, each
/// reading its view's columns by name.
pub async fn build(session: &Session) -> Result<Report> {
    let window = session.window().await?;
    let in_window = format!("in the {} days to {}", window.days, window.as_of.format("%-d %b %Y"));
    let mut review = Review { session, window, in_window, headlines: Vec::new() };
    let slowdown = review.slowdown().await?;
    let health = review.system_health(&slowdown).await?;
    let delay_cost = review.delay_cost(&slowdown).await?;
    review.incidents().await?;
    let reasons = review.delay_reasons().await?;
    let capacity = review.capacity().await?;
    let dod = review.dod().await?;
    let dod_impact = review.dod_impact().await?;
    let trend = review.trend(&slowdown).await?;
    let mut sections = vec![health, delay_cost, reasons, capacity, dod, dod_impact, trend];
    sections.extend(review.roadmap().await?);
    Ok(Report { store: session.engine().store().to_string(), window, headlines: review.headlines, sections })
}

/// What the sections share while the review is gathered: the session, its window, and the
/// headlines found so far (in the order the sections find them).
struct Review<'a> {
    session: &'a Session,
    window: Window,
    /// "in the 90 days to 31 Oct 2026"
    in_window: String,
    headlines: Vec<String>,
}

impl Review<'_> {
    async fn table(&self, sql: &str, kinds: &[(&str, Kind)]) -> Result<Table> {
        Table::from_result(&self.session.execute(sql).await?, kinds)
    }

    /// The systems with an attributed tax, the highest first (the health chart, the headline,
    /// the trend).
    async fn slowdown(&mut self) -> Result<Table> {
        let slowdown = self
            .table(
                "SELECT system, features, tax, tax_low, tax_high, naive_ratio, confidence FROM system_tax \
                 WHERE tax IS NOT NULL ORDER BY tax DESC, system",
                &[("features", Kind::Count), ("tax", Kind::Ratio), ("tax_low", Kind::Ratio), ("tax_high", Kind::Ratio)],
            )
            .await?;
        Ok(slowdown)
    }

    /// System health, the table the review starts from, with the costliest system's and the
    /// slowest system's headlines.
    async fn system_health(&mut self, slowdown: &Table) -> Result<Section> {
        let in_window = self.in_window.clone();
        let health = self
            .table(
                "SELECT * FROM system_health",
                &[
                    ("features", Kind::Count),
                    ("slowdown_ratio", Kind::Ratio),
                    ("total_delay_days", Kind::Amount),
                    ("cost", Kind::Money),
                    ("incidents", Kind::Count),
                    ("sev1", Kind::Count),
                    ("mttr_hours", Kind::Hours),
                    ("users_affected", Kind::Count),
                    ("debt_related_share", Kind::Share),
                    ("tax", Kind::Ratio),
                    ("tax_low", Kind::Ratio),
                    ("tax_high", Kind::Ratio),
                    ("attributed_cost", Kind::Money),
                    ("deployments", Kind::Count),
                    ("change_failure_rate", Kind::Share),
                    ("cfr_low", Kind::Share),
                    ("cfr_high", Kind::Share),
                    ("lead_time_hours", Kind::Hours),
                    ("recovery_hours", Kind::Hours),
                ],
            )
            .await?;
        // A system the data cannot rate (low confidence) is never a headline.
        let rated = |system: Option<&str>| {
            slowdown.rows.iter().any(|r| {
                slowdown.get(r, "system").text() == system && slowdown.get(r, "confidence").text() != Some("low")
            })
        };
        let costliest = health
            .rows
            .iter()
            .filter(|r| health.get(r, "attributed_cost").number().is_some_and(|c| c > 0.0))
            .filter(|r| rated(health.get(r, "system").text()))
            .max_by(|a, b| {
                let cost = |r| health.get(r, "attributed_cost").number().unwrap_or(0.0);
                cost(a)
                    .total_cmp(&cost(b))
                    .then_with(|| health.get(b, "system").text().cmp(&health.get(a, "system").text()))
            });
        if let Some(row) = costliest {
            let system = health.get(row, "system").text().unwrap_or("?");
            self.headlines.push(format!(
                "Paying down {system} debt is worth {} of engineering time {in_window} (its attributed share of the \
                 weeks lost beyond estimates), and {} delay-days on the features that touched it.",
                health.get(row, "attributed_cost").show(Kind::Money),
                health.get(row, "total_delay_days").show(Kind::Amount),
            ));
        }
        if let Some(row) = slowdown.rows.iter().find(|r| slowdown.get(r, "confidence").text() != Some("low")) {
            let system = slowdown.get(row, "system").text().unwrap_or("?");
            let tax = slowdown.get(row, "tax");
            self.headlines.push(format!(
                "{system} has a {} velocity tax (90%: {}–{}, from {} features): a feature estimated at 1 week that \
                 touches only it takes {} weeks.",
                tax.show(Kind::Ratio),
                slowdown.get(row, "tax_low").show(Kind::Ratio),
                slowdown.get(row, "tax_high").show(Kind::Ratio),
                slowdown.get(row, "features").show(Kind::Count),
                tax.number().map_or("?".into(), |r| format!("{r:.1}"))
            ));
            // Its delivery beside its tax, when it deploys.
            let keys = health.rows.iter().find(|r| health.get(r, "system").text() == Some(system));
            if let Some(keys) = keys.filter(|r| health.get(r, "change_failure_rate").number().is_some()) {
                let at = |c: &str| health.get(keys, c);
                self.headlines.push(format!(
                    "{system}: {} tax, change failure rate {} (90%: {}–{}, {} deploys), median lead time {}, recovery \
                     {} {in_window} (delivery_performance; incidents tied to the deployment that caused them).",
                    tax.show(Kind::Ratio),
                    at("change_failure_rate").show(Kind::Share),
                    at("cfr_low").show(Kind::Share),
                    at("cfr_high").show(Kind::Share),
                    at("deployments").show(Kind::Count),
                    at("lead_time_hours").show(Kind::Hours),
                    at("recovery_hours").show(Kind::Hours),
                ));
            }
        }
        let thin: Vec<&str> = slowdown
            .rows
            .iter()
            .filter(|r| slowdown.get(r, "confidence").text() == Some("low"))
            .filter_map(|r| slowdown.get(r, "system").text())
            .collect();
        if !thin.is_empty() {
            self.headlines.push(format!(
                "Too little data to rate {} (low confidence in system_tax: few features or a wide interval); \
                 their taxes are shown but not relied on.",
                thin.join(", ")
            ));
        }
        Ok(Section {
            id: "system-health",
            title: "System health",
            about: format!(
                "Slowdown, delay and cost (slowdown_by_system, debt_cost), the attributed tax and its cost (system_tax) beside incidents (incident_impact) and the delivery keys (delivery_performance), {in_window}; costliest first."
            ),
            table: health,
            charts: vec![Chart::Bars {
                title: "Velocity tax by system (attributed, with its 90% interval)".into(),
                labels: slowdown.cells("system").iter().map(|v| v.show(Kind::Text)).collect(),
                values: slowdown.cells("tax").iter().map(|v| v.number().unwrap_or(0.0)).collect(),
                intervals: slowdown
                    .rows
                    .iter()
                    .map(|r| slowdown.get(r, "tax_low").number().zip(slowdown.get(r, "tax_high").number()))
                    .collect(),
                kind: Kind::Ratio,
                reference: Some(1.0),
            }],
            empty: "No shipped features or incidents in this window.",
        })
    }

    /// What the debt costs in delayed value (delay_cost), with the costliest rated system's
    /// headline; the table is empty when no feature of the window has a cost of delay.
    async fn delay_cost(&mut self, slowdown: &Table) -> Result<Section> {
        let in_window = self.in_window.clone();
        let money = [
            ("features_valued", Kind::Count),
            ("features_unvalued", Kind::Count),
            ("attributed_delay_weeks", Kind::Amount),
            ("cost_of_delay", Kind::Money),
            ("cost_of_delay_per_month", Kind::Money),
            ("cost_per_month_low", Kind::Money),
            ("cost_per_month_high", Kind::Money),
            ("share_of_cost_of_delay", Kind::Share),
        ];
        let costs = self
            .table(
                "SELECT system, features_valued, features_unvalued, attributed_delay_weeks, cost_of_delay, \
                 cost_of_delay_per_month, cost_per_month_low, cost_per_month_high, share_of_cost_of_delay \
                 FROM delay_cost WHERE features_valued > 0",
                &money,
            )
            .await?;
        let rated = |system: Option<&str>| {
            slowdown.rows.iter().any(|r| {
                slowdown.get(r, "system").text() == system && slowdown.get(r, "confidence").text() != Some("low")
            })
        };
        let organisation = costs.rows.iter().find(|r| costs.get(r, "system").text() == Some(crate::tax::ORGANISATION));
        // The view lists the costliest system first.
        let top = costs
            .rows
            .iter()
            .filter(|r| costs.get(r, "cost_of_delay").number().is_some_and(|c| c > 0.0))
            .find(|r| rated(costs.get(r, "system").text()));
        if let (Some(row), Some(org)) = (top, organisation) {
            let at = |c: &str| costs.get(row, c);
            self.headlines.push(format!(
                "{}'s debt costs {}/month in delayed value (90%: {}–{}), {} of the value lost to late features \
                 {in_window} (from {} valued features; {} without a cost of delay left out).",
                at("system").show(Kind::Text),
                at("cost_of_delay_per_month").show(Kind::Money),
                at("cost_per_month_low").show(Kind::Money),
                at("cost_per_month_high").show(Kind::Money),
                at("share_of_cost_of_delay").show(Kind::Share),
                costs.get(org, "features_valued").show(Kind::Count),
                costs.get(org, "features_unvalued").show(Kind::Count),
            ));
        }
        let systems: Vec<&Vec<Value>> =
            costs.rows.iter().filter(|r| costs.get(r, "system").text() != Some(crate::tax::ORGANISATION)).collect();
        Ok(Section {
            id: "cost-of-delay",
            title: "Cost of delay",
            about: format!(
                "The value lost to late features (delay_cost), {in_window}: each valued feature's weeks late, shared \
                 among its systems by their attributed tax, times its cost of delay per week; per month of the window, \
                 with the interval of the attribution. Features without a cost of delay are counted and left out."
            ),
            charts: vec![Chart::Bars {
                title: "Cost of delay per month by system".into(),
                labels: systems.iter().map(|r| costs.get(r, "system").show(Kind::Text)).collect(),
                values: systems
                    .iter()
                    .map(|r| costs.get(r, "cost_of_delay_per_month").number().unwrap_or(0.0))
                    .collect(),
                intervals: systems
                    .iter()
                    .map(|r| {
                        costs.get(r, "cost_per_month_low").number().zip(costs.get(r, "cost_per_month_high").number())
                    })
                    .collect(),
                kind: Kind::Money,
                reference: None,
            }],
            table: costs,
            empty: "No shipped feature in this window has a cost of delay (cost_of_delay_per_week).",
        })
    }

    /// The headline of the system that caused the most incidents.
    async fn incidents(&mut self) -> Result<()> {
        let incidents = self
            .table(
                "SELECT system, incidents, sev1, users_affected, debt_related_share FROM incident_impact LIMIT 1",
                &[],
            )
            .await?;
        if let Some(row) = incidents.rows.first() {
            let at = |c: &str| incidents.get(row, c);
            let debt = at("debt_related_share").number().map(|s| format!("; {} were debt-related", percent(s)));
            self.headlines.push(format!(
                "{} caused the most incidents {}: {} ({} sev1), affecting {} users{}.",
                at("system").show(Kind::Text),
                self.in_window,
                at("incidents").show(Kind::Count),
                at("sev1").show(Kind::Count),
                at("users_affected").show(Kind::Count),
                debt.unwrap_or_default(),
            ));
        }
        Ok(())
    }

    /// The top delay reasons.
    async fn delay_reasons(&mut self) -> Result<Section> {
        let in_window = self.in_window.clone();
        let reasons = self
            .table(
                "SELECT * FROM delay_by_reason LIMIT 10",
                &[
                    ("features", Kind::Count),
                    ("total_delay_days", Kind::Amount),
                    ("attributed_delay_days", Kind::Amount),
                    ("share_of_delay", Kind::Share),
                ],
            )
            .await?;
        if let Some(row) = reasons.rows.first() {
            self.headlines.push(format!(
                "The top cause of delay is {}: {} delay-days, {} of all delay {in_window}.",
                reasons.get(row, "reason").show(Kind::Text),
                reasons.get(row, "attributed_delay_days").show(Kind::Amount),
                reasons.get(row, "share_of_delay").show(Kind::Share),
            ));
        }
        Ok(Section {
            id: "delay-reasons",
            title: "Top delay reasons",
            about: format!(
                "Delay-days by reason (delay_by_reason), {in_window}; a feature's delay is shared equally among its reasons."
            ),
            charts: vec![Chart::Bars {
                title: "Delay-days by reason".into(),
                labels: reasons.cells("reason").iter().map(|v| v.show(Kind::Text)).collect(),
                values: reasons.cells("attributed_delay_days").iter().map(|v| v.number().unwrap_or(0.0)).collect(),
                intervals: vec![],
                kind: Kind::Amount,
                reference: None,
            }],
            table: reasons,
            empty: "No delayed features in this window.",
        })
    }

    /// Capacity: efficiency and the 80/20 split over the last four periods.
    async fn capacity(&mut self) -> Result<Section> {
        let capacity = self
            .table(
                CAPACITY_SQL,
                &[
                    ("budget", Kind::Money),
                    ("features_shipped", Kind::Count),
                    ("efficiency", Kind::Share),
                    ("absorbed_budget", Kind::Money),
                    ("absorbed_share", Kind::Share),
                    ("quality_share", Kind::Share),
                    ("quality_share_target", Kind::Share),
                    ("gap", Kind::Points),
                ],
            )
            .await?;
        let org_wide = capacity.cells("scope").iter().all(|t| t.text() == Some("(organisation)"));
        // A period is complete when it ended by the end of the window (periods end exclusive).
        let as_of = self.window.as_of.date_naive();
        let as_of_date = as_of.succ_opt().unwrap_or(as_of).to_string();
        let ends = |r: &[Value]| capacity.get(r, "ends").text().unwrap_or("").to_string();
        let labels: Vec<String> = capacity
            .rows
            .iter()
            .map(|r| {
                let (start, end) = (capacity.get(r, "starts").text().unwrap_or(""), ends(r));
                let label = period_label(start, &end);
                if *end > *as_of_date { format!("{label} (to date)") } else { label }
            })
            .collect();
        let last_complete = capacity
            .rows
            .iter()
            .enumerate()
            .rev()
            .find(|(_, r)| {
                *ends(r) <= *as_of_date && !ends(r).is_empty() && capacity.get(r, "efficiency").number().is_some()
            })
            .filter(|_| org_wide);
        if let Some((i, row)) = last_complete {
            let at = |c: &str| capacity.get(row, c);
            self.headlines.push(format!(
                "{} of the budget, {}, was absorbed by debt in {} (efficiency {}: estimated / actual weeks).",
                at("absorbed_share").show(Kind::Share),
                at("absorbed_budget").show(Kind::Money),
                labels[i],
                at("efficiency").show(Kind::Share),
            ));
            if let (Some(q), Some(t)) = (at("quality_share").number(), at("quality_share_target").number()) {
                let verdict = if q >= t { "meeting" } else { "short of" };
                self.headlines.push(format!(
                    "Quality work was {} of engineering time in {}, {verdict} the {} target.",
                    percent(q),
                    labels[i],
                    percent(t)
                ));
            }
        }
        // The period reads as its label; the raw dates stay in the views.
        let mut table = capacity.clone();
        let dates: Vec<usize> = ["starts", "ends"].iter().filter_map(|c| table.column(c)).collect();
        if let [first, second] = dates[..] {
            table.columns.splice(first..=second, [("period".to_string(), Kind::Text)]);
            for (row, label) in table.rows.iter_mut().zip(&labels) {
                row.splice(first..=second, [Value::Text(label.clone())]);
            }
        }
        let series_of = |column: &str| capacity.cells(column).iter().map(|v| v.number()).collect::<Vec<_>>();
        Ok(Section {
            id: "capacity",
            title: "Capacity efficiency and the 80/20 split",
            about: format!(
                "The last four capacity periods (capacity_efficiency, capacity_split{}): efficiency = estimated / actual weeks of the features shipped; the absorbed budget is what the shortfall cost; the quality share is measured against its target.",
                if org_wide { ", organisation-wide rows" } else { ", every team's rows" }
            ),
            table,
            charts: if org_wide && !labels.is_empty() {
                vec![Chart::Lines {
                    title: "Efficiency and quality share per period".into(),
                    x: labels.clone(),
                    series: vec![
                        ("efficiency".into(), series_of("efficiency")),
                        ("quality share".into(), series_of("quality_share")),
                        ("quality target".into(), series_of("quality_share_target")),
                    ],
                    kind: Kind::Share,
                }]
            } else {
                vec![]
            },
            empty: "No capacity rows up to the end of this window: ingest the capacity table.",
        })
    }

    /// Definition of done by team, with the best and the worst team's headline.
    async fn dod(&mut self) -> Result<Section> {
        let result = self.session.execute("SELECT * FROM dod_compliance").await?;
        let shares: Vec<(&str, Kind)> = result
            .schema
            .fields()
            .iter()
            .filter(|f| f.name().starts_with("dod_") || f.name() == "fully_done")
            .map(|f| (f.name().as_str(), Kind::Share))
            .chain([("features", Kind::Count)])
            .collect();
        let mut dod = Table::from_result(&result, &shares)?;
        let mut teams: Vec<(&str, f64)> = dod
            .rows
            .iter()
            .filter_map(|r| Some((dod.get(r, "team").text()?, dod.get(r, "fully_done").number()?)))
            .filter(|(t, _)| *t != "(none)")
            .collect();
        teams.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(b.0)));
        if let (Some(best), Some(worst)) = (teams.first(), teams.last())
            && teams.len() > 1
        {
            self.headlines.push(format!(
                "{} ships {} of its features fully done (all eight DoD items); {} only {}.",
                best.0,
                percent(best.1),
                worst.0,
                percent(worst.1)
            ));
        }
        for (name, _) in &mut dod.columns {
            if let Some(item) = name.strip_prefix("dod_") {
                *name = item.to_string();
            }
        }
        Ok(Section {
            id: "dod",
            title: "Definition of done by team",
            about: format!(
                "Share of shipped features meeting each definition-of-done item (dod_compliance), {}.",
                self.in_window
            ),
            table: dod,
            charts: vec![],
            empty: "No shipped features in this window.",
        })
    }

    /// Whether the definition of done pays (dod_impact): one headline per item whose comparison
    /// clears its confidence bar (not low) and whose interval leaves out 1.
    async fn dod_impact(&mut self) -> Result<Section> {
        let in_window = self.in_window.clone();
        let impact = self
            .table(
                "SELECT item, features_with, features_without, incidents_per_feature_with, \
                 incidents_per_feature_without, incident_rate_ratio, rr_low, rr_high, mttr_hours_with, \
                 mttr_hours_without, effort_ratio_with, effort_ratio_without, confidence FROM dod_impact",
                &[
                    ("features_with", Kind::Count),
                    ("features_without", Kind::Count),
                    ("incidents_per_feature_with", Kind::Rate),
                    ("incidents_per_feature_without", Kind::Rate),
                    ("incident_rate_ratio", Kind::Ratio),
                    ("rr_low", Kind::Ratio),
                    ("rr_high", Kind::Ratio),
                    ("mttr_hours_with", Kind::Hours),
                    ("mttr_hours_without", Kind::Hours),
                    ("effort_ratio_with", Kind::Ratio),
                    ("effort_ratio_without", Kind::Ratio),
                ],
            )
            .await?;
        for row in &impact.rows {
            let at = |c: &str| impact.get(row, c);
            let (Some(item), Some(ratio), Some(low), Some(high)) =
                (at("item").text(), at("incident_rate_ratio").number(), at("rr_low").number(), at("rr_high").number())
            else {
                continue;
            };
            if at("confidence").text() == Some("low") || (low <= 1.0 && 1.0 <= high) || ratio <= 0.0 {
                continue;
            }
            let name = dod_item_name(item);
            // Said the way the comparison runs: the side with more incidents against the other.
            let (side, times, from, to) =
                if ratio < 1.0 { ("without", 1.0 / ratio, 1.0 / high, 1.0 / low) } else { ("with", ratio, low, high) };
            let effort = match (at("effort_ratio_with").number(), at("effort_ratio_without").number()) {
                (Some(with), Some(without)) if with > 0.0 => {
                    let (this, other) = if side == "without" { (without, with) } else { (with, without) };
                    let change = this / other - 1.0;
                    match change {
                        c if c.abs() < 0.005 => " and took as long".to_string(),
                        c if c < 0.0 => format!(" and took {} less time", percent(-c)),
                        c => format!(" and took {} more time", percent(c)),
                    }
                }
                _ => String::new(),
            };
            self.headlines.push(format!(
                "Features shipped {side} {name} {in_window} caused {times:.1}x the incidents of the others \
                 (90%: {from:.1}–{to:.1}, within the same teams and systems){effort}."
            ));
        }
        Ok(Section {
            id: "dod-impact",
            title: "Does the definition of done pay?",
            about: format!(
                "Incidents caused in the 90 days after shipping by features with and without each definition-of-done \
                 item (dod_impact), {in_window}: the rate ratio with / without within the same team and systems, with \
                 its 90% interval (below 1: fewer incidents with the item), and the median actual / estimated weeks \
                 of each side."
            ),
            table: impact,
            charts: vec![],
            empty: "No shipped features with a recorded definition of done in this window.",
        })
    }

    /// Velocity trend of the three slowest systems over the twelve months to the window's end:
    /// one row per month, one column per system.
    async fn trend(&mut self, slowdown: &Table) -> Result<Section> {
        let slowest: Vec<String> = slowdown.cells("system").iter().take(3).map(|v| v.show(Kind::Text)).collect();
        let kinds = [("features", Kind::Count), ("slowdown_ratio", Kind::Ratio)];
        let trend = if slowest.is_empty() {
            let empty = QueryResult { schema: std::sync::Arc::new(trend_schema()), batches: vec![], window: None };
            Table::from_result(&empty, &kinds)?
        } else {
            let list = slowest.iter().map(|s| format!("'{}'", s.replace('\'', "''"))).collect::<Vec<_>>().join(", ");
            self.table(
                &format!(
                    "SELECT CAST(month AS VARCHAR) AS month, system, features, slowdown_ratio FROM velocity_trend \
                     WHERE system IN ({list}) AND month > CAST(window_end() AS DATE) - INTERVAL '1 year' \
                     AND month <= CAST(window_end() AS DATE) ORDER BY month, system"
                ),
                &kinds,
            )
            .await?
        };
        let mut months: Vec<String> = trend.cells("month").iter().map(|v| v.show(Kind::Text)).collect();
        months.dedup();
        let ratio = |month: &str, system: &str| {
            trend
                .rows
                .iter()
                .find(|r| trend.get(r, "month").text() == Some(month) && trend.get(r, "system").text() == Some(system))
                .map_or(Value::Null, |r| trend.get(r, "slowdown_ratio").clone())
        };
        let series: Vec<(String, Vec<Option<f64>>)> = slowest
            .iter()
            .map(|system| (system.clone(), months.iter().map(|m| ratio(m, system).number()).collect()))
            .collect();
        let pivot = Table {
            columns: std::iter::once(("month".to_string(), Kind::Text))
                .chain(slowest.iter().map(|s| (s.clone(), Kind::Ratio)))
                .collect(),
            rows: months
                .iter()
                .map(|m| {
                    std::iter::once(Value::Text(month_label(m))).chain(slowest.iter().map(|s| ratio(m, s))).collect()
                })
                .collect(),
        };
        Ok(Section {
            id: "trend",
            title: "Velocity trend of the slowest systems",
            about: format!(
                "Monthly slowdown (velocity_trend) over the twelve months to {} of the three slowest systems in the window: {}.",
                self.window.as_of.format("%-d %b %Y"),
                if slowest.is_empty() { "none".into() } else { slowest.join(", ") }
            ),
            charts: if months.is_empty() {
                vec![]
            } else {
                vec![Chart::Lines {
                    title: "Slowdown per month".into(),
                    x: months.iter().map(|m| month_label(m)).collect(),
                    series,
                    kind: Kind::Ratio,
                }]
            },
            table: pivot,
            empty: "No shipped features on these systems in the last twelve months.",
        })
    }
}

impl Review<'_> {
    /// The roadmap review, when the store has a backlog: each team's P85 date today and with the
    /// single paydown that returns the most engineer-weeks (every system the backlog touches with
    /// a tax above the common level is tried, as `debtlens plan --paydown SYSTEM` would), then
    /// the items flagged. The forecast is `debtlens plan`'s with its defaults.
    async fn roadmap(&mut self) -> Result<Vec<Section>> {
        let backlog = self.table("SELECT count(*) AS items FROM backlog", &[]).await?;
        let items = backlog.rows.first().and_then(|r| backlog.get(r, "items").number()).unwrap_or(0.0);
        if items == 0.0 {
            return Ok(vec![]);
        }
        let options = PlanOptions::default();
        let about = |tail: &str| {
            format!(
                "The backlog forecast (debtlens plan: {} trials, seed {}, from the day after the window), {}; {tail}",
                count(options.trials as f64),
                options.seed,
                self.in_window
            )
        };
        let teams_columns = vec![
            ("team".to_string(), Kind::Text),
            ("items".to_string(), Kind::Count),
            ("flagged".to_string(), Kind::Count),
            ("at_once".to_string(), Kind::Count),
            ("done_p50".to_string(), Kind::Text),
            ("done_p85".to_string(), Kind::Text),
        ];
        let planner = match Planner::prepare(self.session, &options).await {
            Ok(planner) => planner,
            // No shipped feature in the window to fit the taxes from: the section says so.
            Err(crate::error::Error::Usage(why)) => {
                return Ok(vec![Section {
                    id: "roadmap",
                    title: "Roadmap review",
                    about: about(&format!("{why}.")),
                    table: Table { columns: teams_columns, rows: vec![] },
                    charts: vec![],
                    empty: "No forecast: the window has no shipped feature to measure the taxes from.",
                }]);
            }
            Err(e) => return Err(e),
        };
        let today = planner.run(&[]);
        let mut best: Option<crate::roadmap::Roadmap> = None;
        for system in planner.paydown_candidates() {
            let paid = planner.run(&[(system, None)]);
            if best.as_ref().is_none_or(|b| paid.weeks_returned() > b.weeks_returned()) {
                best = Some(paid);
            }
        }
        let best = best.filter(|b| b.weeks_returned() > 0.0);
        let mut columns = teams_columns;
        if best.is_some() {
            columns.push(("paid_done_p85".to_string(), Kind::Text));
            columns.push(("days_earlier".to_string(), Kind::Count));
        }
        let rows = today
            .teams
            .iter()
            .map(|t| {
                let mut row = vec![
                    t.team.as_ref().map_or(Value::Text("(no team)".into()), |n| Value::Text(n.clone())),
                    Value::Int(t.items.len() as i64),
                    Value::Int(t.items.iter().filter(|i| i.flag.is_some()).count() as i64),
                    Value::Int(t.slots as i64),
                    Value::Text(day(t.done_p50)),
                    Value::Text(day(t.done_p85)),
                ];
                if let Some(b) = &best {
                    let paid = b.teams.iter().find(|p| p.team == t.team).and_then(|p| p.paid.as_ref());
                    row.push(paid.map_or(Value::Null, |p| Value::Text(day(p.done_p85))));
                    row.push(paid.map_or(Value::Null, |p| Value::Int((t.done_p85 - p.done_p85).num_days())));
                }
                row
            })
            .collect();
        let best_text = match &best {
            Some(b) => {
                let paid = &b.paydown[0];
                let moved = today
                    .teams
                    .iter()
                    .zip(&b.teams)
                    .filter_map(|(t, p)| Some((t, p.paid.as_ref()?)))
                    .filter(|(t, p)| p.done_p85 < t.done_p85)
                    .max_by_key(|(t, p)| ((t.done_p85 - p.done_p85).num_days(), Reverse(t.team.clone())));
                let money = b.money_returned().map(|m| format!(" ({})", money(m.max(0.0)))).unwrap_or_default();
                let tax = paid.tax_today.map(|t| format!(" ({t:.1}x today)")).unwrap_or_default();
                let moves = moved.map_or_else(String::new, |(t, p)| {
                    format!(
                        " and moves {}'s P85 from {} to {}",
                        t.team.as_deref().unwrap_or("(no team)"),
                        day(t.done_p85),
                        day(p.done_p85)
                    )
                });
                self.headlines.push(format!(
                    "Roadmap review: paying down {}{tax} returns {:.1} engineer-weeks{money} of the backlog's work{moves}; \
                     no other single system returns more.",
                    paid.system,
                    b.weeks_returned()
                ));
                format!(
                    "the best single paydown is {} to the common level ({:.1}x), which returns {:.1} engineer-weeks{money}.",
                    paid.system,
                    paid.tax_after,
                    b.weeks_returned()
                )
            }
            None => "no single paydown returns any engineer-weeks.".to_string(),
        };
        let flagged: Vec<(&crate::roadmap::TeamPlan, &crate::roadmap::PlannedItem)> = today
            .teams
            .iter()
            .flat_map(|t| t.items.iter().map(move |i| (t, i)))
            .filter(|(_, i)| i.flag.is_some())
            .collect();
        let flags = Table {
            columns: vec![
                ("item_id".into(), Kind::Text),
                ("title".into(), Kind::Text),
                ("team".into(), Kind::Text),
                ("estimated_weeks".into(), Kind::Amount),
                ("p50_weeks".into(), Kind::Amount),
                ("p85_weeks".into(), Kind::Amount),
                ("p85_finish".into(), Kind::Text),
                ("flag".into(), Kind::Text),
            ],
            rows: flagged
                .iter()
                .map(|(t, i)| {
                    vec![
                        Value::Text(i.item_id.clone()),
                        Value::Text(i.title.clone()),
                        t.team.as_ref().map_or(Value::Null, |n| Value::Text(n.clone())),
                        Value::Float(i.estimated_weeks),
                        Value::Float(i.p50_weeks),
                        Value::Float(i.p85_weeks),
                        Value::Text(day(i.p85_finish)),
                        i.flag.as_ref().map_or(Value::Null, |f| Value::Text(f.clone())),
                    ]
                })
                .collect(),
        };
        Ok(vec![
            Section {
                id: "roadmap",
                title: "Roadmap review",
                about: about(&format!("each team's P50 and P85 finish of its whole backlog; {best_text}")),
                table: Table { columns, rows },
                charts: vec![],
                empty: "No backlog items.",
            },
            Section {
                id: "roadmap-flags",
                title: "Backlog items slowed by debt",
                about: format!(
                    "Items flagged by backlog_forecast: `debt:` when the touched systems' taxes add at least {} to the \
                     item, `architecture first` when its P85 is at least {}x its estimate; in priority order per team.",
                    percent(options.debt_share),
                    options.architecture_ratio
                ),
                table: flags,
                charts: vec![],
                empty: "No backlog item is flagged.",
            },
        ])
    }
}

fn trend_schema() -> datafusion::arrow::datatypes::Schema {
    use datafusion::arrow::datatypes::Field;
    datafusion::arrow::datatypes::Schema::new(vec![
        Field::new("month", DataType::Utf8, true),
        Field::new("system", DataType::Utf8, true),
        Field::new("features", DataType::Int64, true),
        Field::new("slowdown_ratio", DataType::Float64, true),
    ])
}

/// "2026-10-01" -> "Oct 2026"
/// A definition-of-done column as a sentence names it: `dod_feature_flag` -> "a feature flag".
fn dod_item_name(column: &str) -> String {
    match column.strip_prefix("dod_").unwrap_or(column) {
        "feature_flag" => "a feature flag".into(),
        "runbook" => "a runbook".into(),
        "perf_benchmark" => "a performance benchmark".into(),
        other => other.replace('_', " "),
    }
}

fn month_label(month: &str) -> String {
    NaiveDate::parse_from_str(month, "%Y-%m-%d").map_or_else(|_| month.to_string(), |d| d.format("%b %Y").to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_as_people_write_them() {
        assert_eq!(count(1234567.0), "1,234,567");
        assert_eq!(money(1_562_270.69), "$1.56M");
        assert_eq!(money(499_055.1), "$499.1K");
        assert_eq!(money(812.0), "$812");
        assert_eq!(percent(0.4441), "44%");
        assert_eq!(percent(0.0731), "7.3%");
        assert_eq!(Value::Float(3.2175).show(Kind::Ratio), "3.22x");
        assert_eq!(Value::Float(341.5).show(Kind::Amount), "341.5");
        assert_eq!(Value::Float(356.0).show(Kind::Amount), "356");
        assert_eq!(Value::Float(-0.061).show(Kind::Points), "-6.1 pts");
        assert_eq!(Value::Null.show(Kind::Money), "–");
    }

    #[test]
    fn periods_read_as_quarters_and_months() {
        assert_eq!(period_label("2026-07-01", "2026-10-01"), "2026-Q3");
        assert_eq!(period_label("2026-10-01", "2027-01-01"), "2026-Q4");
        assert_eq!(period_label("2026-10-01", "2026-11-01"), "Oct 2026");
        assert_eq!(period_label("2026-10-15", "2026-11-15"), "2026-10-15 – 2026-11-14");
        assert_eq!(month_label("2026-02-01"), "Feb 2026");
    }
}
