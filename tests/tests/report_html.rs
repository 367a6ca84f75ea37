//! report.html of the benchmark's largest workload (`concurrent`: every connection open at
//! once) in a real headless Chromium with the network off (issue 19): it loads with no
//! console error and every chart drawn, a screenshot is taken, and the page is no larger
//! than a small capture's though the capture has thousands of connections. Scale with
//! `REPORT_HTML_SCALE` (default 0.02: 4,000 connections; bench's scale 1 is 200,000).
//! host/tests/viz.rs checks the page's figures and the PDF.

use std::process::{Command, Stdio};

use tcpflow_tests::browser::{browse, chromium, console_lines};
use tcpflow_tests::tcpflow_bin;
use tcpflow_tests::workload::{Kind, Workload};

const CHARTS: [&str; 9] = [
    "chart-bytes",
    "chart-packets",
    "chart-ports",
    "chart-connections",
    "chart-loss",
    "chart-events",
    "chart-sizes",
    "chart-talkers",
    "chart-topports",
];

#[test]
fn the_largest_workloads_page_loads_in_headless_chromium() {
    let Some(chrome) = chromium() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "chromium not found (./x deps installs it)"
        );
        eprintln!("skipped: no chromium (./x deps installs it)");
        return;
    };
    let scale: f64 = std::env::var("REPORT_HTML_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0.02);
    let work = std::env::temp_dir().join(format!("tcpflow-report-html-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).unwrap();
    let w = Workload::new(Kind::Concurrent, scale);
    let cap = work.join("capture.pcap");
    let info = w
        .write_capture(std::io::BufWriter::new(
            std::fs::File::create(&cap).unwrap(),
        ))
        .unwrap();
    let out = work.join("out");
    let o = Command::new(tcpflow_bin())
        .args(["-q", "-r"])
        .arg(&cap)
        .arg("-o")
        .arg(&out)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let page = out.join("report.html");
    let html = std::fs::read_to_string(&page).unwrap();
    // Bounded: the page of thousands of connections is of a small capture's size.
    assert!(
        html.len() < 400_000,
        "report.html {} bytes for {} connections",
        html.len(),
        w.conns()
    );
    assert!(
        html.contains(&format!("connections<b>{}</b>", w.conns())),
        "{info:?}"
    );

    let profile = work.join("profile");
    let (dom, err) = browse(&chrome, &page, &profile, &["--dump-dom"]);
    let console = console_lines(&err);
    assert!(console.is_empty(), "console: {console:#?}");
    for id in CHARTS {
        let i = dom
            .find(&format!("id=\"{id}\""))
            .unwrap_or_else(|| panic!("{id} missing from the DOM"));
        let fig = &dom[i..];
        let fig = &fig[..fig.find("</figure>").unwrap()];
        assert!(
            fig.contains("<svg") && fig.contains("<text"),
            "{id} not drawn"
        );
    }
    let shot = work.join("report.png");
    let (_, err) = browse(
        &chrome,
        &page,
        &profile,
        &[
            "--window-size=1400,4000",
            &format!("--screenshot={}", shot.display()),
        ],
    );
    assert!(console_lines(&err).is_empty(), "{err}");
    let png = std::fs::read(&shot).unwrap();
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 50_000,
        "{} bytes",
        png.len()
    );
    std::fs::remove_dir_all(&work).unwrap();
}
