//! The engine and its sessions.
//!
//! The `Engine` holds what every caller shares and nobody changes: the store, the runtime and
//! memory pool, and the current `Snapshot` (the tables at one version each, with the views and
//! functions over them). `refresh` builds a new snapshot and swaps it in whole; a statement
//! holds the snapshot it was planned on, so it never sees half of one.
//!
//! A `Session` is one caller's: a CLI run, a shell, one batch job, one server connection. It
//! owns its window settings as a value and plans each statement under a configuration that
//! carries the resolved window, so two sessions over one engine never see each other's window.
//! Every surface asks a session for plans and streams; none reaches the DataFusion context.

use std::sync::{Arc, RwLock};

use chrono::{DateTime, Utc};
use datafusion::arrow::array::{Array, AsArray, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimestampMicrosecondType};
use datafusion::dataframe::DataFrame;
use datafusion::execution::memory_pool::FairSpillPool;
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use datafusion::execution::session_state::SessionState;
use datafusion::execution::{SendableRecordBatchStream, SessionStateBuilder};
use datafusion::logical_expr::LogicalPlan;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::prelude::{SQLOptions, SessionConfig, SessionContext};
use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::{Reset, Set, Statement};
use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::parser::Parser;
use futures::TryStreamExt;

use crate::error::{Error, Result};
use crate::schema::Table;
use crate::sql::Scanned;
use crate::store::{Reading, Store};
use crate::views;
use crate::window::{self, AsOfSource, Window, WindowConfig, WindowSettings};

/// Called on the context of every new snapshot, after the tables and views are registered:
/// what a surface adds to the catalog (the server's `pg_catalog`).
pub type CatalogExtension = Arc<dyn Fn(&SessionContext, &crate::store::TableBytes) -> Result<()> + Send + Sync>;

/// How to open an engine.
#[derive(Clone, Default)]
pub struct EngineOptions {
    /// The memory pool's size in bytes; operators that can spill to disk do so beyond it.
    pub memory_limit: Option<usize>,
    /// How many partitions a query runs in (`None`: one per core). Answers do not depend on it.
    pub threads: Option<usize>,
    /// The window every new session starts with (and `DEFAULT` returns to).
    pub window: WindowSettings,
    /// Accept DDL and DML. Only the SQL logic tests set this, to insert fixture rows.
    pub allow_writes: bool,
    /// Added to every snapshot's catalog.
    pub extension: Option<CatalogExtension>,
    /// Run statements on this Ballista cluster (`--cluster`) instead of in this process.
    pub cluster: Option<crate::cluster::ClusterUrl>,
}

impl std::fmt::Debug for EngineOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineOptions")
            .field("memory_limit", &self.memory_limit)
            .field("threads", &self.threads)
            .field("window", &self.window)
            .field("allow_writes", &self.allow_writes)
            .field("extension", &self.extension.is_some())
            .field("cluster", &self.cluster)
            .finish()
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

    /// The result as a stream, for the writers that take one.
    pub fn into_stream(self) -> QueryStream {
        let stream = RecordBatchStreamAdapter::new(
            Arc::clone(&self.schema),
            futures::stream::iter(self.batches.into_iter().map(Ok)),
        );
        QueryStream { schema: self.schema, stream: Box::pin(stream), window: self.window }
    }
}

/// A statement under way: its batches as they are produced.
pub struct QueryStream {
    pub schema: SchemaRef,
    pub stream: SendableRecordBatchStream,
    /// The window the statement used, when it read a windowed view or function.
    pub window: Option<Window>,
}

/// The tables at one version each, with the functions and views over them. Never changed once
/// built: a refresh builds another.
struct Snapshot {
    ctx: SessionContext,
    versions: Vec<(Table, Option<u64>)>,
    /// The default as_of (the newest shipped feature) of this snapshot, found once.
    newest_shipped: tokio::sync::OnceCell<Option<DateTime<Utc>>>,
}

