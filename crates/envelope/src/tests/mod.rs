//! Whole-message tests with the in-process keyring: round trips, policy, tampering.

mod roundtrip;
mod support;
