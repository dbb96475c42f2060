//! `debtlens plan`: the roadmap forecast per team, and what paying a system's debt down moves.

use chrono::NaiveDate;
use clap::Args;

use crate::config::Config;
use crate::error::{Result, exit};
use crate::forecast::{ARCHITECTURE_RATIO, DEBT_SHARE};
use crate::output::{self, Format, WriteOptions};
use crate::roadmap::{self, PlanOptions, plan};

#[derive(Debug, Args)]
pub struct PlanArgs {
    /// Only this team's items.
    #[arg(long)]
    pub team: Option<String>,
    /// The first day of work (YYYY-MM-DD). Default: the day after the window's as_of.
    #[arg(long, value_parser = roadmap::parse_day)]
    pub start: Option<NaiveDate>,
    /// Monte Carlo trials.
    #[arg(long, default_value_t = PlanOptions::default().trials)]
    pub trials: usize,
    /// The seed of the draws: the same seed gives the same dates.
    #[arg(long, default_value_t = PlanOptions::default().seed)]
    pub seed: u64,
    /// A system whose debt is paid down: its tax set to the common level, or to TAX. Repeat for
    /// several (paid down together).
    #[arg(long, value_name = "SYSTEM[=TAX]", value_parser = roadmap::parse_paydown)]
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

impl PlanArgs {
    pub fn options(&self) -> Result<PlanOptions> {
        let options = PlanOptions {
            team: self.team.clone(),
            start: self.start,
            trials: self.trials,
            seed: self.seed,
            paydown: self.paydown.clone(),
            slots: self.slots,
            debt_share: self.debt_share,
            architecture_ratio: self.architecture_ratio,
        };
        options.check()?;
        Ok(options)
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
            let mut text = roadmap.summary();
            let rows = roadmap.rows()?;
            let mut table = Vec::new();
            let options = WriteOptions { max_rows: config.max_rows, max_width: output::terminal_width() };
            output::write(Format::Table, &rows.schema, &rows.batches, &mut table, options)?;
            text.push('\n');
            text.push_str(&String::from_utf8_lossy(&table));
            super::emit_text(config, &text)?;
        }
        _ => super::emit(config, roadmap.rows()?).await?,
    }
    Ok(exit::OK)
}
