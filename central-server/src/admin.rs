//! The central server's admin API on `admin_listen` (port 4000, HTTPS,
//! `Authorization: X-Road-ApiKey token=…`; see `musubi-admin`), for the
//! registration officer.
//!
//! Endpoints (JSON, under `/api/v1`):
//! - `GET  /requests[?status=pending|approved|rejected]`: management requests, newest first
//! - `POST /requests/{id}/approve`: applies a pending request
//! - `POST /requests/{id}/reject` `{reason}`
//! - `POST /members` `{id, name}`: adds (or renames) a member
//! - `POST /global-groups/{code}/members` `{member, description?}`; `DELETE /global-groups/{code}/members/{member}`
//! - `PUT /servers/{id}/maintenance` `{message}`; `DELETE /servers/{id}/maintenance`

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::routing::{delete, get, post};
use musubi_admin::ApiError;
use musubi_protocol::ClientId;
use musubi_protocol::management::Request;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::registry::{Registry, RegistryError};
use crate::requests::Status;

type Answer = Result<Json<Value>, ApiError>;

/// The roles each endpoint needs; reading needs any key.
pub(crate) fn policy(method: &axum::http::Method, path: &str) -> Option<&'static [musubi_admin::Role]> {
    use musubi_admin::Role::*;
    if method == axum::http::Method::GET {
        return None;
    }
    Some(if path.starts_with("/api/v1/servers/") { &[SystemAdministrator] } else { &[RegistrationOfficer] })
}

fn registry_error(e: RegistryError) -> ApiError {
    match e {
        RegistryError::Unknown(m) => ApiError::conflict(m),
        other => ApiError::internal(other),
    }
}

