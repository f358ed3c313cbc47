//! Management requests a security server sends the central server
//! (`management::decode`: a content type and a six-part body) and the
//! central server's answers (`parse_response`). A request that decodes is
//! encoded again (`encode`) and decodes to the same request.
#![no_main]

use libfuzzer_sys::fuzz_target;
use musubi_fuzz::split;
use musubi_protocol::management;

fuzz_target!(|data: &[u8]| {
    let _ = management::parse_response(data);
    let [ct, body] = split(data, 2)[..] else { return };
    let Ok(ct) = std::str::from_utf8(ct) else { return };
    let Ok(signed) = management::decode(ct, body) else { return };
    let _ = (signed.request.service_code(), signed.request.server(), signed.request.signing_member());
    let _ = signed.auth.verify(&signed.soap);
    let (ct, body) = management::encode(&signed);
    match management::decode(&ct, &body) {
        Ok(again) => assert_eq!(again, signed, "a request changed when encoded again"),
        Err(e) => panic!("an encoded request does not decode: {e}"),
    }
});
