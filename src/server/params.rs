//! A portal's parameters as PostgreSQL binds them. Drivers send most parameters as text and
//! many send no type at all (node-postgres, pgjdbc's `setDate`); arrow-pg's text decoding splits
//! arrays on every comma and reads timestamps with chrono's formats only. What it would misread
//! is read here: text arrays with PostgreSQL's quoting, escapes and NULL, timestamps in
//! PostgreSQL's input forms (`2025-06-01 +00`), and untyped values as PostgreSQL reads an
//! `unknown` literal. A value that cannot be read is an error, never a wrong answer.

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, TimeUnit};
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{DFSchema, ParamValues, Result as DfResult};
use datafusion::logical_expr::expr::Placeholder;
use datafusion::logical_expr::{Expr, ExprSchemable, LogicalPlan};
use datafusion::scalar::ScalarValue;
use datafusion_postgres::arrow_pg;
use datafusion_postgres::pgwire::api::Type;
use datafusion_postgres::pgwire::api::portal::Portal;
use datafusion_postgres::pgwire::error::{PgWireError, PgWireResult};

use super::DfStatement;
use super::guard::{pg_error, user_error};

/// Gives `x = ANY($1)` its parameter's type: the statement is planned as `array_has($1, x)`,
/// where DataFusion infers nothing, so drivers were told `unknown` or `text` and sent a list
/// (asyncpg refused it; a text `{a,b}` compared as one string). The parameter is an array of
/// `x`'s type, as PostgreSQL infers it.
pub fn type_array_parameters(plan: LogicalPlan) -> DfResult<LogicalPlan> {
    plan.transform_up_with_subqueries(|node| {
        let mut schema = DFSchema::empty();
        for input in node.inputs() {
            schema.merge(input.schema());
        }
        node.map_expressions(|e| {
            e.transform_up(|e| {
                let Expr::ScalarFunction(f) = &e else { return Ok(Transformed::no(e)) };
                let name = f.func.name();
                if !matches!(name, "array_has" | "array_contains") || f.args.len() != 2 {
                    return Ok(Transformed::no(e));
                }
                let Expr::Placeholder(Placeholder { id, field: None }) = &f.args[0] else {
                    return Ok(Transformed::no(e));
                };
                let Ok(element) = f.args[1].get_type(&schema) else { return Ok(Transformed::no(e)) };
                if matches!(element, DataType::Null) {
                    return Ok(Transformed::no(e));
                }
                let list = DataType::List(Arc::new(Field::new_list_field(element, true)));
                let mut f = f.clone();
                f.args[0] = Expr::Placeholder(Placeholder::new_with_field(
                    id.clone(),
                    Some(Arc::new(Field::new(id, list, true))),
                ));
                Ok(Transformed::yes(Expr::ScalarFunction(f)))
            })
        })
    })
    .map(|t| t.data)
}

/// How a parameter is read when arrow-pg would misread it.
#[derive(Debug, Clone, PartialEq)]
enum Own {
    /// No type from the client, the server or the plan: text, or a text array when written as one.
    Untyped,
    TextArray,
    /// A timestamp (or date) of the plan's type.
    Timestamp(DataType),
}

