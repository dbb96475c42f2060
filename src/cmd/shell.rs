//! `debtlens shell`: the interactive SQL shell, or a script from `-c`, `-f` or stdin.

use std::io::IsTerminal;
use std::path::PathBuf;

use clap::Args;

use crate::config::Config;
use crate::error::{Error, Result, exit};
use crate::shell::{self, Shell};

#[derive(Debug, Args)]
pub struct ShellArgs {
    /// Run these statements (and backslash commands), then exit.
    #[arg(long, short = 'c', value_name = "SQL", conflicts_with = "file", allow_hyphen_values = true)]
    pub command: Option<String>,
    /// Run the statements of FILE, then exit.
    #[arg(long, short = 'f', value_name = "FILE")]
    pub file: Option<PathBuf>,
}

pub async fn run(config: &Config, args: ShellArgs) -> Result<u8> {
    if config.output.is_some() {
        return Err(Error::Usage("the shell sends results to a file with \\o FILE, not --output".into()));
    }
    let script = match (&args.command, &args.file) {
        (Some(sql), _) => Some(("-c".to_string(), sql.clone())),
        (None, Some(path)) => {
            Some((path.display().to_string(), std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?))
        }
        (None, None) if !std::io::stdin().is_terminal() => Some((
            "<stdin>".to_string(),
            std::io::read_to_string(std::io::stdin()).map_err(|e| Error::io("<stdin>", e))?,
        )),
        (None, None) => None,
    };
    let session = config.engine().await?.session();
    let mut shell = Shell::new(session, config.format, config.max_rows, config.quiet, script.is_none());
    match script {
        Some((origin, text)) => {
            shell.run_text(&origin, &text).await?;
            Ok(if shell.failures() > 0 { exit::RUNTIME } else { exit::OK })
        }
        None => {
            shell::interactive(&mut shell).await?;
            Ok(exit::OK)
        }
    }
}
