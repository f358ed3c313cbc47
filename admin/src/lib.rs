//! What the admin endpoints of the security server and the central server
//! (port 4000) share, and the `musubi` CLI's side of them.
//!
//! - **HTTPS with the node's own certificate**: made at first start
//!   (`admin-tls.p8`, mode 0600, and `admin-tls.pem`), and pinned by clients:
//!   there is no CA to ask for a certificate of `127.0.0.1`, and pinning is
//!   stronger than a name check anyway.
//! - **API keys** in X-Road's header form (`Authorization: X-Road-ApiKey
//!   token=…`), kept only as SHA-256 hashes, each with X-Road's roles; every
//!   endpoint names the roles it needs, and every change is written to the
//!   audit log (the `access` module). The first key (every role) is made at first start
//!   and written once to `admin-api-key` (mode 0600) for the local
//!   administrator.
//! - **JSON errors** that name the field at fault and what was expected.
//! - Bodies are limited to [`MAX_BODY_BYTES`].
//!
//! [`client::AdminClient`] is the HTTPS JSON client the CLI uses.
//!
//! Every Musubi server program (security server, central server, adapter)
//! also takes from here what it needs beside its admin port: connection and
//! log limits for its listeners ([`limit`]), systemd readiness and stop
//! signals ([`service`]), its configuration file ([`conffile`]) and private
//! files and folders for its state ([`files`]).

mod access;
pub mod client;
pub mod conffile;
pub mod files;
pub mod limit;
pub mod service;
mod session;
pub mod ui;
pub mod users;

pub use access::{
    Access, ApiKeys, Audit, Caller, KEY_ADMINS, PUBLIC_PATHS, Policy, RATE_BURST, RATE_PER_SECOND, Role, needed_roles,
    protect,
};
pub use session::COOKIE;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::Request;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use tokio::sync::watch;

/// Largest request body the admin endpoints read, bytes.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// A file or key problem at start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AdminError {
    /// A file could not be read or written.
    #[error("{path}: {error}")]
    File {
        /// The file.
        path: PathBuf,
        /// What failed.
        error: std::io::Error,
    },
    /// Key material could not be made or used.
    #[error("admin TLS: {0}")]
    Tls(String),
}

fn file_error(path: &Path) -> impl Fn(std::io::Error) -> AdminError + '_ {
    move |error| AdminError::File { path: path.to_path_buf(), error }
}

/// Replaces `path` whole with `bytes`, readable by its owner only: written
/// beside it, then renamed over it, so a crash leaves the old file or the new.
pub(crate) fn replace_secret(path: &Path, bytes: &[u8]) -> Result<(), AdminError> {
    let tmp = path.with_extension("tmp");
    files::write_secret(&tmp, bytes).map_err(|error| AdminError::File { path: tmp.clone(), error })?;
    std::fs::rename(&tmp, path).map_err(|error| AdminError::File { path: path.to_path_buf(), error })
}

/// The admin endpoint's TLS certificate and key.
pub struct Identity {
    /// The certificate (DER).
    pub cert_der: Vec<u8>,
    key_pkcs8: Vec<u8>,
}

impl Identity {
    /// Loads `dir/admin-tls.{p8,pem}`, or makes them (naming `sans`).
    pub fn load_or_create(dir: &Path, name: &str, sans: &[String]) -> Result<Self, AdminError> {
        Self::load_or_create_as(dir, "admin-tls", &format!("{name} admin"), sans)
    }

