//! The shell's backslash commands: one enum, parsed from a line, and one table that is both the
//! `\?` help and the list completion offers.

use std::path::PathBuf;

use clap::ValueEnum;

use crate::output::Format;

/// A backslash command.
#[derive(Debug, Clone, PartialEq)]
pub enum Meta {
    Help,
    /// `\d` lists tables and views; `\d NAME` shows NAME's columns.
    Describe(Option<String>),
    /// `\dv`: the views with what they answer.
    Views,
    /// `\timing` toggles; `\timing on|off` sets.
    Timing(Option<bool>),
    /// `\format` shows the format; `\format FMT` sets it.
    Format(Option<Format>),
    /// `\o FILE` sends results to FILE; `\o` alone back to the screen.
    Output(Option<PathBuf>),
    /// `\i FILE` runs the statements and commands of FILE.
    Include(PathBuf),
    /// `\set` shows the settings; `\set as_of DATE|default`; `\set window_days N`.
    Set(Option<Setting>),
    Quit,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Setting {
    /// `None`: back to the default (the newest shipped feature).
    AsOf(Option<String>),
    WindowDays(u32),
}

/// (command, arguments, what it does): the help text, in order.
pub const COMMANDS: &[(&str, &str, &str)] = &[
    ("\\?", "", "show this help"),
    ("\\d", "[NAME]", "list tables and views, or the columns of NAME"),
    ("\\dv", "", "list the views with the question each answers"),
    ("\\timing", "[on|off]", "show how long each statement takes"),
    ("\\format", "[FMT]", "table, csv, tsv, json, ndjson, markdown, html, parquet or arrow"),
    ("\\o", "[FILE]", "send results to FILE; \\o alone sends them back to the screen"),
    ("\\i", "FILE", "run the statements and commands of FILE"),
    ("\\set", "[as_of DATE|default] [window_days N]", "show or change the analysis window of every view"),
    ("\\q", "", "quit (or Ctrl-D)"),
];

/// The help of `\?`.
pub fn help() -> String {
    let mut out = String::from(
        "Statements end with `;` and may span lines. Tab completes keywords, tables, views and columns.\nCtrl-C cancels a running statement or clears the line; Ctrl-D quits.\n\n",
    );
    let width = COMMANDS.iter().map(|(c, a, _)| c.len() + a.len() + 1).max().unwrap_or(0);
    for (command, args, what) in COMMANDS {
        let usage = if args.is_empty() { command.to_string() } else { format!("{command} {args}") };
        out.push_str(&format!("  {usage:<width$}  {what}\n"));
    }
    out
}

/// Parses a line that starts with `\`.
pub fn parse(line: &str) -> Result<Meta, String> {
    let line = line.trim().trim_end_matches(';').trim_end();
    let (command, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
    let rest = rest.trim();
    let arg = (!rest.is_empty()).then(|| rest.to_string());
    let none = |meta: Meta| if arg.is_none() { Ok(meta) } else { Err(format!("{command} takes no argument")) };
    match command {
        "\\?" | "\\h" | "\\help" => none(Meta::Help),
        "\\q" | "\\quit" => none(Meta::Quit),
        "\\d" => Ok(Meta::Describe(arg)),
        "\\dv" => none(Meta::Views),
        "\\timing" => match rest {
            "" => Ok(Meta::Timing(None)),
            "on" => Ok(Meta::Timing(Some(true))),
            "off" => Ok(Meta::Timing(Some(false))),
            other => Err(format!("\\timing takes on or off, not `{other}`")),
        },
        "\\format" => match arg {
            None => Ok(Meta::Format(None)),
            Some(name) => Format::from_str(&name, true).map(|f| Meta::Format(Some(f))).map_err(|_| {
                format!("unknown format `{name}`: table, csv, tsv, json, ndjson, markdown, html, parquet or arrow")
            }),
        },
        "\\o" | "\\out" => Ok(Meta::Output(arg.map(PathBuf::from))),
        "\\i" | "\\include" => {
            arg.map(|f| Meta::Include(PathBuf::from(f))).ok_or_else(|| "\\i needs a FILE".to_string())
        }
        "\\set" => {
            let Some(arg) = arg else { return Ok(Meta::Set(None)) };
            let (name, value) = arg.split_once(char::is_whitespace).map_or((arg.as_str(), ""), |(n, v)| (n, v.trim()));
            match (name, value) {
                ("as_of", "") => Err("\\set as_of needs a DATE (or `default`)".into()),
                ("as_of", "default") => Ok(Meta::Set(Some(Setting::AsOf(None)))),
                ("as_of", date) => Ok(Meta::Set(Some(Setting::AsOf(Some(date.trim_matches('\'').to_string()))))),
                ("window_days", n) => match n.parse::<u32>() {
                    Ok(days @ 1..=36_500) => Ok(Meta::Set(Some(Setting::WindowDays(days)))),
                    _ => Err(format!("\\set window_days needs a number of days from 1 to 36500, not `{n}`")),
                },
                (other, _) => Err(format!("unknown setting `{other}`: as_of or window_days")),
            }
        }
        other => {
            let known: Vec<&str> = COMMANDS.iter().map(|(c, _, _)| *c).collect();
            let close = crate::views::closest_names(other, known.iter().copied());
            let hint = close.first().map(|c| format!("; did you mean {c}?")).unwrap_or_default();
            Err(format!("unknown command `{other}`{hint} (\\? lists them)"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_command_parses() {
        assert_eq!(parse("\\?"), Ok(Meta::Help));
        assert_eq!(parse("\\d"), Ok(Meta::Describe(None)));
        assert_eq!(parse("\\d features"), Ok(Meta::Describe(Some("features".into()))));
        assert_eq!(parse("\\dv"), Ok(Meta::Views));
        assert_eq!(parse("\\timing"), Ok(Meta::Timing(None)));
        assert_eq!(parse("\\timing off"), Ok(Meta::Timing(Some(false))));
        assert_eq!(parse("\\format CSV"), Ok(Meta::Format(Some(Format::Csv))));
        assert_eq!(parse("\\o out.csv"), Ok(Meta::Output(Some("out.csv".into()))));
        assert_eq!(parse("\\o"), Ok(Meta::Output(None)));
        assert_eq!(parse("\\i script.sql"), Ok(Meta::Include("script.sql".into())));
        assert_eq!(parse("\\set as_of 2026-06-30"), Ok(Meta::Set(Some(Setting::AsOf(Some("2026-06-30".into()))))));
        assert_eq!(parse("\\set as_of default"), Ok(Meta::Set(Some(Setting::AsOf(None)))));
        assert_eq!(parse("\\set window_days 30;"), Ok(Meta::Set(Some(Setting::WindowDays(30)))));
        assert_eq!(parse("\\q"), Ok(Meta::Quit));
    }

    #[test]
    fn mistakes_say_what_is_expected() {
        assert!(parse("\\timing maybe").unwrap_err().contains("on or off"));
        assert!(parse("\\format xml").unwrap_err().contains("unknown format"));
        assert!(parse("\\set window_days 0").unwrap_err().contains("1 to 36500"));
        assert!(parse("\\set colour red").unwrap_err().contains("unknown setting"));
        assert!(parse("\\i").unwrap_err().contains("FILE"));
        assert!(parse("\\tming").unwrap_err().contains("did you mean \\timing"));
        assert!(parse("\\q now").unwrap_err().contains("no argument"));
    }

    #[test]
    fn the_help_lists_every_command() {
        let help = help();
        for (command, _, _) in COMMANDS {
            assert!(help.contains(command), "{command}");
        }
    }
}
