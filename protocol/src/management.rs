//! X-Road's management requests (PR-MSERV §2): a security server asks the
//! central server to register or delete an authentication certificate,
//! register or delete a client, or change its address. Pure: the SOAP body,
//! the signed multipart request, and the response with its request id.
//!
//! **Wire layout.** `authCertReg` is X-Road's HTTPS POST to the central
//! server exactly (§2.3): six parts — the SOAP message, the signature of the
//! authentication key being registered (proof of possession), the signature
//! of the server owner's signing key, the authentication certificate, the
//! owner's signing certificate and its OCSP response. X-Road sends the other
//! requests as X-Road messages through the management-services provider's
//! security server, which needs that server (and the central server's own
//! member) registered before any client can be. Musubi takes them on the
//! same HTTPS endpoint instead, with the same proofs: X-Road's four parts
//! (SOAP, member signature, signing certificate, OCSP response) followed by
//! the signature of one of the server's registered authentication keys and
//! that certificate, standing in for the mutually authenticated transport
//! that identifies the sending server in X-Road.
//!
//! Signatures are over the exact bytes of the SOAP part, with Java's
//! algorithm names in `signature-algorithm-id` (`SHA256withECDSA`,
//! `SHA256withRSA`, `SHA512withRSA`).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use xml_sec::Node;

use crate::fault::escape_text as esc;
use crate::mime::{ContentType, MultipartLimits, MultipartWriter, parse_multipart};
use crate::soap::{self, Direction, Limits, Soap};
use crate::{ClientId, SecurityServerId, ServiceId};

/// Largest management request accepted, bytes.
pub const MAX_REQUEST_BYTES: usize = 256 * 1024;

/// Why a management request or response cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ManagementError {
    /// X-Road's fault code (`invalid_request`, `invalid_signature_value`, …).
    pub code: &'static str,
    /// What is wrong.
    pub message: String,
}

fn invalid(message: impl Into<String>) -> ManagementError {
    ManagementError { code: "invalid_request", message: message.into() }
}

/// What is asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// Register an authentication certificate for `server`, reachable at `address`.
    AuthCertReg {
        /// The server.
        server: SecurityServerId,
        /// Its address (host name or IP).
        address: String,
        /// The certificate (DER).
        auth_cert: Vec<u8>,
    },
    /// Delete one of the server's authentication certificates.
    AuthCertDeletion {
        /// The server.
        server: SecurityServerId,
        /// The certificate (DER).
        auth_cert: Vec<u8>,
    },
    /// Register `client` (a subsystem or member) on `server`.
    ClientReg {
        /// The server.
        server: SecurityServerId,
        /// The client.
        client: ClientId,
    },
    /// Remove `client` from `server`.
    ClientDeletion {
        /// The server.
        server: SecurityServerId,
        /// The client.
        client: ClientId,
    },
    /// Change the server's address.
    AddressChange {
        /// The server.
        server: SecurityServerId,
        /// The new address.
        address: String,
    },
}

