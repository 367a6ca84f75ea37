//! Engine storage allocated zeroed: the allocator maps fresh pages that the kernel fills on
//! first touch, so a workstation-sized table costs only the pages its flows reach (filling it
//! with `EMPTY` values would touch every page at start: ~140 MB of RSS and page faults).

use std::alloc::{alloc_zeroed, handle_alloc_error, Layout};

use tcpflow_core::spool::SpoolFlow;
use tcpflow_core::Block;
use tcpflow_core::{FlowRecord, HotSlot};

/// Types whose all-zero bytes are a valid value.
///
/// # Safety
/// Implement only for types made of integers, bools, arrays of them and `repr(u8)` enums
/// whose variant 0 holds only such fields (the tests below check the layouts they rely on).
pub unsafe trait ZeroValid: Copy {}

// SAFETY: integers, bools, `repr(u8)` enums (Addr, Mode, RecordState) with a data-free or
// integer-only variant 0, and `Option<[[u8; 6]; 2]>`, whose zero tag is `None` (tested).
unsafe impl ZeroValid for HotSlot {}
// SAFETY: integers, a byte array and a `repr(u8)` enum (RecordState) whose variant 0 is
// data-free.
unsafe impl ZeroValid for FlowRecord {}
// SAFETY: integers and a byte array.
unsafe impl ZeroValid for Block {}
// SAFETY: integers and a bool; all-zero is `SpoolFlow::EMPTY`.
unsafe impl ZeroValid for SpoolFlow {}

/// Large allocations from now on get pages of their own (glibc's default, which it drops
/// once a large block has been freed: a zeroed table would then be carved from the heap and
/// cleared, every page touched at start).
pub fn large_allocations_mapped() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes a tuning parameter of the allocator.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
    }
}

/// `n` zeroed values, with no page touched (see [`large_allocations_mapped`]).
pub fn zeroed_box<T: ZeroValid>(n: usize) -> Box<[T]> {
    if n == 0 || std::mem::size_of::<T>() == 0 {
        return Vec::new().into_boxed_slice();
    }
    let layout = Layout::array::<T>(n).unwrap_or_else(|_| panic!("storage of {n} values"));
    // SAFETY: the layout has a nonzero size; a null result is handled.
    let p = unsafe { alloc_zeroed(layout) }.cast::<T>();
    if p.is_null() {
        handle_alloc_error(layout);
    }
    // SAFETY: `p` holds `n` values of T laid out as `Layout::array`, from the global allocator,
    // all zero, which is valid for T (ZeroValid); the Box frees it with the same layout.
    unsafe { Box::from_raw(std::ptr::slice_from_raw_parts_mut(p, n)) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zeroed_values_read_as_expected() {
        let slots = zeroed_box::<HotSlot>(3);
        let s = format!("{:?}", slots[2]);
        assert!(s.contains("macs: None"), "{s}");
        assert!(s.contains("V4([0, 0, 0, 0])"), "{s}");
        assert!(s.contains("mode: Unset"), "{s}");
        let recs = zeroed_box::<FlowRecord>(2);
        let r = format!("{:?}", recs[1]);
        assert!(r.contains("state: Free"), "{r}");
        let flows = zeroed_box::<SpoolFlow>(2);
        assert_eq!(format!("{:?}", flows[1]), format!("{:?}", SpoolFlow::EMPTY));
        assert!(zeroed_box::<Block>(0).is_empty());
    }
}
