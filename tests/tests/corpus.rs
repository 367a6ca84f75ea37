//! Differential test over the shared corpus of public captures (../shared/corpus beside the
//! project): the built `tcpflow` against tshark and tcpflow 1.6.1 (their flows' digests are in
//! ORACLE.tsv).
//!
//! It fails on a panic, a hang, or a difference that no listed reason explains. The reasons
//! are checked mechanically where the bytes allow it (agreement after renaming VLAN flows,
//! tshark's output being a prefix or suffix of ours, our output differing only in reported
//! gaps); the rest are listed per capture in `KNOWN` with why, each backed by a testdata case
//! or a core test of the behaviour. It prints the agreement counts.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

/// Captures whose differences are deliberate or known, and why.
const KNOWN: &[(&str, &str)] = &[
    // Encapsulations and link types this project does not decode yet (tcpflow 1.6.1 neither).
    ("libpcap/AH-IPcomp-IPv4.pcap", "IPComp payload is compressed: not decodable without decompression"),
    ("libpcap/AH-IPcomp-IPv6.pcap", "IPComp payload is compressed: not decodable without decompression"),
    ("tcpdump/arcnet-rfc1051-arp-icmp-http.pcap", "link type 129 (ARCNET) not supported: error, exit 1"),
    ("tcpdump/arcnet-rfc1201-arp-icmp-http.pcap", "link type 129 (ARCNET) not supported: error, exit 1"),
    ("tcpdump/bgp-aigp.pcap", "link type 178 (Juniper) not supported: error, exit 1"),
    ("tcpdump/ipoib.pcap", "link type 242 (IP over InfiniBand) not supported: error, exit 1"),
    // Behaviour that differs from tshark on purpose.
    ("ndpi/reasm_crash_anon.pcapng", "crafted: a segment 400 MB beyond the acknowledged window is dropped as out of window (core test segment_far_beyond_the_acknowledged_window_is_not_placed); tshark's stream ids split differently"),
    ("ndpi/vnc.pcap", "tshark splits one connection (one SYN) into two streams; we keep one connection and report the 85 KB the capture lost as gaps"),
    ("suricata-verify/bug-76__input.pcap", "4-tuple reused with nearby ISNs: each SYN starts a new connection (testdata reuse-rst)"),
    ("suricata-verify/firewall__tcp-session-decode-malformed-ipv4__input.pcap", "an IPv4 option with a bad length: tshark drops the TCP payload, we keep it (options are skipped by IHL)"),
    ("suricata-verify/firewall__tcp-session-ipv6-stream-out-of-window__input.pcap", "a lone segment beyond the window with nothing acknowledged: kept at its offset as tcpflow does"),
    ("suricata-verify/firewall__tcp-session-stream-out-of-window__input.pcap", "a lone segment beyond the window with nothing acknowledged: kept at its offset as tcpflow does"),
    ("suricata-verify/issue-3341-tcphdr-01__urgent11_cve_2019_12260.pcap", "crafted SYN with data and an urgent pointer, no handshake completion"),
    ("suricata-verify/tcp-protodetect-bailout__input.pcap", "a segment 1 MiB past the stream start: kept at its offset, the hole reported as a gap"),
    ("suricata-verify/tcp-rst-unacked-stream-12__TLPW1-tcp-110.37.219.134-10.12.14.101-tcp-990-49254.pcap", "retransmissions with different bytes: first copy wins (core test overlap_with_different_data_first_wins)"),
    ("tcpdump/bigtcp-ipv6.pcap", "BIG TCP (IPv6 payload length 0): payload taken from the captured length; tshark does not reassemble it"),
    ("zeek/tcp__reassembly.pcap", "inconsistent retransmissions: first copy wins, counted as conflicting bytes"),
    ("zeek/tunnels__tunnel-direct-bypass.pcap", "the same 4-tuple inside and outside a tunnel are one connection in tshark, two here"),
    ("zeek/ftp__bigtransfer.pcap", "most packets removed from a multi-GB transfer: the holes are reported as gaps at their offsets (tcpflow splits files, tshark stops)"),
    ("pcapplusplus/examples__many-protocols.pcap", "a 1-byte keep-alive after close is not a new connection"),
];

