//! The ring crate's integration tests, one binary: the protocol on threads
//! (`ring`) and the consumer's validation and recovery paths (`recovery`).
//! The loom model is its own binary (`tests/loom.rs`, built with `--cfg loom`).
#![cfg(not(loom))]

mod fixtures;
mod recovery;
mod ring;
