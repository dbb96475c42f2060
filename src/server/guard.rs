//! The read-only guard: the first query hook of the server, over the simple and the extended
//! protocol. Queries are planned by the engine (which refuses anything but a query) against the
//! newest data and run under the statement timeout, execution included, each in the connection's
//! own session; the SETs clients send on connect, and the connection's window
//! (`SET debtlens.as_of = ...`, `RESET`, `SHOW`), are answered here without touching anything
//! shared; everything else is refused with a PostgreSQL error.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use datafusion::arrow::array::RecordBatch;
use datafusion::common::{DFSchema, ParamValues};
use datafusion::error::DataFusionError;
use datafusion::logical_expr::{EmptyRelation, LogicalPlan};
use datafusion::physical_plan::SendableRecordBatchStream;
use datafusion::prelude::SessionContext;
use datafusion::sql::sqlparser::ast::{ContextModifier, Reset, Set, Statement};
use datafusion_postgres::QueryHook;
use datafusion_postgres::arrow_pg::datatypes::{arrow_schema_to_pg_fields, encode_recordbatch};
use datafusion_postgres::hooks::HookClient;
use datafusion_postgres::hooks::cursor::CursorStatementHook;
use datafusion_postgres::pgwire::api::ClientInfo;
use datafusion_postgres::pgwire::api::portal::Format;
use datafusion_postgres::pgwire::api::results::{FieldInfo, QueryResponse, Response, Tag};
use datafusion_postgres::pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use datafusion_postgres::pgwire::messages::PgWireBackendMessage;
use datafusion_postgres::pgwire::messages::data::DataRow;
use datafusion_postgres::pgwire::messages::startup::ParameterStatus;
use datafusion_postgres::pgwire::types::format::FormatOptions;
use futures::{Stream, StreamExt, stream};
use tokio::time::Instant;

use super::copy::CopyOut;
use crate::engine::{Engine, Session, SettingStatement, setting_of, setting_value};
use crate::error::Error;
use crate::time::parse_duration;
use crate::views::references_window;

/// The client metadata key of the session's statement timeout, in milliseconds.
const TIMEOUT_KEY: &str = "statement_timeout_ms";

/// What the guard does with a statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// SET and DISCARD: answered by the guard, per connection.
    Session,
    /// SHOW, transactions and cursors: left to datafusion-postgres' own hooks, which change
    /// nothing (a cursor's query is checked first).
    Passthrough,
    /// Anything else: planned by the engine, which accepts queries only.
    Query,
}

impl Kind {
    pub fn of(statement: &Statement) -> Self {
        match statement {
            Statement::Set(_) | Statement::Discard { .. } | Statement::Reset(_) => Kind::Session,
            Statement::ShowVariable { variable }
                if is_timeout(variable) || setting_of(statement).is_some() || shown_setting(variable).is_some() =>
            {
                Kind::Session
            }
            Statement::ShowVariable { .. }
            | Statement::ShowStatus { .. }
            | Statement::ShowCatalogs { .. }
            | Statement::StartTransaction { .. }
            | Statement::Commit { .. }
            | Statement::Rollback { savepoint: None, .. }
            | Statement::Declare { .. }
            | Statement::Fetch { .. }
            | Statement::Close { .. } => Kind::Passthrough,
            _ => Kind::Query,
        }
    }
}

pub struct Guard {
    engine: Engine,
    /// The catalog's numbers for the columns of RowDescriptions (origins.rs).
    pub origins: super::origins::Origins,
    /// The longest a statement may run; also the timeout when the client sets none.
    max_timeout: Duration,
    /// Queries whose rows are still being produced.
    active: Arc<AtomicUsize>,
}

impl Guard {
    pub fn new(engine: Engine, max_timeout: Duration, active: Arc<AtomicUsize>) -> Self {
        Self { engine, max_timeout, active, origins: Default::default() }
    }

