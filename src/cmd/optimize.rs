//! `debtlens optimize [TABLE...]`: compact a table's small files (left by daily ingests) into
//! the layout the first ingest writes, in one commit readers never see half of.

use clap::Args;

use crate::config::Config;
use crate::error::{Error, Result, exit};
use crate::numbers;
use crate::schema::Table;
use crate::store::{Location, Optimized, Store};

#[derive(Debug, Args)]
pub struct OptimizeArgs {
    /// The tables to compact (features, incidents, capacity, backlog). Default: all four.
    pub tables: Vec<String>,

    /// Write files of about this size or under, such as 256M (at least as many files as the
    /// layout deals row groups over). Default: the layout's files, as the first ingest writes.
    #[arg(long, value_name = "SIZE", value_parser = parse_target)]
    pub target_size: Option<u64>,
}

fn parse_target(s: &str) -> std::result::Result<u64, String> {
    crate::numbers::parse_size(s).map(|b| b as u64)
}

pub async fn run(config: &Config, args: OptimizeArgs) -> Result<u8> {
    if !matches!(config.store.location(), Location::Url(_)) {
        return Err(Error::Usage(format!("the {} store has no files to compact: give --data", config.store)));
    }
    let tables = if args.tables.is_empty() {
        Table::ALL.to_vec()
    } else {
        args.tables.iter().map(|name| name.parse::<Table>()).collect::<Result<Vec<_>>>()?
    };
    for table in tables {
        optimize_table(config, &config.store, table, args.target_size).await?;
    }
    Ok(exit::OK)
}

/// Files at which an ingest compacts the table it wrote (`--auto-optimize-at`), as Delta's
/// auto-compaction does (its `minNumFiles`, 50).
pub const AUTO_OPTIMIZE_FILES: usize = 50;
/// Files at which an ingest says that `optimize` would compact the table.
pub const HINT_FILES: usize = 16;

/// Compacts one table and says what it did on stderr (one line).
pub async fn optimize_table(config: &Config, store: &Store, table: Table, target_size: Option<u64>) -> Result<()> {
    let name = table.name();
    match store.optimize(table, target_size).await? {
        None => config.note(format_args!("{name}: no Delta table in this store (a Parquet folder is read as it is)")),
        Some(optimized) => config.note(format_args!("{name}: {}", summary(&optimized))),
    }
    Ok(())
}

/// `200 files (1.9 MB) -> 4 files (1.7 MB), 200000 rows, version 205`, or why nothing was done.
pub fn summary(o: &Optimized) -> String {
    let files = |n: usize| format!("{n} file{}", if n == 1 { "" } else { "s" });
    let size = |b: u64| numbers::bytes(i64::try_from(b).unwrap_or(i64::MAX));
    match &o.rewritten {
        None if o.files_before == 0 => "empty: nothing to compact".to_string(),
        None => format!(
            "already compact: {} ({}), at most {} for its size",
            files(o.files_before),
            size(o.bytes_before),
            o.planned_files
        ),
        Some(r) => format!(
            "{} ({}) -> {} ({}), {} rows, version {}",
            files(o.files_before),
            size(o.bytes_before),
            files(r.files),
            size(r.bytes),
            r.rows,
            r.version
        ),
    }
}
