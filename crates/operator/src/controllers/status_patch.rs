//! The one way a controller writes status: server-side apply of only the fields one
//! concern owns, under that concern's field manager (`securepipe/<concern>`), forced
//! (the operator is the only writer of its own fields), with apiVersion and kind taken
//! from the type. Another concern's fields (say, extraction counters) are left alone:
//! SSA prunes only what this manager owned and left out.

use kube::Resource;
use kube::api::{Api, Patch, PatchParams};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Applies `status` to `name`'s status subresource as `manager`.
pub async fn apply<K, S>(
    api: &Api<K>,
    name: &str,
    manager: &str,
    status: &S,
) -> Result<(), kube::Error>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug,
    S: Serialize,
{
    let patch = body::<K, S>(status);
    api.patch_status(
        name,
        &PatchParams::apply(manager).force(),
        &Patch::Apply(&patch),
    )
    .await?;
    Ok(())
}

/// The apply configuration: apiVersion and kind from the type, then the status.
fn body<K, S>(status: &S) -> serde_json::Value
where
    K: Resource<DynamicType = ()>,
    S: Serialize,
{
    serde_json::json!({
        "apiVersion": K::api_version(&()),
        "kind": K::kind(&()),
        "status": status,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use securepipe_api::{RetentionPolicy, TrainingPartition};

    #[test]
    fn the_body_names_the_type_it_applies_to() {
        let status = serde_json::json!({"observedGeneration": 2});
        let tp = body::<TrainingPartition, _>(&status);
        assert_eq!(tp["apiVersion"], "securepipe.io/v1alpha1");
        assert_eq!(tp["kind"], "TrainingPartition");
        assert_eq!(tp["status"]["observedGeneration"], 2);
        assert_eq!(
            body::<RetentionPolicy, _>(&status)["kind"],
            "RetentionPolicy"
        );
    }
}
