//! A run of the command: prepare the output, open the inputs, drop privileges, feed every
//! packet to the engine, finish every flow, write the report and the summary.

use std::fs::{File, OpenOptions};
use std::io::{self, IsTerminal, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::Parser;
use pcap::{Active, Capture};
use tcpflow_core::capfile::Format;
use tcpflow_core::engine::Outcome;
use tcpflow_core::spool::{SegmentTally, SpoolFlow, SpoolStorage, SpoolWriter};
use tcpflow_core::{Block, FlowRecord, FragSlot, HotSlot};
use tcpflow_core::{Config, Engine, LinkType, OverlapPolicy, Stats, Storage, Timestamp};

use crate::budget;
use crate::capture::{CaptureStats, LiveCapture, Next};
use crate::cli::{Action, Args, Options, Overlap, Source};
use crate::filter::Filters;
use crate::input::{self, io_message, Input};
use crate::output::spool::SpoolSink;
#[cfg(feature = "outputs")]
use crate::output::{commands::FlowCommands, json::JsonSink, pcap::PcapSink, Maybe, Tee};
use crate::output::{ConsoleSink, FileSink, Frame, Limits, Output, OutputConfig, Outputs};
use crate::privs;
use crate::report::{command_line, Creator, Group, HostStats, Report, Totals};
use crate::savefile::Savefile;
use crate::spool::{self, fmt_size, FileSpool};
use crate::spoolcmd;
use crate::timefmt::fixed;
use crate::zeroed::zeroed_box;

/// Descriptors kept free for inputs, the report, `-w` and libpcap.
const FD_MARGIN: u64 = 32;
/// The progress line is refreshed at most this often.
const PROGRESS_EVERY: Duration = Duration::from_millis(250);
/// How often a live capture runs timeouts (on wall time) when packets are few.
const ADVANCE_EVERY: Duration = Duration::from_millis(500);
/// libpcap's read timeout on a live capture: the kernel hands over a block of packets when it
/// is full or this old (immediate mode is off, so it does not wake the capture per packet).
const PCAP_TIMEOUT_MS: i32 = 100;

/// Parses the command line and runs; returns the exit status.
pub fn main_entry() -> i32 {
    let args = match Args::try_parse() {
        Ok(a) => a,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return code;
        }
    };
    if args.scan_help {
        print!("{}", crate::scan::help_text()); // scan: -H
        return 0;
    }
    let opts = match args.into_options() {
        Ok(o) => o,
        Err(m) => {
            eprintln!("tcpflow: {m}");
            return 2;
        }
    };
    match run(opts) {
        Ok(code) => code,
        Err(m) => {
            eprintln!("tcpflow: {m}");
            1
        }
    }
}

/// Where a path given on the command line is, before chroot (for -z: inside the new root).
fn before_chroot(chroot: Option<&Path>, p: &Path) -> PathBuf {
    match chroot {
        Some(root) => root.join(p.strip_prefix("/").unwrap_or(p)),
        None => p.to_path_buf(),
    }
}

/// Creates the output folder if needed and checks that files can be created in it. A folder
/// created here for `-U USER` is given to that user, who writes the files.
pub(crate) fn prepare_outdir(dir: &Path, owner: Option<&privs::User>) -> Result<(), String> {
    match std::fs::metadata(dir) {
        Ok(m) if !m.is_dir() => {
            return Err(format!("output folder {} is not a folder", dir.display()))
        }
        Ok(_) => {}
        Err(_) => {
            std::fs::create_dir_all(dir).map_err(|e| {
                format!(
                    "cannot create output folder {}: {}",
                    dir.display(),
                    io_message(&e)
                )
            })?;
            if let Some(u) = owner {
                // lchown: were the new folder swapped for a link meanwhile, the link's
                // target is not given away.
                std::os::unix::fs::lchown(dir, Some(u.uid), Some(u.gid)).map_err(|e| {
                    format!(
                        "cannot give {} to {}: {}",
                        dir.display(),
                        u.name,
                        io_message(&e)
                    )
                })?;
            }
        }
    }
    probe_writable(dir)
}

fn probe_writable(dir: &Path) -> Result<(), String> {
    let probe = dir.join(format!(".tcpflow-probe-{}", std::process::id()));
    match OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&probe)
    {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
            Ok(())
        }
        Err(e) => Err(format!(
            "output folder {} is not writable: {}",
            dir.display(),
            io_message(&e)
        )),
    }
}

/// Creates (or empties) a report file. Never through a link, a FIFO or a hard link planted
/// where it goes; with `-U` it is created after the privilege drop, as the user, so it
/// is never created as root nor given away.
pub(crate) fn create_report_file(p: &Path, mode: u32) -> Result<File, String> {
    crate::safefs::open_file(p, 0, true, mode)
        .map_err(|e| format!("cannot create report {}: {}", p.display(), io_message(&e)))
}

/// The file writer's settings from the options.
pub(crate) fn output_config(o: &Options) -> OutputConfig {
    OutputConfig {
        template: o.template.clone(),
        file_mode: o.file_mode,
        outdir: o.outdir.clone(),
        display_dir: if o.outdir == Path::new(".") {
            None
        } else {
            Some(o.outdir.clone())
        },
        limits: Limits {
            dir_buffer: crate::output::files::DIR_BUFFER,
            total_buffer: o.buffer_bytes,
            first_buffer: crate::output::files::FIRST_BUDGET,
            max_open_files: o.max_fds.unwrap_or_else(default_max_fds),
            max_names: max_names(o),
        },
        reserved: reserved_names(o),
    }
}

/// The names of the reports relative to the output folder, when they are in it (`-T
/// report.xml` would otherwise write a flow into the report's file).
fn reserved_names(o: &Options) -> Vec<PathBuf> {
    let canon = |p: &Path| std::fs::canonicalize(p).ok();
    let outdir = canon(&o.outdir);
    [&o.report_xml, &o.report_json, &o.unprocessed]
        .into_iter()
        .chain([&o.viz.html, &o.viz.pdf]) // viz (issue 19)
        .flatten()
        .filter_map(|p| {
            if let Ok(rel) = p.strip_prefix(&o.outdir) {
                return Some(rel.to_path_buf());
            }
            // Named another way (absolute, `./`): a file directly in the folder.
            let parent = p.parent().filter(|d| !d.as_os_str().is_empty());
            let parent = canon(parent.unwrap_or(Path::new(".")));
            if parent.is_some() && parent == outdir {
                p.file_name().map(PathBuf::from)
            } else {
                None
            }
        })
        .collect()
}

