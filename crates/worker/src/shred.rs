//! Deleting the raw versions of verified samples, many keys per DeleteObjects call.
//!
//! Samples arrive here once their features are verified; every `BATCH` of them, or fewer
//! once the oldest has waited `MAX_WAIT`, and the rest at the end of the run, are deleted
//! in two steps: the older versions and delete
//! markers of every key in the batch first, then the processed versions. An interrupted
//! batch so leaves each processed version current, and the next run finds its verified
//! features and only deletes. Exactly the listed versions are deleted, so a version written
//! after the listing stays for the next run. After the last batch, one listing of the raw
//! folder confirms that none of the deleted versions is left.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use securepipe_cloud::objects::{ObjectError, ObjectVersion, Pin};
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::time::Instant;

use crate::failpoint;
use crate::sample::{self, Context, DisplayChain, Listed, Record, SampleError, Shreddable};

/// Samples per deletion batch: few calls per run, and a crash leaves at most this many
/// verified samples for the next run to delete.
const BATCH: usize = 100;

/// How long a verified sample's raw versions wait at most for their batch to fill: raw data
/// and features coexist no longer than needed when samples come slowly.
const MAX_WAIT: Duration = Duration::from_secs(10);

/// Deletes the raw versions of every sample received, until the sender closes. Returns each
/// sample's record, or why its raw versions are not (all) gone.
pub async fn shred(
    ctx: &Context,
    mut verified: UnboundedReceiver<Shreddable>,
) -> Vec<(Listed, Result<Record, SampleError>)> {
    let mut results = Vec::new();
    while let Some(batch) = next_batch(&mut verified, BATCH, MAX_WAIT).await {
        results.extend(delete_batch(ctx, batch).await);
    }
    confirm(ctx, &mut results).await;
    for (object, result) in &results {
        let (key, version) = (object.key.as_str(), object.version_id.as_str());
        match result {
            Ok(record) => tracing::info!(key, version, feature_key = %record.feature_key,
                versions_deleted = record.versions_deleted.len(), resumed = record.resumed,
                "shredded"),
            Err(err) => tracing::error!(key, version, error = %DisplayChain(err),
                "raw versions not deleted; left for the next run"),
        }
    }
    results
}

/// The next batch: `size` items, or fewer once the first has waited `max_wait` or the
/// sender has closed; `None` when it has closed and nothing is left.
async fn next_batch<T>(
    items: &mut UnboundedReceiver<T>,
    size: usize,
    max_wait: Duration,
) -> Option<Vec<T>> {
    let first = items.recv().await?;
    let deadline = Instant::now() + max_wait;
    let mut batch = vec![first];
    while batch.len() < size {
        match tokio::time::timeout_at(deadline, items.recv()).await {
            Ok(Some(item)) => batch.push(item),
            Ok(None) | Err(_) => break,
        }
    }
    Some(batch)
}

async fn delete_batch(
    ctx: &Context,
    batch: Vec<Shreddable>,
) -> Vec<(Listed, Result<Record, SampleError>)> {
    let older: Vec<(String, Pin)> = batch
        .iter()
        .flat_map(|sample| {
            let key = &sample.object.key;
            sample
                .object
                .older
                .iter()
                .map(|id| (key.clone(), Pin::Version(id.clone())))
        })
        .collect();
    let mut refused = match delete(ctx, &older).await {
        Ok(refused) => refused,
        Err(err) => return fail_all(batch, &err),
    };
    failpoint::point("worker::after-delete-noncurrent");

    // A key whose older versions are not all gone keeps its processed version.
    let current: Vec<(String, Pin)> = batch
        .iter()
        .filter(|sample| !refused.contains_key(&sample.object.key))
        .map(|sample| (sample.object.key.clone(), ctx.pin(&sample.object)))
        .collect();
    match delete(ctx, &current).await {
        Ok(more) => refused.extend(more),
        Err(err) => return fail_all(batch, &err),
    }
    failpoint::point("worker::after-delete");

    let finished_at = sample::now();
    batch
        .into_iter()
        .map(|sample| {
            let result = match refused.remove(&sample.object.key) {
                Some(err) => Err(SampleError::Object(err)),
                None => Ok(sample.record(&finished_at)),
            };
            (sample.object, result)
        })
        .collect()
}

