//! Hostile ECHONET Lite traffic against a running adapter while a consumer
//! keeps reading an approved device: a flood from one host of the LAN,
//! garbage, spoofed instance lists from many addresses and frames from
//! outside the allowlist are dropped and counted, spoofed nodes publish
//! nothing, and every read made meanwhile is answered.

use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use musubi_adapter::frame::{self, Eoj, Esv, Frame, Message, Property};
use musubi_adapter::simulate;
use tokio::net::UdpSocket;

use crate::{adapter, adapter_conf, admin, home_conf, ip, scratch, soap};

/// An instance-list announcement (INF of 0xD5) naming 84 objects.
fn instance_list(tid: u16) -> Vec<u8> {
    let mut edt = vec![84];
    for n in 0..84u8 {
        edt.extend_from_slice(&[0x01, 0x30, n + 1]);
    }
    frame::encode(&Frame::Format1(Message {
        tid,
        seoj: Eoj([0x0E, 0xF0, 0x01]),
        deoj: Eoj([0x0E, 0xF0, 0x01]),
        esv: Esv::Inf,
        props: vec![Property { epc: 0xD5, edt }],
        get_props: vec![],
    }))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn floods_and_spoofed_instance_lists_are_dropped_and_reads_keep_working() {
    let net = 40;
    let home = simulate::start(&home_conf(net, &[&["homeAirConditioner"]])).await.unwrap();
    let h = adapter(adapter_conf(net, scratch("hostile"))).await;
    h.discover().await;
    let ac = h.registry.list().into_iter().next().expect("the air conditioner is found");
    assert_eq!(admin(&h, "POST", &format!("/devices/{}/approve", ac.id), "").await.status, 200);
    let target: SocketAddr = h.controller.sockets().local;
    let drops = h.controller.sockets().drops.clone();

    // A consumer reads the room temperature about five times a second.
    let (stop, mut stopped) = tokio::sync::watch::channel(false);
    let inner = format!("<m:deviceId>{}</m:deviceId><m:property>roomTemperature</m:property>", ac.id);
    let reader = async {
        let (mut ok, mut failed) = (0, Vec::new());
        loop {
            let r = soap(&h, "getProperties", &inner).await;
            if r.status == 200 && r.body.contains("roomTemperature") {
                ok += 1;
            } else {
                failed.push(format!("HTTP {}: {}", r.status, r.body));
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(200)) => {}
                _ = stopped.changed() => return (ok, failed),
            }
        }
    };
    let attack = async {
        // Frames from outside the allowlist (first: a full socket buffer
        // would lose them before the adapter could count them).
        let outsider = UdpSocket::bind((std::net::Ipv4Addr::new(127, 1, 41, 9), 0)).await.unwrap();
        for n in 0..200u16 {
            outsider.send_to(&instance_list(n), target).await.unwrap();
            if n % 50 == 49 {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        }
        // Spoofed instance lists from 50 addresses of the LAN: nodes that
        // claim 84 air conditioners each and never answer a question.
        for host in 100..150 {
            let spoof = UdpSocket::bind((ip(net, host), 0)).await.unwrap();
            spoof.send_to(&instance_list(u16::from(host)), target).await.unwrap();
        }
        // A flood from one host: 20 000 frames, garbage and well formed.
        let flooder = UdpSocket::bind((ip(net, 99), 0)).await.unwrap();
        for n in 0..20_000u32 {
            let bytes = match n % 3 {
                0 => vec![0x10, 0x81, 0xFF, 0xFF, 0x00],
                1 => instance_list(n as u16),
                _ => (0..64).map(|i| (n as u8).wrapping_mul(31).wrapping_add(i)).collect(),
            };
            flooder.send_to(&bytes, target).await.unwrap();
            // In bursts the socket buffer holds, so that the count is the
            // adapter's and not the kernel's.
            if n % 100 == 99 {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        }
        // An observation window: the adapter questions the spoofed nodes
        // (which never answer) while the reads go on.
        tokio::time::sleep(Duration::from_secs(5)).await;
        let _ = stop.send(true);
    };
    let ((ok, failed), ()) = tokio::join!(reader, attack);

    assert!(failed.is_empty(), "reads failed during the flood: {failed:#?}");
    assert!(ok >= 10, "only {ok} reads were made");
    let (flooded, malformed, queue_full) =
        (drops.flooded.load(Relaxed), drops.malformed.load(Relaxed), drops.queue_full.load(Relaxed));
    let not_allowed = drops.not_allowed.load(Relaxed);
    println!(
        "dropped: {flooded} over the rate, {malformed} malformed, {queue_full} with the queue full, {not_allowed} not allowed"
    );
    // 50 frames a second are taken from one source, the rest dropped.
    assert!(flooded >= 19_000, "only {flooded} of the flood's 20 000 frames were dropped over the rate");
    assert_eq!(not_allowed, 200, "frames from outside the allowlist were taken");
    // Spoofed nodes never answer, so nothing of theirs is registered; and
    // nothing is published without an operator's approval anyway.
    let devices = h.registry.list();
    assert_eq!(devices.len(), 1, "spoofed objects were registered: {devices:#?}");
    assert!(devices[0].approved);
    let listed = soap(&h, "listDevices", "").await;
    assert_eq!(listed.body.matches("<device>").count(), 1, "{}", listed.body);
    h.shutdown();
    home.stop();
}
