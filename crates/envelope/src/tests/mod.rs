//! Whole-message tests with the in-process keyring: round trips, policy, tampering.

mod policy;
mod roundtrip;
mod support;
mod tamper;