/// File names held in memory: by default two per flow slot, what the budget counts.
fn max_names(o: &Options) -> usize {
    o.max_names.unwrap_or(2 * o.max_flows as usize)
}

/// The descriptor limit, for the default of `-f`.
fn default_max_fds() -> usize {
    // SAFETY: getrlimit fills the struct.
    let soft = unsafe {
        let mut r: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) == 0 {
            r.rlim_cur
        } else {
            1024
        }
    };
    let soft = if soft == libc::RLIM_INFINITY {
        65_536
    } else {
        soft as u64
    };
    soft.saturating_sub(FD_MARGIN).clamp(8, 65_536) as usize
}

fn random_key() -> [u64; 2] {
    let mut b = [0u8; 16];
    if File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .is_err()
    {
        // No urandom (a bare chroot): mix the clock and the pid; the key only has to be
        // unpredictable to traffic, not cryptographically strong.
        let t = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos() as u64;
        b[..8].copy_from_slice(&t.to_le_bytes());
        b[8..].copy_from_slice(&(u64::from(std::process::id()) ^ t.rotate_left(29)).to_le_bytes());
    }
    [
        u64::from_le_bytes(b[..8].try_into().expect("8 bytes")),
        u64::from_le_bytes(b[8..].try_into().expect("8 bytes")),
    ]
}

pub(crate) fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// The progress line's text: `bytes` read of the input's size (if known), `packets` so
/// far, of which `recent` in the last `ms` milliseconds, and the flows open now.
fn progress_line(
    name: &str,
    (read, total): (u64, Option<u64>),
    (packets, recent, ms): (u64, u64, u64),
    open_flows: u64,
) -> String {
    let mib = |b: u64| fixed(b, 1 << 20, 1);
    let size = match total {
        Some(t) if t > 0 => format!(
            "{}/{} MiB ({}%)",
            mib(read),
            mib(t),
            fixed(read.saturating_mul(100), t, 0)
        ),
        _ => format!("{} MiB", mib(read)),
    };
    let rate = fixed(recent.saturating_mul(1000), ms.max(1), 0);
    format!("{name}: {size}, {packets} packets ({rate}/s), {open_flows} open flows")
}

/// The progress line on stderr (file input, stderr a terminal).
struct Progress {
    enabled: bool,
    last: Instant,
    shown: bool,
    start: Instant,
    start_packets: u64,
}

impl Progress {
    fn new(enabled: bool) -> Progress {
        let now = Instant::now();
        Progress {
            enabled,
            last: now,
            shown: false,
            start: now,
            start_packets: 0,
        }
    }

    fn begin(&mut self, packets: u64) {
        self.start = Instant::now();
        self.start_packets = packets;
    }

    /// Called per packet: the check is inline, the line out of line.
    #[inline]
    fn tick(&mut self, input: &mut Input, packets: u64, open_flows: u64) {
        if self.enabled && packets % 256 == 0 {
            self.show(input, packets, open_flows);
        }
    }

    #[cold]
    fn show(&mut self, input: &mut Input, packets: u64, open_flows: u64) {
        let now = Instant::now();
        if now.duration_since(self.last) < PROGRESS_EVERY {
            return;
        }
        self.last = now;
        let ms = now.duration_since(self.start).as_millis() as u64;
        let read = input.bytes_read();
        let line = progress_line(
            &input.name,
            (read, input.total),
            (packets, packets - self.start_packets, ms),
            open_flows,
        );
        eprint!("\r{line}\x1b[K");
        self.shown = true;
    }

    fn clear(&mut self) {
        if self.shown {
            eprint!("\r\x1b[K");
            self.shown = false;
        }
    }
}

/// Everything the packet loop touches; `S` is the output.
struct Run<'e, S> {
    engine: Engine<'e>,
    out: Outputs<S>,
    /// The run's own counters (the outputs keep theirs).
    host: HostStats,
    /// Live capture: the outputs' clock is wall time (files: capture time).
    live: bool,
    savefile: Option<Savefile>,
    savefile_path: Option<PathBuf>,
    /// Mode of the `-w` file when created.
    savefile_mode: u32,
    warned_savefile: bool,
    /// The filter expression for capture files (a live capture filters in libpcap).
    filters: Option<Filters>,
    /// Link types whose packets the filter expression cannot apply to (said once).
    filter_refused: Vec<LinkType>,
    stop: Arc<AtomicBool>,
    quiet: bool,
    failed: bool,
    /// viz (issue 19): the time bins of report.html, when it is wanted.
    timeline: Option<Box<crate::viz::Timeline>>,
    /// viz (issue 19): `--report-interval`.
    viz_refresh: Option<crate::viz::Refresh>,
}

