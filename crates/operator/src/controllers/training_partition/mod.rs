//! The TrainingPartition controller: prefix-scoped STS credentials in an owned Secret,
//! renewed before they expire, revocable on delete.

pub(crate) mod plan;
mod reconcile;
pub(crate) mod renewal;
pub(crate) mod revoke;
pub(crate) mod secret;
mod status;

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::runtime::controller::Config;
use kube::runtime::{Controller, watcher};
use securepipe_api::TrainingPartition;
use tokio_util::sync::CancellationToken;

pub use revoke::FINALIZER;
pub use secret::{
    ANNOTATION_EXPIRES_AT, ANNOTATION_SESSION_NAME, LABEL_MANAGED_BY, LABEL_PARTITION, MOUNT_PATH,
};

use super::WatchScope;
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
        // Only the Secrets securepipe wrote: the watch, and memory, stay small on busy
        // clusters.
        .owns_stream(ctx.secrets.watch::<Secret>(
            &ctx.client,
            &scope,
            watcher::Config::default().labels(&secret::managed_selector()),
        ))
        // A grant added, changed or removed may change any verdict.
        .reconcile_all_on(ctx.grants.changes())
        .with_config(config)
        .graceful_shutdown_on(shutdown.clone().cancelled_owned());
    let store = controller.store();
    let results = controller.run(reconcile::reconcile, reconcile::error_policy, ctx);
    super::drive("trainingpartition", results, store, &shutdown).await;
}
