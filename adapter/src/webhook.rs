//! Webhooks (ECHONET Lite Web API guidance §5): a consumer registers a URL
//! through the `registerWebhook` service; every status change (INF) of an
//! approved device is POSTed there as JSON, signed, retried with back-off,
//! and each attempt is logged (§5.3).
//!
//! Signature: `X-Musubi-Signature: t=<unix seconds>,v1=<hex>` where the hex
//! is HMAC-SHA256 under the webhook's secret of `<t>.<body>`; the receiver
//! recomputes it and rejects old `t` values, which stops replays.
//!
//! The operator names the URL prefixes webhooks may use
//! (`allowed_url_prefixes`); with none, registration is refused. A consumer
//! on the other side of X-Road must not make the adapter POST to arbitrary
//! addresses of the provider's network. `https://` webhooks are verified
//! against `ca_file` (or the system's roots) and the URL's host name.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;
use musubi_protocol::Fault;
use serde::{Deserialize, Serialize};
use sqlx::SqlitePool;
use tokio::sync::{Semaphore, mpsc};

use crate::registry::now;
use crate::service::codes;

/// Webhook settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebhookConfig {
    /// URL prefixes a webhook may start with (`http://care.example/hooks/`).
    pub allowed_url_prefixes: Vec<String>,
    /// Attempts per delivery.
    pub max_attempts: u32,
    /// Wait before the first retry, milliseconds; doubled each time.
    pub first_retry_ms: u64,
    /// Seconds one attempt may take.
    pub timeout_secs: u64,
    /// Webhooks one client may register.
    pub max_per_client: usize,
    /// Trusted roots for `https://` webhooks (PEM); the system bundle
    /// (`/etc/ssl/certs/ca-certificates.crt`) when absent.
    pub ca_file: Option<std::path::PathBuf>,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        Self {
            allowed_url_prefixes: Vec::new(),
            max_attempts: 5,
            first_retry_ms: 1000,
            timeout_secs: 10,
            max_per_client: 10,
            ca_file: None,
        }
    }
}

/// A registered webhook.
#[derive(Debug, Clone)]
struct Hook {
    id: String,
    client: String,
    url: String,
    secret: String,
}

/// A status change to deliver.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Notification {
    /// Sequence number in the adapter's record.
    pub seq: i64,
    /// The device.
    pub device_id: String,
    /// Its Web API type.
    pub device_type: String,
    /// The property.
    pub property: String,
    /// `0xNN`.
    pub epc: String,
    /// The value as text (state, number or hex).
    pub value: String,
    /// Unit of a number.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    /// When it arrived, RFC 3339.
    pub at: String,
}

/// The webhook registry and its delivery queue.
#[derive(Debug)]
pub struct Webhooks {
    pool: SqlitePool,
    conf: WebhookConfig,
    /// TLS for `https://` webhooks (`None`: no trusted roots, https refused).
    tls: Option<Arc<rustls::ClientConfig>>,
    hooks: RwLock<Vec<Hook>>,
    queue: mpsc::Sender<(Hook, Arc<Notification>)>,
}

const QUEUE: usize = 1024;
const PARALLEL: usize = 16;
const MAX_URL: usize = 2048;

fn random_hex(n: usize) -> String {
    use ring::rand::SecureRandom as _;
    let mut b = vec![0u8; n];
    let _ = ring::rand::SystemRandom::new().fill(&mut b);
    hex::encode(&b)
}

/// `t=<t>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`.
pub fn signature(secret: &str, t: i64, body: &[u8]) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
    let mut ctx = ring::hmac::Context::with_key(&key);
    ctx.update(format!("{t}.").as_bytes());
    ctx.update(body);
    format!("t={t},v1={}", hex::encode(ctx.sign().as_ref()))
}

/// Checks a signature header against `body` (for receivers and tests).
pub fn verify(secret: &str, header: &str, body: &[u8]) -> bool {
    let mut t = None;
    let mut v1 = None;
    for part in header.split(',') {
        match part.split_once('=') {
            Some(("t", x)) => t = x.parse::<i64>().ok(),
            Some(("v1", x)) => v1 = Some(x),
            _ => {}
        }
    }
    let (Some(t), Some(v1)) = (t, v1) else { return false };
    let Ok(tag) = hex::decode(v1) else { return false };
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
    let mut msg = format!("{t}.").into_bytes();
    msg.extend_from_slice(body);
    ring::hmac::verify(&key, &msg, &tag).is_ok()
}

/// The system's bundle of trusted roots (Debian's path).
const SYSTEM_ROOTS: &str = "/etc/ssl/certs/ca-certificates.crt";

