//! Offline verification of message-log containers (X-Road's
//! `AsicContainerVerifier`): structure, references, time stamp (batch over
//! `ts-hashchainresult.xml` with its hash chain, or one embedded in the
//! signature over the SignatureValue), the signature hash chain of a batch
//! signature, the signature value and references, and the signer's
//! certificate path and OCSP response at the time-stamp time.
//!
//! Errors carry X-Road's codes; for a broken signature hash chain the code is
//! `malformed_signature.<hash chain code>` as X-Road composes it.

use std::time::Duration;

use musubi_protocol::ClientId;
use musubi_protocol::asic::{self, Container};
use musubi_protocol::hashchain::{self, Input};
use musubi_protocol::xades::{self, DataPart};
use time::OffsetDateTime;

use crate::{ocsp, tsp};

/// What a container is checked against: trusted CAs, approved OCSP responder
/// certificates and TSA certificates (DER), and the OCSP freshness limit.
#[derive(Debug, Clone)]
pub struct VerificationConf {
    /// Approved CA certificates.
    pub cas: Vec<Vec<u8>>,
    /// Approved OCSP responder certificates.
    pub ocsp_responders: Vec<Vec<u8>>,
    /// Approved TSA certificates.
    pub tsas: Vec<Vec<u8>>,
    /// `ocspFreshnessSeconds`.
    pub ocsp_freshness: Duration,
    /// How the certificates of each CA (DER of the top CA) name their member
    /// (X-Road's certificate profile info). A container whose signer chains to
    /// a CA listed here must be signed by the member its message names: the
    /// client of a request, the service provider of a response.
    pub profiles: Vec<(Vec<u8>, SignerProfile)>,
}

/// Why a container did not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ContainerError {
    /// X-Road's code, possibly composed (`malformed_signature.invalid_hash_chain_ref`).
    pub code: String,
    /// The first thing that failed.
    pub message: String,
}

fn fail(code: impl Into<String>, message: impl Into<String>) -> ContainerError {
    ContainerError { code: code.into(), message: message.into() }
}

/// What a verified container proves.
#[derive(Debug, Clone)]
pub struct VerifiedContainer {
    /// The signer's certificate.
    pub signer_cert: Vec<u8>,
    /// When the TSA saw the signature.
    pub time_stamped_at: OffsetDateTime,
}

fn entry<'a>(c: &'a Container, uri: &str) -> Option<&'a [u8]> {
    c.get(uri.trim_start_matches('/'))
}

/// Verifies a container (the bytes of an `.asice` file).
pub fn verify_container(bytes: &[u8], conf: &VerificationConf) -> Result<VerifiedContainer, ContainerError> {
    let c = asic::read(bytes, &asic::Limits::default()).map_err(|e| fail(e.code.0, e.message))?;
    let signature = c.signature();
    let (refs, embedded_ts) = xades::inspect(signature).map_err(|e| fail(e.code.0, e.message))?;

    // 1. The signature covers the message or a batch's hash chain result.
    let data_refs: Vec<&String> = refs.iter().filter(|r| !r.starts_with('#')).collect();
    let batch = data_refs.iter().any(|r| r.as_str() == xades::BATCH_RESULT_URI);
    if !batch && !data_refs.iter().any(|r| r.as_str() == "/message.xml") {
        return Err(fail(
            "malformed_signature",
            "the signature references neither /message.xml nor /sig-hashchainresult.xml",
        ));
    }

    // 2. The time stamp.
    let tsa_certs: Vec<&[u8]> = conf.tsas.iter().map(Vec::as_slice).collect();
    let stamped = match (c.get("META-INF/timestamp.tst"), embedded_ts) {
        (Some(token), _) => {
            let result = c.get("ts-hashchainresult.xml").ok_or_else(|| {
                fail("asic_hash_chain_result_not_found", "a batch time stamp without ts-hashchainresult.xml")
            })?;
            // The hash chain first: X-Road refuses an unreadable one before the token.
            let resolve = |uri: &str| entry(&c, uri).map(<[u8]>::to_vec);
            let input = [Input { uri: "/META-INF/signatures.xml", digest: None }];
            hashchain::verify(result, &resolve, &input)
                .map_err(|e| fail("malformed_signature", format!("time-stamp hash chain: {e}")))?;
            tsp::verify_token(token, result, &tsa_certs).map_err(|e| fail("timestamp_validation", e.to_string()))?
        }
        (None, Some(token)) => {
            let value = xades::signature_value(signature).map_err(|e| fail(e.code.0, e.message))?;
            tsp::verify_token(&token, &value, &tsa_certs).map_err(|e| fail("timestamp_validation", e.to_string()))?
        }
        (None, None) => return Err(fail("asic_timestamp_not_found", "the container has no time stamp")),
    };

    // 3. A batch signature's hash chain links the message to the result.
    if batch {
        let result = c.get("sig-hashchainresult.xml").ok_or_else(|| {
            fail("asic_hash_chain_result_not_found", "a batch signature without sig-hashchainresult.xml")
        })?;
        let resolve = |uri: &str| entry(&c, uri).map(<[u8]>::to_vec);
        let input = [Input { uri: "/message.xml", digest: None }];
        hashchain::verify(result, &resolve, &input)
            .map_err(|e| fail(format!("malformed_signature.{}", e.code.0), e.message))?;
    }

    // 4. Signature value and references, over the container's entries.
    let mut parts = Vec::new();
    for r in &data_refs {
        let bytes = entry(&c, r).ok_or_else(|| {
            fail("malformed_signature", format!("the signature references {r}, which the container lacks"))
        })?;
        parts.push(DataPart { uri: r.as_str(), bytes });
    }
    let verified = xades::verify(signature, &parts).map_err(|e| fail(e.code.0, e.message))?;

    // 5. The signer's certificate path and OCSP status when it was time-stamped.
    let at = stamped.gen_time;
    let top = check_signer_certificate(&verified, conf, at)?;

    // 6. The signer is the member the message names.
    if let Some((_, profile)) = conf.profiles.iter().find(|(ca, _)| *ca == top) {
        let member = message_signer(c.message())?;
        check_signer(&verified.certificate_der, &member, *profile)?;
    }

    // 7. The ASiC manifest, when there is one, matches what it lists (after
    // X-Road's own checks, so their outcomes come first).
    asic::check_asic_manifest(&c).map_err(|e| fail(e.code.0, e.message))?;
    Ok(VerifiedContainer { signer_cert: verified.certificate_der, time_stamped_at: at })
}

