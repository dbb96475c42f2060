//! `debtlens batch`: the jobs of a jobs file, as cron runs them. Outputs appear whole or not at
//! all, a failed job is named and the others still run, re-runs are byte-identical, mistakes in
//! the jobs file are reported with their position before anything runs.

use std::fs;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use datafusion::arrow::datatypes::{DataType, TimeUnit};
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde_json::Value;

use crate::util::{Env, snapshot};

const JOBS: &str = r#"
as_of = "2026-10-31"

[[job]]
name = "slowdown"
view = "slowdown_by_system"
path = "out/slowdown.csv"

[[job]]
name = "broken"
sql = "SELECT no_such_column FROM features"
path = "out/broken.csv"

[[job]]
name = "health"
view = "system_health"
format = "json"
path = "out/health.json"

[[job]]
name = "reasons"
view = "delay_by_reason"
path = "out/{as_of}/reasons.md"
window_days = 30
"#;

fn manifest(path: &Path) -> Value {
    serde_json::from_slice(&fs::read(path).expect("manifest")).expect("manifest is JSON")
}

#[test]
fn a_failed_job_is_named_the_others_are_written_and_the_exit_code_is_1() {
    let env = Env::new();
    fs::write(env.path("jobs.toml"), JOBS).unwrap();
    fs::create_dir_all(env.path("out")).unwrap();
    fs::write(env.path("out/broken.csv"), "yesterday's good output\n").unwrap();

    let run = env.run(&["batch", "jobs.toml"]);
    run.fails_with(1);
    assert!(run.stderr.contains("FAILED  broken"), "{}", run.stderr);
    assert!(run.stderr.contains("1 of 4 jobs failed: broken"), "{}", run.stderr);
    assert!(run.stderr.contains("no_such_column"), "{}", run.stderr);

    // The good outputs are complete; the failed job left yesterday's file as it was.
    let slowdown = fs::read_to_string(env.path("out/slowdown.csv")).unwrap();
    assert!(slowdown.starts_with("system,features,"), "{slowdown}");
    assert_eq!(slowdown.lines().count(), 15, "a header and 14 systems");
    let health: Value = serde_json::from_slice(&fs::read(env.path("out/health.json")).unwrap()).unwrap();
    assert_eq!(health.as_array().unwrap().len(), 14);
    assert!(fs::read_to_string(env.path("out/2026-10-31/reasons.md")).unwrap().starts_with("| reason |"));
    assert_eq!(fs::read_to_string(env.path("out/broken.csv")).unwrap(), "yesterday's good output\n");

    let m = manifest(&env.path("batch-manifest.json"));
    assert_eq!(m["status"], "failed");
    assert_eq!(m["failed"], serde_json::json!(["broken"]));
    assert_eq!(m["debtlens_version"], env!("CARGO_PKG_VERSION"));
    assert!(m["tables"].get("features").is_some());
    let jobs = m["jobs"].as_array().unwrap();
    assert_eq!(jobs.len(), 4);
    let slowdown_job = &jobs[0];
    assert_eq!(slowdown_job["status"], "ok");
    assert_eq!(slowdown_job["rows"], 14);
    assert_eq!(slowdown_job["bytes"], slowdown.len());
    assert_eq!(slowdown_job["window"]["as_of"], "2026-10-31T23:59:59Z");
    assert_eq!(slowdown_job["window"]["days"], 90);
    assert_eq!(slowdown_job["path"], "out/slowdown.csv");
    assert_eq!(jobs[1]["status"], "failed");
    assert!(jobs[1]["error"].as_str().unwrap().contains("no_such_column"));
    assert_eq!(jobs[1]["rows"], Value::Null);
    assert_eq!(jobs[3]["window"]["days"], 30, "a job's own window_days wins");
    assert_eq!(jobs[3]["path"], "out/2026-10-31/reasons.md");
}

#[test]
fn a_rerun_over_the_same_store_is_byte_identical() {
    let env = Env::new();
    let jobs = JOBS.replace(
        "SELECT no_such_column FROM features",
        "SELECT team, count(*) AS n FROM features GROUP BY team ORDER BY team",
    );
    fs::write(env.path("jobs.toml"), jobs).unwrap();
    let store = env.sample_store("store", 300, &[]);
    let store = store.to_str().unwrap();
    env.run(&["--data", store, "batch", "jobs.toml"]).success();
    let first: Vec<(String, Vec<u8>)> =
        ["out/slowdown.csv", "out/broken.csv", "out/health.json", "out/2026-10-31/reasons.md"]
            .iter()
            .map(|p| (p.to_string(), fs::read(env.path(p)).unwrap()))
            .collect();
    env.run(&["--data", store, "batch", "jobs.toml"]).success();
    for (path, bytes) in first {
        assert_eq!(fs::read(env.path(&path)).unwrap(), bytes, "{path} changed on a re-run");
    }
    let m = manifest(&env.path("batch-manifest.json"));
    assert_eq!(m["status"], "ok");
    assert!(m["tables"]["features"].is_u64(), "a Delta store records its table versions: {m}");
}

