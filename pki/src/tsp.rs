//! RFC 3161 time stamps, sans-IO: requests, response parsing, token
//! verification, and the dev TSA.
//!
//! A token is a CMS SignedData (RFC 5652) whose content is a TSTInfo. It is
//! accepted when it is signed by one of the trusted TSA certificates (matched
//! by the SignerIdentifier, as X-Road does; the global configuration names the
//! TSAs), the signed attributes carry the right content type and the digest of
//! the TSTInfo, an ESS signing-certificate attribute (if present) names that
//! certificate, and the message imprint is the digest of the stamped data. A
//! TSA certificate that has an extended-key-usage extension must list
//! id-kp-timeStamping; X-Road's own TSA certificates carry none and are trusted
//! by configuration alone.
//!
//! Tokens encoded in BER (indefinite lengths, chunked OCTET STRINGs, as some
//! TSAs write them) are normalised to DER before decoding.

use const_oid::ObjectIdentifier;
use const_oid::db::rfc5912::{
    ECDSA_WITH_SHA_256, ECDSA_WITH_SHA_384, ID_SHA_256, ID_SHA_384, ID_SHA_512, RSA_ENCRYPTION,
    SHA_256_WITH_RSA_ENCRYPTION, SHA_384_WITH_RSA_ENCRYPTION, SHA_512_WITH_RSA_ENCRYPTION,
};
use der::asn1::{Any, GeneralizedTime, Int, OctetString, SetOfVec};
use der::{Decode, Encode};
use musubi_protocol::der::tlv;
use ring::digest;
use time::OffsetDateTime;
use x509_cert::Certificate;
use x509_cert::attr::Attribute;
use x509_cert::spki::AlgorithmIdentifierOwned;
use x509_tsp::{MessageImprint, TimeStampReq, TspVersion, TstInfo};

use cms::cert::{CertificateChoices, IssuerAndSerialNumber};
use cms::content_info::{CmsVersion, ContentInfo};
use cms::signed_data::{
    CertificateSet, EncapsulatedContentInfo, SignedData, SignerIdentifier, SignerInfo, SignerInfos,
};

const ID_SIGNED_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.2");
const ID_CT_TST_INFO: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.1.4");
const ID_CONTENT_TYPE: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.3");
const ID_MESSAGE_DIGEST: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.4");
const ID_SIGNING_CERTIFICATE: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.2.12");
const ID_SIGNING_CERTIFICATE_V2: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.2.47");
const ID_KP_TIME_STAMPING: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.8");
const ID_SHA_1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.14.3.2.26");
/// The policy of the dev TSA (an arc under the "example" OID 1.3.6.1.4.1.32473).
pub const DEV_POLICY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.32473.1.1");

/// Largest time-stamp response accepted.
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024;

/// Why a time stamp was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TspError {
    /// Not a well-formed structure.
    #[error("malformed time stamp {what}: {detail}")]
    Malformed {
        /// Which structure.
        what: &'static str,
        /// The decoder's message.
        detail: String,
    },
    /// The TSA refused the request.
    #[error("the TSA refused the request (PKIStatus {status})")]
    Rejected {
        /// The PKIStatus value.
        status: u32,
    },
    /// No trusted TSA certificate matches the signer.
    #[error("the time stamp is signed by a certificate that is not a trusted TSA certificate")]
    UnknownTsa,
    /// The TSA certificate is not for time stamping.
    #[error("TSA certificate {0} does not allow time stamping (extended key usage)")]
    NotForTimeStamping(String),
    /// The signature does not verify.
    #[error("the time stamp signature does not verify: {0}")]
    BadSignature(String),
    /// The message imprint is not the digest of the data.
    #[error("the time stamp covers other data (message imprint mismatch)")]
    ImprintMismatch,
    /// An algorithm is not supported.
    #[error("algorithm {0} is not supported in time stamps")]
    UnsupportedAlgorithm(String),
    /// Encoding failed.
    #[error("cannot encode time stamp structure: {0}")]
    Encode(String),
}

fn malformed(what: &'static str, e: impl std::fmt::Display) -> TspError {
    TspError::Malformed { what, detail: e.to_string() }
}

fn enc(e: impl std::fmt::Display) -> TspError {
    TspError::Encode(e.to_string())
}

