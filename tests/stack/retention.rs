//! RetentionPolicy against the real apiserver and LocalStack, with the real operator
//! binary running as its ServiceAccount: rules applied as specified; a hand-written rule
//! that securepipe does not own survives byte for byte through create, update, drift and
//! delete; drift is corrected within one resync and counted; two policies share a bucket;
//! a conflicting pair reports Conflict and writes nothing; posture Audit reports and
//! Enforce corrects; an AWS outage shows as Degraded and recovers.

use std::time::Duration;

use aws_sdk_s3::types::{
    BucketLifecycleConfiguration, ExpirationStatus, LifecycleExpiration, LifecycleRule,
    LifecycleRuleAndOperator, LifecycleRuleFilter, NoncurrentVersionTransition, Tag,
    TransitionStorageClass,
};
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::wait::await_condition;
use securepipe_api::RetentionPolicy;
use securepipe_api::condition::{find, is_true, types};
use securepipe_tests::gitops::{Health, Message, health_case};
use securepipe_tests::operator::OperatorProcess;
use securepipe_tests::{FIELD_MANAGER, client, eventually, fresh_namespace, install_crds};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Generous for one reconcile plus a 10 s resync on a busy 2-core machine.
const WAIT: Duration = Duration::from_secs(60);
const UNOWNED_ID: &str = "terraform-logs";

async fn s3() -> aws_sdk_s3::Client {
    std::env::var("AWS_ENDPOINT_URL").unwrap_or_else(|_| {
        panic!("AWS_ENDPOINT_URL is not set: source target/env/env.sh (make test does)")
    });
    let config = aws_config::load_from_env().await;
    aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&config)
            .force_path_style(true)
            .build(),
    )
}

async fn create_bucket(s3: &aws_sdk_s3::Client, bucket: &str) {
    s3.create_bucket()
        .bucket(bucket)
        .send()
        .await
        .unwrap_or_else(|err| panic!("create bucket {bucket}: {err:?}"));
}

/// A rule another tool owns, using features securepipe never writes (tag filter,
/// noncurrent transitions).
fn unowned_rule() -> LifecycleRule {
    LifecycleRule::builder()
        .id(UNOWNED_ID)
        .status(ExpirationStatus::Enabled)
        .filter(
            LifecycleRuleFilter::builder()
                .and(
                    LifecycleRuleAndOperator::builder()
                        .prefix("logs/")
                        .tags(
                            Tag::builder()
                                .key("team")
                                .value("ops")
                                .build()
                                .expect("tag"),
                        )
                        .build(),
                )
                .build(),
        )
        .noncurrent_version_transitions(
            NoncurrentVersionTransition::builder()
                .noncurrent_days(40)
                .storage_class(TransitionStorageClass::Glacier)
                .build(),
        )
        .expiration(LifecycleExpiration::builder().days(400).build())
        .build()
        .expect("a lifecycle rule")
}

async fn put_rules(s3: &aws_sdk_s3::Client, bucket: &str, rules: Vec<LifecycleRule>) {
    s3.put_bucket_lifecycle_configuration()
        .bucket(bucket)
        .lifecycle_configuration(
            BucketLifecycleConfiguration::builder()
                .set_rules(Some(rules))
                .build()
                .expect("a lifecycle configuration"),
        )
        .send()
        .await
        .unwrap_or_else(|err| panic!("put lifecycle of {bucket}: {err:?}"));
}

/// The bucket's rules; empty when it has no lifecycle configuration.
async fn rules(s3: &aws_sdk_s3::Client, bucket: &str) -> Vec<LifecycleRule> {
    match s3
        .get_bucket_lifecycle_configuration()
        .bucket(bucket)
        .send()
        .await
    {
        Ok(out) => out.rules.unwrap_or_default(),
        Err(err)
            if aws_sdk_s3::error::ProvideErrorMetadata::code(&err)
                == Some("NoSuchLifecycleConfiguration") =>
        {
            Vec::new()
        }
        Err(err) => panic!("get lifecycle of {bucket}: {err:?}"),
    }
}

fn rule<'r>(rules: &'r [LifecycleRule], id: &str) -> Option<&'r LifecycleRule> {
    rules.iter().find(|r| r.id.as_deref() == Some(id))
}

fn ids(rules: &[LifecycleRule]) -> Vec<String> {
    let mut ids: Vec<String> = rules.iter().filter_map(|r| r.id.clone()).collect();
    ids.sort();
    ids
}

