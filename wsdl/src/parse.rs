//! Reading a provider's WSDL 1.1 the way X-Road's security server does when
//! a service description is added: each operation of a SOAP 1.1 binding is
//! a service (its name the service code, its `xrd:version` the version, its
//! `xrd:title` the title), and the first `soap:address` of a port is the
//! provider's URL.
//!
//! Input is bounded ([`MAX_WSDL_BYTES`], [`MAX_DEPTH`]); DOCTYPE declarations
//! are refused (no entity expansion); every error names the line.

use quick_xml::NsReader;
use quick_xml::events::Event;
use quick_xml::name::ResolveResult;

/// Largest WSDL document read, bytes.
pub const MAX_WSDL_BYTES: usize = 10 * 1024 * 1024;
/// Deepest element nesting accepted.
pub const MAX_DEPTH: usize = 64;
/// Most operations in one document.
pub const MAX_OPERATIONS: usize = 10_000;

const WSDL_NS: &str = "http://schemas.xmlsoap.org/wsdl/";
const SOAP11_NS: &str = "http://schemas.xmlsoap.org/wsdl/soap/";

/// Why a WSDL document cannot be used: the line and the problem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {problem}")]
pub struct WsdlError {
    /// 1-based line of the input where the problem is.
    pub line: usize,
    /// What is wrong, with a hint.
    pub problem: String,
}

/// One service found in the WSDL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedOperation {
    /// The operation name: the X-Road service code.
    pub code: String,
    /// `xrd:version`, when given.
    pub version: Option<String>,
    /// `xrd:title`, when given.
    pub title: Option<String>,
}

/// What a WSDL offers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    /// Services, in document order (each code and version once).
    pub operations: Vec<ParsedOperation>,
    /// The first `soap:address` location of the document's ports.
    pub address: Option<String>,
}

#[derive(Default)]
struct Binding {
    soap11: bool,
    operations: Vec<(ParsedOperation, usize)>,
}

