//! `Type=notify` readiness: the server tells systemd through `NOTIFY_SOCKET`
//! when it serves (`READY=1`) and when it begins to stop (`STOPPING=1`).
//! A server that is not set up yet serves its admin API, so it is ready too.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::os::unix::net::UnixDatagram;
use std::process::{Command, Stdio};
use std::time::Duration;

fn receive(socket: &UnixDatagram) -> String {
    let mut buf = [0u8; 4096];
    let n = socket.recv(&mut buf).expect("a notification before the timeout");
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[test]
fn the_server_notifies_systemd_when_ready_and_when_stopping() {
    let dir = std::env::temp_dir().join(format!("musubi-notify-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let socket_path = dir.join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    socket.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let config = dir.join("security-server.toml");
    std::fs::write(
        &config,
        format!(
            "client_proxy_listen = \"127.0.0.1:0\"\nserver_proxy_listen = \"127.0.0.1:0\"\n\
             ocsp_listen = \"127.0.0.1:0\"\nstate_dir = \"{}\"\ndatabase = \"{}\"\n\
             admin_listen = \"127.0.0.1:0\"\n",
            dir.join("state").display(),
            dir.join("state/messagelog.sqlite").display()
        ),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_musubi-security-server"))
        .arg("--config")
        .arg(&config)
        .env("NOTIFY_SOCKET", &socket_path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let ready = receive(&socket);
    assert!(ready.lines().any(|l| l == "READY=1"), "{ready:?}");
    assert!(ready.contains("STATUS=not set up yet"), "{ready:?}");
    // SIGTERM, as systemd stops a service (the shell's own `kill`: no procps needed).
    let killed = Command::new("sh").arg("-c").arg(format!("kill -TERM {}", child.id())).status().unwrap();
    assert!(killed.success());
    let stopping = receive(&socket);
    assert_eq!(stopping, "STOPPING=1");
    let status = child.wait().unwrap();
    assert!(status.success(), "a stop by SIGTERM ends cleanly: {status:?}");
    let _ = std::fs::remove_dir_all(&dir);
}
