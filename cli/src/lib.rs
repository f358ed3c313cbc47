//! The `musubi` command-line tool. For now it holds `musubi demo`: the whole
//! network on one machine (a dev CA, two security servers, a provider), which
//! the end-to-end tests start too.

#![warn(missing_docs)]

pub mod admin;
pub mod bench;
pub mod demo;
pub mod devpki;

use anyhow::Context as _;

/// One plain-HTTP/1.1 request to `url` (`http://HOST:PORT/PATH`) on a new
/// connection: `method` with `body`; returns the status and at most `limit`
/// bytes of the answer.
pub async fn http_plain(
    url: &str,
    method: hyper::Method,
    body: Vec<u8>,
    limit: usize,
) -> anyhow::Result<(hyper::StatusCode, bytes::Bytes)> {
    use http_body_util::BodyExt as _;
    let uri: hyper::Uri = url.parse().with_context(|| format!("{url:?} is not a URL"))?;
    anyhow::ensure!(uri.scheme_str() == Some("http"), "{url:?} is not an http:// URL");
    let authority = uri.authority().context("the URL has no host")?.to_string();
    let path = uri.path_and_query().map_or("/", |p| p.as_str()).to_string();
    let tcp =
        tokio::net::TcpStream::connect(&authority).await.with_context(|| format!("cannot connect to {authority}"))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tcp)).await?;
    tokio::spawn(conn);
    let req = hyper::Request::builder()
        .method(method)
        .uri(path)
        .header("host", &authority)
        .body(http_body_util::Full::new(bytes::Bytes::from(body)))?;
    let resp = sender.send_request(req).await?;
    let status = resp.status();
    let answer = http_body_util::Limited::new(resp.into_body(), limit)
        .collect()
        .await
        .map_err(|e| anyhow::anyhow!("reading the answer: {e}"))?
        .to_bytes();
    Ok((status, answer))
}
