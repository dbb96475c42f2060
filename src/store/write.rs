//! Writing a store: creating its tables, appends in the table's layout, the rejected rows, and
//! the upsert of ingest, each one commit, retried when another writer committed first.

use std::path::Path;

use datafusion::arrow::array::RecordBatch;
use datafusion::logical_expr::col;
use datafusion::prelude::SessionContext;
use deltalake::kernel::engine::arrow_conversion::TryIntoKernel;
use deltalake::kernel::transaction::CommitProperties;
use deltalake::kernel::{StructField, StructType};
use deltalake::protocol::SaveMode;
use deltalake::{DeltaTable, DeltaTableError};
use url::Url;

use super::{Location, REJECTED_DIR, Store, layout};
use crate::error::{Error, Result};
use crate::schema::Table;

impl Store {
    /// Creates the four tables, empty. Refuses to touch a folder that already holds a table.
    pub async fn create(&self) -> Result<()> {
        if let Some(dir) = self.local_dir() {
            for table in Table::ALL {
                let folder = dir.join(table.name());
                if folder.join("_delta_log").exists() {
                    return Err(Error::Usage(format!(
                        "{} already holds a Delta table; init only creates new stores",
                        folder.display()
                    )));
                }
            }
            std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        }
        for table in Table::ALL {
            let url = self.table_url(table)?;
            if let Some(dir) = self.local_dir() {
                let folder = dir.join(table.name());
                std::fs::create_dir_all(&folder).map_err(|e| Error::io(&folder, e))?;
            }
            let kernel: StructType = table.schema().as_ref().try_into_kernel()?;
            let columns: Vec<StructField> = kernel.fields().cloned().collect();
            self.delta_handle(url)?
                .create()
                .with_table_name(table.name())
                .with_columns(columns)
                .with_save_mode(SaveMode::ErrorIfExists)
                .await
                .map_err(|e| self.explain(table, &e))?;
        }
        Ok(())
    }

    /// Appends batches to a table in one commit, in the table's layout (`layout`).
    pub async fn append(&self, table: Table, batches: &[RecordBatch]) -> Result<()> {
        let url = self.table_url(table)?;
        let mut delta = with_added_columns(table, self.open_delta(url).await?).await?;
        let sorted = layout::sorted(table, batches)?.into_iter().map(Ok::<_, DeltaTableError>);
        write_in_order(table, &mut delta, futures::stream::iter(sorted), CommitProperties::default()).await?;
        Ok(())
    }

    /// The URL of the rejected-rows table.
    pub(super) fn rejected_url(&self) -> Result<Url> {
        match &self.location {
            Location::Url(base) => {
                base.join(&format!("{REJECTED_DIR}/")).map_err(|e| Error::Usage(format!("store {self}: {e}")))
            }
            _ => Err(Error::Usage(format!("the {self} store cannot be written to"))),
        }
    }

    /// Appends refused rows to `_rejected/`, creating it the first time (one commit).
    pub async fn append_rejected(&self, rows: RecordBatch) -> Result<()> {
        let url = self.rejected_url()?;
        if let Some(dir) = self.local_dir() {
            let folder = dir.join(REJECTED_DIR);
            std::fs::create_dir_all(&folder).map_err(|e| Error::io(&folder, e))?;
        }
        let delta = self.delta_handle(url)?;
        // Append creates the table if it does not exist yet; a concurrent creator makes this
        // commit conflict, and the retry appends to the table it made.
        retry_on_conflict(|| {
            let delta = delta.clone();
            let rows = rows.clone();
            async move {
                let mut delta = delta;
                let _ = delta.update_state().await;
                delta.write(vec![rows]).with_save_mode(SaveMode::Append).await.map(|_| ())
            }
        })
        .await
    }

