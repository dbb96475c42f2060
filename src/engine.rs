//! The engine: one DataFusion `SessionContext` with the store's tables, the predefined views,
//! the analysis window and the memory pool. Every surface (CLI, shell, server, batch, report)
//! asks it for results; none builds its own context.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::datatypes::{SchemaRef, TimestampMicrosecondType};
use datafusion::execution::SendableRecordBatchStream;
use datafusion::execution::memory_pool::FairSpillPool;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::logical_expr::LogicalPlan;
use datafusion::prelude::{SQLOptions, SessionConfig, SessionContext};
use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::Statement;
use futures::TryStreamExt;

use crate::error::{Error, Result};
use crate::schema::Table;
use crate::store::Store;
use crate::views::{self, VIEWS};
use crate::window::{self, AsOfSource, Window, WindowState};

/// How to open an engine.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// The memory pool's size in bytes; operators that can spill to disk do so beyond it.
    pub memory_limit: Option<usize>,
    /// The end of the analysis window; `None` for the default (the newest shipped feature).
    pub as_of: Option<DateTime<Utc>>,
    pub window_days: u32,
    /// Accept DDL and DML. Only the SQL logic tests set this, to insert fixture rows.
    pub allow_writes: bool,
}

impl Default for EngineOptions {
    fn default() -> Self {
        Self { memory_limit: None, as_of: None, window_days: window::DEFAULT_WINDOW_DAYS, allow_writes: false }
    }
}

/// The result of one statement.
#[derive(Debug)]
pub struct QueryResult {
    pub schema: SchemaRef,
    pub batches: Vec<RecordBatch>,
    /// The window the statement used, when it read a windowed view or function.
    pub window: Option<Window>,
}

impl QueryResult {
    pub fn rows(&self) -> usize {
        self.batches.iter().map(|b| b.num_rows()).sum()
    }
}

/// A statement under way: its batches as they are produced.
pub struct QueryStream {
    pub schema: SchemaRef,
    pub stream: SendableRecordBatchStream,
    /// The window the statement used, when it read a windowed view or function.
    pub window: Option<Window>,
}

pub struct Engine {
    ctx: SessionContext,
    window: Arc<WindowState>,
    sql_options: SQLOptions,
    store: Store,
    versions: std::sync::Mutex<Vec<(Table, Option<u64>)>>,
    /// One refresh at a time.
    refreshing: tokio::sync::Mutex<()>,
    /// Planning reads the catalog; a refresh re-registering the tables writes it.
    catalog: tokio::sync::RwLock<()>,
}

impl Engine {
    /// Opens `store`: registers its tables (checking their schemas), the window functions and
    /// every view. Reads no table data.
    pub async fn open(store: Store, options: EngineOptions) -> Result<Self> {
        let mut config = SessionConfig::new().with_information_schema(true);
        // Dates and times are UTC throughout the store; so is now().
        config.options_mut().execution.time_zone = Some("UTC".into());
        // A view's ORDER BY is part of its contract (data-model.md orders every view), so a
        // plain `SELECT * FROM view` from any client must keep it.
        config.options_mut().sql_parser.enable_subquery_sort_elimination = false;
        let mut runtime = RuntimeEnvBuilder::new();
        if let Some(bytes) = options.memory_limit {
            runtime = runtime.with_memory_pool(Arc::new(FairSpillPool::new(bytes)));
        }
        let ctx = SessionContext::new_with_config_rt(config, runtime.build_arc()?);

        let window = Arc::new(WindowState::new(options.as_of, options.window_days));
        for f in window::functions(&window).into_iter().chain(crate::functions::all()) {
            ctx.register_udf(f);
        }
        let versions = store.register(&ctx).await?;
        create_views(&ctx).await?;
        let sql_options = if options.allow_writes {
            SQLOptions::new()
        } else {
            SQLOptions::new().with_allow_ddl(false).with_allow_dml(false).with_allow_statements(false)
        };
        Ok(Self {
            ctx,
            window,
            sql_options,
            store,
            versions: std::sync::Mutex::new(versions),
            refreshing: tokio::sync::Mutex::new(()),
            catalog: tokio::sync::RwLock::new(()),
        })
    }

