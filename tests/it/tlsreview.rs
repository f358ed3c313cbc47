//! The TLS and admin review as tests (SECURITY.md says what they hold to):
//! what 5500 and the admin port (4000) accept, asked of them by OpenSSL's
//! own client; each refusal has a control that shows the same client would
//! get through to a server that allowed it. Then resumption, the admin
//! port's headers, its address by default, and the modes of keys, databases
//! and state folders.

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use musubi_pki::Issued;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};

use crate::{have, network, skip};

/// TLS 1.3 suites OpenSSL knows.
const TLS13_SUITES: [&str; 5] = [
    "TLS_AES_256_GCM_SHA384",
    "TLS_CHACHA20_POLY1305_SHA256",
    "TLS_AES_128_GCM_SHA256",
    "TLS_AES_128_CCM_SHA256",
    "TLS_AES_128_CCM_8_SHA256",
];

/// Writes `issued` as PEM files in `dir`: (certificate, key).
fn pem_files(dir: &Path, name: &str, issued: &Issued) -> (PathBuf, PathBuf) {
    std::fs::create_dir_all(dir).unwrap();
    let (cert, key) = (dir.join(format!("{name}.crt")), dir.join(format!("{name}.key")));
    std::fs::write(&cert, musubi_pki::pem("CERTIFICATE", &issued.cert_der)).unwrap();
    std::fs::write(&key, musubi_pki::pem("PRIVATE KEY", &issued.key_pkcs8)).unwrap();
    (cert, key)
}

/// `openssl s_client` to `addr` with `args` and nothing to send: whether a
/// handshake was made, and what the client said.
async fn s_client(addr: SocketAddr, args: &[&str]) -> (bool, String) {
    let out = Command::new("openssl")
        .args(["s_client", "-connect", &addr.to_string()])
        .args(args)
        .stdin(Stdio::null())
        .output();
    let out = tokio::time::timeout(Duration::from_secs(20), out).await.expect("s_client ends").unwrap();
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let made = out.status.success() && said.contains("Cipher is ") && !said.contains("Cipher is (NONE)");
    (made, said)
}

/// The TLS 1.2 (and older) cipher suites OpenSSL can offer, at any security level.
async fn openssl_tls12_ciphers() -> Vec<String> {
    let out =
        Command::new("openssl").args(["ciphers", "-v", "ALL:COMPLEMENTOFALL:@SECLEVEL=0"]).output().await.unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let names: Vec<String> = text
        .lines()
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            let (name, proto) = (words.next()?, words.next()?);
            (proto != "TLSv1.3").then(|| name.to_string())
        })
        .collect();
    assert!(names.len() > 30, "OpenSSL offers few suites: {text}");
    names
}

/// The suites `addr` accepts, each offered alone: (TLS 1.2, TLS 1.3).
async fn accepted_suites(addr: SocketAddr, client: &[&str]) -> (BTreeSet<String>, BTreeSet<String>) {
    let mut tls12 = BTreeSet::new();
    for name in openssl_tls12_ciphers().await {
        let cipher = format!("{name}:@SECLEVEL=0");
        let mut args = vec!["-tls1_2", "-cipher", &cipher];
        args.extend_from_slice(client);
        if s_client(addr, &args).await.0 {
            tls12.insert(name);
        }
    }
    let mut tls13 = BTreeSet::new();
    for name in TLS13_SUITES {
        let mut args = vec!["-tls1_3", "-ciphersuites", name];
        args.extend_from_slice(client);
        if s_client(addr, &args).await.0 {
            tls13.insert(name.to_string());
        }
    }
    (tls12, tls13)
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

/// `openssl s_server` on `addr` with `args`, once it accepts connections
/// (it says `ACCEPT`); killed when dropped.
async fn s_server(addr: SocketAddr, args: &[&str]) -> Child {
    let mut child = Command::new("openssl")
        .args(["s_server", "-accept", &addr.to_string()])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let ready = async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if line.starts_with("ACCEPT") {
                return;
            }
        }
        panic!("s_server ended before accepting");
    };
    tokio::time::timeout(Duration::from_secs(20), ready).await.expect("s_server accepts");
    // What it prints from here on (the data it receives) is read by `renegotiates`.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    child
}

