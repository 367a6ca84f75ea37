//! Live capture under load: two network namespaces joined by a veth pair, `tcpreplay` sending
//! a capture into one end at a given rate, a capturing tool on the other end, then SIGINT.
//! The flow files a tool writes live are compared with the same tool's direct read of the
//! capture, and its drops counted. Used by the `livebench` benchmark and the live test.
//!
//! Needs root (namespaces, raw sockets), `ip` (iproute2) and `tcpreplay`. The traffic never
//! leaves the two namespaces this module creates (and deletes when dropped).

use std::collections::BTreeMap;
use std::ffi::CString;
use std::fs;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// What the harness needs from the machine, or why it cannot run here.
pub fn missing_requirements() -> Option<String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Some("not root (network namespaces and capture need it)".into());
    }
    for tool in ["ip", "tcpreplay"] {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !found {
            return Some(format!("{tool} is not installed (./x deps installs it)"));
        }
    }
    None
}

fn run_ok(cmd: &mut Command) -> Result<(), String> {
    let o = cmd
        .output()
        .map_err(|e| format!("{:?}: {e}", cmd.get_program()))?;
    if o.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{:?} {:?}: {}",
            cmd.get_program(),
            cmd.get_args().collect::<Vec<_>>(),
            String::from_utf8_lossy(&o.stderr).trim()
        ))
    }
}

/// Two namespaces, `<tag>-<pid>-tx` and `<tag>-<pid>-rx`, joined by a veth pair `tx0` <->
/// `rx0`. The process id in the names lets two test runs on one machine each have their own.
pub struct Veth {
    pub tx_ns: String,
    pub rx_ns: String,
}

pub const TX_IF: &str = "tx0";
pub const RX_IF: &str = "rx0";

impl Veth {
    pub fn new(tag: &str) -> Result<Veth, String> {
        let pid = std::process::id();
        let v = Veth {
            tx_ns: format!("{tag}-{pid}-tx"),
            rx_ns: format!("{tag}-{pid}-rx"),
        };
        Veth::delete_left_over(tag);
        v.delete();
        run_ok(Command::new("ip").args(["netns", "add", &v.tx_ns]))?;
        run_ok(Command::new("ip").args(["netns", "add", &v.rx_ns]))?;
        run_ok(Command::new("ip").args([
            "link", "add", TX_IF, "netns", &v.tx_ns, "type", "veth", "peer", "name", RX_IF,
            "netns", &v.rx_ns,
        ]))?;
        for (ns, ifname) in [(&v.tx_ns, TX_IF), (&v.rx_ns, RX_IF)] {
            // No IPv6 autoconfiguration traffic of the kernel's own on the link.
            run_ok(Command::new("ip").args([
                "netns",
                "exec",
                ns,
                "sh",
                "-c",
                &format!(
                    "sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1 net.ipv6.conf.{ifname}.disable_ipv6=1"
                ),
            ]))?;
            // Jumbo frames, so no frame of a capture is refused for its size.
            run_ok(Command::new("ip").args(["-n", ns, "link", "set", ifname, "mtu", "9000"]))?;
            run_ok(Command::new("ip").args(["-n", ns, "link", "set", ifname, "up"]))?;
        }
        Ok(v)
    }

    /// Deletes the namespaces of runs that were killed: those of `tag` whose process is gone.
    fn delete_left_over(tag: &str) {
        let Ok(o) = Command::new("ip").args(["netns", "list"]).output() else {
            return;
        };
        let list = String::from_utf8_lossy(&o.stdout).into_owned();
        let prefix = format!("{tag}-");
        for ns in list.lines().filter_map(|l| l.split_whitespace().next()) {
            let Some(pid) = ns
                .strip_prefix(&prefix)
                .and_then(|r| r.split('-').next())
                .and_then(|p| p.parse::<u32>().ok())
            else {
                continue;
            };
            if !Path::new(&format!("/proc/{pid}")).exists() {
                let _ = Command::new("ip")
                    .args(["netns", "del", ns])
                    .stderr(Stdio::null())
                    .status();
            }
        }
    }

    fn delete(&self) {
        for ns in [&self.tx_ns, &self.rx_ns] {
            let _ = Command::new("ip")
                .args(["netns", "del", ns])
                .stderr(Stdio::null())
                .status();
        }
    }

    /// `cmd` run inside namespace `ns`.
    pub fn exec(ns: &str, program: &Path) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", ns]).arg(program);
        c
    }
}

impl Drop for Veth {
    fn drop(&mut self) {
        self.delete();
    }
}

