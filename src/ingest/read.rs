//! Readers for the input formats. Each streams its file and hands every record to a callback,
//! already bound to the table's columns, so memory stays bounded by the batch, not the file. A
//! record that cannot even be read as cells (a wrong field count, invalid UTF-8, a NUL byte, bad
//! JSON on one line) is passed on as `Item::Bad`, to be kept among the rejected rows.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::rc::Rc;
use std::sync::Arc;

use datafusion::arrow::array::Array;
use datafusion::arrow::datatypes::DataType;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde_json::Value as Json;

use super::mapping::{ColumnMap, Mapping};
use super::rows::{ColumnSpec, Raw, split_list};
use crate::error::{Error, Result};

/// An input format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum InputFormat {
    /// RFC 4180 CSV with a header row.
    Csv,
    /// One JSON array of objects.
    Json,
    /// One JSON object per line.
    Ndjson,
    /// A Parquet file with the table's columns.
    Parquet,
}

impl InputFormat {
    /// The format a file's name says, looking through a compression suffix (`x.csv.gz`,
    /// `x.ndjson.zst`).
    pub fn from_path(path: &Path) -> Option<Self> {
        let name = path.file_name()?.to_str()?.to_ascii_lowercase();
        let name = [".gz", ".gzip", ".zst", ".zstd"].iter().find_map(|s| name.strip_suffix(s)).unwrap_or(&name);
        match Path::new(name).extension()?.to_str()? {
            "csv" | "txt" => Some(Self::Csv),
            "json" => Some(Self::Json),
            "ndjson" | "jsonl" => Some(Self::Ndjson),
            "parquet" | "pq" => Some(Self::Parquet),
            _ => None,
        }
    }
}

