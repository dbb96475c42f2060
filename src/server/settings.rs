//! What the server says about itself, one answer everywhere: the version in the startup
//! ParameterStatus, `SHOW server_version`, `version()` and `current_setting(...)` are the same
//! PostgreSQL-format text, so drivers that parse it (SQLAlchemy's dialect, pgjdbc, Grafana's
//! `server_version_num`) see PostgreSQL 16 with debtlens named after it.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, StringBuilder};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{Result as DfResult, exec_err};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, TypeSignature, Volatility,
};
use datafusion::scalar::ScalarValue;

/// The PostgreSQL release whose behaviour the server follows.
pub const PG_VERSION: &str = "16.6";
/// The same as `server_version_num` reads it.
pub const PG_VERSION_NUM: &str = "160006";

/// `16.6 (debtlens 0.1.0)`: the form PostgreSQL builds use (`16.6 (Debian 16.6-1)`).
pub fn server_version() -> String {
    format!("{PG_VERSION} (debtlens {})", env!("CARGO_PKG_VERSION"))
}

/// What `version()` returns: `PostgreSQL 16.6 (debtlens 0.1.0) on x86_64-linux, 64-bit`.
pub fn version_text() -> String {
    format!("PostgreSQL {} on {}-{}, 64-bit", server_version(), std::env::consts::ARCH, std::env::consts::OS)
}

/// The settings the server has (`pg_settings`' rows), each with its `default_setting`.
pub const SETTINGS: &[&str] = &[
    "application_name",
    "block_size",
    "bytea_output",
    "client_encoding",
    "client_min_messages",
    "DateStyle",
    "default_transaction_isolation",
    "default_transaction_read_only",
    "extra_float_digits",
    "integer_datetimes",
    "IntervalStyle",
    "is_superuser",
    "lc_collate",
    "lc_ctype",
    "lc_messages",
    "lc_monetary",
    "lc_numeric",
    "lc_time",
    "log_timezone",
    "max_identifier_length",
    "max_index_keys",
    "search_path",
    "server_encoding",
    "server_version",
    "server_version_num",
    "ssl",
    "standard_conforming_strings",
    "TimeZone",
    "transaction_isolation",
    "transaction_read_only",
];

/// A server setting as PostgreSQL names it (case-insensitive), with the value a new connection
/// sees; `None` for a name PostgreSQL would not know either.
pub fn default_setting(name: &str) -> Option<String> {
    let value = match name.to_ascii_lowercase().as_str() {
        "server_version" => return Some(server_version()),
        "server_version_num" => PG_VERSION_NUM,
        "server_encoding" | "client_encoding" => "UTF8",
        "datestyle" => "ISO, MDY",
        "intervalstyle" => "postgres",
        "timezone" | "time zone" | "log_timezone" => "UTC",
        "standard_conforming_strings" | "integer_datetimes" => "on",
        "default_transaction_read_only" | "transaction_read_only" => "on",
        "is_superuser" => "off",
        "max_identifier_length" => "63",
        "max_index_keys" => "32",
        "block_size" => "8192",
        "lc_collate" | "lc_ctype" | "lc_messages" | "lc_monetary" | "lc_numeric" | "lc_time" => "C",
        "transaction_isolation" | "default_transaction_isolation" => "read committed",
        "search_path" => "\"$user\", public",
        "application_name" => "",
        "extra_float_digits" => "1",
        "bytea_output" => "hex",
        "client_min_messages" => "notice",
        "ssl" => "off",
        _ => return None,
    };
    Some(value.to_string())
}

/// `version()`, replacing DataFusion's (which names DataFusion, so SQLAlchemy refuses to
/// connect: "Could not determine version").
pub fn version_udf() -> ScalarUDF {
    ScalarUDF::new_from_impl(Constant {
        name: "version",
        signature: Signature::exact(vec![], Volatility::Stable),
        value: ScalarValue::Utf8(Some(version_text())),
    })
}

