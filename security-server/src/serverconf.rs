//! The server configuration kept in the database (X-Road's serverconf):
//! service descriptions added from a provider's WSDL, their services
//! (provider URL, timeout, TLS verification), enabled or disabled with a
//! notice; local groups of each client; and access rights per service, to a
//! member or subsystem, a local group or a global group.
//!
//! It lives in the server's database beside the message log (same
//! migrations, SQLite or PostgreSQL). Every change reloads an in-memory
//! [`Snapshot`] that the server proxy reads on each request, so a grant or a
//! revocation holds from the next request on, with no cache to go stale.

use std::sync::{Arc, RwLock};

use musubi_protocol::{ClientId, ServiceId};
use sqlx::AnyPool;

/// Why a configuration change was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerConfError {
    /// The database failed.
    #[error("server configuration database: {0}")]
    Db(#[from] sqlx::Error),
    /// The change does not fit what is there (with what to do).
    #[error("{0}")]
    Conflict(String),
    /// Something named does not exist.
    #[error("{0}")]
    NotFound(String),
}

/// Who an access right is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    /// A member (and its subsystems) or a subsystem.
    Client(ClientId),
    /// A global group of this instance, by code.
    GlobalGroup(String),
    /// A local group of the service's client, by code.
    LocalGroup(String),
}

impl Subject {
    /// Reads `SUBSYSTEM:…`/`MEMBER:…`, `global:CODE` or `local:CODE`.
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let code = |c: &str| {
            let c = c.trim();
            if c.is_empty() || c.len() > 255 || c.chars().any(|ch| ch.is_control() || ch == '/') {
                Err(format!("{c:?} is not a group code"))
            } else {
                Ok(c.to_string())
            }
        };
        if let Some(g) = s.strip_prefix("global:") {
            return Ok(Self::GlobalGroup(code(g)?));
        }
        if let Some(g) = s.strip_prefix("local:") {
            return Ok(Self::LocalGroup(code(g)?));
        }
        s.parse::<ClientId>().map(Self::Client).map_err(|e| {
            format!("{e}; expected SUBSYSTEM:INSTANCE/CLASS/CODE/SUB, MEMBER:INSTANCE/CLASS/CODE, local:GROUP or global:GROUP")
        })
    }
}

impl std::fmt::Display for Subject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Client(c) => write!(f, "{c}"),
            Self::GlobalGroup(g) => write!(f, "global:{g}"),
            Self::LocalGroup(g) => write!(f, "local:{g}"),
        }
    }
}

/// A service description (one WSDL).
#[derive(Debug, Clone)]
pub struct Description {
    /// Its id.
    pub id: i64,
    /// The client whose services it describes.
    pub client: ClientId,
    /// Where the WSDL was read from.
    pub url: String,
    /// Disabled, with the notice clients get; `None` when enabled.
    pub disabled: Option<String>,
    /// When it was last read (Unix seconds).
    pub refreshed_at: i64,
}

/// A service of a description.
#[derive(Debug, Clone)]
pub struct Service {
    /// The description it comes from.
    pub description_id: i64,
    /// Its identifier.
    pub id: ServiceId,
    /// `xrd:title`.
    pub title: Option<String>,
    /// The provider URL requests are forwarded to.
    pub url: String,
    /// Timeout for the provider, seconds.
    pub timeout_secs: u64,
    /// Whether the provider's TLS certificate is verified (https URLs).
    pub ssl_verify: bool,
}

/// A local group of a client.
#[derive(Debug, Clone)]
pub struct LocalGroup {
    /// The client it belongs to.
    pub client: ClientId,
    /// Its code.
    pub code: String,
    /// What it is.
    pub description: String,
    /// Its members.
    pub members: Vec<ClientId>,
}

/// An access right.
#[derive(Debug, Clone)]
pub struct AccessRight {
    /// The providing client.
    pub client: ClientId,
    /// The service code.
    pub service_code: String,
    /// Who may call it.
    pub subject: Subject,
}

/// The configuration as of the last change.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Service descriptions.
    pub descriptions: Vec<Description>,
    /// Their services.
    pub services: Vec<Service>,
    /// Local groups.
    pub groups: Vec<LocalGroup>,
    /// Access rights.
    pub rights: Vec<AccessRight>,
}

