//! AWS clients built from the standard provider chain and endpoint settings
//! (`AWS_ENDPOINT_URL*`, `AWS_REGION`, IRSA / Pod Identity credentials, ...), so the same
//! binary works against AWS and against LocalStack.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};

use crate::keep_alive::KeepAlive;

/// Settings that the standard AWS environment variables do not cover.
#[derive(Clone, Debug, Default)]
pub struct AwsSettings {
    /// Address S3 buckets by path (`endpoint/bucket/key`) instead of by virtual host;
    /// emulators on loopback need this.
    pub s3_force_path_style: bool,
    /// Roles the operator assumes to write revocations on roles of other AWS accounts
    /// than its own, one per account (the account is the one in the ARN).
    pub revoker_role_arns: Vec<String>,
}

/// State every clone of an [`Aws`] shares.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    /// The operator's own account, asked of STS once.
    pub(crate) operator_account: tokio::sync::OnceCell<String>,
    /// One lock per role ARN: a role's revocation policy is read, changed and written
    /// back, and two deletions at once must not lose each other's entry.
    role_locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl Shared {
    pub(crate) fn role_lock(&self, role_arn: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self
            .role_locks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        locks.entry(role_arn.to_owned()).or_default().clone()
    }
}

/// The operator's AWS identity and settings, from which per-region clients are made.
#[derive(Clone, Debug)]
pub struct Aws {
    base: SdkConfig,
    settings: AwsSettings,
    shared: Arc<Shared>,
}

impl Aws {
    /// Loads the standard AWS configuration from the environment.
    pub async fn from_env(settings: AwsSettings) -> Self {
        // Bounded timeouts: an unreachable endpoint must surface as a condition within
        // seconds, not hang a reconcile.
        let timeouts = TimeoutConfig::builder()
            .connect_timeout(Duration::from_secs(3))
            .operation_attempt_timeout(Duration::from_secs(10))
            .operation_timeout(Duration::from_secs(30))
            .build();
        let base = aws_config::defaults(BehaviorVersion::latest())
            .timeout_config(timeouts)
            .load()
            .await;
        Self {
            base,
            settings,
            shared: Arc::default(),
        }
    }

    /// Fixed credentials against one endpoint (a local emulator, or a test server on
    /// loopback), reading nothing from the environment or the instance metadata service.
    pub fn with_endpoint(endpoint_url: &str, region: &str, settings: AwsSettings) -> Self {
        let credentials = aws_sdk_sts::config::Credentials::new(
            "securepipe-local",
            "securepipe-local",
            None,
            None,
            "securepipe-static",
        );
        let base = SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(region.to_owned()))
            .endpoint_url(endpoint_url)
            .credentials_provider(aws_sdk_sts::config::SharedCredentialsProvider::new(
                credentials,
            ))
            .build();
        Self {
            base,
            settings,
            shared: Arc::default(),
        }
    }

    /// Wraps an already loaded configuration.
    pub fn new(base: SdkConfig, settings: AwsSettings) -> Self {
        Self {
            base,
            settings,
            shared: Arc::default(),
        }
    }

    /// The same endpoints and settings with a session's credentials instead of the
    /// operator's own (the operator acting as a worker session, say). The caller keeps the
    /// secret parts for as short as it can; the SDK holds its own copy.
    pub fn with_session(
        &self,
        access_key_id: &str,
        secret_access_key: &str,
        session_token: &str,
    ) -> Self {
        let credentials = aws_sdk_sts::config::Credentials::new(
            access_key_id,
            secret_access_key,
            Some(session_token.to_owned()),
            None,
            "securepipe-session",
        );
        let base = self
            .base
            .to_builder()
            .credentials_provider(aws_sdk_sts::config::SharedCredentialsProvider::new(
                credentials,
            ))
            .build();
        Self {
            base,
            settings: self.settings.clone(),
            // Another identity: nothing learned about the operator's own carries over.
            shared: Arc::default(),
        }
    }

    /// The configuration for `region`, sharing credentials, endpoints and HTTP client.
    pub(crate) fn sdk_config(&self, region: &str) -> SdkConfig {
        self.base
            .to_builder()
            .region(Region::new(region.to_owned()))
            .build()
    }

    pub(crate) fn sts(&self, region: &str) -> aws_sdk_sts::Client {
        aws_sdk_sts::Client::new(&self.sdk_config(region))
    }

    /// STS in the configured region (us-east-1 when none is), for account questions.
    pub(crate) fn sts_home(&self) -> aws_sdk_sts::Client {
        match self.base.region() {
            Some(_) => aws_sdk_sts::Client::new(&self.base),
            None => self.sts("us-east-1"),
        }
    }

    pub(crate) fn s3(&self, region: &str) -> aws_sdk_s3::Client {
        let config = aws_sdk_s3::config::Builder::from(&self.sdk_config(region))
            .force_path_style(self.settings.s3_force_path_style)
            .interceptor(KeepAlive)
            .build();
        aws_sdk_s3::Client::from_conf(config)
    }

    /// KMS in `region`: a key's calls go to the key's own region.
    pub fn kms(&self, region: &str) -> aws_sdk_kms::Client {
        let config = aws_sdk_kms::config::Builder::from(&self.sdk_config(region))
            .interceptor(KeepAlive)
            .build();
        aws_sdk_kms::Client::from_conf(config)
    }

    /// KMS in the configured region (us-east-1 when none is). A keyring sends each call to
    /// its key's own region anyway.
    pub fn kms_home(&self) -> aws_sdk_kms::Client {
        self.kms(self.base.region().map_or("us-east-1", Region::as_ref))
    }

    pub(crate) fn shared(&self) -> &Shared {
        &self.shared
    }

    pub(crate) fn settings(&self) -> &AwsSettings {
        &self.settings
    }

    pub(crate) fn base(&self) -> &SdkConfig {
        &self.base
    }

    /// IAM is global; its calls go to the configured (or default) region's endpoint.
    pub(crate) fn iam(&self) -> aws_sdk_iam::Client {
        aws_sdk_iam::Client::new(&self.base)
    }
}
