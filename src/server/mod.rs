//! `debtlens serve`: the PostgreSQL-wire server for BI tools, on datafusion-postgres and its
//! pgwire. It owns what datafusion-postgres leaves open (known-pitfalls.md): authentication
//! (SCRAM-SHA-256, a fresh handler per connection), TLS that fails closed and can be required,
//! the read-only guard ahead of every other hook, a statement timeout that covers execution,
//! the connection limit, fresh data after an ingest, and a graceful shutdown.

pub mod auth;
pub mod guard;

use std::fmt::Debug;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use datafusion::common::ParamValues;
use datafusion::logical_expr::LogicalPlan;
use datafusion::sql::sqlparser::ast::Statement;
use datafusion_postgres::datafusion_pg_catalog::pg_catalog::context::EmptyContextProvider;
use datafusion_postgres::datafusion_pg_catalog::pg_catalog::setup_pg_catalog;
use datafusion_postgres::datafusion_pg_catalog::sql::PostgresCompatibilityParser;
use datafusion_postgres::hooks::cursor::CursorStatementHook;
use datafusion_postgres::hooks::set_show::SetShowHook;
use datafusion_postgres::hooks::transactions::TransactionStatementHook;
use datafusion_postgres::pgwire::api::auth::noop::NoopStartupHandler;
use datafusion_postgres::pgwire::api::auth::sasl::SASLAuthStartupHandler;
use datafusion_postgres::pgwire::api::auth::sasl::scram::ScramAuth;
use datafusion_postgres::pgwire::api::auth::{DefaultServerParameterProvider, StartupHandler};
use datafusion_postgres::pgwire::api::cancel::DefaultCancelHandler;
use datafusion_postgres::pgwire::api::portal::Portal;
use datafusion_postgres::pgwire::api::query::{ExtendedQueryHandler, SimpleQueryHandler};
use datafusion_postgres::pgwire::api::results::Response;
use datafusion_postgres::pgwire::api::stmt::QueryParser;
use datafusion_postgres::pgwire::api::store::PortalStore;
use datafusion_postgres::pgwire::api::{ClientInfo, ClientPortalStore, ConnectionManager, PgWireServerHandlers, Type};
use datafusion_postgres::pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use datafusion_postgres::pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};
use datafusion_postgres::pgwire::tokio::tokio_rustls::rustls;
use datafusion_postgres::pgwire::tokio::{TlsAcceptor, process_socket};
use datafusion_postgres::{DfSessionService, Parser, QueryHook, arrow_pg};
use futures::Sink;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::time::Instant;

use crate::engine::{CatalogExtension, Engine};
use crate::error::{Error, Result};
use auth::{Users, UsersSource};
use guard::{Guard, Kind};

/// How the server runs.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub listen: SocketAddr,
    pub users: Users,
    /// The PEM certificate chain and private key.
    pub tls: Option<(PathBuf, PathBuf)>,
    pub require_tls: bool,
    pub max_connections: usize,
    /// The longest any statement may run, and the default statement_timeout.
    pub query_timeout: Duration,
    /// How long running queries may go on after SIGTERM or Ctrl-C.
    pub shutdown_grace: Duration,
}

/// What the server says once it listens: the address (the real port when 0 was asked for).
#[derive(Debug, Clone, Copy)]
pub struct Listening {
    pub addr: SocketAddr,
    pub tls: bool,
    pub users: usize,
}

