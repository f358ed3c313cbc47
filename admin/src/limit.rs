//! How many connections a listener serves at once, in all and from one
//! address: a host that holds connections open (slow or never-finished TLS
//! handshakes, idle sockets, slow headers) takes at most its own share and
//! the listener keeps serving everyone else.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Most TLS sessions a server keeps for resumption; the oldest is
/// forgotten first, and its client makes a full handshake next time.
pub const MAX_TLS_SESSIONS: usize = 256;

/// Bounds what a TLS server keeps for resumption: at most
/// [`MAX_TLS_SESSIONS`] sessions in memory (TLS 1.2 session IDs and TLS 1.3
/// tickets alike, each usable once in TLS 1.3), one TLS 1.3 ticket per
/// connection. No stateless tickets (no ticket key to rotate or leak):
/// rustls's default ticketer makes none, which a test holds it to.
/// Renegotiation needs no setting: rustls never renegotiates and answers a
/// client's attempt with a `no_renegotiation` alert.
pub fn bound_tls_sessions(config: &mut rustls::ServerConfig) {
    config.session_storage = rustls::server::ServerSessionMemoryCache::new(MAX_TLS_SESSIONS);
    config.send_tls13_tickets = 1;
}

/// How many log lines of one kind are written a minute: a flood of bad
/// handshakes must not become a flood of log lines (the disk and the
/// journal are shared with everything else). The lines over the budget are
/// counted, and the next line written says how many were left out.
#[derive(Debug)]
pub struct LogBudget {
    per_minute: u32,
    state: Mutex<(std::time::Instant, u32, u64)>,
}

impl LogBudget {
    /// At most `per_minute` lines a minute.
    pub fn new(per_minute: u32) -> Self {
        Self { per_minute, state: Mutex::new((std::time::Instant::now(), 0, 0)) }
    }

    /// Whether a line may be written now: `Some(n)` with the number of lines
    /// left out since the last one written, `None` when over the budget.
    pub fn take(&self) -> Option<u64> {
        self.take_at(std::time::Instant::now())
    }

    /// Logs `why` a connection from `peer` was refused as a warning while
    /// the budget lasts (saying how many were left out before it), and at
    /// debug level after.
    pub fn refused(&self, peer: std::net::SocketAddr, why: &str) {
        match self.take() {
            Some(0) => tracing::warn!(peer_addr = %peer, "{why}"),
            Some(left_out) => tracing::warn!(
                peer_addr = %peer,
                "{why} ({left_out} more refused or timed-out handshakes were not logged)"
            ),
            None => tracing::debug!(peer_addr = %peer, "{why}"),
        }
    }

    fn take_at(&self, now: std::time::Instant) -> Option<u64> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let (start, used, left_out) = &mut *state;
        if now.duration_since(*start) >= std::time::Duration::from_secs(60) {
            (*start, *used) = (now, 0);
        }
        if *used < self.per_minute {
            *used += 1;
            Some(std::mem::take(left_out))
        } else {
            *left_out += 1;
            None
        }
    }
}

/// Connection slots: `total` in all, `per_peer` for one address.
#[derive(Debug, Clone)]
pub struct ConnectionLimit {
    slots: usize,
    total: Arc<Semaphore>,
    per_peer: usize,
    peers: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

/// Why a connection was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// Every slot is taken.
    #[error("all {0} connection slots are taken")]
    Full(usize),
    /// This address holds its share already.
    #[error("{peer} holds {held} connections, its share")]
    PeerShare {
        /// The address.
        peer: IpAddr,
        /// What it holds.
        held: usize,
    },
}

/// One admitted connection's slot, given back when dropped.
#[derive(Debug)]
pub struct Slot {
    _total: OwnedSemaphorePermit,
    peer: IpAddr,
    peers: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut peers = self.peers.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = peers.get_mut(&self.peer) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                peers.remove(&self.peer);
            }
        }
    }
}

impl ConnectionLimit {
    /// At most `total` connections, `per_peer` of them from one address.
    pub fn new(total: usize, per_peer: usize) -> Self {
        Self { slots: total, total: Arc::new(Semaphore::new(total)), per_peer, peers: Arc::default() }
    }

    /// A slot for a connection from `peer`, if there is one.
    pub fn admit(&self, peer: IpAddr) -> Result<Slot, Refused> {
        let mut peers = self.peers.lock().unwrap_or_else(|p| p.into_inner());
        let held = peers.get(&peer).copied().unwrap_or(0);
        if held >= self.per_peer {
            return Err(Refused::PeerShare { peer, held });
        }
        let total = self.total.clone().try_acquire_owned().map_err(|_| Refused::Full(self.slots))?;
        *peers.entry(peer).or_insert(0) += 1;
        Ok(Slot { _total: total, peer, peers: self.peers.clone() })
    }

    /// Connections held now.
    pub fn held(&self) -> usize {
        self.peers.lock().unwrap_or_else(|p| p.into_inner()).values().sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_lines_over_the_budget_are_counted_and_reported_with_the_next() {
        let budget = LogBudget::new(2);
        let t0 = std::time::Instant::now();
        assert_eq!(budget.take_at(t0), Some(0));
        assert_eq!(budget.take_at(t0), Some(0));
        for _ in 0..5 {
            assert_eq!(budget.take_at(t0 + std::time::Duration::from_secs(30)), None);
        }
        let next_minute = t0 + std::time::Duration::from_secs(61);
        assert_eq!(budget.take_at(next_minute), Some(5), "the next line says how many were left out");
        assert_eq!(budget.take_at(next_minute), Some(0));
        assert_eq!(budget.take_at(next_minute), None);
    }

    #[test]
    fn tls_servers_keep_sessions_in_a_bounded_cache_and_make_no_stateless_tickets() {
        let key = musubi_pki::generate_ecdsa_key().unwrap();
        let cert = musubi_pki::self_signed_tls_cert(&key, "t", &["localhost".into()]).unwrap();
        let mut config =
            rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_no_client_auth()
                .with_single_cert(vec![cert.into()], rustls::pki_types::PrivateKeyDer::Pkcs8(key.into()))
                .unwrap();
        bound_tls_sessions(&mut config);
        assert!(!config.ticketer.enabled(), "stateless tickets would need a rotated ticket key");
        assert_eq!(config.send_tls13_tickets, 1);
        assert!(config.session_storage.can_cache());
    }

    #[test]
    fn one_address_takes_its_share_and_the_others_still_get_in() {
        let limit = ConnectionLimit::new(4, 2);
        let (a, b, c) = ([127, 0, 0, 1].into(), [127, 0, 0, 2].into(), [127, 0, 0, 3].into());
        let a1 = limit.admit(a).unwrap();
        let _a2 = limit.admit(a).unwrap();
        assert_eq!(limit.admit(a).unwrap_err(), Refused::PeerShare { peer: a, held: 2 });
        let _b1 = limit.admit(b).unwrap();
        let _b2 = limit.admit(b).unwrap();
        assert_eq!(limit.admit(c).unwrap_err(), Refused::Full(4));
        assert_eq!(limit.held(), 4);
        drop(a1);
        assert_eq!(limit.held(), 3);
        let _c1 = limit.admit(c).unwrap();
        assert!(limit.admit(a).is_err(), "every slot is taken again");
    }
}
