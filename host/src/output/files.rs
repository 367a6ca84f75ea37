//! The file output: one file per direction (the default).
//!
//! ## Files
//! - A direction's file is named by the template ([`crate::template`]) and created (truncated:
//!   a file left by an earlier run is overwritten) the first time it is written in this run;
//!   it is never truncated again in this run. Two directions that would get the same name
//!   (a template without addresses, QinQ flows differing only in an inner VLAN) are told apart
//!   by counting the connection index up, as tcpflow 1.6 does.
//! - Bytes go at their stream offsets; a gap stays a hole (the file is sparse there), and at
//!   close the file length is set to the stream length, so a trailing gap is a hole too.
//! - Data is buffered per direction in memory (up to [`Limits::dir_buffer`] each, and
//!   [`Limits::total_buffer`] in all: when over, the oldest buffers are written out, on the
//!   writer threads of [`super::finisher`]), so a short flow costs one open, one write and
//!   one close. A buffer grows by segments rather than by copying what it holds
//!   ([`super::buffers::Held`]), and is written with one vectored write.
//! - Writes that cannot wait go through a bounded cache of open files
//!   ([`super::filecache`]): any number of concurrent flows works under a small descriptor
//!   limit; a file closed to make room is reopened without truncation when needed.
//! - At close the file gets the connection's first timestamp as its modification time.
//! - A write error that costs one file (a file size limit, a FIFO or device under the file's
//!   name, a name the file system refuses) ends that direction's file only: a one-line
//!   warning names it, the direction's bytes that did not reach it are counted
//!   (`write_lost_bytes`, in its report record and the totals), and the run goes on, to exit
//!   with status 1. The report record of a direction whose last write is on the finishing
//!   thread waits for that write, so that it says what was lost.
//! - Disk full (and a read-only or failing file system, [`super::finisher::is_fatal`]) is
//!   fatal: it is reported once, the run stops reading, what was written stays, and the exit
//!   status is nonzero.

use std::collections::VecDeque;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

use tcpflow_core::{CloseReason, Dir, FlowInfo, GapReason, Sink};

use super::buffers::{Buffers, Held, NO_BUF};
use super::filecache::FileCache;
use super::finisher::{is_fatal, write_all_at_counted, FileError, FinalWrite, Finisher, QUEUE};
use super::names::{NameSet, FILTER_BYTES, NAME_ENTRY_BYTES};
use super::{take_all, End, Finished, FinishedFile, Output};
use crate::fxhash::{id_map, IdMap};
use crate::input::io_message;
use crate::report::HostStats;
use crate::template::{NameParams, Template};

/// Memory and descriptor bounds of the file writer.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Most bytes buffered for one direction before they are written.
    pub dir_buffer: usize,
    /// Most bytes buffered in all; past it the oldest buffers are written.
    pub total_buffer: usize,
    /// What the buffers may hold at first (at most `total_buffer`): the budget doubles up to
    /// `total_buffer` each time a direction goes on after its buffer was written out early,
    /// or a long direction's buffer must grow.
    pub first_buffer: usize,
    /// Most output files open at once.
    pub max_open_files: usize,
    /// File names held in memory (to keep two directions from sharing a file); past it
    /// they go into a filter, and a name it cannot rule out is looked up in the output
    /// folder.
    pub max_names: usize,
}

/// What a direction's buffer holds at most ([`Limits::dir_buffer`]). The streaming
/// directions' buffers are filled and written in turn, so their sum is what the payload copy
/// writes into: at 64 KiB, 50 connections' buffers (6.4 MB) left the cache between two
/// packets of a direction, and the copy waited on memory (messy on tmpfs: 12-18% more user
/// time than at 32 or 16 KiB; 16 KiB doubles the writes of 32 for the same time).
pub const DIR_BUFFER: usize = 32 * 1024;

impl Default for Limits {
    fn default() -> Self {
        Limits {
            dir_buffer: DIR_BUFFER,
            total_buffer: crate::budget::DEFAULT_BUFFER_BYTES,
            first_buffer: FIRST_BUDGET,
            max_open_files: 256,
            max_names: 2 * crate::budget::DEFAULT_FLOWS as usize,
        }
    }
}

/// What the output buffers may hold at first ([`Limits::first_buffer`]). Buffering saves a
/// direction's file a reopen when its bytes come in several bursts; the budget grows (up to
/// `Limits::total_buffer`) only once that happens to a direction written out early. Where
/// directions say all they have at once (bench's 200,000 connections open at once: each
/// file written once, whatever the budget), memory held for them saves nothing: 16 MiB
/// there took the time 2 MiB took, with 18 MB more peak RSS.
pub const FIRST_BUDGET: usize = 2 << 20;

/// The file output's settings (the console's name template too).
#[derive(Clone, Debug)]
pub struct OutputConfig {
    pub template: Template,
    /// Mode of created files.
    pub file_mode: u32,
    /// Where files are created (as opened by this process, after any chroot).
    pub outdir: PathBuf,
    /// How file names are shown in the report: `None` for bare names (output folder `.`).
    pub display_dir: Option<PathBuf>,
    pub limits: Limits,
    /// Names in the output folder that are not a flow's (the reports'): a direction whose
    /// name is one of them takes the next `cN`, so that neither file is lost.
    pub reserved: Vec<PathBuf>,
}

/// A direction's state, kept per flow slot. Small on purpose: 200,000 open connections hold
/// 400,000 of these. The file name is not kept: it is rebuilt from the template when a file
/// is opened (and kept with the buffer while one is held, for writes made without the flow).
#[derive(Clone, Copy, Debug)]
struct DirOut {
    /// Stream length seen: data and gaps (as delivered: when exporting a spool, the
    /// `-b` cut was made before, so the flow's own stream length can be longer).
    end: u64,
    /// Highest offset written to the file (so the file is at least this long).
    written_end: u64,
    /// This direction's buffer in `FileSink::bufs`, or [`NO_BUF`].
    buf: u32,
    /// The name is the template's with the connection index counted up by this much
    /// (another direction had the name), or [`UNNAMED`] / [`NAME_FAILED`].
    bump: u16,
    /// [`CREATED`], [`NAMED_WITHOUT_MACS`], [`STAMPED`], [`FAILED`].
    flags: u8,
}

/// The file was created (truncated) in this run: never truncate it again.
const CREATED: u8 = 1;
/// Named before the flow's MAC addresses were known: rebuilt without them.
const NAMED_WITHOUT_MACS: u8 = 2;
/// The file's last write was an early one, which also set its time: at the direction's
/// end, with nothing left to write, there is nothing to do.
const STAMPED: u8 = 4;
/// Writing the file failed (not fatally): the direction's bytes are counted, not written.
const FAILED: u8 = 8;
/// Files whose failure gets its own warning line; past it they are only counted.
const MAX_FILE_WARNINGS: u64 = 20;

const UNNAMED: u16 = u16::MAX;
const NAME_FAILED: u16 = u16::MAX - 1;
/// Most tries to find a free name.
const MAX_BUMP: u16 = 1000;

impl DirOut {
    const EMPTY: DirOut = DirOut {
        end: 0,
        written_end: 0,
        buf: NO_BUF,
        bump: UNNAMED,
        flags: 0,
    };

    fn named(&self) -> bool {
        self.bump < NAME_FAILED
    }

    fn has(&self, flag: u8) -> bool {
        self.flags & flag != 0
    }

    fn set(&mut self, flag: u8, on: bool) {
        if on {
            self.flags |= flag;
        } else {
            self.flags &= !flag;
        }
    }
}

/// What the file writer keeps per flow slot: the flow's state, and for two names (the
/// default `Limits::max_names` is two per slot) an entry of the set of names used and the
/// filter's bytes.
pub const FLOW_STATE_BYTES: usize = std::mem::size_of::<FlowOut>() + 2 * NAME_BYTES;
/// What one name of `Limits::max_names` costs at most: its entry in the set and its share
/// of the filter.
pub const NAME_BYTES: usize = NAME_ENTRY_BYTES + FILTER_BYTES;
/// With `-b`: a direction with a cut has an entry in `FileSink::truncated` (key and count,
/// with the hash map's control byte and spare room).
pub const CUT_STATE_BYTES: usize = 2 * 20;
// 200,000 open connections hold 200,000 of these (a side map for what was written would
// not do: with more open data than buffers, most directions are written before they end).
const _: () = assert!(std::mem::size_of::<FlowOut>() <= 56);

#[derive(Clone, Copy, Debug)]
struct FlowOut {
    /// The session number, with [`LIVE`] and [`EVICTED`] in the top bits.
    meta: u64,
    dirs: [DirOut; 2],
}

/// A flow is open in this slot.
const LIVE: u64 = 1 << 63;
/// Closed by eviction (not live): the slot keeps its directions' names and lengths, so that
/// when the engine picks the connection up again its bytes go on in the same files.
const EVICTED: u64 = 1 << 61;

impl FlowOut {
    const EMPTY: FlowOut = FlowOut {
        meta: 0,
        dirs: [DirOut::EMPTY; 2],
    };

    fn live(&self) -> bool {
        self.meta & LIVE != 0
    }

    fn session(&self) -> u64 {
        self.meta & !(LIVE | EVICTED)
    }
}

