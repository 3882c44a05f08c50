//! securepipe's controllers and the process that runs them.
//!
//! Each controller lives in `controllers/<kind>/` and follows one shape: fetch →
//! validate → pure build → apply → status. Secrets and Jobs are owned children
//! (ownerReferences); finalizers guard only external state (session revocation,
//! lifecycle rules).

pub mod context;
pub mod controllers;
pub mod grant_coverage;
pub mod health;
pub mod leader;
pub mod metrics;
pub mod runner;
#[cfg(test)]
mod testing;

pub use context::Context;

/// Field managers for server-side apply, one per concern (`securepipe/<concern>`). SSA
/// prunes what a manager owned and left out, so each concern sends all and only its fields.
pub mod managers {
    /// A TrainingPartition's credentials: its Secret and the credentials part of its status.
    pub const CREDENTIALS: &str = "securepipe/credentials";
    /// The roles a TrainingPartition's sessions were minted on (`status.usedRoleArns`).
    pub const REVOCATION: &str = "securepipe/revocation";
    /// A RetentionPolicy's status.
    pub const RETENTION: &str = "securepipe/retention-policy";
    /// A TrainingPartition's extraction: its worker Secret and the extraction part of its
    /// status.
    pub const EXTRACTION: &str = "securepipe/extraction";
}
