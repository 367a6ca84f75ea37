//! `--spool`: the engine's events into the core's flash spool writer ([`SpoolWriter`]) over
//! the host's spool file ([`crate::spool::FileSpool`]), with periodic syncs; a storage error
//! stops the run (what was spooled stays readable). `-b` and `-R` are the adapters' around it.

use std::fmt;
use std::path::Path;

use tcpflow_core::spool::{SpoolStats, SpoolStorage, SpoolWriter};
use tcpflow_core::{CloseReason, Dir, FlowInfo, GapReason, Sink};

use super::{End, Output};
use crate::report::HostStats;
use crate::spool::{stats_group, FileSpool};

/// The spool output.
pub struct SpoolSink<'a> {
    writer: SpoolWriter<'a, FileSpool>,
    /// Sync at most this often (ns; 0: only at the end), and when last synced.
    sync_every: u64,
    last_sync: Option<u64>,
    storage_errors: u64,
    fatal: Option<String>,
    /// Events not spooled because a storage error had stopped the run.
    lost_after_stop: (u64, u64),
    host: HostStats,
    /// `--ship`: shipped what is left once the spool is synced at the end (issue #20).
    #[cfg(feature = "ship")]
    ship: Option<(crate::ship::shipper::Shipper, crate::ship::ShipOpts)>,
}

impl fmt::Debug for SpoolSink<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SpoolSink")
            .field("writer", &self.writer)
            .field("fatal", &self.fatal)
            .finish_non_exhaustive()
    }
}

impl<'a> SpoolSink<'a> {
    pub fn new(writer: SpoolWriter<'a, FileSpool>, sync_secs: u64) -> SpoolSink<'a> {
        let storage_errors = writer.stats().storage_errors;
        SpoolSink {
            writer,
            sync_every: sync_secs.saturating_mul(1_000_000_000),
            last_sync: None,
            storage_errors,
            fatal: None,
            lost_after_stop: (0, 0),
            host: HostStats::default(),
            #[cfg(feature = "ship")]
            ship: None,
        }
    }

    /// Ships the spool's segments as they are sealed, and what is left at the end.
    #[cfg(feature = "ship")]
    pub fn set_shipper(&mut self, s: crate::ship::shipper::Shipper, o: crate::ship::ShipOpts) {
        self.ship = Some((s, o));
    }

    /// The storage error that stopped the run.
    pub fn fatal(&self) -> Option<&str> {
        self.fatal.as_deref()
    }

    pub fn stats(&self) -> SpoolStats {
        self.writer.stats()
    }

    /// Syncs if the last sync is `sync_every` or more before `now` (capture time for files,
    /// wall time live). The first call starts the clock.
    fn sync_if_due(&mut self, now: u64) {
        if self.sync_every == 0 || self.fatal.is_some() {
            return;
        }
        match self.last_sync {
            Some(t) if now >= t && now - t < self.sync_every => {}
            // Time went backwards (a capture out of order): restart the clock.
            Some(t) if now < t => self.last_sync = Some(now),
            Some(_) => {
                self.sync();
                self.last_sync = Some(now);
            }
            None => self.last_sync = Some(now),
        }
    }

    /// Writes out what is buffered and makes it durable.
    pub fn sync(&mut self) {
        let clean = self.writer.sync();
        self.check();
        if !clean && self.fatal.is_none() {
            self.fatal = Some(format!(
                "spool {}: records were lost (see the report's spool counters)",
                self.writer.storage().path().display()
            ));
        }
    }

    /// Notes a storage error the writer met: the run stops.
    fn check(&mut self) {
        let errors = self.writer.stats().storage_errors;
        if errors > self.storage_errors {
            self.storage_errors = errors;
            if self.fatal.is_none() {
                let what = self
                    .writer
                    .last_error()
                    .map(|e| e.to_string())
                    .unwrap_or_else(|| "storage error".into());
                self.fatal = Some(format!(
                    "spool {}: {what}; stopped: the spool keeps what was written before",
                    self.writer.storage().path().display()
                ));
            }
        }
    }

    /// After a storage error nothing more is written: the event is counted as lost.
    fn stopped(&mut self, bytes: u64) -> bool {
        if self.fatal.is_some() {
            self.lost_after_stop.0 += 1;
            self.lost_after_stop.1 += bytes;
            return true;
        }
        false
    }

    /// Stream bytes (or late bytes for a reported gap) to the spool.
    fn data_or_late(&mut self, flow: &FlowInfo, dir: Dir, offset: u64, data: &[u8], late: bool) {
        if self.stopped(data.len() as u64) {
            return;
        }
        if late {
            self.writer.late(flow, dir, offset, data);
        } else {
            self.writer.data(flow, dir, offset, data);
        }
        self.host.bytes_written += data.len() as u64;
        self.check();
    }
}

impl Sink for SpoolSink<'_> {
    fn open(&mut self, flow: &FlowInfo) {
        if self.stopped(0) {
            return;
        }
        self.writer.open(flow);
        self.check();
    }

