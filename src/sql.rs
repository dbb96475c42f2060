//! The one SQL scanner: sqlparser's tokenizer (the one DataFusion parses with) turned into
//! pieces of the original text with byte ranges. Statement splitting, the shell's "is this
//! statement complete?", identifiers (for window detection) and highlighting all read it, so
//! they agree on what is a quote, a comment or a `;`.

use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::tokenizer::{Token, TokenWithSpan, Tokenizer, Whitespace};

/// What a piece of SQL text is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A word the dialect knows as a keyword (`SELECT`, `FROM`, ...), unquoted.
    Keyword,
    /// An unquoted identifier (or a function name).
    Word,
    /// A quoted identifier (`"system"`).
    QuotedWord,
    /// A string literal, of any quoting.
    String,
    Number,
    /// `-- ...` or `/* ... */`.
    Comment,
    Space,
    /// A `;`.
    Semicolon,
    /// Any other operator or punctuation.
    Punct,
    /// A string, quoted identifier or block comment still open at the end of the text.
    Open,
}

/// One piece: its kind and where it is in the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Piece {
    pub kind: Kind,
    pub start: usize,
    pub end: usize,
}

impl Piece {
    pub fn text<'a>(&self, sql: &'a str) -> &'a str {
        &sql[self.start..self.end]
    }

    /// True for what is not a statement's text: spaces and comments.
    pub fn is_blank(&self) -> bool {
        matches!(self.kind, Kind::Space | Kind::Comment)
    }
}

/// Cuts `sql` into pieces that cover it whole, in order.
pub fn scan(sql: &str) -> Vec<Piece> {
    let dialect = GenericDialect {};
    let mut tokens: Vec<TokenWithSpan> = Vec::new();
    let failed = Tokenizer::new(&dialect, sql).tokenize_with_location_into_buf(&mut tokens).is_err();
    let offsets = Offsets::new(sql);
    let mut pieces = Vec::with_capacity(tokens.len() + 1);
    let mut at = 0;
    for t in &tokens {
        let start = offsets.byte(t.span.start.line, t.span.start.column).max(at);
        let end = offsets.byte(t.span.end.line, t.span.end.column).max(start);
        if start > at {
            // Text the tokenizer skipped (it never should): keep the cover whole.
            pieces.push(Piece { kind: Kind::Punct, start: at, end: start });
        }
        pieces.push(Piece { kind: kind_of(&t.token), start, end });
        at = end;
    }
    if at < sql.len() {
        // The tokenizer stopped here: an open quote or comment, or a character it refuses
        // (left to the parser, which says where).
        let rest = &sql[at..];
        let open = failed
            && (rest.starts_with('\'')
                || rest.starts_with('"')
                || rest.starts_with('`')
                || rest.starts_with("/*")
                || rest.starts_with('$')
                || rest.len() > 1
                    && rest[1..].starts_with('\'')
                    && rest.starts_with(['E', 'e', 'X', 'x', 'N', 'n', 'B', 'b']));
        pieces.push(Piece { kind: if open { Kind::Open } else { Kind::Punct }, start: at, end: sql.len() });
    }
    pieces
}

fn kind_of(token: &Token) -> Kind {
    match token {
        Token::Word(w) if w.quote_style.is_some() => Kind::QuotedWord,
        Token::Word(w) if w.keyword != Keyword::NoKeyword => Kind::Keyword,
        Token::Word(_) => Kind::Word,
        Token::Number(..) => Kind::Number,
        Token::SemiColon => Kind::Semicolon,
        Token::Whitespace(Whitespace::SingleLineComment { .. } | Whitespace::MultiLineComment(_)) => Kind::Comment,
        Token::Whitespace(_) => Kind::Space,
        Token::SingleQuotedString(_)
        | Token::DoubleQuotedString(_)
        | Token::TripleSingleQuotedString(_)
        | Token::TripleDoubleQuotedString(_)
        | Token::DollarQuotedString(_)
        | Token::SingleQuotedByteStringLiteral(_)
        | Token::DoubleQuotedByteStringLiteral(_)
        | Token::NationalStringLiteral(_)
        | Token::EscapedStringLiteral(_)
        | Token::UnicodeStringLiteral(_)
        | Token::HexStringLiteral(_) => Kind::String,
        _ => Kind::Punct,
    }
}