/// The exact XML of rule `id` in S3's GetBucketLifecycleConfiguration answer, read with a
/// plain HTTP request (LocalStack does not check signatures), so "unchanged" means byte
/// for byte, not "parses to the same struct".
async fn raw_rule_xml(bucket: &str, id: &str) -> Option<String> {
    let endpoint = std::env::var("AWS_ENDPOINT_URL").expect("AWS_ENDPOINT_URL");
    let address = endpoint.trim_start_matches("http://").trim_end_matches('/');
    let mut stream = tokio::net::TcpStream::connect(address)
        .await
        .expect("connect to LocalStack");
    let request =
        format!("GET /{bucket}?lifecycle HTTP/1.0\r\nHost: {address}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("send");
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .await
        .expect("read LocalStack's answer");
    let marker = format!("<ID>{id}</ID>");
    response
        .split("<Rule>")
        .skip(1)
        .map(|chunk| chunk.split("</Rule>").next().unwrap_or_default())
        .find(|rule| rule.contains(&marker))
        .map(|rule| format!("<Rule>{rule}</Rule>"))
}

fn policy(name: &str, bucket: &str, rules: serde_json::Value) -> RetentionPolicy {
    serde_json::from_value(json!({
        "apiVersion": "securepipe.io/v1alpha1",
        "kind": "RetentionPolicy",
        "metadata": { "name": name },
        "spec": {
            "bucket": bucket,
            "region": "us-east-1",
            "resyncInterval": "10s",
            "rules": rules,
        }
    }))
    .expect("a RetentionPolicy")
}

/// The usual biometric layout.
fn biometric_rules(features_days: i32) -> serde_json::Value {
    json!([
        {
            "id": "raw-samples",
            "prefix": "ingestion/raw/",
            "transitions": [
                { "days": 30, "storageClass": "STANDARD_IA" },
                { "days": 60, "storageClass": "GLACIER" }
            ],
            "expirationDays": 90,
            "noncurrentVersionExpirationDays": 1,
            "abortIncompleteMultipartUploadDays": 1
        },
        { "id": "features", "prefix": "training/features/", "expirationDays": features_days }
    ])
}

async fn create(api: &Api<RetentionPolicy>, policy: &RetentionPolicy) {
    api.create(&PostParams::default(), policy)
        .await
        .unwrap_or_else(|err| panic!("create RetentionPolicy: {err}"));
}

/// Waits until the policy's status describes its current generation and `check` holds.
async fn wait_for(
    api: &Api<RetentionPolicy>,
    name: &str,
    what: &str,
    check: impl Fn(&RetentionPolicy) -> bool,
) -> RetentionPolicy {
    let check = &check;
    eventually(WAIT, &format!("{name}: {what}"), || async move {
        let current = api.get(name).await.ok()?;
        let status = current.status.as_ref()?;
        (status.observed_generation == current.metadata.generation && check(&current))
            .then_some(current)
    })
    .await
}

fn condition(policy: &RetentionPolicy, type_: &str) -> (String, String) {
    policy
        .status
        .as_ref()
        .and_then(|s| find(&s.conditions, type_))
        .map(|c| (c.status.clone(), c.reason.clone()))
        .unwrap_or_default()
}

fn ready(policy: &RetentionPolicy) -> bool {
    policy
        .status
        .as_ref()
        .is_some_and(|s| is_true(&s.conditions, types::READY))
}

fn has(policy: &RetentionPolicy, type_: &str) -> bool {
    policy
        .status
        .as_ref()
        .is_some_and(|s| is_true(&s.conditions, type_))
}

async fn wait_deleted(api: &Api<RetentionPolicy>, name: &str) {
    api.delete(name, &DeleteParams::default())
        .await
        .unwrap_or_else(|err| panic!("delete {name}: {err}"));
    eventually(WAIT, &format!("{name} to be gone"), || async move {
        matches!(api.get_opt(name).await, Ok(None)).then_some(())
    })
    .await;
}

async fn event_reasons(client: &kube::Client, namespace: &str, name: &str) -> Vec<String> {
    let events: Api<Event> = Api::namespaced(client.clone(), namespace);
    events
        .list(&ListParams::default())
        .await
        .expect("list events")
        .items
        .into_iter()
        .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name))
        .filter_map(|e| e.reason)
        .collect()
}