/// Asks for a TLS 1.2 renegotiation (s_client's `R` command) on a
/// connection to `addr`, then sends a line and ends its input: whether the
/// client ended well (within 10 s), and what it said.
async fn renegotiates(addr: SocketAddr, client: &[&str]) -> (bool, String) {
    let mut child = Command::new("openssl")
        .args(["s_client", "-connect", &addr.to_string(), "-tls1_2"])
        .args(client)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    // Both of its outputs, line by line, in one channel.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let out = tokio::io::BufReader::new(child.stdout.take().unwrap());
    let err = tokio::io::BufReader::new(child.stderr.take().unwrap());
    for mut lines in [Box::pin(out) as std::pin::Pin<Box<dyn tokio::io::AsyncBufRead + Send>>, Box::pin(err)]
        .map(AsyncBufReadExt::lines)
    {
        let tx = tx.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                let _ = tx.send(line);
            }
        });
    }
    drop(tx);
    let mut stdin = child.stdin.take().unwrap();
    let mut said = String::new();
    let mut until = async |said: &mut String, mark: &str| {
        while let Some(line) = rx.recv().await {
            said.push_str(&line);
            said.push('\n');
            if line.starts_with(mark) {
                return;
            }
        }
    };
    let talk = async {
        // Connected once the session is printed; `R` asks for the renegotiation.
        until(&mut said, "SSL-Session:").await;
        let _ = stdin.write_all(b"R\n").await;
        until(&mut said, "RENEGOTIATING").await;
        // Sent only once the renegotiation is done, and only if it is.
        let _ = stdin.write_all(b"after renegotiation\n").await;
        drop(stdin);
        let ended = child.wait().await.unwrap();
        until(&mut said, "the end of both outputs").await;
        ended.success()
    };
    match tokio::time::timeout(Duration::from_secs(10), talk).await {
        Ok(ended_well) => (ended_well, said),
        Err(_) => (false, format!("{said}(s_client did not end in 10 s)")),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ports_5500_and_4000_speak_tls_1_2_and_1_3_with_the_documented_suites_and_never_renegotiate() {
    if !have("openssl") {
        return skip("no openssl command");
    }
    let net = network("tlsreview", 41, true).await;
    let dir = net.consumer.state_dir().parent().unwrap().join("tlsreview");
    let (cert, key) = pem_files(&dir, "consumer-auth", &net.consumer_auth);
    let (cert, key) = (cert.to_str().unwrap(), key.to_str().unwrap());
    let peer = ["-cert", cert, "-key", key];
    let sp = net.provider.server_proxy_addr;
    let admin = net.provider.admin_addr.expect("the demo's admin API");

    // The control: OpenSSL's client here can speak TLS 1.0 and 1.1, and renegotiate.
    let control = SocketAddr::new(Ipv4Addr::new(127, 0, 41, 9).into(), 5500);
    let server =
        s_server(control, &["-cert", cert, "-key", key, "-cipher", "DEFAULT:@SECLEVEL=0", "-client_renegotiation"])
            .await;
    for old in ["-tls1", "-tls1_1"] {
        let (made, said) = s_client(control, &[old, "-cipher", "DEFAULT:@SECLEVEL=0"]).await;
        assert!(made, "control: s_client {old} reaches a server that allows it:\n{said}");
    }
    let (ok, said) = renegotiates(control, &[]).await;
    assert!(ok && said.contains("RENEGOTIATING"), "control: renegotiation with a server that allows it:\n{said}");
    drop(server);

    // TLS 1.0 and 1.1 are refused on both ports.
    for (port, addr) in [("5500", sp), ("4000", admin)] {
        for old in ["-tls1", "-tls1_1"] {
            let (made, said) =
                s_client(addr, &[old, "-cipher", "DEFAULT:@SECLEVEL=0", "-cert", cert, "-key", key]).await;
            assert!(!made, "{port} accepted {old}:\n{said}");
            // Refused by the server with an alert (protocol version, or handshake failure).
            assert!(said.contains("alert protocol version") || said.contains("alert handshake failure"), "{said}");
        }
    }

    // 5500: ECDHE with AES-GCM only (SECURITY.md); the demo's keys are ECDSA.
    let (tls12, tls13) = accepted_suites(sp, &peer).await;
    assert_eq!(tls12, set(&["ECDHE-ECDSA-AES256-GCM-SHA384"]), "5500, TLS 1.2");
    assert_eq!(tls13, set(&["TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384"]), "5500, TLS 1.3");
    // 4000: rustls's AEAD suites with ECDHE; its key is ECDSA.
    let (tls12, tls13) = accepted_suites(admin, &[]).await;
    assert_eq!(
        tls12,
        set(&["ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-ECDSA-CHACHA20-POLY1305"]),
        "4000, TLS 1.2"
    );
    assert_eq!(
        tls13,
        set(&["TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256"]),
        "4000, TLS 1.3"
    );

    // A renegotiation is refused (rustls answers no_renegotiation) and the
    // client gives up the connection: nothing after it is sent.
    for (port, addr, client) in [("5500", sp, &peer[..]), ("4000", admin, &[][..])] {
        let (ok, said) = renegotiates(addr, client).await;
        assert!(!ok && said.contains("RENEGOTIATING"), "{port}:\n{said}");
        assert!(said.contains("no renegotiation"), "{port}: refused with no_renegotiation:\n{said}");
    }

    // TLS 1.2 sessions resume (OpenSSL reconnects with the session ID).
    let (made, said) = s_client(sp, &[&["-tls1_2", "-reconnect"][..], &peer].concat()).await;
    assert!(made && said.contains("Reused, TLSv1.2"), "{said}");
}

/// A client with `cert` and its own session cache.
fn peer_client(cert: &Issued) -> Arc<rustls::ClientConfig> {
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(crate::peer::AnyServer))
        .with_client_auth_cert(
            vec![CertificateDer::from(cert.cert_der.clone())],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(cert.key_pkcs8.clone())),
        )
        .unwrap();
    Arc::new(config)
}