impl Request {
    /// X-Road's service code (`authCertReg`, `clientReg`, …).
    pub fn service_code(&self) -> &'static str {
        match self {
            Self::AuthCertReg { .. } => "authCertReg",
            Self::AuthCertDeletion { .. } => "authCertDeletion",
            Self::ClientReg { .. } => "clientReg",
            Self::ClientDeletion { .. } => "clientDeletion",
            Self::AddressChange { .. } => "addressChange",
        }
    }

    /// The server the request is about.
    pub fn server(&self) -> &SecurityServerId {
        match self {
            Self::AuthCertReg { server, .. }
            | Self::AuthCertDeletion { server, .. }
            | Self::ClientReg { server, .. }
            | Self::ClientDeletion { server, .. }
            | Self::AddressChange { server, .. } => server,
        }
    }

    /// The member whose signing key must sign: the client's owner for client
    /// requests, the server's owner otherwise.
    pub fn signing_member(&self) -> ClientId {
        match self {
            Self::ClientReg { client, .. } | Self::ClientDeletion { client, .. } => client.member_id(),
            other => other.server().owner().clone(),
        }
    }

    fn fields_xml(&self) -> String {
        let server = self.server();
        let o = server.owner();
        let mut s = format!(
            "      <xroad:server id:objectType=\"SERVER\"><id:xRoadInstance>{}</id:xRoadInstance><id:memberClass>{}</id:memberClass><id:memberCode>{}</id:memberCode><id:serverCode>{}</id:serverCode></xroad:server>\n",
            esc(o.instance()),
            esc(o.member_class()),
            esc(o.member_code()),
            esc(server.server_code())
        );
        match self {
            Self::AuthCertReg { address, auth_cert, .. } => {
                s.push_str(&format!("      <xroad:address>{}</xroad:address>\n", esc(address)));
                s.push_str(&format!("      <xroad:authCert>{}</xroad:authCert>\n", B64.encode(auth_cert)));
            }
            Self::AuthCertDeletion { auth_cert, .. } => {
                s.push_str(&format!("      <xroad:authCert>{}</xroad:authCert>\n", B64.encode(auth_cert)));
            }
            Self::ClientReg { client, .. } | Self::ClientDeletion { client, .. } => {
                s.push_str(&format!("      <xroad:client id:objectType=\"{}\">", client.object_type()));
                s.push_str(&format!(
                    "<id:xRoadInstance>{}</id:xRoadInstance><id:memberClass>{}</id:memberClass><id:memberCode>{}</id:memberCode>",
                    esc(client.instance()),
                    esc(client.member_class()),
                    esc(client.member_code())
                ));
                if let Some(sub) = client.subsystem_code() {
                    s.push_str(&format!("<id:subsystemCode>{}</id:subsystemCode>", esc(sub)));
                }
                s.push_str("</xroad:client>\n");
            }
            Self::AddressChange { address, .. } => {
                s.push_str(&format!("      <xroad:address>{}</xroad:address>\n", esc(address)));
            }
        }
        s
    }
}

/// The SOAP message of `request` (X-Road message protocol 4.0; client: the
/// server owner; service: the owner's `<serviceCode>`, as X-Road's examples).
pub fn request_soap(request: &Request, id: &str) -> Result<String, ManagementError> {
    let owner = request.server().owner();
    let service = ServiceId::new(owner.clone(), request.service_code(), None).map_err(|e| invalid(e.to_string()))?;
    let code = request.service_code();
    let body = format!("    <xroad:{code}>\n{}    </xroad:{code}>", request.fields_xml());
    Ok(soap::build_request(owner, &service, id, None, &body))
}

/// The response to `request`: the request's fields echoed with `requestId`.
pub fn response_soap(request: &Request, id: &str, request_id: i64) -> Result<String, ManagementError> {
    let owner = request.server().owner();
    let service = ServiceId::new(owner.clone(), request.service_code(), None).map_err(|e| invalid(e.to_string()))?;
    let code = request.service_code();
    let body = format!(
        "    <xroad:{code}Response>\n{}      <xroad:requestId>{request_id}</xroad:requestId>\n    </xroad:{code}Response>",
        request.fields_xml()
    );
    Ok(soap::build_request(owner, &service, id, None, &body))
}

/// One signature over the SOAP part, with the certificate that checks it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    /// Java's algorithm name (`SHA256withECDSA`, …).
    pub algorithm: String,
    /// The signature value.
    pub value: Vec<u8>,
    /// The signer's certificate (DER).
    pub cert: Vec<u8>,
}

impl Signature {
    /// Checks the signature over `data` with the certificate's public key.
    pub fn verify(&self, data: &[u8]) -> Result<(), ManagementError> {
        let uri = match self.algorithm.as_str() {
            "SHA256withECDSA" => crate::xades::ECDSA_SHA256,
            "SHA512withRSA" => crate::xades::RSA_SHA512,
            "SHA256withRSA" => "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
            other => {
                return Err(ManagementError {
                    code: "invalid_signature_value",
                    message: format!("signature algorithm {other:?} is not supported"),
                });
            }
        };
        crate::xades::verify_raw(&self.cert, uri, data, &self.value)
            .map_err(|e| ManagementError { code: "invalid_signature_value", message: e })
    }
}

