//! `--ship` against a real object store (a one-node Garage started by the tests): the round
//! trip on every testdata case, the store down at start, killed mid-upload, the shipping
//! process SIGKILLed mid-upload, the ring wrapping while the store is down, bad credentials
//! and a missing bucket, 8 taps shipping at once, and https through a TLS proxy in front
//! of the store (a private CA: trusted through AWS_CA_BUNDLE or SSL_CERT_FILE, or not).

mod common;
mod garage;
#[cfg(feature = "ship-tls")]
mod tls_proxy;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::*;
use garage::Garage;

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Every file under `dir` but the reports, by path relative to it.
fn tree(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    fn walk(root: &Path, d: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
        for e in std::fs::read_dir(d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                let rel = p.strip_prefix(root).unwrap().to_path_buf();
                let name = rel.file_name().unwrap().to_string_lossy();
                if !["report.xml", "report.json", "report.html", "report.pdf"].contains(&&*name) {
                    out.insert(rel, std::fs::read(&p).unwrap());
                }
            }
        }
    }
    let mut m = BTreeMap::new();
    if dir.exists() {
        walk(dir, dir, &mut m);
    }
    m
}

/// The binary with the store's environment.
fn cmd(g: &Garage, args: &[&str]) -> Command {
    let mut c = bin();
    c.args(args).stdin(Stdio::null());
    for (k, v) in g.env() {
        c.env(k, v);
    }
    c
}

fn run_g(g: &Garage, args: &[&str]) -> Output {
    cmd(g, args).output().unwrap()
}

fn ok(o: &Output, what: &str) {
    assert_eq!(o.status.code(), Some(0), "{what}: {}", stderr(o));
}

/// The `key=value` lines of a spool's progress file.
fn progress(spool: &Path) -> BTreeMap<String, String> {
    let p = PathBuf::from(format!("{}.ship", spool.display()));
    std::fs::read_to_string(p)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The testdata cases with their input capture.
fn cases() -> Vec<(String, PathBuf)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata");
    let mut v: Vec<(String, PathBuf)> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("expected").is_dir())
        .map(|p| {
            let input = ["input.pcap", "input.pcapng"]
                .iter()
                .map(|f| p.join(f))
                .find(|p| p.exists())
                .unwrap();
            (p.file_name().unwrap().to_string_lossy().into_owned(), input)
        })
        .collect();
    v.sort();
    v
}

/// A capture of `flows` connections each carrying `per_flow` bytes each way (about
/// 2 * flows * per_flow bytes of stream).
fn bulk_capture(path: &Path, flows: u32, per_flow: usize) {
    let mut p = Pcap::new();
    let srv = server();
    let mut t = 1_000_000u64;
    for f in 0..flows {
        let c = client(f);
        let (mut cs, mut ss) = (1000u32 + f, 5000u32 + f);
        p.tcp(t, c, srv, cs, 0, SYN, &[]);
        p.tcp(t + 1, srv, c, ss, cs + 1, SYN | ACK, &[]);
        cs += 1;
        ss += 1;
        let mut sent = 0;
        let mut n = 0u32;
        while sent < per_flow {
            let len = 1400.min(per_flow - sent);
            let data: Vec<u8> = (0..len).map(|i| (i as u32 ^ n ^ f) as u8).collect();
            t += 10;
            p.tcp(t, c, srv, cs, ss, ACK | PSH, &data);
            p.tcp(t + 1, srv, c, ss, cs + len as u32, ACK | PSH, &data);
            cs += len as u32;
            ss += len as u32;
            sent += len;
            n += 1;
        }
        p.tcp(t + 2, c, srv, cs, ss, FIN | ACK, &[]);
        p.tcp(t + 3, srv, c, ss, cs + 1, FIN | ACK, &[]);
        t += 100;
    }
    std::fs::write(path, p.bytes()).unwrap();
}

