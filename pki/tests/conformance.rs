//! OCSP responses from X-Road's own signature vectors
//! (`shared/conformance/xroad/signatures`, README §3.2 and §10).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{dev_trust, dir, pem};

use std::time::Duration;

use base64::Engine as _;
use musubi_pki::ocsp::{self, OcspError, Status};
use time::macros::datetime;

/// The base64 text of the first `<…:name …>` element.
fn element(xml: &str, name: &str) -> Vec<u8> {
    let start = xml.find(&format!(":{name}")).unwrap();
    let body = &xml[start..];
    let body = &body[body.find('>').unwrap() + 1..];
    let text: String = body[..body.find('<').unwrap()].split_whitespace().collect();
    base64::engine::general_purpose::STANDARD.decode(text.replace("&#13;", "")).unwrap()
}

#[test]
fn ocsp_responses_inside_x_road_signatures_verify() {
    let Some(d) = dir() else { return };
    let fresh = Duration::from_secs(3600);

    // sign-0: EE trust, responder = the OCSP signer of globalconf_good_v4, SHA1withRSA,
    // ResponderID by name with the RDNs reversed; validation date 2014-10-30.
    let xml = std::fs::read_to_string(d.join("signatures/common-test/sign-0.xml")).unwrap();
    let (resp, cert) = (element(&xml, "EncapsulatedOCSPValue"), element(&xml, "X509Certificate"));
    let ca = pem(d.join("certs/derived/ee-root-ca-cyber.pem"));
    let signer = pem(d.join("certs/derived/ee-ocsp-signer.pem"));
    let at = datetime!(2014-10-30 00:00 UTC);
    let v = ocsp::verify_response_with_responders(&resp, &cert, &ca, &[&signer], at, fresh).unwrap();
    assert_eq!(v.status, Status::Good);
    // Without the approved responder, the same answer is not trusted.
    assert!(matches!(ocsp::verify_response(&resp, &cert, &ca, at, fresh), Err(OcspError::UnauthorizedResponder(_))));

    // non-batch-sig: DEV trust, SHA256withRSA, at 2024-07-09.
    let xml = std::fs::read_to_string(d.join("signatures/globalconf-impl/non-batch-sig/signatures.xml")).unwrap();
    let (resp, cert) = (element(&xml, "EncapsulatedOCSPValue"), element(&xml, "X509Certificate"));
    let ca = pem(d.join("certs/derived/dev-test-ca.pem"));
    let signer = pem(d.join("certs/derived/dev-test-ocsp.pem"));
    let at = datetime!(2024-07-09 08:00 UTC);
    let v = ocsp::verify_response_with_responders(&resp, &cert, &ca, &[&signer], at, fresh).unwrap();
    assert_eq!(v.status, Status::Good);
    // An hour and a half later it is older than ocspFreshnessSeconds.
    let later = datetime!(2024-07-09 09:30 UTC);
    assert!(matches!(
        ocsp::verify_response_with_responders(&resp, &cert, &ca, &[&signer], later, fresh),
        Err(OcspError::Stale { .. })
    ));
    // Under another CA the CertID does not match.
    let other_ca = pem(d.join("certs/derived/ee-root-ca-cyber.pem"));
    assert!(ocsp::verify_response_with_responders(&resp, &cert, &other_ca, &[&signer], at, fresh).is_err());
}

#[test]
fn x_road_time_stamps_verify_as_x_road_says() {
    use musubi_pki::tsp::{self, TspError};
    let Some(d) = dir() else { return };
    let ts = d.join("timestamps");
    let token = std::fs::read(ts.join("globalconf-impl/valid")).unwrap();
    let data = std::fs::read(ts.join("globalconf-impl/stamped-data")).unwrap();
    let tsa = pem(d.join("certs/derived/ee-tsa-timestamp1.pem"));

    // TimestampVerifierTest.validTimestamp (BER, SHA-256 imprint, 1024-bit RSA TSA).
    let v = tsp::verify_token(&token, &data, &[&tsa]).unwrap();
    assert_eq!(v.gen_time, datetime!(2012-11-29 13:10:04 UTC));
    // Byte 42 of the data changed: the imprint does not match.
    let mut changed = data.clone();
    changed[42] = 0x01;
    assert_eq!(tsp::verify_token(&token, &changed, &[&tsa]), Err(TspError::ImprintMismatch));
    // invalid-signature: the signature does not verify.
    let bad = std::fs::read(ts.join("globalconf-impl/invalid-signature")).unwrap();
    assert!(matches!(tsp::verify_token(&bad, &data, &[&tsa]), Err(TspError::BadSignature(_))));
    // wrongCertificate: the OCSP responder certificates are not TSAs.
    let ocsp_signer = pem(d.join("certs/derived/ee-ocsp-signer.pem"));
    assert_eq!(tsp::verify_token(&token, &data, &[&ocsp_signer]), Err(TspError::UnknownTsa));
    // tsp.response: a full TimeStampResp whose signature verifies; its data is not in the set.
    let resp = std::fs::read(ts.join("tsp.response")).unwrap();
    let token = tsp::parse_response(&resp).unwrap();
    assert_eq!(tsp::verify_token(&token, b"unknown data", &[&tsa]), Err(TspError::ImprintMismatch));
}

/// X-Road's container verification vectors (`AsicContainerVerifierTest`,
/// README §3.1; DEV trust from `certs/derived`).
#[test]
fn x_road_containers_verify_as_x_road_says() {
    use musubi_pki::verify::verify_container;
    let Some(d) = dir() else { return };
    let conf = dev_trust(&d);
    let cases = [
        ("valid-signed-message.asice", "ok"),
        ("valid-non-batch-rest.asice", "ok"),
        ("valid-non-batch-soap-attachments.asice", "ok"),
        ("valid-signed-hashchain.asice", "ok"),
        ("valid-batch-ts.asice", "ok"),
        ("wrong-message.asice", "invalid_signature_value"),
        ("invalid-digest.asice", "invalid_signature_value"),
        ("invalid-signed-hashchain.asice", "malformed_signature.invalid_hash_chain_ref"),
        ("invalid-hashchain-modified-message.asice", "malformed_signature.hashchain_unused_inputs"),
        ("invalid-not-signed-hashchain.asice", "ok"),
        ("invalid-incorrect-references.asice", "malformed_signature"),
        ("invalid-ts-hashchainresult.asice", "malformed_signature"),
    ];
    let mut failures = Vec::new();
    for (file, expected) in cases {
        let bytes = std::fs::read(d.join("asic/asic-verifier-cli").join(file)).unwrap();
        let got = match verify_container(&bytes, &conf) {
            Ok(_) => "ok".to_owned(),
            Err(e) => format!("{} ({})", e.code, e.message),
        };
        if got.split(' ').next() != Some(expected) {
            failures.push(format!("{file}: expected {expected}, got {got}"));
        }
    }
    assert!(failures.is_empty(), "{} of {} differ:\n{}", failures.len(), cases.len(), failures.join("\n"));
}
