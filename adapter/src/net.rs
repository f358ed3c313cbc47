//! UDP sockets of an ECHONET Lite node: unicast on port 3610 of a configured
//! address, the multicast group 224.0.23.0, a source allowlist and a
//! per-source flood limit. Both the adapter and the simulator use them.
//!
//! ECHONET Lite has no security of its own (guideline §3): every frame is
//! spoofable plaintext, so what arrives is filtered before it is decoded,
//! and nothing a frame says can make a queue grow without bound.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

use crate::frame::{self, Frame, Message};

/// The ECHONET Lite port.
pub const PORT: u16 = 3610;
/// The IPv4 multicast group of ECHONET Lite.
pub const MULTICAST: Ipv4Addr = Ipv4Addr::new(224, 0, 23, 0);

/// An address range (`192.168.1.0/24`, `127.0.0.5/32`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Cidr {
    /// Network address.
    pub addr: IpAddr,
    /// Prefix length.
    pub prefix: u8,
}

impl Cidr {
    /// Whether `ip` is in the range.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.prefix.min(32))).unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(self.prefix.min(128))).unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl TryFrom<String> for Cidr {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        let (addr, prefix) = s.split_once('/').unwrap_or((&s, ""));
        let addr: IpAddr =
            addr.parse().map_err(|_| format!("{s:?} is not an address range; write e.g. 192.168.1.0/24"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix =
            if prefix.is_empty() { max } else { prefix.parse().map_err(|_| format!("bad prefix in {s:?}"))? };
        if prefix > max {
            return Err(format!("prefix /{prefix} is longer than /{max} in {s:?}"));
        }
        Ok(Cidr { addr, prefix })
    }
}

impl From<Cidr> for String {
    fn from(c: Cidr) -> String {
        format!("{}/{}", c.addr, c.prefix)
    }
}

/// Where and how a node talks ECHONET Lite.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NetConfig {
    /// The unicast address to bind (its port is [`NetConfig::port`]).
    pub bind: Ipv4Addr,
    /// The port (3610; other values only for tests against odd peers).
    pub port: u16,
    /// Join the multicast group and send discovery there.
    pub multicast: bool,
    /// The multicast group (224.0.23.0).
    pub multicast_group: Ipv4Addr,
    /// Sources allowed to talk to this node; empty allows every source.
    pub allow: Vec<Cidr>,
    /// Frames per second accepted from one source; more are dropped.
    pub max_frames_per_second: u32,
    /// Send requests by TCP to devices that accept it (UDP otherwise, §2.11).
    pub tcp: bool,
}

impl Default for NetConfig {
    fn default() -> Self {
        Self {
            bind: Ipv4Addr::UNSPECIFIED,
            port: PORT,
            multicast: true,
            multicast_group: MULTICAST,
            allow: Vec::new(),
            max_frames_per_second: 50,
            tcp: false,
        }
    }
}

/// A frame that arrived.
#[derive(Debug, Clone)]
pub struct Inbound {
    /// Who sent it.
    pub from: SocketAddr,
    /// Whether it came through the multicast group.
    pub multicast: bool,
    /// The decoded frame.
    pub msg: Message,
}

/// Counters of what was turned away.
#[derive(Debug, Default)]
pub struct Drops {
    /// Sources outside the allowlist.
    pub not_allowed: std::sync::atomic::AtomicU64,
    /// Over a source's frame rate.
    pub flooded: std::sync::atomic::AtomicU64,
    /// Not a valid format-1 frame.
    pub malformed: std::sync::atomic::AtomicU64,
    /// The node's queue was full.
    pub queue_full: std::sync::atomic::AtomicU64,
}

/// A bound node: the unicast socket (also used to send multicast) and the
/// frames that arrive on it and on the group.
#[derive(Debug)]
pub struct Sockets {
    /// Sends and receives unicast; sends to the multicast group. `None` once closed.
    unicast: std::sync::RwLock<Option<Arc<UdpSocket>>>,
    stop: tokio::sync::watch::Sender<bool>,
    tasks: std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>,
    /// The address the unicast socket is bound to.
    pub local: SocketAddr,
    /// The multicast destination.
    pub group: SocketAddr,
    /// What was dropped.
    pub drops: Arc<Drops>,
    /// Feeds frames that arrive by other ways (TCP) into the same queue.
    inject: mpsc::Sender<Inbound>,
}

fn udp(addr: SocketAddrV4, reuse: bool) -> io::Result<socket2::Socket> {
    let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM, Some(socket2::Protocol::UDP))?;
    if reuse {
        s.set_reuse_address(true)?;
    }
    s.set_nonblocking(true)?;
    s.bind(&SocketAddr::V4(addr).into())?;
    Ok(s)
}