/// Capture with `--spool --ship`, then export from the bucket: the same files as a direct
/// run, on every testdata case; and the whole prefix exported at once gives a folder per tap.
#[test]
fn round_trip_on_every_testdata_case() {
    let Some(g) = Garage::start("roundtrip") else {
        return;
    };
    g.bucket("fleet");
    let work = tmp("ship-roundtrip");
    let cases = cases();
    assert!(cases.len() > 20);
    let mut failures = Vec::new();
    for (name, input) in &cases {
        let out = work.join(name);
        let direct = out.join("direct");
        let spool = out.join("spool");
        ok(&run(&["-q", "-r", s(input), "-o", s(&direct)]), name);
        let o = run_g(
            &g,
            &[
                "-r",
                s(input),
                "--spool",
                s(&spool),
                "--spool-size",
                "1M",
                "--ship",
                "s3://fleet/rt",
                "--tap-id",
                name,
            ],
        );
        ok(&o, name);
        assert!(
            stderr(&o).contains("shipped to s3://fleet/rt/"),
            "{}",
            stderr(&o)
        );
        let exported = out.join("exported");
        let url = format!("s3://fleet/rt/{name}");
        let o = run_g(&g, &["-q", "--spool-export", &url, "-o", s(&exported)]);
        ok(&o, name);
        if tree(&direct).is_empty() || tree(&direct) != tree(&exported) {
            failures.push(name.clone());
        }
    }
    // The analysis side takes the whole fleet at once: one folder per tap.
    let all = work.join("all");
    ok(
        &run_g(
            &g,
            &["-q", "--spool-export", "s3://fleet/rt/", "-o", s(&all)],
        ),
        "all",
    );
    for (name, _) in &cases {
        if tree(&work.join(name).join("direct")) != tree(&all.join(name)) {
            failures.push(format!("{name} (whole prefix)"));
        }
    }
    // The summary reads the bucket too.
    let o = run_g(
        &g,
        &["--spool-summary", &format!("s3://fleet/rt/{}", cases[0].0)],
    );
    ok(&o, "summary");
    assert!(
        stdout(&o).contains("segments in the bucket"),
        "{}",
        stdout(&o)
    );
    std::fs::remove_dir_all(&work).unwrap();
    assert!(failures.is_empty(), "differ: {failures:?}");
}

/// The store is down when the capture starts and ends: nothing is lost, the spool keeps it,
/// the progress says so; once the store is back, `--spool-ship` ships everything, once.
#[test]
fn store_down_at_start_then_back() {
    let Some(mut g) = Garage::start("down") else {
        return;
    };
    g.bucket("fleet");
    g.kill();
    let work = tmp("ship-down");
    let pcap = work.join("in.pcap");
    bulk_capture(&pcap, 20, 40_000);
    let spool = work.join("spool");
    let t0 = Instant::now();
    let o = run_g(
        &g,
        &[
            "-r",
            s(&pcap),
            "--spool",
            s(&spool),
            "--spool-size",
            "4M",
            "--ship",
            "s3://fleet/down",
            "--tap-id",
            "t1",
            "--ship-wait",
            "2",
        ],
    );
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("connection refused"), "{err}");
    assert!(err.contains("not shipped yet"), "{err}");
    // Reported once, not once per retry.
    assert_eq!(err.matches("connection refused").count(), 2, "{err}");
    assert!(t0.elapsed() < Duration::from_secs(20));
    assert_eq!(progress(&spool)["shipped"], "0");
    g.restart();
    let o = run_g(
        &g,
        &[
            "--spool-ship",
            s(&spool),
            "--ship",
            "s3://fleet/down",
            "--tap-id",
            "t1",
        ],
    );
    ok(&o, "ship");
    // Again: nothing new to ship, nothing shipped twice.
    let o = run_g(
        &g,
        &[
            "--spool-ship",
            s(&spool),
            "--ship",
            "s3://fleet/down",
            "--tap-id",
            "t1",
        ],
    );
    ok(&o, "ship again");
    assert!(stderr(&o).contains(": 0 segments"), "{}", stderr(&o));
    let (local, remote) = (work.join("local"), work.join("remote"));
    ok(
        &run(&["-q", "--spool-export", s(&spool), "-o", s(&local)]),
        "local",
    );
    ok(
        &run_g(
            &g,
            &[
                "-q",
                "--spool-export",
                "s3://fleet/down/t1",
                "-o",
                s(&remote),
            ],
        ),
        "remote",
    );
    assert!(!tree(&local).is_empty());
    assert!(tree(&local) == tree(&remote), "bucket export differs");
    std::fs::remove_dir_all(&work).unwrap();
}

