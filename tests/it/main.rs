mod batch;
mod cli;
mod ingest;
mod slt;
mod util;
