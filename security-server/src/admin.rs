//! The security server's admin API on `admin_listen` (port 4000, HTTPS,
//! `Authorization: X-Road-ApiKey token=…`; see `musubi-admin`): the setup
//! and registration steps. Handlers are thin: they call [`crate::setup`] and
//! [`crate::registration`].
//!
//! `GET /metrics` gives the Prometheus text of the running server.
//!
//! Endpoints (JSON, under `/api/v1`; the OpenAPI document of them all at
//! `GET /openapi.json`, see [`crate::openapi`]):
//! - `GET  /status`: initialised, server id, whether it runs and is registered, clients;
//!   the health check's verdict, the global configuration's expiry, the OCSP
//!   state of each own certificate, the time-stamping state and backlog, and
//!   the last hour's exchanges and faults by code, and the alerts (see [`crate::alerts`])
//! - `GET  /internal-tls-certificate`: `{certificate, hash}`, what https providers are shown
//! - `POST /initialization` `{anchor, owner, server_code, pin}`
//! - `GET  /keys`; `POST /keys` `{role: "auth"|"sign", label?}`
//! - `POST /keys/{id}/csr` `{member?}` → `{csr}` (PEM)
//! - `POST /certificates` `{certificate}` (PEM) → the imported certificate
//! - `POST /certificates/{hash}/register` `{address}` → `{request_id}` (running server)
//! - `POST /certificates/{hash}/unregister` → `{request_id}`: authentication-certificate deletion
//! - `POST /certificates/{hash}/activate`, `/disable`: whether the certificate may be used (a running
//!   server's certificates in use cannot be disabled: import and register a replacement first)
//! - `PUT  /address` `{address}` → `{request_id}`: the server's new address
//! - `GET  /clients`; `POST /clients` `{client}`
//! - `POST /clients/{id}/register` → `{request_id}` (running server)
//! - `DELETE /clients/{id}`: a client deletion request when it is registered
//! - `GET  /clients/{id}/service-descriptions`; `POST` `{url, wsdl?, provider_url?}`: a WSDL read
//!   from `url` (http), or given as `wsdl` (its text) with `url` naming where it came from
//! - `POST /service-descriptions/{id}/disable` `{notice}`, `/enable`; `DELETE /service-descriptions/{id}`
//! - `POST /service-descriptions/{id}/refresh` `{wsdl?}`: read the WSDL again (from its http URL, or the text given)
//! - `PATCH /services/{id}` `{url?, timeout_secs?, ssl_verify?}`
//! - `GET /services/{id}/access-rights`; `POST` `{subject}`; `DELETE /services/{id}/access-rights/{subject}`
//!   (subject: a member or subsystem id, `local:GROUP` or `global:GROUP`)
//! - `GET /message-log?query_id=&client=&service=&from=&to=&limit=`: records found, newest first
//! - `GET /message-log/{query_id}[?client=ID]`: a ZIP of the ASiC-E containers of a
//!   query's time-stamped records (security officers and system administrators)
//! - `GET /clients/{id}/access-rights[?subject=S]`: the rights on a client's services
//! - `GET /clients/{id}/local-groups`; `DELETE /clients/{id}/local-groups/{code}` (its rights go too)
//! - `POST /clients/{id}/local-groups` `{code, description?}`;
//!   `POST /clients/{id}/local-groups/{code}/members` `{member}`; `DELETE …/members/{member}`
//!
//! Before the server is set up, the same API runs alone ([`crate::start_setup`])
//! and offers the setup steps; registration needs the running server.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::routing::{get, post};
use musubi_admin::ApiError;
use musubi_pki::token::{CertStatus, KeyRole};
use musubi_protocol::ClientId;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::proxy;
use crate::setup::{Node, SetupError};

/// What the handlers reach.
#[derive(Clone)]
pub(crate) struct Admin {
    pub(crate) node: Arc<Node>,
    /// The running server, once set up.
    pub(crate) running: Option<Arc<proxy::State>>,
    /// Woken after each step that may complete the setup.
    pub(crate) progressed: Arc<tokio::sync::Notify>,
}

impl From<SetupError> for ApiError {
    fn from(e: SetupError) -> Self {
        match e {
            SetupError::Invalid { field, problem } => ApiError::field(field, problem),
            SetupError::State(m) => ApiError::conflict(m),
            SetupError::Failed(m) => ApiError::internal(m),
        }
    }
}

type Answer = Result<Json<Value>, ApiError>;

