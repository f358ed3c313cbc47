//! Keys and certificates for Musubi: a development CA that issues every
//! certificate of the demo network and the tests, software signing keys, and
//! the certificate checks the proxies make (issued by a trusted CA, within its
//! validity period).
//!
//! What it deliberately does not do yet: PIN-protected token storage, CSRs,
//! OCSP and time stamps (the trust issue). Keys are ECDSA P-256, made with
//! rcgen on ring; ring cannot generate RSA keys, but RSA PKCS#8 keys made
//! elsewhere can be loaded for signing.

#![warn(missing_docs)]

pub mod csr;
pub mod http;
mod legacy_rsa;
pub mod memo;
pub mod ocsp;
pub mod token;
pub mod tsp;
pub mod verify;

use std::net::IpAddr;

use musubi_protocol::xades;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, RSA_PKCS1_SHA512, RsaKeyPair};
use time::{Duration, OffsetDateTime};

/// Errors of key and certificate handling.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PkiError {
    /// rcgen failed to make a key or certificate.
    #[error("cannot create certificate: {0}")]
    Generate(#[from] rcgen::Error),
    /// A private key could not be loaded.
    #[error("private key is not a PKCS#8 ECDSA P-256 or RSA key: {0}")]
    BadKey(String),
    /// A certificate could not be parsed.
    #[error("certificate does not parse: {0}")]
    BadCertificate(String),
    /// The certificate is not issued by the trusted CA.
    #[error("certificate {subject:?} is not issued by a trusted CA: {reason}")]
    Untrusted {
        /// Subject of the refused certificate.
        subject: String,
        /// What failed.
        reason: String,
    },
    /// The certificate is outside its validity period.
    #[error("certificate {subject:?} is not valid at {at} (valid {not_before} to {not_after})")]
    Expired {
        /// Subject.
        subject: String,
        /// The time checked.
        at: String,
        /// Start of validity.
        not_before: String,
        /// End of validity.
        not_after: String,
    },
}

/// What a certificate is for (X-Road's certificate profiles).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Usage {
    /// Authentication certificate of a security server (TLS on 5500).
    Auth,
    /// Signing certificate of a member.
    Sign,
    /// TLS certificate of an information system or a provider endpoint.
    Tls,
    /// A delegated OCSP responder of the CA (id-kp-OCSPSigning).
    OcspSigning,
    /// A time-stamping authority (id-kp-timeStamping, critical, as RFC 3161 §2.3 asks).
    TimeStamping,
}

/// A certificate with its private key (PKCS#8 DER), as issued by [`DevCa`].
#[derive(Clone)]
pub struct Issued {
    /// The certificate, DER.
    pub cert_der: Vec<u8>,
    /// The private key, PKCS#8 DER.
    pub key_pkcs8: Vec<u8>,
}

impl std::fmt::Debug for Issued {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issued").field("cert_der", &self.cert_der.len()).field("key_pkcs8", &"<redacted>").finish()
    }
}

impl Issued {
    /// The certificate as PEM.
    pub fn cert_pem(&self) -> String {
        pem("CERTIFICATE", &self.cert_der)
    }
    /// The key as PEM.
    pub fn key_pem(&self) -> String {
        pem("PRIVATE KEY", &self.key_pkcs8)
    }
}

/// The subject of a certificate, for messages.
pub fn subject_of(cert_der: &[u8]) -> Option<String> {
    x509_parser::parse_x509_certificate(cert_der).ok().map(|(_, c)| c.subject().to_string())
}

/// A new ECDSA P-256 private key, PKCS#8 DER (the default key type).
pub fn generate_ecdsa_key() -> Result<Vec<u8>, PkiError> {
    Ok(KeyPair::generate()?.serialize_der())
}

/// A self-signed certificate for a PKCS#8 key (valid ten years), as X-Road's
/// central server makes for its configuration signing keys.
pub fn self_signed_cert(key_pkcs8: &[u8], common_name: &str) -> Result<Vec<u8>, PkiError> {
    let key = KeyPair::try_from(key_pkcs8)?;
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    params.distinguished_name = dn;
    let now = OffsetDateTime::now_utc();
    params.not_before = now - std::time::Duration::from_secs(3600);
    params.not_after = now + std::time::Duration::from_secs(10 * 365 * 24 * 3600);
    Ok(params.self_signed(&key)?.der().to_vec())
}

/// A self-signed TLS server certificate for a PKCS#8 key (valid ten years)
/// naming `sans` (IP addresses or DNS names): the admin endpoints' own
/// certificate, which their clients pin.
pub fn self_signed_tls_cert(key_pkcs8: &[u8], common_name: &str, sans: &[String]) -> Result<Vec<u8>, PkiError> {
    let key = KeyPair::try_from(key_pkcs8)?;
    let mut params = CertificateParams::new(sans.to_vec())?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    params.distinguished_name = dn;
    let now = OffsetDateTime::now_utc();
    params.not_before = now - std::time::Duration::from_secs(3600);
    params.not_after = now + std::time::Duration::from_secs(10 * 365 * 24 * 3600);
    Ok(params.self_signed(&key)?.der().to_vec())
}

