//! Where reconstructed bytes go: outputs behind one trait ([`Output`], the core's [`Sink`]
//! plus what a run needs around it), fed the engine's events through a tee ([`Tee`]).
//!
//! - [`files`]: one file per direction (the default), with its set of names (`names`),
//!   per-direction buffers ([`buffers`]), open-file cache ([`filecache`]) and finishing
//!   thread ([`finisher`]);
//! - [`console`]: `-c` / `-C`;
//! - [`spool`]: `--spool`, the core's flash spool writer;
//! - [`report`]: `report.xml` and `--report-json`, fed the [`Finished`] events;
//! - [`pcap`]: `-K`, `--pcap-per-connection` and `-I`, fed the frames ([`Output::frame`]);
//! - [`json`]: `-J` (JSON lines);
//! - [`commands`]: `-S tcp_cmd`, `tcp_alert_fd`, `http_cmd` and `http_alert_fd`, fed the
//!   [`Finished`] events and the HTTP body files they carry.
//!
//! Outputs a flag may leave out are joined as [`Maybe`]; run.rs composes them (the default
//! run's type stays the file writer alone).
//!
//! Two adapters wrap whatever is behind them, so no output repeats them: [`cut::Cut`] (`-b`:
//! bytes past the limit never reach the outputs, which are told how many were cut) and
//! [`ignore_new::IgnoreNew`] (`-R`: connections that start while those files are read never
//! reach them). [`Outputs`] is what the engine feeds: the adapters around a tee of the chosen
//! output and the report, the count of open flows, and the routing of [`Finished`] events
//! from the output that made them to every output.
//!
//! A new output is a new module with a type implementing [`Output`], joined to the others
//! with [`Tee`]. Dispatch is static (generics): the engine's events cost no indirect call.

use std::path::PathBuf;

use tcpflow_core::{CloseReason, Dir, FlowInfo, FlowRef, GapReason, LinkType, Sink, Timestamp};

use crate::report::{Group, HostStats, Objects, Report};

pub mod buffers;
pub mod commands;
pub mod console;
pub mod cut;
pub mod filecache;
pub mod files;
pub mod finisher;
pub mod ignore_new;
pub mod json;
mod names;
pub mod pcap;
pub mod report;
mod sessions;
pub mod spool;

pub use console::{print_chunk, ConsoleFormat, ConsoleOpts, ConsoleSink};
pub use files::{FileSink, Limits, OutputConfig, CUT_STATE_BYTES, FLOW_STATE_BYTES, NAME_BYTES};

/// A direction is finished: everything written for it is written (its file complete, or
/// failed), or it ended without a file. Made by the output that owns the direction (files,
/// console) once its last write is done, then given to every output ([`Output::finished`]):
/// the report writes its record from it; an output that acts on finished files (a command
/// run per file, an alert) takes it from here too.
#[derive(Clone, Debug)]
pub struct Finished {
    pub flow: FlowInfo,
    pub dir: Dir,
    pub reason: CloseReason,
    /// The connection's number in this run (`%S`).
    pub session: u64,
    pub file: Option<FinishedFile>,
    /// Bytes `-b` cut.
    pub truncated_bytes: u64,
    /// Bytes that did not reach the file (writing it failed).
    pub write_lost_bytes: u64,
    /// What the scanners add inside this direction's report record (XML, JSON fields).
    pub report_extra: Option<(String, String)>,
    /// Report records of their own (HTTP objects) made since the last event, written
    /// before this direction's.
    pub report_objects: Objects,
}

/// The file of a [`Finished`] direction.
#[derive(Clone, Debug)]
pub struct FinishedFile {
    /// As shown to the user (the output folder joined with the name, as tcpflow shows it).
    pub shown: PathBuf,
    /// Where it is, as opened by this process.
    pub path: PathBuf,
    /// Its size: what reached it.
    pub size: u64,
}

