//! Differential test of `-e http` over the shared corpus (../shared/corpus): every non-empty
//! object `tshark --export-objects http` writes (HTTP-ORACLE.tsv: name, bytes, sha256) must be
//! among the bodies we carve, by digest, unless `KNOWN` says why not for that capture. With
//! tcpflow 1.6.1 installed (/usr/bin/tcpflow) its `-e http` bodies are counted the same way,
//! for the figures printed at the end. Skipped (with a message) when the corpus is absent.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

/// Captures where we carve fewer of tshark's objects than it exports, and why.
const KNOWN: &[(&str, &str)] = &[
    // The flows themselves are not recovered (tests/tests/corpus.rs says why).
    ("libpcap/AH-IPcomp-IPv4.pcap", "IPComp payload is compressed: no TCP stream to scan"),
    ("libpcap/AH-IPcomp-IPv6.pcap", "IPComp payload is compressed: no TCP stream to scan"),
    ("tcpdump/arcnet-rfc1051-arp-icmp-http.pcap", "link type 129 (ARCNET) not supported"),
    ("tcpdump/arcnet-rfc1201-arp-icmp-http.pcap", "link type 129 (ARCNET) not supported"),
    ("suricata-verify/tcp-rst-unacked-stream-12__TLPW1-tcp-110.37.219.134-10.12.14.101-tcp-990-49254.pcap", "retransmissions with different bytes: our stream keeps the first copy, tshark's bodies are of the other bytes"),
    ("suricata-verify/bug-3286-03-windows-evasion__with_evasion_windows.pcap", "an overlap evasion aimed at the Windows policy: the first copy we keep holds no response; tshark's 14-byte body is from the other copy"),
    // Losses: tshark exports each segment it could not put in a message (named after the
    // request), we write the whole body with holes, marked incomplete with its gaps.
    ("ndpi/instagram.pcap", "responses with lost segments: tshark exports 1418-byte segments, we write each body with its holes (reason gaps)"),
    ("pcapplusplus/examples__http-packets.pcap", "responses with lost segments: tshark exports 1460-byte segments (286 of its objects), we write each body with its holes"),
    ("ndpi/1kxun.pcap", "responses with lost segments and connections picked up midstream: tshark exports the pieces (multiples of 1418/1428/1440 bytes), we write bodies with holes and resume at the next status line"),
    ("pcapplusplus/examples__many-protocols.pcap", "three responses whose first segment was not captured: tshark exports the tails, we cannot frame a body without its head"),
    ("tcpflow/samplePcaps__jpegs.cap", "responses whose head segment was not captured (a gap at offset 0): tshark exports the 134..1136-byte tails under the request's name; no framing without the head"),
    ("markofu-pcaps/dns.cap", "Logo_25wht.gif: its response's head was not captured, tshark exports the 383-byte tail"),
    ("suricata-verify/http-gap-beyond-body__input.pcap", "a gap past a body's end: tshark exports 169 bytes of the next message as a body; we write the body with its 12-byte hole and resume at the next message"),
    ("suricata-verify/http-range-file__input.pcap", "206 partial responses with lost segments: tshark exports ~1048-byte pieces; we write each range body with holes"),
    // The http-evader suite's deliberately malformed messages: a head httparse refuses is
    // counted (http_bad_heads) and its bytes stay in the flow file; tshark is lenient.
    ("suricata-verify/http-evader__http-evader-075__input.pcap", "Transfer-Encoding value folded onto a continuation line (obsolete line folding): refused"),
    ("suricata-verify/http-evader__http-evader-100__input.pcap", "a chunked framing trick: a framing error, the bytes before kept and the body marked incomplete"),
    ("suricata-verify/http-evader__http-evader-125__input.pcap", "Content-Encoding: gzip twice: we undo both and write the 68-byte test file; tshark undoes one"),
    ("suricata-verify/http-evader__http-evader-175__input.pcap", "a space before the colon (`Content-Encoding :`): refused by httparse"),
    ("suricata-verify/http-evader__http-evader-275__input.pcap", "Transfer-Encoding on a tab-indented continuation line (obsolete folding): refused by httparse"),
    ("suricata-verify/http-evader__http-evader-300__input.pcap", "a header name split over folded lines: refused by httparse"),
    ("suricata-verify/http-evader__http-evader-375__input.pcap", "a space before the status line: we resume after it and carve a 68-byte body; tshark's object holds other bytes"),
    ("suricata-verify/http-evader__http-evader-400__input.pcap", "header lines ended by a bare CR: refused by httparse"),
    ("suricata-verify/http-connect__http-connect-simple__input.pcap", "CONNECT: we end HTTP at its 2xx (an http_event record), the tunnel's bytes are left to the flow file; tshark exports its first byte as an object"),
];

