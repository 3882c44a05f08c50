//! One module per custom resource kind. Each exposes
//! `run(ctx, scope, shutdown)`, which drives a kube-runtime `Controller` until `shutdown`
//! is cancelled and lets in-flight reconciles finish.

pub mod retention_policy;
pub mod training_partition;

use kube::{Api, Client, Resource};
use serde::de::DeserializeOwned;

/// Which namespaces the controllers watch: the whole cluster (the default install), or a
/// single namespace (a namespaced install, and every stack test).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WatchScope {
    AllNamespaces,
    Namespace(String),
}

impl WatchScope {
    /// An `Api` for namespaced kind `K` covering this scope.
    pub fn api<K>(&self, client: Client) -> Api<K>
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope>,
        K::DynamicType: Default,
        K: Clone + DeserializeOwned + std::fmt::Debug,
    {
        match self {
            Self::AllNamespaces => Api::all(client),
            Self::Namespace(namespace) => Api::namespaced(client, namespace),
        }
    }
}