/// One record of an input.
pub enum Item {
    /// The cells of a record in the table's column order; `position` is the line (NDJSON) or
    /// record number (JSON, Parquet).
    Row { position: u64, cells: Vec<Raw<'static>> },
    /// How the records that follow map onto the table's columns (a CSV file's header).
    Header(Arc<Binding>),
    /// A CSV record as read, valid UTF-8 without NUL bytes and as wide as the header; `position`
    /// is its line. Its cells are the last `Header`'s `Binding::cells_of` it: one allocation a
    /// record, not one a field.
    Record { position: u64, record: csv::StringRecord },
    /// A record that could not be read as cells.
    Bad { position: u64, column: Option<String>, raw: String, reason: String },
}

/// Where a table column's cells come from.
enum Source {
    /// The input columns of the same name (several for a list column repeated in the header,
    /// as Jira exports do).
    Columns(Vec<usize>),
    /// A mapping's rule over the input columns it names (`None`: not in this input).
    Mapped(ColumnMap, Vec<Option<usize>>),
}

/// How the columns of an input map onto the table's.
pub struct Binding {
    sources: Vec<Source>,
    width: usize,
    /// Per input column, whether exactly one source reads it: its cell is moved, not copied.
    moved: Vec<bool>,
}

impl Binding {
    /// Binds header names (case-insensitive, trimmed) to the table's columns, through the
    /// mapping when there is one. A required column missing refuses the file; extra columns are
    /// returned for one warning.
    fn new(
        file: &Path,
        header: &[String],
        columns: &[ColumnSpec],
        mapping: Option<&Mapping>,
    ) -> Result<(Self, Vec<String>)> {
        let normal = |s: &str| s.trim().to_lowercase();
        let find = |name: &str| header.iter().position(|h| normal(h) == normal(name));
        let mut used = vec![false; header.len()];
        let mut sources = Vec::with_capacity(columns.len());
        let missing = |what: String| Error::Input {
            file: file.to_path_buf(),
            line: 1,
            column: 0,
            message: format!(
                "missing required column {what}; nothing was loaded (a value the input does not carry can be given \
                 for every row with --set COLUMN=VALUE)"
            ),
        };
        for spec in columns {
            if let Some(map) = mapping.and_then(|m| m.column(spec.name)) {
                let names = map.sources();
                let idx: Vec<Option<usize>> = names.iter().map(|n| find(n)).collect();
                if spec.required && !names.is_empty() && idx.iter().all(Option::is_none) {
                    let mapping = mapping.map_or("", |m| m.name.as_str());
                    return Err(missing(format!("`{}` (for {} in mapping {mapping})", names.join("`, `"), spec.name)));
                }
                // A repeated header (Component/s) feeds the list once per occurrence.
                let mut all = Vec::new();
                for (name, first) in names.iter().zip(&idx) {
                    match first {
                        Some(_) => all.extend(
                            header.iter().enumerate().filter(|(_, h)| normal(h) == normal(name)).map(|(i, _)| Some(i)),
                        ),
                        None => all.push(None),
                    }
                }
                for i in all.iter().flatten() {
                    used[*i] = true;
                }
                sources.push(Source::Mapped(map.clone(), all));
            } else {
                let found: Vec<usize> =
                    header.iter().enumerate().filter(|(_, h)| normal(h) == spec.name).map(|(i, _)| i).collect();
                if found.is_empty() && spec.required {
                    return Err(missing(format!("`{}`", spec.name)));
                }
                // A repeated header feeds a list column once per occurrence; a column of one
                // value would have to drop all but one, silently, so the file is refused.
                if let [first, second, ..] = found[..]
                    && !crate::schema::is_list_column(spec.name)
                {
                    return Err(Error::Input {
                        file: file.to_path_buf(),
                        line: 1,
                        column: second as u64 + 1,
                        message: format!(
                            "the header names `{}` twice (`{}` in column {} and `{}` in column {}); \
                             rename or remove one; nothing was loaded",
                            spec.name,
                            shown(&header[first]),
                            first + 1,
                            shown(&header[second]),
                            second + 1
                        ),
                    });
                }
                for i in &found {
                    used[*i] = true;
                }
                sources.push(Source::Columns(found));
            }
        }
        let extra = header.iter().zip(&used).filter(|(_, u)| !**u).map(|(h, _)| h.trim().to_string()).collect();
        let mut readers = vec![0usize; header.len()];
        for source in &sources {
            match source {
                Source::Columns(idx) => idx.iter().for_each(|&i| readers[i] += 1),
                Source::Mapped(_, idx) => idx.iter().flatten().for_each(|&i| readers[i] += 1),
            }
        }
        let moved = readers.iter().map(|&n| n == 1).collect();
        Ok((Self { sources, width: header.len(), moved }, extra))
    }

    /// The table's cells of a CSV record (see `Item::Record`); an empty field is null.
    pub fn cells_of<'a>(&self, record: &'a csv::StringRecord) -> Vec<Raw<'a>> {
        let cell = |s: &'a str| if s.is_empty() { Raw::Null } else { Raw::Text(s.into()) };
        // A column of at most one field (the common case) borrows it straight from the record;
        // the record is split into cells only for a mapped or repeated column.
        let mut fields: Option<Vec<Raw<'a>>> = None;
        self.sources
            .iter()
            .map(|source| match source {
                Source::Columns(idx) if idx.len() <= 1 => {
                    idx.first().and_then(|&i| record.get(i)).map_or(Raw::Null, cell)
                }
                other => self.cell(other, fields.get_or_insert_with(|| record.iter().map(cell).collect())),
            })
            .collect()
    }

    /// The table's cells from one record's fields.
    fn cells<'a>(&self, fields: &mut [Raw<'a>]) -> Vec<Raw<'a>> {
        self.sources.iter().map(|source| self.cell(source, fields)).collect()
    }

    /// One table cell from a record's fields (a field only this cell reads is moved out).
    fn cell<'a>(&self, source: &Source, fields: &mut [Raw<'a>]) -> Raw<'a> {
        match source {
            Source::Mapped(map, idx) => {
                map.apply(idx.iter().map(|i| i.and_then(|i| fields.get(i)).unwrap_or(&Raw::Null)).collect())
            }
            Source::Columns(idx) => match idx.as_slice() {
                [] => Raw::Null,
                [one] if self.moved.get(*one) == Some(&true) => {
                    fields.get_mut(*one).map(|f| std::mem::replace(f, Raw::Null)).unwrap_or(Raw::Null)
                }
                [one] => fields.get(*one).cloned().unwrap_or(Raw::Null),
                many => {
                    let mut items = Vec::new();
                    for i in many {
                        match fields.get(*i) {
                            Some(Raw::Text(s)) => items.extend(split_list(s)),
                            Some(Raw::List(l)) => items.extend(l.iter().cloned()),
                            _ => {}
                        }
                    }
                    if items.is_empty() { Raw::Null } else { Raw::List(items) }
                }
            },
        }
    }
}

