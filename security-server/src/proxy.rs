//! The client proxy (information systems → this server, port 8080) and the
//! server proxy (peer security servers → this server, port 5500), following
//! PR-MESSTRANSP §3.2 and §3.3.
//!
//! Each handler turns every failure into the X-Road SOAP fault a real X-Road
//! server gives, logs it with the query id, and keeps serving others.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::{Either, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use musubi_pki::SigningKey;
use musubi_protocol::mime::{ContentType, HeaderLines, MimeError};
use musubi_protocol::package;
use musubi_protocol::soap::{self, Direction, Limits, Soap, SoapError, SoapMessage};
use musubi_protocol::transport::{self, PartKind, PartOrder, TransportError};
use musubi_protocol::xades::{self, DataPart, PartDigest, Signer as _};
use musubi_protocol::{ClientId, Code, Fault};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::sync::Mutex;
use tracing::{info, warn};

use crate::conf::{SecurityServer, ServerConf, SharedTrust};
use crate::messagelog::{Attachment, MessageLog, Record, Side};
use crate::spool::{Blob, OutBody, Piece, ReceiveError, Received, Spooler};

/// Shared state of both proxies.
pub(crate) struct State {
    pub(crate) conf: ServerConf,
    pub(crate) trust: SharedTrust,
    pub(crate) log: MessageLog,
    /// Signing keys of hosted members, each with its (batch) signer task.
    pub(crate) signing_keys: std::sync::RwLock<Arc<Signers>>,
    /// The authentication certificate and key (replaced when the certificate is renewed).
    pub(crate) auth: std::sync::RwLock<Arc<(CertificateDer<'static>, PrivateKeyDer<'static>)>>,
    /// Pooled connections to peer servers, with the peer's certificate.
    pub(crate) peers: Pool<Arc<Vec<u8>>>,
    /// Pooled connections to providers.
    pub(crate) provider_client: Pool<()>,
    /// TLS towards https providers.
    pub(crate) provider_tls: crate::tls::ProviderTls,
    /// TLS client settings per peer server, kept so sessions can be resumed.
    pub(crate) peer_tls: Mutex<HashMap<String, Arc<rustls::ClientConfig>>>,
    pub(crate) stats: crate::Stats,
    pub(crate) ocsp: Arc<crate::ocsp::OcspCache>,
    pub(crate) timestamper: crate::timestamper::Timestamper,
    /// The expiry of the downloaded global configuration (when following a central server).
    pub(crate) globalconf: Arc<crate::confsync::Freshness>,
    /// Service descriptions, local groups and access rights kept in the database.
    pub(crate) serverconf: crate::serverconf::ServerConfDb,
    /// Held while the trust is read from disk and replaced, so that a reload
    /// that read an older configuration cannot replace a newer one.
    pub(crate) trust_reload: tokio::sync::Mutex<()>,
    /// Batch signatures of peers already verified.
    pub(crate) batch_signatures: BatchSignatures,
    /// Where large parts of messages are spooled (hashing with SHA-512).
    pub(crate) spool: Spooler,
}

/// Batch signatures already verified. Every message of a batch carries the
/// same signature over the same hash chain result, so that signature (XML
/// parse, canonicalization, ECDSA) is checked once per batch. Each message's
/// own hash chain, and the signer, path and OCSP checks, still run per message.
pub(crate) struct BatchSignatures(musubi_pki::memo::Memo<xades::VerifiedSignature>);

impl Default for BatchSignatures {
    fn default() -> Self {
        Self(musubi_pki::memo::Memo::new(1024))
    }
}

impl BatchSignatures {
    fn verify(&self, signature: &[u8], result: &[u8]) -> Result<xades::VerifiedSignature, xades::SignatureError> {
        self.0.get_or_check(&[signature, result], || {
            xades::verify(signature, &[DataPart { uri: xades::BATCH_RESULT_URI, bytes: result }])
        })
    }
}

pub(crate) type Resp = Response<OutBody>;

/// Each hosted member's signing key with its signing task.
pub(crate) type Signers = HashMap<ClientId, (Arc<SigningKey>, crate::signer::BatchSigner)>;

