//! A TCP proxy between the operator and LocalStack that a test can cut and restore: the
//! operator sees exactly what an AWS outage looks like (connections refused and reset),
//! while LocalStack, shared by every suite, keeps its state.
//!
//! It can also acknowledge chosen S3 writes without passing them on ([`AwsLink::ignore`]):
//! what an eventually consistent S3, or a proxy that loses writes, looks like. The
//! operator must then notice that what it wrote is not there. And it can break chosen
//! downloads in the middle of their body ([`AwsLink::break_downloads`]).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// The longest request head the link reads while it inspects requests.
const MAX_HEAD: usize = 64 * 1024;

pub struct AwsLink {
    address: SocketAddr,
    up: Arc<AtomicBool>,
    rules: Arc<Mutex<Rules>>,
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
        let rules = Arc::new(Mutex::new(Rules::default()));
        let (generation, _) = watch::channel(0_u64);
        let task = tokio::spawn(accept_loop(
            listener,
            upstream,
            up.clone(),
            rules.clone(),
            generation.clone(),
        ));
        Self {
            address,
            up,
            rules,
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

    /// From now on, answers every PUT or DELETE on these S3 bucket subresources (the
    /// query key: `lifecycle`, `versioning`, ...) with success, without passing it on.
    /// Open connections are dropped, so no request slips past on one opened before.
    pub fn ignore(&self, subresources: &[&str]) {
        self.rules
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .ignored = subresources.iter().map(|s| (*s).to_owned()).collect();
        self.generation.send_modify(|g| *g += 1);
    }

    /// From now on, passes on only the first `after_bytes` bytes (head included) of the
    /// response to every GET whose target contains `target`, then ends the download as
    /// `ending` says. Open connections are dropped, as with [`Self::ignore`].
    pub fn break_downloads(&self, target: &str, after_bytes: u64, ending: Ending) {
        self.rules
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .broken_downloads
            .push((target.to_owned(), after_bytes, ending));
        self.generation.send_modify(|g| *g += 1);
    }

    /// Passes every request on again, whole.
    pub fn forward_all(&self) {
        *self.rules.lock().unwrap_or_else(PoisonError::into_inner) = Rules::default();
        self.generation.send_modify(|g| *g += 1);
    }
}

/// How a broken download ends once its first bytes are through.
#[derive(Clone, Copy, Debug)]
pub enum Ending {
    /// The connection closes: the body ends before the length the response stated.
    Close,
    /// The connection stays open and sends nothing more.
    Stall,
}

/// Which requests the link does not simply pass on.
#[derive(Clone, Default)]
struct Rules {
    /// S3 bucket subresources whose writes are acknowledged and dropped.
    ignored: Vec<String>,
    /// GETs whose target contains the first part break after that many bytes.
    broken_downloads: Vec<(String, u64, Ending)>,
}

impl Rules {
    fn inspect_requests(&self) -> bool {
        !self.ignored.is_empty() || !self.broken_downloads.is_empty()
    }

