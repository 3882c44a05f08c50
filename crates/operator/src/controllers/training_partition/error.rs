//! Errors a TrainingPartition reconcile returns to the controller's error policy. AWS
//! failures are not among them: a reconcile reports those in status and requeues itself.

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("TrainingPartition {namespace}/{name}: {action}: {source}")]
    Kube {
        namespace: String,
        name: String,
        action: &'static str,
        #[source]
        source: kube::Error,
    },
    #[error("TrainingPartition {name} has no namespace")]
    NoNamespace { name: String },
}

impl Error {
    /// The static reason used as a metric label.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Kube { source, .. } => match source {
                kube::Error::Api(status) if status.code == 409 => "Conflict",
                kube::Error::Api(status) if status.code == 403 => "Forbidden",
                kube::Error::Api(_) => "ApiError",
                _ => "KubeUnavailable",
            },
            Self::NoNamespace { .. } => "NoNamespace",
        }
    }
}