/// `current_setting(name)` and `current_setting(name, missing_ok)`: the server's settings as a
/// new connection has them (`SHOW` gives a connection's own); an unknown name is PostgreSQL's
/// error, or NULL with missing_ok.
pub fn current_setting_udf() -> ScalarUDF {
    let signature = Signature::one_of(
        vec![TypeSignature::Exact(vec![DataType::Utf8]), TypeSignature::Exact(vec![DataType::Utf8, DataType::Boolean])],
        Volatility::Stable,
    );
    text("current_setting", signature, |a| {
        let Some(name) = a[0].as_deref() else { return Ok(None) };
        match default_setting(name) {
            Some(value) => Ok(Some(value)),
            None if a.get(1).is_some_and(|m| m.as_deref() == Some("true")) => Ok(None),
            None => Err(format!("unrecognized configuration parameter \"{name}\"")),
        }
    })
}

/// Catalog functions BI drivers call while browsing (SQLAlchemy's get_columns, pgjdbc's
/// getFunctions and getProcedures, psql's `\d+`), with PostgreSQL's answer where debtlens has
/// none: no sequences, no functions in `pg_proc`, no comments on objects. `pg_get_viewdef` of a
/// view's name is its SQL from `queries/`; of an OID, NULL (the catalog's OIDs are not mapped).
pub fn catalog_udfs() -> Vec<ScalarUDF> {
    let nothing = |name: &'static str, args: usize| {
        ScalarUDF::new_from_impl(Constant {
            name,
            signature: Signature::one_of((1..=args).map(TypeSignature::Any).collect(), Volatility::Stable),
            value: ScalarValue::Utf8(None),
        })
    };
    // Every object is visible: there is one schema, `public`, and pg_catalog.
    let visible = |name: &'static str| {
        ScalarUDF::new_from_impl(Constant {
            name,
            signature: Signature::any(1, Volatility::Stable),
            value: ScalarValue::Boolean(Some(true)),
        })
    };
    vec![
        visible("pg_collation_is_visible"),
        visible("pg_type_is_visible"),
        visible("pg_function_is_visible"),
        visible("pg_opclass_is_visible"),
        nothing("pg_get_serial_sequence", 2),
        nothing("col_description", 2),
        nothing("shobj_description", 2),
        nothing("pg_get_function_result", 1),
        nothing("pg_get_function_arguments", 1),
        nothing("pg_get_function_identity_arguments", 1),
        text("relation_comment", Signature::exact(vec![DataType::Utf8], Volatility::Stable), |a| {
            Ok(a[0].as_deref().and_then(relation_comment).map(str::to_string))
        }),
        text("format", Signature::variadic_any(Volatility::Stable), |a| match a.first().cloned().flatten() {
            Some(template) => format_text(&template, &a[1..]).map(Some),
            None => Ok(None),
        }),
        text(
            "pg_get_keydef",
            Signature::exact(vec![DataType::Utf8, DataType::Utf8, DataType::Int64], Volatility::Stable),
            |a| {
                let column = a[2].as_deref().and_then(|c| c.parse().ok()).unwrap_or(0);
                Ok(a[0].as_deref().zip(a[1].as_deref()).and_then(|(name, kind)| key_definition(name, kind, column)))
            },
        ),
        ScalarUDF::new_from_impl(ExpandArray { signature: Signature::any(1, Volatility::Immutable) }),
        text(
            "escape_like_pattern",
            Signature::exact(vec![DataType::Utf8, DataType::Utf8], Volatility::Immutable),
            |a| match (a[0].as_deref(), a[1].as_deref()) {
                (Some(pattern), Some(escape)) => super::dialect::with_backslash_escapes(pattern, escape)
                    .map(Some)
                    .ok_or_else(|| "LIKE pattern must not end with escape character".to_string()),
                _ => Ok(None),
            },
        ),
        ScalarUDF::new_from_impl(JsonBuildObject { signature: Signature::variadic_any(Volatility::Immutable) }),
        // An expression stored in the catalog, as text. debtlens stores none (no defaults, no
        // partial or expression indexes): NULL in, NULL out. datafusion-pg-catalog's
        // `pg_get_expr` answers '' for NULL, so Metabase's `pg_get_expr(indpred, indrelid) IS
        // NULL` (no partial index) dropped every index.
        text(
            "pg_get_expr",
            Signature::one_of(vec![TypeSignature::Any(2), TypeSignature::Any(3)], Volatility::Stable),
            |a| Ok(a[0].clone()),
        ),
        text("column_comment", Signature::exact(vec![DataType::Utf8, DataType::Utf8], Volatility::Stable), |a| {
            Ok(a[0].as_deref().zip(a[1].as_deref()).and_then(|(relation, column)| column_comment(relation, column)))
        }),
        text("regclass_part", Signature::exact(vec![DataType::Utf8, DataType::Utf8], Volatility::Immutable), |a| {
            let (Some(name), Some(part)) = (a[0].as_deref(), a[1].as_deref()) else { return Ok(None) };
            let (schema, relation) = regclass_name(name)?;
            Ok(Some(if part == "schema" { schema } else { relation }))
        }),
        ScalarUDF::new_from_impl(ConcatEach {
            signature: Signature::one_of(vec![TypeSignature::Any(3)], Volatility::Immutable),
        }),
        ScalarUDF::new_from_impl(SizePretty {
            signature: Signature::exact(vec![DataType::Int64], Volatility::Immutable),
        }),
        text(
            "pg_get_viewdef",
            Signature::one_of(vec![TypeSignature::Any(1), TypeSignature::Any(2)], Volatility::Stable),
            // A view's name (an OID is not one: NULL, as PostgreSQL answers for an OID that is
            // not a view's).
            |a| {
                let name = a[0].as_deref().map(|n| n.trim_matches('"')).map(|n| n.rsplit('.').next().unwrap_or(n));
                Ok(name.and_then(crate::views::find).map(|view| view_body(view.sql)))
            },
        ),
    ]
}

