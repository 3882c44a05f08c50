//! The Helm chart (`charts/securepipe`) checked against the repository and the real
//! apiserver:
//! - its `crds/` are byte-identical to the generated `crds/`, and its appVersion is the
//!   workspace version (as is the Dockerfile's default `VERSION`);
//! - `helm lint --strict` passes for the defaults and every values variant below;
//! - the optional Argo CD health checks render as argocd-cm keys holding each kind's
//!   `health.lua` (`argocd/resource_customizations/`);
//! - its rendered RBAC is exactly `config/rbac/` (the RBAC the stack suites run the
//!   operator under), and its Deployment runs hardened with the probes and grace period
//!   the operator needs;
//! - every rendered object passes `kubectl apply --dry-run=server` on the local stack,
//!   in a namespace that warns on PodSecurity `restricted` violations, with none reported;
//! - the real `securepipe` binary, started with the rendered Deployment's arguments and
//!   environment as the chart's ServiceAccount under the chart's applied RBAC, gets
//!   Ready, takes the chart's Lease and stops cleanly on SIGTERM within the grace period.
//!
//! helm comes from `SECUREPIPE_HELM`, else `tests/env/install-helm.sh` (builds it into
//! the cache once; `make test` runs the script first).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::api::rbac::v1::PolicyRule;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use securepipe_api::RetentionPolicy;
use securepipe_tests::http::http_get;
use securepipe_tests::operator::{impersonating_kubeconfig, securepipe_binary};
use securepipe_tests::{
    FIELD_MANAGER, client, eventually, fresh_namespace, install_crds, repo_root,
    ungranted_namespace, yaml_files,
};
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
            "worker.networkPolicy.namespaces[0]={ns}",
            "worker.image=registry.example/securepipe-worker:1",
        ],
    ),
    (
        "tenant namespaces, a revoker role",
        &[
            "rbac.tenantNamespaces={{ns}}",
            "aws.revokerRoleArns={arn:aws:iam::111122223333:role/securepipe-revoker}",
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
    render_release(RELEASE, namespace, sets, include_crds)
}

fn render_release(
    release: &str,
    namespace: &str,
    sets: &[&str],
    include_crds: bool,
) -> Result<String, String> {
    let mut command = Command::new(helm());
    command
        .args(["template", release])
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
    // Only the read-only grants role is bound cluster-wide (TenantGrants are cluster-scoped).
    let cluster_wide: Vec<&String> = keys
        .iter()
        .filter(|key| key.starts_with("ClusterRoleBinding"))
        .collect();
    assert_eq!(
        cluster_wide,
        [&"ClusterRoleBinding /securepipe-operator-grants".to_owned()],
        "only the grants binding is cluster-wide when one namespace is watched: {keys:?}"
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

/// `argocdHealthChecks.enabled=true` renders one ConfigMap, `argocd-cm` in `argocd` with
/// the label Argo CD selects on, holding every kind's `health.lua` under the key Argo CD
/// reads; the default renders none. Linted strictly too.
#[test]
#[ignore = "needs helm (tests/env/install-helm.sh); make test runs it"]
fn chart_renders_the_argocd_health_checks_when_asked() {
    let is_config_map = |object: &&Value| str_at(object, "/kind") == "ConfigMap";
    let defaults = documents(&render_ok("securepipe-system", &[]), "helm template");
    assert_eq!(defaults.iter().filter(is_config_map).count(), 0);

    let sets = ["argocdHealthChecks.enabled=true"];
    let rendered = documents(&render_ok("securepipe-system", &sets), "helm template");
    let config_maps: Vec<&Value> = rendered.iter().filter(is_config_map).collect();
    assert_eq!(config_maps.len(), 1, "{config_maps:?}");
    let config_map = config_maps[0];
    assert_eq!(
        (
            str_at(config_map, "/metadata/name"),
            str_at(config_map, "/metadata/namespace"),
            str_at(config_map, "/metadata/labels/app.kubernetes.io~1part-of"),
        ),
        ("argocd-cm", "argocd", "argocd")
    );
    let data: BTreeMap<String, String> =
        serde_json::from_value(config_map["data"].clone()).expect("string data");
    let want: BTreeMap<String, String> = securepipe_api::crd::all()
        .iter()
        .map(|crd| {
            let kind = &crd.spec.names.kind;
            let lua = chart_dir().join(format!(
                "argocd/resource_customizations/securepipe.io/{kind}/health.lua"
            ));
            let script = std::fs::read_to_string(&lua)
                .unwrap_or_else(|err| panic!("read {}: {err}", lua.display()));
            (
                format!("resource.customizations.health.securepipe.io_{kind}"),
                script,
            )
        })
        .collect();
    assert_eq!(data, want);

    let output = Command::new(helm())
        .args(["lint", "--strict", "--kube-version", KUBE_VERSION])
        .arg(chart_dir())
        .args(set_args(&sets, "securepipe-system"))
        .output()
        .expect("run helm lint");
    assert!(
        output.status.success(),
        "helm lint --strict failed:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
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

fn kubectl(args: &[&str], file: &Path) -> String {
    let output = Command::new("kubectl")
        .args(args)
        .arg("-f")
        .arg(file)
        .output()
        .expect("run kubectl (PATH from target/env/env.sh)");
    assert!(
        output.status.success(),
        "kubectl {args:?} -f {} failed:\n{}",
        file.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Renders the chart as `release` in `namespace` with `sets` and applies it server-side;
/// returns the rendered objects and the guard that deletes them.
fn apply_release(release: &str, namespace: &str, sets: &[&str]) -> (Vec<Value>, RemoveOnDrop) {
    let manifest = render_release(release, namespace, sets, false)
        .unwrap_or_else(|err| panic!("helm template failed:\n{err}"));
    let objects = documents(&manifest, "helm template");
    let dir = repo_root().join("target/stack-tests").join(namespace);
    std::fs::create_dir_all(&dir).expect("create the test's work directory");
    let manifest_path = dir.join("chart.yaml");
    std::fs::write(&manifest_path, &manifest).expect("write the rendered chart");
    kubectl(
        &["apply", "--server-side", "--field-manager", FIELD_MANAGER],
        &manifest_path,
    );
    (objects, RemoveOnDrop(manifest_path))
}

/// Deletes the applied chart, cluster-scoped objects included, when the test ends (also
/// when it fails): their names are unique to the test's release.
struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = Command::new("kubectl")
            .args(["delete", "--ignore-not-found", "--wait=false", "-f"])
            .arg(&self.0)
            .output();
    }
}

/// The rendered Deployment, run as a process: its arguments (the listen address moved to
/// a free loopback port), its environment (downward-API values filled in as the kubelet
/// would), its ServiceAccount, and the RBAC the chart applies. The release gets its own
/// name and watches only the test's namespace, so it never touches other suites' objects.
#[tokio::test]
#[ignore = "needs the local stack (tests/env/up.sh) and helm; make test runs it"]
async fn operator_runs_as_the_rendered_chart() {
    let client = client().await;
    install_crds(&client).await;
    let namespace = fresh_namespace(&client, "chart-run").await;
    let release = format!("sp-{namespace}");
    let (objects, _remove) = apply_release(&release, &namespace, &["watchNamespace={ns}"]);
    let dir = repo_root().join("target/stack-tests").join(&namespace);

    let deployment = deployment(&objects);
    let lease_name = deployment.metadata.name.clone().expect("Deployment name");
    let pod = deployment.spec.template.spec.expect("pod spec");
    let service_account = pod.service_account_name.expect("serviceAccountName");
    let container = &pod.containers[0];
    let listen = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("find a free port")
        .to_string();
    let args: Vec<String> = container
        .args
        .iter()
        .flatten()
        .map(|arg| {
            if arg.starts_with("--listen=") {
                format!("--listen={listen}")
            } else {
                arg.clone()
            }
        })
        .collect();
    let pod_name = format!("{lease_name}-0");
    let kubeconfig = dir.join("operator.kubeconfig");
    impersonating_kubeconfig(&kubeconfig, &namespace, &service_account);
    let log_path = dir.join("operator.log");
    let log = std::fs::File::create(&log_path).expect("create the operator log");
    let mut command = tokio::process::Command::new(securepipe_binary());
    command
        .args(&args)
        .env("KUBECONFIG", &kubeconfig)
        .env_remove("SECUREPIPE_WATCH_NAMESPACE")
        .stdout(log.try_clone().expect("clone the log handle"))
        .stderr(log)
        .kill_on_drop(true);
    for var in container.env.iter().flatten() {
        let value = match var
            .value_from
            .as_ref()
            .and_then(|from| from.field_ref.as_ref())
        {
            Some(field) if field.field_path == "metadata.namespace" => namespace.clone(),
            Some(field) if field.field_path == "metadata.name" => pod_name.clone(),
            Some(field) => panic!("unexpected downward-API field {}", field.field_path),
            None => var.value.clone().unwrap_or_default(),
        };
        command.env(&var.name, value);
    }
    let mut child = command.spawn().expect("start the securepipe operator");
    let logs = || std::fs::read_to_string(&log_path).unwrap_or_default();

    let ready = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            if let Ok((200, _)) = http_get(&listen, "/readyz").await {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    assert!(ready.is_ok(), "operator not ready within 60 s\n{}", logs());
    let leases: Api<Lease> = Api::namespaced(client.clone(), &namespace);
    let holder = eventually(
        Duration::from_secs(30),
        "the chart's Lease to be held",
        || {
            let (leases, lease_name) = (leases.clone(), lease_name.clone());
            async move {
                let lease = leases.get_opt(&lease_name).await.ok().flatten()?;
                lease.spec?.holder_identity
            }
        },
    )
    .await;
    assert_eq!(
        holder,
        pod_name,
        "the Lease holder is the pod's name\n{}",
        logs()
    );

    // The granted RBAC lets it reconcile: a RetentionPolicy on a bucket that does not
    // exist gets its finalizer and a status for its generation, and its deletion goes through.
    let policies: Api<RetentionPolicy> = Api::namespaced(client.clone(), &namespace);
    let policy: RetentionPolicy = serde_json::from_value(serde_json::json!({
        "apiVersion": "securepipe.io/v1alpha1",
        "kind": "RetentionPolicy",
        "metadata": { "name": "no-bucket" },
        "spec": {
            "bucket": format!("securepipe-chart-missing-{namespace}"),
            "region": "us-east-1",
            "rules": [{ "id": "raw", "prefix": "raw/", "expirationDays": 30 }],
        },
    }))
    .expect("a RetentionPolicy");
    policies
        .create(&PostParams::default(), &policy)
        .await
        .unwrap_or_else(|err| panic!("create RetentionPolicy no-bucket: {err}"));
    eventually(
        Duration::from_secs(30),
        "RetentionPolicy no-bucket to get a finalizer and a status",
        || {
            let policies = policies.clone();
            async move {
                let policy = policies.get("no-bucket").await.ok()?;
                let finalized = !policy.finalizers().is_empty();
                let observed = policy.status?.observed_generation;
                (finalized && observed == policy.metadata.generation).then_some(())
            }
        },
    )
    .await;
    policies
        .delete("no-bucket", &DeleteParams::default())
        .await
        .unwrap_or_else(|err| panic!("delete RetentionPolicy no-bucket: {err}"));
    eventually(
        Duration::from_secs(30),
        "RetentionPolicy no-bucket to be deleted (finalizer removed)",
        || {
            let policies = policies.clone();
            async move { matches!(policies.get_opt("no-bucket").await, Ok(None)).then_some(()) }
        },
    )
    .await;

    // SIGTERM, as the kubelet sends it: the operator drains and exits within the grace period.
    let grace = pod.termination_grace_period_seconds.unwrap_or(30);
    let pid = child.id().expect("operator pid").to_string();
    let killed = Command::new("kill").args(["-TERM", &pid]).status();
    assert!(killed.is_ok_and(|status| status.success()), "send SIGTERM");
    let waited = tokio::time::timeout(
        Duration::from_secs(u64::try_from(grace).unwrap_or(30)),
        child.wait(),
    )
    .await;
    let status = waited
        .unwrap_or_else(|_| panic!("no exit within the {grace} s grace period\n{}", logs()))
        .expect("wait for the operator");
    assert!(
        status.success(),
        "operator exited with {status}\n{}",
        logs()
    );
}

/// Whether `user` (a ServiceAccount, with its groups) may `verb` `resource` in
/// `namespace` ("" = cluster-wide), as the apiserver's authorizer answers.
async fn can(
    client: &kube::Client,
    service_account: (&str, &str),
    (group, resource, verb): (&str, &str, &str),
    namespace: &str,
) -> bool {
    let (sa_namespace, sa_name) = service_account;
    let review = SubjectAccessReview {
        spec: SubjectAccessReviewSpec {
            user: Some(format!("system:serviceaccount:{sa_namespace}:{sa_name}")),
            groups: Some(vec![
                "system:serviceaccounts".to_owned(),
                format!("system:serviceaccounts:{sa_namespace}"),
                "system:authenticated".to_owned(),
            ]),
            resource_attributes: Some(ResourceAttributes {
                group: Some(group.to_owned()),
                resource: Some(resource.to_owned()),
                verb: Some(verb.to_owned()),
                namespace: Some(namespace.to_owned()),
                ..ResourceAttributes::default()
            }),
            ..SubjectAccessReviewSpec::default()
        },
        ..SubjectAccessReview::default()
    };
    Api::<SubjectAccessReview>::all(client.clone())
        .create(&PostParams::default(), &review)
        .await
        .unwrap_or_else(|err| panic!("SubjectAccessReview: {err}"))
        .status
        .is_some_and(|status| status.allowed)
}

/// The chart with a list of tenant namespaces, applied to the real apiserver: its
/// ServiceAccount may use Secrets in those namespaces and nowhere else (not cluster-wide),
/// may read TenantGrants but not write them, and the operator is told the same list.
#[tokio::test]
#[ignore = "needs the local stack (tests/env/up.sh) and helm; make test runs it"]
async fn chart_binds_secret_access_in_the_tenant_namespaces_only() {
    let client = client().await;
    install_crds(&client).await;
    let namespace = fresh_namespace(&client, "chart-tenants").await;
    let team_a = ungranted_namespace(&client, "chart-team-a").await;
    let team_b = ungranted_namespace(&client, "chart-team-b").await;
    let elsewhere = ungranted_namespace(&client, "chart-elsewhere").await;
    let release = format!("sp-{namespace}");
    let tenants = format!("rbac.tenantNamespaces={{{team_a},{team_b}}}");
    let (objects, _remove) = apply_release(&release, &namespace, &[&tenants]);
    let pod = deployment(&objects).spec.template.spec.expect("pod spec");
    let service_account = pod
        .service_account_name
        .clone()
        .expect("serviceAccountName");
    let args = pod.containers[0].args.clone().unwrap_or_default();
    assert!(
        args.contains(&format!("--secret-namespaces={team_a},{team_b}")),
        "{args:?}"
    );
    let sa = (namespace.as_str(), service_account.as_str());

    let secret_verbs = ["get", "list", "watch", "create", "patch", "delete"];
    // RBAC reaches the authorizer's cache shortly after the apply.
    eventually(
        Duration::from_secs(30),
        "Secret access in the tenant namespaces",
        || async {
            for tenant in [&team_a, &team_b] {
                for verb in secret_verbs {
                    if !can(&client, sa, ("", "secrets", verb), tenant).await {
                        return None;
                    }
                }
            }
            Some(())
        },
    )
    .await;
    for verb in secret_verbs {
        for other in [elsewhere.as_str(), namespace.as_str(), "default", ""] {
            assert!(
                !can(&client, sa, ("", "secrets", verb), other).await,
                "{verb} secrets in {other:?} must be denied"
            );
        }
    }
    // Worker Jobs (and reading their Pods) follow the same binding.
    let tenant_only = [
        ("batch", "jobs", "create"),
        ("batch", "jobs", "watch"),
        ("", "pods", "list"),
    ];
    for check in tenant_only {
        for tenant in [&team_a, &team_b] {
            assert!(
                can(&client, sa, check, tenant).await,
                "{check:?} in {tenant}"
            );
        }
        for other in [elsewhere.as_str(), "default", ""] {
            assert!(
                !can(&client, sa, check, other).await,
                "{check:?} in {other:?} must be denied"
            );
        }
    }
    for verb in ["get", "list", "watch"] {
        assert!(
            can(&client, sa, ("securepipe.io", "tenantgrants", verb), "").await,
            "{verb} tenantgrants must be allowed"
        );
    }
    for verb in ["create", "update", "patch", "delete", "deletecollection"] {
        assert!(
            !can(&client, sa, ("securepipe.io", "tenantgrants", verb), "").await,
            "{verb} tenantgrants must be denied"
        );
    }
}
