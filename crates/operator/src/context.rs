//! What every reconcile gets: the Kubernetes client, the AWS clients, metrics and the
//! event reporter.

use std::sync::Arc;

use k8s_openapi::api::core::v1::ObjectReference;
use kube::Client;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use securepipe_cloud::Aws;

use crate::controllers::TenantScope;
use crate::controllers::extraction::WorkerSettings;
use crate::controllers::grants::Grants;
use crate::metrics::Metrics;

/// The name under which the operator records events and leases.
pub const CONTROLLER_NAME: &str = "securepipe-operator";

/// Events' `action`: what the controller was doing when it recorded the event.
pub const ACTION_RECONCILE: &str = "Reconcile";
pub const ACTION_CLEANUP: &str = "Cleanup";

/// Event notes are for people; the API caps them at 1 kB.
const MAX_NOTE_CHARS: usize = 1000;

pub struct Context {
    pub client: Client,
    pub aws: Aws,
    pub metrics: Arc<Metrics>,
    pub recorder: Recorder,
    /// The TenantGrants every reconcile checks before any AWS call.
    pub grants: Grants,
    /// Where the operator may write credentials Secrets (its RBAC).
    pub secrets: TenantScope,
    /// How worker Jobs run (image, resources, limits).
    pub worker: WorkerSettings,
}

impl Context {
    pub fn new(client: Client, aws: Aws, metrics: Arc<Metrics>, grants: Grants) -> Self {
        let reporter = Reporter {
            controller: CONTROLLER_NAME.to_owned(),
            instance: std::env::var("POD_NAME").ok(),
        };
        let recorder = Recorder::new(client.clone(), reporter);
        Self {
            client,
            aws,
            metrics,
            recorder,
            grants,
            secrets: TenantScope::AllNamespaces,
            worker: WorkerSettings::default(),
        }
    }

    /// Narrows where credentials Secrets are written (and watched) to `secrets`.
    #[must_use]
    pub fn with_tenant_scope(mut self, secrets: TenantScope) -> Self {
        self.secrets = secrets;
        self
    }

    /// The same context running worker Jobs with `worker`.
    pub fn with_worker(mut self, worker: WorkerSettings) -> Self {
        self.worker = worker;
        self
    }

    /// Records a Kubernetes Event on `reference` (the one place events are published).
    /// Failing to record one is logged, never fatal: events are for people, status is the
    /// interface.
    pub async fn publish(
        &self,
        reference: &ObjectReference,
        type_: EventType,
        reason: &str,
        note: String,
        action: &str,
    ) {
        let event = Event {
            type_,
            reason: reason.to_owned(),
            note: Some(note.chars().take(MAX_NOTE_CHARS).collect()),
            action: action.to_owned(),
            secondary: None,
        };
        if let Err(err) = self.recorder.publish(&event, reference).await {
            tracing::warn!(error = %err, reason, "could not record event");
        }
    }
}