    fn data(&mut self, flow: &FlowInfo, dir: Dir, offset: u64, data: &[u8]) {
        self.data_or_late(flow, dir, offset, data, false);
    }

    fn late(&mut self, flow: &FlowInfo, dir: Dir, offset: u64, data: &[u8]) -> bool {
        self.data_or_late(flow, dir, offset, data, true);
        true
    }

    fn gap(&mut self, flow: &FlowInfo, dir: Dir, offset: u64, len: u64, reason: GapReason) {
        if self.stopped(0) {
            return;
        }
        self.writer.gap(flow, dir, offset, len, reason);
        self.check();
    }

    fn close(&mut self, flow: &FlowInfo, reason: CloseReason) {
        if self.stopped(0) {
            return;
        }
        self.writer.close(flow, reason);
        self.check();
    }
}

impl Output for SpoolSink<'_> {
    const TICKS: bool = true;

    #[inline]
    fn tick(&mut self, now: u64) {
        self.sync_if_due(now);
    }
    fn idle(&mut self, now: u64) {
        self.sync_if_due(now);
    }
    #[inline]
    fn should_stop(&self) -> bool {
        self.fatal.is_some()
    }
    fn counters(&self, host: &mut HostStats) {
        host.add(&self.host);
    }
    /// The final sync; the spool's figures for the report and the summary.
    fn finish(&mut self, end: &mut End) {
        if self.fatal.is_none() {
            self.sync();
        } else {
            // Only make durable what is there: nothing more is written after an error.
            let _ = self.writer.storage_mut().sync();
        }
        // The file whole for the next run (see crate::spool's docs).
        #[cfg(feature = "alloc-thread")]
        if let Some(w) = self.writer.storage_mut().finish_allocation() {
            end.lines.push(format!("tcpflow: warning: {w}"));
        }
        let stats = self.writer.stats();
        end.groups.push(stats_group(
            &stats,
            self.writer.storage(),
            self.lost_after_stop,
        ));
        end.lines
            .push(spool_summary(self.writer.storage().path(), &stats));
        end.errors.extend(self.fatal.take());
        // The writer is done: ship what is left (bounded by --ship-wait).
        #[cfg(feature = "ship")]
        if let Some((shipper, o)) = self.ship.take() {
            let st = shipper.finish(o.wait, true);
            end.groups.push(crate::ship::report_group(&st));
            let (line, ok) = crate::ship::summary_line(&o, &st);
            if ok {
                end.lines.push(line);
            } else {
                // Said even with -q: the run failed.
                end.errors
                    .push(line.trim_start_matches("tcpflow: ").to_string());
            }
        }
    }
}

/// The summary line's tail for a spooling run.
fn spool_summary(path: &Path, s: &SpoolStats) -> String {
    let amp = if s.payload_bytes > 0 {
        format!(
            " ({} per stream byte)",
            crate::timefmt::fixed(s.bytes_programmed, s.payload_bytes, 2)
        )
    } else {
        String::new()
    };
    format!(
        "tcpflow: spool {}: {} records, {} stream bytes, {} bytes programmed{amp}, {} segments erased, {} syncs; dropped by the ring: {} flows, {} bytes ({} segments); {} storage errors, {} records lost",
        path.display(),
        s.records,
        s.payload_bytes,
        s.bytes_programmed,
        s.segments_erased,
        s.syncs,
        s.drops.flows,
        s.drops.bytes,
        s.drops.segments,
        s.storage_errors,
        s.lost_records
    )
}
