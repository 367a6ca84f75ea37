//! The command's performance benchmark (run by hand, not in CI): generates the four workloads
//! of tests/BENCH.md with the project's capture generator, runs this `tcpflow`, tcpflow 1.6.1
//! and the floor (`tar -x` of the expected files) alternately, and prints wall time, CPU,
//! peak RSS and whether every output byte is right. `--callgrind` counts instructions per
//! packet instead. `--spool` times `tcpflow --spool` against copying the capture (read,
//! write, fdatasync) and checks the spool's export byte for byte. `bench --help` lists the
//! options; tests/BENCH.md has the results.

use std::ffi::OsString;
use std::fmt::Write as _;
use std::fs;
use std::io::{self, Read, Write as _};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use tcpflow_tests::workload::{self, Generated, Kind, Verdict, Workload};

const USAGE: &str = "\
usage: bench [OPTIONS]
  Generates the workloads (bulk, many, concurrent, messy), runs each tool on each, alternating
  the tools run by run, each run into a fresh folder after a sync, and prints per workload:
  median wall, MB/s of capture, user and system CPU, peak RSS, files written, whether every
  byte is right, and the ratios to tcpflow 1.6.1 and to the floor from the same rounds.

options:
  --scale F          size of the workloads (1 = the sizes of tests/BENCH.md; 0.02 is about
                     20 MB each). Default 1, or 0.02 with --callgrind
  --runs N           runs of each tool per workload (default 3)
  --out DIR          working folder: generated captures (cache/) and outputs (runs/)
                     (default: bench-tmp beside the project, on the same disk)
  --tmpfs            write the outputs to /dev/shm/tcpflow-bench (captures stay in --out)
  --only W[,W..]     only these workloads
  --tools T[,T..]    among ours,tcpflow,floor (default: all three; tcpflow only when installed)
  --keep             keep the generated captures and expected files, and reuse them when the
                     parameters match (otherwise they are generated and deleted every time)
  --callgrind        count instructions with valgrind --tool=callgrind for ours and
                     tcpflow 1.6.1 (instead of timing); the profiles stay in DIR/callgrind/
  --spool            instead: ours with --spool (one spool file, --spool-size 1.25 x the
                     capture rounded up to MiB) against copying the capture to one file
                     (1 MiB reads and writes, then fdatasync), alternated the same way; each
                     spool is exported (untimed) and compared with the expected files
  --ring             with --spool: a spool of a quarter of the capture (rounded up to MiB),
                     filled by an untimed run first and continued by every timed run, so
                     the ring laps about four times a run, as a tap's spool does; checked
                     by the drop counters: what the spool keeps plus what its ring dropped
                     is every stream byte the runs wrote, and no storage error or lost
                     record (a spool that lapped cannot be compared file by file)
  --ours PATH        the command to measure (default: tcpflow beside this binary, i.e.
                     the release build in the same target folder)
  --tcpflow PATH     tcpflow 1.6.1 (default /usr/bin/tcpflow)
  --generate-only    generate the workloads (with their sizes and the time taken) and stop
  -h, --help         this text
";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tool {
    Ours,
    Tcpflow,
    Floor,
}

impl Tool {
    fn key(self) -> &'static str {
        match self {
            Tool::Ours => "ours",
            Tool::Tcpflow => "tcpflow",
            Tool::Floor => "floor",
        }
    }
    fn label(self) -> &'static str {
        match self {
            Tool::Ours => "ours",
            Tool::Tcpflow => "tcpflow 1.6.1",
            Tool::Floor => "floor (tar -x)",
        }
    }
}

#[derive(Debug)]
struct Opts {
    scale: Option<f64>,
    runs: usize,
    out: PathBuf,
    tmpfs: bool,
    only: Vec<Kind>,
    tools: Option<Vec<Tool>>,
    keep: bool,
    callgrind: bool,
    ours: PathBuf,
    tcpflow: PathBuf,
    generate_only: bool,
    spool: bool,
    ring: bool,
}

