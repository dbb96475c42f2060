//! `debtlens export --dialect spark`: the store's tables and the views as one Spark SQL script,
//! for spark-sql, a notebook or Databricks.
//!
//! The views' SQL is DataFusion's; Spark reads most of it as it is. This is the small layer of
//! rewrites that makes the rest Spark's (each rule is listed in docs/scale.md and tested below),
//! not a general transpiler:
//!
//! - the window's functions become literals: `window_start()` and `window_end()` timestamps,
//!   `window_days()` a number;
//! - `unnest(` is `explode(`; an array literal `['a']` is `array('a')`;
//! - `date_part('epoch', t)` is `(unix_micros(t) / 1000000.0D)`;
//! - a decimal literal such as `1.0` is a double, `1.0D` (Spark reads `1.0` as a DECIMAL);
//! - `INTERVAL '7 days'` is `INTERVAL 7 DAYS`;
//! - a time cast to `BIGINT` (microseconds in DataFusion, seconds in Spark; the store's times
//!   are the columns named `*_at`) is `unix_micros(t)`;
//! - a `BIGINT` of microseconds cast `AS TIMESTAMP(6) WITH TIME ZONE` is `timestamp_micros(n)`;
//! - `to_timestamp_micros` is `timestamp_micros`, `array_to_string` is `array_join`, `VARCHAR`
//!   is `STRING`;
//! - the exact float sums carried through a daily pre-aggregation (`exact_partials`,
//!   `sum_partials`) are Spark's `sum`: the same number up to the last bits.
//!
//! Views that call a function only debtlens has (the attributed velocity tax and what is built
//! on it, the delay cost, the roadmap forecast, Student's t quantile) are not exported, and
//! neither is a view that reads one of them; the script lists them and says why.

use std::fmt::Write as _;

use datafusion::arrow::datatypes::{DataType, Schema, TimeUnit};

use crate::error::{Error, Result};
use crate::views::{VIEWS, ViewDef};
use crate::window::Window;

/// How the script defines the tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SparkTables {
    /// `USING delta` at each table's location: for a Spark with Delta Lake (Databricks,
    /// delta-spark), which reads the table's newest version when each query runs.
    Delta,
    /// `USING parquet` over the data files of the snapshot debtlens read now: for any Spark.
    Snapshot,
}

/// One table as the script defines it.
#[derive(Debug, Clone)]
pub struct ExportTable {
    pub name: &'static str,
    pub schema: Schema,
    pub source: TableSource,
}

/// Where a table's rows are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TableSource {
    /// A Delta table at this location.
    Delta { location: String },
    /// These Parquet files (a folder: every file under it).
    Parquet { paths: Vec<String> },
    /// No rows (a table the store does not have yet).
    Empty,
}

/// The functions only debtlens has, which Spark cannot run.
const DEBTLENS_ONLY: &[(&str, &str)] = &[
    ("velocity_tax", "the attributed velocity tax (a fit over every feature, in debtlens)"),
    ("tax_model", "the velocity-tax model the roadmap forecast draws from"),
    ("item_forecast", "the roadmap forecast's simulation"),
    ("delay_cost", "the delay cost's attribution"),
    ("student_t_quantile", "Student's t quantile of the 90% interval, which Spark SQL has no function for"),
];

/// The script: settings, the tables, then every view Spark can run, in dependency order.
pub fn spark_script(store: &str, tables: &[ExportTable], window: &Window) -> Result<String> {
    let mut out = String::new();
    let _ = writeln!(out, "-- debtlens views for Spark SQL, exported from the store {store}.");
    let _ = writeln!(out, "-- The analysis {window}, written into the views as literals.");
    let _ = writeln!(out, "-- Run with spark-sql -f FILE, or statement by statement in a notebook.");
    out.push_str("SET spark.sql.session.timeZone = UTC;\n\n");
    for table in tables {
        out.push_str(&table_statement(table)?);
        out.push('\n');
    }
    let mut skipped: Vec<(&str, String)> = Vec::new();
    for view in VIEWS {
        if let Some(why) = unexportable(view, &skipped) {
            skipped.push((view.name, why));
            continue;
        }
        let _ = writeln!(out, "\n-- {}: {}", view.name, view.description());
        let _ = writeln!(out, "CREATE OR REPLACE TEMPORARY VIEW {} AS", view.name);
        out.push_str(to_spark(view.sql, window).map_err(|e| Error::Internal(format!("{}: {e}", view.name)))?.trim());
        out.push_str(";\n");
    }
    if !skipped.is_empty() {
        out.push_str("\n-- Not exported (they need debtlens to compute):\n");
        for (name, why) in &skipped {
            let _ = writeln!(out, "--   {name}: {why}");
        }
    }
    Ok(out)
}

