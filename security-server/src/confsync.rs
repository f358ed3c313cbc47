//! Following the central server: the configuration client runs every
//! `configuration_download_secs`, trying the anchor's sources in order, and
//! keeps the expiry of the configuration in force. Once it has passed (or
//! before a first configuration arrived) exchanges are refused with the
//! outdated-configuration fault; the next good download lets them through
//! again, by itself.
//!
//! The server's trust is built from the shared and private parameters of
//! the generation in force ([`read_in_force`]); a download whose parameters
//! cannot be turned into trust is refused like a tampered one, and each new
//! generation wakes the server's reload.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use musubi_protocol::globalconf::Anchor;
use tokio::sync::watch;
use tracing::{info, warn};

use crate::conf::{ConfError, GlobalConf, Trust};
use crate::confclient;

/// Reads the trust of the generation in force under `root` for `instance`;
/// `None` when no configuration has been downloaded yet.
pub(crate) fn read_in_force(root: &Path, instance: &str) -> Result<Option<Trust>, ConfError> {
    let Some(dir) = confclient::in_force_dir(root) else { return Ok(None) };
    let conf = crate::confdir::read(&dir)
        .map_err(|e| ConfError::Invalid(format!("global configuration in {}: {e:?}", dir.display())))?;
    let read = |params| -> Result<Vec<u8>, ConfError> {
        let file = conf.find(instance, params).ok_or_else(|| {
            ConfError::Invalid(format!(
                "global configuration in {} has no {params:?} parameters of {instance}",
                dir.display()
            ))
        })?;
        let len = std::fs::metadata(&file.path).map(|m| m.len()).unwrap_or(u64::MAX);
        if len > musubi_protocol::sharedparams::MAX_SHARED_PARAMS_BYTES as u64 {
            return Err(ConfError::Invalid(format!("{} is too large", file.path.display())));
        }
        std::fs::read(&file.path).map_err(|error| ConfError::Read { path: file.path.clone(), error })
    };
    let shared = read(crate::confdir::Params::Shared)?;
    let private = read(crate::confdir::Params::Private).ok();
    trust_of(&shared, private.as_deref()).map(Some)
}

/// Trust from shared parameters (and private ones, when present).
fn trust_of(shared: &[u8], private: Option<&[u8]>) -> Result<Trust, ConfError> {
    use musubi_protocol::sharedparams;
    let params = sharedparams::read(shared).map_err(|e| ConfError::Invalid(e.to_string()))?;
    let private = match private {
        Some(p) => sharedparams::read_private(p).map_err(|e| ConfError::Invalid(e.to_string()))?,
        None => sharedparams::PrivateParams::default(),
    };
    Trust::from_params(GlobalConf::from_params(&params, &private)?)
}

/// The expiry of the configuration in force, when the server follows one.
#[derive(Debug)]
pub(crate) struct Freshness {
    /// Unix seconds; `i64::MIN` when none has been taken yet.
    expires: AtomicI64,
    enabled: bool,
}

impl Freshness {
    /// A server that does not follow a central server.
    pub(crate) fn disabled() -> Self {
        Self { expires: AtomicI64::new(i64::MAX), enabled: false }
    }

    fn set(&self, t: Option<time::OffsetDateTime>) {
        self.expires.store(t.map_or(i64::MIN, |t| t.unix_timestamp()), Ordering::Relaxed);
    }

    /// When the configuration in force expires (Unix seconds); `None` when
    /// the server does not follow a central server or has none yet.
    pub(crate) fn expires_at(&self) -> Option<i64> {
        let e = self.expires.load(Ordering::Relaxed);
        (self.enabled && e != i64::MIN).then_some(e)
    }

