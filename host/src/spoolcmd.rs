//! Reading a spool back: `--spool-export` (the per-flow files and report of a direct run,
//! by replaying the spool into the same outputs, [`Outputs`]) and `--spool-summary`.

use std::io::{self, Write};
use std::path::Path;

use tcpflow_core::spool::{ReplayFlow, SpoolError, SpoolReader, SpoolStorage, Summary, MAX_RECORD};
use tcpflow_core::{CloseReason, Dir, FlowInfo, GapReason, Sink, Stats};

use crate::cli::Options;
use crate::output::{ConsoleSink, FileSink, Output, Outputs};
use crate::report::{command_line, Creator, Group, HostStats, Report};
use crate::run::{create_report_file, end_outputs, now_ns, output_config, prepare_outdir};
use crate::spool::{self, fmt_size, FileSpool, StorageError, BLOCK_SIZE};
use crate::timefmt;

/// Passes events on and counts what a direct run's engine would have counted, so the
/// export's report has the run's flow totals.
struct Counting<'a, S> {
    inner: &'a mut S,
    stats: Stats,
    /// viz (issue 19): report.html's time bins, placed at each connection's start.
    timeline: Option<&'a mut crate::viz::Timeline>,
}

impl<S: Sink> Sink for Counting<'_, S> {
    // Saturating: the figures come from the spool, whose records may claim anything.
    fn open(&mut self, flow: &FlowInfo) {
        self.stats.flow.opened += 1;
        if flow.conn_index > 0 {
            self.stats.flow.reused += 1;
        }
        if let Some(t) = self.timeline.as_mut().filter(|_| cfg!(feature = "viz")) {
            let snap = crate::viz::Snap::of(&self.stats, &Default::default());
            t.at(flow.first_ts, || snap); // viz (issue 19)
        }
        self.inner.open(flow);
    }
    fn data(&mut self, flow: &FlowInfo, dir: Dir, offset: u64, data: &[u8]) {
        let f = &mut self.stats.flow;
        f.delivered_bytes = f.delivered_bytes.saturating_add(data.len() as u64);
        if let Some(t) = self.timeline.as_mut().filter(|_| cfg!(feature = "viz")) {
            t.data(flow, dir, data.len()); // viz (issue 19)
        }
        self.inner.data(flow, dir, offset, data);
    }
    fn late(&mut self, flow: &FlowInfo, dir: Dir, offset: u64, data: &[u8]) -> bool {
        let n = data.len() as u64;
        self.stats.flow.delivered_bytes += n;
        self.stats.flow.late_filled_bytes += n;
        self.stats.flow.gap_bytes = self.stats.flow.gap_bytes.saturating_sub(n);
        self.inner.late(flow, dir, offset, data)
    }
    fn gap(&mut self, flow: &FlowInfo, dir: Dir, offset: u64, len: u64, reason: GapReason) {
        self.stats.flow.gaps += 1;
        self.stats.flow.gap_bytes = self.stats.flow.gap_bytes.saturating_add(len);
        self.inner.gap(flow, dir, offset, len, reason);
    }
    fn close(&mut self, flow: &FlowInfo, reason: CloseReason) {
        let f = &mut self.stats.flow;
        *match reason {
            CloseReason::Fin => &mut f.closed_fin,
            CloseReason::Rst => &mut f.closed_rst,
            CloseReason::Idle => &mut f.closed_idle,
            CloseReason::Evicted => &mut f.closed_evicted,
            CloseReason::Reused => &mut f.closed_reused,
            CloseReason::EndOfInput => &mut f.closed_end,
        } += 1;
        for d in &flow.dirs {
            f.payload_bytes = f.payload_bytes.saturating_add(d.payload_bytes);
            f.ooo_segments = f.ooo_segments.saturating_add(d.ooo_segments);
            f.retransmitted_bytes = f.retransmitted_bytes.saturating_add(d.retransmitted_bytes);
            f.conflict_bytes = f.conflict_bytes.saturating_add(d.conflict_bytes);
        }
        self.inner.close(flow, reason);
    }
}

fn replay_error(path: &Path, e: SpoolError<StorageError>) -> String {
    match e {
        SpoolError::Storage(e) => format!("cannot read spool {}: {e}", path.display()),
        SpoolError::Config(c) => format!("spool {}: refused: {c:?}", path.display()),
    }
}

