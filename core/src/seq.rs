//! TCP sequence numbers: 32-bit, wrapping, compared within half the sequence space.

/// A TCP sequence number. Arithmetic wraps; ordering is only meaningful between numbers less
/// than 2^31 apart, so there is deliberately no `Ord`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct SeqNum(pub u32);

impl SeqNum {
    /// `self + n`, wrapping.
    pub fn wrapping_add(self, n: u32) -> SeqNum {
        SeqNum(self.0.wrapping_add(n))
    }

    /// Signed distance from `other` to `self` (positive when `self` is after `other`).
    pub fn diff(self, other: SeqNum) -> i32 {
        self.0.wrapping_sub(other.0) as i32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wraps_and_compares_across_zero() {
        let a = SeqNum(u32::MAX - 9);
        let b = a.wrapping_add(20);
        assert_eq!(b, SeqNum(10));
        assert_eq!(b.diff(a), 20);
        assert_eq!(a.diff(b), -20);
    }
}
