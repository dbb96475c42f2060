//! Ingest: input files in, every row either loaded into its table or kept among the rejected
//! rows with its reason. The inputs are read as a stream and staged in Arrow's IPC format in a
//! temporary folder; the store then changes in one Delta commit (an upsert by key), so a crash
//! at any point leaves the table as it was.

pub mod mapping;
pub mod read;
pub mod rows;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use chrono::Utc;
use datafusion::arrow::array::{
    ArrayRef, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray, UInt64Array,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::arrow::ipc::writer::FileWriter;
use indicatif::ProgressBar;

pub use mapping::Mapping;
pub use read::InputFormat;
use read::Item;
use rows::{Raw, RowBuilder, columns};

use crate::error::{Error, Result};
use crate::schema::{self, Table};
use crate::store::Store;

/// Rows per staged batch: memory is bounded by this, not by the size of the input.
const BATCH_ROWS: usize = 64 * 1024;

/// The staged rows' file, in Arrow's IPC file format (the extension `Store::upsert` reads).
const STAGED_FILE: &str = "staged.arrow";

#[derive(Debug, Clone, Default)]
pub struct IngestOptions {
    /// The format of every file; `None`: from each file's extension.
    pub format: Option<InputFormat>,
    /// Show a progress bar (on a terminal, for large inputs).
    pub progress: bool,
    /// How the inputs' columns map onto the table's (`--map`).
    pub mapping: Option<Mapping>,
    /// The field separator of CSV inputs (`--delimiter`); `None`: a comma.
    pub delimiter: Option<u8>,
}

/// What an ingest did. `read = loaded + replaced + rejected` always holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    pub read: u64,
    /// Rows with a key new to the table.
    pub loaded: u64,
    /// Rows that replaced a row of the same key: in the table, or earlier in the input.
    pub replaced: u64,
    pub rejected: u64,
    /// Loaded rows with a date in the future.
    pub future_dates: u64,
    /// Per file, the input columns that are not columns of the table.
    pub ignored_columns: Vec<(PathBuf, Vec<String>)>,
    /// The table's version after the commit, if anything was written.
    pub version: Option<u64>,
}

/// A refused row, on its way to `_rejected/`.
struct Rejected {
    file: String,
    line: u64,
    column: Option<String>,
    raw: Option<String>,
    reason: String,
}

/// What the reading phase leaves: rows staged, rows refused.
struct Staged {
    read: u64,
    valid: u64,
    future_dates: u64,
    /// Whether two staged rows may share a key (see `RowBuilder::repeated_keys`).
    repeated_keys: bool,
    rejected: Vec<Rejected>,
    ignored_columns: Vec<(PathBuf, Vec<String>)>,
}

/// The prefix of an ingest's staging folder in the temporary folder (`vacuum` removes old ones a
/// killed ingest left).
pub const STAGING_PREFIX: &str = "debtlens-ingest-";

/// Removes the staging folders of ingests that were killed before they could remove their own
/// (`debtlens-ingest-*` in the temporary folder) once older than `retain`. Returns how many.
pub fn remove_stale_staging(retain: std::time::Duration, dry_run: bool) -> usize {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else { return 0 };
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name();
        if !name.to_string_lossy().starts_with(STAGING_PREFIX) {
            continue;
        }
        let old = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age >= retain);
        if old && (dry_run || std::fs::remove_dir_all(entry.path()).is_ok()) {
            removed += 1;
        }
    }
    removed
}

