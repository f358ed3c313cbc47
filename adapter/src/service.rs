//! The adapter's SOAP services: what the provider's security server
//! forwards to it. Operations:
//!
//! - `listDevices`: the approved devices with their type and properties;
//! - `getProperties` (`deviceId`, `property`*): named, typed values with
//!   units and the time they were read (all readable ones when none named);
//! - `setProperties` (`deviceId`, `property name="…"`+): writes, then returns
//!   the value read back (devices may clamp or ignore a value, §2.1); a set
//!   through X-Road is a remote operation, so 0x93 = 0x42 goes first where
//!   the device supports it (§5);
//! - one typed read per built-in class (`getHomeAirConditioner`, …);
//! - `registerWebhook` (`url`): INF notifications of approved devices are
//!   POSTed there, signed (see [`crate::webhook`]).
//!
//! Devices that are not approved do not exist for consumers. Every refusal
//! is a SOAP fault whose code and text say what is wrong.

use std::sync::Arc;

use musubi_protocol::Fault;
use musubi_protocol::fault::escape_text as esc;
use musubi_protocol::soap::{self, Direction, Limits, Soap, SoapMessage};
use musubi_wsdl::{ComplexType, Description, Field, Operation, Type};

use crate::controller::{Controller, RequestError};
use crate::defs::{self, Reading};
use crate::frame::Property;
use crate::registry::{Device, Registry};
use crate::webhook::Webhooks;

/// The namespace of the adapter's messages.
pub const NAMESPACE: &str = "urn:musubi:echonet:v1";

/// Most properties one request may name.
pub const MAX_PROPERTIES: usize = 64;

/// Fault codes of the adapter.
pub mod codes {
    /// The request cannot be read.
    pub const INVALID_REQUEST: &str = "invalid_request";
    /// No such operation.
    pub const UNKNOWN_OPERATION: &str = "unknown_operation";
    /// No such (approved) device.
    pub const UNKNOWN_DEVICE: &str = "unknown_device";
    /// The device has no such property.
    pub const UNKNOWN_PROPERTY: &str = "unknown_property";
    /// The property cannot be set.
    pub const READ_ONLY: &str = "read_only_property";
    /// The value is outside the property's range.
    pub const OUT_OF_RANGE: &str = "value_out_of_range";
    /// The value is not of the property's type.
    pub const INVALID_VALUE: &str = "invalid_value";
    /// The device did not answer.
    pub const UNREACHABLE: &str = "device_unreachable";
    /// The webhook URL is not allowed.
    pub const WEBHOOK_REFUSED: &str = "webhook_not_allowed";
}

fn fault(code: &str, text: impl Into<String>) -> Fault {
    Fault::new(code, text)
}

/// One element of a request body: name, `name` attribute, text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Param {
    /// Local name.
    pub element: String,
    /// The `name` attribute.
    pub name: Option<String>,
    /// Text content, trimmed.
    pub text: String,
}

/// Reads the children of the body's operation element (one level; the
/// SOAP parser has already bounded size and depth).
pub fn params(body: &[u8]) -> Result<Vec<Param>, Fault> {
    use quick_xml::events::Event;
    let text = std::str::from_utf8(body).map_err(|_| fault(codes::INVALID_REQUEST, "the body is not UTF-8"))?;
    let mut reader = quick_xml::Reader::from_str(text);
    let mut depth = 0usize;
    let mut out: Vec<Param> = Vec::new();
    let bad = |e: &dyn std::fmt::Display| fault(codes::INVALID_REQUEST, format!("the body cannot be read: {e}"));
    loop {
        match reader.read_event().map_err(|e| bad(&e))? {
            Event::Start(e) => {
                depth += 1;
                if depth == 2 {
                    out.push(param(&e)?);
                }
            }
            Event::Empty(e) if depth == 1 => out.push(param(&e)?),
            Event::End(_) => depth = depth.saturating_sub(1),
            Event::Text(t) if depth == 2 => {
                if let Some(last) = out.last_mut() {
                    last.text.push_str(&t.xml10_content());
                }
            }
            Event::GeneralRef(r) if depth == 2 => {
                let s = match r.resolve_char_ref() {
                    Ok(Some(c)) => c.to_string(),
                    _ => match r.xml10_content().as_ref() {
                        "lt" => "<".into(),
                        "gt" => ">".into(),
                        "amp" => "&".into(),
                        "quot" => "\"".into(),
                        "apos" => "'".into(),
                        other => return Err(bad(&format!("unknown entity {other}"))),
                    },
                };
                if let Some(last) = out.last_mut() {
                    last.text.push_str(&s);
                }
            }
            Event::Eof => break,
            _ => {}
        }
        if out.len() > MAX_PROPERTIES + 4 {
            return Err(fault(codes::INVALID_REQUEST, format!("more than {MAX_PROPERTIES} parameters in one request")));
        }
    }
    for p in &mut out {
        p.text = p.text.trim().to_string();
    }
    Ok(out)
}

