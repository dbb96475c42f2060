//! A client's statement read as PostgreSQL reads it, rewritten before it is planned:
//! - what PostgreSQL calls a query's columns (BI tools show and key on them: PostgreSQL names an
//!   unnamed `count(*)` `count` and `1 + 1` `?column?`, where DataFusion says `count(*)` and
//!   `Int64(1) + Int64(1)`), and what `current_database()` answers;
//! - `LIKE ... ESCAPE 'c'` with a literal pattern (SQLAlchemy's `get_schema_names` escapes with
//!   `/`; DataFusion takes only the backslash): the pattern is rewritten with backslashes;
//! - PostgreSQL's templates in `to_char`, `to_timestamp` and `to_date` (templates.rs);
//! - `pg_get_viewdef` of an OID: the OID is looked up in `pg_class`.

use std::collections::HashSet;
use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    Expr, Ident, ObjectNamePart, Query, SelectItem, SetExpr, Statement, Value, VisitMut, VisitorMut,
};

/// Rewrites `statement` as PostgreSQL would read it for a client connected to `database`:
/// `current_database()` and `current_catalog` are that name, and the outer query's unnamed
/// columns get PostgreSQL's names (a function call its name, a cast its operand's name,
/// anything else `?column?`) where that name is not taken by another column of the list.
pub fn as_postgres(statement: &mut Statement, database: &str) -> Result<(), String> {
    if let Statement::Query(query) = statement {
        name_columns(query);
    }
    let mut visitor = CurrentDatabase { database, error: None };
    let _ = statement.visit(&mut visitor);
    visitor.error.map_or(Ok(()), Err)
}

struct CurrentDatabase<'a> {
    database: &'a str,
    /// Why the statement cannot be read (a template pattern chrono cannot give).
    error: Option<String>,
}

impl VisitorMut for CurrentDatabase<'_> {
    type Break = ();

    fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        if let Expr::Like { pattern, escape_char, .. } | Expr::ILike { pattern, escape_char, .. } = expr
            && let Some(escape) = escape_char.as_ref().and_then(single_quoted).filter(|e| e != "\\")
        {
            match string_literal(pattern) {
                Some(text) => {
                    if let Some(rewritten) = with_backslash_escapes(&text, &escape) {
                        **pattern = Expr::Value(Value::SingleQuotedString(rewritten).with_empty_span());
                        *escape_char = None;
                    }
                }
                // A pattern built in the query (SQLAlchemy's `'pg/_' || '%'`) is rewritten
                // as it is computed (settings.rs `escape_like_pattern`).
                None if escape.chars().count() <= 1 => {
                    let call = format!("escape_like_pattern(({pattern}), '{}')", escape.replace('\'', "''"));
                    if let Ok(e) = parse_expr(&call) {
                        **pattern = e;
                        *escape_char = None;
                    }
                }
                None => {}
            }
        }
        // `(composite).field`, PostgreSQL's field of a row value: DataFusion takes a name in
        // brackets only, so it is `get_field`.
        if let Expr::CompoundFieldAccess { root, access_chain } = expr {
            use datafusion::sql::sqlparser::ast::AccessExpr;
            if matches!(root.as_ref(), Expr::Nested(_))
                && access_chain.iter().all(|a| matches!(a, AccessExpr::Dot(Expr::Identifier(_))))
            {
                let mut access = root.to_string();
                for a in access_chain.iter() {
                    if let AccessExpr::Dot(Expr::Identifier(i)) = a {
                        access = format!("get_field({access}, '{}')", i.value.to_lowercase().replace('\'', "''"));
                    }
                }
                if let Ok(e) = parse_expr(&access) {
                    *expr = e;
                }
            }
        }
        if let Expr::Subquery(query) = expr {
            if reads_an_empty_catalog(query) {
                *expr = Expr::Value(Value::Null.with_empty_span());
                return ControlFlow::Continue(());
            }
            if single_valued(query)
                && let Some(outer) = hoist_outer_conditions(query)
            {
                // No row when an outer-only condition fails: the subquery's NULL.
                let subquery = Expr::Subquery(query.clone());
                if let Ok(case) = parse_expr(&format!("CASE WHEN {outer} THEN {subquery} END")) {
                    *expr = case;
                }
            }
        }
        if let Expr::Function(f) = expr {
            // Set-returning functions over arrays, as unnest (DataFusion zips the unnests of one
            // SELECT list as PostgreSQL zips its set-returning functions).
            if let Some(replacement) = set_returning(f) {
                *expr = replacement;
                return ControlFlow::Continue(());
            }
            let name = function_name(f);
            if let Err(e) = rewrite_function(f, name.as_deref()) {
                self.error = Some(e);
                return ControlFlow::Break(());
            }
        }
        let is_current_database = match expr {
            Expr::Function(f) => function_name(f).is_some_and(|n| n == "current_database" || n == "current_catalog"),
            Expr::Identifier(i) => is_current_catalog(i),
            _ => false,
        };
        if is_current_database {
            *expr = Expr::Value(Value::SingleQuotedString(self.database.to_string()).with_empty_span());
        }
        ControlFlow::Continue(())
    }
}

/// The text of a single-quoted string value.
fn single_quoted(v: &datafusion::sql::sqlparser::ast::ValueWithSpan) -> Option<String> {
    match &v.value {
        Value::SingleQuotedString(s) | Value::EscapedStringLiteral(s) => Some(s.clone()),
        _ => None,
    }
}

fn string_literal(expr: &Expr) -> Option<String> {
    match expr {
        Expr::Value(v) => single_quoted(v),
        _ => None,
    }
}

/// A LIKE pattern written with `escape` as one with the backslash DataFusion takes: the escaped
/// character follows a backslash, and a backslash that is not the escape is itself escaped.
/// `None` when the escape is not one character (PostgreSQL refuses it too; DataFusion says so).
pub fn with_backslash_escapes(pattern: &str, escape: &str) -> Option<String> {
    let mut chars = escape.chars();
    let escape = match (chars.next(), chars.next()) {
        // `ESCAPE ''` turns escaping off: every character is itself.
        (None, _) => None,
        (Some(c), None) => Some(c),
        _ => return None,
    };
    let mut out = String::with_capacity(pattern.len() + 4);
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        if Some(c) == escape {
            match chars.next() {
                Some(next) => {
                    out.push('\\');
                    out.push(next);
                }
                None => return None,
            }
        } else if c == '\\' {
            out.push_str("\\\\");
        } else {
            out.push(c);
        }
    }
    Some(out)
}

