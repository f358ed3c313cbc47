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
    /// Verify a message-log container (.asice) offline; names the first check that fails.
    Verify {
        /// The container.
        file: PathBuf,
        /// Take trusted CAs, OCSP responders and TSAs from this trust file (global-conf.toml).
        #[arg(long)]
        global_conf: Option<PathBuf>,
        /// A trusted CA certificate (PEM); repeatable.
        #[arg(long)]
        ca: Vec<PathBuf>,
        /// An approved OCSP responder certificate (PEM); repeatable.
        #[arg(long)]
        ocsp: Vec<PathBuf>,
        /// An approved TSA certificate (PEM); repeatable.
        #[arg(long)]
        tsa: Vec<PathBuf>,
        /// How old an OCSP response may be at the time-stamp time, seconds.
        #[arg(long, default_value_t = 3600)]
        ocsp_freshness: u64,
    },
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
        Command::Verify { file, global_conf, ca, ocsp, tsa, ocsp_freshness } => {
            verify(&file, global_conf.as_deref(), &ca, &ocsp, &tsa, ocsp_freshness)
        }
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

fn read_pem_file(path: &std::path::Path) -> Result<Vec<u8>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    musubi_pki::pem_decode("CERTIFICATE", &text)
        .with_context(|| format!("{} holds no CERTIFICATE PEM block", path.display()))
}

fn verify(
    file: &std::path::Path,
    global_conf: Option<&std::path::Path>,
    ca: &[PathBuf],
    ocsp: &[PathBuf],
    tsa: &[PathBuf],
    ocsp_freshness: u64,
) -> Result<()> {
    let mut conf = musubi_pki::verify::VerificationConf {
        cas: ca.iter().map(|p| read_pem_file(p)).collect::<Result<_>>()?,
        ocsp_responders: ocsp.iter().map(|p| read_pem_file(p)).collect::<Result<_>>()?,
        tsas: tsa.iter().map(|p| read_pem_file(p)).collect::<Result<_>>()?,
        ocsp_freshness: std::time::Duration::from_secs(ocsp_freshness),
    };
    if let Some(path) = global_conf {
        let global: musubi_security_server::conf::GlobalConf = musubi_security_server::conf::read_toml(path)?;
        let pem =
            |p: &str| musubi_pki::pem_decode("CERTIFICATE", p).context("a certificate in the trust file is not PEM");
        for c in &global.approved_cas {
            conf.cas.push(pem(&c.cert)?);
            for o in c.ocsp.iter().filter_map(|o| o.cert.as_deref()) {
                conf.ocsp_responders.push(pem(o)?);
            }
        }
        for t in &global.approved_tsas {
            conf.tsas.push(pem(&t.cert)?);
        }
        conf.ocsp_freshness = std::time::Duration::from_secs(global.ocsp_freshness_seconds);
    }
    anyhow::ensure!(
        !conf.cas.is_empty() && !conf.tsas.is_empty(),
        "give the trust: --global-conf FILE, or --ca and --tsa (and --ocsp)"
    );
    let bytes = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    match musubi_pki::verify::verify_container(&bytes, &conf) {
        Ok(v) => {
            let signer = x509_subject(&v.signer_cert);
            println!("valid: {} signed by {signer}, time-stamped at {}", file.display(), v.time_stamped_at);
            Ok(())
        }
        Err(e) => {
            println!("invalid: {}: {}: {}", file.display(), e.code, e.message);
            std::process::exit(1);
        }
    }
}

fn x509_subject(der: &[u8]) -> String {
    musubi_pki::subject_of(der).unwrap_or_else(|| "an unreadable certificate".into())
}
