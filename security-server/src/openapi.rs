//! The OpenAPI 3.0 document of the admin API (`GET /api/v1/openapi.json`).
//!
//! Made from one table of operations, so the document and the router are
//! checked against each other in tests (every route documented, every
//! documented operation routed); the roles each operation needs come from the
//! same [`crate::admin::policy`] the API enforces, never written twice. CI
//! also validates the served document with an independent OpenAPI validator.

use serde_json::{Map, Value, json};

/// One operation: method, path (axum's `{param}` form, which is also
/// OpenAPI's), tag, summary, request body schema, answer schema.
struct Op {
    method: &'static str,
    path: &'static str,
    tag: &'static str,
    summary: &'static str,
    body: Option<Value>,
    answer: Value,
}

fn obj(required: &[&str], props: Value) -> Value {
    let mut v = json!({ "type": "object", "properties": props, "additionalProperties": false });
    if !required.is_empty() {
        v["required"] = json!(required);
    }
    v
}

fn string(description: &str) -> Value {
    json!({ "type": "string", "description": description })
}

fn answer(props: Value) -> Value {
    json!({ "type": "object", "properties": props })
}

fn request_id() -> Value {
    answer(json!({ "request_id": { "type": "integer", "description": "the central server's request id" } }))
}

fn active() -> Value {
    answer(json!({ "hash": string("the certificate's SHA-256"), "active": { "type": "boolean" } }))
}

fn list(items: Value) -> Value {
    json!({ "type": "array", "items": items })
}

const CLIENT_ID: &str = "SUBSYSTEM:INSTANCE/CLASS/CODE/SUB or MEMBER:INSTANCE/CLASS/CODE";

