//! What Musubi's fuzz targets share: the way an input holds several pieces,
//! a small test PKI made once per process, and the seed inputs each target
//! starts from (made with the project's own encoders, as the test suites
//! make them, plus the conformance vectors in `../shared/conformance`),
//! which the `seeds` program writes out.
//!
//! A fuzz input of several pieces (content type and body, signature and the
//! data it signs, …) separates them with [`SEP`]; a missing piece is empty.

use std::path::Path;
use std::sync::OnceLock;

use musubi_adapter::frame::{self, Eoj, Esv, Frame, Message, Property};
use musubi_pki::{DevCa, DevTsa, Issued, SigningKey, Usage};
use musubi_protocol::{
    ClientId, SecurityServerId, ServiceId, asic, globalconf, hashchain, management, soap, transport, xades,
};
use time::{Duration, OffsetDateTime};

/// Separates the pieces of one input.
pub const SEP: &[u8] = b"\n\x00--musubi-fuzz--\x00\n";

/// The first `n` pieces of `data` (the last takes the rest, separators included).
pub fn split(data: &[u8], n: usize) -> Vec<&[u8]> {
    let mut out = Vec::with_capacity(n);
    let mut rest = data;
    while out.len() + 1 < n {
        match rest.windows(SEP.len()).position(|w| w == SEP) {
            Some(i) => {
                out.push(&rest[..i]);
                rest = &rest[i + SEP.len()..];
            }
            None => break,
        }
    }
    out.push(rest);
    out.resize(n, &[][..]);
    out
}

/// Pieces joined into one input (the inverse of [`split`]).
pub fn join(pieces: &[&[u8]]) -> Vec<u8> {
    pieces.join(SEP)
}

/// A CA with a member signing certificate, its OCSP response, and a TSA.
pub struct Pki {
    /// The CA (also its own OCSP responder).
    pub ca: DevCa,
    /// A member's signing certificate and key.
    pub member: Issued,
    /// The member's signing key.
    pub signer: SigningKey,
    /// A good OCSP response for the member's certificate.
    pub member_ocsp: Vec<u8>,
    /// The time-stamping authority.
    pub tsa: DevTsa,
}

/// The process's test PKI, made on first use. Its keys differ in every
/// process, so no fuzz input can carry a signature they made.
#[allow(clippy::expect_used)]
pub fn pki() -> &'static Pki {
    static PKI: OnceLock<Pki> = OnceLock::new();
    PKI.get_or_init(|| {
        let ca = DevCa::new("Fuzz CA").expect("a CA");
        let member = ca.issue("fuzz member", "FUZZ/COM/1234", Usage::Sign, &[]).expect("a signing certificate");
        let signer = SigningKey::from_pkcs8(&member.key_pkcs8, member.cert_der.clone()).expect("the signing key");
        let request = musubi_pki::ocsp::build_request(&member.cert_der, ca.cert_der()).expect("an OCSP request");
        let member_ocsp = ca.ocsp_respond(&request, OffsetDateTime::now_utc());
        let tsa = DevTsa::new(&ca, "Fuzz TSA").expect("a TSA");
        Pki { ca, member, signer, member_ocsp, tsa }
    })
}

/// Limits for the ASiC targets: small, so that one input cannot take the
/// fuzzer's memory, yet large enough for every seed.
pub fn asic_limits() -> asic::Limits {
    asic::Limits { max_entries: 64, max_entry_bytes: 1 << 20, max_total_bytes: 4 << 20 }
}

