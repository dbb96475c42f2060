//! `debtlens plan` and the backlog_forecast view end to end: the backtest on the built-in sample,
//! one item on one slot, a paydown that touches nothing, byte-identical reruns, every format.

use crate::util::{Env, Run};

fn csv(run: &Run) -> Vec<Vec<String>> {
    run.stdout().lines().map(|l| l.split(',').map(str::to_string).collect()).collect()
}

/// Issue 19's backtest: the sample's features that started in the last 90 days, forecast from
/// the 90 days of history before them. Their actual weeks fall inside (0, P85] for 80-90%.
#[test]
fn the_backtest_on_the_sample_puts_four_in_five_inside_p85() {
    let env = Env::new();
    let start = env.run(&["-q", "query", "SELECT CAST(window_start() AS VARCHAR) AS s", "--format", "csv"]);
    let cutoff = start.success().stdout().lines().nth(1).unwrap().replace(' ', "T");
    let sql = "WITH model AS (SELECT tax_model(systems, estimated_weeks, actual_weeks) AS m FROM window_features), \
               recent AS (SELECT * FROM features WHERE started_at > window_end() AND actual_weeks > 0) \
               SELECT count(*) AS n, \
                      sum(CASE WHEN r.actual_weeks <= item_forecast(model.m, r.systems, r.estimated_weeks)['p85_weeks'] THEN 1 ELSE 0 END) AS inside \
               FROM recent r CROSS JOIN model";
    let run = env.run(&["-q", "--as-of", &cutoff, "query", sql, "--format", "csv"]);
    let rows = csv(run.success());
    let (n, inside): (f64, f64) = (rows[1][0].parse().unwrap(), rows[1][1].parse().unwrap());
    let share = inside / n;
    println!("backtest: {inside} of {n} inside (0, P85]: {share:.3}");
    assert!(n >= 100.0, "{n} features started in the last 90 days");
    assert!((0.80..=0.90).contains(&share), "{share} of the recent features inside (0, P85]");
}

/// A store with the sample's history and the given backlog.
fn store_with_backlog(env: &Env, backlog: &str) -> String {
    let store = env.path("store");
    env.run(&["-q", "sample", "--out", store.to_str().unwrap(), "--backlog", "0"]).success();
    std::fs::write(env.path("backlog.csv"), backlog).unwrap();
    env.run(&["-q", "--data", store.to_str().unwrap(), "ingest", "backlog", "backlog.csv"]).success();
    store.to_str().unwrap().to_string()
}

fn date_plus(start: &str, days: f64) -> chrono::NaiveDate {
    chrono::NaiveDate::parse_from_str(start, "%Y-%m-%d").unwrap() + chrono::Duration::days(days.round() as i64)
}

#[test]
fn one_item_on_one_slot_finishes_at_the_view_s_quantiles_and_an_untouched_paydown_moves_nothing() {
    let env = Env::new();
    let store = store_with_backlog(
        &env,
        "item_id,title,team,systems,estimated_weeks,priority\nX1,Login rework,identity,auth-service,2,1\n",
    );
    let view = env.run(&["-q", "--data", &store, "view", "backlog_forecast", "--format", "csv"]);
    let view = csv(view.success());
    assert_eq!(view[0][5..7], ["p50_weeks", "p85_weeks"]);
    let (p50, p85): (f64, f64) = (view[1][5].parse().unwrap(), view[1][6].parse().unwrap());
    assert!(p50 > 2.0 * 2.5 && p85 > p50, "auth-service's tax is about 3.2x: {p50} {p85}");
    assert_eq!(view[1][7], "auth-service");
    assert_eq!(view[1][10], "debt: auth-service 3.2x");

    let plan = env.run(&[
        "-q",
        "--data",
        &store,
        "plan",
        "--slots",
        "1",
        "--start",
        "2027-01-04",
        "--format",
        "csv",
        "--paydown",
        "admin-console",
    ]);
    let rows = csv(plan.success());
    let col = |name: &str| rows[0].iter().position(|c| c == name).unwrap_or_else(|| panic!("{name}: {:?}", rows[0]));
    let row = &rows[1];
    let (w50, w85): (f64, f64) = (row[col("p50_weeks")].parse().unwrap(), row[col("p85_weeks")].parse().unwrap());
    assert!((w50 - p50).abs() < 1e-9 * p50 && (w85 - p85).abs() < 1e-9 * p85, "{w50} {w85} vs {p50} {p85}");
    // One item, one slot: its finish dates are the start plus its own quantiles (to the day).
    for (column, weeks) in [("p50_finish", p50), ("p85_finish", p85)] {
        let got = chrono::NaiveDate::parse_from_str(&row[col(column)], "%Y-%m-%d").unwrap();
        let want = date_plus("2027-01-04", weeks * 7.0);
        assert!((got - want).num_days().abs() <= 1, "{column}: {got} vs {want}");
    }
    assert_eq!(row[col("team_done_p85")], row[col("p85_finish")]);
    // admin-console is not touched: the paid-down dates are today's, nothing returned.
    assert_eq!(row[col("paid_p50_finish")], row[col("p50_finish")]);
    assert_eq!(row[col("team_paid_done_p85")], row[col("team_done_p85")]);
    assert_eq!(row[col("team_weeks_returned")].parse::<f64>().unwrap(), 0.0);
}

