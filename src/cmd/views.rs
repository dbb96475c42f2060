//! `debtlens views`: what each view answers, and its columns.

use std::sync::Arc;

use datafusion::arrow::array::{BooleanArray, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};

use crate::config::Config;
use crate::engine::QueryResult;
use crate::error::{Result, exit};
use crate::views::VIEWS;

pub async fn run(config: &Config) -> Result<u8> {
    let session = config.engine().await?.session();
    let mut columns = Vec::with_capacity(VIEWS.len());
    for view in VIEWS {
        let schema = session
            .relation_schema(view.name)
            .await?
            .ok_or_else(|| crate::Error::Internal(format!("view {} is not in the catalog", view.name)))?;
        columns.push(schema.fields().iter().map(|f| f.name().as_str()).collect::<Vec<_>>().join(", "));
    }
    let schema = Arc::new(Schema::new(vec![
        Field::new("view", DataType::Utf8, false),
        Field::new("windowed", DataType::Boolean, false),
        Field::new("description", DataType::Utf8, false),
        Field::new("columns", DataType::Utf8, false),
    ]));
    let batch = RecordBatch::try_new(
        Arc::clone(&schema),
        vec![
            Arc::new(StringArray::from_iter_values(VIEWS.iter().map(|v| v.name))),
            Arc::new(BooleanArray::from(VIEWS.iter().map(|v| v.windowed()).collect::<Vec<_>>())),
            Arc::new(StringArray::from_iter_values(VIEWS.iter().map(|v| v.description()))),
            Arc::new(StringArray::from(columns)),
        ],
    )?;
    let config = Config { max_rows: None, ..config.clone() };
    super::emit(&config, QueryResult { schema, batches: vec![batch], window: None }).await?;
    Ok(exit::OK)
}
