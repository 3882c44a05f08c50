//! `securepipe operator`: runs the TrainingPartition and RetentionPolicy controllers.

use std::net::SocketAddr;
use std::time::Duration;

use securepipe_cloud::AwsSettings;
use securepipe_cloud::revocation;
use securepipe_operator::controllers::extraction::{DEFAULT_IMAGE, WorkerSettings};
use securepipe_operator::controllers::{TenantScope, WatchScope};
use securepipe_operator::leader::LeaseSettings;
use securepipe_operator::runner::{self, RunError, Settings};

/// Run the operator. The Kubernetes connection comes from the in-cluster service account
/// or KUBECONFIG; AWS credentials and endpoints from the standard AWS settings
/// (IRSA / Pod Identity, AWS_ENDPOINT_URL*, AWS_REGION, ...).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Watch only this namespace instead of the whole cluster.
    #[arg(long, env = "SECUREPIPE_WATCH_NAMESPACE")]
    namespace: Option<String>,
    /// The namespaces where the operator may write credentials Secrets (comma-separated;
    /// its RBAC binds Secret access there only): TrainingPartitions elsewhere are refused
    /// with `NamespaceNotServed`, and Secrets are watched namespace by namespace. Absent:
    /// every namespace (Secret access bound cluster-wide).
    #[arg(long, env = "SECUREPIPE_SECRET_NAMESPACES")]
    secret_namespaces: Option<String>,
    /// Roles to assume for revoking sessions on roles of other AWS accounts than the
    /// operator's, at most one per account (comma-separated ARNs). Without one, such a
    /// TrainingPartition with `revokeOnDelete` is refused (`RevokerMissing`).
    #[arg(long, env = "SECUREPIPE_REVOKER_ROLE_ARNS", value_delimiter = ',', value_parser = revoker_role_arn)]
    revoker_role_arn: Vec<String>,
    /// Address of the /healthz, /readyz and /metrics endpoints.
    #[arg(long, env = "SECUREPIPE_LISTEN", default_value = "0.0.0.0:8080")]
    listen: SocketAddr,
    /// Elect a leader on a Lease before reconciling, so that several replicas are safe
    /// (`--leader-elect` or `--leader-elect=true`; the Helm chart turns it on). Off by
    /// default, as in Kubernetes' own controllers: then run a single replica.
    #[arg(
        long,
        env = "SECUREPIPE_LEADER_ELECT",
        num_args = 0..=1,
        require_equals = true,
        default_value_t = false,
        default_missing_value = "true"
    )]
    leader_elect: bool,
    /// Namespace of the leader-election Lease (must exist).
    #[arg(long, env = "POD_NAMESPACE", default_value = "securepipe-system")]
    lease_namespace: String,
    /// Name of the leader-election Lease.
    #[arg(long, default_value = "securepipe-operator")]
    lease_name: String,
    /// This replica's identity in the Lease (defaults to the pod name, then the host name).
    #[arg(long, env = "POD_NAME")]
    identity: Option<String>,
    /// Address S3 buckets by path instead of by virtual host (emulators such as LocalStack).
    #[arg(long, env = "SECUREPIPE_S3_FORCE_PATH_STYLE")]
    s3_force_path_style: bool,
    /// Log as JSON lines instead of text.
    #[arg(long, env = "SECUREPIPE_LOG_JSON")]
    log_json: bool,
    #[command(flatten)]
    worker: WorkerArgs,
}

/// How extraction worker Jobs run (the chart's `worker.*` values).
#[derive(Debug, clap::Args)]
struct WorkerArgs {
    /// The worker image, unless a TrainingPartition names one in `spec.extraction.image`
    /// (the chart passes the operator's own image).
    #[arg(long, env = "SECUREPIPE_WORKER_IMAGE", default_value = DEFAULT_IMAGE)]
    worker_image: String,
    #[arg(long, env = "SECUREPIPE_WORKER_IMAGE_PULL_POLICY", default_value = "IfNotPresent",
          value_parser = ["IfNotPresent", "Always", "Never"])]
    worker_image_pull_policy: String,
    /// Worker container CPU request (a quantity; empty for none).
    #[arg(long, env = "SECUREPIPE_WORKER_CPU_REQUEST", default_value = "250m")]
    worker_cpu_request: String,
    #[arg(
        long,
        env = "SECUREPIPE_WORKER_MEMORY_REQUEST",
        default_value = "256Mi"
    )]
    worker_memory_request: String,
    #[arg(long, env = "SECUREPIPE_WORKER_CPU_LIMIT", default_value = "")]
    worker_cpu_limit: String,
    #[arg(long, env = "SECUREPIPE_WORKER_MEMORY_LIMIT", default_value = "1Gi")]
    worker_memory_limit: String,
    /// Pod failures a worker Job tolerates before it fails.
    #[arg(long, env = "SECUREPIPE_WORKER_BACKOFF_LIMIT", default_value_t = 2,
          value_parser = clap::value_parser!(i32).range(0..=100))]
    worker_backoff_limit: i32,
    /// The longest a worker Job runs (also cut to what is left of its session).
    #[arg(long, env = "SECUREPIPE_WORKER_ACTIVE_DEADLINE_SECONDS", default_value_t = 3600,
          value_parser = clap::value_parser!(u64).range(60..=86400))]
    worker_active_deadline_seconds: u64,
    /// How long finished worker Jobs (and their Pods) are kept.
    #[arg(long, env = "SECUREPIPE_WORKER_TTL_SECONDS_AFTER_FINISHED", default_value_t = 3600,
          value_parser = clap::value_parser!(u64).range(0..=604800))]
    worker_ttl_seconds_after_finished: u64,
    /// Samples each worker Pod processes at once.
    #[arg(long, env = "SECUREPIPE_WORKER_SAMPLES_IN_FLIGHT", default_value_t = 4,
          value_parser = clap::value_parser!(u16).range(1..=256))]
    worker_samples_in_flight: u16,
    /// AWS_ENDPOINT_URL in worker Pods (an emulator, a VPC endpoint); unset on AWS.
    #[arg(long, env = "SECUREPIPE_WORKER_AWS_ENDPOINT_URL")]
    worker_aws_endpoint_url: Option<String>,
}

