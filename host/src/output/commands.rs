//! `-S tcp_cmd=CMD`, `-S tcp_alert_fd=N`, and with `-e http` `-S http_cmd=CMD`,
//! `-S http_alert_fd=N`: acting on each finished flow file and each finished HTTP body file.
//!
//! Flow files come with the [`Finished`] events, once a file is complete (its last write
//! done, on the finishing thread); body files with the report records the HTTP scanner makes
//! once a body's file is complete and closed (on its worker thread or not), carried by those
//! events ([`Finished::report_objects`]) or, for the last ones, given at the end
//! ([`Output::objects`]). `tcp_cmd` (`http_cmd`) runs CMD with the file's path as its last
//! argument, without a shell (CMD is split at white space) unless `--tcp-cmd-shell`
//! (`--http-cmd-shell`) is given (then `/bin/sh -c CMD tcpflow PATH`: the path is `$1`).
//! Both share one bound: at most [`MAX_RUNNING`] commands run at once; the others wait in a
//! queue of at most [`MAX_QUEUED`] paths (past it, a path is dropped and counted). Nothing
//! here waits for a command while packets are read: they are started and reaped when events
//! come and when a live capture is idle; the end of the run waits for the last ones (each
//! that ends counts as progress for the watchdog after a stop signal). Failures (not
//! started, non-zero status, killed) are counted per setting and said at the end.
//! `tcp_alert_fd` and `http_alert_fd` get `close\t<path>\n` per finished file, as tcpflow
//! 1.6 writes (1.6 also wrote `open\t<path>` when a body began; here a line means the file
//! is complete); a descriptor is made non-blocking, so a reader that does not read loses
//! lines (counted) rather than stopping the capture.

use std::collections::VecDeque;
use std::fs::File;
use std::io::Write;
use std::os::fd::FromRawFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use tcpflow_core::{CloseReason, Dir, FlowInfo, Sink};

use super::{End, Finished, Output};
use crate::report::{Group, Objects};

/// Commands running at once, at most (`tcp_cmd` and `http_cmd` together).
pub const MAX_RUNNING: usize = 8;
/// Paths waiting for a command, at most.
pub const MAX_QUEUED: usize = 100_000;

/// What to do with finished files.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FlowCommandOpts {
    /// `tcp_cmd`, as given.
    pub cmd: Option<String>,
    /// `--tcp-cmd-shell`: run it with `/bin/sh -c`.
    pub shell: bool,
    /// `tcp_alert_fd`.
    pub alert_fd: Option<i32>,
    /// `http_cmd`, as given.
    pub http_cmd: Option<String>,
    /// `--http-cmd-shell`.
    pub http_shell: bool,
    /// `http_alert_fd`.
    pub http_alert_fd: Option<i32>,
}

impl FlowCommandOpts {
    pub fn any(&self) -> bool {
        self.cmd.is_some()
            || self.alert_fd.is_some()
            || self.http_cmd.is_some()
            || self.http_alert_fd.is_some()
    }
}

/// Flow files (`tcp_*`) or HTTP body files (`http_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Flow = 0,
    Body = 1,
}

const NAMES: [&str; 2] = ["tcp", "http"];

/// One setting pair's command and figures.
#[derive(Debug, Default)]
struct Act {
    argv: Option<Vec<String>>,
    shell: bool,
    /// Index into [`FlowCommands::alerts`].
    alert: Option<usize>,
    started: u64,
    failed: u64,
    dropped: u64,
    alerts: u64,
    alerts_lost: u64,
}

/// The `tcp_cmd` / `tcp_alert_fd` / `http_cmd` / `http_alert_fd` output.
#[derive(Debug)]
pub struct FlowCommands {
    acts: [Act; 2],
    /// The alert descriptors (one when both settings name the same).
    alerts: Vec<File>,
    running: Vec<(Kind, Child)>,
    queue: VecDeque<(Kind, PathBuf)>,
    first_failure: Option<String>,
}

/// Takes descriptor `fd` (it is closed with this output). Fails when it is not open.
fn take_fd(fd: i32, name: &str) -> Result<File, String> {
    // SAFETY: fcntl on a descriptor number only queries and sets its flags.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 {
        return Err(format!("-S {name}={fd}: descriptor {fd} is not open"));
    }
    // SAFETY: as above.
    unsafe { libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) };
    // SAFETY: the descriptor is open and given to this process for this use; it is owned
    // here from now on (once: a second setting naming it shares it).
    Ok(unsafe { File::from_raw_fd(fd) })
}

