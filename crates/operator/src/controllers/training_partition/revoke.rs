//! The revocation finalizer: present only while `revokeOnDelete` is on. On deletion it
//! writes the deny statement on the role (idempotently) and then lets the resource go.

use std::time::Duration;

use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::{Resource, ResourceExt};
use securepipe_api::TrainingPartition;
use securepipe_cloud::revocation::{self, Revocation, Revoked};
use serde_json::json;

use super::error::Error;
use crate::Context;

pub const FINALIZER: &str = "securepipe.io/revoke-sessions";

/// Adds or removes the finalizer to match `revokeOnDelete`. Returns whether it patched
/// (the patch triggers the next reconcile).
pub async fn sync_finalizer(
    api: &Api<TrainingPartition>,
    tp: &TrainingPartition,
) -> Result<bool, Error> {
    let has = tp.finalizers().iter().any(|f| f == FINALIZER);
    let wants = tp.spec.credentials.revoke_on_delete;
    if has == wants {
        return Ok(false);
    }
    let mut finalizers: Vec<String> = tp
        .finalizers()
        .iter()
        .filter(|f| *f != FINALIZER)
        .cloned()
        .collect();
    if wants {
        finalizers.push(FINALIZER.to_owned());
    }
    patch_finalizers(api, tp, finalizers).await?;
    Ok(true)
}

/// Handles a TrainingPartition being deleted.
pub async fn finish(
    api: &Api<TrainingPartition>,
    tp: &TrainingPartition,
    namespace: &str,
    ctx: &Context,
) -> Result<Action, Error> {
    if !tp.finalizers().iter().any(|f| f == FINALIZER) {
        return Ok(Action::await_change());
    }
    let name = tp.name_any();
    let partition = tp
        .spec
        .partition
        .as_ref()
        .map_or_else(|| name.clone(), |p| p.as_str().to_owned());
    // The deletion time is the cut-off: it is the same on every retry, so the written
    // document is too.
    let issued_before = tp
        .meta()
        .deletion_timestamp
        .as_ref()
        .map_or_else(jiff::Timestamp::now, |t| t.0);
    let revocation = Revocation {
        role_arn: tp.spec.role_arn.as_str(),
        namespace,
        name: &name,
        partition: &partition,
        issued_before,
    };
    let reference = tp.object_ref(&());
    match revocation::revoke(&ctx.aws.iam(), &revocation).await {
        Ok(revoked) => {
            let note = match revoked {
                Revoked::Denied => format!(
                    "denied sessions of partition {partition} issued before {} on {}",
                    super::secret::rfc3339(issued_before),
                    revocation.role_arn
                ),
                Revoked::RoleGone => format!("role {} no longer exists", revocation.role_arn),
            };
            ctx.publish(&reference, EventType::Normal, "SessionsRevoked", note)
                .await;
            let finalizers = tp
                .finalizers()
                .iter()
                .filter(|f| *f != FINALIZER)
                .cloned()
                .collect();
            patch_finalizers(api, tp, finalizers).await?;
            Ok(Action::await_change())
        }
        Err(err) => {
            let reason = err.reason();
            ctx.metrics.record_error(super::CONTROLLER, reason.as_str());
            tracing::warn!(%namespace, %name, %reason, error = %err, "revocation failed");
            ctx.publish(
                &reference,
                EventType::Warning,
                "RevocationFailed",
                err.to_string(),
            )
            .await;
            Ok(Action::requeue(Duration::from_secs(10)))
        }
    }
}

async fn patch_finalizers(
    api: &Api<TrainingPartition>,
    tp: &TrainingPartition,
    finalizers: Vec<String>,
) -> Result<(), Error> {
    // The resourceVersion makes this a compare-and-swap: a concurrent change to the list
    // fails with 409 and the next reconcile starts from the fresh object.
    let patch = json!({
        "metadata": {
            "finalizers": finalizers,
            "resourceVersion": tp.resource_version(),
        }
    });
    match api
        .patch(
            &tp.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
        Err(source) => Err(Error::Kube {
            namespace: tp.namespace().unwrap_or_default(),
            name: tp.name_any(),
            action: "update finalizers",
            source,
        }),
    }
}
