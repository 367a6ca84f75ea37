//! The binary on every case of `testdata/`: the output folder must hold exactly the expected
//! files, byte for byte (report files aside).

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::*;

/// Every file under `dir`, by path relative to it.
fn tree(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    fn walk(root: &Path, d: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
        for e in std::fs::read_dir(d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                out.insert(
                    p.strip_prefix(root).unwrap().to_path_buf(),
                    std::fs::read(&p).unwrap(),
                );
            }
        }
    }
    let mut m = BTreeMap::new();
    if dir.exists() {
        walk(dir, dir, &mut m);
    }
    m
}

#[test]
fn every_testdata_case() {
    let Some(cases) = tcpflow_tests::testdata_cases() else {
        return;
    };
    let mut ran = tcpflow_tests::Cases::new("testdata cases through the command");
    let work = tmp("testdata");
    let mut failures = Vec::new();
    for case in &cases {
        let name = case.file_name().unwrap().to_string_lossy().into_owned();
        let input = ["input.pcap", "input.pcapng"]
            .iter()
            .map(|f| case.join(f))
            .find(|p| p.exists())
            .unwrap();
        ran.ran();
        let out = work.join(&name);
        let o = run(&[
            "-q",
            "--no-report",
            "-r",
            input.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ]);
        if o.status.code() != Some(0) {
            failures.push(format!(
                "{name}: exit {:?}: {}",
                o.status.code(),
                stderr(&o)
            ));
            continue;
        }
        let want = tree(&case.join("expected"));
        let got = tree(&out);
        if want != got {
            let names = |t: &BTreeMap<PathBuf, Vec<u8>>| {
                t.keys()
                    .map(|k| k.display().to_string())
                    .collect::<Vec<_>>()
            };
            let differing: Vec<String> = want
                .iter()
                .filter(|(k, v)| got.get(*k) != Some(*v))
                .map(|(k, v)| {
                    format!(
                        "{} ({} bytes, got {:?})",
                        k.display(),
                        v.len(),
                        got.get(k).map(|g| g.len())
                    )
                })
                .collect();
            failures.push(format!(
                "{name}: expected {:?}, got {:?}; differing: {differing:?}",
                names(&want),
                names(&got)
            ));
        }
    }
    std::fs::remove_dir_all(&work).unwrap();
    ran.done(tcpflow_tests::testdata_count());
    assert!(
        failures.is_empty(),
        "{} of {} cases differ:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}
