//! `musubi-security-server check-config`: a file is checked without starting
//! the server, and a fault is named with its line and column.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// A configuration file as `musubi demo` writes one before set-up: the
/// settings the state folder gives later (server id, token, certificates) are absent.
const BEFORE_SETUP: &str = r#"global_conf = "DIR/global-conf.toml"
client_proxy_listen = "127.0.0.1:8080"
server_proxy_listen = "0.0.0.0:5500"
database = "DIR/messagelog.sqlite"
ocsp_listen = "0.0.0.0:5577"
state_dir = "DIR/state"
message_body_logging = true
max_body_bytes = 33554432
"#;

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// (exit code, stdout, stderr) of `check-config --config FILE`.
fn check(file: &Path) -> (i32, String, String) {
    check_with(file, &[])
}

/// The same with environment variables set.
fn check_with(file: &Path, env: &[(&str, &str)]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_musubi-security-server"))
        .arg("check-config")
        .arg("--config")
        .arg(file)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.code().unwrap_or(-1), text(&out.stdout), text(&out.stderr))
}

#[test]
fn check_config_accepts_a_valid_file_and_names_the_line_at_fault() {
    let dir = std::env::temp_dir().join(format!("musubi-check-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();

    let before_setup = BEFORE_SETUP.replace("DIR", &dir.display().to_string());
    let good = write(&dir, "good.toml", &before_setup);
    let (code, out, err) = check(&good);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("valid"), "{out}");
    assert!(out.contains("server_id, token_dir"), "says what the state folder will give: {out}");
    assert!(!out.contains("configuration_anchor"), "a server following a trust file has no anchor: {out}");
    assert!(!dir.join("state").exists(), "nothing is created");

    // The file the package installs as /etc/musubi/security-server.toml.
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/etc/security-server.toml");
    let (code, out, err) = check(&shipped);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("server_id, token_dir, pin_file, auth_cert, signing_keys, configuration_anchor"), "{out}");

    // A misspelt setting on line 3.
    let typo = write(&dir, "typo.toml", &before_setup.replace("server_proxy_listen", "server_proxy_listne"));
    let (code, _, err) = check(&typo);
    assert_eq!(code, 1);
    assert!(err.contains("typo.toml:3:1: unknown field `server_proxy_listne`"), "{err}");

    // A value of the wrong shape on line 2, column 23 (inside the string).
    let bad = write(&dir, "bad.toml", &before_setup.replace("127.0.0.1:8080", "127.0.0.1:80x"));
    let (code, _, err) = check(&bad);
    assert_eq!(code, 1);
    assert!(err.contains("bad.toml:2:23: invalid socket address"), "{err}");

    // A wrong type on line 7.
    let typed = write(
        &dir,
        "typed.toml",
        &before_setup.replace("message_body_logging = true", "message_body_logging = \"yes\""),
    );
    let (code, _, err) = check(&typed);
    assert_eq!(code, 1);
    assert!(err.contains("typed.toml:7:"), "{err}");

    // Broken TOML: the parser's own position, in the same form.
    let broken = write(&dir, "broken.toml", &format!("{before_setup}[oops\n"));
    let (code, _, err) = check(&broken);
    assert_eq!(code, 1);
    assert!(err.contains("broken.toml:9:6: unclosed table"), "{err}");

    // A required setting missing.
    let missing = write(
        &dir,
        "missing.toml",
        &before_setup.replace(&format!("database = \"{}/messagelog.sqlite\"\n", dir.display()), ""),
    );
    let (code, _, err) = check(&missing);
    assert_eq!(code, 1);
    assert!(err.contains("missing field `database`"), "{err}");

    // Settings from the environment are checked as the server applies them.
    let (code, out, err) = check_with(&good, &[("MUSUBI_SECURITY_SERVER_MAX_BODY_BYTES", "1048576")]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("from the environment: max_body_bytes (MUSUBI_SECURITY_SERVER_MAX_BODY_BYTES)"), "{out}");
    let (code, _, err) = check_with(&good, &[("MUSUBI_SECURITY_SERVER_MAX_BODY_BYTES", "a lot")]);
    assert_eq!(code, 1);
    assert!(err.contains("MUSUBI_SECURITY_SERVER_MAX_BODY_BYTES") && err.contains("invalid type"), "{err}");
    let (code, _, err) = check_with(&good, &[("MUSUBI_SECURITY_SERVER_MAX_BODY_BYTE", "1")]);
    assert_eq!(code, 1);
    assert!(err.contains("unknown field `max_body_byte`"), "{err}");

    // No such file.
    let (code, _, err) = check(&dir.join("absent.toml"));
    assert_eq!(code, 1);
    assert!(err.contains("absent.toml"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
