//! Setting up a security server step by step, the X-Road way (the security
//! server user guide's order): initialise (import the configuration anchor,
//! name the owner member and the server code, choose the token PIN), generate
//! the authentication and signing keys in the token, make CSRs, import the
//! certificates the CA returns, then register (see [`crate::registration`]).
//!
//! The operator's configuration file holds what an installation decides
//! (listen addresses, database, `state_dir`); what setup decides is kept in
//! `state_dir/setup.toml` and merged into it ([`Node::server_conf`]), so the
//! same [`ServerConf`] drives the server either way. The admin API and the
//! `musubi` CLI call these operations; nothing here speaks HTTP.

use std::path::{Path, PathBuf};

use musubi_pki::token::{CertInfo, KeyAlgorithm, KeyInfo, KeyRole, SoftToken, TokenOptions};
use musubi_protocol::{ClientId, SecurityServerId};
use serde::{Deserialize, Serialize};

use crate::conf::{ServerConf, SigningKeyConf};

/// What setup has decided, kept in `state_dir/setup.toml`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Setup {
    /// This server's identifier (owner member and server code).
    #[serde(default)]
    pub server_id: Option<SecurityServerId>,
    /// The imported authentication certificate (PEM file).
    #[serde(default)]
    pub auth_cert: Option<PathBuf>,
    /// Imported signing certificates of hosted members.
    #[serde(default)]
    pub signing_keys: Vec<SigningKeyConf>,
    /// Clients added on this server (registered or not).
    #[serde(default)]
    pub clients: Vec<ClientId>,
}

/// Why a setup step was not done.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SetupError {
    /// A request field is wrong.
    #[error("{field}: {problem}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// What is wrong and what is expected.
        problem: String,
    },
    /// The step does not fit the server's state (e.g. not initialised yet).
    #[error("{0}")]
    State(String),
    /// Something failed on the server.
    #[error("{0}")]
    Failed(String),
}

fn invalid(field: &'static str, problem: impl Into<String>) -> SetupError {
    SetupError::Invalid { field, problem: problem.into() }
}

fn failed(e: impl std::fmt::Display) -> SetupError {
    SetupError::Failed(e.to_string())
}

/// A security server's setup: the operator's configuration and its state folder.
#[derive(Debug)]
pub struct Node {
    base: toml::Table,
    state_dir: PathBuf,
    /// One setup step at a time.
    lock: tokio::sync::Mutex<()>,
}

/// A certificate imported into the token.
#[derive(Debug, Clone, Serialize)]
pub struct Imported {
    /// The token's record of it.
    pub cert: CertInfo,
    /// The role of its key.
    pub role: KeyRole,
    /// For a signing certificate, the member it names.
    pub member: Option<ClientId>,
}

impl Node {
    /// Setup over the operator's configuration (a TOML table with at least `state_dir`).
    pub fn new(base: toml::Table) -> Result<Self, SetupError> {
        let state_dir = base
            .get("state_dir")
            .and_then(|v| v.as_str())
            .map(PathBuf::from)
            .ok_or_else(|| invalid("state_dir", "the configuration names no state_dir"))?;
        musubi_admin::files::private_dir(&state_dir).map_err(failed)?;
        Ok(Self { base, state_dir, lock: tokio::sync::Mutex::new(()) })
    }

    /// The state folder.
    pub fn state_dir(&self) -> &Path {
        &self.state_dir
    }

    fn setup_path(&self) -> PathBuf {
        self.state_dir.join("setup.toml")
    }

    fn anchor_path(&self) -> PathBuf {
        self.state_dir.join("anchor.xml")
    }

    fn token_dir(&self) -> PathBuf {
        self.base.get("token_dir").and_then(|v| v.as_str()).map_or_else(|| self.state_dir.join("token"), PathBuf::from)
    }

    fn pin_path(&self) -> PathBuf {
        self.base.get("pin_file").and_then(|v| v.as_str()).map_or_else(|| self.state_dir.join("pin"), PathBuf::from)
    }

