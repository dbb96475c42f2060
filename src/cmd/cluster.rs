//! `debtlens cluster scheduler` and `debtlens cluster executor`: the processes of a Ballista
//! cluster, with debtlens's functions, that `--cluster df://HOST:PORT` runs statements on.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand};

use crate::cluster::{self, ClusterUrl, ExecutorOptions, SchedulerOptions};
use crate::config::Config;
use crate::error::{Result, exit};

#[derive(Debug, Args)]
pub struct ClusterArgs {
    #[command(subcommand)]
    pub role: Role,
}

#[derive(Debug, Subcommand)]
pub enum Role {
    /// Run a scheduler: it plans the statements clients send and gives their stages to the
    /// executors.
    Scheduler(SchedulerArgs),
    /// Run an executor: it registers with a scheduler and runs the tasks it is given.
    Executor(ExecutorArgs),
}

#[derive(Debug, Args)]
pub struct SchedulerArgs {
    /// The address to listen on for clients and executors.
    #[arg(long, default_value = "127.0.0.1:50050", value_name = "IP:PORT")]
    pub bind: SocketAddr,

    /// The host name executors and clients reach this scheduler at (default: --bind's address).
    #[arg(long, value_name = "HOST")]
    pub external_host: Option<String>,

    /// How long an executor may be silent before it is taken for dead and its tasks run
    /// elsewhere.
    #[arg(long, default_value = "30s", value_name = "DURATION", value_parser = parse_duration)]
    pub executor_timeout: Duration,
}

#[derive(Debug, Args)]
pub struct ExecutorArgs {
    /// The scheduler to register with: df://HOST:PORT.
    #[arg(long, value_name = "URL", value_parser = parse_cluster)]
    pub scheduler: ClusterUrl,

    /// The address of the executor's data service (others fetch its results there).
    #[arg(long, default_value = "127.0.0.1:50051", value_name = "IP:PORT")]
    pub bind: SocketAddr,

    /// The port of its task service (default: --bind's port + 1).
    #[arg(long, value_name = "PORT")]
    pub grpc_port: Option<u16>,

    /// The host name others reach this executor at (default: --bind's address).
    #[arg(long, value_name = "HOST")]
    pub external_host: Option<String>,

    /// Tasks it runs at once (default: one per core).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub slots: Option<u16>,

    /// Where it keeps the intermediate results of stages (default: a temporary directory).
    #[arg(long, value_name = "DIR")]
    pub work_dir: Option<PathBuf>,
}

/// clap's parser of a cluster address.
pub fn parse_cluster(text: &str) -> std::result::Result<ClusterUrl, String> {
    ClusterUrl::parse(text).map_err(|e| e.to_string())
}

fn parse_duration(text: &str) -> std::result::Result<Duration, String> {
    crate::time::parse_duration(&text.to_lowercase())
        .filter(|d| d.as_secs() >= 2)
        .ok_or_else(|| format!("invalid duration `{text}`: expected at least 2s, such as 10s, 30s or 2min"))
}

pub async fn run(config: &Config, args: ClusterArgs) -> Result<u8> {
    // What Ballista logs, on stderr: warnings and errors, or what RUST_LOG asks for
    // (`RUST_LOG=info` shows each job and task).
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt().with_writer(std::io::stderr).with_ansi(false).with_env_filter(filter).try_init();
    let (what, work) = match args.role {
        Role::Scheduler(a) => {
            let options =
                SchedulerOptions { bind: a.bind, external_host: a.external_host, executor_timeout: a.executor_timeout };
            (format!("scheduler listening on {}", a.bind), tokio::spawn(cluster::run_scheduler(options)))
        }
        Role::Executor(a) => {
            let grpc_port = match a.grpc_port {
                Some(port) => port,
                None => a.bind.port().checked_add(1).ok_or_else(|| {
                    crate::Error::Usage(format!(
                        "--bind {}: give --grpc-port, the port after it does not exist",
                        a.bind
                    ))
                })?,
            };
            let what = format!("executor on {} (tasks on port {grpc_port}), scheduler {}", a.bind, a.scheduler);
            let options = ExecutorOptions {
                scheduler: a.scheduler,
                bind: a.bind,
                grpc_port,
                external_host: a.external_host,
                slots: a.slots.map(usize::from),
                work_dir: a.work_dir,
                memory_limit: config.engine.memory_limit,
            };
            (what, tokio::spawn(cluster::run_executor(options)))
        }
    };
    if !config.quiet {
        eprintln!("debtlens cluster {what}");
    }
    tokio::select! {
        ended = work => match ended {
            Ok(result) => result.map(|()| exit::OK),
            Err(e) => Err(crate::Error::Internal(format!("the cluster process stopped: {e}"))),
        },
        () = stopped() => Ok(exit::OK),
    }
}

/// Resolves at SIGINT or SIGTERM: a cluster process stops at once (a running query fails over
/// to the other executors, or fails with the scheduler).
async fn stopped() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let (Ok(mut int), Ok(mut term)) = (signal(SignalKind::interrupt()), signal(SignalKind::terminate())) {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