/// Counts the bytes read, for the progress bar.
pub struct Counting<R> {
    inner: R,
    pub count: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
        Ok(n)
    }
}

/// Reads `file` and calls `each` with every record. Returns the extra (ignored) columns.
/// Text inputs compressed with gzip or zstd (told by their first bytes, whatever the name) are
/// read through the decompressor; an empty file and a UTF-16 file are refused with what to do.
pub fn read(
    file: &Path,
    format: InputFormat,
    columns: &[ColumnSpec],
    mapping: Option<&Mapping>,
    delimiter: u8,
    progress: std::sync::Arc<std::sync::atomic::AtomicU64>,
    each: &mut dyn FnMut(Item) -> Result<()>,
) -> Result<Vec<String>> {
    if format == InputFormat::Parquet {
        return read_parquet(file, columns, mapping, each);
    }
    let f = File::open(file).map_err(|e| Error::io(file, e))?;
    let mut raw = Counting { inner: BufReader::with_capacity(1 << 16, f), count: std::sync::Arc::clone(&progress) };
    let head = raw.inner.fill_buf().map_err(|e| Error::io(file, e))?.to_vec();
    let decoded: Box<dyn Read> = match Compression::of(&head) {
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(raw)),
        Compression::Zstd => Box::new(zstd::Decoder::new(raw).map_err(|e| Error::io(file, e))?),
        Compression::None => Box::new(raw),
    };
    let mut input = BufReader::with_capacity(1 << 16, decoded);
    let start = input.fill_buf().map_err(|e| Error::io(file, e))?;
    let refuse = |message: String| Error::Input { file: file.to_path_buf(), line: 1, column: 0, message };
    if start.is_empty() {
        return Err(refuse(
            "the file is empty (not even a header); nothing was loaded. An export with no rows still has its header line"
                .into(),
        ));
    }
    if let Some(encoding) = utf16(start) {
        return Err(refuse(format!(
            "the file is {encoding}, not UTF-8; nothing was loaded. Save it as UTF-8 (in Excel: CSV UTF-8; \
             or `iconv -f UTF-16 -t UTF-8`)"
        )));
    }
    match format {
        InputFormat::Csv => read_csv(file, input, columns, mapping, delimiter, each),
        InputFormat::Ndjson => read_ndjson(file, input, columns, mapping, each),
        InputFormat::Json => read_json(file, input, columns, mapping, each),
        InputFormat::Parquet => unreachable!("Parquet is read above"),
    }
}

/// How a file's bytes are compressed, by their magic number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    fn of(head: &[u8]) -> Self {
        match head {
            [0x1f, 0x8b, ..] => Compression::Gzip,
            [0x28, 0xb5, 0x2f, 0xfd, ..] => Compression::Zstd,
            _ => Compression::None,
        }
    }
}

/// The UTF-16 encoding text starts in, by its byte-order mark or by the zero bytes of ASCII
/// text in UTF-16 (`f\0e\0`).
fn utf16(start: &[u8]) -> Option<&'static str> {
    match start {
        [0xff, 0xfe, ..] => Some("UTF-16 (little-endian, with a byte-order mark)"),
        [0xfe, 0xff, ..] => Some("UTF-16 (big-endian, with a byte-order mark)"),
        [a, 0, b, 0, ..] if a.is_ascii_graphic() && b.is_ascii() => Some("UTF-16 (little-endian)"),
        [0, a, 0, b, ..] if a.is_ascii_graphic() && b.is_ascii() => Some("UTF-16 (big-endian)"),
        _ => None,
    }
}

