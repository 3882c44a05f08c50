//! What the controller remembers between reconciles: the cache of policies (to find the
//! others on a bucket), a lock per bucket (the lifecycle configuration is one document, so
//! two policies on a bucket must not read-modify-write it at the same time), the last
//! generation each policy synced (to tell drift from a spec change), failure backoff, and
//! the channel that asks other policies on a bucket to look again.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures::channel::mpsc::UnboundedSender;
use kube::Resource;
use kube::runtime::reflector::{ObjectRef, Store};
use securepipe_api::RetentionPolicy;

use crate::Context;

type Key = ObjectRef<RetentionPolicy>;

/// The first retry delay after a failure; it doubles per consecutive failure.
const FIRST_BACKOFF: Duration = Duration::from_secs(5);
/// The longest retry delay.
const MAX_BACKOFF: Duration = Duration::from_secs(300);

pub struct State {
    pub ctx: Arc<Context>,
    pub store: Store<RetentionPolicy>,
    bucket_locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    synced_generation: Mutex<HashMap<Key, i64>>,
    failures: Mutex<HashMap<Key, u32>>,
    recheck: UnboundedSender<Key>,
}

impl State {
    pub fn new(
        ctx: Arc<Context>,
        store: Store<RetentionPolicy>,
        recheck: UnboundedSender<Key>,
    ) -> Self {
        Self {
            ctx,
            store,
            bucket_locks: Mutex::default(),
            synced_generation: Mutex::default(),
            failures: Mutex::default(),
            recheck,
        }
    }

    /// Waits for exclusive use of `bucket`'s lifecycle configuration.
    pub async fn lock_bucket(&self, bucket: &str) -> tokio::sync::OwnedMutexGuard<()> {
        let lock = self
            .bucket_locks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(bucket.to_owned())
            .or_default()
            .clone();
        lock.lock_owned().await
    }

    /// The other policies in the cache that name `bucket`.
    pub fn others_on(&self, bucket: &str, me: &RetentionPolicy) -> Vec<Arc<RetentionPolicy>> {
        let me = ObjectRef::from_obj(me);
        self.store
            .state()
            .into_iter()
            .filter(|other| {
                other.spec.bucket.as_str() == bucket && ObjectRef::from_obj(other.as_ref()) != me
            })
            .collect()
    }

    /// Asks the other policies on `bucket` to reconcile (their conflicts may have changed).
    pub fn recheck_others(&self, bucket: &str, me: &RetentionPolicy) {
        for other in self.others_on(bucket, me) {
            // The receiver lives as long as the controller; a send fails only at shutdown.
            let _ = self
                .recheck
                .unbounded_send(ObjectRef::from_obj(other.as_ref()));
        }
    }

    pub fn last_synced_generation(&self, policy: &RetentionPolicy) -> Option<i64> {
        self.synced_generation
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&ObjectRef::from_obj(policy))
            .copied()
    }

    pub fn record_synced(&self, policy: &RetentionPolicy) {
        if let Some(generation) = policy.meta().generation {
            self.synced_generation
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(ObjectRef::from_obj(policy), generation);
        }
    }

    /// Forgets a deleted policy.
    pub fn forget(&self, policy: &RetentionPolicy) {
        let key = ObjectRef::from_obj(policy);
        self.synced_generation
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&key);
        self.failures
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&key);
    }

    /// The delay before retrying after another consecutive failure, at most `cap`.
    pub fn backoff(&self, policy: &RetentionPolicy, cap: Duration) -> Duration {
        let mut failures = self.failures.lock().unwrap_or_else(PoisonError::into_inner);
        let count = failures.entry(ObjectRef::from_obj(policy)).or_insert(0);
        let delay = FIRST_BACKOFF.saturating_mul(2u32.saturating_pow(*count));
        *count = count.saturating_add(1);
        delay.min(cap.min(MAX_BACKOFF))
    }

    pub fn succeeded(&self, policy: &RetentionPolicy) {
        self.failures
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&ObjectRef::from_obj(policy));
    }
}
