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
//! - `GET /member-classes`; `POST /member-classes` `{code, description}`
//! - `GET /members`: members with their subsystems; `POST /members/{id}/subsystems` `{code}`
//! - `GET /servers`: security servers, their addresses, authentication certificates, clients, maintenance
//! - `GET /global-groups`: groups and their members
//! - `GET /certification-authorities`; `POST` `{name, certificate, ocsp_url?}` (an approved CA)
//! - `GET /timestamping-authorities`; `POST` `{name, url, certificate}` (an approved TSA)
//! - `GET /global-configuration`: instance, when generated, expiry, directory URL, signing keys;
//!   `POST /global-configuration/generate`: a new generation now
//! - `GET /anchor`: the configuration anchor (XML) new security servers are initialised with
//!
//! Trust (CAs, TSAs, generation) is the security officer's; servers' maintenance
//! the system administrator's; the rest the registration officer's.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::routing::{delete, get, post};
use musubi_admin::ApiError;
use musubi_protocol::ClientId;
use musubi_protocol::management::Request;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::Central;
use crate::registry::{Registry, RegistryError};
use crate::requests::Status;

type Answer = Result<Json<Value>, ApiError>;

/// The roles each endpoint needs; reading needs any key.
pub(crate) fn policy(method: &axum::http::Method, path: &str) -> Option<&'static [musubi_admin::Role]> {
    use musubi_admin::Role::*;
    if method == axum::http::Method::GET {
        return None;
    }
    let p = path.trim_start_matches("/api/v1/");
    Some(if p.starts_with("servers/") {
        &[SystemAdministrator]
    } else if p.starts_with("certification-authorities")
        || p.starts_with("timestamping-authorities")
        || p.starts_with("global-configuration")
    {
        &[SecurityOfficer]
    } else {
        &[RegistrationOfficer]
    })
}

impl axum::extract::FromRef<Central> for Registry {
    fn from_ref(c: &Central) -> Registry {
        c.registry.clone()
    }
}

fn central_error(e: crate::CentralError) -> ApiError {
    ApiError::internal(e)
}

fn registry_error(e: RegistryError) -> ApiError {
    match e {
        RegistryError::Unknown(m) => ApiError::conflict(m),
        other => ApiError::internal(other),
    }
}