/// A function of text, row by row: each argument's text (a number's, a boolean's `true`; NULL as
/// `None`) in, text or NULL out, or the error PostgreSQL gives. The catalog functions are this
/// shape; their rows are few.
/// One row's arguments as text to the function's text, NULL, or PostgreSQL's error.
type RowFn = fn(&[Option<String>]) -> Result<Option<String>, String>;

#[derive(Debug)]
struct TextFunction {
    name: &'static str,
    signature: Signature,
    row: RowFn,
}

// One function per name: equal by name and signature (function pointers have no reliable
// equality).
impl PartialEq for TextFunction {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && self.signature == other.signature
    }
}

impl Eq for TextFunction {}

impl std::hash::Hash for TextFunction {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.name.hash(state);
        self.signature.hash(state);
    }
}

fn text(name: &'static str, signature: Signature, row: RowFn) -> ScalarUDF {
    ScalarUDF::new_from_impl(TextFunction { name, signature, row })
}

impl ScalarUDFImpl for TextFunction {
    fn name(&self) -> &str {
        self.name
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Utf8)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let rows = args.number_rows;
        let arrays: Vec<ArrayRef> = args.args.iter().map(|a| a.to_array(rows)).collect::<DfResult<_>>()?;
        let mut out = StringBuilder::with_capacity(rows, rows * 32);
        for i in 0..rows {
            let values: Vec<Option<String>> = arrays
                .iter()
                .map(|a| ScalarValue::try_from_array(a, i).map(|v| (!v.is_null()).then(|| text_of(&v))))
                .collect::<DfResult<_>>()?;
            match (self.row)(&values) {
                Ok(value) => out.append_option(value),
                Err(e) => return exec_err!("{e}"),
            }
        }
        Ok(ColumnarValue::Array(Arc::new(out.finish())))
    }
}

