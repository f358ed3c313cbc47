//! The health check for load balancers (X-Road's health-check interface,
//! port 5588 there): `200 OK` when the authentication certificate has a good
//! fresh OCSP response, the server configuration database answers, the
//! global configuration is valid and the server is registered; `500` with
//! the first problem otherwise; `503` while the central server has the
//! server in maintenance mode.

use crate::proxy::State;

/// The status code and text of one health check.
pub(crate) async fn check(state: &State) -> (u16, String) {
    let trust = state.trust.get();
    if let Some(message) = trust.server(&state.conf.server_id).and_then(|me| me.maintenance.clone()) {
        return (503, format!("in maintenance mode: {message}"));
    }
    if let Err(e) = state.globalconf.check() {
        return (500, format!("global configuration: {e}"));
    }
    let auth = state.auth();
    let own = musubi_pki::cert_hash(&auth.0);
    let registered = trust
        .server(&state.conf.server_id)
        .is_some_and(|me| me.auth_cert_hashes.iter().any(|h| h.eq_ignore_ascii_case(&own)));
    if !registered {
        return (500, "the authentication certificate is not registered in the global configuration".into());
    }
    if let Err(e) = state.ocsp.own_good(&auth.0) {
        return (500, format!("authentication certificate: {e}"));
    }
    if let Err(e) = state.log.unstamped_count().await {
        return (500, format!("server database: {e}"));
    }
    (200, "OK".into())
}
