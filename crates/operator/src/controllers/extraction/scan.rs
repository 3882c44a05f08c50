//! The scan: with the worker's own session (never the operator's identity), one bounded
//! listing of the partition's raw folder, and the quarantine tag of what it found, so a
//! sample the worker set aside is not counted as pending forever.

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Secret;
use securepipe_api::worker::QUARANTINE_TAG;
use securepipe_cloud::config::Aws;
use securepipe_cloud::objects::{ObjectError, ObjectStore};
use zeroize::Zeroizing;

use crate::Context;

/// Keys listed per scan: more than this is reported as "at least this many".
pub const LIMIT: u16 = 1000;
/// Tag reads in flight at once.
const TAG_READS: usize = 8;

/// What a scan found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pending {
    /// Raw samples waiting (quarantined ones not counted), at most [`LIMIT`].
    pub count: i64,
    /// More keys exist than one listing returned: `count` is a lower bound.
    pub capped: bool,
}

/// The AWS configuration acting as the session in the worker Secret `secret`; `None`
/// when it holds no usable credentials.
pub fn session(ctx: &Context, secret: &Secret) -> Option<Aws> {
    let value = |key: &str| {
        secret
            .data
            .as_ref()
            .and_then(|data| data.get(key))
            .and_then(|bytes| String::from_utf8(bytes.0.clone()).ok())
            .map(Zeroizing::new)
    };
    let id = value("AWS_ACCESS_KEY_ID")?;
    let key = value("AWS_SECRET_ACCESS_KEY")?;
    let token = value("AWS_SESSION_TOKEN")?;
    Some(ctx.aws.with_session(&id, &key, &token))
}

/// Counts the raw samples waiting under `folder` of `bucket`, as the session in `secret`;
/// `None` when the Secret holds no usable credentials (edited or replaced since the
/// operator wrote it: the next reconcile mints a session over it).
pub async fn pending(
    ctx: &Context,
    secret: &Secret,
    region: &str,
    bucket: &str,
    folder: &str,
) -> Result<Option<Pending>, ObjectError> {
    let Some(aws) = session(ctx, secret) else {
        return Ok(None);
    };
    let store = ObjectStore::new(&aws, region, bucket);
    // One page one key larger than the limit tells "exactly 1000" from "more".
    let (keys, truncated) = store.list_keys_bounded(folder, LIMIT).await?;
    if truncated {
        // A full page is pending work however many of it are quarantined: the Job skips
        // those, and tag reads for a thousand keys every interval would cost more.
        return Ok(Some(Pending {
            count: i64::from(LIMIT),
            capped: true,
        }));
    }
    let quarantined: Vec<bool> = futures::stream::iter(keys)
        .map(|key| {
            let store = store.clone();
            async move {
                let tags = store.tags(&key, None).await?;
                Ok::<_, ObjectError>(tags.contains_key(QUARANTINE_TAG))
            }
        })
        .buffer_unordered(TAG_READS)
        .try_collect()
        .await?;
    let waiting = quarantined.iter().filter(|q| !**q).count();
    Ok(Some(Pending {
        count: i64::try_from(waiting).unwrap_or(i64::MAX),
        capped: false,
    }))
}
