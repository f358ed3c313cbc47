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

/// A part's header lines, (name, value).
pub type HeaderLines<'a> = [(&'a str, &'a str)];

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
        // Next delimiter: CRLF or LF followed by the delimiter. The line
        // break that ended this delimiter's line is its own: it does not also
        // begin the next one (RFC 2046; `--b\r\n--b` is no empty part).
        let next = find(body, &[b"\n", delim].concat(), part_start)
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
    let (head, body) = match head_end(raw, limits) {
        Some((head, body)) => (&raw[..head], &raw[body..]),
        None => (raw, &raw[raw.len()..]),
    };
    let headers = parse_headers(head, limits)?;
    Ok(Part { headers, body })
}

/// Where a part's header block ends and its body starts: `(header bytes,
/// body offset)`, if the blank line after the headers is within the limit.
/// A part may have no headers at all.
fn head_end(raw: &[u8], limits: &MultipartLimits) -> Option<(usize, usize)> {
    if raw.starts_with(b"\r\n") {
        return Some((0, 2));
    }
    if raw.starts_with(b"\n") {
        return Some((0, 1));
    }
    // The blank line is looked for where headers may be, not through a large body.
    let window = &raw[..raw.len().min(limits.max_header_bytes + 4)];
    let i = find(window, b"\r\n\r\n", 0).into_iter().chain(find(window, b"\n\n", 0)).min()?;
    Some((i, i + if raw[i..].starts_with(b"\r\n\r\n") { 4 } else { 2 }))
}

/// Header lines of one part, as (name, value) trimmed.
fn parse_headers<'a>(head: &'a [u8], limits: &MultipartLimits) -> Result<Vec<(&'a str, &'a str)>, MimeError> {
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
    Ok(headers)
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
        self.open(headers);
        self.out.extend_from_slice(body);
        self.close();
    }
    /// Starts a part whose body the caller appends (with [`append`](Self::append),
    /// or elsewhere after [`take`](Self::take)) before [`close`](Self::close).
    pub fn open(&mut self, headers: &[(&str, &str)]) {
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
    }
    /// Appends body bytes of the open part.
    pub fn append(&mut self, bytes: &[u8]) {
        self.out.extend_from_slice(bytes);
    }
    /// Ends the open part.
    pub fn close(&mut self) {
        self.out.extend_from_slice(b"\r\n");
    }
    /// Takes what was written so far; the writer goes on from there.
    pub fn take(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.out)
    }
    /// Closes the body and returns it.
    pub fn finish(mut self) -> Vec<u8> {
        self.out.extend_from_slice(b"--");
        self.out.extend_from_slice(self.boundary.as_bytes());
        self.out.extend_from_slice(b"--\r\n");
        self.out
    }
}

/// A piece of an encoded body: bytes written by the encoder, or a body the
/// caller supplied and streams itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece<B> {
    /// Encoded bytes.
    Bytes(Vec<u8>),
    /// A caller's body, in place.
    Body(B),
}

impl<B: AsRef<[u8]>> Piece<B> {
    /// All pieces as one buffer.
    pub fn concat(pieces: Vec<Piece<B>>) -> Vec<u8> {
        let mut out = Vec::new();
        for p in pieces {
            match p {
                Piece::Bytes(b) => out.extend_from_slice(&b),
                Piece::Body(b) => out.extend_from_slice(b.as_ref()),
            }
        }
        out
    }
}

