//! What every Musubi program needs to run as a system service: readiness and
//! stopping told to systemd (`Type=notify`), and the signals that stop it.
//!
//! The signals are listened for from [`Service::listen`] on, and readiness can
//! only be told through a [`Service`]: a SIGTERM that systemd sends right after
//! `READY=1` then starts a clean stop instead of killing the process outright.

use tokio::signal::unix::{Signal, SignalKind, signal};

/// A running program's link to its service manager.
pub struct Service {
    terminate: Signal,
    interrupt: Signal,
}

impl Service {
    /// Starts listening for SIGTERM (what `systemctl stop` sends) and SIGINT
    /// (Ctrl-C). Call it inside the runtime, before the program serves.
    pub fn listen() -> std::io::Result<Self> {
        Ok(Self { terminate: signal(SignalKind::terminate())?, interrupt: signal(SignalKind::interrupt())? })
    }

    /// `READY=1` with a `STATUS=` line for `systemctl status`.
    pub fn ready(&self, status: &str) {
        notify_systemd(&format!("READY=1\nSTATUS={status}"));
    }

    /// Waits for SIGTERM or SIGINT, then tells systemd `STOPPING=1`.
    pub async fn stopping(&mut self) {
        tokio::select! {
            _ = self.terminate.recv() => {}
            _ = self.interrupt.recv() => {}
        }
        notify_systemd("STOPPING=1");
    }
}

/// Tells systemd about the program's state through the datagram socket in
/// `NOTIFY_SOCKET`, when there is one.
fn notify_systemd(state: &str) {
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
