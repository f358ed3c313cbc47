//! `musubi dev-pki`: a test PKI for test networks that span several hosts (a
//! CA with its OCSP responder and certificate issuing, and a time-stamping
//! authority), as the demo runs in-process. It signs whatever CSR it is sent:
//! never use it for a real network.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result};

/// The ports the test PKI listens on: OCSP, certificate issuing, TSA.
pub const PORTS: (u16, u16, u16) = (8888, 8890, 8899);

/// Runs the test PKI on `ip` until SIGTERM or Ctrl-C: a new CA and TSA whose
/// certificates are written to `dir/ca.pem` and `dir/tsa.pem`; then prints one
/// JSON line naming the files and URLs (the sign that it serves).
pub async fn serve(dir: &Path, ip: IpAddr) -> Result<()> {
    let mut service = musubi_admin::service::Service::listen().context("listening for SIGTERM and Ctrl-C")?;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot make {}", dir.display()))?;
    let ca = Arc::new(musubi_pki::DevCa::new("Musubi test CA").context("making the test CA")?);
    let tsa = Arc::new(musubi_pki::DevTsa::new(&ca, "Musubi test TSA").context("making the test TSA")?);
    let bind = |port| SocketAddr::new(ip, port);
    let (ocsp, _ocsp_stop) = musubi_pki::http::start_ocsp_responder(ca.clone(), bind(PORTS.0))
        .await
        .with_context(|| format!("cannot listen on {}", bind(PORTS.0)))?;
    let (issue, _issue_stop) = musubi_pki::http::start_issuer(ca.clone(), bind(PORTS.1))
        .await
        .with_context(|| format!("cannot listen on {}", bind(PORTS.1)))?;
    let (tsa_addr, _tsa_stop) = musubi_pki::http::start_tsa(tsa.clone(), bind(PORTS.2))
        .await
        .with_context(|| format!("cannot listen on {}", bind(PORTS.2)))?;
    let ca_file = dir.join("ca.pem");
    let tsa_file = dir.join("tsa.pem");
    std::fs::write(&ca_file, musubi_pki::pem("CERTIFICATE", ca.cert_der()))
        .with_context(|| format!("cannot write {}", ca_file.display()))?;
    std::fs::write(&tsa_file, musubi_pki::pem("CERTIFICATE", tsa.cert_der()))
        .with_context(|| format!("cannot write {}", tsa_file.display()))?;
    println!(
        "{}",
        serde_json::json!({
            "ca": ca_file, "tsa": tsa_file,
            "ocsp_url": format!("http://{ocsp}/"), "tsa_url": format!("http://{tsa_addr}/"),
            "issue_url": format!("http://{issue}/"),
        })
    );
    service.ready("serving");
    service.stopping().await;
    Ok(())
}

/// Sends the CSR in `csr` to the test PKI at `url` for a certificate of
/// `role` (auth or sign) and writes it (PEM) to `out`.
pub async fn issue(url: &str, role: &str, csr: &Path, out: &Path) -> Result<()> {
    anyhow::ensure!(matches!(role, "auth" | "sign"), "--role is auth or sign, not {role:?}");
    let body = std::fs::read(csr).with_context(|| format!("cannot read {}", csr.display()))?;
    anyhow::ensure!(body.len() <= 16 * 1024, "{} is larger than a CSR (16 KiB)", csr.display());
    let target = format!("{}/{role}", url.trim_end_matches('/'));
    let (status, cert) = crate::http_plain(&target, hyper::Method::POST, body, 64 * 1024).await?;
    anyhow::ensure!(status.is_success(), "the test PKI answered {status}: {}", String::from_utf8_lossy(&cert));
    std::fs::write(out, &cert).with_context(|| format!("cannot write {}", out.display()))?;
    Ok(())
}
