//! Adapter benchmark (not a test): `cargo bench -p musubi-adapter --bench echonet`.
//!
//! 1. Discovery: the time to find and describe 200 simulated devices on 10
//!    simulated nodes (127.2.0.2–11) with the default pacing rules (300 ms
//!    between frames to a node, at most 40 frames a minute per node).
//! 2. Service overhead: the latency of `getProperties` through the adapter's
//!    SOAP endpoint against the device's own answer time (a direct Get of
//!    the same property), both measured here, with the pacing gap set to 0 so
//!    that only the work is measured.
//!
//! Loopback only; bounded; stops by itself.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use musubi_adapter::net::{Cidr, NetConfig};
use musubi_adapter::simulate::{self, HomeConfig, NodeConfig};
use musubi_adapter::{AdapterConfig, DiscoveryConfig, PacingFile};

const NODES: u8 = 10;
const PER_NODE: usize = 20;
const GROUP: Ipv4Addr = Ipv4Addr::new(239, 255, 2, 0);
const CLASSES: [&str; 10] = [
    "homeAirConditioner",
    "lvSmartElectricEnergyMeter",
    "temperatureSensor",
    "humiditySensor",
    "generalLighting",
    "storageBattery",
    "homeSolarPowerGeneration",
    "electricWaterHeater",
    "refrigerator",
    "electricLock",
];

fn conf(dir: &std::path::Path, bind: Ipv4Addr, pacing: PacingFile) -> AdapterConfig {
    AdapterConfig {
        state_dir: dir.to_path_buf(),
        provider_listen: SocketAddr::new(bind.into(), 0),
        admin_listen: SocketAddr::new(bind.into(), 0),
        max_devices: 1000,
        net: NetConfig {
            bind,
            multicast_group: GROUP,
            allow: vec![Cidr { addr: IpAddr::V4(Ipv4Addr::new(127, 2, 0, 0)), prefix: 24 }],
            ..NetConfig::default()
        },
        pacing,
        discovery: DiscoveryConfig {
            window_ms: 1500,
            interval_secs: 3600,
            liveness_secs: 3600,
            announce_delay_ms: 0,
            answer_delay_ms: 0,
            nodes: vec![],
        },
        webhooks: Default::default(),
        manual_devices: vec![],
        definitions_dir: None,
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

async fn soap(addr: SocketAddr, body: &str) -> String {
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await.unwrap();
    tokio::spawn(conn);
    let req = hyper::Request::post("/")
        .header("host", addr.to_string())
        .header("content-type", "text/xml; charset=UTF-8")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap();
    let resp = sender.send_request(req).await.unwrap();
    String::from_utf8(resp.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap()
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let home = simulate::start(&HomeConfig {
            nodes: (0..NODES)
                .map(|n| NodeConfig {
                    address: Ipv4Addr::new(127, 2, 0, 2 + n),
                    devices: (0..PER_NODE).map(|i| CLASSES[i % CLASSES.len()].to_string()).collect(),
                })
                .collect(),
            tick_secs: 0,
            max_answer_delay_ms: 500,
            max_announce_delay_ms: 500,
            port: musubi_adapter::net::PORT,
            multicast_group: GROUP,
            tcp: false,
        })
        .await
        .unwrap();
        let base = std::env::temp_dir().join(format!("musubi-adapter-bench-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);

        // 1. Discovery under the default pacing rules.
        let started = Instant::now();
        let h = musubi_adapter::start(conf(&base.join("a"), Ipv4Addr::new(127, 2, 0, 1), PacingFile::default()))
            .await
            .unwrap();
        let found = h.discover().await;
        let took = started.elapsed();
        let devices = h.registry.list();
        assert_eq!(devices.len(), usize::from(NODES) * PER_NODE, "{found:?}");
        println!(
            "discovery: {} devices on {} nodes found and described in {:.1} s (default pacing: 300 ms gap, 40 frames/min per node)",
            devices.len(),
            found.nodes,
            took.as_secs_f64()
        );
        h.stop().await;

        // 2. What a service call adds to the device's own answer time.
        let fast = PacingFile { min_gap_ms: 0, ..PacingFile::default() };
        let h = musubi_adapter::start(conf(&base.join("b"), Ipv4Addr::new(127, 2, 0, 100), fast)).await.unwrap();
        h.discover().await;
        let devices = h.registry.list();
        for d in &devices {
            h.registry.approve(&d.id, true, "bench").await.unwrap();
        }
        let client = musubi_protocol::ClientId::subsystem("BENCH", "GOV", "1", "care").unwrap();
        let provider = musubi_protocol::ClientId::subsystem("BENCH", "COM", "2", "home").unwrap();
        let service = musubi_protocol::ServiceId::new(provider, "getProperties", None).unwrap();
        // 100 calls each way, spread so that no node sees more than 20 frames a minute.
        let (mut direct, mut through) = (Vec::new(), Vec::new());
        for (i, d) in devices.iter().cycle().step_by(7).take(100).enumerate() {
            let t = Instant::now();
            h.controller.get(d.address, d.eoj, &[0x80]).await.unwrap();
            direct.push(t.elapsed());
            let body = format!(
                "<getProperties xmlns=\"urn:musubi:echonet:v1\"><deviceId>{}</deviceId><property>operationStatus</property></getProperties>",
                d.id
            );
            let req = musubi_protocol::soap::build_request(&client, &service, &format!("bench-{i}"), None, &body);
            let t = Instant::now();
            let answer = soap(h.provider_addr, &req).await;
            through.push(t.elapsed());
            assert!(answer.contains("<state>on</state>"), "{answer}");
        }
        direct.sort();
        through.sort();
        let (d50, t50) = (percentile(&direct, 0.5), percentile(&through, 0.5));
        println!(
            "service: device answer p50 {:.2} ms p99 {:.2} ms; getProperties through the adapter p50 {:.2} ms p99 {:.2} ms; added p50 {:.2} ms",
            d50.as_secs_f64() * 1e3,
            percentile(&direct, 0.99).as_secs_f64() * 1e3,
            t50.as_secs_f64() * 1e3,
            percentile(&through, 0.99).as_secs_f64() * 1e3,
            t50.saturating_sub(d50).as_secs_f64() * 1e3
        );
        h.stop().await;
        home.stop();
        let _ = std::fs::remove_dir_all(&base);
    });
}
