//! Custom resource types of securepipe (`securepipe.io/v1alpha1`).
//!
//! Everything here is pure data plus the admission rules that travel with it: OpenAPI
//! schema constraints and CEL `x-kubernetes-validations`, so the apiserver rejects an
//! invalid resource with a message that names the field before any controller sees it.

pub mod condition;
pub mod crd;
pub mod retention_policy;
pub mod tenant_grant;
pub mod training_partition;
pub mod types;
pub mod worker;

pub use retention_policy::{RetentionPolicy, RetentionPolicySpec, RetentionPolicyStatus};
pub use tenant_grant::{TenantGrant, TenantGrantSpec};
pub use training_partition::{TrainingPartition, TrainingPartitionSpec, TrainingPartitionStatus};

/// The API group of every securepipe resource.
pub const GROUP: &str = "securepipe.io";
/// The served and stored version.
pub const VERSION: &str = "v1alpha1";
