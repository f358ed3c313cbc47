//! X-Road SOAP messages (PR-MESS §2, message protocol 4.0): parsing with the
//! checks a real X-Road security server makes, and the header model.
//!
//! The parser streams the envelope once with quick-xml, keeps the message's
//! bytes untouched (X-Road signs and hashes the bytes the information system
//! sent), and refuses what X-Road refuses: DOCTYPE and entity declarations,
//! missing, duplicate or malformed header fields, a protocol version other than
//! 4.0, a body that is not one element named after the service, too deep or too
//! large documents. Each refusal is a [`SoapError`] whose [`Code`] the caller
//! prefixes with where it happened (see [`crate::fault`]).

use std::ops::Range;

use quick_xml::NsReader;
use quick_xml::events::{BytesStart, Event};
use quick_xml::name::{Namespace, ResolveResult};

use crate::fault::{Code, Fault};
use crate::identifiers::{ClientId, IdError, SecurityServerId, ServiceId};

/// SOAP 1.1 envelope namespace.
pub const SOAP_ENV_NS: &str = "http://schemas.xmlsoap.org/soap/envelope/";
/// X-Road message header namespace.
pub const XROAD_NS: &str = "http://x-road.eu/xsd/xroad.xsd";
/// X-Road identifier namespace.
pub const ID_NS: &str = "http://x-road.eu/xsd/identifiers";
/// The only protocol version this implementation speaks.
pub const PROTOCOL_VERSION: &str = "4.0";
/// `algorithmId` Musubi writes into `requestHash`.
pub const SHA512_URI: &str = "http://www.w3.org/2001/04/xmlenc#sha512";

const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// Size and depth limits for one SOAP document.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest SOAP part accepted, in bytes.
    pub max_bytes: usize,
    /// Deepest element nesting accepted.
    pub max_depth: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self { max_bytes: 16 * 1024 * 1024, max_depth: 128 }
    }
}

/// Why a SOAP document was refused: an X-Road error code and what was wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct SoapError {
    /// The X-Road error code, without prefix.
    pub code: Code,
    /// What was wrong, for the fault string and the log.
    pub message: String,
}

impl SoapError {
    fn new(code: Code, message: impl Into<String>) -> Self {
        Self { code, message: message.into() }
    }
}

fn invalid_soap(message: impl Into<String>) -> SoapError {
    SoapError::new(Code::INVALID_SOAP, message)
}

/// The `requestHash` header of a response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHash {
    /// `algorithmId`, a URI or a name such as `SHA-512`.
    pub algorithm: String,
    /// Base64 digest of the request.
    pub value: String,
}

/// The X-Road header fields of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// `client`: who sends the request.
    pub client: ClientId,
    /// `service`: the service called.
    pub service: ServiceId,
    /// `id`: the query id, unique per request.
    pub id: String,
    /// `userId`, optional.
    pub user_id: Option<String>,
    /// `issue`, optional.
    pub issue: Option<String>,
    /// `protocolVersion`, always `4.0` once parsed.
    pub protocol_version: String,
    /// `requestHash`, in responses.
    pub request_hash: Option<RequestHash>,
    /// `securityServer`, optional targeting of one provider server.
    pub security_server: Option<SecurityServerId>,
}

/// A parsed X-Road SOAP message. The bytes are kept as received.
#[derive(Debug, Clone)]
pub struct SoapMessage {
    raw: Vec<u8>,
    header: Header,
    body_name: String,
    is_rpc: bool,
    /// Byte offset just after the closing tag of the `id` header field.
    id_end: usize,
    /// Qualified-name prefix of the `id` element (`xroad:` or empty).
    id_prefix: String,
    /// Byte range of an existing `requestHash` element.
    request_hash_range: Option<Range<usize>>,
    /// Byte range of the body's content.
    body_range: Range<usize>,
}

impl SoapMessage {
    /// The message with the body's content removed (the envelope, header and
    /// an empty body stay): what the message log keeps when body logging is off.
    pub fn without_body(&self) -> Vec<u8> {
        let r = &self.body_range;
        if r.start > r.end || r.end > self.raw.len() {
            return self.raw.clone();
        }
        [&self.raw[..r.start], &self.raw[r.end..]].concat()
    }

    /// The message bytes, exactly as received (BOM included).
    pub fn as_bytes(&self) -> &[u8] {
        &self.raw
    }
    /// Consumes the message and returns its bytes.
    pub fn into_bytes(self) -> Vec<u8> {
        self.raw
    }
    /// The header fields.
    pub fn header(&self) -> &Header {
        &self.header
    }
    /// The body's content (its one child element, as received).
    pub fn body_content(&self) -> &[u8] {
        self.raw.get(self.body_range.clone()).unwrap_or_default()
    }
    /// Local name of the body's element.
    pub fn body_name(&self) -> &str {
        &self.body_name
    }
    /// Whether the message is RPC/encoded.
    pub fn is_rpc(&self) -> bool {
        self.is_rpc
    }

