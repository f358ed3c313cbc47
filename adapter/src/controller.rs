//! The adapter's side of ECHONET Lite: requests to devices, matched to
//! their answers by TID and source, paced per device by [`crate::pacing`].
//!
//! On top of single requests it keeps what each device has shown about
//! itself: the largest number of properties it answers in one frame (after a
//! partial answer, requests are split, guideline §2.3) and whether it can do
//! SetGet (a 0x5E with empty sections means no, §2.6; then SetC + Get).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::frame::{Eoj, Esv, Message, Property};
use crate::net::{Inbound, Sockets};
use crate::pacing::{Lost, Next, Pacer, PacingConfig};

/// The adapter's controller object (class 0x05FF, instance 1).
pub const CONTROLLER: Eoj = Eoj([0x05, 0xFF, 0x01]);

/// Most nodes whose pacing state is kept; idle ones are forgotten first.
const MAX_NODES: usize = 4096;

/// Why a request got no usable answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RequestError {
    /// No answer after the retries.
    #[error("{to} did not answer (after {tries} tries); check that the device is on and reachable")]
    Timeout {
        /// The device's address.
        to: IpAddr,
        /// Frames sent.
        tries: u32,
    },
    /// The socket failed.
    #[error("cannot send to {to}: {error}")]
    Send {
        /// The device's address.
        to: IpAddr,
        /// What the system said.
        error: String,
    },
    /// The answer does not fit the request.
    #[error("{to} answered {esv:?}, which does not answer {request:?}")]
    Unexpected {
        /// The device's address.
        to: IpAddr,
        /// What was asked.
        request: Esv,
        /// What came back.
        esv: Esv,
    },
}

/// Whether a node is reached by TCP (§2.11).
#[derive(Debug)]
enum Tcp {
    /// Not tried yet.
    Untried,
    /// Connected: frames go here.
    Up(tokio::net::tcp::OwnedWriteHalf),
    /// Failed: UDP until then.
    Down(Instant),
}

/// How long a node that refused TCP is reached by UDP only.
const TCP_RETRY: Duration = Duration::from_secs(600);
const TCP_CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

#[derive(Debug)]
struct Node {
    tcp: Tcp,
    pacer: Pacer,
    /// Most properties the node answered in one frame, once it answered fewer than asked.
    max_opc: Option<usize>,
    /// The node answered SetGet with empty sections: it cannot do SetGet.
    no_set_get: bool,
    last_used: Instant,
}

type Pending = HashMap<(IpAddr, u16), oneshot::Sender<Message>>;
type Collectors = HashMap<u16, mpsc::Sender<(IpAddr, Message)>>;

/// Sends requests and hands out their answers.
#[derive(Debug)]
pub struct Controller {
    sockets: Arc<Sockets>,
    tcp: bool,
    pacing: PacingConfig,
    port: u16,
    tid: AtomicU16,
    pending: Mutex<Pending>,
    collectors: Mutex<Collectors>,
    nodes: Mutex<HashMap<IpAddr, Arc<tokio::sync::Mutex<Node>>>>,
}

/// What a set did to each property.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetOutcome {
    /// Properties the device refused.
    pub refused: Vec<u8>,
    /// The values read back after the set (PDC 0 where the device would not say).
    pub read_back: Vec<Property>,
}

impl Controller {
    /// A controller on `sockets`, sending to devices' `port`; with `tcp`,
    /// requests go by TCP where a device accepts it and by UDP otherwise.
    pub fn new(sockets: Sockets, pacing: PacingConfig, port: u16, tcp: bool) -> Arc<Self> {
        Arc::new(Self {
            sockets: Arc::new(sockets),
            tcp,
            pacing,
            port,
            tid: AtomicU16::new(1),
            pending: Mutex::new(HashMap::new()),
            collectors: Mutex::new(HashMap::new()),
            nodes: Mutex::new(HashMap::new()),
        })
    }

