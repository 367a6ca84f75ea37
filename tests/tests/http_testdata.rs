//! `-e http` on the HTTP cases of testdata/ (tests/src/http_cases.rs): exactly the expected
//! body files with exactly their bytes, each report record complete or not as expected, the
//! counters the case is about; and `--spool-export ... -e http` gives the same bodies.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use tcpflow_tests::http_cases::{self, HttpCase};

fn bodies(out: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(out)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("-HTTPBODY"))
        .map(|n| {
            let d = std::fs::read(out.join(&n)).unwrap();
            (n, d)
        })
        .collect()
}

fn field<'a>(line: &'a str, k: &str) -> Option<&'a str> {
    let key = format!("\"{k}\":");
    let i = line.find(&key)?;
    let v = &line[i + key.len()..];
    let v = v.strip_prefix('"').unwrap_or(v);
    Some(&v[..v.find(['"', ',', '}']).unwrap_or(v.len())])
}

fn check(h: &HttpCase, out: &Path, json: &Path) -> Result<(), String> {
    let name = h.case.name;
    let got = bodies(out);
    let want: BTreeMap<String, &[u8]> = h
        .bodies
        .iter()
        .map(|b| (b.name.clone(), &b.data[..]))
        .collect();
    let gk: Vec<&String> = got.keys().collect();
    let wk: Vec<&String> = want.keys().collect();
    if gk != wk {
        return Err(format!("{name}: body files {gk:?}, expected {wk:?}"));
    }
    for (n, d) in &want {
        if got[n][..] != **d {
            let first = got[n].iter().zip(d.iter()).position(|(a, b)| a != b);
            return Err(format!(
                "{name}: {n}: {} bytes, expected {}; first difference at {first:?}",
                got[n].len(),
                d.len()
            ));
        }
    }
    let report = std::fs::read_to_string(json).unwrap();
    for b in &h.bodies {
        let line = report
            .lines()
            .find(|l| {
                l.contains("\"type\":\"http\"")
                    && field(l, "filename").is_some_and(|f| f.ends_with(&b.name))
            })
            .ok_or(format!("{name}: no record for {}", b.name))?;
        let complete = field(line, "complete") == Some("yes");
        match b.incomplete {
            None if !complete => {
                return Err(format!("{name}: {} marked incomplete: {line}", b.name))
            }
            Some(why) if complete || !field(line, "reason").is_some_and(|r| r.contains(why)) => {
                return Err(format!(
                    "{name}: {} should be incomplete ({why}): {line}",
                    b.name
                ))
            }
            _ => {}
        }
        let size = b.data.len().to_string();
        if field(line, "filesize") != Some(size.as_str()) {
            return Err(format!("{name}: {} filesize in the record: {line}", b.name));
        }
    }
    let totals = report
        .lines()
        .find(|l| l.contains("\"type\":\"totals\""))
        .ok_or("no totals")?;
    for (k, v) in &h.counters {
        let got: u64 = field(totals, k)
            .and_then(|x| x.parse().ok())
            .ok_or(format!("{name}: no counter {k}"))?;
        if got < *v {
            return Err(format!("{name}: {k} = {got}, expected at least {v}"));
        }
    }
    Ok(())
}

fn tcpflow(args: &[&str]) {
    let st = Command::new(tcpflow_tests::tcpflow_bin())
        .args(args)
        .status()
        .unwrap();
    assert!(st.success(), "tcpflow {args:?}: {st}");
}

#[test]
fn http_cases_carve_exactly() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata");
    let tmp = std::env::temp_dir().join(format!("tcpflow-http-testdata-{}", std::process::id()));
    let mut problems = Vec::new();
    for h in http_cases::all() {
        let input = root.join(h.case.name).join(h.case.input_name());
        let out = tmp.join(h.case.name);
        let json = tmp.join(format!("{}.json", h.case.name));
        let (i, o, j) = (
            input.to_str().unwrap(),
            out.to_str().unwrap(),
            json.to_str().unwrap(),
        );
        let mut args = vec!["-q", "-e", "http", "-r", i, "-o", o, "--report-json", j];
        args.extend(&h.args);
        tcpflow(&args);
        if let Err(e) = check(&h, &out, &json) {
            problems.push(e);
        }
        // The same through a spool: the bodies of --spool-export -e http are the direct run's.
        let spool = tmp.join(format!("{}.spool", h.case.name));
        let out2 = tmp.join(format!("{}-export", h.case.name));
        let json2 = tmp.join(format!("{}-export.json", h.case.name));
        let s = spool.to_str().unwrap();
        tcpflow(&["-q", "-r", i, "--spool", s, "--spool-size", "4M"]);
        let mut args = vec![
            "-q",
            "-e",
            "http",
            "--spool-export",
            s,
            "-o",
            out2.to_str().unwrap(),
            "--report-json",
            json2.to_str().unwrap(),
        ];
        args.extend(&h.args);
        tcpflow(&args);
        if bodies(&out) != bodies(&out2) {
            problems.push(format!(
                "{}: --spool-export -e http differs from the direct run",
                h.case.name
            ));
        }
    }
    let _ = std::fs::remove_dir_all(&tmp);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// `-e md5 -e sha256`: each direction's digest in its record is that of its file as written
