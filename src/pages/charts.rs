//! Charts drawn on the server as SVG inside a `<figure>`: no script, nothing fetched, nothing
//! for the Content-Security-Policy to refuse (colours come from classes in our stylesheet).
//! Each chart names itself for a screen reader (`role="img"`, title and description), keys
//! its series in words as well as colour, marks a target with a labelled line, and carries its
//! numbers as a table under a disclosure, the raw value of every cell in `data-value`.

use std::fmt::Write;

/// A series of a line chart: one point per position on the x axis, `None` where nothing was
/// measured (the line breaks there).
pub struct Series {
    pub label: String,
    /// `s0` … `s5` for the colour; with ` dash` the line is dashed.
    pub class: &'static str,
    pub points: Vec<Option<f64>>,
}

/// A horizontal line across a chart, with its words.
pub struct Target {
    pub value: f64,
    pub label: String,
}

/// A table cell: what a person reads, and the number behind it.
pub struct Cell {
    pub text: String,
    pub value: Option<f64>,
}

impl Cell {
    pub fn new(text: String, value: Option<f64>) -> Cell {
        Cell { text, value }
    }
}

/// A chart's numbers.
pub struct Table {
    pub summary: String,
    pub head: Vec<String>,
    /// Each row: its header and its cells.
    pub rows: Vec<(String, Vec<Cell>)>,
}

/// What every chart says of itself.
pub struct Frame<'a> {
    pub id: &'a str,
    pub title: &'a str,
    pub desc: &'a str,
    /// How a value reads on the axis.
    pub tick: &'a dyn Fn(f64) -> String,
}

const W: f64 = 640.0;
const H: f64 = 260.0;
const LEFT: f64 = 64.0;
const RIGHT: f64 = 24.0;
const TOP: f64 = 16.0;
const BOTTOM: f64 = 32.0;
/// Room for the row labels of horizontal bars.
const LABELS: f64 = 150.0;

/// A top for the axis at or above `max` and a step that divides it into four or five.
pub fn nice_scale(max: f64) -> (f64, f64) {
    if max.is_nan() || max <= 0.0 {
        return (1.0, 0.25);
    }
    let raw = max / 4.0;
    let magnitude = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * magnitude);
    ((max / step).ceil() * step, step)
}

/// Text for SVG or HTML, with markup characters escaped.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

fn open_svg(out: &mut String, f: &Frame, height: f64) {
    let _ = write!(
        out,
        r#"<svg viewBox="0 0 {W} {height}" role="img" aria-labelledby="{id}-t {id}-d"><title id="{id}-t">{}</title><desc id="{id}-d">{}</desc>"#,
        esc(f.title),
        esc(f.desc),
        id = f.id,
    );
}

/// Horizontal grid lines and their labels for a vertical value axis from 0 to `top`.
fn value_axis(out: &mut String, f: &Frame, top: f64, step: f64) {
    let plot = H - TOP - BOTTOM;
    let mut v = 0.0;
    while v <= top + step / 1000.0 {
        let y = TOP + plot * (1.0 - v / top);
        let _ = write!(
            out,
            r#"<line class="grid" x1="{LEFT}" x2="{}" y1="{y:.1}" y2="{y:.1}"/><text class="tick" x="{}" y="{:.1}" text-anchor="end">{}</text>"#,
            W - RIGHT,
            LEFT - 6.0,
            y + 4.0,
            esc(&(f.tick)(v)),
        );
        v += step;
    }
}

/// Vertical grid lines and their labels for a horizontal value axis from 0 to `top`, right
/// of the row labels.
fn across_axis(out: &mut String, f: &Frame, (top, step): (f64, f64), plot_w: f64, height: f64) {
    let mut v = 0.0;
    while v <= top + step / 1000.0 {
        let x = LABELS + plot_w * v / top;
        let _ = write!(
            out,
            r#"<line class="grid" x1="{x:.1}" x2="{x:.1}" y1="{TOP}" y2="{:.1}"/><text class="tick" x="{x:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
            height - BOTTOM,
            height - BOTTOM + 16.0,
            esc(&(f.tick)(v)),
        );
        v += step;
    }
}

