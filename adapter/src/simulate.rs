//! `musubi-adapter simulate`: simulated ECHONET Lite nodes on real UDP
//! sockets, each on its own address, answering as [`crate::sim`] says,
//! announcing their instance lists after a random delay (guideline §4.2),
//! answering multicast requests after a random delay (§2.4.1), and
//! announcing status changes by INF.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::defs;
use crate::net::{self, NetConfig};
use crate::sim::SimNode;

/// A simulated home.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HomeConfig {
    /// The nodes, each on its own address.
    pub nodes: Vec<NodeConfig>,
    /// Seconds between two steps of the devices' dynamics (0: no dynamics).
    #[serde(default = "default_tick")]
    pub tick_secs: u64,
    /// Most milliseconds a node waits before answering a multicast request.
    #[serde(default = "default_delay")]
    pub max_answer_delay_ms: u64,
    /// Most milliseconds a node waits before announcing itself at start.
    #[serde(default = "default_delay")]
    pub max_announce_delay_ms: u64,
    /// The port (3610).
    #[serde(default = "default_port")]
    pub port: u16,
    /// The multicast group (224.0.23.0).
    #[serde(default = "default_group")]
    pub multicast_group: Ipv4Addr,
    /// Also accept requests over TCP on the same port (§2.11).
    #[serde(default)]
    pub tcp: bool,
}

fn default_tick() -> u64 {
    10
}
fn default_delay() -> u64 {
    500
}
fn default_port() -> u16 {
    net::PORT
}
fn default_group() -> Ipv4Addr {
    net::MULTICAST
}

/// One simulated node.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    /// Its address (a loopback address on one machine).
    pub address: Ipv4Addr,
    /// Device classes, by Web API name (`homeAirConditioner`) or code (`0x0130`).
    pub devices: Vec<String>,
}

/// A class named by Web API name or `0xGGCC`.
pub fn class_code(name: &str) -> Option<u16> {
    if let Some(c) = defs::CLASSES.iter().find(|c| c.name == name) {
        return Some(c.code);
    }
    let hex = name.strip_prefix("0x").or_else(|| name.strip_prefix("0X"))?;
    u16::from_str_radix(hex, 16).ok().filter(|c| defs::class(*c).is_some())
}

/// A running simulated home.
pub struct Home {
    /// The nodes' state, shared with their tasks (tests look inside).
    pub nodes: Vec<(Ipv4Addr, Arc<Mutex<SimNode>>)>,
    /// Requests that arrived over TCP, all nodes together.
    pub tcp_requests: Arc<std::sync::atomic::AtomicU64>,
    stop: watch::Sender<bool>,
}

impl Home {
    /// Stops every node.
    pub fn stop(&self) {
        let _ = self.stop.send(true);
    }

    /// The node at `address`.
    pub fn node(&self, address: Ipv4Addr) -> Option<Arc<Mutex<SimNode>>> {
        self.nodes.iter().find(|(a, _)| *a == address).map(|(_, n)| n.clone())
    }
}

