//! The real binary, end to end: the built-in sample, every output format read back by a real
//! parser, exit codes, the read-only guard, and stores written by other tools.

use std::io::Cursor;
use std::sync::Arc;

use bytes::Bytes;
use datafusion::arrow::array::{AsArray, RecordBatch};
use datafusion::arrow::csv;
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::arrow::ipc::reader::FileReader;
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use debtlens::schema::Table;

use crate::util::{Env, Run, snapshot};

/// Every view of data-model.md and of the issues since.
const CORE_VIEWS: [&str; 18] = [
    "feature_systems",
    "slowdown_by_system",
    "system_tax",
    "delay_by_system",
    "delay_by_reason",
    "delay_by_quarter",
    "incident_impact",
    "capacity_efficiency",
    "capacity_split",
    "debt_cost",
    "system_health",
    "dod_compliance",
    "estimation_accuracy",
    "velocity_trend",
    "delay_cost",
    "dod_impact",
    "delivery_performance",
    "deployment_incidents",
];

fn read_csv(bytes: &[u8]) -> Vec<RecordBatch> {
    let (schema, _) =
        csv::reader::Format::default().with_header(true).infer_schema(Cursor::new(bytes), None).expect("csv schema");
    csv::ReaderBuilder::new(Arc::new(schema))
        .with_header(true)
        .build(Cursor::new(bytes))
        .expect("csv reader")
        .collect::<Result<Vec<_>, _>>()
        .expect("csv rows")
}

fn rows(batches: &[RecordBatch]) -> usize {
    batches.iter().map(|b| b.num_rows()).sum()
}

#[test]
fn the_built_in_sample_answers_with_no_store() {
    let env = Env::new();
    let run = env.run(&["view", "slowdown_by_system", "--format", "csv"]);
    run.success();
    assert!(run.stderr.contains("built-in sample"), "{}", run.stderr);
    assert!(run.stderr.contains("window: 90 days"), "{}", run.stderr);
    let batches = read_csv(&run.stdout);
    assert!(rows(&batches) >= 12, "{}", run.stdout());
    let first = batches[0].column_by_name("system").unwrap().as_string::<i32>().value(0).to_string();
    assert_eq!(first, "auth-service");
    let ratio = batches[0]
        .column_by_name("slowdown_ratio")
        .unwrap()
        .as_primitive::<datafusion::arrow::datatypes::Float64Type>()
        .value(0);
    assert!((2.7..3.7).contains(&ratio), "auth-service ratio {ratio}");
}

#[test]
fn the_table_format_is_the_default_and_counts_rows() {
    let env = Env::new();
    let run = env.run(&["view", "slowdown_by_system"]);
    run.success();
    let out = run.stdout();
    assert!(out.lines().nth(1).unwrap().contains("system") && out.contains("| auth-service"), "{out}");
    assert!(run.stderr.lines().any(|l| l.ends_with(" rows")), "{}", run.stderr);
}