fn target_line(out: &mut String, target: &Option<Target>, top: f64) {
    if let Some(t) = target {
        let y = TOP + (H - TOP - BOTTOM) * (1.0 - t.value / top);
        let _ = write!(
            out,
            r#"<line class="target" x1="{LEFT}" x2="{}" y1="{y:.1}" y2="{y:.1}"/><text class="target-label" x="{}" y="{:.1}" text-anchor="end">{}</text>"#,
            W - RIGHT,
            W - RIGHT,
            y - 5.0,
            esc(&t.label),
        );
    }
}

/// A line chart over `x` (months): each series a line with a dot per value, the target a
/// labelled dashed line. The axis starts at zero and reaches past the target, or ends at
/// `top` when one is given (100 for shares).
pub fn lines(
    f: &Frame,
    x: &[String],
    series: &[Series],
    target: Option<Target>,
    top: Option<f64>,
) -> String {
    let max = series
        .iter()
        .flat_map(|s| s.points.iter().flatten())
        .copied()
        .chain(target.as_ref().map(|t| t.value))
        .fold(0.0, f64::max);
    let (top, step) = match top {
        Some(top) => (top, nice_scale(top).1),
        None => nice_scale(max * 1.05),
    };
    let mut out = String::new();
    open_svg(&mut out, f, H);
    value_axis(&mut out, f, top, step);
    let slot = (W - LEFT - RIGHT) / x.len().max(1) as f64;
    let at_x = |i: usize| LEFT + slot * (i as f64 + 0.5);
    let at_y = |v: f64| TOP + (H - TOP - BOTTOM) * (1.0 - v / top);
    for (i, label) in x.iter().enumerate() {
        let _ = write!(
            out,
            r#"<text class="tick" x="{:.1}" y="{}" text-anchor="middle">{}</text>"#,
            at_x(i),
            H - BOTTOM + 18.0,
            esc(label)
        );
    }
    target_line(&mut out, &target, top);
    for s in series {
        let mut path = String::new();
        let mut pen_down = false;
        for (i, p) in s.points.iter().enumerate() {
            match p {
                Some(v) => {
                    let _ = write!(
                        path,
                        "{}{:.1},{:.1} ",
                        if pen_down { "L" } else { "M" },
                        at_x(i),
                        at_y(*v)
                    );
                    pen_down = true;
                }
                None => pen_down = false,
            }
        }
        let _ = write!(
            out,
            r#"<path class="line {}" d="{}"/>"#,
            s.class,
            path.trim()
        );
        for (i, p) in s.points.iter().enumerate() {
            if let Some(v) = p {
                let _ = write!(
                    out,
                    r#"<circle class="dot {}" cx="{:.1}" cy="{:.1}" r="3.5"><title>{} · {}: {}</title></circle>"#,
                    s.class,
                    at_x(i),
                    at_y(*v),
                    esc(&x[i.min(x.len().saturating_sub(1))]),
                    esc(&s.label),
                    esc(&(f.tick)(*v)),
                );
            }
        }
    }
    out.push_str("</svg>");
    out
}

/// One bar of a horizontal bar chart.
pub struct Bar {
    pub label: String,
    pub value: Option<f64>,
    /// What is written at the bar's end.
    pub text: String,
    pub class: &'static str,
}