    /// Upserts the rows staged as Arrow IPC files (`.arrow`) in `staged` (with a `__seq` column giving their
    /// input order) into `table` by its key, in one commit: within the input the last row of a
    /// key wins; a key already in the table is replaced. Retries when another writer committed
    /// first. `repeated_keys` false promises that no two staged rows share a key, which skips
    /// the duplicate removal (a sort of every row by key).
    pub async fn upsert(&self, table: Table, staged: &Path, repeated_keys: bool) -> Result<Upserted> {
        let url = self.table_url(table)?;
        let schema = table.schema();
        let columns: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        let keys = table.key();
        // The last row of each key wins; rows known to have distinct keys are taken as they are.
        let dedup = if repeated_keys {
            format!(
                "SELECT {cols} FROM (SELECT *, row_number() OVER (PARTITION BY {keys} ORDER BY __seq DESC) AS __rn \
                 FROM staged) WHERE __rn = 1",
                cols = columns.join(", "),
                keys = keys.join(", ")
            )
        } else {
            format!("SELECT {cols} FROM staged", cols = columns.join(", "))
        };
        let predicate = keys
            .iter()
            .map(|k| {
                let nullable = schema.field_with_name(k).map(|f| f.is_nullable()).unwrap_or(true);
                if nullable { format!("t.{k} IS NOT DISTINCT FROM s.{k}") } else { format!("t.{k} = s.{k}") }
            })
            .collect::<Vec<_>>()
            .join(" AND ");
        let staged_url = format!("{}/", staged.display());
        let store = self;
        retry_on_conflict(|| {
            let (url, dedup, predicate, staged_url, columns) =
                (url.clone(), dedup.clone(), predicate.clone(), staged_url.clone(), columns.clone());
            async move {
                // The staged file is Arrow IPC: its string columns are read as written (Utf8).
                let ctx = SessionContext::new();
                ctx.register_arrow(
                    "staged",
                    &staged_url,
                    datafusion::datasource::file_format::options::ArrowReadOptions::default(),
                )
                .await?;
                let source = ctx.sql(&dedup).await?;
                let delta = with_added_columns(table, store.open_delta(url).await?).await?;
                if delta.snapshot()?.log_data().num_files() == 0 {
                    return append_to_empty(table, source, delta).await;
                }
                let (delta, metrics) = delta
                    .merge(source, predicate)
                    .with_source_alias("s")
                    .with_target_alias("t")
                    .when_matched_update(|u| columns.iter().fold(u, |u, c| u.update(*c, format!("s.{c}"))))?
                    .when_not_matched_insert(|i| columns.iter().fold(i, |i, c| i.set(*c, format!("s.{c}"))))?
                    .with_writer_properties(layout::writer_properties(table, false))
                    .await?;
                Ok(Upserted {
                    unique: metrics.num_source_rows as u64,
                    inserted: metrics.num_target_rows_inserted as u64,
                    updated: metrics.num_target_rows_updated as u64,
                    version: delta.version(),
                })
            }
        })
        .await
    }
}

/// A table written before a column was added to the spec (`Table::added_later`) gains it, in a
/// commit of its own, before rows that carry it are written; its older files read the column as
/// null. A table that has every column is returned as it is.
async fn with_added_columns(table: Table, delta: DeltaTable) -> std::result::Result<DeltaTable, DeltaTableError> {
    let current = delta.snapshot()?.schema();
    let spec: StructType = table.schema().as_ref().try_into_kernel()?;
    let missing: Vec<StructField> =
        spec.fields().filter(|f| table.added_later(f.name()) && !current.contains(f.name())).cloned().collect();
    if missing.is_empty() {
        return Ok(delta);
    }
    delta.add_columns().with_fields(missing).await
}

/// The first load of a table: with no rows to match, the staged rows (one per key already) are
/// written in the table's sort order by a plain append, skipping the merge's join. The commit
/// must land on the version the emptiness was read at: if another writer commits first, it
/// fails instead of being rebased, and the caller's retry merges over what that writer added.
async fn append_to_empty(
    table: Table,
    source: datafusion::dataframe::DataFrame,
    mut delta: DeltaTable,
) -> std::result::Result<Upserted, DeltaTableError> {
    let order = layout::sort_columns(table).iter().map(|c| col(*c).sort(true, false)).collect::<Vec<_>>();
    let batches = source.sort(order)?.execute_stream().await?;
    let no_rebase = CommitProperties::default().with_max_retries(0);
    let (rows, version) = write_in_order(table, &mut delta, batches, no_rebase).await?;
    Ok(Upserted { unique: rows, inserted: rows, updated: 0, version: Some(version) })
}