#[test]
fn every_output_format_parses_and_output_files_match_stdout() {
    let env = Env::new();
    let view = "system_health";
    let expected = rows(&read_csv(&env.run(&["view", view, "--format", "csv"]).success().stdout));
    assert!(expected >= 12);

    let tsv = env.run(&["view", view, "--format", "tsv"]);
    let tsv = tsv.success().stdout();
    assert_eq!(tsv.lines().count(), expected + 1);
    assert!(tsv.lines().all(|l| l.split('\t').count() == 20), "{tsv}");

    let json: serde_json::Value =
        serde_json::from_slice(&env.run(&["view", view, "--format", "json"]).success().stdout).unwrap();
    let array = json.as_array().unwrap();
    assert_eq!(array.len(), expected);
    assert_eq!(array[0].as_object().unwrap().len(), 20, "nulls are written explicitly");

    let ndjson = env.run(&["view", view, "--format", "ndjson"]);
    let lines: Vec<serde_json::Value> =
        ndjson.success().stdout().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), expected);

    let md = env.run(&["view", view, "--format", "markdown"]);
    assert_eq!(md.success().stdout().lines().count(), expected + 2);

    let parquet = env.run(&["view", view, "--format", "parquet"]);
    let reader = ParquetRecordBatchReaderBuilder::try_new(Bytes::from(parquet.success().stdout.clone())).unwrap();
    let schema = reader.schema().clone();
    assert_eq!(schema.field_with_name("features").unwrap().data_type(), &DataType::Int64);
    assert_eq!(schema.field_with_name("cost").unwrap().data_type(), &DataType::Float64);
    assert_eq!(rows(&reader.build().unwrap().collect::<Result<Vec<_>, _>>().unwrap()), expected);

    let arrow = env.run(&["view", view, "--format", "arrow"]);
    let reader = FileReader::try_new(Cursor::new(arrow.success().stdout.clone()), None).unwrap();
    assert_eq!(rows(&reader.collect::<Result<Vec<_>, _>>().unwrap()), expected);

    // --output writes exactly what stdout gets, and takes the format from the extension.
    for (format, file) in [("csv", "out.csv"), ("json", "out.json"), ("parquet", "out.parquet")] {
        let stdout = env.run(&["view", view, "--format", format]).success().stdout.clone();
        env.run(&["view", view, "--output", file]).success();
        assert_eq!(std::fs::read(env.path(file)).unwrap(), stdout, "{format}");
    }
    let leftovers = temporary_files(env.dir.path());
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
}

/// The temporary files of atomic writes (`*.tmp`) left in `dir`.
fn temporary_files(dir: &std::path::Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect()
}

#[test]
fn a_query_that_fails_while_running_leaves_the_output_file_as_it_was() {
    let env = Env::new();
    let store = env.sample_store("store", 300, &[]);
    std::fs::write(env.path("out.csv"), "before\n").unwrap();
    // Planning succeeds; the cast fails on the first row, after the output file was opened.
    let run = env.run(&[
        "--data",
        store.to_str().unwrap(),
        "query",
        "SELECT feature_id, CAST(title AS BIGINT) AS n FROM features",
        "--output",
        "out.csv",
    ]);
    run.fails_with(1);
    assert!(run.stderr.contains("Cannot cast string"), "{}", run.stderr);
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    assert_eq!(std::fs::read_to_string(env.path("out.csv")).unwrap(), "before\n");
    let leftovers = temporary_files(env.dir.path());
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
}

#[test]
fn a_large_result_streams_out_whole_in_every_streaming_format() {
    let env = Env::new();
    // More rows than one batch (8192), so that the writers see several.
    let store = env.sample_store("store", 20_000, &[]);
    let store = store.to_str().unwrap();
    let csv = env.run(&["--data", store, "view", "feature_systems", "--format", "csv"]);
    let csv = csv.success().stdout();
    let n = csv.lines().count() - 1;
    assert!(n > 20_000, "{n}");
    assert_eq!(csv.lines().filter(|l| l.starts_with("feature_id,")).count(), 1, "one header");
    let ndjson = env.run(&["--data", store, "view", "feature_systems", "--format", "ndjson"]);
    assert_eq!(ndjson.success().stdout().lines().count(), n);
    let json: serde_json::Value =
        serde_json::from_slice(&env.run(&["--data", store, "view", "feature_systems", "--format", "json"]).stdout)
            .unwrap();
    assert_eq!(json.as_array().unwrap().len(), n);
    env.run(&["--data", store, "view", "feature_systems", "--output", "all.parquet"]).success();
    let bytes = Bytes::from(std::fs::read(env.path("all.parquet")).unwrap());
    let reader = ParquetRecordBatchReaderBuilder::try_new(bytes).unwrap();
    assert_eq!(rows(&reader.build().unwrap().collect::<Result<Vec<_>, _>>().unwrap()), n);
    let table = env.run(&["--data", store, "view", "feature_systems", "--max-rows", "5"]);
    assert!(table.success().stderr.contains(&format!("5 of {n} rows shown")), "{}", table.stderr);
}

