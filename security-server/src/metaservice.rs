//! X-Road's metaservices (PR-META): `listMethods`, `allowedMethods` and
//! `getWsdl` are answered by the provider's security server itself, as if
//! the provider had answered (the response is then signed and logged like
//! any other); `listClients` is an HTTP GET on the client proxy that lists
//! the instance's members and subsystems from the global configuration, as
//! XML or, with `Accept: application/json`, JSON.
//!
//! The answers are built here from plain values; nothing here does I/O.

use musubi_protocol::soap::{self, Header};
use musubi_protocol::{ClientId, ServiceId};

use crate::conf::Member;

/// A metaservice code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Meta {
    /// Every service of the provider.
    ListMethods,
    /// The services the caller may call.
    AllowedMethods,
    /// The WSDL of one service.
    GetWsdl,
}

impl Meta {
    /// The metaservice a service code names, if any.
    pub(crate) fn of(code: &str) -> Option<Self> {
        match code {
            "listMethods" => Some(Self::ListMethods),
            "allowedMethods" => Some(Self::AllowedMethods),
            "getWsdl" => Some(Self::GetWsdl),
            _ => None,
        }
    }
}

fn esc(s: &str) -> String {
    musubi_protocol::fault::escape_text(s)
}

fn service_xml(s: &ServiceId) -> String {
    let p = s.provider();
    let mut x = format!(
        "      <xroad:service id:objectType=\"SERVICE\"><id:xRoadInstance>{}</id:xRoadInstance><id:memberClass>{}</id:memberClass><id:memberCode>{}</id:memberCode>",
        esc(p.instance()),
        esc(p.member_class()),
        esc(p.member_code())
    );
    if let Some(sub) = p.subsystem_code() {
        x.push_str(&format!("<id:subsystemCode>{}</id:subsystemCode>", esc(sub)));
    }
    x.push_str(&format!("<id:serviceCode>{}</id:serviceCode>", esc(s.service_code())));
    if let Some(v) = s.version() {
        x.push_str(&format!("<id:serviceVersion>{}</id:serviceVersion>", esc(v)));
    }
    x.push_str("</xroad:service>\n");
    x
}

/// The SOAP response to `listMethods` or `allowedMethods`: the request's
/// header, and one `xroad:service` per service.
pub(crate) fn methods_response(h: &Header, meta: Meta, services: &[ServiceId]) -> String {
    let name = if meta == Meta::AllowedMethods { "allowedMethodsResponse" } else { "listMethodsResponse" };
    let mut body = format!("    <xroad:{name}>\n");
    for s in services {
        body.push_str(&service_xml(s));
    }
    body.push_str(&format!("    </xroad:{name}>"));
    soap::build_request(&h.client, &h.service, &h.id, h.user_id.as_deref(), &body)
}

/// The service a `getWsdl` request asks for: `serviceCode` and, when given,
/// `serviceVersion` of the request's body content (the bytes inside
/// `SOAP-ENV:Body` of an already parsed, bounded message).
pub(crate) fn wsdl_request(provider: &ClientId, body: &[u8]) -> Result<ServiceId, String> {
    let text = std::str::from_utf8(body).map_err(|_| "the request is not UTF-8".to_string())?;
    let field = |name: &str| -> Option<String> {
        // Two simple text elements of the getWsdl body.
        let start = text.find(&format!(":{name}>")).or_else(|| text.find(&format!("<{name}>")))?;
        let rest = &text[start..];
        let open_end = rest.find('>')? + 1;
        let close = rest[open_end..].find('<')?;
        Some(rest[open_end..open_end + close].trim().to_string())
    };
    let code = field("serviceCode").filter(|c| !c.is_empty()).ok_or("getWsdl names no serviceCode")?;
    ServiceId::new(provider.clone(), &code, field("serviceVersion").filter(|v| !v.is_empty()).as_deref())
        .map_err(|e| e.to_string())
}

