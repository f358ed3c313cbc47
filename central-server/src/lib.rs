//! The Musubi central server: the registry of an X-Road instance and the
//! signed global configuration generated from it.
//!
//! Every `generation_interval_secs` the registry is read in one transaction
//! ([`registry::Registry::snapshot`]), written as shared and private
//! parameters (X-Road's version-5 schema) under a new generation, listed in
//! a signed configuration directory that expires `expire_after_secs` later,
//! and served over HTTP at `/internalconf` with the files at their
//! locations. A generation is published whole or not at all: if the
//! registry or the signing key fails, the previous one stays served (and
//! expires, so that security servers fail closed). Configuration anchors
//! for new members come from [`Handle::anchor`].
//!
//! Key rotation the X-Road way: a new signing key is announced in the
//! shared parameters' `<source>` before [`registry::Registry::activate_signing_key`]
//! makes it sign.
//!
//! Management requests (authentication-certificate and client registration
//! and deletion, address change) arrive over HTTPS on `management_listen`
//! (4001): [`management`] checks them, [`requests`] keeps them pending until
//! a registration officer decides. The service's TLS certificate is
//! published in the private parameters (`managementService`), and security
//! servers accept no other.
//!
//! The registration officer decides requests through the admin API
//! (`admin_listen`, HTTPS with API keys; [`admin`]) and `musubi requests`.

mod admin;
mod management;
pub mod registry;
pub mod requests;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use musubi_protocol::globalconf::{self, NewFile, Source};
use musubi_protocol::xades::Signer as _;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::registry::{Registry, RegistryError};

/// Prefix of environment variables that override the central server's
/// settings: `MUSUBI_CENTRAL_SERVER_GENERATION_INTERVAL_SECS=30` sets
/// `generation_interval_secs` (see [`musubi_admin::conffile::apply_env`]).
pub const ENV_PREFIX: &str = "MUSUBI_CENTRAL_SERVER_";

/// The central server's configuration.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CentralConf {
    /// The instance identifier.
    pub instance: String,
    /// Registry database (SQLite, unless `database_url` names one) and signing keys.
    pub state_dir: PathBuf,
    /// A PostgreSQL URL for the registry (production; SQLite in `state_dir` when absent).
    #[serde(default)]
    pub database_url: Option<String>,
    /// A file holding the database's password (mode 0600 or 0640, or a systemd
    /// credential), put into `database_url`. Without it the password comes from
    /// `MUSUBI_DATABASE_PASSWORD`, or from the URL itself; never from the command line.
    #[serde(default)]
    pub database_password_file: Option<PathBuf>,
    /// Where the configuration is served (port 80 in production).
    pub conf_listen: SocketAddr,
    /// The address security servers use to reach it (host or host:port), as written in `<source>`.
    pub public_address: String,
    /// Seconds between two generations.
    #[serde(default = "default_interval")]
    pub generation_interval_secs: u64,
    /// Seconds a generation stays valid.
    #[serde(default = "default_expiry")]
    pub expire_after_secs: u64,
    /// Where management requests are taken over HTTPS (X-Road: port 4001);
    /// none: the central server takes none.
    #[serde(default)]
    pub management_listen: Option<SocketAddr>,
    /// Where the admin API listens (HTTPS; X-Road's 4000, on localhost unless
    /// the operator decides otherwise); none: no admin API.
    #[serde(default)]
    pub admin_listen: Option<SocketAddr>,
}

impl CentralConf {
    /// The management service's URL as security servers see it: the host of
    /// `public_address` with the port of `management_listen`.
    pub fn management_url(&self) -> Option<String> {
        let listen = self.management_listen?;
        let host = match self.public_address.rsplit_once(':') {
            Some((h, p)) if p.parse::<u16>().is_ok() => h,
            _ => self.public_address.as_str(),
        };
        Some(format!("https://{host}:{}/managementservice/", listen.port()))
    }
}

fn default_interval() -> u64 {
    60
}
fn default_expiry() -> u64 {
    600
}

/// Why the central server cannot start or generate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CentralError {
    /// The registry failed.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// A socket cannot be bound.
    #[error("cannot listen on {addr}: {error}")]
    Bind {
        /// Where.
        addr: SocketAddr,
        /// What the system said.
        error: std::io::Error,
    },
    /// Writing the configuration failed.
    #[error("cannot write the configuration: {0}")]
    Write(String),
    /// A setting cannot be used.
    #[error("configuration: {0}")]
    Conf(String),
    /// The state directory is unusable.
    #[error("state directory {path}: {error}")]
    State {
        /// The directory.
        path: PathBuf,
        /// What failed.
        error: std::io::Error,
    },
}

