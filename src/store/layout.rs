//! How debtlens lays its tables out in Parquet, wherever it writes them (ingest, `sample`, the
//! plain-Parquet export): rows sorted by the time the analysis window filters on, row groups
//! small enough that the window skips most of them by their statistics, and page statistics
//! (the page index) on, so that the reader skips pages inside the row groups it keeps.

use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::compute::{SortColumn, SortOptions, concat_batches, lexsort_to_indices, take_record_batch};
use datafusion::parquet::basic::Compression;
use datafusion::parquet::file::metadata::SortingColumn;
use datafusion::parquet::file::properties::{EnabledStatistics, WriterProperties};

use crate::error::Result;
use crate::schema::Table;

/// Rows per row group: the window of a 1M-feature store (about an eighth of it) falls into one
/// or two of them, and a scan still has several to spread over the cores.
pub const ROW_GROUP_ROWS: usize = 128 * 1024;
/// Rows per data page, so that the page index can narrow a row group further.
const PAGE_ROWS: usize = 16 * 1024;
/// Rows per batch handed to a writer after sorting.
const BATCH_ROWS: usize = 64 * 1024;

/// The columns a table's rows are sorted by: the windowed time first.
pub fn sort_columns(table: Table) -> &'static [&'static str] {
    match table {
        Table::Features => &["shipped_at", "started_at"],
        Table::Incidents => &["started_at"],
        Table::Capacity => &["period_start"],
    }
}

/// The Parquet writer settings of a table's files. Only files whose rows come from `sorted`
/// say in their metadata that they are sorted.
pub fn writer_properties(table: Table, sorted: bool) -> WriterProperties {
    let schema = table.schema();
    let sorting = sort_columns(table)
        .iter()
        .filter_map(|name| schema.index_of(name).ok())
        .map(|i| SortingColumn { column_idx: i as i32, descending: false, nulls_first: false })
        .collect();
    WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .set_data_page_row_count_limit(PAGE_ROWS)
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_sorting_columns(sorted.then_some(sorting))
        .build()
}

/// The rows of `batches` in the table's sort order (nulls last), as batches of at most
/// `BATCH_ROWS` rows.
pub fn sorted(table: Table, batches: &[RecordBatch]) -> Result<Vec<RecordBatch>> {
    let Some(first) = batches.first() else { return Ok(Vec::new()) };
    let all = concat_batches(&first.schema(), batches)?;
    let keys = sort_columns(table)
        .iter()
        .filter_map(|name| all.column_by_name(name))
        .map(|values| SortColumn {
            values: Arc::clone(values),
            options: Some(SortOptions { descending: false, nulls_first: false }),
        })
        .collect::<Vec<_>>();
    let all = if keys.is_empty() { all } else { take_record_batch(&all, &lexsort_to_indices(&keys, None)?)? };
    Ok((0..all.num_rows()).step_by(BATCH_ROWS).map(|at| all.slice(at, BATCH_ROWS.min(all.num_rows() - at))).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sample::{SampleSpec, generate};
    use datafusion::arrow::array::{Array, AsArray};
    use datafusion::arrow::datatypes::TimestampMicrosecondType;

    #[test]
    fn features_come_out_by_shipped_at_with_the_unshipped_last() {
        let sample = generate(SampleSpec { features: 3000, incidents: 10, seed: 3 }).unwrap();
        let batches = sorted(Table::Features, sample.table(Table::Features)).unwrap();
        assert_eq!(batches.iter().map(|b| b.num_rows()).sum::<usize>(), 3000);
        let mut previous: Option<Option<i64>> = None;
        for batch in &batches {
            let shipped = batch.column_by_name("shipped_at").unwrap().as_primitive::<TimestampMicrosecondType>();
            for i in 0..shipped.len() {
                let now = shipped.is_valid(i).then(|| shipped.value(i));
                if let Some(before) = previous {
                    match (before, now) {
                        (Some(a), Some(b)) => assert!(a <= b, "{a} then {b}"),
                        (None, Some(_)) => panic!("a shipped feature after an unshipped one"),
                        _ => {}
                    }
                }
                previous = Some(now);
            }
        }
        assert_eq!(previous, Some(None), "the sample has unshipped features; they come last");
    }

    #[test]
    fn the_writer_records_the_sort_order_and_small_row_groups() {
        assert!(writer_properties(Table::Incidents, false).sorting_columns().is_none());
        let properties = writer_properties(Table::Incidents, true);
        assert_eq!(properties.max_row_group_row_count(), Some(ROW_GROUP_ROWS));
        let sorting = properties.sorting_columns().unwrap();
        let started_at = Table::Incidents.schema().index_of("started_at").unwrap() as i32;
        assert_eq!(sorting[0].column_idx, started_at);
    }
}