/// PEM-encodes DER.
pub fn pem(label: &str, der: &[u8]) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// Decodes the first PEM block with `label`.
pub fn pem_decode(label: &str, text: &str) -> Option<Vec<u8>> {
    use base64::Engine as _;
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = text.find(&begin)? + begin.len();
    let stop = start + text[start..].find(&end)?;
    let b64: String = text[start..stop].split_whitespace().collect();
    base64::engine::general_purpose::STANDARD.decode(b64).ok()
}

/// A development certification authority. Demo and tests only: its key lives
/// in memory and every certificate it issues is valid for a year.
pub struct DevCa {
    issuer: Issuer<'static, KeyPair>,
    cert_der: Vec<u8>,
    /// The CA key again, for ring: the OCSP responder signs with it.
    ocsp_key: EcdsaKeyPair,
    rng: SystemRandom,
    /// Serials (hex) this CA issued, and the revocation time of revoked ones.
    issued: std::sync::Mutex<std::collections::HashMap<String, Option<OffsetDateTime>>>,
}

impl DevCa {
    /// A new CA named `common_name`.
    pub fn new(common_name: &str) -> Result<Self, PkiError> {
        let key = KeyPair::generate()?;
        let params = ca_params(common_name, 3650);
        let cert_der = params.self_signed(&key)?.der().to_vec();
        Self::from_parts(params, key, cert_der)
    }

    fn from_parts(params: CertificateParams, key: KeyPair, cert_der: Vec<u8>) -> Result<Self, PkiError> {
        let rng = SystemRandom::new();
        let ocsp_key =
            EcdsaKeyPair::from_pkcs8(&ring::signature::ECDSA_P256_SHA256_ASN1_SIGNING, &key.serialize_der(), &rng)
                .map_err(|e| PkiError::BadKey(e.to_string()))?;
        Ok(Self { issuer: Issuer::new(params, key), cert_der, ocsp_key, rng, issued: Default::default() })
    }

    /// The CA certificate, DER.
    pub fn cert_der(&self) -> &[u8] {
        &self.cert_der
    }

    /// The CA's private key as PKCS#8 PEM, for handing the dev CA to another
    /// tool (the OpenSSL interop tests). Dev CA only: its key is no secret.
    pub fn key_pem(&self) -> String {
        pem("PRIVATE KEY", &self.issuer.key().serialize_der())
    }

    /// An intermediate CA whose certificate this CA signs.
    pub fn new_intermediate(&self, common_name: &str) -> Result<DevCa, PkiError> {
        let key = KeyPair::generate()?;
        let params = ca_params(common_name, 1825);
        let cert_der = params.signed_by(&key, &self.issuer)?.der().to_vec();
        self.record(&cert_der);
        Self::from_parts(params, key, cert_der)
    }

    /// Issues a certificate for `common_name` of `organization`, with the
    /// given IP addresses / DNS names as subject alternative names.
    pub fn issue(
        &self,
        common_name: &str,
        organization: &str,
        usage: Usage,
        sans: &[&str],
    ) -> Result<Issued, PkiError> {
        self.issue_with_validity(common_name, organization, usage, sans, Duration::hours(-1), Duration::days(365))
    }

