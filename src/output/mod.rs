//! Writers for query results over any `io::Write`: a table for people, CSV, TSV, JSON, NDJSON
//! and Markdown for other tools, Parquet and Arrow IPC files that keep the real types. Every
//! surface hands its batches here; none formats rows itself.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, Float64Array, RecordBatch, StringArray, StringBuilder};
use datafusion::arrow::compute::kernels::cast;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::ipc::writer::FileWriter;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::arrow::util::pretty::pretty_format_batches_with_options;
use datafusion::arrow::{csv, json};
use datafusion::execution::SendableRecordBatchStream;
use datafusion::parquet::arrow::ArrowWriter;
use futures::TryStreamExt;

use crate::error::Result;

mod destination;
mod file;

pub use destination::{Destination, PipeWatch, terminal_width};
pub use file::{AtomicFile, write_file_atomically, write_stream_to_file};

/// An output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// An aligned table for the terminal.
    Table,
    /// RFC 4180 CSV with a header row.
    Csv,
    /// Tab-separated values with a header row.
    Tsv,
    /// One JSON array of objects.
    Json,
    /// One JSON object per line.
    Ndjson,
    /// A GitHub-flavoured Markdown table.
    Markdown,
    /// An HTML table (for `report`: a self-contained page).
    Html,
    /// A Parquet file (binary: use --output or a pipe).
    Parquet,
    /// An Arrow IPC file (binary: use --output or a pipe).
    Arrow,
}

impl Format {
    /// Binary formats are not written to a terminal.
    pub fn is_binary(self) -> bool {
        matches!(self, Format::Parquet | Format::Arrow)
    }

    /// The format an output file's extension implies, if any.
    pub fn from_extension(path: &Path) -> Option<Format> {
        match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
            "csv" => Some(Format::Csv),
            "tsv" => Some(Format::Tsv),
            "json" => Some(Format::Json),
            "ndjson" | "jsonl" => Some(Format::Ndjson),
            "md" | "markdown" => Some(Format::Markdown),
            "html" | "htm" => Some(Format::Html),
            "parquet" => Some(Format::Parquet),
            "arrow" | "ipc" | "feather" => Some(Format::Arrow),
            _ => None,
        }
    }
}

/// Options of the human-readable formats.
#[derive(Debug, Clone, Copy, Default)]
pub struct WriteOptions {
    /// Table output shows at most this many rows (`None`: all). Never applies to other formats.
    pub max_rows: Option<usize>,
    /// Table output fits this many columns of text (a terminal's width), cutting long cells
    /// with an ellipsis. Never applies to other formats, which keep every value whole.
    pub max_width: Option<usize>,
}

/// Writes a whole result in `format`. Returns the number of rows shown.
pub fn write<W: Write + Send>(
    format: Format,
    schema: &SchemaRef,
    batches: &[RecordBatch],
    out: &mut W,
    options: WriteOptions,
) -> Result<usize> {
    let mut writer = ResultWriter::new(format, schema, out, options)?;
    for batch in batches {
        writer.write(batch)?;
    }
    Ok(writer.finish()?.shown)
}

/// Writes every batch of `stream` to `out` as it comes.
pub async fn write_stream<W: Write + Send>(
    format: Format,
    schema: SchemaRef,
    mut stream: SendableRecordBatchStream,
    out: &mut W,
    options: WriteOptions,
) -> Result<Written> {
    let mut writer = ResultWriter::new(format, &schema, out, options)?;
    while let Some(batch) = stream.try_next().await? {
        writer.write(&batch)?;
    }
    writer.finish()
}

/// What a `ResultWriter` wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Written {
    /// Rows in the output (fewer than `total` only for a table cut at `max_rows`).
    pub shown: usize,
    /// Rows handed to the writer.
    pub total: usize,
}

/// Writes a result batch by batch as it arrives, so that a large result never sits in memory
/// whole: CSV, TSV, JSON, NDJSON, Parquet and Arrow go out as they come. The formats for people
/// need every row before the first line (column widths, one table) and keep what they show: a
/// table at most `max_rows` rows, Markdown and HTML all of them.
pub struct ResultWriter<'a, W: Write + Send> {
    schema: SchemaRef,
    options: WriteOptions,
    total: usize,
    sink: Sink<'a, W>,
}

