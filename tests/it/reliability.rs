//! What an unlucky user meets (issue 21): a command stopped by a signal leaves no partial file
//! and says so, and `vacuum` removes what interrupted ingests leave in a store, never a file a
//! table version uses.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::util::{Env, Run};

fn leftovers(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp") || n.starts_with("big"))
        .collect()
}

/// SIGTERM and SIGINT while a query streams into `--output`: exit 128 + the signal, a message
/// that says what happened, and neither the output nor its temporary file left behind.
#[test]
fn a_signal_during_output_leaves_no_partial_file() {
    let env = Env::new();
    for (signal, code) in [("TERM", 143), ("INT", 130)] {
        let child = env
            .cmd()
            .args(["-q", "query", "SELECT value, value * 2 AS twice FROM generate_series(1, 100000000000)"])
            .args(["--format", "csv", "--output", "big.csv"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Wait until the temporary file is being written.
        let started = Instant::now();
        while leftovers(env.dir.path()).is_empty() && started.elapsed() < Duration::from_secs(60) {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(!leftovers(env.dir.path()).is_empty(), "the output's temporary file appears");
        std::thread::sleep(Duration::from_millis(300));
        Command::new("kill").args([&format!("-{signal}"), &child.id().to_string()]).status().unwrap();
        let run = Run::from(child.wait_with_output().unwrap());
        run.fails_with(code);
        assert!(run.stderr.contains(&format!("interrupted by SIG{signal}")), "{}", run.stderr);
        assert_eq!(leftovers(env.dir.path()), Vec::<String>::new(), "SIG{signal}");
    }
}

fn touch_days_ago(path: &Path, days: u32) {
    let status = Command::new("touch").args(["-d", &format!("{days} days ago")]).arg(path).status().unwrap();
    assert!(status.success());
}

/// An uncommitted data file (what a killed ingest leaves) is removed by `vacuum` once older
/// than --retain; a fresh one is kept; --dry-run removes nothing; no view changes.
#[test]
fn vacuum_removes_uncommitted_files_and_nothing_in_use() {
    let env = Env::new();
    let store = env.sample_store("store", 600, &["--backlog", "5"]);
    let data = store.to_str().unwrap();
    let view = |env: &Env| env.run(&["-q", "--data", data, "view", "system_health", "--format", "csv"]).stdout;
    let before = view(&env);
    let features = store.join("features");
    let committed: Vec<_> = std::fs::read_dir(&features)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "parquet"))
        .collect();
    assert!(!committed.is_empty());
    let old = features.join("part-00000-killed-ingest.c000.snappy.parquet");
    let fresh = features.join("part-00001-running-ingest.c000.snappy.parquet");
    std::fs::copy(&committed[0], &old).unwrap();
    std::fs::copy(&committed[0], &fresh).unwrap();
    touch_days_ago(&old, 3);
    for path in &committed {
        touch_days_ago(path, 3);
    }

    // vacuum also removes old staging folders of killed ingests from the temporary folder: a
    // private one here, so that no other test's running ingest is touched.
    let tmp = env.path("tmp");
    std::fs::create_dir_all(tmp.join("debtlens-ingest-killed")).unwrap();
    std::fs::create_dir_all(tmp.join("debtlens-ingest-running")).unwrap();
    touch_days_ago(&tmp.join("debtlens-ingest-killed"), 3);
    let vacuum = |args: &[&str]| Run::from(env.cmd().args(args).env("TMPDIR", &tmp).output().unwrap());
    let dry = vacuum(&["--data", data, "vacuum", "--dry-run"]);
    dry.success();
    assert!(
        dry.stderr.contains("would remove features/part-00000-killed-ingest.c000.snappy.parquet"),
        "{}",
        dry.stderr
    );
    assert!(dry.stderr.contains("would remove 1 file older than 24h"), "{}", dry.stderr);
    assert!(old.exists());

    assert!(dry.stderr.contains("would remove 1 staging folder of killed ingests"), "{}", dry.stderr);
    assert!(tmp.join("debtlens-ingest-killed").exists());
    let run = vacuum(&["--data", data, "vacuum", "features"]);
    run.success();
    assert!(run.stderr.contains("removed 1 file older than 24h"), "{}", run.stderr);
    assert!(!tmp.join("debtlens-ingest-killed").exists() && tmp.join("debtlens-ingest-running").exists());
    assert!(!old.exists() && fresh.exists(), "the old orphan goes, the fresh one stays");
    assert!(committed.iter().all(|p| p.exists()), "every committed file stays");
    assert_eq!(view(&env), before);

    // Ten ingests make ten log entries; with no retention they go, after a checkpoint.
    std::fs::write(env.path("one.csv"), "feature_id,title,systems,estimated_weeks\nV1,Vacuumed,api,1\n").unwrap();
    for _ in 0..10 {
        env.run(&["-q", "--data", data, "ingest", "features", "one.csv"]).success();
    }
    let after_ingests = view(&env);
    let json = |dir: &Path| {
        std::fs::read_dir(dir)
            .unwrap()
            .filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "json"))
            .count()
    };
    let entries = json(&features.join("_delta_log"));
    let run = vacuum(&["--data", data, "vacuum", "--retain", "0s"]);
    run.success();
    assert!(!fresh.exists());
    assert!(json(&features.join("_delta_log")) < entries, "{}", run.stderr);
    assert!(run.stderr.contains("Delta log entries older than 0s"), "{}", run.stderr);
    assert_eq!(view(&env), after_ingests, "the table reads the same after its log is cut");

    let bad = env.run(&["--data", data, "vacuum", "featurs"]);
    bad.fails_with(2);
    assert!(bad.stderr.contains("unknown table `featurs`"), "{}", bad.stderr);
    let sample = env.run(&["vacuum"]);
    sample.fails_with(2);
    assert!(sample.stderr.contains("no files to clean"), "{}", sample.stderr);
}

