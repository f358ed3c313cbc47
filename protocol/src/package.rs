//! SOAP message packages as information systems send them (PR-MESS §3): a
//! plain `text/xml` SOAP message, or `multipart/related` with the SOAP part
//! first and attachments after it (SOAP with attachments, MTOM/XOP).

use crate::fault::Code;
use crate::mime::{self, ContentType, HeaderLines, MultipartLimits, MultipartWriter, Part, Piece};
use crate::soap::{self, Direction, Limits, Soap, SoapError};

/// A decoded message package. Attachments borrow from the input.
#[derive(Debug, Clone)]
pub struct Package<'a> {
    /// The HTTP `Content-Type` the package came with.
    pub content_type: String,
    /// The SOAP part's own MIME headers (for multipart packages).
    pub soap_headers: Vec<(&'a str, &'a str)>,
    /// The SOAP part's raw bytes.
    pub soap_bytes: &'a [u8],
    /// The parsed SOAP message or fault.
    pub soap: Soap,
    /// Attachment parts, MIME headers kept.
    pub attachments: Vec<Part<'a>>,
    /// Whether the package was multipart.
    pub multipart: bool,
}

fn ct_error(message: impl Into<String>) -> SoapError {
    SoapError { code: Code::INVALID_CONTENT_TYPE, message: message.into() }
}

/// Encodes a multipart package (`multipart/related` with boundary
/// `boundary`): the SOAP part, then the attachments, whose bodies are left in
/// place as pieces for the caller to stream.
pub fn encode_multipart<B: Clone>(
    boundary: &str,
    soap_headers: &[(&str, &str)],
    soap: &[u8],
    attachments: &[(&HeaderLines<'_>, B)],
) -> Vec<Piece<B>> {
    let mut w = MultipartWriter::new(boundary);
    w.part(soap_headers, soap);
    let mut pieces = Vec::new();
    for (headers, body) in attachments {
        w.open(headers);
        pieces.push(Piece::Bytes(w.take()));
        pieces.push(Piece::Body(body.clone()));
        w.close();
    }
    pieces.push(Piece::Bytes(w.finish()));
    pieces
}

/// The boundary of a multipart package, `None` for a plain SOAP message;
/// refuses content types a package cannot have.
pub fn boundary_of(content_type: &str) -> Result<Option<String>, SoapError> {
    let ct = ContentType::parse(content_type).map_err(|e| ct_error(e.to_string()))?;
    if !ct.is_multipart() {
        soap::check_content_type(content_type)?;
        return Ok(None);
    }
    if ct.mime != "multipart/related" {
        return Err(ct_error(format!(
            "invalid content type {:?}; a SOAP message package must be multipart/related",
            ct.mime
        )));
    }
    ct.boundary().map(|b| Some(b.to_owned())).map_err(|e| ct_error(e.to_string()))
}

/// Checks the headers of a multipart package's first part, the SOAP message.
pub fn check_soap_part(headers: &[(&str, &str)]) -> Result<(), SoapError> {
    let header = headers.iter().find(|(k, _)| k.eq_ignore_ascii_case("content-type")).map(|(_, v)| *v);
    let soap_ct = header.ok_or_else(|| ct_error("the SOAP part has no Content-Type header"))?;
    let parsed = ContentType::parse(soap_ct).map_err(|e| ct_error(e.to_string()))?;
    if !matches!(parsed.mime.as_str(), "text/xml" | "application/xop+xml") {
        return Err(ct_error(format!(
            "the first part has content type {:?}; expected the SOAP message (text/xml or application/xop+xml)",
            parsed.mime
        )));
    }
    Ok(())
}

/// Checks the headers of attachment `n` (from 1).
pub fn check_attachment(n: usize, headers: &[(&str, &str)]) -> Result<(), SoapError> {
    let header = headers.iter().find(|(k, _)| k.eq_ignore_ascii_case("content-type")).map(|(_, v)| *v);
    let Some(v) = header else {
        return Err(ct_error(format!("attachment {n} has no Content-Type header")));
    };
    ContentType::parse(v).map_err(|e| ct_error(format!("attachment {n}: {e}")))?;
    Ok(())
}

/// The error for a multipart package without parts.
pub fn missing_soap() -> SoapError {
    SoapError { code: Code::MISSING_SOAP, message: "the multipart message holds no SOAP part".into() }
}

/// Decodes a package from its HTTP `Content-Type` and body.
pub fn decode<'a>(
    content_type: &str,
    body: &'a [u8],
    direction: Direction,
    limits: &Limits,
) -> Result<Package<'a>, SoapError> {
    let Some(boundary) = boundary_of(content_type)? else {
        let soap = soap::parse(body, direction, limits)?;
        return Ok(Package {
            content_type: content_type.to_owned(),
            soap_headers: Vec::new(),
            soap_bytes: body,
            soap,
            attachments: Vec::new(),
            multipart: false,
        });
    };
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(missing_soap());
    }
    let mp = mime::parse_multipart(body, &boundary, &MultipartLimits::default())
        .map_err(|e| SoapError { code: Code::INVALID_MESSAGE, message: e.to_string() })?;
    let mut parts = mp.parts.into_iter();
    let first = parts.next().ok_or_else(missing_soap)?;
    check_soap_part(&first.headers)?;
    let attachments: Vec<Part<'a>> = parts.collect();
    for (i, a) in attachments.iter().enumerate() {
        check_attachment(i + 1, &a.headers)?;
    }
    let soap = soap::parse(first.body, direction, limits)?;
    Ok(Package {
        content_type: content_type.to_owned(),
        soap_headers: first.headers,
        soap_bytes: first.body,
        soap,
        attachments,
        multipart: true,
    })
}
