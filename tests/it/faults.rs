//! Faults while traffic runs: information systems keep sending through the
//! consumer's server from several connections at once while the central
//! server, the OCSP responder, the TSA, the database, the peer server or the
//! disk goes away, or the clock jumps past what it may, and comes back.
//! Each case asserts the documented fail-closed fault, that traffic resumes
//! by itself once the cause is gone, that every answer meanwhile was a
//! success or that fault (no hang, no other error, no provider data in a
//! fault), and that every acknowledged exchange is in both message logs.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use musubi::demo::{Options, example_request, ids};
use musubi_security_server::messagelog::MessageLog;
use tokio::sync::watch;

use crate::{http, network_with};

const XML: &str = "text/xml; charset=UTF-8";

/// What an information system got for one request.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    /// The provider's answer.
    Ok,
    /// A SOAP fault with this code.
    Fault(String),
    /// Anything else: no answer, an HTTP error without a fault.
    Other(String),
}

/// Requests from `WORKERS` information systems at once until stopped.
struct Traffic {
    seen: Arc<Mutex<Vec<(Instant, String, Outcome)>>>,
    /// The first answer with each fault code.
    texts: Arc<Mutex<BTreeMap<String, String>>>,
    count: watch::Receiver<usize>,
    stop: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

const WORKERS: usize = 3;

impl Traffic {
    fn start(client_proxy: SocketAddr, name: &str) -> Self {
        let (_, _, service, _) = ids();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let texts = Arc::new(Mutex::new(BTreeMap::new()));
        let (count_tx, count) = watch::channel(0);
        let count_tx = Arc::new(count_tx);
        let (stop, stopped) = watch::channel(false);
        let tasks = (0..WORKERS)
            .map(|w| {
                let (seen, texts, count_tx, mut stopped, service) =
                    (seen.clone(), texts.clone(), count_tx.clone(), stopped.clone(), service.clone());
                let name = name.to_string();
                tokio::spawn(async move {
                    for n in 0.. {
                        if *stopped.borrow_and_update() {
                            break;
                        }
                        let id = format!("{name}-{w}-{n}");
                        let body = example_request(&service, &id).into_bytes();
                        let outcome =
                            match tokio::time::timeout(Duration::from_secs(30), http(client_proxy, "POST", XML, body))
                                .await
                            {
                                Err(_) => Outcome::Other("no answer in 30 s".into()),
                                Ok(r) if r.status == 200 && r.body.contains("22.5") => Outcome::Ok,
                                Ok(r) if r.body.contains("22.5") => {
                                    Outcome::Other(format!("the provider's data in a refusal: {}", r.body))
                                }
                                Ok(r) => match r.fault_code() {
                                    Some(code) => {
                                        texts.lock().unwrap().entry(code.to_string()).or_insert(r.body.clone());
                                        Outcome::Fault(code.to_string())
                                    }
                                    None => Outcome::Other(format!("HTTP {}: {}", r.status, r.body)),
                                },
                            };
                        let total = {
                            let mut seen = seen.lock().unwrap();
                            seen.push((Instant::now(), id, outcome));
                            seen.len()
                        };
                        count_tx.send_replace(total);
                        // Pacing, not waiting for anything: about ten requests a second each.
                        tokio::select! {
                            _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                            _ = stopped.changed() => break,
                        }
                    }
                })
            })
            .collect();
        Self { seen, texts, count, stop, tasks }
    }

    /// Waits (at most `secs`) until `n` answers after `since` are `want`, in a row.
    async fn until(&mut self, since: Instant, want: fn(&Outcome) -> bool, n: usize, secs: u64, what: &str) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
        loop {
            {
                let seen = self.seen.lock().unwrap();
                let after: Vec<&Outcome> = seen.iter().filter(|(t, _, _)| *t >= since).map(|(_, _, o)| o).collect();
                if after.len() >= n && after[after.len() - n..].iter().all(|o| want(o)) {
                    return;
                }
            }
            if tokio::time::timeout_at(deadline, self.count.changed()).await.is_err() {
                let seen = self.seen.lock().unwrap();
                let last: Vec<_> = seen.iter().rev().take(6).map(|(_, id, o)| format!("{id}: {o:?}")).collect();
                panic!("{what}: not seen in {secs} s; the last answers:\n{}", last.join("\n"));
            }
        }
    }

