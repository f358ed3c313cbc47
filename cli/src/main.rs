//! The `musubi` command-line tool.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

const EXIT_CODES: &str = "\
Exit codes: 0 done; 1 failed (a local file, a check that did not pass); 2 usage;
3 server unreachable (connection, TLS, pinned certificate); 4 not allowed (API key
unknown, or lacking the role); 5 not found; 6 refused (a field is wrong, or the
state does not allow it); 7 rate-limited, retry later; 8 the server failed.

The admin API is named by --server/--server-cert/--api-key-file, else
MUSUBI_SERVER/MUSUBI_SERVER_CERT/MUSUBI_API_KEY_FILE (or MUSUBI_API_KEY), else a
profile (--profile NAME or MUSUBI_PROFILE) of $MUSUBI_CONFIG or
~/.config/musubi/config.toml.";

#[derive(Parser)]
#[command(name = "musubi", version, about = "Musubi: an X-Road compatible data exchange node", after_help = EXIT_CODES)]
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
    /// Verify a message-log container (.asice) or archive file (.zip) offline; names the first check that fails.
    Verify(Box<VerifyArgs>),
    /// Initialise a security server: import the configuration anchor, name the
    /// owner member and server code, create the token with its PIN.
    Init {
        /// The central server's configuration anchor (XML).
        #[arg(long)]
        anchor: PathBuf,
        /// The owner member, e.g. MEMBER:DEMO/GOV/1001
        #[arg(long)]
        owner: String,
        /// The server code, e.g. ss1
        #[arg(long)]
        server_code: String,
        /// A file holding the token PIN (or set MUSUBI_TOKEN_PIN; never on the command line).
        #[arg(long)]
        pin_file: Option<PathBuf>,
        #[command(flatten)]
        endpoint: musubi::admin::Endpoint,
    },
    /// A security server's state: initialised, running, registered, clients.
    Status {
        #[command(flatten)]
        endpoint: musubi::admin::Endpoint,
    },
    /// Keys in a security server's token: generate, CSR, list.
    Keys {
        #[command(subcommand)]
        command: musubi::admin::KeysCommand,
        #[command(flatten)]
        endpoint: musubi::admin::Endpoint,
    },
    /// Certificates: import what the CA issued, register the authentication certificate.
    Certs {
        #[command(subcommand)]
        command: musubi::admin::CertsCommand,
        #[command(flatten)]
        endpoint: musubi::admin::Endpoint,
    },
    /// Tell the central server the security server's new address (peers use it at once).
    Address {
        /// The new address (host name or IP).
        address: String,
        #[command(flatten)]
        endpoint: musubi::admin::Endpoint,
    },
    /// A security server's clients: add, register, delete, list.
    Clients {
        #[command(subcommand)]
        command: musubi::admin::ClientsCommand,
        #[command(flatten)]
        endpoint: musubi::admin::Endpoint,
    },
    /// Service descriptions (WSDLs) of a client: add, list, enable, disable, delete.
    Service {
        #[command(subcommand)]
        command: musubi::admin::ServiceCommand,
        #[command(flatten)]
        endpoint: musubi::admin::Endpoint,
    },
    /// Access rights to services: grant, revoke, list.
    Access {
        #[command(subcommand)]
        command: musubi::admin::AccessCommand,
        #[command(flatten)]
        endpoint: musubi::admin::Endpoint,
    },
    /// Local groups of a client: list, add, delete, add-member, remove-member.
    Group {
        #[command(subcommand)]
        command: musubi::admin::GroupCommand,
        #[command(flatten)]
        endpoint: musubi::admin::Endpoint,
    },
    /// API keys of an admin API, with their roles: create, list, revoke.
    ApiKey {
        #[command(subcommand)]
        command: musubi::admin::ApiKeyCommand,
        #[command(flatten)]
        endpoint: musubi::admin::Endpoint,
    },
    /// The central server's global groups: add-member, remove-member.
    GlobalGroup {
        #[command(subcommand)]
        command: musubi::admin::GlobalGroupCommand,
        #[command(flatten)]
        endpoint: musubi::admin::Endpoint,
    },
    /// The central server's registration requests: list, approve, reject.
    Requests {
        #[command(subcommand)]
        command: musubi::admin::RequestsCommand,
        #[command(flatten)]
        endpoint: musubi::admin::Endpoint,
    },
    /// The central server's governance: member classes, members, subsystems,
    /// trusted CAs and TSAs, generating the global configuration, the anchor.
    Central {
        #[command(subcommand)]
        command: musubi::admin::CentralCommand,
        #[command(flatten)]
        endpoint: musubi::admin::Endpoint,
    },
    /// A test PKI for test networks, never for real ones: a CA with its OCSP
    /// responder (port 8888) and certificate issuing (8890), and a TSA (8899).
    DevPki {
        #[command(subcommand)]
        command: DevPkiCommand,
    },
    /// The ECHONET Lite adapter on the provider's security server: publish.
    Adapter {
        #[command(subcommand)]
        command: musubi::admin::AdapterCommand,
        #[command(flatten)]
        endpoint: musubi::admin::Endpoint,
    },
    /// The ECHONET Lite adapter's devices: list, approve (publish), revoke, add, remove, discover.
    /// --server is the adapter's admin API (https://127.0.0.1:8091 by default on its host).
    Devices {
        #[command(subcommand)]
        command: musubi::admin::DevicesCommand,
        #[command(flatten)]
        endpoint: musubi::admin::Endpoint,
    },
    /// Print a shell completion script: musubi completions bash > /etc/bash_completion.d/musubi
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Benchmark the secured exchange against a bare mTLS proxy chain (nginx) in
    /// one run: throughput, p50/p99 latency, CPU per 1000 exchanges and each
    /// server's peak memory for every payload at every concurrency.
    Bench {
        /// Folder for keys, configuration, message logs and nginx's files (default: a new folder).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Payloads: 1k, 100k, … in the SOAP body; att:10m as an attachment.
        #[arg(long, value_delimiter = ',', default_value = "1k,100k,att:10m")]
        payloads: Vec<String>,
        /// Concurrent connections of the load generator.
        #[arg(long, value_delimiter = ',', default_value = "1,16,64")]
        concurrency: Vec<usize>,
        /// Seconds each case sends requests (after one warm-up exchange per
        /// connection); the default takes in at least one time-stamping round
        /// (every 10 s in the benchmark's network).
        #[arg(long, default_value_t = 10.0)]
        duration: f64,
        /// Most requests of one case.
        #[arg(long, default_value_t = 2_000_000)]
        max_requests: usize,
        /// The security server binary (default: musubi-security-server beside this one).
        #[arg(long)]
        security_server_bin: Option<PathBuf>,
        /// The nginx binary.
        #[arg(long, default_value = "/usr/sbin/nginx")]
        nginx: PathBuf,
        /// Also write the Markdown report to this file.
        #[arg(long)]
        output: Option<PathBuf>,
        /// Also write every measurement as JSON to this file.
        #[arg(long)]
        json: Option<PathBuf>,
    },
    /// Start a whole demo network on this machine (127.0.0.2-4, real ports).
    Demo {
        /// Folder for keys, configuration and logs (default: a new folder).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
}

