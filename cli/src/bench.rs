//! `musubi bench`: the secured exchange against a bare mutually authenticated
//! TLS proxy chain, measured in one run on one machine.
//!
//! Chain (a), Musubi: load generator → security server A's client proxy →
//! mTLS 5500 → security server B's server proxy → provider, and back; signed,
//! OCSP-checked, logged on both sides, batch time-stamped. Both servers run as
//! their own processes (the `musubi-security-server` binary with the files
//! `musubi demo` writes), so their CPU time and peak memory are their own.
//!
//! Chain (b), the baseline: load generator → nginx A (HTTP) → mTLS → nginx B →
//! the same provider, each nginx its own master with two workers, keep-alive
//! and streaming (no request or response buffering) on every hop.
//!
//! The provider echoes each request as its response, so every hop carries the
//! payload both ways. Each case runs for a fixed time (bounded by a request
//! cap) after one warm-up exchange per connection.

use std::collections::VecDeque;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::{Frame, SizeHint};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use musubi_pki::{DevCa, Usage};
use tokio::sync::watch;

use crate::demo;

/// Where the benchmark's nodes listen.
const MUSUBI_IPS: [Ipv4Addr; 3] =
    [Ipv4Addr::new(127, 0, 3, 2), Ipv4Addr::new(127, 0, 3, 3), Ipv4Addr::new(127, 0, 3, 4)];
const PKI_IP: Ipv4Addr = Ipv4Addr::new(127, 0, 3, 5);
const NGINX_IPS: [Ipv4Addr; 2] = [Ipv4Addr::new(127, 0, 4, 2), Ipv4Addr::new(127, 0, 4, 3)];

/// One payload size, carried in the SOAP body or as an attachment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Payload {
    /// Bytes of payload in each request (and, echoed, each response).
    pub bytes: usize,
    /// Sent as a SOAP attachment (multipart/related) instead of in the body.
    pub attachment: bool,
}

impl Payload {
    /// Parses `1k`, `100k`, `att:10m` (k = 1024, m = 1024²).
    pub fn parse(s: &str) -> Result<Self> {
        let (attachment, size) = match s.strip_prefix("att:") {
            Some(rest) => (true, rest),
            None => (false, s),
        };
        let lower = size.to_ascii_lowercase();
        let (digits, unit) = match lower.strip_suffix('k') {
            Some(d) => (d, 1024),
            None => match lower.strip_suffix('m') {
                Some(d) => (d, 1024 * 1024),
                None => (lower.as_str(), 1),
            },
        };
        let n: usize = digits.parse().with_context(|| format!("{s:?} is not a size such as 1k, 100k or att:10m"))?;
        let bytes = n.checked_mul(unit).filter(|b| (1..=64 * 1024 * 1024).contains(b)).with_context(|| {
            format!("{s:?}: a payload must be between 1 byte and 64 MB (the servers' body limit is 32 MB)")
        })?;
        Ok(Self { bytes, attachment })
    }

    fn label(&self) -> String {
        let size = if self.bytes >= 1024 * 1024 && self.bytes.is_multiple_of(1024 * 1024) {
            format!("{} MB", self.bytes / (1024 * 1024))
        } else if self.bytes >= 1024 && self.bytes.is_multiple_of(1024) {
            format!("{} KB", self.bytes / 1024)
        } else {
            format!("{} B", self.bytes)
        };
        if self.attachment { format!("{size} attachment") } else { size }
    }
}

/// What to measure and with what.
#[derive(Debug, Clone)]
pub struct Options {
    /// Folder for keys, configuration, logs and nginx's files.
    pub dir: PathBuf,
    /// Payloads, each run at every concurrency.
    pub payloads: Vec<Payload>,
    /// Concurrent connections of the load generator.
    pub concurrency: Vec<usize>,
    /// How long each case sends requests.
    pub duration: Duration,
    /// Most requests of one case (whatever the duration).
    pub max_requests: usize,
    /// The `musubi-security-server` binary.
    pub server_bin: PathBuf,
    /// The nginx binary.
    pub nginx: PathBuf,
}

