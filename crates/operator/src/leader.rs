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

/// A failure that retrying cannot fix.
#[derive(Debug, thiserror::Error)]
pub enum ElectionError {
    #[error(
        "leader election: the Lease namespace {namespace:?} does not exist. Create it (kubectl create namespace {namespace}), point --lease-namespace (or POD_NAMESPACE) at an existing namespace, or run a single replica without --leader-elect"
    )]
    NoLeaseNamespace { namespace: String },
}

/// The last lease record seen, and when (locally) it last changed.
struct Observed {
    holder: Option<String>,
    renew_time: Option<MicroTime>,
    at: Instant,
}

#[derive(Debug, thiserror::Error)]
enum AttemptError {
    #[error("the Lease namespace does not exist")]
    NoNamespace,
    #[error(transparent)]
    Kube(kube::Error),
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

    /// Waits until this replica holds the lease. Returns false if `shutdown` came first,
    /// and an error at once when the Lease's namespace does not exist (no retry can help).
    pub async fn acquire(&mut self, shutdown: &CancellationToken) -> Result<bool, ElectionError> {
        loop {
            match self.try_acquire_or_renew().await {
                Ok(Attempt::Held) => {
                    tracing::info!(lease = %self.settings.name, identity = %self.settings.identity, "became the leader");
                    return Ok(true);
                }
                Ok(Attempt::HeldByOther) => {}
                Err(AttemptError::NoNamespace) => {
                    return Err(ElectionError::NoLeaseNamespace {
                        namespace: self.settings.namespace.clone(),
                    });
                }
                Err(AttemptError::Kube(err)) => {
                    tracing::warn!(error = %err, lease = %self.settings.name, "lease acquisition failed")
                }
            }
            tokio::select! {
                () = shutdown.cancelled() => return Ok(false),
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

    async fn try_acquire_or_renew(&mut self) -> Result<Attempt, AttemptError> {
        let now = MicroTime(jiff::Timestamp::now());
        let Some(current) = self
            .api
            .get_opt(&self.settings.name)
            .await
            .map_err(AttemptError::Kube)?
        else {
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
                // Creating in a namespace that does not exist is the only 404 a create gets.
                Err(kube::Error::Api(status)) if status.code == 404 => {
                    Err(AttemptError::NoNamespace)
                }
                Err(err) => Err(AttemptError::Kube(err)),
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
            Err(err) => Err(AttemptError::Kube(err)),
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::{Value, json};

    use super::*;
    use crate::testing::{ApiServer, mock_client};

    const LEASES: &str = "/apis/coordination.k8s.io/v1/namespaces/ops/leases";
    const LEASE: &str = "/apis/coordination.k8s.io/v1/namespaces/ops/leases/securepipe-operator";

    fn candidate(identity: &str) -> (Elector, ApiServer) {
        let (client, server) = mock_client();
        let mut settings = LeaseSettings::new(
            "ops".to_owned(),
            "securepipe-operator".to_owned(),
            identity.to_owned(),
        );
        settings.retry_period = Duration::from_millis(20);
        settings.renew_deadline = Duration::from_millis(200);
        (Elector::new(client, settings), server)
    }

    fn lease(holder: Option<&str>, duration_seconds: i32, version: &str) -> Value {
        json!({
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": "securepipe-operator", "namespace": "ops", "resourceVersion": version},
            "spec": {
                "holderIdentity": holder,
                "leaseDurationSeconds": duration_seconds,
                "acquireTime": "2026-11-30T05:00:00.000000Z",
                "renewTime": "2026-11-30T05:00:00.000000Z",
                "leaseTransitions": 3,
            },
        })
    }

    #[tokio::test]
    async fn a_missing_lease_namespace_fails_at_once_saying_what_to_do() {
        let (mut elector, mut server) = candidate("a");
        let shutdown = CancellationToken::new();
        let acquiring = tokio::spawn(async move { elector.acquire(&shutdown).await });
        server.expect("GET", LEASE).await.fail(
            404,
            "NotFound",
            "leases.coordination.k8s.io \"securepipe-operator\" not found",
        );
        let create = server.expect("POST", LEASES).await;
        assert_eq!(create.body["spec"]["holderIdentity"], "a");
        create.fail(404, "NotFound", "namespaces \"ops\" not found");
        let err = acquiring
            .await
            .unwrap()
            .expect_err("no retry can create the namespace");
        let message = err.to_string();
        assert!(message.contains("\"ops\" does not exist"), "{message}");
        assert!(
            message.contains("kubectl create namespace ops"),
            "{message}"
        );
        assert!(message.contains("--leader-elect"), "{message}");
        server.expect_no_more();
    }

    #[tokio::test]
    async fn a_free_lease_is_created_and_held() {
        let (mut elector, mut server) = candidate("a");
        let shutdown = CancellationToken::new();
        let acquiring = tokio::spawn(async move { elector.acquire(&shutdown).await });
        server
            .expect("GET", LEASE)
            .await
            .fail(404, "NotFound", "not found");
        let create = server.expect("POST", LEASES).await;
        assert_eq!(create.body["spec"]["leaseTransitions"], 0);
        assert_eq!(create.body["spec"]["leaseDurationSeconds"], 15);
        let body = create.body.clone();
        create.ok(&body);
        assert!(acquiring.await.unwrap().unwrap());
    }

    #[tokio::test]
    async fn another_holders_lease_is_taken_only_after_it_expired_as_observed_here() {
        let (mut elector, mut server) = candidate("b");
        let shutdown = CancellationToken::new();
        let acquiring = tokio::spawn(async move { elector.acquire(&shutdown).await });
        let first = tokio::time::Instant::now();
        // The holder never renews: the same record, again and again.
        let take = loop {
            let call = server.next().await;
            if call.method == "PUT" {
                break call;
            }
            assert_eq!((call.method.as_str(), call.uri.as_str()), ("GET", LEASE));
            call.ok(&lease(Some("a"), 1, "7"));
        };
        assert!(
            first.elapsed() >= Duration::from_secs(1),
            "taken after {:?}, before the 1 s lease expired",
            first.elapsed()
        );
        assert!(take.uri.starts_with(LEASE), "{}", take.uri);
        // A compare-and-swap on the version read, as the new holder, one more transition.
        assert_eq!(take.body["metadata"]["resourceVersion"], "7");
        assert_eq!(take.body["spec"]["holderIdentity"], "b");
        assert_eq!(take.body["spec"]["leaseTransitions"], 4);
        let body = take.body.clone();
        take.ok(&body);
        assert!(acquiring.await.unwrap().unwrap());
    }

    #[tokio::test]
    async fn a_renewal_that_loses_the_race_gives_up_leadership() {
        let (elector, mut server) = candidate("a");
        let holding = tokio::spawn(elector.hold(CancellationToken::new()));
        server
            .expect("GET", LEASE)
            .await
            .ok(&lease(Some("a"), 15, "8"));
        let renew = server.expect("PUT", LEASE).await;
        assert_eq!(renew.body["metadata"]["resourceVersion"], "8");
        assert_eq!(renew.body["spec"]["holderIdentity"], "a");
        assert_eq!(
            renew.body["spec"]["leaseTransitions"], 3,
            "a renewal is no transition"
        );
        assert_eq!(
            renew.body["spec"]["acquireTime"], "2026-11-30T05:00:00.000000Z",
            "a renewal keeps the acquire time"
        );
        renew.fail(409, "Conflict", "the object has been modified");
        assert!(!holding.await.unwrap(), "leadership is lost");
        server.expect_no_more();
    }

    #[tokio::test]
    async fn renewals_failing_past_the_deadline_give_up_leadership() {
        let (elector, mut server) = candidate("a");
        let holding = tokio::spawn(elector.hold(CancellationToken::new()));
        let started = tokio::time::Instant::now();
        // Every call fails until the elector gives up and drops its client.
        let mut failed = 0;
        while let Some(call) = server.next_or_gone().await {
            call.fail(503, "ServiceUnavailable", "etcd is down");
            failed += 1;
        }
        assert!(failed >= 2, "{failed} attempts");
        assert!(!holding.await.unwrap());
        assert!(started.elapsed() >= Duration::from_millis(200));
    }

    #[tokio::test]
    async fn shutdown_hands_the_lease_over_at_once() {
        let (elector, mut leader) = candidate("a");
        let shutdown = CancellationToken::new();
        let holding = tokio::spawn(elector.hold(shutdown.clone()));
        shutdown.cancel();
        leader
            .expect("GET", LEASE)
            .await
            .ok(&lease(Some("a"), 15, "9"));
        let release = leader.expect("PUT", LEASE).await;
        assert_eq!(release.body["spec"]["holderIdentity"], Value::Null);
        assert_eq!(release.body["spec"]["leaseDurationSeconds"], 1);
        let released = release.body.clone();
        release.ok(&released);
        assert!(
            holding.await.unwrap(),
            "a released lease is no lost leadership"
        );

        // The standby takes the released lease on its first look, without waiting.
        let (mut standby, mut server) = candidate("b");
        let acquiring =
            tokio::spawn(async move { standby.acquire(&CancellationToken::new()).await });
        server.expect("GET", LEASE).await.ok(&released);
        let take = server.expect("PUT", LEASE).await;
        assert_eq!(take.body["spec"]["holderIdentity"], "b");
        let body = take.body.clone();
        take.ok(&body);
        assert!(acquiring.await.unwrap().unwrap());
    }
}
