//! A 64-bit counter shared between threads on every target: `AtomicU64` where the CPU has
//! 64-bit atomics, a mutex where it has none (32-bit MIPS and PowerPC, most routers' CPUs).

#[cfg(target_has_atomic = "64")]
mod imp {
    use std::sync::atomic::{AtomicU64, Ordering};

    #[derive(Debug, Default)]
    pub struct Counter64(AtomicU64);

    impl Counter64 {
        pub fn new(v: u64) -> Counter64 {
            Counter64(AtomicU64::new(v))
        }
        /// The value, with everything written before the [`Counter64::add`]s it counts.
        pub fn get(&self) -> u64 {
            self.0.load(Ordering::Acquire)
        }
        pub fn add(&self, n: u64) {
            self.0.fetch_add(n, Ordering::Release);
        }
    }
}

#[cfg(not(target_has_atomic = "64"))]
mod imp {
    use std::sync::Mutex;

    #[derive(Debug, Default)]
    pub struct Counter64(Mutex<u64>);

    impl Counter64 {
        pub fn new(v: u64) -> Counter64 {
            Counter64(Mutex::new(v))
        }
        pub fn get(&self) -> u64 {
            // A panic while holding it cannot leave a torn u64: the value is still right.
            *self.0.lock().unwrap_or_else(|e| e.into_inner())
        }
        pub fn add(&self, n: u64) {
            let mut v = self.0.lock().unwrap_or_else(|e| e.into_inner());
            *v = v.wrapping_add(n);
        }
    }
}

pub use imp::Counter64;

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn counts_across_threads() {
        let c = Arc::new(Counter64::new(5));
        let ts: Vec<_> = (0..4)
            .map(|_| {
                let c = c.clone();
                std::thread::spawn(move || (0..1000).for_each(|_| c.add(2)))
            })
            .collect();
        ts.into_iter().for_each(|t| t.join().unwrap());
        assert_eq!(c.get(), 8005);
    }
}
