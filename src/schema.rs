//! The four tables of the store as Arrow schemas (data-model.md, "Tables"), and the check that a
//! table found on disk has the columns and types debtlens relies on.

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};

use crate::error::{Error, Result};

/// The tables of a store, in the order they are created and listed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Table {
    Features,
    Incidents,
    Capacity,
    Backlog,
    Deployments,
}

impl Table {
    pub const ALL: [Table; 5] =
        [Table::Features, Table::Incidents, Table::Capacity, Table::Backlog, Table::Deployments];

    /// What one row is (data-model.md).
    pub fn description(self) -> &'static str {
        match self {
            Table::Features => "one row per feature or epic, shipped or in progress",
            Table::Incidents => "one row per incident",
            Table::Capacity => "engineering capacity per period: budget, engineer-weeks, quality target",
            Table::Backlog => "one row per planned item not started or not shipped yet",
            Table::Deployments => "one row per deployment of a system: what shipped, when, and what it caused",
        }
    }

    /// What a column holds and its rule (data-model.md's tables): the comment BI tools show for
    /// it (the server's `pg_description`). `None` for a column the table does not have.
    pub fn column_description(self, column: &str) -> Option<&'static str> {
        let dod = "the shared definition of done: whether this item was delivered (null: unknown)";
        Some(match (self, column) {
            (Table::Features, "feature_id") => {
                "the feature's id; unique key: ingesting the same id again replaces the row"
            }
            (Table::Features, "title") | (Table::Backlog, "title") => "what the work is",
            (Table::Features, "team") | (Table::Backlog, "team") => "the team that owns the work (nullable)",
            (Table::Features, "systems") => "the systems the feature touched, at least one",
            (Table::Features, "work_type") | (Table::Backlog, "work_type") => {
                "product (product-requested) or quality (engineering-owned: debt, infrastructure, tests)"
            }
            (Table::Features, "estimated_weeks") => "the estimate before work started, in weeks (> 0)",
            (Table::Features, "actual_weeks") => "the weeks it really took; null while not shipped",
            (Table::Features, "delay_days") => "days the feature was late, >= 0",
            (Table::Features, "delay_reasons") => "why it was late (may be empty)",
            (Table::Features, "started_at") => "when work started (UTC, nullable)",
            (Table::Features, "shipped_at") => "when it shipped (UTC); null while not shipped",
            (Table::Features, c) if DOD_COLUMNS.contains(&c) => dod,
            (Table::Incidents, "incident_id") => "the incident's id; unique key",
            (Table::Incidents, "system") => "the system where it happened",
            (Table::Incidents, "severity") => "sev1 ... sev4, sev1 the worst",
            (Table::Incidents, "title") => "what happened (nullable)",
            (Table::Incidents, "started_at") => "when it started (UTC)",
            (Table::Incidents, "resolved_at") => "when it was resolved (UTC); null while open",
            (Table::Incidents, "users_affected") => "users affected (nullable, >= 0)",
            (Table::Incidents, "debt_related") => "true when the root cause lies in known debt (nullable)",
            (Table::Incidents, "feature_id") => "the feature whose change caused it (nullable)",
            (Table::Capacity, "period_start") => "the first day of the period; with team, the unique key",
            (Table::Capacity, "period_end") => "the day after the period (exclusive)",
            (Table::Capacity, "team") => "the team; null means the whole organisation",
            (Table::Capacity, "budget") => "the period's engineering budget, in the store's currency (>= 0)",
            (Table::Capacity, "engineer_weeks") => "engineer-weeks available in the period (nullable, > 0)",
            (Table::Capacity, "quality_share_target") => "the share of capacity meant for quality work (default 0.2)",
            (Table::Backlog, "item_id") => "the planned item's id; unique key",
            (Table::Backlog, "systems") => "the systems the item will touch, at least one",
            (Table::Backlog, "estimated_weeks") => "the team's estimate in weeks (> 0)",
            (Table::Backlog, "priority") => "the order of work within the team, lower first (nullable: last)",
            (Table::Backlog, "planned_start") => "the earliest day work may start (nullable)",
            (Table::Incidents, "deployment_id") => "the deployment whose change caused it (nullable)",
            (Table::Deployments, "deployment_id") => "the deployment's id; unique key",
            (Table::Deployments, "system") => "the system deployed",
            (Table::Deployments, "deployed_at") => "when it reached its environment (UTC)",
            (Table::Deployments, "environment") => {
                "where it went; production unless said (the keys count production only)"
            }
            (Table::Deployments, "status") => "success, or failure (it never reached the environment)",
            (Table::Deployments, "feature_ids") => "the features it shipped (nullable)",
            (Table::Deployments, "commit_shas") => "the commits it shipped (nullable)",
            (Table::Deployments, "first_commit_at") => {
                "when the oldest change it shipped was committed (for lead time)"
            }
            (Table::Deployments, "caused_incident_ids") => "the incidents its change caused (nullable)",
            (Table::Deployments, "rollback_of") => "the deployment it rolled back (nullable)",
            (Table::Deployments, "fixes_incident_ids") => "the incidents it was made to fix: unplanned work (nullable)",
            (Table::Features, COST_OF_DELAY) | (Table::Backlog, COST_OF_DELAY) => {
                "what a week of delay costs once the work would have shipped (revenue, savings or risk, as product \
                 estimates it), in the store's currency; nullable, >= 0"
            }
            _ => return None,
        })
    }

    /// The table's name, which is also its folder in the store and its SQL name.
    pub fn name(self) -> &'static str {
        match self {
            Table::Features => "features",
            Table::Incidents => "incidents",
            Table::Capacity => "capacity",
            Table::Backlog => "backlog",
            Table::Deployments => "deployments",
        }
    }

    /// The columns that identify a row: ingesting a row with the same key replaces it.
    pub fn key(self) -> &'static [&'static str] {
        match self {
            Table::Features => &["feature_id"],
            Table::Incidents => &["incident_id"],
            Table::Capacity => &["period_start", "team"],
            Table::Backlog => &["item_id"],
            Table::Deployments => &["deployment_id"],
        }
    }

    /// The Arrow schema of the table, exactly as data-model.md gives it. Required columns are
    /// not nullable in the tables debtlens writes.
    pub fn schema(self) -> SchemaRef {
        Arc::new(Schema::new(match self {
            Table::Features => features_fields(),
            Table::Incidents => vec![
                Field::new("incident_id", DataType::Utf8, false),
                Field::new("system", DataType::Utf8, false),
                Field::new("severity", DataType::Utf8, false),
                Field::new("title", DataType::Utf8, true),
                Field::new("started_at", timestamp(), false),
                Field::new("resolved_at", timestamp(), true),
                Field::new("users_affected", DataType::Int64, true),
                Field::new("debt_related", DataType::Boolean, true),
                Field::new("feature_id", DataType::Utf8, true),
                Field::new("deployment_id", DataType::Utf8, true),
            ],
            Table::Capacity => vec![
                Field::new("period_start", DataType::Date32, false),
                Field::new("period_end", DataType::Date32, false),
                Field::new("team", DataType::Utf8, true),
                Field::new("budget", DataType::Float64, false),
                Field::new("engineer_weeks", DataType::Float64, true),
                Field::new("quality_share_target", DataType::Float64, false),
            ],
            Table::Backlog => vec![
                Field::new("item_id", DataType::Utf8, false),
                Field::new("title", DataType::Utf8, false),
                Field::new("team", DataType::Utf8, true),
                Field::new("systems", string_list(), false),
                Field::new("estimated_weeks", DataType::Float64, false),
                Field::new("priority", DataType::Int64, true),
                Field::new("planned_start", DataType::Date32, true),
                Field::new("work_type", DataType::Utf8, false),
                Field::new(COST_OF_DELAY, DataType::Float64, true),
            ],
            Table::Deployments => vec![
                Field::new("deployment_id", DataType::Utf8, false),
                Field::new("system", DataType::Utf8, false),
                Field::new("deployed_at", timestamp(), false),
                Field::new("environment", DataType::Utf8, false),
                Field::new("status", DataType::Utf8, false),
                Field::new("feature_ids", string_list(), true),
                Field::new("commit_shas", string_list(), true),
                Field::new("first_commit_at", timestamp(), true),
                Field::new("caused_incident_ids", string_list(), true),
                Field::new("rollback_of", DataType::Utf8, true),
                Field::new("fixes_incident_ids", string_list(), true),
            ],
        }))
    }

    /// Tables added after stores were first written: a store without one reads it as empty.
    pub fn added_later_table(self) -> bool {
        matches!(self, Table::Backlog | Table::Deployments)
    }

    /// Columns added after stores were first written (nullable ones): a table found without one
    /// reads it as null, and the next ingest adds it to the table.
    pub fn added_later(self, column: &str) -> bool {
        matches!(
            (self, column),
            (Table::Features | Table::Backlog, COST_OF_DELAY) | (Table::Incidents, "deployment_id")
        )
    }
}