#[test]
fn max_rows_limits_only_the_table() {
    let env = Env::new();
    let table = env.run(&["view", "feature_systems", "--max-rows", "5"]);
    assert_eq!(table.success().stdout().lines().filter(|l| l.starts_with("| FEAT-")).count(), 5);
    assert!(table.stderr.contains("5 of "), "{}", table.stderr);
    let csv = env.run(&["view", "feature_systems", "--max-rows", "5", "--format", "csv"]);
    assert!(csv.success().stdout().lines().count() > 2000);
}

#[test]
fn views_lists_every_view_with_its_question() {
    let env = Env::new();
    let run = env.run(&["views", "--format", "json"]);
    let listed: serde_json::Value = serde_json::from_slice(&run.success().stdout).unwrap();
    for view in CORE_VIEWS {
        let entry = listed.as_array().unwrap().iter().find(|v| v["view"] == view).unwrap_or_else(|| panic!("{view}"));
        assert!(entry["description"].as_str().unwrap().ends_with('?'), "{entry}");
        assert!(!entry["columns"].as_str().unwrap().is_empty());
    }
    let slowdown = listed.as_array().unwrap().iter().find(|v| v["view"] == "slowdown_by_system").unwrap();
    assert_eq!(
        slowdown["columns"],
        "system, features, slowdown_ratio, weighted_slowdown, total_delay_days, extra_weeks, ratio_low, ratio_high"
    );
}

#[test]
fn an_unknown_view_exits_2_with_the_nearest_names() {
    let env = Env::new();
    let run = env.run(&["view", "slowdown_by_sytem"]);
    run.fails_with(2);
    assert!(run.stderr.contains("unknown view `slowdown_by_sytem`"), "{}", run.stderr);
    assert!(run.stderr.contains("`slowdown_by_system`"), "{}", run.stderr);
}

#[test]
fn writes_are_refused_and_change_nothing() {
    let env = Env::new();
    let store = env.sample_store("store", 200, &[]);
    let before = snapshot(&store);
    let store_arg = store.to_str().unwrap();
    let target = env.path("copied.csv");
    let copy = format!("COPY features TO '{}'", target.display());
    for sql in [
        "DROP TABLE features",
        copy.as_str(),
        "INSERT INTO features SELECT * FROM features",
        "CREATE TABLE t AS SELECT 1",
        "CREATE VIEW v AS SELECT 1",
        "SET datafusion.execution.batch_size = 1",
        "CREATE EXTERNAL TABLE x STORED AS CSV LOCATION '/etc/passwd'",
    ] {
        let run = env.run(&["--data", store_arg, "query", sql]);
        assert_ne!(run.code, 0, "{sql} was accepted");
        assert!(run.stderr.contains("read-only"), "{sql}: {}", run.stderr);
    }
    assert!(!target.exists(), "COPY wrote a file");
    assert_eq!(snapshot(&store), before, "the store changed");
    let count = env.run(&["--data", store_arg, "query", "SELECT count(*) AS n FROM features", "--format", "csv"]);
    assert_eq!(count.success().stdout(), "n\n200\n");
}

#[test]
fn file_reading_table_functions_are_not_enabled() {
    let env = Env::new();
    for sql in ["SELECT * FROM read_csv('/etc/passwd')", "SELECT * FROM '/etc/passwd'"] {
        let run = env.run(&["query", sql]);
        run.fails_with(1);
        assert!(!run.stdout().contains("root"), "{sql}");
    }
}

#[test]
fn a_script_runs_every_statement_and_names_the_one_that_fails() {
    let env = Env::new();
    std::fs::write(
        env.path("q.sql"),
        "-- two good statements, then a bad one\nSELECT 1 AS a;\nSELECT 2 AS b;\n\nSELECT nope\nFROM features;\n",
    )
    .unwrap();
    let run = env.run(&["query", "-f", "q.sql", "--format", "csv"]);
    run.fails_with(1);
    assert_eq!(run.stdout(), "a\n1\nb\n2\n");
    assert!(run.stderr.contains("q.sql, statement 3 (line 5)"), "{}", run.stderr);
    assert!(run.stderr.contains("nope"), "{}", run.stderr);
    env.run(&["query", "-f", "missing.sql"]).fails_with(2);
}