/// Writes `batches` to `delta` in the order they come, in one commit, with the table's writer
/// properties (which say the files are sorted: the caller sorts), dealt over
/// `layout::STRIPES` files (see `write_files`). Returns the rows written and the new version.
async fn write_in_order<E>(
    table: Table,
    delta: &mut DeltaTable,
    batches: impl futures::Stream<Item = std::result::Result<RecordBatch, E>> + Unpin,
    commit: CommitProperties,
) -> std::result::Result<(u64, u64), DeltaTableError>
where
    DeltaTableError: From<E>,
{
    use deltalake::kernel::transaction::CommitBuilder;
    use deltalake::protocol::DeltaOperation;
    let (rows, adds) = write_files(table, delta, batches, layout::STRIPES).await?;
    let actions = adds.into_iter().map(deltalake::kernel::Action::Add).collect();
    let operation = DeltaOperation::Write { mode: SaveMode::Append, partition_by: None, predicate: None };
    let committed = CommitBuilder::from(commit)
        .with_actions(actions)
        .build(Some(delta.snapshot()?), delta.log_store(), operation)
        .await?;
    Ok((rows, committed.version()))
}

/// Writes `batches` in the order they come into new data files of `delta`'s table, not yet
/// committed: the rows are dealt over `files` files a row group at a time (see
/// `layout::Dealer`), each file written by a writer of its own on its own task, so the files
/// are encoded in parallel. delta-rs's `write` operation does not keep the order of its input
/// (it splits it over partitions, and drops a sort no operator above it needs), so this goes
/// through its `RecordBatchWriter`, which writes batch by batch. Returns the rows written and
/// the files' Add actions, in file order.
async fn write_files<E>(
    table: Table,
    delta: &DeltaTable,
    mut batches: impl futures::Stream<Item = std::result::Result<RecordBatch, E>> + Unpin,
    files: usize,
) -> std::result::Result<(u64, Vec<deltalake::kernel::Add>), DeltaTableError>
where
    DeltaTableError: From<E>,
{
    use deltalake::writer::{DeltaWriter, RecordBatchWriter};
    use futures::TryStreamExt;

    let mut dealer = layout::Dealer::over(files);
    let mut stripes = Vec::with_capacity(dealer.files());
    let mut writers = Vec::with_capacity(dealer.files());
    for _ in 0..dealer.files() {
        let (sender, mut receiver) = tokio::sync::mpsc::channel::<RecordBatch>(2);
        let mut writer =
            RecordBatchWriter::for_table(delta)?.with_writer_properties(layout::writer_properties(table, true));
        writers.push(tokio::spawn(async move {
            while let Some(batch) = receiver.recv().await {
                writer.write(batch).await?;
            }
            writer.flush().await
        }));
        stripes.push(sender);
    }
    let mut rows = 0u64;
    let read = async {
        while let Some(batch) = batches.try_next().await? {
            rows += batch.num_rows() as u64;
            for (stripe, piece) in dealer.deal(&batch) {
                if stripes[stripe].send(piece).await.is_err() {
                    // That writer failed: its error is the one to report.
                    return Ok(());
                }
            }
        }
        Ok::<_, DeltaTableError>(())
    }
    .await;
    drop(stripes);
    if read.is_err() {
        writers.iter().for_each(|writer| writer.abort());
    }
    // The files in file order: a scan splits them in the order of the log (see `layout::Dealer`).
    let mut adds = Vec::new();
    for writer in writers {
        match writer.await {
            Ok(files) => adds.extend(files?),
            Err(e) if e.is_cancelled() => {}
            Err(e) => return Err(DeltaTableError::Generic(format!("a Parquet writer stopped: {e}"))),
        }
    }
    read?;
    Ok((rows, adds))
}