/// `generate_subscripts(a, 1)` as `unnest(range(1, cardinality(a) + 1))`, and pgjdbc's
/// `information_schema._pg_expandarray(a)` (rows of `(x, n)`: each element and its position) as
/// `unnest(_pg_expandarray(a))` over settings.rs's function of that name.
fn set_returning(f: &datafusion::sql::sqlparser::ast::Function) -> Option<Expr> {
    use datafusion::sql::sqlparser::ast::{FunctionArg, FunctionArgExpr, FunctionArguments};
    // `ARRAY(SELECT x FROM ...)`: the subquery's values as one array (psql's `\d+`).
    if let FunctionArguments::Subquery(query) = &f.args {
        if function_name(f)? != "array" || query.order_by.is_some() || query.limit_clause.is_some() {
            return None;
        }
        if let Some(each) = array_of_unnest(query) {
            return Some(each);
        }
        let mut query = query.clone();
        let SetExpr::Select(select) = query.body.as_mut() else { return None };
        let [SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. }] = select.projection.as_mut_slice()
        else {
            return None;
        };
        *e = parse_expr(&format!("array_agg({e})")).ok()?;
        return Some(Expr::Subquery(query));
    }
    let FunctionArguments::List(list) = &f.args else { return None };
    let args: Vec<&Expr> = list
        .args
        .iter()
        .filter_map(|a| match a {
            FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => Some(e),
            _ => None,
        })
        .collect();
    match (function_name(f)?.as_str(), args.as_slice()) {
        ("generate_subscripts", [array, dim]) if dim.to_string() == "1" => {
            parse_expr(&format!("unnest(range(1, CAST(cardinality({array}) AS BIGINT) + 1))")).ok()
        }
        ("_pg_expandarray", [array]) => parse_expr(&format!("unnest(_pg_expandarray({array}))")).ok(),
        _ => None,
    }
}

/// PostgreSQL's templates in `to_char`, `to_timestamp` and `to_date`; `pg_get_viewdef` of an
/// expression that is not a view's name: the name of the relation with that OID.
fn rewrite_function(f: &mut datafusion::sql::sqlparser::ast::Function, name: Option<&str>) -> Result<(), String> {
    use datafusion::sql::sqlparser::ast::{FunctionArg, FunctionArgExpr, FunctionArguments};
    let FunctionArguments::List(list) = &mut f.args else { return Ok(()) };
    match name {
        Some(name @ ("to_char" | "to_timestamp" | "to_date")) => {
            for arg in list.args.iter_mut().skip(1) {
                let FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) = arg else { continue };
                let Some(template) = string_literal(e) else { continue };
                if super::templates::is_postgres_template(&template) {
                    let format = super::templates::to_chrono(&template).map_err(|why| format!("{name}: {why}"))?;
                    *e = Expr::Value(Value::SingleQuotedString(format).with_empty_span());
                }
            }
        }
        Some(kind @ ("pg_get_indexdef" | "pg_get_constraintdef")) => {
            // The key's definition from its name (settings.rs `pg_get_keydef`).
            let args: Vec<String> = list.args.iter().map(|a| a.to_string()).collect();
            let (lookup, column) = if kind == "pg_get_indexdef" {
                let column = args.get(1).cloned().unwrap_or_else(|| "0".into());
                ("SELECT max(key_class.relname) FROM pg_catalog.pg_class AS key_class WHERE key_class.oid", column)
            } else {
                ("SELECT max(key_con.conname) FROM pg_catalog.pg_constraint AS key_con WHERE key_con.oid", "0".into())
            };
            let Some(oid) = args.first() else { return Ok(()) };
            let which = if kind == "pg_get_indexdef" { "index" } else { "constraint" };
            if let Ok(Expr::Function(call)) =
                parse_expr(&format!("pg_get_keydef(({lookup} = {oid}), '{which}', {column})"))
            {
                *f = call;
            }
        }
        Some(kind @ ("obj_description" | "col_description")) => {
            // The comment in pg_description (catalog.rs), looked up by OID (and column).
            let args: Vec<String> = list.args.iter().map(|a| a.to_string()).collect();
            let Some(oid) = args.first() else { return Ok(()) };
            let column =
                if kind == "col_description" { args.get(1).cloned().unwrap_or_else(|| "0".into()) } else { "0".into() };
            // A relation named by text computed in the query (Metabase: `col_description(
            // format('%I.%I', schema, table)::regclass::oid, n)`): looked up by name, since the
            // OID a name has is only in pg_class.
            if let Some(FunctionArg::Unnamed(FunctionArgExpr::Expr(first))) = list.args.first()
                && let Some(name) = regclass_of_text(first)
            {
                if let Ok(Expr::Function(call)) = parse_expr(&format!(
                    "coalesce((SELECT max(comment.description) FROM pg_catalog.pg_description AS comment \
                     JOIN pg_catalog.pg_class AS comment_class ON comment_class.oid = comment.objoid \
                     JOIN pg_catalog.pg_namespace AS comment_ns ON comment_ns.oid = comment_class.relnamespace \
                     WHERE comment_class.relname = regclass_part(CAST({name} AS TEXT), 'name') \
                     AND comment_ns.nspname = regclass_part(CAST({name} AS TEXT), 'schema') \
                     AND comment.objsubid = {column}))"
                )) {
                    *f = call;
                }
                return Ok(());
            }
            if let Ok(Expr::Function(call)) = parse_expr(&format!(
                "coalesce((SELECT max(comment.description) FROM pg_catalog.pg_description AS comment \
                 WHERE comment.objoid = {oid} AND comment.objsubid = {column}))"
            )) {
                *f = call;
            }
        }
        Some("pg_table_size" | "pg_relation_size" | "pg_total_relation_size") => {
            // The bytes of the relation's data (settings.rs `relation_size`), by its name: an
            // OID is looked up in pg_class, a name given as text (`pg_table_size('features')`)
            // is read as a regclass.
            let Some(FunctionArg::Unnamed(FunctionArgExpr::Expr(first))) = list.args.first() else { return Ok(()) };
            let name = if string_literal(first).is_some() {
                format!("regclass_part({first}, 'name')")
            } else if let Some(text) = regclass_of_text(first) {
                format!("regclass_part(CAST({text} AS TEXT), 'name')")
            } else {
                format!(
                    "(SELECT max(size_class.relname) FROM pg_catalog.pg_class AS size_class WHERE size_class.oid = {first})"
                )
            };
            if let Ok(Expr::Function(call)) = parse_expr(&format!("relation_size({name})")) {
                *f = call;
            }
        }
        Some("pg_indexes_size") => {
            // debtlens keeps no index: a key is checked at ingest.
            if let Ok(Expr::Function(call)) = parse_expr("coalesce(CAST(0 AS BIGINT))") {
                *f = call;
            }
        }
        Some("pg_get_viewdef") => {
            let Some(FunctionArg::Unnamed(FunctionArgExpr::Expr(e))) = list.args.first_mut() else { return Ok(()) };
            if string_literal(e).is_none() {
                // Aliased, so that the client's `pg_catalog.pg_class.oid` is the outer row's.
                let lookup = format!(
                    "(SELECT max(viewdef_class.relname) FROM pg_catalog.pg_class AS viewdef_class WHERE viewdef_class.oid = {e})"
                );
                if let Ok(sub) = parse_expr(&lookup) {
                    *e = sub;
                }
            }
        }
        _ => {}
    }
    Ok(())
}