/// The byte offset of each (line, column) the tokenizer reports (both counted from 1, columns
/// in characters).
struct Offsets {
    /// The byte offset of every character, and one past the end.
    chars: Vec<usize>,
    /// The index in `chars` of each line's first character.
    lines: Vec<usize>,
}

impl Offsets {
    fn new(sql: &str) -> Self {
        let mut chars = Vec::with_capacity(sql.len() + 1);
        let mut lines = vec![0];
        for (i, c) in sql.char_indices() {
            chars.push(i);
            if c == '\n' {
                lines.push(chars.len());
            }
        }
        chars.push(sql.len());
        Self { chars, lines }
    }

    fn byte(&self, line: u64, column: u64) -> usize {
        let Some(&first) = self.lines.get((line.max(1) - 1) as usize) else { return *self.chars.last().unwrap_or(&0) };
        let index = first + (column.max(1) - 1) as usize;
        self.chars.get(index).copied().unwrap_or_else(|| *self.chars.last().unwrap_or(&0))
    }
}

/// Splits a script into statements at top-level semicolons (outside quotes and comments), with
/// the line each starts on (its first line that is not blank or a comment). Statements that are
/// only comments or blank are dropped.
pub fn split_statements(sql: &str) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    let mut current: Option<(usize, usize)> = None;
    for piece in scan(sql) {
        match piece.kind {
            Kind::Semicolon => {
                if let Some((start, end)) = current.take() {
                    out.push((line_of(sql, start), &sql[start..end]));
                }
            }
            _ if piece.is_blank() => {}
            _ => {
                let start = current.map_or(piece.start, |(s, _)| s);
                current = Some((start, piece.end));
            }
        }
    }
    if let Some((start, end)) = current {
        out.push((line_of(sql, start), &sql[start..end]));
    }
    out
}

fn line_of(sql: &str, offset: usize) -> usize {
    sql[..offset].matches('\n').count() + 1
}

/// True when `sql` ends its last statement with `;`: nothing but spaces and comments follow it,
/// and no quote or comment is left open. The shell reads lines until this holds.
pub fn is_complete(sql: &str) -> bool {
    let mut pending = false;
    for piece in scan(sql) {
        match piece.kind {
            Kind::Open => return false,
            Kind::Semicolon => pending = false,
            _ if piece.is_blank() => {}
            _ => pending = true,
        }
    }
    !pending
}

/// A statement scanned once: what a session asks of it before planning (is it a setting, how
/// deep are its expressions, does it read the window) comes from the same pieces.
pub struct Scanned<'a> {
    sql: &'a str,
    pieces: Vec<Piece>,
}

impl<'a> Scanned<'a> {
    pub fn new(sql: &'a str) -> Self {
        Self { sql, pieces: scan(sql) }
    }

    /// The identifiers (quoted ones without their quotes), outside comments and string
    /// literals, keywords included: `window_start` is not a keyword, but a view might be named
    /// like one some day.
    pub fn identifiers(&self) -> impl Iterator<Item = &'a str> + '_ {
        self.pieces.iter().filter_map(|p| match p.kind {
            Kind::Word | Kind::Keyword => Some(p.text(self.sql)),
            Kind::QuotedWord => {
                let t = p.text(self.sql);
                Some(t.get(1..t.len().saturating_sub(1)).unwrap_or(t))
            }
            _ => None,
        })
    }

    /// The first word of the first statement, upper-cased (`SELECT`, `SET`, `WITH`...).
    pub fn first_word(&self) -> Option<String> {
        self.pieces
            .iter()
            .find(|p| !p.is_blank())
            .filter(|p| matches!(p.kind, Kind::Keyword | Kind::Word))
            .map(|p| p.text(self.sql).to_ascii_uppercase())
    }