    /// The sockets.
    pub fn sockets(&self) -> &Sockets {
        &self.sockets
    }

    fn next_tid(&self) -> u16 {
        loop {
            let t = self.tid.fetch_add(1, Ordering::Relaxed);
            if t != 0 {
                return t;
            }
        }
    }

    /// Takes an inbound frame: answers to our requests are consumed (`None`);
    /// anything else (requests, notifications, answers nobody waits for) is
    /// returned for the caller to handle or drop.
    pub fn dispatch(&self, inbound: Inbound) -> Option<Inbound> {
        let esv = inbound.msg.esv;
        if esv.is_request() || matches!(esv, Esv::Inf | Esv::Infc) {
            return Some(inbound);
        }
        let ip = inbound.from.ip();
        let tid = inbound.msg.tid;
        let waiter = self.pending.lock().ok().and_then(|mut p| p.remove(&(ip, tid)));
        if let Some(w) = waiter {
            let _ = w.send(inbound.msg);
            return None;
        }
        let collector = self.collectors.lock().ok().and_then(|c| c.get(&tid).cloned());
        if let Some(c) = collector {
            let _ = c.try_send((ip, inbound.msg));
            return None;
        }
        Some(inbound)
    }

    fn node(&self, ip: IpAddr) -> Arc<tokio::sync::Mutex<Node>> {
        let mut nodes = self.nodes.lock().unwrap_or_else(|p| p.into_inner());
        if nodes.len() >= MAX_NODES && !nodes.contains_key(&ip) {
            // Forget nodes nobody is talking to (their pacing history is the
            // only thing lost, and it is older than any budget window).
            nodes.retain(|_, n| Arc::strong_count(n) > 1);
        }
        nodes
            .entry(ip)
            .or_insert_with(|| {
                Arc::new(tokio::sync::Mutex::new(Node {
                    tcp: Tcp::Untried,
                    pacer: Pacer::new(self.pacing),
                    max_opc: None,
                    no_set_get: false,
                    last_used: Instant::now(),
                }))
            })
            .clone()
    }

    /// One request to `deoj` at `to`, paced, retried, and answered.
    pub async fn request(
        &self,
        to: IpAddr,
        deoj: Eoj,
        esv: Esv,
        props: Vec<Property>,
        get_props: Vec<Property>,
    ) -> Result<Message, RequestError> {
        let node = self.node(to);
        let mut node = node.lock().await;
        self.request_locked(&mut node, to, deoj, esv, props, get_props).await
    }

    async fn request_locked(
        &self,
        node: &mut Node,
        to: IpAddr,
        deoj: Eoj,
        esv: Esv,
        props: Vec<Property>,
        get_props: Vec<Property>,
    ) -> Result<Message, RequestError> {
        node.last_used = Instant::now();
        let tid = self.next_tid();
        let msg = Message { tid, seoj: CONTROLLER, deoj, esv, props, get_props };
        let dest = SocketAddr::new(to, self.port);
        let mut tries = 0u32;
        let mut resend = false;
        loop {
            while let Next::Wait(t) = node.pacer.next(std::time::Instant::now()) {
                tokio::time::sleep_until(Instant::from_std(t)).await;
            }
            let (tx, rx) = oneshot::channel();
            if let Ok(mut p) = self.pending.lock() {
                p.insert((to, tid), tx);
            }
            tries += 1;
            if let Err(e) = self.send(node, dest, &msg).await {
                self.forget(to, tid);
                return Err(RequestError::Send { to, error: e.to_string() });
            }
            node.pacer.sent(std::time::Instant::now(), tid, resend);
            if esv == Esv::SetI {
                // SetI is answered only when refused; a short wait catches a SetI_SNA.
                let answer = tokio::time::timeout(self.pacing.response_timeout, rx).await;
                self.forget(to, tid);
                node.pacer.answered(tid);
                return Ok(answer.ok().and_then(Result::ok).unwrap_or(Message {
                    tid,
                    seoj: deoj,
                    deoj: CONTROLLER,
                    esv: Esv::SetRes,
                    props: Vec::new(),
                    get_props: Vec::new(),
                }));
            }
            match tokio::time::timeout(self.pacing.response_timeout, rx).await {
                Ok(Ok(answer)) => {
                    if answer.esv == Esv::GetSna && node.pacer.refused(tid) {
                        resend = true;
                        continue;
                    }
                    node.pacer.answered(tid);
                    return Ok(answer);
                }
                _ => {
                    self.forget(to, tid);
                    match node.pacer.lost(std::time::Instant::now()) {
                        Lost::Resend(_) => resend = true,
                        Lost::GiveUp => return Err(RequestError::Timeout { to, tries }),
                    }
                }
            }
        }
    }

