//! Where results leave the program: stdout, a file written atomically, or a file appended to
//! (the shell's `\\o` for text formats). The CLI, the shell, batch and the report all write
//! through a `Destination`; a reader that goes away (`| head`) ends the output quietly.

use std::io::{BufWriter, Write};
use std::path::PathBuf;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::execution::SendableRecordBatchStream;

use super::{Format, WriteOptions, Written, write_stream, write_stream_to_file};
use crate::error::{Error, Result};

/// Where one result goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    Stdout,
    /// Replaced atomically: the file appears whole when the last row is in, or not at all.
    File(PathBuf),
    /// Appended to (text formats; a binary format replaces the file atomically instead).
    Append(PathBuf),
}

/// What reached a destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivered {
    pub written: Written,
    /// Bytes written, when the destination is a file.
    pub bytes: Option<u64>,
}

impl Destination {
    /// The destination of `--output`: the file, or stdout.
    pub fn of(output: Option<&std::path::Path>) -> Self {
        output.map_or(Destination::Stdout, |p| Destination::File(p.to_path_buf()))
    }

    /// True when rows land on a terminal a person reads.
    pub fn is_stdout(&self) -> bool {
        matches!(self, Destination::Stdout)
    }

    /// Writes a result as its batches arrive. `options` (rows shown, width) apply to stdout
    /// only; files get every row whole. A closed stdout is `Error::BrokenPipe`, which the
    /// binary treats as success.
    pub async fn write_stream(
        &self,
        format: Format,
        schema: SchemaRef,
        stream: SendableRecordBatchStream,
        options: WriteOptions,
    ) -> Result<Delivered> {
        match self {
            Destination::File(path) => {
                let (written, bytes) = write_stream_to_file(path, format, schema, stream).await?;
                Ok(Delivered { written, bytes: Some(bytes) })
            }
            Destination::Append(path) if format.is_binary() => {
                let (written, bytes) = write_stream_to_file(path, format, schema, stream).await?;
                Ok(Delivered { written, bytes: Some(bytes) })
            }
            Destination::Append(path) => {
                let file =
                    std::fs::OpenOptions::new().append(true).create(true).open(path).map_err(|e| Error::io(path, e))?;
                let before = file.metadata().map(|m| m.len()).unwrap_or(0);
                let mut out = BufWriter::new(file);
                let written = write_stream(format, schema, stream, &mut out, WriteOptions::default()).await?;
                out.flush().map_err(|e| Error::io(path, e))?;
                let after = out.get_ref().metadata().map(|m| m.len()).unwrap_or(before);
                Ok(Delivered { written, bytes: Some(after.saturating_sub(before)) })
            }
            Destination::Stdout => {
                let mut out = BufWriter::new(PipeWatch::new(std::io::stdout()));
                let written = match write_stream(format, schema, stream, &mut out, options).await {
                    Ok(written) => out.flush().map(|()| written).map_err(Error::from),
                    Err(e) => Err(e),
                };
                match written {
                    Ok(written) => Ok(Delivered { written, bytes: None }),
                    Err(_) if out.get_ref().closed() => Err(Error::BrokenPipe),
                    Err(e) => Err(e),
                }
            }
        }
    }

    /// Writes text made whole already (a report, an estimate): to stdout, or atomically to the
    /// file (appended for `Append`).
    pub fn write_text(&self, text: &str) -> Result<()> {
        match self {
            Destination::Stdout => {
                let mut out = PipeWatch::new(std::io::stdout().lock());
                match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
                    Ok(()) => Ok(()),
                    Err(_) if out.closed() => Err(Error::BrokenPipe),
                    Err(e) => Err(Error::io("<stdout>", e)),
                }
            }
            Destination::File(path) => super::write_file_atomically(path, |file| {
                file.write_all(text.as_bytes()).map_err(|e| Error::io(path, e))
            }),
            Destination::Append(path) => {
                let mut file =
                    std::fs::OpenOptions::new().append(true).create(true).open(path).map_err(|e| Error::io(path, e))?;
                file.write_all(text.as_bytes()).map_err(|e| Error::io(path, e))
            }
        }
    }
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
