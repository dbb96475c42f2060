//! `debtlens view NAME`: run one predefined view.

use clap::Args;

use crate::config::Config;
use crate::error::{Result, exit};

#[derive(Debug, Args)]
pub struct ViewArgs {
    /// The view to run (`debtlens views` lists them).
    pub name: String,
}

pub async fn run(config: &Config, args: ViewArgs) -> Result<u8> {
    let engine = config.engine().await?;
    let result = engine.session().view_stream(&args.name).await?;
    super::emit_stream(config, result).await?;
    Ok(exit::OK)
}