/// A function whose answer is always the same: `version()`'s text, NULL for the catalog
/// functions debtlens has nothing for, true for the visibility tests.
#[derive(Debug, PartialEq, Eq, Hash)]
struct Constant {
    name: &'static str,
    signature: Signature,
    value: ScalarValue,
}

impl ScalarUDFImpl for Constant {
    fn name(&self) -> &str {
        self.name
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _: &[DataType]) -> DfResult<DataType> {
        Ok(self.value.data_type())
    }
    fn invoke_with_args(&self, _: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        Ok(ColumnarValue::Scalar(self.value.clone()))
    }
}

/// `relation_comment(name)`: a table's description (data-model.md's "what one row is") or a
/// view's (its header's first line); NULL for anything else. catalog.rs puts it in
/// `pg_description`.
/// The comment on the table or view `name`.
pub fn relation_comment(name: &str) -> Option<&'static str> {
    if let Some(table) = crate::schema::Table::ALL.into_iter().find(|t| t.name() == name) {
        return Some(table.description());
    }
    crate::views::find(name).filter(|v| v.name == name).map(|v| v.description()).filter(|d| !d.is_empty())
}

/// The comment on column `column` of the table `relation` (data-model.md's rule for it); NULL for
/// a view's columns and anything else.
pub fn column_comment(relation: &str, column: &str) -> Option<String> {
    let table = crate::schema::Table::ALL.into_iter().find(|t| t.name() == relation)?;
    table.column_description(column).map(str::to_string)
}

/// A relation's name as PostgreSQL reads the text of a `regclass`: an identifier, or a schema
/// and an identifier separated by a dot, each lower-cased unless double-quoted. Unqualified, the
/// schema is the one the search path finds it in: `pg_catalog` for the catalog's `pg_` tables,
/// else `public`. Returns (schema, name), or PostgreSQL's error for a name it cannot read.
pub fn regclass_name(text: &str) -> Result<(String, String), String> {
    let invalid = || format!("invalid name syntax: \"{text}\"");
    let mut parts = Vec::new();
    let mut chars = text.trim().chars().peekable();
    loop {
        let mut part = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next() {
                    Some('"') if chars.peek() == Some(&'"') => {
                        chars.next();
                        part.push('"');
                    }
                    Some('"') => break,
                    Some(c) => part.push(c),
                    None => return Err(invalid()),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == '.' || c == '"' {
                    break;
                }
                part.extend(c.to_lowercase());
                chars.next();
            }
            part = part.trim().to_string();
        }
        if part.is_empty() {
            return Err(invalid());
        }
        parts.push(part);
        match chars.next() {
            None => break,
            Some('.') => continue,
            Some(_) => return Err(invalid()),
        }
    }
    match parts.as_slice() {
        [name] if name.starts_with("pg_") => Ok(("pg_catalog".into(), name.clone())),
        [name] => Ok(("public".into(), name.clone())),
        [schema, name] | [_, schema, name] => Ok((schema.clone(), name.clone())),
        _ => Err(format!("improper relation name (too many dotted names): {text}")),
    }
}

/// PostgreSQL's `format(template, args...)`: `%s` (the value's text, NULL as empty), `%I` (an
/// identifier, quoted when needed), `%L` (a literal, NULL as `NULL`) and `%%` (Metabase writes
/// `format('%I.%I', schema, table)`). A template with another conversion is PostgreSQL's error.
/// `template` with `args` put in as PostgreSQL's `format` does.
pub fn format_text(template: &str, args: &[Option<String>]) -> Result<String, String> {
    let mut out = String::with_capacity(template.len() + 16);
    let mut chars = template.chars();
    let mut next = 0;
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let conversion = chars.next().ok_or("unterminated format() type specifier")?;
        if conversion == '%' {
            out.push('%');
            continue;
        }
        let value = args.get(next).ok_or("too few arguments for format()")?;
        next += 1;
        match (conversion, value) {
            ('s', v) => out.push_str(v.as_deref().unwrap_or("")),
            ('I', None) => return Err("null values cannot be formatted as an SQL identifier".into()),
            ('I', Some(v)) => out.push_str(&quote_ident(v)),
            ('L', None) => out.push_str("NULL"),
            ('L', Some(v)) => out.push_str(&format!("'{}'", v.replace('\'', "''"))),
            (other, _) => return Err(format!("unrecognized format() type specifier \"{other}\"")),
        }
    }
    Ok(out)
}

