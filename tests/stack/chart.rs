//! The Helm chart (`charts/securepipe`) checked against the repository and the real
//! apiserver:
//! - its `crds/` are byte-identical to the generated `crds/`, and its appVersion is the
//!   workspace version (as is the Dockerfile's default `VERSION`);
//! - `helm lint --strict` passes for the defaults and every values variant below;
//! - its rendered RBAC is exactly `config/rbac/` (the RBAC the stack suites run the
//!   operator under), and its Deployment runs hardened with the probes and grace period
//!   the operator needs;
//! - every rendered object passes `kubectl apply --dry-run=server` on the local stack,
//!   in a namespace that warns on PodSecurity `restricted` violations, with none reported.
//!
//! helm comes from `SECUREPIPE_HELM`, else `tests/env/install-helm.sh` (builds it into
//! the cache once; `make test` runs the script first).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::api::rbac::v1::PolicyRule;
use kube::api::{Api, Patch, PatchParams};
use securepipe_tests::{FIELD_MANAGER, client, fresh_namespace, repo_root};
use serde::Deserialize;
use serde_json::Value;

const RELEASE: &str = "securepipe";
const KUBE_VERSION: &str = "1.37.2";

/// Values variants rendered, linted and dry-run besides the defaults. `{ns}` is replaced
/// by the test's namespace.
const VARIANTS: &[(&str, &[&str])] = &[
    ("defaults", &[]),
    (
        "one namespace, IRSA, LocalStack",
        &[
            "watchNamespace={ns}",
            "serviceAccount.annotations.eks\\.amazonaws\\.com/role-arn=arn:aws:iam::111122223333:role/securepipe-operator",
            "aws.endpointUrl=http://localstack.localstack.svc:4566",
            "aws.s3ForcePathStyle=true",
            "image.digest=sha256:0000000000000000000000000000000000000000000000000000000000000000",
        ],
    ),
    (
        "one replica without leader election, no PDB, text logs",
        &[
            "replicaCount=1",
            "leaderElection.enabled=false",
            "podDisruptionBudget.enabled=false",
            "logging.json=false",
        ],
    ),
];

fn chart_dir() -> PathBuf {
    repo_root().join("charts/securepipe")
}

fn helm() -> &'static Path {
    static HELM: OnceLock<PathBuf> = OnceLock::new();
    HELM.get_or_init(|| {
        if let Ok(path) = std::env::var("SECUREPIPE_HELM") {
            return PathBuf::from(path);
        }
        let output = Command::new(repo_root().join("tests/env/install-helm.sh"))
            .output()
            .expect("run tests/env/install-helm.sh");
        assert!(
            output.status.success(),
            "tests/env/install-helm.sh failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        PathBuf::from(String::from_utf8_lossy(&output.stdout).trim())
    })
}

fn set_args(sets: &[&str], namespace: &str) -> Vec<String> {
    sets.iter()
        .flat_map(|set| ["--set".to_owned(), set.replace("{ns}", namespace)])
        .collect()
}

/// `helm template` output (with the CRDs when asked), or the error text when it fails.
fn render(namespace: &str, sets: &[&str], include_crds: bool) -> Result<String, String> {
    let mut command = Command::new(helm());
    command
        .args(["template", RELEASE])
        .arg(chart_dir())
        .args(["--namespace", namespace, "--kube-version", KUBE_VERSION])
        .args(set_args(sets, namespace));
    if include_crds {
        command.arg("--include-crds");
    }
    let output = command.output().expect("run helm template");
    if output.status.success() {
        Ok(String::from_utf8(output.stdout).expect("helm output is UTF-8"))
    } else {
        Err(String::from_utf8_lossy(&output.stderr).into_owned())
    }
}

fn render_ok(namespace: &str, sets: &[&str]) -> String {
    render(namespace, sets, false)
        .unwrap_or_else(|err| panic!("helm template with {sets:?} failed:\n{err}"))
}

/// The YAML documents of a multi-document stream, as JSON values (empty ones dropped).
fn documents(yaml: &str, origin: &str) -> Vec<Value> {
    serde_yaml::Deserializer::from_str(yaml)
        .filter_map(|document| {
            let value = Value::deserialize(document)
                .unwrap_or_else(|err| panic!("parse YAML from {origin}: {err}"));
            (!value.is_null()).then_some(value)
        })
        .collect()
}

fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|err| panic!("read {}: {err}", dir.display()))
        .map(|entry| entry.expect("dir entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "yaml"))
        .collect();
    files.sort();
    files
}

fn str_at<'v>(value: &'v Value, pointer: &str) -> &'v str {
    value.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

/// One policy rule with every list sorted, so equal grants compare equal.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Rule {
    api_groups: Vec<String>,
    resources: Vec<String>,
    verbs: Vec<String>,
    resource_names: Vec<String>,
}

/// An RBAC object reduced to what grants access: rules as a set of sorted rules, plus
/// roleRef and subjects for bindings.
#[derive(Debug, PartialEq)]
struct Grant {
    rules: Vec<Rule>,
    role_ref: Value,
    subjects: Value,
}

fn grant(object: &Value) -> Grant {
    let rules: Vec<PolicyRule> =
        serde_json::from_value(object.get("rules").cloned().unwrap_or(Value::Array(vec![])))
            .unwrap_or_else(|err| panic!("rules of {object}: {err}"));
    let sorted = |list: Option<Vec<String>>| {
        let mut list = list.unwrap_or_default();
        list.sort();
        list
    };
    let mut rules: Vec<_> = rules
        .into_iter()
        .map(|rule| Rule {
            api_groups: sorted(rule.api_groups),
            resources: sorted(rule.resources),
            verbs: sorted(Some(rule.verbs)),
            resource_names: sorted(rule.resource_names),
        })
        .collect();
    rules.sort();
    Grant {
        rules,
        role_ref: object.get("roleRef").cloned().unwrap_or(Value::Null),
        subjects: object.get("subjects").cloned().unwrap_or(Value::Null),
    }
}

/// RBAC objects (and the ServiceAccount) keyed by "Kind namespace/name".
fn rbac_objects(objects: &[Value]) -> BTreeMap<String, Grant> {
    objects
        .iter()
        .filter(|object| {
            matches!(
                str_at(object, "/kind"),
                "ClusterRole" | "Role" | "ClusterRoleBinding" | "RoleBinding" | "ServiceAccount"
            )
        })
        .map(|object| {
            let key = format!(
                "{} {}/{}",
                str_at(object, "/kind"),
                str_at(object, "/metadata/namespace"),
                str_at(object, "/metadata/name")
            );
            (key, grant(object))
        })
        .collect()
}

fn deployment(objects: &[Value]) -> Deployment {
    let mut deployments = objects
        .iter()
        .filter(|object| str_at(object, "/kind") == "Deployment");
    let found = deployments.next().expect("the chart renders a Deployment");
    assert!(deployments.next().is_none(), "one Deployment only");
    serde_json::from_value(found.clone()).unwrap_or_else(|err| panic!("Deployment: {err}"))
}