/// Copies the first `n` packets of a classic pcap file; returns how many were copied.
pub fn truncate_pcap(src: &Path, dst: &Path, n: u64) -> io::Result<u64> {
    let mut r = io::BufReader::with_capacity(1 << 20, fs::File::open(src)?);
    let mut w = io::BufWriter::with_capacity(1 << 20, fs::File::create(dst)?);
    let mut head = [0u8; 24];
    r.read_exact(&mut head)?;
    let le = match u32::from_le_bytes(head[0..4].try_into().unwrap()) {
        0xa1b2c3d4 | 0xa1b23c4d => true,
        0xd4c3b2a1 | 0x4d3cb2a1 => false,
        m => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("not a classic pcap (magic {m:#x})"),
            ))
        }
    };
    w.write_all(&head)?;
    let mut copied = 0;
    let mut rec = [0u8; 16];
    let mut buf = Vec::new();
    while copied < n {
        match r.read_exact(&mut rec) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => break,
            Err(e) => return Err(e),
        }
        let caplen = rec[8..12].try_into().unwrap();
        let caplen = if le {
            u32::from_le_bytes(caplen)
        } else {
            u32::from_be_bytes(caplen)
        } as usize;
        if caplen > 1 << 20 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "record too long",
            ));
        }
        buf.resize(caplen, 0);
        r.read_exact(&mut buf)?;
        w.write_all(&rec)?;
        w.write_all(&buf)?;
        copied += 1;
    }
    w.flush()?;
    Ok(copied)
}

/// A capturing tool.
#[derive(Debug, Clone)]
pub enum Tool {
    /// This tcpflow, with extra arguments (e.g. `--memory 16M`); with `spool`, it captures
    /// into a spool (as a router does) that is exported to files after the run.
    Ours {
        bin: PathBuf,
        args: Vec<String>,
        spool: bool,
    },
    /// tcpflow 1.6.1.
    Tcpflow { bin: PathBuf },
    /// `tcpdump -w`.
    Tcpdump,
}

impl Tool {
    pub fn name(&self) -> String {
        match self {
            Tool::Ours { args, spool, .. } => {
                let mut n = "this tcpflow".to_string();
                for a in args {
                    n.push(' ');
                    n.push_str(a);
                }
                if *spool {
                    n.push_str(" --spool");
                }
                n
            }
            Tool::Tcpflow { .. } => "tcpflow 1.6.1".into(),
            Tool::Tcpdump => "tcpdump -w".into(),
        }
    }

    /// The tool's own direct read of `capture` into `out` (what a live run must equal);
    /// `None` for tcpdump, which writes packets, not flows.
    pub fn direct_read(&self, capture: &Path, out: &Path) -> Result<Option<()>, String> {
        let mut cmd = match self {
            Tool::Ours { bin, args, .. } => {
                let mut c = Command::new(bin);
                c.arg("-q").args(args);
                c
            }
            Tool::Tcpflow { bin } => Command::new(bin),
            Tool::Tcpdump => return Ok(None),
        };
        let _ = fs::remove_dir_all(out);
        fs::create_dir_all(out).map_err(|e| e.to_string())?;
        cmd.arg("-r").arg(capture).arg("-o").arg(out);
        run_ok(cmd.stdout(Stdio::null()))?;
        Ok(Some(()))
    }
}

/// One live trial's outcome.
#[derive(Debug, Clone, Default)]
pub struct Trial {
    /// Packets the tool says it lost (ours: kernel ring, interface and queue; tcpdump: the
    /// kernel's count); `None` when the tool does not say (tcpflow 1.6.1).
    pub drops: Option<u64>,
    /// Where ours lost them: kernel ring, interface, queue.
    pub drops_where: Option<(u64, u64, u64)>,
    /// Flow files equal to the direct read, and how many the direct read wrote.
    pub files_equal: usize,
    pub files_expected: usize,
    /// tcpdump: packets in its file.
    pub packets_written: Option<u64>,
    /// Peak RSS of the tool (KiB), and of its cgroup when run in one (bytes).
    pub rss_kib: u64,
    pub cgroup_peak: Option<u64>,
    pub oom_kills: Option<u64>,
    /// Exit status (128 + signal when killed).
    pub status: i32,
    /// Wall seconds of the replay.
    pub replay_secs: f64,
    /// The tool's stderr, for diagnosis.
    pub stderr: String,
}