impl<S: Output> Run<'_, S> {
    fn interrupted(&self) -> bool {
        // Checked for every packet: the run is alive (watchdog.rs).
        crate::watchdog::tick();
        self.stop.load(Ordering::Relaxed) || self.out.should_stop()
    }

    /// Opens the `-w` file (it takes the link type of the first capture, or of the first
    /// packet when the capture does not say one).
    fn ensure_savefile(&mut self, link: LinkType) -> Result<(), String> {
        if self.savefile.is_some() {
            return Ok(());
        }
        if let Some(p) = self.savefile_path.take() {
            self.savefile = Some(Savefile::create(&p, link, self.savefile_mode)?);
        }
        Ok(())
    }

    /// One packet: `origlen` bytes on the wire, `data` captured.
    #[inline(always)]
    fn packet(&mut self, link: LinkType, ts: Timestamp, origlen: u32, data: &[u8]) {
        self.host.packets_read += 1;
        // viz (issue 19): the frame to its time bin; the engine's events through the tee.
        if let Some(t) = self.timeline.as_mut().filter(|_| cfg!(feature = "viz")) {
            let (engine, host) = (&self.engine, &self.host);
            t.frame(ts, data.len(), || {
                crate::viz::Snap::of(engine.stats(), host)
            });
        }
        let mut sink = crate::viz::Tee {
            sink: &mut self.out,
            timeline: self.timeline.as_deref_mut(),
        };
        // Without `inline-outputs` (the field builds), one copy of the engine for every
        // output, behind `dyn Sink`: smaller code for a virtual call per event.
        #[cfg(not(feature = "inline-outputs"))]
        let mut sink: &mut dyn tcpflow_core::Sink = &mut sink;
        let outcome = self.engine.process(ts, link, data, &mut sink);
        if let Ok(o @ (Outcome::Tcp(_) | Outcome::FragmentHeld)) = outcome {
            // Outputs of frames (-K); nothing when there are none.
            self.out.frame(|| Frame {
                flow: match o {
                    Outcome::Tcp(f) => Some(f),
                    _ => None,
                },
                link,
                ts,
                origlen,
                data,
            });
        }
        let processed = matches!(
            outcome,
            Ok(Outcome::Tcp(_) | Outcome::Untracked | Outcome::FragmentHeld)
        );
        let live = self.live;
        self.out.tick(|| if live { now_ns() } else { ts.0 });
        if !processed {
            self.host.unprocessed_packets += 1;
            if self.savefile_path.is_some() {
                if let Err(e) = self.ensure_savefile(link) {
                    eprintln!("tcpflow: {e}");
                    self.failed = true;
                }
            }
            if let Some(sf) = &mut self.savefile {
                if sf.link() == link {
                    sf.write(ts, origlen, data);
                    self.host.unprocessed_written += 1;
                } else if !self.warned_savefile {
                    self.warned_savefile = true;
                    if !self.quiet {
                        eprintln!(
                            "tcpflow: warning: -w file has link type {}; unprocessed packets of link type {} are not written to it",
                            sf.link().0,
                            link.0
                        );
                    }
                }
            }
        }
    }

    /// Whether a packet of a capture file passes the filter expression (if there is one).
    fn passes_filter(&mut self, input: &str, link: LinkType, data: &[u8], origlen: u32) -> bool {
        let Some(f) = &mut self.filters else {
            return true;
        };
        match f.program(link) {
            Ok(p) => p.matches(data, origlen),
            Err(_) if self.filter_refused.contains(&link) => false,
            Err(e) => {
                let e = e.clone();
                self.filter_refused.push(link);
                if link.is_supported() {
                    eprintln!(
                        "tcpflow: {input}: bad filter expression '{}' for link type {}: {e}; its packets are left out",
                        f.expr(),
                        link.0
                    );
                    self.failed = true;
                } else if !self.quiet {
                    // Packets that would not be decoded anyway (said when the first came).
                    eprintln!(
                        "tcpflow: warning: {input}: the filter expression does not apply to link type {}: {e}; its packets are left out",
                        link.0
                    );
                }
                false
            }
        }
    }

    /// Reads one capture file to its end (or an error, or an interruption).
    fn read_file(&mut self, input: &mut Input, progress: &mut Progress) {
        if let Some(link) = input.link {
            if let Err(e) = self.ensure_savefile(link) {
                eprintln!("tcpflow: {e}");
                self.failed = true;
            }
        }
        let (name, format) = (input.name.clone(), input.format);
        // Records read from this file, and those longer than their snap length.
        let mut n: u64 = 0;
        let mut over_snaplen: u64 = 0;
        let mut undecodable: Vec<LinkType> = Vec::new();
        progress.begin(self.host.packets_read);
        loop {
            if self.interrupted() {
                break;
            }
            match input.next_record() {
                Ok(Some(r)) => {
                    n += 1;
                    if r.exceeds_snaplen() {
                        // The file is inconsistent; libpcap would cut the record at the
                        // snap length. Every byte is kept; the run fails.
                        over_snaplen += 1;
                        self.host.records_over_snaplen += 1;
                        self.failed = true;
                        if over_snaplen == 1 {
                            progress.clear();
                            let whose = match format {
                                Format::Pcap { .. } => "the file's".to_string(),
                                Format::Pcapng { .. } => {
                                    format!("interface {}'s", r.interface)
                                }
                            };
                            eprintln!(
                                "tcpflow: {name}: packet {n}: record of {} bytes is longer than {whose} snap length {}; read whole",
                                r.caplen, r.snaplen
                            );
                        }
                    }
                    if !r.link.is_supported() && !undecodable.contains(&r.link) {
                        // A pcapng interface of a link type the core does not decode (the
                        // file's first one was checked when it was opened).
                        undecodable.push(r.link);
                        if !self.quiet {
                            progress.clear();
                            eprintln!(
                                "tcpflow: warning: {}; its packets are not processed",
                                input::file_link_type(r.link, &name)
                                    .err()
                                    .unwrap_or_default()
                            );
                        }
                    }
                    if self.passes_filter(&name, r.link, r.data, r.origlen) {
                        self.packet(r.link, r.ts, r.origlen, r.data);
                    }
                }
                Ok(None) => break,
                // A signal while a pipe or FIFO had no data: not an error of the input.
                Err(_) if self.interrupted() => break,
                Err(msg) => {
                    progress.clear();
                    eprintln!(
                        "tcpflow: {name}: bad packet {} (after {n} good ones): {msg}",
                        n + 1
                    );
                    self.host.read_errors += 1;
                    self.failed = true;
                    break;
                }
            }
            let (pk, open) = (self.host.packets_read, self.out.open_flows());
            progress.tick(input, pk, open);
        }
        progress.clear();
        if over_snaplen > 1 {
            eprintln!(
                "tcpflow: {name}: {over_snaplen} records longer than the snap length, read whole"
            );
        }
    }

    /// Every packet of the inputs: the interface until a stop signal, or each capture file in
    /// turn (`-r`, then `-R`). Returns the live capture's counters.
    fn read_inputs(
        &mut self,
        o: &Options,
        live: Option<(Capture<Active>, LinkType, String)>,
        preopened: Vec<Result<Input, String>>,
        in_opts: &input::Opts,
    ) -> Option<CaptureStats> {
        match &o.source {
            Source::Live { .. } => {
                let (cap, link, dev) = live.expect("opened above");
                if let Err(e) = self.ensure_savefile(link) {
                    eprintln!("tcpflow: {e}");
                    self.failed = true;
                }
                if !o.quiet {
                    eprintln!("tcpflow: listening on {dev} (stop with Ctrl-C)");
                }
                let cap = LiveCapture::start(cap, o.queue_bytes, self.stop.clone());
                Some(self.read_live(cap, link))
            }
            Source::Files { read, finish } => {
                let show = !o.quiet && io::stderr().is_terminal();
                let mut progress = Progress::new(show);
                let mut pre = preopened.into_iter();
                let names: Vec<(&String, bool)> = read
                    .iter()
                    .map(|n| (n, true))
                    .chain(finish.iter().map(|n| (n, false)))
                    .collect();
                for (name, accept_new) in names {
                    if self.interrupted() {
                        break;
                    }
                    self.out.set_accept_new(accept_new);
                    let opened = match pre.next() {
                        Some(r) => r,
                        None => input::open(name, in_opts),
                    };
                    let mut inp = match opened {
                        Ok(i) => i,
                        // A signal while it waited for a FIFO's writer or a pipe's first bytes.
                        Err(_) if self.interrupted() => break,
                        Err(e) => {
                            eprintln!("tcpflow: {e}");
                            self.host.read_errors += 1;
                            self.failed = true;
                            continue;
                        }
                    };
                    if o.verbose {
                        eprintln!(
                            "tcpflow: reading {} (link type {}, {:?}, {:?})",
                            inp.name,
                            inp.link
                                .map_or("not given yet".to_string(), |l| l.0.to_string()),
                            inp.format,
                            inp.compression
                        );
                    }
                    // An expression that does not apply to the file's link type: the file is
                    // left out.
                    if let (Some(fs), Some(link)) = (&mut self.filters, inp.link) {
                        if let Err(e) = fs.program(link) {
                            eprintln!(
                                "tcpflow: {}: bad filter expression '{}': {e}",
                                inp.name,
                                o.filter.as_deref().unwrap_or_default()
                            );
                            self.filter_refused.push(link);
                            self.failed = true;
                            let _ = inp.close();
                            continue;
                        }
                    }
                    self.read_file(&mut inp, &mut progress);
                    if let Some(e) = inp.close() {
                        eprintln!("tcpflow: {e}");
                        self.host.read_errors += 1;
                        self.failed = true;
                    }
                }
                self.out.set_accept_new(true);
                None
            }
        }
    }

    /// Processes a live capture's packets until the capturing thread ends (SIGINT/SIGTERM,
    /// or a capture error), then returns what it counted. Every packet the thread took from
    /// the ring before the signal is processed.
    fn read_live(&mut self, mut cap: LiveCapture, link: LinkType) -> CaptureStats {
        let mut last_advance = Instant::now();
        loop {
            crate::watchdog::tick();
            match cap.next(ADVANCE_EVERY) {
                Next::Batch(b) => {
                    for (ts, origlen, data) in b.packets() {
                        self.packet(link, ts, origlen, data);
                    }
                    cap.recycle(b);
                }
                Next::Idle => {}
                Next::Ended => break,
            }
            if self.out.should_stop() {
                // The output failed for good: the capture ends too.
                self.stop.store(true, Ordering::Relaxed);
            }
            if last_advance.elapsed() >= ADVANCE_EVERY {
                last_advance = Instant::now();
                let now = now_ns();
                // viz (issue 19): through the tee.
                let mut sink = crate::viz::Tee {
                    sink: &mut self.out,
                    timeline: self.timeline.as_deref_mut(),
                };
                #[cfg(not(feature = "inline-outputs"))]
                let mut sink: &mut dyn tcpflow_core::Sink = &mut sink;
                self.engine.advance(Timestamp(now), &mut sink);
                self.out.idle(now);
            }
            // viz (issue 19): --report-interval rewrites the pictures during the capture.
            if self.viz_refresh.as_mut().is_some_and(|r| r.due()) {
                self.refresh_viz();
            }
        }
        let st = cap.join();
        if let Some(e) = &st.error {
            eprintln!("tcpflow: capture error: {e}");
            self.failed = true;
        }
        st
    }
}

