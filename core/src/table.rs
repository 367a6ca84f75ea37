//! The flow table. STUB.
#[derive(Clone, Copy, Debug)]
pub struct FlowSlot { _x: u8 }
impl FlowSlot { pub const EMPTY: FlowSlot = FlowSlot { _x: 0 }; }
