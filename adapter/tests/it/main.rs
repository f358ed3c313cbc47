//! Integration tests of the adapter: the codec against the conformance
//! vectors, the transport against fake devices, and a simulated home of
//! several nodes on loopback addresses, each test on its own 127.1.N.x
//! addresses and its own multicast group so that tests run in parallel.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod frames;
mod home;
mod hostile;
mod properties;
mod pychonet;
mod transport;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use musubi_adapter::net::{Cidr, NetConfig};
use musubi_adapter::simulate::{HomeConfig, NodeConfig};
use musubi_adapter::{AdapterConfig, DiscoveryConfig, Handle, PacingFile};

/// 127.1.`net`.`host`.
pub(crate) fn ip(net: u8, host: u8) -> Ipv4Addr {
    Ipv4Addr::new(127, 1, net, host)
}

/// A fresh folder.
pub(crate) fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("musubi-adapter-it-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Fast pacing for tests (the rules are the same; the gaps are shorter).
pub(crate) fn fast_pacing() -> PacingFile {
    PacingFile { min_gap_ms: 20, response_timeout_ms: 500, retry_backoff_ms: 100, ..PacingFile::default() }
}

/// The adapter's configuration on network `net` (address .1, group 239.255.1.`net`).
pub(crate) fn adapter_conf(net: u8, state_dir: PathBuf) -> AdapterConfig {
    AdapterConfig {
        state_dir,
        provider_listen: SocketAddr::new(ip(net, 1).into(), 0),
        admin_listen: SocketAddr::new(ip(net, 1).into(), 0),
        max_devices: 1000,
        net: NetConfig {
            bind: ip(net, 1),
            multicast_group: Ipv4Addr::new(239, 255, 1, net),
            allow: vec![Cidr { addr: IpAddr::V4(Ipv4Addr::new(127, 1, net, 0)), prefix: 24 }],
            ..NetConfig::default()
        },
        pacing: fast_pacing(),
        discovery: DiscoveryConfig {
            window_ms: 1000,
            interval_secs: 3600,
            liveness_secs: 3600,
            announce_delay_ms: 100,
            answer_delay_ms: 100,
            nodes: vec![],
        },
        webhooks: Default::default(),
        manual_devices: vec![],
        definitions_dir: None,
    }
}

/// A simulated home on network `net`: one node per entry, at .2, .3, …
pub(crate) fn home_conf(net: u8, nodes: &[&[&str]]) -> HomeConfig {
    HomeConfig {
        nodes: nodes
            .iter()
            .enumerate()
            .map(|(i, classes)| NodeConfig {
                address: ip(net, 2 + i as u8),
                devices: classes.iter().map(|c| c.to_string()).collect(),
            })
            .collect(),
        tick_secs: 0,
        max_answer_delay_ms: 200,
        max_announce_delay_ms: 100,
        port: musubi_adapter::net::PORT,
        multicast_group: Ipv4Addr::new(239, 255, 1, net),
        tcp: false,
    }
}

/// Starts an adapter.
pub(crate) async fn adapter(conf: AdapterConfig) -> Handle {
    musubi_adapter::start(conf).await.expect("adapter starts")
}

/// An HTTP reply.
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) body: String,
}

impl Reply {
    /// The SOAP faultcode, if any.
    pub(crate) fn fault_code(&self) -> Option<&str> {
        let start = self.body.find("<faultcode>")? + "<faultcode>".len();
        let end = start + self.body[start..].find("</faultcode>")?;
        Some(&self.body[start..end])
    }
}

/// One HTTP request.
pub(crate) async fn http(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Reply {
    let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await.unwrap();
    tokio::spawn(conn);
    let mut req = hyper::Request::builder().method(method).uri(path).header("host", addr.to_string());
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = sender.send_request(req.body(Full::new(Bytes::from(body.to_string()))).unwrap()).await.unwrap();
    let status = resp.status().as_u16();
    let body = String::from_utf8(resp.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap();
    Reply { status, body }
}

/// Calls an adapter operation as the provider's security server would.
pub(crate) async fn soap(h: &Handle, op: &str, inner: &str) -> Reply {
    use musubi_protocol::{ClientId, ServiceId};
    let client = ClientId::subsystem("DEMO", "GOV", "1001", "care").unwrap();
    let provider = ClientId::subsystem("DEMO", "COM", "2002", "home").unwrap();
    let service = ServiceId::new(provider, op, None).unwrap();
    let body = format!("<m:{op} xmlns:m=\"urn:musubi:echonet:v1\">{inner}</m:{op}>");
    let req = musubi_protocol::soap::build_request(&client, &service, "q-1", Some("tester"), &body);
    http(h.provider_addr, "POST", "/", &[("content-type", "text/xml; charset=UTF-8")], &req).await
}

/// Calls the admin API (`/api/v1` + `path`) over HTTPS, pinning its
/// certificate, with `auth` as the `Authorization` header (none when empty).
pub(crate) async fn admin_as(h: &Handle, auth: &str, method: &str, path: &str, body: &str) -> Reply {
    let pem = std::fs::read_to_string(h.admin_dir.join("admin-tls.pem")).unwrap();
    let cert = musubi_pki::pem_decode("CERTIFICATE", &pem).unwrap();
    let mut headers = vec![("content-type", "application/json")];
    if !auth.is_empty() {
        headers.push(("authorization", auth));
    }
    let url = format!("https://{}/api/v1{path}", h.admin_addr);
    let (status, bytes) =
        musubi_admin::client::request(&url, &cert, method, &headers, body.as_bytes().to_vec(), 1 << 20).await.unwrap();
    Reply { status, body: String::from_utf8_lossy(&bytes).into_owned() }
}

/// Calls the admin API with its administrator's API key (`state_dir/admin/admin-api-key`).
pub(crate) async fn admin(h: &Handle, method: &str, path: &str, body: &str) -> Reply {
    let key = std::fs::read_to_string(h.admin_dir.join("admin-api-key")).unwrap();
    admin_as(h, &format!("X-Road-ApiKey token={}", key.trim()), method, path, body).await
}

/// Polls `check` every 50 ms until it holds or `secs` pass.
pub(crate) async fn eventually<F: FnMut() -> bool>(secs: u64, mut check: F) -> bool {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while tokio::time::Instant::now() < deadline {
        if check() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    check()
}

/// The text of the first `<tag>…</tag>` after `from` in `s`.
pub(crate) fn element<'a>(s: &'a str, tag: &str) -> Option<&'a str> {
    let open = format!("<{tag}>");
    let start = s.find(&open)? + open.len();
    let end = start + s[start..].find(&format!("</{tag}>"))?;
    Some(&s[start..end])
}
