//! `debtlens ingest` end to end: every kind of malformed input is kept with its line and reason,
//! good rows load, keys upsert, re-ingest changes nothing, a killed ingest leaves no trace and
//! two ingests at once both land.

use std::path::Path;
use std::process::Stdio;
use std::time::Instant;

use crate::util::{Env, Run};

const HEADER: &str = "feature_id,title,team,systems,work_type,estimated_weeks,actual_weeks,delay_days,delay_reasons,started_at,shipped_at,dod_docs,exported_by";

/// Good rows mixed with every kind of bad row, with a BOM and CRLF line ends.
fn mixed_features_csv() -> Vec<u8> {
    let mut lines: Vec<Vec<u8>> = vec![
        format!("\u{feff}{HEADER}").into_bytes(),                                                                   // 1
        b"G1,Plain,core,api;web,product,2,3,1,legacy-code; flaky-tests ,2026-01-01,2026-02-01,yes,x".to_vec(),      // 2
        b"G2,\"Title, with comma and \"\"quotes\"\"\",core,api,quality,1,1,0,,2026-01-01T10:00:00Z,2026-01-05 10:00:00+02:00,no,x".to_vec(), // 3
        b"G3,\"Multi\r\nline title\",core,api,,1,2,0,,,2026-03-01,1,x".to_vec(),                                    // 4-5
        "G4,\u{1F680} Launch \u{5E9}\u{5DC}\u{5D5}\u{5DD},core,api,,1,1,0,,,2026-03-02,0,x".as_bytes().to_vec(),  // 6
        b"B1,too,few".to_vec(),                                                                                     // 7
        b"B2,Bad date,core,api,,1,1,0,,,2026-13-45,,x".to_vec(),                                                    // 8
        b"B3,Text number,core,api,,two,1,0,,,,,x".to_vec(),                                                         // 9
        b"B4,Zero estimate,core,api,,0,1,0,,,,,x".to_vec(),                                                         // 10
        b"B5,Negative estimate,core,api,,-1,1,0,,,,,x".to_vec(),                                                    // 11
        b"B6,No systems,core, ; ,,1,1,0,,,,,x".to_vec(),                                                            // 12
        b"B7,Backwards,core,api,,1,1,0,,2026-05-01,2026-04-01,,x".to_vec(),                                         // 13
        b"B8,Bad boolean,core,api,,1,1,0,,,,perhaps,x".to_vec(),                                                    // 14
        b"B9,Latin-1 \xe9t\xe9,core,api,,1,1,0,,,,,x".to_vec(),                                                     // 15
        b"B10,NUL\x00byte,core,api,,1,1,0,,,,,x".to_vec(),                                                          // 16
        b"G1,Plain again,core,api,product,2,2.5,1,,2026-01-01,2026-02-02,yes,x".to_vec(),                           // 17
        b"B11,\"Unclosed,core,api,,1,1,0,,,,,x".to_vec(),                                                           // 18
    ];
    lines.push(Vec::new());
    lines.join(&b"\r\n"[..])
}

fn store(env: &Env) -> String {
    env.run(&["init", "store"]).success();
    env.path("store").to_str().unwrap().to_string()
}

fn csv_query(env: &Env, store: &str, sql: &str) -> String {
    env.run(&["--data", store, "-q", "query", sql, "--format", "csv"]).success().stdout()
}

#[test]
fn good_rows_load_and_every_bad_row_is_kept_with_its_line_and_reason() {
    let env = Env::new();
    let store = store(&env);
    std::fs::write(env.path("mixed.csv"), mixed_features_csv()).unwrap();
    let run = env.run(&["--data", &store, "ingest", "features", "mixed.csv"]);
    run.fails_with(3);
    assert_eq!(run.stdout(), "features: read 16, loaded 4, replaced 1, rejected 11\n");
    assert!(run.stderr.contains("ignored columns that are not in features: exported_by"), "{}", run.stderr);
    assert_eq!(run.stderr.matches("ignored columns").count(), 1, "one warning: {}", run.stderr);

    let loaded = csv_query(
        &env,
        &store,
        "SELECT feature_id, title, systems, work_type, delay_reasons, shipped_at, dod_docs FROM features ORDER BY feature_id",
    );
    let expected = "feature_id,title,systems,work_type,delay_reasons,shipped_at,dod_docs\n\
        G1,Plain again,api,product,,2026-02-02T00:00:00Z,true\n\
        G2,\"Title, with comma and \"\"quotes\"\"\",api,quality,,2026-01-05T08:00:00Z,false\n\
        G3,\"Multi\r\nline title\",api,product,,2026-03-01T00:00:00Z,true\n\
        G4,\u{1F680} Launch \u{5E9}\u{5DC}\u{5D5}\u{5DD},api,product,,2026-03-02T00:00:00Z,false\n";
    assert_eq!(loaded, expected);

    let rejected = csv_query(&env, &store, "SELECT line, column_name, reason FROM rejected_rows ORDER BY line");
    let expected = "line,column_name,reason\n\
        7,,\"expected 13 fields, found 3\"\n\
        8,shipped_at,shipped_at is not an ISO-8601 date or date-time\n\
        9,estimated_weeks,estimated_weeks is not a number\n\
        10,estimated_weeks,estimated_weeks must be greater than 0\n\
        11,estimated_weeks,estimated_weeks must be greater than 0\n\
        12,systems,systems needs at least one value\n\
        13,shipped_at,shipped_at is before started_at (2026-05-01)\n\
        14,dod_docs,\"dod_docs is not a boolean (true/false, yes/no, 1/0)\"\n\
        15,title,title is not valid UTF-8\n\
        16,title,title contains a NUL byte\n\
        18,,\"expected 13 fields, found 2 (an unclosed quote?)\"\n";
    assert_eq!(rejected, expected);
    let raw = csv_query(&env, &store, "SELECT raw_value, source_file, table_name FROM rejected_rows WHERE line = 9");
    assert_eq!(raw, "raw_value,source_file,table_name\ntwo,mixed.csv,features\n");
}

#[test]
fn allow_rejects_exits_0_and_still_keeps_them() {
    let env = Env::new();
    let store = store(&env);
    std::fs::write(env.path("mixed.csv"), mixed_features_csv()).unwrap();
    env.run(&["--data", &store, "ingest", "features", "mixed.csv", "--allow-rejects"]).success();
    assert_eq!(csv_query(&env, &store, "SELECT count(*) AS n FROM rejected_rows"), "n\n11\n");
}