async fn setup(prefix: &str) -> (kube::Client, String, Api<RetentionPolicy>, OperatorProcess) {
    let client = client().await;
    install_crds(&client).await;
    let namespace = fresh_namespace(&client, prefix).await;
    let api: Api<RetentionPolicy> = Api::namespaced(client.clone(), &namespace);
    let operator = OperatorProcess::start(&client, &namespace).await;
    (client, namespace, api, operator)
}

#[tokio::test]
#[ignore = "needs the local stack (tests/env/up.sh); make test runs it"]
async fn rules_are_applied_drift_is_corrected_and_unowned_rules_survive_byte_for_byte() {
    let (client, namespace, api, operator) = setup("rp-lifecycle").await;
    let s3 = s3().await;
    let bucket = format!("retention-{namespace}");
    create_bucket(&s3, &bucket).await;
    put_rules(&s3, &bucket, vec![unowned_rule()]).await;
    let unowned_xml = raw_rule_xml(&bucket, UNOWNED_ID)
        .await
        .expect("the unowned rule as written");
    let raw_id = format!("securepipe/{namespace}/biometrics/raw-samples");
    let features_id = format!("securepipe/{namespace}/biometrics/features");

    // Create: rules applied as specified, next to the unowned one.
    create(&api, &policy("biometrics", &bucket, biometric_rules(730))).await;
    let applied = wait_for(&api, "biometrics", "Ready", ready).await;
    health_case(
        "ready",
        &applied,
        Health::Healthy,
        Message::Condition("Ready"),
    );
    let status = applied.status.as_ref().expect("status");
    assert_eq!(status.applied_rules, [raw_id.clone(), features_id.clone()]);
    assert_eq!(status.drift_corrections, 0);
    assert!(status.last_sync_time.is_some());
    assert_eq!(condition(&applied, types::SYNCED).0, "True");
    assert_eq!(condition(&applied, types::CONFLICT).0, "False");
    assert_eq!(condition(&applied, types::DEGRADED).0, "False");
    let now = rules(&s3, &bucket).await;
    assert_eq!(ids(&now), {
        let mut want = vec![raw_id.clone(), features_id.clone(), UNOWNED_ID.to_owned()];
        want.sort();
        want
    });
    let raw = rule(&now, &raw_id).expect("raw rule");
    assert_eq!(raw.status, ExpirationStatus::Enabled);
    assert_eq!(
        raw.filter.as_ref().and_then(|f| f.prefix.as_deref()),
        Some("ingestion/raw/")
    );
    let transitions: Vec<(i32, &str)> = raw
        .transitions
        .as_deref()
        .unwrap_or_default()
        .iter()
        .map(|t| {
            (
                t.days.unwrap_or_default(),
                t.storage_class.as_ref().map_or("", |c| c.as_str()),
            )
        })
        .collect();
    assert_eq!(transitions, [(30, "STANDARD_IA"), (60, "GLACIER")]);
    assert_eq!(raw.expiration.as_ref().and_then(|e| e.days), Some(90));
    assert_eq!(
        raw.noncurrent_version_expiration
            .as_ref()
            .and_then(|n| n.noncurrent_days),
        Some(1)
    );
    assert_eq!(
        raw.abort_incomplete_multipart_upload
            .as_ref()
            .and_then(|a| a.days_after_initiation),
        Some(1)
    );
    let features = rule(&now, &features_id).expect("features rule");
    assert_eq!(features.expiration.as_ref().and_then(|e| e.days), Some(730));
    assert_eq!(
        raw_rule_xml(&bucket, UNOWNED_ID).await.as_deref(),
        Some(unowned_xml.as_str())
    );

    // Update: the spec changes, the bucket follows; not counted as drift.
    api.patch(
        "biometrics",
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&policy("biometrics", &bucket, biometric_rules(365))),
    )
    .await
    .expect("update the policy");
    let updated = wait_for(&api, "biometrics", "Ready after update", |p| {
        ready(p) && p.metadata.generation == Some(2)
    })
    .await;
    assert_eq!(
        updated.status.as_ref().map(|s| s.drift_corrections),
        Some(0)
    );
    let now = rules(&s3, &bucket).await;
    assert_eq!(
        rule(&now, &features_id).and_then(|r| r.expiration.as_ref()?.days),
        Some(365)
    );
    assert_eq!(
        raw_rule_xml(&bucket, UNOWNED_ID).await.as_deref(),
        Some(unowned_xml.as_str())
    );

    // Drift: an owned rule changed and another deleted behind the operator's back.
    let mut tampered = rule(&now, &raw_id).expect("raw rule").clone();
    tampered.expiration = Some(LifecycleExpiration::builder().days(5).build());
    let unowned_now = rule(&now, UNOWNED_ID).expect("unowned rule").clone();
    // Drifted=True lasts from the read that finds the drift to the write that restores
    // it: a watch sees that status, polling would not.
    let drifting = tokio::spawn(await_condition(
        api.clone(),
        "biometrics",
        |p: Option<&RetentionPolicy>| p.is_some_and(|p| has(p, types::DRIFTED)),
    ));
    put_rules(&s3, &bucket, vec![unowned_now, tampered]).await;
    let corrected = wait_for(&api, "biometrics", "drift corrected", |p| {
        p.status.as_ref().is_some_and(|s| s.drift_corrections == 1) && ready(p)
    })
    .await;
    assert_eq!(
        condition(&corrected, types::DRIFTED),
        ("False".to_owned(), "Corrected".to_owned())
    );
    let drifting = tokio::time::timeout(WAIT, drifting)
        .await
        .expect("a watch that saw Drifted=True")
        .expect("the watch task")
        .expect("watch the policy")
        .expect("the policy while drifting");
    assert_eq!(
        condition(&drifting, types::DRIFTED),
        ("True".to_owned(), "RulesChanged".to_owned())
    );
    // Still Ready: the rules are being restored within the same reconcile.
    health_case(
        "drifting",
        &drifting,
        Health::Healthy,
        Message::Condition("Ready"),
    );
    health_case(
        "drift-corrected",
        &corrected,
        Health::Healthy,
        Message::Condition("Ready"),
    );
    let now = rules(&s3, &bucket).await;
    assert_eq!(
        rule(&now, &raw_id).and_then(|r| r.expiration.as_ref()?.days),
        Some(90)
    );
    assert_eq!(
        rule(&now, &features_id).and_then(|r| r.expiration.as_ref()?.days),
        Some(365)
    );
    assert_eq!(
        raw_rule_xml(&bucket, UNOWNED_ID).await.as_deref(),
        Some(unowned_xml.as_str())
    );
    let reasons = event_reasons(&client, &namespace, "biometrics").await;
    assert!(reasons.iter().any(|r| r == "DriftCorrected"), "{reasons:?}");
    assert!(reasons.iter().any(|r| r == "RulesApplied"), "{reasons:?}");

    // Delete: only the policy's rules go.
    wait_deleted(&api, "biometrics").await;
    let left = rules(&s3, &bucket).await;
    assert_eq!(ids(&left), [UNOWNED_ID]);
    assert_eq!(
        raw_rule_xml(&bucket, UNOWNED_ID).await.as_deref(),
        Some(unowned_xml.as_str())
    );
    operator.stop().await;
}

