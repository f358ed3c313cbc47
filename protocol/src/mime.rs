//! MIME pieces X-Road uses (RFC 2045/2046): `Content-Type` values with
//! parameters, and multipart bodies (SOAP with attachments, MTOM, and the
//! transport message between security servers).
//!
//! Parsing is over a complete body in memory with explicit limits on part
//! count and header size; parts borrow from the input.

use std::fmt;

/// A `Content-Type` value that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MimeError {
    /// The media type is not `type/subtype`.
    #[error("invalid content type {0:?}; expected type/subtype")]
    BadContentType(String),
    /// A multipart content type has no boundary.
    #[error("multipart content type {0:?} has no boundary parameter")]
    NoBoundary(String),
    /// The body does not hold the boundary.
    #[error("multipart body does not contain the boundary {0:?}")]
    BoundaryNotFound(String),
    /// The multipart structure is broken.
    #[error("malformed multipart body: {0}")]
    Malformed(String),
    /// Too many parts.
    #[error("multipart body has more than {0} parts")]
    TooManyParts(usize),
}

/// A parsed `Content-Type` header: lowercase `type/subtype` and parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContentType {
    /// `type/subtype`, lowercase.
    pub mime: String,
    /// Parameters in order, names lowercase, values unquoted.
    pub params: Vec<(String, String)>,
}

impl ContentType {
    /// Parses a `Content-Type` value.
    pub fn parse(value: &str) -> Result<Self, MimeError> {
        let mut parts = split_params(value);
        let mime = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
        let valid = mime
            .split_once('/')
            .is_some_and(|(t, s)| !t.is_empty() && !s.is_empty() && is_token(t) && is_token(&s.replace('/', "")));
        // X-Road's own signature part type, `signature/bdoc-1.0/ts`, has a slash
        // in its subtype; it is accepted as a token here.
        if !valid {
            return Err(MimeError::BadContentType(value.to_owned()));
        }
        let mut params = Vec::new();
        for p in parts {
            let p = p.trim();
            if p.is_empty() {
                continue;
            }
            let Some((k, v)) = p.split_once('=') else {
                return Err(MimeError::BadContentType(value.to_owned()));
            };
            let v = v.trim();
            let v = v.strip_prefix('"').and_then(|v| v.strip_suffix('"')).unwrap_or(v);
            params.push((k.trim().to_ascii_lowercase(), v.to_owned()));
        }
        Ok(Self { mime, params })
    }

    /// The value of parameter `name` (lowercase).
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// Whether the media type is `multipart/*`.
    pub fn is_multipart(&self) -> bool {
        self.mime.starts_with("multipart/")
    }

    /// The boundary of a multipart type.
    pub fn boundary(&self) -> Result<&str, MimeError> {
        self.param("boundary").filter(|b| !b.is_empty()).ok_or_else(|| MimeError::NoBoundary(self.to_string()))
    }
}

impl fmt::Display for ContentType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.mime)?;
        for (k, v) in &self.params {
            write!(f, "; {k}=\"{v}\"")?;
        }
        Ok(())
    }
}

fn is_token(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$&^_.+-".contains(&b))
}

/// Splits at `;` outside double quotes.
fn split_params(value: &str) -> impl Iterator<Item = &str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut quoted = false;
    for (i, b) in value.bytes().enumerate() {
        match b {
            b'"' => quoted = !quoted,
            b';' if !quoted => {
                out.push(&value[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&value[start..]);
    out.into_iter()
}

/// One part of a multipart body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part<'a> {
    /// Header lines as (name, value), names as written.
    pub headers: Vec<(&'a str, &'a str)>,
    /// The body, exactly as in the input.
    pub body: &'a [u8],
}

impl Part<'_> {
    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.trim())
    }
    /// The part's content type (`text/plain` if absent, as RFC 2046 says).
    pub fn content_type(&self) -> Result<ContentType, MimeError> {
        ContentType::parse(self.header("content-type").unwrap_or("text/plain"))
    }
}

/// Limits for multipart parsing.
#[derive(Debug, Clone, Copy)]
pub struct MultipartLimits {
    /// Most parts accepted.
    pub max_parts: usize,
    /// Largest header block of one part.
    pub max_header_bytes: usize,
}