/// A name from the input as messages show it: at most 60 characters.
pub fn shown(name: &str) -> String {
    let name = name.trim();
    match name.char_indices().nth(60) {
        Some((at, _)) => format!("{}… ({} characters)", &name[..at], name.chars().count()),
        None => name.to_string(),
    }
}

/// Finds the physical line a CSV record starts on. The CSV reader counts records, not lines, so
/// a quoted field spanning lines would shift every later line number; this wrapper notes where
/// each newline is as the bytes go by, holding only those the reader has not passed yet.
struct LineTracker<R> {
    inner: R,
    offset: u64,
    newlines: Rc<RefCell<VecDeque<u64>>>,
}

impl<R: Read> Read for LineTracker<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        let offset = self.offset;
        self.newlines.borrow_mut().extend(memchr::memchr_iter(b'\n', &buf[..n]).map(|i| offset + i as u64));
        self.offset += n as u64;
        Ok(n)
    }
}

fn read_csv(
    file: &Path,
    input: impl Read,
    columns: &[ColumnSpec],
    mapping: Option<&Mapping>,
    delimiter: u8,
    each: &mut dyn FnMut(Item) -> Result<()>,
) -> Result<Vec<String>> {
    let newlines = Rc::new(RefCell::new(VecDeque::new()));
    let tracked = LineTracker { inner: input, offset: 0, newlines: Rc::clone(&newlines) };
    let mut lines_before = 0u64;
    let mut reader =
        csv::ReaderBuilder::new().has_headers(false).flexible(true).delimiter(delimiter).from_reader(tracked);
    let mut record = csv::ByteRecord::new();
    let csv_err = |e: csv::Error| Error::Input {
        file: file.to_path_buf(),
        line: e.position().map_or(0, |p| p.line()),
        column: 0,
        message: e.to_string(),
    };
    if !reader.read_byte_record(&mut record).map_err(csv_err)? {
        // An empty file has no rows and no columns: nothing to load, nothing to refuse.
        return Ok(Vec::new());
    }
    let mut header = Vec::with_capacity(record.len());
    for (i, field) in record.iter().enumerate() {
        let field = if i == 0 { field.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(field) } else { field };
        let name = std::str::from_utf8(field).map_err(|_| Error::Input {
            file: file.to_path_buf(),
            line: 1,
            column: i as u64 + 1,
            message: "the header is not valid UTF-8".into(),
        })?;
        header.push(name.to_string());
    }
    let (binding, extra) = Binding::new(file, &header, columns, mapping).map_err(|e| separator_hint(e, &header))?;
    let width = binding.width;
    each(Item::Header(Arc::new(binding)))?;
    loop {
        match reader.read_byte_record(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => return Err(csv_err(e)),
        }
        let start = record.position().map_or(0, |p| p.byte());
        {
            let mut pending = newlines.borrow_mut();
            // After a CRLF the reader places the next record at the LF: that newline is
            // behind the record too.
            while pending.front().is_some_and(|&at| at <= start) {
                pending.pop_front();
                lines_before += 1;
            }
        }
        let position = lines_before + 1;
        if record.len() == 1 && record.get(0).is_some_and(|f| f.is_empty()) {
            continue; // a blank line
        }
        if record.len() != width {
            let multi_line = record.iter().any(|f| f.contains(&b'\n'));
            let hint = if multi_line { " (an unclosed quote?)" } else { "" };
            let reason = format!("expected {width} fields, found {}{hint}", record.len());
            each(Item::Bad { position, column: None, raw: joined(&record), reason })?;
            continue;
        }
        // The record moves on whole; the next one is read into a buffer of the same size.
        let next = csv::ByteRecord::with_capacity(record.as_slice().len(), record.len());
        let text = match csv::StringRecord::from_byte_record(std::mem::replace(&mut record, next)) {
            Ok(text) if !text.as_slice().contains('\0') => {
                each(Item::Record { position, record: text })?;
                continue;
            }
            Ok(text) => text.into_byte_record(),
            Err(e) => e.into_byte_record(),
        };
        let (column, reason) = match first_bad_field(&text) {
            Some((i, what)) => {
                let column = header[i].trim().to_string();
                let reason = format!("{column} {what}");
                (Some(column), reason)
            }
            None => (None, "the record is not valid UTF-8".to_string()),
        };
        each(Item::Bad { position, column, raw: joined(&text), reason })?;
    }
    Ok(extra)
}