fn corpus() -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus");
    p.join("MANIFEST.tsv").exists().then_some(p)
}

type Flows = BTreeMap<String, (u64, String)>;

fn sha(b: &[u8]) -> String {
    Sha256::digest(b)
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect()
}

/// Runs tcpflow on a capture: exit code (None on a signal), stderr, our flows with their
/// bytes, and per file whether the report lists gaps in it.
struct Run {
    code: Option<i32>,
    stderr: String,
    files: BTreeMap<String, Vec<u8>>,
    gappy: BTreeSet<String>,
}

fn run(bin: &Path, cap: &Path, out: &Path) -> Run {
    let _ = std::fs::remove_dir_all(out);
    let json = out.with_extension("json");
    let mut child = Command::new(bin)
        .args(["-q", "-r"])
        .arg(cap)
        .arg("-o")
        .arg(out)
        .arg("--report-json")
        .arg(&json)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > Duration::from_secs(120) {
            let _ = child.kill();
            panic!("{}: no result after 120 s (hang?)", cap.display());
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let mut stderr = String::new();
    use std::io::Read;
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let mut files = BTreeMap::new();
    let mut stack = vec![out.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let name = p.strip_prefix(out).unwrap().to_string_lossy().into_owned();
                if name != "report.xml" && name != "report.html" {
                    files.insert(name, std::fs::read(&p).unwrap());
                }
            }
        }
    }
    let mut gappy = BTreeSet::new();
    for line in std::fs::read_to_string(&json).unwrap_or_default().lines() {
        let field = |k: &str| {
            let key = format!("\"{k}\":");
            line.find(&key).map(|i| {
                let v = &line[i + key.len()..];
                let v = v.trim_start_matches('"');
                v[..v.find(['"', ',', '}']).unwrap_or(v.len())].to_string()
            })
        };
        if let (Some(f), Some(g)) = (field("filename"), field("gap_bytes")) {
            if g != "0" {
                let name = Path::new(&f).strip_prefix(out).unwrap_or(Path::new(&f));
                gappy.insert(name.to_string_lossy().into_owned());
            }
        }
    }
    Run {
        code: status.code(),
        stderr,
        files,
        gappy,
    }
}

fn digests(files: &BTreeMap<String, Vec<u8>>) -> Flows {
    files
        .iter()
        .map(|(k, v)| (k.clone(), (v.len() as u64, sha(v))))
        .collect()
}

/// Why our flow differs from tshark's, when the bytes say so.
fn explain(name: &str, ours: &[u8], run: &Run, ts: &Flows) -> Option<&'static str> {
    // VLAN flows: tshark names them by the raw tag field; compare by content.
    let d = (ours.len() as u64, sha(ours));
    if ts.values().any(|v| *v == d) {
        return Some("same bytes, different name (VLAN id vs raw tag)");
    }
    let t = ts.get(name)?;
    let n = t.0 as usize;
    if n < ours.len() && sha(&ours[..n]) == t.1 {
        return Some("tshark's stream is a prefix of ours (it stops at a hole or at the last captured byte; we keep bytes known sent as a reported gap)");
    }
    if n < ours.len() && sha(&ours[ours.len() - n..]) == t.1 {
        return Some("tshark's stream is a suffix of ours (midstream pickup: earlier data that arrived late is kept)");
    }
    if run.gappy.contains(name) {
        return Some(
            "bytes missing from the capture: ours has them as reported gaps at their offsets",
        );
    }
    None
}

