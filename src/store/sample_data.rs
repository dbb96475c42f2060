//! The sample store built into the binary: the Parquet files of `sample-data/`, which
//! `debtlens sample --plain-parquet` wrote (see `sample-data/README.md`).

use bytes::Bytes;
use datafusion::arrow::array::RecordBatch;
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::error::Result;
use crate::schema::Table;

const FEATURES: &[u8] = include_bytes!("../../sample-data/features/part-00000.parquet");
const INCIDENTS: &[u8] = include_bytes!("../../sample-data/incidents/part-00000.parquet");
const CAPACITY: &[u8] = include_bytes!("../../sample-data/capacity/part-00000.parquet");
const BACKLOG: &[u8] = include_bytes!("../../sample-data/backlog/part-00000.parquet");
const DEPLOYMENTS: &[u8] = include_bytes!("../../sample-data/deployments/part-00000.parquet");

/// One table of the built-in sample.
pub fn batches(table: Table) -> Result<Vec<RecordBatch>> {
    let bytes = match table {
        Table::Features => FEATURES,
        Table::Incidents => INCIDENTS,
        Table::Capacity => CAPACITY,
        Table::Backlog => BACKLOG,
        Table::Deployments => DEPLOYMENTS,
    };
    let reader = ParquetRecordBatchReaderBuilder::try_new(Bytes::from_static(bytes))?.build()?;
    Ok(reader.collect::<Result<Vec<_>, _>>()?)
}