    fn broken_download(&self, request: &Head<'_>) -> Option<(u64, Ending)> {
        (request.method == "GET")
            .then(|| {
                self.broken_downloads
                    .iter()
                    .find(|(target, _, _)| request.target.contains(target.as_str()))
            })
            .flatten()
            .map(|(_, after_bytes, ending)| (*after_bytes, *ending))
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
    rules: Arc<Mutex<Rules>>,
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
        let rules = rules.lock().unwrap_or_else(PoisonError::into_inner).clone();
        let mut cut = generation.subscribe();
        tokio::spawn(async move {
            let relay = async {
                if rules.inspect_requests() {
                    let _ = relay_one_request(&mut inbound, &upstream, &rules).await;
                } else {
                    let Ok(mut outbound) = TcpStream::connect(&upstream).await else {
                        return;
                    };
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                }
            };
            tokio::select! {
                () = relay => {}
                _ = cut.changed() => {}
            }
        });
    }
}

/// Relays the connection's first request, or acknowledges it when it writes an ignored
/// subresource, and ends the connection after the response (the request passed on asks
/// for `Connection: close`), so that every request is inspected. A download to break gets
/// the first bytes of its response only.
async fn relay_one_request(
    inbound: &mut TcpStream,
    upstream: &str,
    rules: &Rules,
) -> std::io::Result<()> {
    let (head, rest) = read_head(inbound).await?;
    let request = Head::parse(&head);
    if request.writes(&rules.ignored) {
        if request
            .header("expect")
            .is_some_and(|e| e.eq_ignore_ascii_case("100-continue"))
        {
            inbound.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").await?;
        }
        let length: usize = request
            .header("content-length")
            .and_then(|l| l.parse().ok())
            .unwrap_or(0);
        discard(inbound, length.saturating_sub(rest.len())).await?;
        let status = if request.method == "DELETE" {
            "204 No Content"
        } else {
            "200 OK"
        };
        let response =
            format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        return inbound.write_all(response.as_bytes()).await;
    }
    let mut outbound = TcpStream::connect(upstream).await?;
    outbound.write_all(request.closing().as_bytes()).await?;
    outbound.write_all(&rest).await?;
    if let Some((after_bytes, ending)) = rules.broken_download(&request) {
        let mut response = (&mut outbound).take(after_bytes);
        tokio::io::copy(&mut response, inbound).await?;
        if let Ending::Stall = ending {
            // Until the link is cut, told otherwise, or dropped.
            std::future::pending::<()>().await;
        }
        // Returning drops both connections: the client sees the body end early.
        return Ok(());
    }
    tokio::io::copy_bidirectional(inbound, &mut outbound)
        .await
        .map(|_| ())
}

/// Reads up to the end of the request head; returns the head and the bytes after it.
async fn read_head(inbound: &mut TcpStream) -> std::io::Result<(String, Vec<u8>)> {
    let mut buffer = Vec::new();
    let mut chunk = [0_u8; 4096];
    loop {
        if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            let rest = buffer.split_off(end + 4);
            return Ok((String::from_utf8_lossy(&buffer).into_owned(), rest));
        }
        if buffer.len() > MAX_HEAD {
            return Err(std::io::Error::other("request head too long"));
        }
        let read = inbound.read(&mut chunk).await?;
        if read == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buffer.extend_from_slice(&chunk[..read]);
    }
}

async fn discard(from: &mut (impl AsyncRead + Unpin), mut length: usize) -> std::io::Result<()> {
    let mut chunk = [0_u8; 4096];
    while length > 0 {
        let read = from.read(&mut chunk[..length.min(4096)]).await?;
        if read == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        length -= read;
    }
    Ok(())
}

/// An HTTP/1.1 request head, as much of it as the link needs.
struct Head<'a> {
    method: &'a str,
    target: &'a str,
    headers: Vec<(&'a str, &'a str)>,
}

impl<'a> Head<'a> {
    fn parse(head: &'a str) -> Self {
        let mut lines = head.split("\r\n").filter(|l| !l.is_empty());
        let mut request_line = lines.next().unwrap_or_default().split(' ');
        let method = request_line.next().unwrap_or_default();
        let target = request_line.next().unwrap_or_default();
        let headers = lines
            .filter_map(|line| line.split_once(':'))
            .map(|(name, value)| (name.trim(), value.trim()))
            .collect();
        Self {
            method,
            target,
            headers,
        }
    }

    fn header(&self, name: &str) -> Option<&'a str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| *v)
    }

    /// Whether this is a PUT or DELETE of one of the `subresources` (a query key).
    fn writes(&self, subresources: &[String]) -> bool {
        let query = self.target.split_once('?').map_or("", |(_, q)| q);
        matches!(self.method, "PUT" | "DELETE")
            && query.split('&').any(|pair| {
                let key = pair.split_once('=').map_or(pair, |(k, _)| k);
                subresources.iter().any(|s| s == key)
            })
    }

    /// The head again, asking the server to close the connection after its response.
    fn closing(&self) -> String {
        let mut head = format!("{} {} HTTP/1.1\r\n", self.method, self.target);
        for (name, value) in &self.headers {
            if !name.eq_ignore_ascii_case("connection") {
                head.push_str(&format!("{name}: {value}\r\n"));
            }
        }
        head.push_str("Connection: close\r\n\r\n");
        head
    }
}
