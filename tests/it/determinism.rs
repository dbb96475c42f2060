//! The same rows give the same bytes (issue 17): every view's CSV is identical over one store
//! laid out five ways (debtlens's own Delta layout, plain Parquet in one file per table, the
//! same rows dealt over seven shuffled Parquet files, a Delta table ingested from CSV in three
//! commits, and the same store in an S3 bucket), with 1, 2 and 8 threads, each run twice.

use std::path::{Path, PathBuf};

use crate::s3::{Weed, s3_run};
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

/// Every view's CSV over `store` (a directory, or an `s3://` URL with its endpoint) with
/// `threads`, as one text.
pub(crate) fn views_csv(env: &Env, store: &str, threads: &str, s3: Option<&str>) -> String {
    views_csv_run(env, store, &["--threads", threads], s3)
}

/// Every view's CSV over the store at `store` with `extra` global options, as one text.
pub(crate) fn views_csv_with(env: &Env, store: &str, extra: &[&str]) -> String {
    views_csv_run(env, store, extra, None)
}

pub(crate) fn views_csv_run(env: &Env, store: &str, extra: &[&str], s3: Option<&str>) -> String {
    let jobs = jobs_file(env);
    let out = env.path("out");
    let _ = std::fs::remove_dir_all(&out);
    let mut args = vec!["-q", "--data", store, "--as-of", AS_OF];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["batch", jobs.to_str().unwrap()]);
    match s3 {
        Some(endpoint) => s3_run(env, endpoint, &args).success(),
        None => env.run(&args).success(),
    };
    debtlens::views::VIEWS
        .iter()
        .map(|v| format!("== {}\n{}", v.name, std::fs::read_to_string(out.join(format!("{}.csv", v.name))).unwrap()))
        .collect()
}

pub(crate) fn query_to(env: &Env, store: &Path, sql: &str, output: &Path) {
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
    for table in ["features", "incidents", "capacity", "backlog", "deployments"] {
        for dir in [&plain, &shuffled] {
            std::fs::create_dir_all(dir.join(table)).unwrap();
        }
        query_to(&env, &delta, &format!("SELECT * FROM {table}"), &plain.join(table).join("all.parquet"));
        let key = match table {
            "features" => "feature_id",
            "incidents" => "incident_id",
            "backlog" => "item_id",
            "deployments" => "deployment_id",
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

    // The same generated rows in a bucket of a local S3 server.
    let server = Weed::start();
    server.create_bucket("debt");
    let endpoint = server.endpoint();
    let bucket = "s3://debt/store";
    s3_run(
        &env,
        &endpoint,
        &["sample", "-q", "--out", bucket, "--features", "20000", "--incidents", "30000", "--seed", "11"],
    )
    .success();

    let path = |p: &Path| p.to_str().unwrap().to_string();
    let reference = views_csv(&env, &path(&delta), "2", None);
    assert!(reference.lines().count() > 200, "the views have rows: {reference}");
    let stores = [
        ("delta", path(&delta), None),
        ("plain", path(&plain), None),
        ("shuffled", path(&shuffled), None),
        ("ingested", path(&ingested), None),
        ("s3", bucket.to_string(), Some(endpoint.as_str())),
    ];
    for (name, store, s3) in &stores {
        for threads in ["1", "2", "8"] {
            for run in 0..2 {
                let got = views_csv(&env, store, threads, *s3);
                if got != reference {
                    let first = got.lines().zip(reference.lines()).find(|(a, b)| a != b);
                    panic!("{name} store, {threads} threads, run {run}: first difference {first:?}");
                }
            }
        }
    }
}
