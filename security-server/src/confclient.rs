//! The configuration client: downloads the signed configuration directory,
//! checks it, and keeps the last good copy on disk (global configuration
//! protocol; what X-Road's `configuration-client` does).
//!
//! A download is accepted only when its signature verifies with a
//! certificate of the anchor or one the configuration in force announced
//! (key rotation), every file has the hash the directory lists, the shared
//! parameters are this instance's, and it is not older than the
//! configuration in force (a replayed directory). Anything else leaves the
//! configuration in force untouched.
//!
//! On disk: `<root>/<generation>/` in X-Road's layout ([`crate::confdir`]),
//! and `<root>/current` naming the generation in force. A new generation is
//! written and synced completely before `current` is replaced by a rename,
//! so a crash leaves either the old or the new configuration, never a mix.

use std::path::{Path, PathBuf};
use std::time::Duration;

use musubi_protocol::globalconf::{self, Anchor, Directory, DirectoryFile, GlobalConfError};

/// Largest file downloaded.
pub const MAX_FILE_BYTES: usize = 16 * 1024 * 1024;
/// Generations kept on disk (the one in force and the one before).
const KEEP: usize = 2;

/// Why a configuration was not taken.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfClientError {
    /// The download failed.
    #[error("cannot download {url}: {detail}")]
    Fetch {
        /// What was fetched.
        url: String,
        /// What failed.
        detail: String,
    },
    /// The directory is malformed, unsigned or mis-signed.
    #[error(transparent)]
    Directory(#[from] GlobalConfError),
    /// The configuration is another instance's.
    #[error("the configuration is for instance {got:?}, this server belongs to {expected:?}")]
    WrongInstance {
        /// The anchor's instance.
        expected: String,
        /// What the directory says.
        got: String,
    },
    /// Older than the configuration in force.
    #[error("the configuration expires at {offered}, before the one in force ({current}): a replayed copy is refused")]
    Replayed {
        /// The configuration in force.
        current: String,
        /// The one offered.
        offered: String,
    },
    /// A required file is not listed.
    #[error("the directory lists no {0}")]
    Missing(&'static str),
    /// The parameters are well formed but this server cannot take its trust from them.
    #[error("the configuration cannot be used: {0}")]
    Unusable(String),
    /// Writing to disk failed.
    #[error("cannot store the configuration in {path}: {error}")]
    Store {
        /// Where.
        path: PathBuf,
        /// What failed.
        error: std::io::Error,
    },
}

/// A downloaded directory with its files.
#[derive(Debug, Clone)]
pub struct Downloaded {
    /// The signed directory.
    pub directory: Directory,
    /// Each listed file with its bytes.
    pub files: Vec<(DirectoryFile, Vec<u8>)>,
}

/// What the configuration in force contributes to checking the next one.
#[derive(Debug, Clone, Default)]
pub struct InForce {
    /// Its expiry.
    pub expire_date: Option<time::OffsetDateTime>,
    /// Verification certificates its shared parameters announce.
    pub announced: Vec<Vec<u8>>,
}

/// Checks a download against the anchor and the configuration in force.
pub fn check(anchor: &Anchor, in_force: &InForce, dl: &Downloaded) -> Result<(), ConfClientError> {
    let mut trusted = anchor.certs();
    trusted.extend(in_force.announced.iter().cloned());
    dl.directory.verify(&trusted)?;
    for (f, bytes) in &dl.files {
        dl.directory.check_file(f, bytes)?;
    }
    let (shared, bytes) = dl
        .files
        .iter()
        .find(|(f, _)| f.content_identifier == "SHARED-PARAMETERS")
        .ok_or(ConfClientError::Missing("SHARED-PARAMETERS"))?;
    let instance = shared.instance.clone().unwrap_or_default();
    let declared = musubi_protocol::sharedparams::read_directory(bytes)
        .map_err(|e| GlobalConfError::Malformed(e.to_string()))?
        .instance;
    for got in [instance, declared] {
        if got != anchor.instance {
            return Err(ConfClientError::WrongInstance { expected: anchor.instance.clone(), got });
        }
    }
    if let Some(current) = in_force.expire_date
        && dl.directory.expire_date < current
    {
        return Err(ConfClientError::Replayed {
            current: current.to_string(),
            offered: dl.directory.expire_date.to_string(),
        });
    }
    Ok(())
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> ConfClientError + '_ {
    move |error| ConfClientError::Store { path: path.to_path_buf(), error }
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), ConfClientError> {
    use std::io::Write as _;
    let mut f = std::fs::File::create(path).map_err(io(path))?;
    f.write_all(bytes).map_err(io(path))?;
    f.sync_all().map_err(io(path))
}

/// Stores a checked download as a new generation under `root` and puts it
/// in force; returns the generation's directory.
pub fn store(root: &Path, instance: &str, dl: &Downloaded) -> Result<PathBuf, ConfClientError> {
    std::fs::create_dir_all(root).map_err(io(root))?;
    // Each stored download gets a new folder (named by the time it is stored),
    // even when it repeats the one in force: the folder in force is never
    // rewritten, and a new folder tells the server to reload.
    let mut stamp = time::OffsetDateTime::now_utc().unix_timestamp_nanos();
    while root.join(stamp.to_string()).exists() {
        stamp += 1;
    }
    let generation = stamp.to_string();
    let dir = root.join(&generation);
    let inst_dir = dir.join(instance);
    std::fs::create_dir_all(&inst_dir).map_err(io(&inst_dir))?;
    write_synced(&dir.join("instance-identifier"), instance.as_bytes())?;
    let expires = dl.directory.expire_date.format(&time::format_description::well_known::Rfc3339).unwrap_or_default();
    for (f, bytes) in &dl.files {
        let name = match f.content_identifier.as_str() {
            "SHARED-PARAMETERS" => "shared-params.xml",
            "PRIVATE-PARAMETERS" => "private-params.xml",
            _ => continue,
        };
        write_synced(&inst_dir.join(name), bytes)?;
        let meta = serde_json::json!({
            "contentIdentifier": f.content_identifier,
            "instanceIdentifier": instance,
            "expirationDate": expires,
            "configurationVersion": dl.directory.version.unwrap_or(2).to_string(),
        });
        write_synced(&inst_dir.join(format!("{name}.metadata")), meta.to_string().as_bytes())?;
    }
    std::fs::File::open(&inst_dir).and_then(|d| d.sync_all()).map_err(io(&inst_dir))?;
    // The switch: one rename.
    let tmp = root.join("current.tmp");
    write_synced(&tmp, generation.as_bytes())?;
    std::fs::rename(&tmp, root.join("current")).map_err(io(root))?;
    std::fs::File::open(root).and_then(|d| d.sync_all()).map_err(io(root))?;
    // Older generations beyond the last good one go.
    let mut gens: Vec<PathBuf> = std::fs::read_dir(root)
        .map_err(io(root))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.is_dir()
                && p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit() || b == b'-'))
        })
        .collect();
    gens.sort_by_key(|p| p.file_name().and_then(|n| n.to_str()).and_then(|n| n.parse::<i128>().ok()).unwrap_or(0));
    let keep_from = gens.len().saturating_sub(KEEP);
    for old in &gens[..keep_from] {
        if *old != dir {
            let _ = std::fs::remove_dir_all(old);
        }
    }
    Ok(dir)
}

