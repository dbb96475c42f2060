//! `debtlens report`: the monthly review as Markdown (a snapshot of the built-in sample) and as
//! one HTML page, parsed and checked against the views, then rendered by headless Chromium.

use std::collections::HashSet;
use std::path::Path;
use std::process::Command;

use scraper::{Html, Selector};

use crate::util::Env;

const AS_OF: &str = "2026-10-31";

fn select(doc: &Html, css: &str) -> Vec<String> {
    let selector = Selector::parse(css).expect("a CSS selector");
    doc.select(&selector).map(|e| e.text().collect::<String>()).collect()
}

/// One row of a query over the built-in sample, as CSV cells.
fn first_row(env: &Env, sql: &str) -> Vec<String> {
    let run = env.run(&["-q", "--as-of", AS_OF, "query", sql, "--format", "csv"]);
    run.success();
    let out = run.stdout();
    out.lines().nth(1).expect("a row").split(',').map(str::to_string).collect()
}

#[test]
fn the_markdown_report_of_the_sample() {
    let env = Env::new();
    let run = env.run(&["-q", "--as-of", AS_OF, "report"]);
    run.success();
    insta::assert_snapshot!("report_sample_markdown", run.stdout());
}

#[test]
fn the_html_report_has_every_section_chart_and_the_views_numbers() {
    let env = Env::new();
    env.run(&["-q", "--as-of", AS_OF, "report", "--format", "html", "--output", "r.html"]).success();
    let text = std::fs::read_to_string(env.path("r.html")).unwrap();
    let doc = Html::parse_document(&text);

    for id in ["headlines", "system-health", "delay-reasons", "capacity", "dod", "trend"] {
        assert_eq!(select(&doc, &format!("section#{id} h2")).len(), 1, "section {id}");
    }
    for id in ["system-health", "delay-reasons", "capacity", "trend"] {
        assert_eq!(select(&doc, &format!("section#{id} figure svg")).len(), 1, "a chart in {id}");
    }
    for id in ["system-health", "delay-reasons", "capacity", "dod", "trend"] {
        assert!(select(&doc, &format!("section#{id} table tbody tr")).len() > 1, "table rows in {id}");
    }
    // Self-contained: no script, no stylesheet or image from elsewhere.
    assert!(select(&doc, "script").is_empty());
    assert!(select(&doc, "link").is_empty() && select(&doc, "img").is_empty());
    assert!(select(&doc, "meta[name=viewport]").len() == 1, "readable on a phone");
    assert!(text.contains("@media print"));

    // The headline numbers are the views' numbers.
    let headlines = select(&doc, "section#headlines li");
    // The velocity-tax headline is system_tax's highest tax the data can rate, with its interval
    // and feature count.
    let slowest = first_row(
        &env,
        "SELECT system, round(tax, 2), round(tax_low, 2), round(tax_high, 2), features FROM system_tax \
         WHERE confidence <> 'low' ORDER BY tax DESC LIMIT 1",
    );
    let ratio = |i: usize| format!("{:.2}x", slowest[i].parse::<f64>().unwrap());
    let tax = format!(
        "{} has a {} velocity tax (90%: {}–{}, from {} features)",
        slowest[0],
        ratio(1),
        ratio(2),
        ratio(3),
        slowest[4]
    );
    assert!(headlines.iter().any(|h| h.contains(&tax)), "`{tax}` in {headlines:#?}");

    let costliest = first_row(
        &env,
        "SELECT h.system, h.attributed_cost FROM system_health h JOIN system_tax t ON t.system = h.system \
         WHERE t.confidence <> 'low' ORDER BY h.attributed_cost DESC NULLS LAST LIMIT 1",
    );
    let worth = format!("Paying down {} debt is worth $", costliest[0]);
    assert!(headlines.iter().any(|h| h.contains(&worth)), "`{worth}` in {headlines:#?}");
    let first = first_row(&env, "SELECT system, cost FROM system_health LIMIT 1");
    let cost_cell = Selector::parse("section#system-health tbody tr:first-child td:nth-child(5)").unwrap();
    let cell = doc.select(&cost_cell).next().expect("the first system's cost");
    let exact: f64 = cell.value().attr("data-value").unwrap().parse().unwrap();
    assert_eq!(exact, first[1].parse::<f64>().unwrap(), "the table carries the view's exact cost");

    let q3 = first_row(
        &env,
        "SELECT absorbed_budget / budget FROM capacity_efficiency WHERE team IS NULL AND period_start = DATE '2026-07-01'",
    );
    let share = format!("{:.0}% of the budget", q3[0].parse::<f64>().unwrap() * 100.0);
    assert!(headlines.iter().any(|h| h.contains(&share) && h.contains("2026-Q3")), "`{share}` in {headlines:#?}");

    let reason = first_row(&env, "SELECT reason, attributed_delay_days FROM delay_by_reason LIMIT 1");
    let top = format!("The top cause of delay is {}: {} delay-days", reason[0], reason[1].trim_end_matches(".0"));
    assert!(headlines.iter().any(|h| h.contains(&top)), "`{top}` in {headlines:#?}");

    // The trend follows the three slowest systems of slowdown_by_system.
    let trend_header = select(&doc, "section#trend thead th");
    assert_eq!(trend_header.len(), 4, "{trend_header:?}");
    assert_eq!(trend_header[1], slowest[0]);
}

