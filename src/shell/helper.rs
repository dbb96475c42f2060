//! The line editor's helper: tab completion of keywords, tables, views and columns, keyword
//! highlighting on a colour terminal, and multi-line statements that end at `;`.

use std::borrow::Cow;
use std::collections::BTreeMap;

use rustyline::completion::{Completer, FilenameCompleter, Pair};
use rustyline::highlight::{CmdKind, Highlighter};
use rustyline::hint::Hinter;
use rustyline::validate::{ValidationContext, ValidationResult, Validator};
use rustyline::{Context, Helper};

use super::commands::COMMANDS;
use crate::sql::{self, Kind, is_complete};

/// SQL keywords and the functions people reach for, offered by completion and highlighted.
pub const KEYWORDS: &[&str] = &[
    "SELECT",
    "FROM",
    "WHERE",
    "GROUP",
    "BY",
    "ORDER",
    "HAVING",
    "LIMIT",
    "OFFSET",
    "JOIN",
    "LEFT",
    "RIGHT",
    "FULL",
    "INNER",
    "OUTER",
    "CROSS",
    "ON",
    "USING",
    "AS",
    "AND",
    "OR",
    "NOT",
    "IN",
    "IS",
    "NULL",
    "LIKE",
    "ILIKE",
    "BETWEEN",
    "CASE",
    "WHEN",
    "THEN",
    "ELSE",
    "END",
    "DISTINCT",
    "UNION",
    "ALL",
    "INTERSECT",
    "EXCEPT",
    "WITH",
    "ASC",
    "DESC",
    "NULLS",
    "FIRST",
    "LAST",
    "EXPLAIN",
    "ANALYZE",
    "DESCRIBE",
    "SHOW",
    "TABLES",
    "COLUMNS",
    "TRUE",
    "FALSE",
    "CAST",
    "INTERVAL",
    "DATE",
    "TIMESTAMP",
    "OVER",
    "PARTITION",
    "FILTER",
    "EXISTS",
    "VALUES",
    "COUNT",
    "SUM",
    "AVG",
    "MIN",
    "MAX",
    "MEDIAN",
    "ROUND",
    "COALESCE",
    "NULLIF",
    "DATE_TRUNC",
    "PERCENTILE_CONT",
    "WITHIN",
    "ARRAY_HAS",
    "UNNEST",
    "WINDOW_START",
    "WINDOW_END",
    "WINDOW_DAYS",
];

/// Keywords after which a table name comes.
const BEFORE_TABLE: &[&str] = &["FROM", "JOIN", "TABLE", "DESCRIBE"];

/// The tables and views with their columns, read once when the shell starts.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    pub columns: BTreeMap<String, Vec<String>>,
}

impl Catalog {
    pub fn tables(&self) -> impl Iterator<Item = &str> {
        self.columns.keys().map(String::as_str)
    }
}

pub struct ShellHelper {
    pub catalog: Catalog,
    pub colour: bool,
    files: FilenameCompleter,
}

impl ShellHelper {
    pub fn new(catalog: Catalog, colour: bool) -> Self {
        Self { catalog, colour, files: FilenameCompleter::new() }
    }

    /// The candidates for the word that ends at `pos`, and where that word starts.
    pub fn candidates(&self, line: &str, pos: usize) -> (usize, Vec<String>) {
        let before = &line[..pos];
        let start = before
            .char_indices()
            .rev()
            .find(|(_, c)| !(c.is_alphanumeric() || *c == '_' || *c == '\\'))
            .map_or(0, |(i, c)| i + c.len_utf8());
        let word = &before[start..];
        let trimmed = line.trim_start();
        if trimmed.starts_with('\\') {
            if !before.trim_start().contains(char::is_whitespace) {
                return (start, prefixed(COMMANDS.iter().map(|(c, _, _)| c.to_string()), word));
            }
            if trimmed.starts_with("\\d ") {
                return (start, prefixed(self.catalog.tables().map(str::to_string), word));
            }
            if trimmed.starts_with("\\set ") {
                let settings = ["as_of", "window_days"].map(str::to_string);
                return (start, prefixed(settings.into_iter(), word));
            }
            return (start, vec![]);
        }
        let previous = before[..start]
            .split(|c: char| c.is_whitespace() || c == '(' || c == ',')
            .rfind(|t| !t.is_empty())
            .unwrap_or("")
            .to_ascii_uppercase();
        if BEFORE_TABLE.contains(&previous.as_str()) {
            return (start, prefixed(self.catalog.tables().map(str::to_string), word));
        }
        // Columns of the tables the statement names come first, then tables and keywords.
        let named: Vec<&str> = line
            .split(|c: char| !(c.is_alphanumeric() || c == '_'))
            .filter(|t| self.catalog.columns.contains_key(&t.to_ascii_lowercase()))
            .collect();
        let mut out: Vec<String> = Vec::new();
        for table in named {
            for column in &self.catalog.columns[&table.to_ascii_lowercase()] {
                if !out.contains(column) {
                    out.push(column.clone());
                }
            }
        }
        let lower = word.chars().all(|c| !c.is_ascii_uppercase()) && !word.is_empty();
        let keywords = KEYWORDS.iter().map(|k| if lower { k.to_ascii_lowercase() } else { k.to_string() });
        let mut rest: Vec<String> = self.catalog.tables().map(str::to_string).chain(keywords).collect();
        rest.retain(|c| !out.contains(c));
        out.extend(rest);
        (start, prefixed(out.into_iter(), word))
    }
}

/// The candidates that start with `word`, ignoring case, in their order.
fn prefixed(candidates: impl Iterator<Item = String>, word: &str) -> Vec<String> {
    let word = word.to_lowercase();
    let mut out: Vec<String> = Vec::new();
    for c in candidates {
        if c.to_lowercase().starts_with(&word) && !out.contains(&c) {
            out.push(c);
        }
    }
    out
}