fn param(e: &quick_xml::events::BytesStart<'_>) -> Result<Param, Fault> {
    let element = e.local_name().into_inner().to_owned();
    let mut name = None;
    for a in e.attributes().flatten() {
        if a.key.local_name().into_inner() == "name" {
            name = a.normalized_value(quick_xml::XmlVersion::Explicit1_0).ok().map(|v| v.trim().to_string());
        }
    }
    Ok(Param { element, name, text: String::new() })
}

/// The service endpoint's state.
#[derive(Debug)]
pub struct Services {
    /// Talks to devices.
    pub ctl: Arc<Controller>,
    /// The devices.
    pub registry: Arc<Registry>,
    /// Registered webhooks.
    pub webhooks: Arc<Webhooks>,
    /// The WSDL document.
    pub wsdl: String,
}

pub(crate) fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_default()
}

impl Services {
    /// Answers one SOAP request: (HTTP status, body).
    pub async fn handle(&self, body: &[u8]) -> (u16, Vec<u8>) {
        let msg = match soap::parse(body, Direction::Request, &Limits::default()) {
            Ok(Soap::Message(m)) => m,
            Ok(Soap::Fault(_)) => return (500, fault(codes::INVALID_REQUEST, "a fault is not a request").to_xml()),
            Err(e) => return (500, fault(e.code.0, e.message).to_xml()),
        };
        match self.operation(&msg).await {
            Ok(inner) => {
                let h = msg.header();
                let op = msg.body_name();
                let body = format!("    <{op}Response xmlns=\"{NAMESPACE}\">{inner}</{op}Response>");
                (200, soap::build_request(&h.client, &h.service, &h.id, h.user_id.as_deref(), &body).into_bytes())
            }
            Err(f) => (500, f.to_xml()),
        }
    }

    fn device(&self, params: &[Param]) -> Result<Device, Fault> {
        let id = params
            .iter()
            .find(|p| p.element == "deviceId")
            .map(|p| p.text.as_str())
            .filter(|s| !s.is_empty())
            .ok_or_else(|| fault(codes::INVALID_REQUEST, "deviceId is missing; call listDevices for the ids"))?;
        self.registry
            .get(id)
            .filter(|d| d.approved)
            .ok_or_else(|| fault(codes::UNKNOWN_DEVICE, format!("no device {id:?} is published; call listDevices")))
    }

