//! Management requests from this server to the central server (PR-MSERV):
//! registering its authentication certificate, registering and deleting
//! clients, changing its address. Each request is signed with this server's
//! authentication key and the member's signing key (with a fresh OCSP
//! response for it from this server's own cache) and posted over HTTPS to
//! the management service the global configuration names, which must
//! present exactly the TLS certificate published with it. The outcome
//! arrives with a later global configuration; [`send`] returns the request id.

use musubi_protocol::management::{self, Request, Signature, Signed};
use musubi_protocol::xades::Signer as _;
use rustls::pki_types::PrivateKeyDer;

use crate::proxy::State;

/// Why a management request was not accepted.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RegistrationError {
    /// This server cannot make the request.
    #[error("{0}")]
    NotPossible(String),
    /// The central server could not be reached or answered outside the protocol.
    #[error("management service {url}: {detail}")]
    Transport {
        /// Where.
        url: String,
        /// What failed.
        detail: String,
    },
    /// The central server refused the request.
    #[error("the central server refused the request: {0}")]
    Refused(String),
}

/// Largest answer read from the management service, bytes.
const MAX_ANSWER_BYTES: usize = 64 * 1024;

fn not_possible(m: impl Into<String>) -> RegistrationError {
    RegistrationError::NotPossible(m.into())
}

/// Signs and sends `request`; returns the central server's request id.
pub(crate) async fn send(state: &State, request: Request) -> Result<i64, RegistrationError> {
    let trust = state.trust.get();
    let service = trust.conf.management_service.clone().ok_or_else(|| {
        not_possible("the global configuration names no management service; is the server following a central server?")
    })?;
    let pinned = musubi_pki::pem_decode("CERTIFICATE", &service.cert)
        .ok_or_else(|| not_possible("the management service certificate in the global configuration is not PEM"))?;
    let member = request.signing_member();
    let keys = state.signing_keys();
    let (member_key, _) = keys.get(&member).ok_or_else(|| {
        not_possible(format!("this server holds no signing key of {member}; add its signing certificate first"))
    })?;
    let member_ocsp = state
        .ocsp
        .own_good(member_key.certificate_der())
        .map_err(|e| not_possible(format!("no good OCSP response for the signing certificate of {member} yet: {e}")))?;
    let auth = state.auth();
    let PrivateKeyDer::Pkcs8(auth_pkcs8) = &auth.1 else {
        return Err(not_possible("the authentication key is not PKCS#8"));
    };
    let auth_key = musubi_pki::SigningKey::from_pkcs8(auth_pkcs8.secret_pkcs8_der(), auth.0.to_vec())
        .map_err(|e| not_possible(format!("authentication key: {e}")))?;

    let id = format!("musubi-mgmt-{}", time::OffsetDateTime::now_utc().unix_timestamp_nanos());
    let soap = management::request_soap(&request, &id).map_err(|e| not_possible(e.message))?.into_bytes();
    let sign = |key: &musubi_pki::SigningKey| -> Result<Signature, RegistrationError> {
        let algorithm = management::algorithm_id(key.algorithm())
            .ok_or_else(|| not_possible(format!("key algorithm {} has no Java name", key.algorithm())))?;
        let value = key.sign(&soap).map_err(|e| not_possible(format!("cannot sign: {e}")))?;
        Ok(Signature { algorithm: algorithm.into(), value, cert: key.certificate_der().to_vec() })
    };
    let signed = Signed {
        auth: sign(&auth_key)?,
        member: sign(member_key)?,
        member_ocsp,
        id,
        sender: request.server().owner().clone(),
        request,
        soap: soap.clone(),
    };
    let (content_type, body) = management::encode(&signed);
    let answer = post(&service.url, pinned, &content_type, body).await?;
    management::parse_response(&answer).map_err(|e| RegistrationError::Refused(e.message))
}

/// One HTTPS POST of a management request to the management service at
/// `url`, accepting only the TLS certificate `pinned` (DER); returns the answer.
pub async fn post(url: &str, pinned: Vec<u8>, content_type: &str, body: Vec<u8>) -> Result<Vec<u8>, RegistrationError> {
    // PR-MSERV §2.3: the client MUST verify that the server uses the TLS
    // certificate that is given in the global configuration.
    let (_, answer) =
        musubi_admin::client::request(url, &pinned, "POST", &[("content-type", content_type)], body, MAX_ANSWER_BYTES)
            .await
            .map_err(|e| match e {
                musubi_admin::client::ClientError::Transport { url, detail } => {
                    RegistrationError::Transport { url, detail }
                }
                other => RegistrationError::Transport { url: url.to_string(), detail: other.to_string() },
            })?;
    Ok(answer.to_vec())
}
