//! Tenancy against the real apiserver and LocalStack, with the real operator: what no
//! TenantGrant covers is refused (`Ready=False`, reason `NotGranted`, naming the field)
//! without any AWS call; a grant added lets it through, a grant removed takes the Secret
//! away at the next reconcile; a RetentionPolicy on a bucket not granted leaves the
//! bucket's lifecycle untouched.

use std::time::Duration;

use aws_sdk_s3::types::{
    BucketLifecycleConfiguration, ExpirationStatus, LifecycleExpiration, LifecycleRule,
    LifecycleRuleFilter,
};
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::events::v1::Event;
use kube::Client;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use securepipe_api::tenant_grant::TenantGrant;
use securepipe_api::{RetentionPolicy, TrainingPartition};
use securepipe_tests::gitops::{GRANT_APPLIED, Health, Message, health_case};
use securepipe_tests::localstack::{assume_role_count, create_role};
use securepipe_tests::operator::OperatorProcess;
use securepipe_tests::{
    FIELD_MANAGER, client, eventually, grant_suites, install_crds, suite_grant_name,
    ungranted_namespace,
};
use serde_json::json;

/// One reconcile plus a requeue on a busy 2-core machine.
const WAIT: Duration = Duration::from_secs(60);

async fn aws() -> aws_config::SdkConfig {
    std::env::var("AWS_ENDPOINT_URL")
        .unwrap_or_else(|_| panic!("AWS_ENDPOINT_URL is not set: source target/env/env.sh"));
    aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await
}

struct Tenant {
    client: Client,
    namespace: String,
    role_arn: String,
    operator: OperatorProcess,
}

/// A namespace with no grant, its role `trainer-<ns>` (the one [`grant_suites`] grants)
/// and an operator watching it.
async fn tenant(prefix: &str) -> Tenant {
    let client = client().await;
    install_crds(&client).await;
    let namespace = ungranted_namespace(&client, prefix).await;
    let role_arn = create_role(&format!("trainer-{namespace}")).await;
    let operator = OperatorProcess::start(&client, &namespace).await;
    Tenant {
        client,
        namespace,
        role_arn,
        operator,
    }
}

impl Tenant {
    fn partitions(&self) -> Api<TrainingPartition> {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    /// Applies TrainingPartition `name` on `biometrics-<ns>` with the tenant's role.
    async fn apply(&self, name: &str, extra_spec: &str) {
        let bucket = format!("biometrics-{}", self.namespace);
        self.apply_on(name, &bucket, &self.role_arn, extra_spec)
            .await;
    }

    async fn apply_on(&self, name: &str, bucket: &str, role: &str, extra_spec: &str) {
        let yaml = format!(
            "apiVersion: securepipe.io/v1alpha1\nkind: TrainingPartition\nmetadata: {{name: {name}}}\nspec:\n  bucket: {bucket}\n  region: us-east-1\n  roleArn: {role}\n{extra_spec}"
        );
        let tp: TrainingPartition = serde_yaml::from_str(&yaml).expect("TrainingPartition YAML");
        self.partitions()
            .patch(
                name,
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(&tp),
            )
            .await
            .unwrap_or_else(|err| panic!("apply TrainingPartition {name}: {err}"));
    }

    /// Waits until `name`'s Ready condition has `status` and returns (reason, message).
    async fn wait_ready(&self, name: &str, status: &str) -> (String, String) {
        eventually(WAIT, &format!("{name} Ready={status}"), || async {
            let tp = self.partitions().get_opt(name).await.ok()??;
            let ready = tp
                .status?
                .conditions
                .into_iter()
                .find(|c| c.type_ == "Ready")?;
            (ready.status == status).then_some((ready.reason, ready.message))
        })
        .await
    }

    async fn secret(&self, name: &str) -> Option<Secret> {
        Api::<Secret>::namespaced(self.client.clone(), &self.namespace)
            .get_opt(name)
            .await
            .expect("read Secret")
    }

    async fn event_reasons(&self) -> Vec<String> {
        Api::<Event>::namespaced(self.client.clone(), &self.namespace)
            .list(&ListParams::default())
            .await
            .expect("list events")
            .items
            .into_iter()
            .filter_map(|e| e.reason)
            .collect()
    }

    async fn get(&self, name: &str) -> TrainingPartition {
        self.partitions()
            .get(name)
            .await
            .unwrap_or_else(|err| panic!("get TrainingPartition {name}: {err}"))
    }

    fn session_name(&self, name: &str) -> String {
        format!("sp-{}@{name}", self.namespace)
    }
}

async fn apply_grant(client: &Client, name: &str, spec: serde_json::Value) {
    let grant: TenantGrant = serde_json::from_value(json!({
        "apiVersion": "securepipe.io/v1alpha1",
        "kind": "TenantGrant",
        "metadata": {"name": name},
        "spec": spec,
    }))
    .expect("a TenantGrant");
    Api::<TenantGrant>::all(client.clone())
        .patch(
            name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&grant),
        )
        .await
        .unwrap_or_else(|err| panic!("apply TenantGrant {name}: {err}"));
}

