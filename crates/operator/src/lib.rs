//! securepipe's controllers and the process that runs them.
//!
//! Each controller lives in `controllers/<kind>/` and follows one shape: fetch →
//! validate → pure build → apply → status. Secrets and Jobs are owned children
//! (ownerReferences); finalizers guard only external state (session revocation,
//! lifecycle rules).

pub mod context;
pub mod controllers;
pub mod health;
pub mod leader;
pub mod metrics;
pub mod runner;

pub use context::Context;

/// The field manager for server-side apply, per writer, as `securepipe/<scope>`.
pub fn field_manager(scope: &str) -> String {
    format!("securepipe/{scope}")
}