/// The same CSV texts, cell by cell, numbers equal to 1e-9 relative (float sums depend on the
/// order rows are added in).
fn assert_same_csv(left: &[String], right: &[String], what: &str) {
    assert_eq!(left.len(), right.len(), "{what}");
    for (l, r) in left.iter().zip(right) {
        let (l_lines, r_lines): (Vec<&str>, Vec<&str>) = (l.lines().collect(), r.lines().collect());
        assert_eq!(l_lines.len(), r_lines.len(), "{what}:\n{l}\n---\n{r}");
        for (a, b) in l_lines.iter().zip(&r_lines) {
            let (a_cells, b_cells): (Vec<&str>, Vec<&str>) = (a.split(',').collect(), b.split(',').collect());
            let same = a_cells.len() == b_cells.len()
                && a_cells.iter().zip(&b_cells).all(|(x, y)| {
                    x == y
                        || matches!((x.parse::<f64>(), y.parse::<f64>()), (Ok(x), Ok(y))
                            if (x - y).abs() <= 1e-9 * x.abs().max(1.0))
                });
            assert!(same, "{what}: {a} vs {b}");
        }
    }
}

#[test]
fn the_same_file_twice_changes_no_view() {
    let env = Env::new();
    let store = store(&env);
    // The built-in sample, exported as CSV, JSON and NDJSON.
    let tables = [("features", "csv"), ("incidents", "json"), ("capacity", "ndjson"), ("deployments", "json")];
    for (table, format) in tables {
        let export = env.run(&["-q", "query", &format!("SELECT * FROM {table}"), "--format", format]);
        std::fs::write(env.path(&format!("{table}.{format}")), &export.success().stdout).unwrap();
    }
    let ingest_all = |expect_replaced: bool| {
        for (table, format) in tables {
            let run = env.run(&["--data", &store, "ingest", table, &format!("{table}.{format}")]);
            let out = run.success().stdout();
            let (loaded, replaced) = if expect_replaced { ("loaded 0", "replaced") } else { ("loaded", "replaced 0") };
            assert!(out.contains(loaded) && out.contains(replaced) && out.contains("rejected 0"), "{out}");
        }
    };
    ingest_all(false);
    let views = [
        "slowdown_by_system",
        "system_health",
        "capacity_split",
        "delay_by_reason",
        "velocity_trend",
        "estimation_accuracy",
    ];
    let snapshot = |data: Option<&str>| -> Vec<String> {
        views
            .iter()
            .map(|v| {
                let mut args = vec!["-q", "view", v, "--format", "csv"];
                if let Some(d) = data {
                    args.splice(0..0, ["--data", d]);
                }
                env.run(&args).success().stdout()
            })
            .collect()
    };
    // The same rows in another physical order: sums of floats may differ in their last digits.
    let first = snapshot(Some(&store));
    assert_same_csv(&first, &snapshot(None), "the ingested export differs from the built-in sample");
    ingest_all(true);
    assert_same_csv(&snapshot(Some(&store)), &first, "ingesting the same files again changed a view");
    assert_eq!(csv_query(&env, &store, "SELECT count(*) AS n FROM features"), "n\n2000\n");
}

#[test]
fn a_key_in_a_later_file_replaces_the_earlier_one() {
    let env = Env::new();
    let store = store(&env);
    std::fs::write(env.path("a.csv"), "feature_id,title,systems,estimated_weeks\nK1,First,api,1\nK2,Other,api,1\n")
        .unwrap();
    std::fs::write(
        env.path("b.ndjson"),
        "{\"feature_id\":\"K1\",\"title\":\"Second\",\"systems\":[\"api\",\"web\"],\"estimated_weeks\":2}\n",
    )
    .unwrap();
    let run = env.run(&["--data", &store, "ingest", "features", "a.csv", "b.ndjson"]);
    assert_eq!(run.success().stdout(), "features: read 3, loaded 2, replaced 1, rejected 0\n");
    assert_eq!(
        csv_query(&env, &store, "SELECT feature_id, title, systems, estimated_weeks FROM features ORDER BY 1"),
        "feature_id,title,systems,estimated_weeks\nK1,Second,api;web,2.0\nK2,Other,api,1.0\n"
    );
    // Capacity's key includes a nullable team: the organisation-wide row is replaced too.
    let cap = "period_start,period_end,team,budget\n2026-01-01,2026-04-01,,100\n2026-01-01,2026-04-01,core,50\n";
    std::fs::write(env.path("cap.csv"), cap).unwrap();
    env.run(&["--data", &store, "ingest", "capacity", "cap.csv"]).success();
    std::fs::write(env.path("cap2.csv"), "period_start,period_end,team,budget\n2026-01-01,2026-04-01,,120\n").unwrap();
    let run = env.run(&["--data", &store, "ingest", "capacity", "cap2.csv"]);
    assert_eq!(run.success().stdout(), "capacity: read 1, loaded 0, replaced 1, rejected 0\n");
    assert_eq!(
        csv_query(&env, &store, "SELECT team, budget FROM capacity ORDER BY team NULLS FIRST"),
        "team,budget\n,120.0\ncore,50.0\n"
    );
}

#[test]
fn incidents_with_an_unknown_severity_are_refused() {
    let env = Env::new();
    let store = store(&env);
    let csv = "incident_id,system,severity,started_at,resolved_at,users_affected,debt_related\n\
        I1,api,SEV1,2026-01-01 10:00,2026-01-01 12:00,5,true\n\
        I2,api,critical,2026-01-01 10:00,,,\n\
        I3,api,sev2,2026-01-02 10:00,2026-01-01 10:00,,\n\
        I4,api,sev3,2026-01-02 10:00,,-3,\n\
        I5,api,sev4,2026-01-02 10:00,,,sometimes\n";
    std::fs::write(env.path("inc.csv"), csv).unwrap();
    let run = env.run(&["--data", &store, "ingest", "incidents", "inc.csv"]);
    run.fails_with(3);
    assert_eq!(run.stdout(), "incidents: read 5, loaded 1, replaced 0, rejected 4\n");
    assert_eq!(
        csv_query(&env, &store, "SELECT line, column_name FROM rejected_rows ORDER BY line"),
        "line,column_name\n3,severity\n4,resolved_at\n5,users_affected\n6,debt_related\n"
    );
    assert_eq!(csv_query(&env, &store, "SELECT severity FROM incidents"), "severity\nsev1\n");
}

#[test]
fn header_only_files_load_nothing_and_succeed_and_an_empty_file_is_refused() {
    let env = Env::new();
    let store = store(&env);
    std::fs::write(env.path("header.csv"), format!("{HEADER}\r\n")).unwrap();
    std::fs::write(env.path("empty.json"), "[]").unwrap();
    for file in ["header.csv", "empty.json"] {
        let run = env.run(&["--data", &store, "ingest", "features", file]);
        assert_eq!(run.success().stdout(), "features: read 0, loaded 0, replaced 0, rejected 0\n", "{file}");
    }
    // A 0-byte file is a failed export, not an export of no rows (that has a header).
    std::fs::write(env.path("empty.csv"), "").unwrap();
    let run = env.run(&["--data", &store, "ingest", "features", "empty.csv"]);
    run.fails_with(2);
    assert!(
        run.stderr.contains("empty.csv:1: the file is empty (not even a header); nothing was loaded"),
        "{}",
        run.stderr
    );
}

