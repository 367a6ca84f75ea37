//! The last write of each direction's file, done on writer threads: open (or take the
//! cached descriptor), write the buffered bytes, set the length and the time, close. Those
//! system calls are most of a run's time when flows are short, so the thread that decodes and
//! reassembles goes on while other cores do them. The same threads take the writes of
//! buffers that must go out before their direction ends (the buffers' budget is over). Each
//! file goes to one writer thread (a lane, chosen by its path), which does its jobs in the
//! order submitted, so a direction's last job follows its early ones; the caller waits for a
//! job ([`Finisher::wait_for`]) before it opens that file itself.
//!
//! Jobs go in batches of [`BATCH`] through a small bounded queue per lane (the decoding
//! thread waits when a writer is behind, so memory stays bounded: about [`QUEUE`] buffers in
//! flight; batches, because waking the other thread for every file cost a futex call or two
//! each). A failure that ends the run ([`is_fatal`]: disk full) is recorded and seen by the
//! caller's next [`Finisher::failed`] check, and every message is handed back by
//! [`Finisher::wait`]. Any other failure costs its file only: it is handed back by
//! [`Finisher::take_file_errors`] with the bytes that did not reach the file.

use std::fs::{File, FileTimes};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::SystemTime;

use crate::counter::Counter64;
use crate::input::io_message;

use super::buffers::{Held, MAX_PARTS};

/// Jobs waiting at most (each holds one direction's last buffer, at most `dir_buffer`).
pub const QUEUE: usize = 64;
/// Jobs handed over at a time.
pub const BATCH: usize = 16;
/// Directions finished by the caller before the thread starts: a small capture costs no
/// thread (and qemu-user 7.2, used to test the cross builds, hangs in thread creation).
pub const INLINE_JOBS: usize = 256;

/// One direction's last write.
#[derive(Debug)]
pub struct FinalWrite {
    /// Whose file: the caller's flow slot and direction id, handed back with a failure.
    pub slot: u32,
    pub id: u64,
    /// The descriptor the open-file cache held, if any; otherwise `path` is opened.
    pub file: Option<File>,
    /// Full path (output folder joined).
    pub path: PathBuf,
    /// Not created yet in this run: create and truncate.
    pub create: bool,
    /// Sub-folders in the name (a `-T` template with `/`): walked without following links,
    /// created when missing.
    pub folders: usize,
    pub buf: Held,
    /// Stream offset of the first byte of `buf`.
    pub off: u64,
    /// Extend the file to this length (a trailing gap), if set.
    pub set_len: Option<u64>,
    /// The file's time, set last.
    pub mtime: SystemTime,
}

impl FinalWrite {
    /// Nothing to write, create or extend: only the time is set (by name when no descriptor
    /// comes with the job, without opening the file).
    pub fn only_time(&self) -> bool {
        !self.create && self.buf.is_empty() && self.set_len.is_none()
    }
}

/// A job that failed for its file only (see [`is_fatal`]).
#[derive(Debug)]
pub struct FileError {
    pub slot: u32,
    pub id: u64,
    /// What failed, naming the file.
    pub msg: String,
    /// Bytes of the job that did not reach the file.
    pub lost: u64,
    /// The job had to open the file and could not: it was not created (or reopened).
    pub not_opened: bool,
    /// The job was to create the file (rather than reopen it).
    pub create: bool,
}

/// Whether a write error ends the run rather than only its file: no room on the file
/// system (disk full, quota), or the file system itself gone (read-only, I/O error). A
/// file size limit (`ulimit -f`, FAT32's 4 GiB), a FIFO or a device under a flow's name,
/// and the like cost that file alone.
pub fn is_fatal(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::ENOSPC | libc::EDQUOT | libc::EROFS | libc::EIO)
    )
}

