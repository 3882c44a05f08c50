//! The operator process: HTTP endpoints, CRD check, leader election, then the
//! controllers, until SIGTERM/SIGINT (graceful: in-flight reconciles finish, the lease is
//! released) or until leadership is lost (the process exits so it restarts clean).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use kube::Client;
use kube::api::ListParams;
use securepipe_api::tenant_grant::TenantGrant;
use securepipe_api::{RetentionPolicy, TrainingPartition};
use securepipe_cloud::{Aws, AwsSettings};
use tokio_util::sync::CancellationToken;

use crate::Context;
use crate::controllers::extraction::WorkerSettings;
use crate::controllers::grants::{GrantFeed, Grants};
use crate::controllers::{
    TenantScope, WatchScope, extraction, retention_policy, training_partition,
};
use crate::health::{self, Health};
use crate::leader::{ElectionError, Elector, LeaseSettings};
use crate::metrics::Metrics;

/// How long shutdown waits for in-flight reconciles and HTTP connections: well inside
/// Kubernetes' default 30 s termination grace period.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Clone, Debug)]
pub struct Settings {
    pub scope: WatchScope,
    /// Where credentials Secrets may be written and are watched (the operator's RBAC).
    pub secrets: TenantScope,
    pub listen: SocketAddr,
    /// `None` runs without leader election (the default: one replica only).
    pub lease: Option<LeaseSettings>,
    pub aws: AwsSettings,
    /// How worker Jobs run.
    pub worker: WorkerSettings,
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("cannot serve the health and metrics endpoints on {listen}")]
    Listen {
        listen: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "lost the leader lease {lease}; exiting so that a fresh process takes part in the next election"
    )]
    LostLeadership { lease: String },
    #[error(transparent)]
    Election(#[from] ElectionError),
}

pub async fn run(client: Client, settings: Settings) -> Result<(), RunError> {
    let shutdown = CancellationToken::new();
    tokio::spawn(cancel_on_signal(shutdown.clone()));

    let metrics = Arc::new(Metrics::new());
    let health = Arc::new(Health::default());
    let bound = tokio::net::TcpListener::bind(settings.listen)
        .await
        .map_err(|source| RunError::Listen {
            listen: settings.listen,
            source,
        })?;
    let listener = tokio::spawn(health::serve(
        bound,
        health.clone(),
        metrics.clone(),
        shutdown.clone(),
    ));

    let aws = Aws::from_env(settings.aws.clone()).await;
    let leading = metrics.leading.clone();
    let (grants, grant_feed) = Grants::new();
    let ctx = Arc::new(
        Context::new(client.clone(), aws, metrics, grants)
            .with_tenant_scope(settings.secrets.clone())
            .with_worker(settings.worker.clone()),
    );

    if !wait_for_crds(&client, &settings.scope, &shutdown).await {
        return finish(listener, settings.listen).await;
    }
    let elector = match &settings.lease {
        Some(lease) => {
            health.set_ready(true); // standing by is healthy
            let mut elector = Elector::new(client.clone(), lease.clone());
            match elector.acquire(&shutdown).await {
                Ok(true) => Some(elector),
                Ok(false) => return finish(listener, settings.listen).await,
                Err(err) => {
                    health.set_ready(false);
                    shutdown.cancel();
                    // The endpoints stop with the shutdown; the election error is the answer.
                    let _ = finish(listener, settings.listen).await;
                    return Err(err.into());
                }
            }
        }
        None => None,
    };

    let controllers = shutdown.child_token();
    let running = tokio::spawn(run_controllers(
        ctx,
        grant_feed,
        settings.scope.clone(),
        controllers.clone(),
    ));
    health.set_ready(true);
    leading.set(1);
    tracing::info!(scope = ?settings.scope, secrets = ?settings.secrets, "controllers running");

    let lost = match elector {
        Some(elector) => !elector.hold(shutdown.clone()).await,
        None => {
            shutdown.cancelled().await;
            false
        }
    };
    health.set_ready(false);
    leading.set(0);
    controllers.cancel();
    match tokio::time::timeout(DRAIN_TIMEOUT, running).await {
        Ok(Ok(())) => tracing::info!("controllers stopped"),
        Ok(Err(err)) => tracing::error!(error = %err, "controller task failed"),
        Err(_) => {
            tracing::warn!(timeout = ?DRAIN_TIMEOUT, "controllers still draining; exiting anyway")
        }
    }
    if lost {
        shutdown.cancel();
        let lease = settings.lease.map(|l| l.name).unwrap_or_default();
        return Err(RunError::LostLeadership { lease });
    }
    finish(listener, settings.listen).await
}

async fn run_controllers(
    ctx: Arc<Context>,
    grant_feed: GrantFeed,
    scope: WatchScope,
    shutdown: CancellationToken,
) {
    let feed = grant_feed.run(ctx.client.clone(), scope.clone(), shutdown.clone());
    let controllers = async {
        // Every verdict reads the grant stores: they must have listed first.
        tokio::select! {
            () = ctx.grants.ready() => {}
            () = shutdown.cancelled() => return,
        }
        tokio::join!(
            training_partition::run(ctx.clone(), scope.clone(), shutdown.clone()),
            extraction::run(ctx.clone(), scope.clone(), shutdown.clone()),
            retention_policy::run(ctx.clone(), scope.clone(), shutdown.clone()),
        );
    };
    tokio::join!(feed, controllers);
}

/// Waits until the apiserver serves the CRDs in `scope`, TenantGrant included (without
/// it every object would wait for grants; readiness stays false until then). Returns false on shutdown.
async fn wait_for_crds(client: &Client, scope: &WatchScope, shutdown: &CancellationToken) -> bool {
    let one = ListParams::default().limit(1);
    loop {
        let partitions = scope
            .api::<TrainingPartition>(client.clone())
            .list_metadata(&one)
            .await;
        let policies = scope
            .api::<RetentionPolicy>(client.clone())
            .list_metadata(&one)
            .await;
        let grants = kube::Api::<TenantGrant>::all(client.clone())
            .list_metadata(&one)
            .await;
        match (partitions, policies, grants) {
            (Ok(_), Ok(_), Ok(_)) => return true,
            (Err(err), _, _) | (_, Err(err), _) | (_, _, Err(err)) => {
                tracing::warn!(error = %err, "securepipe CRDs not served yet (install crds/); retrying");
            }
        }
        tokio::select! {
            () = shutdown.cancelled() => return false,
            () = tokio::time::sleep(Duration::from_secs(2)) => {}
        }
    }
}

async fn finish(
    listener: tokio::task::JoinHandle<std::io::Result<()>>,
    listen: SocketAddr,
) -> Result<(), RunError> {
    match tokio::time::timeout(DRAIN_TIMEOUT, listener).await {
        Ok(Ok(Err(source))) => Err(RunError::Listen { listen, source }),
        _ => Ok(()),
    }
}

async fn cancel_on_signal(shutdown: CancellationToken) {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(err) => {
                tracing::warn!(error = %err, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminate => {}
    }
    tracing::info!("shutting down: finishing in-flight reconciles");
    shutdown.cancel();
}