/// The store is killed while segments are being shipped and comes back: the capture's end
/// keeps trying (--ship-wait) and everything arrives.
#[test]
fn store_killed_mid_upload_and_restarted() {
    let Some(mut g) = Garage::start("midkill") else {
        return;
    };
    g.bucket("fleet");
    let work = tmp("ship-midkill");
    let pcap = work.join("in.pcap");
    // About 20 MB of stream: 20 segments of 1 MiB, shipped while the store goes away.
    bulk_capture(&pcap, 100, 100_000);
    let spool = work.join("spool");
    let direct = work.join("direct");
    ok(&run(&["-q", "-r", s(&pcap), "-o", s(&direct)]), "direct");
    let child = cmd(
        &g,
        &[
            "-r",
            s(&pcap),
            "--spool",
            s(&spool),
            "--spool-size",
            "32M",
            "--ship",
            "s3://fleet/mid",
            "--tap-id",
            "t1",
            "--ship-wait",
            "60",
        ],
    )
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    // Wait for the first upload, then take the store away for a while.
    let end = Instant::now() + Duration::from_secs(30);
    while progress(&spool).get("shipped").map_or(true, |v| v == "0") {
        assert!(Instant::now() < end, "nothing shipped");
        std::thread::sleep(Duration::from_millis(20));
    }
    g.kill();
    std::thread::sleep(Duration::from_secs(2));
    g.restart();
    let o = child.wait_with_output().unwrap();
    ok(&o, "capture");
    // The outage was seen and got over: the test did take the store away mid-shipping.
    let err = stderr(&o);
    assert!(err.contains("cannot reach the store"), "{err}");
    assert!(err.contains("the store answers again"), "{err}");
    let remote = work.join("remote");
    ok(
        &run_g(
            &g,
            &[
                "-q",
                "--spool-export",
                "s3://fleet/mid/t1",
                "-o",
                s(&remote),
            ],
        ),
        "remote",
    );
    assert!(
        tree(&direct) == tree(&remote),
        "bucket export differs from the direct run"
    );
    std::fs::remove_dir_all(&work).unwrap();
}

