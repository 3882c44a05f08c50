//! Shared by the integration tests: the golden manifest and signal synthesis.

pub mod manifest;
pub mod signals;