/// Issue 21's low items: what a file from elsewhere looks like. gzip and zstd inputs load the
/// rows the plain file loads; a `;`-separated file says so and loads with --delimiter; a
/// UTF-16 file names its encoding; a header name of 5 MB is not echoed whole.
#[test]
fn compressed_semicolon_utf16_and_huge_header_inputs() {
    let env = Env::new();
    let store = store(&env);
    let rows = "feature_id,title,systems,estimated_weeks,actual_weeks\nZ1,Zipped,api,1,2\nZ2,Zstd é,web;api,2,3\n";
    std::fs::write(env.path("plain.csv"), rows).unwrap();
    let gz = std::process::Command::new("gzip").args(["-k", "plain.csv"]).current_dir(env.dir.path()).status();
    assert!(gz.unwrap().success());
    std::fs::rename(env.path("plain.csv.gz"), env.path("export.csv.gz")).unwrap();
    let mut zst = zstd::Encoder::new(std::fs::File::create(env.path("export.ndjson.zst")).unwrap(), 3).unwrap();
    std::io::Write::write_all(
        &mut zst,
        b"{\"feature_id\": \"Z3\", \"title\": \"Zstd\", \"systems\": [\"api\"], \"estimated_weeks\": 1}\n",
    )
    .unwrap();
    zst.finish().unwrap();
    let run = env.run(&["--data", &store, "ingest", "features", "export.csv.gz", "export.ndjson.zst"]);
    assert_eq!(run.success().stdout(), "features: read 3, loaded 3, replaced 0, rejected 0\n");
    assert_eq!(
        csv_query(
            &env,
            &store,
            "SELECT feature_id, title, array_to_string(systems, '|') AS s FROM features ORDER BY 1"
        ),
        "feature_id,title,s\nZ1,Zipped,api\nZ2,Zstd é,web|api\nZ3,Zstd,api\n"
    );

    std::fs::write(env.path("excel.csv"), "feature_id;title;systems;estimated_weeks\nS1;Semi;api;1.5\n").unwrap();
    let run = env.run(&["--data", &store, "ingest", "features", "excel.csv"]);
    run.fails_with(2);
    assert!(
        run.stderr.contains("holding 3 `;`: the file looks `;`-separated; read it with --delimiter ';'"),
        "{}",
        run.stderr
    );
    let run = env.run(&["--data", &store, "ingest", "features", "excel.csv", "--delimiter", ";"]);
    assert_eq!(run.success().stdout(), "features: read 1, loaded 1, replaced 0, rejected 0\n");
    let run = env.run(&["--data", &store, "ingest", "features", "excel.csv", "--delimiter", ";;"]);
    run.fails_with(2);

    let utf16: Vec<u8> = [0xff, 0xfe].into_iter().chain(rows.encode_utf16().flat_map(|u| u.to_le_bytes())).collect();
    std::fs::write(env.path("utf16.csv"), utf16).unwrap();
    let run = env.run(&["--data", &store, "ingest", "features", "utf16.csv"]);
    run.fails_with(2);
    assert!(
        run.stderr.contains("the file is UTF-16 (little-endian, with a byte-order mark), not UTF-8"),
        "{}",
        run.stderr
    );

    let huge = "h".repeat(5_000_000);
    std::fs::write(
        env.path("huge.csv"),
        format!("feature_id,title,systems,estimated_weeks,{huge},{huge}\nH1,Huge,api,1,a,b\n"),
    )
    .unwrap();
    let run = env.run(&["--data", &store, "ingest", "features", "huge.csv"]);
    run.success();
    assert!(run.stderr.len() < 2_000, "the warning names the columns in short: {} bytes", run.stderr.len());
    assert!(run.stderr.contains("(5000000 characters)"), "{}", run.stderr);
}

#[test]
fn a_file_missing_a_required_column_is_refused_whole() {
    let env = Env::new();
    let store = store(&env);
    std::fs::write(env.path("good.csv"), "feature_id,title,systems,estimated_weeks\nK1,First,api,1\n").unwrap();
    std::fs::write(env.path("partial.csv"), "feature_id,title,systems\nK2,No estimate,api\n").unwrap();
    let run = env.run(&["--data", &store, "ingest", "features", "good.csv", "partial.csv"]);
    run.fails_with(2);
    assert!(run.stderr.contains("partial.csv:1: missing required column `estimated_weeks`"), "{}", run.stderr);
    assert_eq!(csv_query(&env, &store, "SELECT count(*) AS n FROM features"), "n\n0\n");
}

#[test]
fn json_arrays_and_ndjson_take_lists_as_arrays_and_keep_bad_lines() {
    let env = Env::new();
    let store = store(&env);
    let json = r#"[{"feature_id":"J1","title":"Array","systems":["api"," web "],"estimated_weeks":1.5,"delay_reasons":[],"dod_docs":true},
                   {"feature_id":"J2","title":"Bad","systems":[],"estimated_weeks":1}]"#;
    std::fs::write(env.path("in.json"), json).unwrap();
    let run = env.run(&["--data", &store, "ingest", "features", "in.json"]);
    run.fails_with(3);
    assert_eq!(run.stdout(), "features: read 2, loaded 1, replaced 0, rejected 1\n");
    std::fs::write(
        env.path("in.ndjson"),
        "{\"feature_id\":\"N1\",\"title\":\"T\",\"systems\":\"a;b\",\"estimated_weeks\":\"2\"}\n{not json\n\n",
    )
    .unwrap();
    let run = env.run(&["--data", &store, "ingest", "features", "in.ndjson"]);
    run.fails_with(3);
    assert_eq!(
        csv_query(&env, &store, "SELECT feature_id, systems, dod_docs FROM features ORDER BY 1"),
        "feature_id,systems,dod_docs\nJ1,api;web,true\nN1,a;b,\n"
    );
    let reasons = csv_query(&env, &store, "SELECT source_file, line, reason FROM rejected_rows ORDER BY source_file");
    assert!(reasons.contains("in.json,2,systems needs at least one value"), "{reasons}");
    assert!(reasons.contains("in.ndjson,2,invalid JSON"), "{reasons}");
}

