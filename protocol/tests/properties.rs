//! Property tests of the wire formats: what Musubi encodes parses back to
//! the same values, and no parser panics on arbitrary bytes. (The fuzz
//! targets in `fuzz/` search the same ground guided by coverage; these run
//! with every `cargo test`.)

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use musubi_protocol::mime::{MultipartLimits, MultipartStream, MultipartWriter, Part, StreamEvent, parse_multipart};
use musubi_protocol::soap::{self, Direction, Limits, Soap};
use musubi_protocol::{ClientId, SecurityServerId, ServiceId, asic, globalconf, hashchain, management, sharedparams};
use musubi_protocol::{transport, xades};
use proptest::prelude::*;

/// Parts of a multipart body: header lines and body.
type Parts = Vec<(Vec<(String, String)>, Vec<u8>)>;

/// An X-Road code: no `:;/\%`, no control characters, no outer spaces.
fn code() -> impl Strategy<Value = String> {
    "[A-Za-z0-9][A-Za-z0-9 ._()-]{0,12}[A-Za-z0-9]|[A-Za-z0-9]"
}

fn client() -> impl Strategy<Value = ClientId> {
    (code(), code(), code(), proptest::option::of(code())).prop_map(|(i, c, m, s)| {
        match s {
            Some(s) => ClientId::subsystem(&i, &c, &m, &s),
            None => ClientId::member(&i, &c, &m),
        }
        .expect("codes from the strategy are valid")
    })
}

fn header_value() -> impl Strategy<Value = String> {
    "[A-Za-z0-9/;=._+-]{1,30}"
}

/// Parts for a multipart body: headers and bodies that never hold a delimiter.
fn parts() -> impl Strategy<Value = Parts> {
    proptest::collection::vec(
        (
            proptest::collection::vec(("[A-Za-z][A-Za-z0-9-]{0,15}", header_value()), 0..4),
            proptest::collection::vec(any::<u8>(), 0..300),
        ),
        1..6,
    )
}

