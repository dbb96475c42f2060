//! `debtlens optimize` (issue 22): a table left in many small files by daily ingests is
//! rewritten in debtlens's layout in one commit; every view gives the same bytes after, a reader
//! during the rewrite sees every row, a second run changes nothing; ingest compacts by itself
//! past its threshold and hints before; batch has an `optimize` job.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use crate::determinism::{query_to, views_csv};
use crate::util::Env;

/// `chunks` CSV exports of `table` from `store`, each a share of its rows (by key).
fn chunks(env: &Env, store: &Path, table: &str, chunks: usize) -> Vec<PathBuf> {
    let key = if table == "features" { "feature_id" } else { "incident_id" };
    (0..chunks)
        .map(|k| {
            let csv = env.path(&format!("{table}-{k:02}.csv"));
            let sql = format!(
                "SELECT * EXCLUDE (rn) FROM (SELECT *, row_number() OVER (ORDER BY {key}) AS rn FROM {table}) \
                 WHERE rn % {chunks} = {k}"
            );
            query_to(env, store, &sql, &csv);
            csv
        })
        .collect()
}

fn ingest(env: &Env, store: &Path, table: &str, csv: &Path, extra: &[&str]) -> String {
    let mut args = vec!["--data", store.to_str().unwrap(), "ingest", table, csv.to_str().unwrap()];
    args.extend_from_slice(extra);
    let run = env.run(&args);
    run.success();
    run.stderr.clone()
}

fn log_entries(table: &Path) -> usize {
    std::fs::read_dir(table.join("_delta_log"))
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "json"))
        .count()
}

fn count(env: &Env, store: &Path) -> String {
    let sql = "SELECT count(*), count(DISTINCT feature_id), sum(estimated_weeks) FROM features";
    let run = env.run(&["-q", "--data", store.to_str().unwrap(), "query", sql, "--format", "csv"]);
    run.success();
    run.stdout().lines().nth(1).unwrap_or_default().to_string()
}

#[test]
fn optimize_keeps_every_view_s_bytes_in_one_commit_and_a_second_run_changes_nothing() {
    let env = Env::new();
    let source = env.sample_store("source", 6000, &["--seed", "7"]);
    let daily = env.path("daily");
    env.run(&["init", daily.to_str().unwrap()]).success();
    for (table, n) in [("features", 12), ("incidents", 6)] {
        for csv in chunks(&env, &source, table, n) {
            ingest(&env, &daily, table, &csv, &["--no-auto-optimize"]);
        }
    }
    for table in ["capacity", "backlog"] {
        let csv = env.path(&format!("{table}.csv"));
        query_to(&env, &source, &format!("SELECT * FROM {table}"), &csv);
        ingest(&env, &daily, table, &csv, &[]);
    }
    let store = daily.to_str().unwrap();
    let reference = views_csv(&env, store, "2", None);
    let rows = count(&env, &daily);
    assert!(rows.starts_with("6000,6000,"), "{rows}");

    // Readers during the rewrite: every row, every time.
    let mut optimize = env.cmd().args(["--data", store, "optimize"]).stderr(Stdio::piped()).spawn().unwrap();
    let mut reads = 0;
    while optimize.try_wait().unwrap().is_none() || reads < 3 {
        assert_eq!(count(&env, &daily), rows, "a read during optimize");
        reads += 1;
    }
    let out = optimize.wait_with_output().unwrap();
    assert!(out.status.success());
    let said = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(said.contains("features: 12 files ("), "{said}");
    assert!(said.contains("-> 1 file ("), "{said}");
    assert!(said.contains(", 6000 rows, version 13"), "{said}");
    assert!(said.contains("incidents: 6 files ("), "{said}");
    assert!(said.contains("capacity: already compact: 1 file"), "{said}");

    assert_eq!(count(&env, &daily), rows);
    assert!(views_csv(&env, store, "2", None) == reference, "a view changed after optimize");

    // Idempotent: nothing is written the second time.
    let versions = log_entries(&daily.join("features"));
    let again = env.run(&["--data", store, "optimize", "features", "--target-size", "64M"]);
    again.success();
    assert!(again.stderr.contains("features: already compact: 1 file"), "{}", again.stderr);
    assert_eq!(log_entries(&daily.join("features")), versions);

    // A store without Delta tables, and names that are not tables, are refused.
    env.run(&["optimize"]).fails_with(2);
    let bad = env.run(&["--data", store, "optimize", "featurez"]);
    bad.fails_with(2);
    assert!(bad.stderr.contains("unknown table `featurez`"), "{}", bad.stderr);
}