#[test]
fn a_truncated_parquet_file_is_refused_and_changes_nothing() {
    let env = Env::new();
    let store = store(&env);
    let export = env.run(&["-q", "query", "SELECT * FROM features", "--format", "parquet"]);
    let bytes = export.success().stdout.clone();
    std::fs::write(env.path("good.parquet"), &bytes).unwrap();
    std::fs::write(env.path("cut.parquet"), &bytes[..bytes.len() / 2]).unwrap();
    let run = env.run(&["--data", &store, "ingest", "features", "cut.parquet"]);
    run.fails_with(2);
    assert!(run.stderr.contains("cut.parquet") && run.stderr.contains("Parquet"), "{}", run.stderr);
    assert_eq!(csv_query(&env, &store, "SELECT count(*) AS n FROM features"), "n\n0\n");
    let run = env.run(&["--data", &store, "ingest", "features", "good.parquet"]);
    assert_eq!(run.success().stdout(), "features: read 2000, loaded 2000, replaced 0, rejected 0\n");
}

#[test]
fn ingest_needs_a_store_and_a_known_table_and_format() {
    let env = Env::new();
    std::fs::write(env.path("x.csv"), "a\n1\n").unwrap();
    env.run(&["ingest", "features", "x.csv"]).fails_with(2);
    let store = store(&env);
    let run = env.run(&["--data", &store, "ingest", "feature", "x.csv"]);
    run.fails_with(2);
    assert!(run.stderr.contains("unknown table `feature`"), "{}", run.stderr);
    std::fs::write(env.path("x.xlsx"), "").unwrap();
    let run = env.run(&["--data", &store, "ingest", "features", "x.xlsx"]);
    run.fails_with(2);
    assert!(run.stderr.contains("give --input-format"), "{}", run.stderr);
    env.run(&["--data", &store, "ingest", "features", "missing.csv"]).fails_with(2);
}

/// `--format` names the output format everywhere; the input format of ingest is its own flag.
#[test]
fn the_input_format_is_its_own_flag() {
    let env = Env::new();
    let store = store(&env);
    std::fs::write(
        env.path("export.txt"),
        "feature_id,title,team,systems,estimated_weeks,actual_weeks,started_at,shipped_at
         T-1,From a .txt,core,api,1,2,2026-01-01,2026-02-01
",
    )
    .unwrap();
    let run = env.run(&["--data", &store, "ingest", "features", "export.txt", "--format", "csv"]);
    run.fails_with(2);
    assert!(run.stderr.contains("--input-format csv|json|ndjson|parquet"), "{}", run.stderr);
    assert_eq!(csv_query(&env, &store, "SELECT count(*) AS n FROM features"), "n\n0\n", "nothing loaded");
    let run = env.run(&["--data", &store, "ingest", "features", "export.txt", "--input-format", "csv"]);
    assert_eq!(run.success().stdout(), "features: read 1, loaded 1, replaced 0, rejected 0\n");
    let run = env.run(&["--data", &store, "ingest", "features", "export.txt", "--input-format", "xlsx"]);
    run.fails_with(2);
    assert!(run.stderr.contains("possible values: csv, json, ndjson, parquet"), "{}", run.stderr);
}

/// A CSV of `n` generated features.
fn big_csv(env: &Env, name: &str, n: usize, seed: u64) -> std::path::PathBuf {
    let source = env.path(&format!("{name}-store"));
    env.run(&[
        "sample",
        "--out",
        source.to_str().unwrap(),
        "--features",
        &n.to_string(),
        "--incidents",
        "1",
        "--seed",
        &seed.to_string(),
        "--plain-parquet",
    ])
    .success();
    let csv = env.path(&format!("{name}.csv"));
    env.run(&[
        "--data",
        source.to_str().unwrap(),
        "-q",
        "query",
        "SELECT * FROM features",
        "--output",
        csv.to_str().unwrap(),
    ])
    .success();
    csv
}

fn delta_versions(table: &Path) -> usize {
    std::fs::read_dir(table.join("_delta_log"))
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "json"))
        .count()
}

