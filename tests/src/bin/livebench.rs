//! Live-capture benchmark (run by hand, as root): replays the first packets of the benchmark's
//! "many" workload through a veth pair between two network namespaces at several rates, with
//! this tcpflow, tcpflow 1.6.1 and `tcpdump -w` capturing on the other end, and prints per rate
//! each tool's drops and flow files equal to its own direct read of the same packets, then the
//! highest lossless rate of each. `--cgroup 64M` runs this tcpflow inside a memory cgroup of
//! that size (a router) and adds its peak memory and OOM kills. tests/BENCH.md has results.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use tcpflow_tests::live::{self, Cgroup, Setup, Tool, Trial, Veth};
use tcpflow_tests::workload::{Kind, Workload};

const USAGE: &str = "\
usage: livebench [OPTIONS]   (as root; needs ip, tcpreplay, and tcpflow 1.6.1 / tcpdump to
                              compare with)
  --packets N        packets replayed: the first N of the many workload (default 200000)
  --rates R[,R..]    Mbit/s, or `top` for tcpreplay --topspeed (default 100,200,400,800,top)
  --tools T[,T..]    among ours,tcpflow,tcpdump (default: all three)
  --args 'A B'       extra arguments for this tcpflow (e.g. '--memory 16M')
  --cgroup SIZE      run this tcpflow in a memory cgroup limited to SIZE bytes (K/M/G)
  --spool            this tcpflow captures into a spool (in --out), exported after each run
  --tmpfs            the tools write into /dev/shm/tcpflow-livebench (default: --out, on disk)
  --out DIR          working folder (default: bench-tmp/live beside the project)
  --ours PATH        this tcpflow (default: tcpflow beside this binary)
  --tcpflow PATH     tcpflow 1.6.1 (default /usr/bin/tcpflow)
";

struct Opts {
    packets: u64,
    rates: Vec<Option<f64>>,
    tools: Vec<String>,
    args: Vec<String>,
    cgroup: Option<u64>,
    spool: bool,
    tmpfs: bool,
    out: PathBuf,
    ours: PathBuf,
    tcpflow: PathBuf,
}

fn size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let (n, shift) = match t.chars().last() {
        Some('K' | 'k') => (&t[..t.len() - 1], 10),
        Some('M' | 'm') => (&t[..t.len() - 1], 20),
        Some('G' | 'g') => (&t[..t.len() - 1], 30),
        _ => (t, 0),
    };
    n.parse::<u64>()
        .map(|v| v << shift)
        .map_err(|_| format!("bad size {s}"))
}

fn parse() -> Result<Opts, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut o = Opts {
        packets: 200_000,
        rates: vec![Some(100.0), Some(200.0), Some(400.0), Some(800.0), None],
        tools: vec!["ours".into(), "tcpflow".into(), "tcpdump".into()],
        args: Vec::new(),
        cgroup: None,
        spool: false,
        tmpfs: false,
        out: Path::new(env!("CARGO_MANIFEST_DIR")).join("../../bench-tmp/live"),
        ours: exe.with_file_name("tcpflow"),
        tcpflow: PathBuf::from("/usr/bin/tcpflow"),
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || args.next().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--packets" => o.packets = val()?.parse().map_err(|_| "bad --packets")?,
            "--rates" => {
                o.rates = val()?
                    .split(',')
                    .map(|r| match r {
                        "top" => Ok(None),
                        r => r.parse().map(Some).map_err(|_| format!("bad rate {r}")),
                    })
                    .collect::<Result<_, _>>()?
            }
            "--tools" => o.tools = val()?.split(',').map(String::from).collect(),
            "--args" => o.args = val()?.split_whitespace().map(String::from).collect(),
            "--cgroup" => o.cgroup = Some(size(&val()?)?),
            "--spool" => o.spool = true,
            "--tmpfs" => o.tmpfs = true,
            "--out" => o.out = val()?.into(),
            "--ours" => o.ours = val()?.into(),
            "--tcpflow" => o.tcpflow = val()?.into(),
            "-h" | "--help" => {
                print!("{USAGE}");
                std::process::exit(0);
            }
            x => return Err(format!("unknown argument {x}\n{USAGE}")),
        }
    }
    Ok(o)
}

fn cell(t: &Result<Trial, String>, sent: u64) -> String {
    match t {
        Err(e) => format!("error: {}", e.lines().next().unwrap_or("")),
        Ok(t) => {
            let mut s = match (t.drops, t.drops_where) {
                (Some(d), Some((ring, ifd, q))) if d > 0 => {
                    format!("{d} drops (ring {ring}, if {ifd}, queue {q})")
                }
                (Some(d), _) => format!("{d} drops"),
                (None, _) => "drops n/a".into(),
            };
            if t.files_expected > 0 {
                s.push_str(&format!(", {}/{} equal", t.files_equal, t.files_expected));
            }
            if let Some(p) = t.packets_written {
                s.push_str(&format!(", {p}/{sent} packets"));
            }
            s.push_str(&format!(", {:.1} MB", t.rss_kib as f64 / 1024.0));
            if let Some(p) = t.cgroup_peak {
                s.push_str(&format!(
                    ", cgroup peak {:.1} MB",
                    p as f64 / (1 << 20) as f64
                ));
            }
            if let Some(k) = t.oom_kills {
                s.push_str(&format!(", {k} OOM kills"));
            }
            if t.status != 0 {
                s.push_str(&format!(", exit {}", t.status));
            }
            s
        }
    }
}