impl Snapshot {
    /// The service `id` with its description.
    pub fn service(&self, id: &ServiceId) -> Option<(&Service, &Description)> {
        let s = self.services.iter().find(|s| s.id == *id)?;
        let d = self.descriptions.iter().find(|d| d.id == s.description_id)?;
        Some((s, d))
    }

    /// Whether `caller` may call `service`: a right to the caller, its member,
    /// a local group of the provider it is in, or a global group it is in
    /// (`in_global_group(code, caller)`).
    pub fn allows(
        &self,
        service: &ServiceId,
        caller: &ClientId,
        in_global_group: impl Fn(&str, &ClientId) -> bool,
    ) -> bool {
        let provider = service.provider();
        self.rights.iter().filter(|r| r.client == *provider && r.service_code == service.service_code()).any(|r| {
            match &r.subject {
                Subject::Client(c) => c == caller || (c.subsystem_code().is_none() && *c == caller.member_id()),
                Subject::GlobalGroup(g) => in_global_group(g, caller),
                Subject::LocalGroup(g) => {
                    self.groups.iter().any(|l| l.client == *provider && l.code == *g && l.members.contains(caller))
                }
            }
        })
    }
}

/// The server configuration store.
#[derive(Debug, Clone)]
pub struct ServerConfDb {
    pool: AnyPool,
    snapshot: Arc<RwLock<Arc<Snapshot>>>,
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

fn client(s: &str) -> Result<ClientId, ServerConfError> {
    s.parse().map_err(|e| ServerConfError::Conflict(format!("stored client {s:?}: {e}")))
}

type ServiceRow = (i64, String, String, String, Option<String>, String, i64, i64);

impl ServerConfDb {
    /// Opens the store on the server's database (migrated with the message log).
    pub async fn open(pool: AnyPool) -> Result<Self, ServerConfError> {
        let db = Self { pool, snapshot: Arc::default() };
        db.reload().await?;
        Ok(db)
    }

    /// The configuration now.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    async fn reload(&self) -> Result<(), ServerConfError> {
        let mut tx = self.pool.begin().await?;
        let descriptions: Vec<(i64, String, String, i64, Option<String>, i64)> = sqlx::query_as(
            "SELECT id, client, url, disabled, disabled_notice, refreshed_at FROM service_descriptions ORDER BY id",
        )
        .fetch_all(&mut *tx)
        .await?;
        let services: Vec<ServiceRow> = sqlx::query_as(
            "SELECT description_id, client, code, version, title, url, timeout_secs, ssl_verify FROM services \
             ORDER BY client, code, version",
        )
        .fetch_all(&mut *tx)
        .await?;
        let groups: Vec<(String, String, String)> =
            sqlx::query_as("SELECT client, code, description FROM local_groups ORDER BY client, code")
                .fetch_all(&mut *tx)
                .await?;
        let members: Vec<(String, String, String)> =
            sqlx::query_as("SELECT client, code, member FROM local_group_members ORDER BY member")
                .fetch_all(&mut *tx)
                .await?;
        let rights: Vec<(String, String, String)> = sqlx::query_as(
            "SELECT client, service_code, subject FROM access_rights ORDER BY client, service_code, subject",
        )
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        let mut s = Snapshot::default();
        for (id, c, url, disabled, notice, refreshed_at) in descriptions {
            let disabled = (disabled != 0).then(|| notice.unwrap_or_default());
            s.descriptions.push(Description { id, client: client(&c)?, url, disabled, refreshed_at });
        }
        for (description_id, c, code, version, title, url, timeout, verify) in services {
            let version = Some(version).filter(|v| !v.is_empty());
            let id = ServiceId::new(client(&c)?, &code, version.as_deref())
                .map_err(|e| ServerConfError::Conflict(format!("stored service {code}: {e}")))?;
            let timeout_secs = u64::try_from(timeout).unwrap_or(60);
            s.services.push(Service { description_id, id, title, url, timeout_secs, ssl_verify: verify != 0 });
        }
        for (c, code, description) in groups {
            let group_members = members
                .iter()
                .filter(|(mc, mcode, _)| *mc == c && *mcode == code)
                .map(|(_, _, m)| client(m))
                .collect::<Result<_, _>>()?;
            s.groups.push(LocalGroup { client: client(&c)?, code, description, members: group_members });
        }
        for (c, service_code, subject) in rights {
            let subject = Subject::parse(&subject).map_err(ServerConfError::Conflict)?;
            s.rights.push(AccessRight { client: client(&c)?, service_code, subject });
        }
        *self.snapshot.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(s);
        Ok(())
    }