    /// The message with its `requestHash` replaced by `hash`, placed right after
    /// `id` as X-Road's server proxy does (a `requestHash` the provider wrote is
    /// removed).
    pub fn with_request_hash(&self, algorithm: &str, hash_b64: &str) -> Vec<u8> {
        let element =
            format!("<{p}requestHash algorithmId=\"{algorithm}\">{hash_b64}</{p}requestHash>", p = self.id_prefix);
        let mut out = Vec::with_capacity(self.raw.len() + element.len());
        match &self.request_hash_range {
            Some(r) if r.start < self.id_end => {
                out.extend_from_slice(&self.raw[..r.start]);
                out.extend_from_slice(&self.raw[r.end..self.id_end]);
                out.extend_from_slice(element.as_bytes());
                out.extend_from_slice(&self.raw[self.id_end..]);
            }
            Some(r) => {
                out.extend_from_slice(&self.raw[..self.id_end]);
                out.extend_from_slice(element.as_bytes());
                out.extend_from_slice(&self.raw[self.id_end..r.start]);
                out.extend_from_slice(&self.raw[r.end..]);
            }
            None => {
                out.extend_from_slice(&self.raw[..self.id_end]);
                out.extend_from_slice(element.as_bytes());
                out.extend_from_slice(&self.raw[self.id_end..]);
            }
        }
        out
    }
}

/// What a SOAP document turned out to be.
#[allow(clippy::large_enum_variant)] // parsed once per message, never stored in bulk
#[derive(Debug, Clone)]
pub enum Soap {
    /// An X-Road message with a valid header.
    Message(SoapMessage),
    /// A SOAP fault (the body holds `Fault`).
    Fault(Fault),
}

/// Whether the message is a request or a response; decides the expected body
/// element name (`serviceCode` or `serviceCodeResponse`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// A request from a client.
    Request,
    /// A response from a provider.
    Response,
}

/// Checks a SOAP message's HTTP `Content-Type`: `text/xml`, UTF-8 or no charset.
pub fn check_content_type(content_type: &str) -> Result<(), SoapError> {
    let ct = crate::mime::ContentType::parse(content_type)
        .map_err(|e| SoapError::new(Code::INVALID_CONTENT_TYPE, e.to_string()))?;
    if ct.mime != "text/xml" {
        return Err(SoapError::new(
            Code::INVALID_CONTENT_TYPE,
            format!("invalid content type {:?}; a SOAP message must be sent as text/xml", ct.mime),
        ));
    }
    match ct.param("charset") {
        None => Ok(()),
        Some(cs) if cs.eq_ignore_ascii_case("utf-8") || cs.eq_ignore_ascii_case("utf8") => Ok(()),
        Some(cs) => {
            Err(SoapError::new(Code::INVALID_CONTENT_TYPE, format!("charset {cs:?} is not supported; send UTF-8")))
        }
    }
}

/// Parses a SOAP document sent as `direction`.
pub fn parse(bytes: &[u8], direction: Direction, limits: &Limits) -> Result<Soap, SoapError> {
    if bytes.len() > limits.max_bytes {
        return Err(SoapError::new(
            Code::INVALID_SOAP,
            format!("SOAP message of {} bytes exceeds the limit of {} bytes", bytes.len(), limits.max_bytes),
        ));
    }
    let (offset, text) = match bytes.strip_prefix(UTF8_BOM) {
        Some(rest) => (UTF8_BOM.len(), rest),
        None => (0, bytes),
    };
    let text = std::str::from_utf8(text).map_err(|e| {
        SoapError::new(Code::INVALID_XML, format!("message is not valid UTF-8 at byte {}", e.valid_up_to() + offset))
    })?;
    if text.trim().is_empty() {
        return Err(invalid_soap("the message is empty"));
    }
    // One byte-order mark may start the message; the XML reader would skip
    // a second one silently and every byte position after it would be off.
    if text.starts_with('\u{FEFF}') {
        return Err(SoapError::new(Code::INVALID_XML, format!("a second byte-order mark at byte {offset}")));
    }
    let mut p = Parser::new(text, offset, *limits);
    let parsed = p.run()?;
    match parsed {
        Parsed::Fault(f) => Ok(Soap::Fault(f)),
        Parsed::Message(h) => {
            let header = h.finish()?;
            check_body_name(&header, &p.body_name, direction)?;
            Ok(Soap::Message(SoapMessage {
                raw: bytes.to_vec(),
                header,
                body_name: p.body_name,
                is_rpc: p.is_rpc,
                id_end: p.id_end,
                id_prefix: p.id_prefix,
                request_hash_range: p.request_hash_range,
                body_range: p.body_range,
            }))
        }
    }
}