#[test]
fn corpus_against_tshark_and_tcpflow() {
    let Some(root) = corpus() else {
        tcpflow_tests::cannot_run("../shared/corpus (MANIFEST.tsv) not found beside the project");
        return;
    };
    let bin = tcpflow_tests::tcpflow_bin();
    let mut oracle: BTreeMap<String, BTreeMap<String, Flows>> = BTreeMap::new();
    for line in std::fs::read_to_string(root.join("ORACLE.tsv"))
        .unwrap()
        .lines()
        .skip(1)
    {
        let c: Vec<&str> = line.split('\t').collect();
        if c.len() == 5 {
            oracle
                .entry(c[0].to_string())
                .or_default()
                .entry(c[1].to_string())
                .or_default()
                .insert(c[2].to_string(), (c[3].parse().unwrap(), c[4].to_string()));
        }
    }
    let captures: Vec<String> = std::fs::read_to_string(root.join("MANIFEST.tsv"))
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| l.split('\t').next().unwrap().to_string())
        .collect();
    let out = std::env::temp_dir().join(format!("tcpflow-corpus-{}", std::process::id()));
    let (mut same_ts, mut same_tf, mut flows, mut flows_ts, mut flows_tf) = (0, 0, 0, 0, 0);
    let mut reasons: BTreeMap<&str, usize> = BTreeMap::new();
    let mut failures = Vec::new();
    let known: BTreeMap<&str, &str> = KNOWN.iter().copied().collect();
    let empty = Flows::new();
    for cap in &captures {
        let r = run(&bin, &root.join(cap), &out);
        if r.code.is_none() || r.code == Some(101) || r.stderr.contains("panicked") {
            failures.push(format!("{cap}: crashed: {:?} {}", r.code, r.stderr));
            continue;
        }
        let ours = digests(&r.files);
        let o = oracle.get(cap.as_str());
        let ts = o.and_then(|o| o.get("tshark")).unwrap_or(&empty);
        let tf = o
            .and_then(|o| o.get("tcpflow_nopad").or_else(|| o.get("tcpflow")))
            .unwrap_or(&empty);
        flows += ours.len();
        flows_ts += ours.iter().filter(|(k, v)| ts.get(*k) == Some(v)).count();
        flows_tf += ours.iter().filter(|(k, v)| tf.get(*k) == Some(v)).count();
        if ours == *ts {
            same_ts += 1;
        }
        if ours == *tf {
            same_tf += 1;
        }
        if ours == *ts || ours == *tf {
            continue;
        }
        let short = cap.trim_start_matches("pcaps/");
        if let Some(why) = known.get(short) {
            *reasons.entry(why).or_default() += 1;
            continue;
        }
        let mut unexplained = Vec::new();
        for (name, bytes) in &r.files {
            if ts.get(name) == Some(&ours[name]) || tf.get(name) == Some(&ours[name]) {
                continue;
            }
            match explain(name, bytes, &r, ts) {
                Some(why) => *reasons.entry(why).or_default() += 1,
                None => unexplained.push(format!(
                    "ours {name} {:?}, tshark {:?}",
                    ours[name],
                    ts.get(name)
                )),
            }
        }
        let ours_content: BTreeSet<_> = ours.values().collect();
        for (name, d) in ts {
            if !ours.contains_key(name) && !ours_content.contains(d) && !tf.contains_key(name) {
                unexplained.push(format!("tshark has {name} {d:?}, we do not"));
            }
        }
        if !unexplained.is_empty() {
            failures.push(format!("{cap}:\n    {}", unexplained.join("\n    ")));
        }
    }
    let _ = std::fs::remove_dir_all(&out);
    let _ = std::fs::remove_file(out.with_extension("json"));
    eprintln!("corpus: {} captures", captures.len());
    eprintln!(
        "  identical to tshark: {same_ts}; identical to tcpflow 1.6.1 (padding cut): {same_tf}"
    );
    eprintln!(
        "  our flows: {flows}; byte-identical to tshark: {flows_ts}; to tcpflow 1.6.1: {flows_tf}"
    );
    eprintln!("  differences, by reason:");
    for (why, n) in &reasons {
        eprintln!("    {n:4}  {why}");
    }
    assert!(
        failures.is_empty(),
        "{} captures differ without a listed reason:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
