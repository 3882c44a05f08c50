//! The session policies the operator writes, proven on an S3 that enforces them.
//!
//! LocalStack records an AssumeRole's inline policy but does not enforce it. SeaweedFS
//! (tests/env: `weed mini` on loopback) evaluates inline session policies, `s3:prefix`
//! included. Each test lets the real operator mint a TrainingPartition's credentials on
//! LocalStack, takes the exact policy LocalStack recorded for the Secret's access key, and
//! replays it through SeaweedFS's STS `AssumeRole` on a role that may do `s3:*`; then every
//! request a session of that partition could try is made for real.
//!
//! One edit is made before replaying, and only one: SeaweedFS never populates
//! `aws:RequestedRegion`, so a policy with that condition denies everything there. The
//! suite removes exactly the `aws:RequestedRegion` entries (and asserts they were present);
//! nothing in the product changes for the test.

use std::time::Duration;

use aws_sdk_s3::primitives::ByteStream;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, Patch, PatchParams};
use securepipe_api::TrainingPartition;
use securepipe_api::tenant_grant::TenantGrant;
use securepipe_tests::localstack::{create_role, recorded_sts_session};
use securepipe_tests::operator::OperatorProcess;
use securepipe_tests::{
    FIELD_MANAGER, client, eventually, fresh_namespace, install_crds, suite_grant_name,
};
use serde_json::Value;

const FEATURES: &str = "training/features";

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: start the local stack with tests/env/up.sh and source target/env/env.sh (make test does both)")
    })
}

/// A client config for SeaweedFS with `credentials`.
fn seaweedfs_config(credentials: aws_sdk_s3::config::Credentials) -> aws_config::SdkConfig {
    aws_config::SdkConfig::builder()
        .endpoint_url(env("SECUREPIPE_SEAWEEDFS_ENDPOINT"))
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_s3::config::SharedCredentialsProvider::new(
            credentials,
        ))
        .behavior_version(aws_config::BehaviorVersion::latest())
        .build()
}

fn s3(config: &aws_config::SdkConfig) -> aws_sdk_s3::Client {
    let config = aws_sdk_s3::config::Builder::from(config)
        .force_path_style(true)
        .build();
    aws_sdk_s3::Client::from_conf(config)
}

fn admin() -> aws_config::SdkConfig {
    seaweedfs_config(aws_sdk_s3::config::Credentials::new(
        env("SECUREPIPE_SEAWEEDFS_ACCESS_KEY_ID"),
        env("SECUREPIPE_SEAWEEDFS_SECRET_ACCESS_KEY"),
        None,
        None,
        "seaweedfs-admin",
    ))
}

/// Creates `bucket` on SeaweedFS with one object in each place a session could reach for.
async fn seed_bucket(bucket: &str) {
    let s3 = s3(&admin());
    s3.create_bucket()
        .bucket(bucket)
        .send()
        .await
        .unwrap_or_else(|err| panic!("create bucket {bucket} on SeaweedFS: {err:?}"));
    for key in [
        format!("{FEATURES}/team-a/x.npy"),
        format!("{FEATURES}/team-b/x.npy"),
        format!("{FEATURES}/team-a-x/x.npy"),
        "ingestion/raw/team-a/x.wav".to_owned(),
    ] {
        s3.put_object()
            .bucket(bucket)
            .key(&key)
            .body(ByteStream::from_static(b"sample"))
            .send()
            .await
            .unwrap_or_else(|err| panic!("put s3://{bucket}/{key} on SeaweedFS: {err:?}"));
    }
}

/// An S3 client for a SeaweedFS session of the enforced role, narrowed by `policy`.
async fn session(policy: Option<&str>) -> aws_sdk_s3::Client {
    let sts = aws_sdk_sts::Client::new(&admin());
    let response = sts
        .assume_role()
        .role_arn(env("SECUREPIPE_SEAWEEDFS_ROLE_ARN"))
        .role_session_name("securepipe-enforcement")
        .duration_seconds(900)
        .set_policy(policy.map(str::to_owned))
        .send()
        .await
        .unwrap_or_else(|err| panic!("AssumeRole on SeaweedFS: {err:?}"));
    let credentials = response.credentials.expect("credentials");
    s3(&seaweedfs_config(aws_sdk_s3::config::Credentials::new(
        credentials.access_key_id,
        credentials.secret_access_key,
        Some(credentials.session_token),
        None,
        "seaweedfs-session",
    )))
}

