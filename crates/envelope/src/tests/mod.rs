//! Whole-message tests with the in-process keyring: round trips, policy, tampering.

mod fuzz;
mod policy;
mod roundtrip;
mod support;
mod tamper;
