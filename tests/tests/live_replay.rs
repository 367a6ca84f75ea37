//! Live capture under load, as a test: the workload's packets replayed by tcpreplay through a
//! veth pair between two network namespaces this test creates, captured by this tcpflow on
//! the other end. Every flow file must equal the direct read of the same packets, with no
//! packet dropped; and spooling in a 64 MB memory cgroup with `--memory 16M` (a router), no
//! OOM kill either. Needs root, ip and tcpreplay: under CI their absence fails the test.
//! tests/BENCH.md has the full table (`livebench`).

use std::path::Path;

use tcpflow_tests::live::{self, Cgroup, Setup, Tool, Trial, Veth};
use tcpflow_tests::workload::{Kind, Workload};

/// Runs a trial; a run with drops (a busy machine) is tried once more, but bytes must be right
/// whenever nothing was dropped.
fn lossless_trial(
    setup: &Setup,
    tool: &Tool,
    mbps: f64,
    expected: &Path,
    cgroup_limit: Option<u64>,
) -> Trial {
    let mut last = None;
    for attempt in 0..2 {
        let cg = cgroup_limit.map(|l| Cgroup::new("tcpflow-live-test", l).expect("cgroup"));
        let t = live::trial(setup, tool, Some(mbps), Some(expected), cg.as_ref()).expect("trial");
        eprintln!(
            "{} at {mbps} Mbit/s (attempt {attempt}): drops {:?} {:?}, {}/{} files equal, peak RSS {} KiB, cgroup peak {:?}, OOM kills {:?}, exit {}",
            tool.name(),
            t.drops,
            t.drops_where,
            t.files_equal,
            t.files_expected,
            t.rss_kib,
            t.cgroup_peak,
            t.oom_kills,
            t.status
        );
        assert_eq!(t.oom_kills.unwrap_or(0), 0, "OOM kill: {}", t.stderr);
        assert_eq!(t.status, 0, "exit status: {}", t.stderr);
        let drops = t.drops.expect("the report's drop counters");
        if drops == 0 {
            assert_eq!(
                t.files_equal, t.files_expected,
                "no drop, yet files differ from the direct read: {}",
                t.stderr
            );
            return t;
        }
        last = Some(t);
    }
    panic!("packets dropped on both attempts: {last:?}");
}

#[test]
fn live_capture_through_veth_loses_nothing() {
    if let Some(why) = live::missing_requirements() {
        tcpflow_tests::cannot_run(why);
        return;
    }
    let mut trials = tcpflow_tests::Cases::new("live trials without a drop");
    let work = std::env::temp_dir().join(format!("tcpflow-live-replay-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).unwrap();
    let full = work.join("many.pcap");
    let capture = work.join("cut.pcap");
    Workload::new(Kind::Many, 0.04)
        .write_capture(std::io::BufWriter::new(
            std::fs::File::create(&full).unwrap(),
        ))
        .unwrap();
    let packets = live::truncate_pcap(&full, &capture, 20_000).unwrap();
    assert_eq!(packets, 20_000);
    let ours = Tool::Ours {
        bin: tcpflow_tests::tcpflow_bin(),
        args: Vec::new(),
        spool: false,
    };
    let expected = work.join("direct");
    ours.direct_read(&capture, &expected).unwrap();
    let veth = Veth::new("tflt").expect("namespaces");

    // Files on tmpfs: this measures the capture path, not how fast a disk creates files (the
    // benchmark does both).
    let shm = Path::new("/dev/shm");
    let out_root = if shm.is_dir() {
        shm.join(format!("tcpflow-live-replay-{}", std::process::id()))
    } else {
        work.clone()
    };
    std::fs::create_dir_all(&out_root).unwrap();
    let setup = Setup {
        veth: &veth,
        capture: &capture,
        work: &work,
        out_root: &out_root,
    };
    let t = lossless_trial(&setup, &ours, 200.0, &expected, None);
    assert!(t.files_expected > 3_000, "{}", t.files_expected);
    trials.ran();

    // A router as it runs: --memory 16M, spooling (to disk), in a 64 MB cgroup (its queue is
    // then 8 MiB, less than the capture); the spool is exported and compared. An unoptimised build keeps up with 100 Mbit/s there; the release build's
    // 400 Mbit/s and more are in tests/BENCH.md (`livebench --cgroup 64M`).
    let router_rate = if cfg!(debug_assertions) { 100.0 } else { 400.0 };
    let router = Tool::Ours {
        bin: tcpflow_tests::tcpflow_bin(),
        args: vec!["--memory".into(), "16M".into()],
        spool: true,
    };
    let expected_router = work.join("direct-router");
    router.direct_read(&capture, &expected_router).unwrap();
    let t = lossless_trial(
        &setup,
        &router,
        router_rate,
        &expected_router,
        Some(64 << 20),
    );
    assert!(t.cgroup_peak.is_some_and(|p| p <= 64 << 20));
    trials.ran();
    trials.done(2);
    drop(veth);
    std::fs::remove_dir_all(&work).unwrap();
    let _ = std::fs::remove_dir_all(&out_root);
}
