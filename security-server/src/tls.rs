//! TLS on port 5500: both sides present authentication certificates issued by
//! an approved CA, and each side accepts the other only if the certificate's
//! hash is registered for the expected security server. Peers are identified by
//! certificate, never by host name.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};

use crate::conf::{SharedTrust, Trust};

/// ring with the suites Musubi speaks on 5500: TLS 1.3 between Musubi nodes,
/// and for X-Road peers TLS 1.2 with ECDHE and AES-256-GCM only (X-Road's default
/// CBC suites are not implemented by rustls, on purpose; see DESIGN.md).
fn provider() -> Arc<CryptoProvider> {
    use rustls::crypto::ring::cipher_suite as cs;
    let mut p = rustls::crypto::ring::default_provider();
    p.cipher_suites = vec![
        cs::TLS13_AES_256_GCM_SHA384,
        cs::TLS13_AES_128_GCM_SHA256,
        cs::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
        cs::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
    ];
    Arc::new(p)
}

fn algorithms() -> WebPkiSupportedAlgorithms {
    rustls::crypto::ring::default_provider().signature_verification_algorithms
}

fn tls12(
    message: &[u8],
    cert: &CertificateDer<'_>,
    dss: &DigitallySignedStruct,
) -> Result<HandshakeSignatureValid, rustls::Error> {
    rustls::crypto::verify_tls12_signature(message, cert, dss, &algorithms())
}

fn tls13(
    message: &[u8],
    cert: &CertificateDer<'_>,
    dss: &DigitallySignedStruct,
) -> Result<HandshakeSignatureValid, rustls::Error> {
    rustls::crypto::verify_tls13_signature(message, cert, dss, &algorithms())
}

fn check_peer(
    trust: &Trust,
    cert: &CertificateDer<'_>,
    intermediates: &[CertificateDer<'_>],
    allowed: Option<&[String]>,
) -> Result<(), rustls::Error> {
    let now = time::OffsetDateTime::now_utc();
    let extra: Vec<&[u8]> = intermediates.iter().map(|c| c.as_ref()).collect();
    if trust.check_path(cert, &extra, now).is_err() {
        return Err(rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer));
    }
    let hash = musubi_pki::cert_hash(cert);
    let known = match allowed {
        Some(list) => list.iter().any(|h| h.eq_ignore_ascii_case(&hash)),
        None => trust.server_by_auth_hash(&hash).is_some(),
    };
    if known {
        Ok(())
    } else {
        Err(rustls::Error::InvalidCertificate(rustls::CertificateError::ApplicationVerificationFailure))
    }
}

/// Accepts TLS clients whose certificate is a registered authentication
/// certificate of some security server.
#[derive(Debug)]
struct PeerClientVerifier {
    trust: SharedTrust,
}

impl ClientCertVerifier for PeerClientVerifier {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }
    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        check_peer(&self.trust.get(), end_entity, intermediates, None)?;
        Ok(ClientCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        tls12(message, cert, dss)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        tls13(message, cert, dss)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        algorithms().supported_schemes()
    }
}

/// What a TLS client checks of the server's certificate (end entity,
/// intermediates); the handshake signatures are verified for every check.
type ServerCheck = dyn Fn(&CertificateDer<'_>, &[CertificateDer<'_>]) -> Result<(), rustls::Error> + Send + Sync;

struct ServerVerifier(Box<ServerCheck>);

impl std::fmt::Debug for ServerVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ServerVerifier")
    }
}

impl ServerCertVerifier for ServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        (self.0)(end_entity, intermediates)?;
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        tls12(message, cert, dss)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        tls13(message, cert, dss)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        algorithms().supported_schemes()
    }
}

/// The server side of 5500.
pub(crate) fn server_config(
    trust: SharedTrust,
    cert: CertificateDer<'static>,
    key: PrivateKeyDer<'static>,
) -> Result<rustls::ServerConfig, rustls::Error> {
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(Arc::new(PeerClientVerifier { trust }))
        .with_single_cert(vec![cert], key)?;
    musubi_admin::limit::bound_tls_sessions(&mut config);
    Ok(config)
}