fn ops() -> Vec<Op> {
    let op = |method, path, tag, summary, body: Option<Value>, answer: Value| Op {
        method,
        path,
        tag,
        summary,
        body,
        answer,
    };
    let service = answer(json!({
        "id": string("SERVICE:INSTANCE/CLASS/CODE/SUB/SERVICE[/VERSION]"), "url": string("provider URL"),
        "timeout_secs": { "type": "integer" }, "ssl_verify": { "type": "boolean" },
    }));
    let description = answer(json!({
        "id": { "type": "integer" }, "url": string("where the WSDL came from"), "enabled": { "type": "boolean" },
        "notice": { "type": "string", "nullable": true }, "services": list(service.clone()),
    }));
    let member = obj(&["member"], json!({ "member": string(CLIENT_ID) }));
    vec![
        op("get", "/api/v1/openapi.json", "system", "This document.", None, json!({ "type": "object" })),
        op(
            "get",
            "/api/v1/status",
            "system",
            "Initialisation, registration, health, global configuration, OCSP and time-stamping state, alerts.",
            None,
            answer(json!({
                "initialized": { "type": "boolean" }, "server_id": { "type": "string", "nullable": true },
                "running": { "type": "boolean" }, "registered": { "type": "boolean" },
                "registered_clients": list(string(CLIENT_ID)),
                "global_configuration_ok": { "type": "boolean", "nullable": true },
                "health": { "type": "object", "nullable": true, "properties": {
                    "status": { "type": "integer", "description": "200, 500 or 503 as the health check answers" },
                    "text": { "type": "string" } } },
                "global_configuration": { "type": "object", "nullable": true, "properties": {
                    "ok": { "type": "boolean" }, "problem": { "type": "string", "nullable": true },
                    "expires_in_secs": { "type": "integer", "nullable": true },
                    "age_secs": { "type": "integer", "nullable": true,
                        "description": "since the generation in force was taken" } } },
                "ocsp": { "type": "array", "nullable": true, "items": { "type": "object" } },
                "timestamping": { "type": "object", "nullable": true },
                "last_hour": { "type": "object", "nullable": true, "properties": {
                    "exchanges": { "type": "integer" }, "faults": { "type": "integer" },
                    "faults_by_code": { "type": "object", "additionalProperties": { "type": "integer" } } } },
                "alerts": list(json!({ "type": "object", "properties": {
                    "level": { "type": "string", "enum": ["error", "warning"] },
                    "code": string("stable: globalconf_invalid, globalconf_expiring, not_registered, maintenance, \
                        certificate_expired, certificate_expiring, ocsp_problem, timestamping_failing, timestamping_backlog"),
                    "text": string("in English"),
                    "values": { "type": "object", "description": "what the text names, for translations" } } })),
            })),
        ),
        op(
            "get",
            "/metrics",
            "system",
            "Prometheus text exposition of the server's counters.",
            None,
            string("text/plain"),
        ),
        op(
            "get",
            "/api/v1/internal-tls-certificate",
            "system",
            "The internal TLS certificate the server shows https providers (PEM, with its SHA-256 hash).",
            None,
            answer(json!({ "certificate": string("PEM"), "hash": string("SHA-256 hex") })),
        ),
        op(
            "post",
            "/api/v1/initialization",
            "setup",
            "Initialise: import the configuration anchor, name the owner and server code, create the token.",
            Some(obj(
                &["anchor", "owner", "server_code", "pin"],
                json!({ "anchor": string("the anchor XML"), "owner": string("MEMBER:INSTANCE/CLASS/CODE"),
                        "server_code": string("e.g. ss1"), "pin": string("the token PIN") }),
            )),
            answer(json!({ "server_id": string("SERVER:INSTANCE/CLASS/CODE/SERVER") })),
        ),
        op(
            "get",
            "/api/v1/keys",
            "keys",
            "The token's keys and certificates.",
            None,
            answer(
                json!({ "keys": list(json!({ "type": "object" })), "certificates": list(json!({ "type": "object" })) }),
            ),
        ),
        op(
            "post",
            "/api/v1/keys",
            "keys",
            "Generate a key in the token.",
            Some(obj(
                &["role"],
                json!({ "role": { "type": "string", "enum": ["auth", "sign"] }, "label": { "type": "string" } }),
            )),
            json!({ "type": "object" }),
        ),
        op(
            "post",
            "/api/v1/keys/{id}/csr",
            "keys",
            "A certificate signing request for a key.",
            Some(obj(&[], json!({ "member": string("for a signing key: the member it signs for") }))),
            answer(json!({ "csr": string("PEM") })),
        ),
        op(
            "post",
            "/api/v1/certificates",
            "keys",
            "Import a certificate the CA issued for one of the token's keys.",
            Some(obj(&["certificate"], json!({ "certificate": string("PEM") }))),
            json!({ "type": "object" }),
        ),
        op(
            "post",
            "/api/v1/certificates/{hash}/register",
            "registration",
            "Ask the central server to register the authentication certificate.",
            Some(obj(&["address"], json!({ "address": string("host name or IP peers reach this server at") }))),
            request_id(),
        ),
        op(
            "post",
            "/api/v1/certificates/{hash}/unregister",
            "registration",
            "Ask the central server to delete an authentication certificate's registration.",
            None,
            request_id(),
        ),
        op(
            "post",
            "/api/v1/certificates/{hash}/activate",
            "keys",
            "Allow a certificate of the token to be used.",
            None,
            active(),
        ),
        op(
            "post",
            "/api/v1/certificates/{hash}/disable",
            "keys",
            "Stop a certificate from being used (not one the running server uses).",
            None,
            active(),
        ),
        op(
            "put",
            "/api/v1/address",
            "registration",
            "Tell the central server this server's new address.",
            Some(obj(&["address"], json!({ "address": string("host name or IP") }))),
            request_id(),
        ),
        op(
            "get",
            "/api/v1/clients",
            "clients",
            "The server's clients and whether they are registered.",
            None,
            list(answer(
                json!({ "id": string(CLIENT_ID), "status": { "type": "string", "enum": ["saved", "registered"] } }),
            )),
        ),
        op(
            "post",
            "/api/v1/clients",
            "clients",
            "Add a client to the server.",
            Some(obj(&["client"], json!({ "client": string(CLIENT_ID) }))),
            answer(json!({ "id": string(CLIENT_ID), "status": { "type": "string" } })),
        ),
        op(
            "post",
            "/api/v1/clients/{id}/register",
            "clients",
            "Ask the central server to register a client on this server.",
            None,
            request_id(),
        ),
        op(
            "delete",
            "/api/v1/clients/{id}",
            "clients",
            "Remove a client (a deletion request when it is registered).",
            None,
            answer(json!({ "request_id": { "type": "integer", "nullable": true } })),
        ),
        op(
            "get",
            "/api/v1/clients/{id}/service-descriptions",
            "services",
            "A client's service descriptions and their services.",
            None,
            list(description.clone()),
        ),
        op(
            "post",
            "/api/v1/clients/{id}/service-descriptions",
            "services",
            "Add a WSDL: read from `url` (http), or given as `wsdl` with `url` naming where it came from.",
            Some(obj(
                &["url"],
                json!({ "url": string("http(s) or file URL"), "wsdl": string("the WSDL text"),
                        "provider_url": string("the provider's URL, if not the WSDL's soap:address") }),
            )),
            answer(json!({ "id": { "type": "integer" }, "services": list(string("service code")) })),
        ),
        op(
            "post",
            "/api/v1/service-descriptions/{id}/disable",
            "services",
            "Disable a description's services; callers get the notice.",
            Some(obj(&["notice"], json!({ "notice": string("shown to callers in the fault") }))),
            answer(json!({ "id": { "type": "integer" }, "enabled": { "type": "boolean" } })),
        ),
        op(
            "post",
            "/api/v1/service-descriptions/{id}/enable",
            "services",
            "Enable a description's services.",
            None,
            answer(json!({ "id": { "type": "integer" }, "enabled": { "type": "boolean" } })),
        ),
        op(
            "delete",
            "/api/v1/service-descriptions/{id}",
            "services",
            "Delete a description, its services and their access rights.",
            None,
            answer(json!({ "id": { "type": "integer" }, "deleted": { "type": "boolean" } })),
        ),
        op(
            "post",
            "/api/v1/service-descriptions/{id}/refresh",
            "services",
            "Read the WSDL again (from its http URL, or the text given).",
            Some(obj(&[], json!({ "wsdl": string("the WSDL text") }))),
            answer(json!({ "id": { "type": "integer" }, "added": list(string("service code")),
                           "removed": list(string("service code")) })),
        ),
        op(
            "patch",
            "/api/v1/services/{id}",
            "services",
            "Edit a service's provider URL, timeout and TLS verification.",
            Some(obj(
                &[],
                json!({ "url": string("http or https URL"), "timeout_secs": { "type": "integer", "minimum": 1 },
                        "ssl_verify": { "type": "boolean" } }),
            )),
            service,
        ),
        op(
            "get",
            "/api/v1/services/{id}/access-rights",
            "access",
            "Who may call a service.",
            None,
            list(answer(json!({ "subject": string("a client id, local:GROUP or global:GROUP") }))),
        ),
        op(
            "post",
            "/api/v1/services/{id}/access-rights",
            "access",
            "Let a subsystem, member, local group or global group call a service.",
            Some(obj(&["subject"], json!({ "subject": string("a client id, local:GROUP or global:GROUP") }))),
            answer(json!({ "service": { "type": "string" }, "subject": { "type": "string" } })),
        ),
        op(
            "delete",
            "/api/v1/services/{id}/access-rights/{subject}",
            "access",
            "Take an access right away.",
            None,
            answer(json!({ "service": { "type": "string" }, "subject": { "type": "string" },
                           "revoked": { "type": "boolean" } })),
        ),
        op(
            "get",
            "/api/v1/clients/{id}/access-rights",
            "access",
            "The access rights on a client's services (optionally one subject's).",
            None,
            list(answer(json!({ "service_code": { "type": "string" },
                                "subject": string("a client id, local:GROUP or global:GROUP") }))),
        ),
        op(
            "get",
            "/api/v1/clients/{id}/local-groups",
            "access",
            "A client's local groups with their members.",
            None,
            list(answer(json!({ "code": { "type": "string" }, "description": { "type": "string" },
                                "members": list(string(CLIENT_ID)) }))),
        ),
        op(
            "delete",
            "/api/v1/clients/{id}/local-groups/{code}",
            "access",
            "Delete a local group; the access rights granted to it go too.",
            None,
            answer(json!({ "client": { "type": "string" }, "code": { "type": "string" },
                           "deleted": { "type": "boolean" } })),
        ),
        op(
            "post",
            "/api/v1/clients/{id}/local-groups",
            "access",
            "Add a local group to a client.",
            Some(obj(&["code"], json!({ "code": string("the group's code"), "description": { "type": "string" } }))),
            answer(json!({ "client": { "type": "string" }, "code": { "type": "string" } })),
        ),
        op(
            "post",
            "/api/v1/clients/{id}/local-groups/{code}/members",
            "access",
            "Add a member or subsystem to a local group.",
            Some(member),
            answer(
                json!({ "client": { "type": "string" }, "code": { "type": "string" }, "member": { "type": "string" } }),
            ),
        ),
        op(
            "delete",
            "/api/v1/clients/{id}/local-groups/{code}/members/{member}",
            "access",
            "Remove a member or subsystem from a local group.",
            None,
            answer(json!({ "client": { "type": "string" }, "code": { "type": "string" },
                           "member": { "type": "string" }, "removed": { "type": "boolean" } })),
        ),
        op(
            "get",
            "/api/v1/message-log",
            "message log",
            "Message-log records found by query id, client, service and time, newest first (no content).",
            None,
            list(answer(json!({
                "id": { "type": "integer" }, "query_id": { "type": "string" }, "client": { "type": "string" },
                "service": { "type": "string" }, "side": { "type": "string", "enum": ["client", "server"] },
                "response": { "type": "boolean" }, "created_at": string("RFC 3339"),
                "time_stamped": { "type": "boolean" },
            }))),
        ),
        op(
            "get",
            "/api/v1/message-log/{query_id}",
            "message log",
            "A ZIP of the ASiC-E containers of a query's time-stamped records (optionally one client's).",
            None,
            json!({ "type": "string", "format": "binary" }),
        ),
        op(
            "post",
            "/api/v1/login",
            "session",
            "Log in to the web UI: sets the session cookie; answers the CSRF token every change must carry \
             (X-Road-style growing delay, 429, and lockout, 423, after failed logins). No authentication.",
            Some(obj(
                &["username", "password"],
                json!({ "username": { "type": "string" }, "password": { "type": "string" } }),
            )),
            answer(
                json!({ "user": { "type": "string" }, "roles": list(json!({ "$ref": "#/components/schemas/Role" })),
                           "csrf_token": { "type": "string" } }),
            ),
        ),
        op(
            "get",
            "/api/v1/setup-state",
            "session",
            "Whether a user exists and a first-run setup token is waiting. No authentication.",
            None,
            answer(json!({ "users_exist": { "type": "boolean" }, "setup_token_pending": { "type": "boolean" } })),
        ),
        op(
            "post",
            "/api/v1/first-user",
            "session",
            "Make the first user (every role) with the setup token from the admin folder's `ui-setup-token` file; logs in.",
            Some(obj(
                &["setup_token", "username", "password"],
                json!({ "setup_token": { "type": "string" }, "username": { "type": "string" },
                        "password": { "type": "string", "minLength": 10 } }),
            )),
            answer(json!({ "user": { "type": "string" }, "csrf_token": { "type": "string" } })),
        ),
        op(
            "get",
            "/api/v1/session",
            "session",
            "Who is calling, with the session's CSRF token.",
            None,
            answer(
                json!({ "user": { "type": "string" }, "roles": list(json!({ "$ref": "#/components/schemas/Role" })),
                           "csrf_token": { "type": "string", "nullable": true }, "auth": { "type": "string" } }),
            ),
        ),
        op(
            "post",
            "/api/v1/logout",
            "session",
            "End the session.",
            None,
            answer(json!({ "logged_out": { "type": "boolean" } })),
        ),
        op(
            "get",
            "/api/v1/users",
            "users",
            "The web UI's users and their roles.",
            None,
            list(answer(json!({ "username": { "type": "string" },
                                "roles": list(json!({ "$ref": "#/components/schemas/Role" })) }))),
        ),
        op(
            "post",
            "/api/v1/users",
            "users",
            "Make a user (the password is kept as an Argon2id hash).",
            Some(obj(
                &["username", "password", "roles"],
                json!({ "username": { "type": "string" }, "password": { "type": "string", "minLength": 10 },
                        "roles": list(json!({ "$ref": "#/components/schemas/Role" })) }),
            )),
            answer(json!({ "username": { "type": "string" }, "created": { "type": "boolean" } })),
        ),
        op(
            "delete",
            "/api/v1/users/{name}",
            "users",
            "Delete a user and end their sessions.",
            None,
            answer(json!({ "username": { "type": "string" }, "deleted": { "type": "boolean" } })),
        ),
        op(
            "get",
            "/api/v1/api-keys",
            "api keys",
            "The API keys (ids, names, roles; never the keys).",
            None,
            list(answer(json!({ "id": { "type": "integer" }, "name": { "type": "string" },
                                "roles": list(json!({ "$ref": "#/components/schemas/Role" })) }))),
        ),
        op(
            "post",
            "/api/v1/api-keys",
            "api keys",
            "Make an API key with roles; the key is in the answer only.",
            Some(obj(
                &["name", "roles"],
                json!({ "name": { "type": "string" }, "roles": list(json!({ "$ref": "#/components/schemas/Role" })) }),
            )),
            answer(json!({ "id": { "type": "integer" }, "key": { "type": "string" } })),
        ),
        op(
            "delete",
            "/api/v1/api-keys/{id}",
            "api keys",
            "Revoke an API key.",
            None,
            answer(json!({ "id": { "type": "integer" }, "revoked": { "type": "boolean" } })),
        ),
    ]
}

