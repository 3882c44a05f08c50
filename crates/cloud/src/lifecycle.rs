//! A bucket's lifecycle configuration: the S3 client for a bucket (optionally through an
//! assumed role), reading the configuration (none is not an error), writing it (deleting it
//! when no rule is left), and the plain model in which securepipe compares rules.
//!
//! Rules are kept as S3 returned them ([`StoredRule`]), so a rule securepipe does not own
//! is written back exactly as it was read, whatever fields it uses. Only rules that fit
//! [`RuleSpec`] (a prefix filter, transitions by days, expiration, noncurrent version
//! expiration, aborting incomplete multipart uploads) can be compared semantically.

use aws_sdk_s3::types::{
    AbortIncompleteMultipartUpload, BucketLifecycleConfiguration, ExpirationStatus,
    LifecycleExpiration, LifecycleRule, LifecycleRuleFilter, NoncurrentVersionExpiration,
    Transition, TransitionStorageClass,
};
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use crate::Aws;
use crate::failure::{Failure, FailureReason};

/// An S3 client for a bucket's region and identity. Opaque outside this crate: callers
/// pass it to this crate's bucket functions and never see the SDK.
#[derive(Clone, Debug)]
pub struct S3Client(pub(crate) aws_sdk_s3::Client);

/// S3's limit on the number of rules in one lifecycle configuration.
pub const MAX_RULES: usize = 1000;
/// S3's limit on a rule ID, in characters.
pub const MAX_RULE_ID_CHARS: usize = 255;

/// The S3 client for `bucket`'s region, as the operator or, when `role_arn` is given, as
/// that role (assumed with the operator's identity, refreshed before it expires).
pub async fn client(aws: &Aws, region: &str, role_arn: Option<&str>) -> S3Client {
    let direct = aws.s3(region);
    let Some(role_arn) = role_arn else {
        return S3Client(direct);
    };
    let provider = aws_config::sts::AssumeRoleProvider::builder(role_arn)
        .session_name("securepipe-retention")
        .configure(&aws.sdk_config(region))
        .build()
        .await;
    let config = direct
        .config()
        .to_builder()
        .credentials_provider(aws_sdk_s3::config::SharedCredentialsProvider::new(provider))
        .build();
    S3Client(aws_sdk_s3::Client::from_conf(config))
}

/// A storage-class transition, `days` after object creation.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct TransitionSpec {
    pub days: i32,
    /// S3's name of the class: `STANDARD_IA`, `GLACIER`, ...
    pub storage_class: String,
}

/// An enabled lifecycle rule in the shape securepipe writes: one prefix filter and
/// day-based actions. `transitions` are kept sorted by days, so equal rules compare equal
/// whatever order S3 returned them in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleSpec {
    pub id: String,
    pub prefix: String,
    pub transitions: Vec<TransitionSpec>,
    pub expiration_days: Option<i32>,
    pub noncurrent_version_expiration_days: Option<i32>,
    pub abort_incomplete_multipart_upload_days: Option<i32>,
}

impl RuleSpec {
    /// Sorts the transitions by days (the normal form).
    pub fn normalized(mut self) -> Self {
        self.transitions.sort();
        self
    }
}

/// One rule of a bucket's lifecycle configuration, exactly as S3 returned it (or as
/// securepipe built it).
#[derive(Clone, Debug, PartialEq)]
pub struct StoredRule(LifecycleRule);

impl StoredRule {
    /// Wraps a rule in S3's own type.
    pub fn from_sdk(rule: LifecycleRule) -> Self {
        Self(rule)
    }

    pub fn as_sdk(&self) -> &LifecycleRule {
        &self.0
    }

    /// The rule's ID; S3 generates one when a writer gives none, but old rules may lack it.
    pub fn id(&self) -> Option<&str> {
        self.0.id.as_deref()
    }

