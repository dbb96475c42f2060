//! Row validation and conversion: raw cells (text, or lists of text) in, typed Arrow batches of
//! the table's schema out. Every rule of data-model.md is checked here, per row; a row that
//! breaks one is refused whole, with the column, its raw value and the reason.

use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use datafusion::arrow::array::{
    ArrayBuilder, ArrayRef, BooleanBuilder, Date32Builder, Float64Builder, Int64Builder, ListBuilder, RecordBatch,
    StringBuilder, TimestampMicrosecondBuilder,
};
use datafusion::arrow::datatypes::{DataType, SchemaRef};

use crate::error::Result;
use crate::schema::Table;
use crate::window::parse_instant;

/// One cell as read from an input, before conversion.
#[derive(Debug, Clone, PartialEq)]
pub enum Raw {
    Null,
    Text(String),
    List(Vec<String>),
}

impl Raw {
    /// The cell as the user wrote it, for the rejected-rows table.
    pub fn display(&self) -> String {
        match self {
            Raw::Null => String::new(),
            Raw::Text(s) => s.clone(),
            Raw::List(items) => items.join(";"),
        }
    }
}

/// Why a row was refused: the column at fault (if one), its raw value, and the reason.
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    pub column: Option<String>,
    pub raw: Option<String>,
    pub reason: String,
}

impl Refusal {
    pub fn row(reason: impl Into<String>) -> Self {
        Self { column: None, raw: None, reason: reason.into() }
    }

    fn cell(column: &str, raw: &Raw, reason: impl Into<String>) -> Self {
        Self { column: Some(column.to_string()), raw: Some(raw.display()), reason: reason.into() }
    }
}

/// What a column accepts, beyond its Arrow type.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Rule {
    Any,
    Positive,
    NonNegative,
    /// A fraction in [0, 1].
    Share,
    /// One of a fixed set of lower-case words.
    OneOf(&'static [&'static str]),
    /// A list with at least one value.
    NonEmptyList,
}

/// A column of a table: its rule, whether every row needs a value, and the value an absent
/// cell takes.
#[derive(Debug, Clone, Copy)]
pub struct ColumnSpec {
    pub name: &'static str,
    rule: Rule,
    /// Every row needs a value, so every input needs the column.
    pub required: bool,
    default: Option<&'static str>,
}

const fn req(name: &'static str, rule: Rule) -> ColumnSpec {
    ColumnSpec { name, rule, required: true, default: None }
}

const fn opt(name: &'static str, rule: Rule) -> ColumnSpec {
    ColumnSpec { name, rule, required: false, default: None }
}

const fn def(name: &'static str, rule: Rule, default: &'static str) -> ColumnSpec {
    ColumnSpec { name, rule, required: false, default: Some(default) }
}

const SEVERITIES: &[&str] = &["sev1", "sev2", "sev3", "sev4"];
const WORK_TYPES: &[&str] = &["product", "quality"];

/// The columns of a table in schema order, with their rules (data-model.md, "Tables").
pub fn columns(table: Table) -> &'static [ColumnSpec] {
    const FEATURES: &[ColumnSpec] = &[
        req("feature_id", Rule::Any),
        req("title", Rule::Any),
        opt("team", Rule::Any),
        req("systems", Rule::NonEmptyList),
        def("work_type", Rule::OneOf(WORK_TYPES), "product"),
        req("estimated_weeks", Rule::Positive),
        opt("actual_weeks", Rule::NonNegative),
        def("delay_days", Rule::NonNegative, "0"),
        opt("delay_reasons", Rule::Any),
        opt("started_at", Rule::Any),
        opt("shipped_at", Rule::Any),
        opt("dod_acceptance", Rule::Any),
        opt("dod_unit_tests", Rule::Any),
        opt("dod_integration_tests", Rule::Any),
        opt("dod_monitoring", Rule::Any),
        opt("dod_feature_flag", Rule::Any),
        opt("dod_docs", Rule::Any),
        opt("dod_runbook", Rule::Any),
        opt("dod_perf_benchmark", Rule::Any),
    ];
    const INCIDENTS: &[ColumnSpec] = &[
        req("incident_id", Rule::Any),
        req("system", Rule::Any),
        req("severity", Rule::OneOf(SEVERITIES)),
        opt("title", Rule::Any),
        req("started_at", Rule::Any),
        opt("resolved_at", Rule::Any),
        opt("users_affected", Rule::NonNegative),
        opt("debt_related", Rule::Any),
        opt("feature_id", Rule::Any),
    ];
    const CAPACITY: &[ColumnSpec] = &[
        req("period_start", Rule::Any),
        req("period_end", Rule::Any),
        opt("team", Rule::Any),
        req("budget", Rule::NonNegative),
        opt("engineer_weeks", Rule::Positive),
        def("quality_share_target", Rule::Share, "0.2"),
    ];
    match table {
        Table::Features => FEATURES,
        Table::Incidents => INCIDENTS,
        Table::Capacity => CAPACITY,
    }
}