impl Trial {
    /// No packet lost and every file equal.
    pub fn lossless(&self) -> bool {
        let files_ok = self.files_expected == 0 || self.files_equal == self.files_expected;
        self.drops.unwrap_or(0) == 0 && files_ok && self.status == 0
    }
}

/// A memory cgroup (v2, or v1's memory controller) limiting a process tree.
pub struct Cgroup {
    path: PathBuf,
    v2: bool,
}

impl Cgroup {
    /// A new cgroup of at most `limit` bytes beneath this process's own.
    pub fn new(name: &str, limit: u64) -> Result<Cgroup, String> {
        let own = fs::read_to_string("/proc/self/cgroup").map_err(|e| e.to_string())?;
        let mut found = None;
        for line in own.lines() {
            let mut f = line.splitn(3, ':');
            let (_, ctrl, path) = (f.next(), f.next().unwrap_or(""), f.next().unwrap_or(""));
            let path = path.trim_start_matches('/');
            if ctrl.split(',').any(|c| c == "memory") {
                found = Some((Path::new("/sys/fs/cgroup/memory").join(path), false));
                break;
            }
            if ctrl.is_empty() && Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
                found = Some((Path::new("/sys/fs/cgroup").join(path), true));
            }
        }
        let (base, v2) = found.ok_or("no memory cgroup controller found")?;
        let path = base.join(name);
        if path.exists() {
            let _ = fs::remove_dir(&path);
        }
        fs::create_dir(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let (file, swap) = if v2 {
            ("memory.max", "memory.swap.max")
        } else {
            ("memory.limit_in_bytes", "memory.memsw.limit_in_bytes")
        };
        fs::write(path.join(file), limit.to_string())
            .map_err(|e| format!("{}: {e}", path.join(file).display()))?;
        // No swapping out of the limit, where the kernel lets us say so.
        let _ = fs::write(
            path.join(swap),
            if v2 { "0".into() } else { limit.to_string() },
        );
        Ok(Cgroup { path, v2 })
    }

    fn procs(&self) -> PathBuf {
        self.path.join("cgroup.procs")
    }

    /// The most memory the cgroup held (bytes), where the kernel keeps it.
    pub fn peak(&self) -> Option<u64> {
        let f = if self.v2 {
            "memory.peak"
        } else {
            "memory.max_usage_in_bytes"
        };
        fs::read_to_string(self.path.join(f))
            .ok()
            .and_then(|s| s.trim().parse().ok())
    }

    /// Processes the kernel's OOM killer ended in the cgroup.
    pub fn oom_kills(&self) -> Option<u64> {
        let f = if self.v2 {
            "memory.events"
        } else {
            "memory.oom_control"
        };
        let s = fs::read_to_string(self.path.join(f)).ok()?;
        s.lines()
            .find_map(|l| l.strip_prefix("oom_kill "))
            .and_then(|v| v.trim().parse().ok())
    }
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        let _ = fs::remove_dir(&self.path);
    }
}