/// The value of a week of delay of a feature or planned item (the cost of delay issue).
pub const COST_OF_DELAY: &str = "cost_of_delay_per_week";

impl std::str::FromStr for Table {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        Table::ALL.into_iter().find(|t| t.name() == s).ok_or_else(|| {
            Error::Usage(format!("unknown table `{s}`: expected features, incidents, capacity, backlog or deployments"))
        })
    }
}

/// The rows that ingest refused, kept in the store's `_rejected/` table with where they came
/// from and why (data-model.md, "The store").
pub fn rejected_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("ingest_id", DataType::Utf8, false),
        Field::new("ingested_at", timestamp(), false),
        Field::new("table_name", DataType::Utf8, false),
        Field::new("source_file", DataType::Utf8, false),
        Field::new("line", DataType::Int64, false),
        Field::new("column_name", DataType::Utf8, true),
        Field::new("raw_value", DataType::Utf8, true),
        Field::new("reason", DataType::Utf8, false),
    ]))
}

/// The eight definition-of-done flags, in table order.
pub const DOD_COLUMNS: [&str; 8] = [
    "dod_acceptance",
    "dod_unit_tests",
    "dod_integration_tests",
    "dod_monitoring",
    "dod_feature_flag",
    "dod_docs",
    "dod_runbook",
    "dod_perf_benchmark",
];

