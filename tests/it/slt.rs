//! The SQL logic tests: every `.slt` file under `tests/slt/` runs against a fresh engine over an
//! empty in-memory store that accepts INSERT, so each file builds its own fixture rows and checks
//! the views' answers by hand-computed rows.
//!
//! `SET debtlens.as_of = '2026-10-31'` (or `DEFAULT`) and `SET debtlens.window_days = 30` set the
//! analysis window through the session, the same mechanism as `\set` in the shell and `SET` on
//! the server. With `DEBTLENS_SLT_COMPLETE=1` the files are
//! rewritten with the actual output: review what it wrote.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use datafusion::arrow::array::{Array, RecordBatch};
use datafusion::arrow::datatypes::DataType;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use debtlens::engine::Ran;
use debtlens::{Engine, EngineOptions, QueryResult, Session, Store};
use futures::TryStreamExt;
use sqllogictest::{DBOutput, DefaultColumnType};

struct Db {
    session: Session,
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct DbError(String);

impl From<debtlens::Error> for DbError {
    fn from(e: debtlens::Error) -> Self {
        DbError(e.to_string())
    }
}

impl Db {
    async fn new() -> Result<Self, DbError> {
        let options = EngineOptions { allow_writes: true, ..EngineOptions::default() };
        Ok(Self { session: Engine::open(Store::scratch(), options).await?.session() })
    }
}

#[async_trait]
impl sqllogictest::AsyncDB for Db {
    type Error = DbError;
    type ColumnType = DefaultColumnType;

    async fn run(&mut self, sql: &str) -> Result<DBOutput<DefaultColumnType>, DbError> {
        // `SET debtlens.as_of = ...` goes through the session, as in the shell and the server.
        let stream = match self.session.run(sql).await? {
            Ran::Set(_) => return Ok(DBOutput::StatementComplete(0)),
            Ran::Rows(stream) => stream,
        };
        let batches: Vec<RecordBatch> = stream.stream.try_collect().await.map_err(|e| DbError(e.to_string()))?;
        let result = QueryResult { schema: stream.schema, batches, window: stream.window };
        let types = result.schema.fields().iter().map(|f| column_type(f.data_type())).collect();
        let mut rows = Vec::new();
        for batch in &result.batches {
            rows.extend(format_rows(batch).map_err(|e| DbError(e.to_string()))?);
        }
        let first_word = sql.split_whitespace().next().unwrap_or("").to_ascii_lowercase();
        if matches!(first_word.as_str(), "insert" | "create" | "drop") {
            Ok(DBOutput::StatementComplete(0))
        } else {
            Ok(DBOutput::Rows { types, rows })
        }
    }

    async fn shutdown(&mut self) {}

    fn engine_name(&self) -> &str {
        "debtlens"
    }

    async fn sleep(dur: std::time::Duration) {
        tokio::time::sleep(dur).await;
    }
}

fn column_type(t: &DataType) -> DefaultColumnType {
    match t {
        t if t.is_integer() => DefaultColumnType::Integer,
        t if t.is_floating() => DefaultColumnType::FloatingPoint,
        _ => DefaultColumnType::Text,
    }
}

/// Cells as text: NULL for nulls, (empty) for empty strings, floats rounded to six decimals
/// (trailing zeros dropped) so that hand-computed values can be written down.
fn format_rows(batch: &RecordBatch) -> Result<Vec<Vec<String>>, datafusion::arrow::error::ArrowError> {
    let options = FormatOptions::default().with_null("NULL");
    let formatters =
        batch.columns().iter().map(|c| ArrayFormatter::try_new(c.as_ref(), &options)).collect::<Result<Vec<_>, _>>()?;
    Ok((0..batch.num_rows())
        .map(|row| {
            batch
                .columns()
                .iter()
                .zip(&formatters)
                .map(|(column, f)| {
                    if column.is_null(row) {
                        return "NULL".to_string();
                    }
                    let text = f.value(row).to_string();
                    match column.data_type() {
                        t if t.is_floating() => round6(&text),
                        _ if text.is_empty() => "(empty)".to_string(),
                        _ => text,
                    }
                })
                .collect()
        })
        .collect())
}

fn round6(text: &str) -> String {
    let Ok(x) = text.parse::<f64>() else { return text.to_string() };
    let s = format!("{:.6}", x);
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" { "0".to_string() } else { s.to_string() }
}

fn slt_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/slt");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("tests/slt")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "slt"))
        .collect();
    files.sort();
    files
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sql_logic_tests() {
    let complete = std::env::var_os("DEBTLENS_SLT_COMPLETE").is_some();
    let files = slt_files();
    assert!(!files.is_empty(), "no .slt files found");
    let mut failures = Vec::new();
    for file in &files {
        let mut runner = sqllogictest::Runner::new(Db::new);
        let outcome = if complete {
            runner
                .update_test_file(
                    file,
                    " ",
                    sqllogictest::default_validator,
                    sqllogictest::default_normalizer,
                    sqllogictest::default_column_validator,
                )
                .await
                .map_err(|e| e.to_string())
        } else {
            runner.run_file_async(file).await.map_err(|e| e.display(true).to_string())
        };
        if let Err(e) = outcome {
            failures.push(format!("{}:\n{e}", file.display()));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} .slt files failed:\n\n{}",
        failures.len(),
        files.len(),
        failures.join("\n\n")
    );
}
