//! `debtlens export --dialect spark` on a real Spark (issue 23): a standalone master and two
//! workers (pyspark's, on loopback) run the exported script over a store's snapshot files, and
//! every exported view equals debtlens's CSV (floats to 1e-9 relative, the rest exactly).

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::util::{Env, free_port};

/// pyspark's folder, which holds Spark's launch scripts and jars.
fn spark_home() -> PathBuf {
    let out = Command::new("python3")
        .args(["-c", "import os, pyspark; print(os.path.dirname(pyspark.__file__))"])
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "pyspark is not installed (scripts/test installs it): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
}

/// Spark's master and workers, killed when dropped.
struct SparkCluster {
    url: String,
    processes: Vec<Child>,
}

impl SparkCluster {
    fn start(env: &Env, workers: usize) -> Self {
        let home = spark_home();
        let class = |class: &str, args: &[String], log: &str| {
            Command::new(home.join("bin/spark-class"))
                .arg(class)
                .args(args)
                .env("SPARK_HOME", &home)
                .env("SPARK_LOCAL_IP", "127.0.0.1")
                .env("SPARK_LOG_DIR", env.path("spark-logs"))
                // Without its REST server, which would take the fixed port 6066.
                .env("SPARK_MASTER_OPTS", "-Dspark.master.rest.enabled=false")
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(env.path(log)).unwrap())
                .spawn()
                .expect("spark-class")
        };
        let port = free_port();
        let mut cluster = SparkCluster { url: format!("spark://127.0.0.1:{port}"), processes: vec![] };
        let master = ["--host", "127.0.0.1", "--port", &port.to_string(), "--webui-port", &free_port().to_string()];
        let master: Vec<String> = master.iter().map(|s| s.to_string()).collect();
        cluster.processes.push(class("org.apache.spark.deploy.master.Master", &master, "master.log"));
        let start = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(start.elapsed() < Duration::from_secs(90), "Spark's master did not listen in 90 s");
            std::thread::sleep(Duration::from_millis(200));
        }
        for n in 0..workers {
            let work = env.path(&format!("spark-work-{n}"));
            let args = [
                "--host",
                "127.0.0.1",
                "--cores",
                "1",
                "--memory",
                "1g",
                "--webui-port",
                &free_port().to_string(),
                "--work-dir",
                work.to_str().unwrap(),
                &cluster.url,
            ];
            let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
            cluster.processes.push(class("org.apache.spark.deploy.worker.Worker", &args, &format!("worker{n}.log")));
        }
        cluster
    }
}

impl Drop for SparkCluster {
    fn drop(&mut self) {
        for child in &mut self.processes {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[test]
fn the_exported_views_run_on_a_spark_cluster_with_debtlens_answers() {
    let env = Env::new();
    let store = env.sample_store("store", 3_000, &["--seed", "5"]);
    let store = store.to_str().unwrap();
    let script = env.path("views.sql");
    env.run(&[
        "-q",
        "--data",
        store,
        "--as-of",
        "2026-10-31",
        "export",
        "--dialect",
        "spark",
        "--tables",
        "snapshot",
        "--output",
        script.to_str().unwrap(),
    ])
    .success();
    let text = std::fs::read_to_string(&script).unwrap();
    assert!(text.contains("--   system_tax: calls velocity_tax()"), "{text}");

    let expected = env.path("expected");
    std::fs::create_dir_all(&expected).unwrap();
    let views = debtlens::export::exported_views();
    for view in &views {
        let out = expected.join(format!("{view}.csv"));
        env.run(&["-q", "--data", store, "--as-of", "2026-10-31", "view", view, "--output", out.to_str().unwrap()])
            .success();
    }

    let spark = SparkCluster::start(&env, 2);
    let checker = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/spark/check_export.py");
    let out = Command::new("python3")
        .arg(checker)
        .arg(&script)
        .arg(&spark.url)
        .arg(&expected)
        .args(&views)
        .env("SPARK_HOME", spark_home())
        .env("SPARK_LOCAL_IP", "127.0.0.1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{}", stderr.lines().rev().take(40).collect::<Vec<_>>().join("\n"));
    for view in &views {
        assert!(stdout.contains(&format!("{view}: ")) && !stdout.contains(&format!("{view}: a row")), "{stdout}");
    }
    assert_eq!(stdout.matches("rows equal").count(), views.len(), "{stdout}");
}
