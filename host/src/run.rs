//! A run of the command: prepare the output, open the inputs, drop privileges, feed every
//! packet to the engine, finish every flow, write the report and the summary.

use std::fs::{File, OpenOptions};
use std::io::{self, IsTerminal, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::Parser;
use pcap::{Activated, Active, Capture, Packet, Savefile};
use tcpflow_core::defrag::FragSlot;
use tcpflow_core::engine::Outcome;
use tcpflow_core::pool::Block;
use tcpflow_core::table::FlowSlot;
use tcpflow_core::{Config, Engine, LinkType, OverlapPolicy, Stats, Storage, Timestamp};

use crate::cli::{Args, Options, Overlap, Source};
use crate::input::{self, io_message, Input};
use crate::output::{Limits, Output, OutputConfig};
use crate::privs;
use crate::report::{command_line, Creator, HostStats, Report, Totals};

/// Fragment reassembly: slots and the bytes each may hold.
const FRAG_SLOTS: usize = 64;
const FRAG_SLOT_BYTES: usize = 64 * 1024;
/// Descriptors kept free for inputs, the report, `-w` and libpcap.
const FD_MARGIN: u64 = 32;
/// The progress line is refreshed at most this often.
const PROGRESS_EVERY: Duration = Duration::from_millis(250);
/// How long a live capture waits for packets before running timeouts.
const POLL_MS: i32 = 250;

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
fn prepare_outdir(dir: &Path, owner: Option<&privs::User>) -> Result<(), String> {
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
                std::os::unix::fs::chown(dir, Some(u.uid), Some(u.gid)).map_err(|e| {
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

fn create_report_file(p: &Path, owner: Option<&privs::User>) -> Result<File, String> {
    let f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o644)
        .open(p)
        .map_err(|e| format!("cannot create report {}: {}", p.display(), io_message(&e)))?;
    if let Some(u) = owner {
        let _ = std::os::unix::fs::fchown(&f, Some(u.uid), Some(u.gid));
    }
    Ok(f)
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

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
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

    fn tick(&mut self, input: &mut Input, packets: u64, open_flows: u64) {
        if !self.enabled || packets % 256 != 0 {
            return;
        }
        let now = Instant::now();
        if now.duration_since(self.last) < PROGRESS_EVERY {
            return;
        }
        self.last = now;
        let read = input.bytes_read();
        let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
        let size = match input.total {
            Some(t) if t > 0 => {
                format!(
                    "{:.1}/{:.1} MiB ({:.0}%)",
                    mib(read),
                    mib(t),
                    100.0 * read as f64 / t as f64
                )
            }
            _ => format!("{:.1} MiB", mib(read)),
        };
        let secs = now.duration_since(self.start).as_secs_f64().max(1e-3);
        let rate = (packets - self.start_packets) as f64 / secs;
        eprint!(
            "\r{}: {size}, {packets} packets ({rate:.0}/s), {open_flows} open flows\x1b[K",
            input.name
        );
        self.shown = true;
    }

    fn clear(&mut self) {
        if self.shown {
            eprint!("\r\x1b[K");
            self.shown = false;
        }
    }
}

/// Everything the packet loop touches.
struct Run<'e> {
    engine: Engine<'e>,
    out: Output,
    savefile: Option<(Savefile, LinkType)>,
    savefile_path: Option<PathBuf>,
    warned_savefile: bool,
    stop: Arc<AtomicBool>,
    quiet: bool,
    failed: bool,
}

impl Run<'_> {
    fn interrupted(&self) -> bool {
        self.stop.load(Ordering::Relaxed) || self.out.should_stop()
    }

    /// Opens the `-w` file from the first capture (it takes that capture's link type).
    fn ensure_savefile<T: Activated + ?Sized>(
        &mut self,
        cap: &Capture<T>,
        link: LinkType,
    ) -> Result<(), String> {
        if self.savefile.is_some() {
            return Ok(());
        }
        if let Some(p) = self.savefile_path.take() {
            let sf = cap
                .savefile(&p)
                .map_err(|e| format!("cannot create {}: {}", p.display(), e))?;
            self.savefile = Some((sf, link));
        }
        Ok(())
    }

    fn packet(&mut self, link: LinkType, ts_mult: u64, p: &Packet<'_>) {
        let sec = p.header.ts.tv_sec.max(0) as u64;
        let frac = p.header.ts.tv_usec.max(0) as u64;
        let ts = Timestamp(
            sec.saturating_mul(1_000_000_000)
                .saturating_add(frac * ts_mult),
        );
        self.out.host_mut().packets_read += 1;
        let processed = matches!(
            self.engine.process(ts, link, p.data, &mut self.out),
            Ok(Outcome::Tcp) | Ok(Outcome::FragmentHeld)
        );
        if !processed {
            self.out.host_mut().unprocessed_packets += 1;
            if let Some((sf, sf_link)) = &mut self.savefile {
                if *sf_link == link {
                    sf.write(p);
                    self.out.host_mut().unprocessed_written += 1;
                } else if !self.warned_savefile {
                    self.warned_savefile = true;
                    if !self.quiet {
                        eprintln!(
                            "tcpflow: warning: -w file has link type {}; unprocessed packets of link type {} are not written to it",
                            sf_link.0, link.0
                        );
                    }
                }
            }
        }
    }

    /// Reads one capture file to its end (or an error, or an interruption).
    fn read_file(&mut self, input: &mut Input, progress: &mut Progress) {
        if let Err(e) = self.ensure_savefile(&input.cap, input.link) {
            eprintln!("tcpflow: {e}");
            self.failed = true;
        }
        let mut n: u64 = 0;
        let link = input.link;
        progress.begin(self.out.host().packets_read);
        loop {
            if self.interrupted() {
                break;
            }
            match input.cap.next_packet() {
                Ok(p) => {
                    n += 1;
                    self.packet(link, 1, &p);
                }
                Err(pcap::Error::NoMorePackets) => break,
                Err(e) => {
                    progress.clear();
                    let msg = match e {
                        pcap::Error::PcapError(m) => m,
                        other => other.to_string(),
                    };
                    eprintln!(
                        "tcpflow: {}: bad packet {} (after {n} good ones): {msg}",
                        input.name,
                        n + 1
                    );
                    self.out.host_mut().read_errors += 1;
                    self.failed = true;
                    break;
                }
            }
            let (pk, open) = (self.out.host().packets_read, self.out.open_flows());
            progress.tick(input, pk, open);
        }
        progress.clear();
    }

    /// Captures on a live interface until SIGINT/SIGTERM.
    fn read_live(&mut self, mut cap: Capture<Active>, link: LinkType) -> Capture<Active> {
        let fd = cap.as_raw_fd();
        let mut last_advance = Instant::now();
        'outer: loop {
            if self.interrupted() {
                break;
            }
            let mut pfd = libc::pollfd {
                fd,
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd.
            let rc = unsafe { libc::poll(&mut pfd, 1, POLL_MS) };
            if rc < 0 {
                let e = io::Error::last_os_error();
                if e.kind() != io::ErrorKind::Interrupted {
                    eprintln!("tcpflow: poll: {e}");
                    self.failed = true;
                    break;
                }
            }
            // Drain what is there (bounded, so signals and timeouts are seen).
            for _ in 0..10_000 {
                match cap.next_packet() {
                    Ok(p) => self.packet(link, 1000, &p),
                    Err(pcap::Error::TimeoutExpired) => break,
                    Err(pcap::Error::NoMorePackets) => break 'outer,
                    Err(e) => {
                        eprintln!("tcpflow: capture error: {e}");
                        self.failed = true;
                        break 'outer;
                    }
                }
                if self.interrupted() {
                    break 'outer;
                }
            }
            if last_advance.elapsed() >= Duration::from_millis(500) {
                last_advance = Instant::now();
                self.engine.advance(Timestamp(now_ns()), &mut self.out);
                self.out.flush_console();
            }
        }
        cap
    }
}

fn summary(stats: &Stats, host: &HostStats, outdir: Option<&Path>) -> String {
    let f = &stats.flow;
    let fr = &stats.frag;
    let pcap_drops = host.pcap_dropped + host.pcap_if_dropped;
    let frag_drops = fr.timed_out + fr.no_slot + fr.too_big;
    let mut s = format!(
        "tcpflow: {} packets, {} connections, {} files",
        host.packets_read, f.opened, host.files_written
    );
    if let Some(d) = outdir {
        s.push_str(&format!(" in {}", d.display()));
    }
    s.push_str(&format!(
        ", {} bytes written, {} gaps ({} bytes), {} conflicting bytes; drops: {} by capture, {} fragmented datagrams, {} out-of-window segments, {} evicted connections",
        host.bytes_written,
        f.gaps,
        f.gap_bytes,
        f.conflict_bytes,
        pcap_drops,
        frag_drops,
        f.out_of_window,
        f.closed_evicted
    ));
    s
}

/// Runs with validated options; returns the exit status, or a fatal error message.
pub fn run(o: Options) -> Result<i32, String> {
    let start_ns = now_ns();
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGHUP,
    ] {
        // A second signal while the flows are being written out ends the run at once.
        signal_hook::flag::register_conditional_shutdown(sig, 130, stop.clone())
            .map_err(|e| format!("cannot install signal handler: {e}"))?;
        signal_hook::flag::register(sig, stop.clone())
            .map_err(|e| format!("cannot install signal handler: {e}"))?;
    }
    if !o.quiet {
        for w in &o.warnings {
            eprintln!("tcpflow: warning: {w}");
        }
    }
    let chroot = o.chroot.as_deref();
    let files_mode = o.console.is_none();

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
                if let Some(e) = input::open(name)?.close() {
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
            return Ok(2);
        }
    }

    // The interface opens before anything is created (a capture needs privileges).
    let mut live = match &o.source {
        Source::Live { interface, promisc } => Some(open_live(
            interface.as_deref(),
            *promisc,
            o.filter.as_deref(),
        )?),
        Source::Files { .. } => None,
    };

    // 2. Output folder and report, before any packet.
    let user = match &o.user {
        Some(u) => Some(privs::lookup(u)?),
        None => None,
    };
    if files_mode {
        prepare_outdir(&before_chroot(chroot, &o.outdir), user.as_ref())?;
    }
    let xml = match &o.report_xml {
        Some(p) => Some((
            p.clone(),
            create_report_file(&before_chroot(chroot, p), user.as_ref())?,
        )),
        None => None,
    };
    let json = match &o.report_json {
        Some(p) => Some((
            p.clone(),
            create_report_file(&before_chroot(chroot, p), user.as_ref())?,
        )),
        None => None,
    };
    let report = Report::start(
        xml,
        json,
        &Creator {
            command_line: command_line(),
            start_unix_ns: start_ns,
        },
    )?;

    // 3. Files open before privileges go (all of them when -U is given).
    let mut preopened: Vec<Result<Input, String>> = Vec::new();
    if let (Source::Files { read, finish }, Some(_)) = (&o.source, &user) {
        for name in read.iter().chain(finish) {
            preopened.push(input::open(name));
        }
    }

    // 4. Engine storage, allocated once.
    let n = o.max_flows as usize;
    let mut flows = vec![FlowSlot::EMPTY; n];
    let mut index = vec![0u32; (2 * n).next_power_of_two()];
    let mut blocks = vec![Block::EMPTY; o.pool_blocks as usize];
    let mut frag_slots = vec![FragSlot::EMPTY; FRAG_SLOTS];
    let mut frag_arena = vec![0u8; FRAG_SLOTS * FRAG_SLOT_BYTES];
    let config = Config {
        idle_timeout_ns: o.idle_timeout_secs.saturating_mul(1_000_000_000),
        overlap: match o.overlap {
            Overlap::First => OverlapPolicy::First,
            Overlap::Last => OverlapPolicy::Last,
        },
        hash_key: random_key(),
        ..Config::default()
    };
    if o.verbose {
        let mib = |b: usize| b as f64 / (1024.0 * 1024.0);
        eprintln!(
            "tcpflow: {} flow slots ({:.1} MiB), {} pool blocks ({:.1} MiB), {} fragment slots, idle timeout {} s, overlap {:?}",
            n,
            mib(n * std::mem::size_of::<FlowSlot>() + index.len() * 4),
            blocks.len(),
            mib(blocks.len() * std::mem::size_of::<Block>()),
            FRAG_SLOTS,
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

    let engine = Engine::new(
        Storage {
            flows: &mut flows,
            index: &mut index,
            blocks: &mut blocks,
            frag_slots: &mut frag_slots,
            frag_arena: &mut frag_arena,
        },
        config,
    );
    let out_cfg = OutputConfig {
        template: o.template.clone(),
        max_bytes: o.max_bytes,
        outdir: o.outdir.clone(),
        display_dir: if o.outdir == Path::new(".") {
            None
        } else {
            Some(o.outdir.clone())
        },
        limits: Limits {
            dir_buffer: 64 * 1024,
            total_buffer: o.buffer_bytes,
            max_open_files: o.max_fds.unwrap_or_else(default_max_fds),
        },
    };
    let out = match o.console {
        Some(c) => Output::console(out_cfg, n, report, c),
        None => Output::files(out_cfg, n, report),
    };
    let mut run = Run {
        engine,
        out,
        savefile: None,
        savefile_path: o.unprocessed.clone(),
        warned_savefile: false,
        stop: stop.clone(),
        quiet: o.quiet,
        failed: false,
    };

    // 6. Packets.
    let mut pcap_stats = None;
    match &o.source {
        Source::Live { .. } => {
            let (cap, link, dev) = live.take().expect("opened above");
            if let Err(e) = run.ensure_savefile(&cap, link) {
                eprintln!("tcpflow: {e}");
                run.failed = true;
            }
            if !o.quiet {
                eprintln!("tcpflow: listening on {dev} (stop with Ctrl-C)");
            }
            let mut cap = run.read_live(cap, link);
            pcap_stats = cap.stats().ok();
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
                if run.interrupted() {
                    break;
                }
                run.out.set_accept_new(accept_new);
                let opened = match pre.next() {
                    Some(r) => r,
                    None => input::open(name),
                };
                let mut inp = match opened {
                    Ok(i) => i,
                    Err(e) => {
                        eprintln!("tcpflow: {e}");
                        run.out.host_mut().read_errors += 1;
                        run.failed = true;
                        continue;
                    }
                };
                if o.verbose {
                    eprintln!(
                        "tcpflow: reading {} (link type {}, {:?})",
                        inp.name, inp.link.0, inp.compression
                    );
                }
                if let Some(f) = &o.filter {
                    if let Err(e) = inp.cap.filter(f, true) {
                        eprintln!(
                            "tcpflow: {}: bad filter expression '{f}': {}",
                            inp.name,
                            pcap_msg(e)
                        );
                        run.failed = true;
                        let _ = inp.close();
                        continue;
                    }
                }
                run.read_file(&mut inp, &mut progress);
                if let Some(e) = inp.close() {
                    eprintln!("tcpflow: {e}");
                    run.out.host_mut().read_errors += 1;
                    run.failed = true;
                }
            }
            run.out.set_accept_new(true);
        }
    }

    // 7. Every flow out, then the report.
    let interrupted = stop.load(Ordering::Relaxed);
    let Run {
        mut engine,
        mut out,
        savefile,
        failed,
        ..
    } = run;
    engine.finish(&mut out);
    let stats = *engine.stats();
    if let Some((mut sf, _)) = savefile {
        if let Err(e) = sf.flush() {
            eprintln!("tcpflow: writing the -w file: {e}");
        }
    }
    let mut failed = failed;
    if let Some(e) = out.fatal() {
        eprintln!("tcpflow: {e}");
        failed = true;
    }
    let broken_pipe = out.broken_pipe();
    let (report, mut host, max_open) = out.into_report();
    if let Some(s) = pcap_stats {
        host.pcap_received = s.received.into();
        host.pcap_dropped = s.dropped.into();
        host.pcap_if_dropped = s.if_dropped.into();
    }
    if let Err(e) = report.finish(&Totals {
        stats: &stats,
        host: &host,
        max_open_flows: max_open,
    }) {
        eprintln!("tcpflow: {e}");
        failed = true;
    }
    if !o.quiet && !broken_pipe {
        let dir = if files_mode {
            Some(o.outdir.as_path())
        } else {
            None
        };
        eprintln!("{}", summary(&stats, &host, dir));
        if interrupted {
            eprintln!("tcpflow: interrupted; every connection so far was written");
        }
    }
    let _ = io::stdout().flush();
    Ok(if failed { 1 } else { 0 })
}

/// Opens a live capture: nonblocking (the loop polls the descriptor itself), immediate
/// delivery, the filter set.
fn open_live(
    interface: Option<&str>,
    promisc: bool,
    filter: Option<&str>,
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
                .immediate_mode(true)
                .timeout(POLL_MS)
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