impl<S: Output> Run<'_, S> {
    /// viz (issue 19): the pictures from the run so far (`--report-interval`); a failure is
    /// warned about and the capture goes on.
    fn refresh_viz(&mut self) {
        let (Some(r), Some(tl)) = (&self.viz_refresh, &self.timeline) else {
            return;
        };
        let mut host = self.host;
        self.out.counters(&mut host);
        let totals = Totals {
            stats: self.engine.stats(),
            host: &host,
            // The connections open now: the run's peak is known at its end.
            max_open_flows: self.out.open_flows(),
            extra: &r.extra,
        };
        if let Err(e) = r.write(tl, self.out.report().viz_tables(), &totals) {
            if !self.quiet {
                eprintln!("tcpflow: warning: {e}");
            }
        }
    }
}

fn summary(stats: &Stats, host: &HostStats, outdir: Option<&Path>, spooled: bool) -> String {
    let f = &stats.flow;
    let fr = &stats.frag;
    let pcap_drops = host.pcap_dropped + host.pcap_if_dropped + host.queue_dropped;
    let frag_drops = fr.timed_out + fr.no_slot + fr.too_big;
    let mut s = if spooled {
        format!(
            "tcpflow: {} packets, {} connections spooled",
            host.packets_read, f.opened
        )
    } else {
        format!(
            "tcpflow: {} packets, {} connections, {} files",
            host.packets_read, f.opened, host.files_written
        )
    };
    if let Some(d) = outdir {
        s.push_str(&format!(" in {}", d.display()));
    }
    s.push_str(&format!(
        ", {} bytes written, {} gaps ({} bytes), {} conflicting bytes; drops: {} by capture{}, {} fragmented datagrams, {} out-of-window segments, {} evicted connections",
        host.bytes_written,
        f.gaps,
        f.gap_bytes,
        f.conflict_bytes,
        pcap_drops,
        if pcap_drops > 0 {
            format!(
                " (kernel ring {}, interface {}, queue {})",
                host.pcap_dropped, host.pcap_if_dropped, host.queue_dropped
            )
        } else {
            String::new()
        },
        frag_drops,
        f.out_of_window,
        f.closed_evicted
    ));
    if f.unclassified_bytes > 0 {
        // Bytes behind a stream's position where its gaps were forgotten for lack of
        // memory: neither written nor compared, so the user knows the files may miss them.
        s.push_str(&format!(
            "; {} bytes unclassified (late or retransmitted, for gaps forgotten for lack of memory)",
            f.unclassified_bytes
        ));
    }
    if host.files_failed > 0 {
        s.push_str(&format!(
            "; {} files failed ({} bytes not written)",
            host.files_failed, host.write_lost_bytes
        ));
    }
    s
}

