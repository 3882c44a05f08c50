//! How the operator runs worker Jobs: the image, resources and limits the chart sets
//! (`worker.*` values → `securepipe operator --worker-*` flags), the same for every
//! TrainingPartition.

use std::collections::BTreeMap;
use std::time::Duration;

/// The image the operator runs when neither `spec.extraction.image` nor
/// `--worker-image` names one: the operator's own release.
pub const DEFAULT_IMAGE: &str =
    concat!("ghcr.io/securepipe/securepipe:", env!("CARGO_PKG_VERSION"));

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkerSettings {
    /// The worker image (the chart passes the operator's own image).
    pub image: String,
    /// `IfNotPresent`, `Always` or `Never`.
    pub image_pull_policy: String,
    /// Container resource requests and limits (`cpu`, `memory`, ...), as quantities.
    pub requests: BTreeMap<String, String>,
    pub limits: BTreeMap<String, String>,
    /// Pod failures a Job tolerates before it fails.
    pub backoff_limit: i32,
    /// The longest a Job may run.
    pub active_deadline: Duration,
    /// How long a finished Job (and its Pods) is kept for people to inspect.
    pub ttl_after_finished: Duration,
    /// Samples one Pod processes at once (`--parallelism` of the worker).
    pub samples_in_flight: u16,
    /// `AWS_ENDPOINT_URL` for worker Pods (an emulator or a VPC endpoint); `None` on AWS.
    pub aws_endpoint_url: Option<String>,
    /// Address S3 by path in worker Pods (emulators).
    pub s3_force_path_style: bool,
}

impl Default for WorkerSettings {
    fn default() -> Self {
        Self {
            image: DEFAULT_IMAGE.to_owned(),
            image_pull_policy: "IfNotPresent".to_owned(),
            requests: [("cpu", "250m"), ("memory", "256Mi")]
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
            limits: [("memory", "1Gi")]
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
            backoff_limit: 2,
            active_deadline: Duration::from_secs(3600),
            ttl_after_finished: Duration::from_secs(3600),
            samples_in_flight: 4,
            aws_endpoint_url: None,
            s3_force_path_style: false,
        }
    }
}
