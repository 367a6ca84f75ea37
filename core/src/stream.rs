//! Per-direction reassembly. STUB.