/// One chain's measurements of one case.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Measured {
    /// Exchanges answered with HTTP 200 and the whole payload.
    pub ok: usize,
    /// Exchanges that failed, and the first failure.
    pub errors: usize,
    /// The first failure's description.
    pub first_error: Option<String>,
    /// From the first request to the last answer.
    pub elapsed: Duration,
    /// Median and 99th percentile latency.
    pub p50: Duration,
    /// 99th percentile latency.
    pub p99: Duration,
    /// CPU time (user + system) of both servers of the chain.
    pub cpu: Duration,
    /// Peak resident memory of each server of the chain (nginx: master and workers), bytes.
    pub peak_rss: [u64; 2],
}

impl Measured {
    /// Exchanges per second.
    pub fn throughput(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// CPU seconds of the chain's servers per 1000 exchanges.
    pub fn cpu_per_1000(&self) -> f64 {
        self.cpu.as_secs_f64() * 1000.0 / (self.ok.max(1) as f64)
    }
}

/// One case: a payload at a concurrency, through both chains.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Case {
    /// The payload.
    pub payload: Payload,
    /// Concurrent connections.
    pub concurrency: usize,
    /// Chain (a), Musubi.
    pub musubi: Measured,
    /// Chain (b), nginx.
    pub baseline: Measured,
}

/// A whole run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Report {
    /// Every case in the order run.
    pub cases: Vec<Case>,
    /// Time from starting each security server's process to its health check answering 200.
    pub ready: [Duration; 2],
    /// nginx's version line.
    pub nginx_version: String,
    /// The machine: CPU model and count.
    pub machine: String,
}

/// A request body made of shared chunks, so that the load generator does not
/// copy a large payload for every request.
struct Chunks(VecDeque<Bytes>, u64);

impl Chunks {
    fn new(parts: Vec<Bytes>) -> Self {
        let len = parts.iter().map(|b| b.len() as u64).sum();
        Self(parts.into(), len)
    }
}

impl hyper::body::Body for Chunks {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut TaskContext<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let next = self.0.pop_front();
        if let Some(b) = &next {
            self.1 -= b.len() as u64;
        }
        Poll::Ready(next.map(|b| Ok(Frame::data(b))))
    }

    fn is_end_stream(&self) -> bool {
        self.0.is_empty()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.1)
    }
}

/// What the load generator sends: a content type and the chunks of one request.
struct RequestMaker {
    payload: Payload,
    filler: Bytes,
}

impl RequestMaker {
    fn new(payload: Payload) -> Self {
        // Printable filler, so the inline payload is valid XML text.
        let filler: Vec<u8> = (0..payload.bytes).map(|i| b'a' + (i % 26) as u8).collect();
        Self { payload, filler: Bytes::from(filler) }
    }

    /// (content type, body chunks) of the request with query id `id`.
    fn make(&self, id: &str) -> (String, Vec<Bytes>) {
        let (consumer, _, service, _) = demo::ids();
        let code = service.service_code();
        if self.payload.attachment {
            let soap = musubi_protocol::soap::build_request(
                &consumer,
                &service,
                id,
                Some("BENCH:load"),
                &format!("    <{code} xmlns=\"http://example.org/home\"><attachment>cid:payload</attachment></{code}>"),
            );
            let boundary = "musubi-bench-boundary-7f3a";
            let head = format!(
                "--{boundary}\r\nContent-Type: text/xml; charset=UTF-8\r\n\r\n{soap}\r\n--{boundary}\r\n\
                 Content-Type: application/octet-stream\r\nContent-ID: <payload>\r\n\r\n"
            );
            let tail = format!("\r\n--{boundary}--\r\n");
            (
                format!("multipart/related; type=\"text/xml\"; charset=UTF-8; boundary={boundary}"),
                vec![Bytes::from(head), self.filler.clone(), Bytes::from(tail)],
            )
        } else {
            let open = format!("    <{code} xmlns=\"http://example.org/home\"><data>");
            let close = format!("</data></{code}>");
            // Built around a marker so the filler is shared, not copied.
            let soap = musubi_protocol::soap::build_request(
                &consumer,
                &service,
                id,
                Some("BENCH:load"),
                &format!("{open}\u{1}{close}"),
            );
            let (before, after) = soap.split_once('\u{1}').unwrap_or((&soap, ""));
            (
                "text/xml; charset=UTF-8".to_string(),
                vec![Bytes::from(before.to_owned()), self.filler.clone(), Bytes::from(after.to_owned())],
            )
        }
    }
}

