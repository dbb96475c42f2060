//! Opening a store's tables for reading: Delta tables at their newest version, folders of plain
//! Parquet, the built-in sample, with the schema check and the casts it asks for.

use std::sync::Arc;

use datafusion::catalog::TableProvider;
use datafusion::common::Column;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl};
use datafusion::datasource::{MemTable, ViewTable, provider_as_source};
use datafusion::execution::session_state::SessionState;
use datafusion::logical_expr::{Expr, LogicalPlanBuilder, cast, col};
use deltalake::DeltaTableError;
use url::Url;

use super::{Location, OpenTables, REJECTED_DIR, REJECTED_TABLE, Reading, Store, sample_data};
use crate::error::{Error, Result};
use crate::schema::{self, Table};

impl Store {
    /// Opens the four tables and the rejected rows, checking each against the spec's schema,
    /// with the Delta version each was read at (`None` for plain Parquet and the built-in
    /// stores). `state` is the session the providers will be read in (object stores are
    /// registered with its runtime).
    pub async fn open_tables(&self, state: &SessionState, reading: Reading) -> Result<OpenTables> {
        let mut tables = Vec::with_capacity(Table::ALL.len() + 1);
        let mut versions = Vec::with_capacity(Table::ALL.len());
        let mut bytes = Vec::with_capacity(Table::ALL.len());
        for table in Table::ALL {
            let (provider, version, size) = self.open_table(state, table, reading).await?;
            let fixes = schema::check(table, provider.schema().as_ref())?;
            let provider = if fixes.is_empty() { provider } else { conform(table, provider, &fixes)? };
            tables.push((table.name(), provider));
            versions.push((table, version));
            bytes.push((table.name(), size));
        }
        tables.push((REJECTED_TABLE, self.open_rejected(state).await?));
        Ok(OpenTables { tables, versions, bytes })
    }

    /// The rejected rows, or an empty table when nothing was ever refused.
    async fn open_rejected(&self, state: &SessionState) -> Result<Arc<dyn TableProvider>> {
        let empty = || -> Result<Arc<dyn TableProvider>> {
            Ok(Arc::new(MemTable::try_new(schema::rejected_schema(), vec![vec![]])?))
        };
        let Ok(url) = self.rejected_url() else { return empty() };
        if self.local_dir().is_some_and(|dir| !dir.join(REJECTED_DIR).join("_delta_log").is_dir()) {
            return empty();
        }
        match self.open_delta(url).await {
            Ok(delta) => {
                delta.update_datafusion_session(state)?;
                Ok(delta.table_provider().await?)
            }
            Err(_) => empty(),
        }
    }

    /// A table's provider, the Delta version it reads, and the bytes its data takes: its data
    /// files' sizes, or the memory of a table held in memory (`None` where the size is unknown).
    async fn open_table(&self, state: &SessionState, table: Table, reading: Reading) -> Result<Opened> {
        let batches = match &self.location {
            Location::BuiltinSample => sample_data::batches(table)?,
            Location::Scratch => vec![],
            Location::Url(_) => return self.open_files(state, table, reading).await,
        };
        let bytes = batches.iter().map(|b| b.get_array_memory_size() as u64).sum();
        Ok((Arc::new(MemTable::try_new(table.schema(), vec![batches])?), None, Some(bytes)))
    }