/// Runs with validated options; returns the exit status, or a fatal error message.
pub fn run(o: Options) -> Result<i32, String> {
    // A file size limit (ulimit -f) is an error to report, not a signal that kills.
    // SAFETY: setting a signal's disposition to "ignore".
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
    }
    // issue #20: --spool-ship PATH only ships.
    #[cfg(feature = "ship")]
    if o.spool_ship.is_some() {
        return crate::ship::ship_spool(&o);
    }
    match &o.action {
        Action::Capture => {}
        // issue #20: a bucket (s3://) as the input of an export or a summary.
        #[cfg(feature = "ship")]
        Action::Export(p) if crate::ship::is_url(p) => return crate::ship::fetch::export(&o, p),
        #[cfg(feature = "ship")]
        Action::Summary(p) if crate::ship::is_url(p) => return crate::ship::fetch::summary(&o, p),
        Action::Export(p) => return spoolcmd::export(&o, p),
        Action::Summary(p) => return spoolcmd::summary(&o, p),
    }
    let Some(Setup {
        inputs,
        mut mem,
        config,
        sizing,
        report,
        spool,
        mut spool_buf,
        mut spool_flows,
        #[cfg(feature = "ship")]
        shipper,
    }) = setup(&o)?
    else {
        return Ok(2);
    };
    let engine =
        Engine::new(mem.storage(), config).map_err(|e| format!("engine storage refused: {e}"))?;
    match (spool, o.console) {
        (Some(storage), _) => {
            let sp = o.spool.as_ref().expect("spool options");
            let name = sp.path.display();
            // What each segment holds, counted as it is filled (read back otherwise).
            let mut tallies = vec![
                SegmentTally::EMPTY;
                (storage.segment_count() as usize).min(budget::SPOOL_TALLIES)
            ];
            let writer = SpoolWriter::new(storage, &mut spool_buf, &mut spool_flows[..])
                .map_err(|e| match e {
                    tcpflow_core::spool::SpoolError::Storage(e) => {
                        format!("cannot read spool {name}: {e}")
                    }
                    tcpflow_core::spool::SpoolError::Config(c) => {
                        format!("spool {name}: geometry refused: {c:?}")
                    }
                })?
                .with_tallies(&mut tallies);
            #[allow(unused_mut)]
            let mut out = SpoolSink::new(writer, sp.sync_secs);
            #[cfg(feature = "ship")]
            if let (Some(shipper), Some(sh)) = (shipper, &o.ship) {
                out.set_shipper(shipper, sh.clone());
            }
            drive(&o, inputs, engine, out, report, &sizing)
        }
        #[cfg(feature = "outputs")]
        (None, Some(_)) if o.json => drive(&o, inputs, engine, JsonSink::new(), report, &sizing),
        (None, Some(c)) => {
            let out = ConsoleSink::new(o.template.clone(), c);
            drive(&o, inputs, engine, out, report, &sizing)
        }
        #[cfg(feature = "outputs")]
        (None, None) if o.pcap.any() || o.flow_commands.any() => {
            // The descriptors of -f shared: a quarter for the pcap files.
            let mut cfg = output_config(&o);
            let fds = cfg.limits.max_open_files;
            let pcap_fds = (fds / 4).max(1);
            if o.pcap.any() {
                cfg.limits.max_open_files = (fds - pcap_fds).max(1);
            }
            let pcap = o.pcap.any().then(|| {
                PcapSink::new(
                    o.pcap,
                    o.template.clone(),
                    o.outdir.clone(),
                    o.file_mode,
                    pcap_fds,
                )
            });
            let cmds = if o.flow_commands.any() {
                Some(FlowCommands::new(&o.flow_commands)?)
            } else {
                None
            };
            let out = Tee(
                with_scanners(FileSink::new(cfg, o.max_flows as usize), &o),
                Tee(Maybe(pcap), Maybe(cmds)),
            );
            drive(&o, inputs, engine, out, report, &sizing)
        }
        (None, None) => {
            let out = with_scanners(FileSink::new(output_config(&o), o.max_flows as usize), &o);
            drive(&o, inputs, engine, out, report, &sizing)
        }
    }
}

/// The engine's memory, allocated once.
struct EngineMemory {
    flows: Box<[FlowRecord]>,
    hot: Box<[HotSlot]>,
    index: Vec<u32>,
    blocks: Box<[Block]>,
    frag_slots: Vec<FragSlot>,
    frag_arena: Vec<u8>,
}

impl EngineMemory {
    fn storage(&mut self) -> Storage<'_> {
        Storage {
            flows: &mut self.flows[..],
            hot: &mut self.hot[..],
            index: &mut self.index,
            blocks: &mut self.blocks[..],
            frag_slots: &mut self.frag_slots,
            frag_arena: &mut self.frag_arena,
        }
    }
}

/// Where the packets come from, opened by [`setup`].
struct Inputs {
    stop: Arc<AtomicBool>,
    in_opts: input::Opts,
    /// The interface (a live capture), its link type and name.
    live: Option<(Capture<Active>, LinkType, String)>,
    /// Capture files opened before privileges were dropped (`-U`).
    preopened: Vec<Result<Input, String>>,
}

/// What [`setup`] made before the first packet.
struct Setup {
    inputs: Inputs,
    mem: EngineMemory,
    config: Config,
    sizing: budget::Sizing,
    report: Report,
    spool: Option<FileSpool>,
    spool_buf: Vec<u8>,
    spool_flows: Box<[SpoolFlow]>,
    /// `--ship`: the shipper thread, started once the spool is open (issue #20).
    #[cfg(feature = "ship")]
    shipper: Option<crate::ship::shipper::Shipper>,
}

