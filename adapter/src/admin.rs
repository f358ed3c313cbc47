//! The adapter's admin API (HTTPS, port 8091 by default, bound to loopback;
//! API keys, web UI users, sessions and roles as on the security server:
//! see `musubi-admin`): what the home-device operator decides. Reading needs
//! any key or user; changes need the service administrator's role (the
//! operator who publishes the adapter's services).
//!
//! Endpoints (JSON, under `/api/v1`):
//! - `GET /devices`: every device, approved or not;
//! - `POST /devices/{id}/approve`, `POST /devices/{id}/revoke`;
//! - `POST /classes/{class}/approve`, `…/revoke` (class by Web API name or
//!   `0x0130`): the devices of that class known now;
//! - `POST /devices` `{"address": "…", "eoj": "001101"}`: a send-only device (§2.10);
//! - `DELETE /devices/{id}`;
//! - `POST /discover`: a discovery round now;
//! - `GET /notifications`, `GET /deliveries`: what devices announced, and
//!   the webhook deliveries;
//! - `GET /approvals`: the consent trail (who approved or revoked what, when);
//!   the operator is the API key's name or the logged-in user.

use std::net::IpAddr;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::routing::{get, post};
use musubi_admin::{ApiError, Caller};
use serde_json::{Value, json};

use crate::frame::Eoj;
use crate::registry::{self, Device, Registry, RegistryError};
use crate::{Core, defs, discovery};

type Answer = Result<Json<Value>, ApiError>;

/// The roles each endpoint needs; reading needs any key.
pub(crate) fn policy(method: &axum::http::Method, _path: &str) -> Option<&'static [musubi_admin::Role]> {
    (method != axum::http::Method::GET).then_some(&[musubi_admin::Role::ServiceAdministrator][..])
}

/// The API's routes (the caller adds the authentication and role checks).
pub(crate) fn router(core: Arc<Core>) -> axum::Router {
    axum::Router::new()
        .route("/api/v1/devices", get(devices).post(add_device))
        .route("/api/v1/devices/{id}", axum::routing::delete(remove_device))
        .route("/api/v1/devices/{id}/approve", post(approve_device))
        .route("/api/v1/devices/{id}/revoke", post(revoke_device))
        .route("/api/v1/classes/{class}/approve", post(approve_class))
        .route("/api/v1/classes/{class}/revoke", post(revoke_class))
        .route("/api/v1/discover", post(discover))
        .route("/api/v1/notifications", get(notifications))
        .route("/api/v1/approvals", get(approvals))
        .route("/api/v1/deliveries", get(deliveries))
        .with_state(core)
}

fn registry_error(e: RegistryError) -> ApiError {
    match e {
        RegistryError::UnknownDevice(id) => ApiError::new(404, format!("no device {id:?}")),
        RegistryError::Full(n) => ApiError::conflict(format!("the registry is full ({n} devices)")),
        other => ApiError::internal(other),
    }
}

/// A device as JSON.
pub fn device_json(d: &Device) -> serde_json::Value {
    let names = |epcs: &[u8]| epcs.iter().map(|e| defs::name_of(d.class(), *e)).collect::<Vec<_>>();
    json!({
        "id": d.id,
        "address": d.address.to_string(),
        "eoj": d.eoj.to_string(),
        "deviceType": defs::class(d.class()).map_or_else(|| format!("0x{:04X}", d.class()), |c| c.name.to_string()),
        "manufacturer": d.manufacturer,
        "approved": d.approved,
        "sendOnly": d.send_only,
        "alive": d.alive,
        "firstSeen": d.first_seen,
        "lastSeen": d.last_seen,
        "get": names(&d.get_map),
        "set": names(&d.set_map),
        "announces": names(&d.inf_map),
    })
}

/// Registers a send-only device by hand.
pub async fn register_manual(registry: &Registry, address: IpAddr, eoj: Eoj) -> Result<Device, RegistryError> {
    if let Some(d) = registry.find(address, eoj) {
        return Ok(d);
    }
    let now = registry::now();
    let d = Device {
        id: discovery::stable_id(None, None, address, eoj),
        address,
        eoj,
        manufacturer: String::new(),
        get_map: Vec::new(),
        set_map: Vec::new(),
        inf_map: Vec::new(),
        context: Default::default(),
        approved: false,
        send_only: true,
        alive: true,
        first_seen: now,
        last_seen: now,
    };
    registry.register(d.clone()).await?;
    Ok(registry.get(&d.id).unwrap_or(d))
}