/// `E::regclass` (or `E::regclass::oid`) of a text `E` computed in the query: `E`. A literal's
/// cast is datafusion-pg-catalog's to resolve.
fn regclass_of_text(e: &Expr) -> Option<&Expr> {
    let Expr::Cast { expr, data_type, .. } = e else { return None };
    let target = data_type.to_string().to_lowercase();
    if target == "oid" || target.ends_with(".oid") {
        return regclass_of_text(expr);
    }
    if (target == "regclass" || target.ends_with(".regclass")) && string_literal(expr).is_none() {
        return Some(expr);
    }
    None
}

/// A scalar subquery whose SELECT is not an aggregate takes its value through `single_value`
/// (subquery.rs), so that DataFusion can plan it when it is correlated. Whether it did.
fn single_valued(query: &mut Query) -> bool {
    if query.limit_clause.is_some() || query.order_by.is_some() || query.fetch.is_some() || query.with.is_some() {
        return false;
    }
    let SetExpr::Select(select) = query.body.as_mut() else { return false };
    let grouped =
        !matches!(&select.group_by, datafusion::sql::sqlparser::ast::GroupByExpr::Expressions(e, _) if e.is_empty());
    if select.distinct.is_some() || grouped || select.having.is_some() || select.projection.len() != 1 {
        return false;
    }
    let (SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. }) = &mut select.projection[0] else {
        return false;
    };
    if has_aggregate(e) {
        return false;
    }
    match parse_expr(&format!("{}({e})", super::subquery::NAME)) {
        Ok(wrapped) => {
            *e = wrapped;
            true
        }
        Err(_) => false,
    }
}

/// `ARRAY(SELECT 'p' || x || 's' FROM unnest(a) x)` (psql's `\d+` prefixes a TOAST table's
/// options so): each element of the outer row's array with literal text around it, as
/// `concat_each(a, 'p', 's')` (settings.rs), since DataFusion cannot plan an unnest of an outer
/// row's column. `None` for any other subquery.
fn array_of_unnest(query: &Query) -> Option<Expr> {
    use datafusion::sql::sqlparser::ast::{BinaryOperator, FunctionArg, FunctionArgExpr, TableFactor};
    let SetExpr::Select(select) = query.body.as_ref() else { return None };
    let [from] = select.from.as_slice() else { return None };
    if !from.joins.is_empty() || select.selection.is_some() || query.with.is_some() {
        return None;
    }
    let (array, alias) = match &from.relation {
        TableFactor::UNNEST { alias, array_exprs, with_offset: false, .. } => match array_exprs.as_slice() {
            [a] => (a.clone(), alias.as_ref()?),
            _ => return None,
        },
        TableFactor::Table { name, args: Some(args), alias: Some(alias), .. } if matches!(name.0.last(), Some(ObjectNamePart::Identifier(i)) if i.value.eq_ignore_ascii_case("unnest")) => {
            match args.args.as_slice() {
                [FunctionArg::Unnamed(FunctionArgExpr::Expr(a))] => (a.clone(), alias),
                _ => return None,
            }
        }
        _ => return None,
    };
    // The element's name: the column alias, or (PostgreSQL's rule for a function of one
    // column) the table alias.
    let element = match alias.columns.as_slice() {
        [] => alias.name.value.clone(),
        [column] => column.name.value.clone(),
        _ => return None,
    };
    let [SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. }] = select.projection.as_slice() else {
        return None;
    };
    fn operands<'a>(e: &'a Expr, out: &mut Vec<&'a Expr>) {
        match e {
            Expr::BinaryOp { left, op: BinaryOperator::StringConcat, right } => {
                operands(left, out);
                operands(right, out);
            }
            Expr::Nested(inner) => operands(inner, out),
            other => out.push(other),
        }
    }
    let mut parts = Vec::new();
    operands(e, &mut parts);
    let is_element = |e: &Expr| match e {
        Expr::Identifier(i) => i.value == element,
        Expr::CompoundIdentifier(ids) => ids.len() == 2 && ids[0].value == alias.name.value && ids[1].value == element,
        _ => false,
    };
    let at = parts.iter().position(|p| is_element(p))?;
    let text = |ps: &[&Expr]| -> Option<String> { ps.iter().map(|p| string_literal(p)).collect() };
    let (prefix, suffix) = (text(&parts[..at])?, text(&parts[at + 1..])?);
    let quote = |t: String| format!("'{}'", t.replace('\'', "''"));
    parse_expr(&format!("concat_each({array}, {}, {})", quote(prefix), quote(suffix))).ok()
}

/// Whether a scalar subquery reads only a catalog table that is always empty in debtlens (no
/// sequences, no column defaults, no triggers, no inheritance, no policies) and aggregates
/// nothing: its value is NULL. SQLAlchemy's `get_columns` asks for identity options with a
/// subquery over `pg_sequence` whose SELECT reads the outer row, which DataFusion cannot plan.
fn reads_an_empty_catalog(query: &Query) -> bool {
    use datafusion::sql::sqlparser::ast::TableFactor;
    const EMPTY: &[&str] =
        &["pg_sequence", "pg_attrdef", "pg_trigger", "pg_inherits", "pg_partitioned_table", "pg_policy"];
    use datafusion::sql::sqlparser::ast::JoinOperator;
    let SetExpr::Select(select) = query.body.as_ref() else { return false };
    let [table] = select.from.as_slice() else { return false };
    let is_empty = |factor: &TableFactor| {
        let TableFactor::Table { name, .. } = factor else { return false };
        let schema_ok = name.0.len() == 1
            || matches!(name.0.first(), Some(ObjectNamePart::Identifier(i)) if i.value.eq_ignore_ascii_case("pg_catalog"));
        schema_ok
            && matches!(name.0.last(), Some(ObjectNamePart::Identifier(i)) if EMPTY.contains(&i.value.to_lowercase().as_str()))
    };
    // The first relation, or one joined to it by an inner join (SQLAlchemy 1.4 joins
    // pg_sequence to pg_class), empties the whole FROM.
    let empty = is_empty(&table.relation)
        || table.joins.iter().any(|j| {
            matches!(j.join_operator, JoinOperator::Join(_) | JoinOperator::Inner(_) | JoinOperator::CrossJoin(_))
                && is_empty(&j.relation)
        });
    let aggregates = select.projection.iter().any(|item| match item {
        SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => has_aggregate(e),
        _ => true,
    });
    let grouped =
        !matches!(&select.group_by, datafusion::sql::sqlparser::ast::GroupByExpr::Expressions(e, _) if e.is_empty());
    empty && !aggregates && !grouped && select.projection.len() == 1
}