/// A captured frame whose TCP segment went to a tracked connection (`Outcome::Tcp`), or a
/// fragment held (`Outcome::FragmentHeld`): what outputs of frames (`-K`) take.
#[derive(Clone, Copy, Debug)]
pub struct Frame<'a> {
    /// The connection and direction the segment went to; `None`: an IP fragment the engine
    /// holds until its datagram completes (the frame that completes it names the flow).
    pub flow: Option<FlowRef>,
    pub link: LinkType,
    pub ts: Timestamp,
    /// Length on the wire.
    pub origlen: u32,
    /// The bytes captured.
    pub data: &'a [u8],
}

/// What the outputs hand back at the end of a run.
#[derive(Debug, Default)]
pub struct End {
    /// Errors that failed the run (each printed once by the caller).
    pub errors: Vec<String>,
    /// Counter groups for the report's end, after the host's.
    pub groups: Vec<Group>,
    /// Lines for the summary on stderr, after the run's own.
    pub lines: Vec<String>,
    /// Standard output was closed by its reader: no summary.
    pub broken_pipe: bool,
}

/// An output: the engine's events ([`Sink`]) and what a run needs around them. Every method
/// but `data` has a default that does nothing, so an output implements what it uses.
pub trait Output: Sink {
    /// Whether [`Output::tick`] is wanted with every packet (the spool's syncs); when no
    /// output wants it, the packet loop reads no clock for it.
    const TICKS: bool = false;
    /// Whether [`Output::frame`] is wanted: when no output wants it, the packet loop passes
    /// no frame (static: nothing on the hot path).
    const FRAMES: bool = false;

    /// The frame of a TCP segment of a tracked connection (after the engine's events for
    /// it), or of a fragment held.
    fn frame(&mut self, _f: &Frame<'_>) {}
    /// A connection that this run numbers (`%S`) but does not write: it started while `-R`
    /// files were read.
    fn skipped(&mut self, _flow: &FlowInfo) {}
    /// `bytes` of `dir` were cut by `-b` before reaching this output.
    fn cut(&mut self, _flow: &FlowInfo, _dir: Dir, _bytes: u64) {}
    /// A direction is finished (made by this output or another).
    fn finished(&mut self, _f: &Finished) {}
    /// Moves the [`Finished`] events this output made since the last call to `out`.
    fn take_finished(&mut self, _out: &mut Vec<Finished>) {}
    /// After [`Output::flush`]: moves the report records (and finished HTTP bodies) this
    /// output made that no [`Finished`] event carries (the scanners' last) to `out`.
    fn take_objects(&mut self, _out: &mut Objects) {}
    /// Those records, given to every output at the end of the run.
    fn objects(&mut self, _o: &Objects) {}
    /// A packet was processed at `now` (capture time for files, wall time live).
    fn tick(&mut self, _now: u64) {}
    /// A live capture is idle at wall time `now`.
    fn idle(&mut self, _now: u64) {}
    /// The output failed for good: the run stops reading.
    fn should_stop(&self) -> bool {
        false
    }
    /// The input ended and every flow was closed: finish every write, so that every
    /// [`Finished`] event is out.
    fn flush(&mut self) {}
    /// Adds this output's counters to the run's.
    fn counters(&self, _host: &mut HostStats) {}
    /// The end of the run, after [`Output::flush`] and the routing of its events.
    fn finish(&mut self, _end: &mut End) {}
}

/// Moves `made` to the end of `out`: the vectors trade places when `out` is empty (the usual
/// case), so a [`Finished`] event is not copied on its way.
pub(crate) fn take_all(made: &mut Vec<Finished>, out: &mut Vec<Finished>) {
    if out.is_empty() {
        std::mem::swap(made, out);
    } else {
        out.append(made);
    }
}

/// An output that filters the engine's events on their way to the one it wraps (`-b`'s
/// [`cut::Cut`], `-R`'s [`ignore_new::IgnoreNew`]) and passes the rest as it is, adding its
/// own counters: the forwarding is written once, here.
pub trait Wrapper: Sink {
    type Inner: Output;
    fn inner(&self) -> &Self::Inner;
    fn inner_mut(&mut self) -> &mut Self::Inner;
    /// Adds the wrapper's own counters (before the wrapped output's).
    fn own_counters(&self, host: &mut HostStats);
}

impl<W: Wrapper> Output for W {
    const TICKS: bool = W::Inner::TICKS;
    const FRAMES: bool = W::Inner::FRAMES;