fn check_body_name(header: &Header, body: &str, direction: Direction) -> Result<(), SoapError> {
    let code = header.service.service_code();
    let ok = match direction {
        Direction::Request => body == code || body.strip_suffix("Request") == Some(code),
        Direction::Response => body.strip_suffix("Response") == Some(code),
    };
    if ok {
        Ok(())
    } else {
        let expected = match direction {
            Direction::Request => code.to_owned(),
            Direction::Response => format!("{code}Response"),
        };
        Err(SoapError::new(
            Code::INCONSISTENT_HEADERS,
            format!("malformed SOAP message: body element {body:?} does not match service code; expected {expected:?}"),
        ))
    }
}

#[allow(clippy::large_enum_variant)]
enum Parsed {
    Message(HeaderBuilder),
    Fault(Fault),
}

#[derive(Default)]
struct HeaderBuilder {
    client: Option<ClientId>,
    service: Option<ServiceId>,
    id: Option<String>,
    user_id: Option<String>,
    issue: Option<String>,
    protocol_version: Option<String>,
    request_hash: Option<RequestHash>,
    security_server: Option<SecurityServerId>,
}

fn missing(field: &str) -> SoapError {
    SoapError::new(Code::MISSING_HEADER_FIELD, format!("required field '{field}' is missing from the X-Road header"))
}

impl HeaderBuilder {
    fn finish(self) -> Result<Header, SoapError> {
        let protocol_version = self.protocol_version.ok_or_else(|| missing("protocolVersion"))?;
        if protocol_version.trim() != PROTOCOL_VERSION {
            return Err(SoapError::new(
                Code::INVALID_PROTOCOL_VERSION,
                format!("invalid protocol version {protocol_version:?}; this server speaks {PROTOCOL_VERSION}"),
            ));
        }
        Ok(Header {
            client: self.client.ok_or_else(|| missing("client"))?,
            service: self.service.ok_or_else(|| missing("service"))?,
            id: self.id.ok_or_else(|| missing("id"))?,
            user_id: self.user_id,
            issue: self.issue,
            protocol_version,
            request_hash: self.request_hash,
            security_server: self.security_server,
        })
    }
}

/// Fields of an identifier element (`client`, `service`, `securityServer`).
#[derive(Default)]
struct IdFields {
    object_type: Option<String>,
    instance: Option<String>,
    member_class: Option<String>,
    member_code: Option<String>,
    subsystem_code: Option<String>,
    service_code: Option<String>,
    service_version: Option<String>,
    server_code: Option<String>,
}

#[derive(PartialEq, Eq, Clone, Copy)]
enum Where {
    Prolog,
    Envelope,
    Header,
    /// Inside a header field at depth 3; the field name.
    Field,
    /// Inside an identifier child at depth 4.
    IdField,
    Body,
    After,
}

/// Attributes of an element: (namespace, local name, value).
type Attrs = Vec<(Option<String>, String, String)>;

struct Parser<'a> {
    reader: NsReader<&'a [u8]>,
    offset: usize,
    limits: Limits,
    depth: usize,
    at: Where,
    seen_header: bool,
    seen_body: bool,
    body_children: usize,
    body_name: String,
    is_rpc: bool,
    is_fault: bool,
    fault: FaultBuilder,
    header: HeaderBuilder,
    field: String,
    field_prefix: String,
    field_start: usize,
    id_field: String,
    id: IdFields,
    text: String,
    id_end: usize,
    id_prefix: String,
    request_hash_range: Option<Range<usize>>,
    request_hash_alg: Option<String>,
    body_depth_start: usize,
    /// Where the current event began (for byte ranges of end tags).
    event_start: usize,
    body_range: Range<usize>,
}

#[derive(Default)]
struct FaultBuilder {
    current: Option<String>,
    code: String,
    string: String,
    actor: String,
    detail: String,
}

impl<'a> Parser<'a> {
    fn new(text: &'a str, offset: usize, limits: Limits) -> Self {
        let mut reader = NsReader::from_str(text);
        let config = reader.config_mut();
        config.check_end_names = true;
        config.expand_empty_elements = false;
        Self {
            reader,
            offset,
            limits,
            depth: 0,
            at: Where::Prolog,
            seen_header: false,
            seen_body: false,
            body_children: 0,
            body_name: String::new(),
            is_rpc: false,
            is_fault: false,
            fault: FaultBuilder::default(),
            header: HeaderBuilder::default(),
            field: String::new(),
            field_prefix: String::new(),
            field_start: 0,
            id_field: String::new(),
            id: IdFields::default(),
            text: String::new(),
            id_end: 0,
            id_prefix: String::new(),
            request_hash_range: None,
            request_hash_alg: None,
            body_depth_start: 0,
            event_start: 0,
            body_range: 0..0,
        }
    }

    fn pos(&self) -> usize {
        self.reader.buffer_position() as usize + self.offset
    }