#[test]
fn the_same_seed_gives_the_same_bytes_and_a_paydown_moves_the_sample_s_roadmap() {
    let env = Env::new();
    let args = ["-q", "plan", "--format", "csv", "--trials", "4000"];
    let first = env.run(&args);
    let again = env.run(&args);
    assert_eq!(first.success().stdout(), again.success().stdout());
    let other = env.run(&[&args[..], &["--seed", "7"]].concat());
    assert_ne!(first.stdout(), other.success().stdout());

    let table = env.run(&["plan", "--team", "identity", "--paydown", "auth-service"]);
    let text = table.success().stdout();
    let sentence = text.lines().find(|l| l.starts_with("identity:")).unwrap_or_else(|| panic!("{text}"));
    assert!(sentence.contains("paying down auth-service (3.2x -> "), "{sentence}");
    assert!(sentence.contains("days earlier") && sentence.contains("engineer-weeks ($"), "{sentence}");
    assert!(text.contains("| PLAN-"), "the items' table follows: {text}");

    let json = env.run(&["-q", "plan", "--format", "json", "--paydown", "auth-service=1.2", "--trials", "2000"]);
    let value: serde_json::Value = serde_json::from_str(&json.success().stdout()).unwrap();
    let teams = value["teams"].as_array().unwrap();
    assert!(teams.len() >= 6, "{value}");
    let identity = teams.iter().find(|t| t["team"] == "identity").unwrap();
    assert!(identity["items"].as_array().unwrap().iter().all(|i| i["p85_finish"].is_string()));
    assert!(identity["paid"]["weeks_returned"].as_f64().unwrap() > 0.0, "{identity}");
    assert_eq!(value["paydown"][0]["tax_after"], 1.2);
}

#[test]
fn bad_plan_arguments_exit_2_and_say_why() {
    let env = Env::new();
    for (args, says) in [
        (&["plan", "--trials", "0"][..], "--trials must be at least 1"),
        (&["plan", "--paydown", "auth-service=cheap"][..], "is not a tax"),
        (&["plan", "--paydown", "auth-service=0"][..], "must be above 0"),
        (&["plan", "--start", "next monday"][..], "is not a date"),
        (&["plan", "--team", "identiy"][..], "did you mean identity?"),
        (&["plan", "--slots", "0"][..], "--slots must be at least 1"),
    ] {
        let run = env.run(args);
        run.fails_with(2);
        assert!(run.stderr.contains(says), "{args:?}: {}", run.stderr);
    }
    let unknown = env.run(&["plan", "--paydown", "no-such-system", "--trials", "100"]);
    unknown.success();
    assert!(unknown.stderr.contains("no shipped features on `no-such-system`"), "{}", unknown.stderr);
}

#[test]
fn an_empty_backlog_plans_nothing_and_an_empty_window_says_there_is_nothing_to_forecast_from() {
    let env = Env::new();
    env.run(&["init", "store"]).success();
    let run = env.run(&["--data", "store", "plan"]);
    run.fails_with(2);
    assert!(run.stderr.contains("nothing to forecast from"), "{}", run.stderr);
    let store = env.path("sample");
    env.run(&["-q", "sample", "--out", store.to_str().unwrap(), "--backlog", "0"]).success();
    let empty = env.run(&["-q", "--data", store.to_str().unwrap(), "plan", "--format", "csv"]);
    assert_eq!(empty.success().stdout().lines().count(), 1, "a header, no rows: {}", empty.stdout());
}

/// A `plan = { ... }` job writes what `debtlens plan` writes with the same flags, byte for byte,
/// in CSV and in the nested JSON, and re-running the jobs file gives the same bytes.
#[test]
fn a_batch_plan_job_writes_what_plan_writes() {
    let env = Env::new();
    std::fs::write(
        env.path("jobs.toml"),
        r#"
[[job]]
name = "roadmap"
plan = { trials = 3000, seed = 9, start = "2027-01-04", paydown = ["auth-service"] }
path = "out/roadmap.csv"

[[job]]
name = "identity"
plan = { team = "identity", trials = 3000, slots = 2 }
path = "out/identity.json"
"#,
    )
    .unwrap();
    env.run(&["-q", "batch", "jobs.toml"]).success();
    let first = std::fs::read_to_string(env.path("out/roadmap.csv")).unwrap();
    let plan = env.run(&[
        "-q",
        "plan",
        "--trials",
        "3000",
        "--seed",
        "9",
        "--start",
        "2027-01-04",
        "--paydown",
        "auth-service",
        "--format",
        "csv",
    ]);
    assert_eq!(first, plan.success().stdout());
    assert!(first.lines().count() > 40, "the sample's backlog: {first}");
    let json = std::fs::read_to_string(env.path("out/identity.json")).unwrap();
    let plan = env.run(&["-q", "plan", "--team", "identity", "--trials", "3000", "--slots", "2", "--format", "json"]);
    assert_eq!(json, plan.success().stdout());

    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(env.path("batch-manifest.json")).unwrap()).unwrap();
    let job = &manifest["jobs"][0];
    assert_eq!(job["status"], "ok");
    assert_eq!(job["rows"].as_u64(), Some(first.lines().count() as u64 - 1));
    assert_eq!(job["bytes"].as_u64(), Some(first.len() as u64));
    assert_eq!(job["window"]["days"], 90);

    env.run(&["-q", "batch", "jobs.toml"]).success();
    assert_eq!(std::fs::read_to_string(env.path("out/roadmap.csv")).unwrap(), first, "a re-run is byte-identical");
}