    /// The connection's session: the engine's default window with the connection's own
    /// `SET debtlens....` settings (kept in the client's metadata) over it.
    fn session(&self, client: &(impl ClientInfo + ?Sized)) -> PgWireResult<Session> {
        let mut session = self.engine.session();
        for name in WINDOW_SETTINGS {
            if let Some(value) = client.metadata().get(name) {
                session.set(name, value).map_err(|e| pg_error(&e))?;
            }
        }
        Ok(session)
    }

    /// Plans a statement against the newest committed data in the client's session; anything
    /// but a query is refused.
    pub async fn plan(&self, statement: &Statement, client: &(impl ClientInfo + ?Sized)) -> PgWireResult<LogicalPlan> {
        self.engine.refresh().await.map_err(|e| pg_error(&e))?;
        // PostgreSQL's column names and the client's database (dialect.rs).
        let mut statement = statement.clone();
        let database = client.metadata().get("database").map_or("debtlens", String::as_str);
        super::dialect::as_postgres(&mut statement, database).map_err(|e| user_error("0A000", e))?;
        let session = self.session(client)?;
        // Types are checked when the plan is analysed, at execution: checked here, so that a
        // comparison DataFusion cannot type is known while the statement can be planned again.
        let checked = |plan: LogicalPlan| -> Result<LogicalPlan, Error> {
            datafusion::optimizer::Analyzer::new()
                .execute_and_check(plan.clone(), &datafusion::config::ConfigOptions::default(), |_, _| {})
                .map(|_| plan)
                .map_err(Error::from)
        };
        let plan = match session.plan_statement(&statement).await.and_then(checked) {
            // PostgreSQL reads `flag = 'f'` as a boolean comparison (SQLAlchemy 1.4's
            // get_indexes writes `ix.indisprimary = 'f'`); DataFusion cannot compare a Boolean
            // with text. Planned again with such literals as booleans; if that fails too, the
            // first error stands.
            Err(e) if e.to_string().contains("Boolean = Utf8") || e.to_string().contains("Utf8 = Boolean") => {
                let mut again = statement.clone();
                if super::dialect::boolean_literals(&mut again) {
                    session.plan_statement(&again).await.and_then(checked).map_err(|_| pg_error(&e))?
                } else {
                    return Err(pg_error(&e));
                }
            }
            other => other.map_err(|e| pg_error(&e))?,
        };
        super::params::type_array_parameters(plan).map_err(|e| pg_error(&e.into()))
    }

    /// The timeout of the client's next statement: its own `statement_timeout`, capped by the
    /// server's.
    fn timeout(&self, client: &(impl ClientInfo + ?Sized)) -> Duration {
        client
            .metadata()
            .get(TIMEOUT_KEY)
            .and_then(|ms| ms.parse().ok())
            .map(Duration::from_millis)
            .map_or(self.max_timeout, |t| t.min(self.max_timeout))
    }

    /// Runs a planned query: the deadline starts now and covers planning the physical plan and
    /// producing every row; past it the query is cancelled with SQLSTATE 57014.
    /// `statement` is the one the plan was made from: whether it reads the window decides
    /// whether the session resolves one.
    pub async fn run(
        &self,
        statement: &Statement,
        plan: LogicalPlan,
        format: &Format,
        client: &(impl ClientInfo + ?Sized),
        started: Instant,
    ) -> PgWireResult<Response> {
        let running = Running::start(&self.active);
        let limit = self.timeout(client);
        let deadline = started + limit;
        let schema = plan.schema().as_arrow().clone();
        let session = self.session(client)?;
        let windowed = references_window(&statement.to_string());
        let options = Arc::new(FormatOptions::from_client_metadata(client.metadata()));
        let fields = arrow_schema_to_pg_fields(&schema, format, Some(options))?;
        let fields = Arc::new(super::origins::describe(fields, &plan, &*self.origins.refresh(&self.engine).await));
        let batches = tokio::time::timeout_at(deadline, session.execute_plan(plan, windowed))
            .await
            .map_err(|_| timed_out(limit))?
            .map_err(|e| pg_error(&e))?
            .stream;
        Ok(Response::Query(QueryResponse::new(fields.clone(), rows(batches, fields, deadline, limit, running))))
    }

