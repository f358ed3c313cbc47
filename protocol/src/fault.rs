//! X-Road fault codes and SOAP 1.1 faults (PR-MESS §2.6).
//!
//! Musubi uses the **X-Road 7.8 snake_case form** of fault codes everywhere
//! (`client.invalid_soap`, `server.serverproxy.access_denied`,
//! `server.serverproxy.service_failed.missing_header`), the form the
//! conformance vectors in `shared/conformance/xroad` were taken from. X-Road 7.7
//! and older write the same codes in CamelCase (`Client.InvalidSoap`); the
//! translation is mechanical and documented in the README.
//!
//! A fault code is built from a [`Code`] (what went wrong) and the place it is
//! reported from: [`Code::client`] for faults caused by the sender,
//! [`Code::client_proxy`] / [`Code::server_proxy`] for faults of a proxy, and
//! the `service_failed` variants for faults in a message received from the other
//! side (X-Road's `translateWithPrefix`).

use std::fmt;

/// One X-Road error code, without its prefix (`invalid_soap`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Code(pub &'static str);

#[allow(missing_docs)]
impl Code {
    pub const IO_ERROR: Code = Code("io_error");
    pub const NETWORK_ERROR: Code = Code("network_error");
    pub const INTERNAL_ERROR: Code = Code("internal_error");
    pub const INVALID_REQUEST: Code = Code("invalid_request");
    pub const HTTP_ERROR: Code = Code("http_error");
    pub const CANNOT_CREATE_SIGNATURE: Code = Code("cannot_create_signature");
    pub const CERT_VALIDATION: Code = Code("cert_validation");
    pub const INCORRECT_CERTIFICATE: Code = Code("incorrect_certificate");
    pub const INVALID_SIGNATURE_VALUE: Code = Code("invalid_signature_value");
    pub const MALFORMED_SIGNATURE: Code = Code("malformed_signature");
    pub const INVALID_XML: Code = Code("invalid_xml");
    pub const INVALID_REFERENCE: Code = Code("invalid_reference");
    pub const SIGNATURE_VERIFICATION: Code = Code("signature_verification");
    pub const SSL_AUTHENTICATION_FAILED: Code = Code("ssl_authentication_failed");
    pub const LOGGING_FAILED: Code = Code("logging_failed");
    pub const INVALID_CONTENT_TYPE: Code = Code("invalid_content_type");
    pub const INVALID_SOAP_ACTION: Code = Code("invalid_soap_action");
    pub const INVALID_HTTP_METHOD: Code = Code("invalid_http_method");
    pub const INVALID_MESSAGE: Code = Code("invalid_message");
    pub const MISSING_HEADER: Code = Code("missing_header");
    pub const MISSING_HEADER_FIELD: Code = Code("missing_header_field");
    pub const DUPLICATE_HEADER_FIELD: Code = Code("duplicate_header_field");
    pub const MISSING_BODY: Code = Code("missing_body");
    pub const INVALID_BODY: Code = Code("invalid_body");
    pub const INCONSISTENT_HEADERS: Code = Code("inconsistent_headers");
    pub const INCONSISTENT_RESPONSE: Code = Code("inconsistent_response");
    pub const MISSING_SOAP: Code = Code("missing_soap");
    pub const INVALID_SOAP: Code = Code("invalid_soap");
    pub const ACCESS_DENIED: Code = Code("access_denied");
    pub const SERVICE_DISABLED: Code = Code("service_disabled");
    pub const MISSING_SIGNATURE: Code = Code("missing_signature");
    pub const UNKNOWN_SERVICE: Code = Code("unknown_service");
    pub const INVALID_PROTOCOL_VERSION: Code = Code("invalid_protocol_version");
    pub const INVALID_CLIENT_IDENTIFIER: Code = Code("invalid_client_identifier");
    pub const UNKNOWN_MEMBER: Code = Code("unknown_member");
    pub const UNKNOWN_HOST: Code = Code("unknown_host");
    pub const MAINTENANCE_MODE: Code = Code("maintenance_mode");
    /// The global configuration has expired.
    pub const OUTDATED_GLOBALCONF: Code = Code("outdated_globalconf");
    pub const MALFORMED_HASH_CHAIN: Code = Code("malformed_hash_chain");
    pub const ASIC_MIME_TYPE_NOT_FOUND: Code = Code("asic_mime_type_not_found");
    pub const ASIC_INVALID_MIME_TYPE: Code = Code("asic_invalid_mime_type");
    pub const ASIC_MESSAGE_NOT_FOUND: Code = Code("asic_message_not_found");
    pub const ASIC_SIGNATURE_NOT_FOUND: Code = Code("asic_signature_not_found");
    pub const ASIC_MANIFEST_NOT_FOUND: Code = Code("asic_manifest_not_found");
    pub const ASIC_HASH_CHAIN_RESULT_NOT_FOUND: Code = Code("asic_hash_chain_result_not_found");
    pub const ASIC_HASH_CHAIN_NOT_FOUND: Code = Code("asic_hash_chain_not_found");
    pub const ASIC_TIMESTAMP_NOT_FOUND: Code = Code("asic_timestamp_not_found");
    pub const ASIC_INVALID_CONTAINER: Code = Code("asic_invalid_container");
    pub const INVALID_HASH_CHAIN: Code = Code("invalid_hash_chain");
    pub const INVALID_HASH_CHAIN_REF: Code = Code("invalid_hash_chain_ref");
    pub const HASHCHAIN_UNUSED_INPUTS: Code = Code("hashchain_unused_inputs");
    /// Time-stamping has failed for longer than allowed: X-Road's
    /// `timestamper_failed` under the `logging_failed` prefix it adds when the
    /// message log refuses a record.
    pub const TIMESTAMPER_FAILED: Code = Code("logging_failed.timestamper_failed");
}

