//! Extraction end to end: the real operator (as its ServiceAccount) launches worker Jobs
//! that run for real on the local stack's node (tests/env/node.sh), in namespaces that
//! enforce PodSecurity "restricted", against LocalStack.
//!
//! Worker Pods run the image `make node-images` imports (`docker.io/library/securepipe:local`,
//! never pulled) and reach LocalStack through the relay on the bridge address
//! (`SECUREPIPE_POD_AWS_ENDPOINT_URL`), or through an [`AwsLink`] bound on the bridge
//! address when a test cuts them off. Raw samples are encrypted by `securepipe encrypt`
//! with the partition's encryption context.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{BucketVersioningStatus, VersioningConfiguration};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Namespace, Pod, Secret};
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, DeleteParams, ListParams, ObjectMeta, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use securepipe_api::TrainingPartition;
use securepipe_api::training_partition::ExtractionStatus;
use securepipe_tests::audio::cli_encrypt;
use securepipe_tests::aws_link::AwsLink;
use securepipe_tests::gitops::{Health, Message, health_case};
use securepipe_tests::localstack::{
    assume_role_count, create_role, inline_policies, recorded_sts_session,
};
use securepipe_tests::operator::OperatorProcess;
use securepipe_tests::{
    FIELD_MANAGER, client, eventually, fresh_namespace, install_crds, suite_grant_name,
};
use serde_json::{Value, json};

/// The image `make node-images` imports into the node.
const IMAGE: &str = "docker.io/library/securepipe:local";
const NAME: &str = "voice";
/// The shortest interval the CRD accepts.
const INTERVAL: &str = "10s";
/// A Job on the node: Pod start, a debug-build worker, a few one-second samples.
const JOB_TIMEOUT: Duration = Duration::from_secs(180);

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: start the stack with its node (tests/env/up.sh) and source target/env/env.sh")
    })
}

async fn sdk() -> aws_config::SdkConfig {
    env("AWS_ENDPOINT_URL");
    aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await
}

fn s3(sdk: &aws_config::SdkConfig) -> aws_sdk_s3::Client {
    aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(sdk)
            .force_path_style(true)
            .build(),
    )
}

/// One test's world: a namespace enforcing PodSecurity "restricted", granted extraction
/// with its own KMS key; a versioned bucket; a role; the operator.
struct World {
    client: Client,
    namespace: String,
    bucket: String,
    role_arn: String,
    kms_key_arn: String,
    s3: aws_sdk_s3::Client,
    dir: PathBuf,
    operator: OperatorProcess,
}

/// How worker Pods reach LocalStack: through the relay, or through a link the test cuts.
enum PodLink<'a> {
    Relay,
    Link(&'a AwsLink),
}

async fn world(prefix: &str, pod_link: PodLink<'_>) -> World {
    let client = client().await;
    install_crds(&client).await;
    let namespace = restricted_namespace(&client, prefix).await;
    let sdk = sdk().await;
    let s3 = s3(&sdk);
    let bucket = format!("biometrics-{namespace}");
    s3.create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .unwrap_or_else(|err| panic!("create bucket {bucket}: {err:?}"));
    s3.put_bucket_versioning()
        .bucket(&bucket)
        .versioning_configuration(
            VersioningConfiguration::builder()
                .status(BucketVersioningStatus::Enabled)
                .build(),
        )
        .send()
        .await
        .expect("enable versioning");
    let kms_key_arn = aws_sdk_kms::Client::new(&sdk)
        .create_key()
        .description(format!("securepipe extraction suite {namespace}"))
        .send()
        .await
        .expect("KMS CreateKey")
        .key_metadata()
        .and_then(|m| m.arn())
        .expect("key ARN")
        .to_owned();
    grant_extraction(&client, &namespace, &kms_key_arn).await;
    let role_arn = create_role(&format!("trainer-{namespace}")).await;
    let operator = start_operator(&client, &namespace, &pod_link).await;
    // Next to the operator's logs (target/stack-tests/<namespace>/), not in /tmp.
    let dir = securepipe_tests::repo_root()
        .join("target/stack-tests")
        .join(&namespace)
        .join("samples");
    std::fs::create_dir_all(&dir).expect("work dir");
    World {
        client,
        namespace,
        bucket,
        role_arn,
        kms_key_arn,
        s3,
        dir,
        operator,
    }
}

