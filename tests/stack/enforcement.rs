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
use securepipe_tests::localstack::{create_role, recorded_sts_session};
use securepipe_tests::operator::OperatorProcess;
use securepipe_tests::{FIELD_MANAGER, client, eventually, fresh_namespace, install_crds};
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
    let client = client().await;
    install_crds(&client).await;
    let namespace = fresh_namespace(&client, prefix).await;
    let operator = OperatorProcess::start(&client, &namespace).await;
    let role_arn = create_role(&format!("trainer-{namespace}")).await;
    let bucket = format!("enforced-{namespace}");
    let yaml = format!(
        "apiVersion: securepipe.io/v1alpha1\nkind: TrainingPartition\nmetadata: {{name: team-a}}\nspec:\n  bucket: {bucket}\n  region: us-east-1\n  roleArn: {role_arn}\n  partition: team-a\n  access: {access}\n"
    );
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
    let secret = eventually(Duration::from_secs(20), "Secret team-a-aws", || async {
        secrets.get_opt("team-a-aws").await.ok().flatten()
    })
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
