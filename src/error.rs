//! The library's one error type. Each variant carries the context a user needs to find the
//! problem (table, column, view, file, statement), and knows its exit code.

use std::path::PathBuf;

use datafusion::arrow::error::ArrowError;
use datafusion::error::DataFusionError;
use datafusion::parquet::errors::ParquetError;
use deltalake::DeltaTableError;

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Exit codes of interfaces.md.
pub mod exit {
    pub const OK: u8 = 0;
    pub const RUNTIME: u8 = 1;
    pub const USAGE: u8 = 2;
    pub const REJECTED: u8 = 3;
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The user asked for something that cannot be: a bad value, a missing file, a bad flag.
    #[error("{0}")]
    Usage(String),

    /// Something inside debtlens failed that the user cannot fix by changing the command: a
    /// thread or channel that broke, a built-in view that does not plan, a chart that cannot
    /// be drawn. Exit 1.
    #[error("internal error: {0}")]
    Internal(String),

    /// A bad value at a place in an input file (ingest): the file, line and column (1-based;
    /// the column is the field's position for CSV and 0 when unknown).
    #[error("{}: {message}", place(.file, *.line, *.column))]
    Input { file: PathBuf, line: u64, column: u64, message: String },

    /// A statement too deep to plan safely (`sql::MAX_OPERATOR_CHAIN`).
    #[error("{0}")]
    TooDeep(String),

    /// A statement that is not a query, refused by a read-only surface.
    #[error("{0}")]
    ReadOnly(String),

    #[error("unknown view `{name}`{}", suggest(.suggestions))]
    UnknownView { name: String, suggestions: Vec<String> },

