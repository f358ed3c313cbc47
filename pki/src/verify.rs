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
    let cas: Vec<&[u8]> = conf.cas.iter().map(Vec::as_slice).collect();
    let chain = crate::build_chain(&verified.certificate_der, &[], &cas, at)
        .map_err(|e| fail("cert_validation", format!("signer certificate: {e}")))?;
    let issuer = chain.get(1).ok_or_else(|| fail("cert_validation", "no issuer for the signer certificate"))?;
    let responders: Vec<&[u8]> = conf.ocsp_responders.iter().map(Vec::as_slice).collect();
    let mut last = "the signature carries no OCSP response".to_owned();
    let good = verified.ocsp_responses.iter().any(|r| {
        match ocsp::verify_response_with_responders(
            r,
            &verified.certificate_der,
            issuer,
            &responders,
            at,
            conf.ocsp_freshness,
        ) {
            Ok(v) if v.status == ocsp::Status::Good => true,
            Ok(v) => {
                last = format!("the signer certificate is {:?}", v.status);
                false
            }
            Err(e) => {
                last = e.to_string();
                false
            }
        }
    });
    if !good {
        return Err(fail("cert_validation", last));
    }
    Ok(VerifiedContainer { signer_cert: verified.certificate_der, time_stamped_at: at })
}