/// The shipping process is SIGKILLed mid-upload and started again: no segment missing, none
/// twice (one spool id), and the bucket exports as the spool does.
#[test]
fn shipper_sigkilled_mid_upload_and_restarted() {
    let Some(g) = Garage::start("sigkill") else {
        return;
    };
    g.bucket("fleet");
    let work = tmp("ship-sigkill");
    let pcap = work.join("in.pcap");
    bulk_capture(&pcap, 40, 60_000);
    let spool = work.join("spool");
    // The spool first, then a shipper that is killed after its first uploads.
    ok(
        &run(&[
            "-q",
            "-r",
            s(&pcap),
            "--spool",
            s(&spool),
            "--spool-size",
            "8M",
        ]),
        "spool",
    );
    let mut child = cmd(
        &g,
        &[
            "--spool-ship",
            s(&spool),
            "--ship",
            "s3://fleet/kill",
            "--tap-id",
            "t1",
        ],
    )
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    let end = Instant::now() + Duration::from_secs(30);
    while progress(&spool)
        .get("shipped")
        .map_or(true, |v| v.parse::<u64>().unwrap_or(0) < 2)
    {
        assert!(Instant::now() < end, "nothing shipped");
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let before: u64 = progress(&spool)["shipped"].parse().unwrap();
    // The spool's segments: the kill came before the last was shipped.
    let sum = stdout(&run(&["--spool-summary", s(&spool)]));
    let total: u64 = sum
        .lines()
        .find_map(|l| l.strip_prefix("segments: "))
        .and_then(|v| v.split_whitespace().next())
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        before < total,
        "{before} of {total} shipped before the kill"
    );
    let o = run_g(
        &g,
        &[
            "--spool-ship",
            s(&spool),
            "--ship",
            "s3://fleet/kill",
            "--tap-id",
            "t1",
        ],
    );
    ok(&o, "ship again");
    let after: u64 = progress(&spool)["shipped"].parse().unwrap();
    assert_eq!(after, total, "{before} {after}");
    // One spool id, every segment of the spool once.
    let o = run_g(&g, &["--spool-summary", "s3://fleet/kill/t1"]);
    ok(&o, "summary");
    let out = stdout(&o);
    assert_eq!(out.matches("segments in the bucket").count(), 1, "{out}");
    assert!(
        out.contains(&format!(": {after} segments in the bucket")),
        "{out}"
    );
    let (local, remote) = (work.join("local"), work.join("remote"));
    ok(
        &run(&["-q", "--spool-export", s(&spool), "-o", s(&local)]),
        "local",
    );
    ok(
        &run_g(
            &g,
            &[
                "-q",
                "--spool-export",
                "s3://fleet/kill/t1",
                "-o",
                s(&remote),
            ],
        ),
        "remote",
    );
    assert!(tree(&local) == tree(&remote), "bucket export differs");
    std::fs::remove_dir_all(&work).unwrap();
}

/// The ring wraps while the store is down: the overwritten segments are counted as dropped
/// before shipping, and the export from the bucket says which are missing.
#[test]
fn ring_wraps_while_the_store_is_down() {
    let Some(mut g) = Garage::start("wrap") else {
        return;
    };
    g.bucket("fleet");
    g.kill();
    let work = tmp("ship-wrap");
    let pcap = work.join("in.pcap");
    // About 6 MB of stream into a 1 MiB spool (16 segments of 64 KiB).
    bulk_capture(&pcap, 30, 100_000);
    let spool = work.join("spool");
    let o = run_g(
        &g,
        &[
            "-r",
            s(&pcap),
            "--spool",
            s(&spool),
            "--spool-size",
            "1M",
            "--ship",
            "s3://fleet/wrap",
            "--tap-id",
            "t1",
            "--ship-wait",
            "1",
        ],
    );
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    // Counted when the ring overwrote them, during the capture.
    assert!(
        err.contains("dropped before shipping: the ring wrapped"),
        "{err}"
    );
    g.restart();
    let o = run_g(
        &g,
        &[
            "--spool-ship",
            s(&spool),
            "--ship",
            "s3://fleet/wrap",
            "--tap-id",
            "t1",
        ],
    );
    ok(&o, "ship");
    let err = stderr(&o);
    let dropped: u64 = progress(&spool)["dropped_before_shipping"].parse().unwrap();
    assert!(dropped > 0);
    assert!(
        err.contains(&format!("{dropped} dropped before shipping")),
        "{err}"
    );
    let remote = work.join("remote");
    let o = run_g(
        &g,
        &["--spool-export", "s3://fleet/wrap/t1", "-o", s(&remote)],
    );
    let err = stderr(&o);
    assert!(
        err.contains(&format!("segments 1..={dropped} are not in the bucket")),
        "{err}"
    );
    // What the bucket has is what the spool has.
    let local = work.join("local");
    run(&["-q", "--spool-export", s(&spool), "-o", s(&local)]);
    assert!(!tree(&local).is_empty());
    assert!(tree(&local) == tree(&remote), "bucket export differs");
    std::fs::remove_dir_all(&work).unwrap();
}

