//! The last write of each direction's file, done on a second thread: open (or take the
//! cached descriptor), write the buffered bytes, set the length and the time, close. Those
//! system calls are most of a run's time when flows are short, so the thread that decodes and
//! reassembles goes on while another core does them. The same thread takes the writes of
//! buffers that must go out before their direction ends (the buffers' budget is over): jobs
//! are done in the order submitted, so a direction's last job follows them, and the caller
//! waits for such a job ([`Finisher::wait_for`]) before it opens that file itself.
//!
//! Jobs go in batches of [`BATCH`] through a small bounded queue (the decoding thread waits
//! when the writer is behind, so memory stays bounded: at most [`QUEUE`] buffers in flight;
//! batches, because waking the other thread for every file cost a futex call or two each). A failure is
//! recorded and seen by the caller's next [`Finisher::failed`] check, and every message is
//! handed back by [`Finisher::wait`].

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
    /// The descriptor the open-file cache held, if any; otherwise `path` is opened.
    pub file: Option<File>,
    /// Full path (output folder joined).
    pub path: PathBuf,
    /// Not created yet in this run: create and truncate.
    pub create: bool,
    /// Sub-folders in the name (a `-T` template with `/`): walked without following links,
    /// created when missing.
    pub folders: usize,
    pub buf: Vec<u8>,
    /// Stream offset of `buf[0]`.
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

#[derive(Debug, Default)]
struct Shared {
    failed: AtomicBool,
    errors: Mutex<Vec<String>>,
    /// Jobs done so far (in the order submitted).
    done: Counter64,
}

impl Shared {
    fn fail(&self, msg: String) {
        if let Ok(mut e) = self.errors.lock() {
            e.push(msg);
        }
        self.failed.store(true, Ordering::Release);
    }
}

/// The writer thread and its queue.
#[derive(Debug)]
pub struct Finisher {
    tx: Option<SyncSender<Vec<FinalWrite>>>,
    /// Jobs not handed over yet.
    batch: Vec<FinalWrite>,
    /// The thread is started after [`INLINE_JOBS`] jobs.
    lazy: bool,
    /// Jobs done inline so far.
    done: usize,
    /// Jobs submitted so far: the number of the last one.
    submitted: u64,
    thread: Option<JoinHandle<()>>,
    shared: Arc<Shared>,
    file_mode: u32,
}

impl Finisher {
    /// A finisher whose thread starts once a run has finished [`INLINE_JOBS`] directions
    /// (a small capture never starts it); files are created with `file_mode`.
    pub fn new(file_mode: u32) -> Finisher {
        let mut f = Finisher::inline(file_mode);
        f.lazy = true;
        f
    }

    /// Starts the thread (without one, jobs are done by the caller).
    fn start(&mut self) {
        self.lazy = false;
        let (tx, rx) = sync_channel::<Vec<FinalWrite>>(QUEUE / BATCH - 1);
        let sh = self.shared.clone();
        let file_mode = self.file_mode;
        let thread = std::thread::Builder::new()
            .name("finish-files".into())
            .spawn(move || {
                for batch in rx {
                    for job in batch {
                        perform(job, file_mode, &sh);
                    }
                }
            })
            .ok();
        if thread.is_some() {
            self.tx = Some(tx);
        }
        self.thread = thread;
    }

    /// A finisher without a thread: [`Finisher::submit`] does the job at once.
    pub fn inline(file_mode: u32) -> Finisher {
        Finisher {
            tx: None,
            batch: Vec::new(),
            lazy: false,
            done: 0,
            submitted: 0,
            thread: None,
            shared: Arc::default(),
            file_mode,
        }
    }

