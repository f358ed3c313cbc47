//! WSDL 1.1 for X-Road services: generation (for the adapter's services)
//! and parsing ([`parse`]: operations → service codes, versions and titles,
//! with line-numbered errors) for service descriptions added to a security
//! server.
//!
//! Generated documents follow the shape X-Road's own example services use:
//! document/literal, one request and one response element per operation,
//! the X-Road header fields (`client`, `service`, `id`, `userId`,
//! `protocolVersion`) declared as SOAP headers of every operation, and an
//! `xrd:version` per operation.

mod parse;

pub use parse::{MAX_DEPTH, MAX_OPERATIONS, MAX_WSDL_BYTES, Parsed, ParsedOperation, WsdlError, parse};

/// X-Road's schema namespace.
pub const XROAD_NS: &str = "http://x-road.eu/xsd/xroad.xsd";

/// A schema type of an element.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Type {
    /// `xs:string`.
    String,
    /// `xs:boolean`.
    Boolean,
    /// A named complex type of the service's schema.
    Named(String),
}

/// One element inside a complex type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    /// Element name.
    pub name: String,
    /// Its type.
    pub ty: Type,
    /// Least occurrences.
    pub min: u32,
    /// Most occurrences (`None`: unbounded).
    pub max: Option<u32>,
}

impl Field {
    /// A field occurring exactly once.
    pub fn one(name: &str, ty: Type) -> Self {
        Self { name: name.into(), ty, min: 1, max: Some(1) }
    }
    /// A field occurring any number of times.
    pub fn many(name: &str, ty: Type) -> Self {
        Self { name: name.into(), ty, min: 0, max: None }
    }
    /// An optional field.
    pub fn optional(name: &str, ty: Type) -> Self {
        Self { name: name.into(), ty, min: 0, max: Some(1) }
    }
}

/// A complex type: a sequence of fields, some attributes, and optionally text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComplexType {
    /// Type name.
    pub name: String,
    /// Child elements in order.
    pub fields: Vec<Field>,
    /// Optional string attributes.
    pub attributes: Vec<String>,
    /// The element holds text besides its attributes (simple content).
    pub text: bool,
}

/// One operation (= X-Road service code).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operation {
    /// Name (the service code).
    pub name: String,
    /// What it does.
    pub doc: String,
    /// Request element content.
    pub input: Vec<Field>,
    /// Response element content.
    pub output: Vec<Field>,
}

/// A whole service description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Description {
    /// Service name.
    pub name: String,
    /// Target namespace of the messages.
    pub namespace: String,
    /// Service version (`xrd:version`), e.g. `v1`.
    pub version: String,
    /// Where the provider listens.
    pub address: String,
    /// Complex types used by the operations.
    pub types: Vec<ComplexType>,
    /// The operations.
    pub operations: Vec<Operation>,
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn type_ref(t: &Type) -> String {
    match t {
        Type::String => "xs:string".into(),
        Type::Boolean => "xs:boolean".into(),
        Type::Named(n) => format!("tns:{}", esc(n)),
    }
}

fn sequence(out: &mut String, fields: &[Field], indent: &str) {
    out.push_str(&format!("{indent}<xs:sequence>\n"));
    for f in fields {
        let max = f.max.map_or_else(|| "unbounded".to_string(), |m| m.to_string());
        out.push_str(&format!(
            "{indent}  <xs:element name=\"{}\" type=\"{}\" minOccurs=\"{}\" maxOccurs=\"{max}\"/>\n",
            esc(&f.name),
            type_ref(&f.ty),
            f.min
        ));
    }
    out.push_str(&format!("{indent}</xs:sequence>\n"));
}