fn parse_args() -> Result<Option<Opts>, String> {
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    let mut o = Opts {
        scale: None,
        runs: 3,
        out: PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../bench-tmp"),
        tmpfs: false,
        only: Kind::ALL.to_vec(),
        tools: None,
        keep: false,
        callgrind: false,
        ours: exe.with_file_name("tcpflow"),
        tcpflow: PathBuf::from("/usr/bin/tcpflow"),
        generate_only: false,
        spool: false,
        ring: false,
    };
    let mut args = std::env::args_os().skip(1);
    let value = |name: &str, args: &mut dyn Iterator<Item = OsString>| {
        args.next()
            .ok_or_else(|| format!("{name} needs a value"))
            .map(|v| v.to_string_lossy().into_owned())
    };
    while let Some(a) = args.next() {
        match a.to_string_lossy().as_ref() {
            "-h" | "--help" => {
                print!("{USAGE}");
                return Ok(None);
            }
            "--scale" => {
                let v = value("--scale", &mut args)?;
                let f: f64 = v.parse().map_err(|_| format!("bad --scale {v}"))?;
                if !(f > 0.0 && f <= 16.0) {
                    return Err(format!("--scale {v}: must be in (0, 16]"));
                }
                o.scale = Some(f);
            }
            "--runs" => {
                let v = value("--runs", &mut args)?;
                o.runs = v.parse().map_err(|_| format!("bad --runs {v}"))?;
                if o.runs == 0 {
                    return Err("--runs must be at least 1".into());
                }
            }
            "--out" => o.out = PathBuf::from(value("--out", &mut args)?),
            "--tmpfs" => o.tmpfs = true,
            "--only" => {
                let v = value("--only", &mut args)?;
                o.only = v
                    .split(',')
                    .map(|s| Kind::parse(s.trim()).ok_or_else(|| format!("no workload {s}")))
                    .collect::<Result<_, _>>()?;
            }
            "--tools" => {
                let v = value("--tools", &mut args)?;
                let t = v
                    .split(',')
                    .map(|s| match s.trim() {
                        "ours" => Ok(Tool::Ours),
                        "tcpflow" => Ok(Tool::Tcpflow),
                        "floor" => Ok(Tool::Floor),
                        x => Err(format!("no tool {x} (ours, tcpflow, floor)")),
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                o.tools = Some(t);
            }
            "--keep" => o.keep = true,
            "--callgrind" => o.callgrind = true,
            "--ours" => o.ours = PathBuf::from(value("--ours", &mut args)?),
            "--tcpflow" => o.tcpflow = PathBuf::from(value("--tcpflow", &mut args)?),
            "--generate-only" => o.generate_only = true,
            "--spool" => o.spool = true,
            "--ring" => o.ring = true,
            x => return Err(format!("unknown argument {x}\n{USAGE}")),
        }
    }
    if o.ring && !o.spool {
        return Err("--ring goes with --spool".into());
    }
    Ok(Some(o))
}

/// The C library calls std does not offer: wait4 (the child's rusage, used by the measuring
/// intermediate) and sync.
mod sys {
    use std::os::raw::{c_int, c_long};

    #[repr(C)]
    #[derive(Default)]
    pub struct Timeval {
        pub tv_sec: c_long,
        pub tv_usec: c_long,
    }

    #[repr(C)]
    #[derive(Default)]
    pub struct Rusage {
        pub ru_utime: Timeval,
        pub ru_stime: Timeval,
        /// Peak resident set, KiB.
        pub ru_maxrss: c_long,
        pub rest: [c_long; 13],
    }

    extern "C" {
        fn wait4(pid: c_int, status: *mut c_int, options: c_int, rusage: *mut Rusage) -> c_int;
        fn sync();
    }

    /// Waits for child `pid`: its raw wait status and resource usage.
    pub fn wait_child(pid: u32) -> std::io::Result<(c_int, Rusage)> {
        let mut ru = Rusage::default();
        let mut status: c_int = 0;
        loop {
            // SAFETY: both pointers are valid for the call; the child is ours (from spawn)
            // and not waited for by anyone else.
            let r = unsafe { wait4(pid as c_int, &mut status, 0, &mut ru) };
            if r >= 0 {
                return Ok((status, ru));
            }
            let e = std::io::Error::last_os_error();
            if e.kind() != std::io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
    }

    pub fn sync_all() {
        // SAFETY: sync takes no arguments and cannot fail.
        unsafe { sync() }
    }
}

/// One measured run.
#[derive(Debug, Clone)]
struct Sample {
    wall: f64,
    user: f64,
    sys: f64,
    rss_kib: u64,
    /// Exit code, or 128 + signal.
    status: i32,
    verdict: Verdict,
}

/// What the measuring intermediate (`bench --measure-child`) found for one run of a command.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Measured {
    /// Seconds from spawn to reap.
    wall: f64,
    user: f64,
    sys: f64,
    /// Peak resident set of the command, KiB (`ru_maxrss`).
    rss_kib: u64,
    /// The raw wait status.
    wait_status: i32,
}

impl Measured {
    /// Exit code, or 128 + signal.
    fn code(&self) -> i32 {
        let s = self.wait_status;
        if s & 0x7f == 0 {
            (s >> 8) & 0xff
        } else {
            128 + (s & 0x7f)
        }
    }

    /// The result file's one line: `wall user sys maxrss_kib wait_status`.
    fn to_line(self) -> String {
        format!(
            "{} {} {} {} {}\n",
            self.wall, self.user, self.sys, self.rss_kib, self.wait_status
        )
    }

    fn parse(line: &str) -> Option<Measured> {
        let mut f = line.split_whitespace();
        let m = Measured {
            wall: f.next()?.parse().ok()?,
            user: f.next()?.parse().ok()?,
            sys: f.next()?.parse().ok()?,
            rss_kib: f.next()?.parse().ok()?,
            wait_status: f.next()?.parse().ok()?,
        };
        f.next().is_none().then_some(m)
    }
}

/// Hidden mode `bench --measure-child RESULT -- PROGRAM ARGS..`: runs PROGRAM (inheriting
/// stdin, stdout and stderr), reaps it with `wait4` and writes its [`Measured`] line to
/// RESULT (or `error: ..` when it could not be run).
///
/// Why an intermediate: on Linux, `exec` folds the high-water RSS of the image it replaces into
/// the new program's `ru_maxrss`, and `Command` spawns with vfork semantics, so that image is
/// the parent's own. Spawned straight from bench (tens of MB once the workloads are
/// generated), every tool would show at least bench's RSS. This process is small (about
/// 2 MB), so the tool's figure is its own (as with `/usr/bin/time`); the intermediate's own
/// rusage, which carries bench's image, is ignored.
fn measure_child(result: &Path, program: &OsString, args: &[OsString]) -> io::Result<()> {
    let run = || -> io::Result<Measured> {
        let mut cmd = Command::new(program);
        cmd.args(args);
        // A hook (which does nothing) makes std spawn with a real fork() instead of
        // posix_spawn's vfork: the child then starts from a copy of this process's anonymous
        // pages only (some hundred KiB), not from its whole high-water RSS, binary and
        // libraries included (about 2 MB), and small tools are measured as `/usr/bin/time`
        // measures them.
        // SAFETY: the hook calls nothing, so it is async-signal-safe.
        unsafe {
            cmd.pre_exec(|| Ok(()));
        }
        let t = Instant::now();
        let child = cmd.spawn()?;
        let (status, ru) = sys::wait_child(child.id())?;
        let wall = t.elapsed().as_secs_f64();
        // The child is reaped: `child` must not be waited for again (dropping it does not
        // wait).
        drop(child);
        let secs = |tv: &sys::Timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
        Ok(Measured {
            wall,
            user: secs(&ru.ru_utime),
            sys: secs(&ru.ru_stime),
            rss_kib: ru.ru_maxrss as u64,
            wait_status: status,
        })
    };
    let line = match run() {
        Ok(m) => m.to_line(),
        Err(e) => format!("error: {}: {e}\n", Path::new(program).display()),
    };
    fs::write(result, line)
}

/// Runs `cmd` (stdout and stderr to `log`) and measures it: wall, user and system seconds,
/// peak RSS (KiB), exit code (or 128 + signal). `cmd` is run and measured by a small
/// intermediate process, `bench --measure-child` (see [`measure_child`]), which writes its
/// figures to `LOG.rusage` (read and removed here).
fn measure(cmd: &mut Command, log: &Path) -> io::Result<(f64, f64, f64, u64, i32)> {
    let lf = fs::File::create(log)?;
    let mut result = log.as_os_str().to_owned();
    result.push(".rusage");
    let result = PathBuf::from(result);
    let _ = fs::remove_file(&result);
    let mut m = Command::new(std::env::current_exe()?);
    m.arg("--measure-child")
        .arg(&result)
        .arg("--")
        .arg(cmd.get_program())
        .args(cmd.get_args());
    if let Some(d) = cmd.get_current_dir() {
        m.current_dir(d);
    }
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => m.env(k, v),
            None => m.env_remove(k),
        };
    }
    m.stdin(Stdio::null()).stdout(lf.try_clone()?).stderr(lf);
    let st = m.status()?;
    let text = fs::read_to_string(&result).unwrap_or_default();
    let _ = fs::remove_file(&result);
    if let Some(e) = text.strip_prefix("error: ") {
        return Err(io::Error::other(e.trim_end().to_string()));
    }
    let r = Measured::parse(&text).ok_or_else(|| {
        io::Error::other(format!(
            "bench --measure-child for {} gave no result ({st}; see {})",
            Path::new(cmd.get_program()).display(),
            log.display()
        ))
    })?;
    Ok((r.wall, r.user, r.sys, r.rss_kib, r.code()))
}

fn tool_command(o: &Opts, tool: Tool, g: &Generated, dir: &Path) -> Command {
    match tool {
        Tool::Ours | Tool::Tcpflow => {
            let mut c = Command::new(if tool == Tool::Ours {
                &o.ours
            } else {
                &o.tcpflow
            });
            c.arg("-r").arg(&g.capture).arg("-o").arg(dir);
            c
        }
        Tool::Floor => {
            let mut c = Command::new("tar");
            c.arg("-xf").arg(&g.tar).arg("-C").arg(dir);
            c
        }
    }
}

/// Reads a file through (to have it in the page cache); seconds taken.
fn warm(p: &Path) -> io::Result<f64> {
    let t = Instant::now();
    let mut f = fs::File::open(p)?;
    let mut b = vec![0u8; 1 << 20];
    while f.read(&mut b)? > 0 {}
    Ok(t.elapsed().as_secs_f64())
}

/// Truncates every file under `dir` to 0 bytes (outputs are deleted at the end only: creating
/// files just after deleting a large tree is slow on some file systems).
fn truncate_all(dir: &Path) -> io::Result<()> {
    for ent in fs::read_dir(dir)? {
        let ent = ent?;
        let ft = ent.file_type()?;
        if ft.is_dir() {
            truncate_all(&ent.path())?;
        } else if ft.is_file() {
            fs::OpenOptions::new()
                .write(true)
                .open(ent.path())?
                .set_len(0)?;
        }
    }
    Ok(())
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    let n = s.len();
    if n == 0 {
        f64::NAN
    } else if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    }
}