/// Earlier generations whose files stay served beside the newest.
const KEPT_GENERATIONS: usize = 2;

/// What is served: path → (content type, bytes) of the newest generation
/// (with its directory) and the files of the generations before it.
#[derive(Debug, Clone, Default)]
struct Published {
    files: Vec<(String, String, Bytes)>,
    generated_at: Option<time::OffsetDateTime>,
}

/// What makes and publishes the global configuration: shared by the handle,
/// the generation loop and the admin API.
#[derive(Clone)]
pub(crate) struct Central {
    pub(crate) registry: Registry,
    pub(crate) conf: CentralConf,
    management_cert: Option<Vec<u8>>,
    published: Arc<RwLock<Published>>,
}

impl Central {
    /// The URL of the configuration directory.
    pub(crate) fn directory_url(&self) -> String {
        format!("http://{}/internalconf", self.conf.public_address)
    }

    /// Generates and publishes a configuration now.
    pub(crate) async fn generate(&self) -> Result<(), CentralError> {
        generate(&self.registry, &self.conf, self.management_cert.as_deref(), &self.published).await
    }

    /// A configuration anchor for new members: the directory URL and the
    /// certificates of every announced signing key.
    pub(crate) async fn anchor(&self) -> Result<String, CentralError> {
        let certs = self.registry.signing_keys().await?.into_iter().map(|k| k.cert).collect();
        let now =
            time::OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339).unwrap_or_default();
        Ok(globalconf::write_anchor(
            &self.conf.instance,
            &now,
            &[Source { location: self.directory_url(), certs, external_certs: vec![] }],
        ))
    }

    /// When the generation being served was made.
    pub(crate) fn generated_at(&self) -> Option<time::OffsetDateTime> {
        self.published.read().ok().and_then(|p| p.generated_at)
    }
}

/// A running central server.
pub struct Handle {
    /// The registry.
    pub registry: Registry,
    /// Where the configuration is served.
    pub conf_addr: SocketAddr,
    /// Where management requests are taken, when they are.
    pub management_addr: Option<SocketAddr>,
    /// Where the admin API listens, when it runs.
    pub admin_addr: Option<SocketAddr>,
    /// The one-time token for making the first web UI user, while there is
    /// none (also in `admin/ui-setup-token`, the file the log names).
    pub ui_setup_token: Option<String>,
    central: Central,
    stop: watch::Sender<bool>,
}

impl Handle {
    /// The URL of the configuration directory.
    pub fn directory_url(&self) -> String {
        self.central.directory_url()
    }

    /// Generates and publishes a configuration now.
    pub async fn generate(&self) -> Result<(), CentralError> {
        self.central.generate().await
    }

    /// A configuration anchor for new members: the directory URL and the
    /// certificates of every announced signing key.
    pub async fn anchor(&self) -> Result<String, CentralError> {
        self.central.anchor().await
    }

    /// When the generation being served was made.
    pub fn generated_at(&self) -> Option<time::OffsetDateTime> {
        self.central.generated_at()
    }