    /// Loads `dir/STEM.p8` (the key, mode 0600) and `dir/STEM.pem` (the
    /// certificate), or makes them: a self-signed certificate for
    /// `common_name` naming `sans`.
    pub fn load_or_create_as(dir: &Path, stem: &str, common_name: &str, sans: &[String]) -> Result<Self, AdminError> {
        files::private_dir(dir).map_err(file_error(dir))?;
        let (key_path, cert_path) = (dir.join(format!("{stem}.p8")), dir.join(format!("{stem}.pem")));
        if let (Ok(key), Ok(pem)) = (std::fs::read(&key_path), std::fs::read_to_string(&cert_path)) {
            let cert_der = musubi_pki::pem_decode("CERTIFICATE", &pem)
                .ok_or_else(|| AdminError::Tls(format!("{} holds no certificate", cert_path.display())))?;
            return Ok(Self { cert_der, key_pkcs8: key });
        }
        let key = musubi_pki::generate_ecdsa_key().map_err(|e| AdminError::Tls(e.to_string()))?;
        let cert =
            musubi_pki::self_signed_tls_cert(&key, common_name, sans).map_err(|e| AdminError::Tls(e.to_string()))?;
        files::write_secret(&key_path, &key).map_err(file_error(&key_path))?;
        std::fs::write(&cert_path, musubi_pki::pem("CERTIFICATE", &cert)).map_err(file_error(&cert_path))?;
        Ok(Self { cert_der: cert, key_pkcs8: key })
    }

    /// The private key, for using the identity as a TLS client.
    pub fn key_der(&self) -> rustls::pki_types::PrivateKeyDer<'static> {
        rustls::pki_types::PrivateKeyDer::Pkcs8(self.key_pkcs8.clone().into())
    }

    fn server_config(&self) -> Result<rustls::ServerConfig, AdminError> {
        let mut config =
            rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
                .and_then(|b| {
                    b.with_no_client_auth().with_single_cert(
                        vec![rustls::pki_types::CertificateDer::from(self.cert_der.clone())],
                        rustls::pki_types::PrivateKeyDer::Pkcs8(self.key_pkcs8.clone().into()),
                    )
                })
                .map_err(|e| AdminError::Tls(e.to_string()))?;
        limit::bound_tls_sessions(&mut config);
        Ok(config)
    }
}

/// An error answer: `{"status": 400, "code": "invalid_field", "error": "…",
/// "field": "…", "values": {…}}`. `error` says in English what is wrong and
/// what to do; `code` is stable (the web UI words it in the user's language
/// from `code` and `values`); codes not set by the caller follow the status.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// HTTP status.
    pub status: u16,
    /// What is wrong and what to do.
    pub error: String,
    /// The request field at fault, when one is.
    pub field: Option<String>,
    /// The stable code, when more precise than the status's.
    pub code: Option<&'static str>,
    /// What the error names (numbers, roles…), for a translated text.
    pub values: serde_json::Map<String, serde_json::Value>,
}

/// The code of an error that has none of its own: by status.
fn status_code(status: u16, field: bool) -> &'static str {
    match status {
        400 if field => "invalid_field",
        400 => "invalid",
        401 => "unauthenticated",
        403 => "forbidden",
        404 => "not_found",
        409 => "conflict",
        413 => "too_large",
        422 => "unprocessable",
        423 => "locked",
        429 => "too_many_requests",
        502 => "bad_gateway",
        503 => "unavailable",
        s if s >= 500 => "internal",
        _ => "error",
    }
}

impl Serialize for ApiError {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap as _;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("status", &self.status)?;
        m.serialize_entry("code", self.code.unwrap_or_else(|| status_code(self.status, self.field.is_some())))?;
        m.serialize_entry("error", &self.error)?;
        if let Some(f) = &self.field {
            m.serialize_entry("field", f)?;
        }
        if !self.values.is_empty() {
            m.serialize_entry("values", &self.values)?;
        }
        m.end()
    }
}

