//! Files that appear whole or not at all: a temporary file in the same directory, renamed over
//! the path once the last byte is in. `--output`, batch jobs, the manifest and `\\o` of a binary
//! format all write through here.

use std::io::Write;
use std::path::Path;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::execution::SendableRecordBatchStream;

use super::{Format, WriteOptions, Written, write_stream};
use crate::error::{Error, Result};

/// Writes every batch of `stream` to the file at `path` as it comes; the path changes only once
/// the last one is in (`AtomicFile`). Returns what was written and the file's size in bytes.
pub async fn write_stream_to_file(
    path: &Path,
    format: Format,
    schema: SchemaRef,
    stream: SendableRecordBatchStream,
) -> Result<(Written, u64)> {
    let mut file = AtomicFile::create(path)?;
    let mut out = Counting { inner: std::io::BufWriter::new(file.file()), bytes: 0 };
    let written = write_stream(format, schema, stream, &mut out, WriteOptions::default()).await?;
    out.flush()?;
    let bytes = out.bytes;
    drop(out);
    file.commit()?;
    Ok((written, bytes))
}

/// Counts the bytes that pass, so the manifest's size needs no second look at the file.
struct Counting<W> {
    inner: W,
    bytes: u64,
}

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Writes to `path` atomically: a temporary file in the same directory, flushed to disk, then
/// renamed over the path. A reader never sees a partial file, and a failure leaves the previous
/// file (if any) in place.
pub fn write_file_atomically(path: &Path, write: impl FnOnce(&mut std::fs::File) -> Result<()>) -> Result<()> {
    let mut file = AtomicFile::create(path)?;
    write(file.file())?;
    file.commit()
}

/// A file that appears at its path whole or not at all: written as a temporary file in the
/// same directory, it replaces the path on `commit`; dropped without a commit, it is removed.
pub struct AtomicFile {
    path: std::path::PathBuf,
    tmp: tempfile::NamedTempFile,
}

impl AtomicFile {
    pub fn create(path: &Path) -> Result<Self> {
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let tmp = tempfile::Builder::new()
            .prefix(&format!(".{}.", path.file_name().and_then(|n| n.to_str()).unwrap_or("output")))
            .suffix(".tmp")
            .tempfile_in(dir)
            .map_err(|e| Error::io(dir, e))?;
        Ok(Self { path: path.to_path_buf(), tmp })
    }

    pub fn file(&mut self) -> &mut std::fs::File {
        self.tmp.as_file_mut()
    }

    /// Flushes the file to disk and renames it over the path.
    pub fn commit(self) -> Result<()> {
        let Self { path, tmp } = self;
        // A temporary file is private (0600); the output gets the permissions of the file it
        // replaces, or the usual 0644.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let permissions = std::fs::metadata(&path)
                .map(|m| m.permissions())
                .unwrap_or_else(|_| std::fs::Permissions::from_mode(0o644));
            tmp.as_file().set_permissions(permissions).map_err(|e| Error::io(tmp.path(), e))?;
        }
        tmp.as_file().sync_all().map_err(|e| Error::io(tmp.path(), e))?;
        tmp.persist(&path).map_err(|e| Error::io(&path, e.error))?;
        Ok(())
    }
}