/// The policy with every `aws:RequestedRegion` condition removed (SeaweedFS never sets that
/// key); panics if a statement had none, so nothing else is ever edited away.
fn without_requested_region(policy: &str) -> String {
    let mut policy: Value = serde_json::from_str(policy).expect("policy JSON");
    for statement in policy["Statement"].as_array_mut().expect("Statement list") {
        let conditions = statement["Condition"]
            .as_object_mut()
            .expect("every statement is conditioned on the region");
        let equals = conditions
            .get_mut("StringEquals")
            .and_then(Value::as_object_mut)
            .expect("StringEquals");
        assert!(
            equals.remove("aws:RequestedRegion").is_some(),
            "a statement without aws:RequestedRegion: {statement}"
        );
        if equals.is_empty() {
            conditions.remove("StringEquals");
        }
        if conditions.is_empty() {
            statement
                .as_object_mut()
                .expect("statement")
                .remove("Condition");
        }
    }
    policy.to_string()
}

/// What one session may do, by request.
#[derive(Debug, PartialEq)]
struct Reach {
    get_own: bool,
    list_own: bool,
    put_own: bool,
    get_other_team: bool,
    get_sibling_prefix: bool,
    get_raw: bool,
    list_bucket: bool,
    list_other_team: bool,
    list_without_slash: bool,
    put_other_team: bool,
}

async fn reach(s3: &aws_sdk_s3::Client, bucket: &str) -> Reach {
    let get =
        |key: String| async move { s3.get_object().bucket(bucket).key(key).send().await.is_ok() };
    let list = |prefix: Option<String>| async move {
        s3.list_objects_v2()
            .bucket(bucket)
            .set_prefix(prefix)
            .send()
            .await
            .is_ok()
    };
    let put = |key: String| async move {
        s3.put_object()
            .bucket(bucket)
            .key(key)
            .body(ByteStream::from_static(b"written"))
            .send()
            .await
            .is_ok()
    };
    Reach {
        get_own: get(format!("{FEATURES}/team-a/x.npy")).await,
        list_own: list(Some(format!("{FEATURES}/team-a/"))).await,
        put_own: put(format!("{FEATURES}/team-a/new.npy")).await,
        get_other_team: get(format!("{FEATURES}/team-b/x.npy")).await,
        get_sibling_prefix: get(format!("{FEATURES}/team-a-x/x.npy")).await,
        get_raw: get("ingestion/raw/team-a/x.wav".to_owned()).await,
        list_bucket: list(None).await,
        list_other_team: list(Some(format!("{FEATURES}/team-b/"))).await,
        list_without_slash: list(Some(format!("{FEATURES}/team-a"))).await,
        put_other_team: put(format!("{FEATURES}/team-b/new.npy")).await,
    }
}

/// Runs the operator in a fresh namespace, lets it mint credentials for partition `team-a`
/// with `access`, and returns the session policy LocalStack recorded for them plus the
/// bucket name.
async fn operator_policy(prefix: &str, access: &str) -> (String, String) {
    minted_policy(prefix, access, false).await
}

/// [`operator_policy`], or with `extraction` the policy of the worker session the operator
/// mints next to it (Secret `team-a-worker-aws`; a KMS key granted for it).
async fn minted_policy(prefix: &str, access: &str, extraction: bool) -> (String, String) {
    let client = client().await;
    install_crds(&client).await;
    let namespace = fresh_namespace(&client, prefix).await;
    let operator = OperatorProcess::start(&client, &namespace).await;
    let role_arn = create_role(&format!("trainer-{namespace}")).await;
    let bucket = format!("enforced-{namespace}");
    let mut yaml = format!(
        "apiVersion: securepipe.io/v1alpha1\nkind: TrainingPartition\nmetadata: {{name: team-a}}\nspec:\n  bucket: {bucket}\n  region: us-east-1\n  roleArn: {role_arn}\n  partition: team-a\n  access: {access}\n"
    );
    let mut secret_name = "team-a-aws";
    if extraction {
        let key = grant_a_kms_key(&client, &namespace).await;
        yaml.push_str(&format!(
            "  extraction:\n    enabled: true\n    kmsKeyArn: {key}\n"
        ));
        secret_name = "team-a-worker-aws";
    }
    let partition: TrainingPartition = serde_yaml::from_str(&yaml).expect("YAML");
    Api::<TrainingPartition>::namespaced(client.clone(), &namespace)
        .patch(
            "team-a",
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&partition),
        )
        .await
        .unwrap_or_else(|err| panic!("apply TrainingPartition team-a: {err}"));
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &namespace);
    let secret = eventually(
        Duration::from_secs(30),
        &format!("Secret {secret_name}"),
        || async { secrets.get_opt(secret_name).await.ok().flatten() },
    )
    .await;
    let key = secret
        .data
        .as_ref()
        .and_then(|data| data.get("AWS_ACCESS_KEY_ID"))
        .map(|value| String::from_utf8_lossy(&value.0).into_owned())
        .expect("AWS_ACCESS_KEY_ID in the Secret");
    let recorded = recorded_sts_session(&key).await;
    operator.stop().await;
    (recorded.policy.expect("an inline session policy"), bucket)
}