/// The roles each endpoint needs (X-Road's split of duties); reading needs
/// any key.
pub(crate) fn policy(method: &axum::http::Method, path: &str) -> Option<&'static [musubi_admin::Role]> {
    use musubi_admin::Role::*;
    let p = path.trim_start_matches("/api/v1/");
    if method == axum::http::Method::GET {
        // The messages themselves are not for every reader.
        return p.starts_with("message-log").then_some(&[SecurityOfficer, SystemAdministrator][..]);
    }
    Some(if p == "initialization" {
        &[SecurityOfficer, SystemAdministrator]
    } else if p.starts_with("keys")
        || p == "certificates"
        || (p.starts_with("certificates/") && (p.ends_with("/activate") || p.ends_with("/disable")))
    {
        &[SecurityOfficer]
    } else if p.starts_with("certificates/") || p == "address" {
        &[RegistrationOfficer]
    } else if p.starts_with("clients/") && (p.contains("/service-descriptions") || p.contains("/local-groups")) {
        &[ServiceAdministrator]
    } else if p.starts_with("clients") {
        &[RegistrationOfficer]
    } else if p.starts_with("service-descriptions") || p.starts_with("services") {
        &[ServiceAdministrator]
    } else {
        &[SystemAdministrator]
    })
}

/// The API's routes (the caller adds the API-key check).
pub(crate) fn router(admin: Admin) -> axum::Router {
    axum::Router::new()
        .route("/api/v1/openapi.json", get(openapi))
        .route("/api/v1/status", get(status))
        .route("/api/v1/internal-tls-certificate", get(internal_tls_certificate))
        .route("/metrics", get(metrics))
        .route("/api/v1/initialization", post(initialise))
        .route("/api/v1/keys", get(keys).post(generate_key))
        .route("/api/v1/keys/{id}/csr", post(csr))
        .route("/api/v1/certificates", post(import_certificate))
        .route("/api/v1/certificates/{hash}/register", post(register_certificate))
        .route("/api/v1/certificates/{hash}/unregister", post(unregister_certificate))
        .route("/api/v1/certificates/{hash}/activate", post(activate_certificate))
        .route("/api/v1/certificates/{hash}/disable", post(disable_certificate))
        .route("/api/v1/address", axum::routing::put(change_address))
        .route("/api/v1/clients", get(clients).post(add_client))
        .route("/api/v1/clients/{id}/register", post(register_client))
        .route("/api/v1/clients/{id}", axum::routing::delete(delete_client))
        .route("/api/v1/clients/{id}/service-descriptions", get(descriptions).post(add_description))
        .route("/api/v1/service-descriptions/{id}/disable", post(disable_description))
        .route("/api/v1/service-descriptions/{id}/enable", post(enable_description))
        .route("/api/v1/service-descriptions/{id}", axum::routing::delete(delete_description))
        .route("/api/v1/service-descriptions/{id}/refresh", post(refresh_description))
        .route("/api/v1/services/{id}", axum::routing::patch(edit_service))
        .route("/api/v1/services/{id}/access-rights", get(access_rights).post(grant))
        .route("/api/v1/services/{id}/access-rights/{subject}", axum::routing::delete(revoke))
        .route("/api/v1/message-log", get(search_log))
        .route("/api/v1/message-log/{query_id}", get(message_log))
        .route("/api/v1/clients/{id}/local-groups", get(groups).post(add_group))
        .route("/api/v1/clients/{id}/local-groups/{code}", axum::routing::delete(delete_group))
        .route("/api/v1/clients/{id}/access-rights", get(client_access_rights))
        .route("/api/v1/clients/{id}/local-groups/{code}/members", post(add_group_member))
        .route("/api/v1/clients/{id}/local-groups/{code}/members/{member}", axum::routing::delete(remove_group_member))
        .with_state(admin)
}

fn running(admin: &Admin) -> Result<&Arc<proxy::State>, ApiError> {
    admin.running.as_ref().ok_or_else(|| {
        ApiError::conflict("the server is not running yet: finish initialisation, keys and certificates first")
            .with_code("not_running", json!({}))
    })
}

fn registration_error(e: crate::registration::RegistrationError) -> ApiError {
    match e {
        crate::registration::RegistrationError::Refused(m) => ApiError::new(422, format!("refused: {m}")),
        crate::registration::RegistrationError::Transport { .. } => ApiError::new(502, e.to_string()),
        other => ApiError::conflict(other.to_string()),
    }
}

async fn openapi() -> Json<Value> {
    Json(crate::openapi::document())
}

/// The certificate the server shows https providers (to pin or trust there).
async fn internal_tls_certificate(State(a): State<Admin>) -> Answer {
    let state = running(&a)?;
    let path = state.conf.state_dir.join("internal-tls.pem");
    let pem = std::fs::read_to_string(&path).map_err(|e| ApiError::internal(format!("{}: {e}", path.display())))?;
    let der = musubi_pki::pem_decode("CERTIFICATE", &pem)
        .ok_or_else(|| ApiError::internal(format!("{} holds no certificate", path.display())))?;
    Ok(Json(json!({ "certificate": pem, "hash": musubi_pki::cert_hash(&der) })))
}

