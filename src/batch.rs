//! Scheduled batch runs: a jobs file (TOML) lists outputs, each a view, a query or the roadmap
//! forecast (`plan = { ... }`, `debtlens plan`'s flags as keys) with a format and a path, and
//! maintenance (`optimize = "features"`: compact tables, as `debtlens optimize`). Every job runs
//! even when another fails; each output is written atomically, so a dashboard never reads a
//! half-written file; a manifest records what each job did.
//!
//! The jobs file is checked as a whole before anything runs (unknown keys, missing paths,
//! unknown views, bad formats), with the line and column of each problem.

use std::collections::BTreeMap;
use std::io::Write;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Instant;

use chrono::{DateTime, SecondsFormat, Utc};
use clap::ValueEnum;
use serde::{Deserialize, Serialize};
use toml::Spanned;

use crate::engine::{Engine, Session};
use crate::error::{Error, Result};
use crate::output::{self, Destination, Format, WriteOptions};
use crate::roadmap::{self, PlanOptions};
use crate::sql::split_statements;
use crate::time::parse_as_of;
use crate::views;
use crate::window::{Window, WindowSettings};

/// The manifest's name when the jobs file names none: beside the jobs file.
pub const DEFAULT_MANIFEST: &str = "batch-manifest.json";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct JobsFile {
    manifest: Option<Spanned<String>>,
    as_of: Option<Spanned<String>>,
    window_days: Option<Spanned<u32>>,
    #[serde(default, rename = "job")]
    jobs: Vec<Spanned<JobEntry>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct JobEntry {
    name: Spanned<String>,
    view: Option<Spanned<String>>,
    sql: Option<Spanned<String>>,
    sql_file: Option<Spanned<String>>,
    plan: Option<Spanned<PlanJob>>,
    optimize: Option<Spanned<Tables>>,
    target_size: Option<Spanned<String>>,
    format: Option<Spanned<String>>,
    path: Option<Spanned<String>>,
    as_of: Option<Spanned<String>>,
    window_days: Option<Spanned<u32>>,
}

/// The tables of an `optimize` job: one name, a list, or `"all"`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Tables {
    One(String),
    Many(Vec<String>),
}

impl Tables {
    fn tables(&self) -> std::result::Result<Vec<crate::schema::Table>, String> {
        let names = match self {
            Tables::One(name) if name == "all" => return Ok(crate::schema::Table::ALL.to_vec()),
            Tables::One(name) => std::slice::from_ref(name),
            Tables::Many(names) => names.as_slice(),
        };
        if names.is_empty() {
            return Err("optimize: name at least one table, or \"all\"".into());
        }
        names.iter().map(|n| n.parse().map_err(|e: Error| format!("optimize: {e}"))).collect()
    }
}

/// A `plan = { ... }` job: `debtlens plan`'s flags as keys (all optional).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct PlanJob {
    team: Option<String>,
    start: Option<String>,
    trials: Option<usize>,
    seed: Option<u64>,
    #[serde(default)]
    paydown: Vec<String>,
    slots: Option<usize>,
    debt_share: Option<f64>,
    architecture_ratio: Option<f64>,
}

impl PlanJob {
    /// The options it gives, checked as the command line checks them.
    fn options(&self) -> std::result::Result<PlanOptions, String> {
        let defaults = PlanOptions::default();
        let options = PlanOptions {
            team: self.team.clone(),
            start: self.start.as_deref().map(roadmap::parse_day).transpose()?,
            trials: self.trials.unwrap_or(defaults.trials),
            seed: self.seed.unwrap_or(defaults.seed),
            paydown: self.paydown.iter().map(|p| roadmap::parse_paydown(p)).collect::<std::result::Result<_, _>>()?,
            slots: self.slots,
            debt_share: self.debt_share.unwrap_or(defaults.debt_share),
            architecture_ratio: self.architecture_ratio.unwrap_or(defaults.architecture_ratio),
        };
        options.check().map_err(|e| e.to_string())?;
        Ok(options)
    }
}

/// A checked jobs file, ready to run.
#[derive(Debug)]
pub struct Jobs {
    /// The jobs file, as the user named it (for messages).
    pub file: PathBuf,
    pub manifest: PathBuf,
    pub jobs: Vec<Job>,
}

