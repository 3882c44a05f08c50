//! Admission against the real apiserver: every example in `examples/` is accepted, and
//! every case in `tests/admission/invalid/` is rejected with an error that names the
//! offending field and says why. Each invalid case states both in its header:
//! `# field: spec.bucket` and `# message: <text the error must contain>`.

use std::path::Path;
use std::process::Command;

use kube::ResourceExt;
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use kube::core::ApiResource;
use securepipe_api::tenant_grant::TenantGrant;
use securepipe_api::{RetentionPolicy, TrainingPartition};
use securepipe_tests::{
    FIELD_MANAGER, client, fresh_namespace, install_crds, repo_root, yaml_files,
};
use serde_json::json;

fn load(path: &Path) -> (String, DynamicObject) {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|err| panic!("read {}: {err}", path.display()));
    let object: DynamicObject =
        serde_yaml::from_str(&text).unwrap_or_else(|err| panic!("parse {}: {err}", path.display()));
    (text, object)
}

fn api_for(client: &kube::Client, namespace: &str, object: &DynamicObject) -> Api<DynamicObject> {
    let kind = object.types.as_ref().map(|types| types.kind.as_str());
    let resource = match kind {
        Some("TrainingPartition") => ApiResource::erase::<TrainingPartition>(&()),
        Some("RetentionPolicy") => ApiResource::erase::<RetentionPolicy>(&()),
        // Cluster-scoped.
        Some("TenantGrant") => {
            return Api::all_with(client.clone(), &ApiResource::erase::<TenantGrant>(&()));
        }
        other => panic!("unexpected kind {other:?}"),
    };
    Api::namespaced_with(client.clone(), namespace, &resource)
}

/// The value of a `# key: value` header line.
fn header<'t>(text: &'t str, key: &str) -> &'t str {
    text.lines()
        .find_map(|line| {
            line.strip_prefix("# ")?
                .strip_prefix(key)?
                .strip_prefix(": ")
        })
        .unwrap_or_else(|| panic!("missing `# {key}:` header"))
}

#[tokio::test]
#[ignore = "needs the local stack (tests/env/up.sh); make test runs it"]
async fn examples_are_accepted() {
    let client = client().await;
    install_crds(&client).await;
    let namespace = fresh_namespace(&client, "admission-valid").await;
    let examples = yaml_files(&repo_root().join("examples"));
    assert!(
        examples.len() >= 12,
        "expected at least 12 examples, found {}",
        examples.len()
    );
    for path in examples {
        let (_, object) = load(&path);
        // Grants are cluster-scoped and may already exist (`make demo` applies the demo's):
        // validated by a forced server-side dry-run apply, which runs the same admission
        // whether or not the object exists or another manager owns its fields (a dry-run
        // create of an existing one is AlreadyExists).
        let cluster_scoped = object
            .types
            .as_ref()
            .is_some_and(|t| t.kind == "TenantGrant");
        let api = api_for(&client, &namespace, &object);
        let accepted = if cluster_scoped {
            let name = object.metadata.name.clone().unwrap_or_default();
            api.patch(
                &name,
                &PatchParams::apply(FIELD_MANAGER).dry_run().force(),
                &Patch::Apply(&object),
            )
            .await
        } else {
            api.create(&PostParams::default(), &object).await
        };
        accepted.unwrap_or_else(|err| panic!("{} was rejected: {err}", path.display()));
    }
}

#[tokio::test]
#[ignore = "needs the local stack (tests/env/up.sh); make test runs it"]
async fn invalid_manifests_are_rejected_naming_the_field() {
    let client = client().await;
    install_crds(&client).await;
    let namespace = fresh_namespace(&client, "admission-invalid").await;
    let cases = yaml_files(&repo_root().join("tests/admission/invalid"));
    assert!(
        cases.len() >= 25,
        "expected at least 25 invalid cases, found {}",
        cases.len()
    );
    let mut failures = Vec::new();
    for path in &cases {
        let (text, object) = load(path);
        let field = header(&text, "field");
        let message = header(&text, "message");
        let result = api_for(&client, &namespace, &object)
            .create(&PostParams::default(), &object)
            .await;
        let name = path.file_name().expect("file name").to_string_lossy();
        match result {
            Ok(_) => failures.push(format!("{name}: accepted")),
            Err(kube::Error::Api(status)) if status.code == 422 => {
                let said = status.message;
                if !said.contains(&format!("{field}:")) || !said.contains(message) {
                    failures.push(format!(
                        "{name}: expected `{field}: …{message}…`, got: {said}"
                    ));
                }
            }
            Err(err) => failures.push(format!("{name}: unexpected error {err}")),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

/// Transition rules (`oldSelf`) run only on updates, so this case creates, then changes.
#[tokio::test]
#[ignore = "needs the local stack (tests/env/up.sh); make test runs it"]
async fn a_retention_policy_cannot_move_to_another_bucket() {
    let client = client().await;
    install_crds(&client).await;
    let namespace = fresh_namespace(&client, "admission-update").await;
    let (_, object) = load(&repo_root().join("examples/rp-internal-rnd.yaml"));
    let api = api_for(&client, &namespace, &object);
    let name = api
        .create(&PostParams::default(), &object)
        .await
        .unwrap_or_else(|err| panic!("create examples/rp-internal-rnd.yaml: {err}"))
        .name_any();

    let move_bucket = json!({ "spec": { "bucket": "another-bucket-entirely" } });
    match api
        .patch(&name, &PatchParams::default(), &Patch::Merge(&move_bucket))
        .await
    {
        Err(kube::Error::Api(status)) if status.code == 422 => assert!(
            status.message.contains("spec.bucket:")
                && status.message.contains("bucket is immutable"),
            "{}",
            status.message
        ),
        other => panic!("changing spec.bucket: expected 422, got {other:?}"),
    }
    let change_region = json!({ "spec": { "region": "eu-west-1" } });
    api.patch(
        &name,
        &PatchParams::default(),
        &Patch::Merge(&change_region),
    )
    .await
    .unwrap_or_else(|err| panic!("changing spec.region stays allowed: {err}"));
}

#[tokio::test]
#[ignore = "needs the local stack (tests/env/up.sh); make test runs it"]
async fn kubectl_explain_prints_field_docs() {
    let client = client().await;
    install_crds(&client).await;
    let explained = eventually_explain("trainingpartition.spec.credentials").await;
    for expected in [
        "How long each STS session lasts",
        "renewBefore",
        "revokeOnDelete",
        "sessionTags",
        "The Secret that receives the credentials",
    ] {
        assert!(
            explained.contains(expected),
            "`kubectl explain` lacks {expected:?}:\n{explained}"
        );
    }
}

/// `kubectl explain` reads the OpenAPI document, which the apiserver republishes a moment
/// after a CRD is established; retry briefly.
async fn eventually_explain(field: &str) -> String {
    securepipe_tests::eventually(
        std::time::Duration::from_secs(30),
        "kubectl explain",
        || async {
            let output = Command::new("kubectl")
                .args(["explain", field])
                .output()
                .expect("run kubectl");
            output
                .status
                .success()
                .then(|| String::from_utf8_lossy(&output.stdout).into_owned())
        },
    )
    .await
}
