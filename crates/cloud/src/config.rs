//! AWS clients built from the standard provider chain and endpoint settings
//! (`AWS_ENDPOINT_URL*`, `AWS_REGION`, IRSA / Pod Identity credentials, ...), so the same
//! binary works against AWS and against LocalStack.

use std::time::Duration;

use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};

/// Settings that the standard AWS environment variables do not cover.
#[derive(Clone, Debug, Default)]
pub struct AwsSettings {
    /// Address S3 buckets by path (`endpoint/bucket/key`) instead of by virtual host;
    /// emulators on loopback need this.
    pub s3_force_path_style: bool,
}

/// The operator's AWS identity and settings, from which per-region clients are made.
#[derive(Clone, Debug)]
pub struct Aws {
    base: SdkConfig,
    settings: AwsSettings,
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
        Self { base, settings }
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
        Self { base, settings }
    }

    /// Wraps an already loaded configuration.
    pub fn new(base: SdkConfig, settings: AwsSettings) -> Self {
        Self { base, settings }
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

    pub(crate) fn s3(&self, region: &str) -> aws_sdk_s3::Client {
        let config = aws_sdk_s3::config::Builder::from(&self.sdk_config(region))
            .force_path_style(self.settings.s3_force_path_style)
            .build();
        aws_sdk_s3::Client::from_conf(config)
    }

    /// IAM is global; its calls go to the configured (or default) region's endpoint.
    pub(crate) fn iam(&self) -> aws_sdk_iam::Client {
        aws_sdk_iam::Client::new(&self.base)
    }
}