    /// `COPY (query) TO STDOUT`: the query planned and run as any other (read-only, the
    /// connection's session, the statement timeout), its rows sent as CopyData (`copy.rs`).
    async fn copy(
        &self,
        copy: CopyOut,
        client: &(impl ClientInfo + ?Sized),
        started: Instant,
    ) -> PgWireResult<Response> {
        let plan = self.plan(&copy.query, client).await?;
        let running = Running::start(&self.active);
        let limit = self.timeout(client);
        let deadline = started + limit;
        let schema = plan.schema().as_arrow().clone();
        let windowed = references_window(&copy.query.to_string());
        let batches = tokio::time::timeout_at(deadline, self.session(client)?.execute_plan(plan, windowed))
            .await
            .map_err(|_| timed_out(limit))?
            .map_err(|e| pg_error(&e))?
            .stream;
        let batches = before(batches, deadline, limit).map(move |b| {
            let _running = &running;
            b
        });
        Ok(Response::CopyOut(super::copy::response(&copy.format, &schema, batches)?))
    }

    /// Checks the queries of a DECLARE ... CURSOR FOR before datafusion-postgres runs them.
    async fn check_cursor(&self, statement: &Statement, client: &(impl ClientInfo + ?Sized)) -> PgWireResult<()> {
        if let Statement::Declare { stmts } = statement {
            for declare in stmts {
                if let Some(query) = &declare.for_query {
                    self.plan(&Statement::Query(query.clone()), client).await?;
                }
            }
        }
        Ok(())
    }

    /// A DECLARE ... CURSOR, checked, then run by datafusion-postgres' cursor hook over the
    /// connection's own session (its snapshot and window), not the service's shared context.
    async fn declare(&self, statement: &Statement, client: &mut dyn HookClient) -> Option<PgWireResult<Response>> {
        if let Err(e) = self.check_cursor(statement, &*client).await {
            return Some(Err(e));
        }
        let ctx = match self.session(&*client) {
            Ok(session) => match session.protocol_context().await {
                Ok(ctx) => ctx,
                Err(e) => return Some(Err(pg_error(&e))),
            },
            Err(e) => return Some(Err(e)),
        };
        CursorStatementHook.handle_simple_query(statement, &ctx, client).await
    }