async fn delete_grant(client: &Client, name: &str) {
    Api::<TenantGrant>::all(client.clone())
        .delete(name, &DeleteParams::default())
        .await
        .unwrap_or_else(|err| panic!("delete TenantGrant {name}: {err}"));
}

#[tokio::test]
#[ignore = "needs the local stack (tests/env/up.sh); make test runs it"]
async fn an_ungranted_namespace_gets_nothing_and_never_reaches_sts() {
    let t = tenant("tenancy-none").await;
    t.apply("voice", "").await;
    let (reason, message) = t.wait_ready("voice", "False").await;
    assert_eq!(reason, "NotGranted", "{message}");
    assert!(
        message.contains(&format!(
            "no TenantGrant applies to namespace {}",
            t.namespace
        )),
        "{message}"
    );
    assert!(t.event_reasons().await.contains(&"NotGranted".to_owned()));
    health_case(
        "not-granted",
        &t.get("voice").await,
        Health::Degraded,
        Message::Condition("Stalled"),
    );
    assert!(t.secret("voice-aws").await.is_none());
    assert_eq!(
        assume_role_count(&t.session_name("voice")).await,
        0,
        "STS saw an AssumeRole for a TrainingPartition no grant covers"
    );

    // Control: the grant added, the same object gets credentials without being touched
    // (the grant change alone triggers the reconcile), and STS records it under that name.
    grant_suites(&t.client, &t.namespace).await;
    let grant = Api::<TenantGrant>::all(t.client.clone())
        .get(&suite_grant_name(&t.namespace))
        .await
        .expect("get TenantGrant");
    // A TenantGrant has no status: in effect once applied.
    health_case(
        "applied",
        &grant,
        Health::Healthy,
        Message::Text(GRANT_APPLIED.into()),
    );
    let (reason, message) = t.wait_ready("voice", "True").await;
    assert_eq!(reason, "CredentialsValid", "{message}");
    assert!(t.secret("voice-aws").await.is_some());
    assert_eq!(assume_role_count(&t.session_name("voice")).await, 1);
    t.operator.stop().await;
}

#[tokio::test]
#[ignore = "needs the local stack (tests/env/up.sh); make test runs it"]
async fn a_secret_securepipe_did_not_create_is_left_alone() {
    let t = tenant("tenancy-secret").await;
    grant_suites(&t.client, &t.namespace).await;
    let secrets = Api::<Secret>::namespaced(t.client.clone(), &t.namespace);
    let theirs: Secret = serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "theirs"},
        "stringData": {"token": "not securepipe's"},
    }))
    .expect("a Secret");
    secrets
        .create(&Default::default(), &theirs)
        .await
        .expect("create Secret theirs");
    t.apply("voice", "  credentials: {secretName: theirs}\n")
        .await;
    let (reason, message) = t.wait_ready("voice", "False").await;
    assert_eq!(reason, "SecretConflict", "{message}");
    assert!(message.contains("Secret theirs"), "{message}");
    health_case(
        "secret-conflict",
        &t.get("voice").await,
        Health::Degraded,
        Message::Condition("Stalled"),
    );
    let after = t.secret("theirs").await.expect("Secret theirs still there");
    assert_eq!(
        after.data.map(|d| d.len()),
        Some(1),
        "the Secret was changed"
    );
    assert_eq!(assume_role_count(&t.session_name("voice")).await, 0);
    t.operator.stop().await;
}