/// Ingests `files` into `table`.
pub async fn ingest(store: &Store, table: Table, files: &[PathBuf], options: &IngestOptions) -> Result<Summary> {
    if store.local_dir().is_none() && !matches!(store.location(), crate::store::Location::Url(_)) {
        return Err(Error::Usage(format!("the {store} store is read-only: give --data DIR")));
    }
    let mut inputs = Vec::with_capacity(files.len());
    let mut total_bytes = 0;
    for file in files {
        let format = options.format.or_else(|| InputFormat::from_path(file)).ok_or_else(|| {
            Error::Usage(format!("{}: cannot tell the format from the extension; give --input-format", file.display()))
        })?;
        let meta = std::fs::metadata(file).map_err(|e| Error::io(file, e))?;
        if meta.is_dir() {
            return Err(Error::Usage(format!("{}: is a directory", file.display())));
        }
        total_bytes += meta.len();
        inputs.push((file.clone(), format));
    }
    // The store must be a debtlens store before anything is read.
    store.open_delta(store.table_url(table)?).await.map_err(|e| match store.explain(table, &e) {
        unreachable @ Error::Unreachable { .. } => unreachable,
        _ if store.local_dir().is_some()
            && !matches!(
                e,
                deltalake::DeltaTableError::NotATable(_) | deltalake::DeltaTableError::InvalidTableLocation(_)
            ) =>
        {
            store.log_unreadable(table, &e)
        }
        _ => Error::Store {
            store: store.to_string(),
            table: table.name(),
            message: format!("not a Delta table ({e}); create the store with `debtlens init`"),
        },
    })?;

    let staging =
        tempfile::Builder::new().prefix(STAGING_PREFIX).tempdir().map_err(|e| Error::io(std::env::temp_dir(), e))?;
    let staging_dir = staging.path().to_path_buf();
    let progress = (options.progress && total_bytes > 4 * 1024 * 1024).then(|| progress_bar(total_bytes));
    let mapping = options.mapping.clone();
    let delimiter = options.delimiter.unwrap_or(b',');
    let staged =
        tokio::task::spawn_blocking(move || stage(table, &inputs, mapping.as_ref(), delimiter, &staging_dir, progress))
            .await
            .map_err(|e| Error::Internal(format!("ingest stopped: {e}")))??;

    // A write that fails (disk full, a read-only store, a lost connection) commits nothing:
    // each of the two commits below is whole or absent, and the user is told which.
    let uncommitted = |e: Error, what: &str| match e {
        unreachable @ Error::Unreachable { .. } => unreachable,
        e => Error::Store {
            store: store.to_string(),
            table: table.name(),
            message: format!(
                "{e}\n{what}: the table is as it was before this ingest (nothing of it was committed; \
                 `debtlens vacuum` removes any file it wrote)"
            ),
        },
    };
    if !staged.rejected.is_empty() {
        let rejected = rejected_batch(table, &staged.rejected)?;
        store.append_rejected(rejected).await.map_err(|e| uncommitted(e, "the rejected rows could not be written"))?;
    }
    let mut summary = Summary {
        read: staged.read,
        rejected: staged.rejected.len() as u64,
        future_dates: staged.future_dates,
        ignored_columns: staged.ignored_columns,
        ..Summary::default()
    };
    if staged.valid > 0 {
        let upserted = store
            .upsert(table, staging.path(), staged.repeated_keys)
            .await
            .map_err(|e| uncommitted(e, "the rows could not be committed"))?;
        summary.loaded = upserted.inserted;
        summary.replaced = upserted.updated + (staged.valid - upserted.unique);
        summary.version = upserted.version;
    }
    debug_assert_eq!(summary.read, summary.loaded + summary.replaced + summary.rejected);
    Ok(summary)
}

