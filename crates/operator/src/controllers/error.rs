//! The one error type both controllers return to their error policy, the one mapping from
//! an error to its static reason (a metric label and log field, never the error's text),
//! and the one place a failed reconcile is logged and counted.

use kube::runtime::finalizer;
use kube::{Resource, ResourceExt};

use crate::metrics::Metrics;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{object}: {action}: {source}")]
    Kube {
        // Boxed: keeps the error small on the reconcile's return path.
        object: Box<ObjectKey>,
        action: &'static str,
        #[source]
        source: kube::Error,
    },
    #[error("{kind} {name} has no namespace")]
    NoNamespace { kind: &'static str, name: String },
    /// Removing external state before the object may go (revocation, lifecycle rules)
    /// failed; the finalizer stays until it succeeds.
    #[error("{object}: cleanup failed ({reason}): {message}")]
    Cleanup {
        object: Box<ObjectKey>,
        reason: &'static str,
        message: String,
    },
    // Boxed: `finalizer::Error` wraps this type.
    #[error(transparent)]
    Finalizer(Box<finalizer::Error<Error>>),
}

impl Error {
    /// The static reason used as a metric label.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Kube { source, .. } => kube_reason(source),
            Self::NoNamespace { .. } => "NoNamespace",
            Self::Cleanup { reason, .. } => reason,
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

/// The reason of a failed Kubernetes API call.
pub fn kube_reason(source: &kube::Error) -> &'static str {
    match source {
        kube::Error::Api(status) if status.code == 409 => "Conflict",
        kube::Error::Api(status) if status.code == 403 => "Forbidden",
        kube::Error::Api(status) if status.code == 404 => "NotFound",
        kube::Error::Api(_) => "ApiError",
        _ => "KubeUnavailable",
    }
}

/// Whether a Kubernetes API call failed because the object is not there.
pub fn is_not_found(err: &kube::Error) -> bool {
    matches!(err, kube::Error::Api(status) if status.code == 404)
}

/// The object a reconcile works on, for error messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectKey {
    pub kind: &'static str,
    pub namespace: String,
    pub name: String,
}

impl ObjectKey {
    /// The key of a namespaced object; an object without a namespace is an error.
    pub fn of<K>(object: &K, kind: &'static str) -> Result<Self, Error>
    where
        K: Resource,
    {
        let name = object.name_any();
        let namespace = object.namespace().ok_or_else(|| Error::NoNamespace {
            kind,
            name: name.clone(),
        })?;
        Ok(Self {
            kind,
            namespace,
            name,
        })
    }

    /// Wraps a failed Kubernetes call made while doing `action`.
    pub fn kube(&self, action: &'static str) -> impl FnOnce(kube::Error) -> Error + '_ {
        move |source| Error::Kube {
            object: Box::new(self.clone()),
            action,
            source,
        }
    }

    /// A failed cleanup, with its static reason.
    pub fn cleanup(&self, reason: &'static str, message: String) -> Error {
        Error::Cleanup {
            object: Box::new(self.clone()),
            reason,
            message,
        }
    }

    /// `namespace/name`.
    pub fn path(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }
}

impl std::fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}/{}", self.kind, self.namespace, self.name)
    }
}

/// Logs and counts a reconcile that returned an error (the error policy of every
/// controller starts here).
pub fn report(metrics: &Metrics, controller: &'static str, err: &Error) {
    metrics.record_error(controller, err.reason());
    tracing::warn!(controller, reason = err.reason(), error = %err, "reconcile failed");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api_error(code: u16) -> kube::Error {
        kube::Error::Api(Box::new(kube::core::Status {
            code,
            ..kube::core::Status::default()
        }))
    }

    #[test]
    fn kube_failures_map_to_few_static_reasons() {
        assert_eq!(kube_reason(&api_error(409)), "Conflict");
        assert_eq!(kube_reason(&api_error(403)), "Forbidden");
        assert_eq!(kube_reason(&api_error(404)), "NotFound");
        assert_eq!(kube_reason(&api_error(500)), "ApiError");
        assert!(is_not_found(&api_error(404)));
        assert!(!is_not_found(&api_error(409)));
    }

    #[test]
    fn wrapped_errors_keep_their_reason() {
        let object = ObjectKey {
            kind: "TrainingPartition",
            namespace: "ml".into(),
            name: "speech".into(),
        };
        let err = object.kube("write status")(api_error(403));
        assert_eq!(err.reason(), "Forbidden");
        assert_eq!(
            err.to_string().split(':').next(),
            Some("TrainingPartition ml/speech")
        );
        let cleanup = Error::Finalizer(Box::new(finalizer::Error::CleanupFailed(
            object.cleanup("AccessDenied", "no".into()),
        )));
        assert_eq!(cleanup.reason(), "AccessDenied");
        let remove = Error::Finalizer(Box::new(finalizer::Error::RemoveFinalizer(api_error(409))));
        assert_eq!(remove.reason(), "Conflict");
    }
}