fn exports_rules() -> serde_json::Value {
    json!([
        { "id": "exports", "prefix": "exports/",
          "transitions": [{ "days": 30, "storageClass": "ONEZONE_IA" }], "expirationDays": 120 },
        { "id": "scratch", "prefix": "scratch/", "expirationDays": 3 }
    ])
}

#[tokio::test]
#[ignore = "needs the local stack (tests/env/up.sh); make test runs it"]
async fn two_policies_share_a_bucket_and_a_conflicting_pair_writes_nothing() {
    let (_client, namespace, api, operator) = setup("rp-share").await;
    let s3 = s3().await;
    let bucket = format!("retention-{namespace}");
    create_bucket(&s3, &bucket).await;

    create(&api, &policy("biometrics", &bucket, biometric_rules(730))).await;
    create(&api, &policy("exports", &bucket, exports_rules())).await;
    wait_for(&api, "biometrics", "Ready", ready).await;
    wait_for(&api, "exports", "Ready", ready).await;
    let shared = rules(&s3, &bucket).await;
    let prefix = format!("securepipe/{namespace}");
    let mut want = vec![
        format!("{prefix}/biometrics/features"),
        format!("{prefix}/biometrics/raw-samples"),
        format!("{prefix}/exports/exports"),
        format!("{prefix}/exports/scratch"),
    ];
    want.sort();
    assert_eq!(ids(&shared), want);

    // A third policy whose rule overlaps raw-samples with another expiration.
    let broad = json!([{ "id": "ingestion", "prefix": "ingestion/", "expirationDays": 30 }]);
    create(&api, &policy("broad", &bucket, broad)).await;
    let conflicted = wait_for(&api, "broad", "Conflict", |p| has(p, types::CONFLICT)).await;
    let message = conflicted
        .status
        .as_ref()
        .and_then(|s| find(&s.conditions, types::CONFLICT))
        .map(|c| c.message.clone())
        .unwrap_or_default();
    assert!(
        message.contains("raw-samples") && message.contains(&format!("{namespace}/biometrics")),
        "{message}"
    );
    assert!(!ready(&conflicted));
    health_case(
        "conflict",
        &conflicted,
        Health::Degraded,
        Message::Condition("Stalled"),
    );
    // Both sides of the pair report it; the uninvolved policy does not.
    wait_for(&api, "biometrics", "Conflict", |p| has(p, types::CONFLICT)).await;
    let exports = api.get("exports").await.expect("exports");
    assert!(!has(&exports, types::CONFLICT) && ready(&exports));
    // Nothing was written: two more reconciles ended in Conflict (an outcome that writes
    // nothing), and the bucket is as it was, with no rule of the third policy.
    let conflicts =
        "securepipe_reconcile_outcomes_total{controller=\"retentionpolicy\",outcome=\"Conflict\"}";
    let seen = operator.series(conflicts).await;
    operator.wait_series(conflicts, seen + 2.0, WAIT).await;
    assert_eq!(rules(&s3, &bucket).await, shared);

    // Removing the conflicting policy lets the other go back to Ready.
    wait_deleted(&api, "broad").await;
    wait_for(&api, "biometrics", "Ready again", |p| {
        ready(p) && !has(p, types::CONFLICT)
    })
    .await;
    assert_eq!(rules(&s3, &bucket).await.len(), 4);

    // The last policy out deletes the (then empty) lifecycle configuration.
    wait_deleted(&api, "biometrics").await;
    assert_eq!(ids(&rules(&s3, &bucket).await), want[2..]);
    wait_deleted(&api, "exports").await;
    let gone = s3
        .get_bucket_lifecycle_configuration()
        .bucket(&bucket)
        .send()
        .await
        .expect_err("no lifecycle configuration left");
    assert_eq!(
        aws_sdk_s3::error::ProvideErrorMetadata::code(&gone),
        Some("NoSuchLifecycleConfiguration")
    );
    operator.stop().await;
}

