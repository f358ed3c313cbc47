//! `musubi-security-server --config FILE`: runs one security server until
//! Ctrl-C or SIGTERM, then finishes in-flight exchanges and closes the log.
//! `musubi-security-server check-config --config FILE` checks the file only.
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
    #[arg(long, global = true, default_value = "/etc/musubi/security-server.toml")]
    config: PathBuf,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(clap::Subcommand)]
enum Command {
    /// Checks the configuration file without starting: its TOML syntax and the
    /// name and type of every setting. Names the line at fault and exits 1 if
    /// the file is not valid.
    CheckConfig,
    /// Writes a backup of this server, encrypted with a passphrase: the
    /// configuration file, the state folder (keys, certificates, admin API
    /// keys and users), the files the configuration names, and the message
    /// log (SQLite; a consistent copy, safe while the server runs).
    Backup {
        /// The backup file to write (mode 0600).
        #[arg(long)]
        out: PathBuf,
        /// A file holding the passphrase (mode 0600); else MUSUBI_BACKUP_PASSPHRASE.
        #[arg(long)]
        passphrase_file: Option<PathBuf>,
    },
    /// Restores a backup onto this node, which must be stopped and fresh (an
    /// empty state folder, no message log); then start the server.
    Restore {
        /// The backup file.
        #[arg(long)]
        from: PathBuf,
        /// A file holding the passphrase (mode 0600); else MUSUBI_BACKUP_PASSPHRASE.
        #[arg(long)]
        passphrase_file: Option<PathBuf>,
        /// Replace the state folder and message log that are there.
        #[arg(long)]
        force: bool,
    },
}

use musubi_admin::service::Service;
use musubi_security_server::backup::{self, BackupError, Summary};

/// Prints a backup's or restore's outcome; exits 1 on a fault.
fn exit_on(result: Result<(String, Summary), BackupError>) -> Result<()> {
    match result {
        Ok((done, summary)) => {
            println!("{done}");
            for note in summary.notes {
                println!("note: {note}");
            }
            Ok(())
        }
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    }
}

async fn backup(
    config: &std::path::Path,
    out: &std::path::Path,
    pass: Option<&std::path::Path>,
) -> Result<(String, Summary), BackupError> {
    let passphrase = backup::passphrase(pass)?;
    let summary = backup::backup(config, out, &passphrase).await?;
    let done = format!(
        "{}: {} files and {} bytes of message log, encrypted",
        out.display(),
        summary.files,
        summary.database_bytes
    );
    Ok((done, summary))
}

fn restore(
    config: &std::path::Path,
    from: &std::path::Path,
    pass: Option<&std::path::Path>,
    force: bool,
) -> Result<(String, Summary), BackupError> {
    let passphrase = backup::passphrase(pass)?;
    let summary = backup::restore(config, from, &passphrase, force)?;
    let done = format!(
        "restored {} files and {} bytes of message log from {}; check the configuration and start the server",
        summary.files,
        summary.database_bytes,
        from.display()
    );
    Ok((done, summary))
}

/// Allocator settings the security server runs with unless the environment
/// gives others. mimalloc (Rust's allocations): memory freed after a burst
/// (say 64 large transfers at once) goes back to the system at once rather
/// than a second later, and arenas are committed as they are used. glibc
/// (SQLite's allocations, on sqlx's worker threads): two arenas, not one per
/// thread. Both read these from the environment when the process starts.
/// Measured (BENCHMARKS.md), they lower peak resident memory by a third at
/// 1 KB and by half with 10 MB attachments, at no measurable cost in speed.
const ALLOCATOR_ENV: [(&str, &str); 3] =
    [("MIMALLOC_PURGE_DELAY", "0"), ("MIMALLOC_ARENA_EAGER_COMMIT", "0"), ("MALLOC_ARENA_MAX", "2")];

/// Starts this program again, with the same PID and arguments, when
/// [`ALLOCATOR_ENV`] is not in its environment yet.
fn with_allocator_settings() {
    use std::os::unix::process::CommandExt as _;
    let missing: Vec<_> = ALLOCATOR_ENV.iter().filter(|(k, _)| std::env::var_os(k).is_none()).collect();
    if missing.is_empty() {
        return;
    }
    let Ok(exe) = std::env::current_exe() else { return };
    let mut args = std::env::args_os();
    let mut cmd = std::process::Command::new(exe);
    if let Some(arg0) = args.next() {
        cmd.arg0(arg0);
    }
    cmd.args(args).envs(missing.iter().map(|(k, v)| (*k, *v)));
    let err = cmd.exec();
    eprintln!("warning: could not restart with the allocator's settings ({err}); going on without them");
}

fn main() -> Result<()> {
    with_allocator_settings();
    // Blocking threads do the spool's file reads and writes: a few suffice, and
    // each one costs a stack and an allocator heap.
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(8)
        .build()
        .context("starting the async runtime")?
        .block_on(run())
}

async fn run() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .init();
    let args = Args::parse();
    if let Some(Command::CheckConfig) = args.command {
        match musubi_security_server::conf::check_file(&args.config) {
            Ok(summary) => {
                println!("{summary}");
                return Ok(());
            }
            Err(e) => {
                eprintln!("{e}");
                std::process::exit(1);
            }
        }
    }
    match args.command {
        Some(Command::Backup { out, passphrase_file }) => {
            return exit_on(backup(&args.config, &out, passphrase_file.as_deref()).await);
        }
        Some(Command::Restore { from, passphrase_file, force }) => {
            return exit_on(restore(&args.config, &from, passphrase_file.as_deref(), force));
        }
        _ => {}
    }
    let mut service = Service::listen().context("listening for SIGTERM and Ctrl-C")?;
    let loaded = musubi_security_server::conf::load(&args.config, std::env::vars())?;
    for o in &loaded.overridden {
        tracing::info!("setting from the environment: {o}");
    }
    let base = loaded.table;
    let node = musubi_security_server::setup::Node::new(base.clone())
        .with_context(|| format!("{} cannot be used", args.config.display()))?;
    let conf = if node.is_complete() {
        node.server_conf()?
    } else {
        let setup = musubi_security_server::start_setup(base)
            .await
            .with_context(|| format!("starting the admin API from {}", args.config.display()))?;
        service.ready("not set up yet: the admin API waits for the setup steps");
        eprintln!(
            "not set up yet: the admin API listens on https://{} (API key in {}, certificate {}); \
             run `musubi init` and the steps after it",
            setup.admin_addr,
            node.state_dir().join("admin/admin-api-key").display(),
            node.state_dir().join("admin/admin-tls.pem").display()
        );
        tokio::select! {
            _ = setup.wait_complete() => {}
            () = service.stopping() => {
                setup.shutdown().await;
                return Ok(());
            }
        }
        let conf = setup.server_conf()?;
        setup.shutdown().await;
        conf
    };
    let handle = musubi_security_server::start(conf)
        .await
        .with_context(|| format!("starting the security server from {}", args.config.display()))?;
    service.ready("serving");
    service.stopping().await;
    // In-flight exchanges finish and the message log is flushed before the process ends.
    handle.shutdown().await;
    Ok(())
}
