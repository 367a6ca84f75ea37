//! The report as an output: each [`Finished`] event becomes the direction's record in
//! `report.xml` / `--report-json` ([`crate::report`] writes them).

use tcpflow_core::{Dir, FlowInfo, Sink};

use super::{End, Finished, Output};
use crate::report::{DirRecord, Objects, Report};

/// Writes a record per finished direction.
#[derive(Debug)]
pub struct ReportSink {
    report: Report,
}

impl ReportSink {
    pub fn new(report: Report) -> ReportSink {
        ReportSink { report }
    }

    pub fn report(&self) -> &Report {
        &self.report
    }

    pub fn into_report(self) -> Report {
        self.report
    }
}

impl Sink for ReportSink {
    #[inline]
    fn data(&mut self, _flow: &FlowInfo, _dir: Dir, _offset: u64, _data: &[u8]) {}
}

impl Output for ReportSink {
    fn finished(&mut self, f: &Finished) {
        self.report.objects(&f.report_objects);
        if let Some((xml, json)) = &f.report_extra {
            self.report.set_extra(xml.clone(), json.clone());
        }
        self.report.direction(&DirRecord {
            filename: f.file.as_ref().map(|file| file.shown.as_path()),
            filesize: f.file.as_ref().map_or(0, |file| file.size),
            flow: &f.flow,
            dir: f.dir,
            reason: f.reason,
            session: f.session,
            truncated_bytes: f.truncated_bytes,
            write_lost_bytes: f.write_lost_bytes,
        });
    }

    /// Records made at the end, carried by no [`Finished`] event.
    fn objects(&mut self, o: &Objects) {
        self.report.objects(o);
    }

    /// A report that cannot be written stops the run, as a file that cannot be.
    #[inline]
    fn should_stop(&self) -> bool {
        self.report.error().is_some()
    }

    fn finish(&mut self, end: &mut End) {
        if let Some(e) = self.report.error() {
            end.errors.push(e.to_string());
        }
    }
}