/// Everything before the first packet, in this order: signals; inputs, the filter and the
/// interface checked; the output folder; inputs opened before privileges go; memory;
/// privileges dropped; reports and the spool created (as the user). `None`: the filter
/// expression does not compile (said; a usage error).
fn setup(o: &Options) -> Result<Option<Setup>, String> {
    let start_ns = now_ns();
    let stop = Arc::new(AtomicBool::new(false));
    let stop_signals = [
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGHUP,
    ];
    for sig in stop_signals {
        // A second signal while the flows are being written out ends the run at once.
        signal_hook::flag::register_conditional_shutdown(sig, 130, stop.clone())
            .map_err(|e| format!("cannot install signal handler: {e}"))?;
        signal_hook::flag::register(sig, stop.clone())
            .map_err(|e| format!("cannot install signal handler: {e}"))?;
    }
    // A run stuck where it never checks the flag still ends (watchdog.rs).
    crate::watchdog::install(&stop_signals)?;
    if !o.quiet {
        for w in &o.warnings {
            eprintln!("tcpflow: warning: {w}");
        }
    }
    let chroot = o.chroot.as_deref();
    let files_mode = o.console.is_none() && o.spool.is_none();

    // The xz decoder may use the budget (at least what xz's default preset needs): a
    // crafted header may ask for 4 GiB.
    let in_opts = input::Opts {
        xz_memlimit: o.memory.map_or(input::XZ_MEMLIMIT_DEFAULT, |m| {
            m.max(input::XZ_MEMLIMIT_MIN)
        }),
        stop: stop.clone(),
        // A run under a memory budget keeps one input buffer.
        read_ahead: o.memory.is_none(),
    };

    // 1. Inputs exist and are captures (a typo fails before anything is created).
    if let Source::Files { read, finish } = &o.source {
        for name in read.iter().chain(finish) {
            if name == "-" {
                continue;
            }
            let md = std::fs::metadata(name)
                .map_err(|e| format!("cannot open {name}: {}", io_message(&e)))?;
            // A pipe (`-r <(zcat x)`) can be read only once: it is checked when it is read.
            if md.is_file() {
                if let Some(e) = input::open(name, &in_opts)?.close() {
                    return Err(e);
                }
            }
        }
    }

    // A filter that does not compile is a usage error, found before anything is created.
    if let Some(f) = &o.filter {
        let dead = Capture::dead(pcap::Linktype(1)).map_err(|e| format!("libpcap: {e}"))?;
        if let Err(e) = dead.compile(f, true) {
            eprintln!("tcpflow: bad filter expression '{f}': {}", pcap_msg(e));
            return Ok(None);
        }
    }

    // The interface opens before anything is created (a capture needs privileges).
    let live = match &o.source {
        Source::Live { interface, promisc } => Some(open_live(
            interface.as_deref(),
            *promisc,
            o.filter.as_deref(),
            o.capture_buffer_bytes,
        )?),
        Source::Files { .. } => None,
    };

    // 2. Output folder, before any packet.
    let user = match &o.user {
        Some(u) => Some(privs::lookup(u)?),
        None => None,
    };
    if let Some(root) = chroot {
        // Created here it would be root's new folder, not the jail the user prepared.
        match std::fs::metadata(root) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => return Err(format!("-z: {} is not a folder", root.display())),
            Err(e) => return Err(format!("-z: {}: {}", root.display(), io_message(&e))),
        }
    }
    if files_mode {
        prepare_outdir(&before_chroot(chroot, &o.outdir), user.as_ref())?;
    }
    // 3. Files open before privileges go (all of them when -U is given).
    let mut preopened: Vec<Result<Input, String>> = Vec::new();
    if let (Source::Files { read, finish }, Some(_)) = (&o.source, &user) {
        for name in read.iter().chain(finish) {
            // A FIFO may wait for its writer: a signal there ends the run (what follows
            // would wait too).
            if stop.load(Ordering::Relaxed) {
                break;
            }
            preopened.push(input::open(name, &in_opts));
        }
    }

    // 4. Engine storage, allocated once.
    let n = o.max_flows as usize;
    // Zeroed (untouched) storage: a run pays for the pages its flows reach, not the maximum.
    crate::zeroed::large_allocations_mapped();
    let mem = EngineMemory {
        flows: zeroed_box::<FlowRecord>(n),
        index: vec![0u32; (2 * n).next_power_of_two()],
        blocks: zeroed_box::<Block>(o.pool_blocks as usize),
        frag_slots: vec![FragSlot::EMPTY; o.frag_slots],
        frag_arena: vec![0u8; o.frag_slots * o.frag_slot_bytes],
        hot: zeroed_box::<HotSlot>(budget::hot_len(n)),
    };
    let spooling = o.spool.is_some();
    // `-b`: the file writer keeps a count per direction with a cut (in the memory estimate).
    let cutting = o.max_bytes.is_some();
    let sizing = budget::Sizing {
        max_flows: o.max_flows,
        pool_blocks: o.pool_blocks,
        frag_slots: o.frag_slots,
        frag_slot_bytes: o.frag_slot_bytes,
        buffer_bytes: o.buffer_bytes,
    };
    let spool_buf = vec![0u8; if spooling { sizing.spool_buffer() } else { 0 }];
    let spool_flows = zeroed_box::<SpoolFlow>(if spooling { n } else { 0 });
    let config = Config {
        idle_timeout_ns: o.idle_timeout_secs.saturating_mul(1_000_000_000),
        overlap: match o.overlap {
            Overlap::First => OverlapPolicy::First,
            Overlap::Last => OverlapPolicy::Last,
        },
        hash_key: random_key(),
        // The file writer carries an evicted connection on in its files; the spool has no
        // record for that.
        resume_evicted: files_mode,
        ..Config::default()
    };
    if o.verbose {
        let mib = |b: usize| fixed(b as u64, 1 << 20, 1);
        let budget = match o.memory {
            Some(m) => format!(" (--memory {})", fmt_size(m)),
            None => String::new(),
        };
        let names = if spooling || o.console.is_some() {
            String::new()
        } else {
            format!(", {} file names in memory", max_names(o))
        };
        eprintln!(
            "tcpflow: {} flows ({} MiB with their index and {} full slots), {} pool blocks ({} MiB: {} of out-of-order data), {} fragment slots ({} MiB), output buffers {} MiB{names}; about {} MiB in all{budget}; idle timeout {} s, overlap {:?}",
            n,
            mib(n * (std::mem::size_of::<FlowRecord>() + budget::host_bytes_per_flow(spooling, cutting))
                + mem.hot.len() * std::mem::size_of::<HotSlot>()
                + mem.index.len() * 4),
            mem.hot.len(),
            mem.blocks.len(),
            mib(mem.blocks.len() * std::mem::size_of::<Block>()),
            fmt_size(sizing.ooo_bytes()),
            o.frag_slots,
            mib(o.frag_slots * (std::mem::size_of::<FragSlot>() + o.frag_slot_bytes)),
            mib(if spooling {
                sizing.spool_buffer()
            } else {
                o.buffer_bytes
            }),
            mib(sizing.memory_bytes(spooling, cutting) as usize),
            o.idle_timeout_secs,
            config.overlap
        );
    }

    // 5. Privileges.
    if let Some(u) = &user {
        privs::drop_to(u, chroot)?;
        if files_mode {
            probe_writable(&o.outdir)?;
        }
    }

    // 6. Reports and the spool, after the drop (with -U: as the user, inside any -z
    // jail), before any packet.
    let xml = match &o.report_xml {
        Some(p) => Some((p.clone(), create_report_file(p, o.file_mode)?)),
        None => None,
    };
    let json = match &o.report_json {
        Some(p) => Some((p.clone(), create_report_file(p, o.file_mode)?)),
        None => None,
    };
    let mut report = Report::start(
        xml,
        json,
        &Creator {
            command_line: command_line(),
            start_unix_ns: start_ns,
        },
    )?;
    if o.viz.any() {
        report.collect_viz(o.scan.http); // viz (issue 19)
    }

    // The spool: opened, locked, checked and sized in full before any packet (a disk that
    // is too small fails here; the rest is allocated beside the run); after the drop, so
    // that with -U it is the user's file.
    let spool_storage = match &o.spool {
        Some(sp) => {
            let path = sp.path.clone();
            let (storage, opened) = spool::open_for_writing(&path, sp.size, sp.init)?;
            if !o.quiet {
                if let Some(w) = &opened.warning {
                    eprintln!("tcpflow: warning: {w}");
                }
                if let Some(old) = opened.grown_from {
                    eprintln!(
                        "tcpflow: spool {} grown from {} to {}",
                        path.display(),
                        fmt_size(old),
                        fmt_size(storage.size())
                    );
                }
            }
            if o.verbose {
                eprintln!(
                    "tcpflow: spool {}: {} in {} segments of {}, {} blocks; {}",
                    path.display(),
                    fmt_size(storage.size()),
                    tcpflow_core::spool::SpoolStorage::segment_count(&storage),
                    fmt_size(u64::from(tcpflow_core::spool::SpoolStorage::segment_size(
                        &storage
                    ))),
                    fmt_size(u64::from(spool::BLOCK_SIZE)),
                    if opened.existing_segments > 0 {
                        format!(
                            "continuing the spool there ({} segments)",
                            opened.existing_segments
                        )
                    } else if opened.created {
                        "new".to_string()
                    } else {
                        "empty".to_string()
                    }
                );
            }
            Some(storage)
        }
        None => None,
    };
    // issue #20: --ship: the shipper thread reads the spool file beside the writer.
    #[cfg(feature = "ship")]
    let shipper = match (&o.ship, &o.spool, &spool_storage) {
        (Some(sh), Some(sp), Some(st)) => Some(crate::ship::start(
            sh,
            &sp.path,
            tcpflow_core::spool::SpoolStorage::segment_size(st),
            tcpflow_core::spool::SpoolStorage::segment_count(st),
            o.quiet,
        )?),
        _ => None,
    };

    Ok(Some(Setup {
        inputs: Inputs {
            stop,
            in_opts,
            live,
            preopened,
        },
        mem,
        config,
        sizing,
        report,
        spool: spool_storage,
        spool_buf,
        spool_flows,
        #[cfg(feature = "ship")]
        shipper,
    }))
}