/// An identifier as PostgreSQL's `quote_ident` writes it: as it is when it is lower-case
/// letters, digits and underscores not starting with a digit, else double-quoted.
fn quote_ident(name: &str) -> String {
    let plain = name.chars().next().is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if plain { name.to_string() } else { format!("\"{}\"", name.replace('"', "\"\"")) }
}

/// `pg_get_keydef(name, 'index' | 'constraint', column)`: what `pg_get_indexdef` and
/// `pg_get_constraintdef` say of a table's key (dialect.rs looks the name up by OID): the index's
/// CREATE statement, or its `column`th column, or the constraint's `PRIMARY KEY (...)`. NULL for
/// any other index or constraint.
/// The key definition of `name` (`features_pkey`).
pub fn key_definition(name: &str, kind: &str, column: i64) -> Option<String> {
    let table = crate::schema::Table::ALL.into_iter().find(|t| name == format!("{}_pkey", t.name()))?;
    let columns = table.key().join(", ");
    match (kind, column) {
        ("index", 0) => Some(format!("CREATE UNIQUE INDEX {name} ON public.{} USING btree ({columns})", table.name())),
        ("index", k) if k > 0 => table.key().get(k as usize - 1).map(|c| c.to_string()),
        ("constraint", _) => Some(format!("PRIMARY KEY ({columns})")),
        _ => None,
    }
}

/// `_pg_expandarray(array)`: the list of `(x, n)` pairs, each element with its position from 1,
/// which dialect.rs unnests as PostgreSQL's `information_schema._pg_expandarray` returns rows
/// (pgjdbc's getPrimaryKeys and getIndexInfo).
#[derive(Debug, PartialEq, Eq, Hash)]
struct ExpandArray {
    signature: Signature,
}

impl ExpandArray {
    fn pair_fields(element: &DataType) -> datafusion::arrow::datatypes::Fields {
        use datafusion::arrow::datatypes::Field;
        vec![Field::new("x", element.clone(), true), Field::new("n", DataType::Int32, false)].into()
    }
}

impl ScalarUDFImpl for ExpandArray {
    fn name(&self) -> &str {
        "_pg_expandarray"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, args: &[DataType]) -> DfResult<DataType> {
        use datafusion::arrow::datatypes::Field;
        let element = match &args[0] {
            DataType::List(f) | DataType::LargeList(f) | DataType::FixedSizeList(f, _) => f.data_type().clone(),
            DataType::Null => DataType::Null,
            other => return exec_err!("_pg_expandarray: {other} is not an array"),
        };
        Ok(DataType::List(Arc::new(Field::new_list_field(DataType::Struct(Self::pair_fields(&element)), true))))
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        use datafusion::arrow::array::{Int32Array, ListArray, StructArray};
        use datafusion::arrow::buffer::OffsetBuffer;
        use datafusion::arrow::datatypes::Field;
        let rows = args.number_rows;
        let input = args.args[0].to_array(rows)?;
        let DataType::List(_) = input.data_type() else {
            return exec_err!("_pg_expandarray: {} is not an array", input.data_type());
        };
        let list = input.as_list::<i32>();
        let positions: Int32Array = (0..list.len())
            .flat_map(|i| {
                // Every value has a position, also under a null entry (its values are not shown).
                1..=list.value_length(i)
            })
            .collect();
        let offsets = list.offsets();
        let start = offsets[0] as usize;
        let end = offsets[list.len()] as usize;
        let values = list.values().slice(start, end - start);
        let rebased = OffsetBuffer::new(offsets.iter().map(|o| o - offsets[0]).collect::<Vec<_>>().into());
        let fields = Self::pair_fields(values.data_type());
        let pairs = StructArray::try_new(fields.clone(), vec![values, Arc::new(positions)], None)?;
        let item = Arc::new(Field::new_list_field(DataType::Struct(fields), true));
        let out = ListArray::try_new(item, rebased, Arc::new(pairs), list.nulls().cloned())?;
        Ok(ColumnarValue::Array(Arc::new(out)))
    }
}