fn sh(cmd: &str, args: &[&str]) -> String {
    Command::new(cmd)
        .args(args)
        .stderr(Stdio::null())
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

fn loadavg() -> String {
    fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

/// The mount holding `p`: "device type options".
fn mount_of(p: &Path) -> String {
    let p = p.canonicalize().unwrap_or_else(|_| p.to_path_buf());
    let mounts = fs::read_to_string("/proc/mounts").unwrap_or_default();
    let mut best: Option<(usize, String)> = None;
    for line in mounts.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 4 {
            continue;
        }
        let longer = match &best {
            Some((l, _)) => f[1].len() > *l,
            None => true,
        };
        if p.starts_with(f[1]) && longer {
            best = Some((
                f[1].len(),
                format!("{} on {} ({}, {})", f[0], f[1], f[2], f[3]),
            ));
        }
    }
    best.map(|b| b.1).unwrap_or_else(|| "?".into())
}

fn version_of(bin: &Path) -> String {
    let out = Command::new(bin).arg("-V").stdin(Stdio::null()).output();
    match out {
        Ok(o) => {
            let s = String::from_utf8_lossy(&o.stdout).to_string()
                + &String::from_utf8_lossy(&o.stderr);
            s.lines().next().unwrap_or("").trim().to_string()
        }
        Err(_) => String::new(),
    }
}

fn mib(b: u64) -> f64 {
    b as f64 / (1024.0 * 1024.0)
}

fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn describe(g: &Generated, w: &Workload) -> String {
    let c = &g.capture_info;
    let e = &g.expected_info;
    let how = if g.reused {
        "reused from the cache".to_string()
    } else {
        format!(
            "generated in {:.1} s ({:.1} s/GiB of capture + expected)",
            g.gen_secs,
            g.gen_secs / ((c.bytes + e.bytes) as f64 / (1u64 << 30) as f64)
        )
    };
    format!(
        "capture {:.1} MiB, {} packets, {} connections (at most {} open at once); expected {} files, {:.1} MiB; {how}; {}",
        mib(c.bytes),
        thousands(c.packets),
        thousands(c.conns),
        thousands(c.max_open),
        thousands(e.files),
        mib(e.bytes),
        w.key()
    )
}

fn verdict_cell(samples: &[Sample]) -> String {
    let ok = samples.iter().filter(|s| s.verdict.ok()).count();
    let status_bad = samples.iter().filter(|s| s.status != 0).count();
    let mut s = if ok == samples.len() {
        format!("yes ({ok}/{})", samples.len())
    } else {
        let v = &samples
            .iter()
            .find(|s| !s.verdict.ok())
            .expect("one not ok")
            .verdict;
        format!(
            "NO: {} of {} files right, {} different, {} missing, {} extra",
            thousands(v.right),
            thousands(v.expected_files),
            thousands(v.different),
            thousands(v.missing),
            thousands(v.extra)
        )
    };
    if status_bad > 0 {
        let _ = write!(
            s,
            "; exit status {} in {status_bad} runs",
            samples
                .iter()
                .find(|s| s.status != 0)
                .map_or(0, |s| s.status)
        );
    }
    s
}

/// Results of one workload, for the summary.
struct WorkloadResult {
    kind: Kind,
    capture_bytes: u64,
    rows: Vec<(Tool, Vec<Sample>)>,
}

fn run_workload(
    o: &Opts,
    w: &Workload,
    g: &Generated,
    tools: &[Tool],
    runs_dir: &Path,
    report: &mut String,
) -> io::Result<WorkloadResult> {
    let cap_bytes = g.capture_info.bytes;
    let load_before = loadavg();
    let warm_s = warm(&g.capture)? + warm(&g.tar)?;
    let wdir = runs_dir.join(w.key());
    fs::create_dir_all(&wdir)?;
    let mut samples: Vec<Vec<Sample>> = vec![Vec::new(); tools.len()];
    let mut per_round = String::new();
    for r in 0..o.runs {
        let _ = write!(per_round, "{}{}:", if r > 0 { " |" } else { "" }, r + 1);
        for k in 0..tools.len() {
            // Alternate: each round starts with the next tool.
            let ti = (k + r) % tools.len();
            let tool = tools[ti];
            let dir = wdir.join(format!("{}-{}", r + 1, tool.key()));
            fs::create_dir(&dir)?;
            let log = wdir.join(format!("{}-{}.log", r + 1, tool.key()));
            sys::sync_all();
            let (wall, user, sys, rss, status) =
                measure(&mut tool_command(o, tool, g, &dir), &log)?;
            let verdict = workload::verify(&g.tar, &dir)?;
            if status != 0 || !verdict.ok() {
                let tail: String = fs::read_to_string(&log)
                    .unwrap_or_default()
                    .lines()
                    .rev()
                    .take(5)
                    .collect::<Vec<_>>()
                    .join(" / ");
                eprintln!(
                    "  {} run {}: exit status {status}; {} of {} files right; {}{}",
                    tool.label(),
                    r + 1,
                    verdict.right,
                    verdict.expected_files,
                    verdict.problems.join("; "),
                    if tail.is_empty() {
                        String::new()
                    } else {
                        format!("; log: {tail}")
                    }
                );
            }
            if o.tmpfs {
                // tmpfs has a fixed number of inodes (about 3 million on a 24 GiB machine):
                // 400,000 files kept per run of concurrent used them up in the third round.
                // Deleting costs nothing later there (the ext4 trap is on disk).
                fs::remove_dir_all(&dir)?;
            } else {
                truncate_all(&dir)?;
            }
            let _ = write!(per_round, " {} {:.3}", tool.key(), wall);
            eprintln!(
                "  {} run {}: {:.3} s, {} files",
                tool.label(),
                r + 1,
                wall,
                verdict.files
            );
            samples[ti].push(Sample {
                wall,
                user,
                sys,
                rss_kib: rss,
                status,
                verdict,
            });
        }
    }
    let load_after = loadavg();
    let by_tool = |t: Tool| tools.iter().position(|&x| x == t).map(|i| &samples[i]);
    let ratio = |s: &[Sample], base: Option<&Vec<Sample>>| -> String {
        match base {
            Some(b) => {
                let r: Vec<f64> = s.iter().zip(b).map(|(x, y)| x.wall / y.wall).collect();
                format!("{:.2}", median(&r))
            }
            None => "-".into(),
        }
    };
    let _ = writeln!(report, "\n### {} ({})\n", w.kind.name(), w.kind.describe());
    let _ = writeln!(report, "{}  ", describe(g, w));
    let _ = writeln!(
        report,
        "load average before {load_before}, after {load_after}; page cache warmed in {warm_s:.2} s\n"
    );
    let _ = writeln!(
        report,
        "| tool | wall s (median) | min-max | MB/s of capture | user s | sys s | peak RSS MB | files | bytes right | vs 1.6.1 | vs floor |"
    );
    let _ = writeln!(report, "|---|---|---|---|---|---|---|---|---|---|---|");
    for (i, &t) in tools.iter().enumerate() {
        let s = &samples[i];
        let walls: Vec<f64> = s.iter().map(|x| x.wall).collect();
        let wall = median(&walls);
        let min = walls.iter().cloned().fold(f64::INFINITY, f64::min);
        let max = walls.iter().cloned().fold(0.0, f64::max);
        let user = median(&s.iter().map(|x| x.user).collect::<Vec<_>>());
        let sysc = median(&s.iter().map(|x| x.sys).collect::<Vec<_>>());
        let rss = s.iter().map(|x| x.rss_kib).max().unwrap_or(0);
        let files = s.last().map_or(0, |x| x.verdict.files);
        let _ = writeln!(
            report,
            "| {} | {:.3} | {:.3}-{:.3} | {:.0} | {:.2} | {:.2} | {:.1} | {} | {} | {} | {} |",
            t.label(),
            wall,
            min,
            max,
            cap_bytes as f64 / 1e6 / wall,
            user,
            sysc,
            rss as f64 * 1024.0 / 1e6,
            thousands(files),
            verdict_cell(s),
            ratio(s, by_tool(Tool::Tcpflow)),
            ratio(s, by_tool(Tool::Floor)),
        );
    }
    let _ = writeln!(report, "\nruns (wall s, in the order run): {per_round}");
    let first_bad = samples
        .iter()
        .flatten()
        .find(|s| !s.verdict.problems.is_empty());
    if let Some(s) = first_bad {
        let _ = writeln!(
            report,
            "\nfirst problems: {}",
            s.verdict.problems.join("; ")
        );
    }
    Ok(WorkloadResult {
        kind: w.kind,
        capture_bytes: cap_bytes,
        rows: tools.iter().copied().zip(samples).collect(),
    })
}

fn summary(results: &[WorkloadResult]) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "\n### Summary (medians; ratios are medians of the per-round ratios)\n"
    );
    let _ = writeln!(
        s,
        "| workload | capture MiB | ours s | tcpflow 1.6.1 s | floor s | ours / 1.6.1 | ours / floor | 1.6.1 / floor | ours user s | 1.6.1 user s | user ours / 1.6.1 | ours RSS MB | 1.6.1 RSS MB | ours right | 1.6.1 right |"
    );
    let _ = writeln!(
        s,
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
    );
    for r in results {
        let get = |t: Tool| r.rows.iter().find(|x| x.0 == t).map(|x| &x.1);
        let wall = |t: Tool| {
            get(t).map_or("-".into(), |v| {
                format!(
                    "{:.3}",
                    median(&v.iter().map(|x| x.wall).collect::<Vec<_>>())
                )
            })
        };
        let ratio = |a: Tool, b: Tool| match (get(a), get(b)) {
            (Some(x), Some(y)) => format!(
                "{:.2}",
                median(
                    &x.iter()
                        .zip(y)
                        .map(|(p, q)| p.wall / q.wall)
                        .collect::<Vec<_>>()
                )
            ),
            _ => "-".into(),
        };
        // User CPU (every thread, from the command's rusage): the work the command does,
        // whatever else the machine was doing.
        let user = |t: Tool| get(t).map(|v| median(&v.iter().map(|x| x.user).collect::<Vec<_>>()));
        let show = |x: Option<f64>| x.map_or("-".into(), |x| format!("{x:.3}"));
        let user_ratio = match (user(Tool::Ours), user(Tool::Tcpflow)) {
            (Some(a), Some(b)) if b > 0.0 => format!("{:.2}", a / b),
            _ => "-".into(),
        };
        let rss = |t: Tool| {
            get(t).map_or("-".into(), |v| {
                format!(
                    "{:.1}",
                    v.iter().map(|x| x.rss_kib).max().unwrap_or(0) as f64 * 1024.0 / 1e6
                )
            })
        };
        let right = |t: Tool| {
            get(t).map_or("-".into(), |v| {
                if v.iter().all(|x| x.verdict.ok() && x.status == 0) {
                    "yes".to_string()
                } else {
                    "NO".to_string()
                }
            })
        };
        let _ = writeln!(
            s,
            "| {} | {:.1} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            r.kind.name(),
            mib(r.capture_bytes),
            wall(Tool::Ours),
            wall(Tool::Tcpflow),
            wall(Tool::Floor),
            ratio(Tool::Ours, Tool::Tcpflow),
            ratio(Tool::Ours, Tool::Floor),
            ratio(Tool::Tcpflow, Tool::Floor),
            show(user(Tool::Ours)),
            show(user(Tool::Tcpflow)),
            user_ratio,
            rss(Tool::Ours),
            rss(Tool::Tcpflow),
            right(Tool::Ours),
            right(Tool::Tcpflow),
        );
    }
    s
}