/// The operator as the chart runs it, with the node's image and endpoint for workers.
/// Through the relay a Job keeps the default retries (a Pod on a loaded machine can time
/// out once); behind a link the test cuts, none: the first failing Pod fails the Job.
async fn start_operator(
    client: &Client,
    namespace: &str,
    pod_link: &PodLink<'_>,
) -> OperatorProcess {
    let (endpoint, backoff_limit) = match pod_link {
        PodLink::Relay => (env("SECUREPIPE_POD_AWS_ENDPOINT_URL"), "2"),
        PodLink::Link(link) => (link.endpoint_url(), "0"),
    };
    let args: Vec<String> = [
        "--worker-image",
        IMAGE,
        "--worker-image-pull-policy",
        "Never",
        "--worker-aws-endpoint-url",
        &endpoint,
        "--worker-backoff-limit",
        backoff_limit,
        "--worker-cpu-request",
        "50m",
        "--worker-memory-request",
        "64Mi",
        "--worker-memory-limit",
        "512Mi",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    OperatorProcess::start_with(client, namespace, &args).await
}

async fn restricted_namespace(client: &Client, prefix: &str) -> String {
    let namespace = fresh_namespace(client, prefix).await;
    let labels = json!({"metadata": {"labels": {
        "pod-security.kubernetes.io/enforce": "restricted",
        "pod-security.kubernetes.io/warn": "restricted",
    }}});
    Api::<Namespace>::all(client.clone())
        .patch(&namespace, &PatchParams::default(), &Patch::Merge(&labels))
        .await
        .unwrap_or_else(|err| panic!("label namespace {namespace}: {err}"));
    namespace
}

/// Adds extraction with `kms_key_arn` to the suite's grant for `namespace`.
async fn grant_extraction(client: &Client, namespace: &str, kms_key_arn: &str) {
    let name = suite_grant_name(namespace);
    let patch = json!({
        "apiVersion": "securepipe.io/v1alpha1",
        "kind": "TenantGrant",
        "metadata": {"name": name},
        "spec": {"extraction": {"kmsKeyArns": [kms_key_arn]}},
    });
    Api::<securepipe_api::tenant_grant::TenantGrant>::all(client.clone())
        .patch(
            &name,
            &PatchParams::apply("securepipe-tests-extraction").force(),
            &Patch::Apply(&patch),
        )
        .await
        .unwrap_or_else(|err| panic!("grant extraction to {namespace}: {err}"));
}

impl World {
    fn partitions(&self) -> Api<TrainingPartition> {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    fn jobs(&self) -> Api<Job> {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    /// Deletes the worker Jobs and their Pods: a Pod that can never start would otherwise
    /// stay on the node, retried by the kubelet, through the suites that follow.
    async fn remove_jobs(&self) {
        let background = DeleteParams::background();
        for job in self.worker_jobs().await {
            let _ = self.jobs().delete(&job.name_any(), &background).await;
        }
    }

    fn secrets(&self) -> Api<Secret> {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    /// Applies TrainingPartition `voice`; `extraction` adds lines to `spec.extraction`
    /// (`enabled: false` replaces the default `enabled: true`).
    async fn apply(&self, extraction: &str, credentials: &str) {
        let enabled = if extraction.contains("enabled:") {
            ""
        } else {
            "    enabled: true\n"
        };
        let yaml = format!(
            "apiVersion: securepipe.io/v1alpha1\nkind: TrainingPartition\nmetadata: {{name: {NAME}}}\nspec:\n  bucket: {bucket}\n  region: us-east-1\n  roleArn: {role}\n  credentials: {credentials}\n  extraction:\n{enabled}    kmsKeyArn: {key}\n    interval: {INTERVAL}\n{extraction}",
            bucket = self.bucket,
            role = self.role_arn,
            key = self.kms_key_arn,
        );
        let tp: TrainingPartition = serde_yaml::from_str(&yaml).expect("TrainingPartition YAML");
        self.partitions()
            .patch(
                NAME,
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(&tp),
            )
            .await
            .unwrap_or_else(|err| panic!("apply TrainingPartition: {err}"));
    }

    /// Uploads `count` samples encrypted for partition `voice` (`s0.wav`, ...) and
    /// returns their keys.
    async fn upload_samples(&self, count: u32) -> Vec<String> {
        let mut keys = Vec::new();
        for i in 0..count {
            let plain = self.dir.join(format!("s{i}.wav"));
            std::fs::write(&plain, wav(16_000, 0.5, i + 1)).expect("write WAV");
            let message = self.dir.join(format!("s{i}.msg"));
            cli_encrypt(&self.kms_key_arn, Some(NAME), &plain, &message).await;
            let key = format!("ingestion/raw/{NAME}/s{i}.wav");
            self.put(&key, std::fs::read(&message).expect("read message"))
                .await;
            keys.push(key);
        }
        keys
    }

    async fn put(&self, key: &str, bytes: Vec<u8>) {
        self.s3
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .body(ByteStream::from(bytes))
            .send()
            .await
            .unwrap_or_else(|err| panic!("put {key}: {err:?}"));
    }

    /// Every key with a version (or delete marker) under the partition's raw folder.
    async fn raw_keys(&self) -> BTreeSet<String> {
        let listed = self
            .s3
            .list_object_versions()
            .bucket(&self.bucket)
            .prefix(format!("ingestion/raw/{NAME}/"))
            .send()
            .await
            .expect("list versions");
        listed
            .versions()
            .iter()
            .filter_map(|v| v.key())
            .chain(listed.delete_markers().iter().filter_map(|m| m.key()))
            .map(str::to_owned)
            .collect()
    }

    async fn keys(&self, prefix: &str) -> Vec<String> {
        self.s3
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(prefix)
            .send()
            .await
            .expect("list objects")
            .contents()
            .iter()
            .filter_map(|o| o.key().map(str::to_owned))
            .collect()
    }

    async fn object(&self, key: &str) -> Vec<u8> {
        self.s3
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .unwrap_or_else(|err| panic!("get {key}: {err:?}"))
            .body
            .collect()
            .await
            .expect("read body")
            .into_bytes()
            .to_vec()
    }

    async fn worker_jobs(&self) -> Vec<Job> {
        self.jobs()
            .list(&ListParams::default().labels(&format!(
                "app.kubernetes.io/component=extraction-worker,securepipe.io/training-partition={NAME}"
            )))
            .await
            .expect("list Jobs")
            .items
    }

    async fn partition(&self) -> TrainingPartition {
        self.partitions()
            .get(NAME)
            .await
            .expect("get TrainingPartition")
    }

    async fn extraction(&self) -> ExtractionStatus {
        self.partition()
            .await
            .status
            .and_then(|s| s.extraction)
            .expect("status.extraction")
    }

    async fn condition(&self, type_: &str) -> Option<(String, String, String)> {
        let condition = self
            .partition()
            .await
            .status?
            .conditions
            .into_iter()
            .find(|c| c.type_ == type_)?;
        Some((condition.status, condition.reason, condition.message))
    }

    async fn wait_condition(&self, type_: &str, status: &str, reason: &str, timeout: Duration) {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let now = self.condition(type_).await;
            if now
                .as_ref()
                .is_some_and(|(s, r, _)| s == status && r == reason)
            {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out after {timeout:?} waiting for {type_}={status} ({reason}); last {now:?}\n{}",
                self.operator.logs()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The Job's terminal state, once it has one.
    async fn wait_job_finished(&self, name: &str) -> &'static str {
        eventually(JOB_TIMEOUT, &format!("Job {name} finished"), || async {
            let job = self.jobs().get(name).await.ok()?;
            let conditions = job.status?.conditions?;
            conditions.iter().find_map(|c| {
                (c.status == "True").then_some(())?;
                match c.type_.as_str() {
                    "Complete" => Some("Complete"),
                    "Failed" => Some("Failed"),
                    _ => None,
                }
            })
        })
        .await
    }

    /// Records the partition as the health-check case `name` (`make health-cases`): with
    /// extraction in any state but a failure only someone can fix, Argo CD says Healthy
    /// with `Ready`'s message. Waits until the status describes the current generation.
    async fn health_case(&self, name: &str) {
        let tp = eventually(
            Duration::from_secs(10),
            "the status of the current generation",
            || async {
                let tp = self.partition().await;
                let observed = tp.status.as_ref()?.observed_generation?;
                (Some(observed) == tp.metadata.generation).then_some(tp)
            },
        )
        .await;
        health_case(name, &tp, Health::Healthy, Message::Condition("Ready"));
    }

    async fn events(&self) -> Vec<(String, String)> {
        Api::<Event>::namespaced(self.client.clone(), &self.namespace)
            .list(&ListParams::default())
            .await
            .expect("list Events")
            .items
            .into_iter()
            .map(|e| (e.reason.unwrap_or_default(), e.note.unwrap_or_default()))
            .collect()
    }

    async fn secret_value(&self, name: &str, key: &str) -> String {
        let secret = self
            .secrets()
            .get(name)
            .await
            .unwrap_or_else(|err| panic!("get Secret {name}: {err}"));
        let bytes = &secret
            .data
            .as_ref()
            .and_then(|d| d.get(key))
            .unwrap_or_else(|| panic!("Secret {name} has no {key}"))
            .0;
        String::from_utf8(bytes.clone()).expect("UTF-8")
    }
}

/// A mono 16-bit WAV of `seconds` of speech-like audio (its pitch from `seed`).
fn wav(rate: u32, seconds: f32, seed: u32) -> Vec<u8> {
    securepipe_tests::audio::wav(rate, 1, 16, false, seconds, seed)
}

/// An environment variable: its literal value, or the Secret name and key it comes from.
type EnvValue = (Option<String>, Option<(String, String)>);

async fn the_one_job(world: &World) -> Job {
    eventually(
        Duration::from_secs(30),
        "a worker Job within one interval",
        || async { world.worker_jobs().await.into_iter().next() },
    )
    .await
}

#[tokio::test]
#[ignore = "needs the local stack with its node (tests/env/up.sh, make node-images); make test runs it"]
async fn pending_samples_are_shredded_by_one_restricted_job_on_the_node() {
    let world = world("extract-run", PodLink::Relay).await;
    let samples = world.upload_samples(3).await;
    // Not an Encryption SDK message: the worker quarantines it and keeps it.
    let bad = format!("ingestion/raw/{NAME}/plain.wav");
    world.put(&bad, wav(16_000, 0.2, 9)).await;
    world.apply("", "{}").await;

    let job = the_one_job(&world).await;
    let job_name = job.name_any();
    assert!(
        job_name.starts_with(&format!("{NAME}-shred-")),
        "{job_name}"
    );
    let tp = world.partition().await;
    let owner = &job.owner_references()[0];
    assert_eq!(owner.kind, "TrainingPartition");
    assert_eq!(Some(&owner.uid), tp.metadata.uid.as_ref());
    assert_eq!(owner.controller, Some(true));
    let spec = job.spec.clone().expect("Job spec");
    assert_eq!(spec.backoff_limit, Some(2));
    assert!(
        spec.active_deadline_seconds
            .is_some_and(|s| (60..=3600).contains(&s))
    );
    assert_eq!(spec.ttl_seconds_after_finished, Some(3600));
    assert_eq!((spec.completions, spec.parallelism), (Some(1), Some(1)));
    assert_eq!(spec.completion_mode.as_deref(), Some("NonIndexed"));
    let template = spec.template.clone();
    let labels = template
        .metadata
        .clone()
        .and_then(|m| m.labels)
        .expect("Pod labels");
    assert_eq!(labels["app.kubernetes.io/component"], "extraction-worker");
    assert_eq!(labels["app.kubernetes.io/managed-by"], "securepipe");
    assert_eq!(labels["securepipe.io/training-partition"], NAME);
    let pod = template.spec.clone().expect("Pod spec");
    assert_eq!(pod.automount_service_account_token, Some(false));
    assert_eq!(pod.restart_policy.as_deref(), Some("Never"));
    let pod_security = pod.security_context.clone().expect("Pod securityContext");
    assert_eq!(pod_security.run_as_non_root, Some(true));
    assert_eq!(pod_security.run_as_user, Some(65532));
    assert_eq!(
        pod_security.seccomp_profile.map(|p| p.type_),
        Some("RuntimeDefault".to_owned())
    );
    assert_eq!(pod.containers.len(), 1);
    let container = &pod.containers[0];
    assert_eq!(container.image.as_deref(), Some(IMAGE));
    assert_eq!(container.image_pull_policy.as_deref(), Some("Never"));
    assert_eq!(container.args, Some(vec!["worker".to_owned()]));
    let security = container
        .security_context
        .clone()
        .expect("container securityContext");
    assert_eq!(security.allow_privilege_escalation, Some(false));
    assert_eq!(security.read_only_root_filesystem, Some(true));
    assert_eq!(
        security.capabilities.and_then(|c| c.drop),
        Some(vec!["ALL".to_owned()])
    );
    let resources = container.resources.clone().expect("resources");
    assert_eq!(resources.requests.expect("requests")["cpu"].0, "50m");
    assert_eq!(resources.limits.expect("limits")["memory"].0, "512Mi");
    let vars: BTreeMap<String, EnvValue> = container
        .env
        .iter()
        .flatten()
        .map(|var| {
            let from = var
                .value_from
                .as_ref()
                .and_then(|f| f.secret_key_ref.as_ref())
                .map(|r| (r.name.clone(), r.key.clone()));
            (var.name.clone(), (var.value.clone(), from))
        })
        .collect();
    let plain = |name: &str| vars.get(name).and_then(|(v, _)| v.clone());
    assert_eq!(plain("SECUREPIPE_BUCKET"), Some(world.bucket.clone()));
    assert_eq!(plain("SECUREPIPE_REGION").as_deref(), Some("us-east-1"));
    assert_eq!(plain("SECUREPIPE_PARTITION").as_deref(), Some(NAME));
    assert_eq!(
        plain("SECUREPIPE_KMS_KEY_ARN"),
        Some(world.kms_key_arn.clone())
    );
    assert_eq!(
        plain("SECUREPIPE_RAW_PREFIX").as_deref(),
        Some("ingestion/raw/")
    );
    assert_eq!(
        plain("SECUREPIPE_FEATURE_PREFIX").as_deref(),
        Some("training/features/")
    );
    assert_eq!(
        plain("SECUREPIPE_ATTESTATION_PREFIX").as_deref(),
        Some("audit/")
    );
    assert_eq!(plain("SECUREPIPE_KIND").as_deref(), Some("mfcc"));
    assert_eq!(plain("SECUREPIPE_RUN_ID"), Some(job_name.clone()));
    assert_eq!(plain("SECUREPIPE_SHARD_COUNT").as_deref(), Some("1"));
    assert_eq!(
        plain("AWS_ENDPOINT_URL"),
        Some(env("SECUREPIPE_POD_AWS_ENDPOINT_URL"))
    );
    for key in [
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
    ] {
        assert_eq!(
            vars.get(key).cloned(),
            Some((None, Some((format!("{NAME}-worker-aws"), key.to_owned())))),
            "{key} comes from the worker Secret, never a literal"
        );
    }

    // PodSecurity "restricted" admits the template (a server-side dry run in this
    // namespace), and refuses it once one field is loosened: the check can fail.
    let pods: Api<Pod> = Api::namespaced(world.client.clone(), &world.namespace);
    let dry_run = PostParams {
        dry_run: true,
        field_manager: None,
    };
    let mut candidate = Pod {
        metadata: ObjectMeta {
            name: Some("worker-dry-run".to_owned()),
            labels: Some(labels.clone()),
            ..ObjectMeta::default()
        },
        spec: Some(pod.clone()),
        ..Pod::default()
    };
    pods.create(&dry_run, &candidate)
        .await
        .unwrap_or_else(|err| panic!("the worker Pod fails PodSecurity restricted: {err}"));
    if let Some(spec) = candidate.spec.as_mut() {
        spec.containers[0].security_context = None;
    }
    let refused = pods.create(&dry_run, &candidate).await;
    assert!(
        matches!(&refused, Err(kube::Error::Api(status)) if status.code == 403),
        "a container without its securityContext must be refused: {refused:?}"
    );

    // The Job runs on the node and completes.
    let finished = world.wait_job_finished(&job_name).await;
    assert_eq!(finished, "Complete", "{}", world.operator.logs());
    world
        .wait_condition(
            "Extracting",
            "False",
            "JobSucceeded",
            Duration::from_secs(30),
        )
        .await;
    world
        .wait_condition("Degraded", "False", "AsExpected", Duration::from_secs(10))
        .await;
    world.health_case("extraction-job-succeeded").await;
    let status = world.partition().await.status.expect("status");
    let extraction = status.extraction.expect("status.extraction");
    assert_eq!(extraction.shredded, 3, "{extraction:?}");
    assert_eq!(extraction.quarantined, 1, "{extraction:?}");
    assert_eq!(extraction.failed, 0, "{extraction:?}");
    assert_eq!(extraction.last_job.as_deref(), Some(job_name.as_str()));
    assert_eq!(extraction.active_job, None);

    // The raw prefix holds only the quarantined sample; every good one is a feature file.
    assert_eq!(world.raw_keys().await, BTreeSet::from([bad.clone()]));
    let features: BTreeSet<String> = world
        .keys(&format!("training/features/{NAME}/"))
        .await
        .into_iter()
        .collect();
    let expected: BTreeSet<String> = samples
        .iter()
        .map(|k| {
            k.replace("ingestion/raw/", "training/features/")
                .replace(".wav", ".npy")
        })
        .collect();
    assert_eq!(features, expected);
    let events = world.events().await;
    let note = |reason: &str| {
        events
            .iter()
            .find(|(r, _)| r == reason)
            .map(|(_, note)| note.clone())
            .unwrap_or_else(|| panic!("no {reason} Event in {events:?}"))
    };
    assert!(
        note("SamplesShredded").contains("shredded 3 raw samples"),
        "{events:?}"
    );
    assert!(
        note("SamplesQuarantined").contains("not-encrypted: 1"),
        "{events:?}"
    );
    assert!(note("ExtractionStarted").contains(&job_name), "{events:?}");
    world
        .operator
        .wait_series(
            "securepipe_samples_shredded_total",
            3.0,
            Duration::from_secs(5),
        )
        .await;
    assert_eq!(
        world
            .operator
            .series("securepipe_samples_quarantined_total{reason=\"not-encrypted\"}")
            .await,
        1.0
    );
    assert!(
        world
            .operator
            .metrics()
            .await
            .contains("securepipe_extraction_job_seconds_count{result=\"Succeeded\"} 1"),
    );

    // Another interval passes: the quarantined sample is not pending, no second Job.
    let scanned = extraction.last_scan_time.expect("lastScanTime").0;
    eventually(Duration::from_secs(30), "a scan after the Job", || async {
        let status = world.partition().await.status?.extraction?;
        (status.last_scan_time.as_ref()?.0 > scanned).then_some(status)
    })
    .await;
    let extraction = world.extraction().await;
    assert_eq!(extraction.pending, 0, "{extraction:?}");
    assert_eq!(world.worker_jobs().await.len(), 1, "no second Job");
    world
        .wait_condition(
            "Extracting",
            "False",
            "NothingPending",
            Duration::from_secs(5),
        )
        .await;
    world.health_case("extraction-nothing-pending").await;
    world.operator.stop().await;
}

#[tokio::test]
#[ignore = "needs the local stack with its node (tests/env/up.sh, make node-images); make test runs it"]
async fn an_indexed_job_of_three_splits_the_samples_and_none_is_processed_twice() {
    let world = world("extract-shards", PodLink::Relay).await;
    let samples: BTreeSet<String> = world.upload_samples(9).await.into_iter().collect();
    world.apply("    parallelism: 3\n", "{}").await;
    let job = the_one_job(&world).await;
    let spec = job.spec.clone().expect("Job spec");
    assert_eq!(spec.completion_mode.as_deref(), Some("Indexed"));
    assert_eq!((spec.completions, spec.parallelism), (Some(3), Some(3)));
    let finished = world.wait_job_finished(&job.name_any()).await;
    assert_eq!(finished, "Complete", "{}", world.operator.logs());
    let pods: Api<Pod> = Api::namespaced(world.client.clone(), &world.namespace);
    let ran = pods
        .list(
            &ListParams::default()
                .labels(&format!("batch.kubernetes.io/job-name={}", job.name_any())),
        )
        .await
        .expect("list Pods")
        .items;
    let indexes: BTreeSet<String> = ran
        .iter()
        .filter_map(|p| {
            p.annotations()
                .get("batch.kubernetes.io/job-completion-index")
                .cloned()
        })
        .collect();
    assert_eq!(
        indexes,
        BTreeSet::from(["0".into(), "1".into(), "2".into()])
    );

    // One attestation per shard; together they name every sample exactly once.
    let attestations = world.keys(&format!("audit/{NAME}/")).await;
    assert_eq!(attestations.len(), 3, "{attestations:?}");
    let mut seen: Vec<String> = Vec::new();
    for key in &attestations {
        assert!(
            key.contains("-shard-") && key.ends_with("-of-3.json"),
            "{key}"
        );
        let document: Value = serde_json::from_slice(&world.object(key).await).expect("JSON");
        for sample in document["samples"].as_array().expect("samples") {
            seen.push(sample["sourceKey"].as_str().expect("sourceKey").to_owned());
        }
    }
    let distinct: BTreeSet<String> = seen.iter().cloned().collect();
    assert_eq!(
        seen.len(),
        distinct.len(),
        "a sample was processed twice: {seen:?}"
    );
    assert_eq!(distinct, samples);
    world
        .wait_condition(
            "Extracting",
            "False",
            "JobSucceeded",
            Duration::from_secs(30),
        )
        .await;
    let extraction = world.extraction().await;
    assert_eq!(extraction.shredded, 9, "{extraction:?}");
    assert!(world.raw_keys().await.is_empty());
    world.operator.stop().await;
}

#[tokio::test]
#[ignore = "needs the local stack with its node (tests/env/up.sh, make node-images); make test runs it"]
async fn a_failed_job_degrades_and_the_next_interval_succeeds() {
    let upstream = env("AWS_ENDPOINT_URL")
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    // Worker Pods reach LocalStack only through this link on the bridge address.
    let link = AwsLink::start_on(&env("SECUREPIPE_NODE_ADDRESS"), upstream).await;
    let world = world("extract-fail", PodLink::Link(&link)).await;
    world.upload_samples(2).await;
    link.cut();
    world.apply("", "{}").await;
    let first = the_one_job(&world).await;
    assert_eq!(world.wait_job_finished(&first.name_any()).await, "Failed");
    world
        .wait_condition("Extracting", "False", "JobFailed", Duration::from_secs(30))
        .await;
    world
        .wait_condition("Degraded", "True", "JobFailed", Duration::from_secs(10))
        .await;
    let (_, _, message) = world.condition("Degraded").await.expect("Degraded");
    assert!(message.contains(&first.name_any()), "{message}");
    // Retried at the next interval: not Stalled, and Healthy while the credentials work.
    let (stalled, retrying, _) = world.condition("Stalled").await.expect("Stalled");
    assert_eq!((stalled.as_str(), retrying.as_str()), ("False", "Retrying"));
    world.health_case("extraction-job-failed").await;
    assert_eq!(
        world.worker_jobs().await.len(),
        1,
        "the retry waits for the next interval"
    );
    assert_eq!(world.raw_keys().await.len(), 2, "nothing lost");

    link.restore();
    let second = eventually(
        Duration::from_secs(40),
        "the next interval's Job",
        || async {
            world
                .worker_jobs()
                .await
                .into_iter()
                .find(|j| j.name_any() != first.name_any())
        },
    )
    .await;
    assert_eq!(
        world.wait_job_finished(&second.name_any()).await,
        "Complete"
    );
    world
        .wait_condition(
            "Extracting",
            "False",
            "JobSucceeded",
            Duration::from_secs(30),
        )
        .await;
    world
        .wait_condition("Degraded", "False", "AsExpected", Duration::from_secs(10))
        .await;
    let extraction = world.extraction().await;
    assert_eq!(extraction.shredded, 2, "{extraction:?}");
    assert!(world.raw_keys().await.is_empty());
    assert!(
        world
            .events()
            .await
            .iter()
            .any(|(reason, _)| reason == "JobFailed")
    );
    world.operator.stop().await;
}

#[tokio::test]
#[ignore = "needs the local stack with its node (tests/env/up.sh, make node-images); make test runs it"]
async fn the_worker_session_policy_is_exactly_the_workers_steps() {
    let world = world("extract-policy", PodLink::Relay).await;
    world.apply("", "{}").await;
    let worker_secret = format!("{NAME}-worker-aws");
    eventually(Duration::from_secs(20), "the worker Secret", || async {
        world.secrets().get_opt(&worker_secret).await.ok().flatten()
    })
    .await;
    let ml_key = world
        .secret_value(&format!("{NAME}-aws"), "AWS_ACCESS_KEY_ID")
        .await;
    let worker_key = world
        .secret_value(&worker_secret, "AWS_ACCESS_KEY_ID")
        .await;
    assert_ne!(ml_key, worker_key, "two sessions");
    let worker = recorded_sts_session(&worker_key).await;
    let ml = recorded_sts_session(&ml_key).await;
    assert_eq!(worker.role_arn, world.role_arn);
    assert_eq!(
        worker.session_name,
        format!("spw-{}@{NAME}", world.namespace)
    );
    assert_eq!(
        worker.tags(),
        ml.tags(),
        "the same operator-set tags: revoked together"
    );
    assert_eq!(worker.tags()["securepipe:partition"], NAME);

    let bucket = format!("arn:aws:s3:::{}", world.bucket);
    let in_region = json!({"StringEquals": {"aws:RequestedRegion": "us-east-1"}});
    let expected = json!({
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "ListFolders", "Effect": "Allow",
                "Action": ["s3:ListBucket", "s3:ListBucketVersions"],
                "Resource": bucket,
                "Condition": {
                    "StringEquals": {"aws:RequestedRegion": "us-east-1"},
                    "StringLike": {"s3:prefix": [
                        format!("ingestion/raw/{NAME}/*"),
                        format!("training/features/{NAME}/*"),
                    ]},
                },
            },
            {
                "Sid": "BucketVersioning", "Effect": "Allow",
                "Action": ["s3:GetBucketVersioning"],
                "Resource": bucket,
                "Condition": in_region,
            },
            {
                "Sid": "RawSamples", "Effect": "Allow",
                "Action": [
                    "s3:GetObject", "s3:GetObjectVersion", "s3:DeleteObject",
                    "s3:DeleteObjectVersion", "s3:GetObjectTagging", "s3:PutObjectTagging",
                    "s3:GetObjectVersionTagging", "s3:PutObjectVersionTagging",
                ],
                "Resource": format!("{bucket}/ingestion/raw/{NAME}/*"),
                "Condition": in_region,
            },
            {
                "Sid": "Features", "Effect": "Allow",
                "Action": ["s3:PutObject", "s3:GetObject"],
                "Resource": format!("{bucket}/training/features/{NAME}/*"),
                "Condition": in_region,
            },
            {
                "Sid": "Attestations", "Effect": "Allow",
                "Action": ["s3:PutObject", "s3:GetObject"],
                "Resource": format!("{bucket}/audit/{NAME}/*"),
                "Condition": in_region,
            },
            {
                "Sid": "UnwrapPartitionKeys", "Effect": "Allow",
                "Action": "kms:Decrypt",
                "Resource": world.kms_key_arn,
                "Condition": {"StringEquals": {"kms:EncryptionContext:securepipe:partition": NAME}},
            },
        ]
    });
    let policy = worker
        .policy
        .expect("the worker session has an inline policy");
    assert!(policy.chars().count() <= 2048, "{policy}");
    let recorded: Value = serde_json::from_str(&policy).expect("policy JSON");
    assert_eq!(recorded, expected);

    // The ML team's session is unchanged: its feature prefix only, read-only by default.
    let ml_policy: Value =
        serde_json::from_str(&ml.policy.expect("ML policy")).expect("ML policy JSON");
    assert_eq!(
        ml_policy["Statement"][0]["Action"],
        json!(["s3:GetObject"]),
        "{ml_policy}"
    );
    assert_eq!(
        ml_policy["Statement"][0]["Resource"],
        format!("{bucket}/training/features/{NAME}/*")
    );
    assert_eq!(ml_policy["Statement"].as_array().map(Vec::len), Some(2));
    world.operator.stop().await;
}

#[tokio::test]
#[ignore = "needs the local stack with its node (tests/env/up.sh, make node-images); make test runs it"]
async fn deleting_the_partition_removes_jobs_and_both_secrets_and_revokes() {
    let world = world("extract-delete", PodLink::Relay).await;
    world.upload_samples(1).await;
    world.apply("", "{revokeOnDelete: true}").await;
    let job = the_one_job(&world).await;
    for secret in [format!("{NAME}-aws"), format!("{NAME}-worker-aws")] {
        eventually(
            Duration::from_secs(20),
            &format!("Secret {secret}"),
            || async { world.secrets().get_opt(&secret).await.ok().flatten() },
        )
        .await;
    }
    let worker_key = world
        .secret_value(&format!("{NAME}-worker-aws"), "AWS_ACCESS_KEY_ID")
        .await;
    let uid = world
        .partitions()
        .get(NAME)
        .await
        .expect("read TrainingPartition")
        .metadata
        .uid
        .expect("a UID");
    world
        .partitions()
        .delete(NAME, &DeleteParams::default())
        .await
        .expect("delete TrainingPartition");
    eventually(
        Duration::from_secs(60),
        "Jobs and both Secrets gone",
        || async {
            let jobs = world.jobs().get_opt(&job.name_any()).await.ok()?;
            let ml = world.secrets().get_opt(&format!("{NAME}-aws")).await.ok()?;
            let worker = world
                .secrets()
                .get_opt(&format!("{NAME}-worker-aws"))
                .await
                .ok()?;
            (jobs.is_none() && ml.is_none() && worker.is_none()).then_some(())
        },
    )
    .await;
    // Both sessions carry the TrainingPartition's UID tag, which the revocation denies.
    let worker_tags = recorded_sts_session(&worker_key).await;
    assert_eq!(
        worker_tags.tags().get("securepipe:uid"),
        Some(&uid.as_str())
    );
    let role_name = world.role_arn.rsplit('/').next().unwrap_or_default();
    let policies = inline_policies(role_name).await;
    let statements = policies
        .get("securepipe-revocations")
        .and_then(|document| document["Statement"].as_array().cloned())
        .expect("the role's revocation policy");
    assert!(
        statements.iter().any(|statement| {
            statement["Effect"] == "Deny"
                && statement["Condition"]["StringEquals"]["aws:PrincipalTag/securepipe:uid"]
                    .as_array()
                    .is_some_and(|uids| uids.iter().any(|u| u == uid.as_str()))
        }),
        "{statements:?}"
    );
    let events = world.events().await;
    assert!(
        events.iter().any(|(reason, _)| reason == "SessionsRevoked"),
        "{events:?}"
    );
    world.operator.stop().await;
}

#[tokio::test]
#[ignore = "needs the local stack with its node (tests/env/up.sh, make node-images); make test runs it"]
async fn with_two_replicas_only_the_leader_creates_jobs() {
    let world = world("extract-ha", PodLink::Relay).await;
    let standby = start_operator(&world.client, &world.namespace, &PodLink::Relay).await;
    world.upload_samples(1).await;
    world.apply("", "{}").await;
    let job = the_one_job(&world).await;
    assert_eq!(world.wait_job_finished(&job.name_any()).await, "Complete");
    world
        .wait_condition(
            "Extracting",
            "False",
            "JobSucceeded",
            Duration::from_secs(30),
        )
        .await;
    assert_eq!(world.worker_jobs().await.len(), 1);
    assert_eq!(standby.metric("securepipe_leading").await, 0.0);
    let leader_logs = world.operator.logs();
    assert!(leader_logs.contains("worker Job created"), "{leader_logs}");
    let standby_logs = standby.stop().await;
    assert!(
        !standby_logs.contains("worker Job created"),
        "{standby_logs}"
    );
    assert_eq!(
        world
            .operator
            .series("securepipe_reconcile_outcomes_total{controller=\"extraction\",outcome=\"JobStarted\"}")
            .await,
        1.0
    );
    world.operator.stop().await;
}

#[tokio::test]
#[ignore = "needs the local stack with its node (tests/env/up.sh, make node-images); make test runs it"]
async fn a_spec_change_keeps_the_running_job_and_disabling_starts_none() {
    let world = world("extract-toggle", PodLink::Relay).await;
    world.upload_samples(2).await;
    world.apply("", "{}").await;
    let job = the_one_job(&world).await;
    // A spec change while the Job runs (the features change): the Job is not touched.
    world
        .apply("    features: {kind: LogMel, nMels: 40}\n", "{}")
        .await;
    assert_eq!(world.wait_job_finished(&job.name_any()).await, "Complete");
    assert_eq!(
        world.worker_jobs().await.len(),
        1,
        "no second Job for the same samples"
    );
    world
        .wait_condition(
            "Extracting",
            "False",
            "JobSucceeded",
            Duration::from_secs(30),
        )
        .await;

    // Off: new samples wait, no Job starts, the worker session is withdrawn.
    world.apply("    enabled: false\n", "{}").await;
    world
        .wait_condition(
            "Extracting",
            "False",
            "ExtractionDisabled",
            Duration::from_secs(20),
        )
        .await;
    world.health_case("extraction-disabled").await;
    world.upload_samples(1).await;
    eventually(
        Duration::from_secs(20),
        "the worker Secret removed",
        || async {
            world
                .secrets()
                .get_opt(&format!("{NAME}-worker-aws"))
                .await
                .ok()?
                .is_none()
                .then_some(())
        },
    )
    .await;
    // Two intervals pass without a Job.
    tokio::time::sleep(Duration::from_secs(20)).await;
    assert_eq!(
        world.worker_jobs().await.len(),
        1,
        "a Job started while disabled"
    );
    assert_eq!(world.raw_keys().await.len(), 1, "the new sample waits");
    world.operator.stop().await;
}

#[tokio::test]
#[ignore = "needs the local stack with its node (tests/env/up.sh, make node-images); make test runs it"]
async fn a_job_whose_pod_cannot_start_is_reported_running_and_blocks_a_second() {
    let world = world("extract-stuck", PodLink::Relay).await;
    world.upload_samples(1).await;
    // An image the node does not have, never pulled: the Pod waits, the Job stays active.
    world
        .apply("    image: securepipe.invalid/absent:never\n", "{}")
        .await;
    let job = the_one_job(&world).await;
    world
        .wait_condition("Extracting", "True", "JobRunning", Duration::from_secs(30))
        .await;
    world.health_case("extraction-job-running").await;
    // Another interval passes: still one Job.
    tokio::time::sleep(Duration::from_secs(12)).await; // INTERVAL and a margin
    let jobs = world.worker_jobs().await;
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    assert_eq!(jobs[0].name_any(), job.name_any());
    world.remove_jobs().await;
    world.operator.stop().await;
}

#[tokio::test]
#[ignore = "needs the local stack with its node (tests/env/up.sh, make node-images); make test runs it"]
async fn a_worker_policy_over_the_sts_limit_is_refused_before_minting() {
    let world = world("extract-large", PodLink::Relay).await;
    // A raw prefix admission accepts (512 characters at most) that the worker policy names
    // twice: with the other folders and the key, more than STS's 2,048 characters.
    let raw = format!("ingestion/{}/", "r".repeat(480));
    let grant = json!({
        "apiVersion": "securepipe.io/v1alpha1",
        "kind": "TenantGrant",
        "metadata": {"name": suite_grant_name(&world.namespace)},
        "spec": {"extraction": {"kmsKeyArns": [world.kms_key_arn], "rawPrefixes": [raw]}},
    });
    Api::<securepipe_api::tenant_grant::TenantGrant>::all(world.client.clone())
        .patch(
            &suite_grant_name(&world.namespace),
            &PatchParams::apply("securepipe-tests-extraction").force(),
            &Patch::Apply(&grant),
        )
        .await
        .expect("grant the long raw prefix");
    let yaml = format!(
        "apiVersion: securepipe.io/v1alpha1\nkind: TrainingPartition\nmetadata: {{name: {NAME}}}\nspec:\n  bucket: {bucket}\n  region: us-east-1\n  roleArn: {role}\n  rawPrefix: {raw}\n  extraction:\n    enabled: true\n    kmsKeyArn: {key}\n    interval: {INTERVAL}\n",
        bucket = world.bucket,
        role = world.role_arn,
        key = world.kms_key_arn,
    );
    let tp: TrainingPartition = serde_yaml::from_str(&yaml).expect("TrainingPartition YAML");
    world
        .partitions()
        .patch(
            NAME,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&tp),
        )
        .await
        .expect("apply TrainingPartition");
    world
        .wait_condition(
            "Extracting",
            "False",
            "PolicyTooLarge",
            Duration::from_secs(30),
        )
        .await;
    let (_, _, message) = world.condition("Extracting").await.unwrap_or_default();
    assert!(
        message.contains("2048") || message.contains("2,048"),
        "{message}"
    );
    // Only someone can fix it: the credentials side reports it too, Stalled.
    world
        .wait_condition("Stalled", "True", "PolicyTooLarge", Duration::from_secs(30))
        .await;
    let tp = world.partition().await;
    health_case(
        "extraction-policy-too-large",
        &tp,
        Health::Degraded,
        Message::Condition("Stalled"),
    );
    // Refused before STS: no worker session, no Secret, no Job; the ML session is minted.
    assert_eq!(
        assume_role_count(&format!("spw-{}@{NAME}", world.namespace)).await,
        0
    );
    assert!(
        world
            .secrets()
            .get_opt(&format!("{NAME}-worker-aws"))
            .await
            .ok()
            .flatten()
            .is_none()
    );
    assert!(world.worker_jobs().await.is_empty());
    world.operator.stop().await;
}

#[tokio::test]
#[ignore = "needs the local stack with its node (tests/env/up.sh, make node-images); make test runs it"]
async fn results_come_from_the_attestation_when_the_pods_are_gone() {
    let mut world = world("extract-attested", PodLink::Relay).await;
    world.upload_samples(2).await;
    world.apply("", "{}").await;
    let job = the_one_job(&world).await;
    let job_name = job.name_any();
    // The operator is away while the Job runs, and its Pods (with their termination
    // messages) are removed before it is back.
    world.operator.pause().await;
    let counted_before = world
        .partition()
        .await
        .status
        .and_then(|s| s.extraction)
        .and_then(|e| e.last_job);
    assert_eq!(
        counted_before, None,
        "the Job ended before the operator stopped"
    );
    assert_eq!(world.wait_job_finished(&job_name).await, "Complete");
    let pods: Api<Pod> = Api::namespaced(world.client.clone(), &world.namespace);
    let of_job = ListParams::default().labels(&format!("batch.kubernetes.io/job-name={job_name}"));
    pods.delete_collection(&DeleteParams::default(), &of_job)
        .await
        .expect("delete the Job's Pods");
    eventually(Duration::from_secs(30), "the Job's Pods gone", || async {
        pods.list(&of_job)
            .await
            .ok()?
            .items
            .is_empty()
            .then_some(())
    })
    .await;

    world.operator.resume().await;
    let extraction = eventually(Duration::from_secs(60), "the Job counted", || async {
        let extraction = world.partition().await.status?.extraction?;
        (extraction.last_job.as_deref() == Some(job_name.as_str())).then_some(extraction)
    })
    .await;
    assert_eq!(extraction.shredded, 2, "{extraction:?}");
    assert_eq!(extraction.quarantined, 0, "{extraction:?}");
    let events = world.events().await;
    assert!(
        events
            .iter()
            .any(|(reason, note)| reason == "SamplesShredded" && note.contains("shredded 2")),
        "{events:?}"
    );
    world.operator.stop().await;
}

#[tokio::test]
#[ignore = "needs the local stack with its node (tests/env/up.sh, make node-images); make test runs it"]
async fn a_backlog_larger_than_one_listing_is_reported_as_1000_plus() {
    let world = world("extract-backlog", PodLink::Relay).await;
    // 1,001 pending keys (their content does not matter: no Job runs them).
    let mut puts = tokio::task::JoinSet::new();
    for i in 0..1001 {
        let s3 = world.s3.clone();
        let bucket = world.bucket.clone();
        puts.spawn(async move {
            s3.put_object()
                .bucket(bucket)
                .key(format!("ingestion/raw/{NAME}/backlog/{i:04}.wav"))
                .body(ByteStream::from_static(b"x"))
                .send()
                .await
                .map(|_| ())
        });
        if puts.len() >= 16
            && let Some(put) = puts.join_next().await
        {
            put.expect("put task").expect("put a raw key");
        }
    }
    while let Some(put) = puts.join_next().await {
        put.expect("put task").expect("put a raw key");
    }
    // A worker image the node does not have: the Job waits, nothing is shredded.
    world
        .apply("    image: securepipe.invalid/absent:never\n", "{}")
        .await;
    let extraction = eventually(Duration::from_secs(30), "the scan's count", || async {
        let extraction = world.partition().await.status?.extraction?;
        extraction.last_scan_time.is_some().then_some(extraction)
    })
    .await;
    assert_eq!(extraction.pending, 1000, "{extraction:?}");
    assert!(extraction.pending_capped, "{extraction:?}");
    world.remove_jobs().await;
    world.operator.stop().await;
}