impl ApiError {
    /// 400 naming `field`.
    pub fn field(field: &str, error: impl Into<String>) -> Self {
        Self { field: Some(field.into()), ..Self::new(400, error) }
    }
    /// An error with `status`.
    pub fn new(status: u16, error: impl Into<String>) -> Self {
        Self { status, error: error.into(), field: None, code: None, values: serde_json::Map::new() }
    }
    /// The same error with another status.
    pub fn with_status(mut self, status: u16) -> Self {
        self.status = status;
        self
    }
    /// The same error with its own stable code and the values it names.
    pub fn with_code(mut self, code: &'static str, values: serde_json::Value) -> Self {
        self.code = Some(code);
        if let serde_json::Value::Object(m) = values {
            self.values = m;
        }
        self
    }
    /// 409: the request does not fit the node's state.
    pub fn conflict(error: impl Into<String>) -> Self {
        Self::new(409, error)
    }
    /// 500 with a generic text; the detail goes to the log.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        tracing::error!(error = %detail, "admin request failed");
        Self::new(500, "internal error; see the server's log")
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (status, axum::Json(self)).into_response()
    }
}

/// The token of an `Authorization: X-Road-ApiKey token=…` header.
pub(crate) fn api_key(req: &Request) -> Option<&str> {
    let value = req.headers().get(axum::http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, rest) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("X-Road-ApiKey") {
        return None;
    }
    rest.trim().strip_prefix("token=").map(str::trim)
}

/// Serves HTTP/1.1 on one connection until it closes or the server stops; on
/// stop, the exchange in flight finishes before the connection closes.
pub async fn serve_http1<I, S>(io: I, svc: S, stop: &mut watch::Receiver<bool>)
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    S: hyper::service::HttpService<hyper::body::Incoming> + Send,
    S::Future: Send,
    S::ResBody: Send + 'static,
    <S::ResBody as hyper::body::Body>::Data: Send,
    <S::ResBody as hyper::body::Body>::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(Duration::from_secs(30))
        // Large bodies are taken 64 KiB at a time, not in growing buffers of up to 400 KiB per connection.
        .max_buf_size(32 * 1024)
        .serve_connection(hyper_util::rt::TokioIo::new(io), svc);
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => {}
        _ = stop.changed() => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
}

/// An admin API serving, with its web UI.
#[derive(Debug)]
pub struct Serving {
    /// Where it listens.
    pub addr: std::net::SocketAddr,
    /// The server's task (see [`serve`]).
    pub task: tokio::task::JoinHandle<()>,
    /// The one-time token for making the first web UI user, while there is none.
    pub ui_setup_token: Option<String>,
}

/// Serves a component's admin API and web UI on `addr` until `stop`: its
/// endpoints `router` guarded by `policy` (see [`protect`]), the TLS identity
/// (named `name`), API keys, users and audit log kept in `dir`, and the web
/// UI shell with the component's own `pages_js`. While no user exists, the
/// log names the file that holds the setup token (never the token itself).
pub async fn start(
    addr: std::net::SocketAddr,
    dir: &Path,
    name: &str,
    router: axum::Router,
    policy: Policy,
    pages_js: &'static str,
    stop: watch::Receiver<bool>,
) -> Result<Serving, AdminError> {
    if !addr.ip().is_loopback() {
        // The packaged configurations bind 127.0.0.1; another address is the operator's choice.
        tracing::warn!(
            "the admin API and web UI listen on {addr}, reachable from beyond this host: allow only \
             administrators' networks to it in the firewall"
        );
    }
    let sans = vec![addr.ip().to_string(), "localhost".to_string()];
    let identity = Identity::load_or_create(dir, name, &sans)?;
    let (access, ui_setup_token) = Access::open(dir)?;
    let router = protect(router, access, policy).merge(ui::routes(pages_js));
    let (addr, task) = serve(addr, &identity, router, stop).await?;
    if ui_setup_token.is_some() {
        tracing::warn!(
            "no web UI user yet: open https://{addr}/ and make the first one with the setup token in {} \
             (valid {} min, this start only)",
            dir.join(users::SETUP_TOKEN_FILE).display(),
            users::SETUP_TOKEN_VALID.as_secs() / 60
        );
    }
    Ok(Serving { addr, task, ui_setup_token })
}

