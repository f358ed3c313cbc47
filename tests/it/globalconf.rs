//! Security servers that follow a central server: exchanges flow while the
//! global configuration is current, are refused with the outdated-
//! configuration fault once the central server has been gone long enough for
//! it to expire, and resume by themselves when it returns.

use std::time::{Duration, Instant};

use musubi::demo::{Options, example_request, ids};
use musubi_central_server::CentralConf;

use crate::{http, network_with, scratch};

const XML: &str = "text/xml; charset=UTF-8";

fn central(dir: &std::path::Path, net: u8) -> CentralConf {
    let addr = format!("127.0.{net}.8:18081");
    CentralConf {
        instance: musubi::demo::INSTANCE.into(),
        state_dir: dir.to_path_buf(),
        database_url: None,
        conf_listen: addr.parse().unwrap(),
        public_address: addr,
        generation_interval_secs: 1,
        expire_after_secs: 4,
    }
}

/// Sends the example request until `done` accepts the reply (or `secs` pass).
async fn until(cp: std::net::SocketAddr, secs: u64, done: impl Fn(&crate::Reply) -> bool) -> crate::Reply {
    let (_, _, service, _) = ids();
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut n = 0;
    loop {
        n += 1;
        let reply = http(cp, "POST", XML, example_request(&service, &format!("gc-{n}")).into_bytes()).await;
        if done(&reply) || Instant::now() >= deadline {
            return reply;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_global_configuration_stops_traffic_until_the_central_server_returns() {
    let net = 35;
    let dir = scratch("globalconf");
    std::fs::create_dir_all(&dir).unwrap();
    let cs_dir = dir.join("central");
    let cs = musubi_central_server::start(central(&cs_dir, net)).await.unwrap();
    let anchor = dir.join("anchor.xml");
    std::fs::write(&anchor, cs.anchor().await.unwrap()).unwrap();
    let network = network_with(
        "globalconf-net",
        net,
        Options { configuration_anchor: Some(anchor), configuration_download_secs: 1, ..Options::default() },
    )
    .await;
    let cp = network.consumer.client_proxy_addr;

    let ok = until(cp, 30, |r| r.status == 200).await;
    assert_eq!(ok.status, 200, "exchanges flow with a current configuration: {}", ok.body);

    // The central server goes away; within its 4 s expiry traffic stops, closed.
    cs.shutdown();
    drop(cs);
    let refused = until(cp, 30, |r| r.fault_code() == Some("server.clientproxy.outdated_globalconf")).await;
    assert_eq!(refused.fault_code(), Some("server.clientproxy.outdated_globalconf"), "{}", refused.body);
    assert!(refused.body.contains("outdated"), "{}", refused.body);

    // It returns (same keys, same address): traffic resumes by itself.
    let cs = musubi_central_server::start(central(&cs_dir, net)).await.unwrap();
    let back = until(cp, 30, |r| r.status == 200).await;
    assert_eq!(back.status, 200, "exchanges resume after the next good download: {}", back.body);
    cs.shutdown();
    network.shutdown().await;
}
