//! Hostile input against running servers while an information system keeps
//! making good requests through them: every case has an asserted outcome (a
//! fault code, a refused handshake, a closed connection, bounded memory) and
//! every good request made meanwhile is answered.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use musubi::demo::{example_request, ids};
use musubi_pki::{Issued, Usage};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::watch;

use crate::{http, network};

const XML: &str = "text/xml; charset=UTF-8";

/// Good requests, one after another until stopped; how many were answered
/// well, and what went wrong with the others.
struct GoodStream {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<(usize, Vec<String>)>,
}

impl GoodStream {
    fn start(client_proxy: SocketAddr) -> Self {
        let (stop, mut stopped) = watch::channel(false);
        let (_, _, service, _) = ids();
        let task = tokio::spawn(async move {
            let (mut ok, mut failed) = (0, Vec::new());
            for n in 0.. {
                if *stopped.borrow_and_update() {
                    break;
                }
                let reply =
                    http(client_proxy, "POST", XML, example_request(&service, &format!("good-{n}")).into_bytes());
                let reply = tokio::time::timeout(Duration::from_secs(20), reply).await;
                match reply {
                    Ok(r) if r.status == 200 && r.body.contains("22.5") => ok += 1,
                    Ok(r) => failed.push(format!("good-{n}: HTTP {} {}", r.status, r.body)),
                    Err(_) => failed.push(format!("good-{n}: no answer in 20 s")),
                }
                // Pacing, not waiting for anything: about ten requests a second.
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                    _ = stopped.changed() => break,
                }
            }
            (ok, failed)
        });
        Self { stop, task }
    }

    async fn finish(self) -> (usize, Vec<String>) {
        let _ = self.stop.send(true);
        self.task.await.unwrap()
    }
}

/// The resident memory of this process (every server of the test runs in it), KiB.
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// The soft limit on open files.
fn open_files_limit() -> usize {
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap();
    let line = limits.lines().find(|l| l.starts_with("Max open files")).unwrap();
    line.split_whitespace().nth(3).unwrap().parse().unwrap_or(1024)
}

/// Connects to `to` from the address `from` (port chosen by the system).
async fn connect_from(from: Ipv4Addr, to: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(IpAddr::V4(from), 0))?;
    socket.connect(to).await
}

/// Whether the server has closed `conn` (end of stream or reset) within `wait`.
async fn closed_within(conn: &mut TcpStream, wait: Duration) -> bool {
    let mut buf = [0u8; 512];
    loop {
        match tokio::time::timeout(wait, conn.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0) | Err(_)) => return true,
            // An answer (say, a fault) is fine; keep reading to the close.
            Ok(Ok(_)) => {}
        }
    }
}

/// Opens `n` connections from `from` to `to` that never send a byte; returns
/// how many the server left open after `settle`.
async fn idle_flood(from: Ipv4Addr, to: SocketAddr, n: usize, settle: Duration) -> (Vec<TcpStream>, usize) {
    let mut conns = Vec::with_capacity(n);
    for _ in 0..n {
        match connect_from(from, to).await {
            Ok(c) => conns.push(c),
            // A full accept queue refuses outright: also a closed connection.
            Err(e) => assert!(
                matches!(e.kind(), std::io::ErrorKind::ConnectionRefused | std::io::ErrorKind::ConnectionReset),
                "{e}"
            ),
        }
    }
    tokio::time::sleep(settle).await;
    let mut open = 0;
    for c in &mut conns {
        if !closed_within(c, Duration::from_millis(5)).await {
            open += 1;
        }
    }
    (conns, open)
}

