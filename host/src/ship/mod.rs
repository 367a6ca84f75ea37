//! A fleet of taps: spool segments shipped to S3-compatible object storage (`--ship URL`), and
//! exported from the bucket (`--spool-export s3://...`, `--spool-summary s3://...`).
//!
//! - [`sigv4`], [`config`], [`client`]: a small synchronous S3 client (SigV4, credentials and
//!   endpoint found as the AWS tools find them, ureq with rustls).
//! - [`shipper`]: the thread that uploads sealed segments during a capture, and its progress
//!   file beside the spool.
//! - [`fetch`]: the analysis side: a tap's objects are assembled into a spool image in a
//!   temporary file, which the local export ([`crate::spoolcmd`]) then reads, so an export
//!   from the bucket writes what an export of the tap's spool writes, byte for byte.

pub mod client;
pub mod config;
pub mod fetch;
pub mod http;
pub mod segment;
pub mod shipper;
pub mod sigv4;

use std::path::{Path, PathBuf};
use std::time::Duration;

use config::S3Url;

/// `--ship URL` and its settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShipOpts {
    pub url: S3Url,
    /// `--tap-id` (default: the host name).
    pub tap: String,
    /// `--ship-wait`: how long the end of a capture keeps trying to ship what is left.
    pub wait: Duration,
}

/// Default `--ship-wait`.
pub const DEFAULT_SHIP_WAIT: u64 = 30;

impl ShipOpts {
    /// From the flags: `url` given, `tap` and `wait` optional.
    pub fn new(url: &str, tap: Option<&str>, wait: Option<u64>) -> Result<ShipOpts, String> {
        let url = S3Url::parse(url).map_err(|e| format!("--ship {e}"))?;
        let tap = match tap {
            Some(t) => t.to_string(),
            None => shipper::default_tap_id(),
        };
        shipper::check_tap_id(&tap)?;
        Ok(ShipOpts {
            url,
            tap,
            wait: Duration::from_secs(wait.unwrap_or(DEFAULT_SHIP_WAIT)),
        })
    }
}

/// Whether `p` names a bucket (`s3://...`) rather than a spool file.
pub fn is_url(p: &Path) -> bool {
    p.to_str().is_some_and(|s| s.starts_with("s3://"))
}

/// Starts shipping the spool at `spool` (geometry from its storage) during a capture.
pub fn start(
    o: &ShipOpts,
    spool: &Path,
    segment_size: u32,
    segment_count: u32,
    quiet: bool,
) -> Result<shipper::Shipper, String> {
    let cfg = config::from_env().map_err(|e| format!("--ship: {e}"))?;
    let client = client::Client::new(cfg, &o.url.bucket).map_err(|e| format!("--ship: {e}"))?;
    shipper::Shipper::start(
        shipper::Spec {
            url: o.url.clone(),
            tap: o.tap.clone(),
            spool: spool.to_path_buf(),
            segment_size,
            segment_count,
            quiet,
        },
        client,
    )
}

/// Whether a writer holds the spool at `path` (its lock, see [`crate::spool`]).
fn writer_active(path: &Path) -> bool {
    use std::os::fd::AsRawFd;
    let Ok(f) = std::fs::File::open(path) else {
        return false;
    };
    // SAFETY: flock on a descriptor we own; a shared lock taken is released at once (a
    // writer starting now must not find the spool locked).
    unsafe {
        if libc::flock(f.as_raw_fd(), libc::LOCK_SH | libc::LOCK_NB) != 0 {
            return true;
        }
        libc::flock(f.as_raw_fd(), libc::LOCK_UN);
    }
    false
}

/// `--spool-ship PATH --ship URL`: ships a spool another process writes (or wrote). Follows
/// it while a writer holds it; once none does, ships everything and exits (status 1 if
/// something could not be shipped within `--ship-wait`).
pub fn ship_spool(o: &crate::cli::Options) -> Result<i32, String> {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use tcpflow_core::spool::SpoolStorage;
    let (Some(path), Some(sh)) = (&o.spool_ship, &o.ship) else {
        return Err("--spool-ship needs --ship".into());
    };
    let (seg, count) = {
        let st = crate::spool::open_for_reading(path)?;
        (st.segment_size(), st.segment_count())
    };
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, stop.clone())
            .map_err(|e| format!("cannot install signal handler: {e}"))?;
    }
    let shipper = start(sh, path, seg, count, o.quiet)?;
    let all = loop {
        if stop.load(Ordering::SeqCst) {
            break false;
        }
        if !writer_active(path) {
            break true;
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    let st = shipper.finish(sh.wait, all);
    let (line, ok) = summary_line(sh, &st);
    if !o.quiet || !ok {
        eprintln!("{line}");
    }
    Ok(if ok { 0 } else { 1 })
}

/// The summary line of a capture's shipping, and whether everything reached the store.
pub fn summary_line(o: &ShipOpts, s: &shipper::ShipStats) -> (String, bool) {
    let mut line = format!(
        "tcpflow: shipped to {}/{}/{}: {} segments ({}), {} dropped before shipping",
        o.url,
        o.tap,
        s.spool_id,
        s.segments,
        crate::spool::fmt_size(s.bytes),
        s.dropped
    );
    let ok = s.pending == 0;
    if !ok {
        line.push_str(&format!(
            "; {} segments not shipped yet (they stay in the spool and ship on the next run){}",
            s.pending,
            s.last_error
                .as_ref()
                .map_or(String::new(), |e| format!(": {e}"))
        ));
    }
    (line, ok)
}

/// The report's `ship` group.
pub fn report_group(s: &shipper::ShipStats) -> crate::report::Group {
    (
        "ship",
        vec![
            ("segments_shipped", s.segments),
            ("bytes_shipped", s.bytes),
            ("dropped_before_shipping", s.dropped),
            ("segments_not_shipped", s.pending),
            ("failed_requests", s.failures),
        ],
    )
}

/// A temporary directory removed when dropped.
pub(crate) struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(what: &str) -> Result<TempDir, String> {
        let base = std::env::temp_dir();
        for n in 0..1000u32 {
            let p = base.join(format!("tcpflow-{what}-{}-{n}", std::process::id()));
            match std::fs::create_dir(&p) {
                Ok(()) => return Ok(TempDir(p)),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => {
                    return Err(format!(
                        "cannot create a directory in {}: {e}",
                        base.display()
                    ))
                }
            }
        }
        Err(format!("cannot create a directory in {}", base.display()))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