/// A header read as one column that other separators would split: the file is likely
/// `;`- or tab-separated (Excel in many locales writes `;` with decimal commas); say how to read it.
fn separator_hint(e: Error, header: &[String]) -> Error {
    let Error::Input { file, line, column, message } = e else { return e };
    let [only] = header else { return Error::Input { file, line, column, message } };
    let found = [(';', "';'"), ('\t', "'\\t'"), ('|', "'|'")].into_iter().find(|(c, _)| only.contains(*c));
    let message = match found {
        Some((c, flag)) => format!(
            "{message}. The header is one column holding {} `{}`: the file looks {}-separated; \
             read it with --delimiter {flag}",
            only.matches(c).count(),
            c.escape_default(),
            if c == '\t' { "tab".to_string() } else { format!("`{c}`") }
        ),
        None => message,
    };
    Error::Input { file, line, column, message }
}

/// The first field of a record that is not valid UTF-8 or holds a NUL byte, and which it is.
fn first_bad_field(record: &csv::ByteRecord) -> Option<(usize, &'static str)> {
    record.iter().enumerate().find_map(|(i, field)| match std::str::from_utf8(field) {
        Ok(s) if s.contains('\0') => Some((i, "contains a NUL byte")),
        Ok(_) => None,
        Err(_) => Some((i, "is not valid UTF-8")),
    })
}

/// A record as one line of text, for the rejected rows: fields joined with commas, invalid
/// UTF-8 replaced, NUL shown as \0.
fn joined(record: &csv::ByteRecord) -> String {
    record.iter().map(|f| String::from_utf8_lossy(f).replace('\0', "\\0")).collect::<Vec<_>>().join(",")
}

fn json_cell(value: &Json) -> Raw<'static> {
    match value {
        Json::Null => Raw::Null,
        Json::String(s) => Raw::Text(s.clone().into()),
        Json::Array(items) => Raw::List(
            items
                .iter()
                .filter(|v| !v.is_null())
                .map(|v| match v {
                    Json::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect(),
        ),
        other => Raw::Text(other.to_string().into()),
    }
}

/// Reads JSON records by key. The keys seen so far make the header: the first record must bind
/// every required column, or the file is refused; a key first seen later (exporters often leave
/// out nulls) joins the header then.
struct JsonRecords<'a> {
    mapping: Option<&'a Mapping>,
    header: Vec<String>,
    binding: Option<(Binding, Vec<String>)>,
}

impl<'a> JsonRecords<'a> {
    fn new(mapping: Option<&'a Mapping>) -> Self {
        Self { mapping, header: Vec::new(), binding: None }
    }

