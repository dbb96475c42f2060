//! What `pg_catalog` says about debtlens's tables beyond datafusion-pg-catalog: each table's key
//! (data-model.md) as the primary-key constraint and unique index PostgreSQL would show, the
//! array columns (`indkey`, `conkey`) as arrays, so that `unnest(indkey)` and `= ANY(conkey)`
//! work, and `pg_settings` with the settings the server has (settings.rs).
//!
//! datafusion-pg-catalog's `pg_catalog` stays underneath: `pg_class`, `pg_index`,
//! `pg_constraint` and `pg_settings` are computed from SQL over its tables (reachable as
//! `base_pg_class`, ... for this SQL only, never listed), planned once per snapshot catalog and
//! run when scanned.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::catalog::{SchemaProvider, TableProvider};
use datafusion::common::{DataFusionError, Result as DfResult};
use datafusion::prelude::SessionContext;

use crate::schema::Table;

/// Where the underlying table of an overridden one is reached.
const BASE: &str = "base_";
/// OIDs of the key indexes and constraints: the table's OID plus these (the catalog's own OIDs
/// count up from 16384, far below).
const INDEX_OID: i64 = 1_000_000;
const CONSTRAINT_OID: i64 = 2_000_000;

/// Puts the views over the `pg_catalog` schema of `catalog` in `ctx`.
pub fn overlay(ctx: &SessionContext, catalog: &str) -> DfResult<()> {
    let provider = ctx.catalog(catalog).ok_or_else(|| DataFusionError::Plan(format!("no catalog {catalog}")))?;
    let inner = provider.schema("pg_catalog").ok_or_else(|| DataFusionError::Plan("no pg_catalog".into()))?;
    let overlay = Arc::new(Overlay { inner: inner.clone(), views: std::sync::RwLock::new(HashMap::new()) });
    provider.register_schema("pg_catalog", overlay.clone())?;
    let schema_of = |name: &str| -> DfResult<datafusion::arrow::datatypes::SchemaRef> {
        let table = futures::executor::block_on(inner.table(name))?
            .ok_or_else(|| DataFusionError::Plan(format!("no pg_catalog.{name}")))?;
        Ok(table.schema())
    };
    let views = [
        ("pg_class", pg_class_sql(schema_of("pg_class")?.as_ref())),
        ("pg_index", pg_index_sql(schema_of("pg_index")?.as_ref())),
        ("pg_constraint", pg_constraint_sql(schema_of("pg_constraint")?.as_ref())),
        ("pg_settings", pg_settings_sql()),
        ("pg_description", pg_description_sql(schema_of("pg_description")?.as_ref())),
    ];
    let mut computed: Vec<(String, String)> = views.into_iter().map(|(n, s)| (n.to_string(), s)).collect();
    for (name, sql) in computed.drain(..) {
        let view = computed_table(ctx, sql)?;
        overlay.views.write().unwrap_or_else(|e| e.into_inner()).insert(name, view);
    }
    information_schema(ctx, provider.as_ref())
}

/// PostgreSQL's `information_schema` (tables, columns with PostgreSQL's type names and
/// `udt_name`, views, schemata, table_constraints, key_column_usage, referential_constraints)
/// in place of DataFusion's, whose `data_type` says `Utf8` and `Timestamp(µs, "UTC")`: Grafana
/// and Metabase list columns from it. Computed from `pg_catalog`, so both say the same.
fn information_schema(ctx: &SessionContext, catalog: &dyn datafusion::catalog::CatalogProvider) -> DfResult<()> {
    // DataFusion's own answers `information_schema` only while this is on.
    ctx.state_ref().write().config_mut().options_mut().catalog.information_schema = false;
    let schema = Arc::new(datafusion::catalog::MemorySchemaProvider::new());
    for (name, sql) in information_schema_sql() {
        schema.register_table(name.to_string(), computed_table(ctx, sql)?)?;
    }
    // DataFusion's settings stay where DataFusion keeps them (`SHOW ALL` reads them there).
    let datafusion =
        datafusion::catalog::information_schema::InformationSchemaProvider::new(ctx.state().catalog_list().clone());
    if let Some(settings) = futures::executor::block_on(datafusion.table("df_settings"))? {
        schema.register_table("df_settings".into(), settings)?;
    }
    catalog.register_schema("information_schema", schema)?;
    Ok(())
}

