//! The pictures of a run: `report.html` (charts as inline SVG, tables, every counter) and,
//! with `-e netviz`, `report.pdf` (tcpflow 1.6's name) holding the same charts.
//!
//! Bounded: [`collect::Timeline`] keeps at most [`collect::BINS`] time bins and
//! [`collect::Tables`] fixed top-N tables and heavy-hitter summaries, so a capture of
//! 400,000 connections gives a page of the same size as one of ten.
//!
//! Fed from three places, each a small marked hook in the run:
//! - the packet loop: [`collect::Timeline::frame`] per frame (time, captured length), and
//!   the engine's events through [`Tee`] (payload per direction and service port);
//! - the report: each direction's record ([`crate::report::DirRecord`]), as report.xml
//!   gets it, into [`collect::Tables`];
//! - the end: the totals report.xml is written from ([`crate::report::Totals`]); the
//!   page's counter table and the last snapshot of every time series are those values.
//!
//! The collector builds without the `viz` feature (it is plain counting); the charts, page
//! and PDF need plotters (and pdf-writer for the PDF), which the field builds leave out.

#[cfg(feature = "viz")]
pub mod charts;
pub mod collect;
#[cfg(feature = "viz")]
pub mod page;
#[cfg(feature = "netviz")]
pub mod pdf;
#[cfg(feature = "viz")]
pub mod svg;

use std::path::PathBuf;

use tcpflow_core::{CloseReason, Dir, FlowInfo, GapReason, Sink};

pub use collect::{Snap, Tables, Timeline};

/// Where the pictures go (from the flags).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VizOpts {
    /// report.html (default: in the output folder when files are written).
    pub html: Option<PathBuf>,
    /// report.pdf (`-e netviz`).
    pub pdf: Option<PathBuf>,
    /// `--report-interval`: rewrite them every this many seconds of a live capture.
    pub interval_secs: Option<u64>,
}

impl VizOpts {
    pub fn any(&self) -> bool {
        self.html.is_some() || self.pdf.is_some()
    }
}

/// 1536 -> "1.5 KiB".
pub fn fmt_bytes(n: u64) -> String {
    const U: [&str; 7] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1024.0 && i < U.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 || (v - v.round()).abs() < 0.05 {
        format!("{} {}", v.round() as u64, U[i])
    } else {
        format!("{v:.1} {}", U[i])
    }
}

/// `--report-interval`: when to rewrite the pictures during a live capture, and the
/// counter groups the run's report adds after the host's.
#[derive(Debug)]
pub struct Refresh {
    pub opts: VizOpts,
    every: std::time::Duration,
    last: std::time::Instant,
    pub extra: Vec<crate::report::Group>,
    pub file_mode: u32,
}

impl Refresh {
    pub fn new(
        opts: &VizOpts,
        extra: Vec<crate::report::Group>,
        file_mode: u32,
    ) -> Option<Refresh> {
        let secs = opts.interval_secs.filter(|_| opts.any())?;
        Some(Refresh {
            opts: opts.clone(),
            every: std::time::Duration::from_secs(secs.max(1)),
            last: std::time::Instant::now(),
            extra,
            file_mode,
        })
    }

    /// Whether a refresh is due (and if so, the next is counted from now).
    pub fn due(&mut self) -> bool {
        if self.last.elapsed() < self.every {
            return false;
        }
        self.last = std::time::Instant::now();
        true
    }

    /// Rewrites the pictures from the run so far: the bins closed with the counters as they
    /// stand (on a copy: the run's bins go on), the tables of the directions closed so far.
    pub fn write(
        &self,
        timeline: &Timeline,
        tables: Option<&Tables>,
        totals: &crate::report::Totals<'_>,
    ) -> Result<(), String> {
        #[cfg(feature = "viz")]
        {
            let mut tl = timeline.clone();
            tl.finish(Snap::of(totals.stats, totals.host));
            let empty = Tables::default();
            let line = format!(
                "{} (refreshed during the capture every {} s; the complete page is written at the end)",
                crate::report::command_line(),
                self.every.as_secs()
            );
            write(
                &self.opts,
                &tl,
                tables.unwrap_or(&empty),
                totals,
                &line,
                self.file_mode,
            )
        }
        #[cfg(not(feature = "viz"))]
        {
            let _ = (timeline, tables, totals);
            Err("this tcpflow was built without the pictures (cargo feature viz)".into())
        }
    }
}

