//! The web UI's side of an admin API: logging in and out, the first-run
//! setup of the first user, and managing users.
//!
//! Endpoints (JSON):
//! - `POST /api/v1/login` `{username, password}` → `{user, roles, csrf_token}` and the
//!   session cookie (`__Host-musubi-session`: Secure, HttpOnly, SameSite=Strict);
//!   401 for a wrong name or password, 429 with `Retry-After` while the growing
//!   delay runs, 423 while the name is locked (no authentication needed)
//! - `GET /api/v1/setup-state` → `{users_exist, setup_token_pending}` (no authentication)
//! - `POST /api/v1/first-user` `{setup_token, username, password}`: the first user, with
//!   every role, made with the setup token from `ui-setup-token` (its file); logs in
//!   (no authentication; only while no user exists)
//! - `GET /api/v1/session` → `{user, roles, csrf_token, auth}`; `POST /api/v1/logout`
//! - `GET /api/v1/users`; `POST /api/v1/users` `{username, password, roles}`;
//!   `DELETE /api/v1/users/{name}` (system administrators)
//!
//! Every change a session makes carries its CSRF token in `X-CSRF-Token`
//! (checked by the guard, see `access`).

use std::sync::Arc;
use std::time::Instant;

use axum::Json;
use axum::extract::{Path, Request, State};
use axum::http::HeaderValue;
use axum::http::header::{RETRY_AFTER, SET_COOKIE};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use serde::Deserialize;
use serde_json::json;

use crate::ApiError;
use crate::access::{Audit, Caller};
use crate::users::{LoginError, Started, Users};

/// The session cookie's name (`__Host-`: Secure, path `/`, no domain).
pub const COOKIE: &str = "__Host-musubi-session";

/// The session's CSRF token, for handlers.
#[derive(Debug, Clone)]
pub(crate) struct Csrf(pub(crate) String);

/// The session cookie's value in a request.
pub(crate) fn cookie(req: &Request) -> Option<&str> {
    req.headers()
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|kv| kv.trim().strip_prefix(COOKIE).and_then(|r| r.strip_prefix('=')))
        .filter(|t| !t.is_empty() && t.len() <= 128)
}

#[derive(Clone)]
struct Ctx {
    users: Users,
    audit: Audit,
    /// Password hashing is memory-hard on purpose (19 MiB each): only a few
    /// at once, so a flood of logins cannot exhaust the server's memory.
    hashing: Arc<tokio::sync::Semaphore>,
}

/// Password hashes computed at once.
const HASHING_AT_ONCE: usize = 4;

/// Runs a password check or hash on the blocking pool, a few at a time;
/// 503 when the server is too busy to start one within 10 s.
async fn hashed<T: Send + 'static>(c: &Ctx, work: impl FnOnce() -> T + Send + 'static) -> Result<T, ApiError> {
    let permit = tokio::time::timeout(std::time::Duration::from_secs(10), c.hashing.clone().acquire_owned())
        .await
        .map_err(|_| ApiError::new(503, "too many logins at once; try again in a moment").with_code("busy", json!({})))?
        .map_err(ApiError::internal)?;
    let done = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        work()
    })
    .await
    .map_err(ApiError::internal)?;
    Ok(done)
}

/// What is wrong with a new user name or password, with its code.
fn new_user_error((field, problem): (&'static str, String)) -> ApiError {
    let e = ApiError::field(field, problem);
    if field == "username" {
        e.with_code("username_rules", json!({}))
    } else {
        e.with_code("password_length", json!({ "min": crate::users::MIN_PASSWORD, "max": crate::users::MAX_PASSWORD }))
    }
}

fn roles(c: &Caller) -> Vec<&'static str> {
    c.roles.iter().map(|r| r.name()).collect()
}

/// The answer to a successful login: the cookie and who logged in.
fn logged_in(started: &Started) -> Response {
    let mut r = Json(json!({
        "user": started.caller.name, "roles": roles(&started.caller), "csrf_token": started.csrf,
    }))
    .into_response();
    let cookie = format!("{COOKIE}={}; Path=/; Secure; HttpOnly; SameSite=Strict", started.token);
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        r.headers_mut().insert(SET_COOKIE, v);
    }
    r
}

