//! The signer: one task per signing key. Requests that arrive while it is busy
//! are signed together with one batch signature over a hash chain (X-Road's
//! batch signatures), so signing keeps up under load at the cost of one
//! signature per batch; a lone request gets a plain signature.

use std::sync::Arc;

use musubi_pki::SigningKey;
use musubi_protocol::xades::{self, SignatureError};
use tokio::sync::{mpsc, oneshot};

/// Most messages one batch signature covers.
pub(crate) const MAX_BATCH: usize = 128;

/// A signature for one message.
#[derive(Debug, Clone)]
pub(crate) struct Signed {
    /// The signature document.
    pub(crate) signature: Vec<u8>,
    /// For a batch: (hash chain result, this message's hash chain).
    pub(crate) batch: Option<(Vec<u8>, Vec<u8>)>,
}

struct Job {
    parts: Vec<(String, Vec<u8>)>,
    ocsp: Option<Vec<u8>>,
    reply: oneshot::Sender<Result<Signed, SignatureError>>,
}

/// A handle to the signing task of one key.
#[derive(Debug, Clone)]
pub(crate) struct BatchSigner {
    tx: mpsc::Sender<Job>,
}

impl BatchSigner {
    /// Starts the signing task for `key`.
    pub(crate) fn start(key: Arc<SigningKey>) -> Self {
        let (tx, rx) = mpsc::channel(4 * MAX_BATCH);
        tokio::spawn(run(key, rx));
        Self { tx }
    }

    /// Signs the parts (URI, SHA-512 digest) of one message, embedding `ocsp`.
    pub(crate) async fn sign(
        &self,
        parts: Vec<(String, Vec<u8>)>,
        ocsp: Option<Vec<u8>>,
    ) -> Result<Signed, SignatureError> {
        let (reply, answer) = oneshot::channel();
        let stopped = || SignatureError {
            code: musubi_protocol::Code::CANNOT_CREATE_SIGNATURE,
            message: "the signer is not running".into(),
        };
        self.tx.send(Job { parts, ocsp, reply }).await.map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

fn now_xsd() -> String {
    time::OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
}

async fn run(key: Arc<SigningKey>, mut rx: mpsc::Receiver<Job>) {
    while let Some(first) = rx.recv().await {
        let mut jobs = vec![first];
        while jobs.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        let key = key.clone();
        let result = tokio::task::spawn_blocking(move || sign_jobs(&key, jobs)).await;
        if let Err(e) = result {
            tracing::error!("signing task failed: {e}");
        }
    }
}

fn sign_jobs(key: &SigningKey, jobs: Vec<Job>) {
    let time = now_xsd();
    if jobs.len() == 1 {
        let Some(job) = jobs.into_iter().next() else { return };
        let parts: Vec<(&str, Vec<u8>)> = job.parts.iter().map(|(u, d)| (u.as_str(), d.clone())).collect();
        let signed = xades::sign_digests(key, &parts, &time, job.ocsp.as_deref())
            .map(|signature| Signed { signature, batch: None });
        let _ = job.reply.send(signed);
        return;
    }
    // All jobs of one key carry the same OCSP response of its certificate.
    let ocsp = jobs.iter().find_map(|j| j.ocsp.clone());
    let inputs: Vec<Vec<(String, Vec<u8>)>> = jobs.iter().map(|j| j.parts.clone()).collect();
    match xades::sign_batch_digests(key, &inputs, &time, ocsp.as_deref()) {
        Ok(shares) => {
            for (job, share) in jobs.into_iter().zip(shares) {
                let _ = job.reply.send(Ok(Signed {
                    signature: share.signature,
                    batch: Some((share.hash_chain_result, share.hash_chain)),
                }));
            }
        }
        Err(e) => {
            for job in jobs {
                let _ = job.reply.send(Err(e.clone()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use musubi_pki::{DevCa, Usage};
    use musubi_protocol::xades::DataPart;

    fn digest(b: &[u8]) -> Vec<u8> {
        ring::digest::digest(&ring::digest::SHA512, b).as_ref().to_vec()
    }

    #[tokio::test]
    async fn requests_waiting_together_share_one_batch_signature() {
        let ca = DevCa::new("Signer CA").unwrap();
        let issued = ca.issue("m", "Org", Usage::Sign, &[]).unwrap();
        let key = Arc::new(SigningKey::from_pkcs8(&issued.key_pkcs8, issued.cert_der.clone()).unwrap());
        let signer = BatchSigner::start(key);
        let bodies: Vec<Vec<u8>> = (0..20).map(|i| format!("<m>{i}</m>").into_bytes()).collect();
        // On this single-threaded runtime all twenty requests are queued before
        // the signing task runs, so they form one batch.
        let results = futures_join(
            bodies.iter().map(|b| signer.sign(vec![("/message.xml".into(), digest(b))], Some(b"ocsp".to_vec()))),
        )
        .await;
        let first = results[0].as_ref().unwrap().signature.clone();
        for (signed, body) in results.iter().zip(&bodies) {
            let signed = signed.as_ref().unwrap();
            assert_eq!(signed.signature, first, "one signature for the batch");
            let (result, chain) = signed.batch.as_ref().unwrap();
            xades::verify_batch(&signed.signature, result, chain, &[DataPart { uri: "/message.xml", bytes: body }])
                .unwrap();
        }
        // A lone request gets a plain signature.
        let lone = signer.sign(vec![("/message.xml".into(), digest(b"<one/>"))], None).await.unwrap();
        assert!(lone.batch.is_none());
        xades::verify(&lone.signature, &[DataPart { uri: "/message.xml", bytes: b"<one/>" }]).unwrap();
    }

    async fn futures_join<F: std::future::Future>(futures: impl Iterator<Item = F>) -> Vec<F::Output> {
        let mut set = Vec::new();
        for f in futures {
            set.push(Box::pin(f));
        }
        let mut out = Vec::new();
        // Poll all once so every request is queued, then collect in order.
        let mut pending: Vec<_> = set.into_iter().map(Some).collect();
        std::future::poll_fn(|cx| {
            for slot in pending.iter_mut().flatten() {
                let _ = slot.as_mut().poll(cx);
            }
            std::task::Poll::Ready(())
        })
        .await;
        for slot in pending.iter_mut() {
            if let Some(f) = slot.take() {
                out.push(f.await);
            }
        }
        out
    }
}