/// A digest algorithm for message imprints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DigestAlg {
    /// SHA-256.
    Sha256,
    /// SHA-384.
    Sha384,
    /// SHA-512 (X-Road's default).
    Sha512,
}

impl DigestAlg {
    fn oid(self) -> ObjectIdentifier {
        match self {
            Self::Sha256 => ID_SHA_256,
            Self::Sha384 => ID_SHA_384,
            Self::Sha512 => ID_SHA_512,
        }
    }
    fn from_oid(oid: ObjectIdentifier) -> Result<&'static digest::Algorithm, TspError> {
        match oid {
            ID_SHA_256 => Ok(&digest::SHA256),
            ID_SHA_384 => Ok(&digest::SHA384),
            ID_SHA_512 => Ok(&digest::SHA512),
            ID_SHA_1 => Ok(&digest::SHA1_FOR_LEGACY_USE_ONLY),
            other => Err(TspError::UnsupportedAlgorithm(other.to_string())),
        }
    }
    /// Digest of `data`.
    pub fn digest(self, data: &[u8]) -> Vec<u8> {
        let alg = match self {
            Self::Sha256 => &digest::SHA256,
            Self::Sha384 => &digest::SHA384,
            Self::Sha512 => &digest::SHA512,
        };
        digest::digest(alg, data).as_ref().to_vec()
    }
}

fn alg_id(oid: ObjectIdentifier) -> AlgorithmIdentifierOwned {
    AlgorithmIdentifierOwned { oid, parameters: None }
}

/// Builds a TimeStampReq over `data` (hashed with `alg`), asking for the TSA's
/// certificate in the token.
pub fn build_request(alg: DigestAlg, data: &[u8]) -> Result<Vec<u8>, TspError> {
    let req = TimeStampReq {
        version: TspVersion::V1,
        message_imprint: MessageImprint {
            hash_algorithm: alg_id(alg.oid()),
            hashed_message: OctetString::new(alg.digest(data)).map_err(enc)?,
        },
        req_policy: None,
        nonce: None,
        cert_req: true,
        extensions: None,
    };
    req.to_der().map_err(enc)
}

/// Takes the token (ContentInfo DER) out of a TimeStampResp, refusing
/// anything but granted / grantedWithMods.
pub fn parse_response(response_der: &[u8]) -> Result<Vec<u8>, TspError> {
    if response_der.len() > MAX_RESPONSE_BYTES {
        return Err(malformed("response", format!("{} bytes exceed {MAX_RESPONSE_BYTES}", response_der.len())));
    }
    let der = ber_to_der(response_der).map_err(|e| malformed("response", e))?;
    let mut r = der::SliceReader::new(&der).map_err(|e| malformed("response", e))?;
    let (status, token) = r
        .sequence(|r| {
            let status = r.sequence(|r| {
                let status = u32::decode(r)?;
                // statusString and failInfo are optional and not needed here.
                while !r.is_finished() {
                    Any::decode(r)?;
                }
                Ok(status)
            })?;
            let token = if r.is_finished() { None } else { Some(r.tlv_bytes()?.to_vec()) };
            Ok((status, token))
        })
        .map_err(|e| malformed("response", e))?;
    if !r.is_finished() {
        return Err(malformed("response", "data after the TimeStampResp"));
    }
    if status > 1 {
        return Err(TspError::Rejected { status });
    }
    token.ok_or_else(|| malformed("response", "granted without a token"))
}

use der::Reader as _;

/// What a verified token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedTimestamp {
    /// The time the TSA vouches for.
    pub gen_time: OffsetDateTime,
    /// The TSA policy.
    pub policy: String,
    /// The token's serial number, hex.
    pub serial: String,
    /// The TSA certificate that signed it (one of the trusted ones), DER.
    pub tsa_cert_der: Vec<u8>,
}