    /// SET, SET TIME ZONE, SET NAMES, SET TRANSACTION and DISCARD, for this connection only.
    pub async fn settings(&self, statement: &Statement, client: &mut dyn HookClient) -> PgWireResult<Response> {
        match setting_of(statement) {
            Some(SettingStatement::Set(name, value)) => {
                // Checked on a session of its own first: a bad value changes nothing.
                let mut session = self.session(&*client)?;
                session.set(&name, &value).map_err(|e| invalid_value(e.to_string()))?;
                let key = window_key(&name)?;
                client.metadata_mut().insert(key.to_string(), value);
                return Ok(Response::Execution(Tag::new("SET")));
            }
            Some(SettingStatement::Show(name)) => {
                let value = self.session(&*client)?.show(&name).await.map_err(|e| pg_error(&e))?;
                return Ok(Response::Query(show(&name, value)?));
            }
            Some(SettingStatement::Reset(Some(name))) => {
                client.metadata_mut().remove(window_key(&name)?);
                return Ok(Response::Execution(Tag::new("RESET")));
            }
            Some(SettingStatement::Reset(None)) => {
                for key in WINDOW_SETTINGS.iter().chain([&TIMEOUT_KEY]) {
                    client.metadata_mut().remove(*key);
                }
                return Ok(Response::Execution(Tag::new("RESET")));
            }
            None => {}
        }
        let set = match statement {
            Statement::Discard { .. } => {
                for key in WINDOW_SETTINGS.iter().chain([&TIMEOUT_KEY]) {
                    client.metadata_mut().remove(*key);
                }
                return Ok(Response::Execution(Tag::new("DISCARD ALL")));
            }
            Statement::Reset(reset) => {
                let Reset::ConfigurationParameter(name) = &reset.reset else { return Err(refused(statement)) };
                let name = name.to_string().to_lowercase();
                // Check the name as SET would, then drop the connection's value.
                let (key, _) = accept_setting(&name, "default", self.max_timeout)?;
                client.metadata_mut().remove(key);
                return Ok(Response::Execution(Tag::new("RESET")));
            }
            Statement::Set(set) => set,
            Statement::ShowVariable { variable } if is_timeout(variable) => {
                let value = format!("{}ms", self.timeout(&*client).as_millis());
                return Ok(Response::Query(show("statement_timeout", value)?));
            }
            Statement::ShowVariable { variable } => {
                let Some(name) = shown_setting(variable) else { return Err(refused(statement)) };
                // The connection's own value where it set one, else the server's.
                let set = accept_setting(&name, "default", self.max_timeout)
                    .ok()
                    .and_then(|(key, _)| client.metadata().get(key).cloned())
                    .filter(|v| !v.is_empty());
                let value = set.or_else(|| super::settings::default_setting(&name)).unwrap_or_default();
                return Ok(Response::Query(show(&name, value)?));
            }
            _ => return Err(refused(statement)),
        };
        let (name, value) = match set {
            Set::SingleAssignment {
                scope: None | Some(ContextModifier::Session | ContextModifier::Local),
                hivevar: false,
                variable,
                values,
            } => (variable.to_string().to_lowercase(), values.iter().map(setting_value).collect::<Vec<_>>().join(", ")),
            Set::SetTimeZone { value, .. } => ("timezone".to_string(), setting_value(value)),
            Set::SetNames { charset_name, .. } => ("client_encoding".to_string(), charset_name.value.clone()),
            // Every transaction is read-only already; its modes change nothing.
            Set::SetTransaction { .. } => return Ok(Response::Execution(Tag::new("SET"))),
            _ => return Err(refused(statement)),
        };
        let (key, value) = accept_setting(&name, &value, self.max_timeout)?;
        client.metadata_mut().insert(key.to_string(), value.clone());
        if let Some(reported) = reported_name(key) {
            client
                .send_message(PgWireBackendMessage::ParameterStatus(ParameterStatus::new(reported.into(), value)))
                .await?;
        }
        Ok(Response::Execution(Tag::new("SET")))
    }
}

/// The client metadata keys of the connection's window settings.
const WINDOW_SETTINGS: [&str; 2] = ["debtlens.as_of", "debtlens.window_days"];

/// The metadata key of a window setting's name.
fn window_key(name: &str) -> PgWireResult<&'static str> {
    match crate::window::setting_name(name) {
        Ok("as_of") => Ok(WINDOW_SETTINGS[0]),
        Ok(_) => Ok(WINDOW_SETTINGS[1]),
        Err(e) => Err(user_error("42704", e.to_string())),
    }
}

/// The PostgreSQL setting a `SHOW name` asks for, when the server knows it (`SHOW TIME ZONE`
/// is `timezone`).
fn shown_setting(variable: &[datafusion::sql::sqlparser::ast::Ident]) -> Option<String> {
    let words: Vec<String> = variable.iter().map(|v| v.value.to_lowercase()).collect();
    let name = match words.as_slice() {
        [one] => one.clone(),
        [a, b] if a == "time" && b == "zone" => "timezone".into(),
        _ => return None,
    };
    super::settings::default_setting(&name).map(|_| name)
}

fn is_timeout(variable: &[datafusion::sql::sqlparser::ast::Ident]) -> bool {
    matches!(variable, [v] if v.value.eq_ignore_ascii_case("statement_timeout"))
}

