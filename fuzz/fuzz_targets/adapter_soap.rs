//! SOAP requests the ECHONET Lite adapter answers: the X-Road envelope
//! (`soap::parse`) and the operation's parameters in its body
//! (`service::params`), which the adapter reads with its own small reader.
#![no_main]

use libfuzzer_sys::fuzz_target;
use musubi_adapter::service;
use musubi_protocol::soap::{self, Direction, Limits, Soap};

fuzz_target!(|data: &[u8]| {
    let _ = service::params(data);
    if let Ok(Soap::Message(m)) = soap::parse(data, Direction::Request, &Limits::default())
        && let Ok(params) = service::params(m.body_content())
    {
        for p in params {
            assert_eq!(p.text.trim(), p.text, "a parameter's text is not trimmed");
        }
    }
});
