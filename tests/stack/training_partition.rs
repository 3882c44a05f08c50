//! TrainingPartition controller against the real apiserver and LocalStack, with the real
//! operator binary running as its ServiceAccount (RBAC from config/rbac/ enforced).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use securepipe_api::TrainingPartition;
use securepipe_tests::gitops::{Health, Message, NO_STATUS, health_case, stale_generation};
use securepipe_tests::localstack::{create_role, inline_policies, recorded_sts_session};
use securepipe_tests::operator::{OPERATOR_NAMESPACE, OperatorProcess, SERVICE_ACCOUNT};
use securepipe_tests::{FIELD_MANAGER, client, eventually, fresh_namespace, install_crds};
use serde_json::json;

async fn aws() -> aws_config::SdkConfig {
    std::env::var("AWS_ENDPOINT_URL")
        .unwrap_or_else(|_| panic!("AWS_ENDPOINT_URL is not set: source target/env/env.sh"));
    aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await
}

struct Setup {
    client: Client,
    namespace: String,
    role_arn: String,
    operator: OperatorProcess,
}

async fn setup(prefix: &str) -> Setup {
    let client = client().await;
    install_crds(&client).await;
    let namespace = fresh_namespace(&client, prefix).await;
    let role_arn = create_role(&format!("trainer-{namespace}")).await;
    let operator = OperatorProcess::start(&client, &namespace).await;
    Setup {
        client,
        namespace,
        role_arn,
        operator,
    }
}

impl Setup {
    fn partitions(&self) -> Api<TrainingPartition> {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    fn secrets(&self) -> Api<Secret> {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    async fn apply(&self, name: &str, extra_spec: &str) -> TrainingPartition {
        let yaml = format!(
            "apiVersion: securepipe.io/v1alpha1\nkind: TrainingPartition\nmetadata: {{name: {name}}}\nspec:\n  bucket: biometrics-{ns}\n  region: us-east-1\n  roleArn: {role}\n{extra_spec}",
            ns = self.namespace,
            role = self.role_arn
        );
        let tp: TrainingPartition = serde_yaml::from_str(&yaml).expect("TrainingPartition YAML");
        self.partitions()
            .patch(
                name,
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(&tp),
            )
            .await
            .unwrap_or_else(|err| panic!("apply TrainingPartition {name}: {err}"))
    }

    async fn get(&self, name: &str) -> TrainingPartition {
        self.partitions()
            .get(name)
            .await
            .unwrap_or_else(|err| panic!("get TrainingPartition {name}: {err}"))
    }

    async fn condition(&self, name: &str, type_: &str) -> Option<(String, String)> {
        let tp = self.partitions().get_opt(name).await.ok()??;
        let condition = tp
            .status?
            .conditions
            .into_iter()
            .find(|c| c.type_ == type_)?;
        Some((condition.status, condition.reason))
    }

    async fn wait_condition(
        &self,
        name: &str,
        type_: &str,
        status: &str,
        timeout: Duration,
    ) -> String {
        let what = format!("{name} {type_}={status}");
        eventually(timeout, &what, || async {
            self.condition(name, type_)
                .await
                .filter(|(s, _)| s == status)
                .map(|(_, reason)| reason)
        })
        .await
    }

    async fn secret(&self, name: &str) -> Option<Secret> {
        self.secrets().get_opt(name).await.expect("read Secret")
    }

    /// How many Secrets carry the TrainingPartition's label.
    async fn owned_secrets(&self, name: &str) -> usize {
        let selector = format!("securepipe.io/training-partition={name}");
        self.secrets()
            .list(&ListParams::default().labels(&selector))
            .await
            .expect("list Secrets")
            .items
            .len()
    }

    async fn event_reasons(&self) -> Vec<String> {
        let events: Api<Event> = Api::namespaced(self.client.clone(), &self.namespace);
        events
            .list(&ListParams::default())
            .await
            .expect("list events")
            .items
            .into_iter()
            .filter_map(|e| e.reason)
            .collect()
    }
}

fn value(secret: &Secret, key: &str) -> String {
    let bytes = &secret
        .data
        .as_ref()
        .and_then(|d| d.get(key))
        .unwrap_or_else(|| panic!("Secret has no {key}"))
        .0;
    String::from_utf8(bytes.clone()).expect("UTF-8 Secret value")
}

#[tokio::test]
#[ignore = "needs the local stack (tests/env/up.sh); make test runs it"]
async fn a_partition_gets_working_credentials_within_five_seconds() {
    let setup = setup("tp-issue").await;
    let started = Instant::now();
    let created = setup
        .apply(
            "speech",
            "  access: ReadWrite\n  credentials: {sessionTags: {team: asr}}\n",
        )
        .await;
    health_case(
        "no-status",
        &created,
        Health::Progressing,
        Message::Text(NO_STATUS.into()),
    );
    let secret = eventually(Duration::from_secs(5), "Secret speech-aws", || {
        setup.secret("speech-aws")
    })
    .await;
    let elapsed = started.elapsed();
    println!("Secret written {elapsed:?} after apply");

    for key in [
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "credentials",
        "credential-process.json",
        "config",
    ] {
        assert!(!value(&secret, key).is_empty(), "{key} is empty");
    }
    assert_eq!(secret.type_.as_deref(), Some("Opaque"));
    let owner = &secret.owner_references()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.name.as_str(), owner.controller),
        ("TrainingPartition", "speech", Some(true))
    );
    let process: serde_json::Value =
        serde_json::from_str(&value(&secret, "credential-process.json"))
            .expect("credential_process JSON");
    assert_eq!(process["Version"], 1);
    assert_eq!(
        process["AccessKeyId"].as_str(),
        Some(value(&secret, "AWS_ACCESS_KEY_ID").as_str())
    );
    assert!(
        secret
            .annotations()
            .contains_key("securepipe.io/expires-at")
    );