/// What `optimize` found in a table, and what it wrote.
#[derive(Debug, Clone)]
pub struct Optimized {
    /// The table's data files before, and their bytes.
    pub files_before: usize,
    pub bytes_before: u64,
    /// The files a compact table of this size has.
    pub planned_files: usize,
    /// `None` when the table was compact already: nothing was written.
    pub rewritten: Option<Rewritten>,
}

/// The table after `optimize` rewrote it.
#[derive(Debug, Clone, Copy)]
pub struct Rewritten {
    pub files: usize,
    pub bytes: u64,
    pub rows: u64,
    /// The table's version after the commit.
    pub version: u64,
}

/// The data files a compact table has: as many as its rows fill row groups, up to the layout's
/// `STRIPES` (every scan partition gets a share of the window), or, with a target size, as many
/// as keep each file about that size or under (and not more files than row groups).
pub fn planned_files(rows: u64, bytes: u64, target_size: Option<u64>) -> usize {
    let groups = usize::try_from(rows.div_ceil(layout::ROW_GROUP_ROWS as u64)).unwrap_or(usize::MAX).max(1);
    let files = match target_size {
        Some(target) => usize::try_from(bytes.div_ceil(target.max(1))).unwrap_or(usize::MAX).max(layout::STRIPES),
        None => layout::STRIPES,
    };
    files.min(groups)
}

impl Store {
    /// The number of data files of `table`'s current version and the number a compact table of
    /// its size has (`planned_files`); `None` when it is not a Delta table.
    pub async fn file_counts(&self, table: Table) -> Result<Option<(usize, usize)>> {
        let delta = match self.open_delta(self.table_url(table)?).await {
            Ok(delta) => delta,
            Err(DeltaTableError::NotATable(_)) => return Ok(None),
            Err(e) => return Err(self.explain(table, &e)),
        };
        let files: Vec<_> = delta.snapshot()?.log_data().iter().collect();
        let (_, planned) = footprint(&files, None);
        Ok(Some((files.len(), planned)))
    }

    /// Compacts `table`: when it has more data files than a compact table of its size
    /// (`planned_files`), its rows are rewritten in the layout the first ingest writes (sorted by
    /// the windowed time, then the key; row groups dealt over the files; statistics and page
    /// index) and the new files replace every old one in one Delta commit, so a reader sees the
    /// old snapshot or the new one, never half. The commit must land on the version the rows
    /// were read at: when another writer commits first, the rewrite starts over from the new
    /// version, so nothing it added is lost. The old files stay for readers that started before
    /// the commit, until `vacuum` removes them. `None` when the store has no such Delta table.
    pub async fn optimize(&self, table: Table, target_size: Option<u64>) -> Result<Option<Optimized>> {
        let url = self.table_url(table)?;
        if let Some(dir) = self.local_dir()
            && !dir.join(table.name()).join("_delta_log").is_dir()
        {
            return Ok(None);
        }
        retry_on_conflict(|| {
            let url = url.clone();
            async move {
                let delta = match self.open_delta(url).await {
                    Ok(delta) => delta,
                    Err(DeltaTableError::NotATable(_)) => return Ok(None),
                    Err(e) => return Err(e),
                };
                compact(table, delta, target_size).await.map(Some)
            }
        })
        .await
    }
}

/// The bytes of a table's data files and the number of files a compact table of its size has
/// (`planned_files`; without row counts in the log's statistics, as many as the layout deals).
fn footprint(files: &[deltalake::kernel::LogicalFileView], target_size: Option<u64>) -> (u64, usize) {
    let bytes: u64 = files.iter().map(|f| f.size().max(0) as u64).sum();
    let rows: Option<u64> = files.iter().map(|f| f.num_records().map(|n| n as u64)).sum();
    (bytes, planned_files(rows.unwrap_or(u64::MAX), bytes, target_size))
}

