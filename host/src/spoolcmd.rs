//! Reading a spool back: `--spool-export` (the per-flow files and report of a direct run,
//! by replaying the spool into the same file writer, [`Output`]) and `--spool-summary`.

use std::io::{self, Write};
use std::path::Path;

use tcpflow_core::spool::{ReplayFlow, SpoolError, SpoolReader, SpoolStorage, Summary, MAX_RECORD};
use tcpflow_core::{CloseReason, Dir, FlowInfo, GapReason, Sink, Stats};

use crate::cli::Options;
use crate::output::Output;
use crate::report::{command_line, Creator, Group, Report, Totals};
use crate::run::{create_report_file, now_ns, output_config, prepare_outdir};
use crate::spool::{self, fmt_size, FileSpool, StorageError, BLOCK_SIZE};
use crate::timefmt;

/// Passes events on and counts what a direct run's engine would have counted, so the
/// export's report has the run's flow totals.
struct Counting<'a, S> {
    inner: &'a mut S,
    stats: Stats,
}

impl<S: Sink> Sink for Counting<'_, S> {
    fn open(&mut self, flow: &FlowInfo) {
        self.stats.flow.opened += 1;
        if flow.conn_index > 0 {
            self.stats.flow.reused += 1;
        }
        self.inner.open(flow);
    }
    fn data(&mut self, flow: &FlowInfo, dir: Dir, offset: u64, data: &[u8]) {
        self.stats.flow.delivered_bytes += data.len() as u64;
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
        self.stats.flow.gap_bytes += len;
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
            f.payload_bytes += d.payload_bytes;
            f.ooo_segments += d.ooo_segments;
            f.retransmitted_bytes += d.retransmitted_bytes;
            f.conflict_bytes += d.conflict_bytes;
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
        ],
    )
}

/// `--spool-export PATH`: replays the spool into the file writer (or the console) and
/// writes the report, as a direct run does.
pub fn export(o: &Options, path: &Path) -> Result<i32, String> {
    let start_ns = now_ns();
    let storage = spool::open_for_reading(path)?;
    let mut reader =
        SpoolReader::new(storage).map_err(|e| format!("spool {}: {e:?}", path.display()))?;
    let info = reader
        .info()
        .map_err(|e| format!("cannot read spool {}: {e}", path.display()))?;
    let slots = (info.slots as usize).max(1);
    let files_mode = o.console.is_none();
    if files_mode {
        prepare_outdir(&o.outdir, None)?;
    }
    let open_report = |p: &Option<std::path::PathBuf>| -> Result<_, String> {
        Ok(match p {
            Some(p) => Some((p.clone(), create_report_file(p, None, o.file_mode)?)),
            None => None,
        })
    };
    let report = Report::start(
        open_report(&o.report_xml)?,
        open_report(&o.report_json)?,
        &Creator {
            command_line: command_line(),
            start_unix_ns: start_ns,
        },
    )?;
    let cfg = output_config(o);
    let mut out = match o.console {
        Some(c) => Output::console(cfg, slots, report, c),
        None => Output::files(cfg, slots, report),
    };
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
    let mut flows = vec![ReplayFlow::EMPTY; slots];
    let mut buf = vec![0u8; MAX_RECORD];
    let mut counting = Counting {
        inner: &mut out,
        stats: Stats::default(),
    };
    let replayed = reader.replay(&mut counting, &mut flows, &mut buf);
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
    out.wait_writes();
    if let Some(e) = out.fatal() {
        eprintln!("tcpflow: {e}");
        failed = true;
    }
    let broken_pipe = out.broken_pipe();
    let (report, host, max_open) = out.into_report();
    let extra = [summary_group(&sum)];
    if let Err(e) = report.finish(&Totals {
        stats: &stats,
        host: &host,
        max_open_flows: max_open,
        extra: &extra,
    }) {
        eprintln!("tcpflow: {e}");
        failed = true;
    }
    if !o.quiet && !broken_pipe {
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

/// Remembers where the reader last looked for a record header: where the newest segment
/// (replayed last) ends.
struct Watch<'a> {
    inner: &'a mut FileSpool,
    last_record: Option<u64>,
}

impl SpoolStorage for Watch<'_> {
    type Error = StorageError;
    fn segment_size(&self) -> u32 {
        self.inner.segment_size()
    }
    fn segment_count(&self) -> u32 {
        self.inner.segment_count()
    }
    fn block_size(&self) -> u32 {
        self.inner.block_size()
    }
    fn erase(&mut self, s: u32) -> Result<(), StorageError> {
        self.inner.erase(s)
    }
    fn write(&mut self, o: u64, d: &[u8]) -> Result<(), StorageError> {
        self.inner.write(o, d)
    }
    fn read(&mut self, o: u64, b: &mut [u8]) -> Result<(), StorageError> {
        // Record headers are the only 8-byte reads (segment headers are 64 bytes, record
        // bodies longer than 8).
        if b.len() == 8 {
            self.last_record = Some(o);
        }
        self.inner.read(o, b)
    }
    fn sync(&mut self) -> Result<(), StorageError> {
        self.inner.sync()
    }
}

/// A torn tail: the offset of an incomplete last record and its bytes on storage.
fn torn_tail(storage: &mut FileSpool, stop: u64) -> Result<Option<(u64, u64)>, StorageError> {
    let block = u64::from(BLOCK_SIZE);
    let in_block = stop % block;
    if in_block == 0 {
        // Every write ends on a block boundary: the records end cleanly there.
        return Ok(None);
    }
    // The writer fills the rest of a block it leaves with 0xFF; anything else after the last
    // whole record is the start of one that was never completed.
    let mut rest = vec![0u8; (block - in_block) as usize];
    storage.read(stop, &mut rest)?;
    if rest.iter().all(|&b| b == 0xFF) {
        Ok(None)
    } else {
        Ok(Some((stop, rest.len() as u64)))
    }
}

/// `--spool-summary PATH`: what the spool holds, on standard output.
pub fn summary(path: &Path) -> Result<i32, String> {
    let mut storage = spool::open_for_reading(path)?;
    let (seg, count) = (storage.segment_size(), storage.segment_count());
    let (info, sum, stop) = {
        let watch = Watch {
            inner: &mut storage,
            last_record: None,
        };
        let mut reader =
            SpoolReader::new(watch).map_err(|e| format!("spool {}: {e:?}", path.display()))?;
        let info = reader
            .info()
            .map_err(|e| format!("cannot read spool {}: {e}", path.display()))?;
        let mut flows = vec![ReplayFlow::EMPTY; (info.slots as usize).max(1)];
        let mut buf = vec![0u8; MAX_RECORD];
        let sum = reader
            .summary(&mut flows, &mut buf)
            .map_err(|e| replay_error(path, e))?;
        (info, sum, reader.into_inner().last_record)
    };
    let torn = match stop {
        Some(at) if info.segments > 0 => torn_tail(&mut storage, at)
            .map_err(|e| format!("cannot read spool {}: {e}", path.display()))?,
        _ => None,
    };
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
    if sum.seq_breaks > 0 || sum.orphan_records > 0 || sum.untracked_records > 0 {
        s.push_str(&format!(
            "damage: {} missing segments in the sequence, {} records of unknown flows, {} records beyond the flow table\n",
            sum.seq_breaks, sum.orphan_records, sum.untracked_records
        ));
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
    Ok(0)
}
