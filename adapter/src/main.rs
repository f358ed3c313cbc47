//! `musubi-adapter`: run the adapter, or simulate a home. Devices are managed
//! in its web UI or with `musubi devices` against its admin API.

use std::net::Ipv4Addr;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use musubi_adapter::simulate::{HomeConfig, NodeConfig};
use musubi_admin::conffile::Loaded;
use musubi_admin::service::Service;

#[derive(Parser)]
#[command(name = "musubi-adapter", about = "ECHONET Lite devices as X-Road services", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the adapter with a TOML configuration, until Ctrl-C or SIGTERM.
    Run {
        /// The configuration file.
        #[arg(long, default_value = "/etc/musubi/adapter.toml")]
        config: PathBuf,
    },
    /// Check a configuration file without starting: its TOML syntax and the
    /// name and type of every setting, with the environment's overrides
    /// (MUSUBI_ADAPTER_<SETTING>, MUSUBI_ADAPTER_<TABLE>__<SETTING>). Names the
    /// line at fault and exits 1 if the file is not valid.
    CheckConfig {
        /// The configuration file.
        #[arg(long, default_value = "/etc/musubi/adapter.toml")]
        config: PathBuf,
    },
    /// Run simulated ECHONET Lite nodes (a home on one machine), until Ctrl-C or SIGTERM.
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

/// The adapter's configuration file with the environment's overrides; a
/// fault is printed as `FILE:LINE:COLUMN: what` and the program exits 1.
fn load(path: &std::path::Path) -> Result<Loaded<musubi_adapter::AdapterConfig>> {
    musubi_admin::conffile::load(path, musubi_adapter::ENV_PREFIX, std::env::vars(), &[]).or_else(|e| {
        eprintln!("{e}");
        std::process::exit(1)
    })
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
            let mut service = Service::listen().context("listening for SIGTERM and Ctrl-C")?;
            let loaded = load(&config)?;
            for o in &loaded.overridden {
                tracing::info!("setting from the environment: {o}");
            }
            let h = musubi_adapter::start(loaded.value).await.context("cannot start the adapter")?;
            eprintln!(
                "adapter: provider endpoint http://{}/ (WSDL at ?wsdl), admin API and web UI https://{}/",
                h.provider_addr, h.admin_addr
            );
            service.ready("serving");
            service.stopping().await;
            h.shutdown();
            Ok(())
        }
        Command::CheckConfig { config } => {
            let loaded = load(&config)?;
            println!("{}", loaded.summary(&config));
            Ok(())
        }
        Command::Simulate { config, node, tick_secs, tcp } => {
            let mut service = Service::listen().context("listening for SIGTERM and Ctrl-C")?;
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
            service.ready("simulating");
            service.stopping().await;
            home.stop();
            Ok(())
        }
    }
}
