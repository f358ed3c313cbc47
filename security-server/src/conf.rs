//! Configuration of a security server: the trust file (shaped like X-Road's
//! shared-params, so that the configuration client of the central-server issue
//! replaces the loader, not the model) and the server's own settings.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use musubi_protocol::{ClientId, SecurityServerId, ServiceId};
use serde::{Deserialize, Serialize};

/// Global configuration: who is in the network and whom to trust.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GlobalConf {
    /// The X-Road instance identifier.
    pub instance_identifier: String,
    /// Approved certification authorities with their OCSP responders.
    pub approved_cas: Vec<ApprovedCa>,
    /// How old an OCSP response may be, seconds (X-Road's `ocspFreshnessSeconds`).
    #[serde(default = "default_freshness")]
    pub ocsp_freshness_seconds: u64,
    /// Approved time-stamping authorities, tried in order.
    #[serde(default)]
    pub approved_tsas: Vec<ApprovedTsa>,
    /// How often the message log is time-stamped, seconds (X-Road's `timeStampingIntervalSeconds`).
    #[serde(default = "default_ts_interval")]
    pub timestamping_interval_seconds: u64,
    /// Members of the network.
    #[serde(default)]
    pub members: Vec<Member>,
    /// Security servers of the network.
    #[serde(default)]
    pub security_servers: Vec<SecurityServer>,
    /// Global groups (X-Road's `globalGroup`), for access rights.
    #[serde(default)]
    pub global_groups: Vec<GlobalGroup>,
    /// Where management requests go (the private parameters' `managementService`).
    #[serde(default)]
    pub management_service: Option<ManagementService>,
}

/// The central server's management service.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManagementService {
    /// `https://` URL.
    pub url: String,
    /// The TLS certificate it presents (PEM); no other is accepted.
    pub cert: String,
}

/// A global group of the network.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GlobalGroup {
    /// Group code.
    pub code: String,
    /// Description.
    #[serde(default)]
    pub description: String,
    /// Members and subsystems in it.
    #[serde(default)]
    pub members: Vec<ClientId>,
}

fn default_download() -> u64 {
    60
}

fn default_freshness() -> u64 {
    3600
}

fn default_ts_interval() -> u64 {
    60
}

impl GlobalConf {
    /// The same model from a downloaded global configuration (X-Road's
    /// shared and private parameters). Shared parameters list no member
    /// signing certificates: signers are checked by their CA's certificate
    /// profile instead (see [`Trust::check_signer`]).
    pub fn from_params(
        shared: &musubi_protocol::sharedparams::SharedParams,
        private: &musubi_protocol::sharedparams::PrivateParams,
    ) -> Result<Self, ConfError> {
        let pem = |der: &[u8]| musubi_pki::pem("CERTIFICATE", der);
        let d = &shared.directory;
        let approved_cas = shared
            .cas
            .iter()
            .map(|ca| ApprovedCa {
                name: ca.name.clone(),
                cert: pem(&ca.top.cert),
                intermediates: ca.intermediates.iter().map(|i| pem(&i.cert)).collect(),
                ocsp: ca
                    .top
                    .ocsp
                    .iter()
                    .chain(ca.intermediates.iter().flat_map(|i| i.ocsp.iter()))
                    .map(|o| OcspResponder { url: o.url.clone(), cert: o.cert.as_deref().map(pem) })
                    .collect(),
                profile_info: ca.profile_info.clone(),
                authentication_only: ca.authentication_only,
            })
            .collect();
        let security_servers = d
            .servers
            .iter()
            .map(|s| {
                Ok(SecurityServer {
                    id: SecurityServerId::new(s.owner.clone(), &s.server_code).map_err(|e| {
                        ConfError::Invalid(format!("security server {} of {}: {e}", s.server_code, s.owner))
                    })?,
                    address: s.address.clone().unwrap_or_default(),
                    auth_cert_hashes: s.auth_cert_hashes.iter().map(|h| normalise_hash(h)).collect(),
                    clients: s.clients.clone(),
                    maintenance: s.maintenance.clone(),
                })
            })
            .collect::<Result<_, ConfError>>()?;
        Ok(Self {
            instance_identifier: d.instance.clone(),
            approved_cas,
            ocsp_freshness_seconds: shared.ocsp_freshness_seconds.unwrap_or_else(default_freshness),
            approved_tsas: shared
                .tsas
                .iter()
                .map(|t| ApprovedTsa { name: t.name.clone(), url: t.url.clone(), cert: pem(&t.cert) })
                .collect(),
            timestamping_interval_seconds: private.time_stamping_interval_seconds.unwrap_or_else(default_ts_interval),
            members: d
                .members
                .iter()
                .map(|m| Member {
                    id: m.id.clone(),
                    name: m.name.clone(),
                    subsystems: m.subsystems.clone(),
                    signing_certs: vec![],
                })
                .collect(),
            security_servers,
            management_service: private
                .management
                .as_ref()
                .map(|(url, cert)| ManagementService { url: url.clone(), cert: pem(cert) }),
            global_groups: d
                .groups
                .iter()
                .map(|g| GlobalGroup {
                    code: g.code.clone(),
                    description: g.description.clone(),
                    members: g.members.clone(),
                })
                .collect(),
        })
    }
}

