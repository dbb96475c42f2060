//! One module per subcommand, each with its arguments and a `run`. What they share, the way a
//! result reaches stdout or a file, is here.

pub mod batch;
pub mod cluster;
pub mod estimate;
pub mod export;
pub mod ingest;
pub mod init;
pub mod optimize;
pub mod paydown;
pub mod plan;
pub mod query;
pub mod report;
pub mod sample;
pub mod serve;
pub mod shell;
pub mod vacuum;
pub mod view;
pub mod views;

use crate::config::Config;
use crate::engine::{QueryResult, QueryStream};
use crate::error::{Error, Result};
use crate::output::{self, Destination, Format, WriteOptions};

/// Writes one result where the configuration says: stdout, or `--output` atomically. Notes
/// (the window used, the row count) go to stderr.
pub async fn emit(config: &Config, result: QueryResult) -> Result<()> {
    emit_stream(config, result.into_stream()).await
}

/// Writes a result as its batches arrive (see `output::ResultWriter`), so that a view larger
/// than memory goes out in CSV, JSON, Parquet or Arrow without being held whole.
pub async fn emit_stream(config: &Config, result: QueryStream) -> Result<()> {
    if config.binary_to_terminal() {
        return Err(Error::Usage(format!(
            "{:?} output is binary: give --output FILE or redirect stdout",
            config.format
        )));
    }
    if let Some(window) = result.window {
        config.note(window);
    }
    let destination = Destination::of(config.output.as_deref());
    let options = WriteOptions { max_rows: config.max_rows, max_width: output::terminal_width() };
    let delivered = destination.write_stream(config.format, result.schema, result.stream, options).await?;
    let (shown, total) = (delivered.written.shown, delivered.written.total);
    match &config.output {
        Some(path) => config.note(format_args!("wrote {total} rows to {}", path.display())),
        None if config.format == Format::Table && shown < total => {
            config.note(format_args!("{shown} of {total} rows shown (--max-rows 0 shows all)"))
        }
        None if config.format == Format::Table => {
            config.note(format_args!("{total} {}", if total == 1 { "row" } else { "rows" }))
        }
        None => {}
    }
    Ok(())
}

/// Writes text made whole already (an estimate, a report) to stdout or `--output`.
pub fn emit_text(config: &Config, text: &str) -> Result<()> {
    Destination::of(config.output.as_deref()).write_text(text)?;
    if let Some(path) = &config.output {
        config.note(format_args!("wrote {}", path.display()));
    }
    Ok(())
}

/// A value as pretty JSON text with a final newline.
pub fn json_text(value: &impl serde::Serialize) -> Result<String> {
    let mut text = serde_json::to_string_pretty(value).map_err(|e| Error::Internal(format!("JSON: {e}")))?;
    text.push('\n');
    Ok(text)
}
