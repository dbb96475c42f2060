//! `debtlens shell`: the real binary in a pseudo-terminal (typing, Tab, Ctrl-C, Ctrl-D), and in
//! script mode with stdin from a file.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use expectrl::session::OsSession as Session;
use expectrl::{Expect, Regex};

use crate::util::{Env, Run};

/// The shell over the built-in sample in a pseudo-terminal, with its own history file and no
/// colours, answering within `timeout`.
fn shell(env: &Env) -> Session {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_debtlens"));
    cmd.current_dir(env.dir.path())
        .env_remove("DEBTLENS_DATA")
        .env("DEBTLENS_HISTORY", env.path("history"))
        .env("NO_COLOR", "1")
        .env("TERM", "xterm")
        .args(["--as-of", "2026-10-31", "shell"]);
    let mut session = Session::spawn(cmd).expect("spawn the shell in a pty");
    session.set_expect_timeout(Some(Duration::from_secs(30)));
    session.expect("debtlens> ").expect("the first prompt");
    session
}

fn quit(mut session: Session) {
    session.send_line("\\q").unwrap();
    let status = session.get_process().wait().unwrap();
    assert!(format!("{status:?}").contains("Exited"), "{status:?}");
}

#[test]
fn a_multi_line_query_shows_its_rows_and_count() {
    let env = Env::new();
    let mut s = shell(&env);
    s.send_line("SELECT system, round(slowdown_ratio, 2) AS ratio").unwrap();
    s.send_line("FROM slowdown_by_system").unwrap();
    s.send_line("ORDER BY ratio DESC LIMIT 2;").unwrap();
    s.expect("auth-service").unwrap();
    s.expect("3.22").unwrap();
    s.expect("(2 rows)").unwrap();
    s.expect("debtlens> ").unwrap();
    quit(s);
    let history = std::fs::read_to_string(env.path("history")).unwrap();
    assert!(history.contains("ORDER BY ratio DESC LIMIT 2;"), "the statement is in the history: {history}");
}

#[test]
fn tab_completes_a_view_and_its_column() {
    let env = Env::new();
    let mut s = shell(&env);
    s.send("SELECT system FROM slowdown_by_s\t").unwrap();
    s.expect("slowdown_by_system").unwrap();
    s.send(" WHERE slowdown_r\t").unwrap();
    s.expect("slowdown_ratio").unwrap();
    s.send_line(" > 3;").unwrap();
    s.expect("auth-service").unwrap();
    s.expect("(1 row)").unwrap();
    s.expect("debtlens> ").unwrap();
    quit(s);
}

#[test]
fn ctrl_c_cancels_a_long_query_and_keeps_the_shell() {
    let env = Env::new();
    let mut s = shell(&env);
    s.send_line("SELECT sum(value) FROM generate_series(1, 100000000000);").unwrap();
    std::thread::sleep(Duration::from_millis(800));
    let pressed = Instant::now();
    s.send("\x03").unwrap();
    s.expect("cancelled").unwrap();
    s.expect("debtlens> ").unwrap();
    let took = pressed.elapsed();
    // The query alone would run for minutes; the bound is loose for slow CI machines.
    assert!(took < Duration::from_secs(5), "back at the prompt after {took:?}");
    s.send_line("SELECT 40 + 2 AS answer;").unwrap();
    s.expect("42").unwrap();
    s.expect("debtlens> ").unwrap();
    // Ctrl-C at the prompt clears the line; the shell stays.
    s.send("SELECT 'never run'").unwrap();
    s.send("\x03").unwrap();
    s.expect("debtlens> ").unwrap();
    s.send_line("SELECT 'still here' AS x;").unwrap();
    s.expect("still here").unwrap();
    s.expect("debtlens> ").unwrap();
    // Ctrl-D leaves.
    s.send("\x04").unwrap();
    let status = s.get_process().wait().unwrap();
    assert!(format!("{status:?}").contains("Exited"), "{status:?}");
}

