//! `debtlens batch JOBS.toml`: the scheduled analyses of a jobs file, for cron.

use std::path::PathBuf;

use clap::Args;

use crate::batch::{self, Jobs, Status};
use crate::config::Config;
use crate::error::{Error, Result, exit};
use crate::output::human_bytes;

#[derive(Debug, Args)]
pub struct BatchArgs {
    /// The jobs file (TOML): a list of [[job]] tables, each a view or SQL with a format and a path.
    #[arg(value_name = "JOBS.toml")]
    pub jobs: PathBuf,
    /// Check the jobs file and plan every query, running nothing and writing nothing.
    #[arg(long)]
    pub dry_run: bool,
}

pub async fn run(config: &Config, args: BatchArgs) -> Result<u8> {
    if config.output.is_some() || config.format_given {
        return Err(Error::Usage(
            "batch takes each job's format and path from the jobs file, not --format or --output".into(),
        ));
    }
    let jobs = Jobs::load(&args.jobs)?;
    let engine = config.engine().await?;
    if args.dry_run {
        batch::check(&engine, &jobs).await?;
        for job in &jobs.jobs {
            config.note(format_args!(
                "ok      {:<24} {:<8} {}",
                job.name,
                if matches!(job.query, batch::JobQuery::Optimize { .. }) {
                    "optimize".to_string()
                } else {
                    format!("{:?}", job.format).to_lowercase()
                },
                job.path
            ));
        }
        config.note(format_args!("{}: {} jobs checked; nothing run", jobs.file.display(), jobs.jobs.len()));
        return Ok(exit::OK);
    }
    let manifest = batch::run(&engine, &jobs, |job| match job.status {
        Status::Ok => config.note(format_args!(
            "ok      {:<24} {:>8} rows {:>10}  {:>6} ms  {}",
            job.name,
            job.rows.unwrap_or(0),
            human_bytes(job.bytes.unwrap_or(0)),
            job.duration_ms,
            job.detail.as_deref().unwrap_or(&job.path)
        )),
        Status::Failed => eprintln!("FAILED  {:<24} {}", job.name, job.error.as_deref().unwrap_or("")),
    })
    .await?;
    let manifest_path = &manifest.path;
    if manifest.failed.is_empty() {
        config.note(format_args!("{} jobs ok; manifest {}", manifest.jobs.len(), manifest_path.display()));
        Ok(exit::OK)
    } else {
        eprintln!(
            "debtlens: batch {}: {} of {} jobs failed: {}; manifest {}",
            jobs.file.display(),
            manifest.failed.len(),
            manifest.jobs.len(),
            manifest.failed.join(", "),
            manifest_path.display()
        );
        Ok(exit::RUNTIME)
    }
}
