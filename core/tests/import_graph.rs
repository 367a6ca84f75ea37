//! The core's modules depend on each other one way: no circle among them.
//!
//! Each top-level module (a file of `core/src`, or a directory of them taken as one) is a
//! node; it depends on the modules its code names as `crate::module`, and on the module a
//! root re-export comes from when it names `crate::Item`. Comments (doc links included) and
//! the test modules (`#[cfg(test)]` onwards, and files only compiled for tests) do not count:
//! they cost nothing to the layering. Run with `cargo test -p tcpflow-core --test import_graph`.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;

/// Files compiled only for tests.
const TEST_FILES: &[&str] = &[
    "tests.rs",
    "proptests.rs",
    "testutil.rs",
    "decode/testutil.rs",
    "spool/tests.rs",
    "spool/mock.rs",
];

/// The code of a file, without comments, from its first `#[cfg(test)]` on left out.
fn code(text: &str) -> String {
    let mut out = String::new();
    for line in text.lines() {
        let t = line.trim_start();
        if t.starts_with("#[cfg(test)]") {
            break;
        }
        if t.starts_with("//") {
            continue;
        }
        // A trailing comment: cut at `//` outside a string (good enough for this code base,
        // whose strings hold no `crate::`).
        let line = match line.find("//") {
            Some(i) if !line[..i].contains('"') => &line[..i],
            _ => line,
        };
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// Every identifier that follows `crate::` in `code`, including each name of a
/// `crate::{a, b::c}` group.
fn crate_paths(code: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = code;
    while let Some(i) = rest.find("crate::") {
        rest = &rest[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for part in group[..end].split(',') {
                let name: String = part
                    .trim()
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() {
                    names.push(name);
                }
            }
        } else {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            names.push(name);
        }
    }
    names
}

/// The module a name of the crate root is: itself, or where `lib.rs` re-exports it from.
fn reexports(lib: &str) -> BTreeMap<String, String> {
    let mut map = BTreeMap::new();
    for stmt in code(lib).split(';') {
        let stmt = stmt.trim();
        let Some(rest) = stmt.strip_prefix("pub use ") else {
            continue;
        };
        let Some((module, items)) = rest.split_once("::") else {
            continue;
        };
        for item in items.trim_matches(|c| c == '{' || c == '}').split(',') {
            let item = item.trim();
            if !item.is_empty() {
                map.insert(item.to_string(), module.trim().to_string());
            }
        }
    }
    map
}

fn graph(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let lib = fs::read_to_string(src.join("lib.rs")).expect("lib.rs");
    let root = reexports(&lib);
    let mut files = Vec::new();
    for entry in fs::read_dir(src).expect("core/src") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            for sub in fs::read_dir(&path).expect("module directory") {
                files.push(sub.expect("entry").path());
            }
        } else {
            files.push(path);
        }
    }
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for path in files {
        let rel = path.strip_prefix(src).expect("under src");
        let rel_s = rel.to_string_lossy().replace('\\', "/");
        if !rel_s.ends_with(".rs") || rel_s == "lib.rs" || TEST_FILES.contains(&rel_s.as_str()) {
            continue;
        }
        let module = rel_s
            .split('/')
            .next()
            .expect("a path")
            .trim_end_matches(".rs")
            .to_string();
        let text = fs::read_to_string(&path).expect("source file");
        let deps = graph.entry(module.clone()).or_default();
        for name in crate_paths(&code(&text)) {
            let target = root.get(&name).cloned().unwrap_or(name);
            if target != module {
                deps.insert(target);
            }
        }
    }
    graph
}

/// A circle in `g`, if there is one, as the modules along it.
fn find_cycle(g: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        n: &str,
        g: &BTreeMap<String, BTreeSet<String>>,
        state: &mut BTreeMap<String, u8>,
        path: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        match state.get(n) {
            Some(2) => return None,
            Some(1) => {
                let start = path.iter().position(|p| p == n).unwrap_or(0);
                let mut cycle = path[start..].to_vec();
                cycle.push(n.to_string());
                return Some(cycle);
            }
            _ => {}
        }
        state.insert(n.to_string(), 1);
        path.push(n.to_string());
        for d in g.get(n).into_iter().flatten() {
            if let Some(c) = visit(d, g, state, path) {
                return Some(c);
            }
        }
        path.pop();
        state.insert(n.to_string(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for n in g.keys() {
        if let Some(c) = visit(n, g, &mut state, &mut Vec::new()) {
            return Some(c);
        }
    }
    None
}

#[test]
fn no_circle_among_core_modules() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let g = graph(&src);
    for (m, deps) in &g {
        println!(
            "{m} -> {}",
            deps.iter().cloned().collect::<Vec<_>>().join(", ")
        );
    }
    assert!(g.contains_key("engine") && g["engine"].contains("decode"));
    if let Some(c) = find_cycle(&g) {
        panic!("import circle: {}", c.join(" -> "));
    }
}

#[test]
fn the_check_finds_a_circle() {
    let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    g.entry("a".into()).or_default().insert("b".into());
    g.entry("b".into()).or_default().insert("c".into());
    g.entry("c".into()).or_default().insert("a".into());
    assert_eq!(
        find_cycle(&g),
        Some(vec!["a".into(), "b".into(), "c".into(), "a".into()])
    );
    g.get_mut("c").unwrap().clear();
    assert_eq!(find_cycle(&g), None);
    // Paths in a group, re-exports and comments.
    let code = code("use crate::{a::X, b};\n// crate::z\nfn f() { crate::c::g(); } // crate::y\n");
    assert_eq!(crate_paths(&code), vec!["a", "b", "c"]);
    let root = reexports("pub mod a;\npub use a::{X, Y};\npub use b::Z;\n");
    assert_eq!(root.get("Y").map(String::as_str), Some("a"));
    assert_eq!(root.get("Z").map(String::as_str), Some("b"));
}