/// The provider's answer: the request with its body element renamed to
/// `…Response` (X-Road requires it), so the payload travels back as it came.
fn echo_answer(request: &[u8]) -> Bytes {
    let (_, _, service, _) = demo::ids();
    let code = service.service_code();
    let open = format!("<{code} ");
    let close = format!("</{code}>");
    let find = |needle: &str| memchr::memmem::find(request, needle.as_bytes());
    let (Some(o), Some(c)) = (find(&open), find(&close)) else {
        return Bytes::copy_from_slice(request);
    };
    let (o, c) = (o + open.len() - 1, c + close.len() - 1);
    let mut out = Vec::with_capacity(request.len() + 16);
    out.extend_from_slice(&request[..o]);
    out.extend_from_slice(b"Response");
    out.extend_from_slice(&request[o..c]);
    out.extend_from_slice(b"Response");
    out.extend_from_slice(&request[c..]);
    Bytes::from(out)
}

/// The provider both chains call: echoes the request as the response.
async fn serve_echo(listener: tokio::net::TcpListener, mut stop: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            accepted = listener.accept() => {
                let Ok((tcp, _)) = accepted else { continue };
                let _ = tcp.set_nodelay(true);
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(|req: Request<hyper::body::Incoming>| async move {
                        let ct = req.headers().get(hyper::header::CONTENT_TYPE).cloned();
                        let body = req.into_body().collect().await.map(|c| c.to_bytes()).unwrap_or_default();
                        let mut r = Response::new(Full::new(echo_answer(&body)));
                        if let Some(ct) = ct {
                            r.headers_mut().insert(hyper::header::CONTENT_TYPE, ct);
                        }
                        Ok::<_, std::convert::Infallible>(r)
                    });
                    let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(tcp), svc).await;
                });
            }
        }
    }
}

/// A server process of a chain, stopped (SIGTERM, then SIGKILL) when dropped.
struct Proc {
    name: String,
    child: tokio::process::Child,
    pid: u32,
}

impl Proc {
    fn spawn(name: &str, mut cmd: tokio::process::Command) -> Result<Self> {
        cmd.kill_on_drop(true).stdin(std::process::Stdio::null());
        let child = cmd.spawn().with_context(|| format!("cannot start {name}"))?;
        let pid = child.id().with_context(|| format!("{name} exited at once"))?;
        Ok(Self { name: name.into(), child, pid })
    }

    /// The process and its children (nginx's workers).
    fn pids(&self) -> Vec<u32> {
        let mut pids = vec![self.pid];
        if let Ok(entries) = std::fs::read_dir("/proc") {
            for e in entries.flatten() {
                let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else { continue };
                if proc_stat(pid).is_some_and(|s| s.ppid == self.pid) {
                    pids.push(pid);
                }
            }
        }
        pids
    }

    /// Fails when the process has exited.
    fn check_running(&mut self) -> Result<()> {
        match self.child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => bail!("{} exited: {status}", self.name),
            Err(e) => bail!("{}: {e}", self.name),
        }
    }

    /// SIGTERM (a graceful stop: in-flight exchanges finish, the log closes), then wait.
    async fn stop(mut self) {
        let _ = std::process::Command::new("kill").arg("-TERM").arg(self.pid.to_string()).status();
        if tokio::time::timeout(Duration::from_secs(20), self.child.wait()).await.is_err() {
            let _ = self.child.start_kill();
            let _ = self.child.wait().await;
        }
    }
}

struct ProcStat {
    ppid: u32,
    /// utime + stime, clock ticks.
    ticks: u64,
}

fn proc_stat(pid: u32) -> Option<ProcStat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may hold spaces: fields follow the last ')'.
    let rest = &text[text.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state(0) ppid(1) … utime(11) stime(12).
    Some(ProcStat {
        ppid: fields.get(1)?.parse().ok()?,
        ticks: fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?,
    })
}

/// Peak resident memory since the last reset, bytes.
fn peak_rss(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("VmHWM:").and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            })
        })
        .map_or(0, |kb| kb * 1024)
}

/// Resets the peak resident memory to the current one (Linux ≥ 4.0).
fn reset_peak_rss(pid: u32) {
    let _ = std::fs::write(format!("/proc/{pid}/clear_refs"), "5");
}

fn clock_ticks_per_sec() -> u64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100)
}

/// A chain under test: where the load generator sends, and its two servers.
struct Chain {
    entry: SocketAddr,
    servers: [Proc; 2],
}