    fn run(&mut self) -> Result<Parsed, SoapError> {
        loop {
            let before = self.pos();
            self.event_start = before;
            let (ns, event) = self
                .reader
                .read_resolved_event()
                .map_err(|e| SoapError::new(Code::INVALID_XML, format!("malformed XML near byte {before}: {e}")))?;
            let ns = ns_str(&ns);
            match event {
                Event::DocType(_) => {
                    return Err(SoapError::new(
                        Code::INVALID_XML,
                        "DOCTYPE declarations are not allowed in X-Road messages",
                    ));
                }
                Event::Decl(_) | Event::Comment(_) | Event::PI(_) => {}
                Event::Start(e) => {
                    let (name, prefix, attrs) = self.element_info(&e)?;
                    self.depth += 1;
                    if self.depth > self.limits.max_depth {
                        return Err(invalid_soap(format!(
                            "the message is nested deeper than {} elements",
                            self.limits.max_depth
                        )));
                    }
                    self.start(ns.as_deref(), &name, &prefix, &attrs, before, false)?;
                }
                Event::Empty(e) => {
                    let (name, prefix, attrs) = self.element_info(&e)?;
                    self.depth += 1;
                    self.start(ns.as_deref(), &name, &prefix, &attrs, before, true)?;
                    self.end(&name)?;
                    self.depth -= 1;
                }
                Event::End(e) => {
                    let name = e.local_name().into_inner().to_owned();
                    self.end(&name)?;
                    self.depth -= 1;
                }
                Event::Text(t) => {
                    let s = t.xml10_content();
                    self.text_content(&s)?;
                }
                Event::CData(c) => {
                    let s = c.xml10_content();
                    self.text_content(&s)?;
                }
                Event::GeneralRef(r) => {
                    let resolved = match r.resolve_char_ref() {
                        Ok(Some(ch)) => ch.to_string(),
                        Ok(None) => match r.xml10_content().as_ref() {
                            "lt" => "<".into(),
                            "gt" => ">".into(),
                            "amp" => "&".into(),
                            "quot" => "\"".into(),
                            "apos" => "'".into(),
                            other => {
                                return Err(SoapError::new(
                                    Code::INVALID_XML,
                                    format!("undeclared entity '&{other};'; entities are not allowed"),
                                ));
                            }
                        },
                        Err(e) => {
                            return Err(SoapError::new(Code::INVALID_XML, format!("bad character reference: {e}")));
                        }
                    };
                    self.text_content(&resolved)?;
                }
                Event::Eof => break,
            }
        }
        if self.at == Where::Prolog {
            return Err(invalid_soap("the message has no root element"));
        }
        if !self.seen_body {
            return Err(SoapError::new(Code::MISSING_BODY, "malformed SOAP message: body missing"));
        }
        if self.is_fault {
            let f = std::mem::take(&mut self.fault);
            return Ok(Parsed::Fault(Fault {
                code: f.code.trim().to_owned(),
                string: f.string.trim().to_owned(),
                actor: f.actor.trim().to_owned(),
                detail: f.detail.trim().to_owned(),
            }));
        }
        if !self.seen_header {
            return Err(SoapError::new(Code::MISSING_HEADER, "malformed SOAP message: header missing"));
        }
        if self.body_children != 1 {
            return Err(SoapError::new(
                Code::INVALID_BODY,
                format!(
                    "malformed SOAP message: body must have exactly one child element, found {}",
                    self.body_children
                ),
            ));
        }
        Ok(Parsed::Message(std::mem::take(&mut self.header)))
    }

    fn element_info(&self, e: &BytesStart<'_>) -> Result<(String, String, Attrs), SoapError> {
        let name = e.local_name().into_inner().to_owned();
        let prefix = e.name().prefix().map(|p| format!("{}:", p.into_inner())).unwrap_or_default();
        let mut attrs = Vec::new();
        for a in e.attributes() {
            let a =
                a.map_err(|err| SoapError::new(Code::INVALID_XML, format!("malformed attribute on <{name}>: {err}")))?;
            let (ns, local) = self.reader.resolver().resolve_attribute(a.key);
            let value = a.normalized_value(quick_xml::XmlVersion::Explicit1_0).map_err(|err| {
                SoapError::new(Code::INVALID_XML, format!("malformed attribute value on <{name}>: {err}"))
            })?;
            attrs.push((ns_str(&ns), local.into_inner().to_owned(), value.into_owned()));
        }
        Ok((name, prefix, attrs))
    }

    fn text_content(&mut self, s: &str) -> Result<(), SoapError> {
        match self.at {
            Where::Field | Where::IdField => self.text.push_str(s),
            Where::Body if self.is_fault && self.fault.current.is_some() => {
                let f = &mut self.fault;
                match f.current.as_deref() {
                    Some("faultcode") => f.code.push_str(s),
                    Some("faultstring") => f.string.push_str(s),
                    Some("faultactor") => f.actor.push_str(s),
                    Some(_) => f.detail.push_str(s),
                    None => {}
                }
            }
            Where::Prolog | Where::After if !s.trim().is_empty() => {
                return Err(invalid_soap("text outside the SOAP envelope"));
            }
            _ => {}
        }
        Ok(())
    }

