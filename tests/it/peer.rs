//! The server proxy on 5500 as a peer security server sees it: this test acts
//! as the consumer's security server (or as an impostor) over mutual TLS.

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use musubi::demo::{example_request, ids};
use musubi_pki::{DevCa, Issued, SigningKey, Usage};
use musubi_protocol::mime::Part;
use musubi_protocol::transport;
use musubi_protocol::xades::{self, DataPart};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

use crate::network;

/// The test peer checks nothing about the server: it is the server under test.
#[derive(Debug)]
pub(crate) struct AnyServer;

impl ServerCertVerifier for AnyServer {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algs = rustls::crypto::ring::default_provider().signature_verification_algorithms;
        rustls::crypto::verify_tls12_signature(m, c, d, &algs)
    }
    fn verify_tls13_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algs = rustls::crypto::ring::default_provider().signature_verification_algorithms;
        rustls::crypto::verify_tls13_signature(m, c, d, &algs)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        rustls::crypto::ring::default_provider().signature_verification_algorithms.supported_schemes()
    }
}

/// Sends `body` as a transport message to `addr`, presenting `auth`.
/// Returns (faultcode or "ok", body) or the transport error text.
async fn send(addr: std::net::SocketAddr, auth: &Issued, body: Vec<u8>, ct: &str) -> Result<(String, String), String> {
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyServer))
        .with_client_auth_cert(
            vec![CertificateDer::from(auth.cert_der.clone())],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(auth.key_pkcs8.clone())),
        )
        .unwrap();
    let tcp = tokio::net::TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("peer.invalid").unwrap(), tcp)
        .await
        .map_err(|e| e.to_string())?;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(TokioIo::new(tls)).await.map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    let req = http::Request::post("/")
        .header("host", addr.to_string())
        .header("content-type", ct)
        .header(transport::ORIGINAL_CONTENT_TYPE, "text/xml; charset=UTF-8")
        .body(Full::new(Bytes::from(body)))
        .unwrap();
    let resp = sender.send_request(req).await.map_err(|e| e.to_string())?;
    let body =
        String::from_utf8_lossy(&resp.into_body().collect().await.map_err(|e| e.to_string())?.to_bytes()).into_owned();
    let code = body.split("<faultcode>").nth(1).and_then(|s| s.split("</faultcode>").next()).unwrap_or("ok").to_owned();
    Ok((code, body))
}

/// A fresh OCSP response for `cert` from the network's CA.
fn ocsp_for(ca: &DevCa, cert: &Issued) -> Vec<u8> {
    let req = musubi_pki::ocsp::build_request(&cert.cert_der, ca.cert_der()).unwrap();
    ca.ocsp_respond(&req, time::OffsetDateTime::now_utc())
}

fn signed(ca: &DevCa, key: &Issued, soap: &[u8]) -> Vec<u8> {
    let signer = SigningKey::from_pkcs8(&key.key_pkcs8, key.cert_der.clone()).unwrap();
    let ocsp = ocsp_for(ca, key);
    xades::sign_with_ocsp(
        &signer,
        &[DataPart { uri: "/message.xml", bytes: soap }],
        "2026-11-24T00:00:00Z",
        Some(&ocsp),
    )
    .unwrap()
}

