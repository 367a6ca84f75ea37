//! `-S tcp_cmd=CMD` and `-S tcp_alert_fd=N`: acting on each finished flow file.
//!
//! Both hang on the [`Finished`] events, which come once a file is complete (its last write
//! done, on the finishing thread). `tcp_cmd` runs CMD with the file's path as its last
//! argument, without a shell (CMD is split at white space) unless `--tcp-cmd-shell` is given
//! (then `/bin/sh -c CMD tcpflow PATH`: the path is `$1`). At most [`MAX_RUNNING`] commands
//! run at once; the others wait in a queue of at most [`MAX_QUEUED`] paths (past it, a path
//! is dropped and counted). Nothing here waits for a command while packets are read: they
//! are started and reaped when events come and when a live capture is idle; the end of the
//! run waits for the last ones (each that ends counts as progress for the watchdog after a
//! stop signal). Failures (not started, non-zero status, killed) are counted
//! and said at the end. `tcp_alert_fd` gets `close\t<path>\n` per finished file, as tcpflow
//! 1.6 writes; the descriptor is made non-blocking, so a reader that does not read loses
//! lines (counted) rather than stopping the capture.

use std::collections::VecDeque;
use std::fs::File;
use std::io::Write;
use std::os::fd::FromRawFd;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use tcpflow_core::{CloseReason, Dir, FlowInfo, Sink};

use super::{End, Finished, Output};
use crate::report::Group;

/// Commands running at once, at most.
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
}

impl FlowCommandOpts {
    pub fn any(&self) -> bool {
        self.cmd.is_some() || self.alert_fd.is_some()
    }
}

/// The `tcp_cmd` / `tcp_alert_fd` output.
#[derive(Debug)]
pub struct FlowCommands {
    argv: Option<Vec<String>>,
    shell: bool,
    alert: Option<File>,
    running: Vec<Child>,
    queue: VecDeque<PathBuf>,
    started: u64,
    failed: u64,
    dropped: u64,
    alerts: u64,
    alerts_lost: u64,
    first_failure: Option<String>,
}

impl FlowCommands {
    /// Takes the alert descriptor (it is closed with this output). Fails when it is not open.
    pub fn new(o: &FlowCommandOpts) -> Result<FlowCommands, String> {
        let alert = match o.alert_fd {
            Some(fd) => {
                // SAFETY: fcntl on a descriptor number only queries and sets its flags.
                let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
                if flags < 0 {
                    return Err(format!("-S tcp_alert_fd={fd}: descriptor {fd} is not open"));
                }
                // SAFETY: as above.
                unsafe { libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) };
                // SAFETY: the descriptor is open and given to this process for this use; it
                // is owned here from now on.
                Some(unsafe { File::from_raw_fd(fd) })
            }
            None => None,
        };
        let argv = match &o.cmd {
            Some(c) if o.shell => Some(vec![c.clone()]),
            Some(c) => {
                let v: Vec<String> = c.split_whitespace().map(String::from).collect();
                if v.is_empty() {
                    return Err("-S tcp_cmd= needs a command".into());
                }
                Some(v)
            }
            None => None,
        };
        Ok(FlowCommands {
            argv,
            shell: o.shell,
            alert,
            running: Vec::new(),
            queue: VecDeque::new(),
            started: 0,
            failed: 0,
            dropped: 0,
            alerts: 0,
            alerts_lost: 0,
            first_failure: None,
        })
    }

    fn failure(&mut self, m: String) {
        self.failed += 1;
        if self.first_failure.is_none() {
            self.first_failure = Some(m);
        }
    }

    /// Reaps the commands that ended and starts waiting ones; never waits.
    // A child is removed once `try_wait` reaped it (or could not tell: it is not waited for
    // again, which would block).
    #[allow(clippy::zombie_processes)]
    fn pump(&mut self) {
        let mut i = 0;
        while i < self.running.len() {
            match self.running[i].try_wait() {
                Ok(Some(st)) => {
                    self.running.swap_remove(i);
                    if !st.success() {
                        self.failure(format!("-S tcp_cmd: a command ended with {st}"));
                    }
                }
                Ok(None) => i += 1,
                Err(e) => {
                    self.running.swap_remove(i);
                    self.failure(format!("-S tcp_cmd: waiting for a command: {e}"));
                }
            }
        }
        while self.running.len() < MAX_RUNNING {
            let Some(path) = self.queue.pop_front() else {
                break;
            };
            let Some(argv) = &self.argv else {
                break;
            };
            let mut cmd = if self.shell {
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
                    self.started += 1;
                    self.running.push(child);
                }
                Err(e) => self.failure(format!("-S tcp_cmd: cannot run {}: {e}", argv[0])),
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
        let Some(file) = &f.file else {
            return;
        };
        if let Some(a) = &mut self.alert {
            let mut line = b"close\t".to_vec();
            line.extend_from_slice(file.shown.as_os_str().as_encoded_bytes());
            line.push(b'\n');
            // One write: a line is whole or lost (a pipe takes up to PIPE_BUF at once).
            match a.write(&line) {
                Ok(n) if n == line.len() => self.alerts += 1,
                _ => self.alerts_lost += 1,
            }
        }
        if self.argv.is_some() {
            if self.queue.len() >= MAX_QUEUED {
                self.dropped += 1;
            } else {
                self.queue.push_back(file.path.clone());
            }
            self.pump();
        }
    }

    fn idle(&mut self, _now: u64) {
        self.pump();
    }

    /// The end: every queued command runs, and is waited for.
    fn flush(&mut self) {
        while !self.queue.is_empty() || !self.running.is_empty() {
            self.pump();
            if let Some(mut c) = self.running.pop() {
                let waited = c.wait();
                // A command that ended is progress for the watchdog (a hung one is not).
                crate::watchdog::tick();
                match waited {
                    Ok(st) if !st.success() => {
                        self.failure(format!("-S tcp_cmd: a command ended with {st}"))
                    }
                    Ok(_) => {}
                    Err(e) => self.failure(format!("-S tcp_cmd: waiting for a command: {e}")),
                }
            }
        }
    }

    fn finish(&mut self, end: &mut End) {
        let g: Group = (
            "flow_commands",
            vec![
                ("tcp_cmd_started", self.started),
                ("tcp_cmd_failed", self.failed),
                ("tcp_cmd_dropped", self.dropped),
                ("tcp_alert_lines", self.alerts),
                ("tcp_alert_lines_lost", self.alerts_lost),
            ],
        );
        end.groups.push(g);
        if self.failed > 0 || self.dropped > 0 || self.alerts_lost > 0 {
            end.lines.push(format!(
                "tcpflow: -S: {} commands run, {} failed{}, {} not run (queue full); {} alert lines lost",
                self.started,
                self.failed,
                self.first_failure
                    .as_deref()
                    .map(|m| format!(" (first: {m})"))
                    .unwrap_or_default(),
                self.dropped,
                self.alerts_lost
            ));
        }
    }
}