#[test]
fn a_store_with_a_wrong_column_type_exits_2_naming_it() {
    let env = Env::new();
    let store = env.path("bad");
    env.run(&["sample", "--out", store.to_str().unwrap(), "--features", "50", "--incidents", "10", "--plain-parquet"])
        .success();
    // Rewrite features with estimated_weeks as text, as a careless export would.
    let fields: Vec<Field> = Table::Features
        .schema()
        .fields()
        .iter()
        .map(|f| {
            if f.name() == "estimated_weeks" {
                Field::new("estimated_weeks", DataType::Utf8, true)
            } else {
                f.as_ref().clone()
            }
        })
        .collect();
    let schema = Arc::new(Schema::new(fields));
    let path = store.join("features/part-00000.parquet");
    std::fs::remove_file(&path).unwrap();
    let mut writer = ArrowWriter::try_new(std::fs::File::create(&path).unwrap(), Arc::clone(&schema), None).unwrap();
    writer.write(&RecordBatch::new_empty(schema)).unwrap();
    writer.close().unwrap();

    let run = env.run(&["--data", store.to_str().unwrap(), "view", "slowdown_by_system"]);
    run.fails_with(2);
    for needle in ["features", "estimated_weeks", "Float64", "Utf8"] {
        assert!(run.stderr.contains(needle), "missing {needle}: {}", run.stderr);
    }
}

#[test]
fn a_store_without_a_table_exits_2_naming_it() {
    let env = Env::new();
    let store = env.sample_store("store", 20, &[]);
    std::fs::remove_dir_all(store.join("capacity")).unwrap();
    let run = env.run(&["--data", store.to_str().unwrap(), "views"]);
    run.fails_with(2);
    assert!(run.stderr.contains("no `capacity` table"), "{}", run.stderr);
}

#[test]
fn plain_parquet_and_delta_stores_give_the_same_views() {
    let env = Env::new();
    let delta = env.sample_store("delta", 400, &["--seed", "9"]);
    let plain = env.sample_store("plain", 400, &["--seed", "9", "--plain-parquet"]);
    assert!(delta.join("features/_delta_log").is_dir());
    assert!(!plain.join("features/_delta_log").exists());
    for view in CORE_VIEWS {
        let a = env.run(&["--data", delta.to_str().unwrap(), "view", view, "--format", "csv"]);
        let b = env.run(&["--data", plain.to_str().unwrap(), "view", view, "--format", "csv"]);
        assert_eq!(a.success().stdout(), b.success().stdout(), "{view}");
        assert!(a.stdout().lines().count() > 1, "{view} is empty");
    }
}

#[test]
fn init_creates_an_empty_store_that_answers_and_refuses_to_overwrite() {
    let env = Env::new();
    env.run(&["init", "store"]).success();
    for table in ["features", "incidents", "capacity"] {
        assert!(env.path("store").join(table).join("_delta_log").is_dir(), "{table}");
    }
    let run = env.run(&["--data", "store", "view", "slowdown_by_system", "--format", "csv"]);
    assert_eq!(
        run.success().stdout(),
        "system,features,slowdown_ratio,weighted_slowdown,total_delay_days,extra_weeks,ratio_low,ratio_high\n"
    );
    let tax = env.run(&["--data", "store", "view", "system_tax", "--format", "csv"]);
    assert_eq!(
        tax.success().stdout(),
        "system,features,solo_features,tax,tax_low,tax_high,naive_ratio,attributed_extra_weeks,confidence\n"
    );
    assert!(run.stderr.contains("no shipped features"), "{}", run.stderr);
    env.run(&["init", "store"]).fails_with(2);
}