#[test]
fn a_killed_ingest_leaves_the_table_as_it_was() {
    let env = Env::new();
    let store = store(&env);
    let csv = big_csv(&env, "big", 300_000, 3);
    std::fs::write(env.path("one.csv"), "feature_id,title,systems,estimated_weeks\nK1,First,api,1\n").unwrap();
    env.run(&["--data", &store, "ingest", "features", "one.csv"]).success();
    let table = env.path("store/features");
    let versions = delta_versions(&table);

    // Kill it part-way, at several points of its run.
    let started = Instant::now();
    let full = env.run(&["--data", &store, "ingest", "features", csv.to_str().unwrap()]);
    full.success();
    let duration = started.elapsed();
    let table_after_full = delta_versions(&table);
    assert_eq!(table_after_full, versions + 1);
    std::fs::remove_dir_all(env.path("store")).unwrap();
    let store = self::store(&env);
    env.run(&["--data", &store, "ingest", "features", "one.csv"]).success();
    let mut killed_while_running = 0;
    for fraction in [0.1, 0.3, 0.5, 0.7] {
        let mut child = env
            .cmd()
            .args(["--data", &store, "ingest", "features", csv.to_str().unwrap()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(duration.mul_f64(fraction));
        let still_running = child.try_wait().unwrap().is_none();
        child.kill().unwrap();
        child.wait().unwrap();
        if still_running {
            killed_while_running += 1;
            assert_eq!(delta_versions(&table), versions, "a killed ingest committed (at {fraction})");
            assert_eq!(csv_query(&env, &store, "SELECT count(*) AS n FROM features"), "n\n1\n");
        } else {
            // It finished first on a fast machine: start again from the one-row table.
            std::fs::remove_dir_all(env.path("store")).unwrap();
            self::store(&env);
            env.run(&["--data", &store, "ingest", "features", "one.csv"]).success();
        }
    }
    assert!(killed_while_running >= 2, "only {killed_while_running} kills landed while the ingest ran");
    let run = env.run(&["--data", &store, "ingest", "features", csv.to_str().unwrap()]);
    assert_eq!(run.success().stdout(), "features: read 300000, loaded 300000, replaced 0, rejected 0\n");
    assert_eq!(csv_query(&env, &store, "SELECT count(*) AS n FROM features"), "n\n300001\n");
}

/// Starts `debtlens ingest features FILE` into `store` without waiting for it.
fn spawn_ingest(env: &Env, store: &str, file: &Path) -> std::process::Child {
    env.cmd()
        .args(["--data", store, "ingest", "features", file.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

#[test]
fn two_ingests_at_once_both_land() {
    let env = Env::new();
    let store = store(&env);
    let a = big_csv(&env, "a", 20_000, 1);
    // The same generator numbers ids from 1: give the second file its own ids.
    let b_text = std::fs::read_to_string(big_csv(&env, "b", 20_000, 2)).unwrap().replace("FEAT-", "OTHER-");
    std::fs::write(env.path("b2.csv"), b_text).unwrap();
    let first = spawn_ingest(&env, &store, &a);
    let second = spawn_ingest(&env, &store, &env.path("b2.csv"));
    for child in [first, second] {
        let out = Run::from(child.wait_with_output().unwrap());
        assert_eq!(out.success().stdout(), "features: read 20000, loaded 20000, replaced 0, rejected 0\n");
    }
    assert_eq!(
        csv_query(&env, &store, "SELECT count(*) AS n, count(DISTINCT feature_id) AS ids FROM features"),
        "n,ids\n40000,40000\n"
    );
}

#[test]
fn the_same_file_ingested_three_times_at_once_into_an_empty_table_keeps_one_row_per_key() {
    // The first load of an empty table is a plain append; it must not land twice when other
    // ingests commit first (they then merge over it).
    let env = Env::new();
    let store = store(&env);
    let csv = big_csv(&env, "same", 5_000, 5);
    let children: Vec<_> = (0..3).map(|_| spawn_ingest(&env, &store, &csv)).collect();
    let mut summaries: Vec<String> =
        children.into_iter().map(|c| Run::from(c.wait_with_output().unwrap()).success().stdout()).collect();
    summaries.sort();
    assert_eq!(
        summaries,
        [
            "features: read 5000, loaded 0, replaced 5000, rejected 0\n",
            "features: read 5000, loaded 0, replaced 5000, rejected 0\n",
            "features: read 5000, loaded 5000, replaced 0, rejected 0\n",
        ]
    );
    assert_eq!(
        csv_query(&env, &store, "SELECT count(*) AS n, count(DISTINCT feature_id) AS ids FROM features"),
        "n,ids\n5000,5000\n"
    );
}

#[test]
fn the_first_load_is_written_sorted_by_shipped_at_in_small_row_groups() {
    let env = Env::new();
    let store = store(&env);
    // Rows in feature_id order, which is not the order of shipped_at.
    big_csv(&env, "unsorted", 3_000, 6);
    let csv = env.path("by-id.csv");
    env.run(&[
        "--data",
        env.path("unsorted-store").to_str().unwrap(),
        "-q",
        "query",
        "SELECT * FROM features ORDER BY feature_id DESC",
        "--output",
        csv.to_str().unwrap(),
    ])
    .success();
    env.run(&["--data", &store, "ingest", "features", csv.to_str().unwrap()]).success();
    assert_eq!(features_in_shipped_order(&env.path("store").join("features")), 3_000);
    // `debtlens sample` writes Delta tables the same way.
    let sample = env.path("sample");
    env.run(&["sample", "--out", sample.to_str().unwrap(), "--features", "3000", "--incidents", "10"]).success();
    assert_eq!(features_in_shipped_order(&sample.join("features")), 3_000);
}

#[test]
fn more_rows_than_a_row_group_are_dealt_over_files_each_sorted() {
    // 300,000 features make three 128Ki-row groups: one to each of three files (the fourth
    // would get the next), in the Delta table as in the plain-Parquet folder.
    let env = Env::new();
    for plain in [false, true] {
        let out = env.path(if plain { "plain" } else { "delta" });
        let mut args = vec!["sample", "--out", out.to_str().unwrap(), "--features", "300000", "--incidents", "10"];
        if plain {
            args.push("--plain-parquet");
        }
        env.run(&args).success();
        let folder = out.join("features");
        let files = std::fs::read_dir(&folder)
            .unwrap()
            .filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "parquet"))
            .count();
        assert_eq!(files, 3, "plain Parquet: {plain}");
        assert_eq!(features_in_shipped_order(&folder), 300_000, "plain Parquet: {plain}");
    }
}

/// Reads every Parquet file of a features table, checks that each records and keeps the order
/// by shipped_at (nulls last), and returns the rows read.
fn features_in_shipped_order(folder: &Path) -> usize {
    use datafusion::arrow::array::{Array, AsArray};
    use datafusion::arrow::datatypes::TimestampMicrosecondType;
    use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

    let files: Vec<_> = std::fs::read_dir(folder)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
        .collect();
    assert!(!files.is_empty(), "no Parquet files in {}", folder.display());
    let mut rows = 0;
    for path in files {
        let builder = ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(&path).unwrap()).unwrap();
        let shipped_at = builder.schema().index_of("shipped_at").unwrap() as i32;
        for group in builder.metadata().row_groups() {
            assert_eq!(group.sorting_columns().unwrap()[0].column_idx, shipped_at, "the order is recorded");
        }
        let mut previous: Option<i64> = None;
        let mut seen_null = false;
        for batch in builder.build().unwrap() {
            let batch = batch.unwrap();
            let column = batch.column_by_name("shipped_at").unwrap().as_primitive::<TimestampMicrosecondType>();
            for i in 0..column.len() {
                rows += 1;
                if column.is_null(i) {
                    seen_null = true;
                    continue;
                }
                assert!(!seen_null, "{}: a shipped feature after an unshipped one", path.display());
                let value = column.value(i);
                assert!(previous.is_none_or(|p| p <= value), "{}: row {rows} is out of order", path.display());
                previous = Some(value);
            }
        }
    }
    rows
}

#[test]
fn a_batch_boundary_inside_one_file_keeps_every_row() {
    // Rows are staged 64Ki at a time; 70,000 rows cross one boundary. (The speed and memory
    // figures for a million rows are measured by hand and belong in the benchmark.)
    let env = Env::new();
    let store = store(&env);
    let csv = big_csv(&env, "batches", 70_000, 4);
    let run = env.run(&["--data", &store, "ingest", "features", csv.to_str().unwrap()]);
    assert_eq!(run.success().stdout(), "features: read 70000, loaded 70000, replaced 0, rejected 0\n");
    assert_eq!(csv_query(&env, &store, "SELECT count(DISTINCT feature_id) AS n FROM features"), "n\n70000\n");
}

#[test]
fn line_numbers_count_physical_lines_with_lf_endings_too() {
    let env = Env::new();
    let store = store(&env);
    let csv = "feature_id,title,systems,estimated_weeks\nK1,\"Two\nlines\",api,1\n\nK2,Bad,api,zero\n";
    std::fs::write(env.path("lf.csv"), csv).unwrap();
    env.run(&["--data", &store, "ingest", "features", "lf.csv"]).fails_with(3);
    assert_eq!(csv_query(&env, &store, "SELECT line FROM rejected_rows"), "line\n5\n");
}

fn data(name: &str) -> String {
    format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn the_jira_preset_reads_a_jira_csv_export() {
    let env = Env::new();
    let store = store(&env);
    let run = env.run(&["--data", &store, "ingest", "features", &data("jira-export.csv"), "--map", "jira"]);
    run.fails_with(3);
    assert_eq!(run.stdout(), "features: read 4, loaded 3, replaced 0, rejected 1\n");
    assert!(run.stderr.contains("ignored columns that are not in features: Issue id, Status"), "{}", run.stderr);
    assert_eq!(
        csv_query(
            &env,
            &store,
            "SELECT feature_id, team, systems, work_type, estimated_weeks, actual_weeks, started_at, shipped_at FROM features ORDER BY 1"
        ),
        "feature_id,team,systems,work_type,estimated_weeks,actual_weeks,started_at,shipped_at\n\
         AUTH-101,identity,auth-service;admin-console,product,2.0,6.0,2026-09-03T09:30:00Z,2026-09-24T17:00:00Z\n\
         AUTH-102,identity,auth-service,quality,1.0,2.0,2026-09-10T10:00:00Z,2026-10-01T11:15:00Z\n\
         PAY-7,checkout,payment-flow,product,4.0,,2026-10-15T14:00:00Z,\n"
    );
    assert_eq!(
        csv_query(&env, &store, "SELECT line, column_name, reason FROM rejected_rows"),
        "line,column_name,reason\n5,estimated_weeks,estimated_weeks is required\n"
    );
}

#[test]
fn the_devlake_preset_reads_issues_and_incidents() {
    let env = Env::new();
    let store = store(&env);
    let run = env.run(&["--data", &store, "ingest", "features", &data("devlake-issues.csv"), "--map", "devlake"]);
    assert_eq!(run.success().stdout(), "features: read 3, loaded 3, replaced 0, rejected 0\n");
    assert_eq!(
        csv_query(
            &env,
            &store,
            "SELECT feature_id, systems, work_type, estimated_weeks, actual_weeks FROM features ORDER BY 1"
        ),
        "feature_id,systems,work_type,estimated_weeks,actual_weeks\n\
         AUTH-101,auth-service;admin-console,product,2.0,6.0\n\
         AUTH-102,auth-service,quality,1.0,2.0\n\
         PAY-7,payment-flow,product,4.0,\n"
    );
    let run = env.run(&["--data", &store, "ingest", "incidents", &data("devlake-incidents.csv"), "--map", "devlake"]);
    run.fails_with(3);
    assert_eq!(
        csv_query(&env, &store, "SELECT incident_id, system, severity, resolved_at FROM incidents ORDER BY 1"),
        "incident_id,system,severity,resolved_at\nINC-1,auth-service,sev1,2026-10-01T03:00:00Z\nINC-2,search-indexer,sev3,\n"
    );
    assert_eq!(
        csv_query(&env, &store, "SELECT line, column_name, raw_value FROM rejected_rows"),
        "line,column_name,raw_value\n4,severity,Whenever\n"
    );
}

#[test]
fn a_mapping_file_renames_converts_and_is_checked() {
    let env = Env::new();
    let store = store(&env);
    std::fs::write(
        env.path("map.toml"),
        "table = \"features\"\n[columns.feature_id]\nfrom = \"Key\"\n[columns.title]\nfrom = \"Name\"\n\
         [columns.systems]\nfrom = \"Areas\"\nsplit = \"|\"\n[columns.estimated_weeks]\nfrom = \"Est (days)\"\nunit = \"days_to_weeks\"\n\
         [columns.work_type]\nvalue = \"quality\"\n",
    )
    .unwrap();
    std::fs::write(env.path("in.csv"), "Key,Name,Areas,Est (days)\nX-1,Cleanup,api | db,10\n").unwrap();
    let run = env.run(&["--data", &store, "ingest", "features", "in.csv", "--map", "map.toml"]);
    assert_eq!(run.success().stdout(), "features: read 1, loaded 1, replaced 0, rejected 0\n");
    assert_eq!(
        csv_query(&env, &store, "SELECT feature_id, title, systems, work_type, estimated_weeks FROM features"),
        "feature_id,title,systems,work_type,estimated_weeks\nX-1,Cleanup,api;db,quality,2.0\n"
    );
    std::fs::write(env.path("bad.toml"), "[columns.title]\nform = \"Name\"\n").unwrap();
    let run = env.run(&["--data", &store, "ingest", "features", "in.csv", "--map", "bad.toml"]);
    run.fails_with(2);
    assert!(run.stderr.contains("form"), "{}", run.stderr);
    let run = env.run(&["--data", &store, "ingest", "capacity", "in.csv", "--map", "jira"]);
    run.fails_with(2);
    assert!(run.stderr.contains("for features"), "{}", run.stderr);
}

mod random_bytes {
    //! The CSV reader over random input, through the library (no process per case): it never
    //! panics, and every row it reads is accounted for, loaded, replaced or rejected; when it
    //! refuses the whole file, nothing reaches the table.

    use datafusion::arrow::array::AsArray;
    use datafusion::arrow::datatypes::Int64Type;
    use debtlens::Store;
    use debtlens::ingest::{IngestOptions, ingest};
    use debtlens::schema::Table;
    use proptest::prelude::*;

    use super::HEADER;

    /// Bytes that look like CSV often enough to reach the row rules: fields of a good row,
    /// separators, quotes, line ends, NULs, bytes that are not UTF-8.
    fn body() -> impl Strategy<Value = Vec<u8>> {
        let token = prop_oneof![
            Just(b",".to_vec()),
            Just(b"\"".to_vec()),
            Just(b"\n".to_vec()),
            Just(b"\r\n".to_vec()),
            Just(b"F1,t,core,api,product,1,2,0,,2026-01-01,2026-02-01,yes,x\n".to_vec()),
            Just(b"F2,t,core,api;web,,2,1,1,legacy-code,,2026-03-01,no,x\n".to_vec()),
            Just(b"2026-13-45".to_vec()),
            Just(b"\x00".to_vec()),
            Just(b"\xff\xfe".to_vec()),
            Just("\u{1F680}é".as_bytes().to_vec()),
            "[a-z0-9;:. -]{1,6}".prop_map(String::into_bytes),
            prop::collection::vec(any::<u8>(), 1..8),
        ];
        prop::collection::vec(token, 0..40).prop_map(|t| t.concat())
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 24, failure_persistence: None, ..ProptestConfig::default() })]

        #[test]
        fn the_csv_reader_accounts_for_every_row_of_random_bytes(with_header in any::<bool>(), bytes in body()) {
            let dir = tempfile::tempdir().unwrap();
            let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
            let store = Store::at(dir.path().join("store").to_str().unwrap()).unwrap();
            let file = dir.path().join("random.csv");
            let mut text = if with_header { format!("{HEADER}\n").into_bytes() } else { Vec::new() };
            text.extend_from_slice(&bytes);
            std::fs::write(&file, &text).unwrap();
            let options = IngestOptions { format: None, progress: false, mapping: None, delimiter: None };
            let outcome = runtime.block_on(async {
                store.create().await.unwrap();
                ingest(&store, Table::Features, std::slice::from_ref(&file), &options).await
            });
            let rows = runtime.block_on(async {
                let engine = debtlens::Engine::open(store.clone(), Default::default()).await.unwrap();
                engine.session().execute("SELECT count(*) FROM features").await.unwrap()
            });
            let in_table = rows.batches[0].column(0).as_primitive::<Int64Type>().value(0) as u64;
            match outcome {
                Ok(s) => {
                    prop_assert_eq!(s.read, s.loaded + s.replaced + s.rejected, "{:?}", s);
                    prop_assert_eq!(in_table, s.loaded, "{:?}", s);
                }
                Err(e) => {
                    // Refused whole: said where, and the table is untouched.
                    prop_assert!(e.to_string().contains("random.csv"), "{}", e);
                    prop_assert_eq!(in_table, 0);
                }
            }
        }
    }
}

