//! The store: one Delta table per folder (`features/`, `incidents/`, `capacity/`) under a
//! location that is a URL from the start, so that `s3://` works where a local path does. A
//! folder of plain Parquet files with the same columns is read too (read-only), and when the
//! user has no store at all, the sample store built into the binary stands in.

pub mod layout;
mod open;
mod s3;
mod sample_data;
mod write;

pub use s3::ObjectStores;
pub use write::{Optimized, Rewritten, Upserted, Vacuumed, planned_files};

use std::path::{Path, PathBuf};
use std::sync::Arc;

use datafusion::catalog::TableProvider;
use deltalake::{DeltaTable, DeltaTableBuilder, DeltaTableError};
use url::Url;

use crate::error::{Error, Result};
use crate::schema::Table;

/// The environment variable that names the store when `--data` is not given.
pub const DATA_ENV: &str = "DEBTLENS_DATA";
/// The folder of the rejected-rows table.
pub const REJECTED_DIR: &str = "_rejected";
/// The SQL name of the rejected-rows table, when the store has one.
pub const REJECTED_TABLE: &str = "rejected_rows";

/// The store used when neither `--data` nor the environment names one, if it exists.
pub const DEFAULT_DIR: &str = "debtlens-data";

/// A store's tables, opened: each with its SQL name, and the version each was read at.
pub struct OpenTables {
    pub tables: Vec<(&'static str, Arc<dyn TableProvider>)>,
    pub versions: Vec<(Table, Option<u64>)>,
    /// The bytes each table's data takes (its files, or its memory when held in memory); `None`
    /// where unknown.
    pub bytes: TableBytes,
}

/// Each table's SQL name with the bytes its data takes, where known.
pub type TableBytes = Vec<(&'static str, Option<u64>)>;

/// How a store's tables are opened for reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reading {
    /// Each table through its own provider (delta-rs's for a Delta table): in this process.
    Providers,
    /// Each table as a listing of Parquet files (a Delta table: its snapshot's data files), the
    /// form a plan can carry to a cluster's executors.
    Files,
}

/// Where a store lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A directory or object-store prefix, always ending in `/`.
    Url(Url),
    /// The small sample built into the binary.
    BuiltinSample,
    /// Empty in-memory tables that accept INSERT: the fixtures of the SQL logic tests.
    Scratch,
}

/// A store and how to reach its tables.
#[derive(Debug, Clone)]
pub struct Store {
    location: Location,
}

impl std::fmt::Display for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.location {
            Location::Url(url) if url.scheme() == "file" => match url.to_file_path() {
                Ok(p) => write!(f, "{}", p.display()),
                Err(()) => write!(f, "{url}"),
            },
            Location::Url(url) => write!(f, "{url}"),
            Location::BuiltinSample => write!(f, "<built-in sample>"),
            Location::Scratch => write!(f, "<scratch>"),
        }
    }
}

/// How the store was chosen, for the one line a user sees when it is not the one they named.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Flag,
    Env,
    DefaultDir,
    BuiltinSample,
}

impl Store {
    /// A store at a local path or URL (`file://`, `s3://bucket/prefix`).
    pub fn at(location: &str) -> Result<Self> {
        Ok(Self { location: Location::Url(parse_location(location)?) })
    }

    pub fn builtin_sample() -> Self {
        Self { location: Location::BuiltinSample }
    }

    pub fn scratch() -> Self {
        Self { location: Location::Scratch }
    }

    /// interfaces.md, "Finding the store": `--data`, then `DEBTLENS_DATA`, then
    /// `./debtlens-data` when it exists, then the built-in sample. (clap already folds the
    /// environment variable into `data`; `from_env` says whether it came from there.)
    pub fn find(data: Option<&str>, from_env: bool) -> Result<(Self, Origin)> {
        match data {
            Some(d) => Ok((Self::at(d)?, if from_env { Origin::Env } else { Origin::Flag })),
            None if Path::new(DEFAULT_DIR).is_dir() => Ok((Self::at(DEFAULT_DIR)?, Origin::DefaultDir)),
            None => Ok((Self::builtin_sample(), Origin::BuiltinSample)),
        }
    }

    pub fn location(&self) -> &Location {
        &self.location
    }

    /// The URL of one table's folder.
    pub fn table_url(&self, table: Table) -> Result<Url> {
        match &self.location {
            Location::Url(base) => {
                base.join(&format!("{}/", table.name())).map_err(|e| Error::Usage(format!("store {self}: {e}")))
            }
            _ => Err(Error::Usage(format!("the {self} store has no files"))),
        }
    }

    /// Refuses a store that a cluster's executors cannot read themselves: the built-in sample
    /// and the scratch tables live in this process.
    pub fn check_shared(&self, cluster: &crate::cluster::ClusterUrl) -> Result<()> {
        let why = match &self.location {
            // Executors read the same paths, or the same bucket with their own AWS environment.
            Location::Url(_) => return Ok(()),
            Location::BuiltinSample => {
                "the built-in sample lives in this process only; give a store on a disk every executor reads with \
                 --data DIR"
                    .to_string()
            }
            Location::Scratch => "scratch tables live in this process only".to_string(),
        };
        Err(Error::Usage(format!("--cluster {cluster}: {why}")))
    }