/// `relation_size(name)`: the bytes a relation's data takes, for `pg_table_size`,
/// `pg_relation_size` and `pg_total_relation_size` (dialect.rs looks the OID's name up): a
/// table's data files in the store (its memory for the built-in sample), 0 for a view and for a
/// key's index (debtlens keeps none), NULL for anything else and where the size is unknown.
pub fn relation_size_udf(bytes: &crate::store::TableBytes) -> ScalarUDF {
    let mut sizes: Vec<(String, Option<i64>)> =
        bytes.iter().map(|(name, b)| (name.to_string(), b.map(|b| i64::try_from(b).unwrap_or(i64::MAX)))).collect();
    sizes.sort();
    ScalarUDF::new_from_impl(RelationSize {
        sizes,
        signature: Signature::exact(vec![DataType::Utf8], Volatility::Stable),
    })
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct RelationSize {
    sizes: Vec<(String, Option<i64>)>,
    signature: Signature,
}

impl RelationSize {
    fn size(&self, name: &str) -> Option<i64> {
        if let Some((_, bytes)) = self.sizes.iter().find(|(n, _)| n == name) {
            return *bytes;
        }
        let is_key = self.sizes.iter().any(|(n, _)| name == format!("{n}_pkey"));
        let is_view = crate::views::find(name).is_some_and(|v| v.name == name);
        (is_key || is_view).then_some(0)
    }
}

impl ScalarUDFImpl for RelationSize {
    fn name(&self) -> &str {
        "relation_size"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Int64)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let input = args.args[0].to_array(args.number_rows)?;
        let input = datafusion::arrow::compute::cast(&input, &DataType::Utf8)?;
        let out: datafusion::arrow::array::Int64Array =
            input.as_string::<i32>().iter().map(|name| name.and_then(|n| self.size(n))).collect();
        Ok(ColumnarValue::Array(Arc::new(out)))
    }
}

/// `concat_each(array, prefix, suffix)`: each element with `prefix` before and `suffix` after it,
/// NULL elements staying NULL; an empty array for a NULL one. It is what
/// `ARRAY(SELECT 'p' || x || 's' FROM unnest(array) x)` gives (psql's `\d+`, over `reloptions`),
/// which dialect.rs rewrites to it: DataFusion cannot plan an unnest of the outer row's column.
#[derive(Debug, PartialEq, Eq, Hash)]
struct ConcatEach {
    signature: Signature,
}

impl ScalarUDFImpl for ConcatEach {
    fn name(&self) -> &str {
        "concat_each"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _: &[DataType]) -> DfResult<DataType> {
        Ok(crate::schema::string_list())
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        use datafusion::arrow::array::{ListBuilder, StringBuilder as Strings};
        let rows = args.number_rows;
        let arrays: Vec<ArrayRef> = args.args.iter().map(|a| a.to_array(rows)).collect::<DfResult<_>>()?;
        let mut out = ListBuilder::new(Strings::new());
        for i in 0..rows {
            let affix = |k: usize| -> DfResult<String> {
                let v = ScalarValue::try_from_array(&arrays[k], i)?;
                Ok(if v.is_null() { String::new() } else { text_of(&v) })
            };
            let (prefix, suffix) = (affix(1)?, affix(2)?);
            match ScalarValue::try_from_array(&arrays[0], i)? {
                ScalarValue::List(list) if !list.is_null(0) => {
                    let values = list.value(0);
                    for k in 0..values.len() {
                        let v = ScalarValue::try_from_array(&values, k)?;
                        out.values().append_option((!v.is_null()).then(|| format!("{prefix}{}{suffix}", text_of(&v))));
                    }
                }
                ScalarValue::List(_) | ScalarValue::Null => {}
                other => return exec_err!("concat_each: {} is not an array", other.data_type()),
            }
            out.append(true);
        }
        Ok(ColumnarValue::Array(Arc::new(out.finish())))
    }
}

