//! The review as one self-contained HTML page: inline CSS and SVG, no script, no network. It
//! reads on a phone (tables scroll sideways, charts scale) and prints cleanly.

use std::fmt::Write;

use super::{Kind, Report, Table, charts};
use crate::error::Result;
use crate::output::escape_html as escape;

const STYLE: &str = r#"
:root { color-scheme: light; --ink: #1f2328; --muted: #59636e; --rule: #d8dee4; --accent: #0072b2; }
* { box-sizing: border-box; }
body { margin: 0; font: 16px/1.5 -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; color: var(--ink); background: #fff; }
main { max-width: 60rem; margin: 0 auto; padding: 1.5rem 1rem 3rem; }
header { border-bottom: 3px solid var(--accent); padding-bottom: .75rem; margin-bottom: 1.5rem; }
h1 { font-size: 1.8rem; margin: 0 0 .25rem; }
h2 { font-size: 1.3rem; margin: 2.25rem 0 .5rem; break-after: avoid; }
.meta, .about, .empty { color: var(--muted); }
.meta { margin: 0; }
nav ol { padding-left: 1.25rem; margin: .5rem 0 0; color: var(--muted); }
nav a { color: var(--accent); }
#headlines ul { padding-left: 0; list-style: none; }
#headlines li { border-left: 4px solid var(--accent); background: #f4f8fb; padding: .6rem .9rem; margin: .6rem 0; font-size: 1.05rem; }
figure { margin: 1rem 0; break-inside: avoid; }
figure svg { display: block; width: 100%; height: auto; }
figcaption { color: var(--muted); font-size: .9rem; }
.scroll { overflow-x: auto; -webkit-overflow-scrolling: touch; }
table { border-collapse: collapse; width: 100%; font-size: .9rem; font-variant-numeric: tabular-nums; }
th, td { padding: .35rem .6rem; border-bottom: 1px solid var(--rule); white-space: nowrap; text-align: left; }
th { background: #f6f8fa; font-weight: 600; }
td.num, th.num { text-align: right; }
footer { margin-top: 3rem; color: var(--muted); font-size: .85rem; }
@media (max-width: 40rem) { body { font-size: 15px; } h1 { font-size: 1.45rem; } th, td { padding: .3rem .45rem; } }
@media print {
  body { font-size: 11pt; }
  main { max-width: none; padding: 0; }
  nav { display: none; }
  .scroll { overflow: visible; }
  th, td { white-space: normal; }
  section { break-inside: auto; }
  #headlines li { background: none; }
}
"#;

pub fn render(report: &Report) -> Result<String> {
    let mut out = String::new();
    let title = format!("Technical health review, {}", report.window_text());
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<main>\n",
        escape(&title)
    );
    let _ = write!(
        out,
        "<header>\n<h1>Technical health review</h1>\n<p class=\"meta\">Window: <strong>{}</strong> · Store: {}</p>\n",
        escape(&report.window_text()),
        escape(&report.store)
    );
    let _ = writeln!(out, "<nav aria-label=\"Sections\"><ol>");
    let _ = writeln!(out, "<li><a href=\"#headlines\">Headlines</a></li>");
    for s in &report.sections {
        let _ = writeln!(out, "<li><a href=\"#{}\">{}</a></li>", s.id, escape(s.title));
    }
    let _ = writeln!(out, "</ol></nav>\n</header>");

    let _ = writeln!(out, "<section id=\"headlines\">\n<h2>Headlines</h2>\n<ul>");
    if report.headlines.is_empty() {
        let _ = writeln!(
            out,
            "<li>No findings: the store has no shipped features, incidents or capacity in this window.</li>"
        );
    }
    for line in &report.headlines {
        let _ = writeln!(out, "<li>{}</li>", escape(line));
    }
    let _ = writeln!(out, "</ul>\n</section>");

    for s in &report.sections {
        let _ = writeln!(
            out,
            "<section id=\"{}\">\n<h2>{}</h2>\n<p class=\"about\">{}</p>",
            s.id,
            escape(s.title),
            escape(&s.about)
        );
        for chart in &s.charts {
            let caption = match chart {
                super::Chart::Bars { title, .. } | super::Chart::Lines { title, .. } => title,
            };
            let _ = writeln!(
                out,
                "<figure class=\"chart\">\n{}\n<figcaption>{}</figcaption>\n</figure>",
                charts::svg(chart)?,
                escape(caption)
            );
        }
        if s.table.rows.is_empty() {
            let _ = writeln!(out, "<p class=\"empty\">{}</p>", escape(s.empty));
        } else {
            table(&mut out, &s.table);
        }
        let _ = writeln!(out, "</section>");
    }
    let _ = writeln!(
        out,
        "<footer>Every number comes from the debtlens views named in each section; run <code>debtlens views</code> \
         for their definitions. debtlens {}.</footer>\n</main>\n</body>\n</html>",
        env!("CARGO_PKG_VERSION")
    );
    Ok(out)
}

fn table(out: &mut String, t: &Table) {
    let _ = write!(out, "<div class=\"scroll\"><table>\n<thead><tr>");
    for (name, kind) in &t.columns {
        let class = if *kind == Kind::Text { "" } else { " class=\"num\"" };
        let _ = write!(out, "<th scope=\"col\"{class}>{}</th>", escape(&name.replace('_', " ")));
    }
    let _ = write!(out, "</tr></thead>\n<tbody>\n");
    for (r, row) in t.rows.iter().enumerate() {
        let _ = write!(out, "<tr>");
        for (c, value) in row.iter().enumerate() {
            let shown = escape(&t.shown(r, c));
            match value.number() {
                // The exact value rides along for anyone who copies the table.
                Some(x) if t.columns[c].1 != Kind::Text => {
                    let _ = write!(out, "<td class=\"num\" data-value=\"{x}\">{shown}</td>");
                }
                _ => {
                    let _ = write!(out, "<td>{shown}</td>");
                }
            }
        }
        let _ = writeln!(out, "</tr>");
    }
    let _ = writeln!(out, "</tbody>\n</table></div>");
}