/// `--spool`: the two commands of a round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    /// `tcpflow -r CAPTURE --spool DIR/spool.bin --spool-size SIZE`.
    Ours,
    /// `bench --copy-file CAPTURE DIR/copy.pcap`: 1 MiB reads and writes, then fdatasync.
    Copy,
}

impl Side {
    const BOTH: [Side; 2] = [Side::Ours, Side::Copy];
    fn key(self) -> &'static str {
        match self {
            Side::Ours => "ours",
            Side::Copy => "copy",
        }
    }
    fn label(self) -> &'static str {
        match self {
            Side::Ours => "ours --spool",
            Side::Copy => "copy + fdatasync",
        }
    }
}

/// Hidden mode `bench --copy-file SRC DST`: the `--spool` baseline, run as a child so that
/// it is timed and measured (rusage) exactly as ours is. Reads and writes 1 MiB at a time
/// into a new file, then `fdatasync` (the spool is made durable the same way at its end).
fn copy_file(src: &Path, dst: &Path) -> io::Result<u64> {
    let mut from = fs::File::open(src)?;
    let mut to = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(dst)?;
    let mut buf = vec![0u8; 1 << 20];
    let mut n = 0u64;
    loop {
        let k = match from.read(&mut buf) {
            Ok(0) => break,
            Ok(k) => k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        to.write_all(&buf[..k])?;
        n += k as u64;
    }
    to.sync_data()?;
    Ok(n)
}

/// Whether two files hold the same bytes (streamed 1 MiB at a time).
fn same_bytes(a: &Path, b: &Path) -> io::Result<bool> {
    let (fa, fb) = (fs::File::open(a)?, fs::File::open(b)?);
    if fa.metadata()?.len() != fb.metadata()?.len() {
        return Ok(false);
    }
    let mut ra = io::BufReader::with_capacity(1 << 20, fa);
    let mut rb = io::BufReader::with_capacity(1 << 20, fb);
    let mut ba = vec![0u8; 1 << 20];
    let mut bb = vec![0u8; 1 << 20];
    loop {
        let n = ra.read(&mut ba)?;
        if n == 0 {
            return Ok(true);
        }
        rb.read_exact(&mut bb[..n])?;
        if ba[..n] != bb[..n] {
            return Ok(false);
        }
    }
}

/// What ours' summary line on stderr says about the spool:
/// `tcpflow: spool PATH: N records, N stream bytes, N bytes programmed (..), N segments
/// erased, N syncs; dropped by the ring: N flows, N bytes (N segments); N storage errors,
/// N records lost`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct SpoolFigures {
    records: u64,
    stream_bytes: u64,
    programmed: u64,
    syncs: u64,
    dropped_flows: u64,
    dropped_bytes: u64,
    dropped_segments: u64,
    storage_errors: u64,
    lost_records: u64,
}

impl SpoolFigures {
    fn parse(log: &str, spool: &Path) -> Option<SpoolFigures> {
        let head = format!("tcpflow: spool {}: ", spool.display());
        let line = log.lines().find_map(|l| l.strip_prefix(head.as_str()))?;
        // The number just before the first `label`.
        let before = |label: &str| -> Option<u64> {
            let (pre, _) = line.split_once(label)?;
            pre.rsplit([' ', '(']).next()?.parse().ok()
        };
        Some(SpoolFigures {
            records: before(" records,")?,
            stream_bytes: before(" stream bytes")?,
            programmed: before(" bytes programmed")?,
            syncs: before(" syncs;")?,
            dropped_flows: before(" flows,")?,
            dropped_bytes: before(" bytes (")?,
            dropped_segments: before(" segments)")?,
            storage_errors: before(" storage errors")?,
            lost_records: before(" records lost")?,
        })
    }

    /// Nothing dropped by the ring, and no storage error or lost record.
    fn clean(&self) -> bool {
        self.dropped_flows
            + self.dropped_bytes
            + self.dropped_segments
            + self.storage_errors
            + self.lost_records
            == 0
    }
}

/// One `--spool` run.
#[derive(Debug, Clone)]
struct SpoolSample {
    wall: f64,
    user: f64,
    sys: f64,
    rss_kib: u64,
    /// Exit code, or 128 + signal.
    status: i32,
    /// Ours: from its summary line (None: the line was not found).
    figures: Option<SpoolFigures>,
    /// Ours: the export compared with the expected files (None: not checked).
    verdict: Option<Verdict>,
    /// Ours: exit status of `--spool-export`.
    export_status: i32,
    /// Copy: the copy holds the capture's bytes.
    copy_right: bool,
    /// Ours with `--ring`: the drop counters were checked ([`ring_check`]), and what that
    /// found wrong (None: right).
    ring_checked: bool,
    ring_problem: Option<String>,
}

impl SpoolSample {
    /// Everything checked was right (and the command succeeded).
    fn right(&self, side: Side) -> bool {
        self.status == 0
            && match side {
                Side::Ours if self.ring_checked => {
                    // A ring that laps drops by design: errors and losses count, and the check.
                    self.ring_problem.is_none()
                        && self
                            .figures
                            .as_ref()
                            .is_some_and(|f| f.storage_errors + f.lost_records == 0)
                }
                Side::Ours => {
                    self.figures.as_ref().is_some_and(SpoolFigures::clean)
                        && self.export_status == 0
                        && self.verdict.as_ref().map_or(true, Verdict::ok)
                }
                Side::Copy => self.copy_right,
            }
    }
}

/// `--spool` results of one workload, for the summary.
struct SpoolResult {
    kind: Kind,
    capture_bytes: u64,
    /// Indexed like [`Side::BOTH`].
    samples: [Vec<SpoolSample>; 2],
}

