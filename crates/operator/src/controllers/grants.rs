//! The grant check both controllers run before any AWS call: the TenantGrants and the
//! namespaces' labels, held in memory by two reflectors, and the verdict for one object
//! (default deny: [`crate::grant_coverage`]). A change to any grant asks both controllers
//! to reconcile everything, so a grant removed stops renewals at once.

use std::time::Duration;

use futures::{Stream, StreamExt};
use k8s_openapi::api::core::v1::Namespace;
use kube::runtime::reflector::{self, ObjectRef, Store, store::Writer};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client};
use securepipe_api::tenant_grant::TenantGrant;
use securepipe_api::{RetentionPolicy, TrainingPartition};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use super::WatchScope;
use crate::grant_coverage::{self, ExtractionRequest, PartitionRequest, RetentionRequest, Verdict};

/// What the controllers read: the grants and the namespaces' labels.
#[derive(Clone)]
pub struct Grants {
    grants: Store<TenantGrant>,
    namespaces: Store<Namespace>,
    changed: broadcast::Sender<()>,
}

/// What fills [`Grants`]: run by [`GrantFeed::run`] beside the controllers.
pub struct GrantFeed {
    grants: Writer<TenantGrant>,
    namespaces: Writer<Namespace>,
    changed: broadcast::Sender<()>,
}

impl Grants {
    pub fn new() -> (Self, GrantFeed) {
        let (grants, grants_writer) = reflector::store();
        let (namespaces, namespaces_writer) = reflector::store();
        let (changed, _) = broadcast::channel(16);
        (
            Self {
                grants,
                namespaces,
                changed: changed.clone(),
            },
            GrantFeed {
                grants: grants_writer,
                namespaces: namespaces_writer,
                changed,
            },
        )
    }

    /// One item per grant change (a lagging receiver gets one item for all it missed).
    pub fn changes(&self) -> impl Stream<Item = ()> + Send + 'static {
        futures::stream::unfold(self.changed.subscribe(), |mut receiver| async move {
            match receiver.recv().await {
                Ok(()) | Err(broadcast::error::RecvError::Lagged(_)) => Some(((), receiver)),
                Err(broadcast::error::RecvError::Closed) => None,
            }
        })
    }

    /// Waits until both reflectors have listed once: before that an empty store would
    /// read as "no grant" and deny everything. The controllers start only after this
    /// returns, so a verdict never reads an unlisted store.
    ///
    /// Await it from one task only: kube-runtime's readiness future keeps a single waker
    /// (a oneshot receiver), so of several tasks waiting at once all but the last polled
    /// are never woken. Reconciles that each waited here hung forever.
    pub async fn ready(&self) {
        // A dropped writer means the feed stopped: the stores stay empty and deny.
        let _ = self.grants.wait_until_ready().await;
        let _ = self.namespaces.wait_until_ready().await;
    }

    fn verdict_with(
        &self,
        namespace: &str,
        decide: impl FnOnce(&[TenantGrant], grant_coverage::Namespace<'_>) -> Verdict,
    ) -> Verdict {
        let grants: Vec<TenantGrant> = self.grants.state().iter().map(|g| (**g).clone()).collect();
        let labels = self
            .namespaces
            .get(&ObjectRef::new(namespace))
            .and_then(|ns| ns.metadata.labels.clone())
            .unwrap_or_default();
        decide(
            &grants,
            grant_coverage::Namespace {
                name: namespace,
                labels: &labels,
            },
        )
    }

    /// Whether a grant covers everything `tp` asks for.
    pub fn partition(&self, namespace: &str, tp: &TrainingPartition) -> Verdict {
        let spec = &tp.spec;
        let extraction = spec.extraction.as_ref().filter(|e| e.enabled);
        let request = PartitionRequest {
            role_arn: spec.role_arn.as_str(),
            bucket: spec.bucket.as_str(),
            partition: tp.partition_name().unwrap_or_default(),
            feature_prefix: spec.feature_prefix.as_str(),
            access: spec.access,
            duration: Duration::from(spec.credentials.duration),
            session_tag_keys: spec
                .credentials
                .session_tags
                .keys()
                .map(String::as_str)
                .collect(),
            extraction: extraction.map(|e| ExtractionRequest {
                raw_prefix: spec.raw_prefix.as_str(),
                kms_key_arn: e.kms_key_arn.as_ref().map_or("", |k| k.as_str()),
            }),
        };
        self.verdict_with(namespace, |grants, ns| {
            grant_coverage::partition(grants, ns, &request)
        })
    }

    /// Whether a grant covers the bucket, rule prefixes and posture `policy` manages.
    pub fn retention(&self, namespace: &str, policy: &RetentionPolicy) -> Verdict {
        let spec = &policy.spec;
        let request = RetentionRequest {
            bucket: spec.bucket.as_str(),
            rule_prefixes: spec.rules.iter().map(|r| r.prefix.as_str()).collect(),
            posture: spec.bucket_posture.is_some(),
        };
        self.verdict_with(namespace, |grants, ns| {
            grant_coverage::retention(grants, ns, &request)
        })
    }
}

