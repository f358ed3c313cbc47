//! OCSP in the security server (PR-MESSTRANSP §2.2): a fetcher keeps fresh
//! responses for this server's own certificates, cached on disk so a restart
//! needs no responder; port 5577 serves them to peers; peers' responses arrive
//! in transport messages, in signatures, or from the peer's port 5577, and are
//! cached until they are no longer fresh. Nothing here calls a CA on the
//! message path: only the fetcher talks to responders.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use musubi_pki::ocsp::{self, Status, VerifiedOcsp};
use time::OffsetDateTime;
use tokio::sync::watch;
use tracing::{info, warn};

use crate::conf::{SharedTrust, Trust};

/// Lowercase hex SHA-1 of a certificate: how X-Road names certificates on 5577.
pub(crate) fn cert_sha1(der: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, der)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// "CN=…, O=… (serial …)" for messages that name a certificate.
pub(crate) fn describe(der: &[u8]) -> String {
    match x509_parser::parse_x509_certificate(der) {
        Ok((_, c)) => format!("{} (serial {})", c.subject(), c.tbs_certificate.raw_serial_as_string()),
        Err(_) => format!("certificate {}", cert_sha1(der)),
    }
}

/// Checks `responses` for one fresh, verified, good answer about `cert_der`.
pub(crate) fn check_response(
    trust: &Trust,
    cert_der: &[u8],
    responses: &[&[u8]],
    now: OffsetDateTime,
) -> Result<VerifiedOcsp, String> {
    let (index, ca) = trust
        .issuer_of(cert_der)
        .ok_or_else(|| format!("certificate {} is not issued by an approved CA", describe(cert_der)))?;
    let approved: Vec<&[u8]> = trust.ocsp[index].1.iter().map(Vec::as_slice).collect();
    let mut last = format!("no OCSP response for certificate {}", describe(cert_der));
    for r in responses {
        match ocsp::verify_response_with_responders(r, cert_der, ca, &approved, now, trust.ocsp_freshness()) {
            Ok(v) if v.status == Status::Good => return Ok(v),
            Ok(v) => last = format!("certificate {} is {}", describe(cert_der), status_text(&v.status)),
            Err(e) => last = format!("OCSP response for certificate {} refused: {e}", describe(cert_der)),
        }
    }
    Err(last)
}

fn status_text(s: &Status) -> String {
    match s {
        Status::Good => "good".into(),
        Status::Revoked { at } => format!("revoked (since {at})"),
        Status::Unknown => "unknown to its CA's OCSP responder".into(),
    }
}

struct Own {
    der: Vec<u8>,
    sha1: String,
}

/// A peer certificate's good OCSP response, verified under `trust` at `verified_at`.
struct PeerResponse {
    bytes: Vec<u8>,
    verified: VerifiedOcsp,
    trust: Arc<Trust>,
    verified_at: OffsetDateTime,
}

/// How long a verified peer response is taken without verifying it again
/// (its freshness is still checked each time): bounds how late the expiry of a
/// delegated responder's certificate is noticed.
const REVERIFY_AFTER: time::Duration = time::Duration::seconds(60);

impl PeerResponse {
    /// Still good to use under `trust` at `now` without verifying again.
    fn usable(&self, trust: &Arc<Trust>, now: OffsetDateTime) -> bool {
        Arc::ptr_eq(&self.trust, trust)
            && now - self.verified_at < REVERIFY_AFTER
            && now >= self.verified_at
            && self.verified.status == Status::Good
            && self.verified.this_update >= now - time::Duration::seconds(trust.conf.ocsp_freshness_seconds as i64)
            && self.verified.next_update.is_none_or(|n| n >= now)
    }
}

/// OCSP responses of this server's certificates and of its peers'.
pub(crate) struct OcspCache {
    trust: SharedTrust,
    own: RwLock<Vec<Arc<Own>>>,
    own_responses: RwLock<HashMap<String, (Vec<u8>, VerifiedOcsp)>>,
    peers: RwLock<HashMap<String, PeerResponse>>,
    /// Why the last fetch of an own certificate's response failed, by its SHA-1.
    fetch_errors: RwLock<HashMap<String, String>>,
    dir: PathBuf,
    updated: watch::Sender<u64>,
}

