//! The shipper: a thread that uploads each sealed spool segment as one object,
//! `URL/<tap id>/<spool id>/<sequence number, 20 digits>`, and remembers how far it got.
//!
//! ## Which segments, when
//! The spool writer fills segments strictly round robin, so the segment with the highest
//! sequence number on storage is the one being written and every other is sealed (the writer
//! flushes a segment's tail before it starts the next). A writer that starts on a used spool
//! continues in a new segment, so the last segment of a run is sealed too: when the capture
//! ends, the shipper ships everything. It reads the spool file through its own descriptor and
//! the capture never waits for it: no lock, no queue, nothing shared but the file.
//!
//! ## The ring and shipping
//! Shipping goes in sequence order, so the shipped segments are always the oldest ones, and
//! the oldest segment is the one the ring reuses next. The ring therefore overwrites shipped
//! segments while there are any (its room), and overwrites an unshipped one only when every
//! segment is unshipped: the store has been unreachable for a whole lap. Those segments are
//! counted as "dropped before shipping" (found as a jump in the sequence numbers, so nothing
//! is missed however long the store was away), kept in the progress file and reported; the
//! export from the bucket names the missing sequence numbers. A segment read while the ring
//! overwrites it is detected (its header changed after the read) and counted the same way.
//!
//! ## Progress
//! `SPOOL.ship` beside the spool holds the spool id, the URL and the last sequence number
//! shipped, rewritten atomically (temporary file, fsync, rename, fsync of the directory)
//! after each upload. A power cut loses at most the record of the last upload, which is
//! then made again: same key, same bytes, so the bucket never holds a duplicate.
//! The spool id is new when the spool is (another file, or a spool started again: its
//! sequence numbers went back), so a new spool's segments never overwrite an old one's.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::client::{Backoff, Client, S3Error};
use super::config::S3Url;
use super::segment;

/// How often the shipper looks for newly sealed segments.
const POLL: Duration = Duration::from_millis(500);
/// Retry delays after a failed request: from 0.5 s, doubling up to 30 s.
const FIRST_RETRY: Duration = Duration::from_millis(500);
const MAX_RETRY: Duration = Duration::from_secs(30);

/// The object key of segment `seq` of spool `spool_id` of tap `tap` under `url`.
pub fn object_key(url: &S3Url, tap: &str, spool_id: &str, seq: u64) -> String {
    url.key(&format!("{tap}/{spool_id}/{seq:020}"))
}

/// `--tap-id` default: the host name.
pub fn default_tap_id() -> String {
    let mut b = [0u8; 256];
    // SAFETY: gethostname writes at most b.len() bytes into a buffer we own.
    let r = unsafe { libc::gethostname(b.as_mut_ptr().cast(), b.len()) };
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    let name = if r == 0 {
        String::from_utf8_lossy(&b[..end]).into_owned()
    } else {
        String::new()
    };
    if name.is_empty() {
        "tap".into()
    } else {
        name
    }
}

/// Checks a tap id: one path component of an object key.
pub fn check_tap_id(t: &str) -> Result<(), String> {
    let ok = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    if t.is_empty() || t.len() > 128 || !t.chars().all(ok) || t == "." || t == ".." {
        return Err(format!(
            "--tap-id {t:?}: use 1 to 128 letters, digits, '-', '_' or '.'"
        ));
    }
    Ok(())
}

/// What `SPOOL.ship` records.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Progress {
    pub spool_id: String,
    pub url: String,
    /// Every segment up to this sequence number is shipped or was dropped before shipping.
    /// `None`: nothing looked at yet (the oldest segment present is the first to ship).
    pub shipped: Option<u64>,
    /// Segments the ring overwrote before they could be shipped, over the spool's life.
    pub dropped: u64,
    /// The spool file's inode: another file is another spool.
    pub inode: u64,
}

impl Progress {
    fn parse(text: &str) -> Progress {
        let mut p = Progress::default();
        for line in text.lines() {
            let Some((k, v)) = line.split_once('=') else {
                continue;
            };
            match k.trim() {
                "spool_id" => p.spool_id = v.trim().to_string(),
                "url" => p.url = v.trim().to_string(),
                "shipped" => p.shipped = v.trim().parse().ok(),
                "dropped_before_shipping" => p.dropped = v.trim().parse().unwrap_or(0),
                "inode" => p.inode = v.trim().parse().unwrap_or(0),
                _ => {}
            }
        }
        p
    }

