//! The revocation finalizer: present only while `revokeOnDelete` is on (or promised
//! earlier). Adding it and removing it after cleanup goes through kube's `finalizer()`
//! helper; cleanup writes the deny statement on the role (idempotently) and then lets
//! the resource go.

use std::future::Future;
use std::sync::Arc;

use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::runtime::finalizer::{self, finalizer};
use kube::{Resource, ResourceExt};
use securepipe_api::TrainingPartition;
use securepipe_cloud::revocation::{self, Revocation, Revoked};
use serde_json::json;

use super::super::error::is_not_found;
use super::super::{Error, ObjectKey, events};
use crate::Context;
use crate::context::ACTION_CLEANUP;

pub const FINALIZER: &str = "securepipe.io/revoke-sessions";

fn has_finalizer(tp: &TrainingPartition) -> bool {
    tp.finalizers().iter().any(|f| f == FINALIZER)
}

/// Runs `reconcile` through kube's finalizer helper when deletion must wait for
/// revocation (asked for in the spec, or the finalizer is already there); otherwise
/// applies directly, and removes a finalizer the spec no longer asks for.
pub async fn finalized<F, Fut>(
    api: &Api<TrainingPartition>,
    object: &ObjectKey,
    tp: Arc<TrainingPartition>,
    reconcile: F,
) -> Result<Action, Error>
where
    F: FnOnce(finalizer::Event<TrainingPartition>) -> Fut,
    Fut: Future<Output = Result<Action, Error>>,
{
    let wanted = tp.spec.credentials.revoke_on_delete;
    let deleting = tp.meta().deletion_timestamp.is_some();
    match (wanted, has_finalizer(&tp), deleting) {
        // Nothing to revoke: the garbage collector removes the Secret.
        (false, false, true) => Ok(Action::await_change()),
        (false, false, false) => reconcile(finalizer::Event::Apply(tp)).await,
        (false, true, false) => {
            remove_finalizer(api, &tp, object).await?;
            Ok(Action::await_change())
        }
        _ => finalizer(api, FINALIZER, tp, reconcile)
            .await
            .map_err(|err| Error::Finalizer(Box::new(err))),
    }
}

/// Removes the finalizer. The resourceVersion makes the patch a compare-and-swap: a
/// concurrent change to the list fails with 409 and the next reconcile starts afresh.
async fn remove_finalizer(
    api: &Api<TrainingPartition>,
    tp: &TrainingPartition,
    object: &ObjectKey,
) -> Result<(), Error> {
    let finalizers: Vec<&String> = tp.finalizers().iter().filter(|f| *f != FINALIZER).collect();
    let patch = json!({
        "metadata": {
            "finalizers": finalizers,
            "resourceVersion": tp.resource_version(),
        }
    });
    match api
        .patch(&object.name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        Ok(_) => Ok(()),
        Err(err) if is_not_found(&err) => Ok(()),
        Err(err) => Err(object.kube("remove the revocation finalizer")(err)),
    }
}

/// Revokes the partition's sessions issued before its deletion. An error keeps the
/// finalizer, and the error policy retries.
pub async fn cleanup(
    tp: &TrainingPartition,
    ctx: &Context,
    object: &ObjectKey,
) -> Result<Action, Error> {
    let partition = tp.partition_name().unwrap_or(object.name.as_str());
    // The deletion time is the cut-off: it is the same on every retry, so the written
    // document is too.
    let issued_before = tp
        .meta()
        .deletion_timestamp
        .as_ref()
        .map_or_else(jiff::Timestamp::now, |t| t.0);
    let revocation = Revocation {
        role_arn: tp.spec.role_arn.as_str(),
        namespace: &object.namespace,
        name: &object.name,
        partition,
        issued_before,
    };
    let reference = tp.object_ref(&());
    match revocation::revoke(&ctx.aws, &revocation).await {
        Ok(revoked) => {
            let note = match revoked {
                Revoked::Denied => format!(
                    "denied sessions of partition {partition} issued before {} on {}",
                    super::secret::rfc3339(issued_before),
                    revocation.role_arn
                ),
                Revoked::RoleGone => format!("role {} no longer exists", revocation.role_arn),
            };
            ctx.publish(
                &reference,
                EventType::Normal,
                events::SESSIONS_REVOKED,
                note,
                ACTION_CLEANUP,
            )
            .await;
            Ok(Action::await_change())
        }
        Err(err) => {
            ctx.publish(
                &reference,
                EventType::Warning,
                events::REVOCATION_FAILED,
                err.to_string(),
                ACTION_CLEANUP,
            )
            .await;
            Err(object.cleanup(err.reason().as_str(), err.to_string()))
        }
    }
}
