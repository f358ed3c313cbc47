//! X-Road's signed configuration directory (global configuration protocol,
//! PR-GCONF): parsing, verification, writing; and configuration anchors.
//!
//! A directory is `multipart/related`: part 1 is the *signed data*, a
//! `multipart/mixed` whose first part carries `Expire-date` (and `Version`
//! from version 3 on) and whose other parts each name one file by
//! `Content-identifier` and `Content-location` with the file's hash; part 2
//! is the signature over the body of part 1, with its algorithm and the hash
//! of the verification certificate. Header names are case-insensitive and
//! lines may end in CRLF or LF (X-Road's own files use both); the signed
//! data's last part may end without a closing delimiter.
//!
//! A security server trusts the verification certificates of its anchor and,
//! once it has accepted a configuration, those that configuration's shared
//! parameters announce in `<source>` (key rotation: the new certificate is
//! announced before it signs).
//!
//! Error codes follow X-Road's (`global_conf_…`); a directory cut off before
//! its signature is reported as X-Road reports it,
//! `global_conf_missing_signed_data_expiration_date`.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use xml_sec::Node;
use xml_sec::document::XmlDocument;

use crate::mime::{self, ContentType, MultipartLimits};

/// Largest directory accepted, bytes.
pub const MAX_DIRECTORY_BYTES: usize = 1024 * 1024;
/// Most files one directory may list.
pub const MAX_FILES: usize = 64;
/// The hash algorithm X-Road uses for files and certificates.
pub const SHA512: &str = "http://www.w3.org/2001/04/xmlenc#sha512";
/// SHA-256, also accepted.
pub const SHA256: &str = "http://www.w3.org/2001/04/xmlenc#sha256";

/// Why a directory or anchor is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GlobalConfError {
    /// Not a signed directory at all, or broken inside.
    #[error("malformed configuration directory: {0}")]
    Malformed(String),
    /// The directory stops before its signature.
    #[error("the configuration directory is cut off ({0}); download it again")]
    Truncated(String),
    /// A required header is missing.
    #[error("the configuration directory has no {0} header")]
    MissingHeader(&'static str),
    /// No trusted certificate has the hash the signature names.
    #[error("no trusted verification certificate has hash {0}; is the anchor current?")]
    MissingVerificationCert(String),
    /// The signature does not verify.
    #[error("the configuration directory's signature does not verify: {0}")]
    BadSignature(String),
    /// A file does not have the hash the directory lists.
    #[error("{0} does not match the hash in the signed directory")]
    HashMismatch(String),
    /// An algorithm is not supported.
    #[error("algorithm {0:?} is not supported")]
    Algorithm(String),
    /// The anchor cannot be read.
    #[error("configuration anchor: {0}")]
    Anchor(String),
}

impl GlobalConfError {
    /// X-Road's error code for this refusal.
    pub fn code(&self) -> &'static str {
        match self {
            GlobalConfError::Malformed(_) | GlobalConfError::Algorithm(_) => "global_conf_malformed",
            GlobalConfError::Truncated(_) => "global_conf_missing_signed_data_expiration_date",
            GlobalConfError::MissingHeader(_) => "global_conf_header_field_missing",
            GlobalConfError::MissingVerificationCert(_) => "global_conf_missing_verification_cert",
            GlobalConfError::BadSignature(_) => "global_conf_signature_verification_failure",
            GlobalConfError::HashMismatch(_) => "global_conf_invalid_hash",
            GlobalConfError::Anchor(_) => "global_conf_anchor_invalid",
        }
    }
}

/// One file listed in a directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryFile {
    /// `SHARED-PARAMETERS`, `PRIVATE-PARAMETERS`, …
    pub content_identifier: String,
    /// The `instance` parameter of `Content-identifier`.
    pub instance: Option<String>,
    /// Where to download it, relative to the directory's URL.
    pub location: String,
    /// The hash algorithm URI.
    pub hash_algorithm: String,
    /// The hash.
    pub hash: Vec<u8>,
}

/// A parsed, not yet verified, signed directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directory {
    /// `Expire-date` (RFC 3339).
    pub expire_date: time::OffsetDateTime,
    /// `Version`, absent in version 2.
    pub version: Option<u32>,
    /// The files.
    pub files: Vec<DirectoryFile>,
    /// The signed bytes.
    pub signed_data: Vec<u8>,
    /// Signature algorithm URI.
    pub signature_algorithm: String,
    /// Hash of the verification certificate.
    pub cert_hash: Vec<u8>,
    /// Its algorithm URI.
    pub cert_hash_algorithm: String,
    /// The signature.
    pub signature: Vec<u8>,
}

