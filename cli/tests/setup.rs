//! Setting up and registering a security server with the `musubi` CLI, as an
//! operator does: `init`, `keys generate`, `keys csr`, the CA, `certs import`,
//! `certs register`, `clients add` and `clients register` against the
//! server's admin API; `requests list/approve/reject` against the central
//! server's. Every answer that a script would read is taken as `--output json`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::Value;

const NET: &str = "127.0.50";

/// How the CLI reaches one admin API.
struct Endpoint {
    url: String,
    cert: PathBuf,
    key: PathBuf,
}

impl Endpoint {
    fn of(dir: &Path, addr: std::net::SocketAddr) -> Self {
        Self { url: format!("https://{addr}"), cert: dir.join("admin-tls.pem"), key: dir.join("admin-api-key") }
    }
}

/// Runs `musubi ARGS` against `ep`; returns (success, stdout, stderr).
async fn musubi(ep: &Endpoint, args: &[&str]) -> (bool, String, String) {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_musubi"))
        .args(args)
        .env("MUSUBI_SERVER", &ep.url)
        .env("MUSUBI_SERVER_CERT", &ep.cert)
        .env("MUSUBI_API_KEY_FILE", &ep.key)
        .env_remove("MUSUBI_API_KEY")
        .env_remove("MUSUBI_TOKEN_PIN")
        .env("RUST_LOG", "warn")
        .output()
        .await
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `musubi ARGS --output json`, which must succeed.
async fn json(ep: &Endpoint, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.extend(["--output", "json"]);
    let (ok, out, err) = musubi(ep, &all).await;
    assert!(ok, "musubi {args:?} failed: {err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("musubi {args:?} printed no JSON ({e}): {out}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_sets_up_and_registers_a_security_server_with_the_cli() {
    let dir = std::env::temp_dir().join(format!("musubi-cli-setup-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();

    // The network: a CA with OCSP, a TSA, a central server with an officer.
    let Trust { ca, cs, anchor, _stops } = trust_network(&dir, NET).await;
    let reg = &cs.registry;
    let officer = Endpoint::of(&dir.join("central/admin"), cs.admin_addr.unwrap());

    // The security server as installed: its own settings, nothing else.
    let state = dir.join("ss/state");
    let base: toml::Table = toml::from_str(&format!(
        r#"
        client_proxy_listen = "{NET}.2:8080"
        server_proxy_listen = "{NET}.2:5500"
        ocsp_listen = "{NET}.2:5577"
        admin_listen = "{NET}.2:4000"
        database = "{db}"
        state_dir = "{state}"
        configuration_download_secs = 1
        "#,
        db = dir.join("ss/messagelog.sqlite").display(),
        state = state.display(),
    ))
    .unwrap();
    let setup = musubi_security_server::start_setup(base).await.unwrap();
    let ss = Endpoint::of(&state.join("admin"), setup.admin_addr);

    // Without the right key or certificate the API says what to do.
    std::fs::write(dir.join("wrong-key"), "not-the-key").unwrap();
    let wrong = Endpoint { key: dir.join("wrong-key"), ..Endpoint::of(&state.join("admin"), setup.admin_addr) };
    let (ok, _, err) = musubi(&wrong, &["status"]).await;
    assert!(!ok && err.contains("API key is not known"), "{err}");
    let other_cert = Endpoint {
        cert: dir.join("central/admin/admin-tls.pem"),
        ..Endpoint::of(&state.join("admin"), setup.admin_addr)
    };
    let (ok, _, err) = musubi(&other_cert, &["status"]).await;
    assert!(!ok && err.contains("TLS"), "{err}");

    // musubi init: anchor, owner, server code, PIN (from a file, never argv).
    let pin = dir.join("pin");
    std::fs::write(&pin, "correct-horse-7").unwrap();
    let (ok, _, err) = musubi(
        &ss,
        &["init", "--anchor", anchor.to_str().unwrap(), "--owner", "MEMBER:DEMO/GOV/1001", "--server-code", "ss1"],
    )
    .await;
    assert!(!ok && err.contains("--pin-file"), "no PIN, no initialisation: {err}");
    let (ok, _, err) = musubi(
        &ss,
        &[
            "init",
            "--anchor",
            anchor.to_str().unwrap(),
            "--owner",
            "SUBSYSTEM:DEMO/GOV/1001/x",
            "--server-code",
            "ss1",
            "--pin-file",
            pin.to_str().unwrap(),
        ],
    )
    .await;
    assert!(!ok && err.contains("owner:"), "the field at fault is named: {err}");
    let v = json(
        &ss,
        &[
            "init",
            "--anchor",
            anchor.to_str().unwrap(),
            "--owner",
            "MEMBER:DEMO/GOV/1001",
            "--server-code",
            "ss1",
            "--pin-file",
            pin.to_str().unwrap(),
        ],
    )
    .await;
    assert_eq!(v["server_id"], "SERVER:DEMO/GOV/1001/ss1");

    // Keys, CSRs, the CA, certificates.
    let mut auth_hash = String::new();
    for (role, usage) in [("auth", musubi_pki::Usage::Auth), ("sign", musubi_pki::Usage::Sign)] {
        let key = json(&ss, &["keys", "generate", "--role", role]).await;
        let id = key["id"].as_str().unwrap().to_string();
        let csr_file = dir.join(format!("{role}.csr"));
        json(&ss, &["keys", "csr", &id, "--out", csr_file.to_str().unwrap()]).await;
        let csr = musubi_pki::pem_decode("CERTIFICATE REQUEST", &std::fs::read_to_string(&csr_file).unwrap()).unwrap();
        let cert_file = dir.join(format!("{role}.pem"));
        std::fs::write(&cert_file, musubi_pki::pem("CERTIFICATE", &ca.sign_csr(&csr, usage).unwrap())).unwrap();
        let imported = json(&ss, &["certs", "import", cert_file.to_str().unwrap()]).await;
        assert_eq!(imported["role"], role);
        if role == "auth" {
            auth_hash = imported["hash"].as_str().unwrap().to_string();
        } else {
            assert_eq!(imported["member"], "MEMBER:DEMO/GOV/1001");
        }
    }
    let listed = json(&ss, &["keys", "list"]).await;
    assert_eq!(listed["keys"].as_array().unwrap().len(), 2);
    let (ok, _, err) = musubi(&ss, &["certs", "register", &auth_hash, "--address", &format!("{NET}.2")]).await;
    assert!(!ok && err.contains("not running yet"), "registration needs the running server: {err}");

    // Set up: the server starts (the binary does this by itself).
    setup.wait_complete().await;
    let conf = setup.server_conf().unwrap();
    setup.shutdown().await;
    let server = musubi_security_server::start(conf).await.unwrap();
    let status = json(&ss, &["status"]).await;
    assert_eq!((status["running"].as_bool(), status["registered"].as_bool()), (Some(true), Some(false)));
    let alerted = |status: &Value, code: &str| status["alerts"].as_array().unwrap().iter().any(|a| a["code"] == code);
    assert!(alerted(&status, "not_registered"), "{status}");

    // Register the authentication certificate; the officer approves it.
    let sent = json(&ss, &["certs", "register", &auth_hash, "--address", &format!("{NET}.2")]).await;
    let pending = json(&officer, &["requests", "list", "--pending"]).await;
    assert_eq!(pending[0]["id"], sent["request_id"]);
    assert_eq!(pending[0]["kind"], "authCertReg");
    json(&officer, &["requests", "approve", &sent["request_id"].to_string()]).await;
    cs.generate().await.unwrap();
    assert!(server.update_global_conf().await);
    let status = json(&ss, &["status"]).await;
    assert_eq!(status["registered"], true);
    assert!(!alerted(&status, "not_registered"), "{status}");
    let certs = json(&ss, &["keys", "list"]).await["certificates"].clone();
    let auth = certs.as_array().unwrap().iter().find(|c| c["hash"] == auth_hash.as_str()).unwrap().clone();
    assert_eq!(auth["status"], "registered");
    // The certificate the running server authenticates with stays active.
    let (ok, _, err) = musubi(&ss, &["certs", "disable", &auth_hash]).await;
    assert!(!ok && err.contains("uses this certificate"), "{err}");
    let active = json(&ss, &["certs", "activate", &auth_hash]).await;
    assert_eq!(active["active"], true);

    // A client: added, registered, rejected once, then approved.
    let care = "SUBSYSTEM:DEMO/GOV/1001/care";
    json(&ss, &["clients", "add", care]).await;
    let first = json(&ss, &["clients", "register", care]).await;
    json(&officer, &["requests", "reject", &first["request_id"].to_string(), "--reason", "wrong subsystem name"]).await;
    let (ok, _, err) = musubi(&officer, &["requests", "approve", &first["request_id"].to_string()]).await;
    assert!(!ok && err.contains("already rejected"), "{err}");
    let second = json(&ss, &["clients", "register", care]).await;
    json(&officer, &["requests", "approve", &second["request_id"].to_string()]).await;
    cs.generate().await.unwrap();
    assert!(server.update_global_conf().await);
    let clients = json(&ss, &["clients", "list"]).await;
    assert_eq!(clients[0]["id"], care);
    assert_eq!(clients[0]["status"], "registered");
    let decided = json(&officer, &["requests", "list"]).await;
    let statuses: Vec<&str> = decided.as_array().unwrap().iter().map(|r| r["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["approved", "rejected", "approved"]);

    // Roles: an observer's key reads but changes nothing; every change and refusal is audited.
    let created = json(&ss, &["api-key", "create", "--name", "monitoring", "--role", "observer"]).await;
    let observer_key = dir.join("observer-key");
    std::fs::write(&observer_key, created["key"].as_str().unwrap()).unwrap();
    let observer = Endpoint { key: observer_key, ..Endpoint::of(&state.join("admin"), server.admin_addr.unwrap()) };
    assert_eq!(json(&observer, &["status"]).await["registered"], true);
    let (ok, _, err) = musubi(&observer, &["clients", "add", "SUBSYSTEM:DEMO/GOV/1001/other"]).await;
    assert!(!ok && err.contains("needs the role registration_officer") && err.contains("403"), "{err}");
    let (ok, _, err) = musubi(&observer, &["api-key", "create", "--name", "x", "--role", "observer"]).await;
    assert!(!ok && err.contains("system_administrator"), "{err}");
    let audit = std::fs::read_to_string(state.join("admin/audit.log")).unwrap();
    let records: Vec<Value> = audit.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let refused = records
        .iter()
        .find(|r| r["event"] == "POST /api/v1/clients" && r["outcome"] == "refused: role")
        .unwrap_or_else(|| panic!("the refusal is audited: {audit}"));
    assert_eq!(refused["user"], format!("monitoring (key {})", created["id"]));
    assert_eq!(refused["auth"], "api-key");
    assert!(!audit.contains("correct-horse-7"), "the PIN is never audited: {audit}");
    let init =
        records.iter().find(|r| r["event"] == "POST /api/v1/initialization" && r["outcome"] == "success").unwrap();
    assert_eq!(
        (init["data"]["body"]["pin"].as_str(), init["data"]["body"]["server_code"].as_str()),
        (Some("***"), Some("ss1"))
    );
    for event in
        ["POST /api/v1/initialization", "POST /api/v1/keys", "POST /api/v1/certificates", "POST /api/v1/api-keys"]
    {
        assert!(records.iter().any(|r| r["event"] == event && r["outcome"] == "success"), "{event}: {audit}");
    }
    // Each role, through the CLI, may do its own work and is refused the others'; every change is audited.
    let tasks: [(&str, Vec<String>); 4] = [
        ("security_officer", vec!["keys".into(), "generate".into(), "--role".into(), "sign".into()]),
        ("registration_officer", vec!["clients".into(), "add".into(), "SUBSYSTEM:DEMO/GOV/1001/matrix".into()]),
        ("service_administrator", vec!["group".into(), "add".into(), "--client".into(), care.into(), "matrix".into()]),
        (
            "system_administrator",
            vec!["api-key".into(), "create".into(), "--name".into(), "m".into(), "--role".into(), "observer".into()],
        ),
    ];
    for role in
        ["security_officer", "registration_officer", "service_administrator", "system_administrator", "observer"]
    {
        let made = json(&ss, &["api-key", "create", "--name", &format!("as-{role}"), "--role", role]).await;
        let key = dir.join(format!("key-{role}"));
        std::fs::write(&key, made["key"].as_str().unwrap()).unwrap();
        let as_role = Endpoint { key, ..Endpoint::of(&state.join("admin"), server.admin_addr.unwrap()) };
        let user = format!("as-{role} (key {})", made["id"]);
        for (owner, args) in &tasks {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let (ok, _, err) = musubi(&as_role, &args).await;
            let event = format!(
                "POST /api/v1/{}",
                match args[0] {
                    "keys" => "keys".to_string(),
                    "clients" => "clients".to_string(),
                    "group" => format!("clients/{}/local-groups", care.replace(':', "%3A").replace('/', "%2F")),
                    _ => "api-keys".to_string(),
                }
            );
            let audit = std::fs::read_to_string(state.join("admin/audit.log")).unwrap();
            let row = audit
                .lines()
                .rev()
                .map(|l| serde_json::from_str::<Value>(l).unwrap())
                .find(|r| r["user"] == user.as_str() && r["event"] == event.as_str())
                .unwrap_or_else(|| panic!("{role} {args:?}: no audit row for {event}: {audit}"));
            if owner == &role {
                assert!(ok, "{role} may {args:?}: {err}");
                assert_eq!(row["outcome"], "success", "{row}");
            } else {
                assert!(
                    !ok && err.contains("403") && err.contains(&format!("needs the role {owner}")),
                    "{role} {args:?}: {err}"
                );
                assert_eq!(row["outcome"], "refused: role", "{row}");
            }
        }
    }

    // The OpenAPI document: served to any key, naming each operation's roles,
    // and valid by an independent validator (openapi-spec-validator, from PyPI).
    let pem = std::fs::read_to_string(state.join("admin/admin-tls.pem")).unwrap();
    let admin_key = std::fs::read_to_string(state.join("admin/admin-api-key")).unwrap();
    let api = musubi_admin::client::AdminClient::new(
        &format!("https://{}", server.admin_addr.unwrap()),
        musubi_pki::pem_decode("CERTIFICATE", &pem).unwrap(),
        &admin_key,
    );
    let doc = api.get("/api/v1/openapi.json").await.unwrap();
    assert_eq!(doc["paths"]["/api/v1/clients"]["post"]["x-roles"][0], "registration_officer");
    let doc_file = dir.join("openapi.json");
    std::fs::write(&doc_file, serde_json::to_vec_pretty(&doc).unwrap()).unwrap();
    validate_openapi(&doc_file).await;
    // Every documented read answers; a body that is not what an endpoint takes is named in JSON.
    for (path, item) in doc["paths"].as_object().unwrap() {
        if item.get("get").is_some() && !path.contains('{') && path.starts_with("/api/") {
            api.get(path).await.unwrap_or_else(|e| panic!("GET {path}: {e}"));
        }
    }
    let e = api.post("/api/v1/keys", &serde_json::json!({ "role": "root" })).await.unwrap_err();
    assert_eq!(e.status(), Some(422), "{e}");
    assert!(e.to_string().starts_with("role: ") && e.to_string().contains("expected `auth` or `sign`"), "{e}");

    // Making a key decrypts no other key (fuzzing finding admin_json
    // d359b432: each call decrypted every key, so a token of many keys made
    // every key operation slower): a damaged key file leaves key making
    // alone, and is named once that key is used.
    let made = api.post("/api/v1/keys", &serde_json::json!({ "role": "sign", "label": "spare" })).await.unwrap();
    let spare = made["id"].as_str().unwrap().to_string();
    let spare_file = state.join("token/keys").join(format!("{spare}.p8"));
    let kept = std::fs::read(&spare_file).unwrap();
    std::fs::write(&spare_file, b"damaged").unwrap();
    let other = api.post("/api/v1/keys", &serde_json::json!({ "role": "sign", "label": "other" })).await.unwrap();
    api.post(&format!("/api/v1/keys/{}/csr", other["id"].as_str().unwrap()), &serde_json::json!({})).await.unwrap();
    let e = api.post(&format!("/api/v1/keys/{spare}/csr"), &serde_json::json!({})).await.unwrap_err();
    assert!(e.to_string().contains(&format!("{spare}.p8")), "{e}");
    std::fs::write(&spare_file, kept).unwrap();
    let e = api.post("/api/v1/clients", &serde_json::json!({ "cleint": care })).await.unwrap_err();
    assert!(e.to_string().starts_with("cleint: "), "{e}");
    let e = api.get("/api/v1/no-such-thing").await.unwrap_err();
    assert!(e.status() == Some(404) && e.to_string().contains("openapi.json"), "{e}");

    // Each key has a rate: a burst beyond it is told to wait (429), other keys are not.
    let pem = std::fs::read_to_string(state.join("admin/admin-tls.pem")).unwrap();
    let cert = musubi_pki::pem_decode("CERTIFICATE", &pem).unwrap();
    let eager = musubi_admin::client::AdminClient::new(
        &format!("https://{}", server.admin_addr.unwrap()),
        cert,
        created["key"].as_str().unwrap(),
    );
    let mut told_to_wait = 0;
    for _ in 0..(musubi_admin::RATE_BURST as usize * 3) {
        if let Err(e) = eager.get("/api/v1/status").await {
            assert_eq!(e.status(), Some(429), "{e}");
            assert!(e.to_string().contains("retry in"), "{e}");
            told_to_wait += 1;
        }
    }
    assert!(told_to_wait > 0, "a burst beyond the rate is refused");
    assert_eq!(json(&ss, &["status"]).await["registered"], true, "the administrator's key has its own rate");
    json(&ss, &["api-key", "revoke", &created["id"].to_string()]).await;
    let (ok, _, err) = musubi(&observer, &["status"]).await;
    assert!(!ok && err.contains("401"), "a revoked key is refused: {err}");

    // Exit codes scripts rely on, a profile file, and shell completions.
    let run = |args: &[&str], env: &[(&str, &Path)]| {
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_musubi"));
        c.args(args).env("RUST_LOG", "warn").env("HOME", &dir);
        for v in [
            "MUSUBI_SERVER",
            "MUSUBI_SERVER_CERT",
            "MUSUBI_API_KEY_FILE",
            "MUSUBI_API_KEY",
            "MUSUBI_PROFILE",
            "MUSUBI_CONFIG",
        ] {
            c.env_remove(v);
        }
        for (k, v) in env {
            c.env(k, v);
        }
        let out = c.output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let profiles = dir.join("config.toml");
    let admin_dir = state.join("admin");
    std::fs::write(
        &profiles,
        format!(
            "default_profile = \"ss1\"\n[profiles.ss1]\nserver = \"https://{}\"\nserver_cert = {:?}\napi_key_file = {:?}\n\
             [profiles.watcher]\nserver = \"https://{}\"\nserver_cert = {:?}\napi_key_file = {:?}\n\
             [profiles.nowhere]\nserver = \"https://{NET}.99:4000\"\nserver_cert = {:?}\napi_key_file = {:?}\n",
            server.admin_addr.unwrap(), admin_dir.join("admin-tls.pem"), admin_dir.join("admin-api-key"),
            server.admin_addr.unwrap(), admin_dir.join("admin-tls.pem"), dir.join("key-observer"),
            admin_dir.join("admin-tls.pem"), admin_dir.join("admin-api-key"),
        ),
    )
    .unwrap();
    let conf: &[(&str, &Path)] = &[("MUSUBI_CONFIG", &profiles)];
    let (code, out, err) = run(&["status", "--output", "json"], conf);
    assert_eq!(code, Some(0), "the default profile: {err}");
    assert_eq!(serde_json::from_str::<Value>(&out).unwrap()["registered"], true);
    let (code, _, err) = run(&["clients", "add", "SUBSYSTEM:DEMO/GOV/1001/x", "--profile", "watcher"], conf);
    assert_eq!(code, Some(4), "a role lacking: {err}");
    assert!(err.contains("hint: ask a system administrator"), "{err}");
    let (code, _, err) = run(&["status", "--profile", "nowhere"], conf);
    assert_eq!(code, Some(3), "unreachable: {err}");
    let (code, _, err) = run(&["status", "--profile", "nobody"], conf);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("no profile \"nobody\"") && err.contains("ss1, watcher"), "{err}");
    let (code, _, err) = run(&["service", "list", "--client", "SUBSYSTEM:DEMO/GOV/1001/none"], conf);
    assert_eq!(code, Some(5), "not found: {err}");
    let (code, _, err) = run(&["clients", "add", "SUBSYSTEM:DEMO"], conf);
    assert_eq!(code, Some(6), "refused: {err}");
    let (code, _, err) = run(&["status", "--api-key-file"], conf);
    assert_eq!(code, Some(2), "usage: {err}");
    // Flags and the environment win over the profile.
    let (code, _, err) =
        run(&["status", "--profile", "nowhere", "--server", &format!("https://{}", server.admin_addr.unwrap())], conf);
    assert_eq!(code, Some(0), "{err}");
    let (code, script, _) = run(&["completions", "bash"], &[]);
    assert_eq!(code, Some(0));
    assert!(script.contains("_musubi()") && script.contains("api-key") && script.contains("global-group"), "{script}");

    // Text output for people.
    let (ok, out, _) = musubi(&ss, &["clients", "list"]).await;
    assert!(ok && out.contains(&format!("{care}  registered")), "{out}");

    // An address change and a client deletion apply at once, as in X-Road.
    json(&ss, &["address", "ss1.example.org"]).await;
    json(&ss, &["clients", "delete", care]).await;
    let (params, _) = reg.snapshot("").await.unwrap();
    let me = params.directory.servers.iter().find(|s| s.server_code == "ss1").unwrap();
    assert_eq!(me.address.as_deref(), Some("ss1.example.org"));
    assert!(!me.clients.iter().any(|c| c.to_string() == care), "{:?}", me.clients);
    let left = json(&ss, &["clients", "list"]).await;
    assert!(!left.as_array().unwrap().iter().any(|c| c["id"] == care), "{left}");

    // Unregistering the authentication certificate takes the server out of the configuration's trust.
    json(&ss, &["certs", "unregister", &auth_hash]).await;
    let (params, _) = reg.snapshot("").await.unwrap();
    assert!(params.directory.servers.iter().all(|s| s.auth_cert_hashes.is_empty()));
    cs.generate().await.unwrap();
    assert!(server.update_global_conf().await);
    assert_eq!(json(&ss, &["status"]).await["registered"], false);
    let certs = json(&ss, &["keys", "list"]).await["certificates"].clone();
    let auth = certs.as_array().unwrap().iter().find(|c| c["hash"] == auth_hash.as_str()).unwrap().clone();
    assert_eq!(auth["status"], "deletion_in_progress");
    server.shutdown().await;
    cs.shutdown();
}

/// The network a new security server joins, on NET.x: a CA with its OCSP
/// responder and a TSA (NET.5), a central server (NET.8, admin API on 4000)
/// knowing member DEMO/GOV/1001, and the configuration anchor in `dir`.
struct Trust {
    ca: Arc<musubi_pki::DevCa>,
    cs: musubi_central_server::Handle,
    anchor: PathBuf,
    _stops: [tokio::sync::watch::Sender<bool>; 2],
}

async fn trust_network(dir: &Path, net: &str) -> Trust {
    let ca = Arc::new(musubi_pki::DevCa::new("Setup CA").unwrap());
    let (ocsp, ocsp_stop) =
        musubi_pki::http::start_ocsp_responder(ca.clone(), format!("{net}.5:8888").parse().unwrap()).await.unwrap();
    let tsa = Arc::new(musubi_pki::DevTsa::new(&ca, "Setup TSA").unwrap());
    let (tsa_addr, tsa_stop) =
        musubi_pki::http::start_tsa(tsa.clone(), format!("{net}.5:8899").parse().unwrap()).await.unwrap();
    let cs = musubi_central_server::start(musubi_central_server::CentralConf {
        instance: "DEMO".into(),
        state_dir: dir.join("central"),
        database_url: None,
        database_password_file: None,
        conf_listen: format!("{net}.8:8081").parse().unwrap(),
        public_address: format!("{net}.8:8081"),
        generation_interval_secs: 3600,
        expire_after_secs: 600,
        management_listen: Some(format!("{net}.8:4001").parse().unwrap()),
        admin_listen: Some(format!("{net}.8:4000").parse().unwrap()),
    })
    .await
    .unwrap();
    let owner = musubi_protocol::ClientId::member("DEMO", "GOV", "1001").unwrap();
    let reg = &cs.registry;
    reg.add_member_class("GOV", "Government").await.unwrap();
    reg.add_member(&owner, "Demo City").await.unwrap();
    reg.add_ca("Setup CA", ca.cert_der(), &[(format!("http://{ocsp}/"), None)], None).await.unwrap();
    reg.add_tsa("Setup TSA", &format!("http://{tsa_addr}/"), tsa.cert_der()).await.unwrap();
    cs.generate().await.unwrap();
    let anchor = dir.join("anchor.xml");
    std::fs::write(&anchor, cs.anchor().await.unwrap()).unwrap();
    Trust { ca, cs, anchor, _stops: [ocsp_stop, tsa_stop] }
}

/// Runs openapi-spec-validator on `file`; skipped when it is not installed,
/// unless MUSUBI_REQUIRE_PEERS=1 (CI installs it).
async fn validate_openapi(file: &Path) {
    let out = tokio::process::Command::new("python3").args(["-m", "openapi_spec_validator"]).arg(file).output().await;
    let missing = match &out {
        Err(e) => Some(format!("python3: {e}")),
        Ok(o) if String::from_utf8_lossy(&o.stderr).contains("No module named") => {
            Some("the openapi-spec-validator module is not installed".to_string())
        }
        Ok(_) => None,
    };
    if let Some(why) = missing {
        assert!(std::env::var("MUSUBI_REQUIRE_PEERS").as_deref() != Ok("1"), "openapi validator: {why}");
        println!("skipped: OpenAPI validation: {why} (pip install openapi-spec-validator)");
        return;
    }
    let out = out.unwrap();
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && said.contains("OK"), "the OpenAPI document is not valid: {said}");
}

/// One HTTPS request to an admin API; (status, headers, JSON body).
async fn call(
    addr: std::net::SocketAddr,
    cert: &[u8],
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Value,
) -> (u16, hyper::HeaderMap, Value) {
    let mut all = vec![("content-type", "application/json")];
    all.extend_from_slice(headers);
    let payload = if body.is_null() { Vec::new() } else { serde_json::to_vec(&body).unwrap() };
    let (status, h, bytes) = musubi_admin::client::request_with_headers(
        &format!("https://{addr}{path}"),
        cert,
        method,
        &all,
        payload,
        1 << 20,
    )
    .await
    .unwrap();
    (status, h, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

/// A security server as installed on 127.0.NET.2, not set up: only its admin
/// API runs; with its state folder.
async fn fresh_server(name: &str, net: u8) -> (musubi_security_server::SetupHandle, PathBuf) {
    let dir = std::env::temp_dir().join(format!("musubi-cli-ui-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let state = dir.join("state");
    let base: toml::Table = toml::from_str(&format!(
        r#"
        client_proxy_listen = "127.0.{net}.2:8080"
        server_proxy_listen = "127.0.{net}.2:5500"
        ocsp_listen = "127.0.{net}.2:5577"
        admin_listen = "127.0.{net}.2:4000"
        database = "{db}"
        state_dir = "{state}"
        "#,
        db = dir.join("messagelog.sqlite").display(),
        state = state.display(),
    ))
    .unwrap();
    (musubi_security_server::start_setup(base).await.unwrap(), state)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_ui_user_needs_the_console_token_and_sessions_need_their_csrf_token() {
    let (setup, state) = fresh_server("users", 52).await;
    let addr = setup.admin_addr;
    let pem = std::fs::read_to_string(state.join("admin/admin-tls.pem")).unwrap();
    let cert = musubi_pki::pem_decode("CERTIFICATE", &pem).unwrap();
    let token = setup.ui_setup_token.clone().expect("no user yet: a setup token");

    let (status, _, v) = call(addr, &cert, "GET", "/api/v1/setup-state", &[], Value::Null).await;
    assert_eq!(
        (status, v["users_exist"].as_bool(), v["setup_token_pending"].as_bool()),
        (200, Some(false), Some(true))
    );
    let first = |t: &str| serde_json::json!({ "setup_token": t, "username": "admin", "password": "a long passphrase" });
    let (status, _, v) = call(addr, &cert, "POST", "/api/v1/first-user", &[], first("guessed")).await;
    assert_eq!((status, v["field"].as_str()), (403, Some("setup_token")), "{v}");
    let short = serde_json::json!({ "setup_token": token, "username": "admin", "password": "short" });
    let (status, _, v) = call(addr, &cert, "POST", "/api/v1/first-user", &[], short).await;
    assert_eq!((status, v["field"].as_str()), (400, Some("password")), "{v}");
    let (status, headers, v) = call(addr, &cert, "POST", "/api/v1/first-user", &[], first(&token)).await;
    assert_eq!(status, 200, "{v}");
    let set_cookie = headers.get("set-cookie").unwrap().to_str().unwrap().to_string();
    for attribute in ["__Host-musubi-session=", "Secure", "HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(set_cookie.contains(attribute), "{set_cookie}");
    }
    let cookie = set_cookie.split(';').next().unwrap().to_string();
    let csrf = v["csrf_token"].as_str().unwrap().to_string();
    let (status, _, _) = call(addr, &cert, "POST", "/api/v1/first-user", &[], first(&token)).await;
    assert_eq!(status, 409, "only once");

    // The session reads; its changes need the CSRF token.
    let (status, _, v) = call(addr, &cert, "GET", "/api/v1/session", &[("cookie", &cookie)], Value::Null).await;
    assert_eq!((status, v["user"].as_str(), v["csrf_token"].as_str()), (200, Some("admin"), Some(csrf.as_str())));
    let observer = serde_json::json!({ "username": "watcher", "password": "another long one", "roles": ["observer"] });
    let (status, _, v) = call(addr, &cert, "POST", "/api/v1/users", &[("cookie", &cookie)], observer.clone()).await;
    assert_eq!(status, 403, "no CSRF token: {v}");
    assert!(v["error"].as_str().unwrap().contains("CSRF"), "{v}");
    let with_csrf = [("cookie", cookie.as_str()), ("x-csrf-token", csrf.as_str())];
    let (status, _, v) = call(addr, &cert, "POST", "/api/v1/users", &with_csrf, observer).await;
    assert_eq!(status, 200, "{v}");

    // The observer logs in, may read, may not change; failed logins make the next wait.
    let login = |p: &str| serde_json::json!({ "username": "watcher", "password": p });
    let (status, headers, v) = call(addr, &cert, "POST", "/api/v1/login", &[], login("another long one")).await;
    assert_eq!(status, 200, "{v}");
    let watcher = headers.get("set-cookie").unwrap().to_str().unwrap().split(';').next().unwrap().to_string();
    let watcher_csrf = v["csrf_token"].as_str().unwrap().to_string();
    let (status, _, _) = call(addr, &cert, "GET", "/api/v1/status", &[("cookie", &watcher)], Value::Null).await;
    assert_eq!(status, 200);
    let headers = [("cookie", watcher.as_str()), ("x-csrf-token", watcher_csrf.as_str())];
    let (status, _, v) =
        call(addr, &cert, "POST", "/api/v1/keys", &headers, serde_json::json!({ "role": "auth" })).await;
    assert_eq!(status, 403, "{v}");
    assert!(v["error"].as_str().unwrap().contains("security_officer"), "{v}");
    for _ in 0..3 {
        let (status, _, v) = call(addr, &cert, "POST", "/api/v1/login", &[], login("wrong guess")).await;
        assert_eq!((status, v["field"].as_str()), (401, Some("password")), "{v}");
    }
    let (status, headers, v) = call(addr, &cert, "POST", "/api/v1/login", &[], login("another long one")).await;
    assert_eq!(status, 429, "after failures even the right password waits: {v}");
    assert!(headers.contains_key("retry-after"));

    let (status, _, v) = call(addr, &cert, "DELETE", "/api/v1/users/admin", &with_csrf, Value::Null).await;
    assert!(status == 409 && v["error"].as_str().unwrap().contains("last user"), "{v}");

    // Logged out: the cookie is worth nothing.
    let (status, _, _) = call(addr, &cert, "POST", "/api/v1/logout", &with_csrf, Value::Null).await;
    assert_eq!(status, 200);
    let (status, _, v) = call(addr, &cert, "GET", "/api/v1/status", &[("cookie", &cookie)], Value::Null).await;
    assert_eq!(status, 401, "{v}");
    let audit = std::fs::read_to_string(state.join("admin/audit.log")).unwrap();
    for (event, outcome) in [
        ("POST /api/v1/first-user", "success"),
        ("POST /api/v1/users", "refused: CSRF token"),
        ("POST /api/v1/login", "failure: wrong user name or password"),
        ("POST /api/v1/logout", "success"),
    ] {
        assert!(
            audit
                .lines()
                .map(|l| serde_json::from_str::<Value>(l).unwrap())
                .any(|r| r["event"] == event && r["outcome"] == outcome),
            "{event} {outcome}: {audit}"
        );
    }
    assert!(!audit.contains("a long passphrase") && !audit.contains("another long one"), "{audit}");
    setup.shutdown().await;
}

/// Whether the browser tests can run here: node, Debian's chromium and
/// playwright-core (`npm ci --prefix cli/tests/ui`, which `.ci/run` does).
fn browser_missing(ui: &Path) -> Option<String> {
    let chromium = std::env::var("MUSUBI_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    if !Path::new(&chromium).exists() {
        return Some(format!("no chromium at {chromium} (apt-get install chromium)"));
    }
    if !ui.join("node_modules/playwright-core").exists() {
        return Some("playwright-core is not installed (npm ci --prefix cli/tests/ui)".into());
    }
    match std::process::Command::new("node").arg("--version").output() {
        Ok(o) if o.status.success() => None,
        _ => Some("no node".into()),
    }
}

/// The browser tests' folder, or None (having said why) when they cannot run
/// here; under MUSUBI_REQUIRE_PEERS=1 that is a failure.
fn browser_tests() -> Option<PathBuf> {
    let ui = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ui");
    if let Some(why) = browser_missing(&ui) {
        assert!(std::env::var("MUSUBI_REQUIRE_PEERS").as_deref() != Ok("1"), "browser test: {why}");
        println!("skipped: browser test: {why}");
        return None;
    }
    Some(ui)
}

/// The command running browser test `script` against the UI at `addr` with
/// `env`; screenshots go to target/ui-screenshots.
fn browser_command(
    ui: &Path,
    script: &str,
    addr: std::net::SocketAddr,
    env: &[(&str, &str)],
) -> tokio::process::Command {
    let shots = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/ui-screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let mut node = tokio::process::Command::new("node");
    node.arg(ui.join(script)).env("MUSUBI_UI_URL", format!("https://{addr}")).env("MUSUBI_UI_SHOTS", &shots);
    for (k, v) in env {
        node.env(k, v);
    }
    node.kill_on_drop(true);
    node
}

/// Runs the browser test `script` against the UI at `addr` with `env`;
/// screenshots go to target/ui-screenshots (artefacts, never committed).
/// Returns what it printed, once it has printed `ok: `.
async fn browser(ui: &Path, script: &str, addr: std::net::SocketAddr, env: &[(&str, &str)]) -> String {
    let out = browser_command(ui, script, addr, env).output().await.unwrap();
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && said.contains("ok: "), "{script} failed:\n{said}");
    said
}

/// A demo network on 127.0.NET.x whose servers register with its central server.
async fn ui_network(name: &str, net: u8, auto_approve: bool) -> musubi::demo::Network {
    let dir = std::env::temp_dir().join(format!("musubi-cli-ui-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let ip = |n| std::net::Ipv4Addr::new(127, 0, net, n);
    let central = musubi::demo::CentralOptions {
        listen: format!("127.0.{net}.8:8081").parse().unwrap(),
        management_listen: format!("127.0.{net}.8:4001").parse().unwrap(),
        admin_listen: format!("127.0.{net}.8:4000").parse().unwrap(),
        generation_interval_secs: 3600,
        expire_after_secs: 600,
        register: true,
        auto_approve,
    };
    let opts = musubi::demo::Options {
        ips: [ip(2), ip(3), ip(4)],
        pki_ip: ip(5),
        central: Some(central),
        configuration_download_secs: 60,
        // Each record is time-stamped before its response is released: exportable at once.
        timestamp_immediately: true,
        ..musubi::demo::Options::default()
    };
    musubi::demo::Network::start(&dir, opts).await.expect("demo network starts")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_sets_up_the_first_user_and_logs_in_with_the_web_ui_in_chromium() {
    let Some(ui) = browser_tests() else { return };
    let (setup, _) = fresh_server("browser", 53).await;
    let token = setup.ui_setup_token.clone().unwrap();
    browser(&ui, "first_run.mjs", setup.admin_addr, &[("MUSUBI_UI_SETUP_TOKEN", &token)]).await;
    let shots = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/ui-screenshots");
    for shot in ["setup-wizard-ja.png", "dashboard-ja.png", "dashboard-en.png", "login-wait-en.png"] {
        assert!(shots.join(shot).metadata().is_ok_and(|m| m.len() > 1000), "{shot} written");
    }
    setup.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registration_officer_approves_a_request_in_the_central_servers_web_ui() {
    let Some(ui) = browser_tests() else { return };
    let net = ui_network("central", 54, false).await;
    let (cs, _) = net.central.as_ref().unwrap();
    let (user, password) = net.facts.web_ui_login.clone().expect("the demo made a web UI user");
    let login = [("MUSUBI_UI_USER", user.as_str()), ("MUSUBI_UI_PASSWORD", password.as_str())];
    browser(&ui, "central_approve.mjs", cs.admin_addr.unwrap(), &login).await;
    // The registry agrees, and names the person who decided.
    let approved = cs.registry.requests(Some(musubi_central_server::requests::Status::Approved)).await.unwrap();
    assert_eq!(approved.len(), 1, "{approved:?}");
    assert_eq!(approved[0].decided_by.as_deref(), Some(user.as_str()));
    net.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_administrator_adds_a_wsdl_and_grants_access_in_the_web_ui() {
    use http_body_util::BodyExt as _;
    let Some(ui) = browser_tests() else { return };
    let net = ui_network("services", 55, true).await;
    let ip = |n| std::net::Ipv4Addr::new(127, 0, 55, n);
    let (user, password) = net.facts.web_ui_login.clone().unwrap();
    let login = [("MUSUBI_UI_USER", user.as_str()), ("MUSUBI_UI_PASSWORD", password.as_str())];
    let (consumer, provider, ..) = musubi::demo::ids();
    let wsdl = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<wsdl:definitions xmlns:wsdl="http://schemas.xmlsoap.org/wsdl/" xmlns:soap="http://schemas.xmlsoap.org/wsdl/soap/"
    xmlns:xrd="http://x-road.eu/xsd/xroad.xsd" xmlns:tns="http://example.org/home" targetNamespace="http://example.org/home">
  <wsdl:binding name="homeBinding" type="tns:homePortType">
    <soap:binding style="document" transport="http://schemas.xmlsoap.org/soap/http"/>
    <wsdl:operation name="getHumidity"><xrd:version>v1</xrd:version></wsdl:operation>
  </wsdl:binding>
  <wsdl:service name="home">
    <wsdl:port binding="tns:homeBinding" name="homePort"><soap:address location="http://{}:8090/"/></wsdl:port>
  </wsdl:service>
</wsdl:definitions>
"#,
        ip(4)
    );
    let grant = consumer.to_string();
    let publish = [login[0], login[1], ("MUSUBI_UI_WSDL", wsdl.as_str()), ("MUSUBI_UI_GRANT", grant.as_str())];
    browser(&ui, "provider_publish.mjs", net.provider.admin_addr.unwrap(), &publish).await;

    // The consumer's information system calls the service the UI published.
    let service = musubi_protocol::ServiceId::new(provider, "getHumidity", Some("v1")).unwrap();
    let cp = net.consumer.client_proxy_addr;
    let tcp = tokio::net::TcpStream::connect(cp).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tcp)).await.unwrap();
    tokio::spawn(conn);
    let req = hyper::Request::post("/")
        .header("host", cp.to_string())
        .header("content-type", "text/xml; charset=UTF-8")
        .body(http_body_util::Full::new(bytes::Bytes::from(musubi::demo::example_request(&service, "ui-1"))))
        .unwrap();
    let resp = sender.send_request(req).await.unwrap();
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));

    // The exchange is found in the consumer's message log and its containers downloaded.
    let find = [login[0], login[1], ("MUSUBI_UI_QUERY_ID", "ui-1")];
    let said = browser(&ui, "log_download.mjs", net.consumer.admin_addr.unwrap(), &find).await;
    let zip = said.lines().find_map(|l| l.strip_prefix("ok: downloaded ")).unwrap();
    let files = musubi_protocol::asic::read_zip(&std::fs::read(zip).unwrap(), &Default::default()).unwrap();
    let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["ui-1-request.asice", "ui-1-response.asice"]);
    net.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_security_officer_sets_up_and_registers_the_server_in_the_web_ui() {
    use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _};
    let Some(ui) = browser_tests() else { return };
    let (setup, state) = fresh_server("keys", 56).await;
    let Trust { ca, cs, anchor, _stops } = trust_network(state.parent().unwrap(), "127.0.56").await;
    let token = setup.ui_setup_token.clone().unwrap();
    let ui_addr = setup.admin_addr;
    // What the binary does: once every step before registration is done, the
    // setup API stops and the server starts (the browser keeps its session).
    let mut switch = Some(tokio::spawn(async move {
        setup.wait_complete().await;
        let conf = setup.server_conf().unwrap();
        setup.shutdown().await;
        musubi_security_server::start(conf).await.unwrap()
    }));

    // The browser asks on its stdout for what a person gets elsewhere: the
    // CA's certificate for a CSR, the central server's approval.
    let anchor = anchor.to_str().unwrap().to_string();
    let env = [("MUSUBI_UI_SETUP_TOKEN", token.as_str()), ("MUSUBI_UI_ANCHOR", anchor.as_str())];
    let mut node = browser_command(&ui, "keys_setup.mjs", ui_addr, &env)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut answers = node.stdin.take().unwrap();
    let mut lines = tokio::io::BufReader::new(node.stdout.take().unwrap()).lines();
    let (mut said, mut server) = (String::new(), None);
    while let Some(line) = lines.next_line().await.unwrap() {
        said.push_str(&line);
        said.push('\n');
        let answer = if let Some(rest) = line.strip_prefix("csr ") {
            let (role, path) = rest.split_once(' ').unwrap();
            let usage = if role == "auth" { musubi_pki::Usage::Auth } else { musubi_pki::Usage::Sign };
            let csr = musubi_pki::pem_decode("CERTIFICATE REQUEST", &std::fs::read_to_string(path).unwrap()).unwrap();
            let cert = format!("{path}.crt");
            std::fs::write(&cert, musubi_pki::pem("CERTIFICATE", &ca.sign_csr(&csr, usage).unwrap())).unwrap();
            cert
        } else if line == "approve" {
            let pending = cs.registry.requests(Some(musubi_central_server::requests::Status::Pending)).await.unwrap();
            assert_eq!(pending.len(), 1, "{pending:?}");
            assert!(
                matches!(&pending[0].request, musubi_protocol::management::Request::AuthCertReg { server, .. }
                    if server.to_string() == "SERVER:DEMO/GOV/1001/ss1"),
                "{pending:?}"
            );
            cs.registry.approve(pending[0].id, "officer").await.unwrap();
            cs.generate().await.unwrap();
            let running: &musubi_security_server::Handle = match &server {
                Some(s) => s,
                None => server.insert(switch.take().unwrap().await.unwrap()),
            };
            assert!(running.update_global_conf().await);
            "approved".to_string()
        } else {
            continue;
        };
        answers.write_all(format!("{answer}\n").as_bytes()).await.unwrap();
    }
    let out = node.wait_with_output().await.unwrap();
    said.push_str(&String::from_utf8_lossy(&out.stderr));
    if let Some(switch) = switch.take().filter(|s| s.is_finished()) {
        said.push_str(&format!("\nthe server's start: {:?}", switch.await.err()));
    }
    assert!(out.status.success() && said.contains("ok: "), "keys_setup.mjs failed:\n{said}");
    server.expect("the server started and was approved").shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_networks_governors_keep_members_servers_groups_and_trust_in_the_central_web_ui() {
    let Some(ui) = browser_tests() else { return };
    let net = ui_network("governors", 57, true).await;
    let (cs, _) = net.central.as_ref().unwrap();
    let (user, password) = net.facts.web_ui_login.clone().unwrap();
    let login = [("MUSUBI_UI_USER", user.as_str()), ("MUSUBI_UI_PASSWORD", password.as_str())];
    let said = browser(&ui, "central_pages.mjs", cs.admin_addr.unwrap(), &login).await;

    // The registry holds what the UI did; the anchor is one a new server can use.
    let (params, _) = cs.registry.snapshot("").await.unwrap();
    let town = params.directory.members.iter().find(|m| m.id.to_string() == "MEMBER:DEMO/GOV/9999").unwrap();
    assert_eq!((town.name.as_str(), town.subsystems.as_slice()), ("Test Town", &["care".to_string()][..]));
    let group = params.directory.groups.iter().find(|g| g.code == "care-providers").unwrap();
    assert_eq!(group.members.iter().map(ToString::to_string).collect::<Vec<_>>(), ["SUBSYSTEM:DEMO/GOV/9999/care"]);
    assert!(params.directory.servers.iter().all(|s| s.maintenance.is_none()), "maintenance ended");
    assert!(!params.tsas.iter().any(|t| t.name == "Other TSA"), "the bad TSA was refused");
    let anchor = said.lines().find_map(|l| l.strip_prefix("ok: anchor ")).unwrap();
    let anchor = musubi_protocol::globalconf::parse_anchor(&std::fs::read(anchor).unwrap()).unwrap();
    assert_eq!(anchor.instance, "DEMO");
    net.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_home_device_operator_publishes_a_device_in_the_adapters_web_ui_and_with_the_cli() {
    let Some(ui) = browser_tests() else { return };
    let dir = std::env::temp_dir().join(format!("musubi-cli-ui-devices-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let ip = |n| std::net::Ipv4Addr::new(127, 0, 58, n);
    let opts = musubi::demo::Options {
        ips: [ip(2), ip(3), ip(4)],
        pki_ip: ip(5),
        adapter: true,
        adapter_ips: [ip(6), ip(7)],
        echonet_group: std::net::Ipv4Addr::new(239, 255, 58, 1),
        ..musubi::demo::Options::default()
    };
    let net = musubi::demo::Network::start(&dir, opts).await.expect("demo network starts");
    let adapter = net.adapter.as_ref().unwrap();
    let lock = adapter.registry.list().into_iter().find(|d| d.class() == 0x026F).expect("the demo's door lock");
    assert!(!lock.approved, "the demo leaves the lock unpublished");
    let (user, password) = net.facts.web_ui_login.clone().unwrap();
    let env = [
        ("MUSUBI_UI_USER", user.as_str()),
        ("MUSUBI_UI_PASSWORD", password.as_str()),
        ("MUSUBI_UI_DEVICE", lock.id.as_str()),
    ];
    browser(&ui, "devices.mjs", adapter.admin_addr, &env).await;
    assert!(adapter.registry.get(&lock.id).unwrap().approved, "published through the UI");

    // The same through `musubi devices`, against the adapter's admin API.
    let ep = Endpoint::of(&adapter.admin_dir, adapter.admin_addr);
    let list = json(&ep, &["devices", "list"]).await;
    assert!(list.as_array().unwrap().iter().any(|d| d["id"] == lock.id.as_str() && d["approved"] == true), "{list}");
    let revoked = json(&ep, &["devices", "revoke", &lock.id]).await;
    assert_eq!(revoked["approved"], false);
    assert!(!adapter.registry.get(&lock.id).unwrap().approved);
    let (ok, _, err) = musubi(&ep, &["devices", "approve", "no-such-device"]).await;
    assert!(!ok && err.contains("no device"), "{err}");
    let trail = adapter.registry.approvals(10).await.unwrap();
    assert_eq!((trail[0].2.as_str(), trail[0].1), ("administrator", false), "the API key's name: {trail:?}");
    assert_eq!((trail[1].2.as_str(), trail[1].1), (user.as_str(), true), "the UI user's name: {trail:?}");
    net.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_of_every_web_ui_works_in_japanese_and_english() {
    let Some(ui) = browser_tests() else { return };
    let dir = std::env::temp_dir().join(format!("musubi-cli-ui-every-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let ip = |n| std::net::Ipv4Addr::new(127, 0, 59, n);
    let central = musubi::demo::CentralOptions {
        listen: format!("{}:8081", ip(8)).parse().unwrap(),
        management_listen: format!("{}:4001", ip(8)).parse().unwrap(),
        admin_listen: format!("{}:4000", ip(8)).parse().unwrap(),
        generation_interval_secs: 3600,
        expire_after_secs: 600,
        register: true,
        auto_approve: true,
    };
    let opts = musubi::demo::Options {
        ips: [ip(2), ip(3), ip(4)],
        pki_ip: ip(5),
        central: Some(central),
        adapter: true,
        adapter_ips: [ip(6), ip(7)],
        echonet_group: std::net::Ipv4Addr::new(239, 255, 59, 1),
        ..musubi::demo::Options::default()
    };
    let net = musubi::demo::Network::start(&dir, opts).await.expect("demo network starts");
    let (user, password) = net.facts.web_ui_login.clone().unwrap();
    let uis = [
        ("security-server", net.provider.admin_addr.unwrap()),
        ("central-server", net.central.as_ref().unwrap().0.admin_addr.unwrap()),
        ("adapter", net.adapter.as_ref().unwrap().admin_addr),
    ];
    for (name, addr) in uis {
        let env =
            [("MUSUBI_UI_USER", user.as_str()), ("MUSUBI_UI_PASSWORD", password.as_str()), ("MUSUBI_UI_NAME", name)];
        let said = browser(&ui, "every_page.mjs", addr, &env).await;
        assert!(said.contains("pages in two languages"), "{said}");
    }
    net.shutdown().await;
}