impl SpoolResult {
    fn median_of(&self, side: Side, f: impl Fn(&SpoolSample) -> f64) -> f64 {
        median(
            &self.samples[side as usize]
                .iter()
                .map(f)
                .collect::<Vec<_>>(),
        )
    }
    /// Median of the per-round ratios of ours' wall to the copy's.
    fn ratio(&self) -> f64 {
        let [ours, copy] = &self.samples;
        median(
            &ours
                .iter()
                .zip(copy)
                .map(|(a, b)| a.wall / b.wall)
                .collect::<Vec<_>>(),
        )
    }
    fn peak_rss_mb(&self, side: Side) -> f64 {
        self.samples[side as usize]
            .iter()
            .map(|x| x.rss_kib)
            .max()
            .unwrap_or(0) as f64
            * 1024.0
            / 1e6
    }
    /// Ours' figures from its last run (they are the same every run).
    fn figures(&self) -> Option<&SpoolFigures> {
        self.samples[0]
            .iter()
            .rev()
            .find_map(|s| s.figures.as_ref())
    }
    fn right_cell(&self, side: Side) -> String {
        let v = &self.samples[side as usize];
        let ok = v.iter().filter(|s| s.right(side)).count();
        let checked = v.iter().filter(|s| s.verdict.is_some()).count();
        let mut c = if ok == v.len() {
            "yes".to_string()
        } else {
            "NO".to_string()
        };
        let rings = v.iter().filter(|s| s.ring_checked).count();
        if rings > 0 {
            let _ = write!(c, " (kept + dropped = written checked {rings} times)");
        } else if side == Side::Ours && checked < v.len() {
            let _ = write!(c, " ({checked} of {} exported)", v.len());
        }
        c
    }
}

/// The `--spool-size` for a capture: 1.25 x its size, rounded up to MiB (the spool holds the
/// stream bytes plus its records, less than the capture: nothing is dropped by the ring).
fn spool_size_mib(capture_bytes: u64) -> u64 {
    (capture_bytes + capture_bytes / 4).div_ceil(1 << 20).max(1)
}

/// `--ring`: a quarter of the capture, rounded up to MiB (at least 4 MiB).
fn ring_size_mib(capture_bytes: u64) -> u64 {
    (capture_bytes / 4).div_ceil(1 << 20).max(4)
}

/// `tcpflow -r CAPTURE --spool TARGET --spool-size SIZE`.
fn spool_command(o: &Opts, capture: &Path, target: &Path, size_mib: u64) -> Command {
    let mut c = Command::new(&o.ours);
    c.arg("-r")
        .arg(capture)
        .arg("--spool")
        .arg(target)
        .arg("--spool-size")
        .arg(format!("{size_mib}M"));
    c
}

