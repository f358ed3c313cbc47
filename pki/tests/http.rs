//! The dev TSA and OCSP responder over HTTP, with the async clients.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use musubi_pki::{DevCa, DevTsa, Usage, http, ocsp, tsp};

#[tokio::test]
async fn time_stamps_and_ocsp_over_http() {
    let ca = Arc::new(DevCa::new("HTTP CA").unwrap());
    let tsa = Arc::new(DevTsa::new(&ca, "HTTP TSA").unwrap());
    let (tsa_addr, _stop_tsa) = http::start_tsa(tsa.clone(), "127.0.0.1:0".parse().unwrap()).await.unwrap();
    let data = b"records to stamp";
    let req = tsp::build_request(tsp::DigestAlg::Sha512, data).unwrap();
    let resp = http::fetch_timestamp(&format!("http://{tsa_addr}/"), &req, Duration::from_secs(10)).await.unwrap();
    let token = tsp::parse_response(&resp).unwrap();
    tsp::verify_token(&token, data, &[tsa.cert_der()]).unwrap();

    let (ocsp_addr, stop_ocsp) = http::start_ocsp_responder(ca.clone(), "127.0.0.1:0".parse().unwrap()).await.unwrap();
    let leaf = ca.issue("leaf", "Org", Usage::Auth, &[]).unwrap();
    let req = ocsp::build_request(&leaf.cert_der, ca.cert_der()).unwrap();
    let url = format!("http://{ocsp_addr}/");
    let resp = http::fetch_ocsp(&url, &req, Duration::from_secs(10)).await.unwrap();
    let v = ocsp::verify_response(
        &resp,
        &leaf.cert_der,
        ca.cert_der(),
        time::OffsetDateTime::now_utc(),
        ocsp::DEFAULT_FRESHNESS,
    )
    .unwrap();
    assert_eq!(v.status, ocsp::Status::Good);

    // A responder that is down is a typed network error, not a hang.
    let _ = stop_ocsp.send(true);
    drop(stop_ocsp);
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let err = http::fetch_ocsp(&format!("http://{closed}/"), &req, Duration::from_secs(5)).await.unwrap_err();
    assert!(matches!(err, http::FetchError::Network { .. }), "{err}");
    assert!(matches!(
        http::fetch_ocsp("ftp://x/", &req, Duration::from_secs(1)).await,
        Err(http::FetchError::BadUrl(_))
    ));
}
