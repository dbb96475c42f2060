//! The `debtlens` binary: run the command line, turn errors into messages and exit codes.

use std::process::ExitCode;

/// mimalloc, as datafusion-cli has: with glibc's allocator, ingest spent about a third of its
/// time in malloc and free and on the locks of its arenas (rows are parsed on one thread and
/// freed on another).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    match debtlens::cli::run() {
        Ok(code) => ExitCode::from(code),
        // A reader that went away (`| head`) is not a failure.
        Err(e) if e.is_broken_pipe() => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
