//! The bound on how long a stop request may go unanswered.
//!
//! SIGINT, SIGTERM and SIGHUP set a flag that the run checks between packets: it stops
//! reading and writes every flow out (exit 0). A run stuck where it never checks the flag
//! (a console write to a pipe nobody reads, a thread start that never returns, as under
//! qemu-aarch64 with a mismatched C library: issue 24) would ignore the signal for ever, and
//! a service manager would have to kill it. So the first signal also arms this watchdog:
//! every [`STOP_BOUND_SECS`] it asks whether the run progressed since (a packet looked at, a
//! flow closed, a file write done). A run that is writing its flows out keeps going however
//! long that takes; one that did nothing for the bound exits with status 130 and a message,
//! as after a second signal.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// Seconds without progress after a stop signal before the process exits. Longer than any
/// single step of a working run (one packet, one flow, one write), short enough for a service
/// manager's stop timeout (tcpflow.service: 30 s).
pub const STOP_BOUND_SECS: u32 = 5;

// usize, not u64: 32-bit MIPS has no 64-bit atomics, and only a change of the value counts
// (it cannot wrap round to the same value within the bound).
static PROGRESS: AtomicUsize = AtomicUsize::new(0);
static SEEN: AtomicUsize = AtomicUsize::new(0);
static ARMED: AtomicBool = AtomicBool::new(false);
/// Waits on storage under way ([`busy`]).
static BUSY: AtomicUsize = AtomicUsize::new(0);
/// Held by the tests that wait on storage, and by the one that counts [`BUSY`]: the lib's
/// tests run on parallel threads of one process.
#[cfg(test)]
static BUSY_TESTS: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// For a test that waits on storage ([`busy`]): its turn among those that do.
#[cfg(test)]
pub(crate) fn storage_tests_in_turn() -> std::sync::MutexGuard<'static, ()> {
    BUSY_TESTS.lock().unwrap_or_else(|e| e.into_inner())
}

const MESSAGE: &[u8] =
    b"tcpflow: no progress for 5 s after the stop signal; exiting without writing the rest\n";

/// Marks progress. A plain load and store, not a read-modify-write (this runs for every
/// packet): ticks of two threads may overwrite each other, which does not matter, as the
/// watchdog only asks whether the value changed.
#[inline]
pub fn tick() {
    PROGRESS.store(
        PROGRESS.load(Ordering::Relaxed).wrapping_add(1),
        Ordering::Relaxed,
    );
}

/// Marks a wait on storage (fdatasync of the spool or the report) until dropped: a slow
/// card may take longer than the bound to make data durable, and that wait is the point of
/// stopping cleanly, not a stuck run (a service manager's own timeout still bounds it).
#[must_use]
pub fn busy() -> Busy {
    BUSY.fetch_add(1, Ordering::Relaxed);
    Busy(())
}

/// See [`busy`].
pub struct Busy(());

impl Drop for Busy {
    fn drop(&mut self) {
        tick();
        BUSY.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Arms the watchdog on the first of `signals`; call once, after the handlers that set the
/// stop flag (and exit on a second signal) are registered.
pub fn install(signals: &[i32]) -> Result<(), String> {
    // SAFETY: both handlers only use atomics, alarm(2), write(2) and _exit(2), which are
    // async-signal-safe.
    unsafe {
        signal_hook::low_level::register(signal_hook::consts::SIGALRM, on_alarm)
            .map_err(|e| format!("cannot install signal handler: {e}"))?;
        for &sig in signals {
            signal_hook::low_level::register(sig, arm)
                .map_err(|e| format!("cannot install signal handler: {e}"))?;
        }
    }
    Ok(())
}

fn arm() {
    if !ARMED.swap(true, Ordering::Relaxed) {
        SEEN.store(PROGRESS.load(Ordering::Relaxed), Ordering::Relaxed);
        // SAFETY: alarm(2) is async-signal-safe.
        unsafe { libc::alarm(STOP_BOUND_SECS) };
    }
}

/// Whether a run is stuck: nothing progressed since the last look and no storage wait is
/// under way.
fn stuck(now: usize, seen: usize, busy: usize) -> bool {
    now == seen && busy == 0
}

fn on_alarm() {
    let now = PROGRESS.load(Ordering::Relaxed);
    let seen = SEEN.swap(now, Ordering::Relaxed);
    if !stuck(now, seen, BUSY.load(Ordering::Relaxed)) {
        // SAFETY: alarm(2) is async-signal-safe.
        unsafe { libc::alarm(STOP_BOUND_SECS) };
        return;
    }
    // SAFETY: write(2) and _exit(2) are async-signal-safe; MESSAGE is a static buffer.
    unsafe {
        libc::write(2, MESSAGE.as_ptr().cast(), MESSAGE.len());
        libc::_exit(130);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stuck_only_without_progress_and_without_a_storage_wait() {
        let _turn = storage_tests_in_turn();
        assert!(stuck(7, 7, 0));
        assert!(!stuck(8, 7, 0));
        assert!(!stuck(7, 7, 1));
        let before = PROGRESS.load(Ordering::Relaxed);
        {
            let _b = busy();
            assert_eq!(BUSY.load(Ordering::Relaxed), 1);
        }
        assert_eq!(BUSY.load(Ordering::Relaxed), 0);
        assert_ne!(
            PROGRESS.load(Ordering::Relaxed),
            before,
            "the end of a wait is progress"
        );
    }

    #[test]
    fn the_message_states_the_bound() {
        let m = std::str::from_utf8(MESSAGE).unwrap();
        assert!(m.contains(&format!(" {STOP_BOUND_SECS} s ")), "{m}");
    }
}