/// One output to produce.
#[derive(Debug)]
pub struct Job {
    pub name: String,
    pub query: JobQuery,
    pub format: Format,
    /// The output path, relative paths already resolved against the jobs file's folder;
    /// `{date}` and `{as_of}` are expanded when the job runs.
    pub path: String,
    pub as_of: Option<DateTime<Utc>>,
    pub window_days: Option<u32>,
    /// Where the job's query is written in the jobs file (line, column), for errors.
    pub at: (usize, usize),
}

impl Job {
    /// The job's window: its own as_of and days where it gives them, else `defaults`.
    pub fn window(&self, defaults: WindowSettings) -> WindowSettings {
        WindowSettings { as_of: self.as_of.or(defaults.as_of), days: self.window_days.unwrap_or(defaults.days) }
    }
}

#[derive(Debug, Clone)]
pub enum JobQuery {
    View(String),
    Sql(String),
    /// The roadmap forecast (`debtlens plan`): one row per backlog item, or the nested JSON.
    Plan(PlanOptions),
    /// Compact tables (`debtlens optimize`); writes no output.
    Optimize {
        tables: Vec<crate::schema::Table>,
        target_size: Option<u64>,
    },
}

impl JobQuery {
    /// The statement the job runs; `None` for a plan.
    fn sql(&self) -> Option<String> {
        match self {
            JobQuery::View(name) => {
                Some(views::find(name).map_or_else(|| format!("SELECT * FROM {name}"), |v| v.query()))
            }
            JobQuery::Sql(sql) => Some(sql.clone()),
            JobQuery::Plan(_) | JobQuery::Optimize { .. } => None,
        }
    }
}

