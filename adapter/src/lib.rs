//! The Musubi ECHONET Lite adapter: home devices become X-Road services.
//!
//! The adapter is the provider information system behind its security
//! server: it discovers ECHONET Lite devices on the LAN ([`discovery`]),
//! keeps them in a persisted, bounded registry ([`registry`]), and answers
//! SOAP requests about them ([`service`]), with a WSDL made by
//! `musubi-wsdl`. An operator approves which devices are published
//! ([`admin`]); who may call the services is the security server's access
//! rights. Status changes are recorded and pushed to webhooks ([`webhook`]).
//!
//! The codecs are sans-IO ([`frame`], [`defs`], [`pacing`], [`sim`]); the
//! sockets ([`net`], [`controller`]) are a thin layer over them. The
//! simulator ([`simulate`]) runs the same objects on real sockets so that
//! everything, and independent peers such as pychonet, can be tested
//! against it.
//!
//! Not here (yet): IPv6 (ff02::1).

pub mod admin;
pub mod controller;
pub mod defs;
pub mod discovery;
pub mod frame;
pub mod mra;
pub mod net;
pub mod pacing;
pub mod registry;
pub mod service;
pub mod sim;
pub mod simulate;
pub mod webhook;

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::controller::Controller;
use crate::frame::{Eoj, Esv, Message, Property};
use crate::net::NetConfig;
use crate::pacing::PacingConfig;
use crate::registry::Registry;
use crate::sim::{SimNode, SimObject};
use crate::webhook::{Notification, WebhookConfig, Webhooks};

/// Pacing settings in a configuration file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PacingFile {
    /// Least milliseconds between two frames to one device (§2.7).
    pub min_gap_ms: u64,
    /// Milliseconds to wait for an answer.
    pub response_timeout_ms: u64,
    /// Resends of a lost request.
    pub max_retries: u32,
    /// Milliseconds before the first resend (doubled each time).
    pub retry_backoff_ms: u64,
    /// Frames per minute to one device, all included (at most 50, §6.11).
    pub frames_per_minute: usize,
    /// Resends after a Get_SNA (§6.8).
    pub max_retries_after_sna: u32,
}

impl Default for PacingFile {
    fn default() -> Self {
        let d = PacingConfig::default();
        Self {
            min_gap_ms: d.min_gap.as_millis() as u64,
            response_timeout_ms: d.response_timeout.as_millis() as u64,
            max_retries: d.max_retries,
            retry_backoff_ms: d.retry_backoff.as_millis() as u64,
            frames_per_minute: d.frames_per_minute,
            max_retries_after_sna: d.max_retries_after_sna,
        }
    }
}

impl From<&PacingFile> for PacingConfig {
    fn from(p: &PacingFile) -> Self {
        PacingConfig {
            min_gap: Duration::from_millis(p.min_gap_ms),
            response_timeout: Duration::from_millis(p.response_timeout_ms.max(1)),
            max_retries: p.max_retries,
            retry_backoff: Duration::from_millis(p.retry_backoff_ms),
            frames_per_minute: p.frames_per_minute,
            max_retries_after_sna: p.max_retries_after_sna,
        }
    }
}

/// Discovery settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DiscoveryConfig {
    /// Milliseconds to collect answers to a multicast search.
    pub window_ms: u64,
    /// Seconds between discovery rounds.
    pub interval_secs: u64,
    /// Seconds between liveness probes of each device (Get 0x80, §6.5).
    pub liveness_secs: u64,
    /// Most milliseconds before the adapter announces its own node (§4.2).
    pub announce_delay_ms: u64,
    /// Most milliseconds before answering a multicast request (§2.4.1).
    pub answer_delay_ms: u64,
    /// Nodes asked by unicast as well (where multicast does not reach).
    pub nodes: Vec<IpAddr>,
}

impl Default for DiscoveryConfig {
    fn default() -> Self {
        Self {
            window_ms: 3000,
            interval_secs: 3600,
            liveness_secs: 600,
            announce_delay_ms: 2000,
            answer_delay_ms: 500,
            nodes: Vec::new(),
        }
    }
}

/// A send-only device registered by hand (§2.10): never polled; its values
/// come from its notifications.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManualDevice {
    /// Its address.
    pub address: IpAddr,
    /// Its object, e.g. `001101`.
    pub eoj: String,
}