/// `--ring`'s check: `--spool-summary` of the ring says it keeps `data bytes` and dropped
/// `dropped bytes` over its life; together they must be every stream byte the runs wrote.
fn ring_check(o: &Opts, ring: &Path, written: u64, log: &Path) -> io::Result<Option<String>> {
    let out = Command::new(&o.ours)
        .arg("--spool-summary")
        .arg(ring)
        .output()?;
    fs::write(log, &out.stdout)?;
    let text = String::from_utf8_lossy(&out.stdout);
    let field = |key: &str| -> Option<u64> {
        text.lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix(": "))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
    };
    Ok(match (out.status.code(), field("data bytes"), field("dropped bytes")) {
        (Some(0), Some(kept), Some(dropped)) if kept + dropped == written => None,
        (Some(0), Some(kept), Some(dropped)) => Some(format!(
            "the ring keeps {kept} and dropped {dropped} bytes: {} in all, not the {written} written",
            kept + dropped
        )),
        (status, _, _) => Some(format!(
            "--spool-summary exit status {status:?}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )),
    })
}

fn run_spool_workload(
    o: &Opts,
    w: &Workload,
    g: &Generated,
    runs_dir: &Path,
    report: &mut String,
) -> io::Result<SpoolResult> {
    let cap_bytes = g.capture_info.bytes;
    let size_mib = if o.ring {
        ring_size_mib(cap_bytes)
    } else {
        spool_size_mib(cap_bytes)
    };
    let me = std::env::current_exe()?;
    let load_before = loadavg();
    let warm_s = warm(&g.capture)? + warm(&g.tar)?;
    let wdir = runs_dir.join(format!("{}-spool", w.key()));
    fs::create_dir_all(&wdir)?;
    // `--ring`: one spool for every run, filled first (untimed); the stream bytes every run
    // wrote, for the check.
    let ring = wdir.join("ring.bin");
    let mut ring_written = 0u64;
    if o.ring {
        let log = wdir.join("ring-fill.log");
        let (_, _, _, _, status) =
            measure(&mut spool_command(o, &g.capture, &ring, size_mib), &log)?;
        let text = fs::read_to_string(&log).unwrap_or_default();
        match SpoolFigures::parse(&text, &ring) {
            Some(f) if status == 0 => ring_written += f.stream_bytes,
            _ => {
                return Err(io::Error::other(format!(
                    "filling the ring {}: exit status {status}; see {}",
                    ring.display(),
                    log.display()
                )))
            }
        }
    }
    let mut samples: [Vec<SpoolSample>; 2] = [Vec::new(), Vec::new()];
    let mut per_round = String::new();
    let mut first_problem: Option<String> = None;
    for r in 0..o.runs {
        let _ = write!(per_round, "{}{}:", if r > 0 { " |" } else { "" }, r + 1);
        for k in 0..Side::BOTH.len() {
            // Alternate: each round starts with the next command.
            let side = Side::BOTH[(k + r) % Side::BOTH.len()];
            let dir = wdir.join(format!("{}-{}", r + 1, side.key()));
            fs::create_dir(&dir)?;
            let log = wdir.join(format!("{}-{}.log", r + 1, side.key()));
            let target = match side {
                Side::Ours if o.ring => ring.clone(),
                Side::Ours => dir.join("spool.bin"),
                Side::Copy => dir.join("copy.pcap"),
            };
            let mut cmd = match side {
                Side::Ours => spool_command(o, &g.capture, &target, size_mib),
                Side::Copy => {
                    let mut c = Command::new(&me);
                    c.arg("--copy-file").arg(&g.capture).arg(&target);
                    c
                }
            };
            sys::sync_all();
            let (wall, user, sys, rss, status) = measure(&mut cmd, &log)?;
            let log_text = fs::read_to_string(&log).unwrap_or_default();
            let mut s = SpoolSample {
                wall,
                user,
                sys,
                rss_kib: rss,
                status,
                figures: None,
                verdict: None,
                export_status: 0,
                copy_right: false,
                ring_checked: false,
                ring_problem: None,
            };
            // Checks, outside the timing.
            let mut note = String::new();
            match side {
                Side::Ours => {
                    s.figures = SpoolFigures::parse(&log_text, &target);
                    match &s.figures {
                        Some(f) => {
                            let _ = write!(
                                note,
                                "{} bytes programmed ({:.3} x capture), {} syncs, dropped by the ring: {} flows, {} bytes",
                                thousands(f.programmed),
                                f.programmed as f64 / cap_bytes as f64,
                                f.syncs,
                                f.dropped_flows,
                                f.dropped_bytes
                            );
                        }
                        None => note.push_str("no spool summary line on stderr"),
                    }
                    if o.ring {
                        ring_written += s.figures.as_ref().map_or(0, |f| f.stream_bytes);
                        let slog = wdir.join(format!("{}-summary.log", r + 1));
                        s.ring_problem = ring_check(o, &ring, ring_written, &slog)?;
                        s.ring_checked = true;
                        match &s.ring_problem {
                            None => note.push_str("; kept + dropped = written"),
                            Some(p) => {
                                let _ = write!(note, "; {p}");
                            }
                        }
                    } else {
                        let edir = wdir.join(format!("{}-export", r + 1));
                        let elog = wdir.join(format!("{}-export.log", r + 1));
                        let mut e = Command::new(&o.ours);
                        e.arg("--spool-export").arg(&target).arg("-o").arg(&edir);
                        let (ewall, _, _, _, estatus) = measure(&mut e, &elog)?;
                        s.export_status = estatus;
                        let v = workload::verify(&g.tar, &edir)?;
                        let _ = write!(
                            note,
                            "; export {ewall:.2} s, exit status {estatus}, {} of {} files right",
                            thousands(v.right),
                            thousands(v.expected_files)
                        );
                        if !v.problems.is_empty() {
                            let _ = write!(note, " ({})", v.problems.join("; "));
                        }
                        s.verdict = Some(v);
                        truncate_all(&edir)?;
                    }
                }
                Side::Copy => {
                    s.copy_right = same_bytes(&g.capture, &target)?;
                    if !s.copy_right {
                        note.push_str("the copy differs from the capture");
                    }
                }
            }
            if !s.right(side) {
                let tail: String = log_text
                    .lines()
                    .rev()
                    .take(5)
                    .collect::<Vec<_>>()
                    .join(" / ");
                let p = format!(
                    "{} run {}: exit status {status}; {note}; log: {tail}",
                    side.label(),
                    r + 1
                );
                eprintln!("  {p}");
                first_problem.get_or_insert(p);
            }
            truncate_all(&dir)?;
            let _ = write!(per_round, " {} {:.3}", side.key(), wall);
            eprintln!(
                "  {} run {}: {:.3} s{}{}",
                side.label(),
                r + 1,
                wall,
                if note.is_empty() { "" } else { "; " },
                note
            );
            samples[side as usize].push(s);
        }
    }
    let load_after = loadavg();
    let res = SpoolResult {
        kind: w.kind,
        capture_bytes: cap_bytes,
        samples,
    };
    let _ = writeln!(
        report,
        "\n### {} with --spool ({})\n",
        w.kind.name(),
        w.kind.describe()
    );
    let _ = writeln!(
        report,
        "{}; --spool-size {size_mib}M ({})  ",
        describe(g, w),
        if o.ring {
            "a quarter of the capture, rounded up to MiB: filled first, continued by every run, it laps about four times a run"
        } else {
            "1.25 x the capture, rounded up to MiB"
        }
    );
    let _ = writeln!(
        report,
        "load average before {load_before}, after {load_after}; page cache warmed in {warm_s:.2} s\n"
    );
    let _ = writeln!(
        report,
        "| command | wall s (median) | min-max | MB/s of capture | user s | sys s | peak RSS MB | written MB | written / capture | fdatasyncs | dropped by the ring | bytes right | vs copy |"
    );
    let _ = writeln!(
        report,
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|"
    );
    let ratio = res.ratio();
    for side in Side::BOTH {
        let v = &res.samples[side as usize];
        let walls: Vec<f64> = v.iter().map(|x| x.wall).collect();
        let wall = median(&walls);
        let min = walls.iter().cloned().fold(f64::INFINITY, f64::min);
        let max = walls.iter().cloned().fold(0.0, f64::max);
        let ok = v.iter().filter(|x| x.right(side)).count();
        let (written, syncs, dropped, right) = match side {
            Side::Ours => {
                let f = res.figures();
                let dropped = match f {
                    Some(f) if f.clean() => "none".to_string(),
                    Some(f) => format!(
                        "{} flows, {} bytes, {} segments; {} storage errors, {} records lost",
                        f.dropped_flows,
                        f.dropped_bytes,
                        f.dropped_segments,
                        f.storage_errors,
                        f.lost_records
                    ),
                    None => "?".into(),
                };
                let checked = v.iter().filter(|x| x.verdict.is_some()).count();
                let right = match v.iter().find(|x| !x.right(side)) {
                    None if o.ring => {
                        format!("yes ({ok}/{}, kept + dropped = written)", v.len())
                    }
                    None => format!("yes ({ok}/{}, exports checked: {checked})", v.len()),
                    Some(x) => match &x.verdict {
                        Some(e) if !e.ok() => format!(
                            "NO: {} of {} files right, {} different, {} missing, {} extra",
                            thousands(e.right),
                            thousands(e.expected_files),
                            thousands(e.different),
                            thousands(e.missing),
                            thousands(e.extra)
                        ),
                        _ if x.ring_problem.is_some() => format!(
                            "NO ({ok}/{}): {}",
                            v.len(),
                            x.ring_problem.as_deref().unwrap_or("")
                        ),
                        _ => format!(
                            "NO ({ok}/{}): exit status {}, export exit status {}",
                            v.len(),
                            x.status,
                            x.export_status
                        ),
                    },
                };
                (
                    f.map(|f| f.programmed),
                    f.map_or("?".into(), |f| f.syncs.to_string()),
                    dropped,
                    right,
                )
            }
            Side::Copy => (
                Some(cap_bytes),
                "1".to_string(),
                "-".to_string(),
                if ok == v.len() {
                    format!("yes ({ok}/{}, copy = capture)", v.len())
                } else {
                    format!("NO ({ok}/{})", v.len())
                },
            ),
        };
        let _ = writeln!(
            report,
            "| {} | {:.3} | {:.3}-{:.3} | {:.0} | {:.2} | {:.2} | {:.1} | {} | {} | {} | {} | {} | {} |",
            side.label(),
            wall,
            min,
            max,
            cap_bytes as f64 / 1e6 / wall,
            res.median_of(side, |x| x.user),
            res.median_of(side, |x| x.sys),
            res.peak_rss_mb(side),
            written.map_or("?".into(), |b| format!("{:.1}", b as f64 / 1e6)),
            written.map_or("?".into(), |b| format!("{:.3}", b as f64 / cap_bytes as f64)),
            syncs,
            dropped,
            right,
            match side {
                Side::Ours => format!("{ratio:.2}"),
                Side::Copy => "1.00".into(),
            }
        );
    }
    let _ = writeln!(report, "\nruns (wall s, in the order run): {per_round}");
    if let Some(p) = first_problem {
        let _ = writeln!(report, "\nfirst problem: {p}");
    }
    Ok(res)
}

fn spool_summary(results: &[SpoolResult], ring: bool) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "\n### Summary with --spool{} (medians; ours / copy is the median of the per-round ratios; the aim: at most 2)\n",
        if ring {
            " --ring: a spool of a quarter of the capture, continued, lapping about four times a run"
        } else {
            ""
        }
    );
    let _ = writeln!(
        s,
        "| workload | capture MiB | ours s | copy s | ours / copy | within 2 x copy | ours MB/s | copy MB/s | ours user s | ours sys s | copy user s | copy sys s | ours RSS MB | copy RSS MB | programmed / capture | fdatasyncs | dropped by the ring | ours right |"
    );
    let _ = writeln!(
        s,
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
    );
    for r in results {
        let wall = |side| r.median_of(side, |x| x.wall);
        let ratio = r.ratio();
        let f = r.figures();
        let _ = writeln!(
            s,
            "| {} | {:.1} | {:.3} | {:.3} | {:.2} | {} | {:.0} | {:.0} | {:.2} | {:.2} | {:.2} | {:.2} | {:.1} | {:.1} | {} | {} | {} | {} |",
            r.kind.name(),
            mib(r.capture_bytes),
            wall(Side::Ours),
            wall(Side::Copy),
            ratio,
            if ratio <= 2.0 { "yes" } else { "NO" },
            r.capture_bytes as f64 / 1e6 / wall(Side::Ours),
            r.capture_bytes as f64 / 1e6 / wall(Side::Copy),
            r.median_of(Side::Ours, |x| x.user),
            r.median_of(Side::Ours, |x| x.sys),
            r.median_of(Side::Copy, |x| x.user),
            r.median_of(Side::Copy, |x| x.sys),
            r.peak_rss_mb(Side::Ours),
            r.peak_rss_mb(Side::Copy),
            f.map_or("?".into(), |f| format!(
                "{:.3}",
                f.programmed as f64 / r.capture_bytes as f64
            )),
            f.map_or("?".into(), |f| f.syncs.to_string()),
            match f {
                Some(f) if f.clean() => "none".to_string(),
                Some(f) => format!("{} bytes", thousands(f.dropped_bytes)),
                None => "?".into(),
            },
            r.right_cell(Side::Ours),
        );
    }
    s
}