/// The line and column (1-based, columns in characters) of a byte offset.
fn position(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

impl Jobs {
    /// Reads and checks a jobs file.
    pub fn load(file: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(file).map_err(|e| Error::io(file, e))?;
        Self::parse(file, &text)
    }

    pub fn parse(file: &Path, text: &str) -> Result<Self> {
        let at = |span: Range<usize>, message: String| {
            let (line, column) = position(text, span.start);
            Error::Located { file: file.display().to_string(), line, column, message }
        };
        let parsed: JobsFile = toml::from_str(text).map_err(|e| {
            let message = e.message().trim_end().to_string();
            at(e.span().unwrap_or(0..0), message)
        })?;
        let dir = file.parent().map(Path::to_path_buf).unwrap_or_default();
        let resolve = |p: &str| -> PathBuf {
            let path = Path::new(p);
            if path.is_absolute() { path.to_path_buf() } else { dir.join(path) }
        };
        let as_of = |v: &Option<Spanned<String>>| -> Result<Option<DateTime<Utc>>> {
            v.as_ref().map(|s| parse_as_of(s.get_ref()).map_err(|e| at(s.span(), e.to_string()))).transpose()
        };
        let days = |v: &Option<Spanned<u32>>| -> Result<Option<u32>> {
            match v {
                Some(d) if !(1..=36_500).contains(d.get_ref()) => {
                    Err(at(d.span(), format!("window_days must be between 1 and 36500, not {}", d.get_ref())))
                }
                other => Ok(other.as_ref().map(|d| *d.get_ref())),
            }
        };
        let file_as_of = as_of(&parsed.as_of)?;
        let file_days = days(&parsed.window_days)?;
        if parsed.jobs.is_empty() {
            return Err(at(0..0, "no jobs: add a [[job]] table with a name, a view or sql, and a path".into()));
        }

        let mut jobs = Vec::with_capacity(parsed.jobs.len());
        let mut names: BTreeMap<String, ()> = BTreeMap::new();
        for entry in &parsed.jobs {
            let span = entry.span();
            let job = entry.get_ref();
            let name = job.name.get_ref().trim().to_string();
            if name.is_empty() {
                return Err(at(job.name.span(), "a job's name must not be empty".into()));
            }
            if names.insert(name.clone(), ()).is_some() {
                return Err(at(
                    job.name.span(),
                    format!("two jobs are named `{name}`: names identify jobs in the manifest"),
                ));
            }
            if let Some(target) = &job.target_size
                && job.optimize.is_none()
            {
                return Err(at(target.span(), format!("job `{name}`: target_size is a key of optimize jobs")));
            }
            if let Some(optimize) = &job.optimize {
                let others = [job.view.is_some(), job.sql.is_some(), job.sql_file.is_some(), job.plan.is_some()];
                if others.contains(&true) {
                    return Err(at(
                        span,
                        format!("job `{name}`: give exactly one of `view`, `sql`, `sql_file`, `plan` and `optimize`"),
                    ));
                }
                if let Some(key) = job.format.as_ref().map(|f| f.span()).or(job.path.as_ref().map(|p| p.span())) {
                    return Err(at(
                        key,
                        format!("job `{name}`: an optimize job writes no file: drop `format` and `path`"),
                    ));
                }
                let tables =
                    optimize.get_ref().tables().map_err(|m| at(optimize.span(), format!("job `{name}`: {m}")))?;
                let target_size = job
                    .target_size
                    .as_ref()
                    .map(|t| {
                        crate::numbers::parse_size(t.get_ref())
                            .map(|b| b as u64)
                            .map_err(|m| at(t.span(), format!("job `{name}`: target_size: {m}")))
                    })
                    .transpose()?;
                jobs.push(Job {
                    name,
                    query: JobQuery::Optimize { tables, target_size },
                    format: Format::Table,
                    path: String::new(),
                    as_of: None,
                    window_days: None,
                    at: position(text, optimize.span().start),
                });
                continue;
            }
            let Some(path_entry) = &job.path else {
                return Err(at(span, format!("job `{name}`: give the output's `path`")));
            };
            let (query, query_span) = match (&job.view, &job.sql, &job.sql_file, &job.plan) {
                (Some(view), None, None, None) => {
                    let Some(def) = views::find(view.get_ref()) else {
                        let unknown = Error::UnknownView {
                            name: view.get_ref().clone(),
                            suggestions: views::closest(view.get_ref()),
                        };
                        return Err(at(view.span(), format!("job `{name}`: {unknown}")));
                    };
                    (JobQuery::View(def.name.to_string()), view.span())
                }
                (None, Some(sql), None, None) => (JobQuery::Sql(sql.get_ref().clone()), sql.span()),
                (None, None, None, Some(plan)) => {
                    let options =
                        plan.get_ref().options().map_err(|m| at(plan.span(), format!("job `{name}`: plan: {m}")))?;
                    (JobQuery::Plan(options), plan.span())
                }
                (None, None, Some(sql_file), None) => {
                    let path = resolve(sql_file.get_ref());
                    let sql = std::fs::read_to_string(&path)
                        .map_err(|e| at(sql_file.span(), format!("job `{name}`: {}: {e}", path.display())))?;
                    (JobQuery::Sql(sql), sql_file.span())
                }
                _ => {
                    return Err(at(
                        span,
                        format!("job `{name}`: give exactly one of `view`, `sql`, `sql_file`, `plan` and `optimize`"),
                    ));
                }
            };
            if let JobQuery::Sql(sql) = &query {
                let statements = split_statements(sql).len();
                if statements != 1 {
                    return Err(at(
                        query_span,
                        format!("job `{name}`: a job runs one statement; this SQL holds {statements}"),
                    ));
                }
            }
            let path = path_entry.get_ref();
            check_template(path).map_err(|m| at(path_entry.span(), format!("job `{name}`: {m}")))?;
            let format = match &job.format {
                Some(f) => {
                    let format = Format::from_str(f.get_ref(), true).ok().filter(|f| *f != Format::Table);
                    format.ok_or_else(|| {
                        at(
                            f.span(),
                            format!(
                                "job `{name}`: unknown format `{}`: use csv, tsv, json, ndjson, markdown, parquet or arrow",
                                f.get_ref()
                            ),
                        )
                    })?
                }
                None => Format::from_extension(Path::new(path)).ok_or_else(|| {
                    at(
                        path_entry.span(),
                        format!("job `{name}`: give `format`, or a path ending in .csv, .json, .parquet, ..."),
                    )
                })?,
            };
            jobs.push(Job {
                name,
                query,
                format,
                path: resolve(path).to_string_lossy().into_owned(),
                as_of: as_of(&job.as_of)?.or(file_as_of),
                window_days: days(&job.window_days)?.or(file_days),
                at: position(text, query_span.start),
            });
        }
        let manifest = match &parsed.manifest {
            Some(m) => {
                check_template(m.get_ref()).map_err(|msg| at(m.span(), format!("manifest: {msg}")))?;
                resolve(m.get_ref())
            }
            None => dir.join(DEFAULT_MANIFEST),
        };
        Ok(Self { file: file.to_path_buf(), manifest, jobs })
    }
}

/// Paths may hold `{date}` (today, UTC) and `{as_of}` (the end of the job's window); any other
/// brace is a mistake worth reporting before a run rather than a file named `{dtae}`.
fn check_template(path: &str) -> std::result::Result<(), String> {
    if path.trim().is_empty() {
        return Err("the path is empty".into());
    }
    let mut rest = path;
    while let Some(open) = rest.find('{') {
        let Some(close) = rest[open..].find('}') else {
            return Err(format!("unclosed `{{` in path `{path}`"));
        };
        let key = &rest[open + 1..open + close];
        if key != "date" && key != "as_of" {
            return Err(format!("unknown placeholder `{{{key}}}` in path `{path}`: use {{date}} or {{as_of}}"));
        }
        rest = &rest[open + close + 1..];
    }
    if rest.contains('}') {
        return Err(format!("unmatched `}}` in path `{path}`"));
    }
    Ok(())
}

fn expand(template: &str, today: &str, as_of: Option<&str>) -> String {
    let path = template.replace("{date}", today);
    match as_of {
        Some(as_of) => path.replace("{as_of}", as_of),
        None => path,
    }
}

/// What the manifest says about one job.
#[derive(Debug, Clone, Serialize)]
pub struct JobReport {
    pub name: String,
    pub status: Status,
    pub path: String,
    pub format: String,
    pub rows: Option<usize>,
    pub bytes: Option<u64>,
    pub window: Option<WindowReport>,
    pub duration_ms: u64,
    pub error: Option<String>,
    /// What an optimize job did to each table, one line each.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Failed,
}

#[derive(Debug, Clone, Serialize)]
pub struct WindowReport {
    pub start: String,
    pub as_of: String,
    pub days: u32,
}

impl From<Window> for WindowReport {
    fn from(w: Window) -> Self {
        Self {
            start: w.start().to_rfc3339_opts(SecondsFormat::Secs, true),
            as_of: w.as_of.to_rfc3339_opts(SecondsFormat::Secs, true),
            days: w.days,
        }
    }
}

/// The manifest of one run.
#[derive(Debug, Clone, Serialize)]
pub struct Manifest {
    /// Where the manifest was written.
    #[serde(skip)]
    pub path: PathBuf,
    pub debtlens_version: &'static str,
    pub jobs_file: String,
    pub store: String,
    /// The Delta version each table was read at; null for plain Parquet and the built-in sample.
    pub tables: BTreeMap<&'static str, Option<u64>>,
    pub started_at: String,
    pub finished_at: String,
    pub status: Status,
    pub failed: Vec<String>,
    pub jobs: Vec<JobReport>,
}

/// Runs every job over one engine (one snapshot of the store), writing each output atomically,
/// then the manifest. A failed job is recorded and the run goes on.
pub async fn run(engine: &Engine, jobs: &Jobs, mut progress: impl FnMut(&JobReport)) -> Result<Manifest> {
    let started_at = Utc::now();
    let today = started_at.format("%Y-%m-%d").to_string();
    let defaults = engine.default_window();
    let mut reports = Vec::with_capacity(jobs.jobs.len());
    for job in &jobs.jobs {
        let clock = Instant::now();
        // Each job is a session of its own: its window is a value, and nothing it sets reaches
        // the next job or anyone else using the engine.
        let session = engine.session_with(job.window(defaults));
        let mut report = JobReport {
            name: job.name.clone(),
            status: Status::Ok,
            path: job.path.clone(),
            format: format!("{:?}", job.format).to_lowercase(),
            rows: None,
            bytes: None,
            window: None,
            duration_ms: 0,
            error: None,
            detail: None,
        };
        if let Err(e) = run_job(&session, job, &today, &mut report).await {
            report.status = Status::Failed;
            report.error = Some(e.to_string());
        }
        report.duration_ms = clock.elapsed().as_millis() as u64;
        progress(&report);
        reports.push(report);
    }

    let failed: Vec<String> = reports.iter().filter(|r| r.status == Status::Failed).map(|r| r.name.clone()).collect();
    let path = PathBuf::from(expand(&jobs.manifest.to_string_lossy(), &today, None));
    let manifest = Manifest {
        path: path.clone(),
        debtlens_version: env!("CARGO_PKG_VERSION"),
        jobs_file: jobs.file.display().to_string(),
        store: engine.store().to_string(),
        tables: engine.table_versions().into_iter().map(|(t, v)| (t.name(), v)).collect(),
        started_at: started_at.to_rfc3339_opts(SecondsFormat::Millis, true),
        finished_at: Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true),
        status: if failed.is_empty() { Status::Ok } else { Status::Failed },
        failed,
        jobs: reports,
    };
    create_parent(&path)?;
    output::write_file_atomically(&path, |file| {
        let mut out = std::io::BufWriter::new(file);
        serde_json::to_writer_pretty(&mut out, &manifest).map_err(std::io::Error::other)?;
        out.write_all(b"\n")?;
        out.flush()?;
        Ok(())
    })?;
    Ok(manifest)
}