/// Takes the conditions of a (single-valued) subquery's WHERE that read only the outer query's
/// columns (`WHERE pg_attribute.atthasdef AND pg_attrdef.adrelid = pg_attribute.attrelid`, as
/// SQLAlchemy writes them): DataFusion cannot decorrelate them, and they are the same for every
/// inner row, so they are checked outside, around the subquery. Their conjunction, if any.
fn hoist_outer_conditions(query: &mut Query) -> Option<Expr> {
    use datafusion::sql::sqlparser::ast::{BinaryOperator, TableFactor};
    let SetExpr::Select(select) = query.body.as_mut() else { return None };
    let mut inner: HashSet<String> = HashSet::new();
    for table in &select.from {
        for factor in std::iter::once(&table.relation).chain(table.joins.iter().map(|j| &j.relation)) {
            match factor {
                TableFactor::Table { name, alias, .. } => {
                    if let Some(ObjectNamePart::Identifier(i)) = name.0.last() {
                        inner.insert(i.value.to_lowercase());
                    }
                    if let Some(a) = alias {
                        inner.insert(a.name.value.to_lowercase());
                    }
                }
                // Anything else (a derived table, a function): nothing is hoisted.
                _ => return None,
            }
        }
    }
    let selection = select.selection.take()?;
    let mut conjuncts = Vec::new();
    split_and(selection, &mut conjuncts);
    let (outer, kept): (Vec<Expr>, Vec<Expr>) = conjuncts.into_iter().partition(|c| reads_only_outer(c, &inner));
    // Where the WHERE equates an outer column with an inner one, the other conditions read the
    // inner one instead (psql's `\d`: `c.oid = a.attcollation AND a.attcollation <>
    // t.typcollation`): a correlated condition that is not an equality, which DataFusion cannot
    // decorrelate, becomes one on the subquery's own rows. Equal by the WHERE, so no answer changes.
    let equal: Vec<(Expr, Expr)> = kept
        .iter()
        .filter_map(|c| match c {
            Expr::BinaryOp { left, op: BinaryOperator::Eq, right } => {
                let side = |e: &Expr| match e {
                    Expr::CompoundIdentifier(parts) if parts.len() >= 2 => {
                        Some(inner.contains(&parts[parts.len() - 2].value.to_lowercase()))
                    }
                    _ => None,
                };
                match (side(left), side(right)) {
                    (Some(true), Some(false)) => Some((*right.clone(), *left.clone())),
                    (Some(false), Some(true)) => Some((*left.clone(), *right.clone())),
                    _ => None,
                }
            }
            _ => None,
        })
        .collect();
    let kept: Vec<Expr> = kept
        .into_iter()
        .map(|mut c| {
            let is_equality = matches!(&c, Expr::BinaryOp { op: BinaryOperator::Eq, .. })
                && equal
                    .iter()
                    .any(|(o, i)| c.to_string() == format!("{i} = {o}") || c.to_string() == format!("{o} = {i}"));
            if !is_equality {
                let _ = c.visit(&mut Substitute { equal: &equal });
            }
            c
        })
        .collect();
    let and = |parts: Vec<Expr>| {
        parts.into_iter().reduce(|a, b| Expr::BinaryOp {
            left: Box::new(a),
            op: BinaryOperator::And,
            right: Box::new(b),
        })
    };
    select.selection = and(kept);
    and(outer.into_iter().map(|e| Expr::Nested(Box::new(e))).collect())
}

/// Replaces outer columns by the inner columns the WHERE equates them with.
struct Substitute<'a> {
    equal: &'a [(Expr, Expr)],
}

impl VisitorMut for Substitute<'_> {
    type Break = ();
    fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        if let Some((_, inner)) = self.equal.iter().find(|(outer, _)| outer == expr) {
            *expr = inner.clone();
        }
        ControlFlow::Continue(())
    }
}

fn split_and(expr: Expr, out: &mut Vec<Expr>) {
    use datafusion::sql::sqlparser::ast::BinaryOperator;
    match expr {
        Expr::BinaryOp { left, op: BinaryOperator::And, right } => {
            split_and(*left, out);
            split_and(*right, out);
        }
        Expr::Nested(inner) if matches!(inner.as_ref(), Expr::BinaryOp { op: BinaryOperator::And, .. }) => {
            split_and(*inner, out)
        }
        other => out.push(other),
    }
}

/// Whether every column an expression reads is qualified by a table that is not the subquery's
/// (and it reads at least one, and has no subquery of its own).
fn reads_only_outer(expr: &Expr, inner: &HashSet<String>) -> bool {
    use datafusion::sql::sqlparser::ast::Visit;
    struct Columns<'a> {
        inner: &'a HashSet<String>,
        outer: usize,
        other: bool,
    }
    impl datafusion::sql::sqlparser::ast::Visitor for Columns<'_> {
        type Break = ();
        fn pre_visit_expr(&mut self, e: &Expr) -> ControlFlow<()> {
            match e {
                Expr::CompoundIdentifier(parts) if parts.len() >= 2 => {
                    let table = parts[parts.len() - 2].value.to_lowercase();
                    if self.inner.contains(&table) {
                        self.other = true;
                    } else {
                        self.outer += 1;
                    }
                }
                Expr::Identifier(_)
                | Expr::CompoundIdentifier(_)
                | Expr::Subquery(_)
                | Expr::Exists { .. }
                | Expr::InSubquery { .. } => self.other = true,
                _ => {}
            }
            if self.other { ControlFlow::Break(()) } else { ControlFlow::Continue(()) }
        }
    }
    let mut columns = Columns { inner, outer: 0, other: false };
    let _ = expr.visit(&mut columns);
    !columns.other && columns.outer > 0
}

