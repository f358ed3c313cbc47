//! The adapter behind the provider's security server: a consumer's
//! information system reads a simulated air conditioner's room temperature
//! and sets its target temperature through both security servers.

use std::net::Ipv4Addr;

use musubi::demo::{Options, adapter_request};
use musubi_adapter::frame::Eoj;

use crate::{http, network_with};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_reads_and_sets_a_simulated_air_conditioner_through_both_security_servers() {
    let net = 34;
    let opts = Options {
        adapter: true,
        adapter_ips: [Ipv4Addr::new(127, 0, net, 6), Ipv4Addr::new(127, 0, net, 7)],
        echonet_group: Ipv4Addr::new(239, 255, 0, net),
        ..Options::default()
    };
    let network = network_with("adapter", net, opts).await;
    let facts = network.facts.adapter.clone().expect("the demo runs the adapter");
    let proxy = network.consumer.client_proxy_addr;
    let ct = "text/xml; charset=UTF-8";

    let get = std::fs::read(&facts.get_request_file).unwrap();
    let r = http(proxy, "POST", ct, get).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("requestHash algorithmId="), "signed and answered by the provider's server: {}", r.body);
    assert!(r.body.contains(&format!("<deviceId>{}</deviceId>", facts.air_conditioner)), "{}", r.body);
    assert!(r.body.contains("name=\"roomTemperature\" epc=\"0xBB\""), "{}", r.body);
    assert!(r.body.contains("<value unit=\"Celsius\">"), "{}", r.body);

    let set = std::fs::read(&facts.set_request_file).unwrap();
    let r = http(proxy, "POST", ct, set).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("name=\"targetTemperature\""), "{}", r.body);
    assert!(r.body.contains("requested=\"24\" accepted=\"true\""), "{}", r.body);
    assert!(r.body.contains("<value unit=\"Celsius\">24</value>"), "read back from the device: {}", r.body);
    // The device itself holds the new value, written as a remote operation.
    let home = network.home.as_ref().unwrap();
    let node = home.node(Ipv4Addr::new(127, 0, net, 7)).unwrap();
    {
        let mut n = node.lock().unwrap();
        let ac = n.object(Eoj([0x01, 0x30, 0x01])).unwrap();
        assert_eq!(ac.value(0xB3), Some(&[24][..]));
        assert_eq!(ac.value(0x93), Some(&[0x42][..]), "0x93 = 0x42: the operation came from outside the home");
    }

    // The electric lock was discovered but not approved: it does not exist for the consumer.
    let lock = network.adapter.as_ref().unwrap().registry.list().into_iter().find(|d| d.class() == 0x026F).unwrap();
    assert!(!lock.approved);
    let req = adapter_request("getProperties", "demo-home-3", &format!("<deviceId>{}</deviceId>", lock.id));
    let r = http(proxy, "POST", ct, req.into_bytes()).await;
    assert_eq!(r.fault_code(), Some("unknown_device"), "{}", r.body);

    // An adapter service the consumer has no access right for is refused by the provider's server.
    let req = adapter_request("registerWebhook", "demo-home-4", "<url>http://127.0.0.1/</url>");
    let r = http(proxy, "POST", ct, req.into_bytes()).await;
    assert_eq!(r.fault_code(), Some("server.serverproxy.unknown_service"), "{}", r.body);
    network.shutdown().await;
}