#[tokio::test]
#[ignore = "needs the local stack (tests/env/up.sh); make test runs it"]
async fn a_grant_removed_takes_the_secret_away_at_the_next_reconcile() {
    let t = tenant("tenancy-removed").await;
    grant_suites(&t.client, &t.namespace).await;
    t.apply("voice", "").await;
    t.wait_ready("voice", "True").await;
    assert!(t.secret("voice-aws").await.is_some());

    delete_grant(&t.client, &suite_grant_name(&t.namespace)).await;
    let (reason, message) = t.wait_ready("voice", "False").await;
    assert_eq!(reason, "NotGranted", "{message}");
    eventually(WAIT, "Secret voice-aws removed", || async {
        t.secret("voice-aws").await.is_none().then_some(())
    })
    .await;
    // Not renewed either: still one AssumeRole under the session's name.
    assert_eq!(assume_role_count(&t.session_name("voice")).await, 1);
    t.operator.stop().await;
}

#[tokio::test]
#[ignore = "needs the local stack (tests/env/up.sh); make test runs it"]
async fn asking_for_more_than_the_grant_is_refused_naming_the_field() {
    let t = tenant("tenancy-more").await;
    let other_role = create_role(&format!("other-team-{}", t.namespace)).await;
    apply_grant(
        &t.client,
        &format!("tenancy-{}", t.namespace),
        json!({
            "namespaces": [t.namespace],
            "roleArns": [t.role_arn],
            "buckets": [format!("biometrics-{}", t.namespace)],
            "partitions": ["${namespace}-*"],
            "maxAccess": "ReadOnly",
            "maxDuration": "1h",
        }),
    )
    .await;
    let own = format!("{}-voice", t.namespace);
    // Within the grant: proves the grant itself works.
    t.apply("own", &format!("  partition: {own}\n")).await;
    let (reason, message) = t.wait_ready("own", "True").await;
    assert_eq!(reason, "CredentialsValid", "{message}");

    let bucket = format!("biometrics-{}", t.namespace);
    let partition = format!("  partition: {own}\n");
    // (name, bucket, role, extra spec, the field the message must name)
    let cases = [
        (
            "their-partition",
            bucket.clone(),
            t.role_arn.clone(),
            "  partition: other-team-voice\n".to_owned(),
            "partition other-team-voice",
        ),
        (
            "their-bucket",
            "other-team-bucket".to_owned(),
            t.role_arn.clone(),
            partition.clone(),
            "spec.bucket other-team-bucket",
        ),
        (
            "their-role",
            bucket.clone(),
            other_role.clone(),
            partition.clone(),
            "spec.roleArn",
        ),
        (
            "longer",
            bucket.clone(),
            t.role_arn.clone(),
            format!("{partition}  credentials: {{duration: 2h}}\n"),
            "spec.credentials.duration",
        ),
        (
            "wider",
            bucket.clone(),
            t.role_arn.clone(),
            format!("{partition}  access: ReadWrite\n"),
            "spec.access ReadWrite",
        ),
        (
            "raw",
            bucket.clone(),
            t.role_arn.clone(),
            format!("{partition}  featurePrefix: ingestion/raw/\n"),
            "spec.featurePrefix ingestion/raw/",
        ),
    ];
    for (name, bucket, role, spec, _) in &cases {
        t.apply_on(name, bucket, role, spec).await;
    }
    for (name, _, _, _, field) in &cases {
        let (reason, message) = t.wait_ready(name, "False").await;
        assert_eq!(reason, "NotGranted", "{name}: {message}");
        assert!(
            message.contains(field),
            "{name}: {message:?} should name {field}"
        );
        assert!(t.secret(&format!("{name}-aws")).await.is_none(), "{name}");
        assert_eq!(
            assume_role_count(&t.session_name(name)).await,
            0,
            "{name} reached STS"
        );
    }
    t.operator.stop().await;
}