/// Java's name of an XML-DSig signature algorithm URI, for `signature-algorithm-id`.
pub fn algorithm_id(uri: &str) -> Option<&'static str> {
    match uri {
        crate::xades::ECDSA_SHA256 => Some("SHA256withECDSA"),
        crate::xades::RSA_SHA512 => Some("SHA512withRSA"),
        "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256" => Some("SHA256withRSA"),
        _ => None,
    }
}

/// A decoded (not yet verified) management request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed {
    /// The SOAP part exactly as received (what the signatures cover).
    pub soap: Vec<u8>,
    /// The message id of the SOAP header.
    pub id: String,
    /// The client of the SOAP header (the server owner).
    pub sender: ClientId,
    /// What is asked.
    pub request: Request,
    /// The authentication key's signature: of the certificate being
    /// registered (`authCertReg`) or of a registered one (other requests).
    pub auth: Signature,
    /// The member's signature (see [`Request::signing_member`]).
    pub member: Signature,
    /// The OCSP response for the member's signing certificate.
    pub member_ocsp: Vec<u8>,
}

/// Encodes a signed request as multipart/related; returns (content type, body).
pub fn encode(s: &Signed) -> (String, Vec<u8>) {
    let boundary =
        format!("musubi-mgmt-{}", hex_of(&ring::digest::digest(&ring::digest::SHA256, &s.soap).as_ref()[..8]));
    let mut w = MultipartWriter::new(boundary.clone());
    let bin = ("Content-Type", "application/octet-stream");
    w.part(&[("Content-Type", "text/xml; charset=UTF-8")], &s.soap);
    let sig = |w: &mut MultipartWriter, g: &Signature| {
        w.part(&[bin, ("signature-algorithm-id", g.algorithm.as_str())], &g.value);
    };
    if matches!(s.request, Request::AuthCertReg { .. }) {
        sig(&mut w, &s.auth);
        sig(&mut w, &s.member);
        w.part(&[bin], &s.auth.cert);
        w.part(&[bin], &s.member.cert);
        w.part(&[bin], &s.member_ocsp);
    } else {
        sig(&mut w, &s.member);
        w.part(&[bin], &s.member.cert);
        w.part(&[bin], &s.member_ocsp);
        sig(&mut w, &s.auth);
        w.part(&[bin], &s.auth.cert);
    }
    (format!("multipart/related; charset=UTF-8; boundary={boundary}"), w.finish())
}