    // The credentials work, and they are the partition's session.
    let credentials = aws_sdk_sts::config::Credentials::new(
        value(&secret, "AWS_ACCESS_KEY_ID"),
        value(&secret, "AWS_SECRET_ACCESS_KEY"),
        Some(value(&secret, "AWS_SESSION_TOKEN")),
        None,
        "securepipe-secret",
    );
    let config = aws_sdk_sts::config::Builder::from(&aws().await)
        .credentials_provider(credentials)
        .build();
    let identity = aws_sdk_sts::Client::from_conf(config)
        .get_caller_identity()
        .send()
        .await
        .expect("GetCallerIdentity with the Secret's credentials");
    let arn = identity.arn().unwrap_or_default();
    let session_name = format!("sp-{}@speech", setup.namespace);
    let role_name = setup.role_arn.rsplit('/').next().unwrap_or_default();
    assert!(
        arn.ends_with(&format!("assumed-role/{role_name}/{session_name}")),
        "{arn}"
    );

    // LocalStack recorded exactly the prefix-scoped session policy, the duration and the
    // session tags (it does not enforce them; the policy's shape is what is checked here).
    let recorded = recorded_sts_session(&value(&secret, "AWS_ACCESS_KEY_ID")).await;
    assert_eq!(recorded.role_arn, setup.role_arn);
    assert_eq!(recorded.session_name, session_name);
    assert_eq!(
        recorded.duration_seconds, 3600,
        "the default duration is 1h"
    );
    let bucket = format!("arn:aws:s3:::biometrics-{}", setup.namespace);
    let in_region = json!({ "StringEquals": { "aws:RequestedRegion": "us-east-1" } });
    let expected_policy = json!({
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "PartitionObjects",
                "Effect": "Allow",
                "Action": ["s3:GetObject", "s3:PutObject"],
                "Resource": format!("{bucket}/training/features/speech/*"),
                "Condition": in_region,
            },
            {
                "Sid": "ListPartition",
                "Effect": "Allow",
                "Action": "s3:ListBucket",
                "Resource": bucket,
                "Condition": {
                    "StringEquals": { "aws:RequestedRegion": "us-east-1" },
                    "StringLike": { "s3:prefix": "training/features/speech/*" },
                },
            },
        ],
    });
    let policy: serde_json::Value =
        serde_json::from_str(recorded.policy.as_deref().expect("a session policy"))
            .expect("the recorded policy is JSON");
    assert_eq!(policy, expected_policy);
    let namespace = setup.namespace.as_str();
    let uid = setup
        .partitions()
        .get("speech")
        .await
        .expect("get")
        .metadata
        .uid
        .expect("uid");
    assert_eq!(
        recorded.tags(),
        BTreeMap::from([
            ("securepipe:name", "speech"),
            ("securepipe:namespace", namespace),
            ("securepipe:partition", "speech"),
            ("securepipe:uid", uid.as_str()),
            ("team", "asr"),
        ])
    );

    let reason = setup
        .wait_condition("speech", "Ready", "True", Duration::from_secs(5))
        .await;
    assert_eq!(reason, "CredentialsValid");
    let tp = setup
        .partitions()
        .get("speech")
        .await
        .expect("get TrainingPartition");
    health_case("ready", &tp, Health::Healthy, Message::Condition("Ready"));
    let status = tp.status.expect("status");
    assert_eq!(status.observed_generation, tp.metadata.generation);
    let issued = status.credentials.expect("status.credentials");
    assert_eq!(issued.secret_name, "speech-aws");
    assert_eq!(issued.session_name, session_name);
    assert_eq!(issued.access_key_id, value(&secret, "AWS_ACCESS_KEY_ID"));
    eventually(
        Duration::from_secs(5),
        "CredentialsIssued event",
        || async {
            setup
                .event_reasons()
                .await
                .contains(&"CredentialsIssued".to_owned())
                .then_some(())
        },
    )
    .await;
    assert_eq!(
        setup
            .operator
            .metric("securepipe_credentials_minted_total")
            .await,
        1.0
    );

    // No secret value ever reaches the operator's logs.
    let logs = setup.operator.stop().await;
    assert!(
        logs.contains("credentials written"),
        "the log capture works:\n{logs}"
    );
    for key in ["AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"] {
        assert!(
            !logs.contains(&value(&secret, key)),
            "{key} appears in the operator logs"
        );
    }
}

