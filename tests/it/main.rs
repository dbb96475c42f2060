mod batch;
mod cli;
mod ingest;
mod report;
mod shell;
mod slt;
mod util;