fn encode(soap: &[u8], signature: Option<&[u8]>, auth_ocsp: &[u8]) -> (Vec<u8>, String) {
    match signature {
        Some(sig) => transport::encode("it-boundary", &[auth_ocsp], &[], soap, &[], sig),
        None => {
            let mut w = musubi_protocol::mime::MultipartWriter::new("it-boundary");
            w.part(&[("Content-Type", "application/ocsp-response")], auth_ocsp);
            w.part(&[("Content-Type", "text/xml; charset=UTF-8")], soap);
            (w.finish(), "multipart/mixed; boundary=it-boundary".to_owned())
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_proxy_checks_peer_certificates_and_signatures() {
    let net = network("peer", 20, true).await;
    let sp = net.provider.server_proxy_addr;
    let (_, _, service, _) = ids();
    let soap = example_request(&service, "it-peer").into_bytes();
    let auth_ocsp = ocsp_for(&net.ca, &net.consumer_auth);

    // The genuine consumer server, correctly signed: served.
    let (body, ct) = encode(&soap, Some(&signed(&net.ca, &net.consumer_sign, &soap)), &auth_ocsp);
    let (code, text) = send(sp, &net.consumer_auth, body, &ct).await.expect("registered peer is served");
    assert_eq!(code, "ok", "{text}");
    assert!(text.contains("22.5"), "{text}");

    // A message covered by a batch signature: one signature over a hash chain
    // result, sent with the message's hash chain.
    let signer = SigningKey::from_pkcs8(&net.consumer_sign.key_pkcs8, net.consumer_sign.cert_der.clone()).unwrap();
    let other = example_request(&service, "it-peer-other").into_bytes();
    let shares = xades::sign_batch(
        &signer,
        &[vec![DataPart { uri: "/message.xml", bytes: &other }], vec![DataPart { uri: "/message.xml", bytes: &soap }]],
        "2026-11-24T00:00:00Z",
        Some(&ocsp_for(&net.ca, &net.consumer_sign)),
    )
    .unwrap();
    let share = &shares[1];
    let batch = Some((share.hash_chain_result.as_slice(), share.hash_chain.as_slice()));
    let (body, ct) = transport::encode_signed("it-boundary", &[&auth_ocsp], &[], &soap, &[], &share.signature, batch);
    let (code, text) = send(sp, &net.consumer_auth, body, &ct).await.unwrap();
    assert_eq!(code, "ok", "{text}");
    // … but not with another message's hash chain.
    let wrong = Some((share.hash_chain_result.as_slice(), shares[0].hash_chain.as_slice()));
    let (body, ct) = transport::encode_signed("it-boundary", &[&auth_ocsp], &[], &soap, &[], &share.signature, wrong);
    let (code, _) = send(sp, &net.consumer_auth, body, &ct).await.unwrap();
    assert_eq!(code, "server.serverproxy.invalid_hash_chain_ref");

    // A message changed after signing.
    let sig = signed(&net.ca, &net.consumer_sign, &soap);
    let tampered = String::from_utf8(soap.clone()).unwrap().replace("living", "bedroom").into_bytes();
    let (body, ct) = encode(&tampered, Some(&sig), &auth_ocsp);
    let (code, _) = send(sp, &net.consumer_auth, body, &ct).await.unwrap();
    assert_eq!(code, "server.serverproxy.invalid_signature_value");

    // A large attachment: received as it arrives (spooled to disk and hashed on
    // the way), checked against the signature, logged whole, its file removed after.
    let large: Vec<u8> = (0..3 * 1024 * 1024 + 7).map(|i: u32| (i * 7 % 251) as u8).collect();
    let soap_large = example_request(&service, "it-peer-large").into_bytes();
    let with_attachment = |attachment: &[u8]| {
        let parts =
            [DataPart { uri: "/message.xml", bytes: &soap_large }, DataPart { uri: "/attachment1", bytes: &large }];
        let sig = xades::sign_with_ocsp(
            &signer,
            &parts,
            "2026-11-24T00:00:00Z",
            Some(&ocsp_for(&net.ca, &net.consumer_sign)),
        )
        .unwrap();
        let att = [Part { headers: vec![("Content-Type", "application/octet-stream")], body: attachment }];
        transport::encode("it-boundary", &[&auth_ocsp], &[], &soap_large, &att, &sig)
    };
    let (body, ct) = with_attachment(&large);
    let (code, text) = send(sp, &net.consumer_auth, body, &ct).await.unwrap();
    assert_eq!(code, "ok", "{text}");
    let logged = net.provider.message_log().archived_records("it-peer-large").await.unwrap();
    assert_eq!(logged[0].attachments, std::slice::from_ref(&large), "the attachment is logged whole");
    let spool = net.provider.state_dir().join("spool");
    assert_eq!(std::fs::read_dir(&spool).unwrap().count(), 0, "spool files go when the exchange is done");
    // The same signature over an attachment changed in one byte: refused.
    let mut changed = large.clone();
    changed[2_000_000] ^= 1;
    let (body, ct) = with_attachment(&changed);
    let (code, _) = send(sp, &net.consumer_auth, body, &ct).await.unwrap();
    assert_eq!(code, "server.serverproxy.invalid_signature_value");
    assert_eq!(std::fs::read_dir(&spool).unwrap().count(), 0, "a refused message leaves no spool file");

    // A signature value that was changed.
    let sig = String::from_utf8(signed(&net.ca, &net.consumer_sign, &soap)).unwrap();
    let value = sig.split("signature-value\">").nth(1).unwrap().split('<').next().unwrap().to_owned();
    let mut flipped = value.clone().into_bytes();
    flipped[10] = if flipped[10] == b'A' { b'B' } else { b'A' };
    let broken = sig.replace(&value, std::str::from_utf8(&flipped).unwrap());
    assert_ne!(broken, sig);
    let (body, ct) = encode(&soap, Some(broken.as_bytes()), &auth_ocsp);
    let (code, _) = send(sp, &net.consumer_auth, body, &ct).await.unwrap();
    assert_eq!(code, "server.serverproxy.invalid_signature_value");

    // Signed with a key that is not the member's registered signing key.
    let rogue = net.ca.issue("1001", "Demo City", Usage::Sign, &[]).unwrap();
    let (body, ct) = encode(&soap, Some(&signed(&net.ca, &rogue, &soap)), &auth_ocsp);
    let (code, _) = send(sp, &net.consumer_auth, body, &ct).await.unwrap();
    assert_eq!(code, "server.serverproxy.incorrect_certificate");

    // Not signed at all.
    let (body, ct) = encode(&soap, None, &auth_ocsp);
    let (code, _) = send(sp, &net.consumer_auth, body, &ct).await.unwrap();
    assert_eq!(code, "server.serverproxy.missing_signature");

    // No OCSP response for the sending server's authentication certificate,
    // or one about another certificate.
    let sig = signed(&net.ca, &net.consumer_sign, &soap);
    let (body, ct) = transport::encode("it-boundary", &[], &[], &soap, &[], &sig);
    let (code, text) = send(sp, &net.consumer_auth, body, &ct).await.unwrap();
    assert_eq!(code, "server.serverproxy.cert_validation", "{text}");
    assert!(text.contains("ss-consumer"), "the fault names the certificate: {text}");
    let other = ocsp_for(&net.ca, &net.consumer_sign);
    let (body, ct) = encode(&soap, Some(&sig), &other);
    let (code, _) = send(sp, &net.consumer_auth, body, &ct).await.unwrap();
    assert_eq!(code, "server.serverproxy.cert_validation");
    // A signature without the signer's OCSP response.
    let signer = SigningKey::from_pkcs8(&net.consumer_sign.key_pkcs8, net.consumer_sign.cert_der.clone()).unwrap();
    let bare = xades::sign(&signer, &[DataPart { uri: "/message.xml", bytes: &soap }], "2026-11-24T00:00:00Z").unwrap();
    let (body, ct) = encode(&soap, Some(&bare), &auth_ocsp);
    let (code, _) = send(sp, &net.consumer_auth, body, &ct).await.unwrap();
    assert_eq!(code, "server.serverproxy.cert_validation");

    // A plain SOAP message sent straight to the server proxy.
    let (code, _) = send(sp, &net.consumer_auth, soap.clone(), "text/xml; charset=UTF-8").await.unwrap();
    assert_eq!(code, "server.serverproxy.service_failed.invalid_content_type");

    // TLS clients whose certificate is not a registered authentication certificate.
    let unregistered = net.ca.issue("impostor", "Demo City", Usage::Auth, &["127.0.20.9"]).unwrap();
    let (body, ct) = encode(&soap, Some(&signed(&net.ca, &net.consumer_sign, &soap)), &auth_ocsp);
    let refused = send(sp, &unregistered, body.clone(), &ct).await;
    assert!(refused.is_err(), "unregistered authentication certificate was served: {refused:?}");
    let other_ca = DevCa::new("Other CA").unwrap();
    let foreign = other_ca.issue("ss-consumer", "Demo City", Usage::Auth, &["127.0.20.2"]).unwrap();
    let refused = send(sp, &foreign, body.clone(), &ct).await;
    assert!(refused.is_err(), "certificate of an unknown CA was served: {refused:?}");

    // The genuine peer is still served after all that.
    let (code, _) = send(sp, &net.consumer_auth, body.clone(), &ct).await.unwrap();
    assert_eq!(code, "ok");

    // Its authentication certificate revoked: the handshake may succeed (TLS
    // carries no OCSP), but the transport message with the revoked status is refused.
    assert!(net.ca.revoke(&net.consumer_auth.cert_der));
    let revoked = ocsp_for(&net.ca, &net.consumer_auth);
    let (body, ct) = encode(&soap, Some(&signed(&net.ca, &net.consumer_sign, &soap)), &revoked);
    let (code, text) = send(sp, &net.consumer_auth, body, &ct).await.unwrap();
    assert_eq!(code, "server.serverproxy.cert_validation", "{text}");
    assert!(text.contains("revoked"), "the fault says the certificate is revoked: {text}");
    net.shutdown().await;
}