/// Horizontal bars from 0 to `top` (100 for shares), the target a labelled vertical line.
pub fn bars(f: &Frame, rows: &[Bar], top: f64, target: Option<Target>) -> String {
    let row_h = 26.0;
    let height = TOP + BOTTOM + row_h * rows.len().max(1) as f64;
    let plot_w = W - LABELS - RIGHT - 70.0;
    let mut out = String::new();
    open_svg(&mut out, f, height);
    let (_, step) = nice_scale(top);
    across_axis(&mut out, f, (top, step), plot_w, height);
    for (i, bar) in rows.iter().enumerate() {
        let y = TOP + row_h * i as f64;
        let width = plot_w * bar.value.unwrap_or(0.0).clamp(0.0, top) / top;
        let _ = write!(
            out,
            r#"<text class="label" x="{:.1}" y="{:.1}" text-anchor="end">{}</text><rect class="bar {}" x="{LABELS}" y="{:.1}" width="{width:.1}" height="{:.1}"/><text class="value" x="{:.1}" y="{:.1}">{}</text>"#,
            LABELS - 8.0,
            y + row_h / 2.0 + 4.0,
            esc(&bar.label),
            bar.class,
            y + 4.0,
            row_h - 8.0,
            LABELS + width + 6.0,
            y + row_h / 2.0 + 4.0,
            esc(&bar.text),
        );
    }
    if let Some(t) = target {
        let x = LABELS + plot_w * t.value.clamp(0.0, top) / top;
        let _ = write!(
            out,
            r#"<line class="target" x1="{x:.1}" x2="{x:.1}" y1="{}" y2="{:.1}"/><text class="target-label" x="{x:.1}" y="{}" text-anchor="end">{}</text>"#,
            TOP - 4.0,
            height - BOTTOM,
            TOP - 6.0 + 2.0,
            esc(&t.label),
        );
    }
    out.push_str("</svg>");
    out
}

