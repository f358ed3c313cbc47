//! An independent peer: pychonet (Python, from PyPI) discovers the
//! simulator, reads its property maps, and gets and sets the air
//! conditioner and the smart meter. Skipped without Python or pychonet,
//! failed instead under `MUSUBI_REQUIRE_PEERS=1` (as in CI, which installs it).

use std::path::PathBuf;

use musubi_adapter::frame::Eoj;
use musubi_adapter::simulate;

use crate::{home_conf, ip};

fn pychonet_available() -> bool {
    let ok = std::process::Command::new("python3")
        .args(["-c", "import pychonet"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        if std::env::var("MUSUBI_REQUIRE_PEERS").as_deref() == Ok("1") {
            panic!("pychonet is not installed (python3 -m pip install pychonet==2.8.2) and MUSUBI_REQUIRE_PEERS=1");
        }
        println!("skipped: python3 with pychonet is not installed");
    }
    ok
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pychonet_discovers_reads_and_sets_the_simulator() {
    if !pychonet_available() {
        return;
    }
    let net = 30;
    let mut conf = home_conf(net, &[&["homeAirConditioner", "lvSmartElectricEnergyMeter"]]);
    // pychonet joins 224.0.23.0 itself; our node listens there too.
    conf.multicast_group = musubi_adapter::net::MULTICAST;
    let home = simulate::start(&conf).await.unwrap();
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/peers/pychonet_peer.py");
    let out = tokio::process::Command::new("python3")
        .arg(&script)
        .arg(ip(net, 2).to_string())
        .arg(ip(net, 9).to_string())
        .output();
    let out = tokio::time::timeout(std::time::Duration::from_secs(120), out).await.expect("pychonet finishes").unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "pychonet failed: {stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let line = stdout.lines().rev().find(|l| l.starts_with('{')).unwrap_or_else(|| panic!("no result: {stdout}"));
    let v: serde_json::Value = serde_json::from_str(line).unwrap();
    assert_eq!(v["discovered"], true, "{v}");
    assert_eq!(v["instances"], serde_json::json!(["013001", "028801"]), "{v}");
    // The identification number pychonet read is the node's 0x83.
    assert!(v["uid"].as_str().is_some_and(|u| u.len() == 32), "{v}");
    let maps = |k: &str| v[k].as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u8).collect::<Vec<u8>>();
    assert!(maps("ac_get_map").contains(&0xBB) && maps("ac_get_map").contains(&0x9F), "{v}");
    assert_eq!(maps("ac_set_map"), vec![0x80, 0x93, 0xB0, 0xB3], "{v}");
    assert_eq!(maps("ac_status_map"), vec![0x80, 0x88, 0xB0, 0xB3], "{v}");
    assert!(maps("meter_get_map").contains(&0xE7) && maps("meter_get_map").contains(&0xE0), "{v}");
    // pychonet shows raw bytes as Python bytes literals.
    assert_eq!(v["room_temperature"], "b'\\x1c'", "28 °C: {v}");
    assert_eq!(v["target_before"], "b'\\x1a'", "26 °C: {v}");
    assert_eq!(v["set_accepted"], true, "{v}");
    assert_eq!(v["target_after"], "b'\\x16'", "22 °C read back: {v}");
    assert_eq!(v["instantaneous_power"], 480, "{v}");
    assert_eq!(v["cumulative_energy"], 12000, "{v}");
    // The set reached the simulated device.
    let node = home.node(ip(net, 2)).unwrap();
    assert_eq!(node.lock().unwrap().object(Eoj([0x01, 0x30, 0x01])).unwrap().value(0xB3), Some(&[22][..]));
    home.stop();
}
