//! Real Pods on the local stack's node (tests/env/node.sh): a Job runs to completion,
//! Pods use a TrainingPartition's credentials (environment and mounted
//! `credential_process`, across a renewal), PodSecurity "restricted" admits what the
//! README shows and refuses a privileged Pod, a missing image fails clearly, and the kind
//! suite's scenarios (tests/e2e/scenarios.sh) pass. Also checks that the image
//! tests/env/image.sh assembles and the Dockerfile describe the same container.
//!
//! Pods run the images `make node-images` imports (`imagePullPolicy: Never`): busybox
//! and the AWS probe (tests/examples/aws_probe.rs). They reach LocalStack through the
//! relay on the bridge address (`SECUREPIPE_POD_AWS_ENDPOINT_URL`); nothing leaves the
//! machine.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Namespace, Pod, Secret};
use kube::api::{Api, LogParams, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use securepipe_api::TrainingPartition;
use securepipe_tests::operator::OperatorProcess;
use securepipe_tests::{
    FIELD_MANAGER, client, eventually, fresh_namespace, install_crds, repo_root,
};
use serde_json::Value;

const BUSYBOX: &str = "docker.io/library/securepipe-busybox:1";
const PROBE: &str = "docker.io/library/securepipe-probe:local";

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: start the stack with its node (tests/env/up.sh, not SECUREPIPE_NODE=0) and source target/env/env.sh")
    })
}

/// A fresh namespace enforcing PodSecurity "restricted".
async fn restricted_namespace(client: &Client, prefix: &str) -> String {
    let namespace = fresh_namespace(client, prefix).await;
    let labels = serde_json::json!({"metadata": {"labels": {
        "pod-security.kubernetes.io/enforce": "restricted",
        "pod-security.kubernetes.io/warn": "restricted",
    }}});
    Api::<Namespace>::all(client.clone())
        .patch(&namespace, &PatchParams::default(), &Patch::Merge(&labels))
        .await
        .unwrap_or_else(|err| panic!("label namespace {namespace}: {err}"));
    namespace
}

/// The securityContext PodSecurity "restricted" requires, as the README's consumer Pod has it.
const RESTRICTED_POD: &str = "securityContext: {runAsNonRoot: true, runAsUser: 65532, runAsGroup: 65532, seccompProfile: {type: RuntimeDefault}}";
const RESTRICTED_CONTAINER: &str =
    "securityContext: {allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}";

async fn create_pod(client: &Client, namespace: &str, yaml: &str) -> Pod {
    let pod: Pod =
        serde_yaml::from_str(yaml).unwrap_or_else(|err| panic!("Pod YAML: {err}\n{yaml}"));
    Api::<Pod>::namespaced(client.clone(), namespace)
        .create(&PostParams::default(), &pod)
        .await
        .unwrap_or_else(|err| panic!("create Pod {}: {err}", pod.name_any()))
}

async fn pod(client: &Client, namespace: &str, name: &str) -> Pod {
    Api::<Pod>::namespaced(client.clone(), namespace)
        .get(name)
        .await
        .unwrap_or_else(|err| panic!("get Pod {namespace}/{name}: {err}"))
}

/// Deletes a Pod that would otherwise keep running (or retrying) after its test.
async fn delete_pod(client: &Client, namespace: &str, name: &str) {
    Api::<Pod>::namespaced(client.clone(), namespace)
        .delete(name, &kube::api::DeleteParams::default())
        .await
        .unwrap_or_else(|err| panic!("delete Pod {namespace}/{name}: {err}"));
}

async fn logs(client: &Client, namespace: &str, name: &str) -> String {
    Api::<Pod>::namespaced(client.clone(), namespace)
        .logs(name, &LogParams::default())
        .await
        .unwrap_or_default()
}

