//! The drivers BI tools are built on, against `debtlens serve` on a sample store: SQLAlchemy
//! with psycopg2 (Superset) and pandas, asyncpg, node-postgres, pgjdbc (DBeaver, Metabase,
//! Tableau, DataGrip), and psql's `\d`. Each browses the catalog as its tool does and runs
//! parameterised queries; the answers are checked against the CLI's on the same store.
//! `scripts/test` installs the drivers (pip, npm, apt).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::server::Server;
use crate::util::{Env, Run};

/// The CLI's answer to `sql` on `store`, as CSV lines without the header.
fn cli(env: &Env, store: &Path, sql: &str) -> Vec<String> {
    let run = env.run(&["--data", store.to_str().unwrap(), "query", sql, "--format", "csv"]);
    run.success();
    run.stdout().lines().skip(1).map(str::to_string).collect()
}

fn count(env: &Env, store: &Path, sql: &str) -> i64 {
    cli(env, store, sql)[0].parse().unwrap()
}

/// The view's (system, features) pairs as `system:features`, joined by commas.
fn view_pairs(env: &Env, store: &Path) -> String {
    cli(env, store, "SELECT system, features FROM slowdown_by_system ORDER BY system")
        .iter()
        .map(|l| l.replacen(',', ":", 1))
        .collect::<Vec<_>>()
        .join(",")
}

fn store(env: &Env) -> PathBuf {
    env.sample_store("store", 1200, &["--seed", "11"])
}

fn run_json(run: Run, what: &str) -> serde_json::Value {
    assert_eq!(run.code, 0, "{what} failed:\n{}\n{}", run.stdout(), run.stderr);
    let out = run.stdout();
    serde_json::from_str(out.lines().last().unwrap_or_default()).unwrap_or_else(|e| panic!("{what}: {e}: {out}"))
}

