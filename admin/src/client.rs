//! The HTTPS JSON client of the admin endpoints, for the `musubi` CLI and
//! tests: one request per connection, the server's certificate pinned.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, Limited};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

/// Why a call did not succeed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The endpoint could not be reached or did not speak HTTPS/JSON.
    #[error("{url}: {detail}")]
    Transport {
        /// Where.
        url: String,
        /// What failed.
        detail: String,
    },
    /// The endpoint answered with an error.
    #[error("{message} (HTTP {status})")]
    Refused {
        /// HTTP status.
        status: u16,
        /// The error text (with the field at fault, when named).
        message: String,
    },
}

impl ClientError {
    /// The HTTP status of a refusal.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Refused { status, .. } => Some(*status),
            Self::Transport { .. } => None,
        }
    }
}

/// Largest answer read, bytes.
const MAX_ANSWER_BYTES: usize = 16 * 1024 * 1024;

#[derive(Debug)]
struct Pinned(Vec<u8>);

fn algorithms() -> rustls::crypto::WebPkiSupportedAlgorithms {
    rustls::crypto::ring::default_provider().signature_verification_algorithms
}

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if end_entity.as_ref() == self.0.as_slice() {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(rustls::CertificateError::ApplicationVerificationFailure))
        }
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &algorithms())
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &algorithms())
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        algorithms().supported_schemes()
    }
}

/// A TLS client configuration that accepts exactly one server certificate
/// (DER): for endpoints whose certificate is pinned, not named by a CA.
pub fn pinned_config(cert_der: Vec<u8>) -> Result<rustls::ClientConfig, rustls::Error> {
    Ok(rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(Pinned(cert_der)))
        .with_no_client_auth())
}

/// A client of one admin endpoint.
#[derive(Debug, Clone)]
pub struct AdminClient {
    url: String,
    pinned: Vec<u8>,
    api_key: String,
}

impl AdminClient {
    /// `url` (`https://host:port`), the endpoint's certificate (DER) and an API key.
    pub fn new(url: &str, pinned_cert_der: Vec<u8>, api_key: &str) -> Self {
        Self { url: url.trim_end_matches('/').to_string(), pinned: pinned_cert_der, api_key: api_key.trim().into() }
    }

    /// `GET path`.
    pub async fn get(&self, path: &str) -> Result<serde_json::Value, ClientError> {
        self.call("GET", path, None).await
    }

    /// `POST path` with a JSON body.
    pub async fn post(&self, path: &str, body: &serde_json::Value) -> Result<serde_json::Value, ClientError> {
        self.call("POST", path, Some(body)).await
    }

    /// `DELETE path`.
    pub async fn delete(&self, path: &str) -> Result<serde_json::Value, ClientError> {
        self.call("DELETE", path, None).await
    }

    /// One call; the answer's JSON (or `null` for an empty body).
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<serde_json::Value, ClientError> {
        let url = format!("{}{path}", self.url);
        let payload = match body {
            Some(v) => {
                serde_json::to_vec(v).map_err(|e| ClientError::Transport { url: url.clone(), detail: e.to_string() })?
            }
            None => Vec::new(),
        };
        let auth = format!("X-Road-ApiKey token={}", self.api_key);
        let headers =
            [("authorization", auth.as_str()), ("content-type", "application/json"), ("accept", "application/json")];
        let (status, bytes) = request(&url, &self.pinned, method, &headers, payload, MAX_ANSWER_BYTES).await?;
        let json: serde_json::Value =
            if bytes.is_empty() { serde_json::Value::Null } else { serde_json::from_slice(&bytes).unwrap_or_default() };
        if (200..300).contains(&status) {
            return Ok(json);
        }
        Err(refusal(status, &json))
    }

    /// A GET whose answer is a file (a ZIP, say): its bytes, at most `limit`.
    pub async fn download(&self, path: &str, limit: usize) -> Result<Bytes, ClientError> {
        let url = format!("{}{path}", self.url);
        let auth = format!("X-Road-ApiKey token={}", self.api_key);
        let (status, bytes) =
            request(&url, &self.pinned, "GET", &[("authorization", &auth)], Vec::new(), limit).await?;
        if (200..300).contains(&status) {
            return Ok(bytes);
        }
        Err(refusal(status, &serde_json::from_slice(&bytes).unwrap_or_default()))
    }
}

/// The error an API answered with.
fn refusal(status: u16, json: &serde_json::Value) -> ClientError {
    let mut message = json["error"].as_str().map_or_else(|| format!("HTTP {status}"), str::to_owned);
    if let Some(field) = json["field"].as_str() {
        message = format!("{field}: {message}");
    }
    ClientError::Refused { status, message }
}

/// One HTTPS request over a new connection to the server at `url`, which
/// must present the certificate `pinned` (DER); returns the status and at
/// most `limit` bytes of the answer. Gives up after 60 s.
pub async fn request(
    url: &str,
    pinned: &[u8],
    method: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
    limit: usize,
) -> Result<(u16, Bytes), ClientError> {
    request_with_headers(url, pinned, method, headers, body, limit).await.map(|(status, _, body)| (status, body))
}

/// [`request`], with the answer's headers.
pub async fn request_with_headers(
    url: &str,
    pinned: &[u8],
    method: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
    limit: usize,
) -> Result<(u16, hyper::HeaderMap, Bytes), ClientError> {
    let fail = |detail: String| ClientError::Transport { url: url.to_string(), detail };
    let uri: hyper::Uri = url.parse().map_err(|_| fail("not a URL".into()))?;
    if uri.scheme_str() != Some("https") {
        return Err(fail("the endpoint must be https://".into()));
    }
    let host = uri.host().ok_or_else(|| fail("no host".into()))?.trim_matches(['[', ']']).to_string();
    let addr = format!("{host}:{}", uri.port_u16().unwrap_or(443));
    let config = pinned_config(pinned.to_vec()).map_err(|e| fail(e.to_string()))?;
    let name = ServerName::try_from(host.clone()).map_err(|_| fail(format!("{host:?} is not a host name")))?;
    let work = async {
        let tcp = tokio::net::TcpStream::connect(&addr).await.map_err(|e| fail(e.to_string()))?;
        let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(name, tcp)
            .await
            .map_err(|e| fail(format!("TLS (is the pinned certificate the server's?): {e}")))?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls))
            .await
            .map_err(|e| fail(e.to_string()))?;
        tokio::spawn(conn);
        let mut req = hyper::Request::builder()
            .method(method)
            .uri(uri.path_and_query().map_or("/", |p| p.as_str()))
            .header("host", &addr);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let req = req.body(Full::new(Bytes::from(body))).map_err(|e| fail(e.to_string()))?;
        let resp = sender.send_request(req).await.map_err(|e| fail(e.to_string()))?;
        let status = resp.status().as_u16();
        let (parts, body) = resp.into_parts();
        let bytes = Limited::new(body, limit).collect().await.map_err(|e| fail(e.to_string()))?;
        Ok::<_, ClientError>((status, parts.headers, bytes.to_bytes()))
    };
    tokio::time::timeout(Duration::from_secs(60), work).await.map_err(|_| fail("no answer within 60 s".into()))?
}