async fn kms_key() -> String {
    let config = aws_config::load_from_env().await;
    let kms = aws_sdk_kms::Client::new(&config);
    let key = kms.create_key().send().await.expect("create a KMS key");
    key.key_metadata.and_then(|m| m.arn).expect("the key's ARN")
}

#[tokio::test]
#[ignore = "needs the local stack (tests/env/up.sh); make test runs it"]
async fn posture_audit_reports_and_enforce_corrects() {
    let (client, namespace, api, operator) = setup("rp-posture").await;
    let s3 = s3().await;
    let bucket = format!("retention-{namespace}");
    create_bucket(&s3, &bucket).await;
    // A weak bucket: public access block off, no versioning, default AES256, and a policy
    // statement someone else owns.
    s3.delete_public_access_block()
        .bucket(&bucket)
        .send()
        .await
        .expect("remove the public access block");
    let reader_statement = json!({
        "Sid": "AllowReader", "Effect": "Allow",
        "Principal": { "AWS": "arn:aws:iam::000000000000:root" },
        "Action": "s3:GetObject", "Resource": format!("arn:aws:s3:::{bucket}/*")
    });
    let original = json!({ "Version": "2012-10-17", "Statement": [reader_statement.clone()] });
    s3.put_bucket_policy()
        .bucket(&bucket)
        .policy(original.to_string())
        .send()
        .await
        .expect("put a bucket policy");
    let key = kms_key().await;

    let mut audited = policy(
        "posture",
        &bucket,
        json!([{ "id": "uploads", "prefix": "uploads/", "abortIncompleteMultipartUploadDays": 3 }]),
    );
    audited.spec.bucket_posture = Some(
        serde_json::from_value(json!({ "mode": "Audit", "sseKmsKeyArn": key })).expect("posture"),
    );
    create(&api, &audited).await;
    let reported = wait_for(&api, "posture", "posture findings", |p| {
        p.status.as_ref().is_some_and(|s| s.posture.len() == 4)
    })
    .await;
    let states: Vec<(String, String)> = reported
        .status
        .as_ref()
        .map(|s| {
            s.posture
                .iter()
                .map(|f| (f.check.clone(), f.state.clone()))
                .collect()
        })
        .unwrap_or_default();
    for check in [
        "Encryption",
        "Versioning",
        "PublicAccessBlock",
        "SecureTransport",
    ] {
        assert!(
            states.contains(&(check.to_owned(), "NonCompliant".to_owned())),
            "{check}: {states:?}"
        );
    }
    assert!(
        ready(&reported),
        "Audit findings do not make the rules unready"
    );
    // Audit changed nothing.
    let versioning = s3
        .get_bucket_versioning()
        .bucket(&bucket)
        .send()
        .await
        .expect("versioning");
    assert_eq!(versioning.status, None);
    let policy_now = s3
        .get_bucket_policy()
        .bucket(&bucket)
        .send()
        .await
        .expect("policy");
    let parsed: serde_json::Value =
        serde_json::from_str(policy_now.policy.as_deref().unwrap_or("{}")).expect("policy JSON");
    assert_eq!(parsed["Statement"].as_array().map(Vec::len), Some(1));

    // Enforce corrects every finding, merging the deny statement into the policy.
    api.patch(
        "posture",
        &PatchParams::default(),
        &Patch::Merge(json!({ "spec": { "bucketPosture": { "mode": "Enforce" } } })),
    )
    .await
    .expect("switch to Enforce");
    let enforced = wait_for(&api, "posture", "posture corrected", |p| {
        ready(p)
            && p.status.as_ref().is_some_and(|s| {
                s.posture.len() == 4 && s.posture.iter().all(|f| f.state != "NonCompliant")
            })
    })
    .await;
    assert!(
        enforced
            .status
            .as_ref()
            .is_some_and(|s| s.posture.iter().any(|f| f.state == "Corrected")),
        "{:?}",
        enforced.status
    );
    let versioning = s3
        .get_bucket_versioning()
        .bucket(&bucket)
        .send()
        .await
        .expect("versioning");
    assert_eq!(
        versioning.status.as_ref().map(|s| s.as_str()),
        Some("Enabled")
    );
    let block = s3
        .get_public_access_block()
        .bucket(&bucket)
        .send()
        .await
        .expect("public access block")
        .public_access_block_configuration
        .expect("configuration");
    assert_eq!(
        (
            block.block_public_acls,
            block.ignore_public_acls,
            block.block_public_policy,
            block.restrict_public_buckets
        ),
        (Some(true), Some(true), Some(true), Some(true))
    );
    let encryption = s3
        .get_bucket_encryption()
        .bucket(&bucket)
        .send()
        .await
        .expect("encryption")
        .server_side_encryption_configuration
        .expect("configuration");
    let first = &encryption.rules[0];
    let default = first
        .apply_server_side_encryption_by_default
        .as_ref()
        .expect("default encryption");
    assert_eq!(default.sse_algorithm.as_str(), "aws:kms");
    assert_eq!(default.kms_master_key_id.as_deref(), Some(key.as_str()));
    assert_eq!(first.bucket_key_enabled, Some(true));
    let policy_now = s3
        .get_bucket_policy()
        .bucket(&bucket)
        .send()
        .await
        .expect("policy");
    let parsed: serde_json::Value =
        serde_json::from_str(policy_now.policy.as_deref().unwrap_or("{}")).expect("policy JSON");
    let statements = parsed["Statement"].as_array().expect("statements");
    assert_eq!(statements.len(), 2, "{parsed}");
    assert_eq!(
        statements[0], reader_statement,
        "the other statement is untouched"
    );
    assert_eq!(statements[1]["Sid"], "SecurepipeDenyInsecureTransport");
    assert_eq!(
        statements[1]["Condition"]["Bool"]["aws:SecureTransport"],
        "false"
    );
    let reasons = event_reasons(&client, &namespace, "posture").await;
    assert!(
        reasons.iter().any(|r| r == "PostureCorrected"),
        "{reasons:?}"
    );
    operator.stop().await;
}