fn corpus() -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus");
    p.join("HTTP-ORACLE.tsv").exists().then_some(p)
}

fn sha(b: &[u8]) -> String {
    Sha256::digest(b)
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect()
}

/// Runs a command with a time limit; false when it did not finish.
fn run_bounded(cmd: &mut Command, limit: Duration) -> Option<std::process::ExitStatus> {
    let mut child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let start = Instant::now();
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return Some(s);
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// The digests of every `*-HTTPBODY*` file under `out`.
fn bodies(out: &Path) -> BTreeSet<String> {
    let mut set = BTreeSet::new();
    let mut stack = vec![out.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.to_string_lossy().contains("-HTTPBODY") {
                if let Ok(b) = std::fs::read(&p) {
                    set.insert(sha(&b));
                }
            }
        }
    }
    set
}

/// tshark names an object `objectN` (N its frame number, sometimes with the content type
/// after a dot) when no request URI goes with it: the payload of a frame it dissected as
/// HTTP without a message head of its own (a continuation after a loss, a stream picked up
/// midstream, a non-HTTP protocol on port 80, urgent data), not a body. Counted apart.
fn tshark_unattributed(name: &str) -> bool {
    let rest = name.strip_prefix("object").unwrap_or("");
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    digits > 0 && (digits == rest.len() || rest.as_bytes()[digits] == b'.')
}

#[test]
fn http_objects_match_tshark() {
    let Some(corpus) = corpus() else {
        eprintln!("http_corpus: ../shared/corpus not found; skipped");
        return;
    };
    let bin = tcpflow_tests::tcpflow_bin();
    let old = Path::new("/usr/bin/tcpflow");
    let old = old.exists().then_some(old);
    let tsv = std::fs::read_to_string(corpus.join("HTTP-ORACLE.tsv")).unwrap();
    // Per capture: tshark's non-empty objects by digest (a digest once, as a set).
    let mut want: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut unattributed = 0;
    for line in tsv.lines().skip(1) {
        let f: Vec<&str> = line.split('\t').collect();
        if f.len() < 4 || f[2] == "0" {
            continue;
        }
        if tshark_unattributed(f[1]) {
            unattributed += 1;
            continue;
        }
        want.entry(f[0].to_string())
            .or_default()
            .insert(f[3].to_string());
    }
    let tmp = std::env::temp_dir().join(format!("tcpflow-http-corpus-{}", std::process::id()));
    let (mut caps_all, mut objs, mut found, mut found_old, mut caps_all_old) = (0, 0, 0, 0, 0);
    let mut unexplained = Vec::new();
    let start = Instant::now();
    for (cap, objects) in &want {
        let path = corpus.join(cap);
        let out = tmp.join("new");
        let _ = std::fs::remove_dir_all(&out);
        let st = run_bounded(
            Command::new(&bin)
                .args(["-q", "-e", "http", "-r"])
                .arg(&path)
                .arg("-o")
                .arg(&out),
            Duration::from_secs(120),
        );
        let st = st.unwrap_or_else(|| panic!("{cap}: no result after 120 s (hang?)"));
        assert!(st.code().is_some(), "{cap}: killed by a signal ({st})");
        let ours = bodies(&out);
        let n = objects.iter().filter(|o| ours.contains(*o)).count();
        objs += objects.len();
        found += n;
        if n == objects.len() {
            caps_all += 1;
        } else {
            let short = cap.trim_start_matches("pcaps/");
            if !KNOWN.iter().any(|(k, _)| *k == short) {
                unexplained.push(format!("{short}: {n} of {} objects", objects.len()));
            }
        }
        if let Some(old) = old {
            let out = tmp.join("old");
            let _ = std::fs::remove_dir_all(&out);
            std::fs::create_dir_all(&out).unwrap();
            run_bounded(
                Command::new(old)
                    .args(["-e", "http", "-r"])
                    .arg(&path)
                    .arg("-o")
                    .arg(&out),
                Duration::from_secs(120),
            );
            let theirs = bodies(&out);
            let n = objects.iter().filter(|o| theirs.contains(*o)).count();
            found_old += n;
            if n == objects.len() {
                caps_all_old += 1;
            }
        }
    }
    let _ = std::fs::remove_dir_all(&tmp);
    eprintln!(
        "http_corpus: {} captures with tshark objects; every object carved in {caps_all}; {found} of {objs} objects ({:.1} s); {unattributed} frame payloads tshark exports as objectN not counted",
        want.len(),
        start.elapsed().as_secs_f64()
    );
    if old.is_some() {
        eprintln!("http_corpus: tcpflow 1.6.1 -e http: every object in {caps_all_old} captures; {found_old} of {objs} objects");
    }
    assert!(
        unexplained.is_empty(),
        "objects missed, not explained in KNOWN:\n{}",
        unexplained.join("\n")
    );
}