/// A TLS client configuration trusting the roots in `path` (PEM).
fn tls_config(path: &std::path::Path) -> Result<Arc<rustls::ClientConfig>, String> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject as _;
    let pem = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        let cert = cert.map_err(|e| format!("{}: {e}", path.display()))?;
        // Bundles hold certificates some parsers reject; skip those, keep the rest.
        let _ = roots.add(cert);
    }
    if roots.is_empty() {
        return Err(format!("{} holds no usable CA certificate", path.display()));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let conf = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(conf))
}

impl Webhooks {
    /// Loads the registered webhooks and starts the delivery workers.
    pub async fn start(pool: SqlitePool, conf: WebhookConfig) -> Result<Arc<Self>, sqlx::Error> {
        let tls = match &conf.ca_file {
            Some(path) => match tls_config(path) {
                Ok(c) => Some(c),
                Err(e) => {
                    tracing::error!(error = %e, "webhook CA file unusable; https webhooks are refused");
                    None
                }
            },
            None => tls_config(std::path::Path::new(SYSTEM_ROOTS)).ok(),
        };
        let rows: Vec<(String, String, String, String)> =
            sqlx::query_as("SELECT id, client, url, secret FROM webhooks").fetch_all(&pool).await?;
        let hooks = rows.into_iter().map(|(id, client, url, secret)| Hook { id, client, url, secret }).collect();
        let (queue, rx) = mpsc::channel(QUEUE);
        let this = Arc::new(Self { pool, conf, tls, hooks: RwLock::new(hooks), queue });
        tokio::spawn(deliver_all(Arc::downgrade(&this), rx));
        Ok(this)
    }

    /// Registers `url` for `client`; returns (id, secret).
    pub async fn register(&self, client: &str, url: &str) -> Result<(String, String), Fault> {
        let url = url.trim();
        if url.is_empty() || url.len() > MAX_URL {
            return Err(Fault::new(codes::INVALID_REQUEST, format!("url must be 1 to {MAX_URL} characters")));
        }
        let https = url.starts_with("https://");
        if !(https || url.starts_with("http://")) || url.parse::<hyper::Uri>().map_or(true, |u| u.host().is_none()) {
            return Err(Fault::new(codes::INVALID_VALUE, format!("{url:?} is not an http:// or https:// URL")));
        }
        if https && self.tls.is_none() {
            return Err(Fault::new(
                codes::WEBHOOK_REFUSED,
                "the adapter has no trusted roots for https webhooks; ask the provider to set webhooks.ca_file",
            ));
        }
        if !self.conf.allowed_url_prefixes.iter().any(|p| url.starts_with(p.as_str())) {
            return Err(Fault::new(
                codes::WEBHOOK_REFUSED,
                format!(
                    "{url:?} is not under a URL prefix the provider allows for webhooks; ask the provider to allow it"
                ),
            ));
        }
        let count = self.hooks.read().map(|h| h.iter().filter(|h| h.client == client).count()).unwrap_or(0);
        if count >= self.conf.max_per_client {
            return Err(Fault::new(
                codes::WEBHOOK_REFUSED,
                format!("{client} already has {count} webhooks, the most allowed"),
            ));
        }
        let hook = Hook { id: random_hex(8), client: client.into(), url: url.into(), secret: random_hex(32) };
        sqlx::query("INSERT INTO webhooks (id, client, url, secret, created) VALUES (?, ?, ?, ?, ?)")
            .bind(&hook.id)
            .bind(&hook.client)
            .bind(&hook.url)
            .bind(&hook.secret)
            .bind(now())
            .execute(&self.pool)
            .await
            .map_err(|e| {
                tracing::error!(error = %e, "cannot store a webhook");
                Fault::new("internal_error", "the webhook could not be stored")
            })?;
        let out = (hook.id.clone(), hook.secret.clone());
        if let Ok(mut h) = self.hooks.write() {
            h.push(hook);
        }
        Ok(out)
    }

    /// Queues `n` for every webhook. A full queue drops the delivery and logs it.
    pub async fn notify(&self, n: Notification) {
        let n = Arc::new(n);
        let hooks = self.hooks.read().map(|h| h.clone()).unwrap_or_default();
        for hook in hooks {
            if self.queue.try_send((hook.clone(), n.clone())).is_err() {
                tracing::warn!(webhook = %hook.id, seq = n.seq, "webhook queue full; delivery dropped");
                self.log(&hook.id, n.seq, 0, "dropped: queue full").await;
            }
        }
    }

    async fn log(&self, hook: &str, seq: i64, attempt: u32, outcome: &str) {
        let r =
            sqlx::query("INSERT INTO deliveries (webhook, notification, attempt, outcome, at) VALUES (?, ?, ?, ?, ?)")
                .bind(hook)
                .bind(seq)
                .bind(i64::from(attempt))
                .bind(outcome)
                .bind(now())
                .execute(&self.pool)
                .await;
        if let Err(e) = r {
            tracing::error!(error = %e, "cannot log a webhook delivery");
        }
    }