#[test]
fn chart_crds_are_the_generated_crds() {
    let generated = yaml_files(&repo_root().join("crds"));
    let charted = yaml_files(&chart_dir().join("crds"));
    let names = |files: &[PathBuf]| -> Vec<String> {
        files
            .iter()
            .map(|path| {
                path.file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect()
    };
    assert_eq!(
        names(&charted),
        names(&generated),
        "charts/securepipe/crds/ must hold exactly the files of crds/ (cp crds/*.yaml charts/securepipe/crds/)"
    );
    for (chart_file, crd_file) in charted.iter().zip(&generated) {
        let read = |path: &Path| {
            std::fs::read(path).unwrap_or_else(|err| panic!("read {}: {err}", path.display()))
        };
        assert!(
            read(chart_file) == read(crd_file),
            "{} differs from {}: copy the generated CRDs into the chart (cp crds/*.yaml charts/securepipe/crds/)",
            chart_file.display(),
            crd_file.display()
        );
    }
}

#[test]
fn chart_and_image_versions_are_the_workspace_version() {
    let workspace = env!("CARGO_PKG_VERSION");
    let chart_yaml =
        std::fs::read_to_string(chart_dir().join("Chart.yaml")).expect("read Chart.yaml");
    let chart: Value = serde_yaml::from_str(&chart_yaml).expect("parse Chart.yaml");
    assert_eq!(
        str_at(&chart, "/appVersion"),
        workspace,
        "Chart.yaml appVersion"
    );
    let dockerfile =
        std::fs::read_to_string(repo_root().join("Dockerfile")).expect("read Dockerfile");
    let image_version = dockerfile
        .lines()
        .find_map(|line| line.strip_prefix("ARG VERSION="))
        .expect("the Dockerfile declares ARG VERSION=<default>");
    assert_eq!(
        image_version, workspace,
        "the Dockerfile's default VERSION label"
    );
}

#[test]
#[ignore = "needs helm (tests/env/install-helm.sh); make test runs it"]
fn chart_lints_strictly() {
    for (variant, sets) in VARIANTS {
        let output = Command::new(helm())
            .args([
                "lint",
                "--strict",
                "--kube-version",
                KUBE_VERSION,
                "--namespace",
                "securepipe-system",
            ])
            .arg(chart_dir())
            .args(set_args(sets, "securepipe-watched"))
            .output()
            .expect("run helm lint");
        assert!(
            output.status.success(),
            "helm lint --strict ({variant}) failed:\n{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

/// The release `securepipe` in `securepipe-system` grants exactly what `config/rbac/`
/// grants, to the same ServiceAccount, under the same names; nothing more.
#[test]
#[ignore = "needs helm (tests/env/install-helm.sh); make test runs it"]
fn chart_rbac_is_config_rbac() {
    let rendered = documents(&render_ok("securepipe-system", &[]), "helm template");
    let mut expected = BTreeMap::new();
    for file in yaml_files(&repo_root().join("config/rbac")) {
        let text = std::fs::read_to_string(&file).expect("read config/rbac");
        expected.extend(rbac_objects(&documents(&text, &file.display().to_string())));
    }
    let actual = rbac_objects(&rendered);
    assert_eq!(
        actual.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>(),
        "the chart's RBAC objects and ServiceAccount differ from config/rbac/'s"
    );
    for (key, grant) in &expected {
        assert_eq!(
            &actual[key], grant,
            "{key}: chart (left) vs config/rbac (right)"
        );
    }
    let pod = deployment(&rendered).spec.template.spec;
    assert_eq!(
        pod.and_then(|pod| pod.service_account_name).as_deref(),
        Some("securepipe-operator"),
        "the Deployment runs as the ServiceAccount the RBAC is bound to"
    );
}

/// With one watched namespace the operator's ClusterRole is bound there only, and the
/// operator is told to watch only it.
#[test]
#[ignore = "needs helm (tests/env/install-helm.sh); make test runs it"]
fn chart_watch_namespace_binds_there_only() {
    let rendered = documents(
        &render_ok("securepipe-system", &["watchNamespace=team-a"]),
        "helm template",
    );
    let keys: Vec<String> = rbac_objects(&rendered).into_keys().collect();
    assert!(
        keys.contains(&"RoleBinding team-a/securepipe-operator".to_owned()),
        "{keys:?}"
    );
    assert!(
        !keys.iter().any(|key| key.starts_with("ClusterRoleBinding")),
        "no cluster-wide binding when one namespace is watched: {keys:?}"
    );
    let container = deployment(&rendered)
        .spec
        .template
        .spec
        .map(|pod| pod.containers[0].clone())
        .expect("operator container");
    let args = container.args.unwrap_or_default();
    assert!(args.contains(&"--namespace=team-a".to_owned()), "{args:?}");
}

#[test]
#[ignore = "needs helm (tests/env/install-helm.sh); make test runs it"]
fn chart_deployment_is_hardened() {
    let rendered = documents(&render_ok("securepipe-system", &[]), "helm template");
    let spec = deployment(&rendered).spec;
    assert_eq!(spec.replicas, Some(2), "two replicas by default");
    let pod = spec.template.spec.expect("pod spec");
    assert!(
        pod.termination_grace_period_seconds.unwrap_or(30) > 10,
        "grace period must exceed the operator's 10 s drain"
    );
    let pod_security = pod.security_context.expect("pod securityContext");
    assert_eq!(pod_security.run_as_non_root, Some(true));
    assert!(
        pod_security.run_as_user.is_some_and(|uid| uid != 0),
        "numeric non-root UID"
    );
    assert_eq!(
        pod_security.seccomp_profile.map(|profile| profile.type_),
        Some("RuntimeDefault".to_owned())
    );
    let container = &pod.containers[0];
    let security = container
        .security_context
        .clone()
        .expect("container securityContext");
    assert_eq!(security.read_only_root_filesystem, Some(true));
    assert_eq!(security.allow_privilege_escalation, Some(false));
    assert_eq!(
        security.capabilities.and_then(|caps| caps.drop),
        Some(vec!["ALL".to_owned()])
    );
    let probe_path = |probe: &Option<k8s_openapi::api::core::v1::Probe>| {
        probe
            .as_ref()
            .and_then(|probe| probe.http_get.as_ref())
            .and_then(|get| get.path.clone())
    };
    assert_eq!(
        probe_path(&container.liveness_probe).as_deref(),
        Some("/healthz")
    );
    assert_eq!(
        probe_path(&container.readiness_probe).as_deref(),
        Some("/readyz")
    );
    let env: Vec<&str> = container
        .env
        .iter()
        .flatten()
        .map(|var| var.name.as_str())
        .collect();
    for name in ["POD_NAMESPACE", "POD_NAME", "AWS_REGION"] {
        assert!(env.contains(&name), "{name} in {env:?}");
    }
}

#[test]
#[ignore = "needs helm (tests/env/install-helm.sh); make test runs it"]
fn chart_refuses_two_replicas_without_leader_election() {
    let err = render(
        "securepipe-system",
        &["leaderElection.enabled=false"],
        false,
    )
    .expect_err("two replicas without leader election must not render");
    assert!(err.contains("only safe with replicaCount: 1"), "{err}");
    let err = render("securepipe-system", &["aws.region=not a region"], false)
        .expect_err("values.schema.json rejects a malformed region");
    assert!(
        err.contains("aws.region") || err.contains("region"),
        "{err}"
    );
}

/// Every object of every variant, CRDs included, passes the real apiserver's validation
/// (schema, strict field validation, admission) without being stored, and the pod
/// template meets PodSecurity `restricted` (the namespace warns on violations).
#[tokio::test]
#[ignore = "needs the local stack (tests/env/up.sh) and helm; make test runs it"]
async fn chart_objects_pass_server_side_dry_run() {
    let client = client().await;
    let namespace = fresh_namespace(&client, "chart").await;
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let labels = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": { "labels": {
            "pod-security.kubernetes.io/warn": "restricted",
            "pod-security.kubernetes.io/warn-version": "latest",
        }},
    });
    namespaces
        .patch(
            &namespace,
            &PatchParams::apply(FIELD_MANAGER),
            &Patch::Apply(&labels),
        )
        .await
        .unwrap_or_else(|err| panic!("label namespace {namespace}: {err}"));
    let dir = repo_root().join("target/stack-tests").join(&namespace);
    std::fs::create_dir_all(&dir).expect("create the test's work directory");
    for (index, (variant, sets)) in VARIANTS.iter().enumerate() {
        let manifest = render(&namespace, sets, true)
            .unwrap_or_else(|err| panic!("helm template ({variant}) failed:\n{err}"));
        let objects = documents(&manifest, variant);
        let path = dir.join(format!("chart-{index}.yaml"));
        std::fs::write(&path, &manifest).expect("write the rendered chart");
        let output = Command::new("kubectl")
            .args([
                "apply",
                "--dry-run=server",
                "--server-side",
                "--force-conflicts",
                "--validate=strict",
                "--field-manager",
                "securepipe-chart-check",
                "-f",
            ])
            .arg(&path)
            .output()
            .expect("run kubectl (PATH from target/env/env.sh)");
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            output.status.success(),
            "kubectl apply --dry-run=server ({variant}, {}) failed:\n{stderr}",
            path.display()
        );
        assert!(
            !stderr.to_lowercase().contains("warning"),
            "the apiserver warned ({variant}, {}):\n{stderr}",
            path.display()
        );
        let applied = stdout
            .lines()
            .filter(|line| line.contains("(server dry run)"))
            .count();
        assert_eq!(
            applied,
            objects.len(),
            "every rendered object ({variant}) went through the apiserver:\n{stdout}"
        );
    }
}
