//! `debtlens serve`: the PostgreSQL-wire server for BI tools, on datafusion-postgres and its
//! pgwire. It owns what datafusion-postgres leaves open (known-pitfalls.md): authentication
//! (SCRAM-SHA-256, a fresh handler per connection), TLS that fails closed and can be required,
//! the read-only guard ahead of every other hook, a statement timeout that covers execution,
//! the connection limit, fresh data after an ingest, and a graceful shutdown.

pub mod auth;
pub mod catalog;
pub mod copy;
pub mod dialect;
pub mod guard;
pub mod origins;
pub mod params;
pub mod parse;
pub mod scram;
pub mod settings;
pub mod subquery;
pub mod templates;

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
use datafusion_postgres::hooks::cursor::CursorStatementHook;
use datafusion_postgres::hooks::set_show::SetShowHook;
use datafusion_postgres::hooks::transactions::TransactionStatementHook;
use datafusion_postgres::pgwire::api::auth::{
    DefaultServerParameterProvider, StartupHandler, protocol_negotiation, save_startup_parameters_to_metadata,
};
use datafusion_postgres::pgwire::api::cancel::DefaultCancelHandler;
use datafusion_postgres::pgwire::api::portal::{Portal, PortalExecutionState};
use datafusion_postgres::pgwire::api::query::{ExtendedQueryHandler, SimpleQueryHandler};
use datafusion_postgres::pgwire::api::results::{Response, Tag};
use datafusion_postgres::pgwire::api::stmt::QueryParser;
use datafusion_postgres::pgwire::api::store::{Entry, PortalStore};
use datafusion_postgres::pgwire::api::{
    ClientInfo, ClientPortalStore, ConnectionHandle, ConnectionManager, DEFAULT_NAME, PgWireConnectionState,
    PgWireServerHandlers, Type,
};
use datafusion_postgres::pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use datafusion_postgres::pgwire::messages::extendedquery::{Execute, PortalSuspended};
use datafusion_postgres::pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};
use datafusion_postgres::pgwire::tokio::tokio_rustls::rustls;
use datafusion_postgres::pgwire::tokio::{TlsAcceptor, process_socket};
use datafusion_postgres::{DfSessionService, Parser, QueryHook};
use futures::{Sink, SinkExt, StreamExt};
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
    /// How long a client may take from connecting to being logged in.
    pub auth_timeout: Duration,
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
    let ctx = Arc::new(ctx);
    let inner = Arc::new(DfSessionService::new_with_hooks(ctx.clone(), hooks));
    let sql = Arc::new(parse::SqlParser::default());
    let parser = Arc::new(OneStatement {
        inner: inner.query_parser(),
        sql: sql.clone(),
        guard: guard.clone(),
        ctx: ctx.clone(),
    });
    let shared = Arc::new(Shared {
        service: Arc::new(Service { inner, guard, parser, sql, ctx }),
        throttle: Arc::new(Throttle::default()),
        users: Arc::new(UsersSource::new(options.users.clone())),
        authenticate: !options.users.is_empty(),
        parameters: Arc::new(server_parameters()),
        connections: Arc::new(ConnectionManager::new()),
        keys: Arc::default(),
        require_tls: options.require_tls,
    });

    let listener = TcpListener::bind(options.listen)
        .await
        .map_err(|e| Error::Usage(format!("cannot listen on {}: {e}", options.listen)))?;
    let addr = listener.local_addr().map_err(|e| Error::io("<socket>", e))?;
    on_listening(Listening { addr, tls: tls.is_some(), users: options.users.len() });

    let limiter = Arc::new(Semaphore::new(options.max_connections.max(1)));
    let pending = Arc::new(Pending::new(options.max_connections));
    let mut connections = tokio::task::JoinSet::new();
    let shutdown = shutdown_signal();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => {
                let Ok((socket, peer)) = accepted else { continue };
                // A client that has not logged in holds no connection slot (a slot is taken when
                // its startup message arrives, see `Startup`), but one address may only have a
                // few of them: silent sockets cannot lock real users out.
                let Some(login) = pending.enter(peer.ip()) else {
                    eprintln!(
                        "debtlens: refused a connection from {}: {} connections from it have not logged in yet",
                        peer.ip(),
                        pending.per_address
                    );
                    continue;
                };
                let _ = socket.set_nodelay(true);
                let max_connections = options.max_connections;
                let handlers = Handlers::new(&shared, Slots { limiter: limiter.clone(), max_connections });
                let logged_in = handlers.startup.logged_in.clone();
                let tls = tls.clone();
                let auth_timeout = options.auth_timeout;
                connections.spawn(async move {
                    let session = process_socket(socket, tls, handlers);
                    tokio::pin!(session);
                    tokio::select! {
                        _ = &mut session => return,
                        _ = logged_in.notified() => {}
                        _ = tokio::time::sleep(auth_timeout) => {
                            eprintln!(
                                "debtlens: closed a connection from {} that did not log in within {}s (--auth-timeout)",
                                peer.ip(),
                                auth_timeout.as_secs_f64()
                            );
                            return;
                        }
                    }
                    drop(login);
                    let _ = session.await;
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
    Arc::new(|ctx, bytes| {
        setup_pg_catalog(ctx, "datafusion", EmptyContextProvider)
            .map_err(|e| Error::Internal(format!("cannot set up pg_catalog: {e}")))?;
        // One version everywhere (settings.rs), over DataFusion's own `version()`.
        ctx.register_udf(settings::version_udf());
        ctx.register_udf(settings::current_setting_udf());
        for f in settings::catalog_udfs() {
            ctx.register_udf(f);
        }
        ctx.register_udf(settings::relation_size_udf(bytes));
        ctx.register_udaf(subquery::single_value_udaf());
        // Keys, array columns, settings and PostgreSQL's information_schema (catalog.rs), over
        // the functions above.
        catalog::overlay(ctx, "datafusion").map_err(|e| Error::Internal(format!("cannot set up pg_catalog: {e}")))?;
        Ok(())
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
    parameters.server_version = settings::server_version();
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
    /// The backend keys (pid, secret) of cancel requests, one sequence for every connection.
    keys: Arc<datafusion_postgres::pgwire::api::RandomPidSecretKeyGenerator>,
    require_tls: bool,
}

/// The handlers of one connection. The SCRAM exchange keeps its state in its startup handler, so each
/// connection gets its own.
struct Handlers {
    service: Arc<Service>,
    startup: Arc<Startup>,
    cancel: Arc<DefaultCancelHandler>,
}

/// The connection slots (--max-connections), taken by a client when its startup message arrives.
#[derive(Clone)]
struct Slots {
    limiter: Arc<Semaphore>,
    max_connections: usize,
}

/// Clients that have connected and not logged in yet, per address.
struct Pending {
    by_address: std::sync::Mutex<std::collections::HashMap<std::net::IpAddr, usize>>,
    /// At most this many clients of one address may be logging in at once: enough for a BI
    /// server opening its whole pool at once, few enough that one address cannot use up the
    /// server's sockets with clients that never log in.
    per_address: usize,
}

impl Pending {
    fn new(max_connections: usize) -> Self {
        Self { by_address: Default::default(), per_address: (2 * max_connections).max(64) }
    }

    /// Counts a new client of `ip`, or `None` when the address has too many logging in.
    fn enter(self: &Arc<Self>, ip: std::net::IpAddr) -> Option<PendingLogin> {
        let mut map = self.by_address.lock().unwrap_or_else(|e| e.into_inner());
        let count = map.entry(ip).or_insert(0);
        if *count >= self.per_address {
            return None;
        }
        *count += 1;
        Some(PendingLogin { pending: self.clone(), ip })
    }
}

/// One client logging in; uncounted when dropped (logged in, gone, or timed out).
struct PendingLogin {
    pending: Arc<Pending>,
    ip: std::net::IpAddr,
}

impl Drop for PendingLogin {
    fn drop(&mut self) {
        let mut map = self.pending.by_address.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = map.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                map.remove(&self.ip);
            }
        }
    }
}

impl Handlers {
    fn new(shared: &Shared, slots: Slots) -> Self {
        let auth = if shared.authenticate {
            Auth::Scram(scram::Scram::new(
                shared.users.clone(),
                shared.parameters.clone(),
                shared.connections.clone(),
                shared.keys.clone(),
            ))
        } else {
            Auth::Trust(Trust {
                connections: shared.connections.clone(),
                keys: shared.keys.clone(),
                parameters: shared.parameters.clone(),
            })
        };
        Self {
            service: shared.service.clone(),
            startup: Arc::new(Startup {
                auth,
                slots,
                slot: std::sync::Mutex::new(None),
                logged_in: Arc::new(tokio::sync::Notify::new()),
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
    Scram(scram::Scram),
    /// No users configured (loopback only).
    Trust(Trust),
}

/// No authentication (loopback without users): the startup message logs the client in, with
/// the same parameters and backend keys as a SCRAM login (pgwire's noop handler would announce
/// its own `server_version`).
struct Trust {
    connections: Arc<ConnectionManager>,
    keys: Arc<datafusion_postgres::pgwire::api::RandomPidSecretKeyGenerator>,
    parameters: Arc<DefaultServerParameterProvider>,
}

#[async_trait]
impl StartupHandler for Trust {
    async fn on_startup<C>(&self, client: &mut C, message: PgWireFrontendMessage) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        if let PgWireFrontendMessage::Startup(startup) = &message {
            protocol_negotiation(client, startup).await?;
            save_startup_parameters_to_metadata(client, startup);
            scram::log_in(client, &self.keys, &self.connections, &self.parameters).await?;
        }
        Ok(())
    }
}

/// Authentication, after the checks that refuse a connection outright: over the connection
/// limit, or plaintext when TLS is required. One per connection.
struct Startup {
    auth: Auth,
    slots: Slots,
    /// The connection's slot, from its startup message to its end.
    slot: std::sync::Mutex<Option<tokio::sync::OwnedSemaphorePermit>>,
    /// Told once the client has logged in (the accept loop's login deadline stops then).
    logged_in: Arc<tokio::sync::Notify>,
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
            let Ok(slot) = self.slots.limiter.clone().try_acquire_owned() else {
                return Err(fatal(
                    "53300",
                    format!(
                        "sorry, too many clients already: this server allows {} connections (--max-connections)",
                        self.slots.max_connections
                    ),
                ));
            };
            *self.slot.lock().unwrap_or_else(|e| e.into_inner()) = Some(slot);
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
        if result.is_ok() && matches!(client.state(), PgWireConnectionState::ReadyForQuery) {
            self.logged_in.notify_one();
        }
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
    sql: Arc<parse::SqlParser>,
    ctx: Arc<datafusion::prelude::SessionContext>,
}

/// datafusion-postgres' parser keeps the first statement of a Parse message and drops the rest;
/// PostgreSQL refuses such a message, and so does debtlens, so that `SELECT 1; DROP ...` fails
/// over the extended protocol as it does over the simple one.
struct OneStatement {
    inner: Arc<Parser>,
    sql: Arc<parse::SqlParser>,
    guard: Arc<Guard>,
    ctx: Arc<datafusion::prelude::SessionContext>,
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
        let Some(statement) = statements.into_iter().next() else { return Ok(None) };
        // The guard plans what it runs from debtlens's parse (parse.rs); what it leaves to
        // datafusion-postgres' hooks (SET, SHOW, transactions, cursors) goes through its parser.
        match self.guard.handle_extended_parse_query(&statement, &self.ctx, client).await {
            Some(plan) => Ok(Some((statement.to_string(), Some((statement, plan?))))),
            None => self.inner.parse_sql(client, sql, types).await,
        }
    }

    fn get_parameter_types(&self, statement: &DfStatement) -> PgWireResult<Vec<Type>> {
        self.inner.get_parameter_types(statement)
    }

    fn get_result_schema(
        &self,
        statement: &DfStatement,
        format: Option<&datafusion_postgres::pgwire::api::portal::Format>,
    ) -> PgWireResult<Vec<datafusion_postgres::pgwire::api::results::FieldInfo>> {
        let fields = self.inner.get_result_schema(statement, format)?;
        Ok(match statement {
            (_, Some((_, plan))) => origins::describe(fields, plan, &self.guard.origins.cached()),
            _ => fields,
        })
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
        let statements = self.sql.parse(query).map_err(|e| guard::user_error("42601", e.to_string()))?;
        if statements.is_empty() {
            return Ok(vec![Response::EmptyQuery]);
        }
        // Each statement as datafusion-postgres would run it, but from debtlens's parse
        // (parse.rs): the guard's first, the other hooks' (SET, SHOW, transactions, cursors)
        // through datafusion-postgres with the statement's own text.
        let mut responses = Vec::with_capacity(statements.len());
        for statement in statements {
            match self.guard.handle_simple_query(&statement, &self.ctx, client).await {
                Some(response) => responses.push(response?),
                None => {
                    let text = statement.to_string();
                    responses.extend(SimpleQueryHandler::do_query(self.inner.as_ref(), client, &text).await?);
                }
            }
        }
        Ok(responses)
    }
}

#[async_trait]
impl ExtendedQueryHandler for Service {
    type Statement = DfStatement;
    type QueryParser = OneStatement;

    fn query_parser(&self) -> Arc<Self::QueryParser> {
        self.parser.clone()
    }

    /// Execute, with the rows of a query streamed to the client as they are produced. pgwire's
    /// default collects every row a portal yields into memory before it sends the first one
    /// (`Portal::fetch`), so a large result over the extended protocol (psycopg, pgjdbc,
    /// asyncpg, node-postgres) grew the server without bound and ignored the statement timeout.
    /// Here a query's rows go out through the connection's bounded write buffer (flushed each
    /// time it passes 8 KiB), `max_rows` at a time when the client asks for a portal's rows in
    /// pieces, and a cancel request stops the query while it computes or while it sends. What is
    /// not a row-returning query (SET, SHOW, transactions, cursors, an empty portal) keeps
    /// pgwire's handling.
    async fn on_execute<C>(&self, client: &mut C, message: Execute) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let name = message.name.as_deref().unwrap_or(DEFAULT_NAME);
        let portal = match client.portal_store().get_portal(name) {
            Some(Entry::Value(portal)) if streams(&portal) => portal,
            _ => return self._on_execute(client, message).await,
        };
        if !matches!(client.state(), PgWireConnectionState::ReadyForQuery) {
            return Err(PgWireError::NotReadyForQuery);
        }
        client.set_state(PgWireConnectionState::QueryInProgress);
        let max_rows = message.max_rows as usize;
        let mut cancel = cancel_receiver(client).await;
        let started = matches!(*portal.state().lock().await, PortalExecutionState::Initial);
        if started {
            let response = tokio::select! {
                response = ExtendedQueryHandler::do_query(self, client, portal.as_ref(), max_rows) => response?,
                _ = &mut cancel => return Err(PgWireError::QueryCanceled),
            };
            match response {
                Response::Query(rows) => portal.start(rows).await,
                _ => return Err(PgWireError::ApiError("a query answered without rows".into())),
            }
        }
        send_rows(client, portal.as_ref(), max_rows, cancel).await?;
        client.set_state(PgWireConnectionState::ReadyForQuery);
        Ok(())
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

/// Whether a portal's rows are sent by `Service::on_execute` (a query the guard runs).
fn streams(portal: &Portal<DfStatement>) -> bool {
    matches!(&portal.statement.statement, (_, Some((statement, _))) if Kind::of(statement) == Kind::Query)
}

/// The connection's cancel signal for the query starting now; never fires when the connection
/// has no cancel handle.
async fn cancel_receiver<C: ClientInfo>(client: &C) -> futures::future::BoxFuture<'static, ()> {
    match client.session_extensions().get::<Arc<ConnectionHandle>>() {
        Some(handle) => {
            let receiver = handle.start_query().await;
            Box::pin(async move {
                // A dropped sender means another query replaced this one's handle: not a cancel.
                if receiver.await.is_err() {
                    futures::future::pending::<()>().await;
                }
            })
        }
        None => Box::pin(futures::future::pending()),
    }
}

/// Sends up to `max_rows` rows of a started portal (all when 0) as they come, then
/// PortalSuspended when rows remain, else CommandComplete. Each row is fed to the connection's
/// buffer, which flushes to the socket past its boundary: memory holds a batch and a buffer.
async fn send_rows<C>(
    client: &mut C,
    portal: &Portal<DfStatement>,
    max_rows: usize,
    mut cancel: futures::future::BoxFuture<'static, ()>,
) -> PgWireResult<()>
where
    C: Sink<PgWireBackendMessage> + Unpin,
    C::Error: Debug,
    PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
{
    let state = portal.state();
    let mut state = state.lock().await;
    let PortalExecutionState::Suspended(response) = &mut *state else {
        // Every row was sent already: PostgreSQL completes an exhausted portal with no rows.
        client.send(PgWireBackendMessage::CommandComplete(Tag::new("SELECT").with_rows(0).into())).await?;
        return Ok(());
    };
    let tag = response.command_tag().to_owned();
    let rows = response.data_rows();
    let mut sent = 0;
    let mut more = true;
    while max_rows == 0 || sent < max_rows {
        let row = tokio::select! {
            row = rows.next() => row,
            _ = &mut cancel => return Err(PgWireError::QueryCanceled),
        };
        let Some(row) = row else {
            more = false;
            break;
        };
        client.feed(PgWireBackendMessage::DataRow(row?)).await?;
        sent += 1;
    }
    if more {
        client.send(PgWireBackendMessage::PortalSuspended(PortalSuspended::new())).await?;
    } else {
        *state = PortalExecutionState::Finished;
        client.send(PgWireBackendMessage::CommandComplete(Tag::new(&tag).with_rows(sent).into())).await?;
    }
    Ok(())
}

impl Service {
    /// The bound parameters of a portal (params.rs).
    fn parameters(&self, portal: &Portal<DfStatement>, plan: &LogicalPlan) -> PgWireResult<ParamValues> {
        let wire: Vec<Type> = self.parser.get_parameter_types(&portal.statement.statement)?;
        params::bind(portal, plan, &wire)
    }
}
