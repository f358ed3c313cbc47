//! The transport message between security servers (PR-MESSTRANSP §3.1): a
//! `multipart/mixed` body with optional `application/ocsp-response` parts, the
//! SOAP part, an optional nested `multipart/mixed` of attachments, and the
//! `signature/bdoc-1.0/ts` part last (or, in a response, a `text/xml` SOAP
//! fault when signing failed after the message was sent).
//!
//! The original `Content-Type` of the client's package travels in the
//! `x-original-content-type` HTTP header.

use crate::fault::Code;
use crate::mime::{self, ContentType, HeaderLines, MultipartLimits, MultipartWriter, Part, Piece};

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
    let attachments: Vec<(&HeaderLines<'_>, &[u8])> =
        attachments.iter().map(|a| (a.headers.as_slice(), a.body)).collect();
    let message = Message { ocsp, soap_headers, soap, attachments: &attachments, signature, batch };
    let (pieces, ct) = message.encode(boundary);
    (Piece::concat(pieces), ct)
}

/// A transport message to encode, its attachment bodies of any type `B`
/// (bytes in memory, or something the caller streams).
#[derive(Debug, Clone, Copy)]
pub struct Message<'a, B> {
    /// DER OCSP responses sent with the message.
    pub ocsp: &'a [&'a [u8]],
    /// MIME headers of the SOAP part.
    pub soap_headers: &'a [(&'a str, &'a str)],
    /// The SOAP part.
    pub soap: &'a [u8],
    /// Attachments: MIME headers and body.
    pub attachments: &'a [(&'a HeaderLines<'a>, B)],
    /// The signature XML.
    pub signature: &'a [u8],
    /// For a batch signature: (hash chain result, hash chain).
    pub batch: Option<(&'a [u8], &'a [u8])>,
}

impl<B: Clone> Message<'_, B> {
    /// The body as pieces (the attachment bodies left as they are, between
    /// encoded bytes) and its content type.
    pub fn encode(&self, boundary: &str) -> (Vec<Piece<B>>, String) {
        let mut w = MultipartWriter::new(boundary);
        for o in self.ocsp {
            w.part(&[("Content-Type", "application/ocsp-response")], o);
        }
        if self.soap_headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("content-type")) {
            w.part(self.soap_headers, self.soap);
        } else {
            w.part(&[("Content-Type", "text/xml; charset=UTF-8")], self.soap);
        }
        let mut pieces = Vec::new();
        if !self.attachments.is_empty() {
            let inner = format!("att-{boundary}");
            w.open(&[("Content-Type", &format!("multipart/mixed; boundary={inner}"))]);
            let mut iw = MultipartWriter::new(inner);
            for (headers, body) in self.attachments {
                iw.open(headers);
                w.append(&iw.take());
                pieces.push(Piece::Bytes(w.take()));
                pieces.push(Piece::Body(body.clone()));
                iw.close();
            }
            w.append(&iw.finish());
            w.close();
        }
        if let Some((result, chain)) = self.batch {
            w.part(&[("Content-Type", HASH_CHAIN_RESULT_CT)], result);
            w.part(&[("Content-Type", HASH_CHAIN_CT)], chain);
        }
        w.part(&[("Content-Type", SIGNATURE_CT)], self.signature);
        pieces.push(Piece::Bytes(w.finish()));
        (pieces, format!("multipart/mixed; charset=UTF-8; boundary={boundary}"))
    }
}

/// What a part of a transport message is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartKind {
    /// An OCSP response of the sender's certificates.
    Ocsp,
    /// The SOAP message.
    Soap,
    /// The nested `multipart/mixed` of attachments.
    Attachments,
    /// A batch signature's hash chain result.
    HashChainResult,
    /// A batch signature's hash chain.
    HashChain,
    /// The signature, last.
    Signature,
    /// A SOAP fault in place of the signature, last.
    Fault,
}

/// Tells each part of a transport message by its content type and place, as
/// the parts arrive; [`finish`](Self::finish) checks that nothing is missing.
#[derive(Debug, Default)]
pub struct PartOrder {
    soap: bool,
    attachments: bool,
    result: bool,
    chain: bool,
    last: bool,
}