impl Completer for ShellHelper {
    type Candidate = Pair;

    fn complete(&self, line: &str, pos: usize, ctx: &Context<'_>) -> rustyline::Result<(usize, Vec<Pair>)> {
        let trimmed = line.trim_start();
        if ["\\i ", "\\o ", "\\include ", "\\out "].iter().any(|p| trimmed.starts_with(p)) {
            return self.files.complete(line, pos, ctx);
        }
        let (start, candidates) = self.candidates(line, pos);
        Ok((start, candidates.into_iter().map(|c| Pair { display: c.clone(), replacement: c }).collect()))
    }
}

impl Hinter for ShellHelper {
    type Hint = String;
}

impl Validator for ShellHelper {
    /// A statement runs when it ends with `;`; a backslash command, `exit` or `quit` at once.
    fn validate(&self, ctx: &mut ValidationContext<'_>) -> rustyline::Result<ValidationResult> {
        let input = ctx.input().trim();
        let done =
            input.is_empty() || input.starts_with('\\') || matches!(input, "exit" | "quit") || is_complete(input);
        Ok(if done { ValidationResult::Valid(None) } else { ValidationResult::Incomplete })
    }
}

impl Highlighter for ShellHelper {
    fn highlight<'l>(&self, line: &'l str, _pos: usize) -> Cow<'l, str> {
        if !self.colour || line.trim_start().starts_with('\\') {
            return Cow::Borrowed(line);
        }
        Cow::Owned(highlight_sql(line))
    }

    fn highlight_prompt<'b, 's: 'b, 'p: 'b>(&'s self, prompt: &'p str, _default: bool) -> Cow<'b, str> {
        if self.colour { Cow::Owned(format!("\x1b[1m{prompt}\x1b[0m")) } else { Cow::Borrowed(prompt) }
    }

    fn highlight_char(&self, _line: &str, _pos: usize, kind: CmdKind) -> bool {
        self.colour && kind != CmdKind::MoveCursor
    }
}

impl Helper for ShellHelper {}

/// Keywords bold blue, strings green, comments grey, from the one SQL scanner, so a quote or
/// comment is coloured exactly where the parser will see one. A half-typed statement (an open
/// quote or comment) highlights as well as a whole one.
pub fn highlight_sql(line: &str) -> String {
    const KEYWORD: &str = "\x1b[1;34m";
    const STRING: &str = "\x1b[32m";
    const COMMENT: &str = "\x1b[90m";
    const RESET: &str = "\x1b[0m";
    let mut out = String::with_capacity(line.len() + 16);
    for piece in sql::scan(line) {
        let text = piece.text(line);
        let colour = match piece.kind {
            Kind::Keyword | Kind::Word if KEYWORDS.iter().any(|k| k.eq_ignore_ascii_case(text)) => Some(KEYWORD),
            Kind::String => Some(STRING),
            Kind::Comment => Some(COMMENT),
            Kind::Open if text.starts_with("/*") => Some(COMMENT),
            Kind::Open if text.starts_with('\'') => Some(STRING),
            _ => None,
        };
        match colour {
            // A line comment's newline stays outside the colour.
            Some(c) => match text.strip_suffix('\n') {
                Some(body) => {
                    out.push_str(c);
                    out.push_str(body);
                    out.push_str(RESET);
                    out.push('\n');
                }
                None => {
                    out.push_str(c);
                    out.push_str(text);
                    out.push_str(RESET);
                }
            },
            None => out.push_str(text),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn helper() -> ShellHelper {
        let mut catalog = Catalog::default();
        catalog.columns.insert("slowdown_by_system".into(), vec!["system".into(), "slowdown_ratio".into()]);
        catalog.columns.insert("features".into(), vec!["feature_id".into(), "systems".into()]);
        ShellHelper::new(catalog, false)
    }

    #[test]
    fn tables_after_from_and_join() {
        let h = helper();
        assert_eq!(h.candidates("SELECT * FROM slow", 18), (14, vec!["slowdown_by_system".to_string()]));
        assert_eq!(h.candidates("select * from f join sl", 23).1, vec!["slowdown_by_system".to_string()]);
        assert_eq!(h.candidates("\\d fea", 6).1, vec!["features".to_string()]);
    }

    #[test]
    fn columns_of_the_named_tables_then_keywords() {
        let h = helper();
        let line = "SELECT slow FROM slowdown_by_system";
        let (start, c) = h.candidates(line, 11);
        assert_eq!(start, 7);
        assert_eq!(c, vec!["slowdown_ratio".to_string(), "slowdown_by_system".to_string()]);
        let (_, c) = h.candidates("sel", 3);
        assert_eq!(c, vec!["select".to_string()], "keywords in the case typed");
        let (_, c) = h.candidates("\\ti", 3);
        assert_eq!(c, vec!["\\timing".to_string()]);
    }

    #[test]
    fn keywords_strings_and_comments_are_coloured() {
        let s = highlight_sql("select 'from' -- from\nFROM x");
        assert!(s.starts_with("\x1b[1;34mselect\x1b[0m"));
        assert!(s.contains("\x1b[32m'from'\x1b[0m"));
        assert!(s.contains("\x1b[90m-- from\x1b[0m"));
        assert!(s.ends_with("\x1b[1;34mFROM\x1b[0m x"));
        assert_eq!(highlight_sql("légacy_crm"), "légacy_crm");
        let block = highlight_sql("SELECT /* from */ 1");
        assert!(block.contains("\x1b[90m/* from */\x1b[0m"), "{block:?}");
        assert!(highlight_sql("SELECT 'open").ends_with("\x1b[32m'open\x1b[0m"));
    }
}
