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
use datafusion::parquet::arrow::ArrowWriter;

use crate::error::{Error, Result};

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

/// Writes a result in `format`. Returns the number of rows shown.
pub fn write<W: Write + Send>(
    format: Format,
    schema: &SchemaRef,
    batches: &[RecordBatch],
    out: &mut W,
    options: WriteOptions,
) -> Result<usize> {
    let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
    match format {
        Format::Table => return write_table(schema, batches, out, options),
        Format::Csv | Format::Tsv => {
            let delimiter = if format == Format::Csv { b',' } else { b'\t' };
            let mut writer = csv::WriterBuilder::new().with_header(true).with_delimiter(delimiter).build(&mut *out);
            let flat = flatten_lists(schema, batches)?;
            if flat.is_empty() {
                // The header alone, so that an empty result is still a valid CSV with its columns.
                writer.write(&RecordBatch::new_empty(flat_schema(schema)))?;
            }
            for batch in &flat {
                writer.write(batch)?;
            }
        }
        Format::Json => {
            let mut writer =
                json::WriterBuilder::new().with_explicit_nulls(true).build::<_, json::writer::JsonArray>(&mut *out);
            for batch in batches {
                writer.write(batch)?;
            }
            writer.finish()?;
            drop(writer);
            out.write_all(b"\n")?;
        }
        Format::Ndjson => {
            let mut writer =
                json::WriterBuilder::new().with_explicit_nulls(true).build::<_, json::writer::LineDelimited>(&mut *out);
            for batch in batches {
                writer.write(batch)?;
            }
            writer.finish()?;
        }
        Format::Markdown => write_markdown(schema, batches, out)?,
        Format::Html => write_html(schema, batches, out)?,
        Format::Parquet => {
            let mut writer = ArrowWriter::try_new(&mut *out, Arc::clone(schema), None)?;
            for batch in batches {
                writer.write(batch)?;
            }
            writer.close()?;
        }
        Format::Arrow => {
            let mut writer = FileWriter::try_new(&mut *out, schema)?;
            for batch in batches {
                writer.write(batch)?;
            }
            writer.finish()?;
        }
    }
    out.flush()?;
    Ok(rows)
}

/// The width of the terminal stdout writes to; `None` when stdout is not a terminal.
pub fn terminal_width() -> Option<usize> {
    terminal_size::terminal_size_of(std::io::stdout()).map(|(w, _)| usize::from(w.0))
}

/// A writer that remembers whether its reader went away. The Arrow and Parquet writers turn io
/// errors into their own, so this is how a closed pipe (`| head`) is told from a real failure.
pub struct PipeWatch<W> {
    inner: W,
    closed: bool,
}

impl<W: Write> PipeWatch<W> {
    pub fn new(inner: W) -> Self {
        Self { inner, closed: false }
    }

    /// True when a write failed because the reading end of the pipe was closed.
    pub fn closed(&self) -> bool {
        self.closed
    }

    fn watch<T>(&mut self, result: std::io::Result<T>) -> std::io::Result<T> {
        if let Err(e) = &result {
            self.closed |= e.kind() == std::io::ErrorKind::BrokenPipe;
        }
        result
    }
}

impl<W: Write> Write for PipeWatch<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let result = self.inner.write(buf);
        self.watch(result)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        let result = self.inner.flush();
        self.watch(result)
    }
}

/// Writes to `path` atomically: a temporary file in the same directory, flushed to disk, then
/// renamed over the path. A reader never sees a partial file, and a failure leaves the previous
/// file (if any) in place.
pub fn write_file_atomically(path: &Path, write: impl FnOnce(&mut std::fs::File) -> Result<()>) -> Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(".{}.", path.file_name().and_then(|n| n.to_str()).unwrap_or("output")))
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(|e| Error::io(dir, e))?;
    write(tmp.as_file_mut())?;
    // A temporary file is private (0600); the output gets the permissions of the file it
    // replaces, or the usual 0644.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let permissions =
            std::fs::metadata(path).map(|m| m.permissions()).unwrap_or_else(|_| std::fs::Permissions::from_mode(0o644));
        tmp.as_file().set_permissions(permissions).map_err(|e| Error::io(tmp.path(), e))?;
    }
    tmp.as_file().sync_all().map_err(|e| Error::io(tmp.path(), e))?;
    tmp.persist(path).map_err(|e| Error::io(path, e.error))?;
    Ok(())
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
        match list_items(column, row)? {
            Some(items) => out.append_value(items.join(";")),
            None => out.append_null(),
        }
    }
    Ok(Arc::new(out.finish()))
}

/// The values of one row of a list column as text, null values left out; `None` for a null
/// list. Shared by the text writers and the Parquet reader of ingest.
pub fn list_items(column: &ArrayRef, row: usize) -> Result<Option<Vec<String>>> {
    if column.is_null(row) {
        return Ok(None);
    }
    let values = match column.data_type() {
        DataType::LargeList(_) => column.as_list::<i64>().value(row),
        _ => column.as_list::<i32>().value(row),
    };
    let formatter = ArrayFormatter::try_new(values.as_ref(), &FormatOptions::default())?;
    Ok(Some((0..values.len()).filter(|i| values.is_valid(*i)).map(|i| formatter.value(i).to_string()).collect()))
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