    /// The rule in securepipe's model, or `None` when it uses anything the model cannot
    /// express (disabled, tag or size filters, dates, noncurrent transitions, delete-marker
    /// expiry, ...): such a rule never equals a `RuleSpec`.
    pub fn spec(&self) -> Option<RuleSpec> {
        let rule = &self.0;
        if rule.status != ExpirationStatus::Enabled {
            return None;
        }
        if rule
            .noncurrent_version_transitions
            .as_ref()
            .is_some_and(|t| !t.is_empty())
        {
            return None;
        }
        let prefix = rule_prefix(rule)?;
        let mut transitions = Vec::new();
        for transition in rule.transitions.as_deref().unwrap_or_default() {
            if transition.date.is_some() {
                return None;
            }
            transitions.push(TransitionSpec {
                days: transition.days?,
                storage_class: transition.storage_class.as_ref()?.as_str().to_owned(),
            });
        }
        let expiration_days = match &rule.expiration {
            None => None,
            Some(expiration) => {
                if expiration.date.is_some()
                    || expiration.expired_object_delete_marker == Some(true)
                {
                    return None;
                }
                // An empty <Expiration/> (or one with only a false delete-marker flag)
                // expires nothing.
                expiration.days
            }
        };
        let noncurrent_version_expiration_days = match &rule.noncurrent_version_expiration {
            None => None,
            Some(noncurrent) => {
                if noncurrent.newer_noncurrent_versions.is_some() {
                    return None;
                }
                Some(noncurrent.noncurrent_days?)
            }
        };
        let abort_incomplete_multipart_upload_days = match &rule.abort_incomplete_multipart_upload {
            None => None,
            Some(abort) => Some(abort.days_after_initiation?),
        };
        Some(
            RuleSpec {
                id: rule.id.clone()?,
                prefix,
                transitions,
                expiration_days,
                noncurrent_version_expiration_days,
                abort_incomplete_multipart_upload_days,
            }
            .normalized(),
        )
    }

    /// The S3 rule for `spec`: enabled, filtered by prefix.
    pub fn from_spec(spec: &RuleSpec) -> Self {
        let mut rule = LifecycleRule::builder()
            .id(&spec.id)
            .status(ExpirationStatus::Enabled)
            .filter(LifecycleRuleFilter::builder().prefix(&spec.prefix).build());
        for transition in &spec.transitions {
            rule = rule.transitions(
                Transition::builder()
                    .days(transition.days)
                    .storage_class(TransitionStorageClass::from(
                        transition.storage_class.as_str(),
                    ))
                    .build(),
            );
        }
        if let Some(days) = spec.expiration_days {
            rule = rule.expiration(LifecycleExpiration::builder().days(days).build());
        }
        if let Some(days) = spec.noncurrent_version_expiration_days {
            rule = rule.noncurrent_version_expiration(
                NoncurrentVersionExpiration::builder()
                    .noncurrent_days(days)
                    .build(),
            );
        }
        if let Some(days) = spec.abort_incomplete_multipart_upload_days {
            rule = rule.abort_incomplete_multipart_upload(
                AbortIncompleteMultipartUpload::builder()
                    .days_after_initiation(days)
                    .build(),
            );
        }
        // The builder fails only without a status, which is set above: not input-dependent.
        Self(rule.build().expect("lifecycle rule status is set"))
    }
}

/// The rule's prefix when the filter is a prefix alone (in any of the three forms S3
/// accepts: `Filter/Prefix`, `Filter/And/Prefix` without tags or sizes, or the legacy
/// top-level `Prefix`); `None` when the filter has anything else.
// The top-level `Prefix` is deprecated in the API, but S3 still returns it for old rules.
#[allow(deprecated)]
fn rule_prefix(rule: &LifecycleRule) -> Option<String> {
    match (&rule.filter, &rule.prefix) {
        (Some(filter), None) => {
            if filter.tag.is_some()
                || filter.object_size_greater_than.is_some()
                || filter.object_size_less_than.is_some()
            {
                return None;
            }
            match (&filter.prefix, &filter.and) {
                (Some(prefix), None) => Some(prefix.clone()),
                (None, Some(and)) => {
                    let has_tags = and.tags.as_ref().is_some_and(|t| !t.is_empty());
                    if has_tags
                        || and.object_size_greater_than.is_some()
                        || and.object_size_less_than.is_some()
                    {
                        return None;
                    }
                    and.prefix.clone()
                }
                _ => None,
            }
        }
        (None, Some(prefix)) => Some(prefix.clone()),
        _ => None,
    }
}

/// A failed lifecycle call, naming the bucket and the operation.
#[derive(Debug, thiserror::Error)]
#[error("{operation} on bucket {bucket} failed ({}): {}", failure.reason, failure.message)]
pub struct LifecycleError {
    pub operation: &'static str,
    pub bucket: String,
    pub failure: Failure,
    /// S3 answered `NoSuchBucket`.
    pub no_such_bucket: bool,
}

