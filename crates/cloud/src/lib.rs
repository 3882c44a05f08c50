//! The AWS side of securepipe. Every call to an AWS service goes through this crate, one
//! small module per concern; the pure builders (session policies, lifecycle documents)
//! are testable without any server.

pub mod bucket_posture;
pub mod config;
pub mod failure;
mod keep_alive;
pub mod kms;
pub mod lifecycle;
mod names;
pub mod objects;
pub mod revocation;
pub mod session_policy;
pub mod session_tags;
pub mod sts;
pub mod worker_policy;

pub use config::{Aws, AwsSettings};
pub use failure::{Failure, FailureReason};
