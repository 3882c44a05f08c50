//! Event reasons, one constant each, so a test or a dashboard can rely on the name.
//! Warning events for failures use the condition reason of the failure instead.

// TrainingPartition
pub const CREDENTIALS_ISSUED: &str = "CredentialsIssued";
pub const CREDENTIALS_REISSUED: &str = "CredentialsReissued";
pub const CREDENTIALS_RENEWED: &str = "CredentialsRenewed";
pub const SESSIONS_REVOKED: &str = "SessionsRevoked";
pub const REVOCATION_FAILED: &str = "RevocationFailed";

// TrainingPartition extraction
pub const WORKER_CREDENTIALS_ISSUED: &str = "WorkerCredentialsIssued";
pub const EXTRACTION_STARTED: &str = "ExtractionStarted";
pub const SAMPLES_SHREDDED: &str = "SamplesShredded";
pub const SAMPLES_QUARANTINED: &str = "SamplesQuarantined";

// RetentionPolicy
pub const RULES_APPLIED: &str = "RulesApplied";
pub const DRIFT_CORRECTED: &str = "DriftCorrected";
pub const POSTURE_CORRECTED: &str = "PostureCorrected";
pub const RULES_REMOVED: &str = "RulesRemoved";
