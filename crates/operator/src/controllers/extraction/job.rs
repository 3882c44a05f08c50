//! The worker Job of one scan (pure): `securepipe worker` with the worker Secret's
//! credentials and the partition's settings in its environment, PodSecurity `restricted`,
//! no ServiceAccount token, bounded in time and retries, owned by the TrainingPartition and
//! labelled so a NetworkPolicy can select its Pods. `parallelism` N > 1 makes an Indexed
//! Job whose N Pods each take one shard.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::batch::v1::{Job, JobSpec};
use k8s_openapi::api::core::v1::{
    Capabilities, Container, EnvVar, EnvVarSource, PodSecurityContext, PodSpec, PodTemplateSpec,
    ResourceRequirements, SeccompProfile, SecretKeySelector, SecurityContext,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::api::ObjectMeta;
use kube::{Resource, ResourceExt};
use securepipe_api::TrainingPartition;
use securepipe_api::training_partition::{ExtractionSpec, FeatureSpec};
use securepipe_api::worker as env;
use sha2::{Digest, Sha256};

use super::super::training_partition::{LABEL_MANAGED_BY, LABEL_PARTITION};
use super::session::WorkerPlan;
use super::settings::WorkerSettings;

pub const MANAGED_BY: &str = "securepipe";
/// Selects worker Pods (NetworkPolicy, `kubectl get pods -l`).
pub const LABEL_COMPONENT: &str = "app.kubernetes.io/component";
pub const COMPONENT_WORKER: &str = "extraction-worker";
pub const LABEL_NAME: &str = "app.kubernetes.io/name";
pub const CONTAINER: &str = "worker";
/// The worker's user, as in the image (distroless `nonroot`).
const RUN_AS: i64 = 65532;
/// Kubernetes names of Jobs are label values (`batch.kubernetes.io/job-name`): 63 at most.
const MAX_JOB_NAME: usize = 63;
/// The Secret keys the worker's AWS SDK reads from its environment.
const CREDENTIAL_KEYS: [&str; 4] = [
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_REGION",
];

/// The labels of every worker Job and Pod of `tp`.
pub fn labels(tp: &TrainingPartition) -> BTreeMap<String, String> {
    [
        (LABEL_MANAGED_BY, MANAGED_BY.to_owned()),
        (LABEL_PARTITION, tp.name_any()),
        (LABEL_NAME, "securepipe".to_owned()),
        (LABEL_COMPONENT, COMPONENT_WORKER.to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

/// The label selector of `tp`'s worker Jobs.
pub fn selector(tp: &TrainingPartition) -> String {
    format!(
        "{LABEL_MANAGED_BY}={MANAGED_BY},{LABEL_COMPONENT}={COMPONENT_WORKER},{LABEL_PARTITION}={}",
        tp.name_any()
    )
}

/// `<name>-shred-<5 hex>`, the hash over the partition's UID and `seed` (the scan time),
/// the name cut so the whole fits 63 characters.
pub fn job_name(tp: &TrainingPartition, seed: &str) -> String {
    let mut digest = Sha256::new();
    digest.update(tp.meta().uid.as_deref().unwrap_or_default().as_bytes());
    digest.update([0]);
    digest.update(seed.as_bytes());
    let hash: String = digest.finalize()[..3]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let suffix = format!("-shred-{}", &hash[..5]);
    let name = tp.name_any();
    let keep = MAX_JOB_NAME - suffix.len();
    let base = name.get(..keep.min(name.len())).unwrap_or(&name);
    format!("{}{suffix}", base.trim_end_matches(['-', '.']))
}

/// Everything a Job needs besides the TrainingPartition.
pub struct JobInputs<'a> {
    pub name: &'a str,
    pub extraction: &'a ExtractionSpec,
    pub plan: &'a WorkerPlan,
    pub settings: &'a WorkerSettings,
    /// The longest the Job may run: the configured deadline, cut to what is left of the
    /// held session.
    pub deadline: Duration,
}

/// The Job for one run over `tp`'s raw samples.
pub fn build(tp: &TrainingPartition, inputs: &JobInputs<'_>) -> Job {
    let extraction = inputs.extraction;
    let shards = extraction.parallelism.max(1);
    let image = extraction
        .image
        .clone()
        .unwrap_or_else(|| inputs.settings.image.clone());
    let labels = labels(tp);
    let mut annotations = BTreeMap::new();
    annotations.insert(
        "securepipe.io/training-partition-generation".to_owned(),
        tp.meta().generation.unwrap_or_default().to_string(),
    );
    let spec = JobSpec {
        backoff_limit: Some(inputs.settings.backoff_limit),
        active_deadline_seconds: Some(seconds(inputs.deadline).max(1)),
        ttl_seconds_after_finished: Some(
            i32::try_from(inputs.settings.ttl_after_finished.as_secs()).unwrap_or(i32::MAX),
        ),
        completions: Some(shards),
        parallelism: Some(shards),
        completion_mode: (shards > 1).then(|| "Indexed".to_owned()),
        template: PodTemplateSpec {
            metadata: Some(ObjectMeta {
                labels: Some(labels.clone()),
                ..ObjectMeta::default()
            }),
            spec: Some(pod_spec(inputs, image, shards, &extraction.features)),
        },
        ..JobSpec::default()
    };
    Job {
        metadata: ObjectMeta {
            name: Some(inputs.name.to_owned()),
            namespace: tp.namespace(),
            labels: Some(labels),
            annotations: Some(annotations),
            owner_references: tp.controller_owner_ref(&()).map(|owner| vec![owner]),
            ..ObjectMeta::default()
        },
        spec: Some(spec),
        ..Job::default()
    }
}

fn seconds(duration: Duration) -> i64 {
    i64::try_from(duration.as_secs()).unwrap_or(i64::MAX)
}

fn pod_spec(inputs: &JobInputs<'_>, image: String, shards: i32, features: &FeatureSpec) -> PodSpec {
    let settings = inputs.settings;
    let plan = inputs.plan;
    let mut vars: Vec<(&str, String)> = vec![
        (env::ENV_BUCKET, plan.bucket.clone()),
        (env::ENV_REGION, plan.session.region.clone()),
        (env::ENV_PARTITION, plan.session.partition.clone()),
        (env::ENV_KMS_KEY_ARN, plan.kms_key_arn.clone()),
        (env::ENV_RAW_PREFIX, plan.raw_prefix.clone()),
        (env::ENV_FEATURE_PREFIX, plan.feature_prefix.clone()),
        (env::ENV_ATTESTATION_PREFIX, plan.attestation_prefix.clone()),
    ];
    vars.extend(env::feature_env(features));
    vars.push((env::ENV_PARALLELISM, settings.samples_in_flight.to_string()));
    vars.push((env::ENV_RUN_ID, inputs.name.to_owned()));
    vars.push((env::ENV_SHARD_COUNT, shards.to_string()));
    vars.push((env::ENV_LOG_JSON, "true".to_owned()));
    if settings.s3_force_path_style {
        vars.push((env::ENV_S3_FORCE_PATH_STYLE, "true".to_owned()));
    }
    if let Some(endpoint) = &settings.aws_endpoint_url {
        vars.push(("AWS_ENDPOINT_URL", endpoint.clone()));
    }
    let mut env_vars: Vec<EnvVar> = vars
        .into_iter()
        .map(|(name, value)| EnvVar {
            name: name.to_owned(),
            value: Some(value),
            value_from: None,
        })
        .collect();
    env_vars.extend(CREDENTIAL_KEYS.iter().map(|key| EnvVar {
        name: (*key).to_owned(),
        value: None,
        value_from: Some(EnvVarSource {
            secret_key_ref: Some(SecretKeySelector {
                name: plan.session.secret_name.clone(),
                key: (*key).to_owned(),
                optional: Some(false),
            }),
            ..EnvVarSource::default()
        }),
    }));
    let quantities = |map: &BTreeMap<String, String>| {
        (!map.is_empty()).then(|| {
            map.iter()
                .map(|(k, v)| (k.clone(), Quantity(v.clone())))
                .collect()
        })
    };
    PodSpec {
        restart_policy: Some("Never".to_owned()),
        automount_service_account_token: Some(false),
        enable_service_links: Some(false),
        termination_grace_period_seconds: Some(30),
        security_context: Some(PodSecurityContext {
            run_as_non_root: Some(true),
            run_as_user: Some(RUN_AS),
            run_as_group: Some(RUN_AS),
            seccomp_profile: Some(SeccompProfile {
                type_: "RuntimeDefault".to_owned(),
                localhost_profile: None,
            }),
            ..PodSecurityContext::default()
        }),
        containers: vec![Container {
            name: CONTAINER.to_owned(),
            image: Some(image),
            image_pull_policy: Some(settings.image_pull_policy.clone()),
            args: Some(vec!["worker".to_owned()]),
            env: Some(env_vars),
            resources: Some(ResourceRequirements {
                requests: quantities(&settings.requests),
                limits: quantities(&settings.limits),
                ..ResourceRequirements::default()
            }),
            security_context: Some(SecurityContext {
                allow_privilege_escalation: Some(false),
                read_only_root_filesystem: Some(true),
                run_as_non_root: Some(true),
                privileged: Some(false),
                capabilities: Some(Capabilities {
                    drop: Some(vec!["ALL".to_owned()]),
                    add: None,
                }),
                ..SecurityContext::default()
            }),
            // The worker writes its summary there; the operator reads it from Pod status.
            termination_message_policy: Some("FallbackToLogsOnError".to_owned()),
            ..Container::default()
        }],
        ..PodSpec::default()
    }
}

#[cfg(test)]
mod tests {
    use super::super::session::tests::partition;
    use super::super::session::worker_plan;
    use super::*;

    fn built(tp: &TrainingPartition, settings: &WorkerSettings) -> Job {
        let plan = worker_plan("ml", "speech", tp).unwrap();
        let extraction = tp.spec.extraction.clone().unwrap();
        build(
            tp,
            &JobInputs {
                name: "speech-shred-abcde",
                extraction: &extraction,
                plan: &plan,
                settings,
                deadline: Duration::from_secs(1800),
            },
        )
    }

    fn env_of(job: &Job) -> BTreeMap<String, EnvVar> {
        job.spec
            .as_ref()
            .unwrap()
            .template
            .spec
            .as_ref()
            .unwrap()
            .containers[0]
            .env
            .clone()
            .unwrap()
            .into_iter()
            .map(|var| (var.name.clone(), var))
            .collect()
    }

    #[test]
    fn one_pod_runs_the_worker_restricted_with_the_worker_secret() {
        let tp = partition("");
        let settings = WorkerSettings::default();
        let job = built(&tp, &settings);
        let owner = &job.metadata.owner_references.as_ref().unwrap()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.uid.as_str()),
            ("TrainingPartition", "0f9e-uid")
        );
        assert_eq!(owner.controller, Some(true));
        let spec = job.spec.as_ref().unwrap();
        assert_eq!(spec.backoff_limit, Some(2));
        assert_eq!(spec.active_deadline_seconds, Some(1800));
        assert_eq!(spec.ttl_seconds_after_finished, Some(3600));
        assert_eq!((spec.completions, spec.parallelism), (Some(1), Some(1)));
        assert_eq!(spec.completion_mode, None);
        let pod = spec.template.spec.as_ref().unwrap();
        assert_eq!(pod.automount_service_account_token, Some(false));
        assert_eq!(pod.restart_policy.as_deref(), Some("Never"));
        let pod_security = pod.security_context.as_ref().unwrap();
        assert_eq!(pod_security.run_as_non_root, Some(true));
        assert_eq!(pod_security.run_as_user, Some(65532));
        assert_eq!(
            pod_security
                .seccomp_profile
                .as_ref()
                .map(|p| p.type_.as_str()),
            Some("RuntimeDefault")
        );
        let container = &pod.containers[0];
        assert_eq!(container.image.as_deref(), Some(settings.image.as_str()));
        assert_eq!(container.args, Some(vec!["worker".to_owned()]));
        let security = container.security_context.as_ref().unwrap();
        assert_eq!(security.read_only_root_filesystem, Some(true));
        assert_eq!(security.allow_privilege_escalation, Some(false));
        assert_eq!(
            security.capabilities.as_ref().and_then(|c| c.drop.clone()),
            Some(vec!["ALL".to_owned()])
        );
        let resources = container.resources.as_ref().unwrap();
        assert_eq!(resources.requests.as_ref().unwrap()["cpu"].0, "250m");
        assert_eq!(resources.limits.as_ref().unwrap()["memory"].0, "1Gi");
        let env = env_of(&job);
        let value = |name: &str| env[name].value.clone().unwrap();
        assert_eq!(value("SECUREPIPE_BUCKET"), "biometrics");
        assert_eq!(value("SECUREPIPE_PARTITION"), "speech");
        assert_eq!(
            value("SECUREPIPE_KMS_KEY_ARN"),
            "arn:aws:kms:eu-west-1:123456789012:key/k1"
        );
        assert_eq!(value("SECUREPIPE_RUN_ID"), "speech-shred-abcde");
        assert_eq!(value("SECUREPIPE_SHARD_COUNT"), "1");
        assert_eq!(value("SECUREPIPE_KIND"), "mfcc");
        assert!(!env.contains_key("AWS_ENDPOINT_URL"));
        for key in CREDENTIAL_KEYS {
            let from = env[key]
                .value_from
                .as_ref()
                .unwrap()
                .secret_key_ref
                .as_ref()
                .unwrap();
            assert_eq!(
                (from.name.as_str(), from.key.as_str()),
                ("speech-worker-aws", key)
            );
            assert!(env[key].value.is_none(), "no credential value in the Job");
        }
        let labels = job
            .spec
            .as_ref()
            .unwrap()
            .template
            .metadata
            .as_ref()
            .unwrap()
            .labels
            .clone()
            .unwrap();
        assert_eq!(labels[LABEL_COMPONENT], COMPONENT_WORKER);
        assert_eq!(labels[LABEL_PARTITION], "speech");
    }

    #[test]
    fn parallelism_makes_an_indexed_job_of_that_many_shards() {
        let tp = partition("    parallelism: 3\n    image: registry.example/worker:2\n");
        let settings = WorkerSettings {
            aws_endpoint_url: Some("http://10.244.0.1:4566".to_owned()),
            s3_force_path_style: true,
            ..WorkerSettings::default()
        };
        let job = built(&tp, &settings);
        let spec = job.spec.as_ref().unwrap();
        assert_eq!((spec.completions, spec.parallelism), (Some(3), Some(3)));
        assert_eq!(spec.completion_mode.as_deref(), Some("Indexed"));
        let env = env_of(&job);
        assert_eq!(env["SECUREPIPE_SHARD_COUNT"].value.as_deref(), Some("3"));
        assert!(
            !env.contains_key("SECUREPIPE_SHARD_INDEX"),
            "JOB_COMPLETION_INDEX decides"
        );
        assert_eq!(
            env["AWS_ENDPOINT_URL"].value.as_deref(),
            Some("http://10.244.0.1:4566")
        );
        assert_eq!(
            env["SECUREPIPE_S3_FORCE_PATH_STYLE"].value.as_deref(),
            Some("true")
        );
        let container = &spec.template.spec.as_ref().unwrap().containers[0];
        assert_eq!(
            container.image.as_deref(),
            Some("registry.example/worker:2")
        );
    }

    #[test]
    fn job_names_fit_a_label_and_differ_per_scan() {
        let tp = partition("");
        let one = job_name(&tp, "2026-11-30T08:00:00Z");
        assert!(
            one.starts_with("speech-shred-") && one.len() == "speech-shred-".len() + 5,
            "{one}"
        );
        assert_ne!(one, job_name(&tp, "2026-11-30T08:05:00Z"));
        assert_eq!(one, job_name(&tp, "2026-11-30T08:00:00Z"));
        let mut long = tp.clone();
        long.metadata.name = Some(format!("{}-x", "a".repeat(200)));
        assert!(job_name(&long, "t").len() <= 63);
    }
}
