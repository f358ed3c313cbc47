//! `musubi-central-server --config FILE`: runs the central server until
//! Ctrl-C or SIGTERM. `musubi-central-server check-config --config FILE`
//! checks the file only.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use musubi_admin::service::Service;
use musubi_central_server::{CentralConf, ENV_PREFIX};

#[derive(Parser)]
#[command(name = "musubi-central-server", version, about = "Musubi central server")]
struct Args {
    /// The configuration file (TOML).
    #[arg(long, global = true, default_value = "/etc/musubi/central-server.toml")]
    config: PathBuf,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(clap::Subcommand)]
enum Command {
    /// Checks the configuration file without starting: its TOML syntax and the
    /// name and type of every setting, with the environment's overrides. Names
    /// the line at fault and exits 1 if the file is not valid.
    CheckConfig,
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let loaded = match musubi_admin::conffile::load::<CentralConf>(&args.config, ENV_PREFIX, std::env::vars(), &[]) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(Command::CheckConfig) = args.command {
        println!("{}", loaded.summary(&args.config));
        return ExitCode::SUCCESS;
    }
    for o in &loaded.overridden {
        tracing::info!("setting from the environment: {o}");
    }
    let run = async {
        let mut service = Service::listen().map_err(|e| format!("listening for SIGTERM: {e}"))?;
        let h = musubi_central_server::start(loaded.value).await.map_err(|e| e.to_string())?;
        eprintln!("central server: global configuration at {}", h.directory_url());
        service.ready("serving");
        service.stopping().await;
        h.shutdown();
        Ok::<_, String>(())
    };
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("musubi-central-server: {e}");
            ExitCode::FAILURE
        }
    }
}
