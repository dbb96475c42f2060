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

use crate::cli::Config;
use crate::engine::QueryResult;
use crate::error::{Error, Result};
use crate::output::{self, Format, PipeWatch, WriteOptions};

/// Writes one result where the configuration says: stdout, or `--output` atomically. Notes
/// (the window used, the row count) go to stderr.
pub fn emit(config: &Config, result: &QueryResult) -> Result<()> {
    if config.binary_to_terminal() {
        return Err(Error::Usage(format!(
            "{:?} output is binary: give --output FILE or redirect stdout",
            config.format
        )));
    }
    if let Some(window) = result.window {
        config.note(window);
    }
    let total = result.rows();
    if let Some(path) = &config.output {
        output::write_file_atomically(path, |file| {
            let mut out = BufWriter::new(file);
            output::write(config.format, &result.schema, &result.batches, &mut out, WriteOptions::default())?;
            out.flush()?;
            Ok(())
        })?;
        config.note(format_args!("wrote {total} rows to {}", path.display()));
        return Ok(());
    }
    let options = WriteOptions { max_rows: config.max_rows, max_width: output::terminal_width() };
    let mut out = BufWriter::new(PipeWatch::new(std::io::stdout()));
    let written = output::write(config.format, &result.schema, &result.batches, &mut out, options)
        .and_then(|shown| out.flush().map(|()| shown).map_err(Error::from));
    let shown = match written {
        Ok(shown) => shown,
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