#[test]
fn the_store_comes_from_the_environment_then_the_default_folder() {
    let env = Env::new();
    env.run(&["init", "debtlens-data"]).success();
    let run = env.run(&["query", "SELECT count(*) AS n FROM features", "--format", "csv"]);
    assert_eq!(run.success().stdout(), "n\n0\n");
    assert!(!run.stderr.contains("sample"), "{}", run.stderr);

    let other = env.sample_store("other", 30, &[]);
    let run = debtlens_with_env(&env, &other, &["query", "SELECT count(*) AS n FROM features", "--format", "csv"]);
    assert_eq!(run.success().stdout(), "n\n30\n");
}

fn debtlens_with_env(env: &Env, store: &std::path::Path, args: &[&str]) -> crate::util::Run {
    crate::util::Run::from(env.cmd().env("DEBTLENS_DATA", store).args(args).output().unwrap())
}

#[test]
fn as_of_and_window_days_change_the_window_and_say_so() {
    let env = Env::new();
    let run = env.run(&["--as-of", "2026-06-30", "--window-days", "30", "view", "analysis_window", "--format", "csv"]);
    assert_eq!(
        run.success().stdout(),
        "window_start,as_of,window_days\n2026-05-31T23:59:59.999999Z,2026-06-30T23:59:59.999999Z,30\n"
    );
    assert!(run.stderr.contains("window: 30 days"), "{}", run.stderr);
    let not_windowed = env.run(&["view", "delay_by_quarter", "--format", "csv"]);
    assert!(!not_windowed.success().stderr.contains("window:"), "{}", not_windowed.stderr);
    env.run(&["--as-of", "yesterday", "views"]).fails_with(2);
}

