//! The RetentionPolicy controller: lifecycle rules as code, owned rule by rule (rules
//! other tools own are never touched), merged into the bucket's one lifecycle document,
//! drift-corrected every `resyncInterval`, plus an optional bucket posture check.

mod conflict;
mod merge;
mod ownership;
mod posture;
mod reconcile;
mod state;
mod status;
mod validate;

use std::sync::Arc;

use kube::runtime::reflector;
use kube::runtime::{Controller, Predicate, PredicateConfig, WatchStreamExt, predicates, watcher};
use securepipe_api::RetentionPolicy;
use tokio_util::sync::CancellationToken;

pub use ownership::{MARK as RULE_ID_MARK, Owner};

use super::WatchScope;
use crate::Context;

/// The controller label in metrics and logs.
pub const CONTROLLER: &str = "retentionpolicy";
/// The kind, in messages.
const KIND: &str = "RetentionPolicy";
/// Held while the policy's rules may be in a bucket.
pub const FINALIZER: &str = "securepipe.io/lifecycle-rules";

/// Runs the controller until `shutdown` is cancelled.
pub async fn run(ctx: Arc<Context>, scope: WatchScope, shutdown: CancellationToken) {
    let policies = scope.api::<RetentionPolicy>(ctx.client.clone());
    let (reader, writer) = reflector::store();
    // Spec and finalizer changes start a reconcile; the controller's own status writes do
    // not (resyncs come from the requeue after each reconcile).
    let changes = watcher(policies, watcher::Config::default().any_semantic())
        .default_backoff()
        .reflect(writer)
        .applied_objects()
        .predicate_filter(
            predicates::generation.combine(predicates::finalizers),
            PredicateConfig::default(),
        );
    let (recheck, rechecks) = futures::channel::mpsc::unbounded();
    let grant_changes = ctx.grants.changes();
    let state = Arc::new(state::State::new(ctx, reader.clone(), recheck));
    let results = Controller::for_stream(changes, reader.clone())
        .reconcile_on(rechecks)
        // A grant added, changed or removed may change any verdict.
        .reconcile_all_on(grant_changes)
        .graceful_shutdown_on(shutdown.clone().cancelled_owned())
        .run(reconcile::reconcile, reconcile::error_policy, state);
    super::drive("retentionpolicy", results, reader, &shutdown).await;
}