/// Issue 21, 3: a header with both `feature_id` and `Feature_ID` loaded 1 of 2,000 rows with an
/// empty id, exit 0; a repeated `title` blanked every title. A repeated scalar column now refuses
/// the file, saying where; a repeated list column still feeds the list.
#[test]
fn a_repeated_header_column_refuses_the_file_instead_of_losing_rows() {
    let env = Env::new();
    let store = store(&env);
    let mut text = String::from("feature_id,title,team,systems,estimated_weeks,Feature_ID\n");
    for i in 0..50 {
        text.push_str(&format!("R-{i},T {i},core,api,1,X-{i}\n"));
    }
    std::fs::write(env.path("twice.csv"), &text).unwrap();
    let run = env.run(&["--data", &store, "ingest", "features", "twice.csv"]);
    run.fails_with(2);
    assert!(
        run.stderr.contains(
            "twice.csv:1:6: the header names `feature_id` twice (`feature_id` in column 1 and `Feature_ID` in column 6)"
        ),
        "{}",
        run.stderr
    );
    assert_eq!(csv_query(&env, &store, "SELECT count(*) AS n FROM features"), "n\n0\n");

    std::fs::write(env.path("title.csv"), "feature_id,title,title,team,systems,estimated_weeks\nR-1,a,b,core,api,1\n")
        .unwrap();
    let run = env.run(&["--data", &store, "ingest", "features", "title.csv"]);
    run.fails_with(2);
    assert!(run.stderr.contains("title.csv:1:3: the header names `title` twice"), "{}", run.stderr);

    // A list column may repeat: each occurrence adds to the list.
    std::fs::write(
        env.path("lists.csv"),
        "feature_id,title,team,systems,systems,estimated_weeks\nL-1,a,core,api,web,1\n",
    )
    .unwrap();
    env.run(&["--data", &store, "ingest", "features", "lists.csv"]).success();
    assert_eq!(
        csv_query(&env, &store, "SELECT array_to_string(systems, ';') AS s FROM features WHERE feature_id = 'L-1'"),
        "s\napi;web\n"
    );
}

