//! Whether helper threads have a processor of their own.
//!
//! The read-ahead thread, the file writers and the HTTP bodies' worker pay off only when
//! they run beside the thread that reassembles. On one processor they take turns with it
//! and add their switches and hand-overs: pinned to one core, the read-ahead thread alone
//! made the benchmark's `messy` run 7% slower, and without any of them the runs took 0.80
//! (`concurrent`) to 0.97 (`many`) x the time (tests/BENCH.md). So with one processor
//! available, their work is done inline, as without threads.

/// Whether more than one processor is available to this thread.
pub fn spare_core() -> bool {
    processors() > 1
}

/// Processors available to this thread (its affinity mask, and the cgroup quota where there
/// is one; 1 when the count cannot be read): the standard library's count, read afresh each
/// call (a few system calls; callers ask once per input, writer pool or scanner).
pub fn processors() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

#[cfg(test)]
pub(crate) mod test_support {
    /// Runs `f` on a new thread allowed only the first processor this process may use (a
    /// thread's affinity is its own: the caller's is unchanged).
    pub fn on_one_core<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
        std::thread::spawn(move || {
            // SAFETY: cpu_set_t is plain data; the calls read or write only the set given,
            // for the calling thread (pid 0).
            unsafe {
                let mut set: libc::cpu_set_t = std::mem::zeroed();
                let size = std::mem::size_of::<libc::cpu_set_t>();
                assert_eq!(libc::sched_getaffinity(0, size, &mut set), 0);
                let first = (0..libc::CPU_SETSIZE as usize)
                    .find(|&c| libc::CPU_ISSET(c, &set))
                    .expect("some processor");
                libc::CPU_ZERO(&mut set);
                libc::CPU_SET(first, &mut set);
                assert_eq!(libc::sched_setaffinity(0, size, &set), 0);
            }
            f()
        })
        .join()
        .expect("the pinned thread")
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::on_one_core;
    use super::*;

    #[test]
    fn one_processor_leaves_no_spare() {
        assert!(!on_one_core(spare_core));
    }
}
