//! The timestamper: every `timestamping_interval_seconds` the records that
//! wait for a time stamp are stamped with RFC 3161 — one record over its
//! SignatureValue, several over a hash chain (`/ts-hashchain.xml`), as X-Road
//! does. TSAs are tried in order. While no TSA answers, records wait; when
//! time-stamping has failed for longer than the acceptable period, new
//! exchanges are refused, and accepted again once a TSA answers and the
//! backlog is stamped.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use musubi_pki::tsp::{self, DigestAlg};
use musubi_protocol::{hashchain, xades};
use time::OffsetDateTime;
use tokio::sync::watch;
use tracing::{info, warn};

use crate::conf::Trust;
use crate::proxy::State;

/// Records stamped with one token at most: a round with a larger backlog takes
/// several tokens, so that no batch holds the database (and the message log
/// writers behind it) or much memory for long.
const MAX_BATCH: i64 = 1_000;

/// Time-stamping state shared with the proxies.
#[derive(Debug)]
pub(crate) struct Timestamper {
    /// One stamping round at a time, so no record is stamped twice.
    round: tokio::sync::Mutex<()>,
    failed_since: Mutex<Option<OffsetDateTime>>,
    period: Duration,
    updates: watch::Sender<u64>,
}

impl Timestamper {
    pub(crate) fn new(acceptable_failure_period: Duration) -> Self {
        let (updates, _) = watch::channel(0);
        Self {
            round: tokio::sync::Mutex::new(()),
            failed_since: Mutex::new(None),
            period: acceptable_failure_period,
            updates,
        }
    }

    /// Whether a new exchange may be logged (X-Road's `verifyCanLogMessage`).
    pub(crate) fn check(&self, trust: &Trust) -> Result<(), String> {
        if trust.conf.approved_tsas.is_empty() {
            return Err("cannot time-stamp messages: no time-stamping authority is configured".into());
        }
        if self.period.is_zero() {
            return Ok(());
        }
        let since = *self.failed_since.lock().unwrap_or_else(|p| p.into_inner());
        match since {
            Some(t) if OffsetDateTime::now_utc() - t > self.period => Err(format!(
                "cannot time-stamp messages: no time-stamping authority has answered since {t}; \
                 exchanges resume when one answers"
            )),
            _ => Ok(()),
        }
    }

    pub(crate) fn updates(&self) -> watch::Receiver<u64> {
        self.updates.subscribe()
    }

    fn record(&self, ok: bool) {
        let mut since = self.failed_since.lock().unwrap_or_else(|p| p.into_inner());
        if ok {
            *since = None;
        } else if since.is_none() {
            *since = Some(OffsetDateTime::now_utc());
        }
        drop(since);
        self.updates.send_modify(|n| *n += 1);
    }
}

/// Stamps the waiting records every interval until `stop`.
pub(crate) async fn run(state: Arc<State>, mut stop: watch::Receiver<bool>) {
    loop {
        let interval = Duration::from_secs(state.trust.get().conf.timestamping_interval_seconds.max(1));
        tokio::select! {
            _ = stop.changed() => break,
            _ = tokio::time::sleep(interval) => {}
        }
        if let Err(e) = stamp_now(&state).await {
            warn!("time-stamping failed, records wait: {e}");
        }
    }
}

/// Stamps everything waiting now (one round at a time); immediate mode calls
/// this before a response is released.
pub(crate) async fn stamp_now(state: &State) -> Result<(), String> {
    let _round = state.timestamper.round.lock().await;
    let result = stamp_backlog(state).await;
    state.timestamper.record(result.is_ok());
    result
}

async fn stamp_backlog(state: &State) -> Result<(), String> {
    loop {
        let records = state.log.unstamped(MAX_BATCH).await.map_err(|e| format!("message log: {e}"))?;
        if records.is_empty() {
            return Ok(());
        }
        let (stamped, result, marks) = if records.len() == 1 {
            let (id, signature) = &records[0];
            let value = xades::signature_value(signature).map_err(|e| e.to_string())?;
            (value, None, vec![(*id, None)])
        } else {
            let inputs: Vec<Vec<(String, Vec<u8>)>> = records
                .iter()
                .map(|(_, sig)| {
                    vec![(
                        "/META-INF/signatures.xml".to_owned(),
                        ring::digest::digest(&ring::digest::SHA512, sig).as_ref().to_vec(),
                    )]
                })
                .collect();
            let batch = hashchain::build(&inputs, "/ts-hashchain.xml").map_err(|e| e.to_string())?;
            let marks = records.iter().map(|(id, _)| *id).zip(batch.chains.into_iter().map(Some)).collect();
            (batch.result.clone(), Some(batch.result), marks)
        };
        let token = request_token(&state.trust.get(), &stamped).await?;
        state
            .log
            .save_timestamp(&token, &stamped, result.as_deref(), &marks)
            .await
            .map_err(|e| format!("message log: {e}"))?;
        info!(records = marks.len(), "message log time-stamped");
    }
}

/// Asks the approved TSAs in order; the first verified token wins.
async fn request_token(trust: &Trust, data: &[u8]) -> Result<Vec<u8>, String> {
    let request = tsp::build_request(DigestAlg::Sha512, data).map_err(|e| e.to_string())?;
    let mut last = "no time-stamping authority is configured".to_owned();
    for tsa in &trust.conf.approved_tsas {
        let Some(cert) = musubi_pki::pem_decode("CERTIFICATE", &tsa.cert) else {
            last = format!("TSA {:?}: its certificate is not PEM", tsa.name);
            continue;
        };
        let answer = match musubi_pki::http::fetch_timestamp(&tsa.url, &request, Duration::from_secs(20)).await {
            Ok(a) => a,
            Err(e) => {
                last = e.to_string();
                continue;
            }
        };
        let checked =
            tsp::parse_response(&answer).and_then(|token| tsp::verify_token(&token, data, &[&cert]).map(|_| token));
        match checked {
            Ok(token) => return Ok(token),
            Err(e) => last = format!("TSA {:?}: {e}", tsa.name),
        }
    }
    Err(last)
}