    /// The local directory of the store, when it has one.
    pub fn local_dir(&self) -> Option<PathBuf> {
        match &self.location {
            Location::Url(url) if url.scheme() == "file" => url.to_file_path().ok(),
            _ => None,
        }
    }

    /// A Delta table at `url`, loaded at its newest version.
    pub async fn open_delta(&self, url: Url) -> std::result::Result<DeltaTable, DeltaTableError> {
        DeltaTableBuilder::from_url(url)?.with_storage_options(self.storage_options()).load().await
    }

    /// A handle on a Delta table at `url` without reading its log (to create it, or to list it).
    pub(crate) fn delta_handle(&self, url: Url) -> std::result::Result<DeltaTable, DeltaTableError> {
        DeltaTableBuilder::from_url(url)?.with_storage_options(self.storage_options()).build()
    }

    /// Whether any Delta table has a commit newer than the version given for it (as `register`
    /// returned them). Lists each log from the known version on; reads no data.
    pub async fn changed_since(&self, known: &[(Table, Option<u64>)]) -> Result<bool> {
        for &(table, version) in known {
            let Some(version) = version else { continue };
            let delta = self.delta_handle(self.table_url(table)?)?;
            let latest = delta.log_store().get_latest_version(version as _).await?;
            if latest as u64 > version {
                return Ok(true);
            }
        }
        Ok(false)
    }
}

impl Store {
    /// A local table whose Delta log cannot be read (a commit file cut short by a full disk or a
    /// crash of another tool): what happened, that the data files are as they were, and what to
    /// do; not `debtlens init`, which refuses an existing store.
    pub fn log_unreadable(&self, table: Table, e: &dyn std::fmt::Display) -> Error {
        let log = self.local_dir().map(|d| d.join(table.name()).join("_delta_log"));
        let newest = log.as_ref().and_then(|log| {
            let mut commits: Vec<_> = std::fs::read_dir(log)
                .ok()?
                .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
                .filter(|n| n.ends_with(".json") && n.len() == 25)
                .collect();
            commits.sort();
            commits.pop()
        });
        let what = match newest {
            Some(name) => format!(
                "the newest commit, {}/_delta_log/{name}, may be a partial write: move it aside to read the table \
                 as of the commit before it (ingest its file again afterwards), or restore it from a backup",
                table.name()
            ),
            None => "restore the table's _delta_log folder from a backup".to_string(),
        };
        let cause = e.to_string();
        let cause = cause.lines().next().unwrap_or_default();
        Error::Store {
            store: self.to_string(),
            table: table.name(),
            message: format!("its Delta log cannot be read ({cause}); no data file was changed. {what}"),
        }
    }
}

/// A local path or a URL (`file://`, `s3://bucket/prefix`), as a URL of a directory (ending in
/// `/`).
pub fn parse_location(location: &str) -> Result<Url> {
    let mut url = if location.contains("://") {
        let url =
            Url::parse(location).map_err(|e| Error::Usage(format!("invalid store location `{location}`: {e}")))?;
        match url.scheme() {
            "file" => {}
            "s3" | "s3a" => {
                if url.host_str().is_none_or(str::is_empty) {
                    return Err(Error::Usage(format!("invalid store location `{location}`: no bucket")));
                }
                s3::register_handlers();
            }
            other => {
                return Err(Error::Usage(format!(
                    "store location `{location}`: `{other}://` is not supported; use a path, file:// or s3://bucket/prefix"
                )));
            }
        }
        url
    } else {
        let path = std::path::absolute(location).map_err(|e| Error::io(location, e))?;
        Url::from_directory_path(&path)
            .map_err(|()| Error::Usage(format!("invalid store path `{}`", path.display())))?
    };
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_are_directory_urls() {
        assert_eq!(parse_location("s3://bucket/debt").unwrap().as_str(), "s3://bucket/debt/");
        assert_eq!(parse_location("file:///tmp/x/").unwrap().as_str(), "file:///tmp/x/");
        let local = parse_location("some/dir").unwrap();
        assert!(local.as_str().starts_with("file:///") && local.as_str().ends_with("some/dir/"), "{local}");
    }

    #[test]
    fn only_file_and_s3_locations_are_accepted() {
        assert!(parse_location("gs://bucket/x").unwrap_err().to_string().contains("not supported"));
        assert!(parse_location("s3:///x").is_err());
    }

    #[test]
    fn table_urls_sit_under_the_store() {
        let store = Store::at("s3://bucket/debt").unwrap();
        assert_eq!(store.table_url(Table::Capacity).unwrap().as_str(), "s3://bucket/debt/capacity/");
    }
}
