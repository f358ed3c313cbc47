//! The Musubi security server: a client proxy for information systems, a
//! server proxy for peer security servers on 5500 (mutual TLS), XAdES-signed
//! transport messages, OCSP for its own and its peers' certificates, and a
//! message log (time-stamped, archived) written before any response is
//! released.
//!
//! [`start`] takes a [`conf::ServerConf`], binds the listeners and returns a
//! [`Handle`]; the binary, `musubi demo` and the tests all start servers the
//! same way. Trust comes from the central server's global configuration
//! ([`confclient`], `confsync`) or, without one, from a trust file shaped like
//! shared-params. A server not set up yet runs only its admin API
//! ([`start_setup`], [`setup`]); registration goes to the central server as
//! X-Road's management requests ([`registration`]). Services and access
//! rights still come from the configuration file (the services issue moves
//! them into a database).

#![warn(missing_docs)]

mod admin;
pub mod alerts;
mod archiver;
pub mod backup;
pub mod conf;
pub mod confclient;
pub mod confdir;
mod confsync;
mod health;
pub mod messagelog;
mod metaservice;
mod metrics;
mod ocsp;
mod openapi;
mod proxy;
pub mod registration;
pub mod serverconf;
pub mod setup;
mod signer;
mod spool;
mod timestamper;
mod tls;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::net::TcpListener;
use tokio::sync::{Mutex, watch};
use tokio::task::JoinSet;
use tracing::{debug, info, warn};

use crate::conf::{ConfError, ServerConf, SharedTrust, Trust};
use crate::messagelog::MessageLog;
use musubi_pki::token::{KeyRole, SoftToken, TokenOptions};

/// A server that failed to start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// Configuration problem.
    #[error(transparent)]
    Conf(#[from] ConfError),
    /// A key or certificate problem.
    #[error("{0}")]
    Key(String),
    /// The message log could not be opened.
    #[error("cannot open the message log: {0}")]
    Log(#[from] sqlx::Error),
    /// The configuration anchor cannot be used.
    #[error("configuration anchor: {0}")]
    Anchor(String),
    /// The admin API could not be started.
    #[error("admin API: {0}")]
    Admin(String),
    /// A listener could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The error.
        source: std::io::Error,
    },
}

/// A running security server.
pub struct Handle {
    state: Arc<proxy::State>,
    follower: Option<(Arc<confsync::Follower>, Arc<confsync::Freshness>)>,
    archive_updates: watch::Sender<u64>,
    conf_updates: watch::Sender<u64>,
    shutdown: watch::Sender<bool>,
    tasks: JoinSet<()>,
    log: MessageLog,
    /// Where the client proxy listens.
    pub client_proxy_addr: SocketAddr,
    /// Where the server proxy listens.
    pub server_proxy_addr: SocketAddr,
    /// Where the admin API listens, when it runs.
    pub admin_addr: Option<SocketAddr>,
    /// Where the health check answers, when it runs.
    pub health_addr: Option<SocketAddr>,
    /// The one-time token for making the first web UI user, while there is
    /// none (also in `admin/ui-setup-token`, the file the log names).
    pub ui_setup_token: Option<String>,
}

impl Handle {
    /// The message log (tests read it).
    pub fn message_log(&self) -> &MessageLog {
        &self.log
    }

    /// The state folder (keys, downloads, admin files).
    pub fn state_dir(&self) -> &std::path::Path {
        &self.state.conf.state_dir
    }

    /// This server's identifier.
    pub fn server_id(&self) -> &musubi_protocol::SecurityServerId {
        &self.state.conf.server_id
    }

    /// The authentication certificate in use (DER).
    pub fn auth_cert(&self) -> Vec<u8> {
        self.state.auth().0.to_vec()
    }

    /// Downloads the global configuration now (as the periodic download
    /// does) and takes it into use; false when no good configuration was
    /// downloaded or the server does not follow a central server.
    pub async fn update_global_conf(&self) -> bool {
        let Some((follower, freshness)) = &self.follower else { return false };
        if !follower.round(freshness).await {
            return false;
        }
        // Taken into use here, not left to the watcher: when this returns, the
        // trust is the downloaded one (the watcher may take it again; no harm).
        match take_global_conf(&self.state).await {
            Ok(()) => {
                self.conf_updates.send_modify(|n| *n += 1);
                true
            }
            Err(e) => {
                warn!("downloaded global configuration not taken into use: {e}");
                false
            }
        }
    }

    /// Sends a management request to the central server, signed with this
    /// server's authentication key and the member's signing key; returns the
    /// central server's request id. The outcome arrives with a later global
    /// configuration.
    pub async fn management_request(
        &self,
        request: musubi_protocol::management::Request,
    ) -> Result<i64, registration::RegistrationError> {
        registration::send(&self.state, request).await
    }

