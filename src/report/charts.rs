//! The report's charts as inline SVG, drawn with plotters' SVG backend. Text stays text in the
//! SVG, so the browser sets it in the page's font and it prints sharp.

use plotters::coord::ranged1d::SegmentValue;
use plotters::prelude::*;

use super::{Chart, Kind, Value};
use crate::error::{Error, Result};

const WIDTH: u32 = 760;
const FONT: &str = "sans-serif";
/// Colour-blind-safe (Okabe–Ito) colours for the series.
const PALETTE: [RGBColor; 5] = [
    RGBColor(0, 114, 178),
    RGBColor(213, 94, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(86, 180, 233),
];
const INK: RGBColor = RGBColor(60, 60, 60);
const GRID: RGBColor = RGBColor(225, 225, 225);

type DrawResult = std::result::Result<(), Box<dyn std::error::Error>>;

/// The chart as an `<svg>` element that scales to the width of its container.
pub fn svg(chart: &Chart) -> Result<String> {
    let (title, height) = match chart {
        Chart::Bars { title, labels, .. } => (title, 70 + 26 * labels.len().max(1) as u32),
        Chart::Lines { title, .. } => (title, 360),
    };
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, (WIDTH, height)).into_drawing_area();
        let drawn = match chart {
            Chart::Bars { labels, values, intervals, kind, reference, .. } => {
                bars(&root, labels, values, intervals, *kind, *reference)
            }
            Chart::Lines { x, series, kind, .. } => lines(&root, x, series, *kind),
        };
        drawn
            .and_then(|()| root.present().map_err(|e| e.to_string().into()))
            .map_err(|e| Error::Internal(format!("cannot draw the chart `{title}`: {e}")))?;
    }
    // Scale with the page; the viewBox keeps the proportions. Name the chart for screen readers.
    let label = crate::output::escape_html(title);
    let sized = format!("width=\"{WIDTH}\" height=\"{height}\"");
    Ok(out.replacen(&sized, &format!("width=\"100%\" role=\"img\" aria-label=\"{label}\""), 1))
}

fn axis_text(kind: Kind, x: f64) -> String {
    match kind {
        Kind::Share => format!("{:.0}%", x * 100.0),
        Kind::Ratio => format!("{x:.1}x"),
        Kind::Money => Value::Float(x).show(Kind::Money),
        _ => Value::Float(x).show(Kind::Amount),
    }
}

fn bars(
    root: &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>,
    labels: &[String],
    values: &[f64],
    intervals: &[Option<(f64, f64)>],
    kind: Kind,
    reference: Option<f64>,
) -> DrawResult {
    root.fill(&WHITE)?;
    let n = labels.len().max(1);
    let high = |i: usize| intervals.get(i).copied().flatten().map(|(_, h)| h);
    let top = values
        .iter()
        .enumerate()
        .map(|(i, v)| high(i).map_or(*v, |h| h.max(*v)))
        .fold(reference.unwrap_or(0.0), f64::max);
    let longest = labels.iter().map(|l| l.chars().count()).max().unwrap_or(4) as u32;
    let mut chart = ChartBuilder::on(root)
        .margin(12)
        .margin_right(40)
        .x_label_area_size(28)
        .y_label_area_size(16 + 7 * longest.min(32))
        .build_cartesian_2d(0.0..(top * 1.12).max(1e-9), (0..n - 1).into_segmented())?;
    // Rows read top-down in the order given.
    let row = |i: usize| n - 1 - i;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .light_line_style(GRID)
        .bold_line_style(GRID)
        .axis_style(INK)
        .y_labels(n)
        .y_label_style((FONT, 13).into_font().color(&INK))
        .x_label_style((FONT, 12).into_font().color(&INK))
        .y_label_formatter(&|v| match v {
            SegmentValue::CenterOf(i) if *i < n => labels.get(n - 1 - *i).cloned().unwrap_or_default(),
            _ => String::new(),
        })
        .x_label_formatter(&|x| axis_text(kind, *x))
        .draw()?;
    chart.draw_series(values.iter().enumerate().map(|(i, v)| {
        let mut bar = Rectangle::new(
            [(0.0, SegmentValue::Exact(row(i))), (*v, SegmentValue::Exact(row(i) + 1))],
            PALETTE[0].filled(),
        );
        bar.set_margin(4, 4, 0, 0);
        bar
    }))?;
    // An interval is a whisker across the bar's middle, with ticks at its ends.
    for (i, (low, high)) in intervals.iter().enumerate().filter_map(|(i, x)| x.map(|x| (i, x))) {
        let style = ShapeStyle::from(&INK).stroke_width(2);
        chart.draw_series(LineSeries::new(
            [(low, SegmentValue::CenterOf(row(i))), (high, SegmentValue::CenterOf(row(i)))],
            style,
        ))?;
        for end in [low, high] {
            chart.draw_series(LineSeries::new(
                [(end, SegmentValue::Exact(row(i))), (end, SegmentValue::Exact(row(i) + 1))],
                ShapeStyle::from(&INK).stroke_width(1),
            ))?;
        }
    }
    chart.draw_series(values.iter().enumerate().map(|(i, v)| {
        Text::new(
            Value::Float(*v).show(kind),
            (high(i).map_or(*v, |h| h.max(*v)), SegmentValue::CenterOf(row(i))),
            (FONT, 12).into_font().color(&INK).pos(plotters::style::text_anchor::Pos::new(
                plotters::style::text_anchor::HPos::Left,
                plotters::style::text_anchor::VPos::Center,
            )),
        )
    }))?;
    if let Some(r) = reference {
        chart.draw_series(LineSeries::new(
            [(r, SegmentValue::Exact(0)), (r, SegmentValue::Last)],
            ShapeStyle::from(&INK).stroke_width(1),
        ))?;
    }
    Ok(())
}