    /// Stops the traffic; every answer must be a success or one of `faults`.
    async fn finish(self, faults: &[&str], broken: Instant) -> Run {
        let _ = self.stop.send(true);
        for t in self.tasks {
            t.await.unwrap();
        }
        let seen = self.seen.lock().unwrap();
        let mut run = Run { texts: self.texts.lock().unwrap().clone(), ..Run::default() };
        let mut refusing = false;
        for (at, id, outcome) in seen.iter() {
            match outcome {
                Outcome::Ok => {
                    run.acknowledged.push(id.clone());
                    run.ok_before_refusals += usize::from(*at >= broken && !refusing);
                }
                Outcome::Fault(code) => {
                    assert!(faults.contains(&code.as_str()), "{id}: unexpected fault {code}");
                    run.refused.push(id.clone());
                    refusing = true;
                }
                Outcome::Other(what) => panic!("{id}: neither an answer nor a fault: {what}"),
            }
            *run.tally.entry(format!("{outcome:?}")).or_insert(0) += 1;
        }
        run
    }
}

/// What one outage's traffic got.
#[derive(Debug, Default)]
struct Run {
    /// The exchanges answered by the provider.
    acknowledged: Vec<String>,
    /// The exchanges refused with one of the expected faults.
    refused: Vec<String>,
    /// Answers that succeeded after the fault was injected and before the first refusal.
    ok_before_refusals: usize,
    /// How many answers each outcome had.
    tally: BTreeMap<String, usize>,
    /// The first answer with each fault code.
    texts: BTreeMap<String, String>,
}

fn is_ok(o: &Outcome) -> bool {
    *o == Outcome::Ok
}

/// The first answer with each of `codes` that came says one of `words`.
fn says(texts: &BTreeMap<String, String>, codes: &[&str], words: &[&str]) {
    let mut seen = 0;
    for code in codes {
        if let Some(text) = texts.get(*code) {
            seen += 1;
            assert!(words.iter().any(|w| text.contains(w)), "{code} does not say {words:?}: {text}");
        }
    }
    assert!(seen > 0, "none of {codes:?} came: {texts:?}");
}

/// Every acknowledged exchange has its request and response in `log`.
async fn all_logged(log: &MessageLog, acknowledged: &[String], side: &str) {
    for id in acknowledged {
        assert_eq!(log.find(id).await.unwrap().len(), 2, "{id} at the {side}");
    }
}

/// No refused exchange left a record (a half-written one) in `log`.
async fn none_logged(log: &MessageLog, refused: &[String], side: &str) {
    assert!(!refused.is_empty());
    for id in refused {
        assert!(log.find(id).await.unwrap().is_empty(), "the refused {id} is in the {side}'s log");
    }
}

