//! A network of hosts in network namespaces this test makes itself: a WAN
//! (a bridge) joining a central-server host (with the test PKI), a consumer
//! security-server host and a provider security-server host, and a home LAN
//! between the provider's host (running the ECHONET Lite adapter) and a home
//! host running the simulator, with multicast between them. Every component
//! runs from its built binary with its configuration file, and is set up the
//! way the operator guide (deploy/README.md) says, with the `musubi` command.
//!
//! Then the provider's link goes down (the consumer's information system gets
//! a `server.clientproxy.network_error` fault within its timeout), comes back (traffic resumes),
//! and the provider's security server is restarted with requests in flight
//! (each ends with an answer or a clean fault; every answered exchange is in
//! both message logs).
//!
//! Needs root, `ip` (iproute2) and curl; prints `skipped: …` without them and
//! fails instead when `MUSUBI_REQUIRE_PEERS=1`. The namespaces and processes
//! are removed when the test ends, passed or failed.

use std::collections::HashMap;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use musubi_protocol::{ClientId, ServiceId};

use crate::{binary, have, is_root, ok, skip};
use serde_json::Value;

const WAN: &str = "10.231.0";
const LAN: &str = "192.168.231";
const INSTANCE: &str = "MH";
const CONSUMER: &str = "SUBSYSTEM:MH/GOV/1001/care";
const PROVIDER: &str = "SUBSYSTEM:MH/COM/2002/home";
/// The consumer information system's timeout (curl --max-time), seconds.
const IS_TIMEOUT: u64 = 40;

/// The namespaces of one run; deleted (with every process in them) on drop.
struct Hosts {
    prefix: String,
}

impl Hosts {
    fn ns(&self, host: &str) -> String {
        format!("{}-{host}", self.prefix)
    }

    fn ip(&self, args: &[&str]) {
        ok(Command::new("ip").args(args));
    }

    /// `program args` run on `host`.
    fn exec(&self, host: &str, program: &Path) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.ns(host)]).arg(program);
        cmd
    }

    fn link(&self, host: &str, state: &str) {
        self.ip(&["-n", &self.ns(host), "link", "set", "eth0", state]);
    }
}

impl Drop for Hosts {
    fn drop(&mut self) {
        for host in ["wan", "cs", "consumer", "provider", "home"] {
            let ns = self.ns(host);
            if let Ok(out) = Command::new("ip").args(["netns", "pids", &ns]).output() {
                for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                    let _ = Command::new("sh").arg("-c").arg(format!("kill -KILL {pid}")).status();
                }
            }
            let _ = Command::new("ip").args(["netns", "del", &ns]).status();
        }
    }
}

/// Makes the hosts: the WAN bridge with cs (.2), consumer (.3) and provider
/// (.4), and the home LAN between provider (.1) and home (.2).
fn make_hosts() -> Option<Hosts> {
    let hosts = Hosts { prefix: format!("mh{}", std::process::id()) };
    for host in ["wan", "cs", "consumer", "provider", "home"] {
        let out = Command::new("ip").args(["netns", "add", &hosts.ns(host)]).output().unwrap();
        if !out.status.success() {
            skip(&format!("cannot make network namespaces: {}", String::from_utf8_lossy(&out.stderr).trim()));
            return None;
        }
        hosts.ip(&["-n", &hosts.ns(host), "link", "set", "lo", "up"]);
    }
    let wan = hosts.ns("wan");
    hosts.ip(&["-n", &wan, "link", "add", "br0", "type", "bridge"]);
    hosts.ip(&["-n", &wan, "link", "set", "br0", "up"]);
    for (host, n) in [("cs", 2), ("consumer", 3), ("provider", 4)] {
        let ns = hosts.ns(host);
        let port = format!("to-{host}");
        hosts.ip(&["-n", &wan, "link", "add", &port, "type", "veth", "peer", "name", "eth0", "netns", &ns]);
        hosts.ip(&["-n", &wan, "link", "set", &port, "master", "br0", "up"]);
        hosts.ip(&["-n", &ns, "addr", "add", &format!("{WAN}.{n}/24"), "dev", "eth0"]);
        hosts.ip(&["-n", &ns, "link", "set", "eth0", "up"]);
    }
    let (provider, home) = (hosts.ns("provider"), hosts.ns("home"));
    hosts.ip(&["-n", &provider, "link", "add", "lan0", "type", "veth", "peer", "name", "eth0", "netns", &home]);
    hosts.ip(&["-n", &provider, "addr", "add", &format!("{LAN}.1/24"), "dev", "lan0"]);
    hosts.ip(&["-n", &provider, "link", "set", "lan0", "up"]);
    hosts.ip(&["-n", &home, "addr", "add", &format!("{LAN}.2/24"), "dev", "eth0"]);
    hosts.ip(&["-n", &home, "link", "set", "eth0", "up"]);
    Some(hosts)
}

