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
    let session = engine.session();
    let result = session.view_stream(&args.name).await?;
    super::emit_stream(config, result).await?;
    // system_tax's notes: the features its fit could not use.
    if args.name.eq_ignore_ascii_case("system_tax") {
        let (fit, _) = crate::decisions::tax_fit(&session).await?;
        if fit.excluded > 0 {
            config.note(format_args!(
                "note: {} shipped feature(s) in the window left out of the fit: actual or estimated weeks missing or not above 0",
                fit.excluded
            ));
        }
    }
    Ok(exit::OK)
}
