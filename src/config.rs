//! The resolved configuration every command runs with: what the raw command-line arguments
//! (`cli.rs`) mean once the store is found, the formats are decided and the window defaults are
//! set. Commands read this, never the clap types.

use std::io::IsTerminal;
use std::path::PathBuf;

use crate::engine::{Engine, EngineOptions};
use crate::error::Result;
use crate::output::Format;
use crate::store::{Origin, Store};

/// The resolved configuration every command runs with.
#[derive(Debug, Clone)]
pub struct Config {
    pub store: Store,
    pub store_origin: Origin,
    pub engine: EngineOptions,
    /// The output format: --format, else the one --output's extension names, else table.
    pub format: Format,
    /// Whether the user named the output format with --format.
    pub format_given: bool,
    pub output: Option<PathBuf>,
    pub max_rows: Option<usize>,
    pub quiet: bool,
}

impl Config {
    /// A note for the user on stderr, unless --quiet.
    pub fn note(&self, message: impl std::fmt::Display) {
        if !self.quiet {
            eprintln!("{message}");
        }
    }

    /// Opens the engine over the configured store, saying so when it is the built-in sample.
    pub async fn engine(&self) -> Result<Engine> {
        self.engine_with(self.engine.clone()).await
    }

    /// As `engine`, with other engine options (the server adds its catalog).
    pub async fn engine_with(&self, options: EngineOptions) -> Result<Engine> {
        if self.store_origin == Origin::BuiltinSample {
            self.note(
                "debtlens: no store given (--data, DEBTLENS_DATA or ./debtlens-data): showing the built-in sample data",
            );
        }
        Engine::open(self.store.clone(), options).await
    }

    /// True when binary output would land on a terminal.
    pub fn binary_to_terminal(&self) -> bool {
        self.format.is_binary() && self.output.is_none() && std::io::stdout().is_terminal()
    }
}
