//! OCSP responses (`ocsp::verify_response*`) for a member certificate of
//! the process's test CA. The CA's key is made afresh in every process, so
//! no input can carry a response it signed: one that verifies is a forgery.
#![no_main]

use libfuzzer_sys::fuzz_target;
use musubi_pki::ocsp;
use std::time::Duration;
use time::OffsetDateTime;

fuzz_target!(|data: &[u8]| {
    let pki = musubi_fuzz::pki();
    let (cert, issuer) = (pki.member.cert_der.as_slice(), pki.ca.cert_der());
    let now = OffsetDateTime::now_utc();
    let verified = ocsp::verify_response(data, cert, issuer, now, Duration::from_secs(1200));
    assert!(verified.is_err(), "a response no key of this process signed verifies: {verified:?}");
    let verified = ocsp::verify_response_with_responders(
        data,
        cert,
        issuer,
        &[pki.tsa.cert_der()],
        now,
        Duration::from_secs(3600),
    );
    assert!(verified.is_err(), "a response no key of this process signed verifies: {verified:?}");
    let _ = ocsp::serial_hex(data);
});
