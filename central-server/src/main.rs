//! `musubi-central-server --config FILE`: runs the central server.

use std::path::PathBuf;

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args: Vec<String> = std::env::args().collect();
    let path = match args.as_slice() {
        [_, flag, path] if flag == "--config" => PathBuf::from(path),
        _ => {
            eprintln!(
                "usage: musubi-central-server --config FILE (TOML: instance, state_dir, conf_listen, public_address)"
            );
            return std::process::ExitCode::from(2);
        }
    };
    let run = async {
        let text = std::fs::read_to_string(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let conf: musubi_central_server::CentralConf =
            toml::from_str(&text).map_err(|e| format!("{} is not a valid configuration: {e}", path.display()))?;
        let h = musubi_central_server::start(conf).await.map_err(|e| e.to_string())?;
        eprintln!("central server: global configuration at {}", h.directory_url());
        tokio::signal::ctrl_c().await.ok();
        h.shutdown();
        Ok::<_, String>(())
    };
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match rt.block_on(run) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("musubi-central-server: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