    /// What setup has decided so far.
    pub fn setup(&self) -> Result<Setup, SetupError> {
        match std::fs::read_to_string(self.setup_path()) {
            Ok(text) => toml::from_str(&text).map_err(|e| SetupError::Failed(format!("setup.toml: {e}"))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Setup::default()),
            Err(e) => Err(failed(e)),
        }
    }

    fn save(&self, setup: &Setup) -> Result<(), SetupError> {
        let text = toml::to_string_pretty(setup).map_err(failed)?;
        let tmp = self.state_dir.join("setup.toml.tmp");
        std::fs::write(&tmp, text).map_err(failed)?;
        std::fs::rename(&tmp, self.setup_path()).map_err(failed)
    }

    /// The server's configuration: the operator's file with what setup decided.
    pub fn server_conf(&self) -> Result<ServerConf, SetupError> {
        let setup = self.setup()?;
        let mut t = self.base.clone();
        let path = |p: &Path| toml::Value::String(p.display().to_string());
        if let Some(id) = &setup.server_id {
            t.entry("server_id").or_insert_with(|| toml::Value::String(id.to_string()));
        }
        if self.anchor_path().exists() && !t.contains_key("global_conf") {
            t.entry("configuration_anchor").or_insert_with(|| path(&self.anchor_path()));
        }
        t.entry("token_dir").or_insert_with(|| path(&self.token_dir()));
        if self.pin_path().exists() {
            t.entry("pin_file").or_insert_with(|| path(&self.pin_path()));
        }
        if let Some(a) = &setup.auth_cert {
            t.entry("auth_cert").or_insert_with(|| path(a));
        }
        if !setup.signing_keys.is_empty() {
            let mut keys = t.get("signing_keys").and_then(|v| v.as_array()).cloned().unwrap_or_default();
            for k in &setup.signing_keys {
                let value = toml::Value::try_from(k).map_err(failed)?;
                if !keys.contains(&value) {
                    keys.push(value);
                }
            }
            t.insert("signing_keys".into(), toml::Value::Array(keys));
        }
        t.try_into::<ServerConf>().map_err(|e| SetupError::State(format!("the configuration is not complete yet: {e}")))
    }

    /// Whether every step before registration is done: the server can run.
    pub fn is_complete(&self) -> bool {
        self.server_conf().is_ok_and(|c| {
            c.auth_cert.exists() && !c.signing_keys.is_empty() && c.signing_keys.iter().all(|k| k.cert.exists())
        })
    }

    fn pin(&self) -> Result<zeroize::Zeroizing<String>, SetupError> {
        let pin = match std::fs::read_to_string(self.pin_path()) {
            Ok(p) => p,
            Err(_) => std::env::var("MUSUBI_TOKEN_PIN").map_err(|_| {
                SetupError::State("no token PIN: initialise the server first, or set MUSUBI_TOKEN_PIN".into())
            })?,
        };
        Ok(zeroize::Zeroizing::new(pin.trim_end_matches(['\r', '\n']).to_owned()))
    }

    /// The token, not logged in: its keys' and certificates' records.
    fn token(&self) -> Result<SoftToken, SetupError> {
        let dir = self.token_dir();
        if !dir.join("token.toml").exists() {
            return Err(SetupError::State("the server is not initialised: no token yet".into()));
        }
        SoftToken::open(&dir, TokenOptions::default()).map_err(failed)
    }

    /// The token logged in with the PIN and the keys `ids` decrypted (none:
    /// the PIN only), so that an operation costs the same however many keys
    /// the token holds.
    async fn token_for(&self, ids: &[&str]) -> Result<SoftToken, SetupError> {
        let token = self.token()?;
        token.login_for(&self.pin()?, ids).await.map_err(|e| SetupError::State(format!("token login: {e}")))?;
        Ok(token)
    }