/// CPU time the process (all its threads) used so far, in clock ticks.
fn cpu_ticks(pid: u32) -> Option<u64> {
    let s = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces) in parentheses.
    let rest = &s[s.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

/// The process's peak resident set (KiB) so far, from /proc.
fn vm_hwm(pid: u32) -> Option<u64> {
    let s = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let l = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    l.split_whitespace().nth(1)?.parse().ok()
}

/// Waits for `pid` at most `limit`; its wait status and peak RSS (KiB). The peak is read
/// from /proc while it runs (`ru_maxrss` would also count the image it was spawned from).
fn wait_bounded(pid: u32, limit: Duration) -> Result<(i32, u64), String> {
    let t = Instant::now();
    let mut hwm = 0;
    loop {
        hwm = hwm.max(vm_hwm(pid).unwrap_or(0));
        let mut status = 0;
        // SAFETY: waiting for our own child with a valid pointer.
        let r = unsafe { libc::waitpid(pid as i32, &mut status, libc::WNOHANG) };
        if r == pid as i32 {
            let code = if libc::WIFEXITED(status) {
                libc::WEXITSTATUS(status)
            } else {
                128 + libc::WTERMSIG(status)
            };
            return Ok((code, hwm));
        }
        if r < 0 {
            return Err(format!("wait4: {}", io::Error::last_os_error()));
        }
        if t.elapsed() > limit {
            // SAFETY: signalling our own child.
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
            return Err(format!("still running after {limit:?}: killed"));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Flow files (all but reports and packet files) of a folder, by name.
fn flow_files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut m = BTreeMap::new();
    for e in fs::read_dir(dir).into_iter().flatten().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.ends_with(".xml")
            || name.ends_with(".html")
            || name.ends_with(".pcap")
            || !e.path().is_file()
        {
            continue;
        }
        if let Ok(b) = fs::read(e.path()) {
            m.insert(name, b);
        }
    }
    m
}

/// A spooling run's drops, from its summary line (`... (kernel ring R, interface I, queue
/// Q) ...`), as report attributes for [`report_counter`].
fn spool_drops(stderr: &str) -> String {
    let Some(at) = stderr.find("(kernel ring ") else {
        // No drop at all: the summary leaves the split out.
        return if stderr.contains("drops: 0 by capture") {
            " pcap_dropped='0' pcap_if_dropped='0' queue_dropped='0'".into()
        } else {
            String::new()
        };
    };
    let nums: Vec<u64> = stderr[at..]
        .split(|c: char| !c.is_ascii_digit())
        .filter(|w| !w.is_empty())
        .take(3)
        .filter_map(|w| w.parse().ok())
        .collect();
    match nums[..] {
        [a, b, c] => format!(" pcap_dropped='{a}' pcap_if_dropped='{b}' queue_dropped='{c}'"),
        _ => String::new(),
    }
}

/// `name='N'` in the report's host element.
fn report_counter(xml: &str, name: &str) -> Option<u64> {
    let at = xml.find(&format!(" {name}='"))? + name.len() + 3;
    xml[at..].split('\'').next()?.parse().ok()
}

/// What every trial of a run shares: the link, the packets replayed, a working folder (the
/// spool goes there) and where the tools write (a tmpfs folder measures the capture, a disk
/// folder the disk too).
pub struct Setup<'a> {
    pub veth: &'a Veth,
    pub capture: &'a Path,
    pub work: &'a Path,
    pub out_root: &'a Path,
}

/// Runs one trial: `tool` captures on the receiving end while `tcpreplay` sends the capture
/// at `mbps` (None: as fast as it can). `expected` is the tool's direct read (flow tools).
pub fn trial(
    setup: &Setup,
    tool: &Tool,
    mbps: Option<f64>,
    expected: Option<&Path>,
    cgroup: Option<&Cgroup>,
) -> Result<Trial, String> {
    let Setup {
        veth,
        capture,
        work,
        out_root,
    } = *setup;
    let out = out_root.join("live-out");
    let _ = fs::remove_dir_all(&out);
    fs::create_dir_all(&out).map_err(|e| e.to_string())?;
    let spool_path = work.join("live.spool");
    let _ = fs::remove_file(&spool_path);
    let mut cmd = match tool {
        Tool::Ours {
            bin,
            args,
            spool: false,
        } => {
            let mut c = Veth::exec(&veth.rx_ns, bin);
            c.args(args).args(["-i", RX_IF, "-o"]).arg(&out).arg("tcp");
            c
        }
        Tool::Ours {
            bin,
            args,
            spool: true,
        } => {
            let size = fs::metadata(capture).map_or(0, |m| m.len()) * 2;
            let mib = (size >> 20).max(16) + 1;
            let mut c = Veth::exec(&veth.rx_ns, bin);
            c.args(args)
                .args(["-i", RX_IF, "--spool"])
                .arg(&spool_path)
                .args(["--spool-size", &format!("{mib}M"), "tcp"]);
            c
        }
        Tool::Tcpflow { bin } => {
            let mut c = Veth::exec(&veth.rx_ns, bin);
            c.args(["-i", RX_IF, "-o"]).arg(&out).arg("tcp");
            c
        }
        Tool::Tcpdump => {
            let mut c = Veth::exec(&veth.rx_ns, Path::new("tcpdump"));
            c.args(["-n", "-s", "0", "-i", RX_IF, "-w"])
                .arg(out.join("capture.pcap"))
                .arg("tcp");
            c
        }
    };
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    if let Some(cg) = cgroup {
        let procs = CString::new(cg.procs().as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: between fork and exec the hook only makes system calls (open, write,
        // close) on memory prepared before the fork: async-signal-safe.
        unsafe {
            cmd.pre_exec(move || {
                let fd = libc::open(procs.as_ptr(), libc::O_WRONLY);
                if fd < 0 {
                    return Err(io::Error::last_os_error());
                }
                // "0" is the writing process itself.
                let r = libc::write(fd, b"0".as_ptr().cast(), 1);
                libc::close(fd);
                if r != 1 {
                    return Err(io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    let mut child = cmd.spawn().map_err(|e| format!("{}: {e}", tool.name()))?;
    let pid = child.id();
    // Stderr is read on a thread (a full pipe would block the tool); its lines tell when the
    // capture is listening.
    let (tx, rx) = mpsc::channel::<String>();
    let err = child.stderr.take().expect("piped");
    let reader = std::thread::spawn(move || {
        let mut all = String::new();
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            let _ = tx.send(line.clone());
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    let started = Instant::now();
    let mut listening = false;
    while started.elapsed() < Duration::from_secs(10) {
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(l) if l.contains("listening on") => {
                listening = true;
                break;
            }
            Ok(_) | Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    if !listening {
        // SAFETY: signalling our own child.
        unsafe { libc::kill(pid as i32, libc::SIGKILL) };
        let _ = wait_bounded(pid, Duration::from_secs(10));
        let e = reader.join().unwrap_or_default();
        return Err(format!("{} did not start listening: {e}", tool.name()));
    }
    // The capture is open; give the kernel's socket a moment to be bound to the ring.
    std::thread::sleep(Duration::from_millis(300));
    let mut replay = Veth::exec(&veth.tx_ns, Path::new("tcpreplay"));
    replay.args(["-q", "-i", TX_IF]);
    match mbps {
        Some(r) => replay.arg(format!("--mbps={r}")),
        None => replay.arg("--topspeed"),
    };
    replay.arg(capture);
    let t = Instant::now();
    let replayed = run_ok(replay.stdout(Stdio::null()));
    let replay_secs = t.elapsed().as_secs_f64();
    // The tool is stopped as a user would, once it has caught up: when its CPU time stops
    // growing (every tool gets the time it needs to process what it captured).
    std::thread::sleep(Duration::from_millis(300));
    let mut last = cpu_ticks(pid);
    let settle = Instant::now();
    while settle.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(500));
        let now = cpu_ticks(pid);
        if now == last {
            break;
        }
        last = now;
    }
    // SAFETY: signalling our own child.
    unsafe { libc::kill(pid as i32, libc::SIGINT) };
    let waited = wait_bounded(pid, Duration::from_secs(180));
    // The child is reaped (or killed and reaped): never wait for it again.
    std::mem::forget(child);
    let stderr = reader.join().unwrap_or_default();
    replayed?;
    let (status, rss_kib) = waited.map_err(|e| format!("{}: {e}\n{stderr}", tool.name()))?;
    let mut t = Trial {
        status,
        rss_kib,
        replay_secs,
        cgroup_peak: cgroup.and_then(Cgroup::peak),
        oom_kills: cgroup.and_then(Cgroup::oom_kills),
        ..Trial::default()
    };
    match tool {
        Tool::Ours { bin, spool, .. } => {
            let xml = if *spool {
                // The capture's counters are in its stderr summary; the export writes the
                // files to compare.
                let e = Command::new(bin)
                    .arg("-q")
                    .arg("--spool-export")
                    .arg(&spool_path)
                    .arg("-o")
                    .arg(&out)
                    .output()
                    .map_err(|e| e.to_string())?;
                if !e.status.success() {
                    return Err(format!(
                        "export: {}",
                        String::from_utf8_lossy(&e.stderr).trim()
                    ));
                }
                let _ = fs::remove_file(&spool_path);
                spool_drops(&stderr)
            } else {
                fs::read_to_string(out.join("report.xml")).unwrap_or_default()
            };
            let ring = report_counter(&xml, "pcap_dropped");
            let ifd = report_counter(&xml, "pcap_if_dropped");
            let queue = report_counter(&xml, "queue_dropped");
            if let (Some(a), Some(b), Some(c)) = (ring, ifd, queue) {
                t.drops = Some(a + b + c);
                t.drops_where = Some((a, b, c));
            }
        }
        Tool::Tcpflow { .. } => {}
        Tool::Tcpdump => {
            let num = |what: &str| {
                stderr
                    .lines()
                    .find(|l| l.contains(what))
                    .and_then(|l| l.split_whitespace().next())
                    .and_then(|n| n.parse::<u64>().ok())
            };
            t.drops = num("dropped by kernel");
            t.packets_written = num("packets captured");
        }
    }
    if let Some(exp) = expected {
        let want = flow_files(exp);
        let got = flow_files(&out);
        t.files_expected = want.len();
        t.files_equal = want.iter().filter(|(n, b)| got.get(*n) == Some(*b)).count();
    }
    t.stderr = stderr;
    let _ = fs::remove_dir_all(&out);
    Ok(t)
}