/// Total instructions of a callgrind profile.
fn callgrind_total(p: &Path) -> io::Result<u64> {
    let s = fs::read_to_string(p)?;
    for line in s.lines().rev() {
        if let Some(v) = line
            .strip_prefix("totals:")
            .or_else(|| line.strip_prefix("summary:"))
        {
            if let Some(n) = v.split_whitespace().next().and_then(|x| x.parse().ok()) {
                return Ok(n);
            }
        }
    }
    Err(io::Error::new(
        io::ErrorKind::InvalidData,
        format!("{}: no totals line", p.display()),
    ))
}

fn run_callgrind(
    o: &Opts,
    w: &Workload,
    g: &Generated,
    tools: &[Tool],
    runs_dir: &Path,
    cg_dir: &Path,
    report: &mut String,
) -> io::Result<()> {
    let pk = g.capture_info.packets;
    let wdir = runs_dir.join(format!("{}-callgrind", w.key()));
    fs::create_dir_all(&wdir)?;
    fs::create_dir_all(cg_dir)?;
    // The fixed cost (start-up and exit) from a capture with no packet.
    let empty = cg_dir.join("empty.pcap");
    fs::write(
        &empty,
        tcpflow_tests::pcap::PcapWriter::new(1, workload::SNAPLEN).into_bytes(),
    )?;
    let mut totals: Vec<(Tool, u64, u64, bool)> = Vec::new();
    for &t in tools.iter().filter(|t| **t != Tool::Floor) {
        let edir = wdir.join(format!("{}-empty", t.key()));
        fs::create_dir(&edir)?;
        let eprof = cg_dir.join(format!("empty.{}.callgrind", t.key()));
        let bin = if t == Tool::Ours { &o.ours } else { &o.tcpflow };
        let mut c = Command::new("valgrind");
        c.arg("--tool=callgrind")
            .arg(format!("--callgrind-out-file={}", eprof.display()))
            .arg(bin)
            .arg("-r")
            .arg(&empty)
            .arg("-o")
            .arg(&edir);
        measure(&mut c, &wdir.join(format!("{}-empty.log", t.key())))?;
        let fixed = callgrind_total(&eprof)?;

        let dir = wdir.join(t.key());
        fs::create_dir(&dir)?;
        let prof = cg_dir.join(format!("{}.{}.callgrind", w.key(), t.key()));
        let mut c = Command::new("valgrind");
        c.arg("--tool=callgrind")
            .arg(format!("--callgrind-out-file={}", prof.display()));
        let inner = tool_command(o, t, g, &dir);
        c.arg(inner.get_program()).args(inner.get_args());
        let log = wdir.join(format!("{}.log", t.key()));
        let (wall, _, _, _, status) = measure(&mut c, &log)?;
        let v = workload::verify(&g.tar, &dir)?;
        let total = callgrind_total(&prof)?;
        eprintln!(
            "  {} under callgrind: {:.1} s, {} instructions, exit status {status}",
            t.label(),
            wall,
            thousands(total)
        );
        truncate_all(&dir)?;
        totals.push((t, total, fixed, v.ok() && status == 0));
    }
    let base = totals.iter().find(|x| x.0 == Tool::Tcpflow).map(|x| {
        (
            x.1 as f64 / pk as f64,
            x.1.saturating_sub(x.2) as f64 / pk as f64,
        )
    });
    for (t, total, fixed, ok) in &totals {
        let per = *total as f64 / pk as f64;
        let per_net = total.saturating_sub(*fixed) as f64 / pk as f64;
        let _ = writeln!(
            report,
            "| {} | {} | {} | {} | {:.0} | {} | {} | {:.0} | {} | {} |",
            w.kind.name(),
            thousands(pk),
            t.label(),
            thousands(*total),
            per,
            base.map_or("-".into(), |b| format!("{:.2}", per / b.0)),
            thousands(*fixed),
            per_net,
            base.map_or("-".into(), |b| format!("{:.2}", per_net / b.1)),
            if *ok { "yes" } else { "NO" }
        );
    }
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    // The measuring intermediate between bench and every command it measures (not an option
    // for users).
    if args.first().is_some_and(|a| a == "--measure-child") {
        let [_, result, dashes, program, rest @ ..] = args.as_slice() else {
            eprintln!("bench: usage: bench --measure-child RESULT -- PROGRAM [ARGS..]");
            return ExitCode::from(2);
        };
        if dashes != "--" {
            eprintln!("bench: usage: bench --measure-child RESULT -- PROGRAM [ARGS..]");
            return ExitCode::from(2);
        }
        return match measure_child(Path::new(result), program, rest) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!(
                    "bench: --measure-child: {}: {e}",
                    Path::new(result).display()
                );
                ExitCode::FAILURE
            }
        };
    }
    // The `--spool` baseline, run by bench itself as a child (not an option for users).
    if args.first().is_some_and(|a| a == "--copy-file") {
        let [_, src, dst] = args.as_slice() else {
            eprintln!("bench: usage: bench --copy-file SRC DST");
            return ExitCode::from(2);
        };
        return match copy_file(Path::new(src), Path::new(dst)) {
            Ok(n) => {
                println!("{n} bytes copied and synced");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("bench: copy: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let o = match parse_args() {
        Ok(Some(o)) => o,
        Ok(None) => return ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench: {e}");
            return ExitCode::from(2);
        }
    };
    match run(o) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(o: Opts) -> Result<(), String> {
    let scale = o.scale.unwrap_or(if o.callgrind { 0.02 } else { 1.0 });
    let have_tcpflow = version_of(&o.tcpflow).contains("1.6");
    let tools: Vec<Tool> = match &o.tools {
        _ if o.spool => vec![Tool::Ours],
        Some(t) => t.clone(),
        None if have_tcpflow => vec![Tool::Ours, Tool::Tcpflow, Tool::Floor],
        None => {
            eprintln!(
                "bench: tcpflow 1.6.1 not found at {} (install: apt-get install tcpflow); measuring ours and the floor",
                o.tcpflow.display()
            );
            vec![Tool::Ours, Tool::Floor]
        }
    };
    // --generate-only runs no tool: the cross targets' test.sh makes its captures with it
    // in a target dir that has no host build of the command.
    if tools.contains(&Tool::Ours) && !o.generate_only && !o.ours.is_file() {
        return Err(format!(
            "{} not found: build it first (cargo build --release -p tcpflow, with the same CARGO_TARGET_DIR), or give --ours PATH",
            o.ours.display()
        ));
    }
    if tools.contains(&Tool::Tcpflow) && !have_tcpflow {
        return Err(format!("{} is not tcpflow 1.6.x", o.tcpflow.display()));
    }
    if o.spool && o.callgrind {
        return Err("--spool and --callgrind: give one".into());
    }
    if o.spool && o.tools.is_some() {
        return Err(
            "--spool measures ours against a copy of the capture: --tools does not apply".into(),
        );
    }
    if o.callgrind && sh("valgrind", &["--version"]).is_empty() {
        return Err("valgrind is not installed (apt-get install valgrind)".into());
    }
    fs::create_dir_all(&o.out).map_err(|e| format!("{}: {e}", o.out.display()))?;
    let out = o.out.canonicalize().map_err(|e| e.to_string())?;
    let cache = out.join("cache");
    let stamp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let runs_root = if o.tmpfs {
        PathBuf::from("/dev/shm/tcpflow-bench")
    } else {
        out.join("runs")
    };
    let runs_dir = runs_root.join(format!("{stamp}-{}", std::process::id()));
    fs::create_dir_all(&runs_dir).map_err(|e| format!("{}: {e}", runs_dir.display()))?;

    let load_start = loadavg();
    let mut report = String::new();
    let _ = writeln!(
        report,
        "## {} {}\n",
        if o.callgrind {
            "Instructions (callgrind)"
        } else if o.spool {
            "Wall time with --spool"
        } else {
            "Wall time"
        },
        sh("date", &["-u", "+%Y-%m-%d %H:%M UTC"])
    );
    let _ = writeln!(
        report,
        "command: `bench {}`  ",
        std::env::args().skip(1).collect::<Vec<_>>().join(" ")
    );
    let _ = writeln!(
        report,
        "machine: {} cores, {}, kernel {}; load average at start {}  ",
        sh("nproc", &[]),
        fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|m| m
                .lines()
                .next()
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|k| k.parse::<u64>().ok()))
            .map_or("? RAM".into(), |k| format!(
                "{:.0} GiB RAM",
                k as f64 / 1048576.0
            )),
        sh("uname", &["-r"]),
        load_start
    );
    let _ = writeln!(
        report,
        "ours: {} ({}); tcpflow: {} ({})  ",
        o.ours.display(),
        version_of(&o.ours),
        o.tcpflow.display(),
        if have_tcpflow {
            version_of(&o.tcpflow)
        } else {
            "not installed".into()
        }
    );
    let _ = writeln!(
        report,
        "captures: {}; outputs: {}",
        mount_of(&out),
        mount_of(&runs_dir)
    );
    eprint!("{report}");
    if o.callgrind {
        let _ = writeln!(
            report,
            "\n| workload | packets | tool | instructions | per packet | vs 1.6.1 | fixed (empty capture) | per packet without it | vs 1.6.1 | bytes right |"
        );
        let _ = writeln!(report, "|---|---|---|---|---|---|---|---|---|---|");
    }

    let mut results = Vec::new();
    let mut spool_results = Vec::new();
    let mut generated = Vec::new();
    let mut err = None;
    for &kind in &o.only {
        let w = Workload::new(kind, scale);
        eprintln!("{}: generating or reusing {}", kind.name(), w.key());
        let g = match workload::generate(&w, &cache, o.keep) {
            Ok(g) => g,
            Err(e) => {
                err = Some(format!("generating {}: {e}", w.key()));
                break;
            }
        };
        eprintln!("  {}", describe(&g, &w));
        generated.push(g.dir.clone());
        if o.generate_only {
            let _ = writeln!(report, "- {}: {}", kind.name(), describe(&g, &w));
            continue;
        }
        let r = if o.callgrind {
            run_callgrind(
                &o,
                &w,
                &g,
                &tools,
                &runs_dir,
                &out.join("callgrind"),
                &mut report,
            )
            .map(|_| None)
        } else if o.spool {
            run_spool_workload(&o, &w, &g, &runs_dir, &mut report).map(|r| {
                spool_results.push(r);
                None
            })
        } else {
            run_workload(&o, &w, &g, &tools, &runs_dir, &mut report).map(Some)
        };
        match r {
            Ok(Some(r)) => results.push(r),
            Ok(None) => {}
            Err(e) => {
                err = Some(format!("{}: {e}", w.key()));
                break;
            }
        }
    }
    if !results.is_empty() {
        report.push_str(&summary(&results));
    }
    if !spool_results.is_empty() {
        report.push_str(&spool_summary(&spool_results, o.ring));
    }
    let cores: f64 = sh("nproc", &[]).parse().unwrap_or(1.0);
    let load_end = loadavg();
    let busy = [&load_start, &load_end]
        .iter()
        .filter_map(|l| l.split_whitespace().next()?.parse::<f64>().ok())
        .any(|l| l > cores * 0.5);
    let _ = writeln!(
        report,
        "\nload average at the end: {load_end}{}",
        if busy && o.callgrind {
            "; the machine was busy with other work, which does not change instruction counts"
                .to_string()
        } else if busy {
            format!(
                "; NOTE: the machine was busy with other work (load above half of its {cores} cores): wall times are inflated and noisy"
            )
        } else {
            String::new()
        }
    );
    if o.callgrind {
        let _ = writeln!(
            report,
            "\nprofiles: {} (callgrind_annotate FILE)",
            out.join("callgrind").display()
        );
    }
    // Clean up: outputs always, generated files unless --keep.
    let _ = fs::remove_dir_all(&runs_dir);
    if !o.keep {
        for d in &generated {
            let _ = fs::remove_dir_all(d);
        }
    }
    println!("{report}");
    match err {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spool_summary_line_is_parsed() {
        let p = Path::new("/x/1-ours (2)/spool.bin");
        let log = "tcpflow: 32044 packets, 100 connections spooled, 28790948 bytes written\n\
tcpflow: spool /x/1-ours (2)/spool.bin: 24305 records, 28790948 stream bytes, 29478912 bytes programmed (1.02 per stream byte), 29 segments erased, 1 syncs; dropped by the ring: 2 flows, 300 bytes (4 segments); 5 storage errors, 6 records lost\n";
        let f = SpoolFigures::parse(log, p).expect("parsed");
        assert_eq!(
            f,
            SpoolFigures {
                records: 24305,
                stream_bytes: 28790948,
                programmed: 29478912,
                syncs: 1,
                dropped_flows: 2,
                dropped_bytes: 300,
                dropped_segments: 4,
                storage_errors: 5,
                lost_records: 6,
            }
        );
        assert!(!f.clean());
        assert!(SpoolFigures::parse(log, Path::new("/other")).is_none());
    }

    #[test]
    fn measured_line_round_trips() {
        let m = Measured {
            wall: 0.123456789,
            user: 0.05,
            sys: 1.5,
            rss_kib: 7168,
            wait_status: 3 << 8,
        };
        assert_eq!(Measured::parse(&m.to_line()), Some(m));
        assert_eq!(m.code(), 3);
        assert_eq!(
            Measured {
                wait_status: 9,
                ..m
            }
            .code(),
            128 + 9
        );
        assert_eq!(Measured::parse("0.1 0 0 12"), None);
        assert_eq!(Measured::parse("0.1 0 0 12 0 7"), None);
        assert_eq!(Measured::parse("error: x: not found"), None);
    }

    #[test]
    fn measure_child_writes_the_result() {
        let dir = std::env::temp_dir().join(format!("bench-measure-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let res = dir.join("r");
        let sh = OsString::from("sh");
        measure_child(&res, &sh, &["-c".into(), "exit 3".into()]).unwrap();
        let m = Measured::parse(&fs::read_to_string(&res).unwrap()).expect("a result line");
        assert_eq!(m.code(), 3);
        assert!(m.wall > 0.0 && m.rss_kib > 0);
        measure_child(&res, &sh, &["-c".into(), "kill -9 $$".into()]).unwrap();
        let m = Measured::parse(&fs::read_to_string(&res).unwrap()).expect("a result line");
        assert_eq!(m.code(), 128 + 9);
        measure_child(&res, &OsString::from("/nonexistent/tool"), &[]).unwrap();
        let t = fs::read_to_string(&res).unwrap();
        assert!(t.starts_with("error: /nonexistent/tool: "), "{t}");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn summary_shows_user_cpu_of_both() {
        let sample = |wall: f64, user: f64| Sample {
            wall,
            user,
            sys: 0.1,
            rss_kib: 2048,
            status: 0,
            verdict: Verdict {
                expected_files: 2,
                expected_bytes: 10,
                files: 2,
                bytes: 10,
                right: 2,
                missing: 0,
                different: 0,
                extra: 0,
                problems: Vec::new(),
            },
        };
        let r = WorkloadResult {
            kind: Kind::Messy,
            capture_bytes: 1 << 20,
            rows: vec![
                (Tool::Ours, vec![sample(1.0, 0.5), sample(1.2, 0.7)]),
                (Tool::Tcpflow, vec![sample(2.0, 2.0), sample(2.2, 2.4)]),
                (Tool::Floor, vec![sample(0.5, 0.1), sample(0.5, 0.1)]),
            ],
        };
        let s = summary(&[r]);
        let row = s.lines().find(|l| l.starts_with("| messy")).expect("a row");
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        // Medians: ours 0.6 s of user time, 1.6.1 2.2 s.
        assert_eq!(&cells[9..12], ["0.600", "2.200", "0.27"], "{row}");
        let header = s.lines().find(|l| l.starts_with("| workload")).unwrap();
        assert_eq!(header.split('|').count(), row.split('|').count());
    }

    #[test]
    fn spool_size_holds_the_capture() {
        assert_eq!(spool_size_mib(0), 1);
        assert_eq!(spool_size_mib(107_145_861), 128);
        assert!(spool_size_mib(1 << 20) << 20 >= (1 << 20) + (1 << 18));
    }
}
