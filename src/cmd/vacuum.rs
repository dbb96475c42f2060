//! `debtlens vacuum [TABLE...]`: remove the data files no table version in use needs: what an
//! interrupted or killed ingest wrote and never committed, what a failed commit left, and files
//! replaced by an upsert, once they are older than `--retain`; then the Delta log entries older
//! than that (after a checkpoint), and the staging folders killed ingests left.

use std::time::Duration;

use clap::Args;

use crate::config::Config;
use crate::error::{Error, Result, exit};
use crate::schema::Table;
use crate::store::Location;
use crate::time::duration_text;

#[derive(Debug, Args)]
pub struct VacuumArgs {
    /// The tables to clean (features, incidents, capacity, backlog). Default: every table,
    /// and the rejected rows.
    pub tables: Vec<String>,

    /// Keep files younger than this (written by an ingest that may still be committing, or
    /// read by a query that started before the commit that replaced them).
    #[arg(long, default_value = "24h", value_name = "DURATION", value_parser = parse_retain)]
    pub retain: Duration,

    /// List what would be removed, remove nothing.
    #[arg(long)]
    pub dry_run: bool,
}

fn parse_retain(s: &str) -> std::result::Result<Duration, String> {
    crate::time::parse_duration(&s.to_lowercase())
        .ok_or_else(|| format!("invalid duration `{s}`: expected a number and a unit, such as 30min, 24h or 7d"))
}

pub async fn run(config: &Config, args: VacuumArgs) -> Result<u8> {
    if !matches!(config.store.location(), Location::Url(_)) {
        return Err(Error::Usage(format!("the {} store has no files to clean: give --data", config.store)));
    }
    let tables = if args.tables.is_empty() {
        Table::ALL.iter().map(|t| Some(*t)).chain([None]).collect()
    } else {
        args.tables.iter().map(|name| name.parse::<Table>().map(Some)).collect::<Result<Vec<_>>>()?
    };
    let mut total = 0;
    let mut log_entries = 0;
    for table in tables {
        let name = table.map_or(crate::store::REJECTED_TABLE, Table::name);
        let Some(cleaned) = config.store.vacuum(table, args.retain, args.dry_run).await? else {
            config.note(format_args!("{name}: no table in this store"));
            continue;
        };
        for file in &cleaned.files {
            config.note(format_args!("{} {name}/{file}", if args.dry_run { "would remove" } else { "removed" }));
        }
        total += cleaned.files.len();
        log_entries += cleaned.log_entries;
    }
    config.note(format_args!(
        "{} {total} file{} older than {} that no table version uses",
        if args.dry_run { "would remove" } else { "removed" },
        if total == 1 { "" } else { "s" },
        duration_text(args.retain)
    ));
    if !args.dry_run {
        config.note(format_args!("removed {log_entries} Delta log entries older than {}", duration_text(args.retain)));
    }
    let staging = crate::ingest::remove_stale_staging(args.retain, args.dry_run);
    if staging > 0 {
        config.note(format_args!(
            "{} {staging} staging folder{} of killed ingests in {}",
            if args.dry_run { "would remove" } else { "removed" },
            if staging == 1 { "" } else { "s" },
            std::env::temp_dir().display()
        ));
    }
    Ok(exit::OK)
}
