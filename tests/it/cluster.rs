//! debtlens on a Ballista cluster (issue 23): a scheduler and two executors, each its own
//! `debtlens cluster` process on loopback, run every view with `--cluster` and give the local
//! engine's bytes; an executor killed during a query leaves the other to finish it.

use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::determinism::{views_csv_run, views_csv_with};
use crate::s3::{Weed, s3_cmd, s3_run};
use crate::server::Server;
use crate::util::{Env, Run, free_port};

/// Waits until something listens on `port`.
fn wait_for_port(port: u16, what: &str, child: &mut Child) {
    let start = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("the {what} exited ({status}) before listening on {port}");
        }
        assert!(start.elapsed() < Duration::from_secs(60), "the {what} did not listen on {port} in 60 s");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A scheduler and executors, killed when dropped.
struct Cluster {
    url: String,
    scheduler: Child,
    executors: Vec<Child>,
}

impl Cluster {
    fn start(env: &Env, executors: usize) -> Self {
        Self::start_with(env, executors, || env.cmd())
    }

    /// A cluster whose processes start as `cmd` makes them (an environment of their own).
    fn start_with(env: &Env, executors: usize, cmd: impl Fn() -> Command) -> Self {
        let port = free_port();
        let url = format!("df://127.0.0.1:{port}");
        let log = |name: &str| std::fs::File::create(env.path(&format!("{name}.log"))).unwrap();
        let mut scheduler = cmd()
            .args(["cluster", "scheduler", "--bind", &format!("127.0.0.1:{port}"), "--executor-timeout", "4s"])
            // Each job the scheduler takes is logged at info.
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log("scheduler"))
            .spawn()
            .unwrap();
        wait_for_port(port, "scheduler", &mut scheduler);
        let mut cluster = Cluster { url, scheduler, executors: vec![] };
        for n in 0..executors {
            let (data, tasks) = (free_port(), free_port());
            let mut executor = cmd()
                .args(["cluster", "executor", "--scheduler", &cluster.url, "--bind", &format!("127.0.0.1:{data}")])
                .args(["--grpc-port", &tasks.to_string(), "--slots", "2"])
                .stdout(Stdio::null())
                .stderr(log(&format!("executor{n}")))
                .spawn()
                .unwrap();
            wait_for_port(data, "executor", &mut executor);
            cluster.executors.push(executor);
        }
        cluster
    }

    /// How many jobs the scheduler has taken.
    fn jobs(&self, env: &Env) -> usize {
        std::fs::read_to_string(env.path("scheduler.log")).unwrap().matches("Job submitted").count()
    }

    /// How many of its jobs have ended, well or not.
    fn ended(&self, env: &Env) -> usize {
        let log = std::fs::read_to_string(env.path("scheduler.log")).unwrap();
        log.lines()
            .filter(|l| l.contains("Job finished successfully") || (l.contains("Job ") && l.contains(" failed")))
            .count()
    }

    /// Runs debtlens with `--cluster` and `args`.
    fn run(&self, env: &Env, args: &[&str]) -> Run {
        let mut all = vec!["--cluster", &self.url];
        all.extend_from_slice(args);
        env.run(&all)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for child in self.executors.iter_mut().chain(std::iter::once(&mut self.scheduler)) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn store_arg(store: &Path) -> &str {
    store.to_str().unwrap()
}

#[test]
fn every_view_on_a_cluster_gives_the_local_bytes() {
    let env = Env::new();
    let store = env.sample_store("store", 20_000, &["--seed", "11"]);
    let cluster = Cluster::start(&env, 2);

    let local = views_csv_with(&env, store_arg(&store), &[]);
    let before = cluster.jobs(&env);
    let remote = views_csv_with(&env, store_arg(&store), &["--cluster", &cluster.url]);
    // Every view that reads a table went to the scheduler as a job of its own; analysis_window
    // reads none (its three numbers are the window's) and is answered in the client.
    assert_eq!(cluster.jobs(&env) - before, debtlens::views::VIEWS.len() - 1);
    for (l, r) in local.split("== ").zip(remote.split("== ")) {
        assert_eq!(l, r, "a view differs on the cluster");
    }
    assert_eq!(local, remote);

    // A statement over tables held in this process (the catalog) runs here, beside the cluster.
    let before = cluster.jobs(&env);
    let tables = cluster.run(
        &env,
        &[
            "-q",
            "--data",
            store_arg(&store),
            "--format",
            "csv",
            "query",
            "SELECT count(*) AS n FROM information_schema.tables WHERE table_name = 'features'",
        ],
    );
    assert_eq!(tables.success().stdout(), "n\n1\n");
    assert_eq!(cluster.jobs(&env), before);

    // The commands built on the views and the engine's functions: the same text, planned and
    // run through the scheduler.
    for args in
        [&["estimate", "--weeks", "3", "--systems", "auth-service,billing-ledger"][..], &["plan"][..], &["report"][..]]
    {
        let common = ["-q", "--data", store_arg(&store), "--as-of", "2026-10-31"];
        let local = env.run(&[&common[..], args].concat());
        let before = cluster.jobs(&env);
        let remote = cluster.run(&env, &[&common[..], args].concat());
        assert_eq!(remote.success().stdout(), local.success().stdout(), "{args:?}");
        assert!(cluster.jobs(&env) > before, "{args:?} sent no job to the scheduler");
    }

    // The server on the cluster: psql browses the catalog (in the server) and reads a view (on
    // the cluster), with the CLI's rows.
    let server = Server::start(&env, &store, &["--cluster", &cluster.url, "--as-of", "2026-10-31"], &[]);
    let listed = server.psql(&env, &["-A", "-t", "-c", "\\dv"]);
    assert!(listed.success().stdout().contains("public|system_health|view"), "{}", listed.stdout());
    let before = cluster.jobs(&env);
    let sql = "SELECT system, features, slowdown_ratio FROM slowdown_by_system";
    let wire = server.psql(&env, &["--csv", "-c", sql]);
    let cli = env.run(&["-q", "--data", store_arg(&store), "--as-of", "2026-10-31", "--format", "csv", "query", sql]);
    assert_eq!(wire.success().stdout(), cli.success().stdout());
    assert_eq!(cluster.jobs(&env), before + 1);
}

#[test]
fn a_store_on_s3_gives_the_local_bytes_on_a_cluster() {
    let env = Env::new();
    let server = Weed::start();
    server.create_bucket("lake");
    let endpoint = server.endpoint();
    let store = "s3://lake/debt";
    s3_run(&env, &endpoint, &["-q", "sample", "--features", "3000", "--seed", "5", "--out", store]).success();
    // The scheduler lists the bucket and the executors read it with their own AWS environment;
    // no credential travels in a plan.
    let cluster = Cluster::start_with(&env, 2, || s3_cmd(&env, &endpoint, &[]));
    let local = views_csv_run(&env, store, &[], Some(&endpoint));
    let before = cluster.jobs(&env);
    let remote = views_csv_run(&env, store, &["--cluster", &cluster.url], Some(&endpoint));
    assert_eq!(cluster.jobs(&env) - before, debtlens::views::VIEWS.len() - 1);
    for (l, r) in local.split("== ").zip(remote.split("== ")) {
        assert_eq!(l, r, "a view differs on the cluster");
    }

    // A cluster whose processes have no AWS settings cannot read the bucket, and says so.
    let blind = Cluster::start_with(&env, 1, || {
        let mut cmd = env.cmd();
        for var in ["AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE"] {
            cmd.env_remove(var);
        }
        cmd.env("AWS_EC2_METADATA_DISABLED", "true");
        cmd
    });
    let run = s3_run(&env, &endpoint, &["--cluster", &blind.url, "--data", store, "view", "slowdown_by_system"]);
    run.fails_with(1);
    assert!(run.stderr.contains("the cluster's job"), "{}", run.stderr);
    assert!(run.stderr.contains("an AWS environment of their own"), "{}", run.stderr);
}

#[test]
fn a_cluster_refuses_stores_its_executors_cannot_read() {
    let env = Env::new();
    // No scheduler is needed to refuse: the check comes before any connection.
    let sample = env.run(&["--cluster", "df://127.0.0.1:1", "view", "slowdown_by_system"]);
    sample.fails_with(2);
    assert!(
        sample.stderr.contains(
            "the built-in sample lives in this process only; give a store on a disk every executor reads with --data DIR"
        ),
        "{}",
        sample.stderr
    );
    let bad = env.run(&["--cluster", "http://127.0.0.1:1", "view", "slowdown_by_system"]);
    bad.fails_with(2);
    assert!(bad.stderr.contains("the scheme is `http`, not `df`"), "{}", bad.stderr);
}

#[test]
fn a_query_survives_an_executor_killed_under_it() {
    let env = Env::new();
    let store = env.sample_store("store", 20_000, &["--seed", "3"]);
    let mut cluster = Cluster::start(&env, 2);
    // A self-join big enough to still be running when the executor dies.
    let sql = "SELECT a.team, count(*) AS pairs, sum(a.actual_weeks + b.actual_weeks) AS weeks \
               FROM features a JOIN features b ON a.team = b.team AND a.feature_id < b.feature_id \
               GROUP BY a.team ORDER BY a.team";
    let local = env.run(&["-q", "--data", store_arg(&store), "--format", "csv", "query", sql]);
    let expected = local.success().stdout();

    let query = env
        .cmd()
        .args(["-q", "--cluster", &cluster.url, "--data", store_arg(&store), "--format", "csv", "query", sql])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The executor dies once the job has been running a while, and before it ends.
    let submitted = Instant::now();
    while cluster.jobs(&env) == 0 {
        assert!(submitted.elapsed() < Duration::from_secs(60), "the query never reached the scheduler");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(700));
    assert_eq!(cluster.ended(&env), 0, "the query ended before the executor was killed: the test shows nothing");
    let mut victim = cluster.executors.remove(1);
    victim.kill().unwrap();
    victim.wait().unwrap();
    let started = Instant::now();
    let out = query.wait_with_output().unwrap();
    let run = Run::from(out);
    // Ballista runs the dead executor's tasks again on the other: the same answer. Never a
    // different one, and never a hang.
    assert!(started.elapsed() < Duration::from_secs(120));
    assert_eq!(run.success().stdout(), expected);
}
