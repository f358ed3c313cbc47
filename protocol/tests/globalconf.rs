//! X-Road's global configuration vectors (`shared/conformance/xroad/globalconf`,
//! README §2.2 and §2.3), one row each: signed directories parsed and
//! verified, refusals with X-Road's codes, key rotation followed through the
//! certificates the accepted shared parameters announce, and anchors.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

use base64::Engine as _;
use musubi_protocol::globalconf::{self, Directory};

fn dir() -> Option<PathBuf> {
    let d = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/conformance/xroad");
    if d.join("globalconf").is_dir() {
        return Some(d);
    }
    if std::env::var("MUSUBI_REQUIRE_CONFORMANCE").as_deref() == Ok("1") {
        panic!("conformance data missing at {}; MUSUBI_REQUIRE_CONFORMANCE=1", d.display());
    }
    println!("skipped: conformance data not found at {}", d.display());
    None
}

fn pem_cert(path: &Path) -> Vec<u8> {
    let text = std::fs::read_to_string(path).unwrap();
    let b64: String = text.lines().filter(|l| !l.starts_with("-----")).collect();
    base64::engine::general_purpose::STANDARD.decode(b64).unwrap()
}

fn directory(path: &Path) -> Result<Directory, globalconf::GlobalConfError> {
    let bytes = std::fs::read(path).unwrap();
    let (ct, body) = globalconf::split_header(&bytes)?;
    globalconf::parse_directory(&ct, body)
}

