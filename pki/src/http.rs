//! OCSP over HTTP (RFC 6960 Appendix A): a small client that fetches a
//! response, and the dev CA's responder. Both bound their inputs.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::sync::watch;

use crate::DevCa;
use crate::ocsp::MAX_RESPONSE_BYTES;

/// Why a fetch failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FetchError {
    /// The URL is not `http://host:port/path`.
    #[error("OCSP responder URL {0:?} is not an http:// URL")]
    BadUrl(String),
    /// Connecting or talking to the responder failed.
    #[error("OCSP responder {url}: {detail}")]
    Network {
        /// The responder.
        url: String,
        /// What failed.
        detail: String,
    },
    /// The responder answered with an HTTP error.
    #[error("OCSP responder {url} answered HTTP {status}")]
    Http {
        /// The responder.
        url: String,
        /// The status.
        status: u16,
    },
}

/// POSTs `request_der` to the responder at `url` and returns the raw answer
/// (at most [`MAX_RESPONSE_BYTES`]); verification is the caller's.
pub async fn fetch_ocsp(url: &str, request_der: &[u8], timeout: Duration) -> Result<Vec<u8>, FetchError> {
    post(url, "application/ocsp-request", request_der, MAX_RESPONSE_BYTES, timeout).await
}

/// POSTs a TimeStampReq to the TSA at `url` (RFC 3161 §3.4) and returns the
/// raw TimeStampResp; [`crate::tsp::parse_response`] and
/// [`crate::tsp::verify_token`] check it.
pub async fn fetch_timestamp(url: &str, request_der: &[u8], timeout: Duration) -> Result<Vec<u8>, FetchError> {
    post(url, "application/timestamp-query", request_der, crate::tsp::MAX_RESPONSE_BYTES, timeout).await
}

async fn post(
    url: &str,
    content_type: &str,
    body: &[u8],
    limit: usize,
    timeout: Duration,
) -> Result<Vec<u8>, FetchError> {
    let uri: hyper::Uri = url.parse().map_err(|_| FetchError::BadUrl(url.to_owned()))?;
    if uri.scheme_str() != Some("http") || uri.host().is_none() {
        return Err(FetchError::BadUrl(url.to_owned()));
    }
    let host = uri.host().unwrap_or_default().to_owned();
    let addr = format!("{host}:{}", uri.port_u16().unwrap_or(80));
    let net = |detail: String| FetchError::Network { url: url.to_owned(), detail };
    let work = async {
        let tcp = tokio::net::TcpStream::connect(&addr).await.map_err(|e| net(e.to_string()))?;
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await.map_err(|e| net(e.to_string()))?;
        tokio::spawn(conn);
        let req = Request::post(uri.path_and_query().map(|p| p.as_str()).unwrap_or("/"))
            .header("host", &addr)
            .header("content-type", content_type)
            .body(Full::new(Bytes::copy_from_slice(body)))
            .map_err(|e| net(e.to_string()))?;
        let resp = sender.send_request(req).await.map_err(|e| net(e.to_string()))?;
        if resp.status() != StatusCode::OK {
            return Err(FetchError::Http { url: url.to_owned(), status: resp.status().as_u16() });
        }
        let body = Limited::new(resp.into_body(), limit)
            .collect()
            .await
            .map_err(|e| net(format!("reading the answer: {e}")))?;
        Ok(body.to_bytes().to_vec())
    };
    tokio::time::timeout(timeout, work).await.map_err(|_| net(format!("no answer within {} s", timeout.as_secs())))?
}

/// Serves HTTP/1.1 on `listener` until `stop` turns true, each request
/// answered by `handle` with `state`.
async fn serve<S, F, Fut>(listener: tokio::net::TcpListener, state: Arc<S>, mut stop: watch::Receiver<bool>, handle: F)
where
    S: Send + Sync + 'static,
    F: Fn(Arc<S>, Request<hyper::body::Incoming>) -> Fut + Copy + Send + Sync + 'static,
    Fut: std::future::Future<Output = Response<Full<Bytes>>> + Send + 'static,
{
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            accepted = listener.accept() => {
                let Ok((tcp, _)) = accepted else { continue };
                let state = state.clone();
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                        let answer = handle(state.clone(), req);
                        async move { Ok::<_, std::convert::Infallible>(answer.await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(tcp), svc).await;
                });
            }
        }
    }
}

/// Serves the dev CA's OCSP responder on `listener` until `stop` turns true.
/// Accepts POST with the DER request as body and GET with the request
/// base64-encoded in the path.
pub async fn serve_ocsp(listener: tokio::net::TcpListener, ca: Arc<DevCa>, stop: watch::Receiver<bool>) {
    serve(listener, ca, stop, |ca, req| async move { answer(&ca, req).await }).await;
}