fn key_bytes(cert: &Certificate) -> &[u8] {
    cert.tbs_certificate.subject_public_key_info.subject_public_key.raw_bytes()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

fn attr(attrs: &SetOfVec<Attribute>, oid: ObjectIdentifier) -> Option<&Any> {
    attrs.iter().find(|a| a.oid == oid).and_then(|a| a.values.iter().next())
}

/// Verifies a time-stamp token (ContentInfo DER) over `data` against the
/// trusted TSA certificates.
pub fn verify_token(token_der: &[u8], data: &[u8], tsa_certs: &[&[u8]]) -> Result<VerifiedTimestamp, TspError> {
    let token = ber_to_der(token_der).map_err(|e| malformed("token", e))?;
    let ci = ContentInfo::from_der(&token).map_err(|e| malformed("token", e))?;
    if ci.content_type != ID_SIGNED_DATA {
        return Err(malformed("token", format!("content type {} is not signedData", ci.content_type)));
    }
    let sd: SignedData = ci.content.decode_as().map_err(|e| malformed("SignedData", e))?;
    if sd.encap_content_info.econtent_type != ID_CT_TST_INFO {
        return Err(malformed("SignedData", "the content is not a TSTInfo"));
    }
    let econtent = sd.encap_content_info.econtent.as_ref().ok_or_else(|| malformed("SignedData", "no TSTInfo"))?;
    let tst_bytes = OctetString::from_der(&econtent.to_der().map_err(enc)?).map_err(|e| malformed("TSTInfo", e))?;
    let tst_bytes = tst_bytes.as_bytes();
    let tst = Tst::decode(tst_bytes).map_err(|e| malformed("TSTInfo", e))?;
    let si = sd.signer_infos.0.iter().next().ok_or_else(|| malformed("SignedData", "no SignerInfo"))?;

    // The signer must be one of the trusted TSA certificates.
    let trusted = tsa_certs
        .iter()
        .map(|d| Certificate::from_der(d).map(|c| (c, d.to_vec())))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| malformed("TSA certificate", e))?;
    let (tsa, tsa_der) = trusted.iter().find(|(c, _)| signer_matches(&si.sid, c)).ok_or(TspError::UnknownTsa)?;
    check_time_stamping_eku(tsa)?;

    // Signed attributes: content type, digest of the TSTInfo, signing certificate.
    let attrs = si.signed_attrs.as_ref().ok_or_else(|| malformed("SignerInfo", "no signed attributes"))?;
    let ct = attr(attrs, ID_CONTENT_TYPE).ok_or_else(|| malformed("SignerInfo", "no content-type attribute"))?;
    if ct.decode_as::<ObjectIdentifier>().map_err(|e| malformed("SignerInfo", e))? != ID_CT_TST_INFO {
        return Err(malformed("SignerInfo", "content-type attribute is not id-ct-TSTInfo"));
    }
    let md = attr(attrs, ID_MESSAGE_DIGEST).ok_or_else(|| malformed("SignerInfo", "no message-digest attribute"))?;
    let md = md.decode_as::<OctetString>().map_err(|e| malformed("SignerInfo", e))?;
    let digest_alg = DigestAlg::from_oid(si.digest_alg.oid)?;
    if md.as_bytes() != digest::digest(digest_alg, tst_bytes).as_ref() {
        return Err(TspError::BadSignature("message-digest attribute does not match the TSTInfo".into()));
    }
    check_signing_certificate(attrs, tsa_der)?;
    let signed = attrs.to_der().map_err(enc)?;
    verify_signature(si.digest_alg.oid, si.signature_algorithm.oid, tsa, &signed, si.signature.as_bytes())?;

    // The imprint covers the data.
    let imprint_alg = DigestAlg::from_oid(tst.imprint.hash_algorithm.oid)?;
    if tst.imprint.hashed_message.as_bytes() != digest::digest(imprint_alg, data).as_ref() {
        return Err(TspError::ImprintMismatch);
    }
    let secs = tst.gen_time.to_unix_duration().as_secs();
    Ok(VerifiedTimestamp {
        gen_time: OffsetDateTime::from_unix_timestamp(secs as i64).map_err(|e| malformed("TSTInfo", e))?,
        policy: tst.policy,
        serial: hex(tst.serial.as_bytes()),
        tsa_cert_der: tsa_der.clone(),
    })
}

/// The TSTInfo fields a verifier needs. Decoded by hand because `const-oid`
/// 0.9 refuses OIDs of fewer than three encoded bytes, and TSAs do use short
/// policy OIDs (X-Road's test TSA: 1.2.3).
struct Tst {
    policy: String,
    imprint: MessageImprint,
    serial: Int,
    gen_time: GeneralizedTime,
}