impl Chain {
    fn ticks(&self) -> u64 {
        self.servers.iter().flat_map(Proc::pids).filter_map(proc_stat).map(|s| s.ticks).sum()
    }

    fn reset_peaks(&self) {
        self.servers.iter().flat_map(Proc::pids).for_each(reset_peak_rss);
    }

    fn peaks(&self) -> [u64; 2] {
        [0, 1].map(|i| self.servers[i].pids().into_iter().map(peak_rss).sum())
    }

    fn check_running(&mut self) -> Result<()> {
        for s in &mut self.servers {
            s.check_running()?;
        }
        Ok(())
    }

    async fn stop(self) {
        for s in self.servers {
            s.stop().await;
        }
    }
}

/// One keep-alive connection of the load generator.
async fn connect(addr: SocketAddr) -> Result<hyper::client::conn::http1::SendRequest<Chunks>> {
    let tcp = tokio::net::TcpStream::connect(addr).await.with_context(|| format!("cannot connect to {addr}"))?;
    tcp.set_nodelay(true)?;
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

/// Sends one request; Ok(latency) when the answer is 200 with at least the payload.
async fn exchange(
    sender: &mut hyper::client::conn::http1::SendRequest<Chunks>,
    maker: &RequestMaker,
    id: &str,
) -> Result<Duration, String> {
    let (ct, chunks) = maker.make(id);
    let req = Request::post("/")
        .header(hyper::header::CONTENT_TYPE, ct)
        .header(hyper::header::HOST, "bench")
        .body(Chunks::new(chunks))
        .map_err(|e| e.to_string())?;
    let started = Instant::now();
    sender.ready().await.map_err(|e| format!("connection lost: {e}"))?;
    let resp = sender.send_request(req).await.map_err(|e| format!("request failed: {e}"))?;
    let status = resp.status();
    let body = resp.into_body().collect().await.map_err(|e| format!("reading the answer: {e}"))?.to_bytes();
    let took = started.elapsed();
    if status != 200 {
        let text = String::from_utf8_lossy(&body[..body.len().min(600)]).into_owned();
        return Err(format!("HTTP {status}: {text}"));
    }
    if body.len() < maker.payload.bytes {
        return Err(format!("answer of {} bytes is shorter than the {}-byte payload", body.len(), maker.payload.bytes));
    }
    Ok(took)
}

/// Runs one case against one chain.
async fn run_case(
    chain: &mut Chain,
    name: &str,
    payload: Payload,
    concurrency: usize,
    opts: &Options,
) -> Result<Measured> {
    let maker = Arc::new(RequestMaker::new(payload));
    // Connections, each warmed up by one exchange (peer connections, OCSP,
    // pools), all at once: warmed one after another, the first would sit idle
    // long enough with large payloads for the servers to close them
    // (hyper's 30 s header-read timeout on an idle keep-alive connection).
    let mut warming = tokio::task::JoinSet::new();
    for w in 0..concurrency {
        let (maker, name, entry) = (maker.clone(), name.to_owned(), chain.entry);
        warming.spawn(async move {
            let mut s = connect(entry).await?;
            exchange(&mut s, &maker, &format!("{name}-warm-{w}"))
                .await
                .map_err(|e| anyhow::anyhow!("{name}: the warm-up exchange failed: {e}"))?;
            anyhow::Ok(s)
        });
    }
    let mut senders = Vec::new();
    while let Some(s) = warming.join_next().await {
        senders.push(s.context("a warm-up task failed")??);
    }
    chain.check_running()?;
    chain.reset_peaks();
    let ticks_before = chain.ticks();
    let issued = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let deadline = started + opts.duration;
    let mut tasks = tokio::task::JoinSet::new();
    for (w, mut sender) in senders.into_iter().enumerate() {
        let (maker, issued, max, name, entry) =
            (maker.clone(), issued.clone(), opts.max_requests, name.to_owned(), chain.entry);
        tasks.spawn(async move {
            let mut latencies = Vec::new();
            let mut errors = Vec::new();
            loop {
                let n = issued.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if n >= max || Instant::now() >= deadline {
                    break;
                }
                match exchange(&mut sender, &maker, &format!("{name}-{w}-{n}")).await {
                    Ok(t) => latencies.push(t),
                    Err(e) => {
                        errors.push(e);
                        // A failed exchange may have closed the connection: take a new one.
                        match connect(entry).await {
                            Ok(s) => sender = s,
                            Err(_) => break,
                        }
                    }
                }
            }
            (latencies, errors, Instant::now())
        });
    }
    let mut latencies = Vec::new();
    let mut errors = Vec::new();
    let mut last = started;
    while let Some(r) = tasks.join_next().await {
        let (l, e, end) = r.context("a load task failed")?;
        latencies.extend(l);
        errors.extend(e);
        last = last.max(end);
    }
    let ticks = chain.ticks().saturating_sub(ticks_before);
    let peak_rss = chain.peaks();
    chain.check_running()?;
    latencies.sort();
    let pct = |p: usize| {
        if latencies.is_empty() {
            Duration::ZERO
        } else {
            latencies[((latencies.len() * p).div_ceil(100)).clamp(1, latencies.len()) - 1]
        }
    };
    let tick = clock_ticks_per_sec();
    Ok(Measured {
        ok: latencies.len(),
        errors: errors.len(),
        first_error: errors.into_iter().next(),
        elapsed: last - started,
        p50: pct(50),
        p99: pct(99),
        cpu: Duration::from_secs_f64(ticks as f64 / tick as f64),
        peak_rss,
    })
}

/// Starts a security server process and waits for its health check to answer 200.
async fn start_server(bin: &Path, conf: &Path, health: SocketAddr, name: &str) -> Result<(Proc, Duration)> {
    let mut cmd = tokio::process::Command::new(bin);
    cmd.arg("--config").arg(conf).env("RUST_LOG", "warn");
    let started = Instant::now();
    let mut proc = Proc::spawn(name, cmd)?;
    // Readiness: the health check (X-Road's 5588) answers 200 once the server
    // serves: OCSP good, configuration valid, database open.
    loop {
        proc.check_running()?;
        if let Ok(200) = health_status(health).await {
            return Ok((proc, started.elapsed()));
        }
        if started.elapsed() > Duration::from_secs(60) {
            bail!("{name} did not become ready within 60 s");
        }
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

async fn health_status(addr: SocketAddr) -> Result<u16> {
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let req = Request::get("/").header(hyper::header::HOST, "health").body(Full::new(Bytes::new()))?;
    Ok(sender.send_request(req).await?.status().as_u16())
}

/// The Musubi chain: a demo network's keys and files, its servers as processes.
async fn start_musubi(opts: &Options) -> Result<(Chain, demo::Services, [Duration; 2])> {
    let dir = opts.dir.join("musubi");
    let demo_opts =
        demo::Options { ips: MUSUBI_IPS, pki_ip: PKI_IP, start_provider: false, ..demo::Options::default() };
    let net = demo::Network::start(&dir, demo_opts).await.context("setting up the Musubi chain")?;
    // The demo started both servers in this process to check its set-up; from
    // here on each runs as its own process from the files it wrote.
    let (consumer, provider, services) = net.into_parts();
    consumer.shutdown().await;
    provider.shutdown().await;
    let mut procs = Vec::new();
    let mut ready = Vec::new();
    for (name, ip) in [("consumer", MUSUBI_IPS[0]), ("provider", MUSUBI_IPS[1])] {
        let conf = dir.join(name).join("security-server.toml");
        let (p, t) = start_server(
            &opts.server_bin,
            &conf,
            SocketAddr::new(ip.into(), 5588),
            &format!("{name}'s security server"),
        )
        .await?;
        procs.push(p);
        ready.push(t);
    }
    let mut procs = procs.into_iter();
    let (Some(a), Some(b)) = (procs.next(), procs.next()) else { unreachable!("two servers started") };
    Ok((Chain { entry: SocketAddr::new(MUSUBI_IPS[0].into(), 8080), servers: [a, b] }, services, [ready[0], ready[1]]))
}

fn nginx_common(prefix: &Path) -> String {
    let p = prefix.display();
    format!(
        "daemon off;\nmaster_process on;\nworker_processes 2;\nuser root;\npid {p}/nginx.pid;\nerror_log {p}/error.log warn;\n\
         events {{ worker_connections 4096; }}\n"
    )
}

fn nginx_http_common(prefix: &Path) -> String {
    let p = prefix.display();
    format!(
        "access_log off;\nclient_max_body_size 64m;\nkeepalive_requests 1000000;\nkeepalive_timeout 300s;\n\
         client_body_temp_path {p}/body;\nproxy_temp_path {p}/proxy;\nfastcgi_temp_path {p}/fastcgi;\n\
         uwsgi_temp_path {p}/uwsgi;\nscgi_temp_path {p}/scgi;\n\
         proxy_http_version 1.1;\nproxy_set_header Connection \"\";\nproxy_request_buffering off;\nproxy_buffering off;\n"
    )
}

/// The baseline: nginx A (HTTP in, mTLS out) and nginx B (mTLS in, HTTP to the provider).
async fn start_nginx(opts: &Options) -> Result<Chain> {
    let dir = opts.dir.join("nginx");
    std::fs::create_dir_all(&dir)?;
    let ca = DevCa::new("Musubi Bench CA")?;
    let a = ca.issue("nginx-a", "Bench", Usage::Auth, &[])?;
    let b = ca.issue("nginx-b", "Bench", Usage::Auth, &["security-server.invalid"])?;
    let write = |name: &str, text: String| -> Result<PathBuf> {
        let path = dir.join(name);
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
        Ok(path)
    };
    let ca_pem = write("ca.pem", musubi_pki::pem("CERTIFICATE", ca.cert_der()))?;
    let a_pem = write("a.pem", a.cert_pem())?;
    let a_key = write("a.key", musubi_pki::pem("PRIVATE KEY", &a.key_pkcs8))?;
    let b_pem = write("b.pem", b.cert_pem())?;
    let b_key = write("b.key", musubi_pki::pem("PRIVATE KEY", &b.key_pkcs8))?;
    let [ip_a, ip_b] = NGINX_IPS;
    let provider = SocketAddr::new(MUSUBI_IPS[2].into(), 8090);
    let prefix_a = dir.join("a");
    let prefix_b = dir.join("b");
    let conf_a = format!(
        "{}http {{\n{}upstream peer {{ server {ip_b}:5500; keepalive 256; }}\n\
         server {{\n listen {ip_a}:8080;\n location / {{\n  proxy_pass https://peer;\n\
           proxy_ssl_certificate {};\n  proxy_ssl_certificate_key {};\n  proxy_ssl_trusted_certificate {};\n\
           proxy_ssl_verify on;\n  proxy_ssl_name security-server.invalid;\n  proxy_ssl_session_reuse on;\n\
           proxy_ssl_protocols TLSv1.3;\n }}\n}}\n}}\n",
        nginx_common(&prefix_a),
        nginx_http_common(&prefix_a),
        a_pem.display(),
        a_key.display(),
        ca_pem.display(),
    );
    let conf_b = format!(
        "{}http {{\n{}upstream provider {{ server {provider}; keepalive 256; }}\n\
         server {{\n listen {ip_b}:5500 ssl;\n ssl_certificate {};\n ssl_certificate_key {};\n\
           ssl_client_certificate {};\n ssl_verify_client on;\n ssl_protocols TLSv1.3;\n\
           location / {{ proxy_pass http://provider; }}\n}}\n}}\n",
        nginx_common(&prefix_b),
        nginx_http_common(&prefix_b),
        b_pem.display(),
        b_key.display(),
        ca_pem.display(),
    );
    let mut servers = Vec::new();
    for (name, prefix, conf, listen) in [
        ("nginx A", &prefix_a, conf_a, SocketAddr::new(ip_a.into(), 8080)),
        ("nginx B", &prefix_b, conf_b, SocketAddr::new(ip_b.into(), 5500)),
    ] {
        std::fs::create_dir_all(prefix)?;
        let path = prefix.join("nginx.conf");
        std::fs::write(&path, conf)?;
        let check = std::process::Command::new(&opts.nginx)
            .arg("-t")
            .arg("-q")
            .arg("-p")
            .arg(prefix)
            .arg("-c")
            .arg(&path)
            .output();
        match check {
            Ok(o) if o.status.success() => {}
            Ok(o) => bail!("nginx refused {}: {}", path.display(), String::from_utf8_lossy(&o.stderr)),
            Err(e) => bail!("cannot run {}: {e} (install nginx: apt-get install nginx)", opts.nginx.display()),
        }
        let mut cmd = tokio::process::Command::new(&opts.nginx);
        cmd.arg("-p").arg(prefix).arg("-c").arg(&path);
        let mut proc = Proc::spawn(name, cmd)?;
        // Readiness: the listening socket accepts.
        let started = Instant::now();
        while tokio::net::TcpStream::connect(listen).await.is_err() {
            proc.check_running()?;
            if started.elapsed() > Duration::from_secs(20) {
                bail!("{name} did not listen on {listen} within 20 s");
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        servers.push(proc);
    }
    let mut servers = servers.into_iter();
    let (Some(a_proc), Some(b_proc)) = (servers.next(), servers.next()) else { unreachable!("two nginx started") };
    Ok(Chain { entry: SocketAddr::new(ip_a.into(), 8080), servers: [a_proc, b_proc] })
}

fn machine() -> String {
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("model name").map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned()))
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    format!("{cores} × {model}")
}

/// Runs every case through both chains.
pub async fn run(opts: &Options) -> Result<Report> {
    std::fs::create_dir_all(&opts.dir).with_context(|| format!("cannot create {}", opts.dir.display()))?;
    let nginx_version = std::process::Command::new(&opts.nginx)
        .arg("-v")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stderr).trim().to_owned())
        .with_context(|| format!("cannot run {} (install nginx: apt-get install nginx)", opts.nginx.display()))?;
    if !opts.server_bin.is_file() {
        bail!(
            "{} is missing: build it first (cargo build --release -p musubi-security-server)",
            opts.server_bin.display()
        );
    }
    let (stop_tx, stop_rx) = watch::channel(false);
    let provider = SocketAddr::new(MUSUBI_IPS[2].into(), 8090);
    let listener = tokio::net::TcpListener::bind(provider)
        .await
        .with_context(|| format!("cannot listen on {provider} for the provider"))?;
    tokio::spawn(serve_echo(listener, stop_rx));
    let (mut musubi, services, ready) = start_musubi(opts).await?;
    let mut nginx = match start_nginx(opts).await {
        Ok(n) => n,
        Err(e) => {
            musubi.stop().await;
            services.shutdown();
            return Err(e);
        }
    };
    let mut cases = Vec::new();
    let mut outcome = Ok(());
    'cases: for &payload in &opts.payloads {
        for &concurrency in &opts.concurrency {
            eprintln!("bench: {} at concurrency {concurrency}", payload.label());
            let m = run_case(&mut musubi, "musubi", payload, concurrency, opts).await;
            let b = run_case(&mut nginx, "nginx", payload, concurrency, opts).await;
            match (m, b) {
                (Ok(musubi), Ok(baseline)) => cases.push(Case { payload, concurrency, musubi, baseline }),
                (Err(e), _) | (_, Err(e)) => {
                    outcome = Err(e.context(format!("{} at concurrency {concurrency}", payload.label())));
                    break 'cases;
                }
            }
        }
    }
    musubi.stop().await;
    nginx.stop().await;
    services.shutdown();
    let _ = stop_tx.send(true);
    outcome?;
    Ok(Report { cases, ready, nginx_version, machine: machine() })
}

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1000.0)
}