/// One seed: the target it is for, a file name, the bytes.
pub type Seed = (&'static str, String, Vec<u8>);

/// Every target's seeds: made here, and read from `conformance` (the
/// `../shared/conformance` folder) when given.
pub fn seeds(conformance: Option<&Path>) -> Result<Vec<Seed>, String> {
    let mut out = made()?;
    if let Some(dir) = conformance {
        out.extend(from_conformance(dir)?);
    }
    Ok(out)
}

fn id(s: &str) -> Result<ClientId, String> {
    s.parse().map_err(|e| format!("{e}"))
}

fn made() -> Result<Vec<Seed>, String> {
    let mut out: Vec<Seed> = Vec::new();
    let mut add = |target: &'static str, name: &str, bytes: Vec<u8>| out.push((target, name.to_owned(), bytes));
    let pki = pki();
    let client = id("SUBSYSTEM:FUZZ/COM/1234/client")?;
    let service: ServiceId = "SERVICE:FUZZ/GOV/5678/provider/getRandom/v1".parse().map_err(|e| format!("{e}"))?;
    let request = soap::build_request(&client, &service, "fuzz-1", Some("EE1234"), "<getRandom/>");
    add("soap", "request.xml", request.clone().into_bytes());
    let adapter_request = soap::build_request(
        &client,
        &service,
        "fuzz-2",
        None,
        "<setProperties><deviceId>dev-1</deviceId><property name=\"targetTemperature\">24 &amp; &#x31;</property><property name=\"operationStatus\"/></setProperties>",
    );
    add("adapter_soap", "request.xml", adapter_request.into_bytes());
    add("soap", "fault.xml", musubi_protocol::Fault::new("server.service_failed", "fuzz").to_xml());
    for text in [client.to_string(), service.to_string(), "SERVER:FUZZ/COM/1234/ss1".to_owned()] {
        add("identifiers", &format!("{}.txt", text.replace([':', '/'], "_")), text.into_bytes());
    }

    // A signed transport message with an attachment, and its signature parts.
    let message = request.as_bytes();
    let attachment = b"attachment bytes\r\n--not-a-boundary\r\n".as_slice();
    let parts = [
        xades::DataPart { uri: "/message.xml", bytes: message },
        xades::DataPart { uri: "/attachment1", bytes: attachment },
    ];
    let signature =
        xades::sign(&pki.signer, &parts, "2026-12-01T09:00:00.000Z").map_err(|e| format!("signing: {e}"))?;
    add("xades", "signed.bin", join(&[&signature, message, attachment]));
    let attachments =
        [musubi_protocol::mime::Part { headers: vec![("Content-Type", "application/octet-stream")], body: attachment }];
    let (body, content_type) = transport::encode(
        "fuzz-boundary",
        &[&pki.member_ocsp],
        &[("Content-Type", "text/xml; charset=UTF-8")],
        message,
        &attachments,
        &signature,
    );
    add("transport", "signed.bin", join(&[content_type.as_bytes(), &body]));
    add("multipart", "transport.bin", join(&[b"fuzz-boundary", &body, &[0, 3, 17, 200]]));

    // A batch signature: hash chains over two messages.
    let inputs: Vec<Vec<(String, Vec<u8>)>> =
        [message, attachment].iter().map(|m| vec![("/message.xml".to_owned(), sha512(m))]).collect();
    let batch = hashchain::build(&inputs, "/sig-hashchain.xml").map_err(|e| format!("hash chain: {e}"))?;
    add("hashchain", "batch.bin", join(&[&batch.result, &batch.chains[0], b"", message]));

    // OCSP and time-stamp responses.
    add("ocsp", "good.der", pki.member_ocsp.clone());
    let ts_request = musubi_pki::tsp::build_request(musubi_pki::tsp::DigestAlg::Sha512, message)
        .map_err(|e| format!("time-stamp request: {e}"))?;
    let ts_response = pki.tsa.respond(&ts_request, OffsetDateTime::now_utc());
    add("tsp", "response.der", ts_response.clone());
    let token = musubi_pki::tsp::parse_response(&ts_response).map_err(|e| format!("time-stamp response: {e}"))?;
    add("tsp", "token.der", token.clone());

    // A message-log container (ASiC-E) with its time stamp.
    let container = asic::build_message_container(&asic::MessageRecord {
        message,
        signature: &signature,
        sig_hash_chain: None,
        timestamp: Some((&token, None)),
        attachments: &[attachment],
    })
    .map_err(|e| format!("container: {e}"))?;
    add("asic", "container.asice", container);

    // A signed global configuration directory and an anchor.
    let shared = "<?xml version=\"1.0\"?><tns:conf xmlns:tns=\"http://x-road.eu/xsd/xroad.xsd\"><instanceIdentifier>FUZZ</instanceIdentifier></tns:conf>";
    let files = [globalconf::NewFile {
        content_identifier: "SHARED-PARAMETERS",
        instance: "FUZZ",
        location: "V2/FUZZ/shared-params.xml",
        bytes: shared.as_bytes(),
    }];
    let sign = |data: &[u8]| xades::Signer::sign(&pki.signer, data);
    let (ct, dir) = globalconf::write_directory(
        OffsetDateTime::now_utc() + Duration::days(1),
        2,
        &files,
        xades::Signer::algorithm(&pki.signer),
        &pki.member.cert_der,
        &sign,
    )?;
    add("globalconf", "directory.txt", [format!("Content-Type: {ct}\n").as_bytes(), &dir].concat());
    add("multipart", "directory.bin", join(&[boundary_of(&ct)?.as_bytes(), &dir, &[40, 1]]));
    let anchor = globalconf::write_anchor(
        "FUZZ",
        "2026-12-01T09:00:00Z",
        &[globalconf::Source {
            location: "http://127.0.0.1/internalconf".into(),
            certs: vec![pki.ca.cert_der().to_vec()],
            external_certs: vec![],
        }],
    );
    add("globalconf", "anchor.xml", anchor.into_bytes());

    // Management requests, one per kind, with placeholder signatures.
    let server = SecurityServerId::new(id("MEMBER:FUZZ/COM/1234")?, "ss1").map_err(|e| format!("{e}"))?;
    let sig = |value: &[u8]| management::Signature {
        algorithm: "SHA256withECDSA".into(),
        value: value.to_vec(),
        cert: pki.member.cert_der.clone(),
    };
    let requests = [
        management::Request::AuthCertReg {
            server: server.clone(),
            address: "127.0.0.1".into(),
            auth_cert: pki.member.cert_der.clone(),
        },
        management::Request::ClientReg { server: server.clone(), client: client.clone() },
        management::Request::AddressChange { server: server.clone(), address: "ss1.example".into() },
    ];
    for (n, r) in requests.into_iter().enumerate() {
        let soap = management::request_soap(&r, &format!("m{n}")).map_err(|e| format!("{e}"))?;
        let signed = management::Signed {
            soap: soap.into_bytes(),
            id: format!("m{n}"),
            sender: server.owner().clone(),
            request: r,
            auth: sig(b"auth"),
            member: sig(b"member"),
            member_ocsp: pki.member_ocsp.clone(),
        };
        let (ct, body) = management::encode(&signed);
        add("management", &format!("request{n}.bin"), join(&[ct.as_bytes(), &body]));
        add("multipart", &format!("management{n}.bin"), join(&[boundary_of(&ct)?.as_bytes(), &body, &[n as u8 * 50]]));
    }

    // Admin API calls: the endpoint's number in `admin_json`'s list, then the body.
    let pem = musubi_pki::pem("CERTIFICATE", &pki.member.cert_der).replace('\n', "\\n");
    let bodies = [
        r#"{"role":"sign","label":"fuzz"}"#.to_owned(),
        r#"{"member":"MEMBER:DEMO/COM/2002"}"#.to_owned(),
        format!(r#"{{"certificate":"{pem}"}}"#),
        r#"{"client":"SUBSYSTEM:DEMO/COM/2002/fuzz"}"#.to_owned(),
        r#"{"url":"http://127.77.0.4:8080/","timeout_secs":5,"ssl_verify":false}"#.to_owned(),
        r#"{"subject":"SUBSYSTEM:DEMO/GOV/1001/care"}"#.to_owned(),
        r#"{"code":"fuzzers","description":"made by the fuzzer"}"#.to_owned(),
        r#"{"member":"SUBSYSTEM:DEMO/GOV/1001/care"}"#.to_owned(),
        r#"{"notice":"maintenance"}"#.to_owned(),
        "{}".to_owned(),
        r#"{"name":"fuzz","roles":["security_officer"]}"#.to_owned(),
    ];
    for (n, body) in bodies.iter().enumerate() {
        add("admin_json", &format!("endpoint{n}.json"), join(&[&[n as u8], body.as_bytes()]));
    }

    // The adapter's WSDL, and ECHONET Lite frames of its own making.
    let wsdl = musubi_wsdl::generate(&musubi_adapter::service::description("http://127.0.0.1:8090/"));
    add("wsdl", "adapter.wsdl", wsdl.into_bytes());
    let get = Frame::Format1(Message {
        tid: 1,
        seoj: Eoj([0x05, 0xFF, 0x01]),
        deoj: Eoj([0x01, 0x30, 0x01]),
        esv: Esv::SetGet,
        props: vec![Property { epc: 0x80, edt: vec![0x30] }],
        get_props: vec![Property { epc: 0xBB, edt: vec![] }],
    });
    add("echonet", "setget.bin", frame::encode(&get));
    add("echonet", "map.bin", frame::encode_property_map(&(0x80..=0xFF).step_by(3).collect::<Vec<u8>>()));
    Ok(out)
}

fn boundary_of(content_type: &str) -> Result<String, String> {
    let ct = musubi_protocol::mime::ContentType::parse(content_type).map_err(|e| e.to_string())?;
    ct.boundary().map(str::to_owned).map_err(|e| e.to_string())
}

fn sha512(data: &[u8]) -> Vec<u8> {
    musubi_pki::tsp::DigestAlg::Sha512.digest(data)
}

/// Which target a conformance file seeds, by its folder and extension.
fn target_of(rel: &str) -> Option<&'static str> {
    let ext = rel.rsplit_once('.').map(|(_, e)| e).unwrap_or("");
    Some(match ext {
        "query" | "answer" | "request" => "soap",
        "xml" if rel.starts_with("xroad/soap/") => "soap",
        "asice" | "zip" => "asic",
        "ocsp" => "ocsp",
        "response" => "tsp",
        _ if rel.starts_with("xroad/timestamps/") => "tsp",
        "xml" if rel.starts_with("xroad/identifiers/") => "identifiers",
        "xml" if rel.contains("anchor") => "globalconf",
        "txt" if rel.starts_with("xroad/globalconf/") => "globalconf",
        "xml" if rel.starts_with("xroad/globalconf/") => "sharedparams",
        "xml" if rel.starts_with("xroad/signatures/") => "xades",
        "xml" if rel.starts_with("xroad/hashchain/") => "hashchain",
        _ => return None,
    })
}

fn from_conformance(dir: &Path) -> Result<Vec<Seed>, String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let entries = std::fs::read_dir(&d).map_err(|e| format!("{}: {e}", d.display()))?;
        for entry in entries {
            let path = entry.map_err(|e| format!("{}: {e}", d.display()))?.path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let rel = path.strip_prefix(dir).map_err(|e| e.to_string())?.to_string_lossy().into_owned();
            let bytes = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            let name = rel.replace('/', "_");
            if rel == "echonet/frames.toml" {
                for (n, hex) in frame_hexes(&bytes).into_iter().enumerate() {
                    out.push(("echonet", format!("frames-{n}.bin"), hex));
                }
            } else if let Some(target) = target_of(&rel) {
                out.push((target, name, bytes));
            }
        }
    }
    // Signatures and hash chains with the data they cover, so that the
    // fuzzer starts past the digest checks.
    let read = |rel: &str| std::fs::read(dir.join(rel)).map_err(|e| format!("{rel}: {e}"));
    let sig = "xroad/signatures/";
    for (signature, message) in [
        ("common-test/sign-0.xml", "common-test/message-0.xml"),
        ("common-test/sign-0-old-format.xml", "common-test/message-0.xml"),
        ("globalconf-impl/batch-sig.xml", "globalconf-impl/message-1.xml"),
    ] {
        let pieces = [read(&format!("{sig}{signature}"))?, read(&format!("{sig}{message}"))?];
        out.push(("xades", format!("pair-{}", signature.replace('/', "_")), join(&[&pieces[0], &pieces[1]])));
    }
    let hc = "xroad/hashchain/common-message/hc-verifier";
    for (n, chains) in [(1, &["hashchain"][..]), (3, &["hashchain"]), (4, &["hashchain1", "hashchain2"])] {
        let result = read(&format!("{hc}{n}-hashchainresult.xml"))?;
        let message = read(&format!("{hc}{n}-message.xml"))?;
        let first = read(&format!("{hc}{n}-{}.xml", chains[0]))?;
        let second = match chains.get(1) {
            Some(c) => read(&format!("{hc}{n}-{c}.xml"))?,
            None => Vec::new(),
        };
        out.push(("hashchain", format!("verifier{n}.bin"), join(&[&result, &first, &second, &message])));
    }
    Ok(out)
}

/// The `hex = "…"` values of `frames.toml`, decoded.
fn frame_hexes(toml: &[u8]) -> Vec<Vec<u8>> {
    String::from_utf8_lossy(toml)
        .lines()
        .filter_map(|l| l.trim().strip_prefix("hex = \"")?.strip_suffix('"').map(str::to_owned))
        .filter_map(|h| {
            (0..h.len())
                .step_by(2)
                .map(|i| h.get(i..i + 2).and_then(|b| u8::from_str_radix(b, 16).ok()))
                .collect::<Option<Vec<u8>>>()
        })
        .collect()
}