#[derive(clap::Subcommand)]
enum DevPkiCommand {
    /// Run it until SIGTERM or Ctrl-C; writes the CA's and the TSA's
    /// certificates (ca.pem, tsa.pem) to --dir and prints one JSON line when it serves.
    Serve {
        /// Where to write ca.pem and tsa.pem.
        #[arg(long)]
        dir: PathBuf,
        /// The address to listen on.
        #[arg(long)]
        listen: std::net::IpAddr,
    },
    /// Have it issue a certificate for a CSR.
    Issue {
        /// Its issuing URL, http://HOST:8890/.
        #[arg(long)]
        url: String,
        /// auth (a security server's TLS) or sign (a member's signatures).
        #[arg(long)]
        role: String,
        /// The CSR (PEM or DER), as `musubi keys csr` writes it.
        #[arg(long)]
        csr: PathBuf,
        /// Where to write the certificate (PEM).
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(clap::Args)]
struct VerifyArgs {
    /// The container or archive file.
    file: PathBuf,
    /// Take trusted CAs, OCSP responders and TSAs from this trust file (global-conf.toml).
    #[arg(long)]
    global_conf: Option<PathBuf>,
    /// Take the trust from an X-Road global configuration directory (each
    /// `INSTANCE/shared-params.xml`: approved CAs, OCSP responders, TSAs,
    /// `ocspFreshnessSeconds` of the directory's own instance).
    #[arg(long)]
    conf_dir: Option<PathBuf>,
    /// A trusted CA certificate (PEM); repeatable.
    #[arg(long)]
    ca: Vec<PathBuf>,
    /// An approved OCSP responder certificate (PEM); repeatable.
    #[arg(long)]
    ocsp: Vec<PathBuf>,
    /// An approved TSA certificate (PEM); repeatable.
    #[arg(long)]
    tsa: Vec<PathBuf>,
    /// How old an OCSP response may be at the time-stamp time, seconds
    /// (default 3600, or the trust file's or directory's value).
    #[arg(long)]
    ocsp_freshness: Option<u64>,
    /// For an archive file: the previous archive's last linking digest
    /// (omit for the first archive of a chain).
    #[arg(long)]
    previous: Option<String>,
    /// For an archive file: check only its linking chain (as X-Road's archive
    /// verifier does), not each container; needs no trust.
    #[arg(long)]
    links_only: bool,
    /// For a stand-alone signature or hash chain result: a file it covers or
    /// refers to, as URI=FILE (e.g. /message.xml=message.xml); repeatable.
    #[arg(long, value_name = "URI=FILE")]
    part: Vec<String>,
    /// For a batch signature: its hash chain result (sig-hashchainresult.xml).
    #[arg(long, requires = "hash_chain")]
    hash_chain_result: Option<PathBuf>,
    /// For a batch signature: its hash chain (sig-hashchain-N.xml).
    #[arg(long, requires = "hash_chain_result")]
    hash_chain: Option<PathBuf>,
    /// For a hash chain result: an input the chain must use, read from --part; repeatable.
    #[arg(long, value_name = "URI")]
    input: Vec<String>,
    /// For a hash chain result: an input given by its digest, as
    /// URI=sha256:HEX or URI=sha512:HEX; repeatable.
    #[arg(long, value_name = "URI=ALG:HEX")]
    input_digest: Vec<String>,
    /// For a stand-alone signature (it carries no time stamp): the time at which
    /// certificates and OCSP responses are checked (RFC 3339).
    #[arg(long)]
    at: Option<String>,
    /// For a stand-alone signature: the member that must have signed (e.g. EE/BUSINESS/consumer).
    #[arg(long)]
    signer: Option<String>,
    /// How signing certificates name their member: default (C, O, CN), fivrk
    /// (serialNumber INSTANCE/SERVER/CLASS, CN) or cn (CN only; the CA fixes the
    /// rest). Without it: each CA's certificateProfileInfo from --conf-dir, the
    /// default profile for --global-conf, and no name check for --ca alone.
    #[arg(long)]
    profile: Option<String>,
}

#[derive(Subcommand)]
enum LogCommand {
    /// Download the ASiC-E containers of a query: from the admin API (security
    /// officers and system administrators; every client's records), or with
    /// --url from a client proxy's /asic as an information system does (X-Road's
    /// export; that client's records only).
    Export {
        /// A security server's client proxy, e.g. http://127.0.0.2:8080 (else the admin API).
        #[arg(long)]
        url: Option<String>,
        /// The client whose query it was, e.g. SUBSYSTEM:DEMO/GOV/1001/care (needed with --url).
        #[arg(long)]
        client: Option<musubi_protocol::ClientId>,
        /// The query id.
        #[arg(long)]
        query_id: String,
        /// Folder for the containers.
        #[arg(long, default_value = ".")]
        out: PathBuf,
        #[command(flatten)]
        endpoint: musubi::admin::Endpoint,
    },
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .init();
    match run(Cli::parse()).await {
        Ok(()) => std::process::ExitCode::from(musubi::admin::exit::OK),
        Err(e) => {
            let (code, hint) = musubi::admin::exit_code(&e);
            eprintln!("error: {e:#}");
            if let Some(hint) = hint {
                eprintln!("hint: {hint}");
            }
            std::process::ExitCode::from(code)
        }
    }
}

async fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Completions { shell } => {
            use clap::CommandFactory as _;
            clap_complete::generate(shell, &mut Cli::command(), "musubi", &mut std::io::stdout());
            Ok(())
        }
        Command::Demo { dir } => demo(dir).await,
        Command::Bench {
            dir,
            payloads,
            concurrency,
            duration,
            max_requests,
            security_server_bin,
            nginx,
            output,
            json,
        } => {
            let server_bin = match security_server_bin {
                Some(b) => b,
                None => {
                    std::env::current_exe().context("where this program is")?.with_file_name("musubi-security-server")
                }
            };
            anyhow::ensure!(duration > 0.0 && duration <= 600.0, "--duration must be between 0 and 600 seconds");
            anyhow::ensure!(
                !concurrency.is_empty() && concurrency.iter().all(|&c| (1..=1024).contains(&c)),
                "--concurrency takes numbers from 1 to 1024"
            );
            let opts = musubi::bench::Options {
                dir: dir.unwrap_or_else(|| new_dir("musubi-bench")),
                payloads: payloads.iter().map(|p| musubi::bench::Payload::parse(p)).collect::<Result<_>>()?,
                concurrency,
                duration: std::time::Duration::from_secs_f64(duration),
                max_requests,
                server_bin,
                nginx,
            };
            let report = musubi::bench::run(&opts).await?;
            let command = std::env::args().collect::<Vec<_>>().join(" ");
            let text = report.markdown(&command);
            println!("{text}");
            if let Some(out) = output {
                std::fs::write(&out, &text).with_context(|| format!("cannot write {}", out.display()))?;
            }
            if let Some(out) = json {
                let value = serde_json::json!({ "report": report, "targets": report.targets() });
                std::fs::write(&out, serde_json::to_string_pretty(&value)?)
                    .with_context(|| format!("cannot write {}", out.display()))?;
            }
            Ok(())
        }
        Command::Log { command: LogCommand::Export { url, client, query_id, out, endpoint } } => match (url, client) {
            (Some(url), Some(client)) => export(&url, &client, &query_id, &out).await,
            (Some(_), None) => anyhow::bail!("--url needs --client: the client proxy exports one client's records"),
            (None, client) => musubi::admin::export_log(&endpoint, &query_id, client.as_ref(), &out).await,
        },
        Command::Verify(args) => verify(&args),
        Command::Init { anchor, owner, server_code, pin_file, endpoint } => {
            musubi::admin::init(&endpoint, &anchor, &owner, &server_code, pin_file.as_deref()).await
        }
        Command::Status { endpoint } => musubi::admin::status(&endpoint).await,
        Command::Keys { command, endpoint } => musubi::admin::keys(&endpoint, &command).await,
        Command::Certs { command, endpoint } => musubi::admin::certs(&endpoint, &command).await,
        Command::Clients { command, endpoint } => musubi::admin::clients(&endpoint, &command).await,
        Command::Address { address, endpoint } => musubi::admin::address(&endpoint, &address).await,
        Command::Service { command, endpoint } => musubi::admin::service(&endpoint, &command).await,
        Command::Access { command, endpoint } => musubi::admin::access(&endpoint, &command).await,
        Command::Group { command, endpoint } => musubi::admin::group(&endpoint, &command).await,
        Command::ApiKey { command, endpoint } => musubi::admin::api_key(&endpoint, &command).await,
        Command::Requests { command, endpoint } => musubi::admin::requests(&endpoint, &command).await,
        Command::Adapter { command, endpoint } => musubi::admin::adapter(&endpoint, &command).await,
        Command::Devices { command, endpoint } => musubi::admin::devices(&endpoint, &command).await,
        Command::GlobalGroup { command, endpoint } => musubi::admin::global_group(&endpoint, &command).await,
        Command::Central { command, endpoint } => musubi::admin::central(&endpoint, &command).await,
        Command::DevPki { command: DevPkiCommand::Serve { dir, listen } } => musubi::devpki::serve(&dir, listen).await,
        Command::DevPki { command: DevPkiCommand::Issue { url, role, csr, out } } => {
            musubi::devpki::issue(&url, &role, &csr, &out).await
        }
    }
}