impl OcspCache {
    /// A cache for `own` certificates, persisted in `dir`.
    pub(crate) fn new(trust: SharedTrust, own: Vec<Vec<u8>>, dir: PathBuf) -> std::io::Result<Self> {
        std::fs::create_dir_all(&dir)?;
        let own = RwLock::new(own.into_iter().map(|der| Arc::new(Own { sha1: cert_sha1(&der), der })).collect());
        let (updated, _) = watch::channel(0);
        Ok(Self {
            trust,
            own,
            own_responses: RwLock::new(HashMap::new()),
            peers: RwLock::new(HashMap::new()),
            fetch_errors: RwLock::new(HashMap::new()),
            dir,
            updated,
        })
    }

    /// Replaces the list of own certificates (after a certificate was renewed)
    /// and forgets what was learnt about peers under the old trust.
    pub(crate) fn set_own(&self, own: Vec<Vec<u8>>) {
        *self.own.write().unwrap_or_else(|p| p.into_inner()) =
            own.into_iter().map(|der| Arc::new(Own { sha1: cert_sha1(&der), der })).collect();
        self.peers.write().unwrap_or_else(|p| p.into_inner()).clear();
    }

    fn own_list(&self) -> Vec<Arc<Own>> {
        self.own.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Loads responses saved by an earlier run that still verify.
    pub(crate) fn load_saved(&self) {
        let now = OffsetDateTime::now_utc();
        for own in &self.own_list() {
            let path = self.dir.join(format!("{}.der", own.sha1));
            let Ok(bytes) = std::fs::read(&path) else { continue };
            match self.verify_own(own, &bytes, now) {
                Ok(v) => {
                    self.own_responses.write().unwrap_or_else(|p| p.into_inner()).insert(own.sha1.clone(), (bytes, v));
                }
                Err(e) => info!(file = %path.display(), "saved OCSP response not used: {e}"),
            }
        }
    }

    fn verify_own(&self, own: &Own, bytes: &[u8], now: OffsetDateTime) -> Result<VerifiedOcsp, String> {
        let trust = self.trust.get();
        let (index, ca) = trust.issuer_of(&own.der).ok_or("not issued by an approved CA")?;
        let approved: Vec<&[u8]> = trust.ocsp[index].1.iter().map(Vec::as_slice).collect();
        ocsp::verify_response_with_responders(bytes, &own.der, ca, &approved, now, trust.ocsp_freshness())
            .map_err(|e| e.to_string())
    }

    /// Fetches fresh responses for every own certificate; true when all succeeded.
    /// Also warns about own certificates that expire within 30 days.
    pub(crate) async fn refresh(&self) -> bool {
        let mut all = true;
        for own in &self.own_list() {
            if let Some(w) = musubi_pki::expiry_warning(&own.der, OffsetDateTime::now_utc(), time::Duration::days(30)) {
                warn!("{w}");
            }
            let fetched = self.fetch_one(own).await;
            {
                let mut errors = self.fetch_errors.write().unwrap_or_else(|p| p.into_inner());
                match &fetched {
                    Ok(_) => errors.remove(&own.sha1),
                    Err(e) => errors.insert(own.sha1.clone(), e.clone()),
                };
            }
            match fetched {
                Ok(v) => {
                    if v.status != Status::Good {
                        warn!(cert = %describe(&own.der), "own certificate is {}", status_text(&v.status));
                    }
                }
                Err(e) => {
                    all = false;
                    warn!(cert = %describe(&own.der), "OCSP fetch failed: {e}");
                }
            }
        }
        self.updated.send_modify(|n| *n += 1);
        all
    }

    async fn fetch_one(&self, own: &Own) -> Result<VerifiedOcsp, String> {
        let trust = self.trust.get();
        let (index, ca) = trust.issuer_of(&own.der).ok_or("not issued by an approved CA")?;
        let request = ocsp::build_request(&own.der, ca).map_err(|e| e.to_string())?;
        let urls = &trust.ocsp[index].0;
        if urls.is_empty() {
            return Err("the CA has no OCSP responder in the global configuration".into());
        }
        let mut last = String::new();
        for url in urls {
            let answer = match musubi_pki::http::fetch_ocsp(url, &request, Duration::from_secs(10)).await {
                Ok(a) => a,
                Err(e) => {
                    last = format!("the responder cannot be reached: {e}");
                    continue;
                }
            };
            let now = OffsetDateTime::now_utc();
            match self.verify_own(own, &answer, now) {
                Ok(v) => {
                    self.save(own, &answer);
                    self.own_responses
                        .write()
                        .unwrap_or_else(|p| p.into_inner())
                        .insert(own.sha1.clone(), (answer, v.clone()));
                    return Ok(v);
                }
                // A responder that answers with responses this server finds
                // stale or not yet valid points at this server's clock.
                Err(e) => last = format!("{url} answered, but {e} (this server's clock reads {now})"),
            }
        }
        Err(last)
    }

    fn save(&self, own: &Own, bytes: &[u8]) {
        let path = self.dir.join(format!("{}.der", own.sha1));
        let tmp = path.with_extension("tmp");
        let result = std::fs::write(&tmp, bytes).and_then(|()| std::fs::rename(&tmp, &path));
        if let Err(e) = result {
            warn!(file = %path.display(), "cannot save OCSP response: {e}");
        }
    }

    /// The response of an own certificate if it is still fresh and good.
    /// (certificate SHA-1, seconds since `thisUpdate`) of each own certificate's response.
    pub(crate) fn own_ages(&self) -> Vec<(String, i64)> {
        let now = OffsetDateTime::now_utc();
        let map = self.own_responses.read().unwrap_or_else(|p| p.into_inner());
        let mut ages: Vec<(String, i64)> =
            map.iter().map(|(sha1, (_, v))| (sha1.clone(), (now - v.this_update).whole_seconds())).collect();
        ages.sort();
        ages
    }

    pub(crate) fn own_good(&self, der: &[u8]) -> Result<Vec<u8>, String> {
        let sha1 = cert_sha1(der);
        let now = OffsetDateTime::now_utc();
        let map = self.own_responses.read().unwrap_or_else(|p| p.into_inner());
        let (bytes, v) = map
            .get(&sha1)
            .ok_or_else(|| format!("no OCSP response yet for this server's certificate {}", describe(der)))?;
        if v.status != Status::Good {
            return Err(format!("this server's certificate {} is {}", describe(der), status_text(&v.status)));
        }
        let fresh = v.this_update >= now - time::Duration::seconds(self.trust.get().conf.ocsp_freshness_seconds as i64)
            && v.next_update.is_none_or(|n| n >= now);
        if !fresh {
            let why = self.fetch_errors.read().unwrap_or_else(|p| p.into_inner()).get(&sha1).cloned();
            return Err(format!(
                "the OCSP response for this server's certificate {} is from {} and no longer fresh; {}",
                describe(der),
                v.this_update,
                why.map_or_else(|| "no newer one has been fetched".to_string(), |e| format!("the last fetch: {e}"))
            ));
        }
        Ok(bytes.clone())
    }

    /// The status of an own certificate as last fetched.
    pub(crate) fn own_status(&self, der: &[u8]) -> Option<Status> {
        self.own_responses.read().unwrap_or_else(|p| p.into_inner()).get(&cert_sha1(der)).map(|(_, v)| v.status)
    }

    /// Saved responses for the requested certificate hashes (port 5577).
    pub(crate) fn own_responses_for(&self, sha1s: &[String]) -> Vec<Vec<u8>> {
        let map = self.own_responses.read().unwrap_or_else(|p| p.into_inner());
        sha1s.iter().filter_map(|h| map.get(&h.to_ascii_lowercase()).map(|(b, _)| b.clone())).collect()
    }

    /// A cached fresh good response for a peer's certificate, if any.
    pub(crate) fn peer_cached(&self, der: &[u8]) -> bool {
        let now = OffsetDateTime::now_utc();
        let trust = self.trust.get();
        let sha1 = cert_sha1(der);
        let map = self.peers.read().unwrap_or_else(|p| p.into_inner());
        let Some(entry) = map.get(&sha1) else { return false };
        if entry.usable(&trust, now) {
            return true;
        }
        let bytes = entry.bytes.clone();
        drop(map);
        self.check_peer(der, &[&bytes]).is_ok()
    }

    /// Checks `responses` for a peer's certificate and caches a good one.
    /// A response identical to the cached one is not verified again while
    /// the cached verification is usable.
    pub(crate) fn check_peer(&self, der: &[u8], responses: &[&[u8]]) -> Result<(), String> {
        let now = OffsetDateTime::now_utc();
        let trust = self.trust.get();
        let sha1 = cert_sha1(der);
        {
            let map = self.peers.read().unwrap_or_else(|p| p.into_inner());
            if let Some(entry) = map.get(&sha1)
                && entry.usable(&trust, now)
                && responses.contains(&entry.bytes.as_slice())
            {
                return Ok(());
            }
        }
        let mut last = format!("no OCSP response for certificate {}", describe(der));
        for r in responses {
            match check_response(&trust, der, &[r], now) {
                Ok(v) => {
                    let entry = PeerResponse { bytes: r.to_vec(), verified: v, trust: trust.clone(), verified_at: now };
                    self.peers.write().unwrap_or_else(|p| p.into_inner()).insert(sha1, entry);
                    return Ok(());
                }
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    /// Notified after every fetch round.
    pub(crate) fn updates(&self) -> watch::Receiver<u64> {
        self.updated.subscribe()
    }
}

/// Refreshes own responses every `interval`, or after `retry` when a fetch failed.
pub(crate) async fn run_fetcher(
    cache: Arc<OcspCache>,
    interval: Duration,
    retry: Duration,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let wait = if cache.refresh().await { interval } else { retry };
        tokio::select! {
            _ = stop.changed() => break,
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

/// Serves this server's OCSP responses to peers: `GET /?cert=<hex SHA-1>&…`,
/// answered as `multipart/related` with one `application/ocsp-response` part
/// per known certificate (PR-MESSTRANSP §2.2).
pub(crate) async fn serve_responses(
    listener: tokio::net::TcpListener,
    cache: Arc<OcspCache>,
    mut stop: watch::Receiver<bool>,
) {
    use http_body_util::Full;
    use hyper::{Request, Response, StatusCode};
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            accepted = listener.accept() => {
                let Ok((tcp, _)) = accepted else { continue };
                let cache = cache.clone();
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                        let cache = cache.clone();
                        async move {
                            let hashes: Vec<String> = req
                                .uri()
                                .query()
                                .unwrap_or("")
                                .split('&')
                                .filter_map(|kv| kv.strip_prefix("cert="))
                                .take(16)
                                .map(str::to_owned)
                                .collect();
                            let found = cache.own_responses_for(&hashes);
                            let mut r = if req.method() != hyper::Method::GET || found.is_empty() {
                                let mut r = Response::new(Full::new(bytes::Bytes::new()));
                                *r.status_mut() = if req.method() == hyper::Method::GET { StatusCode::NOT_FOUND } else { StatusCode::METHOD_NOT_ALLOWED };
                                r
                            } else {
                                let mut w = musubi_protocol::mime::MultipartWriter::new("ocsp-responses");
                                for f in &found {
                                    w.part(&[("Content-Type", "application/ocsp-response")], f);
                                }
                                Response::new(Full::new(bytes::Bytes::from(w.finish())))
                            };
                            r.headers_mut().insert(
                                "content-type",
                                hyper::header::HeaderValue::from_static("multipart/related; boundary=ocsp-responses"),
                            );
                            Ok::<_, std::convert::Infallible>(r)
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(tcp), svc)
                        .await;
                });
            }
        }
    }
}

/// Downloads a peer's OCSP responses for `der` from its port 5577.
pub(crate) async fn fetch_from_peer(ocsp_addr: &str, der: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    use http_body_util::{BodyExt, Full, Limited};
    let work = async {
        let tcp = tokio::net::TcpStream::connect(ocsp_addr).await.map_err(|e| e.to_string())?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tcp))
            .await
            .map_err(|e| e.to_string())?;
        tokio::spawn(conn);
        let req = hyper::Request::get(format!("/?cert={}", cert_sha1(der)))
            .header("host", ocsp_addr)
            .body(Full::new(bytes::Bytes::new()))
            .map_err(|e| e.to_string())?;
        let resp = sender.send_request(req).await.map_err(|e| e.to_string())?;
        if !resp.status().is_success() {
            return Err(format!("answered HTTP {}", resp.status()));
        }
        let ct = resp.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
        let body = Limited::new(resp.into_body(), 256 * 1024).collect().await.map_err(|e| e.to_string())?.to_bytes();
        let ct = musubi_protocol::mime::ContentType::parse(&ct).map_err(|e| e.to_string())?;
        let boundary = ct.boundary().map_err(|e| e.to_string())?;
        let mp =
            musubi_protocol::mime::parse_multipart(&body, boundary, &Default::default()).map_err(|e| e.to_string())?;
        Ok(mp.parts.iter().map(|p| p.body.to_vec()).collect())
    };
    tokio::time::timeout(Duration::from_secs(10), work)
        .await
        .map_err(|_| "no answer within 10 s".to_owned())?
        .map_err(|e| format!("OCSP responses from the peer at {ocsp_addr}: {e}"))
}
