//! One security server as a separate process, for the crash tests: started
//! from a configuration file, prints `ready` once it serves, runs until killed.

use std::path::PathBuf;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let path: PathBuf =
        std::env::args().nth(1).ok_or_else(|| anyhow::anyhow!("usage: musubi-test-node CONFIG"))?.into();
    let conf = musubi_security_server::conf::read_toml(&path)?;
    let handle = musubi_security_server::start(conf).await?;
    println!("ready");
    tokio::signal::ctrl_c().await?;
    handle.shutdown().await;
    Ok(())
}
