//! Test support for the tcpflow rewrite: a deterministic capture generator (pcap and pcapng
//! writers, frame builders, a TCP conversation scripter), the model of the files a correct tool
//! writes, a small pcap reader and a directory comparison helper.

pub mod browser;
pub mod cases;
pub mod conn;
pub mod expected;
pub mod http_cases;
pub mod http_workload;
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

/// For a test that cannot run its check here (no testdata, not root, no capture rights, a
/// tool missing): under CI (`CI` set, as `.ci/run` sets it) that is a failure, with the
/// reason, for a test that checked nothing must not pass there; by hand the test skips,
/// printing why. The caller returns after it.
#[track_caller]
pub fn cannot_run(why: impl std::fmt::Display) {
    if std::env::var_os("CI").is_some() {
        panic!("this test cannot run its check under CI: {why}");
    }
    eprintln!("SKIPPED, nothing checked: {why}");
}

/// Counts the cases a test ran, so that one which ran none (or fewer than it should) fails
/// instead of passing empty, and says how many it ran.
#[derive(Debug)]
pub struct Cases {
    what: &'static str,
    ran: usize,
}

impl Cases {
    pub fn new(what: &'static str) -> Self {
        Cases { what, ran: 0 }
    }

    /// One more case checked.
    pub fn ran(&mut self) {
        self.ran += 1;
    }

    pub fn count(&self) -> usize {
        self.ran
    }

    /// Prints the count; fails when fewer than `min` cases ran.
    #[track_caller]
    pub fn done(self, min: usize) -> usize {
        eprintln!("{}: {} cases ran", self.what, self.ran);
        assert!(
            self.ran >= min,
            "{}: {} cases ran, expected at least {min}",
            self.what,
            self.ran
        );
        self.ran
    }
}

/// The project's testdata/ folder (beside this crate).
pub fn testdata_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata")
}

/// Every testdata case (a folder with an `expected/` folder), sorted; `None` after
/// [`cannot_run`] when testdata/ cannot be read (a failure under CI).
pub fn testdata_cases() -> Option<Vec<PathBuf>> {
    let root = testdata_root();
    let entries = match fs::read_dir(&root) {
        Ok(e) => e,
        Err(e) => {
            cannot_run(format_args!("{}: {e}", root.display()));
            return None;
        }
    };
    let mut cases: Vec<PathBuf> = entries
        .map(|e| e.expect("a testdata entry").path())
        .filter(|p| p.join("expected").is_dir())
        .collect();
    cases.sort();
    Some(cases)
}

/// Number of testdata cases: the generator's (`cases::all`). A test over testdata/ that ran
/// fewer has lost some ([`Cases::done`]).
pub fn testdata_count() -> usize {
    cases::all().len()
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
    fn cases_fail_when_too_few_ran() {
        let mut c = Cases::new("unit");
        c.ran();
        c.ran();
        assert_eq!(c.count(), 2);
        let short = std::panic::catch_unwind(|| Cases::new("none ran").done(1));
        assert!(short.is_err(), "a test that ran no case must fail");
        assert_eq!(c.done(2), 2);
    }

    /// Under CI a test that cannot run fails; by hand it returns (and the caller skips). The
    /// only test of this crate's library that touches `CI`.
    #[test]
    fn cannot_run_fails_under_ci_only() {
        let saved = std::env::var_os("CI");
        std::env::set_var("CI", "1");
        let under_ci = std::panic::catch_unwind(|| cannot_run("unit test"));
        std::env::remove_var("CI");
        let by_hand = std::panic::catch_unwind(|| cannot_run("unit test"));
        if let Some(v) = saved {
            std::env::set_var("CI", v);
        }
        assert!(under_ci.is_err(), "must fail under CI");
        assert!(by_hand.is_ok(), "may skip by hand");
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