/// `Timestamp(us, UTC)`, the type of every instant in the store.
pub fn timestamp() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

/// `List(Utf8)` with the element field Arrow and Delta use by default.
pub fn string_list() -> DataType {
    DataType::List(Arc::new(Field::new("item", DataType::Utf8, true)))
}

fn features_fields() -> Vec<Field> {
    let mut fields = vec![
        Field::new("feature_id", DataType::Utf8, false),
        Field::new("title", DataType::Utf8, false),
        Field::new("team", DataType::Utf8, true),
        Field::new("systems", string_list(), false),
        Field::new("work_type", DataType::Utf8, false),
        Field::new("estimated_weeks", DataType::Float64, false),
        Field::new("actual_weeks", DataType::Float64, true),
        Field::new("delay_days", DataType::Float64, false),
        Field::new("delay_reasons", string_list(), true),
        Field::new("started_at", timestamp(), true),
        Field::new("shipped_at", timestamp(), true),
    ];
    fields.extend(DOD_COLUMNS.iter().map(|c| Field::new(*c, DataType::Boolean, true)));
    fields.push(Field::new(COST_OF_DELAY, DataType::Float64, true));
    fields
}

/// How a table found on disk maps onto the spec.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Conform {
    /// The columns that must be cast to the spec's type on the way in (a lossless widening, such
    /// as an integer estimate or a nanosecond timestamp), in the found table's column order.
    pub casts: Vec<(String, DataType)>,
    /// Columns added to the spec after the table was written (`Table::added_later`), read as
    /// null.
    pub missing: Vec<Field>,
}

impl Conform {
    pub fn is_empty(&self) -> bool {
        self.casts.is_empty() && self.missing.is_empty()
    }
}

