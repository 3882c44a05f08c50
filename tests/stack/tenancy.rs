//! Tenancy against the real apiserver and LocalStack, with the real operator: what no
//! TenantGrant covers is refused (`Ready=False`, reason `NotGranted`, naming the field)
//! without any AWS call; a grant added lets it through, a grant removed takes the Secret
//! away at the next reconcile; a RetentionPolicy on a bucket not granted leaves the
//! bucket's lifecycle untouched; revocation denies by the TrainingPartition's UID on
//! every role it ever used, within the inline-policy quota, and is refused for a role in
//! another AWS account without a revoker role.

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
use securepipe_tests::localstack::{
    assume_role_count, create_role, create_role_with, iam_in_account, inline_policies,
    inline_policies_with, quota_size, recorded_sts_session,
};
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
    tenant_with_args(prefix, |_| Vec::new()).await
}

/// [`tenant`], the operator started with the extra arguments `args(namespace)` gives.
async fn tenant_with_args(prefix: &str, args: impl Fn(&str) -> Vec<String>) -> Tenant {
    let client = client().await;
    install_crds(&client).await;
    let namespace = ungranted_namespace(&client, prefix).await;
    let role_arn = create_role(&format!("trainer-{namespace}")).await;
    let operator = OperatorProcess::start_with(&client, &namespace, &args(&namespace)).await;
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

    /// Grants this namespace `role` (in another account) on `bucket`, read-only, and applies
    /// the partition `remote` on it with `revokeOnDelete`.
    async fn apply_remote(&self, role: &str, bucket: &str) {
        apply_grant(
            &self.client,
            &format!("tenancy-{}", self.namespace),
            json!({
                "namespaces": [self.namespace],
                "roleArns": [role],
                "buckets": [bucket],
                "partitions": ["*"],
                "maxAccess": "ReadOnly",
                "maxDuration": "1h",
            }),
        )
        .await;
        self.apply_on(
            "remote",
            bucket,
            role,
            "  credentials: {revokeOnDelete: true}\n",
        )
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

impl Tenant {
    async fn tp(&self, name: &str) -> TrainingPartition {
        self.partitions()
            .get(name)
            .await
            .unwrap_or_else(|err| panic!("get TrainingPartition {name}: {err}"))
    }

    /// The access key id and issue time of the session `name`'s Secret holds now.
    async fn held_session(&self, name: &str) -> (String, jiff::Timestamp) {
        let credentials = self
            .tp(name)
            .await
            .status
            .and_then(|s| s.credentials)
            .unwrap_or_else(|| panic!("{name} reports no credentials"));
        (credentials.access_key_id, credentials.renewed_at.0)
    }

    async fn delete_and_wait_gone(&self, names: &[String]) {
        for name in names {
            self.partitions()
                .delete(name, &DeleteParams::default())
                .await
                .unwrap_or_else(|err| panic!("delete TrainingPartition {name}: {err}"));
        }
        eventually(
            Duration::from_secs(120),
            "the TrainingPartitions gone",
            || async {
                let left = self
                    .partitions()
                    .list(&ListParams::default())
                    .await
                    .ok()?
                    .items
                    .len();
                (left == 0).then_some(())
            },
        )
        .await;
    }
}

/// The role name of a role ARN.
fn role_name(role_arn: &str) -> &str {
    role_arn.rsplit('/').next().unwrap_or_default()
}

/// The cut-off (`aws:TokenIssueTime` bound) of the statement of the role's revocation
/// policy that denies sessions tagged with `uid`; `None` when none does.
async fn revocation_cutoff(role_name: &str, uid: &str) -> Option<jiff::Timestamp> {
    cutoff_in(&inline_policies(role_name).await, uid)
}

/// [`revocation_cutoff`] in a role's inline policies as read.
fn cutoff_in(
    policies: &std::collections::BTreeMap<String, serde_json::Value>,
    uid: &str,
) -> Option<jiff::Timestamp> {
    let statements = policies.get("securepipe-revocations")?["Statement"].clone();
    statements.as_array()?.iter().find_map(|statement| {
        let condition = &statement["Condition"];
        let uids = condition["StringEquals"]["aws:PrincipalTag/securepipe:uid"].as_array()?;
        if statement["Effect"] != "Deny"
            || statement["Action"] != "*"
            || !uids.iter().any(|u| u == uid)
        {
            return None;
        }
        condition["DateLessThan"]["aws:TokenIssueTime"]
            .as_str()?
            .parse()
            .ok()
    })
}

#[tokio::test]
#[ignore = "needs the local stack (tests/env/up.sh); make test runs it"]
async fn deletion_revokes_sessions_minted_before_a_partition_and_role_change() {
    let t = tenant("tenancy-revoke").await;
    grant_suites(&t.client, &t.namespace).await;
    // A second role, granted by a second grant (grants are not combined: each covers all).
    let second_role = create_role(&format!("second-{}", t.namespace)).await;
    apply_grant(
        &t.client,
        &format!("tenancy-second-{}", t.namespace),
        json!({
            "namespaces": [t.namespace],
            "roleArns": [second_role],
            "buckets": [format!("biometrics-{}", t.namespace)],
            "partitions": ["*"],
            "maxAccess": "ReadWrite",
            "maxDuration": "12h",
        }),
    )
    .await;
    let revoke = "  credentials: {revokeOnDelete: true}\n";
    t.apply("voice", &format!("  partition: first\n{revoke}"))
        .await;
    t.wait_ready("voice", "True").await;
    let (first_key, first_issued) = t.held_session("voice").await;
    let uid = t.tp("voice").await.metadata.uid.expect("uid");
    let first = recorded_sts_session(&first_key).await;
    assert_eq!(first.tags().get("securepipe:uid"), Some(&uid.as_str()));
    assert_eq!(first.tags().get("securepipe:partition"), Some(&"first"));

    // Another partition, wider access, another role: a new session; the first one is
    // still valid in AWS.
    let bucket = format!("biometrics-{}", t.namespace);
    t.apply_on(
        "voice",
        &bucket,
        &second_role,
        &format!("  partition: second\n  access: ReadWrite\n{revoke}"),
    )
    .await;
    let (second_key, second_issued) = eventually(WAIT, "a session for the new spec", || async {
        let held = t.held_session("voice").await;
        (held.0 != first_key).then_some(held)
    })
    .await;
    let second = recorded_sts_session(&second_key).await;
    assert_eq!(second.role_arn, second_role);
    assert_eq!(second.tags().get("securepipe:uid"), Some(&uid.as_str()));
    let recorded = t.tp("voice").await.status.expect("status").used_role_arns;
    assert_eq!(recorded, [t.role_arn.clone(), second_role.clone()]);

    t.delete_and_wait_gone(&["voice".to_owned()]).await;
    // Read back from IAM: on the first role, the deny names the UID the first session
    // carries (not its partition) and reaches past its issue time; the same on the second.
    for (role, issued) in [(&t.role_arn, first_issued), (&second_role, second_issued)] {
        let cutoff = revocation_cutoff(role_name(role), &uid)
            .await
            .unwrap_or_else(|| panic!("no deny for UID {uid} on {role}"));
        assert!(
            cutoff > issued,
            "{role}: cut-off {cutoff} <= issued {issued}"
        );
    }
    let policies = inline_policies(role_name(&t.role_arn)).await;
    assert!(
        !policies
            .values()
            .any(|p| p.to_string().contains("securepipe:partition")),
        "a deny keyed on the partition: {policies:?}"
    );
    t.operator.stop().await;
}

#[tokio::test]
#[ignore = "needs the local stack (tests/env/up.sh); make test runs it"]
async fn forty_deletions_on_one_role_stay_under_the_inline_policy_quota() {
    let t = tenant("tenancy-quota").await;
    grant_suites(&t.client, &t.namespace).await;
    let names: Vec<String> = (0..40).map(|n| format!("p{n:02}")).collect();
    for name in &names {
        t.apply(name, "  credentials: {revokeOnDelete: true}\n")
            .await;
    }
    let mut uids = Vec::new();
    for name in &names {
        eventually(
            Duration::from_secs(180),
            &format!("{name} Ready"),
            || async {
                let tp = t.partitions().get_opt(name).await.ok()??;
                let ready = tp
                    .status?
                    .conditions
                    .into_iter()
                    .any(|c| c.type_ == "Ready" && c.status == "True");
                ready.then_some(())
            },
        )
        .await;
        uids.push(t.tp(name).await.metadata.uid.expect("uid"));
    }
    // All at once: the deletions write one policy concurrently.
    t.delete_and_wait_gone(&names).await;
    let role = role_name(&t.role_arn);
    let policies = inline_policies(role).await;
    let total: usize = policies.values().map(quota_size).sum();
    assert!(
        total < 10_240,
        "{total} characters of inline policies on {role}: {:?}",
        policies.keys()
    );
    assert_eq!(
        policies.keys().collect::<Vec<_>>(),
        ["securepipe-revocations"],
        "one revocation policy per role"
    );
    for uid in &uids {
        assert!(
            revocation_cutoff(role, uid).await.is_some(),
            "UID {uid} lost from the revocation policy ({total} characters)"
        );
    }
    t.operator.stop().await;
}

#[tokio::test]
#[ignore = "needs the local stack (tests/env/up.sh); make test runs it"]
async fn revoke_on_delete_in_another_account_without_a_revoker_is_refused() {
    let t = tenant("tenancy-account").await;
    // LocalStack's account is 000000000000; this role is in another one.
    let foreign = format!("arn:aws:iam::111122223333:role/trainer-{}", t.namespace);
    let bucket = format!("biometrics-{}", t.namespace);
    t.apply_remote(&foreign, &bucket).await;
    let (reason, message) = t.wait_ready("remote", "False").await;
    assert_eq!(reason, "RevokerMissing", "{message}");
    health_case(
        "revoker-missing",
        &t.get("remote").await,
        Health::Degraded,
        Message::Condition("Stalled"),
    );
    for part in [
        format!("TrainingPartition {}/remote", t.namespace),
        "111122223333".to_owned(),
        "000000000000".to_owned(),
        "revoker".to_owned(),
    ] {
        assert!(message.contains(&part), "{message:?} should name {part}");
    }
    assert!(
        t.event_reasons()
            .await
            .contains(&"RevokerMissing".to_owned())
    );
    assert!(t.secret("remote-aws").await.is_none());
    assert_eq!(assume_role_count(&t.session_name("remote")).await, 0);

    // Control: the same role without revokeOnDelete is issued.
    t.apply_on("plain", &bucket, &foreign, "").await;
    let (reason, message) = t.wait_ready("plain", "True").await;
    assert_eq!(reason, "CredentialsValid", "{message}");
    // Nothing was minted on the foreign role, so deletion has nothing to revoke.
    t.delete_and_wait_gone(&["remote".to_owned(), "plain".to_owned()])
        .await;
    t.operator.stop().await;
}

#[tokio::test]
#[ignore = "needs the local stack (tests/env/up.sh); make test runs it"]
async fn a_grant_removed_with_revoke_on_delete_writes_the_deny() {
    let t = tenant("tenancy-withdrawn").await;
    grant_suites(&t.client, &t.namespace).await;
    t.apply("voice", "  credentials: {revokeOnDelete: true}\n")
        .await;
    t.wait_ready("voice", "True").await;
    let (_, issued) = t.held_session("voice").await;
    let uid = t.tp("voice").await.metadata.uid.expect("uid");
    assert_eq!(revocation_cutoff(role_name(&t.role_arn), &uid).await, None);

    delete_grant(&t.client, &suite_grant_name(&t.namespace)).await;
    let (reason, message) = t.wait_ready("voice", "False").await;
    assert_eq!(reason, "NotGranted", "{message}");
    eventually(WAIT, "Secret voice-aws removed", || async {
        t.secret("voice-aws").await.is_none().then_some(())
    })
    .await;
    // The object lives on: the sessions issued so far are denied, to the second.
    let cutoff = revocation_cutoff(role_name(&t.role_arn), &uid)
        .await
        .expect("the deny for the withdrawn sessions");
    assert!(cutoff > issued, "cut-off {cutoff} <= issued {issued}");
    assert!(
        cutoff <= jiff::Timestamp::now() + jiff::SignedDuration::from_secs(1),
        "a withdrawal must not deny sessions a later grant mints: {cutoff}"
    );
    t.operator.stop().await;
}

#[tokio::test]
#[ignore = "needs the local stack (tests/env/up.sh); make test runs it"]
async fn a_revoker_role_writes_the_deny_in_the_other_account() {
    const ACCOUNT: &str = "111122223333";
    let t = tenant_with_args("tenancy-revoker", |namespace| {
        vec![format!(
            "--revoker-role-arn=arn:aws:iam::{ACCOUNT}:role/revoker-{namespace}"
        )]
    })
    .await;
    let iam = iam_in_account(ACCOUNT).await;
    create_role_with(&iam, &format!("revoker-{}", t.namespace)).await;
    let foreign = create_role_with(&iam, &format!("trainer-{}", t.namespace)).await;
    assert!(foreign.contains(ACCOUNT), "{foreign}");
    let bucket = format!("biometrics-{}", t.namespace);
    t.apply_remote(&foreign, &bucket).await;
    let (reason, message) = t.wait_ready("remote", "True").await;
    assert_eq!(reason, "CredentialsValid", "{message}");
    let (_, issued) = t.held_session("remote").await;
    let uid = t.tp("remote").await.metadata.uid.expect("uid");

    t.delete_and_wait_gone(&["remote".to_owned()]).await;
    // Written in the role's own account (the operator's account has no such role: there,
    // NoSuchEntity would have read as "role gone").
    let policies = inline_policies_with(&iam, role_name(&foreign)).await;
    let cutoff = cutoff_in(&policies, &uid)
        .unwrap_or_else(|| panic!("no deny for UID {uid} in account {ACCOUNT}: {policies:?}"));
    assert!(cutoff > issued, "cut-off {cutoff} <= issued {issued}");
    t.operator.stop().await;
}

#[tokio::test]
#[ignore = "needs the local stack (tests/env/up.sh); make test runs it"]
async fn a_granted_namespace_the_operator_does_not_serve_gets_nothing() {
    // The tenant role is bound in this namespace (as for every suite), but the operator is
    // told it serves another one only: it must not try, and must say why.
    let t = tenant_with_args("tenancy-unserved", |_| {
        vec!["--secret-namespaces=securepipe-elsewhere".to_owned()]
    })
    .await;
    grant_suites(&t.client, &t.namespace).await;
    t.apply("voice", "").await;
    let (reason, message) = t.wait_ready("voice", "False").await;
    assert_eq!(reason, "NamespaceNotServed", "{message}");
    assert!(message.contains(&t.namespace), "{message}");
    health_case(
        "namespace-not-served",
        &t.get("voice").await,
        Health::Degraded,
        Message::Condition("Stalled"),
    );
    assert!(t.secret("voice-aws").await.is_none());
    assert_eq!(
        assume_role_count(&t.session_name("voice")).await,
        0,
        "STS saw an AssumeRole for a namespace the operator does not serve"
    );
    t.operator.stop().await;
}
