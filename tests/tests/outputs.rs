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
        // `./x deps` installs them: under CI a missing tool is a failure, not a skip.
        assert!(
            std::env::var_os("CI").is_none(),
            "capinfos/tshark missing under CI"
        );
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

/// A value of the flat objects `-J` prints.
#[derive(Debug, PartialEq)]
enum Val {
    Str(String),
    Num(String),
    Bool(bool),
    Arr(Vec<Val>),
}

/// Parses one `-J` line (an object of strings, numbers, booleans and arrays) strictly.
fn parse_object(line: &str) -> Result<BTreeMap<String, Val>, String> {
    fn value(s: &[u8], i: &mut usize) -> Result<Val, String> {
        match s.get(*i) {
            Some(b'"') => {
                *i += 1;
                let start = *i;
                while s.get(*i).is_some_and(|&c| c != b'"') {
                    if s[*i] == b'\\' || s[*i] < 0x20 {
                        return Err(format!("escape or control byte at {i}"));
                    }
                    *i += 1;
                }
                if *i >= s.len() {
                    return Err("unterminated string".into());
                }
                *i += 1;
                Ok(Val::Str(
                    String::from_utf8(s[start..*i - 1].to_vec()).unwrap(),
                ))
            }
            Some(b'[') => {
                *i += 1;
                let mut v = Vec::new();
                if s.get(*i) == Some(&b']') {
                    *i += 1;
                    return Ok(Val::Arr(v));
                }
                loop {
                    v.push(value(s, i)?);
                    match s.get(*i) {
                        Some(b',') => *i += 1,
                        Some(b']') => {
                            *i += 1;
                            return Ok(Val::Arr(v));
                        }
                        _ => return Err(format!("bad array at {i}")),
                    }
                }
            }
            Some(b't') if s[*i..].starts_with(b"true") => {
                *i += 4;
                Ok(Val::Bool(true))
            }
            Some(b'f') if s[*i..].starts_with(b"false") => {
                *i += 5;
                Ok(Val::Bool(false))
            }
            Some(c) if c.is_ascii_digit() => {
                let start = *i;
                while s.get(*i).is_some_and(|c| c.is_ascii_digit()) {
                    *i += 1;
                }
                Ok(Val::Num(String::from_utf8(s[start..*i].to_vec()).unwrap()))
            }
            _ => Err(format!("bad value at {i}")),
        }
    }
    let s = line.as_bytes();
    if s.first() != Some(&b'{') || s.last() != Some(&b'}') {
        return Err("not an object".into());
    }
    let mut m = BTreeMap::new();
    let mut i = 1;
    loop {
        let Val::Str(k) = value(s, &mut i)? else {
            return Err("key".into());
        };
        if s.get(i) != Some(&b':') {
            return Err(format!("no colon at {i}"));
        }
        i += 1;
        let v = value(s, &mut i)?;
        if m.insert(k.clone(), v).is_some() {
            return Err(format!("{k} twice"));
        }
        match s.get(i) {
            Some(b',') => i += 1,
            Some(b'}') if i == s.len() - 1 => return Ok(m),
            _ => return Err(format!("bad object at {i}")),
        }
    }
}

fn unbase64(s: &str) -> Vec<u8> {
    let val = |c: u8| -> u32 {
        match c {
            b'A'..=b'Z' => u32::from(c - b'A'),
            b'a'..=b'z' => u32::from(c - b'a') + 26,
            b'0'..=b'9' => u32::from(c - b'0') + 52,
            b'+' => 62,
            b'/' => 63,
            _ => panic!("not base64: {c}"),
        }
    };
    let mut out = Vec::new();
    for q in s.as_bytes().chunks(4) {
        assert_eq!(q.len(), 4);
        let pad = q.iter().filter(|&&c| c == b'=').count();
        let n = q[..4 - pad].iter().fold(0u32, |n, &c| (n << 6) | val(c)) << (6 * pad);
        out.extend_from_slice(&n.to_be_bytes()[1..4 - pad]);
    }
    out
}

