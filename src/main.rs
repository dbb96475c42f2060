//! The `debtlens` binary: run the command line, turn errors into messages and exit codes.

use std::process::ExitCode;

/// mimalloc, as datafusion-cli has: with glibc's allocator, ingest spent about a third of its
/// time in malloc and free and on the locks of its arenas (rows are parsed on one thread and
/// freed on another).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    quiet_panics();
    match debtlens::cli::run() {
        Ok(code) => ExitCode::from(code),
        // A reader that went away (`| head`) is not a failure.
        Err(e) if e.is_broken_pipe() => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", without_backtrace(&e.to_string()));
            ExitCode::from(e.exit_code())
        }
    }
}

/// An error's text without the backtrace some libraries' errors carry in their text (Delta's
/// kernel captures one when RUST_BACKTRACE is set): the lines from the first numbered frame on.
fn without_backtrace(text: &str) -> String {
    let frame = |l: &str| {
        let t = l.trim_start();
        t.split_once(": ").is_some_and(|(n, _)| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()))
            && l.starts_with(' ')
    };
    let mut lines: Vec<&str> = text.lines().take_while(|l| !frame(l)).collect();
    while lines.last().is_some_and(|l| l.trim().is_empty()) {
        lines.pop();
    }
    lines.join("\n")
}

/// A panic inside a library's thread (an object store writer after a disk-full error, say) is
/// reported in one line instead of a backtrace; the command's own error follows it and says
/// what happened to the data. `RUST_BACKTRACE=1` brings the full report back.
fn quiet_panics() {
    let full = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if std::env::var_os("RUST_BACKTRACE").is_some_and(|v| v != "0") {
            return full(info);
        }
        let payload = info.payload();
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "(no message)".into());
        let at = info.location().map(|l| format!(" at {}:{}", l.file(), l.line())).unwrap_or_default();
        eprintln!("debtlens: internal panic{at}: {message} (RUST_BACKTRACE=1 shows where)");
    }));
}
