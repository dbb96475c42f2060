//! `debtlens paydown --invest I --target T`: what paying debt down returns.

use std::sync::Arc;

use clap::Args;
use datafusion::arrow::array::{Float64Array, RecordBatch, StringArray, UInt32Array, UInt64Array};
use datafusion::arrow::datatypes::{DataType, Field, Schema};

use crate::config::Config;
use crate::decisions::{DelayedValue, PaydownRange, PaydownValue, paydown};
use crate::engine::QueryResult;
use crate::error::{Result, exit};
use crate::output::Format;

#[derive(Debug, Args)]
pub struct PaydownArgs {
    /// What paying the debt down costs, in the store's currency.
    #[arg(long)]
    pub invest: f64,
    /// The efficiency (estimated / actual weeks) reached afterwards, in (0, 1].
    #[arg(long)]
    pub target: f64,
    /// Over how many months the gain is counted.
    #[arg(long, default_value_t = 12)]
    pub months: u32,
    /// The yearly engineering capacity (budget). Default: from the last twelve months of capacity rows.
    #[arg(long)]
    pub capacity: Option<f64>,
    /// What the return is priced in: capacity (the budget freed), or cost_of_delay (also the
    /// delayed value of the valued features that ship earlier).
    #[arg(long, value_enum, default_value_t = PaydownValue::Capacity)]
    pub value: PaydownValue,
}

pub async fn run(config: &Config, args: PaydownArgs) -> Result<u8> {
    let session = config.engine().await?.session();
    let p = paydown(&session, args.invest, args.target, args.months, args.capacity, args.value).await?;
    match config.format {
        Format::Table => super::emit_text(config, &format!("{p}\n"))?,
        Format::Json => super::emit_text(config, &super::json_text(&p)?)?,
        _ => {
            let schema = Arc::new(Schema::new(vec![
                Field::new("invest", DataType::Float64, false),
                Field::new("current_efficiency", DataType::Float64, false),
                Field::new("target_efficiency", DataType::Float64, false),
                Field::new("months", DataType::UInt32, false),
                Field::new("yearly_capacity", DataType::Float64, false),
                Field::new("capacity_returned", DataType::Float64, false),
                Field::new("net_return", DataType::Float64, false),
                Field::new("payback_months", DataType::Float64, false),
                Field::new("basis", DataType::Utf8, false),
                Field::new("efficiency_low", DataType::Float64, true),
                Field::new("efficiency_high", DataType::Float64, true),
                Field::new("capacity_returned_low", DataType::Float64, true),
                Field::new("capacity_returned_high", DataType::Float64, true),
                Field::new("payback_months_low", DataType::Float64, true),
                Field::new("payback_months_high", DataType::Float64, true),
                Field::new("valued_features", DataType::UInt64, true),
                Field::new("unvalued_features", DataType::UInt64, true),
                Field::new("valued_work_per_month", DataType::Float64, true),
                Field::new("value_returned", DataType::Float64, true),
                Field::new("net_value_return", DataType::Float64, true),
                Field::new("value_payback_months", DataType::Float64, true),
                Field::new("value_returned_low", DataType::Float64, true),
                Field::new("value_returned_high", DataType::Float64, true),
            ]));
            let v = p.delayed_value.as_ref();
            let value = |f: fn(&DelayedValue) -> Option<f64>| Arc::new(Float64Array::from(vec![v.and_then(f)]));
            let count = |f: fn(&DelayedValue) -> u64| Arc::new(UInt64Array::from(vec![v.map(f)]));
            let r = p.range.as_ref();
            let range = |f: fn(&PaydownRange) -> f64| Arc::new(Float64Array::from(vec![r.map(f)]));
            let batch = RecordBatch::try_new(
                Arc::clone(&schema),
                vec![
                    Arc::new(Float64Array::from(vec![p.invest])),
                    Arc::new(Float64Array::from(vec![p.current_efficiency])),
                    Arc::new(Float64Array::from(vec![p.target_efficiency])),
                    Arc::new(UInt32Array::from(vec![p.months])),
                    Arc::new(Float64Array::from(vec![p.yearly_capacity])),
                    Arc::new(Float64Array::from(vec![p.capacity_returned])),
                    Arc::new(Float64Array::from(vec![p.net_return])),
                    Arc::new(Float64Array::from(vec![p.payback_months])),
                    Arc::new(StringArray::from(vec![p.basis.clone()])),
                    range(|r| r.efficiency_low),
                    range(|r| r.efficiency_high),
                    range(|r| r.capacity_returned_low),
                    range(|r| r.capacity_returned_high),
                    range(|r| r.payback_months_low),
                    range(|r| r.payback_months_high),
                    count(|v| v.valued_features),
                    count(|v| v.unvalued_features),
                    value(|v| Some(v.valued_work_per_month)),
                    value(|v| Some(v.value_returned)),
                    value(|v| Some(v.net_value_return)),
                    value(|v| Some(v.value_payback_months)),
                    value(|v| v.value_returned_low),
                    value(|v| v.value_returned_high),
                ],
            )?;
            super::emit(config, QueryResult { schema, batches: vec![batch], window: None }).await?;
        }
    }
    Ok(exit::OK)
}