/// Most admin connections served at once.
const MAX_CONNECTIONS: usize = 64;
/// Most admin connections from one address: a client that holds
/// connections open (or never finishes its handshake) leaves half the slots
/// to the others. On the default 127.0.0.1 every local client shares one
/// address, so the share is generous: a browser opens about six.
const MAX_CONNECTIONS_PER_PEER: usize = MAX_CONNECTIONS / 2;
/// Most refused or timed-out handshakes logged a minute (the rest are counted).
const HANDSHAKE_WARNINGS_PER_MINUTE: u32 = 60;

/// Binds `addr` and serves `router` over HTTPS with `identity` until `stop`;
/// returns the bound address and the server's task, done once the listener
/// is closed and every connection has answered its request in hand.
pub async fn serve(
    addr: std::net::SocketAddr,
    identity: &Identity,
    router: axum::Router,
    mut stop: watch::Receiver<bool>,
) -> Result<(std::net::SocketAddr, tokio::task::JoinHandle<()>), AdminError> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|error| AdminError::File { path: PathBuf::from(addr.to_string()), error })?;
    let bound = listener.local_addr().map_err(|error| AdminError::File { path: addr.to_string().into(), error })?;
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(identity.server_config()?));
    let router = router.layer(axum::middleware::map_response(ui::security_headers));
    let limit = limit::ConnectionLimit::new(MAX_CONNECTIONS, MAX_CONNECTIONS_PER_PEER);
    let refusals = Arc::new(limit::LogBudget::new(HANDSHAKE_WARNINGS_PER_MINUTE));
    let task = tokio::spawn(async move {
        let mut conns = tokio::task::JoinSet::new();
        loop {
            tokio::select! {
                _ = stop.changed() => break,
                Some(_) = conns.join_next(), if !conns.is_empty() => {}
                accepted = listener.accept() => {
                    let Ok((tcp, peer)) = accepted else { continue };
                    let permit = match limit.admit(peer.ip()) {
                        Ok(p) => p,
                        Err(why) => {
                            tracing::debug!(peer_addr = %peer, "admin connection closed: {why}");
                            continue;
                        }
                    };
                    let (acceptor, router, mut stop) = (acceptor.clone(), router.clone(), stop.clone());
                    let refusals = refusals.clone();
                    conns.spawn(async move {
                        let _permit = permit;
                        let tls = match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await {
                            Ok(Ok(tls)) => tls,
                            Ok(Err(e)) => return refusals.refused(peer, &format!("admin TLS handshake refused: {e}")),
                            Err(_) => return refusals.refused(peer, "admin TLS handshake timed out"),
                        };
                        let svc = hyper_util::service::TowerToHyperService::new(router);
                        // At stop, the request in hand is answered and the
                        // connection closed: a kept-alive browser then reaches
                        // whatever serves the port next (the running server
                        // after the setup API), not this one.
                        let served = serve_http1(tls, svc, &mut stop);
                        let _ = tokio::time::timeout(Duration::from_secs(300), served).await;
                    });
                }
            }
        }
        drop(listener);
        while conns.join_next().await.is_some() {}
    });
    Ok((bound, task))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn errors_carry_a_stable_code_by_status_or_their_own_with_values() {
        let json = |e: &ApiError| serde_json::to_value(e).unwrap();
        assert_eq!(json(&ApiError::field("pin", "too short"))["code"], "invalid_field");
        assert_eq!(json(&ApiError::new(400, "bad"))["code"], "invalid");
        assert_eq!(json(&ApiError::conflict("busy"))["code"], "conflict");
        assert_eq!(json(&ApiError::internal("disk full"))["code"], "internal");
        let e = ApiError::new(429, "wait 3 s").with_code("login_wait", serde_json::json!({ "seconds": 3 }));
        assert_eq!(
            json(&e),
            serde_json::json!({ "status": 429, "code": "login_wait", "error": "wait 3 s", "values": { "seconds": 3 } })
        );
        assert!(
            json(&ApiError::new(404, "no")).get("values").is_none()
                && json(&ApiError::new(404, "no")).get("field").is_none()
        );
    }
}
