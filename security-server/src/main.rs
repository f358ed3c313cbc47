//! `musubi-security-server --config FILE`: runs one security server until
//! Ctrl-C or SIGTERM, then finishes in-flight exchanges and closes the log.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Parser;

#[derive(Parser)]
#[command(name = "musubi-security-server", version, about = "Musubi security server")]
struct Args {
    /// The server's configuration file (TOML).
    #[arg(long, default_value = "/etc/musubi/security-server.toml")]
    config: PathBuf,
}

#[tokio::main]
async fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .init();
    let args = Args::parse();
    let conf = musubi_security_server::conf::read_toml(&args.config)?;
    let handle = musubi_security_server::start(conf)
        .await
        .with_context(|| format!("starting the security server from {}", args.config.display()))?;
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("installing SIGTERM handler")?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r.context("waiting for Ctrl-C")?,
        _ = term.recv() => {}
    }
    handle.shutdown().await;
    Ok(())
}