/// Bad credentials and a missing bucket: one clear line each, exit status 1, and the spool
/// keeps its data.
#[test]
fn bad_credentials_and_missing_bucket() {
    let Some(g) = Garage::start("creds") else {
        return;
    };
    g.bucket("fleet");
    let work = tmp("ship-creds");
    let input = &cases()[0].1;
    for (what, url, secret, want) in [
        (
            "creds",
            "s3://fleet/x",
            "0".repeat(64),
            "refused the credentials",
        ),
        (
            "bucket",
            "s3://no-such-bucket/x",
            garage::SECRET.to_string(),
            "no-such-bucket",
        ),
    ] {
        let spool = work.join(format!("spool-{what}"));
        let o = cmd(
            &g,
            &[
                "-r",
                s(input),
                "--spool",
                s(&spool),
                "--spool-size",
                "1M",
                "--ship",
                url,
                "--ship-wait",
                "1",
            ],
        )
        .env("AWS_SECRET_ACCESS_KEY", &secret)
        .output()
        .unwrap();
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(1), "{what}: {err}");
        assert!(err.contains(want), "{what}: {err}");
        assert!(err.contains("not shipped yet"), "{what}: {err}");
        let local = work.join(format!("local-{what}"));
        ok(
            &run(&["-q", "--spool-export", s(&spool), "-o", s(&local)]),
            what,
        );
        assert!(!tree(&local).is_empty(), "{what}");
    }
    std::fs::remove_dir_all(&work).unwrap();
}

/// 8 taps (8 processes, their own tap ids and captures) ship to one store at once; the
/// bucket exported whole gives each tap's files in its folder, as a direct run does. Prints
/// the throughput and the time to export the bucket (`--nocapture`).
#[test]
fn eight_taps_ship_to_one_store() {
    let Some(g) = Garage::start("fleet8") else {
        return;
    };
    g.bucket("fleet");
    let work = tmp("ship-fleet8");
    let taps: Vec<String> = (1..=8).map(|i| format!("tap-{i}")).collect();
    for (i, t) in taps.iter().enumerate() {
        let pcap = work.join(format!("{t}.pcap"));
        // Different captures: 20 + i flows of 60 KB each way (2.4 to 3.2 MB of stream).
        bulk_capture(&pcap, 20 + i as u32, 60_000);
        ok(
            &run(&["-q", "-r", s(&pcap), "-o", s(&work.join(t).join("direct"))]),
            t,
        );
    }
    let t0 = Instant::now();
    let children: Vec<_> = taps
        .iter()
        .map(|t| {
            let pcap = work.join(format!("{t}.pcap"));
            let spool = work.join(format!("{t}.spool"));
            cmd(
                &g,
                &[
                    "-q",
                    "-r",
                    s(&pcap),
                    "--spool",
                    s(&spool),
                    "--spool-size",
                    "16M",
                    "--ship",
                    "s3://fleet/site",
                    "--tap-id",
                    t,
                    "--ship-wait",
                    "120",
                ],
            )
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
        })
        .collect();
    for c in children {
        ok(&c.wait_with_output().unwrap(), "tap");
    }
    let ship_time = t0.elapsed();
    let shipped: u64 = taps
        .iter()
        .map(|t| {
            let p = progress(&work.join(format!("{t}.spool")));
            p["shipped"].parse::<u64>().unwrap()
        })
        .sum();
    let t1 = Instant::now();
    let all = work.join("all");
    ok(
        &run_g(
            &g,
            &["-q", "--spool-export", "s3://fleet/site/", "-o", s(&all)],
        ),
        "export",
    );
    let export_time = t1.elapsed();
    let stream: u64 = taps
        .iter()
        .map(|t| {
            tree(&work.join(t).join("direct"))
                .values()
                .map(|v| v.len() as u64)
                .sum::<u64>()
        })
        .sum();
    for t in &taps {
        let want = tree(&work.join(t).join("direct"));
        assert!(!want.is_empty());
        assert!(want == tree(&all.join(t)), "{t}: bucket export differs");
    }
    eprintln!(
        "8 taps: {shipped} segments of 1 MiB shipped in {:.2} s (captures included; {:.1} MiB/s into the store), {:.1} MB of stream; bucket exported in {:.2} s",
        ship_time.as_secs_f64(),
        shipped as f64 / ship_time.as_secs_f64(),
        stream as f64 / 1e6,
        export_time.as_secs_f64()
    );
    std::fs::remove_dir_all(&work).unwrap();
}

