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

use super::{Location, OpenTables, REJECTED_DIR, REJECTED_TABLE, Store, sample_data};
use crate::error::{Error, Result};
use crate::schema::{self, Table};

impl Store {
    /// Opens the four tables and the rejected rows, checking each against the spec's schema,
    /// with the Delta version each was read at (`None` for plain Parquet and the built-in
    /// stores). `state` is the session the providers will be read in (object stores are
    /// registered with its runtime).
    pub async fn open_tables(&self, state: &SessionState) -> Result<OpenTables> {
        let mut tables = Vec::with_capacity(Table::ALL.len() + 1);
        let mut versions = Vec::with_capacity(Table::ALL.len());
        for table in Table::ALL {
            let (provider, version) = self.open_table(state, table).await?;
            let casts = schema::check(table, provider.schema().as_ref())?;
            let provider = if casts.is_empty() { provider } else { conform(table, provider, &casts)? };
            tables.push((table.name(), provider));
            versions.push((table, version));
        }
        tables.push((REJECTED_TABLE, self.open_rejected(state).await?));
        Ok(OpenTables { tables, versions })
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

    async fn open_table(&self, state: &SessionState, table: Table) -> Result<(Arc<dyn TableProvider>, Option<u64>)> {
        let batches = match &self.location {
            Location::BuiltinSample => sample_data::batches(table)?,
            Location::Scratch => vec![],
            Location::Url(_) => return self.open_files(state, table).await,
        };
        Ok((Arc::new(MemTable::try_new(table.schema(), vec![batches])?), None))
    }

    async fn open_files(&self, state: &SessionState, table: Table) -> Result<(Arc<dyn TableProvider>, Option<u64>)> {
        let url = self.table_url(table)?;
        // The backlog came after the first stores were made: one without it has an empty backlog.
        let empty = || -> Result<(Arc<dyn TableProvider>, Option<u64>)> {
            Ok((Arc::new(MemTable::try_new(table.schema(), vec![vec![]])?), None))
        };
        if let Some(dir) = self.local_dir() {
            let dir = dir.join(table.name());
            if !dir.is_dir() && table == Table::Backlog {
                return empty();
            }
            if !dir.is_dir() {
                return Err(Error::MissingTable { store: self.to_string(), table: table.name() });
            }
            if !dir.join("_delta_log").is_dir() {
                return Ok((self.open_parquet_folder(state, table, url).await?, None));
            }
        }
        match self.open_delta(url.clone()).await {
            Ok(delta) => {
                self.check_files(table, &delta)?;
                delta.update_datafusion_session(state)?;
                let provider = delta.table_provider().await.map_err(|e| self.explain(table, &e))?;
                Ok((provider, delta.version()))
            }
            Err(DeltaTableError::NotATable(_)) if self.local_dir().is_none() && table == Table::Backlog => empty(),
            // Plain Parquet folders are read from local stores only.
            Err(DeltaTableError::NotATable(_)) if self.local_dir().is_none() => {
                Err(Error::MissingTable { store: self.to_string(), table: table.name() })
            }
            Err(DeltaTableError::NotATable(_)) => Ok((self.open_parquet_folder(state, table, url).await?, None)),
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
