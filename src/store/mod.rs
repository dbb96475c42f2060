//! The store: one Delta table per folder (`features/`, `incidents/`, `capacity/`) under a
//! location that is a URL from the start, so that `s3://` works where a local path does. A
//! folder of plain Parquet files with the same columns is read too (read-only), and when the
//! user has no store at all, the sample store built into the binary stands in.

pub mod layout;
mod sample_data;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Once};

use datafusion::arrow::array::RecordBatch;
use datafusion::catalog::TableProvider;
use datafusion::common::Column;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl};
use datafusion::datasource::{MemTable, ViewTable, provider_as_source};
use datafusion::logical_expr::{Expr, LogicalPlanBuilder, cast, col};
use datafusion::prelude::SessionContext;
use deltalake::kernel::engine::arrow_conversion::TryIntoKernel;
use deltalake::kernel::transaction::CommitProperties;
use deltalake::kernel::{StructField, StructType};
use deltalake::protocol::SaveMode;
use deltalake::{DeltaTable, DeltaTableBuilder, DeltaTableError};
use url::Url;

use crate::error::{Error, Result};
use crate::schema::{self, Table};

/// The environment variable that names the store when `--data` is not given.
pub const DATA_ENV: &str = "DEBTLENS_DATA";
/// The folder of the rejected-rows table.
pub const REJECTED_DIR: &str = "_rejected";
/// The SQL name of the rejected-rows table, when the store has one.
pub const REJECTED_TABLE: &str = "rejected_rows";

/// The store used when neither `--data` nor the environment names one, if it exists.
pub const DEFAULT_DIR: &str = "debtlens-data";

/// Where a store lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A directory or object-store prefix, always ending in `/`.
    Url(Url),
    /// The small sample built into the binary.
    BuiltinSample,
    /// Empty in-memory tables that accept INSERT: the fixtures of the SQL logic tests.
    Scratch,
}

/// A store and how to reach its tables.
#[derive(Debug, Clone)]
pub struct Store {
    location: Location,
}

impl std::fmt::Display for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.location {
            Location::Url(url) if url.scheme() == "file" => match url.to_file_path() {
                Ok(p) => write!(f, "{}", p.display()),
                Err(()) => write!(f, "{url}"),
            },
            Location::Url(url) => write!(f, "{url}"),
            Location::BuiltinSample => write!(f, "<built-in sample>"),
            Location::Scratch => write!(f, "<scratch>"),
        }
    }
}

/// How the store was chosen, for the one line a user sees when it is not the one they named.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Flag,
    Env,
    DefaultDir,
    BuiltinSample,
}

impl Store {
    /// A store at a local path or URL (`file://`, `s3://bucket/prefix`).
    pub fn at(location: &str) -> Result<Self> {
        Ok(Self { location: Location::Url(parse_location(location)?) })
    }

    pub fn builtin_sample() -> Self {
        Self { location: Location::BuiltinSample }
    }

    pub fn scratch() -> Self {
        Self { location: Location::Scratch }
    }

    /// interfaces.md, "Finding the store": `--data`, then `DEBTLENS_DATA`, then
    /// `./debtlens-data` when it exists, then the built-in sample. (clap already folds the
    /// environment variable into `data`; `from_env` says whether it came from there.)
    pub fn find(data: Option<&str>, from_env: bool) -> Result<(Self, Origin)> {
        match data {
            Some(d) => Ok((Self::at(d)?, if from_env { Origin::Env } else { Origin::Flag })),
            None if Path::new(DEFAULT_DIR).is_dir() => Ok((Self::at(DEFAULT_DIR)?, Origin::DefaultDir)),
            None => Ok((Self::builtin_sample(), Origin::BuiltinSample)),
        }
    }

    pub fn location(&self) -> &Location {
        &self.location
    }

    /// The URL of one table's folder.
    pub fn table_url(&self, table: Table) -> Result<Url> {
        match &self.location {
            Location::Url(base) => {
                base.join(&format!("{}/", table.name())).map_err(|e| Error::Usage(format!("store {self}: {e}")))
            }
            _ => Err(Error::Usage(format!("the {self} store has no files"))),
        }
    }

