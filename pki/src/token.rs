//! The software token: private keys kept encrypted at rest under a PIN.
//!
//! Each key is an encrypted PKCS#8 file (PBES2: scrypt, a memory-hard KDF, with
//! AES-256-CBC; OpenSSL reads the same format with the PIN). `token.toml` holds
//! only public facts: ids, roles, labels, algorithms, public keys, and a PIN
//! check value encrypted the same way. Logging in decrypts the keys into
//! memory; a wrong PIN is refused after a delay that grows with each failure.
//! Key material never appears in `Debug` output, errors or logs.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use pkcs8::EncryptedPrivateKeyInfo;
use pkcs8::der::Decode;
use serde::{Deserialize, Serialize};

use crate::SigningKey;

const CHECK_PLAINTEXT: &[u8] = b"musubi token PIN check, version 1";
const MAX_META_BYTES: u64 = 1024 * 1024;
const MAX_KEY_BYTES: u64 = 64 * 1024;
/// Shortest PIN accepted when a token is created.
pub const MIN_PIN_LEN: usize = 6;

/// What a key is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyRole {
    /// The security server's authentication key (TLS on 5500); one per server.
    Auth,
    /// A member's signing key.
    Sign,
}

/// Key algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum KeyAlgorithm {
    /// ECDSA on P-256 (the default).
    #[serde(rename = "ecdsa-p256")]
    EcdsaP256,
    /// RSA, 2048 bits.
    #[serde(rename = "rsa-2048")]
    Rsa2048,
    /// RSA, 3072 bits.
    #[serde(rename = "rsa-3072")]
    Rsa3072,
}

/// Public facts about a key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyInfo {
    /// Identifier (hex SHA-256 prefix of the public key).
    pub id: String,
    /// Role.
    pub role: KeyRole,
    /// Operator's label.
    pub label: String,
    /// Algorithm.
    pub algorithm: KeyAlgorithm,
    /// SubjectPublicKeyInfo, base64 DER.
    pub public_key: String,
}

/// Where a certificate is in its life (X-Road's certificate states).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CertStatus {
    /// Imported, not yet registered at the central server.
    Saved,
    /// A registration request was sent.
    RegistrationInProgress,
    /// Registered in the global configuration.
    Registered,
    /// A deletion request was sent.
    DeletionInProgress,
}

/// A certificate held in the token for one of its keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertInfo {
    /// SHA-256 of the certificate, hex (as in the trust file).
    pub hash: String,
    /// The key it certifies.
    pub key_id: String,
    /// The certificate, base64 DER.
    pub cert: String,
    /// Registration state.
    pub status: CertStatus,
    /// Whether the certificate is in use (active) or disabled by the operator.
    pub active: bool,
}

impl CertInfo {
    /// The certificate, DER.
    pub fn der(&self) -> Vec<u8> {
        B64.decode(&self.cert).unwrap_or_default()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Meta {
    version: u32,
    pin_check: String,
    #[serde(default)]
    keys: Vec<KeyInfo>,
    #[serde(default)]
    certs: Vec<CertInfo>,
}

/// Token errors. None of them carries key material.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// The PIN is wrong.
    #[error("wrong PIN ({failures} failed attempt(s) in a row); the token stays locked")]
    WrongPin {
        /// Consecutive failures.
        failures: u32,
    },
    /// An operation needs the PIN first.
    #[error("the token is not logged in; log in with the PIN first")]
    NotLoggedIn,
    /// The PIN is too weak for a new token.
    #[error("the PIN must have at least {MIN_PIN_LEN} characters")]
    WeakPin,
    /// A token file is damaged.
    #[error("token file {file} is damaged: {problem}; restore it from a backup")]
    Corrupt {
        /// The file.
        file: PathBuf,
        /// What is wrong.
        problem: String,
    },
    /// A token already exists where one was to be created.
    #[error("a token already exists in {0}")]
    Exists(PathBuf),
    /// No key with that id.
    #[error("no key {0} in the token")]
    NoSuchKey(String),
    /// A second authentication key was requested.
    #[error("the token already holds authentication key {0}; a server has one authentication key")]
    AuthKeyExists(String),
    /// File system error.
    #[error("token {path}: {error}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The error.
        error: std::io::Error,
    },
    /// No key of the token matches the certificate.
    #[error("no key in the token matches certificate {0}; import a certificate issued for one of the token's keys")]
    NoKeyForCertificate(String),
    /// The certificate is already in the token.
    #[error("certificate {0} is already in the token")]
    CertificateExists(String),
    /// No certificate with that hash.
    #[error("no certificate {0} in the token")]
    NoSuchCertificate(String),
    /// A certificate state change that X-Road does not allow.
    #[error("certificate {hash} cannot go from {from:?} to {to:?}")]
    BadTransition {
        /// The certificate.
        hash: String,
        /// Its state.
        from: CertStatus,
        /// The requested state.
        to: CertStatus,
    },
    /// Key generation or encryption failed.
    #[error("key operation failed: {0}")]
    Crypto(String),
}

