//! Test support for the tcpflow rewrite: a deterministic capture generator (pcap and pcapng
//! writers, frame builders, a TCP conversation scripter), the model of the files a correct tool
//! writes, a small pcap reader and a directory comparison helper.

pub mod cases;
pub mod conn;
pub mod expected;
pub mod link;
pub mod live;
pub mod packet;
pub mod pcap;
pub mod workload;

/// The `tcpflow` command the tests run: `TCPFLOW_BIN`, else the one built beside the test
/// binary (target/<profile>/deps/TEST-HASH -> target/<profile>/tcpflow).
pub fn tcpflow_bin() -> std::path::PathBuf {
    if let Some(p) = std::env::var_os("TCPFLOW_BIN") {
        return p.into();
    }
    let exe = std::env::current_exe().expect("the test's own path");
    let bin = exe
        .parent()
        .and_then(|d| d.parent())
        .expect("target/<profile>/deps")
        .join("tcpflow");
    assert!(
        bin.exists(),
        "{} not built: run `cargo build -p tcpflow` first",
        bin.display()
    );
    bin
}

pub use conn::{make_monotonic, merge_by_time, permute, retime, Conn, LinkOpts, Pkt, Seg};
pub use expected::{endpoint_name, expected_files, flow_name, ExpectedFile};
pub use link::{linktype, Dir, Link, Vlan};
pub use packet::Ext;

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

/// Files in the root of `actual` that `compare_dirs` never reports as extra.
pub const IGNORED_ACTUAL: &[&str] = &["report.xml", "report.json", "report.html"];

fn list_files(root: &Path) -> Result<BTreeSet<PathBuf>, String> {
    fn walk(root: &Path, rel: &Path, out: &mut BTreeSet<PathBuf>) -> Result<(), String> {
        let dir = root.join(rel);
        let rd = fs::read_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        for ent in rd {
            let ent = ent.map_err(|e| format!("{}: {e}", dir.display()))?;
            let r = rel.join(ent.file_name());
            let ft = ent
                .file_type()
                .map_err(|e| format!("{}: {e}", r.display()))?;
            if ft.is_dir() {
                walk(root, &r, out)?;
            } else {
                out.insert(r);
            }
        }
        Ok(())
    }
    let mut out = BTreeSet::new();
    walk(root, Path::new(""), &mut out)?;
    Ok(out)
}

/// Compares every file under `expected` with the file of the same relative path under
/// `actual`, byte for byte. Reports files missing from `actual`, extra files in `actual`
/// (except `report.xml` and `report.json` at its root) and files that differ (with the first
/// differing offset). `Ok(())` when they match.
pub fn compare_dirs(expected: &Path, actual: &Path) -> Result<(), String> {
    let exp = list_files(expected)?;
    let act = list_files(actual)?;
    let mut problems = Vec::new();
    for f in &exp {
        if !act.contains(f) {
            problems.push(format!("missing: {}", f.display()));
            continue;
        }
        let a = fs::read(expected.join(f)).map_err(|e| format!("{}: {e}", f.display()))?;
        let b = fs::read(actual.join(f)).map_err(|e| format!("{}: {e}", f.display()))?;
        if a != b {
            let first = a
                .iter()
                .zip(&b)
                .position(|(x, y)| x != y)
                .unwrap_or(a.len().min(b.len()));
            let show = |v: &[u8]| {
                v.get(first)
                    .map_or("end of file".to_string(), |b| format!("{b:#04x}"))
            };
            problems.push(format!(
                "different: {} (expected {} bytes, got {}; first difference at offset {first}: expected {}, got {})",
                f.display(),
                a.len(),
                b.len(),
                show(&a),
                show(&b)
            ));
        }
    }
    for f in act.difference(&exp) {
        let top_ignored =
            f.parent() == Some(Path::new("")) && IGNORED_ACTUAL.iter().any(|n| f.as_os_str() == *n);
        if !top_ignored {
            problems.push(format!("extra: {}", f.display()));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("\n"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("tcpflow-tests-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn compare_dirs_reports() {
        let e = tmp("exp");
        let a = tmp("act");
        fs::write(e.join("same"), b"abc").unwrap();
        fs::write(a.join("same"), b"abc").unwrap();
        fs::write(a.join("report.xml"), b"<x/>").unwrap();
        assert_eq!(compare_dirs(&e, &a), Ok(()));
        fs::write(e.join("diff"), b"abcd").unwrap();
        fs::write(a.join("diff"), b"abXd").unwrap();
        fs::write(e.join("gone"), b"1").unwrap();
        fs::write(a.join("more"), b"1").unwrap();
        fs::write(e.join("short"), b"123").unwrap();
        fs::write(a.join("short"), b"12").unwrap();
        let err = compare_dirs(&e, &a).unwrap_err();
        assert!(err.contains("missing: gone"), "{err}");
        assert!(err.contains("extra: more"), "{err}");
        assert!(
            err.contains("different: diff") && err.contains("offset 2"),
            "{err}"
        );
        assert!(
            err.contains("different: short") && err.contains("offset 2"),
            "{err}"
        );
        assert!(!err.contains("report.xml"));
        fs::remove_dir_all(&e).unwrap();
        fs::remove_dir_all(&a).unwrap();
    }
}