    fn start(
        &mut self,
        ns: Option<&str>,
        name: &str,
        prefix: &str,
        attrs: &[(Option<String>, String, String)],
        start_pos: usize,
        _empty: bool,
    ) -> Result<(), SoapError> {
        match (self.at, self.depth) {
            (Where::Prolog, 1) => {
                if name != "Envelope" || ns != Some(SOAP_ENV_NS) {
                    return Err(invalid_soap(format!(
                        "root element is {{{}}}{name}; expected a SOAP 1.1 Envelope",
                        ns.unwrap_or("")
                    )));
                }
                self.is_rpc |= has_encoding_style(attrs);
                self.at = Where::Envelope;
            }
            (Where::Envelope, 2) => {
                if ns != Some(SOAP_ENV_NS) {
                    return Err(invalid_soap(format!("unexpected element <{name}> in the envelope")));
                }
                match name {
                    "Header" if !self.seen_header && !self.seen_body => {
                        self.seen_header = true;
                        self.at = Where::Header;
                    }
                    "Body" if !self.seen_body => {
                        self.seen_body = true;
                        self.is_rpc |= has_encoding_style(attrs);
                        self.at = Where::Body;
                        self.body_depth_start = self.depth;
                        let after_tag = self.pos();
                        self.body_range = after_tag..after_tag;
                    }
                    _ => return Err(invalid_soap(format!("unexpected element <{name}> in the envelope"))),
                }
            }
            (Where::Header, 3) => {
                if ns == Some(XROAD_NS) {
                    self.field = name.to_owned();
                    self.field_prefix = prefix.to_owned();
                    self.field_start = start_pos;
                    self.text.clear();
                    self.id = IdFields::default();
                    if matches!(name, "client" | "service" | "securityServer") {
                        self.id.object_type = attrs
                            .iter()
                            .find(|(ns, local, _)| ns.as_deref() == Some(ID_NS) && local == "objectType")
                            .map(|(_, _, v)| v.clone());
                    }
                    if name == "requestHash" {
                        self.request_hash_alg = attrs
                            .iter()
                            .find(|(ns, l, _)| ns.is_none() && l == "algorithmId")
                            .map(|(_, _, v)| v.clone());
                    }
                } else {
                    // Fields of other namespaces (representedParty, extensions) pass through.
                    self.field.clear();
                }
                self.at = Where::Field;
            }
            (Where::Field, 4) => {
                if matches!(self.field.as_str(), "client" | "service" | "securityServer") {
                    if ns != Some(ID_NS) {
                        return Err(SoapError::new(
                            Code::INVALID_XML,
                            format!("unexpected element <{name}> in header field '{}'", self.field),
                        ));
                    }
                    self.id_field = name.to_owned();
                    self.text.clear();
                }
                self.at = Where::IdField;
            }
            (Where::Field | Where::IdField, _) => {
                if matches!(self.field.as_str(), "client" | "service" | "securityServer")
                    || !self.field.is_empty() && self.depth == 4
                {
                    // Nested markup inside a simple header field (e.g. <xroad:xml><a/>) is
                    // only acceptable for fields we do not interpret.
                    if matches!(
                        self.field.as_str(),
                        "client" | "service" | "securityServer" | "id" | "protocolVersion" | "userId"
                    ) {
                        return Err(SoapError::new(
                            Code::INVALID_XML,
                            format!("unexpected element <{name}> inside header field '{}'", self.field),
                        ));
                    }
                }
            }
            (Where::Body, d) if d == self.body_depth_start + 1 => {
                self.body_children += 1;
                if self.body_children == 1 {
                    self.body_name = name.to_owned();
                    self.is_rpc |= has_encoding_style(attrs);
                    if name == "Fault" && ns == Some(SOAP_ENV_NS) {
                        self.is_fault = true;
                    }
                }
            }
            (Where::Body, d) if self.is_fault && d == self.body_depth_start + 2 => {
                self.fault.current = Some(name.to_owned());
            }
            (Where::Body, _) => {}
            (Where::Envelope | Where::Header, _) | (Where::Prolog, _) | (Where::After, _) => {
                return Err(invalid_soap(format!("unexpected element <{name}>")));
            }
        }
        Ok(())
    }