/// Writes the WSDL document.
pub fn generate(d: &Description) -> String {
    let mut s = String::with_capacity(8192);
    s.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    s.push_str(&format!(
        "<wsdl:definitions xmlns:wsdl=\"http://schemas.xmlsoap.org/wsdl/\" xmlns:soap=\"http://schemas.xmlsoap.org/wsdl/soap/\" xmlns:xs=\"http://www.w3.org/2001/XMLSchema\" xmlns:xrd=\"{XROAD_NS}\" xmlns:tns=\"{ns}\" name=\"{name}\" targetNamespace=\"{ns}\">\n",
        ns = esc(&d.namespace),
        name = esc(&d.name)
    ));
    s.push_str("  <wsdl:types>\n");
    s.push_str(&format!(
        "    <xs:schema elementFormDefault=\"qualified\" targetNamespace=\"{}\">\n      <xs:import namespace=\"{XROAD_NS}\" schemaLocation=\"http://x-road.eu/xsd/xroad.xsd\"/>\n",
        esc(&d.namespace)
    ));
    for t in &d.types {
        s.push_str(&format!("      <xs:complexType name=\"{}\">\n", esc(&t.name)));
        if t.text {
            s.push_str("        <xs:simpleContent>\n          <xs:extension base=\"xs:string\">\n");
            for a in &t.attributes {
                s.push_str(&format!("            <xs:attribute name=\"{}\" type=\"xs:string\"/>\n", esc(a)));
            }
            s.push_str("          </xs:extension>\n        </xs:simpleContent>\n");
        } else {
            sequence(&mut s, &t.fields, "        ");
            for a in &t.attributes {
                s.push_str(&format!("        <xs:attribute name=\"{}\" type=\"xs:string\"/>\n", esc(a)));
            }
        }
        s.push_str("      </xs:complexType>\n");
    }
    for op in &d.operations {
        for (suffix, fields) in [("", &op.input), ("Response", &op.output)] {
            s.push_str(&format!("      <xs:element name=\"{}{suffix}\">\n        <xs:complexType>\n", esc(&op.name)));
            sequence(&mut s, fields, "          ");
            s.push_str("        </xs:complexType>\n      </xs:element>\n");
        }
    }
    s.push_str("    </xs:schema>\n  </wsdl:types>\n");
    s.push_str("  <wsdl:message name=\"requestheader\">\n");
    for h in ["client", "service", "userId", "id", "protocolVersion"] {
        s.push_str(&format!("    <wsdl:part name=\"{h}\" element=\"xrd:{h}\"/>\n"));
    }
    s.push_str("  </wsdl:message>\n");
    for op in &d.operations {
        let n = esc(&op.name);
        s.push_str(&format!(
            "  <wsdl:message name=\"{n}\">\n    <wsdl:part name=\"body\" element=\"tns:{n}\"/>\n  </wsdl:message>\n  <wsdl:message name=\"{n}Response\">\n    <wsdl:part name=\"body\" element=\"tns:{n}Response\"/>\n  </wsdl:message>\n"
        ));
    }
    let port_type = format!("{}PortType", esc(&d.name));
    s.push_str(&format!("  <wsdl:portType name=\"{port_type}\">\n"));
    for op in &d.operations {
        let n = esc(&op.name);
        s.push_str(&format!(
            "    <wsdl:operation name=\"{n}\">\n      <wsdl:documentation>{}</wsdl:documentation>\n      <wsdl:input message=\"tns:{n}\"/>\n      <wsdl:output message=\"tns:{n}Response\"/>\n    </wsdl:operation>\n",
            esc(&op.doc)
        ));
    }
    s.push_str("  </wsdl:portType>\n");
    let binding = format!("{}Binding", esc(&d.name));
    s.push_str(&format!(
        "  <wsdl:binding name=\"{binding}\" type=\"tns:{port_type}\">\n    <soap:binding style=\"document\" transport=\"http://schemas.xmlsoap.org/soap/http\"/>\n"
    ));
    for op in &d.operations {
        let n = esc(&op.name);
        s.push_str(&format!(
            "    <wsdl:operation name=\"{n}\">\n      <soap:operation soapAction=\"\" style=\"document\"/>\n      <xrd:version>{}</xrd:version>\n",
            esc(&d.version)
        ));
        for dir in ["input", "output"] {
            s.push_str(&format!("      <wsdl:{dir}>\n        <soap:body use=\"literal\"/>\n"));
            for h in ["client", "service", "userId", "id", "protocolVersion"] {
                s.push_str(&format!(
                    "        <soap:header message=\"tns:requestheader\" part=\"{h}\" use=\"literal\"/>\n"
                ));
            }
            s.push_str(&format!("      </wsdl:{dir}>\n"));
        }
        s.push_str("    </wsdl:operation>\n");
    }
    s.push_str("  </wsdl:binding>\n");
    s.push_str(&format!(
        "  <wsdl:service name=\"{name}\">\n    <wsdl:port name=\"{name}Port\" binding=\"tns:{binding}\">\n      <soap:address location=\"{}\"/>\n    </wsdl:port>\n  </wsdl:service>\n</wsdl:definitions>\n",
        esc(&d.address),
        name = esc(&d.name)
    ));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_wsdl_declares_each_operation_with_xroad_headers() {
        let d = Description {
            name: "home".into(),
            namespace: "urn:example".into(),
            version: "v1".into(),
            address: "http://127.0.0.1:8090/".into(),
            types: vec![ComplexType {
                name: "Value".into(),
                fields: vec![],
                attributes: vec!["unit".into()],
                text: true,
            }],
            operations: vec![Operation {
                name: "getThing".into(),
                doc: "reads <a> thing".into(),
                input: vec![Field::one("deviceId", Type::String)],
                output: vec![Field::many("value", Type::Named("Value".into()))],
            }],
        };
        let w = generate(&d);
        assert!(w.contains("<xs:element name=\"getThing\">"));
        assert!(w.contains("<xs:element name=\"getThingResponse\">"));
        assert!(w.contains("type=\"tns:Value\" minOccurs=\"0\" maxOccurs=\"unbounded\""));
        assert!(w.contains("<xrd:version>v1</xrd:version>"));
        assert!(w.contains("reads &lt;a&gt; thing"));
        assert_eq!(w.matches("part=\"client\"").count(), 2);
        assert!(w.contains("<soap:address location=\"http://127.0.0.1:8090/\"/>"));
        // What is generated reads back as the services it describes.
        let parsed = parse(w.as_bytes()).unwrap();
        assert_eq!(
            parsed.operations,
            [ParsedOperation { code: "getThing".into(), version: Some("v1".into()), title: None }]
        );
        assert_eq!(parsed.address.as_deref(), Some("http://127.0.0.1:8090/"));
    }
}
