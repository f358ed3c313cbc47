//! The Debian packages (`deploy/build-packages`, cargo-deb) installed into a
//! scratch Debian root (debootstrap, no container): the binaries, units and
//! configuration land where the units expect them, `check-config` passes as the
//! `musubi` user, the installed security server starts as that user and tells
//! systemd it is ready, a backup taken as that user restores onto a fresh
//! install, an upgrade keeps a locally edited configuration, and a purge wipes
//! keys and data only when asked (seed 004 §4.2.6).
//!
//! Needs root, debootstrap, unshare and ip, the packages in `target/debian/`
//! and Debian's mirror (or a cached root); prints `skipped: …` without them,
//! and fails instead when `MUSUBI_REQUIRE_PEERS=1` (as in CI, whose `.ci/run`
//! builds the packages first).

use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::{have, is_root, ok, skip};

const COMPONENTS: [&str; 3] = ["security-server", "central-server", "adapter"];
const PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
const MIRROR: &str = "http://deb.debian.org/debian";

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| workspace().join("target"), PathBuf::from)
}

/// The packages of this workspace's version in `target/debian/`.
fn packages() -> Option<Vec<PathBuf>> {
    let dir = target_dir().join("debian");
    let version = env!("CARGO_PKG_VERSION");
    let names = ["musubi", "musubi-security-server", "musubi-central-server", "musubi-adapter"];
    let found: Vec<PathBuf> =
        names.iter().map(|n| dir.join(format!("{n}_{version}-1_amd64.deb"))).filter(|p| p.exists()).collect();
    (found.len() == names.len()).then_some(found)
}

/// A minimal Debian bookworm root, made once by debootstrap and kept under the
/// target folder (`.complete` marks a finished one).
fn base_root() -> Option<PathBuf> {
    let base = target_dir().join("musubi-debootstrap/bookworm");
    if base.join(".complete").exists() {
        return Some(base);
    }
    let _ = std::fs::remove_dir_all(&base);
    std::fs::create_dir_all(&base).unwrap();
    let out = Command::new("debootstrap")
        .args(["--variant=minbase", "bookworm"])
        .arg(&base)
        .arg(MIRROR)
        .env("PATH", PATH)
        .output()
        .unwrap();
    if !out.status.success() {
        let _ = std::fs::remove_dir_all(&base);
        skip(&format!("debootstrap from {MIRROR} failed: {}", String::from_utf8_lossy(&out.stderr).trim()));
        return None;
    }
    std::fs::write(base.join(".complete"), "").unwrap();
    Some(base)
}

/// A copy of the base root for one test, removed when dropped.
struct Root(PathBuf);

impl Root {
    fn new(base: &Path) -> Root {
        let dir = crate::scratch("deb-root");
        ok(Command::new("cp").arg("-a").arg(base).arg(&dir));
        Root(dir)
    }

    fn path(&self, inside: &str) -> PathBuf {
        self.0.join(inside.trim_start_matches('/'))
    }

    /// `sh -c script` as root inside the root.
    fn sh(&self, script: &str) -> Command {
        let mut cmd = Command::new("chroot");
        cmd.arg(&self.0).args(["sh", "-c", script]).env("PATH", PATH);
        cmd
    }

    /// A program run as the musubi user inside the root.
    fn as_musubi(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("chroot");
        cmd.arg("--userspec=musubi:musubi").arg(&self.0).args(args).env("PATH", PATH);
        cmd
    }
}

impl Drop for Root {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).permissions().mode() & 0o7777
}

