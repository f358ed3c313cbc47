//! `musubi-central-server check-config`: the shipped configuration
//! (`deploy/etc/central-server.toml`) is valid, a fault is named with its line
//! and column, and the environment's overrides are checked with the file.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// (exit code, stdout, stderr) of `check-config --config FILE` with `env`.
fn check(file: &Path, env: &[(&str, &str)]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_musubi-central-server"))
        .args(["check-config", "--config"])
        .arg(file)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.code().unwrap_or(-1), text(&out.stdout), text(&out.stderr))
}

#[test]
fn check_config_accepts_the_shipped_file_and_names_the_line_at_fault() {
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/etc/central-server.toml");
    let (code, out, err) = check(&shipped, &[]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("central-server.toml: 6 settings, valid"), "{out}");

    let dir = std::env::temp_dir().join(format!("musubi-cs-check-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let text = std::fs::read_to_string(&shipped).unwrap();
    let line = text.lines().position(|l| l.starts_with("conf_listen")).unwrap() + 1;
    let bad: PathBuf = dir.join("bad.toml");
    std::fs::write(&bad, text.replace("conf_listen = \"0.0.0.0:80\"", "conf_listen = 80")).unwrap();
    let (code, _, err) = check(&bad, &[]);
    assert_eq!(code, 1);
    assert!(err.contains(&format!("bad.toml:{line}:15: invalid type: integer `80`")), "{err}");

    let env = [("MUSUBI_CENTRAL_SERVER_EXPIRE_AFTER_SECS", "1200")];
    let (code, out, err) = check(&shipped, &env);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("from the environment: expire_after_secs (MUSUBI_CENTRAL_SERVER_EXPIRE_AFTER_SECS)"), "{out}");
    let (code, _, err) = check(&shipped, &[("MUSUBI_CENTRAL_SERVER_EXPIRE_AFTER_SECS", "soon")]);
    assert_eq!(code, 1);
    assert!(err.contains("(MUSUBI_CENTRAL_SERVER_EXPIRE_AFTER_SECS): invalid type"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
