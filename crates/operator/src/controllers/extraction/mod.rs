//! The extraction controller: for every TrainingPartition with `spec.extraction`, a
//! worker session of its own (Secret `<name>-worker-aws`), a scan of the raw prefix every
//! `interval`, at most one worker Job at a time, and the Job's results in
//! `status.extraction`, the `Extracting` condition, Events and metrics. It runs next to
//! the credentials controller (same leader, its own field manager) and owns the Jobs.

mod job;
mod reconcile;
pub(crate) mod results;
mod scan;
mod session;
mod settings;
mod status;

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::batch::v1::Job;
use kube::runtime::controller::Config;
use kube::runtime::{Controller, watcher};
use securepipe_api::TrainingPartition;
use tokio_util::sync::CancellationToken;

pub use job::{COMPONENT_WORKER, LABEL_COMPONENT};
pub use results::Totals;
pub use settings::{DEFAULT_IMAGE, WorkerSettings};
pub(crate) use status::{failure, needs_someone};

use super::WatchScope;
use crate::Context;

/// The controller label in metrics and logs.
pub const CONTROLLER: &str = "extraction";
const KIND: &str = "TrainingPartition";

/// Runs the controller until `shutdown` is cancelled.
pub async fn run(ctx: Arc<Context>, scope: WatchScope, shutdown: CancellationToken) {
    let partitions = scope.api::<TrainingPartition>(ctx.client.clone());
    // Only worker Jobs, in the namespaces the tenant role is bound in: a Job finishing
    // wakes its TrainingPartition.
    let owned = watcher::Config::default().labels(&format!("{LABEL_COMPONENT}={COMPONENT_WORKER}"));
    let jobs = ctx.secrets.watch::<Job>(&ctx.client, &scope, owned);
    let config = Config::default()
        .concurrency(16)
        .debounce(Duration::from_millis(500));
    let controller = Controller::new(partitions, watcher::Config::default().any_semantic())
        .owns_stream(jobs)
        .reconcile_all_on(ctx.grants.changes())
        .with_config(config)
        .graceful_shutdown_on(shutdown.clone().cancelled_owned());
    let store = controller.store();
    let results = controller.run(reconcile::reconcile, reconcile::error_policy, ctx);
    super::drive("extraction", results, store, &shutdown).await;
}