/// The file output.
#[derive(Debug)]
pub struct FileSink {
    cfg: OutputConfig,
    /// Per flow slot, grown to the highest slot seen.
    flows: Vec<FlowOut>,
    /// Buffers of the directions that hold one.
    bufs: Buffers,
    /// What the buffers may hold now: `Limits::first_buffer` at first, doubled up to
    /// `Limits::total_buffer` each time a direction goes on after its buffer was written out
    /// early (see [`FileSink::new_buf`]) or a long direction's buffer must grow (`append`).
    budget: usize,
    /// The name `ensure_name` just chose (by `key`), for the write or buffer that follows.
    fresh_name: Option<(u64, PathBuf)>,
    /// Directions (by `key`) whose buffer went to the finishing thread before their end, with
    /// that job's number: this thread waits for it before opening the file itself.
    early: IdMap<u64>,
    /// Bytes cut by `-b`, by direction (`key`): only directions with a cut, so that the
    /// state kept per flow stays small.
    truncated: IdMap<u64>,
    cache: FileCache,
    /// Hashes of the names used in this run (a direction never reuses another's file).
    used_names: NameSet,
    /// Fixed keys: which names the filter cannot rule out is the same from run to run.
    name_hasher: std::hash::BuildHasherDefault<std::collections::hash_map::DefaultHasher>,
    next_session: u64,
    host: HostStats,
    fatal: Option<String>,
    warned_name: bool,
    /// Last writes of finished directions, on a second thread (files only).
    finisher: Option<Finisher>,
    /// Bytes that did not reach a failed file, by direction ([`dir_id`]): only directions
    /// whose file failed.
    lost: IdMap<u64>,
    /// Report records of closed directions, each waiting for the finishing thread's job of
    /// that number (its file's last write), so that it can say what was lost.
    pending: VecDeque<(u64, Pending)>,
    /// Directions finished, for [`Output::take_finished`].
    finished: Vec<Finished>,
    /// The post-processing scanners (`-e`), fed every event this output gets, and the
    /// report records they made, which go out with the next [`Finished`] event.
    scan: Option<crate::scan::ScanSet>,
    scan_records: crate::report::Objects,
}

/// A closed direction, [`Finished`] once its file is.
#[derive(Debug)]
struct Pending {
    flow: FlowInfo,
    dir: Dir,
    reason: CloseReason,
    session: u64,
    truncated: u64,
    /// The name shown, the file's path, and its size if every write succeeds.
    file: Option<(PathBuf, PathBuf, u64)>,
}

/// A direction's number for the run (flow slots are reused; sessions are not).
fn dir_id(session: u64, dir: Dir) -> u64 {
    session * 2 + dir.index() as u64
}

/// A name's hash in the set of names used: of its bytes (hashing a `Path` walks its
/// components, several times the cost), spelled one way as `Path` compares them (`a//b`,
/// `a/./b` and `a/b/` are `a/b`).
fn name_hash(h: &impl std::hash::BuildHasher, name: &Path) -> u64 {
    let b = name.as_os_str().as_encoded_bytes();
    // Plain: no empty or `.` component (what `components` would drop).
    let mut plain = true;
    let mut start = 0;
    for (i, &c) in b.iter().enumerate() {
        if c == b'/' {
            plain &= !matches!(&b[start..i], b"" | b".");
            start = i + 1;
        }
    }
    plain &= !matches!(&b[start..], b"" | b".");
    if plain {
        h.hash_one(b)
    } else {
        let p: PathBuf = name.components().collect();
        h.hash_one(p.as_os_str().as_encoded_bytes())
    }
}

fn key(slot: u32, dir: Dir) -> u64 {
    u64::from(slot) * 2 + dir.index() as u64
}

/// `base/rel` for a relative `rel`, in one allocation (`Path::join` copies `base` and then
/// grows it: a reallocation per direction, three times at each close).
fn under(base: &Path, rel: &Path) -> PathBuf {
    use std::os::unix::ffi::{OsStrExt, OsStringExt};
    if rel.is_absolute() || base.as_os_str().is_empty() {
        return base.join(rel);
    }
    let (b, r) = (base.as_os_str().as_bytes(), rel.as_os_str().as_bytes());
    let mut v = Vec::with_capacity(b.len() + 1 + r.len());
    v.extend_from_slice(b);
    if !b.ends_with(b"/") {
        v.push(b'/');
    }
    v.extend_from_slice(r);
    PathBuf::from(std::ffi::OsString::from_vec(v))
}

fn dir_of(i: usize) -> Dir {
    if i == 0 {
        Dir::AtoB
    } else {
        Dir::BtoA
    }
}

impl FileSink {
    /// A file writer. `max_flows` is the engine's flow table size (per-flow state is indexed by
    /// slot).
    pub fn new(cfg: OutputConfig, max_flows: usize) -> FileSink {
        let cache = FileCache::new(cfg.limits.max_open_files);
        let mut used_names = NameSet::new(cfg.limits.max_names);
        let name_hasher: std::hash::BuildHasherDefault<std::collections::hash_map::DefaultHasher> =
            Default::default();
        for r in &cfg.reserved {
            used_names.insert(name_hash(&name_hasher, r));
        }
        // Grown on demand (the engine hands out slots from a high-water mark), so a run pays
        // for the flows it sees, not for the table's size.
        let flows = Vec::with_capacity(max_flows.min(1024));
        let finisher = Some(Finisher::new(cfg.file_mode));
        let budget = cfg.limits.total_buffer.min(cfg.limits.first_buffer);
        FileSink {
            cfg,
            flows,
            bufs: Buffers::new(),
            budget,
            fresh_name: None,
            early: id_map(),
            truncated: id_map(),
            cache,
            used_names,
            name_hasher,
            next_session: 0,
            host: HostStats::default(),
            fatal: None,
            warned_name: false,
            finisher,
            lost: id_map(),
            pending: VecDeque::new(),
            finished: Vec::new(),
            scan: None,
            scan_records: Default::default(),
        }
    }

    /// The scanners that get every event (files mode).
    pub fn set_scanners(&mut self, s: crate::scan::ScanSet) {
        self.scan = Some(s);
    }

    fn scan_open(&mut self, flow: &FlowInfo) {
        if let Some(s) = &mut self.scan {
            let session = self.flows[flow.slot as usize].session();
            s.open(flow, session, &mut self.scan_records);
        }
    }

    /// Waits until every finished direction's file is written; a failure becomes the run's
    /// fatal error.
    pub fn wait_writes(&mut self) {
        if let Some(mut f) = self.finisher.take() {
            for e in f.wait() {
                self.fail(e);
            }
            self.host.bytes_written += f.bytes_written();
            for e in f.take_file_errors() {
                self.job_failed(e);
            }
        }
        self.emit_records(true);
    }

    /// The first fatal error (a write that failed): the run must stop.
    pub fn fatal(&self) -> Option<&str> {
        self.fatal.as_deref()
    }

    fn stopped(&self) -> bool {
        self.fatal.is_some() || self.finisher.as_ref().is_some_and(|f| f.failed())
    }

    fn fail(&mut self, what: String) {
        self.host.write_errors += 1;
        if self.fatal.is_none() {
            self.fatal = Some(what);
        }
    }

    /// Takes the finishing thread's failures of single files so far.
    fn absorb_file_errors(&mut self) {
        let errors = match &self.finisher {
            Some(f) => f.take_file_errors(),
            None => return,
        };
        for e in errors {
            self.job_failed(e);
        }
    }

    /// A job of the finishing thread failed for its file only.
    fn job_failed(&mut self, e: FileError) {
        if e.not_opened {
            // `submit` counted the file as written or reopened.
            if e.create {
                self.host.files_written = self.host.files_written.saturating_sub(1);
            } else {
                self.host.file_reopens = self.host.file_reopens.saturating_sub(1);
            }
        }
        self.file_failed(e.slot, e.id, &e.msg, e.lost);
    }

    /// A write to the file of direction `id` failed, for that file only: `lost` bytes did not
    /// reach it. While its flow is open (in `slot`), the direction writes nothing more: what
    /// it holds and what comes later is counted as lost instead.
    fn file_failed(&mut self, slot: u32, id: u64, msg: &str, lost: u64) {
        self.host.write_errors += 1;
        let first = !self.lost.contains_key(&id);
        self.lose(id, lost);
        let dir = dir_of((id % 2) as usize);
        let open = self
            .flows
            .get(slot as usize)
            .is_some_and(|f| f.live() && dir_id(f.session(), dir) == id);
        if open && !self.flows[slot as usize].dirs[dir.index()].has(FAILED) {
            self.dir_mut(slot, dir).set(FAILED, true);
            if let Some((data, _, _)) = self.take_buf(slot, dir) {
                self.lose(id, data.len() as u64);
            }
            self.cache.remove(key(slot, dir));
        }
        if first {
            self.host.files_failed += 1;
            if self.host.files_failed <= MAX_FILE_WARNINGS {
                eprintln!("tcpflow: warning: {msg}; the rest of that direction is not written");
            } else if self.host.files_failed == MAX_FILE_WARNINGS + 1 {
                eprintln!("tcpflow: warning: more files failed; the report counts them (files_failed, write_lost_bytes)");
            }
        }
    }

    /// Counts `n` bytes of direction `id` that did not reach its file.
    fn lose(&mut self, id: u64, n: u64) {
        *self.lost.entry(id).or_insert(0) += n;
        self.host.write_lost_bytes += n;
    }

    /// Whether the direction's file failed: its bytes are counted, not written.
    fn failed(&self, slot: u32, dir: Dir) -> bool {
        self.flows[slot as usize].dirs[dir.index()].has(FAILED)
    }

    /// Counts bytes of a failed direction as lost.
    fn lose_dir(&mut self, slot: u32, dir: Dir, n: usize) {
        let id = dir_id(self.flows[slot as usize].session(), dir);
        self.lose(id, n as u64);
    }

    #[inline]
    fn flow_mut(&mut self, slot: u32) -> &mut FlowOut {
        let i = slot as usize;
        if self.flows.get(i).is_some_and(|f| f.live()) {
            return &mut self.flows[i];
        }
        self.adopt(slot)
    }