impl Tst {
    fn decode(bytes: &[u8]) -> der::Result<Self> {
        let mut r = der::SliceReader::new(bytes)?;
        let tst = r.sequence(|r| {
            let _version = u8::decode(r)?;
            let policy = der::asn1::AnyRef::decode(r)?;
            der::Tagged::tag(&policy).assert_eq(der::Tag::ObjectIdentifier)?;
            let imprint = MessageImprint::decode(r)?;
            let serial = Int::decode(r)?;
            let gen_time = GeneralizedTime::decode(r)?;
            while !r.is_finished() {
                Any::decode(r)?;
            }
            Ok(Tst { policy: oid_string(policy.value()), imprint, serial, gen_time })
        })?;
        r.finish(tst)
    }
}

/// Dotted form of an OID's content bytes.
fn oid_string(bytes: &[u8]) -> String {
    let mut arcs: Vec<u128> = Vec::new();
    let mut acc: u128 = 0;
    for b in bytes {
        acc = (acc << 7) | u128::from(b & 0x7f);
        if b & 0x80 == 0 {
            if arcs.is_empty() {
                let first = (acc / 40).min(2);
                arcs.push(first);
                arcs.push(acc - first * 40);
            } else {
                arcs.push(acc);
            }
            acc = 0;
        }
    }
    arcs.iter().map(u128::to_string).collect::<Vec<_>>().join(".")
}

fn signer_matches(sid: &SignerIdentifier, cert: &Certificate) -> bool {
    match sid {
        SignerIdentifier::IssuerAndSerialNumber(ias) => {
            ias.issuer == cert.tbs_certificate.issuer && ias.serial_number == cert.tbs_certificate.serial_number
        }
        SignerIdentifier::SubjectKeyIdentifier(ski) => cert.tbs_certificate.extensions.iter().flatten().any(|e| {
            e.extn_id == const_oid::db::rfc5280::ID_CE_SUBJECT_KEY_IDENTIFIER
                && OctetString::from_der(e.extn_value.as_bytes()).is_ok_and(|v| v.as_bytes() == ski.0.as_bytes())
        }),
    }
}

fn check_time_stamping_eku(cert: &Certificate) -> Result<(), TspError> {
    use x509_cert::ext::pkix::ExtendedKeyUsage;
    for e in cert.tbs_certificate.extensions.iter().flatten() {
        if e.extn_id == const_oid::db::rfc5280::ID_CE_EXT_KEY_USAGE {
            let eku =
                ExtendedKeyUsage::from_der(e.extn_value.as_bytes()).map_err(|e| malformed("TSA certificate", e))?;
            if !eku.0.contains(&ID_KP_TIME_STAMPING) {
                return Err(TspError::NotForTimeStamping(cert.tbs_certificate.subject.to_string()));
            }
        }
    }
    Ok(())
}

/// ESSCertID (SHA-1) or ESSCertIDv2 (SHA-256 by default): the first entry must
/// be the hash of the TSA certificate.
fn check_signing_certificate(attrs: &SetOfVec<Attribute>, tsa_der: &[u8]) -> Result<(), TspError> {
    let (value, default_alg) = match (attr(attrs, ID_SIGNING_CERTIFICATE_V2), attr(attrs, ID_SIGNING_CERTIFICATE)) {
        (Some(v), _) => (v, ID_SHA_256),
        (None, Some(v)) => (v, ID_SHA_1),
        (None, None) => return Ok(()),
    };
    let bad = |e: &dyn std::fmt::Display| malformed("signing-certificate attribute", e);
    let bytes = value.to_der().map_err(|e| bad(&e))?;
    // SigningCertificate(V2) ::= SEQUENCE { certs SEQUENCE OF ESSCertID(v2), policies OPTIONAL }
    let (alg, hash) = der::SliceReader::new(&bytes)
        .and_then(|mut r| {
            r.sequence(|r| {
                let first = r.sequence(|r| {
                    r.sequence(|r| {
                        let alg = if default_alg == ID_SHA_256 && r.peek_tag()? == der::Tag::Sequence {
                            AlgorithmIdentifierOwned::decode(r)?.oid
                        } else {
                            default_alg
                        };
                        let hash = OctetString::decode(r)?;
                        while !r.is_finished() {
                            Any::decode(r)?;
                        }
                        Ok((alg, hash))
                    })
                    .and_then(|first| {
                        while !r.is_finished() {
                            Any::decode(r)?;
                        }
                        Ok(first)
                    })
                })?;
                while !r.is_finished() {
                    Any::decode(r)?;
                }
                Ok(first)
            })
        })
        .map_err(|e| bad(&e))?;
    let d = DigestAlg::from_oid(alg)?;
    if hash.as_bytes() == digest::digest(d, tsa_der).as_ref() {
        Ok(())
    } else {
        Err(TspError::BadSignature("the signing-certificate attribute names another certificate".into()))
    }
}

