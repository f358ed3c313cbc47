//! The transport message between security servers (`transport::decode`): a
//! content type and a multipart body. What decodes encodes again (with the
//! same parts) and decodes to the same message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use musubi_fuzz::split;
use musubi_protocol::transport;

fuzz_target!(|data: &[u8]| {
    let [ct, body] = split(data, 2)[..] else { return };
    let Ok(ct) = std::str::from_utf8(ct) else { return };
    let _ = transport::boundary_of(ct);
    let Ok(m) = transport::decode(ct, body) else { return };
    let _ = transport::check_soap_part(m.soap);
    let (Some(signature), None, None) = (m.signature, m.hash_chain, m.fault) else { return };
    // The encoder takes its boundary from the caller (the server makes a random one).
    if body.windows(15).any(|w| w == b"fuzz-re-encoded") {
        return;
    }
    let (again_body, again_ct) =
        transport::encode("fuzz-re-encoded", &m.ocsp, &m.soap_headers, m.soap, &m.attachments, signature);
    let again = match transport::decode(&again_ct, &again_body) {
        Ok(a) => a,
        Err(e) => panic!("a decoded message does not decode once encoded again: {e}"),
    };
    assert_eq!(again.ocsp, m.ocsp);
    assert_eq!(again.soap, m.soap);
    assert_eq!(again.soap_headers, m.soap_headers);
    assert_eq!(again.signature, m.signature);
    assert_eq!(again.attachments.len(), m.attachments.len());
    for (a, b) in again.attachments.iter().zip(&m.attachments) {
        assert_eq!((&a.headers, a.body), (&b.headers, b.body));
    }
});