/// `Store::optimize` on an opened table.
async fn compact(
    table: Table,
    mut delta: DeltaTable,
    target_size: Option<u64>,
) -> std::result::Result<Optimized, DeltaTableError> {
    use deltalake::kernel::Action;
    use deltalake::kernel::transaction::CommitBuilder;
    use deltalake::protocol::DeltaOperation;

    let snapshot = delta.snapshot()?;
    let files: Vec<_> = snapshot.log_data().iter().collect();
    let (bytes_before, planned) = footprint(&files, target_size);
    let mut optimized = Optimized { files_before: files.len(), bytes_before, planned_files: planned, rewritten: None };
    if files.len() <= planned {
        return Ok(optimized);
    }
    // Arrow's plain string types, which the table's schema has (not the view types DataFusion
    // reads Parquet strings as by default).
    let mut config = datafusion::prelude::SessionConfig::new();
    config.options_mut().execution.parquet.schema_force_view_types = false;
    let ctx = SessionContext::new_with_config(config);
    delta.update_datafusion_session(&ctx.state())?;
    let provider = delta.table_provider().await?;
    let order: Vec<_> =
        layout::sort_columns(table).iter().chain(table.key()).map(|c| col(*c).sort(true, false)).collect();
    // Each column in the type the table's writers take (the scan reads strings as views).
    let target = deltalake::writer::RecordBatchWriter::for_table(&delta)?.arrow_schema();
    let columns: Vec<_> = target
        .fields()
        .iter()
        .map(|f| datafusion::logical_expr::cast(col(f.name().as_str()), f.data_type().clone()).alias(f.name()))
        .collect();
    let rows = ctx.read_table(provider)?.sort(order)?.select(columns)?.execute_stream().await?;
    let (rows, mut adds) = write_files(table, &delta, rows, planned).await?;
    // A rewrite changes no data: readers of the table's changes skip it.
    adds.iter_mut().for_each(|add| add.data_change = false);
    let written =
        Rewritten { files: adds.len(), bytes: adds.iter().map(|a| a.size.max(0) as u64).sum(), rows, version: 0 };
    let actions: Vec<Action> =
        adds.into_iter().map(Action::Add).chain(files.iter().map(|f| Action::Remove(f.remove_action(false)))).collect();
    let operation = DeltaOperation::Optimize {
        predicate: None,
        target_size: target_size.map_or(-1, |t| i64::try_from(t).unwrap_or(i64::MAX)),
    };
    let committed = CommitBuilder::from(CommitProperties::default().with_max_retries(0))
        .with_actions(actions)
        .build(Some(snapshot), delta.log_store(), operation)
        .await?;
    let version = committed.version();
    optimized.rewritten = Some(Rewritten { version, ..written });
    // A checkpoint of the compacted version, so that opening the table reads its few files
    // from one checkpoint instead of replaying the many small commits before it. The rewrite
    // has landed already: a checkpoint that cannot be written only leaves the log longer.
    if delta.load_version(version).await.is_ok() {
        let _ = deltalake::protocol::checkpoints::create_checkpoint(&delta, None).await;
    }
    Ok(optimized)
}

/// What an upsert did.
#[derive(Debug, Clone, Copy)]
pub struct Upserted {
    /// Distinct keys among the staged rows.
    pub unique: u64,
    pub inserted: u64,
    pub updated: u64,
    /// The table's version after the commit.
    pub version: Option<u64>,
}

/// How many times a write is tried when other writers keep committing first.
const COMMIT_ATTEMPTS: u32 = 30;

