//! Nothing lost: the provider's security server is killed with SIGKILL several
//! times while exchanges run; after each restart every exchange whose response
//! reached the client is in both logs, no record is duplicated, and the
//! timestamper stamps the backlog.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use musubi::demo::{Options, example_request, ids};

use crate::{http, network_with};

pub(crate) fn start_node(conf: &std::path::Path, env: &[(&str, &str)]) -> Child {
    let mut child = Command::new(env!("CARGO_BIN_EXE_musubi-test-node"))
        .arg(conf)
        .env("RUST_LOG", "error")
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .spawn()
        .expect("test node starts");
    // Readiness: the node prints `ready` once it serves.
    let stdout = child.stdout.take().unwrap();
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "ready", "the node did not start");
    child
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_provider_server_loses_no_acknowledged_exchange() {
    let opts = Options { timestamping_interval_seconds: 1, ..Options::default() };
    let net = network_with("crash", 30, opts).await;
    let dir = net.facts.request_file.parent().unwrap().to_owned();
    let provider_conf = dir.join("provider").join("security-server.toml");
    let provider_db = net.facts.message_logs[1].clone();
    // The provider's server runs as its own process from here on.
    let (consumer, provider, services) = net.into_parts();
    provider.shutdown().await;
    let mut node = start_node(&provider_conf, &[]);

    let (_, _, service, _) = ids();
    let cp = consumer.client_proxy_addr;
    let acknowledged = Arc::new(std::sync::Mutex::new(Vec::new()));
    let sent = Arc::new(AtomicUsize::new(0));
    const TOTAL: usize = 60;
    for _round in 0..3 {
        // A burst of concurrent exchanges, then SIGKILL in the middle of the next burst.
        let mut tasks = Vec::new();
        for _ in 0..4 {
            let (acknowledged, sent, service) = (acknowledged.clone(), sent.clone(), service.clone());
            tasks.push(tokio::spawn(async move {
                for _ in 0..TOTAL / 12 {
                    let n = sent.fetch_add(1, Ordering::SeqCst);
                    let id = format!("it-crash-{n}");
                    let reply =
                        http(cp, "POST", "text/xml; charset=UTF-8", example_request(&service, &id).into_bytes()).await;
                    if reply.status == 200 {
                        acknowledged.lock().unwrap().push(id);
                    }
                }
            }));
        }
        // Kill while the burst runs (after the first acknowledged answer of this round).
        let before = acknowledged.lock().unwrap().len();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while acknowledged.lock().unwrap().len() == before && std::time::Instant::now() < deadline {
            tokio::task::yield_now().await;
        }
        node.kill().unwrap(); // SIGKILL
        node.wait().unwrap();
        for t in tasks {
            t.await.unwrap();
        }
        node = start_node(&provider_conf, &[]);
    }
    // A last burst against the restarted server.
    for i in 0..4 {
        let id = format!("it-crash-final-{i}");
        let reply = http(cp, "POST", "text/xml; charset=UTF-8", example_request(&service, &id).into_bytes()).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        acknowledged.lock().unwrap().push(id);
    }
    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(acknowledged.len() >= 8, "too few exchanges went through: {}", acknowledged.len());

    // Every acknowledged exchange is in both logs, exactly once per direction.
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", provider_db.display())).await.unwrap();
    let rows: Vec<(String, String)> =
        sqlx::query_as("SELECT query_id, direction FROM message_log").fetch_all(&pool).await.unwrap();
    let mut provider_records: HashMap<(String, String), usize> = HashMap::new();
    for r in rows {
        *provider_records.entry(r).or_default() += 1;
    }
    assert!(provider_records.values().all(|&n| n == 1), "duplicated records: {provider_records:?}");
    for id in &acknowledged {
        for direction in ["request", "response"] {
            assert!(
                provider_records.contains_key(&(id.clone(), direction.to_owned())),
                "{id} {direction} missing at the provider"
            );
        }
        let consumer_records = consumer.message_log().find(id).await.unwrap();
        assert_eq!(consumer_records.len(), 2, "{id} at the consumer");
    }
    // The restarted timestamper stamps the backlog (bounded wait on the store itself).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let unstamped: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM message_log WHERE timestamp_id IS NULL")
            .fetch_one(&pool)
            .await
            .unwrap();
        if unstamped == 0 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{unstamped} records were never time-stamped");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    pool.close().await;
    node.kill().unwrap();
    node.wait().unwrap();
    consumer.shutdown().await;
    services.shutdown();
}