#[test]
fn sqlalchemy_inspects_the_catalog_and_pandas_reads_what_the_cli_answers() {
    let env = Env::new();
    let store = store(&env);
    let server = Server::start(&env, &store, &[], &[]);
    let script = r#"
import os, json, pandas
from sqlalchemy import create_engine, inspect, text
e = create_engine(f"postgresql+psycopg2://analyst@127.0.0.1:{os.environ['PORT']}/debtlens")
i = inspect(e)
out = {
    'schemas': i.get_schema_names(),
    'tables': sorted(i.get_table_names()),
    'views': sorted(i.get_view_names()),
    'columns': [[c['name'], str(c['type']), c['nullable'], c.get('comment')] for c in i.get_columns('capacity')],
    'view_columns': [c['name'] for c in i.get_columns('slowdown_by_system')],
    'pk_features': i.get_pk_constraint('features'),
    'pk_capacity': i.get_pk_constraint('capacity')['constrained_columns'],
    'indexes': i.get_indexes('features'),
    'foreign_keys': i.get_foreign_keys('incidents'),
    'view_definition': i.get_view_definition('slowdown_by_system'),
    'comments': [i.get_table_comment(t)['text'] for t in ('features', 'slowdown_by_system', 'rejected_rows')],
    'view': ','.join(f'{s}:{n}' for s, n in pandas.read_sql('SELECT system, features FROM slowdown_by_system ORDER BY system', e).values.tolist()),
}
with e.connect() as c:
    one = lambda sql, **p: c.execute(text(sql), p).scalar()
    # Superset's time filters and its to_char.
    out['to_timestamp'] = str(one("SELECT TO_TIMESTAMP('2025-06-01 10:11:12.000123', 'YYYY-MM-DD HH24:MI:SS.US')"))
    out['to_char'] = one("SELECT to_char(TIMESTAMP '2025-06-01 10:11:12', 'YYYY-MM-DD HH24:MI')")
    out['any'] = one("SELECT count(*) FROM features WHERE team = ANY(:t)", t=['platform', 'checkout'])
print(json.dumps(out))
"#;
    let run = Command::new("python3")
        .args(["-c", script])
        .env("PORT", server.port.to_string())
        .output()
        .expect("python3 (pip install sqlalchemy psycopg2-binary pandas)");
    let out = run_json(Run::from(run), "SQLAlchemy");
    // As on PostgreSQL: information_schema is a schema.
    assert_eq!(out["schemas"], serde_json::json!(["information_schema", "public"]));
    assert_eq!(
        out["tables"],
        serde_json::json!(["backlog", "capacity", "deployments", "features", "incidents", "rejected_rows"])
    );
    let views: Vec<String> = serde_json::from_value(out["views"].clone()).unwrap();
    for view in ["slowdown_by_system", "system_health", "debt_cost", "backlog_forecast"] {
        assert!(views.contains(&view.to_string()), "{view} in {views:?}");
    }
    // Each column with its rule from data-model.md as its comment.
    assert_eq!(
        out["columns"][0],
        serde_json::json!(["period_start", "DATE", false, "the first day of the period; with team, the unique key"]),
        "{}",
        out["columns"]
    );
    assert_eq!(
        out["columns"][2],
        serde_json::json!(["team", "TEXT", true, "the team; null means the whole organisation"]),
        "{}",
        out["columns"]
    );
    assert_eq!(out["view_columns"][0], "system");
    assert_eq!(out["pk_features"]["constrained_columns"], serde_json::json!(["feature_id"]));
    assert_eq!(out["pk_features"]["name"], "features_pkey");
    assert_eq!(out["pk_capacity"], serde_json::json!(["period_start", "team"]));
    // The key's index backs the constraint: SQLAlchemy lists no other index, and no foreign keys.
    assert_eq!(out["indexes"], serde_json::json!([]));
    assert_eq!(out["foreign_keys"], serde_json::json!([]));
    // Comments: what one row of a table is (data-model.md), a view's header's first line.
    assert_eq!(
        out["comments"],
        serde_json::json!([
            "one row per feature or epic, shipped or in progress",
            "How much slower is feature work on each system?",
            null
        ])
    );
    let definition = out["view_definition"].as_str().unwrap();
    let sql = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/queries/slowdown_by_system.sql")).unwrap();
    assert!(definition.len() > 40 && sql.contains(&definition[..40]), "{definition}");
    assert!(!definition.starts_with("--"), "the header comment is not part of the definition");
    assert_eq!(out["view"], view_pairs(&env, &store));
    assert_eq!(out["to_timestamp"], "2025-06-01 10:11:12.000123+00:00");
    assert_eq!(out["to_char"], "2025-06-01 10:11");
    let teams = count(&env, &store, "SELECT count(*) FROM features WHERE team IN ('platform', 'checkout')");
    assert!(teams > 0);
    assert_eq!(out["any"], teams);
}

#[test]
fn asyncpg_binds_arrays_and_dates_and_reads_every_view() {
    let env = Env::new();
    let store = store(&env);
    let server = Server::start(&env, &store, &[], &[]);
    let views: Vec<String> = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/queries"))
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.strip_suffix(".sql").map(str::to_string))
        .collect();
    let script = r#"
import os, sys, json, asyncio, datetime, asyncpg
async def main():
    c = await asyncpg.connect(host='127.0.0.1', port=int(os.environ['PORT']), user='analyst', database='debtlens')
    out = {
        'any': await c.fetchval('SELECT count(*) FROM features WHERE team = ANY($1)', ['platform', 'checkout']),
        'since': await c.fetchval('SELECT count(*) FROM features WHERE shipped_at >= $1',
                                  datetime.datetime(2025, 6, 1, tzinfo=datetime.timezone.utc)),
        'rows': {},
    }
    for view in sys.argv[1:]:
        out['rows'][view] = len(await c.fetch(f'SELECT * FROM {view}'))
    try:
        await c.fetchval('SELECT count(*) FROM features WHERE team = ANY($1)', 'platform')
        out['wrong_type'] = 'accepted'
    except Exception as e:
        out['wrong_type'] = type(e).__name__
    await c.close()
    print(json.dumps(out))