/// The views `spark_script` writes.
pub fn exported_views() -> Vec<&'static str> {
    let mut skipped: Vec<(&str, String)> = Vec::new();
    let mut names = Vec::new();
    for view in VIEWS {
        match unexportable(view, &skipped) {
            Some(why) => skipped.push((view.name, why)),
            None => names.push(view.name),
        }
    }
    names
}

/// Why a view cannot run on Spark, if it cannot.
fn unexportable(view: &ViewDef, skipped: &[(&str, String)]) -> Option<String> {
    let words: Vec<String> = tokens(&strip_comments(view.sql))
        .into_iter()
        .filter_map(|t| match t {
            Token::Word(w) => Some(w.to_ascii_lowercase()),
            _ => None,
        })
        .collect();
    if let Some((f, what)) = DEBTLENS_ONLY.iter().find(|(f, _)| words.iter().any(|w| w == f)) {
        return Some(format!("calls {f}(), {what}"));
    }
    skipped.iter().find(|(name, _)| words.iter().any(|w| w == name)).map(|(name, _)| format!("reads {name}"))
}

fn table_statement(table: &ExportTable) -> Result<String> {
    let columns = table
        .schema
        .fields()
        .iter()
        .map(|f| Ok(format!("{} {}", f.name(), spark_type(f.data_type())?)))
        .collect::<Result<Vec<_>>>()?
        .join(", ");
    Ok(match &table.source {
        TableSource::Delta { location } => {
            format!("CREATE OR REPLACE TEMPORARY VIEW {} USING delta OPTIONS (path {});\n", table.name, quote(location))
        }
        TableSource::Parquet { paths } => format!(
            "CREATE OR REPLACE TEMPORARY VIEW {} ({columns}) USING parquet OPTIONS (path {});\n",
            table.name,
            quote(&glob_of(paths)?)
        ),
        TableSource::Empty => {
            let nulls = table
                .schema
                .fields()
                .iter()
                .map(|f| Ok(format!("CAST(NULL AS {}) AS {}", spark_type(f.data_type())?, f.name())))
                .collect::<Result<Vec<_>>>()?
                .join(", ");
            format!("CREATE OR REPLACE TEMPORARY VIEW {} AS SELECT {nulls} WHERE false;\n", table.name)
        }
    })
}

/// One path for a list of files in one folder: `folder/{a,b}` (Hadoop's glob).
fn glob_of(paths: &[String]) -> Result<String> {
    let Some(first) = paths.first() else { return Err(Error::Internal("a Parquet table with no files".into())) };
    if paths.len() == 1 {
        return Ok(first.clone());
    }
    let split = |p: &str| p.rsplit_once('/').map(|(dir, name)| (dir.to_string(), name.to_string()));
    let (dir, _) = split(first).ok_or_else(|| Error::Internal(format!("not a file path: {first}")))?;
    let mut names = Vec::with_capacity(paths.len());
    for path in paths {
        match split(path) {
            Some((d, name)) if d == dir && !name.contains(['{', '}', ',', '*', '?', '[', ']', '\\']) => {
                names.push(name)
            }
            _ => {
                return Err(Error::Usage(format!(
                    "{path}: a table's files must share one folder and have plain names to be listed for Spark; \
                     export with --tables delta"
                )));
            }
        }
    }
    Ok(format!("{dir}/{{{}}}", names.join(",")))
}

fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// Spark's name for a column type of the store.
fn spark_type(data_type: &DataType) -> Result<String> {
    Ok(match data_type {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => "STRING".into(),
        DataType::Float64 => "DOUBLE".into(),
        DataType::Float32 => "FLOAT".into(),
        DataType::Int64 => "BIGINT".into(),
        DataType::Int32 => "INT".into(),
        DataType::Boolean => "BOOLEAN".into(),
        DataType::Date32 => "DATE".into(),
        DataType::Timestamp(TimeUnit::Microsecond, _) => "TIMESTAMP".into(),
        DataType::List(item) | DataType::LargeList(item) => format!("ARRAY<{}>", spark_type(item.data_type())?),
        other => return Err(Error::Internal(format!("no Spark type for {other}"))),
    })
}