    /// Asks the central server to register this server's authentication
    /// certificate, with the address peers reach it at.
    pub async fn register_auth_cert(&self, address: &str) -> Result<i64, registration::RegistrationError> {
        self.management_request(musubi_protocol::management::Request::AuthCertReg {
            server: self.server_id().clone(),
            address: address.to_string(),
            auth_cert: self.auth_cert(),
        })
        .await
    }

    /// Asks the central server to register `client` on this server.
    pub async fn register_client(
        &self,
        client: &musubi_protocol::ClientId,
    ) -> Result<i64, registration::RegistrationError> {
        self.management_request(musubi_protocol::management::Request::ClientReg {
            server: self.server_id().clone(),
            client: client.clone(),
        })
        .await
    }

    /// Counters since start.
    pub fn stats(&self) -> StatsSnapshot {
        self.state.stats.snapshot()
    }

    /// The OCSP status of one of this server's certificates, as last fetched.
    pub fn own_ocsp_status(&self, cert_der: &[u8]) -> Option<musubi_pki::ocsp::Status> {
        self.state.ocsp.own_status(cert_der)
    }

    /// Changes each time the server has taken a changed trust file or
    /// certificate into use.
    pub fn conf_updates(&self) -> watch::Receiver<u64> {
        self.conf_updates.subscribe()
    }

    /// Changes after every archiving round of this server.
    pub fn archive_updates(&self) -> watch::Receiver<u64> {
        self.archive_updates.subscribe()
    }

    /// Changes after every time-stamping round of this server.
    pub fn timestamp_updates(&self) -> watch::Receiver<u64> {
        self.state.timestamper.updates()
    }

    /// Changes after every OCSP fetch round of this server.
    pub fn ocsp_updates(&self) -> watch::Receiver<u64> {
        self.state.ocsp.updates()
    }

    /// Stops accepting, lets in-flight exchanges finish (up to
    /// [`DRAIN_TIMEOUT`]), closes the log.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        let drain = async { while self.tasks.join_next().await.is_some() {} };
        if tokio::time::timeout(DRAIN_TIMEOUT, drain).await.is_err() {
            warn!("in-flight exchanges did not finish within {} s", DRAIN_TIMEOUT.as_secs());
        }
        self.log.close().await;
    }
}

/// How long a stopping server waits for exchanges in flight before it closes
/// the message log (the systemd unit's stop timeout leaves room for it).
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// The token PIN from `pin_file` (readable by its owner and group only), or
/// else from `MUSUBI_TOKEN_PIN`.
fn read_pin(conf: &ServerConf) -> Result<zeroize::Zeroizing<String>, StartError> {
    musubi_admin::conffile::secret(conf.pin_file.as_deref(), "MUSUBI_TOKEN_PIN")
        .map_err(|e| StartError::Key(format!("token PIN: {e}")))?
        .ok_or_else(|| StartError::Key("no token PIN: set pin_file in the configuration or MUSUBI_TOKEN_PIN".into()))
}

/// The message log's PostgreSQL URL, if it has one: `MUSUBI_DATABASE_URL` or
/// `database_url`, with the password from `database_password_file` or
/// `MUSUBI_DATABASE_PASSWORD` put in.
fn database_url(conf: &ServerConf) -> Result<Option<zeroize::Zeroizing<String>>, StartError> {
    let Some(url) = std::env::var("MUSUBI_DATABASE_URL").ok().or_else(|| conf.database_url.clone()) else {
        return Ok(None);
    };
    let password = musubi_admin::conffile::secret(conf.database_password_file.as_deref(), "MUSUBI_DATABASE_PASSWORD")
        .map_err(|e| ConfError::Invalid(format!("database password: {e}")))?;
    let url = match password {
        Some(p) => musubi_admin::conffile::with_password(&url, &p)
            .map_err(|e| ConfError::Invalid(format!("database password: {e}")))?,
        None => url,
    };
    Ok(Some(zeroize::Zeroizing::new(url)))
}

fn read_pem(path: &std::path::Path, label: &str) -> Result<Vec<u8>, StartError> {
    let text =
        std::fs::read_to_string(path).map_err(|e| StartError::Key(format!("cannot read {}: {e}", path.display())))?;
    musubi_pki::pem_decode(label, &text)
        .ok_or_else(|| StartError::Key(format!("{} holds no {label} PEM block", path.display())))
}