fn digest(alg: &str, data: &[u8]) -> Result<Vec<u8>, GlobalConfError> {
    let a = match alg {
        SHA512 => &ring::digest::SHA512,
        SHA256 => &ring::digest::SHA256,
        "http://www.w3.org/2001/04/xmldsig-more#sha384" => &ring::digest::SHA384,
        other => return Err(GlobalConfError::Algorithm(other.to_string())),
    };
    Ok(ring::digest::digest(a, data).as_ref().to_vec())
}

/// Splits a file that starts with its own `Content-Type:` header line (as
/// X-Road's test files and saved downloads do) into (content type, body).
pub fn split_header(file: &[u8]) -> Result<(String, &[u8]), GlobalConfError> {
    let end =
        file.iter().position(|b| *b == b'\n').ok_or_else(|| GlobalConfError::Malformed("no header line".into()))?;
    let line =
        std::str::from_utf8(&file[..end]).map_err(|_| GlobalConfError::Malformed("header is not UTF-8".into()))?;
    let (name, value) = line.split_once(':').ok_or_else(|| GlobalConfError::Malformed("no header line".into()))?;
    if !name.trim().eq_ignore_ascii_case("content-type") {
        return Err(GlobalConfError::Malformed(format!("the first line is {name:?}, not Content-Type")));
    }
    Ok((value.trim().to_string(), &file[end + 1..]))
}

fn boundary(ct: &ContentType, what: &str) -> Result<String, GlobalConfError> {
    ct.param("boundary")
        .map(str::to_string)
        .ok_or_else(|| GlobalConfError::Malformed(format!("the {what} content type has no boundary")))
}

/// Parts of the signed data: split at each delimiter line; the last part
/// may run to the end of the data (X-Road writes it so).
fn inner_parts<'a>(data: &'a [u8], boundary: &str) -> Result<Vec<mime::Part<'a>>, GlobalConfError> {
    let delim = format!("--{boundary}");
    let mut starts = Vec::new();
    let mut pos = 0;
    while pos < data.len() {
        let line_end = data[pos..].iter().position(|b| *b == b'\n').map_or(data.len(), |i| pos + i);
        let line = &data[pos..line_end];
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line == delim.as_bytes() {
            starts.push((pos, line_end, false));
        } else if line == format!("{delim}--").as_bytes() {
            starts.push((pos, line_end, true));
            break;
        }
        pos = line_end + 1;
    }
    let mut parts = Vec::new();
    for (i, &(_, line_end, closing)) in starts.iter().enumerate() {
        if closing {
            break;
        }
        let body_start = (line_end + 1).min(data.len());
        let mut body_end = starts.get(i + 1).map_or(data.len(), |s| s.0);
        // The line break before the next delimiter belongs to the delimiter.
        if starts.get(i + 1).is_some() {
            body_end = body_end.saturating_sub(1);
            if body_end > body_start && data[body_end - 1] == b'\r' {
                body_end -= 1;
            }
        }
        let body_end = body_end.max(body_start);
        if parts.len() > MAX_FILES {
            return Err(GlobalConfError::Malformed(format!("more than {MAX_FILES} files")));
        }
        parts.push(
            mime::parse_part(&data[body_start..body_end], &MultipartLimits::default())
                .map_err(|e| GlobalConfError::Malformed(e.to_string()))?,
        );
    }
    Ok(parts)
}

fn header_param(value: &str, name: &str) -> Option<String> {
    value.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim().trim_matches(|c| c == '"' || c == '\'').to_string())
    })
}

fn b64(text: &[u8], what: &str) -> Result<Vec<u8>, GlobalConfError> {
    let clean: Vec<u8> = text.iter().copied().filter(|b| !b.is_ascii_whitespace()).collect();
    B64.decode(&clean).map_err(|_| GlobalConfError::Malformed(format!("{what} is not base64")))
}

