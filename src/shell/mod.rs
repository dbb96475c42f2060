//! The interactive SQL shell (interfaces.md, "The shell"): the same engine, views, window and
//! output writers as the CLI, behind a line editor with history, completion and highlighting.
//! When stdin is not a terminal it reads statements to the end without prompting, so
//! `debtlens shell < script.sql` works in scripts.

pub mod commands;
pub mod helper;

use std::fs::File;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use datafusion::arrow::array::{RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use rustyline::error::ReadlineError;
use rustyline::history::DefaultHistory;
use rustyline::{Config as EditorConfig, Editor};

use self::commands::{Meta, Setting};
use self::helper::{Catalog, ShellHelper};
use crate::engine::{QueryResult, Ran, Session};
use crate::error::{Error, Result};
use crate::output::{self, Destination, Format, WriteOptions};
use crate::schema::Table;
use crate::sql::{is_complete, split_statements};
use crate::views::{self, VIEWS};

/// How deep `\i` may nest before the shell refuses (a file that includes itself).
const MAX_INCLUDE_DEPTH: usize = 16;

/// What a line or a statement did to the session.
#[derive(Debug, PartialEq, Eq)]
enum Flow {
    Continue,
    Quit,
}

/// The state of one shell: its engine session (which owns the window), format and output.
pub struct Shell {
    session: Session,
    format: Format,
    /// The screen, or `\o FILE`: text formats append each result; binary formats replace the
    /// file.
    target: Destination,
    timing: bool,
    quiet: bool,
    max_rows: Option<usize>,
    /// Statements that failed, for the exit code of a script.
    failures: usize,
    interactive: bool,
    depth: usize,
}

impl Shell {
    pub fn new(session: Session, format: Format, max_rows: Option<usize>, quiet: bool, interactive: bool) -> Self {
        Self {
            session,
            format,
            target: Destination::Stdout,
            timing: false,
            quiet,
            max_rows,
            failures: 0,
            interactive,
            depth: 0,
        }
    }

    pub fn failures(&self) -> usize {
        self.failures
    }

    fn note(&self, message: impl std::fmt::Display) {
        if !self.quiet {
            eprintln!("{message}");
        }
    }

    /// Runs a whole text (a script, `-c`, `\i`): statements end with `;`, a backslash command
    /// takes its line. Failures are reported with the origin and line, and the text goes on.
    pub async fn run_text(&mut self, origin: &str, text: &str) -> Result<bool> {
        let mut buffer = String::new();
        let mut first_line = 0;
        let mut index = 0;
        for (n, line) in text.lines().enumerate() {
            if buffer.trim().is_empty() && line.trim_start().starts_with('\\') {
                buffer.clear();
                if self.meta_line(line, origin, n + 1).await? == Flow::Quit {
                    return Ok(false);
                }
                continue;
            }
            if buffer.trim().is_empty() {
                buffer.clear();
                first_line = n + 1;
            }
            buffer.push_str(line);
            buffer.push('\n');
            if is_complete(&buffer) {
                for (offset, statement) in split_statements(&buffer) {
                    index += 1;
                    self.statement(statement, Some((origin, index, first_line + offset - 1))).await;
                }
                buffer.clear();
            }
        }
        for (offset, statement) in split_statements(&buffer) {
            index += 1;
            self.statement(statement, Some((origin, index, first_line + offset - 1))).await;
        }
        Ok(true)
    }

    async fn meta_line(&mut self, line: &str, origin: &str, number: usize) -> Result<Flow> {
        match commands::parse(line) {
            Ok(meta) => match self.meta(meta).await {
                Ok(flow) => Ok(flow),
                Err(e) => {
                    self.failures += 1;
                    eprintln!("error: {origin}, line {number}: {e}");
                    Ok(Flow::Continue)
                }
            },
            Err(message) => {
                self.failures += 1;
                eprintln!("error: {origin}, line {number}: {message}");
                Ok(Flow::Continue)
            }
        }
    }

    /// Runs one statement and shows its result; a failure is printed and counted. Ctrl-C
    /// cancels it when the shell is interactive.
    async fn statement(&mut self, sql: &str, place: Option<(&str, usize, usize)>) {
        let started = Instant::now();
        let outcome = if self.interactive {
            tokio::select! {
                r = self.run_and_show(sql, started) => Some(r),
                _ = tokio::signal::ctrl_c() => None,
            }
        } else {
            Some(self.run_and_show(sql, started).await)
        };
        let result = match outcome {
            None => {
                self.failures += 1;
                eprintln!("cancelled after {:.1} s", started.elapsed().as_secs_f64());
                return;
            }
            Some(r) => r,
        };
        if let Err(e) = result {
            if e.is_broken_pipe() {
                return;
            }
            self.failures += 1;
            let e = match place {
                Some((origin, index, line)) if !self.interactive => {
                    Error::Statement { origin: origin.to_string(), index, line, source: Box::new(e) }
                }
                _ => e,
            };
            eprintln!("error: {e}");
        }
    }

    /// Runs a statement in the session (a window setting changes this shell's window only)
    /// and writes its rows to the screen or the `\o` file as they come, then the row count.
    async fn run_and_show(&mut self, sql: &str, started: Instant) -> Result<()> {
        let result = match self.session.run(sql).await? {
            Ran::Set(window) => {
                self.note(window);
                return Ok(());
            }
            Ran::Rows(result) => result,
        };
        if self.target == Destination::Stdout && self.format.is_binary() {
            return Err(Error::Usage(format!("{:?} output is binary: send it to a file with \\o FILE", self.format)));
        }
        let options = WriteOptions { max_rows: self.max_rows, max_width: output::terminal_width() };
        let delivered = self.target.write_stream(self.format, result.schema, result.stream, options).await?;
        self.count_note(delivered.written.shown, delivered.written.total, started.elapsed());
        Ok(())
    }

    /// The row count (and time) after a result.
    fn count_note(&self, shown: usize, rows: usize, elapsed: Duration) {
        let mut note = if shown < rows {
            format!("({shown} of {rows} rows shown; \\o FILE writes them all)")
        } else {
            format!("({rows} {})", if rows == 1 { "row" } else { "rows" })
        };
        if let Destination::Append(path) | Destination::File(path) = &self.target {
            note.push_str(&format!(" written to {}", path.display()));
        }
        if self.timing {
            note.push_str(&format!("  Time: {:.3} ms", elapsed.as_secs_f64() * 1000.0));
        }
        self.note(note);
    }

    async fn meta(&mut self, meta: Meta) -> Result<Flow> {
        match meta {
            Meta::Help => Destination::Stdout.write_text(&commands::help())?,
            Meta::Quit => return Ok(Flow::Quit),
            Meta::Describe(None) => self.show_rows(&["name", "kind", "description"], self.relations()).await?,
            Meta::Describe(Some(name)) => {
                let rows = self.columns(&name).await?;
                self.show_rows(&["column", "type", "nullable"], rows).await?;
            }
            Meta::Views => {
                let rows = VIEWS.iter().map(|v| vec![v.name.to_string(), v.description().to_string()]).collect();
                self.show_rows(&["view", "description"], rows).await?;
            }
            Meta::Timing(on) => {
                self.timing = on.unwrap_or(!self.timing);
                eprintln!("Timing is {}.", if self.timing { "on" } else { "off" });
            }
            Meta::Format(None) => eprintln!("format: {}", format!("{:?}", self.format).to_lowercase()),
            Meta::Format(Some(format)) => {
                self.format = format;
                eprintln!("format: {}", format!("{format:?}").to_lowercase());
            }
            Meta::Output(None) => {
                self.target = Destination::Stdout;
                eprintln!("results go to the screen");
            }
            Meta::Output(Some(path)) => {
                // Start the file afresh, as psql does; each result then appends.
                File::create(&path).map_err(|e| Error::io(&path, e))?;
                eprintln!("results go to {}", path.display());
                self.target = Destination::Append(path);
            }
            Meta::Include(path) => {
                if self.depth >= MAX_INCLUDE_DEPTH {
                    return Err(Error::Usage(format!("\\i {}: included files nest too deep", path.display())));
                }
                let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
                self.depth += 1;
                let interactive = std::mem::replace(&mut self.interactive, false);
                let go_on = Box::pin(self.run_text(&path.display().to_string(), &text)).await;
                self.interactive = interactive;
                self.depth -= 1;
                if !go_on? {
                    return Ok(Flow::Quit);
                }
            }
            Meta::Set(None) => {
                let window = self.session.window().await?;
                eprintln!("{window}");
            }
            Meta::Set(Some(setting)) => {
                // The same settings as `SET debtlens.as_of = ...`, for this shell's session only.
                match setting {
                    Setting::AsOf(None) => self.session.reset(Some("as_of"))?,
                    Setting::AsOf(Some(date)) => self.session.set("as_of", &date)?,
                    Setting::WindowDays(days) => self.session.set("window_days", &days.to_string())?,
                }
                let window = self.session.window().await?;
                eprintln!("{window}");
            }
        }
        Ok(Flow::Continue)
    }

    /// The tables and views of `\d`.
    fn relations(&self) -> Vec<Vec<String>> {
        let tables = Table::ALL.iter().map(|t| vec![t.name().to_string(), "table".into(), t.description().to_string()]);
        let rejected = std::iter::once(vec![
            crate::store::REJECTED_TABLE.to_string(),
            "table".into(),
            "rows ingest refused, with the file, line and reason".into(),
        ]);
        let views = VIEWS.iter().map(|v| vec![v.name.to_string(), "view".into(), v.description().to_string()]);
        tables.chain(rejected).chain(views).collect()
    }

    /// The columns of `\d NAME`.
    async fn columns(&self, name: &str) -> Result<Vec<Vec<String>>> {
        let Some(schema) = self.session.relation_schema(name).await? else {
            let names = self.relations().into_iter().map(|r| r[0].clone()).collect::<Vec<_>>();
            let close = views::closest_names(name, names.iter().map(String::as_str));
            let hint = if close.is_empty() { String::new() } else { format!("; did you mean {}?", close.join(" or ")) };
            return Err(Error::Usage(format!("no table or view `{name}`{hint}")));
        };
        Ok(schema
            .fields()
            .iter()
            .map(|f| {
                vec![f.name().clone(), type_name(f.data_type()), if f.is_nullable() { "yes" } else { "no" }.into()]
            })
            .collect())
    }

    /// A backslash command's answer, on the screen (as psql, whatever `\\o` says).
    async fn show_rows(&self, columns: &[&str], rows: Vec<Vec<String>>) -> Result<()> {
        let schema =
            Arc::new(Schema::new(columns.iter().map(|c| Field::new(*c, DataType::Utf8, false)).collect::<Vec<_>>()));
        let arrays = (0..columns.len())
            .map(|i| Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r[i].as_str()))) as _)
            .collect();
        let batch = RecordBatch::try_new(Arc::clone(&schema), arrays)?;
        let options = WriteOptions { max_rows: None, max_width: output::terminal_width() };
        let format = if self.format.is_binary() { Format::Table } else { self.format };
        let result = QueryResult { schema, batches: vec![batch], window: None }.into_stream();
        Destination::Stdout.write_stream(format, result.schema, result.stream, options).await?;
        Ok(())
    }

    /// The catalog completion offers: every table and view with its columns.
    async fn catalog(&self) -> Catalog {
        let mut catalog = Catalog::default();
        for name in Table::ALL
            .iter()
            .map(|t| t.name())
            .chain([crate::store::REJECTED_TABLE])
            .chain(VIEWS.iter().map(|v| v.name))
        {
            if let Ok(Some(schema)) = self.session.relation_schema(name).await {
                catalog.columns.insert(name.to_string(), schema.fields().iter().map(|f| f.name().clone()).collect());
            }
        }
        catalog
    }
}