enum Sink<'a, W: Write + Send> {
    /// The output, the delimiter, and whether the header is out.
    Csv(&'a mut W, u8, bool),
    Json(json::Writer<&'a mut W, json::writer::JsonArray>),
    Ndjson(json::Writer<&'a mut W, json::writer::LineDelimited>),
    Parquet(ArrowWriter<&'a mut W>),
    Arrow(FileWriter<&'a mut W>),
    /// Table, Markdown or HTML: the rows kept until `finish`.
    Kept(Format, &'a mut W, Vec<RecordBatch>),
}

impl<'a, W: Write + Send> ResultWriter<'a, W> {
    pub fn new(format: Format, schema: &SchemaRef, out: &'a mut W, options: WriteOptions) -> Result<Self> {
        let sink = match format {
            Format::Csv | Format::Tsv => {
                let delimiter = if format == Format::Csv { b',' } else { b'\t' };
                Sink::Csv(out, delimiter, false)
            }
            Format::Json => Sink::Json(
                json::WriterBuilder::new().with_explicit_nulls(true).build::<_, json::writer::JsonArray>(out),
            ),
            Format::Ndjson => Sink::Ndjson(
                json::WriterBuilder::new().with_explicit_nulls(true).build::<_, json::writer::LineDelimited>(out),
            ),
            Format::Parquet => Sink::Parquet(ArrowWriter::try_new(out, Arc::clone(schema), None)?),
            Format::Arrow => Sink::Arrow(FileWriter::try_new(out, schema)?),
            Format::Table | Format::Markdown | Format::Html => Sink::Kept(format, out, Vec::new()),
        };
        Ok(Self { schema: Arc::clone(schema), options, total: 0, sink })
    }

    /// Writes (or keeps) one batch.
    pub fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        let shown_before = self.total;
        self.total += batch.num_rows();
        match &mut self.sink {
            Sink::Csv(out, delimiter, header_out) => {
                for flat in flatten_lists(&self.schema, std::slice::from_ref(batch))? {
                    csv_writer(out, *delimiter, !*header_out).write(&flat)?;
                    *header_out = true;
                }
            }
            Sink::Json(writer) => writer.write(batch)?,
            Sink::Ndjson(writer) => writer.write(batch)?,
            Sink::Parquet(writer) => writer.write(batch)?,
            Sink::Arrow(writer) => writer.write(batch)?,
            Sink::Kept(Format::Table, _, kept) => {
                let left = self.options.max_rows.unwrap_or(usize::MAX).saturating_sub(shown_before);
                if left > 0 && batch.num_rows() > 0 {
                    kept.push(batch.slice(0, batch.num_rows().min(left)));
                }
            }
            Sink::Kept(_, _, kept) => kept.push(batch.clone()),
        }
        Ok(())
    }

    /// Ends the output (footers, the Parquet and Arrow metadata) and flushes it.
    pub fn finish(self) -> Result<Written> {
        let total = self.total;
        let mut shown = total;
        let out = match self.sink {
            Sink::Csv(out, delimiter, header_out) => {
                if !header_out {
                    // The header alone, so that an empty result is still a valid CSV with its columns.
                    csv_writer(out, delimiter, true).write(&RecordBatch::new_empty(flat_schema(&self.schema)))?;
                }
                out
            }
            Sink::Json(mut writer) => {
                writer.finish()?;
                let out = writer.into_inner();
                out.write_all(b"\n")?;
                out
            }
            Sink::Ndjson(mut writer) => {
                writer.finish()?;
                writer.into_inner()
            }
            Sink::Parquet(writer) => writer.into_inner()?,
            Sink::Arrow(writer) => writer.into_inner()?,
            Sink::Kept(format, out, kept) => {
                match format {
                    Format::Table => shown = write_table(&self.schema, &kept, out, self.options)?,
                    Format::Markdown => write_markdown(&self.schema, &kept, out)?,
                    _ => write_html(&self.schema, &kept, out)?,
                }
                out
            }
        };
        out.flush()?;
        Ok(Written { shown, total })
    }
}

/// A CSV writer for one batch: the header only on the first.
fn csv_writer<W: Write>(out: &mut W, delimiter: u8, header: bool) -> csv::Writer<&mut W> {
    csv::WriterBuilder::new().with_header(header).with_delimiter(delimiter).build(out)
}

/// A size for people: `812 B`, `14.2 KiB`, `3.1 MiB`.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// The number formats people read: at most four decimals, no trailing zeros.
fn round_floats(batch: &RecordBatch) -> Result<RecordBatch> {
    let columns = batch
        .columns()
        .iter()
        .map(|c| match c.data_type() {
            DataType::Float64 | DataType::Float32 => {
                let values = cast::cast(c, &DataType::Float64)?;
                let rounded: Float64Array = values
                    .as_primitive::<datafusion::arrow::datatypes::Float64Type>()
                    .unary(|x| (x * 1e4).round() / 1e4);
                Ok(Arc::new(rounded) as ArrayRef)
            }
            _ => Ok(Arc::clone(c)),
        })
        .collect::<Result<Vec<_>>>()?;
    let fields: Vec<Field> = batch
        .schema()
        .fields()
        .iter()
        .map(|f| match f.data_type() {
            DataType::Float32 => f.as_ref().clone().with_data_type(DataType::Float64),
            _ => f.as_ref().clone(),
        })
        .collect();
    Ok(RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)?)
}

fn write_table<W: Write>(
    schema: &SchemaRef,
    batches: &[RecordBatch],
    out: &mut W,
    options: WriteOptions,
) -> Result<usize> {
    let mut shown = Vec::new();
    let mut left = options.max_rows.unwrap_or(usize::MAX);
    for batch in batches {
        if left == 0 {
            break;
        }
        let take = batch.num_rows().min(left);
        shown.push(round_floats(&batch.slice(0, take))?);
        left -= take;
    }
    if shown.is_empty() {
        shown.push(RecordBatch::new_empty(Arc::clone(schema)));
    }
    let rows = shown.iter().map(|b| b.num_rows()).sum();
    let format = FormatOptions::default().with_null("NULL").with_types_info(false);
    if let Some(width) = options.max_width {
        shown = fit_to_width(&shown, width, &format)?;
    }
    let table = pretty_format_batches_with_options(&shown, &format)?;
    writeln!(out, "{table}")?;
    out.flush()?;
    Ok(rows)
}

/// The batches as text cut to fit `width` columns: the widest columns give up space first,
/// and a cut cell ends with `…`.
fn fit_to_width(batches: &[RecordBatch], width: usize, format: &FormatOptions) -> Result<Vec<RecordBatch>> {
    let Some(first) = batches.first() else { return Ok(vec![]) };
    let schema = first.schema();
    let n = schema.fields().len();
    let mut cells: Vec<Vec<String>> = vec![Vec::new(); n];
    for batch in batches {
        for (i, column) in batch.columns().iter().enumerate() {
            let f = ArrayFormatter::try_new(column.as_ref(), format)?;
            cells[i].extend((0..batch.num_rows()).map(|r| f.value(r).to_string().replace('\n', " ")));
        }
    }
    let len = |s: &str| s.chars().count();
    let mut widths: Vec<usize> = schema
        .fields()
        .iter()
        .zip(&cells)
        .map(|(f, c)| c.iter().map(|s| len(s)).chain([len(f.name())]).max().unwrap_or(1))
        .collect();
    // Borders and padding: "| " + " | " between columns + " |".
    let budget = width.saturating_sub(3 * n + 1).max(4 * n);
    if widths.iter().sum::<usize>() <= budget {
        return Ok(batches.to_vec());
    }
    while widths.iter().sum::<usize>() > budget {
        let (widest, w) = widths.iter().copied().enumerate().max_by_key(|(_, w)| *w).expect("a column");
        if w <= 4 {
            break;
        }
        widths[widest] -= 1;
    }
    let cut = |s: &str, w: usize| {
        if len(s) <= w { s.to_string() } else { s.chars().take(w.saturating_sub(1)).chain(['…']).collect() }
    };
    let fields: Vec<Field> =
        schema.fields().iter().zip(&widths).map(|(f, w)| Field::new(cut(f.name(), *w), DataType::Utf8, true)).collect();
    let columns: Vec<ArrayRef> = cells
        .iter()
        .zip(&widths)
        .map(|(c, w)| Arc::new(StringArray::from_iter_values(c.iter().map(|s| cut(s, *w)))) as ArrayRef)
        .collect();
    Ok(vec![RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)?])
}

fn write_markdown<W: Write>(schema: &SchemaRef, batches: &[RecordBatch], out: &mut W) -> Result<()> {
    let escape = |s: &str| s.replace('\\', "\\\\").replace('|', "\\|").replace('\n', " ");
    let header: Vec<String> = schema.fields().iter().map(|f| escape(f.name())).collect();
    writeln!(out, "| {} |", header.join(" | "))?;
    let align: Vec<&str> =
        schema.fields().iter().map(|f| if f.data_type().is_numeric() { "---:" } else { "---" }).collect();
    writeln!(out, "| {} |", align.join(" | "))?;
    for_each_text_row(schema, batches, |cells| {
        let cells: Vec<String> = cells.iter().map(|c| escape(c)).collect();
        writeln!(out, "| {} |", cells.join(" | "))
    })
}

/// A `<table>` element: numbers right-aligned, nulls empty, text escaped.
fn write_html<W: Write>(schema: &SchemaRef, batches: &[RecordBatch], out: &mut W) -> Result<()> {
    let numeric: Vec<bool> = schema.fields().iter().map(|f| f.data_type().is_numeric()).collect();
    let class = |i: usize| if numeric[i] { " style=\"text-align:right\"" } else { "" };
    write!(out, "<table>\n<thead><tr>")?;
    for (i, f) in schema.fields().iter().enumerate() {
        write!(out, "<th{}>{}</th>", class(i), escape_html(f.name()))?;
    }
    writeln!(out, "</tr></thead>\n<tbody>")?;
    for_each_text_row(schema, batches, |cells| {
        write!(out, "<tr>")?;
        for (i, cell) in cells.iter().enumerate() {
            write!(out, "<td{}>{}</td>", class(i), escape_html(cell))?;
        }
        writeln!(out, "</tr>")
    })?;
    writeln!(out, "</tbody>\n</table>")?;
    Ok(())
}

/// The rows of the text formats for people (Markdown, HTML): lists joined, floats rounded,
/// nulls empty, each row handed to `row` as its cells.
fn for_each_text_row(
    schema: &SchemaRef,
    batches: &[RecordBatch],
    mut row: impl FnMut(&[String]) -> std::io::Result<()>,
) -> Result<()> {
    let options = FormatOptions::default().with_null("");
    for batch in flatten_lists(schema, batches)? {
        let batch = round_floats(&batch)?;
        let formatters = batch
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &options))
            .collect::<Result<Vec<_>, _>>()?;
        for r in 0..batch.num_rows() {
            let cells: Vec<String> = formatters.iter().map(|f| f.value(r).to_string()).collect();
            row(&cells)?;
        }
    }
    Ok(())
}