    /// Like [`DevCa::issue`] with the validity period relative to now (tests
    /// use this for expired certificates).
    pub fn issue_with_validity(
        &self,
        common_name: &str,
        organization: &str,
        usage: Usage,
        sans: &[&str],
        from: Duration,
        to: Duration,
    ) -> Result<Issued, PkiError> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::default();
        params.distinguished_name = dn(common_name, organization);
        params.is_ca = IsCa::ExplicitNoCa;
        let now = OffsetDateTime::now_utc();
        params.not_before = now + from;
        params.not_after = now + to;
        params.subject_alt_names = sans
            .iter()
            .map(|s| match s.parse::<IpAddr>() {
                Ok(ip) => Ok(SanType::IpAddress(ip)),
                Err(_) => Ok(SanType::DnsName((*s).try_into()?)),
            })
            .collect::<Result<_, rcgen::Error>>()?;
        apply_usage(&mut params, usage);
        let cert = params.signed_by(&key, &self.issuer)?;
        let issued = Issued { cert_der: cert.der().to_vec(), key_pkcs8: key.serialize_der() };
        self.record(&issued.cert_der);
        Ok(issued)
    }

    /// Issues a certificate for a PKCS#10 request (DER) after checking its
    /// signature; the subject comes from the request, the validity (a year) and
    /// key usage from `usage`.
    pub fn sign_csr(&self, csr_der: &[u8], usage: Usage) -> Result<Vec<u8>, PkiError> {
        let der = rustls_pki_types::CertificateSigningRequestDer::from(csr_der.to_vec());
        let mut req = rcgen::CertificateSigningRequestParams::from_der(&der)?;
        let now = OffsetDateTime::now_utc();
        req.params.not_before = now - Duration::hours(1);
        req.params.not_after = now + Duration::days(365);
        req.params.is_ca = IsCa::ExplicitNoCa;
        apply_usage(&mut req.params, usage);
        let cert = req.signed_by(&self.issuer)?;
        let der = cert.der().to_vec();
        self.record(&der);
        Ok(der)
    }

    fn record(&self, cert_der: &[u8]) {
        if let Ok(serial) = ocsp::serial_hex(cert_der) {
            self.issued.lock().unwrap_or_else(|p| p.into_inner()).insert(serial, None);
        }
    }

    /// Revokes a certificate this CA issued (now). Returns false for unknown ones.
    pub fn revoke(&self, cert_der: &[u8]) -> bool {
        let Ok(serial) = ocsp::serial_hex(cert_der) else { return false };
        let mut issued = self.issued.lock().unwrap_or_else(|p| p.into_inner());
        match issued.get_mut(&serial) {
            Some(state) => {
                state.get_or_insert(OffsetDateTime::now_utc());
                true
            }
            None => false,
        }
    }

    /// The status the CA's OCSP responder gives for a serial (hex, uppercase).
    pub fn status(&self, serial_hex: &str) -> ocsp::Status {
        match self.issued.lock().unwrap_or_else(|p| p.into_inner()).get(serial_hex) {
            Some(None) => ocsp::Status::Good,
            Some(Some(at)) => ocsp::Status::Revoked { at: *at },
            None => ocsp::Status::Unknown,
        }
    }

    /// Answers an OCSP request (DER) as this CA's responder, at `now`.
    pub fn ocsp_respond(&self, request_der: &[u8], now: OffsetDateTime) -> Vec<u8> {
        ocsp::respond(request_der, &self.cert_der, self, &|s| self.status(s), now, std::time::Duration::from_secs(3600))
    }
}

/// A development time-stamping authority: a TSA certificate from a [`DevCa`]
/// and its key. Demo and tests only.
pub struct DevTsa {
    cert_der: Vec<u8>,
    key: EcdsaKeyPair,
    rng: SystemRandom,
    serial: std::sync::atomic::AtomicU64,
}

impl DevTsa {
    /// A TSA named `common_name` with a certificate from `ca`.
    pub fn new(ca: &DevCa, common_name: &str) -> Result<Self, PkiError> {
        let issued = ca.issue(common_name, "Musubi dev TSA", Usage::TimeStamping, &[])?;
        Self::from_issued(issued)
    }

    /// A TSA using an issued certificate and its ECDSA P-256 key.
    pub fn from_issued(issued: Issued) -> Result<Self, PkiError> {
        let rng = SystemRandom::new();
        let key = EcdsaKeyPair::from_pkcs8(&ring::signature::ECDSA_P256_SHA256_ASN1_SIGNING, &issued.key_pkcs8, &rng)
            .map_err(|e| PkiError::BadKey(e.to_string()))?;
        Ok(Self { cert_der: issued.cert_der, key, rng, serial: std::sync::atomic::AtomicU64::new(1) })
    }

    /// The TSA certificate, DER.
    pub fn cert_der(&self) -> &[u8] {
        &self.cert_der
    }

    /// Answers a TimeStampReq (DER) at `now`.
    pub fn respond(&self, request_der: &[u8], now: OffsetDateTime) -> Vec<u8> {
        let serial = self.serial.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        tsp::respond(request_der, self, now, serial)
    }
}

impl tsp::TsaKey for DevTsa {
    fn certificate_der(&self) -> &[u8] {
        &self.cert_der
    }
    fn sign_ecdsa_sha256(&self, data: &[u8]) -> Result<Vec<u8>, String> {
        self.key.sign(&self.rng, data).map(|s| s.as_ref().to_vec()).map_err(|e| e.to_string())
    }
}

impl ocsp::ResponderKey for DevCa {
    fn certificate_der(&self) -> &[u8] {
        &self.cert_der
    }
    fn sign_ecdsa_sha256(&self, data: &[u8]) -> Result<Vec<u8>, String> {
        self.ocsp_key.sign(&self.rng, data).map(|s| s.as_ref().to_vec()).map_err(|e| e.to_string())
    }
}

/// Parameters of a dev CA certificate valid for `days` from an hour ago.
fn ca_params(common_name: &str, days: i64) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name = dn(common_name, "Musubi dev CA");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    let now = OffsetDateTime::now_utc();
    params.not_before = now - Duration::hours(1);
    params.not_after = now + Duration::days(days);
    params
}

fn apply_usage(params: &mut CertificateParams, usage: Usage) {
    match usage {
        Usage::Auth | Usage::Tls => {
            params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyAgreement];
            params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth];
        }
        Usage::Sign => {
            params.key_usages = vec![KeyUsagePurpose::ContentCommitment];
        }
        Usage::OcspSigning => {
            params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
            params.extended_key_usages = vec![ExtendedKeyUsagePurpose::OcspSigning];
        }
        Usage::TimeStamping => {
            params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::ContentCommitment];
            // extKeyUsage = SEQUENCE { id-kp-timeStamping }, marked critical.
            let eku = [0x30, 0x0a, 0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x08];
            let mut ext = rcgen::CustomExtension::from_oid_content(&[2, 5, 29, 37], eku.to_vec());
            ext.set_criticality(true);
            params.custom_extensions.push(ext);
        }
    }
}