/// What this server proves itself with: its authentication certificate and
/// key, its members' signing keys, all checked against the trust file.
struct Identity {
    auth_cert: CertificateDer<'static>,
    auth_key: PrivateKeyDer<'static>,
    signing_keys: HashMap<musubi_protocol::ClientId, musubi_pki::SigningKey>,
}

impl Identity {
    fn own_certs(&self) -> Vec<Vec<u8>> {
        let mut own = vec![self.auth_cert.to_vec()];
        own.extend(self.signing_keys.values().map(|k| musubi_protocol::xades::Signer::certificate_der(k).to_vec()));
        own
    }
}

/// One signing task per key.
fn start_signers(keys: HashMap<musubi_protocol::ClientId, musubi_pki::SigningKey>) -> proxy::Signers {
    keys.into_iter()
        .map(|(member, key)| {
            let key = Arc::new(key);
            (member, (key.clone(), signer::BatchSigner::start(key)))
        })
        .collect()
}

/// Reads the server's trust: the trust file, or the global configuration in
/// force when the server follows a central server. A trust file must name
/// this server and host its services; a downloaded configuration may not
/// yet (the server is being registered), which is logged, and exchanges are
/// refused until it does.
fn load_trust(conf: &ServerConf) -> Result<Trust, StartError> {
    let (trust, source) = match (&conf.global_conf, &conf.configuration_anchor) {
        (Some(path), None) => (Trust::new(conf::read_toml(path)?)?, path.display().to_string()),
        (None, Some(_)) => {
            let instance = conf.server_id.owner().instance();
            let trust = confsync::read_in_force(&conf.globalconf_root(), instance)?.ok_or_else(|| {
                StartError::Anchor(
                    "no global configuration has been downloaded from the anchor's sources yet; \
                     check that the central server is reachable"
                        .into(),
                )
            })?;
            (trust, "downloaded from the central server".to_string())
        }
        (Some(_), Some(_)) => {
            return Err(ConfError::Invalid(
                "both global_conf and configuration_anchor are set; a server takes its trust from the central \
                 server (configuration_anchor) or from a trust file (global_conf), not both"
                    .into(),
            )
            .into());
        }
        (None, None) => {
            return Err(ConfError::Invalid(
                "set configuration_anchor (follow a central server) or global_conf (a trust file)".into(),
            )
            .into());
        }
    };
    let problem = match trust.server(&conf.server_id) {
        None => Some(format!("{} is not in the global configuration {source}", conf.server_id)),
        Some(me) => conf.services.iter().find(|s| !me.hosts(s.id.provider())).map(|service| {
            format!(
                "service {} belongs to {}, which this server does not host; \
                 add the client to the server's clients in the global configuration",
                service.id,
                service.id.provider()
            )
        }),
    };
    match problem {
        Some(p) if !trust.from_central_server() => Err(ConfError::Invalid(p).into()),
        Some(p) => {
            warn!("{p}; exchanges are refused until the central server's configuration registers it");
            Ok(trust)
        }
        None => Ok(trust),
    }
}

