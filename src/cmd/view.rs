//! `debtlens view NAME`: run one predefined view.

use clap::Args;

use crate::config::Config;
use crate::error::{Result, exit};

#[derive(Debug, Args)]
pub struct ViewArgs {
    /// The view to run (`debtlens views` lists them).
    pub name: String,
}

/// The window's features with systems that system_tax's fit leaves out (tax::Fit's rule: both
/// weeks above 0 and a finite ratio).
const LEFT_OUT_OF_THE_FIT: &str = "SELECT count(*) FROM window_features \
     WHERE cardinality(systems) > 0 \
       AND NOT coalesce(estimated_weeks > 0 AND actual_weeks > 0 \
                        AND actual_weeks / estimated_weeks < CAST('Infinity' AS DOUBLE), false)";

pub async fn run(config: &Config, args: ViewArgs) -> Result<u8> {
    let engine = config.engine().await?;
    let session = engine.session();
    let result = session.view_stream(&args.name).await?;
    super::emit_stream(config, result).await?;
    // system_tax's notes: the features its fit could not use (velocity_tax's own rule); not
    // counted when notes are off (-q).
    if args.name.eq_ignore_ascii_case("system_tax") && !config.quiet {
        let left_out = session.execute(LEFT_OUT_OF_THE_FIT).await?;
        let count = left_out.batches.first().filter(|b| b.num_rows() > 0).map_or(0, |b| {
            datafusion::arrow::array::AsArray::as_primitive::<datafusion::arrow::datatypes::Int64Type>(b.column(0))
                .value(0)
        });
        if count > 0 {
            config.note(format_args!(
                "note: {count} shipped feature(s) in the window left out of the fit: actual or estimated weeks missing or not above 0"
            ));
        }
    }
    Ok(exit::OK)
}