/// Checks the signer's certificate path to an approved CA and its OCSP status
/// (one of the responses the signature carries, signed by an approved
/// responder, fresh at `at`).
fn check_signer_certificate(
    verified: &xades::VerifiedSignature,
    conf: &VerificationConf,
    at: OffsetDateTime,
) -> Result<Vec<u8>, ContainerError> {
    if verified.ocsp_responses.is_empty() {
        return Err(fail("malformed_signature", "the signature carries no OCSP response for its certificate"));
    }
    let cas: Vec<&[u8]> = conf.cas.iter().map(Vec::as_slice).collect();
    let chain = crate::build_chain(&verified.certificate_der, &[], &cas, at)
        .map_err(|e| fail("cert_validation", format!("signer certificate: {e}")))?;
    let issuer = chain.get(1).ok_or_else(|| fail("cert_validation", "no issuer for the signer certificate"))?;
    let responders: Vec<&[u8]> = conf.ocsp_responders.iter().map(Vec::as_slice).collect();
    let mut last = String::new();
    for r in &verified.ocsp_responses {
        match ocsp::verify_response_with_responders(
            r,
            &verified.certificate_der,
            issuer,
            &responders,
            at,
            conf.ocsp_freshness,
        ) {
            Ok(v) if v.status == ocsp::Status::Good => return Ok(chain.last().cloned().unwrap_or_default()),
            Ok(v) => last = format!("the signer certificate is {:?}", v.status),
            Err(e) => last = e.to_string(),
        }
    }
    Err(fail("cert_validation", last))
}

/// The member that signed a logged message: the client of a request, the
/// service provider of a response (SOAP, or X-Road's REST message layout).
pub fn message_signer(message: &[u8]) -> Result<ClientId, ContainerError> {
    use musubi_protocol::soap::{self, Direction, Soap};
    let unknown = |why: String| fail("invalid_message", format!("cannot tell who signed the message: {why}"));
    let text = message.strip_prefix(b"\xEF\xBB\xBF".as_slice()).unwrap_or(message);
    if text.trim_ascii_start().starts_with(b"<") {
        let limits = soap::Limits::default();
        let (soap, response) = match soap::parse(message, Direction::Response, &limits) {
            Ok(s) => (s, true),
            Err(_) => (soap::parse(message, Direction::Request, &limits).map_err(|e| unknown(e.to_string()))?, false),
        };
        let Soap::Message(m) = soap else { return Err(unknown("the message is a SOAP fault".into())) };
        let h = m.header();
        return Ok(if response { h.service.provider().member_id() } else { h.client.member_id() });
    }
    // REST: a status line (response) or request line, then headers.
    let text = std::str::from_utf8(&text[..text.len().min(64 * 1024)]).unwrap_or_default();
    let mut lines = text.lines();
    let first = lines.next().unwrap_or_default().trim();
    let response = first.len() == 3 && first.bytes().all(|b| b.is_ascii_digit());
    let wanted = if response { "x-road-service" } else { "x-road-client" };
    let value = lines
        .take_while(|l| !l.trim().is_empty())
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case(wanted))
        .map(|(_, v)| v.trim().to_owned())
        .ok_or_else(|| unknown(format!("the message has no {wanted} header")))?;
    let parts: Vec<&str> = value.split('/').collect();
    match parts[..] {
        [instance, class, code, ..] => ClientId::member(instance, class, code).map_err(|e| unknown(e.to_string())),
        _ => Err(unknown(format!("{wanted} {value:?} does not name a member"))),
    }
}