async fn status(State(a): State<Admin>) -> Answer {
    let setup = a.node.setup()?;
    let (registered, hosted) = match &a.running {
        Some(state) => {
            let trust = state.trust.get();
            let own = musubi_pki::cert_hash(&state.auth().0);
            let me = setup.server_id.as_ref().and_then(|id| trust.server(id));
            let registered = me.is_some_and(|s| s.auth_cert_hashes.iter().any(|h| h.eq_ignore_ascii_case(&own)));
            (registered, me.map(|s| s.clients.iter().map(ToString::to_string).collect::<Vec<_>>()).unwrap_or_default())
        }
        None => (false, vec![]),
    };
    let (health, globalconf, ocsp, timestamping) = running_state(&a).await?;
    let alerts = match &a.running {
        Some(state) => crate::alerts::alerts(&alert_facts(state, registered).await?),
        None => vec![],
    };
    Ok(Json(json!({
        "alerts": alerts,
        "initialized": setup.server_id.is_some(),
        "server_id": setup.server_id.map(|s| s.to_string()),
        "running": a.running.is_some(),
        "registered": registered,
        "registered_clients": hosted,
        "global_configuration_ok": a.running.as_ref().map(|s| s.globalconf.check().is_ok()),
        "health": health,
        "global_configuration": globalconf,
        "ocsp": ocsp,
        "timestamping": timestamping,
        "last_hour": a.running.as_ref().map(|s| s.stats.exchanges.last_hour()),
    })))
}

/// What the running server's alerts are worked out from.
async fn alert_facts(state: &proxy::State, registered: bool) -> Result<crate::alerts::Facts, ApiError> {
    let trust = state.trust.get();
    let mut own = vec![state.auth().0.to_vec()];
    own.extend(
        state
            .signing_keys()
            .values()
            .map(|(k, _)| musubi_protocol::xades::Signer::certificate_der(k.as_ref()).to_vec()),
    );
    let certificates = own
        .iter()
        .map(|der| {
            let not_after =
                x509_parser::parse_x509_certificate(der).map_or(0, |(_, c)| c.validity().not_after.timestamp());
            let subject = musubi_pki::subject_of(der).unwrap_or_else(|| crate::ocsp::describe(der));
            (subject, not_after, state.ocsp.own_good(der).err())
        })
        .collect();
    Ok(crate::alerts::Facts {
        now: time::OffsetDateTime::now_utc().unix_timestamp(),
        globalconf_problem: state.globalconf.check().err().map(|e| e.to_string()),
        globalconf_expires_at: state.globalconf.expires_at(),
        registered,
        maintenance: trust.server(&state.conf.server_id).and_then(|me| me.maintenance.clone()),
        certificates,
        timestamping_problem: state.timestamper.check(&trust).err(),
        backlog: u64::try_from(state.log.unstamped_count().await.map_err(ApiError::internal)?).unwrap_or(0),
    })
}