/// A converted cell.
#[derive(Debug, Clone, PartialEq)]
enum Value {
    Null,
    Str(String),
    F64(f64),
    I64(i64),
    Bool(bool),
    /// Microseconds since the epoch, UTC.
    Ts(i64),
    /// Days since the epoch.
    Date(i32),
    List(Vec<String>),
}

impl Value {
    /// Feeds the value to a hasher: equal values (as the key comparison sees them) hash equal.
    fn hash_into(&self, state: &mut impl std::hash::Hasher) {
        use std::hash::Hash;
        std::mem::discriminant(self).hash(state);
        match self {
            Value::Null => {}
            Value::Str(s) => s.hash(state),
            Value::F64(x) => x.to_bits().hash(state),
            Value::I64(x) | Value::Ts(x) => x.hash(state),
            Value::Bool(b) => b.hash(state),
            Value::Date(d) => d.hash(state),
            Value::List(l) => l.hash(state),
        }
    }
}

/// Builds record batches of one table from raw rows, refusing the rows that break a rule.
pub struct RowBuilder {
    table: Table,
    schema: SchemaRef,
    builders: Vec<Box<dyn ArrayBuilder>>,
    values: Vec<Value>,
    now_micros: i64,
    /// The two columns that must be in order (start, end), and whether they may be equal:
    /// resolved once, not per row.
    order: (usize, usize, bool),
    /// Rows with a date after now: loaded, with a warning.
    pub future_dates: usize,
    /// The key columns, and a hash of every key seen: when no two rows share a hash, the rows
    /// are known to have distinct keys and the upsert skips removing duplicates. (Two keys with
    /// the same hash only cost that skip.) Eight bytes a row, plus the set's slack.
    key_columns: Vec<usize>,
    key_hashes: std::collections::HashSet<u64>,
    /// Whether two rows may share a key.
    pub repeated_keys: bool,
}

impl RowBuilder {
    pub fn new(table: Table) -> Self {
        let schema = table.schema();
        let builders = schema.fields().iter().map(|f| builder(f.data_type())).collect();
        Self {
            table,
            schema,
            builders,
            values: Vec::new(),
            now_micros: Utc::now().timestamp_micros(),
            order: date_order(table),
            future_dates: 0,
            key_columns: table
                .key()
                .iter()
                .map(|k| columns(table).iter().position(|c| c.name == *k).expect("a key is a column"))
                .collect(),
            key_hashes: std::collections::HashSet::new(),
            repeated_keys: false,
        }
    }

