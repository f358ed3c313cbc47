//! The registry (SQLite or PostgreSQL, same schema): members, subsystems, security servers, global
//! groups, approved CAs and TSAs, settings, and the configuration signing
//! keys. [`Registry::snapshot`] reads it in one transaction, so a
//! configuration is generated from one consistent state or not at all.

use std::path::{Path, PathBuf};

use musubi_protocol::ClientId;
use musubi_protocol::globalconf::Source;
use musubi_protocol::sharedparams::{
    CaCert, CaEntry, Directory, GroupEntry, MemberEntry, OcspEntry, ServerEntry, SharedParams, TsaEntry,
};
use sqlx::AnyPool;
use sqlx::any::AnyPoolOptions;

/// Registry failures.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// The database failed.
    #[error("registry database: {0}")]
    Db(#[from] sqlx::Error),
    /// Migrations failed.
    #[error("registry schema: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// Something named is not registered.
    #[error("{0}")]
    Unknown(String),
    /// A key file failed.
    #[error("signing key file {path}: {error}")]
    KeyFile {
        /// The file.
        path: PathBuf,
        /// What failed.
        error: std::io::Error,
    },
    /// Key material is unusable.
    #[error("signing key: {0}")]
    Key(String),
}

/// A configuration signing key.
#[derive(Debug, Clone)]
pub struct KeyInfo {
    /// Its id.
    pub id: i64,
    /// Its self-signed certificate (DER).
    pub cert: Vec<u8>,
    /// Whether it signs now.
    pub active: bool,
}

/// The registry.
#[derive(Debug, Clone)]
pub struct Registry {
    pub(crate) pool: AnyPool,
    instance: String,
    key_dir: PathBuf,
}

pub(crate) fn id_text(c: &ClientId) -> String {
    c.to_string()
}

pub(crate) fn parse_client(instance: &str, s: &str) -> Result<ClientId, RegistryError> {
    // Stored as `MEMBER:INST/CLASS/CODE` or `SUBSYSTEM:INST/CLASS/CODE/SUB`.
    let (kind, rest) = s.split_once(':').ok_or_else(|| RegistryError::Unknown(format!("bad identifier {s:?}")))?;
    let parts: Vec<&str> = rest.split('/').collect();
    let bad = |e: musubi_protocol::IdError| RegistryError::Unknown(format!("{s:?}: {e}"));
    match (kind, parts.as_slice()) {
        ("MEMBER", [i, c, m]) => ClientId::member(i, c, m).map_err(bad),
        ("SUBSYSTEM", [i, c, m, sub]) => ClientId::subsystem(i, c, m, sub).map_err(bad),
        _ => Err(RegistryError::Unknown(format!("{s:?} is not a member or subsystem of {instance}"))),
    }
}

impl Registry {
    /// Opens (or creates) the SQLite registry at `path` for `instance`; key
    /// files live in `key_dir`.
    pub async fn open(path: &Path, instance: &str, key_dir: &Path) -> Result<Self, RegistryError> {
        Self::connect(&format!("sqlite://{}?mode=rwc", path.display()), instance, key_dir).await
    }

