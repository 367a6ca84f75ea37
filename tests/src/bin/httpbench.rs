//! The cost of `-e http`: an HTTP-heavy capture (tests/src/http_workload.rs) run through
//! `tcpflow` without and with `-e http`, and through `tshark --export-objects http` when it
//! is installed; wall time (best of N), CPU time (user + system, of the same run) and peak
//! RSS (GNU time) of each, and the bodies found. The runs with and without `-e http` take
//! turns, so that a busy machine weighs on both alike.
//!
//! The floor of each run is `tar -x` of the files that run wrote (archived once, extracted
//! into a fresh folder as often as the runs, best of them): what creating and filling those
//! files costs, whatever made them. `-e http` writes every body again as its own file, so its
//! floor is above the floor without it, and no tool can cost less than that difference.
//!
//! usage: httpbench [--conns N] [--per-conn K] [--runs R] [--out DIR] [--ours PATH] [--no-tshark]

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

struct Measure {
    secs: f64,
    cpu: f64,
    rss_kib: u64,
}

/// Runs `args` under /usr/bin/time: wall seconds and peak RSS.
fn measure(args: &[&str], out: &Path) -> Result<Measure, String> {
    let _ = std::fs::remove_dir_all(out);
    std::fs::create_dir_all(out).map_err(|e| e.to_string())?;
    let tf = out.with_extension("time");
    let start = Instant::now();
    let st = Command::new("/usr/bin/time")
        .arg("-f")
        .arg("%M %U %S")
        .arg("-o")
        .arg(&tf)
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .map_err(|e| format!("/usr/bin/time: {e}"))?;
    let secs = start.elapsed().as_secs_f64();
    if !st.success() {
        return Err(format!("{args:?}: {st}"));
    }
    let t = std::fs::read_to_string(&tf).unwrap_or_default();
    let f: Vec<&str> = t.trim().lines().last().unwrap_or("").split(' ').collect();
    let num = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    Ok(Measure {
        secs,
        cpu: num(1) + num(2),
        rss_kib: num(0) as u64,
    })
}

/// The floor of each run's output: each folder in `names` (under `out`) archived once, then
/// extracted into a fresh folder `runs` times, the folders taking turns; best of each.
fn floors(out: &Path, names: &[String], runs: usize) -> Result<Vec<Measure>, String> {
    let mut tars = Vec::new();
    for n in names {
        let tar = out.join(format!("{n}.tar"));
        let st = Command::new("tar")
            .arg("-cf")
            .arg(&tar)
            .arg("-C")
            .arg(out.join(n))
            .arg(".")
            .status()
            .map_err(|e| format!("tar: {e}"))?;
        if !st.success() {
            return Err(format!("tar -cf {}: {st}", tar.display()));
        }
        tars.push(tar);
    }
    let mut best: Vec<Option<Measure>> = names.iter().map(|_| None).collect();
    for _ in 0..runs {
        for (b, tar) in best.iter_mut().zip(&tars) {
            let dir = tar.with_extension("x");
            let (t, d) = (tar.to_string_lossy(), dir.to_string_lossy());
            let m = measure(&["tar", "-xf", &t, "-C", &d], &dir)?;
            if b.as_ref().map_or(true, |b| m.secs < b.secs) {
                *b = Some(m);
            }
        }
    }
    for tar in &tars {
        let _ = std::fs::remove_file(tar);
        let _ = std::fs::remove_dir_all(tar.with_extension("x"));
        let _ = std::fs::remove_file(tar.with_extension("time"));
    }
    Ok(best.into_iter().flatten().collect())
}

fn count(dir: &Path, pat: &str) -> usize {
    std::fs::read_dir(dir)
        .map(|r| {
            r.flatten()
                .filter(|e| e.file_name().to_string_lossy().contains(pat))
                .count()
        })
        .unwrap_or(0)
}