fn verify_signature(
    digest_oid: ObjectIdentifier,
    sig_oid: ObjectIdentifier,
    cert: &Certificate,
    data: &[u8],
    signature: &[u8],
) -> Result<(), TspError> {
    use ring::signature as s;
    let rsa_for = |d: ObjectIdentifier| -> Result<&'static dyn s::VerificationAlgorithm, TspError> {
        Ok(match d {
            ID_SHA_256 => &s::RSA_PKCS1_2048_8192_SHA256,
            ID_SHA_384 => &s::RSA_PKCS1_2048_8192_SHA384,
            ID_SHA_512 => &s::RSA_PKCS1_2048_8192_SHA512,
            ID_SHA_1 => &s::RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY,
            other => return Err(TspError::UnsupportedAlgorithm(other.to_string())),
        })
    };
    let algs: Vec<&'static dyn s::VerificationAlgorithm> = match sig_oid {
        RSA_ENCRYPTION => vec![rsa_for(digest_oid)?],
        SHA_256_WITH_RSA_ENCRYPTION => vec![&s::RSA_PKCS1_2048_8192_SHA256],
        SHA_384_WITH_RSA_ENCRYPTION => vec![&s::RSA_PKCS1_2048_8192_SHA384],
        SHA_512_WITH_RSA_ENCRYPTION => vec![&s::RSA_PKCS1_2048_8192_SHA512],
        ECDSA_WITH_SHA_256 => vec![&s::ECDSA_P256_SHA256_ASN1, &s::ECDSA_P384_SHA256_ASN1],
        ECDSA_WITH_SHA_384 => vec![&s::ECDSA_P384_SHA384_ASN1, &s::ECDSA_P256_SHA384_ASN1],
        other => return Err(TspError::UnsupportedAlgorithm(other.to_string())),
    };
    if algs.iter().any(|a| s::UnparsedPublicKey::new(*a, key_bytes(cert)).verify(data, signature).is_ok()) {
        return Ok(());
    }
    if crate::legacy_rsa::is_small_rsa(cert) {
        return crate::legacy_rsa::verify(cert, digest_oid, sig_oid, data, signature).map_err(TspError::BadSignature);
    }
    Err(TspError::BadSignature(format!("not signed by {}", cert.tbs_certificate.subject)))
}

// ------------------------------------------------------------------ dev TSA

/// Signs time stamps (the dev TSA): its certificate and an ECDSA P-256 key.
pub trait TsaKey {
    /// The TSA certificate, DER.
    fn certificate_der(&self) -> &[u8];
    /// Signs `data` with ECDSA P-256 / SHA-256, DER signature.
    fn sign_ecdsa_sha256(&self, data: &[u8]) -> Result<Vec<u8>, String>;
}

/// A non-negative INTEGER in its minimal (DER) form.
fn uint(n: u64) -> Result<Int, TspError> {
    let bytes: Vec<u8> = n.to_be_bytes().iter().copied().skip_while(|b| *b == 0).collect();
    let bytes = match bytes.first() {
        None => vec![0],
        Some(b) if *b >= 0x80 => [&[0u8][..], &bytes].concat(),
        Some(_) => bytes,
    };
    Int::new(&bytes).map_err(enc)
}

fn rejection(status: u32) -> Vec<u8> {
    let status = Int::new(&[status as u8]).and_then(|i| i.to_der()).unwrap_or_default();
    tlv(0x30, &tlv(0x30, &status))
}

/// Answers a TimeStampReq as the dev TSA at `now` with token serial `serial`.
/// Malformed requests get PKIStatus rejection (2).
pub fn respond(request_der: &[u8], key: &dyn TsaKey, now: OffsetDateTime, serial: u64) -> Vec<u8> {
    match respond_inner(request_der, key, now, serial) {
        Ok(r) => r,
        Err(_) => rejection(2),
    }
}

