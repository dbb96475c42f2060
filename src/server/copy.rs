//! `COPY (query) TO STDOUT` and `COPY table TO STDOUT`, in text, CSV or binary: how psql's
//! `\copy ... TO 'file'`, psycopg's `cursor.copy()` and pgjdbc's CopyManager export a result. It
//! only reads: the query is planned by the read-only guard, and the rows go out as CopyData as
//! they are produced. COPY FROM and COPY to a server file or program stay refused.

use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::sql::sqlparser::ast::{
    CopyLegacyCsvOption, CopyLegacyOption, CopyOption, CopySource, CopyTarget, Ident, ObjectName, Statement,
};
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::parser::Parser;
use datafusion_postgres::arrow_pg::datatypes::arrow_schema_to_pg_fields;
use datafusion_postgres::arrow_pg::encoder::encode_value;
use datafusion_postgres::pgwire::api::portal::Format;
use datafusion_postgres::pgwire::api::results::{
    CopyCsvOptions, CopyEncoder, CopyResponse, CopyTextOptions, FieldInfo,
};
use datafusion_postgres::pgwire::error::PgWireResult;
use datafusion_postgres::pgwire::messages::copy::CopyData;
use futures::{StreamExt, stream};

use super::guard::user_error;

/// How the rows are written.
#[derive(Debug, Clone, PartialEq)]
pub enum CopyFormat {
    Text { delimiter: char, null: String },
    Csv { delimiter: char, null: String, quote: char, escape: char, header: bool },
    Binary,
}

/// A COPY that exports: the query whose rows go out, and how.
#[derive(Debug, Clone)]
pub struct CopyOut {
    pub query: Statement,
    pub format: CopyFormat,
}

fn unsupported(what: String) -> datafusion_postgres::pgwire::error::PgWireError {
    user_error("0A000", what)
}

/// `Some` for a COPY statement: the export it asks for, or the reason it is refused; `None` for
/// anything else.
pub fn copy_out(statement: &Statement) -> Option<PgWireResult<CopyOut>> {
    let Statement::Copy { source, to, target, options, legacy_options, .. } = statement else { return None };
    Some(read(source, *to, target, options, legacy_options))
}

fn read(
    source: &CopySource,
    to: bool,
    target: &CopyTarget,
    options: &[CopyOption],
    legacy: &[CopyLegacyOption],
) -> PgWireResult<CopyOut> {
    if !to {
        return Err(user_error(
            "25006",
            "debtlens serves read-only: COPY FROM is not allowed; load data with `debtlens ingest`".into(),
        ));
    }
    if *target != CopyTarget::Stdout {
        return Err(user_error(
            "42501",
            "COPY to a server file or program is not allowed; COPY ... TO STDOUT (psql's \\copy) writes on the client"
                .into(),
        ));
    }
    let query = match source {
        CopySource::Query(query) => Statement::Query(query.clone()),
        CopySource::Table { table_name, columns } => select_from(table_name, columns)?,
    };
    let (mut kind, mut delimiter, mut null, mut header, mut quote, mut escape) =
        ("text".to_string(), None, None, false, '"', None);
    for option in options {
        match option {
            CopyOption::Format(name) => kind = name.value.to_lowercase(),
            CopyOption::Delimiter(c) => delimiter = Some(*c),
            CopyOption::Null(s) => null = Some(s.clone()),
            CopyOption::Header(h) => header = *h,
            CopyOption::Quote(c) => quote = *c,
            CopyOption::Escape(c) => escape = Some(*c),
            CopyOption::Encoding(e) if e.eq_ignore_ascii_case("utf8") || e.eq_ignore_ascii_case("utf-8") => {}
            other => return Err(unsupported(format!("COPY option {other} is not supported"))),
        }
    }
    for option in legacy {
        match option {
            CopyLegacyOption::Binary => kind = "binary".into(),
            CopyLegacyOption::Delimiter(c) => delimiter = Some(*c),
            CopyLegacyOption::Null(s) => null = Some(s.clone()),
            CopyLegacyOption::Header => header = true,
            CopyLegacyOption::Csv(csv) => {
                kind = "csv".into();
                for o in csv {
                    match o {
                        CopyLegacyCsvOption::Header => header = true,
                        CopyLegacyCsvOption::Quote(c) => quote = *c,
                        CopyLegacyCsvOption::Escape(c) => escape = Some(*c),
                        other => return Err(unsupported(format!("COPY option {other} is not supported"))),
                    }
                }
            }
            other => return Err(unsupported(format!("COPY option {other} is not supported"))),
        }
    }
    let format = match kind.as_str() {
        "text" if header => return Err(unsupported("COPY HEADER is available in CSV mode only".into())),
        "text" => CopyFormat::Text { delimiter: delimiter.unwrap_or('\t'), null: null.unwrap_or_else(|| "\\N".into()) },
        "csv" => CopyFormat::Csv {
            delimiter: delimiter.unwrap_or(','),
            null: null.unwrap_or_default(),
            quote,
            escape: escape.unwrap_or(quote),
            header,
        },
        "binary" => CopyFormat::Binary,
        other => return Err(unsupported(format!("COPY format \"{other}\" not recognized"))),
    };
    Ok(CopyOut { query, format })
}

