//! The flusher's integration tests, one binary: each module is an area,
//! and they share the fixtures in `common.rs` (temp dirs, unique segment
//! names, the real `ringflush` binary, bounded waits).

mod chaos;
mod cleanup;
mod common;
mod deployment;
mod errors;
mod faults;
mod flusher;
mod formatter_diff;
mod fuzz_ring;
mod hostile;
mod lanes;
mod liveness;
mod log_backend;
mod multiprocess;
mod operations;
mod options;
mod producer_api;
mod python_rotation;
mod requests;
mod rotation;
mod shipping;
mod thread_lanes;
mod tracing_layer;