/// What a row expects.
enum Outcome {
    /// Parses; verifies with the certificates; every listed file (looked up
    /// under the root) has its hash; the locations are these.
    Valid { locations: &'static [&'static str] },
    /// Parses, verifies, but this location's hash does not match.
    Stale(&'static str),
    /// Refused with this X-Road code (at parsing or verification).
    Refused(&'static str),
}

#[test]
fn every_signed_directory_vector_gives_its_outcome() {
    let Some(x) = dir() else { return };
    let cc = x.join("globalconf/configuration-client");
    let st = x.join("globalconf/system-test-signed");
    let consumer = vec![pem_cert(&x.join("certs/common-test/consumer.pem"))];
    let producer = vec![pem_cert(&x.join("certs/common-test/producer.pem"))];
    let anchor = globalconf::parse_anchor(&std::fs::read(st.join("configuration_anchor_CS_internal.xml")).unwrap())
        .unwrap()
        .certs();
    let initial_shared = std::fs::read(st.join("initial/V6/20251110170000548026000/shared-params.xml")).unwrap();
    let announced = globalconf::announced_sources(&initial_shared).unwrap();
    let internal: Vec<Vec<u8>> = announced.iter().flat_map(|s| s.certs.clone()).collect();
    let external: Vec<Vec<u8>> = announced.iter().flat_map(|s| s.external_certs.clone()).collect();
    assert!(!internal.is_empty() && !external.is_empty(), "the initial configuration announces its next certificates");

    use Outcome::*;
    // (file, where its files live, trusted certificates, outcome)
    let rows: Vec<(PathBuf, PathBuf, &Vec<Vec<u8>>, Outcome)> = vec![
        (
            cc.join("test-conf-simple.txt"),
            cc.join("test-conf-simple/EE"),
            &consumer,
            Valid { locations: &["/private-params.xml", "/shared-params.xml", "/foo.xml"] },
        ),
        (
            cc.join("test-conf-simple.txt"),
            cc.join("test-conf-simple/EE"),
            &producer,
            Refused("global_conf_missing_verification_cert"),
        ),
        (
            cc.join("test-conf-detached.txt"),
            cc.join("test-conf-detached/EE"),
            &consumer,
            Valid { locations: &["/private-params.xml"] },
        ),
        (
            cc.join("test-conf-invalid-signature.txt"),
            cc.clone(),
            &consumer,
            Refused("global_conf_signature_verification_failure"),
        ),
        (
            cc.join("test-conf-missing-signature.txt"),
            cc.clone(),
            &consumer,
            Refused("global_conf_signature_verification_failure"),
        ),
        (
            cc.join("test-conf-malformed.txt"),
            cc.clone(),
            &consumer,
            Refused("global_conf_missing_signed_data_expiration_date"),
        ),
        (cc.join("test-conf-missing-date.txt"), cc.clone(), &consumer, Refused("global_conf_header_field_missing")),
        (
            st.join("initial/V6/internalconf"),
            st.join("initial"),
            &anchor,
            Valid {
                locations: &[
                    "/V6/20251110170000548026000/shared-params.xml",
                    "/V6/20251110170000548026000/private-params.xml",
                ],
            },
        ),
        // Rotation: the new key's directory does not verify with the anchor…
        (
            st.join("rotated/V6/internalconf"),
            st.join("rotated"),
            &anchor,
            Refused("global_conf_missing_verification_cert"),
        ),
        // …but does with the certificate the accepted configuration announced.
        (
            st.join("rotated/V6/internalconf"),
            st.join("rotated"),
            &internal,
            Valid {
                locations: &[
                    "/V6/20251110170100462771000/shared-params.xml",
                    "/V6/20251110170100462771000/private-params.xml",
                ],
            },
        ),
        (
            st.join("rotated/V6/externalconf"),
            st.join("rotated"),
            &external,
            Valid { locations: &["/V6/20251110170100462771000/shared-params.xml"] },
        ),
        (
            st.join("initial/V6/externalconf"),
            st.join("initial"),
            &external,
            Stale("/V6/20251110170000548026000/shared-params.xml"),
        ),
    ];
    for (file, root, certs, outcome) in rows {
        let name = file.strip_prefix(&x).unwrap().display().to_string();
        let result = directory(&file).and_then(|d| d.verify(certs).map(|_| d));
        match (outcome, result) {
            (Valid { locations }, Ok(d)) => {
                let got: Vec<&str> = d.files.iter().map(|f| f.location.as_str()).collect();
                assert_eq!(got, locations, "{name}");
                for f in &d.files {
                    let bytes = std::fs::read(root.join(f.location.trim_start_matches('/'))).unwrap();
                    d.check_file(f, &bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
                }
            }
            (Stale(location), Ok(d)) => {
                let f = d.files.iter().find(|f| f.location == location).unwrap();
                let bytes = std::fs::read(root.join(location.trim_start_matches('/'))).unwrap();
                assert_eq!(d.check_file(f, &bytes).unwrap_err().code(), "global_conf_invalid_hash", "{name}");
            }
            (Refused(code), Err(e)) => assert_eq!(e.code(), code, "{name}: {e}"),
            (_, other) => panic!("{name}: unexpected {other:?}"),
        }
    }
}

#[test]
fn expiry_version_and_identifiers_are_read() {
    let Some(x) = dir() else { return };
    let d = directory(&x.join("globalconf/configuration-client/test-conf-simple.txt")).unwrap();
    assert_eq!(d.expire_date.unix_timestamp(), 1_779_298_975, "2026-05-20T17:42:55Z");
    assert_eq!(d.version, None, "version 2 directories carry no Version");
    assert_eq!(d.file("SHARED-PARAMETERS").unwrap().instance.as_deref(), Some("EE"));
    let st = x.join("globalconf/system-test-signed");
    let initial = directory(&st.join("initial/V6/internalconf")).unwrap();
    assert_eq!(initial.version, Some(6));
    assert_eq!(initial.file("SHARED-PARAMETERS").unwrap().instance.as_deref(), Some("DEV"), "single quotes too");
    let rotated = directory(&st.join("rotated/V6/internalconf")).unwrap();
    assert_eq!(rotated.expire_date.unix_timestamp() - initial.expire_date.unix_timestamp(), 60);
}

#[test]
fn anchors_give_their_sources() {
    let Some(x) = dir() else { return };
    let core = x.join("globalconf/globalconf-core");
    let a1 = globalconf::parse_anchor(&std::fs::read(core.join("configuration-anchor1.xml")).unwrap()).unwrap();
    assert_eq!(a1.instance, "EE");
    assert_eq!(a1.sources.len(), 3);
    assert_eq!(a1.sources[0].location, "http://www.bar.com/conf");
    let sha1 = |c: &[u8]| {
        base64::engine::general_purpose::STANDARD
            .encode(ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, c))
    };
    let hashes: Vec<String> = a1.sources[0].certs.iter().map(|c| sha1(c)).collect();
    assert_eq!(hashes, vec!["t7+jfR1wnsN1EBtBpCt/q8JIasg=", "4HCV0OGOaz4mJauIZvrt7A3RdfM="]);
    let a2 = globalconf::parse_anchor(&std::fs::read(core.join("configuration-anchor2.xml")).unwrap()).unwrap();
    assert_ne!(a1, a2);
    let cs = globalconf::parse_anchor(
        &std::fs::read(x.join("globalconf/system-test-signed/configuration_anchor_CS_internal.xml")).unwrap(),
    )
    .unwrap();
    assert_eq!(cs.instance, "DEV");
    let locations: Vec<&str> = cs.sources.iter().map(|s| s.location.as_str()).collect();
    assert_eq!(locations, ["http://cs/internalconf", "https://cs/internalconf"]);
    assert_eq!(cs.certs().len(), 1, "both sources name the same certificate");
}

#[test]
fn shared_parameters_give_members_servers_groups_and_acme() {
    use musubi_protocol::ClientId;
    use musubi_protocol::sharedparams::read_directory;
    let Some(x) = dir() else { return };
    let core = x.join("globalconf/globalconf-core");
    let v4 = read_directory(&std::fs::read(core.join("globalconf_good_v4/EE/shared-params.xml")).unwrap()).unwrap();
    assert_eq!(v4.instance, "EE");
    let sub = ClientId::subsystem("EE", "BUSINESS", "member1", "subsys").unwrap();
    let member2 = ClientId::member("EE", "BUSINESS", "member2").unwrap();
    let member2_sub = ClientId::subsystem("EE", "BUSINESS", "member2", "subsys").unwrap();
    assert!(v4.in_group("Test group", &sub));
    assert!(v4.in_group("Test group", &member2));
    assert!(!v4.in_group("Test group", &member2_sub), "a member's subsystem is not in the member's groups");
    let (name, acme) = &v4.acme[0];
    assert_eq!(name, "pki1");
    assert_eq!(acme.directory_url, "http://ca:8887/acme/directory");
    assert_eq!((acme.auth_profile_id.as_deref(), acme.sign_profile_id.as_deref()), (Some("5"), Some("6")));
    let baz =
        read_directory(&std::fs::read(core.join("globalconf_good_v4/baz_v3/shared-params.xml")).unwrap()).unwrap();
    assert!(baz.acme.iter().all(|(_, a)| a.auth_profile_id.is_none() && a.sign_profile_id.is_none()));
    // Owners and hosted clients are resolved from the XML ids.
    let producer_server = v4.servers.iter().find(|s| s.server_code == "producerServerCode").unwrap();
    assert_eq!(producer_server.owner, ClientId::member("EE", "BUSINESS", "producer").unwrap());
    assert_eq!(producer_server.address.as_deref(), Some("127.0.0.1"));
    assert!(producer_server.clients.contains(&ClientId::subsystem("EE", "BUSINESS", "foo", "foosubsystem").unwrap()));
    assert!(v4.servers.iter().any(|s| s.server_code == "fooServerCode" && s.address.is_none()));
    assert_eq!(v4.member_classes, [("BUSINESS".to_string(), "Business clients".to_string())]);
    // Every shared-params file of every good directory reads.
    for d in
        ["globalconf_good_v2", "globalconf_good_v4", "globalconf_good_v5", "globalconf_good_v6", "globalconf_good2_v3"]
    {
        for entry in std::fs::read_dir(core.join(d)).unwrap().flatten().filter(|e| e.path().is_dir()) {
            let p = entry.path().join("shared-params.xml");
            if p.exists() {
                read_directory(&std::fs::read(&p).unwrap()).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            }
        }
    }
}

#[test]
fn shared_parameters_round_trip_through_the_writer() {
    use musubi_protocol::sharedparams;
    let Some(x) = dir() else { return };
    let core = x.join("globalconf/globalconf-core");
    let mut checked = 0;
    for d in
        ["globalconf_good_v2", "globalconf_good_v4", "globalconf_good_v5", "globalconf_good_v6", "globalconf_good2_v3"]
    {
        for entry in std::fs::read_dir(core.join(d)).unwrap().flatten().filter(|e| e.path().is_dir()) {
            let p = entry.path().join("shared-params.xml");
            if !p.exists() {
                continue;
            }
            let name = p.display().to_string();
            let original = sharedparams::read(&std::fs::read(&p).unwrap()).unwrap_or_else(|e| panic!("{name}: {e}"));
            let written = sharedparams::write(&original).unwrap_or_else(|e| panic!("{name}: {e}"));
            let again = sharedparams::read(written.as_bytes()).unwrap_or_else(|e| panic!("{name}: {e}\n{written}"));
            assert_eq!(original, again, "{name}");
            // The trust a verifier derives is the same too.
            assert_eq!(
                sharedparams::read_trust(&std::fs::read(&p).unwrap()).unwrap(),
                sharedparams::read_trust(written.as_bytes()).unwrap(),
                "{name}"
            );
            checked += 1;
        }
    }
    assert!(checked >= 15, "{checked} files");
    let v5 = sharedparams::read(&std::fs::read(core.join("globalconf_good_v5/EE/shared-params.xml")).unwrap()).unwrap();
    assert_eq!(v5.cas[0].name, "pki1");
    assert_eq!(v5.cas[0].top.ocsp[0].url, "http://127.0.0.1:8082/ocsp");
    // GlobalConfVer6Test: EE's root CA lists five responders with their cost
    // types. (The preference orders that test computes need `user_1.p12`,
    // which is not in the conformance set.)
    let v6 = sharedparams::read(&std::fs::read(core.join("globalconf_good_v6/EE/shared-params.xml")).unwrap()).unwrap();
    let root = &v6.cas[0].top.ocsp;
    assert_eq!(root.len(), 5);
    let cost = |url: &str| root.iter().find(|o| o.url == url).and_then(|o| o.cost);
    use sharedparams::OcspCost::{Free, Paid};
    assert_eq!(cost("http://127.0.0.1:8082/ocsp"), Some(Free));
    assert_eq!(cost("http://www.example.net/ocsp"), Some(Paid));
    assert_eq!(cost("http://www.example.net/ocsp4"), Some(Free));
    assert!(v5.cas[1].authentication_only);
    assert_eq!(v5.ocsp_freshness_seconds, Some(42));
    assert_eq!(v5.directory.members.len(), 3);
}
