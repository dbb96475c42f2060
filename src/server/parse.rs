//! How the server parses a client's SQL. datafusion-pg-catalog's parser rewrites statements so
//! that DataFusion can plan what PostgreSQL clients send (a table of known client queries, then
//! rules), and one of its rules, `RemoveSubqueryFromProjection`, replaces every correlated
//! scalar subquery in a SELECT list with NULL: `SELECT f.feature_id, (SELECT count(*) FROM
//! incidents i WHERE i.feature_id = f.feature_id) FROM features f` answered NULL for every
//! feature, with no error. debtlens parses with the same rules except that one (DataFusion
//! plans those subqueries; dialect.rs makes the catalog's plannable), and keeps the library's
//! result only where its table of known client queries replaced the statement.

use std::sync::Arc;

use datafusion::sql::sqlparser::ast::Statement;
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::parser::{Parser, ParserError};
use datafusion_postgres::datafusion_pg_catalog::sql::PostgresCompatibilityParser;
use datafusion_postgres::datafusion_pg_catalog::sql::rules::{
    AliasDuplicatedProjectionRewrite, CurrentUserVariableToSessionUserFunctionCall, FixArrayLiteral,
    FixVersionColumnName, PrependUnqualifiedPgTableName, ResolveUnqualifiedIdentifier, RewriteArrayAnyAllOperation,
    RewritePgCatalogOperator, RewriteRegCastToSubquery, SqlStatementRewriteRule, StripCallableQualifier, StripCollate,
};

pub struct SqlParser {
    library: PostgresCompatibilityParser,
    rules: Vec<Arc<dyn SqlStatementRewriteRule>>,
}

impl Default for SqlParser {
    fn default() -> Self {
        // The library's rules in its order, without RemoveSubqueryFromProjection.
        let rules: Vec<Arc<dyn SqlStatementRewriteRule>> = vec![
            Arc::new(AliasDuplicatedProjectionRewrite),
            Arc::new(ResolveUnqualifiedIdentifier),
            Arc::new(RewriteArrayAnyAllOperation),
            Arc::new(PrependUnqualifiedPgTableName),
            Arc::new(StripCallableQualifier),
            Arc::new(FixArrayLiteral),
            Arc::new(CurrentUserVariableToSessionUserFunctionCall),
            Arc::new(StripCollate),
            Arc::new(RewritePgCatalogOperator),
            Arc::new(RewriteRegCastToSubquery::new()),
            Arc::new(FixVersionColumnName),
        ];
        SqlParser { library: PostgresCompatibilityParser::new(), rules }
    }
}

impl SqlParser {
    pub fn parse(&self, sql: &str) -> Result<Vec<Statement>, ParserError> {
        let library = self.library.parse(sql)?;
        let Ok(mut raw) = Parser::parse_sql(&PostgreSqlDialect {}, sql) else { return Ok(library) };
        // Grafana's search-path subquery is answered here rather than by the library's table
        // (dialect.rs).
        let mut grafana = false;
        for statement in &mut raw {
            grafana |= super::dialect::search_path_subqueries(statement);
        }
        if grafana {
            return Ok(raw.into_iter().map(|s| self.rules.iter().fold(s, |s, rule| rule.rewrite(s))).collect());
        }
        // Where the library's table of client queries replaced something, its statements are
        // not the raw ones rewritten: they are kept.
        let replaced =
            raw.len() != library.len() || raw.iter().zip(&library).any(|(r, l)| &self.library.rewrite(r.clone()) != l);
        if replaced {
            return Ok(library);
        }
        for statement in &mut raw {
            super::dialect::regproc_names(statement);
            super::dialect::catalog_regclass_names(statement);
        }
        Ok(raw.into_iter().map(|s| self.rules.iter().fold(s, |s, rule| rule.rewrite(s))).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn correlated_subqueries_in_the_select_list_are_kept() {
        let sql = "SELECT f.feature_id, (SELECT count(*) FROM incidents i WHERE i.feature_id = f.feature_id) AS n FROM features f";
        let parsed = SqlParser::default().parse(sql).unwrap();
        assert!(parsed[0].to_string().contains("(SELECT count(*) FROM incidents"), "{}", parsed[0]);
        // The library's own parser drops it (the bug this module exists for).
        let library = PostgresCompatibilityParser::new().parse(sql).unwrap();
        assert!(!library[0].to_string().contains("(SELECT count(*)"), "{}", library[0]);
    }
}
