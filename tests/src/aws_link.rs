//! A TCP proxy between the operator and LocalStack that a test can cut and restore: the
//! operator sees exactly what an AWS outage looks like (connections refused and reset),
//! while LocalStack, shared by every suite, keeps its state.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

pub struct AwsLink {
    address: SocketAddr,
    up: Arc<AtomicBool>,
    generation: watch::Sender<u64>,
    task: tokio::task::JoinHandle<()>,
}

impl AwsLink {
    /// Starts a proxy on a free loopback port forwarding to `upstream` (host:port).
    pub async fn start(upstream: String) -> Self {
        Self::start_on("127.0.0.1", upstream).await
    }

    /// Starts a proxy on a free port of `host` (the node's bridge address, for Pods).
    pub async fn start_on(host: &str, upstream: String) -> Self {
        let listener = TcpListener::bind((host, 0))
            .await
            .unwrap_or_else(|err| panic!("bind the AWS link proxy on {host}: {err}"));
        let address = listener.local_addr().expect("proxy address");
        let up = Arc::new(AtomicBool::new(true));
        let (generation, _) = watch::channel(0_u64);
        let task = tokio::spawn(accept_loop(
            listener,
            upstream,
            up.clone(),
            generation.clone(),
        ));
        Self {
            address,
            up,
            generation,
            task,
        }
    }

    /// The endpoint URL to give the operator instead of LocalStack's.
    pub fn endpoint_url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Drops every open connection and refuses new ones.
    pub fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        self.generation.send_modify(|g| *g += 1);
    }

    pub fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

impl Drop for AwsLink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn accept_loop(
    listener: TcpListener,
    upstream: String,
    up: Arc<AtomicBool>,
    generation: watch::Sender<u64>,
) {
    loop {
        let Ok((mut inbound, _)) = listener.accept().await else {
            continue;
        };
        if !up.load(Ordering::SeqCst) {
            drop(inbound); // reset: the client sees the connection fail
            continue;
        }
        let upstream = upstream.clone();
        let mut cut = generation.subscribe();
        tokio::spawn(async move {
            let Ok(mut outbound) = TcpStream::connect(&upstream).await else {
                return;
            };
            tokio::select! {
                _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                _ = cut.changed() => {}
            }
        });
    }
}
