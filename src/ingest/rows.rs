//! Row validation and conversion: raw cells (text, or lists of text) in, typed Arrow batches of
//! the table's schema out. Every rule of data-model.md is checked here, per row; a row that
//! breaks one is refused whole, with the column, its raw value and the reason.

use std::borrow::Cow;
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use datafusion::arrow::array::{
    ArrayBuilder, ArrayRef, BooleanBuilder, Date32Builder, Float64Builder, Int64Builder, ListBuilder, RecordBatch,
    StringBuilder, TimestampMicrosecondBuilder,
};
use datafusion::arrow::datatypes::{DataType, SchemaRef};

use crate::error::Result;
use crate::schema::Table;
use crate::time::parse_instant;

/// One cell as read from an input, before conversion. Text borrows from the record it was read
/// from where it can (a CSV record), or is owned (JSON, Parquet, a mapping's result).
#[derive(Debug, Clone, PartialEq)]
pub enum Raw<'a> {
    Null,
    Text(Cow<'a, str>),
    List(Vec<String>),
}

impl Raw<'_> {
    /// The cell as the user wrote it, for the rejected-rows table.
    pub fn display(&self) -> String {
        match self {
            Raw::Null => String::new(),
            Raw::Text(s) => s.to_string(),
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
const STATUSES: &[&str] = &["success", "failure"];

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
        opt("cost_of_delay_per_week", Rule::NonNegative),
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
        opt("deployment_id", Rule::Any),
    ];
    const CAPACITY: &[ColumnSpec] = &[
        req("period_start", Rule::Any),
        req("period_end", Rule::Any),
        opt("team", Rule::Any),
        req("budget", Rule::NonNegative),
        opt("engineer_weeks", Rule::Positive),
        def("quality_share_target", Rule::Share, "0.2"),
    ];
    const BACKLOG: &[ColumnSpec] = &[
        req("item_id", Rule::Any),
        req("title", Rule::Any),
        opt("team", Rule::Any),
        req("systems", Rule::NonEmptyList),
        req("estimated_weeks", Rule::Positive),
        opt("priority", Rule::Any),
        opt("planned_start", Rule::Any),
        def("work_type", Rule::OneOf(WORK_TYPES), "product"),
        opt("cost_of_delay_per_week", Rule::NonNegative),
    ];
    const DEPLOYMENTS: &[ColumnSpec] = &[
        req("deployment_id", Rule::Any),
        req("system", Rule::Any),
        req("deployed_at", Rule::Any),
        def("environment", Rule::Any, "production"),
        def("status", Rule::OneOf(STATUSES), "success"),
        opt("feature_ids", Rule::Any),
        opt("commit_shas", Rule::Any),
        opt("first_commit_at", Rule::Any),
        opt("caused_incident_ids", Rule::Any),
        opt("rollback_of", Rule::Any),
        opt("fixes_incident_ids", Rule::Any),
    ];
    match table {
        Table::Features => FEATURES,
        Table::Incidents => INCIDENTS,
        Table::Capacity => CAPACITY,
        Table::Backlog => BACKLOG,
        Table::Deployments => DEPLOYMENTS,
    }
}

/// A converted cell. Text borrows from the raw cell (or is a column's default or allowed word):
/// it is copied once, into the column's builder.
#[derive(Debug, Clone, PartialEq)]
enum Value<'a> {
    Null,
    Str(&'a str),
    F64(f64),
    I64(i64),
    Bool(bool),
    /// Microseconds since the epoch, UTC.
    Ts(i64),
    /// Days since the epoch.
    Date(i32),
    List(Vec<&'a str>),
}

impl Value<'_> {
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
    builders: Vec<Column>,
    now_micros: i64,
    /// The two columns that must be in order (start, end), and whether they may be equal:
    /// resolved once, not per row. `None` for a table without such a pair (backlog).
    order: Option<(usize, usize, bool)>,
    /// Rows with a date after now: loaded, with a warning.
    pub future_dates: usize,
    /// The key columns, and a hash of every key seen: when no two rows share a hash, the rows
    /// are known to have distinct keys and the upsert skips removing duplicates. (Two keys with
    /// the same hash only cost that skip.) Eight bytes a row, compared once at the end (a sort
    /// of a million hashes takes milliseconds; a set was a cache miss a row).
    key_columns: Vec<usize>,
    key_hashes: Vec<u64>,
}