fn progress_bar(total: u64) -> ProgressBar {
    let bar = ProgressBar::new(total);
    if let Ok(style) =
        indicatif::ProgressStyle::with_template("{spinner} ingest [{bar:30}] {bytes}/{total_bytes} ({eta})")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

/// Reads every input, converting and checking each row; good rows go to an Arrow IPC file in
/// `dir` (`STAGED_FILE`), refused ones are returned. Three threads: one parses the input, one converts and
/// checks its rows, one encodes and writes the checked batches.
fn stage(
    table: Table,
    inputs: &[(PathBuf, InputFormat)],
    mapping: Option<&Mapping>,
    delimiter: u8,
    dir: &Path,
    progress: Option<ProgressBar>,
) -> Result<Staged> {
    std::thread::scope(|scope| {
        let (batches, received) = std::sync::mpsc::sync_channel::<RecordBatch>(2);
        let writing = scope.spawn(move || {
            let mut writer = StagingWriter { dir: dir.to_path_buf(), writer: None, seq: 0 };
            for batch in received {
                writer.write(batch)?;
            }
            writer.close()
        });
        // The writer hangs up only after an error of its own, which wins (below).
        let write = |batch: RecordBatch| batches.send(batch).map_err(|_| Error::Internal("staging stopped".into()));
        let checked = check(table, inputs, mapping, delimiter, progress, write);
        drop(batches);
        let written = writing.join().map_err(|_| Error::Internal("the staging writer stopped".into()))?;
        written?;
        checked
    })
}

/// Converts and checks the rows of every input, handing each full batch of good rows to `write`.
fn check(
    table: Table,
    inputs: &[(PathBuf, InputFormat)],
    mapping: Option<&Mapping>,
    delimiter: u8,
    progress: Option<ProgressBar>,
    write: impl Fn(RecordBatch) -> Result<()>,
) -> Result<Staged> {
    let mut builder = RowBuilder::new(table);
    let mut staged = Staged {
        read: 0,
        valid: 0,
        future_dates: 0,
        repeated_keys: false,
        rejected: Vec::new(),
        ignored_columns: Vec::new(),
    };
    let counter = Arc::new(AtomicU64::new(0));
    for (file, format) in inputs {
        let name = file.display().to_string();
        let mut binding = None;
        let mut each = |item: Item| -> Result<()> {
            let mut accept = |position: u64, cells: &[Raw]| -> Result<()> {
                match builder.push(cells) {
                    Ok(()) => {
                        staged.valid += 1;
                        if builder.len() >= BATCH_ROWS {
                            write(builder.finish()?)?;
                        }
                    }
                    Err(refusal) => staged.rejected.push(Rejected {
                        file: name.clone(),
                        line: position,
                        column: refusal.column,
                        raw: refusal.raw,
                        reason: refusal.reason,
                    }),
                }
                Ok(())
            };
            match item {
                Item::Header(bound) => {
                    binding = Some(bound);
                    return Ok(());
                }
                Item::Row { position, cells } => accept(position, &cells)?,
                Item::Record { position, record } => {
                    let binding = binding.as_ref().expect("a CSV header comes before its records");
                    accept(position, &binding.cells_of(&record))?
                }
                Item::Bad { position, column, raw, reason } => staged.rejected.push(Rejected {
                    file: name.clone(),
                    line: position,
                    column,
                    raw: Some(raw),
                    reason,
                }),
            }
            staged.read += 1;
            if let Some(bar) = progress.as_ref().filter(|_| staged.read.is_multiple_of(4096)) {
                bar.set_position(counter.load(std::sync::atomic::Ordering::Relaxed));
            }
            Ok(())
        };
        let ignored = read_alongside(file, *format, table, mapping, delimiter, Arc::clone(&counter), &mut each)?;
        if !ignored.is_empty() {
            staged.ignored_columns.push((file.clone(), ignored));
        }
    }
    if !builder.is_empty() {
        write(builder.finish()?)?;
    }
    staged.future_dates = builder.future_dates as u64;
    staged.repeated_keys = builder.repeated_keys();
    if let Some(bar) = progress {
        bar.finish_and_clear();
    }
    Ok(staged)
}

/// Items read and handed over at a time.
const CHUNK_ITEMS: usize = 4096;

/// Reads `file` on a thread of its own and hands its items, in order, to `each` on this one:
/// parsing the input is done alongside converting and checking its rows.
fn read_alongside(
    file: &Path,
    format: InputFormat,
    table: Table,
    mapping: Option<&Mapping>,
    delimiter: u8,
    counter: Arc<AtomicU64>,
    each: &mut dyn FnMut(Item) -> Result<()>,
) -> Result<Vec<String>> {
    std::thread::scope(|scope| {
        let (sender, receiver) = std::sync::mpsc::sync_channel::<Vec<Item>>(4);
        let reader = scope.spawn(move || {
            let mut chunk = Vec::with_capacity(CHUNK_ITEMS);
            let read = read::read(file, format, columns(table), mapping, delimiter, counter, &mut |item| {
                chunk.push(item);
                if chunk.len() == CHUNK_ITEMS {
                    let full = std::mem::replace(&mut chunk, Vec::with_capacity(CHUNK_ITEMS));
                    // The other side hangs up only after an error of its own, which wins.
                    sender.send(full).map_err(|_| Error::Internal("ingest stopped".into()))?;
                }
                Ok(())
            })?;
            if !chunk.is_empty() {
                sender.send(chunk).map_err(|_| Error::Internal("ingest stopped".into()))?;
            }
            Ok(read)
        });
        let mut handled = Ok(());
        'chunks: for chunk in receiver.iter() {
            for item in chunk {
                handled = each(item);
                if handled.is_err() {
                    break 'chunks;
                }
            }
        }
        drop(receiver);
        let read = reader.join().map_err(|_| Error::Internal(format!("{}: the reader stopped", file.display())))?;
        handled?;
        read
    })
}