/// The information_schema tables' SQL, over pg_catalog.
fn information_schema_sql() -> Vec<(&'static str, String)> {
    const DB: &str = "'debtlens'";
    let relations = "FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace";
    let data_type = "CASE t.typname \
        WHEN 'text' THEN 'text' WHEN 'varchar' THEN 'character varying' WHEN 'int8' THEN 'bigint' \
        WHEN 'int4' THEN 'integer' WHEN 'int2' THEN 'smallint' WHEN 'float8' THEN 'double precision' \
        WHEN 'float4' THEN 'real' WHEN 'bool' THEN 'boolean' WHEN 'numeric' THEN 'numeric' \
        WHEN 'timestamptz' THEN 'timestamp with time zone' WHEN 'timestamp' THEN 'timestamp without time zone' \
        WHEN 'date' THEN 'date' WHEN 'time' THEN 'time without time zone' WHEN 'interval' THEN 'interval' \
        WHEN 'bytea' THEN 'bytea' WHEN 'json' THEN 'json' WHEN 'jsonb' THEN 'jsonb' \
        ELSE CASE WHEN starts_with(t.typname, '_') THEN 'ARRAY' ELSE 'USER-DEFINED' END END";
    vec![
        (
            "schemata",
            format!(
                "SELECT {DB} AS catalog_name, n.nspname AS schema_name, 'postgres' AS schema_owner, \
                 arrow_cast(NULL, 'Utf8') AS default_character_set_catalog, arrow_cast(NULL, 'Utf8') AS default_character_set_schema, \
                 arrow_cast(NULL, 'Utf8') AS default_character_set_name, arrow_cast(NULL, 'Utf8') AS sql_path \
                 FROM pg_catalog.pg_namespace n"
            ),
        ),
        (
            "tables",
            format!(
                "SELECT {DB} AS table_catalog, n.nspname AS table_schema, c.relname AS table_name, \
                 CASE c.relkind WHEN 'v' THEN 'VIEW' ELSE 'BASE TABLE' END AS table_type, \
                 arrow_cast(NULL, 'Utf8') AS self_referencing_column_name, arrow_cast(NULL, 'Utf8') AS reference_generation, \
                 arrow_cast(NULL, 'Utf8') AS user_defined_type_catalog, arrow_cast(NULL, 'Utf8') AS user_defined_type_schema, \
                 arrow_cast(NULL, 'Utf8') AS user_defined_type_name, 'NO' AS is_insertable_into, 'NO' AS is_typed, \
                 arrow_cast(NULL, 'Utf8') AS commit_action \
                 {relations} WHERE c.relkind IN ('r', 'v', 'p', 'f', 'm')"
            ),
        ),
        (
            "views",
            format!(
                "SELECT {DB} AS table_catalog, n.nspname AS table_schema, c.relname AS table_name, \
                 pg_get_viewdef(c.relname) AS view_definition, 'NONE' AS check_option, 'NO' AS is_updatable, \
                 'NO' AS is_insertable_into, 'NO' AS is_trigger_updatable, 'NO' AS is_trigger_deletable, \
                 'NO' AS is_trigger_insertable_into \
                 {relations} WHERE c.relkind = 'v'"
            ),
        ),
        (
            "columns",
            format!(
                "SELECT {DB} AS table_catalog, n.nspname AS table_schema, c.relname AS table_name, \
                 a.attname AS column_name, CAST(a.attnum AS INT) AS ordinal_position, \
                 arrow_cast(NULL, 'Utf8') AS column_default, CASE WHEN a.attnotnull THEN 'NO' ELSE 'YES' END AS is_nullable, \
                 {data_type} AS data_type, \
                 arrow_cast(NULL, 'Int32') AS character_maximum_length, arrow_cast(NULL, 'Int32') AS character_octet_length, \
                 CASE t.typname WHEN 'int8' THEN 64 WHEN 'int4' THEN 32 WHEN 'int2' THEN 16 WHEN 'float8' THEN 53 WHEN 'float4' THEN 24 END AS numeric_precision, \
                 CASE WHEN t.typname IN ('int8', 'int4', 'int2', 'float8', 'float4') THEN 2 END AS numeric_precision_radix, \
                 CASE WHEN t.typname IN ('int8', 'int4', 'int2') THEN 0 END AS numeric_scale, \
                 CASE WHEN t.typname IN ('timestamptz', 'timestamp', 'time') THEN 6 WHEN t.typname = 'date' THEN 0 END AS datetime_precision, \
                 arrow_cast(NULL, 'Utf8') AS interval_type, arrow_cast(NULL, 'Int32') AS interval_precision, \
                 {DB} AS udt_catalog, 'pg_catalog' AS udt_schema, t.typname AS udt_name, \
                 'NO' AS is_identity, 'NEVER' AS is_generated, 'NO' AS is_updatable \
                 {relations} JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid \
                 LEFT JOIN pg_catalog.pg_type t ON t.oid = a.atttypid \
                 WHERE c.relkind IN ('r', 'v', 'p', 'f', 'm') AND a.attnum > 0"
            ),
        ),
        (
            "table_constraints",
            format!(
                "SELECT {DB} AS constraint_catalog, n.nspname AS constraint_schema, k.conname AS constraint_name, \
                 {DB} AS table_catalog, n.nspname AS table_schema, c.relname AS table_name, \
                 CASE k.contype WHEN 'p' THEN 'PRIMARY KEY' WHEN 'u' THEN 'UNIQUE' WHEN 'f' THEN 'FOREIGN KEY' ELSE 'CHECK' END AS constraint_type, \
                 'NO' AS is_deferrable, 'NO' AS initially_deferred, 'YES' AS enforced, arrow_cast(NULL, 'Utf8') AS nulls_distinct \
                 FROM pg_catalog.pg_constraint k JOIN pg_catalog.pg_class c ON c.oid = k.conrelid \
                 JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public'"
            ),
        ),
        (
            "key_column_usage",
            format!(
                "SELECT {DB} AS constraint_catalog, n.nspname AS constraint_schema, k.conname AS constraint_name, \
                 {DB} AS table_catalog, n.nspname AS table_schema, c.relname AS table_name, a.attname AS column_name, \
                 CAST(k.position AS INT) AS ordinal_position, arrow_cast(NULL, 'Int32') AS position_in_unique_constraint \
                 FROM (SELECT conname, conrelid, unnest(conkey) AS attnum, \
                              unnest(range(1, CAST(cardinality(conkey) AS BIGINT) + 1)) AS position \
                       FROM pg_catalog.pg_constraint WHERE contype IN ('p', 'u')) k \
                 JOIN pg_catalog.pg_class c ON c.oid = k.conrelid \
                 JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
                 JOIN pg_catalog.pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = k.attnum \
                 WHERE n.nspname = 'public'"
            ),
        ),
        (
            "referential_constraints",
            format!(
                "SELECT {DB} AS constraint_catalog, 'public' AS constraint_schema, 'none' AS constraint_name, \
                 {DB} AS unique_constraint_catalog, 'public' AS unique_constraint_schema, 'none' AS unique_constraint_name, \
                 'NONE' AS match_option, 'NO ACTION' AS update_rule, 'NO ACTION' AS delete_rule WHERE false"
            ),
        ),
    ]
}