/// Parses a signed directory served with `content_type`.
pub fn parse_directory(content_type: &str, body: &[u8]) -> Result<Directory, GlobalConfError> {
    if body.len() > MAX_DIRECTORY_BYTES {
        return Err(GlobalConfError::Malformed(format!("{} bytes exceeds {MAX_DIRECTORY_BYTES}", body.len())));
    }
    let outer_ct = ContentType::parse(content_type).map_err(|e| GlobalConfError::Malformed(e.to_string()))?;
    if outer_ct.mime != "multipart/related" {
        return Err(GlobalConfError::Malformed(format!("content type {} is not multipart/related", outer_ct.mime)));
    }
    let outer = mime::parse_multipart(body, &boundary(&outer_ct, "directory")?, &MultipartLimits::default())
        .map_err(|e| GlobalConfError::Truncated(e.to_string()))?;
    let [signed, sig, ..] = outer.parts.as_slice() else {
        return Err(GlobalConfError::Truncated("no signature part".into()));
    };
    let signed_ct = signed.content_type().map_err(|e| GlobalConfError::Malformed(e.to_string()))?;
    if signed_ct.mime != "multipart/mixed" {
        return Err(GlobalConfError::Malformed(format!("signed data is {}, not multipart/mixed", signed_ct.mime)));
    }
    let parts = inner_parts(signed.body, &boundary(&signed_ct, "signed data")?)?;
    let first = parts.first().ok_or(GlobalConfError::MissingHeader("Expire-date"))?;
    let expire = first.header("expire-date").ok_or(GlobalConfError::MissingHeader("Expire-date"))?;
    let expire_date = time::OffsetDateTime::parse(expire, &time::format_description::well_known::Rfc3339)
        .map_err(|_| GlobalConfError::Malformed(format!("Expire-date {expire:?} is not an RFC 3339 time")))?;
    let version = match first.header("version") {
        Some(v) => Some(v.parse().map_err(|_| GlobalConfError::Malformed(format!("Version {v:?}")))?),
        None => None,
    };
    let mut files = Vec::new();
    for p in &parts[1..] {
        let id = p.header("content-identifier").ok_or(GlobalConfError::MissingHeader("Content-identifier"))?;
        let location = p.header("content-location").ok_or(GlobalConfError::MissingHeader("Content-location"))?;
        let hash_algorithm =
            p.header("hash-algorithm-id").ok_or(GlobalConfError::MissingHeader("Hash-algorithm-id"))?;
        files.push(DirectoryFile {
            content_identifier: id.split(';').next().unwrap_or("").trim().to_string(),
            instance: header_param(id, "instance"),
            location: location.to_string(),
            hash_algorithm: hash_algorithm.to_string(),
            hash: b64(p.body, "a file hash")?,
        });
    }
    let signature_algorithm =
        sig.header("signature-algorithm-id").ok_or(GlobalConfError::MissingHeader("Signature-algorithm-id"))?;
    let cert = sig
        .header("verification-certificate-hash")
        .ok_or(GlobalConfError::MissingHeader("Verification-certificate-hash"))?;
    let cert_hash = b64(cert.split(';').next().unwrap_or("").as_bytes(), "the certificate hash")?;
    let cert_hash_algorithm = header_param(cert, "hash-algorithm-id").unwrap_or_else(|| SHA512.to_string());
    Ok(Directory {
        expire_date,
        version,
        files,
        signed_data: signed.body.to_vec(),
        signature_algorithm: signature_algorithm.to_string(),
        cert_hash,
        cert_hash_algorithm,
        signature: b64(sig.body, "the signature").unwrap_or_default(),
    })
}

impl Directory {
    /// Verifies the signature with the one of `certs` (DER) whose hash the
    /// directory names; returns its index.
    pub fn verify(&self, certs: &[Vec<u8>]) -> Result<usize, GlobalConfError> {
        let mut found = None;
        for (i, c) in certs.iter().enumerate() {
            if digest(&self.cert_hash_algorithm, c)? == self.cert_hash {
                found = Some(i);
                break;
            }
        }
        let i = found.ok_or_else(|| GlobalConfError::MissingVerificationCert(B64.encode(&self.cert_hash)))?;
        if self.signature.is_empty() {
            return Err(GlobalConfError::BadSignature("the signature part is empty".into()));
        }
        crate::xades::verify_raw(&certs[i], &self.signature_algorithm, &self.signed_data, &self.signature)
            .map_err(GlobalConfError::BadSignature)?;
        Ok(i)
    }

