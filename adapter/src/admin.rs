//! The adapter's admin endpoint (JSON over HTTP, loopback by default,
//! bearer token from `state_dir/admin-token`): what the operator decides.
//!
//! - `GET /devices`: every device, approved or not;
//! - `POST /devices/{id}/approve`, `POST /devices/{id}/revoke`;
//! - `POST /classes/{class}/approve`, `…/revoke` (class by Web API name or
//!   `0x0130`): the devices of that class known now;
//! - `POST /devices` `{"address": "…", "eoj": "001101"}`: a send-only device (§2.10);
//! - `DELETE /devices/{id}`;
//! - `POST /discover`: a discovery round now;
//! - `GET /notifications`, `GET /deliveries`: what devices announced, and
//!   the webhook deliveries;
//! - `GET /approvals`: the consent trail (who approved or revoked what, when).
//!
//! The operator is named by the `X-Operator` header in the consent trail.

use std::net::IpAddr;
use std::sync::Arc;

use bytes::Bytes;
use hyper::{Method, Request};
use serde_json::json;

use crate::frame::Eoj;
use crate::registry::{self, Device, Registry, RegistryError};
use crate::{Core, Resp, defs, discovery, read_body, response};

/// The admin endpoint's state.
pub(crate) struct Admin {
    pub(crate) core: Arc<Core>,
    pub(crate) token: String,
}

fn json_resp(status: u16, v: &serde_json::Value) -> Resp {
    response(status, "application/json", Bytes::from(v.to_string()))
}

fn error(status: u16, message: impl Into<String>) -> Resp {
    json_resp(status, &json!({ "error": message.into() }))
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

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl Admin {
    pub(crate) async fn handle(&self, req: Request<hyper::body::Incoming>) -> Resp {
        let auth = req.headers().get(hyper::header::AUTHORIZATION).and_then(|v| v.to_str().ok()).unwrap_or("");
        let presented = auth.strip_prefix("Bearer ").unwrap_or("");
        if !constant_time_eq(presented.as_bytes(), self.token.as_bytes()) {
            return error(401, "missing or wrong bearer token; it is in the adapter's state directory (admin-token)");
        }
        let operator = req
            .headers()
            .get("x-operator")
            .and_then(|v| v.to_str().ok())
            .filter(|s| !s.is_empty() && s.len() <= 128)
            .unwrap_or("admin-api")
            .to_string();
        let method = req.method().clone();
        let path = req.uri().path().trim_end_matches('/').to_string();
        let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        let reg = &self.core.registry;
        match (&method, segments.as_slice()) {
            (&Method::GET, ["devices"]) => {
                json_resp(200, &serde_json::Value::Array(reg.list().iter().map(device_json).collect()))
            }
            (&Method::POST, ["devices", id, action @ ("approve" | "revoke")]) => {
                match reg.approve(id, *action == "approve", &operator).await {
                    Ok(d) => json_resp(200, &device_json(&d)),
                    Err(RegistryError::UnknownDevice(id)) => error(404, format!("no device {id:?}")),
                    Err(e) => error(500, e.to_string()),
                }
            }
            (&Method::POST, ["classes", class, action @ ("approve" | "revoke")]) => {
                let Some(code) = crate::simulate::class_code(class).or_else(|| {
                    u16::from_str_radix(class.trim_start_matches("0x"), 16).ok().filter(|_| class.starts_with("0x"))
                }) else {
                    return error(400, format!("{class:?} is not a device class; use a name such as homeAirConditioner or a code such as 0x0130"));
                };
                match reg.approve_class(code, *action == "approve", &operator).await {
                    Ok(ds) => json_resp(200, &serde_json::Value::Array(ds.iter().map(device_json).collect())),
                    Err(e) => error(500, e.to_string()),
                }
            }
            (&Method::DELETE, ["devices", id]) => match reg.remove(id).await {
                Ok(()) => json_resp(200, &json!({ "removed": id })),
                Err(RegistryError::UnknownDevice(id)) => error(404, format!("no device {id:?}")),
                Err(e) => error(500, e.to_string()),
            },
            (&Method::POST, ["devices"]) => {
                let body = match read_body(req).await {
                    Ok(b) => b,
                    Err(r) => return r,
                };
                let parsed: Result<crate::ManualDevice, _> = serde_json::from_slice(&body);
                let m = match parsed {
                    Ok(m) => m,
                    Err(e) => return error(400, format!("expected {{\"address\": \"…\", \"eoj\": \"001101\"}}: {e}")),
                };
                let Some(eoj) = crate::parse_eoj(&m.eoj) else {
                    return error(400, format!("{:?} is not an EOJ; write 6 hex digits such as 001101", m.eoj));
                };
                match register_manual(reg, m.address, eoj).await {
                    Ok(d) => json_resp(201, &device_json(&d)),
                    Err(RegistryError::Full(n)) => error(409, format!("the registry is full ({n} devices)")),
                    Err(e) => error(500, e.to_string()),
                }
            }
            (&Method::POST, ["discover"]) => {
                let f = self.core.discover().await;
                json_resp(200, &json!({ "nodes": f.nodes, "new": f.new, "known": f.known, "failed": f.failed }))
            }
            (&Method::GET, ["notifications"]) => match reg.notifications(200).await {
                Ok(rows) => json_resp(
                    200,
                    &serde_json::Value::Array(
                        rows.into_iter()
                            .map(|(seq, device, epc, edt, at)| {
                                json!({ "seq": seq, "device": device, "epc": format!("0x{epc:02X}"), "edt": hex::encode(&edt), "at": at })
                            })
                            .collect(),
                    ),
                ),
                Err(e) => error(500, e.to_string()),
            },
            (&Method::GET, ["approvals"]) => match reg.approvals(500).await {
                Ok(rows) => json_resp(
                    200,
                    &serde_json::Value::Array(
                        rows.into_iter()
                            .map(|(subject, approved, by, at)| json!({ "subject": subject, "approved": approved, "by": by, "at": at }))
                            .collect(),
                    ),
                ),
                Err(e) => error(500, e.to_string()),
            },
            (&Method::GET, ["deliveries"]) => match self.core.webhooks.deliveries(200).await {
                Ok(rows) => json_resp(
                    200,
                    &serde_json::Value::Array(
                        rows.into_iter()
                            .map(|(w, n, a, o)| json!({ "webhook": w, "notification": n, "attempt": a, "outcome": o }))
                            .collect(),
                    ),
                ),
                Err(e) => error(500, e.to_string()),
            },
            _ => error(404, format!("no endpoint {method} {path}; see the adapter's admin module documentation")),
        }
    }
}