/// Reads a WSDL 1.1 document.
pub fn parse(bytes: &[u8]) -> Result<Parsed, WsdlError> {
    let line_at = |pos: usize| bytes[..pos.min(bytes.len())].iter().filter(|b| **b == b'\n').count() + 1;
    let err = |pos: usize, problem: String| WsdlError { line: line_at(pos), problem };
    if bytes.len() > MAX_WSDL_BYTES {
        return Err(err(0, format!("the document is {} bytes; at most {MAX_WSDL_BYTES} are read", bytes.len())));
    }
    let text = std::str::from_utf8(bytes).map_err(|e| err(e.valid_up_to(), "the document is not UTF-8".into()))?;
    let mut reader = NsReader::from_str(text);
    reader.config_mut().check_end_names = true;
    // (namespace, local name) of each open element.
    let mut stack: Vec<(String, String)> = Vec::new();
    let mut bindings: Vec<Binding> = Vec::new();
    let mut current: Option<(ParsedOperation, usize)> = None;
    let mut text_of: Option<&'static str> = None;
    let mut text_buf = String::new();
    let mut address = None;
    let mut seen_root = false;
    let mut operations = 0usize;
    loop {
        let pos = reader.buffer_position() as usize;
        let (ns, event) = match reader.read_resolved_event() {
            Ok(x) => x,
            Err(e) => {
                let problem = format!("not well-formed XML: {e}");
                return Err(err(reader.error_position() as usize, problem));
            }
        };
        let ns = match ns {
            ResolveResult::Bound(n) => n.into_inner().to_owned(),
            _ => String::new(),
        };
        match event {
            Event::DocType(_) => return Err(err(pos, "DOCTYPE declarations are not allowed in a WSDL".into())),
            Event::Start(ref e) | Event::Empty(ref e) => {
                let empty = matches!(event, Event::Empty(_));
                let local = e.local_name().into_inner().to_owned();
                if !seen_root {
                    seen_root = true;
                    if ns != WSDL_NS || local != "definitions" {
                        return Err(err(
                            pos,
                            format!("the root is <{local}>, not WSDL 1.1's <definitions> ({WSDL_NS})"),
                        ));
                    }
                }
                if stack.len() >= MAX_DEPTH {
                    return Err(err(pos, format!("elements are nested deeper than {MAX_DEPTH}")));
                }
                let attr = |name: &str| -> Result<Option<String>, WsdlError> {
                    for a in e.attributes() {
                        let a = a.map_err(|e| err(pos, format!("bad attribute: {e}")))?;
                        if a.key.local_name().into_inner() == name {
                            let v = a
                                .normalized_value(quick_xml::XmlVersion::Explicit1_0)
                                .map_err(|e| err(pos, format!("bad attribute value: {e}")))?;
                            return Ok(Some(v.into_owned()));
                        }
                    }
                    Ok(None)
                };
                let parent = stack.last().map(|(n, l)| (n.as_str(), l.as_str()));
                let in_definitions = stack.len() == 1;
                match (ns.as_str(), local.as_str(), parent) {
                    (WSDL_NS, "binding", _) if in_definitions => bindings.push(Binding::default()),
                    (SOAP11_NS, "binding", Some((WSDL_NS, "binding"))) => {
                        if let Some(b) = bindings.last_mut() {
                            b.soap11 = true;
                        }
                    }
                    (WSDL_NS, "operation", Some((WSDL_NS, "binding"))) if stack.len() == 2 => {
                        let code = attr("name")?.unwrap_or_default();
                        check_code(&code).map_err(|p| err(pos, p))?;
                        operations += 1;
                        if operations > MAX_OPERATIONS {
                            return Err(err(pos, format!("more than {MAX_OPERATIONS} operations")));
                        }
                        current = Some((ParsedOperation { code, version: None, title: None }, pos));
                    }
                    (crate::XROAD_NS, "version", Some((WSDL_NS, "operation"))) if current.is_some() => {
                        text_of = Some("version");
                    }
                    (crate::XROAD_NS, "title", Some((WSDL_NS, "operation"))) if current.is_some() => {
                        text_of = Some("title");
                    }
                    (SOAP11_NS, "address", Some((WSDL_NS, "port"))) if address.is_none() => {
                        address = attr("location")?.filter(|l| !l.trim().is_empty());
                    }
                    _ => {}
                }
                text_buf.clear();
                if empty {
                    // An empty element closes at once.
                    close(&ns, &local, stack.len(), &mut current, &mut text_of, &text_buf, &mut bindings, pos, &err)?;
                } else {
                    stack.push((ns, local));
                }
            }
            Event::Text(t) if text_of.is_some() => text_buf.push_str(&t.xml10_content()),
            Event::GeneralRef(_) if text_of.is_some() => {
                return Err(err(pos, "entity references are not allowed in xrd:version or xrd:title".into()));
            }
            Event::End(_) => {
                let Some((ns, local)) = stack.pop() else { return Err(err(pos, "unbalanced end tag".into())) };
                close(&ns, &local, stack.len(), &mut current, &mut text_of, &text_buf, &mut bindings, pos, &err)?;
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if !seen_root {
        return Err(err(bytes.len(), "the document is empty".into()));
    }
    let soap: Vec<&Binding> = bindings.iter().filter(|b| b.soap11).collect();
    if soap.is_empty() {
        return Err(err(
            bytes.len(),
            "the WSDL has no SOAP 1.1 binding (soap:binding); X-Road services need one".into(),
        ));
    }
    let mut out: Vec<ParsedOperation> = Vec::new();
    for b in soap {
        let mut seen: Vec<(&str, Option<&str>)> = Vec::new();
        for (op, pos) in &b.operations {
            let key = (op.code.as_str(), op.version.as_deref());
            if seen.contains(&key) {
                return Err(err(
                    *pos,
                    format!("operation {} (version {:?}) appears twice in one binding", op.code, op.version),
                ));
            }
            seen.push(key);
            // The same operation in another SOAP binding is the same service.
            if !out.iter().any(|o| o.code == op.code && o.version == op.version) {
                out.push(op.clone());
            }
        }
    }
    if out.is_empty() {
        return Err(err(bytes.len(), "the SOAP binding declares no operations".into()));
    }
    Ok(Parsed { operations: out, address })
}

/// Handles the end of an element.
#[allow(clippy::too_many_arguments)]
fn close(
    ns: &str,
    local: &str,
    depth: usize,
    current: &mut Option<(ParsedOperation, usize)>,
    text_of: &mut Option<&'static str>,
    text: &str,
    bindings: &mut [Binding],
    pos: usize,
    err: &dyn Fn(usize, String) -> WsdlError,
) -> Result<(), WsdlError> {
    match (ns, local) {
        (crate::XROAD_NS, "version" | "title") if text_of.is_some() => {
            let value = text.trim().to_string();
            if let Some((op, _)) = current.as_mut() {
                if text_of == &Some("version") {
                    if value.is_empty() || value.len() > 255 || value.chars().any(|c| c.is_control() || c == '/') {
                        return Err(err(pos, format!("xrd:version {value:?} is not a service version")));
                    }
                    op.version = Some(value);
                } else {
                    op.title = Some(value);
                }
            }
            *text_of = None;
        }
        (WSDL_NS, "operation") if depth == 2 => {
            if let (Some(op), Some(b)) = (current.take(), bindings.last_mut()) {
                b.operations.push(op);
            }
        }
        _ => {}
    }
    Ok(())
}

/// X-Road's rules for a service code: not empty, no `/`, no control characters.
fn check_code(code: &str) -> Result<(), String> {
    if code.trim().is_empty() {
        return Err("an operation has no name; its name is the service code".into());
    }
    if code.len() > 255 || code.chars().any(|c| c.is_control() || c == '/' || c.is_whitespace()) {
        return Err(format!("operation name {code:?} cannot be a service code (no spaces, '/' or control characters)"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An X-Road example service, as providers write them.
    fn example(extra_binding: &str) -> String {
        format!(
            r#"<?xml version="1.0" encoding="UTF-8"?>
<wsdl:definitions xmlns:wsdl="http://schemas.xmlsoap.org/wsdl/"
    xmlns:soap="http://schemas.xmlsoap.org/wsdl/soap/"
    xmlns:xrd="http://x-road.eu/xsd/xroad.xsd" xmlns:tns="http://test.x-road.fi/producer"
    name="testService" targetNamespace="http://test.x-road.fi/producer">
  <wsdl:portType name="testServicePortType">
    <wsdl:operation name="getRandom"/>
  </wsdl:portType>
  <wsdl:binding name="testServiceBinding" type="tns:testServicePortType">
    <soap:binding style="document" transport="http://schemas.xmlsoap.org/soap/http"/>
    <wsdl:operation name="getRandom">
      <soap:operation soapAction="" style="document"/>
      <xrd:version>v1</xrd:version>
      <xrd:title xml:lang="en">Random number</xrd:title>
    </wsdl:operation>
    <wsdl:operation name="helloService">
      <soap:operation soapAction="" style="document"/>
      <xrd:version>v1</xrd:version>
    </wsdl:operation>
  </wsdl:binding>
  {extra_binding}
  <wsdl:service name="testService">
    <wsdl:port binding="tns:testServiceBinding" name="testServicePort">
      <soap:address location="http://example.org/xroad-endpoint"/>
    </wsdl:port>
  </wsdl:service>
</wsdl:definitions>
"#
        )
    }

    #[test]
    fn reads_operations_versions_titles_and_the_address() {
        let p = parse(example("").as_bytes()).unwrap();
        assert_eq!(
            p.operations,
            [
                ParsedOperation {
                    code: "getRandom".into(),
                    version: Some("v1".into()),
                    title: Some("Random number".into())
                },
                ParsedOperation { code: "helloService".into(), version: Some("v1".into()), title: None },
            ]
        );
        assert_eq!(p.address.as_deref(), Some("http://example.org/xroad-endpoint"));
    }

    #[test]
    fn ignores_bindings_that_are_not_soap_1_1_and_merges_repeated_ones() {
        let http = r#"<wsdl:binding name="http" type="tns:x"><wsdl:operation name="viaHttp"/></wsdl:binding>"#;
        let p = parse(example(http).as_bytes()).unwrap();
        assert_eq!(p.operations.len(), 2, "the HTTP binding's operation is not a service");
        let again = r#"<wsdl:binding name="b2" type="tns:x"><soap:binding style="document"/>
            <wsdl:operation name="getRandom"><xrd:version>v1</xrd:version></wsdl:operation></wsdl:binding>"#;
        assert_eq!(parse(example(again).as_bytes()).unwrap().operations.len(), 2);
    }

    #[test]
    fn errors_name_the_line() {
        let broken = example("").replace("</wsdl:binding>", "</wsdl:bindin>");
        let e = parse(broken.as_bytes()).unwrap_err();
        assert_eq!(e.line, 20, "{e}");
        assert!(e.problem.contains("not well-formed"), "{e}");

        let twice = example("").replace("helloService", "getRandom");
        let e = parse(twice.as_bytes()).unwrap_err();
        assert!(e.problem.contains("appears twice"), "{e}");
        assert_eq!(e.line, 16, "{e}");

        let spaced = example("").replace("\"helloService\"", "\"hello service\"");
        let e = parse(spaced.as_bytes()).unwrap_err();
        assert!(e.problem.contains("cannot be a service code") && e.line == 16, "{e}");

        let e = parse(b"<definitions/>").unwrap_err();
        assert!(e.problem.contains("not WSDL 1.1"), "{e}");
        let e = parse(b"<?xml version=\"1.0\"?>\n<!DOCTYPE x [<!ENTITY a \"b\">]>\n<x/>").unwrap_err();
        assert_eq!((e.line, e.problem.contains("DOCTYPE")), (2, true), "{e}");
        let no_soap = example("")
            .replace("<soap:binding style=\"document\" transport=\"http://schemas.xmlsoap.org/soap/http\"/>", "");
        assert!(parse(no_soap.as_bytes()).unwrap_err().problem.contains("no SOAP 1.1 binding"));
        assert!(parse(b"").unwrap_err().problem.contains("empty"));
        assert!(parse(&vec![b' '; MAX_WSDL_BYTES + 1]).unwrap_err().problem.contains("at most"));
        let deep = format!(
            "<wsdl:definitions xmlns:wsdl=\"{WSDL_NS}\">{}{}</wsdl:definitions>",
            "<a>".repeat(MAX_DEPTH + 1),
            "</a>".repeat(MAX_DEPTH + 1)
        );
        assert!(parse(deep.as_bytes()).unwrap_err().problem.contains("nested deeper"));
    }
}