/// One connection to `addr` (a request and its answer, so the session
/// ticket that follows the handshake is read): full or resumed.
async fn handshake(addr: SocketAddr, config: &Arc<rustls::ClientConfig>) -> rustls::HandshakeKind {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let mut tls = tokio_rustls::TlsConnector::from(config.clone())
        .connect(ServerName::try_from("peer.invalid").unwrap(), tcp)
        .await
        .unwrap();
    tls.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await.unwrap();
    let mut answer = Vec::new();
    let _ = tls.read_to_end(&mut answer).await;
    assert!(answer.starts_with(b"HTTP/1.1 "), "{}", String::from_utf8_lossy(&answer));
    tls.get_ref().1.handshake_kind().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tls_sessions_on_5500_resume_from_a_bounded_cache() {
    use rustls::HandshakeKind::{Full, Resumed};
    let net = network("sessions", 42, false).await;
    let sp = net.provider.server_proxy_addr;
    let first = peer_client(&net.consumer_auth);
    assert_eq!(handshake(sp, &first).await, Full);
    assert_eq!(handshake(sp, &first).await, Resumed, "a peer coming back resumes its session");
    // More peers than the cache keeps: the first peer's session is forgotten.
    for n in 0..musubi_admin::limit::MAX_TLS_SESSIONS + 8 {
        assert_eq!(handshake(sp, &peer_client(&net.consumer_auth)).await, Full, "peer {n}");
    }
    assert_eq!(handshake(sp, &first).await, Full, "the cache holds at most MAX_TLS_SESSIONS sessions");
}

/// An admin call: method, path, headers, body, and the status it gets.
type Call<'a> = (&'a str, &'a str, &'a [(&'a str, &'a str)], &'a [u8], u16);

/// The headers every answer of an admin port carries.
fn assert_security_headers(what: &str, h: &hyper::HeaderMap) {
    let get = |name: &str| h.get(name).map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
    assert_eq!(get("x-content-type-options"), "nosniff", "{what}: {h:?}");
    assert_eq!(get("x-frame-options"), "DENY", "{what}: {h:?}");
    assert_eq!(get("referrer-policy"), "no-referrer", "{what}: {h:?}");
    assert!(get("strict-transport-security").starts_with("max-age="), "{what}: {h:?}");
    assert!(get("content-security-policy").contains("frame-ancestors 'none'"), "{what}: {h:?}");
    assert!(get("cache-control").starts_with("no-"), "{what}: {h:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_admin_answer_carries_the_security_headers_and_secrets_are_kept_close() {
    let net = crate::network_with("adminreview", 43, crate::globalconf::following(43, 600, false)).await;
    let central = &net.central.as_ref().expect("the demo's central server").0;
    let servers = [
        ("consumer", net.consumer.admin_addr.unwrap(), net.consumer.state_dir().to_path_buf()),
        ("central", central.admin_addr.unwrap(), net.central.as_ref().unwrap().1.state_dir.clone()),
    ];
    for (name, addr, state) in &servers {
        let admin = state.join("admin");
        let pinned =
            musubi_pki::pem_decode("CERTIFICATE", &std::fs::read_to_string(admin.join("admin-tls.pem")).unwrap())
                .unwrap();
        let key = std::fs::read_to_string(admin.join("admin-api-key")).unwrap();
        let auth = format!("X-Road-ApiKey token={}", key.trim());
        let with_key = [("authorization", auth.as_str())];
        let json = [("content-type", "application/json")];
        let calls: [Call; 9] = [
            ("GET", "/", &[], b"", 303),
            ("GET", "/ui/", &[], b"", 200),
            ("GET", "/ui/app.js", &[], b"", 200),
            ("GET", "/ui/pages.js", &[], b"", 200),
            ("GET", "/api/v1/api-keys", &with_key, b"", 200),
            ("GET", "/api/v1/api-keys", &[], b"", 401),
            ("GET", "/no/such/page", &with_key, b"", 404),
            ("DELETE", "/ui/", &[], b"", 405),
            ("POST", "/api/v1/login", &json, b"{not json", 400),
        ];
        for (method, path, headers, body, status) in calls {
            let what = format!("{name}: {method} {path}");
            let (got, h, answer) = musubi_admin::client::request_with_headers(
                &format!("https://{addr}{path}"),
                &pinned,
                method,
                headers,
                body.to_vec(),
                1 << 20,
            )
            .await
            .unwrap();
            assert_eq!(got, status, "{what}: {}", String::from_utf8_lossy(&answer));
            assert_security_headers(&what, &h);
        }
    }

    // State folders are their owner's alone (0700); keys, secrets, audit
    // logs and databases are 0600 wherever they are kept.
    use std::os::unix::fs::PermissionsExt as _;
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let base = net.consumer.state_dir().parent().unwrap().parent().unwrap().to_path_buf();
    let central_state = net.central.as_ref().unwrap().1.state_dir.clone();
    for state in [net.consumer.state_dir(), net.provider.state_dir(), &central_state] {
        assert_eq!(mode(state), 0o700, "{}", state.display());
        assert_eq!(mode(&state.join("admin")), 0o700, "{}", state.display());
    }
    let mut seen = BTreeSet::new();
    for file in musubi_security_server::backup::files_under(&base).unwrap() {
        let name = file.file_name().unwrap().to_str().unwrap();
        let kind = if name.ends_with(".p8") {
            "key"
        } else if name.contains(".sqlite") || name.ends_with(".db") {
            "database"
        } else if ["admin-api-key", "api-keys", "users", "pin", "token.toml"].contains(&name) {
            "secret"
        } else if name == "audit.log" {
            "audit log"
        } else {
            continue;
        };
        assert_eq!(mode(&file), 0o600, "{kind} {}", file.display());
        seen.insert(kind.to_string());
    }
    assert_eq!(seen, set(&["audit log", "database", "key", "secret"]), "each kind was looked at");
    for token in [net.consumer.state_dir().join("token"), net.consumer.state_dir().join("token/keys")] {
        assert_eq!(mode(&token), 0o700, "{}", token.display());
    }
    net.shutdown().await;
}

/// Every file under `dir`.
#[test]
fn the_packaged_configurations_keep_the_admin_port_on_this_host() {
    let etc = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../deploy/etc");
    let mut seen = 0;
    for file in ["security-server.toml", "central-server.toml", "adapter.toml"] {
        let text = std::fs::read_to_string(etc.join(file)).unwrap();
        let conf: toml::Table = text.parse().unwrap();
        let addr: SocketAddr = conf["admin_listen"].as_str().unwrap().parse().unwrap();
        assert!(addr.ip().is_loopback(), "{file}: admin_listen {addr}");
        seen += 1;
    }
    assert_eq!(seen, 3);
}