/// An authentication-certificate hash as this server compares them: lower-case
/// hex of the SHA-256 of the DER. X-Road's shared parameters write base64.
pub fn normalise_hash(hash: &str) -> String {
    use base64::Engine as _;
    let hash = hash.trim();
    match base64::engine::general_purpose::STANDARD.decode(hash) {
        Ok(raw) if raw.len() == 32 && hash.len() == 44 => raw.iter().map(|b| format!("{b:02x}")).collect(),
        _ => hash.to_ascii_lowercase(),
    }
}

/// An approved time-stamping authority (shared-params `approvedTSA`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApprovedTsa {
    /// Display name.
    pub name: String,
    /// `http://` URL.
    pub url: String,
    /// The TSA's certificate (PEM).
    pub cert: String,
}

/// An approved certification authority (shared-params `approvedCA`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApprovedCa {
    /// Display name.
    pub name: String,
    /// The CA certificate (PEM).
    pub cert: String,
    /// Intermediate CA certificates under it (PEM), for certificate paths.
    #[serde(default)]
    pub intermediates: Vec<String>,
    /// Its OCSP responders, tried in order.
    #[serde(default)]
    pub ocsp: Vec<OcspResponder>,
    /// X-Road's `certificateProfileInfo`: how its signing certificates name
    /// their member (X-Road's default profile, C/O/CN, when absent).
    #[serde(default)]
    pub profile_info: Option<String>,
    /// The CA issues authentication certificates only; signing certificates
    /// under it are refused.
    #[serde(default)]
    pub authentication_only: bool,
}

/// An OCSP responder of an approved CA.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OcspResponder {
    /// `http://` URL.
    pub url: String,
    /// The responder's certificate (PEM) when it is not the CA itself.
    #[serde(default)]
    pub cert: Option<String>,
}

/// A member and its signing certificates.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Member {
    /// `MEMBER:…` identifier.
    pub id: ClientId,
    /// Display name.
    pub name: String,
    /// Subsystem codes.
    #[serde(default)]
    pub subsystems: Vec<String>,
    /// Signing certificates (PEM) the member signs messages with.
    #[serde(default)]
    pub signing_certs: Vec<String>,
}

/// A security server.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecurityServer {
    /// `SERVER:…` identifier.
    pub id: SecurityServerId,
    /// Host (and optional port; 5500 when absent) of its server proxy.
    pub address: String,
    /// SHA-256 hex hashes of its authentication certificates.
    pub auth_cert_hashes: Vec<String>,
    /// Clients (members and subsystems) it hosts.
    #[serde(default)]
    pub clients: Vec<ClientId>,
    /// In maintenance mode, with the operator's message: clients are not sent to it.
    #[serde(default)]
    pub maintenance: Option<String>,
}