fn respond_inner(request_der: &[u8], key: &dyn TsaKey, now: OffsetDateTime, serial: u64) -> Result<Vec<u8>, TspError> {
    let req = TimeStampReq::from_der(request_der).map_err(|e| malformed("request", e))?;
    DigestAlg::from_oid(req.message_imprint.hash_algorithm.oid)?;
    let cert = Certificate::from_der(key.certificate_der()).map_err(|e| malformed("TSA certificate", e))?;
    let secs = u64::try_from(now.unix_timestamp()).map_err(enc)?;
    let tst = TstInfo {
        version: TspVersion::V1,
        policy: req.req_policy.unwrap_or(DEV_POLICY),
        message_imprint: req.message_imprint.clone(),
        serial_number: uint(serial)?,
        gen_time: GeneralizedTime::from_unix_duration(std::time::Duration::from_secs(secs)).map_err(enc)?,
        accuracy: None,
        ordering: false,
        nonce: req.nonce.clone(),
        tsa: None,
        extensions: None,
    };
    let tst_der = tst.to_der().map_err(enc)?;
    let attribute = |oid: ObjectIdentifier, value_der: Vec<u8>| -> Result<Attribute, TspError> {
        let mut values = SetOfVec::new();
        values.insert(Any::from_der(&value_der).map_err(enc)?).map_err(enc)?;
        Ok(Attribute { oid, values })
    };
    let ess = tlv(
        0x30,
        &tlv(
            0x30,
            &tlv(
                0x30,
                &OctetString::new(DigestAlg::Sha256.digest(key.certificate_der()))
                    .map_err(enc)?
                    .to_der()
                    .map_err(enc)?,
            ),
        ),
    );
    let mut attrs: SetOfVec<Attribute> = SetOfVec::new();
    attrs.insert(attribute(ID_CONTENT_TYPE, ID_CT_TST_INFO.to_der().map_err(enc)?)?).map_err(enc)?;
    attrs
        .insert(attribute(
            ID_MESSAGE_DIGEST,
            OctetString::new(DigestAlg::Sha256.digest(&tst_der)).map_err(enc)?.to_der().map_err(enc)?,
        )?)
        .map_err(enc)?;
    attrs.insert(attribute(ID_SIGNING_CERTIFICATE_V2, ess)?).map_err(enc)?;
    let signature = key.sign_ecdsa_sha256(&attrs.to_der().map_err(enc)?).map_err(TspError::Encode)?;
    let signer = SignerInfo {
        version: CmsVersion::V1,
        sid: SignerIdentifier::IssuerAndSerialNumber(IssuerAndSerialNumber {
            issuer: cert.tbs_certificate.issuer.clone(),
            serial_number: cert.tbs_certificate.serial_number.clone(),
        }),
        digest_alg: alg_id(ID_SHA_256),
        signed_attrs: Some(attrs),
        signature_algorithm: alg_id(ECDSA_WITH_SHA_256),
        signature: OctetString::new(signature).map_err(enc)?,
        unsigned_attrs: None,
    };
    let mut digest_algorithms = SetOfVec::new();
    digest_algorithms.insert(alg_id(ID_SHA_256)).map_err(enc)?;
    let certificates = if req.cert_req {
        let mut set = SetOfVec::new();
        set.insert(CertificateChoices::Certificate(cert)).map_err(enc)?;
        Some(CertificateSet(set))
    } else {
        None
    };
    let mut signer_infos = SetOfVec::new();
    signer_infos.insert(signer).map_err(enc)?;
    let sd = SignedData {
        version: CmsVersion::V3,
        digest_algorithms,
        encap_content_info: EncapsulatedContentInfo {
            econtent_type: ID_CT_TST_INFO,
            econtent: Some(
                Any::from_der(&OctetString::new(tst_der).map_err(enc)?.to_der().map_err(enc)?).map_err(enc)?,
            ),
        },
        certificates,
        crls: None,
        signer_infos: SignerInfos(signer_infos),
    };
    let ci =
        ContentInfo { content_type: ID_SIGNED_DATA, content: Any::from_der(&sd.to_der().map_err(enc)?).map_err(enc)? };
    let status = tlv(0x30, &Int::new(&[0]).map_err(enc)?.to_der().map_err(enc)?);
    Ok(tlv(0x30, &[status, ci.to_der().map_err(enc)?].concat()))
}