/// Logs in to the token with the PIN and loads the keys of the configured
/// certificates, refusing certificates the trust file does not register.
async fn load_identity(conf: &ServerConf, trust: &Trust) -> Result<Identity, StartError> {
    let pin = read_pin(conf)?;
    let token =
        SoftToken::open(&conf.token_dir, TokenOptions::default()).map_err(|e| StartError::Key(e.to_string()))?;
    token.login(&pin).await.map_err(|e| StartError::Key(format!("token {}: {e}", conf.token_dir.display())))?;
    drop(pin);
    let key_for = |cert_der: &[u8], role: KeyRole| -> Result<String, StartError> {
        let spki = x509_parser::parse_x509_certificate(cert_der)
            .map(|(_, c)| base64::Engine::encode(&base64::engine::general_purpose::STANDARD, c.public_key().raw))
            .map_err(|e| StartError::Key(e.to_string()))?;
        token.list().into_iter().find(|k| k.public_key == spki && k.role == role).map(|k| k.id).ok_or_else(|| {
            StartError::Key(format!(
                "the token in {} holds no {role:?} key for certificate {}",
                conf.token_dir.display(),
                ocsp::describe(cert_der)
            ))
        })
    };
    let mut signing_keys = HashMap::new();
    for k in &conf.signing_keys {
        let cert = read_pem(&k.cert, "CERTIFICATE")?;
        if let Err(why) = trust.check_signer(&k.member, &cert) {
            return Err(ConfError::Invalid(format!(
                "the signing certificate {} cannot sign for {} under the global configuration ({why}); \
                 register it or point signing_keys at the registered one",
                k.cert.display(),
                k.member.member_id()
            ))
            .into());
        }
        let id = key_for(&cert, KeyRole::Sign)?;
        let sk = token.signing_key(&id, cert).map_err(|e| StartError::Key(format!("{}: {e}", k.cert.display())))?;
        signing_keys.insert(k.member.member_id(), sk);
    }
    let auth_cert = CertificateDer::from(read_pem(&conf.auth_cert, "CERTIFICATE")?);
    let me = trust.server(&conf.server_id).map(|s| s.auth_cert_hashes.clone()).unwrap_or_default();
    // Under a central server the registration may still be pending: the
    // client proxy refuses exchanges until the configuration lists it.
    if !trust.from_central_server() && !me.iter().any(|h| h.eq_ignore_ascii_case(&musubi_pki::cert_hash(&auth_cert))) {
        return Err(ConfError::Invalid(format!(
            "the authentication certificate {} is not registered for {} in the global configuration; \
             peers would refuse this server",
            conf.auth_cert.display(),
            conf.server_id
        ))
        .into());
    }
    // A certificate the operator disabled in the token is not used.
    let disabled: Vec<String> = token.certificates().into_iter().filter(|c| !c.active).map(|c| c.hash).collect();
    let mut in_use: Vec<&[u8]> = vec![&auth_cert];
    in_use.extend(signing_keys.values().map(musubi_protocol::xades::Signer::certificate_der));
    if let Some(c) = in_use.iter().find(|c| disabled.contains(&musubi_pki::cert_hash(c))) {
        return Err(StartError::Key(format!("certificate {} is disabled in the token", ocsp::describe(c))));
    }
    let auth_id = key_for(&auth_cert, KeyRole::Auth)?;
    let auth_pkcs8 = token.private_key(&auth_id).map_err(|e| StartError::Key(e.to_string()))?;
    let auth_key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(auth_pkcs8.to_vec()));
    token.logout();
    let identity = Identity { auth_cert, auth_key, signing_keys };
    for c in &identity.own_certs() {
        if trust.issuer_of(c).is_none() {
            return Err(ConfError::Invalid(format!(
                "certificate {} is not issued by an approved CA of the global configuration",
                ocsp::describe(c)
            ))
            .into());
        }
    }
    Ok(identity)
}

