//! Generation → download → verification → application: a central server on
//! loopback and a security server's configuration client, through a global
//! group change and a signing-key rotation.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use musubi_central_server::CentralConf;
use musubi_protocol::ClientId;
use musubi_protocol::globalconf;
use musubi_protocol::sharedparams;
use musubi_security_server::confclient;
use musubi_security_server::confdir::{self, Params};

#[path = "../../security-server/tests/common/mod.rs"]
mod common;
use common::postgres;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_registry_on_sqlite_drives_the_configuration() {
    scenario("sqlite", 2, None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_registry_on_postgresql_drives_the_configuration() {
    if let Some(url) = postgres("central").await {
        scenario("postgres", 3, Some(url)).await;
    }
}

/// Security servers follow the central server's configuration through
/// changes and a key rotation.
async fn scenario(name: &str, host: u8, database_url: Option<String>) {
    let state = std::env::temp_dir().join(format!("musubi-cs-it-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&state);
    let addr = format!("127.0.42.{host}:18081");
    let conf = CentralConf {
        instance: "DEMO".into(),
        state_dir: state.join("cs"),
        database_url,
        database_password_file: None,
        conf_listen: addr.parse().unwrap(),
        public_address: addr.clone(),
        generation_interval_secs: 3600,
        expire_after_secs: 600,
        management_listen: None,
        admin_listen: None,
    };
    let cs = musubi_central_server::start(conf).await.unwrap();
    let reg = &cs.registry;
    let owner = ClientId::member("DEMO", "COM", "2002").unwrap();
    let sub = ClientId::subsystem("DEMO", "COM", "2002", "home").unwrap();
    reg.add_member_class("COM", "Companies").await.unwrap();
    reg.add_member(&owner, "Demo Home Cloud").await.unwrap();
    reg.add_subsystem(&sub).await.unwrap();
    assert!(
        reg.add_subsystem(&ClientId::subsystem("DEMO", "COM", "9999", "x").unwrap()).await.is_err(),
        "no such member"
    );
    reg.add_server(&owner, "ss-provider", "127.0.42.3", "abcd").await.unwrap();
    reg.add_server_client(&owner, "ss-provider", &sub).await.unwrap();
    reg.add_tsa("Demo TSA", "http://127.0.42.5:8899/", &[0x30, 0x03, 0x02, 0x01, 0x01]).await.unwrap();
    reg.set_setting("ocspFreshnessSeconds", "3600").await.unwrap();
    cs.generate().await.unwrap();

    // A new security server imports the anchor and downloads.
    let anchor = globalconf::parse_anchor(cs.anchor().await.unwrap().as_bytes()).unwrap();
    assert_eq!(anchor.instance, "DEMO");
    let root = state.join("ss/globalconf");
    let t = Duration::from_secs(5);
    let follow = || async {
        let dl = confclient::fetch(&cs.directory_url(), t).await?;
        confclient::check(&anchor, &confclient::in_force(&root), &dl)?;
        confclient::store(&root, "DEMO", &dl)?;
        Ok::<_, confclient::ConfClientError>(dl)
    };
    let dl = follow().await.unwrap();
    let lifetime = dl.directory.expire_date - cs.generated_at().unwrap();
    assert!((599..=601).contains(&lifetime.whole_seconds()), "expires 600 s after generation: {lifetime}");
    let shared = || {
        let dir = confdir::read(&confclient::in_force_dir(&root).unwrap()).unwrap();
        sharedparams::read(&std::fs::read(&dir.find("DEMO", Params::Shared).unwrap().path).unwrap()).unwrap()
    };
    let p = shared();
    assert_eq!(p.directory.members[0].id, owner);
    assert_eq!(p.directory.members[0].subsystems, ["home"]);
    assert_eq!(p.directory.servers[0].clients, std::slice::from_ref(&sub));
    assert!(p.directory.in_group("security-server-owners", &owner), "the automatic owners group");
    assert_eq!(p.ocsp_freshness_seconds, Some(3600));
    assert_eq!(p.tsas[0].url, "http://127.0.42.5:8899/");

    // A global group change reaches the security server with the next generation.
    let consumer = ClientId::subsystem("DEMO", "GOV", "1001", "care").unwrap();
    reg.add_group_member("care-providers", "Care providers", &consumer).await.unwrap();
    cs.generate().await.unwrap();
    follow().await.unwrap();
    assert!(shared().directory.in_group("care-providers", &consumer));
    reg.remove_group_member("care-providers", &consumer).await.unwrap();
    cs.generate().await.unwrap();
    follow().await.unwrap();
    assert!(!shared().directory.in_group("care-providers", &consumer));

    // Rotation: the new key is announced first (still signed by the old one)…
    let new = reg.new_signing_key().await.unwrap();
    cs.generate().await.unwrap();
    follow().await.unwrap();
    assert!(confclient::in_force(&root).announced.contains(&new.cert));
    // …then signs; the server follows although its anchor only knows the old key.
    reg.activate_signing_key(new.id).await.unwrap();
    cs.generate().await.unwrap();
    let dl = follow().await.unwrap();
    assert_eq!(dl.directory.verify(std::slice::from_ref(&new.cert)), Ok(0));
    assert!(dl.directory.verify(&anchor.certs()).is_err(), "the anchor's key no longer signs");

    // A server that skipped the announcement cannot follow: fail closed.
    let fresh_root = state.join("ss2/globalconf");
    let dl = confclient::fetch(&cs.directory_url(), t).await.unwrap();
    let e = confclient::check(&anchor, &confclient::in_force(&fresh_root), &dl).unwrap_err();
    assert!(e.to_string().contains("no trusted verification certificate"), "{e}");

    // The database goes away: generation fails and the last good
    // configuration stays published, whole.
    let before = confclient::fetch(&cs.directory_url(), t).await.unwrap();
    reg.close().await;
    assert!(cs.generate().await.is_err());
    let after = confclient::fetch(&cs.directory_url(), t).await.unwrap();
    assert_eq!(before.directory, after.directory);
    assert_eq!(after.directory.verify(std::slice::from_ref(&new.cert)), Ok(0));
    cs.shutdown();
    let _ = std::fs::remove_dir_all(&state);
}

/// What a security server would send: a request signed with its
/// authentication key and a member's signing key, with an OCSP response for
/// the signing certificate.
#[derive(Clone)]
struct Sender {
    auth: musubi_pki::Issued,
    sign: musubi_pki::Issued,
    ocsp: Vec<u8>,
}

fn issue(ca: &musubi_pki::DevCa, subject: musubi_pki::csr::Subject, usage: musubi_pki::Usage) -> musubi_pki::Issued {
    let key = musubi_pki::generate_ecdsa_key().unwrap();
    let cert = ca.sign_csr(&musubi_pki::csr::create(&key, &subject).unwrap(), usage).unwrap();
    musubi_pki::Issued { cert_der: cert, key_pkcs8: key }
}

fn ocsp_of(ca: &musubi_pki::DevCa, cert: &[u8]) -> Vec<u8> {
    let req = musubi_pki::ocsp::build_request(cert, ca.cert_der()).unwrap();
    ca.ocsp_respond(&req, time::OffsetDateTime::now_utc())
}

impl Sender {
    fn new(ca: &musubi_pki::DevCa, server: &musubi_protocol::SecurityServerId, member: &ClientId) -> Self {
        use musubi_pki::csr::Subject;
        let auth = issue(ca, Subject::Auth(server.clone()), musubi_pki::Usage::Auth);
        let sign = issue(ca, Subject::Sign(member.clone()), musubi_pki::Usage::Sign);
        let ocsp = ocsp_of(ca, &sign.cert_der);
        Self { auth, sign, ocsp }
    }

    fn signed(&self, request: musubi_protocol::management::Request) -> musubi_protocol::management::Signed {
        use musubi_protocol::management::{Signature, Signed, request_soap};
        use musubi_protocol::xades::Signer as _;
        let soap = request_soap(&request, "t-1").unwrap().into_bytes();
        let sig = |i: &musubi_pki::Issued| {
            let key = musubi_pki::SigningKey::from_pkcs8(&i.key_pkcs8, i.cert_der.clone()).unwrap();
            Signature { algorithm: "SHA256withECDSA".into(), value: key.sign(&soap).unwrap(), cert: i.cert_der.clone() }
        };
        Signed {
            id: "t-1".into(),
            sender: request.server().owner().clone(),
            auth: sig(&self.auth),
            member: sig(&self.sign),
            member_ocsp: self.ocsp.clone(),
            request,
            soap,
        }
    }
}

async fn post(
    cs: &musubi_central_server::Handle,
    pinned: &[u8],
    s: &musubi_protocol::management::Signed,
) -> Result<i64, String> {
    let url = format!("https://{}/managementservice/", cs.management_addr.unwrap());
    let (ct, body) = musubi_protocol::management::encode(s);
    let answer = musubi_security_server::registration::post(&url, pinned.to_vec(), &ct, body)
        .await
        .map_err(|e| e.to_string())?;
    musubi_protocol::management::parse_response(&answer).map_err(|e| e.message)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn management_requests_are_checked_before_they_are_kept() {
    use musubi_central_server::requests::Status;
    use musubi_protocol::management::Request;
    let state = std::env::temp_dir().join(format!("musubi-cs-mgmt-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&state);
    let conf = CentralConf {
        instance: "DEMO".into(),
        state_dir: state.join("cs"),
        database_url: None,
        database_password_file: None,
        conf_listen: "127.0.42.4:18081".parse().unwrap(),
        public_address: "127.0.42.4:18081".into(),
        generation_interval_secs: 3600,
        expire_after_secs: 600,
        management_listen: Some("127.0.42.4:14001".parse().unwrap()),
        admin_listen: None,
    };
    let cs = musubi_central_server::start(conf).await.unwrap();
    let reg = &cs.registry;
    let owner = ClientId::member("DEMO", "GOV", "1001").unwrap();
    let server = musubi_protocol::SecurityServerId::new(owner.clone(), "ss1").unwrap();
    reg.add_member_class("GOV", "Government").await.unwrap();
    reg.add_member(&owner, "Demo City").await.unwrap();
    let ca = musubi_pki::DevCa::new("Test CA").unwrap();
    reg.add_ca("Test CA", ca.cert_der(), &[("http://127.0.42.5:8888/".into(), None)], None).await.unwrap();
    cs.generate().await.unwrap();
    let pem = std::fs::read_to_string(state.join("cs/keys/management-tls.pem")).unwrap();
    let pinned = musubi_pki::pem_decode("CERTIFICATE", &pem).unwrap();
    let x = Sender::new(&ca, &server, &owner);
    let auth_cert_reg = |s: &Sender| Request::AuthCertReg {
        server: server.clone(),
        address: "127.0.42.9".into(),
        auth_cert: s.auth.cert_der.clone(),
    };

    // The published configuration names the service and its certificate.
    let dl = confclient::fetch(&cs.directory_url(), Duration::from_secs(5)).await.unwrap();
    let private = dl.files.iter().find(|(f, _)| f.content_identifier == "PRIVATE-PARAMETERS").unwrap();
    let private = sharedparams::read_private(&private.1).unwrap();
    assert_eq!(private.management, Some(("https://127.0.42.4:14001/managementservice/".into(), pinned.clone())));

    // A service that does not present the published certificate is not talked to.
    let other = musubi_pki::self_signed_cert(&musubi_pki::generate_ecdsa_key().unwrap(), "impostor").unwrap();
    let e = post(&cs, &other, &x.signed(auth_cert_reg(&x))).await.unwrap_err();
    assert!(e.contains("TLS"), "{e}");

    // Tampered after signing: the signatures no longer verify.
    let mut tampered = x.signed(auth_cert_reg(&x));
    tampered.soap = String::from_utf8(tampered.soap).unwrap().replace("127.0.42.9", "127.0.42.6").into_bytes();
    let e = post(&cs, &pinned, &tampered).await.unwrap_err();
    assert!(e.contains("invalid_signature_value"), "{e}");

    // Certificates of a CA that is not approved (same name, other key).
    let y = Sender::new(&musubi_pki::DevCa::new("Test CA").unwrap(), &server, &owner);
    let e = post(&cs, &pinned, &y.signed(auth_cert_reg(&y))).await.unwrap_err();
    assert!(e.contains("cert_validation"), "{e}");

    // A signing certificate of another member than the server's owner.
    let stranger = issue(
        &ca,
        musubi_pki::csr::Subject::Sign(ClientId::member("DEMO", "GOV", "2002").unwrap()),
        musubi_pki::Usage::Sign,
    );
    let z = Sender { ocsp: ocsp_of(&ca, &stranger.cert_der), sign: stranger, ..x.clone() };
    let e = post(&cs, &pinned, &z.signed(auth_cert_reg(&z))).await.unwrap_err();
    assert!(e.contains("incorrect_certificate") && e.contains("GOV/1001"), "{e}");

    // Without a good OCSP response for the signing certificate.
    let no_ocsp = Sender { ocsp: b"not OCSP".to_vec(), ..x.clone() };
    let e = post(&cs, &pinned, &no_ocsp.signed(auth_cert_reg(&no_ocsp))).await.unwrap_err();
    assert!(e.contains("cert_validation") && e.contains("OCSP"), "{e}");
    ca.revoke(&x.sign.cert_der);
    let revoked = Sender { ocsp: ocsp_of(&ca, &x.sign.cert_der), ..x.clone() };
    let e = post(&cs, &pinned, &revoked.signed(auth_cert_reg(&revoked))).await.unwrap_err();
    assert!(e.contains("Revoked"), "{e}");

    // A good request is kept pending; nothing reaches the configuration until it is decided.
    let fresh = Sender::new(&ca, &server, &owner);
    let id = post(&cs, &pinned, &fresh.signed(auth_cert_reg(&fresh))).await.unwrap();
    assert_eq!(reg.requests(Some(Status::Pending)).await.unwrap().iter().map(|r| r.id).collect::<Vec<_>>(), [id]);
    let (params, _) = reg.snapshot("").await.unwrap();
    assert!(params.directory.servers.is_empty());
    reg.reject(id, "officer", "unknown server").await.unwrap();
    let decided = reg.requests(None).await.unwrap();
    assert_eq!((decided[0].status, decided[0].reason.as_deref()), (Status::Rejected, Some("unknown server")));
    assert!(reg.approve(id, "officer").await.unwrap_err().to_string().contains("already rejected"));

    // Sent again and approved: the server, its certificate and its owner as a client are registered.
    let id = post(&cs, &pinned, &fresh.signed(auth_cert_reg(&fresh))).await.unwrap();
    reg.approve(id, "officer").await.unwrap();
    let (params, _) = reg.snapshot("").await.unwrap();
    let s = &params.directory.servers[0];
    assert_eq!((s.server_code.as_str(), s.address.as_deref()), ("ss1", Some("127.0.42.9")));
    assert_eq!(s.auth_cert_hashes, [musubi_central_server::requests::auth_cert_hash(&fresh.auth.cert_der)]);
    assert_eq!(s.clients, std::slice::from_ref(&owner));
    // The same certificate cannot be registered twice.
    let e = post(&cs, &pinned, &fresh.signed(auth_cert_reg(&fresh))).await.unwrap_err();
    assert!(e.contains("already registered"), "{e}");
    cs.shutdown();
}
