//! One module per subcommand, each with its arguments and a `run`. What they share, the way a
//! result reaches stdout or a file, is here.

pub mod batch;
pub mod estimate;
pub mod ingest;
pub mod init;
pub mod paydown;
pub mod query;
pub mod report;
pub mod sample;
pub mod serve;
pub mod shell;
pub mod view;
pub mod views;

use std::io::{BufWriter, Write};
use std::sync::Arc;

use datafusion::physical_plan::stream::RecordBatchStreamAdapter;

use crate::cli::Config;
use crate::engine::{QueryResult, QueryStream};
use crate::error::{Error, Result};
use crate::output::{self, Format, PipeWatch, WriteOptions, Written};

/// Writes one result where the configuration says: stdout, or `--output` atomically. Notes
/// (the window used, the row count) go to stderr.
pub async fn emit(config: &Config, result: &QueryResult) -> Result<()> {
    let batches = result.batches.clone();
    let stream =
        RecordBatchStreamAdapter::new(Arc::clone(&result.schema), futures::stream::iter(batches.into_iter().map(Ok)));
    emit_stream(
        config,
        QueryStream { schema: Arc::clone(&result.schema), stream: Box::pin(stream), window: result.window },
    )
    .await
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
    if let Some(path) = &config.output {
        // The file appears whole when the last batch is written, or not at all.
        let (written, _) = output::write_stream_to_file(path, config.format, result.schema, result.stream).await?;
        config.note(format_args!("wrote {} rows to {}", written.total, path.display()));
        return Ok(());
    }
    let options = WriteOptions { max_rows: config.max_rows, max_width: output::terminal_width() };
    let mut out = BufWriter::new(PipeWatch::new(std::io::stdout()));
    let written = match output::write_stream(config.format, result.schema, result.stream, &mut out, options).await {
        Ok(written) => out.flush().map(|()| written).map_err(Error::from),
        Err(e) => Err(e),
    };
    let Written { shown, total } = match written {
        Ok(written) => written,
        Err(_) if out.get_ref().closed() => return Err(Error::BrokenPipe),
        Err(e) => return Err(e),
    };
    if config.format == Format::Table {
        if shown < total {
            config.note(format_args!("{shown} of {total} rows shown (--max-rows 0 shows all)"));
        } else {
            config.note(format_args!("{total} {}", if total == 1 { "row" } else { "rows" }));
        }
    }
    Ok(())
}