/// Issue 21, 10: `"systems": [{"name": "auth-service"}]` loaded the object's JSON text as a system
/// name, exit 0. A cell holding an object (or a list of objects) is now a rejected row.
#[test]
fn json_objects_inside_cells_are_rejected_not_loaded_as_text() {
    let env = Env::new();
    let store = store(&env);
    std::fs::write(
        env.path("nested.ndjson"),
        "{\"feature_id\":\"J-1\",\"title\":\"ok\",\"systems\":[\"api\"],\"estimated_weeks\":1}\n\
         {\"feature_id\":\"J-2\",\"title\":\"obj\",\"systems\":[{\"name\":\"auth-service\"}],\"estimated_weeks\":1}\n\
         {\"feature_id\":\"J-3\",\"title\":{\"en\":\"t\"},\"systems\":[\"api\"],\"estimated_weeks\":1}\n",
    )
    .unwrap();
    let run = env.run(&["--data", &store, "ingest", "features", "nested.ndjson"]);
    run.fails_with(3);
    assert_eq!(run.stdout(), "features: read 3, loaded 1, replaced 0, rejected 2\n");
    let reasons = csv_query(&env, &store, "SELECT line, column_name, reason FROM rejected_rows ORDER BY line");
    assert!(reasons.contains("2,systems,\"`systems` is a list holding an object or a list"), "{reasons}");
    assert!(reasons.contains("3,title,\"`title` is an object"), "{reasons}");
    assert_eq!(csv_query(&env, &store, "SELECT feature_id FROM features"), "feature_id\nJ-1\n");
}

/// Issue 21, 11: with a data file deleted from under a Delta table, views failed but
/// `SELECT count(*) FROM features` answered from the log's statistics, exit 0. Opening the store
/// now names the missing file, for every statement.
#[test]
fn a_data_file_deleted_from_under_a_table_is_reported_at_open() {
    let env = Env::new();
    let store = env.sample_store("store", 500, &["--seed", "2"]);
    let folder = store.join("features");
    let file = std::fs::read_dir(&folder)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "parquet"))
        .expect("a data file");
    std::fs::remove_file(&file).unwrap();
    let run = env.run(&["--data", store.to_str().unwrap(), "query", "SELECT count(*) FROM features"]);
    run.fails_with(1);
    let name = file.file_name().unwrap().to_str().unwrap();
    assert!(run.stderr.contains("table `features`") && run.stderr.contains(name), "{}", run.stderr);
    assert!(run.stderr.contains("removed from outside debtlens"), "{}", run.stderr);
}

