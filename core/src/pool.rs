//! The out-of-order pool. STUB.
#[derive(Clone, Copy, Debug)]
pub struct Block { _x: u8 }
impl Block { pub const EMPTY: Block = Block { _x: 0 }; }
