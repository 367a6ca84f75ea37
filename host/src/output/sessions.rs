//! Connection numbers (`%S`, JSON's `session`) for the outputs that keep no other per-flow
//! state: connections counted in the order they start in this run, by engine slot.

/// A slot without a connection.
const NONE: u64 = u64::MAX;

/// The number of the connection in each engine slot.
#[derive(Debug, Default)]
pub(super) struct Sessions {
    by_slot: Vec<u64>,
    next: u64,
}

impl Sessions {
    /// A connection starts in `slot`: it takes the next number.
    pub(super) fn open(&mut self, slot: u32) {
        self.forget(slot);
        self.number(slot);
    }

    /// The number of the connection in `slot`, given now to a connection whose open this
    /// output did not see.
    pub(super) fn number(&mut self, slot: u32) -> u64 {
        let i = slot as usize;
        if i >= self.by_slot.len() {
            self.by_slot.resize(i + 1, NONE);
        }
        if self.by_slot[i] == NONE {
            self.by_slot[i] = self.next;
            self.next += 1;
        }
        self.by_slot[i]
    }

    /// The connection in `slot` ended: the slot's next connection gets a new number.
    pub(super) fn forget(&mut self, slot: u32) {
        if let Some(s) = self.by_slot.get_mut(slot as usize) {
            *s = NONE;
        }
    }

    /// A connection this run numbers but does not write (it started while `-R` files were
    /// read) still takes its number, as in the file output.
    pub(super) fn skip(&mut self) {
        self.next += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::Sessions;

    #[test]
    fn numbers_follow_the_order_connections_start() {
        let mut s = Sessions::default();
        s.open(5);
        s.open(2);
        assert_eq!((s.number(5), s.number(2)), (0, 1));
        s.skip();
        // Data of a connection whose open was not seen: numbered at first sight, then kept.
        assert_eq!(s.number(9), 3);
        assert_eq!(s.number(9), 3);
        // A slot used again after its connection ended: a new number.
        s.forget(5);
        s.open(5);
        assert_eq!(s.number(5), 4);
        // Forgetting a slot never seen is harmless.
        s.forget(1000);
        assert_eq!(s.number(2), 1);
    }
}