/// A plan job's bad keys and values are found with the file, where they are, before any job runs.
#[test]
fn a_bad_plan_job_is_refused_with_its_position() {
    let env = Env::new();
    for (plan, says) in [
        ("{ trials = 0 }", "--trials must be at least 1"),
        ("{ paydown = [\"auth-service=free\"] }", "is not a tax"),
        ("{ start = \"soon\" }", "is not a date"),
        ("{ tirals = 10 }", "unknown field `tirals`"),
        ("{ debt_share = -1.0 }", "--debt-share must be a number of at least 0"),
    ] {
        std::fs::write(
            env.path("jobs.toml"),
            format!("[[job]]\nname = \"ok\"\nview = \"delay_by_reason\"\npath = \"ok.csv\"\n\n[[job]]\nname = \"p\"\nplan = {plan}\npath = \"p.csv\"\n"),
        )
        .unwrap();
        let run = env.run(&["batch", "jobs.toml"]);
        run.fails_with(2);
        assert!(run.stderr.contains("jobs.toml:8:"), "{plan}: {}", run.stderr);
        assert!(run.stderr.contains(says), "{plan}: {}", run.stderr);
        assert!(!env.path("ok.csv").exists(), "nothing ran");
    }
}

/// The report's roadmap review: each team's P85 is `plan`'s, the best single paydown is the
/// system that returns the most weeks (a backlog on auth-service, 3.2x, and on a healthy
/// system: auth-service), with the weeks `plan --paydown` gives, and the flagged items listed.
#[test]
fn the_report_reviews_the_roadmap_with_the_best_paydown() {
    let env = Env::new();
    let store = store_with_backlog(
        &env,
        "item_id,title,team,systems,estimated_weeks,priority\n\
         R1,Login rework,identity,auth-service,2,1\n\
         R2,SSO for admins,identity,auth-service;admin-console,3,2\n\
         R3,Catalog filters,shop,product-catalog,1,1\n",
    );
    let candidates = env.run(&["-q", "--data", &store, "query", "SELECT system, tax FROM system_tax WHERE system IN ('auth-service', 'admin-console', 'product-catalog') ORDER BY system", "--format", "csv"]);
    println!("{}", candidates.success().stdout());
    let report = env.run(&["-q", "--data", &store, "report"]);
    let text = report.success().stdout();
    let section = &text[text.find("## Roadmap review").unwrap_or_else(|| panic!("{text}"))..];
    let plan = env.run(&["-q", "--data", &store, "plan", "--format", "csv", "--paydown", "auth-service"]);
    let rows = csv(plan.success());
    let col = |name: &str| rows[0].iter().position(|c| c == name).unwrap();
    let identity = rows.iter().find(|r| r[col("team")] == "identity").unwrap();
    let day = |iso: &str| chrono::NaiveDate::parse_from_str(iso, "%Y-%m-%d").unwrap().format("%-d %b %Y").to_string();
    let done = day(&identity[col("team_done_p85")]);
    let paid = day(&identity[col("team_paid_done_p85")]);
    let line = section.lines().find(|l| l.starts_with("| identity |")).unwrap_or_else(|| panic!("{section}"));
    assert!(line.contains(&done) && line.contains(&paid), "{line} vs {done} -> {paid}");
    let weeks: f64 = identity[col("team_weeks_returned")].parse().unwrap();
    assert!(weeks > 0.5, "{weeks}");
    let headline = text.lines().find(|l| l.contains("Roadmap review: paying down")).unwrap_or_else(|| panic!("{text}"));
    assert!(
        headline.contains("paying down auth-service (3.2x today) returns")
            && headline.contains(&format!("{weeks:.1} engineer-weeks")),
        "{headline} ({weeks:.1})"
    );
    assert!(headline.contains(&format!("moves identity's P85 from {done} to {paid}")), "{headline}");
    let flags = &text[text.find("## Backlog items slowed by debt").unwrap()..];
    assert!(flags.contains("| R1 | Login rework | identity |") && flags.contains("debt: auth-service 3.2x"), "{flags}");
    assert!(!flags.contains("| R3 |"), "a healthy item is not flagged: {flags}");

    // A store without a backlog has no roadmap sections.
    let none = env.path("none");
    env.run(&["-q", "sample", "--out", none.to_str().unwrap(), "--backlog", "0"]).success();
    let report = env.run(&["-q", "--data", none.to_str().unwrap(), "report"]);
    assert!(!report.success().stdout().contains("Roadmap review"));
}
