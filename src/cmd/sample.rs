//! `debtlens sample --out DIR`: write a generated store, as Delta tables or plain Parquet.

use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::Args;
use datafusion::arrow::array::RecordBatch;
use datafusion::parquet::arrow::ArrowWriter;

use crate::config::Config;
use crate::error::{Error, Result, exit};
use crate::output;
use crate::sample::{SampleSpec, generate};
use crate::schema::Table;
use crate::store::{Store, layout};

#[derive(Debug, Args)]
pub struct SampleArgs {
    /// The directory (or URL) of the new store.
    #[arg(long, value_name = "DIR")]
    pub out: String,
    /// How many features.
    #[arg(long, default_value_t = SampleSpec::default().features)]
    pub features: usize,
    /// How many incidents.
    #[arg(long, default_value_t = SampleSpec::default().incidents)]
    pub incidents: usize,
    /// How many planned items in the backlog.
    #[arg(long, default_value_t = SampleSpec::default().backlog)]
    pub backlog: usize,
    /// The seed: the same seed and sizes give the same rows.
    #[arg(long, default_value_t = SampleSpec::default().seed)]
    pub seed: u64,
    /// Write plain Parquet folders instead of Delta tables.
    #[arg(long)]
    pub plain_parquet: bool,
}

pub async fn run(config: &Config, args: SampleArgs) -> Result<u8> {
    let started = Instant::now();
    let spec =
        SampleSpec { features: args.features, incidents: args.incidents, backlog: args.backlog, seed: args.seed };
    let sample = generate(spec)?;
    let generated = started.elapsed();
    let store = Store::at(&args.out)?;
    if args.plain_parquet {
        let dir =
            store.local_dir().ok_or_else(|| Error::Usage("--plain-parquet writes to a local directory only".into()))?;
        for table in Table::ALL {
            let folder = dir.join(table.name());
            std::fs::create_dir_all(&folder).map_err(|e| Error::io(&folder, e))?;
            write_plain(table, &folder, sample.table(table))?;
        }
    } else {
        store.create().await?;
        for table in Table::ALL {
            store.append(table, sample.table(table)).await?;
        }
    }
    config.note(format_args!(
        "wrote a sample store to {store}: {} features, {} incidents, {} backlog items, seed {} (generated in {:.1?}, {:.1?} in all)",
        spec.features,
        spec.incidents,
        spec.backlog,
        spec.seed,
        generated,
        started.elapsed()
    ));
    Ok(exit::OK)
}

/// Writes a table's rows sorted, dealt over `layout::STRIPES` files the way the Delta tables
/// are (see `layout::Dealer`): `part-00000.parquet` and on, as many as have rows (at least one).
fn write_plain(table: Table, folder: &Path, batches: &[RecordBatch]) -> Result<()> {
    let mut stripes: Vec<Vec<RecordBatch>> = vec![Vec::new(); layout::STRIPES];
    let mut dealer = layout::Dealer::default();
    for batch in layout::sorted(table, batches)? {
        for (stripe, piece) in dealer.deal(&batch) {
            stripes[stripe].push(piece);
        }
    }
    for (i, pieces) in stripes.iter().enumerate().filter(|(i, pieces)| *i == 0 || !pieces.is_empty()) {
        let path: PathBuf = folder.join(format!("part-{i:05}.parquet"));
        output::write_file_atomically(&path, |file| {
            let mut writer = ArrowWriter::try_new(file, table.schema(), Some(layout::writer_properties(table, true)))?;
            for piece in pieces {
                writer.write(piece)?;
            }
            writer.close()?;
            Ok(())
        })?;
    }
    Ok(())
}