    fn text(&self) -> String {
        format!(
            "# tcpflow: how far the spool beside this file is shipped (rewritten by tcpflow)\nspool_id={}\nurl={}\n{}dropped_before_shipping={}\ninode={}\n",
            self.spool_id,
            self.url,
            self.shipped.map_or(String::new(), |s| format!("shipped={s}\n")),
            self.dropped,
            self.inode
        )
    }
}

/// `SPOOL.ship`: where the progress of the spool at `spool` is kept.
pub fn progress_path(spool: &Path) -> PathBuf {
    let mut s = spool.as_os_str().to_owned();
    s.push(".ship");
    PathBuf::from(s)
}

/// Reads the progress file, if there is one.
pub fn load_progress(spool: &Path) -> Option<Progress> {
    std::fs::read_to_string(progress_path(spool))
        .ok()
        .map(|t| Progress::parse(&t))
}

fn save_progress(spool: &Path, p: &Progress) -> io::Result<()> {
    let path = progress_path(spool);
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)?;
        f.write_all(p.text().as_bytes())?;
        f.sync_data()?;
    }
    std::fs::rename(&tmp, &path)?;
    if let Some(dir) = path.parent() {
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

/// A new spool id: the UTC time and the process id, so a bucket lists a tap's spools in the
/// order they were started.
fn new_spool_id() -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let d = super::sigv4::amz_date(now);
    format!("{d}-{:x}", std::process::id())
}

/// Counters, for the summary line and the report.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ShipStats {
    /// Segments uploaded by this run, and their bytes.
    pub segments: u64,
    pub bytes: u64,
    /// Dropped before shipping, over the spool's life.
    pub dropped: u64,
    /// Sealed segments left unshipped at the end.
    pub pending: u64,
    /// Failed requests (each retried).
    pub failures: u64,
    /// The last error, when the store was failing at the end.
    pub last_error: Option<String>,
    pub spool_id: String,
}

/// What to ship where.
#[derive(Clone, Debug)]
pub struct Spec {
    pub url: S3Url,
    pub tap: String,
    pub spool: PathBuf,
    pub segment_size: u32,
    pub segment_count: u32,
    /// Print progress and errors (errors are printed unless `quiet`).
    pub quiet: bool,
}

struct Shared {
    /// Ship everything, including the newest segment: the writer is done.
    last: AtomicBool,
    /// Return once nothing shippable is left (or at the deadline).
    stopping: AtomicBool,
    /// Give up retrying at this moment (set with `stopping`).
    deadline: Mutex<Option<Instant>>,
    wake: Condvar,
    stats: Mutex<ShipStats>,
}

impl Shared {
    /// Sleeps up to `d`, or until woken by [`Shipper::finish`].
    fn sleep(&self, d: Duration) {
        let g = self.deadline.lock().unwrap_or_else(|e| e.into_inner());
        let d = match *g {
            Some(end) => d.min(end.saturating_duration_since(Instant::now())),
            None => d,
        };
        let _ = self.wake.wait_timeout(g, d);
    }

    fn past_deadline(&self) -> bool {
        self.deadline
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some_and(|d| Instant::now() >= d)
    }
}

/// The running shipper.
pub struct Shipper {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Shipper {
    /// Starts the shipper thread. `client` is checked in the background (an unreachable
    /// store or bad credentials are reported, never waited for).
    pub fn start(spec: Spec, client: Client) -> Result<Shipper, String> {
        let file = File::open(&spec.spool)
            .map_err(|e| format!("ship: cannot read spool {}: {e}", spec.spool.display()))?;
        let shared = Arc::new(Shared {
            last: AtomicBool::new(false),
            stopping: AtomicBool::new(false),
            deadline: Mutex::new(None),
            wake: Condvar::new(),
            stats: Mutex::new(ShipStats::default()),
        });
        let sh = shared.clone();
        // The first look is made now, before the writer writes anything: a new spool ships
        // from its first segment, whatever the ring does before the thread gets going.
        let mut w = Worker::new(spec, client, file, sh);
        w.first_look()
            .map_err(|e| format!("ship: cannot read spool {}: {e}", w.spec.spool.display()))?;
        let thread = std::thread::Builder::new()
            .name("ship".into())
            .spawn(move || w.run())
            .map_err(|e| format!("ship: cannot start the shipping thread: {e}"))?;
        Ok(Shipper {
            shared,
            thread: Some(thread),
        })
    }