/// The packet loop and the end of the run, for the output `S`.
fn drive<S: Output>(
    o: &Options,
    inputs: Inputs,
    engine: Engine<'_>,
    out: S,
    report: Report,
    sizing: &budget::Sizing,
) -> Result<i32, String> {
    let Inputs {
        stop,
        in_opts,
        live,
        preopened,
    } = inputs;
    let mut run = Run {
        engine,
        out: Outputs::new(out, report, o.max_bytes),
        host: HostStats::default(),
        live: matches!(o.source, Source::Live { .. }),
        savefile: None,
        savefile_path: o.unprocessed.clone(),
        savefile_mode: o.file_mode,
        warned_savefile: false,
        filters: match (&o.source, &o.filter) {
            (Source::Files { .. }, Some(f)) => Some(Filters::new(f)),
            _ => None,
        },
        filter_refused: Vec::new(),
        stop: stop.clone(),
        quiet: o.quiet,
        failed: false,
        timeline: o.viz.any().then(Box::default), // viz (issue 19)
        viz_refresh: crate::viz::Refresh::new(
            &o.viz,
            vec![capacities_group(
                sizing,
                o.memory,
                o.spool.is_some(),
                o.max_bytes.is_some(),
            )],
            o.file_mode,
        ), // viz (issue 19)
    };

    // 7. Packets.
    let pcap_stats = run.read_inputs(o, live, preopened, &in_opts);

    // 8. Every flow out, then the report.
    let interrupted = stop.load(Ordering::Relaxed);
    let Run {
        mut engine,
        mut out,
        savefile,
        mut host,
        failed,
        mut timeline,
        ..
    } = run;
    let mut sink = crate::viz::Tee {
        sink: &mut out,
        timeline: timeline.as_deref_mut(), // viz (issue 19)
    };
    #[cfg(not(feature = "inline-outputs"))]
    let mut sink: &mut dyn tcpflow_core::Sink = &mut sink;
    engine.finish(&mut sink);
    let stats = *engine.stats();
    if let Some(mut sf) = savefile {
        if let Err(e) = sf.flush() {
            eprintln!("tcpflow: writing the -w file: {e}");
        }
    }
    if let Some(s) = pcap_stats {
        host.pcap_received = s.received;
        host.pcap_dropped = s.dropped;
        host.pcap_if_dropped = s.if_dropped;
        host.queue_dropped = s.queue_dropped;
        host.queue_peak_bytes = s.queue_peak_bytes;
    }
    let spooling = o.spool.is_some();
    let extra = vec![capacities_group(
        sizing,
        o.memory,
        spooling,
        o.max_bytes.is_some(),
    )];
    let end = end_outputs(out, &stats, host, extra, o, timeline);
    if !o.quiet && !end.broken_pipe {
        let files_mode = o.console.is_none() && !spooling;
        let dir = files_mode.then_some(o.outdir.as_path());
        eprintln!("{}", summary(&stats, &end.host, dir, spooling));
        for line in &end.lines {
            eprintln!("{line}");
        }
        if interrupted {
            eprintln!(
                "tcpflow: interrupted; every connection so far was {}",
                if spooling { "spooled" } else { "written" }
            );
        }
    }
    let _ = io::stdout().flush();
    Ok(if failed || end.failed { 1 } else { 0 })
}