/// The roles an operation needs, as the API enforces them.
fn roles(method: &str, path: &str) -> Option<Vec<&'static str>> {
    if musubi_admin::PUBLIC_PATHS.contains(&path) {
        return None;
    }
    let m = axum::http::Method::from_bytes(method.to_ascii_uppercase().as_bytes()).ok()?;
    let roles = musubi_admin::needed_roles(crate::admin::policy, &m, path)?;
    Some(roles.iter().map(|r| r.name()).collect())
}

/// The whole document.
pub(crate) fn document() -> Value {
    let mut paths = Map::new();
    for op in ops() {
        let mut parameters = Vec::new();
        for segment in op.path.split('/') {
            if let Some(name) = segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                let numeric = name == "id"
                    && (op.path.starts_with("/api/v1/service-descriptions") || op.path.starts_with("/api/v1/api-keys"));
                let schema = if numeric { json!({ "type": "integer" }) } else { json!({ "type": "string" }) };
                parameters.push(json!({ "name": name, "in": "path", "required": true, "schema": schema }));
            }
        }
        if op.path == "/api/v1/message-log/{query_id}" {
            parameters.push(json!({ "name": "client", "in": "query", "required": false,
                                    "schema": { "type": "string" }, "description": CLIENT_ID }));
        }
        if op.path == "/api/v1/message-log" {
            for (name, what) in [
                ("query_id", "the query id"),
                ("client", CLIENT_ID),
                ("service", "SERVICE:INSTANCE/CLASS/CODE/SUB/SERVICE[/VERSION]"),
                ("from", "logged at or after (RFC 3339)"),
                ("to", "logged at or before (RFC 3339)"),
            ] {
                parameters.push(json!({ "name": name, "in": "query", "required": false,
                                        "schema": { "type": "string" }, "description": what }));
            }
            parameters.push(json!({ "name": "limit", "in": "query", "required": false,
                                    "schema": { "type": "integer", "minimum": 1, "maximum": 500, "default": 100 } }));
        }
        if op.path == "/api/v1/clients/{id}/access-rights" {
            parameters.push(json!({ "name": "subject", "in": "query", "required": false,
                                    "schema": { "type": "string" },
                                    "description": "a client id, local:GROUP or global:GROUP" }));
        }
        let content_type = match op.path {
            "/metrics" => "text/plain",
            "/api/v1/message-log/{query_id}" => "application/zip",
            _ => "application/json",
        };
        let mut o = json!({
            "tags": [op.tag],
            "summary": op.summary,
            "operationId": operation_id(op.method, op.path),
            "responses": {
                "200": { "description": "done", "content": { content_type: { "schema": op.answer } } },
                "400": { "$ref": "#/components/responses/Invalid" },
                "401": { "$ref": "#/components/responses/Unauthenticated" },
                "403": { "$ref": "#/components/responses/Forbidden" },
                "404": { "$ref": "#/components/responses/NotFound" },
                "409": { "$ref": "#/components/responses/Conflict" },
                "429": { "$ref": "#/components/responses/TooMany" },
            },
        });
        if !parameters.is_empty() {
            o["parameters"] = Value::Array(parameters);
        }
        if let Some(body) = op.body {
            // A body without required fields may be left out.
            let required = body.get("required").is_some();
            o["requestBody"] = json!({ "required": required, "content": { "application/json": { "schema": body } } });
        }
        let public = musubi_admin::PUBLIC_PATHS.contains(&op.path);
        if public {
            o["security"] = json!([]);
        }
        match roles(op.method, op.path) {
            Some(r) => {
                o["description"] = json!(format!("Needs the role {}.", r.join(" or ")));
                o["x-roles"] = json!(r);
            }
            None if public => o["description"] = json!("No authentication."),
            None => o["description"] = json!("Any authenticated caller may use this."),
        }
        let entry = paths.entry(op.path.to_string()).or_insert_with(|| json!({}));
        entry[op.method] = o;
    }
    let tags: Vec<Value> = [
        "system",
        "setup",
        "keys",
        "registration",
        "clients",
        "services",
        "access",
        "message log",
        "api keys",
        "session",
        "users",
    ]
    .iter()
    .map(|t| json!({ "name": t }))
    .collect();
    let roles: Vec<&str> = musubi_admin::Role::ALL.iter().map(|r| r.name()).collect();
    let error = |d: &str| {
        json!({ "description": d, "content": { "application/json": {
        "schema": { "$ref": "#/components/schemas/Error" } } } })
    };
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "Musubi security server admin API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "The security server's admin REST API (port 4000). Every request carries \
                'Authorization: X-Road-ApiKey token=KEY'; each key has roles, and changes need the roles \
                named on each operation (x-roles). Each key may make 20 requests a second, in bursts of 40.",
        },
        "servers": [{ "url": "https://127.0.0.1:4000" }],
        "security": [{ "ApiKey": [] }, { "SessionCookie": [] }],
        "tags": tags,
        "paths": paths,
        "components": {
            "securitySchemes": {
                "ApiKey": { "type": "apiKey", "in": "header", "name": "Authorization",
                    "description": "X-Road-ApiKey token=KEY" },
                "SessionCookie": { "type": "apiKey", "in": "cookie", "name": musubi_admin::COOKIE,
                    "description": "the web UI's session (POST /api/v1/login); changes also send X-CSRF-Token" },
            },
            "schemas": {
                "Error": { "type": "object", "required": ["status", "code", "error"], "properties": {
                    "status": { "type": "integer", "description": "the HTTP status" },
                    "code": { "type": "string", "description": "stable: by status (invalid_field, unauthenticated, \
                        forbidden, not_found, conflict, …) or more precise (login_failed, login_wait, role_needed, \
                        csrf_missing, not_running, …)" },
                    "error": { "type": "string", "description": "what is wrong and what to do, in English" },
                    "field": { "type": "string", "description": "the request field at fault" },
                    "values": { "type": "object", "description": "what the error names, for translated texts" } } },
                "Role": { "type": "string", "enum": roles },
            },
            "responses": {
                "Invalid": error("a field is not what was expected (the error names it)"),
                "Unauthenticated": error("no API key, or not a known one"),
                "Forbidden": error("the API key lacks the role the operation needs"),
                "NotFound": error("no such object"),
                "Conflict": error("the request does not fit the server's state"),
                "TooMany": error("the key's rate is spent; see Retry-After"),
            },
        },
    })
}

