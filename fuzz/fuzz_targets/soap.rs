//! X-Road SOAP envelopes and headers (`soap::parse`) from a client or a
//! provider. A response the server proxy stamps with the request's hash
//! (`with_request_hash`) parses again to the same header with that hash.
#![no_main]

use libfuzzer_sys::fuzz_target;
use musubi_protocol::soap::{self, Direction, Limits, RequestHash, Soap};

const SHA512: &str = "http://www.w3.org/2001/04/xmlenc#sha512";

fuzz_target!(|data: &[u8]| {
    let limits = Limits { max_bytes: 1 << 20, max_depth: 64 };
    let _ = soap::parse(data, Direction::Request, &limits).map(|s| match s {
        Soap::Message(m) => (m.body_name().len(), m.body_content().len(), m.is_rpc(), m.without_body().len()),
        Soap::Fault(_) => (0, 0, false, 0),
    });
    if let Ok(Soap::Message(m)) = soap::parse(data, Direction::Response, &limits) {
        let stamped = m.with_request_hash(SHA512, "c3RhbXBlZA==");
        match soap::parse(&stamped, Direction::Response, &Limits { max_bytes: 2 << 20, ..limits }) {
            Ok(Soap::Message(again)) => {
                let mut expected = m.header().clone();
                expected.request_hash = Some(RequestHash { algorithm: SHA512.into(), value: "c3RhbXBlZA==".into() });
                assert_eq!(again.header(), &expected, "the stamped response's header changed");
                assert_eq!(again.body_content(), m.body_content(), "the stamped response's body changed");
            }
            other => panic!("a response stamped with the request hash does not parse: {other:?}"),
        }
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = soap::check_content_type(text);
    }
});