#[test]
fn a_closed_pipe_ends_quietly() {
    use std::io::Read;
    use std::process::Stdio;
    let env = Env::new();
    let mut child = env
        .cmd()
        .args(["view", "feature_systems", "--format", "csv"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut first = [0u8; 16];
    stdout.read_exact(&mut first).unwrap();
    drop(stdout);
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{:?}", out.status);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("error") && !stderr.contains("panicked"), "{stderr}");
}

#[test]
fn the_sample_is_deterministic_and_matches_sample_data() {
    let env = Env::new();
    let built_in = env.run(&["query", "SELECT * FROM features ORDER BY feature_id", "--format", "csv"]);
    let regenerated = env.path("again");
    env.run(&[
        "sample",
        "--out",
        regenerated.to_str().unwrap(),
        "--features",
        "2000",
        "--incidents",
        "3000",
        "--seed",
        "42",
    ])
    .success();
    let fresh = env.run(&[
        "--data",
        regenerated.to_str().unwrap(),
        "query",
        "SELECT * FROM features ORDER BY feature_id",
        "--format",
        "csv",
    ]);
    assert_eq!(
        built_in.success().stdout(),
        fresh.success().stdout(),
        "sample-data/ is not what `debtlens sample` makes"
    );
    let backlog = "SELECT * FROM backlog ORDER BY item_id";
    let built_in = env.run(&["query", backlog, "--format", "csv"]);
    let fresh = env.run(&["--data", regenerated.to_str().unwrap(), "query", backlog, "--format", "csv"]);
    assert_eq!(built_in.success().stdout(), fresh.success().stdout(), "sample-data/backlog/");
    assert_eq!(built_in.stdout().lines().count(), 49, "48 items and the header");
}

/// Rewrites every Parquet file of a plain store with the physical types another tool might
/// choose: large strings, lists whose element is called `element`, nanosecond timestamps with no
/// time zone, 32-bit integers.
fn rewrite_as_another_tool(store: &std::path::Path) {
    use datafusion::arrow::compute::cast;
    use datafusion::arrow::datatypes::TimeUnit;
    for table in Table::ALL {
        let path = store.join(table.name()).join("part-00000.parquet");
        let bytes = Bytes::from(std::fs::read(&path).unwrap());
        let batches: Vec<RecordBatch> = ParquetRecordBatchReaderBuilder::try_new(bytes)
            .unwrap()
            .build()
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let foreign = |t: &DataType| match t {
            DataType::Utf8 => DataType::LargeUtf8,
            DataType::List(_) => DataType::LargeList(Arc::new(Field::new("element", DataType::LargeUtf8, true))),
            DataType::Timestamp(..) => DataType::Timestamp(TimeUnit::Nanosecond, None),
            DataType::Int64 => DataType::Int32,
            other => other.clone(),
        };
        let schema = Arc::new(Schema::new(
            table
                .schema()
                .fields()
                .iter()
                .map(|f| Field::new(f.name(), foreign(f.data_type()), true))
                .collect::<Vec<_>>(),
        ));
        let mut writer =
            ArrowWriter::try_new(std::fs::File::create(&path).unwrap(), Arc::clone(&schema), None).unwrap();
        for batch in batches {
            let columns =
                batch.columns().iter().zip(schema.fields()).map(|(c, f)| cast(c, f.data_type()).unwrap()).collect();
            writer.write(&RecordBatch::try_new(Arc::clone(&schema), columns).unwrap()).unwrap();
        }
        writer.close().unwrap();
    }
}

#[test]
fn a_parquet_export_with_other_physical_types_gives_the_same_views() {
    let env = Env::new();
    let ours = env.sample_store("ours", 300, &["--plain-parquet"]);
    let theirs = env.sample_store("theirs", 300, &["--plain-parquet"]);
    rewrite_as_another_tool(&theirs);
    for view in CORE_VIEWS {
        let a = env.run(&["--data", ours.to_str().unwrap(), "view", view, "--format", "csv"]);
        let b = env.run(&["--data", theirs.to_str().unwrap(), "view", view, "--format", "csv"]);
        assert_eq!(a.success().stdout(), b.success().stdout(), "{view}");
    }
}

#[test]
fn estimate_names_the_system_that_drives_the_tax() {
    let env = Env::new();
    // The sentence carries system_tax's numbers for the sample (auth-service's factor is 3.2).
    let tax = first_csv_row(&env.run(&[
        "query",
        "SELECT round(tax, 1), round(tax_low, 1), round(tax_high, 1) FROM system_tax WHERE system = 'auth-service'",
        "--format",
        "csv",
    ]));
    let run = env.run(&["estimate", "--weeks", "1", "--systems", "auth-service"]);
    let sentence = run.success().stdout();
    let expected = format!("touches auth-service ({}x, 90%: {}–{}): estimate ", tax[0], tax[1], tax[2]);
    assert!(sentence.starts_with(&expected), "{sentence}");
    assert!(sentence.contains("(80%: ") && sentence.ends_with(", not 1\n"), "{sentence}");
    let json: serde_json::Value = serde_json::from_slice(
        &env.run(&["estimate", "--weeks", "2", "--systems", "auth-service,nope-service", "--format", "json"])
            .success()
            .stdout,
    )
    .unwrap();
    assert_eq!(json["driving_system"], "auth-service");
    assert_eq!(json["base_weeks"], 2.0);
    let (p50, low, high) = (
        json["estimated_weeks"].as_f64().unwrap(),
        json["low_weeks"].as_f64().unwrap(),
        json["high_weeks"].as_f64().unwrap(),
    );
    assert!(low < p50 && p50 < high, "{json}");
    assert!((p50 - 2.0 * json["multiplier"].as_f64().unwrap()).abs() < 1e-9);
    assert!(json["systems"][0]["tax"].as_f64().unwrap() > 2.5, "{json}");
    assert!(json["systems"][0]["slowdown_ratio"].as_f64().is_some());
    assert!(json["systems"][1]["tax"].is_null());
    assert_eq!(json["systems"][1]["features"], 0);
    let unknown = env.run(&["estimate", "--weeks", "2", "--systems", "auth-servce"]);
    let unknown_text = unknown.success().stdout();
    assert!(unknown_text.starts_with("no data for these systems: estimate "), "{unknown_text}");
    assert!(unknown_text.contains("at the common level), not 2\n"), "{unknown_text}");
    assert!(
        unknown.stderr.contains("`auth-servce`") && unknown.stderr.contains("did you mean auth-service"),
        "{}",
        unknown.stderr
    );
    let csv = env.run(&["estimate", "--weeks", "1", "--systems", "auth-service,payment-flow", "--format", "csv"]);
    let lines: Vec<String> = csv.success().stdout().lines().map(str::to_string).collect();
    assert_eq!(
        lines[0],
        "base_weeks,multiplier,driving_system,estimated_weeks,low_weeks,high_weeks,system,tax,tax_low,tax_high,features,confidence,slowdown_ratio"
    );
    assert_eq!(lines.len(), 3);
    env.run(&["estimate", "--weeks", "0", "--systems", "auth-service"]).fails_with(2);
}

/// The built-in sample gives every feature the factor of its slowest system; product-catalog
/// and admin-console have none (1.0) but travel with slow systems. The naive ratio blames them,
/// the attributed tax does not.
#[test]
fn system_tax_does_not_blame_the_healthy_systems_of_the_sample() {
    let env = Env::new();
    let out = env.run(&["view", "system_tax", "--format", "csv"]);
    let csv = out.success().stdout();
    let mut lines = csv.lines();
    assert_eq!(
        lines.next().unwrap(),
        "system,features,solo_features,tax,tax_low,tax_high,naive_ratio,attributed_extra_weeks,confidence"
    );
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len(), 14);
    let number = |row: &[&str], i: usize| row[i].parse::<f64>().unwrap();
    for healthy in ["product-catalog", "admin-console"] {
        let row = rows.iter().find(|r| r[0] == healthy).unwrap();
        assert!(number(row, 6) > 1.15, "{healthy}: the naive ratio {}", row[6]);
        assert!(number(row, 4) <= 1.0 && 1.0 <= number(row, 5), "{healthy}: 1.0 not in {}–{}", row[4], row[5]);
    }
    let auth = rows.iter().find(|r| r[0] == "auth-service").unwrap();
    assert!(number(auth, 4) <= 3.2 && 3.2 <= number(auth, 5), "auth-service: {auth:?}");
    // The attributed weeks add up to the window's extra weeks, each feature counted once.
    let total: f64 = rows.iter().map(|r| number(r, 7)).sum();
    let window = first_csv_row(&env.run(&[
        "query",
        "SELECT sum(actual_weeks - estimated_weeks) FROM window_features WHERE cardinality(systems) > 0",
        "--format",
        "csv",
    ]));
    assert!((total - window[0].parse::<f64>().unwrap()).abs() < 1e-6, "{total} vs {window:?}");
    // The naive column is slowdown_by_system's, bit for bit.
    let naive = env.run(&[
        "query",
        "SELECT count(*) FROM system_tax t JOIN slowdown_by_system s ON s.system = t.system \
         WHERE t.naive_ratio = s.slowdown_ratio",
        "--format",
        "csv",
    ]);
    assert_eq!(naive.success().stdout(), "count(*)\n14\n");
}

/// The first data row of a CSV output, split on commas.
fn first_csv_row(run: &Run) -> Vec<String> {
    run.success().stdout().lines().nth(1).unwrap_or_default().split(',').map(str::to_string).collect()
}

#[test]
fn paydown_shows_the_formula_and_refuses_targets_that_return_nothing() {
    let env = Env::new();
    let run = env.run(&["paydown", "--invest", "100000", "--target", "0.9", "--capacity", "1200000", "--months", "6"]);
    let out = run.success().stdout();
    assert!(out.contains("capacity returned = C x M/12 x (T - E) = $1,200,000 x 6/12 x (0.900 - "), "{out}");
    let json: serde_json::Value = serde_json::from_slice(
        &env.run(&[
            "paydown",
            "--invest",
            "100000",
            "--target",
            "0.9",
            "--capacity",
            "1200000",
            "--months",
            "6",
            "--format",
            "json",
        ])
        .success()
        .stdout,
    )
    .unwrap();
    let e = json["current_efficiency"].as_f64().unwrap();
    let returned = 1_200_000.0 * 6.0 / 12.0 * (0.9 - e);
    assert!((json["capacity_returned"].as_f64().unwrap() - returned).abs() < 1e-6);
    assert!((json["net_return"].as_f64().unwrap() - (returned - 100_000.0)).abs() < 1e-6);
    assert!((json["payback_months"].as_f64().unwrap() - 100_000.0 / (100_000.0 * (0.9 - e))).abs() < 1e-6);
    // The range: E's interval over the sample's four quarters, carried through the formula.
    let range = &json["range"];
    assert_eq!(range["periods"], 4, "{json}");
    let (e_low, e_high) = (range["efficiency_low"].as_f64().unwrap(), range["efficiency_high"].as_f64().unwrap());
    assert!(e_low < e && e < e_high, "{range}");
    let returned_at = |e: f64| 1_200_000.0 * 6.0 / 12.0 * (0.9 - e);
    assert!((range["capacity_returned_high"].as_f64().unwrap() - returned_at(e_low)).abs() < 1e-6);
    assert!((range["capacity_returned_low"].as_f64().unwrap() - returned_at(e_high)).abs() < 1e-6);
    assert!(out.contains("\nrange (90% interval of E over 4 periods: "), "{out}");
    let low = env.run(&["paydown", "--invest", "1", "--target", "0.1"]);
    low.fails_with(2);
    assert!(low.stderr.contains("not above the current efficiency"), "{}", low.stderr);
    let out_of_range = env.run(&["paydown", "--invest", "1", "--target", "1.2"]);
    out_of_range.fails_with(2);
    assert!(out_of_range.stderr.contains("(0, 1]"), "{}", out_of_range.stderr);
}

/// `estimate`, `paydown` and `report` wrote with `println!`, which panics when the reader is gone
/// before the first byte; every command now ends quietly with 0, as a view does.
#[test]
fn every_command_ends_quietly_on_a_pipe_closed_before_it_writes() {
    use std::process::Stdio;
    let env = Env::new();
    let commands: [&[&str]; 4] = [
        &["estimate", "--weeks", "1", "--systems", "auth-service"],
        &["estimate", "--weeks", "1", "--systems", "auth-service", "--format", "json"],
        &["paydown", "--invest", "100000", "--target", "0.9"],
        &["report"],
    ];
    for args in commands {
        let mut child = env.cmd().args(args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        // The reading end closes before the engine has even opened.
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{args:?}: {:?} {stderr}", out.status);
        assert!(!stderr.contains("panicked") && !stderr.contains("error"), "{args:?}: {stderr}");
    }
}

/// The estimate is one JSON object on stdout and in `--output x.json` alike.
#[test]
fn an_estimate_has_one_shape_on_stdout_and_in_a_file() {
    let env = Env::new();
    let args = ["estimate", "--weeks", "2", "--systems", "auth-service,payment-flow", "--format", "json"];
    let stdout = env.run(&args).success().stdout();
    let mut to_file = args.to_vec();
    to_file.extend(["--output", "estimate.json"]);
    let run = env.run(&to_file);
    assert_eq!(run.success().stdout(), "", "nothing on stdout when --output is given");
    let file = std::fs::read_to_string(env.path("estimate.json")).unwrap();
    assert_eq!(file, stdout);
    let json: serde_json::Value = serde_json::from_str(&file).unwrap();
    assert!(json.is_object() && json["estimated_weeks"].as_f64().unwrap() > 2.0, "{file}");
}

/// Issue 21, 1: 20,000 terms aborted the CLI (SIGABRT, a stack overflow). Now a clear error.
#[test]
fn a_statement_too_deep_to_plan_is_an_error_not_a_crash() {
    let env = Env::new();
    let deep = format!("SELECT {} AS x", vec!["1"; 20_000].join("+"));
    let run = env.run(&["-q", "query", &deep]);
    run.fails_with(1);
    assert!(run.stderr.contains("19999 operators (the limit is 1000)"), "{}", run.stderr);
    let fine = format!("SELECT {} AS x", vec!["1"; 1001].join("+"));
    assert_eq!(env.run(&["-q", "query", &fine, "--format", "csv"]).success().stdout(), "x\n1001\n");
}