/// Binds the node's sockets and starts receiving. Frames go to the returned
/// channel (bounded: when the node falls behind, frames are dropped and
/// counted, never queued without limit).
pub fn bind(conf: &NetConfig, queue: usize) -> io::Result<(Sockets, mpsc::Receiver<Inbound>)> {
    let iface = if conf.bind.is_unspecified() { Ipv4Addr::UNSPECIFIED } else { conf.bind };
    let uni = udp(SocketAddrV4::new(conf.bind, conf.port), conf.bind.is_unspecified())?;
    let mut group_sock = None;
    if conf.multicast {
        uni.set_multicast_if_v4(&iface)?;
        uni.set_multicast_loop_v4(true)?;
        if conf.bind.is_unspecified() {
            uni.join_multicast_v4(&conf.multicast_group, &iface)?;
        } else {
            // A socket bound to one unicast address does not see group
            // traffic: a second one, bound to the group, does.
            let g = udp(SocketAddrV4::new(conf.multicast_group, conf.port), true)?;
            g.join_multicast_v4(&conf.multicast_group, &iface)?;
            group_sock = Some(UdpSocket::from_std(g.into())?);
        }
    }
    let unicast = Arc::new(UdpSocket::from_std(uni.into())?);
    let local = unicast.local_addr()?;
    let drops = Arc::new(Drops::default());
    let (tx, rx) = mpsc::channel(queue.max(1));
    let filter = Arc::new(std::sync::Mutex::new(Filter::new(conf)));
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    let mut tasks = vec![tokio::spawn(receive(
        unicast.clone(),
        false,
        local,
        (filter.clone(), drops.clone()),
        tx.clone(),
        stop_rx.clone(),
    ))];
    if let Some(g) = group_sock {
        tasks.push(tokio::spawn(receive(Arc::new(g), true, local, (filter, drops.clone()), tx.clone(), stop_rx)));
    }
    let group = SocketAddr::V4(SocketAddrV4::new(conf.multicast_group, conf.port));
    let sockets = Sockets {
        unicast: std::sync::RwLock::new(Some(unicast)),
        stop,
        tasks: std::sync::Mutex::new(tasks),
        local,
        group,
        drops,
        inject: tx,
    };
    Ok((sockets, rx))
}

/// The allowlist and per-source rate limit.
#[derive(Debug)]
struct Filter {
    allow: Vec<Cidr>,
    per_second: u32,
    window: HashMap<IpAddr, (Instant, u32)>,
}

const MAX_TRACKED_SOURCES: usize = 4096;

impl Filter {
    fn new(conf: &NetConfig) -> Self {
        Self { allow: conf.allow.clone(), per_second: conf.max_frames_per_second.max(1), window: HashMap::new() }
    }

    /// `Err(reason)` when a frame from `ip` at `now` must be dropped.
    fn admit(&mut self, ip: IpAddr, now: Instant) -> Result<(), bool> {
        if !self.allow.is_empty() && !self.allow.iter().any(|c| c.contains(ip)) {
            return Err(false);
        }
        if self.window.len() >= MAX_TRACKED_SOURCES && !self.window.contains_key(&ip) {
            self.window.retain(|_, (start, _)| now.duration_since(*start) < Duration::from_secs(1));
            if self.window.len() >= MAX_TRACKED_SOURCES {
                return Err(true);
            }
        }
        let entry = self.window.entry(ip).or_insert((now, 0));
        if now.duration_since(entry.0) >= Duration::from_secs(1) {
            *entry = (now, 0);
        }
        entry.1 += 1;
        if entry.1 > self.per_second { Err(true) } else { Ok(()) }
    }
}

type Shared = (Arc<std::sync::Mutex<Filter>>, Arc<Drops>);

async fn receive(
    sock: Arc<UdpSocket>,
    multicast: bool,
    own: SocketAddr,
    (filter, drops): Shared,
    tx: mpsc::Sender<Inbound>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    use std::sync::atomic::Ordering::Relaxed;
    let mut buf = vec![0u8; 65_536];
    loop {
        let got = tokio::select! {
            _ = stop.changed() => return,
            got = sock.recv_from(&mut buf) => got,
        };
        let (n, from) = match got {
            Ok(r) => r,
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => continue,
            Err(e) => {
                tracing::warn!(error = %e, "ECHONET Lite socket failed; receiving stops");
                return;
            }
        };
        if tx.is_closed() {
            return;
        }
        // Our own multicasts come back on loopback: not for us.
        if from == own {
            continue;
        }
        let admitted = filter.lock().map(|mut f| f.admit(from.ip(), Instant::now())).unwrap_or(Err(true));
        match admitted {
            Ok(()) => {}
            Err(false) => {
                drops.not_allowed.fetch_add(1, Relaxed);
                continue;
            }
            Err(true) => {
                drops.flooded.fetch_add(1, Relaxed);
                continue;
            }
        }
        let msg = match frame::decode(&buf[..n]) {
            Ok(Frame::Format1(m)) => m,
            Ok(Frame::Format2 { .. }) => continue,
            Err(e) => {
                drops.malformed.fetch_add(1, Relaxed);
                tracing::debug!(%from, error = %e, "malformed ECHONET Lite frame dropped");
                continue;
            }
        };
        if tx.try_send(Inbound { from, multicast, msg }).is_err() {
            drops.queue_full.fetch_add(1, Relaxed);
        }
    }
}

