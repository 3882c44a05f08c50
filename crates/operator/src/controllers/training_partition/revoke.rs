//! Revocation: the roles a TrainingPartition's sessions were minted on are recorded in
//! its status before each mint; revoking denies this object's UID on each of them. The
//! revocation finalizer is present only while `revokeOnDelete` is on (or promised
//! earlier); adding and removing it goes through kube's `finalizer()` helper, and
//! cleanup revokes before the resource goes.

use std::future::Future;
use std::sync::Arc;

use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::runtime::finalizer::{self, finalizer};
use kube::{Resource, ResourceExt};
use securepipe_api::TrainingPartition;
use securepipe_cloud::revocation::{self, Cutoff, Revocation, Revoked};
use serde_json::json;

use super::super::error::is_not_found;
use super::super::{Error, ObjectKey, events, status_patch};
use crate::context::ACTION_CLEANUP;
use crate::{Context, managers};

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

/// Records `role_arn` in `status.usedRoleArns` (its own field manager) unless it is
/// there. Every mint of any session for a TrainingPartition (credentials, worker) calls
/// this first, with the identifying tags of `session_tags::identifying`: then no session
/// exists on a role that [`revoke_all`] would miss.
pub async fn record_role(
    api: &Api<TrainingPartition>,
    tp: &TrainingPartition,
    object: &ObjectKey,
    role_arn: &str,
) -> Result<(), Error> {
    let recorded = used_roles(tp);
    if recorded.iter().any(|role| role == role_arn) {
        return Ok(());
    }
    let mut roles = recorded.to_vec();
    roles.push(role_arn.to_owned());
    status_patch::apply(
        api,
        &object.name,
        managers::REVOCATION,
        &json!({ "usedRoleArns": roles }),
    )
    .await
    .map_err(object.kube("record the role in status.usedRoleArns"))
}

fn used_roles(tp: &TrainingPartition) -> &[String] {
    tp.status
        .as_ref()
        .map_or(&[], |status| status.used_role_arns.as_slice())
}

/// Revokes every session this TrainingPartition ever had, on every role it was minted on
/// (`status.usedRoleArns`): whatever the partition, access or role was at the time, and
/// every kind of session minted with its identifying tags (credentials and worker
/// sessions alike), because the deny matches the UID tag. One Event says what happened;
/// an error names the role and leaves the rest for the retry (writing is idempotent).
pub async fn revoke_all(
    tp: &TrainingPartition,
    ctx: &Context,
    object: &ObjectKey,
    cutoff: Cutoff,
    action: &str,
) -> Result<(), Error> {
    let roles = used_roles(tp);
    if roles.is_empty() {
        return Ok(());
    }
    let uid = tp.meta().uid.as_deref().unwrap_or_default();
    let reference = tp.object_ref(&());
    let now = jiff::Timestamp::now();
    let mut revoked = Vec::with_capacity(roles.len());
    for role_arn in roles {
        let revocation = Revocation {
            role_arn,
            uid,
            cutoff,
        };
        match revocation::revoke(&ctx.aws, &revocation, now).await {
            Ok(Revoked::Denied) => revoked.push(format!("denied on {role_arn}")),
            Ok(Revoked::RoleGone) => revoked.push(format!("{role_arn} no longer exists")),
            Err(err) => {
                ctx.publish(
                    &reference,
                    EventType::Warning,
                    events::REVOCATION_FAILED,
                    err.to_string(),
                    action,
                )
                .await;
                return Err(object.cleanup(err.label(), err.to_string()));
            }
        }
    }
    let note = format!(
        "sessions of UID {uid} issued before {}: {}",
        super::secret::rfc3339(cutoff.bound(now)),
        revoked.join("; ")
    );
    ctx.publish(
        &reference,
        EventType::Normal,
        events::SESSIONS_REVOKED,
        note,
        action,
    )
    .await;
    Ok(())
}

/// Deletion: revokes every session the TrainingPartition ever had. An error keeps the
/// finalizer, and the error policy retries.
pub async fn cleanup(
    tp: &TrainingPartition,
    ctx: &Context,
    object: &ObjectKey,
) -> Result<Action, Error> {
    revoke_all(tp, ctx, object, Cutoff::Deleted, ACTION_CLEANUP).await?;
    Ok(Action::await_change())
}