    /// Adds a service description for `client` with the services `wsdl`
    /// declares; the provider URL of each is the WSDL's `soap:address` (or
    /// `default_url`). A service code the client already provides from
    /// another description is refused, as X-Road does.
    pub async fn add_description(
        &self,
        client: &ClientId,
        url: &str,
        (text, wsdl): (&[u8], &musubi_wsdl::Parsed),
        default_url: Option<&str>,
    ) -> Result<i64, ServerConfError> {
        let snapshot = self.snapshot();
        if snapshot.descriptions.iter().any(|d| d.client == *client && d.url == url) {
            return Err(ServerConfError::Conflict(format!("{client} already has a service description from {url}")));
        }
        for op in &wsdl.operations {
            if snapshot.services.iter().any(|s| s.id.provider() == client && s.id.service_code() == op.code) {
                return Err(ServerConfError::Conflict(format!(
                    "{client} already provides {} from another service description; delete that one first",
                    op.code
                )));
            }
        }
        let provider =
            wsdl.address.as_deref().or(default_url).ok_or_else(|| {
                ServerConfError::Conflict("the WSDL names no soap:address; give the provider URL".into())
            })?;
        let mut tx = self.pool.begin().await?;
        let (id,): (i64,) = sqlx::query_as(
            "INSERT INTO service_descriptions (client, url, refreshed_at, wsdl) VALUES ($1, $2, $3, $4) RETURNING id",
        )
        .bind(client.to_string())
        .bind(url)
        .bind(now())
        .bind(text)
        .fetch_one(&mut *tx)
        .await?;
        for op in &wsdl.operations {
            sqlx::query(
                "INSERT INTO services (description_id, client, code, version, title, url) VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(id)
            .bind(client.to_string())
            .bind(&op.code)
            .bind(op.version.clone().unwrap_or_default())
            .bind(op.title.clone())
            .bind(provider)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        self.reload().await?;
        Ok(id)
    }

    /// The WSDL a description was read from (for `getWsdl`).
    pub async fn wsdl_of(&self, description_id: i64) -> Result<Option<Vec<u8>>, ServerConfError> {
        let row: Option<(Option<Vec<u8>>,)> = sqlx::query_as("SELECT wsdl FROM service_descriptions WHERE id = $1")
            .bind(description_id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.and_then(|(w,)| w))
    }

    /// Reads a description's WSDL again (X-Road's refresh): services it no
    /// longer declares go, with their access rights; new ones come with the
    /// description's provider URL; the others keep their settings. Returns
    /// the service codes (added, removed).
    pub async fn refresh_description(
        &self,
        id: i64,
        (text, wsdl): (&[u8], &musubi_wsdl::Parsed),
    ) -> Result<(Vec<String>, Vec<String>), ServerConfError> {
        let snapshot = self.snapshot();
        let d = snapshot
            .descriptions
            .iter()
            .find(|d| d.id == id)
            .ok_or_else(|| ServerConfError::NotFound(format!("no service description {id}")))?;
        let current: Vec<&Service> = snapshot.services.iter().filter(|s| s.description_id == id).collect();
        for op in &wsdl.operations {
            let elsewhere = snapshot
                .services
                .iter()
                .any(|s| s.description_id != id && s.id.provider() == &d.client && s.id.service_code() == op.code);
            if elsewhere {
                return Err(ServerConfError::Conflict(format!(
                    "{} already provides {} from another service description",
                    d.client, op.code
                )));
            }
        }
        let url = current.first().map(|s| s.url.clone()).or_else(|| wsdl.address.clone()).unwrap_or_default();
        let keeps = |s: &Service| {
            wsdl.operations.iter().any(|o| o.code == s.id.service_code() && o.version.as_deref() == s.id.version())
        };
        let removed: Vec<String> =
            current.iter().filter(|s| !keeps(s)).map(|s| s.id.service_code().to_string()).collect();
        let added: Vec<&musubi_wsdl::ParsedOperation> = wsdl
            .operations
            .iter()
            .filter(|o| {
                !current.iter().any(|s| s.id.service_code() == o.code && s.id.version() == o.version.as_deref())
            })
            .collect();
        let mut tx = self.pool.begin().await?;
        for s in current.iter().filter(|s| !keeps(s)) {
            sqlx::query("DELETE FROM services WHERE client = $1 AND code = $2 AND version = $3")
                .bind(d.client.to_string())
                .bind(s.id.service_code())
                .bind(s.id.version().unwrap_or_default())
                .execute(&mut *tx)
                .await?;
            if !wsdl.operations.iter().any(|o| o.code == s.id.service_code()) {
                sqlx::query("DELETE FROM access_rights WHERE client = $1 AND service_code = $2")
                    .bind(d.client.to_string())
                    .bind(s.id.service_code())
                    .execute(&mut *tx)
                    .await?;
            }
        }
        for op in &added {
            sqlx::query(
                "INSERT INTO services (description_id, client, code, version, title, url) VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(id)
            .bind(d.client.to_string())
            .bind(&op.code)
            .bind(op.version.clone().unwrap_or_default())
            .bind(op.title.clone())
            .bind(&url)
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query("UPDATE service_descriptions SET wsdl = $2, refreshed_at = $3 WHERE id = $1")
            .bind(id)
            .bind(text)
            .bind(now())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        self.reload().await?;
        Ok((added.iter().map(|o| o.code.clone()).collect(), removed))
    }

    /// Changes a service's provider URL, timeout or TLS verification.
    pub async fn update_service(
        &self,
        id: &ServiceId,
        url: Option<&str>,
        timeout_secs: Option<u64>,
        ssl_verify: Option<bool>,
    ) -> Result<(), ServerConfError> {
        let snapshot = self.snapshot();
        let (s, _) = snapshot.service(id).ok_or_else(|| ServerConfError::NotFound(format!("no service {id}")))?;
        let timeout = i64::try_from(timeout_secs.unwrap_or(s.timeout_secs)).unwrap_or(i64::MAX);
        sqlx::query(
            "UPDATE services SET url = $4, timeout_secs = $5, ssl_verify = $6 WHERE client = $1 AND code = $2 AND version = $3",
        )
        .bind(id.provider().to_string())
        .bind(id.service_code())
        .bind(id.version().unwrap_or_default())
        .bind(url.unwrap_or(&s.url))
        .bind(timeout)
        .bind(i64::from(ssl_verify.unwrap_or(s.ssl_verify)))
        .execute(&self.pool)
        .await?;
        self.reload().await
    }

    /// Enables a description (`None`) or disables it with a notice for clients.
    pub async fn set_disabled(&self, id: i64, notice: Option<&str>) -> Result<(), ServerConfError> {
        let done = sqlx::query("UPDATE service_descriptions SET disabled = $2, disabled_notice = $3 WHERE id = $1")
            .bind(id)
            .bind(i64::from(notice.is_some()))
            .bind(notice)
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 {
            return Err(ServerConfError::NotFound(format!("no service description {id}")));
        }
        self.reload().await
    }

    /// Deletes a description with its services and their access rights.
    pub async fn delete_description(&self, id: i64) -> Result<(), ServerConfError> {
        let snapshot = self.snapshot();
        let d = snapshot
            .descriptions
            .iter()
            .find(|d| d.id == id)
            .ok_or_else(|| ServerConfError::NotFound(format!("no service description {id}")))?;
        let mut tx = self.pool.begin().await?;
        for s in snapshot.services.iter().filter(|s| s.description_id == id) {
            sqlx::query("DELETE FROM access_rights WHERE client = $1 AND service_code = $2")
                .bind(d.client.to_string())
                .bind(s.id.service_code())
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query("DELETE FROM services WHERE description_id = $1").bind(id).execute(&mut *tx).await?;
        sqlx::query("DELETE FROM service_descriptions WHERE id = $1").bind(id).execute(&mut *tx).await?;
        tx.commit().await?;
        self.reload().await
    }

    /// Grants `subject` access to `service` (its client's service code).
    pub async fn grant(&self, service: &ServiceId, subject: &Subject) -> Result<(), ServerConfError> {
        let snapshot = self.snapshot();
        let client = service.provider();
        if !snapshot.services.iter().any(|s| s.id.provider() == client && s.id.service_code() == service.service_code())
        {
            return Err(ServerConfError::NotFound(format!("{client} has no service {}", service.service_code())));
        }
        if let Subject::LocalGroup(g) = subject
            && !snapshot.groups.iter().any(|l| l.client == *client && l.code == *g)
        {
            return Err(ServerConfError::NotFound(format!("{client} has no local group {g}")));
        }
        sqlx::query(
            "INSERT INTO access_rights (client, service_code, subject, granted_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT DO NOTHING",
        )
        .bind(client.to_string())
        .bind(service.service_code())
        .bind(subject.to_string())
        .bind(now())
        .execute(&self.pool)
        .await?;
        self.reload().await
    }

    /// Revokes an access right.
    pub async fn revoke(&self, service: &ServiceId, subject: &Subject) -> Result<(), ServerConfError> {
        let done = sqlx::query("DELETE FROM access_rights WHERE client = $1 AND service_code = $2 AND subject = $3")
            .bind(service.provider().to_string())
            .bind(service.service_code())
            .bind(subject.to_string())
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 {
            return Err(ServerConfError::NotFound(format!("{subject} has no access right to {service}")));
        }
        self.reload().await
    }

    /// Adds a local group to `client`.
    pub async fn add_group(&self, client: &ClientId, code: &str, description: &str) -> Result<(), ServerConfError> {
        if self.snapshot().groups.iter().any(|g| g.client == *client && g.code == code) {
            return Err(ServerConfError::Conflict(format!("{client} already has a local group {code}")));
        }
        sqlx::query("INSERT INTO local_groups (client, code, description) VALUES ($1, $2, $3)")
            .bind(client.to_string())
            .bind(code)
            .bind(description)
            .execute(&self.pool)
            .await?;
        self.reload().await
    }

    /// Adds `member` to a local group of `client`.
    pub async fn add_group_member(
        &self,
        client: &ClientId,
        code: &str,
        member: &ClientId,
    ) -> Result<(), ServerConfError> {
        if !self.snapshot().groups.iter().any(|g| g.client == *client && g.code == code) {
            return Err(ServerConfError::NotFound(format!("{client} has no local group {code}")));
        }
        sqlx::query(
            "INSERT INTO local_group_members (client, code, member) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        )
        .bind(client.to_string())
        .bind(code)
        .bind(member.to_string())
        .execute(&self.pool)
        .await?;
        self.reload().await
    }

    /// Deletes a local group of `client` with its members and the access
    /// rights granted to it, in one transaction.
    pub async fn delete_group(&self, client: &ClientId, code: &str) -> Result<(), ServerConfError> {
        if !self.snapshot().groups.iter().any(|g| g.client == *client && g.code == code) {
            return Err(ServerConfError::NotFound(format!("{client} has no local group {code}")));
        }
        let mut tx = self.pool.begin().await?;
        for sql in [
            "DELETE FROM local_group_members WHERE client = $1 AND code = $2",
            "DELETE FROM local_groups WHERE client = $1 AND code = $2",
        ] {
            sqlx::query(sql).bind(client.to_string()).bind(code).execute(&mut *tx).await?;
        }
        sqlx::query("DELETE FROM access_rights WHERE client = $1 AND subject = $2")
            .bind(client.to_string())
            .bind(Subject::LocalGroup(code.to_string()).to_string())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        self.reload().await
    }

    /// Removes `member` from a local group of `client`.
    pub async fn remove_group_member(
        &self,
        client: &ClientId,
        code: &str,
        member: &ClientId,
    ) -> Result<(), ServerConfError> {
        let done = sqlx::query("DELETE FROM local_group_members WHERE client = $1 AND code = $2 AND member = $3")
            .bind(client.to_string())
            .bind(code)
            .bind(member.to_string())
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 {
            return Err(ServerConfError::NotFound(format!("{member} is not in local group {code} of {client}")));
        }
        self.reload().await
    }
}