/// `write_all_at` of `parts` one after the other (one vectored write where the platform has
/// one, at most [`MAX_PARTS`] parts at a time) that says how much reached the file before an
/// error.
pub fn write_all_at_counted(f: &File, parts: &[&[u8]], off: u64) -> (u64, Option<io::Error>) {
    if let [one] = parts {
        return write_one_at_counted(f, one, off);
    }
    let mut n = 0u64;
    // The first part not written whole, and how much of it was.
    let (mut i, mut done) = (0, 0);
    while i < parts.len() {
        if done == parts[i].len() {
            (i, done) = (i + 1, 0);
            continue;
        }
        // A long write of a flow's buffered bytes is progress (watchdog.rs).
        crate::watchdog::tick();
        match write_parts_at(f, &parts[i..], done, off + n) {
            Ok(0) => return (n, Some(io::ErrorKind::WriteZero.into())),
            Ok(mut w) => {
                n += w as u64;
                // Past the parts written whole; `done` of the next one.
                while w > parts[i].len() - done {
                    w -= parts[i].len() - done;
                    (i, done) = (i + 1, 0);
                }
                done += w;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return (n, Some(e)),
        }
    }
    (n, None)
}

/// [`write_all_at_counted`] of one slice.
fn write_one_at_counted(f: &File, mut data: &[u8], mut off: u64) -> (u64, Option<io::Error>) {
    let mut n = 0u64;
    while !data.is_empty() {
        crate::watchdog::tick();
        match f.write_at(data, off) {
            Ok(0) => return (n, Some(io::ErrorKind::WriteZero.into())),
            Ok(w) => {
                n += w as u64;
                off += w as u64;
                data = &data[w..];
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return (n, Some(e)),
        }
    }
    (n, None)
}

/// One write of `parts` (the first from `skip`) at `off`: a `pwritev` where the C library
/// has one for 64-bit offsets, otherwise of the first part only.
fn write_parts_at(f: &File, parts: &[&[u8]], skip: usize, off: u64) -> io::Result<usize> {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if parts.len() > 1 {
        use std::os::fd::AsRawFd;
        let mut iov = [libc::iovec {
            iov_base: std::ptr::null_mut(),
            iov_len: 0,
        }; MAX_PARTS];
        let n = parts.len().min(MAX_PARTS);
        for (v, (k, p)) in iov.iter_mut().zip(parts.iter().enumerate()) {
            let p = if k == 0 { &p[skip..] } else { p };
            *v = libc::iovec {
                iov_base: p.as_ptr() as *mut libc::c_void,
                iov_len: p.len(),
            };
        }
        let off = libc::off64_t::try_from(off)
            .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        // SAFETY: the first `n` iovecs point into `parts`, borrowed for the call; the kernel
        // only reads them.
        let w = unsafe { libc::pwritev64(f.as_raw_fd(), iov.as_ptr(), n as libc::c_int, off) };
        return if w < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(w as usize)
        };
    }
    f.write_at(&parts[0][skip..], off)
}

#[derive(Debug, Default)]
struct Shared {
    failed: AtomicBool,
    errors: Mutex<Vec<String>>,
    /// Failures of single files (not fatal), until the caller takes them.
    file_errors: Mutex<Vec<FileError>>,
    has_file_errors: AtomicBool,
    /// Bytes that reached files.
    written: Counter64,
}

impl Shared {
    fn fail(&self, msg: String) {
        if let Ok(mut e) = self.errors.lock() {
            e.push(msg);
        }
        self.failed.store(true, Ordering::Release);
    }

    /// A failure of `job`'s file: fatal or for that file only.
    fn fail_job(&self, job: &FinalWrite, e: &io::Error, msg: String, lost: u64, not_opened: bool) {
        if is_fatal(e) {
            return self.fail(msg);
        }
        if let Ok(mut v) = self.file_errors.lock() {
            v.push(FileError {
                slot: job.slot,
                id: job.id,
                msg,
                lost,
                not_opened,
                create: job.create,
            });
        }
        self.has_file_errors.store(true, Ordering::Release);
    }
}

/// One writing thread's end of the queue, and how far it got.
#[derive(Debug)]
struct Lane {
    tx: SyncSender<Vec<(u64, FinalWrite)>>,
    /// Jobs not handed over yet, with their numbers.
    batch: Vec<(u64, FinalWrite)>,
    /// The number of the last job given to this lane (0: none).
    last_given: u64,
    /// The number of the lane's last job done (0: none), written by its thread. The lane
    /// does its jobs in the order submitted, so every job of the lane up to it is done. A
    /// counter (32-bit MIPS has no 64-bit atomics) that only grows, by the gap to the next
    /// job's number.
    last_done: Arc<Counter64>,
    thread: Option<JoinHandle<()>>,
}

/// Job `seq` (later than every job recorded in `last_done`) is done.
fn record_done(last_done: &Counter64, seq: u64) {
    last_done.add(seq - last_done.get());
}

impl Lane {
    /// Whether every job given to the lane is done; otherwise the number of its last job done.
    fn pending_after(&self) -> Option<u64> {
        let done = self.last_done.get();
        (done < self.last_given).then_some(done)
    }

    fn alive(&self) -> bool {
        self.thread.as_ref().is_some_and(|t| !t.is_finished())
    }
}

/// The writer threads and their queues.
#[derive(Debug)]
pub struct Finisher {
    /// Writer threads: each file goes to one of them (by its path), so that its jobs are
    /// done in order while other files' jobs go on beside them.
    lanes: Vec<Lane>,
    /// The threads are started after [`INLINE_JOBS`] jobs.
    lazy: bool,
    /// Jobs done inline so far.
    done: usize,
    /// Jobs submitted so far: the number of the last one.
    submitted: u64,
    shared: Arc<Shared>,
    file_mode: u32,
}

/// Writer threads at most: creating, writing and closing files is most of a run's time when
/// flows are short (200,000 connections at once on tmpfs: two thirds of the samples), and
/// two threads do it in about 80% of the time one takes on two cores (the creations in one
/// folder take its lock in turn; the writes, time stamps and closes overlap). More were not
/// measured (this machine has two cores).
pub const MAX_LANES: usize = 2;

/// Writer threads for this machine: one per core up to [`MAX_LANES`] (they wait in the
/// kernel's file work, so the decoding thread still gets its core), none on a single core
/// (the caller does the jobs: [`crate::cores`]).
fn lanes_for_machine() -> usize {
    match crate::cores::processors() {
        1 => 0,
        n => n.min(MAX_LANES),
    }
}

/// Which lane writes the file at `path`: the same file always the same one.
fn lane_of(path: &std::path::Path, lanes: usize) -> usize {
    if lanes <= 1 {
        return 0;
    }
    // Eight bytes a step (a name is hashed per job, so its cost is per file), then a final
    // mix (murmur3's) so that every byte moves the low bits.
    let bytes = path.as_os_str().as_encoded_bytes();
    let mut h: u64 = bytes.len() as u64;
    let mut words = bytes.chunks_exact(8);
    for w in &mut words {
        let v = u64::from_le_bytes(w.try_into().expect("8 bytes"));
        h = (h ^ v).wrapping_mul(0x9e37_79b9_7f4a_7c15).rotate_left(31);
    }
    let mut last = [0u8; 8];
    last[..words.remainder().len()].copy_from_slice(words.remainder());
    h ^= u64::from_le_bytes(last);
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    (h % lanes as u64) as usize
}

impl Finisher {
    /// A finisher whose threads start once a run has finished [`INLINE_JOBS`] directions
    /// (a small capture never starts them); files are created with `file_mode`.
    pub fn new(file_mode: u32) -> Finisher {
        let mut f = Finisher::inline(file_mode);
        f.lazy = true;
        f
    }

    /// Starts the threads, as many as suit the machine (without one, jobs are done by the
    /// caller).
    fn start(&mut self) {
        self.start_lanes(lanes_for_machine());
    }

    fn start_lanes(&mut self, lanes: usize) {
        self.lazy = false;
        for i in 0..lanes {
            let (tx, rx) = sync_channel::<Vec<(u64, FinalWrite)>>(
                (QUEUE / BATCH / lanes).saturating_sub(1).max(1),
            );
            let sh = self.shared.clone();
            let last_done = Arc::new(Counter64::default());
            let done = last_done.clone();
            let file_mode = self.file_mode;
            let name = if lanes == 1 {
                "finish-files".to_string()
            } else {
                format!("finish-files-{i}")
            };
            let Ok(thread) = std::thread::Builder::new().name(name).spawn(move || {
                for batch in rx {
                    for (seq, job) in batch {
                        perform(job, file_mode, &sh);
                        record_done(&done, seq);
                    }
                }
            }) else {
                break;
            };
            self.lanes.push(Lane {
                tx,
                batch: Vec::with_capacity(BATCH),
                last_given: 0,
                last_done,
                thread: Some(thread),
            });
        }
    }

    /// A finisher without a thread: [`Finisher::submit`] does the job at once.
    pub fn inline(file_mode: u32) -> Finisher {
        Finisher {
            lanes: Vec::new(),
            lazy: false,
            done: 0,
            submitted: 0,
            shared: Arc::default(),
            file_mode,
        }
    }

    /// Queues a job (waits while its lane's queue is full); returns its number for
    /// [`Finisher::wait_for`].
    pub fn submit(&mut self, job: FinalWrite) -> u64 {
        self.submitted += 1;
        let seq = self.submitted;
        if self.lazy && self.done >= INLINE_JOBS {
            self.start();
        }
        if self.lanes.is_empty() {
            self.done += 1;
            perform(job, self.file_mode, &self.shared);
            return seq;
        }
        let l = lane_of(&job.path, self.lanes.len());
        let lane = &mut self.lanes[l];
        lane.last_given = seq;
        lane.batch.push((seq, job));
        if lane.batch.len() >= BATCH {
            self.hand_over(l);
        }
        seq
    }

    /// Jobs submitted so far (the number of the last one).
    pub fn submitted(&self) -> u64 {
        self.submitted
    }

    /// The jobs done so far in the order submitted: every job numbered up to this is done
    /// (a later one may be too).
    pub fn done_jobs(&self) -> u64 {
        self.lanes
            .iter()
            .filter_map(Lane::pending_after)
            .fold(self.submitted, u64::min)
    }

    /// Waits until job `seq` (and every one before it) is done (before the caller opens
    /// that job's file itself).
    pub fn wait_for(&mut self, seq: u64) {
        if self.done_jobs() >= seq {
            return;
        }
        for l in 0..self.lanes.len() {
            self.hand_over(l);
        }
        let mut spins = 0u32;
        while self.done_jobs() < seq {
            // A thread that is gone does no more jobs: `wait` reports it.
            if self
                .lanes
                .iter()
                .any(|l| l.pending_after().is_some() && !l.alive())
            {
                return;
            }
            spins += 1;
            if spins < 64 {
                std::thread::yield_now();
            } else {
                std::thread::sleep(std::time::Duration::from_micros(50));
            }
        }
    }

    /// Sends lane `l`'s pending batch to its thread (or does it here if the thread is gone).
    fn hand_over(&mut self, l: usize) {
        let lane = &mut self.lanes[l];
        if lane.batch.is_empty() {
            return;
        }
        let batch = std::mem::replace(&mut lane.batch, Vec::with_capacity(BATCH));
        let batch = match lane.tx.send(batch) {
            Ok(()) => return,
            // The thread is gone (it panicked): do them here.
            Err(e) => e.0,
        };
        for (seq, job) in batch {
            perform(job, self.file_mode, &self.shared);
            record_done(&lane.last_done, seq);
        }
    }

    /// Whether a job failed fatally (cheap: for the per-packet stop check).
    pub fn failed(&self) -> bool {
        self.shared.failed.load(Ordering::Acquire)
    }

    /// The failures of single files so far (cheap when there are none), oldest first.
    pub fn take_file_errors(&self) -> Vec<FileError> {
        // A load first: this is asked at every close, and failures are rare.
        if !self.shared.has_file_errors.load(Ordering::Acquire)
            || !self.shared.has_file_errors.swap(false, Ordering::AcqRel)
        {
            return Vec::new();
        }
        match self.shared.file_errors.lock() {
            Ok(mut v) => std::mem::take(&mut *v),
            Err(_) => Vec::new(),
        }
    }

    /// Bytes the jobs wrote to files so far.
    pub fn bytes_written(&self) -> u64 {
        self.shared.written.get()
    }

    /// Waits for every queued job; returns the failures' messages, oldest first.
    pub fn wait(&mut self) -> Vec<String> {
        for l in 0..self.lanes.len() {
            self.hand_over(l);
        }
        let mut panicked = false;
        for lane in std::mem::take(&mut self.lanes) {
            // Dropping the sender ends the thread's loop once its queue is done.
            let Lane { tx, thread, .. } = lane;
            drop(tx);
            if let Some(t) = thread {
                panicked |= t.join().is_err();
            }
        }
        if panicked {
            self.shared
                .fail("the thread writing files failed; some files may be incomplete".into());
        }
        match self.shared.errors.lock() {
            Ok(mut e) => std::mem::take(&mut *e),
            Err(_) => vec!["the thread writing files failed".into()],
        }
    }
}

impl Drop for Finisher {
    fn drop(&mut self) {
        // Queued files are finished even when the caller did not wait.
        let _ = self.wait();
    }
}

fn open(job: &FinalWrite, file_mode: u32) -> io::Result<File> {
    crate::safefs::open_file(&job.path, job.folders, job.create, file_mode)
}

fn perform(job: FinalWrite, file_mode: u32, sh: &Shared) {
    // Written whole earlier (and closed since): only the time is left.
    if job.file.is_none() && job.only_time() {
        // As with an open file, a time that cannot be set is not an error.
        let _ = crate::safefs::set_mtime(&job.path, job.folders, job.mtime);
        return;
    }
    let file = match &job.file {
        Some(_) => None,
        None => match open(&job, file_mode) {
            Ok(f) => Some(f),
            Err(e) => {
                let msg = format!("cannot create {}: {}", job.path.display(), io_message(&e));
                sh.fail_job(&job, &e, msg, job.buf.len() as u64, true);
                return;
            }
        },
    };
    let f = job.file.as_ref().or(file.as_ref()).expect("a file");
    if !job.buf.is_empty() {
        let (n, err) = job
            .buf
            .with_parts(|parts| write_all_at_counted(f, parts, job.off));
        sh.written.add(n);
        if let Some(e) = err {
            let msg = format!("writing {}: {}", job.path.display(), io_message(&e));
            sh.fail_job(&job, &e, msg, job.buf.len() as u64 - n, false);
            return;
        }
    }
    if let Some(len) = job.set_len {
        if let Err(e) = f.set_len(len) {
            // A trailing gap that cannot be a hole: no data lost, but the file is short.
            let msg = format!("extending {}: {}", job.path.display(), io_message(&e));
            sh.fail_job(&job, &e, msg, 0, false);
        }
    }
    let _ = f.set_times(FileTimes::new().set_modified(job.mtime));
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    /// Parts (an empty one among them) are written one after the other at the offset.
    #[test]
    fn parts_written_in_order() {
        let dir = std::env::temp_dir().join(format!("tcpflow-parts-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let f = File::create(dir.join("f")).unwrap();
        let big = vec![7u8; 100_000];
        let parts: [&[u8]; 4] = [b"ab", b"", &big, b"cde"];
        assert_eq!(write_all_at_counted(&f, &parts, 3).0, 100_005);
        let got = std::fs::read(dir.join("f")).unwrap();
        assert_eq!(got, [&[0, 0, 0][..], b"ab", &big, b"cde"].concat());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// Only a file system that is full or gone ends the run.
    #[test]
    fn fatal_errors_are_the_file_systems() {
        for e in [libc::ENOSPC, libc::EDQUOT, libc::EROFS, libc::EIO] {
            assert!(is_fatal(&io::Error::from_raw_os_error(e)), "{e}");
        }
        for e in [
            libc::EFBIG,
            libc::ENXIO,
            libc::ELOOP,
            libc::EISDIR,
            libc::EACCES,
        ] {
            assert!(!is_fatal(&io::Error::from_raw_os_error(e)), "{e}");
        }
        assert!(!is_fatal(&io::Error::other("not a regular file")));
    }

    #[test]
    fn writes_in_order_and_reports_failures() {
        let dir = std::env::temp_dir().join(format!("tcpflow-finisher-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut fin = Finisher::new(0o644);
        // The thread itself, not the inline start of a small run.
        fin.start();
        let mtime = UNIX_EPOCH + Duration::from_secs(1_000_000_000);
        for i in 0..100u8 {
            fin.submit(FinalWrite {
                slot: 0,
                id: 0,
                file: None,
                path: dir.join(format!("f{i}")),
                create: true,
                folders: 0,
                buf: vec![i; usize::from(i) + 1].into(),
                off: 0,
                set_len: (i % 2 == 0).then_some(500),
                mtime,
            });
        }
        fin.submit(FinalWrite {
            slot: 0,
            id: 0,
            file: None,
            path: dir.join("missing/f"),
            create: true,
            folders: 0,
            buf: vec![1].into(),
            off: 0,
            set_len: None,
            mtime,
        });
        // A file written earlier and closed: only its time is set (by name).
        let early = dir.join("early");
        std::fs::write(&early, b"abc").unwrap();
        fin.submit(FinalWrite {
            slot: 0,
            id: 0,
            file: None,
            path: early.clone(),
            create: false,
            folders: 0,
            buf: Held::default(),
            off: 3,
            set_len: None,
            mtime,
        });
        let errors = fin.wait();
        assert_eq!(std::fs::read(&early).unwrap(), b"abc");
        assert_eq!(
            std::fs::metadata(&early).unwrap().modified().unwrap(),
            mtime
        );
        // A file that cannot be created costs that file, not the run.
        assert!(errors.is_empty(), "{errors:?}");
        assert!(!fin.failed());
        let file_errors = fin.take_file_errors();
        assert_eq!(file_errors.len(), 1, "{file_errors:?}");
        assert!(file_errors[0].msg.starts_with("cannot create "));
        assert_eq!((file_errors[0].lost, file_errors[0].not_opened), (1, true));
        let written: u64 = (0..100u64).map(|i| i + 1).sum::<u64>();
        assert_eq!(fin.bytes_written(), written);
        for i in 0..100u8 {
            let p = dir.join(format!("f{i}"));
            let got = std::fs::read(&p).unwrap();
            let n = usize::from(i) + 1;
            assert_eq!(got.len(), if i % 2 == 0 { 500 } else { n });
            assert!(got[..n].iter().all(|&b| b == i));
            assert!(got[n..].iter().all(|&b| b == 0));
            let m = std::fs::metadata(&p).unwrap().modified().unwrap();
            assert_eq!(m, mtime);
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// On one processor the writer threads are not started: the caller does the jobs.
    #[test]
    fn one_processor_starts_no_writer_thread() {
        let (lanes, lazy) = crate::cores::test_support::on_one_core(|| {
            let mut fin = Finisher::new(0o644);
            fin.start();
            (fin.lanes.len(), fin.lazy)
        });
        assert_eq!((lanes, lazy), (0, false));
        if crate::cores::spare_core() {
            assert!(lanes_for_machine() >= 1);
        }
    }

    /// With two writer threads, each file's jobs are still done in the order submitted
    /// (each job rewrites the file shorter, so any other order leaves other bytes), and a
    /// job waited for is done with every job before it.
    #[test]
    fn two_lanes_keep_each_files_jobs_in_order() {
        let dir = std::env::temp_dir().join(format!("tcpflow-lanes-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut fin = Finisher::new(0o644);
        fin.start_lanes(2);
        assert_eq!(fin.lanes.len(), 2);
        let mtime = UNIX_EPOCH + Duration::from_secs(1_000_000_000);
        const FILES: usize = 64;
        const ROUNDS: u8 = 6;
        let mut last = vec![0u64; FILES];
        for round in 0..ROUNDS {
            for (f, last) in last.iter_mut().enumerate() {
                let len = 200 - usize::from(round) * 10;
                *last = fin.submit(FinalWrite {
                    slot: f as u32,
                    id: f as u64,
                    file: None,
                    path: dir.join(format!("f{f}")),
                    create: round == 0,
                    folders: 0,
                    buf: vec![round; len].into(),
                    off: 0,
                    set_len: Some(len as u64),
                    mtime,
                });
            }
            // Half way, a file's last job so far, waited for: it and all before are done.
            if round == ROUNDS / 2 {
                let seq = last[FILES / 2];
                fin.wait_for(seq);
                assert!(fin.done_jobs() >= seq);
                let got = std::fs::read(dir.join(format!("f{}", FILES / 2))).unwrap();
                assert_eq!(got, vec![round; 200 - usize::from(round) * 10]);
                let first = std::fs::read(dir.join("f0")).unwrap();
                assert_eq!(first, vec![round; 200 - usize::from(round) * 10]);
            }
        }
        assert!(fin.wait().is_empty());
        assert_eq!(fin.done_jobs(), fin.submitted());
        let both = (0..FILES)
            .map(|f| lane_of(&dir.join(format!("f{f}")), 2))
            .collect::<std::collections::HashSet<_>>();
        assert_eq!(both.len(), 2, "the files went to both lanes");
        let r = ROUNDS - 1;
        for f in 0..FILES {
            let got = std::fs::read(dir.join(format!("f{f}"))).unwrap();
            assert_eq!(got, vec![r; 200 - usize::from(r) * 10], "f{f}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
