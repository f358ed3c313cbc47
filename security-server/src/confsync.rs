//! Following the central server: the configuration client runs every
//! `configuration_download_secs`, trying the anchor's sources in order, and
//! keeps the expiry of the configuration in force. Once it has passed (or
//! before a first configuration arrived) exchanges are refused with the
//! outdated-configuration fault; the next good download lets them through
//! again, by itself.
//!
//! For now the downloaded configuration gates traffic by its expiry; trust
//! still comes from the trust file (deriving it from the shared parameters
//! is the next step of the central-server issue).

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use musubi_protocol::globalconf::Anchor;
use tokio::sync::watch;
use tracing::{info, warn};

use crate::confclient;

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
}

impl Follower {
    /// Reads the anchor file.
    pub(crate) fn new(anchor_path: &std::path::Path, root: PathBuf, interval_secs: u64) -> Result<Self, String> {
        let bytes = std::fs::read(anchor_path).map_err(|e| format!("cannot read {}: {e}", anchor_path.display()))?;
        let anchor =
            musubi_protocol::globalconf::parse_anchor(&bytes).map_err(|e| format!("{}: {e}", anchor_path.display()))?;
        Ok(Self { anchor, root, interval: Duration::from_secs(interval_secs.max(1)) })
    }

    /// The freshness of what is on disk now.
    pub(crate) fn freshness(&self) -> Freshness {
        let f = Freshness { expires: AtomicI64::new(i64::MIN), enabled: true };
        f.set(confclient::in_force(&self.root).expire_date);
        f
    }

    async fn round(&self, freshness: &Freshness) {
        let t = Duration::from_secs(10);
        let mut last_error = None;
        for source in &self.anchor.sources {
            let taken = async {
                let dl = confclient::fetch(&source.location, t).await?;
                confclient::check(&self.anchor, &confclient::in_force(&self.root), &dl)?;
                confclient::store(&self.root, &self.anchor.instance, &dl)?;
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
                    return;
                }
                Err(e) => last_error = Some(format!("{}: {e}", source.location)),
            }
        }
        if let Some(e) = last_error {
            warn!(error = %e, "global configuration not downloaded; the one in force stays until it expires");
        }
    }
}

/// Downloads every interval until `stop`.
pub(crate) async fn run(follower: Follower, freshness: Arc<Freshness>, mut stop: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(follower.interval);
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            _ = tick.tick() => follower.round(&freshness).await,
        }
    }
}
