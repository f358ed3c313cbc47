//! Global configuration as a security server downloads it: the signed
//! directory (a file starting with its `Content-Type:` line, as X-Road's
//! test files and saved downloads are), configuration anchors, and the
//! configuration sources announced in shared parameters. An anchor that
//! parses is written again (`write_anchor`) and parses to the same anchor.
#![no_main]

use libfuzzer_sys::fuzz_target;
use musubi_protocol::globalconf;

fuzz_target!(|data: &[u8]| {
    if let Ok((ct, body)) = globalconf::split_header(data)
        && let Ok(dir) = globalconf::parse_directory(&ct, body)
    {
        let _ = dir.verify(&[musubi_fuzz::pki().member.cert_der.clone()]);
        for file in &dir.files {
            let _ = dir.check_file(file, body);
        }
    }
    if let Ok(anchor) = globalconf::parse_anchor(data) {
        let written = globalconf::write_anchor(&anchor.instance, &anchor.generated_at, &anchor.sources);
        match globalconf::parse_anchor(written.as_bytes()) {
            Ok(again) => assert_eq!(again, anchor, "an anchor changed when written again"),
            Err(e) => panic!("a written anchor does not parse: {e}\n{written}"),
        }
    }
    let _ = globalconf::announced_sources(data);
    let _ = globalconf::is_params(data);
});
