//! Hash chains (`hashchain::verify`): a result, up to two chain documents
//! and the message they cover. A chain that verifies stops verifying when
//! the message gains one byte.
#![no_main]

use libfuzzer_sys::fuzz_target;
use musubi_fuzz::split;
use musubi_protocol::hashchain::{self, Input};

fuzz_target!(|data: &[u8]| {
    let [result, first, second, message] = split(data, 4)[..] else { return };
    let verify = |message: &[u8]| {
        let resolve = |uri: &str| -> Option<Vec<u8>> {
            Some(match uri {
                "/message.xml" => message.to_vec(),
                u if u.contains('2') => second.to_vec(),
                _ => first.to_vec(),
            })
        };
        hashchain::verify(result, &resolve, &[Input { uri: "/message.xml", digest: None }])
    };
    if verify(message).is_ok() {
        let longer = [message, b"x"].concat();
        assert!(verify(&longer).is_err(), "a hash chain verifies over a changed message");
    }
});