    #[inline]
    fn frame(&mut self, f: &Frame<'_>) {
        self.inner_mut().frame(f);
    }
    fn skipped(&mut self, flow: &FlowInfo) {
        self.inner_mut().skipped(flow);
    }
    fn cut(&mut self, flow: &FlowInfo, dir: Dir, bytes: u64) {
        self.inner_mut().cut(flow, dir, bytes);
    }
    fn finished(&mut self, f: &Finished) {
        self.inner_mut().finished(f);
    }
    fn take_finished(&mut self, out: &mut Vec<Finished>) {
        self.inner_mut().take_finished(out);
    }
    fn take_objects(&mut self, out: &mut Objects) {
        self.inner_mut().take_objects(out);
    }
    fn objects(&mut self, o: &Objects) {
        self.inner_mut().objects(o);
    }
    #[inline]
    fn tick(&mut self, now: u64) {
        self.inner_mut().tick(now);
    }
    fn idle(&mut self, now: u64) {
        self.inner_mut().idle(now);
    }
    #[inline]
    fn should_stop(&self) -> bool {
        self.inner().should_stop()
    }
    fn flush(&mut self) {
        self.inner_mut().flush();
    }
    fn counters(&self, host: &mut HostStats) {
        self.own_counters(host);
        self.inner().counters(host);
    }
    fn finish(&mut self, end: &mut End) {
        self.inner_mut().finish(end);
    }
}

/// Two outputs fed the same events, `A` first.
#[derive(Debug)]
pub struct Tee<A, B>(pub A, pub B);

impl<A: Output, B: Output> Sink for Tee<A, B> {
    #[inline]
    fn open(&mut self, flow: &FlowInfo) {
        self.0.open(flow);
        self.1.open(flow);
    }
    #[inline]
    fn data(&mut self, flow: &FlowInfo, dir: Dir, offset: u64, data: &[u8]) {
        self.0.data(flow, dir, offset, data);
        self.1.data(flow, dir, offset, data);
    }
    #[inline]
    fn gap(&mut self, flow: &FlowInfo, dir: Dir, offset: u64, len: u64, reason: GapReason) {
        self.0.gap(flow, dir, offset, len, reason);
        self.1.gap(flow, dir, offset, len, reason);
    }
    /// Different when either output can tell (each is asked).
    #[inline]
    fn redelivered(&mut self, flow: &FlowInfo, dir: Dir, offset: u64, data: &[u8]) -> bool {
        let a = self.0.redelivered(flow, dir, offset, data);
        let b = self.1.redelivered(flow, dir, offset, data);
        a || b
    }
    /// Taken when either output took them (each is given them).
    #[inline]
    fn late(&mut self, flow: &FlowInfo, dir: Dir, offset: u64, data: &[u8]) -> bool {
        let a = self.0.late(flow, dir, offset, data);
        let b = self.1.late(flow, dir, offset, data);
        a || b
    }
    #[inline]
    fn close(&mut self, flow: &FlowInfo, reason: CloseReason) {
        self.0.close(flow, reason);
        self.1.close(flow, reason);
    }
}

impl<A: Output, B: Output> Output for Tee<A, B> {
    const TICKS: bool = A::TICKS || B::TICKS;
    const FRAMES: bool = A::FRAMES || B::FRAMES;

    #[inline]
    fn frame(&mut self, f: &Frame<'_>) {
        if A::FRAMES {
            self.0.frame(f);
        }
        if B::FRAMES {
            self.1.frame(f);
        }
    }