/// Checks that `found` has every column of `table` with the same logical type or one that
/// converts without loss, and returns what makes it conform. Extra columns are allowed;
/// nullability is not compared, since other tools write every column as nullable.
pub fn check(table: Table, found: &Schema) -> Result<Conform> {
    let mut conform = Conform::default();
    for expected in table.schema().fields() {
        let Ok(field) = found.field_with_name(expected.name()) else {
            if table.added_later(expected.name()) {
                conform.missing.push(expected.as_ref().clone());
                continue;
            }
            return Err(Error::ColumnType {
                table: table.name(),
                column: expected.name().clone(),
                expected: describe(expected.data_type()),
                found: "no such column".into(),
            });
        };
        match conformance(field.data_type(), expected.data_type()) {
            Conformance::Same => {}
            Conformance::Cast => conform.casts.push((field.name().clone(), expected.data_type().clone())),
            Conformance::Refused => {
                return Err(Error::ColumnType {
                    table: table.name(),
                    column: expected.name().clone(),
                    expected: describe(expected.data_type()),
                    found: describe(field.data_type()),
                });
            }
        }
    }
    Ok(conform)
}

enum Conformance {
    /// The same logical type (string views, large strings, list element names, UTC spellings).
    Same,
    /// Converts to the spec's type without loss.
    Cast,
    Refused,
}

fn conformance(found: &DataType, expected: &DataType) -> Conformance {
    if normalize(found) == normalize(expected) {
        return Conformance::Same;
    }
    let lossless = match (found, expected) {
        (f, DataType::Float64) => {
            f.is_integer() || matches!(f, DataType::Float16 | DataType::Float32 | DataType::Decimal128(..))
        }
        (f, DataType::Int64) => {
            matches!(
                f,
                DataType::Int8
                    | DataType::Int16
                    | DataType::Int32
                    | DataType::UInt8
                    | DataType::UInt16
                    | DataType::UInt32
            )
        }
        // An instant in any unit or zone is the same instant in UTC; a timestamp without a zone
        // is UTC, as in ingest.
        (DataType::Timestamp(..), DataType::Timestamp(..)) => true,
        (DataType::Date64, DataType::Date32) => true,
        _ => false,
    };
    if lossless { Conformance::Cast } else { Conformance::Refused }
}

/// Maps the physical variants that mean the same logical type onto one: string views and large
/// strings are strings, any list of strings is a list of strings whatever its element is called,
/// and the spellings of UTC are UTC.
fn normalize(t: &DataType) -> DataType {
    match t {
        DataType::Utf8View | DataType::LargeUtf8 => DataType::Utf8,
        DataType::Dictionary(_, value) => normalize(value),
        DataType::List(f) | DataType::LargeList(f) | DataType::ListView(f) | DataType::LargeListView(f) => {
            DataType::List(Arc::new(Field::new("item", normalize(f.data_type()), true)))
        }
        DataType::Timestamp(unit, Some(tz)) if matches!(tz.as_ref(), "UTC" | "+00:00" | "Z" | "Etc/UTC" | "+00") => {
            DataType::Timestamp(*unit, Some("UTC".into()))
        }
        other => other.clone(),
    }
}

/// A type as a reader of the spec writes it: `List(Utf8)`, `Timestamp(us, UTC)`.
pub fn describe(t: &DataType) -> String {
    match t {
        DataType::List(f) | DataType::LargeList(f) => format!("List({})", describe(f.data_type())),
        DataType::Timestamp(unit, tz) => {
            let unit = match unit {
                TimeUnit::Second => "s",
                TimeUnit::Millisecond => "ms",
                TimeUnit::Microsecond => "us",
                TimeUnit::Nanosecond => "ns",
            };
            match tz {
                Some(tz) => format!("Timestamp({unit}, {tz})"),
                None => format!("Timestamp({unit}, no time zone)"),
            }
        }
        other => other.to_string(),
    }
}

