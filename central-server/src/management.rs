//! The management service (PR-MSERV) on port 4001: a security server's
//! request is decoded ([`musubi_protocol::management`]), its proofs checked
//! against the registry's approved CAs, then recorded
//! ([`crate::requests`]). Checks, in order:
//!
//! 1. the request is for this instance and sent by the server's owner;
//! 2. both signatures verify over the SOAP part;
//! 3. the authentication certificate has a valid path to an approved CA and
//!    is the one being registered (`authCertReg`) or one already registered
//!    to that server (the other requests);
//! 4. the member's signing certificate has a valid path to an approved CA
//!    that may issue signing certificates, names the member as that CA's
//!    certificate profile says, and comes with a good, fresh OCSP response;
//! 5. the request makes sense against the registry (the member exists, the
//!    certificate is not someone else's, the client is or is not there).

use std::time::Duration;

use musubi_pki::verify::SignerProfile;
use musubi_protocol::management::{ManagementError, Request, Signed};
use musubi_protocol::sharedparams::{CaCert, CaEntry};

use crate::registry::Registry;
use crate::requests::Status;

fn refuse(code: &'static str, message: impl Into<String>) -> ManagementError {
    ManagementError { code, message: message.into() }
}

fn internal(e: impl std::fmt::Display) -> ManagementError {
    tracing::error!(error = %e, "management request not processed");
    refuse("internal_error", "the central server could not process the request; try again later")
}

/// The approved CA (and the level of it) whose path `cert` validates to.
fn path_of<'a>(
    cas: &'a [CaEntry],
    cert: &[u8],
    now: time::OffsetDateTime,
) -> Result<(&'a CaEntry, &'a CaCert), String> {
    let mut last = String::from("no approved CA");
    for ca in cas {
        let levels: Vec<&CaCert> = std::iter::once(&ca.top).chain(ca.intermediates.iter()).collect();
        let intermediates: Vec<&[u8]> = ca.intermediates.iter().map(|i| i.cert.as_slice()).collect();
        match musubi_pki::build_chain(cert, &intermediates, &[ca.top.cert.as_slice()], now) {
            Ok(chain) => {
                let issuer = chain.get(1).ok_or("the certificate is itself a CA certificate")?;
                let level = levels.into_iter().find(|l| &l.cert == issuer).unwrap_or(&ca.top);
                return Ok((ca, level));
            }
            Err(e) => last = e.to_string(),
        }
    }
    Err(last)
}

/// Verifies and records a management request; returns it with its id and status.
pub(crate) async fn receive(
    registry: &Registry,
    content_type: &str,
    body: &[u8],
) -> Result<(Signed, i64, Status), ManagementError> {
    let signed = musubi_protocol::management::decode(content_type, body)?;
    let request = &signed.request;
    let server = request.server();
    if server.owner().instance() != registry.instance() {
        return Err(refuse(
            "invalid_request",
            format!("{server} is not of instance {}; check the configuration anchor", registry.instance()),
        ));
    }
    if signed.sender != *server.owner() {
        return Err(refuse(
            "invalid_request",
            format!("the request is sent by {}, not by the server's owner {}", signed.sender, server.owner()),
        ));
    }
    signed.auth.verify(&signed.soap).map_err(|e| refuse(e.code, format!("authentication key: {}", e.message)))?;
    signed.member.verify(&signed.soap).map_err(|e| refuse(e.code, format!("member signature: {}", e.message)))?;

    let (params, _) = registry.snapshot("").await.map_err(internal)?;
    let now = time::OffsetDateTime::now_utc();
    // The authentication certificate.
    path_of(&params.cas, &signed.auth.cert, now)
        .map_err(|e| refuse("cert_validation", format!("authentication certificate: {e}")))?;
    match request {
        Request::AuthCertReg { auth_cert, .. } if *auth_cert != signed.auth.cert => {
            return Err(refuse(
                "invalid_request",
                "the request is not signed with the key of the certificate being registered",
            ));
        }
        Request::AuthCertReg { .. } => {}
        _ => {
            let owner = registry.server_of_auth_cert(&signed.auth.cert).await.map_err(internal)?;
            if owner.as_ref() != Some(server) {
                return Err(refuse(
                    "invalid_request",
                    format!("the request is not signed with an authentication key registered to {server}"),
                ));
            }
        }
    }
    // The member's signing certificate, by name and OCSP.
    let member = request.signing_member();
    let (ca, issuer) = path_of(&params.cas, &signed.member.cert, now)
        .map_err(|e| refuse("cert_validation", format!("signing certificate of {member}: {e}")))?;
    if ca.authentication_only {
        return Err(refuse(
            "incorrect_certificate",
            format!("CA {:?} issues authentication certificates only; sign with a signing certificate", ca.name),
        ));
    }
    let profile = match &ca.profile_info {
        None => SignerProfile::Default,
        Some(info) => SignerProfile::from_info(info).ok_or_else(|| {
            refuse("incorrect_certificate", format!("CA {:?} names an unknown certificate profile {info:?}", ca.name))
        })?,
    };
    musubi_pki::verify::check_signer(&signed.member.cert, &member, profile)
        .map_err(|e| refuse("incorrect_certificate", e.message))?;
    let responders: Vec<&[u8]> = issuer.ocsp.iter().filter_map(|o| o.cert.as_deref()).collect();
    let freshness = Duration::from_secs(params.ocsp_freshness_seconds.unwrap_or(3600));
    let ocsp = musubi_pki::ocsp::verify_response_with_responders(
        &signed.member_ocsp,
        &signed.member.cert,
        &issuer.cert,
        &responders,
        now,
        freshness,
    )
    .map_err(|e| refuse("cert_validation", format!("OCSP response of the signing certificate: {e}")))?;
    if ocsp.status != musubi_pki::ocsp::Status::Good {
        return Err(refuse("cert_validation", format!("the signing certificate of {member} is {:?}", ocsp.status)));
    }
    check_against_registry(registry, request).await?;
    let (id, status) = registry.submit(request).await.map_err(internal)?;
    tracing::info!(id, request = request.service_code(), %server, ?status, "management request received");
    Ok((signed, id, status))
}

async fn check_against_registry(registry: &Registry, request: &Request) -> Result<(), ManagementError> {
    let server = request.server();
    let bad = |m: String| refuse("invalid_request", m);
    if !registry.member_exists(server.owner()).await.map_err(internal)? {
        return Err(bad(format!("{} is not a member; the registration officer adds members first", server.owner())));
    }
    let exists = registry.server_exists(server).await.map_err(internal)?;
    match request {
        Request::AuthCertReg { auth_cert, .. } => {
            if let Some(other) = registry.server_of_auth_cert(auth_cert).await.map_err(internal)? {
                return Err(bad(format!("the authentication certificate is already registered to {other}")));
            }
        }
        Request::ClientReg { client, .. } => {
            if !exists {
                return Err(bad(format!("{server} is not registered; register its authentication certificate first")));
            }
            if !registry.member_exists(&client.member_id()).await.map_err(internal)? {
                return Err(bad(format!("{} is not a member", client.member_id())));
            }
            if registry.server_hosts(server, client).await.map_err(internal)? {
                return Err(bad(format!("{client} is already a client of {server}")));
            }
        }
        Request::ClientDeletion { client, .. } => {
            if !registry.server_hosts(server, client).await.map_err(internal)? {
                return Err(bad(format!("{client} is not a client of {server}")));
            }
        }
        Request::AuthCertDeletion { .. } | Request::AddressChange { .. } => {
            if !exists {
                return Err(bad(format!("{server} is not registered")));
            }
        }
    }
    Ok(())
}