/// Token settings.
#[derive(Debug, Clone, Copy)]
pub struct TokenOptions {
    /// scrypt cost, log₂(N). The default 14 (r = 8: 16 MiB of memory per
    /// derivation) is what `openssl pkcs8 -scrypt` uses and the most OpenSSL
    /// accepts by default, so an operator can still open a key file with it.
    pub scrypt_log_n: u8,
    /// Delay after the first wrong PIN; doubles with each further failure, up to 30 s.
    pub wrong_pin_delay: Duration,
}

impl Default for TokenOptions {
    fn default() -> Self {
        Self { scrypt_log_n: 14, wrong_pin_delay: Duration::from_secs(1) }
    }
}

/// A software token in a folder.
pub struct SoftToken {
    dir: PathBuf,
    options: TokenOptions,
    meta: Mutex<Meta>,
    session: Mutex<Option<Session>>,
    failures: Mutex<u32>,
}

struct Session {
    pin: zeroize::Zeroizing<String>,
    keys: HashMap<String, zeroize::Zeroizing<Vec<u8>>>,
}

impl std::fmt::Debug for SoftToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SoftToken").field("dir", &self.dir).field("logged_in", &self.is_logged_in()).finish()
    }
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> TokenError + '_ {
    move |error| TokenError::Io { path: path.to_owned(), error }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl SoftToken {
    /// Creates a token in `dir` protected by `pin`, logged in.
    pub fn init(dir: &Path, pin: &str, options: TokenOptions) -> Result<Self, TokenError> {
        if pin.chars().count() < MIN_PIN_LEN {
            return Err(TokenError::WeakPin);
        }
        let meta_path = dir.join("token.toml");
        if meta_path.exists() {
            return Err(TokenError::Exists(dir.to_owned()));
        }
        std::fs::create_dir_all(dir.join("keys")).map_err(io(dir))?;
        // The token's folder is its owner's alone (its key files are 0600 too).
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            for d in [dir.to_path_buf(), dir.join("keys")] {
                std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o700)).map_err(io(&d))?;
            }
        }
        let check = encrypt(CHECK_PLAINTEXT, pin, options.scrypt_log_n)?;
        let meta = Meta { version: 1, pin_check: B64.encode(check), keys: Vec::new(), certs: Vec::new() };
        let token = Self {
            dir: dir.to_owned(),
            options,
            meta: Mutex::new(meta),
            session: Mutex::new(Some(Session { pin: pin.to_owned().into(), keys: HashMap::new() })),
            failures: Mutex::new(0),
        };
        token.save_meta()?;
        Ok(token)
    }

    /// Opens the token in `dir`, logged out.
    pub fn open(dir: &Path, options: TokenOptions) -> Result<Self, TokenError> {
        let path = dir.join("token.toml");
        let len = std::fs::metadata(&path).map_err(io(&path))?.len();
        if len > MAX_META_BYTES {
            return Err(TokenError::Corrupt { file: path, problem: format!("{len} bytes is too large") });
        }
        let text = std::fs::read_to_string(&path).map_err(io(&path))?;
        let meta: Meta =
            toml::from_str(&text).map_err(|e| TokenError::Corrupt { file: path.clone(), problem: e.to_string() })?;
        if meta.version != 1 {
            return Err(TokenError::Corrupt { file: path, problem: format!("unknown version {}", meta.version) });
        }
        Ok(Self {
            dir: dir.to_owned(),
            options,
            meta: Mutex::new(meta),
            session: Mutex::new(None),
            failures: Mutex::new(0),
        })
    }

    /// Logs in: checks the PIN and decrypts the keys into memory. A wrong PIN
    /// is answered only after a delay that doubles with each failure.
    pub async fn login(&self, pin: &str) -> Result<(), TokenError> {
        self.login_to(pin, None).await
    }

    /// Logs in for one operation: checks the PIN and decrypts only the keys
    /// `ids` (none: the PIN is checked and kept, as generating a key needs).
    /// Each key costs a key derivation, so one operation on a token of many
    /// keys should not decrypt them all.
    pub async fn login_for(&self, pin: &str, ids: &[&str]) -> Result<(), TokenError> {
        self.login_to(pin, Some(ids)).await
    }

    async fn login_to(&self, pin: &str, only: Option<&[&str]>) -> Result<(), TokenError> {
        let (check, keys) = {
            let meta = lock(&self.meta);
            let keys = meta.keys.iter().map(|k| k.id.clone());
            (
                meta.pin_check.clone(),
                keys.filter(|id| only.is_none_or(|o| o.contains(&id.as_str()))).collect::<Vec<_>>(),
            )
        };
        let dir = self.dir.clone();
        let pin_owned = zeroize::Zeroizing::new(pin.to_owned());
        let result = tokio::task::spawn_blocking(move || -> Result<Option<Session>, TokenError> {
            let meta_path = dir.join("token.toml");
            let check = B64
                .decode(check)
                .map_err(|e| TokenError::Corrupt { file: meta_path.clone(), problem: format!("pin_check: {e}") })?;
            match decrypt(&check, &pin_owned) {
                Ok(plain) if plain.as_slice() == CHECK_PLAINTEXT => {}
                Ok(_) | Err(_) => return Ok(None),
            }
            let mut map = HashMap::new();
            for id in keys {
                let path = dir.join("keys").join(format!("{id}.p8"));
                let bytes = read_limited(&path)?;
                let plain =
                    decrypt(&bytes, &pin_owned).map_err(|e| TokenError::Corrupt { file: path.clone(), problem: e })?;
                map.insert(id, zeroize::Zeroizing::new(plain));
            }
            Ok(Some(Session { pin: pin_owned, keys: map }))
        })
        .await
        .map_err(|e| TokenError::Crypto(e.to_string()))??;
        match result {
            Some(session) => {
                *lock(&self.failures) = 0;
                *lock(&self.session) = Some(session);
                Ok(())
            }
            None => {
                let failures = {
                    let mut f = lock(&self.failures);
                    *f += 1;
                    *f
                };
                let factor = 2u32.saturating_pow(failures.saturating_sub(1).min(16));
                let delay = self.options.wrong_pin_delay.saturating_mul(factor).min(Duration::from_secs(30));
                tokio::time::sleep(delay).await;
                Err(TokenError::WrongPin { failures })
            }
        }
    }

    /// Forgets the PIN and the decrypted keys.
    pub fn logout(&self) {
        *lock(&self.session) = None;
    }

    /// Whether the token is logged in.
    pub fn is_logged_in(&self) -> bool {
        lock(&self.session).is_some()
    }

    /// The keys, with public facts only.
    pub fn list(&self) -> Vec<KeyInfo> {
        lock(&self.meta).keys.clone()
    }

    /// Generates a key in the token (needs the PIN, which encrypts it).
    pub fn generate(&self, role: KeyRole, label: &str, algorithm: KeyAlgorithm) -> Result<KeyInfo, TokenError> {
        let pin = lock(&self.session).as_ref().map(|s| s.pin.clone()).ok_or(TokenError::NotLoggedIn)?;
        let existing_auth = lock(&self.meta).keys.iter().find(|k| k.role == KeyRole::Auth).map(|k| k.id.clone());
        if let (KeyRole::Auth, Some(id)) = (role, existing_auth) {
            return Err(TokenError::AuthKeyExists(id));
        }
        let pkcs8 = zeroize::Zeroizing::new(generate_pkcs8(algorithm)?);
        let spki = public_key_of(&pkcs8)?;
        let id: String = ring::digest::digest(&ring::digest::SHA256, &spki).as_ref()[..8]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let encrypted = encrypt(&pkcs8, &pin, self.options.scrypt_log_n)?;
        let path = self.dir.join("keys").join(format!("{id}.p8"));
        write_atomic(&path, &encrypted)?;
        let info = KeyInfo { id: id.clone(), role, label: label.to_owned(), algorithm, public_key: B64.encode(&spki) };
        lock(&self.meta).keys.push(info.clone());
        self.save_meta()?;
        if let Some(s) = lock(&self.session).as_mut() {
            s.keys.insert(id, pkcs8);
        }
        Ok(info)
    }

    /// Imports a certificate issued for one of the token's keys (state
    /// `saved`, active). The certificate must certify the key's public key.
    pub fn import_certificate(&self, cert_der: &[u8]) -> Result<CertInfo, TokenError> {
        let spki = x509_parser::parse_x509_certificate(cert_der)
            .map(|(_, c)| B64.encode(c.public_key().raw))
            .map_err(|e| TokenError::Crypto(format!("certificate does not parse: {e}")))?;
        let hash = crate::cert_hash(cert_der);
        let mut meta = lock(&self.meta);
        let key = meta
            .keys
            .iter()
            .find(|k| k.public_key == spki)
            .ok_or_else(|| TokenError::NoKeyForCertificate(hash.clone()))?;
        if meta.certs.iter().any(|c| c.hash == hash) {
            return Err(TokenError::CertificateExists(hash));
        }
        let info = CertInfo {
            hash,
            key_id: key.id.clone(),
            cert: B64.encode(cert_der),
            status: CertStatus::Saved,
            active: true,
        };
        meta.certs.push(info.clone());
        drop(meta);
        self.save_meta()?;
        Ok(info)
    }

    /// The token's certificates.
    pub fn certificates(&self) -> Vec<CertInfo> {
        lock(&self.meta).certs.clone()
    }

    /// Moves a certificate to `to`, along X-Road's path: saved → registration
    /// in progress → registered → deletion in progress (and back to saved
    /// when a request is refused).
    pub fn set_status(&self, hash: &str, to: CertStatus) -> Result<(), TokenError> {
        use CertStatus::*;
        self.update_cert(hash, |cert| {
            let allowed = matches!(
                (cert.status, to),
                (Saved, RegistrationInProgress)
                    | (RegistrationInProgress, Registered)
                    | (RegistrationInProgress, Saved)
                    | (Registered, DeletionInProgress)
                    | (DeletionInProgress, Saved)
                    | (Saved, Registered)
            );
            if !allowed {
                return Err(TokenError::BadTransition { hash: hash.into(), from: cert.status, to });
            }
            cert.status = to;
            Ok(())
        })
    }

    /// Activates or disables a certificate.
    pub fn set_active(&self, hash: &str, active: bool) -> Result<(), TokenError> {
        self.update_cert(hash, |cert| {
            cert.active = active;
            Ok(())
        })
    }

    fn update_cert(
        &self,
        hash: &str,
        change: impl FnOnce(&mut CertInfo) -> Result<(), TokenError>,
    ) -> Result<(), TokenError> {
        {
            let mut meta = lock(&self.meta);
            let cert = meta
                .certs
                .iter_mut()
                .find(|c| c.hash == hash)
                .ok_or_else(|| TokenError::NoSuchCertificate(hash.into()))?;
            change(cert)?;
        }
        self.save_meta()
    }

    /// Deletes a key (its encrypted file too).
    pub fn delete(&self, id: &str) -> Result<(), TokenError> {
        let removed = {
            let mut meta = lock(&self.meta);
            let before = meta.keys.len();
            meta.keys.retain(|k| k.id != id);
            meta.certs.retain(|c| c.key_id != id);
            meta.keys.len() != before
        };
        if !removed {
            return Err(TokenError::NoSuchKey(id.to_owned()));
        }
        self.save_meta()?;
        let path = self.dir.join("keys").join(format!("{id}.p8"));
        std::fs::remove_file(&path).map_err(io(&path))?;
        if let Some(s) = lock(&self.session).as_mut() {
            s.keys.remove(id);
        }
        Ok(())
    }

    /// The decrypted PKCS#8 of a key (needs login). Callers keep it in memory only.
    pub fn private_key(&self, id: &str) -> Result<zeroize::Zeroizing<Vec<u8>>, TokenError> {
        let session = lock(&self.session);
        let session = session.as_ref().ok_or(TokenError::NotLoggedIn)?;
        session.keys.get(id).cloned().ok_or_else(|| TokenError::NoSuchKey(id.to_owned()))
    }

    /// A signing key for `id` with its certificate (needs login).
    pub fn signing_key(&self, id: &str, cert_der: Vec<u8>) -> Result<SigningKey, TokenError> {
        let pkcs8 = self.private_key(id)?;
        crate::csr::matches_key(&cert_der, &pkcs8).map_err(|e| TokenError::Crypto(e.to_string()))?;
        SigningKey::from_pkcs8(&pkcs8, cert_der).map_err(|e| TokenError::Crypto(e.to_string()))
    }

    fn save_meta(&self) -> Result<(), TokenError> {
        let text = toml::to_string_pretty(&*lock(&self.meta)).map_err(|e| TokenError::Crypto(e.to_string()))?;
        write_atomic(&self.dir.join("token.toml"), text.as_bytes())
    }
}