/// The store behind https (a TLS proxy in front of Garage, its certificate from a throwaway
/// CA), the CA trusted as AWS tools take it (`AWS_CA_BUNDLE`): `--spool --ship` then
/// `--spool-export s3://...` over https write what a direct run writes, on every testdata
/// case and a capture of several segments; the system-roots path (`SSL_CERT_FILE`, read by
/// the platform verifier) exports the same.
#[cfg(feature = "ship-tls")]
#[test]
fn https_round_trip_through_a_private_ca() {
    use tls_proxy::{TestCa, TlsProxy};
    let Some(g) = Garage::start("https") else {
        return;
    };
    g.bucket("fleet");
    let work = tmp("ship-https");
    let ca = TestCa::new("tcpflow test CA");
    let bundle = work.join("ca.pem");
    ca.write(&bundle);
    let proxy = TlsProxy::start(&ca, g.s3_port);
    // The store's environment with the https endpoint, nothing from the machine's TLS setup.
    let https = |args: &[&str]| {
        let mut c = cmd(&g, args);
        c.env("AWS_ENDPOINT_URL", proxy.endpoint())
            .env("AWS_CA_BUNDLE", &bundle)
            .env_remove("SSL_CERT_FILE")
            .env_remove("SSL_CERT_DIR");
        c
    };
    let mut cases = cases();
    assert!(cases.len() > 20);
    // Several segments: more than one upload on a connection (the spool holds all of them:
    // a capture from a file outruns the uploads).
    let bulk = work.join("bulk.pcap");
    bulk_capture(&bulk, 20, 40_000);
    cases.push(("bulk".to_string(), bulk));
    let mut failures = Vec::new();
    for (name, input) in &cases {
        let out = work.join(name);
        let (direct, spool, exported) =
            (out.join("direct"), out.join("spool"), out.join("exported"));
        ok(&run(&["-q", "-r", s(input), "-o", s(&direct)]), name);
        let o = https(&[
            "-r",
            s(input),
            "--spool",
            s(&spool),
            "--spool-size",
            "4M",
            "--ship",
            "s3://fleet/tls",
            "--tap-id",
            name,
        ])
        .output()
        .unwrap();
        ok(&o, name);
        let err = stderr(&o);
        assert!(err.contains("shipped to s3://fleet/tls/"), "{err}");
        assert!(err.contains(", 0 dropped before shipping"), "{err}");
        assert!(!err.contains("not shipped yet"), "{err}");
        let url = format!("s3://fleet/tls/{name}");
        ok(
            &https(&["-q", "--spool-export", &url, "-o", s(&exported)])
                .output()
                .unwrap(),
            name,
        );
        if tree(&direct).is_empty() || tree(&direct) != tree(&exported) {
            failures.push(name.clone());
        }
    }
    assert!(
        progress(&work.join("bulk").join("spool"))["shipped"]
            .parse::<u64>()
            .unwrap()
            > 1
    );
    // The system's roots as the platform verifier reads them on Linux: SSL_CERT_FILE.
    let roots = work.join("roots");
    let o = cmd(
        &g,
        &[
            "-q",
            "--spool-export",
            "s3://fleet/tls/bulk",
            "-o",
            s(&roots),
        ],
    )
    .env("AWS_ENDPOINT_URL", proxy.endpoint())
    .env_remove("AWS_CA_BUNDLE")
    .env("SSL_CERT_FILE", &bundle)
    .env_remove("SSL_CERT_DIR")
    .output()
    .unwrap();
    ok(&o, "SSL_CERT_FILE");
    assert!(
        tree(&roots) == tree(&work.join("bulk").join("direct")),
        "export through SSL_CERT_FILE differs"
    );
    std::fs::remove_dir_all(&work).unwrap();
    assert!(failures.is_empty(), "differ: {failures:?}");
}

