//! Who may do what on an admin API: API keys with X-Road's roles, the
//! policy each server gives (which roles an endpoint needs), and the audit
//! log of every change (JSON lines: time, event, user, authentication method,
//! data, outcome).
//!
//! Keys are kept in `api-keys` (one line each: `ID HASH ROLES NAME`, the
//! SHA-256 of the key in hex, roles comma-separated); a line holding only a
//! hash (the first key, as earlier versions wrote it) has every role.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use axum::extract::{Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use crate::files::write_secret;
use crate::{AdminError, ApiError};

/// X-Road's user roles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Keys, certificates, initialisation.
    SecurityOfficer,
    /// Registration of the server, its certificates and clients; decisions on the central server.
    RegistrationOfficer,
    /// Services, access rights, local groups.
    ServiceAdministrator,
    /// API keys, system settings.
    SystemAdministrator,
    /// Reads everything, changes nothing.
    Observer,
}

impl Role {
    /// Every role.
    pub const ALL: [Role; 5] = [
        Role::SecurityOfficer,
        Role::RegistrationOfficer,
        Role::ServiceAdministrator,
        Role::SystemAdministrator,
        Role::Observer,
    ];

    /// The role's name (`security_officer`, …).
    pub fn name(self) -> &'static str {
        match self {
            Self::SecurityOfficer => "security_officer",
            Self::RegistrationOfficer => "registration_officer",
            Self::ServiceAdministrator => "service_administrator",
            Self::SystemAdministrator => "system_administrator",
            Self::Observer => "observer",
        }
    }

    /// Reads a role's name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.name() == s.trim())
    }
}

/// Who is calling: an API key (its id, name and roles) or a logged-in user
/// (a UI session: the user's id, name and roles).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The key's or user's id.
    pub id: u32,
    /// The key's name, or the user name.
    pub name: String,
    /// Its roles.
    pub roles: Vec<Role>,
    /// Whether it is a UI session rather than an API key.
    pub session: bool,
}

impl Caller {
    /// How the audit log names the caller.
    pub fn audit_name(&self) -> String {
        if self.session { self.name.clone() } else { format!("{} (key {})", self.name, self.id) }
    }
}

#[derive(Debug, Clone)]
struct Entry {
    id: u32,
    hash: [u8; 32],
    roles: Vec<Role>,
    name: String,
}

/// The API keys of an admin API.
#[derive(Debug, Clone)]
pub struct ApiKeys {
    path: PathBuf,
    entries: Arc<RwLock<Vec<Entry>>>,
}

fn hash(token: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(ring::digest::digest(&ring::digest::SHA256, token.as_bytes()).as_ref());
    out
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

pub(crate) fn new_token() -> Result<String, AdminError> {
    use base64::Engine as _;
    use ring::rand::SecureRandom as _;
    let mut raw = [0u8; 32];
    ring::rand::SystemRandom::new()
        .fill(&mut raw)
        .map_err(|_| AdminError::Tls("no randomness for an API key".into()))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw))
}

