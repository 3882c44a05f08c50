//! Runs the real `securepipe operator` binary against the local stack, as its
//! ServiceAccount: the kubeconfig it gets impersonates
//! `system:serviceaccount:securepipe-system:securepipe-operator`, so the apiserver
//! enforces exactly the RBAC in `config/rbac/`. Its AWS endpoint goes through an
//! [`AwsLink`] the test can cut; its logs go to a file the test can search.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use k8s_openapi::api::rbac::v1::{RoleBinding, RoleRef, Subject};
use kube::Client;
use kube::api::{Api, ObjectMeta, Patch, PatchParams};
use tokio::process::{Child, Command};

use crate::aws_link::AwsLink;
use crate::http::http_get;
use crate::{FIELD_MANAGER, eventually, repo_root};

pub const OPERATOR_NAMESPACE: &str = "securepipe-system";
pub const SERVICE_ACCOUNT: &str = "securepipe-operator";

pub struct OperatorProcess {
    child: Child,
    namespace: String,
    kubeconfig: PathBuf,
    log_path: PathBuf,
    listen: String,
    link: AwsLink,
    restarts: u32,
    /// Arguments after the suite's own (`--worker-*` settings, say).
    extra_args: Vec<String>,
}

impl OperatorProcess {
    /// Applies the RBAC, then starts the operator watching only `namespace` (its lease
    /// lives there too) and waits until `/readyz` answers 200.
    pub async fn start(client: &Client, namespace: &str) -> Self {
        Self::start_with(client, namespace, &[]).await
    }

    /// [`start`](Self::start) with more `securepipe operator` arguments.
    pub async fn start_with(client: &Client, namespace: &str, extra_args: &[String]) -> Self {
        install_rbac(client, namespace).await;
        let endpoint = std::env::var("AWS_ENDPOINT_URL").unwrap_or_else(|_| {
            panic!("AWS_ENDPOINT_URL is not set: source target/env/env.sh (make test does)")
        });
        let upstream = endpoint
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_owned();
        let link = AwsLink::start(upstream).await;
        // One directory per process: a test may run several replicas in one namespace.
        static STARTED: AtomicUsize = AtomicUsize::new(0);
        let instance = STARTED.fetch_add(1, Ordering::Relaxed);
        let dir = repo_root()
            .join("target/stack-tests")
            .join(namespace)
            .join(format!("replica-{instance}"));
        std::fs::create_dir_all(&dir).expect("create the test's work directory");
        let kubeconfig = dir.join("operator.kubeconfig");
        impersonating_kubeconfig(&kubeconfig, OPERATOR_NAMESPACE, SERVICE_ACCOUNT);
        let log_path = dir.join("operator-0.log");
        let listen = free_loopback_address();
        let child = spawn(
            &kubeconfig,
            namespace,
            &link,
            &listen,
            &log_path,
            extra_args,
        );
        let mut operator = Self {
            child,
            namespace: namespace.to_owned(),
            kubeconfig,
            log_path,
            listen,
            link,
            restarts: 0,
            extra_args: extra_args.to_vec(),
        };
        operator.wait_ready().await;
        operator
    }

    pub fn aws_link(&self) -> &AwsLink {
        &self.link
    }

    /// Everything the operator has logged so far (all runs).
    pub fn logs(&self) -> String {
        let mut all = String::new();
        for run in 0..=self.restarts {
            let path = self.log_path.with_file_name(format!("operator-{run}.log"));
            all.push_str(&std::fs::read_to_string(path).unwrap_or_default());
        }
        all
    }

    /// The body of `/metrics`.
    pub async fn metrics(&self) -> String {
        let (status, body) = http_get(&self.listen, "/metrics")
            .await
            .unwrap_or_else(|err| panic!("GET /metrics: {err}\n{}", self.logs()));
        assert_eq!(status, 200, "GET /metrics\n{body}");
        body
    }