/// Waits for the Pod's phase to be `phase`; fails at once on another terminal phase.
async fn wait_phase(client: &Client, namespace: &str, name: &str, phase: &str, timeout: Duration) {
    let what = format!("Pod {namespace}/{name} {phase}");
    eventually(timeout, &what, || async {
        let current = pod(client, namespace, name).await.status?.phase?;
        if current != phase && (current == "Failed" || current == "Succeeded") {
            panic!(
                "Pod {namespace}/{name} is {current}, not {phase}; logs:\n{}",
                logs(client, namespace, name).await
            );
        }
        (current == phase).then_some(())
    })
    .await;
}

/// A bucket with one object under `prefix`, and an IAM role, in LocalStack (host side).
async fn aws_setup(bucket: &str, prefix: &str, role: &str) -> String {
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&sdk)
            .force_path_style(true)
            .build(),
    );
    s3.create_bucket()
        .bucket(bucket)
        .send()
        .await
        .expect("create bucket");
    s3.put_object()
        .bucket(bucket)
        .key(format!("{prefix}sample-0001.npy"))
        .body(b"features".to_vec().into())
        .send()
        .await
        .expect("put object");
    let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"*"},"Action":["sts:AssumeRole","sts:TagSession","sts:SetSourceIdentity"]}]}"#;
    aws_sdk_iam::Client::new(&sdk)
        .create_role()
        .role_name(role)
        .assume_role_policy_document(trust)
        .send()
        .await
        .expect("create role")
        .role
        .expect("created role")
        .arn
}

/// A TrainingPartition `voice` served by the real operator (a host process watching only
/// this namespace), and its Secret.
struct Partition {
    client: Client,
    namespace: String,
    bucket: String,
    _operator: OperatorProcess,
}

impl Partition {
    async fn create(prefix: &str, credentials: &str) -> Self {
        let client = client().await;
        install_crds(&client).await;
        let namespace = restricted_namespace(&client, prefix).await;
        let bucket = format!("node-{namespace}");
        let role_arn = aws_setup(
            &bucket,
            "training/features/voice/",
            &format!("trainer-{namespace}"),
        )
        .await;
        let operator = OperatorProcess::start(&client, &namespace).await;
        let yaml = format!(
            "apiVersion: securepipe.io/v1alpha1\nkind: TrainingPartition\nmetadata: {{name: voice}}\nspec:\n  bucket: {bucket}\n  region: us-east-1\n  roleArn: {role_arn}\n  credentials: {credentials}\n"
        );
        let tp: TrainingPartition = serde_yaml::from_str(&yaml).expect("TrainingPartition YAML");
        Api::<TrainingPartition>::namespaced(client.clone(), &namespace)
            .patch(
                "voice",
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(&tp),
            )
            .await
            .expect("apply TrainingPartition");
        let partition = Self {
            client,
            namespace,
            bucket,
            _operator: operator,
        };
        eventually(Duration::from_secs(30), "Secret voice-aws", || {
            partition.secret()
        })
        .await;
        partition
    }

    async fn secret(&self) -> Option<Secret> {
        Api::<Secret>::namespaced(self.client.clone(), &self.namespace)
            .get_opt("voice-aws")
            .await
            .expect("read Secret")
    }

    async fn access_key_id(&self) -> String {
        let secret = self.secret().await.expect("Secret voice-aws");
        let bytes = &secret.data.as_ref().expect("Secret data")["AWS_ACCESS_KEY_ID"].0;
        String::from_utf8(bytes.clone()).expect("UTF-8 access key id")
    }

    async fn session_name(&self) -> String {
        let tp = Api::<TrainingPartition>::namespaced(self.client.clone(), &self.namespace)
            .get("voice")
            .await
            .expect("get TrainingPartition");
        tp.status
            .and_then(|s| s.credentials)
            .map(|c| c.session_name)
            .expect("status.credentials.sessionName")
    }
}

/// The probe's JSON lines from a Pod's logs.
fn probe_lines(logs: &str) -> Vec<Value> {
    logs.lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .collect()
}

