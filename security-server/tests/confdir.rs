//! X-Road's configuration directory vectors (`shared/conformance/xroad/
//! globalconf/globalconf-core`, README §2.1): which directories are usable,
//! which instances' parameters are found, with which versions.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;

use musubi_security_server::confdir::{self, DirStatus, Params};

fn core() -> Option<PathBuf> {
    let d = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/conformance/xroad/globalconf/globalconf-core");
    if d.is_dir() {
        return Some(d);
    }
    if std::env::var("MUSUBI_REQUIRE_CONFORMANCE").as_deref() == Ok("1") {
        panic!("conformance data missing at {}; MUSUBI_REQUIRE_CONFORMANCE=1", d.display());
    }
    println!("skipped: conformance data not found at {}", d.display());
    None
}

#[test]
fn directories_are_usable_or_refused_as_x_road_says() {
    let Some(d) = core() else { return };
    for (dir, status) in [
        ("globalconf_good_v2", DirStatus::ReadyToInit),
        ("globalconf_good_v4", DirStatus::ReadyToInit),
        ("globalconf_good_v5", DirStatus::ReadyToInit),
        ("globalconf_good_v6", DirStatus::ReadyToInit),
        ("globalconf_good2_v3", DirStatus::ReadyToInit),
        ("globalconf_good_v4/instance-identifier", DirStatus::ConfigurationError),
        ("globalconf_missing_identifier", DirStatus::MissingInstanceIdentifier),
        ("globalconf_empty", DirStatus::Malformed),
    ] {
        assert_eq!(confdir::validate(&d.join(dir)), status, "{dir}");
    }
}

#[test]
fn instances_and_versions_are_found() {
    let Some(d) = core() else { return };
    for (dir, extra) in [("globalconf_good_v5", &[][..]), ("globalconf_good_v6", &["quux_v5"][..])] {
        let c = confdir::read(&d.join(dir)).unwrap();
        assert_eq!(c.instance, "EE");
        for inst in ["EE", "foo_v2", "baz_v3", "qux_v4"].iter().chain(extra) {
            assert!(c.find(inst, Params::Shared).is_some(), "{dir}: shared {inst}");
            assert!(c.find(inst, Params::Private).is_some(), "{dir}: private {inst}");
        }
        assert!(c.find("bar", Params::Shared).is_some() && c.find("bar", Params::Private).is_none(), "{dir}");
        assert!(c.find("xxx", Params::Shared).is_none());
        let files = c.configuration_files();
        assert!(files.iter().all(|p| p.to_string_lossy().ends_with("params.xml")), "{dir}: {files:?}");
        assert_eq!(files.len(), 9 + 2 * extra.len(), "{dir}");
        assert_eq!(c.find("foo_v2", Params::Shared).unwrap().version, 2, "no version in the metadata: version 2");
    }
    let v5 = confdir::read(&d.join("globalconf_good_v5")).unwrap();
    assert_eq!(v5.find("EE", Params::Shared).unwrap().version, 5);
    assert_eq!(v5.find("EE", Params::Private).unwrap().version, 4);
    assert_eq!(v5.find("EE", Params::Shared).unwrap().expiration.as_deref(), Some("2124-05-20T17:42:55Z"));
    let v6 = confdir::read(&d.join("globalconf_good_v6")).unwrap();
    assert_eq!(v6.find("EE", Params::Shared).unwrap().version, 6);
    let v2 = confdir::read(&d.join("globalconf_good_v2")).unwrap();
    assert!(v2.find("foo", Params::Private).is_some());
    assert_eq!(v2.find("EE", Params::Shared).unwrap().version, 2);
}

#[test]
fn files_that_do_not_parse_are_skipped() {
    let Some(d) = core() else { return };
    // Its own instance (EE) has no parameters and foo's files are `xxx`/`yyy`.
    assert_eq!(confdir::validate(&d.join("globalconf_malformed")), DirStatus::Malformed);
    let malformed = confdir::scan(&d.join("globalconf_malformed")).unwrap();
    assert_eq!(malformed.instance, "EE");
    assert!(malformed.find("foo", Params::Shared).is_none() && malformed.find("foo", Params::Private).is_none());
    let empty = confdir::scan(&d.join("globalconf_empty")).unwrap();
    assert!(empty.files.is_empty(), "nothing is found in an empty directory");
}