/// Issue 21, item 5: one value and one statement are bounded. `repeat('ab', 1000000000)` went
/// 3 GB past `--memory-limit 512M`; now it is refused before it allocates. A 20 MB statement is
/// refused before it is parsed (parsing held many times its size).
#[test]
fn huge_values_and_statements_are_refused_not_allocated() {
    let env = Env::new();
    let run = env.run(&["--memory-limit", "512M", "query", "SELECT length(repeat('ab', 1000000000)) AS n"]);
    run.fails_with(1);
    assert!(
        run.stderr.contains("repeat() would make 1907 MiB of text in one batch; the limit is 256 MiB"),
        "{}",
        run.stderr
    );
    let run = env.run(&["-q", "query", "SELECT length(repeat('ab', 1000)) AS n", "--format", "csv"]);
    assert_eq!(run.success().stdout(), "n\n2000\n");

    let long = format!("SELECT '{}' AS x", "y".repeat(20 * 1024 * 1024));
    std::fs::write(env.path("long.sql"), long).unwrap();
    let run = env.run(&["query", "-f", "long.sql"]);
    run.fails_with(1);
    assert!(run.stderr.contains("the statement is 20.0 MiB; the limit is 16 MiB"), "{}", run.stderr);
}

/// Issue 21, item 12: a commit file cut short (a full disk under another tool) is named, with
/// what to do, and no backtrace even with RUST_BACKTRACE=1; `debtlens init` (which refuses an
/// existing store) is not suggested. Moving the file aside, as the message says, reads the
/// table as of the commit before.
#[test]
fn a_cut_short_commit_is_named_with_what_to_do() {
    let env = Env::new();
    let store = env.sample_store("store", 300, &[]);
    let data = store.to_str().unwrap();
    let count =
        |env: &Env| env.run(&["-q", "--data", data, "query", "SELECT count(*) AS n FROM features", "--format", "csv"]);
    let before = count(&env).success().stdout();
    std::fs::write(env.path("f.csv"), "feature_id,title,systems,estimated_weeks\nN1,New,api,1\n").unwrap();
    env.run(&["-q", "--data", data, "ingest", "features", "f.csv"]).success();
    let log = store.join("features/_delta_log");
    let mut commits: Vec<_> = std::fs::read_dir(&log)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".json"))
        .collect();
    commits.sort();
    let newest = commits.pop().unwrap();
    let text = std::fs::read(log.join(&newest)).unwrap();
    std::fs::write(log.join(&newest), &text[..text.len() / 2]).unwrap();

    for args in
        [&["--data", data, "ingest", "features", "f.csv"][..], &["--data", data, "query", "SELECT 1 FROM features"][..]]
    {
        let run = Run::from(env.cmd().args(args).env("RUST_BACKTRACE", "1").output().unwrap());
        run.fails_with(1);
        assert!(run.stderr.contains("its Delta log cannot be read"), "{}", run.stderr);
        assert!(
            run.stderr.contains(&format!("features/_delta_log/{newest}, may be a partial write: move it aside")),
            "{}",
            run.stderr
        );
        assert!(!run.stderr.contains("debtlens init") && !run.stderr.contains("   0: "), "{}", run.stderr);
        assert!(run.stderr.lines().count() <= 2, "{}", run.stderr);
    }
    std::fs::rename(log.join(&newest), env.path(&newest)).unwrap();
    assert_eq!(count(&env).success().stdout(), before, "the table as of the commit before");
}
