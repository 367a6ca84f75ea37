//! The per-flow outputs of the built `tcpflow` (`-K`, `--pcap-per-connection`) on every case
//! of testdata/: each pcap opens in tshark with the capture's link type, holds frames of the
//! capture as captured, and reassembles into the flow file byte for byte.
//! Run `cargo build -p tcpflow` first.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use tcpflow_tests::pcap::{read_capture, Capture};
use tcpflow_tests::tcpflow_bin;

fn tmp(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("tcpflow-outputs-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn tcpflow(args: &[&str]) -> std::process::Output {
    Command::new(tcpflow_bin()).args(args).output().unwrap()
}

/// Regular files directly in `dir`, by name.
fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&p).unwrap())
        })
        .collect()
}

fn have(tool: &str) -> bool {
    Command::new(tool).arg("-v").output().is_ok()
}

/// What tshark says a file's encapsulation is (`capinfos -E`).
fn encapsulation(p: &Path) -> String {
    let o = Command::new("capinfos").arg("-E").arg(p).output().unwrap();
    let s = String::from_utf8_lossy(&o.stdout).into_owned();
    s.lines()
        .find_map(|l| l.strip_prefix("File encapsulation:"))
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// The frames of `c` as (time, wire length, bytes).
fn frames(c: &Capture) -> Vec<(u64, u32, Vec<u8>)> {
    c.records
        .iter()
        .map(|r| (r.ts_ns, r.orig_len, r.data.clone()))
        .collect()
}

fn is_subsequence(small: &[(u64, u32, Vec<u8>)], big: &[(u64, u32, Vec<u8>)]) -> bool {
    let mut it = big.iter();
    small.iter().all(|s| it.any(|b| b == s))
}

/// A direction's pcap alone gives its flow file, but for bytes lost at its end that only
/// the peer's acknowledgments tell (a hole, NULs in the flow file): the connection's pcap
/// has those acknowledgments and is checked to give the file whole.
fn same_or_short_of_peer_acks(got: Option<&Vec<u8>>, want: Option<&Vec<u8>>) -> bool {
    match (got, want) {
        (Some(g), Some(w)) => g == w || (w.starts_with(g) && w[g.len()..].iter().all(|&b| b == 0)),
        (g, w) => g == w,
    }
}

#[test]
fn pcap_per_flow_and_per_connection_on_every_case() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata");
    let tools = have("capinfos") && have("tshark");
    if !tools {
        eprintln!("capinfos/tshark missing: link types checked by the header only");
    }
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("expected").is_dir())
        .collect();
    cases.sort();
    assert!(!cases.is_empty());
    let work = tmp("k");
    let mut failures = Vec::new();
    let mut pcaps_checked = 0;
    for case in &cases {
        let name = case.file_name().unwrap().to_string_lossy().into_owned();
        let input = ["input.pcap", "input.pcapng"]
            .iter()
            .map(|f| case.join(f))
            .find(|p| p.exists())
            .unwrap();
        let in_cap = read_capture(&std::fs::read(&input).unwrap()).unwrap();
        let in_frames = frames(&in_cap);
        let in_encap = if tools {
            encapsulation(&input)
        } else {
            String::new()
        };
        let out = work.join(&name);
        let o = tcpflow(&[
            "-q",
            "--no-report",
            "-K",
            "--pcap-per-connection",
            "-r",
            input.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ]);
        if !out.exists() {
            failures.push(format!("{name}: no output ({o:?})"));
            continue;
        }
        let made = files(&out);
        let mut fail = |m: String| failures.push(format!("{name}: {m}"));
        let mut per_dir_frames = 0;
        let mut per_conn_frames = 0;
        for (fname, bytes) in &made {
            let Some(flow) = fname
                .strip_suffix(".conn.pcap")
                .or_else(|| fname.strip_suffix(".pcap"))
            else {
                continue;
            };
            let per_conn = fname.ends_with(".conn.pcap");
            pcaps_checked += 1;
            let cap = match read_capture(bytes) {
                Ok(c) => c,
                Err(e) => {
                    fail(format!("{fname}: does not parse: {e}"));
                    continue;
                }
            };
            if cap.linktype != in_cap.linktype {
                fail(format!(
                    "{fname}: link type {} (the capture's: {})",
                    cap.linktype, in_cap.linktype
                ));
            }
            let pf = frames(&cap);
            if !is_subsequence(&pf, &in_frames) {
                fail(format!("{fname}: frames not as captured, in order"));
            }
            if per_conn {
                per_conn_frames += pf.len();
            } else {
                per_dir_frames += pf.len();
            }
            let path = out.join(fname);
            if tools {
                let enc = encapsulation(&path);
                if enc != in_encap {
                    fail(format!(
                        "{fname}: tshark sees {enc:?} (capture: {in_encap:?})"
                    ));
                }
                let t = Command::new("tshark")
                    .arg("-r")
                    .arg(&path)
                    .output()
                    .unwrap();
                if !t.status.success() {
                    fail(format!("{fname}: tshark fails: {t:?}"));
                }
            }
            // Reassembled by this command: the flow file(s), byte for byte.
            let again = work.join(format!("{name}-again"));
            let _ = std::fs::remove_dir_all(&again);
            tcpflow(&[
                "-q",
                "--no-report",
                "-r",
                path.to_str().unwrap(),
                "-o",
                again.to_str().unwrap(),
            ]);
            let re = if again.exists() {
                files(&again)
            } else {
                BTreeMap::new()
            };
            // A pcap reassembled alone is a first connection: its names have no `cN`, so
            // files are matched by content. A direction's pcap gives its flow file (none for
            // a direction without bytes); a connection's gives its flow file and the other
            // direction's.
            let want = made.get(flow);
            if per_conn {
                let contents: Vec<&Vec<u8>> = made.values().collect();
                if want.is_some_and(|w| !re.values().any(|r| r == w))
                    || re.values().any(|r| !contents.contains(&r))
                    || re.len() > 2
                {
                    fail(format!("{fname}: reassembled, not the connection's files"));
                }
            } else if re.len() != usize::from(want.is_some())
                || !same_or_short_of_peer_acks(re.values().next(), want)
            {
                fail(format!(
                    "{fname}: reassembled, {:?} bytes in {} files (flow file: {:?})",
                    re.values().next().map(Vec::len),
                    re.len(),
                    want.map(Vec::len)
                ));
            }
            let _ = std::fs::remove_dir_all(&again);
        }
        // Each flow file has its pcap.
        for fname in made.keys().filter(|k| !k.ends_with(".pcap")) {
            if !made.contains_key(&format!("{fname}.pcap")) {
                fail(format!("{fname}: no {fname}.pcap"));
            }
        }
        if per_conn_frames != per_dir_frames {
            fail(format!(
                "{per_conn_frames} frames in the connection pcaps, {per_dir_frames} in the direction pcaps"
            ));
        }
    }
    let _ = std::fs::remove_dir_all(&work);
    assert!(pcaps_checked > 2 * cases.len());
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