fn read_limited(path: &Path) -> Result<Vec<u8>, TokenError> {
    let len = std::fs::metadata(path).map_err(io(path))?.len();
    if len > MAX_KEY_BYTES {
        return Err(TokenError::Corrupt { file: path.to_owned(), problem: format!("{len} bytes is too large") });
    }
    std::fs::read(path).map_err(io(path))
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), TokenError> {
    let tmp = path.with_extension("tmp");
    {
        use std::io::Write as _;
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt as _;
            options.mode(0o600);
        }
        let mut f = options.open(&tmp).map_err(io(&tmp))?;
        f.write_all(bytes).map_err(io(&tmp))?;
        f.sync_all().map_err(io(&tmp))?;
    }
    std::fs::rename(&tmp, path).map_err(io(path))
}

fn encrypt(plain: &[u8], pin: &str, log_n: u8) -> Result<Vec<u8>, TokenError> {
    use rand_core::RngCore as _;
    let mut salt = [0u8; 16];
    let mut iv = [0u8; 16];
    rand_core::OsRng.fill_bytes(&mut salt);
    rand_core::OsRng.fill_bytes(&mut iv);
    let kdf = scrypt::Params::new(log_n, 8, 1, 32).map_err(|e| TokenError::Crypto(e.to_string()))?;
    let params = pkcs8::pkcs5::pbes2::Parameters::scrypt_aes256cbc(kdf, &salt, &iv)
        .map_err(|e| TokenError::Crypto(e.to_string()))?;
    let ciphertext = params.encrypt(pin, plain).map_err(|e| TokenError::Crypto(e.to_string()))?;
    let info = EncryptedPrivateKeyInfo { encryption_algorithm: params.into(), encrypted_data: &ciphertext };
    pkcs8::der::Encode::to_der(&info).map_err(|e| TokenError::Crypto(e.to_string()))
}