struct Shared {
    store: Store,
    options: EngineOptions,
    runtime: Arc<RuntimeEnv>,
    sql_options: SQLOptions,
    current: RwLock<Arc<Snapshot>>,
    /// One refresh at a time.
    refreshing: tokio::sync::Mutex<()>,
}

/// The store, opened: shared by every session, cheap to clone.
#[derive(Clone)]
pub struct Engine {
    shared: Arc<Shared>,
}

impl Engine {
    /// Opens `store`: registers its tables (checking their schemas), the functions and every
    /// view. Reads no table data.
    pub async fn open(store: Store, options: EngineOptions) -> Result<Self> {
        if let Some(url) = &options.cluster {
            store.check_shared(url)?;
        }
        let mut runtime = RuntimeEnvBuilder::new();
        if let Some(bytes) = options.memory_limit {
            runtime = runtime.with_memory_pool(Arc::new(FairSpillPool::new(bytes)));
        }
        let runtime = runtime.build_arc()?;
        let sql_options = if options.allow_writes {
            SQLOptions::new()
        } else {
            SQLOptions::new().with_allow_ddl(false).with_allow_dml(false).with_allow_statements(false)
        };
        let snapshot = build_snapshot(&store, &options, &runtime).await?;
        Ok(Self {
            shared: Arc::new(Shared {
                store,
                options,
                runtime,
                sql_options,
                current: RwLock::new(Arc::new(snapshot)),
                refreshing: tokio::sync::Mutex::new(()),
            }),
        })
    }

    /// Brings a long-lived engine (the server) to the newest committed version of each table:
    /// when another process has committed since, a new snapshot is built and swapped in whole.
    /// Statements planned on the old one finish on it. Returns whether anything changed; costs
    /// one listing of each table's log when nothing did.
    pub async fn refresh(&self) -> Result<bool> {
        let _one_at_a_time = self.shared.refreshing.lock().await;
        if !self.shared.store.changed_since(&self.snapshot().versions).await? {
            return Ok(false);
        }
        let snapshot = build_snapshot(&self.shared.store, &self.shared.options, &self.shared.runtime).await?;
        *self.shared.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(snapshot);
        Ok(true)
    }

    fn snapshot(&self) -> Arc<Snapshot> {
        Arc::clone(&self.shared.current.read().unwrap_or_else(|e| e.into_inner()))
    }

    pub fn store(&self) -> &Store {
        &self.shared.store
    }

    /// The Delta version each table of the current snapshot is read at (`None` when it is not a
    /// Delta table).
    pub fn table_versions(&self) -> Vec<(Table, Option<u64>)> {
        self.snapshot().versions.clone()
    }

    /// The window new sessions start with.
    pub fn default_window(&self) -> WindowSettings {
        self.shared.options.window
    }

    /// A new session with the engine's default window.
    pub fn session(&self) -> Session {
        self.session_with(self.default_window())
    }

    /// A new session with its own window.
    pub fn session_with(&self, settings: WindowSettings) -> Session {
        Session { engine: self.clone(), settings }
    }

    fn verify(&self, plan: &LogicalPlan) -> Result<()> {
        self.shared.sql_options.verify_plan(plan).map_err(|e| Error::ReadOnly(read_only_message(&e.to_string())))
    }
}