/// Text made safe inside HTML elements and attribute values.
pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The schema with list columns as strings, for the text formats.
fn flat_schema(schema: &SchemaRef) -> SchemaRef {
    Arc::new(Schema::new(
        schema
            .fields()
            .iter()
            .map(|f| match f.data_type() {
                DataType::List(_) | DataType::LargeList(_) => Field::new(f.name(), DataType::Utf8, true),
                _ => f.as_ref().clone(),
            })
            .collect::<Vec<_>>(),
    ))
}

/// Joins list values with `;`, the way ingest reads them back from CSV.
fn flatten_lists(schema: &SchemaRef, batches: &[RecordBatch]) -> Result<Vec<RecordBatch>> {
    if !schema.fields().iter().any(|f| matches!(f.data_type(), DataType::List(_) | DataType::LargeList(_))) {
        return Ok(batches.to_vec());
    }
    let flat = flat_schema(schema);
    batches
        .iter()
        .map(|batch| {
            let columns = batch
                .columns()
                .iter()
                .map(|c| match c.data_type() {
                    DataType::List(_) | DataType::LargeList(_) => join_list(c),
                    _ => Ok(Arc::clone(c)),
                })
                .collect::<Result<Vec<_>>>()?;
            Ok(RecordBatch::try_new(Arc::clone(&flat), columns)?)
        })
        .collect()
}