    /// Sends by TCP where the node takes it (connecting on first use),
    /// by UDP otherwise (§2.11: fall back to UDP when TCP fails).
    async fn send(&self, node: &mut Node, dest: SocketAddr, msg: &Message) -> std::io::Result<()> {
        use tokio::io::AsyncWriteExt as _;
        if self.tcp {
            let now = Instant::now();
            if matches!(node.tcp, Tcp::Untried) || matches!(node.tcp, Tcp::Down(t) if now >= t) {
                node.tcp = match tokio::time::timeout(TCP_CONNECT_TIMEOUT, tokio::net::TcpStream::connect(dest)).await {
                    Ok(Ok(stream)) => {
                        let (read, write) = stream.into_split();
                        let sockets = self.sockets.clone();
                        tokio::spawn(async move { sockets.read_stream(read, dest).await });
                        Tcp::Up(write)
                    }
                    _ => {
                        tracing::debug!(%dest, "no ECHONET Lite over TCP; using UDP");
                        Tcp::Down(now + TCP_RETRY)
                    }
                };
            }
            if let Tcp::Up(w) = &mut node.tcp {
                let bytes = crate::frame::encode(&crate::frame::Frame::Format1(msg.clone()));
                if w.write_all(&bytes).await.is_ok() {
                    return Ok(());
                }
                node.tcp = Tcp::Down(now + TCP_RETRY);
            }
        }
        self.sockets.send(dest, msg).await
    }

    fn forget(&self, to: IpAddr, tid: u16) {
        if let Ok(mut p) = self.pending.lock() {
            p.remove(&(to, tid));
        }
    }

    /// Reads `epcs` of `eoj` at `to`: in as many frames as the device needs
    /// (§2.3). A property the device does not give has empty data.
    pub async fn get(&self, to: IpAddr, eoj: Eoj, epcs: &[u8]) -> Result<Vec<Property>, RequestError> {
        let node = self.node(to);
        let mut node = node.lock().await;
        let mut out = Vec::with_capacity(epcs.len());
        let mut rest: std::collections::VecDeque<u8> = epcs.iter().copied().collect();
        while !rest.is_empty() {
            let n = node.max_opc.unwrap_or(rest.len()).clamp(1, rest.len());
            let chunk: Vec<u8> = rest.drain(..n).collect();
            let props = chunk.iter().map(|&epc| Property { epc, edt: Vec::new() }).collect();
            let answer = self.request_locked(&mut node, to, eoj, Esv::Get, props, Vec::new()).await?;
            if !matches!(answer.esv, Esv::GetRes | Esv::GetSna) {
                return Err(RequestError::Unexpected { to, request: Esv::Get, esv: answer.esv });
            }
            let answered: Vec<Property> = answer.props.into_iter().filter(|p| chunk.contains(&p.epc)).collect();
            if answered.is_empty() {
                // Nothing usable: each gets its empty answer.
                out.extend(chunk.iter().map(|&epc| Property { epc, edt: Vec::new() }));
                continue;
            }
            if answered.len() < chunk.len() {
                // A partial answer: remember how many the device takes and
                // ask again for the rest.
                let got = answered.len();
                node.max_opc = Some(node.max_opc.map_or(got, |m| m.min(got)));
                for epc in chunk.iter().rev().filter(|e| !answered.iter().any(|p| p.epc == **e)) {
                    rest.push_front(*epc);
                }
            }
            out.extend(answered);
        }
        Ok(out)
    }

