//! X-Road identifiers as text (`CLIENT`, `SERVICE` and `SERVER` forms, as
//! the admin API, the CLI and the configuration files take them). One that
//! parses prints to text that parses to the same identifier.
#![no_main]

use libfuzzer_sys::fuzz_target;
use musubi_protocol::{ClientId, SecurityServerId, ServiceId};

fn round_trip<T>(text: &str)
where
    T: std::str::FromStr + std::fmt::Display + PartialEq + std::fmt::Debug,
    T::Err: std::fmt::Debug,
{
    if let Ok(id) = text.parse::<T>() {
        let printed = id.to_string();
        match printed.parse::<T>() {
            Ok(again) => assert_eq!(again, id, "{text:?} printed as {printed:?} parses to another identifier"),
            Err(e) => panic!("{text:?} printed as {printed:?} does not parse: {e:?}"),
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    round_trip::<ClientId>(text);
    round_trip::<ServiceId>(text);
    round_trip::<SecurityServerId>(text);
    let _ = musubi_protocol::identifiers::validate_code("fuzz", text);
});