    /// `flow_mut` for a slot without a flow yet.
    #[cold]
    fn adopt(&mut self, slot: u32) -> &mut FlowOut {
        let i = slot as usize;
        if i >= self.flows.len() {
            self.flows.resize(i + 1, FlowOut::EMPTY);
        }
        if !self.flows[i].live() {
            // An event for a flow whose open we did not see: adopt it.
            self.start_flow(slot);
        }
        &mut self.flows[i]
    }

    /// Fresh state for a flow in `slot` (which holds none).
    fn start_flow(&mut self, slot: u32) {
        self.flows[slot as usize] = FlowOut {
            meta: (self.next_session & !(LIVE | EVICTED)) | LIVE,
            dirs: [DirOut::EMPTY; 2],
        };
        self.next_session += 1;
    }

    /// Highest offset of the direction's file written so far (0: none yet).
    fn written_end(&self, slot: u32, dir: Dir) -> u64 {
        self.flows[slot as usize].dirs[dir.index()].written_end
    }

    fn note_written(&mut self, slot: u32, dir: Dir, end: u64) {
        let d = self.dir_mut(slot, dir);
        d.written_end = d.written_end.max(end);
    }

    fn dir_mut(&mut self, slot: u32, dir: Dir) -> &mut DirOut {
        &mut self.flows[slot as usize].dirs[dir.index()]
    }