impl PartOrder {
    /// The kind of the next part, whose content type is `ct`.
    pub fn next(&mut self, ct: &ContentType) -> Result<PartKind, TransportError> {
        if self.last {
            return Err(terr(Code::INVALID_MESSAGE, "parts after the signature"));
        }
        let kind = match ct.mime.as_str() {
            "application/ocsp-response" if !self.soap => PartKind::Ocsp,
            "text/xml" | "application/xop+xml" if !self.soap => PartKind::Soap,
            "text/xml" => PartKind::Fault,
            "multipart/mixed" if self.soap && !self.attachments && !self.result => PartKind::Attachments,
            HASH_CHAIN_RESULT_CT if self.soap && !self.result => PartKind::HashChainResult,
            HASH_CHAIN_CT if self.result && !self.chain => PartKind::HashChain,
            SIGNATURE_CT if self.soap => {
                if self.result && !self.chain {
                    return Err(terr(Code::MALFORMED_HASH_CHAIN, "a hash chain result without its hash chain"));
                }
                PartKind::Signature
            }
            other => {
                return Err(terr(
                    Code::INVALID_CONTENT_TYPE,
                    format!("unexpected part of content type {other:?} in the transport message"),
                ));
            }
        };
        match kind {
            PartKind::Soap => self.soap = true,
            PartKind::Attachments => self.attachments = true,
            PartKind::HashChainResult => self.result = true,
            PartKind::HashChain => self.chain = true,
            PartKind::Signature | PartKind::Fault => self.last = true,
            PartKind::Ocsp => {}
        }
        Ok(kind)
    }

    /// Checks, after the last part, that the message was complete.
    pub fn finish(&self) -> Result<(), TransportError> {
        if !self.soap {
            return Err(terr(Code::MISSING_SOAP, "the transport message holds no SOAP part"));
        }
        if !self.last {
            return Err(terr(Code::MISSING_SIGNATURE, "the transport message is not signed"));
        }
        Ok(())
    }
}

/// Checks the content type of a transport message and returns its boundary.
pub fn boundary_of(content_type: &str) -> Result<String, TransportError> {
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
    ct.boundary().map(str::to_owned).map_err(|e| terr(Code::INVALID_CONTENT_TYPE, e.to_string()))
}

/// Checks that the SOAP part is not empty.
pub fn check_soap_part(soap: &[u8]) -> Result<(), TransportError> {
    if soap.iter().all(u8::is_ascii_whitespace) {
        return Err(terr(Code::INVALID_SOAP, "the SOAP part is empty"));
    }
    Ok(())
}

/// Decodes a transport message of content type `content_type`.
pub fn decode<'a>(content_type: &str, body: &'a [u8]) -> Result<TransportMessage<'a>, TransportError> {
    let boundary = boundary_of(content_type)?;
    let mp = mime::parse_multipart(body, &boundary, &MultipartLimits::default()).map_err(|e| match e {
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
    let mut order = PartOrder::default();
    let mut result: &[u8] = &[];
    for part in mp.parts {
        let pct = part.content_type().map_err(|e| terr(Code::INVALID_CONTENT_TYPE, e.to_string()))?;
        match order.next(&pct)? {
            PartKind::Ocsp => msg.ocsp.push(part.body),
            PartKind::Soap => {
                check_soap_part(part.body)?;
                msg.soap = part.body;
                msg.soap_headers = part.headers;
            }
            PartKind::Attachments => {
                let b = pct.boundary().map_err(|e| terr(Code::INVALID_CONTENT_TYPE, e.to_string()))?;
                let inner = mime::parse_multipart(part.body, b, &MultipartLimits::default())
                    .map_err(|e| terr(Code::INVALID_MESSAGE, format!("attachments: {e}")))?;
                msg.attachments = inner.parts;
            }
            PartKind::HashChainResult => result = part.body,
            PartKind::HashChain => msg.hash_chain = Some((result, part.body)),
            PartKind::Signature => msg.signature = Some(part.body),
            PartKind::Fault => msg.fault = Some(part.body),
        }
    }
    order.finish()?;
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