/// A table computed from `sql` when scanned.
fn computed_table(ctx: &SessionContext, sql: String) -> DfResult<Arc<dyn TableProvider>> {
    let plan = futures::executor::block_on(ctx.state().create_logical_plan(&sql))?;
    // Every column nullable, so that rows computed later always fit the schema given now.
    let fields: Vec<_> = plan.schema().fields().iter().map(|f| f.as_ref().clone().with_nullable(true)).collect();
    let schema = Arc::new(datafusion::arrow::datatypes::Schema::new(fields));
    Ok(Arc::new(Computed { sql, schema }))
}

/// A catalog table whose rows are its SQL's, computed whole when it is scanned. Not a view:
/// inlined into a client's query, the views' UNION ALL met DataFusion 55's sort pushdown, whose
/// sanity check then refused psql's `\d features` ("does not satisfy order requirements").
#[derive(Debug)]
struct Computed {
    sql: String,
    schema: datafusion::arrow::datatypes::SchemaRef,
}

#[async_trait]
impl TableProvider for Computed {
    fn schema(&self) -> datafusion::arrow::datatypes::SchemaRef {
        self.schema.clone()
    }
    fn table_type(&self) -> datafusion::datasource::TableType {
        datafusion::datasource::TableType::View
    }
    async fn scan(
        &self,
        state: &dyn datafusion::catalog::Session,
        projection: Option<&Vec<usize>>,
        _filters: &[datafusion::prelude::Expr],
        _limit: Option<usize>,
    ) -> DfResult<Arc<dyn datafusion::physical_plan::ExecutionPlan>> {
        let state = state
            .as_any()
            .downcast_ref::<datafusion::execution::SessionState>()
            .ok_or_else(|| DataFusionError::Internal("a catalog table scanned outside a session".into()))?;
        let plan = state.create_logical_plan(&self.sql).await?;
        let exec = state.create_physical_plan(&plan).await?;
        let batches = datafusion::physical_plan::collect(exec, state.task_ctx()).await?;
        let batches = batches
            .into_iter()
            .map(|b| {
                datafusion::arrow::record_batch::RecordBatch::try_new(self.schema.clone(), b.columns().to_vec())
                    .map_err(DataFusionError::from)
            })
            .collect::<DfResult<Vec<_>>>()?;
        Ok(datafusion::datasource::memory::MemorySourceConfig::try_new_exec(
            &[batches],
            self.schema.clone(),
            projection.cloned(),
        )?)
    }
}

