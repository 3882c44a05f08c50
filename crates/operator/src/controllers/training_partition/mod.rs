//! The TrainingPartition controller: prefix-scoped STS credentials in an owned Secret,
//! renewed before they expire, revocable on delete.

mod plan;
mod reconcile;
mod renewal;
mod revoke;
mod secret;
mod status;

use std::sync::Arc;
use std::time::Duration;

use futures::{Stream, StreamExt};
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::runtime::controller::Config;
use kube::runtime::{Controller, WatchStreamExt, watcher};
use securepipe_api::TrainingPartition;
use tokio_util::sync::CancellationToken;

pub use revoke::FINALIZER;
pub use secret::{
    ANNOTATION_EXPIRES_AT, ANNOTATION_SESSION_NAME, LABEL_MANAGED_BY, LABEL_PARTITION, MOUNT_PATH,
};

use super::{SecretScope, WatchScope};
use crate::Context;

/// The controller label in metrics and logs.
pub const CONTROLLER: &str = "trainingpartition";
/// The kind, in messages.
const KIND: &str = "TrainingPartition";

/// Runs the controller until `shutdown` is cancelled.
pub async fn run(ctx: Arc<Context>, scope: WatchScope, shutdown: CancellationToken) {
    let partitions = scope.api::<TrainingPartition>(ctx.client.clone());
    // Bounded concurrency keeps memory flat when a thousand partitions arrive at once;
    // the debounce folds the events of our own Secret and status writes into one
    // follow-up reconcile.
    let config = Config::default()
        .concurrency(64)
        .debounce(Duration::from_millis(250));
    let controller = Controller::new(partitions, watcher::Config::default().any_semantic())
        .owns_stream(owned_secrets(&ctx, &scope))
        // A grant added, changed or removed may change any verdict.
        .reconcile_all_on(ctx.grants.changes())
        .with_config(config)
        .graceful_shutdown_on(shutdown.clone().cancelled_owned());
    let store = controller.store();
    let running = controller
        .run(reconcile::reconcile, reconcile::error_policy, ctx)
        .for_each(|result| async move {
            if let Err(err) = result {
                tracing::debug!(error = %err, "trainingpartition controller event");
            }
        });
    super::drive(running, store, &shutdown).await;
}

/// Changes to the Secrets securepipe wrote (only those: the watch, and memory, stay small
/// on busy clusters), watched where the operator may read Secrets. With Secret access in
/// the tenant namespaces only, a cluster-wide watch would be forbidden, so each tenant
/// namespace gets its own watch.
fn owned_secrets(
    ctx: &Context,
    scope: &WatchScope,
) -> impl Stream<Item = Result<Secret, watcher::Error>> + Send + 'static {
    let owned = watcher::Config::default().labels(&secret::managed_selector());
    let apis: Vec<Api<Secret>> = match (scope, &ctx.secrets) {
        (WatchScope::AllNamespaces, SecretScope::AllNamespaces) => {
            vec![Api::all(ctx.client.clone())]
        }
        (WatchScope::Namespace(_), SecretScope::AllNamespaces) => {
            vec![scope.api(ctx.client.clone())]
        }
        (_, SecretScope::Namespaces(namespaces)) => namespaces
            .iter()
            .map(|namespace| Api::namespaced(ctx.client.clone(), namespace))
            .collect(),
    };
    futures::stream::select_all(apis.into_iter().map(move |api| {
        watcher(api, owned.clone())
            .default_backoff()
            .touched_objects()
            .boxed()
    }))
}
