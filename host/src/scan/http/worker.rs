//! The bodies' work (decoding, SHA-256, writing the files) on a thread of its own, so that
//! the thread that reassembles and parses goes on meanwhile: on an HTTP-heavy capture that
//! work is most of `-e http`'s cost (inflate, SHA-256 and the body files' writes).
//!
//! The parser keeps framing and message state; each body's bytes, holes, notes and its end go
//! to the worker in batches (one buffer of bytes, ops with ranges into it) through a small
//! bounded queue: the parsing thread waits when the worker is behind, so at most [`QUEUE`]
//! batches of about [`BATCH_BYTES`] are in flight. The worker hands back each finished body
//! and each other report record in the order they were made, so records come out in the
//! same order as without the thread, a little later (polled at every scanner event, all
//! of them at [`Pool::finish`]).
//!
//! The first [`INLINE_BODIES`] bodies are done on the calling thread: a small capture costs
//! no thread (qemu-user, used to test the cross builds, hangs in thread creation). With one
//! processor every body is ([`crate::cores`]).

use std::sync::mpsc::{channel, sync_channel, Receiver, Sender, SyncSender};
use std::thread::JoinHandle;

use super::body::{BodyOut, Incomplete};
use super::Meta;
use crate::fxhash::{id_map, IdMap};
use crate::scan::set::Ctx;

/// Batches waiting at most.
pub const QUEUE: usize = 8;
/// Bytes gathered before a batch is handed over (or [`BATCH_OPS`] ops).
pub const BATCH_BYTES: usize = 256 * 1024;
const BATCH_OPS: usize = 1024;
/// Bodies done inline before the thread starts.
pub const INLINE_BODIES: u64 = 64;

/// A body being carved: here, or on the worker under an id.
#[derive(Debug)]
pub enum Body {
    Local(Box<BodyOut>),
    Remote(u64),
}

/// What the report record of a finished body needs besides the body.
#[derive(Debug)]
pub struct Fin {
    pub flow_file: String,
    pub meta: Meta,
}

#[derive(Debug)]
enum Op {
    Open(u64, Box<BodyOut>),
    /// Bytes `start..end` of the batch's buffer.
    Push(u64, usize, usize),
    Hole(u64, u64),
    /// Late bytes `start..end` of the batch's buffer for the hole at a body offset.
    Fill(u64, u64, usize, usize),
    Note(u64, Incomplete),
    Finish(u64, bool, Box<Fin>),
    /// A body begun inline, finished after the worker started (its record keeps its place).
    FinishLocal(Box<BodyOut>, bool, Box<Fin>),
    /// Another record, passed through to keep the order.
    Record(String, String),
}

#[derive(Debug)]
struct Batch {
    ops: Vec<Op>,
    data: Vec<u8>,
}

impl Default for Batch {
    fn default() -> Self {
        // Room for a batch and one large event past it: no growing on the way.
        Batch {
            ops: Vec::with_capacity(BATCH_OPS),
            data: Vec::with_capacity(2 * BATCH_BYTES),
        }
    }
}

/// Handed back by the worker, in order.
#[derive(Debug)]
pub enum Done {
    Body(Box<BodyOut>, String, Box<Fin>),
    Record(String, String),
}

#[derive(Debug)]
struct Thread {
    tx: SyncSender<Batch>,
    done: Receiver<Done>,
    /// Emptied batches coming back, to reuse their buffers.
    free: Receiver<Batch>,
    handle: JoinHandle<()>,
}

/// The bodies of a run: inline at first, then on the worker.
#[derive(Debug, Default)]
pub struct Pool {
    thread: Option<Thread>,
    batch: Batch,
    opened: u64,
    next_id: u64,
    /// Set at [`Pool::finish`]: anything after it is done inline.
    ended: bool,
    /// Bodies whose work was lost because the worker was gone (never expected).
    pub lost: u64,
}

