//! A simulated home of several nodes: discovery, the registry across a
//! restart, approval gating, the services and their faults, webhooks.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use musubi_adapter::frame::Eoj;
use musubi_adapter::simulate;

use crate::{adapter, adapter_conf, admin, admin_as, element, eventually, home_conf, ip, scratch, soap};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovers_every_device_of_a_multi_node_home_and_remembers_them_across_a_restart() {
    let net = 1;
    let home = simulate::start(&home_conf(
        net,
        &[
            &["homeAirConditioner", "lvSmartElectricEnergyMeter"],
            &["temperatureSensor", "humiditySensor", "generalLighting"],
            &["storageBattery", "homeSolarPowerGeneration", "electricWaterHeater", "refrigerator", "electricLock"],
        ],
    ))
    .await
    .unwrap();
    let dir = scratch("discovery");
    let h = adapter(adapter_conf(net, dir.clone())).await;
    let found = h.discover().await;
    assert_eq!(found.nodes, 3, "three nodes answer the multicast search: {found:?}");
    let devices = h.registry.list();
    assert_eq!(devices.len(), 10, "{devices:#?}");
    for d in &devices {
        assert!(!d.approved, "{} was published before an operator approved it", d.id);
        assert!(!d.get_map.is_empty());
        assert!(d.id.starts_with("fe"), "{} is named by its identification number 0x83", d.id);
    }
    let ac = devices.iter().find(|d| d.eoj == Eoj([0x01, 0x30, 0x01])).unwrap();
    assert_eq!(ac.address, IpAddr::V4(ip(net, 2)));
    assert!(ac.set_map.contains(&0xB3) && !ac.set_map.contains(&0xBB));
    let meter = devices.iter().find(|d| d.eoj.class() == 0x0288).unwrap();
    assert_eq!(meter.context_value(0xE1), Some(vec![0x01]), "the meter's unit is kept to read its energy");
    // Nodes that announce themselves again are only refreshed.
    let again = h.discover().await;
    assert_eq!((again.new, again.known), (0, 10), "{again:?}");
    // The registry survives a restart, approvals included.
    admin(&h, "POST", &format!("/devices/{}/approve", ac.id), "").await;
    h.stop().await;
    let h = adapter(adapter_conf(net, dir)).await;
    assert_eq!(h.registry.list().len(), 10);
    assert!(h.registry.get(&ac.id).unwrap().approved);
    h.shutdown();
    home.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_joins_later_is_found_by_its_announcement_and_waits_for_approval() {
    let net = 2;
    let dir = scratch("announce");
    let h = adapter(adapter_conf(net, dir)).await;
    assert_eq!(h.discover().await.nodes, 0);
    // The node announces its instance list (0xD5) when it joins (§4.2).
    let home = simulate::start(&home_conf(net, &[&["homeAirConditioner"]])).await.unwrap();
    let registry = h.registry.clone();
    assert!(eventually(20, || registry.list().len() == 1).await, "the announced device is registered");
    assert!(!h.registry.list()[0].approved);
    let listed = soap(&h, "listDevices", "").await;
    assert_eq!(listed.status, 200, "{}", listed.body);
    assert!(!listed.body.contains("<device>"), "an unapproved device is not listed: {}", listed.body);
    home.stop();
    h.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approved_devices_answer_typed_reads_and_sets_read_back_what_the_device_kept() {
    let net = 3;
    let home =
        simulate::start(&home_conf(net, &[&["homeAirConditioner", "lvSmartElectricEnergyMeter"]])).await.unwrap();
    let h = adapter(adapter_conf(net, scratch("services"))).await;
    h.discover().await;
    let ac = h.registry.list().into_iter().find(|d| d.eoj.class() == 0x0130).unwrap();
    let meter = h.registry.list().into_iter().find(|d| d.eoj.class() == 0x0288).unwrap();
    let id = |d: &musubi_adapter::registry::Device| format!("<m:deviceId>{}</m:deviceId>", d.id);

    // Not approved: it does not exist for consumers.
    let r = soap(&h, "getProperties", &format!("{}<m:property>roomTemperature</m:property>", id(&ac))).await;
    assert_eq!(r.fault_code(), Some("unknown_device"), "{}", r.body);

    // Approval by device, through the admin endpoint.
    let denied = admin_as(&h, "", "POST", &format!("/devices/{}/approve", ac.id), "").await;
    assert_eq!(denied.status, 401, "the admin API needs a key: {}", denied.body);
    let ok = admin(&h, "POST", &format!("/devices/{}/approve", ac.id), "").await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    let list = soap(&h, "listDevices", "").await;
    assert!(list.body.contains(&ac.id) && !list.body.contains(&meter.id), "{}", list.body);
    assert!(list.body.contains("<deviceType>homeAirConditioner</deviceType>"));

    let r = soap(&h, "getProperties", &format!("{}<m:property>roomTemperature</m:property>", id(&ac))).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("<getPropertiesResponse xmlns=\"urn:musubi:echonet:v1\">"), "{}", r.body);
    assert!(r.body.contains("name=\"roomTemperature\" epc=\"0xBB\" readAt=\""), "{}", r.body);
    assert!(r.body.contains("<value unit=\"Celsius\">28</value>"), "{}", r.body);

    let r = soap(&h, "getHomeAirConditioner", &id(&ac)).await;
    for (name, value) in [
        ("operationStatus", "<state>on</state>"),
        ("operationMode", "<state>cooling</state>"),
        ("targetTemperature", "<value unit=\"Celsius\">26</value>"),
        ("humidity", "<value unit=\"%\">55</value>"),
    ] {
        let at = r.body.find(&format!("name=\"{name}\"")).unwrap_or_else(|| panic!("{name} missing: {}", r.body));
        assert!(r.body[at..].split("</property>").next().unwrap().contains(value), "{name}: {}", r.body);
    }

    // A set inside the definition's range that the device clamps (16-30 °C):
    // the answer is what the device kept, read back (§2.1).
    let r =
        soap(&h, "setProperties", &format!("{}<m:property name=\"targetTemperature\">35</m:property>", id(&ac))).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("requested=\"35\" accepted=\"true\""), "{}", r.body);
    assert!(r.body.contains("<value unit=\"Celsius\">30</value>"), "{}", r.body);
    // Through X-Road it is a remote operation: 0x93 = 0x42 was written first (§5).
    let node = home.node(ip(net, 2)).unwrap();
    assert_eq!(node.lock().unwrap().object(ac.eoj).unwrap().value(0x93), Some(&[0x42][..]));
    let r =
        soap(&h, "setProperties", &format!("{}<m:property name=\"targetTemperature\">24</m:property>", id(&ac))).await;
    assert!(r.body.contains("<value unit=\"Celsius\">24</value>"), "{}", r.body);

    // Faults that say which.
    for (inner, code, says) in [
        ("<m:property name=\"targetTemperature\">60</m:property>", "value_out_of_range", "0 to 50 Celsius"),
        ("<m:property name=\"roomTemperature\">20</m:property>", "read_only_property", "roomTemperature"),
        ("<m:property name=\"warpDrive\">1</m:property>", "unknown_property", "warpDrive"),
        ("<m:property name=\"operationMode\">freezing</m:property>", "invalid_value", "freezing"),
    ] {
        let r = soap(&h, "setProperties", &format!("{}{inner}", id(&ac))).await;
        assert_eq!(r.status, 500);
        assert_eq!(r.fault_code(), Some(code), "{}", r.body);
        assert!(element(&r.body, "faultstring").unwrap().contains(says), "{}", r.body);
    }
    let r = soap(&h, "getProperties", "<m:deviceId>fe0000nothing</m:deviceId>").await;
    assert_eq!(r.fault_code(), Some("unknown_device"));
    assert!(r.body.contains("fe0000nothing"));
    let r = soap(&h, "getLvSmartElectricEnergyMeter", &id(&ac)).await;
    assert_eq!(r.fault_code(), Some("unknown_device"), "a typed read checks the class: {}", r.body);
    let r = soap(&h, "launchRocket", "").await;
    assert_eq!(r.fault_code(), Some("unknown_operation"));

    // Approval by class covers the meters known now.
    let r = admin(&h, "POST", "/classes/lvSmartElectricEnergyMeter/approve", "").await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = soap(&h, "getLvSmartElectricEnergyMeter", &id(&meter)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    // 12000 × coefficient 1 × 0.1 kWh; the reverse direction has no data.
    assert!(r.body.contains("<value unit=\"kWh\">1200</value>"), "{}", r.body);
    assert!(r.body.contains("<special>noData</special>"), "{}", r.body);
    assert!(r.body.contains("<value unit=\"W\">480</value>"), "{}", r.body);

    // Revocation withdraws it again.
    admin(&h, "POST", &format!("/devices/{}/revoke", ac.id), "").await;
    let r = soap(&h, "getProperties", &id(&ac)).await;
    assert_eq!(r.fault_code(), Some("unknown_device"));

    // The WSDL describes the operations.
    let w = crate::http(h.provider_addr, "GET", "/?wsdl", &[], "").await;
    assert_eq!(w.status, 200);
    assert!(w.body.contains("<wsdl:operation name=\"getHomeAirConditioner\">"));
    home.stop();
    h.shutdown();
}

/// What a webhook receiver got: each POST's signature header and body.
type Received = Arc<Mutex<Vec<(String, Vec<u8>)>>>;

/// Serves one webhook connection, storing each POST's signature and body.
async fn serve_hook<IO>(io: IO, store: Received)
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let svc = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
        let store = store.clone();
        async move {
            let sig = req.headers().get("x-musubi-signature").map(|v| v.to_str().unwrap().to_string());
            let body = req.into_body().collect().await.unwrap().to_bytes().to_vec();
            store.lock().unwrap().push((sig.unwrap_or_default(), body));
            Ok::<_, std::convert::Infallible>(hyper::Response::new(Full::new(Bytes::from_static(b"ok"))))
        }
    });
    let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(io), svc).await;
}

