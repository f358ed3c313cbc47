//! Certificate signing requests and the certificate profile that ties a
//! certificate to an X-Road identity.
//!
//! Subjects follow X-Road's default (EJBCA) certificate profiles: a signing
//! certificate is `C=<instance>, O=<member class>, CN=<member code>`, which is
//! how a verifier finds the member a signature belongs to; an authentication
//! certificate is `C=<instance>, O=<owner's member code>, CN=<server code>`.

use musubi_protocol::{ClientId, SecurityServerId};
use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair};

use crate::PkiError;

/// What a certificate is requested for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    /// The authentication certificate of a security server.
    Auth(SecurityServerId),
    /// The signing certificate of a member.
    Sign(ClientId),
}

impl Subject {
    fn dn(&self) -> DistinguishedName {
        let mut dn = DistinguishedName::new();
        match self {
            Subject::Auth(server) => {
                dn.push(DnType::CountryName, server.owner().instance());
                dn.push(DnType::OrganizationName, server.owner().member_code());
                dn.push(DnType::CommonName, server.server_code());
            }
            Subject::Sign(member) => {
                dn.push(DnType::CountryName, member.instance());
                dn.push(DnType::OrganizationName, member.member_class());
                dn.push(DnType::CommonName, member.member_code());
            }
        }
        dn
    }
}

/// A PKCS#10 request (DER) for the key `key_pkcs8`, signed with that key.
pub fn create(key_pkcs8: &[u8], subject: &Subject) -> Result<Vec<u8>, PkiError> {
    let key = KeyPair::try_from(key_pkcs8).map_err(|e| PkiError::BadKey(e.to_string()))?;
    let mut params = CertificateParams::default();
    params.distinguished_name = subject.dn();
    Ok(params.serialize_request(&key)?.der().to_vec())
}

/// The member a signing certificate belongs to under the default profile, if
/// its subject has the profile's shape.
pub fn member_of_signing_cert(cert_der: &[u8]) -> Option<ClientId> {
    let (_, cert) = x509_parser::parse_x509_certificate(cert_der).ok()?;
    let subject = cert.subject();
    let one = |attr: Option<Result<&str, x509_parser::error::X509Error>>| attr.and_then(Result::ok).map(str::to_owned);
    let c = one(subject.iter_country().next().map(|a| a.as_str()))?;
    let o = one(subject.iter_organization().next().map(|a| a.as_str()))?;
    let cn = one(subject.iter_common_name().next().map(|a| a.as_str()))?;
    ClientId::member(&c, &o, &cn).ok()
}

/// Checks that `cert_der` certifies the public key of `key_pkcs8` (the import
/// step: a certificate is only accepted for a key we hold).
pub fn matches_key(cert_der: &[u8], key_pkcs8: &[u8]) -> Result<(), PkiError> {
    let key = KeyPair::try_from(key_pkcs8).map_err(|e| PkiError::BadKey(e.to_string()))?;
    let (_, cert) =
        x509_parser::parse_x509_certificate(cert_der).map_err(|e| PkiError::BadCertificate(e.to_string()))?;
    if cert.public_key().raw == rcgen::PublicKeyData::subject_public_key_info(&key).as_slice() {
        Ok(())
    } else {
        Err(PkiError::BadCertificate(format!(
            "certificate {} is for another key than the one it is imported for",
            cert.subject()
        )))
    }
}
