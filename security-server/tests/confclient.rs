//! The configuration client against a configuration source on loopback:
//! download → verification → storage; key rotation; replayed, tampered,
//! foreign and unknown-key configurations refused with the one in force kept.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use http_body_util::Full;
use hyper_util::rt::TokioIo;
use musubi_protocol::globalconf::{self, NewFile, Source};
use musubi_security_server::confclient::{self, ConfClientError};
use musubi_security_server::confdir::{self, Params};

struct Key {
    pair: ring::signature::EcdsaKeyPair,
    cert: Vec<u8>,
}

fn key() -> Key {
    let rng = ring::rand::SystemRandom::new();
    let alg = &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING;
    let pkcs8 = ring::signature::EcdsaKeyPair::generate_pkcs8(alg, &rng).unwrap();
    let pair = ring::signature::EcdsaKeyPair::from_pkcs8(alg, pkcs8.as_ref(), &rng).unwrap();
    let kp = rcgen::KeyPair::try_from(pkcs8.as_ref()).unwrap();
    let cert = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap().self_signed(&kp).unwrap().der().to_vec();
    Key { pair, cert }
}

fn shared_params(instance: &str, announce: &Key) -> Vec<u8> {
    format!(
        "<?xml version=\"1.0\"?><tns:conf xmlns:tns=\"http://x-road.eu/xsd/xroad.xsd\"><instanceIdentifier>{instance}</instanceIdentifier>\
         <source><address>127.0.0.1</address><internalVerificationCert>{}</internalVerificationCert></source></tns:conf>",
        base64::engine::general_purpose::STANDARD.encode(&announce.cert)
    )
    .into_bytes()
}

type Site = Arc<Mutex<HashMap<String, (String, Vec<u8>)>>>;

/// Publishes a directory signed by `signer`, expiring `expire_secs` from the epoch, at `/internalconf`.
fn publish(site: &Site, generation: u32, instance: &str, expire_secs: i64, signer: &Key, announce: &Key) {
    let shared = shared_params(instance, announce);
    let private = b"<tns:conf xmlns:tns=\"http://x-road.eu/xsd/xroad.xsd\"/>".to_vec();
    let (sl, pl) = (format!("/V5/{generation}/shared-params.xml"), format!("/V5/{generation}/private-params.xml"));
    let files = [
        NewFile { content_identifier: "SHARED-PARAMETERS", instance, location: &sl, bytes: &shared },
        NewFile { content_identifier: "PRIVATE-PARAMETERS", instance, location: &pl, bytes: &private },
    ];
    let rng = ring::rand::SystemRandom::new();
    let sign = |d: &[u8]| signer.pair.sign(&rng, d).map(|s| s.as_ref().to_vec()).map_err(|_| "sign".to_string());
    let (ct, body) = globalconf::write_directory(
        time::OffsetDateTime::from_unix_timestamp(expire_secs).unwrap(),
        5,
        &files,
        "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256",
        &signer.cert,
        &sign,
    )
    .unwrap();
    let mut s = site.lock().unwrap();
    s.insert("/internalconf".into(), (ct, body));
    s.insert(sl, ("text/xml".into(), shared));
    s.insert(pl, ("text/xml".into(), private));
}

async fn serve(addr: SocketAddr, site: Site) {
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else { return };
            let site = site.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let found = site.lock().unwrap().get(req.uri().path()).cloned();
                    async move {
                        let r = match found {
                            Some((ct, body)) => {
                                let mut r = hyper::Response::new(Full::new(Bytes::from(body)));
                                r.headers_mut().insert("content-type", ct.parse().unwrap());
                                r
                            }
                            None => {
                                let mut r = hyper::Response::new(Full::new(Bytes::new()));
                                *r.status_mut() = hyper::StatusCode::NOT_FOUND;
                                r
                            }
                        };
                        Ok::<_, std::convert::Infallible>(r)
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(tcp), svc).await;
            });
        }
    });
}