    async fn open_files(&self, state: &SessionState, table: Table, reading: Reading) -> Result<Opened> {
        let url = self.table_url(table)?;
        // The backlog and the deployments came after the first stores were made: a store without
        // them reads them as empty.
        let empty =
            || -> Result<Opened> { Ok((Arc::new(MemTable::try_new(table.schema(), vec![vec![]])?), None, Some(0))) };
        if let Some(dir) = self.local_dir() {
            let dir = dir.join(table.name());
            if !dir.is_dir() && table.added_later_table() {
                return empty();
            }
            if !dir.is_dir() {
                return Err(Error::MissingTable { store: self.to_string(), table: table.name() });
            }
            if !dir.join("_delta_log").is_dir() {
                return Ok((self.open_parquet_folder(state, table, url).await?, None, parquet_bytes(&dir)));
            }
        }
        match self.open_delta(url.clone()).await {
            Ok(delta) => {
                self.check_files(table, &delta)?;
                delta.update_datafusion_session(state)?;
                let provider = delta.table_provider().await.map_err(|e| self.explain(table, &e))?;
                let bytes = delta.snapshot().ok().map(|s| s.log_data().iter().map(|f| f.size().max(0) as u64).sum());
                let provider = match reading {
                    Reading::Providers => provider,
                    Reading::Files => self.delta_as_files(table, &delta, provider)?,
                };
                Ok((provider, delta.version(), bytes))
            }
            Err(DeltaTableError::NotATable(_)) if self.local_dir().is_none() && table.added_later_table() => empty(),
            // Plain Parquet folders are read from local stores only.
            Err(DeltaTableError::NotATable(_)) if self.local_dir().is_none() => {
                Err(Error::MissingTable { store: self.to_string(), table: table.name() })
            }
            Err(DeltaTableError::NotATable(_)) => {
                let bytes = self.local_dir().and_then(|dir| parquet_bytes(&dir.join(table.name())));
                Ok((self.open_parquet_folder(state, table, url).await?, None, bytes))
            }
            Err(e) if self.local_dir().is_some() => Err(self.log_unreadable(table, &e)),
            Err(e) => Err(self.explain(table, &e)),
        }
    }

    /// On a local store, every data file the Delta log lists must be there: with one deleted
    /// from under the table, views failed but `count(*)` still answered from the log's
    /// statistics. (One `stat` a file; object stores are not checked, a HEAD a file would cost
    /// too much at every open.)
    fn check_files(&self, table: Table, delta: &deltalake::DeltaTable) -> Result<()> {
        if self.local_dir().is_none() {
            return Ok(());
        }
        let path = |uri: &str| match Url::parse(uri) {
            Ok(url) if url.scheme() == "file" => url.to_file_path().ok(),
            _ => Some(std::path::PathBuf::from(uri)),
        };
        let missing: Vec<String> =
            delta.get_file_uris()?.filter(|uri| path(uri).is_some_and(|p| !p.exists())).collect();
        if let Some(first) = missing.first() {
            return Err(Error::Store {
                store: self.to_string(),
                table: table.name(),
                message: format!(
                    "{} data file(s) that the table's Delta log lists are missing, such as {first}: the files were \
                     removed from outside debtlens, and no answer over this table would be whole. Restore them (or the \
                     store from a backup)",
                    missing.len()
                ),
            });
        }
        Ok(())
    }

    /// A Delta table as the listing of the data files its snapshot holds, with the table's
    /// schema (a file written before a column was added reads it as null). That is the table
    /// only while reading it needs nothing but those files: reader protocol 1 (no deletion
    /// vectors, no column mapping) and no partition columns; anything else is refused. A table
    /// with no files stays with its own provider.
    fn delta_as_files(
        &self,
        table: Table,
        delta: &deltalake::DeltaTable,
        provider: Arc<dyn TableProvider>,
    ) -> Result<Arc<dyn TableProvider>> {
        let snapshot = delta.snapshot()?;
        let refuse = |what: String| Error::Store {
            store: self.to_string(),
            table: table.name(),
            message: format!("{what}: a cluster reads a Delta table as its data files, which would not be the table"),
        };
        let reader = snapshot.protocol().min_reader_version();
        if reader != 1 {
            return Err(refuse(format!(
                "the table needs Delta reader version {reader} (deletion vectors or column mapping)"
            )));
        }
        let partitions = snapshot.metadata().partition_columns();
        if !partitions.is_empty() {
            return Err(refuse(format!("the table is partitioned by {}", partitions.join(", "))));
        }
        let mut files: Vec<ListingTableUrl> =
            delta.get_file_uris()?.map(|uri| ListingTableUrl::parse(&uri)).collect::<std::result::Result<_, _>>()?;
        if files.is_empty() {
            return Ok(provider);
        }
        files.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        let options = ListingOptions::new(Arc::new(ParquetFormat::default())).with_file_extension(".parquet");
        let config = ListingTableConfig::new_with_multi_paths(files)
            .with_listing_options(options)
            .with_schema(without_views(&provider.schema()));
        Ok(Arc::new(ListingTable::try_new(config)?))
    }