/// Prefix of environment variables that override the adapter's settings:
/// `MUSUBI_ADAPTER_MAX_DEVICES=200` sets `max_devices`,
/// `MUSUBI_ADAPTER_NET__PORT=3610` sets `port` in `[net]` (see
/// [`musubi_admin::conffile::apply_env`]).
pub const ENV_PREFIX: &str = "MUSUBI_ADAPTER_";

/// The adapter's configuration.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdapterConfig {
    /// Where the registry and the admin API's key, certificate and users live.
    pub state_dir: PathBuf,
    /// The provider endpoint its security server calls (port 8090).
    pub provider_listen: SocketAddr,
    /// The admin API and web UI (HTTPS; loopback by default).
    pub admin_listen: SocketAddr,
    /// Most devices the registry holds.
    #[serde(default = "default_max_devices")]
    pub max_devices: usize,
    /// ECHONET Lite sockets.
    #[serde(default)]
    pub net: NetConfig,
    /// Pacing of frames to each device.
    #[serde(default)]
    pub pacing: PacingFile,
    /// Discovery.
    #[serde(default)]
    pub discovery: DiscoveryConfig,
    /// Webhooks.
    #[serde(default)]
    pub webhooks: WebhookConfig,
    /// Send-only devices.
    #[serde(default)]
    pub manual_devices: Vec<ManualDevice>,
    /// A folder with the consortium's machine-readable definitions (MRA) for
    /// classes that are not built in.
    #[serde(default)]
    pub definitions_dir: Option<PathBuf>,
}

fn default_max_devices() -> usize {
    1000
}

