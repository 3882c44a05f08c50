//! One module per custom resource kind. Each exposes
//! `run(ctx, scope, shutdown)`, which drives a kube-runtime `Controller` until `shutdown`
//! is cancelled and lets in-flight reconciles finish.

mod conditions;
mod error;
pub mod events;
pub mod extraction;
pub mod grants;
pub mod retention_policy;
mod status_patch;
pub mod training_partition;

pub use error::{Error, ObjectKey};

use std::collections::BTreeSet;
use std::hash::Hash;

use futures::{FutureExt, Stream, StreamExt};
use kube::runtime::reflector::Store;
use kube::runtime::{WatchStreamExt, watcher};
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_access_is_everywhere_only_when_no_list_is_given() {
        let all = WatchScope::AllNamespaces;
        assert_eq!(TenantScope::new(&all, None), TenantScope::AllNamespaces);
        let listed = TenantScope::new(&all, Some("team-a, team-b,"));
        assert!(listed.allows("team-a") && listed.allows("team-b"));
        assert!(!listed.allows("team-c"));
        assert!(!TenantScope::new(&all, Some("")).allows("team-a"));
        let one = WatchScope::Namespace("team-a".to_owned());
        assert!(TenantScope::new(&one, None).allows("team-a"));
        assert!(!TenantScope::new(&one, None).allows("team-b"));
        assert!(!TenantScope::new(&one, Some("team-b")).allows("team-a"));
    }
}

/// Where the operator may work inside namespaces (the credentials Secrets, the worker Jobs
/// and their Pods), as its RBAC grants it: every namespace (a ClusterRoleBinding, the
/// chart's `rbac.clusterWideSecrets`), or the tenant namespaces only (a RoleBinding of the
/// tenant role in each, the chart's `rbac.tenantNamespaces`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TenantScope {
    AllNamespaces,
    Namespaces(BTreeSet<String>),
}

impl TenantScope {
    /// The scope of `--secret-namespaces`: absent, every namespace; otherwise the listed
    /// ones (comma-separated; empty: none). Watching one namespace narrows it to that one.
    pub fn new(watch: &WatchScope, listed: Option<&str>) -> Self {
        let listed = listed.map(|list| {
            list.split(',')
                .map(str::trim)
                .filter(|namespace| !namespace.is_empty())
                .map(str::to_owned)
                .collect::<BTreeSet<_>>()
        });
        match (watch, listed) {
            (WatchScope::AllNamespaces, None) => Self::AllNamespaces,
            (WatchScope::AllNamespaces, Some(listed)) => Self::Namespaces(listed),
            (WatchScope::Namespace(namespace), listed) => Self::Namespaces(
                std::iter::once(namespace.clone())
                    .filter(|namespace| listed.as_ref().is_none_or(|l| l.contains(namespace)))
                    .collect(),
            ),
        }
    }

    pub fn allows(&self, namespace: &str) -> bool {
        match self {
            Self::AllNamespaces => true,
            Self::Namespaces(namespaces) => namespaces.contains(namespace),
        }
    }
}

impl TenantScope {
    /// Changes to the `K`s that `config` selects, watched where the operator may read
    /// them. With the tenant role bound in listed namespaces only, a cluster-wide watch
    /// would be forbidden, so each tenant namespace gets its own watch.
    pub fn watch<K>(
        &self,
        client: &Client,
        scope: &WatchScope,
        config: watcher::Config,
    ) -> impl Stream<Item = Result<K, watcher::Error>> + Send + 'static
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
        K: Clone + DeserializeOwned + std::fmt::Debug + Send + 'static,
    {
        let apis: Vec<Api<K>> = match (scope, self) {
            (_, Self::AllNamespaces) => vec![scope.api(client.clone())],
            (_, Self::Namespaces(namespaces)) => namespaces
                .iter()
                .map(|namespace| Api::namespaced(client.clone(), namespace))
                .collect(),
        };
        futures::stream::select_all(apis.into_iter().map(move |api| {
            watcher(api, config.clone())
                .default_backoff()
                .touched_objects()
                .boxed()
        }))
    }
}

/// Drives a controller's stream of reconcile `results` (built with
/// `graceful_shutdown_on(shutdown)`) to its end, logging each failure at debug level (the
/// reconciler has reported it in status and events already). kube-runtime holds every
/// reconcile until the first list has filled `store`, and a graceful shutdown before that
/// point waits for a list that never comes (the watch has stopped). So a shutdown that
/// finds `store` not ready yet stops at once: no reconcile can have started.
pub(crate) async fn drive<K, T, E>(
    controller: &'static str,
    results: impl Stream<Item = Result<T, E>>,
    store: Store<K>,
    shutdown: &CancellationToken,
) where
    K: Resource + Clone + 'static,
    K::DynamicType: Eq + Hash + Clone,
    E: std::fmt::Display,
{
    let running = results.for_each(|result| async move {
        if let Err(err) = result {
            tracing::debug!(error = %err, controller, "controller event");
        }
    });
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