/// How the outputs ended ([`end_outputs`]).
pub(crate) struct OutputsEnd {
    /// The run's counters with the outputs'.
    pub host: HostStats,
    /// An output or the report failed (each said so on stderr).
    pub failed: bool,
    pub broken_pipe: bool,
    /// The outputs' lines for the summary.
    pub lines: Vec<String>,
}

/// The end of a run or a spool export, after the last event: the outputs finish their
/// writes, their errors are said, the report gets its totals (the run's counters `host`,
/// the engine's `stats`, the groups `extra` and the outputs').
pub(crate) fn end_outputs<S: Output>(
    out: Outputs<S>,
    stats: &Stats,
    mut host: HostStats,
    mut extra: Vec<Group>,
    o: &Options,
    timeline: Option<Box<crate::viz::Timeline>>,
) -> OutputsEnd {
    let ended = out.end();
    let mut failed = false;
    for e in &ended.end.errors {
        eprintln!("tcpflow: {e}");
        failed = true;
    }
    host.add(&ended.host);
    // Files that failed alone (each warned about): the run went on, the status says so.
    failed |= host.files_failed > 0;
    if host.name_errors > 0 {
        // Warned about when it happened; bytes were lost.
        eprintln!(
            "tcpflow: {} directions not written ({} bytes): no file name",
            host.name_errors, host.unwritten_bytes
        );
        failed = true;
    }
    extra.extend(ended.end.groups);
    let totals = Totals {
        stats,
        host: &host,
        max_open_flows: ended.max_open_flows,
        extra: &extra,
    };
    let mut report = ended.report;
    let viz_tables = report.take_viz(); // viz (issue 19)
    if let Err(e) = report.finish(&totals) {
        eprintln!("tcpflow: {e}");
        failed = true;
    }
    // viz (issue 19): report.html and report.pdf from the same totals.
    if let Err(e) = crate::viz::finish_run(&o.viz, timeline, viz_tables, &totals, o.file_mode) {
        eprintln!("tcpflow: {e}");
        failed = true;
    }
    OutputsEnd {
        host,
        failed,
        broken_pipe: ended.end.broken_pipe,
        lines: ended.end.lines,
    }
}

/// The scanners the options enabled (`-e`), given to a file writer.
#[cfg_attr(not(feature = "scan"), allow(unused_mut))]
pub(crate) fn with_scanners(mut out: FileSink, o: &Options) -> FileSink {
    #[cfg(feature = "scan")]
    if let Some(s) = crate::scan::ScanSet::new(crate::scan::ScanConfig {
        selection: o.scan,
        template: o.template.clone(),
        outdir: o.outdir.clone(),
        display_dir: output_config(o).display_dir,
        file_mode: o.file_mode,
        max_bytes: o.max_bytes,
        http: crate::scan::http::HttpConfig {
            max_body: o.http_max_body,
            decode: o.http_decode,
        },
    }) {
        out.set_scanners(s);
    }
    let _ = o;
    out
}

/// The sizes the run allocated, for the report.
fn capacities_group(s: &budget::Sizing, memory: Option<u64>, spool: bool, cut: bool) -> Group {
    (
        "capacities",
        vec![
            ("memory_budget", memory.unwrap_or(0)),
            ("memory_estimate", s.memory_bytes(spool, cut)),
            ("max_flows", u64::from(s.max_flows)),
            ("pool_blocks", u64::from(s.pool_blocks)),
            ("max_ooo_bytes", s.ooo_bytes()),
            ("frag_slots", s.frag_slots as u64),
            ("frag_slot_bytes", s.frag_slot_bytes as u64),
            (
                "buffer_bytes",
                if spool {
                    s.spool_buffer() as u64
                } else {
                    s.buffer_bytes as u64
                },
            ),
        ],
    )
}

/// Opens a live capture: nonblocking (the capturing thread polls the descriptor itself), a
/// kernel ring of `buffer_bytes`, no immediate mode (the kernel hands over blocks of
/// packets), the filter set.
fn open_live(
    interface: Option<&str>,
    promisc: bool,
    filter: Option<&str>,
    buffer_bytes: usize,
) -> Result<(Capture<Active>, LinkType, String), String> {
    let dev = match interface {
        Some(i) => i.to_string(),
        None => match pcap::Device::lookup() {
            Ok(Some(d)) => d.name,
            Ok(None) => {
                return Err(
                    "no capture interface found; give one with -i or read a file with -r".into(),
                )
            }
            Err(e) => return Err(format!("cannot find a capture interface: {}", pcap_msg(e))),
        },
    };
    let mut cap = Capture::from_device(dev.as_str())
        .and_then(|c| {
            c.promisc(promisc)
                .snaplen(262_144)
                .immediate_mode(false)
                .buffer_size(i32::try_from(buffer_bytes).unwrap_or(i32::MAX))
                .timeout(PCAP_TIMEOUT_MS)
                .open()
        })
        .and_then(|c| c.setnonblock())
        .map_err(|e| format!("cannot capture on {dev}: {}", pcap_msg(e)))?;
    let link = input::link_type(cap.get_datalink(), &dev)?;
    if let Some(f) = filter {
        cap.filter(f, true)
            .map_err(|e| format!("bad filter expression '{f}' on {dev}: {}", pcap_msg(e)))?;
    }
    Ok((cap, link, dev))
}

fn pcap_msg(e: pcap::Error) -> String {
    match e {
        pcap::Error::PcapError(m) => m,
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::progress_line;

    #[test]
    fn the_progress_line_says_size_share_rate_and_flows() {
        assert_eq!(
            progress_line("c.pcap", (3 << 19, Some(3 << 20)), (5000, 2500, 500), 7),
            "c.pcap: 1.5/3.0 MiB (50%), 5000 packets (5000/s), 7 open flows"
        );
        // A pipe (no size), and no time yet: the rate is over one millisecond.
        assert_eq!(
            progress_line("-", (1 << 20, None), (3, 3, 0), 0),
            "-: 1.0 MiB, 3 packets (3000/s), 0 open flows"
        );
    }
}