/// A long-running program, killed on drop; it tells of its readiness on its
/// own NOTIFY_SOCKET, as under systemd.
pub(crate) struct Service {
    name: String,
    child: Child,
    notify: UnixDatagram,
    log: PathBuf,
}

impl Service {
    pub(crate) fn start(name: &str, mut cmd: Command, dir: &Path) -> Service {
        let socket_path = dir.join(format!("{name}.notify"));
        let _ = std::fs::remove_file(&socket_path);
        let notify = UnixDatagram::bind(&socket_path).unwrap();
        notify.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
        let log = dir.join(format!("{name}.log"));
        let file = std::fs::OpenOptions::new().create(true).append(true).open(&log).unwrap();
        let child = cmd
            .env("NOTIFY_SOCKET", &socket_path)
            .env("RUST_LOG", "info")
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .spawn()
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        Service { name: name.to_string(), child, notify, log }
    }

    /// Waits for a notification holding `line` (READY=1, STATUS=serving, …).
    pub(crate) fn wait_for(&mut self, line: &str) {
        let mut buf = [0u8; 4096];
        loop {
            match self.notify.recv(&mut buf) {
                Ok(n) => {
                    let msg = String::from_utf8_lossy(&buf[..n]);
                    if msg.lines().any(|l| l == line) {
                        return;
                    }
                }
                Err(e) => panic!(
                    "{}: no {line} ({e}); its log:\n{}",
                    self.name,
                    std::fs::read_to_string(&self.log).unwrap_or_default()
                ),
            }
        }
    }