/// Why the adapter cannot start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// A socket cannot be bound.
    #[error("cannot listen on {addr}: {error}")]
    Bind {
        /// Where.
        addr: String,
        /// What the system said.
        error: std::io::Error,
    },
    /// The registry cannot be opened.
    #[error(transparent)]
    Registry(#[from] registry::RegistryError),
    /// The state directory is unusable.
    #[error("state directory {path}: {error}")]
    State {
        /// The directory.
        path: PathBuf,
        /// What failed.
        error: std::io::Error,
    },
    /// The MRA definitions cannot be read.
    #[error("device definitions: {0}")]
    Definitions(#[from] mra::MraError),
    /// A manual device is malformed.
    #[error("manual device {0:?}: the EOJ must be 6 hex digits such as 001101")]
    BadEoj(String),
    /// The admin API cannot start (its folder, certificate or users file).
    #[error("admin API: {0}")]
    Admin(String),
}

/// A running adapter.
pub struct Handle {
    /// Where the provider endpoint listens.
    pub provider_addr: SocketAddr,
    /// Where the admin API and web UI listen (HTTPS).
    pub admin_addr: SocketAddr,
    /// The device registry.
    pub registry: Arc<Registry>,
    /// The ECHONET Lite controller.
    pub controller: Arc<Controller>,
    /// The webhooks.
    pub webhooks: Arc<Webhooks>,
    /// The admin API's folder: its API key (`admin-api-key`), TLS
    /// certificate (`admin-tls.pem`), users and audit log.
    pub admin_dir: PathBuf,
    /// The one-time token for making the first web UI user, while there is
    /// none (also in `admin/ui-setup-token`, the file the log names).
    pub ui_setup_token: Option<String>,
    core: Arc<Core>,
    stop: watch::Sender<bool>,
}

impl Handle {
    /// Runs a discovery round now.
    pub async fn discover(&self) -> discovery::Found {
        self.core.discover().await
    }

    /// Tells the adapter to stop (what dropping the handle does too).
    pub fn shutdown(&self) {
        let _ = self.stop.send(true);
    }

    /// Stops the adapter and waits until its ECHONET Lite sockets are
    /// released (so that the address can be bound again at once).
    pub async fn stop(self) {
        self.shutdown();
        self.controller.sockets().close().await;
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// What the tasks share.
pub(crate) struct Core {
    pub(crate) ctl: Arc<Controller>,
    pub(crate) registry: Arc<Registry>,
    pub(crate) webhooks: Arc<Webhooks>,
    pub(crate) conf: AdapterConfig,
    node: Mutex<SimNode>,
    describing: Mutex<HashSet<IpAddr>>,
    node_locks: Arc<discovery::NodeLocks>,
}

const MAX_CONCURRENT_DESCRIBES: usize = 64;

impl Core {
    pub(crate) async fn discover(&self) -> discovery::Found {
        let found = discovery::discover(
            &self.ctl,
            &self.registry,
            &self.node_locks,
            self.conf.net.multicast,
            &self.conf.discovery.nodes,
            Duration::from_millis(self.conf.discovery.window_ms),
        )
        .await;
        tracing::info!(nodes = found.nodes, new = found.new, known = found.known, failed = found.failed, "discovery");
        found
    }

    /// Handles a frame nobody was waiting for.
    async fn inbound(self: &Arc<Self>, inb: net::Inbound) {
        let msg = &inb.msg;
        let ip = inb.from.ip();
        // Requests to our own node (node profile or controller object).
        if msg.esv.is_request() {
            let answers = self.node.lock().map(|mut n| n.handle(msg)).unwrap_or_default();
            if answers.is_empty() {
                return;
            }
            let delay = if inb.multicast {
                net::random_delay(Duration::from_millis(self.conf.discovery.answer_delay_ms))
            } else {
                Duration::ZERO
            };
            let ctl = self.ctl.clone();
            let to = inb.from;
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                for a in answers {
                    let _ = ctl.notify(to, &a).await;
                }
            });
            return;
        }
        if !matches!(msg.esv, Esv::Inf | Esv::Infc | Esv::GetRes) {
            return;
        }
        if msg.esv == Esv::Infc {
            let ack = Message {
                tid: msg.tid,
                seoj: msg.deoj,
                deoj: msg.seoj,
                esv: Esv::InfcRes,
                props: msg.props.iter().map(|p| Property { epc: p.epc, edt: Vec::new() }).collect(),
                get_props: Vec::new(),
            };
            let _ = self.ctl.notify(inb.from, &ack).await;
        }
        if msg.seoj.class() == 0x0EF0 {
            // An instance list (0xD5 on joining, §4.2): describe what is new.
            let eojs = discovery::instances(&msg.props);
            if !eojs.is_empty() {
                self.describe_later(ip, eojs);
            }
            return;
        }
        if msg.esv == Esv::GetRes {
            return;
        }
        let Some(device) = self.registry.find(ip, msg.seoj) else {
            // A device we do not know: ask its node once for its instance list.
            if !self.registry.knows_address(ip) {
                self.describe_later(ip, Vec::new());
            }
            return;
        };
        let _ = self.registry.seen(&device.id, true).await;
        for p in &msg.props {
            let seq = match self.registry.record_notification(&device.id, p.epc, &p.edt).await {
                Ok(s) => s,
                Err(e) => {
                    tracing::error!(error = %e, "cannot record a notification");
                    continue;
                }
            };
            if !device.approved {
                continue;
            }
            let ctx = |epc: u8| device.context_value(epc);
            let reading = defs::decode(device.class(), p.epc, &p.edt, &ctx);
            self.webhooks
                .notify(Notification {
                    seq,
                    device_id: device.id.clone(),
                    device_type: defs::class(device.class())
                        .map_or_else(|| format!("0x{:04X}", device.class()), |c| c.name.to_string()),
                    property: defs::name_of(device.class(), p.epc),
                    epc: format!("0x{:02X}", p.epc),
                    value: reading.to_string(),
                    unit: reading.unit().map(str::to_string),
                    at: service::now_rfc3339(),
                })
                .await;
        }
    }

    /// Describes the node at `ip` in the background (its listed `eojs`, or
    /// its instance list first when empty); at most one run per node and a
    /// bounded number at once, so announcements cannot pile up work.
    fn describe_later(self: &Arc<Self>, ip: IpAddr, eojs: Vec<Eoj>) {
        {
            let Ok(mut busy) = self.describing.lock() else { return };
            if busy.len() >= MAX_CONCURRENT_DESCRIBES || !busy.insert(ip) {
                return;
            }
        }
        let core = self.clone();
        tokio::spawn(async move {
            let eojs = if eojs.is_empty() {
                let ask = vec![Property { epc: 0xD6, edt: Vec::new() }];
                match core.ctl.request(ip, Eoj::NODE_PROFILE, Esv::Get, ask, Vec::new()).await {
                    Ok(m) => discovery::instances(&m.props),
                    Err(_) => Vec::new(),
                }
            } else {
                eojs
            };
            let found = discovery::describe_node(&core.ctl, &core.registry, &core.node_locks, ip, &eojs).await;
            if found.new > 0 {
                tracing::info!(%ip, new = found.new, "new devices announced themselves; they wait for approval");
            }
            if let Ok(mut busy) = core.describing.lock() {
                busy.remove(&ip);
            }
        });
    }
}

/// Starts the adapter.
pub async fn start(conf: AdapterConfig) -> Result<Handle, StartError> {
    let state = |error| StartError::State { path: conf.state_dir.clone(), error };
    musubi_admin::files::private_dir(&conf.state_dir).map_err(state)?;
    if let Some(dir) = &conf.definitions_dir {
        let n = mra::install(dir)?;
        tracing::info!(classes = n, dir = %dir.display(), "device definitions loaded from the MRA");
    }
    let registry = Arc::new(Registry::open(&conf.state_dir.join("registry.sqlite"), conf.max_devices).await?);
    for m in &conf.manual_devices {
        let eoj = parse_eoj(&m.eoj).ok_or_else(|| StartError::BadEoj(m.eoj.clone()))?;
        admin::register_manual(&registry, m.address, eoj).await?;
    }
    let webhooks = Webhooks::start(registry.pool().clone(), conf.webhooks.clone())
        .await
        .map_err(|e| StartError::Registry(e.into()))?;
    let (sockets, mut inbound) = net::bind(&conf.net, 1024)
        .map_err(|error| StartError::Bind { addr: format!("{}:{} (UDP)", conf.net.bind, conf.net.port), error })?;
    let ctl = Controller::new(sockets, PacingConfig::from(&conf.pacing), conf.net.port, conf.net.tcp);
    let provider = tokio::net::TcpListener::bind(conf.provider_listen)
        .await
        .map_err(|error| StartError::Bind { addr: conf.provider_listen.to_string(), error })?;
    let provider_addr = provider.local_addr().map_err(|error| StartError::Bind { addr: "provider".into(), error })?;
    // Our own node: a node profile listing the controller object.
    let controller_obj = SimObject::new(controller::CONTROLLER)
        .with(0x80, &[0x30], None)
        .with(0x8A, &sim::SIM_MANUFACTURER, None)
        .with_maps(&[0x80]);
    let node =
        SimNode { objects: vec![SimObject::node_profile(&[controller::CONTROLLER], [0, 0, 0, 1]), controller_obj] };
    let core = Arc::new(Core {
        ctl: ctl.clone(),
        registry: registry.clone(),
        webhooks: webhooks.clone(),
        conf: conf.clone(),
        node: Mutex::new(node),
        describing: Mutex::new(HashSet::new()),
        node_locks: Arc::default(),
    });
    let (stop, stop_rx) = watch::channel(false);
    let services = Arc::new(service::Services {
        ctl: ctl.clone(),
        registry: registry.clone(),
        webhooks: webhooks.clone(),
        wsdl: musubi_wsdl::generate(&service::description(&format!("http://{provider_addr}/"))),
    });
    tokio::spawn(serve(provider, stop_rx.clone(), move |req| {
        let services = services.clone();
        async move { provider_request(&services, req).await }
    }));
    let admin_dir = conf.state_dir.join("admin");
    let admin = musubi_admin::start(
        conf.admin_listen,
        &admin_dir,
        "ECHONET Lite adapter",
        admin::router(core.clone()),
        admin::policy,
        include_str!("../ui/pages.js"),
        stop_rx.clone(),
    )
    .await
    .map_err(|e| StartError::Admin(e.to_string()))?;
    let (admin_addr, ui_setup_token) = (admin.addr, admin.ui_setup_token);
    // Frames nobody waits for.
    {
        let core = core.clone();
        let mut stop = stop_rx.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = stop.changed() => return,
                    got = inbound.recv() => {
                        let Some(inb) = got else { return };
                        if let Some(inb) = core.ctl.dispatch(inb) {
                            core.inbound(inb).await;
                        }
                    }
                }
            }
        });
    }
    // Announce ourselves (§4.2), then discover now and periodically; probe liveness.
    {
        let core = core.clone();
        let mut stop = stop_rx.clone();
        tokio::spawn(async move {
            tokio::time::sleep(net::random_delay(Duration::from_millis(core.conf.discovery.announce_delay_ms))).await;
            if core.conf.net.multicast {
                let msg = core.node.lock().ok().and_then(|mut n| n.instance_announcement());
                if let Some(msg) = msg {
                    let _ = core.ctl.notify(core.ctl.sockets().group, &msg).await;
                }
            }
            let every = Duration::from_secs(core.conf.discovery.interval_secs.max(10));
            let mut discover = tokio::time::interval(every);
            let live = Duration::from_secs(core.conf.discovery.liveness_secs.max(10));
            let mut liveness = tokio::time::interval_at(tokio::time::Instant::now() + live, live);
            loop {
                tokio::select! {
                    _ = stop.changed() => return,
                    _ = discover.tick() => { core.discover().await; }
                    _ = liveness.tick() => discovery::probe(&core.ctl, &core.registry).await,
                }
            }
        });
    }
    Ok(Handle { provider_addr, admin_addr, registry, controller: ctl, webhooks, admin_dir, ui_setup_token, core, stop })
}

