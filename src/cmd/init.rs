//! `debtlens init [DIR]`: create an empty store.

use clap::Args;

use crate::config::Config;
use crate::error::{Result, exit};
use crate::store::{DEFAULT_DIR, Store};

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Where to create the store. Default: --data, DEBTLENS_DATA, or ./debtlens-data.
    pub dir: Option<String>,
}

pub async fn run(config: &Config, args: InitArgs) -> Result<u8> {
    let store = match args.dir {
        Some(dir) => Store::at(&dir)?,
        None => match config.store.local_dir() {
            Some(_) => config.store.clone(),
            None if matches!(config.store.location(), crate::store::Location::Url(_)) => config.store.clone(),
            None => Store::at(DEFAULT_DIR)?,
        },
    };
    store.create().await?;
    config.note(format_args!("created an empty store at {store} with tables features, incidents, capacity"));
    Ok(exit::OK)
}