impl SecurityServer {
    /// `host:port` of the server proxy.
    pub fn proxy_address(&self) -> String {
        if self.address.parse::<SocketAddr>().is_ok()
            || self.address.rsplit_once(':').is_some_and(|(_, p)| p.parse::<u16>().is_ok())
        {
            self.address.clone()
        } else {
            format!("{}:5500", self.address)
        }
    }
    /// `host:5577`, where the server serves the OCSP responses of its certificates.
    pub fn ocsp_address(&self) -> String {
        let proxy = self.proxy_address();
        let host = proxy.rsplit_once(':').map(|(h, _)| h).unwrap_or(&proxy);
        format!("{host}:5577")
    }

    /// Whether the server hosts `client` (a member hosts all its subsystems' requests only if listed).
    pub fn hosts(&self, client: &ClientId) -> bool {
        self.clients.iter().any(|c| c == client)
    }
}

/// A service this server provides.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Service {
    /// `SERVICE:…` identifier.
    pub id: ServiceId,
    /// Provider URL the request is forwarded to.
    pub url: String,
    /// Timeout for the provider, seconds.
    #[serde(default = "default_timeout")]
    pub timeout_secs: u64,
    /// Whether the service is enabled.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Clients allowed to call it (subsystems, or members for all their subsystems).
    #[serde(default)]
    pub allowed_clients: Vec<ClientId>,
    /// Global groups (codes of this instance) whose members may call it.
    #[serde(default)]
    pub allowed_global_groups: Vec<String>,
}

fn default_timeout() -> u64 {
    30
}
fn yes() -> bool {
    true
}

/// A signing certificate of a hosted member; its key is the token key with
/// the certificate's public key.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SigningKeyConf {
    /// The member whose key it is.
    pub member: ClientId,
    /// Certificate PEM file.
    pub cert: PathBuf,
}