fn mb(bytes: u64) -> String {
    format!("{:.1}", bytes as f64 / (1024.0 * 1024.0))
}

impl Report {
    /// The results as Markdown tables, with each target and whether it is met.
    pub fn markdown(&self, command: &str) -> String {
        let mut out = String::new();
        out.push_str(&format!("Command: `{command}`\n\nMachine: {}; {}.\n\n", self.machine, self.nginx_version));
        out.push_str(
            "| payload | conc. | chain | exchanges | errors | exchanges/s | p50 ms | p99 ms | CPU s / 1000 | peak RSS A MB | peak RSS B MB |\n\
             |---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|\n",
        );
        for c in &self.cases {
            for (chain, m) in [("Musubi", &c.musubi), ("nginx", &c.baseline)] {
                out.push_str(&format!(
                    "| {} | {} | {chain} | {} | {} | {:.0} | {} | {} | {:.2} | {} | {} |\n",
                    c.payload.label(),
                    c.concurrency,
                    m.ok,
                    m.errors,
                    m.throughput(),
                    ms(m.p50),
                    ms(m.p99),
                    m.cpu_per_1000(),
                    mb(m.peak_rss[0]),
                    mb(m.peak_rss[1]),
                ));
            }
        }
        out.push_str(
            "\nRatios Musubi / nginx:\n\n| payload | conc. | throughput | p50 | p99 | CPU per exchange | peak RSS (larger server) |\n\
             |---|---:|---:|---:|---:|---:|---:|\n",
        );
        for c in &self.cases {
            let (m, b) = (&c.musubi, &c.baseline);
            let ratio = |x: f64, y: f64| if y > 0.0 { format!("{:.2}", x / y) } else { "-".into() };
            out.push_str(&format!(
                "| {} | {} | {} | {} | {} | {} | {} |\n",
                c.payload.label(),
                c.concurrency,
                ratio(m.throughput(), b.throughput()),
                ratio(m.p50.as_secs_f64(), b.p50.as_secs_f64()),
                ratio(m.p99.as_secs_f64(), b.p99.as_secs_f64()),
                ratio(m.cpu_per_1000(), b.cpu_per_1000()),
                ratio(
                    m.peak_rss.iter().copied().max().unwrap_or(0) as f64,
                    b.peak_rss.iter().copied().max().unwrap_or(0) as f64
                ),
            ));
        }
        if let Some(e) = self.cases.iter().flat_map(|c| [&c.musubi, &c.baseline]).find_map(|m| m.first_error.as_ref()) {
            out.push_str(&format!("\nFirst failed exchange: {e}\n"));
        }
        out.push_str("\nTargets:\n\n");
        for t in self.targets() {
            out.push_str(&format!("- {}: {} ({})\n", t.what, t.measured, if t.met { "met" } else { "NOT met" }));
        }
        out
    }