/// Serves `engine` until SIGTERM or Ctrl-C. `on_listening` is called once the socket is bound.
pub async fn serve(engine: Engine, options: ServeOptions, on_listening: impl FnOnce(Listening)) -> Result<()> {
    if options.users.is_empty() && !options.listen.ip().is_loopback() {
        return Err(Error::Usage(format!(
            "refusing to listen on {} without users: anyone who can reach it could read the store. \
             Add a user with `debtlens serve --add-user NAME` (or set {} and {}), or listen on 127.0.0.1",
            options.listen,
            auth::USER_ENV,
            auth::PASSWORD_ENV
        )));
    }
    if options.require_tls && options.tls.is_none() {
        return Err(Error::Usage("--require-tls needs --tls-cert and --tls-key".into()));
    }
    let tls = options.tls.as_ref().map(|(cert, key)| load_tls(cert, key)).transpose()?;

    // datafusion-postgres' handlers take a context: the one of a session with the default
    // window, for what the guard leaves to them (SHOW of server settings, transactions).
    let ctx = engine.session().protocol_context().await?;
    // Queries running now, for the shutdown grace period.
    let active = Arc::new(AtomicUsize::new(0));
    let guard = Arc::new(Guard::new(engine.clone(), options.query_timeout, active.clone()));
    let hooks: Vec<Arc<dyn QueryHook>> =
        vec![guard.clone(), Arc::new(CursorStatementHook), Arc::new(SetShowHook), Arc::new(TransactionStatementHook)];
    let inner = Arc::new(DfSessionService::new_with_hooks(Arc::new(ctx), hooks));
    let parser = Arc::new(OneStatement { inner: inner.query_parser(), sql: PostgresCompatibilityParser::new() });
    let shared = Arc::new(Shared {
        service: Arc::new(Service { inner, guard, parser }),
        throttle: Arc::new(Throttle::default()),
        users: Arc::new(UsersSource::new(options.users.clone())),
        authenticate: !options.users.is_empty(),
        parameters: Arc::new(server_parameters()),
        connections: Arc::new(ConnectionManager::new()),
        require_tls: options.require_tls,
    });

    let listener = TcpListener::bind(options.listen)
        .await
        .map_err(|e| Error::Usage(format!("cannot listen on {}: {e}", options.listen)))?;
    let addr = listener.local_addr().map_err(|e| Error::io("<socket>", e))?;
    on_listening(Listening { addr, tls: tls.is_some(), users: options.users.len() });

    let limiter = Arc::new(Semaphore::new(options.max_connections.max(1)));
    let mut connections = tokio::task::JoinSet::new();
    let shutdown = shutdown_signal();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => {
                let Ok((socket, _peer)) = accepted else { continue };
                let _ = socket.set_nodelay(true);
                let permit = limiter.clone().try_acquire_owned().ok();
                let refusal = permit.is_none().then(|| {
                    ("53300", format!(
                        "sorry, too many clients already: this server allows {} connections (--max-connections)",
                        options.max_connections
                    ))
                });
                let handlers = Handlers::new(&shared, refusal);
                let tls = tls.clone();
                connections.spawn(async move {
                    let _permit = permit;
                    let _ = process_socket(socket, tls, handlers).await;
                });
            }
            // Reap finished connections as they end.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    eprintln!("debtlens: shutting down; waiting up to {}s for running queries", options.shutdown_grace.as_secs());
    let deadline = Instant::now() + options.shutdown_grace;
    while active.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    connections.shutdown().await;
    Ok(())
}

/// What the server adds to every snapshot's catalog: PostgreSQL's `pg_catalog`, which BI tools
/// browse on connect. Give it to the engine's options before opening the engine.
pub fn catalog_extension() -> CatalogExtension {
    Arc::new(|ctx| {
        setup_pg_catalog(ctx, "datafusion", EmptyContextProvider)
            .map(|_| ())
            .map_err(|e| Error::Internal(format!("cannot set up pg_catalog: {e}")))
    })
}