/// Creates a KMS key on LocalStack and adds it, for extraction, to the suite's grant for
/// `namespace`; returns its ARN.
async fn grant_a_kms_key(client: &kube::Client, namespace: &str) -> String {
    let config = aws_config::load_from_env().await;
    let key = aws_sdk_kms::Client::new(&config)
        .create_key()
        .send()
        .await
        .expect("KMS CreateKey")
        .key_metadata
        .and_then(|m| m.arn)
        .expect("key ARN");
    let name = suite_grant_name(namespace);
    let grant = serde_json::json!({
        "apiVersion": "securepipe.io/v1alpha1",
        "kind": "TenantGrant",
        "metadata": {"name": name},
        "spec": {"extraction": {"kmsKeyArns": [key]}},
    });
    Api::<TenantGrant>::all(client.clone())
        .patch(
            &name,
            &PatchParams::apply("securepipe-tests-enforcement").force(),
            &Patch::Apply(&grant),
        )
        .await
        .unwrap_or_else(|err| panic!("grant extraction to {namespace}: {err}"));
    key
}

#[tokio::test]
#[ignore = "needs the local stack (tests/env/up.sh); make test runs it"]
async fn a_read_only_session_reaches_its_own_features_and_nothing_else() {
    let (policy, bucket) = operator_policy("enforce-ro", "ReadOnly").await;
    seed_bucket(&bucket).await;
    let reach = reach(
        &session(Some(&without_requested_region(&policy))).await,
        &bucket,
    )
    .await;
    assert_eq!(
        reach,
        Reach {
            get_own: true,
            list_own: true,
            put_own: false,
            get_other_team: false,
            get_sibling_prefix: false,
            get_raw: false,
            list_bucket: false,
            list_other_team: false,
            list_without_slash: false,
            put_other_team: false,
        },
        "what the ReadOnly policy allowed on SeaweedFS:\n{policy}"
    );
}

#[tokio::test]
#[ignore = "needs the local stack (tests/env/up.sh); make test runs it"]
async fn a_read_write_session_writes_only_in_its_own_partition() {
    let (policy, bucket) = operator_policy("enforce-rw", "ReadWrite").await;
    seed_bucket(&bucket).await;
    let reach = reach(
        &session(Some(&without_requested_region(&policy))).await,
        &bucket,
    )
    .await;
    assert_eq!(
        reach,
        Reach {
            get_own: true,
            list_own: true,
            put_own: true,
            get_other_team: false,
            get_sibling_prefix: false,
            get_raw: false,
            list_bucket: false,
            list_other_team: false,
            list_without_slash: false,
            put_other_team: false,
        },
        "what the ReadWrite policy allowed on SeaweedFS:\n{policy}"
    );
}

/// The control: the same role without a session policy reaches everything, so the denials
/// above come from the operator's policies, not from the setup.
#[tokio::test]
#[ignore = "needs the local stack (tests/env/up.sh); make test runs it"]
async fn without_the_session_policy_the_role_reaches_everything() {
    let bucket = format!("enforced-control-{}", std::process::id());
    seed_bucket(&bucket).await;
    let reach = reach(&session(None).await, &bucket).await;
    assert_eq!(
        reach,
        Reach {
            get_own: true,
            list_own: true,
            put_own: true,
            get_other_team: true,
            get_sibling_prefix: true,
            get_raw: true,
            list_bucket: true,
            list_other_team: true,
            list_without_slash: true,
            put_other_team: true,
        }
    );
}

