//! `musubi-security-server --config FILE`: runs one security server until
//! Ctrl-C or SIGTERM, then finishes in-flight exchanges and closes the log.
//!
//! A server that is not set up yet (no owner, keys or certificates: see
//! `musubi init`) runs its admin API alone until the setup steps are done,
//! then starts serving.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Parser;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "musubi-security-server", version, about = "Musubi security server")]
struct Args {
    /// The server's configuration file (TOML).
    #[arg(long, default_value = "/etc/musubi/security-server.toml")]
    config: PathBuf,
}

async fn stop_signal() -> Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("installing SIGTERM handler")?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r.context("waiting for Ctrl-C")?,
        _ = term.recv() => {}
    }
    Ok(())
}

fn main() -> Result<()> {
    // Blocking threads do the spool's file reads and writes: a few suffice, and
    // each one costs a stack and an allocator heap.
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(16)
        .build()
        .context("starting the async runtime")?
        .block_on(run())
}

async fn run() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .init();
    let args = Args::parse();
    let base: toml::Table = musubi_security_server::conf::read_toml(&args.config)?;
    let node = musubi_security_server::setup::Node::new(base.clone())
        .with_context(|| format!("{} cannot be used", args.config.display()))?;
    let conf = if node.is_complete() {
        node.server_conf()?
    } else {
        let setup = musubi_security_server::start_setup(base)
            .await
            .with_context(|| format!("starting the admin API from {}", args.config.display()))?;
        eprintln!(
            "not set up yet: the admin API listens on https://{} (API key in {}, certificate {}); \
             run `musubi init` and the steps after it",
            setup.admin_addr,
            node.state_dir().join("admin/admin-api-key").display(),
            node.state_dir().join("admin/admin-tls.pem").display()
        );
        tokio::select! {
            _ = setup.wait_complete() => {}
            r = stop_signal() => {
                setup.shutdown().await;
                return r;
            }
        }
        let conf = setup.server_conf()?;
        setup.shutdown().await;
        conf
    };
    let handle = musubi_security_server::start(conf)
        .await
        .with_context(|| format!("starting the security server from {}", args.config.display()))?;
    stop_signal().await?;
    handle.shutdown().await;
    Ok(())
}