/// What a streamed parse of `body` in chunks of `sizes` yields.
fn streamed(body: &[u8], boundary: &str, sizes: &[usize]) -> Result<Parts, String> {
    let mut s = MultipartStream::new(boundary, MultipartLimits::default());
    let mut out: Parts = Vec::new();
    let mut rest = body;
    let mut sizes = sizes.iter().copied().cycle();
    loop {
        while let Some(event) = s.next_event().map_err(|e| e.to_string())? {
            match event {
                StreamEvent::Headers(h) => out.push((h, Vec::new())),
                StreamEvent::Data(d) => out.last_mut().ok_or("data before a part")?.1.extend_from_slice(d),
                StreamEvent::PartEnd => {}
                StreamEvent::End { .. } => return Ok(out),
            }
        }
        if rest.is_empty() {
            s.finish();
        } else {
            let n = sizes.next().unwrap_or(1).clamp(1, rest.len());
            s.push(&rest[..n]);
            rest = &rest[n..];
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn identifiers_print_and_parse_back(c in client(), service in code(), version in proptest::option::of(code()), server in code()) {
        prop_assert_eq!(c.to_string().parse::<ClientId>().expect("a printed client id parses"), c.clone());
        let s = ServiceId::new(c.clone(), &service, version.as_deref()).expect("valid codes");
        prop_assert_eq!(s.to_string().parse::<ServiceId>().expect("a printed service id parses"), s);
        let ss = SecurityServerId::new(c.member_id(), &server).expect("valid codes");
        prop_assert_eq!(ss.to_string().parse::<SecurityServerId>().expect("a printed server id parses"), ss);
    }

    #[test]
    fn requests_parse_to_the_header_they_were_built_with(
        c in client(),
        provider in client(),
        service in "[A-Za-z_][A-Za-z0-9_.-]{0,15}",
        // Header texts are read trimmed (pretty-printed headers), so none
        // starts or ends with a space here.
        id in "[A-Za-z0-9<>&\"'-]([A-Za-z0-9<>&\"' -]{0,38}[A-Za-z0-9<>&\"'-])?",
        user in proptest::option::of("[A-Za-z0-9<>&]([A-Za-z0-9<>& ]{0,18}[A-Za-z0-9<>&])?"),
    ) {
        let service = ServiceId::new(provider, &service, None).expect("valid codes");
        let body = format!("<{0}>1</{0}>", service.service_code());
        let xml = soap::build_request(&c, &service, &id, user.as_deref(), &body);
        let Soap::Message(m) = soap::parse(xml.as_bytes(), Direction::Request, &Limits::default())
            .expect("a built request parses") else { panic!("a built request parsed as a fault") };
        prop_assert_eq!(&m.header().client, &c);
        prop_assert_eq!(&m.header().service, &service);
        prop_assert_eq!(&m.header().id, &id);
        prop_assert_eq!(&m.header().user_id, &user);
        prop_assert_eq!(m.body_content().trim_ascii(), body.as_bytes());
    }

    #[test]
    fn multipart_bodies_parse_back_whole_and_in_any_chunks(
        parts in parts(),
        boundary in "[A-Za-z0-9'()+_,.=?-]{1,40}",
        sizes in proptest::collection::vec(1usize..64, 1..8),
    ) {
        let delimiter = format!("\n--{boundary}");
        for (_, body) in &parts {
            prop_assume!(!body.windows(delimiter.len()).any(|w| w == delimiter.as_bytes()));
            prop_assume!(!body.ends_with(b"\r") && !body.ends_with(b"\n"));
        }
        let mut w = MultipartWriter::new(boundary.clone());
        for (headers, body) in &parts {
            let h: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            w.part(&h, body);
        }
        let bytes = w.finish();
        let whole = parse_multipart(&bytes, &boundary, &MultipartLimits::default()).expect("a written body parses");
        prop_assert!(!whole.has_trailing_data());
        let got: Parts = whole
            .parts
            .iter()
            .map(|p| (p.headers.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(), p.body.to_vec()))
            .collect();
        prop_assert_eq!(&got, &parts);
        prop_assert_eq!(streamed(&bytes, &boundary, &sizes).expect("a written body streams"), parts);
    }

    #[test]
    fn transport_messages_decode_to_what_was_encoded(
        ocsp in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 1..200), 0..3),
        soap_body in "[a-z]{1,20}",
        attachments in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 0..3),
        signature in "[A-Za-z0-9<>/ ]{1,100}",
    ) {
        let soap_xml = format!("<?xml version=\"1.0\"?><x>{soap_body}</x>");
        let ocsp_refs: Vec<&[u8]> = ocsp.iter().map(Vec::as_slice).collect();
        let parts: Vec<Part<'_>> = attachments
            .iter()
            .map(|a| Part { headers: vec![("Content-Type", "application/octet-stream")], body: a })
            .collect();
        let boundary = "jetty42x-musubi-prop";
        for a in &attachments {
            prop_assume!(!a.windows(boundary.len()).any(|w| w == boundary.as_bytes()));
        }
        let headers = [("Content-Type", "text/xml; charset=UTF-8")];
        let (body, ct) = transport::encode(boundary, &ocsp_refs, &headers, soap_xml.as_bytes(), &parts, signature.as_bytes());
        let m = transport::decode(&ct, &body).expect("an encoded message decodes");
        prop_assert_eq!(m.ocsp, ocsp_refs);
        prop_assert_eq!(m.soap, soap_xml.as_bytes());
        prop_assert_eq!(m.signature, Some(signature.as_bytes()));
        prop_assert_eq!(m.attachments.len(), attachments.len());
        for (got, want) in m.attachments.iter().zip(&attachments) {
            prop_assert_eq!(got.body, want.as_slice());
        }
    }

    #[test]
    fn hash_chains_verify_for_every_input_and_for_nothing_else(
        messages in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..100), 1..9),
        pick in any::<prop::sample::Index>(),
    ) {
        let digest = |m: &[u8]| ring::digest::digest(&ring::digest::SHA512, m).as_ref().to_vec();
        let inputs: Vec<Vec<(String, Vec<u8>)>> =
            messages.iter().map(|m| vec![("/message.xml".to_owned(), digest(m))]).collect();
        let batch = hashchain::build(&inputs, "/sig-hashchain.xml").expect("a batch builds");
        let i = pick.index(messages.len());
        let verify = |message: &[u8]| {
            let chain = batch.chains[i].clone();
            let message = message.to_vec();
            let resolve = move |uri: &str| match uri {
                "/message.xml" => Some(message.clone()),
                _ => Some(chain.clone()),
            };
            hashchain::verify(&batch.result, &resolve, &[hashchain::Input { uri: "/message.xml", digest: None }])
        };
        prop_assert!(verify(&messages[i]).is_ok());
        prop_assert!(verify(&[messages[i].as_slice(), b"x"].concat()).is_err());
    }

    #[test]
    fn zips_read_back_what_was_written(
        entries in proptest::collection::btree_map("[a-z][a-z0-9_.-]{0,12}(/[a-z][a-z0-9_.-]{0,8})?", proptest::collection::vec(any::<u8>(), 0..500), 0..6),
    ) {
        let named: Vec<(&str, &[u8])> = entries.iter().map(|(n, b)| (n.as_str(), b.as_slice())).collect();
        let zip = asic::write_zip(&named).expect("plain names write");
        let back = asic::read_zip(&zip, &asic::Limits::default()).expect("a written zip reads");
        let want: Vec<(String, Vec<u8>)> = entries.into_iter().collect();
        prop_assert_eq!(back, want);
    }

    #[test]
    fn no_parser_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..2048), ct in "[ -~]{0,80}") {
        let limits = Limits::default();
        let _ = soap::parse(&bytes, Direction::Request, &limits);
        let _ = soap::parse(&bytes, Direction::Response, &limits);
        let _ = transport::decode(&ct, &bytes);
        let _ = parse_multipart(&bytes, "b", &MultipartLimits::default());
        let _ = streamed(&bytes, "b", &[7]);
        let _ = xades::verify(&bytes, &[xades::DataPart { uri: "/message.xml", bytes: &bytes }]);
        let _ = xades::inspect(&bytes);
        let _ = globalconf::parse_directory(&ct, &bytes);
        let _ = globalconf::parse_anchor(&bytes);
        let _ = sharedparams::read(&bytes);
        let _ = sharedparams::read_private(&bytes);
        let _ = management::decode(&ct, &bytes);
        let _ = management::parse_response(&bytes);
        let _ = asic::read(&bytes, &asic::Limits::default());
        let _ = asic::verify_archive(&bytes, None, &asic::Limits::default());
        let resolve = |_: &str| Some(bytes.clone());
        let _ = hashchain::verify(&bytes, &resolve, &[hashchain::Input { uri: "/message.xml", digest: None }]);
    }
}