impl RowBuilder {
    pub fn new(table: Table) -> Self {
        let schema = table.schema();
        let builders = schema.fields().iter().map(|f| Column::new(f.data_type())).collect();
        Self {
            table,
            schema,
            builders,
            now_micros: Utc::now().timestamp_micros(),
            order: date_order(table),
            future_dates: 0,
            key_columns: table
                .key()
                .iter()
                .map(|k| columns(table).iter().position(|c| c.name == *k).expect("a key is a column"))
                .collect(),
            key_hashes: Vec::new(),
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
        let mut values = Vec::with_capacity(row.len());
        for (spec, (field, raw)) in columns(self.table).iter().zip(self.schema.fields().iter().zip(row)) {
            values.push(convert(spec, field.data_type(), raw)?);
        }
        self.check_row(row, &values)?;
        if values.iter().any(|v| matches!(v, Value::Ts(t) if *t > self.now_micros)) {
            self.future_dates += 1;
        }
        let mut hasher = std::hash::DefaultHasher::new();
        for &i in &self.key_columns {
            values[i].hash_into(&mut hasher);
        }
        self.key_hashes.push(std::hash::Hasher::finish(&hasher));
        for (builder, value) in self.builders.iter_mut().zip(values) {
            builder.append(value);
        }
        Ok(())
    }

    /// Rules across columns: date order.
    fn check_row(&self, row: &[Raw], values: &[Value]) -> Result<(), Refusal> {
        let Some((a, b, strict)) = self.order else { return Ok(()) };
        let specs = columns(self.table);
        let (first, second) = (specs[a].name, specs[b].name);
        let order = match (&values[a], &values[b]) {
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

    /// Whether two of the rows pushed so far may share a key.
    pub fn repeated_keys(&mut self) -> bool {
        self.key_hashes.sort_unstable();
        self.key_hashes.windows(2).any(|pair| pair[0] == pair[1])
    }

    /// The rows so far as one batch; the builders start again empty.
    pub fn finish(&mut self) -> Result<RecordBatch> {
        let columns: Vec<ArrayRef> = self.builders.iter_mut().map(Column::finish).collect();
        Ok(RecordBatch::try_new(Arc::clone(&self.schema), columns)?)
    }
}

/// The columns of `table` whose dates must be in order, and whether they may be equal.
fn date_order(table: Table) -> Option<(usize, usize, bool)> {
    let specs = columns(table);
    let index = |name: &str| specs.iter().position(|c| c.name == name).expect("column of the table");
    match table {
        Table::Features => Some((index("started_at"), index("shipped_at"), false)),
        Table::Incidents => Some((index("started_at"), index("resolved_at"), false)),
        Table::Capacity => Some((index("period_start"), index("period_end"), true)),
        Table::Backlog => None,
        Table::Deployments => Some((index("first_commit_at"), index("deployed_at"), true)),
    }
}

/// The builder of one column, by the column's type.
enum Column {
    Str(StringBuilder),
    F64(Float64Builder),
    I64(Int64Builder),
    Bool(BooleanBuilder),
    Date(Date32Builder),
    Ts(TimestampMicrosecondBuilder),
    List(ListBuilder<StringBuilder>),
}

impl Column {
    fn new(t: &DataType) -> Self {
        match t {
            DataType::Utf8 => Self::Str(StringBuilder::new()),
            DataType::Float64 => Self::F64(Float64Builder::new()),
            DataType::Int64 => Self::I64(Int64Builder::new()),
            DataType::Boolean => Self::Bool(BooleanBuilder::new()),
            DataType::Date32 => Self::Date(Date32Builder::new()),
            DataType::Timestamp(..) => Self::Ts(TimestampMicrosecondBuilder::new().with_timezone("UTC")),
            DataType::List(_) => Self::List(ListBuilder::new(StringBuilder::new())),
            other => unreachable!("no table has a column of type {other}"),
        }
    }

    fn len(&self) -> usize {
        match self {
            Self::Str(b) => b.len(),
            Self::F64(b) => b.len(),
            Self::I64(b) => b.len(),
            Self::Bool(b) => b.len(),
            Self::Date(b) => b.len(),
            Self::Ts(b) => b.len(),
            Self::List(b) => b.len(),
        }
    }

    /// Appends a value converted for this column's type (`convert` makes sure of it); any
    /// other value is appended as null.
    fn append(&mut self, value: Value) {
        match (self, value) {
            (Self::Str(b), Value::Str(s)) => b.append_value(s),
            (Self::F64(b), Value::F64(x)) => b.append_value(x),
            (Self::I64(b), Value::I64(x)) => b.append_value(x),
            (Self::Bool(b), Value::Bool(x)) => b.append_value(x),
            (Self::Date(b), Value::Date(x)) => b.append_value(x),
            (Self::Ts(b), Value::Ts(x)) => b.append_value(x),
            (Self::List(b), Value::List(items)) => b.append_value(items.into_iter().map(Some)),
            (Self::Str(b), _) => b.append_null(),
            (Self::F64(b), _) => b.append_null(),
            (Self::I64(b), _) => b.append_null(),
            (Self::Bool(b), _) => b.append_null(),
            (Self::Date(b), _) => b.append_null(),
            (Self::Ts(b), _) => b.append_null(),
            (Self::List(b), _) => b.append_null(),
        }
    }

    fn finish(&mut self) -> ArrayRef {
        match self {
            Self::Str(b) => Arc::new(b.finish()),
            Self::F64(b) => Arc::new(b.finish()),
            Self::I64(b) => Arc::new(b.finish()),
            Self::Bool(b) => Arc::new(b.finish()),
            Self::Date(b) => Arc::new(b.finish()),
            Self::Ts(b) => Arc::new(b.finish()),
            Self::List(b) => Arc::new(b.finish()),
        }
    }
}

/// Converts one raw cell to the column's type and checks the column's rule.
fn convert<'a>(spec: &ColumnSpec, t: &DataType, raw: &'a Raw<'_>) -> Result<Value<'a>, Refusal> {
    let name = spec.name;
    let text = match raw {
        Raw::Text(s) => trim(s),
        _ => "",
    };
    // An absent or blank cell takes the default, if any.
    let blank = match raw {
        Raw::Null => true,
        Raw::Text(_) => text.is_empty(),
        Raw::List(_) => false,
    };
    if blank {
        if let Some(default) = spec.default {
            return convert_text(spec, t, raw, default);
        }
        return if spec.required {
            Err(Refusal::cell(name, raw, format!("{name} is required")))
        } else if matches!(t, DataType::List(_)) {
            Ok(Value::List(Vec::new()))
        } else {
            Ok(Value::Null)
        };
    }
    match raw {
        Raw::List(items) if matches!(t, DataType::List(_)) => {
            let items: Vec<&str> = items.iter().map(|s| s.trim()).filter(|s| !s.is_empty()).collect();
            list(spec, raw, items)
        }
        _ => convert_text(spec, t, raw, text),
    }
}

/// `s` without leading and trailing white space, quickly when it has none (most cells).
fn trim(s: &str) -> &str {
    match (s.as_bytes().first(), s.as_bytes().last()) {
        (Some(a), Some(z)) if a.is_ascii_graphic() && z.is_ascii_graphic() => s,
        _ => s.trim(),
    }
}

/// Converts the (trimmed) text of a cell, or a column's default; `raw` is the cell as given,
/// for a refusal.
fn convert_text<'a>(spec: &ColumnSpec, t: &DataType, raw: &Raw, text: &'a str) -> Result<Value<'a>, Refusal> {
    let name = spec.name;
    let value = match t {
        DataType::Utf8 => match spec.rule {
            // The allowed words are lower-case ASCII: any other case of one of them is it.
            Rule::OneOf(allowed) => match allowed.iter().find(|word| word.eq_ignore_ascii_case(text)) {
                Some(word) => Value::Str(word),
                None => {
                    return Err(Refusal::cell(name, raw, format!("{name} must be one of {}", allowed.join(", "))));
                }
            },
            _ => Value::Str(text),
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
        DataType::List(_) => return list(spec, raw, split_items(text).collect()),
        other => unreachable!("no table has a column of type {other}"),
    };
    Ok(value)
}

/// A list cell's items, checked against the column's rule.
fn list<'a>(spec: &ColumnSpec, raw: &Raw, items: Vec<&'a str>) -> Result<Value<'a>, Refusal> {
    if spec.rule == Rule::NonEmptyList && items.is_empty() {
        let name = spec.name;
        return Err(Refusal::cell(name, raw, format!("{name} needs at least one value")));
    }
    Ok(Value::List(items))
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
    split_items(text).map(str::to_string).collect()
}

