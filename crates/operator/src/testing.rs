//! A mock apiserver for exact-call unit tests: a `kube::Client` whose every request
//! arrives at the test, which checks it and answers it. A reconcile's calls are asserted
//! one by one, in order, and a call the test did not expect fails it.

use std::time::Duration;

use http::{Request, Response, StatusCode};
use kube::Client;
use kube::client::Body;
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};

type Pending = (Request<Body>, oneshot::Sender<Response<Body>>);

/// How long a test waits for the next call before it fails.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// The test's end of the client.
pub struct ApiServer {
    requests: mpsc::Receiver<Pending>,
}

/// One request: its method, path with query, and JSON body (`Null` when empty).
pub struct Call {
    pub method: String,
    pub uri: String,
    pub body: Value,
    answer: oneshot::Sender<Response<Body>>,
}

/// A client talking to the returned mock.
pub fn mock_client() -> (Client, ApiServer) {
    let (sender, requests) = mpsc::channel::<Pending>(16);
    let service = tower::service_fn(move |request: Request<Body>| {
        let sender = sender.clone();
        async move {
            let (answer, answered) = oneshot::channel();
            sender
                .send((request, answer))
                .await
                .map_err(|_| "the mock apiserver is gone")?;
            answered
                .await
                .map_err(|_| "the test dropped the call without answering")
        }
    });
    (Client::new(service, "default"), ApiServer { requests })
}

impl ApiServer {
    /// The next call; fails the test when none comes within a few seconds.
    pub async fn next(&mut self) -> Call {
        self.next_or_gone().await.expect("the client is gone")
    }

    /// The next call, or `None` once every client is dropped.
    pub async fn next_or_gone(&mut self) -> Option<Call> {
        let (request, answer) = tokio::time::timeout(CALL_TIMEOUT, self.requests.recv())
            .await
            .expect("no call to the apiserver within 5 s")?;
        let method = request.method().to_string();
        let uri = request.uri().to_string();
        let bytes = request
            .into_body()
            .collect_bytes()
            .await
            .expect("read the request body");
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).expect("a JSON request body")
        };
        Some(Call {
            method,
            uri,
            body,
            answer,
        })
    }

    /// The next call, which must be `method` on a URI starting with `path`.
    pub async fn expect(&mut self, method: &str, path: &str) -> Call {
        let call = self.next().await;
        assert_eq!(call.method, method, "{} {}", call.method, call.uri);
        assert!(
            call.uri.starts_with(path),
            "expected {method} {path}, got {} {}",
            call.method,
            call.uri
        );
        call
    }

    /// Fails when any call is still waiting (after the code under test finished).
    pub fn expect_no_more(&mut self) {
        if let Ok((request, _)) = self.requests.try_recv() {
            panic!("unexpected call {} {}", request.method(), request.uri());
        }
    }
}

impl Call {
    /// Answers 200 with `body`.
    pub fn ok(self, body: &Value) {
        self.respond(StatusCode::OK, body);
    }

    /// Answers with a Kubernetes `Status` failure of `code` (404, 409, ...).
    pub fn fail(self, code: u16, reason: &str, message: &str) {
        let status = serde_json::json!({
            "kind": "Status", "apiVersion": "v1", "status": "Failure",
            "code": code, "reason": reason, "message": message,
        });
        self.respond(
            StatusCode::from_u16(code).expect("an HTTP status code"),
            &status,
        );
    }

    fn respond(self, status: StatusCode, body: &Value) {
        let bytes = serde_json::to_vec(body).expect("serialize the answer");
        let response = Response::builder()
            .status(status)
            .header("content-type", "application/json")
            .body(Body::from(bytes))
            .expect("a response");
        // The caller may have given up (a timeout); nothing to do then.
        let _ = self.answer.send(response);
    }
}