/// The backlog's rows are checked like the other tables': no systems, a zero or negative
/// estimate, an unknown work type, a priority or planned start that is not one are refused with
/// their line; a key repeated in the input keeps its last row; the Jira preset maps an export of
/// unresolved issues.
#[test]
fn backlog_rows_are_validated_and_upserted_by_item_id() {
    let env = Env::new();
    let store = store(&env);
    std::fs::write(
        env.path("backlog.csv"),
        "item_id,title,team,systems,estimated_weeks,priority,planned_start,work_type\n\
         P1,Login rework,identity,auth-service;api-gateway,2,1,2027-01-04,product\n\
         P2,No systems,identity, ; ,1,2,,product\n\
         P3,Zero estimate,identity,auth-service,0,3,,product\n\
         P4,Unknown type,identity,auth-service,1,4,,chore\n\
         P5,Bad priority,identity,auth-service,1,first,,product\n\
         P6,Bad start,identity,auth-service,1,6,next week,\n\
         P1,Login rework (re-estimated),identity,auth-service,3,1,,QUALITY\n\
         P7,Ünïcode ✓,,légacy-crm,0.5,,,\n",
    )
    .unwrap();
    let run = env.run(&["--data", &store, "ingest", "backlog", "backlog.csv"]);
    run.fails_with(3);
    assert_eq!(run.stdout(), "backlog: read 8, loaded 2, replaced 1, rejected 5\n");
    let loaded = csv_query(
        &env,
        &store,
        "SELECT item_id, title, team, systems, estimated_weeks, priority, planned_start, work_type FROM backlog ORDER BY item_id",
    );
    assert_eq!(
        loaded,
        "item_id,title,team,systems,estimated_weeks,priority,planned_start,work_type\n\
         P1,Login rework (re-estimated),identity,auth-service,3.0,1,,quality\n\
         P7,Ünïcode ✓,,légacy-crm,0.5,,,product\n"
    );
    let rejected = csv_query(
        &env,
        &store,
        "SELECT line, column_name, raw_value, reason FROM rejected_rows WHERE table_name = 'backlog' ORDER BY line",
    );
    assert_eq!(
        rejected,
        "line,column_name,raw_value,reason\n\
         3,systems, ; ,systems needs at least one value\n\
         4,estimated_weeks,0,estimated_weeks must be greater than 0\n\
         5,work_type,chore,\"work_type must be one of product, quality\"\n\
         6,priority,first,priority is not a whole number\n\
         7,planned_start,next week,planned_start is not a date (YYYY-MM-DD)\n"
    );

    // A Jira export of unresolved issues through the preset.
    std::fs::write(
        env.path("jira.csv"),
        "Issue key,Summary,Team,Component/s,Component/s,Original Estimate,Priority,Issue Type\n\
         AUTH-9,SSO for partners,identity,auth-service,api-gateway,288000,Highest,Story\n\
         AUTH-10,Token cleanup,identity,auth-service,,144000,Low,Tech Debt\n",
    )
    .unwrap();
    env.run(&["--data", &store, "ingest", "backlog", "jira.csv", "--map", "jira"]).success();
    let jira = csv_query(
        &env,
        &store,
        "SELECT item_id, systems, estimated_weeks, priority, work_type FROM backlog WHERE item_id LIKE 'AUTH%' ORDER BY item_id",
    );
    assert_eq!(
        jira,
        "item_id,systems,estimated_weeks,priority,work_type\n\
         AUTH-10,auth-service,1.0,4,quality\n\
         AUTH-9,auth-service;api-gateway,2.0,1,product\n"
    );
}

/// A store made before the backlog existed (no `backlog` folder) opens with an empty backlog.
#[test]
fn a_store_without_a_backlog_folder_has_an_empty_backlog() {
    let env = Env::new();
    let store = store(&env);
    std::fs::remove_dir_all(env.path("store").join("backlog")).unwrap();
    assert_eq!(csv_query(&env, &store, "SELECT count(*) AS n FROM backlog"), "n\n0\n");
    assert_eq!(csv_query(&env, &store, "SELECT count(*) AS n FROM backlog_forecast"), "n\n0\n");
}

/// Issue 24: GitLab's deployments API JSON, nested as GitLab sends it, through the `gitlab`
/// preset; the system it does not carry given with `--set`.
#[test]
fn the_gitlab_preset_reads_nested_deployments_json_with_the_system_set() {
    let env = Env::new();
    let store = store(&env);
    let export = data("gitlab-deployments.json");
    let run = env.run(&["--data", &store, "ingest", "deployments", &export, "--map", "gitlab"]);
    run.fails_with(2);
    assert!(run.stderr.contains("missing required column `system`"), "{}", run.stderr);
    assert!(run.stderr.contains("--set COLUMN=VALUE"), "{}", run.stderr);
    let run = env.run(&[
        "--data",
        &store,
        "ingest",
        "deployments",
        &export,
        "--map",
        "gitlab",
        "--set",
        "system=checkout-api",
    ]);
    run.fails_with(3);
    assert_eq!(run.stdout(), "deployments: read 3, loaded 2, replaced 0, rejected 1\n");
    assert_eq!(
        csv_query(
            &env,
            &store,
            "SELECT deployment_id, system, deployed_at, environment, status, commit_shas, first_commit_at FROM deployments \
             ORDER BY 1"
        ),
        "deployment_id,system,deployed_at,environment,status,commit_shas,first_commit_at\n\
         42,checkout-api,2026-10-11T11:34:36.104Z,production,success,a91957a858320c0e17f3a0eca7cfacbff50ea29a,2026-10-11T07:28:26Z\n\
         43,checkout-api,2026-10-12T08:05:00Z,production,failure,b5d7f7e0a1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6,2026-10-12T07:00:00Z\n"
    );
    // The running deployment is kept with its reason; nested lists no column reads are ignored.
    assert_eq!(
        csv_query(&env, &store, "SELECT line, column_name, raw_value, reason FROM rejected_rows"),
        "line,column_name,raw_value,reason\n3,status,running,\"status must be one of success, failure\"\n"
    );
    // A constant for a column the table does not have is a usage error.
    let run = env.run(&["--data", &store, "ingest", "deployments", &export, "--map", "gitlab", "--set", "sistem=x"]);
    run.fails_with(2);
    assert!(run.stderr.contains("deployments has no column `sistem`"), "{}", run.stderr);
}

/// Issue 24: GitHub's deployments with their latest status (GraphQL nodes), one per line.
#[test]
fn the_github_preset_reads_deployments_with_their_latest_status() {
    let env = Env::new();
    let store = store(&env);
    let export = data("github-deployments.ndjson");
    let run =
        env.run(&["--data", &store, "ingest", "deployments", &export, "--map", "github", "--set", "system=web-app"]);
    run.fails_with(3);
    assert_eq!(run.stdout(), "deployments: read 3, loaded 2, replaced 0, rejected 1\n");
    assert_eq!(
        csv_query(
            &env,
            &store,
            "SELECT deployment_id, deployed_at, status, first_commit_at FROM deployments ORDER BY 1"
        ),
        "deployment_id,deployed_at,status,first_commit_at\n\
         1391023456,2026-10-20T09:03:45Z,success,2026-10-19T16:42:10Z\n\
         1391029999,2026-10-21T10:02:00Z,failure,2026-10-21T08:00:00Z\n"
    );
    // A deployment without a status yet has no time it reached production.
    assert_eq!(
        csv_query(&env, &store, "SELECT line, column_name, reason FROM rejected_rows"),
        "line,column_name,reason\n3,deployed_at,deployed_at is required\n"
    );
}
