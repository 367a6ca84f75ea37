//! Post-processing scanners (`-e NAME`): each consumes the reassembled streams, the same
//! events the file writer gets (open, data at a stream offset, gap, late bytes, close), per
//! direction, with the two directions of a connection together so that a scanner can pair
//! them (HTTP requests in one, responses in the other). Each keeps bounded state per flow:
//! nothing holds a whole flow or a whole body.
//!
//! A scanner is one file behind [`Scanner`]: `digest.rs` (`md5`, `sha256`: each direction's
//! digest in its report record, as tcpflow 1.6's `hashdigest`), `http/` (`http`: every
//! request and response body carved, dechunked and decoded into `<flow file>-HTTPBODY-NNN`
//! files, one report record per object). [`ScanSet`] is the set a run enabled; the file
//! writer ([`crate::output::Output`]) hands it every event.
//!
//! The selection (tcpflow 1.6's flags): `-e NAME` enables, `-x NAME` disables, `-E NAME`
//! enables only that one, `-a` all; `-H` lists them. Without the `scan` cargo feature (the
//! field builds) there are none and naming one is a usage error.

#[cfg(feature = "scan")]
pub mod digest;
#[cfg(feature = "scan")]
pub mod http;

#[cfg(feature = "scan")]
mod set;
#[cfg(feature = "scan")]
pub use set::*;

/// The scanners this build has: name and one line for `-H`.
#[cfg(feature = "scan")]
pub const SCANNERS: &[(&str, &str)] = &[
    ("http", "HTTP/1.x bodies of requests and responses into <flow file>-HTTPBODY-NNN files, dechunked and decoded (gzip, deflate, br, zstd)"),
    ("md5", "MD5 of each direction's file, in its report record (tcpflow 1.6's hashdigest)"),
    ("sha256", "SHA-256 of each direction's file, in its report record"),
];
#[cfg(not(feature = "scan"))]
pub const SCANNERS: &[(&str, &str)] = &[];

/// Which scanners run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Selection {
    pub http: bool,
    pub md5: bool,
    pub sha256: bool,
    /// `-e netviz`: report.pdf (the pictures, [`crate::viz`]; not a stream scanner).
    pub netviz: bool,
}

impl Selection {
    /// Whether a stream scanner runs (netviz draws at the end and needs none).
    pub fn any(&self) -> bool {
        self.http || self.md5 || self.sha256
    }

    fn set(&mut self, name: &str, on: bool) {
        match name {
            "http" => self.http = on,
            "md5" => self.md5 = on,
            "sha256" => self.sha256 = on,
            NETVIZ => self.netviz = on,
            _ => unreachable!("names are checked first"),
        }
    }

    /// The enabled names, in `-H` order.
    pub fn names(&self) -> Vec<&'static str> {
        SCANNERS
            .iter()
            .map(|(n, _)| *n)
            .filter(|n| match *n {
                "http" => self.http,
                "md5" => self.md5,
                "sha256" => self.sha256,
                _ => false,
            })
            .chain(self.netviz.then_some(NETVIZ))
            .collect()
    }
}

/// tcpflow 1.6's name for the pictures: report.pdf ([`crate::viz`]).
pub const NETVIZ: &str = "netviz";
const NETVIZ_HELP: &str = "report.pdf: the charts of report.html (traffic, connections, loss over time; top talkers and ports) on one page";

/// Every name `-e` takes: the stream scanners, and netviz when this build draws PDFs.
fn known() -> Vec<(&'static str, &'static str)> {
    let mut v = SCANNERS.to_vec();
    if cfg!(feature = "netviz") {
        v.push((NETVIZ, NETVIZ_HELP));
    }
    v
}

fn check(name: &str, flag: &str) -> Result<(), String> {
    if known().iter().any(|(n, _)| *n == name) {
        return Ok(());
    }
    let known: Vec<&str> = known().iter().map(|(n, _)| *n).collect();
    Err(if known.is_empty() {
        format!("{flag} {name}: this build has no scanners (built without the `scan` feature)")
    } else {
        format!(
            "{flag} {name}: unknown scanner; the scanners are: {}",
            known.join(", ")
        )
    })
}