#[tokio::test]
#[ignore = "needs the local stack (tests/env/up.sh); make test runs it"]
async fn an_aws_outage_degrades_then_recovers() {
    let (_client, namespace, api, operator) = setup("rp-outage").await;
    let s3 = s3().await;
    let bucket = format!("retention-{namespace}");
    create_bucket(&s3, &bucket).await;
    create(&api, &policy("biometrics", &bucket, biometric_rules(730))).await;
    wait_for(&api, "biometrics", "Ready", ready).await;

    operator.aws_link().cut();
    let degraded = wait_for(&api, "biometrics", "Degraded", |p| has(p, types::DEGRADED)).await;
    assert_eq!(
        condition(&degraded, types::DEGRADED),
        ("True".to_owned(), "EndpointUnavailable".to_owned())
    );
    assert!(!ready(&degraded));
    // The operator retries on its own: not done, not stuck.
    health_case(
        "endpoint-unavailable",
        &degraded,
        Health::Progressing,
        Message::Condition("Ready"),
    );
    // What was applied before the outage is still reported.
    assert_eq!(
        degraded.status.as_ref().map(|s| s.applied_rules.len()),
        Some(2)
    );

    operator.aws_link().restore();
    let recovered = wait_for(&api, "biometrics", "recovered", |p| {
        ready(p) && !has(p, types::DEGRADED)
    })
    .await;
    assert_eq!(
        condition(&recovered, types::DEGRADED),
        ("False".to_owned(), "AsExpected".to_owned())
    );
    // The rules survived the outage: nothing to write.
    assert_eq!(
        condition(&recovered, types::SYNCED),
        ("True".to_owned(), "UpToDate".to_owned())
    );
    health_case(
        "recovered",
        &recovered,
        Health::Healthy,
        Message::Condition("Ready"),
    );
    assert_eq!(rules(&s3, &bucket).await.len(), 2);
    let logs = operator.stop().await;
    assert!(
        logs.contains("retentionpolicy") || logs.contains("EndpointUnavailable"),
        "{logs}"
    );
}