    fn end(&mut self, _name: &str) -> Result<(), SoapError> {
        match (self.at, self.depth) {
            (Where::Envelope, 1) => self.at = Where::After,
            (Where::Header, 2) => self.at = Where::Envelope,
            (Where::Body, 2) => {
                self.body_range.end = self.event_start.max(self.body_range.start);
                self.at = Where::Envelope;
            }
            (Where::Body, d) if self.is_fault && d == self.body_depth_start + 2 => self.fault.current = None,
            (Where::IdField, 4) => {
                if matches!(self.field.as_str(), "client" | "service" | "securityServer") {
                    let value = std::mem::take(&mut self.text).trim().to_owned();
                    let slot = match self.id_field.as_str() {
                        "xRoadInstance" => &mut self.id.instance,
                        "memberClass" => &mut self.id.member_class,
                        "memberCode" => &mut self.id.member_code,
                        "subsystemCode" => &mut self.id.subsystem_code,
                        "serviceCode" => &mut self.id.service_code,
                        "serviceVersion" => &mut self.id.service_version,
                        "serverCode" => &mut self.id.server_code,
                        other => {
                            return Err(SoapError::new(
                                Code::INVALID_XML,
                                format!("unexpected element <{other}> in header field '{}'", self.field),
                            ));
                        }
                    };
                    if slot.replace(value).is_some() {
                        return Err(SoapError::new(
                            Code::INVALID_XML,
                            format!("element <{}> appears twice in header field '{}'", self.id_field, self.field),
                        ));
                    }
                }
                self.at = Where::Field;
            }
            (Where::Field, 3) => {
                self.finish_field()?;
                self.at = Where::Header;
            }
            _ => {}
        }
        Ok(())
    }

    fn finish_field(&mut self) -> Result<(), SoapError> {
        let field = std::mem::take(&mut self.field);
        let text = std::mem::take(&mut self.text);
        let dup =
            || SoapError::new(Code::DUPLICATE_HEADER_FIELD, format!("header field '{field}' appears more than once"));
        let here = self.pos();
        let h = &mut self.header;
        match field.as_str() {
            "client" => {
                let id = std::mem::take(&mut self.id);
                let client = client_id(&id, "client")?;
                set(&mut h.client, client).map_err(|()| dup())?;
            }
            "service" => {
                let id = std::mem::take(&mut self.id);
                let service = service_id(&id)?;
                set(&mut h.service, service).map_err(|()| dup())?;
            }
            "securityServer" => {
                let id = std::mem::take(&mut self.id);
                let server = server_id(&id)?;
                set(&mut h.security_server, server).map_err(|()| dup())?;
            }
            "id" => {
                self.id_end = here;
                self.id_prefix = self.field_prefix.clone();
                set(&mut h.id, text.trim().to_owned()).map_err(|()| dup())?;
            }
            "userId" => {
                set(&mut h.user_id, text.trim().to_owned()).map_err(|()| dup())?;
            }
            "issue" => {
                set(&mut h.issue, text).map_err(|()| dup())?;
            }
            "protocolVersion" => {
                set(&mut h.protocol_version, text.trim().to_owned()).map_err(|()| dup())?;
            }
            "requestHash" => {
                self.request_hash_range = Some(self.field_start..here);
                let algorithm = self.request_hash_alg.take().unwrap_or_default();
                if h.request_hash.replace(RequestHash { algorithm, value: text.trim().to_owned() }).is_some() {
                    return Err(dup());
                }
            }
            _ => {}
        }
        Ok(())
    }
}

fn set<T>(slot: &mut Option<T>, value: T) -> Result<(), ()> {
    match slot.replace(value) {
        Some(_) => Err(()),
        None => Ok(()),
    }
}

fn ns_str(ns: &ResolveResult<'_>) -> Option<String> {
    match ns {
        ResolveResult::Bound(Namespace(n)) => Some((*n).to_owned()),
        _ => None,
    }
}

fn has_encoding_style(attrs: &[(Option<String>, String, String)]) -> bool {
    attrs.iter().any(|(ns, local, _)| ns.as_deref() == Some(SOAP_ENV_NS) && local == "encodingStyle")
}

fn id_err(field: &str, e: IdError) -> SoapError {
    SoapError::new(Code::INVALID_CLIENT_IDENTIFIER, format!("header field '{field}': {e}"))
}

fn required<'a>(v: &'a Option<String>, field: &str, part: &str) -> Result<&'a str, SoapError> {
    v.as_deref().ok_or_else(|| SoapError::new(Code::INVALID_XML, format!("header field '{field}' lacks <id:{part}>")))
}

