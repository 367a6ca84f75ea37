//! The charts, laid out by plotters: drawn by our SVG backend ([`super::svg`]) into strings
//! for the page (inline SVG), and by the PDF backend ([`super::pdf`]) onto report.pdf's one
//! page ([`draw_on`] takes any backend). In the SVG, text is left as `<text>` in a generic
//! font family: the page needs no font file and loads nothing.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::collect::{Bin, Snap, Tables, Timeline, PORT_SLOTS, SIZE_BUCKETS};
use super::fmt_bytes;
use super::svg::SvgBackend;

/// One chart: an id for the page (and the tests), a title, and its SVG.
#[derive(Clone, Debug)]
pub struct Chart {
    pub id: &'static str,
    pub title: String,
    pub svg: String,
}

/// Charts in the report (each_draw hands out this many).
pub const COUNT: usize = 9;

pub const WIDTH: u32 = 760;
pub const HEIGHT: u32 = 300;

const PALETTE: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(255, 127, 14),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
];

fn err<E: std::fmt::Debug>(e: E) -> String {
    format!("drawing a chart: {e:?}")
}

/// A named series over the bins (one value per bin).
pub struct Series {
    name: String,
    values: Vec<f64>,
}

/// Step lines over time: each bin a flat segment, so a single bin still shows.
fn time_chart<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    y_desc: &str,
    secs_per_bin: f64,
    series: &[Series],
) -> Result<(), String> {
    {
        root.fill(&WHITE).map_err(err)?;
        let n = series.first().map_or(0, |s| s.values.len()).max(1);
        let x_max = n as f64 * secs_per_bin;
        let y_max = series
            .iter()
            .flat_map(|s| s.values.iter().copied())
            .fold(0.0f64, f64::max);
        let y_max = if y_max > 0.0 { y_max * 1.08 } else { 1.0 };
        let mut chart = ChartBuilder::on(root)
            .caption(title, ("sans-serif", 16))
            .margin(8)
            .x_label_area_size(34)
            .y_label_area_size(70)
            .build_cartesian_2d(0f64..x_max, 0f64..y_max)
            .map_err(err)?;
        chart
            .configure_mesh()
            // The bold lines only: the light ones are most of the drawing and of the SVG.
            .max_light_lines(0)
            .x_desc("seconds from the first packet")
            .y_desc(y_desc)
            .y_label_formatter(&|v| fmt_si(*v))
            .x_label_formatter(&|v| fmt_secs(*v))
            .draw()
            .map_err(err)?;
        for (i, se) in series.iter().enumerate() {
            let c = PALETTE[i % PALETTE.len()];
            let pts = step_points(&se.values, secs_per_bin);
            chart
                .draw_series(LineSeries::new(pts, c.stroke_width(2)))
                .map_err(err)?
                .label(se.name.clone())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 18, y)], c.stroke_width(2))
                });
        }
        if !series.is_empty() {
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperRight)
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK.mix(0.4))
                .draw()
                .map_err(err)?;
        }
    }
    Ok(())
}

/// The corners of a step line over `values` (bin `k` spans `k..k + 1` bins): a run of equal
/// values is one flat segment, so the line is the same with far fewer points (each point is
/// formatted into the SVG: a long quiet capture drew thousands for nothing).
fn step_points(values: &[f64], secs_per_bin: f64) -> Vec<(f64, f64)> {
    let mut pts = Vec::new();
    for (k, &v) in values.iter().enumerate() {
        if k == 0 || values[k - 1] != v {
            pts.push((k as f64 * secs_per_bin, v));
        }
        if values.get(k + 1) != Some(&v) {
            pts.push(((k + 1) as f64 * secs_per_bin, v));
        }
    }
    pts
}