/// tcpflow 1.6's selection: `-a` (all) and `-e` enable, then `-x` disables; `-E` enables one
/// and disables every other (and cannot be combined with the others).
pub fn select(
    all: bool,
    enable: &[String],
    disable: &[String],
    only: &[String],
) -> Result<Selection, String> {
    for n in enable {
        check(n, "-e")?;
    }
    for n in disable {
        check(n, "-x")?;
    }
    for n in only {
        check(n, "-E")?;
    }
    let mut s = Selection::default();
    if !only.is_empty() {
        if all || !enable.is_empty() || !disable.is_empty() {
            return Err("-E selects one scanner alone: not with -a, -e or -x".into());
        }
        for n in only {
            s.set(n, true);
        }
        return Ok(s);
    }
    if all {
        for (n, _) in known() {
            s.set(n, true);
        }
    }
    for n in enable {
        s.set(n, true);
    }
    for n in disable {
        s.set(n, false);
    }
    Ok(s)
}

/// `-H`: one line per scanner.
pub fn help_text() -> String {
    let known = known();
    if known.is_empty() {
        return "this build has no scanners (built without the `scan` feature)\n".into();
    }
    let mut s =
        String::from("scanners (-e NAME enables, -x NAME disables, -E NAME only it, -a all):\n");
    for (n, d) in known {
        s.push_str(&format!("  {n:<8} {d}\n"));
    }
    s
}

/// Without the `scan` feature there is no scanner set: the file writer's hooks are written
/// against this type, which then has no value.
#[cfg(not(feature = "scan"))]
#[derive(Debug)]
pub enum ScanSet {}

#[cfg(not(feature = "scan"))]
mod none {
    use super::ScanSet;
    use crate::report::{Group, Objects};
    use tcpflow_core::{CloseReason, Dir, FlowInfo};

    /// Text for a direction's record (never made without scanners).
    pub struct Extra {
        pub xml: String,
        pub json: String,
    }

    impl ScanSet {
        pub fn open(&mut self, _: &FlowInfo, _: u64, _: &mut Objects) {
            match *self {}
        }
        pub fn named(&mut self, _: &FlowInfo, _: Dir, _: &str, _: &mut Objects) {
            match *self {}
        }
        pub fn data(&mut self, _: &FlowInfo, _: Dir, _: u64, _: &[u8], _: &mut Objects) {
            match *self {}
        }
        pub fn gap(&mut self, _: &FlowInfo, _: Dir, _: u64, _: u64, _: &mut Objects) {
            match *self {}
        }
        pub fn late(&mut self, _: &FlowInfo, _: Dir, _: u64, _: &[u8], _: &mut Objects) {
            match *self {}
        }
        pub fn close(&mut self, _: &FlowInfo, _: CloseReason, _: &mut Objects) {
            match *self {}
        }
        pub fn finish(&mut self, _: &mut Objects) {
            match *self {}
        }
        pub fn take_extra(&mut self, _: &FlowInfo, _: Dir) -> Option<Extra> {
            match *self {}
        }
        pub fn group(&self) -> Group {
            match *self {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    #[cfg(feature = "scan")]
    #[test]
    fn selection_as_tcpflow() {
        let s = select(false, &v(&["http"]), &[], &[]).unwrap();
        assert_eq!(s.names(), ["http"]);
        let s = select(true, &[], &v(&["md5"]), &[]).unwrap();
        let all_but_md5: &[&str] = if cfg!(feature = "netviz") {
            &["http", "sha256", "netviz"]
        } else {
            &["http", "sha256"]
        };
        assert_eq!(s.names(), all_but_md5);
        let s = select(false, &[], &[], &v(&["md5"])).unwrap();
        assert_eq!(s.names(), ["md5"]);
        assert!(!select(false, &[], &[], &[]).unwrap().any());
        let e = select(false, &v(&["pictures"]), &[], &[]).unwrap_err();
        assert_eq!(
            e,
            if cfg!(feature = "netviz") {
                "-e pictures: unknown scanner; the scanners are: http, md5, sha256, netviz"
            } else {
                "-e pictures: unknown scanner; the scanners are: http, md5, sha256"
            }
        );
        assert!(select(true, &[], &[], &v(&["md5"])).is_err());
        assert_eq!(help_text().lines().count(), 1 + known().len());
    }

    #[cfg(not(feature = "scan"))]
    #[test]
    fn no_scanners_without_the_feature() {
        assert!(select(false, &v(&["http"]), &[], &[])
            .unwrap_err()
            .contains("no scanners"));
    }
}