/// A TLS handshake and one request to 5500 presenting `cert` (none: no
/// client certificate); the error when the server refuses.
async fn tls_call(addr: SocketAddr, cert: Option<&Issued>) -> Result<(), String> {
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(crate::peer::AnyServer));
    let config = match cert {
        Some(c) => builder
            .with_client_auth_cert(
                vec![CertificateDer::from(c.cert_der.clone())],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(c.key_pkcs8.clone())),
            )
            .unwrap(),
        None => builder.with_no_client_auth(),
    };
    let tcp = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    let mut tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("peer.invalid").unwrap(), tcp)
        .await
        .map_err(|e| e.to_string())?;
    // TLS 1.3 reports a refused client certificate with the first read.
    tls.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await.map_err(|e| e.to_string())?;
    let mut buf = [0u8; 64];
    match tls.read(&mut buf).await {
        Ok(0) => Err("closed".into()),
        Ok(_) => Ok(()),
        Err(e) => Err(e.to_string()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hostile_input_gets_its_answer_and_good_requests_keep_flowing() {
    let net = network("hostile", 40, true).await;
    let cp = net.consumer.client_proxy_addr;
    let sp = net.provider.server_proxy_addr;
    let (_, _, service, _) = ids();
    let good = GoodStream::start(cp);
    let rss_before = rss_kib();

    // Slow headers on the client proxy: a byte a second never completes a
    // request; the server gives up on them (header timeout, 30 s).
    let slow = tokio::spawn(async move {
        let mut conns = Vec::new();
        for _ in 0..20 {
            conns.push(connect_from(Ipv4Addr::new(127, 0, 40, 80), cp).await.unwrap());
        }
        let started = Instant::now();
        let mut closed = 0;
        while closed < conns.len() && started.elapsed() < Duration::from_secs(45) {
            closed = 0;
            for c in &mut conns {
                if c.write_all(b"X").await.is_err() || closed_within(c, Duration::from_millis(1)).await {
                    closed += 1;
                }
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        (closed, started.elapsed())
    });

    // Entity expansion ("billion laughs"): no DOCTYPE is read at all.
    let lol = (1..10)
        .map(|n| format!("<!ENTITY l{n} \"&l{p};&l{p};&l{p};&l{p};&l{p};&l{p};&l{p};&l{p};&l{p};&l{p};\">", p = n - 1));
    let doctype = format!("<!DOCTYPE lolz [<!ENTITY l0 \"lol\">{}]>", lol.collect::<String>());
    let laughs =
        example_request(&service, "laughs").replacen("?>", &format!("?>{doctype}"), 1).replace("living", "&l9;");
    let reply = http(cp, "POST", XML, laughs.into_bytes()).await;
    assert_eq!(reply.fault_code(), Some("client.invalid_xml"), "{}", reply.body);

    // 10 000 nested elements: refused at the depth limit (128), not parsed through.
    let deep = example_request(&service, "deep").replace("living", &"<a>".repeat(10_000));
    let reply = http(cp, "POST", XML, deep.into_bytes()).await;
    assert_eq!(reply.fault_code(), Some("client.invalid_soap"), "{}", reply.body);
    assert!(reply.body.contains("nested deeper than 128"), "{}", reply.body);

    // A declared gigabyte is refused before anything is read.
    {
        let mut tcp = TcpStream::connect(cp).await.unwrap();
        let head = format!(
            "POST / HTTP/1.1\r\nHost: {cp}\r\nContent-Type: text/xml\r\nContent-Length: 1073741824\r\n\r\n<SOAP"
        );
        tcp.write_all(head.as_bytes()).await.unwrap();
        let mut buf = vec![0; 4096];
        let n = tokio::time::timeout(Duration::from_secs(10), tcp.read(&mut buf)).await.unwrap().unwrap();
        let text = String::from_utf8_lossy(&buf[..n]);
        assert!(text.starts_with("HTTP/1.1 500"), "{text}");
        assert!(
            text.contains("<faultcode>client.invalid_soap</faultcode>") && text.contains("exceeds the limit"),
            "{text}"
        );
    }

    // Multipart: more parts than allowed, and a part whose headers never end.
    let soap = example_request(&service, "parts");
    let mut many = format!("--b\r\nContent-Type: text/xml\r\n\r\n{soap}\r\n");
    for _ in 0..300 {
        many.push_str("--b\r\nContent-Type: application/octet-stream\r\n\r\nx\r\n");
    }
    many.push_str("--b--\r\n");
    let reply = http(cp, "POST", "multipart/related; type=\"text/xml\"; boundary=b", many.into_bytes()).await;
    assert_eq!(reply.fault_code(), Some("client.invalid_message"), "{}", reply.body);
    assert!(reply.body.contains("more than 256 parts"), "{}", reply.body);
    let long_header =
        format!("--b\r\nContent-Type: text/xml\r\nX-Long: {}\r\n\r\n{soap}\r\n--b--\r\n", "h".repeat(20_000));
    let reply = http(cp, "POST", "multipart/related; type=\"text/xml\"; boundary=b", long_header.into_bytes()).await;
    assert_eq!(reply.fault_code(), Some("client.invalid_message"), "{}", reply.body);
    assert!(reply.body.contains("part headers exceed 16384 bytes"), "{}", reply.body);

    // TLS clients on 5500 without a certificate, with an expired one, with
    // one of an unknown CA: refused in the handshake.
    let refused = tls_call(sp, None).await;
    assert!(refused.is_err(), "a client without a certificate was served");
    let expired = net
        .ca
        .issue_with_validity(
            "ss-consumer",
            "Demo City",
            Usage::Auth,
            &[],
            time::Duration::days(-30),
            time::Duration::days(-1),
        )
        .unwrap();
    let refused = tls_call(sp, Some(&expired)).await;
    assert!(refused.is_err(), "an expired certificate was served");
    let stranger =
        musubi_pki::DevCa::new("Stranger CA").unwrap().issue("ss-consumer", "Demo City", Usage::Auth, &[]).unwrap();
    assert!(tls_call(sp, Some(&stranger)).await.is_err(), "a certificate of an unknown CA was served");

    // Thousands of idle connections to 5500 from four hosts: each host keeps
    // at most its 16 handshake slots, the rest are closed at once, and the
    // good requests (the consumer's server connecting from 127.0.40.2) go on.
    let per_host = (open_files_limit() / 8).min(500);
    assert!(per_host >= 100, "too few open files allowed for the test ({})", open_files_limit());
    let mut held = Vec::new();
    for host in 70..74 {
        let (conns, open) = idle_flood(Ipv4Addr::new(127, 0, 40, host), sp, per_host, Duration::from_millis(500)).await;
        assert!((1..=16).contains(&open), "127.0.40.{host} holds {open} of {per_host} idle connections");
        held.push(conns);
    }
    let rss_flood = rss_kib();
    // The handshake timeout (10 s) closes the rest.
    tokio::time::sleep(Duration::from_secs(11)).await;
    for conns in &mut held {
        for c in conns.iter_mut() {
            assert!(
                closed_within(c, Duration::from_millis(50)).await,
                "an idle connection outlived the handshake timeout"
            );
        }
    }
    drop(held);

    // The same on the client proxy: one host takes at most a quarter of its slots.
    let (idle, open) = idle_flood(Ipv4Addr::new(127, 0, 40, 81), cp, 400, Duration::from_millis(500)).await;
    assert!(open <= 256, "one host holds {open} connections of the client proxy");
    drop(idle);

    // The admin port: one host holds at most half of its 64 slots, and the
    // administrator's browser (another address) is still served.
    let admin = net.provider.admin_addr.expect("the demo's admin API");
    let (idle, open) = idle_flood(Ipv4Addr::new(127, 0, 40, 82), admin, 200, Duration::from_millis(500)).await;
    assert!((1..=32).contains(&open), "one host holds {open} of the admin port's connections");
    let admin_cert = std::fs::read_to_string(net.provider.state_dir().join("admin/admin-tls.pem")).unwrap();
    let pinned = musubi_pki::pem_decode("CERTIFICATE", &admin_cert).unwrap();
    let (status, _, _) = musubi_admin::client::request_with_headers(
        &format!("https://{admin}/ui/"),
        &pinned,
        "GET",
        &[],
        vec![],
        1 << 20,
    )
    .await
    .unwrap();
    assert_eq!(status, 200, "the admin UI during an idle flood of its port");
    drop(idle);

    let (closed, took) = slow.await.unwrap();
    assert_eq!(closed, 20, "slow-header connections still open after {took:?}");

    let (ok, failed) = good.finish().await;
    assert!(failed.is_empty(), "good requests failed meanwhile: {failed:#?}");
    assert!(ok >= 100, "only {ok} good requests were made");
    let grown = rss_flood.saturating_sub(rss_before) / 1024;
    assert!(grown < 64, "memory grew by {grown} MiB during the flood");
    net.shutdown().await;
}