/// `SELECT columns FROM table` (every column when none is named), from the names as the COPY
/// wrote them.
fn select_from(table: &ObjectName, columns: &[Ident]) -> PgWireResult<Statement> {
    let columns = if columns.is_empty() {
        "*".to_string()
    } else {
        columns.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
    };
    let sql = format!("SELECT {columns} FROM {table}");
    let mut statements =
        Parser::parse_sql(&PostgreSqlDialect {}, &sql).map_err(|e| user_error("42601", e.to_string()))?;
    statements.pop().ok_or_else(|| user_error("42601", "an empty COPY".into()))
}

/// The CopyOutResponse of `batches`: one CopyData a row, as the batches arrive (`next` gives
/// each batch, or the error that ends the copy).
pub fn response(
    format: &CopyFormat,
    schema: &datafusion::arrow::datatypes::Schema,
    batches: impl futures::Stream<Item = PgWireResult<RecordBatch>> + Send + 'static,
) -> PgWireResult<CopyResponse> {
    let wire_format = if *format == CopyFormat::Binary { Format::UnifiedBinary } else { Format::UnifiedText };
    let fields: Arc<Vec<FieldInfo>> = Arc::new(arrow_schema_to_pg_fields(schema, &wire_format, None)?);
    let columns = fields.len();
    let (code, mut encoder) = match format {
        CopyFormat::Binary => (1, CopyEncoder::new_binary(fields.clone())),
        CopyFormat::Text { delimiter, null } => (
            0,
            CopyEncoder::new_text(
                fields.clone(),
                CopyTextOptions { delimiter: delimiter.to_string().into(), null_string: null.as_str().into() },
            ),
        ),
        CopyFormat::Csv { delimiter, null, quote, escape, .. } => (
            0,
            CopyEncoder::new_csv(
                fields.clone(),
                CopyCsvOptions {
                    delimiter: delimiter.to_string().into(),
                    quote: quote.to_string().into(),
                    escape: escape.to_string().into(),
                    null_string: null.as_str().into(),
                    force_quote: vec![],
                },
            ),
        ),
    };
    let header = match format {
        CopyFormat::Csv { header: true, delimiter, quote, .. } => {
            let names: Vec<String> = schema
                .fields()
                .iter()
                .map(|f| {
                    let name = f.name();
                    if name.contains([*delimiter, *quote, '\n', '\r']) {
                        format!("{quote}{}{quote}", name.replace(*quote, &format!("{quote}{quote}")))
                    } else {
                        name.clone()
                    }
                })
                .collect();
            Some(CopyData::new(format!("{}\n", names.join(&delimiter.to_string())).into_bytes().into()))
        }
        _ => None,
    };
    let arrow_fields = schema.fields().clone();
    let binary = *format == CopyFormat::Binary;
    // The CSV header, or a binary copy's signature, goes out with the first row (the encoder
    // writes the binary one there already), so the row count in `COPY n` is the rows'; with no
    // rows it goes out alone (and counts as one, pgwire's count).
    let lead = header.map(|h| h.data).or_else(|| binary.then(|| bytes::Bytes::from_static(BINARY_HEADER)));
    let pending = Arc::new(std::sync::Mutex::new(lead));
    let leftover = pending.clone();
    let rows = batches
        .map(move |batch| -> Vec<PgWireResult<CopyData>> {
            let batch = match batch {
                Ok(batch) => batch,
                Err(e) => return vec![Err(e)],
            };
            let mut out = Vec::with_capacity(batch.num_rows());
            for row in 0..batch.num_rows() {
                for (c, column) in batch.columns().iter().enumerate() {
                    if let Err(e) = encode_value(&mut encoder, column, row, &arrow_fields[c], &fields[c]) {
                        out.push(Err(e));
                        return out;
                    }
                }
                let data = encoder.take_copy();
                let lead = pending.lock().unwrap_or_else(|e| e.into_inner()).take();
                out.push(Ok(match lead {
                    // The encoder put the binary signature before the first row itself.
                    Some(_) if binary => data,
                    Some(lead) => CopyData::new([lead, data.data].concat().into()),
                    None => data,
                }));
            }
            out
        })
        .flat_map(stream::iter);
    let alone =
        stream::once(
            async move { leftover.lock().unwrap_or_else(|e| e.into_inner()).take().map(|b| Ok(CopyData::new(b))) },
        )
        .filter_map(|lead| async move { lead });
    let data = rows.chain(alone);
    Ok(CopyResponse::new(code, columns, data))
}

/// PGCOPY's signature, flags (no OIDs) and header extension length.
const BINARY_HEADER: &[u8] = b"PGCOPY\n\xff\r\n\x00\x00\x00\x00\x00\x00\x00\x00\x00";