#[tokio::test]
#[ignore = "needs the local stack with its node (tests/env/up.sh); make test runs it"]
async fn the_node_is_ready_and_runs_a_job_to_completion() {
    let client = client().await;
    let node_name = env("SECUREPIPE_NODE_NAME");
    let node = Api::<k8s_openapi::api::core::v1::Node>::all(client.clone())
        .get(&node_name)
        .await
        .expect("get the node");
    let ready = node
        .status
        .and_then(|s| s.conditions)
        .unwrap_or_default()
        .into_iter()
        .find(|c| c.type_ == "Ready")
        .map(|c| c.status);
    assert_eq!(
        ready.as_deref(),
        Some("True"),
        "node {node_name} is not Ready"
    );

    let namespace = restricted_namespace(&client, "node-job").await;
    let job: Job = serde_yaml::from_str(&format!(
        "metadata: {{name: sum}}
spec:
  backoffLimit: 0
  template:
    spec:
      restartPolicy: Never
      terminationGracePeriodSeconds: 1
      {RESTRICTED_POD}
      containers:
        - name: sum
          image: {BUSYBOX}
          imagePullPolicy: Never
          command: [sh, -c, 'echo $((6 * 7)) from $(hostname); cat /sys/fs/cgroup/memory/memory.limit_in_bytes']
          resources: {{limits: {{memory: 32Mi}}}}
          {RESTRICTED_CONTAINER}
"
    ))
    .expect("Job YAML");
    let jobs = Api::<Job>::namespaced(client.clone(), &namespace);
    let started = Instant::now();
    jobs.create(&PostParams::default(), &job)
        .await
        .expect("create Job");
    eventually(Duration::from_secs(60), "Job sum Complete", || async {
        let status = jobs.get("sum").await.ok()?.status?;
        if status.failed.unwrap_or(0) > 0 {
            panic!("Job sum failed: {status:?}");
        }
        (status.succeeded == Some(1)).then_some(())
    })
    .await;
    println!("Job complete {:?} after create", started.elapsed());
    let pods = Api::<Pod>::namespaced(client.clone(), &namespace)
        .list(&kube::api::ListParams::default().labels("job-name=sum"))
        .await
        .expect("list the Job's Pods");
    let pod = &pods.items[0];
    assert_eq!(
        pod.spec.as_ref().and_then(|s| s.node_name.as_deref()),
        Some(node_name.as_str())
    );
    let output = logs(&client, &namespace, &pod.name_any()).await;
    // The shell ran, and the memory limit is the Pod's cgroup limit (32 MiB).
    assert!(output.starts_with("42 from "), "{output}");
    assert!(
        output.contains(&(32 * 1024 * 1024).to_string()),
        "no 32 MiB limit in: {output}"
    );
}

#[tokio::test]
#[ignore = "needs the local stack with its node (tests/env/up.sh); make test runs it"]
async fn a_pod_with_the_secret_as_environment_calls_sts_and_lists_its_prefix() {
    let partition = Partition::create("node-env", "{}").await;
    let (client, namespace) = (&partition.client, &partition.namespace);
    create_pod(
        client,
        namespace,
        &format!(
            "metadata: {{name: env-consumer}}
spec:
  restartPolicy: Never
  terminationGracePeriodSeconds: 1
  {RESTRICTED_POD}
  containers:
    - name: probe
      image: {PROBE}
      imagePullPolicy: Never
      args: [identity, {bucket}, training/features/voice/]
      envFrom: [{{secretRef: {{name: voice-aws}}}}]
      env: [{{name: AWS_ENDPOINT_URL, value: '{endpoint}'}}]
      {RESTRICTED_CONTAINER}
",
            bucket = partition.bucket,
            endpoint = env("SECUREPIPE_POD_AWS_ENDPOINT_URL"),
        ),
    )
    .await;
    wait_phase(
        client,
        namespace,
        "env-consumer",
        "Succeeded",
        Duration::from_secs(60),
    )
    .await;
    let output = logs(client, namespace, "env-consumer").await;
    let line = probe_lines(&output)
        .pop()
        .unwrap_or_else(|| panic!("no probe output: {output}"));
    let session = partition.session_name().await;
    assert!(
        line["arn"]
            .as_str()
            .unwrap_or_default()
            .ends_with(&format!("/{session}")),
        "caller is not the partition's session {session}: {line}"
    );
    assert_eq!(
        line["access_key_id"].as_str(),
        Some(partition.access_key_id().await.as_str())
    );
    assert_eq!(
        line["keys"],
        serde_json::json!(["training/features/voice/sample-0001.npy"])
    );
}

