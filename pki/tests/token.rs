//! The software token: keys encrypted under a PIN, roles, wrong PIN, damage.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use base64::Engine as _;
use musubi_pki::token::{KeyAlgorithm, KeyRole, SoftToken, TokenError, TokenOptions};
use musubi_pki::{DevCa, Usage, csr};
use musubi_protocol::ClientId;
use musubi_protocol::xades::{self, DataPart};

fn scratch(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("musubi-token-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

const OPTS: TokenOptions = TokenOptions { scrypt_log_n: 14, wrong_pin_delay: Duration::from_millis(300) };

#[tokio::test]
async fn keys_live_encrypted_under_the_pin_and_sign_after_login() {
    let dir = scratch("life");
    let token = SoftToken::init(&dir, "correct horse", OPTS).unwrap();
    let auth = token.generate(KeyRole::Auth, "ss1 auth", KeyAlgorithm::EcdsaP256).unwrap();
    let sign = token.generate(KeyRole::Sign, "member signing", KeyAlgorithm::EcdsaP256).unwrap();
    assert!(matches!(
        token.generate(KeyRole::Auth, "second", KeyAlgorithm::EcdsaP256),
        Err(TokenError::AuthKeyExists(_))
    ));
    assert_eq!(token.list().len(), 2);

    // Nothing secret is stored in clear: the key files are encrypted PKCS#8, and
    // the decrypted key appears in no file of the token.
    let clear = token.private_key(&sign.id).unwrap();
    let clear_b64 = base64::engine::general_purpose::STANDARD.encode(&*clear);
    for entry in walk(&dir) {
        let bytes = std::fs::read(&entry).unwrap();
        assert!(!bytes.windows(clear.len().min(48)).any(|w| w == &clear[..clear.len().min(48)]), "{}", entry.display());
        assert!(!String::from_utf8_lossy(&bytes).contains(&clear_b64[..40]), "{}", entry.display());
    }
    assert!(!format!("{token:?}").contains(&clear_b64[..20]));

    // A certificate for the signing key, through a CSR.
    let ca = DevCa::new("Token CA").unwrap();
    let member = ClientId::member("JP", "GOV", "1001").unwrap();
    let cert = ca.sign_csr(&csr::create(&clear, &csr::Subject::Sign(member)).unwrap(), Usage::Sign).unwrap();
    drop(clear);

    // Reopened: locked until the right PIN.
    drop(token);
    let token = SoftToken::open(&dir, OPTS).unwrap();
    assert!(!token.is_logged_in());
    assert!(matches!(token.private_key(&sign.id), Err(TokenError::NotLoggedIn)));
    let started = Instant::now();
    assert!(matches!(token.login("wrong pin").await, Err(TokenError::WrongPin { failures: 1 })));
    assert!(started.elapsed() >= OPTS.wrong_pin_delay, "a wrong PIN is answered only after a delay");
    let started = Instant::now();
    assert!(matches!(token.login("still wrong").await, Err(TokenError::WrongPin { failures: 2 })));
    assert!(started.elapsed() >= OPTS.wrong_pin_delay * 2, "the delay grows");
    token.login("correct horse").await.unwrap();
    let key = token.signing_key(&sign.id, cert.clone()).unwrap();
    let parts = [DataPart { uri: "/message.xml", bytes: b"<a/>" }];
    let sig = xades::sign(&key, &parts, "2026-11-24T00:00:00Z").unwrap();
    assert_eq!(xades::verify(&sig, &parts).unwrap().certificate_der, cert);
    // The certificate of one key does not unlock another.
    assert!(token.signing_key(&auth.id, cert).is_err());

    token.delete(&auth.id).unwrap();
    assert_eq!(token.list().len(), 1);
    assert!(!dir.join("keys").join(format!("{}.p8", auth.id)).exists());
    token.logout();
    assert!(matches!(token.private_key(&sign.id), Err(TokenError::NotLoggedIn)));
}

#[tokio::test]
async fn rsa_keys_are_generated_and_sign_with_rsa_sha512() {
    let dir = scratch("rsa");
    let token = SoftToken::init(&dir, "123456", OPTS).unwrap();
    let info = token.generate(KeyRole::Sign, "rsa", KeyAlgorithm::Rsa2048).unwrap();
    let pkcs8 = token.private_key(&info.id).unwrap();
    let ca = DevCa::new("RSA CA").unwrap();
    let member = ClientId::member("JP", "GOV", "1001").unwrap();
    let cert = ca.sign_csr(&csr::create(&pkcs8, &csr::Subject::Sign(member)).unwrap(), Usage::Sign).unwrap();
    let key = token.signing_key(&info.id, cert).unwrap();
    assert_eq!(xades::Signer::algorithm(&key), xades::RSA_SHA512);
    let parts = [DataPart { uri: "/message.xml", bytes: b"<a/>" }];
    xades::verify(&xades::sign(&key, &parts, "2026-11-24T00:00:00Z").unwrap(), &parts).unwrap();
}

#[tokio::test]
async fn damaged_tokens_and_weak_pins_get_precise_errors() {
    assert!(matches!(SoftToken::init(&scratch("weak"), "12345", OPTS), Err(TokenError::WeakPin)));
    let dir = scratch("damage");
    let token = SoftToken::init(&dir, "123456", OPTS).unwrap();
    let info = token.generate(KeyRole::Sign, "k", KeyAlgorithm::EcdsaP256).unwrap();
    assert!(matches!(SoftToken::init(&dir, "123456", OPTS), Err(TokenError::Exists(_))));
    drop(token);
    // A damaged key file is named when logging in.
    let key_file = dir.join("keys").join(format!("{}.p8", info.id));
    std::fs::write(&key_file, b"garbage").unwrap();
    let token = SoftToken::open(&dir, OPTS).unwrap();
    match token.login("123456").await {
        Err(TokenError::Corrupt { file, .. }) => assert_eq!(file, key_file),
        other => panic!("expected a damaged key file, got {other:?}"),
    }
    // A damaged token.toml is named when opening.
    std::fs::write(dir.join("token.toml"), "version = \"x\"").unwrap();
    assert!(matches!(SoftToken::open(&dir, OPTS), Err(TokenError::Corrupt { .. })));
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() { out.extend(walk(&p)) } else { out.push(p) }
    }
    out
}

#[tokio::test]
async fn fuzz_admin_json_d359b432_a_login_for_one_operation_decrypts_only_the_keys_it_names() {
    let dir = scratch("login-for");
    let token = SoftToken::init(&dir, "correct horse", OPTS).unwrap();
    let a = token.generate(KeyRole::Sign, "a", KeyAlgorithm::EcdsaP256).unwrap();
    let b = token.generate(KeyRole::Sign, "b", KeyAlgorithm::EcdsaP256).unwrap();
    drop(token);

    let token = SoftToken::open(&dir, OPTS).unwrap();
    token.login_for("correct horse", &[&a.id]).await.unwrap();
    assert!(token.private_key(&a.id).is_ok());
    assert!(matches!(token.private_key(&b.id), Err(TokenError::NoSuchKey(id)) if id == b.id));

    // The PIN alone is enough to make a key, which is kept under it.
    let token = SoftToken::open(&dir, OPTS).unwrap();
    token.login_for("correct horse", &[]).await.unwrap();
    assert!(matches!(token.private_key(&a.id), Err(TokenError::NoSuchKey(_))));
    let c = token.generate(KeyRole::Sign, "c", KeyAlgorithm::EcdsaP256).unwrap();
    let token = SoftToken::open(&dir, OPTS).unwrap();
    token.login("correct horse").await.unwrap();
    for key in [&a, &b, &c] {
        assert!(token.private_key(&key.id).is_ok(), "{}", key.label);
    }

    // A wrong PIN is refused as by a full login.
    let token = SoftToken::open(&dir, OPTS).unwrap();
    assert!(matches!(token.login_for("wrong pin", &[]).await, Err(TokenError::WrongPin { failures: 1 })));
    assert!(!token.is_logged_in());
}

#[tokio::test]
async fn certificates_are_imported_for_their_key_and_follow_x_road_states() {
    use musubi_pki::token::CertStatus;
    let dir = scratch("certs");
    let token = SoftToken::init(&dir, "123456", OPTS).unwrap();
    let key = token.generate(KeyRole::Sign, "k", KeyAlgorithm::EcdsaP256).unwrap();
    let ca = DevCa::new("States CA").unwrap();
    let member = ClientId::member("JP", "GOV", "1001").unwrap();
    let pkcs8 = token.private_key(&key.id).unwrap();
    let cert = ca.sign_csr(&csr::create(&pkcs8, &csr::Subject::Sign(member)).unwrap(), Usage::Sign).unwrap();
    let info = token.import_certificate(&cert).unwrap();
    assert_eq!((info.status, info.active, info.key_id.as_str()), (CertStatus::Saved, true, key.id.as_str()));
    assert!(matches!(token.import_certificate(&cert), Err(TokenError::CertificateExists(_))));
    // A certificate for a key the token does not hold is refused.
    let foreign = ca.issue("x", "Org", Usage::Sign, &[]).unwrap();
    assert!(matches!(token.import_certificate(&foreign.cert_der), Err(TokenError::NoKeyForCertificate(_))));
    // States: saved → registration in progress → registered; not registered → saved.
    assert!(matches!(
        token.set_status(&info.hash, CertStatus::DeletionInProgress),
        Err(TokenError::BadTransition { .. })
    ));
    token.set_status(&info.hash, CertStatus::RegistrationInProgress).unwrap();
    token.set_status(&info.hash, CertStatus::Registered).unwrap();
    token.set_active(&info.hash, false).unwrap();
    // Kept across a reopen.
    drop(token);
    let token = SoftToken::open(&dir, OPTS).unwrap();
    let certs = token.certificates();
    assert_eq!(certs.len(), 1);
    assert_eq!((certs[0].status, certs[0].active), (CertStatus::Registered, false));
    assert_eq!(certs[0].der(), cert);
    // Deleting the key deletes its certificates.
    token.delete(&key.id).unwrap();
    assert!(token.certificates().is_empty());
}