/// The API's routes (the caller adds the API-key check).
pub(crate) fn router(central: Central) -> axum::Router {
    axum::Router::new()
        .route("/api/v1/requests", get(requests))
        .route("/api/v1/requests/{id}/approve", post(approve))
        .route("/api/v1/requests/{id}/reject", post(reject))
        .route("/api/v1/member-classes", get(member_classes).post(add_member_class))
        .route("/api/v1/members", get(members).post(add_member))
        .route("/api/v1/members/{id}/subsystems", post(add_subsystem))
        .route("/api/v1/servers", get(servers))
        .route("/api/v1/global-groups", get(groups))
        .route("/api/v1/global-groups/{code}/members", post(add_group_member))
        .route("/api/v1/global-groups/{code}/members/{member}", delete(remove_group_member))
        .route("/api/v1/servers/{id}/maintenance", axum::routing::put(maintenance_on).delete(maintenance_off))
        .route("/api/v1/certification-authorities", get(cas).post(add_ca))
        .route("/api/v1/timestamping-authorities", get(tsas).post(add_tsa))
        .route("/api/v1/global-configuration", get(global_configuration))
        .route("/api/v1/global-configuration/generate", post(generate))
        .route("/api/v1/anchor", get(anchor))
        .with_state(central)
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

/// The registry as the next generation would publish it.
async fn snapshot(reg: &Registry) -> Result<musubi_protocol::sharedparams::SharedParams, ApiError> {
    reg.snapshot("").await.map(|(p, _)| p).map_err(registry_error)
}

async fn member_classes(State(reg): State<Registry>) -> Answer {
    let p = snapshot(&reg).await?;
    let list: Vec<Value> =
        p.directory.member_classes.iter().map(|(c, d)| json!({ "code": c, "description": d })).collect();
    Ok(Json(Value::Array(list)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MemberClass {
    code: String,
    description: String,
}

/// A code as X-Road's identifiers take it: 1 to 255 characters, none of
/// them a separator or control character.
fn code(field: &'static str, s: &str) -> Result<String, ApiError> {
    let s = s.trim();
    if s.is_empty() || s.len() > 255 || s.chars().any(|c| c.is_control() || "/:;%\\".contains(c)) {
        return Err(ApiError::field(field, "1 to 255 characters, without / : ; % \\ or control characters"));
    }
    Ok(s.to_string())
}

fn text(field: &'static str, s: &str) -> Result<String, ApiError> {
    let s = s.trim();
    if s.is_empty() || s.len() > 255 {
        return Err(ApiError::field(field, "1 to 255 characters"));
    }
    Ok(s.to_string())
}

async fn add_member_class(State(reg): State<Registry>, Json(m): Json<MemberClass>) -> Answer {
    let (code, description) = (code("code", &m.code)?, text("description", &m.description)?);
    reg.add_member_class(&code, &description).await.map_err(registry_error)?;
    Ok(Json(json!({ "code": code, "description": description })))
}

async fn members(State(reg): State<Registry>) -> Answer {
    let p = snapshot(&reg).await?;
    let list: Vec<Value> = p
        .directory
        .members
        .iter()
        .map(|m| {
            let subsystems: Vec<String> = m
                .subsystems
                .iter()
                .filter_map(|s| ClientId::subsystem(m.id.instance(), m.id.member_class(), m.id.member_code(), s).ok())
                .map(|id| id.to_string())
                .collect();
            json!({ "id": m.id.to_string(), "name": m.name, "subsystems": subsystems })
        })
        .collect();
    Ok(Json(Value::Array(list)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Subsystem {
    code: String,
}

async fn add_subsystem(State(reg): State<Registry>, Path(id): Path<String>, Json(s): Json<Subsystem>) -> Answer {
    let member = client("id", &id, reg.instance())?;
    let sub = code("code", &s.code)?;
    let id = ClientId::subsystem(member.instance(), member.member_class(), member.member_code(), &sub)
        .map_err(|e| ApiError::field("code", e.to_string()))?;
    reg.add_subsystem(&id).await.map_err(registry_error)?;
    Ok(Json(json!({ "id": id.to_string() })))
}

async fn servers(State(reg): State<Registry>) -> Answer {
    let p = snapshot(&reg).await?;
    let list: Vec<Value> = p
        .directory
        .servers
        .iter()
        .map(|s| {
            let id = musubi_protocol::SecurityServerId::new(s.owner.clone(), &s.server_code)
                .map_or_else(|_| s.server_code.clone(), |id| id.to_string());
            json!({
                "id": id, "owner": s.owner.to_string(), "address": s.address,
                "auth_cert_hashes": s.auth_cert_hashes,
                "clients": s.clients.iter().map(ToString::to_string).collect::<Vec<_>>(),
                "maintenance": s.maintenance,
            })
        })
        .collect();
    Ok(Json(Value::Array(list)))
}

async fn groups(State(reg): State<Registry>) -> Answer {
    let p = snapshot(&reg).await?;
    let list: Vec<Value> = p
        .directory
        .groups
        .iter()
        .map(|g| {
            json!({
                "code": g.code, "description": g.description,
                "members": g.members.iter().map(ToString::to_string).collect::<Vec<_>>(),
                // X-Road keeps this one itself, from the registered servers.
                "automatic": g.code == "security-server-owners",
            })
        })
        .collect();
    Ok(Json(Value::Array(list)))
}

fn described(der: &[u8]) -> Value {
    let not_after =
        x509_parser::parse_x509_certificate(der).ok().map(|(_, c)| c.validity().not_after.timestamp()).and_then(|t| {
            time::OffsetDateTime::from_unix_timestamp(t)
                .ok()
                .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        });
    json!({ "subject": musubi_pki::subject_of(der), "not_after": not_after, "hash": musubi_pki::cert_hash(der) })
}

async fn cas(State(reg): State<Registry>) -> Answer {
    let p = snapshot(&reg).await?;
    let list: Vec<Value> = p
        .cas
        .iter()
        .map(|ca| {
            let mut v = described(&ca.top.cert);
            v["name"] = json!(ca.name);
            v["authentication_only"] = json!(ca.authentication_only);
            v["ocsp"] = json!(ca.top.ocsp.iter().map(|o| o.url.clone()).collect::<Vec<_>>());
            v
        })
        .collect();
    Ok(Json(Value::Array(list)))
}

fn certificate(field: &'static str, pem: &str) -> Result<Vec<u8>, ApiError> {
    let der = musubi_pki::pem_decode("CERTIFICATE", pem)
        .ok_or_else(|| ApiError::field(field, "expected a PEM certificate (-----BEGIN CERTIFICATE-----)"))?;
    x509_parser::parse_x509_certificate(&der).map_err(|e| ApiError::field(field, format!("not a certificate: {e}")))?;
    Ok(der)
}

fn http_url(field: &'static str, url: &str) -> Result<String, ApiError> {
    let url = url.trim();
    let ok = (url.starts_with("http://") || url.starts_with("https://"))
        && url.len() <= 1000
        && url.parse::<hyper::Uri>().is_ok_and(|u| u.host().is_some());
    if !ok {
        return Err(ApiError::field(field, "an http:// or https:// URL"));
    }
    Ok(url.to_string())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewCa {
    name: String,
    certificate: String,
    #[serde(default)]
    ocsp_url: Option<String>,
}

async fn add_ca(State(reg): State<Registry>, Json(c): Json<NewCa>) -> Answer {
    let name = text("name", &c.name)?;
    let der = certificate("certificate", &c.certificate)?;
    let ocsp = match c.ocsp_url.as_deref().map(str::trim).filter(|u| !u.is_empty()) {
        Some(u) => vec![(http_url("ocsp_url", u)?, None)],
        None => vec![],
    };
    reg.add_ca(&name, &der, &ocsp, None).await.map_err(registry_error)?;
    let mut v = described(&der);
    v["name"] = json!(name);
    Ok(Json(v))
}

async fn tsas(State(reg): State<Registry>) -> Answer {
    let p = snapshot(&reg).await?;
    let list: Vec<Value> = p
        .tsas
        .iter()
        .map(|t| {
            let mut v = described(&t.cert);
            v["name"] = json!(t.name);
            v["url"] = json!(t.url);
            v
        })
        .collect();
    Ok(Json(Value::Array(list)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewTsa {
    name: String,
    url: String,
    certificate: String,
}

async fn add_tsa(State(reg): State<Registry>, Json(t): Json<NewTsa>) -> Answer {
    let name = text("name", &t.name)?;
    let url = http_url("url", &t.url)?;
    let der = certificate("certificate", &t.certificate)?;
    reg.add_tsa(&name, &url, &der).await.map_err(registry_error)?;
    let mut v = described(&der);
    v["name"] = json!(name);
    v["url"] = json!(url);
    Ok(Json(v))
}

async fn global_configuration(State(c): State<Central>) -> Answer {
    let keys = c.registry.signing_keys().await.map_err(registry_error)?;
    let rfc3339 = |t: time::OffsetDateTime| t.format(&time::format_description::well_known::Rfc3339).ok();
    let keys: Vec<Value> = keys
        .iter()
        .map(|k| {
            let mut v = described(&k.cert);
            v["id"] = json!(k.id);
            v["active"] = json!(k.active);
            v
        })
        .collect();
    Ok(Json(json!({
        "instance": c.conf.instance,
        "directory_url": c.directory_url(),
        "generated_at": c.generated_at().and_then(rfc3339),
        "generation_interval_secs": c.conf.generation_interval_secs,
        "expire_after_secs": c.conf.expire_after_secs,
        "signing_keys": keys,
    })))
}

async fn generate(State(c): State<Central>) -> Answer {
    c.generate().await.map_err(central_error)?;
    tracing::info!("global configuration generated on request");
    global_configuration(State(c)).await
}

async fn anchor(State(c): State<Central>) -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse as _;
    let xml = c.anchor().await.map_err(central_error)?;
    let disposition = format!("attachment; filename=\"configuration-anchor-{}.xml\"", c.conf.instance);
    Ok((
        [
            (axum::http::header::CONTENT_TYPE, "application/xml; charset=UTF-8".to_string()),
            (axum::http::header::CONTENT_DISPOSITION, disposition),
        ],
        xml,
    )
        .into_response())
}