/// A new context over the runtime with the store's tables, the functions and the views.
async fn build_snapshot(store: &Store, options: &EngineOptions, runtime: &Arc<RuntimeEnv>) -> Result<Snapshot> {
    let mut config = with_debtlens_settings(SessionConfig::new().with_information_schema(true));
    config.options_mut().extensions.insert(WindowConfig::default());
    if let Some(threads) = options.threads {
        config = config.with_target_partitions(threads);
    }
    let ctx = match &options.cluster {
        None => SessionContext::new_with_state(
            SessionStateBuilder::new()
                .with_config(config)
                .with_runtime_env(Arc::clone(runtime))
                .with_default_features()
                // A CTE or view read in several places is planned alike in each (nothing pushed
                // into it) and, last after every rule that rewrites the plan, run once.
                .with_analyzer_rule(Arc::new(crate::shared::MaterializeRepeated))
                .with_query_planner(Arc::new(crate::shared::Planner))
                .with_physical_optimizer_rule(Arc::new(crate::shared::ShareRepeated))
                .build(),
        ),
        Some(url) => crate::cluster::client_context(url, config, Arc::clone(runtime))?,
    };
    // The window, exact float sums and means (whatever the order of rows, files and
    // partitions), the attributed velocity tax, the forecast of planned items.
    for f in crate::functions::scalar_functions() {
        ctx.register_udf(f);
    }
    for f in crate::functions::aggregate_functions() {
        ctx.register_udaf(f);
    }
    // Executors open a table from its description in the plan: on a cluster, a Delta table is
    // the listing of its snapshot's files.
    let reading = if options.cluster.is_some() { Reading::Files } else { Reading::Providers };
    // The views are planned when a statement first reads them (views::ViewSchema).
    views::ViewSchema::install(&ctx)?;
    let opened = store.open_tables(&ctx.state(), reading).await?;
    for (name, provider) in opened.tables {
        ctx.register_table(name, provider)?;
    }
    if let Some(extend) = &options.extension {
        extend(&ctx, &opened.bytes)?;
    }
    Ok(Snapshot { ctx, versions: opened.versions, newest_shipped: tokio::sync::OnceCell::new() })
}

/// `config` with the settings every debtlens session runs under (a cluster's processes too).
pub fn with_debtlens_settings(mut config: SessionConfig) -> SessionConfig {
    // Dates and times are UTC throughout the store; so is now().
    config.options_mut().execution.time_zone = Some("UTC".into());
    // A view's ORDER BY is part of its contract (data-model.md orders every view), so a plain
    // `SELECT * FROM view` from any client must keep it.
    config.options_mut().sql_parser.enable_subquery_sort_elimination = false;
    config
}

/// A statement planned in a session: the state it was planned under (which carries its window)
/// and the snapshot it reads.
struct Planned {
    state: SessionState,
    plan: LogicalPlan,
    window: Option<Window>,
}

/// What a statement a session ran gave back: rows, or a setting it changed.
pub enum Ran {
    Rows(QueryStream),
    /// `SET`/`RESET` of a window setting: the window now in force.
    Set(Window),
}

/// One caller's view of the engine: its own window, over the engine's current snapshot.
#[derive(Clone)]
pub struct Session {
    engine: Engine,
    settings: WindowSettings,
}

impl Session {
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    pub fn settings(&self) -> WindowSettings {
        self.settings
    }

    /// Sets a window setting by name (`as_of`, `window_days`, with or without `debtlens.`);
    /// `DEFAULT` puts back the engine's default.
    pub fn set(&mut self, name: &str, value: &str) -> Result<()> {
        let defaults = self.engine.default_window();
        self.settings.set(name, value, &defaults)
    }

    /// Puts a window setting (`None`: both) back to the engine's default.
    pub fn reset(&mut self, name: Option<&str>) -> Result<()> {
        let defaults = self.engine.default_window();
        match name {
            Some(name) => self.settings.reset(name, &defaults),
            None => {
                self.settings = defaults;
                Ok(())
            }
        }
    }

    /// The window in force, resolving the default as_of (once per snapshot) when none was set.
    pub async fn window(&self) -> Result<Window> {
        self.window_in(&self.engine.snapshot()).await
    }

    async fn window_in(&self, snapshot: &Snapshot) -> Result<Window> {
        let days = self.settings.days;
        if let Some(as_of) = self.settings.as_of {
            return Ok(Window { as_of, days, source: AsOfSource::Given });
        }
        let newest = snapshot.newest_shipped.get_or_try_init(|| newest_shipped(&snapshot.ctx)).await?;
        Ok(match newest {
            Some(as_of) => Window { as_of: *as_of, days, source: AsOfSource::NewestShipped },
            None => Window { as_of: Utc::now(), days, source: AsOfSource::Now },
        })
    }

