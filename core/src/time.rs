//! Capture time.

/// Capture time: nanoseconds since the Unix epoch (u64 lasts until 2554). The core has no
/// clock; every timeout runs on these, so a file gives the same output every run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Timestamp(pub u64);

impl Timestamp {
    /// Whole seconds since the Unix epoch.
    pub const fn from_secs(secs: u64) -> Self {
        Timestamp(secs * 1_000_000_000)
    }
    /// Seconds and microseconds since the Unix epoch (classic pcap's resolution).
    pub const fn from_micros(secs: u64, micros: u32) -> Self {
        Timestamp(secs * 1_000_000_000 + micros as u64 * 1000)
    }
    /// Whole seconds since the Unix epoch.
    pub const fn secs(self) -> u64 {
        self.0 / 1_000_000_000
    }
    /// Nanoseconds past the whole second.
    pub const fn subsec_nanos(self) -> u32 {
        (self.0 % 1_000_000_000) as u32
    }
}
