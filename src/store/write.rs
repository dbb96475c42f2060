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
        let mut delta = self.open_delta(url).await?;
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

    /// Upserts the rows staged as Parquet files in `staged` (with a `__seq` column giving their
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
                let mut config = datafusion::prelude::SessionConfig::new();
                config.options_mut().execution.parquet.schema_force_view_types = false;
                let ctx = SessionContext::new_with_config(config);
                ctx.register_parquet("staged", &staged_url, datafusion::prelude::ParquetReadOptions::default()).await?;
                let source = ctx.sql(&dedup).await?;
                let delta = store.open_delta(url).await?;
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
/// properties (which say the files are sorted: the caller sorts). The rows are dealt over
/// `layout::STRIPES` files a row group at a time (see `layout::Dealer`), each file written by
/// a writer of its own on its own task, so the files are encoded in parallel. delta-rs's `write`
/// operation does not keep the order of its input (it splits it over partitions, and drops a
/// sort no operator above it needs), so this goes through its `RecordBatchWriter`, which writes
/// batch by batch. Returns the rows written and the new version.
async fn write_in_order<E>(
    table: Table,
    delta: &mut DeltaTable,
    mut batches: impl futures::Stream<Item = std::result::Result<RecordBatch, E>> + Unpin,
    commit: CommitProperties,
) -> std::result::Result<(u64, u64), DeltaTableError>
where
    DeltaTableError: From<E>,
{
    use deltalake::kernel::transaction::CommitBuilder;
    use deltalake::protocol::DeltaOperation;
    use deltalake::writer::{DeltaWriter, RecordBatchWriter};
    use futures::TryStreamExt;

    let mut stripes = Vec::with_capacity(layout::STRIPES);
    let mut writers = Vec::with_capacity(layout::STRIPES);
    for _ in 0..layout::STRIPES {
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
    let mut dealer = layout::Dealer::default();
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
    // The files in stripe order: a scan splits them in the order of the log (see
    // `layout::TURNS`).
    let mut adds = Vec::new();
    for writer in writers {
        match writer.await {
            Ok(files) => adds.extend(files?.into_iter().map(deltalake::kernel::Action::Add)),
            Err(e) if e.is_cancelled() => {}
            Err(e) => return Err(DeltaTableError::Generic(format!("a Parquet writer stopped: {e}"))),
        }
    }
    read?;
    let operation = DeltaOperation::Write { mode: SaveMode::Append, partition_by: None, predicate: None };
    let committed = CommitBuilder::from(commit)
        .with_actions(adds)
        .build(Some(delta.snapshot()?), delta.log_store(), operation)
        .await?;
    Ok((rows, committed.version()))
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