    /// The state a statement of this session is planned and run under: the snapshot's, with
    /// the window in its configuration.
    fn state(&self, snapshot: &Snapshot, window: Option<Window>) -> SessionState {
        let mut state = snapshot.ctx.state();
        state.config_mut().options_mut().extensions.insert(WindowConfig { window });
        state
    }

    async fn window_if(&self, snapshot: &Snapshot, windowed: bool) -> Result<Option<Window>> {
        if windowed { self.window_in(snapshot).await.map(Some) } else { Ok(None) }
    }

    async fn prepare(&self, sql: &str, scanned: &Scanned<'_>) -> Result<Planned> {
        scanned.check_depth().map_err(Error::TooDeep)?;
        let snapshot = self.engine.snapshot();
        let window = self.window_if(&snapshot, views::reads_window(scanned)).await?;
        let state = self.state(&snapshot, window);
        let plan = state.create_logical_plan(sql).await?;
        self.engine.verify(&plan)?;
        Ok(Planned { state, plan, window })
    }

    /// Plans one statement, refusing anything but a query unless the engine allows writes.
    pub async fn plan(&self, sql: &str) -> Result<LogicalPlan> {
        Ok(self.prepare(sql, &Scanned::new(sql)).await?.plan)
    }

    /// Plans one statement parsed already (the server's PostgreSQL parser), with the same rules
    /// as `plan`.
    pub async fn plan_statement(&self, statement: &Statement) -> Result<LogicalPlan> {
        let snapshot = self.engine.snapshot();
        let window = self.window_if(&snapshot, views::references_window(&statement.to_string())).await?;
        let state = self.state(&snapshot, window);
        let plan = state.statement_to_plan(DfStatement::Statement(Box::new(statement.clone()))).await?;
        self.engine.verify(&plan)?;
        Ok(plan)
    }

    /// Starts a plan made by `plan_statement` (perhaps under other settings: the server plans
    /// at Parse and runs at Execute). `windowed` says whether it reads the window.
    pub async fn execute_plan(&self, plan: LogicalPlan, windowed: bool) -> Result<QueryStream> {
        self.engine.verify(&plan)?;
        let snapshot = self.engine.snapshot();
        let window = self.window_if(&snapshot, windowed).await?;
        let state = self.state(&snapshot, window);
        start(Planned { state, plan, window }).await
    }

    /// Starts one statement: its batches come as the plan produces them, so that a result
    /// larger than memory can be written out as it goes.
    pub async fn execute_stream(&self, sql: &str) -> Result<QueryStream> {
        start(self.prepare(sql, &Scanned::new(sql)).await?).await
    }

    /// Runs one statement to completion.
    pub async fn execute(&self, sql: &str) -> Result<QueryResult> {
        let QueryStream { schema, stream, window } = self.execute_stream(sql).await?;
        let batches = stream.try_collect().await?;
        Ok(QueryResult { schema, batches, window })
    }

    /// Runs a statement a user typed: a window setting (`SET debtlens.as_of = ...`, `RESET`,
    /// `SHOW debtlens.as_of`) changes or shows this session's window; anything else runs as
    /// `execute_stream`.
    pub async fn run(&mut self, sql: &str) -> Result<Ran> {
        let scanned = Scanned::new(sql);
        match setting_in(sql, &scanned) {
            Some(SettingStatement::Set(name, value)) => {
                self.set(&name, &value)?;
                Ok(Ran::Set(self.window().await?))
            }
            Some(SettingStatement::Reset(name)) => {
                self.reset(name.as_deref())?;
                Ok(Ran::Set(self.window().await?))
            }
            Some(SettingStatement::Show(name)) => {
                let value = self.show(&name).await?;
                let schema = Arc::new(Schema::new(vec![Field::new(name.clone(), DataType::Utf8, false)]));
                let batch = RecordBatch::try_new(Arc::clone(&schema), vec![Arc::new(StringArray::from(vec![value]))])?;
                Ok(Ran::Rows(QueryResult { schema, batches: vec![batch], window: None }.into_stream()))
            }
            None => start(self.prepare(sql, &scanned).await?).await.map(Ran::Rows),
        }
    }