impl WorkerArgs {
    fn settings(self, s3_force_path_style: bool) -> WorkerSettings {
        let quantities = |pairs: [(&str, String); 2]| {
            pairs
                .into_iter()
                .filter(|(_, value)| !value.is_empty())
                .map(|(key, value)| (key.to_owned(), value))
                .collect()
        };
        WorkerSettings {
            image: self.worker_image,
            image_pull_policy: self.worker_image_pull_policy,
            requests: quantities([
                ("cpu", self.worker_cpu_request),
                ("memory", self.worker_memory_request),
            ]),
            limits: quantities([
                ("cpu", self.worker_cpu_limit),
                ("memory", self.worker_memory_limit),
            ]),
            backoff_limit: self.worker_backoff_limit,
            active_deadline: Duration::from_secs(self.worker_active_deadline_seconds),
            ttl_after_finished: Duration::from_secs(self.worker_ttl_seconds_after_finished),
            samples_in_flight: self.worker_samples_in_flight,
            aws_endpoint_url: self.worker_aws_endpoint_url.filter(|url| !url.is_empty()),
            s3_force_path_style,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot start the async runtime")]
    Runtime(#[source] std::io::Error),
    #[error("cannot connect to Kubernetes (in-cluster config or KUBECONFIG)")]
    Kubernetes(#[source] kube::Error),
    #[error(transparent)]
    Run(#[from] RunError),
}

pub fn run(args: Args) -> Result<(), Error> {
    init_logging(args.log_json);
    let runtime = super::runtime().map_err(Error::Runtime)?;
    runtime.block_on(async {
        let client = kube::Client::try_default()
            .await
            .map_err(Error::Kubernetes)?;
        let identity = args.identity.unwrap_or_else(default_identity);
        let scope = args
            .namespace
            .map_or(WatchScope::AllNamespaces, WatchScope::Namespace);
        let settings = Settings {
            secrets: TenantScope::new(&scope, args.secret_namespaces.as_deref()),
            scope,
            listen: args.listen,
            lease: args
                .leader_elect
                .then(|| LeaseSettings::new(args.lease_namespace, args.lease_name, identity)),
            aws: AwsSettings {
                s3_force_path_style: args.s3_force_path_style,
                revoker_role_arns: args.revoker_role_arn,
            },
            worker: args.worker.settings(args.s3_force_path_style),
        };
        runner::run(client, settings).await?;
        Ok(())
    })
}

fn revoker_role_arn(value: &str) -> Result<String, String> {
    if revocation::is_role_arn(value) {
        Ok(value.to_owned())
    } else {
        Err(format!(
            "{value} is not an IAM role ARN with an account (arn:aws:iam::<account>:role/<name>)"
        ))
    }
}

fn default_identity() -> String {
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "securepipe".to_owned());
    format!("{host}-{}", std::process::id())
}

fn init_logging(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, clap::Parser)]
    struct Command {
        #[command(flatten)]
        args: Args,
    }

    fn leader_elect(argv: &[&str]) -> bool {
        Command::try_parse_from(std::iter::once("operator").chain(argv.iter().copied()))
            .expect("valid arguments")
            .args
            .leader_elect
    }

    #[test]
    fn leader_election_is_off_unless_asked_for() {
        assert!(!leader_elect(&[]));
        assert!(leader_elect(&["--leader-elect"]));
        assert!(leader_elect(&["--leader-elect=true"]));
        assert!(!leader_elect(&["--leader-elect=false"]));
        assert!(leader_elect(&["--leader-elect", "--namespace", "ml"]));
    }

    #[test]
    fn revoker_roles_must_be_role_arns() {
        let parse = |argv: &[&str]| {
            Command::try_parse_from(std::iter::once("operator").chain(argv.iter().copied()))
                .map(|command| command.args.revoker_role_arn)
        };
        assert_eq!(
            parse(&["--revoker-role-arn=arn:aws:iam::111122223333:role/r,arn:aws:iam::444455556666:role/r"]).unwrap().len(),
            2
        );
        assert!(parse(&["--revoker-role-arn=securepipe-revoker"]).is_err());
    }
}