    /// The local directory of the store, when it has one.
    pub fn local_dir(&self) -> Option<PathBuf> {
        match &self.location {
            Location::Url(url) if url.scheme() == "file" => url.to_file_path().ok(),
            _ => None,
        }
    }

    /// Registers the three tables with `ctx`, checking each against the spec's schema. Returns
    /// the Delta version each was read at (`None` for plain Parquet and the built-in stores):
    /// every query of this context reads that snapshot.
    pub async fn register(&self, ctx: &SessionContext) -> Result<Vec<(Table, Option<u64>)>> {
        let mut versions = Vec::with_capacity(Table::ALL.len());
        for table in Table::ALL {
            let (provider, version) = self.open_table(ctx, table).await?;
            let casts = schema::check(table, provider.schema().as_ref())?;
            let provider = if casts.is_empty() { provider } else { conform(table, provider, &casts)? };
            // A long-lived engine registers again after another process commits.
            ctx.deregister_table(table.name())?;
            ctx.register_table(table.name(), provider)?;
            versions.push((table, version));
        }
        ctx.deregister_table(REJECTED_TABLE)?;
        ctx.register_table(REJECTED_TABLE, self.open_rejected(ctx).await?)?;
        Ok(versions)
    }

    /// A Delta table at `url`, loaded at its newest version.
    pub async fn open_delta(&self, url: Url) -> std::result::Result<DeltaTable, DeltaTableError> {
        DeltaTableBuilder::from_url(url)?.with_storage_options(self.storage_options()).load().await
    }

    /// A handle on a Delta table at `url` without reading its log (to create it, or to list it).
    fn delta_handle(&self, url: Url) -> std::result::Result<DeltaTable, DeltaTableError> {
        DeltaTableBuilder::from_url(url)?.with_storage_options(self.storage_options()).build()
    }

    /// Options for the object store: on S3, an endpoint that does not answer fails within
    /// seconds rather than after object_store's default three minutes of retries. Credentials,
    /// region and endpoint come from the standard AWS environment variables.
    fn storage_options(&self) -> HashMap<String, String> {
        match &self.location {
            Location::Url(url) if url.scheme() != "file" => {
                [("connect_timeout", "5s"), ("timeout", "30s"), ("max_retries", "2"), ("retry_timeout", "10s")]
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect()
            }
            _ => HashMap::new(),
        }
    }