/// A one-row, one-column text answer to SHOW.
fn show(name: &str, value: String) -> PgWireResult<QueryResponse> {
    use datafusion_postgres::pgwire::api::results::{DataRowEncoder, FieldFormat};
    let fields = Arc::new(vec![FieldInfo::new(
        name.into(),
        None,
        None,
        datafusion_postgres::pgwire::api::Type::TEXT,
        FieldFormat::Text,
    )]);
    let mut encoder = DataRowEncoder::new(fields.clone());
    encoder.encode_field(&Some(value))?;
    let row = encoder.take_row();
    Ok(QueryResponse::new(fields, stream::once(async move { Ok(row) })))
}

/// Checks one setting a client may change and normalises its value: the metadata key it is kept
/// under and the value.
fn accept_setting(name: &str, value: &str, max_timeout: Duration) -> PgWireResult<(&'static str, String)> {
    let lower = value.to_lowercase();
    let default = lower == "default";
    let key = match name {
        "application_name" => "application_name",
        "extra_float_digits" => "extra_float_digits",
        "datestyle" => "datestyle",
        "intervalstyle" => "intervalstyle",
        "bytea_output" => "bytea_output",
        "search_path" => "search_path",
        "client_min_messages" => "client_min_messages",
        "standard_conforming_strings" if default || lower == "on" => "standard_conforming_strings",
        "client_encoding" if default || matches!(lower.as_str(), "utf8" | "utf-8" | "unicode") => {
            return Ok(("client_encoding", "UTF8".into()));
        }
        "client_encoding" => return Err(invalid_value(format!("debtlens sends UTF8 only, not `{value}`"))),
        "timezone" | "time zone"
            if default || matches!(lower.as_str(), "utc" | "etc/utc" | "gmt" | "z" | "uct" | "0" | "+00:00") =>
        {
            return Ok(("timezone", "UTC".into()));
        }
        "timezone" | "time zone" => {
            return Err(invalid_value(format!(
                "debtlens serves every time in UTC; time zone `{value}` is not available"
            )));
        }
        "statement_timeout" => {
            let asked = if default { Some(Duration::ZERO) } else { parse_duration(&lower) };
            let asked = asked.ok_or_else(|| {
                invalid_value(format!(
                    "invalid statement_timeout `{value}`: expected milliseconds or a unit (ms, s, min, h)"
                ))
            })?;
            let ms = if asked.is_zero() { max_timeout } else { asked.min(max_timeout) };
            return Ok((TIMEOUT_KEY, ms.as_millis().to_string()));
        }
        "standard_conforming_strings" => return Err(invalid_value("only standard_conforming_strings = on".into())),
        other if other.contains('.') => {
            return Err(user_error(
                "42501",
                format!(
                    "`{other}` is a server setting: it is set when `debtlens serve` starts, not by a client \
                     (a connection may set debtlens.as_of and debtlens.window_days)"
                ),
            ));
        }
        other => return Err(user_error("42704", format!("unrecognized configuration parameter \"{other}\""))),
    };
    Ok((key, value.to_string()))
}

/// The name under which PostgreSQL reports a setting to the client (ParameterStatus).
fn reported_name(key: &str) -> Option<&'static str> {
    Some(match key {
        "application_name" => "application_name",
        "datestyle" => "DateStyle",
        "intervalstyle" => "IntervalStyle",
        "client_encoding" => "client_encoding",
        "timezone" => "TimeZone",
        "standard_conforming_strings" => "standard_conforming_strings",
        _ => return None,
    })
}

/// The rows of a query, encoded for the client, until the deadline; past it the stream ends
/// with a 57014 error and dropping the batch stream cancels the query's work.
fn rows(
    batches: SendableRecordBatchStream,
    fields: Arc<Vec<FieldInfo>>,
    deadline: Instant,
    limit: Duration,
    running: Running,
) -> impl Stream<Item = PgWireResult<DataRow>> + Send + 'static {
    type Rows = Box<dyn Iterator<Item = PgWireResult<DataRow>> + Send + Sync>;
    before(batches, deadline, limit)
        .map(move |batch| -> stream::Iter<Rows> {
            let _running = &running;
            stream::iter(match batch {
                Ok(batch) => encode_recordbatch(fields.clone(), batch) as Rows,
                Err(e) => Box::new(std::iter::once(Err(e))),
            })
        })
        .flatten()
}

