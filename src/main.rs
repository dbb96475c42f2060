//! The `debtlens` binary: run the command line, turn errors into messages and exit codes.

use std::process::ExitCode;

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
