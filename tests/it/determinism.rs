//! The same rows give the same bytes (issue 17): every view's CSV is identical over one store
//! laid out four ways (debtlens's own Delta layout, plain Parquet in one file per table, the
//! same rows dealt over seven shuffled Parquet files, and a Delta table ingested from CSV in
//! three commits), with 1, 2 and 8 threads, each run twice.

use std::path::{Path, PathBuf};

use crate::util::Env;

const AS_OF: &str = "2026-10-31";

/// A jobs file writing every view as CSV into `out/`.
fn jobs_file(env: &Env) -> PathBuf {
    let mut text = String::from("manifest = \"out/manifest.json\"\n");
    for view in debtlens::views::VIEWS {
        text.push_str(&format!("[[job]]\nname = \"{0}\"\nview = \"{0}\"\npath = \"out/{0}.csv\"\n", view.name));
    }
    let path = env.path("jobs.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// Every view's CSV over `store` with `threads`, as one text.
fn views_csv(env: &Env, store: &Path, threads: &str) -> String {
    let jobs = jobs_file(env);
    let out = env.path("out");
    let _ = std::fs::remove_dir_all(&out);
    env.run(&[
        "-q",
        "--data",
        store.to_str().unwrap(),
        "--as-of",
        AS_OF,
        "--threads",
        threads,
        "batch",
        jobs.to_str().unwrap(),
    ])
    .success();
    debtlens::views::VIEWS
        .iter()
        .map(|v| format!("== {}\n{}", v.name, std::fs::read_to_string(out.join(format!("{}.csv", v.name))).unwrap()))
        .collect()
}

fn query_to(env: &Env, store: &Path, sql: &str, output: &Path) {
    env.run(&["-q", "--data", store.to_str().unwrap(), "query", sql, "--output", output.to_str().unwrap()]).success();
}

#[test]
fn every_view_gives_the_same_bytes_in_every_layout_and_thread_count() {
    let env = Env::new();
    let delta = env.sample_store("delta", 20_000, &["--seed", "11"]);

    // One plain Parquet file per table, written by another writer than debtlens's layout.
    let plain = env.path("plain");
    // Seven files per table, rows in another order.
    let shuffled = env.path("shuffled");
    // Ingested from CSV exports in three commits.
    let ingested = env.path("ingested");
    env.run(&["init", ingested.to_str().unwrap()]).success();
    for table in ["features", "incidents", "capacity"] {
        for dir in [&plain, &shuffled] {
            std::fs::create_dir_all(dir.join(table)).unwrap();
        }
        query_to(&env, &delta, &format!("SELECT * FROM {table}"), &plain.join(table).join("all.parquet"));
        let key = match table {
            "features" => "feature_id",
            "incidents" => "incident_id",
            _ => "CAST(period_start AS VARCHAR) || coalesce(team, '')",
        };
        for k in 0..7 {
            let sql = format!(
                "SELECT * EXCLUDE (rn) FROM (SELECT *, row_number() OVER (ORDER BY reverse({key})) AS rn FROM {table}) \
                 WHERE rn % 7 = {k} ORDER BY reverse(CAST(rn AS VARCHAR))"
            );
            query_to(&env, &delta, &sql, &shuffled.join(table).join(format!("part-{k}.parquet")));
        }
        for k in 0..3 {
            let csv = env.path(&format!("{table}-{k}.csv"));
            let sql = format!(
                "SELECT * FROM (SELECT *, row_number() OVER (ORDER BY {key}) AS rn FROM {table}) WHERE rn % 3 = {k}"
            );
            query_to(&env, &delta, &sql.replace("SELECT * FROM (", "SELECT * EXCLUDE (rn) FROM ("), &csv);
            let run = env.run(&["-q", "--data", ingested.to_str().unwrap(), "ingest", table, csv.to_str().unwrap()]);
            run.success();
        }
    }

    let reference = views_csv(&env, &delta, "2");
    assert!(reference.lines().count() > 200, "the views have rows: {reference}");
    for (name, store) in [("delta", &delta), ("plain", &plain), ("shuffled", &shuffled), ("ingested", &ingested)] {
        for threads in ["1", "2", "8"] {
            for run in 0..2 {
                let got = views_csv(&env, store, threads);
                if got != reference {
                    let first = got.lines().zip(reference.lines()).find(|(a, b)| a != b);
                    panic!("{name} store, {threads} threads, run {run}: first difference {first:?}");
                }
            }
        }
    }
}