    fn skipped(&mut self, flow: &FlowInfo) {
        self.0.skipped(flow);
        self.1.skipped(flow);
    }
    fn cut(&mut self, flow: &FlowInfo, dir: Dir, bytes: u64) {
        self.0.cut(flow, dir, bytes);
        self.1.cut(flow, dir, bytes);
    }
    fn finished(&mut self, f: &Finished) {
        self.0.finished(f);
        self.1.finished(f);
    }
    fn take_finished(&mut self, out: &mut Vec<Finished>) {
        self.0.take_finished(out);
        self.1.take_finished(out);
    }
    fn take_objects(&mut self, out: &mut Objects) {
        self.0.take_objects(out);
        self.1.take_objects(out);
    }
    fn objects(&mut self, o: &Objects) {
        self.0.objects(o);
        self.1.objects(o);
    }
    #[inline]
    fn tick(&mut self, now: u64) {
        self.0.tick(now);
        self.1.tick(now);
    }
    fn idle(&mut self, now: u64) {
        self.0.idle(now);
        self.1.idle(now);
    }
    #[inline]
    fn should_stop(&self) -> bool {
        self.0.should_stop() || self.1.should_stop()
    }
    fn flush(&mut self) {
        self.0.flush();
        self.1.flush();
    }
    fn counters(&self, host: &mut HostStats) {
        self.0.counters(host);
        self.1.counters(host);
    }
    fn finish(&mut self, end: &mut End) {
        self.0.finish(end);
        self.1.finish(end);
    }
}

/// An output that a flag may leave out: events go to it when it is there (a branch, not an
/// indirect call).
#[derive(Debug)]
pub struct Maybe<T>(pub Option<T>);

impl<T: Output> Sink for Maybe<T> {
    #[inline]
    fn open(&mut self, flow: &FlowInfo) {
        if let Some(t) = &mut self.0 {
            t.open(flow);
        }
    }
    #[inline]
    fn data(&mut self, flow: &FlowInfo, dir: Dir, offset: u64, data: &[u8]) {
        if let Some(t) = &mut self.0 {
            t.data(flow, dir, offset, data);
        }
    }
    #[inline]
    fn gap(&mut self, flow: &FlowInfo, dir: Dir, offset: u64, len: u64, reason: GapReason) {
        if let Some(t) = &mut self.0 {
            t.gap(flow, dir, offset, len, reason);
        }
    }
    #[inline]
    fn redelivered(&mut self, flow: &FlowInfo, dir: Dir, offset: u64, data: &[u8]) -> bool {
        match &mut self.0 {
            Some(t) => t.redelivered(flow, dir, offset, data),
            None => false,
        }
    }
    #[inline]
    fn late(&mut self, flow: &FlowInfo, dir: Dir, offset: u64, data: &[u8]) -> bool {
        match &mut self.0 {
            Some(t) => t.late(flow, dir, offset, data),
            None => false,
        }
    }
    #[inline]
    fn close(&mut self, flow: &FlowInfo, reason: CloseReason) {
        if let Some(t) = &mut self.0 {
            t.close(flow, reason);
        }
    }
}

impl<T: Output> Output for Maybe<T> {
    const TICKS: bool = T::TICKS;
    const FRAMES: bool = T::FRAMES;