#[tokio::test]
#[ignore = "needs the local stack (tests/env/up.sh); make test runs it"]
async fn credentials_are_renewed_when_due_and_never_missing() {
    let setup = setup("tp-renew").await;
    // A 15-minute session renewed 14m50s before expiry: due about 10 s after minting.
    setup
        .apply(
            "renewing",
            "  credentials: {duration: 15m, renewBefore: 14m50s}\n",
        )
        .await;
    let first = eventually(Duration::from_secs(5), "first Secret", || {
        setup.secret("renewing-aws")
    })
    .await;
    let first_key = value(&first, "AWS_ACCESS_KEY_ID");
    let renewed = eventually(Duration::from_secs(30), "a renewed Secret", || async {
        let secret = setup.secret("renewing-aws").await?;
        (value(&secret, "AWS_ACCESS_KEY_ID") != first_key).then_some(secret)
    })
    .await;
    let expiry = |s: &Secret| s.annotations()["securepipe.io/expires-at"].clone();
    assert!(
        expiry(&renewed) > expiry(&first),
        "{} !> {}",
        expiry(&renewed),
        expiry(&first)
    );
    // The event follows the Secret write.
    eventually(
        Duration::from_secs(5),
        "CredentialsRenewed event",
        || async {
            setup
                .event_reasons()
                .await
                .contains(&"CredentialsRenewed".to_owned())
                .then_some(())
        },
    )
    .await;
    // Renewal overwrote the one Secret in place: there was never a moment without one.
    assert_eq!(setup.owned_secrets("renewing").await, 1);
}

