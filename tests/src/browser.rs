//! A real browser for the report.html tests: headless Chromium with the network off.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Chromium on `PATH`, under any of its usual names.
pub fn chromium() -> Option<PathBuf> {
    let paths = std::env::var_os("PATH")?;
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .find_map(|n| {
            std::env::split_paths(&paths)
                .map(|p| p.join(n))
                .find(|p| p.is_file())
        })
}

/// Runs headless Chromium on the file `page` with the network off (a proxy that refuses,
/// and no name resolves), its profile in `profile`, with `extra` arguments (`--dump-dom`,
/// `--screenshot=...`); returns its stdout and stderr. Panics when it fails.
pub fn browse(chrome: &Path, page: &Path, profile: &Path, extra: &[&str]) -> (String, String) {
    let o = Command::new(chrome)
        .args([
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--proxy-server=127.0.0.1:9",
            "--host-resolver-rules=MAP * ~NOTFOUND",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(extra)
        .arg(format!("file://{}", page.canonicalize().unwrap().display()))
        .stdin(Stdio::null())
        .output()
        .expect("running chromium");
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(o.status.success(), "chromium: {err}");
    (String::from_utf8_lossy(&o.stdout).into_owned(), err)
}

/// The console messages Chromium logged (its own D-Bus complaints are not the page's).
pub fn console_lines(err: &str) -> Vec<&str> {
    err.lines().filter(|l| l.contains("CONSOLE")).collect()
}