/// How a signing certificate names its member: X-Road's certificate profiles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignerProfile {
    /// Musubi's and X-Road's default: `C=<instance>, O=<member class>, CN=<member code>`.
    Default,
    /// The FiVRK profile: `serialNumber=<instance>/<server code>/<member class>, CN=<member code>`.
    FiVrk,
    /// The CA fixes instance and class; the certificate names the member code in `CN`
    /// (X-Road's EE test profile).
    CommonName,
}

impl SignerProfile {
    /// The signer-name rule of an X-Road `certificateProfileInfo` class name
    /// (its last dotted part decides); none for a profile Musubi does not know.
    pub fn from_info(info: &str) -> Option<Self> {
        match info.trim().rsplit('.').next().unwrap_or_default() {
            "FiVRKCertificateProfileInfoProvider" => Some(Self::FiVrk),
            "EjbcaCertificateProfileInfoProvider" | "DefaultCertificateProfileInfoProvider" => Some(Self::Default),
            "TestCertificateProfileInfoProvider" => Some(Self::CommonName),
            _ => None,
        }
    }
}

/// Checks that `cert_der` names `member` under `profile` (X-Road's signer-name
/// check; `incorrect_certificate` otherwise).
pub fn check_signer(cert_der: &[u8], member: &ClientId, profile: SignerProfile) -> Result<(), ContainerError> {
    let wrong = |why: String| fail("incorrect_certificate", format!("the signing certificate {why}, not {member}"));
    let (_, cert) = x509_parser::parse_x509_certificate(cert_der)
        .map_err(|e| fail("incorrect_certificate", format!("the signing certificate does not parse: {e}")))?;
    let subject = cert.subject();
    let first = |oid: &x509_parser::der_parser::oid::Oid<'_>| {
        subject.iter_by_oid(oid).next().and_then(|a| a.as_str().ok()).map(str::to_owned).unwrap_or_default()
    };
    use x509_parser::oid_registry::OID_X509_SERIALNUMBER;
    use x509_parser::oid_registry::{OID_X509_COMMON_NAME, OID_X509_COUNTRY_NAME, OID_X509_ORGANIZATION_NAME};
    let cn = first(&OID_X509_COMMON_NAME);
    let named = match profile {
        SignerProfile::Default => {
            let (c, o) = (first(&OID_X509_COUNTRY_NAME), first(&OID_X509_ORGANIZATION_NAME));
            (c == member.instance() && o == member.member_class() && cn == member.member_code())
                .then_some(())
                .ok_or_else(|| format!("names C={c}, O={o}, CN={cn}"))
        }
        SignerProfile::FiVrk => {
            let serial = first(&OID_X509_SERIALNUMBER);
            let parts: Vec<&str> = serial.split('/').collect();
            (parts.len() == 3
                && parts[0] == member.instance()
                && parts[2] == member.member_class()
                && cn == member.member_code())
            .then_some(())
            .ok_or_else(|| format!("names serialNumber={serial}, CN={cn}"))
        }
        SignerProfile::CommonName => (cn == member.member_code()).then_some(()).ok_or_else(|| format!("names CN={cn}")),
    };
    named.map_err(wrong)
}

/// A stand-alone signature to verify: the signature document, the data it
/// covers and, for a batch signature, the hash chain result and chain that
/// link the data to it.
pub struct Signed<'a> {
    /// The signature document (`signatures.xml`).
    pub signature: &'a [u8],
    /// The data the signature (or its hash chain) covers.
    pub parts: &'a [DataPart<'a>],
    /// For a batch signature: the hash chain result and the hash chain.
    pub batch: Option<(&'a [u8], &'a [u8])>,
}

/// Verifies a stand-alone signature at the time `at` (X-Road's
/// `SignatureVerifier`): the batch hash chain, the signature value and
/// references, the certificate path and OCSP status at `at`, then, when
/// `signer` is given, that the certificate names that member under the
/// profile of its CA (the default profile if the CA has none listed).
pub fn verify_signature(
    signed: &Signed<'_>,
    conf: &VerificationConf,
    at: OffsetDateTime,
    signer: Option<&ClientId>,
) -> Result<Vec<u8>, ContainerError> {
    let verified = match signed.batch {
        Some((result, chain)) => xades::verify_batch(signed.signature, result, chain, signed.parts),
        None => xades::verify(signed.signature, signed.parts),
    };
    let verified = verified.map_err(|e| fail(e.code.0, e.message))?;
    let top = check_signer_certificate(&verified, conf, at)?;
    if let Some(member) = signer {
        let profile = conf.profiles.iter().find(|(ca, _)| *ca == top).map_or(SignerProfile::Default, |(_, p)| *p);
        check_signer(&verified.certificate_der, member, profile)?;
    }
    Ok(verified.certificate_der)
}