async fn run_job(session: &Session, job: &Job, today: &str, report: &mut JobReport) -> Result<()> {
    if let JobQuery::Optimize { tables, target_size } = &job.query {
        report.format = "optimize".into();
        let mut lines = Vec::with_capacity(tables.len());
        let mut rows = 0;
        let mut bytes = 0;
        for table in tables {
            let line = match session.engine().store().optimize(*table, *target_size).await? {
                None => "no Delta table in this store".to_string(),
                Some(optimized) => {
                    if let Some(r) = optimized.rewritten {
                        rows += r.rows as usize;
                        bytes += r.bytes;
                    }
                    crate::cmd::optimize::summary(&optimized)
                }
            };
            lines.push(format!("{}: {line}", table.name()));
        }
        (report.rows, report.bytes, report.detail) = (Some(rows), Some(bytes), Some(lines.join("; ")));
        return Ok(());
    }
    let Some(sql) = job.query.sql() else {
        return run_plan(session, job, today, report).await;
    };
    let result = session.execute_stream(&sql).await?;
    report.window = result.window.map(WindowReport::from);
    let as_of = if job.path.contains("{as_of}") {
        Some(session.window().await?.as_of.format("%Y-%m-%d").to_string())
    } else {
        None
    };
    let path = PathBuf::from(expand(&job.path, today, as_of.as_deref()));
    report.path = path.display().to_string();
    create_parent(&path)?;
    // Written as the batches come; the path changes only once the last one is in.
    let delivered =
        Destination::File(path).write_stream(job.format, result.schema, result.stream, WriteOptions::default()).await?;
    report.rows = Some(delivered.written.total);
    report.bytes = delivered.bytes;
    Ok(())
}