#[tokio::test]
#[ignore = "needs the local stack with its node (tests/env/up.sh); make test runs it"]
async fn a_running_pod_sees_renewed_credentials_through_credential_process() {
    // Renewed about every 10 s (15-minute sessions, renewed 14m50s before expiry).
    let partition = Partition::create("node-renew", "{duration: 15m, renewBefore: 14m50s}").await;
    let (client, namespace) = (&partition.client, &partition.namespace);
    create_pod(
        client,
        namespace,
        &format!(
            "metadata: {{name: volume-consumer}}
spec:
  terminationGracePeriodSeconds: 1
  {RESTRICTED_POD}
  containers:
    - name: probe
      image: {PROBE}
      imagePullPolicy: Never
      args: [watch, '1']
      env:
        - {{name: AWS_CONFIG_FILE, value: /var/run/securepipe/aws/config}}
        - {{name: AWS_SHARED_CREDENTIALS_FILE, value: /dev/null}}
        - {{name: AWS_SDK_LOAD_CONFIG, value: '1'}}
        - {{name: AWS_ENDPOINT_URL, value: '{endpoint}'}}
      volumeMounts: [{{name: aws, mountPath: /var/run/securepipe/aws, readOnly: true}}]
      {RESTRICTED_CONTAINER}
  volumes: [{{name: aws, secret: {{secretName: voice-aws}}}}]
",
            endpoint = env("SECUREPIPE_POD_AWS_ENDPOINT_URL"),
        ),
    )
    .await;
    wait_phase(
        client,
        namespace,
        "volume-consumer",
        "Running",
        Duration::from_secs(60),
    )
    .await;
    let uid = pod(client, namespace, "volume-consumer").await.uid();

    // The Pod reports the key in the Secret, then, without restarting, a later one.
    let seen = |wanted_not: Option<String>| async move {
        let output = logs(client, namespace, "volume-consumer").await;
        let keys: Vec<String> = probe_lines(&output)
            .iter()
            .filter(|l| {
                l["arn"]
                    .as_str()
                    .is_some_and(|a| a.contains(":assumed-role/"))
            })
            .filter_map(|l| l["access_key_id"].as_str().map(str::to_owned))
            .collect();
        keys.last()
            .filter(|k| Some(*k) != wanted_not.as_ref())
            .cloned()
    };
    let first = eventually(
        Duration::from_secs(30),
        "a first identity from the Pod",
        || seen(None),
    )
    .await;
    let started = Instant::now();
    let later = eventually(
        Duration::from_secs(90),
        "a renewed key seen by the Pod",
        || seen(Some(first.clone())),
    )
    .await;
    println!("the Pod saw {later} {:?} after {first}", started.elapsed());
    let now = pod(client, namespace, "volume-consumer").await;
    assert_eq!(now.uid(), uid, "the Pod was replaced");
    let restarts: i32 = now
        .status
        .and_then(|s| s.container_statuses)
        .unwrap_or_default()
        .iter()
        .map(|c| c.restart_count)
        .sum();
    assert_eq!(restarts, 0, "the Pod restarted to see the renewal");
    // Each key the Pod used was a session of this partition's role.
    let output = logs(client, namespace, "volume-consumer").await;
    for line in probe_lines(&output) {
        if let Some(arn) = line["arn"].as_str() {
            assert!(
                arn.contains(&format!("assumed-role/trainer-{namespace}/")),
                "{line}"
            );
        }
    }
    delete_pod(client, namespace, "volume-consumer").await;
}

