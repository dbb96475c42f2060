//! Where a result's columns come from, as PostgreSQL's RowDescription says it: the OID of the
//! table (or view) and the column's number in it, for each column read as it is; 0 for a
//! computed one. pgjdbc's `ResultSetMetaData.getTableName`, `isNullable` and
//! `isAutoIncrement` (DBeaver's and DataGrip's editors, Metabase's native queries) look the pair
//! up in `pg_class` and `pg_attribute`; with 0 they answered "" and "unknown".
//!
//! The OIDs are datafusion-pg-catalog's, which it hands out as it lists each snapshot's tables:
//! they are read from `pg_attribute` once per snapshot (keyed by the tables' versions), so the
//! numbers in a RowDescription are the ones the client finds in the catalog.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::Int32Type;
use datafusion::logical_expr::{Distinct, Expr, JoinType, LogicalPlan};
use datafusion_postgres::pgwire::api::results::FieldInfo;

use crate::engine::Engine;
use crate::schema::Table;

/// (schema, relation, column) to (relation OID, column number).
type Columns = HashMap<(String, String, String), (i32, i16)>;

/// The tables' versions of a snapshot, with its catalog's column numbers.
type Snapshot = (Vec<(Table, Option<u64>)>, Arc<Columns>);

/// The catalog's column numbers of one snapshot, fetched when first asked for.
#[derive(Default)]
pub struct Origins {
    cached: Mutex<Option<Snapshot>>,
}

impl Origins {
    /// The numbers of the engine's current snapshot: fetched when its tables' versions differ
    /// from the cached ones. A catalog that cannot be read gives none (RowDescriptions say 0,
    /// as before), never an error for the client's query.
    pub async fn refresh(&self, engine: &Engine) -> Arc<Columns> {
        let versions = engine.table_versions();
        if let Some((cached_versions, columns)) = self.cached.lock().unwrap_or_else(|e| e.into_inner()).as_ref()
            && *cached_versions == versions
        {
            return Arc::clone(columns);
        }
        let columns = Arc::new(read_columns(engine).await.unwrap_or_default());
        *self.cached.lock().unwrap_or_else(|e| e.into_inner()) = Some((versions, Arc::clone(&columns)));
        columns
    }

    /// The numbers last fetched (for a Describe, which cannot wait: the Parse before it fetched
    /// them).
    pub fn cached(&self) -> Arc<Columns> {
        self.cached.lock().unwrap_or_else(|e| e.into_inner()).as_ref().map(|(_, c)| Arc::clone(c)).unwrap_or_default()
    }
}

async fn read_columns(engine: &Engine) -> crate::error::Result<Columns> {
    let sql = "SELECT n.nspname, c.relname, a.attname, CAST(c.oid AS INT), CAST(a.attnum AS INT) \
               FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
               JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid WHERE a.attnum > 0";
    let result = engine.session().execute(sql).await?;
    let mut columns = Columns::new();
    for batch in &result.batches {
        let text =
            |i: usize| datafusion::arrow::compute::cast(batch.column(i), &datafusion::arrow::datatypes::DataType::Utf8);
        let (schema, relation, column) = (text(0)?, text(1)?, text(2)?);
        let (schema, relation, column) =
            (schema.as_string::<i32>(), relation.as_string::<i32>(), column.as_string::<i32>());
        let (oid, number) = (batch.column(3).as_primitive::<Int32Type>(), batch.column(4).as_primitive::<Int32Type>());
        for row in 0..batch.num_rows() {
            if schema.is_null(row) || relation.is_null(row) || column.is_null(row) || oid.is_null(row) {
                continue;
            }
            let Ok(number) = i16::try_from(number.value(row)) else { continue };
            columns.insert(
                (schema.value(row).to_string(), relation.value(row).to_string(), column.value(row).to_string()),
                (oid.value(row), number),
            );
        }
    }
    Ok(columns)
}

/// `fields` (the plan's columns as datafusion-postgres describes them) with the table OID and
/// column number of each column `plan` reads as it is from a table or view.
pub fn describe(fields: Vec<FieldInfo>, plan: &LogicalPlan, columns: &Columns) -> Vec<FieldInfo> {
    if columns.is_empty() {
        return fields;
    }
    let is_view = |name: &str| crate::views::find(name).is_some_and(|v| v.name == name);
    fields
        .into_iter()
        .enumerate()
        .map(|(i, field)| {
            let Some(&(oid, number)) = origin(plan, i, &is_view).and_then(|key| columns.get(&key)) else {
                return field;
            };
            let (size, modifier, options) =
                (field.type_size(), field.type_modifier(), Arc::clone(field.format_options()));
            FieldInfo::new(field.name().to_string(), Some(oid), Some(number), field.datatype().clone(), field.format())
                .with_format_options(options)
                .with_type_size(size)
                .with_type_modifier(modifier)
        })
        .collect()
}

