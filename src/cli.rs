//! The command line: clap types (their doc comments are the help text), their resolution into
//! the `Config` commands read (`config.rs`), and the dispatch to `cmd/`.

use std::path::PathBuf;

use chrono::{DateTime, Utc};
use clap::parser::ValueSource;
use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};

use crate::cmd;
use crate::config::Config;
use crate::engine::EngineOptions;
use crate::error::{Error, Result, exit};
use crate::output::Format;
use crate::store::Store;
use crate::time::parse_as_of;
use crate::window::{DEFAULT_WINDOW_DAYS, MAX_WINDOW_DAYS, WindowSettings};

/// debtlens measures what technical debt costs, in the units product already uses: how much
/// slower features are on each system, the delay-days each system and reason causes, the share
/// of the budget absorbed by debt, and the incidents each system causes.
#[derive(Debug, Parser)]
#[command(name = "debtlens", version, max_term_width = 100)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// The store: a directory or URL. Without it: ./debtlens-data if it exists, else the
    /// built-in sample.
    #[arg(long, global = true, env = crate::store::DATA_ENV, value_name = "DIR")]
    pub data: Option<String>,

    /// The end of the analysis window: a date (the end of that day, UTC) or a date-time.
    /// Default: the newest shipped feature.
    #[arg(long, global = true, value_name = "DATE", value_parser = parse_as_of)]
    pub as_of: Option<DateTime<Utc>>,

    /// The length of the analysis window in days.
    #[arg(long, global = true, value_name = "N", default_value_t = DEFAULT_WINDOW_DAYS,
          value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_WINDOW_DAYS)))]
    pub window_days: u32,

    /// Output format. Default: table, or the one --output's extension names.
    #[arg(long, global = true, value_enum)]
    pub format: Option<Format>,

    /// Write the result to FILE (atomically: a temporary file, then a rename) instead of stdout.
    #[arg(long, short = 'o', global = true, value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// Memory for query execution (e.g. 512M, 2G); operators spill to disk beyond it.
    #[arg(long, global = true, value_name = "SIZE", value_parser = crate::numbers::parse_size)]
    pub memory_limit: Option<usize>,

    /// Threads for query execution (default: one per core). Answers are the same for any N.
    #[arg(long, global = true, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub threads: Option<u16>,

    /// Rows shown in table output (0: all). Never limits csv, json or file outputs.
    #[arg(long, global = true, value_name = "N", default_value_t = 40)]
    pub max_rows: usize,

    /// Run queries on a Ballista cluster (`debtlens cluster`), given by its scheduler:
    /// df://HOST:PORT. The store must be on a disk every executor reads. Answers are the same.
    #[arg(long, global = true, env = crate::cluster::CLUSTER_ENV, value_name = "URL",
          value_parser = cmd::cluster::parse_cluster)]
    pub cluster: Option<crate::cluster::ClusterUrl>,

    /// Print nothing but results and errors.
    #[arg(long, short = 'q', global = true)]
    pub quiet: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create an empty store with the four tables.
    Init(cmd::init::InitArgs),
    /// Load CSV, JSON, NDJSON or Parquet files into a table (upsert by key).
    Ingest(cmd::ingest::IngestArgs),
    /// Generate a realistic, deterministic sample store.
    Sample(cmd::sample::SampleArgs),
    /// List the views with what they answer and their columns.
    Views,
    /// Run one view.
    View(cmd::view::ViewArgs),
    /// Run SQL (read-only) over the tables and views.
    Query(cmd::query::QueryArgs),
    /// The interactive SQL shell (or a script: -c SQL, -f FILE, or statements on stdin).
    Shell(cmd::shell::ShellArgs),
    /// Estimate a new feature with the debt tax of the systems it touches.
    Estimate(cmd::estimate::EstimateArgs),
    /// What paying debt down returns: capacity regained, net return, payback.
    Paydown(cmd::paydown::PaydownArgs),
    /// The roadmap forecast: when each team's backlog is done (P50, P85), and what paying a
    /// system's debt down moves.
    Plan(cmd::plan::PlanArgs),
    /// The monthly technical-health review, as Markdown or a self-contained HTML page.
    Report,
    /// Remove data files no table version uses (left by interrupted ingests, replaced by
    /// upserts) once they are older than --retain.
    Vacuum(cmd::vacuum::VacuumArgs),
    /// Compact a table's small files (left by many small ingests) into the layout the first
    /// ingest writes, in one commit: readers see the old table or the new one.
    Optimize(cmd::optimize::OptimizeArgs),
    /// Run the jobs of a jobs file (for cron): each output written atomically, then a manifest.
    Batch(cmd::batch::BatchArgs),
    /// Serve the tables and views over the PostgreSQL wire protocol, read-only, for BI tools and
    /// psql.
    Serve(cmd::serve::ServeArgs),
    /// Write the tables and views as a script for another engine (Spark SQL).
    Export(cmd::export::ExportArgs),
    /// Run a scheduler or an executor of a Ballista cluster, for --cluster.
    Cluster(cmd::cluster::ClusterArgs),
}