/// The batches of a running query, each before the deadline; past it the stream ends with a
/// 57014 error, and dropping the batch stream cancels the query's work.
fn before(
    batches: SendableRecordBatchStream,
    deadline: Instant,
    limit: Duration,
) -> impl Stream<Item = PgWireResult<RecordBatch>> + Send + 'static {
    stream::unfold(Some(batches), move |batches| async move {
        let mut batches = batches?;
        let next: PgWireResult<RecordBatch> = match tokio::time::timeout_at(deadline, batches.next()).await {
            Err(_) => Err(timed_out(limit)),
            Ok(None) => return None,
            Ok(Some(Err(e))) => Err(pg_error(&Error::from(e))),
            Ok(Some(Ok(batch))) => return Some((Ok(batch), Some(batches))),
        };
        Some((next, None))
    })
}

/// Counts a running query while it is alive (until its rows are sent or it fails).
struct Running(Arc<AtomicUsize>);

impl Running {
    fn start(active: &Arc<AtomicUsize>) -> Self {
        active.fetch_add(1, Ordering::SeqCst);
        Self(active.clone())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The plan of a SET (no columns) or SHOW (one text column) prepared over the extended
/// protocol: only its schema is used, to describe the statement.
fn session_plan(statement: &Statement) -> PgWireResult<LogicalPlan> {
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    let fields = match setting_of(statement) {
        Some(SettingStatement::Show(name)) => vec![Field::new(name, DataType::Utf8, false)],
        _ if matches!(statement, Statement::ShowVariable { .. }) => {
            vec![Field::new("statement_timeout", DataType::Utf8, false)]
        }
        _ => vec![],
    };
    let schema = DFSchema::try_from(Schema::new(fields)).map_err(|e| pg_error(&e.into()))?;
    Ok(LogicalPlan::EmptyRelation(EmptyRelation { produce_one_row: false, schema: Arc::new(schema) }))
}

#[async_trait]
impl QueryHook for Guard {
    async fn handle_simple_query(
        &self,
        statement: &Statement,
        _ctx: &SessionContext,
        client: &mut dyn HookClient,
    ) -> Option<PgWireResult<Response>> {
        let started = Instant::now();
        if let Some(copy) = super::copy::copy_out(statement) {
            return Some(match copy {
                Ok(copy) => self.copy(copy, &*client, started).await,
                Err(e) => Err(e),
            });
        }
        match Kind::of(statement) {
            Kind::Session => Some(self.settings(statement, client).await),
            Kind::Passthrough if matches!(statement, Statement::Declare { .. }) => {
                self.declare(statement, client).await
            }
            Kind::Passthrough => None,
            Kind::Query => Some(match self.plan(statement, &*client).await {
                Ok(plan) => self.run(statement, plan, &Format::UnifiedText, &*client, started).await,
                Err(e) => Err(e),
            }),
        }
    }

    async fn handle_extended_parse_query(
        &self,
        statement: &Statement,
        _ctx: &SessionContext,
        client: &(dyn ClientInfo + Send + Sync),
    ) -> Option<PgWireResult<LogicalPlan>> {
        match Kind::of(statement) {
            Kind::Session => Some(session_plan(statement)),
            Kind::Passthrough => self.check_cursor(statement, client).await.err().map(Err),
            Kind::Query => {
                // The Describe that follows reads the catalog's numbers from the cache.
                self.origins.refresh(&self.engine).await;
                Some(self.plan(statement, client).await)
            }
        }
    }

    async fn handle_extended_query(
        &self,
        statement: &Statement,
        _plan: &LogicalPlan,
        _params: &ParamValues,
        _ctx: &SessionContext,
        client: &mut dyn HookClient,
    ) -> Option<PgWireResult<Response>> {
        // Queries never get here: the server's extended handler runs them itself, with the
        // portal's result formats.
        match Kind::of(statement) {
            Kind::Session => Some(self.settings(statement, client).await),
            Kind::Passthrough if matches!(statement, Statement::Declare { .. }) => {
                self.declare(statement, client).await
            }
            Kind::Passthrough => None,
            Kind::Query => Some(Err(refused(statement))),
        }
    }
}

pub fn user_error(code: &str, message: String) -> PgWireError {
    PgWireError::UserError(Box::new(ErrorInfo::new("ERROR".into(), code.into(), message)))
}

fn invalid_value(message: String) -> PgWireError {
    user_error("22023", message)
}

fn timed_out(limit: Duration) -> PgWireError {
    user_error("57014", format!("canceling statement due to statement timeout ({} ms)", limit.as_millis()))
}

fn refused(statement: &Statement) -> PgWireError {
    let text = statement.to_string();
    let head: String = text.split_whitespace().take(2).collect::<Vec<_>>().join(" ");
    user_error("25006", format!("debtlens serves read-only: `{head}` is not allowed; only queries are"))
}

/// A debtlens error as a PostgreSQL error with the nearest SQLSTATE.
pub fn pg_error(e: &Error) -> PgWireError {
    let code = match e {
        Error::ReadOnly(_) => "25006",
        Error::TooDeep(_) => "54001",
        Error::UnknownView { .. } | Error::MissingTable { .. } => "42P01",
        Error::DataFusion(df) => match df.find_root() {
            DataFusionError::SQL(..) => "42601",
            DataFusionError::SchemaError(..) => "42703",
            DataFusionError::Plan(m) if m.contains("not found") => "42P01",
            DataFusionError::Plan(_) => "42000",
            DataFusionError::NotImplemented(_) => "0A000",
            DataFusionError::ResourcesExhausted(_) => "53200",
            DataFusionError::Execution(_) | DataFusionError::ArrowError(..) => "22000",
            _ => "XX000",
        },
        _ => "XX000",
    };
    user_error(code, e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_settings_clients_send_on_connect_are_accepted() {
        let max = Duration::from_secs(60);
        assert_eq!(accept_setting("extra_float_digits", "3", max).unwrap(), ("extra_float_digits", "3".into()));
        assert_eq!(accept_setting("client_encoding", "utf8", max).unwrap().1, "UTF8");
        assert_eq!(accept_setting("timezone", "Etc/UTC", max).unwrap().1, "UTC");
        assert_eq!(accept_setting("datestyle", "ISO, MDY", max).unwrap().1, "ISO, MDY");
        assert_eq!(accept_setting("search_path", "public", max).unwrap().0, "search_path");
    }

    #[test]
    fn the_statement_timeout_is_capped_by_the_server() {
        let max = Duration::from_secs(60);
        assert_eq!(accept_setting("statement_timeout", "500", max).unwrap(), (TIMEOUT_KEY, "500".into()));
        assert_eq!(accept_setting("statement_timeout", "2s", max).unwrap().1, "2000");
        assert_eq!(accept_setting("statement_timeout", "1h", max).unwrap().1, "60000");
        assert_eq!(accept_setting("statement_timeout", "0", max).unwrap().1, "60000");
        assert!(accept_setting("statement_timeout", "soon", max).is_err());
    }

    #[test]
    fn server_settings_and_unknown_ones_are_refused() {
        let max = Duration::from_secs(60);
        let code = |e: PgWireError| match e {
            PgWireError::UserError(info) => info.code.clone(),
            other => panic!("{other}"),
        };
        assert_eq!(code(accept_setting("datafusion.runtime.memory_limit", "1T", max).unwrap_err()), "42501");
        assert_eq!(code(accept_setting("work_mem", "1GB", max).unwrap_err()), "42704");
        assert_eq!(code(accept_setting("timezone", "Europe/Paris", max).unwrap_err()), "22023");
        assert_eq!(code(accept_setting("client_encoding", "LATIN1", max).unwrap_err()), "22023");
    }
}