/// The pieces of SQL text the rewrites look at.
#[derive(Debug, Clone, PartialEq)]
enum Token {
    Word(String),
    Number(String),
    Str(String),
    Other(char),
}

fn strip_comments(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut in_string = false;
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\'' {
            in_string = !in_string;
        }
        if !in_string && c == '-' && chars.peek() == Some(&'-') {
            for c in chars.by_ref() {
                if c == '\n' {
                    out.push('\n');
                    break;
                }
            }
            continue;
        }
        out.push(c);
    }
    out
}

fn tokens(sql: &str) -> Vec<Token> {
    let chars: Vec<char> = sql.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\'' {
            let mut text = String::from('\'');
            i += 1;
            while i < chars.len() {
                text.push(chars[i]);
                if chars[i] == '\'' {
                    if chars.get(i + 1) == Some(&'\'') {
                        text.push('\'');
                        i += 2;
                        continue;
                    }
                    i += 1;
                    break;
                }
                i += 1;
            }
            out.push(Token::Str(text));
        } else if c.is_ascii_digit() {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                i += 1;
            }
            out.push(Token::Number(chars[start..i].iter().collect()));
        } else if c.is_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            out.push(Token::Word(chars[start..i].iter().collect()));
        } else {
            out.push(Token::Other(c));
            i += 1;
        }
    }
    out
}