#[test]
fn a_killed_run_never_leaves_a_partial_file_at_an_output_path() {
    let env = Env::new();
    // One job large enough to be caught while it writes.
    fs::write(
        env.path("jobs.toml"),
        "[[job]]\nname = \"big\"\nsql = \"SELECT value, repeat('x', 40) AS pad FROM generate_series(1, 4000000)\"\npath = \"big.csv\"\n",
    )
    .unwrap();
    for previous in [Some("the previous good file\n"), None] {
        match previous {
            Some(text) => fs::write(env.path("big.csv"), text).unwrap(),
            None => {
                let _ = fs::remove_file(env.path("big.csv"));
            }
        }
        let mut child = env.cmd().args(["batch", "jobs.toml"]).stderr(Stdio::null()).spawn().unwrap();
        // Wait until the output's temporary file exists (the write has begun), checking the
        // path all along, then kill the process in the middle of the write.
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut caught_writing = false;
        while Instant::now() < deadline {
            let writing = fs::read_dir(env.dir.path())
                .unwrap()
                .any(|e| e.unwrap().file_name().to_string_lossy().starts_with(".big.csv."));
            assert_eq!(fs::read_to_string(env.path("big.csv")).ok().as_deref(), previous);
            if writing {
                caught_writing = true;
                break;
            }
            if child.try_wait().unwrap().is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        assert!(caught_writing, "the run ended before its output was being written");
        std::thread::sleep(Duration::from_millis(50));
        child.kill().unwrap();
        child.wait().unwrap();
        assert_eq!(
            fs::read_to_string(env.path("big.csv")).ok().as_deref(),
            previous,
            "after a kill the path holds the previous file or nothing"
        );
        assert!(!env.path("batch-manifest.json").exists(), "no manifest for a run that did not finish");
    }
}

#[test]
fn mistakes_in_the_jobs_file_exit_2_with_their_position_and_run_nothing() {
    let env = Env::new();
    let cases = [
        ("[[job]\nname = \"a\"\n", "jobs.toml:1:7: unclosed array table"),
        (
            "[[job]]\nname = \"a\"\nview = \"slowdown_by_system\"\npath = \"a.csv\"\nevery = \"day\"\n",
            "jobs.toml:5:1: unknown field `every`",
        ),
        ("[[job]]\nname = \"a\"\nview = \"slowdown_by_system\"\n", "jobs.toml:1:1: job `a`: give the output's `path`"),
        (
            "[[job]]\nname = \"a\"\nview = \"slowdown_by_systm\"\npath = \"a.csv\"\n",
            "jobs.toml:3:8: job `a`: unknown view `slowdown_by_systm`; did you mean `slowdown_by_system`",
        ),
    ];
    for (text, expected) in cases {
        fs::write(env.path("jobs.toml"), text).unwrap();
        let run = env.run(&["batch", "jobs.toml"]);
        run.fails_with(2);
        assert!(run.stderr.contains(expected), "expected `{expected}` in:\n{}", run.stderr);
        assert!(!env.path("a.csv").exists());
        assert!(!env.path("batch-manifest.json").exists());
    }
    env.run(&["batch", "missing.toml"]).fails_with(2);
}

#[test]
fn dry_run_plans_every_query_and_writes_nothing() {
    let env = Env::new();
    fs::write(env.path("jobs.toml"), JOBS).unwrap();
    let run = env.run(&["batch", "--dry-run", "jobs.toml"]);
    run.fails_with(2);
    assert!(run.stderr.contains("jobs.toml:11:7: job `broken`"), "{}", run.stderr);
    assert!(run.stderr.contains("no_such_column"), "{}", run.stderr);

    fs::write(env.path("jobs.toml"), JOBS.replace("no_such_column", "feature_id")).unwrap();
    let run = env.run(&["batch", "--dry-run", "jobs.toml"]);
    run.success();
    assert!(run.stderr.contains("4 jobs checked"), "{}", run.stderr);
    assert!(snapshot(env.dir.path()).iter().all(|(p, _)| p.ends_with("jobs.toml")), "a dry run writes nothing");
}

#[test]
fn parquet_outputs_keep_the_real_types() {
    let env = Env::new();
    fs::write(
        env.path("jobs.toml"),
        "as_of = \"2026-10-31\"\n\
         [[job]]\nname = \"trend\"\nview = \"velocity_trend\"\npath = \"trend.parquet\"\n\
         [[job]]\nname = \"window\"\nview = \"analysis_window\"\npath = \"window.arrow\"\n",
    )
    .unwrap();
    env.run(&["batch", "jobs.toml"]).success();
    let file = fs::File::open(env.path("trend.parquet")).unwrap();
    let reader = ParquetRecordBatchReaderBuilder::try_new(file).unwrap();
    let schema = reader.schema().clone();
    assert_eq!(schema.field_with_name("month").unwrap().data_type(), &DataType::Date32);
    assert_eq!(schema.field_with_name("features").unwrap().data_type(), &DataType::Int64);
    assert_eq!(schema.field_with_name("slowdown_ratio").unwrap().data_type(), &DataType::Float64);
    let rows: usize = reader.build().unwrap().map(|b| b.unwrap().num_rows()).sum();
    assert!(rows > 100, "{rows}");

    let file = fs::File::open(env.path("window.arrow")).unwrap();
    let reader = datafusion::arrow::ipc::reader::FileReader::try_new(file, None).unwrap();
    let schema = reader.schema();
    let timestamp = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
    assert!(schema.fields().iter().any(|f| f.data_type() == &timestamp), "{schema:?}");
}

#[test]
fn the_example_jobs_file_runs_on_the_sample() {
    let env = Env::new();
    fs::copy(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/jobs.toml"), env.path("jobs.toml")).unwrap();
    env.run(&["batch", "--dry-run", "jobs.toml"]).success();
    env.run(&["batch", "jobs.toml"]).success();
    let out = fs::read_dir(env.path("out")).unwrap().map(|e| e.unwrap().file_name()).collect::<Vec<_>>();
    assert_eq!(out.len(), 2, "a dated folder and latest/: {out:?}");
    let latest = fs::read_to_string(env.path("out/latest/system_health.csv")).unwrap();
    assert!(latest.starts_with("system,features,slowdown_ratio"), "{latest}");
}