/// The reason and message of the Ready condition.
fn ready_reason(policy: &RetentionPolicy) -> (String, String) {
    policy
        .status
        .as_ref()
        .and_then(|s| find(&s.conditions, types::READY))
        .map(|c| (c.reason.clone(), c.message.clone()))
        .unwrap_or_default()
}

#[tokio::test]
#[ignore = "needs the local stack (tests/env/up.sh); make test runs it"]
async fn what_only_someone_can_fix_stalls() {
    let (_client, namespace, api, operator) = setup("rp-stalled").await;
    let s3 = s3().await;

    // A bucket that does not exist.
    let missing = format!("retention-{namespace}");
    create(&api, &policy("missing", &missing, biometric_rules(730))).await;
    let stalled = wait_for(&api, "missing", "Stalled", |p| has(p, types::STALLED)).await;
    assert_eq!(ready_reason(&stalled).0, "NoSuchBucket");
    health_case(
        "no-such-bucket",
        &stalled,
        Health::Degraded,
        Message::Condition("Stalled"),
    );

    // A bucket whose other rules leave no room: S3 takes at most 1,000 rules.
    let full = format!("biometrics-{namespace}");
    create_bucket(&s3, &full).await;
    let theirs: Vec<LifecycleRule> = (0..1000)
        .map(|i| {
            LifecycleRule::builder()
                .id(format!("theirs-{i}"))
                .status(ExpirationStatus::Enabled)
                .filter(
                    LifecycleRuleFilter::builder()
                        .prefix(format!("t{i}/"))
                        .build(),
                )
                .expiration(LifecycleExpiration::builder().days(400).build())
                .build()
                .expect("a lifecycle rule")
        })
        .collect();
    put_rules(&s3, &full, theirs).await;
    create(&api, &policy("full", &full, biometric_rules(730))).await;
    let stalled = wait_for(&api, "full", "Stalled", |p| has(p, types::STALLED)).await;
    let (reason, message) = ready_reason(&stalled);
    assert_eq!(reason, "InvalidSpec", "{message}");
    health_case(
        "too-many-rules",
        &stalled,
        Health::Degraded,
        Message::Condition("Stalled"),
    );
    assert_eq!(
        rules(&s3, &full).await.len(),
        1000,
        "the bucket was written"
    );
    operator.stop().await;
}
