//! The `musubi` command-line tool.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "musubi", version, about = "Musubi: an X-Road compatible data exchange node")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start a whole demo network on this machine (127.0.0.2-4, real ports).
    Demo {
        /// Folder for keys, configuration and logs (default: a new folder).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
}

#[tokio::main]
async fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .init();
    match Cli::parse().command {
        Command::Demo { dir } => demo(dir).await,
    }
}

async fn demo(dir: Option<PathBuf>) -> Result<()> {
    let dir = match dir {
        Some(d) => d,
        None => {
            let stamp =
                std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
            std::env::temp_dir().join(format!("musubi-demo-{stamp}"))
        }
    };
    let net = musubi::demo::Network::start(&dir, musubi::demo::Options::default())
        .await
        .with_context(|| format!("starting the demo network in {}", dir.display()))?;
    let f = &net.facts;
    println!();
    println!("Musubi demo network is running (folder {}):", dir.display());
    println!(
        "  consumer security server  client proxy {}  server proxy {}",
        net.consumer.client_proxy_addr, net.consumer.server_proxy_addr
    );
    println!(
        "  provider security server  client proxy {}  server proxy {}",
        net.provider.client_proxy_addr, net.provider.server_proxy_addr
    );
    println!("  provider information system  {}", f.provider_url);
    println!("  dev CA OCSP responder        {} (live OCSP: every certificate is checked)", f.ocsp_responder_url);
    println!("  dev time-stamping authority  {}", f.tsa_url);
    println!("  certificates: keys generated on each server, CSRs signed by the dev CA, imported");
    println!("  client   {}", f.client);
    println!("  service  {}", f.service);
    println!();
    println!("Call the service through the consumer's security server:");
    println!();
    println!(
        "  curl -s -H 'Content-Type: text/xml; charset=UTF-8' --data-binary @{} {}",
        f.request_file.display(),
        f.client_proxy_url
    );
    println!();
    println!("The same facts are in {}. Press Ctrl-C to stop.", dir.join("demo.json").display());
    tokio::signal::ctrl_c().await.context("waiting for Ctrl-C")?;
    println!("stopping…");
    net.shutdown().await;
    Ok(())
}