asyncio.run(main())
"#;
    let mut cmd = Command::new("python3");
    cmd.args(["-c", script]).args(&views).env("PORT", server.port.to_string());
    let out = run_json(Run::from(cmd.output().expect("python3 (pip install asyncpg)")), "asyncpg");
    assert_eq!(out["any"], count(&env, &store, "SELECT count(*) FROM features WHERE team IN ('platform', 'checkout')"));
    assert_eq!(
        out["since"],
        count(&env, &store, "SELECT count(*) FROM features WHERE shipped_at >= '2025-06-01T00:00:00Z'")
    );
    for view in &views {
        let expected = cli(&env, &store, &format!("SELECT * FROM {view}")).len();
        assert_eq!(out["rows"][view], expected, "{view}");
    }
    // A text where the query needs an array is the driver's error, never a silent answer.
    assert_ne!(out["wrong_type"], "accepted");
}

#[test]
fn node_postgres_gets_the_counts_the_cli_gets() {
    let env = Env::new();
    let store = store(&env);
    let server = Server::start(&env, &store, &[], &[]);
    let modules = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/npm/node_modules");
    let run = Command::new("node")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clients/node_pg.js"))
        .env("PORT", server.port.to_string())
        .env("NODE_PATH", &modules)
        .output()
        .expect("node (npm install --prefix target/npm pg)");
    let out = run_json(Run::from(run), "node-postgres");
    let teams = count(&env, &store, "SELECT count(*) FROM features WHERE team IN ('platform', 'checkout')");
    // node-postgres sends parameters untyped: the array literal is read as an array, not one
    // string (which gave 0 with no error).
    assert_eq!(out["any"], teams.to_string());
    assert_eq!(out["in_list"], teams.to_string());
    assert_eq!(out["team"], count(&env, &store, "SELECT count(*) FROM features WHERE team = 'platform'").to_string());
    assert_eq!(
        out["since"],
        count(&env, &store, "SELECT count(*) FROM features WHERE shipped_at >= '2025-06-01T00:00:00Z'").to_string()
    );
    let unicode = count(&env, &store, "SELECT count(*) FROM features WHERE array_has(systems, 'légacy-crm')");
    assert!(unicode > 0);
    assert_eq!(out["unicode"], unicode.to_string());
    assert_eq!(out["view"], view_pairs(&env, &store));
}

#[test]
fn pgjdbc_browses_keys_and_binds_dates_and_arrays() {
    let env = Env::new();
    let store = store(&env);
    let server = Server::start(&env, &store, &[], &[]);
    let jar = "/usr/share/java/postgresql.jar";
    let classes = env.path("classes");
    let javac = Command::new("javac")
        .args([
            "-cp",
            jar,
            "-d",
            classes.to_str().unwrap(),
            concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clients/Drivers.java"),
        ])
        .output()
        .expect("javac (apt-get install default-jdk-headless)");
    assert!(javac.status.success(), "{}", String::from_utf8_lossy(&javac.stderr));
    let run = Run::from(
        Command::new("java")
            .args(["-cp", &format!("{}:{jar}", classes.display()), "Drivers"])
            .env("PORT", server.port.to_string())
            .output()
            .expect("java (apt-get install libpostgresql-jdbc-java)"),
    );
    assert_eq!(run.code, 0, "{}\n{}", run.stdout(), run.stderr);
    let out: std::collections::HashMap<String, String> =
        run.stdout().lines().filter_map(|l| l.split_once('=').map(|(k, v)| (k.to_string(), v.to_string()))).collect();
    assert!(out["version"].starts_with("16.6 (debtlens "), "{}", out["version"]);
    assert_eq!(out["schemas"], "information_schema,pg_catalog,public");
    assert_eq!(out["tables"], "backlog,capacity,deployments,features,incidents,rejected_rows");
    assert!(
        out["columns"].starts_with("period_start:date:NO,period_end:date:NO,team:text:YES,budget:float8:NO"),
        "{}",
        out["columns"]
    );
    assert_eq!(out["primary_keys"], "period_start:1:capacity_pkey,team:2:capacity_pkey");
    assert_eq!(out["indexes"], "features_pkey:feature_id:f");
    assert_eq!(out["imported_keys"], "");
    assert_eq!(out["procedures"], "");
    // getTypeInfo: PostgreSQL's types with their java.sql.Types (pgjdbc compares
    // `typinput = 'array_in'::regproc` on the way).
    let types: Vec<&str> = out["type_info"].split(',').collect();
    for t in ["text:12", "bool:-7", "int8:-5", "float8:8", "timestamptz:93", "date:91", "_text:2003"] {
        assert!(types.contains(&t), "{t} in {types:?}");
    }
    assert_eq!(
        out["set_date"],
        count(&env, &store, "SELECT count(*) FROM features WHERE shipped_at >= '2025-06-01T00:00:00Z'").to_string()
    );
    assert_eq!(
        out["any_array"],
        count(&env, &store, "SELECT count(*) FROM features WHERE team IN ('platform', 'checkout')").to_string()
    );
    // Each column's table, its name there, and isNullable (0 no nulls, 1 nullable, 2 unknown, as
    // PostgreSQL says of a computed column):
    // from the table, through an alias, a computed column (no table), a view's column.
    let expected = "feature_id:features:feature_id:0,owner:features:team:1,severity:incidents:severity:0,\
                    doubled:::2,tax:system_tax:tax:1";
    assert_eq!(out["meta"], expected);
    assert_eq!(out["prepared_meta"], expected);
    assert_eq!(out["view"], view_pairs(&env, &store));
}

