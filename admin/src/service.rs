//! What every Musubi program needs to run as a system service: readiness and
//! stopping told to systemd (`Type=notify`), and the signals that stop it.

/// Tells systemd about the program's state through the datagram socket in
/// `NOTIFY_SOCKET`, when there is one: `READY=1` once it serves, `STOPPING=1`
/// when it begins to stop, `STATUS=…` lines for `systemctl status`.
pub fn notify_systemd(state: &str) {
    use std::os::linux::net::SocketAddrExt as _;
    use std::os::unix::ffi::OsStrExt as _;
    use std::os::unix::net::{SocketAddr, UnixDatagram};
    let Some(target) = std::env::var_os("NOTIFY_SOCKET") else { return };
    let sent = UnixDatagram::unbound().and_then(|socket| match target.as_bytes().strip_prefix(b"@") {
        // An abstract socket name (Linux).
        Some(name) => socket.send_to_addr(state.as_bytes(), &SocketAddr::from_abstract_name(name)?),
        None => socket.send_to(state.as_bytes(), &target),
    });
    if let Err(e) = sent {
        tracing::warn!("cannot notify systemd through {}: {e}", target.to_string_lossy());
    }
}

/// Waits for Ctrl-C or SIGTERM (what `systemctl stop` sends).
pub async fn stop_signal() -> std::io::Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r?,
        _ = term.recv() => {}
    }
    Ok(())
}
