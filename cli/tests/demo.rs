//! `musubi demo` as a person runs it: start the binary, take the curl command
//! it prints, make that call, and stop it with Ctrl-C (SIGINT).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_prints_a_curl_command_that_returns_a_signed_response_with_request_hash() {
    let dir = std::env::temp_dir().join(format!("musubi-demo-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut child = Command::new(env!("CARGO_BIN_EXE_musubi"))
        .args(["demo", "--dir"])
        .arg(&dir)
        // Everything logged, to look for secrets in it at the end.
        .env("RUST_LOG", "debug")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("musubi demo starts");
    // If an assertion fails, the demo must not outlive the test (it holds the real ports).
    struct KillOnDrop(u32);
    impl Drop for KillOnDrop {
        fn drop(&mut self) {
            let _ = Command::new("kill").args(["-KILL", &self.0.to_string()]).status();
        }
    }
    let guard = KillOnDrop(child.id());
    // Readiness: the demo prints the curl command only once both servers listen.
    let stderr = child.stderr.take().unwrap();
    let log = std::thread::spawn(move || {
        let mut log = String::new();
        std::io::Read::read_to_string(&mut BufReader::new(stderr), &mut log).unwrap();
        log
    });
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut printed = Vec::new();
    let curl = loop {
        let line = rx.recv_timeout(Duration::from_secs(120)).expect("demo printed its curl command");
        if line.trim_start().starts_with("curl ") {
            break line;
        }
        printed.push(line);
    };
    let printed = printed.join("\n");
    assert!(printed.contains("live OCSP"), "the demo says it runs with live OCSP:\n{printed}");
    assert!(printed.contains("CSRs signed by the dev CA"), "{printed}");
    assert!(
        printed.contains("registered its authentication certificate and client through the central server"),
        "{printed}"
    );
    // The web UIs and the demo user's credentials, which log in.
    for server in ["consumer", "provider", "central"] {
        assert!(printed.contains(&format!("web UI ({server:<8})")), "{printed}");
    }
    let login = printed.lines().find(|l| l.contains("web UI login")).expect("the demo prints the UI login");
    let words: Vec<&str> = login.split_whitespace().collect();
    let at = |w: &str| words[words.iter().position(|x| *x == w).unwrap() + 1];
    let (user, password) = (at("user"), at("password"));
    let consumer_ui =
        printed.lines().find(|l| l.contains("web UI (consumer")).unwrap().split_whitespace().last().unwrap();
    let pem = std::fs::read_to_string(dir.join("consumer/state/admin/admin-tls.pem")).unwrap();
    let (status, body) = musubi_admin::client::request(
        &format!("{consumer_ui}api/v1/login"),
        &musubi_pki::pem_decode("CERTIFICATE", &pem).unwrap(),
        "POST",
        &[("content-type", "application/json")],
        serde_json::to_vec(&serde_json::json!({ "username": user, "password": password })).unwrap(),
        1 << 16,
    )
    .await
    .unwrap();
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert!(
        !dir.join("global-conf.toml").exists(),
        "the demo writes no trust file: trust comes from the central server"
    );
    let anchor = std::fs::read(dir.join("anchor.xml")).expect("the demo exports the central server's anchor");
    assert!(String::from_utf8_lossy(&anchor).contains("<instanceIdentifier>DEMO</instanceIdentifier>"));
    let words: Vec<&str> = curl.split_whitespace().collect();
    let url = words.iter().find(|w| w.starts_with("http://")).expect("curl command has a URL");
    let file = words.iter().find_map(|w| w.strip_prefix('@')).expect("curl command sends a file");
    let body = std::fs::read(file).expect("request file exists");
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.join("demo.json")).unwrap()).unwrap();
    assert_eq!(json["client_proxy_url"].as_str(), Some(*url));

    let text = post(url, body).await;
    assert!(text.contains("getRoomTemperatureResponse"), "{text}");

    // The adapter's commands: read the room temperature, set the target temperature.
    let mut adapter_calls = Vec::new();
    while adapter_calls.len() < 2 {
        let line = rx.recv_timeout(Duration::from_secs(30)).expect("demo printed the adapter's curl commands");
        if line.trim_start().starts_with("curl ") {
            adapter_calls.push(line);
        }
    }
    let mut answers = Vec::new();
    for call in &adapter_calls {
        let words: Vec<&str> = call.split_whitespace().collect();
        let url = words.iter().find(|w| w.starts_with("http://")).unwrap();
        let file = words.iter().find_map(|w| w.strip_prefix('@')).unwrap();
        answers.push(post(url, std::fs::read(file).unwrap()).await);
    }
    assert!(
        answers[0].contains("name=\"roomTemperature\"") && answers[0].contains("<value unit=\"Celsius\">"),
        "{}",
        answers[0]
    );
    assert!(answers[0].contains("requestHash algorithmId="), "{}", answers[0]);
    assert!(answers[1].contains("name=\"targetTemperature\""), "{}", answers[1]);
    assert!(answers[1].contains("<value unit=\"Celsius\">24</value>"), "{}", answers[1]);

    // The printed publish, export, verify and status commands work.
    let mut commands = std::collections::BTreeMap::new();
    while !["adapter", "devices", "log", "verify", "status"].iter().all(|c| commands.contains_key(*c)) {
        let line = rx.recv_timeout(Duration::from_secs(30)).expect("demo printed its musubi commands");
        if let Some(cmd) = line.trim_start().strip_prefix("cargo run -p musubi -- ") {
            let words: Vec<String> = cmd.split_whitespace().map(str::to_owned).collect();
            commands.insert(words[0].clone(), words);
        }
    }
    let cli_log = std::cell::RefCell::new(String::new());
    let musubi = |args: &[String]| {
        let out = Command::new(env!("CARGO_BIN_EXE_musubi")).args(args).env("RUST_LOG", "debug").output().unwrap();
        cli_log.borrow_mut().push_str(&String::from_utf8_lossy(&out.stderr));
        out
    };
    // The adapter was published at start; published again, its description is refreshed.
    let mut publish = commands["adapter"].clone();
    publish.extend(["--output".to_string(), "json".to_string()]);
    let published = musubi(&publish);
    assert!(published.status.success(), "{}", String::from_utf8_lossy(&published.stderr));
    let published: serde_json::Value = serde_json::from_slice(&published.stdout).unwrap();
    assert_eq!(published["action"], "refreshed", "{published}");
    let services: Vec<&str> = published["services"].as_array().unwrap().iter().map(|s| s.as_str().unwrap()).collect();
    assert!(services.iter().any(|s| s.ends_with("/getProperties/v1")), "{services:?}");
    assert_eq!(published["granted"][0], json["client"]);
    // The printed devices command lists the home's devices; the lock waits for approval.
    let mut devices = commands["devices"].clone();
    devices.extend(["--output".to_string(), "json".to_string()]);
    let listed = musubi(&devices);
    assert!(listed.status.success(), "{}", String::from_utf8_lossy(&listed.stderr));
    let listed: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    let lock = listed.as_array().unwrap().iter().find(|d| d["deviceType"] == "electricLock").expect("the lock");
    assert_eq!(lock["approved"], false, "{lock}");
    let status = commands["status"].clone();
    // The printed status command reaches the consumer's admin API.
    let answer = musubi(&status);
    let text = String::from_utf8_lossy(&answer.stdout).into_owned();
    assert!(answer.status.success() && text.contains("registered true"), "{text}");
    // The same containers through the admin API (the administrator's key).
    let out = std::env::temp_dir().join(format!("musubi-demo-api-export-{}", std::process::id()));
    let mut via_api: Vec<String> =
        ["log", "export", "--query-id", "demo-query-1", "--out"].iter().map(|s| s.to_string()).collect();
    via_api.push(out.display().to_string());
    via_api.extend(status[1..].iter().cloned());
    let exported = musubi(&via_api);
    assert!(exported.status.success(), "{}", String::from_utf8_lossy(&exported.stderr));
    let mut files: Vec<String> =
        std::fs::read_dir(&out).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    files.sort();
    assert_eq!(files, ["demo-query-1-request.asice", "demo-query-1-response.asice"]);
    let _ = std::fs::remove_dir_all(&out);
    let exported = musubi(&commands["log"]);
    assert!(exported.status.success(), "{}", String::from_utf8_lossy(&exported.stderr));
    let verified = musubi(&commands["verify"]);
    let text = String::from_utf8_lossy(&verified.stdout).into_owned();
    assert!(
        verified.status.success() && text.starts_with("valid:"),
        "{text}{}",
        String::from_utf8_lossy(&verified.stderr)
    );

    let status = Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let exit = child.wait().unwrap();
    std::mem::forget(guard);
    assert!(exit.success(), "demo did not stop cleanly on Ctrl-C: {exit:?}");

    // No secret the run used is in anything it logged: the servers' log at
    // debug level, the commands' own, and the log files the servers wrote.
    let mut logs =
        vec![("the demo's log".to_string(), log.join().unwrap()), ("the commands' log".into(), cli_log.take())];
    let mut secrets = vec![("the web UI password".to_string(), password.to_string())];
    for file in musubi_security_server::backup::files_under(&dir).unwrap() {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        let text = || std::fs::read_to_string(&file).unwrap().trim().to_string();
        match name.as_str() {
            "pin" => secrets.push((format!("the token PIN in {}", file.display()), text())),
            "admin-api-key" => secrets.push((format!("the API key in {}", file.display()), text())),
            _ if name.ends_with(".log") => logs.push((file.display().to_string(), text())),
            _ => {}
        }
    }
    assert!(secrets.len() >= 5 && logs.len() >= 4, "{secrets:?}\n{:?}", logs.iter().map(|l| &l.0).collect::<Vec<_>>());
    assert!(logs[0].1.lines().count() > 100, "the demo logged at debug level:\n{}", logs[0].1);
    for (place, text) in &logs {
        for (what, secret) in &secrets {
            assert!(secret.len() >= 16, "{what} is long enough not to occur by chance");
            assert!(!text.contains(secret.as_str()), "{what} is in {place}");
        }
        assert!(!text.contains("PRIVATE KEY"), "a private key is in {place}");
        for line in text.lines().filter(|l| l.contains("setup token")) {
            assert!(line.contains("the setup token in "), "{place}: only the setup token's file is named: {line}");
        }
    }
}

/// Every file under `dir`.
/// POSTs a SOAP request to `url` and returns the answer, which must be HTTP 200.
async fn post(url: &str, body: Vec<u8>) -> String {
    let addr = url.trim_start_matches("http://").trim_end_matches('/');
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await.unwrap();
    tokio::spawn(conn);
    let req = hyper::Request::post("/")
        .header("host", addr)
        .header("content-type", "text/xml; charset=UTF-8")
        .body(Full::new(Bytes::from(body)))
        .unwrap();
    let resp = sender.send_request(req).await.unwrap();
    let status = resp.status();
    let text = String::from_utf8(resp.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap();
    assert_eq!(status, 200, "{text}");
    text
}