impl Pool {
    /// A new body: kept here, or given to the worker (started at the body after the
    /// [`INLINE_BODIES`]th, when it can be).
    pub fn open(&mut self, out: BodyOut) -> Body {
        self.opened += 1;
        // Tried once: on one processor (or if the thread cannot start) bodies stay inline.
        if self.thread.is_none()
            && !self.ended
            && self.opened == INLINE_BODIES + 1
            && crate::cores::spare_core()
        {
            self.thread = start();
        }
        if self.thread.is_none() {
            return Body::Local(Box::new(out));
        }
        self.next_id += 1;
        let id = self.next_id;
        self.op(Op::Open(id, Box::new(out)));
        Body::Remote(id)
    }

    pub fn push(&mut self, b: &mut Body, data: &[u8]) {
        match b {
            Body::Local(o) => o.push(data),
            Body::Remote(id) => {
                let start = self.batch.data.len();
                self.batch.data.extend_from_slice(data);
                let end = self.batch.data.len();
                self.op(Op::Push(*id, start, end));
            }
        }
    }

    /// Late bytes for the hole at body offset `at` (see [`BodyOut::fill`]).
    pub fn fill(&mut self, b: &mut Body, at: u64, data: &[u8]) {
        match b {
            Body::Local(o) => {
                o.fill(at, data);
            }
            Body::Remote(id) => {
                let start = self.batch.data.len();
                self.batch.data.extend_from_slice(data);
                let end = self.batch.data.len();
                self.op(Op::Fill(*id, at, start, end));
            }
        }
    }

    pub fn hole(&mut self, b: &mut Body, len: u64) {
        match b {
            Body::Local(o) => o.hole(len),
            Body::Remote(id) => self.op(Op::Hole(*id, len)),
        }
    }

    /// The first reason the body is not complete, if it has none yet.
    pub fn note(&mut self, b: &mut Body, why: Incomplete) {
        match b {
            Body::Local(o) => o.note(why),
            Body::Remote(id) => self.op(Op::Note(*id, why)),
        }
    }

    /// The body ended: `apply` gets it with its SHA-256 now (inline) or when the worker is
    /// done with it.
    pub fn finish(
        &mut self,
        cx: &mut Ctx<'_>,
        b: Body,
        complete: bool,
        fin: Fin,
        apply: fn(&mut Ctx<'_>, &BodyOut, &str, Fin),
    ) {
        match b {
            Body::Local(mut o) if self.thread.is_none() => {
                let sha = o.finish(complete);
                apply(cx, &o, &sha, fin);
            }
            Body::Local(o) => self.op(Op::FinishLocal(o, complete, Box::new(fin))),
            Body::Remote(id) => self.op(Op::Finish(id, complete, Box::new(fin))),
        }
        self.poll(cx, apply);
    }

    /// A report record that is not a body's: after the records of bodies finished before it.
    pub fn record(&mut self, cx: &mut Ctx<'_>, x: String, j: String) {
        if self.thread.is_some() {
            self.op(Op::Record(x, j));
        } else {
            cx.report.object(&x, &j);
        }
    }

    fn op(&mut self, op: Op) {
        self.batch.ops.push(op);
        if self.batch.data.len() >= BATCH_BYTES || self.batch.ops.len() >= BATCH_OPS {
            self.send();
        }
    }

    fn send(&mut self) {
        let Some(t) = &self.thread else { return };
        if self.batch.ops.is_empty() {
            return;
        }
        let next = t.free.try_recv().unwrap_or_default();
        let b = std::mem::replace(&mut self.batch, next);
        let n = b.ops.iter().filter(|o| matches!(o, Op::Open(..))).count();
        if t.tx.send(b).is_err() {
            // The worker ended early (it does not, short of a panic): its bodies are lost.
            self.lost += n as u64;
        }
    }

    /// Applies what the worker finished so far.
    pub fn poll(&mut self, cx: &mut Ctx<'_>, apply: fn(&mut Ctx<'_>, &BodyOut, &str, Fin)) {
        if let Some(t) = &self.thread {
            while let Ok(d) = t.done.try_recv() {
                give(cx, d, apply);
            }
        }
    }