/// A plan job: the forecast with the job's options, its rows in the job's format (JSON nested
/// per team, as `debtlens plan --format json` writes it).
async fn run_plan(session: &Session, job: &Job, today: &str, report: &mut JobReport) -> Result<()> {
    let JobQuery::Plan(options) = &job.query else { unreachable!("run_plan is called for plan jobs") };
    let roadmap = roadmap::plan(session, options).await?;
    report.window = roadmap.window.map(WindowReport::from);
    let as_of = roadmap.window.map(|w| w.as_of.format("%Y-%m-%d").to_string());
    let path = PathBuf::from(expand(&job.path, today, as_of.as_deref()));
    report.path = path.display().to_string();
    create_parent(&path)?;
    let destination = Destination::File(path.clone());
    report.rows = Some(roadmap.teams.iter().map(|t| t.items.len()).sum());
    if job.format == Format::Json {
        let mut text = serde_json::to_string_pretty(&roadmap).map_err(|e| Error::Internal(format!("JSON: {e}")))?;
        text.push('\n');
        destination.write_text(&text)?;
        report.bytes = Some(text.len() as u64);
    } else {
        let rows = roadmap.rows()?.into_stream();
        let delivered = destination.write_stream(job.format, rows.schema, rows.stream, WriteOptions::default()).await?;
        report.bytes = delivered.bytes;
    }
    Ok(())
}