fn wait(e: ApiError, secs: u64) -> Response {
    let mut r = e.into_response();
    r.headers_mut().insert(RETRY_AFTER, HeaderValue::from(secs.max(1)));
    r
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Login {
    username: String,
    password: String,
}

async fn login(State(c): State<Ctx>, Json(l): Json<Login>) -> Response {
    if l.username.len() > 64 || l.password.len() > 4 * crate::users::MAX_PASSWORD {
        return ApiError::new(401, "wrong user name or password").with_code("login_failed", json!({})).into_response();
    }
    let users = c.users.clone();
    let name = l.username.clone();
    let outcome = match hashed(&c, move || users.login(&l.username, &l.password, Instant::now())).await {
        Ok(outcome) => outcome,
        Err(e) => return e.into_response(),
    };
    let event = "POST /api/v1/login";
    let data = json!({ "username": name });
    match outcome {
        Ok(started) => {
            c.audit.record(event, Some(&started.caller), data, "success");
            logged_in(&started)
        }
        Err(LoginError::Wrong) => {
            c.audit.record(event, None, data, "failure: wrong user name or password");
            ApiError::field("password", "wrong user name or password")
                .with_status(401)
                .with_code("login_failed", json!({}))
                .into_response()
        }
        Err(LoginError::Wait(d)) => {
            c.audit.record(event, None, data, "refused: too many failed logins, waiting");
            let secs = d.as_secs_f64().ceil() as u64;
            let e = ApiError::new(429, format!("too many failed logins; wait {secs} s before trying again"));
            wait(e.with_code("login_wait", json!({ "seconds": secs })), secs)
        }
        Err(LoginError::Locked(d)) => {
            c.audit.record(event, None, data, "refused: locked");
            let minutes = d.as_secs().div_ceil(60);
            let e = ApiError::new(
                423,
                format!("this user name is locked after repeated failed logins; try again in {minutes} min"),
            );
            wait(e.with_code("login_locked", json!({ "minutes": minutes })), d.as_secs())
        }
    }
}

async fn setup_state(State(c): State<Ctx>) -> Json<serde_json::Value> {
    Json(json!({ "users_exist": !c.users.is_empty(), "setup_token_pending": c.users.setup_pending() }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FirstUser {
    setup_token: String,
    username: String,
    password: String,
}

async fn first_user(State(c): State<Ctx>, Json(f): Json<FirstUser>) -> Response {
    if !c.users.is_empty() {
        return ApiError::new(409, "the first user exists; log in")
            .with_code("first_user_exists", json!({}))
            .into_response();
    }
    if let Err(problem) = crate::users::check_new(&f.username, &f.password) {
        return new_user_error(problem).into_response();
    }
    let users = c.users.clone();
    let (token, name, password) = (f.setup_token, f.username.clone(), f.password);
    let made = match hashed(&c, move || users.create_first(&token, &name, &password)).await {
        Ok(made) => made,
        Err(e) => return e.into_response(),
    };
    let data = json!({ "username": f.username });
    match made {
        Ok(true) => match c.users.start_first(&f.username, Instant::now()) {
            Ok(started) => {
                c.audit.record("POST /api/v1/first-user", Some(&started.caller), data, "success");
                logged_in(&started)
            }
            Err(e) => ApiError::internal(e).into_response(),
        },
        Ok(false) => {
            c.audit.record("POST /api/v1/first-user", None, data, "refused: setup token");
            ApiError::field(
                "setup_token",
                "not the setup token in the admin folder's ui-setup-token file, or it has expired; restart the server for a new one",
            )
            .with_status(403)
            .with_code("setup_token_wrong", json!({}))
            .into_response()
        }
        Err(e) => ApiError::internal(e).into_response(),
    }
}

async fn session(req: Request) -> Result<Json<serde_json::Value>, ApiError> {
    let caller = req.extensions().get::<Caller>().cloned().ok_or_else(|| ApiError::new(401, "log in"))?;
    let csrf = req.extensions().get::<Csrf>().map(|c| c.0.clone());
    Ok(Json(json!({
        "user": caller.name, "roles": roles(&caller), "csrf_token": csrf,
        "auth": if caller.session { "session" } else { "api-key" },
    })))
}

async fn logout(State(c): State<Ctx>, req: Request) -> Response {
    if let Some(token) = cookie(&req) {
        c.users.logout(token);
    }
    let mut r = Json(json!({ "logged_out": true })).into_response();
    let gone = format!("{COOKIE}=; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=0");
    if let Ok(v) = HeaderValue::from_str(&gone) {
        r.headers_mut().insert(SET_COOKIE, v);
    }
    r
}

async fn list_users(State(c): State<Ctx>) -> Json<serde_json::Value> {
    let list: Vec<serde_json::Value> = c
        .users
        .list()
        .into_iter()
        .map(|(name, r)| json!({ "username": name, "roles": r.iter().map(|r| r.name()).collect::<Vec<_>>() }))
        .collect();
    Json(serde_json::Value::Array(list))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewUser {
    username: String,
    password: String,
    roles: Vec<String>,
}

async fn create_user(State(c): State<Ctx>, Json(u): Json<NewUser>) -> Result<Json<serde_json::Value>, ApiError> {
    crate::users::check_new(&u.username, &u.password).map_err(new_user_error)?;
    let roles = crate::access::parse_roles(&u.roles)?;
    let users = c.users.clone();
    let (name, password) = (u.username.clone(), u.password);
    let made = hashed(&c, move || users.create(&name, &password, &roles)).await?.map_err(ApiError::internal)?;
    if !made {
        return Err(ApiError::field("username", format!("a user {} exists", u.username))
            .with_status(409)
            .with_code("user_exists", json!({})));
    }
    Ok(Json(json!({ "username": u.username, "created": true })))
}

async fn delete_user(State(c): State<Ctx>, Path(name): Path<String>) -> Result<Json<serde_json::Value>, ApiError> {
    // Someone must still be able to manage users afterwards.
    let admins_left = c
        .users
        .list()
        .iter()
        .filter(|(n, roles)| *n != name && roles.contains(&crate::access::Role::SystemAdministrator))
        .count();
    if admins_left == 0 && c.users.list().iter().any(|(n, _)| *n == name) {
        return Err(ApiError::conflict(format!(
            "{name} is the last user with the system_administrator role; give another user that role first"
        ))
        .with_code("last_admin", json!({ "user": name })));
    }
    if c.users.delete(&name).map_err(ApiError::internal)? {
        Ok(Json(json!({ "username": name, "deleted": true })))
    } else {
        Err(ApiError::new(404, format!("no user {name}")))
    }
}

/// The limit on password hashes at once, shared by all of an API's routes.
pub(crate) fn hashing_limit() -> Arc<tokio::sync::Semaphore> {
    Arc::new(tokio::sync::Semaphore::new(HASHING_AT_ONCE))
}

/// The routes that need no authentication: logging in and the first-run wizard.
pub(crate) fn public_routes(users: Users, audit: Audit, hashing: Arc<tokio::sync::Semaphore>) -> axum::Router {
    axum::Router::new()
        .route("/api/v1/login", post(login))
        .route("/api/v1/setup-state", get(setup_state))
        .route("/api/v1/first-user", post(first_user))
        .with_state(Ctx { users, audit, hashing })
}

/// The session and user routes behind the guard.
pub(crate) fn routes(users: Users, audit: Audit, hashing: Arc<tokio::sync::Semaphore>) -> axum::Router {
    axum::Router::new()
        .route("/api/v1/session", get(session))
        .route("/api/v1/logout", post(logout))
        .route("/api/v1/users", get(list_users).post(create_user))
        .route("/api/v1/users/{name}", delete(delete_user))
        .with_state(Ctx { users, audit, hashing })
}