    /// A folder of plain Parquet files written by another tool, read as it is.
    async fn open_parquet_folder(
        &self,
        state: &SessionState,
        table: Table,
        url: Url,
    ) -> Result<Arc<dyn TableProvider>> {
        let path = ListingTableUrl::parse(url.as_str())?;
        let options = ListingOptions::new(Arc::new(ParquetFormat::default())).with_file_extension(".parquet");
        let schema = options.infer_schema(state, &path).await?;
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
}

/// An opened table: its provider, the Delta version it reads, the bytes its data takes.
type Opened = (Arc<dyn TableProvider>, Option<u64>, Option<u64>);

/// The sizes of the `.parquet` files under `dir` (a listing table reads them all).
fn parquet_bytes(dir: &std::path::Path) -> Option<u64> {
    let mut total = 0;
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).ok()? {
            let entry = entry.ok()?;
            let meta = entry.metadata().ok()?;
            if meta.is_dir() {
                pending.push(entry.path());
            } else if entry.path().extension().is_some_and(|e| e == "parquet") {
                total += meta.len();
            }
        }
    }
    Some(total)
}

/// The table with the columns of `fixes.casts` converted to the spec's types (an export with
/// integer estimates or nanosecond timestamps) and the columns added since it was written as
/// nulls, as a view over the table as found.
fn conform(table: Table, provider: Arc<dyn TableProvider>, fixes: &schema::Conform) -> Result<Arc<dyn TableProvider>> {
    let mut columns: Vec<Expr> = provider
        .schema()
        .fields()
        .iter()
        .map(|f| match fixes.casts.iter().find(|(name, _)| name == f.name()) {
            Some((name, target)) => cast(col(Column::from_name(name)), target.clone()).alias(name),
            None => col(Column::from_name(f.name())),
        })
        .collect();
    for field in &fixes.missing {
        let null = datafusion::common::ScalarValue::try_from(field.data_type())?;
        columns.push(datafusion::logical_expr::lit(null).alias(field.name()));
    }
    let plan = LogicalPlanBuilder::scan(table.name(), provider_as_source(provider), None)?.project(columns)?.build()?;
    Ok(Arc::new(ViewTable::new(plan, None)))
}

/// `schema` with its string views as plain strings, at any depth. A cluster's stages send their
/// batches to each other as Arrow IPC, which writes every buffer a column refers to: a sorted
/// batch of string views (or lists of them) refers to the data buffers of every batch it was
/// gathered from, so each 8,192-row batch of `SELECT * FROM features ORDER BY feature_id`
/// carried 29-45 MB, and the client received about 1,500 rows a second. Plain strings are
/// copied when gathered and travel at their size.
fn without_views(schema: &datafusion::arrow::datatypes::SchemaRef) -> datafusion::arrow::datatypes::SchemaRef {
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    fn plain(data_type: &DataType) -> DataType {
        match data_type {
            DataType::Utf8View => DataType::Utf8,
            DataType::BinaryView => DataType::Binary,
            DataType::List(item) => DataType::List(Arc::new(field(item))),
            DataType::LargeList(item) => DataType::LargeList(Arc::new(field(item))),
            DataType::Struct(fields) => DataType::Struct(fields.iter().map(|f| Arc::new(field(f))).collect()),
            other => other.clone(),
        }
    }
    fn field(f: &Field) -> Field {
        f.clone().with_data_type(plain(f.data_type()))
    }
    let fields: Vec<Field> = schema.fields().iter().map(|f| field(f)).collect();
    Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()))
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::datatypes::{DataType, Field, Schema};

    use super::*;

    #[test]
    fn string_views_become_plain_strings_at_any_depth() {
        let item = Arc::new(Field::new("item", DataType::Utf8View, true));
        let inner = Field::new("reason", DataType::Utf8View, false);
        let schema = Arc::new(Schema::new(vec![
            Field::new("feature_id", DataType::Utf8View, false),
            Field::new("systems", DataType::List(item), true),
            Field::new("cause", DataType::Struct(vec![inner].into()), true),
            Field::new("weeks", DataType::Float64, true),
        ]));
        let plain = without_views(&schema);
        let types: Vec<String> = plain.fields().iter().map(|f| f.data_type().to_string()).collect();
        assert_eq!(types, ["Utf8", "List(Utf8)", "Struct(\"reason\": non-null Utf8)", "Float64"]);
        assert!(!plain.field(0).is_nullable());
    }
}