    /// Queues a job (waits while the queue is full); returns its number for
    /// [`Finisher::wait_for`].
    pub fn submit(&mut self, job: FinalWrite) -> u64 {
        self.submitted += 1;
        let seq = self.submitted;
        if self.lazy && self.done >= INLINE_JOBS {
            self.start();
        }
        if self.tx.is_none() {
            self.done += 1;
            perform(job, self.file_mode, &self.shared);
            return seq;
        }
        self.batch.push(job);
        if self.batch.len() >= BATCH {
            self.hand_over();
        }
        seq
    }

    /// Jobs submitted so far (the number of the last one).
    pub fn submitted(&self) -> u64 {
        self.submitted
    }

    /// Jobs done so far.
    pub fn done_jobs(&self) -> u64 {
        self.shared.done.get()
    }

    /// Waits until job `seq` is done (before the caller opens that job's file itself).
    pub fn wait_for(&mut self, seq: u64) {
        if self.shared.done.get() >= seq {
            return;
        }
        self.hand_over();
        let mut spins = 0u32;
        while self.shared.done.get() < seq {
            // A thread that is gone does no more jobs: `wait` reports it.
            if !self.thread.as_ref().is_some_and(|t| !t.is_finished()) {
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

    /// Sends the pending batch to the thread (or does it here if the thread is gone).
    fn hand_over(&mut self) {
        if self.batch.is_empty() {
            return;
        }
        let batch = std::mem::replace(&mut self.batch, Vec::with_capacity(BATCH));
        let batch = match &self.tx {
            Some(tx) => match tx.send(batch) {
                Ok(()) => return,
                // The thread is gone (it panicked): do them here.
                Err(e) => e.0,
            },
            None => batch,
        };
        for job in batch {
            perform(job, self.file_mode, &self.shared);
        }
    }

    /// Whether a job failed (cheap: for the per-packet stop check).
    pub fn failed(&self) -> bool {
        self.shared.failed.load(Ordering::Acquire)
    }

    /// Waits for every queued job; returns the failures' messages, oldest first.
    pub fn wait(&mut self) -> Vec<String> {
        self.hand_over();
        self.tx = None;
        if let Some(t) = self.thread.take() {
            if t.join().is_err() {
                self.shared
                    .fail("the thread writing files failed; some files may be incomplete".into());
            }
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
    perform_one(job, file_mode, sh);
    sh.done.add(1);
}

fn perform_one(job: FinalWrite, file_mode: u32, sh: &Shared) {
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
                sh.fail(format!(
                    "cannot create {}: {}",
                    job.path.display(),
                    io_message(&e)
                ));
                return;
            }
        },
    };
    let f = job.file.as_ref().or(file.as_ref()).expect("a file");
    if !job.buf.is_empty() {
        if let Err(e) = f.write_all_at(&job.buf, job.off) {
            sh.fail(format!(
                "writing {}: {}",
                job.path.display(),
                io_message(&e)
            ));
            return;
        }
    }
    if let Some(len) = job.set_len {
        if let Err(e) = f.set_len(len) {
            sh.fail(format!(
                "extending {}: {}",
                job.path.display(),
                io_message(&e)
            ));
        }
    }
    let _ = f.set_times(FileTimes::new().set_modified(job.mtime));
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

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
                file: None,
                path: dir.join(format!("f{i}")),
                create: true,
                folders: 0,
                buf: vec![i; usize::from(i) + 1],
                off: 0,
                set_len: (i % 2 == 0).then_some(500),
                mtime,
            });
        }
        fin.submit(FinalWrite {
            file: None,
            path: dir.join("missing/f"),
            create: true,
            folders: 0,
            buf: vec![1],
            off: 0,
            set_len: None,
            mtime,
        });
        // A file written earlier and closed: only its time is set (by name).
        let early = dir.join("early");
        std::fs::write(&early, b"abc").unwrap();
        fin.submit(FinalWrite {
            file: None,
            path: early.clone(),
            create: false,
            folders: 0,
            buf: Vec::new(),
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
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].starts_with("cannot create "), "{errors:?}");
        assert!(fin.failed());
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
}
