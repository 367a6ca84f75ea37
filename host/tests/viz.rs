//! report.html and `-e netviz`'s report.pdf (issue 19): the page's figures are report.xml's,
//! it loads in a real headless browser with the network off and no console error, its
//! size does not grow with the number of connections, and the PDF renders with its charts.
#![cfg(feature = "viz")]

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};

use common::*;
use tcpflow_tests::browser::{browse, chromium, console_lines};

/// The charts every page has (ids of their `<figure>`).
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

/// A capture with `n` connections and some loss: every seventh server reply loses a
/// segment (a gap in its file), and one client sends a retransmission that differs.
fn lossy_capture(p: &Path, n: u32) {
    let mut c = Pcap::new();
    let s = server();
    let mut t = 1_000_000;
    for i in 0..n {
        let cl = client(i);
        let (ic, is) = (1000 + i * 7, 500_000 + i * 13);
        let req = format!("GET /{i} HTTP/1.1\r\n\r\n").into_bytes();
        let resp = vec![b'a' + (i % 26) as u8; 3000];
        if i % 7 == 3 {
            // Handshake, request, then the reply with its second 1000 bytes never captured.
            c.tcp(t + 1, cl, s, ic, 0, SYN, b"");
            c.tcp(t + 2, s, cl, is, ic + 1, SYN | ACK, b"");
            c.tcp(t + 3, cl, s, ic + 1, is + 1, ACK, b"");
            c.tcp(t + 4, cl, s, ic + 1, is + 1, ACK | PSH, &req);
            let sc = ic + 1 + req.len() as u32;
            c.tcp(t + 5, s, cl, is + 1, sc, ACK, &resp[..1000]);
            c.tcp(t + 6, s, cl, is + 2001, sc, ACK, &resp[2000..]);
            c.tcp(t + 7, s, cl, is + 3001, sc, FIN | ACK, b"");
            c.tcp(t + 8, cl, s, sc, is + 3002, FIN | ACK, b"");
            c.tcp(t + 9, s, cl, is + 3002, sc + 1, ACK, b"");
        } else if i == 5 {
            c.tcp(t + 1, cl, s, ic, 0, SYN, b"");
            c.tcp(t + 2, s, cl, is, ic + 1, SYN | ACK, b"");
            c.tcp(t + 3, cl, s, ic + 1, is + 1, ACK, b"");
            c.tcp(t + 4, cl, s, ic + 1, is + 1, ACK | PSH, b"hello world");
            // The same bytes again, differing: a conflicting retransmission.
            c.tcp(t + 5, cl, s, ic + 1, is + 1, ACK | PSH, b"HELLO world");
            c.tcp(t + 6, cl, s, ic + 12, is + 1, FIN | ACK, b"");
            c.tcp(t + 7, s, cl, is + 1, ic + 13, FIN | ACK, b"");
            c.tcp(t + 8, cl, s, ic + 13, is + 2, ACK, b"");
        } else {
            c.conversation(t, cl, s, ic, is, &req, &resp, 1000);
        }
        // Spread over about two seconds whatever n is.
        t += 2_000_000 / u64::from(n.max(1));
    }
    c.write(p);
}

/// report.xml's counters: `<total_flows>`-style totals and each `<stats>` group's attributes.
fn xml_counters(xml: &str) -> BTreeMap<(String, String), u64> {
    let mut m = BTreeMap::new();
    for tag in ["max_open_flows", "total_flows", "total_packets"] {
        let open = format!("<{tag}>");
        let i = xml
            .find(&open)
            .unwrap_or_else(|| panic!("report.xml has no {tag}"));
        let rest = &xml[i + open.len()..];
        let v = rest[..rest.find('<').unwrap()].parse().unwrap();
        m.insert(("totals".to_string(), tag.to_string()), v);
    }
    let stats = &xml[xml.find("<stats>").unwrap()..xml.find("</stats>").unwrap()];
    for line in stats
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with('<') && l.ends_with("/>"))
    {
        let mut words = line
            .trim_start_matches('<')
            .trim_end_matches("/>")
            .split_whitespace();
        let group = words.next().unwrap().to_string();
        for w in words {
            let (k, v) = w.split_once('=').unwrap();
            m.insert(
                (group.clone(), k.to_string()),
                v.trim_matches('\'').parse().unwrap(),
            );
        }
    }
    m
}