    /// The run's end: every body's work done and applied, the worker stopped.
    pub fn finish_all(&mut self, cx: &mut Ctx<'_>, apply: fn(&mut Ctx<'_>, &BodyOut, &str, Fin)) {
        self.send();
        self.ended = true;
        let Some(t) = self.thread.take() else { return };
        drop(t.tx);
        let _ = t.handle.join();
        while let Ok(d) = t.done.try_recv() {
            give(cx, d, apply);
        }
    }
}

impl Drop for Pool {
    /// Without [`Pool::finish_all`] (a run ended by an error): the work handed over is done,
    /// as it would have been inline, before the process goes on.
    fn drop(&mut self) {
        self.send();
        if let Some(t) = self.thread.take() {
            drop(t.tx);
            let _ = t.handle.join();
        }
    }
}

fn give(cx: &mut Ctx<'_>, d: Done, apply: fn(&mut Ctx<'_>, &BodyOut, &str, Fin)) {
    match d {
        Done::Body(o, sha, fin) => apply(cx, &o, &sha, *fin),
        Done::Record(x, j) => cx.report.object(&x, &j),
    }
}

fn start() -> Option<Thread> {
    let (tx, rx) = sync_channel::<Batch>(QUEUE);
    let (done_tx, done) = channel();
    let (free_tx, free) = sync_channel(QUEUE);
    let handle = std::thread::Builder::new()
        .name("http-bodies".into())
        .spawn(move || work(rx, done_tx, free_tx))
        .ok()?;
    Some(Thread {
        tx,
        done,
        free,
        handle,
    })
}

fn work(rx: Receiver<Batch>, done: Sender<Done>, free: SyncSender<Batch>) {
    let mut bodies: IdMap<Box<BodyOut>> = id_map();
    for mut b in rx {
        for op in b.ops.drain(..) {
            let r = match op {
                Op::Open(id, o) => {
                    bodies.insert(id, o);
                    None
                }
                Op::Push(id, s, e) => {
                    if let Some(o) = bodies.get_mut(&id) {
                        o.push(&b.data[s..e]);
                    }
                    None
                }
                Op::Hole(id, len) => {
                    if let Some(o) = bodies.get_mut(&id) {
                        o.hole(len);
                    }
                    None
                }
                Op::Note(id, why) => {
                    if let Some(o) = bodies.get_mut(&id) {
                        o.note(why);
                    }
                    None
                }
                Op::Fill(id, at, s, e) => {
                    if let Some(o) = bodies.get_mut(&id) {
                        o.fill(at, &b.data[s..e]);
                    }
                    None
                }
                Op::Finish(id, complete, fin) => bodies.remove(&id).map(|mut o| {
                    let sha = o.finish(complete);
                    Done::Body(o, sha, fin)
                }),
                Op::FinishLocal(mut o, complete, fin) => {
                    let sha = o.finish(complete);
                    Some(Done::Body(o, sha, fin))
                }
                Op::Record(x, j) => Some(Done::Record(x, j)),
            };
            if let Some(d) = r {
                if done.send(d).is_err() {
                    return;
                }
            }
        }
        b.data.clear();
        // Full (or gone): the buffer is freed instead.
        let _ = free.try_send(b);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cores::{spare_core, test_support::on_one_core};
    use std::path::PathBuf;

    /// Opens `n` bodies (nothing written); how many went to the worker.
    fn opened_on_worker(pool: &mut Pool, n: u64) -> u64 {
        let out = || BodyOut::new(PathBuf::new(), PathBuf::new(), 0o644, &[], 1 << 20);
        (0..n)
            .filter(|_| matches!(pool.open(out()), Body::Remote(_)))
            .count() as u64
    }

    /// On one processor every body stays inline; with a spare one, those after the first
    /// [`INLINE_BODIES`] go to the worker.
    #[test]
    fn the_worker_starts_only_with_a_spare_processor() {
        let one = on_one_core(|| {
            let mut pool = Pool::default();
            let remote = opened_on_worker(&mut pool, INLINE_BODIES + 10);
            (remote, pool.thread.is_some())
        });
        assert_eq!(one, (0, false));
        if spare_core() {
            let mut pool = Pool::default();
            assert_eq!(opened_on_worker(&mut pool, INLINE_BODIES + 10), 10);
        }
    }
}
