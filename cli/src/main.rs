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
    /// Message-log commands.
    Log {
        #[command(subcommand)]
        command: LogCommand,
    },
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
        /// For an archive file: the previous archive's last linking digest
        /// (omit for the first archive of a chain).
        #[arg(long)]
        previous: Option<String>,
    },
    /// Start a whole demo network on this machine (127.0.0.2-4, real ports).
    Demo {
        /// Folder for keys, configuration and logs (default: a new folder).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum LogCommand {
    /// Download the ASiC-E containers of a query from a security server (X-Road's /asic).
    Export {
        /// The security server's client proxy, e.g. http://127.0.0.2:8080
        #[arg(long)]
        url: String,
        /// The client whose query it was, e.g. SUBSYSTEM:DEMO/GOV/1001/care
        #[arg(long)]
        client: musubi_protocol::ClientId,
        /// The query id.
        #[arg(long)]
        query_id: String,
        /// Folder for the containers.
        #[arg(long, default_value = ".")]
        out: PathBuf,
    },
}

#[tokio::main]
async fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .init();
    match Cli::parse().command {
        Command::Demo { dir } => demo(dir).await,
        Command::Log { command: LogCommand::Export { url, client, query_id, out } } => {
            export(&url, &client, &query_id, &out).await
        }
        Command::Verify { file, global_conf, ca, ocsp, tsa, ocsp_freshness, previous } => {
            verify(&file, global_conf.as_deref(), &ca, &ocsp, &tsa, ocsp_freshness, previous.as_deref())
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
    // The demo time-stamps each record before its response is released, so its
    // containers can be exported and verified at once.
    let options = musubi::demo::Options { timestamp_immediately: true, ..musubi::demo::Options::default() };
    let net = musubi::demo::Network::start(&dir, options)
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
    println!("Then export the message-log containers of that request and verify them offline");
    println!("(the demo time-stamps every record before it answers):");
    println!();
    let export = dir.join("export");
    println!(
        "  cargo run -p musubi -- log export --url {} --client {} --query-id demo-query-1 --out {}",
        f.client_proxy_url.trim_end_matches('/'),
        f.client,
        export.display()
    );
    println!(
        "  cargo run -p musubi -- verify --global-conf {} {}",
        dir.join("global-conf.toml").display(),
        export.join("demo-query-1-request.asice").display()
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
    previous: Option<&str>,
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
    let limits = musubi_protocol::asic::Limits::default();
    // An archive file: check its link to the previous archive, then every container.
    let archive = musubi_protocol::asic::read_zip(&bytes, &limits)
        .ok()
        .filter(|files| files.iter().any(|(n, _)| n == "linkinginfo"));
    if let Some(files) = archive {
        let last = match musubi_protocol::asic::verify_archive(&bytes, previous, &limits) {
            Ok(d) => d,
            Err(e) => {
                println!("invalid: {}: {}: {}", file.display(), e.code, e.message);
                std::process::exit(1);
            }
        };
        for (name, container) in files.iter().filter(|(n, _)| n.ends_with(".asice")) {
            if let Err(e) = musubi_pki::verify::verify_container(container, &conf) {
                println!("invalid: {}: {name}: {}: {}", file.display(), e.code, e.message);
                std::process::exit(1);
            }
        }
        println!("valid: {} ({} containers); last linking digest {last}", file.display(), files.len() - 1);
        return Ok(());
    }
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

fn query_escape(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

async fn export(url: &str, client: &musubi_protocol::ClientId, query_id: &str, out: &std::path::Path) -> Result<()> {
    use http_body_util::BodyExt;
    let base: hyper::Uri = url.parse().with_context(|| format!("{url:?} is not a URL"))?;
    let authority = base.authority().context("the URL has no host")?.to_string();
    let mut path = format!(
        "/asic?queryId={}&xRoadInstance={}&memberClass={}&memberCode={}",
        query_escape(query_id),
        query_escape(client.instance()),
        query_escape(client.member_class()),
        query_escape(client.member_code())
    );
    if let Some(sub) = client.subsystem_code() {
        path.push_str(&format!("&subsystemCode={}", query_escape(sub)));
    }
    let tcp =
        tokio::net::TcpStream::connect(&authority).await.with_context(|| format!("cannot connect to {authority}"))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tcp)).await?;
    tokio::spawn(conn);
    let req =
        hyper::Request::get(path).header("host", &authority).body(http_body_util::Full::new(bytes::Bytes::new()))?;
    let resp = sender.send_request(req).await?;
    let status = resp.status();
    let body = http_body_util::Limited::new(resp.into_body(), 512 * 1024 * 1024)
        .collect()
        .await
        .map_err(|e| anyhow::anyhow!("reading the answer: {e}"))?
        .to_bytes();
    anyhow::ensure!(status.is_success(), "the security server answered {status}: {}", String::from_utf8_lossy(&body));
    let files = musubi_protocol::asic::read_zip(&body, &musubi_protocol::asic::Limits::default())?;
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    for (name, bytes) in files {
        let path = out.join(&name);
        std::fs::write(&path, bytes).with_context(|| format!("cannot write {}", path.display()))?;
        println!("{}", path.display());
    }
    Ok(())
}