    #[inline]
    fn frame(&mut self, f: &Frame<'_>) {
        if let Some(t) = &mut self.0 {
            t.frame(f);
        }
    }
    fn skipped(&mut self, flow: &FlowInfo) {
        if let Some(t) = &mut self.0 {
            t.skipped(flow);
        }
    }
    fn cut(&mut self, flow: &FlowInfo, dir: Dir, bytes: u64) {
        if let Some(t) = &mut self.0 {
            t.cut(flow, dir, bytes);
        }
    }
    fn finished(&mut self, f: &Finished) {
        if let Some(t) = &mut self.0 {
            t.finished(f);
        }
    }
    fn take_finished(&mut self, out: &mut Vec<Finished>) {
        if let Some(t) = &mut self.0 {
            t.take_finished(out);
        }
    }
    fn take_objects(&mut self, out: &mut Objects) {
        if let Some(t) = &mut self.0 {
            t.take_objects(out);
        }
    }
    fn objects(&mut self, o: &Objects) {
        if let Some(t) = &mut self.0 {
            t.objects(o);
        }
    }
    #[inline]
    fn tick(&mut self, now: u64) {
        if let Some(t) = &mut self.0 {
            t.tick(now);
        }
    }
    fn idle(&mut self, now: u64) {
        if let Some(t) = &mut self.0 {
            t.idle(now);
        }
    }
    #[inline]
    fn should_stop(&self) -> bool {
        self.0.as_ref().is_some_and(|t| t.should_stop())
    }
    fn flush(&mut self) {
        if let Some(t) = &mut self.0 {
            t.flush();
        }
    }
    fn counters(&self, host: &mut HostStats) {
        if let Some(t) = &self.0 {
            t.counters(host);
        }
    }
    fn finish(&mut self, end: &mut End) {
        if let Some(t) = &mut self.0 {
            t.finish(end);
        }
    }
}

/// What the engine feeds: `-R` and `-b` around a tee of the output `S` and the report; it
/// counts open flows and hands each [`Finished`] event to every output.
#[derive(Debug)]
pub struct Outputs<S> {
    chain: ignore_new::IgnoreNew<cut::Cut<Tee<S, report::ReportSink>>>,
    open_flows: u64,
    max_open_flows: u64,
    /// Events on their way, kept for its memory.
    routing: Vec<Finished>,
}

/// What [`Outputs::end`] hands back.
#[derive(Debug)]
pub struct Ended {
    pub report: Report,
    /// The outputs' counters (the run adds its own).
    pub host: HostStats,
    pub max_open_flows: u64,
    pub end: End,
}

impl<S: Output> Outputs<S> {
    /// `out` with the report; `max_bytes`: `-b`.
    pub fn new(out: S, report: Report, max_bytes: Option<u64>) -> Outputs<S> {
        let tee = Tee(out, report::ReportSink::new(report));
        Outputs {
            chain: ignore_new::IgnoreNew::new(cut::Cut::new(tee, max_bytes)),
            open_flows: 0,
            max_open_flows: 0,
            routing: Vec::new(),
        }
    }

    /// Whether connections that start from now on are written (false while reading `-R`
    /// files).
    pub fn set_accept_new(&mut self, yes: bool) {
        self.chain.set_accept_new(yes);
    }

    pub fn open_flows(&self) -> u64 {
        self.open_flows
    }

    /// The outputs' counters so far, added to `host`.
    pub fn counters(&self, host: &mut HostStats) {
        self.chain.counters(host);
    }

    /// The report, as written so far (`--report-interval` draws from its tables).
    pub fn report(&self) -> &Report {
        self.chain.inner().inner().1.report()
    }

    /// The output behind the adapters.
    pub fn inner(&self) -> &S {
        &self.chain.inner().inner().0
    }

    /// Gives every [`Finished`] event made so far to every output.
    fn route(&mut self) {
        let mut events = std::mem::take(&mut self.routing);
        self.chain.take_finished(&mut events);
        for f in &events {
            self.chain.finished(f);
        }
        events.clear();
        self.routing = events;
    }