/// Resolves the raw global arguments into the configuration commands read.
fn resolve(args: &GlobalArgs, data_from_env: bool) -> Result<Config> {
    let (store, store_origin) = Store::find(args.data.as_deref(), data_from_env)?;
    let format =
        args.format.or_else(|| args.output.as_deref().and_then(Format::from_extension)).unwrap_or(Format::Table);
    Ok(Config {
        store,
        store_origin,
        engine: EngineOptions {
            memory_limit: args.memory_limit,
            threads: args.threads.map(usize::from),
            window: WindowSettings { as_of: args.as_of, days: args.window_days },
            cluster: args.cluster.clone(),
            ..EngineOptions::default()
        },
        format,
        format_given: args.format.is_some(),
        output: args.output.clone(),
        max_rows: (args.max_rows > 0).then_some(args.max_rows),
        quiet: args.quiet,
    })
}

/// Parses the command line and runs the command. Returns the process exit code.
pub fn run() -> Result<u8> {
    let matches = match Cli::command().try_get_matches() {
        Ok(m) => m,
        Err(e) => {
            let _ = e.print();
            return Ok(if e.use_stderr() { exit::USAGE } else { exit::OK });
        }
    };
    let cli = Cli::from_arg_matches(&matches).map_err(|e| Error::Usage(e.to_string()))?;
    let from_env = matches.value_source("data") == Some(ValueSource::EnvVariable);
    let config = resolve(&cli.global, from_env)?;
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    if let Some(threads) = config.engine.threads {
        runtime.worker_threads(threads);
    }
    let runtime =
        runtime.enable_all().build().map_err(|e| Error::Internal(format!("cannot start the runtime: {e}")))?;
    // The shell and the server handle Ctrl-C and SIGTERM themselves; any other command stops
    // at once, its future dropped: a temporary output file is removed, an ingest not yet
    // committed leaves the store as it was.
    let interruptible = !matches!(cli.command, Command::Shell(_) | Command::Serve(_) | Command::Cluster(_));
    let result = runtime.block_on(async {
        let command = async {
            match cli.command {
                Command::Init(args) => cmd::init::run(&config, args).await,
                Command::Ingest(args) => cmd::ingest::run(&config, args).await,
                Command::Sample(args) => cmd::sample::run(&config, args).await,
                Command::Views => cmd::views::run(&config).await,
                Command::View(args) => cmd::view::run(&config, args).await,
                Command::Query(args) => cmd::query::run(&config, args).await,
                Command::Shell(args) => cmd::shell::run(&config, args).await,
                Command::Estimate(args) => cmd::estimate::run(&config, args).await,
                Command::Paydown(args) => cmd::paydown::run(&config, args).await,
                Command::Plan(args) => cmd::plan::run(&config, args).await,
                Command::Report => cmd::report::run(&config).await,
                Command::Batch(args) => cmd::batch::run(&config, args).await,
                Command::Vacuum(args) => cmd::vacuum::run(&config, args).await,
                Command::Optimize(args) => cmd::optimize::run(&config, args).await,
                Command::Serve(args) => cmd::serve::run(&config, args).await,
                Command::Export(args) => cmd::export::run(&config, args).await,
                Command::Cluster(args) => cmd::cluster::run(&config, args).await,
            }
        };
        if !interruptible {
            return command.await;
        }
        tokio::select! {
            result = command => result,
            error = interrupted() => Err(error),
        }
    });
    if matches!(result, Err(Error::Interrupted { .. })) {
        // Work on blocking threads (a file being read) is not waited for.
        runtime.shutdown_background();
    }
    result
}

/// Resolves when SIGINT (Ctrl-C) or SIGTERM arrives, with the error that says which.
async fn interrupted() -> Error {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut int), Ok(mut term)) = (signal(SignalKind::interrupt()), signal(SignalKind::terminate())) else {
            return std::future::pending().await;
        };
        tokio::select! {
            _ = int.recv() => Error::Interrupted { name: "SIGINT", number: 2 },
            _ = term.recv() => Error::Interrupted { name: "SIGTERM", number: 15 },
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
        Error::Interrupted { name: "Ctrl-C", number: 2 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }
}