/// `-J` on every testdata case, parsed back: the data and gap objects of each direction,
/// placed at their offsets (gaps as NULs, as in files), give the flow files of a run
/// without `-J`, byte for byte.
#[test]
fn json_lines_parse_back_into_the_flow_files() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata");
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("expected").is_dir())
        .collect();
    cases.sort();
    let mut failures = Vec::new();
    let mut objects = 0;
    for case in &cases {
        let name = case.file_name().unwrap().to_string_lossy().into_owned();
        let input = ["input.pcap", "input.pcapng"]
            .iter()
            .map(|f| case.join(f))
            .find(|p| p.exists())
            .unwrap();
        let o = tcpflow(&["-q", "-J", "-r", input.to_str().unwrap()]);
        let text = String::from_utf8(o.stdout).unwrap();
        // By (session, dir): the stream.
        let mut streams: BTreeMap<(String, String), Vec<u8>> = BTreeMap::new();
        for line in text.lines() {
            objects += 1;
            let m = match parse_object(line) {
                Ok(m) => m,
                Err(e) => {
                    failures.push(format!("{name}: {e}: {line}"));
                    continue;
                }
            };
            let get = |k: &str| match m.get(k) {
                Some(Val::Str(s) | Val::Num(s)) => s.clone(),
                other => panic!("{name}: {k}: {other:?} in {line}"),
            };
            let kind = get("type");
            if kind == "close" {
                continue;
            }
            let key = (get("session"), get("dir"));
            let off: usize = get("offset").parse().unwrap();
            let len: usize = get("len").parse().unwrap();
            let s = streams.entry(key).or_default();
            if s.len() < off + len {
                s.resize(off + len, 0);
            }
            if kind == "data" {
                let d = unbase64(&get("data"));
                assert_eq!(d.len(), len, "{name}: {line}");
                s[off..off + len].copy_from_slice(&d);
            }
        }
        let mut got: Vec<Vec<u8>> = streams.into_values().filter(|s| !s.is_empty()).collect();
        let mut want: Vec<Vec<u8>> = std::fs::read_dir(case.join("expected"))
            .unwrap()
            .map(|e| std::fs::read(e.unwrap().path()).unwrap())
            .collect();
        got.sort();
        want.sort();
        if got != want {
            failures.push(format!(
                "{name}: {} streams from -J, {} flow files; lengths {:?} vs {:?}",
                got.len(),
                want.len(),
                got.iter().map(Vec::len).collect::<Vec<_>>(),
                want.iter().map(Vec::len).collect::<Vec<_>>()
            ));
        }
    }
    assert!(objects > cases.len());
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The TCP payload of an untagged Ethernet frame (IPv4, or IPv6 without extension
/// headers), without link padding.
fn tcp_payload(frame: &[u8]) -> &[u8] {
    let ip = &frame[14..];
    let (l4, len) = match frame[12..14] {
        [0x08, 0x00] => {
            let ihl = usize::from(ip[0] & 15) * 4;
            let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
            (&ip[ihl..total.min(ip.len())], total - ihl)
        }
        [0x86, 0xdd] => {
            let plen = usize::from(u16::from_be_bytes([ip[4], ip[5]]));
            (&ip[40..(40 + plen).min(ip.len())], plen)
        }
        _ => panic!("not IP"),
    };
    let doff = usize::from(l4[12] >> 4) * 4;
    &l4[doff..len.min(l4.len())]
}

/// `-I` on cases with reordered, duplicated, retransmitted and lost segments and keep-alive
/// probes: each `.findx` line is a segment with payload of the direction's pcap (in the
/// same order), and the flow file holds that payload at the line's offset.
#[test]
fn findx_offsets_match_the_flow_files() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata");
    let work = tmp("findx");
    let mut lines_checked = 0;
    for name in ["ooo", "tiny-ooo", "lost", "keepalive", "reuse-fin"] {
        let input = root.join(name).join("input.pcap");
        let out = work.join(name);
        let o = tcpflow(&[
            "-q",
            "--no-report",
            "-K",
            "-I",
            "-r",
            input.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{name}: {o:?}");
        let made = files(&out);
        let flows: Vec<&String> = made
            .keys()
            .filter(|k| !k.ends_with(".pcap") && !k.ends_with(".findx"))
            .collect();
        assert!(!flows.is_empty());
        for flow in flows {
            let file = &made[flow];
            let index = String::from_utf8(made[&format!("{flow}.findx")].clone()).unwrap();
            let cap = read_capture(&made[&format!("{flow}.pcap")]).unwrap();
            let payloads: Vec<(&[u8], u64)> = cap
                .records
                .iter()
                .map(|r| (tcp_payload(&r.data), r.ts_ns))
                .filter(|(p, _)| !p.is_empty())
                .collect();
            let lines: Vec<&str> = index.lines().collect();
            assert_eq!(lines.len(), payloads.len(), "{name} {flow}");
            for (line, (payload, ts)) in lines.iter().zip(&payloads) {
                let f: Vec<&str> = line.split('|').collect();
                let off: usize = f[0].parse().unwrap();
                let len: usize = f[2].parse().unwrap();
                assert_eq!(len, payload.len(), "{name} {flow}: {line}");
                assert_eq!(
                    f[1],
                    format!("{}.{:06}", ts / 1_000_000_000, ts % 1_000_000_000 / 1000),
                    "{name} {flow}: {line}"
                );
                // A keep-alive probe's garbage byte sits at next-1, over a real byte.
                let probe = name == "keepalive" && len == 1;
                if !probe {
                    assert_eq!(&file[off..off + len], *payload, "{name} {flow}: {line}");
                }
                lines_checked += 1;
            }
        }
    }
    let _ = std::fs::remove_dir_all(&work);
    assert!(lines_checked > 4000, "{lines_checked}");
}

/// `-g` colours only a terminal: into a pipe, `-c -g` prints what `-c` prints.
#[test]
fn colours_only_on_a_terminal() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata");
    let input = root.join("ooo/input.pcap");
    let plain = tcpflow(&["-q", "-c", "-r", input.to_str().unwrap()]);
    let g = tcpflow(&["-q", "-c", "-g", "-r", input.to_str().unwrap()]);
    assert!(g.status.success());
    assert!(!plain.stdout.is_empty());
    assert_eq!(g.stdout, plain.stdout);
}

/// On a terminal (util-linux `script` gives one), `-c -g` colours; `NO_COLOR` turns it off.
#[test]
fn colours_on_a_terminal_unless_no_color() {
    if Command::new("script").arg("--version").output().is_err() {
        eprintln!("no `script` here: skipped");
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata");
    let input = root.join("ooo/input.pcap");
    let on_tty = |no_color: &str| {
        let cmd = format!(
            "{} -q -c -g -r {}",
            tcpflow_bin().display(),
            input.display()
        );
        let o = Command::new("script")
            .args(["-qec", &cmd, "/dev/null"])
            .env("NO_COLOR", no_color)
            .output()
            .unwrap();
        assert!(o.status.success(), "{o:?}");
        o.stdout
    };
    let has = |v: &[u8], pat: &[u8]| v.windows(pat.len()).any(|w| w == pat);
    let coloured = on_tty("");
    assert!(has(&coloured, b"\x1b[34m") && has(&coloured, b"\x1b[31m"));
    assert!(!has(&on_tty("1"), b"\x1b["));
}

/// Every flag tcpflow 1.6.1 lists (`tcpflow -h`) is in the table at the end of `--help` and
/// in the README's, and its `-S` settings for commands and alerts are taken, not refused.
#[test]
fn help_and_readme_list_every_tcpflow_flag() {
    const FLAGS: &str = "aBcCDhIpsvVZbdeEfFiIgJlLqrRwoXmTKUzSx0AH";
    let o = Command::new(tcpflow_bin()).arg("--help").output().unwrap();
    let help = String::from_utf8(o.stdout).unwrap();
    let table = &help[help.find("tcpflow 1.6.1's flags here:").expect("the table")..];
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md"))
            .unwrap();
    let readme = &readme[readme.find("## tcpflow 1.6.1's flags").unwrap()..];
    for c in FLAGS.chars() {
        let f = format!("-{c}");
        assert!(
            table
                .split(|x: char| x.is_whitespace() || x == ',')
                .any(|w| w == f),
            "--help: {f}"
        );
        assert!(
            readme.contains(&format!("`{f}`")) || readme.contains(&format!("`{f} ")),
            "README: {f}"
        );
    }
    let refused = &table[table.find("Refused").expect("the refused flags")..];
    let taken = &readme[..readme.find("refused:").expect("the refused rows")];
    for s in ["tcp_cmd", "tcp_alert_fd", "http_cmd", "http_alert_fd"] {
        assert!(table.contains(s) && !refused.contains(s), "--help: {s}");
        assert!(taken.contains(&format!("`{s}=")), "README: {s}");
    }
}

/// A connection captured on two interfaces of different link types (a pcapng mixing
/// Ethernet and Linux SLL, as `tcpdump -i any` next to an Ethernet capture gives): every
/// `-K` and `--pcap-per-connection` file that gets frames of both is pcapng with both
/// interfaces, holds every frame of its direction (or connection), opens in tshark, and
/// reassembles with this command into the flow files byte for byte.
#[test]
fn mixed_link_types_give_pcapng() {
    use tcpflow_tests::cases::{binary, close, exchange, text};
    use tcpflow_tests::conn::{Conn, LinkOpts};
    use tcpflow_tests::link::Link;
    use tcpflow_tests::pcap::PcapngWriter;

    let work = tmp("mixed");
    let mut c = Conn::new(
        "10.1.1.1:40000".parse().unwrap(),
        "10.2.2.2:8080".parse().unwrap(),
        1000,
        90_000,
        LinkOpts::default(),
    );
    let mut pkts = exchange(&mut c, &text(3, 20_000), &binary(4, 30_000), 1000);
    pkts.extend(close(&mut c));
    let mut w = PcapngWriter::new(1, 65535);
    let sll = w.add_interface(113);
    for (i, p) in pkts.iter_mut().enumerate() {
        // Every third frame on the SLL interface: both directions mix, from the handshake.
        if i % 3 == 1 {
            p.link = Link::Sll;
            w.write_on(sll, p.ts_us, &p.frame());
        } else {
            w.write(p.ts_us, &p.frame());
        }
    }
    let input = work.join("mixed.pcapng");
    std::fs::write(&input, w.into_bytes()).unwrap();
    let out = work.join("out");
    let o = tcpflow(&[
        "-K",
        "--pcap-per-connection",
        "-r",
        input.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{o:?}");
    let made = files(&out);
    let report = String::from_utf8_lossy(&made["report.xml"]).into_owned();
    assert!(report.contains("pcap_files_pcapng='3'"), "{report}");
    assert!(report.contains("pcap_frames_other_link='0'"), "{report}");
    assert!(report.contains("pcap_frames_lost='0'"), "{report}");
    let flows: Vec<&String> = made
        .keys()
        .filter(|k| !k.ends_with(".pcap") && !k.starts_with("report"))
        .collect();
    assert_eq!(flows.len(), 2, "{:?}", made.keys());
    let tools = have("capinfos") && have("tshark");
    if !tools {
        assert!(
            std::env::var_os("CI").is_none(),
            "capinfos/tshark missing under CI"
        );
        eprintln!("capinfos/tshark missing: the pcapng files are checked by this command only");
    }
    let mut per_dir_frames = 0;
    for (fname, bytes) in made.iter().filter(|(k, _)| k.ends_with(".pcap")) {
        assert!(
            bytes.starts_with(&[0x0a, 0x0d, 0x0d, 0x0a]),
            "{fname}: not pcapng"
        );
        let path = out.join(fname);
        if tools {
            let enc = encapsulation(&path);
            assert_eq!(enc, "Per packet", "{fname}: capinfos says {enc:?}");
            let t = Command::new("tshark")
                .arg("-r")
                .arg(&path)
                .args([
                    "-T",
                    "fields",
                    "-e",
                    "frame.interface_id",
                    "-e",
                    "frame.len",
                ])
                .output()
                .unwrap();
            assert!(t.status.success(), "{fname}: tshark fails: {t:?}");
            let lines = String::from_utf8_lossy(&t.stdout).into_owned();
            let ifaces: std::collections::BTreeSet<&str> =
                lines.lines().filter_map(|l| l.split('\t').next()).collect();
            assert_eq!(ifaces.len(), 2, "{fname}: interfaces {ifaces:?}");
            let n = lines.lines().count();
            if fname.ends_with(".conn.pcap") {
                assert_eq!(n, pkts.len(), "{fname}: the connection's frames");
            } else {
                per_dir_frames += n;
            }
        }
        // Reassembled by this command: the flow files, byte for byte.
        let again = work.join("again");
        let _ = std::fs::remove_dir_all(&again);
        let o = tcpflow(&[
            "-q",
            "--no-report",
            "-r",
            path.to_str().unwrap(),
            "-o",
            again.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{fname}: {o:?}");
        let re = files(&again);
        if let Some(flow) = fname.strip_suffix(".conn.pcap") {
            let want: BTreeMap<&String, &Vec<u8>> = flows.iter().map(|f| (*f, &made[*f])).collect();
            let got: BTreeMap<&String, &Vec<u8>> = re.iter().collect();
            assert_eq!(got, want, "{fname}");
            assert!(made.contains_key(flow));
        } else {
            let flow = fname.strip_suffix(".pcap").unwrap();
            assert_eq!(re.len(), 1, "{fname}: {:?}", re.keys());
            assert_eq!(re.get(flow), Some(&made[flow]), "{fname}");
        }
    }
    if tools {
        assert_eq!(per_dir_frames, pkts.len());
    }
    std::fs::remove_dir_all(&work).unwrap();
}
