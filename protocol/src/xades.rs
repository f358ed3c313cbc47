//! XAdES signatures in X-Road's profile (PR-SIGDOC; the `signature/bdoc-1.0/ts`
//! part of the transport message).
//!
//! A signature is an `asic:XAdESSignatures` document holding one `ds:Signature`
//! with `Id="signature"`. Its `SignedInfo` references each signed data part by
//! URI (`/message.xml`, `/attachment1`, …) with a SHA-512 digest of the part's
//! **raw bytes**, and `#signed-properties` (exclusive C14N, SHA-512). The
//! `SignedProperties` carry the signing time and the SHA-512 digest and issuer
//! serial of the signing certificate, which is embedded in `KeyInfo`.
//!
//! `SignedInfo` is canonicalised with exclusive C14N when Musubi signs; when
//! verifying, the algorithm named in the document is used (X-Road's older
//! signatures use inclusive C14N 1.0). Keys: ECDSA P-256 (`ecdsa-sha256`, the
//! strongest digest ring offers for P-256; signature values are r‖s as XML-DSig
//! requires) and RSA (`rsa-sha512`). Batch signatures over hash chains come with
//! the message-log issue.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use ring::digest;
use xml_sec::c14n::{C14nAlgorithm, canonicalize};
use xml_sec::document::XmlDocument;

use crate::fault::{Code, escape_text};

/// XML-DSig namespace.
pub const DS_NS: &str = "http://www.w3.org/2000/09/xmldsig#";
/// XAdES 1.3.2 namespace.
pub const XADES_NS: &str = "http://uri.etsi.org/01903/v1.3.2#";
/// SHA-512 digest method URI.
pub const SHA512: &str = "http://www.w3.org/2001/04/xmlenc#sha512";
/// RSA PKCS#1 v1.5 with SHA-512.
pub const RSA_SHA512: &str = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512";
/// ECDSA with SHA-256.
pub const ECDSA_SHA256: &str = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256";
/// Exclusive C14N 1.0.
pub const EXC_C14N: &str = "http://www.w3.org/2001/10/xml-exc-c14n#";
/// Inclusive C14N 1.0 (the default when a reference names no transform).
pub const C14N: &str = "http://www.w3.org/TR/2001/REC-xml-c14n-20010315";

/// Largest signature document accepted.
pub const MAX_SIGNATURE_BYTES: usize = 256 * 1024;

/// Why a signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct SignatureError {
    /// X-Road error code: `malformed_signature`, `invalid_signature_value`,
    /// `invalid_reference`, `incorrect_certificate`.
    pub code: Code,
    /// What was wrong.
    pub message: String,
}

fn err(code: Code, message: impl Into<String>) -> SignatureError {
    SignatureError { code, message: message.into() }
}

fn malformed(message: impl Into<String>) -> SignatureError {
    err(Code::MALFORMED_SIGNATURE, message)
}

/// Something that signs with a private key whose certificate is known.
pub trait Signer {
    /// The XML-DSig `SignatureMethod` URI.
    fn algorithm(&self) -> &'static str;
    /// Signs `data`, returning the XML-DSig signature value.
    fn sign(&self, data: &[u8]) -> Result<Vec<u8>, String>;
    /// The signing certificate, DER.
    fn certificate_der(&self) -> &[u8];
}

/// A data part the signature covers: its URI in the signature and its bytes.
#[derive(Debug, Clone, Copy)]
pub struct DataPart<'a> {
    /// `/message.xml`, `/attachment1`, …
    pub uri: &'a str,
    /// The raw bytes.
    pub bytes: &'a [u8],
}

/// A data part known by its digest only, as when it was hashed while it
/// streamed past and not kept in memory.
#[derive(Debug, Clone, Copy)]
pub struct PartDigest<'a> {
    /// `/message.xml`, `/attachment1`, …
    pub uri: &'a str,
    /// The XML-DSig digest method URI the digest was made with.
    pub method: &'a str,
    /// The digest.
    pub value: &'a [u8],
}