/// The settings of one security server.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConf {
    /// This server's identifier.
    pub server_id: SecurityServerId,
    /// Path of a trust file (Musubi's TOML shaped like shared-params), for a
    /// server that does not follow a central server. Exclusive with
    /// `configuration_anchor`.
    #[serde(default)]
    pub global_conf: Option<PathBuf>,
    /// Client proxy listen address (information systems).
    pub client_proxy_listen: SocketAddr,
    /// Server proxy listen address (peers, mTLS).
    pub server_proxy_listen: SocketAddr,
    /// SQLite database file of the message log (the embedded default).
    pub database: PathBuf,
    /// A PostgreSQL URL (`postgres://user@host/db`) for the message log
    /// instead of the SQLite file. `MUSUBI_DATABASE_URL` overrides it.
    #[serde(default)]
    pub database_url: Option<String>,
    /// A file holding the database's password (mode 0600 or 0640, or a systemd
    /// credential), put into `database_url`. Without it the password comes from
    /// `MUSUBI_DATABASE_PASSWORD`, or from the URL itself; never from the command line.
    #[serde(default)]
    pub database_password_file: Option<PathBuf>,
    /// The software token holding this server's keys.
    pub token_dir: PathBuf,
    /// A file holding the token PIN (mode 0600). Without it the PIN comes from
    /// the environment variable `MUSUBI_TOKEN_PIN`; never from the command line.
    #[serde(default)]
    pub pin_file: Option<PathBuf>,
    /// Authentication certificate (PEM); its key is the token's authentication key.
    pub auth_cert: PathBuf,
    /// Signing keys of hosted members.
    #[serde(default)]
    pub signing_keys: Vec<SigningKeyConf>,
    /// Services provided through this server.
    #[serde(default)]
    pub services: Vec<Service>,
    /// Where peers fetch this server's OCSP responses (X-Road: port 5577).
    pub ocsp_listen: SocketAddr,
    /// Folder for state kept across restarts (cached OCSP responses) and for
    /// large message parts in transit (`spool/`, emptied at start).
    pub state_dir: PathBuf,
    /// How often the server fetches OCSP responses for its certificates, seconds.
    #[serde(default = "default_fetch_interval")]
    pub ocsp_fetch_interval_secs: u64,
    /// How soon a failed OCSP fetch is retried, seconds.
    #[serde(default = "default_retry")]
    pub ocsp_retry_secs: u64,
    /// Whether message bodies are logged (off: the log keeps the envelope and
    /// header with an empty body, X-Road's metadata-only logging).
    #[serde(default = "yes")]
    pub message_body_logging: bool,
    /// Hosted clients (subsystems or members) whose message bodies are never logged.
    #[serde(default)]
    pub body_logging_off_for: Vec<ClientId>,
    /// Time-stamp each record before its response is released (X-Road's
    /// immediate mode) instead of in batches every interval.
    #[serde(default)]
    pub timestamp_immediately: bool,
    /// How long time-stamping may fail before new exchanges are refused,
    /// seconds (X-Road's `acceptable-timestamp-failure-period`; 0 disables).
    #[serde(default = "default_ts_failure_period")]
    pub acceptable_timestamp_failure_period_secs: u64,
    /// Where archive files of time-stamped records are written (default `<state_dir>/archive`).
    #[serde(default)]
    pub archive_dir: Option<PathBuf>,
    /// How often records are archived, seconds.
    #[serde(default = "default_archive_interval")]
    pub archive_interval_secs: u64,
    /// How records are grouped into archive files.
    #[serde(default)]
    pub archive_grouping: ArchiveGrouping,
    /// A command run with each new archive file as its argument (e.g. to move it off the server).
    #[serde(default)]
    pub archive_transfer_command: Option<String>,
    /// How long archived records stay in the database, seconds (X-Road's
    /// `keep-records-for`, 30 days).
    #[serde(default = "default_keep_records")]
    pub keep_records_for_secs: u64,
    /// How often the server looks for a changed trust file or renewed
    /// certificates, seconds.
    #[serde(default = "default_conf_check")]
    pub conf_check_secs: u64,
    /// Largest request body accepted from an information system, bytes.
    #[serde(default = "default_max_body")]
    pub max_body_bytes: usize,
    /// A configuration anchor (X-Road's XML): when set, the server downloads
    /// the signed global configuration from the anchor's sources, takes its
    /// trust (CAs, TSAs, members, servers, groups) from it, and refuses
    /// exchanges once the configuration in force has expired.
    #[serde(default)]
    pub configuration_anchor: Option<PathBuf>,
    /// Seconds between configuration downloads (X-Road: 60).
    #[serde(default = "default_download")]
    pub configuration_download_secs: u64,
    /// Where the admin API listens (HTTPS; X-Road's 4000, on localhost unless
    /// the operator decides otherwise); none: no admin API.
    #[serde(default)]
    pub admin_listen: Option<SocketAddr>,
    /// Where the health check for load balancers answers (X-Road: 5588);
    /// none: no health check.
    #[serde(default)]
    pub health_listen: Option<SocketAddr>,
    /// Extra trusted roots (PEM) for https providers whose services verify
    /// TLS (`ssl_verify`), beside the system's; the server presents its
    /// internal TLS certificate (`state_dir/internal-tls.pem`) to them.
    #[serde(default)]
    pub provider_ca_file: Option<PathBuf>,
}

fn default_fetch_interval() -> u64 {
    1200
}
fn default_retry() -> u64 {
    60
}

fn default_ts_failure_period() -> u64 {
    14400
}

/// How the archiver groups records into files.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ArchiveGrouping {
    /// One chain of files for all records.
    #[default]
    None,
    /// One chain per member.
    Member,
    /// One chain per subsystem.
    Subsystem,
}

fn default_archive_interval() -> u64 {
    6 * 3600
}

fn default_keep_records() -> u64 {
    30 * 24 * 3600
}

fn default_conf_check() -> u64 {
    10
}

fn default_max_body() -> usize {
    32 * 1024 * 1024
}

impl ServerConf {
    /// Where downloaded global configurations are kept.
    pub fn globalconf_root(&self) -> PathBuf {
        self.state_dir.join("globalconf")
    }
}

