//! The transport message between security servers (PR-MESSTRANSP §3.1): a
//! `multipart/mixed` body with optional `application/ocsp-response` parts, the
//! SOAP part, an optional nested `multipart/mixed` of attachments, and the
//! `signature/bdoc-1.0/ts` part last (or, in a response, a `text/xml` SOAP
//! fault when signing failed after the message was sent).
//!
//! The original `Content-Type` of the client's package travels in the
//! `x-original-content-type` HTTP header.

use crate::fault::Code;
use crate::mime::{self, ContentType, MultipartLimits, MultipartWriter, Part};

/// Content type of the signature part.
pub const SIGNATURE_CT: &str = "signature/bdoc-1.0/ts";
/// HTTP header carrying the client's original content type.
pub const ORIGINAL_CONTENT_TYPE: &str = "x-original-content-type";
/// HTTP header carrying the client's original SOAPAction.
pub const ORIGINAL_SOAP_ACTION: &str = "x-original-soapaction";
/// HTTP header naming the hash algorithm.
pub const HASH_ALGORITHM: &str = "x-hash-algorithm";

/// A decoded transport message.
#[derive(Debug, Clone)]
pub struct TransportMessage<'a> {
    /// DER OCSP responses sent with the message.
    pub ocsp: Vec<&'a [u8]>,
    /// MIME headers of the SOAP part.
    pub soap_headers: Vec<(&'a str, &'a str)>,
    /// The SOAP part's bytes.
    pub soap: &'a [u8],
    /// Attachments with their MIME headers.
    pub attachments: Vec<Part<'a>>,
    /// The signature XML, if present.
    pub signature: Option<&'a [u8]>,
    /// For a batch signature: the hash chain result and this message's hash chain.
    pub hash_chain: Option<(&'a [u8], &'a [u8])>,
    /// A SOAP fault sent in place of the signature.
    pub fault: Option<&'a [u8]>,
}

/// Why a transport message was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct TransportError {
    /// X-Road error code.
    pub code: Code,
    /// What was wrong.
    pub message: String,
}

fn terr(code: Code, message: impl Into<String>) -> TransportError {
    TransportError { code, message: message.into() }
}

/// Content type of a batch signature's hash chain result part.
pub const HASH_CHAIN_RESULT_CT: &str = "application/hash-chain-result";
/// Content type of a batch signature's hash chain part.
pub const HASH_CHAIN_CT: &str = "application/hash-chain";