    async fn operation(&self, msg: &SoapMessage) -> Result<String, Fault> {
        let params = params(msg.body_content())?;
        match msg.body_name() {
            "listDevices" => Ok(self.list_devices()),
            "getProperties" => {
                let d = self.device(&params)?;
                let names: Vec<&str> =
                    params.iter().filter(|p| p.element == "property").map(|p| p.text.as_str()).collect();
                let epcs = if names.is_empty() {
                    readable(&d)
                } else {
                    names.iter().map(|n| readable_epc(&d, n)).collect::<Result<Vec<u8>, Fault>>()?
                };
                self.read(&d, &epcs).await
            }
            "setProperties" => {
                let d = self.device(&params)?;
                self.write(&d, &params).await
            }
            "registerWebhook" => {
                let url = params.iter().find(|p| p.element == "url").map(|p| p.text.as_str()).unwrap_or("");
                let client = msg.header().client.to_string();
                let (id, secret) = self.webhooks.register(&client, url).await?;
                Ok(format!("<webhookId>{}</webhookId><secret>{}</secret>", esc(&id), esc(&secret)))
            }
            op => {
                let Some(class) = defs::CLASSES.iter().find(|c| c.operation() == op) else {
                    return Err(fault(
                        codes::UNKNOWN_OPERATION,
                        format!("{op:?} is not an operation of this adapter; see its WSDL"),
                    ));
                };
                let d = self.device(&params)?;
                if d.class() != class.code {
                    return Err(fault(
                        codes::UNKNOWN_DEVICE,
                        format!("device {:?} is not a {} (it is 0x{:04X})", d.id, class.name, d.class()),
                    ));
                }
                let epcs: Vec<u8> =
                    class.props.iter().map(|p| p.epc).chain([0x80]).filter(|e| d.get_map.contains(e)).collect();
                self.read(&d, &epcs).await
            }
        }
    }

    fn list_devices(&self) -> String {
        let mut out = String::new();
        for d in self.registry.list().into_iter().filter(|d| d.approved) {
            let class = defs::class(d.class());
            out.push_str(&format!(
                "<device><deviceId>{}</deviceId><deviceType>{}</deviceType><eoj>{}</eoj><alive>{}</alive>",
                esc(&d.id),
                class.map_or_else(|| format!("0x{:04X}", d.class()), |c| c.name.to_string()),
                d.eoj,
                d.alive
            ));
            for epc in &d.get_map {
                let settable = d.set_map.contains(epc);
                out.push_str(&format!(
                    "<property name=\"{}\" epc=\"0x{epc:02X}\" settable=\"{settable}\"/>",
                    esc(&defs::name_of(d.class(), *epc))
                ));
            }
            out.push_str("</device>");
        }
        out
    }

    async fn read(&self, d: &Device, epcs: &[u8]) -> Result<String, Fault> {
        let mut out = format!("<deviceId>{}</deviceId>", esc(&d.id));
        if d.send_only {
            // Never polled (§2.10): the values it last announced.
            let last = self.registry.last_values(&d.id).await.map_err(|e| fault("internal_error", e.to_string()))?;
            for (p, at) in last.iter().filter(|(p, _)| epcs.is_empty() || epcs.contains(&p.epc)) {
                out.push_str(&property_xml(d, p, at, None));
            }
            return Ok(out);
        }
        let props = self.ctl.get(d.address, d.eoj, epcs).await.map_err(unreachable)?;
        let at = now_rfc3339();
        for p in &props {
            out.push_str(&property_xml(d, p, &at, None));
        }
        Ok(out)
    }