/// What a verifier knows of one part: its bytes, or its digest.
#[derive(Clone, Copy)]
enum Known<'a> {
    Bytes(&'a [u8]),
    Digest(&'a str, &'a [u8]),
}

impl Known<'_> {
    /// The part's digest with `method`, base64.
    fn digest_b64(self, uri: &str, method: &str) -> Result<String, SignatureError> {
        match self {
            Known::Bytes(b) => digest_b64(method, b),
            Known::Digest(m, v) if m == method => Ok(B64.encode(v)),
            Known::Digest(m, _) => Err(err(
                Code::INVALID_SIGNATURE_VALUE,
                format!("{uri} was hashed with {m} as announced, but the signature uses {method}"),
            )),
        }
    }
}

/// SHA-512 of `data`, base64.
pub fn sha512_b64(data: &[u8]) -> String {
    B64.encode(digest::digest(&digest::SHA512, data))
}

/// Digest of `data` with the XML-DSig digest method `uri`, base64.
fn digest_b64(uri: &str, data: &[u8]) -> Result<String, SignatureError> {
    let alg = match uri {
        SHA512 => &digest::SHA512,
        "http://www.w3.org/2001/04/xmldsig-more#sha384" => &digest::SHA384,
        "http://www.w3.org/2001/04/xmlenc#sha256" => &digest::SHA256,
        other => {
            return Err(malformed(format!("digest method {other:?} is not supported; use SHA-256, -384 or -512")));
        }
    };
    Ok(B64.encode(digest::digest(alg, data)))
}