/// Horizontal bars, largest on top.
fn bar_chart<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    x_desc: &str,
    rows: &[(String, f64)],
) -> Result<(), String> {
    {
        root.fill(&WHITE).map_err(err)?;
        let n = rows.len().max(1);
        let x_max = rows.iter().map(|r| r.1).fold(0.0f64, f64::max);
        let x_max = if x_max > 0.0 { x_max * 1.05 } else { 1.0 };
        let labels: Vec<String> = rows.iter().map(|r| r.0.clone()).collect();
        let mut chart = ChartBuilder::on(root)
            .caption(title, ("sans-serif", 16))
            .margin(8)
            .x_label_area_size(34)
            .y_label_area_size(230)
            .build_cartesian_2d(0f64..x_max, 0f64..n as f64)
            .map_err(err)?;
        chart
            .configure_mesh()
            // The bold lines only: the light ones are most of the drawing and of the SVG.
            .max_light_lines(0)
            .disable_y_mesh()
            .x_desc(x_desc)
            .x_label_formatter(&|v| fmt_si(*v))
            .y_labels(n * 2 + 1)
            .y_label_formatter(&|v| {
                // Labels sit at bar centres (k + 0.5), counted from the top.
                let k = *v - 0.5;
                if (k - k.round()).abs() > 1e-6 || k < 0.0 {
                    return String::new();
                }
                let i = n - 1 - k.round() as usize;
                labels.get(i).cloned().unwrap_or_default()
            })
            .draw()
            .map_err(err)?;
        chart
            .draw_series(rows.iter().enumerate().map(|(i, (_, v))| {
                let y0 = (n - 1 - i) as f64 + 0.15;
                Rectangle::new([(0.0, y0), (*v, y0 + 0.7)], PALETTE[0].filled())
            }))
            .map_err(err)?;
    }
    Ok(())
}

/// Vertical bars over log2 size buckets.
fn size_chart<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, t: &Tables) -> Result<(), String> {
    let used: Vec<usize> = (0..SIZE_BUCKETS).filter(|&i| t.conn_sizes[i] > 0).collect();
    let (lo, hi) = match (used.first(), used.last()) {
        (Some(&a), Some(&b)) => (a, b),
        _ => (0, 0),
    };
    {
        root.fill(&WHITE).map_err(err)?;
        let y_max = t.conn_sizes.iter().copied().max().unwrap_or(0).max(1) as f64 * 1.08;
        let mut chart = ChartBuilder::on(root)
            .caption(
                "Connection sizes (both directions, log2 buckets)",
                ("sans-serif", 16),
            )
            .margin(8)
            .x_label_area_size(34)
            .y_label_area_size(70)
            .build_cartesian_2d(lo as f64..(hi + 1) as f64, 0f64..y_max)
            .map_err(err)?;
        chart
            .configure_mesh()
            // The bold lines only: the light ones are most of the drawing and of the SVG.
            .max_light_lines(0)
            .x_desc("bytes (bucket from)")
            .y_desc("connections")
            .x_labels((hi - lo + 2).min(16))
            .x_label_formatter(&|v| {
                let b = v.round() as usize;
                if (v - v.round()).abs() > 1e-6 {
                    return String::new();
                }
                match b {
                    0 => "0".into(),
                    b if b <= 64 => fmt_bytes(1u64 << (b - 1)),
                    _ => String::new(),
                }
            })
            .y_label_formatter(&|v| fmt_si(*v))
            .draw()
            .map_err(err)?;
        chart
            .draw_series((lo..=hi).map(|i| {
                Rectangle::new(
                    [
                        (i as f64 + 0.08, 0.0),
                        (i as f64 + 0.92, t.conn_sizes[i] as f64),
                    ],
                    PALETTE[2].filled(),
                )
            }))
            .map_err(err)?;
    }
    Ok(())
}

fn deltas(bins: &[Bin], f: impl Fn(&Snap) -> u64) -> Vec<f64> {
    let mut prev = 0;
    bins.iter()
        .map(|b| {
            let v = f(&b.snap);
            // gap_bytes shrinks when late bytes fill a gap: a bin shows what it added.
            let d = v.saturating_sub(prev);
            prev = v;
            d as f64
        })
        .collect()
}

/// One chart to draw: its kind and data.
pub enum Draw<'a> {
    Time {
        y_desc: &'a str,
        secs_per_bin: f64,
        series: &'a [Series],
    },
    Bars {
        x_desc: &'a str,
        rows: &'a [(String, f64)],
    },
    Sizes(&'a Tables),
}

/// Draws `d` titled `title` on `area` (any plotters backend: [`SvgBackend`] for the page, PDF).
pub fn draw_on<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    title: &str,
    d: &Draw<'_>,
) -> Result<(), String> {
    match d {
        Draw::Time {
            y_desc,
            secs_per_bin,
            series,
        } => time_chart(area, title, y_desc, *secs_per_bin, series),
        Draw::Bars { x_desc, rows } => bar_chart(area, title, x_desc, rows),
        Draw::Sizes(t) => size_chart(area, t),
    }
}