/// Encodes a transport message; returns the body and its content type.
pub fn encode(
    boundary: &str,
    ocsp: &[&[u8]],
    soap_headers: &[(&str, &str)],
    soap: &[u8],
    attachments: &[Part<'_>],
    signature: &[u8],
) -> (Vec<u8>, String) {
    encode_signed(boundary, ocsp, soap_headers, soap, attachments, signature, None)
}

/// Like [`encode`]; with a batch signature, `batch` is (hash chain result,
/// hash chain), sent before the signature as PR-MESSTRANSP §3.1 lists them.
pub fn encode_signed(
    boundary: &str,
    ocsp: &[&[u8]],
    soap_headers: &[(&str, &str)],
    soap: &[u8],
    attachments: &[Part<'_>],
    signature: &[u8],
    batch: Option<(&[u8], &[u8])>,
) -> (Vec<u8>, String) {
    let mut w = MultipartWriter::new(boundary);
    for o in ocsp {
        w.part(&[("Content-Type", "application/ocsp-response")], o);
    }
    if soap_headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("content-type")) {
        w.part(soap_headers, soap);
    } else {
        w.part(&[("Content-Type", "text/xml; charset=UTF-8")], soap);
    }
    if !attachments.is_empty() {
        let inner_boundary = format!("att-{boundary}");
        let mut inner = MultipartWriter::new(inner_boundary.clone());
        for a in attachments {
            inner.part(&a.headers, a.body);
        }
        let ct = format!("multipart/mixed; boundary={inner_boundary}");
        w.part(&[("Content-Type", &ct)], &inner.finish());
    }
    if let Some((result, chain)) = batch {
        w.part(&[("Content-Type", HASH_CHAIN_RESULT_CT)], result);
        w.part(&[("Content-Type", HASH_CHAIN_CT)], chain);
    }
    w.part(&[("Content-Type", SIGNATURE_CT)], signature);
    (w.finish(), format!("multipart/mixed; charset=UTF-8; boundary={boundary}"))
}

/// Decodes a transport message of content type `content_type`.
pub fn decode<'a>(content_type: &str, body: &'a [u8]) -> Result<TransportMessage<'a>, TransportError> {
    let ct = ContentType::parse(content_type).map_err(|e| terr(Code::INVALID_CONTENT_TYPE, e.to_string()))?;
    if ct.mime == "text/xml" {
        return Err(terr(Code::INVALID_MESSAGE, "a text/xml body is not a transport message"));
    }
    if ct.mime != "multipart/mixed" {
        return Err(terr(
            Code::INVALID_CONTENT_TYPE,
            format!("invalid content type {:?}; a transport message is multipart/mixed", ct.mime),
        ));
    }
    let boundary = ct.boundary().map_err(|e| terr(Code::INVALID_CONTENT_TYPE, e.to_string()))?;
    let mp = mime::parse_multipart(body, boundary, &MultipartLimits::default()).map_err(|e| match e {
        mime::MimeError::BoundaryNotFound(_) => terr(Code::MISSING_SOAP, "the transport message holds no SOAP part"),
        other => terr(Code::INVALID_MESSAGE, other.to_string()),
    })?;
    if mp.has_trailing_data() {
        return Err(terr(Code::INVALID_MESSAGE, "data after the last part of the transport message"));
    }
    let mut msg = TransportMessage {
        ocsp: Vec::new(),
        soap_headers: Vec::new(),
        soap: &[],
        attachments: Vec::new(),
        signature: None,
        hash_chain: None,
        fault: None,
    };
    let mut have_soap = false;
    let mut result: Option<&[u8]> = None;
    let n = mp.parts.len();
    for (i, part) in mp.parts.into_iter().enumerate() {
        let pct = part.content_type().map_err(|e| terr(Code::INVALID_CONTENT_TYPE, e.to_string()))?;
        if msg.signature.is_some() || msg.fault.is_some() {
            return Err(terr(Code::INVALID_MESSAGE, "parts after the signature"));
        }
        match pct.mime.as_str() {
            "application/ocsp-response" if !have_soap => msg.ocsp.push(part.body),
            "text/xml" | "application/xop+xml" if !have_soap => {
                if part.body.iter().all(u8::is_ascii_whitespace) {
                    return Err(terr(Code::INVALID_SOAP, "the SOAP part is empty"));
                }
                have_soap = true;
                msg.soap = part.body;
                msg.soap_headers = part.headers;
            }
            "text/xml" if i + 1 == n => msg.fault = Some(part.body),
            "multipart/mixed" if have_soap && msg.attachments.is_empty() => {
                let b = pct.boundary().map_err(|e| terr(Code::INVALID_CONTENT_TYPE, e.to_string()))?;
                let inner = mime::parse_multipart(part.body, b, &MultipartLimits::default())
                    .map_err(|e| terr(Code::INVALID_MESSAGE, format!("attachments: {e}")))?;
                msg.attachments = inner.parts;
            }
            HASH_CHAIN_RESULT_CT if have_soap && result.is_none() => result = Some(part.body),
            HASH_CHAIN_CT if result.is_some() && msg.hash_chain.is_none() => {
                msg.hash_chain = result.map(|r| (r, part.body));
            }
            SIGNATURE_CT if have_soap => {
                if result.is_some() && msg.hash_chain.is_none() {
                    return Err(terr(Code::MALFORMED_HASH_CHAIN, "a hash chain result without its hash chain"));
                }
                msg.signature = Some(part.body);
            }
            other => {
                return Err(terr(
                    Code::INVALID_CONTENT_TYPE,
                    format!("unexpected part of content type {other:?} in the transport message"),
                ));
            }
        }
    }
    if !have_soap {
        return Err(terr(Code::MISSING_SOAP, "the transport message holds no SOAP part"));
    }
    if msg.signature.is_none() && msg.fault.is_none() {
        return Err(terr(Code::MISSING_SIGNATURE, "the transport message is not signed"));
    }
    Ok(msg)
}

/// The URIs under which the signature covers the SOAP part and attachments.
pub fn part_uris(attachments: usize) -> Vec<String> {
    std::iter::once("/message.xml".to_owned()).chain((1..=attachments).map(|i| format!("/attachment{i}"))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_message_with_attachments_and_ocsp() {
        let att = [
            Part {
                headers: vec![("Content-Type", "application/octet-stream"), ("Client-Header", "FooBar")],
                body: b"\x00\x01",
            },
            Part { headers: vec![("Content-Type", "text/plain")], body: b"two" },
        ];
        let (body, ct) = encode("b1", &[b"ocsp-der"], &[], b"<soap/>", &att, b"<sig/>");
        let m = decode(&ct, &body).unwrap();
        assert_eq!(m.ocsp, [b"ocsp-der".as_slice()]);
        assert_eq!(m.soap, b"<soap/>");
        assert_eq!(m.attachments, att);
        assert_eq!(m.signature, Some(b"<sig/>".as_slice()));
        assert_eq!(part_uris(2), ["/message.xml", "/attachment1", "/attachment2"]);
        assert_eq!(m.hash_chain, None);
        let (body, ct) = encode_signed("b2", &[], &[], b"<soap/>", &[], b"<sig/>", Some((b"<r/>", b"<c/>")));
        let m = decode(&ct, &body).unwrap();
        assert_eq!(m.hash_chain, Some((b"<r/>".as_slice(), b"<c/>".as_slice())));
    }

    #[test]
    fn rejects_unsigned_and_plain_soap() {
        let mut w = MultipartWriter::new("b");
        w.part(&[("Content-Type", "text/xml")], b"<soap/>");
        let body = w.finish();
        assert_eq!(decode("multipart/mixed; boundary=b", &body).unwrap_err().code, Code::MISSING_SIGNATURE);
        assert_eq!(decode("text/xml", b"<soap/>").unwrap_err().code, Code::INVALID_MESSAGE);
        assert_eq!(decode("multipart/mixed", &body).unwrap_err().code, Code::INVALID_CONTENT_TYPE);
    }
}
