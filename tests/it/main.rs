mod batch;
mod cli;
mod ingest;
mod report;
mod slt;
mod util;