/// The page's counter table.
fn html_counters(html: &str) -> BTreeMap<(String, String), u64> {
    let mut m = BTreeMap::new();
    for row in html.split("<tr data-group=\"").skip(1) {
        let (g, rest) = row.split_once('"').unwrap();
        let rest = rest.split_once("data-name=\"").unwrap().1;
        let (k, rest) = rest.split_once('"').unwrap();
        let cell = rest.split("<td class=n>").nth(1).unwrap();
        let v = cell[..cell.find('<').unwrap()].parse().unwrap();
        m.insert((g.to_string(), k.to_string()), v);
    }
    m
}

/// The summary card with this label.
fn card(html: &str, label: &str) -> u64 {
    let i = html
        .find(&format!("{label}<b>"))
        .unwrap_or_else(|| panic!("no card {label}"));
    let rest = &html[i + label.len() + 3..];
    rest[..rest.find('<').unwrap()].parse().unwrap()
}

fn run_ok(args: &[&str]) {
    let o = run(args);
    assert!(o.status.success(), "tcpflow {args:?}: {}", stderr(&o));
}

#[test]
fn page_figures_are_report_xml_counters() {
    let d = tmp("viz-figures");
    let cap = d.join("in.pcap");
    lossy_capture(&cap, 40);
    let out = d.join("out");
    run_ok(&["-r", cap.to_str().unwrap(), "-o", out.to_str().unwrap()]);
    let xml = std::fs::read_to_string(out.join("report.xml")).unwrap();
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    let want = xml_counters(&xml);
    let got = html_counters(&html);
    assert!(want.len() > 60, "report.xml counters: {want:?}");
    // Every counter report.xml has is in the page with the same value, and nothing else.
    assert_eq!(got, want);
    // The case had loss and conflicts: the figures are not all zeros.
    let flow = |k: &str| want[&("flow".to_string(), k.to_string())];
    assert!(flow("gap_bytes") >= 6 * 1000, "{want:?}");
    assert!(flow("conflict_bytes") > 0, "{want:?}");
    assert_eq!(card(&html, "bytes missing (gaps)"), flow("gap_bytes"));
    assert_eq!(
        card(&html, "conflicting retransmitted bytes"),
        flow("conflict_bytes")
    );
    assert_eq!(card(&html, "connections"), flow("opened"));
    assert_eq!(
        card(&html, "packets"),
        want[&("totals".to_string(), "total_packets".to_string())]
    );
    // The lossiest table links to files that hold the holes.
    let lossiest = &html[html.find("<table id=\"lossiest\"").unwrap()..];
    let lossiest = &lossiest[..lossiest.find("</table>").unwrap()];
    let links: Vec<&str> = lossiest
        .split("<a href=\"")
        .skip(1)
        .map(|s| &s[..s.find('"').unwrap()])
        .collect();
    // Six replies with a hole, and the request with a differing retransmission.
    assert_eq!(links.len(), 7, "{lossiest}");
    let holed = links
        .iter()
        .filter(|l| std::fs::metadata(out.join(l)).unwrap().len() == 3000)
        .count();
    assert_eq!(holed, 6, "{links:?}");
    for id in CHARTS {
        assert!(html.contains(&format!("<figure id=\"{id}\"><svg")), "{id}");
    }
}

/// Nothing in the page may make a browser load anything.
fn assert_self_contained(html: &str) {
    for bad in [
        "<script", "<link", "<img", "<iframe", "url(", "@import", "src=", "https:",
    ] {
        assert!(!html.contains(bad), "report.html contains {bad}");
    }
    // The only URL is the SVG namespace (a name, never fetched).
    let urls = html.matches("http://").count();
    assert_eq!(urls, html.matches("http://www.w3.org/2000/svg").count());
    assert!(html.contains("Content-Security-Policy"));
}