// ------------------------------------------------------------------ BER → DER

/// Rewrites BER indefinite lengths and constructed OCTET STRINGs as DER
/// definite lengths and primitive strings. Other BER liberties (unsorted SETs)
/// are left alone; the signature check re-encodes what it hashes.
pub fn ber_to_der(input: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(input.len());
    let used = convert(input, &mut out, 0)?;
    if used != input.len() {
        return Err(format!("{} bytes after the encoded value", input.len() - used));
    }
    Ok(out)
}

const MAX_DEPTH: usize = 64;

/// Converts one TLV at the start of `input`; returns the bytes consumed.
fn convert(input: &[u8], out: &mut Vec<u8>, depth: usize) -> Result<usize, String> {
    if depth > MAX_DEPTH {
        return Err("nesting too deep".into());
    }
    let (tag, mut pos) = read_tag(input)?;
    let first = *input.first().ok_or("truncated")?;
    let constructed = first & 0x20 != 0;
    let len_byte = *input.get(pos).ok_or("truncated length")?;
    pos += 1;
    let definite = if len_byte == 0x80 {
        None
    } else if len_byte & 0x80 == 0 {
        Some(len_byte as usize)
    } else {
        let n = (len_byte & 0x7f) as usize;
        if n > 4 {
            return Err("length too large".into());
        }
        let bytes = input.get(pos..pos + n).ok_or("truncated length")?;
        pos += n;
        Some(bytes.iter().fold(0usize, |a, b| (a << 8) | *b as usize))
    };
    if !constructed {
        let n = definite.ok_or("indefinite length on a primitive value")?;
        let content = input.get(pos..pos + n).ok_or("truncated content")?;
        out.extend_from_slice(&tlv_tag(&tag, content));
        return Ok(pos + n);
    }
    // Constructed: convert the children.
    let mut children = Vec::new();
    let end = match definite {
        Some(n) => {
            let body = input.get(pos..pos + n).ok_or("truncated content")?;
            let mut p = 0;
            while p < body.len() {
                p += convert(&body[p..], &mut children, depth + 1)?;
            }
            pos + n
        }
        None => {
            let mut p = pos;
            loop {
                if input.get(p..p + 2) == Some(&[0, 0]) {
                    break p + 2;
                }
                if p >= input.len() {
                    return Err("missing end-of-contents".into());
                }
                p += convert(&input[p..], &mut children, depth + 1)?;
            }
        }
    };
    if tag == [0x24] {
        // A constructed OCTET STRING: concatenate the (now DER) primitive chunks.
        let mut joined = Vec::new();
        let mut p = 0;
        while p < children.len() {
            let (_, hl) = read_tag(&children[p..])?;
            let (len, lhl) = der_len(&children[p + hl..])?;
            joined.extend_from_slice(&children[p + hl + lhl..p + hl + lhl + len]);
            p += hl + lhl + len;
        }
        out.extend_from_slice(&tlv_tag(&[0x04], &joined));
    } else {
        out.extend_from_slice(&tlv_tag(&tag, &children));
    }
    Ok(end)
}

fn read_tag(input: &[u8]) -> Result<(Vec<u8>, usize), String> {
    let first = *input.first().ok_or("truncated tag")?;
    if first & 0x1f != 0x1f {
        return Ok((vec![first], 1));
    }
    let mut i = 1;
    while input.get(i).ok_or("truncated tag")? & 0x80 != 0 {
        i += 1;
        if i > 5 {
            return Err("tag too long".into());
        }
    }
    Ok((input[..=i].to_vec(), i + 1))
}

fn der_len(input: &[u8]) -> Result<(usize, usize), String> {
    let b = *input.first().ok_or("truncated")?;
    if b & 0x80 == 0 {
        return Ok((b as usize, 1));
    }
    let n = (b & 0x7f) as usize;
    let bytes = input.get(1..1 + n).ok_or("truncated")?;
    Ok((bytes.iter().fold(0usize, |a, x| (a << 8) | *x as usize), 1 + n))
}

fn tlv_tag(tag: &[u8], content: &[u8]) -> Vec<u8> {
    let mut t = tlv(0, content);
    t.splice(0..1, tag.iter().copied());
    t
}