    /// The value of an unlabelled counter or gauge in `/metrics`.
    pub async fn metric(&self, name: &str) -> f64 {
        let text = self.metrics().await;
        text.lines()
            .find_map(|line| {
                line.strip_prefix(name)?
                    .strip_prefix(' ')?
                    .trim()
                    .parse()
                    .ok()
            })
            .unwrap_or_else(|| panic!("metric {name} not found in\n{text}"))
    }

    /// The value of one series in `/metrics`, named with its labels
    /// (`securepipe_reconcile_outcomes_total{controller="x",outcome="Kept"}`); 0 while the
    /// series does not exist yet.
    pub async fn series(&self, series: &str) -> f64 {
        let text = self.metrics().await;
        text.lines()
            .find_map(|line| {
                line.strip_prefix(series)?
                    .strip_prefix(' ')?
                    .trim()
                    .parse()
                    .ok()
            })
            .unwrap_or(0.0)
    }

    /// Waits until `series` reaches `at_least`: the way to know that a reconcile happened
    /// (and how it ended) without sleeping.
    pub async fn wait_series(&self, series: &str, at_least: f64, timeout: Duration) {
        let what = format!("{series} >= {at_least}");
        eventually(timeout, &what, || async {
            (self.series(series).await >= at_least).then_some(())
        })
        .await;
    }

    /// Stops the process with SIGTERM (graceful) and starts a fresh one, as a rollout would.
    pub async fn restart(&mut self) {
        self.pause().await;
        self.resume().await;
    }

    /// Stops the process with SIGTERM (graceful) until [`resume`](Self::resume).
    pub async fn pause(&mut self) {
        self.terminate().await;
    }

    /// Starts a fresh process after [`pause`](Self::pause).
    pub async fn resume(&mut self) {
        self.restarts += 1;
        self.log_path = self
            .log_path
            .with_file_name(format!("operator-{}.log", self.restarts));
        self.child = spawn(
            &self.kubeconfig,
            &self.namespace,
            &self.link,
            &self.listen,
            &self.log_path,
            &self.extra_args,
        );
        self.wait_ready().await;
    }

    /// Stops the operator gracefully and returns all its logs.
    pub async fn stop(mut self) -> String {
        self.terminate().await;
        self.logs()
    }

    async fn terminate(&mut self) {
        if let Some(pid) = self.child.id() {
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status();
        }
        match tokio::time::timeout(Duration::from_secs(20), self.child.wait()).await {
            Ok(status) => {
                let status = status.expect("wait for the operator");
                assert!(
                    status.success(),
                    "operator exited with {status}\n{}",
                    self.logs()
                );
            }
            Err(_) => {
                let _ = self.child.kill().await;
                panic!(
                    "operator did not stop within 20 s of SIGTERM\n{}",
                    self.logs()
                );
            }
        }
    }

    async fn wait_ready(&mut self) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("operator exited early with {status}\n{}", self.logs());
            }
            if let Ok((200, _)) = http_get(&self.listen, "/readyz").await {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "operator not ready within 60 s\n{}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// The operator binary: `SECUREPIPE_BIN`, or the workspace's debug build
/// (`make test` builds it before the stack suites).
pub fn securepipe_binary() -> PathBuf {
    if let Ok(path) = std::env::var("SECUREPIPE_BIN") {
        return PathBuf::from(path);
    }
    let target = std::env::var("CARGO_TARGET_DIR")
        .map_or_else(|_| repo_root().join("target"), PathBuf::from);
    let path = target.join("debug/securepipe");
    assert!(
        path.exists(),
        "{} does not exist: run `cargo build -p securepipe-cli` first (make test does)",
        path.display()
    );
    path
}

fn spawn(
    kubeconfig: &PathBuf,
    namespace: &str,
    link: &AwsLink,
    listen: &str,
    log_path: &PathBuf,
    extra_args: &[String],
) -> Child {
    let log = std::fs::File::create(log_path).expect("create the operator log");
    let log_err = log.try_clone().expect("clone the log handle");
    Command::new(securepipe_binary())
        .args([
            "operator",
            "--namespace",
            namespace,
            // As the chart runs it: the suites start two replicas, and restart one.
            "--leader-elect",
            "--lease-namespace",
            namespace,
            "--listen",
            listen,
            "--s3-force-path-style",
        ])
        .args(extra_args)
        .env("KUBECONFIG", kubeconfig)
        .env("AWS_ENDPOINT_URL", link.endpoint_url())
        .env("RUST_LOG", "info,securepipe_operator=debug,kube=warn")
        .env_remove("SECUREPIPE_WATCH_NAMESPACE")
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_err)
        .kill_on_drop(true)
        .spawn()
        .expect("start the securepipe operator")
}