/// The (schema, relation, column) that column `i` of `plan` is, when it is one read as it is:
/// through projections that name it (aliased or not), filters, sorts, limits, DISTINCT, window
/// functions' inputs, GROUP BY columns, aliases and the sides of a join, down to the scan of a
/// table or view.
/// A view is planned as its query under the view's name (`is_view` says which names are
/// views'): its columns are the view's, as PostgreSQL describes them.
fn origin(plan: &LogicalPlan, i: usize, is_view: &dyn Fn(&str) -> bool) -> Option<(String, String, String)> {
    let origin = |plan: &LogicalPlan, i: usize| origin(plan, i, is_view);
    match plan {
        LogicalPlan::SubqueryAlias(a) if a.alias.schema().is_none_or(|s| s == "public") && is_view(a.alias.table()) => {
            let field = a.schema.fields().get(i)?;
            Some(("public".into(), a.alias.table().to_string(), field.name().clone()))
        }
        LogicalPlan::Projection(p) => {
            let mut e = p.expr.get(i)?;
            while let Expr::Alias(a) = e {
                e = &a.expr;
            }
            let Expr::Column(c) = e else { return None };
            origin(&p.input, p.input.schema().index_of_column(c).ok()?)
        }
        LogicalPlan::SubqueryAlias(a) => origin(&a.input, i),
        // The input's columns come first, then the window functions'.
        LogicalPlan::Window(w) if i < w.input.schema().fields().len() => origin(&w.input, i),
        // A grouping column is the column it groups by (PostgreSQL names its origin too).
        LogicalPlan::Aggregate(a) => {
            let Some(Expr::Column(c)) = a.group_expr.get(i) else { return None };
            origin(&a.input, a.input.schema().index_of_column(c).ok()?)
        }
        LogicalPlan::Filter(f) => origin(&f.input, i),
        LogicalPlan::Sort(s) => origin(&s.input, i),
        LogicalPlan::Limit(l) => origin(&l.input, i),
        LogicalPlan::Distinct(Distinct::All(input)) => origin(input, i),
        LogicalPlan::Join(j)
            if matches!(j.join_type, JoinType::Inner | JoinType::Left | JoinType::Right | JoinType::Full) =>
        {
            let left = j.left.schema().fields().len();
            if i < left { origin(&j.left, i) } else { origin(&j.right, i - left) }
        }
        LogicalPlan::TableScan(scan) => {
            let field = scan.projected_schema.fields().get(i)?;
            let schema = scan.table_name.schema().unwrap_or("public").to_string();
            Some((schema, scan.table_name.table().to_string(), field.name().clone()))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::prelude::SessionContext;

    async fn origins_of(sql: &str) -> Vec<Option<(String, String, String)>> {
        let ctx = SessionContext::new();
        ctx.sql("CREATE TABLE features (feature_id TEXT, team TEXT, estimated_weeks DOUBLE)").await.unwrap();
        ctx.sql("CREATE TABLE incidents (incident_id TEXT, feature_id TEXT)").await.unwrap();
        ctx.sql("CREATE VIEW teams AS SELECT team, count(*) AS n FROM features GROUP BY team").await.unwrap();
        let plan = ctx.state().create_logical_plan(sql).await.unwrap();
        (0..plan.schema().fields().len()).map(|i| origin(&plan, i, &|n| n == "teams")).collect()
    }

    fn at(relation: &str, column: &str) -> Option<(String, String, String)> {
        Some(("public".into(), relation.into(), column.into()))
    }

    #[tokio::test]
    async fn columns_read_as_they_are_are_traced_to_their_table() {
        assert_eq!(
            origins_of("SELECT * FROM features").await,
            [at("features", "feature_id"), at("features", "team"), at("features", "estimated_weeks")]
        );
        assert_eq!(
            origins_of(
                "SELECT DISTINCT f.team AS t, i.incident_id, f.estimated_weeks * 2, count(*) OVER () FROM features f \
                 LEFT JOIN incidents i ON i.feature_id = f.feature_id WHERE f.team <> 'x' ORDER BY 1 LIMIT 3"
            )
            .await,
            [at("features", "team"), at("incidents", "incident_id"), None, None]
        );
        // A view is a relation of its own, as in PostgreSQL.
        assert_eq!(origins_of("SELECT n, team FROM teams").await, [at("teams", "n"), at("teams", "team")]);
        assert_eq!(
            origins_of("SELECT team, count(*) FROM features GROUP BY team").await,
            [at("features", "team"), None]
        );
    }
}