impl Drop for Home {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Why a home cannot start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SimError {
    /// A device class is unknown.
    #[error("node {node}: {class:?} is not a simulated device class; use one of: {known}")]
    UnknownClass {
        /// The node.
        node: Ipv4Addr,
        /// What was given.
        class: String,
        /// What is known.
        known: String,
    },
    /// A node cannot bind.
    #[error("node {node}: cannot bind UDP {node}:{port}: {error}")]
    Bind {
        /// The node.
        node: Ipv4Addr,
        /// The port.
        port: u16,
        /// What the system said.
        error: std::io::Error,
    },
}

/// Starts every node of `conf`.
pub async fn start(conf: &HomeConfig) -> Result<Home, SimError> {
    let (stop, stop_rx) = watch::channel(false);
    let tcp_requests = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut nodes = Vec::new();
    for n in &conf.nodes {
        let mut classes = Vec::new();
        for d in &n.devices {
            classes.push(class_code(d).ok_or_else(|| SimError::UnknownClass {
                node: n.address,
                class: d.clone(),
                known: defs::CLASSES.iter().map(|c| c.name).collect::<Vec<_>>().join(", "),
            })?);
        }
        let node = Arc::new(Mutex::new(SimNode::new(&classes, n.address.octets())));
        let net_conf = NetConfig {
            bind: n.address,
            port: conf.port,
            multicast: true,
            multicast_group: conf.multicast_group,
            allow: Vec::new(),
            max_frames_per_second: 200,
            tcp: false,
        };
        let (sockets, inbound) =
            net::bind(&net_conf, 256).map_err(|error| SimError::Bind { node: n.address, port: conf.port, error })?;
        if conf.tcp {
            let listener = tokio::net::TcpListener::bind((n.address, conf.port))
                .await
                .map_err(|error| SimError::Bind { node: n.address, port: conf.port, error })?;
            tokio::spawn(serve_tcp(listener, node.clone(), tcp_requests.clone(), stop_rx.clone()));
        }
        tokio::spawn(run_node(node.clone(), sockets, inbound, conf.clone(), stop_rx.clone()));
        nodes.push((n.address, node));
    }
    Ok(Home { nodes, tcp_requests, stop })
}

/// Answers requests that arrive over TCP on the same connection.
async fn serve_tcp(
    listener: tokio::net::TcpListener,
    node: Arc<Mutex<SimNode>>,
    count: Arc<std::sync::atomic::AtomicU64>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let (stream, from) = tokio::select! {
            _ = stop.changed() => return,
            got = listener.accept() => match got { Ok(s) => s, Err(_) => continue },
        };
        let (node, count, mut stop) = (node.clone(), count.clone(), stop.clone());
        tokio::spawn(async move {
            use tokio::io::AsyncWriteExt as _;
            let (mut read, mut write) = stream.into_split();
            let (tx, mut rx) = tokio::sync::mpsc::channel(64);
            let reader = tokio::spawn(async move {
                net::read_frames(&mut read, from, &tx, &net::Drops::default()).await;
            });
            loop {
                let inb = tokio::select! {
                    _ = stop.changed() => break,
                    got = rx.recv() => match got { Some(i) => i, None => break },
                };
                count.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let answers = node.lock().map(|mut n| n.handle(&inb.msg)).unwrap_or_default();
                for a in answers {
                    let bytes = crate::frame::encode(&crate::frame::Frame::Format1(a));
                    if write.write_all(&bytes).await.is_err() {
                        reader.abort();
                        return;
                    }
                }
            }
            reader.abort();
        });
    }
}

async fn run_node(
    node: Arc<Mutex<SimNode>>,
    sockets: net::Sockets,
    mut inbound: tokio::sync::mpsc::Receiver<net::Inbound>,
    conf: HomeConfig,
    mut stop: watch::Receiver<bool>,
) {
    let sockets = Arc::new(sockets);
    // §4.2: announce the instance list on joining, after a random delay.
    let announce = {
        let sockets = sockets.clone();
        let node = node.clone();
        let delay = net::random_delay(Duration::from_millis(conf.max_announce_delay_ms));
        async move {
            tokio::time::sleep(delay).await;
            let msg = node.lock().ok().and_then(|mut n| n.instance_announcement());
            if let Some(msg) = msg {
                let _ = sockets.send(sockets.group, &msg).await;
            }
        }
    };
    tokio::spawn(announce);
    let tick = Duration::from_secs(conf.tick_secs.max(1));
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + tick, tick);
    loop {
        tokio::select! {
            _ = stop.changed() => {
                sockets.close().await;
                return;
            }
            _ = ticker.tick(), if conf.tick_secs > 0 => {
                let due = node.lock().map(|mut n| { n.tick(u32::try_from(conf.tick_secs).unwrap_or(u32::MAX)); n.announcements() }).unwrap_or_default();
                for msg in due {
                    let _ = sockets.send(sockets.group, &msg).await;
                }
            }
            got = inbound.recv() => {
                let Some(inb) = got else { return };
                let (answers, changes) = match node.lock() {
                    Ok(mut n) => { let a = n.handle(&inb.msg); (a, n.announcements()) }
                    Err(_) => return,
                };
                if answers.is_empty() && changes.is_empty() { continue; }
                let sockets = sockets.clone();
                let delay = if inb.multicast { net::random_delay(Duration::from_millis(conf.max_answer_delay_ms)) } else { Duration::ZERO };
                let to: SocketAddr = inb.from;
                tokio::spawn(async move {
                    if !delay.is_zero() { tokio::time::sleep(delay).await; }
                    for a in answers { let _ = sockets.send(to, &a).await; }
                    for c in changes { let _ = sockets.send(sockets.group, &c).await; }
                });
            }
        }
    }
}
