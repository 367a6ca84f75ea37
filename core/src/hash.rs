//! Keyed hash. STUB.