/// The API's routes (the caller adds the API-key check).
pub(crate) fn router(registry: Registry) -> axum::Router {
    axum::Router::new()
        .route("/api/v1/requests", get(requests))
        .route("/api/v1/requests/{id}/approve", post(approve))
        .route("/api/v1/requests/{id}/reject", post(reject))
        .route("/api/v1/members", post(add_member))
        .route("/api/v1/global-groups/{code}/members", post(add_group_member))
        .route("/api/v1/global-groups/{code}/members/{member}", delete(remove_group_member))
        .route("/api/v1/servers/{id}/maintenance", axum::routing::put(maintenance_on).delete(maintenance_off))
        .with_state(registry)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Filter {
    #[serde(default)]
    status: Option<String>,
}

fn detail(r: &Request) -> String {
    match r {
        Request::AuthCertReg { address, auth_cert, .. } => {
            format!("address {address}, certificate {}", musubi_pki::subject_of(auth_cert).unwrap_or_default())
        }
        Request::AuthCertDeletion { auth_cert, .. } => musubi_pki::subject_of(auth_cert).unwrap_or_default(),
        Request::ClientReg { client, .. } | Request::ClientDeletion { client, .. } => client.to_string(),
        Request::AddressChange { address, .. } => address.clone(),
    }
}

async fn requests(State(reg): State<Registry>, Query(f): Query<Filter>) -> Answer {
    let status = match f.status.as_deref() {
        None => None,
        Some("pending") => Some(Status::Pending),
        Some("approved") => Some(Status::Approved),
        Some("rejected") => Some(Status::Rejected),
        Some(other) => {
            return Err(ApiError::field("status", format!("{other:?}: expected pending, approved or rejected")));
        }
    };
    let list = reg.requests(status).await.map_err(registry_error)?;
    Ok(Json(Value::Array(
        list.iter()
            .map(|r| {
                json!({
                    "id": r.id, "kind": r.request.service_code(), "server": r.request.server().to_string(),
                    "detail": detail(&r.request), "status": r.status, "received_at": r.received_at,
                    "decided_by": r.decided_by, "reason": r.reason,
                })
            })
            .collect(),
    )))
}

async fn approve(
    State(reg): State<Registry>,
    axum::Extension(caller): axum::Extension<musubi_admin::Caller>,
    Path(id): Path<i64>,
) -> Answer {
    reg.approve(id, &caller.name).await.map_err(registry_error)?;
    tracing::info!(id, "request approved");
    Ok(Json(json!({ "id": id, "status": "approved" })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Reject {
    reason: String,
}

async fn reject(
    State(reg): State<Registry>,
    axum::Extension(caller): axum::Extension<musubi_admin::Caller>,
    Path(id): Path<i64>,
    Json(r): Json<Reject>,
) -> Answer {
    if r.reason.trim().is_empty() || r.reason.len() > 1000 {
        return Err(ApiError::field("reason", "say why, in at most 1000 characters"));
    }
    reg.reject(id, &caller.name, r.reason.trim()).await.map_err(registry_error)?;
    tracing::info!(id, "request rejected");
    Ok(Json(json!({ "id": id, "status": "rejected" })))
}

fn client(field: &'static str, s: &str, instance: &str) -> Result<ClientId, ApiError> {
    let id: ClientId = s.parse().map_err(|e| ApiError::field(field, format!("{e}")))?;
    if id.instance() != instance {
        return Err(ApiError::field(field, format!("not of instance {instance}")));
    }
    Ok(id)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Member {
    id: String,
    name: String,
}

async fn add_member(State(reg): State<Registry>, Json(m): Json<Member>) -> Answer {
    let id = client("id", &m.id, reg.instance())?;
    if id.subsystem_code().is_some() {
        return Err(ApiError::field("id", "a member (MEMBER:INSTANCE/CLASS/CODE), not a subsystem"));
    }
    if m.name.trim().is_empty() || m.name.len() > 255 {
        return Err(ApiError::field("name", "a name of 1 to 255 characters"));
    }
    reg.add_member(&id, m.name.trim()).await.map_err(registry_error)?;
    Ok(Json(json!({ "id": id.to_string() })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GroupMember {
    member: String,
    #[serde(default)]
    description: Option<String>,
}

async fn add_group_member(State(reg): State<Registry>, Path(code): Path<String>, Json(g): Json<GroupMember>) -> Answer {
    let member = client("member", &g.member, reg.instance())?;
    let description = g.description.unwrap_or_else(|| code.clone());
    reg.add_group_member(&code, &description, &member).await.map_err(registry_error)?;
    Ok(Json(json!({ "group": code, "member": member.to_string() })))
}

async fn remove_group_member(State(reg): State<Registry>, Path((code, member)): Path<(String, String)>) -> Answer {
    let member = client("member", &member, reg.instance())?;
    reg.remove_group_member(&code, &member).await.map_err(registry_error)?;
    Ok(Json(json!({ "group": code, "member": member.to_string() })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Maintenance {
    message: String,
}

fn server(id: &str, instance: &str) -> Result<musubi_protocol::SecurityServerId, ApiError> {
    let id: musubi_protocol::SecurityServerId =
        id.parse().map_err(|e| ApiError::field("id", format!("{e}; expected SERVER:INSTANCE/CLASS/CODE/SERVER")))?;
    if id.owner().instance() != instance {
        return Err(ApiError::field("id", format!("not of instance {instance}")));
    }
    Ok(id)
}

async fn maintenance_on(State(reg): State<Registry>, Path(id): Path<String>, Json(m): Json<Maintenance>) -> Answer {
    let id = server(&id, reg.instance())?;
    if m.message.len() > 1000 {
        return Err(ApiError::field("message", "at most 1000 characters"));
    }
    reg.set_maintenance(&id, Some(m.message.trim())).await.map_err(registry_error)?;
    Ok(Json(json!({ "server": id.to_string(), "maintenance": true })))
}

async fn maintenance_off(State(reg): State<Registry>, Path(id): Path<String>) -> Answer {
    let id = server(&id, reg.instance())?;
    reg.set_maintenance(&id, None).await.map_err(registry_error)?;
    Ok(Json(json!({ "server": id.to_string(), "maintenance": false })))
}
