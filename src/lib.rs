//! debtlens: an embedded analytics engine that measures what technical debt costs in the units
//! product already uses: the slowdown of features on each system, delay-days by system and
//! reason, the share of the budget absorbed by debt, and the incidents each system causes.
//!
//! Data flows one way: input files -> ingest -> store (Delta tables) -> engine (DataFusion, the
//! views of `queries/`, the analysis window) -> a surface (CLI, shell, server) -> output.

pub mod batch;
pub mod cli;
pub mod cluster;
pub mod cmd;
pub mod config;
pub mod decisions;
pub mod engine;
pub mod error;
pub mod exact;
pub mod export;
pub mod forecast;
pub mod functions;
pub mod ingest;
pub mod numbers;
pub mod output;
pub mod report;
pub mod roadmap;
pub mod sample;
pub mod schema;
pub mod server;
pub mod shared;
pub mod shell;
pub mod sql;
pub mod stats;
pub mod store;
pub mod tax;
pub mod time;
pub mod views;
pub mod window;

pub use engine::{Engine, EngineOptions, QueryResult, Session};
pub use error::{Error, Result};
pub use store::Store;