fn argv(cmd: &Option<String>, shell: bool, name: &str) -> Result<Option<Vec<String>>, String> {
    Ok(match cmd {
        Some(c) if shell => Some(vec![c.clone()]),
        Some(c) => {
            let v: Vec<String> = c.split_whitespace().map(String::from).collect();
            if v.is_empty() {
                return Err(format!("-S {name}= needs a command"));
            }
            Some(v)
        }
        None => None,
    })
}

impl FlowCommands {
    /// Takes the alert descriptors. Fails when one is not open.
    pub fn new(o: &FlowCommandOpts) -> Result<FlowCommands, String> {
        let mut alerts = Vec::new();
        let mut fds: Vec<i32> = Vec::new();
        let mut alert = |fd: Option<i32>, name: &str| -> Result<Option<usize>, String> {
            let Some(fd) = fd else { return Ok(None) };
            if let Some(i) = fds.iter().position(|f| *f == fd) {
                return Ok(Some(i));
            }
            alerts.push(take_fd(fd, name)?);
            fds.push(fd);
            Ok(Some(alerts.len() - 1))
        };
        let flow = Act {
            argv: argv(&o.cmd, o.shell, "tcp_cmd")?,
            shell: o.shell,
            alert: alert(o.alert_fd, "tcp_alert_fd")?,
            ..Act::default()
        };
        let body = Act {
            argv: argv(&o.http_cmd, o.http_shell, "http_cmd")?,
            shell: o.http_shell,
            alert: alert(o.http_alert_fd, "http_alert_fd")?,
            ..Act::default()
        };
        Ok(FlowCommands {
            acts: [flow, body],
            alerts,
            running: Vec::new(),
            queue: VecDeque::new(),
            first_failure: None,
        })
    }

    fn failure(&mut self, k: Kind, m: String) {
        self.acts[k as usize].failed += 1;
        if self.first_failure.is_none() {
            self.first_failure = Some(m);
        }
    }

    /// A finished file: its alert line, its command queued.
    fn file(&mut self, k: Kind, shown: &Path, path: &Path) {
        let a = &mut self.acts[k as usize];
        if let Some(i) = a.alert {
            let mut line = b"close\t".to_vec();
            line.extend_from_slice(shown.as_os_str().as_encoded_bytes());
            line.push(b'\n');
            // One write: a line is whole or lost (a pipe takes up to PIPE_BUF at once).
            match self.alerts[i].write(&line) {
                Ok(n) if n == line.len() => a.alerts += 1,
                _ => a.alerts_lost += 1,
            }
        }
        if a.argv.is_some() {
            if self.queue.len() >= MAX_QUEUED {
                a.dropped += 1;
            } else {
                self.queue.push_back((k, path.to_path_buf()));
            }
        }
    }

    /// The finished body files among `o`.
    fn bodies(&mut self, o: &Objects) {
        for b in o.bodies.iter().filter(|b| b.exists) {
            self.file(Kind::Body, &b.shown, &b.path);
        }
    }

    /// Reaps the commands that ended and starts waiting ones; never waits.
    // A child is removed once `try_wait` reaped it (or could not tell: it is not waited for
    // again, which would block).
    #[allow(clippy::zombie_processes)]
    fn pump(&mut self) {
        let mut i = 0;
        while i < self.running.len() {
            let k = self.running[i].0;
            match self.running[i].1.try_wait() {
                Ok(Some(st)) => {
                    self.running.swap_remove(i);
                    if !st.success() {
                        self.failure(
                            k,
                            format!("-S {}_cmd: a command ended with {st}", NAMES[k as usize]),
                        );
                    }
                }
                Ok(None) => i += 1,
                Err(e) => {
                    self.running.swap_remove(i);
                    self.failure(
                        k,
                        format!("-S {}_cmd: waiting for a command: {e}", NAMES[k as usize]),
                    );
                }
            }
        }
        while self.running.len() < MAX_RUNNING {
            let Some((k, path)) = self.queue.pop_front() else {
                break;
            };
            let a = &self.acts[k as usize];
            let Some(argv) = &a.argv else {
                continue;
            };
            let mut cmd = if a.shell {
                let mut c = Command::new("/bin/sh");
                c.arg("-c").arg(&argv[0]).arg("tcpflow");
                c
            } else {
                let mut c = Command::new(&argv[0]);
                c.args(&argv[1..]);
                c
            };
            cmd.arg(&path).stdin(Stdio::null());
            match cmd.spawn() {
                Ok(child) => {
                    self.acts[k as usize].started += 1;
                    self.running.push((k, child));
                }
                Err(e) => {
                    let m = format!("-S {}_cmd: cannot run {}: {e}", NAMES[k as usize], argv[0]);
                    self.failure(k, m)
                }
            }
        }
    }