    /// Stops serving.
    pub fn shutdown(&self) {
        let _ = self.stop.send(true);
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn private_params(instance: &str, time_stamping_interval: Option<u64>, management: Option<(&str, &[u8])>) -> String {
    use base64::Engine as _;
    let mut s = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<tns:conf xmlns:tns=\"http://x-road.eu/xsd/xroad.xsd\">\n    <instanceIdentifier>{}</instanceIdentifier>\n",
        musubi_protocol::fault::escape_text(instance)
    );
    if let Some((url, cert)) = management {
        s.push_str(&format!(
            "    <managementService>\n        <authCertRegServiceAddress>{}</authCertRegServiceAddress>\n        <authCertRegServiceCert>{}</authCertRegServiceCert>\n    </managementService>\n",
            musubi_protocol::fault::escape_text(url),
            base64::engine::general_purpose::STANDARD.encode(cert)
        ));
    }
    if let Some(t) = time_stamping_interval {
        s.push_str(&format!("    <timeStampingIntervalSeconds>{t}</timeStampingIntervalSeconds>\n"));
    }
    s.push_str("</tns:conf>\n");
    s
}

async fn generate(
    registry: &Registry,
    conf: &CentralConf,
    management_cert: Option<&[u8]>,
    published: &RwLock<Published>,
) -> Result<(), CentralError> {
    let source = format!("http://{}/internalconf", conf.public_address);
    let (params, ts_interval) = registry.snapshot(&source).await?;
    let shared = musubi_protocol::sharedparams::write(&params).map_err(|e| CentralError::Write(e.to_string()))?;
    let url = conf.management_url();
    let management = url.as_deref().zip(management_cert);
    let private = private_params(&conf.instance, ts_interval, management);
    let (_, key) = registry.active_key().await?;
    let now = time::OffsetDateTime::now_utc();
    let generation = now.unix_timestamp_nanos();
    let (sl, pl) = (format!("/V5/{generation}/shared-params.xml"), format!("/V5/{generation}/private-params.xml"));
    let files = [
        NewFile {
            content_identifier: "SHARED-PARAMETERS",
            instance: &conf.instance,
            location: &sl,
            bytes: shared.as_bytes(),
        },
        NewFile {
            content_identifier: "PRIVATE-PARAMETERS",
            instance: &conf.instance,
            location: &pl,
            bytes: private.as_bytes(),
        },
    ];
    let expire = now + Duration::from_secs(conf.expire_after_secs);
    let sign = |d: &[u8]| key.sign(d);
    let (ct, body) = globalconf::write_directory(expire, 5, &files, key.algorithm(), key.certificate_der(), &sign)
        .map_err(CentralError::Write)?;
    let mut files = vec![
        ("/internalconf".into(), ct, Bytes::from(body)),
        (sl, "text/xml; charset=UTF-8".into(), Bytes::from(shared)),
        (pl, "text/xml; charset=UTF-8".into(), Bytes::from(private)),
    ];
    // The switch is one assignment: readers see the old generation or the new
    // one. The files of the two generations before stay served, so a client
    // that fetched the previous directory can still fetch what it lists.
    if let Ok(mut p) = published.write() {
        let older: Vec<(String, String, Bytes)> = p.files.iter().filter(|f| f.0 != "/internalconf").cloned().collect();
        let mut kept_generations: Vec<String> = Vec::new();
        for f in older {
            let generation = f.0.split('/').nth(2).unwrap_or_default().to_string();
            if !kept_generations.contains(&generation) {
                if kept_generations.len() == KEPT_GENERATIONS {
                    continue;
                }
                kept_generations.push(generation);
            }
            files.push(f);
        }
        *p = Published { files, generated_at: Some(now) };
    }
    Ok(())
}

/// Starts the central server: opens the registry (creating and activating a
/// first signing key if there is none), publishes a first generation and
/// keeps generating; takes management requests when `management_listen` is set.
pub async fn start(conf: CentralConf) -> Result<Handle, CentralError> {
    musubi_admin::files::private_dir(&conf.state_dir)
        .map_err(|error| CentralError::State { path: conf.state_dir.clone(), error })?;
    let keys = conf.state_dir.join("keys");
    let registry = match &conf.database_url {
        Some(url) => {
            let password =
                musubi_admin::conffile::secret(conf.database_password_file.as_deref(), "MUSUBI_DATABASE_PASSWORD")
                    .map_err(|e| CentralError::Conf(format!("database password: {e}")))?;
            let url = match password {
                Some(p) => musubi_admin::conffile::with_password(url, &p)
                    .map_err(|e| CentralError::Conf(format!("database password: {e}")))?,
                None => url.clone(),
            };
            Registry::connect(&url, &conf.instance, &keys).await?
        }
        None => Registry::open(&conf.state_dir.join("registry.sqlite"), &conf.instance, &keys).await?,
    };
    if registry.signing_keys().await?.is_empty() {
        let k = registry.new_signing_key().await?;
        registry.activate_signing_key(k.id).await?;
    }
    let (stop, stop_rx) = watch::channel(false);
    // The management service's TLS certificate is made at first start and
    // kept (`state_dir/keys/management-tls.{p8,pem}`): security servers pin
    // the certificate the configuration publishes.
    let admin_error = |e: musubi_admin::AdminError| CentralError::Write(format!("admin API: {e}"));
    let (management_addr, management_cert) = match conf.management_listen {
        Some(addr) => {
            let sans = vec![addr.ip().to_string()];
            let identity = musubi_admin::Identity::load_or_create_as(
                &keys,
                "management-tls",
                &format!("{} management service", conf.instance),
                &sans,
            )
            .map_err(admin_error)?;
            let router = axum::Router::new()
                .fallback(management_answer)
                .with_state(registry.clone())
                .layer(axum::extract::DefaultBodyLimit::max(musubi_protocol::management::MAX_REQUEST_BYTES));
            let (bound, _) =
                musubi_admin::serve(addr, &identity, router, stop_rx.clone()).await.map_err(admin_error)?;
            (Some(bound), Some(identity.cert_der))
        }
        None => (None, None),
    };
    let published = Arc::new(RwLock::new(Published::default()));
    let central =
        Central { registry: registry.clone(), conf: conf.clone(), management_cert: management_cert.clone(), published };
    let (admin_addr, ui_setup_token) = match conf.admin_listen {
        Some(addr) => {
            let router = admin::router(central.clone());
            let pages = include_str!("../ui/pages.js");
            let admin = musubi_admin::start(
                addr,
                &conf.state_dir.join("admin"),
                "central server",
                router,
                admin::policy,
                pages,
                stop_rx.clone(),
            )
            .await
            .map_err(|e| CentralError::Write(format!("admin API: {e}")))?;
            (Some(admin.addr), admin.ui_setup_token)
        }
        None => (None, None),
    };
    central.generate().await?;
    let listener = tokio::net::TcpListener::bind(conf.conf_listen)
        .await
        .map_err(|error| CentralError::Bind { addr: conf.conf_listen, error })?;
    let conf_addr = listener.local_addr().map_err(|error| CentralError::Bind { addr: conf.conf_listen, error })?;
    tokio::spawn(serve(listener, central.published.clone(), stop_rx.clone()));
    {
        let (central, mut stop) = (central.clone(), stop_rx);
        tokio::spawn(async move {
            let every = Duration::from_secs(central.conf.generation_interval_secs.max(1));
            let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
            loop {
                tokio::select! {
                    _ = stop.changed() => return,
                    _ = tick.tick() => {
                        if let Err(e) = central.generate().await {
                            tracing::error!(error = %e, "global configuration not generated; the previous one stays published");
                        }
                    }
                }
            }
        });
    }
    Ok(Handle { registry, conf_addr, management_addr, admin_addr, ui_setup_token, central, stop })
}

/// Each POST is one management request (X-Road's path is
/// `/managementservice/`; any path is taken); the answer is X-Road's response
/// with `requestId`, or a SOAP fault that says what is wrong.
async fn management_answer(
    axum::extract::State(registry): axum::extract::State<Registry>,
    method: hyper::Method,
    headers: hyper::HeaderMap,
    body: Bytes,
) -> Response<axum::body::Body> {
    use musubi_protocol::management::response_soap;
    let xml = |status: hyper::StatusCode, body: Vec<u8>| {
        let mut r = Response::new(axum::body::Body::from(body));
        *r.status_mut() = status;
        r.headers_mut()
            .insert(hyper::header::CONTENT_TYPE, hyper::header::HeaderValue::from_static("text/xml; charset=UTF-8"));
        r
    };
    let fault = |code: &str, message: &str| {
        let f = musubi_protocol::Fault::new(format!("server.management.{code}"), message.to_string());
        xml(hyper::StatusCode::INTERNAL_SERVER_ERROR, f.to_xml())
    };
    if method != hyper::Method::POST {
        return fault("invalid_http_method", "management requests are sent with POST");
    }
    let ct = headers.get(hyper::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    match management::receive(&registry, ct, &body).await {
        Ok((signed, id, _)) => match response_soap(&signed.request, &signed.id, id) {
            Ok(r) => xml(hyper::StatusCode::OK, r.into_bytes()),
            Err(e) => fault(e.code, &e.message),
        },
        Err(e) => fault(e.code, &e.message),
    }
}

async fn serve(listener: tokio::net::TcpListener, published: Arc<RwLock<Published>>, mut stop: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            accepted = listener.accept() => {
                let Ok((tcp, _)) = accepted else { continue };
                let published = published.clone();
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                        let found = published
                            .read()
                            .ok()
                            .and_then(|p| p.files.iter().find(|(path, _, _)| path == req.uri().path()).cloned());
                        async move {
                            let mut r = Response::new(Full::new(found.as_ref().map(|f| f.2.clone()).unwrap_or_default()));
                            match found {
                                Some((_, ct, _)) => {
                                    if let Ok(v) = hyper::header::HeaderValue::from_str(&ct) {
                                        r.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
                                    }
                                }
                                None => *r.status_mut() = hyper::StatusCode::NOT_FOUND,
                            }
                            Ok::<_, std::convert::Infallible>(r)
                        }
                    });
                    let conn = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(tcp), svc);
                    let _ = tokio::time::timeout(Duration::from_secs(60), conn).await;
                });
            }
        }
    }
}
