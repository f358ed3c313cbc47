//! XAdES signature documents (`xades::verify`) over a message and an
//! attachment, the signature's own parts (`signature_value`, `inspect`),
//! and a batch signature's hash chains (`verify_batch`). A signature that
//! verifies stops verifying when the message gains one byte.
#![no_main]

use libfuzzer_sys::fuzz_target;
use musubi_fuzz::split;
use musubi_protocol::xades::{self, DataPart};

fuzz_target!(|data: &[u8]| {
    let [signature, message, attachment, chain] = split(data, 4)[..] else { return };
    let parts = [DataPart { uri: "/message.xml", bytes: message }, DataPart { uri: "/attachment1", bytes: attachment }];
    let n = if attachment.is_empty() { 1 } else { 2 };
    let _ = xades::signature_value(signature);
    let _ = xades::inspect(signature);
    if xades::verify(signature, &parts[..n]).is_ok() {
        let longer = [message, b"x"].concat();
        let changed = [DataPart { uri: "/message.xml", bytes: &longer }, parts[1]];
        assert!(xades::verify(signature, &changed[..n]).is_err(), "a signature verifies over a changed message");
    }
    let _ = xades::verify_batch(signature, attachment, chain, &parts[..1]);
});
