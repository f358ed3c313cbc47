//! OCSP proven against an independent implementation: OpenSSL's command line
//! as responder for our client, and as client of our responder.
//!
//! These tests need the `openssl` binary. Without it they print
//! `skipped: …`, and fail when `MUSUBI_REQUIRE_PEERS=1` (as in CI).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use musubi_pki::ocsp::{self, OcspError, Status};
use musubi_pki::{DevCa, Issued, Usage};
use time::OffsetDateTime;
use tokio::io::{AsyncBufReadExt, BufReader};

const FRESH: Duration = Duration::from_secs(3600);

fn openssl_available() -> bool {
    let ok = std::process::Command::new("openssl").arg("version").output().is_ok_and(|o| o.status.success());
    if !ok {
        if std::env::var("MUSUBI_REQUIRE_PEERS").as_deref() == Ok("1") {
            panic!("the openssl command is missing and MUSUBI_REQUIRE_PEERS=1; install Debian's openssl package");
        }
        println!("skipped: the openssl command is not installed");
    }
    ok
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("musubi-openssl-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn write_pair(dir: &Path, name: &str, issued: &Issued) {
    std::fs::write(dir.join(format!("{name}.pem")), issued.cert_pem()).unwrap();
    std::fs::write(dir.join(format!("{name}.key")), issued.key_pem()).unwrap();
}

/// An OpenSSL index line: V or R, expiry, revocation time, serial, file, subject.
fn index_line(cert: &Issued, revoked: bool) -> String {
    let serial = ocsp::serial_hex(&cert.cert_der).unwrap();
    // OpenSSL writes serials as BN_bn2hex does: no leading zero byte.
    let serial = serial.strip_prefix("00").unwrap_or(&serial).to_owned();
    let (flag, rev) = if revoked { ("R", "240101000000Z") } else { ("V", "") };
    format!("{flag}\t391231235959Z\t{rev}\t{serial}\tunknown\t/CN=x\n")
}

/// Runs `openssl ocsp` as a responder until the returned child is dropped.
async fn openssl_responder(dir: &Path, signer: &str, port: u16) -> tokio::process::Child {
    let mut child = tokio::process::Command::new("openssl")
        .current_dir(dir)
        .args(["ocsp", "-index", "index.txt", "-port", &port.to_string(), "-CA", "ca.pem", "-ndays", "1"])
        .args(["-rsigner", &format!("{signer}.pem"), "-rkey", &format!("{signer}.key")])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("openssl ocsp starts");
    // Readiness: OpenSSL says so once it listens.
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let ready = tokio::time::timeout(Duration::from_secs(20), async {
        while let Ok(Some(line)) = lines.next_line().await {
            if line.contains("waiting for OCSP client connections") {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(ready, Ok(true), "openssl ocsp did not start");
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    child
}

async fn ask(port: u16, cert: &Issued, ca: &DevCa) -> Vec<u8> {
    let req = ocsp::build_request(&cert.cert_der, ca.cert_der()).unwrap();
    musubi_pki::http::fetch_ocsp(&format!("http://127.0.0.1:{port}/"), &req, Duration::from_secs(10)).await.unwrap()
}

#[tokio::test]
async fn our_client_verifies_answers_of_the_openssl_responder() {
    if !openssl_available() {
        return;
    }
    let dir = scratch("responder");
    let ca = DevCa::new("Interop CA").unwrap();
    let good = ca.issue("good", "Org", Usage::Auth, &[]).unwrap();
    let revoked = ca.issue("revoked", "Org", Usage::Auth, &[]).unwrap();
    let unknown = ca.issue("unknown", "Org", Usage::Auth, &[]).unwrap();
    let delegated = ca.issue("responder", "Org", Usage::OcspSigning, &[]).unwrap();
    let stranger_ca = DevCa::new("Stranger CA").unwrap();
    let stranger = stranger_ca.issue("stranger", "Org", Usage::OcspSigning, &[]).unwrap();
    std::fs::write(dir.join("ca.pem"), musubi_pki::pem("CERTIFICATE", ca.cert_der())).unwrap();
    std::fs::write(dir.join("ca.key"), ca.key_pem()).unwrap();
    write_pair(&dir, "delegated", &delegated);
    write_pair(&dir, "stranger", &stranger);
    std::fs::write(dir.join("index.txt"), index_line(&good, false) + &index_line(&revoked, true)).unwrap();
    let now = OffsetDateTime::now_utc();

    // The CA answers itself.
    let port = free_port();
    let _responder = openssl_responder(&dir, "ca", port).await;
    let good_resp = ask(port, &good, &ca).await;
    let v = ocsp::verify_response(&good_resp, &good.cert_der, ca.cert_der(), now, FRESH).unwrap();
    assert_eq!(v.status, Status::Good);
    let r = ask(port, &revoked, &ca).await;
    let v = ocsp::verify_response(&r, &revoked.cert_der, ca.cert_der(), now, FRESH).unwrap();
    assert!(matches!(v.status, Status::Revoked { .. }), "{v:?}");
    let r = ask(port, &unknown, &ca).await;
    assert_eq!(
        ocsp::verify_response(&r, &unknown.cert_der, ca.cert_der(), now, FRESH).unwrap().status,
        Status::Unknown
    );
    // Older than the freshness limit, and an answer about another certificate.
    let later = now + time::Duration::hours(2);
    assert!(matches!(
        ocsp::verify_response(&good_resp, &good.cert_der, ca.cert_der(), later, FRESH),
        Err(OcspError::Stale { .. })
    ));
    assert!(matches!(
        ocsp::verify_response(&good_resp, &revoked.cert_der, ca.cert_der(), now, FRESH),
        Err(OcspError::NoStatusForCertificate { .. })
    ));

    // A delegated responder with id-kp-OCSPSigning issued by the CA is authorised.
    let port = free_port();
    let _delegated = openssl_responder(&dir, "delegated", port).await;
    let r = ask(port, &good, &ca).await;
    assert_eq!(ocsp::verify_response(&r, &good.cert_der, ca.cert_der(), now, FRESH).unwrap().status, Status::Good);

    // A responder key the CA never authorised is refused.
    let port = free_port();
    let _stranger = openssl_responder(&dir, "stranger", port).await;
    let r = ask(port, &good, &ca).await;
    assert!(matches!(
        ocsp::verify_response(&r, &good.cert_der, ca.cert_der(), now, FRESH),
        Err(OcspError::UnauthorizedResponder(_))
    ));
}

#[tokio::test]
async fn the_openssl_client_accepts_our_responder() {
    if !openssl_available() {
        return;
    }
    let dir = scratch("client");
    let ca = Arc::new(DevCa::new("Responder CA").unwrap());
    let good = ca.issue("good", "Org", Usage::Auth, &[]).unwrap();
    let revoked = ca.issue("revoked", "Org", Usage::Auth, &[]).unwrap();
    assert!(ca.revoke(&revoked.cert_der));
    std::fs::write(dir.join("ca.pem"), musubi_pki::pem("CERTIFICATE", ca.cert_der())).unwrap();
    write_pair(&dir, "good", &good);
    write_pair(&dir, "revoked", &revoked);
    let (addr, _stop) =
        musubi_pki::http::start_ocsp_responder(ca.clone(), "127.0.0.1:0".parse().unwrap()).await.unwrap();
    for (name, expected) in [("good", "good.pem: good"), ("revoked", "revoked.pem: revoked")] {
        let out = tokio::process::Command::new("openssl")
            .current_dir(&dir)
            .args(["ocsp", "-issuer", "ca.pem", "-CAfile", "ca.pem", "-no_nonce"])
            .args(["-cert", &format!("{name}.pem"), "-url", &format!("http://{addr}/")])
            .output()
            .await
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "openssl ocsp failed: {stdout}{stderr}");
        assert!(stderr.contains("Response verify OK"), "{stdout}{stderr}");
        assert!(stdout.contains(expected), "{stdout}{stderr}");
    }
}

#[test]
fn time_stamps_interoperate_with_openssl_ts() {
    use musubi_pki::DevTsa;
    use musubi_pki::tsp::{self, DigestAlg, TspError};
    use std::process::Command;
    if !openssl_available() {
        return;
    }
    let dir = scratch("ts");
    let ca = DevCa::new("TS CA").unwrap();
    let issued = ca.issue("Interop TSA", "Org", Usage::TimeStamping, &[]).unwrap();
    write_pair(&dir, "tsa", &issued);
    let tsa = DevTsa::from_issued(issued).unwrap();
    std::fs::write(dir.join("ca.pem"), musubi_pki::pem("CERTIFICATE", ca.cert_der())).unwrap();
    let data = b"ts-hashchainresult bytes";
    std::fs::write(dir.join("data.bin"), data).unwrap();
    let now = OffsetDateTime::now_utc();

    // openssl ts -verify accepts our TSA's answer to our request.
    let req = tsp::build_request(DigestAlg::Sha512, data).unwrap();
    std::fs::write(dir.join("ours.tsq"), &req).unwrap();
    std::fs::write(dir.join("ours.tsr"), tsa.respond(&req, now)).unwrap();
    let out = Command::new("openssl")
        .current_dir(&dir)
        .args(["ts", "-verify", "-data", "data.bin", "-in", "ours.tsr", "-CAfile", "ca.pem"])
        .output()
        .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && text.contains("Verification: OK"), "openssl ts -verify: {text}");
    // … and refuses it for other data.
    std::fs::write(dir.join("other.bin"), b"other").unwrap();
    let out = Command::new("openssl")
        .current_dir(&dir)
        .args(["ts", "-verify", "-data", "other.bin", "-in", "ours.tsr", "-CAfile", "ca.pem"])
        .output()
        .unwrap();
    assert!(!out.status.success(), "openssl accepted a token for other data");

    // Our verifier accepts what `openssl ts -reply` makes for our request.
    std::fs::write(
        dir.join("tsa.cnf"),
        "[ tsa ]\ndefault_tsa = tsa1\n[ tsa1 ]\nserial = ./serial\nsigner_cert = ./tsa.pem\nsigner_key = ./tsa.key\n\
         signer_digest = sha256\ndefault_policy = 1.2.3.4.1\ndigests = sha256, sha384, sha512\n\
         ess_cert_id_alg = sha256\naccuracy = secs:1\nordering = no\ntsa_name = no\ness_cert_id_chain = no\n",
    )
    .unwrap();
    std::fs::write(dir.join("serial"), "01\n").unwrap();
    let out = Command::new("openssl")
        .current_dir(&dir)
        .args(["ts", "-reply", "-config", "tsa.cnf", "-queryfile", "ours.tsq", "-out", "theirs.tsr"])
        .output()
        .unwrap();
    assert!(out.status.success(), "openssl ts -reply: {}", String::from_utf8_lossy(&out.stderr));
    let resp = std::fs::read(dir.join("theirs.tsr")).unwrap();
    let token = tsp::parse_response(&resp).unwrap();
    let v = tsp::verify_token(&token, data, &[tsa.cert_der()]).unwrap();
    assert_eq!(v.policy, "1.2.3.4.1");
    assert!((v.gen_time - now).whole_seconds().abs() < 60);
    assert_eq!(tsp::verify_token(&token, b"other", &[tsa.cert_der()]), Err(TspError::ImprintMismatch));
    // Tampered: the last byte is the end of the signature value.
    let mut bad = token.clone();
    let last = bad.len() - 1;
    bad[last] ^= 0x01;
    assert!(matches!(tsp::verify_token(&bad, data, &[tsa.cert_der()]), Err(TspError::BadSignature(_))));
    // A TSA certificate that is not trusted.
    let stranger = DevTsa::new(&ca, "Stranger").unwrap();
    assert_eq!(tsp::verify_token(&token, data, &[stranger.cert_der()]), Err(TspError::UnknownTsa));
}

#[test]
fn csrs_interoperate_with_openssl_req_and_x509() {
    use musubi_pki::csr;
    use musubi_protocol::ClientId;
    use std::process::Command;
    if !openssl_available() {
        return;
    }
    let dir = scratch("csr");
    let ca = DevCa::new("CSR Interop CA").unwrap();
    std::fs::write(dir.join("ca.pem"), musubi_pki::pem("CERTIFICATE", ca.cert_der())).unwrap();
    std::fs::write(dir.join("ca.key"), ca.key_pem()).unwrap();
    let member = ClientId::member("JP", "COM", "2002").unwrap();
    let key = rcgen::KeyPair::generate().unwrap().serialize_der();
    let request = csr::create(&key, &csr::Subject::Sign(member.clone())).unwrap();
    std::fs::write(dir.join("req.pem"), musubi_pki::pem("CERTIFICATE REQUEST", &request)).unwrap();

    // openssl req -verify accepts our request.
    let out = Command::new("openssl")
        .current_dir(&dir)
        .args(["req", "-in", "req.pem", "-verify", "-noout"])
        .output()
        .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && text.to_lowercase().contains("verify ok"), "openssl req -verify: {text}");

    // openssl x509 -req issues a certificate from it, which imports.
    let out = Command::new("openssl")
        .current_dir(&dir)
        .args(["x509", "-req", "-in", "req.pem", "-CA", "ca.pem", "-CAkey", "ca.key", "-set_serial", "4097"])
        .args(["-days", "30", "-out", "cert.pem"])
        .output()
        .unwrap();
    assert!(out.status.success(), "openssl x509 -req: {}", String::from_utf8_lossy(&out.stderr));
    let cert = musubi_pki::pem_decode("CERTIFICATE", &std::fs::read_to_string(dir.join("cert.pem")).unwrap()).unwrap();
    csr::matches_key(&cert, &key).unwrap();
    musubi_pki::check_issued_by(&cert, ca.cert_der(), OffsetDateTime::now_utc()).unwrap();
    assert_eq!(csr::member_of_signing_cert(&cert), Some(member));
}

#[tokio::test]
async fn openssl_reads_token_keys_with_the_pin_only() {
    use musubi_pki::token::{KeyAlgorithm, KeyRole, SoftToken, TokenOptions};
    use std::process::Command;
    if !openssl_available() {
        return;
    }
    let dir = scratch("token");
    let token = SoftToken::init(&dir.join("token"), "pin-123456", TokenOptions::default()).unwrap();
    let info = token.generate(KeyRole::Sign, "k", KeyAlgorithm::EcdsaP256).unwrap();
    let file = dir.join("token").join("keys").join(format!("{}.p8", info.id));
    let run = |pass: &str| {
        Command::new("openssl")
            .args(["pkcs8", "-inform", "DER", "-in"])
            .arg(&file)
            .args(["-passin", &format!("pass:{pass}"), "-nocrypt", "-topk8", "-outform", "DER"])
            .output()
            .unwrap()
    };
    // The key file is standard encrypted PKCS#8 (scrypt + AES-256-CBC): OpenSSL
    // opens it with the PIN and gets exactly the token's key …
    let out = run("pin-123456");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.stdout, token.private_key(&info.id).unwrap().to_vec());
    // … and not without it.
    assert!(!run("wrong").status.success());
}