/// The `getWsdl` answer: X-Road's multipart (the SOAP response naming the
/// service, then the WSDL as an attachment); returns (content type, body).
pub(crate) fn wsdl_response(h: &Header, service: &ServiceId, wsdl: &[u8]) -> (String, Vec<u8>) {
    let mut inner =
        format!("    <xroad:getWsdlResponse><xroad:serviceCode>{}</xroad:serviceCode>", esc(service.service_code()));
    if let Some(v) = service.version() {
        inner.push_str(&format!("<xroad:serviceVersion>{}</xroad:serviceVersion>", esc(v)));
    }
    inner.push_str("</xroad:getWsdlResponse>");
    let soap = soap::build_request(&h.client, &h.service, &h.id, h.user_id.as_deref(), &inner);
    let boundary = format!("xroad-wsdl-{}", ring_hex(&h.id));
    let mut w = musubi_protocol::mime::MultipartWriter::new(boundary.clone());
    w.part(&[("content-type", "text/xml; charset=UTF-8")], soap.as_bytes());
    w.part(&[("content-type", "text/xml"), ("content-transfer-encoding", "binary")], wsdl);
    (format!("multipart/related; type=\"text/xml\"; charset=UTF-8; boundary={boundary}"), w.finish())
}

fn ring_hex(s: &str) -> String {
    ring::digest::digest(&ring::digest::SHA256, s.as_bytes()).as_ref()[..8].iter().map(|b| format!("{b:02x}")).collect()
}

/// `listClients` as XML: each member and subsystem with the member's name.
pub(crate) fn list_clients_xml(members: &[Member]) -> String {
    let mut s = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<xroad:clientList xmlns:xroad=\"http://x-road.eu/xsd/xroad.xsd\" xmlns:id=\"http://x-road.eu/xsd/identifiers\">\n",
    );
    for (id, name) in clients(members) {
        s.push_str(&format!(
            "  <xroad:member><xroad:id id:objectType=\"{}\"><id:xRoadInstance>{}</id:xRoadInstance><id:memberClass>{}</id:memberClass><id:memberCode>{}</id:memberCode>",
            id.object_type(),
            esc(id.instance()),
            esc(id.member_class()),
            esc(id.member_code())
        ));
        if let Some(sub) = id.subsystem_code() {
            s.push_str(&format!("<id:subsystemCode>{}</id:subsystemCode>", esc(sub)));
        }
        s.push_str(&format!("</xroad:id><xroad:name>{}</xroad:name></xroad:member>\n", esc(name)));
    }
    s.push_str("</xroad:clientList>\n");
    s
}

/// `listClients` as JSON (X-Road's field names).
pub(crate) fn list_clients_json(members: &[Member]) -> serde_json::Value {
    let list: Vec<serde_json::Value> = clients(members)
        .into_iter()
        .map(|(id, name)| {
            serde_json::json!({
                "id": {
                    "object_type": id.object_type(),
                    "xroad_instance": id.instance(),
                    "member_class": id.member_class(),
                    "member_code": id.member_code(),
                    "subsystem_code": id.subsystem_code(),
                },
                "name": name,
            })
        })
        .collect();
    serde_json::json!({ "member": list })
}