/// The bound parameters, typed by the client's hints, else the server's description, else the
/// types the plan infers; a binary value of no known type is refused (42P18), never guessed.
pub fn bind(portal: &Portal<DfStatement>, plan: &LogicalPlan, wire: &[Type]) -> PgWireResult<ParamValues> {
    let mut inferred: Vec<(String, Option<DataType>)> =
        plan.get_parameter_types().map_err(|e| pg_error(&e.into()))?.into_iter().collect();
    inferred.sort_by_key(|(id, _)| id.trim_start_matches('$').parse::<u32>().unwrap_or(u32::MAX));
    let inferred: Vec<Option<&DataType>> = inferred.iter().map(|(_, t)| t.as_ref()).collect();
    let own = |i: usize| -> Option<Own> {
        if portal.parameter_format.is_binary(i) && own_type(portal, wire, &inferred, i) != Some(Own::Untyped) {
            return None;
        }
        own_type(portal, wire, &inferred, i)
    };
    let wire_refs: Vec<_> = wire.iter().map(Some).collect();
    let n = portal.parameter_len();
    if !(0..n).any(|i| own(i).is_some()) {
        return arrow_pg::datatypes::df::deserialize_parameters_with_server_types(portal, &inferred, &wire_refs);
    }
    // arrow-pg is given only the parameters it reads well (it pushes nothing for an untyped NULL,
    // which would shift the ones after it): the others are read here, in their places.
    let mut values = Vec::with_capacity(n);
    let theirs = arrow_pg::datatypes::df::deserialize_parameters_with_server_types(portal, &inferred, &wire_refs);
    let mut theirs = match theirs {
        Ok(ParamValues::List(v)) => Some(v.into_iter()),
        _ => None,
    };
    for i in 0..n {
        let raw = portal.parameters.get(i).cloned().flatten();
        let Some(kind) = own(i) else {
            let value = theirs.as_mut().and_then(|t| t.next()).ok_or_else(|| missing_parameter(i))?;
            values.push(value);
            continue;
        };
        if (raw.is_some() || kind != Own::Untyped)
            && let Some(t) = theirs.as_mut()
        {
            t.next();
        }
        let value = match raw {
            None => null_of(&kind),
            Some(_) if portal.parameter_format.is_binary(i) => {
                return Err(user_error(
                    "42P18",
                    format!("could not determine data type of parameter ${}: give its type in Parse", i + 1),
                ));
            }
            Some(bytes) => {
                let text = std::str::from_utf8(&bytes)
                    .map_err(|_| user_error("22021", format!("parameter ${} is not valid UTF-8", i + 1)))?;
                read(&kind, text, i)?
            }
        };
        values.push(value.into());
    }
    Ok(ParamValues::List(values))
}

fn own_type(portal: &Portal<DfStatement>, wire: &[Type], inferred: &[Option<&DataType>], i: usize) -> Option<Own> {
    let hint = portal.statement.parameter_types.get(i).cloned().flatten().filter(|t| *t != Type::UNKNOWN);
    let server = wire.get(i).filter(|t| **t != Type::UNKNOWN).cloned();
    let planned = inferred.get(i).copied().flatten();
    let declared = hint.or(server);
    match (&declared, planned) {
        (None, None) => Some(Own::Untyped),
        (Some(t), _) if *t == Type::TEXT_ARRAY || *t == Type::VARCHAR_ARRAY => Some(Own::TextArray),
        (Some(t), Some(p)) if (*t == Type::TIMESTAMPTZ || *t == Type::TIMESTAMP || *t == Type::DATE) && is_time(p) => {
            Some(Own::Timestamp(p.clone()))
        }
        (None, Some(DataType::List(f))) if matches!(f.data_type(), DataType::Utf8 | DataType::Utf8View) => {
            Some(Own::TextArray)
        }
        (None, Some(p)) if is_time(p) => Some(Own::Timestamp(p.clone())),
        _ => None,
    }
}

fn is_time(t: &DataType) -> bool {
    matches!(t, DataType::Timestamp(..) | DataType::Date32)
}

fn null_of(kind: &Own) -> ScalarValue {
    match kind {
        Own::Untyped => ScalarValue::Utf8(None),
        Own::TextArray => ScalarValue::new_null_list(DataType::Utf8, true, 1),
        Own::Timestamp(t) => ScalarValue::try_from(t).unwrap_or(ScalarValue::Null),
    }
}

fn read(kind: &Own, text: &str, i: usize) -> PgWireResult<ScalarValue> {
    let malformed =
        |why: String| user_error("22P02", format!("malformed array literal in parameter ${}: {why}", i + 1));
    match kind {
        Own::Untyped => untyped_value(text).map_err(malformed),
        Own::TextArray => {
            let trimmed = text.trim();
            if !(trimmed.starts_with('{') && trimmed.ends_with('}')) {
                return Err(malformed(format!("`{text}` does not start with {{ and end with }}")));
            }
            let items: Vec<ScalarValue> =
                parse_text_array(trimmed).map_err(malformed)?.into_iter().map(ScalarValue::Utf8).collect();
            Ok(ScalarValue::List(ScalarValue::new_list_nullable(&items, &DataType::Utf8)))
        }
        Own::Timestamp(t) => {
            let at = crate::time::parse_pg_timestamp(text).ok_or_else(|| {
                user_error(
                    "22007",
                    format!(
                        "invalid input syntax for type timestamp with time zone in parameter ${}: \"{text}\"",
                        i + 1
                    ),
                )
            })?;
            let micros = ScalarValue::TimestampMicrosecond(Some(at.timestamp_micros()), Some("UTC".into()));
            match t {
                DataType::Timestamp(TimeUnit::Microsecond, Some(_)) => Ok(micros),
                other => micros.cast_to(other).map_err(|e| pg_error(&e.into())),
            }
        }
    }
}