fn lines(
    root: &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>,
    x: &[String],
    series: &[(String, Vec<Option<f64>>)],
    kind: Kind,
) -> DrawResult {
    root.fill(&WHITE)?;
    let n = x.len().max(1);
    let top = series.iter().flat_map(|(_, v)| v.iter().flatten()).copied().fold(0.0, f64::max);
    let top = if kind == Kind::Share { top.max(0.25) * 1.1 } else { (top * 1.15).max(1.2) };
    let mut chart = ChartBuilder::on(root)
        .margin(12)
        .margin_right(24)
        .x_label_area_size(30)
        .y_label_area_size(48)
        .build_cartesian_2d((0..n - 1).into_segmented(), 0.0..top)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .light_line_style(GRID)
        .bold_line_style(GRID)
        .axis_style(INK)
        .x_labels(n)
        .x_label_style((FONT, 12).into_font().color(&INK))
        .y_label_style((FONT, 12).into_font().color(&INK))
        .x_label_formatter(&|v| match v {
            SegmentValue::CenterOf(i) => x.get(*i).cloned().unwrap_or_default(),
            _ => String::new(),
        })
        .y_label_formatter(&|y| axis_text(kind, *y))
        .draw()?;
    for (s, (name, values)) in series.iter().enumerate() {
        let colour = PALETTE[s % PALETTE.len()];
        let style = ShapeStyle::from(&colour).stroke_width(2);
        // A missing month breaks the line rather than drawing through it.
        let mut runs: Vec<Vec<(SegmentValue<usize>, f64)>> = vec![vec![]];
        for (i, v) in values.iter().enumerate() {
            match v {
                Some(v) => runs.last_mut().expect("one run").push((SegmentValue::CenterOf(i), *v)),
                None if !runs.last().expect("one run").is_empty() => runs.push(vec![]),
                None => {}
            }
        }
        for run in runs.iter().filter(|r| !r.is_empty()) {
            chart.draw_series(LineSeries::new(run.clone(), style))?;
        }
        chart
            .draw_series(runs.iter().flatten().map(|(x, y)| Circle::new((x.clone(), *y), 3, colour.filled())))?
            .label(name.as_str())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 18, y)], ShapeStyle::from(&colour).stroke_width(3))
            });
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .label_font((FONT, 12).into_font().color(&INK))
        .background_style(WHITE.mix(0.85))
        .border_style(GRID)
        .draw()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charts_are_scalable_svg_with_their_labels() {
        let bars = svg(&Chart::Bars {
            title: "Slowdown by system".into(),
            labels: vec!["auth-service".into(), "légacy-crm".into()],
            values: vec![3.2175, 1.1],
            intervals: vec![Some((2.8, 3.6)), None],
            kind: Kind::Ratio,
            reference: Some(1.0),
        })
        .unwrap();
        assert!(bars.starts_with("<svg width=\"100%\" role=\"img\" aria-label=\"Slowdown by system\""), "{bars}");
        assert!(bars.contains("viewBox"));
        assert!(bars.contains("auth-service") && bars.contains("légacy-crm") && bars.contains("3.22x"));
        // A whisker for the bar with an interval, beside the reference line; none without.
        let without = svg(&Chart::Bars {
            title: "Slowdown by system".into(),
            labels: vec!["auth-service".into(), "légacy-crm".into()],
            values: vec![3.2175, 1.1],
            intervals: vec![None, None],
            kind: Kind::Ratio,
            reference: Some(1.0),
        })
        .unwrap();
        assert!(bars.matches("<polyline").count() > without.matches("<polyline").count(), "{bars}");

        let lines = svg(&Chart::Lines {
            title: "Trend".into(),
            x: vec!["Sep 2026".into(), "Oct 2026".into(), "Nov 2026".into()],
            series: vec![("auth-service".into(), vec![Some(2.0), None, Some(3.0)])],
            kind: Kind::Ratio,
        })
        .unwrap();
        assert!(lines.contains("Oct 2026") && lines.contains("auth-service"));
        assert_eq!(lines.matches("<circle").count(), 2, "one point per known month");
    }

    #[test]
    fn an_empty_chart_still_draws() {
        let empty = svg(&Chart::Bars {
            title: "x".into(),
            labels: vec![],
            values: vec![],
            intervals: vec![],
            kind: Kind::Amount,
            reference: None,
        });
        assert!(empty.is_ok());
    }
}