/// A small store (400 features, about 40 in the window): most systems are rated `low`. The
/// report names them, and the velocity-tax headline is a system the data can rate, or none.
#[test]
fn systems_without_enough_data_are_named_and_never_the_headline() {
    let env = Env::new();
    let store = env.sample_store("small", 400, &["--seed", "5"]);
    let data = store.to_str().unwrap();
    let taxes =
        env.run(&["-q", "--data", data, "query", "SELECT system, confidence FROM system_tax", "--format", "csv"]);
    let taxes = taxes.success().stdout();
    let rows: Vec<(String, String)> = taxes
        .lines()
        .skip(1)
        .map(|l| {
            let (s, c) = l.rsplit_once(',').unwrap();
            (s.to_string(), c.to_string())
        })
        .collect();
    let low: Vec<&str> = rows.iter().filter(|(_, c)| c == "low").map(|(s, _)| s.as_str()).collect();
    assert!(!low.is_empty(), "the small store rates every system: {taxes}");
    let run = env.run(&["-q", "--data", data, "report"]);
    let md = run.success().stdout();
    let headlines: Vec<&str> = md.lines().filter(|l| l.starts_with("- ")).collect();
    let thin = headlines.iter().find(|h| h.contains("Too little data to rate")).expect("the unrated systems named");
    for system in &low {
        assert!(thin.contains(system), "{system} not in {thin}");
    }
    for h in headlines.iter().filter(|h| h.contains("velocity tax (90%:")) {
        let system = h.trim_start_matches("- ").split(' ').next().unwrap();
        assert!(!low.contains(&system), "a low-confidence headline: {h}");
    }
}

#[test]
fn an_empty_store_gives_a_report_that_says_so() {
    let env = Env::new();
    env.run(&["init", "store"]).success();
    let run = env.run(&["-q", "--data", "store", "report"]);
    run.success();
    let md = run.stdout();
    assert!(md.contains("No findings"), "{md}");
    assert!(md.contains("_No shipped features or incidents in this window._"), "{md}");
    assert!(md.contains("_No shipped feature in this window has a cost of delay (cost_of_delay_per_week)._"), "{md}");
    assert!(md.contains("_No shipped features with a recorded definition of done in this window._"), "{md}");
    env.run(&["-q", "--data", "store", "report", "--format", "html", "-o", "empty.html"]).success();
    let doc = Html::parse_document(&std::fs::read_to_string(env.path("empty.html")).unwrap());
    assert_eq!(select(&doc, "section h2").len(), 8);
    assert!(select(&doc, "figure svg").len() >= 2, "bar charts still draw, empty");
}

#[test]
fn report_refuses_formats_it_cannot_write() {
    let env = Env::new();
    let run = env.run(&["report", "--format", "csv"]);
    run.fails_with(2);
    assert!(run.stderr.contains("markdown or html"), "{}", run.stderr);
}

/// Chromium from Debian (installed by .ci/run) or another common name.
fn chromium() -> Option<&'static str> {
    ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|name| Command::new(name).arg("--version").output().is_ok_and(|o| o.status.success()))
}

#[test]
fn the_html_report_renders_in_a_real_browser() {
    let Some(browser) = chromium() else {
        if std::env::var_os("DEBTLENS_SKIP_BROWSER_TESTS").is_some() {
            return;
        }
        panic!("no Chromium found: `apt-get install chromium` (as .ci/run does), or set DEBTLENS_SKIP_BROWSER_TESTS=1");
    };
    let env = Env::new();
    env.run(&["-q", "--as-of", AS_OF, "report", "--format", "html", "--output", "r.html"]).success();
    let png = env.path("r.png");
    let profile = env.path("profile");
    let out = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--window-size=420,2400",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("--screenshot={}", png.display()))
        .arg(format!("file://{}", env.path("r.html").display()))
        .output()
        .expect("run chromium");
    assert!(out.status.success(), "chromium failed: {}", String::from_utf8_lossy(&out.stderr));
    let (width, height, pixels) = decode(&png);
    assert_eq!((width, height), (420, 2400), "a phone-width page");
    let background = pixels[0];
    let inked = pixels.iter().filter(|p| **p != background).count();
    let colours: HashSet<[u8; 3]> = pixels.iter().copied().collect();
    assert!(inked * 20 > pixels.len(), "at least 5% of the page is drawn: {inked} of {}", pixels.len());
    assert!(colours.len() > 50, "text, charts and tables, not a blank page: {} colours", colours.len());
}

fn decode(path: &Path) -> (u32, u32, Vec<[u8; 3]>) {
    let file = std::io::BufReader::new(std::fs::File::open(path).expect("the screenshot"));
    let mut reader = png::Decoder::new(file).read_info().expect("a PNG");
    let mut buf = vec![0; reader.output_buffer_size().expect("a size")];
    let frame = reader.next_frame(&mut buf).expect("a frame");
    let step = frame.color_type.samples();
    let pixels = buf[..frame.buffer_size()].chunks(step).map(|p| [p[0], p[1], p[2]]).collect();
    (frame.width, frame.height, pixels)
}