    /// The value `SHOW` gives for a window setting: the resolved as_of (RFC 3339) or the days.
    pub async fn show(&self, name: &str) -> Result<String> {
        let window = self.window().await?;
        Ok(match window::setting_name(name)? {
            "as_of" => window.as_of.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
            _ => window.days.to_string(),
        })
    }

    /// Runs a predefined view.
    pub async fn view(&self, name: &str) -> Result<QueryResult> {
        self.execute(&view_query(name)?).await
    }

    /// Starts a predefined view, as `execute_stream`.
    pub async fn view_stream(&self, name: &str) -> Result<QueryStream> {
        self.execute_stream(&view_query(name)?).await
    }

    /// The columns of a table or view, `None` when there is none of that name.
    pub async fn relation_schema(&self, name: &str) -> Result<Option<SchemaRef>> {
        let snapshot = self.engine.snapshot();
        if !snapshot.ctx.table_exist(name)? {
            return Ok(None);
        }
        Ok(Some(snapshot.ctx.table_provider(name).await?.schema()))
    }

    /// A DataFusion context for this session (its snapshot, with its window resolved), for a
    /// protocol library that takes one (datafusion-postgres' handlers). Statements the session
    /// plans itself never need it.
    pub async fn protocol_context(&self) -> Result<SessionContext> {
        let snapshot = self.engine.snapshot();
        let window = self.window_in(&snapshot).await?;
        Ok(SessionContext::new_with_state(self.state(&snapshot, Some(window))))
    }
}

async fn start(planned: Planned) -> Result<QueryStream> {
    let Planned { state, plan, window } = planned;
    let df = if matches!(plan, LogicalPlan::Ddl(_) | LogicalPlan::Statement(_)) {
        // Only an engine that allows writes gets here (the SQL logic tests' fixtures).
        SessionContext::new_with_state(state).execute_logical_plan(plan).await?
    } else {
        DataFrame::new(state, plan)
    };
    let schema: SchemaRef = Arc::new(df.schema().as_arrow().clone());
    let stream = df.execute_stream().await?;
    Ok(QueryStream { schema, stream, window })
}

/// A statement about the window's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SettingStatement {
    Set(String, String),
    /// `RESET name`; `None` for `RESET ALL`.
    Reset(Option<String>),
    Show(String),
}

/// Recognises `SET debtlens.as_of = ...`, `SET debtlens.window_days TO ...`, `RESET
/// debtlens.as_of`, `RESET ALL` and `SHOW debtlens.window_days`. Other statements are `None`.
pub fn setting_statement(sql: &str) -> Option<SettingStatement> {
    setting_in(sql, &Scanned::new(sql))
}

fn setting_in(sql: &str, scanned: &Scanned) -> Option<SettingStatement> {
    if !matches!(scanned.first_word().as_deref(), Some("SET" | "RESET" | "SHOW")) {
        return None;
    }
    let mut statements = Parser::parse_sql(&GenericDialect {}, sql).ok()?;
    if statements.len() != 1 {
        return None;
    }
    setting_of(&statements.remove(0))
}