/// A column type as people say it.
fn type_name(t: &DataType) -> String {
    match t {
        DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8 => "text".into(),
        DataType::Int64 => "bigint".into(),
        DataType::Int32 => "integer".into(),
        DataType::Float64 => "double".into(),
        DataType::Boolean => "boolean".into(),
        DataType::Date32 => "date".into(),
        DataType::Timestamp(_, Some(_)) => "timestamp with time zone".into(),
        DataType::Timestamp(_, None) => "timestamp".into(),
        DataType::List(f) | DataType::LargeList(f) => format!("list of {}", type_name(f.data_type())),
        other => other.to_string(),
    }
}

/// Where the history lives: `$XDG_STATE_HOME/debtlens/history`, else
/// `~/.local/state/debtlens/history` (`DEBTLENS_HISTORY` overrides both).
pub fn history_path() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("DEBTLENS_HISTORY") {
        return Some(PathBuf::from(path));
    }
    let state = std::env::var_os("XDG_STATE_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".local").join("state")))?;
    Some(state.join("debtlens").join("history"))
}

/// The interactive loop: prompt, read a statement or command, run it, until `\q` or Ctrl-D.
pub async fn interactive(shell: &mut Shell) -> Result<()> {
    let colour = std::io::stdout().is_terminal()
        && std::env::var_os("NO_COLOR").is_none()
        && std::env::var("TERM").map_or(true, |t| t != "dumb");
    let catalog = shell.catalog().await;
    let terminal = |e: ReadlineError| Error::Usage(format!("cannot use the terminal: {e}"));
    let config = EditorConfig::builder().auto_add_history(false).max_history_size(10_000).map_err(terminal)?.build();
    let mut editor: Editor<ShellHelper, DefaultHistory> = Editor::with_config(config).map_err(terminal)?;
    editor.set_helper(Some(ShellHelper::new(catalog, colour)));
    let history = history_path();
    if let Some(path) = &history {
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let _ = editor.load_history(path);
    }
    eprintln!(
        "debtlens {} shell on {}. Statements end with `;`; \\? for help, \\q to quit.",
        env!("CARGO_PKG_VERSION"),
        shell.session.engine().store()
    );
    match shell.session.window().await {
        Ok(window) => eprintln!("{window}"),
        Err(e) => eprintln!("error: {e}"),
    }
    loop {
        let input = match editor.readline("debtlens> ") {
            Ok(input) => input,
            // Ctrl-C at the prompt clears the line (the editor already did); Ctrl-D leaves.
            Err(ReadlineError::Interrupted) => continue,
            Err(ReadlineError::Eof) => break,
            Err(e) => return Err(Error::Usage(format!("cannot read the terminal: {e}"))),
        };
        let trimmed = input.trim();
        if trimmed.is_empty() {
            continue;
        }
        let _ = editor.add_history_entry(trimmed);
        if let Some(path) = &history {
            let _ = editor.append_history(path);
        }
        if matches!(trimmed, "exit" | "quit") {
            break;
        }
        if trimmed.starts_with('\\') {
            match commands::parse(trimmed) {
                Ok(meta) => match shell.meta(meta).await {
                    Ok(Flow::Quit) => break,
                    Ok(Flow::Continue) => {}
                    Err(e) => eprintln!("error: {e}"),
                },
                Err(message) => eprintln!("error: {message}"),
            }
            continue;
        }
        for (_, statement) in split_statements(trimmed) {
            shell.statement(statement, None).await;
        }
    }
    Ok(())
}