fn client_id(id: &IdFields, field: &str) -> Result<ClientId, SoapError> {
    let instance = required(&id.instance, field, "xRoadInstance")?;
    let class = required(&id.member_class, field, "memberClass")?;
    let code = required(&id.member_code, field, "memberCode")?;
    match (id.object_type.as_deref(), &id.subsystem_code) {
        (Some("MEMBER"), None) => ClientId::member(instance, class, code).map_err(|e| id_err(field, e)),
        (Some("SUBSYSTEM"), Some(sub)) => ClientId::subsystem(instance, class, code, sub).map_err(|e| id_err(field, e)),
        (Some("MEMBER"), Some(_)) => Err(SoapError::new(
            Code::INVALID_CLIENT_IDENTIFIER,
            format!("header field '{field}' is a MEMBER but has a subsystemCode"),
        )),
        (Some("SUBSYSTEM"), None) => Err(SoapError::new(
            Code::INVALID_CLIENT_IDENTIFIER,
            format!("header field '{field}' is a SUBSYSTEM without a subsystemCode"),
        )),
        (Some(other), _) => Err(SoapError::new(
            Code::INVALID_XML,
            format!("header field '{field}' has objectType {other:?}; expected MEMBER or SUBSYSTEM"),
        )),
        (None, _) => {
            Err(SoapError::new(Code::INVALID_XML, format!("header field '{field}' lacks the id:objectType attribute")))
        }
    }
}

fn service_id(id: &IdFields) -> Result<ServiceId, SoapError> {
    match id.object_type.as_deref() {
        Some("SERVICE") => {}
        Some(other) => {
            return Err(SoapError::new(
                Code::INVALID_XML,
                format!("header field 'service' has objectType {other:?}; expected SERVICE"),
            ));
        }
        None => {
            return Err(SoapError::new(Code::INVALID_XML, "header field 'service' lacks the id:objectType attribute"));
        }
    }
    let instance = required(&id.instance, "service", "xRoadInstance")?;
    let class = required(&id.member_class, "service", "memberClass")?;
    let code = required(&id.member_code, "service", "memberCode")?;
    let service_code = required(&id.service_code, "service", "serviceCode")?;
    let provider = match &id.subsystem_code {
        Some(sub) => ClientId::subsystem(instance, class, code, sub),
        None => ClientId::member(instance, class, code),
    }
    .map_err(|e| id_err("service", e))?;
    ServiceId::new(provider, service_code, id.service_version.as_deref()).map_err(|e| id_err("service", e))
}

fn server_id(id: &IdFields) -> Result<SecurityServerId, SoapError> {
    if id.object_type.as_deref() != Some("SERVER") {
        return Err(SoapError::new(Code::INVALID_XML, "header field 'securityServer' must have objectType SERVER"));
    }
    let instance = required(&id.instance, "securityServer", "xRoadInstance")?;
    let class = required(&id.member_class, "securityServer", "memberClass")?;
    let code = required(&id.member_code, "securityServer", "memberCode")?;
    let server = required(&id.server_code, "securityServer", "serverCode")?;
    ClientId::member(instance, class, code)
        .and_then(|owner| SecurityServerId::new(owner, server))
        .map_err(|e| id_err("securityServer", e))
}

/// Writes an X-Road request envelope; used by the demo and tests to build
/// messages an information system would send.
pub fn build_request(
    client: &ClientId,
    service: &ServiceId,
    id: &str,
    user_id: Option<&str>,
    body_inner: &str,
) -> String {
    use crate::fault::escape_text as e;
    let mut s = String::new();
    s.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    s.push_str("<SOAP-ENV:Envelope xmlns:SOAP-ENV=\"http://schemas.xmlsoap.org/soap/envelope/\" xmlns:xroad=\"http://x-road.eu/xsd/xroad.xsd\" xmlns:id=\"http://x-road.eu/xsd/identifiers\">\n");
    s.push_str("  <SOAP-ENV:Header>\n");
    s.push_str(&id_xml("client", client.object_type(), client, None, None));
    let p = service.provider();
    s.push_str(&id_xml("service", "SERVICE", p, Some(service.service_code()), service.version()));
    if let Some(u) = user_id {
        s.push_str(&format!("    <xroad:userId>{}</xroad:userId>\n", e(u)));
    }
    s.push_str(&format!("    <xroad:id>{}</xroad:id>\n", e(id)));
    s.push_str("    <xroad:protocolVersion>4.0</xroad:protocolVersion>\n");
    s.push_str("  </SOAP-ENV:Header>\n  <SOAP-ENV:Body>\n");
    s.push_str(body_inner);
    s.push_str("\n  </SOAP-ENV:Body>\n</SOAP-ENV:Envelope>\n");
    s
}