    #[error("store {store}: no `{table}` table (expected a folder {table}/ holding a Delta table or Parquet files)")]
    MissingTable { store: String, table: &'static str },

    #[error("table `{table}`, column `{column}`: expected {expected}, found {found}")]
    ColumnType { table: &'static str, column: String, expected: String, found: String },

    #[error("store {store}, table `{table}`: {message}")]
    Store { store: String, table: &'static str, message: String },

    /// The store's object storage cannot be reached as configured: no bucket, no credentials,
    /// access denied, an endpoint that does not answer.
    #[error("store {store}: {message}")]
    Unreachable { store: String, message: String },

    /// The cluster failed: a scheduler or executor that cannot start (a port in use), or one
    /// that does not answer. Exit 1 (a query's own failure on the cluster is `DataFusion`).
    #[error("cluster: {0}")]
    Cluster(String),

    #[error("{}: {source}", .path.display())]
    Io { path: PathBuf, source: std::io::Error },

    /// A problem at a place in a file the user wrote (a jobs file, a script).
    #[error("{file}:{line}:{column}: {message}")]
    Located { file: String, line: usize, column: usize, message: String },

    /// A statement of a script failed; `line` is where it starts.
    #[error("{origin}, statement {index} (line {line}): {source}")]
    Statement { origin: String, index: usize, line: usize, source: Box<Error> },

    #[error("{}", clean_datafusion_message(.0))]
    DataFusion(#[from] DataFusionError),

    #[error(transparent)]
    Arrow(#[from] ArrowError),

    #[error(transparent)]
    Parquet(#[from] ParquetError),

    #[error(transparent)]
    Delta(#[from] DeltaTableError),

    /// Writing to stdout failed because the reader went away (`| head`): not an error to report.
    #[error("broken pipe")]
    BrokenPipe,

    /// SIGINT or SIGTERM stopped the command; what it was writing was removed (an output file
    /// appears whole or not at all, an ingest commits whole or not at all). Exit 128 + the
    /// signal's number, as a shell reports a process a signal stopped.
    #[error(
        "interrupted by {name}: stopped before finishing; nothing was left half-written (no partial output file; \
         a store has all of an ingest or none of it)"
    )]
    Interrupted { name: &'static str, number: u8 },
}

impl Error {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { path: path.into(), source }
    }

    /// The process exit code for this error (interfaces.md, "Exit codes").
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Usage(_)
            | Error::ReadOnly(_)
            | Error::UnknownView { .. }
            | Error::MissingTable { .. }
            | Error::Unreachable { .. }
            | Error::ColumnType { .. }
            | Error::Located { .. }
            | Error::Input { .. }
            | Error::Io { .. } => exit::USAGE,
            Error::Statement { source, .. } => source.exit_code(),
            Error::BrokenPipe => exit::OK,
            Error::Interrupted { number, .. } => 128 + number,
            _ => exit::RUNTIME,
        }
    }

    /// True when the error is an output pipe closed by its reader.
    pub fn is_broken_pipe(&self) -> bool {
        match self {
            Error::BrokenPipe => true,
            Error::Io { source, .. } => source.kind() == std::io::ErrorKind::BrokenPipe,
            Error::Arrow(ArrowError::IoError(_, e)) => e.kind() == std::io::ErrorKind::BrokenPipe,
            Error::Statement { source, .. } => source.is_broken_pipe(),
            _ => false,
        }
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            Error::BrokenPipe
        } else {
            Error::Io { path: PathBuf::from("<output>"), source: e }
        }
    }
}

/// `file:line:column`, or `file:line` when the column is not known (0).
fn place(file: &std::path::Path, line: u64, column: u64) -> String {
    match column {
        0 => format!("{}:{line}", file.display()),
        c => format!("{}:{line}:{c}", file.display()),
    }
}

fn suggest(names: &[String]) -> String {
    match names {
        [] => String::new(),
        names => format!("; did you mean {}?", names.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(" or ")),
    }
}

/// DataFusion prefixes messages with the layer that raised them and sometimes nests them
/// ("Context(...)"); users need the sentence, not the layering.
fn clean_datafusion_message(e: &DataFusionError) -> String {
    let e = e.find_root();
    if let DataFusionError::SQL(parse, _) = e {
        // "sql parser error: Expected: ..." reads better without its Debug wrapping.
        let text = parse.to_string();
        return text.strip_prefix("sql parser error: ").unwrap_or(&text).to_string();
    }
    let msg = e.to_string();
    let msg = ["Error during planning: ", "Execution error: ", "SQL error: ", "This feature is not implemented: "]
        .iter()
        .find_map(|prefix| msg.strip_prefix(prefix))
        .map_or(msg.clone(), str::to_string);
    cluster_job_message(&msg).unwrap_or(msg)
}

/// A failed Ballista job ("Job 038J... failed: DataFusion error: ...") said as the cluster's,
/// with a hint when the executors could not read the store's files (they read them with their
/// own mounts and environment, not the client's).
fn cluster_job_message(msg: &str) -> Option<String> {
    let rest = msg.strip_prefix("Job ")?;
    let (job, why) = rest.split_once(" failed: ")?;
    let why = why.strip_prefix("DataFusion error: ").unwrap_or(why);
    let hint = if why.contains("Object Store error") || why.contains("No such file") {
        "; the scheduler and every executor read the store themselves: the same path mounted on each, or for \
         s3:// stores an AWS environment of their own (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION, \
         AWS_ENDPOINT_URL)"
    } else {
        ""
    };
    Some(format!("the cluster's job {job} failed: {why}{hint}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_cluster_job_says_so_and_why() {
        let e = DataFusionError::Execution(
            "Job 038JGZ873W000 failed: DataFusion error: Object Store error: Operation not supported: the credential \
             provider was not enabled"
                .into(),
        );
        let text = Error::from(e).to_string();
        assert!(
            text.starts_with(
                "the cluster's job 038JGZ873W000 failed: Object Store error: Operation not supported: the credential \
                 provider was not enabled; the scheduler and every executor read the store themselves"
            ),
            "{text}"
        );
        let other = Error::from(DataFusionError::Execution("Job 1 failed: Arrow error: divide by zero".into()));
        assert_eq!(other.to_string(), "the cluster's job 1 failed: Arrow error: divide by zero");
        assert_eq!(Error::from(DataFusionError::Execution("Job done".into())).to_string(), "Job done");
    }
}