/// The client side of 5500 towards a server whose auth certificate hashes are `allowed`.
pub(crate) fn client_config(
    trust: SharedTrust,
    allowed: Vec<String>,
    cert: CertificateDer<'static>,
    key: PrivateKeyDer<'static>,
) -> Result<rustls::ClientConfig, rustls::Error> {
    rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .dangerous()
        // Accepts a server only if its certificate is one of `allowed` hashes.
        .with_custom_certificate_verifier(Arc::new(ServerVerifier(Box::new(move |cert, intermediates| {
            check_peer(&trust.get(), cert, intermediates, Some(&allowed))
        }))))
        .with_client_auth_cert(vec![cert], key)
}

/// Where Debian keeps the system's trusted roots.
const SYSTEM_ROOTS: &str = "/etc/ssl/certs/ca-certificates.crt";

/// Largest roots file read.
const MAX_ROOTS_FILE: u64 = 4 * 1024 * 1024;

/// TLS towards https providers (X-Road's HTTPS connection to a service):
/// the server presents its internal TLS certificate; the provider's
/// certificate is checked against the system's roots and `provider_ca_file`
/// when the service says so (`ssl_verify`), else only encrypted to.
pub(crate) struct ProviderTls {
    /// For services with `ssl_verify`; none when no root could be loaded.
    pub(crate) verified: Option<Arc<rustls::ClientConfig>>,
    /// For services without.
    pub(crate) unverified: Arc<rustls::ClientConfig>,
}

impl ProviderTls {
    /// Builds both configurations; `extra_roots` is the operator's PEM file.
    pub(crate) fn new(
        extra_roots: Option<&std::path::Path>,
        cert: CertificateDer<'static>,
        key: PrivateKeyDer<'static>,
    ) -> Result<Self, String> {
        let mut roots = rustls::RootCertStore::empty();
        let system = std::path::Path::new(SYSTEM_ROOTS);
        for (path, required) in [(Some(system), false), (extra_roots, true)] {
            let Some(path) = path else { continue };
            match read_roots(path) {
                Ok(certs) => {
                    roots.add_parsable_certificates(certs);
                }
                Err(e) if required => return Err(e),
                Err(_) => {}
            }
        }
        let verified = if roots.is_empty() {
            None
        } else {
            let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider())
                .build()
                .map_err(|e| e.to_string())?;
            Some(Arc::new(
                rustls::ClientConfig::builder_with_provider(provider())
                    .with_safe_default_protocol_versions()
                    .map_err(|e| e.to_string())?
                    .with_webpki_verifier(verifier)
                    .with_client_auth_cert(vec![cert.clone()], key.clone_key())
                    .map_err(|e| e.to_string())?,
            ))
        };
        let unverified = Arc::new(
            rustls::ClientConfig::builder_with_provider(provider())
                .with_safe_default_protocol_versions()
                .map_err(|e| e.to_string())?
                .dangerous()
                // For providers whose certificate is not checked (`ssl_verify = false`, as
                // X-Road allows): the connection is encrypted to whoever holds the presented key.
                .with_custom_certificate_verifier(Arc::new(ServerVerifier(Box::new(|_, _| Ok(())))))
                .with_client_auth_cert(vec![cert], key)
                .map_err(|e| e.to_string())?,
        );
        Ok(Self { verified, unverified })
    }
}

fn read_roots(path: &std::path::Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if meta.len() > MAX_ROOTS_FILE {
        return Err(format!("{}: larger than {MAX_ROOTS_FILE} bytes", path.display()));
    }
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let certs: Vec<CertificateDer<'static>> = text
        .split("-----END CERTIFICATE-----")
        .filter_map(|block| musubi_pki::pem_decode("CERTIFICATE", &format!("{block}-----END CERTIFICATE-----")))
        .map(CertificateDer::from)
        .collect();
    if certs.is_empty() {
        return Err(format!("{}: holds no PEM certificate", path.display()));
    }
    Ok(certs)
}
