//! `debtlens report [--format markdown|html] [--output FILE]`: the monthly technical-health
//! review.

use crate::config::Config;
use crate::error::{Error, Result, exit};
use crate::output::Format;
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
    let session = config.engine().await?.session();
    let report = report::build(&session).await?;
    config.note(report.window);
    let text = match format {
        Format::Html => report::html::render(&report)?,
        _ => report::markdown::render(&report),
    };
    super::emit_text(config, &text)?;
    Ok(exit::OK)
}