#[test]
fn set_as_of_changes_every_view_and_errors_keep_the_shell() {
    let env = Env::new();
    let mut s = shell(&env);
    s.send_line("SELECT CAST(as_of AS DATE) AS d FROM analysis_window;").unwrap();
    s.expect("2026-10-31").unwrap();
    s.expect("debtlens> ").unwrap();
    s.send_line("\\set as_of 2026-06-30").unwrap();
    s.expect(Regex("window: 90 days, .*2026-06-30")).unwrap();
    s.expect("debtlens> ").unwrap();
    s.send_line("SELECT CAST(as_of AS DATE) AS d FROM analysis_window;").unwrap();
    s.expect("2026-06-30").unwrap();
    s.expect("debtlens> ").unwrap();
    s.send_line("SELEC oops;").unwrap();
    s.expect("error: ").unwrap();
    s.expect("debtlens> ").unwrap();
    s.send_line("\\nonsense").unwrap();
    s.expect("unknown command").unwrap();
    s.expect("debtlens> ").unwrap();
    s.send_line("SELECT 'alive' AS state;").unwrap();
    s.expect("alive").unwrap();
    s.expect("debtlens> ").unwrap();
    quit(s);
}

#[test]
fn output_to_a_file_and_include_a_file() {
    let env = Env::new();
    std::fs::write(env.path("script.sql"), "SELECT 'from the script' AS source;\n").unwrap();
    let mut s = shell(&env);
    s.send_line("\\format csv").unwrap();
    s.expect("format: csv").unwrap();
    s.expect("debtlens> ").unwrap();
    s.send_line("\\o out.csv").unwrap();
    s.expect("results go to out.csv").unwrap();
    s.expect("debtlens> ").unwrap();
    s.send_line("SELECT system FROM slowdown_by_system ORDER BY system LIMIT 2;").unwrap();
    s.expect("written to out.csv").unwrap();
    s.expect("debtlens> ").unwrap();
    s.send_line("\\o").unwrap();
    s.expect("results go to the screen").unwrap();
    s.expect("debtlens> ").unwrap();
    s.send_line("\\i script.sql").unwrap();
    s.expect("from the script").unwrap();
    s.expect("debtlens> ").unwrap();
    quit(s);
    assert_eq!(std::fs::read_to_string(env.path("out.csv")).unwrap(), "system\nadmin-console\napi-gateway\n");
}

fn script(env: &Env, text: &str) -> Run {
    let mut child = env
        .cmd()
        .args(["--as-of", "2026-10-31", "shell"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    Run::from(child.wait_with_output().unwrap())
}

#[test]
fn a_script_on_stdin_runs_without_a_prompt() {
    let env = Env::new();
    let run = script(
        &env,
        "\\format csv\nSELECT 1 AS one;\nSELECT system\n  FROM slowdown_by_system\n  ORDER BY system LIMIT 1;\n",
    );
    run.success();
    assert_eq!(run.stdout(), "one\n1\nsystem\nadmin-console\n");
    assert!(!run.stderr.contains("debtlens>"), "no prompt: {}", run.stderr);
}

#[test]
fn a_failing_statement_in_a_script_exits_1_naming_it() {
    let env = Env::new();
    let run = script(&env, "SELECT 1 AS one;\n\nSELECT nope\nFROM features;\nSELECT 2 AS two;\n");
    run.fails_with(1);
    assert!(run.stderr.contains("<stdin>, statement 2 (line 3)"), "{}", run.stderr);
    assert!(run.stderr.contains("nope"), "{}", run.stderr);
    assert!(run.stdout().contains("two"), "the script goes on after a failure");

    let run = env.run(&["shell", "-c", "SELECT 6 * 7 AS answer"]);
    run.success();
    assert!(run.stdout().contains("42"));
    std::fs::write(env.path("bad.sql"), "SELECT 1;\nSELECT * FROM no_such_table;\n").unwrap();
    let run = env.run(&["shell", "-f", "bad.sql"]);
    run.fails_with(1);
    assert!(run.stderr.contains("bad.sql, statement 2 (line 2)"), "{}", run.stderr);
}