impl ApiKeys {
    /// Reads `dir/api-keys`. At first start (no such file) makes a key with
    /// every role, keeps its hash, and writes the key itself to
    /// `dir/admin-api-key` (mode 0600) for the local administrator.
    pub fn open(dir: &Path) -> Result<Self, AdminError> {
        let file_error = |path: &Path| {
            let path = path.to_path_buf();
            move |error| AdminError::File { path: path.clone(), error }
        };
        crate::files::private_dir(dir).map_err(file_error(dir))?;
        let path = dir.join("api-keys");
        let keys = Self { path: path.clone(), entries: Arc::default() };
        if !path.exists() {
            let token = new_token()?;
            let key_file = dir.join("admin-api-key");
            write_secret(&key_file, token.as_bytes()).map_err(file_error(&key_file))?;
            keys.entries.write().unwrap_or_else(|p| p.into_inner()).push(Entry {
                id: 1,
                hash: hash(&token),
                roles: Role::ALL.to_vec(),
                name: "administrator".into(),
            });
            keys.save()?;
        }
        let text = std::fs::read_to_string(&path).map_err(file_error(&path))?;
        let mut entries = Vec::new();
        for (n, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
            let bad = || AdminError::Tls(format!("{} line {}: not `ID HASH ROLES NAME`", path.display(), n + 1));
            let words: Vec<&str> = line.split_whitespace().collect();
            let (id, h, roles, name) = match words.as_slice() {
                [h] => (1, *h, Role::ALL.to_vec(), "administrator".to_string()),
                [id, h, roles, name @ ..] => (
                    id.parse().map_err(|_| bad())?,
                    *h,
                    roles.split(',').map(|r| Role::parse(r).ok_or_else(bad)).collect::<Result<_, _>>()?,
                    name.join(" "),
                ),
                _ => return Err(bad()),
            };
            let bytes: Option<Vec<u8>> =
                (0..h.len()).step_by(2).map(|i| h.get(i..i + 2).and_then(|x| u8::from_str_radix(x, 16).ok())).collect();
            let hash: [u8; 32] = bytes.and_then(|b| b.try_into().ok()).ok_or_else(bad)?;
            entries.push(Entry { id, hash, roles, name });
        }
        *keys.entries.write().unwrap_or_else(|p| p.into_inner()) = entries;
        Ok(keys)
    }

    fn save(&self) -> Result<(), AdminError> {
        let entries = self.entries.read().unwrap_or_else(|p| p.into_inner()).clone();
        let text: String = entries
            .iter()
            .map(|e| {
                let roles: Vec<&str> = e.roles.iter().map(|r| r.name()).collect();
                format!("{} {} {} {}\n", e.id, hex(&e.hash), roles.join(","), e.name)
            })
            .collect();
        crate::replace_secret(&self.path, text.as_bytes())
    }

    /// The caller a key belongs to.
    pub fn check(&self, token: &str) -> Option<Caller> {
        let h = hash(token);
        let entries = self.entries.read().unwrap_or_else(|p| p.into_inner());
        entries.iter().find(|e| e.hash == h).map(|e| Caller {
            id: e.id,
            name: e.name.clone(),
            roles: e.roles.clone(),
            session: false,
        })
    }

    /// Makes a key with `roles`; returns its id and the key (shown once).
    pub fn create(&self, name: &str, roles: &[Role]) -> Result<(u32, String), AdminError> {
        let token = new_token()?;
        let id = {
            let mut entries = self.entries.write().unwrap_or_else(|p| p.into_inner());
            let id = entries.iter().map(|e| e.id).max().unwrap_or(0) + 1;
            entries.push(Entry { id, hash: hash(&token), roles: roles.to_vec(), name: name.to_string() });
            id
        };
        self.save()?;
        Ok((id, token))
    }

    /// Revokes key `id`; false when there is none.
    pub fn revoke(&self, id: u32) -> Result<bool, AdminError> {
        let found = {
            let mut entries = self.entries.write().unwrap_or_else(|p| p.into_inner());
            let before = entries.len();
            entries.retain(|e| e.id != id);
            entries.len() != before
        };
        if found {
            self.save()?;
        }
        Ok(found)
    }

    /// (id, name, roles) of every key.
    pub fn list(&self) -> Vec<(u32, String, Vec<Role>)> {
        let entries = self.entries.read().unwrap_or_else(|p| p.into_inner());
        entries.iter().map(|e| (e.id, e.name.clone(), e.roles.clone())).collect()
    }
}

/// The audit log: one JSON line per change, appended and flushed.
#[derive(Debug, Clone)]
pub struct Audit {
    path: PathBuf,
    lock: Arc<Mutex<()>>,
}

impl Audit {
    /// The audit log at `path` (created when first written).
    pub fn new(path: PathBuf) -> Self {
        Self { path, lock: Arc::default() }
    }