#[tokio::test]
#[ignore = "needs the local stack (tests/env/up.sh); make test runs it"]
async fn a_retention_policy_on_a_bucket_not_granted_leaves_it_untouched() {
    let t = tenant("tenancy-rp").await;
    let bucket = format!("retention-{}", t.namespace);
    // Granted lifecycle on another bucket only.
    apply_grant(
        &t.client,
        &format!("tenancy-{}", t.namespace),
        json!({
            "namespaces": [t.namespace],
            "retention": [{"bucket": format!("granted-{}", t.namespace), "prefixes": [""]}],
        }),
    )
    .await;
    let config = aws().await;
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&config)
            .force_path_style(true)
            .build(),
    );
    s3.create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .unwrap_or_else(|err| panic!("create bucket {bucket}: {err:?}"));
    let theirs = LifecycleRule::builder()
        .id("their-rule")
        .status(ExpirationStatus::Enabled)
        .filter(LifecycleRuleFilter::builder().prefix("logs/").build())
        .expiration(LifecycleExpiration::builder().days(400).build())
        .build()
        .expect("a rule");
    s3.put_bucket_lifecycle_configuration()
        .bucket(&bucket)
        .lifecycle_configuration(
            BucketLifecycleConfiguration::builder()
                .rules(theirs)
                .build()
                .expect("a lifecycle configuration"),
        )
        .send()
        .await
        .unwrap_or_else(|err| panic!("put lifecycle of {bucket}: {err:?}"));
    let read = || async {
        s3.get_bucket_lifecycle_configuration()
            .bucket(&bucket)
            .send()
            .await
            .unwrap_or_else(|err| panic!("get lifecycle of {bucket}: {err:?}"))
            .rules
            .unwrap_or_default()
    };
    let before = read().await;

    let policy: RetentionPolicy = serde_json::from_value(json!({
        "apiVersion": "securepipe.io/v1alpha1",
        "kind": "RetentionPolicy",
        "metadata": {"name": "destroy"},
        "spec": {
            "bucket": bucket,
            "region": "us-east-1",
            "resyncInterval": "10s",
            "rules": [{"id": "features", "prefix": "training/features/", "expirationDays": 1}],
        },
    }))
    .expect("a RetentionPolicy");
    let policies: Api<RetentionPolicy> = Api::namespaced(t.client.clone(), &t.namespace);
    policies
        .patch(
            "destroy",
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&policy),
        )
        .await
        .unwrap_or_else(|err| panic!("apply RetentionPolicy: {err}"));
    let (message, policy) = eventually(WAIT, "RetentionPolicy destroy NotGranted", || async {
        let policy = policies.get_opt("destroy").await.ok()??;
        let ready = policy
            .status
            .as_ref()?
            .conditions
            .iter()
            .find(|c| c.type_ == "Ready")?;
        (ready.status == "False" && ready.reason == "NotGranted")
            .then(|| (ready.message.clone(), policy.clone()))
    })
    .await;
    health_case(
        "not-granted",
        &policy,
        Health::Degraded,
        Message::Condition("Stalled"),
    );
    assert!(
        message.contains(&format!("lifecycle of bucket {bucket}")),
        "{message}"
    );
    assert!(t.event_reasons().await.contains(&"NotGranted".to_owned()));
    // Past one resync: still nothing written.
    tokio::time::sleep(Duration::from_secs(12)).await;
    assert_eq!(read().await, before, "the bucket's lifecycle changed");
    t.operator.stop().await;
}