#[tokio::test]
#[ignore = "needs the local stack with its node (tests/env/up.sh); make test runs it"]
async fn a_restricted_namespace_refuses_a_privileged_pod() {
    let client = client().await;
    let namespace = restricted_namespace(&client, "node-psa").await;
    let pod: Pod = serde_yaml::from_str(&format!(
        "metadata: {{name: privileged}}
spec:
  containers:
    - name: c
      image: {BUSYBOX}
      imagePullPolicy: Never
      securityContext: {{privileged: true}}
"
    ))
    .expect("Pod YAML");
    let err = Api::<Pod>::namespaced(client.clone(), &namespace)
        .create(&PostParams::default(), &pod)
        .await
        .expect_err("a privileged Pod was admitted in a restricted namespace");
    let message = err.to_string();
    assert!(
        message.contains("violates PodSecurity \"restricted:latest\""),
        "{message}"
    );
    assert!(message.contains("privileged"), "{message}");
}

#[tokio::test]
#[ignore = "needs the local stack with its node (tests/env/up.sh); make test runs it"]
async fn a_missing_image_is_reported_as_err_image_never_pull() {
    let client = client().await;
    let namespace = restricted_namespace(&client, "node-noimage").await;
    create_pod(
        &client,
        &namespace,
        &format!(
            "metadata: {{name: missing}}
spec:
  terminationGracePeriodSeconds: 1
  {RESTRICTED_POD}
  containers:
    - name: c
      image: docker.io/library/securepipe-not-imported:none
      imagePullPolicy: Never
      {RESTRICTED_CONTAINER}
"
        ),
    )
    .await;
    let started = Instant::now();
    let message = eventually(Duration::from_secs(60), "ErrImageNeverPull", || async {
        let status = pod(&client, &namespace, "missing").await.status?;
        let waiting = status.container_statuses?.first()?.state.clone()?.waiting?;
        (waiting.reason.as_deref() == Some("ErrImageNeverPull")).then_some(waiting.message)
    })
    .await;
    println!(
        "ErrImageNeverPull {:?} after create: {message:?}",
        started.elapsed()
    );
    assert!(
        message
            .unwrap_or_default()
            .contains("securepipe-not-imported:none"),
        "the message names the image"
    );
    delete_pod(&client, &namespace, "missing").await;
}

#[test]
#[ignore = "needs the local stack with its node (tests/env/up.sh); make test runs it"]
fn the_kind_scenarios_pass_on_the_local_node() {
    let started = Instant::now();
    let output = Command::new(repo_root().join("tests/e2e/node.sh"))
        .output()
        .expect("run tests/e2e/node.sh");
    let stdout = String::from_utf8_lossy(&output.stdout);
    println!("{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    assert!(
        output.status.success(),
        "tests/e2e/node.sh failed: {:?}",
        output.status
    );
    assert!(stdout.contains("scenarios PASSED"), "no PASSED line");
    println!("scenarios passed in {:?}", started.elapsed());
}