/// What a worker session may do, by request.
#[derive(Debug, PartialEq)]
struct WorkerReach {
    get_own_raw: bool,
    list_own_raw: bool,
    list_own_features: bool,
    list_other_features: bool,
    delete_own_raw: bool,
    put_own_features: bool,
    get_own_features: bool,
    put_own_attestation: bool,
    get_own_attestation: bool,
    put_own_raw: bool,
    delete_own_features: bool,
    get_other_raw: bool,
    delete_other_raw: bool,
    put_other_features: bool,
    put_other_attestation: bool,
    list_bucket: bool,
}

/// The worker's session policy proven the same way: it shreds its own raw folder, writes
/// its own features and attestations, and reaches nothing of another partition. SeaweedFS
/// has no KMS: the one `kms:Decrypt` statement is left out of the replay (its key and
/// encryption-context condition are checked in the extraction suite).
#[tokio::test]
#[ignore = "needs the local stack (tests/env/up.sh); make test runs it"]
async fn a_worker_session_shreds_only_its_own_raw_folder() {
    let (policy, bucket) = minted_policy("enforce-worker", "ReadOnly", true).await;
    seed_bucket(&bucket).await;
    let admin = s3(&admin());
    for key in ["ingestion/raw/team-a/y.wav", "ingestion/raw/team-b/x.wav"] {
        admin
            .put_object()
            .bucket(&bucket)
            .key(key)
            .body(ByteStream::from_static(b"sample"))
            .send()
            .await
            .unwrap_or_else(|err| panic!("put {key} on SeaweedFS: {err:?}"));
    }
    let mut document: Value = serde_json::from_str(&policy).expect("policy JSON");
    let statements = document["Statement"]
        .as_array_mut()
        .expect("Statement list");
    let before = statements.len();
    statements.retain(|statement| statement["Action"] != "kms:Decrypt");
    assert_eq!(
        statements.len(),
        before - 1,
        "one kms:Decrypt statement: {policy}"
    );
    let worker = session(Some(&without_requested_region(&document.to_string()))).await;

    let s3 = &worker;
    let bucket = bucket.as_str();
    let get = |key: &'static str| async move {
        s3.get_object().bucket(bucket).key(key).send().await.is_ok()
    };
    let put = |key: &'static str| async move {
        s3.put_object()
            .bucket(bucket)
            .key(key)
            .body(ByteStream::from_static(b"written"))
            .send()
            .await
            .is_ok()
    };
    let delete = |key: &'static str| async move {
        s3.delete_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .is_ok()
    };
    let list = |prefix: Option<&'static str>| async move {
        s3.list_objects_v2()
            .bucket(bucket)
            .set_prefix(prefix.map(str::to_owned))
            .send()
            .await
            .is_ok()
    };
    let reach = WorkerReach {
        get_own_raw: get("ingestion/raw/team-a/x.wav").await,
        list_own_raw: list(Some("ingestion/raw/team-a/")).await,
        list_own_features: list(Some("training/features/team-a/")).await,
        list_other_features: list(Some("training/features/team-b/")).await,
        delete_own_raw: delete("ingestion/raw/team-a/y.wav").await,
        put_own_features: put("training/features/team-a/new.npy").await,
        get_own_features: get("training/features/team-a/x.npy").await,
        put_own_attestation: put("audit/team-a/run.json").await,
        get_own_attestation: get("audit/team-a/run.json").await,
        put_own_raw: put("ingestion/raw/team-a/new.wav").await,
        delete_own_features: delete("training/features/team-a/x.npy").await,
        get_other_raw: get("ingestion/raw/team-b/x.wav").await,
        delete_other_raw: delete("ingestion/raw/team-b/x.wav").await,
        put_other_features: put("training/features/team-b/new.npy").await,
        put_other_attestation: put("audit/team-b/run.json").await,
        list_bucket: list(None).await,
    };
    assert_eq!(
        reach,
        WorkerReach {
            get_own_raw: true,
            list_own_raw: true,
            list_own_features: true,
            list_other_features: false,
            delete_own_raw: true,
            put_own_features: true,
            get_own_features: true,
            put_own_attestation: true,
            get_own_attestation: true,
            put_own_raw: false,
            delete_own_features: false,
            get_other_raw: false,
            delete_other_raw: false,
            put_other_features: false,
            put_other_attestation: false,
            list_bucket: false,
        },
        "what the worker policy allowed on SeaweedFS:\n{policy}"
    );
}