impl State {
    /// The current signing keys of hosted members.
    pub(crate) fn signing_keys(&self) -> Arc<Signers> {
        self.signing_keys.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The current authentication certificate and key.
    pub(crate) fn auth(&self) -> Arc<(CertificateDer<'static>, PrivateKeyDer<'static>)> {
        self.auth.read().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

fn fault_response(fault: &Fault) -> Resp {
    soap_fault_bytes(Bytes::from(fault.to_xml()))
}

/// A SOAP fault as HTTP 500 `text/xml`, as SOAP 1.1 over HTTP requires.
fn soap_fault_bytes(xml: Bytes) -> Resp {
    let mut r = Response::new(OutBody::full(xml));
    *r.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/xml; charset=UTF-8"));
    r
}

/// `requestHash/@algorithmId` appears both as a URI and as a name in X-Road messages.
fn is_sha512(algorithm: &str) -> bool {
    algorithm == soap::SHA512_URI || algorithm.eq_ignore_ascii_case("SHA-512")
}

fn random_hex(n: usize) -> String {
    let mut b = vec![0u8; n];
    // A boundary or request id, not a secret: failure to get randomness is not fatal.
    let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn header_str<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

/// Refuses a declared `Content-Length` above `max` before reading anything.
fn check_declared_length(headers: &HeaderMap, max: usize) -> Result<(), String> {
    match header_str(headers, "content-length").map(|v| v.trim().parse::<u64>()) {
        Some(Ok(n)) if n > max as u64 => Err(format!("a body of {n} bytes exceeds the limit of {max} bytes")),
        Some(Err(_)) => Err("the Content-Length header is not a number".into()),
        _ => Ok(()),
    }
}

/// The digests the signer needs, (URI, SHA-512), of a SOAP part and its
/// attachments. The attachments are packages' (received by `State::spool`,
/// which hashes with SHA-512 as parts arrive).
fn digests(soap: &[u8], attachments: &[Received]) -> Vec<(String, Vec<u8>)> {
    let uris = transport::part_uris(attachments.len());
    std::iter::once(ring::digest::digest(&ring::digest::SHA512, soap).as_ref().to_vec())
        .chain(attachments.iter().map(|a| a.digest.clone()))
        .zip(uris)
        .map(|(d, u)| (u, d))
        .collect()
}

/// Attachments as (MIME headers, body) for an encoder.
fn attachment_headers(attachments: &[Received]) -> Vec<Vec<(&str, &str)>> {
    attachments.iter().map(Received::header_refs).collect()
}

fn with_bodies<'a>(
    headers: &'a [Vec<(&'a str, &'a str)>],
    attachments: &[Received],
) -> Vec<(&'a HeaderLines<'a>, Blob)> {
    headers.iter().zip(attachments).map(|(h, a)| (h.as_slice(), a.body.clone())).collect()
}

/// A package as an information system or a provider sent it, its
/// attachments received as they arrived (large ones spooled to disk).
struct Package {
    content_type: String,
    soap_headers: Vec<(String, String)>,
    soap_bytes: Bytes,
    soap: Soap,
    attachments: Vec<Received>,
}

/// Why a package could not be received.
enum PackageError {
    /// The body could not be read (connection, size limit, disk).
    Read(String),
    /// The package is malformed.
    Invalid(SoapError),
}

/// Receives a package (PR-MESS §3) of content type `content_type`.
async fn receive_package<B>(
    spool: &Spooler,
    content_type: &str,
    body: B,
    max: usize,
    direction: Direction,
) -> Result<Package, PackageError>
where
    B: hyper::body::Body<Data = Bytes> + Unpin,
    B::Error: std::fmt::Display,
{
    let limits = Limits::default();
    let Some(boundary) = package::boundary_of(content_type).map_err(PackageError::Invalid)? else {
        let soap_bytes = crate::spool::read_whole(body, max).await.map_err(PackageError::Read)?;
        let soap = soap::parse(&soap_bytes, direction, &limits).map_err(PackageError::Invalid)?;
        return Ok(Package {
            content_type: content_type.to_owned(),
            soap_headers: Vec::new(),
            soap_bytes,
            soap,
            attachments: Vec::new(),
        });
    };
    let (mut parts, _) = spool.receive(body, &boundary, max, false).await.map_err(|e| match e {
        ReceiveError::Blank => PackageError::Invalid(package::missing_soap()),
        ReceiveError::Mime(m) => {
            PackageError::Invalid(SoapError { code: Code::INVALID_MESSAGE, message: m.to_string() })
        }
        other => PackageError::Read(other.to_string()),
    })?;
    if parts.is_empty() {
        return Err(PackageError::Invalid(package::missing_soap()));
    }
    let first = parts.remove(0);
    package::check_soap_part(&first.header_refs()).map_err(PackageError::Invalid)?;
    for (i, a) in parts.iter().enumerate() {
        package::check_attachment(i + 1, &a.header_refs()).map_err(PackageError::Invalid)?;
    }
    let soap_bytes = first.body.bytes(limits.max_bytes).await.map_err(|e| {
        PackageError::Invalid(SoapError { code: Code::INVALID_MESSAGE, message: format!("the SOAP part: {e}") })
    })?;
    let soap = soap::parse(&soap_bytes, direction, &limits).map_err(PackageError::Invalid)?;
    Ok(Package {
        content_type: content_type.to_owned(),
        soap_headers: first.headers,
        soap_bytes,
        soap,
        attachments: parts,
    })
}

/// A transport message (PR-MESSTRANSP §3.1) as received, its attachments
/// hashed with the announced algorithm as they arrived.
struct Transport {
    ocsp: Vec<Bytes>,
    soap_headers: Vec<(String, String)>,
    soap: Bytes,
    attachments: Vec<Received>,
    signature: Option<Bytes>,
    hash_chain: Option<(Bytes, Bytes)>,
    fault: Option<Bytes>,
    /// The digest method the attachments were hashed with.
    method: &'static str,
}

/// Largest OCSP response part accepted.
const MAX_OCSP_PART: usize = 64 * 1024;

fn terr(code: Code, message: impl Into<String>) -> TransportError {
    TransportError { code, message: message.into() }
}

/// Receives a transport message whose HTTP headers are `headers`.
async fn receive_transport<B>(
    spool: &Spooler,
    headers: &HeaderMap,
    body: B,
    max: usize,
) -> Result<Transport, TransportError>
where
    B: hyper::body::Body<Data = Bytes> + Unpin,
    B::Error: std::fmt::Display,
{
    let boundary = transport::boundary_of(header_str(headers, "content-type").unwrap_or(""))?;
    let spool = spool.hashing(header_str(headers, transport::HASH_ALGORITHM));
    let (parts, trailing) = spool.receive(body, &boundary, max, true).await.map_err(|e| match e {
        ReceiveError::Blank | ReceiveError::Mime(MimeError::BoundaryNotFound(_)) => {
            terr(Code::MISSING_SOAP, "the transport message holds no SOAP part")
        }
        ReceiveError::Mime(m) => terr(Code::INVALID_MESSAGE, m.to_string()),
        ReceiveError::Read(m) => terr(Code::IO_ERROR, m),
        ReceiveError::Spool(e) => terr(Code::INTERNAL_ERROR, format!("cannot spool the message: {e}")),
    })?;
    if trailing {
        return Err(terr(Code::INVALID_MESSAGE, "data after the last part of the transport message"));
    }
    let mut tm = Transport {
        ocsp: Vec::new(),
        soap_headers: Vec::new(),
        soap: Bytes::new(),
        attachments: Vec::new(),
        signature: None,
        hash_chain: None,
        fault: None,
        method: spool.method,
    };
    let mut order = PartOrder::default();
    let mut result = Bytes::new();
    for part in parts {
        let pct = ContentType::parse(part.header("content-type").unwrap_or("text/plain"))
            .map_err(|e| terr(Code::INVALID_CONTENT_TYPE, e.to_string()))?;
        let kind = order.next(&pct)?;
        let limit = match kind {
            PartKind::Ocsp => MAX_OCSP_PART,
            PartKind::HashChainResult | PartKind::HashChain | PartKind::Signature => xades::MAX_SIGNATURE_BYTES,
            PartKind::Soap | PartKind::Fault | PartKind::Attachments => Limits::default().max_bytes,
        };
        let bytes =
            part.body.bytes(limit).await.map_err(|e| terr(Code::INVALID_MESSAGE, format!("{kind:?} part: {e}")))?;
        match kind {
            PartKind::Ocsp => tm.ocsp.push(bytes),
            PartKind::Soap => {
                transport::check_soap_part(&bytes)?;
                tm.soap = bytes;
                tm.soap_headers = part.headers;
            }
            PartKind::Attachments => {
                pct.boundary().map_err(|e| terr(Code::INVALID_CONTENT_TYPE, e.to_string()))?;
                tm.attachments = part.nested;
            }
            PartKind::HashChainResult => result = bytes,
            PartKind::HashChain => tm.hash_chain = Some((std::mem::take(&mut result), bytes)),
            PartKind::Signature => tm.signature = Some(bytes),
            PartKind::Fault => tm.fault = Some(bytes),
        }
    }
    order.finish()?;
    Ok(tm)
}

/// The body and content type of a transport message.
fn transport_body(
    ocsp: &[&[u8]],
    soap_headers: &[(&str, &str)],
    soap: &[u8],
    attachments: &[Received],
    signature: &[u8],
    batch: Option<Chain<'_>>,
) -> (OutBody, String) {
    let heads = attachment_headers(attachments);
    let attachments = with_bodies(&heads, attachments);
    let message = transport::Message { ocsp, soap_headers, soap, attachments: &attachments, signature, batch };
    let (pieces, ct) = message.encode(&random_hex(12));
    (OutBody::new(pieces.into_iter().map(Piece::from)), ct)
}

// ---------------------------------------------------------------- client proxy

/// Handles one request from an information system.
pub(crate) async fn client_proxy(state: Arc<State>, req: Request<Incoming>) -> Resp {
    let started = std::time::Instant::now();
    match client_proxy_inner(&state, req).await {
        Ok(r) => {
            state.stats.exchanges.record(crate::metrics::Side::Client, started.elapsed(), None);
            r
        }
        Err((query_id, fault)) => {
            warn!(query_id = %query_id, code = %fault.code, "client proxy refused request: {}", fault.string);
            state.stats.exchanges.record(crate::metrics::Side::Client, started.elapsed(), Some(&fault.code));
            fault_response(&fault)
        }
    }
}

async fn client_proxy_inner(state: &State, req: Request<Incoming>) -> Result<Resp, (String, Fault)> {
    let nq = |f: Fault| (String::from("-"), f);
    if req.method() == Method::GET && req.uri().path() == "/asic" {
        return asic_export(state, req.uri().query().unwrap_or("")).await.map_err(nq);
    }
    if req.method() == Method::GET && req.uri().path() == "/listClients" {
        return list_clients(state, &req).map_err(nq);
    }
    if req.method() != Method::POST {
        return Err(nq(
            Code::INVALID_HTTP_METHOD.client(format!("must use POST request method instead of {}", req.method()))
        ));
    }
    let headers = req.headers().clone();
    if let Some(action) = header_str(&headers, "soapaction") {
        let a = action.trim();
        let quoted = a.len() >= 2 && a.starts_with('"') && a.ends_with('"');
        if !a.is_empty() && !quoted {
            return Err(nq(
                Code::INVALID_SOAP_ACTION.client(format!("malformed SOAPAction header {action:?}; quote its value"))
            ));
        }
    }
    let content_type = header_str(&headers, "content-type").unwrap_or("").to_owned();
    check_declared_length(&headers, state.conf.max_body_bytes).map_err(|e| nq(Code::INVALID_SOAP.client(e)))?;
    let pkg =
        receive_package(&state.spool, &content_type, req.into_body(), state.conf.max_body_bytes, Direction::Request)
            .await
            .map_err(|e| match e {
                PackageError::Read(e) => nq(Code::INVALID_SOAP.client(format!("cannot read request: {e}"))),
                PackageError::Invalid(e) => nq(e.code.client(e.message)),
            })?;
    let msg = match &pkg.soap {
        Soap::Message(m) => m,
        Soap::Fault(f) => {
            return Err(nq(Fault::new(format!("client.{}", f.code.to_lowercase()), f.string.clone())));
        }
    };
    let h = msg.header().clone();
    let qid = h.id.clone();
    let err = |f: Fault| (qid.clone(), f);
    state.globalconf.check().map_err(|e| err(Code::OUTDATED_GLOBALCONF.client_proxy(e)))?;
    let trust = state.trust.get();
    let me = trust.server(&state.conf.server_id).ok_or_else(|| {
        err(Code::SSL_AUTHENTICATION_FAILED.client_proxy(format!(
            "security server {} is not registered in the global configuration",
            state.conf.server_id
        )))
    })?;
    // X-Road's check: a server whose authentication certificate is not (yet)
    // registered cannot be trusted by any peer.
    let own_auth = musubi_pki::cert_hash(&state.auth().0);
    if !me.auth_cert_hashes.iter().any(|h| h.eq_ignore_ascii_case(&own_auth)) {
        return Err(err(Code::SSL_AUTHENTICATION_FAILED.client_proxy(
            "security server has no valid authentication certificate (its registration is not approved yet)",
        )));
    }
    if !me.hosts(&h.client) {
        return Err(err(
            Code::UNKNOWN_MEMBER.client_proxy(format!("client {} is not registered on this security server", h.client))
        ));
    }
    let keys = state.signing_keys();
    let key = keys.get(&h.client.member_id()).ok_or_else(|| {
        err(Code::UNKNOWN_MEMBER.client_proxy(format!("no signing key for member {}", h.client.member_id())))
    })?;
    let provider = h.service.provider().clone();
    let mut targets: Vec<&SecurityServer> = trust.servers_hosting(&provider).collect();
    if let Some(ss) = &h.security_server {
        targets.retain(|s| &s.id == ss);
    }
    if targets.is_empty() {
        return Err(err(Code::UNKNOWN_MEMBER.client_proxy(format!("cannot find a security server for {provider}"))));
    }
    // Servers in maintenance mode are not sent to (X-Road's maintenance mode).
    let serving: Vec<&SecurityServer> = targets.iter().copied().filter(|s| s.maintenance.is_none()).collect();
    let target = *serving.first().ok_or_else(|| {
        let s = targets[0];
        err(Code::MAINTENANCE_MODE.client_proxy(format!(
            "security server {} is in maintenance mode: {}",
            s.id,
            s.maintenance.as_deref().unwrap_or_default()
        )))
    })?;

    // Refuse while time-stamping has failed for too long: nothing is accepted
    // that could not be time-stamped later.
    state.timestamper.check(&trust).map_err(|e| err(Code::TIMESTAMPER_FAILED.client_proxy(e)))?;
    // This server's own certificates must have fresh good OCSP responses.
    let auth_ocsp = state.ocsp.own_good(&state.auth().0).map_err(|e| err(Code::CERT_VALIDATION.client_proxy(e)))?;
    let sign_ocsp =
        state.ocsp.own_good(key.0.certificate_der()).map_err(|e| err(Code::CERT_VALIDATION.client_proxy(e)))?;

    // Sign the SOAP part and the attachments (alone, or in a batch with other
    // messages waiting for the same key), log, send.
    let signed = key
        .1
        .sign(digests(&pkg.soap_bytes, &pkg.attachments), Some(sign_ocsp))
        .await
        .map_err(|e| err(Code::CANNOT_CREATE_SIGNATURE.client_proxy(e.message)))?;
    let batch = signed.batch.as_ref().map(|(r, c)| (r.as_slice(), c.as_slice()));
    log(state, &h.id, msg, Side::Client, false, (&signed.signature, batch), &pkg.attachments)
        .await
        .map_err(|e| err(Code::LOGGING_FAILED.client_proxy(e)))?;
    let soap_headers: Vec<(&str, &str)> = pkg.soap_headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let (body, ct) =
        transport_body(&[&auth_ocsp], &soap_headers, &pkg.soap_bytes, &pkg.attachments, &signed.signature, batch);
    let mut out = Request::post(format!("https://{}/", target.proxy_address()))
        .header(header::CONTENT_TYPE, ct)
        .header(transport::ORIGINAL_CONTENT_TYPE, &pkg.content_type)
        .header(transport::HASH_ALGORITHM, "SHA-512")
        .header("x-road-request-id", random_hex(16));
    if let Some(a) = header_str(&headers, "soapaction") {
        out = out.header(transport::ORIGINAL_SOAP_ACTION, a);
    }
    let out = out.body(body).map_err(|e| err(Code::INTERNAL_ERROR.client_proxy(e.to_string())))?;
    let (status, rheaders, rbody, lent) = send_to_peer(state, target, out).await.map_err(err)?;
    let read_failed = |e: String| {
        err(Code::IO_ERROR.client_proxy_service_failed(format!("reading the response of {} failed: {e}", target.id)))
    };

    // The answer: a fault (text/xml) or a signed multipart/mixed response.
    let rct = header_str(&rheaders, "content-type").unwrap_or("").to_owned();
    let parsed_ct = ContentType::parse(&rct)
        .map_err(|e| err(Code::INVALID_CONTENT_TYPE.client_proxy_service_failed(e.to_string())))?;
    if parsed_ct.mime == "text/xml" {
        let rbody = crate::spool::read_whole(rbody, state.conf.max_body_bytes).await.map_err(read_failed)?;
        lent.give_back(&state.peers).await;
        return match soap::parse(&rbody, Direction::Response, &Limits::default()) {
            Ok(Soap::Fault(_)) => Ok(soap_fault_bytes(rbody)),
            _ => Err(err(Code::INVALID_MESSAGE.client_proxy_service_failed(format!(
                "server proxy answered HTTP {status} with a non-fault text/xml body"
            )))),
        };
    }
    let tm =
        receive_transport(&state.spool, &rheaders, rbody, state.conf.max_body_bytes).await.map_err(|e| match e {
            TransportError { code, message } if code == Code::IO_ERROR => read_failed(message),
            e => err(e.code.client_proxy_service_failed(e.message)),
        })?;
    lent.give_back(&state.peers).await;
    let resp_msg = verify_transport(state, &tm, &provider, Direction::Response)
        .map_err(|(code, m)| err(code.client_proxy_service_failed(m)))?;
    if let Some(fault) = &tm.fault {
        return Err(err(Fault::new("server.clientproxy.service_failed", String::from_utf8_lossy(fault).into_owned())));
    }
    let rh = resp_msg.header();
    if rh.client != h.client || rh.service != h.service || rh.id != h.id {
        return Err(err(
            Code::INCONSISTENT_RESPONSE.client_proxy_service_failed("response header does not match the request")
        ));
    }
    let expected = xades::sha512_b64(&pkg.soap_bytes);
    match &rh.request_hash {
        Some(rhash) if rhash.value == expected && is_sha512(&rhash.algorithm) => {}
        _ => {
            return Err(err(
                Code::INCONSISTENT_RESPONSE.client_proxy_service_failed("requestHash does not match the request")
            ));
        }
    }
    log(
        state,
        &h.id,
        &resp_msg,
        Side::Client,
        true,
        (tm.signature.as_deref().unwrap_or_default(), tm.hash_chain.as_ref().map(|(r, c)| (&r[..], &c[..]))),
        &tm.attachments,
    )
    .await
    .map_err(|e| err(Code::LOGGING_FAILED.client_proxy(e)))?;
    let original_ct = header_str(&rheaders, transport::ORIGINAL_CONTENT_TYPE).unwrap_or("text/xml; charset=UTF-8");
    info!(query_id = %h.id, client = %h.client, service = %h.service, "exchange completed");
    let soap_headers: Vec<(&str, &str)> = tm.soap_headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let (body, ct) = package_body(original_ct, &soap_headers, &tm.soap, &tm.attachments);
    let mut r = Response::new(body);
    if let Ok(v) = HeaderValue::from_str(&ct) {
        r.headers_mut().insert(header::CONTENT_TYPE, v);
    }
    Ok(r)
}

/// Rebuilds the package the other side's information system sent: its body
/// and content type.
fn package_body(
    original_ct: &str,
    soap_headers: &[(&str, &str)],
    soap: &Bytes,
    attachments: &[Received],
) -> (OutBody, String) {
    match ContentType::parse(original_ct) {
        Ok(ct) if ct.is_multipart() => {
            let boundary = ct.boundary().map(str::to_owned).unwrap_or_else(|_| random_hex(12));
            let heads = attachment_headers(attachments);
            let pieces = package::encode_multipart(&boundary, soap_headers, soap, &with_bodies(&heads, attachments));
            (OutBody::new(pieces.into_iter().map(Piece::from)), original_ct.to_owned())
        }
        _ => (OutBody::full(soap.clone()), original_ct.to_owned()),
    }
}

/// Verifies the signature of a transport message sent on behalf of `member`
/// and parses its SOAP part.
fn verify_transport(
    state: &State,
    tm: &Transport,
    signer: &ClientId,
    direction: Direction,
) -> Result<SoapMessage, (Code, String)> {
    let msg = match soap::parse(&tm.soap, direction, &Limits::default()).map_err(|e| (e.code, e.message))? {
        Soap::Message(m) => m,
        Soap::Fault(f) => return Err((Code::INVALID_MESSAGE, format!("unexpected fault {f}"))),
    };
    let Some(sig) = &tm.signature else {
        return Ok(msg);
    };
    // The SOAP part is at hand; attachments are known by the digests made as they arrived.
    let uris = transport::part_uris(tm.attachments.len());
    let soap = [DataPart { uri: &uris[0], bytes: &tm.soap }];
    let attachments: Vec<PartDigest<'_>> = tm
        .attachments
        .iter()
        .zip(&uris[1..])
        .map(|(a, uri)| PartDigest { uri, method: tm.method, value: &a.digest })
        .collect();
    let chain = tm.hash_chain.as_ref().map(|(r, c)| (&r[..], &c[..]));
    let verified =
        verify_signature(&state.batch_signatures, sig, chain, &soap, &attachments).map_err(|e| (e.code, e.message))?;
    state.trust.get().check_signer(signer, &verified.certificate_der).map_err(|e| (Code::INCORRECT_CERTIFICATE, e))?;
    let now = time::OffsetDateTime::now_utc();
    state.trust.get().check_path(&verified.certificate_der, &[], now).map_err(|e| {
        (
            Code::CERT_VALIDATION,
            format!("signing certificate {}: {e}", crate::ocsp::describe(&verified.certificate_der)),
        )
    })?;
    let embedded: Vec<&[u8]> = verified.ocsp_responses.iter().map(Vec::as_slice).collect();
    state.ocsp.check_peer(&verified.certificate_der, &embedded).map_err(|e| (Code::CERT_VALIDATION, e))?;
    Ok(msg)
}

/// A batch signature's (hash chain result, hash chain).
type Chain<'a> = (&'a [u8], &'a [u8]);

/// Verifies a message's signature over `data`: a batch signature once per
/// batch (through `memo`), then this message's own hash chain to its result.
fn verify_signature(
    memo: &BatchSignatures,
    signature: &[u8],
    hash_chain: Option<Chain<'_>>,
    data: &[DataPart<'_>],
    digested: &[PartDigest<'_>],
) -> Result<xades::VerifiedSignature, xades::SignatureError> {
    match hash_chain {
        Some((result, chain)) => memo
            .verify(signature, result)
            .and_then(|v| xades::verify_batch_chain_parts(result, chain, data, digested).map(|()| v)),
        None => xades::verify_parts(signature, data, digested),
    }
}

async fn log(
    state: &State,
    query_id: &str,
    msg: &SoapMessage,
    side: Side,
    response: bool,
    (signature, hash_chain): (&[u8], Option<Chain<'_>>),
    attachments: &[Received],
) -> Result<(), String> {
    let h = msg.header();
    // Body logging is decided by the local party: the client on the client
    // side, the service provider on the server side.
    let local = match side {
        Side::Client => h.client.clone(),
        Side::Server => h.service.provider().clone(),
    };
    let off = &state.conf.body_logging_off_for;
    let keep_body = state.conf.message_body_logging && !off.contains(&local) && !off.contains(&local.member_id());
    let stripped;
    let message = if keep_body {
        msg.as_bytes()
    } else {
        stripped = msg.without_body();
        &stripped
    };
    // Without the body, attachments are not logged either (X-Road's metadata-only logging).
    let bodies: Vec<Attachment<'_>> = if keep_body {
        attachments
            .iter()
            .map(|a| match &a.body {
                Blob::Memory(b) => Attachment::Bytes(b),
                Blob::File(f) => Attachment::File(f.path()),
            })
            .collect()
    } else {
        Vec::new()
    };
    let rec = Record {
        attachments: &bodies,
        query_id,
        client: &h.client.to_string(),
        service: &h.service.to_string(),
        side,
        response,
        message,
        signature,
        hash_chain,
    };
    state.log.write(&rec).await.map_err(|e| {
        warn!(query_id, "message log write failed: {e}");
        "failed to write the message log; the exchange was stopped".to_owned()
    })?;
    if state.conf.timestamp_immediately {
        crate::timestamper::stamp_now(state)
            .await
            .map_err(|e| format!("cannot time-stamp the message (immediate mode): {e}"))?;
    }
    Ok(())
}

/// How long the client proxy waits for the provider's security server to answer.
const PEER_TIMEOUT: Duration = Duration::from_secs(300);

/// How long data sent to a peer may stay unacknowledged before the connection
/// counts as broken (TCP_USER_TIMEOUT): a peer whose link went down gives a
/// `network_error` fault within this, not after the kernel's retransmissions
/// (a quarter of an hour). A slow provider does not trip it: its security
/// server acknowledges the request at once.
const PEER_UNACKED_TIMEOUT: Duration = Duration::from_secs(15);

/// Keep-alive probes on idle pooled connections to peers, so that one whose
/// link died is found broken before it is lent to an exchange.
fn watch_peer_connection(tcp: &tokio::net::TcpStream) {
    let socket = socket2::SockRef::from(tcp);
    let keepalive = socket2::TcpKeepalive::new()
        .with_time(Duration::from_secs(30))
        .with_interval(Duration::from_secs(5))
        .with_retries(3);
    if let Err(e) =
        socket.set_tcp_user_timeout(Some(PEER_UNACKED_TIMEOUT)).and_then(|()| socket.set_tcp_keepalive(&keepalive))
    {
        warn!("cannot set the timeouts of a connection to a peer: {e}");
    }
}

async fn send_to_peer(
    state: &State,
    target: &SecurityServer,
    req: Request<OutBody>,
) -> Result<(StatusCode, HeaderMap, Incoming, Lent<Arc<Vec<u8>>>), Fault> {
    let addr = target.proxy_address();
    let (mut sender, peer_cert) = match take_ready(&state.peers, &addr).await {
        Some(s) => s,
        None => connect_peer(state, target).await?,
    };
    // The peer's authentication certificate needs a fresh good OCSP response:
    // cached, or downloaded from the peer itself (never from a CA on this path).
    if !state.ocsp.peer_cached(&peer_cert) {
        let responses = crate::ocsp::fetch_from_peer(&target.ocsp_address(), &peer_cert)
            .await
            .map_err(|e| Code::CERT_VALIDATION.client_proxy(e))?;
        let refs: Vec<&[u8]> = responses.iter().map(Vec::as_slice).collect();
        state.ocsp.check_peer(&peer_cert, &refs).map_err(|e| Code::CERT_VALIDATION.client_proxy(e))?;
    }
    let resp = tokio::time::timeout(PEER_TIMEOUT, sender.send_request(req))
        .await
        .map_err(|_| {
            Code::NETWORK_ERROR.client_proxy(format!(
                "{} did not answer within {} s",
                target.id,
                PEER_TIMEOUT.as_secs()
            ))
        })?
        .map_err(|e| Code::NETWORK_ERROR.client_proxy(format!("exchange with {} failed: {e}", target.id)))?;
    let (parts, body) = resp.into_parts();
    Ok((parts.status, parts.headers, body, Lent { key: addr, sender, extra: peer_cert }))
}

/// Idle HTTP/1.1 connections by `host:port`, each with something learned when it was opened.
pub(crate) type Pool<T> = Mutex<HashMap<String, Vec<(SendRequest<OutBody>, T)>>>;

/// A pooled connection lent to one exchange, given back once its answer has
/// been read whole (dropped instead if reading failed).
struct Lent<T> {
    key: String,
    sender: SendRequest<OutBody>,
    extra: T,
}

impl<T> Lent<T> {
    async fn give_back(self, pool: &Pool<T>) {
        pool.lock().await.entry(self.key).or_default().push((self.sender, self.extra));
    }
}

async fn take_ready<T>(pool: &Pool<T>, key: &str) -> Option<(SendRequest<OutBody>, T)> {
    let mut pool = pool.lock().await;
    let list = pool.get_mut(key)?;
    while let Some((mut s, extra)) = list.pop() {
        if !s.is_closed() && s.ready().await.is_ok() {
            return Some((s, extra));
        }
    }
    None
}

async fn peer_tls_config(state: &State, target: &SecurityServer) -> Result<Arc<rustls::ClientConfig>, Fault> {
    let mut cache = state.peer_tls.lock().await;
    if let Some(c) = cache.get(&target.proxy_address()) {
        return Ok(c.clone());
    }
    let auth = state.auth();
    let config = crate::tls::client_config(
        state.trust.clone(),
        target.auth_cert_hashes.clone(),
        auth.0.clone(),
        auth.1.clone_key(),
    )
    .map_err(|e| Code::INTERNAL_ERROR.client_proxy(e.to_string()))?;
    let config = Arc::new(config);
    cache.insert(target.proxy_address(), config.clone());
    Ok(config)
}

async fn connect_peer(state: &State, target: &SecurityServer) -> Result<(SendRequest<OutBody>, Arc<Vec<u8>>), Fault> {
    let addr = target.proxy_address();
    let net = |e: String| Code::NETWORK_ERROR.client_proxy(format!("cannot connect to {} at {addr}: {e}", target.id));
    let config = peer_tls_config(state, target).await?;
    let tcp = tokio::time::timeout(Duration::from_secs(10), tokio::net::TcpStream::connect(&addr))
        .await
        .map_err(|_| net("timed out".into()))?
        .map_err(|e| net(e.to_string()))?;
    let _ = tcp.set_nodelay(true);
    watch_peer_connection(&tcp);
    let name = ServerName::try_from("security-server.invalid").map_err(|e| net(e.to_string()))?;
    let tls = tokio_rustls::TlsConnector::from(config).connect(name, tcp).await.map_err(|e| {
        let rejected_cert = e
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
            .is_some_and(|r| matches!(r, rustls::Error::InvalidCertificate(_)));
        if rejected_cert {
            Code::SSL_AUTHENTICATION_FAILED.client_proxy(format!(
                "{} at {addr} did not present a registered authentication certificate: {e}",
                target.id
            ))
        } else {
            net(e.to_string())
        }
    })?;
    state.stats.peer_connections.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let peer_cert = tls
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first())
        .map(|c| Arc::new(c.to_vec()))
        .ok_or_else(|| net("the peer presented no certificate".into()))?;
    let (sender, conn) = http1_client().handshake(TokioIo::new(tls)).await.map_err(|e| net(e.to_string()))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok((sender, peer_cert))
}

// ---------------------------------------------------------------- server proxy

/// Handles one transport message from a peer whose TLS certificate is `peer_cert`.
pub(crate) async fn server_proxy(state: Arc<State>, peer_cert: Arc<Vec<u8>>, req: Request<Incoming>) -> Resp {
    let started = std::time::Instant::now();
    match server_proxy_inner(&state, &peer_cert, req).await {
        Ok(r) => {
            state.stats.exchanges.record(crate::metrics::Side::Server, started.elapsed(), None);
            r
        }
        Err((query_id, fault)) => {
            warn!(query_id = %query_id, code = %fault.code, "server proxy refused request: {}", fault.string);
            state.stats.exchanges.record(crate::metrics::Side::Server, started.elapsed(), Some(&fault.code));
            fault_response(&fault)
        }
    }
}

async fn server_proxy_inner(state: &State, peer_cert: &[u8], req: Request<Incoming>) -> Result<Resp, (String, Fault)> {
    let nq = |f: Fault| (String::from("-"), f);
    if req.method() != Method::POST {
        return Err(nq(
            Code::INVALID_HTTP_METHOD.server_proxy(format!("must use POST request method instead of {}", req.method()))
        ));
    }
    let headers = req.headers().clone();
    let ct = header_str(&headers, "content-type").unwrap_or("").to_owned();
    let original_ct =
        header_str(&headers, transport::ORIGINAL_CONTENT_TYPE).unwrap_or("text/xml; charset=UTF-8").to_owned();
    check_declared_length(&headers, state.conf.max_body_bytes).map_err(|e| nq(Code::IO_ERROR.server_proxy(e)))?;
    if ContentType::parse(&ct).map(|c| c.mime != "multipart/mixed").unwrap_or(true) {
        return Err(nq(Code::INVALID_CONTENT_TYPE
            .server_proxy_service_failed(format!("invalid content type {ct:?}; expected multipart/mixed"))));
    }
    let tm = receive_transport(&state.spool, &headers, req.into_body(), state.conf.max_body_bytes).await.map_err(
        |e| match e {
            TransportError { code, message } if code == Code::IO_ERROR => {
                nq(Code::IO_ERROR.server_proxy(format!("cannot read request: {message}")))
            }
            e => nq(e.code.server_proxy(e.message)),
        },
    )?;
    let request = match soap::parse(&tm.soap, Direction::Request, &Limits::default()) {
        Ok(Soap::Message(m)) => m,
        Ok(Soap::Fault(_)) => return Err(nq(Code::INVALID_SOAP.server_proxy("a fault is not a request"))),
        Err(e) => return Err(nq(e.code.server_proxy(e.message))),
    };
    let h = request.header().clone();
    let qid = h.id.clone();
    let err = |f: Fault| (qid.clone(), f);
    // This server must itself hold a good authentication certificate.
    state.ocsp.own_good(&state.auth().0).map_err(|e| err(Code::CERT_VALIDATION.server_proxy(e)))?;
    // The sending server must host the client it speaks for, and its
    // authentication certificate must have a fresh good OCSP response.
    let trust = state.trust.get();
    let peer = trust.server_by_auth_hash(&musubi_pki::cert_hash(peer_cert));
    if !peer.is_some_and(|p| p.hosts(&h.client)) {
        return Err(err(Code::SSL_AUTHENTICATION_FAILED
            .server_proxy(format!("client {} is not hosted by the security server that sent the request", h.client))));
    }
    let ocsp: Vec<&[u8]> = tm.ocsp.iter().map(|o| &o[..]).collect();
    state.ocsp.check_peer(peer_cert, &ocsp).map_err(|e| err(Code::CERT_VALIDATION.server_proxy(e)))?;
    if tm.signature.is_none() {
        return Err(err(Code::MISSING_SIGNATURE.server_proxy("the request is not signed")));
    }
    verify_transport(state, &tm, &h.client, Direction::Request).map_err(|(code, m)| err(code.server_proxy(m)))?;
    if !trust.knows_client(&h.client) {
        return Err(err(
            Code::UNKNOWN_MEMBER.server_proxy(format!("client {} is not a member of the network", h.client))
        ));
    }
    // Metaservices are answered here, for every client (X-Road: no access rights apply).
    let meta = crate::metaservice::Meta::of(h.service.service_code());
    if meta.is_some() && !trust.server(&state.conf.server_id).is_some_and(|me| me.hosts(h.service.provider())) {
        return Err(err(Code::UNKNOWN_SERVICE.server_proxy(format!("unknown service {}", h.service))));
    }
    // X-Road's order: the service is known, the client may call it, it is enabled.
    let denied = || {
        err(Code::ACCESS_DENIED
            .server_proxy(format!("request is not allowed: {} may not call {}", h.client, h.service)))
    };
    let db = state.serverconf.snapshot();
    let (provider_url, timeout_secs, ssl_verify) = if meta.is_some() {
        (String::new(), 0, true)
    } else if let Some(service) = state.conf.services.iter().find(|s| s.id == h.service) {
        if !file_service_allows(service, &h.client, &trust) {
            return Err(denied());
        }
        if !service.enabled {
            return Err(err(Code::SERVICE_DISABLED.server_proxy(format!("service {} is disabled", h.service))));
        }
        (service.url.clone(), service.timeout_secs, true)
    } else if let Some((service, description)) = db.service(&h.service) {
        if !db.allows(&h.service, &h.client, |g, c| trust.in_global_group(g, c)) {
            return Err(denied());
        }
        if let Some(notice) = &description.disabled {
            return Err(err(
                Code::SERVICE_DISABLED.server_proxy(format!("service {} is disabled: {notice}", h.service))
            ));
        }
        (service.url.clone(), service.timeout_secs, service.ssl_verify)
    } else {
        return Err(err(Code::UNKNOWN_SERVICE.server_proxy(format!("unknown service {}", h.service))));
    };
    state.globalconf.check().map_err(|e| err(Code::OUTDATED_GLOBALCONF.server_proxy(e)))?;
    state.timestamper.check(&trust).map_err(|e| err(Code::TIMESTAMPER_FAILED.server_proxy(e)))?;
    log(
        state,
        &h.id,
        &request,
        Side::Server,
        false,
        (tm.signature.as_deref().unwrap_or_default(), tm.hash_chain.as_ref().map(|(r, c)| (&r[..], &c[..]))),
        &tm.attachments,
    )
    .await
    .map_err(|e| err(Code::LOGGING_FAILED.server_proxy(e)))?;

    // Forward the package as the client's information system sent it.
    let soap_headers: Vec<(&str, &str)> = tm.soap_headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let (pbody, pct) = package_body(&original_ct, &soap_headers, &tm.soap, &tm.attachments);
    let action = header_str(&headers, transport::ORIGINAL_SOAP_ACTION).map(str::to_owned);
    let (status, rheaders, rbody, lent) = match meta {
        Some(m) => {
            let (status, headers, body) = metaservice_answer(state, &trust, &request, m).await.map_err(err)?;
            (status, headers, Either::Right(Full::new(body)), None)
        }
        None => {
            let (status, headers, body, lent) =
                forward(state, &provider_url, timeout_secs, ssl_verify, &pct, action.as_deref(), pbody)
                    .await
                    .map_err(err)?;
            (status, headers, Either::Left(body), Some(lent))
        }
    };
    let rct = header_str(&rheaders, "content-type").unwrap_or("").to_owned();
    // SOAP over HTTP answers 200, or 500 with a fault; anything else is an HTTP error.
    if !status.is_success() && status != StatusCode::INTERNAL_SERVER_ERROR {
        return Err(err(Code::HTTP_ERROR.server_proxy_service_failed(format!("the provider answered HTTP {status}"))));
    }
    let receiving = receive_package(&state.spool, &rct, rbody, state.conf.max_body_bytes, Direction::Response);
    let resp = tokio::time::timeout(Duration::from_secs(timeout_secs.max(1)), receiving)
        .await
        .map_err(|_| {
            err(Code::NETWORK_ERROR
                .server_proxy_service_failed(format!("the provider did not send its answer within {timeout_secs} s")))
        })?
        .map_err(|e| match e {
            PackageError::Read(m) => err(Code::IO_ERROR.server_proxy_service_failed(m)),
            PackageError::Invalid(e) => err(e.code.server_proxy_service_failed(e.message)),
        })?;
    if let Some(lent) = lent {
        lent.give_back(&state.provider_client).await;
    }
    let rmsg = match &resp.soap {
        Soap::Fault(_) => {
            return Ok(soap_fault_bytes(resp.soap_bytes.clone()));
        }
        Soap::Message(m) => m,
    };
    let rh = rmsg.header();
    if rh.client != h.client || rh.service != h.service || rh.id != h.id {
        return Err(err(Code::INCONSISTENT_RESPONSE
            .server_proxy_service_failed("the provider's response header does not match the request")));
    }
    let with_hash = rmsg.with_request_hash(soap::SHA512_URI, &xades::sha512_b64(&tm.soap));
    let signed_msg = match soap::parse(&with_hash, Direction::Response, &Limits::default()) {
        Ok(Soap::Message(m)) => m,
        _ => return Err(err(Code::INTERNAL_ERROR.server_proxy("cannot insert requestHash"))),
    };
    let keys = state.signing_keys();
    let key = keys.get(&h.service.provider().member_id()).ok_or_else(|| {
        err(Code::CANNOT_CREATE_SIGNATURE
            .server_proxy(format!("no signing key for {}", h.service.provider().member_id())))
    })?;
    let sign_ocsp =
        state.ocsp.own_good(key.0.certificate_der()).map_err(|e| err(Code::CERT_VALIDATION.server_proxy(e)))?;
    let signed = key
        .1
        .sign(digests(&with_hash, &resp.attachments), Some(sign_ocsp))
        .await
        .map_err(|e| err(Code::CANNOT_CREATE_SIGNATURE.server_proxy(e.message)))?;
    let batch = signed.batch.as_ref().map(|(r, c)| (r.as_slice(), c.as_slice()));
    log(state, &h.id, &signed_msg, Side::Server, true, (&signed.signature, batch), &resp.attachments)
        .await
        .map_err(|e| err(Code::LOGGING_FAILED.server_proxy(e)))?;
    let soap_headers: Vec<(&str, &str)> = resp.soap_headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let (body, ct) = transport_body(&[], &soap_headers, &with_hash, &resp.attachments, &signed.signature, batch);
    let mut r = Response::new(body);
    if let (Ok(a), Ok(b)) = (HeaderValue::from_str(&ct), HeaderValue::from_str(&resp.content_type)) {
        r.headers_mut().insert(header::CONTENT_TYPE, a);
        r.headers_mut().insert(transport::ORIGINAL_CONTENT_TYPE, b);
    }
    Ok(r)
}

/// Whether a service of the configuration file lets `caller` in.
fn file_service_allows(service: &crate::conf::Service, caller: &ClientId, trust: &crate::conf::Trust) -> bool {
    service.allowed_clients.iter().any(|c| *c == *caller || (c.subsystem_code().is_none() && *c == caller.member_id()))
        || service.allowed_global_groups.iter().any(|g| trust.in_global_group(g, caller))
}

/// The provider's answer to a metaservice, made by this server.
async fn metaservice_answer(
    state: &State,
    trust: &crate::conf::Trust,
    request: &soap::SoapMessage,
    meta: crate::metaservice::Meta,
) -> Result<(StatusCode, HeaderMap, Bytes), Fault> {
    use crate::metaservice::{self as ms, Meta};
    use musubi_protocol::ServiceId;
    let h = request.header();
    let provider = h.service.provider();
    let db = state.serverconf.snapshot();
    let xml = |ct: &str, body: Vec<u8>| {
        let mut headers = HeaderMap::new();
        if let Ok(v) = HeaderValue::from_str(ct) {
            headers.insert(header::CONTENT_TYPE, v);
        }
        (StatusCode::OK, headers, Bytes::from(body))
    };
    match meta {
        Meta::ListMethods | Meta::AllowedMethods => {
            let allowed = |id: &ServiceId| match state.conf.services.iter().find(|s| s.id == *id) {
                Some(s) => file_service_allows(s, &h.client, trust),
                None => db.allows(id, &h.client, |g, c| trust.in_global_group(g, c)),
            };
            let services: Vec<ServiceId> = state
                .conf
                .services
                .iter()
                .map(|s| s.id.clone())
                .chain(db.services.iter().map(|s| s.id.clone()))
                .filter(|id| id.provider() == provider)
                .filter(|id| meta == Meta::ListMethods || allowed(id))
                .collect();
            Ok(xml("text/xml; charset=UTF-8", ms::methods_response(h, meta, &services).into_bytes()))
        }
        Meta::GetWsdl => {
            let wanted = ms::wsdl_request(provider, request.body_content())
                .map_err(|e| Code::INVALID_REQUEST.server_proxy(format!("getWsdl: {e}")))?;
            let found = db.services.iter().find(|s| {
                s.id.provider() == provider
                    && s.id.service_code() == wanted.service_code()
                    && (wanted.version().is_none() || s.id.version() == wanted.version())
            });
            let Some(service) = found else {
                return Err(Code::UNKNOWN_SERVICE.server_proxy(format!("no WSDL is kept for {wanted}")));
            };
            let wsdl = state
                .serverconf
                .wsdl_of(service.description_id)
                .await
                .map_err(|e| Code::INTERNAL_ERROR.server_proxy(e.to_string()))?
                .ok_or_else(|| Code::UNKNOWN_SERVICE.server_proxy(format!("no WSDL is kept for {wanted}")))?;
            let (ct, body) = ms::wsdl_response(h, &service.id, &wsdl);
            Ok(xml(&ct, body))
        }
    }
}

async fn forward(
    state: &State,
    url: &str,
    timeout_secs: u64,
    ssl_verify: bool,
    content_type: &str,
    soap_action: Option<&str>,
    body: OutBody,
) -> Result<(StatusCode, HeaderMap, Incoming, Lent<()>), Fault> {
    let failed = |code: Code, m: String| code.server_proxy_service_failed(m);
    let uri: http::Uri =
        url.parse().map_err(|e| failed(Code::INTERNAL_ERROR, format!("bad service URL {url:?}: {e}")))?;
    let https = match uri.scheme_str() {
        Some("http") => false,
        Some("https") => true,
        _ => return Err(failed(Code::INTERNAL_ERROR, format!("service URL {url:?}: not an http:// or https:// URL"))),
    };
    let host = uri.host().unwrap_or_default().trim_matches(['[', ']']).to_owned();
    let addr = format!("{host}:{}", uri.port_u16().unwrap_or(if https { 443 } else { 80 }));
    // Connections are pooled per address and way of connecting.
    let pool_key = match (https, ssl_verify) {
        (false, _) => addr.clone(),
        (true, true) => format!("https://{addr}"),
        (true, false) => format!("https+unverified://{addr}"),
    };
    let mut req = Request::post(uri.path_and_query().map(|p| p.as_str()).unwrap_or("/"))
        .header(header::HOST, &addr)
        .header(header::CONTENT_TYPE, content_type);
    if let Some(a) = soap_action {
        req = req.header("SOAPAction", a);
    }
    let req = req.body(body).map_err(|e| failed(Code::INTERNAL_ERROR, e.to_string()))?;
    let work = async {
        let mut sender = match take_ready(&state.provider_client, &pool_key).await {
            Some((s, ())) => s,
            None => {
                let tcp = tokio::net::TcpStream::connect(&addr).await.map_err(|e| {
                    let code = if e.kind() == std::io::ErrorKind::InvalidInput {
                        Code::UNKNOWN_HOST
                    } else {
                        Code::NETWORK_ERROR
                    };
                    failed(code, format!("cannot connect to the provider at {addr}: {e}"))
                })?;
                if https {
                    let config = if ssl_verify {
                        state.provider_tls.verified.clone().ok_or_else(|| {
                            failed(
                                Code::SSL_AUTHENTICATION_FAILED,
                                format!(
                                    "no trusted roots to check the provider at {addr}; set provider_ca_file, \
                                     or turn TLS verification off for the service"
                                ),
                            )
                        })?
                    } else {
                        state.provider_tls.unverified.clone()
                    };
                    let name = rustls::pki_types::ServerName::try_from(host.clone())
                        .map_err(|_| failed(Code::UNKNOWN_HOST, format!("{host:?} is not a host name")))?;
                    let tls = tokio_rustls::TlsConnector::from(config).connect(name, tcp).await.map_err(|e| {
                        failed(Code::SSL_AUTHENTICATION_FAILED, format!("TLS with the provider at {addr}: {e}"))
                    })?;
                    handshake(TokioIo::new(tls)).await?
                } else {
                    handshake(TokioIo::new(tcp)).await?
                }
            }
        };
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| failed(Code::NETWORK_ERROR, format!("provider at {addr}: {e}")))?;
        let (parts, body) = resp.into_parts();
        Ok((parts.status, parts.headers, body, Lent { key: pool_key.clone(), sender, extra: () }))
    };
    tokio::time::timeout(Duration::from_secs(timeout_secs), work)
        .await
        .map_err(|_| failed(Code::NETWORK_ERROR, format!("the provider did not answer within {timeout_secs} s")))?
}

/// HTTP/1.1 client settings towards peers and providers: large bodies are
/// read 64 KiB at a time, as the servers read them.
fn http1_client() -> hyper::client::conn::http1::Builder {
    let mut b = hyper::client::conn::http1::Builder::new();
    b.max_buf_size(32 * 1024);
    b
}

/// An HTTP/1.1 client connection to a provider over `io`.
async fn handshake<T>(io: TokioIo<T>) -> Result<SendRequest<OutBody>, Fault>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (s, conn) = http1_client()
        .handshake(io)
        .await
        .map_err(|e| Code::NETWORK_ERROR.server_proxy_service_failed(e.to_string()))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(s)
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(v)) => {
                out.push(v);
                i += 3;
            }
            (b'+', _) => {
                out.push(b' ');
                i += 1;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// X-Road's `/asic` export: `GET /asic?queryId=…&xRoadInstance=…&memberClass=…&memberCode=…[&subsystemCode=…]`
/// answers a ZIP of the ASiC-E containers of that query's request and
/// response, for the client named in the parameters only.
/// `GET /listClients[?xRoadInstance=…]`: the instance's members and
/// subsystems, as XML or (`Accept: application/json`) JSON.
fn list_clients(state: &State, req: &Request<Incoming>) -> Result<Resp, Fault> {
    state.globalconf.check().map_err(|e| Code::OUTDATED_GLOBALCONF.client_proxy(e))?;
    let trust = state.trust.get();
    let wanted = req.uri().query().unwrap_or("").split('&').find_map(|kv| kv.strip_prefix("xRoadInstance="));
    let instance = wanted.map(percent_decode);
    let members: Vec<crate::conf::Member> = if instance.as_deref().is_none_or(|i| i == trust.conf.instance_identifier) {
        trust.conf.members.clone()
    } else {
        vec![]
    };
    let json = header_str(req.headers(), "accept").is_some_and(|a| a.contains("application/json"));
    let (ct, body) = if json {
        ("application/json", crate::metaservice::list_clients_json(&members).to_string())
    } else {
        ("text/xml; charset=UTF-8", crate::metaservice::list_clients_xml(&members))
    };
    let mut r = Response::new(OutBody::full(body));
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
    Ok(r)
}

async fn asic_export(state: &State, query: &str) -> Result<Resp, Fault> {
    let params: HashMap<String, String> =
        query.split('&').filter_map(|kv| kv.split_once('=')).map(|(k, v)| (k.to_owned(), percent_decode(v))).collect();
    let get = |k: &str| params.get(k).map(String::as_str);
    let bad = |m: &str| Code::INVALID_REQUEST.client(m.to_owned());
    let query_id = get("queryId").ok_or_else(|| bad("queryId is required"))?;
    let (Some(instance), Some(class), Some(code)) = (get("xRoadInstance"), get("memberClass"), get("memberCode"))
    else {
        return Err(bad("xRoadInstance, memberClass and memberCode of the client are required"));
    };
    let client = match get("subsystemCode") {
        Some(sub) => ClientId::subsystem(instance, class, code, sub),
        None => ClientId::member(instance, class, code),
    }
    .map_err(|e| bad(&e.to_string()))?;
    let records = state
        .log
        .archived_records(query_id)
        .await
        .map_err(|e| Code::INTERNAL_ERROR.client_proxy(format!("message log: {e}")))?;
    let records: Vec<_> = records.into_iter().filter(|r| r.client == client.to_string()).collect();
    if records.is_empty() {
        return Err(Code::INVALID_REQUEST.client(format!("no message log records of query {query_id} for {client}")));
    }
    let zip = containers_zip(query_id, &records).map_err(|e| Code::INTERNAL_ERROR.client_proxy(e))?;
    let mut r = Response::new(OutBody::full(zip));
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/zip"));
    Ok(r)
}

/// A ZIP of the ASiC-E containers of `records` (of query `query_id`), named
/// `QUERY-request.asice` and `QUERY-response.asice`.
pub(crate) fn containers_zip(query_id: &str, records: &[crate::messagelog::LoggedRecord]) -> Result<Vec<u8>, String> {
    let mut containers = Vec::new();
    for r in records {
        let bytes = r.container().map_err(|e| e.message)?;
        let name = format!("{}-{}.asice", safe_file_name(query_id), if r.response { "response" } else { "request" });
        containers.push((name, bytes));
    }
    let borrowed: Vec<(&str, &[u8])> = containers.iter().map(|(n, b)| (n.as_str(), b.as_slice())).collect();
    musubi_protocol::asic::write_zip(&borrowed).map_err(|e| e.message)
}

fn safe_file_name(s: &str) -> String {
    s.chars().map(|c| if c.is_ascii_alphanumeric() || "-_.".contains(c) { c } else { '_' }).collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// X-Road's message files, for the differential test below.
    fn conformance_files(folder: &str) -> Vec<std::path::PathBuf> {
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/conformance/xroad/soap").join(folder);
        match std::fs::read_dir(&dir) {
            Ok(entries) => {
                let mut files: Vec<_> = entries.flatten().map(|e| e.path()).collect();
                files.sort();
                files
            }
            Err(_) if std::env::var("MUSUBI_REQUIRE_CONFORMANCE").as_deref() == Ok("1") => {
                panic!("conformance data missing at {}; MUSUBI_REQUIRE_CONFORMANCE=1", dir.display())
            }
            Err(_) => {
                println!("skipped: conformance data not found at {}", dir.display());
                Vec::new()
            }
        }
    }

    /// The proxies read bodies as they arrive (`receive_package`,
    /// `receive_transport`); the protocol crate's whole-body decoders are the
    /// ones checked against X-Road's expected outcomes (protocol/tests/conformance.rs).
    /// Both must give the same outcome for every one of X-Road's message files,
    /// in every content type tried, so the vectors hold for the path in use.
    #[tokio::test]
    async fn streaming_receipt_gives_the_outcome_of_the_conformance_checked_decoders() {
        let dir = std::env::temp_dir().join(format!("musubi-spool-diff-{}", std::process::id()));
        let spool = Spooler::new(dir.clone());
        spool.prepare().unwrap();
        let body = |b: &[u8]| Full::new(Bytes::copy_from_slice(b));
        let mut compared = 0;
        let mut differences = Vec::new();
        let queries = conformance_files("proxy-core-queries");
        let messages = conformance_files("proxy-core-proxymessages");
        for file in queries.iter().chain(&messages) {
            let bytes = std::fs::read(file).unwrap();
            // The boundary the file itself uses, else X-Road's test boundary.
            let boundary = String::from_utf8_lossy(&bytes)
                .lines()
                .find_map(|l| l.strip_prefix("--").map(|b| b.trim().trim_end_matches("--").to_owned()))
                .unwrap_or_else(|| "jetty771207119h3h10dty".to_owned());
            let name = file.file_name().unwrap().to_string_lossy().into_owned();
            for ct in
                ["text/xml; charset=UTF-8".to_owned(), format!("multipart/related; charset=UTF-8; boundary={boundary}")]
            {
                for direction in [Direction::Request, Direction::Response] {
                    let whole = match package::decode(&ct, &bytes, direction, &Limits::default()) {
                        Ok(p) => matches!(p.soap, Soap::Fault(_)).to_string(),
                        Err(e) => e.code.0.to_owned(),
                    };
                    let streamed = match receive_package(&spool, &ct, body(&bytes), 1 << 26, direction).await {
                        Ok(p) => matches!(p.soap, Soap::Fault(_)).to_string(),
                        Err(PackageError::Invalid(e)) => e.code.0.to_owned(),
                        Err(PackageError::Read(e)) => format!("read: {e}"),
                    };
                    if whole != streamed {
                        differences.push(format!("{name} as {ct} ({direction:?}): {whole} whole, {streamed} streamed"));
                    }
                    compared += 1;
                }
            }
            let ct = format!("multipart/mixed; boundary={boundary}");
            let whole = transport::decode(&ct, &bytes).map(|_| ()).map_err(|e| e.code.0.to_owned());
            let mut headers = HeaderMap::new();
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_str(&ct).unwrap());
            let streamed = receive_transport(&spool, &headers, body(&bytes), 1 << 26)
                .await
                .map(|_| ())
                .map_err(|e| e.code.0.to_owned());
            if whole != streamed {
                differences.push(format!("{name} as a transport message: {whole:?} whole, {streamed:?} streamed"));
            }
            compared += 1;
        }
        if !queries.is_empty() {
            assert!(compared > 200, "every file was compared: {compared}");
        }
        assert!(differences.is_empty(), "{} of {compared} differ:\n{}", differences.len(), differences.join("\n"));
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn a_remembered_batch_signature_still_checks_each_messages_own_chain() {
        let ca = musubi_pki::DevCa::new("Batch Test CA").unwrap();
        let issued = ca.issue("signer", "Batch Test", musubi_pki::Usage::Sign, &[]).unwrap();
        let key = SigningKey::from_pkcs8(&issued.key_pkcs8, issued.cert_der.clone()).unwrap();
        let uris = transport::part_uris(0);
        let part = |bytes: &'static [u8]| vec![DataPart { uri: &uris[0], bytes }];
        let (one, two) = (part(b"<one/>"), part(b"<two/>"));
        let shares = xades::sign_batch(&key, &[one.clone(), two.clone()], "2026-12-01T00:00:00Z", None).unwrap();
        let memo = BatchSignatures::default();
        let check = |i: usize, data: &[DataPart<'_>]| {
            let s = &shares[i];
            verify_signature(&memo, &s.signature, Some((&s.hash_chain_result, &s.hash_chain)), data, &[])
        };
        let first = check(0, &one).unwrap();
        assert_eq!(first.certificate_der, issued.cert_der);
        assert_eq!(memo.0.len(), 1, "the batch signature is remembered");
        check(1, &two).unwrap();
        // With the signature remembered, a message is still checked against its own chain.
        assert!(check(1, &part(b"<changed/>")).is_err());
        assert!(check(0, &two).is_err());
        // A result the signature does not cover is not taken from the memo.
        let mut other = shares[0].hash_chain_result.clone();
        other.extend_from_slice(b" ");
        assert!(memo.verify(&shares[0].signature, &other).is_err());
        assert_eq!(memo.0.len(), 1, "failures are not remembered");
    }
}