    /// The file listed as `content_identifier`.
    pub fn file(&self, content_identifier: &str) -> Option<&DirectoryFile> {
        self.files.iter().find(|f| f.content_identifier == content_identifier)
    }

    /// Checks downloaded `bytes` against the hash listed for `file`.
    pub fn check_file(&self, file: &DirectoryFile, bytes: &[u8]) -> Result<(), GlobalConfError> {
        if digest(&file.hash_algorithm, bytes)? == file.hash {
            Ok(())
        } else {
            Err(GlobalConfError::HashMismatch(file.location.clone()))
        }
    }
}

/// A file to list in a directory being written.
#[derive(Debug, Clone)]
pub struct NewFile<'a> {
    /// `SHARED-PARAMETERS`, …
    pub content_identifier: &'a str,
    /// The instance.
    pub instance: &'a str,
    /// Its location.
    pub location: &'a str,
    /// Its bytes (only the hash is written).
    pub bytes: &'a [u8],
}

/// Signs bytes with the configuration signing key.
pub type SignFn<'a> = &'a dyn Fn(&[u8]) -> Result<Vec<u8>, String>;

/// Writes a signed directory: (content type, body). `sign` signs the signed
/// data with the key of `cert_der` under `signature_algorithm`.
pub fn write_directory(
    expire_date: time::OffsetDateTime,
    version: u32,
    files: &[NewFile<'_>],
    signature_algorithm: &str,
    cert_der: &[u8],
    sign: SignFn<'_>,
) -> Result<(String, Vec<u8>), String> {
    let expire = expire_date
        .replace_nanosecond(0)
        .map_err(|e| e.to_string())?
        .format(&time::format_description::well_known::Rfc3339)
        .map_err(|e| e.to_string())?;
    let (outer, inner) = ("envelope-musubi-gconf", "inner-musubi-gconf");
    let mut signed = format!("--{inner}\r\nExpire-date: {expire}\r\nVersion: {version}\r\n\r\n");
    for f in files {
        let hash = B64.encode(ring::digest::digest(&ring::digest::SHA512, f.bytes));
        signed.push_str(&format!(
            "\r\n--{inner}\r\nContent-type: application/octet-stream\r\nContent-transfer-encoding: base64\r\nContent-identifier: {}; instance=\"{}\"\r\nContent-location: {}\r\nHash-algorithm-id: {SHA512}\r\n\r\n{hash}",
            f.content_identifier, f.instance, f.location
        ));
    }
    signed.push_str(&format!("\r\n--{inner}--"));
    let signature = B64.encode(sign(signed.as_bytes())?);
    let cert_hash = B64.encode(ring::digest::digest(&ring::digest::SHA512, cert_der));
    let body = format!(
        "--{outer}\r\nContent-Type: multipart/mixed; charset=UTF-8; boundary={inner}\r\n\r\n{signed}\r\n--{outer}\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\nSignature-Algorithm-Id: {signature_algorithm}\r\nVerification-certificate-hash: {cert_hash}; hash-algorithm-id=\"{SHA512}\"\r\n\r\n{signature}\r\n--{outer}--\r\n"
    );
    Ok((format!("multipart/related; charset=UTF-8; boundary={outer}"), body.into_bytes()))
}

/// Whether `bytes` are a parameters file (`<conf>` in X-Road's namespace,
/// well-formed, no DOCTYPE).
pub fn is_params(bytes: &[u8]) -> bool {
    parse_xml(bytes, |root| {
        let ns = root.tag_name().namespace().unwrap_or("");
        if root.tag_name().name() == "conf" && ns == "http://x-road.eu/xsd/xroad.xsd" {
            Ok(())
        } else {
            Err(String::new())
        }
    })
    .is_ok()
}

/// One source of an anchor or of shared parameters' `<source>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// `downloadURL` (anchor) or `address` (shared parameters).
    pub location: String,
    /// Verification certificates (DER): the anchor's, or the internal ones announced.
    pub certs: Vec<Vec<u8>>,
    /// External verification certificates announced (shared parameters only).
    pub external_certs: Vec<Vec<u8>>,
}

/// A configuration anchor: where to download and whom to trust.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Anchor {
    /// The instance.
    pub instance: String,
    /// `generatedAt`.
    pub generated_at: String,
    /// Its sources.
    pub sources: Vec<Source>,
}