    /// Chooses the file name of a direction at its first byte.
    fn ensure_name(&mut self, flow: &FlowInfo, dir: Dir) -> bool {
        let (session, bump) = {
            let f = self.flow_mut(flow.slot);
            (f.session(), f.dirs[dir.index()].bump)
        };
        if bump < NAME_FAILED {
            return true;
        }
        if bump == NAME_FAILED {
            return false;
        }
        if self.used_names.full() {
            self.forget_names();
        }
        let mut result = Err(String::new());
        for bump in 0..MAX_BUMP {
            let p = NameParams {
                conn_index: flow.conn_index.saturating_add(bump.into()),
                session,
            };
            match self.cfg.template.relative_path(flow, dir, p) {
                Ok(path) => {
                    let h = name_hash(&self.name_hasher, &path);
                    if !self.used_names.insert(h) {
                        continue;
                    }
                    // New to the set, but taken all the same when forgotten earlier (the
                    // folder knows it: the set grows by one name a call at most).
                    if self.used_names.maybe_forgotten(h) && self.in_folder(&path) {
                        self.used_names.remove(h);
                        self.host.names_found_in_folder += 1;
                        continue;
                    }
                    result = Ok((bump, path));
                    break;
                }
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
        match result {
            Ok((bump, path)) => {
                let d = self.dir_mut(flow.slot, dir);
                d.bump = bump;
                d.set(NAMED_WITHOUT_MACS, flow.macs.is_none());
                if let Some(s) = &mut self.scan {
                    // Body files are named after the flow file: the one really chosen.
                    s.named(flow, dir, &path.to_string_lossy(), &mut self.scan_records);
                }
                // The caller writes or buffers next, which needs the name again.
                self.fresh_name = Some((key(flow.slot, dir), path));
                true
            }
            Err(e) => {
                self.dir_mut(flow.slot, dir).bump = NAME_FAILED;
                self.host.name_errors += 1;
                if !self.warned_name {
                    self.warned_name = true;
                    let msg = if e.is_empty() {
                        format!("no free file name after {MAX_BUMP} tries")
                    } else {
                        e
                    };
                    eprintln!("tcpflow: warning: {msg}; that direction is not written");
                }
                false
            }
        }
    }

    /// Moves the set of names used into its filter when it is full, keeping in the set what
    /// the folder cannot tell yet: the names of directions whose files are not there. Those
    /// are the buffered directions not written so far and the finishing thread's pending
    /// jobs, which this waits for. Every other direction named in this run has its file in
    /// the folder, where [`FileSink::in_folder`] finds it when the filter cannot rule the
    /// name out.
    fn forget_names(&mut self) {
        if let Some(f) = &mut self.finisher {
            f.wait_for(f.submitted());
        }
        self.used_names.forget();
        self.host.name_set_forgets += 1;
        for r in &self.cfg.reserved {
            self.used_names.insert(name_hash(&self.name_hasher, r));
        }
        for f in self.flows.iter().filter(|f| f.live()) {
            for d in &f.dirs {
                if d.named() && d.buf != NO_BUF {
                    let name = &self.bufs[d.buf].name;
                    self.used_names.insert(name_hash(&self.name_hasher, name));
                }
            }
        }
        if let Some((_, name)) = &self.fresh_name {
            self.used_names.insert(name_hash(&self.name_hasher, name));
        }
        self.used_names.limit = self.used_names.len + self.used_names.cap;
    }

    /// Whether something is at `rel` in the output folder: how a forgotten name is known to
    /// be used. A file left by an older run counts too when its name is looked up (it is
    /// kept, as tcpflow 1.6 keeps it, rather than overwritten as it is otherwise).
    fn in_folder(&self, rel: &Path) -> bool {
        std::fs::symlink_metadata(under(&self.cfg.outdir, rel)).is_ok()
    }

    /// The name of a named direction relative to the output folder: the one kept with its
    /// buffer, the one just chosen, or the template's again (it depends only on what the
    /// flow had when the name was chosen). `None` without a name, or without a buffer and
    /// the flow.
    fn name_for(&mut self, flow: Option<&FlowInfo>, slot: u32, dir: Dir) -> Option<PathBuf> {
        let f = self.flows.get(slot as usize).filter(|f| f.live())?;
        let d = f.dirs[dir.index()];
        if !d.named() {
            return None;
        }
        if d.buf != NO_BUF {
            return Some(self.bufs[d.buf].name.clone());
        }
        let k = key(slot, dir);
        if self.fresh_name.as_ref().is_some_and(|(fk, _)| *fk == k) {
            return self.fresh_name.take().map(|(_, p)| p);
        }
        let flow = flow?;
        let p = NameParams {
            conn_index: flow.conn_index.saturating_add(d.bump.into()),
            session: f.session(),
        };
        let name = if d.has(NAMED_WITHOUT_MACS) && flow.macs.is_some() {
            let mut before = *flow;
            before.macs = None;
            self.cfg.template.expand(&before, dir, p)
        } else {
            self.cfg.template.expand(flow, dir, p)
        };
        Some(PathBuf::from(name))
    }

    /// Opens the direction's file: created (truncated) the first time in this run, reopened
    /// without truncation afterwards.
    fn open_file(&mut self, slot: u32, dir: Dir, rel: &Path) -> io::Result<File> {
        if let Some(seq) = self.early.remove(&key(slot, dir)) {
            if let Some(f) = &mut self.finisher {
                f.wait_for(seq);
            }
            // An early write that failed marks the direction failed (the caller checks).
            self.absorb_file_errors();
        }
        let full = under(&self.cfg.outdir, rel);
        let created = self.flows[slot as usize].dirs[dir.index()].has(CREATED);
        let f = crate::safefs::open_file(
            &full,
            crate::safefs::folders_in(rel),
            !created,
            self.cfg.file_mode,
        )?;
        if created {
            self.host.file_reopens += 1;
        } else {
            self.dir_mut(slot, dir).set(CREATED, true);
            self.host.files_written += 1;
        }
        Ok(f)
    }

    fn display_name(&self, rel: &Path) -> PathBuf {
        match &self.cfg.display_dir {
            Some(d) => under(d, rel),
            None => rel.to_path_buf(),
        }
    }

    /// Writes `data` at `off` of the direction's file, through the open-file cache. `flow`
    /// names the file when the direction holds no buffer.
    fn write_at(
        &mut self,
        flow: Option<&FlowInfo>,
        slot: u32,
        dir: Dir,
        off: u64,
        parts: &[&[u8]],
    ) {
        let len: usize = parts.iter().map(|p| p.len()).sum();
        if len == 0 {
            return;
        }
        if self.failed(slot, dir) {
            return self.lose_dir(slot, dir, len);
        }
        let k = key(slot, dir);
        if !self.cache.contains(k) {
            let Some(rel) = self.name_for(flow, slot, dir) else {
                self.fail("internal error: a direction to write has no file name".into());
                return;
            };
            let opened = self.open_file(slot, dir, &rel);
            if self.failed(slot, dir) {
                // An early write of the file failed meanwhile.
                return self.lose_dir(slot, dir, len);
            }
            match opened {
                Ok(f) => {
                    self.cache.insert(k, f);
                }
                Err(e) => {
                    let full = under(&self.cfg.outdir, &rel);
                    let msg = format!("cannot create {}: {}", full.display(), io_message(&e));
                    self.write_failed(slot, dir, &e, msg, len as u64);
                    return;
                }
            }
        }
        let f = self.cache.get(k).expect("just inserted");
        let (n, err) = write_all_at_counted(f, parts, off);
        self.host.bytes_written += n;
        if n > 0 {
            self.note_written(slot, dir, off + n);
            self.dir_mut(slot, dir).set(STAMPED, false);
        }
        if let Some(e) = err {
            let rel = self.name_for(flow, slot, dir).unwrap_or_default();
            let full = under(&self.cfg.outdir, &rel);
            let msg = format!("writing {}: {}", full.display(), io_message(&e));
            self.write_failed(slot, dir, &e, msg, len as u64 - n);
        }
    }

    /// A write of this thread failed: fatal, or for the direction's file only.
    fn write_failed(&mut self, slot: u32, dir: Dir, e: &io::Error, msg: String, lost: u64) {
        if is_fatal(e) {
            return self.fail(msg);
        }
        let id = dir_id(self.flows[slot as usize].session(), dir);
        self.file_failed(slot, id, &msg, lost);
    }

    /// Doubles the buffers' budget, up to `Limits::total_buffer`.
    fn grow_budget(&mut self) {
        self.budget = (self.budget * 2).min(self.cfg.limits.total_buffer);
    }

    /// Gives a direction an (empty) buffer entry, named, its overhead counted. A direction
    /// whose last write was an early one (the budget was over) goes on: its file will be
    /// opened again, which a larger budget would have saved, so the budget grows.
    fn new_buf(&mut self, flow: &FlowInfo, dir: Dir) -> u32 {
        if self.flows[flow.slot as usize].dirs[dir.index()].has(STAMPED) {
            self.grow_budget();
        }
        let name = self
            .name_for(Some(flow), flow.slot, dir)
            .unwrap_or_default();
        let b = self.bufs.alloc(flow.slot, dir, name, flow.first_ts.0);
        self.dir_mut(flow.slot, dir).buf = b;
        b
    }

    /// Takes a direction's buffer entry away: its bytes, their offset and the name; the
    /// memory is no longer counted.
    fn take_buf(&mut self, slot: u32, dir: Dir) -> Option<(Held, u64, PathBuf)> {
        let b = std::mem::replace(&mut self.dir_mut(slot, dir).buf, NO_BUF);
        if b == NO_BUF {
            return None;
        }
        Some(self.bufs.release(b))
    }

    /// Writes a direction's buffer out and frees it.
    fn flush_dir(&mut self, slot: u32, dir: Dir) {
        self.flush_dir_keeping(slot, dir, false);
    }

    /// Writes a direction's buffer out; with `keep`, the emptied buffer keeps its memory (still
    /// counted in `buffered`) for the data that follows, so a streaming direction does not
    /// grow a new buffer by doubling after every write.
    fn flush_dir_keeping(&mut self, slot: u32, dir: Dir, keep: bool) {
        let b = self.flows[slot as usize].dirs[dir.index()].buf;
        if b == NO_BUF {
            return;
        }
        let Some((data, off)) = self.bufs.take_data(b) else {
            return;
        };
        data.with_parts(|parts| self.write_at(None, slot, dir, off, parts));
        if self.flows[slot as usize].dirs[dir.index()].buf != b {
            // The file failed: its buffer entry was given up.
            self.bufs.uncount(data.capacity());
            return;
        }
        if keep {
            self.bufs.give_back(b, data);
        } else {
            self.bufs.uncount(data.capacity());
            drop(data);
            self.take_buf(slot, dir);
        }
    }

    /// Writes the oldest buffers until the total is under three quarters of the budget.
    fn enforce_budget(&mut self) {
        if self.bufs.held <= self.budget {
            return;
        }
        self.host.buffer_budget_flushes += 1;
        let target = self.budget / 4 * 3;
        while self.bufs.held > target {
            let Some((slot, dir)) = self.bufs.pop_oldest() else {
                break;
            };
            self.flush_early(slot, dir);
        }
    }

    /// Writes a direction's buffer out on the finishing thread although the direction goes
    /// on (the budget is over), so that this thread goes on decoding meanwhile. The queue
    /// keeps the order: this direction's last job comes after it, and before this thread
    /// opens the file itself it waits for it (`open_file`).
    fn flush_early(&mut self, slot: u32, dir: Dir) {
        let k = key(slot, dir);
        let mtime_ns = match self.flows[slot as usize].dirs[dir.index()].buf {
            NO_BUF => return,
            b => self.bufs[b].mtime_ns,
        };
        let Some((buf, off, name)) = self.take_buf(slot, dir) else {
            return;
        };
        if buf.is_empty() {
            return;
        }
        let file = self.cache.remove(k);
        let d = self.dir_mut(slot, dir);
        let create = !d.has(CREATED);
        d.set(CREATED, true);
        // The job sets the time too: a direction that writes nothing more needs no job at
        // its end.
        d.set(STAMPED, true);
        self.note_written(slot, dir, off + buf.len() as u64);
        let id = dir_id(self.flows[slot as usize].session(), dir);
        let job = self.file_job((slot, id), file, &name, create, buf, off, None, mtime_ns);
        if let Some(seq) = self.submit(job) {
            if self.early.len() >= 4 * QUEUE {
                let done = self.finisher.as_ref().map_or(u64::MAX, |f| f.done_jobs());
                self.early.retain(|_, s| *s > done);
            }
            self.early.insert(k, seq);
        }
    }

    /// Appends bytes that continue the buffer (or start it), writing it first when full.
    fn append(&mut self, flow: &FlowInfo, dir: Dir, off: u64, data: &[u8]) {
        let slot = flow.slot;
        let cap = self.cfg.limits.dir_buffer;
        let b = self.flows[slot as usize].dirs[dir.index()].buf;
        if b != NO_BUF && !self.bufs[b].data.is_empty() {
            let e = &self.bufs[b];
            let follows = e.off + e.data.len() as u64 == off;
            let full = e.data.len() + data.len() > cap;
            if !follows || full {
                // A full buffer is a streaming direction: keep its memory, within the budget.
                let keep = full && follows && self.bufs.held <= self.budget / 2;
                self.flush_dir_keeping(slot, dir, keep);
                if self.failed(slot, dir) {
                    return self.lose_dir(slot, dir, data.len());
                }
            }
        }
        if data.len() >= cap {
            self.write_at(Some(flow), slot, dir, off, &[data]);
            return;
        }
        let b = match self.flows[slot as usize].dirs[dir.index()].buf {
            NO_BUF => self.new_buf(flow, dir),
            b => b,
        };
        // A buffer that must grow past a quarter of its cap is a long direction's: a larger
        // budget lets it grow to the cap at once, rather than a segment at a time.
        let held = &self.bufs[b].data;
        if held.len() + data.len() > held.capacity() && held.capacity() >= cap / 4 {
            self.grow_budget();
        }
        self.bufs.push(b, off, data, cap, self.budget);
        self.host.buffer_peak_bytes = self.host.buffer_peak_bytes.max(self.bufs.held as u64);
        self.enforce_budget();
    }

    /// Stores delivered bytes of a direction at their offset.
    fn store(&mut self, flow: &FlowInfo, dir: Dir, offset: u64, data: &[u8]) {
        if !self.ensure_name(flow, dir) {
            self.host.unwritten_bytes += data.len() as u64;
            return;
        }
        let slot = flow.slot;
        if self.failed(slot, dir) {
            return self.lose_dir(slot, dir, data.len());
        }
        let d = self.flows[slot as usize].dirs[dir.index()];
        let (buf_off, buf_len) = match d.buf {
            NO_BUF => (0, 0),
            b => {
                let e = &self.bufs[b];
                (e.off, e.data.len() as u64)
            }
        };
        let mut off = offset;
        let mut rest = data;
        if buf_len > 0 && off < buf_off + buf_len {
            // Bytes again (under the `last` overlap policy): before the buffer they go to the
            // file, inside it they replace the buffered copy.
            if off < buf_off {
                let n = (buf_off - off).min(rest.len() as u64) as usize;
                self.write_at(Some(flow), slot, dir, off, &[&rest[..n]]);
                off += n as u64;
                rest = &rest[n..];
                if self.failed(slot, dir) {
                    return self.lose_dir(slot, dir, rest.len());
                }
            }
            if !rest.is_empty() {
                let e = &mut self.bufs[d.buf];
                let start = (off - buf_off) as usize;
                let n = rest.len().min(e.data.len() - start);
                e.data.overwrite(start, &rest[..n]);
                off += n as u64;
                rest = &rest[n..];
            }
        } else if buf_len == 0 && off < self.written_end(slot, dir) {
            let n = (self.written_end(slot, dir) - off).min(rest.len() as u64) as usize;
            self.write_at(Some(flow), slot, dir, off, &[&rest[..n]]);
            off += n as u64;
            rest = &rest[n..];
            if self.failed(slot, dir) {
                return self.lose_dir(slot, dir, rest.len());
            }
        }
        if !rest.is_empty() {
            self.append(flow, dir, off, rest);
        }
    }

    /// Compares bytes that came again with the stored copy (buffer or file).
    fn differs(&mut self, flow: &FlowInfo, dir: Dir, offset: u64, data: &[u8]) -> bool {
        let slot = flow.slot;
        let Some(f) = self.flows.get(slot as usize).filter(|f| f.live()) else {
            return false;
        };
        let d = f.dirs[dir.index()];
        if !d.named() || d.has(FAILED) {
            return false;
        }
        let (buf_off, buf_len) = match d.buf {
            NO_BUF => (0, 0),
            b => (self.bufs[b].off, self.bufs[b].data.len() as u64),
        };
        let mut differ = false;
        // The buffered part.
        if buf_len > 0 {
            let lo = offset.max(buf_off);
            let hi = (offset + data.len() as u64).min(buf_off + buf_len);
            if lo < hi {
                let b = &data[(lo - offset) as usize..(hi - offset) as usize];
                differ |= !self.bufs[d.buf].data.equals_at((lo - buf_off) as usize, b);
            }
        }
        // The part already in the file.
        let written_end = self.written_end(slot, dir);
        let file_hi = if buf_len == 0 {
            written_end
        } else {
            buf_off.min(written_end)
        };
        let hi = (offset + data.len() as u64).min(file_hi);
        if !differ && offset < hi && d.has(CREATED) {
            let want = &data[..(hi - offset) as usize];
            let k = key(slot, dir);
            if !self.cache.contains(k) {
                let Some(rel) = self.name_for(Some(flow), slot, dir) else {
                    return false;
                };
                match self.open_file(slot, dir, &rel) {
                    Ok(f) => {
                        self.cache.insert(k, f);
                    }
                    Err(_) => return false,
                }
            }
            let file = self.cache.get(k).expect("just inserted");
            let mut got = vec![0u8; want.len()];
            let mut n = 0;
            while n < got.len() {
                match file.read_at(&mut got[n..], offset + n as u64) {
                    Ok(0) | Err(_) => break,
                    Ok(r) => n += r,
                }
            }
            differ |= got[..n] != want[..n];
        }
        differ
    }

    /// Finishes a direction's file: last bytes, length (a trailing gap is a hole), time.
    /// `resumable`: the flow was evicted and may be picked up again, when its writes must
    /// wait for this last job. Returns its name (relative to the output folder) and size.
    fn close_dir(&mut self, flow: &FlowInfo, dir: Dir, resumable: bool) -> Option<(PathBuf, u64)> {
        let slot = flow.slot;
        let f = self.flows.get(slot as usize).filter(|f| f.live())?;
        let (d, id) = (f.dirs[dir.index()], dir_id(f.session(), dir));
        if !d.named() {
            return None;
        }
        // The direction ends here: its name moves to the caller (the report).
        let (buf, off, name) = match self.take_buf(slot, dir) {
            Some(b) => b,
            None => (Held::default(), 0, self.name_for(Some(flow), slot, dir)?),
        };
        self.dir_mut(slot, dir).bump = UNNAMED;
        if d.has(FAILED) {
            // Nothing more goes to the file; the record says what it holds.
            self.cache.remove(key(slot, dir));
            self.early.remove(&key(slot, dir));
            return Some((name, 0));
        }
        // Within `-b`: what was cut never came here.
        let file_len = d.end;
        let file = self.cache.remove(key(slot, dir));
        let create = !d.has(CREATED);
        let mut written_end = d.written_end;
        if !buf.is_empty() {
            written_end = written_end.max(off + buf.len() as u64);
        }
        let set_len = (written_end < file_len).then_some(file_len);
        let d = self.dir_mut(slot, dir);
        d.written_end = written_end;
        d.set(CREATED, true);
        let stamped = d.has(STAMPED);
        // The file was created empty in this run and only grows by our writes and
        // `set_len` (a failure is reported as the run's error).
        let size = written_end.max(file_len);
        self.early.remove(&key(slot, dir));
        let job = self.file_job(
            (slot, id),
            file,
            &name,
            create,
            buf,
            off,
            set_len,
            flow.first_ts.0,
        );
        if !(job.only_time() && stamped) {
            // Otherwise the last write was an early one, which set the time too.
            if let Some(seq) = self.submit(job) {
                if resumable {
                    self.early.insert(key(slot, dir), seq);
                }
            }
        }
        Some((name, size))
    }

    /// Writes the report records whose files are finished (`all`: every one; the finishing
    /// thread is done).
    fn emit_records(&mut self, all: bool) {
        if self.pending.is_empty() {
            return;
        }
        // Jobs done first, then their failures: a job's failure is recorded before it
        // counts as done.
        let done = match &self.finisher {
            Some(f) if !all => f.done_jobs(),
            _ => u64::MAX,
        };
        self.absorb_file_errors();
        while self.pending.front().is_some_and(|(seq, _)| *seq <= done) {
            let (_, p) = self.pending.pop_front().expect("a record");
            self.finish_record(p);
        }
    }

    /// A direction whose file is finished, with what did not reach it.
    fn finish_record(&mut self, p: Pending) {
        let lost = self.lost.remove(&dir_id(p.session, p.dir));
        let file = p.file.map(|(shown, path, size)| {
            // A failed file holds what reached it (a FIFO under its name: none of it).
            let size = match lost {
                Some(_) => std::fs::symlink_metadata(&path)
                    .ok()
                    .filter(|m| m.is_file())
                    .map_or(0, |m| m.len()),
                None => size,
            };
            FinishedFile { shown, path, size }
        });
        let report_extra = self
            .scan
            .as_mut()
            .and_then(|s| s.take_extra(&p.flow, p.dir))
            .map(|x| (x.xml, x.json));
        self.finished.push(Finished {
            report_objects: std::mem::take(&mut self.scan_records),
            report_extra,
            flow: p.flow,
            dir: p.dir,
            reason: p.reason,
            session: p.session,
            file,
            truncated_bytes: p.truncated,
            write_lost_bytes: lost.unwrap_or(0),
        });
    }

    /// A job for the finishing thread: `buf` at `off` of the file `name` (relative to the
    /// output folder), then its length and time.
    #[allow(clippy::too_many_arguments)]
    fn file_job(
        &self,
        (slot, id): (u32, u64),
        file: Option<File>,
        name: &Path,
        create: bool,
        buf: Held,
        off: u64,
        set_len: Option<u64>,
        mtime_ns: u64,
    ) -> FinalWrite {
        FinalWrite {
            slot,
            id,
            file,
            path: under(&self.cfg.outdir, name),
            create,
            folders: crate::safefs::folders_in(name),
            buf,
            off,
            set_len,
            mtime: UNIX_EPOCH + Duration::from_nanos(mtime_ns),
        }
    }

    /// Hands `job` to the finishing thread, after any earlier job for the same file (or does
    /// it here when there is none), and counts the file as written or reopened when the job
    /// opens it. Returns the job's number on the thread.
    fn submit(&mut self, job: FinalWrite) -> Option<u64> {
        if job.file.is_none() && !job.only_time() {
            if job.create {
                self.host.files_written += 1;
            } else {
                self.host.file_reopens += 1;
            }
        }
        match &mut self.finisher {
            Some(f) => Some(f.submit(job)),
            None => {
                let mut f = Finisher::inline(self.cfg.file_mode);
                f.submit(job);
                for e in f.wait() {
                    self.fail(e);
                }
                None
            }
        }
    }
}

impl FileSink {
    /// Forgets a flow's state; any buffer still held (a suppressed flow holds none) goes with it.
    fn release(&mut self, slot: u32) {
        if !self.flows.get(slot as usize).is_some_and(|f| f.live()) {
            return;
        }
        for dir in Dir::BOTH {
            self.take_buf(slot, dir);
            self.truncated.remove(&key(slot, dir));
            if self
                .fresh_name
                .as_ref()
                .is_some_and(|(k, _)| *k == key(slot, dir))
            {
                self.fresh_name = None;
            }
        }
        self.flows[slot as usize] = FlowOut::EMPTY;
    }
}

impl FileSink {
    /// Bytes at `offset` of `dir` into the direction's buffer (or file).
    #[inline]
    fn write_data(&mut self, flow: &FlowInfo, dir: Dir, offset: u64, data: &[u8]) {
        let cap = self.cfg.limits.dir_buffer;
        let healthy = self.fatal.is_none();
        let d = &mut self.flow_mut(flow.slot).dirs[dir.index()];
        d.end = d.end.max(offset + data.len() as u64);
        let b = d.buf;
        // The common case: in-order bytes that fit the direction's buffer as allocated. The
        // memory counted does not change, so there is nothing else to do (`append` would
        // do the same).
        if healthy && b != NO_BUF {
            let e = &mut self.bufs[b];
            if !e.data.is_empty()
                && e.off + e.data.len() as u64 == offset
                && e.data.len() + data.len() <= cap
                && e.data.try_extend(data)
            {
                return;
            }
        }
        if data.is_empty() || !healthy {
            return;
        }
        self.store(flow, dir, offset, data);
    }
}

impl Sink for FileSink {
    fn open(&mut self, flow: &FlowInfo) {
        let i = flow.slot as usize;
        if i >= self.flows.len() {
            self.flows.resize(i + 1, FlowOut::EMPTY);
        }
        if self.flows[i].live() {
            // A close for this slot was missed (the engine never does this): write the old
            // flow's buffered bytes out; it gets no report record nor file time, as its
            // figures are gone.
            for dir in Dir::BOTH {
                self.flush_dir(flow.slot, dir);
                self.cache.remove(key(flow.slot, dir));
            }
            self.release(flow.slot);
        }
        let f = self.flows[i];
        if f.meta & EVICTED != 0 && flow.dirs.iter().any(|d| d.stream_len > 0) {
            // The evicted connection picked up again (a new one starts at 0): same names,
            // same files, its bytes at their offsets.
            self.flows[i].meta = (f.meta & !EVICTED) | LIVE;
            self.scan_open(flow);
            return;
        }
        self.start_flow(flow.slot);
        self.scan_open(flow);
    }

    #[inline]
    fn data(&mut self, flow: &FlowInfo, dir: Dir, offset: u64, data: &[u8]) {
        // The file first: a direction's first byte names it, and the scanners name what they
        // carve after it (`Scanner::named`).
        self.write_data(flow, dir, offset, data);
        if let Some(s) = &mut self.scan {
            s.data(flow, dir, offset, data, &mut self.scan_records);
        }
    }

    fn gap(&mut self, flow: &FlowInfo, dir: Dir, offset: u64, len: u64, _reason: GapReason) {
        if let Some(s) = &mut self.scan {
            s.gap(flow, dir, offset, len, &mut self.scan_records);
        }
        let d = &mut self.flow_mut(flow.slot).dirs[dir.index()];
        d.end = d.end.max(offset.saturating_add(len));
    }

    /// The file has the hole at these offsets: written there, as if in order.
    fn late(&mut self, flow: &FlowInfo, dir: Dir, offset: u64, data: &[u8]) -> bool {
        if let Some(s) = &mut self.scan {
            s.late(flow, dir, offset, data, &mut self.scan_records);
        }
        self.write_data(flow, dir, offset, data);
        true
    }

    fn redelivered(&mut self, flow: &FlowInfo, dir: Dir, offset: u64, data: &[u8]) -> bool {
        self.differs(flow, dir, offset, data)
    }

    fn close(&mut self, flow: &FlowInfo, reason: CloseReason) {
        let Some(f) = self.flows.get(flow.slot as usize).filter(|f| f.live()) else {
            return;
        };
        let session = f.session();
        if let Some(s) = &mut self.scan {
            s.close(flow, reason, &mut self.scan_records);
        }
        let resumable = reason == CloseReason::Evicted;
        let bumps = [f.dirs[0].bump, f.dirs[1].bump];
        for dir in Dir::BOTH {
            let file = self.close_dir(flow, dir, resumable);
            if flow.dirs[dir.index()].packets == 0 && file.is_none() {
                continue;
            }
            let truncated = self.truncated.remove(&key(flow.slot, dir)).unwrap_or(0);
            let file = file
                .map(|(rel, size)| (self.display_name(&rel), under(&self.cfg.outdir, &rel), size));
            // After the file's jobs, all submitted by now.
            let seq = self.finisher.as_ref().map_or(0, |f| f.submitted());
            self.pending.push_back((
                seq,
                Pending {
                    flow: *flow,
                    dir,
                    reason,
                    session,
                    truncated,
                    file,
                },
            ));
        }
        if self.pending.len() > 4 * QUEUE {
            // Bounded: wait for the oldest record's file.
            if let (Some(f), Some(&(seq, _))) = (&mut self.finisher, self.pending.front()) {
                f.wait_for(seq);
            }
        }
        self.emit_records(false);
        let kept = resumable.then(|| self.flows[flow.slot as usize].dirs);
        self.release(flow.slot);
        if let Some(mut dirs) = kept {
            // Names (closing gave them to the report), lengths and what was written stay.
            for (d, bump) in dirs.iter_mut().zip(bumps) {
                d.bump = bump;
                d.buf = NO_BUF;
            }
            self.flows[flow.slot as usize] = FlowOut {
                meta: session | EVICTED,
                dirs,
            };
        }
    }
}

impl Output for FileSink {
    fn skipped(&mut self, _flow: &FlowInfo) {
        self.next_session += 1;
    }
    fn cut(&mut self, flow: &FlowInfo, dir: Dir, bytes: u64) {
        *self.truncated.entry(key(flow.slot, dir)).or_insert(0) += bytes;
    }
    fn take_finished(&mut self, out: &mut Vec<Finished>) {
        take_all(&mut self.finished, out);
    }
    #[inline]
    fn should_stop(&self) -> bool {
        self.stopped()
    }
    fn flush(&mut self) {
        if let Some(s) = &mut self.scan {
            // (wip-hperf) The HTTP bodies' worker thread finishes: its last records and
            // counters come in before the last directions' records, which carry them.
            s.finish(&mut self.scan_records);
        }
        self.wait_writes();
    }
    fn take_objects(&mut self, out: &mut crate::report::Objects) {
        out.append(&mut self.scan_records);
    }
    fn counters(&self, host: &mut HostStats) {
        host.add(&self.host);
    }
    fn finish(&mut self, end: &mut End) {
        self.wait_writes();
        end.errors.extend(self.fatal.take());
        if let Some(s) = &mut self.scan {
            end.groups.push(s.group());
        }
        self.cache.clear();
        self.host.file_evictions = self.cache.evictions;
    }
}

#[cfg(test)]
#[allow(clippy::needless_range_loop)]
mod tests {
    #[test]
    fn names_hash_as_the_file_system_reads_them() {
        let h =
            std::hash::BuildHasherDefault::<std::collections::hash_map::DefaultHasher>::default();
        let n = |s: &str| super::name_hash(&h, Path::new(s));
        assert_eq!(n("a/b"), n("a//b"));
        assert_eq!(n("a/b"), n("a/./b/"));
        assert_eq!(n("./a/b"), n("./a//b"));
        assert_ne!(n("a/b"), n("a/c"));
        assert_ne!(n("a/../b"), n("b"));
        assert_eq!(
            super::under(Path::new("out"), Path::new("a/b")),
            Path::new("out/a/b")
        );
        assert_eq!(
            super::under(Path::new("out/"), Path::new("a")),
            Path::new("out/a")
        );
        assert_eq!(super::under(Path::new(""), Path::new("a")), Path::new("a"));
        assert_eq!(
            super::under(Path::new("out"), Path::new("/x")),
            Path::new("/x")
        );
    }

    use super::*;
    use crate::template::tests::flow4;
    use crate::template::DEFAULT;
    use std::os::unix::fs::FileTypeExt;
    use tcpflow_core::Addr;

    fn tmpdir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("tcpflow-out-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn cfg(dir: &Path, limits: Limits) -> OutputConfig {
        OutputConfig {
            template: Template::parse(DEFAULT).unwrap(),
            file_mode: 0o644,
            outdir: dir.to_path_buf(),
            display_dir: None,
            limits,
            reserved: Vec::new(),
        }
    }

    fn flow_n(i: u32) -> FlowInfo {
        let mut f = flow4();
        f.slot = i;
        f.key.addr[0] = Addr::V4([10, 1, (i >> 8) as u8, i as u8]);
        f.key.port[0] = 1024 + (i % 60000) as u16;
        f
    }

    /// Deterministic bytes of flow `i`, direction `d`, offset `o`.
    fn byte(i: u32, d: usize, o: u64) -> u8 {
        (i.wrapping_mul(31)
            .wrapping_add(d as u32 * 7)
            .wrapping_add(o as u32 * 13)
            % 251) as u8
    }

    /// Bytes `o..o + n` of flow `i`'s A-to-B stream.
    fn chunk(i: usize, o: u64, n: u64) -> Vec<u8> {
        (o..o + n).map(|k| byte(i as u32, 0, k)).collect()
    }

    /// A file writer into `dir` with `n` flows open (`flow_n`).
    fn open_sink(dir: &Path, limits: Limits, n: u32) -> (FileSink, Vec<FlowInfo>) {
        let mut out = FileSink::new(cfg(dir, limits), n as usize);
        let flows: Vec<FlowInfo> = (0..n).map(flow_n).collect();
        for f in &flows {
            out.open(f);
        }
        (out, flows)
    }

    /// Closes every flow (by FIN, with `packets` A-to-B packets) and waits for the files.
    fn close_all(out: &mut FileSink, flows: &[FlowInfo], packets: u64) {
        for f in flows {
            let mut f = *f;
            f.dirs[0].packets = packets;
            out.close(&f, CloseReason::Fin);
        }
        out.wait_writes();
        assert!(out.fatal().is_none(), "{:?}", out.fatal());
    }

    /// The A-to-B file of the `i`-th flow of `open_sink`, by the default template.
    fn a_to_b_file(dir: &Path, f: &FlowInfo, i: usize) -> PathBuf {
        let name = Template::parse(DEFAULT).unwrap().expand(
            f,
            Dir::AtoB,
            NameParams {
                conn_index: 0,
                session: i as u64,
            },
        );
        dir.join(name)
    }

    /// 4 open files, 1 KiB per direction, 16 KiB in all: the budget is always over, so
    /// buffers go out early on the finishing thread (once it has started) and the
    /// directions' next writes reopen the files after those jobs.
    #[test]
    fn more_flows_than_the_budget_every_byte_right() {
        let limits = Limits {
            dir_buffer: 1024,
            total_buffer: 16 * 1024,
            max_open_files: 4,
            ..Limits::default()
        };
        let out = interleaved_flows_every_byte_right("budget", limits);
        assert!(out.host.buffer_budget_flushes > 0);
        assert!(out.host.file_reopens > 0);
    }

    /// The buffers' budget starts at `first_buffer` and stays there while no direction goes
    /// on after an early write (each file written once: more memory would save nothing);
    /// once directions do, it doubles up to `total_buffer`. Every byte is right either way.
    #[test]
    fn budget_grows_when_directions_go_on_after_early_writes() {
        let dir = tmpdir("grow");
        let limits = Limits {
            dir_buffer: 64,
            total_buffer: 16 * 1024,
            first_buffer: 2048,
            max_open_files: 4,
            ..Limits::default()
        };
        let (mut out, flows) = open_sink(&dir, limits, 400);
        for (i, f) in flows.iter().enumerate() {
            out.data(f, Dir::AtoB, 0, &chunk(i, 0, 40));
        }
        assert!(out.host.buffer_budget_flushes > 0);
        assert_eq!(out.budget, 2048, "no direction went on: the budget stays");
        assert!(
            out.host.buffer_peak_bytes <= 2048 + 64 + super::super::buffers::BUF_OVERHEAD as u64
        );
        for (i, f) in flows.iter().enumerate() {
            out.data(f, Dir::AtoB, 40, &chunk(i, 40, 40));
        }
        assert_eq!(out.budget, 16 * 1024, "directions went on: the budget grew");
        close_all(&mut out, &flows, 2);
        for (i, f) in flows.iter().enumerate() {
            let got = std::fs::read(a_to_b_file(&dir, f, i)).unwrap();
            assert_eq!(got, chunk(i, 0, 80));
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A long direction (its buffer past a quarter of its cap must grow while the buffers
    /// hold a quarter of the budget or more) grows the budget; a short one does not.
    #[test]
    fn budget_grows_for_a_long_direction() {
        let dir = tmpdir("grow-long");
        let limits = Limits {
            dir_buffer: 64,
            total_buffer: 16 * 1024,
            first_buffer: 4096,
            ..Limits::default()
        };
        let (mut out, flows) = open_sink(&dir, limits, 6);
        for f in &flows[1..] {
            out.data(f, Dir::AtoB, 0, &[7; 40]);
        }
        assert!(out.bufs.held >= 1024, "a quarter of the budget held");
        let f = flows[0];
        out.data(&f, Dir::AtoB, 0, &[1; 10]);
        out.data(&f, Dir::AtoB, 10, &[2; 4]);
        assert_eq!(
            out.budget, 4096,
            "a buffer of 10 growing: a short direction"
        );
        out.data(&f, Dir::AtoB, 14, &[3; 30]);
        assert_eq!(
            out.budget, 8192,
            "a buffer of 16 or more growing: a long direction"
        );
        close_all(&mut out, &flows, 3);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A direction whose buffer went out early on the finishing thread and that is then
    /// written by this thread (a chunk larger than its buffer) keeps its bytes: the
    /// direct write waits for the early one, which creates (truncates) the file.
    #[test]
    fn early_writes_come_before_direct_ones() {
        let dir = tmpdir("early");
        let limits = Limits {
            dir_buffer: 64,
            total_buffer: 2048,
            max_open_files: 4,
            ..Limits::default()
        };
        let (mut out, flows) = open_sink(&dir, limits, 400);
        // Small chunks: the budget is over all the time, buffers go out early (past the
        // first jobs, on the thread).
        for (i, f) in flows.iter().enumerate() {
            out.data(f, Dir::AtoB, 0, &chunk(i, 0, 40));
        }
        // Then every other direction gets a chunk too large for a buffer: written at once,
        // here. The others end with nothing more to write: their early write set the time.
        for (i, f) in flows.iter().enumerate().filter(|(i, _)| i % 2 == 0) {
            out.data(f, Dir::AtoB, 40, &chunk(i, 40, 100));
        }
        close_all(&mut out, &flows, 2);
        assert!(out.host.buffer_budget_flushes > 0);
        for (i, f) in flows.iter().enumerate() {
            let path = a_to_b_file(&dir, f, i);
            let got = std::fs::read(&path).unwrap();
            let len = if i % 2 == 0 { 140 } else { 40 };
            assert_eq!(got, chunk(i, 0, len), "{}", path.display());
            let mtime = std::fs::metadata(&path).unwrap().modified().unwrap();
            assert_eq!(
                mtime,
                UNIX_EPOCH + Duration::from_nanos(f.first_ts.0),
                "{}",
                path.display()
            );
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// FIFOs under two directions' names while buffers go out early on the finishing thread
    /// (400 flows: past the inline start): the early write fails there; the direction that
    /// then writes here sees it and writes nothing, the other ends with nothing to write.
    /// Each costs its own bytes; every other file is right; only what reached files counts
    /// as written.
    #[test]
    fn failed_early_writes_cost_their_file_only() {
        let dir = tmpdir("fifo-early");
        let limits = Limits {
            dir_buffer: 64,
            total_buffer: 2048,
            max_open_files: 4,
            ..Limits::default()
        };
        let mut out = FileSink::new(cfg(&dir, limits), 400);
        let flows: Vec<FlowInfo> = (0..400).map(flow_n).collect();
        let name = |i: usize| {
            Template::parse(DEFAULT).unwrap().expand(
                &flows[i],
                Dir::AtoB,
                NameParams {
                    conn_index: 0,
                    session: i as u64,
                },
            )
        };
        for i in [307, 308] {
            let c = std::ffi::CString::new(dir.join(name(i)).to_str().unwrap()).unwrap();
            // SAFETY: a NUL-terminated path.
            assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
        }
        for f in &flows {
            out.open(f);
        }
        let chunk = |i: usize, o: u64, n: u64| -> Vec<u8> {
            (o..o + n).map(|k| byte(i as u32, 0, k)).collect()
        };
        for (i, f) in flows.iter().enumerate() {
            out.data(f, Dir::AtoB, 0, &chunk(i, 0, 40));
        }
        for (i, f) in flows.iter().enumerate().filter(|(i, _)| i % 2 == 0) {
            out.data(f, Dir::AtoB, 40, &chunk(i, 40, 100));
        }
        close_all(&mut out, &flows, 2);
        assert!(out.host.buffer_budget_flushes > 0);
        let mut on_disk = 0;
        for i in 0..400 {
            let p = dir.join(name(i));
            if i == 307 || i == 308 {
                assert!(std::fs::symlink_metadata(&p).unwrap().file_type().is_fifo());
                continue;
            }
            let got = std::fs::read(&p).unwrap();
            assert_eq!(got, chunk(i, 0, if i % 2 == 0 { 140 } else { 40 }), "{i}");
            on_disk += got.len() as u64;
        }
        assert_eq!(out.host.files_failed, 2);
        assert_eq!(out.host.write_lost_bytes, 40 + 140);
        assert_eq!(out.host.bytes_written, on_disk);
        assert_eq!(out.host.files_written, 398);
        assert!(out.lost.is_empty() && out.pending.is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// 4 open files, 64 bytes per direction, the budget never over: buffers go out when full,
    /// through the open-file cache, which has to close files and reopen them.
    #[test]
    fn more_flows_than_open_files_every_byte_right() {
        let limits = Limits {
            dir_buffer: 64,
            total_buffer: 1 << 20,
            max_open_files: 4,
            ..Limits::default()
        };
        let out = interleaved_flows_every_byte_right("cache", limits);
        assert_eq!(out.host.buffer_budget_flushes, 0);
        assert!(
            out.cache.evictions > 0,
            "the cache never had to close a file"
        );
        assert!(out.host.file_reopens > 0);
    }

    /// 300 flows written in turns of 37 bytes, with a gap and a trailing gap: every byte,
    /// length and the time right.
    fn interleaved_flows_every_byte_right(tag: &str, limits: Limits) -> FileSink {
        let dir = tmpdir(tag);
        let mut out = FileSink::new(cfg(&dir, limits), 300);
        let flows: Vec<FlowInfo> = (0..300).map(flow_n).collect();
        for f in &flows {
            out.open(f);
        }
        // Interleave: every flow gets 37-byte chunks in turn, both directions, with one
        // gap in the middle of direction B.
        let mut offs = vec![[0u64; 2]; flows.len()];
        for round in 0..60 {
            for (i, f) in flows.iter().enumerate() {
                for d in 0..2 {
                    let dir = dir_of(d);
                    if d == 1 && round == 30 {
                        out.gap(f, dir, offs[i][d], 100, GapReason::Lost);
                        offs[i][d] += 100;
                        continue;
                    }
                    let o = offs[i][d];
                    let chunk: Vec<u8> = (0..37).map(|k| byte(i as u32, d, o + k)).collect();
                    out.data(f, dir, o, &chunk);
                    offs[i][d] += 37;
                }
            }
        }
        // A trailing gap on direction A of flow 0.
        out.gap(&flows[0], Dir::AtoB, offs[0][0], 50, GapReason::Lost);
        for f in &flows {
            let mut f = *f;
            f.dirs[0].packets = 60;
            f.dirs[1].packets = 60;
            out.close(&f, CloseReason::Fin);
        }
        out.wait_writes();
        assert!(out.fatal().is_none(), "{:?}", out.fatal());
        for (i, f) in flows.iter().enumerate() {
            for d in 0..2 {
                let t = Template::parse(DEFAULT).unwrap();
                let name = t.expand(
                    f,
                    dir_of(d),
                    NameParams {
                        conn_index: 0,
                        session: i as u64,
                    },
                );
                let got = std::fs::read(dir.join(&name)).unwrap();
                let trailing = if i == 0 && d == 0 { 50 } else { 0 };
                assert_eq!(got.len() as u64, offs[i][d] + trailing, "{name}");
                for (o, &b) in got.iter().enumerate() {
                    let o = o as u64;
                    let in_gap = d == 1 && (30 * 37..30 * 37 + 100).contains(&o);
                    let in_tail = o >= offs[i][d];
                    let want = if in_gap || in_tail {
                        0
                    } else {
                        byte(i as u32, d, o)
                    };
                    assert_eq!(b, want, "{name} at {o}");
                }
            }
        }
        let mtime = std::fs::metadata(dir.join(Template::parse(DEFAULT).unwrap().expand(
            &flows[1],
            Dir::AtoB,
            NameParams {
                conn_index: 0,
                session: 1,
            },
        )))
        .unwrap()
        .modified()
        .unwrap();
        assert_eq!(
            mtime,
            UNIX_EPOCH + Duration::from_nanos(flows[1].first_ts.0)
        );
        std::fs::remove_dir_all(&dir).unwrap();
        out
    }

    #[test]
    fn short_flow_is_one_write_and_old_files_are_overwritten() {
        let dir = tmpdir("short");
        let f = flow4();
        let file = a_to_b_file(&dir, &f, 0);
        std::fs::write(&file, vec![b'x'; 5000]).unwrap();
        let mut out = FileSink::new(cfg(&dir, Limits::default()), 4);
        out.open(&f);
        out.data(&f, Dir::AtoB, 0, b"hello ");
        out.data(&f, Dir::AtoB, 6, b"world");
        assert_eq!(
            out.host.files_written, 0,
            "a short flow is written at close"
        );
        let mut fc = f;
        fc.dirs[0].packets = 2;
        out.close(&fc, CloseReason::Fin);
        out.wait_writes();
        assert_eq!(std::fs::read(&file).unwrap(), b"hello world");
        assert_eq!(out.host.files_written, 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// Late bytes for a reported gap are written into the hole the file has there.
    #[test]
    fn late_bytes_fill_the_hole() {
        let dir = tmpdir("late");
        let f = flow4();
        let file = a_to_b_file(&dir, &f, 0);
        let mut out = FileSink::new(cfg(&dir, Limits::default()), 4);
        out.open(&f);
        out.data(&f, Dir::AtoB, 0, b"hello ");
        out.gap(&f, Dir::AtoB, 6, 5, GapReason::Lost);
        out.data(&f, Dir::AtoB, 11, b"!");
        assert!(out.late(&f, Dir::AtoB, 6, b"wor"));
        assert!(out.late(&f, Dir::AtoB, 9, b"ld"));
        let mut fc = f;
        fc.dirs[0].packets = 4;
        out.close(&fc, CloseReason::Fin);
        out.wait_writes();
        assert_eq!(std::fs::read(&file).unwrap(), b"hello world!");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A direction whose buffer grew by segments: bytes compared and replaced across a
    /// segment's end, and the file written whole from the segments.
    #[test]
    fn segmented_buffer_compares_replaces_and_writes() {
        let dir = tmpdir("segments");
        let c = cfg(
            &dir,
            Limits {
                dir_buffer: 64 * 1024,
                total_buffer: 1 << 20,
                first_buffer: 1 << 20,
                ..Limits::default()
            },
        );
        let mut out = FileSink::new(c, 4);
        let f = flow4();
        out.open(&f);
        let want: Vec<u8> = (0..20_000u32).map(|i| (i % 251) as u8).collect();
        for (k, chunk) in want.chunks(5000).enumerate() {
            out.data(&f, Dir::AtoB, (k * 5000) as u64, chunk);
        }
        let b = out.flows[f.slot as usize].dirs[0].buf;
        let lens = out.bufs[b]
            .data
            .with_parts(|p| p.iter().map(|p| p.len()).collect::<Vec<_>>());
        assert_eq!(lens[0], 5000, "the first 5,000 bytes kept where they were");
        assert_eq!(lens.len(), 2);
        assert!(!out.redelivered(&f, Dir::AtoB, 4990, &want[4990..5010]));
        let mut other = want[4990..5010].to_vec();
        other[15] ^= 1;
        assert!(out.redelivered(&f, Dir::AtoB, 4990, &other));
        // Replaced across the segments' boundary (`last` policy).
        out.data(&f, Dir::AtoB, 4990, &other);
        let mut expect = want.clone();
        expect[4990..5010].copy_from_slice(&other);
        let mut f = f;
        f.dirs[0].packets = 4;
        out.close(&f, CloseReason::Fin);
        out.flush();
        out.wait_writes();
        let file = a_to_b_file(&dir, &f, 0);
        assert!(std::fs::read(file).unwrap() == expect);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// `-b` in front of the file writer: bytes past it are neither written nor compared,
    /// and the direction's record says how many were cut.
    #[test]
    fn max_bytes_and_redelivery() {
        let dir = tmpdir("maxb");
        let c = cfg(
            &dir,
            Limits {
                dir_buffer: 8,
                total_buffer: 1024,
                max_open_files: 2,
                ..Limits::default()
            },
        );
        let mut out = super::super::cut::Cut::new(FileSink::new(c, 4), Some(10));
        let mut f = flow4();
        out.open(&f);
        out.data(&f, Dir::AtoB, 0, b"0123456");
        out.data(&f, Dir::AtoB, 7, b"789abcdef");
        assert!(!out.redelivered(&f, Dir::AtoB, 2, b"2345"));
        assert!(out.redelivered(&f, Dir::AtoB, 2, b"23X5"));
        assert!(
            !out.redelivered(&f, Dir::AtoB, 8, b"89ZZZ"),
            "bytes beyond -b are not compared"
        );
        assert!(out.redelivered(&f, Dir::AtoB, 8, b"8Z"));
        // `last` policy: bytes delivered again with new content replace the old.
        out.data(&f, Dir::AtoB, 1, b"XY");
        f.dirs[0].packets = 3;
        out.close(&f, CloseReason::Fin);
        out.flush();
        let file = a_to_b_file(&dir, &f, 0);
        assert_eq!(std::fs::read(file).unwrap(), b"0XY3456789");
        let mut host = HostStats::default();
        out.counters(&mut host);
        assert_eq!(host.truncated_bytes, 6);
        let mut done = Vec::new();
        out.take_finished(&mut done);
        assert_eq!(done.len(), 1);
        assert_eq!(done[0].truncated_bytes, 6);
        assert_eq!(done[0].file.as_ref().map(|f| f.size), Some(10));
        assert!(
            crate::output::Wrapper::inner(&out).truncated.is_empty(),
            "the cut is forgotten with its flow"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn same_name_twice_in_a_run_counts_up() {
        let dir = tmpdir("dup");
        let mut c = cfg(&dir, Limits::default());
        c.template = Template::parse("%A/x%C%c").unwrap();
        let mut out = FileSink::new(c, 4);
        let mut a = flow4();
        let mut b = flow4();
        b.slot = 1;
        out.open(&a);
        out.open(&b);
        out.data(&a, Dir::AtoB, 0, b"first");
        out.data(&b, Dir::AtoB, 0, b"second");
        a.dirs[0].packets = 1;
        b.dirs[0].packets = 1;
        out.close(&a, CloseReason::Fin);
        out.close(&b, CloseReason::Fin);
        out.wait_writes();
        assert_eq!(
            std::fs::read(dir.join("010.000.000.001/x")).unwrap(),
            b"first"
        );
        assert_eq!(
            std::fs::read(dir.join("010.000.000.001/xc1")).unwrap(),
            b"second"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// Names are not kept per direction but rebuilt: after a budget flush (no flow at hand),
    /// at a later write and at close, a bumped name, the session number and MAC addresses
    /// learned after the name was chosen all give the same file.
    #[test]
    fn rebuilt_names_stay_the_first_ones() {
        let dir = tmpdir("rebuilt");
        let mut c = cfg(
            &dir,
            Limits {
                dir_buffer: 16,
                total_buffer: 64,
                max_open_files: 1,
                ..Limits::default()
            },
        );
        c.template = Template::parse("%A-%E-%M%C%c").unwrap();
        let mut out = FileSink::new(c, 8);
        let mut a = flow4();
        a.macs = None;
        let mut b = a;
        b.slot = 1;
        out.open(&a);
        out.open(&b);
        let mut want: [Vec<u8>; 2] = Default::default();
        for round in 0..20u8 {
            for (i, f) in [&mut a, &mut b].into_iter().enumerate() {
                if round == 5 {
                    // The MAC addresses come with a later packet.
                    f.macs = flow4().macs;
                }
                let chunk = [b'a' + round % 26, i as u8, round, b'.'];
                out.data(f, Dir::AtoB, want[i].len() as u64, &chunk);
                want[i].extend_from_slice(&chunk);
            }
        }
        assert!(out.host.buffer_budget_flushes > 0);
        assert!(out.host.file_reopens > 0);
        for f in [&mut a, &mut b] {
            f.dirs[0].packets = 20;
            out.close(f, CloseReason::Fin);
        }
        out.wait_writes();
        assert!(out.fatal().is_none(), "{:?}", out.fatal());
        // Both named without MACs and in the same session bin (`%M`): the second is bumped.
        let names = ["010.000.000.001--000", "010.000.000.001--000c1"];
        let mut found: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        found.sort();
        assert_eq!(found, names);
        for (name, bytes) in names.iter().zip(&want) {
            assert_eq!(&std::fs::read(dir.join(name)).unwrap(), bytes, "{name}");
            let mtime = std::fs::metadata(dir.join(name))
                .unwrap()
                .modified()
                .unwrap();
            assert_eq!(mtime, UNIX_EPOCH + Duration::from_nanos(a.first_ts.0));
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// Room for 3 names in memory: the set is forgotten every few directions while 5 flows
    /// are open with their bytes only in buffers and closed ones wait on the finishing
    /// thread. 40 directions that all want the same name get the same files and bytes as
    /// with room for every name.
    #[test]
    fn forgotten_names_keep_buffered_and_pending_ones() {
        let run = |tag: &str, max_names: usize| -> (PathBuf, HostStats) {
            let dir = tmpdir(tag);
            let mut c = cfg(
                &dir,
                Limits {
                    max_names,
                    ..Limits::default()
                },
            );
            c.template = Template::parse("%A/x%C%c").unwrap();
            let mut out = FileSink::new(c, 64);
            let flows: Vec<FlowInfo> = (0..40)
                .map(|i| {
                    let mut f = flow4();
                    f.slot = i;
                    f.dirs[0].packets = 1;
                    f
                })
                .collect();
            for (i, f) in flows.iter().enumerate() {
                out.open(f);
                out.data(f, Dir::AtoB, 0, &[i as u8; 3]);
                if i >= 5 {
                    out.close(&flows[i - 5], CloseReason::Fin);
                }
            }
            for f in &flows[35..] {
                out.close(f, CloseReason::Fin);
            }
            out.wait_writes();
            assert!(out.fatal().is_none(), "{:?}", out.fatal());
            assert!(out.used_names.len <= max_names + 5);
            (dir, out.host)
        };
        let tree = |dir: &Path| -> Vec<(String, Vec<u8>)> {
            let sub = dir.join("010.000.000.001");
            let mut v: Vec<_> = std::fs::read_dir(&sub)
                .unwrap()
                .map(|e| {
                    let e = e.unwrap();
                    let name = e.file_name().into_string().unwrap();
                    (name, std::fs::read(e.path()).unwrap())
                })
                .collect();
            v.sort();
            v
        };
        let (all, host) = run("names-all", 1000);
        assert_eq!(host.name_set_forgets, 0);
        let want = tree(&all);
        assert_eq!(want.len(), 40);
        let (few, host) = run("names-few", 3);
        assert!(host.name_set_forgets >= 10, "{host:?}");
        assert!(host.names_found_in_folder > 0, "{host:?}");
        assert_eq!(tree(&few), want);
        std::fs::remove_dir_all(&all).unwrap();
        std::fs::remove_dir_all(&few).unwrap();
    }
}
