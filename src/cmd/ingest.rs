//! `debtlens ingest TABLE FILE...`: load exports into a table, upserting by key, keeping every
//! refused row with its reason.

use std::io::IsTerminal;
use std::path::PathBuf;

use clap::Args;

use crate::config::Config;
use crate::error::{Error, Result, exit};
use crate::ingest::{IngestOptions, InputFormat, Mapping, ingest};
use crate::output::Destination;
use crate::schema::Table;
use crate::store::Origin;

#[derive(Debug, Args)]
pub struct IngestArgs {
    /// The table to load: features, incidents, capacity, backlog or deployments.
    pub table: String,
    /// The files to load, in order (a key in a later file replaces the same key in an earlier one).
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Map the inputs' columns onto the table's: a preset (`jira`, `devlake`) or a TOML file.
    #[arg(long, value_name = "PRESET|FILE")]
    pub map: Option<String>,
    /// Give a column the same value on every row (repeatable), over the input and the mapping:
    /// `--set system=checkout-api` for a GitLab project's deployments.
    #[arg(long = "set", value_name = "COLUMN=VALUE", value_parser = parse_constant)]
    pub constants: Vec<(String, String)>,
    /// The input format of every file. Default: each file's extension.
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub input_format: Option<InputFormat>,
    /// The field separator of CSV files: one character, such as `;` or `\t` (tab).
    #[arg(long, value_name = "CHAR", value_parser = parse_delimiter)]
    pub delimiter: Option<u8>,
    /// Exit 0 even when rows were rejected (they are still kept in _rejected/).
    #[arg(long)]
    pub allow_rejects: bool,
    /// Do not compact the table after the ingest, however many small files it has.
    #[arg(long)]
    pub no_auto_optimize: bool,
    /// Compact the table after the ingest (as `debtlens optimize TABLE`) once it has this many
    /// data files and more than a compact table has.
    #[arg(long, value_name = "FILES", default_value_t = crate::cmd::optimize::AUTO_OPTIMIZE_FILES)]
    pub auto_optimize_at: usize,
}

pub async fn run(config: &Config, args: IngestArgs) -> Result<u8> {
    let table: Table = args.table.parse()?;
    if config.store_origin == Origin::BuiltinSample {
        return Err(Error::Usage(
            "ingest needs a store: give --data DIR (create one with `debtlens init DIR`) or make ./debtlens-data"
                .into(),
        ));
    }
    if config.format_given {
        return Err(Error::Usage(
            "--format names an output format; the input format of ingest is --input-format csv|json|ndjson|parquet"
                .into(),
        ));
    }
    let format = args.input_format;
    let mapping = args.map.as_deref().map(|m| Mapping::load(m, table)).transpose()?;
    let mapping = Mapping::with_constants(mapping, table, &args.constants)?;
    let options = IngestOptions {
        format,
        mapping,
        delimiter: args.delimiter,
        progress: std::io::stderr().is_terminal() && !config.quiet,
    };
    let summary = ingest(&config.store, table, &args.files, &options).await?;
    for (file, columns) in &summary.ignored_columns {
        config.note(format_args!(
            "warning: {}: ignored columns that are not in {}: {}",
            file.display(),
            table.name(),
            ignored_list(columns)
        ));
    }
    if summary.future_dates > 0 {
        config.note(format_args!("warning: {} rows have a date in the future; they were loaded", summary.future_dates));
    }
    let line = format!(
        "{}: read {}, loaded {}, replaced {}, rejected {}\n",
        table.name(),
        summary.read,
        summary.loaded,
        summary.replaced,
        summary.rejected
    );
    // The rows are in the store already: a reader gone from stdout changes nothing about that.
    match Destination::Stdout.write_text(&line) {
        Err(e) if !e.is_broken_pipe() => return Err(e),
        _ => {}
    }
    compact_if_fragmented(config, table, &args).await?;
    if summary.rejected > 0 {
        config.note(format_args!(
            "rejected rows are kept in {}/_rejected with their line and reason: debtlens query \"SELECT * FROM rejected_rows\"",
            config.store.to_string().trim_end_matches('/')
        ));
        if !args.allow_rejects {
            return Ok(exit::REJECTED);
        }
    }
    Ok(exit::OK)
}

/// After an ingest: a table that many small ingests left in many files is compacted (past
/// `--auto-optimize-at`, unless `--no-auto-optimize`), or the user is told `optimize` would
/// compact it. The ingest's rows are committed already: a compaction that fails is a warning,
/// not a failed ingest.
async fn compact_if_fragmented(config: &Config, table: Table, args: &IngestArgs) -> Result<()> {
    use crate::cmd::optimize::{HINT_FILES, summary};
    let Some((files, planned)) = config.store.file_counts(table).await? else { return Ok(()) };
    if files <= planned {
        return Ok(());
    }
    let name = table.name();
    if !args.no_auto_optimize && files >= args.auto_optimize_at.max(1) {
        match config.store.optimize(table, None).await {
            Ok(Some(optimized)) => config.note(format_args!(
                "{name}: compacted after the ingest (--no-auto-optimize turns this off): {}",
                summary(&optimized)
            )),
            Ok(None) => {}
            Err(e) => config.note(format_args!(
                "warning: {name}: the ingest landed, but compacting its {files} files failed: {e}; \
                 run `debtlens optimize {name}`"
            )),
        }
    } else if files >= HINT_FILES {
        config.note(format_args!(
            "hint: {name} has {files} data files where {planned} would hold it; `debtlens optimize {name}` compacts \
             them (ingest does it by itself at {} files)",
            args.auto_optimize_at
        ));
    }
    Ok(())
}

/// The ignored columns as a warning names them: each cut to 60 characters, at most 20.
fn ignored_list(columns: &[String]) -> String {
    let mut list: Vec<String> = columns.iter().take(20).map(|c| crate::ingest::read::shown(c)).collect();
    if columns.len() > 20 {
        list.push(format!("and {} more", columns.len() - 20));
    }
    list.join(", ")
}

/// `--delimiter`: one ASCII character; `\t` and `tab` for a tab.
fn parse_delimiter(s: &str) -> std::result::Result<u8, String> {
    match s {
        "\\t" | "tab" | "\t" => Ok(b'\t'),
        _ if s.len() == 1 && s.is_ascii() && s != "\"" && s != "\n" && s != "\r" => Ok(s.as_bytes()[0]),
        _ => Err(format!("`{s}` is not a delimiter: give one character, such as ';' or '\\t'")),
    }
}

/// `COLUMN=VALUE` of `--set`.
fn parse_constant(s: &str) -> std::result::Result<(String, String), String> {
    match s.split_once('=') {
        Some((column, value)) if !column.trim().is_empty() => Ok((column.trim().to_string(), value.to_string())),
        _ => Err(format!("`{s}`: expected COLUMN=VALUE, such as system=checkout-api")),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn delimiters_are_one_character() {
        assert_eq!(super::parse_delimiter(";"), Ok(b';'));
        assert_eq!(super::parse_delimiter("\\t"), Ok(b'\t'));
        assert_eq!(super::parse_delimiter("tab"), Ok(b'\t'));
        assert!(super::parse_delimiter(";;").is_err());
        assert!(super::parse_delimiter("\"").is_err());
    }
}
