//! The generator is deterministic, its captures parse, and testdata/ is up to date.

use std::path::Path;

use tcpflow_tests::cases::{self, Case};
use tcpflow_tests::pcap::read_capture;

fn render(cases: &[Case]) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for c in cases {
        out.push((format!("{}/{}", c.name, c.input_name()), c.capture()));
        for f in c.expected() {
            out.push((format!("{}/expected/{}", c.name, f.name), f.data));
        }
    }
    out.push(("README.md".into(), cases::readme(cases).into_bytes()));
    out
}

#[test]
fn deterministic() {
    assert_eq!(render(&cases::all()), render(&cases::all()));
}

#[test]
fn captures_parse_back() {
    for c in cases::all() {
        let cap = read_capture(&c.capture()).unwrap_or_else(|e| panic!("{}: {e}", c.name));
        assert_eq!(cap.linktype, c.linktype, "{}", c.name);
        assert_eq!(cap.records.len(), c.pkts.len(), "{}", c.name);
        for (r, p) in cap.records.iter().zip(&c.pkts) {
            let f = p.frame();
            assert_eq!(r.orig_len as usize, f.len());
            assert_eq!(r.data[..], f[..f.len().min(c.snaplen as usize)]);
            assert_eq!(r.ts_ns, p.ts_us * 1000);
        }
        assert!(
            cap.records.windows(2).all(|w| w[0].ts_ns < w[1].ts_ns),
            "{}: timestamps increase",
            c.name
        );
    }
}

#[test]
fn testdata_is_up_to_date() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata");
    let stale: Vec<String> = render(&cases::all())
        .into_iter()
        .filter(|(rel, data)| std::fs::read(root.join(rel)).ok().as_ref() != Some(data))
        .map(|(rel, _)| rel)
        .collect();
    assert!(
        stale.is_empty(),
        "testdata/ differs from the generator in {stale:?}: run `cargo run -p tcpflow-tests --bin gen-testdata`"
    );
    for c in cases::all() {
        let dir = root.join(c.name);
        let exp = tempdir_with(&c);
        tcpflow_tests::compare_dirs(&exp, &dir.join("expected"))
            .unwrap_or_else(|e| panic!("{}: {e}", c.name));
        std::fs::remove_dir_all(&exp).unwrap();
    }
}

/// The expected files of `c` in a fresh temporary folder (checks for stale extra files).
fn tempdir_with(c: &Case) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!(
        "tcpflow-tests-exp-{}-{}",
        std::process::id(),
        c.name
    ));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    for f in c.expected() {
        std::fs::write(d.join(&f.name), &f.data).unwrap();
    }
    d
}
