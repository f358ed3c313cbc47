//! `musubi verify` on X-Road's own vectors, as an operator runs it: one table,
//! one row per self-contained vector of `../shared/conformance/xroad/`
//! (`asic/`, `signatures/`, `hashchain/`, `messagelog/`), each with the
//! outcome the conformance README gives (X-Road's tests, or its reading of
//! X-Road where no test uses the file).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;

fn conformance() -> Option<PathBuf> {
    let d = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/conformance/xroad");
    if d.is_dir() {
        return Some(d);
    }
    if std::env::var("MUSUBI_REQUIRE_CONFORMANCE").as_deref() == Ok("1") {
        panic!("conformance data missing at {}", d.display());
    }
    println!("skipped: conformance data not found at {}", d.display());
    None
}

/// One row: what is verified, the arguments after `musubi verify`, and the
/// expected outcome: `valid` or the code of the first failing check.
struct Row {
    name: &'static str,
    args: Vec<String>,
    expect: &'static str,
}

fn path(p: &Path) -> String {
    p.display().to_string()
}

#[test]
fn musubi_verify_gives_x_roads_outcome_on_every_self_contained_vector() {
    let Some(x) = conformance() else { return };
    let tmp = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("verify-vectors");
    std::fs::create_dir_all(&tmp).unwrap();
    // batch-sig.xml's /attachment1 is the five bytes "blaah" (README §3.2).
    let blaah = tmp.join("blaah");
    std::fs::write(&blaah, b"blaah").unwrap();

    let arg = |s: &str| s.to_owned();
    // The verification configuration X-Road's tests use: the DEV global
    // configuration directory for the DEV vectors, …
    let dev = vec![arg("--conf-dir"), path(&x.join("globalconf/globalconf-core/globalconf_good2_v3"))];
    // … and the EE one (globalconf_good_v4) at X-Road's validation date. Each
    // CA's certificateProfileInfo decides how a certificate names its member
    // (DEV: FiVRK; EE: the test profile, CN is the member code).
    let ee = |signer: &str| -> Vec<String> {
        let mut v = vec![arg("--conf-dir"), path(&x.join("globalconf/globalconf-core/globalconf_good_v4"))];
        v.extend([arg("--at"), arg("2014-10-30T00:00:00Z")]);
        v.extend([arg("--signer"), arg(signer)]);
        v
    };
    // The same DEV trust given as PEM files.
    let certs = x.join("certs/derived");
    let dev_pem: Vec<String> = ["--ca", "dev-test-ca.pem", "--ocsp", "dev-test-ocsp.pem", "--tsa", "dev-test-tsa.pem"]
        .chunks(2)
        .flat_map(|c| [arg(c[0]), path(&certs.join(c[1]))])
        .collect();
    let file = |rel: &str| path(&x.join(rel));
    let part = |uri: &str, rel: &str| vec![arg("--part"), format!("{uri}={}", file(rel))];
    let with = |mut a: Vec<String>, b: Vec<String>| {
        a.extend(b);
        a
    };

    let mut rows = Vec::new();
    // asic/asic-verifier-cli (AsicContainerVerifierTest), DEV trust.
    let cli = "asic/asic-verifier-cli";
    for (name, expect) in [
        ("valid-signed-message.asice", "valid"),
        ("valid-non-batch-rest.asice", "valid"),
        ("valid-non-batch-soap-attachments.asice", "valid"),
        ("valid-signed-hashchain.asice", "valid"),
        ("valid-batch-ts.asice", "valid"),
        ("invalid-not-signed-hashchain.asice", "valid"),
        ("wrong-message.asice", "invalid_signature_value"),
        ("invalid-digest.asice", "invalid_signature_value"),
        ("invalid-signed-hashchain.asice", "malformed_signature.invalid_hash_chain_ref"),
        ("invalid-hashchain-modified-message.asice", "malformed_signature.hashchain_unused_inputs"),
        ("invalid-incorrect-references.asice", "malformed_signature"),
        ("invalid-ts-hashchainresult.asice", "malformed_signature"),
    ] {
        rows.push(Row { name, args: with(vec![file(&format!("{cli}/{name}"))], dev.clone()), expect });
    }
    rows.push(Row {
        name: "valid-batch-ts.asice under PEM trust",
        args: with(vec![file(&format!("{cli}/valid-batch-ts.asice"))], dev_pem.clone()),
        expect: "valid",
    });
    rows.push(Row {
        name: "valid-batch-ts.asice with another certificate as the TSA",
        args: with(
            with(vec![file(&format!("{cli}/valid-batch-ts.asice"))], dev_pem[..4].to_vec()),
            vec![arg("--tsa"), path(&certs.join("dev-test-ocsp.pem"))],
        ),
        expect: "timestamp_validation",
    });
    // The signer is the member the message names (here the provider of a
    // response); under another profile the certificate names someone else.
    rows.push(Row {
        name: "valid-signed-message.asice under the default profile",
        args: with(
            with(vec![file(&format!("{cli}/valid-signed-message.asice"))], dev.clone()),
            vec![arg("--profile"), arg("default")],
        ),
        expect: "incorrect_certificate",
    });
    // asic/asic-core (AsicContainerTest): the structure checks. The one
    // 2014 container without a time stamp loads in X-Road, but the full
    // verifier (which `musubi verify` is) refuses it for the missing stamp.
    for (name, expect) in [
        ("valid-signed-message-with-attachments.asice", "valid"),
        ("valid-signed-message.asice", "asic_timestamp_not_found"),
        ("no-mimetype.asice", "asic_mime_type_not_found"),
        ("not-asic.asice", "asic_mime_type_not_found"),
        ("no-message.asice", "asic_message_not_found"),
        ("no-signature.asice", "asic_signature_not_found"),
    ] {
        rows.push(Row { name, args: with(vec![file(&format!("asic/asic-core/{name}"))], dev.clone()), expect });
    }

    // messagelog (ArchiveHashChainVerifierTest and the logarchive set): the
    // linking chain, as X-Road's archive verifier checks it.
    let prev_ok = "9011ab557706b5050584d6888af7b390e5350f4edad296bd7a582aa51732aac7f49a4ec44dd361027945ade0de8b8cf607fb7b7d11f17b0560d44b965c358eaa";
    let prev_bad = "4145ab557706b5050584d6888af7b390e5350f4edad296bd7a582aa51732aac7f49a4ec44dd361027945ade0de8b8cf607fb7b7d11f17b0560d44b965c358eaa";
    let links = |rel: &str, previous: Option<&str>| {
        let mut v = vec![file(rel), arg("--links-only")];
        if let Some(p) = previous {
            v.extend([arg("--previous"), arg(p)]);
        }
        v
    };
    let a0 = "messagelog/archive-verifier/message-archive-0.zip";
    let a1 = "messagelog/archive-verifier/message-archive-1.zip";
    rows.push(Row { name: "message-archive-0 as first", args: links(a0, None), expect: "valid" });
    rows.push(Row { name: "message-archive-1 after 0", args: links(a1, Some(prev_ok)), expect: "valid" });
    rows.push(Row {
        name: "message-archive-1 after a wrong digest",
        args: links(a1, Some(prev_bad)),
        expect: "archive_previous_mismatch",
    });
    rows.push(Row {
        name: "message-archive-1 without its predecessor",
        args: links(a1, None),
        expect: "archive_previous_required",
    });
    // In full, each container's trust is checked too: these are signed under
    // a test CA that is not in the set, so the DEV trust does not cover them.
    rows.push(Row {
        name: "message-archive-0 in full under DEV trust",
        args: with(vec![file(a0)], dev.clone()),
        expect: "timestamp_validation",
    });
    for (name, expect) in [
        ("mlog-WITH_LINKINGINFO.zip", "valid"),
        ("mlog-WITH_INVALID_LINKINGINFO.zip", "archive_digest_mismatch"),
        ("mlog-EXCESSIVE_FILES_IN_LINKINGINFO.zip", "archive_file_mismatch"),
        ("mlog-NO_LINKINGINFO.zip", "archive_linking_info_not_found"),
        ("mlog-NO_ASIC_CONTAINERS.zip", "archive_no_containers"),
    ] {
        rows.push(Row { name, args: links(&format!("messagelog/logarchive/{name}"), None), expect });
    }

    // signatures/ (SignatureVerifierTest): stand-alone signatures over
    // message-0.xml, EE trust, 2014-10-30, signer EE/BUSINESS/consumer.
    let m0 = part("/message.xml", "signatures/common-test/message-0.xml");
    let sig = |rel: &str, signer: &str| with(with(vec![file(&format!("signatures/{rel}"))], m0.clone()), ee(signer));
    let consumer = "EE/BUSINESS/consumer";
    for (name, expect) in [
        ("common-test/sign-0.xml", "valid"),
        ("common-test/sign-0-old-format.xml", "valid"),
        ("globalconf-impl/sign-0-invalid-signature-value.xml", "invalid_signature_value"),
        ("globalconf-impl/empty.xml", "invalid_xml"),
        ("globalconf-impl/sign-0-malformed-xml.xml", "invalid_xml"),
        ("globalconf-impl/sign-0-no-signature.xml", "malformed_signature"),
        ("globalconf-impl/sign-0-no-objectcontainer.xml", "malformed_signature"),
        ("globalconf-impl/sign-0-schema-fail.xml", "malformed_signature"),
        ("globalconf-impl/sign-0-no-signing-cert.xml", "malformed_signature"),
        ("globalconf-impl/sign-0-ocsp-no-responses.xml", "malformed_signature"),
    ] {
        rows.push(Row { name, args: sig(name, consumer), expect });
    }
    rows.push(Row {
        name: "sign-0 for another signer (invalidSignerName)",
        args: sig("common-test/sign-0.xml", "EE/BUSINESS/FOORBAR"),
        expect: "incorrect_certificate",
    });
    rows.push(Row {
        name: "sign-0 over another message",
        args: with(
            with(
                vec![file("signatures/common-test/sign-0.xml")],
                part("/message.xml", "signatures/common-test/sign-0.xml"),
            ),
            ee(consumer),
        ),
        expect: "invalid_signature_value",
    });
    for name in ["extra-certs-missing-id.xml", "extra-certs-missing-cert.xml", "extra-certs-digest-invalid.xml"] {
        rows.push(Row {
            name,
            args: sig(&format!("globalconf-impl/{name}"), "EE/BUSINESS/Test Org"),
            expect: "malformed_signature",
        });
    }
    let g = "signatures/globalconf-impl";
    let batch = |chain: &str| {
        let mut v = vec![file(&format!("{g}/batch-sig.xml"))];
        v.extend([arg("--hash-chain-result"), file(&format!("{g}/hash-chain-result.xml"))]);
        v.extend([arg("--hash-chain"), file(&format!("{g}/{chain}"))]);
        v.extend(part("/message.xml", &format!("{g}/message-1.xml")));
        v.extend([arg("--part"), format!("/attachment1={}", path(&blaah))]);
        with(v, ee(consumer))
    };
    rows.push(Row { name: "batch-sig with hash-chain-1", args: batch("hash-chain-1.xml"), expect: "valid" });
    rows.push(Row {
        name: "batch-sig with hash-chain-2",
        args: batch("hash-chain-2.xml"),
        expect: "invalid_hash_chain_ref",
    });
    let non_batch = |attachment: &str| {
        let mut v = vec![file(&format!("{g}/non-batch-sig/signatures.xml"))];
        v.extend(part("/message.xml", &format!("{g}/non-batch-sig/message.xml")));
        v.extend(part("/attachment1", attachment));
        v.extend([arg("--at"), arg("2024-07-09T08:00:00Z"), arg("--signer"), arg("DEV/COM/4321")]);
        with(v, dev.clone())
    };
    rows.push(Row {
        name: "non-batch-sig",
        args: non_batch(&format!("{g}/non-batch-sig/attachment1")),
        expect: "valid",
    });
    rows.push(Row {
        name: "non-batch-sig with another attachment",
        args: non_batch(&format!("{g}/message-1.xml")),
        expect: "invalid_signature_value",
    });

    // hashchain/ (HashChainVerifierTest).
    let h = "hashchain/common-message";
    let chain = |result: &str, chains: &[(&str, &str)], message: Option<&str>, inputs: &[&str]| {
        let mut v = vec![file(&format!("{h}/{result}"))];
        for (uri, f) in chains {
            v.extend(part(uri, &format!("{h}/{f}")));
        }
        if let Some(m) = message {
            v.extend(part("/message.xml", &format!("{h}/{m}")));
        }
        for i in inputs {
            v.extend([arg(if i.contains('=') { "--input-digest" } else { "--input" }), arg(i)]);
        }
        v
    };
    let two_sha256 = "/message.xml=sha256:3fc4ccfe745870e2c0d99f71f30ff0656c8dedd41cc1d7d3d376b0dbe685e2f3";
    let hc1 = [("/hashchain.xml", "hc-verifier1-hashchain.xml")];
    let hc3 = [("/hashchain.xml", "hc-verifier3-hashchain.xml")];
    let hc3_bad = [("/hashchain.xml", "hc-verifier3-hashchain-invalid.xml")];
    let hc5 = [("/hashchain.xml", "hc-verifier5-hashchain-invalid-schema.xml")];
    let hc4 = [("/hashchain.xml", "hc-verifier4-hashchain1.xml"), ("/hashchain2.xml", "hc-verifier4-hashchain2.xml")];
    let hc2 = [("/hashchain.xml", "hc-verifier2-hashchain.xml")];
    let hc2_inputs =
        ["/message.xml=sha256:0b", "/attachment1=sha256:0c", "/attachment2=sha256:0d", "/attachment3=sha256:0e"];
    let r1 = "hc-verifier1-hashchainresult.xml";
    let r3 = "hc-verifier3-hashchainresult.xml";
    for (name, args, expect) in [
        ("hc-verifier1 simpleCorrect", chain(r1, &hc1, Some("hc-verifier1-message.xml"), &["/message.xml"]), "valid"),
        ("hc-verifier1 simpleAttachedInput", chain(r1, &hc1, None, &[two_sha256]), "valid"),
        (
            "hc-verifier1 unused inputs",
            chain(r1, &hc1, Some("hc-verifier1-message.xml"), &["/message.xml", "/unused1", "/unused2"]),
            "hashchain_unused_inputs",
        ),
        ("hc-verifier1 wrong input digest", chain(r1, &hc1, None, &["/message.xml=sha256:00ff"]), "invalid_hash_chain"),
        ("hc-verifier2 four digests", chain("hc-verifier2-hashchainresult.xml", &hc2, None, &hc2_inputs), "valid"),
        ("hc-verifier2 message only", chain("hc-verifier2-hashchainresult.xml", &hc2, None, &hc2_inputs[..1]), "valid"),
        ("hc-verifier3 with transform", chain(r3, &hc3, Some("hc-verifier3-message.xml"), &["/message.xml"]), "valid"),
        (
            "hc-verifier3 without transform",
            chain(r3, &hc3_bad, Some("hc-verifier3-message.xml"), &["/message.xml"]),
            "invalid_hash_chain_ref",
        ),
        (
            "hc-verifier5 invalid schema",
            chain(r3, &hc5, Some("hc-verifier3-message.xml"), &["/message.xml"]),
            "malformed_hash_chain",
        ),
        (
            "hc-verifier4 two chain documents",
            chain("hc-verifier4-hashchainresult.xml", &hc4, Some("hc-verifier4-message.xml"), &["/message.xml"]),
            "valid",
        ),
    ] {
        rows.push(Row { name, args, expect });
    }

    let mut failures = Vec::new();
    for row in &rows {
        let out = Command::new(env!("CARGO_BIN_EXE_musubi")).arg("verify").args(&row.args).output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        let ok = match row.expect {
            "valid" => out.status.success() && stdout.starts_with("valid:"),
            code => out.status.code() == Some(1) && stdout.contains(&format!(": {code}: ")),
        };
        if !ok {
            failures.push(format!("{}: expected {}, got {:?} {stdout}{stderr}", row.name, row.expect, out.status));
        }
    }
    assert_eq!(rows.len(), 60, "the table lost or gained rows");
    assert!(failures.is_empty(), "{} of {} rows differ:\n{}", failures.len(), rows.len(), failures.join("\n"));
}