impl Default for MultipartLimits {
    fn default() -> Self {
        Self { max_parts: 256, max_header_bytes: 16 * 1024 }
    }
}

fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    if needle.is_empty() || from > hay.len() {
        return None;
    }
    memchr::memmem::find(&hay[from..], needle).map(|p| p + from)
}

/// Splits a multipart body into parts. Data after the closing delimiter
/// (the epilogue) is returned as `epilogue` so callers that must refuse it can.
pub fn parse_multipart<'a>(
    body: &'a [u8],
    boundary: &str,
    limits: &MultipartLimits,
) -> Result<Multipart<'a>, MimeError> {
    let delim = format!("--{boundary}");
    let delim = delim.as_bytes();
    // The first delimiter may start the body or follow a CRLF/LF.
    let first = if body.starts_with(delim) {
        0
    } else {
        let crlf =
            find(body, &[b"\n", delim].concat(), 0).ok_or_else(|| MimeError::BoundaryNotFound(boundary.to_owned()))?;
        crlf + 1
    };
    let mut parts = Vec::new();
    let mut pos = first + delim.len();
    loop {
        // After a delimiter: "--" ends, otherwise optional whitespace then line break.
        if body[pos..].starts_with(b"--") {
            let epilogue = &body[(pos + 2).min(body.len())..];
            return Ok(Multipart { parts, epilogue });
        }
        // A last delimiter without the closing "--" at the very end of the body:
        // senders such as Jetty's writer are tolerated here, as X-Road does.
        if !parts.is_empty() && body[pos..].iter().all(u8::is_ascii_whitespace) {
            return Ok(Multipart { parts, epilogue: &body[body.len()..] });
        }
        let line_end =
            find(body, b"\n", pos).ok_or_else(|| MimeError::Malformed("delimiter line does not end".into()))?;
        if !body[pos..line_end].iter().all(|b| matches!(b, b' ' | b'\t' | b'\r')) {
            return Err(MimeError::Malformed("text after a boundary delimiter".into()));
        }
        let part_start = line_end + 1;
        if parts.len() >= limits.max_parts {
            return Err(MimeError::TooManyParts(limits.max_parts));
        }
        // Next delimiter: CRLF or LF followed by the delimiter.
        let next = find(body, &[b"\n", delim].concat(), part_start.saturating_sub(1).max(first))
            .filter(|&n| n + 1 >= part_start)
            .ok_or_else(|| MimeError::Malformed(format!("part {} is not closed by a boundary", parts.len() + 1)))?;
        let mut part_end = next;
        if part_end > part_start && body[part_end - 1] == b'\r' {
            part_end -= 1;
        }
        let part_end = part_end.max(part_start);
        parts.push(parse_part(&body[part_start..part_end], limits)?);
        pos = next + 1 + delim.len();
    }
}

pub(crate) fn parse_part<'a>(raw: &'a [u8], limits: &MultipartLimits) -> Result<Part<'a>, MimeError> {
    // Headers end at the first empty line; a part may have no headers at all.
    let (head, body) = if raw.starts_with(b"\r\n") {
        (&raw[..0], &raw[2..])
    } else if raw.starts_with(b"\n") {
        (&raw[..0], &raw[1..])
    } else if let Some(i) = {
        // The blank line is looked for where headers may be, not through a large body.
        let window = &raw[..raw.len().min(limits.max_header_bytes + 4)];
        find(window, b"\r\n\r\n", 0).into_iter().chain(find(window, b"\n\n", 0)).min()
    } {
        let sep = if raw[i..].starts_with(b"\r\n\r\n") { 4 } else { 2 };
        (&raw[..i], &raw[i + sep..])
    } else {
        (raw, &raw[raw.len()..])
    };
    if head.len() > limits.max_header_bytes {
        return Err(MimeError::Malformed(format!("part headers exceed {} bytes", limits.max_header_bytes)));
    }
    let head = std::str::from_utf8(head).map_err(|_| MimeError::Malformed("part headers are not UTF-8".into()))?;
    let mut headers: Vec<(&str, &str)> = Vec::new();
    for line in head.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.is_empty() {
            continue;
        }
        if line.starts_with([' ', '\t']) {
            // Folded header lines are rare in practice; refuse rather than misread.
            return Err(MimeError::Malformed("folded part header lines are not supported".into()));
        }
        let (k, v) =
            line.split_once(':').ok_or_else(|| MimeError::Malformed(format!("bad part header line {line:?}")))?;
        headers.push((k.trim(), v.trim()));
    }
    Ok(Part { headers, body })
}

