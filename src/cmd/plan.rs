//! `debtlens plan`: the roadmap forecast per team, and what paying a system's debt down moves.

use std::sync::Arc;

use chrono::NaiveDate;
use clap::Args;
use datafusion::arrow::array::{
    ArrayRef, Date32Array, Float64Array, Int64Array, RecordBatch, StringArray, UInt64Array,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema};

use crate::config::Config;
use crate::engine::QueryResult;
use crate::error::{Error, Result, exit};
use crate::forecast::{ARCHITECTURE_RATIO, DEBT_SHARE};
use crate::output::{self, Format, WriteOptions};
use crate::roadmap::{PlanOptions, Roadmap, TeamPlan, day, plan};

#[derive(Debug, Args)]
pub struct PlanArgs {
    /// Only this team's items.
    #[arg(long)]
    pub team: Option<String>,
    /// The first day of work (YYYY-MM-DD). Default: the day after the window's as_of.
    #[arg(long, value_parser = parse_day)]
    pub start: Option<NaiveDate>,
    /// Monte Carlo trials.
    #[arg(long, default_value_t = PlanOptions::default().trials)]
    pub trials: usize,
    /// The seed of the draws: the same seed gives the same dates.
    #[arg(long, default_value_t = PlanOptions::default().seed)]
    pub seed: u64,
    /// A system whose debt is paid down: its tax set to the common level, or to TAX. Repeat for
    /// several (paid down together).
    #[arg(long, value_name = "SYSTEM[=TAX]", value_parser = parse_paydown)]
    pub paydown: Vec<(String, Option<f64>)>,
    /// Items each team works at once. Default: as many as it had in progress on average.
    #[arg(long)]
    pub slots: Option<usize>,
    /// Flag an item `debt: SYSTEM TAXx` when the taxes add at least this share to it.
    #[arg(long, default_value_t = DEBT_SHARE)]
    pub debt_share: f64,
    /// Flag an item `architecture first` when its P85 is at least this many times its estimate.
    #[arg(long, default_value_t = ARCHITECTURE_RATIO)]
    pub architecture_ratio: f64,
}

fn parse_day(s: &str) -> std::result::Result<NaiveDate, String> {
    NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").map_err(|e| format!("`{s}` is not a date (YYYY-MM-DD): {e}"))
}

fn parse_paydown(s: &str) -> std::result::Result<(String, Option<f64>), String> {
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

impl PlanArgs {
    pub fn options(&self) -> Result<PlanOptions> {
        if !(self.debt_share.is_finite() && self.debt_share >= 0.0) {
            return Err(Error::Usage(format!("--debt-share must be a number of at least 0, not {}", self.debt_share)));
        }
        if !(self.architecture_ratio.is_finite() && self.architecture_ratio > 0.0) {
            return Err(Error::Usage(format!(
                "--architecture-ratio must be a number above 0, not {}",
                self.architecture_ratio
            )));
        }
        Ok(PlanOptions {
            team: self.team.clone(),
            start: self.start,
            trials: self.trials,
            seed: self.seed,
            paydown: self.paydown.clone(),
            slots: self.slots,
            debt_share: self.debt_share,
            architecture_ratio: self.architecture_ratio,
        })
    }
}

pub async fn run(config: &Config, args: PlanArgs) -> Result<u8> {
    let session = config.engine().await?.session();
    let roadmap = plan(&session, &args.options()?).await?;
    for system in &roadmap.unknown_paydown {
        config.note(format_args!(
            "warning: no shipped features on `{system}` in the window: it already counts at the common level, nothing to pay down"
        ));
    }
    if let Some(window) = roadmap.window {
        config.note(window);
    }
    match config.format {
        Format::Json => super::emit_text(config, &super::json_text(&roadmap)?)?,
        Format::Table => {
            let mut text = summary(&roadmap);
            let rows = rows(&roadmap)?;
            let mut table = Vec::new();
            let options = WriteOptions { max_rows: config.max_rows, max_width: output::terminal_width() };
            output::write(Format::Table, &rows.schema, &rows.batches, &mut table, options)?;
            text.push('\n');
            text.push_str(&String::from_utf8_lossy(&table));
            super::emit_text(config, &text)?;
        }
        _ => super::emit(config, rows(&roadmap)?).await?,
    }
    Ok(exit::OK)
}

/// The sentences over the table: per team, when it is done, and what the paydown moves.
pub fn summary(r: &Roadmap) -> String {
    let mut out =
        format!("roadmap from {} ({} trials, seed {}): P50 and P85 finish dates\n", day(r.start), r.trials, r.seed);
    for t in &r.teams {
        out.push_str(&team_sentence(r, t));
        out.push('\n');
    }
    out
}

/// "checkout: 9 items, 2 at once (from 310 features): done P50 3 Feb 2027, P85 10 Mar 2027;
/// paying down auth-service (3.2x -> 1.6x) moves P85 to 20 Feb 2027 (18 days earlier) and
/// returns 11.2 engineer-weeks ($45K)"
pub fn team_sentence(r: &Roadmap, t: &TeamPlan) -> String {
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
        let money = p.money_returned.map(|m| format!(" (${})", crate::numbers::count(m.max(0.0)))).unwrap_or_default();
        s.push_str(&format!(
            "; paying down {} {moved} and returns {:.1} engineer-weeks{money}",
            systems.join(" and "),
            p.weeks_returned
        ));
    }
    s
}

/// One row per item, with its team's dates.
pub fn rows(r: &Roadmap) -> Result<QueryResult> {
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
    ];
    if paid {
        fields.extend([
            Field::new("paid_p50_finish", DataType::Date32, true),
            Field::new("paid_p85_finish", DataType::Date32, true),
            Field::new("team_paid_done_p50", DataType::Date32, true),
            Field::new("team_paid_done_p85", DataType::Date32, true),
            Field::new("team_weeks_returned", DataType::Float64, true),
            Field::new("team_money_returned", DataType::Float64, true),
        ]);
    }
    let schema = Arc::new(Schema::new(fields));
    let items: Vec<(&TeamPlan, &crate::roadmap::PlannedItem)> =
        r.teams.iter().flat_map(|t| t.items.iter().map(move |i| (t, i))).collect();
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).expect("a date");
    let days = |d: NaiveDate| (d - epoch).num_days() as i32;
    let date = |f: &dyn Fn(&(&TeamPlan, &crate::roadmap::PlannedItem)) -> Option<NaiveDate>| -> ArrayRef {
        Arc::new(items.iter().map(|x| f(x).map(days)).collect::<Date32Array>())
    };
    let float = |f: &dyn Fn(&(&TeamPlan, &crate::roadmap::PlannedItem)) -> Option<f64>| -> ArrayRef {
        Arc::new(items.iter().map(f).collect::<Float64Array>())
    };
    let text = |f: &dyn Fn(&(&TeamPlan, &crate::roadmap::PlannedItem)) -> Option<String>| -> ArrayRef {
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
    ];
    if paid {
        columns.extend([
            date(&|(_, i)| i.paid_p50_finish),
            date(&|(_, i)| i.paid_p85_finish),
            date(&|(t, _)| t.paid.as_ref().map(|p| p.done_p50)),
            date(&|(t, _)| t.paid.as_ref().map(|p| p.done_p85)),
            float(&|(t, _)| t.paid.as_ref().map(|p| p.weeks_returned)),
            float(&|(t, _)| t.paid.as_ref().and_then(|p| p.money_returned)),
        ]);
    }
    let batch = RecordBatch::try_new(Arc::clone(&schema), columns)?;
    Ok(QueryResult { schema, batches: vec![batch], window: None })
}
