//! Time-stamp responses and tokens (`tsp::parse_response`,
//! `tsp::verify_token`, and the BER-to-DER normaliser they share) against
//! the process's test TSA. Its key is made afresh in every process, so no
//! input can carry a token it signed: one that verifies is a forgery.
#![no_main]

use libfuzzer_sys::fuzz_target;
use musubi_pki::tsp;

fuzz_target!(|data: &[u8]| {
    let tsa = musubi_fuzz::pki().tsa.cert_der();
    let _ = tsp::ber_to_der(data);
    let token = tsp::parse_response(data).unwrap_or_else(|_| data.to_vec());
    for covered in [&b""[..], b"message"] {
        let verified = tsp::verify_token(&token, covered, &[tsa]);
        assert!(verified.is_err(), "a token no key of this process signed verifies: {verified:?}");
    }
});