    /// Ships what is left, trying for at most `wait`, and returns the counters. `all`: the
    /// writer is done, its newest segment ships too; otherwise only sealed segments.
    pub fn finish(mut self, wait: Duration, all: bool) -> ShipStats {
        *self
            .shared
            .deadline
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(Instant::now() + wait);
        self.shared.last.store(all, Ordering::SeqCst);
        self.shared.stopping.store(true, Ordering::SeqCst);
        self.shared.wake.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let s = self.shared.stats.lock().unwrap_or_else(|e| e.into_inner());
        s.clone()
    }
}

struct Worker {
    spec: Spec,
    client: Client,
    file: File,
    shared: Arc<Shared>,
    progress: Progress,
    /// The error last printed, so a store that stays down is reported once.
    reported: Option<String>,
    buf: Vec<u8>,
}

impl Worker {
    fn new(spec: Spec, client: Client, file: File, shared: Arc<Shared>) -> Worker {
        let inode = file.metadata().map_or(0, |m| m.ino());
        let url = spec.url.to_string() + "/" + &spec.tap;
        let mut progress = load_progress(&spec.spool).unwrap_or_default();
        if progress.spool_id.is_empty() || progress.inode != inode {
            progress = Progress {
                spool_id: new_spool_id(),
                inode,
                ..Progress::default()
            };
        }
        if progress.url != url {
            // Another destination: its bucket has none of this spool yet.
            progress.url = url;
            progress.shipped = None;
        }
        let buf = vec![0u8; spec.segment_size as usize];
        Worker {
            spec,
            client,
            file,
            shared,
            progress,
            reported: None,
            buf,
        }
    }

    fn say(&self, msg: &str) {
        if !self.spec.quiet {
            eprintln!("tcpflow: ship: {msg}");
        }
    }

    /// Reports a failure once (until it changes or the store recovers).
    fn failed(&mut self, e: &S3Error) {
        let msg = e.describe(&self.client.cfg, &self.client.bucket);
        let mut st = self.shared.stats.lock().unwrap_or_else(|e| e.into_inner());
        st.failures += 1;
        st.last_error = Some(msg.clone());
        drop(st);
        if self.reported.as_deref() != Some(msg.as_str()) {
            // Errors are printed even with -q: the data is not reaching the store.
            eprintln!(
                "tcpflow: ship: {msg}{}",
                if e.transient() {
                    "; retrying, the segments stay in the spool"
                } else {
                    "; retrying slowly, the segments stay in the spool"
                }
            );
            self.reported = Some(msg);
        }
    }

    fn recovered(&mut self) {
        if self.reported.take().is_some() {
            self.say("the store answers again; shipping");
        }
        self.shared
            .stats
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .last_error = None;
    }

    fn save(&mut self) {
        if let Err(e) = save_progress(&self.spec.spool, &self.progress) {
            let msg = format!(
                "cannot record progress in {}: {e} (segments may be shipped again after a restart: same keys, same bytes)",
                progress_path(&self.spec.spool).display()
            );
            if self.reported.as_deref() != Some(msg.as_str()) {
                eprintln!("tcpflow: ship: {msg}");
                self.reported = Some(msg);
            }
        }
    }

    /// Valid segments on storage: (sequence number, index), oldest first.
    fn scan(&self) -> io::Result<Vec<(u64, u32)>> {
        let mut v = Vec::new();
        for i in 0..self.spec.segment_count {
            if let Some(h) = segment::read(&self.file, i, self.spec.segment_size)? {
                v.push((h.seq, i));
            }
        }
        v.sort_unstable();
        Ok(v)
    }

    /// Where shipping starts when the progress file does not say: a spool with no segment
    /// yet ships from its first; an existing one from its oldest segment present (what the
    /// ring dropped before shipping was turned on is the ring's, not the shipper's).
    fn first_look(&mut self) -> io::Result<()> {
        if self.progress.shipped.is_none() {
            let segs = self.scan()?;
            self.progress.shipped = Some(segs.first().map_or(0, |&(s, _)| s - 1));
            self.save();
        }
        Ok(())
    }

