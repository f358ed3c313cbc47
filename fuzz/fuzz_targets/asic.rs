//! ASiC-E containers of the message log and their archives: the ZIP
//! reader with its limits (`asic::read`, `read_zip`), the manifest check,
//! archive linking (`verify_archive`) and a container's whole verification
//! against the process's test CA and TSA (`verify_container`), which no
//! input can pass: their keys are made afresh in every process. A ZIP that
//! reads is written again (`write_zip`) and reads back the same.
#![no_main]

use libfuzzer_sys::fuzz_target;
use musubi_pki::verify::{VerificationConf, verify_container};
use musubi_protocol::asic;

fuzz_target!(|data: &[u8]| {
    let limits = musubi_fuzz::asic_limits();
    if let Ok(c) = asic::read(data, &limits) {
        let _ = asic::check_asic_manifest(&c);
    }
    let _ = asic::verify_archive(data, None, &limits);
    if let Ok(entries) = asic::read_zip(data, &limits) {
        let named: Vec<(&str, &[u8])> = entries.iter().map(|(n, b)| (n.as_str(), b.as_slice())).collect();
        let written = match asic::write_zip(&named) {
            Ok(w) => w,
            Err(e) => panic!("a ZIP that reads cannot be written again: {e}"),
        };
        match asic::read_zip(&written, &limits) {
            Ok(again) => assert_eq!(again, entries, "a ZIP's entries changed when written again"),
            Err(e) => panic!("a written ZIP does not read: {e}"),
        }
    }
    let pki = musubi_fuzz::pki();
    let conf = VerificationConf {
        cas: vec![pki.ca.cert_der().to_vec()],
        ocsp_responders: vec![],
        tsas: vec![pki.tsa.cert_der().to_vec()],
        ocsp_freshness: std::time::Duration::from_secs(1200),
        profiles: vec![],
    };
    let verified = verify_container(data, &conf);
    assert!(verified.is_err(), "a container no key of this process signed verifies: {verified:?}");
});
