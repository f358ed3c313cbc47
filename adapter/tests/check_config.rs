//! `musubi-adapter check-config`: the shipped configuration
//! (`deploy/etc/adapter.toml`) is valid, a fault is named with its line and
//! column, and nested settings can be overridden from the environment.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::Command;

/// (exit code, stdout, stderr) of `check-config --config FILE` with `env`.
fn check(file: &Path, env: &[(&str, &str)]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_musubi-adapter"))
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
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/etc/adapter.toml");
    let (code, out, err) = check(&shipped, &[]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("adapter.toml: 4 settings, valid"), "{out}");

    let dir = std::env::temp_dir().join(format!("musubi-adapter-check-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let text = std::fs::read_to_string(&shipped).unwrap();
    let line = text.lines().position(|l| l.starts_with("bind = ")).unwrap() + 1;
    let bad = dir.join("bad.toml");
    std::fs::write(&bad, text.replace("bind = \"0.0.0.0\"", "bnid = \"0.0.0.0\"")).unwrap();
    let (code, _, err) = check(&bad, &[]);
    assert_eq!(code, 1);
    assert!(err.contains(&format!("bad.toml:{line}:1: unknown field `bnid`")), "{err}");

    let env = [("MUSUBI_ADAPTER_NET__PORT", "3611"), ("MUSUBI_ADAPTER_PACING__MIN_GAP_MS", "500")];
    let (code, out, err) = check(&shipped, &env);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("net.port (MUSUBI_ADAPTER_NET__PORT), pacing.min_gap_ms (MUSUBI_ADAPTER_PACING__MIN_GAP_MS)"),
        "{out}"
    );
    let (code, _, err) = check(&shipped, &[("MUSUBI_ADAPTER_NET__PORT", "70000")]);
    assert_eq!(code, 1);
    assert!(err.contains("net.port (MUSUBI_ADAPTER_NET__PORT)"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
