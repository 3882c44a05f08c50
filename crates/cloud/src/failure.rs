//! Sorting AWS SDK errors into a few static reasons. Controllers put the reason in a
//! condition and a metric label (never the error text, which names objects), and decide
//! from it whether to retry soon.

use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

/// Why an AWS call failed, as a condition reason (CamelCase, fixed set).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FailureReason {
    /// The operator's identity may not do this (IAM policy, trust policy, SCP).
    AccessDenied,
    /// AWS asked us to slow down.
    Throttled,
    /// No answer: connection refused, DNS, timeout.
    EndpointUnavailable,
    /// A role-chained session asked for more than AWS's one-hour cap.
    ChainedSessionTooLong,
    /// The session policy and tags exceed what STS accepts.
    PolicyTooLarge,
    /// The named bucket, role or key does not exist.
    NotFound,
    /// AWS rejected the request as malformed.
    InvalidRequest,
    /// Anything else; the message says what.
    Unexpected,
}

impl FailureReason {
    pub const ALL: [Self; 8] = [
        Self::AccessDenied,
        Self::Throttled,
        Self::EndpointUnavailable,
        Self::ChainedSessionTooLong,
        Self::PolicyTooLarge,
        Self::NotFound,
        Self::InvalidRequest,
        Self::Unexpected,
    ];

    /// The reason a condition reports as `reason`, if it is one of these.
    pub fn from_condition_reason(reason: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == reason)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::AccessDenied => "AccessDenied",
            Self::Throttled => "Throttled",
            Self::EndpointUnavailable => "EndpointUnavailable",
            Self::ChainedSessionTooLong => "ChainedSessionTooLong",
            Self::PolicyTooLarge => "PolicyTooLarge",
            Self::NotFound => "NotFound",
            Self::InvalidRequest => "InvalidRequest",
            Self::Unexpected => "Unexpected",
        }
    }

    /// Whether retrying soon can help without anyone changing anything.
    pub fn is_transient(self) -> bool {
        matches!(
            self,
            Self::Throttled | Self::EndpointUnavailable | Self::Unexpected
        )
    }
}

impl std::fmt::Display for FailureReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A classified AWS failure: the reason, and the service's own words for the message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    pub reason: FailureReason,
    pub message: String,
}

impl Failure {
    /// Classifies any AWS SDK error.
    pub fn from_sdk<E, R>(err: &SdkError<E, R>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug,
    {
        let reason = match err {
            SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) => {
                FailureReason::EndpointUnavailable
            }
            SdkError::ServiceError(service) => {
                reason_for_code(service.err().code(), service.err().message())
            }
            SdkError::ConstructionFailure(_) => FailureReason::InvalidRequest,
            _ => FailureReason::Unexpected,
        };
        let message = match err.message() {
            Some(message) => format!("{}: {message}", err.code().unwrap_or("error")),
            None => DisplayErrorContext(err).to_string(),
        };
        Self { reason, message }
    }
}

/// Maps an AWS error code (and, where AWS reuses a code, its message) to a reason.
pub fn reason_for_code(code: Option<&str>, message: Option<&str>) -> FailureReason {
    let message = message.unwrap_or_default();
    match code.unwrap_or_default() {
        "AccessDenied"
        | "AccessDeniedException"
        | "UnauthorizedOperation"
        | "AllAccessDisabled"
        | "InvalidClientTokenId"
        | "ExpiredToken"
        | "SignatureDoesNotMatch" => FailureReason::AccessDenied,
        "Throttling"
        | "ThrottlingException"
        | "SlowDown"
        | "RequestLimitExceeded"
        | "TooManyRequestsException" => FailureReason::Throttled,
        "PackedPolicyTooLarge" => FailureReason::PolicyTooLarge,
        "ValidationError" if message.contains("role chaining") => {
            FailureReason::ChainedSessionTooLong
        }
        "NoSuchEntity" | "NoSuchBucket" | "NotFoundException" | "NoSuchKey" => {
            FailureReason::NotFound
        }
        "ValidationError"
        | "MalformedPolicyDocument"
        | "InvalidParameterValue"
        | "InvalidRequest"
        | "MalformedXML"
        | "InvalidArgument" => FailureReason::InvalidRequest,
        "ServiceUnavailable" | "InternalError" | "InternalFailure" => {
            FailureReason::EndpointUnavailable
        }
        _ => FailureReason::Unexpected,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_chaining_is_told_apart_from_other_validation_errors() {
        let chained = "The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by role chaining.";
        assert_eq!(
            reason_for_code(Some("ValidationError"), Some(chained)),
            FailureReason::ChainedSessionTooLong
        );
        assert_eq!(
            reason_for_code(Some("ValidationError"), Some("1 validation error detected")),
            FailureReason::InvalidRequest
        );
    }

    #[test]
    fn codes_map_to_reasons() {
        for (code, reason) in [
            ("AccessDenied", FailureReason::AccessDenied),
            ("ExpiredToken", FailureReason::AccessDenied),
            ("Throttling", FailureReason::Throttled),
            ("SlowDown", FailureReason::Throttled),
            ("PackedPolicyTooLarge", FailureReason::PolicyTooLarge),
            ("NoSuchEntity", FailureReason::NotFound),
            ("NoSuchBucket", FailureReason::NotFound),
            ("MalformedPolicyDocument", FailureReason::InvalidRequest),
            ("InternalError", FailureReason::EndpointUnavailable),
            ("SomethingNew", FailureReason::Unexpected),
        ] {
            assert_eq!(reason_for_code(Some(code), None), reason, "{code}");
        }
        assert_eq!(reason_for_code(None, None), FailureReason::Unexpected);
    }

    #[test]
    fn only_transient_reasons_are_retried_soon() {
        assert!(FailureReason::Throttled.is_transient());
        assert!(FailureReason::EndpointUnavailable.is_transient());
        assert!(!FailureReason::AccessDenied.is_transient());
        assert!(!FailureReason::PolicyTooLarge.is_transient());
        assert!(!FailureReason::ChainedSessionTooLong.is_transient());
    }
}
