//! Helpers shared by the stack suites: a client for the local stack, CRD installation,
//! a fresh namespace per test, and waiting with a deadline.
//!
//! Every suite that needs the stack marks its tests
//! `#[ignore = "needs the local stack (tests/env/up.sh); make test runs it"]`; `make test`
//! brings the stack up, sources `target/env/env.sh` and runs them with `--include-ignored`.
//! Run outside that environment, they fail with a message saying what is missing.

pub mod audio;
pub mod aws_link;
pub mod gitops;
pub mod http;
pub mod localstack;
pub mod operator;

use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ObjectMeta, Patch, PatchParams, PostParams};
use kube::runtime::wait::{await_condition, conditions};
use kube::{Client, Config};

/// The field manager the suites use for their own writes.
pub const FIELD_MANAGER: &str = "securepipe-tests";

/// The repository root (for examples/, crds/, tests/admission/).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A client for the local stack's apiserver, from `KUBECONFIG`.
pub async fn client() -> Client {
    let kubeconfig = std::env::var("KUBECONFIG").unwrap_or_else(|_| {
        panic!("KUBECONFIG is not set: start the local stack with tests/env/up.sh and source target/env/env.sh (make test does both)")
    });
    let config = Config::from_kubeconfig(&kube::config::KubeConfigOptions::default())
        .await
        .unwrap_or_else(|err| panic!("cannot load the kubeconfig {kubeconfig}: {err}"));
    Client::try_from(config).expect("build a kube client")
}

/// Server-side applies securepipe's CRDs and waits until the apiserver serves them.
pub async fn install_crds(client: &Client) {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let params = PatchParams::apply(FIELD_MANAGER).force();
    for crd in securepipe_api::crd::all() {
        let name = crd.metadata.name.clone().expect("CRD name");
        crds.patch(&name, &params, &Patch::Apply(&crd))
            .await
            .unwrap_or_else(|err| panic!("apply CRD {name}: {err}"));
        let established = await_condition(crds.clone(), &name, conditions::is_crd_established());
        tokio::time::timeout(Duration::from_secs(30), established)
            .await
            .unwrap_or_else(|_| panic!("CRD {name} not established within 30s"))
            .unwrap_or_else(|err| panic!("watch CRD {name}: {err}"));
    }
}

/// Creates a namespace with a unique name starting with `prefix`, grants it what the
/// suites use ([`grant_suites`]) and returns its name.
pub async fn fresh_namespace(client: &Client, prefix: &str) -> String {
    let namespace = ungranted_namespace(client, prefix).await;
    grant_suites(client, &namespace).await;
    namespace
}

/// The name of the TenantGrant [`grant_suites`] applies for `namespace`.
pub fn suite_grant_name(namespace: &str) -> String {
    format!("test-{namespace}")
}

/// The one TenantGrant the stack suites run under (securepipe denies what no grant
/// covers): for `namespace` only, exactly the names the suites derive from it (role
/// `trainer-<ns>` in LocalStack's account; buckets `biometrics-`, `enforced-`, `node-`,
/// `retention-` and `securepipe-chart-missing-<ns>`), any partition, ReadWrite, up to
/// 12h, the session tag key `team`, and lifecycle plus posture on those buckets.
pub async fn grant_suites(client: &Client, namespace: &str) {
    let buckets: Vec<String> = [
        "biometrics",
        "enforced",
        "node",
        "retention",
        "securepipe-chart-missing",
    ]
    .iter()
    .map(|kind| format!("{kind}-{namespace}"))
    .collect();
    let retention: Vec<serde_json::Value> = buckets
        .iter()
        .map(|bucket| serde_json::json!({"bucket": bucket, "prefixes": [""], "posture": true}))
        .collect();
    let grant = serde_json::json!({
        "apiVersion": "securepipe.io/v1alpha1",
        "kind": "TenantGrant",
        "metadata": {"name": suite_grant_name(namespace)},
        "spec": {
            "namespaces": [namespace],
            "roleArns": [format!("arn:aws:iam::000000000000:role/trainer-{namespace}")],
            "buckets": buckets,
            "partitions": ["*"],
            "maxAccess": "ReadWrite",
            "maxDuration": "12h",
            "sessionTagKeys": ["team"],
            "retention": retention,
        },
    });
    let grants: Api<securepipe_api::tenant_grant::TenantGrant> = Api::all(client.clone());
    let name = suite_grant_name(namespace);
    grants
        .patch(
            &name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&grant),
        )
        .await
        .unwrap_or_else(|err| panic!("apply TenantGrant {name}: {err}"));
}

/// Creates a namespace with a unique name starting with `prefix`, with no grant, and
/// returns its name.
pub async fn ungranted_namespace(client: &Client, prefix: &str) -> String {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let namespace = Namespace {
        metadata: ObjectMeta {
            generate_name: Some(format!("{prefix}-")),
            labels: Some([("securepipe.io/test".to_owned(), prefix.to_owned())].into()),
            ..ObjectMeta::default()
        },
        ..Namespace::default()
    };
    let created = namespaces
        .create(&PostParams::default(), &namespace)
        .await
        .unwrap_or_else(|err| panic!("create namespace {prefix}-*: {err}"));
    created.metadata.name.expect("generated namespace name")
}

/// Polls `check` every 100 ms until it returns `Some`, or panics after `timeout` with
/// `what` in the message.
pub async fn eventually<T, F, Fut>(timeout: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        if tokio::time::Instant::now() >= deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The `.yaml` files directly in `dir`, sorted.
pub fn yaml_files(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|err| panic!("read {}: {err}", dir.display()))
        .map(|entry| entry.expect("dir entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "yaml"))
        .collect();
    files.sort();
    files
}