impl Anchor {
    /// Every verification certificate of every source, without repeats.
    pub fn certs(&self) -> Vec<Vec<u8>> {
        let mut out: Vec<Vec<u8>> = Vec::new();
        for c in self.sources.iter().flat_map(|s| s.certs.iter()) {
            if !out.contains(c) {
                out.push(c.clone());
            }
        }
        out
    }
}

fn children<'a, 'b>(n: Node<'a, 'b>, name: &'static str) -> impl Iterator<Item = Node<'a, 'b>> {
    n.children().filter(move |c| c.is_element() && c.tag_name().name() == name)
}

fn text_of(n: Node<'_, '_>) -> String {
    n.text().unwrap_or("").trim().to_string()
}

fn cert_b64(text: &str) -> Result<Vec<u8>, String> {
    let clean: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    B64.decode(clean).map_err(|_| "a certificate is not base64".to_string())
}

/// Parses bounded XML without DOCTYPE and hands `f` the root element: the
/// preamble every configuration file (anchors, shared parameters) shares.
pub(crate) fn parse_xml<T>(bytes: &[u8], f: impl FnOnce(Node<'_, '_>) -> Result<T, String>) -> Result<T, String> {
    if bytes.len() > crate::sharedparams::MAX_SHARED_PARAMS_BYTES {
        return Err(format!("{} bytes exceeds {}", bytes.len(), crate::sharedparams::MAX_SHARED_PARAMS_BYTES));
    }
    let text = std::str::from_utf8(bytes).map_err(|_| "not UTF-8".to_string())?;
    if text.contains("<!DOCTYPE") {
        return Err("DOCTYPE is not allowed".into());
    }
    let doc = XmlDocument::parse(text).map_err(|e| format!("does not parse: {e}"))?;
    doc.with_view(|view| f(view.document().root_element()))
}

/// Reads a configuration anchor (`configurationAnchor`).
pub fn parse_anchor(bytes: &[u8]) -> Result<Anchor, GlobalConfError> {
    parse_xml(bytes, |root| {
        if root.tag_name().name() != "configurationAnchor" {
            return Err(format!("the root element is <{}>", root.tag_name().name()));
        }
        let instance = children(root, "instanceIdentifier").next().map(text_of).unwrap_or_default();
        if instance.is_empty() {
            return Err("no instanceIdentifier".into());
        }
        let mut sources = Vec::new();
        for s in children(root, "source") {
            let location = children(s, "downloadURL").next().map(text_of).unwrap_or_default();
            let certs = children(s, "verificationCert").map(|c| cert_b64(&text_of(c))).collect::<Result<_, _>>()?;
            sources.push(Source { location, certs, external_certs: Vec::new() });
        }
        if sources.is_empty() {
            return Err("no source".into());
        }
        let generated_at = children(root, "generatedAt").next().map(text_of).unwrap_or_default();
        Ok(Anchor { instance, generated_at, sources })
    })
    .map_err(GlobalConfError::Anchor)
}

/// Writes a configuration anchor for `instance` with its sources.
pub fn write_anchor(instance: &str, generated_at: &str, sources: &[Source]) -> String {
    use crate::fault::escape_text as e;
    let mut s = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\n<ns3:configurationAnchor xmlns:ns2=\"http://x-road.eu/xsd/identifiers\" xmlns:ns3=\"http://x-road.eu/xsd/xroad.xsd\">\n",
    );
    s.push_str(&format!(
        "    <generatedAt>{}</generatedAt>\n    <instanceIdentifier>{}</instanceIdentifier>\n",
        e(generated_at),
        e(instance)
    ));
    for src in sources {
        s.push_str(&format!("    <source>\n        <downloadURL>{}</downloadURL>\n", e(&src.location)));
        for c in &src.certs {
            s.push_str(&format!("        <verificationCert>{}</verificationCert>\n", B64.encode(c)));
        }
        s.push_str("    </source>\n");
    }
    s.push_str("</ns3:configurationAnchor>\n");
    s
}

/// The configuration sources a shared-parameters file announces (`<source>`
/// with `address` and internal/external verification certificates).
pub fn announced_sources(shared_params: &[u8]) -> Result<Vec<Source>, GlobalConfError> {
    parse_xml(shared_params, sources_of).map_err(|e| GlobalConfError::Malformed(format!("shared parameters: {e}")))
}

