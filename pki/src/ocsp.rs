//! OCSP (RFC 6960), sans-IO: requests as X-Road sends them (SHA-1 CertID, no
//! nonce), response verification, and a responder for the dev CA.
//!
//! The ASN.1 is RustCrypto's `x509-ocsp` on `der` 0.7; signatures are checked
//! with ring over the original `tbsResponseData` bytes. Verification follows
//! RFC 6960 §3.2 and X-Road's freshness rule: a response is refused when
//! `thisUpdate` is older than `now − freshness` or `nextUpdate` has passed.
//! Like X-Road, a `thisUpdate` slightly ahead of the local clock is accepted.

use std::time::Duration;

use const_oid::ObjectIdentifier;
use const_oid::db::rfc5912::{
    ECDSA_WITH_SHA_256, ECDSA_WITH_SHA_384, ID_SHA_1, ID_SHA_256, SHA_1_WITH_RSA_ENCRYPTION,
    SHA_256_WITH_RSA_ENCRYPTION, SHA_384_WITH_RSA_ENCRYPTION, SHA_512_WITH_RSA_ENCRYPTION,
};
use der::asn1::{BitString, GeneralizedTime, Null, OctetString};
use der::{Decode, Encode, Reader, SliceReader};
use ring::digest;
use time::OffsetDateTime;
use x509_cert::Certificate;
use x509_cert::spki::AlgorithmIdentifierOwned;
use x509_ocsp::{
    BasicOcspResponse, CertId, CertStatus, OcspGeneralizedTime, OcspRequest, OcspResponse, OcspResponseStatus, Request,
    ResponderId, ResponseData, SingleResponse, TbsRequest, Version,
};

/// `id-kp-OCSPSigning`.
const ID_KP_OCSP_SIGNING: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.9");
/// `id-pkix-ocsp-basic`.
const ID_PKIX_OCSP_BASIC: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.48.1.1");

/// Largest OCSP response accepted.
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024;

/// X-Road's default `ocspFreshnessSeconds`.
pub const DEFAULT_FRESHNESS: Duration = Duration::from_secs(3600);

/// Why an OCSP request or response was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OcspError {
    /// The bytes are not a well-formed OCSP structure.
    #[error("malformed OCSP {what}: {detail}")]
    Malformed {
        /// Which structure.
        what: &'static str,
        /// What the decoder said.
        detail: String,
    },
    /// A certificate could not be read.
    #[error("certificate does not parse: {0}")]
    BadCertificate(String),
    /// The responder answered with an error status.
    #[error("OCSP responder answered {0}; no certificate status was given")]
    Unsuccessful(String),
    /// The response is not a basic OCSP response.
    #[error("OCSP response type {0} is not supported; expected id-pkix-ocsp-basic")]
    UnsupportedType(String),
    /// No certificate allowed to answer for the issuer signed the response.
    #[error("the OCSP response is not signed by the CA or a responder it authorised: {0}")]
    UnauthorizedResponder(String),
    /// The signature algorithm is not supported.
    #[error("OCSP signature algorithm {0} is not supported")]
    UnsupportedAlgorithm(String),
    /// The response says nothing about the certificate asked for.
    #[error("the OCSP response holds no status for certificate serial {serial}")]
    NoStatusForCertificate {
        /// Serial of the certificate, hex.
        serial: String,
    },
    /// The response is older than the freshness limit.
    #[error("the OCSP response for serial {serial} is from {this_update}, older than the limit of {limit_secs} s")]
    Stale {
        /// Serial, hex.
        serial: String,
        /// Its `thisUpdate`.
        this_update: String,
        /// The freshness limit.
        limit_secs: u64,
    },
    /// `nextUpdate` has passed.
    #[error("the OCSP response for serial {serial} expired at {next_update}")]
    Expired {
        /// Serial, hex.
        serial: String,
        /// Its `nextUpdate`.
        next_update: String,
    },
    /// The request could not be built or answered.
    #[error("cannot encode OCSP structure: {0}")]
    Encode(String),
}

fn malformed(what: &'static str, e: impl std::fmt::Display) -> OcspError {
    OcspError::Malformed { what, detail: e.to_string() }
}