    /// Writes `props` to `eoj` at `to` and reads them back (§2.1). SetGet
    /// where the device can, SetC then Get where it cannot (§2.6).
    pub async fn set(&self, to: IpAddr, eoj: Eoj, props: Vec<Property>) -> Result<SetOutcome, RequestError> {
        let reads: Vec<u8> = props.iter().map(|p| p.epc).filter(|e| *e != 0x93).collect();
        let node_arc = self.node(to);
        let mut node = node_arc.lock().await;
        if !node.no_set_get {
            let get = reads.iter().map(|&epc| Property { epc, edt: Vec::new() }).collect();
            let answer = self.request_locked(&mut node, to, eoj, Esv::SetGet, props.clone(), get).await?;
            match answer.esv {
                Esv::SetGetSna if answer.props.is_empty() && answer.get_props.is_empty() => {
                    node.no_set_get = true;
                }
                Esv::SetGetRes | Esv::SetGetSna => {
                    let refused = answer.props.iter().filter(|p| !p.edt.is_empty()).map(|p| p.epc).collect();
                    return Ok(SetOutcome { refused, read_back: answer.get_props });
                }
                other => return Err(RequestError::Unexpected { to, request: Esv::SetGet, esv: other }),
            }
        }
        let answer = self.request_locked(&mut node, to, eoj, Esv::SetC, props, Vec::new()).await?;
        if !matches!(answer.esv, Esv::SetRes | Esv::SetCSna) {
            return Err(RequestError::Unexpected { to, request: Esv::SetC, esv: answer.esv });
        }
        let refused = answer.props.iter().filter(|p| !p.edt.is_empty()).map(|p| p.epc).collect();
        drop(node);
        let read_back = self.get(to, eoj, &reads).await?;
        Ok(SetOutcome { refused, read_back })
    }

    /// Sends `msg` to the multicast group and collects the answers that
    /// arrive within `window`. Never used for INF_REQ (§2.4.1).
    pub async fn multicast(
        &self,
        deoj: Eoj,
        esv: Esv,
        props: Vec<Property>,
        window: Duration,
    ) -> Result<Vec<(IpAddr, Message)>, RequestError> {
        // Never multicast INF_REQ (guideline §2.4.1): every node would answer at once.
        if esv == Esv::InfReq {
            return Ok(Vec::new());
        }
        let tid = self.next_tid();
        let (tx, mut rx) = mpsc::channel(1024);
        if let Ok(mut c) = self.collectors.lock() {
            c.insert(tid, tx);
        }
        let msg = Message { tid, seoj: CONTROLLER, deoj, esv, props, get_props: Vec::new() };
        let group = self.sockets.group;
        let sent = self.sockets.send(group, &msg).await;
        let mut out = Vec::new();
        if sent.is_ok() {
            let deadline = Instant::now() + window;
            while let Ok(Some(answer)) = tokio::time::timeout_at(deadline, rx.recv()).await {
                out.push(answer);
            }
        }
        if let Ok(mut c) = self.collectors.lock() {
            c.remove(&tid);
        }
        sent.map_err(|e| RequestError::Send { to: group.ip(), error: e.to_string() })?;
        Ok(out)
    }

    /// Sends a frame that expects no answer (an INF of our own node).
    pub async fn notify(&self, to: SocketAddr, msg: &Message) -> Result<(), RequestError> {
        self.sockets.send(to, msg).await.map_err(|e| RequestError::Send { to: to.ip(), error: e.to_string() })
    }
}
