//! `musubi-adapter`: run the adapter, or simulate a home. Devices are managed
//! in its web UI or with `musubi devices` against its admin API.

use std::net::Ipv4Addr;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use musubi_adapter::simulate::{HomeConfig, NodeConfig};

#[derive(Parser)]
#[command(name = "musubi-adapter", about = "ECHONET Lite devices as X-Road services", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the adapter with a TOML configuration.
    Run {
        /// The configuration file.
        #[arg(long)]
        config: PathBuf,
    },
    /// Run simulated ECHONET Lite nodes (a home on one machine).
    Simulate {
        /// A TOML file describing the nodes.
        #[arg(long, conflicts_with = "node")]
        config: Option<PathBuf>,
        /// A node: ADDRESS=CLASS[,CLASS…], e.g. 127.0.0.20=homeAirConditioner,lvSmartElectricEnergyMeter.
        #[arg(long)]
        node: Vec<String>,
        /// Seconds between steps of the devices' dynamics.
        #[arg(long, default_value_t = 10)]
        tick_secs: u64,
        /// Also answer ECHONET Lite over TCP.
        #[arg(long)]
        tcp: bool,
    },
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let rt = tokio::runtime::Runtime::new().context("cannot start the runtime")?;
    rt.block_on(run(cli))
}

async fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Run { config } => {
            let text = std::fs::read_to_string(&config).with_context(|| format!("cannot read {}", config.display()))?;
            let conf: musubi_adapter::AdapterConfig = toml::from_str(&text)
                .with_context(|| format!("{} is not a valid adapter configuration", config.display()))?;
            let h = musubi_adapter::start(conf).await.context("cannot start the adapter")?;
            eprintln!(
                "adapter: provider endpoint http://{}/ (WSDL at ?wsdl), admin API and web UI https://{}/",
                h.provider_addr, h.admin_addr
            );
            tokio::signal::ctrl_c().await.ok();
            h.shutdown();
            Ok(())
        }
        Command::Simulate { config, node, tick_secs, tcp } => {
            let conf = match config {
                Some(path) => {
                    let text =
                        std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
                    toml::from_str(&text)
                        .with_context(|| format!("{} is not a valid home description", path.display()))?
                }
                None => {
                    if node.is_empty() {
                        bail!("name at least one node, e.g. --node 127.0.0.20=homeAirConditioner");
                    }
                    let mut nodes = Vec::new();
                    for n in &node {
                        let (addr, classes) =
                            n.split_once('=').with_context(|| format!("{n:?}: write ADDRESS=CLASS[,CLASS…]"))?;
                        let address: Ipv4Addr =
                            addr.parse().with_context(|| format!("{addr:?} is not an IPv4 address"))?;
                        nodes.push(NodeConfig { address, devices: classes.split(',').map(str::to_string).collect() });
                    }
                    HomeConfig {
                        nodes,
                        tick_secs,
                        max_answer_delay_ms: 500,
                        max_announce_delay_ms: 500,
                        port: musubi_adapter::net::PORT,
                        multicast_group: musubi_adapter::net::MULTICAST,
                        tcp,
                    }
                }
            };
            let home = musubi_adapter::simulate::start(&conf).await?;
            for (addr, n) in &home.nodes {
                let objs: Vec<String> =
                    n.lock().map(|n| n.objects.iter().map(|o| o.eoj.to_string()).collect()).unwrap_or_default();
                eprintln!("simulated node {addr}:{}: {}", conf.port, objs.join(" "));
            }
            tokio::signal::ctrl_c().await.ok();
            home.stop();
            Ok(())
        }
    }
}
