//! Errors a RetentionPolicy reconcile returns to the controller's error policy. AWS
//! failures while applying are not among them: a reconcile reports those in status and
//! requeues itself. Cleanup failures are (the finalizer stays until cleanup succeeds).

use kube::runtime::finalizer;
use securepipe_cloud::lifecycle::LifecycleError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("RetentionPolicy {namespace}/{name}: {action}: {source}")]
    Kube {
        namespace: String,
        name: String,
        action: &'static str,
        #[source]
        source: kube::Error,
    },
    #[error("RetentionPolicy {name} has no namespace")]
    NoNamespace { name: String },
    #[error("RetentionPolicy {namespace}/{name}: removing its rules: {source}")]
    Cleanup {
        namespace: String,
        name: String,
        #[source]
        source: LifecycleError,
    },
    #[error(
        "RetentionPolicy {namespace}/{name}: bucket {bucket} still holds its rules after they were removed"
    )]
    CleanupNotConfirmed {
        namespace: String,
        name: String,
        bucket: String,
    },
    // Boxed: `finalizer::Error` wraps this type.
    #[error(transparent)]
    Finalizer(Box<finalizer::Error<Error>>),
}

fn kube_reason(source: &kube::Error) -> &'static str {
    match source {
        kube::Error::Api(status) if status.code == 409 => "Conflict",
        kube::Error::Api(status) if status.code == 403 => "Forbidden",
        kube::Error::Api(_) => "ApiError",
        _ => "KubeUnavailable",
    }
}

impl Error {
    /// The static reason used as a metric label.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Kube { source, .. } => kube_reason(source),
            Self::NoNamespace { .. } => "NoNamespace",
            Self::Cleanup { source, .. } => source.reason().as_str(),
            Self::CleanupNotConfirmed { .. } => "NotConfirmed",
            Self::Finalizer(err) => match err.as_ref() {
                finalizer::Error::ApplyFailed(inner) | finalizer::Error::CleanupFailed(inner) => {
                    inner.reason()
                }
                finalizer::Error::AddFinalizer(source)
                | finalizer::Error::RemoveFinalizer(source) => kube_reason(source),
                _ => "Finalizer",
            },
        }
    }
}
