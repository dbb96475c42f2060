//! debtlens on a cluster: Apache Ballista's scheduler and executors, run from the debtlens
//! binary with debtlens's functions registered on both sides, and the client side of an engine
//! opened with `--cluster df://HOST:PORT`.
//!
//! The client plans each statement as the local engine does (the analysis window is folded into
//! literals while planning), then hands the optimized logical plan to the scheduler, which plans
//! it physically, cuts it into stages and sends the stages to the executors. A plan crosses the
//! network as protobuf, so every table it reads must be one the executors can open themselves:
//! a Parquet listing table. A Delta table is therefore read on the cluster as the listing of the
//! data files its snapshot holds (`Store::open_tables` with `Reading::Files`). A statement that
//! reads anything else (the server's catalog tables, a table held in memory) runs in the client,
//! as it would without a cluster.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use ballista_core::extension::{SessionConfigExt, SessionStateExt};
use ballista_core::planner::BallistaQueryPlanner;
use ballista_core::registry::BallistaFunctionRegistry;
use ballista_executor::executor_process::{ExecutorProcessConfig, start_executor_process};
use ballista_scheduler::cluster::BallistaCluster;
use ballista_scheduler::config::SchedulerConfig;
use ballista_scheduler::scheduler_process::start_server;
use datafusion::catalog::Session;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::datasource::listing::ListingTable;
use datafusion::datasource::source_as_provider;
use datafusion::error::Result as DfResult;
use datafusion::execution::SessionStateBuilder;
use datafusion::execution::context::QueryPlanner;
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use datafusion::execution::session_state::SessionState;
use datafusion::logical_expr::LogicalPlan;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_planner::{DefaultPhysicalPlanner, PhysicalPlanner};
use datafusion::prelude::{SessionConfig, SessionContext};
use datafusion_proto::protobuf::LogicalPlanNode;

use crate::error::{Error, Result};
use crate::store::ObjectStores;

/// The scheme of a cluster's address, as Ballista's clients write it.
pub const SCHEME: &str = "df";

/// The scheduler's port when an address gives none (Ballista's).
pub const DEFAULT_PORT: u16 = 50050;

/// The environment variable `--cluster` is read from.
pub const CLUSTER_ENV: &str = "DEBTLENS_CLUSTER";

/// A scheduler's address, `df://HOST[:PORT]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterUrl {
    pub host: String,
    pub port: u16,
}

impl ClusterUrl {
    pub fn parse(text: &str) -> Result<Self> {
        let bad = |why: &str| {
            Error::Usage(format!(
                "invalid cluster address `{text}`: {why}; expected {SCHEME}://HOST:PORT, the address of a `debtlens \
                 cluster scheduler`"
            ))
        };
        let url = url::Url::parse(text).map_err(|e| bad(&e.to_string()))?;
        if url.scheme() != SCHEME {
            return Err(bad(&format!("the scheme is `{}`, not `{SCHEME}`", url.scheme())));
        }
        let host = url.host_str().filter(|h| !h.is_empty()).ok_or_else(|| bad("no host"))?;
        if !(url.path().is_empty() || url.path() == "/") || url.query().is_some() {
            return Err(bad("a cluster address has no path or query"));
        }
        Ok(Self { host: host.to_string(), port: url.port().unwrap_or(DEFAULT_PORT) })
    }

    /// The scheduler's gRPC endpoint.
    fn endpoint(&self) -> String {
        format!("http://{}:{}", self.host, self.port)
    }
}

impl std::fmt::Display for ClusterUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{SCHEME}://{}:{}", self.host, self.port)
    }
}

/// The context of an engine that runs its statements on the cluster at `url`: DataFusion's
/// session upgraded for Ballista, with a planner that sends plans reading only files to the
/// scheduler and runs any other in this process. debtlens's functions are registered on it
/// afterwards, as on a local context.
pub fn client_context(url: &ClusterUrl, config: SessionConfig, runtime: Arc<RuntimeEnv>) -> Result<SessionContext> {
    // Ballista 55's adaptive planner waits for ever on a plan whose stages it decides to cancel
    // ("there are stages to be cancelled but its not implemented": deployment_incidents); the
    // static distributed planner runs every view.
    let config = config.upgrade_for_ballista().with_ballista_adaptive_query_planner(false);
    let remote = BallistaQueryPlanner::<LogicalPlanNode>::new(url.endpoint(), config.ballista_config());
    let config = config.with_ballista_query_planner(Arc::new(ClusterPlanner { remote }));
    let state = SessionStateBuilder::new()
        .with_default_features()
        .with_config(config)
        .with_runtime_env(runtime)
        .build()
        .upgrade_for_ballista(url.endpoint())?;
    Ok(SessionContext::new_with_state(state))
}