/// Creates a signature over `parts`. `signing_time` is an xsd:dateTime.
pub fn sign(signer: &dyn Signer, parts: &[DataPart<'_>], signing_time: &str) -> Result<Vec<u8>, SignatureError> {
    sign_with_ocsp(signer, parts, signing_time, None)
}

/// Like [`sign`], embedding the OCSP response (DER) of the signing certificate
/// in the unsigned properties (`RevocationValues/OCSPValues`), as X-Road does.
pub fn sign_with_ocsp(
    signer: &dyn Signer,
    parts: &[DataPart<'_>],
    signing_time: &str,
    ocsp: Option<&[u8]>,
) -> Result<Vec<u8>, SignatureError> {
    let digests: Vec<(&str, Vec<u8>)> =
        parts.iter().map(|p| (p.uri, digest::digest(&digest::SHA512, p.bytes).as_ref().to_vec())).collect();
    sign_digests(signer, &digests, signing_time, ocsp)
}

/// Like [`sign_with_ocsp`] over parts given as (URI, SHA-512 digest), so a
/// signer can be handed digests instead of whole messages.
pub fn sign_digests(
    signer: &dyn Signer,
    parts: &[(&str, Vec<u8>)],
    signing_time: &str,
    ocsp: Option<&[u8]>,
) -> Result<Vec<u8>, SignatureError> {
    let cert = signer.certificate_der();
    let unsigned = match ocsp {
        Some(der) => format!(
            "<xades:UnsignedProperties><xades:UnsignedSignatureProperties><xades:RevocationValues><xades:OCSPValues>\
<xades:EncapsulatedOCSPValue Id=\"ocsp-response-1\">{}</xades:EncapsulatedOCSPValue></xades:OCSPValues>\
</xades:RevocationValues></xades:UnsignedSignatureProperties></xades:UnsignedProperties>",
            B64.encode(der)
        ),
        None => String::new(),
    };
    let (issuer, serial) = issuer_serial(cert)?;
    let props = format!(
        "<xades:SignedProperties Id=\"signed-properties\"><xades:SignedSignatureProperties>\
<xades:SigningTime>{time}</xades:SigningTime><xades:SigningCertificate><xades:Cert><xades:CertDigest>\
<ds:DigestMethod Algorithm=\"{SHA512}\"></ds:DigestMethod><ds:DigestValue>{cd}</ds:DigestValue></xades:CertDigest>\
<xades:IssuerSerial><ds:X509IssuerName>{issuer}</ds:X509IssuerName><ds:X509SerialNumber>{serial}</ds:X509SerialNumber>\
</xades:IssuerSerial></xades:Cert></xades:SigningCertificate></xades:SignedSignatureProperties></xades:SignedProperties>",
        time = escape_text(signing_time),
        cd = sha512_b64(cert),
        issuer = escape_text(&issuer),
    );
    let mut refs = String::new();
    for (i, (uri, d)) in parts.iter().enumerate() {
        refs.push_str(&format!(
            "<ds:Reference Id=\"ref-{i}\" URI=\"{uri}\"><ds:DigestMethod Algorithm=\"{SHA512}\"></ds:DigestMethod>\
<ds:DigestValue>{d}</ds:DigestValue></ds:Reference>",
            uri = escape_text(uri),
            d = B64.encode(d)
        ));
    }
    let signed_info = |sp_digest: &str| {
        format!(
            "<ds:SignedInfo><ds:CanonicalizationMethod Algorithm=\"{EXC_C14N}\"></ds:CanonicalizationMethod>\
<ds:SignatureMethod Algorithm=\"{alg}\"></ds:SignatureMethod>{refs}\
<ds:Reference Type=\"http://uri.etsi.org/01903#SignedProperties\" URI=\"#signed-properties\"><ds:Transforms>\
<ds:Transform Algorithm=\"{EXC_C14N}\"></ds:Transform></ds:Transforms><ds:DigestMethod Algorithm=\"{SHA512}\"></ds:DigestMethod>\
<ds:DigestValue>{sp_digest}</ds:DigestValue></ds:Reference></ds:SignedInfo>",
            alg = signer.algorithm(),
        )
    };
    // Exclusive canonicalization of an element depends only on the element and
    // the namespaces it uses, so each signed element is canonicalized in a small
    // document that declares the same prefixes, not in the whole signature with
    // its certificate and OCSP response.
    let alone = |element: &str| {
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><w xmlns:ds=\"{DS_NS}\" xmlns:xades=\"{XADES_NS}\">{element}</w>"
        )
    };
    let sp_c14n = canonical_subtree(&alone(&props), XADES_NS, "SignedProperties", EXC_C14N)?;
    let si = signed_info(&sha512_b64(&sp_c14n));
    let si_c14n = canonical_subtree(&alone(&si), DS_NS, "SignedInfo", EXC_C14N)?;
    let value =
        signer.sign(&si_c14n).map_err(|e| err(Code::CANNOT_CREATE_SIGNATURE, format!("signing failed: {e}")))?;
    Ok(format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><asic:XAdESSignatures xmlns:asic=\"http://uri.etsi.org/02918/v1.2.1#\" \
xmlns:ds=\"{DS_NS}\" xmlns:xades=\"{XADES_NS}\"><ds:Signature Id=\"signature\">{si}\
<ds:SignatureValue Id=\"signature-value\">{sig_value}</ds:SignatureValue><ds:KeyInfo><ds:X509Data>\
<ds:X509Certificate>{cert}</ds:X509Certificate></ds:X509Data></ds:KeyInfo><ds:Object>\
<xades:QualifyingProperties Target=\"#signature\">{props}{unsigned}</xades:QualifyingProperties></ds:Object></ds:Signature>\
</asic:XAdESSignatures>",
        sig_value = B64.encode(value),
        cert = B64.encode(cert),
    )
    .into_bytes())
}

fn issuer_serial(cert: &[u8]) -> Result<(String, String), SignatureError> {
    let (_, c) = x509_parser::parse_x509_certificate(cert)
        .map_err(|e| err(Code::INCORRECT_CERTIFICATE, format!("signing certificate does not parse: {e}")))?;
    Ok((c.issuer().to_string(), c.tbs_certificate.serial.to_string()))
}

fn c14n_algorithm(uri: &str) -> Result<C14nAlgorithm, SignatureError> {
    C14nAlgorithm::from_uri(uri).ok_or_else(|| malformed(format!("unsupported canonicalization {uri:?}")))
}