impl GrantFeed {
    /// Keeps the stores current until `shutdown`, announcing every grant change. Only the
    /// namespaces in `scope` are watched.
    pub async fn run(self, client: Client, scope: WatchScope, shutdown: CancellationToken) {
        let changed = self.changed;
        let grants = watcher(
            Api::<TenantGrant>::all(client.clone()),
            watcher::Config::default(),
        )
        .default_backoff()
        .reflect(self.grants)
        .touched_objects()
        .for_each(|event| {
            match event {
                Ok(_) => {
                    // No receivers yet (controllers starting) is fine: they list anyway.
                    let _ = changed.send(());
                }
                Err(err) => tracing::warn!(error = %err, "watching TenantGrants"),
            }
            async {}
        });
        let selected = match &scope {
            WatchScope::AllNamespaces => watcher::Config::default(),
            WatchScope::Namespace(name) => {
                watcher::Config::default().fields(&format!("metadata.name={name}"))
            }
        };
        let namespaces = watcher(Api::<Namespace>::all(client), selected)
            .default_backoff()
            .reflect(self.namespaces)
            .for_each(|event| {
                if let Err(err) = event {
                    tracing::warn!(error = %err, "watching Namespaces");
                }
                async {}
            });
        tokio::select! {
            () = grants => {}
            () = namespaces => {}
            () = shutdown.cancelled() => {}
        }
    }

    /// Fills the stores with exactly `grants` and `namespaces` (tests).
    #[cfg(test)]
    pub fn fill(mut self, grants: Vec<TenantGrant>, namespaces: Vec<Namespace>) {
        self.grants.apply_watcher_event(&watcher::Event::Init);
        for grant in grants {
            self.grants
                .apply_watcher_event(&watcher::Event::InitApply(grant));
        }
        self.grants.apply_watcher_event(&watcher::Event::InitDone);
        self.namespaces.apply_watcher_event(&watcher::Event::Init);
        for namespace in namespaces {
            self.namespaces
                .apply_watcher_event(&watcher::Event::InitApply(namespace));
        }
        self.namespaces
            .apply_watcher_event(&watcher::Event::InitDone);
        // Ready stays ready (memoized) after the writers are dropped.
    }
}

/// Grants holding exactly `grants` (TenantGrant specs as YAML, named `grant-<i>`), with
/// namespace `ml` and no labels (tests).
#[cfg(test)]
pub fn holding(grants: &[&str]) -> Grants {
    let grants = grants
        .iter()
        .enumerate()
        .map(|(i, spec)| TenantGrant {
            metadata: kube::core::ObjectMeta {
                name: Some(format!("grant-{i}")),
                ..Default::default()
            },
            spec: serde_yaml::from_str(spec).expect("grant spec"),
        })
        .collect();
    let namespace = Namespace {
        metadata: kube::core::ObjectMeta {
            name: Some("ml".to_owned()),
            ..Default::default()
        },
        ..Namespace::default()
    };
    let (held, feed) = Grants::new();
    feed.fill(grants, vec![namespace]);
    held
}

/// The message of a denial, and the note of its Event.
pub fn not_granted(kind: &str, namespace: &str, name: &str, message: &str) -> String {
    format!(
        "{kind} {namespace}/{name} is not granted: {message}; ask the platform team for a TenantGrant that covers it"
    )
}