/// The reader's figures for the report.
fn summary_group(s: &Summary) -> Group {
    (
        "spool",
        vec![
            ("segments", u64::from(s.segments)),
            ("records", s.records),
            ("flows", s.flows),
            ("flows_closed", s.flows_closed),
            ("flows_unclosed", s.flows_unclosed),
            ("flows_truncated", s.flows_truncated),
            ("data_bytes", s.data_bytes),
            ("gap_bytes", s.gap_bytes),
            ("dropped_flows", s.drops.flows),
            ("dropped_bytes", s.drops.bytes),
            ("dropped_segments", s.drops.segments),
            ("epochs", u64::from(s.epochs)),
            ("seq_breaks", u64::from(s.seq_breaks)),
            ("orphan_records", s.orphan_records),
            ("untracked_records", s.untracked_records),
            ("damaged_regions", s.damaged_regions),
            ("damaged_bytes", s.damaged_bytes),
            ("flows_cut", s.flows_cut),
            ("cut_bytes", s.cut_bytes),
            ("torn_tails", u64::from(s.torn_tails)),
        ],
    )
}

/// The replay table's length: one entry per flow slot of the writer, as its segment headers
/// say, which a crafted header may set to anything: more than the export's flow table
/// (`--max-flows`, `--memory`) is refused before anything is allocated.
fn replay_slots(path: &Path, slots: u32, max_flows: u32) -> Result<usize, String> {
    if slots > max_flows {
        return Err(format!(
            "spool {}: a segment header says its writer had {slots} flow slots, more than the {max_flows} this run holds: if the spool is genuine, give --max-flows {slots} (about {} of memory)",
            path.display(),
            fmt_size(u64::from(slots) * REPLAY_BYTES_PER_SLOT)
        ));
    }
    Ok((slots as usize).max(1))
}

/// What a replay slot costs: the reader's state and the file writer's per flow.
const REPLAY_BYTES_PER_SLOT: u64 = std::mem::size_of::<ReplayFlow>() as u64 + 64;

/// What is wrong with the length of a truncated spool file, if it is.
fn truncation(storage: &FileSpool) -> Option<String> {
    let len = storage.short()?;
    let seg = u64::from(storage.segment_size());
    Some(if len % seg != 0 {
        format!(
            "the file is truncated: it ends {} into segment {} (segments of {})",
            fmt_size(len % seg),
            len / seg,
            fmt_size(seg)
        )
    } else {
        format!(
            "the file is truncated: it holds {} segment of {}, a spool at least two",
            len / seg,
            fmt_size(seg)
        )
    })
}

/// What the spool lost to damage, for a message; `None` when it is whole.
/// `truncated`: what [`truncation`] says.
fn damage_text(s: &Summary, truncated: Option<String>) -> Option<String> {
    let mut parts = Vec::new();
    parts.extend(truncated);
    if s.damaged_regions > 0 {
        parts.push(format!(
            "{} unreadable stretches ({} bytes) skipped",
            s.damaged_regions, s.damaged_bytes
        ));
    }
    if s.flows_cut > 0 {
        parts.push(format!(
            "{} flows cut ({} stream bytes missing between records, more where a start was lost)",
            s.flows_cut, s.cut_bytes
        ));
    }
    if s.seq_breaks > 0 {
        parts.push(format!("{} missing segments in the sequence", s.seq_breaks));
    }
    if s.orphan_records > 0 {
        parts.push(format!(
            "{} records of flows whose start was lost",
            s.orphan_records
        ));
    }
    if s.untracked_records > 0 {
        parts.push(format!(
            "{} records beyond the flow table",
            s.untracked_records
        ));
    }
    (!parts.is_empty()).then(|| parts.join(", "))
}

