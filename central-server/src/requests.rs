//! Management requests in the registry: received (already verified by
//! [`crate::management`]), pending until a registration officer approves or
//! rejects them, then applied in one transaction, so the next global
//! configuration carries the change or nothing of it.
//!
//! As in X-Road: registrations (`authCertReg`, `clientReg`) wait for
//! approval unless auto-approval is on for members that already exist
//! (settings `autoApproveAuthCertRegRequests`, `autoApproveClientRegRequests`);
//! deletions and address changes are applied at once.

use musubi_protocol::management::Request;
use musubi_protocol::{ClientId, SecurityServerId};
use serde::Serialize;

use crate::registry::{Registry, RegistryError, id_text, parse_client};

/// Where a request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Waiting for a registration officer.
    Pending,
    /// Applied to the registry.
    Approved,
    /// Refused.
    Rejected,
}

impl Status {
    fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Approved => "approved",
            Self::Rejected => "rejected",
        }
    }
    fn parse(s: &str) -> Self {
        match s {
            "approved" => Self::Approved,
            "rejected" => Self::Rejected,
            _ => Self::Pending,
        }
    }
}

/// A request as the registry keeps it.
#[derive(Debug, Clone)]
pub struct Stored {
    /// Its id (X-Road's `requestId`).
    pub id: i64,
    /// What was asked.
    pub request: Request,
    /// Where it stands.
    pub status: Status,
    /// When it arrived (Unix seconds).
    pub received_at: i64,
    /// Who decided (an officer's name, or `automatic`).
    pub decided_by: Option<String>,
    /// Why it was rejected.
    pub reason: Option<String>,
}

/// X-Road's form of an authentication-certificate hash in shared parameters:
/// base64 of the SHA-256 of the DER.
pub fn auth_cert_hash(cert_der: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(ring::digest::digest(&ring::digest::SHA256, cert_der))
}

/// A `requests` row, in the column order of [`COLUMNS`].
type Row = (
    i64,
    String,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<Vec<u8>>,
    String,
    i64,
    Option<String>,
    Option<String>,
);

const COLUMNS: &str = "id, kind, owner_class, owner_code, server_code, client, address, auth_cert, status, received_at, \
                       decided_by, reason";