    pub fn len(&self) -> usize {
        self.builders.first().map_or(0, |b| b.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Converts and checks one row (cells in the table's column order) and appends it, or says
    /// why not. A refused row leaves the builders untouched.
    pub fn push(&mut self, row: &[Raw]) -> Result<(), Refusal> {
        self.values.clear();
        for (spec, (field, raw)) in columns(self.table).iter().zip(self.schema.fields().iter().zip(row)) {
            let value = convert(spec, field.data_type(), raw)?;
            self.values.push(value);
        }
        self.check_row(row)?;
        if self.values.iter().any(|v| matches!(v, Value::Ts(t) if *t > self.now_micros)) {
            self.future_dates += 1;
        }
        if !self.repeated_keys {
            let mut hasher = std::hash::DefaultHasher::new();
            for &i in &self.key_columns {
                self.values[i].hash_into(&mut hasher);
            }
            self.repeated_keys = !self.key_hashes.insert(std::hash::Hasher::finish(&hasher));
            if self.repeated_keys {
                self.key_hashes = std::collections::HashSet::new();
            }
        }
        for (builder, value) in self.builders.iter_mut().zip(self.values.drain(..)) {
            append(builder.as_mut(), value);
        }
        Ok(())
    }

    /// Rules across columns: date order.
    fn check_row(&self, row: &[Raw]) -> Result<(), Refusal> {
        let (a, b, strict) = self.order;
        let specs = columns(self.table);
        let (first, second) = (specs[a].name, specs[b].name);
        let order = match (&self.values[a], &self.values[b]) {
            (Value::Ts(x), Value::Ts(y)) => Some(x.cmp(y)),
            (Value::Date(x), Value::Date(y)) => Some(x.cmp(y)),
            _ => None,
        };
        match order {
            Some(std::cmp::Ordering::Greater) => {
                Err(Refusal::cell(second, &row[b], format!("{second} is before {first} ({})", row[a].display())))
            }
            Some(std::cmp::Ordering::Equal) if strict => {
                Err(Refusal::cell(second, &row[b], format!("{second} must be after {first}")))
            }
            _ => Ok(()),
        }
    }

    /// The rows so far as one batch; the builders start again empty.
    pub fn finish(&mut self) -> Result<RecordBatch> {
        let columns: Vec<ArrayRef> = self.builders.iter_mut().map(|b| b.finish()).collect();
        Ok(RecordBatch::try_new(Arc::clone(&self.schema), columns)?)
    }
}

/// The columns of `table` whose dates must be in order, and whether they may be equal.
fn date_order(table: Table) -> (usize, usize, bool) {
    let specs = columns(table);
    let index = |name: &str| specs.iter().position(|c| c.name == name).expect("column of the table");
    match table {
        Table::Features => (index("started_at"), index("shipped_at"), false),
        Table::Incidents => (index("started_at"), index("resolved_at"), false),
        Table::Capacity => (index("period_start"), index("period_end"), true),
    }
}

fn builder(t: &DataType) -> Box<dyn ArrayBuilder> {
    match t {
        DataType::Utf8 => Box::new(StringBuilder::new()),
        DataType::Float64 => Box::new(Float64Builder::new()),
        DataType::Int64 => Box::new(Int64Builder::new()),
        DataType::Boolean => Box::new(BooleanBuilder::new()),
        DataType::Date32 => Box::new(Date32Builder::new()),
        DataType::Timestamp(..) => Box::new(TimestampMicrosecondBuilder::new().with_timezone("UTC")),
        DataType::List(_) => Box::new(ListBuilder::new(StringBuilder::new())),
        other => unreachable!("no table has a column of type {other}"),
    }
}

fn append(builder: &mut dyn ArrayBuilder, value: Value) {
    let any = builder.as_any_mut();
    macro_rules! put {
        ($b:ty, $v:expr) => {{
            let b = any.downcast_mut::<$b>().expect("builder of the column's type");
            match $v {
                Some(v) => b.append_value(v),
                None => b.append_null(),
            }
        }};
    }
    if let Some(b) = any.downcast_mut::<ListBuilder<StringBuilder>>() {
        match value {
            Value::List(items) => b.append_value(items.into_iter().map(Some)),
            _ => b.append_null(),
        }
        return;
    }
    match value {
        Value::Null => {
            if let Some(b) = any.downcast_mut::<StringBuilder>() {
                b.append_null()
            } else if let Some(b) = any.downcast_mut::<Float64Builder>() {
                b.append_null()
            } else if let Some(b) = any.downcast_mut::<Int64Builder>() {
                b.append_null()
            } else if let Some(b) = any.downcast_mut::<BooleanBuilder>() {
                b.append_null()
            } else if let Some(b) = any.downcast_mut::<Date32Builder>() {
                b.append_null()
            } else if let Some(b) = any.downcast_mut::<TimestampMicrosecondBuilder>() {
                b.append_null()
            }
        }
        Value::Str(s) => put!(StringBuilder, Some(s)),
        Value::F64(x) => put!(Float64Builder, Some(x)),
        Value::I64(x) => put!(Int64Builder, Some(x)),
        Value::Bool(x) => put!(BooleanBuilder, Some(x)),
        Value::Date(x) => put!(Date32Builder, Some(x)),
        Value::Ts(x) => put!(TimestampMicrosecondBuilder, Some(x)),
        Value::List(_) => unreachable!("lists are handled above"),
    }
}

/// Converts one raw cell to the column's type and checks the column's rule.
fn convert(spec: &ColumnSpec, t: &DataType, raw: &Raw) -> Result<Value, Refusal> {
    let name = spec.name;
    // An absent or blank cell takes the default, if any.
    let blank = match raw {
        Raw::Null => true,
        Raw::Text(s) => s.trim().is_empty(),
        Raw::List(_) => false,
    };
    if blank {
        if let Some(default) = spec.default {
            return convert(&ColumnSpec { default: None, ..*spec }, t, &Raw::Text(default.to_string()));
        }
        return if spec.required {
            Err(Refusal::cell(name, raw, format!("{name} is required")))
        } else if matches!(t, DataType::List(_)) {
            Ok(Value::List(Vec::new()))
        } else {
            Ok(Value::Null)
        };
    }
    let text = match raw {
        Raw::Text(s) => s.trim(),
        _ => "",
    };
    let value = match t {
        DataType::Utf8 => match spec.rule {
            Rule::OneOf(allowed) => {
                let lower = text.to_lowercase();
                if !allowed.contains(&lower.as_str()) {
                    return Err(Refusal::cell(name, raw, format!("{name} must be one of {}", allowed.join(", "))));
                }
                Value::Str(lower)
            }
            _ => Value::Str(text.to_string()),
        },
        DataType::Float64 => {
            let x: f64 = text
                .parse()
                .ok()
                .filter(|x: &f64| x.is_finite())
                .ok_or_else(|| Refusal::cell(name, raw, format!("{name} is not a number")))?;
            check_number(spec, raw, x)?;
            Value::F64(x)
        }
        DataType::Int64 => {
            let x: i64 = text
                .parse()
                .or_else(|_| {
                    text.parse::<f64>().ok().filter(|f| f.fract() == 0.0 && f.abs() < 9e15).map(|f| f as i64).ok_or(())
                })
                .map_err(|_| Refusal::cell(name, raw, format!("{name} is not a whole number")))?;
            check_number(spec, raw, x as f64)?;
            Value::I64(x)
        }
        DataType::Boolean => {
            Value::Bool(parse_bool(text).ok_or_else(|| {
                Refusal::cell(name, raw, format!("{name} is not a boolean (true/false, yes/no, 1/0)"))
            })?)
        }
        DataType::Date32 => Value::Date(
            parse_date(text).ok_or_else(|| Refusal::cell(name, raw, format!("{name} is not a date (YYYY-MM-DD)")))?,
        ),
        DataType::Timestamp(..) => Value::Ts(
            parse_timestamp(text)
                .ok_or_else(|| Refusal::cell(name, raw, format!("{name} is not an ISO-8601 date or date-time")))?,
        ),
        DataType::List(_) => {
            let items: Vec<String> = match raw {
                Raw::List(items) => items.iter().map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect(),
                _ => split_list(text),
            };
            if spec.rule == Rule::NonEmptyList && items.is_empty() {
                return Err(Refusal::cell(name, raw, format!("{name} needs at least one value")));
            }
            Value::List(items)
        }
        other => unreachable!("no table has a column of type {other}"),
    };
    Ok(value)
}

fn check_number(spec: &ColumnSpec, raw: &Raw, x: f64) -> Result<(), Refusal> {
    let name = spec.name;
    match spec.rule {
        Rule::Positive if x <= 0.0 => Err(Refusal::cell(name, raw, format!("{name} must be greater than 0"))),
        Rule::NonNegative if x < 0.0 => Err(Refusal::cell(name, raw, format!("{name} must not be negative"))),
        Rule::Share if !(0.0..=1.0).contains(&x) => {
            Err(Refusal::cell(name, raw, format!("{name} must be between 0 and 1")))
        }
        _ => Ok(()),
    }
}

/// `a; b ;c` -> `[a, b, c]`: values trimmed, empty ones dropped.
pub fn split_list(text: &str) -> Vec<String> {
    text.split(';').map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect()
}

pub fn parse_bool(text: &str) -> Option<bool> {
    match text.trim().to_ascii_lowercase().as_str() {
        "true" | "yes" | "1" => Some(true),
        "false" | "no" | "0" => Some(false),
        _ => None,
    }
}

/// `YYYY-MM-DD` exactly, without the cost of a format string: the common case of every export.
fn plain_date(text: &str) -> Option<NaiveDate> {
    let b = text.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let number = |r: std::ops::Range<usize>| {
        b[r].iter().try_fold(0u32, |n, &c| c.is_ascii_digit().then(|| n * 10 + u32::from(c - b'0')))
    };
    NaiveDate::from_ymd_opt(i32::try_from(number(0..4)?).ok()?, number(5..7)?, number(8..10)?)
}

/// A date, or a date-time taken as its UTC date.
fn parse_date(text: &str) -> Option<i32> {
    let date = plain_date(text)
        .or_else(|| NaiveDate::parse_from_str(text, "%Y-%m-%d").ok())
        .or_else(|| parse_instant(text).map(|t| t.date_naive()))?;
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1)?;
    i32::try_from((date - epoch).num_days()).ok()
}

/// A date (midnight UTC) or an ISO-8601 date-time, as microseconds since the epoch.
fn parse_timestamp(text: &str) -> Option<i64> {
    // Longer than YYYY-MM-DD: only a date-time can match (parse_instant tries RFC 3339 first).
    if text.len() > 10 {
        return parse_instant(text).map(|t| t.timestamp_micros());
    }
    if let Some(date) = plain_date(text).or_else(|| NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()) {
        return Some(DateTime::<Utc>::from_naive_utc_and_offset(date.and_hms_opt(0, 0, 0)?, Utc).timestamp_micros());
    }
    parse_instant(text).map(|t| t.timestamp_micros())
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::AsArray;

    fn text(s: &str) -> Raw {
        Raw::Text(s.to_string())
    }

    fn feature(overrides: &[(&str, &str)]) -> Vec<Raw> {
        let mut row: Vec<Raw> = columns(Table::Features).iter().map(|_| Raw::Null).collect();
        let base = [
            ("feature_id", "F1"),
            ("title", "Login"),
            ("systems", "auth; payments"),
            ("estimated_weeks", "2"),
            ("actual_weeks", "3"),
            ("started_at", "2026-01-01"),
            ("shipped_at", "2026-02-01T10:00:00+01:00"),
        ];
        for (name, value) in base.iter().chain(overrides) {
            let i = columns(Table::Features).iter().position(|c| c.name == *name).unwrap();
            row[i] = if value.is_empty() { Raw::Null } else { text(value) };
        }
        row
    }

    fn refusal(row: &[Raw]) -> Refusal {
        RowBuilder::new(Table::Features).push(row).unwrap_err()
    }

    #[test]
    fn a_good_row_is_converted_with_defaults() {
        let mut b = RowBuilder::new(Table::Features);
        b.push(&feature(&[("dod_docs", "Yes")])).unwrap();
        let batch = b.finish().unwrap();
        assert_eq!(batch.num_rows(), 1);
        assert_eq!(batch.column_by_name("work_type").unwrap().as_string::<i32>().value(0), "product");
        let delay = batch.column_by_name("delay_days").unwrap();
        assert_eq!(delay.as_primitive::<datafusion::arrow::datatypes::Float64Type>().value(0), 0.0);
        let systems = batch.column_by_name("systems").unwrap().as_list::<i32>().value(0);
        assert_eq!(systems.as_string::<i32>().iter().flatten().collect::<Vec<_>>(), ["auth", "payments"]);
        let shipped = batch.column_by_name("shipped_at").unwrap();
        let micros = shipped.as_primitive::<datafusion::arrow::datatypes::TimestampMicrosecondType>().value(0);
        assert_eq!(DateTime::from_timestamp_micros(micros).unwrap().to_rfc3339(), "2026-02-01T09:00:00+00:00");
    }

    #[test]
    fn repeated_keys_are_noticed_after_conversion() {
        let mut b = RowBuilder::new(Table::Features);
        b.push(&feature(&[("feature_id", "F1")])).unwrap();
        b.push(&feature(&[("feature_id", "F2")])).unwrap();
        assert!(!b.repeated_keys);
        // A refused row is not a key seen.
        b.push(&feature(&[("feature_id", "F3"), ("estimated_weeks", "0")])).unwrap_err();
        b.push(&feature(&[("feature_id", " F1 ")])).unwrap();
        assert!(b.repeated_keys, "F1 and ' F1 ' are one key once trimmed");

        // Capacity's key is (period_start, team): the same date written two ways is one key.
        let mut c = RowBuilder::new(Table::Capacity);
        let row = |start: &str| -> Vec<Raw> {
            columns(Table::Capacity)
                .iter()
                .map(|spec| match spec.name {
                    "period_start" => text(start),
                    "period_end" => text("2026-04-01"),
                    "team" => text("core"),
                    "budget" => text("1000"),
                    _ => Raw::Null,
                })
                .collect()
        };
        c.push(&row("2026-01-01")).unwrap();
        assert!(!c.repeated_keys);
        c.push(&row("2026-01-01T00:00:00Z")).unwrap();
        assert!(c.repeated_keys);
    }

    #[test]
    fn plain_dates_parse_fast_and_odd_ones_still_parse() {
        assert_eq!(plain_date("2026-02-28"), NaiveDate::from_ymd_opt(2026, 2, 28));
        assert_eq!(plain_date("2026-02-30"), None);
        assert_eq!(plain_date("2026-2-28"), None);
        assert_eq!(plain_date("20x6-02-28"), None);
        assert_eq!(parse_date("2026-2-8"), parse_date("2026-02-08"), "the slow path still takes it");
        assert_eq!(parse_timestamp("2026-01-01"), Some(1_767_225_600_000_000));
        assert_eq!(parse_timestamp("2026-01-01T01:00:00+01:00"), Some(1_767_225_600_000_000));
        assert_eq!(parse_timestamp("2026-01-01 00:00"), Some(1_767_225_600_000_000));
    }

    #[test]
    fn each_rule_names_its_column_and_reason() {
        let cases = [
            (feature(&[("estimated_weeks", "0")]), "estimated_weeks", "greater than 0"),
            (feature(&[("estimated_weeks", "-1")]), "estimated_weeks", "greater than 0"),
            (feature(&[("estimated_weeks", "two")]), "estimated_weeks", "not a number"),
            (feature(&[("estimated_weeks", "")]), "estimated_weeks", "required"),
            (feature(&[("systems", " ; ")]), "systems", "at least one"),
            (feature(&[("systems", "")]), "systems", "required"),
            (feature(&[("work_type", "chore")]), "work_type", "one of product, quality"),
            (feature(&[("actual_weeks", "-2")]), "actual_weeks", "not be negative"),
            (feature(&[("shipped_at", "2025-12-01")]), "shipped_at", "before started_at"),
            (feature(&[("shipped_at", "31/12/2025")]), "shipped_at", "ISO-8601"),
            (feature(&[("dod_docs", "maybe")]), "dod_docs", "not a boolean"),
            (feature(&[("title", "  ")]), "title", "required"),
        ];
        for (row, column, reason) in cases {
            let r = refusal(&row);
            assert_eq!(r.column.as_deref(), Some(column), "{r:?}");
            assert!(r.reason.contains(reason), "{column}: {r:?}");
        }
    }

    #[test]
    fn a_refused_row_leaves_nothing_behind() {
        let mut b = RowBuilder::new(Table::Features);
        b.push(&feature(&[])).unwrap();
        b.push(&feature(&[("shipped_at", "2025-01-01")])).unwrap_err();
        assert_eq!(b.len(), 1);
        assert_eq!(b.finish().unwrap().num_rows(), 1);
    }

    #[test]
    fn capacity_periods_must_have_a_positive_length() {
        let mut b = RowBuilder::new(Table::Capacity);
        let row = |start: &str, end: &str| vec![text(start), text(end), Raw::Null, text("10"), Raw::Null, Raw::Null];
        b.push(&row("2026-01-01", "2026-04-01")).unwrap();
        assert!(b.push(&row("2026-04-01", "2026-04-01")).unwrap_err().reason.contains("after period_start"));
        let batch = b.finish().unwrap();
        let target = batch.column_by_name("quality_share_target").unwrap();
        assert_eq!(target.as_primitive::<datafusion::arrow::datatypes::Float64Type>().value(0), 0.2);
    }

    #[test]
    fn severities_are_normalised_and_checked() {
        let mut b = RowBuilder::new(Table::Incidents);
        let row = |sev: &str| {
            vec![
                text("I1"),
                text("api"),
                text(sev),
                Raw::Null,
                text("2026-01-01 10:00"),
                Raw::Null,
                text("3"),
                text("no"),
                Raw::Null,
            ]
        };
        b.push(&row("SEV2")).unwrap();
        let r = b.push(&row("critical")).unwrap_err();
        assert_eq!(r.column.as_deref(), Some("severity"));
        assert_eq!(b.finish().unwrap().column_by_name("severity").unwrap().as_string::<i32>().value(0), "sev2");
    }
}
