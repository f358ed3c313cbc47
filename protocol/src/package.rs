//! SOAP message packages as information systems send them (PR-MESS §3): a
//! plain `text/xml` SOAP message, or `multipart/related` with the SOAP part
//! first and attachments after it (SOAP with attachments, MTOM/XOP).

use crate::fault::Code;
use crate::mime::{self, ContentType, MultipartLimits, Part};
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

/// Decodes a package from its HTTP `Content-Type` and body.
pub fn decode<'a>(
    content_type: &str,
    body: &'a [u8],
    direction: Direction,
    limits: &Limits,
) -> Result<Package<'a>, SoapError> {
    let ct = ContentType::parse(content_type).map_err(|e| ct_error(e.to_string()))?;
    if !ct.is_multipart() {
        soap::check_content_type(content_type)?;
        let soap = soap::parse(body, direction, limits)?;
        return Ok(Package {
            content_type: content_type.to_owned(),
            soap_headers: Vec::new(),
            soap_bytes: body,
            soap,
            attachments: Vec::new(),
            multipart: false,
        });
    }
    if ct.mime != "multipart/related" {
        return Err(ct_error(format!(
            "invalid content type {:?}; a SOAP message package must be multipart/related",
            ct.mime
        )));
    }
    let boundary = ct.boundary().map_err(|e| ct_error(e.to_string()))?;
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(SoapError { code: Code::MISSING_SOAP, message: "the multipart message holds no SOAP part".into() });
    }
    let mp = mime::parse_multipart(body, boundary, &MultipartLimits::default())
        .map_err(|e| SoapError { code: Code::INVALID_MESSAGE, message: e.to_string() })?;
    let mut parts = mp.parts.into_iter();
    let first = parts.next().ok_or_else(|| SoapError {
        code: Code::MISSING_SOAP,
        message: "the multipart message holds no SOAP part".into(),
    })?;
    let soap_ct = first.header("content-type").ok_or_else(|| ct_error("the SOAP part has no Content-Type header"))?;
    let soap_ct_parsed = ContentType::parse(soap_ct).map_err(|e| ct_error(e.to_string()))?;
    if !matches!(soap_ct_parsed.mime.as_str(), "text/xml" | "application/xop+xml") {
        return Err(ct_error(format!(
            "the first part has content type {:?}; expected the SOAP message (text/xml or application/xop+xml)",
            soap_ct_parsed.mime
        )));
    }
    let attachments: Vec<Part<'a>> = parts.collect();
    for (i, a) in attachments.iter().enumerate() {
        let Some(v) = a.header("content-type") else {
            return Err(ct_error(format!("attachment {} has no Content-Type header", i + 1)));
        };
        ContentType::parse(v).map_err(|e| ct_error(format!("attachment {}: {e}", i + 1)))?;
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
