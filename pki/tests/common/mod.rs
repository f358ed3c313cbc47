//! What the conformance tests of this crate share.

use std::path::PathBuf;

/// `../shared/conformance/xroad`, or `None` (with a `skipped:` line) when it is
/// missing; a missing set fails instead under `MUSUBI_REQUIRE_CONFORMANCE=1`.
pub(crate) fn dir() -> Option<PathBuf> {
    let d = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/conformance/xroad");
    if d.is_dir() {
        return Some(d);
    }
    if std::env::var("MUSUBI_REQUIRE_CONFORMANCE").as_deref() == Ok("1") {
        panic!("conformance data missing at {}; MUSUBI_REQUIRE_CONFORMANCE=1", d.display());
    }
    println!("skipped: conformance data not found at {}", d.display());
    None
}

/// The DER of the certificate in a PEM file.
pub(crate) fn pem(path: PathBuf) -> Vec<u8> {
    musubi_pki::pem_decode("CERTIFICATE", &std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The DEV trust of `globalconf_good2_v3` (CA, OCSP responder, TSA from
/// `certs/derived`; 3600 s freshness; the FiVRK profile it names for its CA).
pub(crate) fn dev_trust(d: &std::path::Path) -> musubi_pki::verify::VerificationConf {
    let ca = pem(d.join("certs/derived/dev-test-ca.pem"));
    musubi_pki::verify::VerificationConf {
        cas: vec![ca.clone()],
        ocsp_responders: vec![pem(d.join("certs/derived/dev-test-ocsp.pem"))],
        tsas: vec![pem(d.join("certs/derived/dev-test-tsa.pem"))],
        ocsp_freshness: std::time::Duration::from_secs(3600),
        profiles: vec![(ca, musubi_pki::verify::SignerProfile::FiVrk)],
    }
}