    /// Refuses a statement longer than `MAX_STATEMENT_BYTES`, or whose expressions chain more
    /// than `MAX_OPERATOR_CHAIN` operators.
    pub fn check_depth(&self) -> Result<(), String> {
        check_size(self.sql)?;
        match self.longest_operator_chain() {
            n if n > MAX_OPERATOR_CHAIN => Err(format!(
                "the statement is too deep to plan: an expression chains {n} operators (the limit is \
                 {MAX_OPERATOR_CHAIN}); split it, or use IN (...) for long lists of alternatives"
            )),
            _ => Ok(()),
        }
    }
}

/// The identifiers of SQL text: `Scanned::identifiers`.
pub fn identifiers(sql: &str) -> Vec<&str> {
    Scanned::new(sql).identifiers().collect()
}

/// The most binary operators one expression may chain at one level of parentheses. A chain of
/// N operators is a tree N deep, which DataFusion plans by recursion: 20,000 terms overflowed the
/// CLI's stack and 3,000 a server thread's (a crash for everyone connected). Parentheses nest at
/// most 50 deep already (sqlparser's limit).
pub const MAX_OPERATOR_CHAIN: usize = 1000;

/// The longest chain of binary operators (`+`, `||`, `AND`, `=`, ...) in one expression at one
/// level of parentheses: commas and clause keywords (`SELECT`, `FROM`, `WHEN`, ...) end a chain.
/// Counted on the scanner's tokens, without recursion, so that any text can be measured.
pub fn longest_operator_chain(sql: &str) -> usize {
    Scanned::new(sql).longest_operator_chain()
}

impl Scanned<'_> {
    /// See `longest_operator_chain`.
    pub fn longest_operator_chain(&self) -> usize {
        const CLAUSES: &[&str] = &[
            "SELECT",
            "FROM",
            "WHERE",
            "GROUP",
            "ORDER",
            "BY",
            "HAVING",
            "LIMIT",
            "OFFSET",
            "UNION",
            "INTERSECT",
            "EXCEPT",
            "JOIN",
            "ON",
            "USING",
            "CASE",
            "WHEN",
            "THEN",
            "ELSE",
            "END",
            "AS",
            "VALUES",
            "WITH",
            "OVER",
            "PARTITION",
            "WINDOW",
            "QUALIFY",
            "FILTER",
        ];
        let mut levels = vec![0usize];
        let mut longest = 0;
        for piece in &self.pieces {
            let text = piece.text(self.sql);
            match piece.kind {
                Kind::Punct if text == "(" || text == "[" => levels.push(0),
                Kind::Punct if (text == ")" || text == "]") && levels.len() > 1 => {
                    levels.pop();
                }
                Kind::Punct if text == ")" || text == "]" => {}
                Kind::Punct if text == "," || text == "." || text == "::" => *levels.last_mut().unwrap_or(&mut 0) = 0,
                Kind::Semicolon => levels = vec![0],
                Kind::Punct | Kind::Keyword | Kind::Word => {
                    let operator = piece.kind == Kind::Punct
                        || text.eq_ignore_ascii_case("AND")
                        || text.eq_ignore_ascii_case("OR");
                    let clause = piece.kind == Kind::Keyword && CLAUSES.iter().any(|c| c.eq_ignore_ascii_case(text));
                    if let Some(level) = levels.last_mut() {
                        if operator {
                            *level += 1;
                            longest = longest.max(*level);
                        } else if clause {
                            *level = 0;
                        }
                    }
                }
                _ => {}
            }
        }
        longest
    }
}

/// Refuses a statement longer than `MAX_STATEMENT_BYTES` (before reading it any further), or
/// whose expressions chain more than `MAX_OPERATOR_CHAIN` operators.
pub fn check_depth(sql: &str) -> Result<(), String> {
    check_size(sql)?;
    Scanned::new(sql).check_depth()
}

/// The longest statement text accepted: parsing and planning take many times the text's size
/// (six 50 MB statements on six connections held 1.7 GB of the server). A list of a hundred
/// thousand ids is about 1 MB.
pub const MAX_STATEMENT_BYTES: usize = 16 * 1024 * 1024;