fn check_in_browser(page: &Path, work: &Path) {
    let Some(chrome) = chromium() else {
        if std::env::var_os("CI").is_some() {
            panic!("chromium not found (./x deps installs it)");
        }
        eprintln!("skipped: no chromium (./x deps installs it)");
        return;
    };
    let profile = work.join("chrome-profile");
    // The check can fail: a page with a console error and a blocked load is caught.
    let control = work.join("control.html");
    std::fs::write(
        &control,
        "<!DOCTYPE html><html><body><script>console.error('tcpflow-control')</script></body></html>",
    )
    .unwrap();
    let (_, err) = browse(&chrome, &control, &profile, &["--dump-dom"]);
    assert!(
        console_lines(&err)
            .iter()
            .any(|l| l.contains("tcpflow-control")),
        "the console check does not see a console error:\n{err}"
    );

    let (dom, err) = browse(&chrome, page, &profile, &["--dump-dom"]);
    assert!(console_lines(&err).is_empty(), "console:\n{err}");
    for id in CHARTS {
        let i = dom
            .find(&format!("id=\"{id}\""))
            .unwrap_or_else(|| panic!("{id} missing from the DOM"));
        let fig = &dom[i..];
        let fig = &fig[..fig.find("</figure>").unwrap()];
        assert!(
            fig.contains("<svg") && fig.contains("<text"),
            "{id} has no drawn chart"
        );
    }
    let shot = work.join("report.png");
    let _ = std::fs::remove_file(&shot);
    let (_, err) = browse(
        &chrome,
        page,
        &profile,
        &[
            "--window-size=1400,4000",
            &format!("--screenshot={}", shot.display()),
        ],
    );
    assert!(console_lines(&err).is_empty(), "console:\n{err}");
    let png = std::fs::read(&shot).unwrap();
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 50_000,
        "{} bytes",
        png.len()
    );
}

#[test]
fn page_loads_in_headless_chromium_without_network_or_console_error() {
    let d = tmp("viz-chromium");
    let cap = d.join("in.pcap");
    lossy_capture(&cap, 40);
    let out = d.join("out");
    run_ok(&["-r", cap.to_str().unwrap(), "-o", out.to_str().unwrap()]);
    let page = out.join("report.html");
    assert_self_contained(&std::fs::read_to_string(&page).unwrap());
    check_in_browser(&page, &d);
}

#[test]
fn page_size_does_not_grow_with_connections() {
    let d = tmp("viz-bounded");
    let mut sizes = Vec::new();
    for n in [10u32, 4000] {
        let cap = d.join(format!("in{n}.pcap"));
        lossy_capture(&cap, n);
        let out = d.join(format!("out{n}"));
        run_ok(&[
            "-r",
            cap.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
            "-q",
        ]);
        sizes.push(std::fs::metadata(out.join("report.html")).unwrap().len());
    }
    // Same order: the tables are full at 4000 connections, the time bins the same count.
    assert!(sizes[1] < sizes[0] * 2, "report.html sizes {sizes:?}");
}