impl LifecycleError {
    fn from_sdk<E, R>(
        operation: &'static str,
        bucket: &str,
        err: &aws_smithy_runtime_api::client::result::SdkError<E, R>,
    ) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug,
    {
        Self {
            operation,
            bucket: bucket.to_owned(),
            failure: Failure::from_sdk(err),
            no_such_bucket: err.code() == Some("NoSuchBucket"),
        }
    }

    pub fn reason(&self) -> FailureReason {
        self.failure.reason
    }
}

/// The bucket's lifecycle rules, in S3's order; empty when the bucket has no lifecycle
/// configuration.
pub async fn read(s3: &S3Client, bucket: &str) -> Result<Vec<StoredRule>, LifecycleError> {
    match s3
        .0
        .get_bucket_lifecycle_configuration()
        .bucket(bucket)
        .send()
        .await
    {
        Ok(output) => Ok(output
            .rules
            .unwrap_or_default()
            .into_iter()
            .map(StoredRule)
            .collect()),
        Err(err) if err.code() == Some("NoSuchLifecycleConfiguration") => Ok(Vec::new()),
        Err(err) => Err(LifecycleError::from_sdk(
            "GetBucketLifecycleConfiguration",
            bucket,
            &err,
        )),
    }
}

/// Replaces the bucket's lifecycle configuration with `rules`, or deletes the
/// configuration when `rules` is empty (S3 refuses an empty one).
pub async fn write(
    s3: &S3Client,
    bucket: &str,
    rules: &[StoredRule],
) -> Result<(), LifecycleError> {
    let s3 = &s3.0;
    if rules.is_empty() {
        return s3
            .delete_bucket_lifecycle()
            .bucket(bucket)
            .send()
            .await
            .map(|_| ())
            .map_err(|err| LifecycleError::from_sdk("DeleteBucketLifecycle", bucket, &err));
    }
    let configuration = BucketLifecycleConfiguration::builder()
        .set_rules(Some(rules.iter().map(|rule| rule.0.clone()).collect()))
        .build()
        .map_err(|err| LifecycleError {
            operation: "PutBucketLifecycleConfiguration",
            bucket: bucket.to_owned(),
            failure: Failure {
                reason: FailureReason::InvalidRequest,
                message: err.to_string(),
            },
            no_such_bucket: false,
        })?;
    s3.put_bucket_lifecycle_configuration()
        .bucket(bucket)
        .lifecycle_configuration(configuration)
        .send()
        .await
        .map(|_| ())
        .map_err(|err| LifecycleError::from_sdk("PutBucketLifecycleConfiguration", bucket, &err))
}

#[cfg(test)]
#[allow(deprecated)] // the legacy top-level `Prefix` form is tested
mod tests {
    use super::*;
    use aws_sdk_s3::types::{LifecycleRuleAndOperator, NoncurrentVersionTransition, Tag};

    fn spec() -> RuleSpec {
        RuleSpec {
            id: "securepipe/ns/p/raw".into(),
            prefix: "ingestion/raw/".into(),
            transitions: vec![
                TransitionSpec {
                    days: 30,
                    storage_class: "STANDARD_IA".into(),
                },
                TransitionSpec {
                    days: 60,
                    storage_class: "GLACIER".into(),
                },
            ],
            expiration_days: Some(90),
            noncurrent_version_expiration_days: Some(1),
            abort_incomplete_multipart_upload_days: Some(2),
        }
    }

    fn sdk(rule: &StoredRule) -> LifecycleRule {
        rule.as_sdk().clone()
    }

    #[test]
    fn a_built_rule_reads_back_as_its_spec() {
        let rule = StoredRule::from_spec(&spec());
        assert_eq!(rule.id(), Some("securepipe/ns/p/raw"));
        assert_eq!(rule.spec(), Some(spec()));
        let raw = sdk(&rule);
        assert_eq!(raw.status, ExpirationStatus::Enabled);
        assert_eq!(
            raw.filter.and_then(|f| f.prefix).as_deref(),
            Some("ingestion/raw/")
        );
        assert!(raw.prefix.is_none());
    }

    #[test]
    fn a_minimal_rule_has_no_empty_elements() {
        let only_abort = RuleSpec {
            transitions: Vec::new(),
            expiration_days: None,
            noncurrent_version_expiration_days: None,
            ..spec()
        };
        let raw = sdk(&StoredRule::from_spec(&only_abort));
        assert!(raw.transitions.is_none());
        assert!(raw.expiration.is_none());
        assert!(raw.noncurrent_version_expiration.is_none());
        assert_eq!(
            raw.abort_incomplete_multipart_upload
                .and_then(|a| a.days_after_initiation),
            Some(2)
        );
    }