/// Whether an expression calls an aggregate (or a window function): then DataFusion plans the
/// subquery as it is.
fn has_aggregate(expr: &Expr) -> bool {
    use datafusion::sql::sqlparser::ast::Visit;
    const AGGREGATES: &[&str] = &[
        "count",
        "sum",
        "avg",
        "min",
        "max",
        "array_agg",
        "string_agg",
        "bool_and",
        "bool_or",
        "every",
        "json_agg",
        "jsonb_agg",
        "json_object_agg",
        "median",
        "percentile_cont",
        "percentile_disc",
        "mode",
        "first_value",
        "last_value",
        "stddev",
        "stddev_pop",
        "stddev_samp",
        "variance",
        "var_pop",
        "var_samp",
        "corr",
        "covar_pop",
        "covar_samp",
        "bit_and",
        "bit_or",
        "bit_xor",
        "approx_distinct",
        "approx_median",
        "approx_percentile_cont",
        "single_value",
    ];
    struct Find(bool);
    impl datafusion::sql::sqlparser::ast::Visitor for Find {
        type Break = ();
        fn pre_visit_expr(&mut self, e: &Expr) -> ControlFlow<()> {
            if let Expr::Function(f) = e
                && (f.over.is_some()
                    || f.filter.is_some()
                    || function_name(f).is_some_and(|n| AGGREGATES.contains(&n.as_str())))
            {
                self.0 = true;
                return ControlFlow::Break(());
            }
            // A nested subquery is its own scope.
            if matches!(e, Expr::Subquery(_) | Expr::Exists { .. } | Expr::InSubquery { .. }) {
                return ControlFlow::Continue(());
            }
            ControlFlow::Continue(())
        }
    }
    let mut find = Find(false);
    let _ = expr.visit(&mut find);
    find.0
}

/// Grafana's "schemas on the search path" subquery (`SELECT CASE WHEN trim(s[i]) = '"$user"'
/// THEN user ELSE trim(s[i]) END FROM generate_series(...) AS i, string_to_array(
/// current_setting('search_path'), ',') s`), which uses scalar functions as relations: the
/// server's search path is `"$user", public` and no user has a schema, so its rows are
/// `public`. Without this, datafusion-pg-catalog's table of client queries replaced it by `''`
/// and Grafana listed every table schema-qualified. Whether any was replaced.
pub fn search_path_subqueries(statement: &mut Statement) -> bool {
    struct SearchPath(bool);
    impl VisitorMut for SearchPath {
        type Break = ();
        fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
            let is_search_path = |query: &Query| {
                let text = query.to_string();
                text.contains("current_setting('search_path')") && text.contains("generate_series(")
            };
            let public = Expr::Value(Value::SingleQuotedString("public".into()).with_empty_span());
            // As a list, so that it also works where DataFusion takes no subquery (ORDER BY).
            match expr {
                Expr::InSubquery { expr: tested, subquery, negated } if is_search_path(subquery) => {
                    *expr = Expr::InList { expr: tested.clone(), list: vec![public], negated: *negated };
                    self.0 = true;
                }
                Expr::Subquery(query) if is_search_path(query) => {
                    *expr = public;
                    self.0 = true;
                }
                _ => {}
            }
            ControlFlow::Continue(())
        }
    }
    let mut visitor = SearchPath(false);
    let _ = statement.visit(&mut visitor);
    visitor.0
}

/// `pg_type.typinput = 'pg_catalog.array_in'::regproc` (pgjdbc's type cache): datafusion-pg-catalog
/// keeps `typinput` and the other function columns of pg_type as the function's name, and would
/// turn the cast into a subquery for an OID, which a name cannot be compared with. Compared with
/// one of those columns, the cast is the name itself. Whether any changed.
pub fn regproc_names(statement: &mut Statement) -> bool {
    use datafusion::sql::sqlparser::ast::BinaryOperator;
    const NAMED: &[&str] = &["typinput", "typoutput", "typreceive", "typsend", "typmodin", "typmodout", "typanalyze"];
    struct Names(bool);
    impl VisitorMut for Names {
        type Break = ();
        fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
            let Expr::BinaryOp { left, op: BinaryOperator::Eq | BinaryOperator::NotEq, right } = expr else {
                return ControlFlow::Continue(());
            };
            let named = |e: &Expr| match e {
                Expr::Identifier(i) => NAMED.contains(&i.value.to_lowercase().as_str()),
                Expr::CompoundIdentifier(parts) => {
                    parts.last().is_some_and(|i| NAMED.contains(&i.value.to_lowercase().as_str()))
                }
                _ => false,
            };
            let (column, cast) = if named(left) { (left, right) } else { (right, left) };
            if !named(column) {
                return ControlFlow::Continue(());
            }
            if let Expr::Cast { expr: inner, data_type, .. } = cast.as_mut()
                && data_type.to_string().to_lowercase().trim_start_matches("pg_catalog.") == "regproc"
                && let Some(name) = string_literal(inner)
            {
                let bare = name.rsplit('.').next().unwrap_or(&name).to_string();
                **cast = Expr::Value(Value::SingleQuotedString(bare).with_empty_span());
                self.0 = true;
            }
            ControlFlow::Continue(())
        }
    }
    let mut visitor = Names(false);
    let _ = statement.visit(&mut visitor);
    visitor.0
}

/// `'pg_class'::regclass`: an unqualified name cast to `regclass` is looked up as PostgreSQL's
/// search path finds it, where `pg_catalog` comes first. datafusion-pg-catalog's
/// `RewriteRegCastToSubquery` (sql/rules.rs, its `regclass` lookup) looks in `current_schema()`
/// only, so Metabase's `d.classoid = 'pg_class'::regclass` was NULL and its table list lost
/// every description. The name of a catalog table is qualified with `pg_catalog` before that
/// rule runs. Whether any was.
pub fn catalog_regclass_names(statement: &mut Statement) -> bool {
    struct Names(bool);
    impl VisitorMut for Names {
        type Break = ();
        fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
            if let Expr::Cast { expr: inner, data_type, .. } = expr
                && data_type.to_string().to_lowercase().trim_start_matches("pg_catalog.") == "regclass"
                && let Some(name) = string_literal(inner)
                && let Ok((schema, relation)) = super::settings::regclass_name(&name)
                && schema == "pg_catalog"
                && !name.contains('.')
            {
                **inner = Expr::Value(Value::SingleQuotedString(format!("pg_catalog.{relation}")).with_empty_span());
                self.0 = true;
            }
            ControlFlow::Continue(())
        }
    }
    let mut visitor = Names(false);
    let _ = statement.visit(&mut visitor);
    visitor.0
}