fn join_list(column: &ArrayRef) -> Result<ArrayRef> {
    let mut out = StringBuilder::new();
    for row in 0..column.len() {
        match crate::schema::list_items(column, row)? {
            Some(items) => out.append_value(items.join(";")),
            None => out.append_null(),
        }
    }
    Ok(Arc::new(out.finish()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Float64Array, ListBuilder, StringArray};

    #[test]
    fn a_table_fits_the_terminal_and_cuts_long_cells() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Utf8, false),
            Field::new("title", DataType::Utf8, false),
        ]));
        let long = "a very long title that would wrap the terminal many times over";
        let batch = RecordBatch::try_new(
            Arc::clone(&schema),
            vec![Arc::new(StringArray::from(vec!["F-1"])), Arc::new(StringArray::from(vec![long]))],
        )
        .unwrap();
        let mut out = Vec::new();
        let options = WriteOptions { max_rows: None, max_width: Some(30) };
        write(Format::Table, &schema, std::slice::from_ref(&batch), &mut out, options).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.lines().all(|l| l.chars().count() <= 30), "{text}");
        assert!(text.contains("F-1") && text.contains("a very long title t…"), "{text}");
        // Other formats keep the whole value.
        let mut csv = Vec::new();
        write(Format::Csv, &schema, &[batch], &mut csv, options).unwrap();
        assert!(String::from_utf8(csv).unwrap().contains(long));
    }

    fn sample() -> (SchemaRef, Vec<RecordBatch>) {
        let mut list = ListBuilder::new(StringBuilder::new());
        list.append_value([Some("a"), Some("b")]);
        list.append_value(std::iter::empty::<Option<&str>>());
        let schema = Arc::new(Schema::new(vec![
            Field::new("name", DataType::Utf8, true),
            Field::new("ratio", DataType::Float64, true),
            Field::new("tags", crate::schema::string_list(), true),
        ]));
        let batch = RecordBatch::try_new(
            Arc::clone(&schema),
            vec![
                Arc::new(StringArray::from(vec![Some("x|y"), None])),
                Arc::new(Float64Array::from(vec![Some(3.123456), None])),
                Arc::new(list.finish()),
            ],
        )
        .unwrap();
        (schema, vec![batch])
    }

    fn render(format: Format) -> String {
        let (schema, batches) = sample();
        let mut out = Vec::new();
        write(format, &schema, &batches, &mut out, WriteOptions::default()).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn csv_joins_lists_and_keeps_full_precision() {
        assert_eq!(render(Format::Csv), "name,ratio,tags\nx|y,3.123456,a;b\n,,\n");
    }

    #[test]
    fn json_writes_nulls_explicitly() {
        let json = render(Format::Json);
        assert!(json.contains(r#""name":null"#) && json.contains(r#""ratio":null"#), "{json}");
    }

    #[test]
    fn markdown_escapes_pipes_and_rounds() {
        let md = render(Format::Markdown);
        assert!(md.contains("| x\\|y | 3.1235 | a;b |"), "{md}");
        assert!(md.contains("| --- | ---: | --- |"), "{md}");
    }

    #[test]
    fn empty_results_keep_their_columns() {
        let (schema, _) = sample();
        let mut out = Vec::new();
        write(Format::Csv, &schema, &[], &mut out, WriteOptions::default()).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "name,ratio,tags\n");
        let mut out = Vec::new();
        write(Format::Json, &schema, &[], &mut out, WriteOptions::default()).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "[]\n");
    }

    #[test]
    fn batches_written_one_by_one_give_what_one_write_gives() {
        let (schema, batches) = sample();
        let three = [batches[0].clone(), RecordBatch::new_empty(Arc::clone(&schema)), batches[0].clone()];
        for format in [Format::Csv, Format::Tsv, Format::Json, Format::Ndjson, Format::Markdown, Format::Html] {
            let mut whole = Vec::new();
            let doubled = arrow_select_concat(&schema, &three);
            write(format, &schema, &doubled, &mut whole, WriteOptions::default()).unwrap();
            let mut streamed = Vec::new();
            let mut writer = ResultWriter::new(format, &schema, &mut streamed, WriteOptions::default()).unwrap();
            for batch in &three {
                writer.write(batch).unwrap();
            }
            assert_eq!(writer.finish().unwrap(), Written { shown: 4, total: 4 }, "{format:?}");
            assert_eq!(String::from_utf8(streamed).unwrap(), String::from_utf8(whole).unwrap(), "{format:?}");
        }
    }

    fn arrow_select_concat(schema: &SchemaRef, batches: &[RecordBatch]) -> Vec<RecordBatch> {
        vec![datafusion::arrow::compute::concat_batches(schema, batches).unwrap()]
    }

    #[test]
    fn a_table_keeps_only_the_rows_it_shows_and_counts_the_rest() {
        let (schema, batches) = sample();
        let mut out = Vec::new();
        let mut writer =
            ResultWriter::new(Format::Table, &schema, &mut out, WriteOptions { max_rows: Some(3), max_width: None })
                .unwrap();
        for _ in 0..5 {
            writer.write(&batches[0]).unwrap();
        }
        let Sink::Kept(_, _, kept) = &writer.sink else { panic!("a table keeps its rows") };
        assert_eq!(kept.iter().map(|b| b.num_rows()).sum::<usize>(), 3);
        assert_eq!(writer.finish().unwrap(), Written { shown: 3, total: 10 });
    }

    #[test]
    fn table_output_stops_at_max_rows() {
        let (schema, batches) = sample();
        let mut out = Vec::new();
        let shown =
            write(Format::Table, &schema, &batches, &mut out, WriteOptions { max_rows: Some(1), max_width: None })
                .unwrap();
        assert_eq!(shown, 1);
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("3.1235") && !text.contains("NULL"), "{text}");
    }
}
