//! Security servers that follow a central server and take their trust from
//! its global configuration (no trust file; its expiry while traffic runs is
//! a case of faults.rs): a global-group change
//! made on the central server reaches the provider's access check; servers
//! and clients registered through management requests carry traffic only
//! once a registration officer has approved them.

use std::time::{Duration, Instant};

use musubi::demo::{CentralOptions, DOOR_LOCK_GROUP, Options, example_request, ids};

use crate::{http, network_with};

const XML: &str = "text/xml; charset=UTF-8";

/// The demo network on 127.0.`net`.x with a central server on .8 that the
/// servers register with (auto-approved unless `officer` decides).
pub(crate) fn following(net: u8, expire_after_secs: u64, officer: bool) -> Options {
    Options {
        central: Some(CentralOptions {
            listen: format!("127.0.{net}.8:8081").parse().unwrap(),
            management_listen: format!("127.0.{net}.8:4001").parse().unwrap(),
            admin_listen: format!("127.0.{net}.8:4000").parse().unwrap(),
            generation_interval_secs: 1,
            expire_after_secs,
            register: true,
            auto_approve: !officer,
        }),
        configuration_download_secs: 1,
        ..Options::default()
    }
}

/// Sends a request for `service` until `done` accepts the reply (or `secs` pass).
async fn until(
    cp: std::net::SocketAddr,
    service: &musubi_protocol::ServiceId,
    secs: u64,
    done: impl Fn(&crate::Reply) -> bool,
) -> crate::Reply {
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut n = 0;
    loop {
        n += 1;
        let reply = http(cp, "POST", XML, example_request(service, &format!("gc-{n}")).into_bytes()).await;
        if done(&reply) || Instant::now() >= deadline {
            return reply;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn global_group_and_maintenance_changes_on_the_central_server_reach_the_security_servers() {
    let net = 36;
    let network = network_with("globalconf-group", net, following(net, 600, false)).await;
    let (consumer, _, _, door_lock) = ids();
    let cp = network.consumer.client_proxy_addr;
    let (cs, _) = network.central.as_ref().unwrap();

    // The provider grants the door-lock service to a global group the consumer is not in.
    let denied = until(cp, &door_lock, 30, |r| r.fault_code().is_some_and(|c| c.ends_with("access_denied"))).await;
    assert_eq!(denied.fault_code(), Some("server.serverproxy.access_denied"), "{}", denied.body);

    // The central server adds the consumer to the group: the next generation lets it in.
    cs.registry.add_group_member(DOOR_LOCK_GROUP, "May read door-lock state", &consumer).await.unwrap();
    let allowed = until(cp, &door_lock, 30, |r| r.status == 200).await;
    assert_eq!(allowed.status, 200, "group membership reached the provider: {}", allowed.body);

    // And out again.
    cs.registry.remove_group_member(DOOR_LOCK_GROUP, &consumer).await.unwrap();
    let again = until(cp, &door_lock, 30, |r| r.fault_code().is_some_and(|c| c.ends_with("access_denied"))).await;
    assert_eq!(again.fault_code(), Some("server.serverproxy.access_denied"), "{}", again.body);

    // The provider's server goes into maintenance mode: clients are told so, with the message.
    let (_, provider, service, _) = ids();
    let ss = musubi_protocol::SecurityServerId::new(provider.member_id(), "ss-provider").unwrap();
    let health = network.provider.health_addr.unwrap();
    let ok = http(health, "GET", "text/plain", vec![]).await;
    assert_eq!((ok.status, ok.body.as_str()), (200, "OK"), "a registered, current server is healthy");
    cs.registry.set_maintenance(&ss, Some("upgrading until 18:00")).await.unwrap();
    let resting = until(cp, &service, 30, |r| r.fault_code().is_some_and(|c| c.ends_with("maintenance_mode"))).await;
    assert_eq!(resting.fault_code(), Some("server.clientproxy.maintenance_mode"), "{}", resting.body);
    assert!(resting.body.contains("upgrading until 18:00"), "{}", resting.body);
    // The provider learns it from its own next download.
    let deadline = Instant::now() + Duration::from_secs(30);
    let resting = loop {
        let r = http(health, "GET", "text/plain", vec![]).await;
        if r.status == 503 || Instant::now() >= deadline {
            break r;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert_eq!(resting.status, 503, "load balancers take a server in maintenance out: {}", resting.body);
    assert!(resting.body.contains("upgrading until 18:00"), "{}", resting.body);
    cs.registry.set_maintenance(&ss, None).await.unwrap();
    let back = until(cp, &service, 30, |r| r.status == 200).await;
    assert_eq!(back.status, 200, "out of maintenance mode: {}", back.body);
    network.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registered_servers_and_clients_carry_traffic_only_after_approval() {
    use musubi_central_server::requests::Status;
    let net = 37;
    let network = network_with("globalconf-registration", net, following(net, 600, true)).await;
    let (_, _, service, _) = ids();
    let cp = network.consumer.client_proxy_addr;
    let (cs, _) = network.central.as_ref().unwrap();
    let send = |q: &'static str| http(cp, "POST", XML, example_request(&service, q).into_bytes());

    // Both servers asked to register their authentication certificates; nothing is approved yet.
    let pending = cs.registry.requests(Some(Status::Pending)).await.unwrap();
    let kinds: Vec<&str> = pending.iter().map(|r| r.request.service_code()).collect();
    assert_eq!(kinds, ["authCertReg", "authCertReg"]);
    let refused = send("reg-1").await;
    assert_eq!(refused.fault_code(), Some("server.clientproxy.ssl_authentication_failed"), "{}", refused.body);

    // The officer approves: the servers are in the configuration, their subsystems are not yet clients.
    assert_eq!(network.approve_pending().await.unwrap().len(), 2);
    let unregistered = send("reg-2").await;
    assert_eq!(unregistered.fault_code(), Some("server.clientproxy.unknown_member"), "{}", unregistered.body);
    assert!(unregistered.body.contains("not registered on this security server"), "{}", unregistered.body);

    // Client registration requests wait for approval too.
    network.request_client_registrations().await.unwrap();
    let pending = cs.registry.requests(Some(Status::Pending)).await.unwrap();
    assert_eq!(pending.iter().map(|r| r.request.service_code()).collect::<Vec<_>>(), ["clientReg", "clientReg"]);
    assert!(network.consumer.update_global_conf().await);
    assert_eq!(send("reg-3").await.fault_code(), Some("server.clientproxy.unknown_member"));

    assert_eq!(network.approve_pending().await.unwrap().len(), 2);
    let ok = send("reg-4").await;
    assert_eq!(ok.status, 200, "registered and approved: traffic flows: {}", ok.body);

    // A request the registry cannot take is refused at once, with the reason.
    let (consumer, ..) = ids();
    let e = network.consumer.register_client(&consumer).await.unwrap_err();
    assert!(e.to_string().contains("is already a client of"), "{e}");
    network.shutdown().await;
}
