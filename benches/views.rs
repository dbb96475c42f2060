//! Every view over the built-in sample, in process, through the same engine and the same
//! `queries/*.sql` the product runs: `cargo bench --bench views`. A regression in a view's SQL
//! or in the engine's settings shows here first. The comparison with DuckDB over large stores
//! is a separate, end-to-end script.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use debtlens::time::parse_as_of;
use debtlens::views::VIEWS;
use debtlens::window::WindowSettings;
use debtlens::{Engine, EngineOptions, Store};

fn views(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
    let window = WindowSettings { as_of: Some(parse_as_of("2026-10-31").expect("a date")), ..Default::default() };
    let options = EngineOptions { window, ..Default::default() };
    let engine = runtime.block_on(Engine::open(Store::builtin_sample(), options)).expect("the built-in sample opens");
    let session = engine.session();
    let mut group = c.benchmark_group("views");
    for view in VIEWS {
        group.bench_function(view.name, |b| {
            b.iter(|| black_box(runtime.block_on(session.view(view.name)).expect("the view runs").rows()))
        });
    }
    group.finish();
}

/// Opening the engine: registering the tables and planning every view, the start-up cost of
/// each CLI command.
fn open(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
    c.bench_function("open the built-in sample", |b| {
        b.iter(|| black_box(runtime.block_on(Engine::open(Store::builtin_sample(), EngineOptions::default())).is_ok()))
    });
}

criterion_group!(benches, views, open);
criterion_main!(benches);
