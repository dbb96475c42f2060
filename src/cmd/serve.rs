//! `debtlens serve`: the PostgreSQL-wire server, and `serve --add-user NAME`, which writes a
//! user's SCRAM verifier to the users file.

use std::io::{IsTerminal, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;

use crate::config::Config;
use crate::error::{Error, Result, exit};
use crate::server::auth::{self, Users, Verifier};
use crate::server::{self, Listening, ServeOptions};

/// The memory pool of a server when --memory-limit is not given: queries beyond it spill to
/// disk or fail alone.
const DEFAULT_MEMORY: usize = 2 << 30;

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The address to listen on. Beyond loopback, users are required.
    #[arg(long, default_value = "127.0.0.1:5432", value_name = "IP:PORT")]
    pub listen: SocketAddr,

    /// The users file: one SCRAM-SHA-256 verifier per user. Default:
    /// $XDG_CONFIG_HOME/debtlens/users (~/.config/debtlens/users). DEBTLENS_SERVE_USER and
    /// DEBTLENS_SERVE_PASSWORD add one user from the environment.
    #[arg(long, env = "DEBTLENS_USERS", value_name = "FILE")]
    pub users: Option<PathBuf>,

    /// Add a user to the users file (or change its password) and exit. The password is read from
    /// a prompt, or from stdin when stdin is not a terminal.
    #[arg(long, value_name = "NAME")]
    pub add_user: Option<String>,

    /// The TLS certificate chain (PEM). A certificate or key that cannot be loaded stops the server.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// The TLS private key (PEM: PKCS#8, PKCS#1 or SEC1).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// Refuse clients that do not use TLS.
    #[arg(long)]
    pub require_tls: bool,

    /// The most clients connected at once; one more is refused with SQLSTATE 53300.
    #[arg(long, default_value_t = 64, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub max_connections: u32,

    /// The longest a statement may run, execution included (SQLSTATE 57014 past it). A client's
    /// SET statement_timeout may only shorten it.
    #[arg(long, default_value = "5min", value_name = "DURATION", value_parser = parse_timeout)]
    pub query_timeout: Duration,

    /// How long a client may take to connect and log in (PostgreSQL's authentication_timeout);
    /// a socket that has not logged in by then is closed. Until it logs in, a client does not
    /// count against --max-connections, and one address may have at most twice
    /// --max-connections (at least 64) such clients.
    #[arg(long, default_value = "10s", value_name = "DURATION", value_parser = parse_timeout)]
    pub auth_timeout: Duration,

    /// After SIGTERM or Ctrl-C, how long running queries may still finish.
    #[arg(long, default_value = "10s", value_name = "DURATION", value_parser = parse_timeout)]
    pub shutdown_grace: Duration,
}

pub async fn run(config: &Config, args: ServeArgs) -> Result<u8> {
    let users_file = args.users.clone().unwrap_or_else(auth::default_users_file);
    if let Some(name) = &args.add_user {
        return add_user(config, &users_file, name);
    }
    let users = Users::configured(&users_file)?;
    let mut engine_options = config.engine.clone();
    engine_options.memory_limit = Some(engine_options.memory_limit.unwrap_or(DEFAULT_MEMORY));
    engine_options.extension = Some(server::catalog_extension());
    let engine = config.engine_with(engine_options).await?;
    let options = ServeOptions {
        listen: args.listen,
        users,
        tls: args.tls_cert.zip(args.tls_key),
        require_tls: args.require_tls,
        max_connections: args.max_connections as usize,
        query_timeout: args.query_timeout,
        auth_timeout: args.auth_timeout,
        shutdown_grace: args.shutdown_grace,
    };
    let store = config.store.to_string();
    server::serve(engine, options, |l: Listening| {
        let auth = match l.users {
            0 => "no users: anyone on this machine may connect".to_string(),
            1 => "1 user".to_string(),
            n => format!("{n} users"),
        };
        let tls = if l.tls { "TLS" } else { "no TLS" };
        // Always printed, even with -q: scripts and tests read the port from it.
        eprintln!("debtlens: serving {store} on {} ({tls}, {auth})", l.addr);
    })
    .await?;
    Ok(exit::OK)
}

fn add_user(config: &Config, file: &Path, name: &str) -> Result<u8> {
    let password = read_password(name)?;
    let mut users = Users::load(file)?;
    let replaced = users.set(name, Verifier::new(&password))?;
    users.save(file)?;
    let what = if replaced { "changed the password of" } else { "added" };
    config.note(format_args!("{what} user `{name}` in {}", file.display()));
    Ok(exit::OK)
}

/// A password from a prompt without echo (asked twice), or the first line of stdin.
fn read_password(name: &str) -> Result<String> {
    let password = if std::io::stdin().is_terminal() {
        let prompt = |p: &str| rpassword::prompt_password(p).map_err(|e| Error::io("<terminal>", e));
        let first = prompt(&format!("password for {name}: "))?;
        if prompt("again: ")? != first {
            return Err(Error::Usage("the passwords differ; nothing changed".into()));
        }
        first
    } else {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text).map_err(|e| Error::io("<stdin>", e))?;
        let line = text.lines().next().unwrap_or("");
        line.to_string()
    };
    if password.is_empty() {
        return Err(Error::Usage("empty password; nothing changed".into()));
    }
    Ok(password)
}

fn parse_timeout(s: &str) -> std::result::Result<Duration, String> {
    match crate::time::parse_duration(&s.to_lowercase()) {
        Some(d) if !d.is_zero() => Ok(d),
        _ => Err(format!("invalid duration `{s}`: expected a number and a unit, such as 500ms, 30s, 5min or 1h")),
    }
}
