//! Cost of delay end to end: the column ingested and checked, a store written before the column
//! existed (by another tool) read and then extended, `paydown --value cost_of_delay` and `plan`'s
//! value brought forward.

use std::process::Command;

use crate::util::{Env, Run};

fn csv_query(env: &Env, store: &str, sql: &str) -> String {
    env.run(&["--data", store, "-q", "query", sql, "--format", "csv"]).success().stdout()
}

/// A store whose features table is a Delta table written by delta-rs's Python writer from the
/// sample's first 40 features without `cost_of_delay_per_week`: a store from before the column.
fn store_from_before_the_column(env: &Env) -> String {
    env.run(&["init", "store"]).success();
    let store = env.path("store");
    std::fs::remove_dir_all(store.join("features")).unwrap();
    let script = "import sys, pyarrow.parquet as pq, deltalake\n\
t = pq.read_table(sys.argv[1]).slice(0, 40).drop_columns(['cost_of_delay_per_week'])\n\
deltalake.write_deltalake(sys.argv[2], t)\n\
import os; os._exit(0)\n";
    let sample = format!("{}/sample-data/features/part-00000.parquet", env!("CARGO_MANIFEST_DIR"));
    let features = store.join("features");
    let out = Command::new("python3")
        .args(["-c", script, &sample, features.to_str().unwrap()])
        .output()
        .expect("python3 (pip install deltalake pyarrow)");
    Run::from(out).success();
    store.to_str().unwrap().to_string()
}

