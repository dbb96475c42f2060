//! `debtlens estimate --weeks N --systems a,b`: a new feature's estimate with the debt tax of the
//! systems it touches.

use std::sync::Arc;

use clap::Args;
use datafusion::arrow::array::{Float64Array, Int64Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};

use crate::config::Config;
use crate::decisions::{Estimate, SystemRatio, estimate};
use crate::engine::QueryResult;
use crate::error::{Result, exit};
use crate::output::Format;

#[derive(Debug, Args)]
pub struct EstimateArgs {
    /// The estimate without the debt tax, in weeks.
    #[arg(long)]
    pub weeks: f64,
    /// The systems the feature touches, comma-separated.
    #[arg(long, value_delimiter = ',', required = true)]
    pub systems: Vec<String>,
}

pub async fn run(config: &Config, args: EstimateArgs) -> Result<u8> {
    let session = config.engine().await?.session();
    let systems: Vec<String> = args.systems.iter().map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect();
    let estimate = estimate(&session, args.weeks, &systems).await?;
    for s in estimate.systems.iter().filter(|s| s.tax.is_none()) {
        let hint = match s.closest.as_slice() {
            [] => String::new(),
            names => format!("; did you mean {}?", names.join(" or ")),
        };
        config.note(format_args!(
            "warning: no shipped features on `{}` in the window: it counts at the common level{hint}",
            s.system
        ));
    }
    // The same shape wherever it goes: a sentence, one JSON object, or one row per system.
    match config.format {
        Format::Table | Format::Json => {
            if let Some(window) = estimate.window {
                config.note(window);
            }
            let text = match config.format {
                Format::Json => super::json_text(&estimate)?,
                _ => format!("{estimate}\n"),
            };
            super::emit_text(config, &text)?;
        }
        _ => super::emit(config, as_rows(&estimate)?).await?,
    }
    Ok(exit::OK)
}

/// One row per system, each with the estimate's fields and its own tax.
fn as_rows(e: &Estimate) -> Result<QueryResult> {
    let n = e.systems.len();
    let float = |name: &str, nullable: bool| Field::new(name, DataType::Float64, nullable);
    let schema = Arc::new(Schema::new(vec![
        float("base_weeks", false),
        float("multiplier", false),
        Field::new("driving_system", DataType::Utf8, true),
        float("estimated_weeks", false),
        float("low_weeks", false),
        float("high_weeks", false),
        Field::new("system", DataType::Utf8, false),
        float("tax", true),
        float("tax_low", true),
        float("tax_high", true),
        Field::new("features", DataType::Int64, false),
        Field::new("confidence", DataType::Utf8, true),
        float("slowdown_ratio", true),
    ]));
    let per_system = |f: fn(&SystemRatio) -> Option<f64>| Arc::new(e.systems.iter().map(f).collect::<Float64Array>());
    let batch = RecordBatch::try_new(
        Arc::clone(&schema),
        vec![
            Arc::new(Float64Array::from(vec![e.base_weeks; n])),
            Arc::new(Float64Array::from(vec![e.multiplier; n])),
            Arc::new(StringArray::from(vec![e.driving_system.clone(); n])),
            Arc::new(Float64Array::from(vec![e.estimated_weeks; n])),
            Arc::new(Float64Array::from(vec![e.low_weeks; n])),
            Arc::new(Float64Array::from(vec![e.high_weeks; n])),
            Arc::new(StringArray::from_iter_values(e.systems.iter().map(|s| s.system.as_str()))),
            per_system(|s| s.tax),
            per_system(|s| s.tax_low),
            per_system(|s| s.tax_high),
            Arc::new(Int64Array::from_iter_values(e.systems.iter().map(|s| s.features as i64))),
            Arc::new(StringArray::from(e.systems.iter().map(|s| s.confidence.map(|c| c.as_str())).collect::<Vec<_>>())),
            per_system(|s| s.slowdown_ratio),
        ],
    )?;
    Ok(QueryResult { schema, batches: vec![batch], window: e.window })
}
