//! `musubi-adapter`: run the adapter, simulate a home, or manage devices.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use clap::{Parser, Subcommand};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::rt::TokioIo;
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
    /// Manage devices through a running adapter's admin endpoint.
    Devices {
        /// The admin endpoint.
        #[arg(long, default_value = "http://127.0.0.1:8091")]
        admin: String,
        /// The file with the admin token (the adapter writes `admin-token` in its state directory).
        #[arg(long)]
        token_file: PathBuf,
        /// Who does this (recorded in the consent trail).
        #[arg(long, default_value = "cli")]
        operator: String,
        #[command(subcommand)]
        action: DeviceAction,
    },
}

#[derive(Subcommand)]
enum DeviceAction {
    /// List every device.
    List,
    /// Publish a device.
    Approve {
        /// Device id.
        id: String,
    },
    /// Stop publishing a device.
    Revoke {
        /// Device id.
        id: String,
    },
    /// Publish every device of a class known now.
    ApproveClass {
        /// Class name (homeAirConditioner) or code (0x0130).
        class: String,
    },
    /// Stop publishing every device of a class.
    RevokeClass {
        /// Class name or code.
        class: String,
    },
    /// Register a send-only device by hand.
    Add {
        /// Its address.
        #[arg(long)]
        address: String,
        /// Its EOJ (6 hex digits).
        #[arg(long)]
        eoj: String,
    },
    /// Remove a device.
    Remove {
        /// Device id.
        id: String,
    },
    /// Run a discovery round now.
    Discover,
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
                "adapter: provider endpoint http://{}/ (WSDL at ?wsdl), admin http://{}/",
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
        Command::Devices { admin, token_file, operator, action } => {
            let token = std::fs::read_to_string(&token_file)
                .with_context(|| format!("cannot read the admin token from {}", token_file.display()))?;
            let (method, path, body) = match action {
                DeviceAction::List => ("GET", "/devices".to_string(), None),
                DeviceAction::Approve { id } => ("POST", format!("/devices/{id}/approve"), None),
                DeviceAction::Revoke { id } => ("POST", format!("/devices/{id}/revoke"), None),
                DeviceAction::ApproveClass { class } => ("POST", format!("/classes/{class}/approve"), None),
                DeviceAction::RevokeClass { class } => ("POST", format!("/classes/{class}/revoke"), None),
                DeviceAction::Add { address, eoj } => (
                    "POST",
                    "/devices".to_string(),
                    Some(serde_json::json!({ "address": address, "eoj": eoj }).to_string()),
                ),
                DeviceAction::Remove { id } => ("DELETE", format!("/devices/{id}"), None),
                DeviceAction::Discover => ("POST", "/discover".to_string(), None),
            };
            let (status, text) = admin_call(&admin, token.trim(), &operator, method, &path, body).await?;
            println!("{text}");
            if status >= 300 {
                bail!("the adapter answered HTTP {status}");
            }
            Ok(())
        }
    }
}

async fn admin_call(
    base: &str,
    token: &str,
    operator: &str,
    method: &str,
    path: &str,
    body: Option<String>,
) -> Result<(u16, String)> {
    let uri: hyper::Uri = base.parse().with_context(|| format!("{base:?} is not a URL"))?;
    if uri.scheme_str() != Some("http") {
        bail!("the admin endpoint is plain http on loopback: {base:?}");
    }
    let host = uri.host().context("the admin URL has no host")?;
    let addr: SocketAddr = format!("{host}:{}", uri.port_u16().unwrap_or(80))
        .parse()
        .with_context(|| format!("{base:?} must name an IP address and port"))?;
    let tcp =
        tokio::net::TcpStream::connect(addr).await.with_context(|| format!("cannot reach the adapter at {addr}"))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await?;
    tokio::spawn(conn);
    let req = hyper::Request::builder()
        .method(method)
        .uri(path)
        .header("host", addr.to_string())
        .header("authorization", format!("Bearer {token}"))
        .header("x-operator", operator)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.unwrap_or_default())))?;
    let resp = sender.send_request(req).await?;
    let status = resp.status().as_u16();
    let bytes = Limited::new(resp.into_body(), 16 * 1024 * 1024)
        .collect()
        .await
        .map_err(|e| anyhow::anyhow!("reading the answer: {e}"))?
        .to_bytes();
    Ok((status, String::from_utf8_lossy(&bytes).into_owned()))
}
