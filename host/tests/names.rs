//! The set of file names used is bounded (`--max-names`): past it the names are forgotten
//! into a filter and found again in the output folder, so the files are the same as with room
//! for every name.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use common::*;

const CONNECTIONS: u32 = 200;

fn request(k: u32) -> Vec<u8> {
    format!("request {k}\n").into_bytes()
}

/// Three clients that connect again and again: with two flow records the engine forgets
/// a client between its connections and starts its count again, so the names collide and the
/// command counts them up (`c1`, `c2`, ...).
fn capture(path: &Path) {
    let mut p = Pcap::new();
    for k in 0..CONNECTIONS {
        let resp = format!("response {k}\n");
        p.conversation(
            1_000_000 + u64::from(k) * 1_000,
            client(k % 3),
            server(),
            k * 100_000,
            k * 100_000 + 7,
            &request(k),
            resp.as_bytes(),
            1460,
        );
    }
    p.write(path);
}

/// The flow files under `dir` (the report left out) and their bytes.
fn files(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            !["report.xml", "report.html"].contains(&p.file_name().unwrap().to_str().unwrap())
        })
        .map(|p| {
            (
                p.strip_prefix(dir).unwrap().to_path_buf(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect()
}

fn tcpflow(cap: &Path, out: &Path, max_names: &str) -> String {
    let o = bin()
        .args(["-q", "--max-flows", "2", "--max-names", max_names, "-r"])
        .arg(cap)
        .arg("-o")
        .arg(out)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    std::fs::read_to_string(out.join("report.xml")).unwrap()
}

#[test]
fn forgotten_names_give_the_same_files() {
    let d = tmp("names");
    let cap = d.join("c.pcap");
    capture(&cap);

    let all = d.join("all");
    let report = tcpflow(&cap, &all, "1000000");
    assert_eq!(counter(&report, "name_set_forgets"), 0);
    let want = files(&all);
    assert_eq!(want.len(), 2 * CONNECTIONS as usize, "a file per direction");
    assert!(
        want.keys().any(|n| n.to_str().unwrap().ends_with("c1")),
        "the names collided: {:?}",
        want.keys().take(8).collect::<Vec<_>>()
    );

    // Room for 40 names: forgotten about every 40 directions into a filter of 1,280 bits,
    // which rules out most new names; for 4: every 4 directions, and the filter of 128 bits
    // is soon full, so that every name is looked up in the folder.
    for (max, forgets) in [("40", 5), ("4", 50)] {
        let few = d.join(format!("max{max}"));
        let report = tcpflow(&cap, &few, max);
        assert!(counter(&report, "name_set_forgets") >= forgets, "{report}");
        assert!(counter(&report, "names_found_in_folder") > 0, "{report}");
        assert_eq!(files(&few), want, "--max-names {max}");
    }

    // A file of an older run where a late connection's file would go is kept, not
    // overwritten, when its name is looked up in the folder (here: the filter is full); that
    // direction takes the next free name.
    let last = request(CONNECTIONS - 1);
    let (taken, _) = want.iter().find(|(_, b)| **b == last).unwrap();
    let older = d.join("older");
    std::fs::create_dir_all(&older).unwrap();
    std::fs::write(older.join(taken), b"older run\n").unwrap();
    tcpflow(&cap, &older, "4");
    let got = files(&older);
    assert_eq!(got[taken], b"older run\n");
    assert_eq!(got.len(), want.len() + 1);
    assert_eq!(got.values().filter(|b| **b == last).count(), 1);
    for (name, bytes) in &want {
        if name != taken && *bytes != last {
            assert_eq!(got.get(name), Some(bytes), "{}", name.display());
        }
    }
    std::fs::remove_dir_all(&d).unwrap();
}

/// `-T report.xml` names flows like the report: the flows take the next `cN` and the
/// report stays whole, however the report is named.
#[test]
fn a_flow_named_like_the_report_does_not_overwrite_it() {
    let d = tmp("tplreport");
    let input = Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/basic/input.pcap");
    let expected = Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/basic/expected");
    let mut want: Vec<Vec<u8>> = std::fs::read_dir(&expected)
        .unwrap()
        .map(|e| std::fs::read(e.unwrap().path()).unwrap())
        .collect();
    want.sort();
    let out = d.join("out");
    let json = out.join("r.json");
    for (tpl, extra) in [
        ("report.xml", vec![]),
        ("r.json", vec!["--report-json", json.to_str().unwrap()]),
    ] {
        let _ = std::fs::remove_dir_all(&out);
        let mut args = vec![
            "-q",
            "-r",
            input.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
            "-T",
            tpl,
        ];
        args.extend(extra);
        let o = run(&args);
        assert_eq!(o.status.code(), Some(0), "{tpl}: {}", stderr(&o));
        let xml = std::fs::read_to_string(out.join("report.xml")).unwrap();
        assert!(xml.trim_end().ends_with("</dfxml>"), "{tpl}: report lost");
        if out.join("r.json").exists() {
            let j = std::fs::read_to_string(&json).unwrap();
            assert!(
                j.lines().all(|l| l.starts_with('{')),
                "{tpl}: JSON report lost"
            );
        }
        let mut got: Vec<Vec<u8>> = std::fs::read_dir(&out)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| {
                !["report.xml", "report.html", "r.json"]
                    .contains(&p.file_name().unwrap().to_str().unwrap())
            })
            .map(|p| std::fs::read(p).unwrap())
            .collect();
        got.sort();
        let sizes = |v: &[Vec<u8>]| v.iter().map(Vec::len).collect::<Vec<_>>();
        assert!(
            got == want,
            "{tpl}: flow files lost: sizes {:?}, want {:?}",
            sizes(&got),
            sizes(&want)
        );
    }
    std::fs::remove_dir_all(&d).unwrap();
}
