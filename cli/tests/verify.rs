//! `musubi verify` on X-Road's own containers, as an operator runs it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::process::Command;

#[test]
fn musubi_verify_accepts_valid_containers_and_names_the_failure_of_others() {
    let d = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/conformance/xroad");
    if !d.is_dir() {
        if std::env::var("MUSUBI_REQUIRE_CONFORMANCE").as_deref() == Ok("1") {
            panic!("conformance data missing at {}", d.display());
        }
        println!("skipped: conformance data not found at {}", d.display());
        return;
    }
    let run = |file: &str| {
        Command::new(env!("CARGO_BIN_EXE_musubi"))
            .arg("verify")
            .arg(d.join("asic/asic-verifier-cli").join(file))
            .arg("--ca")
            .arg(d.join("certs/derived/dev-test-ca.pem"))
            .arg("--ocsp")
            .arg(d.join("certs/derived/dev-test-ocsp.pem"))
            .arg("--tsa")
            .arg(d.join("certs/derived/dev-test-tsa.pem"))
            .output()
            .unwrap()
    };
    let ok = run("valid-batch-ts.asice");
    let text = String::from_utf8_lossy(&ok.stdout);
    assert!(ok.status.success() && text.starts_with("valid:"), "{text}");
    let bad = run("wrong-message.asice");
    let text = String::from_utf8_lossy(&bad.stdout);
    assert_eq!(bad.status.code(), Some(1));
    assert!(text.contains("invalid_signature_value"), "{text}");
}