fn hex_of(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Decodes a multipart management request (bounded; six parts in the
/// layout of the module documentation). Signatures are not checked here.
pub fn decode(content_type: &str, body: &[u8]) -> Result<Signed, ManagementError> {
    if body.len() > MAX_REQUEST_BYTES {
        return Err(invalid(format!("request of {} bytes exceeds {MAX_REQUEST_BYTES}", body.len())));
    }
    let ct = ContentType::parse(content_type).map_err(|e| invalid(format!("content type: {e}")))?;
    if ct.mime != "multipart/related" {
        return Err(invalid(format!("content type is {}, not multipart/related", ct.mime)));
    }
    let boundary = ct.boundary().map_err(|e| invalid(format!("content type: {e}")))?;
    let mp = parse_multipart(body, boundary, &MultipartLimits { max_parts: 8, max_header_bytes: 4096 })
        .map_err(|e| invalid(format!("multipart: {e}")))?;
    if mp.parts.len() != 6 {
        return Err(invalid(format!("the request has {} parts; a management request has 6", mp.parts.len())));
    }
    let soap_bytes = mp.parts[0].body;
    let part_ct = mp.parts[0].content_type().map_err(|e| invalid(format!("first part: {e}")))?;
    if part_ct.mime != "text/xml" {
        return Err(invalid(format!("the first part is {}, not text/xml", part_ct.mime)));
    }
    let msg = match soap::parse(soap_bytes, Direction::Request, &Limits::default()) {
        Ok(Soap::Message(m)) => m,
        Ok(Soap::Fault(_)) => return Err(invalid("the first part is a SOAP fault")),
        Err(e) => return Err(invalid(format!("SOAP: {}", e.message))),
    };
    let header = msg.header();
    let request = parse_body(soap_bytes)?;
    if header.service.service_code() != request.service_code() {
        return Err(invalid(format!(
            "the header names service {}, the body is {}",
            header.service.service_code(),
            request.service_code()
        )));
    }
    let sig_at = |i: usize, cert: usize| -> Result<Signature, ManagementError> {
        let p = &mp.parts[i];
        let algorithm = p
            .header("signature-algorithm-id")
            .ok_or_else(|| invalid(format!("part {} has no signature-algorithm-id", i + 1)))?
            .to_string();
        Ok(Signature { algorithm, value: p.body.to_vec(), cert: mp.parts[cert].body.to_vec() })
    };
    let (auth, member, ocsp) = if matches!(request, Request::AuthCertReg { .. }) {
        (sig_at(1, 3)?, sig_at(2, 4)?, 5)
    } else {
        (sig_at(4, 5)?, sig_at(1, 2)?, 3)
    };
    Ok(Signed {
        soap: soap_bytes.to_vec(),
        id: header.id.clone(),
        sender: header.client.clone(),
        request,
        auth,
        member,
        member_ocsp: mp.parts[ocsp].body.to_vec(),
    })
}

fn children<'a, 'i>(n: Node<'a, 'i>, name: &'static str) -> impl Iterator<Item = Node<'a, 'i>> {
    n.children().filter(move |c| c.is_element() && c.tag_name().name() == name)
}

fn text(n: Node<'_, '_>) -> String {
    n.text().unwrap_or_default().trim().to_string()
}

fn field(n: Node<'_, '_>, name: &'static str) -> Option<String> {
    children(n, name).next().map(text)
}

/// The first element of the SOAP body.
fn body_element<'a, 'i>(envelope: Node<'a, 'i>) -> Result<Node<'a, 'i>, String> {
    children(envelope, "Body")
        .next()
        .and_then(|b| b.children().find(|c| c.is_element()))
        .ok_or_else(|| "the SOAP body is empty".to_string())
}

fn server_of(n: Node<'_, '_>) -> Result<SecurityServerId, String> {
    let s = children(n, "server").next().ok_or("no <server>")?;
    let f = |name| field(s, name).unwrap_or_default();
    let owner = ClientId::member(&f("xRoadInstance"), &f("memberClass"), &f("memberCode"))
        .map_err(|e| format!("server owner: {e}"))?;
    SecurityServerId::new(owner, &f("serverCode")).map_err(|e| format!("server: {e}"))
}

fn client_of(n: Node<'_, '_>) -> Result<ClientId, String> {
    let c = children(n, "client").next().ok_or("no <client>")?;
    let f = |name| field(c, name).unwrap_or_default();
    match field(c, "subsystemCode") {
        Some(sub) => ClientId::subsystem(&f("xRoadInstance"), &f("memberClass"), &f("memberCode"), &sub),
        None => ClientId::member(&f("xRoadInstance"), &f("memberClass"), &f("memberCode")),
    }
    .map_err(|e| format!("client: {e}"))
}

fn cert_of(n: Node<'_, '_>) -> Result<Vec<u8>, String> {
    let text: String = field(n, "authCert").ok_or("no <authCert>")?.split_whitespace().collect();
    B64.decode(text).map_err(|_| "<authCert> is not base64".to_string())
}

fn address_of(n: Node<'_, '_>) -> Result<String, String> {
    let a = field(n, "address").ok_or("no <address>")?;
    if a.is_empty() || a.len() > 255 || a.chars().any(|c| c.is_whitespace() || c.is_control() || c == '/') {
        return Err(format!("address {a:?} is not a host name or IP address"));
    }
    Ok(a)
}

/// Reads the request from the SOAP body.
fn parse_body(soap: &[u8]) -> Result<Request, ManagementError> {
    crate::globalconf::parse_xml(soap, |envelope| {
        let b = body_element(envelope)?;
        Ok(match b.tag_name().name() {
            "authCertReg" => {
                Request::AuthCertReg { server: server_of(b)?, address: address_of(b)?, auth_cert: cert_of(b)? }
            }
            "authCertDeletion" => Request::AuthCertDeletion { server: server_of(b)?, auth_cert: cert_of(b)? },
            "clientReg" => Request::ClientReg { server: server_of(b)?, client: client_of(b)? },
            "clientDeletion" => Request::ClientDeletion { server: server_of(b)?, client: client_of(b)? },
            "addressChange" => Request::AddressChange { server: server_of(b)?, address: address_of(b)? },
            other => return Err(format!("unknown management request <{other}>")),
        })
    })
    .map_err(invalid)
}

/// Reads a response: the `requestId` of a `…Response`, or the fault it carries.
pub fn parse_response(bytes: &[u8]) -> Result<i64, ManagementError> {
    let fault = |m: String| ManagementError { code: "invalid_response", message: m };
    if let Ok(Soap::Fault(f)) = soap::parse(bytes, Direction::Response, &Limits::default()) {
        return Err(ManagementError { code: "fault", message: format!("{}: {}", f.code, f.string) });
    }
    crate::globalconf::parse_xml(bytes, |envelope| {
        let b = body_element(envelope)?;
        if !b.tag_name().name().ends_with("Response") {
            return Err(format!("<{}> is not a management response", b.tag_name().name()));
        }
        let id = field(b, "requestId").ok_or("the response has no requestId")?;
        id.parse::<i64>().map_err(|_| format!("requestId {id:?} is not a number"))
    })
    .map_err(fault)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server() -> SecurityServerId {
        SecurityServerId::new(ClientId::member("DEV", "GOV", "1234").unwrap(), "ss1").unwrap()
    }

    fn signed(request: Request) -> Signed {
        let soap = request_soap(&request, "q-1").unwrap().into_bytes();
        let sig = |v: u8| Signature { algorithm: "SHA256withECDSA".into(), value: vec![v; 64], cert: vec![v; 10] };
        Signed {
            soap,
            id: "q-1".into(),
            sender: server().owner().clone(),
            request,
            auth: sig(1),
            member: sig(2),
            member_ocsp: vec![3; 20],
        }
    }

    #[test]
    fn round_trips_every_request_through_multipart() {
        let sub = ClientId::subsystem("DEV", "COM", "777", "home").unwrap();
        for request in [
            Request::AuthCertReg { server: server(), address: "127.0.0.2".into(), auth_cert: vec![0x30, 1, 2] },
            Request::AuthCertDeletion { server: server(), auth_cert: vec![0x30, 9] },
            Request::ClientReg { server: server(), client: sub.clone() },
            Request::ClientDeletion { server: server(), client: sub.clone() },
            Request::AddressChange { server: server(), address: "ss1.example.org".into() },
        ] {
            let s = signed(request);
            let (ct, body) = encode(&s);
            assert_eq!(decode(&ct, &body).unwrap(), s, "{}", s.request.service_code());
        }
        assert_eq!(Request::ClientReg { server: server(), client: sub.clone() }.signing_member(), sub.member_id());
    }

    #[test]
    fn the_response_carries_the_request_id() {
        let r = Request::AddressChange { server: server(), address: "a.example".into() };
        assert_eq!(parse_response(response_soap(&r, "q", 392).unwrap().as_bytes()).unwrap(), 392);
        let fault = crate::Code::INVALID_REQUEST.client("no such member").to_xml();
        let e = parse_response(&fault).unwrap_err();
        assert!(e.message.contains("no such member"), "{e}");
    }

    #[test]
    fn refuses_what_is_not_a_management_request() {
        let s = signed(Request::AddressChange { server: server(), address: "a.example".into() });
        let (ct, body) = encode(&s);
        assert!(decode("text/xml", &body).unwrap_err().message.contains("not multipart/related"));
        let cut = &body[..body.len() / 2];
        assert!(decode(&ct, cut).is_err());
        let big = vec![b'x'; MAX_REQUEST_BYTES + 1];
        assert!(decode(&ct, &big).unwrap_err().message.contains("exceeds"));
        let bad_address = String::from_utf8(s.soap.clone()).unwrap().replace("a.example", "a b/c");
        let s2 = Signed { soap: bad_address.into_bytes(), ..s.clone() };
        let (ct2, body2) = encode(&s2);
        assert!(decode(&ct2, &body2).unwrap_err().message.contains("is not a host name"));
        let unknown = String::from_utf8(s.soap).unwrap().replace("addressChange>", "ownerChange>");
        let s3 = Signed { soap: unknown.into_bytes(), ..s };
        let (ct3, body3) = encode(&s3);
        assert!(decode(&ct3, &body3).is_err());
    }
}