fn missing_parameter(i: usize) -> PgWireError {
    user_error("08P01", format!("parameter ${} could not be bound", i + 1))
}

/// A parameter of no known type, from its text: a text array when written as one, else text.
fn untyped_value(text: &str) -> std::result::Result<ScalarValue, String> {
    let trimmed = text.trim();
    if !(trimmed.starts_with('{') && trimmed.ends_with('}')) {
        return Ok(ScalarValue::Utf8(Some(text.to_string())));
    }
    let items: Vec<ScalarValue> = parse_text_array(trimmed)?.into_iter().map(ScalarValue::Utf8).collect();
    Ok(ScalarValue::List(ScalarValue::new_list_nullable(&items, &DataType::Utf8)))
}

/// A one-dimensional PostgreSQL array literal (`{a,"b c","d\"e",NULL}`) as its elements.
fn parse_text_array(text: &str) -> std::result::Result<Vec<Option<String>>, String> {
    let inner = &text[1..text.len() - 1];
    let mut items = Vec::new();
    if inner.trim().is_empty() {
        return Ok(items);
    }
    let mut chars = inner.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let mut item = String::new();
        let quoted = chars.peek() == Some(&'"');
        if quoted {
            chars.next();
            loop {
                match chars.next() {
                    Some('\\') => item.push(chars.next().ok_or("a backslash ends the array")?),
                    Some('"') => break,
                    Some(c) => item.push(c),
                    None => return Err("an unclosed quote".into()),
                }
            }
            while chars.peek().is_some_and(|c| c.is_whitespace()) {
                chars.next();
            }
        } else {
            while let Some(&c) = chars.peek() {
                match c {
                    ',' => break,
                    '{' | '}' | '"' => return Err(format!("unexpected `{c}` (nested arrays are not supported)")),
                    '\\' => {
                        chars.next();
                        item.push(chars.next().ok_or("a backslash ends the array")?);
                    }
                    c => {
                        item.push(c);
                        chars.next();
                    }
                }
            }
            let end = item.trim_end().len();
            item.truncate(end);
            if item.is_empty() {
                return Err("an empty element".into());
            }
        }
        items.push(if !quoted && item.eq_ignore_ascii_case("null") { None } else { Some(item) });
        match chars.next() {
            Some(',') => continue,
            None => return Ok(items),
            Some(c) => return Err(format!("unexpected `{c}` after an element")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::parse_text_array;

    #[test]
    fn array_literals_read_as_postgresql_reads_them() {
        let some = |v: &[&str]| v.iter().map(|s| Some(s.to_string())).collect::<Vec<_>>();
        assert_eq!(parse_text_array(r#"{"platform","checkout"}"#).unwrap(), some(&["platform", "checkout"]));
        assert_eq!(parse_text_array("{a, b ,c}").unwrap(), some(&["a", "b", "c"]));
        assert_eq!(
            parse_text_array(r#"{"a,b","c\"d",NULL,"NULL"}"#).unwrap(),
            vec![Some("a,b".into()), Some("c\"d".into()), None, Some("NULL".into())]
        );
        assert_eq!(parse_text_array("{}").unwrap(), Vec::<Option<String>>::new());
        assert_eq!(parse_text_array(r#"{"café","日本"}"#).unwrap(), some(&["café", "日本"]));
        assert!(parse_text_array(r#"{"open}"#).is_err());
        assert!(parse_text_array("{{1,2},{3,4}}").is_err());
        assert!(parse_text_array("{a,,b}").is_err());
    }
}