/// The engine's events to the writer and, for data, to the timeline too.
pub struct Tee<'a, S> {
    pub sink: &'a mut S,
    pub timeline: Option<&'a mut Timeline>,
}

impl<S: Sink> Sink for Tee<'_, S> {
    #[inline]
    fn open(&mut self, flow: &FlowInfo) {
        self.sink.open(flow)
    }
    #[inline]
    fn data(&mut self, flow: &FlowInfo, dir: Dir, offset: u64, data: &[u8]) {
        // cfg!: the field builds (no `viz`) never make a timeline and drop this code.
        if let Some(t) = self.timeline.as_mut().filter(|_| cfg!(feature = "viz")) {
            t.data(flow, dir, data.len());
        }
        self.sink.data(flow, dir, offset, data)
    }
    #[inline]
    fn gap(&mut self, flow: &FlowInfo, dir: Dir, offset: u64, len: u64, reason: GapReason) {
        self.sink.gap(flow, dir, offset, len, reason)
    }
    #[inline]
    fn redelivered(&mut self, flow: &FlowInfo, dir: Dir, offset: u64, data: &[u8]) -> bool {
        self.sink.redelivered(flow, dir, offset, data)
    }
    #[inline]
    fn late(&mut self, flow: &FlowInfo, dir: Dir, offset: u64, data: &[u8]) -> bool {
        self.sink.late(flow, dir, offset, data)
    }
    #[inline]
    fn close(&mut self, flow: &FlowInfo, reason: CloseReason) {
        self.sink.close(flow, reason)
    }
}

/// The end of a run: closes the time bins with the totals report.xml was written from and
/// writes the pictures. `timeline` is `None` where no packets were read (`--spool-export`).
pub fn finish_run(
    opts: &VizOpts,
    timeline: Option<Box<Timeline>>,
    tables: Option<Box<Tables>>,
    totals: &crate::report::Totals<'_>,
    file_mode: u32,
) -> Result<(), String> {
    if !opts.any() {
        return Ok(());
    }
    #[cfg(feature = "viz")]
    {
        let mut timeline = timeline.unwrap_or_default();
        timeline.finish(Snap::of(totals.stats, totals.host));
        let tables = tables.unwrap_or_default();
        write(
            opts,
            &timeline,
            &tables,
            totals,
            &crate::report::command_line(),
            file_mode,
        )
    }
    #[cfg(not(feature = "viz"))]
    {
        let _ = (timeline, tables, totals, file_mode);
        Err("this tcpflow was built without the pictures (cargo feature viz)".into())
    }
}

/// Writes report.html and report.pdf as asked, each atomically (a temporary file renamed
/// over the name, so a reader, or a refresh with `--report-interval`, never sees half a
/// page).
#[cfg(feature = "viz")]
pub fn write(
    opts: &VizOpts,
    timeline: &Timeline,
    tables: &Tables,
    totals: &crate::report::Totals<'_>,
    command_line: &str,
    file_mode: u32,
) -> Result<(), String> {
    if let Some(p) = &opts.html {
        let page = page::Page {
            timeline,
            tables,
            totals,
            command_line,
            page_dir: p.parent(),
        };
        write_atomic(p, file_mode, |w| page::render(&page, w))?;
    }
    #[cfg(feature = "netviz")]
    if let Some(p) = &opts.pdf {
        let bytes = pdf::page(timeline, tables, page::addr_text, command_line)?;
        write_atomic(p, file_mode, |w| {
            std::io::Write::write_all(w, &bytes).map_err(|e| crate::input::io_message(&e))
        })?;
    }
    Ok(())
}

#[cfg(feature = "viz")]
fn write_atomic(
    path: &std::path::Path,
    mode: u32,
    fill: impl FnOnce(&mut std::io::BufWriter<std::fs::File>) -> Result<(), String>,
) -> Result<(), String> {
    let name = path
        .file_name()
        .ok_or_else(|| format!("{}: not a file name", path.display()))?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(".tmp");
    let tmp = path.with_file_name(tmp_name);
    let f = crate::run::create_report_file(&tmp, mode)?;
    let mut w = std::io::BufWriter::with_capacity(64 * 1024, f);
    let written = fill(&mut w).and_then(|()| {
        let f = w
            .into_inner()
            .map_err(|e| crate::input::io_message(e.error()))?;
        f.sync_data().map_err(|e| crate::input::io_message(&e))?;
        std::fs::rename(&tmp, path).map_err(|e| crate::input::io_message(&e))
    });
    written.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        format!("writing {}: {e}", path.display())
    })
}