#[tokio::test]
#[ignore = "needs the local stack (tests/env/up.sh); make test runs it"]
async fn deleting_removes_the_secret_and_revokes_earlier_sessions() {
    let setup = setup("tp-revoke").await;
    setup
        .apply("revoked", "  credentials: {revokeOnDelete: true}\n")
        .await;
    setup
        .wait_condition("revoked", "Ready", "True", Duration::from_secs(10))
        .await;
    let tp = setup.partitions().get("revoked").await.expect("get");
    assert!(
        tp.finalizers()
            .contains(&"securepipe.io/revoke-sessions".to_owned())
    );

    setup
        .partitions()
        .delete("revoked", &DeleteParams::default())
        .await
        .expect("delete");
    eventually(
        Duration::from_secs(20),
        "TrainingPartition gone",
        || async {
            setup
                .partitions()
                .get_opt("revoked")
                .await
                .expect("get")
                .is_none()
                .then_some(())
        },
    )
    .await;
    eventually(
        Duration::from_secs(30),
        "Secret garbage-collected",
        || async { setup.secret("revoked-aws").await.is_none().then_some(()) },
    )
    .await;

    let role_name = setup.role_arn.rsplit('/').next().unwrap_or_default();
    let policies = inline_policies(role_name).await;
    let document = policies
        .get("securepipe-revocations")
        .unwrap_or_else(|| panic!("no revocation policy on {role_name}: {policies:?}"));
    let uid = tp.uid().expect("uid");
    let statement = document["Statement"]
        .as_array()
        .and_then(|all| {
            all.iter().find(|s| {
                s["Condition"]["StringEquals"]["aws:PrincipalTag/securepipe:uid"]
                    .as_array()
                    .is_some_and(|uids| uids.iter().any(|u| u == uid.as_str()))
            })
        })
        .unwrap_or_else(|| panic!("no deny for UID {uid}: {document}"));
    assert_eq!(statement["Effect"], "Deny");
    assert!(statement["Condition"]["DateLessThan"]["aws:TokenIssueTime"].is_string());
}

#[tokio::test]
#[ignore = "needs the local stack (tests/env/up.sh); make test runs it"]
async fn an_aws_outage_degrades_and_recovery_follows() {
    let setup = setup("tp-outage").await;
    setup.operator.aws_link().cut();
    setup.apply("offline", "").await;
    let reason = setup
        .wait_condition("offline", "Degraded", "True", Duration::from_secs(60))
        .await;
    assert_eq!(reason, "EndpointUnavailable");
    assert_eq!(
        setup
            .condition("offline", "Ready")
            .await
            .map(|c| c.0)
            .as_deref(),
        Some("False")
    );
    // No credentials yet, and the operator retries: not done, not stuck.
    let tp = setup.get("offline").await;
    health_case(
        "endpoint-unavailable",
        &tp,
        Health::Progressing,
        Message::Condition("Ready"),
    );
    assert!(setup.secret("offline-aws").await.is_none());

    setup.operator.aws_link().restore();
    setup
        .wait_condition("offline", "Ready", "True", Duration::from_secs(30))
        .await;
    setup
        .wait_condition("offline", "Degraded", "False", Duration::from_secs(5))
        .await;

    // With valid credentials in hand, a failed re-mint degrades but keeps Ready.
    setup.operator.aws_link().cut();
    let changed = setup
        .apply("offline", "  credentials: {sessionTags: {team: changed}}\n")
        .await;
    // The apply's answer: a new generation, the status still about the previous one.
    let (generation, observed) = (
        changed.metadata.generation.expect("generation"),
        changed
            .status
            .as_ref()
            .and_then(|s| s.observed_generation)
            .expect("observedGeneration"),
    );
    health_case(
        "stale-generation",
        &changed,
        Health::Progressing,
        Message::Text(stale_generation(generation, observed)),
    );
    setup
        .wait_condition("offline", "Degraded", "True", Duration::from_secs(60))
        .await;
    assert_eq!(
        setup
            .condition("offline", "Ready")
            .await
            .map(|c| c.0)
            .as_deref(),
        Some("True")
    );
    // Pods hold a session valid for a while yet: Healthy, the Ready message says renewal fails.
    let tp = setup.get("offline").await;
    health_case(
        "renewal-failing",
        &tp,
        Health::Healthy,
        Message::Condition("Ready"),
    );
    setup.operator.aws_link().restore();
    setup
        .wait_condition("offline", "Degraded", "False", Duration::from_secs(30))
        .await;
    assert_eq!(
        setup.owned_secrets("offline").await,
        1,
        "exactly one Secret after recovery"
    );
}