fn dn(cn: &str, org: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CountryName, "JP");
    dn.push(DnType::OrganizationName, org);
    dn.push(DnType::CommonName, cn);
    dn
}

enum KeyKind {
    Ecdsa(EcdsaKeyPair),
    Rsa(RsaKeyPair),
}

/// A software signing key with its certificate.
pub struct SigningKey {
    key: KeyKind,
    cert_der: Vec<u8>,
    rng: SystemRandom,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningKey(<redacted>)")
    }
}

impl SigningKey {
    /// Loads a PKCS#8 ECDSA P-256 or RSA key for `cert_der`.
    pub fn from_pkcs8(key_pkcs8: &[u8], cert_der: Vec<u8>) -> Result<Self, PkiError> {
        let rng = SystemRandom::new();
        let key = match EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, key_pkcs8, &rng) {
            Ok(k) => KeyKind::Ecdsa(k),
            Err(e) => {
                KeyKind::Rsa(RsaKeyPair::from_pkcs8(key_pkcs8).map_err(|r| PkiError::BadKey(format!("{e}; {r}")))?)
            }
        };
        Ok(Self { key, cert_der, rng })
    }
}

impl xades::Signer for SigningKey {
    fn algorithm(&self) -> &'static str {
        match self.key {
            KeyKind::Ecdsa(_) => xades::ECDSA_SHA256,
            KeyKind::Rsa(_) => xades::RSA_SHA512,
        }
    }
    fn sign(&self, data: &[u8]) -> Result<Vec<u8>, String> {
        match &self.key {
            KeyKind::Ecdsa(k) => k.sign(&self.rng, data).map(|s| s.as_ref().to_vec()).map_err(|e| e.to_string()),
            KeyKind::Rsa(k) => {
                let mut sig = vec![0; k.public().modulus_len()];
                k.sign(&RSA_PKCS1_SHA512, &self.rng, data, &mut sig).map_err(|e| e.to_string())?;
                Ok(sig)
            }
        }
    }
    fn certificate_der(&self) -> &[u8] {
        &self.cert_der
    }
}

/// SHA-256 of a certificate's DER, lowercase hex: how Musubi's trust file
/// names authentication certificates.
pub fn cert_hash(cert_der: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, cert_der).as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// Checks that `cert_der` was signed by `ca_der` and is valid at `now`.
pub fn check_issued_by(cert_der: &[u8], ca_der: &[u8], now: OffsetDateTime) -> Result<(), PkiError> {
    let (_, cert) =
        x509_parser::parse_x509_certificate(cert_der).map_err(|e| PkiError::BadCertificate(e.to_string()))?;
    let (_, ca) = x509_parser::parse_x509_certificate(ca_der).map_err(|e| PkiError::BadCertificate(e.to_string()))?;
    let subject = cert.subject().to_string();
    if cert.issuer() != ca.subject() {
        return Err(PkiError::Untrusted { subject, reason: format!("issuer is {}", cert.issuer()) });
    }
    memo::verified(&[b"x509", cert_der, ca.public_key().raw], || {
        cert.verify_signature(Some(ca.public_key()))
            .map_err(|e| PkiError::Untrusted { subject: subject.clone(), reason: format!("signature: {e}") })
    })?;
    let t = x509_parser::time::ASN1Time::from_timestamp(now.unix_timestamp())
        .map_err(|e| PkiError::BadCertificate(e.to_string()))?;
    let v = cert.validity();
    if t < v.not_before || t > v.not_after {
        return Err(PkiError::Expired {
            subject,
            at: t.to_string(),
            not_before: v.not_before.to_string(),
            not_after: v.not_after.to_string(),
        });
    }
    Ok(())
}

/// Longest certificate path [`build_chain`] follows.
pub const MAX_CHAIN_LEN: usize = 8;

/// Builds the path from `cert_der` through `intermediates` to one of the
/// `anchors` (approved CAs), checking each signature and validity at `now`.
/// Returns the path, leaf first, anchor last.
pub fn build_chain(
    cert_der: &[u8],
    intermediates: &[&[u8]],
    anchors: &[&[u8]],
    now: OffsetDateTime,
) -> Result<Vec<Vec<u8>>, PkiError> {
    let mut chain = vec![cert_der.to_vec()];
    let mut current = cert_der.to_vec();
    for _ in 0..MAX_CHAIN_LEN {
        if let Some(anchor) = anchors.iter().find(|a| check_issued_by(&current, a, now).is_ok()) {
            check_valid_at(anchor, now)?;
            chain.push(anchor.to_vec());
            return Ok(chain);
        }
        let next = intermediates
            .iter()
            .find(|i| {
                is_ca(i) && !chain.iter().any(|c| c.as_slice() == **i) && check_issued_by(&current, i, now).is_ok()
            })
            .ok_or_else(|| {
                let subject = x509_parser::parse_x509_certificate(&current)
                    .map(|(_, c)| c.subject().to_string())
                    .unwrap_or_default();
                PkiError::Untrusted {
                    subject,
                    reason: "no valid path to an approved CA; import the intermediate CA certificates".into(),
                }
            })?;
        chain.push(next.to_vec());
        current = next.to_vec();
    }
    Err(PkiError::Untrusted { subject: String::new(), reason: format!("certificate path longer than {MAX_CHAIN_LEN}") })
}

