//! Leader election on a `coordination.k8s.io/v1` Lease, the way client-go does it: a
//! candidate takes the lease when it is free or when its holder has not renewed it for a
//! whole lease duration *as observed locally* (so clock skew between replicas does not
//! matter); every write carries the resourceVersion it read, so two candidates can never
//! both win. The leader renews every `retry_period` and steps down if it cannot renew
//! within `renew_deadline`.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{Api, ObjectMeta, PostParams};
use kube::{Client, ResourceExt};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

#[derive(Clone, Debug)]
pub struct LeaseSettings {
    pub namespace: String,
    pub name: String,
    /// This replica's identity (the pod name in a cluster).
    pub identity: String,
    pub lease_duration: Duration,
    pub renew_deadline: Duration,
    pub retry_period: Duration,
}

impl LeaseSettings {
    /// client-go's defaults: 15 s lease, 10 s renew deadline, 2 s retry period.
    pub fn new(namespace: String, name: String, identity: String) -> Self {
        Self {
            namespace,
            name,
            identity,
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        }
    }
}

/// What one attempt saw.
#[derive(Debug, PartialEq, Eq)]
enum Attempt {
    Held,
    HeldByOther,
}

/// The last lease record seen, and when (locally) it last changed.
struct Observed {
    holder: Option<String>,
    renew_time: Option<MicroTime>,
    at: Instant,
}

pub struct Elector {
    api: Api<Lease>,
    settings: LeaseSettings,
    observed: Option<Observed>,
}

impl Elector {
    pub fn new(client: Client, settings: LeaseSettings) -> Self {
        Self {
            api: Api::namespaced(client, &settings.namespace),
            settings,
            observed: None,
        }
    }

    /// Waits until this replica holds the lease. Returns false if `shutdown` came first.
    pub async fn acquire(&mut self, shutdown: &CancellationToken) -> bool {
        loop {
            match self.try_acquire_or_renew().await {
                Ok(Attempt::Held) => {
                    tracing::info!(lease = %self.settings.name, identity = %self.settings.identity, "became the leader");
                    return true;
                }
                Ok(Attempt::HeldByOther) => {}
                Err(err) => {
                    tracing::warn!(error = %err, lease = %self.settings.name, "lease acquisition failed")
                }
            }
            tokio::select! {
                () = shutdown.cancelled() => return false,
                () = tokio::time::sleep(self.settings.retry_period) => {}
            }
        }
    }

    /// Renews the lease until `shutdown` (then releases it and returns `true`) or until a
    /// renewal fails for longer than the renew deadline (returns `false`: leadership lost).
    pub async fn hold(mut self, shutdown: CancellationToken) -> bool {
        let mut last_renewed = Instant::now();
        loop {
            tokio::select! {
                () = shutdown.cancelled() => {
                    self.release().await;
                    return true;
                }
                () = tokio::time::sleep(self.settings.retry_period) => {}
            }
            match self.try_acquire_or_renew().await {
                Ok(Attempt::Held) => last_renewed = Instant::now(),
                Ok(Attempt::HeldByOther) => {
                    tracing::error!(lease = %self.settings.name, "another replica took the lease");
                    return false;
                }
                Err(err) => {
                    tracing::warn!(error = %err, lease = %self.settings.name, "lease renewal failed");
                    if last_renewed.elapsed() > self.settings.renew_deadline {
                        tracing::error!(lease = %self.settings.name, "could not renew the lease within the deadline");
                        return false;
                    }
                }
            }
        }
    }

    async fn try_acquire_or_renew(&mut self) -> Result<Attempt, kube::Error> {
        let now = MicroTime(jiff::Timestamp::now());
        let Some(current) = self.api.get_opt(&self.settings.name).await? else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.settings.name.clone()),
                    namespace: Some(self.settings.namespace.clone()),
                    ..ObjectMeta::default()
                },
                spec: Some(self.spec(None, now)),
            };
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(_) => Ok(Attempt::Held),
                Err(kube::Error::Api(status)) if status.code == 409 => Ok(Attempt::HeldByOther),
                Err(err) => Err(err),
            };
        };
        let spec = current.spec.clone().unwrap_or_default();
        let holder = spec.holder_identity.clone().filter(|h| !h.is_empty());
        self.observe(&holder, &spec.renew_time);
        let mine = holder.as_deref() == Some(self.settings.identity.as_str());
        if !mine && holder.is_some() && !self.observed_expired(&spec) {
            return Ok(Attempt::HeldByOther);
        }
        let mut next = current.clone();
        next.spec = Some(self.spec(Some(&spec).filter(|_| mine), now));
        if !mine {
            let transitions = spec.lease_transitions.unwrap_or(0) + 1;
            if let Some(spec) = next.spec.as_mut() {
                spec.lease_transitions = Some(transitions);
            }
        }
        // `replace` sends the resourceVersion we read: a concurrent writer gets 409.
        match self
            .api
            .replace(&current.name_any(), &PostParams::default(), &next)
            .await
        {
            Ok(_) => Ok(Attempt::Held),
            Err(kube::Error::Api(status)) if status.code == 409 => Ok(Attempt::HeldByOther),
            Err(err) => Err(err),
        }
    }

    /// The spec to write: a renewal keeps the acquire time and transitions.
    fn spec(&self, renewing: Option<&LeaseSpec>, now: MicroTime) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(self.settings.identity.clone()),
            lease_duration_seconds: i32::try_from(self.settings.lease_duration.as_secs()).ok(),
            acquire_time: renewing
                .and_then(|s| s.acquire_time.clone())
                .or_else(|| Some(now.clone())),
            renew_time: Some(now),
            lease_transitions: renewing.and_then(|s| s.lease_transitions).or(Some(0)),
            ..LeaseSpec::default()
        }
    }

    fn observe(&mut self, holder: &Option<String>, renew_time: &Option<MicroTime>) {
        let changed = self
            .observed
            .as_ref()
            .is_none_or(|seen| &seen.holder != holder || &seen.renew_time != renew_time);
        if changed {
            self.observed = Some(Observed {
                holder: holder.clone(),
                renew_time: renew_time.clone(),
                at: Instant::now(),
            });
        }
    }

    fn observed_expired(&self, spec: &LeaseSpec) -> bool {
        let duration = spec
            .lease_duration_seconds
            .and_then(|s| u64::try_from(s).ok())
            .map_or(self.settings.lease_duration, Duration::from_secs);
        self.observed
            .as_ref()
            .is_some_and(|seen| seen.at.elapsed() > duration)
    }

    /// Gives the lease up so a standby takes over at once instead of after it expires.
    async fn release(&self) {
        let Ok(Some(mut current)) = self.api.get_opt(&self.settings.name).await else {
            return;
        };
        let Some(spec) = current.spec.as_mut() else {
            return;
        };
        if spec.holder_identity.as_deref() != Some(self.settings.identity.as_str()) {
            return;
        }
        spec.holder_identity = None;
        spec.lease_duration_seconds = Some(1);
        let name = current.name_any();
        if let Err(err) = self
            .api
            .replace(&name, &PostParams::default(), &current)
            .await
        {
            tracing::warn!(error = %err, lease = %name, "could not release the lease");
        }
    }
}