/// A parsed multipart body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Multipart<'a> {
    /// The parts in order.
    pub parts: Vec<Part<'a>>,
    /// Bytes after the closing delimiter.
    pub epilogue: &'a [u8],
}

impl Multipart<'_> {
    /// Whether anything other than whitespace follows the closing delimiter.
    pub fn has_trailing_data(&self) -> bool {
        !self.epilogue.iter().all(u8::is_ascii_whitespace)
    }
}

/// Writes multipart bodies.
#[derive(Debug)]
pub struct MultipartWriter {
    boundary: String,
    out: Vec<u8>,
}

impl MultipartWriter {
    /// A writer with the given boundary.
    pub fn new(boundary: impl Into<String>) -> Self {
        Self { boundary: boundary.into(), out: Vec::new() }
    }
    /// The boundary.
    pub fn boundary(&self) -> &str {
        &self.boundary
    }
    /// Appends one part.
    pub fn part(&mut self, headers: &[(&str, &str)], body: &[u8]) {
        self.out.extend_from_slice(b"--");
        self.out.extend_from_slice(self.boundary.as_bytes());
        self.out.extend_from_slice(b"\r\n");
        for (k, v) in headers {
            self.out.extend_from_slice(k.as_bytes());
            self.out.extend_from_slice(b": ");
            self.out.extend_from_slice(v.as_bytes());
            self.out.extend_from_slice(b"\r\n");
        }
        self.out.extend_from_slice(b"\r\n");
        self.out.extend_from_slice(body);
        self.out.extend_from_slice(b"\r\n");
    }
    /// Closes the body and returns it.
    pub fn finish(mut self) -> Vec<u8> {
        self.out.extend_from_slice(b"--");
        self.out.extend_from_slice(self.boundary.as_bytes());
        self.out.extend_from_slice(b"--\r\n");
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_quoted_content_type_params() {
        let ct = ContentType::parse(
            "Multipart/Related; start-info=\"application/soap+xml\"; type=\"application/xop+xml\"; boundary=\"b;1\"",
        )
        .unwrap();
        assert_eq!(ct.mime, "multipart/related");
        assert_eq!(ct.boundary().unwrap(), "b;1");
        assert_eq!(ct.param("type"), Some("application/xop+xml"));
        assert!(ContentType::parse("blah").is_err());
        assert!(ContentType::parse("text/").is_err());
    }

    #[test]
    fn round_trips_multipart() {
        let mut w = MultipartWriter::new("XYZ");
        w.part(&[("Content-Type", "text/xml")], b"<a/>");
        w.part(&[("Content-Type", "application/octet-stream")], b"\r\n--XY\r\n");
        let body = w.finish();
        let mp = parse_multipart(&body, "XYZ", &MultipartLimits::default()).unwrap();
        assert_eq!(mp.parts.len(), 2);
        assert_eq!(mp.parts[0].body, b"<a/>");
        assert_eq!(mp.parts[1].body, b"\r\n--XY\r\n");
        assert_eq!(mp.parts[1].header("CONTENT-TYPE"), Some("application/octet-stream"));
        assert!(!mp.has_trailing_data());
    }

    #[test]
    fn rejects_missing_boundary_and_unclosed_parts() {
        let lim = MultipartLimits::default();
        assert!(matches!(parse_multipart(b"hello", "foobar", &lim), Err(MimeError::BoundaryNotFound(_))));
        assert!(parse_multipart(b"--b\r\nContent-Type: text/xml\r\n\r\n<a/>", "b", &lim).is_err());
        let many: Vec<u8> = (0..300).flat_map(|_| b"--b\r\n\r\nx\r\n".to_vec()).chain(b"--b--".to_vec()).collect();
        assert!(matches!(parse_multipart(&many, "b", &lim), Err(MimeError::TooManyParts(_))));
    }
}