async fn devices(State(core): State<Arc<Core>>) -> Answer {
    Ok(Json(Value::Array(core.registry.list().iter().map(device_json).collect())))
}

async fn set_device(core: &Core, id: &str, approved: bool, caller: &Caller) -> Answer {
    let d = core.registry.approve(id, approved, &caller.name).await.map_err(registry_error)?;
    Ok(Json(device_json(&d)))
}

async fn approve_device(
    State(core): State<Arc<Core>>,
    axum::Extension(caller): axum::Extension<Caller>,
    Path(id): Path<String>,
) -> Answer {
    set_device(&core, &id, true, &caller).await
}

async fn revoke_device(
    State(core): State<Arc<Core>>,
    axum::Extension(caller): axum::Extension<Caller>,
    Path(id): Path<String>,
) -> Answer {
    set_device(&core, &id, false, &caller).await
}

async fn set_class(core: &Core, class: &str, approved: bool, caller: &Caller) -> Answer {
    let code = crate::simulate::class_code(class)
        .or_else(|| u16::from_str_radix(class.trim_start_matches("0x"), 16).ok().filter(|_| class.starts_with("0x")))
        .ok_or_else(|| {
            ApiError::field(
                "class",
                format!(
                    "{class:?} is not a device class; use a name such as homeAirConditioner or a code such as 0x0130"
                ),
            )
        })?;
    let ds = core.registry.approve_class(code, approved, &caller.name).await.map_err(registry_error)?;
    Ok(Json(Value::Array(ds.iter().map(device_json).collect())))
}

async fn approve_class(
    State(core): State<Arc<Core>>,
    axum::Extension(caller): axum::Extension<Caller>,
    Path(class): Path<String>,
) -> Answer {
    set_class(&core, &class, true, &caller).await
}

async fn revoke_class(
    State(core): State<Arc<Core>>,
    axum::Extension(caller): axum::Extension<Caller>,
    Path(class): Path<String>,
) -> Answer {
    set_class(&core, &class, false, &caller).await
}

async fn remove_device(State(core): State<Arc<Core>>, Path(id): Path<String>) -> Answer {
    core.registry.remove(&id).await.map_err(registry_error)?;
    Ok(Json(json!({ "removed": id })))
}

async fn add_device(State(core): State<Arc<Core>>, Json(m): Json<crate::ManualDevice>) -> Answer {
    let eoj = crate::parse_eoj(&m.eoj).ok_or_else(|| {
        ApiError::field("eoj", format!("{:?} is not an EOJ; write 6 hex digits such as 001101", m.eoj))
    })?;
    let d = register_manual(&core.registry, m.address, eoj).await.map_err(registry_error)?;
    Ok(Json(device_json(&d)))
}

async fn discover(State(core): State<Arc<Core>>) -> Answer {
    let f = core.discover().await;
    Ok(Json(json!({ "nodes": f.nodes, "new": f.new, "known": f.known, "failed": f.failed })))
}

async fn notifications(State(core): State<Arc<Core>>) -> Answer {
    let rows = core.registry.notifications(200).await.map_err(registry_error)?;
    Ok(Json(Value::Array(
        rows.into_iter()
            .map(|(seq, device, epc, edt, at)| {
                json!({ "seq": seq, "device": device, "epc": format!("0x{epc:02X}"), "edt": hex::encode(&edt), "at": at })
            })
            .collect(),
    )))
}

async fn approvals(State(core): State<Arc<Core>>) -> Answer {
    let rows = core.registry.approvals(500).await.map_err(registry_error)?;
    Ok(Json(Value::Array(
        rows.into_iter()
            .map(|(subject, approved, by, at)| json!({ "subject": subject, "approved": approved, "by": by, "at": at }))
            .collect(),
    )))
}

async fn deliveries(State(core): State<Arc<Core>>) -> Answer {
    let rows = core.webhooks.deliveries(200).await.map_err(ApiError::internal)?;
    Ok(Json(Value::Array(
        rows.into_iter()
            .map(|(w, n, a, o)| json!({ "webhook": w, "notification": n, "attempt": a, "outcome": o }))
            .collect(),
    )))
}