/// True when a column of that name holds lists in its table (`systems`, `delay_reasons`).
pub fn is_list_column(name: &str) -> bool {
    Table::ALL.iter().any(|t| {
        t.schema()
            .field_with_name(name)
            .is_ok_and(|f| matches!(f.data_type(), DataType::List(_) | DataType::LargeList(_)))
    })
}

/// The values of one row of a list column as text, null values left out; `None` for a null
/// list. Shared by the text writers and the Parquet reader of ingest.
pub fn list_items(column: &datafusion::arrow::array::ArrayRef, row: usize) -> Result<Option<Vec<String>>> {
    use datafusion::arrow::array::{Array, AsArray};
    use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
    if column.is_null(row) {
        return Ok(None);
    }
    let values = match column.data_type() {
        DataType::LargeList(_) => column.as_list::<i64>().value(row),
        _ => column.as_list::<i32>().value(row),
    };
    let formatter = ArrayFormatter::try_new(values.as_ref(), &FormatOptions::default())?;
    Ok(Some((0..values.len()).filter(|i| values.is_valid(*i)).map(|i| formatter.value(i).to_string()).collect()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string_variants_and_list_element_names_are_accepted() {
        let mut fields: Vec<Field> = Table::Features.schema().fields().iter().map(|f| f.as_ref().clone()).collect();
        fields[0] = Field::new("feature_id", DataType::Utf8View, true);
        fields[3] =
            Field::new("systems", DataType::List(Arc::new(Field::new("element", DataType::LargeUtf8, true))), true);
        assert!(check(Table::Features, &Schema::new(fields)).unwrap().is_empty());
    }

    #[test]
    fn a_column_added_later_may_be_missing_and_reads_as_null() {
        let fields: Vec<Field> = Table::Features
            .schema()
            .fields()
            .iter()
            .filter(|f| f.name() != COST_OF_DELAY)
            .map(|f| f.as_ref().clone())
            .collect();
        let conform = check(Table::Features, &Schema::new(fields.clone())).unwrap();
        assert!(conform.casts.is_empty());
        assert_eq!(conform.missing, vec![Field::new(COST_OF_DELAY, DataType::Float64, true)]);
        // Any other missing column is refused.
        let err = check(Table::Features, &Schema::new(fields[1..].to_vec())).unwrap_err().to_string();
        assert!(err.contains("feature_id") && err.contains("no such column"), "{err}");
    }

    #[test]
    fn a_wrong_type_names_table_column_expected_and_found() {
        let mut fields: Vec<Field> = Table::Features.schema().fields().iter().map(|f| f.as_ref().clone()).collect();
        fields[5] = Field::new("estimated_weeks", DataType::Utf8, true);
        let err = check(Table::Features, &Schema::new(fields)).unwrap_err().to_string();
        assert!(err.contains("features") && err.contains("estimated_weeks"), "{err}");
        assert!(err.contains("Float64") && err.contains("Utf8"), "{err}");
    }

    #[test]
    fn lossless_variants_are_cast_to_the_spec() {
        let mut fields: Vec<Field> = Table::Incidents.schema().fields().iter().map(|f| f.as_ref().clone()).collect();
        fields[4] = Field::new("started_at", DataType::Timestamp(TimeUnit::Nanosecond, None), true);
        fields[6] = Field::new("users_affected", DataType::Int32, true);
        let casts = check(Table::Incidents, &Schema::new(fields)).unwrap().casts;
        assert_eq!(
            casts,
            vec![("started_at".to_string(), timestamp()), ("users_affected".to_string(), DataType::Int64)]
        );
    }

    #[test]
    fn text_where_a_time_belongs_is_refused() {
        let mut fields: Vec<Field> = Table::Incidents.schema().fields().iter().map(|f| f.as_ref().clone()).collect();
        fields[5] = Field::new("resolved_at", DataType::Utf8, true);
        let err = check(Table::Incidents, &Schema::new(fields)).unwrap_err().to_string();
        assert!(
            err.contains("resolved_at") && err.contains("Timestamp(us, UTC)") && err.contains("found Utf8"),
            "{err}"
        );
    }
}