/// Sends a plan to the cluster when every table it reads is a listing of files, and plans it
/// here otherwise.
#[derive(Debug)]
struct ClusterPlanner {
    remote: BallistaQueryPlanner<LogicalPlanNode>,
}

#[async_trait::async_trait]
impl QueryPlanner for ClusterPlanner {
    async fn create_physical_plan(&self, plan: &LogicalPlan, state: &dyn Session) -> DfResult<Arc<dyn ExecutionPlan>> {
        if reads_only_files(plan)? {
            self.remote.create_physical_plan(plan, state).await
        } else {
            DefaultPhysicalPlanner::default().create_physical_plan(plan, state).await
        }
    }
}

/// Whether `plan` reads at least one table, and every table it reads (subqueries included) is
/// a listing of Parquet files: the only tables an executor can open from a plan's description.
pub fn reads_only_files(plan: &LogicalPlan) -> DfResult<bool> {
    let (mut files, mut other) = (0usize, 0usize);
    plan.apply_with_subqueries(|node| {
        if let LogicalPlan::TableScan(scan) = node {
            let listing =
                source_as_provider(&scan.source).ok().is_some_and(|p| p.downcast_ref::<ListingTable>().is_some());
            if listing { files += 1 } else { other += 1 }
        }
        Ok(TreeNodeRecursion::Continue)
    })?;
    Ok(files > 0 && other == 0)
}

/// The configuration a scheduler and an executor start each session from: Ballista's, with
/// debtlens's own settings (UTC, the views' ORDER BY kept), so that a stage computes what the
/// client planned (a time without a zone read as UTC, as in the client).
fn cluster_config() -> SessionConfig {
    crate::engine::with_debtlens_settings(SessionConfig::new_with_ballista())
}

/// A session of a scheduler: DataFusion's, with debtlens's functions over the defaults, so that
/// the plans clients send resolve to the same functions they were planned with.
/// `objects` are the scheduler's: it lists the files of each scan it plans, on disk or in a
/// bucket, and keeps each bucket's client from one session to the next.
fn scheduler_session(config: SessionConfig, objects: Arc<ObjectStores>) -> DfResult<SessionState> {
    let state = ballista_core::utils::default_session_builder(config)?;
    let runtime = RuntimeEnvBuilder::new().with_object_store_registry(objects).build()?;
    let state = SessionStateBuilder::new_from_existing(state).with_runtime_env(Arc::new(runtime)).build();
    let ctx = SessionContext::new_with_state(state);
    for f in crate::functions::scalar_functions() {
        ctx.register_udf(f);
    }
    for f in crate::functions::aggregate_functions() {
        ctx.register_udaf(f);
    }
    Ok(ctx.state())
}

/// The functions an executor resolves the stages it runs with: Ballista's defaults, every
/// function of DataFusion's default session (Ballista's leave out the nested ones, such as
/// `array_to_string`), and debtlens's over them (the exact `sum` and `avg` replace DataFusion's
/// of the same names).
fn executor_functions() -> BallistaFunctionRegistry {
    use datafusion::execution::SessionStateDefaults;
    let mut registry = BallistaFunctionRegistry::default();
    for f in SessionStateDefaults::default_scalar_functions() {
        registry.scalar_functions.insert(f.name().to_string(), f);
    }
    for f in SessionStateDefaults::default_aggregate_functions() {
        registry.aggregate_functions.insert(f.name().to_string(), f);
    }
    for f in SessionStateDefaults::default_window_functions() {
        registry.window_functions.insert(f.name().to_string(), f);
    }
    for f in crate::functions::scalar_functions() {
        registry.scalar_functions.insert(f.name().to_string(), Arc::new(f));
    }
    for f in crate::functions::aggregate_functions() {
        registry.aggregate_functions.insert(f.name().to_string(), Arc::new(f));
    }
    registry
}

/// How a scheduler runs.
#[derive(Debug, Clone)]
pub struct SchedulerOptions {
    pub bind: SocketAddr,
    /// The host executors and clients reach the scheduler at (default: the bound address).
    pub external_host: Option<String>,
    /// How long an executor may go without a heartbeat before its tasks are given to others.
    pub executor_timeout: Duration,
}