    /// Every queued command run, and waited for.
    fn drain(&mut self) {
        while !self.queue.is_empty() || !self.running.is_empty() {
            self.pump();
            if let Some((k, mut c)) = self.running.pop() {
                let waited = c.wait();
                // A command that ended is progress for the watchdog (a hung one is not).
                crate::watchdog::tick();
                let n = NAMES[k as usize];
                match waited {
                    Ok(st) if !st.success() => {
                        self.failure(k, format!("-S {n}_cmd: a command ended with {st}"))
                    }
                    Ok(_) => {}
                    Err(e) => self.failure(k, format!("-S {n}_cmd: waiting for a command: {e}")),
                }
            }
        }
    }
}

impl Sink for FlowCommands {
    fn data(&mut self, _: &FlowInfo, _: Dir, _: u64, _: &[u8]) {}
    fn close(&mut self, _: &FlowInfo, _: CloseReason) {}
}

impl Output for FlowCommands {
    fn finished(&mut self, f: &Finished) {
        // The bodies the event carries were finished before this direction.
        self.bodies(&f.report_objects);
        if let Some(file) = &f.file {
            self.file(Kind::Flow, &file.shown, &file.path);
        }
        self.pump();
    }

    fn objects(&mut self, o: &Objects) {
        self.bodies(o);
        self.pump();
    }

    fn idle(&mut self, _now: u64) {
        self.pump();
    }

    /// The end: every queued command runs, and is waited for.
    fn flush(&mut self) {
        self.drain();
    }

    fn finish(&mut self, end: &mut End) {
        // Bodies given at the end (Output::objects) after the flush.
        self.drain();
        const FIELDS: [[&str; 5]; 2] = [
            [
                "tcp_cmd_started",
                "tcp_cmd_failed",
                "tcp_cmd_dropped",
                "tcp_alert_lines",
                "tcp_alert_lines_lost",
            ],
            [
                "http_cmd_started",
                "http_cmd_failed",
                "http_cmd_dropped",
                "http_alert_lines",
                "http_alert_lines_lost",
            ],
        ];
        let mut fields = Vec::new();
        for (k, a) in self.acts.iter().enumerate() {
            // Only the pairs asked for: a run without -S http_* reports as before.
            if k == Kind::Body as usize && a.argv.is_none() && a.alert.is_none() {
                continue;
            }
            let f = FIELDS[k];
            fields.extend([
                (f[0], a.started),
                (f[1], a.failed),
                (f[2], a.dropped),
                (f[3], a.alerts),
                (f[4], a.alerts_lost),
            ]);
        }
        let g: Group = ("flow_commands", fields);
        end.groups.push(g);
        let [t, h] = &self.acts;
        if t.failed + t.dropped + t.alerts_lost + h.failed + h.dropped + h.alerts_lost > 0 {
            let mut parts = Vec::new();
            for (k, a) in self.acts.iter().enumerate() {
                if a.argv.is_some() || a.alert.is_some() {
                    parts.push(format!(
                        "{} {} commands run, {} failed, {} not run (queue full); {} alert lines lost",
                        NAMES[k], a.started, a.failed, a.dropped, a.alerts_lost
                    ));
                }
            }
            end.lines.push(format!(
                "tcpflow: -S: {}{}",
                parts.join("; "),
                self.first_failure
                    .as_deref()
                    .map(|m| format!(" (first failure: {m})"))
                    .unwrap_or_default(),
            ));
        }
    }
}