/// (a lost segment is a hole that reads as zeros; the record says `digest_holes`).
#[test]
fn digests_are_of_the_files() {
    use sha2::{Digest, Sha256};
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata");
    let tmp = std::env::temp_dir().join(format!("tcpflow-digests-{}", std::process::id()));
    for case in ["basic", "lost", "http-gap"] {
        let out = tmp.join(case);
        let json = tmp.join(format!("{case}.json"));
        let input = root.join(case).join("input.pcap");
        tcpflow(&[
            "-q",
            "-e",
            "md5",
            "-e",
            "sha256",
            "-r",
            input.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
            "--report-json",
            json.to_str().unwrap(),
        ]);
        let report = std::fs::read_to_string(&json).unwrap();
        let mut n = 0;
        for line in report.lines().filter(|l| l.contains("\"type\":\"flow\"")) {
            let Some(f) = field(line, "filename") else {
                continue;
            };
            let data = std::fs::read(f).unwrap();
            let want: String = Sha256::digest(&data)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            assert_eq!(field(line, "sha256"), Some(want.as_str()), "{case}: {line}");
            assert_eq!(field(line, "md5").map(str::len), Some(32), "{case}: {line}");
            let gaps: u64 = field(line, "gap_bytes")
                .and_then(|g| g.parse().ok())
                .unwrap_or(0);
            assert_eq!(
                gaps > 0,
                field(line, "digest_holes").is_some(),
                "{case}: {line}"
            );
            n += 1;
        }
        assert!(n >= 2, "{case}: {n} records with a file");
        let xml = std::fs::read_to_string(out.join("report.xml")).unwrap();
        assert!(
            xml.contains("<hashdigest type='MD5'"),
            "{case}: tcpflow 1.6's element"
        );
    }
    let _ = std::fs::remove_dir_all(&tmp);
}

/// More bodies than are carved inline (the rest go through the bodies' worker thread): every
/// body is written whole, its file hashes to the generated body's SHA-256 and to its record's,
/// and the totals count them all.
#[test]
fn many_bodies_through_the_worker() {
    many_bodies("many", &[]);
}

/// The same on one processor, where the worker thread is not started and every body is done
/// inline (`taskset` pins the command to the first processor this test may use).
#[test]
fn many_bodies_on_one_processor() {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let allowed = status
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        .expect("Cpus_allowed_list in /proc/self/status");
    let first: String = allowed
        .trim()
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    many_bodies("one-cpu", &["taskset", "-c", &first]);
}

/// Runs `-e http` on 120 generated bodies, under `wrapper` (a command and its arguments
/// before tcpflow's) if one is given, and checks every body and record.
fn many_bodies(tag: &str, wrapper: &[&str]) {
    let cap = tcpflow_tests::http_workload::capture(40, 3);
    assert!(cap.bodies > 64, "fewer bodies than the inline ones");
    let tmp = std::env::temp_dir().join(format!("tcpflow-http-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).unwrap();
    let (pcap, out, json) = (
        tmp.join("http.pcap"),
        tmp.join("out"),
        tmp.join("report.json"),
    );
    std::fs::write(&pcap, &cap.pcap).unwrap();
    let (p, o, j) = (
        pcap.to_str().unwrap(),
        out.to_str().unwrap(),
        json.to_str().unwrap(),
    );
    let args = ["-q", "-e", "http", "-r", p, "-o", o, "--report-json", j];
    let bin = tcpflow_tests::tcpflow_bin();
    let mut cmd = match wrapper.split_first() {
        None => Command::new(&bin),
        Some((w, before)) => {
            let mut c = Command::new(w);
            c.args(before).arg(&bin);
            c
        }
    };
    let st = cmd.args(args).status().unwrap();
    assert!(st.success(), "{wrapper:?} tcpflow {args:?}: {st}");
    let files = bodies(&out);
    let mut got: Vec<String> = files
        .values()
        .map(|d| {
            use sha2::{Digest, Sha256};
            Sha256::digest(d)
                .iter()
                .map(|x| format!("{x:02x}"))
                .collect()
        })
        .collect();
    got.sort();
    let unknown = |v: &[String]| {
        v.iter()
            .filter(|s| cap.body_sha256.binary_search(s).is_err())
            .count()
    };
    assert!(
        got == cap.body_sha256,
        "{} body files of {} expected, {} of them not a generated body",
        got.len(),
        cap.bodies,
        unknown(&got)
    );
    let report = std::fs::read_to_string(&json).unwrap();
    let mut recorded: Vec<String> = report
        .lines()
        .filter(|l| l.contains("\"type\":\"http\""))
        .map(|l| {
            assert_eq!(field(l, "complete"), Some("yes"), "{l}");
            field(l, "sha256").unwrap().to_string()
        })
        .collect();
    recorded.sort();
    assert!(
        recorded == cap.body_sha256,
        "{} records of {} expected, {} of them not of a generated body",
        recorded.len(),
        cap.bodies,
        unknown(&recorded)
    );
    let totals = report
        .lines()
        .find(|l| l.contains("\"type\":\"totals\""))
        .unwrap();
    assert_eq!(
        field(totals, "http_bodies"),
        Some(cap.bodies.to_string().as_str())
    );
    assert_eq!(
        field(totals, "http_body_bytes"),
        Some(cap.body_bytes.to_string().as_str())
    );
    let _ = std::fs::remove_dir_all(&tmp);
}