/// The setting statement a parsed statement is, if it is one about the window.
pub fn setting_of(statement: &Statement) -> Option<SettingStatement> {
    let ours = |name: &str| name.to_ascii_lowercase().starts_with("debtlens.");
    match statement {
        Statement::Set(Set::SingleAssignment { variable, values, .. }) if ours(&variable.to_string()) => {
            let value = values.iter().map(setting_value).collect::<Vec<_>>().join(", ");
            Some(SettingStatement::Set(variable.to_string(), value))
        }
        Statement::Reset(r) => match &r.reset {
            Reset::ALL => Some(SettingStatement::Reset(None)),
            Reset::ConfigurationParameter(name) if ours(&name.to_string()) => {
                Some(SettingStatement::Reset(Some(name.to_string())))
            }
            Reset::ConfigurationParameter(_) => None,
        },
        Statement::ShowVariable { variable } => {
            let name = variable.iter().map(|i| i.value.as_str()).collect::<Vec<_>>().join(".");
            ours(&name).then(|| SettingStatement::Show(name.to_ascii_lowercase()))
        }
        _ => None,
    }
}

/// The text of a value in a SET statement: a string without its quotes, a name as written.
pub fn setting_value(expr: &datafusion::sql::sqlparser::ast::Expr) -> String {
    use datafusion::sql::sqlparser::ast::Expr;
    match expr {
        Expr::Value(v) => v.clone().into_string().unwrap_or_else(|| v.to_string()),
        Expr::Identifier(ident) => ident.value.clone(),
        other => other.to_string(),
    }
}

/// The newest shipped_at of a shipped feature that is not in the future.
async fn newest_shipped(ctx: &SessionContext) -> Result<Option<DateTime<Utc>>> {
    let batches = ctx
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

/// The query of a predefined view.
fn view_query(name: &str) -> Result<String> {
    match views::find(name) {
        Some(view) => Ok(view.query()),
        None => Err(Error::UnknownView { name: name.to_string(), suggestions: views::closest(name) }),
    }
}

/// DataFusion says "DDL not supported: CreateView"; users need to hear why.
fn read_only_message(message: &str) -> String {
    let message = message.strip_prefix("Error during planning: ").unwrap_or(message);
    format!("debtlens SQL is read-only: only queries are allowed ({message}); change the store with `debtlens ingest`")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_settings_are_recognised_and_other_statements_are_not() {
        let set = setting_statement;
        assert_eq!(
            set("SET debtlens.as_of = '2026-10-31';"),
            Some(SettingStatement::Set("debtlens.as_of".into(), "2026-10-31".into()))
        );
        assert_eq!(
            set("set debtlens.window_days to 30"),
            Some(SettingStatement::Set("debtlens.window_days".into(), "30".into()))
        );
        assert_eq!(set("RESET debtlens.as_of"), Some(SettingStatement::Reset(Some("debtlens.as_of".into()))));
        assert_eq!(set("RESET ALL"), Some(SettingStatement::Reset(None)));
        assert_eq!(set("SHOW debtlens.window_days"), Some(SettingStatement::Show("debtlens.window_days".into())));
        assert_eq!(set("SET datafusion.execution.batch_size = 1"), None);
        assert_eq!(set("SELECT 'SET debtlens.as_of = 1'"), None);
    }

    #[tokio::test]
    async fn two_sessions_over_one_engine_keep_their_own_windows() {
        let engine = Engine::open(Store::builtin_sample(), EngineOptions::default()).await.unwrap();
        let mut a = engine.session();
        let mut b = engine.session();
        a.set("as_of", "2026-10-31").unwrap();
        b.set("debtlens.as_of", "2026-09-30").unwrap();
        b.set("window_days", "30").unwrap();
        let sql = "SELECT CAST(window_end() AS VARCHAR) AS e, window_days() AS d";
        let (ra, rb) = tokio::join!(a.execute(sql), b.execute(sql));
        let text =
            |r: QueryResult| datafusion::arrow::util::pretty::pretty_format_batches(&r.batches).unwrap().to_string();
        let (ta, tb) = (text(ra.unwrap()), text(rb.unwrap()));
        assert!(ta.contains("2026-10-31T23:59:59.999999") && ta.contains("| 90"), "{ta}");
        assert!(tb.contains("2026-09-30T23:59:59.999999") && tb.contains("| 30"), "{tb}");
        assert_eq!(engine.session().settings(), WindowSettings::default());
    }
}