/// `--spool-export PATH`: replays the spool into the file writer (or the console) and
/// writes the report, as a direct run does.
pub fn export(o: &Options, path: &Path) -> Result<i32, String> {
    let start_ns = now_ns();
    let storage = spool::open_for_reading(path)?;
    let truncated = truncation(&storage);
    let mut reader =
        SpoolReader::new(storage).map_err(|e| format!("spool {}: {e:?}", path.display()))?;
    let info = reader
        .info()
        .map_err(|e| format!("cannot read spool {}: {e}", path.display()))?;
    let slots = replay_slots(path, info.slots, o.max_flows)?;
    let files_mode = o.console.is_none();
    if files_mode {
        prepare_outdir(&o.outdir, None)?;
    }
    let open_report = |p: &Option<std::path::PathBuf>| -> Result<_, String> {
        Ok(match p {
            Some(p) => Some((p.clone(), create_report_file(p, o.file_mode)?)),
            None => None,
        })
    };
    let mut report = Report::start(
        open_report(&o.report_xml)?,
        open_report(&o.report_json)?,
        &Creator {
            command_line: command_line(),
            start_unix_ns: start_ns,
        },
    )?;
    if o.viz.any() {
        report.collect_viz(o.scan.http); // viz (issue 19)
    }
    if o.verbose {
        let st = reader.into_inner();
        eprintln!(
            "tcpflow: spool {}: {} segments of {} ({} in use, sequence {}..{}), {} flow slots",
            path.display(),
            st.segment_count(),
            fmt_size(u64::from(st.segment_size())),
            info.segments,
            info.oldest_seq,
            info.newest_seq,
            info.slots
        );
        reader = SpoolReader::new(st).map_err(|e| format!("spool {}: {e:?}", path.display()))?;
    }
    let spool = Replay {
        path,
        reader,
        truncated,
        slots,
    };
    // `-b` cuts here too, as it did when spooling (`-R` has no files to apply to).
    match o.console {
        Some(c) => {
            let out = ConsoleSink::new(o.template.clone(), c);
            replay_into(o, spool, Outputs::new(out, report, o.max_bytes))
        }
        #[cfg(feature = "outputs")]
        None if o.flow_commands.any() => {
            // -S tcp_cmd / http_cmd act on the exported files as on a direct run's.
            let cmds = crate::output::commands::FlowCommands::new(&o.flow_commands)?;
            let out = crate::output::Tee(
                crate::run::with_scanners(FileSink::new(output_config(o), slots), o),
                cmds,
            );
            replay_into(o, spool, Outputs::new(out, report, o.max_bytes))
        }
        None => {
            let out = crate::run::with_scanners(FileSink::new(output_config(o), slots), o);
            replay_into(o, spool, Outputs::new(out, report, o.max_bytes))
        }
    }
}

/// The spool to export, opened.
struct Replay<'p> {
    path: &'p Path,
    reader: SpoolReader<FileSpool>,
    /// What is wrong with the spool file's length.
    truncated: Option<String>,
    slots: usize,
}

/// The export's replay into `out` and the end of the run, as a direct run ends.
fn replay_into<S: Output>(
    o: &Options,
    spool: Replay<'_>,
    mut out: Outputs<S>,
) -> Result<i32, String> {
    let Replay {
        path,
        mut reader,
        truncated,
        slots,
    } = spool;
    let files_mode = o.console.is_none();
    let mut flows = vec![ReplayFlow::EMPTY; slots];
    let mut buf = vec![0u8; MAX_RECORD];
    let mut timeline = o.viz.any().then(Box::<crate::viz::Timeline>::default);
    let mut counting = Counting {
        inner: &mut out,
        stats: Stats::default(),
        timeline: timeline.as_deref_mut(),
    };
    let replayed = {
        // Without `inline-outputs`, the reader's code once for every output (`dyn Sink`).
        #[cfg(not(feature = "inline-outputs"))]
        let mut counting: &mut dyn tcpflow_core::Sink = &mut counting;
        reader.replay(&mut counting, &mut flows, &mut buf)
    };
    let stats = counting.stats;
    let mut failed = false;
    let sum = match replayed {
        Ok(s) => s,
        Err(e) => {
            // Whatever was replayed before the read error is written below.
            eprintln!("tcpflow: {}", replay_error(path, e));
            failed = true;
            Summary::default()
        }
    };
    let damage = damage_text(&sum, truncated);
    if let Some(d) = &damage {
        // Everything else was replayed and is written below; the status says what was lost.
        eprintln!("tcpflow: spool {} is damaged: {d}", path.display());
        failed = true;
    }
    let end = end_outputs(
        out,
        &stats,
        HostStats::default(),
        vec![summary_group(&sum)],
        o,
        timeline,
    );
    failed |= end.failed;
    let host = end.host;
    if !o.quiet && !end.broken_pipe {
        let mut line = format!(
            "tcpflow: spool {}: {} connections",
            path.display(),
            sum.flows
        );
        if files_mode {
            line.push_str(&format!(
                ", {} files in {}, {} bytes written",
                host.files_written,
                o.outdir.display(),
                host.bytes_written
            ));
        }
        line.push_str(&format!(
            "; {} without their end (written as far as the spool has them), {} missing their start; dropped by the ring: {} flows, {} bytes",
            sum.flows_unclosed, sum.flows_truncated, sum.drops.flows, sum.drops.bytes
        ));
        eprintln!("{line}");
    }
    let _ = io::stdout().flush();
    Ok(if failed { 1 } else { 0 })
}