    /// `Err(why)` when exchanges must be refused.
    pub(crate) fn check(&self) -> Result<(), String> {
        if !self.enabled {
            return Ok(());
        }
        let expires = self.expires.load(Ordering::Relaxed);
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        if expires == i64::MIN {
            return Err("no global configuration has been downloaded yet".into());
        }
        if now >= expires {
            let at = time::OffsetDateTime::from_unix_timestamp(expires)
                .ok()
                .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
                .unwrap_or_default();
            return Err(format!("global configuration is outdated (it expired at {at}); check the central server"));
        }
        Ok(())
    }
}

/// The follower: the anchor and where generations are kept.
pub(crate) struct Follower {
    anchor: Anchor,
    root: PathBuf,
    interval: Duration,
    /// Woken after each new generation is put in force.
    pub(crate) taken: Arc<tokio::sync::Notify>,
    /// One round at a time: a round that downloaded an older generation must
    /// not store it after a later round stored a newer one.
    round_lock: tokio::sync::Mutex<()>,
}

impl Follower {
    /// Reads the anchor file.
    pub(crate) fn new(anchor_path: &std::path::Path, root: PathBuf, interval_secs: u64) -> Result<Self, String> {
        let bytes = std::fs::read(anchor_path).map_err(|e| format!("cannot read {}: {e}", anchor_path.display()))?;
        let anchor =
            musubi_protocol::globalconf::parse_anchor(&bytes).map_err(|e| format!("{}: {e}", anchor_path.display()))?;
        Ok(Self {
            anchor,
            root,
            interval: Duration::from_secs(interval_secs.max(1)),
            taken: Arc::new(tokio::sync::Notify::new()),
            round_lock: tokio::sync::Mutex::new(()),
        })
    }

    /// The instance the anchor is for.
    pub(crate) fn instance(&self) -> &str {
        &self.anchor.instance
    }

    /// The freshness of what is on disk now.
    pub(crate) fn freshness(&self) -> Freshness {
        let f = Freshness { expires: AtomicI64::new(i64::MIN), enabled: true };
        f.set(confclient::in_force(&self.root).expire_date);
        f
    }

    /// One download from the anchor's sources in order; true when a good
    /// configuration was stored.
    pub(crate) async fn round(&self, freshness: &Freshness) -> bool {
        let _one_at_a_time = self.round_lock.lock().await;
        let t = Duration::from_secs(10);
        let mut last_error = None;
        for source in &self.anchor.sources {
            let taken = async {
                let dl = confclient::fetch(&source.location, t).await?;
                confclient::check(&self.anchor, &confclient::in_force(&self.root), &dl)?;
                // Parameters this server could not take its trust from are refused too.
                let file =
                    |id: &str| dl.files.iter().find(|(f, _)| f.content_identifier == id).map(|(_, b)| b.as_slice());
                let shared =
                    file("SHARED-PARAMETERS").ok_or(confclient::ConfClientError::Missing("SHARED-PARAMETERS"))?;
                trust_of(shared, file("PRIVATE-PARAMETERS"))
                    .map_err(|e| confclient::ConfClientError::Unusable(e.to_string()))?;
                confclient::store(&self.root, &self.anchor.instance, &dl)?;
                self.taken.notify_one();
                Ok::<_, confclient::ConfClientError>(dl.directory.expire_date)
            }
            .await;
            match taken {
                Ok(expires) => {
                    let was_stale = freshness.check().is_err();
                    freshness.set(Some(expires));
                    if was_stale {
                        info!(source = %source.location, "global configuration is current again");
                    }
                    return true;
                }
                Err(e) => last_error = Some(format!("{}: {e}", source.location)),
            }
        }
        if let Some(e) = last_error {
            warn!(error = %e, "global configuration not downloaded; the one in force stays until it expires");
        }
        false
    }
}

/// Downloads every interval until `stop`.
pub(crate) async fn run(follower: Arc<Follower>, freshness: Arc<Freshness>, mut stop: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(follower.interval);
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            _ = tick.tick() => {
                follower.round(&freshness).await;
            }
        }
    }
}
