//! `musubi-security-server backup` while the server runs, then `restore` onto
//! a fresh node (nothing of the old one left but its configuration file):
//! the restored server serves traffic with the same keys and certificates, and
//! its message log holds the exchanges from before the backup.

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::Command;

use musubi::demo::{example_request, ids};

use crate::multihost::Service;
use crate::{binary, http, network};

fn run(args: &[&str], config: &Path) -> (bool, String) {
    let out = Command::new(binary("musubi-security-server"))
        .arg("--config")
        .arg(config)
        .args(args)
        .env_remove("MUSUBI_BACKUP_PASSPHRASE")
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_restored_onto_a_fresh_node_serves_with_its_keys_and_log() {
    let net = network("backup", 37, true).await;
    let dir = net.facts.request_file.parent().unwrap().to_owned();
    let node = dir.join("provider");
    let config = node.join("security-server.toml");
    let (_, _, service, _) = ids();
    let cp = net.consumer.client_proxy_addr;
    let reply =
        http(cp, "POST", "text/xml; charset=UTF-8", example_request(&service, "it-backup-1").into_bytes()).await;
    assert_eq!(reply.status, 200, "{}", reply.body);

    // The backup, taken while the provider's server runs.
    let pass = dir.join("backup-passphrase");
    std::fs::write(&pass, "a backup passphrase of some length\n").unwrap();
    std::fs::set_permissions(&pass, std::fs::Permissions::from_mode(0o600)).unwrap();
    let file = dir.join("provider.backup");
    let p = pass.to_str().unwrap();
    let (ok, out) = run(&["backup", "--out", file.to_str().unwrap(), "--passphrase-file", p], &config);
    assert!(ok, "{out}");
    assert!(out.contains("files and") && out.contains("bytes of message log, encrypted"), "{out}");
    assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);
    // Encrypted: neither the keys, the certificates nor the log are readable in it.
    let sealed = std::fs::read(&file).unwrap();
    let sign_pem = std::fs::read_to_string(node.join("sign.pem")).unwrap();
    let cert_line = sign_pem.lines().nth(1).unwrap();
    for plain in ["BEGIN", cert_line, "it-backup-1", "SQLite format"] {
        assert!(!sealed.windows(plain.len()).any(|w| w == plain.as_bytes()), "{plain:?} is readable in the backup");
    }
    // A short passphrase is refused before anything is written.
    let weak = dir.join("weak");
    std::fs::write(&weak, "short").unwrap();
    std::fs::set_permissions(&weak, std::fs::Permissions::from_mode(0o600)).unwrap();
    let (ok, out) = run(&["backup", "--out", "/nonexistent/x", "--passphrase-file", weak.to_str().unwrap()], &config);
    assert!(!ok && out.contains("at least 12 characters"), "{out}");

    // The node is lost: everything but its configuration (and the PIN, kept apart).
    let (consumer, provider, services) = net.into_parts();
    provider.shutdown().await;
    for entry in std::fs::read_dir(&node).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        if name != "security-server.toml" && name != "pin" {
            if path.is_dir() { std::fs::remove_dir_all(&path) } else { std::fs::remove_file(&path) }.unwrap();
        }
    }

    // A wrong passphrase restores nothing.
    std::fs::write(dir.join("wrong"), "not the passphrase at all").unwrap();
    std::fs::set_permissions(dir.join("wrong"), std::fs::Permissions::from_mode(0o600)).unwrap();
    let wrong = dir.join("wrong");
    let (ok, out) =
        run(&["restore", "--from", file.to_str().unwrap(), "--passphrase-file", wrong.to_str().unwrap()], &config);
    assert!(!ok && out.contains("the passphrase is wrong"), "{out}");
    let state_files = std::fs::read_dir(node.join("state")).map(|d| d.count()).unwrap_or(0);
    assert!(state_files == 0 && !node.join("token").exists(), "a failed restore wrote files");

    let (ok, out) = run(&["restore", "--from", file.to_str().unwrap(), "--passphrase-file", p], &config);
    assert!(ok, "{out}");
    assert!(out.starts_with("restored "), "{out}");
    // A node that holds a server is not overwritten by mistake.
    let (ok, out) = run(&["restore", "--from", file.to_str().unwrap(), "--passphrase-file", p], &config);
    assert!(!ok && out.contains("restore onto a fresh node"), "{out}");
    assert_eq!(std::fs::read_to_string(node.join("sign.pem")).unwrap(), sign_pem, "the certificate is back");

    // The restored node serves, from its binary and configuration file.
    let (ok, out) = run(&["check-config"], &config);
    assert!(ok, "{out}");
    let mut cmd = Command::new(binary("musubi-security-server"));
    cmd.arg("--config").arg(&config);
    let mut server = Service::start("restored-provider", cmd, &dir);
    server.wait_for("STATUS=serving");
    let reply =
        http(cp, "POST", "text/xml; charset=UTF-8", example_request(&service, "it-backup-2").into_bytes()).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    server.stop();
    let db = node.join("messagelog.sqlite");
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}?mode=ro", db.display())).await.unwrap();
    let rows: Vec<(String, String)> =
        sqlx::query_as("SELECT query_id, direction FROM message_log ORDER BY id").fetch_all(&pool).await.unwrap();
    pool.close().await;
    for id in ["it-backup-1", "it-backup-2"] {
        for direction in ["request", "response"] {
            assert!(rows.iter().any(|(q, d)| q == id && d == direction), "{id} {direction} not in the log: {rows:?}");
        }
    }
    consumer.shutdown().await;
    services.shutdown();
}