/// Resolves on SIGTERM or Ctrl-C (SIGINT).
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            },
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Loads the certificate chain and key (PKCS#8, PKCS#1 or SEC1). Any problem stops the server:
/// it never falls back to plaintext.
fn load_tls(cert: &Path, key: &Path) -> Result<TlsAcceptor> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};

    let _ = rustls::crypto::ring::default_provider().install_default();
    let bad = |path: &Path, what: &str, e: &dyn std::fmt::Display| {
        Error::Usage(format!("TLS: {}: {what}: {e}", path.display()))
    };
    std::fs::metadata(cert).map_err(|e| Error::io(cert, e))?;
    std::fs::metadata(key).map_err(|e| Error::io(key, e))?;
    let certs = CertificateDer::pem_file_iter(cert)
        .map_err(|e| bad(cert, "cannot read the certificate", &e))?
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| bad(cert, "not a PEM certificate", &e))?;
    if certs.is_empty() {
        return Err(bad(cert, "no certificate", &"the file holds no BEGIN CERTIFICATE block"));
    }
    let key_der = PrivateKeyDer::from_pem_file(key).map_err(|e| bad(key, "not a PEM private key", &e))?;
    let mut config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(certs, key_der)
        .map_err(|e| bad(key, "the key does not fit the certificate", &e))?;
    config.alpn_protocols = vec![b"postgresql".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// What PostgreSQL clients are told at startup; BI tools read `default_transaction_read_only`.
fn server_parameters() -> DefaultServerParameterProvider {
    let mut parameters = DefaultServerParameterProvider::default();
    parameters.server_version = format!("16.6 (debtlens {})", env!("CARGO_PKG_VERSION"));
    parameters.is_superuser = false;
    parameters.default_transaction_read_only = true;
    parameters.time_zone = "UTC".into();
    parameters
}

/// What every connection shares.
struct Shared {
    service: Arc<Service>,
    throttle: Arc<Throttle>,
    users: Arc<UsersSource>,
    authenticate: bool,
    parameters: Arc<DefaultServerParameterProvider>,
    connections: Arc<ConnectionManager>,
    require_tls: bool,
}

/// The handlers of one connection. pgwire 0.41 keeps SCRAM state in its startup handler, so each
/// connection gets its own.
struct Handlers {
    service: Arc<Service>,
    startup: Arc<Startup>,
    cancel: Arc<DefaultCancelHandler>,
}

impl Handlers {
    fn new(shared: &Shared, refusal: Option<(&'static str, String)>) -> Self {
        let auth = if shared.authenticate {
            let mut scram = ScramAuth::new(shared.users.clone());
            scram.set_iterations(auth::ITERATIONS);
            Auth::Scram(
                SASLAuthStartupHandler::new(shared.parameters.clone())
                    .with_scram(scram)
                    .with_connection_manager(shared.connections.clone()),
            )
        } else {
            Auth::Trust(Trust { connections: shared.connections.clone() })
        };
        Self {
            service: shared.service.clone(),
            startup: Arc::new(Startup {
                auth,
                refusal,
                require_tls: shared.require_tls,
                throttle: shared.throttle.clone(),
            }),
            cancel: Arc::new(DefaultCancelHandler::new(shared.connections.clone())),
        }
    }
}

impl PgWireServerHandlers for Handlers {
    fn simple_query_handler(&self) -> Arc<impl SimpleQueryHandler> {
        self.service.clone()
    }

    fn extended_query_handler(&self) -> Arc<impl ExtendedQueryHandler> {
        self.service.clone()
    }

    fn startup_handler(&self) -> Arc<impl StartupHandler> {
        self.startup.clone()
    }

    fn cancel_handler(&self) -> Arc<impl datafusion_postgres::pgwire::api::cancel::CancelHandler> {
        self.cancel.clone()
    }
}

enum Auth {
    Scram(SASLAuthStartupHandler<DefaultServerParameterProvider>),
    /// No users configured (loopback only).
    Trust(Trust),
}

struct Trust {
    connections: Arc<ConnectionManager>,
}

impl NoopStartupHandler for Trust {
    fn connection_manager(&self) -> Option<Arc<ConnectionManager>> {
        Some(self.connections.clone())
    }
}

/// Authentication, after the checks that refuse a connection outright: over the connection
/// limit, or plaintext when TLS is required.
struct Startup {
    auth: Auth,
    refusal: Option<(&'static str, String)>,
    require_tls: bool,
    throttle: Arc<Throttle>,
}

/// Failed logins by client address. Past the third failure in a row, each failure is answered
/// later (100 ms, doubling to 500 ms), so guessing passwords costs time; every failure is logged
/// with the user and address. An address's count starts again a minute after its last failure.
#[derive(Default)]
struct Throttle {
    failures: std::sync::Mutex<std::collections::HashMap<std::net::IpAddr, (u32, Instant)>>,
}

impl Throttle {
    const FREE: u32 = 3;
    const FORGET: Duration = Duration::from_secs(60);

    async fn failed(&self, addr: SocketAddr, user: &str) {
        let now = Instant::now();
        let count = {
            let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
            failures.retain(|_, (_, last)| now.duration_since(*last) < Self::FORGET);
            let entry = failures.entry(addr.ip()).or_insert((0, now));
            *entry = (entry.0 + 1, now);
            entry.0
        };
        eprintln!("debtlens: failed login for user \"{user}\" from {} ({count} in a row)", addr.ip());
        if count > Self::FREE {
            let delay = (100u64 << (count - Self::FREE - 1).min(3)).min(500);
            tokio::time::sleep(Duration::from_millis(delay)).await;
        }
    }
}

#[async_trait]
impl StartupHandler for Startup {
    async fn on_startup<C>(&self, client: &mut C, message: PgWireFrontendMessage) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        if let PgWireFrontendMessage::Startup(_) = &message {
            if let Some((code, message)) = &self.refusal {
                return Err(fatal(code, message.clone()));
            }
            if self.require_tls && !client.is_secure() {
                return Err(fatal(
                    "28000",
                    "this server accepts TLS connections only: connect with sslmode=require".into(),
                ));
            }
        }
        let result = match &self.auth {
            Auth::Scram(handler) => handler.on_startup(client, message).await,
            Auth::Trust(handler) => handler.on_startup(client, message).await,
        };
        // pgwire names the user of the SCRAM exchange, which libpq leaves empty.
        match result {
            Err(PgWireError::InvalidPassword(_)) => {
                let user = client.metadata().get("user").cloned().unwrap_or_default();
                self.throttle.failed(client.socket_addr(), &user).await;
                Err(fatal("28P01", format!("password authentication failed for user \"{user}\"")))
            }
            other => other,
        }
    }
}

fn fatal(code: &str, message: String) -> PgWireError {
    PgWireError::UserError(Box::new(ErrorInfo::new("FATAL".into(), code.into(), message)))
}

type DfStatement = (String, Option<(Statement, LogicalPlan)>);

/// The extended protocol: datafusion-postgres' parser (whose first hook is the guard, so every
/// statement is planned read-only when it is parsed), and queries run by the guard with the
/// result formats the client asked for in Bind.
struct Service {
    inner: Arc<DfSessionService>,
    guard: Arc<Guard>,
    parser: Arc<OneStatement>,
}

/// datafusion-postgres' parser keeps the first statement of a Parse message and drops the rest;
/// PostgreSQL refuses such a message, and so does debtlens, so that `SELECT 1; DROP ...` fails
/// over the extended protocol as it does over the simple one.
struct OneStatement {
    inner: Arc<Parser>,
    sql: PostgresCompatibilityParser,
}

#[async_trait]
impl QueryParser for OneStatement {
    type Statement = DfStatement;

    async fn parse_sql<C>(&self, client: &C, sql: &str, types: &[Option<Type>]) -> PgWireResult<Option<DfStatement>>
    where
        C: ClientInfo + Unpin + Send + Sync,
    {
        crate::sql::check_depth(sql).map_err(|e| guard::user_error("54001", e))?;
        let statements = self.sql.parse(sql).map_err(|e| guard::user_error("42601", e.to_string()))?;
        if statements.len() > 1 {
            return Err(guard::user_error("42601", "cannot insert multiple commands into a prepared statement".into()));
        }
        self.inner.parse_sql(client, sql, types).await
    }

    fn get_parameter_types(&self, statement: &DfStatement) -> PgWireResult<Vec<Type>> {
        self.inner.get_parameter_types(statement)
    }

    fn get_result_schema(
        &self,
        statement: &DfStatement,
        format: Option<&datafusion_postgres::pgwire::api::portal::Format>,
    ) -> PgWireResult<Vec<datafusion_postgres::pgwire::api::results::FieldInfo>> {
        self.inner.get_result_schema(statement, format)
    }
}

/// The simple protocol: datafusion-postgres' handler, after the depth check, so that a statement
/// too deep to plan is an error for its client and not a stack overflow for the server (the
/// parsed statement is rewritten and planned by recursion before any hook sees it).
#[async_trait]
impl SimpleQueryHandler for Service {
    async fn do_query<C>(&self, client: &mut C, query: &str) -> PgWireResult<Vec<Response>>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        crate::sql::check_depth(query).map_err(|e| guard::user_error("54001", e))?;
        SimpleQueryHandler::do_query(self.inner.as_ref(), client, query).await
    }
}

#[async_trait]
impl ExtendedQueryHandler for Service {
    type Statement = DfStatement;
    type QueryParser = OneStatement;

    fn query_parser(&self) -> Arc<Self::QueryParser> {
        self.parser.clone()
    }

    async fn do_query<C>(
        &self,
        client: &mut C,
        portal: &Portal<Self::Statement>,
        max_rows: usize,
    ) -> PgWireResult<Response>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let started = Instant::now();
        let (_, Some((statement, plan))) = &portal.statement.statement else {
            return Ok(Response::EmptyQuery);
        };
        if Kind::of(statement) != Kind::Query {
            return ExtendedQueryHandler::do_query(self.inner.as_ref(), client, portal, max_rows).await;
        }
        let params = self.parameters(portal, plan)?;
        // The plan made at Parse reads the snapshot of that moment, and drivers keep a prepared
        // statement for the connection's life (pgjdbc and psycopg prepare a query after its
        // fifth run): planned again here, every execution reads the newest committed data, as a
        // simple query does. The Parse-time plan still types the parameters and describes the rows.
        let fresh = self.guard.plan(statement, &*client).await?;
        let plan = fresh.replace_params_with_values(&params).map_err(|e| guard::pg_error(&e.into()))?;
        self.guard.run(statement, plan, &portal.result_column_format, client, started).await
    }
}

impl Service {
    /// The bound parameters, typed by the client's hints, else the types the plan infers.
    fn parameters(&self, portal: &Portal<DfStatement>, plan: &LogicalPlan) -> PgWireResult<ParamValues> {
        let wire: Vec<Type> = self.parser.get_parameter_types(&portal.statement.statement)?;
        let mut inferred: Vec<(String, Option<datafusion::arrow::datatypes::DataType>)> =
            plan.get_parameter_types().map_err(|e| guard::pg_error(&e.into()))?.into_iter().collect();
        inferred.sort_by_key(|(id, _)| id.trim_start_matches('$').parse::<u32>().unwrap_or(u32::MAX));
        let inferred: Vec<_> = inferred.iter().map(|(_, t)| t.as_ref()).collect();
        let wire: Vec<_> = wire.iter().map(Some).collect();
        arrow_pg::datatypes::df::deserialize_parameters_with_server_types(portal, &inferred, &wire)
    }
}