/// Starts a security server with `conf`.
pub async fn start(conf: ServerConf) -> Result<Handle, StartError> {
    musubi_admin::files::private_dir(&conf.state_dir)
        .map_err(|e| StartError::Key(format!("state folder {}: {e}", conf.state_dir.display())))?;
    let follower = match &conf.configuration_anchor {
        Some(anchor) => Some(
            confsync::Follower::new(anchor, conf.globalconf_root(), conf.configuration_download_secs)
                .map_err(StartError::Anchor)?,
        ),
        None => None,
    };
    if let Some(f) = &follower
        && f.instance() != conf.server_id.owner().instance()
    {
        return Err(StartError::Anchor(format!(
            "the anchor is for instance {:?}, this server ({}) belongs to {:?}",
            f.instance(),
            conf.server_id,
            conf.server_id.owner().instance()
        )));
    }
    let freshness = Arc::new(follower.as_ref().map_or_else(confsync::Freshness::disabled, |f| f.freshness()));
    // A first configuration before anything else; later ones come every interval.
    if let Some(f) = &follower
        && confclient::in_force_dir(&conf.globalconf_root()).is_none()
    {
        f.round(&freshness).await;
    }
    let trust = load_trust(&conf)?;
    let identity = load_identity(&conf, &trust).await?;
    let trust = SharedTrust::new(trust);
    let log = match database_url(&conf)? {
        Some(url) => MessageLog::connect(&url).await?,
        None => MessageLog::open(&conf.database).await?,
    };
    let serverconf = serverconf::ServerConfDb::open(log.pool())
        .await
        .map_err(|e| StartError::Admin(format!("server configuration: {e}")))?;
    let tls_conf = tls::server_config(trust.clone(), identity.auth_cert.clone(), identity.auth_key.clone_key())
        .map_err(|e| StartError::Key(format!("authentication certificate: {e}")))?;
    let tls_conf = Arc::new(std::sync::RwLock::new(Arc::new(tls_conf)));

    // OCSP: responses saved by an earlier run, then one fetch round before
    // serving (bounded), then the fetcher keeps them fresh.
    let own_certs = identity.own_certs();
    let ocsp_cache = Arc::new(
        ocsp::OcspCache::new(trust.clone(), own_certs, conf.state_dir.join("ocsp"))
            .map_err(|e| StartError::Key(format!("state folder {}: {e}", conf.state_dir.display())))?,
    );
    ocsp_cache.load_saved();
    // Large message parts are spooled here; files left by a crash are removed.
    let spool = spool::Spooler::new(conf.state_dir.join("spool"));
    spool.prepare().map_err(|e| StartError::Key(format!("spool folder {}: {e}", conf.state_dir.display())))?;
    if tokio::time::timeout(Duration::from_secs(10), ocsp_cache.refresh()).await != Ok(true) {
        warn!("not every certificate has a fresh OCSP response yet; exchanges wait for the fetcher");
    }
    let ocsp_listener = TcpListener::bind(conf.ocsp_listen)
        .await
        .map_err(|source| StartError::Bind { addr: conf.ocsp_listen, source })?;
    let fetch_interval = Duration::from_secs(conf.ocsp_fetch_interval_secs.max(1));
    let fetch_retry = Duration::from_secs(conf.ocsp_retry_secs.max(1));

    let cp = TcpListener::bind(conf.client_proxy_listen)
        .await
        .map_err(|source| StartError::Bind { addr: conf.client_proxy_listen, source })?;
    let sp = TcpListener::bind(conf.server_proxy_listen)
        .await
        .map_err(|source| StartError::Bind { addr: conf.server_proxy_listen, source })?;
    let client_proxy_addr =
        cp.local_addr().map_err(|source| StartError::Bind { addr: conf.client_proxy_listen, source })?;
    let server_proxy_addr =
        sp.local_addr().map_err(|source| StartError::Bind { addr: conf.server_proxy_listen, source })?;
    let conf_check = Duration::from_secs(conf.conf_check_secs.max(1));
    let ts_period = Duration::from_secs(conf.acceptable_timestamp_failure_period_secs);
    // The internal TLS identity shown to https providers (X-Road's internal TLS certificate).
    let internal = musubi_admin::Identity::load_or_create_as(
        &conf.state_dir,
        "internal-tls",
        &format!("{} internal", conf.server_id),
        &[],
    )
    .map_err(|e| StartError::Key(format!("internal TLS certificate: {e}")))?;
    let provider_tls = tls::ProviderTls::new(
        conf.provider_ca_file.as_deref(),
        CertificateDer::from(internal.cert_der.clone()),
        internal.key_der(),
    )
    .map_err(|e| StartError::Key(format!("TLS towards https providers: {e}")))?;
    let state = Arc::new(proxy::State {
        provider_tls,
        conf,
        trust,
        log: log.clone(),
        signing_keys: std::sync::RwLock::new(Arc::new(start_signers(identity.signing_keys))),
        auth: std::sync::RwLock::new(Arc::new((identity.auth_cert, identity.auth_key))),
        peers: Mutex::new(HashMap::new()),
        provider_client: Mutex::new(HashMap::new()),
        peer_tls: Mutex::new(HashMap::new()),
        stats: Stats::default(),
        ocsp: ocsp_cache.clone(),
        timestamper: timestamper::Timestamper::new(ts_period),
        globalconf: freshness.clone(),
        serverconf,
        trust_reload: tokio::sync::Mutex::new(()),
        batch_signatures: Default::default(),
        spool,
    });
    let stats_state = state.clone();
    let (tx, rx) = watch::channel(false);
    let mut tasks = JoinSet::new();
    tasks.spawn(serve_plain(cp, state.clone(), proxy::client_proxy, rx.clone()));
    let health_addr = match state.conf.health_listen {
        Some(addr) => {
            let l = TcpListener::bind(addr).await.map_err(|source| StartError::Bind { addr, source })?;
            let bound = l.local_addr().map_err(|source| StartError::Bind { addr, source })?;
            tasks.spawn(serve_plain(l, state.clone(), health_answer, rx.clone()));
            Some(bound)
        }
        None => None,
    };
    let new_generation = follower.as_ref().map(|f| f.taken.clone()).unwrap_or_default();
    let follower = follower.map(Arc::new);
    if let Some(f) = &follower {
        tasks.spawn(confsync::run(f.clone(), freshness.clone(), rx.clone()));
    }
    let (conf_updates, _) = watch::channel(0u64);
    tasks.spawn(watch_configuration(
        state.clone(),
        tls_conf.clone(),
        Reload { every: conf_check, new_generation },
        conf_updates.clone(),
        rx.clone(),
    ));
    tasks.spawn(timestamper::run(state.clone(), rx.clone()));
    let archive_dir = state.conf.archive_dir.clone().unwrap_or_else(|| state.conf.state_dir.join("archive"));
    let (archive_updates, _) = watch::channel(0u64);
    tasks.spawn(archiver::run(state.clone(), archive_dir, archive_updates.clone(), rx.clone()));
    tasks.spawn(serve_server_proxy(sp, state.clone(), tls_conf, rx.clone()));
    tasks.spawn(ocsp::serve_responses(ocsp_listener, ocsp_cache.clone(), rx.clone()));
    let (admin_addr, ui_setup_token) = match state.conf.admin_listen {
        Some(addr) => {
            let base = toml::Table::try_from(&state.conf).map_err(|e| StartError::Admin(e.to_string()))?;
            let node = Arc::new(setup::Node::new(base).map_err(|e| StartError::Admin(e.to_string()))?);
            let a = admin::Admin { node, running: Some(state.clone()), progressed: Arc::default() };
            let musubi_admin::Serving { addr: bound, task, ui_setup_token: token } =
                serve_admin(&state.conf.state_dir, addr, a, rx.clone()).await?;
            tasks.spawn(async move {
                let _ = task.await;
            });
            (Some(bound), token)
        }
        None => (None, None),
    };
    tasks.spawn(ocsp::run_fetcher(ocsp_cache, fetch_interval, fetch_retry, rx));
    info!(%client_proxy_addr, %server_proxy_addr, "security server started");
    Ok(Handle {
        follower: follower.map(|f| (f, freshness)),
        archive_updates,
        conf_updates,
        state: stats_state,
        shutdown: tx,
        tasks,
        log,
        client_proxy_addr,
        server_proxy_addr,
        admin_addr,
        ui_setup_token,
        health_addr,
    })
}