fn check_size(sql: &str) -> Result<(), String> {
    if sql.len() > MAX_STATEMENT_BYTES {
        return Err(format!(
            "the statement is {:.1} MiB; the limit is {} MiB: put long lists of values in a table or a file",
            sql.len() as f64 / (1024.0 * 1024.0),
            MAX_STATEMENT_BYTES / (1024 * 1024)
        ));
    }
    Ok(())
}

/// The first word of the first statement, upper-cased (`SELECT`, `SET`, `WITH`...).
pub fn first_word(sql: &str) -> Option<String> {
    Scanned::new(sql).first_word()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_statement_over_the_size_limit_is_refused() {
        let long = format!("SELECT '{}'", "x".repeat(MAX_STATEMENT_BYTES));
        assert!(check_depth(&long).unwrap_err().contains("the limit is 16 MiB"));
        assert!(check_depth(&format!("SELECT '{}'", "x".repeat(1 << 20))).is_ok());
    }

    #[test]
    fn pieces_cover_the_text_whole() {
        for sql in ["SELECT 'a;b' AS \"x\" -- c\n/* d */ FROM t;", "légacy_crm ≠ 'é'", "SELECT 'open", "x /* open", ""]
        {
            let pieces = scan(sql);
            let joined: String = pieces.iter().map(|p| p.text(sql)).collect();
            assert_eq!(joined, sql);
        }
    }

    #[test]
    fn statements_split_at_top_level_semicolons_with_their_lines() {
        let script =
            "SELECT 1;\n\n-- a comment\nSELECT ';' AS x;\nSELECT 2 -- trailing; not a split\n;\n-- only a comment\n";
        let parts = split_statements(script);
        assert_eq!(parts.len(), 3, "{parts:?}");
        assert_eq!(parts[0], (1, "SELECT 1"));
        assert_eq!(parts[1], (4, "SELECT ';' AS x"));
        assert_eq!(parts[2], (5, "SELECT 2"));
    }

    #[test]
    fn block_comments_and_quoted_identifiers_hold_semicolons() {
        let parts = split_statements("SELECT 1 /* ; */ AS \"a;b\"; SELECT 2");
        assert_eq!(parts, vec![(1, "SELECT 1 /* ; */ AS \"a;b\""), (1, "SELECT 2")]);
    }

    #[test]
    fn a_statement_without_a_final_semicolon_counts() {
        assert_eq!(split_statements("SELECT 1"), vec![(1, "SELECT 1")]);
        assert!(split_statements("  ;; ").is_empty());
    }

    #[test]
    fn a_statement_is_complete_at_its_semicolon() {
        assert!(is_complete("SELECT 1;"));
        assert!(is_complete("SELECT 1;  -- done\n"));
        assert!(is_complete("SELECT 1; /* note */"));
        assert!(!is_complete("SELECT 1"));
        assert!(!is_complete("SELECT 1;\nSELECT 2"));
        assert!(!is_complete("SELECT ';"), "an open quote");
        assert!(!is_complete("SELECT \"a;"), "an open quoted identifier");
        assert!(!is_complete("SELECT 1 /* ; */"));
        assert!(!is_complete("SELECT 1; /* open"));
        assert!(is_complete("SELECT 'a;b' AS x;"));
        assert!(is_complete("SELECT 'it''s';"));
    }

    #[test]
    fn operator_chains_are_counted_per_level_of_parentheses() {
        assert_eq!(longest_operator_chain("SELECT 1 + 2 + 3"), 2);
        assert_eq!(longest_operator_chain("SELECT (1 + 2) * (3 + 4 + 5), a AND b"), 2);
        assert_eq!(longest_operator_chain("SELECT 'a+b+c+d' || x -- + + + +"), 1);
        assert_eq!(longest_operator_chain("SELECT CASE WHEN a = 1 THEN 2 WHEN a = 3 THEN 4 END"), 1);
        assert_eq!(longest_operator_chain("x IN (1, 2, 3, 4, 5)"), 0);
        assert_eq!(longest_operator_chain("a AND NOT b AND NOT c"), 2, "NOT does not end a chain");
        let long = format!("SELECT {}", vec!["1"; 1002].join("+"));
        assert_eq!(longest_operator_chain(&long), 1001);
        assert!(check_depth(&long).unwrap_err().contains("1001 operators"));
        assert!(check_depth(&format!("SELECT {}", vec!["1"; 1001].join("+"))).is_ok());
    }

    #[test]
    fn identifiers_skip_strings_and_comments() {
        let ids =
            identifiers("SELECT 'slowdown_by_system' -- window_features\n/* delay_by_system */ FROM \"Features\"");
        assert_eq!(ids, vec!["SELECT", "FROM", "Features"]);
        assert_eq!(first_word("  -- hi\n set debtlens.as_of = 1").as_deref(), Some("SET"));
    }

    mod properties {
        use proptest::prelude::*;

        use super::super::*;

        /// A piece of one statement: words, numbers, operators, and strings, quoted identifiers
        /// and comments that may hold `;`, quotes of the other kind and newlines.
        fn piece() -> impl Strategy<Value = String> {
            prop_oneof![
                "[a-z_][a-z0-9_]{0,8}",
                "[0-9]{1,4}(\\.[0-9]{1,2})?",
                prop::sample::select(vec!["=", "<>", "(", ")", ",", "+", "*", "::", "."]).prop_map(String::from),
                "[a-z ;\"-]{0,6}".prop_map(|t| format!("'{t}'")),
                "[a-z ;']{0,6}".prop_map(|t| format!("\"{t}\"")),
                "[a-z ;'\"*]{0,8}".prop_map(|t| format!("-- {t}\n")),
                "[a-z ;'\"-]{0,8}".prop_map(|t| format!("/* {t} */")),
                "[a-zé€ ;]{0,5}".prop_map(|t| format!("'{}'", t.replace('\'', "''"))),
            ]
        }

        /// A statement: a keyword first, then pieces, ending in something that is not a comment.
        fn statement() -> impl Strategy<Value = String> {
            (prop::collection::vec(piece(), 0..8), "[a-z]{1,5}").prop_map(|(pieces, last)| {
                let mut s = String::from("SELECT");
                for p in pieces {
                    s.push(' ');
                    s.push_str(&p);
                }
                s.push(' ');
                s.push_str(&last);
                s
            })
        }

        proptest! {
            #[test]
            fn splitting_joined_statements_gives_them_back(
                statements in prop::collection::vec(statement(), 1..6),
                separator in prop::sample::select(vec![";", ";\n", " ;\n\n", ";-- done\n", "; /* next */ "]),
            ) {
                let script = statements.join(separator);
                let parts: Vec<&str> = split_statements(&script).into_iter().map(|(_, s)| s).collect();
                prop_assert_eq!(parts, statements.iter().map(String::as_str).collect::<Vec<_>>());
            }

            #[test]
            fn a_statement_is_complete_with_its_semicolon_and_not_before(
                s in statement(),
                tail in prop::sample::select(vec!["", " ", " -- end", " /* end */", "\n"]),
            ) {
                prop_assert!(!is_complete(&s), "{s:?} has no `;` yet");
                let ended = format!("{s};{tail}");
                prop_assert!(is_complete(&ended), "{ended:?}");
            }

            #[test]
            fn an_open_quote_or_comment_is_never_complete(
                s in statement(),
                opener in prop::sample::select(vec!["'", "\"", "/*"]),
                rest in "[a-z ;]{0,8}",
            ) {
                let open = format!("{s} {opener}{rest};");
                prop_assert!(!is_complete(&open), "{open:?}");
            }

            #[test]
            fn any_text_is_covered_whole_and_never_panics(text in "\\PC{0,64}") {
                let joined: String = scan(&text).iter().map(|p| p.text(&text)).collect();
                prop_assert_eq!(joined, text.clone());
                let _ = split_statements(&text);
                let _ = is_complete(&text);
                let _ = identifiers(&text);
            }
        }
    }
}