/// One chart as SVG.
pub fn svg(title: &str, d: &Draw<'_>) -> Result<String, String> {
    // A chart takes 4 to 15 KB: one allocation rather than a dozen copies as it grows.
    let mut s = String::with_capacity(16 << 10);
    {
        let root = SvgBackend::with_string(&mut s, (WIDTH, HEIGHT)).into_drawing_area();
        draw_on(&root, title, d)?;
        root.present().map_err(err)?;
    }
    Ok(s)
}

/// Every chart of the report as SVG, in page order, handed to `f` as soon as it is drawn
/// (the page writes each out before the next is drawn: one chart in memory at a time).
pub fn each(
    tl: &Timeline,
    t: &Tables,
    addr_label: impl Fn(tcpflow_core::Addr) -> String,
    mut f: impl FnMut(Chart) -> Result<(), String>,
) -> Result<(), String> {
    each_draw(tl, t, addr_label, |id, title, d| {
        f(Chart {
            id,
            title: title.to_string(),
            svg: svg(title, &d)?,
        })
    })
}

/// Every chart of the report, in page order, as what to draw.
pub fn each_draw(
    tl: &Timeline,
    t: &Tables,
    addr_label: impl Fn(tcpflow_core::Addr) -> String,
    mut f: impl FnMut(&'static str, &str, Draw<'_>) -> Result<(), String>,
) -> Result<(), String> {
    let bins = tl.bins();
    let secs = tl.width_ns() as f64 / 1e9;
    let rate = |v: u64| v as f64 / secs;

    let title = "Traffic (bytes/s): captured frames, and payload delivered per direction";
    f(
        "chart-bytes",
        title,
        Draw::Time {
            y_desc: "bytes/s",
            secs_per_bin: secs,
            series: &[
                Series {
                    name: "captured frames".into(),
                    values: bins.iter().map(|b| rate(b.captured_bytes)).collect(),
                },
                Series {
                    name: "payload A->B".into(),
                    values: bins.iter().map(|b| rate(b.dir_bytes[0])).collect(),
                },
                Series {
                    name: "payload B->A".into(),
                    values: bins.iter().map(|b| rate(b.dir_bytes[1])).collect(),
                },
            ],
        },
    )?;

    let title = "Packets per second";
    f(
        "chart-packets",
        title,
        Draw::Time {
            y_desc: "packets/s",
            secs_per_bin: secs,
            series: &[Series {
                name: "packets read".into(),
                values: bins.iter().map(|b| rate(b.packets)).collect(),
            }],
        },
    )?;

    // The six busiest port slots, and the rest.
    let slots = tl.port_slots();
    let mut order: Vec<usize> = (0..PORT_SLOTS).filter(|&i| slots[i].used).collect();
    order.sort_by(|&a, &b| slots[b].bytes.cmp(&slots[a].bytes));
    order.truncate(6);
    let mut port_series: Vec<Series> = order
        .iter()
        .map(|&i| Series {
            name: format!("port {}", slots[i].port),
            values: bins.iter().map(|b| rate(b.port_bytes[i])).collect(),
        })
        .collect();
    let other: Vec<f64> = bins
        .iter()
        .map(|b| {
            let shown = order
                .iter()
                .fold(0u64, |a, &i| a.saturating_add(b.port_bytes[i]));
            rate(
                b.dir_bytes[0]
                    .saturating_add(b.dir_bytes[1])
                    .saturating_sub(shown),
            )
        })
        .collect();
    if other.iter().any(|v| *v > 0.0) {
        port_series.push(Series {
            name: "other ports".into(),
            values: other,
        });
    }
    let title = "Payload by service port (bytes/s; the lower port of each connection)";
    f(
        "chart-ports",
        title,
        Draw::Time {
            y_desc: "bytes/s",
            secs_per_bin: secs,
            series: &port_series,
        },
    )?;

    let mut open = Vec::with_capacity(bins.len());
    for b in bins {
        open.push(b.snap.opened.saturating_sub(b.snap.closed) as f64);
    }
    let title = "Connections open (at the end of each bin) and opened";
    f(
        "chart-connections",
        title,
        Draw::Time {
            y_desc: "connections",
            secs_per_bin: secs,
            series: &[
                Series {
                    name: "open".into(),
                    values: open,
                },
                Series {
                    name: "opened".into(),
                    values: deltas(bins, |s| s.opened),
                },
            ],
        },
    )?;

    let title = "Capture health: bytes lost or in doubt per bin";
    f(
        "chart-loss",
        title,
        Draw::Time {
            y_desc: "bytes",
            secs_per_bin: secs,
            series: &[
                Series {
                    name: "gap bytes (holes in files)".into(),
                    values: deltas(bins, |s| s.gap_bytes),
                },
                Series {
                    name: "conflicting retransmissions".into(),
                    values: deltas(bins, |s| s.conflict_bytes),
                },
                Series {
                    name: "out of window".into(),
                    values: deltas(bins, |s| s.out_of_window_bytes),
                },
                Series {
                    name: "fragments dropped".into(),
                    values: deltas(bins, |s| s.frag_dropped_bytes),
                },
            ],
        },
    )?;

    let title = "Capture health: events per bin";
    f(
        "chart-events",
        title,
        Draw::Time {
            y_desc: "events",
            secs_per_bin: secs,
            series: &[
                Series {
                    name: "gaps".into(),
                    values: deltas(bins, |s| s.gaps),
                },
                Series {
                    name: "evictions (table full)".into(),
                    values: deltas(bins, |s| s.evicted),
                },
                Series {
                    name: "pool full (memory bound)".into(),
                    values: deltas(bins, |s| s.pool_full),
                },
                Series {
                    name: "cut by snap length".into(),
                    values: deltas(bins, |s| s.snaplen_cut),
                },
                Series {
                    name: "capture queue drops".into(),
                    values: deltas(bins, |s| s.queue_dropped),
                },
                Series {
                    name: "packets not processed".into(),
                    values: deltas(bins, |s| s.unprocessed_packets),
                },
            ],
        },
    )?;

    f("chart-sizes", "Connection sizes", Draw::Sizes(t))?;

    let rows: Vec<(String, f64)> = t
        .talkers
        .top(10)
        .into_iter()
        .map(|(a, n, _)| (addr_label(a), n as f64))
        .collect();
    let title = "Top talkers (bytes sent)";
    f(
        "chart-talkers",
        title,
        Draw::Bars {
            x_desc: "bytes",
            rows: &rows,
        },
    )?;

    let rows: Vec<(String, f64)> = t
        .ports
        .top(10)
        .into_iter()
        .map(|(p, n, _)| (format!("port {p}"), n as f64))
        .collect();
    let title = "Top service ports (bytes, both directions)";
    f(
        "chart-topports",
        title,
        Draw::Bars {
            x_desc: "bytes",
            rows: &rows,
        },
    )?;
    Ok(())
}