#[tokio::test]
#[ignore = "needs the local stack (tests/env/up.sh); make test runs it"]
async fn a_restarted_operator_mints_nothing_for_fresh_credentials() {
    let mut setup = setup("tp-restart").await;
    let names = ["a", "b", "c"];
    for name in names {
        setup.apply(name, "").await;
    }
    let mut before = BTreeMap::new();
    for name in names {
        setup
            .wait_condition(name, "Ready", "True", Duration::from_secs(10))
            .await;
        let tp = setup.partitions().get(name).await.expect("get");
        let key = value(
            &setup.secret(&format!("{name}-aws")).await.expect("Secret"),
            "AWS_ACCESS_KEY_ID",
        );
        before.insert(name, (key, tp.resource_version()));
    }
    setup.operator.restart().await;
    // Give the new process time to reconcile every partition once.
    eventually(
        Duration::from_secs(10),
        "reconciles after restart",
        || async {
            let text = setup.operator.metrics().await;
            let reconciles: f64 = text
                .lines()
                .find_map(|l| {
                    l.strip_prefix(
                        "securepipe_reconciles_total{controller=\"trainingpartition\"} ",
                    )?
                    .parse()
                    .ok()
                })
                .unwrap_or(0.0);
            (reconciles >= 3.0).then_some(())
        },
    )
    .await;
    assert_eq!(
        setup
            .operator
            .metric("securepipe_credentials_minted_total")
            .await,
        0.0
    );
    for name in names {
        let tp = setup.partitions().get(name).await.expect("get");
        let key = value(
            &setup.secret(&format!("{name}-aws")).await.expect("Secret"),
            "AWS_ACCESS_KEY_ID",
        );
        assert_eq!(
            (key, tp.resource_version()),
            before[name].clone(),
            "{name} changed after restart"
        );
    }
    let logs = setup.operator.stop().await;
    assert!(logs.contains("became the leader"), "{logs}");
}

#[tokio::test]
#[ignore = "needs the local stack (tests/env/up.sh); make test runs it"]
async fn two_replicas_mint_once_and_the_standby_takes_over() {
    let minted = "securepipe_credentials_minted_total";
    let mut setup = setup("tp-ha").await;
    // The second replica finds the lease held and stands by (ready, reconciling nothing).
    let standby = OperatorProcess::start(&setup.client, &setup.namespace).await;
    setup.apply("first", "").await;
    let first = eventually(Duration::from_secs(5), "Secret first-aws", || {
        setup.secret("first-aws")
    })
    .await;
    // The leader's follow-up reconcile (its own Secret and status writes start one) found
    // the fresh session and kept it; the standby runs no controller at all.
    setup
        .operator
        .wait_series(
            "securepipe_reconcile_outcomes_total{controller=\"trainingpartition\",outcome=\"Kept\"}",
            1.0,
            Duration::from_secs(10),
        )
        .await;
    assert_eq!(setup.operator.metric(minted).await, 1.0);
    assert_eq!(standby.metric("securepipe_leading").await, 0.0);
    assert_eq!(standby.metric(minted).await, 0.0, "the standby minted");
    assert!(!standby.logs().contains("became the leader"));

    // The leader stops (SIGTERM releases the lease): the standby leads from then on.
    let leader = std::mem::replace(&mut setup.operator, standby);
    let leader_logs = leader.stop().await;
    assert!(leader_logs.contains("became the leader"), "{leader_logs}");
    eventually(
        Duration::from_secs(10),
        "the standby to take the lease",
        || async {
            setup
                .operator
                .logs()
                .contains("became the leader")
                .then_some(())
        },
    )
    .await;
    setup.apply("second", "").await;
    eventually(Duration::from_secs(10), "Secret second-aws", || {
        setup.secret("second-aws")
    })
    .await;
    assert_eq!(
        setup.operator.metric(minted).await,
        1.0,
        "the new leader minted for `second` only; `first` is still fresh"
    );
    let first_now = setup.secret("first-aws").await.expect("Secret first-aws");
    assert_eq!(
        value(&first_now, "AWS_ACCESS_KEY_ID"),
        value(&first, "AWS_ACCESS_KEY_ID")
    );
    setup.operator.stop().await;
}

