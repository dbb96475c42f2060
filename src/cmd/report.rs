//! `debtlens report [--format markdown|html] [--output FILE]`: the monthly technical-health
//! review.

use std::io::Write;

use crate::cli::Config;
use crate::error::{Error, Result, exit};
use crate::output::{self, Format};
use crate::report;

pub async fn run(config: &Config) -> Result<u8> {
    let format = match config.format {
        Format::Table | Format::Markdown => Format::Markdown,
        Format::Html => Format::Html,
        other => {
            return Err(Error::Usage(format!(
                "report is written as markdown or html, not {other:?}; the numbers behind it are views: \
                 `debtlens view system_health --format {}`",
                format!("{other:?}").to_lowercase()
            )));
        }
    };
    let engine = config.engine().await?;
    let report = report::build(&engine).await?;
    config.note(report.window);
    let text = match format {
        Format::Html => report::html::render(&report)?,
        _ => report::markdown::render(&report),
    };
    match &config.output {
        Some(path) => {
            output::write_file_atomically(path, |file| {
                file.write_all(text.as_bytes())?;
                Ok(())
            })?;
            config.note(format_args!("wrote the report to {}", path.display()));
        }
        None => {
            let mut stdout = std::io::stdout().lock();
            stdout.write_all(text.as_bytes()).and_then(|()| stdout.flush())?;
        }
    }
    Ok(exit::OK)
}