impl Sockets {
    /// Sends `msg` to `to`.
    pub async fn send(&self, to: SocketAddr, msg: &Message) -> io::Result<()> {
        let sock = self.unicast.read().ok().and_then(|s| s.clone());
        let sock =
            sock.ok_or_else(|| io::Error::new(io::ErrorKind::NotConnected, "the ECHONET Lite socket is closed"))?;
        sock.send_to(&frame::encode(&Frame::Format1(msg.clone())), to).await.map(|_| ())
    }

    /// Reads frames from a TCP stream from `from` into the node's queue
    /// until the stream ends or sends something that is not a format-1 frame.
    pub async fn read_stream<R: tokio::io::AsyncRead + Unpin>(&self, mut stream: R, from: SocketAddr) {
        read_frames(&mut stream, from, &self.inject, &self.drops).await;
    }

    /// Closes the sockets and waits until they are released, so that the
    /// address can be bound again at once.
    pub async fn close(&self) {
        if let Ok(mut s) = self.unicast.write() {
            s.take();
        }
        let _ = self.stop.send(true);
        let tasks: Vec<_> = self.tasks.lock().map(|mut t| t.drain(..).collect()).unwrap_or_default();
        for t in tasks {
            let _ = t.await;
        }
    }
}

/// Reads format-1 frames from a stream (ECHONET Lite over TCP, §2.11) and
/// queues them; returns at the end of the stream or at the first bad frame
/// (a stream cannot be resynchronised).
pub async fn read_frames<R: tokio::io::AsyncRead + Unpin>(
    stream: &mut R,
    from: SocketAddr,
    tx: &mpsc::Sender<Inbound>,
    drops: &Drops,
) {
    use std::sync::atomic::Ordering::Relaxed;
    use tokio::io::AsyncReadExt as _;
    let mut buf: Vec<u8> = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    loop {
        loop {
            match frame::frame_len(&buf) {
                Ok(Some(n)) => {
                    let bytes: Vec<u8> = buf.drain(..n).collect();
                    match frame::decode(&bytes) {
                        Ok(Frame::Format1(msg)) => {
                            if tx.try_send(Inbound { from, multicast: false, msg }).is_err() {
                                drops.queue_full.fetch_add(1, Relaxed);
                            }
                        }
                        _ => {
                            drops.malformed.fetch_add(1, Relaxed);
                            return;
                        }
                    }
                }
                Ok(None) if buf.len() <= frame::MAX_FRAME_BYTES => break,
                _ => {
                    drops.malformed.fetch_add(1, Relaxed);
                    return;
                }
            }
        }
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

/// A random duration in `0..max` (for the delays of guideline §2.4.1 and §4.2).
pub fn random_delay(max: Duration) -> Duration {
    use ring::rand::SecureRandom as _;
    let mut b = [0u8; 4];
    if ring::rand::SystemRandom::new().fill(&mut b).is_err() || max.is_zero() {
        return Duration::ZERO;
    }
    let millis = u64::try_from(max.as_millis()).unwrap_or(u64::MAX).max(1);
    Duration::from_millis(u64::from(u32::from_be_bytes(b)) % millis)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_contain_their_addresses() {
        let c = Cidr::try_from("192.168.1.0/24".to_string()).unwrap();
        assert!(c.contains("192.168.1.77".parse().unwrap()));
        assert!(!c.contains("192.168.2.1".parse().unwrap()));
        let one = Cidr::try_from("127.0.0.5".to_string()).unwrap();
        assert!(one.contains("127.0.0.5".parse().unwrap()));
        assert!(!one.contains("127.0.0.6".parse().unwrap()));
        assert!(Cidr::try_from("0.0.0.0/0".to_string()).unwrap().contains("8.8.8.8".parse().unwrap()));
        assert!(Cidr::try_from("10.0.0.0/33".to_string()).is_err());
        assert!(Cidr::try_from("home".to_string()).is_err());
    }

    #[test]
    fn flood_from_one_source_is_cut_and_others_still_pass() {
        let mut f = Filter::new(&NetConfig { max_frames_per_second: 3, ..NetConfig::default() });
        let t = Instant::now();
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        for _ in 0..3 {
            assert_eq!(f.admit(a, t), Ok(()));
        }
        assert_eq!(f.admit(a, t), Err(true));
        assert_eq!(f.admit(b, t), Ok(()));
        assert_eq!(f.admit(a, t + Duration::from_secs(1)), Ok(()));
    }

    #[test]
    fn allowlist_turns_strangers_away() {
        let allow = vec![Cidr::try_from("10.0.0.0/8".to_string()).unwrap()];
        let mut f = Filter::new(&NetConfig { allow, ..NetConfig::default() });
        assert_eq!(f.admit("10.1.2.3".parse().unwrap(), Instant::now()), Ok(()));
        assert_eq!(f.admit("192.168.0.1".parse().unwrap(), Instant::now()), Err(false));
    }
}
