//! PostgreSQL's date/time templates (`to_char(t, 'YYYY-MM-DD HH24:MI:SS')`,
//! `to_timestamp(s, 'YYYY-MM-DD HH24:MI:SS.US')`) as the chrono formats DataFusion's functions
//! take. Given PostgreSQL's template, DataFusion's `to_char` returned the template's own text and
//! `to_timestamp` refused the input: BI tools (Superset's time filters, Grafana's macros) write
//! PostgreSQL's. A template that already has a `%` is a chrono format and is left alone; a
//! pattern chrono cannot produce is refused by name, never answered with something else.

/// The chrono format for PostgreSQL `template`, or why it cannot be given.
pub fn to_chrono(template: &str) -> Result<String, String> {
    // Longest first, so that `HH24` is not read as `HH` then `24`, `MS` before `M`...
    const PATTERNS: &[(&str, &str)] = &[
        ("HH24", "%H"),
        ("HH12", "%I"),
        ("HH", "%I"),
        ("MI", "%M"),
        ("SS", "%S"),
        ("MS", "%3f"),
        ("US", "%6f"),
        ("FF3", "%3f"),
        ("FF6", "%6f"),
        ("AM", "%p"),
        ("PM", "%p"),
        ("am", "%P"),
        ("pm", "%P"),
        ("YYYY", "%Y"),
        ("IYYY", "%G"),
        ("YY", "%y"),
        ("IW", "%V"),
        ("Month", "%B"),
        ("month", "%B"),
        ("Mon", "%b"),
        ("mon", "%b"),
        ("MM", "%m"),
        ("Day", "%A"),
        ("Dy", "%a"),
        ("DDD", "%j"),
        ("DD", "%d"),
        ("TZ", "%Z"),
        ("OF", "%:z"),
    ];
    // Patterns PostgreSQL has that chrono cannot give as PostgreSQL does (upper-case names,
    // Sunday-first day numbers, quarters, Julian days, ...).
    const REFUSED: &[&str] =
        &["MONTH", "MON", "DAY", "DY", "Q", "RM", "rm", "WW", "W", "J", "CC", "SSSS", "ID", "D", "FF"];
    let mut out = String::with_capacity(template.len() * 2);
    let mut rest = template;
    let mut fill_mode = false;
    while let Some(c) = rest.chars().next() {
        if let Some(after) = rest.strip_prefix("FM") {
            fill_mode = true;
            rest = after;
            continue;
        }
        if c == '"' {
            // Quoted text is copied as it is; a backslash escapes a quote.
            let mut chars = rest[1..].char_indices();
            let mut end = None;
            while let Some((i, ch)) = chars.next() {
                match ch {
                    '\\' => {
                        if let Some((_, next)) = chars.next() {
                            push_literal(&mut out, next);
                        }
                    }
                    '"' => {
                        end = Some(i + 2);
                        break;
                    }
                    ch => push_literal(&mut out, ch),
                }
            }
            rest = &rest[end.ok_or("the template has an unclosed double quote")?..];
            continue;
        }
        // Refused patterns that a shorter supported one would otherwise take a part of.
        for long in ["SSSS", "Y,YYY"] {
            if rest.starts_with(long) {
                return Err(format!("the template pattern `{long}` is not supported"));
            }
        }
        if rest.starts_with("YYY") && !rest.starts_with("YYYY") {
            return Err("the template pattern `YYY` is not supported".into());
        }
        if let Some((pattern, format)) = PATTERNS.iter().find(|(p, _)| rest.starts_with(p)) {
            // FM drops the padding of the number that follows (chrono's `-` flag).
            if fill_mode && matches!(*format, "%H" | "%I" | "%M" | "%S" | "%m" | "%d" | "%j" | "%V") {
                out.push_str(&format.replacen('%', "%-", 1));
            } else {
                out.push_str(format);
            }
            fill_mode = false;
            rest = &rest[pattern.len()..];
            continue;
        }
        if let Some(pattern) = REFUSED.iter().find(|p| rest.starts_with(*p)) {
            return Err(format!("the template pattern `{pattern}` is not supported"));
        }
        fill_mode = false;
        push_literal(&mut out, c);
        rest = &rest[c.len_utf8()..];
    }
    Ok(out)
}

fn push_literal(out: &mut String, c: char) {
    if c == '%' {
        out.push_str("%%");
    } else {
        out.push(c);
    }
}

/// Whether a template argument is PostgreSQL's (and not already a chrono format).
pub fn is_postgres_template(template: &str) -> bool {
    !template.contains('%')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_templates_bi_tools_send_become_chrono_formats() {
        // Superset's time filters and to_char, Grafana's $__timeGroup.
        assert_eq!(to_chrono("YYYY-MM-DD HH24:MI:SS.US").unwrap(), "%Y-%m-%d %H:%M:%S.%6f");
        assert_eq!(to_chrono("YYYY-MM-DD").unwrap(), "%Y-%m-%d");
        assert_eq!(to_chrono("YYYY-MM-DD\"T\"HH24:MI:SS.MSOF").unwrap(), "%Y-%m-%dT%H:%M:%S.%3f%:z");
        assert_eq!(to_chrono("FMDD Month YYYY, HH12:MI AM").unwrap(), "%-d %B %Y, %I:%M %p");
        assert_eq!(to_chrono("Dy DD Mon YY").unwrap(), "%a %d %b %y");
        assert_eq!(to_chrono("IYYY-\"W\"IW").unwrap(), "%G-W%V");
        assert_eq!(to_chrono("100% \"done\\\"\" DDD").unwrap(), "100%% done\" %j");
        assert_eq!(to_chrono("日付 YYYY年MM月").unwrap(), "日付 %Y年%m月");
        assert_eq!(to_chrono("").unwrap(), "");
    }

    #[test]
    fn patterns_chrono_cannot_give_are_refused_by_name() {
        assert!(to_chrono("YYYY-Q").unwrap_err().contains("`Q`"));
        assert!(to_chrono("MONTH").unwrap_err().contains("`MONTH`"));
        assert!(to_chrono("D").unwrap_err().contains("`D`"));
        assert!(to_chrono("HH24:MI:SSSS").unwrap_err().contains("`SSSS`"));
        assert!(to_chrono("YYY").unwrap_err().contains("`YYY`"));
        assert!(to_chrono("\"open").unwrap_err().contains("unclosed"));
        assert!(!is_postgres_template("%Y-%m-%d"));
        assert!(is_postgres_template("YYYY-MM-DD"));
    }
}