/// A configuration file that cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfError {
    /// The file could not be read.
    #[error("cannot read {path}: {error}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        error: std::io::Error,
    },
    /// The file is not valid TOML of the expected shape.
    #[error("{path}: {error}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong, with line and column.
        error: Box<toml::de::Error>,
    },
    /// The contents are inconsistent.
    #[error("{0}")]
    Invalid(String),
    /// The server's own configuration file cannot be used.
    #[error(transparent)]
    File(#[from] musubi_admin::conffile::ConfFileError),
}

/// Largest configuration file accepted.
pub const MAX_CONF_BYTES: u64 = 4 * 1024 * 1024;

/// Reads and parses a TOML file (at most [`MAX_CONF_BYTES`]).
pub fn read_toml<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, ConfError> {
    let read_err = |error| ConfError::Read { path: path.into(), error };
    let len = std::fs::metadata(path).map_err(read_err)?.len();
    if len > MAX_CONF_BYTES {
        return Err(ConfError::Invalid(format!(
            "{} is {len} bytes; configuration files are limited to {MAX_CONF_BYTES} bytes",
            path.display()
        )));
    }
    let text = std::fs::read_to_string(path).map_err(read_err)?;
    toml::from_str(&text).map_err(|error| ConfError::Parse { path: path.into(), error: Box::new(error) })
}

/// Prefix of environment variables that override a security server's
/// settings: `MUSUBI_SECURITY_SERVER_MAX_BODY_BYTES=1048576` sets
/// `max_body_bytes` (see [`musubi_admin::conffile::apply_env`]).
pub const ENV_PREFIX: &str = "MUSUBI_SECURITY_SERVER_";

/// Settings a security server fills in from its state folder once it is set
/// up (`musubi init` and the steps after it): a configuration file may leave
/// them out.
pub const FROM_STATE: [&str; 6] =
    ["server_id", "token_dir", "pin_file", "auth_cert", "signing_keys", "configuration_anchor"];

/// Values that stand in, while the file is read, for required settings the
/// state folder gives.
pub const STAND_INS: [(&str, &str); 3] =
    [("server_id", "SERVER:CHECK/CHECK/CHECK/CHECK"), ("token_dir", ""), ("auth_cert", "")];

/// Reads a security server's configuration file as the server does: the TOML
/// syntax, then the name and type of every setting, each fault placed at
/// `FILE:LINE:COLUMN`, then the environment's overrides (`vars`, see
/// [`ENV_PREFIX`]). Settings in [`FROM_STATE`] may be missing.
pub fn load(
    path: &Path,
    vars: impl IntoIterator<Item = (String, String)>,
) -> Result<musubi_admin::conffile::Loaded<ServerConf>, ConfError> {
    Ok(musubi_admin::conffile::load(path, ENV_PREFIX, vars, &STAND_INS)?)
}

/// Checks a security server's configuration file with the process's
/// environment, as [`load`] reads it; returns a one-line summary.
pub fn check_file(path: &Path) -> Result<String, ConfError> {
    let loaded = load(path, std::env::vars())?;
    let table = &loaded.table;
    // A server that follows a trust file (`global_conf`) has no anchor.
    let follows_file = table.contains_key("global_conf");
    let from_state: Vec<&str> = FROM_STATE
        .into_iter()
        .filter(|k| {
            let given = table.contains_key(*k);
            let not_needed = follows_file && *k == "configuration_anchor";
            !given && !not_needed
        })
        .collect();
    let summary = loaded.summary(path);
    Ok(if from_state.is_empty() {
        summary
    } else {
        format!("{summary}; from the state folder once the server is set up: {}", from_state.join(", "))
    })
}

/// The current trust, replaced as a whole when the trust file changes; every
/// check takes the trust that is current when it starts.
#[derive(Debug, Clone)]
pub struct SharedTrust(Arc<std::sync::RwLock<Arc<Trust>>>);

impl SharedTrust {
    /// Shares `trust`.
    pub fn new(trust: Trust) -> Self {
        Self(Arc::new(std::sync::RwLock::new(Arc::new(trust))))
    }
    /// The current trust.
    pub fn get(&self) -> Arc<Trust> {
        self.0.read().unwrap_or_else(|p| p.into_inner()).clone()
    }
    /// Replaces the trust.
    pub fn replace(&self, trust: Trust) {
        *self.0.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(trust);
    }
}