/// 1234567 -> "1.23M".
pub fn fmt_si(v: f64) -> String {
    let a = v.abs();
    let (d, u) = if a >= 1e12 {
        (1e12, "T")
    } else if a >= 1e9 {
        (1e9, "G")
    } else if a >= 1e6 {
        (1e6, "M")
    } else if a >= 1e3 {
        (1e3, "k")
    } else {
        (1.0, "")
    };
    let x = v / d;
    if u.is_empty() && (x - x.round()).abs() < 1e-9 {
        format!("{}", x.round() as i64)
    } else {
        let s = format!("{x:.2}");
        let s = s.trim_end_matches('0').trim_end_matches('.');
        format!("{s}{u}")
    }
}

fn fmt_secs(v: f64) -> String {
    if v == 0.0 {
        "0".into()
    } else if v.abs() < 1.0 {
        format!("{:.0}ms", v * 1000.0)
    } else {
        fmt_si(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_lines_keep_only_corners() {
        assert_eq!(step_points(&[], 1.0), vec![]);
        assert_eq!(step_points(&[5.0], 2.0), vec![(0.0, 5.0), (2.0, 5.0)]);
        assert_eq!(
            step_points(&[1.0, 1.0, 1.0, 3.0, 3.0, 1.0], 1.0),
            vec![
                (0.0, 1.0),
                (3.0, 1.0),
                (3.0, 3.0),
                (5.0, 3.0),
                (5.0, 1.0),
                (6.0, 1.0)
            ]
        );
    }

    #[test]
    fn si() {
        assert_eq!(fmt_si(0.0), "0");
        assert_eq!(fmt_si(999.0), "999");
        assert_eq!(fmt_si(1500.0), "1.5k");
        assert_eq!(fmt_si(2_000_000.0), "2M");
    }
}