/// Compared with `=` or `<>`, the literals PostgreSQL reads as booleans (`'t'`, `'f'`, `'true'`,
/// `'false'`, `'yes'`, `'no'`, `'on'`, `'off'`, `'1'`, `'0'`) become booleans. Only used to plan
/// again a statement DataFusion refused for comparing a Boolean with text. Whether any changed.
pub fn boolean_literals(statement: &mut Statement) -> bool {
    use datafusion::sql::sqlparser::ast::BinaryOperator;
    struct Booleans(bool);
    impl VisitorMut for Booleans {
        type Break = ();
        fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
            if let Expr::BinaryOp { left, op: BinaryOperator::Eq | BinaryOperator::NotEq, right } = expr {
                for side in [left, right] {
                    let value = string_literal(side).and_then(|s| match s.to_ascii_lowercase().as_str() {
                        "t" | "true" | "yes" | "on" | "1" => Some(true),
                        "f" | "false" | "no" | "off" | "0" => Some(false),
                        _ => None,
                    });
                    if let Some(b) = value {
                        **side = Expr::Value(Value::Boolean(b).with_empty_span());
                        self.0 = true;
                    }
                }
            }
            ControlFlow::Continue(())
        }
    }
    let mut visitor = Booleans(false);
    let _ = statement.visit(&mut visitor);
    visitor.0
}

fn parse_expr(sql: &str) -> Result<Expr, datafusion::sql::sqlparser::parser::ParserError> {
    use datafusion::sql::sqlparser::{dialect::PostgreSqlDialect, parser::Parser};
    Parser::new(&PostgreSqlDialect {}).try_with_sql(sql)?.parse_expr()
}

/// `current_catalog`, the SQL-standard spelling of `current_database()` (no parentheses).
fn is_current_catalog(i: &Ident) -> bool {
    i.quote_style.is_none() && i.value.eq_ignore_ascii_case("current_catalog")
}

fn function_name(f: &datafusion::sql::sqlparser::ast::Function) -> Option<String> {
    match f.name.0.last()? {
        ObjectNamePart::Identifier(i) => Some(i.value.to_lowercase()),
        _ => None,
    }
}

/// The names of the outer SELECT's columns (the first SELECT of a UNION names them).
fn name_columns(query: &mut Query) {
    let mut body = query.body.as_mut();
    loop {
        match body {
            SetExpr::Select(select) => {
                let given: HashSet<String> = select
                    .projection
                    .iter()
                    .filter_map(|item| match item {
                        SelectItem::ExprWithAlias { alias, .. } => Some(alias.value.clone()),
                        SelectItem::UnnamedExpr(e) => column_name(e),
                        _ => None,
                    })
                    .collect();
                let mut taken = given;
                for item in &mut select.projection {
                    let SelectItem::UnnamedExpr(expr) = item else { continue };
                    if column_name(expr).is_some() {
                        continue;
                    }
                    let name = postgres_name(expr);
                    if taken.insert(name.clone()) {
                        *item = SelectItem::ExprWithAlias { expr: expr.clone(), alias: Ident::with_quote('"', name) };
                    } else {
                        // PostgreSQL allows two columns of one name; DataFusion does not. The
                        // second is named by its text (`count(b)`, as DataFusion would name it,
                        // but fixed before the rewrites below change the expression), or numbered
                        // when that is taken too (pgjdbc's getProcedures selects `NULL, NULL`).
                        let text = expr.to_string();
                        let alias = if taken.insert(text.clone()) {
                            text
                        } else {
                            let numbered =
                                (2..).map(|n| format!("{name}{n}")).find(|n| !taken.contains(n)).unwrap_or_default();
                            taken.insert(numbered.clone());
                            numbered
                        };
                        *item = SelectItem::ExprWithAlias { expr: expr.clone(), alias: Ident::with_quote('"', alias) };
                    }
                }
                return;
            }
            SetExpr::SetOperation { left, .. } => body = left.as_mut(),
            SetExpr::Query(inner) => body = inner.body.as_mut(),
            _ => return,
        }
    }
}

/// The name of a plain column reference (which DataFusion names as PostgreSQL does).
fn column_name(expr: &Expr) -> Option<String> {
    match expr {
        Expr::Identifier(i) if is_current_catalog(i) => None,
        Expr::Identifier(i) => Some(i.value.clone()),
        Expr::CompoundIdentifier(parts) => parts.last().map(|i| i.value.clone()),
        _ => None,
    }
}