/// Serves the admin API and web UI at `addr`, with its TLS identity, keys
/// and users from `state_dir/admin`.
async fn serve_admin(
    state_dir: &std::path::Path,
    addr: SocketAddr,
    admin: admin::Admin,
    stop: watch::Receiver<bool>,
) -> Result<musubi_admin::Serving, StartError> {
    let dir = state_dir.join("admin");
    let pages = include_str!("../ui/pages.js");
    musubi_admin::start(addr, &dir, "security server", admin::router(admin), admin::policy, pages, stop)
        .await
        .map_err(|e| StartError::Admin(e.to_string()))
}

/// A security server being set up: only its admin API runs, offering the
/// setup steps (initialise, keys, CSRs, certificates) until they are done.
pub struct SetupHandle {
    node: Arc<setup::Node>,
    progressed: Arc<tokio::sync::Notify>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
    /// Where the admin API listens.
    pub admin_addr: SocketAddr,
    /// The one-time token for making the first web UI user (also in `admin/ui-setup-token`).
    pub ui_setup_token: Option<String>,
}

impl SetupHandle {
    /// Waits until every step before registration is done.
    pub async fn wait_complete(&self) {
        loop {
            let progressed = self.progressed.notified();
            tokio::pin!(progressed);
            progressed.as_mut().enable();
            if self.node.is_complete() {
                return;
            }
            progressed.await;
        }
    }

    /// The server's configuration as set up so far.
    pub fn server_conf(&self) -> Result<ServerConf, setup::SetupError> {
        self.node.server_conf()
    }

    /// Stops the setup API (its port is free when this returns).
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

/// Starts the admin API alone over the operator's configuration (a TOML
/// table with `state_dir` and `admin_listen`), for a server not set up yet.
pub async fn start_setup(base: toml::Table) -> Result<SetupHandle, StartError> {
    let addr: SocketAddr = base
        .get("admin_listen")
        .and_then(|v| v.as_str())
        .and_then(|a| a.parse().ok())
        .ok_or_else(|| StartError::Admin("the configuration names no admin_listen address".into()))?;
    let node = Arc::new(setup::Node::new(base).map_err(|e| StartError::Admin(e.to_string()))?);
    let state_dir = node.state_dir().to_path_buf();
    let progressed = Arc::new(tokio::sync::Notify::new());
    let (stop, rx) = watch::channel(false);
    let a = admin::Admin { node: node.clone(), running: None, progressed: progressed.clone() };
    let musubi_admin::Serving { addr: admin_addr, task, ui_setup_token } = serve_admin(&state_dir, addr, a, rx).await?;
    info!(%admin_addr, "security server not set up yet: the admin API waits for the setup steps");
    Ok(SetupHandle { node, progressed, stop, task, admin_addr, ui_setup_token })
}

/// Counters of a running server (served as Prometheus text on the admin API).
#[derive(Debug, Default)]
pub(crate) struct Stats {
    /// TLS connections opened to peer security servers.
    pub(crate) peer_connections: std::sync::atomic::AtomicU64,
    /// Exchanges, faults and latency, for `/metrics`.
    pub(crate) exchanges: metrics::Metrics,
}

impl Stats {
    fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot { peer_connections: self.peer_connections.load(std::sync::atomic::Ordering::Relaxed) }
    }
}