/// A certificate's status as the responder gave it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Not revoked.
    Good,
    /// Revoked at the given time.
    Revoked {
        /// When.
        at: OffsetDateTime,
    },
    /// The responder does not know the certificate.
    Unknown,
}

/// A response whose signature, responder, CertID and freshness were checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedOcsp {
    /// The status of the certificate.
    pub status: Status,
    /// `thisUpdate`.
    pub this_update: OffsetDateTime,
    /// `nextUpdate`, if given.
    pub next_update: Option<OffsetDateTime>,
    /// `producedAt`.
    pub produced_at: OffsetDateTime,
}

fn parse_cert(der: &[u8]) -> Result<Certificate, OcspError> {
    Certificate::from_der(der).map_err(|e| OcspError::BadCertificate(e.to_string()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

fn to_time(t: &OcspGeneralizedTime) -> OffsetDateTime {
    let secs = t.0.to_unix_duration().as_secs();
    OffsetDateTime::from_unix_timestamp(secs as i64).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

fn from_time(t: OffsetDateTime) -> Result<OcspGeneralizedTime, OcspError> {
    let secs = u64::try_from(t.unix_timestamp()).map_err(|e| OcspError::Encode(e.to_string()))?;
    GeneralizedTime::from_unix_duration(Duration::from_secs(secs))
        .map(OcspGeneralizedTime)
        .map_err(|e| OcspError::Encode(e.to_string()))
}

fn key_bytes(cert: &Certificate) -> &[u8] {
    cert.tbs_certificate.subject_public_key_info.subject_public_key.raw_bytes()
}

/// The CertID of `cert` issued by `issuer`, hashed with `alg` (SHA-1 or SHA-256).
fn cert_id_with(alg: ObjectIdentifier, cert: &Certificate, issuer: &Certificate) -> Result<CertId, OcspError> {
    let d = if alg == ID_SHA_1 {
        &digest::SHA1_FOR_LEGACY_USE_ONLY
    } else if alg == ID_SHA_256 {
        &digest::SHA256
    } else {
        return Err(OcspError::UnsupportedAlgorithm(alg.to_string()));
    };
    let name = issuer.tbs_certificate.subject.to_der().map_err(|e| OcspError::Encode(e.to_string()))?;
    let enc = |b: &[u8]| OctetString::new(digest::digest(d, b).as_ref()).map_err(|e| OcspError::Encode(e.to_string()));
    Ok(CertId {
        hash_algorithm: AlgorithmIdentifierOwned { oid: alg, parameters: Some(Null.into()) },
        issuer_name_hash: enc(&name)?,
        issuer_key_hash: enc(key_bytes(issuer))?,
        serial_number: cert.tbs_certificate.serial_number.clone(),
    })
}

fn same_cert_id(a: &CertId, b: &CertId) -> bool {
    a.hash_algorithm.oid == b.hash_algorithm.oid
        && a.issuer_name_hash == b.issuer_name_hash
        && a.issuer_key_hash == b.issuer_key_hash
        && a.serial_number == b.serial_number
}

/// Builds an OCSP request for `cert_der` issued by `issuer_der`, the way
/// X-Road sends it: one SHA-1 CertID, no nonce, unsigned.
pub fn build_request(cert_der: &[u8], issuer_der: &[u8]) -> Result<Vec<u8>, OcspError> {
    let cert = parse_cert(cert_der)?;
    let issuer = parse_cert(issuer_der)?;
    let req = OcspRequest {
        tbs_request: TbsRequest {
            version: Version::V1,
            requestor_name: None,
            request_list: vec![Request {
                req_cert: cert_id_with(ID_SHA_1, &cert, &issuer)?,
                single_request_extensions: None,
            }],
            request_extensions: None,
        },
        optional_signature: None,
    };
    req.to_der().map_err(|e| OcspError::Encode(e.to_string()))
}

/// The raw DER of the first element of a SEQUENCE (`tbsResponseData`).
fn first_element(seq: &[u8]) -> Result<&[u8], OcspError> {
    let mut r = SliceReader::new(seq).map_err(|e| malformed("response", e))?;
    let header = der::Header::decode(&mut r).map_err(|e| malformed("response", e))?;
    if header.tag != der::Tag::Sequence {
        return Err(malformed("response", "BasicOCSPResponse is not a SEQUENCE"));
    }
    r.tlv_bytes().map_err(|e| malformed("response", e))
}

/// Verifies `signature` over `data` with `signer`'s public key.
fn verify_sig(
    alg: &AlgorithmIdentifierOwned,
    signer: &Certificate,
    data: &[u8],
    signature: &[u8],
) -> Result<(), OcspError> {
    use ring::signature as s;
    let algs: &[&dyn s::VerificationAlgorithm] = match alg.oid {
        SHA_1_WITH_RSA_ENCRYPTION => &[&s::RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY],
        SHA_256_WITH_RSA_ENCRYPTION => &[&s::RSA_PKCS1_2048_8192_SHA256],
        SHA_384_WITH_RSA_ENCRYPTION => &[&s::RSA_PKCS1_2048_8192_SHA384],
        SHA_512_WITH_RSA_ENCRYPTION => &[&s::RSA_PKCS1_2048_8192_SHA512],
        ECDSA_WITH_SHA_256 => &[&s::ECDSA_P256_SHA256_ASN1, &s::ECDSA_P384_SHA256_ASN1],
        ECDSA_WITH_SHA_384 => &[&s::ECDSA_P384_SHA384_ASN1, &s::ECDSA_P256_SHA384_ASN1],
        other => return Err(OcspError::UnsupportedAlgorithm(other.to_string())),
    };
    let key = key_bytes(signer);
    let oid = alg.oid.as_bytes();
    crate::memo::verified(&[b"ocsp", oid, key, data, signature], || {
        if algs.iter().any(|a| s::UnparsedPublicKey::new(*a, key).verify(data, signature).is_ok()) {
            Ok(())
        } else {
            Err(OcspError::UnauthorizedResponder(format!(
                "signature does not verify with {}",
                signer.tbs_certificate.subject
            )))
        }
    })
}

/// Whether `cert` was signed by `issuer` (signature only).
fn signed_by(cert: &Certificate, issuer: &Certificate) -> bool {
    let Ok(tbs) = cert.tbs_certificate.to_der() else { return false };
    let Some(sig) = cert.signature.as_bytes() else { return false };
    cert.tbs_certificate.issuer == issuer.tbs_certificate.subject
        && verify_sig(&cert.signature_algorithm, issuer, &tbs, sig).is_ok()
}

fn has_ocsp_signing_eku(cert: &Certificate) -> bool {
    use x509_cert::ext::pkix::ExtendedKeyUsage;
    cert.tbs_certificate.extensions.iter().flatten().any(|e| {
        e.extn_id == const_oid::db::rfc5280::ID_CE_EXT_KEY_USAGE
            && ExtendedKeyUsage::from_der(e.extn_value.as_bytes()).is_ok_and(|eku| eku.0.contains(&ID_KP_OCSP_SIGNING))
    })
}

fn valid_at(cert: &Certificate, now: OffsetDateTime) -> bool {
    let v = &cert.tbs_certificate.validity;
    let t = now.unix_timestamp();
    let nb = v.not_before.to_unix_duration().as_secs() as i64;
    let na = v.not_after.to_unix_duration().as_secs() as i64;
    nb <= t && t <= na
}

/// Whether `id` names `cert` (by name, compared as a set of attributes, since
/// some responders write the RDNs in reverse order, or by key hash).
fn responder_matches(id: &ResponderId, cert: &Certificate) -> bool {
    match id {
        ResponderId::ByKey(hash) => {
            hash.as_bytes() == digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, key_bytes(cert)).as_ref()
        }
        ResponderId::ByName(name) => name_key(name) == name_key(&cert.tbs_certificate.subject),
    }
}

/// A name as a sorted list of (attribute type, normalised value): string types
/// and RDN order vary between implementations (BouncyCastle compares the same way).
fn name_key(name: &x509_cert::name::Name) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = name
        .0
        .iter()
        .flat_map(|rdn| rdn.0.iter())
        .map(|a| {
            let text = String::from_utf8_lossy(a.value.value()).to_lowercase();
            (a.oid.to_string(), text.split_whitespace().collect::<Vec<_>>().join(" "))
        })
        .collect();
    v.sort();
    v
}

/// Verifies an OCSP response for `cert_der` issued by `issuer_der` at `now`.
/// The CA itself and responders it delegated (id-kp-OCSPSigning) may sign.
pub fn verify_response(
    response_der: &[u8],
    cert_der: &[u8],
    issuer_der: &[u8],
    now: OffsetDateTime,
    freshness: Duration,
) -> Result<VerifiedOcsp, OcspError> {
    verify_response_with_responders(response_der, cert_der, issuer_der, &[], now, freshness)
}

/// Like [`verify_response`], also accepting responses signed by one of
/// `approved_responders` (DER): the OCSP responder certificates the global
/// configuration lists for the CA, as X-Road does.
pub fn verify_response_with_responders(
    response_der: &[u8],
    cert_der: &[u8],
    issuer_der: &[u8],
    approved_responders: &[&[u8]],
    now: OffsetDateTime,
    freshness: Duration,
) -> Result<VerifiedOcsp, OcspError> {
    if response_der.len() > MAX_RESPONSE_BYTES {
        return Err(malformed(
            "response",
            format!("{} bytes exceed the limit of {MAX_RESPONSE_BYTES}", response_der.len()),
        ));
    }
    let cert = parse_cert(cert_der)?;
    let issuer = parse_cert(issuer_der)?;
    let resp = OcspResponse::from_der(response_der).map_err(|e| malformed("response", e))?;
    if resp.response_status != OcspResponseStatus::Successful {
        return Err(OcspError::Unsuccessful(format!("{:?}", resp.response_status)));
    }
    let bytes =
        resp.response_bytes.ok_or_else(|| malformed("response", "successful response without responseBytes"))?;
    if bytes.response_type != ID_PKIX_OCSP_BASIC {
        return Err(OcspError::UnsupportedType(bytes.response_type.to_string()));
    }
    let basic_der = bytes.response.as_bytes();
    let basic = BasicOcspResponse::from_der(basic_der).map_err(|e| malformed("basic response", e))?;
    let tbs = first_element(basic_der)?;
    let signature =
        basic.signature.as_bytes().ok_or_else(|| malformed("basic response", "signature has unused bits"))?;

    // The CA itself, or a delegated responder it issued with id-kp-OCSPSigning.
    let data = &basic.tbs_response_data;
    let approved = approved_responders.iter().map(|d| parse_cert(d)).collect::<Result<Vec<_>, _>>()?;
    let mut candidates: Vec<&Certificate> = vec![&issuer];
    candidates.extend(approved.iter());
    let delegated: Vec<&Certificate> = basic
        .certs
        .iter()
        .flatten()
        .filter(|c| signed_by(c, &issuer) && has_ocsp_signing_eku(c) && valid_at(c, now))
        .collect();
    candidates.extend(delegated);
    let signer = candidates
        .into_iter()
        .filter(|c| responder_matches(&data.responder_id, c))
        .find(|c| verify_sig(&basic.signature_algorithm, c, tbs, signature).is_ok())
        .ok_or_else(|| {
            OcspError::UnauthorizedResponder(format!(
                "no certificate of {} or authorised by it signed the response",
                issuer.tbs_certificate.subject
            ))
        })?;
    let _ = signer;

    let serial = hex(cert.tbs_certificate.serial_number.as_bytes());
    let single = data
        .responses
        .iter()
        .find(|r| {
            cert_id_with(r.cert_id.hash_algorithm.oid, &cert, &issuer).is_ok_and(|id| same_cert_id(&id, &r.cert_id))
        })
        .ok_or_else(|| OcspError::NoStatusForCertificate { serial: serial.clone() })?;
    let this_update = to_time(&single.this_update);
    let next_update = single.next_update.as_ref().map(to_time);
    let limit = time::Duration::try_from(freshness).unwrap_or(time::Duration::MAX);
    if this_update < now - limit {
        return Err(OcspError::Stale { serial, this_update: this_update.to_string(), limit_secs: freshness.as_secs() });
    }
    if let Some(next) = next_update.filter(|n| *n < now) {
        return Err(OcspError::Expired { serial, next_update: next.to_string() });
    }
    let status = match &single.cert_status {
        CertStatus::Good(_) => Status::Good,
        CertStatus::Revoked(info) => Status::Revoked { at: to_time(&info.revocation_time) },
        CertStatus::Unknown(_) => Status::Unknown,
    };
    Ok(VerifiedOcsp { status, this_update, next_update, produced_at: to_time(&data.produced_at) })
}

/// Signs OCSP responses (the dev CA's responder).
pub trait ResponderKey {
    /// The responder's certificate, DER.
    fn certificate_der(&self) -> &[u8];
    /// Signs `data` with ECDSA P-256 / SHA-256, DER signature.
    fn sign_ecdsa_sha256(&self, data: &[u8]) -> Result<Vec<u8>, String>;
}

/// Answers an OCSP request for certificates of `issuer_der`. `status` gives
/// the status of a serial (hex, uppercase); certificates of other issuers are
/// `unknown`. The response is signed by `key` (the CA itself), valid for
/// `validity` from `now`.
pub fn respond(
    request_der: &[u8],
    issuer_der: &[u8],
    key: &dyn ResponderKey,
    status: &dyn Fn(&str) -> Status,
    now: OffsetDateTime,
    validity: Duration,
) -> Vec<u8> {
    let malformed_request = || OcspResponse::malformed_request().to_der().unwrap_or_default();
    let Ok(req) = OcspRequest::from_der(request_der) else { return malformed_request() };
    match respond_inner(&req, issuer_der, key, status, now, validity) {
        Ok(der) => der,
        Err(_) => OcspResponse::internal_error().to_der().unwrap_or_default(),
    }
}

fn respond_inner(
    req: &OcspRequest,
    issuer_der: &[u8],
    key: &dyn ResponderKey,
    status: &dyn Fn(&str) -> Status,
    now: OffsetDateTime,
    validity: Duration,
) -> Result<Vec<u8>, OcspError> {
    let issuer = parse_cert(issuer_der)?;
    let responder = parse_cert(key.certificate_der())?;
    let mut responses = Vec::new();
    for r in &req.tbs_request.request_list {
        let id = &r.req_cert;
        // Is this our CA? Compare the issuer hashes under the request's own algorithm.
        let ours = cert_id_with(id.hash_algorithm.oid, &issuer, &issuer)
            .is_ok_and(|t| t.issuer_name_hash == id.issuer_name_hash && t.issuer_key_hash == id.issuer_key_hash);
        let st = if ours { status(&hex(id.serial_number.as_bytes())) } else { Status::Unknown };
        let cert_status = match st {
            Status::Good => CertStatus::good(),
            Status::Unknown => CertStatus::unknown(),
            Status::Revoked { at } => {
                CertStatus::revoked(x509_ocsp::RevokedInfo { revocation_time: from_time(at)?, revocation_reason: None })
            }
        };
        let next = now + time::Duration::try_from(validity).unwrap_or(time::Duration::HOUR);
        responses.push(SingleResponse {
            cert_id: id.clone(),
            cert_status,
            this_update: from_time(now)?,
            next_update: Some(from_time(next)?),
            single_extensions: None,
        });
    }
    let key_hash = digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, key_bytes(&responder));
    let data = ResponseData {
        version: Version::V1,
        responder_id: ResponderId::ByKey(
            OctetString::new(key_hash.as_ref()).map_err(|e| OcspError::Encode(e.to_string()))?,
        ),
        produced_at: from_time(now)?,
        responses,
        response_extensions: None,
    };
    let tbs = data.to_der().map_err(|e| OcspError::Encode(e.to_string()))?;
    let sig = key.sign_ecdsa_sha256(&tbs).map_err(OcspError::Encode)?;
    let basic = BasicOcspResponse {
        tbs_response_data: data,
        signature_algorithm: AlgorithmIdentifierOwned { oid: ECDSA_WITH_SHA_256, parameters: None },
        signature: BitString::from_bytes(&sig).map_err(|e| OcspError::Encode(e.to_string()))?,
        certs: None,
    };
    OcspResponse::successful(basic).and_then(|r| r.to_der()).map_err(|e| OcspError::Encode(e.to_string()))
}

/// The hex serial (uppercase) of a certificate.
pub fn serial_hex(cert_der: &[u8]) -> Result<String, OcspError> {
    Ok(hex(parse_cert(cert_der)?.tbs_certificate.serial_number.as_bytes()))
}
