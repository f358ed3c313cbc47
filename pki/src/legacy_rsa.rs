//! RSA keys shorter than 2048 bits, which ring refuses: verification only, for
//! historic X-Road material (its 2012 test TSA has a 1024-bit key). Keys below
//! 1024 bits are refused outright. Nothing new is ever signed this way.

use const_oid::ObjectIdentifier;
use const_oid::db::rfc5912::{
    ID_SHA_256, ID_SHA_384, ID_SHA_512, RSA_ENCRYPTION, SHA_1_WITH_RSA_ENCRYPTION, SHA_256_WITH_RSA_ENCRYPTION,
    SHA_384_WITH_RSA_ENCRYPTION, SHA_512_WITH_RSA_ENCRYPTION,
};
use ring::digest;
use rsa::pkcs1::DecodeRsaPublicKey;
use rsa::traits::PublicKeyParts;
use x509_cert::Certificate;

const ID_SHA_1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.14.3.2.26");

fn public_key(cert: &Certificate) -> Option<rsa::RsaPublicKey> {
    let spki = &cert.tbs_certificate.subject_public_key_info;
    if spki.algorithm.oid != RSA_ENCRYPTION {
        return None;
    }
    rsa::RsaPublicKey::from_pkcs1_der(spki.subject_public_key.raw_bytes()).ok()
}

/// Whether the certificate holds an RSA key of 1024 to 2047 bits.
pub(crate) fn is_small_rsa(cert: &Certificate) -> bool {
    public_key(cert).is_some_and(|k| (1024..2048).contains(&(k.n().bits())))
}

/// PKCS#1 v1.5 verification with the digest named by the algorithms.
pub(crate) fn verify(
    cert: &Certificate,
    digest_oid: ObjectIdentifier,
    sig_oid: ObjectIdentifier,
    data: &[u8],
    signature: &[u8],
) -> Result<(), String> {
    let key = public_key(cert).ok_or("not an RSA key")?;
    let hash = match sig_oid {
        SHA_1_WITH_RSA_ENCRYPTION => ID_SHA_1,
        SHA_256_WITH_RSA_ENCRYPTION => ID_SHA_256,
        SHA_384_WITH_RSA_ENCRYPTION => ID_SHA_384,
        SHA_512_WITH_RSA_ENCRYPTION => ID_SHA_512,
        _ => digest_oid,
    };
    // DigestInfo prefixes of RFC 8017 §9.2, note 1.
    let (alg, prefix): (&digest::Algorithm, &[u8]) = match hash {
        ID_SHA_1 => (
            &digest::SHA1_FOR_LEGACY_USE_ONLY,
            &[0x30, 0x21, 0x30, 0x09, 0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02, 0x1a, 0x05, 0x00, 0x04, 0x14],
        ),
        ID_SHA_256 => (
            &digest::SHA256,
            &[
                0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00,
                0x04, 0x20,
            ],
        ),
        ID_SHA_384 => (
            &digest::SHA384,
            &[
                0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02, 0x05, 0x00,
                0x04, 0x30,
            ],
        ),
        ID_SHA_512 => (
            &digest::SHA512,
            &[
                0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03, 0x05, 0x00,
                0x04, 0x40,
            ],
        ),
        other => return Err(format!("digest {other} is not supported")),
    };
    let hashed = digest::digest(alg, data);
    let scheme = rsa::Pkcs1v15Sign { hash_len: Some(alg.output_len()), prefix: prefix.into() };
    key.verify(scheme, hashed.as_ref(), signature).map_err(|e| format!("RSA signature does not verify: {e}"))
}