    async fn write(&self, d: &Device, params: &[Param]) -> Result<String, Fault> {
        let mut writes = Vec::new();
        for p in params.iter().filter(|p| p.element == "property") {
            let name = p.name.as_deref().unwrap_or("");
            let epc = defs::epc_named(d.class(), name)
                .ok_or_else(|| fault(codes::UNKNOWN_PROPERTY, format!("{} has no property {name:?}", describe(d))))?;
            if d.send_only {
                return Err(fault(
                    codes::READ_ONLY,
                    format!("{} is a send-only device; it cannot be set", describe(d)),
                ));
            }
            if !d.set_map.contains(&epc) {
                let (code, why) = if d.get_map.contains(&epc) {
                    (codes::READ_ONLY, "is read-only")
                } else {
                    (codes::UNKNOWN_PROPERTY, "does not exist")
                };
                return Err(fault(code, format!("{name} of {} {why}", describe(d))));
            }
            let edt = defs::encode(d.class(), epc, &p.text).map_err(|e| {
                let code = if matches!(e, defs::ValueError::OutOfRange { .. }) {
                    codes::OUT_OF_RANGE
                } else {
                    codes::INVALID_VALUE
                };
                fault(code, e.to_string())
            })?;
            writes.push((name.to_string(), p.text.clone(), Property { epc, edt }));
        }
        if writes.is_empty() {
            return Err(fault(
                codes::INVALID_REQUEST,
                "setProperties names no property; add <property name=\"…\">value</property>",
            ));
        }
        let mut frame_props: Vec<Property> = Vec::new();
        // §5: a request from outside the home says so first.
        if d.set_map.contains(&0x93) && !writes.iter().any(|(_, _, p)| p.epc == 0x93) {
            frame_props.push(Property { epc: 0x93, edt: vec![0x42] });
        }
        frame_props.extend(writes.iter().map(|(_, _, p)| p.clone()));
        let outcome = self.ctl.set(d.address, d.eoj, frame_props).await.map_err(unreachable)?;
        let at = now_rfc3339();
        let mut out = format!("<deviceId>{}</deviceId>", esc(&d.id));
        for (_, requested, p) in &writes {
            let accepted = !outcome.refused.contains(&p.epc);
            let back = outcome
                .read_back
                .iter()
                .find(|r| r.epc == p.epc)
                .cloned()
                .unwrap_or(Property { epc: p.epc, edt: Vec::new() });
            out.push_str(&property_xml(d, &back, &at, Some((requested, accepted))));
        }
        Ok(out)
    }
}

fn describe(d: &Device) -> String {
    format!("{} {}", defs::class(d.class()).map_or("device", |c| c.name), d.id)
}

fn unreachable(e: RequestError) -> Fault {
    fault(codes::UNREACHABLE, e.to_string())
}

/// The EPCs of `d` worth reading: defined ones in its get map, the maps left out.
fn readable(d: &Device) -> Vec<u8> {
    d.get_map.iter().copied().filter(|e| !matches!(e, 0x9D..=0x9F)).collect()
}

fn readable_epc(d: &Device, name: &str) -> Result<u8, Fault> {
    defs::epc_named(d.class(), name)
        .filter(|e| d.send_only || d.get_map.contains(e))
        .ok_or_else(|| fault(codes::UNKNOWN_PROPERTY, format!("{} has no readable property {name:?}", describe(d))))
}

fn property_xml(d: &Device, p: &Property, at: &str, set: Option<(&str, bool)>) -> String {
    let name = defs::name_of(d.class(), p.epc);
    let mut s = format!("<property name=\"{}\" epc=\"0x{:02X}\" readAt=\"{at}\"", esc(&name), p.epc);
    if let Some((requested, accepted)) = set {
        s.push_str(&format!(" requested=\"{}\" accepted=\"{accepted}\"", esc(requested)));
    }
    s.push('>');
    if p.edt.is_empty() {
        s.push_str("<unavailable/>");
    } else {
        let ctx = |epc: u8| d.context_value(epc);
        s.push_str(&reading_xml(&defs::decode(d.class(), p.epc, &p.edt, &ctx)));
    }
    s.push_str("</property>");
    s
}

fn reading_xml(r: &Reading) -> String {
    match r {
        Reading::State(st) => format!("<state>{st}</state>"),
        Reading::Number { unit, .. } => format!("<value unit=\"{unit}\">{r}</value>"),
        Reading::Numbers(v) => v.iter().map(reading_xml).collect(),
        Reading::Special(sp) => format!("<special>{}</special>", sp.name()),
        Reading::Map(_) | Reading::Raw(_) => format!("<raw>{r}</raw>"),
    }
}