#[derive(Debug)]
struct Overlay {
    inner: Arc<dyn SchemaProvider>,
    views: std::sync::RwLock<HashMap<String, Arc<dyn TableProvider>>>,
}

#[async_trait]
impl SchemaProvider for Overlay {
    fn table_names(&self) -> Vec<String> {
        self.inner.table_names()
    }
    async fn table(&self, name: &str) -> DfResult<Option<Arc<dyn TableProvider>>> {
        if let Some(base) = name.strip_prefix(BASE) {
            return self.inner.table(base).await;
        }
        let view = self.views.read().unwrap_or_else(|e| e.into_inner()).get(name).cloned();
        match view {
            Some(view) => Ok(Some(view)),
            None => self.inner.table(name).await,
        }
    }
    fn table_exist(&self, name: &str) -> bool {
        self.inner.table_exist(name.strip_prefix(BASE).unwrap_or(name))
    }
}

/// The columns PostgreSQL has as arrays (`int2vector`, `oidvector`, `int2[]`) and
/// datafusion-pg-catalog as text: their replacements keep their own (array) type.
const ARRAYS: &[&str] = &["indkey", "indcollation", "indclass", "indoption", "conkey", "confkey"];

/// A SELECT list over `schema`'s columns (of the table aliased `alias`; none: every column not
/// replaced is NULL), with some replaced: a replacement is cast to the column's type (with
/// arrow_cast: CAST AS TEXT would be a Utf8View, and the catalog's are Utf8), except for the
/// array columns, which keep their own.
fn select_list(schema: &datafusion::arrow::datatypes::Schema, alias: &str, replace: &HashMap<&str, String>) -> String {
    schema
        .fields()
        .iter()
        .map(|f| {
            let name = f.name();
            match replace.get(name.as_str()) {
                Some(expr) if ARRAYS.contains(&name.as_str()) => format!("{expr} AS \"{name}\""),
                Some(expr) => format!("arrow_cast({expr}, '{}') AS \"{name}\"", f.data_type()),
                None if alias.is_empty() => format!("arrow_cast(NULL, '{}') AS \"{name}\"", f.data_type()),
                None => format!("{alias}.\"{name}\" AS \"{name}\""),
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Each keyed table's key columns in order, and the attribute numbers of those columns: a CTE.
fn keys_cte() -> String {
    let rows: Vec<String> = Table::ALL
        .iter()
        .flat_map(|t| t.key().iter().enumerate().map(move |(i, c)| format!("('{}', '{}', {})", t.name(), c, i + 1)))
        .collect();
    format!(
        "WITH key_columns(table_name, column_name, position) AS (VALUES {}), \
         keys AS (SELECT c.oid AS relid, c.relname AS relname, c.relnamespace AS relnamespace, \
                         array_agg(CAST(a.attnum AS SMALLINT) ORDER BY k.position) AS attnums, \
                         CAST(count(*) AS SMALLINT) AS n \
                  FROM pg_catalog.base_pg_class c \
                  JOIN pg_catalog.base_pg_namespace ns ON ns.oid = c.relnamespace AND ns.nspname = 'public' \
                  JOIN key_columns k ON k.table_name = c.relname \
                  JOIN pg_catalog.base_pg_attribute a ON a.attrelid = c.oid AND a.attname = k.column_name \
                  WHERE c.relkind = 'r' \
                  GROUP BY c.oid, c.relname, c.relnamespace)",
        rows.join(", ")
    )
}

/// `pg_class` with each keyed table's key index (`features_pkey`, relkind `i`), and
/// `relhasindex` true for the keyed tables.
fn pg_class_sql(schema: &datafusion::arrow::datatypes::Schema) -> String {
    let base =
        select_list(schema, "c", &HashMap::from([("relhasindex", "c.relhasindex OR k.relid IS NOT NULL".to_string())]));
    let index = select_list(
        schema,
        "c",
        &HashMap::from([
            ("oid", format!("c.oid + {INDEX_OID}")),
            ("relname", "c.relname || '_pkey'".to_string()),
            ("relkind", "'i'".to_string()),
            ("relam", "403".to_string()),
            ("reltype", "0".to_string()),
            ("relnatts", "k.n".to_string()),
            ("relhasindex", "false".to_string()),
            ("reltuples", "0".to_string()),
        ]),
    );
    // PostgreSQL's storage options, which datafusion-pg-catalog leaves out (SQLAlchemy's
    // get_indexes reads them): none.
    let extra = "CAST(NULL AS TEXT[]) AS reloptions";
    format!(
        "{keys} SELECT {base}, {extra} FROM pg_catalog.base_pg_class c LEFT JOIN keys k ON k.relid = c.oid \
         UNION ALL SELECT {index}, {extra} FROM pg_catalog.base_pg_class c JOIN keys k ON k.relid = c.oid",
        keys = keys_cte()
    )
}

/// `pg_index` with `indkey` (and the other vectors) as arrays, and the key indexes.
fn pg_index_sql(schema: &datafusion::arrow::datatypes::Schema) -> String {
    let vector = |column: &str, t: &str| format!("CAST(string_to_array(i.{column}, ' ') AS {t}[])");
    let base = select_list(
        schema,
        "i",
        &HashMap::from([
            ("indkey", vector("indkey", "SMALLINT")),
            ("indcollation", vector("indcollation", "INT")),
            ("indclass", vector("indclass", "INT")),
            ("indoption", vector("indoption", "SMALLINT")),
        ]),
    );
    let zeros = |t: &str| format!("CAST(array_repeat(0, CAST(k.n AS BIGINT)) AS {t}[])");
    let keyed = select_list(
        schema,
        "",
        &HashMap::from([
            ("indexrelid", format!("k.relid + {INDEX_OID}")),
            ("indrelid", "k.relid".to_string()),
            ("indnatts", "k.n".to_string()),
            ("indnkeyatts", "k.n".to_string()),
            ("indisunique", "true".to_string()),
            ("indnullsnotdistinct", "false".to_string()),
            ("indisprimary", "true".to_string()),
            ("indisexclusion", "false".to_string()),
            ("indimmediate", "true".to_string()),
            ("indisclustered", "false".to_string()),
            ("indisvalid", "true".to_string()),
            ("indcheckxmin", "false".to_string()),
            ("indisready", "true".to_string()),
            ("indislive", "true".to_string()),
            ("indisreplident", "false".to_string()),
            ("indkey", "CAST(k.attnums AS SMALLINT[])".to_string()),
            ("indcollation", zeros("INT")),
            ("indclass", zeros("INT")),
            ("indoption", zeros("SMALLINT")),
        ]),
    );
    format!(
        "{keys} SELECT {base} FROM pg_catalog.base_pg_index i UNION ALL SELECT {keyed} FROM keys k",
        keys = keys_cte()
    )
}

/// `pg_constraint` with `conkey`/`confkey` as arrays, and each keyed table's primary key.
fn pg_constraint_sql(schema: &datafusion::arrow::datatypes::Schema) -> String {
    let array = |column: &str| format!("CAST(string_to_array(trim(k0.{column}, '[]'), ', ') AS SMALLINT[])");
    let base = select_list(schema, "k0", &HashMap::from([("conkey", array("conkey")), ("confkey", array("confkey"))]));
    let keyed = select_list(
        schema,
        "",
        &HashMap::from([
            ("oid", format!("k.relid + {CONSTRAINT_OID}")),
            ("conname", "k.relname || '_pkey'".to_string()),
            ("connamespace", "k.relnamespace".to_string()),
            ("contype", "'p'".to_string()),
            ("condeferrable", "false".to_string()),
            ("condeferred", "false".to_string()),
            ("convalidated", "true".to_string()),
            ("conrelid", "k.relid".to_string()),
            ("contypid", "0".to_string()),
            ("conindid", format!("k.relid + {INDEX_OID}")),
            ("conparentid", "0".to_string()),
            ("confrelid", "0".to_string()),
            ("confupdtype", "' '".to_string()),
            ("confdeltype", "' '".to_string()),
            ("confmatchtype", "' '".to_string()),
            ("conislocal", "true".to_string()),
            ("coninhcount", "0".to_string()),
            ("connoinherit", "true".to_string()),
            ("conkey", "CAST(k.attnums AS SMALLINT[])".to_string()),
            ("confkey", "CAST(NULL AS SMALLINT[])".to_string()),
        ]),
    );
    format!(
        "{keys} SELECT {base} FROM pg_catalog.base_pg_constraint k0 UNION ALL SELECT {keyed} FROM keys k",
        keys = keys_cte()
    )
}

/// `pg_description` with a comment on each table (what one row is, data-model.md), each view (the
/// first line of its header) and each table's column (its rule in data-model.md): what `\dt+`
/// and `\d+`, SQLAlchemy's `get_table_comment` and `get_columns`, pgjdbc's REMARKS and
/// Metabase's field descriptions show.
fn pg_description_sql(schema: &datafusion::arrow::datatypes::Schema) -> String {
    let base = select_list(schema, "d", &HashMap::new());
    let ours = select_list(
        schema,
        "",
        &HashMap::from([
            ("objoid", "c.oid".to_string()),
            // pg_class's own OID (what `'pg_catalog.pg_class'::regclass` gives): a relation's comment.
            ("classoid", "pc.oid".to_string()),
            ("objsubid", "0".to_string()),
            ("description", "relation_comment(c.relname)".to_string()),
        ]),
    );
    let columns = select_list(
        schema,
        "",
        &HashMap::from([
            ("objoid", "c.oid".to_string()),
            ("classoid", "pc.oid".to_string()),
            ("objsubid", "CAST(a.attnum AS INT)".to_string()),
            ("description", "column_comment(c.relname, a.attname)".to_string()),
        ]),
    );
    let pg_class_oid = "CROSS JOIN (SELECT max(k.oid) AS oid FROM pg_catalog.base_pg_class k \
                        JOIN pg_catalog.base_pg_namespace kn ON kn.oid = k.relnamespace \
                        WHERE k.relname = 'pg_class' AND kn.nspname = 'pg_catalog') pc";
    format!(
        "SELECT {base} FROM pg_catalog.base_pg_description d UNION ALL \
         SELECT {ours} FROM pg_catalog.base_pg_class c JOIN pg_catalog.base_pg_namespace n ON n.oid = c.relnamespace \
         {pg_class_oid} \
         WHERE n.nspname = 'public' AND c.relkind IN ('r', 'v') AND relation_comment(c.relname) IS NOT NULL \
         UNION ALL \
         SELECT {columns} FROM pg_catalog.base_pg_class c JOIN pg_catalog.base_pg_namespace n ON n.oid = c.relnamespace \
         JOIN pg_catalog.base_pg_attribute a ON a.attrelid = c.oid {pg_class_oid} \
         WHERE n.nspname = 'public' AND c.relkind = 'r' AND column_comment(c.relname, a.attname) IS NOT NULL"
    )
}

/// `pg_settings`: one row per setting the server has, as a new connection sees it.
fn pg_settings_sql() -> String {
    let rows: Vec<String> = super::settings::SETTINGS
        .iter()
        .filter_map(|name| {
            let value = super::settings::default_setting(name)?;
            let numeric = value.parse::<i64>().is_ok();
            let vartype = if numeric { "integer" } else if value == "on" || value == "off" { "bool" } else { "string" };
            let q = |s: &str| format!("'{}'", s.replace('\'', "''"));
            Some(format!(
                "({}, {}, NULL, 'Preset Options', NULL, NULL, 'internal', '{vartype}', 'default', NULL, NULL, NULL, {}, {}, NULL, NULL, false)",
                q(name),
                q(&value),
                q(&value),
                q(&value)
            ))
        })
        .collect();
    format!(
        "SELECT name, setting, CAST(unit AS TEXT) AS unit, category, CAST(short_desc AS TEXT) AS short_desc, \
         CAST(extra_desc AS TEXT) AS extra_desc, context, vartype, source, CAST(min_val AS TEXT) AS min_val, \
         CAST(max_val AS TEXT) AS max_val, CAST(enumvals AS TEXT[]) AS enumvals, boot_val, reset_val, \
         CAST(sourcefile AS TEXT) AS sourcefile, CAST(sourceline AS INT) AS sourceline, pending_restart \
         FROM (VALUES {}) AS s(name, setting, unit, category, short_desc, extra_desc, context, vartype, \
         source, min_val, max_val, enumvals, boot_val, reset_val, sourcefile, sourceline, pending_restart)",
        rows.join(", ")
    )
}