async fn answer(ca: &DevCa, req: Request<hyper::body::Incoming>) -> Response<Full<Bytes>> {
    use base64::Engine as _;
    let request = match *req.method() {
        Method::POST => Limited::new(req.into_body(), 16 * 1024).collect().await.map(|b| b.to_bytes().to_vec()).ok(),
        Method::GET => {
            let path = req.uri().path().trim_start_matches('/');
            let decoded = percent_decode(path);
            base64::engine::general_purpose::STANDARD.decode(decoded).ok()
        }
        _ => None,
    };
    let Some(request) = request else {
        let mut r = Response::new(Full::new(Bytes::new()));
        *r.status_mut() = StatusCode::BAD_REQUEST;
        return r;
    };
    let der = ca.ocsp_respond(&request, time::OffsetDateTime::now_utc());
    let mut r = Response::new(Full::new(Bytes::from(der)));
    r.headers_mut().insert("content-type", hyper::header::HeaderValue::from_static("application/ocsp-response"));
    r
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(v)) => {
                out.push(v);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Serves the dev TSA on `listener` until `stop` turns true (POST of a
/// TimeStampReq, answered with a TimeStampResp).
pub async fn serve_tsa(listener: tokio::net::TcpListener, tsa: Arc<crate::DevTsa>, stop: watch::Receiver<bool>) {
    serve(listener, tsa, stop, |tsa, req| async move { stamp(&tsa, req).await }).await;
}

async fn stamp(tsa: &crate::DevTsa, req: Request<hyper::body::Incoming>) -> Response<Full<Bytes>> {
    let body = if req.method() == Method::POST {
        Limited::new(req.into_body(), 16 * 1024).collect().await.map(|b| b.to_bytes().to_vec()).ok()
    } else {
        None
    };
    let mut r = match body {
        Some(b) => Response::new(Full::new(Bytes::from(tsa.respond(&b, time::OffsetDateTime::now_utc())))),
        None => {
            let mut r = Response::new(Full::new(Bytes::new()));
            *r.status_mut() = StatusCode::BAD_REQUEST;
            r
        }
    };
    r.headers_mut().insert("content-type", hyper::header::HeaderValue::from_static("application/timestamp-reply"));
    r
}

/// Starts the dev TSA on `addr`; returns the bound address and a stop handle.
pub async fn start_tsa(
    tsa: Arc<crate::DevTsa>,
    addr: SocketAddr,
) -> std::io::Result<(SocketAddr, watch::Sender<bool>)> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let (tx, rx) = watch::channel(false);
    tokio::spawn(serve_tsa(listener, tsa, rx));
    Ok((bound, tx))
}

/// Starts the dev CA's responder on `addr`; returns the bound address and a
/// stop handle.
pub async fn start_ocsp_responder(
    ca: Arc<DevCa>,
    addr: SocketAddr,
) -> std::io::Result<(SocketAddr, watch::Sender<bool>)> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let (tx, rx) = watch::channel(false);
    tokio::spawn(serve_ocsp(listener, ca, rx));
    Ok((bound, tx))
}

/// Serves the dev CA's certificate issuing on `listener` until `stop` turns
/// true: POST `/auth` or `/sign` with a CSR (PEM or DER, at most 16 KiB) is
/// answered with the certificate (PEM). For test networks only: it signs
/// whatever it is sent.
pub async fn serve_issuer(listener: tokio::net::TcpListener, ca: Arc<DevCa>, stop: watch::Receiver<bool>) {
    serve(listener, ca, stop, |ca, req| async move { issue(&ca, req).await }).await;
}

async fn issue(ca: &DevCa, req: Request<hyper::body::Incoming>) -> Response<Full<Bytes>> {
    let answer = |status: StatusCode, body: String| {
        let mut r = Response::new(Full::new(Bytes::from(body)));
        *r.status_mut() = status;
        r
    };
    let usage = match (req.method(), req.uri().path()) {
        (&Method::POST, "/auth") => crate::Usage::Auth,
        (&Method::POST, "/sign") => crate::Usage::Sign,
        _ => return answer(StatusCode::NOT_FOUND, "POST a CSR to /auth or /sign\n".into()),
    };
    let Ok(body) = Limited::new(req.into_body(), 16 * 1024).collect().await.map(|b| b.to_bytes()) else {
        return answer(StatusCode::PAYLOAD_TOO_LARGE, "a CSR of at most 16 KiB\n".into());
    };
    let der = match std::str::from_utf8(&body) {
        Ok(text) if text.contains("-----BEGIN") => match crate::pem_decode("CERTIFICATE REQUEST", text) {
            Some(der) => der,
            None => return answer(StatusCode::BAD_REQUEST, "not a PEM CERTIFICATE REQUEST\n".into()),
        },
        _ => body.to_vec(),
    };
    match ca.sign_csr(&der, usage) {
        Ok(cert) => answer(StatusCode::OK, crate::pem("CERTIFICATE", &cert)),
        Err(e) => answer(StatusCode::BAD_REQUEST, format!("{e}\n")),
    }
}

/// Starts the dev CA's certificate issuing on `addr` (see [`serve_issuer`]).
pub async fn start_issuer(ca: Arc<DevCa>, addr: SocketAddr) -> std::io::Result<(SocketAddr, watch::Sender<bool>)> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let (tx, rx) = watch::channel(false);
    tokio::spawn(serve_issuer(listener, ca, rx));
    Ok((bound, tx))
}

#[cfg(test)]
mod tests {
    #[test]
    fn percent_decodes_base64_paths() {
        assert_eq!(super::percent_decode("MEow%2BTA%3D%3D"), "MEow+TA==");
        assert_eq!(super::percent_decode("%zz%4"), "%zz%4");
    }
}