/// Runs one outage: traffic flows, `inject` breaks something, an answer
/// with one of `faults` arrives, `heal` repairs it, five answers in a row
/// succeed; returns what the traffic got ([`Run`]).
macro_rules! outage {
    ($cp:expr, $name:expr, $faults:expr, $secs:expr, inject: $inject:block, heal: $heal:block) => {{
        let faults: &[&str] = $faults;
        let mut traffic = Traffic::start($cp, $name);
        traffic.until(Instant::now(), is_ok, 5, 30, "traffic flowing before the fault").await;
        let broken = Instant::now();
        $inject
        fn fault_of_the_list(o: &Outcome) -> bool {
            matches!(o, Outcome::Fault(_))
        }
        traffic.until(broken, fault_of_the_list, 1, $secs, "the fail-closed fault").await;
        let healed = Instant::now();
        $heal
        traffic.until(healed, is_ok, 5, $secs, "traffic resuming by itself").await;
        let run = traffic.finish(faults, broken).await;
        println!("{}: {:?}", $name, run.tally);
        assert!(!run.refused.is_empty(), "{:?}", run.tally);
        assert!(run.acknowledged.len() >= 10, "{:?}", run.tally);
        run
    }};
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_central_server_goes_away_and_returns_while_traffic_runs() {
    let mut net = network_with("fault-central", 44, crate::globalconf::following(44, 4, false)).await;
    let cp = net.consumer.client_proxy_addr;
    let mut central = net.central.take();
    let run = outage!(cp, "central", &["server.clientproxy.outdated_globalconf", "server.serverproxy.outdated_globalconf"], 40,
        inject: {
            let (cs, _) = central.as_ref().unwrap();
            cs.shutdown();
        },
        heal: {
            // The health check says why, for the load balancer and the
            // operator, once the consumer's own copy has expired too (the
            // first refusal may have been the provider's).
            let health = net.consumer.health_addr.unwrap();
            let deadline = Instant::now() + Duration::from_secs(10);
            let sick = loop {
                let answer = http(health, "GET", "text/plain", vec![]).await;
                if answer.status != 200 || Instant::now() >= deadline {
                    break answer;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            };
            assert_eq!(sick.status, 500, "{}", sick.body);
            assert!(sick.body.contains("global configuration"), "{}", sick.body);
            let (_, conf) = central.take().unwrap();
            let cs = musubi_central_server::start(conf.clone()).await.unwrap();
            central = Some((cs, conf));
        }
    );
    says(
        &run.texts,
        &["server.clientproxy.outdated_globalconf", "server.serverproxy.outdated_globalconf"],
        &["global configuration is outdated"],
    );
    all_logged(net.consumer.message_log(), &run.acknowledged, "consumer").await;
    all_logged(net.provider.message_log(), &run.acknowledged, "provider").await;
    net.central = central;
    net.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_ocsp_responder_goes_away_and_returns_while_traffic_runs() {
    let opts =
        Options { ocsp_fetch_interval_secs: 1, ocsp_retry_secs: 1, ocsp_freshness_seconds: 2, ..Options::default() };
    let mut net = network_with("fault-ocsp", 45, opts).await;
    let cp = net.consumer.client_proxy_addr;
    let run = outage!(cp, "ocsp", &["server.clientproxy.cert_validation", "server.serverproxy.cert_validation", "server.clientproxy.service_failed.cert_validation"], 40,
        inject: { net.stop_ocsp_responder(); },
        heal: { net.restart_ocsp_responder().await.unwrap(); }
    );
    says(
        &run.texts,
        &[
            "server.clientproxy.cert_validation",
            "server.serverproxy.cert_validation",
            "server.clientproxy.service_failed.cert_validation",
        ],
        &["no longer fresh", "older than the limit"],
    );
    all_logged(net.consumer.message_log(), &run.acknowledged, "consumer").await;
    all_logged(net.provider.message_log(), &run.acknowledged, "provider").await;
    net.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_tsa_goes_away_and_returns_while_traffic_runs() {
    let opts =
        Options { timestamping_interval_seconds: 1, acceptable_timestamp_failure_period_secs: 2, ..Options::default() };
    let mut net = network_with("fault-tsa", 46, opts).await;
    let cp = net.consumer.client_proxy_addr;
    let run = outage!(cp, "tsa", &["server.clientproxy.logging_failed.timestamper_failed", "server.serverproxy.logging_failed.timestamper_failed"], 40,
        inject: { net.stop_tsa(); },
        heal: { net.restart_tsa().await.unwrap(); }
    );
    says(
        &run.texts,
        &[
            "server.clientproxy.logging_failed.timestamper_failed",
            "server.serverproxy.logging_failed.timestamper_failed",
        ],
        &["no time-stamping authority has answered"],
    );
    // Exchanges went on for the acceptable period (2 s) before they were refused.
    assert!(run.ok_before_refusals > 0, "refused at once when the TSA stopped: {:?}", run.tally);
    all_logged(net.consumer.message_log(), &run.acknowledged, "consumer").await;
    all_logged(net.provider.message_log(), &run.acknowledged, "provider").await;
    // The backlog of the outage is stamped once the TSA is back.
    let deadline = Instant::now() + Duration::from_secs(30);
    for handle in [&net.consumer, &net.provider] {
        let mut updates = handle.timestamp_updates();
        while handle.message_log().unstamped_count().await.unwrap() > 0 {
            assert!(Instant::now() < deadline, "the backlog was never stamped");
            let _ = tokio::time::timeout(Duration::from_secs(2), updates.changed()).await;
        }
    }
    net.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_database_goes_away_and_returns_while_traffic_runs() {
    let (Some(a), Some(b)) =
        (crate::exchange::postgres_database("faultc").await, crate::exchange::postgres_database("faultp").await)
    else {
        return;
    };
    let provider_db = b.rsplit('/').next().unwrap().to_owned();
    let opts = Options { database_urls: Some([a, b]), ..Options::default() };
    let net = network_with("fault-db", 47, opts).await;
    let cp = net.consumer.client_proxy_addr;
    let admin = sqlx::AnyPool::connect(&std::env::var("MUSUBI_TEST_POSTGRES_URL").unwrap()).await.unwrap();
    let run = |sql: String| {
        let admin = admin.clone();
        async move { sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&admin).await.unwrap() }
    };
    let run = outage!(cp, "db", &["server.serverproxy.logging_failed"], 40,
        inject: {
            // Its connections are cut and new ones refused.
            run(format!("ALTER DATABASE {provider_db} ALLOW_CONNECTIONS false")).await;
            run(format!("SELECT pg_terminate_backend(pid)::text FROM pg_stat_activity WHERE datname = '{provider_db}'")).await;
        },
        heal: { run(format!("ALTER DATABASE {provider_db} ALLOW_CONNECTIONS true")).await; }
    );
    says(&run.texts, &["server.serverproxy.logging_failed"], &["failed to write the message log"]);
    all_logged(net.consumer.message_log(), &run.acknowledged, "consumer").await;
    all_logged(net.provider.message_log(), &run.acknowledged, "provider").await;
    none_logged(net.provider.message_log(), &run.refused, "provider").await;
    admin.close().await;
    net.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_disk_fills_and_empties_while_traffic_runs() {
    let Some(disk) = crate::exchange::SmallDisk::mount("fault-full", 8 * 1024 * 1024) else { return };
    // The provider's message log lives on the small disk.
    let consumer_db =
        format!("sqlite://{}?mode=rwc", crate::scratch("fault-full-consumer-db").with_extension("db").display());
    let provider_db = format!("sqlite://{}?mode=rwc", disk.0.join("provider.db").display());
    let opts = Options { database_urls: Some([consumer_db, provider_db]), ..Options::default() };
    let net = network_with("fault-disk", 48, opts).await;
    let cp = net.consumer.client_proxy_addr;
    let run = outage!(cp, "disk", &["server.serverproxy.logging_failed"], 40,
        inject: { disk.fill(); },
        heal: { std::fs::remove_file(disk.0.join("filler")).unwrap(); }
    );
    says(&run.texts, &["server.serverproxy.logging_failed"], &["failed to write the message log"]);
    all_logged(net.consumer.message_log(), &run.acknowledged, "consumer").await;
    all_logged(net.provider.message_log(), &run.acknowledged, "provider").await;
    none_logged(net.provider.message_log(), &run.refused, "provider").await;
    net.shutdown().await;
    drop(disk);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_peer_server_goes_away_and_returns_while_traffic_runs() {
    let net = network_with("fault-peer", 49, Options::default()).await;
    let provider_conf = net.facts.request_file.parent().unwrap().join("provider/security-server.toml");
    let provider_db = net.facts.message_logs[1].clone();
    // The provider's server runs as its own process from here on.
    let (consumer, provider, services) = net.into_parts();
    provider.shutdown().await;
    let mut node = Some(crate::crash::start_node(&provider_conf, &[]));
    let cp = consumer.client_proxy_addr;
    let run = outage!(cp, "peer", &["server.clientproxy.network_error"], 40,
        inject: {
            let mut n = node.take().unwrap();
            n.kill().unwrap();
            n.wait().unwrap();
        },
        heal: { node = Some(crate::crash::start_node(&provider_conf, &[])); }
    );
    says(&run.texts, &["server.clientproxy.network_error"], &["SERVER:DEMO/COM/2002/ss-provider"]);
    all_logged(consumer.message_log(), &run.acknowledged, "consumer").await;
    let provider_log = MessageLog::open(&provider_db).await.unwrap();
    all_logged(&provider_log, &run.acknowledged, "provider").await;
    let mut n = node.take().unwrap();
    n.kill().unwrap();
    n.wait().unwrap();
    consumer.shutdown().await;
    services.shutdown();
}

/// libfaketime, which makes a process see the time its file says.
const FAKETIME: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_peer_servers_clock_jumps_past_expiry_and_back_while_traffic_runs() {
    if !std::path::Path::new(FAKETIME).exists() {
        if std::env::var("MUSUBI_REQUIRE_PEERS").as_deref() == Ok("1") {
            panic!("no libfaketime at {FAKETIME} and MUSUBI_REQUIRE_PEERS=1 (apt-get install libfaketime)");
        }
        println!("skipped: no libfaketime at {FAKETIME}");
        return;
    }
    let net = network_with("fault-clock", 50, Options::default()).await;
    let dir = net.facts.request_file.parent().unwrap().to_owned();
    let provider_conf = dir.join("provider/security-server.toml");
    let provider_db = net.facts.message_logs[1].clone();
    let (consumer, provider, services) = net.into_parts();
    provider.shutdown().await;
    // The provider's server sees the time of this file: now, then two days on, then now again.
    let clock = dir.join("provider-clock");
    std::fs::write(&clock, "+0\n").unwrap();
    let clock_env = [
        ("LD_PRELOAD", FAKETIME),
        ("FAKETIME_TIMESTAMP_FILE", clock.to_str().unwrap()),
        ("FAKETIME_CACHE_DURATION", "1"),
        // Timers keep running at the real pace; only the wall clock jumps.
        ("FAKETIME_DONT_FAKE_MONOTONIC", "1"),
    ];
    let mut node = crate::crash::start_node(&provider_conf, &clock_env);
    let cp = consumer.client_proxy_addr;
    let run = outage!(cp, "clock", &["server.serverproxy.cert_validation", "server.clientproxy.cert_validation", "server.clientproxy.service_failed.cert_validation"], 40,
        inject: { std::fs::write(&clock, "+2d\n").unwrap(); },
        heal: { std::fs::write(&clock, "+0\n").unwrap(); }
    );
    // The provider finds responses stale by its clock: its own, or the consumer's it was sent.
    says(
        &run.texts,
        &[
            "server.serverproxy.cert_validation",
            "server.clientproxy.cert_validation",
            "server.clientproxy.service_failed.cert_validation",
        ],
        &["no longer fresh", "older than the limit"],
    );
    all_logged(consumer.message_log(), &run.acknowledged, "consumer").await;
    node.kill().unwrap();
    node.wait().unwrap();
    let provider_log = MessageLog::open(&provider_db).await.unwrap();
    all_logged(&provider_log, &run.acknowledged, "provider").await;
    consumer.shutdown().await;
    services.shutdown();
}