/// The running server's health, global configuration, OCSP and
/// time-stamping state, as `status` shows them (nulls before it runs).
async fn running_state(a: &Admin) -> Result<(Value, Value, Value, Value), ApiError> {
    let Some(state) = &a.running else { return Ok((Value::Null, Value::Null, Value::Null, Value::Null)) };
    let (code, text) = crate::health::check(state).await;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    // How long ago the generation in force was taken (null when the server
    // follows no central server).
    let taken = std::fs::metadata(state.conf.globalconf_root().join("current")).and_then(|m| m.modified()).ok();
    let age = taken.and_then(|t| t.elapsed().ok()).map(|d| d.as_secs());
    let globalconf = json!({
        "ok": state.globalconf.check().is_ok(),
        "problem": state.globalconf.check().err().map(|e| e.to_string()),
        "expires_in_secs": state.globalconf.expires_at().map(|e| e - now),
        "age_secs": state.globalconf.expires_at().and(age),
    });
    let auth = state.auth();
    let ages = state.ocsp.own_ages();
    let auth_sha1 = crate::ocsp::cert_sha1(&auth.0);
    let ocsp: Vec<Value> = ages
        .iter()
        .map(|(sha1, age)| {
            let mut v = json!({ "certificate_sha1": sha1, "age_secs": age });
            if *sha1 == auth_sha1 {
                v["authentication"] = json!(true);
                v["problem"] = json!(state.ocsp.own_good(&auth.0).err());
            }
            v
        })
        .collect();
    let backlog = state.log.unstamped_count().await.map_err(ApiError::internal)?;
    let trust = state.trust.get();
    let timestamping = json!({
        "ok": state.timestamper.check(&trust).is_ok(),
        "problem": state.timestamper.check(&trust).err(),
        "backlog": backlog,
    });
    Ok((json!({ "status": code, "text": text }), globalconf, json!(ocsp), timestamping))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LogQuery {
    #[serde(default)]
    client: Option<String>,
}

async fn search_log(
    State(a): State<Admin>,
    axum::extract::Query(q): axum::extract::Query<crate::messagelog::Search>,
) -> Answer {
    let state = running(&a)?;
    for (field, value) in [("from", &q.from), ("to", &q.to)] {
        if let Some(v) = value
            && time::OffsetDateTime::parse(v, &time::format_description::well_known::Rfc3339).is_err()
        {
            return Err(ApiError::field(field, "an RFC 3339 time, e.g. 2026-12-01T09:00:00Z"));
        }
    }
    let found = state.log.search(&q).await.map_err(ApiError::internal)?;
    Ok(Json(json!(found)))
}

async fn message_log(
    State(a): State<Admin>,
    Path(query_id): Path<String>,
    axum::extract::Query(q): axum::extract::Query<LogQuery>,
) -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse as _;
    let state = running(&a)?;
    let client = q
        .client
        .as_deref()
        .map(|c| c.parse::<ClientId>().map_err(|e| ApiError::field("client", e.to_string())))
        .transpose()?;
    let mut records = state.log.archived_records(&query_id).await.map_err(ApiError::internal)?;
    if let Some(c) = &client {
        records.retain(|r| r.client == c.to_string());
    }
    if records.is_empty() {
        return Err(ApiError::new(
            404,
            format!("no time-stamped message-log records of query {query_id}; records are exported once time-stamped"),
        ));
    }
    let zip = crate::proxy::containers_zip(&query_id, &records).map_err(ApiError::internal)?;
    Ok(([(axum::http::header::CONTENT_TYPE, "application/zip")], zip).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Initialise {
    anchor: String,
    owner: String,
    server_code: String,
    pin: String,
}

async fn initialise(State(a): State<Admin>, Json(r): Json<Initialise>) -> Answer {
    let id = a.node.initialise(r.anchor.as_bytes(), &r.owner, &r.server_code, &r.pin).await?;
    tracing::info!(server = %id, "initialised");
    Ok(Json(json!({ "server_id": id.to_string() })))
}

async fn keys(State(a): State<Admin>) -> Answer {
    let (keys, certs) = a.node.keys().await?;
    // An authentication certificate is registered once the global
    // configuration lists it for this server, whatever the token last noted.
    let registered: Vec<String> = match &a.running {
        Some(state) => {
            state.trust.get().server(&state.conf.server_id).map(|s| s.auth_cert_hashes.clone()).unwrap_or_default()
        }
        None => vec![],
    };
    let certs: Vec<Value> = certs
        .iter()
        .map(|c| {
            let listed = registered.iter().any(|h| h.eq_ignore_ascii_case(&c.hash));
            let status = if listed { json!(CertStatus::Registered) } else { json!(c.status) };
            json!({ "hash": c.hash, "key_id": c.key_id, "status": status, "active": c.active,
                    "subject": musubi_pki::subject_of(&c.der()) })
        })
        .collect();
    Ok(Json(json!({ "keys": keys, "certificates": certs })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewKey {
    role: KeyRole,
    #[serde(default)]
    label: Option<String>,
}

async fn generate_key(State(a): State<Admin>, Json(r): Json<NewKey>) -> Answer {
    let label = r.label.unwrap_or_else(|| match r.role {
        KeyRole::Auth => "authentication".into(),
        KeyRole::Sign => "signing".into(),
    });
    let key = a.node.generate_key(r.role, &label).await?;
    Ok(Json(serde_json::to_value(key).map_err(ApiError::internal)?))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct CsrRequest {
    #[serde(default)]
    member: Option<String>,
}

async fn csr(State(a): State<Admin>, Path(id): Path<String>, body: Option<Json<CsrRequest>>) -> Answer {
    let member = body.and_then(|Json(b)| b.member);
    let der = a.node.csr(&id, member.as_deref()).await?;
    Ok(Json(json!({ "csr": musubi_pki::pem("CERTIFICATE REQUEST", &der) })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Certificate {
    certificate: String,
}

async fn import_certificate(State(a): State<Admin>, Json(r): Json<Certificate>) -> Answer {
    let der = musubi_pki::pem_decode("CERTIFICATE", &r.certificate)
        .ok_or_else(|| ApiError::field("certificate", "expected a PEM certificate (-----BEGIN CERTIFICATE-----)"))?;
    let imported = a.node.import_certificate(&der).await?;
    a.progressed.notify_waiters();
    let restart = a.running.is_some();
    Ok(Json(json!({
        "hash": imported.cert.hash,
        "role": imported.role,
        "member": imported.member.map(|m| m.to_string()),
        "status": imported.cert.status,
        "note": if restart { "restart the server to use a new certificate" } else { "" },
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Address {
    address: String,
}

async fn register_certificate(State(a): State<Admin>, Path(hash): Path<String>, Json(r): Json<Address>) -> Answer {
    let state = running(&a)?;
    let auth = state.auth().0.to_vec();
    if !musubi_pki::cert_hash(&auth).eq_ignore_ascii_case(&hash) {
        return Err(ApiError::field("hash", "not the authentication certificate this server uses"));
    }
    let request = musubi_protocol::management::Request::AuthCertReg {
        server: state.conf.server_id.clone(),
        address: r.address,
        auth_cert: auth,
    };
    let id = crate::registration::send(state, request).await.map_err(registration_error)?;
    a.node.set_cert_status(&hash, CertStatus::RegistrationInProgress).await?;
    Ok(Json(json!({ "request_id": id })))
}

async fn unregister_certificate(State(a): State<Admin>, Path(hash): Path<String>) -> Answer {
    let state = running(&a)?;
    let (keys, certs) = a.node.keys().await?;
    let cert = certs
        .iter()
        .find(|c| c.hash.eq_ignore_ascii_case(&hash))
        .ok_or_else(|| ApiError::new(404, format!("no certificate {hash} in the token")))?;
    if !keys.iter().any(|k| k.id == cert.key_id && k.role == KeyRole::Auth) {
        return Err(ApiError::field(
            "hash",
            "not an authentication certificate; signing certificates are not registered",
        ));
    }
    let listed = state
        .trust
        .get()
        .server(&state.conf.server_id)
        .is_some_and(|s| s.auth_cert_hashes.iter().any(|h| h.eq_ignore_ascii_case(&cert.hash)));
    if !listed {
        return Err(ApiError::conflict("the certificate is not registered in the global configuration"));
    }
    let request = musubi_protocol::management::Request::AuthCertDeletion {
        server: state.conf.server_id.clone(),
        auth_cert: cert.der(),
    };
    let id = crate::registration::send(state, request).await.map_err(registration_error)?;
    // The token learns now what the configuration has said since.
    if cert.status == CertStatus::RegistrationInProgress {
        a.node.set_cert_status(&cert.hash, CertStatus::Registered).await?;
    }
    a.node.set_cert_status(&cert.hash, CertStatus::DeletionInProgress).await?;
    Ok(Json(json!({ "request_id": id })))
}

async fn activate_certificate(State(a): State<Admin>, Path(hash): Path<String>) -> Answer {
    set_active(&a, &hash, true).await
}

async fn disable_certificate(State(a): State<Admin>, Path(hash): Path<String>) -> Answer {
    set_active(&a, &hash, false).await
}

/// Activates or disables a certificate of the token. A running server's
/// certificates in use stay active: disabling one would leave the server
/// without a key to authenticate or sign with.
async fn set_active(a: &Admin, hash: &str, active: bool) -> Answer {
    let (_, certs) = a.node.keys().await?;
    let cert = certs
        .iter()
        .find(|c| c.hash.eq_ignore_ascii_case(hash))
        .ok_or_else(|| ApiError::new(404, format!("no certificate {hash} in the token")))?;
    if let Some(state) = a.running.as_ref().filter(|_| !active) {
        let mut in_use = vec![musubi_pki::cert_hash(&state.auth().0)];
        in_use.extend(
            state
                .signing_keys()
                .values()
                .map(|(k, _)| musubi_pki::cert_hash(musubi_protocol::xades::Signer::certificate_der(k.as_ref()))),
        );
        if in_use.iter().any(|h| h.eq_ignore_ascii_case(&cert.hash)) {
            return Err(ApiError::conflict(
                "the running server uses this certificate; import (and for authentication, register) a replacement first",
            )
            .with_code("certificate_in_use", json!({})));
        }
    }
    a.node.set_cert_active(&cert.hash, active).await?;
    Ok(Json(json!({ "hash": cert.hash, "active": active })))
}

async fn change_address(State(a): State<Admin>, Json(r): Json<Address>) -> Answer {
    let state = running(&a)?;
    let request = musubi_protocol::management::Request::AddressChange {
        server: state.conf.server_id.clone(),
        address: r.address,
    };
    let id = crate::registration::send(state, request).await.map_err(registration_error)?;
    Ok(Json(json!({ "request_id": id })))
}

async fn clients(State(a): State<Admin>) -> Answer {
    let setup = a.node.setup()?;
    let hosted: Vec<ClientId> = match (&a.running, &setup.server_id) {
        (Some(state), Some(id)) => state.trust.get().server(id).map(|s| s.clients.clone()).unwrap_or_default(),
        _ => vec![],
    };
    let list: Vec<Value> = setup
        .clients
        .iter()
        .map(|c| json!({ "id": c.to_string(), "status": if hosted.contains(c) { "registered" } else { "saved" } }))
        .collect();
    Ok(Json(Value::Array(list)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewClient {
    client: String,
}

async fn add_client(State(a): State<Admin>, Json(r): Json<NewClient>) -> Answer {
    let id = a.node.add_client(&r.client).await?;
    Ok(Json(json!({ "id": id.to_string(), "status": "saved" })))
}

fn client_of(a: &Admin, id: &str) -> Result<ClientId, ApiError> {
    let client: ClientId = id.parse().map_err(|e| ApiError::field("id", format!("{e}")))?;
    if !a.node.setup()?.clients.contains(&client) {
        return Err(ApiError::new(404, format!("{client} is not a client of this server; add it first")));
    }
    Ok(client)
}

async fn register_client(State(a): State<Admin>, Path(id): Path<String>) -> Answer {
    let client = client_of(&a, &id)?;
    let state = running(&a)?;
    let request = musubi_protocol::management::Request::ClientReg { server: state.conf.server_id.clone(), client };
    let id = crate::registration::send(state, request).await.map_err(registration_error)?;
    Ok(Json(json!({ "request_id": id })))
}

async fn delete_client(State(a): State<Admin>, Path(id): Path<String>) -> Answer {
    let client = client_of(&a, &id)?;
    let registered =
        a.running.as_ref().is_some_and(|s| s.trust.get().server(&s.conf.server_id).is_some_and(|me| me.hosts(&client)));
    let request_id = match (&a.running, registered) {
        (Some(state), true) => {
            let request = musubi_protocol::management::Request::ClientDeletion {
                server: state.conf.server_id.clone(),
                client: client.clone(),
            };
            Some(crate::registration::send(state, request).await.map_err(registration_error)?)
        }
        _ => None,
    };
    a.node.remove_client(&client).await?;
    Ok(Json(json!({ "request_id": request_id })))
}

fn serverconf_error(e: crate::serverconf::ServerConfError) -> ApiError {
    use crate::serverconf::ServerConfError as E;
    match e {
        E::Conflict(m) => ApiError::conflict(m),
        E::NotFound(m) => ApiError::new(404, m),
        other => ApiError::internal(other),
    }
}

/// A client this server has (added through `POST /clients`), for service configuration.
fn own_client(a: &Admin, id: &str) -> Result<ClientId, ApiError> {
    let client = client_of(a, id)?;
    if client.subsystem_code().is_none() {
        return Err(ApiError::field("id", "services belong to subsystems (SUBSYSTEM:INSTANCE/CLASS/CODE/SUB)"));
    }
    Ok(client)
}

async fn descriptions(State(a): State<Admin>, Path(id): Path<String>) -> Answer {
    let client = own_client(&a, &id)?;
    let db = running(&a)?.serverconf.snapshot();
    let list: Vec<Value> = db
        .descriptions
        .iter()
        .filter(|d| d.client == client)
        .map(|d| {
            let services: Vec<Value> = db
                .services
                .iter()
                .filter(|s| s.description_id == d.id)
                .map(|s| {
                    json!({ "id": s.id.to_string(), "code": s.id.service_code(), "version": s.id.version(),
                                 "title": s.title, "url": s.url, "timeout_secs": s.timeout_secs })
                })
                .collect();
            json!({ "id": d.id, "url": d.url, "enabled": d.disabled.is_none(), "notice": d.disabled,
                    "refreshed_at": d.refreshed_at, "services": services })
        })
        .collect();
    Ok(Json(Value::Array(list)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewDescription {
    url: String,
    #[serde(default)]
    wsdl: Option<String>,
    #[serde(default)]
    provider_url: Option<String>,
}

/// Largest WSDL fetched, bytes.
const MAX_FETCHED_WSDL: usize = musubi_wsdl::MAX_WSDL_BYTES;

async fn fetch_wsdl(url: &str) -> Result<Vec<u8>, ApiError> {
    if !url.starts_with("http://") {
        return Err(ApiError::field(
            "url",
            "the server reads WSDLs over http://; send an https or file WSDL's text as `wsdl`",
        ));
    }
    let (_, body) = crate::confclient::get(url, MAX_FETCHED_WSDL, std::time::Duration::from_secs(30))
        .await
        .map_err(|e| ApiError::field("url", e.to_string()))?;
    Ok(body)
}

async fn add_description(State(a): State<Admin>, Path(id): Path<String>, Json(r): Json<NewDescription>) -> Answer {
    let client = own_client(&a, &id)?;
    let state = running(&a)?;
    let bytes = match &r.wsdl {
        Some(text) => text.as_bytes().to_vec(),
        None => fetch_wsdl(&r.url).await?,
    };
    let parsed = musubi_wsdl::parse(&bytes).map_err(|e| ApiError::field("wsdl", e.to_string()))?;
    let id = state
        .serverconf
        .add_description(&client, &r.url, (&bytes, &parsed), r.provider_url.as_deref())
        .await
        .map_err(serverconf_error)?;
    let codes: Vec<&str> = parsed.operations.iter().map(|o| o.code.as_str()).collect();
    tracing::info!(%client, id, services = ?codes, "service description added");
    Ok(Json(json!({ "id": id, "services": codes })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Notice {
    notice: String,
}

async fn disable_description(State(a): State<Admin>, Path(id): Path<i64>, Json(r): Json<Notice>) -> Answer {
    if r.notice.len() > 1000 {
        return Err(ApiError::field("notice", "at most 1000 characters"));
    }
    running(&a)?.serverconf.set_disabled(id, Some(r.notice.trim())).await.map_err(serverconf_error)?;
    Ok(Json(json!({ "id": id, "enabled": false })))
}

async fn enable_description(State(a): State<Admin>, Path(id): Path<i64>) -> Answer {
    running(&a)?.serverconf.set_disabled(id, None).await.map_err(serverconf_error)?;
    Ok(Json(json!({ "id": id, "enabled": true })))
}

async fn delete_description(State(a): State<Admin>, Path(id): Path<i64>) -> Answer {
    running(&a)?.serverconf.delete_description(id).await.map_err(serverconf_error)?;
    Ok(Json(json!({ "id": id, "deleted": true })))
}

fn service_of(a: &Admin, id: &str) -> Result<musubi_protocol::ServiceId, ApiError> {
    let service: musubi_protocol::ServiceId =
        id.parse().map_err(|e| ApiError::field("id", format!("{e}; expected SERVICE:INSTANCE/CLASS/CODE/SUB/CODE")))?;
    own_client(a, &service.provider().to_string())?;
    Ok(service)
}

fn subject_of(field: &str, s: &str) -> Result<crate::serverconf::Subject, ApiError> {
    crate::serverconf::Subject::parse(s).map_err(|e| ApiError::field(field, e))
}

async fn access_rights(State(a): State<Admin>, Path(id): Path<String>) -> Answer {
    let service = service_of(&a, &id)?;
    let db = running(&a)?.serverconf.snapshot();
    let list: Vec<Value> = db
        .rights
        .iter()
        .filter(|r| r.client == *service.provider() && r.service_code == service.service_code())
        .map(|r| json!({ "subject": r.subject.to_string() }))
        .collect();
    Ok(Json(Value::Array(list)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Grant {
    subject: String,
}

async fn grant(State(a): State<Admin>, Path(id): Path<String>, Json(g): Json<Grant>) -> Answer {
    let service = service_of(&a, &id)?;
    let subject = subject_of("subject", &g.subject)?;
    running(&a)?.serverconf.grant(&service, &subject).await.map_err(serverconf_error)?;
    tracing::info!(%service, %subject, "access right granted");
    Ok(Json(json!({ "service": service.to_string(), "subject": subject.to_string() })))
}

async fn revoke(State(a): State<Admin>, Path((id, subject)): Path<(String, String)>) -> Answer {
    let service = service_of(&a, &id)?;
    let subject = subject_of("subject", &subject)?;
    running(&a)?.serverconf.revoke(&service, &subject).await.map_err(serverconf_error)?;
    tracing::info!(%service, %subject, "access right revoked");
    Ok(Json(json!({ "service": service.to_string(), "subject": subject.to_string(), "revoked": true })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewGroup {
    code: String,
    #[serde(default)]
    description: Option<String>,
}

async fn groups(State(a): State<Admin>, Path(id): Path<String>) -> Answer {
    let client = own_client(&a, &id)?;
    let db = running(&a)?.serverconf.snapshot();
    let list: Vec<Value> = db
        .groups
        .iter()
        .filter(|g| g.client == client)
        .map(|g| {
            let members: Vec<String> = g.members.iter().map(ToString::to_string).collect();
            json!({ "code": g.code, "description": g.description, "members": members })
        })
        .collect();
    Ok(Json(Value::Array(list)))
}

async fn delete_group(State(a): State<Admin>, Path((id, code)): Path<(String, String)>) -> Answer {
    let client = own_client(&a, &id)?;
    running(&a)?.serverconf.delete_group(&client, &code).await.map_err(serverconf_error)?;
    Ok(Json(json!({ "client": client.to_string(), "code": code, "deleted": true })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SubjectQuery {
    #[serde(default)]
    subject: Option<String>,
}

/// A client's access rights (X-Road's "service clients" view): every right
/// on its services, or one subject's.
async fn client_access_rights(
    State(a): State<Admin>,
    Path(id): Path<String>,
    axum::extract::Query(q): axum::extract::Query<SubjectQuery>,
) -> Answer {
    let client = own_client(&a, &id)?;
    let subject = q.subject.as_deref().map(|s| subject_of("subject", s)).transpose()?;
    let db = running(&a)?.serverconf.snapshot();
    let list: Vec<Value> = db
        .rights
        .iter()
        .filter(|r| r.client == client && subject.as_ref().is_none_or(|s| *s == r.subject))
        .map(|r| json!({ "service_code": r.service_code, "subject": r.subject.to_string() }))
        .collect();
    Ok(Json(Value::Array(list)))
}

async fn add_group(State(a): State<Admin>, Path(id): Path<String>, Json(g): Json<NewGroup>) -> Answer {
    let client = own_client(&a, &id)?;
    let crate::serverconf::Subject::LocalGroup(code) = subject_of("code", &format!("local:{}", g.code))? else {
        return Err(ApiError::field("code", "not a group code"));
    };
    let description = g.description.unwrap_or_else(|| code.clone());
    running(&a)?.serverconf.add_group(&client, &code, &description).await.map_err(serverconf_error)?;
    Ok(Json(json!({ "client": client.to_string(), "code": code })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GroupMember {
    member: String,
}

async fn add_group_member(
    State(a): State<Admin>,
    Path((id, code)): Path<(String, String)>,
    Json(m): Json<GroupMember>,
) -> Answer {
    let client = own_client(&a, &id)?;
    let member: ClientId = m.member.parse().map_err(|e| ApiError::field("member", format!("{e}")))?;
    running(&a)?.serverconf.add_group_member(&client, &code, &member).await.map_err(serverconf_error)?;
    Ok(Json(json!({ "client": client.to_string(), "code": code, "member": member.to_string() })))
}

async fn remove_group_member(
    State(a): State<Admin>,
    Path((id, code, member)): Path<(String, String, String)>,
) -> Answer {
    let client = own_client(&a, &id)?;
    let member: ClientId = member.parse().map_err(|e| ApiError::field("member", format!("{e}")))?;
    running(&a)?.serverconf.remove_group_member(&client, &code, &member).await.map_err(serverconf_error)?;
    Ok(Json(json!({ "client": client.to_string(), "code": code, "member": member.to_string(), "removed": true })))
}

async fn metrics(State(a): State<Admin>) -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse as _;
    let state = running(&a)?;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let gauges = crate::metrics::Gauges {
        backlog: state.log.unstamped_count().await.map_err(ApiError::internal)?,
        ocsp_ages: state.ocsp.own_ages(),
        globalconf_expires_in: state.globalconf.expires_at().map(|e| e - now),
    };
    let text = state.stats.exchanges.render(&gauges);
    Ok(([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response())
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Refresh {
    #[serde(default)]
    wsdl: Option<String>,
}

async fn refresh_description(State(a): State<Admin>, Path(id): Path<i64>, body: Option<Json<Refresh>>) -> Answer {
    let state = running(&a)?;
    let db = state.serverconf.snapshot();
    let d = db
        .descriptions
        .iter()
        .find(|d| d.id == id)
        .ok_or_else(|| ApiError::new(404, format!("no service description {id}")))?;
    let bytes = match body.and_then(|Json(b)| b.wsdl) {
        Some(text) => text.into_bytes(),
        None if d.url.starts_with("http://") => fetch_wsdl(&d.url).await?,
        None => {
            return Err(ApiError::field(
                "wsdl",
                format!("{} cannot be read by the server; send the WSDL's text", d.url),
            ));
        }
    };
    let parsed = musubi_wsdl::parse(&bytes).map_err(|e| ApiError::field("wsdl", e.to_string()))?;
    let (added, removed) =
        state.serverconf.refresh_description(id, (&bytes, &parsed)).await.map_err(serverconf_error)?;
    tracing::info!(id, ?added, ?removed, "service description refreshed");
    Ok(Json(json!({ "id": id, "added": added, "removed": removed })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ServiceEdit {
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    timeout_secs: Option<u64>,
    #[serde(default)]
    ssl_verify: Option<bool>,
}

async fn edit_service(State(a): State<Admin>, Path(id): Path<String>, Json(e): Json<ServiceEdit>) -> Answer {
    let service = service_of(&a, &id)?;
    if let Some(url) = &e.url {
        let ok = (url.starts_with("http://") || url.starts_with("https://")) && url.parse::<hyper::Uri>().is_ok();
        if !ok {
            return Err(ApiError::field("url", "an http:// or https:// URL of the provider"));
        }
    }
    if e.timeout_secs.is_some_and(|t| t == 0 || t > 3600) {
        return Err(ApiError::field("timeout_secs", "between 1 and 3600 seconds"));
    }
    running(&a)?
        .serverconf
        .update_service(&service, e.url.as_deref(), e.timeout_secs, e.ssl_verify)
        .await
        .map_err(serverconf_error)?;
    let db = running(&a)?.serverconf.snapshot();
    let (s, _) = db.service(&service).ok_or_else(|| ApiError::new(404, format!("no service {service}")))?;
    Ok(Json(
        json!({ "id": service.to_string(), "url": s.url, "timeout_secs": s.timeout_secs, "ssl_verify": s.ssl_verify }),
    ))
}