    /// The end of the run (after the engine closed every flow): every write finished, its
    /// events routed, the outputs' figures and errors collected.
    pub fn end(mut self) -> Ended {
        self.chain.flush();
        self.route();
        // The scanners' last records (bodies finished on their worker after the last
        // direction) ride on no Finished event: every output gets them now.
        let mut last = Objects::default();
        self.chain.take_objects(&mut last);
        if !last.is_empty() {
            self.chain.objects(&last);
        }
        let mut end = End::default();
        self.chain.finish(&mut end);
        let mut host = HostStats::default();
        self.chain.counters(&mut host);
        let Tee(_, report) = self.chain.into_inner().into_inner();
        let report = report.into_report();
        Ended {
            report,
            host,
            max_open_flows: self.max_open_flows,
            end,
        }
    }
}

impl<S: Output> Sink for Outputs<S> {
    #[inline]
    fn open(&mut self, flow: &FlowInfo) {
        self.open_flows += 1;
        self.max_open_flows = self.max_open_flows.max(self.open_flows);
        self.chain.open(flow);
    }
    #[inline]
    fn data(&mut self, flow: &FlowInfo, dir: Dir, offset: u64, data: &[u8]) {
        self.chain.data(flow, dir, offset, data);
    }
    #[inline]
    fn gap(&mut self, flow: &FlowInfo, dir: Dir, offset: u64, len: u64, reason: GapReason) {
        self.chain.gap(flow, dir, offset, len, reason);
    }
    #[inline]
    fn redelivered(&mut self, flow: &FlowInfo, dir: Dir, offset: u64, data: &[u8]) -> bool {
        self.chain.redelivered(flow, dir, offset, data)
    }
    #[inline]
    fn late(&mut self, flow: &FlowInfo, dir: Dir, offset: u64, data: &[u8]) -> bool {
        self.chain.late(flow, dir, offset, data)
    }
    fn close(&mut self, flow: &FlowInfo, reason: CloseReason) {
        // Writing the flows out after a stop signal is progress (watchdog.rs).
        crate::watchdog::tick();
        self.open_flows = self.open_flows.saturating_sub(1);
        self.chain.close(flow, reason);
        self.route();
    }
}

impl<S: Output> Outputs<S> {
    #[inline]
    pub fn tick(&mut self, now: impl FnOnce() -> u64) {
        if S::TICKS {
            self.chain.tick(now());
        }
    }

    pub fn idle(&mut self, now: u64) {
        self.chain.idle(now);
        self.route();
    }

    #[inline]
    pub fn should_stop(&self) -> bool {
        self.chain.should_stop()
    }

    /// A frame for the outputs that take frames (none: nothing is done).
    #[inline]
    pub fn frame<'a>(&mut self, f: impl FnOnce() -> Frame<'a>) {
        if S::FRAMES {
            self.chain.frame(&f());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::template::tests::flow4;

    /// An output that finishes each direction with packets at its close (as the console
    /// does) and keeps what it sees.
    #[derive(Default)]
    struct Probe {
        made: Vec<Finished>,
        seen: Vec<(Dir, u64)>,
        bytes: usize,
    }

    impl Sink for Probe {
        fn data(&mut self, _: &FlowInfo, _: Dir, _: u64, data: &[u8]) {
            self.bytes += data.len();
        }
        fn close(&mut self, flow: &FlowInfo, reason: CloseReason) {
            self.made.push(Finished {
                flow: *flow,
                dir: Dir::AtoB,
                reason,
                session: 7,
                file: None,
                truncated_bytes: 0,
                write_lost_bytes: 0,
                report_extra: None,
                report_objects: Default::default(),
            });
        }
    }

    impl Output for Probe {
        fn finished(&mut self, f: &Finished) {
            self.seen.push((f.dir, f.session));
        }
        fn take_finished(&mut self, out: &mut Vec<Finished>) {
            out.append(&mut self.made);
        }
    }

    /// Each output of the tee gets every event, and every output gets each `Finished`
    /// event, whichever output made it, once.
    #[test]
    fn the_tee_feeds_both_and_finished_events_reach_every_output() {
        let mut out = Outputs::new(
            Tee(Probe::default(), Probe::default()),
            Report::none(),
            None,
        );
        let a = flow4();
        let mut b = flow4();
        b.slot = 1;
        out.open(&a);
        out.open(&b);
        assert_eq!(out.open_flows(), 2);
        out.data(&a, Dir::AtoB, 0, b"abc");
        out.close(&a, CloseReason::Fin);
        assert_eq!(out.open_flows(), 1);
        let tee = out.inner();
        assert_eq!((tee.0.bytes, tee.1.bytes), (3, 3));
        // Both made one; each saw both.
        assert_eq!(tee.0.seen, vec![(Dir::AtoB, 7), (Dir::AtoB, 7)]);
        assert_eq!(tee.1.seen, tee.0.seen);
        out.close(&b, CloseReason::Rst);
        let ended = out.end();
        assert_eq!(ended.max_open_flows, 2);
        assert!(ended.end.errors.is_empty());
    }
}