/// `post /api/v1/clients/{id}/register` → `postClientsIdRegister`.
fn operation_id(method: &str, path: &str) -> String {
    let mut id = method.to_string();
    for part in path.trim_start_matches("/api/v1").split(['/', '-', '.', '_']) {
        let part = part.trim_matches(['{', '}']);
        let mut chars = part.chars();
        if let Some(first) = chars.next() {
            id.push(first.to_ascii_uppercase());
            id.extend(chars);
        }
    }
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The routes in `admin.rs`'s router and `musubi-admin`'s key routes, as (method, path).
    fn routed() -> Vec<(String, String)> {
        let mut routes = Vec::new();
        let sources = [
            include_str!("admin.rs"),
            include_str!("../../admin/src/access.rs"),
            include_str!("../../admin/src/session.rs"),
        ];
        for line in sources.iter().flat_map(|s| s.lines()) {
            let Some(rest) = line.trim().strip_prefix(".route(\"") else { continue };
            let Some((path, handlers)) = rest.split_once('"') else { continue };
            for m in ["get", "post", "put", "patch", "delete"] {
                let called = [" ", ".", "::"].iter().any(|p| handlers.contains(&format!("{p}{m}(")));
                if called {
                    routes.push((m.to_string(), path.to_string()));
                }
            }
        }
        routes.sort();
        routes
    }

    #[test]
    fn every_route_is_documented_and_every_documented_operation_is_routed() {
        let mut documented: Vec<(String, String)> =
            ops().iter().map(|o| (o.method.to_string(), o.path.to_string())).collect();
        documented.sort();
        assert_eq!(documented, routed());
    }

    #[test]
    fn the_document_names_the_roles_the_api_enforces() {
        let doc = document();
        let op = &doc["paths"]["/api/v1/services/{id}/access-rights"]["post"];
        assert_eq!(op["x-roles"], json!(["service_administrator"]));
        assert_eq!(doc["paths"]["/api/v1/api-keys"]["post"]["x-roles"], json!(["system_administrator"]));
        assert_eq!(
            doc["paths"]["/api/v1/message-log/{query_id}"]["get"]["x-roles"],
            json!(["security_officer", "system_administrator"])
        );
        assert!(doc["paths"]["/api/v1/status"]["get"].get("x-roles").is_none());
        assert_eq!(doc["paths"]["/api/v1/users"]["get"]["x-roles"], json!(["system_administrator"]));
        assert_eq!(doc["paths"]["/api/v1/login"]["post"]["security"], json!([]));
        assert!(doc["paths"]["/api/v1/login"]["post"].get("x-roles").is_none());
        let ids: std::collections::BTreeSet<String> = ops().iter().map(|o| operation_id(o.method, o.path)).collect();
        assert_eq!(ids.len(), ops().len(), "operation ids are unique");
    }
}