fn is_ca(der: &[u8]) -> bool {
    x509_parser::parse_x509_certificate(der)
        .ok()
        .and_then(|(_, c)| c.basic_constraints().ok().flatten().map(|b| b.value.ca))
        .unwrap_or(false)
}

fn check_valid_at(der: &[u8], now: OffsetDateTime) -> Result<(), PkiError> {
    let (_, c) = x509_parser::parse_x509_certificate(der).map_err(|e| PkiError::BadCertificate(e.to_string()))?;
    let t = x509_parser::time::ASN1Time::from_timestamp(now.unix_timestamp())
        .map_err(|e| PkiError::BadCertificate(e.to_string()))?;
    let v = c.validity();
    if t < v.not_before || t > v.not_after {
        return Err(PkiError::Expired {
            subject: c.subject().to_string(),
            at: t.to_string(),
            not_before: v.not_before.to_string(),
            not_after: v.not_after.to_string(),
        });
    }
    Ok(())
}

/// A warning when `cert_der` expires within `within` of `now` (or has expired).
pub fn expiry_warning(cert_der: &[u8], now: OffsetDateTime, within: Duration) -> Option<String> {
    let (_, c) = x509_parser::parse_x509_certificate(cert_der).ok()?;
    let not_after = OffsetDateTime::from_unix_timestamp(c.validity().not_after.timestamp()).ok()?;
    if not_after < now {
        Some(format!("certificate {} expired on {not_after}; request a new one", c.subject()))
    } else if not_after - now < within {
        let days = (not_after - now).whole_days();
        Some(format!("certificate {} expires on {not_after} (in {days} days); request a new one", c.subject()))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use musubi_protocol::xades::{DataPart, Signer as _};

    fn key_for(ca: &DevCa) -> SigningKey {
        let issued = ca.issue("member", "Test Org", Usage::Sign, &[]).unwrap();
        SigningKey::from_pkcs8(&issued.key_pkcs8, issued.cert_der).unwrap()
    }

    #[test]
    fn signs_and_verifies_xades_over_raw_parts() {
        let ca = DevCa::new("Test CA").unwrap();
        let key = key_for(&ca);
        let msg = b"<Envelope>\r\n a\xc3\xa4 </Envelope>";
        let att = b"attachment bytes";
        let parts = [DataPart { uri: "/message.xml", bytes: msg }, DataPart { uri: "/attachment1", bytes: att }];
        let sig = xades::sign(&key, &parts, "2026-11-24T10:00:00Z").unwrap();
        let v = xades::verify(&sig, &parts).unwrap();
        assert_eq!(v.certificate_der, key.certificate_der());
        assert_eq!(v.signing_time, "2026-11-24T10:00:00Z");
        assert!(v.ocsp_responses.is_empty());
        let with_ocsp = xades::sign_with_ocsp(&key, &parts, "2026-11-24T10:00:00Z", Some(b"ocsp der")).unwrap();
        assert_eq!(xades::verify(&with_ocsp, &parts).unwrap().ocsp_responses, [b"ocsp der".to_vec()]);
        check_issued_by(&v.certificate_der, ca.cert_der(), OffsetDateTime::now_utc()).unwrap();
    }

    #[test]
    fn parts_known_by_digest_verify_like_their_bytes() {
        let ca = DevCa::new("Test CA").unwrap();
        let key = key_for(&ca);
        let (msg, att) = (b"<m/>".as_slice(), b"streamed attachment".as_slice());
        let parts = [DataPart { uri: "/message.xml", bytes: msg }, DataPart { uri: "/attachment1", bytes: att }];
        let sha = |b: &[u8]| ring::digest::digest(&ring::digest::SHA512, b).as_ref().to_vec();
        let (dm, da, other) = (sha(msg), sha(att), sha(b"other"));
        let good = [
            xades::PartDigest { uri: "/message.xml", method: xades::SHA512, value: &dm },
            xades::PartDigest { uri: "/attachment1", method: xades::SHA512, value: &da },
        ];
        let sig = xades::sign(&key, &parts, "2026-11-24T10:00:00Z").unwrap();
        assert_eq!(xades::verify_parts(&sig, &[], &good).unwrap().certificate_der, key.certificate_der());
        let changed = [good[0], xades::PartDigest { value: &other, ..good[1] }];
        assert_eq!(
            xades::verify_parts(&sig, &[], &changed).unwrap_err().code,
            musubi_protocol::Code::INVALID_SIGNATURE_VALUE
        );
        // A digest of another method than the signature's cannot stand in for the part.
        let sha256 = "http://www.w3.org/2001/04/xmlenc#sha256";
        let other_method = [good[0], xades::PartDigest { method: sha256, ..good[1] }];
        assert_eq!(
            xades::verify_parts(&sig, &[], &other_method).unwrap_err().code,
            musubi_protocol::Code::INVALID_SIGNATURE_VALUE
        );
        // The same through a batch's hash chain.
        let shares = xades::sign_batch(&key, &[parts.to_vec(), parts.to_vec()], "2026-11-24T10:00:00Z", None).unwrap();
        let (r, c) = (&shares[0].hash_chain_result, &shares[0].hash_chain);
        xades::verify_batch_chain_parts(r, c, &[], &good).unwrap();
        assert!(xades::verify_batch_chain_parts(r, c, &[], &changed).is_err());
        assert_eq!(
            xades::verify_batch_chain_parts(r, c, &[], &other_method).unwrap_err().code,
            musubi_protocol::Code::INVALID_HASH_CHAIN_REF
        );
    }

    #[test]
    fn batch_signatures_cover_each_message_through_its_hash_chain() {
        let ca = DevCa::new("Test CA").unwrap();
        let key = key_for(&ca);
        let bodies: Vec<Vec<u8>> = (0..5).map(|i| format!("<m>{i}</m>").into_bytes()).collect();
        let messages: Vec<Vec<DataPart<'_>>> = bodies
            .iter()
            .map(|b| vec![DataPart { uri: "/message.xml", bytes: b }, DataPart { uri: "/attachment1", bytes: b"att" }])
            .collect();
        let shares = xades::sign_batch(&key, &messages, "2026-11-24T10:00:00Z", Some(b"ocsp")).unwrap();
        assert_eq!(shares.len(), 5);
        assert!(shares.iter().all(|s| s.signature == shares[0].signature), "one signature for the batch");
        for (share, parts) in shares.iter().zip(&messages) {
            let v = xades::verify_batch(&share.signature, &share.hash_chain_result, &share.hash_chain, parts).unwrap();
            assert_eq!(v.certificate_der, key.certificate_der());
            assert_eq!(v.ocsp_responses, [b"ocsp".to_vec()]);
        }
        // A message does not verify through another message's chain.
        let wrong = xades::verify_batch(
            &shares[0].signature,
            &shares[0].hash_chain_result,
            &shares[1].hash_chain,
            &messages[0],
        );
        assert_eq!(wrong.unwrap_err().code, musubi_protocol::Code::INVALID_HASH_CHAIN_REF);
    }

    #[test]
    fn rejects_changed_message_and_changed_signed_properties() {
        let ca = DevCa::new("Test CA").unwrap();
        let key = key_for(&ca);
        let parts = [DataPart { uri: "/message.xml", bytes: b"<a/>" }];
        let sig = xades::sign(&key, &parts, "2026-11-24T10:00:00Z").unwrap();
        let other = [DataPart { uri: "/message.xml", bytes: b"<b/>" }];
        assert_eq!(xades::verify(&sig, &other).unwrap_err().code, musubi_protocol::Code::INVALID_SIGNATURE_VALUE);
        let tampered = String::from_utf8(sig.clone()).unwrap().replace("2026-11-24T10:00:00Z", "2020-01-01T00:00:00Z");
        assert_eq!(
            xades::verify(tampered.as_bytes(), &parts).unwrap_err().code,
            musubi_protocol::Code::INVALID_SIGNATURE_VALUE
        );
        // A signature value from another key does not verify.
        let other_key = key_for(&ca);
        let sig2 = String::from_utf8(xades::sign(&other_key, &parts, "2026-11-24T10:00:00Z").unwrap()).unwrap();
        let value = |s: &str| s.split("signature-value\">").nth(1).unwrap().split('<').next().unwrap().to_owned();
        let original = String::from_utf8(sig).unwrap();
        let swapped = original.replace(&value(&original), &value(&sig2));
        assert_ne!(swapped, original);
        assert_eq!(
            xades::verify(swapped.as_bytes(), &parts).unwrap_err().code,
            musubi_protocol::Code::INVALID_SIGNATURE_VALUE
        );
    }

    #[test]
    fn ocsp_round_trip_good_revoked_unknown_stale_and_wrong_certificate() {
        use std::time::Duration as StdDuration;
        let ca = DevCa::new("OCSP CA").unwrap();
        let leaf = ca.issue("leaf", "Org", Usage::Auth, &[]).unwrap();
        let other = ca.issue("other", "Org", Usage::Auth, &[]).unwrap();
        let now = OffsetDateTime::now_utc();
        let fresh = StdDuration::from_secs(3600);
        let req = ocsp::build_request(&leaf.cert_der, ca.cert_der()).unwrap();
        let resp = ca.ocsp_respond(&req, now);
        let v = ocsp::verify_response(&resp, &leaf.cert_der, ca.cert_der(), now, fresh).unwrap();
        assert_eq!(v.status, ocsp::Status::Good);
        // The same answer is stale two hours later, and says nothing about another certificate.
        let later = now + Duration::hours(2);
        assert!(matches!(
            ocsp::verify_response(&resp, &leaf.cert_der, ca.cert_der(), later, fresh),
            Err(ocsp::OcspError::Stale { .. })
        ));
        assert!(matches!(
            ocsp::verify_response(&resp, &other.cert_der, ca.cert_der(), now, fresh),
            Err(ocsp::OcspError::NoStatusForCertificate { .. })
        ));
        // Revoked.
        assert!(ca.revoke(&leaf.cert_der));
        let resp = ca.ocsp_respond(&req, now);
        let v = ocsp::verify_response(&resp, &leaf.cert_der, ca.cert_der(), now, fresh).unwrap();
        assert!(matches!(v.status, ocsp::Status::Revoked { .. }));
        // A certificate of another CA is unknown to this responder; and another CA
        // cannot answer for this one.
        let foreign_ca = DevCa::new("Foreign").unwrap();
        let foreign = foreign_ca.issue("f", "Org", Usage::Auth, &[]).unwrap();
        let freq = ocsp::build_request(&foreign.cert_der, foreign_ca.cert_der()).unwrap();
        let fresp = ca.ocsp_respond(&freq, now);
        assert!(matches!(
            ocsp::verify_response(&fresp, &foreign.cert_der, foreign_ca.cert_der(), now, fresh),
            Err(ocsp::OcspError::UnauthorizedResponder(_))
        ));
        let oresp = foreign_ca.ocsp_respond(&req, now);
        let v = ocsp::verify_response(&oresp, &leaf.cert_der, ca.cert_der(), now, fresh);
        assert!(matches!(v, Err(ocsp::OcspError::UnauthorizedResponder(_))), "{v:?}");
        // Garbage and truncation are typed errors.
        assert!(matches!(
            ocsp::verify_response(b"garbage", &leaf.cert_der, ca.cert_der(), now, fresh),
            Err(ocsp::OcspError::Malformed { .. })
        ));
        let resp = ca.ocsp_respond(&req, now);
        for cut in [1, resp.len() / 2, resp.len() - 1] {
            assert!(ocsp::verify_response(&resp[..cut], &leaf.cert_der, ca.cert_der(), now, fresh).is_err());
        }
        // A malformed request gets a malformedRequest answer.
        let bad = ca.ocsp_respond(b"\x30\x03\x02\x01", now);
        assert!(matches!(
            ocsp::verify_response(&bad, &leaf.cert_der, ca.cert_der(), now, fresh),
            Err(ocsp::OcspError::Unsuccessful(_))
        ));
    }

    #[test]
    fn time_stamps_round_trip_and_refuse_other_data_other_tsas_and_garbage() {
        let ca = DevCa::new("TSA CA").unwrap();
        let tsa = DevTsa::new(&ca, "Test TSA").unwrap();
        let data = b"hash chain result";
        let req = tsp::build_request(tsp::DigestAlg::Sha512, data).unwrap();
        let now = OffsetDateTime::now_utc();
        let token = tsp::parse_response(&tsa.respond(&req, now)).unwrap();
        let v = tsp::verify_token(&token, data, &[tsa.cert_der()]).unwrap();
        assert_eq!(v.gen_time.unix_timestamp(), now.unix_timestamp());
        assert_eq!(v.policy, tsp::DEV_POLICY.to_string());
        assert_eq!(tsp::verify_token(&token, b"other data", &[tsa.cert_der()]), Err(tsp::TspError::ImprintMismatch));
        let other = DevTsa::new(&ca, "Other TSA").unwrap();
        assert_eq!(tsp::verify_token(&token, data, &[other.cert_der()]), Err(tsp::TspError::UnknownTsa));
        // A flipped byte anywhere never panics and never changes what the token
        // vouches for (bytes outside the signed parts, such as the unsigned list
        // of digest algorithms, may change without effect).
        for i in 0..token.len() {
            let mut t = token.clone();
            t[i] ^= 0x01;
            if let Ok(w) = tsp::verify_token(&t, data, &[tsa.cert_der()]) {
                assert_eq!((w.gen_time, &w.serial, &w.policy), (v.gen_time, &v.serial, &v.policy), "byte {i}");
            }
        }
        assert!(tsp::parse_response(b"\x30\x03\x02\x01").is_err());
        assert!(matches!(
            tsp::parse_response(&tsa.respond(b"garbage", now)),
            Err(tsp::TspError::Rejected { status: 2 })
        ));
    }

    #[test]
    fn ber_indefinite_lengths_become_der() {
        // SEQUENCE (indefinite) { OCTET STRING (constructed, indefinite) { "ab", "c" } }
        let ber = [0x30, 0x80, 0x24, 0x80, 0x04, 0x02, b'a', b'b', 0x04, 0x01, b'c', 0x00, 0x00, 0x00, 0x00];
        assert_eq!(tsp::ber_to_der(&ber).unwrap(), [0x30, 0x05, 0x04, 0x03, b'a', b'b', b'c']);
        assert!(tsp::ber_to_der(&[0x30, 0x80, 0x04, 0x01]).is_err());
        assert!(tsp::ber_to_der(&[0x30, 0x02, 0x04]).is_err());
    }

    #[test]
    fn csr_flow_issues_certificates_that_map_back_to_the_member() {
        use musubi_protocol::{ClientId, SecurityServerId};
        let ca = DevCa::new("CSR CA").unwrap();
        let member = ClientId::member("JP", "GOV", "1001").unwrap();
        let key = rcgen::KeyPair::generate().unwrap().serialize_der();
        let csr = csr::create(&key, &csr::Subject::Sign(member.clone())).unwrap();
        let cert = ca.sign_csr(&csr, Usage::Sign).unwrap();
        csr::matches_key(&cert, &key).unwrap();
        check_issued_by(&cert, ca.cert_der(), OffsetDateTime::now_utc()).unwrap();
        assert_eq!(csr::member_of_signing_cert(&cert), Some(member));
        // The CA's OCSP responder knows certificates it issued from requests.
        assert_eq!(ca.status(&ocsp::serial_hex(&cert).unwrap()), ocsp::Status::Good);
        // A certificate is not imported for another key.
        let other = rcgen::KeyPair::generate().unwrap().serialize_der();
        assert!(csr::matches_key(&cert, &other).is_err());
        // A request whose signature was tampered with is refused.
        let mut bad = csr.clone();
        let last = bad.len() - 1;
        bad[last] ^= 0x01;
        assert!(ca.sign_csr(&bad, Usage::Sign).is_err());
        let server = SecurityServerId::new(ClientId::member("JP", "GOV", "1001").unwrap(), "ss1").unwrap();
        let auth = ca.sign_csr(&csr::create(&key, &csr::Subject::Auth(server)).unwrap(), Usage::Auth).unwrap();
        let (_, parsed) = x509_parser::parse_x509_certificate(&auth).unwrap();
        assert_eq!(parsed.subject().to_string(), "C=JP, O=1001, CN=ss1");
    }

    #[test]
    fn builds_chains_through_intermediates_and_warns_before_expiry() {
        let root = DevCa::new("Root").unwrap();
        let mid = root.new_intermediate("Intermediate").unwrap();
        let leaf = mid.issue("leaf", "Org", Usage::Auth, &[]).unwrap();
        let now = OffsetDateTime::now_utc();
        let chain = build_chain(&leaf.cert_der, &[mid.cert_der()], &[root.cert_der()], now).unwrap();
        assert_eq!(chain.len(), 3);
        assert_eq!(chain[2], root.cert_der());
        // Without the intermediate, or under another root, there is no path.
        assert!(build_chain(&leaf.cert_der, &[], &[root.cert_der()], now).is_err());
        let other = DevCa::new("Other").unwrap();
        assert!(build_chain(&leaf.cert_der, &[mid.cert_der()], &[other.cert_der()], now).is_err());
        // A leaf certificate cannot stand in for an intermediate CA.
        let fake = mid.issue("Intermediate", "Musubi dev CA", Usage::Auth, &[]).unwrap();
        assert!(build_chain(&leaf.cert_der, &[&fake.cert_der], &[root.cert_der()], now).is_err());
        // Expiry warnings.
        assert!(expiry_warning(&leaf.cert_der, now, Duration::days(30)).is_none());
        let soon = expiry_warning(&leaf.cert_der, now, Duration::days(400)).unwrap();
        assert!(soon.contains("expires on"), "{soon}");
        let old =
            mid.issue_with_validity("old", "Org", Usage::Auth, &[], Duration::days(-10), Duration::days(-1)).unwrap();
        assert!(expiry_warning(&old.cert_der, now, Duration::days(30)).unwrap().contains("expired"));
        assert!(build_chain(&old.cert_der, &[mid.cert_der()], &[root.cert_der()], now).is_err());
    }

    #[test]
    fn refuses_certificates_of_other_cas_and_expired_ones() {
        let ca = DevCa::new("Test CA").unwrap();
        let other = DevCa::new("Other CA").unwrap();
        let issued = other.issue("x", "Org", Usage::Auth, &["127.0.0.2"]).unwrap();
        assert!(check_issued_by(&issued.cert_der, ca.cert_der(), OffsetDateTime::now_utc()).is_err());
        let old =
            ca.issue_with_validity("x", "Org", Usage::Auth, &[], Duration::days(-10), Duration::days(-1)).unwrap();
        assert!(matches!(
            check_issued_by(&old.cert_der, ca.cert_der(), OffsetDateTime::now_utc()),
            Err(PkiError::Expired { .. })
        ));
    }
}
