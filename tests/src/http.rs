//! The one HTTP call the harness makes itself: plain-text GETs to loopback test endpoints.

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A bare HTTP/1.0 GET, enough for the operator's endpoints and LocalStack's internal ones.
pub async fn http_get(address: &str, path: &str) -> std::io::Result<(u16, String)> {
    let mut stream = tokio::net::TcpStream::connect(address).await?;
    stream
        .write_all(format!("GET {path} HTTP/1.0\r\nHost: {address}\r\n\r\n").as_bytes())
        .await?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await?;
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map_or(String::new(), |(_, body)| body.to_owned());
    Ok((status, body))
}