#[test]
fn psql_describes_a_table_with_its_key_and_correlated_subqueries_are_answered() {
    let env = Env::new();
    let store = store(&env);
    let server = Server::start(&env, &store, &[], &[]);
    let run = server.psql(&env, &["-c", r"\d features"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let out = run.stdout();
    assert!(out.contains("Table \"public.features\""), "{out}");
    assert!(out.contains(" feature_id             | text                     |           | not null |"), "{out}");
    assert!(out.contains(" systems                | text[]"), "{out}");
    assert!(out.contains(" cost_of_delay_per_week | double precision         |           |          |"), "{out}");
    assert!(out.contains("\"features_pkey\" PRIMARY KEY, btree (feature_id)"), "{out}");
    // information_schema as Grafana and Metabase read it: PostgreSQL's type names and udt_name,
    // and the key through table_constraints and key_column_usage.
    let columns = "SELECT column_name, data_type, udt_name, is_nullable, ordinal_position FROM information_schema.columns \
                   WHERE table_schema = 'public' AND table_name = 'features' ORDER BY ordinal_position LIMIT 4";
    let run = server.psql(&env, &["-A", "-F", ",", "-t", "-c", columns]);
    assert_eq!(
        run.stdout(),
        "feature_id,text,text,NO,1\ntitle,text,text,NO,2\nteam,text,text,YES,3\nsystems,ARRAY,_text,NO,4\n",
        "{}",
        run.stderr
    );
    let keys = "SELECT c.table_name, c.column_name, pk.column_name IS NOT NULL AS pk FROM information_schema.columns c \
                LEFT JOIN (SELECT tc.table_schema, tc.table_name, kc.column_name FROM information_schema.table_constraints tc \
                           JOIN information_schema.key_column_usage kc ON tc.constraint_name = kc.constraint_name \
                            AND tc.table_schema = kc.table_schema AND tc.table_name = kc.table_name \
                           WHERE tc.constraint_type = 'PRIMARY KEY') pk \
                  ON c.table_schema = pk.table_schema AND c.table_name = pk.table_name AND c.column_name = pk.column_name \
                WHERE c.table_schema = 'public' AND c.table_name = 'capacity' ORDER BY c.ordinal_position";
    let run = server.psql(&env, &["-A", "-F", ",", "-t", "-c", keys]);
    assert_eq!(
        run.stdout(),
        "capacity,period_start,t\ncapacity,period_end,f\ncapacity,team,t\ncapacity,budget,f\n\
         capacity,engineer_weeks,f\ncapacity,quality_share_target,f\n",
        "{}",
        run.stderr
    );
    let types = "SELECT DISTINCT data_type FROM information_schema.columns WHERE table_schema = 'public' ORDER BY 1";
    let run = server.psql(&env, &["-A", "-t", "-c", types]);
    assert_eq!(
        run.stdout(),
        "ARRAY\nbigint\nboolean\ndate\ndouble precision\ntext\ntimestamp with time zone\n",
        "{}",
        run.stderr
    );

    // Grafana's table list: the tables of the search path (public) unqualified.
    let grafana = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clients/grafana_tables.sql");
    let run = server.psql(&env, &["-A", "-t", "-f", grafana]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let tables: Vec<String> = run.stdout().lines().map(str::to_string).collect();
    for table in ["features", "incidents", "capacity", "backlog", "slowdown_by_system"] {
        assert!(tables.contains(&table.to_string()), "{table} in {tables:?}");
    }
    assert!(!tables.iter().any(|t| t.starts_with("public.")), "{tables:?}");

    // SQLAlchemy 1.4 (Superset's): get_columns' identity options over pg_sequence joined to
    // pg_class, and get_indexes' `indisprimary = 'f'`.
    let identity = "SELECT a.attname, (SELECT json_build_object('always', a.attidentity = 'a', 'start', s.seqstart) \
                    FROM pg_catalog.pg_sequence s JOIN pg_catalog.pg_class c ON s.seqrelid = c.oid \
                    WHERE c.relkind = 'S' AND a.attidentity != '' \
                    AND s.seqrelid = pg_catalog.pg_get_serial_sequence(a.attrelid::regclass::text, a.attname)::regclass::oid) AS identity_options \
                    FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_class t ON t.oid = a.attrelid \
                    WHERE t.relname = 'backlog' AND a.attnum = 1";
    let run = server.psql(&env, &["-A", "-F", ",", "-t", "-c", identity]);
    assert_eq!(run.stdout(), "item_id,\n", "{}", run.stderr);
    let indexes = "SELECT i.relname, ix.indisprimary FROM pg_class t JOIN pg_index ix ON t.oid = ix.indrelid \
                   JOIN pg_class i ON i.oid = ix.indexrelid WHERE t.relname = 'features' AND ix.indisprimary = 't'";
    let run = server.psql(&env, &["-A", "-F", ",", "-t", "-c", indexes]);
    assert_eq!(run.stdout(), "features_pkey,t\n", "{}", run.stderr);
    // A text literal that is not a boolean is still the error it was.
    let run = server.psql(&env, &["-c", "SELECT count(*) FROM pg_index WHERE indisprimary = 'maybe'"]);
    assert_ne!(run.code, 0);
    assert!(run.stderr.contains("Boolean = Utf8"), "{}", run.stderr);

    // A correlated subquery in the SELECT list was NULL for every row (datafusion-pg-catalog's
    // RemoveSubqueryFromProjection): the same counts as the CLI's now.
    let sql = "SELECT f.feature_id, (SELECT count(*) FROM incidents i WHERE i.feature_id = f.feature_id) AS n \
               FROM features f ORDER BY n DESC, f.feature_id LIMIT 5";
    let run = server.psql(&env, &["-A", "-F", ",", "-t", "-c", sql]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let served: Vec<String> = run.stdout().lines().map(str::to_string).collect();
    assert_eq!(served, cli(&env, &store, sql));
    assert!(served[0].ends_with(|c: char| c.is_ascii_digit() && c != '0'), "{served:?}");
}

/// Metabase's sync (tests/clients/metabase_sync.sql: its table list, describe-fields with the
/// column comments it reads through `col_description(format('%I.%I', ...)::regclass::oid, n)`,
/// describe-fks, describe-indexes, `show timezone`), and psql's `\d+`, `\dt+`, `\df`, `\dT`.
#[test]
fn metabase_syncs_and_psql_shows_sizes_and_comments() {
    let env = Env::new();
    let store = store(&env);
    let server = Server::start(&env, &store, &[], &[]);
    let sync = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clients/metabase_sync.sql");
    let run = server.psql(&env, &["-A", "-t", "-f", sync]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let out = run.stdout();
    let section = |name: &str| -> Vec<String> {
        out.lines()
            .skip_while(|l| *l != name)
            .skip(1)
            .take_while(|l| !["tables", "fields", "fks", "indexes", "timezone"].contains(l))
            .map(str::to_string)
            .collect()
    };
    let tables = section("tables");
    assert!(
        tables.contains(&"public|features|TABLE|one row per feature or epic, shipped or in progress|".into()),
        "{tables:?}"
    );
    assert!(
        tables.contains(&"public|system_health|VIEW|Which systems most need attention this month?|".into()),
        "{tables:?}"
    );
    assert_eq!(tables.len(), 6 + debtlens::views::VIEWS.len(), "{tables:?}");
    let fields = section("fields");
    // name, type, position, schema, table, key?, comment, required, auto-increment.
    for row in [
        "feature_id|text|0|public|features|t|the feature's id; unique key: ingesting the same id again replaces the row|t|f",
        "systems|_text|3|public|features|f|the systems the feature touched, at least one|t|f",
        "actual_weeks|float8|6|public|features|f|the weeks it really took; null while not shipped|f|f",
        "team|text|2|public|capacity|t|the team; null means the whole organisation|f|f",
        "period_start|date|0|public|capacity|t|the first day of the period; with team, the unique key|t|f",
        "users_affected|int8|6|public|incidents|f|users affected (nullable, >= 0)|f|f",
        // A view's columns have no comment.
        "tax_low|float8|11|public|system_health|f||f|f",
    ] {
        assert!(fields.contains(&row.to_string()), "{row} in {fields:#?}");
    }
    assert!(section("fks").is_empty());
    let mut indexes = section("indexes");
    indexes.sort();
    assert_eq!(
        indexes,
        [
            "public|backlog|item_id",
            "public|capacity|period_start",
            "public|deployments|deployment_id",
            "public|features|feature_id",
            "public|incidents|incident_id"
        ]
    );
    assert_eq!(section("timezone"), ["UTC"]);

    // psql's \d+: the columns' comments and the key.
    let run = server.psql(&env, &["-c", r"\d+ capacity"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let described = run.stdout();
    assert!(described.contains("| the team; null means the whole organisation"), "{described}");
    assert!(described.contains("\"capacity_pkey\" PRIMARY KEY, btree (period_start, team)"), "{described}");
    // \dt+: each table's size is its data files' (the sample writes one version: every file in
    // the folder is in the table), 0 for a view.
    let files: u64 = std::fs::read_dir(store.join("features"))
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.path().extension().is_some_and(|x| x == "parquet"))
        .map(|e| e.metadata().unwrap().len())
        .sum();
    let sizes = "SELECT pg_table_size('features'), pg_total_relation_size('public.features'::regclass), \
                 pg_relation_size(c.oid) FROM pg_class c WHERE c.relname = 'system_health'";
    let run = server.psql(&env, &["-A", "-F", ",", "-t", "-c", sizes]);
    assert_eq!(run.stdout(), format!("{files},{files},0\n"), "{}", run.stderr);
    let run = server.psql(&env, &["-A", "-t", "-c", r"\dt+"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let listed = run.stdout();
    let pretty = if files < 10 * 1024 { format!("{files} bytes") } else { format!("{} kB", (files + 512) / 1024) };
    assert!(
        listed.contains(&format!("public|features|table|postgres|permanent||{pretty}|one row per feature or epic")),
        "{pretty} in {listed}"
    );
    // No functions or types of the user's (PostgreSQL's answer on a new database): listed, empty.
    for command in [r"\df", r"\dT"] {
        let run = server.psql(&env, &["-c", command]);
        assert_eq!(run.code, 0, "{command}: {}", run.stderr);
        assert!(run.stdout().contains("(0 rows)"), "{command}: {}", run.stdout());
    }
}