    /// The issue's targets, measured.
    pub fn targets(&self) -> Vec<Target> {
        let mut targets = Vec::new();
        let find = |bytes: usize, attachment: bool, conc: usize| {
            self.cases.iter().find(|c| c.payload == Payload { bytes, attachment } && c.concurrency == conc)
        };
        if let Some(c) = find(1024, false, 64) {
            let r = c.musubi.throughput() / c.baseline.throughput().max(1e-9);
            targets.push(Target {
                what: "1 KB at concurrency 64: throughput ≥ 0.5 × nginx".into(),
                measured: format!("{r:.2} ×"),
                met: r >= 0.5,
            });
        }
        let p99: Vec<f64> = self
            .cases
            .iter()
            .filter(|c| c.concurrency == 16)
            .map(|c| c.musubi.p99.as_secs_f64() / c.baseline.p99.as_secs_f64().max(1e-9))
            .collect();
        if !p99.is_empty() {
            let worst = p99.iter().copied().fold(0.0, f64::max);
            targets.push(Target {
                what: "p99 latency at concurrency 16: ≤ 2 × nginx (worst payload)".into(),
                measured: format!("{worst:.2} ×"),
                met: worst <= 2.0,
            });
        }
        let small: Vec<&Case> = self.cases.iter().filter(|c| !c.payload.attachment).collect();
        if !small.is_empty() {
            let peak = small.iter().flat_map(|c| c.musubi.peak_rss).max().unwrap_or(0);
            targets.push(Target {
                what: "peak resident memory of a security server (1 KB and 100 KB cases): ≤ 64 MB".into(),
                measured: format!("{} MB", mb(peak)),
                met: peak <= 64 * 1024 * 1024,
            });
        }
        let conc = self.cases.iter().map(|c| c.concurrency).max().unwrap_or(0);
        let big =
            self.cases.iter().filter(|c| c.payload.attachment && c.concurrency == conc).max_by_key(|c| c.payload.bytes);
        if let (Some(big), Some(base)) = (big, find(1024, false, conc)) {
            let peak = |c: &Case| c.musubi.peak_rss.iter().copied().max().unwrap_or(0);
            let r = peak(big) as f64 / peak(base).max(1) as f64;
            targets.push(Target {
                what: format!("{} at concurrency {conc}: memory ≤ 2 × the 1 KB case", big.payload.label()),
                measured: format!("{} MB vs {} MB = {r:.1} ×", mb(peak(big)), mb(peak(base))),
                met: r <= 2.0,
            });
        }
        let slowest = self.ready.iter().copied().max().unwrap_or_default();
        targets.push(Target {
            what: "a security server is ready within 1 s of start (process start → health check 200)".into(),
            measured: format!("{} ms and {} ms", ms(self.ready[0]), ms(self.ready[1])),
            met: slowest <= Duration::from_secs(1),
        });
        targets
    }
}

/// One target of the benchmark issue, measured.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Target {
    /// The target.
    pub what: String,
    /// What this run measured.
    pub measured: String,
    /// Whether it is met.
    pub met: bool,
}
