mod batch;
mod cli;
mod ingest;
mod report;
mod server;
mod shell;
mod slt;
mod util;