    /// Opens the registry at a database URL (`sqlite://…` or `postgres://…`)
    /// and runs that backend's migrations (the same schema in each dialect).
    pub async fn connect(url: &str, instance: &str, key_dir: &Path) -> Result<Self, RegistryError> {
        sqlx::any::install_default_drivers();
        let sqlite = url.starts_with("sqlite:");
        if let Some(file) = musubi_admin::files::sqlite_file(url) {
            musubi_admin::files::private_file(file).map_err(sqlx::Error::Io)?;
        }
        let pool = AnyPoolOptions::new()
            .max_connections(4)
            .acquire_timeout(std::time::Duration::from_secs(5))
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    if sqlite {
                        sqlx::query("PRAGMA journal_mode = WAL").execute(&mut *conn).await?;
                        sqlx::query("PRAGMA synchronous = FULL").execute(&mut *conn).await?;
                        sqlx::query("PRAGMA busy_timeout = 5000").execute(&mut *conn).await?;
                    }
                    Ok(())
                })
            })
            .connect(url)
            .await?;
        if sqlite {
            sqlx::migrate!("./migrations/sqlite").run(&pool).await?;
        } else {
            sqlx::migrate!("./migrations/postgres").run(&pool).await?;
        }
        std::fs::create_dir_all(key_dir).map_err(|error| RegistryError::KeyFile { path: key_dir.into(), error })?;
        Ok(Self { pool, instance: instance.into(), key_dir: key_dir.into() })
    }

    /// Closes the database connections (at shutdown; tests use it to take the database away).
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// The instance.
    pub fn instance(&self) -> &str {
        &self.instance
    }

    /// Sets a global setting (`ocspFreshnessSeconds`, `timeStampingIntervalSeconds`).
    pub async fn set_setting(&self, key: &str, value: &str) -> Result<(), RegistryError> {
        sqlx::query(
            "INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        )
        .bind(key)
        .bind(value)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Adds a member class.
    pub async fn add_member_class(&self, code: &str, description: &str) -> Result<(), RegistryError> {
        sqlx::query("INSERT INTO member_classes (code, description) VALUES ($1, $2) ON CONFLICT (code) DO UPDATE SET description = excluded.description")
            .bind(code)
            .bind(description)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Adds a member.
    pub async fn add_member(&self, member: &ClientId, name: &str) -> Result<(), RegistryError> {
        sqlx::query("INSERT INTO members (class, code, name) VALUES ($1, $2, $3) ON CONFLICT (class, code) DO UPDATE SET name = excluded.name")
            .bind(member.member_class())
            .bind(member.member_code())
            .bind(name)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Adds a subsystem to its (registered) member.
    pub async fn add_subsystem(&self, subsystem: &ClientId) -> Result<(), RegistryError> {
        let sub = subsystem
            .subsystem_code()
            .ok_or_else(|| RegistryError::Unknown(format!("{subsystem} is not a subsystem")))?;
        let known: Option<(String,)> = sqlx::query_as("SELECT name FROM members WHERE class = $1 AND code = $2")
            .bind(subsystem.member_class())
            .bind(subsystem.member_code())
            .fetch_optional(&self.pool)
            .await?;
        if known.is_none() {
            return Err(RegistryError::Unknown(format!("{} is not a registered member", subsystem.member_id())));
        }
        sqlx::query("INSERT INTO subsystems (class, code, subsystem) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING")
            .bind(subsystem.member_class())
            .bind(subsystem.member_code())
            .bind(sub)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Adds a security server of `owner` with an authentication-certificate hash.
    pub async fn add_server(
        &self,
        owner: &ClientId,
        code: &str,
        address: &str,
        auth_cert_hash: &str,
    ) -> Result<(), RegistryError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO servers (owner_class, owner_code, server_code, address) VALUES ($1, $2, $3, $4) ON CONFLICT (owner_class, owner_code, server_code) DO UPDATE SET address = excluded.address",
        )
        .bind(owner.member_class())
        .bind(owner.member_code())
        .bind(code)
        .bind(address)
        .execute(&mut *tx)
        .await?;
        sqlx::query("INSERT INTO server_auth_certs (owner_class, owner_code, server_code, cert_hash) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING")
            .bind(owner.member_class())
            .bind(owner.member_code())
            .bind(code)
            .bind(auth_cert_hash)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Puts a security server into maintenance mode with a message for its
    /// clients' administrators (`Some`), or out of it (`None`).
    pub async fn set_maintenance(
        &self,
        server: &musubi_protocol::SecurityServerId,
        message: Option<&str>,
    ) -> Result<(), RegistryError> {
        let o = server.owner();
        let done = sqlx::query(
            "UPDATE servers SET in_maintenance = $4, maintenance_message = $5 \
             WHERE owner_class = $1 AND owner_code = $2 AND server_code = $3",
        )
        .bind(o.member_class())
        .bind(o.member_code())
        .bind(server.server_code())
        .bind(i64::from(message.is_some()))
        .bind(message)
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 0 {
            return Err(RegistryError::Unknown(format!("{server} is not registered")));
        }
        Ok(())
    }

    /// Lets the server host `client`.
    pub async fn add_server_client(
        &self,
        owner: &ClientId,
        code: &str,
        client: &ClientId,
    ) -> Result<(), RegistryError> {
        sqlx::query(
            "INSERT INTO server_clients (owner_class, owner_code, server_code, client) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
        )
        .bind(owner.member_class())
        .bind(owner.member_code())
        .bind(code)
        .bind(id_text(client))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Adds `member` to global group `code` (created if new).
    pub async fn add_group_member(
        &self,
        code: &str,
        description: &str,
        member: &ClientId,
    ) -> Result<(), RegistryError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("INSERT INTO global_groups (code, description) VALUES ($1, $2) ON CONFLICT DO NOTHING")
            .bind(code)
            .bind(description)
            .execute(&mut *tx)
            .await?;
        sqlx::query("INSERT INTO group_members (code, member) VALUES ($1, $2) ON CONFLICT DO NOTHING")
            .bind(code)
            .bind(id_text(member))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Removes `member` from global group `code`.
    pub async fn remove_group_member(&self, code: &str, member: &ClientId) -> Result<(), RegistryError> {
        sqlx::query("DELETE FROM group_members WHERE code = $1 AND member = $2")
            .bind(code)
            .bind(id_text(member))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Approves a CA with its OCSP responders (URL, responder certificate when not the CA).
    pub async fn add_ca(
        &self,
        name: &str,
        cert: &[u8],
        ocsp: &[(String, Option<Vec<u8>>)],
        profile_info: Option<&str>,
    ) -> Result<(), RegistryError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("INSERT INTO cas (name, cert, profile_info) VALUES ($1, $2, $3) ON CONFLICT (name) DO UPDATE SET cert = excluded.cert, profile_info = excluded.profile_info")
            .bind(name)
            .bind(cert)
            .bind(profile_info)
            .execute(&mut *tx)
            .await?;
        for (url, c) in ocsp {
            sqlx::query("INSERT INTO ca_ocsp (ca, url, cert) VALUES ($1, $2, $3) ON CONFLICT (ca, url) DO UPDATE SET cert = excluded.cert")
                .bind(name)
                .bind(url)
                .bind(c.as_deref())
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Approves a TSA.
    pub async fn add_tsa(&self, name: &str, url: &str, cert: &[u8]) -> Result<(), RegistryError> {
        sqlx::query("INSERT INTO tsas (name, url, cert) VALUES ($1, $2, $3) ON CONFLICT (name) DO UPDATE SET url = excluded.url, cert = excluded.cert")
            .bind(name)
            .bind(url)
            .bind(cert)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Generates a new configuration signing key (not active: it is announced
    /// first, X-Road's rotation); returns its id.
    pub async fn new_signing_key(&self) -> Result<KeyInfo, RegistryError> {
        let pkcs8 = musubi_pki::generate_ecdsa_key().map_err(|e| RegistryError::Key(e.to_string()))?;
        let cert = musubi_pki::self_signed_cert(&pkcs8, &format!("{} configuration signing", self.instance))
            .map_err(|e| RegistryError::Key(e.to_string()))?;
        let (id,): (i64,) =
            sqlx::query_as("INSERT INTO signing_keys (cert, active, created) VALUES ($1, 0, $2) RETURNING id")
                .bind(&cert)
                .bind(time::OffsetDateTime::now_utc().unix_timestamp())
                .fetch_one(&self.pool)
                .await?;
        let path = self.key_dir.join(format!("{id}.p8"));
        musubi_admin::files::write_secret(&path, &pkcs8)
            .map_err(|error| RegistryError::KeyFile { path: path.clone(), error })?;
        Ok(KeyInfo { id, cert, active: false })
    }

    /// Makes key `id` the one that signs.
    pub async fn activate_signing_key(&self, id: i64) -> Result<(), RegistryError> {
        let mut tx = self.pool.begin().await?;
        let found = sqlx::query("UPDATE signing_keys SET active = 1 WHERE id = $1").bind(id).execute(&mut *tx).await?;
        if found.rows_affected() == 0 {
            return Err(RegistryError::Unknown(format!("no signing key {id}")));
        }
        sqlx::query("UPDATE signing_keys SET active = 0 WHERE id <> $1").bind(id).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Every signing key.
    pub async fn signing_keys(&self) -> Result<Vec<KeyInfo>, RegistryError> {
        let rows: Vec<(i64, Vec<u8>, i64)> =
            sqlx::query_as("SELECT id, cert, active FROM signing_keys ORDER BY id").fetch_all(&self.pool).await?;
        Ok(rows.into_iter().map(|(id, cert, active)| KeyInfo { id, cert, active: active != 0 }).collect())
    }

    /// The active signing key, loaded.
    pub async fn active_key(&self) -> Result<(KeyInfo, musubi_pki::SigningKey), RegistryError> {
        let key = self
            .signing_keys()
            .await?
            .into_iter()
            .find(|k| k.active)
            .ok_or_else(|| RegistryError::Unknown("no active configuration signing key".into()))?;
        let path = self.key_dir.join(format!("{}.p8", key.id));
        let pkcs8 = std::fs::read(&path).map_err(|error| RegistryError::KeyFile { path, error })?;
        let signer = musubi_pki::SigningKey::from_pkcs8(&pkcs8, key.cert.clone())
            .map_err(|e| RegistryError::Key(e.to_string()))?;
        Ok((key, signer))
    }

    /// The whole registry as shared parameters, read in one transaction;
    /// `source_address` and the signing keys make its `<source>`.
    pub async fn snapshot(&self, source_address: &str) -> Result<(SharedParams, Option<u64>), RegistryError> {
        let mut tx = self.pool.begin().await?;
        let inst = self.instance.clone();
        let settings: Vec<(String, String)> =
            sqlx::query_as("SELECT key, value FROM settings").fetch_all(&mut *tx).await?;
        let setting = |k: &str| settings.iter().find(|(key, _)| key == k).and_then(|(_, v)| v.parse::<u64>().ok());
        let classes: Vec<(String, String)> =
            sqlx::query_as("SELECT code, description FROM member_classes ORDER BY code").fetch_all(&mut *tx).await?;
        let members: Vec<(String, String, String)> =
            sqlx::query_as("SELECT class, code, name FROM members ORDER BY class, code").fetch_all(&mut *tx).await?;
        let subs: Vec<(String, String, String)> =
            sqlx::query_as("SELECT class, code, subsystem FROM subsystems ORDER BY subsystem")
                .fetch_all(&mut *tx)
                .await?;
        let servers: Vec<(String, String, String, String, i64, Option<String>)> = sqlx::query_as(
            "SELECT owner_class, owner_code, server_code, address, in_maintenance, maintenance_message FROM servers \
             ORDER BY owner_class, owner_code, server_code",
        )
        .fetch_all(&mut *tx)
        .await?;
        let hashes: Vec<(String, String, String, String)> = sqlx::query_as(
            "SELECT owner_class, owner_code, server_code, cert_hash FROM server_auth_certs ORDER BY cert_hash",
        )
        .fetch_all(&mut *tx)
        .await?;
        let clients: Vec<(String, String, String, String)> =
            sqlx::query_as("SELECT owner_class, owner_code, server_code, client FROM server_clients ORDER BY client")
                .fetch_all(&mut *tx)
                .await?;
        let groups: Vec<(String, String)> =
            sqlx::query_as("SELECT code, description FROM global_groups ORDER BY code").fetch_all(&mut *tx).await?;
        let group_members: Vec<(String, String)> =
            sqlx::query_as("SELECT code, member FROM group_members ORDER BY member").fetch_all(&mut *tx).await?;
        let cas: Vec<(String, Vec<u8>, Option<String>, i64)> =
            sqlx::query_as("SELECT name, cert, profile_info, authentication_only FROM cas ORDER BY name")
                .fetch_all(&mut *tx)
                .await?;
        let ocsp: Vec<(String, String, Option<Vec<u8>>)> =
            sqlx::query_as("SELECT ca, url, cert FROM ca_ocsp ORDER BY url").fetch_all(&mut *tx).await?;
        let tsas: Vec<(String, String, Vec<u8>)> =
            sqlx::query_as("SELECT name, url, cert FROM tsas ORDER BY name").fetch_all(&mut *tx).await?;
        let keys: Vec<(Vec<u8>,)> =
            sqlx::query_as("SELECT cert FROM signing_keys ORDER BY id").fetch_all(&mut *tx).await?;
        tx.commit().await?;

        let bad = |e: musubi_protocol::IdError| RegistryError::Unknown(e.to_string());
        let mut directory = Directory { instance: inst.clone(), member_classes: classes, ..Directory::default() };
        for (class, code, name) in members {
            let id = ClientId::member(&inst, &class, &code).map_err(bad)?;
            let subsystems =
                subs.iter().filter(|(c, m, _)| *c == class && *m == code).map(|(_, _, s)| s.clone()).collect();
            directory.members.push(MemberEntry { id, name, subsystems });
        }
        for (class, code, server, address, in_maintenance, message) in &servers {
            let owner = ClientId::member(&inst, class, code).map_err(bad)?;
            let of = |rows: &Vec<(String, String, String, String)>| -> Vec<String> {
                rows.iter().filter(|r| (&r.0, &r.1, &r.2) == (class, code, server)).map(|r| r.3.clone()).collect()
            };
            let clients = of(&clients).iter().map(|c| parse_client(&inst, c)).collect::<Result<_, _>>()?;
            directory.servers.push(ServerEntry {
                owner,
                server_code: server.clone(),
                address: Some(address.clone()).filter(|a| !a.is_empty()),
                auth_cert_hashes: of(&hashes),
                clients,
                maintenance: (*in_maintenance != 0).then(|| message.clone().unwrap_or_default()),
            });
        }
        // The automatic group of security-server owners, as X-Road keeps it.
        let mut owners: Vec<ClientId> = directory.servers.iter().map(|s| s.owner.clone()).collect();
        owners.sort_by_key(ToString::to_string);
        owners.dedup();
        directory.groups.push(GroupEntry {
            code: "security-server-owners".into(),
            description: "Security server owners".into(),
            members: owners,
        });
        for (code, description) in groups {
            let members = group_members
                .iter()
                .filter(|(g, _)| *g == code)
                .map(|(_, m)| parse_client(&inst, m))
                .collect::<Result<_, _>>()?;
            directory.groups.push(GroupEntry { code, description, members });
        }
        let cas = cas
            .into_iter()
            .map(|(name, cert, profile_info, auth_only)| CaEntry {
                top: CaCert {
                    cert,
                    ocsp: ocsp
                        .iter()
                        .filter(|(ca, _, _)| *ca == name)
                        .map(|(_, u, c)| OcspEntry { url: u.clone(), cert: c.clone(), cost: None })
                        .collect(),
                },
                name,
                authentication_only: auth_only != 0,
                intermediates: Vec::new(),
                profile_info,
                acme: None,
            })
            .collect();
        let params = SharedParams {
            sources: vec![Source {
                location: source_address.into(),
                certs: keys.into_iter().map(|(c,)| c).collect(),
                external_certs: vec![],
            }],
            cas,
            tsas: tsas.into_iter().map(|(name, url, cert)| TsaEntry { name, url, cert }).collect(),
            directory,
            ocsp_freshness_seconds: setting("ocspFreshnessSeconds"),
        };
        Ok((params, setting("timeStampingIntervalSeconds")))
    }
}
