//! What every reconcile gets: the Kubernetes client, the AWS clients, metrics and the
//! event reporter.

use std::sync::Arc;

use kube::Client;
use kube::runtime::events::{Recorder, Reporter};
use securepipe_cloud::Aws;

use crate::metrics::Metrics;

/// The name under which the operator records events and leases.
pub const CONTROLLER_NAME: &str = "securepipe-operator";

pub struct Context {
    pub client: Client,
    pub aws: Aws,
    pub metrics: Arc<Metrics>,
    pub recorder: Recorder,
}

impl Context {
    pub fn new(client: Client, aws: Aws, metrics: Arc<Metrics>) -> Self {
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
        }
    }
}