    /// Initialises the server: imports the configuration anchor, records the
    /// owner and server code, and creates the token with `pin` (kept in
    /// `state_dir/pin`, mode 0600, so the server logs in by itself at start,
    /// X-Road's autologin). Done once.
    pub async fn initialise(
        &self,
        anchor_xml: &[u8],
        owner: &str,
        server_code: &str,
        pin: &str,
    ) -> Result<SecurityServerId, SetupError> {
        let _guard = self.lock.lock().await;
        let mut setup = self.setup()?;
        if setup.server_id.is_some() {
            return Err(SetupError::State("the server is already initialised".into()));
        }
        let anchor = musubi_protocol::globalconf::parse_anchor(anchor_xml)
            .map_err(|e| invalid("anchor", format!("not a configuration anchor: {e}")))?;
        let owner: ClientId =
            owner.parse().map_err(|e| invalid("owner", format!("{e}; expected MEMBER:INSTANCE/CLASS/CODE")))?;
        if owner.subsystem_code().is_some() {
            return Err(invalid("owner", "the owner is a member, not a subsystem (MEMBER:INSTANCE/CLASS/CODE)"));
        }
        if owner.instance() != anchor.instance {
            return Err(invalid(
                "owner",
                format!("the owner is of instance {}, the anchor of {}", owner.instance(), anchor.instance),
            ));
        }
        let id = SecurityServerId::new(owner, server_code).map_err(|e| invalid("server_code", e.to_string()))?;
        if pin.chars().count() < musubi_pki::token::MIN_PIN_LEN {
            return Err(invalid("pin", format!("at least {} characters", musubi_pki::token::MIN_PIN_LEN)));
        }
        std::fs::write(self.anchor_path(), anchor_xml).map_err(failed)?;
        SoftToken::init(&self.token_dir(), pin, TokenOptions::default()).map_err(|e| invalid("pin", e.to_string()))?;
        musubi_admin::files::write_secret(&self.pin_path(), pin.as_bytes()).map_err(failed)?;
        setup.server_id = Some(id.clone());
        self.save(&setup)?;
        Ok(id)
    }

    /// Generates a key in the token.
    pub async fn generate_key(&self, role: KeyRole, label: &str) -> Result<KeyInfo, SetupError> {
        let _guard = self.lock.lock().await;
        let token = self.token_for(&[]).await?;
        if role == KeyRole::Auth && token.list().iter().any(|k| k.role == KeyRole::Auth) {
            return Err(SetupError::State("the token already holds an authentication key".into()));
        }
        token.generate(role, label, KeyAlgorithm::EcdsaP256).map_err(failed)
    }

    /// The keys in the token.
    pub async fn keys(&self) -> Result<(Vec<KeyInfo>, Vec<CertInfo>), SetupError> {
        let token = self.token()?;
        Ok((token.list(), token.certificates()))
    }

    /// A CSR (DER) for key `id`: for the authentication key, naming this
    /// server; for a signing key, naming `member` (default: the owner).
    pub async fn csr(&self, id: &str, member: Option<&str>) -> Result<Vec<u8>, SetupError> {
        let setup = self.setup()?;
        let server = setup.server_id.ok_or_else(|| SetupError::State("the server is not initialised".into()))?;
        let token = self.token_for(&[id]).await?;
        let key =
            token.list().into_iter().find(|k| k.id == id).ok_or_else(|| invalid("key", format!("no key {id}")))?;
        let subject = match key.role {
            KeyRole::Auth => musubi_pki::csr::Subject::Auth(server),
            KeyRole::Sign => {
                let member: ClientId = match member {
                    Some(m) => m.parse().map_err(|e| invalid("member", format!("{e}")))?,
                    None => server.owner().clone(),
                };
                musubi_pki::csr::Subject::Sign(member.member_id())
            }
        };
        let pkcs8 = token.private_key(id).map_err(failed)?;
        musubi_pki::csr::create(&pkcs8, &subject).map_err(failed)
    }

