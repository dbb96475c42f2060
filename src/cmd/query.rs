//! `debtlens query SQL` and `query -f FILE`: run read-only SQL over the tables and views.

use std::path::PathBuf;

use clap::Args;

use crate::config::Config;
use crate::engine::Ran;
use crate::error::{Error, Result, exit};
use crate::sql::split_statements;

#[derive(Debug, Args)]
#[command(arg_required_else_help = true)]
pub struct QueryArgs {
    /// The SQL to run; several statements are separated by `;`.
    #[arg(conflicts_with = "file", required_unless_present = "file", allow_hyphen_values = true)]
    pub sql: Option<String>,
    /// Read the SQL from FILE (`-` for stdin).
    #[arg(long, short = 'f', value_name = "FILE")]
    pub file: Option<PathBuf>,
}

pub async fn run(config: &Config, args: QueryArgs) -> Result<u8> {
    let (sql, origin) = match (&args.sql, &args.file) {
        (Some(sql), _) => (sql.clone(), "query".to_string()),
        (None, Some(path)) if path.as_os_str() == "-" => {
            (std::io::read_to_string(std::io::stdin()).map_err(|e| Error::io("<stdin>", e))?, "<stdin>".to_string())
        }
        (None, Some(path)) => {
            (std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?, path.display().to_string())
        }
        (None, None) => return Err(Error::Usage("give SQL or -f FILE".into())),
    };
    let statements = split_statements(&sql);
    if statements.is_empty() {
        return Err(Error::Usage(format!("{origin}: no SQL statement to run")));
    }
    if statements.len() > 1 && (config.output.is_some() || config.format.is_binary()) {
        return Err(Error::Usage(format!(
            "{origin} holds {} statements: --output and binary formats take one result; run them one at a time",
            statements.len()
        )));
    }
    let mut session = config.engine().await?.session();
    // Each result is shown as soon as its statement is done; the first failure stops the script
    // and names the statement and its line.
    for (index, (line, statement)) in statements.into_iter().enumerate() {
        let located = |source: Error| {
            if (index == 0 && args.sql.is_some()) || matches!(source, Error::BrokenPipe) {
                source
            } else {
                Error::Statement { origin: origin.clone(), index: index + 1, line, source: Box::new(source) }
            }
        };
        match session.run(statement).await.map_err(located)? {
            Ran::Rows(result) => super::emit_stream(config, result).await.map_err(located)?,
            Ran::Set(window) => config.note(window),
        }
    }
    Ok(exit::OK)
}
