//! Corrupted, truncated and hostile containers and archives: every X-Road
//! container and archive vector, cut short and with bytes changed, gives a
//! verification error or a verdict, never a panic; duplicate and
//! path-traversal entry names are refused by name.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{dev_trust, dir, pem};

use std::time::Duration;

use musubi_pki::verify::{VerificationConf, verify_container};
use musubi_protocol::asic;

/// A small deterministic generator (xorshift64), so a failure reproduces.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn files(d: &std::path::Path, sub: &str, ext: &str) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<(String, Vec<u8>)> = std::fs::read_dir(d.join(sub))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .map(|p| (p.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read(&p).unwrap()))
        .collect();
    v.sort();
    v
}

#[test]
fn damaged_containers_and_archives_give_errors_never_panics() {
    let Some(d) = dir() else { return };
    let conf = dev_trust(&d);
    let mut containers = files(&d, "asic/asic-verifier-cli", "asice");
    containers.extend(files(&d, "asic/asic-core", "asice"));
    let mut archives = files(&d, "messagelog/archive-verifier", "zip");
    archives.extend(files(&d, "messagelog/logarchive", "zip"));
    assert_eq!((containers.len(), archives.len()), (18, 7), "the vector set changed");
    let limits = asic::Limits::default();
    let mut rng = Rng(0x5eed_6d75_7375_6269);
    let (mut refused, mut tried) = (0, 0);
    for (name, bytes) in containers.iter().chain(&archives) {
        let is_archive = name.ends_with(".zip");
        let check = |b: &[u8]| -> bool {
            if is_archive {
                asic::verify_archive(b, None, &limits).is_err()
            } else {
                verify_container(b, &conf).is_err()
            }
        };
        // Cut short anywhere: the ZIP directory is at the end, so every cut is refused.
        for i in 0..16 {
            let cut = bytes.len() * i / 16;
            assert!(check(&bytes[..cut]), "{name} cut to {cut} bytes was accepted");
        }
        // Bytes changed: an error or a verdict, never a panic.
        for _ in 0..if is_archive { 20 } else { 60 } {
            let mut b = bytes.clone();
            for _ in 0..1 + rng.next() % 4 {
                let at = (rng.next() % b.len() as u64) as usize;
                b[at] ^= 1 + (rng.next() % 255) as u8;
            }
            tried += 1;
            refused += usize::from(check(&b));
        }
    }
    // Most changes land in compressed data, headers or signatures and are
    // caught; a few hit bytes nothing depends on (times, padding).
    assert!(refused * 10 >= tried * 8, "only {refused} of {tried} damaged files were refused");
}

#[test]
fn duplicate_and_traversal_entry_names_are_refused() {
    let Some(d) = dir() else { return };
    let limits = asic::Limits::default();
    // Rename one entry in place (local header and central directory alike,
    // same length) to build what a ZIP writer would not.
    let rename = |bytes: &[u8], from: &str, to: &str| -> Vec<u8> {
        assert_eq!(from.len(), to.len());
        let mut out = bytes.to_vec();
        let mut found = 0;
        let mut i = 0;
        while let Some(p) = out[i..].windows(from.len()).position(|w| w == from.as_bytes()) {
            out[i + p..i + p + from.len()].copy_from_slice(to.as_bytes());
            i += p + from.len();
            found += 1;
        }
        assert_eq!(found, 2, "{from} appears in the local header and the central directory");
        out
    };
    let base = std::fs::read(d.join("asic/asic-verifier-cli/valid-non-batch-soap-attachments.asice")).unwrap();
    assert!(asic::read(&base, &limits).is_ok());
    // Two entries named attachment1: a reader and a verifier could see different bytes.
    let twice = rename(&base, "attachment2", "attachment1");
    let e = asic::read(&twice, &limits).unwrap_err();
    assert_eq!(e.code.0, "asic_invalid_container", "{e}");
    assert!(e.message.contains("entry names repeat"), "{e}");
    // A name that climbs out of the extraction folder.
    for evil in ["../attachme", "/attachment", "a\\ttachment", "C:attachmen"] {
        let e = asic::read(&rename(&base, "attachment2", evil), &limits).unwrap_err();
        assert!(e.message.contains("not a plain relative path"), "{evil}: {e}");
    }
    // The same through the verifier: an error naming the container, never a panic.
    let conf = VerificationConf {
        cas: vec![pem(d.join("certs/derived/dev-test-ca.pem"))],
        ocsp_responders: vec![],
        tsas: vec![pem(d.join("certs/derived/dev-test-tsa.pem"))],
        ocsp_freshness: Duration::from_secs(3600),
        profiles: vec![],
    };
    assert_eq!(verify_container(&twice, &conf).unwrap_err().code, "asic_invalid_container");
}

#[test]
fn zip_bombs_stop_at_the_entry_and_total_limits() {
    // Deflate turns 8 MiB of zeros into a few KiB: a small file that would
    // grow a thousandfold if it were unpacked whole.
    let zeros = vec![0u8; 8 << 20];
    let bomb = asic::write_zip(&[("message.xml", zeros.as_slice())]).unwrap();
    assert!(bomb.len() < 64 * 1024, "the bomb is {} bytes", bomb.len());
    let limits = asic::Limits { max_entries: 16, max_entry_bytes: 1 << 20, max_total_bytes: 3 << 20 };
    let e = asic::read_zip(&bomb, &limits).unwrap_err();
    assert_eq!(e.code.0, "asic_invalid_container", "{e}");
    assert!(e.message.contains("larger than allowed (1048576 bytes)"), "{e}");
    // Many entries each under the entry limit, together over the total.
    let mb = vec![0u8; 1 << 20];
    let named: Vec<(String, &[u8])> = (0..4).map(|n| (format!("attachment{n}"), mb.as_slice())).collect();
    let refs: Vec<(&str, &[u8])> = named.iter().map(|(n, b)| (n.as_str(), *b)).collect();
    let e = asic::read_zip(&asic::write_zip(&refs).unwrap(), &limits).unwrap_err();
    assert!(e.message.contains("attachment3") && e.message.contains("larger than allowed (0 bytes)"), "{e}");
    // More entries than allowed are refused before any is unpacked.
    let many: Vec<(String, &[u8])> = (0..17).map(|n| (format!("a{n}"), &b"x"[..])).collect();
    let refs: Vec<(&str, &[u8])> = many.iter().map(|(n, b)| (n.as_str(), *b)).collect();
    let e = asic::read_zip(&asic::write_zip(&refs).unwrap(), &limits).unwrap_err();
    assert!(e.message.contains("17 entries exceed the limit of 16"), "{e}");
}
