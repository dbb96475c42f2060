//! `debtlens export --dialect spark [--tables delta|snapshot]`: the tables and views as a Spark
//! SQL script (`crate::export`), to stdout or --output.

use std::sync::Arc;

use clap::{Args, ValueEnum};
use datafusion::catalog::TableProvider;
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::datasource::listing::ListingTable;
use datafusion::datasource::{ViewTable, source_as_provider};
use datafusion::logical_expr::LogicalPlan;
use datafusion::prelude::SessionContext;

use crate::config::Config;
use crate::error::{Error, Result, exit};
use crate::export::{ExportTable, SparkTables, TableSource, spark_script};
use crate::schema::Table;
use crate::store::{Location, Reading};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Dialect {
    /// Spark SQL (3.4 and later, Databricks).
    Spark,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The SQL dialect of the script.
    #[arg(long, value_enum)]
    pub dialect: Dialect,

    /// How the script defines the tables: `delta` (each table's Delta location, for a Spark with
    /// Delta Lake) or `snapshot` (the Parquet files of the versions debtlens reads now, for any
    /// Spark).
    #[arg(long, value_enum, default_value = "delta")]
    pub tables: SparkTables,
}

pub async fn run(config: &Config, args: ExportArgs) -> Result<u8> {
    let Dialect::Spark = args.dialect;
    if !matches!(config.store.location(), Location::Url(_)) {
        return Err(Error::Usage(format!(
            "the {} store has no files another engine could read: give --data (a folder or s3:// prefix)",
            config.store
        )));
    }
    let session = config.engine().await?.session();
    let window = session.window().await?;
    let ctx = SessionContext::new();
    let opened = config.store.open_tables(&ctx.state(), Reading::Files).await?;
    let mut tables = Vec::with_capacity(Table::ALL.len());
    for table in Table::ALL {
        let provider = opened
            .tables
            .iter()
            .find(|(name, _)| *name == table.name())
            .map(|(_, p)| Arc::clone(p))
            .ok_or_else(|| Error::Internal(format!("table {} was not opened", table.name())))?;
        let is_delta = opened.versions.iter().any(|(t, v)| *t == table && v.is_some());
        let source = if is_delta && args.tables == SparkTables::Delta {
            TableSource::Delta { location: spark_path(config.store.table_url(table)?.as_str()) }
        } else {
            match listing_paths(&provider)? {
                Some(paths) => TableSource::Parquet { paths: paths.iter().map(|p| spark_path(p)).collect() },
                None => TableSource::Empty,
            }
        };
        tables.push(ExportTable { name: table.name(), schema: provider.schema().as_ref().clone(), source });
    }
    let script = spark_script(&config.store.to_string(), &tables, &window)?;
    config.note(format_args!("window: {window}"));
    super::emit_text(config, &script)?;
    Ok(exit::OK)
}

/// The files (or folder) a table reads, when it is a listing of Parquet files, directly or under
/// the view that conforms its columns; `None` for a table with no rows.
fn listing_paths(provider: &Arc<dyn TableProvider>) -> Result<Option<Vec<String>>> {
    if let Some(listing) = provider.downcast_ref::<ListingTable>() {
        return Ok(Some(listing.table_paths().iter().map(|p| p.as_str().to_string()).collect()));
    }
    if let Some(view) = provider.downcast_ref::<ViewTable>() {
        let mut found = None;
        view.logical_plan().apply(|node| {
            if let LogicalPlan::TableScan(scan) = node
                && let Ok(inner) = source_as_provider(&scan.source)
                && let Some(listing) = inner.downcast_ref::<ListingTable>()
            {
                found = Some(listing.table_paths().iter().map(|p| p.as_str().to_string()).collect());
            }
            Ok(TreeNodeRecursion::Continue)
        })?;
        return Ok(found);
    }
    Ok(None)
}

/// A location as Spark (Hadoop) names it: a local path for `file://`, `s3a://` for S3.
fn spark_path(url: &str) -> String {
    let path = match url::Url::parse(url) {
        Ok(u) if u.scheme() == "file" => u.to_file_path().map(|p| p.display().to_string()).unwrap_or(url.to_string()),
        Ok(u) if u.scheme() == "s3" => format!("s3a{}", &url[2..]),
        _ => url.to_string(),
    };
    path.trim_end_matches('/').to_string()
}