fn id_xml(field: &str, ty: &str, c: &ClientId, service: Option<&str>, version: Option<&str>) -> String {
    use crate::fault::escape_text as e;
    let mut s = format!("    <xroad:{field} id:objectType=\"{ty}\">\n");
    s.push_str(&format!("      <id:xRoadInstance>{}</id:xRoadInstance>\n", e(c.instance())));
    s.push_str(&format!("      <id:memberClass>{}</id:memberClass>\n", e(c.member_class())));
    s.push_str(&format!("      <id:memberCode>{}</id:memberCode>\n", e(c.member_code())));
    if let Some(sub) = c.subsystem_code() {
        s.push_str(&format!("      <id:subsystemCode>{}</id:subsystemCode>\n", e(sub)));
    }
    if let Some(code) = service {
        s.push_str(&format!("      <id:serviceCode>{}</id:serviceCode>\n", e(code)));
    }
    if let Some(v) = version {
        s.push_str(&format!("      <id:serviceVersion>{}</id:serviceVersion>\n", e(v)));
    }
    s.push_str(&format!("    </xroad:{field}>\n"));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(body: &str) -> String {
        let client = ClientId::member("JP", "GOV", "123").unwrap();
        let service =
            ServiceId::new(ClientId::subsystem("JP", "COM", "456", "home").unwrap(), "getTemp", None).unwrap();
        build_request(&client, &service, "q-1", Some("JP:care"), body)
    }

    fn code_of(bytes: &[u8]) -> &'static str {
        match parse(bytes, Direction::Request, &Limits::default()) {
            Ok(_) => "ok",
            Err(e) => e.code.0,
        }
    }

    #[test]
    fn parses_built_request() {
        let xml = request("<getTemp/>");
        let Soap::Message(m) = parse(xml.as_bytes(), Direction::Request, &Limits::default()).unwrap() else {
            panic!("fault")
        };
        assert_eq!(m.header().service.to_string(), "SERVICE:JP/COM/456/home/getTemp");
        assert_eq!(m.header().user_id.as_deref(), Some("JP:care"));
        assert_eq!(m.as_bytes(), xml.as_bytes());
    }

    #[test]
    fn rejects_doctype_and_entities() {
        let xml = request("<getTemp/>");
        let with_doctype = xml.replacen("?>", "?><!DOCTYPE lol [<!ENTITY a \"aaaa\">]>", 1);
        assert_eq!(code_of(with_doctype.as_bytes()), "invalid_xml");
        let with_entity = request("<getTemp>&a;</getTemp>");
        assert_eq!(code_of(with_entity.as_bytes()), "invalid_xml");
    }

    #[test]
    fn rejects_too_deep_and_too_large() {
        let deep = request(&format!("<getTemp>{}{}</getTemp>", "<a>".repeat(10_000), "</a>".repeat(10_000)));
        assert_eq!(code_of(deep.as_bytes()), "invalid_soap");
        let small = Limits { max_bytes: 100, ..Limits::default() };
        let xml = request("<getTemp/>");
        assert_eq!(parse(xml.as_bytes(), Direction::Request, &small).unwrap_err().code, Code::INVALID_SOAP);
    }

    #[test]
    fn rejects_malformed_xml_and_trailing_elements() {
        assert_eq!(code_of(b"<SOAP-ENV:Envelope"), "invalid_xml");
        let xml = request("<getTemp/>") + "<extra/>";
        assert_ne!(code_of(xml.as_bytes()), "ok");
        assert_eq!(code_of(b"\xff\xfe<a/>"), "invalid_xml");
    }

    #[test]
    fn removes_the_body_content_for_metadata_only_logging() {
        let mut bytes = b"\xEF\xBB\xBF".to_vec();
        bytes.extend_from_slice(request("<getTemp><secret>36.6</secret></getTemp>").as_bytes());
        let Soap::Message(m) = parse(&bytes, Direction::Request, &Limits::default()).unwrap() else { panic!() };
        let stripped = String::from_utf8(m.without_body()).unwrap();
        assert!(!stripped.contains("secret"), "{stripped}");
        assert!(
            stripped.contains("<xroad:id>q-1</xroad:id>") && stripped.contains("<SOAP-ENV:Body></SOAP-ENV:Body>"),
            "{stripped}"
        );
    }

    /// Fuzzing finding (soap, crash-4bb13bb2): after two byte-order marks,
    /// the request hash went 3 bytes early into the response (`</xroad:<xroad:requestHash…`).
    #[test]
    fn fuzz_soap_4bb13bb2_a_second_byte_order_mark_is_refused() {
        let mut bytes = b"\xEF\xBB\xBF\xEF\xBB\xBF".to_vec();
        bytes.extend_from_slice(request("<getTemp/>").as_bytes());
        assert_eq!(code_of(&bytes), "invalid_xml");
        let mut once = b"\xEF\xBB\xBF".to_vec();
        once.extend_from_slice(request("<getTempResponse/>").as_bytes());
        let Soap::Message(m) = parse(&once, Direction::Response, &Limits::default()).unwrap() else { panic!() };
        let stamped = m.with_request_hash("SHA-512", "aGFzaA==");
        assert!(
            parse(&stamped, Direction::Response, &Limits::default()).is_ok(),
            "{}",
            String::from_utf8_lossy(&stamped)
        );
    }

    #[test]
    fn accepts_utf8_bom() {
        let mut bytes = b"\xEF\xBB\xBF".to_vec();
        bytes.extend_from_slice(request("<getTemp/>").as_bytes());
        assert_eq!(code_of(&bytes), "ok");
    }
}