/// Staged rows, with `__seq` numbering them in input order so that the last row of a key wins.
struct StagingWriter {
    dir: PathBuf,
    writer: Option<FileWriter<std::io::BufWriter<std::fs::File>>>,
    seq: u64,
}

impl StagingWriter {
    fn write(&mut self, batch: RecordBatch) -> Result<()> {
        let n = batch.num_rows() as u64;
        let seq: ArrayRef = Arc::new(UInt64Array::from_iter_values(self.seq..self.seq + n));
        self.seq += n;
        let mut fields: Vec<Field> = batch.schema().fields().iter().map(|f| f.as_ref().clone()).collect();
        fields.push(Field::new("__seq", DataType::UInt64, false));
        let mut columns = batch.columns().to_vec();
        columns.push(seq);
        let batch = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)?;
        if self.writer.is_none() {
            // Read back once, whole: Arrow's own file format, the batches as they are in memory
            // (no encoding to undo, as Parquet's would be).
            let path = self.dir.join(STAGED_FILE);
            let file = std::fs::File::create(&path).map_err(|e| Error::io(&path, e))?;
            self.writer = Some(FileWriter::try_new_buffered(file, &batch.schema())?);
        }
        self.writer.as_mut().expect("created above").write(&batch)?;
        Ok(())
    }

    fn close(self) -> Result<()> {
        if let Some(mut w) = self.writer {
            w.finish()?;
            let path = self.dir.join(STAGED_FILE);
            // Flushed here, so that a full disk is an error rather than a short file.
            w.into_inner()?.into_inner().map_err(|e| Error::io(&path, e.into_error()))?;
        }
        Ok(())
    }
}

fn rejected_batch(table: Table, rows: &[Rejected]) -> Result<RecordBatch> {
    let now = Utc::now();
    let id = format!("{}-{}", now.format("%Y%m%dT%H%M%S%.6fZ"), std::process::id());
    let n = rows.len();
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from(vec![id.as_str(); n])),
        Arc::new(TimestampMicrosecondArray::from(vec![now.timestamp_micros(); n]).with_timezone("UTC")),
        Arc::new(StringArray::from(vec![table.name(); n])),
        Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.file.as_str()))),
        Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.line as i64))),
        Arc::new(StringArray::from_iter(rows.iter().map(|r| r.column.as_deref()))),
        Arc::new(StringArray::from_iter(rows.iter().map(|r| r.raw.as_deref()))),
        Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.reason.as_str()))),
    ];
    Ok(RecordBatch::try_new(schema::rejected_schema(), columns)?)
}