    /// The delivery log, newest first: (webhook, notification, attempt, outcome).
    pub async fn deliveries(&self, limit: i64) -> Result<Vec<(String, i64, i64, String)>, sqlx::Error> {
        sqlx::query_as("SELECT webhook, notification, attempt, outcome FROM deliveries ORDER BY seq DESC LIMIT ?")
            .bind(limit)
            .fetch_all(&self.pool)
            .await
    }
}

async fn deliver_all(this: std::sync::Weak<Webhooks>, mut rx: mpsc::Receiver<(Hook, Arc<Notification>)>) {
    let slots = Arc::new(Semaphore::new(PARALLEL));
    while let Some((hook, n)) = rx.recv().await {
        let Ok(permit) = slots.clone().acquire_owned().await else { return };
        let Some(hooks) = this.upgrade() else { return };
        tokio::spawn(async move {
            deliver(&hooks, &hook, &n).await;
            drop(permit);
        });
    }
}

async fn deliver(hooks: &Webhooks, hook: &Hook, n: &Notification) {
    let body = serde_json::to_vec(n).unwrap_or_default();
    let mut wait = Duration::from_millis(hooks.conf.first_retry_ms);
    for attempt in 1..=hooks.conf.max_attempts.max(1) {
        let outcome =
            post(&hook.url, &hook.secret, &body, hooks.tls.clone(), Duration::from_secs(hooks.conf.timeout_secs)).await;
        let ok = outcome.is_ok();
        let text = outcome.unwrap_or_else(|e| e);
        hooks.log(&hook.id, n.seq, attempt, &text).await;
        if ok {
            return;
        }
        tracing::info!(webhook = %hook.id, attempt, outcome = %text, "webhook delivery failed");
        if attempt < hooks.conf.max_attempts {
            tokio::time::sleep(wait).await;
            wait = wait.saturating_mul(2);
        }
    }
}

/// One POST: `Ok("delivered: HTTP 2xx")` or `Err(what failed)`.
async fn post(
    url: &str,
    secret: &str,
    body: &[u8],
    tls: Option<Arc<rustls::ClientConfig>>,
    timeout: Duration,
) -> Result<String, String> {
    let uri: hyper::Uri = url.parse().map_err(|_| "bad url".to_string())?;
    let https = uri.scheme_str() == Some("https");
    let host = uri.host().ok_or("no host")?.trim_start_matches('[').trim_end_matches(']').to_owned();
    let addr = format!("{}:{}", uri.host().unwrap_or_default(), uri.port_u16().unwrap_or(if https { 443 } else { 80 }));
    let work = async {
        let tcp = tokio::net::TcpStream::connect(&addr).await.map_err(|e| format!("connect {addr}: {e}"))?;
        let mut sender = if https {
            let tls = tls.ok_or("no trusted roots for https")?;
            let name = rustls::pki_types::ServerName::try_from(host.clone()).map_err(|e| format!("{host}: {e}"))?;
            let stream = tokio_rustls::TlsConnector::from(tls)
                .connect(name, tcp)
                .await
                .map_err(|e| format!("TLS with {addr}: {e}"))?;
            let (sender, conn) =
                hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.map_err(|e| e.to_string())?;
            tokio::spawn(conn);
            sender
        } else {
            let (sender, conn) =
                hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await.map_err(|e| e.to_string())?;
            tokio::spawn(conn);
            sender
        };
        let req = Request::post(uri.path_and_query().map_or("/", |p| p.as_str()))
            .header("host", &addr)
            .header("content-type", "application/json")
            .header("x-musubi-signature", signature(secret, now(), body))
            .body(Full::new(Bytes::copy_from_slice(body)))
            .map_err(|e| e.to_string())?;
        let resp = sender.send_request(req).await.map_err(|e| e.to_string())?;
        let status = resp.status();
        let _ = http_body_util::Limited::new(resp.into_body(), 64 * 1024).collect().await;
        if status.is_success() {
            Ok(format!("delivered: HTTP {}", status.as_u16()))
        } else {
            Err(format!("HTTP {}", status.as_u16()))
        }
    };
    tokio::time::timeout(timeout, work).await.map_err(|_| format!("no answer within {} s", timeout.as_secs()))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_verify_and_tampering_is_caught() {
        let h = signature("s3cret", 1_700_000_000, b"{\"a\":1}");
        assert!(h.starts_with("t=1700000000,v1="));
        assert!(verify("s3cret", &h, b"{\"a\":1}"));
        assert!(!verify("s3cret", &h, b"{\"a\":2}"));
        assert!(!verify("other", &h, b"{\"a\":1}"));
        assert!(!verify("s3cret", &h.replace("t=1700000000", "t=1700000001"), b"{\"a\":1}"));
        assert!(!verify("s3cret", "v1=zz", b""));
    }
}