/// The image's config (from the archive tests/env/image.sh wrote) and the Dockerfile's
/// instructions agree on entrypoint, command, user, ports and labels.
#[test]
#[ignore = "needs the image (make node-images or make image); make test builds it"]
fn the_assembled_image_and_the_dockerfile_describe_the_same_container() {
    let root = repo_root();
    let archive = root.join("target/image/securepipe.oci.tar");
    let read = |member: &str| -> Vec<u8> {
        let out = Command::new("tar")
            .arg("-xOf")
            .arg(&archive)
            .arg(member)
            .output()
            .expect("run tar");
        assert!(
            out.status.success(),
            "tar -xOf {} {member}",
            archive.display()
        );
        out.stdout
    };
    let json = |bytes: Vec<u8>| -> Value { serde_json::from_slice(&bytes).expect("JSON") };
    let blob = |digest: &str| format!("blobs/sha256/{}", digest.trim_start_matches("sha256:"));
    let index = json(read("index.json"));
    let manifest = json(read(&blob(
        index["manifests"][0]["digest"]
            .as_str()
            .expect("manifest digest"),
    )));
    let config = json(read(&blob(
        manifest["config"]["digest"]
            .as_str()
            .expect("config digest"),
    )))["config"]
        .clone();

    let dockerfile = Dockerfile::parse(&root.join("Dockerfile"));
    let version = workspace_version(&root.join("Cargo.toml"));
    assert_eq!(
        config["Entrypoint"],
        serde_json::json!(dockerfile.entrypoint)
    );
    assert_eq!(config["Cmd"], serde_json::json!(dockerfile.cmd));
    assert_eq!(config["User"].as_str(), Some(dockerfile.user.as_str()));
    let ports: Vec<&str> = config["ExposedPorts"]
        .as_object()
        .map(|p| p.keys().map(String::as_str).collect())
        .unwrap_or_default();
    let expected_ports: Vec<String> = dockerfile
        .expose
        .iter()
        .map(|p| format!("{p}/tcp"))
        .collect();
    assert_eq!(ports, expected_ports);
    let labels: BTreeMap<String, String> =
        serde_json::from_value(config["Labels"].clone()).expect("image labels");
    let expected: BTreeMap<String, String> = dockerfile
        .labels
        .into_iter()
        .map(|(k, v)| (k, v.replace("${VERSION}", &version)))
        .collect();
    assert_eq!(labels, expected);
    assert!(!labels.is_empty());
}

/// The runtime stage's instructions the image must match.
struct Dockerfile {
    entrypoint: Vec<String>,
    cmd: Vec<String>,
    user: String,
    expose: Vec<String>,
    labels: BTreeMap<String, String>,
}

impl Dockerfile {
    fn parse(path: &Path) -> Self {
        let text = std::fs::read_to_string(path).expect("read Dockerfile");
        // Continuation lines joined; only the last stage (the runtime image) counts.
        let joined = text.replace("\\\n", " ");
        let stage = joined
            .rsplit_once("\nFROM ")
            .map(|(_, s)| s)
            .expect("a FROM line");
        let mut file = Self {
            entrypoint: Vec::new(),
            cmd: Vec::new(),
            user: String::new(),
            expose: Vec::new(),
            labels: BTreeMap::new(),
        };
        for line in stage.lines().map(str::trim) {
            let Some((instruction, rest)) = line.split_once(' ') else {
                continue;
            };
            match instruction {
                "ENTRYPOINT" => {
                    file.entrypoint = serde_json::from_str(rest).expect("ENTRYPOINT JSON")
                }
                "CMD" => file.cmd = serde_json::from_str(rest).expect("CMD JSON"),
                "USER" => file.user = rest.trim().to_owned(),
                "EXPOSE" => file.expose = rest.split_whitespace().map(str::to_owned).collect(),
                "LABEL" => file.labels = parse_labels(rest),
                _ => {}
            }
        }
        file
    }
}

/// `key="value" key="value"...` of a LABEL instruction.
fn parse_labels(mut rest: &str) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    loop {
        rest = rest.trim_start();
        let Some((key, after)) = rest.split_once("=\"") else {
            break;
        };
        let (value, after) = after
            .split_once('"')
            .expect("closing quote of a label value");
        labels.insert(key.trim().to_owned(), value.to_owned());
        rest = after;
    }
    labels
}

fn workspace_version(path: &Path) -> String {
    let text = std::fs::read_to_string(path).expect("read Cargo.toml");
    text.lines()
        .find_map(|l| l.strip_prefix("version = \""))
        .and_then(|v| v.strip_suffix('"'))
        .expect("workspace version")
        .to_owned()
}