impl Code {
    /// The fault a client (information system) caused: `client.<code>`.
    pub fn client(self, message: impl Into<String>) -> Fault {
        Fault::new(format!("client.{}", self.0), message)
    }
    /// A fault of the client proxy: `server.clientproxy.<code>`.
    pub fn client_proxy(self, message: impl Into<String>) -> Fault {
        Fault::new(format!("server.clientproxy.{}", self.0), message)
    }
    /// A fault of the server proxy: `server.serverproxy.<code>`.
    pub fn server_proxy(self, message: impl Into<String>) -> Fault {
        Fault::new(format!("server.serverproxy.{}", self.0), message)
    }
    /// The server proxy found the provider's response bad:
    /// `server.serverproxy.service_failed.<code>`.
    pub fn server_proxy_service_failed(self, message: impl Into<String>) -> Fault {
        Fault::new(format!("server.serverproxy.service_failed.{}", self.0), message)
    }
    /// The client proxy found the server proxy's response bad:
    /// `server.clientproxy.service_failed.<code>`.
    pub fn client_proxy_service_failed(self, message: impl Into<String>) -> Fault {
        Fault::new(format!("server.clientproxy.service_failed.{}", self.0), message)
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

/// A SOAP 1.1 fault as X-Road sends it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    /// `faultcode`, e.g. `server.serverproxy.access_denied`.
    pub code: String,
    /// `faultstring`, a human-readable message.
    pub string: String,
    /// `faultactor`, usually empty.
    pub actor: String,
    /// X-Road's `faultDetail`: an identifier that ties the fault to the log.
    pub detail: String,
}

impl Fault {
    /// A fault with the given code and message.
    pub fn new(code: impl Into<String>, string: impl Into<String>) -> Self {
        Self { code: code.into(), string: string.into(), actor: String::new(), detail: String::new() }
    }

    /// Sets the `faultDetail` (X-Road puts a request id there).
    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = detail.into();
        self
    }

    /// Whether the fault was caused by the client (`client.*`, or a SOAP `Client` code).
    pub fn is_client_fault(&self) -> bool {
        self.code.starts_with("client.")
    }

    /// Encodes the fault as a SOAP 1.1 envelope, the way X-Road's
    /// `SoapFault.createFaultXml` lays it out.
    pub fn to_xml(&self) -> Vec<u8> {
        let mut s = String::with_capacity(512);
        s.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>");
        s.push_str("<SOAP-ENV:Envelope xmlns:SOAP-ENV=\"http://schemas.xmlsoap.org/soap/envelope/\">");
        s.push_str("<SOAP-ENV:Body><SOAP-ENV:Fault><faultcode>");
        s.push_str(&escape_text(&self.code));
        s.push_str("</faultcode><faultstring>");
        s.push_str(&escape_text(&self.string));
        s.push_str("</faultstring><faultactor>");
        s.push_str(&escape_text(&self.actor));
        s.push_str("</faultactor><detail><faultDetail xmlns=\"http://x-road.eu/xsd/xroad.xsd\">");
        s.push_str(&escape_text(&self.detail));
        s.push_str("</faultDetail></detail></SOAP-ENV:Fault></SOAP-ENV:Body></SOAP-ENV:Envelope>");
        s.into_bytes()
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.string)
    }
}

impl std::error::Error for Fault {}

/// Escapes text for an XML element body or attribute value.
pub fn escape_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            _ => out.push(ch),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_codes_by_origin() {
        assert_eq!(Code::INVALID_SOAP.client("x").code, "client.invalid_soap");
        assert_eq!(Code::ACCESS_DENIED.server_proxy("x").code, "server.serverproxy.access_denied");
        assert_eq!(
            Code::MISSING_HEADER.server_proxy_service_failed("x").code,
            "server.serverproxy.service_failed.missing_header"
        );
        assert_eq!(Code::NETWORK_ERROR.client_proxy("x").code, "server.clientproxy.network_error");
    }

    #[test]
    fn escapes_fault_text() {
        let xml = String::from_utf8(Code::INVALID_SOAP.client("a < b & c").to_xml()).unwrap();
        assert!(xml.contains("<faultstring>a &lt; b &amp; c</faultstring>"), "{xml}");
    }
}