/// The generation in force under `root`, if any.
pub fn in_force_dir(root: &Path) -> Option<PathBuf> {
    let generation = std::fs::read_to_string(root.join("current")).ok()?;
    let dir = root.join(generation.trim());
    dir.is_dir().then_some(dir)
}

/// What the configuration in force under `root` contributes to the next check.
pub fn in_force(root: &Path) -> InForce {
    let Some(dir) = in_force_dir(root) else { return InForce::default() };
    let Ok(conf) = crate::confdir::read(&dir) else { return InForce::default() };
    let Some(shared) = conf.find(&conf.instance, crate::confdir::Params::Shared) else { return InForce::default() };
    let expire_date = shared
        .expiration
        .as_deref()
        .and_then(|e| time::OffsetDateTime::parse(e, &time::format_description::well_known::Rfc3339).ok());
    let announced = std::fs::read(&shared.path)
        .ok()
        .and_then(|b| globalconf::announced_sources(&b).ok())
        .map(|sources| sources.into_iter().flat_map(|s| s.certs).collect())
        .unwrap_or_default();
    InForce { expire_date, announced }
}

/// One HTTP GET of at most `limit` bytes within `timeout`; (content type, body).
pub(crate) async fn get(url: &str, limit: usize, timeout: Duration) -> Result<(String, Vec<u8>), ConfClientError> {
    use http_body_util::{BodyExt as _, Empty, Limited};
    let fail = |detail: String| ConfClientError::Fetch { url: url.to_string(), detail };
    let uri: hyper::Uri = url.parse().map_err(|_| fail("not a URL".into()))?;
    if uri.scheme_str() != Some("http") {
        return Err(fail("only http:// sources are supported".into()));
    }
    let host = uri.host().ok_or_else(|| fail("no host".into()))?;
    let addr = format!("{host}:{}", uri.port_u16().unwrap_or(80));
    let work = async {
        let tcp = tokio::net::TcpStream::connect(&addr).await.map_err(|e| fail(e.to_string()))?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tcp))
            .await
            .map_err(|e| fail(e.to_string()))?;
        tokio::spawn(conn);
        let req = hyper::Request::get(uri.path_and_query().map_or("/", |p| p.as_str()))
            .header("host", &addr)
            .body(Empty::<bytes::Bytes>::new())
            .map_err(|e| fail(e.to_string()))?;
        let resp = sender.send_request(req).await.map_err(|e| fail(e.to_string()))?;
        if !resp.status().is_success() {
            return Err(fail(format!("HTTP {}", resp.status().as_u16())));
        }
        let ct = resp.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
        let body = Limited::new(resp.into_body(), limit).collect().await.map_err(|e| fail(e.to_string()))?;
        Ok((ct, body.to_bytes().to_vec()))
    };
    tokio::time::timeout(timeout, work).await.map_err(|_| fail(format!("no answer within {} s", timeout.as_secs())))?
}

/// Downloads the directory at `url` and every file it lists (each from the
/// same host, at its `Content-location`).
pub async fn fetch(url: &str, timeout: Duration) -> Result<Downloaded, ConfClientError> {
    let (ct, body) = get(url, globalconf::MAX_DIRECTORY_BYTES, timeout).await?;
    let directory = globalconf::parse_directory(&ct, &body)?;
    let uri: hyper::Uri =
        url.parse().map_err(|_| ConfClientError::Fetch { url: url.into(), detail: "not a URL".into() })?;
    let origin = format!("http://{}", uri.authority().map_or("", |a| a.as_str()));
    let mut files = Vec::new();
    for f in &directory.files {
        let location = if f.location.starts_with('/') { f.location.clone() } else { format!("/{}", f.location) };
        let (_, bytes) = get(&format!("{origin}{location}"), MAX_FILE_BYTES, timeout).await?;
        files.push((f.clone(), bytes));
    }
    Ok(Downloaded { directory, files })
}