    /// Whether any Delta table has a commit newer than the version given for it (as `register`
    /// returned them). Lists each log from the known version on; reads no data.
    pub async fn changed_since(&self, known: &[(Table, Option<u64>)]) -> Result<bool> {
        for &(table, version) in known {
            let Some(version) = version else { continue };
            let delta = self.delta_handle(self.table_url(table)?)?;
            let latest = delta.log_store().get_latest_version(version as _).await?;
            if latest as u64 > version {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// The rejected rows, or an empty table when nothing was ever refused.
    async fn open_rejected(&self, ctx: &SessionContext) -> Result<Arc<dyn TableProvider>> {
        let empty = || -> Result<Arc<dyn TableProvider>> {
            Ok(Arc::new(MemTable::try_new(schema::rejected_schema(), vec![vec![]])?))
        };
        let Ok(url) = self.rejected_url() else { return empty() };
        if self.local_dir().is_some_and(|dir| !dir.join(REJECTED_DIR).join("_delta_log").is_dir()) {
            return empty();
        }
        match self.open_delta(url).await {
            Ok(delta) => {
                delta.update_datafusion_session(&ctx.state())?;
                Ok(delta.table_provider().await?)
            }
            Err(_) => empty(),
        }
    }

    async fn open_table(&self, ctx: &SessionContext, table: Table) -> Result<(Arc<dyn TableProvider>, Option<u64>)> {
        let batches = match &self.location {
            Location::BuiltinSample => sample_data::batches(table)?,
            Location::Scratch => vec![],
            Location::Url(_) => return self.open_files(ctx, table).await,
        };
        Ok((Arc::new(MemTable::try_new(table.schema(), vec![batches])?), None))
    }

    async fn open_files(&self, ctx: &SessionContext, table: Table) -> Result<(Arc<dyn TableProvider>, Option<u64>)> {
        let url = self.table_url(table)?;
        if let Some(dir) = self.local_dir() {
            let dir = dir.join(table.name());
            if !dir.is_dir() {
                return Err(Error::MissingTable { store: self.to_string(), table: table.name() });
            }
            if !dir.join("_delta_log").is_dir() {
                return Ok((self.open_parquet_folder(ctx, table, url).await?, None));
            }
        }
        match self.open_delta(url.clone()).await {
            Ok(delta) => {
                delta.update_datafusion_session(&ctx.state())?;
                let provider = delta.table_provider().await.map_err(|e| self.explain(table, &e))?;
                Ok((provider, delta.version()))
            }
            // Plain Parquet folders are read from local stores only.
            Err(DeltaTableError::NotATable(_)) if self.local_dir().is_none() => {
                Err(Error::MissingTable { store: self.to_string(), table: table.name() })
            }
            Err(DeltaTableError::NotATable(_)) => Ok((self.open_parquet_folder(ctx, table, url).await?, None)),
            Err(e) => Err(self.explain(table, &e)),
        }
    }

    /// An object-store error as a sentence that names the problem, when it is one a user can fix
    /// (no bucket, no credentials, access denied, no answer); otherwise the error as it is.
    pub fn explain(&self, table: Table, e: &dyn std::fmt::Display) -> Error {
        let message = e.to_string();
        match self.unreachable_because(&message) {
            Some(why) => Error::Unreachable { store: self.to_string(), message: why },
            None => Error::Store { store: self.to_string(), table: table.name(), message },
        }
    }

    fn unreachable_because(&self, message: &str) -> Option<String> {
        let Location::Url(url) = &self.location else { return None };
        if url.scheme() == "file" {
            return None;
        }
        let bucket = url.host_str().unwrap_or_default();
        let endpoint = std::env::var("AWS_ENDPOINT_URL")
            .or_else(|_| std::env::var("AWS_ENDPOINT"))
            .map(|e| format!("the endpoint {e}"))
            .unwrap_or_else(|_| "the AWS S3 endpoint".to_string());
        let lower = message.to_lowercase();
        Some(if message.contains("NoSuchBucket") {
            format!("bucket `{bucket}` does not exist at {endpoint}")
        } else if message.contains("169.254.169.254")
            || lower.contains("no credentials")
            || lower.contains("credentials not")
        {
            "no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE), \
             or run where an instance role provides them"
                .to_string()
        } else if message.contains("AccessDenied") || message.contains("403 Forbidden") {
            format!(
                "access denied to s3://{bucket}{}: the credentials lack permission (s3:ListBucket, s3:GetObject, s3:PutObject)",
                url.path()
            )
        } else if message.contains("InvalidAccessKeyId") || message.contains("SignatureDoesNotMatch") {
            "the AWS credentials were refused: check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY".to_string()
        } else if lower.contains("error sending request") || lower.contains("timed out") {
            // object_store does not say why a request could not be sent; how long it took does.
            match request_seconds(message) {
                Some(s) if s >= 4.0 => format!("{endpoint} did not answer within {s:.0} s"),
                _ => format!("cannot connect to {endpoint} (connection refused, or no route to it)"),
            }
        } else {
            return None;
        })
    }

    /// A folder of plain Parquet files written by another tool, read as it is.
    async fn open_parquet_folder(
        &self,
        ctx: &SessionContext,
        table: Table,
        url: Url,
    ) -> Result<Arc<dyn TableProvider>> {
        let path = ListingTableUrl::parse(url.as_str())?;
        let options = ListingOptions::new(Arc::new(ParquetFormat::default())).with_file_extension(".parquet");
        let state = ctx.state();
        let schema = options.infer_schema(&state, &path).await?;
        if schema.fields().is_empty() {
            return Err(Error::Store {
                store: self.to_string(),
                table: table.name(),
                message: "the folder holds neither a Delta table (_delta_log/) nor .parquet files".into(),
            });
        }
        let config = ListingTableConfig::new(path).with_listing_options(options).with_schema(schema);
        Ok(Arc::new(ListingTable::try_new(config)?))
    }

    /// Creates the three tables, empty. Refuses to touch a folder that already holds a table.
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
    fn rejected_url(&self) -> Result<Url> {
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

/// The table with the columns of `casts` converted to the spec's types (an export with integer
/// estimates or nanosecond timestamps), as a view over the table as found.
fn conform(table: Table, provider: Arc<dyn TableProvider>, casts: &schema::Casts) -> Result<Arc<dyn TableProvider>> {
    let columns: Vec<Expr> = provider
        .schema()
        .fields()
        .iter()
        .map(|f| match casts.iter().find(|(name, _)| name == f.name()) {
            Some((name, target)) => cast(col(Column::from_name(name)), target.clone()).alias(name),
            None => col(Column::from_name(f.name())),
        })
        .collect();
    let plan = LogicalPlanBuilder::scan(table.name(), provider_as_source(provider), None)?.project(columns)?.build()?;
    Ok(Arc::new(ViewTable::new(plan, None)))
}

/// How long object_store says a failed request took ("Error performing GET ... in 30.0s").
fn request_seconds(message: &str) -> Option<f64> {
    message.split(" in ").skip(1).find_map(|rest| {
        let token = rest.split([' ', ',']).next()?;
        match token.strip_suffix("ms") {
            Some(ms) => ms.parse::<f64>().ok().map(|ms| ms / 1000.0),
            None => token.strip_suffix('s')?.parse().ok(),
        }
    })
}

/// A local path or a URL (`file://`, `s3://bucket/prefix`), as a URL of a directory (ending in
/// `/`).
pub fn parse_location(location: &str) -> Result<Url> {
    let mut url = if location.contains("://") {
        let url =
            Url::parse(location).map_err(|e| Error::Usage(format!("invalid store location `{location}`: {e}")))?;
        match url.scheme() {
            "file" => {}
            "s3" | "s3a" => {
                if url.host_str().is_none_or(str::is_empty) {
                    return Err(Error::Usage(format!("invalid store location `{location}`: no bucket")));
                }
                static S3: Once = Once::new();
                S3.call_once(|| deltalake::aws::register_handlers(None));
            }
            other => {
                return Err(Error::Usage(format!(
                    "store location `{location}`: `{other}://` is not supported; use a path, file:// or s3://bucket/prefix"
                )));
            }
        }
        url
    } else {
        let path = std::path::absolute(location).map_err(|e| Error::io(location, e))?;
        Url::from_directory_path(&path)
            .map_err(|()| Error::Usage(format!("invalid store path `{}`", path.display())))?
    };
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_are_directory_urls() {
        assert_eq!(parse_location("s3://bucket/debt").unwrap().as_str(), "s3://bucket/debt/");
        assert_eq!(parse_location("file:///tmp/x/").unwrap().as_str(), "file:///tmp/x/");
        let local = parse_location("some/dir").unwrap();
        assert!(local.as_str().starts_with("file:///") && local.as_str().ends_with("some/dir/"), "{local}");
    }

    #[test]
    fn the_time_of_a_failed_request_is_read_from_its_message() {
        let slow = "Error performing GET http://127.0.0.1:1/b/_last_checkpoint in 30.00161108s - HTTP error: error sending request";
        assert_eq!(request_seconds(slow), Some(30.00161108));
        let fast = "Error performing GET http://h/x in 258.972534ms, after 2 retries - HTTP error";
        assert_eq!(request_seconds(fast), Some(0.258972534));
        assert_eq!(request_seconds("no time here"), None);
    }

    #[test]
    fn only_file_and_s3_locations_are_accepted() {
        assert!(parse_location("gs://bucket/x").unwrap_err().to_string().contains("not supported"));
        assert!(parse_location("s3:///x").is_err());
    }

    #[test]
    fn table_urls_sit_under_the_store() {
        let store = Store::at("s3://bucket/debt").unwrap();
        assert_eq!(store.table_url(Table::Capacity).unwrap().as_str(), "s3://bucket/debt/capacity/");
    }
}