/// Canonical form of the first element `{ns}local` of `xml` (or the element
/// whose `Id` attribute is `local` when `ns` is empty).
fn canonical_subtree(xml: &str, ns: &str, local: &str, alg: &str) -> Result<Vec<u8>, SignatureError> {
    let algo = c14n_algorithm(alg)?;
    let doc = XmlDocument::parse(xml).map_err(|e| malformed(format!("signature XML does not parse: {e}")))?;
    doc.with_view(|view| {
        let d = view.document();
        let apex = d
            .descendants()
            .find(|n| {
                n.is_element()
                    && if ns.is_empty() {
                        n.attribute("Id") == Some(local)
                    } else {
                        n.tag_name().name() == local && n.tag_name().namespace() == Some(ns)
                    }
            })
            .ok_or_else(|| malformed(format!("signature has no {local} element")))?;
        let apex_id = apex.id();
        let mut out = Vec::new();
        canonicalize(d, Some(&|n| n.ancestors().any(|a| a.id() == apex_id)), &algo, &mut out)
            .map_err(|e| malformed(format!("cannot canonicalize {local}: {e}")))?;
        Ok(out)
    })
}

/// A signature whose value and references have been checked. The signer's
/// certificate still has to be checked against the trust configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedSignature {
    /// The signing certificate (DER) from `KeyInfo`.
    pub certificate_der: Vec<u8>,
    /// OCSP responses (DER) embedded in the unsigned properties.
    pub ocsp_responses: Vec<Vec<u8>>,
    /// The signing time from `SignedProperties`.
    pub signing_time: String,
}

/// What the signature document holds, read in one pass.
struct Found {
    sig_alg: String,
    refs: Vec<Reference>,
    value: String,
    cert: String,
    time: String,
    cert_digest: Option<(String, String)>,
    si_c14n: Vec<u8>,
    ocsp: Vec<String>,
}

struct Reference {
    uri: String,
    transform: Option<String>,
    digest_alg: String,
    digest: String,
}