impl Registry {
    /// Whether `member` is registered.
    pub async fn member_exists(&self, member: &ClientId) -> Result<bool, RegistryError> {
        let row: Option<(String,)> = sqlx::query_as("SELECT name FROM members WHERE class = $1 AND code = $2")
            .bind(member.member_class())
            .bind(member.member_code())
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.is_some())
    }

    /// The server an authentication certificate is registered to.
    pub async fn server_of_auth_cert(&self, cert_der: &[u8]) -> Result<Option<SecurityServerId>, RegistryError> {
        let row: Option<(String, String, String)> = sqlx::query_as(
            "SELECT owner_class, owner_code, server_code FROM server_auth_certs WHERE cert_hash = $1 OR cert_hash = $2",
        )
        .bind(auth_cert_hash(cert_der))
        .bind(musubi_pki::cert_hash(cert_der))
        .fetch_optional(&self.pool)
        .await?;
        row.map(|(class, code, server)| self.server_id(&class, &code, &server)).transpose()
    }

    fn server_id(&self, class: &str, code: &str, server: &str) -> Result<SecurityServerId, RegistryError> {
        let owner =
            ClientId::member(self.instance(), class, code).map_err(|e| RegistryError::Unknown(e.to_string()))?;
        SecurityServerId::new(owner, server).map_err(|e| RegistryError::Unknown(e.to_string()))
    }

    /// Whether the server hosts `client`.
    pub async fn server_hosts(&self, server: &SecurityServerId, client: &ClientId) -> Result<bool, RegistryError> {
        let o = server.owner();
        let row: Option<(String,)> = sqlx::query_as(
            "SELECT client FROM server_clients WHERE owner_class = $1 AND owner_code = $2 AND server_code = $3 AND client = $4",
        )
        .bind(o.member_class())
        .bind(o.member_code())
        .bind(server.server_code())
        .bind(id_text(client))
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.is_some())
    }

    /// Whether the server is registered.
    pub async fn server_exists(&self, server: &SecurityServerId) -> Result<bool, RegistryError> {
        let o = server.owner();
        let row: Option<(String,)> = sqlx::query_as(
            "SELECT address FROM servers WHERE owner_class = $1 AND owner_code = $2 AND server_code = $3",
        )
        .bind(o.member_class())
        .bind(o.member_code())
        .bind(server.server_code())
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.is_some())
    }

    /// Records a verified request; applies it at once when it needs no
    /// approval or auto-approval covers it. Returns its id.
    pub async fn submit(&self, request: &Request) -> Result<(i64, Status), RegistryError> {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let s = request.server();
        let (client, address, cert) = match request {
            Request::AuthCertReg { address, auth_cert, .. } => (None, Some(address.clone()), Some(auth_cert.clone())),
            Request::AuthCertDeletion { auth_cert, .. } => (None, None, Some(auth_cert.clone())),
            Request::ClientReg { client, .. } | Request::ClientDeletion { client, .. } => {
                (Some(id_text(client)), None, None)
            }
            Request::AddressChange { address, .. } => (None, Some(address.clone()), None),
        };
        let (id,): (i64,) = sqlx::query_as(
            "INSERT INTO requests (kind, owner_class, owner_code, server_code, client, address, auth_cert, status, received_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending', $8) RETURNING id",
        )
        .bind(request.service_code())
        .bind(s.owner().member_class())
        .bind(s.owner().member_code())
        .bind(s.server_code())
        .bind(client)
        .bind(address)
        .bind(cert)
        .bind(now)
        .fetch_one(&self.pool)
        .await?;
        let setting = |key: &'static str| async move {
            let row: Option<(String,)> = sqlx::query_as("SELECT value FROM settings WHERE key = $1")
                .bind(key)
                .fetch_optional(&self.pool)
                .await?;
            Ok::<_, RegistryError>(row.is_some_and(|(v,)| v == "true"))
        };
        let automatic = match request {
            Request::AuthCertReg { .. } => setting("autoApproveAuthCertRegRequests").await?,
            Request::ClientReg { .. } => setting("autoApproveClientRegRequests").await?,
            _ => true,
        };
        if automatic {
            self.approve(id, "automatic").await?;
            return Ok((id, Status::Approved));
        }
        Ok((id, Status::Pending))
    }

    /// Requests, newest first (only those with `status` when given).
    pub async fn requests(&self, status: Option<Status>) -> Result<Vec<Stored>, RegistryError> {
        let rows: Vec<Row> =
            sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM requests ORDER BY id DESC")))
                .fetch_all(&self.pool)
                .await?;
        let mut out = Vec::new();
        for row in rows {
            let stored = self.stored(row)?;
            if status.is_none_or(|s| s == stored.status) {
                out.push(stored);
            }
        }
        Ok(out)
    }

    fn stored(&self, row: Row) -> Result<Stored, RegistryError> {
        let (id, kind, class, code, server, client, address, cert, status, received_at, decided_by, reason) = row;
        let server = self.server_id(&class, &code, &server)?;
        let missing = |what: &str| RegistryError::Unknown(format!("request {id} has no {what}"));
        let client = || -> Result<ClientId, RegistryError> {
            parse_client(self.instance(), client.as_deref().ok_or_else(|| missing("client"))?)
        };
        let request = match kind.as_str() {
            "authCertReg" => Request::AuthCertReg {
                server,
                address: address.clone().ok_or_else(|| missing("address"))?,
                auth_cert: cert.clone().ok_or_else(|| missing("certificate"))?,
            },
            "authCertDeletion" => {
                Request::AuthCertDeletion { server, auth_cert: cert.clone().ok_or_else(|| missing("certificate"))? }
            }
            "clientReg" => Request::ClientReg { server, client: client()? },
            "clientDeletion" => Request::ClientDeletion { server, client: client()? },
            "addressChange" => Request::AddressChange { server, address: address.ok_or_else(|| missing("address"))? },
            other => return Err(RegistryError::Unknown(format!("request {id} is of unknown kind {other}"))),
        };
        Ok(Stored { id, request, status: Status::parse(&status), received_at, decided_by, reason })
    }

    async fn pending(&self, id: i64) -> Result<Stored, RegistryError> {
        let row: Option<Row> =
            sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM requests WHERE id = $1")))
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
        let stored = self.stored(row.ok_or_else(|| RegistryError::Unknown(format!("no request {id}")))?)?;
        if stored.status != Status::Pending {
            return Err(RegistryError::Unknown(format!(
                "request {id} is already {}; only pending requests can be decided",
                stored.status.as_str()
            )));
        }
        Ok(stored)
    }

    /// Approves a pending request: applies it and marks it approved, in one transaction.
    pub async fn approve(&self, id: i64, officer: &str) -> Result<(), RegistryError> {
        let stored = self.pending(id).await?;
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let mut tx = self.pool.begin().await?;
        let s = stored.request.server();
        const ADD_CLIENT: &str = "INSERT INTO server_clients (owner_class, owner_code, server_code, client) \
                                  VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING";
        match &stored.request {
            Request::AuthCertReg { address, auth_cert, .. } => {
                let upsert = "INSERT INTO servers (owner_class, owner_code, server_code, address) VALUES ($1, $2, $3, $4) \
                              ON CONFLICT (owner_class, owner_code, server_code) DO UPDATE SET address = excluded.address";
                for_server(&mut tx, upsert, s, address).await?;
                let add_cert = "INSERT INTO server_auth_certs (owner_class, owner_code, server_code, cert_hash) \
                                VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING";
                for_server(&mut tx, add_cert, s, &auth_cert_hash(auth_cert)).await?;
                // The owner is a client of its own server, as in X-Road.
                for_server(&mut tx, ADD_CLIENT, s, &id_text(s.owner())).await?;
            }
            Request::AuthCertDeletion { auth_cert, .. } => {
                let delete = "DELETE FROM server_auth_certs WHERE owner_class = $1 AND owner_code = $2 \
                              AND server_code = $3 AND cert_hash = $4";
                // Either form of the hash: X-Road's base64, or hex from a trust file.
                for_server(&mut tx, delete, s, &auth_cert_hash(auth_cert)).await?;
                for_server(&mut tx, delete, s, &musubi_pki::cert_hash(auth_cert)).await?;
            }
            Request::ClientReg { client, .. } => {
                if let Some(sub) = client.subsystem_code() {
                    sqlx::query(
                        "INSERT INTO subsystems (class, code, subsystem) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                    )
                    .bind(client.member_class())
                    .bind(client.member_code())
                    .bind(sub)
                    .execute(&mut *tx)
                    .await?;
                }
                for_server(&mut tx, ADD_CLIENT, s, &id_text(client)).await?;
            }
            Request::ClientDeletion { client, .. } => {
                let delete = "DELETE FROM server_clients WHERE owner_class = $1 AND owner_code = $2 \
                              AND server_code = $3 AND client = $4";
                for_server(&mut tx, delete, s, &id_text(client)).await?;
            }
            Request::AddressChange { address, .. } => {
                let update =
                    "UPDATE servers SET address = $4 WHERE owner_class = $1 AND owner_code = $2 AND server_code = $3";
                for_server(&mut tx, update, s, address).await?;
            }
        }
        let done = sqlx::query(
            "UPDATE requests SET status = 'approved', decided_at = $2, decided_by = $3 WHERE id = $1 AND status = 'pending'",
        )
        .bind(id)
        .bind(now)
        .bind(officer)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() != 1 {
            return Err(RegistryError::Unknown(format!("request {id} was decided meanwhile")));
        }
        tx.commit().await?;
        Ok(())
    }

    /// Rejects a pending request.
    pub async fn reject(&self, id: i64, officer: &str, reason: &str) -> Result<(), RegistryError> {
        self.pending(id).await?;
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let done = sqlx::query(
            "UPDATE requests SET status = 'rejected', decided_at = $2, decided_by = $3, reason = $4 \
             WHERE id = $1 AND status = 'pending'",
        )
        .bind(id)
        .bind(now)
        .bind(officer)
        .bind(reason)
        .execute(&self.pool)
        .await?;
        if done.rows_affected() != 1 {
            return Err(RegistryError::Unknown(format!("request {id} was decided meanwhile")));
        }
        Ok(())
    }
}

/// Runs `sql` with the server's key as `$1`–`$3` and `value` as `$4`.
async fn for_server(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    sql: &'static str,
    server: &SecurityServerId,
    value: &str,
) -> Result<(), sqlx::Error> {
    let o = server.owner();
    sqlx::query(sql)
        .bind(o.member_class())
        .bind(o.member_code())
        .bind(server.server_code())
        .bind(value)
        .execute(&mut **tx)
        .await?;
    Ok(())
}