/// `pg_size_pretty(bytes)`: PostgreSQL's human-readable size: bytes below 10240, then the first
/// of kB, MB, GB, TB, PB under which the value is below 20480 (half) units, rounded half away
/// from zero (PostgreSQL 16's `size_pretty_units` in dbsize.c).
#[derive(Debug, PartialEq, Eq, Hash)]
struct SizePretty {
    signature: Signature,
}

impl ScalarUDFImpl for SizePretty {
    fn name(&self) -> &str {
        "pg_size_pretty"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Utf8)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        use datafusion::arrow::datatypes::Int64Type;
        let input = args.args[0].to_array(args.number_rows)?;
        let out: datafusion::arrow::array::StringArray =
            input.as_primitive::<Int64Type>().iter().map(|v| v.map(crate::numbers::bytes)).collect();
        Ok(ColumnarValue::Array(Arc::new(out)))
    }
}

/// `json_build_object(key, value, ...)`: a JSON object as text (SQLAlchemy's `get_columns` asks
/// for identity and collation details with it). Numbers and booleans are JSON's, NULL is null,
/// anything else its text.
#[derive(Debug, PartialEq, Eq, Hash)]
struct JsonBuildObject {
    signature: Signature,
}

impl ScalarUDFImpl for JsonBuildObject {
    fn name(&self) -> &str {
        "json_build_object"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Utf8)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        if !args.args.len().is_multiple_of(2) {
            return exec_err!("json_build_object: argument list must have even number of elements");
        }
        let rows = args.number_rows;
        let arrays: Vec<ArrayRef> = args.args.iter().map(|a| a.to_array(rows)).collect::<DfResult<_>>()?;
        let mut out = StringBuilder::with_capacity(rows, rows * 32);
        for i in 0..rows {
            let mut object = serde_json::Map::new();
            for pair in arrays.chunks(2) {
                let key = ScalarValue::try_from_array(&pair[0], i)?;
                if key.is_null() {
                    return exec_err!("json_build_object: null value not allowed for object key");
                }
                let value = ScalarValue::try_from_array(&pair[1], i)?;
                object.insert(text_of(&key), json_of(&value));
            }
            out.append_value(serde_json::Value::Object(object).to_string());
        }
        Ok(ColumnarValue::Array(Arc::new(out.finish())))
    }
}

fn text_of(v: &ScalarValue) -> String {
    match v {
        ScalarValue::Utf8(Some(s)) | ScalarValue::LargeUtf8(Some(s)) | ScalarValue::Utf8View(Some(s)) => s.clone(),
        other => other.to_string(),
    }
}

fn json_of(v: &ScalarValue) -> serde_json::Value {
    use ScalarValue as S;
    match v {
        v if v.is_null() => serde_json::Value::Null,
        S::Boolean(Some(b)) => serde_json::Value::Bool(*b),
        S::Int8(_)
        | S::Int16(_)
        | S::Int32(_)
        | S::Int64(_)
        | S::UInt8(_)
        | S::UInt16(_)
        | S::UInt32(_)
        | S::UInt64(_) => v
            .to_string()
            .parse::<serde_json::Number>()
            .map(serde_json::Value::Number)
            .unwrap_or(serde_json::Value::Null),
        S::Float32(Some(_)) | S::Float64(Some(_)) => {
            serde_json::Number::from_f64(text_of(v).parse().unwrap_or(f64::NAN))
                .map(serde_json::Value::Number)
                .unwrap_or_else(|| serde_json::Value::String(text_of(v)))
        }
        other => serde_json::Value::String(text_of(other)),
    }
}