    /// Appends one record.
    pub fn record(&self, event: &str, caller: Option<&Caller>, data: serde_json::Value, outcome: &str) {
        let line = serde_json::json!({
            "time": time::OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339).unwrap_or_default(),
            "event": event,
            "user": caller.map(Caller::audit_name),
            "auth": caller.map_or("none", |c| if c.session { "session" } else { "api-key" }),
            "data": data,
            "outcome": outcome,
        });
        let _guard = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        let mut options = std::fs::OpenOptions::new();
        options.create(true).append(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let written = options.open(&self.path).and_then(|mut f| writeln!(f, "{line}").and_then(|()| f.sync_data()));
        if let Err(e) = written {
            tracing::error!(error = %e, path = %self.path.display(), "audit record not written");
        }
    }
}

/// Which roles an endpoint needs (`None`: any key, for reading).
pub type Policy = fn(&Method, &str) -> Option<&'static [Role]>;

#[derive(Clone)]
struct Guard {
    keys: ApiKeys,
    users: crate::users::Users,
    policy: Policy,
    audit: Audit,
    limits: RateLimits,
}

/// Requests per second each API key may make, sustained.
pub const RATE_PER_SECOND: f64 = 20.0;
/// How many requests a key may make at once before the rate applies.
pub const RATE_BURST: f64 = 40.0;

/// A token bucket per API key.
#[derive(Debug, Clone, Default)]
struct RateLimits(Arc<Mutex<std::collections::HashMap<(bool, u32), Bucket>>>);

/// Tokens left, and when they were counted.
type Bucket = (f64, std::time::Instant);

impl RateLimits {
    /// Takes one request from `key`'s bucket; the seconds to wait when empty.
    fn take(&self, key: (bool, u32), now: std::time::Instant) -> Result<(), u64> {
        let mut buckets = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let (tokens, last) = buckets.entry(key).or_insert((RATE_BURST, now));
        *tokens = (*tokens + now.saturating_duration_since(*last).as_secs_f64() * RATE_PER_SECOND).min(RATE_BURST);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - *tokens) / RATE_PER_SECOND).ceil().max(1.0) as u64)
        }
    }
}

/// The endpoints that need no authentication: logging in and the first-run wizard.
pub const PUBLIC_PATHS: [&str; 3] = ["/api/v1/login", "/api/v1/setup-state", "/api/v1/first-user"];

/// The roles a call needs (`None`: any authenticated caller): API keys and
/// users are for system administrators, one's own session is anyone's, the
/// rest is the server's `policy`. The guard enforces exactly this, and the
/// OpenAPI document says it.
pub fn needed_roles(policy: Policy, method: &Method, path: &str) -> Option<&'static [Role]> {
    if path.starts_with("/api/v1/api-keys") || path.starts_with("/api/v1/users") {
        Some(KEY_ADMINS)
    } else if path == "/api/v1/session" || path == "/api/v1/logout" {
        None
    } else {
        policy(method, path)
    }
}