/// A copy of a server's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct StatsSnapshot {
    /// TLS connections opened to peer security servers since start.
    pub peer_connections: u64,
}

/// Most connections served at once per listener.
const MAX_CONNECTIONS: usize = 1024;
/// Most connections from one address per listener: a host that holds
/// connections open takes a quarter of the slots, never all of them.
const MAX_CONNECTIONS_PER_PEER: usize = MAX_CONNECTIONS / 4;
/// Most TLS handshakes under way on 5500 at once: a peer's connection needs
/// a handshake slot only until its certificate is checked, so sockets that
/// never finish a handshake (at most 10 s each) cannot crowd out the
/// security servers that do.
const MAX_HANDSHAKES: usize = 128;
/// Most TLS handshakes under way from one address.
const MAX_HANDSHAKES_PER_PEER: usize = 16;
/// Most refused or timed-out handshakes logged a minute (the rest are counted).
const HANDSHAKE_WARNINGS_PER_MINUTE: u32 = 60;

/// Plain HTTP on `listener`, each request answered by `handler` (the client
/// proxy, the health check), until `stop`; in-flight requests finish.
async fn serve_plain<F, Fut, B>(
    listener: TcpListener,
    state: Arc<proxy::State>,
    handler: F,
    mut stop: watch::Receiver<bool>,
) where
    F: Fn(Arc<proxy::State>, hyper::Request<hyper::body::Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = hyper::Response<B>> + Send + 'static,
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let limit = musubi_admin::limit::ConnectionLimit::new(MAX_CONNECTIONS, MAX_CONNECTIONS_PER_PEER);
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
            accepted = listener.accept() => {
                let Ok((tcp, peer_addr)) = accepted else { continue };
                let permit = match limit.admit(peer_addr.ip()) {
                    Ok(p) => p,
                    Err(why) => {
                        debug!(%peer_addr, "connection closed: {why}");
                        continue;
                    }
                };
                let (state, handler) = (state.clone(), handler.clone());
                let mut stop = stop.clone();
                conns.spawn(async move {
                    let _permit = permit;
                    let svc = service_fn(move |req| {
                        let (state, handler) = (state.clone(), handler.clone());
                        async move { Ok::<_, std::convert::Infallible>(handler(state, req).await) }
                    });
                    musubi_admin::serve_http1(tcp, svc, &mut stop).await;
                });
            }
        }
    }
    while conns.join_next().await.is_some() {}
}

/// The health check's answer (see [`health`]).
async fn health_answer(
    state: Arc<proxy::State>,
    _req: hyper::Request<hyper::body::Incoming>,
) -> hyper::Response<http_body_util::Full<bytes::Bytes>> {
    let (status, text) = health::check(&state).await;
    let mut r = hyper::Response::new(http_body_util::Full::new(bytes::Bytes::from(text)));
    *r.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    r
}

async fn serve_server_proxy(
    listener: TcpListener,
    state: Arc<proxy::State>,
    tls: Arc<std::sync::RwLock<Arc<rustls::ServerConfig>>>,
    mut stop: watch::Receiver<bool>,
) {
    let limit = musubi_admin::limit::ConnectionLimit::new(MAX_CONNECTIONS, MAX_CONNECTIONS_PER_PEER);
    let handshakes = musubi_admin::limit::ConnectionLimit::new(MAX_HANDSHAKES, MAX_HANDSHAKES_PER_PEER);
    let refusals = Arc::new(musubi_admin::limit::LogBudget::new(HANDSHAKE_WARNINGS_PER_MINUTE));
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
            accepted = listener.accept() => {
                let Ok((tcp, peer_addr)) = accepted else { continue };
                let admitted = handshakes.admit(peer_addr.ip()).and_then(|h| Ok((h, limit.admit(peer_addr.ip())?)));
                let (handshake, permit) = match admitted {
                    Ok(slots) => slots,
                    Err(why) => {
                        debug!(%peer_addr, "connection closed: {why}");
                        continue;
                    }
                };
                let state = state.clone();
                // The configuration current at accept time (the certificate may be renewed).
                let acceptor = tokio_rustls::TlsAcceptor::from(tls.read().unwrap_or_else(|p| p.into_inner()).clone());
                let (mut stop, refusals) = (stop.clone(), refusals.clone());
                conns.spawn(async move {
                    let _permit = permit;
                    let tls = tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await;
                    drop(handshake);
                    let why = match tls {
                        Ok(Ok(t)) => Ok(t),
                        Ok(Err(e)) => Err(format!("TLS handshake refused: {e}")),
                        Err(_) => Err("TLS handshake timed out".to_string()),
                    };
                    let tls = match why {
                        Ok(t) => t,
                        Err(why) => {
                            refusals.refused(peer_addr, &why);
                            return;
                        }
                    };
                    let Some(cert) = tls.get_ref().1.peer_certificates().and_then(|c| c.first()).map(|c| Arc::new(c.to_vec())) else {
                        return;
                    };
                    let svc = service_fn(move |req| {
                        let (state, cert) = (state.clone(), cert.clone());
                        async move { Ok::<_, std::convert::Infallible>(proxy::server_proxy(state, cert, req).await) }
                    });
                    musubi_admin::serve_http1(tls, svc, &mut stop).await;
                });
            }
        }
    }
    while conns.join_next().await.is_some() {}
}