fn decrypt(encrypted: &[u8], pin: &str) -> Result<Vec<u8>, String> {
    let info = EncryptedPrivateKeyInfo::from_der(encrypted).map_err(|e| format!("not an encrypted PKCS#8 key: {e}"))?;
    info.encryption_algorithm
        .decrypt(pin, info.encrypted_data)
        .map_err(|_| "cannot be decrypted with this PIN".to_owned())
}

fn generate_pkcs8(algorithm: KeyAlgorithm) -> Result<Vec<u8>, TokenError> {
    match algorithm {
        KeyAlgorithm::EcdsaP256 => crate::generate_ecdsa_key().map_err(|e| TokenError::Crypto(e.to_string())),
        KeyAlgorithm::Rsa2048 | KeyAlgorithm::Rsa3072 => {
            use rsa::pkcs8::EncodePrivateKey as _;
            let bits = if algorithm == KeyAlgorithm::Rsa2048 { 2048 } else { 3072 };
            let key =
                rsa::RsaPrivateKey::new(&mut rand_core::OsRng, bits).map_err(|e| TokenError::Crypto(e.to_string()))?;
            Ok(key.to_pkcs8_der().map_err(|e| TokenError::Crypto(e.to_string()))?.as_bytes().to_vec())
        }
    }
}

fn public_key_of(pkcs8: &[u8]) -> Result<Vec<u8>, TokenError> {
    let key = rcgen::KeyPair::try_from(pkcs8).map_err(|e| TokenError::Crypto(e.to_string()))?;
    Ok(rcgen::PublicKeyData::subject_public_key_info(&key))
}