#[test]
#[cfg(feature = "netviz")]
fn netviz_writes_a_pdf_that_renders_with_its_charts() {
    let d = tmp("viz-pdf");
    let cap = d.join("in.pcap");
    lossy_capture(&cap, 20);
    let out = d.join("out");
    let html = d.join("elsewhere.html");
    run_ok(&[
        "-r",
        cap.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "-e",
        "netviz",
        "--report-html",
        html.to_str().unwrap(),
    ]);
    assert!(html.is_file() && !out.join("report.html").exists());
    let pdf = out.join("report.pdf");
    let bytes = std::fs::read(&pdf).unwrap();
    assert!(bytes.starts_with(b"%PDF-"));
    let have = |tool: &str| Command::new(tool).arg("-v").output().is_ok();
    if !have("pdftoppm") {
        assert!(
            std::env::var_os("CI").is_none(),
            "pdftoppm not found (./x deps installs poppler-utils)"
        );
        eprintln!("skipped the rendering: no pdftoppm");
        return;
    }
    // Rendered in grey: a page that is mostly white with a good share of ink.
    let o = Command::new("pdftoppm")
        .args(["-r", "30", "-gray", "-singlefile"])
        .arg(&pdf)
        .arg(d.join("page"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let pgm = std::fs::read(d.join("page.pgm")).unwrap();
    // P5 header: magic, width, height, maxval, then one byte per pixel.
    let mut fields = Vec::new();
    let mut i = 0;
    while fields.len() < 4 {
        while pgm[i].is_ascii_whitespace() {
            i += 1;
        }
        let s = i;
        while !pgm[i].is_ascii_whitespace() {
            i += 1;
        }
        fields.push(String::from_utf8_lossy(&pgm[s..i]).into_owned());
    }
    let pixels = &pgm[i + 1..];
    let (w, h): (usize, usize) = (fields[1].parse().unwrap(), fields[2].parse().unwrap());
    assert_eq!(pixels.len(), w * h);
    let ink = pixels.iter().filter(|&&p| p < 200).count();
    assert!(
        ink * 100 > pixels.len() && ink * 3 < pixels.len(),
        "ink {ink} of {}",
        pixels.len()
    );
    // The charts' titles are text in the PDF.
    let o = Command::new("pdftotext")
        .arg(&pdf)
        .arg("-")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    for t in [
        "Packets per second",
        "Capture health",
        "Top talkers",
        "Connection sizes",
    ] {
        assert!(text.contains(t), "report.pdf lacks {t}:\n{text}");
    }
}

#[test]
fn console_mode_writes_the_page_only_when_asked() {
    let d = tmp("viz-console");
    let cap = d.join("in.pcap");
    lossy_capture(&cap, 3);
    let o = bin()
        .current_dir(&d)
        .args(["-r", "in.pcap", "-c"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(o.status.success());
    assert!(!d.join("report.html").exists());
    let o = bin()
        .current_dir(&d)
        .args(["-r", "in.pcap", "-c", "--report-html", "page.html"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let html = std::fs::read_to_string(d.join("page.html")).unwrap();
    assert_eq!(card(&html, "connections"), 3);
}

#[test]
fn spool_export_writes_the_page_with_the_export_counters() {
    let d = tmp("viz-spool");
    let cap = d.join("in.pcap");
    lossy_capture(&cap, 30);
    let spool = d.join("s.spool");
    let out = d.join("out");
    run_ok(&[
        "-q",
        "-r",
        cap.to_str().unwrap(),
        "--spool",
        spool.to_str().unwrap(),
        "--spool-size",
        "1M",
    ]);
    // Spooling writes no page: nothing was asked for and there is no output folder.
    assert!(!d.join("report.html").exists());
    run_ok(&[
        "-q",
        "--spool-export",
        spool.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    let xml = std::fs::read_to_string(out.join("report.xml")).unwrap();
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert_eq!(html_counters(&html), xml_counters(&xml));
    assert_eq!(card(&html, "connections"), 30);
    // Connections 3, 10, 17 and 24 lost 1000 bytes each.
    assert_eq!(card(&html, "bytes missing (gaps)"), 4000);
    // The connections' starts spread over the capture's two seconds: more than one bin.
    assert!(html.contains("<figure id=\"chart-connections\"><svg"));
    let bins: u64 = html
        .split(" bins of ")
        .next()
        .and_then(|s| s.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(bins > 1, "bins {bins}");
}

#[test]
fn report_interval_refreshes_the_page_during_a_live_capture() {
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::time::Duration;

    // Only for a live capture, and only with a page to refresh.
    let o = run(&["-r", "x.pcap", "--report-interval", "1"]);
    assert!(
        stderr(&o).contains("--report-interval applies to a live capture"),
        "{}",
        stderr(&o)
    );
    let o = run(&["-i", "lo", "-c", "--report-interval", "1"]);
    assert!(
        stderr(&o).contains("no report.html to refresh"),
        "{}",
        stderr(&o)
    );

    let d = tmp("viz-interval");
    let out = d.join("out");
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let filter = format!("tcp port {port}");
    let child = bin()
        .args([
            "-i",
            "lo",
            "-o",
            out.to_str().unwrap(),
            "--report-interval",
            "1",
            &filter,
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let (mut s, _) = listener.accept().unwrap();
    c.write_all(b"ping from the client").unwrap();
    let mut buf = [0u8; 20];
    s.read_exact(&mut buf).unwrap();
    drop(c);
    drop(s);
    // Two refreshes at least, while the capture runs.
    std::thread::sleep(Duration::from_millis(2600));
    let during = std::fs::read_to_string(out.join("report.html")).unwrap_or_default();
    // SAFETY: signalling our own child by its id.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) };
    let o = child.wait_with_output().unwrap();
    let e = stderr(&o);
    if e.contains("cannot capture on lo") {
        assert!(
            std::env::var_os("CI").is_none(),
            "no capture rights under CI: {e}"
        );
        eprintln!("no capture rights here: skipped ({e})");
        return;
    }
    assert!(o.status.success(), "{e}");
    assert!(
        during.contains("refreshed during the capture"),
        "no page during the capture"
    );
    assert_eq!(card(&during, "connections"), 1, "{e}");
    assert!(during.ends_with("</html>\n"), "a page is always whole");
    let after = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(!after.contains("refreshed during the capture"));
    let xml = std::fs::read_to_string(out.join("report.xml")).unwrap();
    assert_eq!(html_counters(&after), xml_counters(&xml));
    // No temporary file is left beside it.
    assert!(!out.join(".report.html.tmp").exists());
}

/// The `href`s of the links in `html`, in order.
fn hrefs(html: &str) -> Vec<String> {
    html.split("<a href=\"")
        .skip(1)
        .map(|s| s[..s.find('"').unwrap()].replace("&amp;", "&"))
        .collect()
}

/// The part of `html` from `<table id="ID"` to its end.
fn table<'a>(html: &'a str, id: &str) -> &'a str {
    let t = &html[html
        .find(&format!("<table id=\"{id}\""))
        .unwrap_or_else(|| panic!("no table {id}"))..];
    &t[..t.find("</table>").unwrap()]
}

/// With `-e http` the listed directions link their HTTP body files (the first 4 of each,
/// the rest counted) and the largest objects have a table of their own. In headless
/// Chromium's DOM every such link is there and resolves to a file of the output folder, and
/// the counts are the files on disk: bodies finished on the scanner's worker thread after
/// their direction's record are listed too.
#[test]
fn page_links_http_objects_to_their_files() {
    let d = tmp("viz-http");
    // 150 bodies: most are finished on the worker thread.
    let c = tcpflow_tests::http_workload::capture(25, 6);
    let cap = d.join("http.pcap");
    std::fs::write(&cap, &c.pcap).unwrap();
    let out = d.join("out");
    run_ok(&[
        "-r",
        cap.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "-e",
        "http",
    ]);
    let page = out.join("report.html");
    let html = std::fs::read_to_string(&page).unwrap();
    assert_self_contained(&html);
    let dom = match chromium() {
        Some(chrome) => {
            let (dom, err) = browse(&chrome, &page, &d.join("profile"), &["--dump-dom"]);
            assert!(console_lines(&err).is_empty(), "console:\n{err}");
            dom
        }
        None => {
            assert!(std::env::var_os("CI").is_none(), "chromium not found");
            eprintln!("no chromium: the page's source is checked");
            html.clone()
        }
    };
    let bodies: BTreeMap<String, u64> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_str().unwrap().contains("-HTTPBODY-"))
        .map(|p| {
            let n = p.file_name().unwrap().to_str().unwrap().to_string();
            (n, p.metadata().unwrap().len())
        })
        .collect();
    assert_eq!(bodies.len(), c.bodies);
    let resolves = |l: &str| {
        assert!(!l.contains('/') && out.join(l).is_file(), "{l}");
    };
    let mut linked = 0;
    for id in ["largest", "lossiest"] {
        for row in table(&dom, id).split("<tr>").skip(2) {
            let links = hrefs(row);
            let Some((flow, files)) = links.split_first() else {
                continue;
            };
            resolves(flow);
            let more: usize = row
                .split("+")
                .nth(1)
                .and_then(|s| s.split(" more").next())
                .map_or(0, |n| n.parse().unwrap());
            let on_disk = bodies
                .keys()
                .filter(|b| b.starts_with(&format!("{flow}-HTTPBODY-")))
                .count();
            assert!(files.len() <= 4, "{row}");
            assert_eq!(files.len() + more, on_disk, "{row}");
            for f in files {
                resolves(f);
                assert!(f.starts_with(flow.as_str()), "{f} in the row of {flow}");
            }
            linked += files.len();
        }
    }
    // Responses are the largest directions: 20 rows, most with 4 links.
    assert!(linked >= 40, "{linked} body links");
    // The largest objects: the 20 largest files, each row linking it and its flow.
    let mut by_size: Vec<(&u64, &String)> = bodies.iter().map(|(n, s)| (s, n)).collect();
    by_size.sort_by(|a, b| b.cmp(a));
    let want: std::collections::BTreeSet<&str> =
        by_size.iter().take(20).map(|(_, n)| n.as_str()).collect();
    let mut got = std::collections::BTreeSet::new();
    let objects = table(&dom, "http_objects");
    for row in objects.split("<tr>").skip(2) {
        let links = hrefs(row);
        assert_eq!(links.len(), 2, "{row}");
        links.iter().for_each(|l| resolves(l));
        assert!(row.contains(">200<") && row.contains(">yes<"), "{row}");
        assert!(row.contains(&format!(">{}<", bodies[&links[0]])), "{row}");
        got.insert(links[0].clone());
    }
    let got: std::collections::BTreeSet<&str> = got.iter().map(String::as_str).collect();
    assert_eq!(got, want);
    assert!(dom.contains(&format!("{} bodies carved", c.bodies)));
    std::fs::remove_dir_all(&d).unwrap();
}