/// Applies `config/rbac/` (once per test process) and binds, in `namespace`, the
/// leader-election role and the tenant role (Secrets), as the chart does for a tenant
/// namespace.
async fn install_rbac(client: &Client, namespace: &str) {
    static APPLIED: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
    APPLIED.get_or_init(apply_rbac_manifests).await;
    for role in ["securepipe-leader-election", "securepipe-operator-tenant"] {
        bind_cluster_role(client, namespace, role).await;
    }
}

/// Binds ClusterRole `role` to the operator's ServiceAccount in `namespace` (a RoleBinding
/// of the same name).
async fn bind_cluster_role(client: &Client, namespace: &str, role: &str) {
    let bindings: Api<RoleBinding> = Api::namespaced(client.clone(), namespace);
    let binding = RoleBinding {
        metadata: ObjectMeta {
            name: Some(role.to_owned()),
            ..ObjectMeta::default()
        },
        role_ref: RoleRef {
            api_group: Some("rbac.authorization.k8s.io".to_owned()),
            kind: "ClusterRole".to_owned(),
            name: role.to_owned(),
        },
        subjects: Some(vec![Subject {
            kind: "ServiceAccount".to_owned(),
            name: SERVICE_ACCOUNT.to_owned(),
            namespace: Some(OPERATOR_NAMESPACE.to_owned()),
            ..Subject::default()
        }]),
    };
    bindings
        .patch(
            role,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&binding),
        )
        .await
        .unwrap_or_else(|err| panic!("bind {role} in {namespace}: {err}"));
}

/// One `kubectl apply` of the folder, exactly as the README and `make demo` do it, with no
/// retry: a retry here once hid that the folder applied its files out of order on a fresh
/// cluster.
async fn apply_rbac_manifests() {
    let output = std::process::Command::new("kubectl")
        .args([
            "apply",
            "--server-side",
            "--field-manager",
            FIELD_MANAGER,
            "-f",
        ])
        .arg(repo_root().join("config/rbac"))
        .output()
        .expect("run kubectl (PATH from target/env/env.sh)");
    assert!(
        output.status.success(),
        "kubectl apply -f config/rbac failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Writes the admin kubeconfig to `path`, impersonating `system:serviceaccount:<namespace>:<name>` (as the
/// kubelet-mounted token would authenticate it).
pub fn impersonating_kubeconfig(path: &Path, namespace: &str, name: &str) {
    let admin = std::env::var("KUBECONFIG").expect("KUBECONFIG (source target/env/env.sh)");
    let text = std::fs::read_to_string(&admin).expect("read the admin kubeconfig");
    let mut config: serde_yaml::Value = serde_yaml::from_str(&text).expect("parse kubeconfig");
    let users = config
        .get_mut("users")
        .and_then(|users| users.as_sequence_mut())
        .expect("kubeconfig users");
    for user in users {
        let user = user
            .get_mut("user")
            .and_then(|user| user.as_mapping_mut())
            .expect("kubeconfig user entry");
        user.insert(
            "as".into(),
            format!("system:serviceaccount:{namespace}:{name}").into(),
        );
        user.insert(
            "as-groups".into(),
            serde_yaml::Value::Sequence(vec![
                "system:serviceaccounts".into(),
                format!("system:serviceaccounts:{namespace}").into(),
                "system:authenticated".into(),
            ]),
        );
    }
    let yaml = serde_yaml::to_string(&config).expect("render kubeconfig");
    std::fs::write(path, yaml).expect("write the impersonating kubeconfig");
}

fn free_loopback_address() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("find a free port");
    listener.local_addr().expect("local address").to_string()
}
