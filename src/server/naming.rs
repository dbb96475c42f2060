//! What PostgreSQL calls a query's columns and what `current_database()` answers, applied to a
//! client's statement before it is planned. BI tools show and key on the names a server gives:
//! PostgreSQL names an unnamed `count(*)` `count` and `1 + 1` `?column?`, where DataFusion says
//! `count(*)` and `Int64(1) + Int64(1)`.

use std::collections::HashSet;
use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    Expr, Ident, ObjectNamePart, Query, SelectItem, SetExpr, Statement, Value, VisitMut, VisitorMut,
};

/// Rewrites `statement` as PostgreSQL would read it for a client connected to `database`:
/// `current_database()` and `current_catalog` are that name, and the outer query's unnamed
/// columns get PostgreSQL's names (a function call its name, a cast its operand's name,
/// anything else `?column?`) where that name is not taken by another column of the list.
pub fn as_postgres(statement: &mut Statement, database: &str) {
    if let Statement::Query(query) = statement {
        name_columns(query);
    }
    let _ = statement.visit(&mut CurrentDatabase { database });
}

struct CurrentDatabase<'a> {
    database: &'a str,
}

impl VisitorMut for CurrentDatabase<'_> {
    type Break = ();

    fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
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
        as_postgres(&mut statement, "debtlens");
        statement.to_string()
    }

    #[test]
    fn unnamed_columns_get_postgresql_s_names() {
        assert_eq!(
            rewrite("SELECT count(*), 1, system, f.team, sum(x)::int, (max(y)) FROM f"),
            r#"SELECT count(*) AS "count", 1 AS "?column?", system, f.team, sum(x)::INT AS "sum", (max(y)) AS "max" FROM f"#
        );
        // A name already given is not given twice (DataFusion needs unique names).
        assert_eq!(rewrite("SELECT count(a), count(b) FROM f"), r#"SELECT count(a) AS "count", count(b) FROM f"#);
        assert_eq!(rewrite("SELECT 1 AS count, count(*) FROM f"), "SELECT 1 AS count, count(*) FROM f");
        assert_eq!(rewrite("SELECT 1 UNION SELECT 2"), r#"SELECT 1 AS "?column?" UNION SELECT 2"#);
        assert_eq!(
            rewrite("SELECT CASE WHEN a THEN 1 END FROM f"),
            r#"SELECT CASE WHEN a THEN 1 END AS "case" FROM f"#
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
