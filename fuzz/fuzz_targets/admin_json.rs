//! The security server's admin API (JSON bodies and path parameters) as an
//! operator's tools send them: a demo network runs in the fuzzing process
//! (on 127.77.X.x), and each input is one HTTPS call to an endpoint that
//! takes a body. Nothing an input holds may make the server answer 500 or
//! drop the connection, and the server keeps answering its status.
//!
//! Input: first byte chooses the endpoint, the bytes up to the separator are
//! its path parameter (percent-encoded as the CLI does), the rest the body.
//! Endpoints that make the server fetch a URL or call the central server
//! (service descriptions, registration, address change) are left out: the
//! fuzzer must only ever reach loopback.
#![no_main]

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use libfuzzer_sys::fuzz_target;
use musubi::demo::{Network, Options};

struct Api {
    runtime: tokio::runtime::Runtime,
    url: String,
    pinned: Vec<u8>,
    /// Authorization headers of keys with every role, used in turn: each
    /// key may make 20 calls a second, faster than one fuzzer calls.
    auth: Vec<String>,
    next: AtomicUsize,
    _network: Network,
    _dir: std::path::PathBuf,
}

/// (method, path with `{}` for the parameter, default parameter).
const ENDPOINTS: &[(&str, &str, &str)] = &[
    ("POST", "/api/v1/keys", ""),
    ("POST", "/api/v1/keys/{}/csr", "1"),
    ("POST", "/api/v1/certificates", ""),
    ("POST", "/api/v1/clients", ""),
    ("PATCH", "/api/v1/services/{}", "SERVICE:DEMO/COM/2002/home/getRoomTemperature"),
    ("POST", "/api/v1/services/{}/access-rights", "SERVICE:DEMO/COM/2002/home/getRoomTemperature"),
    ("POST", "/api/v1/clients/{}/local-groups", "SUBSYSTEM:DEMO/COM/2002/home"),
    ("POST", "/api/v1/clients/{}/local-groups/fuzzers/members", "SUBSYSTEM:DEMO/COM/2002/home"),
    ("POST", "/api/v1/service-descriptions/{}/disable", "1"),
    ("POST", "/api/v1/initialization", ""),
    ("POST", "/api/v1/api-keys", ""),
];

fn percent(s: &[u8]) -> String {
    s.iter()
        .map(|&b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[allow(clippy::expect_used)]
fn api() -> &'static Api {
    static API: OnceLock<Api> = OnceLock::new();
    API.get_or_init(|| {
        let runtime =
            tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("a runtime");
        // One run at a time in a checkout: its state is left in fuzz/target
        // for a look after a finding, and replaced by the next. Its addresses
        // are 127.77.X.n with X from the process id, so that runs of other
        // checkouts (a CI clone's smoke pass) are very unlikely to meet it.
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/admin-json-network");
        let _ = std::fs::remove_dir_all(&dir);
        let net = u8::try_from(std::process::id() % 250).unwrap_or(0) + 1;
        let ip = |n| Ipv4Addr::new(127, 77, net, n);
        let opts = Options { ips: [ip(2), ip(3), ip(4)], pki_ip: ip(5), ..Options::default() };
        let network = runtime.block_on(Network::start(&dir, opts)).expect("the demo network starts");
        let admin_dir = network.provider.state_dir().join("admin");
        let addr: SocketAddr = network.provider.admin_addr.expect("an admin API");
        let pem = std::fs::read_to_string(admin_dir.join("admin-tls.pem")).expect("the admin certificate");
        let pinned = musubi_pki::pem_decode("CERTIFICATE", &pem).expect("PEM");
        let key = std::fs::read_to_string(admin_dir.join("admin-api-key")).expect("the API key");
        let mut api = Api {
            runtime,
            url: format!("https://{addr}"),
            pinned,
            auth: vec![format!("X-Road-ApiKey token={}", key.trim())],
            next: AtomicUsize::new(0),
            _network: network,
            _dir: dir,
        };
        let roles = r#"["security_officer","registration_officer","service_administrator","system_administrator"]"#;
        for n in 0..4 {
            let body = format!(r#"{{"name":"fuzz-{n}","roles":{roles}}}"#);
            let (status, answer) = call(&api, "POST", "/api/v1/api-keys", body.as_bytes());
            assert_eq!(status, 200, "an API key for the fuzzer: {answer}");
            let json: serde_json::Value = serde_json::from_str(&answer).expect("JSON");
            let key = json["key"].as_str().expect("a key");
            api.auth.push(format!("X-Road-ApiKey token={key}"));
        }
        api
    })
}

fn call(api: &Api, method: &str, path: &str, body: &[u8]) -> (u16, String) {
    let auth = &api.auth[api.next.fetch_add(1, Ordering::Relaxed) % api.auth.len()];
    let headers = [("authorization", auth.as_str()), ("content-type", "application/json")];
    let url = format!("{}{path}", api.url);
    let answer = api.runtime.block_on(musubi_admin::client::request(
        &url,
        &api.pinned,
        method,
        &headers,
        body.to_vec(),
        1 << 20,
    ));
    match answer {
        Ok((status, bytes)) => (status, String::from_utf8_lossy(&bytes).into_owned()),
        Err(e) => panic!("{method} {path}: the admin API did not answer: {e}"),
    }
}

fuzz_target!(
    init: {
        let _ = api();
    },
    |data: &[u8]| {
        let api = api();
        let [head, body] = musubi_fuzz::split(data, 2)[..] else { return };
        let Some((&choice, param)) = head.split_first() else { return };
        let (method, template, default) = ENDPOINTS[usize::from(choice) % ENDPOINTS.len()];
        let param = if param.is_empty() { percent(default.as_bytes()) } else { percent(param) };
        let path = template.replace("{}", &param);
        let (status, answer) = call(api, method, &path, body);
        assert_ne!(status, 500, "{method} {path} answered 500: {answer}");
        if usize::from(choice) % 16 == 0 {
            let (status, answer) = call(api, "GET", "/api/v1/status", b"");
            assert_eq!(status, 200, "the server stopped answering its status: {answer}");
        }
    }
);