/// `pg_get_viewdef(view [, pretty])`.
/// A view's SELECT without its header comment, as `pg_get_viewdef` shows a view's query.
fn view_body(sql: &str) -> String {
    let body: Vec<&str> = sql.lines().skip_while(|l| l.trim_start().starts_with("--") || l.trim().is_empty()).collect();
    body.join("\n").trim().trim_end_matches(';').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_puts_values_in_as_postgresql_does() {
        let s = |v: &str| Some(v.to_string());
        assert_eq!(format_text("%I.%I", &[s("public"), s("features")]).unwrap(), "public.features");
        assert_eq!(format_text("%I", &[s("Mixed Case")]).unwrap(), "\"Mixed Case\"");
        assert_eq!(format_text("%L and %s and %%", &[s("it's"), None]).unwrap(), "'it''s' and  and %");
        assert_eq!(format_text("%L", &[None]).unwrap(), "NULL");
        assert!(format_text("%I", &[None]).is_err());
        assert!(format_text("%s %s", &[s("one")]).unwrap_err().contains("too few"));
        assert!(format_text("%x", &[s("a")]).unwrap_err().contains("\"x\""));
    }

    #[test]
    fn keys_are_defined_as_postgresql_shows_them() {
        assert_eq!(
            key_definition("features_pkey", "index", 0).as_deref(),
            Some("CREATE UNIQUE INDEX features_pkey ON public.features USING btree (feature_id)")
        );
        assert_eq!(
            key_definition("capacity_pkey", "constraint", 0).as_deref(),
            Some("PRIMARY KEY (period_start, team)")
        );
        assert_eq!(key_definition("capacity_pkey", "index", 2).as_deref(), Some("team"));
        assert_eq!(key_definition("capacity_pkey", "index", 3), None);
        assert_eq!(key_definition("pg_class_oid_index", "index", 0), None);
    }

    #[test]
    fn regclass_text_is_read_as_postgresql_reads_it() {
        let pair = |s: &str, n: &str| Ok((s.to_string(), n.to_string()));
        assert_eq!(regclass_name("public.features"), pair("public", "features"));
        assert_eq!(regclass_name("Features"), pair("public", "features"));
        assert_eq!(regclass_name("\"public\".\"Odd \"\"name\"\"\""), pair("public", "Odd \"name\""));
        // An unterminated quoted name, as PostgreSQL says.
        assert!(regclass_name("\"public\".\"Odd").unwrap_err().contains("invalid name syntax"));
        assert_eq!(regclass_name("pg_class"), pair("pg_catalog", "pg_class"));
        assert_eq!(regclass_name("debtlens.public.features"), pair("public", "features"));
        assert!(regclass_name("a..b").unwrap_err().contains("invalid name syntax"));
        assert!(regclass_name("a.b.c.d").unwrap_err().contains("too many dotted names"));
        assert_eq!(column_comment("capacity", "team").as_deref(), Some("the team; null means the whole organisation"));
        assert_eq!(column_comment("system_health", "system"), None);
    }

    #[test]
    fn one_version_in_postgresql_s_format() {
        assert!(version_text().starts_with(&format!("PostgreSQL {PG_VERSION} (debtlens ")));
        assert_eq!(default_setting("SERVER_VERSION"), Some(server_version()));
        assert_eq!(default_setting("server_version_num").as_deref(), Some("160006"));
        assert_eq!(default_setting("no_such_setting"), None);
        // SQLAlchemy's dialect: re.match(r".*(?:PostgreSQL|EnterpriseDB) (\d+)\.?(\d+)?(?:\.(\d+))?", v)
        let text = version_text();
        let rest = text.split("PostgreSQL ").nth(1).unwrap();
        let major: u32 = rest.split('.').next().unwrap().parse().unwrap();
        assert_eq!(major, 16);
    }
}