fn clients(members: &[Member]) -> Vec<(ClientId, &str)> {
    let mut out = Vec::new();
    for m in members {
        out.push((m.id.clone(), m.name.as_str()));
        for sub in &m.subsystems {
            if let Ok(id) = ClientId::subsystem(m.id.instance(), m.id.member_class(), m.id.member_code(), sub) {
                out.push((id, m.name.as_str()));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use musubi_protocol::soap::{Direction, Limits, Soap};

    fn vector(name: &str) -> Option<Vec<u8>> {
        let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../shared/conformance/xroad/soap/metaservice-queries")
            .join(name);
        match std::fs::read(&path) {
            Ok(b) => Some(b),
            Err(_) if std::env::var("MUSUBI_REQUIRE_CONFORMANCE").as_deref() == Ok("1") => {
                panic!("{} missing and MUSUBI_REQUIRE_CONFORMANCE=1", path.display())
            }
            Err(_) => {
                println!("skipped: {} not found", path.display());
                None
            }
        }
    }

    fn message(bytes: &[u8]) -> soap::SoapMessage {
        match soap::parse(bytes, Direction::Request, &Limits::default()).unwrap() {
            Soap::Message(m) => m,
            Soap::Fault(_) => panic!("a fault"),
        }
    }

    fn header(bytes: &[u8]) -> Header {
        message(bytes).header().clone()
    }

    /// The mocked serverconf of X-Road's MetaserviceTest: three services of the producer.
    fn services(provider: &ClientId) -> Vec<ServiceId> {
        ["getRandom", "helloService", "ListMembers"]
            .iter()
            .map(|c| ServiceId::new(provider.clone(), c, Some("v1")).unwrap())
            .collect()
    }

    #[test]
    fn list_and_allowed_methods_answer_with_the_providers_services() {
        for (file, meta, name) in [
            ("listMethods.query", Meta::ListMethods, "listMethodsResponse"),
            ("allowedMethods.query", Meta::AllowedMethods, "allowedMethodsResponse"),
        ] {
            let Some(q) = vector(file) else { return };
            let h = header(&q);
            assert_eq!(Meta::of(h.service.service_code()), Some(meta));
            let answer = methods_response(&h, meta, &services(h.service.provider()));
            // A normal X-Road response (text/xml) with exactly the three services.
            let Soap::Message(m) = soap::parse(answer.as_bytes(), Direction::Response, &Limits::default()).unwrap()
            else {
                panic!("not a message")
            };
            assert_eq!(m.header().id, h.id);
            assert_eq!(m.body_name(), name);
            let body = String::from_utf8_lossy(m.body_content()).into_owned();
            assert_eq!(body.matches("<xroad:service id:objectType=\"SERVICE\">").count(), 3, "{body}");
            for c in ["getRandom", "helloService", "ListMembers"] {
                assert!(answer.contains(&format!("<id:serviceCode>{c}</id:serviceCode>")), "{answer}");
            }
        }
    }

    #[test]
    fn get_wsdl_answers_multipart_with_the_wsdl_attached() {
        let Some(q) = vector("getWsdl.query") else { return };
        let h = header(&q);
        assert_eq!(Meta::of(h.service.service_code()), Some(Meta::GetWsdl));
        let service = wsdl_request(h.service.provider(), message(&q).body_content()).unwrap();
        assert_eq!(service.service_code(), "getRandom");
        let wsdl = b"<wsdl:definitions><!-- getRandom helloService --></wsdl:definitions>";
        let (ct, body) = wsdl_response(&h, &service, wsdl);
        assert!(ct.starts_with("multipart/related; type=\"text/xml\"; charset=UTF-8;"), "{ct}");
        let pkg = musubi_protocol::package::decode(&ct, &body, Direction::Response, &Limits::default()).unwrap();
        assert_eq!(pkg.attachments.len(), 1);
        assert_eq!(pkg.attachments[0].body, wsdl);
        assert!(
            String::from_utf8_lossy(&body).contains("getRandom")
                && String::from_utf8_lossy(&body).contains("helloService")
        );
    }

    #[test]
    fn list_clients_lists_members_and_subsystems() {
        let m = Member {
            id: ClientId::member("EE", "BUSINESS", "member1").unwrap(),
            name: "Member & Co".into(),
            subsystems: vec!["sub1".into()],
            signing_certs: vec![],
        };
        let xml = list_clients_xml(std::slice::from_ref(&m));
        assert_eq!(xml.matches("<xroad:member>").count(), 2, "{xml}");
        assert!(xml.contains("id:objectType=\"SUBSYSTEM\"") && xml.contains("Member &amp; Co"), "{xml}");
        let json = list_clients_json(&[m]);
        assert_eq!(json["member"][1]["id"]["subsystem_code"], "sub1");
        assert_eq!(json["member"][0]["id"]["object_type"], "MEMBER");
    }
}