    /// SIGTERM, as systemd stops it; waits for the exit, which must be clean.
    pub(crate) fn stop(mut self) {
        let pid = self.child.id();
        assert!(Command::new("sh").arg("-c").arg(format!("kill -TERM {pid}")).status().unwrap().success());
        let status = self.child.wait().unwrap();
        assert!(
            status.success(),
            "{} stopped by SIGTERM: {status}; its log:\n{}",
            self.name,
            std::fs::read_to_string(&self.log).unwrap_or_default()
        );
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One admin API as the `musubi` command reaches it on its host.
#[derive(Clone)]
struct Admin {
    host: &'static str,
    url: String,
    state_dir: PathBuf,
}

struct Net<'a> {
    hosts: &'a Hosts,
    dir: PathBuf,
    musubi: PathBuf,
}

impl Net<'_> {
    /// `musubi ARGS --output json` on the admin API's host; must succeed.
    fn musubi(&self, admin: &Admin, args: &[&str]) -> Value {
        let (ok, out, err) = self.try_musubi(admin, args);
        assert!(ok, "musubi {args:?} on {}: {err}", admin.host);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("musubi {args:?} printed no JSON ({e}): {out}"))
    }

    fn try_musubi(&self, admin: &Admin, args: &[&str]) -> (bool, String, String) {
        let out = self
            .hosts
            .exec(admin.host, &self.musubi)
            .args(args)
            .args(["--output", "json"])
            .env("MUSUBI_SERVER", &admin.url)
            .env("MUSUBI_SERVER_CERT", admin.state_dir.join("admin/admin-tls.pem"))
            .env("MUSUBI_API_KEY_FILE", admin.state_dir.join("admin/admin-api-key"))
            .env_remove("MUSUBI_API_KEY")
            .env("RUST_LOG", "warn")
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// Polls `musubi ARGS` until `done` holds of its answer (a readiness
    /// condition, with a deadline).
    fn until(&self, admin: &Admin, args: &[&str], what: &str, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let (ok, out, err) = self.try_musubi(admin, args);
            let v = serde_json::from_str::<Value>(&out).unwrap_or(Value::Null);
            if ok && done(&v) {
                return v;
            }
            assert!(Instant::now() < deadline, "{what}: still not after 90 s: {out}{err}");
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    /// The consumer's information system sends one request through its own
    /// security server; returns the HTTP status (0: curl gave up) and body.
    fn call(&self, query_id: &str, device: &str) -> (u16, String) {
        call(&self.hosts.ns("consumer"), &self.dir, query_id, device)
    }
}

fn request_xml(query_id: &str, device: &str) -> String {
    let client: ClientId = CONSUMER.parse().unwrap();
    let provider: ClientId = PROVIDER.parse().unwrap();
    let service = ServiceId::new(provider, "getProperties", Some("v1")).unwrap();
    let body = format!(
        "    <getProperties xmlns=\"{}\"><deviceId>{device}</deviceId><property>roomTemperature</property></getProperties>",
        musubi_adapter::service::NAMESPACE
    );
    musubi_protocol::soap::build_request(&client, &service, query_id, Some("MH:care-worker-1"), &body)
}

fn fault_code(body: &str) -> Option<&str> {
    let start = body.find("<faultcode>")? + "<faultcode>".len();
    let end = start + body[start..].find("</faultcode>")?;
    Some(&body[start..end])
}

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

fn security_server_toml(dir: &Path, name: &str) -> PathBuf {
    let state = dir.join(name);
    let path = dir.join(format!("{name}.toml"));
    write(
        &path,
        &format!(
            "client_proxy_listen = \"0.0.0.0:8080\"\nserver_proxy_listen = \"0.0.0.0:5500\"\n\
             ocsp_listen = \"0.0.0.0:5577\"\nadmin_listen = \"127.0.0.1:4000\"\n\
             state_dir = \"{state}\"\ndatabase = \"{state}/messagelog.sqlite\"\n\
             configuration_download_secs = 2\n",
            state = state.display()
        ),
    );
    path
}

#[test]
fn a_network_of_hosts_exchanges_survives_a_link_failure_and_a_provider_restart() {
    if !is_root() {
        return skip("not root: network namespaces need root");
    }
    for tool in ["ip", "curl"] {
        if !have(tool) {
            return skip(&format!("{tool} is not installed (Debian's iproute2, curl)"));
        }
    }
    let Some(hosts) = make_hosts() else { return };
    let dir = crate::scratch("multihost");
    std::fs::create_dir_all(&dir).unwrap();
    let net = Net { hosts: &hosts, dir: dir.clone(), musubi: binary("musubi") };
    let (ss_bin, cs_bin, adapter_bin) =
        (binary("musubi-security-server"), binary("musubi-central-server"), binary("musubi-adapter"));

    // The central server's host: the test PKI, then the central server.
    let pki_dir = dir.join("pki");
    let mut cmd = hosts.exec("cs", &net.musubi);
    cmd.args(["dev-pki", "serve", "--dir"]).arg(&pki_dir).args(["--listen", &format!("{WAN}.2")]);
    let mut pki = Service::start("pki", cmd, &dir);
    pki.wait_for("READY=1");
    let cs_toml = dir.join("central-server.toml");
    let cs_state = dir.join("central-server");
    write(
        &cs_toml,
        &format!(
            "instance = \"{INSTANCE}\"\nconf_listen = \"{WAN}.2:80\"\npublic_address = \"{WAN}.2\"\n\
             management_listen = \"{WAN}.2:4001\"\nadmin_listen = \"127.0.0.1:4000\"\n\
             state_dir = \"{}\"\ngeneration_interval_secs = 2\n",
            cs_state.display()
        ),
    );
    ok(hosts.exec("cs", &cs_bin).args(["check-config", "--config"]).arg(&cs_toml));
    let mut cmd = hosts.exec("cs", &cs_bin);
    cmd.arg("--config").arg(&cs_toml);
    let mut cs = Service::start("central-server", cmd, &dir);
    cs.wait_for("READY=1");
    let officer = Admin { host: "cs", url: "https://127.0.0.1:4000".into(), state_dir: cs_state };

    // The network's members and trust (guide: "Set up the central server").
    net.musubi(&officer, &["central", "add-member-class", "GOV", "--description", "Government"]);
    net.musubi(&officer, &["central", "add-member-class", "COM", "--description", "Companies"]);
    net.musubi(&officer, &["central", "add-member", "MEMBER:MH/GOV/1001", "--name", "Care City"]);
    net.musubi(&officer, &["central", "add-member", "MEMBER:MH/COM/2002", "--name", "Home Devices Inc"]);
    net.musubi(&officer, &["central", "add-subsystem", "MEMBER:MH/GOV/1001", "care"]);
    net.musubi(&officer, &["central", "add-subsystem", "MEMBER:MH/COM/2002", "home"]);
    let (ca, tsa) = (pki_dir.join("ca.pem"), pki_dir.join("tsa.pem"));
    let ocsp_url = format!("http://{WAN}.2:8888/");
    net.musubi(
        &officer,
        &["central", "add-ca", "--name", "Test CA", "--cert", ca.to_str().unwrap(), "--ocsp-url", &ocsp_url],
    );
    let tsa_url = format!("http://{WAN}.2:8899/");
    net.musubi(
        &officer,
        &["central", "add-tsa", "--name", "Test TSA", "--url", &tsa_url, "--cert", tsa.to_str().unwrap()],
    );
    net.musubi(&officer, &["central", "generate"]);
    let anchor = dir.join("anchor.xml");
    net.musubi(&officer, &["central", "anchor", "--out", anchor.to_str().unwrap()]);

    // Each security server on its own host (guide: "Install and initialise",
    // "Register"), from the binary with its configuration file.
    let mut servers = HashMap::new();
    for (host, n, owner, code, client) in [
        ("consumer", 3, "MEMBER:MH/GOV/1001", "ss-care", CONSUMER),
        ("provider", 4, "MEMBER:MH/COM/2002", "ss-home", PROVIDER),
    ] {
        let toml = security_server_toml(&dir, host);
        ok(hosts.exec(host, &ss_bin).args(["check-config", "--config"]).arg(&toml));
        let mut cmd = hosts.exec(host, &ss_bin);
        cmd.arg("--config").arg(&toml);
        let mut ss = Service::start(&format!("ss-{host}"), cmd, &dir);
        ss.wait_for("READY=1");
        let admin = Admin { host, url: "https://127.0.0.1:4000".into(), state_dir: dir.join(host) };
        let pin = dir.join(format!("{host}.pin"));
        write(&pin, "a-long-token-pin-1");
        net.musubi(
            &admin,
            &["init", "--anchor", anchor.to_str().unwrap(), "--owner", owner, "--server-code", code, "--pin-file"]
                .into_iter()
                .chain([pin.to_str().unwrap()])
                .collect::<Vec<_>>(),
        );
        let mut auth_hash = String::new();
        for role in ["auth", "sign"] {
            let key = net.musubi(&admin, &["keys", "generate", "--role", role]);
            let csr = dir.join(format!("{host}-{role}.csr"));
            let cert = dir.join(format!("{host}-{role}.pem"));
            net.musubi(&admin, &["keys", "csr", key["id"].as_str().unwrap(), "--out", csr.to_str().unwrap()]);
            // The CA's part: here the test PKI, reached over the WAN.
            ok(hosts
                .exec(host, &net.musubi)
                .args(["dev-pki", "issue", "--url", &format!("http://{WAN}.2:8890/"), "--role", role, "--csr"])
                .arg(&csr)
                .arg("--out")
                .arg(&cert));
            let imported = net.musubi(&admin, &["certs", "import", cert.to_str().unwrap()]);
            if role == "auth" {
                auth_hash = imported["hash"].as_str().unwrap().to_string();
            }
        }
        // Set up: the server starts serving by itself.
        ss.wait_for("STATUS=serving");
        let sent = net.musubi(&admin, &["certs", "register", &auth_hash, "--address", &format!("{WAN}.{n}")]);
        net.musubi(&officer, &["requests", "approve", &sent["request_id"].to_string()]);
        net.musubi(&admin, &["clients", "add", client]);
        let sent = net.musubi(&admin, &["clients", "register", client]);
        net.musubi(&officer, &["requests", "approve", &sent["request_id"].to_string()]);
        net.until(&admin, &["clients", "list"], "the client registered", |v| {
            v.as_array().is_some_and(|l| l.iter().any(|c| c["id"] == client && c["status"] == "registered"))
        });
        net.until(&admin, &["status"], "the server registered", |v| v["registered"] == true);
        servers.insert(host, (ss, admin, toml));
    }

    // The home: the simulator on the home LAN, the adapter on the provider's
    // host, finding it by multicast (guide: "Publish home devices").
    let mut cmd = hosts.exec("home", &adapter_bin);
    cmd.args(["simulate", "--node", &format!("{LAN}.2=homeAirConditioner,temperatureSensor")]);
    let mut home = Service::start("home", cmd, &dir);
    home.wait_for("READY=1");
    let adapter_state = dir.join("adapter");
    let adapter_toml = dir.join("adapter.toml");
    write(
        &adapter_toml,
        &format!(
            "state_dir = \"{}\"\nprovider_listen = \"127.0.0.1:8090\"\nadmin_listen = \"127.0.0.1:8091\"\n\
             [net]\nbind = \"{LAN}.1\"\nallow = [\"{LAN}.0/24\"]\n\
             [discovery]\nwindow_ms = 2000\nannounce_delay_ms = 200\nanswer_delay_ms = 200\n",
            adapter_state.display()
        ),
    );
    ok(hosts.exec("provider", &adapter_bin).args(["check-config", "--config"]).arg(&adapter_toml));
    let mut cmd = hosts.exec("provider", &adapter_bin);
    cmd.args(["run", "--config"]).arg(&adapter_toml);
    let mut adapter = Service::start("adapter", cmd, &dir);
    adapter.wait_for("READY=1");
    let devices = Admin { host: "provider", url: "https://127.0.0.1:8091".into(), state_dir: adapter_state };
    net.musubi(&devices, &["devices", "discover"]);
    let list = net.until(&devices, &["devices", "list"], "the air conditioner found by multicast", |v| {
        v.as_array().is_some_and(|l| l.iter().any(|d| d["deviceType"] == "homeAirConditioner"))
    });
    let ac = list.as_array().unwrap().iter().find(|d| d["deviceType"] == "homeAirConditioner").unwrap();
    let ac_id = ac["id"].as_str().unwrap().to_string();
    net.musubi(&devices, &["devices", "approve", &ac_id]);
    let provider_admin = servers["provider"].1.clone();
    net.musubi(
        &provider_admin,
        &["adapter", "publish", "--client", PROVIDER, "--adapter", "http://127.0.0.1:8090/", "--grant", CONSUMER],
    );

    // The consumer's information system reads the room temperature.
    let mut answered = Vec::new();
    let (status, body) = net.call("mh-first", &ac_id);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("name=\"roomTemperature\""), "{body}");
    answered.push("mh-first".to_string());

    // The provider's link goes down: the right fault, within the IS's timeout.
    hosts.link("provider", "down");
    let started = Instant::now();
    let (status, body) = net.call("mh-link-down", &ac_id);
    println!("link down: HTTP {status} after {:?}", started.elapsed());
    assert_ne!(status, 0, "no answer within the information system's {IS_TIMEOUT} s");
    assert_eq!(fault_code(&body), Some("server.clientproxy.network_error"), "{body}");
    // It comes back: traffic resumes by itself.
    hosts.link("provider", "up");
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut attempt = 0;
    loop {
        attempt += 1;
        let id = format!("mh-link-up-{attempt}");
        let (status, body) = net.call(&id, &ac_id);
        if status == 200 {
            assert!(body.contains("name=\"roomTemperature\""), "{body}");
            answered.push(id);
            break;
        }
        assert_eq!(fault_code(&body), Some("server.clientproxy.network_error"), "{body}");
        assert!(Instant::now() < deadline, "traffic did not resume within 60 s of the link coming back");
        std::thread::sleep(Duration::from_millis(500));
    }

    // The provider's security server restarts with requests in flight: each
    // ends with an answer or a clean fault, and the server serves again.
    let (provider_ss, _, provider_toml) = servers.remove("provider").unwrap();
    let in_flight: Vec<_> = (0..6)
        .map(|i| {
            let id = format!("mh-restart-{i}");
            let (ns, dir, ac_id) = (hosts.ns("consumer"), dir.clone(), ac_id.clone());
            (id.clone(), std::thread::spawn(move || call(&ns, &dir, &id, &ac_id)))
        })
        .collect();
    // SIGTERM once the provider has taken the first of them (the adapter
    // paces frames to one device, so the others queue behind it).
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let provider_db = dir.join("provider/messagelog.sqlite");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !log_records(&rt, &provider_db).iter().any(|(q, d)| q.starts_with("mh-restart-") && d == "request") {
        assert!(Instant::now() < deadline, "no request reached the provider within 30 s");
        std::thread::sleep(Duration::from_millis(20));
    }
    provider_ss.stop();
    // While it is down, the consumer is told so at once.
    let (status, body) = net.call("mh-provider-down", &ac_id);
    assert_eq!((status, fault_code(&body)), (500, Some("server.clientproxy.network_error")), "{body}");
    let mut cmd = hosts.exec("provider", &ss_bin);
    cmd.arg("--config").arg(&provider_toml);
    let mut provider_ss = Service::start("ss-provider-again", cmd, &dir);
    provider_ss.wait_for("STATUS=serving");
    for (id, t) in in_flight {
        let (status, body) = t.join().unwrap();
        println!("{id} during the restart: HTTP {status} {}", fault_code(&body).unwrap_or("answered"));
        match status {
            200 => {
                assert!(body.contains("name=\"roomTemperature\""), "{id}: {body}");
                answered.push(id);
            }
            500 => assert!(fault_code(&body).is_some_and(|c| c.starts_with("server.")), "{id}: {body}"),
            other => panic!("{id}: neither an answer nor a clean fault (HTTP {other}): {body}"),
        }
    }
    let (status, body) = net.call("mh-after-restart", &ac_id);
    assert_eq!(status, 200, "{body}");
    answered.push("mh-after-restart".to_string());

    // Stop everything as systemd would, then read both logs: every answered
    // exchange is there, request and response, on both sides.
    let (consumer_ss, _, _) = servers.remove("consumer").unwrap();
    consumer_ss.stop();
    provider_ss.stop();
    adapter.stop();
    home.stop();
    cs.stop();
    pki.stop();
    for side in ["consumer", "provider"] {
        let rows = log_records(&rt, &dir.join(side).join("messagelog.sqlite"));
        for id in &answered {
            for direction in ["request", "response"] {
                assert!(
                    rows.iter().any(|(q, d)| q == id && d == direction),
                    "the {side}'s log lacks the {direction} of {id}, which was answered"
                );
            }
        }
    }
    drop(hosts);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The consumer's information system (curl, on the consumer's host) sends one
/// request through its own security server; returns the HTTP status (0: no
/// answer within the IS's timeout) and the body.
fn call(ns: &str, dir: &Path, query_id: &str, device: &str) -> (u16, String) {
    let request = dir.join(format!("request-{query_id}.xml"));
    std::fs::write(&request, request_xml(query_id, device)).unwrap();
    let out = Command::new("ip")
        .args(["netns", "exec", ns, "curl", "-s", "-m", &IS_TIMEOUT.to_string(), "-w", "\n%{http_code}", "-H"])
        .arg("Content-Type: text/xml; charset=UTF-8")
        .arg("--data-binary")
        .arg(format!("@{}", request.display()))
        .arg("http://127.0.0.1:8080/")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (code.trim().parse().unwrap_or(0), body.to_string())
}

/// The (query id, direction) of every record in a security server's log.
fn log_records(rt: &tokio::runtime::Runtime, db: &Path) -> Vec<(String, String)> {
    rt.block_on(async {
        let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}?mode=ro", db.display())).await.unwrap();
        let rows = sqlx::query_as("SELECT query_id, direction FROM message_log").fetch_all(&pool).await.unwrap();
        pool.close().await;
        rows
    })
}