    /// Imports a certificate for one of the token's keys: the authentication
    /// certificate, or a member's signing certificate (the member as the
    /// certificate names it under X-Road's default profile, C/O/CN).
    pub async fn import_certificate(&self, der: &[u8]) -> Result<Imported, SetupError> {
        let _guard = self.lock.lock().await;
        let mut setup = self.setup()?;
        let server =
            setup.server_id.clone().ok_or_else(|| SetupError::State("the server is not initialised".into()))?;
        let token = self.token()?;
        let cert = token.import_certificate(der).map_err(|e| invalid("certificate", e.to_string()))?;
        let role = token.list().into_iter().find(|k| k.id == cert.key_id).map_or(KeyRole::Sign, |k| k.role);
        let dir = self.state_dir.join("certs");
        std::fs::create_dir_all(&dir).map_err(failed)?;
        let file = dir.join(format!("{}.pem", &cert.hash[..16]));
        std::fs::write(&file, musubi_pki::pem("CERTIFICATE", der)).map_err(failed)?;
        let member = match role {
            KeyRole::Auth => {
                setup.auth_cert = Some(file);
                None
            }
            KeyRole::Sign => {
                let member = member_named(der, server.owner().instance()).ok_or_else(|| {
                    invalid(
                        "certificate",
                        "the signing certificate does not name a member as C=INSTANCE, O=CLASS, CN=CODE",
                    )
                })?;
                setup.signing_keys.retain(|k| k.member != member);
                setup.signing_keys.push(SigningKeyConf { member: member.clone(), cert: file });
                Some(member)
            }
        };
        self.save(&setup)?;
        Ok(Imported { cert, role, member })
    }

    /// Marks a certificate's registration state in the token.
    pub async fn set_cert_status(&self, hash: &str, status: musubi_pki::token::CertStatus) -> Result<(), SetupError> {
        let _guard = self.lock.lock().await;
        self.token()?.set_status(hash, status).map_err(|e| SetupError::State(e.to_string()))
    }

    /// Activates or disables a certificate in the token.
    pub async fn set_cert_active(&self, hash: &str, active: bool) -> Result<(), SetupError> {
        let _guard = self.lock.lock().await;
        self.token()?.set_active(hash, active).map_err(|e| SetupError::State(e.to_string()))
    }

    /// Adds a client (member or subsystem) to this server.
    pub async fn add_client(&self, client: &str) -> Result<ClientId, SetupError> {
        let _guard = self.lock.lock().await;
        let mut setup = self.setup()?;
        let server =
            setup.server_id.clone().ok_or_else(|| SetupError::State("the server is not initialised".into()))?;
        let id: ClientId = client
            .parse()
            .map_err(|e| invalid("client", format!("{e}; expected SUBSYSTEM:INSTANCE/CLASS/CODE/SUB")))?;
        if id.instance() != server.owner().instance() {
            return Err(invalid("client", format!("the client is not of instance {}", server.owner().instance())));
        }
        if setup.clients.contains(&id) {
            return Err(SetupError::State(format!("{id} is already a client of this server")));
        }
        setup.clients.push(id.clone());
        self.save(&setup)?;
        Ok(id)
    }

    /// Removes a client from this server's list.
    pub async fn remove_client(&self, client: &ClientId) -> Result<(), SetupError> {
        let _guard = self.lock.lock().await;
        let mut setup = self.setup()?;
        let before = setup.clients.len();
        setup.clients.retain(|c| c != client);
        if setup.clients.len() == before {
            return Err(invalid("client", format!("{client} is not a client of this server")));
        }
        self.save(&setup)
    }
}

/// The member a signing certificate names under X-Road's default profile.
fn member_named(der: &[u8], instance: &str) -> Option<ClientId> {
    use x509_parser::oid_registry::{OID_X509_COMMON_NAME, OID_X509_COUNTRY_NAME, OID_X509_ORGANIZATION_NAME};
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let subject = cert.subject();
    let first = |oid| subject.iter_by_oid(oid).next().and_then(|a| a.as_str().ok()).map(str::to_owned);
    let (c, o, cn) =
        (first(&OID_X509_COUNTRY_NAME)?, first(&OID_X509_ORGANIZATION_NAME)?, first(&OID_X509_COMMON_NAME)?);
    (c == instance).then(|| ClientId::member(&c, &o, &cn).ok()).flatten()
}