/// Verifies a signature document over `parts`. Every part must be referenced
/// and every reference must match; the signature value must verify with the
/// embedded certificate, whose digest must match `SigningCertificate`.
pub fn verify(signature_xml: &[u8], parts: &[DataPart<'_>]) -> Result<VerifiedSignature, SignatureError> {
    verify_known(signature_xml, &known(parts, &[]))
}

/// Like [`verify`], for parts known by their bytes (`data`) or only by
/// their digests (`digested`, as when they were hashed while they streamed
/// past). A digest made with another method than the signature's reference
/// names is refused.
pub fn verify_parts(
    signature_xml: &[u8],
    data: &[DataPart<'_>],
    digested: &[PartDigest<'_>],
) -> Result<VerifiedSignature, SignatureError> {
    verify_known(signature_xml, &known(data, digested))
}

fn known<'a>(data: &[DataPart<'a>], digested: &[PartDigest<'a>]) -> Vec<(&'a str, Known<'a>)> {
    data.iter()
        .map(|p| (p.uri, Known::Bytes(p.bytes)))
        .chain(digested.iter().map(|p| (p.uri, Known::Digest(p.method, p.value))))
        .collect()
}

fn verify_known(signature_xml: &[u8], parts: &[(&str, Known<'_>)]) -> Result<VerifiedSignature, SignatureError> {
    if signature_xml.len() > MAX_SIGNATURE_BYTES {
        return Err(malformed(format!("signature of {} bytes exceeds {MAX_SIGNATURE_BYTES}", signature_xml.len())));
    }
    let text = std::str::from_utf8(signature_xml).map_err(|_| malformed("signature is not UTF-8"))?;
    if text.contains("<!DOCTYPE") || text.contains("<!ENTITY") {
        return Err(malformed("DOCTYPE is not allowed in a signature"));
    }
    let doc =
        XmlDocument::parse(text).map_err(|e| err(Code::INVALID_XML, format!("signature XML does not parse: {e}")))?;
    let found = doc.with_view(|view| {
        let d = view.document();
        let el = |local: &str, ns: &str| {
            d.descendants()
                .find(move |n| n.is_element() && n.tag_name().name() == local && n.tag_name().namespace() == Some(ns))
        };
        let text_of = |local: &str, ns: &str| -> Option<String> {
            el(local, ns).map(|n| n.children().filter_map(|c| c.text()).collect::<String>())
        };
        let si = el("SignedInfo", DS_NS).ok_or_else(|| malformed("signature has no SignedInfo"))?;
        let c14n_alg = si
            .children()
            .find(|n| n.is_element() && n.tag_name().name() == "CanonicalizationMethod")
            .and_then(|n| n.attribute("Algorithm"))
            .ok_or_else(|| malformed("SignedInfo has no CanonicalizationMethod"))?
            .to_owned();
        let sig_alg = si
            .children()
            .find(|n| n.is_element() && n.tag_name().name() == "SignatureMethod")
            .and_then(|n| n.attribute("Algorithm"))
            .ok_or_else(|| malformed("SignedInfo has no SignatureMethod"))?
            .to_owned();
        let mut refs = Vec::new();
        for r in si.children().filter(|n| n.is_element() && n.tag_name().name() == "Reference") {
            let sub = |name: &str| r.descendants().find(|n| n.is_element() && n.tag_name().name() == name);
            refs.push(Reference {
                uri: r.attribute("URI").unwrap_or_default().to_owned(),
                transform: sub("Transform").and_then(|t| t.attribute("Algorithm")).map(str::to_owned),
                digest_alg: sub("DigestMethod").and_then(|t| t.attribute("Algorithm")).unwrap_or_default().to_owned(),
                digest: sub("DigestValue").map(|n| n.children().filter_map(|c| c.text()).collect()).unwrap_or_default(),
            });
        }
        let value = text_of("SignatureValue", DS_NS).ok_or_else(|| malformed("signature has no SignatureValue"))?;
        let cert = text_of("X509Certificate", DS_NS).ok_or_else(|| malformed("signature has no X509Certificate"))?;
        let time = text_of("SigningTime", XADES_NS).unwrap_or_default();
        // Extra certificates of older signatures (`CompleteCertificateRefs`
        // pointing at `EncapsulatedX509Certificate`s): every reference names a
        // certificate that is there and whose digest matches; X-Road refuses a
        // signature otherwise as malformed.
        let encapsulated: Vec<_> = d
            .descendants()
            .filter(|n| n.is_element() && n.tag_name().name() == "EncapsulatedX509Certificate")
            .filter(|n| n.tag_name().namespace() == Some(XADES_NS))
            .collect();
        let cert_refs = d
            .descendants()
            .filter(|n| n.is_element() && n.tag_name().name() == "CompleteCertificateRefs")
            .flat_map(|refs| refs.descendants().filter(|n| n.is_element() && n.tag_name().name() == "Cert"));
        for cert in cert_refs {
            let uri = cert.attribute("URI").ok_or_else(|| malformed("a CompleteCertificateRefs Cert has no URI"))?;
            let id = uri.strip_prefix('#').unwrap_or(uri);
            let value = encapsulated
                .iter()
                .find(|n| n.attribute("Id") == Some(id))
                .ok_or_else(|| malformed(format!("the signature lacks the certificate {uri} it refers to")))?;
            let b64_text: String = value.children().filter_map(|c| c.text()).flat_map(str::split_whitespace).collect();
            let der =
                B64.decode(b64_text.as_bytes()).map_err(|_| malformed(format!("certificate {uri} is not base64")))?;
            let child = |name: &str| cert.descendants().find(|c| c.is_element() && c.tag_name().name() == name);
            let alg = child("DigestMethod").and_then(|m| m.attribute("Algorithm")).unwrap_or(SHA512);
            let expected: String = child("DigestValue")
                .map(|v| v.children().filter_map(|c| c.text()).flat_map(str::split_whitespace).collect())
                .unwrap_or_default();
            if digest_b64(alg, &der)? != expected {
                return Err(malformed(format!("the digest of certificate {uri} does not match its reference")));
            }
        }
        let ocsp: Vec<String> = d
            .descendants()
            .filter(|n| {
                n.is_element()
                    && n.tag_name().name() == "EncapsulatedOCSPValue"
                    && n.tag_name().namespace() == Some(XADES_NS)
            })
            .map(|n| n.children().filter_map(|c| c.text()).collect())
            .collect();
        let cert_digest = el("CertDigest", XADES_NS).map(|n| {
            let child = |name: &str| n.descendants().find(|c| c.is_element() && c.tag_name().name() == name);
            let alg = child("DigestMethod").and_then(|m| m.attribute("Algorithm")).unwrap_or(SHA512).to_owned();
            let value = child("DigestValue").map(|v| v.children().filter_map(|c| c.text()).collect::<String>());
            (alg, value.unwrap_or_default())
        });
        let mut si_c14n = Vec::new();
        let si_id = si.id();
        canonicalize(d, Some(&|n| n.ancestors().any(|a| a.id() == si_id)), &c14n_algorithm(&c14n_alg)?, &mut si_c14n)
            .map_err(|e| malformed(format!("cannot canonicalize SignedInfo: {e}")))?;
        Ok::<_, SignatureError>(Found { sig_alg, refs, value, cert, time, cert_digest, si_c14n, ocsp })
    })?;
    let Found { sig_alg, refs, value, cert: cert_b64, time: signing_time, cert_digest, si_c14n, ocsp } = found;
    let b64 = |s: &str| {
        let clean: String = s.split_whitespace().collect::<String>().replace("&#13;", "");
        B64.decode(clean.as_bytes())
    };
    let cert = b64(&cert_b64).map_err(|_| malformed("X509Certificate is not base64"))?;
    let value = b64(&value).map_err(|_| malformed("SignatureValue is not base64"))?;

    for (uri, _) in parts {
        if !refs.iter().any(|r| r.uri == *uri) {
            return Err(err(Code::INVALID_REFERENCE, format!("the signature does not cover {uri}")));
        }
    }
    // X-Road reports a reference whose digest does not match as an invalid
    // signature value (its tests: wrong-message, invalid-digest).
    for r in &refs {
        let actual = if let Some(id) = r.uri.strip_prefix('#') {
            let alg = r.transform.as_deref().unwrap_or(C14N);
            digest_b64(&r.digest_alg, &canonical_subtree(text, "", id, alg)?)?
        } else {
            let (_, part) = parts
                .iter()
                .find(|(uri, _)| *uri == r.uri)
                .ok_or_else(|| malformed(format!("the signature references unknown part {}", r.uri)))?;
            part.digest_b64(&r.uri, &r.digest_alg)?
        };
        let expected: String = r.digest.split_whitespace().collect();
        if actual != expected {
            return Err(err(
                Code::INVALID_SIGNATURE_VALUE,
                format!("digest of {} does not match the signature", r.uri),
            ));
        }
    }
    let (cd_alg, cd_value) =
        cert_digest.ok_or_else(|| malformed("SignedProperties lack the SigningCertificate digest"))?;
    if cd_value.split_whitespace().collect::<String>() != digest_b64(&cd_alg, &cert)? {
        return Err(err(Code::INCORRECT_CERTIFICATE, "SigningCertificate digest does not match the certificate"));
    }
    verify_raw(&cert, &sig_alg, &si_c14n, &value)
        .map_err(|e| err(Code::INVALID_SIGNATURE_VALUE, format!("signature value does not verify: {e}")))?;
    let ocsp_responses = ocsp
        .iter()
        .map(|o| b64(o).map_err(|_| malformed("EncapsulatedOCSPValue is not base64")))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(VerifiedSignature { certificate_der: cert, ocsp_responses, signing_time })
}

/// Verifies `sig` over `data` with the public key of `cert_der`, for the
/// XML-DSig algorithm `alg`.
pub fn verify_raw(cert_der: &[u8], alg: &str, data: &[u8], sig: &[u8]) -> Result<(), String> {
    let (_, cert) = x509_parser::parse_x509_certificate(cert_der).map_err(|e| format!("certificate: {e}"))?;
    let spki = cert.public_key().subject_public_key.data.as_ref();
    let algorithm: &dyn ring::signature::VerificationAlgorithm = match alg {
        ECDSA_SHA256 => &ring::signature::ECDSA_P256_SHA256_FIXED,
        "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384" => &ring::signature::ECDSA_P384_SHA384_FIXED,
        RSA_SHA512 => &ring::signature::RSA_PKCS1_2048_8192_SHA512,
        "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256" => &ring::signature::RSA_PKCS1_2048_8192_SHA256,
        other => return Err(format!("signature algorithm {other:?} is not supported")),
    };
    ring::signature::UnparsedPublicKey::new(algorithm, spki).verify(data, sig).map_err(|_| "bad signature".to_owned())
}

/// The URI under which a batch signature covers the hash chain result.
pub const BATCH_RESULT_URI: &str = "/sig-hashchainresult.xml";
/// The URI of each message's hash chain in a batch.
pub const BATCH_CHAIN_URI: &str = "/sig-hashchain.xml";

/// One message's share of a batch signature.
#[derive(Debug, Clone)]
pub struct BatchShare {
    /// The signature, the same for the whole batch.
    pub signature: Vec<u8>,
    /// The hash chain result the signature covers, the same for the whole batch.
    pub hash_chain_result: Vec<u8>,
    /// This message's hash chain.
    pub hash_chain: Vec<u8>,
}

/// Signs several messages with one signature (X-Road's batch signature): the
/// signature covers a hash chain result, and each message gets the hash
/// chain that links its parts to it.
pub fn sign_batch(
    signer: &dyn Signer,
    messages: &[Vec<DataPart<'_>>],
    signing_time: &str,
    ocsp: Option<&[u8]>,
) -> Result<Vec<BatchShare>, SignatureError> {
    let inputs: Vec<Vec<(String, Vec<u8>)>> = messages
        .iter()
        .map(|parts| {
            parts
                .iter()
                .map(|p| (p.uri.to_owned(), digest::digest(&digest::SHA512, p.bytes).as_ref().to_vec()))
                .collect()
        })
        .collect();
    sign_batch_digests(signer, &inputs, signing_time, ocsp)
}

/// Like [`sign_batch`] over messages given as (URI, SHA-512 digest) lists.
pub fn sign_batch_digests(
    signer: &dyn Signer,
    inputs: &[Vec<(String, Vec<u8>)>],
    signing_time: &str,
    ocsp: Option<&[u8]>,
) -> Result<Vec<BatchShare>, SignatureError> {
    let batch = crate::hashchain::build(inputs, BATCH_CHAIN_URI).map_err(|e| malformed(e.message))?;
    let signature =
        sign_with_ocsp(signer, &[DataPart { uri: BATCH_RESULT_URI, bytes: &batch.result }], signing_time, ocsp)?;
    Ok(batch
        .chains
        .into_iter()
        .map(|hash_chain| BatchShare {
            signature: signature.clone(),
            hash_chain_result: batch.result.clone(),
            hash_chain,
        })
        .collect())
}

/// Verifies a batch signature over `parts`: the signature over the hash chain
/// result, then the hash chain from the parts to that result.
pub fn verify_batch(
    signature_xml: &[u8],
    hash_chain_result: &[u8],
    hash_chain: &[u8],
    parts: &[DataPart<'_>],
) -> Result<VerifiedSignature, SignatureError> {
    let verified = verify(signature_xml, &[DataPart { uri: BATCH_RESULT_URI, bytes: hash_chain_result }])?;
    verify_batch_chain(hash_chain_result, hash_chain, parts)?;
    Ok(verified)
}

/// The second half of [`verify_batch`]: the hash chain from `parts` to the
/// hash chain result. Every message of a batch shares the signature over the
/// result, so a verifier may check that signature once per batch and this
/// chain once per message.
pub fn verify_batch_chain(
    hash_chain_result: &[u8],
    hash_chain: &[u8],
    parts: &[DataPart<'_>],
) -> Result<(), SignatureError> {
    verify_batch_chain_parts(hash_chain_result, hash_chain, parts, &[])
}

/// Like [`verify_batch_chain`], for parts known by their bytes (`data`) or
/// only by their digests (`digested`). As in X-Road, a part known by its bytes
/// that differs is named (`invalid_hash_chain_ref`); a wrong digest makes the
/// chain miss its result (`invalid_hash_chain`).
pub fn verify_batch_chain_parts(
    hash_chain_result: &[u8],
    hash_chain: &[u8],
    data: &[DataPart<'_>],
    digested: &[PartDigest<'_>],
) -> Result<(), SignatureError> {
    let inputs: Vec<crate::hashchain::Input<'_>> = data
        .iter()
        .map(|p| crate::hashchain::Input { uri: p.uri, digest: None })
        .chain(
            digested.iter().map(|p| crate::hashchain::Input { uri: p.uri, digest: Some((p.method, p.value.to_vec())) }),
        )
        .collect();
    let resolve = |uri: &str| {
        if uri == BATCH_CHAIN_URI {
            return Some(hash_chain.to_vec());
        }
        data.iter().find(|p| p.uri == uri).map(|p| p.bytes.to_vec())
    };
    crate::hashchain::verify(hash_chain_result, &resolve, &inputs)
        .map_err(|e| SignatureError { code: e.code, message: e.message })
}

/// The decoded `SignatureValue` octets of a signature document: what a
/// non-batch time stamp covers (X-Road's message log).
pub fn signature_value(signature_xml: &[u8]) -> Result<Vec<u8>, SignatureError> {
    let text = std::str::from_utf8(signature_xml).map_err(|_| malformed("signature is not UTF-8"))?;
    let doc =
        XmlDocument::parse(text).map_err(|e| err(Code::INVALID_XML, format!("signature XML does not parse: {e}")))?;
    let value = doc.with_view(|view| {
        view.document()
            .descendants()
            .find(|n| {
                n.is_element() && n.tag_name().name() == "SignatureValue" && n.tag_name().namespace() == Some(DS_NS)
            })
            .map(|n| n.children().filter_map(|c| c.text()).collect::<String>())
    });
    let value = value.ok_or_else(|| malformed("signature has no SignatureValue"))?;
    B64.decode(value.split_whitespace().collect::<String>()).map_err(|_| malformed("SignatureValue is not base64"))
}

/// The `URI`s of the references in a signature's `SignedInfo`, and the
/// decoded `EncapsulatedTimeStamp` of its unsigned properties, if any.
pub fn inspect(signature_xml: &[u8]) -> Result<(Vec<String>, Option<Vec<u8>>), SignatureError> {
    let text = std::str::from_utf8(signature_xml).map_err(|_| malformed("signature is not UTF-8"))?;
    let doc =
        XmlDocument::parse(text).map_err(|e| err(Code::INVALID_XML, format!("signature XML does not parse: {e}")))?;
    let (refs, ts) = doc.with_view(|view| {
        let d = view.document();
        let refs: Vec<String> = d
            .descendants()
            .filter(|n| n.is_element() && n.tag_name().name() == "Reference" && n.tag_name().namespace() == Some(DS_NS))
            .filter(|n| n.parent_element().is_some_and(|p| p.tag_name().name() == "SignedInfo"))
            .filter_map(|n| n.attribute("URI").map(str::to_owned))
            .collect();
        let ts = d
            .descendants()
            .find(|n| n.is_element() && n.tag_name().name() == "EncapsulatedTimeStamp")
            .map(|n| n.children().filter_map(|c| c.text()).collect::<String>());
        (refs, ts)
    });
    let ts = ts
        .map(|t| {
            B64.decode(t.split_whitespace().collect::<String>())
                .map_err(|_| malformed("EncapsulatedTimeStamp is not base64"))
        })
        .transpose()?;
    Ok((refs, ts))
}