/// An https store whose certificate no trusted CA vouches for (another CA in
/// `AWS_CA_BUNDLE`, or the system's roots alone): one clear line, no endless retries, the
/// spool keeps its data; an unreadable bundle is refused before anything runs.
#[cfg(feature = "ship-tls")]
#[test]
fn https_with_an_untrusted_certificate() {
    use tls_proxy::{TestCa, TlsProxy};
    let Some(g) = Garage::start("untrusted") else {
        return;
    };
    g.bucket("fleet");
    let work = tmp("ship-untrusted");
    let ca = TestCa::new("tcpflow test CA");
    let other = TestCa::new("some other CA");
    let bundle = work.join("other.pem");
    other.write(&bundle);
    let proxy = TlsProxy::start(&ca, g.s3_port);
    let https = |args: &[&str]| {
        let mut c = cmd(&g, args);
        c.env("AWS_ENDPOINT_URL", proxy.endpoint())
            .env_remove("AWS_CA_BUNDLE")
            .env_remove("SSL_CERT_FILE")
            .env_remove("SSL_CERT_DIR");
        c
    };
    let input = &cases()[0].1;
    let spool = work.join("spool");
    let t0 = Instant::now();
    let o = https(&[
        "-r",
        s(input),
        "--spool",
        s(&spool),
        "--spool-size",
        "1M",
        "--ship",
        "s3://fleet/x",
        "--ship-wait",
        "1",
    ])
    .env("AWS_CA_BUNDLE", &bundle)
    .output()
    .unwrap();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    let why = format!(
        "has a certificate the CAs in {} (AWS_CA_BUNDLE) do not vouch for",
        bundle.display()
    );
    // Once when it happened, once in the summary; not once per retry.
    assert_eq!(err.matches(&why).count(), 2, "{err}");
    assert!(err.contains("not shipped yet"), "{err}");
    assert!(t0.elapsed() < Duration::from_secs(20));
    assert_eq!(progress(&spool)["shipped"], "0");
    let local = work.join("local");
    ok(
        &run(&["-q", "--spool-export", s(&spool), "-o", s(&local)]),
        "local",
    );
    assert!(!tree(&local).is_empty());
    // The analysis side with the system's roots only: refused at once, in one line.
    let t0 = Instant::now();
    let o = https(&["--spool-export", "s3://fleet/x", "-o", s(&work.join("r"))])
        .output()
        .unwrap();
    let err = stderr(&o);
    assert_ne!(o.status.code(), Some(0), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("has a certificate the system's roots do not vouch for"),
        "{err}"
    );
    assert!(err.contains("AWS_CA_BUNDLE"), "{err}");
    assert!(t0.elapsed() < Duration::from_secs(5), "retried: {err}");
    // A bundle that cannot be read.
    let o = https(&["--spool-export", "s3://fleet/x", "-o", s(&work.join("r2"))])
        .env("AWS_CA_BUNDLE", work.join("missing.pem"))
        .output()
        .unwrap();
    let err = stderr(&o);
    assert_ne!(o.status.code(), Some(0), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("missing.pem (AWS_CA_BUNDLE): cannot read it"),
        "{err}"
    );
    std::fs::remove_dir_all(&work).unwrap();
}