/// `--spool-summary PATH`: what the spool holds, on standard output.
pub fn summary(o: &Options, path: &Path) -> Result<i32, String> {
    let storage = spool::open_for_reading(path)?;
    let (seg, count) = (storage.segment_size(), storage.segment_count());
    let mut reader =
        SpoolReader::new(storage).map_err(|e| format!("spool {}: {e:?}", path.display()))?;
    let info = reader
        .info()
        .map_err(|e| format!("cannot read spool {}: {e}", path.display()))?;
    let mut flows = vec![ReplayFlow::EMPTY; replay_slots(path, info.slots, o.max_flows)?];
    let mut buf = vec![0u8; MAX_RECORD];
    let sum = reader
        .summary(&mut flows, &mut buf)
        .map_err(|e| replay_error(path, e))?;
    let storage = reader.into_inner();
    let torn = sum.torn_at;
    let damage = damage_text(&sum, truncation(&storage));
    let ts = |t: Option<tcpflow_core::Timestamp>| {
        t.map(timefmt::iso_micros).unwrap_or_else(|| "-".into())
    };
    let mut s = String::new();
    s.push_str(&format!("spool: {}\n", path.display()));
    s.push_str(&format!(
        "size: {} ({}: {} segments of {}, blocks of {})\n",
        storage.size(),
        fmt_size(storage.size()),
        count,
        fmt_size(u64::from(seg)),
        fmt_size(u64::from(BLOCK_SIZE))
    ));
    if info.segments == 0 {
        s.push_str("segments: 0 (empty: nothing was spooled yet)\n");
    } else {
        s.push_str(&format!(
            "segments: {} (sequence {}..{})\n",
            info.segments, info.oldest_seq, info.newest_seq
        ));
    }
    s.push_str(&format!("writer runs: {}\n", sum.epochs));
    s.push_str(&format!("flows: {}\n", sum.flows));
    s.push_str(&format!("flows closed: {}\n", sum.flows_closed));
    s.push_str(&format!(
        "flows unclosed: {} (no close record: the writer stopped or is still running; exported as far as they got)\n",
        sum.flows_unclosed
    ));
    s.push_str(&format!(
        "flows truncated: {} (their start was dropped by the ring)\n",
        sum.flows_truncated
    ));
    s.push_str(&format!("records: {}\n", sum.records));
    s.push_str(&format!("data bytes: {}\n", sum.data_bytes));
    s.push_str(&format!("gap bytes: {}\n", sum.gap_bytes));
    s.push_str(&format!("first: {}\n", ts(sum.first_ts)));
    s.push_str(&format!("last: {}\n", ts(sum.last_ts)));
    s.push_str(&format!("dropped flows: {}\n", sum.drops.flows));
    s.push_str(&format!("dropped bytes: {}\n", sum.drops.bytes));
    s.push_str(&format!("dropped segments: {}\n", sum.drops.segments));
    match &damage {
        None => s.push_str("damage: none\n"),
        Some(d) => s.push_str(&format!("damage: {d}; everything else was read\n")),
    }
    match torn {
        None => s.push_str("torn tail: none\n"),
        Some((at, len)) => s.push_str(&format!(
            "torn tail: an incomplete record at offset {at} (segment {}, {len} bytes): the writer was stopped in the middle of a write (crash, kill, power cut); everything before it was read\n",
            at / u64::from(seg)
        )),
    }
    let mut out = io::stdout().lock();
    if let Err(e) = out.write_all(s.as_bytes()).and_then(|()| out.flush()) {
        if e.kind() != io::ErrorKind::BrokenPipe {
            return Err(format!("writing to standard output: {e}"));
        }
    }
    match damage {
        Some(d) => {
            eprintln!("tcpflow: spool {} is damaged: {d}", path.display());
            Ok(1)
        }
        None => Ok(0),
    }
}