fn create_parent(path: &Path) -> Result<()> {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e)),
        _ => Ok(()),
    }
}

/// Plans every job without running it, so `--dry-run` finds bad SQL. Returns the first problem
/// with the position of the job's query in the jobs file.
pub async fn check(engine: &Engine, jobs: &Jobs) -> Result<()> {
    let defaults = engine.default_window();
    for job in &jobs.jobs {
        // A plan job's options were checked with the file; it has no statement to plan.
        let Some(sql) = job.query.sql() else { continue };
        engine.session_with(job.window(defaults)).plan(&sql).await.map_err(|e| Error::Located {
            file: jobs.file.display().to_string(),
            line: job.at.0,
            column: job.at.1,
            message: format!("job `{}`: {e}", job.name),
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Jobs> {
        Jobs::parse(Path::new("dir/jobs.toml"), text)
    }

    fn located(e: Error) -> (usize, usize, String) {
        match e {
            Error::Located { line, column, message, .. } => (line, column, message),
            other => panic!("expected a located error, got {other:?}"),
        }
    }

    #[test]
    fn a_good_file_resolves_paths_formats_and_windows() {
        let jobs = parse(
            r#"
as_of = "2026-10-31"
[[job]]
name = "slowdown"
view = "slowdown_by_system"
path = "out/{date}/slowdown.csv"

[[job]]
name = "sev1"
sql = "SELECT count(*) AS n FROM incidents WHERE severity = 'sev1'"
format = "JSON"
path = "/abs/sev1.out"
window_days = 30
"#,
        )
        .unwrap();
        assert_eq!(jobs.manifest, Path::new("dir").join(DEFAULT_MANIFEST));
        assert_eq!(jobs.jobs.len(), 2);
        assert_eq!(jobs.jobs[0].format, Format::Csv);
        assert_eq!(jobs.jobs[0].path, "dir/out/{date}/slowdown.csv");
        assert_eq!(jobs.jobs[0].window_days, None);
        assert_eq!(jobs.jobs[1].format, Format::Json);
        assert_eq!(jobs.jobs[1].path, "/abs/sev1.out");
        assert_eq!(jobs.jobs[1].window_days, Some(30));
        assert_eq!(jobs.jobs[1].as_of, jobs.jobs[0].as_of);
        assert_eq!(jobs.jobs[1].at, (10, 7));
    }

    #[test]
    fn mistakes_are_reported_where_they_are() {
        let (line, column, message) = located(
            parse("[[job]]\nname = \"a\"\nview = \"slowdown_by_system\"\npath = \"a.csv\"\ncolour = 1\n").unwrap_err(),
        );
        assert_eq!((line, column), (5, 1));
        assert!(message.contains("unknown field `colour`"), "{message}");

        let (line, _, message) = located(parse("[[job]]\nname = \"a\"\nview = \"slowdown_by_system\"\n").unwrap_err());
        assert_eq!(line, 1);
        assert!(message.contains("job `a`: give the output's `path`"), "{message}");

        let (line, column, message) =
            located(parse("[[job]]\nname = \"a\"\nview = \"slowdwn_by_system\"\npath = \"a.csv\"\n").unwrap_err());
        assert_eq!((line, column), (3, 8));
        assert!(message.contains("unknown view `slowdwn_by_system`; did you mean `slowdown_by_system`"), "{message}");

        let (line, _, message) = located(parse("[[job]]\nname = \"a\"\npath = \"a.csv\"\n").unwrap_err());
        assert_eq!(line, 1);
        assert!(message.contains("exactly one of `view`, `sql`, `sql_file`, `plan` and `optimize`"), "{message}");

        let (_, _, message) =
            located(parse("[[job]]\nname = \"a\"\nview = \"delay_by_reason\"\npath = \"a.txt\"\n").unwrap_err());
        assert!(message.contains("give `format`"), "{message}");

        let (_, _, message) = located(
            parse("[[job]]\nname = \"a\"\nview = \"delay_by_reason\"\npath = \"a.csv\"\nformat = \"table\"\n")
                .unwrap_err(),
        );
        assert!(message.contains("unknown format `table`"), "{message}");

        let (_, _, message) =
            located(parse("[[job]]\nname = \"a\"\nview = \"delay_by_reason\"\npath = \"{dtae}/a.csv\"\n").unwrap_err());
        assert!(message.contains("unknown placeholder `{dtae}`"), "{message}");

        let (line, _, message) =
            located(parse("[[job]]\nname = \"a\"\nsql = \"SELECT 1; SELECT 2\"\npath = \"a.csv\"\n").unwrap_err());
        assert_eq!(line, 3);
        assert!(message.contains("holds 2"), "{message}");

        let (line, _, message) = located(
            parse("[[job]]\nname = \"a\"\nsql = \"SELECT 1\"\npath = \"a.csv\"\n[[job]]\nname = \"a\"\nsql = \"SELECT 2\"\npath = \"b.csv\"\n")
                .unwrap_err(),
        );
        assert_eq!(line, 6);
        assert!(message.contains("two jobs are named `a`"), "{message}");

        let (line, column, message) = located(parse("[[job]\nname = 1").unwrap_err());
        assert_eq!((line, column), (1, 7));
        assert!(!message.is_empty());

        let (_, _, message) = located(parse("").unwrap_err());
        assert!(message.contains("no jobs"), "{message}");
    }

    #[test]
    fn templates_expand_date_and_as_of() {
        assert_eq!(
            expand("out/{date}/x-{as_of}.csv", "2026-11-25", Some("2026-10-31")),
            "out/2026-11-25/x-2026-10-31.csv"
        );
        assert!(check_template("a{b").is_err());
        assert!(check_template("a}b").is_err());
        assert!(check_template("{as_of}/{date}.csv").is_ok());
    }

    #[test]
    fn positions_count_characters() {
        assert_eq!(position("ab\nçd", 5), (2, 2));
        assert_eq!(position("x", 0), (1, 1));
    }

    /// A shell's `\\set` on the same engine while a batch runs: the batch's jobs keep their own
    /// windows, and the shell keeps its own.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_session_changing_its_window_does_not_reach_a_batch_beside_it() {
        let dir = tempfile::tempdir().unwrap();
        let mut text = String::from("as_of = \"2026-10-31\"\n");
        for i in 0..12 {
            let days = if i % 2 == 0 { "" } else { "window_days = 30\n" };
            text.push_str(&format!(
                "[[job]]\nname = \"w{i}\"\nsql = \"SELECT window_days() AS d, CAST(window_end() AS VARCHAR) AS e\"\npath = \"w{i}.csv\"\n{days}"
            ));
        }
        let jobs = Jobs::parse(&dir.path().join("jobs.toml"), &text).unwrap();
        let engine = Engine::open(crate::Store::builtin_sample(), Default::default()).await.unwrap();
        let mut shell = engine.session();
        let changing = async {
            for i in 0..40 {
                shell.set("as_of", if i % 2 == 0 { "2026-01-31" } else { "2025-06-30" }).unwrap();
                shell.set("window_days", &(7 + i).to_string()).unwrap();
                let r = shell.execute("SELECT window_days() AS d").await.unwrap();
                let d = r.batches[0]
                    .column(0)
                    .as_any()
                    .downcast_ref::<datafusion::arrow::array::Int64Array>()
                    .unwrap()
                    .value(0);
                assert_eq!(d, 7 + i as i64, "the shell sees its own window");
            }
        };
        let (manifest, ()) = tokio::join!(run(&engine, &jobs, |_| {}), changing);
        let manifest = manifest.unwrap();
        assert!(manifest.failed.is_empty(), "{:?}", manifest.failed);
        for (i, job) in manifest.jobs.iter().enumerate() {
            let days = if i % 2 == 0 { 90 } else { 30 };
            let out = std::fs::read_to_string(dir.path().join(format!("w{i}.csv"))).unwrap();
            assert_eq!(out, format!("d,e\n{days},2026-10-31T23:59:59.999999Z\n"), "job {}", job.name);
            assert_eq!(job.window.as_ref().map(|w| w.days), Some(days));
        }
        assert_eq!(engine.session().settings(), crate::window::WindowSettings::default(), "defaults unchanged");
    }
}