/// The trust file in a form fit for lookups.
#[derive(Debug)]
pub struct Trust {
    /// The configuration as read.
    pub conf: GlobalConf,
    /// CA certificates, DER.
    pub ca_ders: Vec<Vec<u8>>,
    /// Per CA (same order as `ca_ders`): responder URLs and approved responder certificates.
    pub ocsp: Vec<(Vec<String>, Vec<Vec<u8>>)>,
    /// Intermediate CAs with the index of the approved CA they belong to.
    pub intermediates: Vec<(usize, Vec<u8>)>,
    /// Member → signing certificates (DER), as the trust file registers them.
    pub signing_certs: HashMap<ClientId, Vec<Vec<u8>>>,
    /// How signers are recognised.
    signers: Signers,
}

/// How a signing certificate is tied to its member.
#[derive(Debug)]
enum Signers {
    /// The trust file lists each member's signing certificates.
    Listed,
    /// A downloaded global configuration: the certificate must name the member
    /// under its CA's certificate profile (per approved CA, `None` for a
    /// profile Musubi does not know, which refuses every signer under it).
    ByProfile(Vec<Option<musubi_pki::verify::SignerProfile>>),
}

impl Trust {
    /// Builds lookups; refuses PEM that does not decode.
    pub fn new(conf: GlobalConf) -> Result<Self, ConfError> {
        let pem = |p: &str, what: &str| {
            musubi_pki::pem_decode("CERTIFICATE", p).ok_or_else(|| ConfError::Invalid(format!("{what} is not PEM")))
        };
        let mut ca_ders = Vec::new();
        let mut ocsp = Vec::new();
        let mut intermediates = Vec::new();
        for (index, ca) in conf.approved_cas.iter().enumerate() {
            ca_ders.push(pem(&ca.cert, &format!("the certificate of CA {:?}", ca.name))?);
            for i in &ca.intermediates {
                intermediates.push((index, pem(i, &format!("an intermediate certificate of CA {:?}", ca.name))?));
            }
            let urls = ca.ocsp.iter().map(|o| o.url.clone()).collect();
            let certs = ca
                .ocsp
                .iter()
                .filter_map(|o| o.cert.as_deref())
                .map(|c| pem(c, &format!("an OCSP responder certificate of CA {:?}", ca.name)))
                .collect::<Result<Vec<_>, _>>()?;
            ocsp.push((urls, certs));
        }
        let mut signing_certs = HashMap::new();
        for m in &conf.members {
            let certs = m
                .signing_certs
                .iter()
                .map(|p| {
                    musubi_pki::pem_decode("CERTIFICATE", p)
                        .ok_or_else(|| ConfError::Invalid(format!("a signing certificate of {} is not PEM", m.id)))
                })
                .collect::<Result<Vec<_>, _>>()?;
            signing_certs.insert(m.id.member_id(), certs);
        }
        Ok(Self { conf, ca_ders, ocsp, intermediates, signing_certs, signers: Signers::Listed })
    }

    /// Trust from a downloaded global configuration: signers are recognised
    /// by their CA's certificate profile, as X-Road does.
    pub fn from_params(conf: GlobalConf) -> Result<Self, ConfError> {
        use musubi_pki::verify::SignerProfile;
        let profiles = conf
            .approved_cas
            .iter()
            .map(|ca| match &ca.profile_info {
                None => Some(SignerProfile::Default),
                Some(info) => SignerProfile::from_info(info),
            })
            .collect();
        let mut trust = Self::new(conf)?;
        trust.signers = Signers::ByProfile(profiles);
        Ok(trust)
    }

    /// Whether the trust comes from a downloaded global configuration.
    pub fn from_central_server(&self) -> bool {
        matches!(self.signers, Signers::ByProfile(_))
    }