    fn row(&mut self, file: &Path, position: u64, value: &Json, columns: &[ColumnSpec]) -> Result<Item> {
        let Json::Object(map) = value else {
            return Ok(Item::Bad {
                position,
                column: None,
                raw: value.to_string(),
                reason: "not a JSON object".into(),
            });
        };
        // A cell is text, a number, a boolean or a list of those: an object (or a list inside a
        // list) in a column the table reads has no one text to load, and its JSON text is not a
        // system's name. Objects elsewhere are read as their fields, `parent.child` (GitLab's
        // `environment.name`), which a mapping can name; nested lists elsewhere are ignored.
        let nested = |v: &Json| matches!(v, Json::Object(_) | Json::Array(_));
        let used = self.used(columns);
        let normal = |s: &str| s.trim().to_lowercase();
        if let Some((key, cell)) = map.iter().filter(|(k, _)| used.contains(&normal(k))).find(|(_, v)| match v {
            Json::Object(_) => true,
            Json::Array(items) => items.iter().any(nested),
            _ => false,
        }) {
            let what = if cell.is_object() { "an object" } else { "a list holding an object or a list" };
            return Ok(Item::Bad {
                position,
                column: Some(key.clone()),
                raw: value.to_string(),
                reason: format!("`{key}` is {what}: expected text, a number or a list of them"),
            });
        }
        let mut flat = serde_json::Map::new();
        flatten("", value, &mut flat);
        let map = &flat;
        let new_keys: Vec<String> = map.keys().filter(|k| !self.header.contains(k)).cloned().collect();
        if self.binding.is_none() || !new_keys.is_empty() {
            self.header.extend(new_keys);
            self.binding = Some(Binding::new(file, &self.header, columns, self.mapping)?);
        }
        let (binding, _) = self.binding.as_ref().expect("bound above");
        let mut fields: Vec<Raw> = self.header.iter().map(|k| map.get(k).map_or(Raw::Null, json_cell)).collect();
        Ok(Item::Row { position, cells: binding.cells(&mut fields) })
    }

    fn extra(self) -> Vec<String> {
        self.binding.map(|(_, extra)| extra).unwrap_or_default()
    }

    /// The input names the table's columns are read from (lower case): the mapping's sources,
    /// or the columns' own names.
    fn used(&self, columns: &[ColumnSpec]) -> Vec<String> {
        columns
            .iter()
            .flat_map(|spec| match self.mapping.and_then(|m| m.column(spec.name)) {
                Some(map) => map.sources().into_iter().map(|s| s.trim().to_lowercase()).collect::<Vec<_>>(),
                None => vec![spec.name.to_string()],
            })
            .collect()
    }
}

/// A JSON record's fields with nested objects spelled out as `parent.child`; lists holding
/// objects or lists are dropped (no column reads them: `row` refused those that one would).
fn flatten(prefix: &str, value: &Json, out: &mut serde_json::Map<String, Json>) {
    match value {
        Json::Object(fields) => {
            for (key, field) in fields {
                let name = if prefix.is_empty() { key.clone() } else { format!("{prefix}.{key}") };
                flatten(&name, field, out);
            }
        }
        Json::Array(items) if items.iter().any(|v| matches!(v, Json::Object(_) | Json::Array(_))) => {}
        other => {
            out.insert(prefix.to_string(), other.clone());
        }
    }
}

fn read_ndjson(
    file: &Path,
    input: impl Read,
    columns: &[ColumnSpec],
    mapping: Option<&Mapping>,
    each: &mut dyn FnMut(Item) -> Result<()>,
) -> Result<Vec<String>> {
    let mut bound = JsonRecords::new(mapping);
    let mut reader = BufReader::new(input);
    let mut line = Vec::new();
    let mut number = 0u64;
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line).map_err(|e| Error::io(file, e))? == 0 {
            break;
        }
        number += 1;
        let text = match std::str::from_utf8(&line) {
            Ok(t) => t.trim_start_matches('\u{feff}').trim(),
            Err(_) => {
                let raw = String::from_utf8_lossy(&line).trim().to_string();
                each(Item::Bad { position: number, column: None, raw, reason: "the line is not valid UTF-8".into() })?;
                continue;
            }
        };
        if text.is_empty() {
            continue;
        }
        match serde_json::from_str::<Json>(text) {
            Ok(value) => each(bound.row(file, number, &value, columns)?)?,
            Err(e) => each(Item::Bad {
                position: number,
                column: None,
                raw: text.to_string(),
                reason: format!("invalid JSON: {e}"),
            })?,
        }
    }
    Ok(bound.extra())
}