/// The `<source>` elements under a shared-parameters root.
pub(crate) fn sources_of(root: Node<'_, '_>) -> Result<Vec<Source>, String> {
    let mut out = Vec::new();
    for s in children(root, "source") {
        let location = children(s, "address").next().map(text_of).unwrap_or_default();
        let certs = children(s, "internalVerificationCert").map(|c| cert_b64(&text_of(c))).collect::<Result<_, _>>()?;
        let external_certs =
            children(s, "externalVerificationCert").map(|c| cert_b64(&text_of(c))).collect::<Result<_, _>>()?;
        out.push(Source { location, certs, external_certs });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> (ring::signature::EcdsaKeyPair, Vec<u8>) {
        let rng = ring::rand::SystemRandom::new();
        let alg = &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING;
        let pkcs8 = ring::signature::EcdsaKeyPair::generate_pkcs8(alg, &rng).unwrap();
        let kp = ring::signature::EcdsaKeyPair::from_pkcs8(alg, pkcs8.as_ref(), &rng).unwrap();
        // A self-signed certificate for the key, made with rcgen.
        let key = rcgen::KeyPair::try_from(pkcs8.as_ref()).unwrap();
        let cert = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap().self_signed(&key).unwrap();
        (kp, cert.der().to_vec())
    }

    #[test]
    fn written_directories_parse_and_verify_and_tampering_is_caught() {
        let (kp, cert) = key();
        let rng = ring::rand::SystemRandom::new();
        let shared = b"<conf>shared</conf>".to_vec();
        let private = b"<conf>private</conf>".to_vec();
        let files = [
            NewFile {
                content_identifier: "SHARED-PARAMETERS",
                instance: "DEMO",
                location: "/V5/1/shared-params.xml",
                bytes: &shared,
            },
            NewFile {
                content_identifier: "PRIVATE-PARAMETERS",
                instance: "DEMO",
                location: "/V5/1/private-params.xml",
                bytes: &private,
            },
        ];
        let expire = time::OffsetDateTime::from_unix_timestamp(2_000_000_000).unwrap();
        let sign = |d: &[u8]| kp.sign(&rng, d).map(|s| s.as_ref().to_vec()).map_err(|_| "sign".to_string());
        let (ct, body) =
            write_directory(expire, 5, &files, "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256", &cert, &sign)
                .unwrap();
        let d = parse_directory(&ct, &body).unwrap();
        assert_eq!(d.expire_date, expire);
        assert_eq!(d.version, Some(5));
        assert_eq!(d.files.len(), 2);
        assert_eq!(d.files[0].instance.as_deref(), Some("DEMO"));
        assert_eq!(d.verify(std::slice::from_ref(&cert)), Ok(0));
        d.check_file(d.file("SHARED-PARAMETERS").unwrap(), &shared).unwrap();
        assert_eq!(
            d.check_file(d.file("PRIVATE-PARAMETERS").unwrap(), b"<conf>evil</conf>").unwrap_err().code(),
            "global_conf_invalid_hash"
        );
        // One changed byte in the signed data.
        let text = String::from_utf8(body.clone()).unwrap().replacen("Version: 5", "Version: 6", 1);
        let tampered = parse_directory(&ct, text.as_bytes()).unwrap();
        assert_eq!(
            tampered.verify(std::slice::from_ref(&cert)).unwrap_err().code(),
            "global_conf_signature_verification_failure"
        );
        // Cut off before the signature.
        let cut = &body[..body.len() / 2];
        assert_eq!(parse_directory(&ct, cut).unwrap_err().code(), "global_conf_missing_signed_data_expiration_date");
        // Another key's certificate is not the one named.
        let (_, other) = key();
        assert_eq!(d.verify(&[other]).unwrap_err().code(), "global_conf_missing_verification_cert");
    }

    #[test]
    fn anchors_round_trip() {
        let (_, cert) = key();
        let src =
            Source { location: "http://127.0.0.9/internalconf".into(), certs: vec![cert], external_certs: vec![] };
        let xml = write_anchor("DEMO", "2026-11-24T00:00:00Z", std::slice::from_ref(&src));
        let a = parse_anchor(xml.as_bytes()).unwrap();
        assert_eq!(a.instance, "DEMO");
        assert_eq!(a.sources, vec![src]);
        assert!(parse_anchor(b"<configurationAnchor/>").is_err());
    }
}
