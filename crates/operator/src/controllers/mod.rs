//! One module per custom resource kind. Each exposes
//! `run(ctx, scope, shutdown)`, which drives a kube-runtime `Controller` until `shutdown`
//! is cancelled and lets in-flight reconciles finish.

mod error;
pub mod events;
pub mod extraction;
pub mod grants;
pub mod retention_policy;
mod status_patch;
pub mod training_partition;

pub use error::{Error, ObjectKey};

use std::future::Future;
use std::hash::Hash;

use futures::FutureExt;
use kube::runtime::reflector::Store;
use kube::{Api, Client, Resource};
use serde::de::DeserializeOwned;
use tokio_util::sync::CancellationToken;

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

/// Drives a controller's `running` future (built with `graceful_shutdown_on(shutdown)`)
/// to its end. kube-runtime holds every reconcile until the first list has filled
/// `store`, and a graceful shutdown before that point waits for a list that never comes
/// (the watch has stopped). So a shutdown that finds `store` not ready yet stops at once:
/// no reconcile can have started.
pub(crate) async fn drive<K>(
    running: impl Future<Output = ()>,
    store: Store<K>,
    shutdown: &CancellationToken,
) where
    K: Resource + Clone + 'static,
    K::DynamicType: Eq + Hash + Clone,
{
    let stop_before_start = async {
        shutdown.cancelled().await;
        if store.wait_until_ready().now_or_never().is_some() {
            // Started: the graceful shutdown lets in-flight reconciles finish.
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        () = running => {}
        () = stop_before_start => tracing::debug!("shut down before the first list completed; nothing was in flight"),
    }
}