#[tokio::test]
async fn downloads_are_verified_stored_and_replaced_only_by_good_newer_ones() {
    let addr: SocketAddr = "127.0.40.9:18081".parse().unwrap();
    let site: Site = Arc::default();
    serve(addr, site.clone()).await;
    let url = format!("http://{addr}/internalconf");
    let root = std::env::temp_dir().join(format!("musubi-confclient-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let (a, b, stranger) = (key(), key(), key());
    let anchor_xml = globalconf::write_anchor(
        "DEMO",
        "2026-11-24T00:00:00Z",
        &[Source { location: url.clone(), certs: vec![a.cert.clone()], external_certs: vec![] }],
    );
    let anchor = globalconf::parse_anchor(anchor_xml.as_bytes()).unwrap();
    let t = Duration::from_secs(5);
    let take = |dl: &confclient::Downloaded| -> Result<(), ConfClientError> {
        confclient::check(&anchor, &confclient::in_force(&root), dl)?;
        confclient::store(&root, &anchor.instance, dl).map(|_| ())
    };

    // Signed with the anchor's key, announcing key B for later.
    publish(&site, 1, "DEMO", 2_000_000_000, &a, &b);
    take(&confclient::fetch(&url, t).await.unwrap()).unwrap();
    let first = confclient::in_force_dir(&root).unwrap();
    let conf = confdir::read(&first).unwrap();
    assert_eq!(conf.instance, "DEMO");
    assert_eq!(conf.find("DEMO", Params::Shared).unwrap().version, 5);
    assert_eq!(confclient::in_force(&root).announced, vec![b.cert.clone()]);

    // Rotation: key B signs now; accepted because the configuration in force announced it.
    publish(&site, 2, "DEMO", 2_000_000_060, &b, &b);
    take(&confclient::fetch(&url, t).await.unwrap()).unwrap();
    let second = confclient::in_force_dir(&root).unwrap();
    assert_ne!(first, second);

    // A replayed older copy is refused.
    publish(&site, 1, "DEMO", 2_000_000_000, &a, &b);
    let e = take(&confclient::fetch(&url, t).await.unwrap()).unwrap_err();
    assert!(matches!(e, ConfClientError::Replayed { .. }), "{e}");
    // A key nobody announced.
    publish(&site, 3, "DEMO", 2_000_000_120, &stranger, &b);
    let e = take(&confclient::fetch(&url, t).await.unwrap()).unwrap_err();
    assert!(matches!(&e, ConfClientError::Directory(g) if g.code() == "global_conf_missing_verification_cert"), "{e}");
    // Another instance's configuration.
    publish(&site, 4, "OTHER", 2_000_000_180, &b, &b);
    let e = take(&confclient::fetch(&url, t).await.unwrap()).unwrap_err();
    assert!(matches!(e, ConfClientError::WrongInstance { .. }), "{e}");
    // A tampered file.
    publish(&site, 5, "DEMO", 2_000_000_240, &b, &b);
    site.lock().unwrap().get_mut("/V5/5/shared-params.xml").unwrap().1.extend_from_slice(b"<!-- x -->");
    let e = take(&confclient::fetch(&url, t).await.unwrap()).unwrap_err();
    assert!(matches!(&e, ConfClientError::Directory(g) if g.code() == "global_conf_invalid_hash"), "{e}");
    // A truncated directory.
    publish(&site, 6, "DEMO", 2_000_000_300, &b, &b);
    site.lock().unwrap().get_mut("/internalconf").unwrap().1.truncate(200);
    assert!(confclient::fetch(&url, t).await.is_err());
    // The source is gone.
    site.lock().unwrap().clear();
    assert!(matches!(confclient::fetch(&url, t).await.unwrap_err(), ConfClientError::Fetch { .. }));

    // Through all of that the rotated configuration stayed in force, readable.
    assert_eq!(confclient::in_force_dir(&root).unwrap(), second);
    assert!(confdir::read(&second).is_ok());
    assert!(!first.exists() || std::fs::read_dir(&root).unwrap().count() <= 3, "old generations are pruned");
    let _ = std::fs::remove_dir_all(&root);
}