    #[test]
    fn transition_order_is_normalized() {
        let mut raw = sdk(&StoredRule::from_spec(&spec()));
        raw.transitions.as_mut().unwrap().reverse();
        assert_eq!(StoredRule::from_sdk(raw).spec(), Some(spec()));
    }

    #[test]
    fn the_three_prefix_forms_are_equal() {
        let mut legacy = sdk(&StoredRule::from_spec(&spec()));
        legacy.filter = None;
        legacy.prefix = Some("ingestion/raw/".into());
        assert_eq!(StoredRule::from_sdk(legacy).spec(), Some(spec()));

        let mut and = sdk(&StoredRule::from_spec(&spec()));
        and.filter = Some(
            LifecycleRuleFilter::builder()
                .and(
                    LifecycleRuleAndOperator::builder()
                        .prefix("ingestion/raw/")
                        .build(),
                )
                .build(),
        );
        assert_eq!(StoredRule::from_sdk(and).spec(), Some(spec()));
    }

    #[test]
    fn an_expiration_without_days_expires_nothing() {
        let mut raw = sdk(&StoredRule::from_spec(&spec()));
        raw.expiration = Some(
            LifecycleExpiration::builder()
                .expired_object_delete_marker(false)
                .build(),
        );
        let read = StoredRule::from_sdk(raw).spec();
        assert_eq!(read.and_then(|s| s.expiration_days), None);
    }

    #[test]
    fn anything_outside_the_model_is_not_a_spec() {
        let base = sdk(&StoredRule::from_spec(&spec()));
        let mut cases: Vec<(&str, LifecycleRule)> = Vec::new();

        let mut disabled = base.clone();
        disabled.status = ExpirationStatus::Disabled;
        cases.push(("disabled", disabled));

        let mut tagged = base.clone();
        tagged.filter = Some(
            LifecycleRuleFilter::builder()
                .and(
                    LifecycleRuleAndOperator::builder()
                        .prefix("ingestion/raw/")
                        .tags(Tag::builder().key("k").value("v").build().unwrap())
                        .build(),
                )
                .build(),
        );
        cases.push(("tag filter", tagged));

        let mut sized = base.clone();
        sized.filter = Some(
            LifecycleRuleFilter::builder()
                .object_size_greater_than(1024)
                .build(),
        );
        cases.push(("size filter", sized));

        let mut both_prefixes = base.clone();
        both_prefixes.prefix = Some("ingestion/raw/".into());
        cases.push(("filter and legacy prefix", both_prefixes));

        let mut dated = base.clone();
        dated.expiration = Some(
            LifecycleExpiration::builder()
                .date(aws_smithy_types::DateTime::from_secs(1_800_000_000))
                .build(),
        );
        cases.push(("expiration date", dated));

        let mut marker = base.clone();
        marker.expiration = Some(
            LifecycleExpiration::builder()
                .expired_object_delete_marker(true)
                .build(),
        );
        cases.push(("delete marker expiry", marker));

        let mut noncurrent_transition = base.clone();
        noncurrent_transition.noncurrent_version_transitions = Some(vec![
            NoncurrentVersionTransition::builder()
                .noncurrent_days(30)
                .storage_class("GLACIER".into())
                .build(),
        ]);
        cases.push(("noncurrent transition", noncurrent_transition));

        let mut newer = base.clone();
        newer.noncurrent_version_expiration = Some(
            NoncurrentVersionExpiration::builder()
                .noncurrent_days(1)
                .newer_noncurrent_versions(3)
                .build(),
        );
        cases.push(("newer noncurrent versions", newer));

        let mut transition_date = base.clone();
        transition_date.transitions = Some(vec![
            Transition::builder()
                .date(aws_smithy_types::DateTime::from_secs(1_800_000_000))
                .storage_class(TransitionStorageClass::Glacier)
                .build(),
        ]);
        cases.push(("transition date", transition_date));

        let mut no_id = base.clone();
        no_id.id = None;
        cases.push(("no id", no_id));

        for (what, rule) in cases {
            assert_eq!(StoredRule::from_sdk(rule).spec(), None, "{what}");
        }
    }
}
