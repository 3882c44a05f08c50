//! Test cases for the Argo CD health checks (`charts/securepipe/argocd/`), taken from the
//! objects the stack suites really produce. A suite calls [`health_case`] at the moment it
//! observes a state; when `SECUREPIPE_HEALTH_CASES` names a directory, the object is
//! written there with the health Argo CD must report for it, and `make health-cases`
//! turns that directory into the committed `testdata/` and `health_test.yaml` files
//! (`tests/gitops/cmd/gather`). Without the variable it does nothing.
//!
//! `make gitops-test` fails for a condition reason (`securepipe_api::condition::reasons`)
//! that no case shows. A new reason gets its case with one line where a suite observes it:
//!
//! ```ignore
//! health_case("extraction-failed", &tp, Health::Degraded, Message::Condition("Stalled"));
//! ```
//!
//! then `make health-cases` (the stack running) and a commit of what it rewrote.

use std::path::PathBuf;

use kube::Resource;
use serde::Serialize;
use serde_json::Value;

/// The directory the cases are written to, when set.
pub const CASES_ENV: &str = "SECUREPIPE_HEALTH_CASES";

/// What the health checks say of an object the operator has not reported on yet.
pub const NO_STATUS: &str = "Waiting for the operator to report status";

/// What the health checks say while the status describes an older generation.
pub fn stale_generation(generation: i64, observed: i64) -> String {
    format!(
        "Waiting for the operator to observe generation {generation} (status is for generation {observed})"
    )
}

/// What the health check says of a TenantGrant (it has no status).
pub const GRANT_APPLIED: &str = "TenantGrant applied: the operator checks every object against it";

/// Argo CD's health status for a case.
#[derive(Clone, Copy, Debug)]
pub enum Health {
    Healthy,
    Progressing,
    Degraded,
}

impl Health {
    fn as_str(self) -> &'static str {
        match self {
            Self::Healthy => "Healthy",
            Self::Progressing => "Progressing",
            Self::Degraded => "Degraded",
        }
    }
}

/// The message Argo CD must show with it.
#[derive(Clone, Debug)]
pub enum Message<'a> {
    /// The message of the object's condition of this type.
    Condition(&'a str),
    /// This exact text.
    Text(String),
}

/// Records `object` as the health-check case `name` (unique per kind): Argo CD must
/// report `health` with `message`. Does nothing unless [`CASES_ENV`] is set.
pub fn health_case<K>(name: &str, object: &K, health: Health, message: Message<'_>)
where
    K: Resource<DynamicType = ()> + Serialize,
{
    let Some(dir) = std::env::var_os(CASES_ENV) else {
        return;
    };
    let kind = K::kind(&());
    let mut object = serde_json::to_value(object).expect("serialize the object");
    if let Some(metadata) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        // Bookkeeping of the writers, not state: kept out of the committed files.
        metadata.remove("managedFields");
    }
    let message = match message {
        Message::Text(text) => text,
        Message::Condition(type_) => condition_message(&object, type_).unwrap_or_else(|| {
            panic!("health case {kind}/{name}: the object has no {type_} condition: {object}")
        }),
    };
    let case = serde_json::json!({
        "healthStatus": {"status": health.as_str(), "message": message},
        "object": object,
    });
    let dir = PathBuf::from(dir).join(kind.as_ref());
    std::fs::create_dir_all(&dir).unwrap_or_else(|err| panic!("create {}: {err}", dir.display()));
    let path = dir.join(format!("{name}.yaml"));
    let partial = dir.join(format!(".{name}.yaml.partial"));
    let yaml = serde_yaml::to_string(&case).expect("case YAML");
    std::fs::write(&partial, yaml)
        .unwrap_or_else(|err| panic!("write {}: {err}", partial.display()));
    std::fs::rename(&partial, &path)
        .unwrap_or_else(|err| panic!("rename to {}: {err}", path.display()));
}

fn condition_message(object: &Value, type_: &str) -> Option<String> {
    object
        .pointer("/status/conditions")?
        .as_array()?
        .iter()
        .find(|c| c.get("type").and_then(Value::as_str) == Some(type_))?
        .get("message")
        .and_then(Value::as_str)
        .map(str::to_owned)
}