fn modified(path: &std::path::Path) -> Option<std::time::SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// Takes the global configuration in force on disk into use: its trust
/// replaces the running one, and connections made under the old trust are
/// not reused.
async fn take_global_conf(state: &proxy::State) -> Result<(), StartError> {
    let _one_at_a_time = state.trust_reload.lock().await;
    let trust = load_trust(&state.conf)?;
    for (member, (key, _)) in state.signing_keys().iter() {
        if let Err(why) = trust.check_signer(member, musubi_protocol::xades::Signer::certificate_der(&**key)) {
            warn!(%member, "the signing certificate no longer fits the global configuration: {why}");
        }
    }
    state.trust.replace(trust);
    state.peers.lock().await.clear();
    state.peer_tls.lock().await.clear();
    info!("global configuration taken into use");
    Ok(())
}

/// When the configuration is looked at again.
struct Reload {
    /// Files are checked this often.
    every: Duration,
    /// Woken when a new global configuration has been put in force.
    new_generation: Arc<tokio::sync::Notify>,
}

/// Takes a changed trust file, a new global configuration or renewed
/// certificates into use without a restart: checked every `reload.every` and
/// at each new generation; a configuration that does not check out is
/// logged and the running one kept.
async fn watch_configuration(
    state: Arc<proxy::State>,
    tls: Arc<std::sync::RwLock<Arc<rustls::ServerConfig>>>,
    reload: Reload,
    updates: watch::Sender<u64>,
    mut stop: watch::Receiver<bool>,
) {
    let stamp = |conf: &ServerConf| {
        let mut files = vec![
            conf.global_conf.as_deref().and_then(modified),
            modified(&conf.auth_cert),
            modified(&conf.token_dir.join("token.toml")),
        ];
        files.extend(conf.signing_keys.iter().map(|k| modified(&k.cert)));
        (files, confclient::in_force_dir(&conf.globalconf_root()))
    };
    let mut last = stamp(&state.conf);
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            _ = tokio::time::sleep(reload.every) => {}
            _ = reload.new_generation.notified() => {}
        }
        let now = stamp(&state.conf);
        if now == last {
            continue;
        }
        // Only a new global configuration: the keys stay, the trust is replaced
        // (no token login, which costs a key derivation, at every generation).
        if now.0 == last.0 {
            last = now;
            match take_global_conf(&state).await {
                Ok(()) => updates.send_modify(|n| *n += 1),
                Err(e) => warn!("new global configuration not taken into use, the running one stays: {e}"),
            }
            continue;
        }
        last = now;
        let reload_guard = state.trust_reload.lock().await;
        let loaded = async {
            let trust = load_trust(&state.conf)?;
            let identity = load_identity(&state.conf, &trust).await?;
            Ok::<_, StartError>((trust, identity))
        }
        .await;
        let (trust, identity) = match loaded {
            Ok(x) => x,
            Err(e) => {
                warn!("changed configuration not taken into use, the running one stays: {e}");
                continue;
            }
        };
        let config =
            match tls::server_config(state.trust.clone(), identity.auth_cert.clone(), identity.auth_key.clone_key()) {
                Ok(c) => c,
                Err(e) => {
                    warn!("renewed authentication certificate not usable: {e}");
                    continue;
                }
            };
        state.trust.replace(trust);
        state.ocsp.set_own(identity.own_certs());
        *state.auth.write().unwrap_or_else(|p| p.into_inner()) = Arc::new((identity.auth_cert, identity.auth_key));
        *state.signing_keys.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(start_signers(identity.signing_keys));
        *tls.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(config);
        // Connections and TLS settings made under the old trust are not reused.
        state.peers.lock().await.clear();
        state.peer_tls.lock().await.clear();
        drop(reload_guard);
        state.ocsp.refresh().await;
        info!("configuration reloaded: trust and certificates taken into use");
        updates.send_modify(|n| *n += 1);
    }
}