fn main() -> ExitCode {
    let mut conns = 1500usize;
    let mut per = 3usize;
    let mut runs = 3usize;
    let mut out = std::env::temp_dir().join("tcpflow-httpbench");
    let mut ours = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/release/tcpflow");
    let mut tshark = true;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut v = || args.next().unwrap_or_default();
        match a.as_str() {
            "--conns" => conns = v().parse().unwrap_or(conns),
            "--per-conn" => per = v().parse().unwrap_or(per),
            "--runs" => runs = v().parse().unwrap_or(runs).max(1),
            "--out" => out = PathBuf::from(v()),
            "--ours" => ours = PathBuf::from(v()),
            "--no-tshark" => tshark = false,
            _ => {
                eprintln!("usage: httpbench [--conns N] [--per-conn K] [--runs R] [--out DIR] [--ours PATH] [--no-tshark]");
                return ExitCode::from(2);
            }
        }
    }
    if !ours.is_file() {
        eprintln!(
            "httpbench: {} not built (cargo build --release -p tcpflow)",
            ours.display()
        );
        return ExitCode::FAILURE;
    }
    let _ = std::fs::create_dir_all(&out);
    let cap = tcpflow_tests::http_workload::capture(conns, per);
    let pcap = out.join("http.pcap");
    if let Err(e) = std::fs::write(&pcap, &cap.pcap) {
        eprintln!("httpbench: {}: {e}", pcap.display());
        return ExitCode::FAILURE;
    }
    println!(
        "capture: {conns} connections, {} bodies ({} bytes decoded), {} bytes",
        cap.bodies,
        cap.body_bytes,
        cap.pcap.len()
    );
    let (p, o) = (
        pcap.to_str().unwrap_or_default(),
        ours.to_str().unwrap_or_default(),
    );
    let configs = [
        ("tcpflow", &[][..]),
        ("tcpflow -e http", &["-e", "http"][..]),
    ];
    let mut best: Vec<Option<Measure>> = vec![None, None];
    for _ in 0..runs {
        for (i, (name, extra)) in configs.iter().enumerate() {
            let dir = out.join(name.replace(' ', "_"));
            let d = dir.to_str().unwrap_or_default().to_string();
            let mut a = vec![o, "-q", "-r", p, "-o", &d];
            a.extend(*extra);
            match measure(&a, &dir) {
                Ok(m) => {
                    if best[i].as_ref().map_or(true, |b| m.secs < b.secs) {
                        best[i] = Some(m);
                    }
                }
                Err(e) => {
                    eprintln!("httpbench: {e}");
                    return ExitCode::FAILURE;
                }
            }
        }
    }
    let mut rows = Vec::new();
    for ((name, _), m) in configs.iter().zip(best) {
        let dir = out.join(name.replace(' ', "_"));
        let m = m.expect("at least one run");
        rows.push((name.to_string(), m, count(&dir, "-HTTPBODY")));
    }
    let floors = match floors(&out, &configs.map(|(n, _)| n.replace(' ', "_")), runs) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("httpbench: floor: {e}");
            return ExitCode::FAILURE;
        }
    };
    if tshark
        && Command::new("tshark")
            .arg("-v")
            .output()
            .is_ok_and(|o| o.status.success())
    {
        let dir = out.join("tshark");
        let d = format!("http,{}", dir.display());
        match measure(&["tshark", "-q", "-r", p, "--export-objects", &d], &dir) {
            Ok(m) => rows.push(("tshark --export-objects http".into(), m, count(&dir, ""))),
            Err(e) => eprintln!("httpbench: {e}"),
        }
    }
    println!(
        "| run | wall s (best of {runs}) | CPU s (that run) | peak RSS MiB | bodies written |"
    );
    println!("|---|---|---|---|---|");
    for (n, m, b) in &rows {
        println!(
            "| {n} | {:.3} | {:.2} | {:.1} | {b} |",
            m.secs,
            m.cpu,
            m.rss_kib as f64 / 1024.0
        );
    }
    for ((name, _), f) in configs.iter().zip(&floors) {
        println!(
            "| floor: tar -x of what `{name}` wrote | {:.3} | {:.2} | | |",
            f.secs, f.cpu
        );
    }
    let base = rows[0].1.secs;
    let with = rows[1].1.secs;
    println!(
        "-e http costs {:+.1}% wall time, {:+.1}% CPU time",
        (with / base - 1.0) * 100.0,
        (rows[1].1.cpu / rows[0].1.cpu - 1.0) * 100.0
    );
    println!(
        "writing its output alone (the floors) costs {:+.1}% wall time with -e http; \
         ours / floor: {:.2} without, {:.2} with",
        (floors[1].secs / floors[0].secs - 1.0) * 100.0,
        base / floors[0].secs,
        with / floors[1].secs
    );
    if let Some((_, t, _)) = rows.get(2) {
        println!(
            "tshark --export-objects http takes {:.1}x the time of tcpflow -e http",
            t.secs / with
        );
    }
    let _ = std::fs::remove_dir_all(out.join("tcpflow"));
    let _ = std::fs::remove_dir_all(out.join("tcpflow_-e_http"));
    let _ = std::fs::remove_dir_all(out.join("tshark"));
    ExitCode::SUCCESS
}