/// PostgreSQL's name for an unnamed output column (FigureColname in its parser).
fn postgres_name(expr: &Expr) -> String {
    match expr {
        Expr::Identifier(i) if is_current_catalog(i) => "current_catalog".into(),
        Expr::Identifier(_) | Expr::CompoundIdentifier(_) => column_name(expr).unwrap_or_default(),
        Expr::Function(f) => function_name(f).unwrap_or_else(|| "?column?".into()),
        Expr::Cast { expr, .. } | Expr::Nested(expr) => postgres_name(expr),
        Expr::Case { .. } => "case".into(),
        Expr::Exists { .. } => "exists".into(),
        Expr::Array(_) => "array".into(),
        Expr::Subquery(q) => match q.body.as_ref() {
            SetExpr::Select(s) => match s.projection.first() {
                Some(SelectItem::ExprWithAlias { alias, .. }) => alias.value.clone(),
                Some(SelectItem::UnnamedExpr(e)) => postgres_name(e),
                _ => "?column?".into(),
            },
            _ => "?column?".into(),
        },
        _ => "?column?".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
    use datafusion::sql::sqlparser::parser::Parser;

    fn rewrite(sql: &str) -> String {
        let mut statement = Parser::parse_sql(&PostgreSqlDialect {}, sql).unwrap().remove(0);
        as_postgres(&mut statement, "debtlens").unwrap();
        statement.to_string()
    }

    #[test]
    fn unnamed_columns_get_postgresql_s_names() {
        assert_eq!(
            rewrite("SELECT count(*), 1, system, f.team, sum(x)::int, (max(y)) FROM f"),
            r#"SELECT count(*) AS "count", 1 AS "?column?", system, f.team, sum(x)::INT AS "sum", (max(y)) AS "max" FROM f"#
        );
        // A name already given is not given twice (DataFusion needs unique names).
        assert_eq!(
            rewrite("SELECT count(a), count(b) FROM f"),
            r#"SELECT count(a) AS "count", count(b) AS "count(b)" FROM f"#
        );
        // Named before the catalog lookups rewrite them alike.
        assert_eq!(
            rewrite("SELECT col_description(1, 1) IS NULL, obj_description(1, 'pg_class') IS NULL"),
            "SELECT coalesce((SELECT max(comment.description) FROM pg_catalog.pg_description AS comment WHERE comment.objoid = 1 AND comment.objsubid = 1)) IS NULL AS \"?column?\", \
             coalesce((SELECT max(comment.description) FROM pg_catalog.pg_description AS comment WHERE comment.objoid = 1 AND comment.objsubid = 0)) IS NULL AS \"obj_description(1, 'pg_class') IS NULL\""
        );
        assert_eq!(
            rewrite("SELECT 1 AS count, count(*) FROM f"),
            r#"SELECT 1 AS count, count(*) AS "count(*)" FROM f"#
        );
        assert_eq!(
            rewrite("SELECT NULL AS a, NULL, NULL, NULL"),
            r#"SELECT NULL AS a, NULL AS "?column?", NULL AS "NULL", NULL AS "?column?2""#
        );
        assert_eq!(rewrite("SELECT 1 UNION SELECT 2"), r#"SELECT 1 AS "?column?" UNION SELECT 2"#);
        assert_eq!(
            rewrite("SELECT CASE WHEN a THEN 1 END FROM f"),
            r#"SELECT CASE WHEN a THEN 1 END AS "case" FROM f"#
        );
    }

    #[test]
    fn like_escape_becomes_a_backslash_pattern() {
        assert_eq!(
            rewrite("SELECT nspname FROM pg_namespace WHERE nspname NOT LIKE 'pg/_%' ESCAPE '/'"),
            r"SELECT nspname FROM pg_namespace WHERE nspname NOT LIKE 'pg\_%'"
        );
        assert_eq!(
            rewrite(r"SELECT 1 WHERE a ILIKE '50!%\x' ESCAPE '!'"),
            r#"SELECT 1 AS "?column?" WHERE a ILIKE '50\%\\x'"#
        );
        assert_eq!(rewrite(r"SELECT 1 WHERE a LIKE 'a\b' ESCAPE ''"), r#"SELECT 1 AS "?column?" WHERE a LIKE 'a\\b'"#);
        // A pattern computed in the query: rewritten as it is computed.
        assert_eq!(
            rewrite("SELECT 1 WHERE a NOT LIKE 'pg/_' || '%' ESCAPE '/'"),
            r#"SELECT 1 AS "?column?" WHERE a NOT LIKE escape_like_pattern(('pg/_' || '%'), '/')"#
        );
        assert_eq!(with_backslash_escapes("pg/_%", "/").as_deref(), Some(r"pg\_%"));
        assert_eq!(with_backslash_escapes("ends/", "/"), None);
    }

    #[test]
    fn postgresql_templates_become_chrono_formats() {
        assert_eq!(
            rewrite(
                "SELECT to_char(t, 'YYYY-MM-DD'), to_timestamp(s, 'YYYY-MM-DD HH24:MI:SS.US'), to_char(t, '%Y') FROM f"
            ),
            r#"SELECT to_char(t, '%Y-%m-%d') AS "to_char", to_timestamp(s, '%Y-%m-%d %H:%M:%S.%6f') AS "to_timestamp", to_char(t, '%Y') AS "to_char(t, '%Y')" FROM f"#
        );
        let mut statement =
            Parser::parse_sql(&PostgreSqlDialect {}, "SELECT to_char(t, 'Q') FROM f").unwrap().remove(0);
        assert_eq!(as_postgres(&mut statement, "d").unwrap_err(), "to_char: the template pattern `Q` is not supported");
    }

    #[test]
    fn comments_and_sizes_of_a_relation_named_by_computed_text_are_looked_up_by_name() {
        // Metabase's describe-fields.
        assert_eq!(
            rewrite(
                "SELECT col_description(CAST(CAST(format('%I.%I', CAST(c.table_schema AS TEXT), CAST(c.table_name AS TEXT)) AS REGCLASS) AS OID), c.ordinal_position) AS x FROM information_schema.columns c"
            ),
            "SELECT coalesce((SELECT max(comment.description) FROM pg_catalog.pg_description AS comment \
             JOIN pg_catalog.pg_class AS comment_class ON comment_class.oid = comment.objoid \
             JOIN pg_catalog.pg_namespace AS comment_ns ON comment_ns.oid = comment_class.relnamespace \
             WHERE comment_class.relname = regclass_part(CAST(format('%I.%I', CAST(c.table_schema AS TEXT), CAST(c.table_name AS TEXT)) AS TEXT), 'name') \
             AND comment_ns.nspname = regclass_part(CAST(format('%I.%I', CAST(c.table_schema AS TEXT), CAST(c.table_name AS TEXT)) AS TEXT), 'schema') \
             AND comment.objsubid = c.ordinal_position)) AS x FROM information_schema.columns c"
        );
        assert_eq!(
            rewrite("SELECT pg_size_pretty(pg_table_size(c.oid)), pg_relation_size('features') FROM pg_class c"),
            r#"SELECT pg_size_pretty(relation_size((SELECT max(size_class.relname) FROM pg_catalog.pg_class AS size_class WHERE size_class.oid = c.oid))) AS "pg_size_pretty", relation_size(regclass_part('features', 'name')) AS "pg_relation_size" FROM pg_class c"#
        );
    }

    #[test]
    fn a_catalog_table_s_unqualified_regclass_name_is_found_in_pg_catalog() {
        let mut statement = Parser::parse_sql(
            &PostgreSqlDialect {},
            "SELECT 1 FROM d WHERE d.classoid = 'pg_class'::regclass AND d.objoid = 'features'::regclass",
        )
        .unwrap()
        .remove(0);
        assert!(catalog_regclass_names(&mut statement));
        assert_eq!(
            statement.to_string(),
            "SELECT 1 FROM d WHERE d.classoid = 'pg_catalog.pg_class'::REGCLASS AND d.objoid = 'features'::REGCLASS"
        );
    }

    #[test]
    fn pg_get_viewdef_of_an_oid_looks_the_name_up() {
        assert_eq!(
            rewrite("SELECT pg_get_viewdef(c.oid, true) FROM pg_class c"),
            r#"SELECT pg_get_viewdef((SELECT max(viewdef_class.relname) FROM pg_catalog.pg_class AS viewdef_class WHERE viewdef_class.oid = c.oid), true) AS "pg_get_viewdef" FROM pg_class c"#
        );
    }

    #[test]
    fn plain_scalar_subqueries_take_a_single_value() {
        assert_eq!(
            rewrite("SELECT (SELECT b.x FROM b WHERE b.id = a.id) AS x FROM a"),
            "SELECT (SELECT single_value(b.x) FROM b WHERE b.id = a.id) AS x FROM a"
        );
        // Aggregates, grouping, DISTINCT and LIMIT are DataFusion's as they are.
        for sql in [
            "SELECT (SELECT max(b.x) FROM b WHERE b.id = a.id) AS x FROM a",
            "SELECT (SELECT b.x FROM b WHERE b.id = a.id GROUP BY b.x) AS x FROM a",
            "SELECT (SELECT DISTINCT b.x FROM b) AS x FROM a",
            "SELECT (SELECT b.x FROM b ORDER BY b.x LIMIT 1) AS x FROM a",
            "SELECT (SELECT count(*) + 1 FROM b) AS x FROM a",
        ] {
            assert_eq!(rewrite(sql), sql);
        }
    }

    #[test]
    fn conditions_on_the_outer_row_alone_are_checked_around_the_subquery() {
        assert_eq!(
            rewrite(
                "SELECT CASE WHEN a.h THEN (SELECT d.x FROM pg_description d WHERE a.h AND d.id = a.id AND a.k <> '') END AS x FROM a"
            ),
            "SELECT CASE WHEN a.h THEN CASE WHEN (a.h) AND (a.k <> '') THEN (SELECT single_value(d.x) FROM pg_description d WHERE d.id = a.id) END END AS x FROM a"
        );
        // psql's `\d`: the outer column of a condition that is not an equality is read from the
        // inner column the WHERE equates it with.
        assert_eq!(
            rewrite(
                "SELECT (SELECT c.collname FROM pg_collation c, pg_type t WHERE c.oid = a.attcollation AND t.oid = a.atttypid AND a.attcollation <> t.typcollation) AS x FROM pg_attribute a"
            ),
            "SELECT (SELECT single_value(c.collname) FROM pg_collation c, pg_type t WHERE c.oid = a.attcollation AND t.oid = a.atttypid AND c.oid <> t.typcollation) AS x FROM pg_attribute a"
        );
        // An unqualified column may be the subquery's: left where it is.
        assert_eq!(
            rewrite("SELECT (SELECT d.x FROM d WHERE h AND d.id = a.id) AS x FROM a"),
            "SELECT (SELECT single_value(d.x) FROM d WHERE h AND d.id = a.id) AS x FROM a"
        );
    }

    #[test]
    fn a_subquery_over_an_always_empty_catalog_is_null() {
        assert_eq!(
            rewrite(
                "SELECT (SELECT json_build_object('a', a.x = 'a', 's', s.seqstart) FROM pg_catalog.pg_sequence s WHERE s.seqrelid = a.id) AS i FROM a"
            ),
            "SELECT NULL AS i FROM a"
        );
        assert_eq!(
            rewrite(
                "SELECT (SELECT s.seqstart FROM pg_catalog.pg_sequence s JOIN pg_catalog.pg_class c ON s.seqrelid = c.oid WHERE a.x <> '') AS i FROM a"
            ),
            "SELECT NULL AS i FROM a"
        );
        // Counting over it is 0, not NULL: left as it is.
        assert_eq!(
            rewrite("SELECT (SELECT count(*) FROM pg_sequence) AS n"),
            "SELECT (SELECT count(*) FROM pg_sequence) AS n"
        );
    }

    #[test]
    fn set_returning_functions_over_arrays_are_unnests() {
        assert_eq!(
            rewrite("SELECT unnest(i.indkey) AS k, generate_subscripts(i.indkey, 1) AS ord FROM pg_index i"),
            "SELECT unnest(i.indkey) AS k, unnest(range(1, CAST(cardinality(i.indkey) AS BIGINT) + 1)) AS ord FROM pg_index i"
        );
        assert_eq!(
            rewrite("SELECT ARRAY(SELECT a.x FROM a WHERE a.id = b.id) AS xs FROM b"),
            "SELECT (SELECT array_agg(a.x) FROM a WHERE a.id = b.id) AS xs FROM b"
        );
        // psql's \d+: the TOAST table's options, prefixed, from an unnest of the outer row's.
        assert_eq!(
            rewrite("SELECT array(select 'toast.' || x from pg_catalog.unnest(tc.reloptions) x) FROM pg_class tc"),
            r#"SELECT concat_each(tc.reloptions, 'toast.', '') AS "array" FROM pg_class tc"#
        );
        assert_eq!(
            rewrite("SELECT ARRAY(SELECT o.v || '!' FROM unnest(t.opts) AS o(v)) AS x FROM t"),
            "SELECT concat_each(t.opts, '', '!') AS x FROM t"
        );
        // Anything else over an unnest is left to DataFusion (and its error).
        assert_eq!(
            rewrite("SELECT ARRAY(SELECT upper(x) FROM unnest(t.opts) x) AS x FROM t"),
            "SELECT (SELECT array_agg(upper(x)) FROM UNNEST(t.opts) x) AS x FROM t"
        );
        // pgjdbc's getPrimaryKeys.
        assert_eq!(
            rewrite(
                "SELECT (information_schema._pg_expandarray(i.indkey)).n AS KEY_SEQ, information_schema._pg_expandarray(i.indkey) AS KEYS FROM pg_index i WHERE a = (result.KEYS).x"
            ),
            "SELECT get_field((unnest(_pg_expandarray(i.indkey))), 'n') AS KEY_SEQ, unnest(_pg_expandarray(i.indkey)) AS KEYS FROM pg_index i WHERE a = get_field((result.KEYS), 'x')"
        );
    }

    #[test]
    fn text_literals_compared_as_booleans_become_booleans() {
        let mut statement = Parser::parse_sql(
            &PostgreSqlDialect {},
            "SELECT 1 FROM ix WHERE ix.indisprimary = 'f' AND 't' <> b AND n = 'x'",
        )
        .unwrap()
        .remove(0);
        assert!(boolean_literals(&mut statement));
        assert_eq!(statement.to_string(), "SELECT 1 FROM ix WHERE ix.indisprimary = false AND true <> b AND n = 'x'");
    }

    #[test]
    fn regproc_literals_compared_with_function_name_columns_are_names() {
        let mut statement = Parser::parse_sql(
            &PostgreSqlDialect {},
            "SELECT typinput = 'pg_catalog.array_in'::regproc AS is_array FROM pg_type WHERE p.oid = 'x'::regproc",
        )
        .unwrap()
        .remove(0);
        assert!(regproc_names(&mut statement));
        assert_eq!(
            statement.to_string(),
            "SELECT typinput = 'array_in' AS is_array FROM pg_type WHERE p.oid = 'x'::regproc"
        );
    }

    #[test]
    fn current_database_is_the_client_s() {
        assert_eq!(
            rewrite("SELECT current_database(), current_catalog"),
            r#"SELECT 'debtlens' AS "current_database", 'debtlens' AS "current_catalog""#
        );
        assert_eq!(
            rewrite("SELECT datname FROM pg_database WHERE datname = current_database()"),
            "SELECT datname FROM pg_database WHERE datname = 'debtlens'"
        );
    }
}