/// Runs a Delta write, again on a fresh snapshot when another writer committed first (delta-rs
/// reports a version that already exists or a commit conflict): two ingests started at once both
/// land, one after the other.
async fn retry_on_conflict<T, F, Fut>(mut attempt: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = std::result::Result<T, DeltaTableError>>,
{
    let mut tries = 0;
    loop {
        tries += 1;
        match attempt().await {
            Ok(v) => return Ok(v),
            Err(e) if tries < COMMIT_ATTEMPTS && is_conflict(&e) => {
                // Back off with jitter so that competing writers spread out.
                let jitter = u64::from(std::process::id() % 50)
                    + u64::from(
                        std::time::SystemTime::now()
                            .duration_since(std::time::UNIX_EPOCH)
                            .map_or(0, |d| d.subsec_micros())
                            % 50,
                    );
                tokio::time::sleep(std::time::Duration::from_millis(20 * u64::from(tries.min(10)) + jitter)).await;
            }
            Err(e) => return Err(e.into()),
        }
    }
}

fn is_conflict(e: &DeltaTableError) -> bool {
    use deltalake::kernel::transaction::TransactionError;
    matches!(
        e,
        DeltaTableError::VersionAlreadyExists(_)
            | DeltaTableError::Transaction {
                source: TransactionError::CommitConflict(_)
                    | TransactionError::MaxCommitAttempts(_)
                    | TransactionError::VersionAlreadyExists(_)
            }
    )
}

/// What `vacuum` removed from one table (or would remove, in a dry run).
#[derive(Debug, Clone, Default)]
pub struct Vacuumed {
    /// The files, relative to the table's folder, sorted.
    pub files: Vec<String>,
    /// Delta log entries older than the retention removed (after a checkpoint of the newest
    /// version, so the table still opens); none in a dry run.
    pub log_entries: usize,
}

impl Store {
    /// Removes the files of `table` (`None`: the rejected rows) that no version of the table
    /// newer than `retain` uses and that are older than `retain`: files an interrupted ingest
    /// wrote and never committed, and files an upsert replaced (Delta's vacuum in its full mode,
    /// which lists the folder). `None` when the store has no such table.
    pub async fn vacuum(
        &self,
        table: Option<Table>,
        retain: std::time::Duration,
        dry_run: bool,
    ) -> Result<Option<Vacuumed>> {
        let url = match table {
            Some(t) => self.table_url(t)?,
            None => self.rejected_url()?,
        };
        if let Some(dir) = self.local_dir() {
            let folder = dir.join(table.map_or(REJECTED_DIR, Table::name));
            if !folder.join("_delta_log").is_dir() {
                return Ok(None);
            }
        }
        let delta = match self.open_delta(url).await {
            Ok(delta) => delta,
            Err(DeltaTableError::NotATable(_) | DeltaTableError::InvalidTableLocation(_)) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let retain = chrono::Duration::from_std(retain).map_err(|_| Error::Usage("--retain is too long".into()))?;
        let (delta, metrics) = delta
            .vacuum()
            .with_mode(deltalake::operations::vacuum::VacuumMode::Full)
            .with_retention_period(retain)
            .with_enforce_retention_duration(false)
            .with_dry_run(dry_run)
            .await?;
        let mut files: Vec<String> = metrics.files_deleted;
        files.sort();
        // The log: a checkpoint of the version read, then the entries before it that are older
        // than the retention (a reader of an older version is no older than that).
        let mut log_entries = 0;
        if !dry_run && let Some(version) = delta.version() {
            deltalake::protocol::checkpoints::create_checkpoint(&delta, None).await?;
            let cutoff = (chrono::Utc::now() - retain).timestamp_millis();
            log_entries = deltalake::protocol::checkpoints::cleanup_expired_logs_for(
                version as _,
                delta.log_store().as_ref(),
                cutoff,
                None,
            )
            .await?;
        }
        Ok(Some(Vacuumed { files, log_entries }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_compact_table_has_a_file_per_row_group_up_to_the_layout_s_or_the_target_size_s() {
        let group = layout::ROW_GROUP_ROWS as u64;
        assert_eq!(planned_files(0, 0, None), 1);
        assert_eq!(planned_files(group, 5 << 20, None), 1);
        assert_eq!(planned_files(group + 1, 5 << 20, None), 2);
        assert_eq!(planned_files(100 * group, 900 << 20, None), layout::STRIPES);
        // 900 MB at 64 MB a file: 15 files, as the row groups allow.
        assert_eq!(planned_files(100 * group, 900 << 20, Some(64 << 20)), 15);
        assert_eq!(planned_files(10 * group, 900 << 20, Some(64 << 20)), 10);
        // A target larger than the table still deals over the layout's files.
        assert_eq!(planned_files(100 * group, 900 << 20, Some(1 << 40)), layout::STRIPES);
    }
}