    /// Brings a long-lived engine (the server) to the newest committed version of each table:
    /// when another process has committed since, the tables are registered again and the views
    /// re-created over them, and the default window is resolved again. Returns whether anything
    /// changed. Costs one listing of each table's log when nothing did.
    pub async fn refresh(&self) -> Result<bool> {
        let _one_at_a_time = self.refreshing.lock().await;
        if !self.store.changed_since(&self.table_versions()).await? {
            return Ok(false);
        }
        let _no_planning = self.catalog.write().await;
        let versions = self.store.register(&self.ctx).await?;
        create_views(&self.ctx).await?;
        *self.versions.lock().expect("versions lock") = versions;
        self.window.set_as_of(self.window.given_as_of());
        Ok(true)
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The Delta version each table is read at (`None` when it is not a Delta table).
    pub fn table_versions(&self) -> Vec<(Table, Option<u64>)> {
        self.versions.lock().expect("versions lock").clone()
    }

    /// The DataFusion context, for surfaces that need the catalog (completion, pg_catalog).
    pub fn context(&self) -> &SessionContext {
        &self.ctx
    }

    /// Changes the end of the window (`None`: back to the default) for every view at once.
    pub fn set_as_of(&self, as_of: Option<DateTime<Utc>>) {
        self.window.set_as_of(as_of);
    }

    /// The window as set: the as_of given (`None`: the default) and the length in days.
    pub fn window_settings(&self) -> (Option<DateTime<Utc>>, u32) {
        (self.window.given_as_of(), self.window.days())
    }

    pub fn set_window_days(&self, days: u32) {
        self.window.set_days(days);
    }

    /// The window in force, resolving the default as_of with one query the first time.
    pub async fn window(&self) -> Result<Window> {
        if let Some(w) = self.window.resolved() {
            return Ok(w);
        }
        let days = self.window.days();
        let w = match self.window.given_as_of() {
            Some(as_of) => Window { as_of, days, source: AsOfSource::Given },
            None => match self.newest_shipped().await? {
                Some(as_of) => Window { as_of, days, source: AsOfSource::NewestShipped },
                None => Window { as_of: Utc::now(), days, source: AsOfSource::Now },
            },
        };
        self.window.resolve(w);
        Ok(w)
    }

    /// The newest shipped_at of a shipped feature that is not in the future.
    async fn newest_shipped(&self) -> Result<Option<DateTime<Utc>>> {
        let batches = self
            .ctx
            .sql(
                "SELECT CAST(max(shipped_at) AS TIMESTAMP(6) WITH TIME ZONE) FROM features \
                 WHERE actual_weeks IS NOT NULL AND shipped_at <= now()",
            )
            .await?
            .collect()
            .await?;
        let newest = batches
            .first()
            .map(|b| b.column(0).as_primitive::<TimestampMicrosecondType>())
            .filter(|c| !c.is_empty() && c.is_valid(0))
            .map(|c| c.value(0));
        Ok(newest.and_then(DateTime::from_timestamp_micros))
    }

    /// Plans one statement, refusing anything but a query unless the engine allows writes.
    pub async fn plan(&self, sql: &str) -> Result<LogicalPlan> {
        if views::references_window(sql) {
            self.window().await?;
        }
        let _catalog = self.catalog.read().await;
        let plan = self.ctx.state().create_logical_plan(sql).await?;
        self.verify(plan)
    }

    /// Plans one statement parsed already (the server's PostgreSQL parser), with the same rules
    /// as `plan`.
    pub async fn plan_statement(&self, statement: Statement) -> Result<LogicalPlan> {
        if views::references_window(&statement.to_string()) {
            self.window().await?;
        }
        let _catalog = self.catalog.read().await;
        let plan = self.ctx.state().statement_to_plan(DfStatement::Statement(Box::new(statement))).await?;
        self.verify(plan)
    }

    fn verify(&self, plan: LogicalPlan) -> Result<LogicalPlan> {
        self.sql_options.verify_plan(&plan).map_err(|e| Error::ReadOnly(read_only_message(&e.to_string())))?;
        Ok(plan)
    }

    /// Runs one statement to completion.
    pub async fn execute(&self, sql: &str) -> Result<QueryResult> {
        let QueryStream { schema, stream, window } = self.execute_stream(sql).await?;
        let batches = stream.try_collect().await?;
        Ok(QueryResult { schema, batches, window })
    }

    /// Starts one statement: its batches come as the plan produces them, so that a result
    /// larger than memory can be written out as it goes.
    pub async fn execute_stream(&self, sql: &str) -> Result<QueryStream> {
        let plan = self.plan(sql).await?;
        let window = if views::references_window(sql) { self.window.resolved() } else { None };
        let df = self.ctx.execute_logical_plan(plan).await?;
        let schema: SchemaRef = Arc::new(df.schema().as_arrow().clone());
        let stream = df.execute_stream().await?;
        Ok(QueryStream { schema, stream, window })
    }

    /// Runs a predefined view.
    pub async fn view(&self, name: &str) -> Result<QueryResult> {
        self.execute(&view_query(name)?).await
    }

    /// Starts a predefined view, as `execute_stream`.
    pub async fn view_stream(&self, name: &str) -> Result<QueryStream> {
        self.execute_stream(&view_query(name)?).await
    }
}

/// The query of a predefined view.
fn view_query(name: &str) -> Result<String> {
    match views::find(name) {
        Some(view) => Ok(format!("SELECT * FROM {}", view.name)),
        None => Err(Error::UnknownView { name: name.to_string(), suggestions: views::closest(name) }),
    }
}

/// Creates (or replaces) every predefined view over the tables registered in `ctx`.
async fn create_views(ctx: &SessionContext) -> Result<()> {
    for view in VIEWS {
        let create = format!("CREATE OR REPLACE VIEW {} AS\n{}", view.name, view.sql);
        ctx.sql(&create).await.map_err(|e| Error::Usage(format!("queries/{}.sql: {}", view.name, Error::from(e))))?;
    }
    Ok(())
}

/// DataFusion says "DDL not supported: CreateView"; users need to hear why.
fn read_only_message(message: &str) -> String {
    let message = message.strip_prefix("Error during planning: ").unwrap_or(message);
    format!("debtlens SQL is read-only: only queries are allowed ({message}); change the store with `debtlens ingest`")
}

/// Splits a script into statements at top-level semicolons (outside quotes and comments),
/// with the line each starts on. Empty statements are dropped.
pub fn split_statements(sql: &str) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    let mut start = 0;
    scan(sql, |i, piece| {
        if piece == Piece::Semicolon {
            push_statement(sql, start, i, &mut out);
            start = i + 1;
        }
    });
    if start < sql.len() {
        push_statement(sql, start, sql.len(), &mut out);
    }
    out
}