/// A webhook receiver.
async fn receiver(addr: std::net::SocketAddr) -> Received {
    let got: Received = Arc::default();
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    let store = got.clone();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else { return };
            tokio::spawn(serve_hook(tcp, store.clone()));
        }
    });
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_changes_reach_a_registered_webhook_signed_and_logged() {
    let net = 4;
    let home = simulate::start(&home_conf(net, &[&["homeAirConditioner"]])).await.unwrap();
    let hook_addr = std::net::SocketAddr::new(ip(net, 9).into(), 18080);
    let got = receiver(hook_addr).await;
    let mut conf = adapter_conf(net, scratch("webhook"));
    conf.webhooks.allowed_url_prefixes = vec![format!("http://{hook_addr}/")];
    let h = adapter(conf).await;
    h.discover().await;
    let ac = h.registry.list().into_iter().next().unwrap();
    admin(&h, "POST", &format!("/devices/{}/approve", ac.id), "").await;

    // Only URLs the provider allows.
    let r = soap(&h, "registerWebhook", "<m:url>http://10.0.0.1/steal</m:url>").await;
    assert_eq!(r.fault_code(), Some("webhook_not_allowed"), "{}", r.body);
    let r = soap(&h, "registerWebhook", &format!("<m:url>http://{hook_addr}/hook</m:url>")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let secret = element(&r.body, "secret").unwrap().to_string();
    let hook_id = element(&r.body, "webhookId").unwrap().to_string();

    // Switching the air conditioner off makes it announce 0x80 by INF.
    let r = soap(
        &h,
        "setProperties",
        &format!("<m:deviceId>{}</m:deviceId><m:property name=\"operationStatus\">off</m:property>", ac.id),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let seen = got.clone();
    assert!(eventually(20, || !seen.lock().unwrap().is_empty()).await, "the webhook received the change");
    let (sig, body) = got.lock().unwrap()[0].clone();
    assert!(musubi_adapter::webhook::verify(&secret, &sig, &body), "signature {sig} verifies");
    assert!(!musubi_adapter::webhook::verify("wrong", &sig, &body));
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(json["deviceId"], ac.id.as_str());
    assert_eq!(json["property"], "operationStatus");
    assert_eq!(json["value"], "off");
    assert_eq!(json["deviceType"], "homeAirConditioner");
    // Recorded, and the delivery logged.
    let n = admin(&h, "GET", "/notifications", "").await;
    assert!(n.body.contains("\"epc\":\"0x80\""), "{}", n.body);
    let hooks = h.webhooks.clone();
    let mut logged = Vec::new();
    for _ in 0..40 {
        logged = hooks.deliveries(10).await.unwrap();
        if !logged.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(
        logged
            .iter()
            .any(|(w, _, attempt, outcome)| *w == hook_id && *attempt == 1 && outcome == "delivered: HTTP 200"),
        "{logged:?}"
    );
    home.stop();
    h.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_deliveries_are_retried_with_back_off_and_each_attempt_logged() {
    let net = 5;
    let home = simulate::start(&home_conf(net, &[&["electricLock"]])).await.unwrap();
    let hook_addr = std::net::SocketAddr::new(ip(net, 9).into(), 18080);
    let mut conf = adapter_conf(net, scratch("webhook-retry"));
    conf.webhooks.allowed_url_prefixes = vec![format!("http://{hook_addr}/")];
    conf.webhooks.first_retry_ms = 200;
    conf.webhooks.max_attempts = 3;
    let h = adapter(conf).await;
    h.discover().await;
    let lock = h.registry.list().into_iter().next().unwrap();
    admin(&h, "POST", "/classes/electricLock/approve", "").await;
    let r = soap(&h, "registerWebhook", &format!("<m:url>http://{hook_addr}/hook</m:url>")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    // Nobody listens yet: the first attempts fail; then the receiver comes up.
    let r = soap(
        &h,
        "setProperties",
        &format!("<m:deviceId>{}</m:deviceId><m:property name=\"lockSetting1\">unlock</m:property>", lock.id),
    )
    .await;
    assert!(r.body.contains("<state>unlock</state>"), "{}", r.body);
    let hooks = h.webhooks.clone();
    let mut logged = Vec::new();
    for _ in 0..100 {
        logged = hooks.deliveries(10).await.unwrap();
        if !logged.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(logged.iter().any(|(_, _, a, o)| *a == 1 && o.starts_with("connect")), "{logged:?}");
    let got = receiver(hook_addr).await;
    let seen = got.clone();
    assert!(eventually(20, || !seen.lock().unwrap().is_empty()).await, "a retry got through");
    let mut done = false;
    for _ in 0..40 {
        logged = hooks.deliveries(10).await.unwrap();
        if logged.iter().any(|(_, _, a, o)| *a >= 2 && o == "delivered: HTTP 200") {
            done = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(done, "{logged:?}");
    home.stop();
    h.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_only_devices_are_registered_by_hand_and_read_from_their_notifications() {
    let net = 6;
    let mut conf = adapter_conf(net, scratch("send-only"));
    conf.manual_devices = vec![musubi_adapter::ManualDevice { address: ip(net, 7).into(), eoj: "001101".into() }];
    let h = adapter(conf).await;
    let d = h.registry.list().into_iter().next().expect("the manual device is registered");
    assert!(d.send_only && !d.approved);
    admin(&h, "POST", &format!("/devices/{}/approve", d.id), "").await;
    // The sensor announces 22.5 °C by INF to the multicast group.
    let sock = tokio::net::UdpSocket::bind((ip(net, 7), 3610)).await.unwrap();
    let inf = musubi_adapter::frame::encode(&musubi_adapter::frame::Frame::Format1(musubi_adapter::frame::Message {
        tid: 0,
        seoj: Eoj([0x00, 0x11, 0x01]),
        deoj: Eoj([0x0E, 0xF0, 0x01]),
        esv: musubi_adapter::frame::Esv::Inf,
        props: vec![musubi_adapter::frame::Property { epc: 0xE0, edt: vec![0x00, 0xE1] }],
        get_props: vec![],
    }));
    sock.send_to(&inf, (std::net::Ipv4Addr::new(239, 255, 1, net), 3610)).await.unwrap();
    let mut body = String::new();
    for _ in 0..100 {
        body = soap(&h, "getTemperatureSensor", &format!("<m:deviceId>{}</m:deviceId>", d.id)).await.body;
        if body.contains("<value") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(body.contains("<value unit=\"Celsius\">22.5</value>"), "{body}");
    let r = soap(
        &h,
        "setProperties",
        &format!("<m:deviceId>{}</m:deviceId><m:property name=\"operationStatus\">on</m:property>", d.id),
    )
    .await;
    assert_eq!(r.fault_code(), Some("read_only_property"), "{}", r.body);
    h.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_is_used_where_a_node_offers_it_and_udp_where_it_does_not() {
    let net = 7;
    // Node .2 answers TCP as well; node .3 (a second home) only UDP.
    let mut with_tcp = home_conf(net, &[&["homeAirConditioner"]]);
    with_tcp.tcp = true;
    let tcp_home = simulate::start(&with_tcp).await.unwrap();
    let mut udp_only = home_conf(net, &[&["temperatureSensor"]]);
    udp_only.nodes[0].address = ip(net, 3);
    let udp_home = simulate::start(&udp_only).await.unwrap();
    let mut conf = adapter_conf(net, scratch("tcp"));
    conf.net.tcp = true;
    let h = adapter(conf).await;
    h.discover().await;
    let devices = h.registry.list();
    assert_eq!(devices.len(), 2, "{devices:#?}");
    admin(&h, "POST", "/classes/homeAirConditioner/approve", "").await;
    admin(&h, "POST", "/classes/temperatureSensor/approve", "").await;
    let ac = devices.iter().find(|d| d.class() == 0x0130).unwrap();
    let sensor = devices.iter().find(|d| d.class() == 0x0011).unwrap();
    let before = tcp_home.tcp_requests.load(std::sync::atomic::Ordering::Relaxed);
    assert!(before > 0, "discovery already talked TCP to the node that offers it");
    let r = soap(&h, "getHomeAirConditioner", &format!("<m:deviceId>{}</m:deviceId>", ac.id)).await;
    assert!(r.body.contains("name=\"roomTemperature\""), "{}", r.body);
    assert!(tcp_home.tcp_requests.load(std::sync::atomic::Ordering::Relaxed) > before);
    // The other node refuses TCP: the same calls fall back to UDP (§2.11).
    let r = soap(&h, "getTemperatureSensor", &format!("<m:deviceId>{}</m:deviceId>", sensor.id)).await;
    assert!(r.body.contains("<value unit=\"Celsius\">21.5</value>"), "{}", r.body);
    tcp_home.stop();
    udp_home.stop();
    h.shutdown();
}

/// A CA and a server certificate for `ip` under it: (CA PEM, server config).
fn tls_receiver_identity(ip: std::net::Ipv4Addr) -> (String, std::sync::Arc<rustls::ServerConfig>) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec![ip.to_string()]).unwrap().signed_by(&key, &issuer).unwrap();
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let conf = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![leaf.der().clone()], rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()))
        .unwrap();
    (ca.pem(), std::sync::Arc::new(conf))
}

/// A webhook receiver over TLS.
async fn tls_receiver(addr: SocketAddr, conf: Arc<rustls::ServerConfig>) -> Received {
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    let got: Received = Arc::default();
    let store = got.clone();
    tokio::spawn(async move {
        let acceptor = tokio_rustls::TlsAcceptor::from(conf);
        loop {
            let Ok((tcp, _)) = listener.accept().await else { return };
            let (acceptor, store) = (acceptor.clone(), store.clone());
            tokio::spawn(async move {
                if let Ok(tls) = acceptor.accept(tcp).await {
                    serve_hook(tls, store).await;
                }
            });
        }
    });
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_webhooks_reach_a_receiver_the_configured_ca_vouches_for() {
    let net = 8;
    let home = simulate::start(&home_conf(net, &[&["generalLighting"]])).await.unwrap();
    let hook_ip = ip(net, 9);
    let (ca_pem, server_conf) = tls_receiver_identity(hook_ip);
    let dir = scratch("webhook-https");
    std::fs::write(dir.join("hook-ca.pem"), ca_pem).unwrap();
    let got = tls_receiver(SocketAddr::new(hook_ip.into(), 18443), server_conf).await;
    // A receiver whose certificate another CA issued.
    let (_, stranger) = tls_receiver_identity(hook_ip);
    let strangers = tls_receiver(SocketAddr::new(hook_ip.into(), 18444), stranger).await;
    let mut conf = adapter_conf(net, dir.join("state"));
    conf.webhooks.allowed_url_prefixes = vec![format!("https://{hook_ip}:")];
    conf.webhooks.ca_file = Some(dir.join("hook-ca.pem"));
    let h = adapter(conf).await;
    h.discover().await;
    let light = h.registry.list().into_iter().next().unwrap();
    admin(&h, "POST", &format!("/devices/{}/approve", light.id), "").await;
    let r = soap(&h, "registerWebhook", &format!("<m:url>https://{hook_ip}:18443/hook</m:url>")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let secret = element(&r.body, "secret").unwrap().to_string();
    let r = soap(&h, "registerWebhook", &format!("<m:url>https://{hook_ip}:18444/hook</m:url>")).await;
    let stranger_id = element(&r.body, "webhookId").unwrap().to_string();
    let r = soap(
        &h,
        "setProperties",
        &format!("<m:deviceId>{}</m:deviceId><m:property name=\"operationStatus\">off</m:property>", light.id),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let seen = got.clone();
    assert!(eventually(20, || !seen.lock().unwrap().is_empty()).await, "delivered over TLS");
    let (sig, body) = got.lock().unwrap()[0].clone();
    assert!(musubi_adapter::webhook::verify(&secret, &sig, &body));
    // The receiver the CA does not vouch for gets nothing; the refusal is logged.
    let hooks = h.webhooks.clone();
    let mut logged = Vec::new();
    for _ in 0..100 {
        logged = hooks.deliveries(20).await.unwrap();
        if logged.iter().any(|(w, ..)| *w == stranger_id) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(logged.iter().any(|(w, _, _, o)| *w == stranger_id && o.starts_with("TLS with")), "{logged:?}");
    assert!(strangers.lock().unwrap().is_empty());
    home.stop();
    h.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_api_checks_roles_and_names_the_operator_in_the_consent_trail() {
    let net = 9;
    let home = simulate::start(&home_conf(net, &[&["homeAirConditioner", "electricLock"]])).await.unwrap();
    let h = adapter(adapter_conf(net, scratch("roles"))).await;
    h.discover().await;
    let lock = h.registry.list().into_iter().find(|d| d.class() == 0x026F).unwrap();
    // Keys for a service administrator (alice) and an observer (bob).
    let key = |name: &str, role: &str| {
        let body = format!(r#"{{"name": "{name}", "roles": ["{role}"]}}"#);
        let h = &h;
        async move {
            let made = admin(h, "POST", "/api-keys", &body).await;
            assert_eq!(made.status, 200, "{}", made.body);
            let v: serde_json::Value = serde_json::from_str(&made.body).unwrap();
            format!("X-Road-ApiKey token={}", v["key"].as_str().unwrap())
        }
    };
    let (alice, bob) = (key("alice", "service_administrator").await, key("bob", "observer").await);

    let list = admin_as(&h, &bob, "GET", "/devices", "").await;
    let list: serde_json::Value = serde_json::from_str(&list.body).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 2);
    assert!(list.as_array().unwrap().iter().all(|d| d["approved"] == false));
    let refused = admin_as(&h, &bob, "POST", &format!("/devices/{}/approve", lock.id), "").await;
    assert_eq!(refused.status, 403, "an observer reads, does not publish: {}", refused.body);
    assert!(!h.registry.get(&lock.id).unwrap().approved);

    let ok = admin_as(&h, &alice, "POST", &format!("/devices/{}/approve", lock.id), "").await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert!(h.registry.get(&lock.id).unwrap().approved);
    let ok = admin_as(&h, &alice, "POST", &format!("/devices/{}/revoke", lock.id), "").await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert!(!h.registry.get(&lock.id).unwrap().approved);
    let trail = admin(&h, "GET", "/approvals", "").await;
    let trail: serde_json::Value = serde_json::from_str(&trail.body).unwrap();
    assert_eq!((&trail[0]["by"], &trail[0]["approved"]), (&serde_json::json!("alice"), &serde_json::json!(false)));
    assert_eq!(trail[1]["subject"], format!("device {}", lock.id));

    let unknown = admin_as(&h, &alice, "POST", "/devices/no-such-device/approve", "").await;
    assert_eq!(unknown.status, 404);
    assert!(unknown.body.contains("no device"), "{}", unknown.body);
    let bad = admin_as(&h, &alice, "POST", "/devices", r#"{"address": "127.0.0.1", "eoj": "xyz"}"#).await;
    assert_eq!(bad.status, 400);
    assert!(bad.body.contains(r#""field":"eoj""#), "{}", bad.body);
    let wrong = admin_as(&h, "X-Road-ApiKey token=0000000000000000", "GET", "/devices", "").await;
    assert_eq!(wrong.status, 401, "{}", wrong.body);
    home.stop();
    h.shutdown();
}