fn main() -> ExitCode {
    let o = match parse() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("livebench: {e}");
            return ExitCode::from(2);
        }
    };
    if let Some(why) = live::missing_requirements() {
        eprintln!("livebench: cannot run: {why}");
        return ExitCode::from(1);
    }
    std::fs::create_dir_all(&o.out).expect("work folder");
    // The many workload, large enough for the packets asked for, cut to them.
    let full = o.out.join("many.pcap");
    let capture = o.out.join(format!("many-{}.pcap", o.packets));
    if !capture.exists() {
        let scale = (o.packets as f64 / 1_000_000.0).max(0.01) * 2.0;
        eprintln!("livebench: generating the many workload at scale {scale}");
        let f = std::io::BufWriter::new(std::fs::File::create(&full).expect("capture"));
        Workload::new(Kind::Many, scale)
            .write_capture(f)
            .expect("generating");
        let n = live::truncate_pcap(&full, &capture, o.packets).expect("cutting");
        if n < o.packets {
            eprintln!("livebench: the workload has only {n} packets");
        }
        let _ = std::fs::remove_file(&full);
    }
    let sent = o.packets;
    let mut tools: Vec<Tool> = Vec::new();
    for t in &o.tools {
        match t.as_str() {
            "ours" => tools.push(Tool::Ours {
                bin: o.ours.clone(),
                args: o.args.clone(),
                spool: o.spool,
            }),
            "tcpflow" if o.tcpflow.exists() => tools.push(Tool::Tcpflow {
                bin: o.tcpflow.clone(),
            }),
            "tcpflow" => eprintln!("livebench: {} not found: left out", o.tcpflow.display()),
            "tcpdump" => tools.push(Tool::Tcpdump),
            x => {
                eprintln!("livebench: no tool {x}");
                return ExitCode::from(2);
            }
        }
    }
    let veth = match Veth::new("tflb") {
        Ok(v) => v,
        Err(e) => {
            eprintln!("livebench: {e}");
            return ExitCode::from(1);
        }
    };
    let mut expected: Vec<Option<PathBuf>> = Vec::new();
    for (i, t) in tools.iter().enumerate() {
        let dir = o.out.join(format!("direct-{i}"));
        match t.direct_read(&capture, &dir) {
            Ok(Some(())) => expected.push(Some(dir)),
            Ok(None) => expected.push(None),
            Err(e) => {
                eprintln!("livebench: {}: direct read failed: {e}", t.name());
                return ExitCode::from(1);
            }
        }
    }
    let out_root = if o.tmpfs {
        PathBuf::from("/dev/shm/tcpflow-livebench")
    } else {
        o.out.clone()
    };
    std::fs::create_dir_all(&out_root).expect("output folder");
    let setup = Setup {
        veth: &veth,
        capture: &capture,
        work: &o.out,
        out_root: &out_root,
    };
    let mut results: Vec<Vec<Result<Trial, String>>> = vec![Vec::new(); tools.len()];
    for &rate in &o.rates {
        for (i, t) in tools.iter().enumerate() {
            let cg = match (t, o.cgroup) {
                (Tool::Ours { .. }, Some(limit)) => match Cgroup::new("tcpflow-livebench", limit) {
                    Ok(c) => Some(c),
                    Err(e) => {
                        eprintln!("livebench: cgroup: {e}");
                        return ExitCode::from(1);
                    }
                },
                _ => None,
            };
            let r = live::trial(&setup, t, rate, expected[i].as_deref(), cg.as_ref());
            eprintln!(
                "livebench: {} at {}: {}",
                t.name(),
                rate_name(rate),
                cell(&r, sent)
            );
            results[i].push(r);
        }
    }
    println!(
        "\n{sent} packets of the many workload through a veth pair, replayed by tcpreplay; output in {}\n",
        out_root.display()
    );
    let mut head = "| rate |".to_string();
    let mut rule = "|---|".to_string();
    for t in &tools {
        head.push_str(&format!(" {} |", t.name()));
        rule.push_str("---|");
    }
    println!("{head}\n{rule}");
    for (k, &rate) in o.rates.iter().enumerate() {
        let mut row = format!("| {} |", rate_name(rate));
        for r in &results {
            row.push_str(&format!(" {} |", cell(&r[k], sent)));
        }
        println!("{row}");
    }
    println!();
    for (i, t) in tools.iter().enumerate() {
        let best = o
            .rates
            .iter()
            .zip(&results[i])
            .filter(|(_, r)| {
                r.as_ref()
                    .is_ok_and(|t| t.lossless() && t.packets_written.map_or(true, |p| p >= sent))
            })
            .map(|(rate, _)| *rate)
            .max_by(|a, b| {
                a.unwrap_or(f64::MAX)
                    .partial_cmp(&b.unwrap_or(f64::MAX))
                    .unwrap()
            });
        println!(
            "{}: highest lossless rate {}",
            t.name(),
            best.map_or("none".to_string(), rate_name)
        );
    }
    ExitCode::SUCCESS
}

fn rate_name(r: Option<f64>) -> String {
    match r {
        Some(m) => format!("{m} Mbit/s"),
        None => "top speed".into(),
    }
}