#[test]
fn ingest_hints_at_many_small_files_and_compacts_past_its_threshold() {
    let env = Env::new();
    let source = env.sample_store("source", 1800, &["--seed", "3"]);
    let store = env.path("store");
    env.run(&["init", store.to_str().unwrap()]).success();
    let csvs = chunks(&env, &source, "features", 18);
    for (k, csv) in csvs.iter().take(16).enumerate() {
        let said = ingest(&env, &store, "features", csv, &["--no-auto-optimize"]);
        let hinted =
            said.contains("hint: features has 16 data files where 1 would hold it; `debtlens optimize features`");
        assert_eq!(hinted, k == 15, "ingest {k}: {said}");
        assert!(!said.contains("compacted"), "{said}");
    }
    // Past --auto-optimize-at, the ingest compacts the table after its commit.
    let said = ingest(&env, &store, "features", &csvs[16], &["--auto-optimize-at", "17"]);
    assert!(
        said.contains("features: compacted after the ingest (--no-auto-optimize turns this off): 17 files"),
        "{said}"
    );
    assert!(said.contains("-> 1 file ("), "{said}");
    let said = ingest(&env, &store, "features", &csvs[17], &[]);
    assert!(!said.contains("compacted") && !said.contains("hint"), "{said}");
    assert_eq!(count(&env, &store), count(&env, &source));
}

#[test]
fn a_batch_optimize_job_compacts_and_a_bad_one_is_refused_with_its_position() {
    let env = Env::new();
    let source = env.sample_store("source", 1000, &["--seed", "5"]);
    let store = env.path("store");
    env.run(&["init", store.to_str().unwrap()]).success();
    for csv in chunks(&env, &source, "features", 5) {
        ingest(&env, &store, "features", &csv, &["--no-auto-optimize"]);
    }
    let jobs = env.path("jobs.toml");
    std::fs::write(
        &jobs,
        "[[job]]\nname = \"compact\"\noptimize = [\"features\", \"incidents\"]\ntarget_size = \"128M\"\n\n\
         [[job]]\nname = \"teams\"\nsql = \"SELECT count(*) AS n FROM features\"\npath = \"out/n.csv\"\n",
    )
    .unwrap();
    let run = env.run(&["--data", store.to_str().unwrap(), "batch", jobs.to_str().unwrap()]);
    run.success();
    assert!(run.stderr.contains("compact") && run.stderr.contains("features: 5 files ("), "{}", run.stderr);
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(env.path("batch-manifest.json")).unwrap()).unwrap();
    let job = &manifest["jobs"][0];
    assert_eq!(job["format"], "optimize");
    assert_eq!(job["rows"], 1000);
    let detail = job["detail"].as_str().unwrap();
    assert!(detail.starts_with("features: 5 files (") && detail.contains("-> 1 file ("), "{detail}");
    assert!(detail.contains("; incidents: empty: nothing to compact"), "{detail}");
    assert_eq!(std::fs::read_to_string(env.path("out/n.csv")).unwrap(), "n\n1000\n");

    for (text, position, message) in [
        ("[[job]]\nname = \"c\"\noptimize = \"featurez\"\n", "3:12", "unknown table `featurez`"),
        ("[[job]]\nname = \"c\"\noptimize = \"all\"\npath = \"x.csv\"\n", "4:8", "an optimize job writes no file"),
        ("[[job]]\nname = \"c\"\noptimize = \"all\"\ntarget_size = \"big\"\n", "4:15", "target_size: invalid size"),
        ("[[job]]\nname = \"c\"\nview = \"debt_cost\"\noptimize = \"all\"\n", "1:1", "exactly one of"),
    ] {
        std::fs::write(&jobs, text).unwrap();
        let run = env.run(&["--data", store.to_str().unwrap(), "batch", jobs.to_str().unwrap()]);
        run.fails_with(2);
        assert!(run.stderr.contains(&format!("jobs.toml:{position}")), "{text}: {}", run.stderr);
        assert!(run.stderr.contains(message), "{text}: {}", run.stderr);
    }
}