fn split_items(text: &str) -> impl Iterator<Item = &str> {
    text.split(';').map(str::trim).filter(|s| !s.is_empty())
}

pub fn parse_bool(text: &str) -> Option<bool> {
    let text = trim(text);
    let is = |word: &str| text.eq_ignore_ascii_case(word);
    if is("true") || is("yes") || is("1") {
        Some(true)
    } else if is("false") || is("no") || is("0") {
        Some(false)
    } else {
        None
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

    fn text(s: &str) -> Raw<'static> {
        Raw::Text(s.to_string().into())
    }

    fn feature(overrides: &[(&str, &str)]) -> Vec<Raw<'static>> {
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
        assert!(!b.repeated_keys());
        // A refused row is not a key seen.
        b.push(&feature(&[("feature_id", "F3"), ("estimated_weeks", "0")])).unwrap_err();
        b.push(&feature(&[("feature_id", " F1 ")])).unwrap();
        assert!(b.repeated_keys(), "F1 and ' F1 ' are one key once trimmed");

        // Capacity's key is (period_start, team): the same date written two ways is one key.
        let mut c = RowBuilder::new(Table::Capacity);
        let row = |start: &str| -> Vec<Raw<'static>> {
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
        assert!(!c.repeated_keys());
        c.push(&row("2026-01-01T00:00:00Z")).unwrap();
        assert!(c.repeated_keys());
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
                Raw::Null,
            ]
        };
        b.push(&row("SEV2")).unwrap();
        let r = b.push(&row("critical")).unwrap_err();
        assert_eq!(r.column.as_deref(), Some("severity"));
        assert_eq!(b.finish().unwrap().column_by_name("severity").unwrap().as_string::<i32>().value(0), "sev2");
    }
}