    fn run(&mut self) {
        let mut backoff = Backoff::new(FIRST_RETRY, MAX_RETRY);
        // Say at once when the store cannot be used, not at the first sealed segment.
        match self.client.check(&self.spec.url.key(&self.spec.tap)) {
            Ok(()) => {}
            Err(e) => self.failed(&e),
        }
        {
            let mut st = self.shared.stats.lock().unwrap_or_else(|e| e.into_inner());
            st.spool_id = self.progress.spool_id.clone();
            st.dropped = self.progress.dropped;
        }
        loop {
            // Read before the scan, `stopping` first (`finish` sets `last` before it): a pass
            // that started before `finish` does not end the loop on its own count.
            let stopping = self.shared.stopping.load(Ordering::SeqCst);
            let last = self.shared.last.load(Ordering::SeqCst);
            let segs = match self.scan() {
                Ok(s) => s,
                Err(e) => {
                    eprintln!(
                        "tcpflow: ship: cannot read spool {}: {e}",
                        self.spec.spool.display()
                    );
                    return;
                }
            };
            let newest = segs.last().map_or(0, |&(s, _)| s);
            if let Some(shipped) = self.progress.shipped {
                if newest < shipped {
                    // The sequence went back: a spool started again in the same file.
                    self.progress = Progress {
                        spool_id: new_spool_id(),
                        url: self.progress.url.clone(),
                        inode: self.progress.inode,
                        ..Progress::default()
                    };
                    self.shared
                        .stats
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .spool_id = self.progress.spool_id.clone();
                }
            }
            if self.progress.shipped.is_none() {
                self.progress.shipped = Some(segs.first().map_or(0, |&(s, _)| s - 1));
                self.save();
            }
            let shipped = self.progress.shipped.unwrap_or(0);
            let todo: Vec<(u64, u32)> = segs
                .iter()
                .copied()
                .filter(|&(s, _)| s > shipped && (last || s < newest))
                .collect();
            let mut stalled = false;
            for (seq, idx) in todo {
                match self.ship_one(seq, idx) {
                    Ok(true) => backoff = Backoff::new(FIRST_RETRY, MAX_RETRY),
                    // Overwritten while read: counted at the next scan.
                    Ok(false) => break,
                    Err(e) => {
                        self.failed(&e);
                        stalled = true;
                        break;
                    }
                }
            }
            let pending = segs
                .iter()
                .filter(|&&(s, _)| s > self.progress.shipped.unwrap_or(0) && (last || s < newest))
                .count() as u64;
            self.shared
                .stats
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .pending = pending;
            if stopping && (pending == 0 || self.shared.past_deadline()) {
                return;
            }
            self.shared
                .sleep(if stalled { backoff.delay() } else { POLL });
        }
    }

    /// Uploads segment `seq` at `idx`. `Ok(false)`: the ring overwrote it meanwhile.
    fn ship_one(&mut self, seq: u64, idx: u32) -> Result<bool, S3Error> {
        let shipped = self.progress.shipped.unwrap_or(0);
        if seq > shipped + 1 {
            let n = seq - shipped - 1;
            self.progress.dropped += n;
            self.progress.shipped = Some(seq - 1);
            self.save();
            self.shared
                .stats
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .dropped = self.progress.dropped;
            eprintln!(
                "tcpflow: ship: {n} segments ({}..={}) dropped before shipping: the ring wrapped while they waited for the store",
                shipped + 1,
                seq - 1
            );
        }
        let at = u64::from(idx) * u64::from(self.spec.segment_size);
        let read = self.file.read_exact_at(&mut self.buf, at);
        // The writer starts a segment with its header block: if the header is still this
        // one, none of the segment was overwritten during the read.
        let still = segment::read(&self.file, idx, self.spec.segment_size)
            .ok()
            .flatten()
            .is_some_and(|h| h.seq == seq);
        if read.is_err() || !still || segment::parse(&self.buf).map(|h| h.seq) != Some(seq) {
            return Ok(false);
        }
        let key = object_key(&self.spec.url, &self.spec.tap, &self.progress.spool_id, seq);
        self.client.put(&key, &self.buf)?;
        self.recovered();
        self.progress.shipped = Some(seq);
        self.save();
        let mut st = self.shared.stats.lock().unwrap_or_else(|e| e.into_inner());
        st.segments += 1;
        st.bytes += self.buf.len() as u64;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_round_trip() {
        let p = Progress {
            spool_id: "20261206T080000Z-1f".into(),
            url: "s3://b/p/tap1".into(),
            shipped: Some(42),
            dropped: 3,
            inode: 99,
        };
        assert_eq!(Progress::parse(&p.text()), p);
        let none = Progress { shipped: None, ..p };
        assert_eq!(Progress::parse(&none.text()), none);
    }

    #[test]
    fn keys_sort_by_sequence() {
        let u = S3Url::parse("s3://bkt/site").unwrap();
        let a = object_key(&u, "pi1", "S", 9);
        let b = object_key(&u, "pi1", "S", 10);
        assert_eq!(a, "site/pi1/S/00000000000000000009");
        assert!(a < b);
    }

    #[test]
    fn tap_ids() {
        assert!(check_tap_id("pi-3.lab_1").is_ok());
        for bad in ["", "a/b", "..", "a b"] {
            assert!(check_tap_id(bad).is_err(), "{bad}");
        }
        assert!(!default_tap_id().is_empty());
    }
}