/// Stacked columns over `x` (months): each column the sum of its parts, one part per key.
pub fn columns(
    f: &Frame,
    x: &[String],
    keys: &[(String, &'static str)],
    parts: &[Vec<f64>],
) -> String {
    let max = parts
        .iter()
        .map(|p| p.iter().sum::<f64>())
        .fold(0.0, f64::max);
    let (top, step) = nice_scale(max);
    let mut out = String::new();
    open_svg(&mut out, f, H);
    value_axis(&mut out, f, top, step);
    let slot = (W - LEFT - RIGHT) / x.len().max(1) as f64;
    let plot = H - TOP - BOTTOM;
    for (i, label) in x.iter().enumerate() {
        let left = LEFT + slot * i as f64 + slot * 0.15;
        let mut base = 0.0;
        for (k, (name, class)) in keys.iter().enumerate() {
            let v = parts.get(i).and_then(|p| p.get(k)).copied().unwrap_or(0.0);
            if v <= 0.0 {
                continue;
            }
            let y = TOP + plot * (1.0 - (base + v) / top);
            let h = plot * v / top;
            let _ = write!(
                out,
                r#"<rect class="bar {class}" x="{left:.1}" y="{y:.1}" width="{:.1}" height="{h:.1}"><title>{} · {}: {}</title></rect>"#,
                slot * 0.7,
                esc(label),
                esc(name),
                esc(&(f.tick)(v)),
            );
            base += v;
        }
        let _ = write!(
            out,
            r#"<text class="tick" x="{:.1}" y="{}" text-anchor="middle">{}</text>"#,
            LEFT + slot * (i as f64 + 0.5),
            H - BOTTOM + 18.0,
            esc(label)
        );
    }
    out.push_str("</svg>");
    out
}

/// Stacked horizontal bars, one per row (clinic), a part per key, the total at the end.
pub fn stacked_bars(
    f: &Frame,
    rows: &[(String, Vec<f64>)],
    keys: &[(String, &'static str)],
) -> String {
    let row_h = 28.0;
    let height = TOP + BOTTOM + row_h * rows.len().max(1) as f64;
    let plot_w = W - LABELS - RIGHT - 70.0;
    let max = rows
        .iter()
        .map(|(_, p)| p.iter().sum::<f64>())
        .fold(0.0, f64::max);
    let (top, step) = nice_scale(max);
    let mut out = String::new();
    open_svg(&mut out, f, height);
    across_axis(&mut out, f, (top, step), plot_w, height);
    for (i, (label, parts)) in rows.iter().enumerate() {
        let y = TOP + row_h * i as f64;
        let _ = write!(
            out,
            r#"<text class="label" x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
            LABELS - 8.0,
            y + row_h / 2.0 + 4.0,
            esc(label),
        );
        let mut left = LABELS;
        for (k, (name, class)) in keys.iter().enumerate() {
            let v = parts.get(k).copied().unwrap_or(0.0);
            if v <= 0.0 {
                continue;
            }
            let width = plot_w * v / top;
            let _ = write!(
                out,
                r#"<rect class="bar {class}" x="{left:.1}" y="{:.1}" width="{width:.1}" height="{:.1}"><title>{} · {}: {}</title></rect>"#,
                y + 4.0,
                row_h - 8.0,
                esc(label),
                esc(name),
                esc(&(f.tick)(v)),
            );
            left += width;
        }
        let _ = write!(
            out,
            r#"<text class="value" x="{:.1}" y="{:.1}">{}</text>"#,
            left + 6.0,
            y + row_h / 2.0 + 4.0,
            esc(&(f.tick)(parts.iter().sum())),
        );
    }
    out.push_str("</svg>");
    out
}

/// A key to a chart's series: a swatch (line, dashed line or box) and the words.
pub struct Key {
    pub label: String,
    pub class: &'static str,
    pub shape: &'static str,
}

/// The chart in its figure: caption, the SVG, its key and its numbers.
pub fn figure(id: &str, caption: &str, svg: &str, keys: &[Key], table: &Table) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        r#"<figure class="chart" id="{id}"><figcaption>{}</figcaption>{svg}"#,
        esc(caption)
    );
    if !keys.is_empty() {
        out.push_str(r#"<ul class="keys">"#);
        for k in keys {
            let _ = write!(
                out,
                r#"<li><span class="swatch {} {}" aria-hidden="true"></span>{}</li>"#,
                k.shape,
                k.class,
                esc(&k.label)
            );
        }
        out.push_str("</ul>");
    }
    let _ = write!(
        out,
        r#"<details><summary>{}</summary><table><thead><tr>"#,
        esc(&table.summary)
    );
    for h in &table.head {
        let _ = write!(out, r#"<th scope="col">{}</th>"#, esc(h));
    }
    out.push_str("</tr></thead><tbody>");
    for (header, cells) in &table.rows {
        let _ = write!(out, r#"<tr><th scope="row">{}</th>"#, esc(header));
        for c in cells {
            match c.value {
                Some(v) => {
                    let _ = write!(out, r#"<td data-value="{v}">{}</td>"#, esc(&c.text));
                }
                None => {
                    let _ = write!(out, "<td>{}</td>", esc(&c.text));
                }
            }
        }
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table></details></figure>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scales_are_round() {
        assert_eq!(nice_scale(100.0), (100.0, 25.0));
        assert_eq!(nice_scale(7.3), (8.0, 2.0));
        assert_eq!(nice_scale(260.0), (300.0, 100.0));
        assert_eq!(nice_scale(0.0), (1.0, 0.25));
        assert_eq!(nice_scale(f64::NAN), (1.0, 0.25));
    }

    #[test]
    fn lines_break_where_nothing_was_measured_and_text_is_escaped() {
        let tick = |v: f64| format!("{v}");
        let f = Frame {
            id: "c1",
            title: "A <b> & c",
            desc: "d",
            tick: &tick,
        };
        let x: Vec<String> = ["1", "2", "3"].map(String::from).to_vec();
        let svg = lines(
            &f,
            &x,
            &[Series {
                label: "m".into(),
                class: "s0",
                points: vec![Some(1.0), None, Some(3.0)],
            }],
            Some(Target {
                value: 2.0,
                label: "target".into(),
            }),
            None,
        );
        assert!(svg.contains("A &lt;b&gt; &amp; c"), "{svg}");
        // Two separate moves: the line does not bridge the month without a value.
        let d = svg
            .split(r#" d=""#)
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap();
        assert_eq!(d.matches('M').count(), 2, "{d}");
        assert_eq!(svg.matches("<circle").count(), 2);
        assert!(svg.contains(r#"class="target""#));
    }
}