    /// Checks that `cert_der` is a signing certificate of `member`: listed for
    /// it in the trust file, or, under a downloaded configuration, issued by
    /// an approved CA that may issue signing certificates and naming the
    /// member as that CA's certificate profile says.
    pub fn check_signer(&self, member: &ClientId, cert_der: &[u8]) -> Result<(), String> {
        let member = member.member_id();
        match &self.signers {
            Signers::Listed => {
                if self.signing_certs.get(&member).is_some_and(|certs| certs.iter().any(|c| c == cert_der)) {
                    Ok(())
                } else {
                    Err(format!("the signing certificate does not belong to {member}"))
                }
            }
            Signers::ByProfile(profiles) => {
                let (index, _) = self
                    .issuer_of(cert_der)
                    .ok_or_else(|| "the signing certificate is not issued by an approved CA".to_string())?;
                let ca = &self.conf.approved_cas[index];
                if ca.authentication_only {
                    return Err(format!("CA {:?} issues authentication certificates only", ca.name));
                }
                let profile = profiles.get(index).copied().flatten().ok_or_else(|| {
                    format!(
                        "CA {:?} names an unknown certificate profile {:?}",
                        ca.name,
                        ca.profile_info.as_deref().unwrap_or_default()
                    )
                })?;
                musubi_pki::verify::check_signer(cert_der, &member, profile).map_err(|e| e.message)
            }
        }
    }

    /// Whether `client` is in global group `code` (a member's subsystems are not).
    pub fn in_global_group(&self, code: &str, client: &ClientId) -> bool {
        self.conf.global_groups.iter().any(|g| g.code == code && g.members.contains(client))
    }

    /// The CA certificate that issued `cert_der` (an approved CA or one of its
    /// intermediates, by signature), with the index of the approved CA.
    pub fn issuer_of(&self, cert_der: &[u8]) -> Option<(usize, &[u8])> {
        let now = time::OffsetDateTime::now_utc();
        let signed = |ca: &[u8]| {
            matches!(musubi_pki::check_issued_by(cert_der, ca, now), Ok(()) | Err(musubi_pki::PkiError::Expired { .. }))
        };
        self.ca_ders
            .iter()
            .enumerate()
            .find(|(_, ca)| signed(ca))
            .map(|(i, ca)| (i, ca.as_slice()))
            .or_else(|| self.intermediates.iter().find(|(_, ca)| signed(ca)).map(|(i, ca)| (*i, ca.as_slice())))
    }

    /// Checks that `cert_der` has a valid path to an approved CA at `now`.
    pub fn check_path(&self, cert_der: &[u8], extra: &[&[u8]], now: time::OffsetDateTime) -> Result<(), String> {
        let anchors: Vec<&[u8]> = self.ca_ders.iter().map(Vec::as_slice).collect();
        let mut intermediates: Vec<&[u8]> = self.intermediates.iter().map(|(_, d)| d.as_slice()).collect();
        intermediates.extend_from_slice(extra);
        musubi_pki::build_chain(cert_der, &intermediates, &anchors, now).map(|_| ()).map_err(|e| e.to_string())
    }

    /// The OCSP freshness limit.
    pub fn ocsp_freshness(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.conf.ocsp_freshness_seconds)
    }

    /// The security server with `id`.
    pub fn server(&self, id: &SecurityServerId) -> Option<&SecurityServer> {
        self.conf.security_servers.iter().find(|s| &s.id == id)
    }

    /// Servers hosting `client`.
    pub fn servers_hosting<'a>(&'a self, client: &'a ClientId) -> impl Iterator<Item = &'a SecurityServer> + 'a {
        self.conf.security_servers.iter().filter(move |s| s.hosts(client))
    }

    /// The server whose authentication certificate has `hash`.
    pub fn server_by_auth_hash(&self, hash: &str) -> Option<&SecurityServer> {
        self.conf.security_servers.iter().find(|s| s.auth_cert_hashes.iter().any(|h| h.eq_ignore_ascii_case(hash)))
    }

    /// Whether the client (member or subsystem) is a known member of the network.
    pub fn knows_client(&self, client: &ClientId) -> bool {
        self.conf.members.iter().any(|m| {
            m.id == client.member_id() && client.subsystem_code().is_none_or(|s| m.subsystems.iter().any(|x| x == s))
        })
    }
}
