//! End-to-end tests: an information system calls a service of another member
//! through two security servers, over real sockets.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod adapter;
mod backup;
mod crash;
mod deploy;
mod exchange;
mod faults;
mod globalconf;
mod hostile;
mod multihost;
mod packages;
mod peer;
mod tlsreview;

use std::net::Ipv4Addr;
use std::path::PathBuf;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use musubi::demo::{Network, Options};

/// The workspace's built binaries (beside this test's own folder), which
/// `cargo test --workspace` builds.
pub(crate) fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(std::path::Path::parent).unwrap();
    let bin = dir.join(name);
    assert!(bin.exists(), "{} is not built: run cargo test --workspace (it builds every binary)", bin.display());
    bin
}

/// Skips a test for a missing prerequisite (`skipped: …`), or fails it under
/// `MUSUBI_REQUIRE_PEERS=1`.
pub(crate) fn skip(what: &str) {
    assert!(std::env::var("MUSUBI_REQUIRE_PEERS").as_deref() != Ok("1"), "{what}, and MUSUBI_REQUIRE_PEERS=1");
    println!("skipped: {what}");
}

/// Runs `cmd`, which must succeed; returns what it printed (stdout, then stderr).
pub(crate) fn ok(cmd: &mut std::process::Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{cmd:?}: {}\n{stdout}\n{stderr}", out.status);
    format!("{stdout}{stderr}")
}

/// Whether `command` is on the PATH.
pub(crate) fn have(command: &str) -> bool {
    std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {command}"))
        .stdout(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Whether this process runs as root (namespaces, chroot and dpkg need it).
pub(crate) fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt as _;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// A fresh folder for one test's network.
pub(crate) fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("musubi-it-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// Starts the demo network on 127.0.`net`.2/.3/.4.
pub(crate) async fn network(name: &str, net: u8, start_provider: bool) -> Network {
    network_with(name, net, Options { start_provider, ..Options::default() }).await
}

/// Starts the demo network on 127.0.`net`.2/.3/.4 with other options.
pub(crate) async fn network_with(name: &str, net: u8, opts: Options) -> Network {
    let ips = [Ipv4Addr::new(127, 0, net, 2), Ipv4Addr::new(127, 0, net, 3), Ipv4Addr::new(127, 0, net, 4)];
    let pki_ip = Ipv4Addr::new(127, 0, net, 5);
    Network::start(&scratch(name), Options { ips, pki_ip, ..opts }).await.expect("demo network starts")
}

/// An HTTP response as the information system sees it.
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) content_type: String,
    pub(crate) body: String,
}

impl Reply {
    /// The `faultcode` of a SOAP fault reply.
    pub(crate) fn fault_code(&self) -> Option<&str> {
        let start = self.body.find("<faultcode>")? + "<faultcode>".len();
        let end = start + self.body[start..].find("</faultcode>")?;
        Some(&self.body[start..end])
    }
}

/// Sends one HTTP request to `addr` over a new connection.
pub(crate) async fn http(addr: std::net::SocketAddr, method: &str, content_type: &str, body: Vec<u8>) -> Reply {
    http_with(addr, method, content_type, &[], body).await
}

/// Like [`http`] with extra headers.
pub(crate) async fn http_with(
    addr: std::net::SocketAddr,
    method: &str,
    content_type: &str,
    extra: &[(&str, &str)],
    body: Vec<u8>,
) -> Reply {
    let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect to client proxy");
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await.unwrap();
    tokio::spawn(conn);
    let mut req = http::Request::builder()
        .method(method)
        .uri("/")
        .header("host", addr.to_string())
        .header("content-type", content_type);
    for (k, v) in extra {
        req = req.header(*k, *v);
    }
    let req = req.body(Full::new(Bytes::from(body))).unwrap();
    let resp = sender.send_request(req).await.expect("response from client proxy");
    let status = resp.status().as_u16();
    let content_type = resp.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
    let body = String::from_utf8(resp.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap();
    Reply { status, content_type, body }
}

/// Reads `shared/conformance/xroad/soap/proxy-core-queries/<file>`, or reports a skip.
pub(crate) fn conformance_query(file: &str) -> Option<Vec<u8>> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/conformance/xroad/soap/proxy-core-queries")
        .join(file);
    match std::fs::read(&path) {
        Ok(b) => Some(b),
        Err(_) if std::env::var("MUSUBI_REQUIRE_CONFORMANCE").as_deref() == Ok("1") => {
            panic!("conformance file {} missing and MUSUBI_REQUIRE_CONFORMANCE=1", path.display())
        }
        Err(_) => {
            println!("skipped: conformance file {} not found", path.display());
            None
        }
    }
}