/// One step of [`MultipartStream`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamEvent<'a> {
    /// A part begins; its header lines as (name, value).
    Headers(Vec<(String, String)>),
    /// The next bytes of the current part's body.
    Data(&'a [u8]),
    /// The current part ended.
    PartEnd,
    /// The body ended; `trailing` when more than whitespace followed the
    /// closing delimiter.
    End {
        /// Whether the epilogue held more than whitespace.
        trailing: bool,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Preamble,
    AfterDelimiter,
    Headers,
    Body,
    Epilogue,
    Done,
}

/// A multipart body parsed as it arrives, for bodies too large to hold whole:
/// the same grammar and limits as [`parse_multipart`], sans-IO. Push chunks
/// with [`push`](Self::push), call [`finish`](Self::finish) at the end of the
/// input, and take events with [`next_event`](Self::next_event) until it returns `None`
/// (more input needed) or [`StreamEvent::End`]. It holds at most one chunk
/// plus a delimiter's length of body at a time (and one header block).
#[derive(Debug)]
pub struct MultipartStream {
    boundary: String,
    /// `\n--boundary`: a delimiter follows a line break (CRLF or LF).
    delimiter: Vec<u8>,
    buf: Vec<u8>,
    pos: usize,
    stage: Stage,
    eof: bool,
    parts: usize,
    trailing: bool,
    limits: MultipartLimits,
}

impl MultipartStream {
    /// A parser for a body with boundary `boundary`.
    pub fn new(boundary: &str, limits: MultipartLimits) -> Self {
        Self {
            boundary: boundary.to_owned(),
            delimiter: format!("\n--{boundary}").into_bytes(),
            // The line break before the first delimiter may be missing: the body may start with it.
            buf: b"\n".to_vec(),
            pos: 0,
            stage: Stage::Preamble,
            eof: false,
            parts: 0,
            trailing: false,
            limits,
        }
    }

    /// Appends the next chunk of input. Take the pending events first: the
    /// parser keeps what it has not yet returned.
    pub fn push(&mut self, chunk: &[u8]) {
        if self.pos > 0 {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        // What is held is a chunk and a delimiter's length: no room to spare.
        self.buf.reserve_exact(chunk.len());
        self.buf.extend_from_slice(chunk);
    }

    /// Marks the end of the input.
    pub fn finish(&mut self) {
        self.eof = true;
    }

    /// Parts begun so far.
    pub fn parts(&self) -> usize {
        self.parts
    }

    /// The next event, `None` when more input is needed (or after `End`).
    pub fn next_event(&mut self) -> Result<Option<StreamEvent<'_>>, MimeError> {
        loop {
            let rest = &self.buf[self.pos..];
            match self.stage {
                Stage::Preamble => match find(rest, &self.delimiter, 0) {
                    Some(i) => {
                        self.pos += i + self.delimiter.len();
                        self.stage = Stage::AfterDelimiter;
                    }
                    None if self.eof => return Err(MimeError::BoundaryNotFound(self.boundary.clone())),
                    None => {
                        // Keep what may be the start of a delimiter.
                        self.pos += rest.len().saturating_sub(self.delimiter.len() - 1);
                        return Ok(None);
                    }
                },
                Stage::AfterDelimiter => {
                    if rest.len() < 2 && !self.eof {
                        return Ok(None);
                    }
                    if rest.starts_with(b"--") {
                        self.pos += 2;
                        self.stage = Stage::Epilogue;
                        continue;
                    }
                    let blank = rest.iter().all(u8::is_ascii_whitespace);
                    // A last delimiter without the closing "--" at the very end:
                    // tolerated, as parse_multipart does.
                    if blank && self.eof && self.parts > 0 {
                        self.stage = Stage::Epilogue;
                        continue;
                    }
                    if blank && !self.eof && rest.len() <= self.limits.max_header_bytes {
                        return Ok(None);
                    }
                    let line = find(rest, b"\n", 0);
                    let padding = &rest[..line.unwrap_or(rest.len())];
                    if !padding.iter().all(|b| matches!(b, b' ' | b'\t' | b'\r')) {
                        return Err(MimeError::Malformed("text after a boundary delimiter".into()));
                    }
                    let Some(line) = line else {
                        if self.eof || rest.len() > self.limits.max_header_bytes {
                            return Err(MimeError::Malformed("delimiter line does not end".into()));
                        }
                        return Ok(None);
                    };
                    if self.parts >= self.limits.max_parts {
                        return Err(MimeError::TooManyParts(self.limits.max_parts));
                    }
                    self.pos += line + 1;
                    self.stage = Stage::Headers;
                }
                Stage::Headers => {
                    if rest.len() < 2 && !self.eof {
                        return Ok(None);
                    }
                    let window = &rest[..rest.len().min(self.limits.max_header_bytes + self.delimiter.len() + 4)];
                    let next_delimiter = find(window, &self.delimiter, 0);
                    let (head, body) =
                        match (head_end(&rest[..next_delimiter.unwrap_or(rest.len())], &self.limits), next_delimiter) {
                            // The blank line's last line break may begin a delimiter
                            // not all here yet (headers, then at once the next
                            // boundary): that break is the delimiter's, not the
                            // body's, as in parse_multipart. Wait for the rest.
                            (Some((_, body)), None) if !self.eof && self.delimiter.starts_with(&rest[body - 1..]) => {
                                return Ok(None);
                            }
                            (Some(found), _) => found,
                            // Headers only, closed by the next delimiter.
                            (None, Some(i)) => (if i > 0 && rest[i - 1] == b'\r' { i - 1 } else { i }, i),
                            (None, None) if self.eof => {
                                return Err(MimeError::Malformed(format!(
                                    "part {} is not closed by a boundary",
                                    self.parts + 1
                                )));
                            }
                            // Neither a blank line nor a delimiter where a header
                            // block within the limit would have one (the delimiter
                            // closing a part of headers only may end that far on).
                            (None, None) if rest.len() > self.limits.max_header_bytes + self.delimiter.len() + 4 => {
                                return Err(MimeError::Malformed(format!(
                                    "part headers exceed {} bytes",
                                    self.limits.max_header_bytes
                                )));
                            }
                            (None, None) => return Ok(None),
                        };
                    let headers = parse_headers(&rest[..head], &self.limits)?
                        .into_iter()
                        .map(|(k, v)| (k.to_owned(), v.to_owned()))
                        .collect();
                    self.pos += body;
                    self.parts += 1;
                    self.stage = Stage::Body;
                    return Ok(Some(StreamEvent::Headers(headers)));
                }
                Stage::Body => {
                    let start = self.pos;
                    let end = match find(rest, &self.delimiter, 0) {
                        Some(0) => {
                            self.pos += self.delimiter.len();
                            self.stage = Stage::AfterDelimiter;
                            return Ok(Some(StreamEvent::PartEnd));
                        }
                        Some(i) => {
                            // The CR of a CRLF before the delimiter belongs to the delimiter.
                            self.pos += i;
                            if rest[i - 1] == b'\r' { i - 1 } else { i }
                        }
                        None if self.eof => {
                            return Err(MimeError::Malformed(format!(
                                "part {} is not closed by a boundary",
                                self.parts
                            )));
                        }
                        None => {
                            // Hold back what may be a CR and the start of a delimiter.
                            let n = rest.len().saturating_sub(self.delimiter.len());
                            if n == 0 {
                                return Ok(None);
                            }
                            self.pos += n;
                            n
                        }
                    };
                    if end > 0 {
                        return Ok(Some(StreamEvent::Data(&self.buf[start..start + end])));
                    }
                }
                Stage::Epilogue => {
                    self.trailing |= !rest.iter().all(u8::is_ascii_whitespace);
                    self.pos = self.buf.len();
                    if !self.eof {
                        return Ok(None);
                    }
                    self.stage = Stage::Done;
                    return Ok(Some(StreamEvent::End { trailing: self.trailing }));
                }
                Stage::Done => return Ok(None),
            }
        }
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

    /// Parts as (headers, body) and the trailing flag, from the stream fed in chunks of `size`.
    #[allow(clippy::type_complexity)]
    fn streamed(
        body: &[u8],
        boundary: &str,
        size: usize,
    ) -> Result<(Vec<(Vec<(String, String)>, Vec<u8>)>, bool), MimeError> {
        let mut s = MultipartStream::new(boundary, MultipartLimits::default());
        let mut parts: Vec<(Vec<(String, String)>, Vec<u8>)> = Vec::new();
        let mut chunks = body.chunks(size.max(1));
        loop {
            match s.next_event()? {
                Some(StreamEvent::Headers(h)) => parts.push((h, Vec::new())),
                Some(StreamEvent::Data(d)) => parts.last_mut().expect("data inside a part").1.extend_from_slice(d),
                Some(StreamEvent::PartEnd) => {}
                Some(StreamEvent::End { trailing }) => return Ok((parts, trailing)),
                None => match chunks.next() {
                    Some(c) => s.push(c),
                    None => s.finish(),
                },
            }
        }
    }

    #[test]
    fn the_stream_parses_as_the_whole_body_parser_does_in_any_chunking() {
        let mut w = MultipartWriter::new("XYZ");
        w.part(&[("Content-Type", "text/xml")], b"<a/>");
        w.part(&[("Content-Type", "application/octet-stream")], b"\r\n--XY\r\n\r\r\n-");
        w.part(&[], b"");
        let written = w.finish();
        let bodies: Vec<Vec<u8>> = vec![
            written.clone(),
            [b"preamble\r\n".as_slice(), &written, b"epilogue"].concat(),
            b"--XYZ\nContent-Type: a/b\n\nlf only\n--XYZ\nX: 1\n--XYZ--".to_vec(),
            b"--XYZ\r\n\r\nno close\r\n--XYZ\r\n".to_vec(),
            b"--XYZ  \r\nA: b\r\n\r\npadded\r\n--XYZ--\r\n".to_vec(),
            b"--XYZ\r\nA: b\r\n\r\nunclosed".to_vec(),
            b"--XYZx\r\n\r\n".to_vec(),
            b"no boundary at all".to_vec(),
            b"--XYZ\r\n folded: no\r\n\r\nx\r\n--XYZ--".to_vec(),
        ];
        let parses = [true, true, true, true, true, false, false, false, false];
        for (body, parses) in bodies.iter().zip(parses) {
            let whole = parse_multipart(body, "XYZ", &MultipartLimits::default()).map(|mp| {
                let parts: Vec<_> = mp
                    .parts
                    .iter()
                    .map(|p| {
                        let h = p.headers.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect::<Vec<_>>();
                        (h, p.body.to_vec())
                    })
                    .collect();
                (parts, mp.has_trailing_data())
            });
            assert_eq!(whole.is_ok(), parses, "{:?}", String::from_utf8_lossy(body));
            for size in [1, 2, 3, 5, 7, 16, 4096] {
                let got = streamed(body, "XYZ", size);
                match (&whole, &got) {
                    (Ok(w), Ok(g)) => assert_eq!(w, g, "chunks of {size}: {:?}", String::from_utf8_lossy(body)),
                    (Err(_), Err(_)) => {}
                    _ => panic!(
                        "chunks of {size}: whole {whole:?}, streamed {got:?} for {:?}",
                        String::from_utf8_lossy(body)
                    ),
                }
            }
        }
    }

    #[test]
    fn fuzz_multipart_141247b8_headers_followed_at_once_by_the_next_boundary() {
        // A part of headers only whose last line break also begins the next
        // delimiter: the blank line the stream saw first (with the delimiter
        // still to come) made it take the delimiter as body.
        let body = b"--b\r\nContent-Type: a/b\n\n--b\r\nContent-Type: c/d\r\n\r\nxyz\r\n--b--";
        let whole = parse_multipart(body, "b", &MultipartLimits::default()).unwrap();
        assert_eq!(whole.parts.len(), 2);
        assert!(whole.parts[0].body.is_empty());
        for size in 1..body.len() {
            let (parts, _) = streamed(body, "b", size).unwrap();
            assert_eq!(parts.len(), 2, "chunks of {size}: {parts:?}");
            assert_eq!((parts[0].1.as_slice(), parts[1].1.as_slice()), (&b""[..], &b"xyz"[..]), "chunks of {size}");
        }
    }

    #[test]
    fn fuzz_multipart_a158427d_headers_near_the_limit_closed_by_the_next_boundary() {
        // A part of headers only, near the header limit, closed by a long
        // boundary: the stream refused it when a chunk ended inside the
        // delimiter, while the whole-body parser took it.
        let boundary = "envelope-musubi-gconf-0123456789";
        let long = format!("X-Long: {}", "v".repeat(16 * 1024 - 10));
        let body = format!("--{boundary}\r\n{long}\r\n--{boundary}\r\nA: b\r\n\r\nxyz\r\n--{boundary}--");
        let whole = parse_multipart(body.as_bytes(), boundary, &MultipartLimits::default()).unwrap();
        assert_eq!(whole.parts.len(), 2);
        // Chunks that end anywhere in or around the delimiter after the headers.
        for size in [1, 3, 64, 4096].into_iter().chain(16 * 1024 - 40..16 * 1024 + 80) {
            let (parts, _) =
                streamed(body.as_bytes(), boundary, size).unwrap_or_else(|e| panic!("chunks of {size}: {e}"));
            assert_eq!(parts.len(), 2, "chunks of {size}");
            assert_eq!(parts[1].1, b"xyz", "chunks of {size}");
        }
    }

    #[test]
    fn fuzz_multipart_d48ebdf2_a_delimiter_lines_break_does_not_open_the_next_delimiter() {
        // `--b\r\r\n--b`: the whole-body parser let the line break after the
        // first delimiter also begin the second, and read an empty part the
        // stream (rightly) did not see. Both now take the line after the
        // first delimiter as the part's first header line, and refuse it.
        let body = b"--b\r\r\n--b\r\nA: b\r\n\r\nmember\r\n--b--\r\n";
        let err = parse_multipart(body, "b", &MultipartLimits::default()).unwrap_err();
        assert!(err.to_string().contains("bad part header line"), "{err}");
        for size in 1..body.len() {
            assert!(streamed(body, "b", size).is_err(), "chunks of {size}");
        }
        // An empty part has its own line break before the next delimiter.
        let empty = b"--b\r\n\r\n--b\r\nA: b\r\n\r\nx\r\n--b--";
        let whole = parse_multipart(empty, "b", &MultipartLimits::default()).unwrap();
        assert_eq!(whole.parts.len(), 2);
        assert!(whole.parts[0].headers.is_empty() && whole.parts[0].body.is_empty());
        for size in 1..empty.len() {
            let (parts, _) = streamed(empty, "b", size).unwrap();
            assert_eq!(parts.len(), 2, "chunks of {size}: {parts:?}");
        }
    }

    #[test]
    fn the_stream_holds_little_of_a_large_part() {
        let mut w = MultipartWriter::new("b");
        w.part(&[("Content-Type", "application/octet-stream")], &vec![b'x'; 1 << 20]);
        let body = w.finish();
        let mut s = MultipartStream::new("b", MultipartLimits::default());
        let mut total = 0;
        for chunk in body.chunks(8192) {
            s.push(chunk);
            while let Some(e) = s.next_event().unwrap() {
                if let StreamEvent::Data(d) = e {
                    total += d.len();
                }
            }
            assert!(s.buf.len() - s.pos <= 8192 + 8, "held {} bytes", s.buf.len() - s.pos);
        }
        s.finish();
        assert_eq!(s.next_event().unwrap(), Some(StreamEvent::End { trailing: false }));
        assert_eq!(total, 1 << 20);
        let many: Vec<u8> = (0..300).flat_map(|_| b"--b\r\n\r\nx\r\n".to_vec()).chain(b"--b--".to_vec()).collect();
        assert!(matches!(streamed(&many, "b", 100), Err(MimeError::TooManyParts(_))));
    }
}