/// `001101` or `0x001101` → EOJ.
pub fn parse_eoj(s: &str) -> Option<Eoj> {
    let h = s.trim().trim_start_matches("0x");
    if h.len() != 6 {
        return None;
    }
    let v = u32::from_str_radix(h, 16).ok()?.to_be_bytes();
    Some(Eoj([v[1], v[2], v[3]]))
}

/// Largest request body the endpoints read.
const MAX_BODY: usize = 1024 * 1024;

type Resp = Response<Full<Bytes>>;

pub(crate) fn response(status: u16, content_type: &str, body: impl Into<Bytes>) -> Resp {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    if let Ok(v) = hyper::header::HeaderValue::from_str(content_type) {
        r.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
    }
    r
}

pub(crate) async fn read_body(req: Request<hyper::body::Incoming>) -> Result<Bytes, Resp> {
    match Limited::new(req.into_body(), MAX_BODY).collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(_) => Err(response(413, "text/plain", format!("request body over {MAX_BODY} bytes"))),
    }
}

async fn provider_request(services: &service::Services, req: Request<hyper::body::Incoming>) -> Resp {
    let wants_wsdl =
        req.uri().path().ends_with("/wsdl") || req.uri().query().is_some_and(|q| q.eq_ignore_ascii_case("wsdl"));
    if req.method() == hyper::Method::GET && wants_wsdl {
        return response(200, "text/xml; charset=UTF-8", services.wsdl.clone());
    }
    if req.method() != hyper::Method::POST {
        return response(405, "text/plain", "POST SOAP requests here; GET ?wsdl for the service description");
    }
    let body = match read_body(req).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let (status, out) = services.handle(&body).await;
    response(status, "text/xml; charset=UTF-8", out)
}

/// A small HTTP/1.1 server: at most 256 connections at once.
async fn serve<F, Fut>(listener: tokio::net::TcpListener, mut stop: watch::Receiver<bool>, handler: F)
where
    F: Fn(Request<hyper::body::Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = Resp> + Send + 'static,
{
    let slots = Arc::new(tokio::sync::Semaphore::new(256));
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            accepted = listener.accept() => {
                let Ok((tcp, _)) = accepted else { continue };
                let Ok(permit) = slots.clone().try_acquire_owned() else { continue };
                let handler = handler.clone();
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |req| {
                        let handler = handler.clone();
                        async move { Ok::<_, std::convert::Infallible>(handler(req).await) }
                    });
                    let conn = hyper::server::conn::http1::Builder::new()
                        .timer(hyper_util::rt::TokioTimer::new())
                        .header_read_timeout(Duration::from_secs(10))
                        .serve_connection(TokioIo::new(tcp), svc);
                    let _ = tokio::time::timeout(Duration::from_secs(300), conn).await;
                    drop(permit);
                });
            }
        }
    }
}
