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
use datafusion::parquet::schema::types::ColumnPath;

use crate::error::Result;
use crate::schema::Table;

/// Rows per row group: the window of a 1M-feature store (about an eighth of it) falls into one
/// or two of them, and a scan still has several to spread over the cores.
pub const ROW_GROUP_ROWS: usize = 128 * 1024;
/// Rows per data page, so that the page index can narrow a row group further.
const PAGE_ROWS: usize = 16 * 1024;
/// Rows per batch handed to a writer after sorting.
const BATCH_ROWS: usize = 64 * 1024;
/// Files a sorted write deals its row groups over, in turn. Sorted rows put the window's row
/// groups side by side at the newest end of the data; in one file they would all fall to the
/// one scan partition that reads that end of it, and the other cores would wait. Dealt over
/// files, each file stays sorted and every partition gets a share of the window. (The writers
/// of the files also encode in parallel.)
pub const STRIPES: usize = 4;
/// Deals a sorted stream of batches out to files (`STRIPES` unless told), a row group's worth of
/// rows to each in turn, so that every row group of every file holds rows that were side by side.
/// A scan splits the files, taken in order (of their names in a Parquet folder, of the Delta log
/// in a Delta table: both are file order), into contiguous byte ranges, one per partition: the
/// turns go to files far apart in that order (0, 2, 1, 3 for four: the even-numbered files, then
/// the odd), so that two partitions, or four, each get every other row group.
#[derive(Debug)]
pub struct Dealer {
    turns: Vec<usize>,
    turn: usize,
    rows_this_turn: usize,
}

impl Default for Dealer {
    fn default() -> Self {
        Dealer::over(STRIPES)
    }
}

impl Dealer {
    /// A dealer over `files` files (at least one).
    pub fn over(files: usize) -> Self {
        let files = files.max(1);
        let turns = (0..files).step_by(2).chain((1..files).step_by(2)).collect();
        Dealer { turns, turn: 0, rows_this_turn: 0 }
    }

    /// How many files it deals to.
    pub fn files(&self) -> usize {
        self.turns.len()
    }

    /// `batch` cut at row-group boundaries, each piece with the file it goes to.
    pub fn deal(&mut self, batch: &RecordBatch) -> Vec<(usize, RecordBatch)> {
        let mut pieces = Vec::new();
        let mut at = 0;
        while at < batch.num_rows() {
            let n = (ROW_GROUP_ROWS - self.rows_this_turn).min(batch.num_rows() - at);
            pieces.push((self.turns[self.turn], batch.slice(at, n)));
            at += n;
            self.rows_this_turn += n;
            if self.rows_this_turn == ROW_GROUP_ROWS {
                self.rows_this_turn = 0;
                self.turn = (self.turn + 1) % self.turns.len();
            }
        }
        pieces
    }
}

/// The columns a table's rows are sorted by: the windowed time first.
pub fn sort_columns(table: Table) -> &'static [&'static str] {
    match table {
        Table::Features => &["shipped_at", "started_at"],
        Table::Incidents => &["started_at"],
        Table::Capacity => &["period_start"],
        Table::Backlog => &["priority", "item_id"],
        Table::Deployments => &["deployed_at"],
    }
}

/// The Parquet writer settings of a table's files. Only files whose rows come from `sorted`
/// say in their metadata that they are sorted. A key of one column (feature_id, incident_id)
/// holds a different value in every row, so it is not dictionary-encoded: the dictionary would
/// outgrow its page in every row group and be dropped after the work of building it.
pub fn writer_properties(table: Table, sorted: bool) -> WriterProperties {
    let schema = table.schema();
    let sorting = sort_columns(table)
        .iter()
        .filter_map(|name| schema.index_of(name).ok())
        .map(|i| SortingColumn { column_idx: i as i32, descending: false, nulls_first: false })
        .collect();
    let builder = match table.key() {
        [unique] => WriterProperties::builder().set_column_dictionary_enabled(ColumnPath::from(*unique), false),
        _ => WriterProperties::builder(),
    };
    builder
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
    use datafusion::arrow::array::{Array, AsArray, Int64Array};
    use datafusion::arrow::datatypes::{DataType, Field, Int64Type, Schema, TimestampMicrosecondType};

    #[test]
    fn features_come_out_by_shipped_at_with_the_unshipped_last() {
        let sample = generate(SampleSpec { features: 3000, incidents: 10, backlog: 0, seed: 3 }).unwrap();
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
    fn rows_are_dealt_a_row_group_at_a_time_to_each_file_in_turn() {
        let schema = Arc::new(Schema::new(vec![Field::new("n", DataType::Int64, false)]));
        let rows = (STRIPES + 1) * ROW_GROUP_ROWS + 10;
        let all = RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from_iter_values(0..rows as i64))]).unwrap();
        // Batches of an odd size, so that turns end inside them.
        let mut dealer = Dealer::default();
        let mut files: Vec<Vec<i64>> = vec![Vec::new(); STRIPES];
        for at in (0..rows).step_by(50_000) {
            for (stripe, piece) in dealer.deal(&all.slice(at, 50_000.min(rows - at))) {
                let values = piece.column(0).as_primitive::<Int64Type>();
                files[stripe].extend(values.values().iter());
            }
        }
        let group = ROW_GROUP_ROWS as i64;
        // The first file has the first row group's rows and, after every file had one, the
        // rows after them; the third file the second group's rows, the second the third's.
        let expected_first: Vec<i64> = (0..group).chain(STRIPES as i64 * group..(STRIPES as i64 + 1) * group).collect();
        assert_eq!(files[0], expected_first);
        assert_eq!(files[1], (2 * group..3 * group).collect::<Vec<_>>());
        // The 10 rows left over start the third file's next turn.
        let after = (STRIPES as i64 + 1) * group;
        assert_eq!(files[2], (group..2 * group).chain(after..after + 10).collect::<Vec<_>>());
        assert_eq!(files[3], (3 * group..4 * group).collect::<Vec<_>>());
        assert_eq!(files.iter().map(Vec::len).sum::<usize>(), rows);
        assert_eq!((dealer.turn, dealer.rows_this_turn), (1, 10));
    }

    #[test]
    fn a_dealer_over_n_files_deals_the_even_numbered_files_first() {
        assert_eq!(Dealer::default().turns, [0, 2, 1, 3]);
        assert_eq!(Dealer::over(5).turns, [0, 2, 4, 1, 3]);
        assert_eq!(Dealer::over(1).turns, [0]);
        assert_eq!(Dealer::over(0).files(), 1);
    }

    #[test]
    fn the_writer_records_the_sort_order_and_small_row_groups() {
        assert!(writer_properties(Table::Incidents, false).sorting_columns().is_none());
        let properties = writer_properties(Table::Incidents, true);
        assert_eq!(properties.max_row_group_row_count(), Some(ROW_GROUP_ROWS));
        let sorting = properties.sorting_columns().unwrap();
        let started_at = Table::Incidents.schema().index_of("started_at").unwrap() as i32;
        assert_eq!(sorting[0].column_idx, started_at);
        assert!(!properties.dictionary_enabled(&ColumnPath::from("incident_id")), "a unique key");
        assert!(properties.dictionary_enabled(&ColumnPath::from("system")));
        assert!(writer_properties(Table::Capacity, true).dictionary_enabled(&ColumnPath::from("team")));
    }
}
