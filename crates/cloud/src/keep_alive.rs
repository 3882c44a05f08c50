//! Asks every HTTP/1.1 server to keep the connection open for the next request.
//!
//! HTTP/1.1 connections are persistent by default, and AWS keeps them so. LocalStack (and
//! the Python servers behind some S3-compatible stores) closes each one after its response
//! unless the request says `Connection: keep-alive`, so without it every request pays a new
//! TCP connection: about a seventh of the worker's CPU per sample in `tests/bench/worker.sh`.
//! The header changes nothing where connections are kept anyway.

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextMut;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;

#[derive(Debug, Default)]
pub(crate) struct KeepAlive;

impl Intercept for KeepAlive {
    fn name(&self) -> &'static str {
        "KeepAlive"
    }

    // After signing: the header is about this hop, not part of the signed request.
    fn modify_before_transmit(
        &self,
        context: &mut BeforeTransmitInterceptorContextMut<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        context
            .request_mut()
            .headers_mut()
            .insert("connection", "keep-alive");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::io::{BufRead, BufReader, Write};
    use std::net::TcpListener;
    use std::sync::mpsc;

    use crate::config::{Aws, AwsSettings};

    /// A loopback server that answers every request 200 on the connection it came on and
    /// reports each request's connection number and `Connection` header.
    fn server() -> (String, mpsc::Receiver<(usize, Option<String>)>) {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let address = format!("http://{}", listener.local_addr().expect("address"));
        let (seen, requests) = mpsc::channel();
        std::thread::spawn(move || {
            for (connection, stream) in listener.incoming().enumerate() {
                let Ok(stream) = stream else { return };
                let seen = seen.clone();
                std::thread::spawn(move || {
                    let mut writer = stream.try_clone().expect("clone stream");
                    let mut reader = BufReader::new(stream);
                    loop {
                        let mut header = None;
                        let mut line = String::new();
                        // Request line and headers; HEAD requests have no body.
                        loop {
                            line.clear();
                            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                                return;
                            }
                            if line == "\r\n" {
                                break;
                            }
                            if let Some((name, value)) = line.split_once(':')
                                && name.eq_ignore_ascii_case("connection")
                            {
                                header = Some(value.trim().to_owned());
                            }
                        }
                        if seen.send((connection, header)).is_err()
                            || writer
                                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
                                .is_err()
                        {
                            return;
                        }
                    }
                });
            }
        });
        (address, requests)
    }

    #[tokio::test]
    async fn s3_and_kms_ask_to_keep_the_connection_and_reuse_it() {
        let (endpoint, requests) = server();
        let aws = Aws::with_endpoint(&endpoint, "us-east-1", AwsSettings::default());
        let s3 = aws.s3("us-east-1");
        for _ in 0..3 {
            s3.head_bucket()
                .bucket("b")
                .send()
                .await
                .expect("HeadBucket");
        }
        let seen: Vec<_> = requests.try_iter().collect();
        assert_eq!(seen.len(), 3, "{seen:?}");
        assert!(
            seen.iter()
                .all(|(connection, header)| *connection == 0
                    && header.as_deref() == Some("keep-alive")),
            "{seen:?}"
        );

        // KMS answers with an empty body, which the SDK may reject: only the request counts.
        let _ = aws.kms("us-east-1").list_keys().send().await;
        let (_, header) = requests.recv().expect("the KMS request");
        assert_eq!(header.as_deref(), Some("keep-alive"));
    }
}