/// True when `sql` ends its last statement with `;`: nothing but whitespace and comments
/// follows, and no quote or comment is left open. The shell reads lines until this holds.
pub fn is_complete(sql: &str) -> bool {
    let (mut pending, mut open) = (false, false);
    scan(sql, |_, piece| match piece {
        Piece::Semicolon => pending = false,
        Piece::Code => pending = true,
        Piece::Open => open = true,
    });
    !pending && !open
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Piece {
    /// A `;` outside quotes and comments.
    Semicolon,
    /// Anything else that is not whitespace or a comment.
    Code,
    /// A quote or block comment still open at the end of the text.
    Open,
}

/// Walks `sql` once, telling `visit` the byte offset and kind of each significant piece.
fn scan(sql: &str, mut visit: impl FnMut(usize, Piece)) {
    let bytes = sql.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\'' | b'"' => {
                let (quote, at) = (bytes[i], i);
                i += 1;
                while i < bytes.len() && bytes[i] != quote {
                    i += 1;
                }
                visit(at, if i < bytes.len() { Piece::Code } else { Piece::Open });
            }
            b'-' if bytes.get(i + 1) == Some(&b'-') => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                let at = i;
                i += 2;
                while i + 1 < bytes.len() && !(bytes[i] == b'*' && bytes[i + 1] == b'/') {
                    i += 1;
                }
                if i + 1 >= bytes.len() {
                    visit(at, Piece::Open);
                }
                i += 1;
            }
            b';' => visit(i, Piece::Semicolon),
            b if b.is_ascii_whitespace() => {}
            _ => visit(i, Piece::Code),
        }
        i += 1;
    }
}

/// Adds `sql[from..to]` to `out` with the line it starts on, unless it is blank or a comment.
fn push_statement<'a>(sql: &'a str, from: usize, to: usize, out: &mut Vec<(usize, &'a str)>) {
    let text = &sql[from..to];
    let trimmed = text.trim_start();
    if strip_comments(trimmed).trim().is_empty() {
        return;
    }
    let offset = from + (text.len() - trimmed.len());
    // The statement starts at its first line that is not blank or a comment.
    let mut line = sql[..offset].matches('\n').count() + 1;
    for l in trimmed.lines() {
        let l = l.trim();
        if l.is_empty() || l.starts_with("--") {
            line += 1;
        } else {
            break;
        }
    }
    out.push((line, trimmed.trim_end()));
}

/// Drops `--` comments, to tell a statement from a comment alone.
fn strip_comments(sql: &str) -> String {
    sql.lines().map(|l| l.split("--").next().unwrap_or("")).collect::<Vec<_>>().join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_split_at_top_level_semicolons_with_their_lines() {
        let script =
            "SELECT 1;\n\n-- a comment\nSELECT ';' AS x;\nSELECT 2 -- trailing; not a split\n;\n-- only a comment\n";
        let parts = split_statements(script);
        assert_eq!(parts.len(), 3, "{parts:?}");
        assert_eq!(parts[0], (1, "SELECT 1"));
        assert_eq!(parts[1].0, 4);
        assert!(parts[1].1.ends_with("SELECT ';' AS x"), "{parts:?}");
        assert_eq!(parts[2].0, 5);
    }

    #[test]
    fn a_statement_without_a_final_semicolon_counts() {
        assert_eq!(split_statements("SELECT 1"), vec![(1, "SELECT 1")]);
        assert!(split_statements("  ;; ").is_empty());
    }

    #[test]
    fn a_statement_is_complete_at_its_semicolon() {
        assert!(is_complete("SELECT 1;"));
        assert!(is_complete("SELECT 1;  -- done\n"));
        assert!(is_complete("SELECT 1; /* note */"));
        assert!(!is_complete("SELECT 1"));
        assert!(!is_complete("SELECT 1;\nSELECT 2"));
        assert!(!is_complete("SELECT ';"), "an open quote");
        assert!(!is_complete("SELECT 1 /* ; */"));
        assert!(!is_complete("SELECT 1; /* open"));
        assert!(is_complete("SELECT 'a;b' AS x;"));
    }
}