#[test]
fn the_debian_packages_install_check_their_configuration_start_and_purge_on_request() {
    if !is_root() {
        skip("not root: installing packages into a scratch root needs root");
        return;
    }
    for tool in ["debootstrap", "chroot", "unshare", "ip"] {
        if !have(tool) {
            skip(&format!("{tool} is not installed (Debian's debootstrap, coreutils, util-linux, iproute2)"));
            return;
        }
    }
    let Some(debs) = packages() else {
        skip(&format!(
            "the packages are not in {}: build them with deploy/build-packages",
            target_dir().join("debian").display()
        ));
        return;
    };
    let Some(base) = base_root() else { return };
    let root = Root::new(&base);
    std::fs::create_dir_all(root.path("/tmp/pkgs")).unwrap();
    for deb in &debs {
        std::fs::copy(deb, root.path("/tmp/pkgs").join(deb.file_name().unwrap())).unwrap();
    }

    // Install all four.
    let log = ok(&mut root.sh("dpkg -i /tmp/pkgs/*.deb"));
    assert!(log.contains("Setting up musubi-security-server"), "{log}");
    let id = ok(&mut root.sh("id -u musubi; id -g musubi; getent passwd musubi"));
    assert!(id.contains(":/var/lib/musubi:/usr/sbin/nologin"), "the musubi system user: {id}");
    let mut ids = id.lines().map(|l| l.trim().parse::<u32>());
    let (musubi_uid, musubi_gid) = (ids.next().unwrap().unwrap(), ids.next().unwrap().unwrap());
    assert!(musubi_uid < 1000, "musubi is a system user: {id}");
    for c in COMPONENTS {
        let bin = root.path(&format!("/usr/bin/musubi-{c}"));
        assert_eq!(mode(&bin), 0o755, "{}", bin.display());
        let unit = std::fs::read(root.path(&format!("/lib/systemd/system/musubi-{c}.service"))).unwrap();
        assert_eq!(unit, std::fs::read(workspace().join(format!("deploy/systemd/musubi-{c}.service"))).unwrap());
        let conf = root.path(&format!("/etc/musubi/{c}.toml"));
        assert_eq!(
            std::fs::read(&conf).unwrap(),
            std::fs::read(workspace().join(format!("deploy/etc/{c}.toml"))).unwrap()
        );
        // Readable by the service's group, not by everyone.
        assert_eq!(mode(&conf), 0o640, "{}", conf.display());
        assert_eq!(std::fs::metadata(&conf).unwrap().gid(), musubi_gid);
        let state = root.path(&format!("/var/lib/musubi/{c}"));
        assert_eq!(mode(&state), 0o700, "{}", state.display());
        assert_eq!(std::fs::metadata(&state).unwrap().uid(), musubi_uid);
        let conffiles = ok(&mut root.sh(&format!("dpkg-query -W -f='${{Conffiles}}' musubi-{c}")));
        assert!(conffiles.contains(&format!("/etc/musubi/{c}.toml")), "musubi-{c} conffiles: {conffiles}");
        // The unit's ExecStartPre, as the unit's user.
        let checked = ok(&mut root.as_musubi(&[&format!("/usr/bin/musubi-{c}"), "check-config"]));
        assert!(checked.contains(&format!("/etc/musubi/{c}.toml: ")) && checked.contains("valid"), "{checked}");
    }
    let cli = ok(&mut root.sh("musubi --version"));
    assert!(cli.starts_with("musubi "), "{cli}");

    // A mistake in the file is named by its line, and the service would not start.
    let adapter_conf = root.path("/etc/musubi/adapter.toml");
    let shipped = std::fs::read_to_string(&adapter_conf).unwrap();
    let lines = shipped.lines().count();
    std::fs::write(&adapter_conf, format!("{shipped}max_devices = \"many\"\n")).unwrap();
    let out = root.as_musubi(&["/usr/bin/musubi-adapter", "check-config"]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a wrong setting passes check-config");
    assert!(err.contains(&format!("/etc/musubi/adapter.toml:{}:", lines + 1)), "{err}");

    start_installed_security_server(&root);
    let admin_key = root.path("/var/lib/musubi/security-server/admin/admin-api-key");
    let key = std::fs::read(&admin_key).unwrap_or_else(|e| panic!("{}: {e}", admin_key.display()));
    assert_eq!(std::fs::metadata(&admin_key).unwrap().uid(), musubi_uid, "the server's files are the musubi user's");
    assert_eq!(mode(&admin_key) & 0o077, 0, "{} is readable by others", admin_key.display());

    // A backup, as the service's user, with a passphrase from a file of its own.
    std::fs::write(root.path("/tmp/backup-passphrase"), "a long backup passphrase\n").unwrap();
    ok(&mut root.sh("chown musubi:musubi /tmp/backup-passphrase && chmod 0600 /tmp/backup-passphrase"));
    let backup = [
        "/usr/bin/musubi-security-server",
        "backup",
        "--out",
        "/tmp/ss.backup",
        "--passphrase-file",
        "/tmp/backup-passphrase",
    ];
    let made = ok(&mut root.as_musubi(&backup));
    assert!(made.contains("encrypted"), "{made}");

    // An upgrade (the same package again) keeps a locally edited configuration.
    let edited = shipped.replace("#max_devices = 1000", "max_devices = 10");
    assert_ne!(edited, shipped);
    std::fs::write(&adapter_conf, &edited).unwrap();
    ok(&mut root.sh("dpkg -i /tmp/pkgs/musubi-adapter_*.deb"));
    assert_eq!(std::fs::read_to_string(&adapter_conf).unwrap(), edited);
    ok(&mut root.as_musubi(&["/usr/bin/musubi-adapter", "check-config"]));

    // Purge without asking: the configuration goes, keys and data stay.
    let log = ok(&mut root.sh("dpkg --purge musubi-security-server"));
    assert!(log.contains("kept /var/lib/musubi/security-server"), "{log}");
    assert!(!root.path("/usr/bin/musubi-security-server").exists());
    assert!(!root.path("/etc/musubi/security-server.toml").exists());
    assert_eq!(std::fs::read(&admin_key).unwrap(), key, "the keys were kept");

    // Decommissioning: purge with MUSUBI_PURGE_DATA=1 wipes keys and data too.
    let log = ok(&mut root.sh("MUSUBI_PURGE_DATA=1 dpkg --purge musubi-central-server musubi-adapter"));
    assert!(log.contains("wiped /var/lib/musubi/adapter"), "{log}");
    for c in ["central-server", "adapter"] {
        assert!(!root.path(&format!("/var/lib/musubi/{c}")).exists(), "{c}'s state survived the purge");
        assert!(!root.path(&format!("/etc/musubi/{c}.toml")).exists());
    }
    // Installed again, the security server finds its kept state; purged with
    // the wipe, nothing of Musubi is left but the user.
    ok(&mut root.sh("dpkg -i /tmp/pkgs/musubi-security-server_*.deb"));
    assert_eq!(std::fs::read(&admin_key).unwrap(), key);
    ok(&mut root.sh("MUSUBI_PURGE_DATA=1 dpkg --purge musubi-security-server"));
    assert!(!root.path("/var/lib/musubi").exists(), "/var/lib/musubi survived the wipe");

    // The backup restored onto the fresh install, as the service's user: the
    // same keys, and the installed server starts from them.
    ok(&mut root.sh("dpkg -i /tmp/pkgs/musubi-security-server_*.deb"));
    let restore = [
        "/usr/bin/musubi-security-server",
        "restore",
        "--from",
        "/tmp/ss.backup",
        "--passphrase-file",
        "/tmp/backup-passphrase",
    ];
    let restored = ok(&mut root.as_musubi(&restore));
    assert!(restored.starts_with("restored "), "{restored}");
    assert_eq!(std::fs::read(&admin_key).unwrap(), key, "the restored admin API key");
    assert_eq!(std::fs::metadata(&admin_key).unwrap().uid(), musubi_uid);
    assert!(!root.path("/var/lib/musubi/security-server/.restoring").exists());
    ok(&mut root.as_musubi(&["/usr/bin/musubi-security-server", "check-config"]));
    start_installed_security_server(&root);

    // Purged with the wipe, nothing of Musubi is left but the user.
    ok(&mut root.sh("MUSUBI_PURGE_DATA=1 dpkg --purge musubi-security-server musubi"));
    assert!(!root.path("/var/lib/musubi").exists(), "/var/lib/musubi survived the last purge");
    assert!(!root.path("/etc/musubi").exists(), "/etc/musubi survived the last purge");
}

/// Starts the installed security server as systemd would (the musubi user,
/// NOTIFY_SOCKET, SIGTERM to stop), in a network namespace of its own so its
/// ports are its own: it is ready with its admin API (not set up yet), and
/// stops cleanly.
fn start_installed_security_server(root: &Root) {
    let socket_path = root.path("/run/musubi-test-notify.sock");
    let _ = std::fs::remove_file(&socket_path);
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    std::fs::set_permissions(&socket_path, std::fs::Permissions::from_mode(0o666)).unwrap();
    socket.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let script = format!(
        "mount -t proc proc {proc} && ip link set lo up && \
         exec chroot --userspec=musubi:musubi {root} /usr/bin/musubi-security-server",
        proc = root.path("/proc").display(),
        root = root.0.display()
    );
    let mut child = Command::new("unshare")
        .args(["--mount", "--net", "--", "sh", "-c", &script])
        .env("PATH", PATH)
        .env("NOTIFY_SOCKET", "/run/musubi-test-notify.sock")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut buf = [0u8; 4096];
    let ready = match socket.recv(&mut buf) {
        Ok(n) => String::from_utf8_lossy(&buf[..n]).into_owned(),
        Err(e) => {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!("no READY=1 from the installed server ({e}): {}", String::from_utf8_lossy(&out.stderr));
        }
    };
    assert!(ready.lines().any(|l| l == "READY=1"), "{ready:?}");
    // SIGTERM, as systemd stops a service (the shell's own `kill`: no procps needed).
    let killed = Command::new("sh").arg("-c").arg(format!("kill -TERM {}", child.id())).status().unwrap();
    assert!(killed.success());
    let n = socket.recv(&mut buf).expect("STOPPING=1 after SIGTERM");
    assert_eq!(&buf[..n], b"STOPPING=1");
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "stopped by SIGTERM: {}\n{}", out.status, String::from_utf8_lossy(&out.stderr));
    let _ = std::fs::remove_file(&socket_path);
}