/// Reads a `roles` field: at least one of X-Road's role names.
pub(crate) fn parse_roles(names: &[String]) -> Result<Vec<Role>, ApiError> {
    let roles = names
        .iter()
        .map(|r| {
            Role::parse(r).ok_or_else(|| {
                let all: Vec<&str> = Role::ALL.iter().map(|r| r.name()).collect();
                ApiError::field("roles", format!("{r:?} is not a role; expected {}", all.join(", ")))
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    if roles.is_empty() {
        return Err(ApiError::field("roles", "at least one role"));
    }
    Ok(roles)
}

/// API-key and user management is for system administrators.
pub const KEY_ADMINS: &[Role] = &[Role::SystemAdministrator];

async fn guard(State(g): State<Guard>, req: Request, next: Next) -> Response {
    let (method, path) = (req.method().clone(), req.uri().path().to_string());
    let event = format!("{method} {path}");
    let change = method != Method::GET && method != Method::HEAD;
    let response = checked(&g, req, next, &method, &path, &event, change).await;
    json_error(&method, &path, response).await
}

async fn checked(
    g: &Guard,
    req: Request,
    next: Next,
    method: &Method,
    path: &str,
    event: &str,
    change: bool,
) -> Response {
    let session = crate::session::cookie(&req).and_then(|t| g.users.session(t, std::time::Instant::now()));
    let caller = match crate::api_key(&req) {
        Some(token) => g.keys.check(token),
        None => session.as_ref().map(|(c, _)| c.clone()),
    };
    let Some(caller) = caller else {
        if change {
            g.audit.record(event, None, serde_json::Value::Null, "refused: not authenticated");
        }
        let hint = if crate::api_key(&req).is_some() {
            "the API key is not known; use the key in admin-api-key or one made with `musubi api-key create`"
        } else if crate::session::cookie(&req).is_some() {
            "the session has ended; log in again"
        } else {
            "send the API key as 'Authorization: X-Road-ApiKey token=KEY', or log in"
        };
        return ApiError::new(401, hint).into_response();
    };
    // A browser's session must prove each change comes from the UI's own page.
    if caller.session && change {
        let sent = req.headers().get("x-csrf-token").and_then(|v| v.to_str().ok());
        if !session.as_ref().is_some_and(|(_, csrf)| crate::users::Users::csrf_ok(csrf, sent)) {
            g.audit.record(event, Some(&caller), serde_json::Value::Null, "refused: CSRF token");
            return ApiError::new(403, "the request lacks the session's CSRF token (X-CSRF-Token); reload the page")
                .with_code("csrf_missing", serde_json::json!({}))
                .into_response();
        }
    }
    if let Err(wait) = g.limits.take((caller.session, caller.id), std::time::Instant::now()) {
        let mut r = ApiError::new(429, format!("too many requests; retry in {wait} s"))
            .with_code("too_many_requests", serde_json::json!({ "seconds": wait }))
            .into_response();
        if let Ok(v) = axum::http::HeaderValue::from_str(&wait.to_string()) {
            r.headers_mut().insert(axum::http::header::RETRY_AFTER, v);
        }
        return r;
    }
    let needed = needed_roles(g.policy, method, path);
    if let Some(roles) = needed
        && !caller.roles.iter().any(|r| roles.contains(r))
    {
        let names: Vec<&str> = roles.iter().map(|r| r.name()).collect();
        g.audit.record(event, Some(&caller), serde_json::Value::Null, "refused: role");
        return ApiError::new(403, format!("this needs the role {}; the API key has not", names.join(" or ")))
            .with_code("role_needed", serde_json::json!({ "roles": names.join(" / ") }))
            .into_response();
    }
    let mut req = req;
    req.extensions_mut().insert(caller.clone());
    if let Some((_, csrf)) = session {
        req.extensions_mut().insert(crate::session::Csrf(csrf));
    }
    // A change is audited with what it asked for (secrets masked, long texts cut).
    let mut data = serde_json::json!({ "path": path });
    if change {
        let (parts, body) = req.into_parts();
        let Ok(bytes) = axum::body::to_bytes(body, crate::MAX_BODY_BYTES).await else {
            g.audit.record(event, Some(&caller), data, "failure: HTTP 413");
            return ApiError::new(413, format!("the request body is larger than {} bytes", crate::MAX_BODY_BYTES))
                .into_response();
        };
        if let Ok(body) = serde_json::from_slice::<serde_json::Value>(&bytes) {
            data["body"] = audited(body);
        }
        req = Request::from_parts(parts, axum::body::Body::from(bytes));
    }
    let response = next.run(req).await;
    if change {
        let status = response.status();
        let outcome =
            if status.is_success() { "success".to_string() } else { format!("failure: HTTP {}", status.as_u16()) };
        g.audit.record(event, Some(&caller), data, &outcome);
    }
    response
}

/// Longest text kept whole in an audit record.
const AUDITED_TEXT: usize = 256;

/// A request body as the audit log keeps it: PINs, keys, passwords, tokens
/// and secrets masked; long texts (WSDLs, anchors, certificates) cut to their
/// start and length.
fn audited(value: serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| {
                    let secret =
                        ["pin", "key", "password", "token", "secret"].contains(&k.to_ascii_lowercase().as_str());
                    let v = if secret && !v.is_null() { Value::String("***".into()) } else { audited(v) };
                    (k, v)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(audited).collect()),
        Value::String(s) if s.len() > AUDITED_TEXT => {
            let cut = (0..=64).rev().find(|i| s.is_char_boundary(*i)).unwrap_or(0);
            Value::String(format!("{}… ({} bytes)", &s[..cut], s.len()))
        }
        other => other,
    }
}

/// Who may use an admin API and what it keeps of them: API keys, UI users
/// and their sessions, the audit log.
#[derive(Debug, Clone)]
pub struct Access {
    /// API keys.
    pub keys: ApiKeys,
    /// UI users and sessions.
    pub users: crate::users::Users,
    /// The audit log.
    pub audit: Audit,
}

impl Access {
    /// Opens `dir/api-keys`, `dir/users` and `dir/audit.log`; with the
    /// one-time setup token to print when there is no user yet.
    pub fn open(dir: &Path) -> Result<(Self, Option<String>), AdminError> {
        let keys = ApiKeys::open(dir)?;
        let (users, token) = crate::users::Users::open(dir)?;
        Ok((Self { keys, users, audit: Audit::new(dir.join("audit.log")) }, token))
    }
}

/// Wraps `router` with the authentication (API keys, or UI sessions whose
/// changes carry the CSRF token) and role checks, a rate limit per caller
/// ([`RATE_PER_SECOND`], bursts of [`RATE_BURST`]; 429 with `Retry-After`),
/// the audit log, the body limit, the API-key and user management endpoints
/// (`/api/v1/api-keys`, `/api/v1/users`; system administrators only) and the
/// session endpoints (see [`crate::session`]).
pub fn protect(router: axum::Router, access: Access, policy: Policy) -> axum::Router {
    let Access { keys, users, audit } = access;
    let hashing = crate::session::hashing_limit();
    let guarded = router
        .merge(key_routes(keys.clone()))
        .merge(crate::session::routes(users.clone(), audit.clone(), hashing.clone()))
        .fallback(|uri: axum::http::Uri| async move {
            ApiError::new(404, format!("no endpoint {}; see /api/v1/openapi.json", uri.path()))
        })
        .layer(axum::middleware::from_fn_with_state(
            Guard { keys, users: users.clone(), policy, audit: audit.clone(), limits: RateLimits::default() },
            guard,
        ));
    // Logging in and the first-run wizard come before any authentication.
    guarded
        .merge(crate::session::public_routes(users, audit, hashing))
        .layer(axum::extract::DefaultBodyLimit::max(crate::MAX_BODY_BYTES))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewKey {
    name: String,
    roles: Vec<String>,
}

fn key_routes(keys: ApiKeys) -> axum::Router {
    use axum::Json;
    use axum::extract::Path as UrlPath;
    use axum::routing::{delete, get};
    async fn list(State(keys): State<ApiKeys>) -> Json<serde_json::Value> {
        let list: Vec<serde_json::Value> = keys
            .list()
            .into_iter()
            .map(|(id, name, roles)| {
                serde_json::json!({ "id": id, "name": name, "roles": roles.iter().map(|r| r.name()).collect::<Vec<_>>() })
            })
            .collect();
        Json(serde_json::Value::Array(list))
    }
    async fn create(State(keys): State<ApiKeys>, Json(k): Json<NewKey>) -> Result<Json<serde_json::Value>, ApiError> {
        let name = k.name.trim();
        if name.is_empty() || name.len() > 100 || name.chars().any(char::is_control) {
            return Err(ApiError::field("name", "a name of 1 to 100 printable characters"));
        }
        let roles = parse_roles(&k.roles)?;
        let (id, key) = keys.create(name, &roles).map_err(ApiError::internal)?;
        Ok(Json(serde_json::json!({ "id": id, "key": key, "note": "the key is shown once; keep it safe" })))
    }
    async fn revoke(
        State(keys): State<ApiKeys>,
        UrlPath(id): UrlPath<u32>,
    ) -> Result<Json<serde_json::Value>, ApiError> {
        if keys.revoke(id).map_err(ApiError::internal)? {
            Ok(Json(serde_json::json!({ "id": id, "revoked": true })))
        } else {
            Err(ApiError::new(404, format!("no API key {id}")))
        }
    }
    axum::Router::new()
        .route("/api/v1/api-keys", get(list).post(create))
        .route("/api/v1/api-keys/{id}", delete(revoke))
        .with_state(keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_may_burst_then_waits_for_the_rate() {
        let limits = RateLimits::default();
        let t0 = std::time::Instant::now();
        for _ in 0..RATE_BURST as usize {
            assert!(limits.take((false, 1), t0).is_ok());
        }
        assert_eq!(limits.take((false, 1), t0), Err(1), "the burst is spent");
        assert!(limits.take((false, 2), t0).is_ok(), "another key has its own bucket");
        assert!(limits.take((true, 1), t0).is_ok(), "a user has their own bucket");
        let later = t0 + std::time::Duration::from_millis(100);
        assert!(limits.take((false, 1), later).is_ok(), "{RATE_PER_SECOND}/s refills");
    }

    #[test]
    fn keys_with_roles_survive_a_reload_and_revocation() {
        let dir = std::env::temp_dir().join(format!("musubi-admin-keys-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let keys = ApiKeys::open(&dir).unwrap();
        let first = std::fs::read_to_string(dir.join("admin-api-key")).unwrap();
        assert_eq!(keys.check(&first).unwrap().roles, Role::ALL.to_vec());
        let (id, token) = keys.create("monitoring", &[Role::Observer]).unwrap();
        let again = ApiKeys::open(&dir).unwrap();
        let caller = again.check(&token).unwrap();
        assert_eq!(
            (caller.id, caller.name.as_str(), caller.roles.as_slice()),
            (id, "monitoring", &[Role::Observer][..])
        );
        assert!(again.revoke(id).unwrap());
        assert!(ApiKeys::open(&dir).unwrap().check(&token).is_none());
        assert!(!again.revoke(id).unwrap());
        let text = std::fs::read_to_string(dir.join("api-keys")).unwrap();
        assert!(!text.contains(&token) && !text.contains(first.trim()), "keys are stored hashed");
        // A file of an earlier version: one hash, every role.
        std::fs::write(dir.join("api-keys"), format!("{}\n", hex(&hash("old")))).unwrap();
        assert_eq!(ApiKeys::open(&dir).unwrap().check("old").unwrap().roles, Role::ALL.to_vec());
    }
}

/// Turns the framework's own refusals (a body that is not the JSON
/// expected, a path segment of the wrong type, no such endpoint, a method
/// not allowed, a body too large), which come as plain text, into the
/// API's JSON errors, naming the field where the text does.
pub(crate) async fn json_error(method: &Method, path: &str, response: Response) -> Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !status.is_client_error() || is_json {
        return response;
    }
    let text = match axum::body::to_bytes(response.into_body(), 64 * 1024).await {
        Ok(b) => String::from_utf8_lossy(&b).into_owned(),
        Err(_) => String::new(),
    };
    let (error, field) = explain(status.as_u16(), method, path, &text);
    let mut e = ApiError::new(status.as_u16(), error);
    e.field = field;
    e.into_response()
}

/// What a framework refusal means, and the field it names.
fn explain(status: u16, method: &Method, path: &str, text: &str) -> (String, Option<String>) {
    const DATA: &str = "Failed to deserialize the JSON body into the target type: ";
    const SYNTAX: &str = "Failed to parse the request body as JSON: ";
    let quoted = |s: &str, after: &str| s.split_once(after).and_then(|(_, r)| r.split('`').next()).map(str::to_owned);
    if let Some(rest) = text.strip_prefix(DATA) {
        let rest = rest.split(" at line ").next().unwrap_or(rest);
        let field = if rest.starts_with("missing field `") {
            quoted(rest, "missing field `")
        } else if rest.starts_with("unknown field `") {
            quoted(rest, "unknown field `")
        } else {
            rest.split_once(": ").map(|(p, _)| p.to_owned()).filter(|p| !p.contains(' '))
        };
        return (format!("the request body is not what this endpoint takes: {rest}; see /api/v1/openapi.json"), field);
    }
    if let Some(rest) = text.strip_prefix(SYNTAX) {
        return (format!("the request body is not JSON: {rest}"), None);
    }
    match status {
        404 if text.is_empty() => (format!("no endpoint {path}; see /api/v1/openapi.json"), None),
        405 => (format!("{path} does not take {method}; see /api/v1/openapi.json"), None),
        413 => (format!("the request body is larger than {} bytes", crate::MAX_BODY_BYTES), None),
        415 => ("send the body as JSON with 'Content-Type: application/json'".into(), None),
        _ if text.starts_with("Invalid URL") => (format!("{path}: {text}"), Some("path".into())),
        _ => (if text.is_empty() { format!("refused (HTTP {status})") } else { text.to_owned() }, None),
    }
}

#[cfg(test)]
mod explain_tests {
    use super::*;

    #[test]
    fn audit_records_mask_secrets_and_cut_long_texts() {
        let body = serde_json::json!({
            "pin": "1234", "owner": "MEMBER:DEMO/GOV/1001", "anchor": "x".repeat(1000),
            "nested": [{ "Token": "t" }], "name": "monitoring"
        });
        let kept = audited(body);
        assert_eq!(kept["pin"], "***");
        assert_eq!(kept["nested"][0]["Token"], "***");
        assert_eq!(kept["owner"], "MEMBER:DEMO/GOV/1001");
        assert_eq!(kept["anchor"], format!("{}… (1000 bytes)", "x".repeat(64)));
        assert_eq!(kept["name"], "monitoring");
    }

    #[test]
    fn framework_refusals_name_the_field() {
        let m = Method::POST;
        let (e, f) = explain(
            422,
            &m,
            "/api/v1/keys",
            "Failed to deserialize the JSON body into the target type: role: unknown variant `x`, expected `auth` or `sign` at line 1 column 12",
        );
        assert_eq!(f.as_deref(), Some("role"));
        assert!(e.contains("expected `auth` or `sign`") && !e.contains("line 1"), "{e}");
        let (_, f) = explain(
            422,
            &m,
            "/api/v1/clients",
            "Failed to deserialize the JSON body into the target type: missing field `client` at line 1 column 2",
        );
        assert_eq!(f.as_deref(), Some("client"));
        let (_, f) = explain(
            422,
            &m,
            "/api/v1/clients",
            "Failed to deserialize the JSON body into the target type: unknown field `cleint`, expected `client` at line 1 column 10",
        );
        assert_eq!(f.as_deref(), Some("cleint"));
        let (e, f) = explain(404, &m, "/api/v1/nothing", "");
        assert_eq!((e.as_str(), f), ("no endpoint /api/v1/nothing; see /api/v1/openapi.json", None));
        assert!(explain(405, &Method::PUT, "/api/v1/keys", "").0.contains("does not take PUT"));
    }
}