/// Deletes `objects`; the refusals by key (one per key is enough to name it).
async fn delete(
    ctx: &Context,
    objects: &[(String, Pin)],
) -> Result<HashMap<String, ObjectError>, ObjectError> {
    if objects.is_empty() {
        return Ok(Default::default());
    }
    let refused = ctx.store.delete_pinned(objects).await?;
    Ok(refused
        .into_iter()
        .map(|err| (err.key.clone(), err))
        .collect())
}

fn fail_all(
    batch: Vec<Shreddable>,
    err: &ObjectError,
) -> Vec<(Listed, Result<Record, SampleError>)> {
    batch
        .into_iter()
        .map(|sample| {
            let failure = SampleError::Batch {
                key: sample.object.key.clone(),
                source: err.clone(),
            };
            (sample.object, Err(failure))
        })
        .collect()
}

/// Lists the raw folder once and fails every sample one of whose deleted versions is still
/// there (or all of them when the listing fails: nothing unconfirmed is reported shredded).
async fn confirm(ctx: &Context, results: &mut [(Listed, Result<Record, SampleError>)]) {
    if !results.iter().any(|(_, result)| result.is_ok()) {
        return;
    }
    let listing = ctx.store.list_versions(&ctx.settings.raw_root).await;
    for (object, result) in results.iter_mut() {
        let Ok(record) = result else { continue };
        let left = match &listing {
            Ok(entries) => leftovers(ctx, object, record, entries),
            Err(err) => {
                *result = Err(SampleError::Unconfirmed {
                    key: object.key.clone(),
                    source: err.clone(),
                });
                continue;
            }
        };
        if !left.is_empty() {
            *result = Err(SampleError::Leftover {
                key: object.key.clone(),
                versions: left,
            });
        }
    }
}

/// The versions of `object` this run deleted that the listing still shows.
fn leftovers(
    ctx: &Context,
    object: &Listed,
    record: &Record,
    entries: &[ObjectVersion],
) -> Vec<String> {
    let deleted: HashSet<&str> = record.versions_deleted.iter().map(String::as_str).collect();
    entries
        .iter()
        .filter(|entry| entry.key == object.key)
        .filter(|entry| {
            if ctx.versioned {
                deleted.contains(entry.version_id.as_str())
            } else {
                entry.etag == object.etag
            }
        })
        .map(|entry| entry.version_id.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use tokio::sync::mpsc::unbounded_channel;

    use super::*;

    const WAIT: Duration = Duration::from_secs(10);

    #[tokio::test(start_paused = true)]
    async fn a_full_batch_goes_at_once() {
        let (send, mut items) = unbounded_channel();
        for i in 0..5 {
            send.send(i).unwrap();
        }
        let started = Instant::now();
        assert_eq!(next_batch(&mut items, 3, WAIT).await, Some(vec![0, 1, 2]));
        assert_eq!(started.elapsed(), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn a_partial_batch_goes_once_its_first_item_has_waited() {
        let (send, mut items) = unbounded_channel();
        send.send(1).unwrap();
        let later = send.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(4)).await;
            later.send(2).unwrap();
            tokio::time::sleep(Duration::from_secs(20)).await;
            later.send(3).unwrap();
        });
        let started = Instant::now();
        assert_eq!(next_batch(&mut items, 100, WAIT).await, Some(vec![1, 2]));
        assert_eq!(
            started.elapsed(),
            WAIT,
            "counted from the first item, not the last"
        );
        assert_eq!(next_batch(&mut items, 100, WAIT).await, Some(vec![3]));
    }

    #[tokio::test(start_paused = true)]
    async fn the_rest_goes_when_the_sender_closes() {
        let (send, mut items) = unbounded_channel();
        send.send(1).unwrap();
        send.send(2).unwrap();
        drop(send);
        let started = Instant::now();
        assert_eq!(next_batch(&mut items, 100, WAIT).await, Some(vec![1, 2]));
        assert_eq!(started.elapsed(), Duration::ZERO);
        assert_eq!(next_batch(&mut items, 100, WAIT).await, None);
    }
}