/// A new folder name under the temporary directory.
fn new_dir(prefix: &str) -> PathBuf {
    let stamp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    std::env::temp_dir().join(format!("{prefix}-{stamp}"))
}

async fn demo(dir: Option<PathBuf>) -> Result<()> {
    let dir = dir.unwrap_or_else(|| new_dir("musubi-demo"));
    // The demo time-stamps each record before its response is released, so its
    // containers can be exported and verified at once.
    // Its servers register themselves with a central server (127.0.0.8) and
    // take their trust from its global configuration: no trust file.
    let options = musubi::demo::Options {
        timestamp_immediately: true,
        adapter: true,
        central: Some(musubi::demo::CentralOptions::default()),
        ..musubi::demo::Options::default()
    };
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
    if let Some((cs, conf)) = &net.central {
        println!(
            "  central server               global configuration {}  management service {}",
            cs.directory_url(),
            conf.management_url().unwrap_or_default()
        );
        println!(
            "  registration: each server registered its authentication certificate and client through the \
             central server (auto-approved); anchor {}",
            dir.join("anchor.xml").display()
        );
        println!(
            "  set up through the admin APIs  consumer https://{}  provider https://{}  central https://{}",
            net.consumer.admin_addr.map(|a| a.to_string()).unwrap_or_default(),
            net.provider.admin_addr.map(|a| a.to_string()).unwrap_or_default(),
            conf.admin_listen.map(|a| a.to_string()).unwrap_or_default()
        );
    }
    for ui in &f.web_ui {
        println!("  web UI ({:<8})            {}", ui.server, ui.url);
    }
    if let Some((user, password)) = &f.web_ui_login {
        println!(
            "  web UI login                 user {user}  password {password}  (every role; self-signed certificate)"
        );
    }
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
    if let Some(a) = &f.adapter {
        println!(
            "A simulated home ({}) is published by the ECHONET Lite adapter ({}, WSDL at ?wsdl).",
            a.home, a.provider_url
        );
        println!("Read the air conditioner's room temperature through both security servers:");
        println!();
        println!(
            "  curl -s -H 'Content-Type: text/xml; charset=UTF-8' --data-binary @{} {}",
            a.get_request_file.display(),
            f.client_proxy_url
        );
        println!();
        println!("Set its target temperature to 24 °C (the answer is the value read back from the device):");
        println!();
        println!(
            "  curl -s -H 'Content-Type: text/xml; charset=UTF-8' --data-binary @{} {}",
            a.set_request_file.display(),
            f.client_proxy_url
        );
        println!();
        if let (Some(addr), Some(_)) = (net.provider.admin_addr, &net.central) {
            let admin = dir.join("provider").join("state").join("admin");
            println!("The adapter's services were published on the provider's security server with one command;");
            println!("run it again after approving devices (it refreshes the WSDL and grants access):");
            println!();
            let provider = f.service.parse::<musubi_protocol::ServiceId>().map(|s| s.provider().to_string());
            println!(
                "  cargo run -p musubi -- adapter publish --client {} --adapter {} --grant {} \
                 --server https://{addr} --server-cert {} --api-key-file {}",
                provider.unwrap_or_default(),
                a.provider_url,
                f.client,
                admin.join("admin-tls.pem").display(),
                admin.join("admin-api-key").display()
            );
            println!();
        }
        println!("Devices wait for an operator's approval before they are published (the lock is not approved):");
        println!();
        println!(
            "  cargo run -p musubi -- devices list --server {} --server-cert {} --api-key-file {}",
            a.admin_url.trim_end_matches('/'),
            a.admin_dir.join("admin-tls.pem").display(),
            a.admin_dir.join("admin-api-key").display()
        );
        println!();
        println!("or in the adapter's web UI, {} (the demo user above).", a.admin_url);
        println!();
    }
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
    let container = export.join("demo-query-1-request.asice");
    match &net.central {
        // The global configuration the consumer's server downloaded.
        Some(_) => println!(
            "  cargo run -p musubi -- verify --conf-dir {} {}",
            dir.join("consumer").join("state").join("globalconf").display(),
            container.display()
        ),
        None => println!(
            "  cargo run -p musubi -- verify --global-conf {} {}",
            dir.join("global-conf.toml").display(),
            container.display()
        ),
    }
    println!();
    let admin = dir.join("consumer").join("state").join("admin");
    if let Some(addr) = net.consumer.admin_addr {
        println!("Look at the consumer's security server through its admin API:");
        println!();
        println!(
            "  cargo run -p musubi -- status --server https://{addr} --server-cert {} --api-key-file {}",
            admin.join("admin-tls.pem").display(),
            admin.join("admin-api-key").display()
        );
        println!();
    }
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

fn verify(args: &VerifyArgs) -> Result<()> {
    let VerifyArgs { file, global_conf, ca, ocsp, tsa, ocsp_freshness, previous, links_only, .. } = args;
    let (previous, links_only) = (previous.as_deref(), *links_only);
    let mut freshness = None;
    let mut conf = musubi_pki::verify::VerificationConf {
        cas: ca.iter().map(|p| read_pem_file(p)).collect::<Result<_>>()?,
        ocsp_responders: ocsp.iter().map(|p| read_pem_file(p)).collect::<Result<_>>()?,
        tsas: tsa.iter().map(|p| read_pem_file(p)).collect::<Result<_>>()?,
        ocsp_freshness: std::time::Duration::from_secs(3600),
        profiles: vec![],
    };
    if let Some(dir) = &args.conf_dir {
        freshness = read_conf_dir(dir, &mut conf)?;
    }
    if let Some(path) = global_conf {
        let global: musubi_security_server::conf::GlobalConf = musubi_security_server::conf::read_toml(path)?;
        let pem =
            |p: &str| musubi_pki::pem_decode("CERTIFICATE", p).context("a certificate in the trust file is not PEM");
        for c in &global.approved_cas {
            let ca = pem(&c.cert)?;
            conf.profiles.push((ca.clone(), musubi_pki::verify::SignerProfile::Default));
            conf.cas.push(ca);
            for o in c.ocsp.iter().filter_map(|o| o.cert.as_deref()) {
                conf.ocsp_responders.push(pem(o)?);
            }
        }
        for t in &global.approved_tsas {
            conf.tsas.push(pem(&t.cert)?);
        }
        freshness = Some(global.ocsp_freshness_seconds);
    }
    conf.ocsp_freshness = std::time::Duration::from_secs(ocsp_freshness.or(freshness).unwrap_or(3600));
    if let Some(p) = &args.profile {
        let profile = match p.as_str() {
            "default" => musubi_pki::verify::SignerProfile::Default,
            "fivrk" => musubi_pki::verify::SignerProfile::FiVrk,
            "cn" => musubi_pki::verify::SignerProfile::CommonName,
            other => anyhow::bail!("--profile {other:?}: use default, fivrk or cn"),
        };
        conf.profiles = conf.cas.iter().map(|ca| (ca.clone(), profile)).collect();
    }
    let bytes = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    if !args.part.is_empty() || !args.input.is_empty() || !args.input_digest.is_empty() {
        return verify_document(args, &bytes, &conf);
    }
    let limits = musubi_protocol::asic::Limits::default();
    // An archive file (a zip with linkinginfo, or with containers and no
    // mimetype): check its link to the previous archive, then every container.
    let archive = musubi_protocol::asic::read_zip(&bytes, &limits).ok().filter(|files| {
        files.iter().any(|(n, _)| n == "linkinginfo")
            || (!files.iter().any(|(n, _)| n == "mimetype") && files.iter().any(|(n, _)| n.ends_with(".asice")))
    });
    anyhow::ensure!(
        links_only || (!conf.cas.is_empty() && !conf.tsas.is_empty()),
        "give the trust: --conf-dir DIR, --global-conf FILE, or --ca and --tsa (and --ocsp)"
    );
    anyhow::ensure!(
        archive.is_some() || !links_only,
        "--links-only is for archive files; {} is not one",
        file.display()
    );
    if let Some(files) = archive {
        let last = match musubi_protocol::asic::verify_archive(&bytes, previous, &limits) {
            Ok(d) => d,
            Err(e) => {
                println!("invalid: {}: {}: {}", file.display(), e.code, e.message);
                std::process::exit(1);
            }
        };
        let containers = files.iter().filter(|(n, _)| n.ends_with(".asice"));
        if links_only {
            println!(
                "valid: {} (linking chain of {} containers); last linking digest {last}",
                file.display(),
                containers.count()
            );
            return Ok(());
        }
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

/// Adds the trust of an X-Road global configuration directory to `conf`;
/// returns the `ocspFreshnessSeconds` of the directory's own instance.
fn read_conf_dir(dir: &std::path::Path, conf: &mut musubi_pki::verify::VerificationConf) -> Result<Option<u64>> {
    // A security server's download folder: the generation in force.
    let in_force = musubi_security_server::confclient::in_force_dir(dir);
    let dir = in_force.as_deref().unwrap_or(dir);
    let own = std::fs::read_to_string(dir.join("instance-identifier")).ok().map(|s| s.trim().to_owned());
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read the configuration directory {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path().join("shared-params.xml")))
        .filter(|p| p.is_file())
        .collect();
    entries.sort();
    anyhow::ensure!(!entries.is_empty(), "{} holds no INSTANCE/shared-params.xml", dir.display());
    let mut freshness = None;
    for path in entries {
        let trust = musubi_protocol::sharedparams::read_trust(&read_limited(&path)?)
            .with_context(|| format!("{} cannot be used", path.display()))?;
        if own.as_deref() == Some(trust.instance.as_str()) || (own.is_none() && freshness.is_none()) {
            freshness = trust.ocsp_freshness_seconds;
        }
        for (ca, info) in trust.profiles {
            if let Some(profile) = musubi_pki::verify::SignerProfile::from_info(&info) {
                conf.profiles.push((ca, profile));
            }
        }
        conf.cas.extend(trust.cas);
        conf.ocsp_responders.extend(trust.ocsp_responders);
        conf.tsas.extend(trust.tsas);
    }
    Ok(freshness)
}

/// Largest file `--part`, `--hash-chain` or `--hash-chain-result` reads, bytes.
const MAX_PART_BYTES: u64 = 64 * 1024 * 1024;

fn read_limited(path: &std::path::Path) -> Result<Vec<u8>> {
    let len = std::fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?.len();
    anyhow::ensure!(len <= MAX_PART_BYTES, "{} is larger than {MAX_PART_BYTES} bytes", path.display());
    std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
}

/// The local name of an XML document's root element, if it has one.
fn root_name(bytes: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(bytes.get(..bytes.len().min(64 * 1024))?);
    let mut rest = text.as_ref();
    loop {
        let at = rest.find('<')?;
        rest = &rest[at + 1..];
        if !rest.starts_with('?') && !rest.starts_with('!') {
            let name: String = rest.chars().take_while(|c| !c.is_whitespace() && *c != '>' && *c != '/').collect();
            return Some(name.rsplit(':').next().unwrap_or_default().to_owned());
        }
    }
}

/// `musubi verify` on a stand-alone signature document or hash chain result.
fn verify_document(args: &VerifyArgs, bytes: &[u8], conf: &musubi_pki::verify::VerificationConf) -> Result<()> {
    use musubi_protocol::hashchain::{self, Input};
    use musubi_protocol::xades::DataPart;
    let mut parts: Vec<(String, Vec<u8>)> = Vec::new();
    for p in &args.part {
        let (uri, path) = p.split_once('=').with_context(|| format!("--part {p:?} is not URI=FILE"))?;
        parts.push((uri.to_owned(), read_limited(std::path::Path::new(path))?));
    }
    let file = args.file.display();
    let report = |r: Result<String, (String, String)>| match r {
        Ok(what) => {
            println!("valid: {file}: {what}");
            Ok(())
        }
        Err((code, message)) => {
            println!("invalid: {file}: {code}: {message}");
            std::process::exit(1);
        }
    };
    if root_name(bytes).as_deref() == Some("HashChainResult") {
        let mut inputs: Vec<Input<'_>> = args.input.iter().map(|uri| Input { uri, digest: None }).collect();
        for d in &args.input_digest {
            let (uri, value) = d.split_once('=').with_context(|| format!("--input-digest {d:?} is not URI=ALG:HEX"))?;
            let (alg, hex) = value.split_once(':').with_context(|| format!("--input-digest {d:?} has no ALG:"))?;
            let alg = match alg {
                "sha256" => "http://www.w3.org/2001/04/xmlenc#sha256",
                "sha512" => "http://www.w3.org/2001/04/xmlenc#sha512",
                other => anyhow::bail!("--input-digest: digest algorithm {other:?} is not sha256 or sha512"),
            };
            inputs.push(Input { uri, digest: Some((alg, decode_hex(hex)?)) });
        }
        anyhow::ensure!(!inputs.is_empty(), "a hash chain result needs --input or --input-digest");
        let resolve = |uri: &str| parts.iter().find(|(u, _)| u == uri).map(|(_, b)| b.clone());
        return report(
            hashchain::verify(bytes, &resolve, &inputs)
                .map(|()| format!("the hash chain links {} input(s) to the result", inputs.len()))
                .map_err(|e| (e.code.0.to_owned(), e.message)),
        );
    }
    anyhow::ensure!(!conf.cas.is_empty(), "give the trust: --conf-dir DIR, --global-conf FILE, or --ca (and --ocsp)");
    let at = args.at.as_deref().context("a stand-alone signature carries no time stamp: give --at TIME")?;
    let at = time::OffsetDateTime::parse(at, &time::format_description::well_known::Rfc3339)
        .with_context(|| format!("--at {at:?} is not an RFC 3339 time"))?;
    let signer = match &args.signer {
        Some(s) => Some(parse_member(s)?),
        None => None,
    };
    let batch = match (&args.hash_chain_result, &args.hash_chain) {
        (Some(r), Some(c)) => Some((read_limited(r)?, read_limited(c)?)),
        _ => None,
    };
    let data: Vec<DataPart<'_>> = parts.iter().map(|(uri, b)| DataPart { uri, bytes: b }).collect();
    let signed = musubi_pki::verify::Signed {
        signature: bytes,
        parts: &data,
        batch: batch.as_ref().map(|(r, c)| (r.as_slice(), c.as_slice())),
    };
    report(
        musubi_pki::verify::verify_signature(&signed, conf, at, signer.as_ref())
            .map(|cert| format!("signed by {}, checked at {at}", x509_subject(&cert)))
            .map_err(|e| (e.code, e.message)),
    )
}

/// A member identifier written INSTANCE/CLASS/CODE.
fn parse_member(s: &str) -> Result<musubi_protocol::ClientId> {
    let f: Vec<&str> = s.split('/').collect();
    let [instance, class, code] = f[..] else { anyhow::bail!("--signer {s:?} is not INSTANCE/CLASS/CODE") };
    musubi_protocol::ClientId::member(instance, class, code).map_err(|e| anyhow::anyhow!("--signer {s:?}: {e}"))
}

fn decode_hex(hex: &str) -> Result<Vec<u8>> {
    anyhow::ensure!(hex.len().is_multiple_of(2) && hex.bytes().all(|b| b.is_ascii_hexdigit()), "{hex:?} is not hex");
    Ok((0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap_or_default()).collect())
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
    let base = url.trim_end_matches('/');
    let (status, body) =
        musubi::http_plain(&format!("{base}{path}"), hyper::Method::GET, Vec::new(), 512 * 1024 * 1024).await?;
    anyhow::ensure!(status.is_success(), "the security server answered {status}: {}", String::from_utf8_lossy(&body));
    musubi::admin::unpack_containers(&body, out)
}
