//! The review as Markdown: for a wiki page, a pull request or an email.

use std::fmt::Write;

use super::{Kind, Report, Table};

pub fn render(report: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# Technical health review\n");
    let _ = writeln!(out, "**Window:** {} · **Store:** {}\n", report.window_text(), report.store);
    let _ = writeln!(out, "## Headlines\n");
    if report.headlines.is_empty() {
        let _ = writeln!(out, "No findings: the store has no shipped features, incidents or capacity in this window.");
    }
    for line in &report.headlines {
        let _ = writeln!(out, "- {line}");
    }
    for section in &report.sections {
        let _ = writeln!(out, "\n## {}\n\n{}\n", section.title, section.about);
        if section.table.rows.is_empty() {
            let _ = writeln!(out, "_{}_", section.empty);
        } else {
            table(&mut out, &section.table);
        }
    }
    out
}

fn table(out: &mut String, t: &Table) {
    let cell = |s: &str| s.replace('|', "\\|").replace('\n', " ");
    let names: Vec<String> = t.columns.iter().map(|(n, _)| cell(&n.replace('_', " "))).collect();
    let _ = writeln!(out, "| {} |", names.join(" | "));
    let rules: Vec<&str> = t.columns.iter().map(|(_, k)| if *k == Kind::Text { "---" } else { "---:" }).collect();
    let _ = writeln!(out, "| {} |", rules.join(" | "));
    for r in 0..t.rows.len() {
        let cells: Vec<String> = (0..t.columns.len()).map(|c| cell(&t.shown(r, c))).collect();
        let _ = writeln!(out, "| {} |", cells.join(" | "));
    }
}