#[tokio::test]
#[ignore = "needs the local stack (tests/env/up.sh); make test runs it"]
async fn the_operator_role_is_least_privilege() {
    let client = client().await;
    let namespace = fresh_namespace(&client, "tp-rbac").await;
    // Applying the RBAC is part of starting the operator.
    let operator = OperatorProcess::start(&client, &namespace).await;
    let user = format!("system:serviceaccount:{OPERATOR_NAMESPACE}:{SERVICE_ACCOUNT}");
    let can = |group: &str, resource: &str, verb: &str, ns: &str| {
        let review = SubjectAccessReview {
            spec: SubjectAccessReviewSpec {
                user: Some(user.clone()),
                groups: Some(vec![
                    "system:serviceaccounts".to_owned(),
                    "system:authenticated".to_owned(),
                ]),
                resource_attributes: Some(ResourceAttributes {
                    group: Some(group.to_owned()),
                    resource: Some(resource.to_owned()),
                    verb: Some(verb.to_owned()),
                    namespace: Some(ns.to_owned()),
                    ..ResourceAttributes::default()
                }),
                ..SubjectAccessReviewSpec::default()
            },
            ..SubjectAccessReview::default()
        };
        let client = client.clone();
        async move {
            let reviews: Api<SubjectAccessReview> = Api::all(client);
            reviews
                .create(&PostParams::default(), &review)
                .await
                .expect("SubjectAccessReview")
                .status
                .is_some_and(|s| s.allowed)
        }
    };
    for (group, resource, verb) in [
        ("securepipe.io", "trainingpartitions", "watch"),
        ("securepipe.io", "trainingpartitions/status", "patch"),
        ("", "secrets", "patch"),
        ("events.k8s.io", "events", "create"),
        ("coordination.k8s.io", "leases", "update"),
        // Extraction: worker Jobs, and their Pods read for the worker's summary.
        ("batch", "jobs", "create"),
        ("batch", "jobs", "watch"),
        ("", "pods", "list"),
    ] {
        assert!(
            can(group, resource, verb, &namespace).await,
            "{verb} {resource} must be allowed"
        );
    }
    for (group, resource, verb, ns) in [
        (
            "securepipe.io",
            "trainingpartitions",
            "delete",
            namespace.as_str(),
        ),
        (
            "securepipe.io",
            "trainingpartitions",
            "create",
            namespace.as_str(),
        ),
        ("", "configmaps", "get", namespace.as_str()),
        // Secrets only in the tenant namespaces (config/rbac/tenant-role.yaml bound there).
        ("", "secrets", "get", "default"),
        ("", "secrets", "list", ""),
        // Worker Jobs too: a Job runs Pods under any ServiceAccount of its namespace.
        ("batch", "jobs", "create", "default"),
        ("batch", "jobs", "list", ""),
        ("", "pods", "list", "default"),
        ("", "pods", "create", namespace.as_str()),
        ("", "pods/log", "get", namespace.as_str()),
        ("", "pods/exec", "create", namespace.as_str()),
        ("batch", "jobs", "update", namespace.as_str()),
        (
            "rbac.authorization.k8s.io",
            "roles",
            "create",
            namespace.as_str(),
        ),
        ("coordination.k8s.io", "leases", "update", "default"),
        (
            "apiextensions.k8s.io",
            "customresourcedefinitions",
            "create",
            "",
        ),
    ] {
        assert!(
            !can(group, resource, verb, ns).await,
            "{verb} {resource} in {ns:?} must be denied"
        );
    }
    // Stopped right after it started (before the first list may have completed): the
    // controllers stop at once instead of draining into the 10 s timeout.
    let logs = operator.stop().await;
    assert!(
        logs.contains("controllers stopped") && !logs.contains("still draining"),
        "{logs}"
    );
}