#[test]
fn a_store_from_before_the_column_reads_it_as_null_and_gains_it_at_the_next_ingest() {
    let env = Env::new();
    let store = store_from_before_the_column(&env);
    // Read as it is: the column is there, null.
    assert_eq!(
        csv_query(&env, &store, "SELECT count(*) AS n, count(cost_of_delay_per_week) AS valued FROM features"),
        "n,valued\n40,0\n"
    );
    let run = env.run(&["--data", &store, "-q", "view", "delay_cost", "--format", "csv"]);
    run.success();
    assert!(run.stdout().starts_with("system,features_valued,features_unvalued,"), "{}", run.stdout());

    // The next ingest adds the column to the table; every bad value is refused with its line.
    let header =
        "feature_id,title,team,systems,estimated_weeks,actual_weeks,started_at,shipped_at,cost_of_delay_per_week\n";
    let rows = "V1,Valued,core,api,1,3,2026-10-01,2026-10-20,1500\n\
                V2,No value,core,api,1,2,2026-10-01,2026-10-21,\n\
                V3,Zero value,core,api,1,2,2026-10-01,2026-10-22,0\n\
                B1,Negative,core,api,1,2,2026-10-01,2026-10-22,-5\n\
                B2,Text,core,api,1,2,2026-10-01,2026-10-22,lots\n\
                B3,Not a number,core,api,1,2,2026-10-01,2026-10-22,NaN\n\
                B4,Infinite,core,api,1,2,2026-10-01,2026-10-22,inf\n";
    std::fs::write(env.path("valued.csv"), format!("{header}{rows}")).unwrap();
    let run = env.run(&["--data", &store, "ingest", "features", "valued.csv"]);
    run.fails_with(3);
    assert_eq!(run.stdout(), "features: read 7, loaded 3, replaced 0, rejected 4\n");
    assert_eq!(
        csv_query(&env, &store, "SELECT line, column_name, raw_value, reason FROM rejected_rows ORDER BY line"),
        "line,column_name,raw_value,reason\n\
         5,cost_of_delay_per_week,-5,cost_of_delay_per_week must not be negative\n\
         6,cost_of_delay_per_week,lots,cost_of_delay_per_week is not a number\n\
         7,cost_of_delay_per_week,NaN,cost_of_delay_per_week is not a number\n\
         8,cost_of_delay_per_week,inf,cost_of_delay_per_week is not a number\n"
    );
    // The old rows keep their null, the new ones their value.
    assert_eq!(
        csv_query(
            &env,
            &store,
            "SELECT count(*) AS n, count(cost_of_delay_per_week) AS valued, sum(cost_of_delay_per_week) AS total FROM features"
        ),
        "n,valued,total\n43,2,1500.0\n"
    );
    let log = std::fs::read_dir(env.path("store/features/_delta_log"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
        .map(|e| std::fs::read_to_string(e.path()).unwrap())
        .collect::<Vec<_>>()
        .join("\n");
    assert!(log.contains("cost_of_delay_per_week"), "the table's schema gained the column: {log}");
    // Ingesting the same file again changes nothing.
    env.run(&["--data", &store, "-q", "ingest", "features", "valued.csv", "--allow-rejects"]).success();
    assert_eq!(
        csv_query(
            &env,
            &store,
            "SELECT feature_id, cost_of_delay_per_week FROM features WHERE feature_id LIKE 'V%' ORDER BY 1"
        ),
        "feature_id,cost_of_delay_per_week\nV1,1500.0\nV2,\nV3,0.0\n"
    );
}

#[test]
fn the_jira_preset_reads_the_cost_of_delay_custom_field() {
    let env = Env::new();
    env.run(&["init", "store"]).success();
    let store = env.path("store").to_str().unwrap().to_string();
    let export = "Summary,Issue key,Issue Type,Component/s,Original Estimate,Time Spent,Created,Resolved,Team,Custom field (Cost of Delay)\n\
                  Add SSO,AUTH-101,Story,auth-service,288000,864000,03/Sep/26 9:30 AM,24/Sep/26 5:00 PM,identity,12000\n\
                  Fix race,AUTH-102,Bug,auth-service,144000,288000,10/Sep/26 10:00 AM,01/Oct/26 11:15 AM,identity,\n";
    std::fs::write(env.path("jira.csv"), export).unwrap();
    env.run(&["--data", &store, "-q", "ingest", "features", "jira.csv", "--map", "jira"]).success();
    assert_eq!(
        csv_query(&env, &store, "SELECT feature_id, cost_of_delay_per_week FROM features ORDER BY 1"),
        "feature_id,cost_of_delay_per_week\nAUTH-101,12000.0\nAUTH-102,\n"
    );
    let backlog = "Summary,Issue key,Issue Type,Component/s,Original Estimate,Priority,Team,Custom field (Cost of Delay)\n\
                   Partner portal,AUTH-200,Story,auth-service,288000,High,identity,8000.5\n";
    std::fs::write(env.path("backlog.csv"), backlog).unwrap();
    env.run(&["--data", &store, "-q", "ingest", "backlog", "backlog.csv", "--map", "jira"]).success();
    assert_eq!(
        csv_query(&env, &store, "SELECT item_id, cost_of_delay_per_week FROM backlog"),
        "item_id,cost_of_delay_per_week\nAUTH-200,8000.5\n"
    );
}

/// A store where auth (3x) and fast (1x) features ship in October 2026, valued or not, with
/// capacity rows, and a backlog of one item on auth and one on fast.
fn valued_store(env: &Env) -> String {
    env.run(&["init", "store"]).success();
    let store = env.path("store").to_str().unwrap().to_string();
    let mut features = String::from(
        "feature_id,title,team,systems,estimated_weeks,actual_weeks,started_at,shipped_at,cost_of_delay_per_week\n",
    );
    for i in 0..20 {
        let (system, actual, value) = if i % 2 == 0 { ("auth", 3.0, "1000") } else { ("fast", 1.0, "") };
        features.push_str(&format!("F{i:02},f,core,{system},1,{actual},2026-09-01,2026-10-{:02},{value}\n", i + 1));
    }
    std::fs::write(env.path("features.csv"), features).unwrap();
    env.run(&["--data", &store, "-q", "ingest", "features", "features.csv"]).success();
    let capacity = "period_start,period_end,team,budget,engineer_weeks\n\
                    2026-01-01,2026-04-01,,100000,50\n2026-04-01,2026-07-01,,100000,50\n\
                    2026-07-01,2026-10-01,,100000,50\n2026-10-01,2027-01-01,,100000,50\n";
    std::fs::write(env.path("capacity.csv"), capacity).unwrap();
    env.run(&["--data", &store, "-q", "ingest", "capacity", "capacity.csv"]).success();
    let backlog = "item_id,title,team,systems,estimated_weeks,priority,cost_of_delay_per_week\n\
                   P1,On auth,core,auth,2,1,5000\nP2,On fast,core,fast,2,2,\n";
    std::fs::write(env.path("backlog.csv"), backlog).unwrap();
    env.run(&["--data", &store, "-q", "ingest", "backlog", "backlog.csv"]).success();
    store
}

#[test]
fn paydown_prices_the_return_in_delayed_value_beside_capacity() {
    let env = Env::new();
    let store = valued_store(&env);
    // The window's 10 valued features (1 week estimated at 1,000 a week each): V = 10,000 per 90
    // days = 10000 x 30.436875 / 90 = 3381.875 a month. E over the capacity periods: 20 estimated
    // / 40 actual weeks = 0.5 (all in Q4). To T = 0.8 over 12 months: 3381.875 x 12 x (1/0.5 -
    // 1/0.8) = 30436.875.
    let run = env.run(&[
        "--data",
        &store,
        "-q",
        "paydown",
        "--invest",
        "10000",
        "--target",
        "0.8",
        "--value",
        "cost_of_delay",
        "--format",
        "json",
    ]);
    run.success();
    let p: serde_json::Value = serde_json::from_str(&run.stdout()).unwrap();
    assert_eq!(p["current_efficiency"], 0.5, "{p}");
    let v = &p["delayed_value"];
    assert_eq!(v["valued_features"], 10, "{p}");
    assert_eq!(v["unvalued_features"], 10, "{p}");
    assert_eq!(v["valued_work_per_month"], 3381.875, "{p}");
    assert!((v["value_returned"].as_f64().unwrap() - 30436.875).abs() < 1e-6, "{p}");
    assert!((v["net_value_return"].as_f64().unwrap() - 20436.875).abs() < 1e-6, "{p}");
    // Capacity alone leaves it out.
    let run = env.run(&["--data", &store, "-q", "paydown", "--invest", "10000", "--target", "0.8", "--format", "json"]);
    let p: serde_json::Value = serde_json::from_str(&run.success().stdout()).unwrap();
    assert!(p["delayed_value"].is_null(), "{p}");

    // The table output shows both, with the formula.
    let run = env.run(&[
        "--data",
        &store,
        "-q",
        "paydown",
        "--invest",
        "10000",
        "--target",
        "0.8",
        "--value",
        "cost_of_delay",
    ]);
    run.success();
    let text = run.stdout();
    assert!(text.contains("capacity returned = C x M/12 x (T - E)"), "{text}");
    assert!(
        text.contains("delayed value returned = V x M x (1/E - 1/T) = $3,382 x 12 x (1/0.500 - 1/0.800) = $30,437"),
        "{text}"
    );
    // A window without valued features: a clear refusal, not a return of 0.
    let run = env.run(&[
        "--data",
        &store,
        "--as-of",
        "2026-09-15",
        "paydown",
        "--invest",
        "1",
        "--target",
        "0.8",
        "--value",
        "cost_of_delay",
    ]);
    run.fails_with(2);
    assert!(
        run.stderr.contains("none of the window's 0 shipped features has a cost_of_delay_per_week"),
        "{}",
        run.stderr
    );
}

#[test]
fn plan_reports_the_delayed_value_a_paydown_brings_forward() {
    let env = Env::new();
    let store = valued_store(&env);
    let run = env.run(&["--data", &store, "-q", "plan", "--paydown", "auth", "--format", "json"]);
    run.success();
    let plan: serde_json::Value = serde_json::from_str(&run.stdout()).unwrap();
    let team = &plan["teams"][0];
    let items = team["items"].as_array().unwrap();
    let p1 = items.iter().find(|i| i["item_id"] == "P1").unwrap();
    let p2 = items.iter().find(|i| i["item_id"] == "P2").unwrap();
    assert_eq!(p1["cost_of_delay_per_week"], 5000.0);
    // P1 on auth finishes earlier once auth is at the common level: its value comes forward at
    // 5,000 a week of the earlier finish; P2 has no value and brings nothing.
    let brought = p1["value_brought_forward"].as_f64().unwrap();
    assert!(brought > 0.0, "{p1}");
    assert!(p2["value_brought_forward"].is_null(), "{p2}");
    assert_eq!(team["paid"]["value_brought_forward"].as_f64().unwrap(), brought);
    let run = env.run(&["--data", &store, "-q", "plan", "--paydown", "auth"]);
    assert!(run.stdout().contains("of delayed value forward (1 of 2 items valued)"), "{}", run.stdout());
}