/// Runs a scheduler until the process is stopped.
pub async fn run_scheduler(options: SchedulerOptions) -> Result<()> {
    let objects = Arc::new(ObjectStores::default());
    let mut config = SchedulerConfig::default()
        .with_hostname(options.external_host.clone().unwrap_or_else(|| options.bind.ip().to_string()))
        .with_port(options.bind.port())
        .with_override_session_builder(Arc::new(move |config| scheduler_session(config, Arc::clone(&objects))))
        .with_override_config_producer(Arc::new(cluster_config));
    config.bind_host = options.bind.ip().to_string();
    config.executor_timeout_seconds = options.executor_timeout.as_secs().max(2);
    // Ballista checks for dead executors every 15 s by default; with a shorter timeout, check
    // at least twice within it.
    config.expire_dead_executor_interval_seconds = (config.executor_timeout_seconds / 2).clamp(1, 15);
    let cluster = BallistaCluster::new_from_config(&config).await.map_err(ballista_error)?;
    start_server(cluster, options.bind, Arc::new(config)).await.map_err(ballista_error)
}

/// How an executor runs.
#[derive(Debug, Clone)]
pub struct ExecutorOptions {
    pub scheduler: ClusterUrl,
    /// The address of its Arrow Flight service (other executors and clients fetch results
    /// from it); its gRPC service listens on `grpc_port`.
    pub bind: SocketAddr,
    pub grpc_port: u16,
    /// The host others reach it at (default: the bound address).
    pub external_host: Option<String>,
    /// Tasks it runs at once (default: one per core).
    pub slots: Option<usize>,
    /// Where it keeps shuffle files (default: a temporary directory).
    pub work_dir: Option<std::path::PathBuf>,
    /// The memory its tasks share, beyond which they spill.
    pub memory_limit: Option<usize>,
}

/// Runs an executor until the process is stopped.
pub async fn run_executor(options: ExecutorOptions) -> Result<()> {
    // Shuffle files go to the given directory, or to a temporary one that lives as long as the
    // executor (Ballista's own default drops its temporary directory at once).
    let (work_dir, temporary) = match &options.work_dir {
        Some(dir) => (dir.clone(), None),
        None => {
            let dir = tempfile::TempDir::new().map_err(|e| Error::io(std::env::temp_dir(), e))?;
            (dir.path().to_path_buf(), Some(dir))
        }
    };
    // Tasks read their files on disk or in a bucket, with this process's AWS environment.
    let objects = Arc::new(ObjectStores::default());
    let spill = work_dir.clone();
    let runtime: ballista_core::RuntimeProducer = Arc::new(move |_| {
        let runtime =
            RuntimeEnvBuilder::new().with_temp_file_path(&spill).with_object_store_registry(objects.clone()).build()?;
        Ok(Arc::new(runtime))
    });
    let mut config = ExecutorProcessConfig {
        bind_host: options.bind.ip().to_string(),
        external_host: options.external_host.clone().or_else(|| Some(options.bind.ip().to_string())),
        port: options.bind.port(),
        grpc_port: options.grpc_port,
        scheduler_host: options.scheduler.host.clone(),
        scheduler_port: options.scheduler.port,
        // Wait for a scheduler started at the same time.
        scheduler_connect_timeout_seconds: 30,
        work_dir: Some(work_dir.display().to_string()),
        override_runtime_producer: Some(runtime),
        memory_pool_size: options.memory_limit.map(|b| b as u64),
        // Heartbeats well within any scheduler's executor timeout.
        executor_heartbeat_interval_seconds: 1,
        override_function_registry: Some(Arc::new(executor_functions())),
        override_config_producer: Some(Arc::new(cluster_config)),
        print_thread_info: false,
        ..ExecutorProcessConfig::default()
    };
    if let Some(slots) = options.slots {
        config.vcores = slots;
    }
    let ended = start_executor_process(Arc::new(config)).await.map_err(ballista_error);
    drop(temporary);
    ended
}

fn ballista_error(e: ballista_core::error::BallistaError) -> Error {
    Error::Cluster(e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_addresses_are_parsed_and_bad_ones_say_why() {
        assert_eq!(
            ClusterUrl::parse("df://10.0.0.5:50050").unwrap(),
            ClusterUrl { host: "10.0.0.5".into(), port: 50050 }
        );
        assert_eq!(ClusterUrl::parse("df://scheduler").unwrap().to_string(), "df://scheduler:50050");
        for (bad, why) in [
            ("http://h:1", "the scheme is `http`"),
            ("df://h:1/x", "no path or query"),
            ("scheduler:50050", "expected df://HOST:PORT"),
        ] {
            let message = ClusterUrl::parse(bad).unwrap_err().to_string();
            assert!(message.contains(why), "{bad}: {message}");
        }
    }
}