/// The adapter's service description.
pub fn description(address: &str) -> Description {
    let s = |n: &str| Field::one(n, Type::String);
    let property = || Field::many("property", Type::Named("Property".into()));
    let mut operations = vec![
        Operation {
            name: "listDevices".into(),
            doc: "The published devices with their type and properties.".into(),
            input: vec![],
            output: vec![Field::many("device", Type::Named("Device".into()))],
        },
        Operation {
            name: "getProperties".into(),
            doc: "Reads the named properties of a device (all readable ones when none is named).".into(),
            input: vec![s("deviceId"), Field::many("property", Type::String)],
            output: vec![s("deviceId"), property()],
        },
        Operation {
            name: "setProperties".into(),
            doc: "Sets properties of a device and returns the values read back after the set.".into(),
            input: vec![s("deviceId"), Field::many("property", Type::Named("PropertyValue".into()))],
            output: vec![s("deviceId"), property()],
        },
        Operation {
            name: "registerWebhook".into(),
            doc: "Registers a URL that receives the devices' status changes, signed with HMAC-SHA256.".into(),
            input: vec![s("url")],
            output: vec![s("webhookId"), s("secret")],
        },
    ];
    for c in defs::CLASSES {
        operations.push(Operation {
            name: c.operation(),
            doc: format!("Reads every property of a {} (class 0x{:04X}).", c.name, c.code),
            input: vec![s("deviceId")],
            output: vec![s("deviceId"), property()],
        });
    }
    let text_type = |name: &str, attrs: &[&str]| ComplexType {
        name: name.into(),
        fields: vec![],
        attributes: attrs.iter().map(|a| a.to_string()).collect(),
        text: true,
    };
    Description {
        name: "musubiEchonet".into(),
        namespace: NAMESPACE.into(),
        version: "v1".into(),
        address: address.into(),
        types: vec![
            text_type("Value", &["unit"]),
            text_type("PropertyValue", &["name"]),
            ComplexType {
                name: "Property".into(),
                fields: vec![
                    Field::optional("state", Type::String),
                    Field { name: "value".into(), ty: Type::Named("Value".into()), min: 0, max: Some(2) },
                    Field::optional("special", Type::String),
                    Field::optional("raw", Type::String),
                    Field::optional("unavailable", Type::String),
                ],
                attributes: vec!["name".into(), "epc".into(), "readAt".into(), "requested".into(), "accepted".into()],
                text: false,
            },
            ComplexType {
                name: "PropertyInfo".into(),
                fields: vec![],
                attributes: vec!["name".into(), "epc".into(), "settable".into()],
                text: false,
            },
            ComplexType {
                name: "Device".into(),
                fields: vec![
                    Field::one("deviceId", Type::String),
                    Field::one("deviceType", Type::String),
                    Field::one("eoj", Type::String),
                    Field::one("alive", Type::Boolean),
                    Field::many("property", Type::Named("PropertyInfo".into())),
                ],
                attributes: vec![],
                text: false,
            },
        ],
        operations,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_named_parameters_of_the_operation() {
        let body = br#"<ns:setProperties xmlns:ns="urn:x"><ns:deviceId> abc </ns:deviceId><ns:property name="targetTemperature">26</ns:property><property name="x"/><ns:note>a &amp; b</ns:note></ns:setProperties>"#;
        let p = params(body).unwrap();
        assert_eq!(p.len(), 4);
        assert_eq!(p[0], Param { element: "deviceId".into(), name: None, text: "abc".into() });
        assert_eq!(p[1].name.as_deref(), Some("targetTemperature"));
        assert_eq!(p[1].text, "26");
        assert_eq!(p[2].text, "");
        assert_eq!(p[3].text, "a & b");
    }

    #[test]
    fn too_many_parameters_are_refused() {
        let mut body = String::from("<getProperties>");
        for _ in 0..100 {
            body.push_str("<property>x</property>");
        }
        body.push_str("</getProperties>");
        assert_eq!(params(body.as_bytes()).unwrap_err().code, codes::INVALID_REQUEST);
    }

    #[test]
    fn wsdl_has_a_typed_operation_per_class() {
        let w = musubi_wsdl::generate(&description("http://127.0.0.1:8090/"));
        for c in defs::CLASSES {
            assert!(w.contains(&format!("<wsdl:operation name=\"{}\">", c.operation())), "{}", c.name);
        }
        assert!(w.contains("name=\"setPropertiesResponse\""));
    }
}