fn read_json(
    file: &Path,
    input: impl Read,
    columns: &[ColumnSpec],
    mapping: Option<&Mapping>,
    each: &mut dyn FnMut(Item) -> Result<()>,
) -> Result<Vec<String>> {
    use serde::de::{Deserializer as _, SeqAccess, Visitor};

    struct Records<'a> {
        file: &'a Path,
        columns: &'a [ColumnSpec],
        bound: JsonRecords<'a>,
        each: &'a mut dyn FnMut(Item) -> Result<()>,
        failure: Option<Error>,
    }

    impl<'de> Visitor<'de> for &mut Records<'_> {
        type Value = ();
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a JSON array of objects")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
            let mut number = 0u64;
            while let Some(value) = seq.next_element::<Json>()? {
                number += 1;
                let step = self.bound.row(self.file, number, &value, self.columns).and_then(|item| (self.each)(item));
                if let Err(e) = step {
                    self.failure = Some(e);
                    return Err(serde::de::Error::custom("stopped"));
                }
            }
            Ok(())
        }
    }

    let mut input = input;
    let mut bytes = [0u8; 3];
    // Skip a UTF-8 BOM; the JSON parser does not.
    let mut head = Vec::new();
    let n = input.read(&mut bytes).map_err(|e| Error::io(file, e))?;
    if bytes[..n] != *b"\xEF\xBB\xBF" {
        head.extend_from_slice(&bytes[..n]);
    }
    if n == 0 {
        return Ok(Vec::new());
    }
    let reader = std::io::Cursor::new(head).chain(input);
    let mut records = Records { file, columns, bound: JsonRecords::new(mapping), each, failure: None };
    let mut de = serde_json::Deserializer::from_reader(reader);
    let outcome = (&mut de).deserialize_seq(&mut records);
    if let Some(e) = records.failure.take() {
        return Err(e);
    }
    outcome.and_then(|()| de.end()).map_err(|e| Error::Input {
        file: file.to_path_buf(),
        line: e.line() as u64,
        column: e.column() as u64,
        message: format!("invalid JSON: {e}; nothing was loaded"),
    })?;
    Ok(records.bound.extra())
}

fn read_parquet(
    file: &Path,
    columns: &[ColumnSpec],
    mapping: Option<&Mapping>,
    each: &mut dyn FnMut(Item) -> Result<()>,
) -> Result<Vec<String>> {
    let f = File::open(file).map_err(|e| Error::io(file, e))?;
    let not_parquet = |e: datafusion::parquet::errors::ParquetError| {
        Error::Usage(format!("{}: not a readable Parquet file ({e}); nothing was loaded", file.display()))
    };
    let builder = ParquetRecordBatchReaderBuilder::try_new(f).map_err(not_parquet)?;
    let header: Vec<String> = builder.schema().fields().iter().map(|f| f.name().clone()).collect();
    let (binding, extra) = Binding::new(file, &header, columns, mapping)?;
    let reader = builder.with_batch_size(8192).build().map_err(not_parquet)?;
    let options = FormatOptions::default();
    let mut number = 0u64;
    for batch in reader {
        let batch =
            batch.map_err(|e| Error::Usage(format!("{}: not a readable Parquet file ({e})", file.display())))?;
        let formatters = batch
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &options))
            .collect::<Result<Vec<_>, _>>()?;
        for row in 0..batch.num_rows() {
            number += 1;
            let mut fields: Vec<Raw> = batch
                .columns()
                .iter()
                .zip(&formatters)
                .map(|(column, formatter)| {
                    if column.is_null(row) {
                        return Raw::Null;
                    }
                    match column.data_type() {
                        DataType::List(_) | DataType::LargeList(_) => {
                            crate::schema::list_items(column, row).ok().flatten().map_or(Raw::Null, Raw::List)
                        }
                        _ => Raw::Text(formatter.value(row).to_string().into()),
                    }
                })
                .collect();
            each(Item::Row { position: number, cells: binding.cells(&mut fields) })?;
        }
    }
    Ok(extra)
}