/// The index of the `)` closing the `(` at `open`.
fn closing(tokens: &[Token], open: usize) -> Option<usize> {
    let mut depth = 0usize;
    for (i, t) in tokens.iter().enumerate().skip(open) {
        match t {
            Token::Other('(') => depth += 1,
            Token::Other(')') => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    None
}

fn text(tokens: &[Token]) -> String {
    tokens
        .iter()
        .map(|t| match t {
            Token::Word(s) | Token::Number(s) | Token::Str(s) => s.clone(),
            Token::Other(c) => c.to_string(),
        })
        .collect()
}

fn timestamp_literal(at: chrono::DateTime<chrono::Utc>) -> String {
    format!("TIMESTAMP '{}'", at.format("%Y-%m-%d %H:%M:%S%.6f"))
}

/// A view's DataFusion SQL, rewritten for Spark by the rules of this module's header.
pub fn to_spark(sql: &str, window: &Window) -> std::result::Result<String, String> {
    let input = tokens(&strip_comments(sql));
    let mut out: Vec<Token> = Vec::with_capacity(input.len());
    let mut i = 0;
    let empty_call = |i: usize| {
        matches!(input.get(i + 1), Some(Token::Other('('))) && matches!(input.get(i + 2), Some(Token::Other(')')))
    };
    while i < input.len() {
        let token = &input[i];
        match token {
            Token::Word(w) => {
                let lower = w.to_ascii_lowercase();
                let replaced = match lower.as_str() {
                    "window_start" if empty_call(i) => Some(timestamp_literal(window.start())),
                    "window_end" if empty_call(i) => Some(timestamp_literal(window.as_of)),
                    "window_days" if empty_call(i) => Some(window.days.to_string()),
                    _ => None,
                };
                if let Some(literal) = replaced {
                    out.push(Token::Word(literal));
                    i += 3;
                    continue;
                }
                if lower == "date_part"
                    && matches!(input.get(i + 1), Some(Token::Other('(')))
                    && matches!(input.get(i + 2), Some(Token::Str(s)) if s.eq_ignore_ascii_case("'epoch'"))
                {
                    let close = closing(&input, i + 1).ok_or("unbalanced parentheses after date_part")?;
                    // Skip 'epoch' and the comma after it.
                    let mut start = i + 3;
                    while matches!(input.get(start), Some(Token::Other(c)) if c.is_whitespace() || *c == ',') {
                        start += 1;
                    }
                    let inner = to_spark(&text(&input[start..close]), window)?;
                    out.push(Token::Word(format!("(unix_micros({inner}) / 1000000.0D)")));
                    i = close + 1;
                    continue;
                }
                if lower == "cast"
                    && matches!(input.get(i + 1), Some(Token::Other('(')))
                    && let Some(close) = closing(&input, i + 1)
                {
                    // CAST(t AS BIGINT) of a time (the store's times are the columns named *_at):
                    // microseconds in DataFusion, seconds in Spark.
                    let inner = text(&input[i + 2..close]);
                    // CAST(n AS TIMESTAMP(6) WITH TIME ZONE) of a BIGINT: microseconds since 1970.
                    let compact: String = inner.split_whitespace().collect::<Vec<_>>().join(" ");
                    if let Some(n) = compact.strip_suffix(" AS TIMESTAMP(6) WITH TIME ZONE")
                        && n.to_ascii_uppercase().ends_with("AS BIGINT)")
                    {
                        out.push(Token::Word(format!("timestamp_micros({})", to_spark(n, window)?)));
                        i = close + 1;
                        continue;
                    }
                    let words: Vec<&str> = inner.split_whitespace().collect();
                    if let [column, as_, bigint] = words[..]
                        && column.ends_with("_at")
                        && column.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
                        && as_.eq_ignore_ascii_case("as")
                        && bigint.eq_ignore_ascii_case("bigint")
                    {
                        out.push(Token::Word(format!("unix_micros({column})")));
                        i = close + 1;
                        continue;
                    }
                }
                if lower == "interval" {
                    // INTERVAL '7 days' -> INTERVAL 7 DAYS
                    let mut j = i + 1;
                    while matches!(input.get(j), Some(Token::Other(c)) if c.is_whitespace()) {
                        j += 1;
                    }
                    if let Some(Token::Str(s)) = input.get(j) {
                        let body = s.trim_matches('\'');
                        let parts: Vec<&str> = body.split_whitespace().collect();
                        if parts.len() == 2 && parts[0].chars().all(|c| c.is_ascii_digit()) {
                            out.push(Token::Word(format!("INTERVAL {} {}", parts[0], parts[1].to_ascii_uppercase())));
                            i = j + 1;
                            continue;
                        }
                        return Err(format!("an interval Spark would not read the same: {s}"));
                    }
                }
                let renamed = match lower.as_str() {
                    "unnest" => Some("explode"),
                    "to_timestamp_micros" => Some("timestamp_micros"),
                    "array_to_string" => Some("array_join"),
                    "exact_partials" | "sum_partials" => Some("sum"),
                    "varchar" => Some("STRING"),
                    _ => None,
                };
                out.push(Token::Word(renamed.map(str::to_string).unwrap_or_else(|| w.clone())));
            }
            Token::Number(n) if n.contains('.') && !n.contains(['e', 'E', 'd', 'D']) => {
                out.push(Token::Number(format!("{n}D")));
            }
            Token::Other('[') => {
                // An index follows a name, a call or another index; anything else opens an array.
                let before = out.iter().rev().find(|t| !matches!(t, Token::Other(c) if c.is_whitespace()));
                let keyword = |w: &str| {
                    ["select", "then", "else", "when", "and", "or", "not", "in", "is", "by", "on", "as", "like"]
                        .contains(&w.to_ascii_lowercase().as_str())
                };
                let index = match before {
                    Some(Token::Word(w)) => !keyword(w),
                    Some(Token::Other(')' | ']')) => true,
                    _ => false,
                };
                if index {
                    out.push(token.clone());
                } else {
                    out.push(Token::Word("array(".into()));
                    let mut depth = 1;
                    let mut j = i + 1;
                    while j < input.len() {
                        match &input[j] {
                            Token::Other('[') => depth += 1,
                            Token::Other(']') => {
                                depth -= 1;
                                if depth == 0 {
                                    break;
                                }
                            }
                            _ => {}
                        }
                        j += 1;
                    }
                    if j >= input.len() {
                        return Err("an unclosed array literal".into());
                    }
                    out.push(Token::Word(to_spark(&text(&input[i + 1..j]), window)?));
                    out.push(Token::Other(')'));
                    i = j + 1;
                    continue;
                }
            }
            other => out.push(other.clone()),
        }
        i += 1;
    }
    Ok(text(&out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::window::AsOfSource;

    fn window() -> Window {
        let as_of = chrono::DateTime::parse_from_rfc3339("2026-10-31T23:59:59.999999Z").unwrap().to_utc();
        Window { as_of, days: 90, source: AsOfSource::Given }
    }

    #[test]
    fn each_rewrite_rule_gives_spark_sql() {
        let w = window();
        let cases = [
            ("SELECT window_days() AS d", "SELECT 90 AS d"),
            (
                "WHERE t > window_start() AND t <= window_end()",
                "WHERE t > TIMESTAMP '2026-08-02 23:59:59.999999' AND t <= TIMESTAMP '2026-10-31 23:59:59.999999'",
            ),
            ("SELECT unnest(systems) AS s", "SELECT explode(systems) AS s"),
            ("CASE WHEN x THEN ['(unspecified)'] ELSE r END", "CASE WHEN x THEN array('(unspecified)') ELSE r END"),
            ("SELECT ['a', 'b'] AS l", "SELECT array('a', 'b') AS l"),
            (
                "CAST(CAST(substr(p, 1, 20) AS BIGINT) AS TIMESTAMP(6) WITH TIME ZONE) AS t",
                "timestamp_micros(CAST(substr(p, 1, 20) AS BIGINT)) AS t",
            ),
            (
                "CAST(CAST(deployed_at AS BIGINT) AS VARCHAR), CAST(n AS BIGINT)",
                "CAST(unix_micros(deployed_at) AS STRING), CAST(n AS BIGINT)",
            ),
            ("SELECT f['p50_weeks'], g(x)['a'] FROM t", "SELECT f['p50_weeks'], g(x)['a'] FROM t"),
            (
                "(date_part('epoch', resolved_at) - date_part('epoch', started_at)) / 3600.0",
                "((unix_micros(resolved_at) / 1000000.0D) - (unix_micros(started_at) / 1000000.0D)) / 3600.0D",
            ),
            ("date_part('year', shipped_at)", "date_part('year', shipped_at)"),
            ("greatest(0.0, 1.0 - a) * 2 + 1e-9", "greatest(0.0D, 1.0D - a) * 2 + 1e-9"),
            ("t > s - INTERVAL '7 days'", "t > s - INTERVAL 7 DAYS"),
            ("CAST(x AS VARCHAR) || 'a.5 -- not a comment'", "CAST(x AS STRING) || 'a.5 -- not a comment'"),
            ("sum_partials(d.w), exact_partials(w)", "sum(d.w), sum(w)"),
            ("to_timestamp_micros(1), array_to_string(a, ', ')", "timestamp_micros(1), array_join(a, ', ')"),
            ("SELECT 1 -- the window_days() here is a comment\nFROM t", "SELECT 1 \nFROM t"),
        ];
        for (input, expected) in cases {
            assert_eq!(to_spark(input, &w).unwrap(), expected, "{input}");
        }
        assert!(to_spark("x + INTERVAL '1 day 2 hours'", &w).is_err());
    }

    #[test]
    fn views_on_debtlens_only_functions_are_left_out_with_the_reason() {
        let exported = exported_views();
        for name in ["system_tax", "backlog_forecast", "delay_cost", "slowdown_by_system"] {
            assert!(!exported.contains(&name), "{name}");
        }
        for name in ["delay_by_system", "capacity_efficiency", "incident_impact"] {
            assert!(exported.contains(&name), "{name}");
        }
        let tables = [ExportTable {
            name: "features",
            schema: Schema::new(vec![datafusion::arrow::datatypes::Field::new("feature_id", DataType::Utf8, false)]),
            source: TableSource::Parquet {
                paths: vec!["/s/features/a.parquet".into(), "/s/features/b.parquet".into()],
            },
        }];
        let script = spark_script("/s", &tables, &window()).unwrap();
        assert!(script.contains(
            "CREATE OR REPLACE TEMPORARY VIEW features (feature_id STRING) USING parquet OPTIONS (path '/s/features/{a.parquet,b.parquet}');"
        ), "{script}");
        assert!(script.contains("--   system_tax: calls velocity_tax(), the attributed velocity tax"), "{script}");
        assert!(!script.contains("window_end()"), "{script}");
    }

    #[test]
    fn files_in_two_folders_or_with_glob_characters_are_refused() {
        assert!(glob_of(&["/a/x.parquet".into(), "/b/y.parquet".into()]).is_err());
        assert!(glob_of(&["/a/x,1.parquet".into(), "/a/y.parquet".into()]).is_err());
        assert_eq!(glob_of(&["/a/x.parquet".into()]).unwrap(), "/a/x.parquet");
    }
}
