//! `musubi demo`: a dev CA, a consumer's and a provider's security server on
//! their own loopback addresses with the real ports (8080, 5500), and a small
//! provider information system with one example service.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use musubi_pki::token::{CertStatus, KeyAlgorithm, KeyRole, SoftToken, TokenOptions};
use musubi_pki::{DevCa, Issued, Usage, csr};
use musubi_protocol::soap::{self, Direction, Limits, Soap};
use musubi_protocol::{ClientId, SecurityServerId, ServiceId};
use musubi_security_server::conf::{
    ApprovedCa, ApprovedTsa, GlobalConf, Member, OcspResponder, SecurityServer, ServerConf, Service, SigningKeyConf,
};
use serde::Serialize;
use std::sync::Arc;
use tokio::sync::watch;

/// The instance identifier of the demo network.
pub const INSTANCE: &str = "DEMO";

/// What a demo network is made of.
#[derive(Debug, Clone)]
pub struct Options {
    /// Consumer's security server, provider's security server, provider IS.
    pub ips: [Ipv4Addr; 3],
    /// Where the dev CA's OCSP responder listens (port 8888).
    pub pki_ip: Ipv4Addr,
    /// How often the servers fetch OCSP responses for their certificates, seconds.
    pub ocsp_fetch_interval_secs: u64,
    /// How soon a failed OCSP fetch is retried, seconds.
    pub ocsp_retry_secs: u64,
    /// How old an OCSP response may be (the global `ocspFreshnessSeconds`).
    pub ocsp_freshness_seconds: u64,
    /// How often the servers look for a changed trust file or renewed certificates, seconds.
    pub conf_check_secs: u64,
    /// How often the message logs are time-stamped, seconds.
    pub timestamping_interval_seconds: u64,
    /// How long time-stamping may fail before exchanges are refused, seconds.
    pub acceptable_timestamp_failure_period_secs: u64,
    /// Whether the consumer's server logs message bodies.
    pub consumer_body_logging: bool,
    /// Whether records are time-stamped before each response is released.
    pub timestamp_immediately: bool,
    /// How often time-stamped records are archived, seconds.
    pub archive_interval_secs: u64,
    /// How long archived records stay in the database, seconds.
    pub keep_records_for_secs: u64,
    /// How the archivers group records into files.
    pub archive_grouping: musubi_security_server::conf::ArchiveGrouping,
    /// A command the consumer's archiver runs with each new archive file.
    pub archive_transfer_command: Option<String>,
    /// PostgreSQL URLs for the consumer's and the provider's message logs
    /// (SQLite files when `None`).
    pub database_urls: Option<[String; 2]>,
    /// Whether to start the provider information system.
    pub start_provider: bool,
    /// A change to the trust file before it is written (tests use it to make
    /// the network inconsistent on purpose).
    pub edit_global: Option<fn(&mut GlobalConf)>,
    /// Whether to run a simulated home and the ECHONET Lite adapter behind
    /// the provider's security server.
    pub adapter: bool,
    /// The adapter's address (provider endpoint 8090, admin 8091, UDP 3610)
    /// and the simulated home's.
    pub adapter_ips: [Ipv4Addr; 2],
    /// The multicast group of the simulated home's LAN.
    pub echonet_group: Ipv4Addr,
    /// Run a central server and have both servers take their trust from its
    /// global configuration (none: a trust file, `global-conf.toml`).
    pub central: Option<CentralOptions>,
    /// Seconds between the servers' configuration downloads.
    pub configuration_download_secs: u64,
}

/// The global group whose members may read the door-lock state (none at
/// first: the demo's denied service).
pub const DOOR_LOCK_GROUP: &str = "door-lock-readers";

/// The demo's central server.
#[derive(Debug, Clone)]
pub struct CentralOptions {
    /// Where it serves the global configuration.
    pub listen: SocketAddr,
    /// Seconds between two generations.
    pub generation_interval_secs: u64,
    /// Seconds a generation stays valid.
    pub expire_after_secs: u64,
    /// Where it takes management requests over HTTPS (X-Road's 4001).
    pub management_listen: SocketAddr,
    /// Where its admin API listens (HTTPS, 4000).
    pub admin_listen: SocketAddr,
    /// The servers register themselves (authentication certificates, then
    /// clients) with management requests; otherwise the demo enters them
    /// into the registry directly.
    pub register: bool,
    /// Registrations of existing members are approved at once (X-Road's
    /// auto-approval); otherwise they wait for [`Network::approve_pending`].
    pub auto_approve: bool,
}

impl Default for CentralOptions {
    fn default() -> Self {
        let ip = Ipv4Addr::new(127, 0, 0, 8);
        Self {
            listen: SocketAddr::new(ip.into(), 8081),
            generation_interval_secs: 60,
            expire_after_secs: 600,
            management_listen: SocketAddr::new(ip.into(), 4001),
            admin_listen: SocketAddr::new(ip.into(), 4000),
            register: true,
            auto_approve: true,
        }
    }
}

impl Default for Options {
    fn default() -> Self {
        Self {
            ips: [Ipv4Addr::new(127, 0, 0, 2), Ipv4Addr::new(127, 0, 0, 3), Ipv4Addr::new(127, 0, 0, 4)],
            pki_ip: Ipv4Addr::new(127, 0, 0, 5),
            ocsp_fetch_interval_secs: 1200,
            ocsp_retry_secs: 60,
            ocsp_freshness_seconds: 3600,
            conf_check_secs: 10,
            timestamping_interval_seconds: 10,
            acceptable_timestamp_failure_period_secs: 14400,
            consumer_body_logging: true,
            timestamp_immediately: false,
            archive_interval_secs: 3600,
            keep_records_for_secs: 30 * 24 * 3600,
            archive_grouping: musubi_security_server::conf::ArchiveGrouping::None,
            archive_transfer_command: None,
            database_urls: None,
            start_provider: true,
            edit_global: None,
            adapter: false,
            adapter_ips: [Ipv4Addr::new(127, 0, 0, 6), Ipv4Addr::new(127, 0, 0, 7)],
            echonet_group: musubi_adapter::net::MULTICAST,
            central: None,
            configuration_download_secs: 60,
        }
    }
}

/// Facts about a running demo, written to `demo.json`.
#[derive(Debug, Clone, Serialize)]
pub struct Facts {
    /// Where information systems of the consumer send SOAP.
    pub client_proxy_url: String,
    /// The consumer's client identifier.
    pub client: String,
    /// The example service.
    pub service: String,
    /// A service the consumer has no access right for.
    pub denied_service: String,
    /// The example request file.
    pub request_file: PathBuf,
    /// The provider's security server proxy.
    pub provider_server_proxy: String,
    /// The provider information system.
    pub provider_url: String,
    /// The dev CA's OCSP responder.
    pub ocsp_responder_url: String,
    /// The dev time-stamping authority (RFC 3161 over HTTP).
    pub tsa_url: String,
    /// Message log databases of both servers.
    pub message_logs: [PathBuf; 2],
    /// The ECHONET Lite adapter, when the demo runs one.
    pub adapter: Option<AdapterFacts>,
    /// The servers' web UIs.
    pub web_ui: Vec<WebUi>,
    /// The demo user's name and password on every web UI.
    pub web_ui_login: Option<(String, String)>,
}

/// One server's web UI.
#[derive(Debug, Clone, Serialize)]
pub struct WebUi {
    /// consumer, provider or central.
    pub server: String,
    /// Its address.
    pub url: String,
}

/// The demo's web UI user (every role).
pub const DEMO_UI_USER: &str = "demo";

/// Makes the first web UI user of the admin API at `addr` with the setup
/// token its server printed, as the first-run wizard does.
async fn make_ui_user(addr: SocketAddr, admin_dir: &Path, token: &str, user: &str, password: &str) -> Result<()> {
    let pem = std::fs::read_to_string(admin_dir.join("admin-tls.pem")).context("the admin API's certificate")?;
    let cert = musubi_pki::pem_decode("CERTIFICATE", &pem).context("the admin API's certificate is not PEM")?;
    let body = serde_json::json!({ "setup_token": token, "username": user, "password": password });
    let (status, answer) = musubi_admin::client::request(
        &format!("https://{addr}/api/v1/first-user"),
        &cert,
        "POST",
        &[("content-type", "application/json")],
        serde_json::to_vec(&body)?,
        64 * 1024,
    )
    .await?;
    anyhow::ensure!(status == 200, "HTTP {status}: {}", String::from_utf8_lossy(&answer));
    Ok(())
}

/// Facts about the demo's adapter and simulated home.
#[derive(Debug, Clone, Serialize)]
pub struct AdapterFacts {
    /// The adapter's provider endpoint (the WSDL is at `?wsdl`).
    pub provider_url: String,
    /// The adapter's admin API and web UI (HTTPS).
    pub admin_url: String,
    /// The admin API's folder: `admin-api-key`, `admin-tls.pem`.
    pub admin_dir: PathBuf,
    /// The simulated home's node.
    pub home: String,
    /// The simulated air conditioner's device id.
    pub air_conditioner: String,
    /// A request reading the air conditioner's room temperature.
    pub get_request_file: PathBuf,
    /// A request setting its target temperature to 24 °C.
    pub set_request_file: PathBuf,
    /// The adapter's services on the provider's security server.
    pub services: Vec<String>,
}

/// A running demo network.
pub struct Network {
    /// The consumer's security server.
    pub consumer: musubi_security_server::Handle,
    /// The provider's security server.
    pub provider: musubi_security_server::Handle,
    /// The CA that issued every certificate; its OCSP responder runs with the network.
    pub ca: Arc<DevCa>,
    /// The provider's security server authentication certificate and key.
    pub provider_auth: Issued,
    /// The consumer's security server authentication certificate and key.
    pub consumer_auth: Issued,
    /// The consumer member's signing certificate and key.
    pub consumer_sign: Issued,
    /// Facts for people and scripts.
    pub facts: Facts,
    provider_stop: watch::Sender<bool>,
    ocsp_stop: watch::Sender<bool>,
    tsa_stop: watch::Sender<bool>,
    tsa: Arc<musubi_pki::DevTsa>,
    /// The simulated home, when the demo runs the adapter.
    pub home: Option<musubi_adapter::simulate::Home>,
    /// The adapter, when the demo runs one.
    pub adapter: Option<musubi_adapter::Handle>,
    /// The central server, when the demo runs one, with its configuration.
    pub central: Option<(musubi_central_server::Handle, musubi_central_server::CentralConf)>,
}

/// The adapter's services the demo publishes (and grants the consumer).
pub const ADAPTER_SERVICES: [&str; 5] =
    ["listDevices", "getProperties", "setProperties", "getHomeAirConditioner", "getLvSmartElectricEnergyMeter"];

/// The version the adapter's WSDL gives its services (`xrd:version`).
pub const ADAPTER_VERSION: &str = "v1";

/// A request of the consumer to an adapter operation.
pub fn adapter_request(op: &str, query_id: &str, inner: &str) -> String {
    let (consumer, provider, ..) = ids();
    let service = ServiceId::new(provider, op, Some(ADAPTER_VERSION))
        .unwrap_or_else(|e| unreachable!("demo identifiers are valid: {e}"));
    let body = format!("    <{op} xmlns=\"{}\">{inner}</{op}>", musubi_adapter::service::NAMESPACE);
    soap::build_request(&consumer, &service, query_id, Some("DEMO:care-worker-7"), &body)
}

/// Starts the simulated home and the adapter, finds the devices and approves
/// the air conditioner, the meter and the sensor (the lock stays unapproved).
async fn start_adapter(
    dir: &Path,
    opts: &Options,
) -> Result<(musubi_adapter::simulate::Home, musubi_adapter::Handle, String)> {
    use musubi_adapter::simulate::{HomeConfig, NodeConfig};
    let [adapter_ip, home_ip] = opts.adapter_ips;
    let home = musubi_adapter::simulate::start(&HomeConfig {
        nodes: vec![NodeConfig {
            address: home_ip,
            devices: ["homeAirConditioner", "lvSmartElectricEnergyMeter", "temperatureSensor", "electricLock"]
                .map(String::from)
                .to_vec(),
        }],
        tick_secs: 10,
        max_answer_delay_ms: 200,
        max_announce_delay_ms: 200,
        port: musubi_adapter::net::PORT,
        multicast_group: opts.echonet_group,
        tcp: false,
    })
    .await
    .context("starting the simulated home")?;
    let conf = musubi_adapter::AdapterConfig {
        state_dir: dir.join("adapter"),
        provider_listen: SocketAddr::new(adapter_ip.into(), 8090),
        admin_listen: SocketAddr::new(adapter_ip.into(), 8091),
        max_devices: 1000,
        net: musubi_adapter::net::NetConfig {
            bind: adapter_ip,
            multicast_group: opts.echonet_group,
            allow: vec![musubi_adapter::net::Cidr { addr: home_ip.into(), prefix: 32 }],
            ..Default::default()
        },
        pacing: musubi_adapter::PacingFile { min_gap_ms: 50, ..Default::default() },
        discovery: musubi_adapter::DiscoveryConfig {
            window_ms: 1000,
            nodes: vec![home_ip.into()],
            announce_delay_ms: 200,
            ..Default::default()
        },
        webhooks: Default::default(),
        manual_devices: vec![],
        definitions_dir: None,
    };
    write(&dir.join("adapter.toml"), &toml::to_string_pretty(&conf)?)?;
    let adapter = musubi_adapter::start(conf).await.context("starting the ECHONET Lite adapter")?;
    adapter.discover().await;
    for class in [0x0130, 0x0288, 0x0011] {
        adapter.registry.approve_class(class, true, "musubi demo").await?;
    }
    let ac = adapter
        .registry
        .list()
        .into_iter()
        .find(|d| d.class() == 0x0130)
        .context("the simulated air conditioner was not discovered")?;
    Ok((home, adapter, ac.id))
}

/// Starts the demo's central server and enters into its registry what the
/// trust file would hold: member classes, members and subsystems, the CA and
/// TSA, settings, and both security servers with their clients.
async fn start_central(
    dir: &Path,
    c: &CentralOptions,
    global: &GlobalConf,
) -> Result<(musubi_central_server::Handle, musubi_central_server::CentralConf)> {
    let conf = musubi_central_server::CentralConf {
        instance: INSTANCE.into(),
        state_dir: dir.join("central"),
        database_url: None,
        database_password_file: None,
        conf_listen: c.listen,
        public_address: c.listen.to_string(),
        generation_interval_secs: c.generation_interval_secs,
        expire_after_secs: c.expire_after_secs,
        management_listen: Some(c.management_listen),
        admin_listen: Some(c.admin_listen),
    };
    let cs = musubi_central_server::start(conf.clone()).await.context("starting the central server")?;
    let reg = &cs.registry;
    let der = |pem: &str| musubi_pki::pem_decode("CERTIFICATE", pem).context("a demo certificate is not PEM");
    reg.add_member_class("GOV", "Government").await?;
    reg.add_member_class("COM", "Commercial").await?;
    for m in &global.members {
        reg.add_member(&m.id, &m.name).await?;
        for sub in &m.subsystems {
            reg.add_subsystem(&ClientId::subsystem(INSTANCE, m.id.member_class(), m.id.member_code(), sub)?).await?;
        }
    }
    for ca in &global.approved_cas {
        let ocsp = ca
            .ocsp
            .iter()
            .map(|o| Ok((o.url.clone(), o.cert.as_deref().map(der).transpose()?)))
            .collect::<Result<Vec<_>>>()?;
        reg.add_ca(&ca.name, &der(&ca.cert)?, &ocsp, ca.profile_info.as_deref()).await?;
    }
    for t in &global.approved_tsas {
        reg.add_tsa(&t.name, &t.url, &der(&t.cert)?).await?;
    }
    reg.set_setting("ocspFreshnessSeconds", &global.ocsp_freshness_seconds.to_string()).await?;
    reg.set_setting("timeStampingIntervalSeconds", &global.timestamping_interval_seconds.to_string()).await?;
    let auto = if c.auto_approve { "true" } else { "false" };
    reg.set_setting("autoApproveAuthCertRegRequests", auto).await?;
    reg.set_setting("autoApproveClientRegRequests", auto).await?;
    // Registering servers register themselves.
    let servers = if c.register { &[][..] } else { &global.security_servers[..] };
    for s in servers {
        for hash in &s.auth_cert_hashes {
            reg.add_server(s.id.owner(), s.id.server_code(), &s.address, hash).await?;
        }
        for client in &s.clients {
            reg.add_server_client(s.id.owner(), s.id.server_code(), client).await?;
        }
    }
    cs.generate().await?;
    Ok((cs, conf))
}

/// Takes the central server's next generation into use on each server.
async fn take_new_configuration(
    central: &Option<(musubi_central_server::Handle, musubi_central_server::CentralConf)>,
    servers: &[&musubi_security_server::Handle],
) -> Result<()> {
    let (cs, _) = central.as_ref().context("the demo runs no central server")?;
    cs.generate().await?;
    for s in servers {
        anyhow::ensure!(s.update_global_conf().await, "{} did not take the new global configuration", s.server_id());
    }
    Ok(())
}

/// What the demo starts a server from.
enum Pending {
    /// A complete configuration (keys enrolled by the demo).
    Ready(Box<ServerConf>),
    /// The operator's configuration before setup.
    Setup(toml::Table),
}

/// A client of a running server's admin API, with the certificate and API key
/// it keeps in `state_dir/admin`.
pub fn admin_client(handle: &musubi_security_server::Handle) -> Result<musubi_admin::client::AdminClient> {
    let addr = handle.admin_addr.context("the server runs no admin API")?;
    admin_client_at(&handle.state_dir().join("admin"), addr)
}

fn admin_client_at(dir: &Path, addr: SocketAddr) -> Result<musubi_admin::client::AdminClient> {
    let pem = std::fs::read_to_string(dir.join("admin-tls.pem")).context("the admin API's certificate")?;
    let cert = musubi_pki::pem_decode("CERTIFICATE", &pem).context("the admin API's certificate is not PEM")?;
    let key = std::fs::read_to_string(dir.join("admin-api-key")).context("the admin API key")?;
    Ok(musubi_admin::client::AdminClient::new(&format!("https://{addr}"), cert, &key))
}

/// Sets a security server up the way its operator does, through its admin
/// API (`musubi init`, `keys generate`, `keys csr`, the CA, `certs import`),
/// then starts it. Returns the running server with its authentication and
/// signing certificates (and, for the tests, their keys from the token).
async fn set_up_through_api(
    base: toml::Table,
    id: &SecurityServerId,
    d: &Path,
    ca: &DevCa,
    anchor: &Path,
) -> Result<(musubi_security_server::Handle, Issued, Issued)> {
    use serde_json::json;
    let setup = musubi_security_server::start_setup(base).await?;
    let api = admin_client_at(&d.join("state").join("admin"), setup.admin_addr)?;
    let pin = random_pin()?;
    let anchor_xml = std::fs::read_to_string(anchor).context("the anchor")?;
    api.post(
        "/api/v1/initialization",
        &json!({ "anchor": anchor_xml, "owner": id.owner().to_string(), "server_code": id.server_code(), "pin": *pin }),
    )
    .await
    .context("musubi init")?;
    let mut keys = Vec::new();
    for (role, usage) in [("auth", Usage::Auth), ("sign", Usage::Sign)] {
        let key = api.post("/api/v1/keys", &json!({ "role": role })).await.context("musubi keys generate")?;
        let key_id = key["id"].as_str().context("a key id")?.to_string();
        let csr = api.post(&format!("/api/v1/keys/{key_id}/csr"), &json!({})).await.context("musubi keys csr")?;
        let csr_der = musubi_pki::pem_decode("CERTIFICATE REQUEST", csr["csr"].as_str().unwrap_or_default())
            .context("the CSR is not PEM")?;
        let cert = ca.sign_csr(&csr_der, usage)?;
        api.post("/api/v1/certificates", &json!({ "certificate": musubi_pki::pem("CERTIFICATE", &cert) }))
            .await
            .context("musubi certs import")?;
        keys.push((key_id, cert));
    }
    setup.wait_complete().await;
    let conf = setup.server_conf()?;
    setup.shutdown().await;
    let handle = musubi_security_server::start(conf).await?;
    // The tests sign as this server now and then: its keys, from its token.
    let token = SoftToken::open(&d.join("state").join("token"), TokenOptions::default())?;
    token.login(&pin).await?;
    let mut issued = keys
        .into_iter()
        .map(|(key_id, cert_der)| Ok(Issued { cert_der, key_pkcs8: token.private_key(&key_id)?.to_vec() }))
        .collect::<Result<Vec<_>>>()?
        .into_iter();
    let (Some(auth), Some(sign)) = (issued.next(), issued.next()) else { unreachable!("two keys") };
    Ok((handle, auth, sign))
}

/// `musubi clients add` and `musubi clients register` for `client`.
async fn add_and_register_client(handle: &musubi_security_server::Handle, client: &ClientId) -> Result<i64> {
    let api = admin_client(handle)?;
    api.post("/api/v1/clients", &serde_json::json!({ "client": client.to_string() })).await?;
    let path = format!("/api/v1/clients/{}/register", crate::admin::percent(&client.to_string()));
    let answer =
        api.post(&path, &serde_json::Value::Null).await.with_context(|| format!("registering client {client}"))?;
    answer["request_id"].as_i64().context("a request id")
}

/// The demo provider's services as a configuration file lists them (for
/// servers that are not set up through their admin API).
fn demo_file_services(service: &ServiceId, denied: &ServiceId, url: &str, consumer: &ClientId) -> Vec<Service> {
    vec![
        Service {
            id: service.clone(),
            url: url.to_string(),
            timeout_secs: 10,
            enabled: true,
            allowed_clients: vec![consumer.clone()],
            allowed_global_groups: vec![],
        },
        Service {
            id: denied.clone(),
            url: url.to_string(),
            timeout_secs: 10,
            enabled: true,
            allowed_clients: vec![],
            // Opened by the central server's global group (empty in the demo).
            allowed_global_groups: vec![DOOR_LOCK_GROUP.into()],
        },
    ]
}

/// The demo provider's WSDL: its two operations, without versions.
fn demo_wsdl(url: &str) -> String {
    let (_, _, service, denied) = ids();
    let operation = |code: &str| {
        format!(
            "    <wsdl:operation name=\"{code}\"><soap:operation soapAction=\"\" style=\"document\"/></wsdl:operation>\n"
        )
    };
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <wsdl:definitions xmlns:wsdl=\"http://schemas.xmlsoap.org/wsdl/\" \
         xmlns:soap=\"http://schemas.xmlsoap.org/wsdl/soap/\" xmlns:tns=\"http://example.org/home\" \
         targetNamespace=\"http://example.org/home\">\n\
         <wsdl:binding name=\"homeBinding\" type=\"tns:homePortType\">\n\
         <soap:binding style=\"document\" transport=\"http://schemas.xmlsoap.org/soap/http\"/>\n\
         {}{}</wsdl:binding>\n\
         <wsdl:service name=\"home\"><wsdl:port binding=\"tns:homeBinding\" name=\"homePort\">\
         <soap:address location=\"{url}\"/></wsdl:port></wsdl:service>\n\
         </wsdl:definitions>\n",
        operation(service.service_code()),
        operation(denied.service_code())
    )
}

/// Publishes the demo provider's services on its security server as an
/// operator does (`musubi service add`, `musubi access grant`): the WSDL in
/// `dir/provider.wsdl`, the example service for the consumer, the door-lock
/// service for the global group.
async fn publish_demo_services(api: &musubi_admin::client::AdminClient, dir: &Path, url: &str) -> Result<()> {
    let (consumer, provider, service, denied) = ids();
    let file = dir.join("provider.wsdl");
    let wsdl = demo_wsdl(url);
    write(&file, &wsdl)?;
    let descriptions = format!("/api/v1/clients/{}/service-descriptions", crate::admin::percent(&provider.to_string()));
    api.post(&descriptions, &serde_json::json!({ "url": format!("file://{}", file.display()), "wsdl": wsdl }))
        .await
        .context("adding the demo provider's WSDL")?;
    for (svc, subject) in [(&service, consumer.to_string()), (&denied, format!("global:{DOOR_LOCK_GROUP}"))] {
        let path = format!("/api/v1/services/{}/access-rights", crate::admin::percent(&svc.to_string()));
        api.post(&path, &serde_json::json!({ "subject": subject }))
            .await
            .with_context(|| format!("granting {svc} to {subject}"))?;
    }
    Ok(())
}

fn random_pin() -> Result<zeroize::Zeroizing<String>> {
    use ring::rand::SecureRandom as _;
    let mut raw = [0u8; 12];
    ring::rand::SystemRandom::new().fill(&mut raw).map_err(|_| anyhow::anyhow!("no randomness for the PIN"))?;
    Ok(zeroize::Zeroizing::new(raw.iter().map(|b| format!("{b:02x}")).collect()))
}

/// Identifiers used by the demo.
pub fn ids() -> (ClientId, ClientId, ServiceId, ServiceId) {
    fn ok<T>(r: Result<T, musubi_protocol::IdError>) -> T {
        r.unwrap_or_else(|e| unreachable!("demo identifiers are valid: {e}"))
    }
    let consumer = ok(ClientId::subsystem(INSTANCE, "GOV", "1001", "care"));
    let provider = ok(ClientId::subsystem(INSTANCE, "COM", "2002", "home"));
    let service = ok(ServiceId::new(provider.clone(), "getRoomTemperature", None));
    let denied = ok(ServiceId::new(provider.clone(), "getDoorLockState", None));
    (consumer, provider, service, denied)
}

/// An example request of the consumer for `service`.
pub fn example_request(service: &ServiceId, query_id: &str) -> String {
    let (consumer, ..) = ids();
    let body = format!("    <{0} xmlns=\"http://example.org/home\"><room>living</room></{0}>", service.service_code());
    soap::build_request(&consumer, service, query_id, Some("DEMO:care-worker-7"), &body)
}

fn write(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}

fn write_key(path: &Path, pem: &str) -> Result<()> {
    write(path, pem)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(())
}

/// Key generation in the server's token → CSR → the dev CA → import check.
fn enroll(token: &SoftToken, ca: &DevCa, subject: csr::Subject, role: KeyRole) -> Result<Issued> {
    let (label, usage) = match role {
        KeyRole::Auth => ("authentication", Usage::Auth),
        KeyRole::Sign => ("signing", Usage::Sign),
    };
    let info = token.generate(role, label, KeyAlgorithm::EcdsaP256)?;
    let key = token.private_key(&info.id)?;
    let request = csr::create(&key, &subject)?;
    let cert = ca.sign_csr(&request, usage)?;
    csr::matches_key(&cert, &key)?;
    // Imported into the token; the demo's trust file registers it at once.
    let imported = token.import_certificate(&cert)?;
    token.set_status(&imported.hash, CertStatus::Registered)?;
    Ok(Issued { cert_der: cert, key_pkcs8: key.to_vec() })
}

/// A new token in `dir` with a random PIN written to `dir/../pin` (mode 0600).
fn new_token(server_dir: &Path) -> Result<SoftToken> {
    let pin = random_pin()?;
    std::fs::create_dir_all(server_dir)?;
    write_key(&server_dir.join("pin"), &pin)?;
    Ok(SoftToken::init(&server_dir.join("token"), &pin, TokenOptions::default())?)
}

impl Network {
    /// Writes keys and configuration into `dir` and starts everything.
    pub async fn start(dir: &Path, opts: Options) -> Result<Self> {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let [ip_a, ip_b, ip_p] = opts.ips;
        let (consumer, provider, service, denied) = ids();
        let ss_a = SecurityServerId::new(consumer.member_id(), "ss-consumer")?;
        let ss_b = SecurityServerId::new(provider.member_id(), "ss-provider")?;
        let ca = Arc::new(DevCa::new("Musubi Demo CA")?);
        let (ocsp_addr, ocsp_stop) =
            musubi_pki::http::start_ocsp_responder(ca.clone(), SocketAddr::new(opts.pki_ip.into(), 8888))
                .await
                .with_context(|| format!("cannot start the OCSP responder on {}:8888", opts.pki_ip))?;
        let ocsp_responder_url = format!("http://{ocsp_addr}/");
        let tsa = Arc::new(musubi_pki::DevTsa::new(&ca, "Musubi Demo TSA")?);
        let (tsa_addr, tsa_stop) = musubi_pki::http::start_tsa(tsa.clone(), SocketAddr::new(opts.pki_ip.into(), 8899))
            .await
            .with_context(|| format!("cannot start the time-stamping authority on {}:8899", opts.pki_ip))?;
        // Servers that register themselves are set up through their admin API
        // (see `set_up_through_api`); the others get their keys here. Either way
        // every certificate comes the way an operator gets one: a key generated
        // on the server, a CSR, the CA's answer, and the import check.
        let register = opts.central.as_ref().is_some_and(|c| c.register);
        let enrolled = if register {
            None
        } else {
            let token_a = new_token(&dir.join("consumer"))?;
            let token_b = new_token(&dir.join("provider"))?;
            Some([
                enroll(&token_a, &ca, csr::Subject::Auth(ss_a.clone()), KeyRole::Auth)?,
                enroll(&token_b, &ca, csr::Subject::Auth(ss_b.clone()), KeyRole::Auth)?,
                enroll(&token_a, &ca, csr::Subject::Sign(consumer.member_id()), KeyRole::Sign)?,
                enroll(&token_b, &ca, csr::Subject::Sign(provider.member_id()), KeyRole::Sign)?,
            ])
        };
        let pem_of = |i: usize| enrolled.iter().map(|e| e[i].cert_pem()).collect::<Vec<_>>();
        let hash_of = |i: usize| enrolled.iter().map(|e| musubi_pki::cert_hash(&e[i].cert_der)).collect::<Vec<_>>();
        let mut global = GlobalConf {
            instance_identifier: INSTANCE.into(),
            approved_cas: vec![ApprovedCa {
                name: "Musubi Demo CA".into(),
                cert: musubi_pki::pem("CERTIFICATE", ca.cert_der()),
                intermediates: vec![],
                ocsp: vec![OcspResponder { url: ocsp_responder_url.clone(), cert: None }],
                profile_info: None,
                authentication_only: false,
            }],
            ocsp_freshness_seconds: opts.ocsp_freshness_seconds,
            approved_tsas: vec![ApprovedTsa {
                name: "Musubi Demo TSA".into(),
                url: format!("http://{tsa_addr}/"),
                cert: musubi_pki::pem("CERTIFICATE", tsa.cert_der()),
            }],
            timestamping_interval_seconds: opts.timestamping_interval_seconds,
            members: vec![
                Member {
                    id: consumer.member_id(),
                    name: "Demo City".into(),
                    subsystems: vec!["care".into()],
                    signing_certs: pem_of(2),
                },
                Member {
                    id: provider.member_id(),
                    name: "Demo Home Cloud".into(),
                    subsystems: vec!["home".into()],
                    signing_certs: pem_of(3),
                },
            ],
            security_servers: vec![
                SecurityServer {
                    id: ss_a.clone(),
                    address: ip_a.to_string(),
                    auth_cert_hashes: hash_of(0),
                    clients: vec![consumer.member_id(), consumer.clone()],
                    maintenance: None,
                },
                SecurityServer {
                    id: ss_b.clone(),
                    address: ip_b.to_string(),
                    auth_cert_hashes: hash_of(1),
                    clients: vec![provider.member_id(), provider.clone()],
                    maintenance: None,
                },
            ],
            global_groups: vec![],
            management_service: None,
        };
        if let Some(edit) = opts.edit_global {
            edit(&mut global);
        }
        let (global_path, central, anchor) = match &opts.central {
            None => {
                let path = dir.join("global-conf.toml");
                write(&path, &toml::to_string_pretty(&global)?)?;
                (Some(path), None, None)
            }
            Some(c) => {
                let (handle, conf) = start_central(dir, c, &global).await?;
                let anchor = dir.join("anchor.xml");
                write(&anchor, &handle.anchor().await?)?;
                (None, Some((handle, conf)), Some(anchor))
            }
        };
        let provider_url = format!("http://{ip_p}:8090/");
        let (home, adapter, ac_id) = if opts.adapter {
            let (h, a, id) = start_adapter(dir, &opts).await?;
            (Some(h), Some(a), id)
        } else {
            (None, None, String::new())
        };
        // Servers set up through their admin APIs get the adapter's services the
        // way an operator publishes them (`musubi adapter publish`), once registered;
        // the others list them in their configuration file.
        let publish_through_api = opts.central.as_ref().is_some_and(|c| c.register && c.auto_approve);
        let adapter_services: Vec<Service> = adapter
            .iter()
            .filter(|_| !publish_through_api)
            .flat_map(|a| {
                let url = format!("http://{}/", a.provider_addr);
                let provider = provider.clone();
                let consumer = consumer.clone();
                ADAPTER_SERVICES.into_iter().map(move |code| Service {
                    id: ServiceId::new(provider.clone(), code, Some(ADAPTER_VERSION))
                        .unwrap_or_else(|e| unreachable!("demo identifiers are valid: {e}")),
                    url: url.clone(),
                    timeout_secs: 30,
                    enabled: true,
                    allowed_clients: vec![consumer.clone()],
                    allowed_global_groups: vec![],
                })
            })
            .collect();
        let mut confs = Vec::new();
        for (index, name, id, ip, member, services) in [
            (0, "consumer", &ss_a, ip_a, consumer.member_id(), vec![]),
            (
                1,
                "provider",
                &ss_b,
                ip_b,
                provider.member_id(),
                if publish_through_api {
                    vec![]
                } else {
                    demo_file_services(&service, &denied, &provider_url, &consumer)
                }
                .into_iter()
                .chain(adapter_services.iter().cloned())
                .collect(),
            ),
        ] {
            let d = dir.join(name);
            std::fs::create_dir_all(&d)?;
            if let Some(e) = &enrolled {
                write(&d.join("auth.pem"), &e[index].cert_pem())?;
                write(&d.join("sign.pem"), &e[index + 2].cert_pem())?;
            }
            let conf = ServerConf {
                server_id: id.clone(),
                global_conf: global_path.clone(),
                client_proxy_listen: SocketAddr::new(ip.into(), 8080),
                server_proxy_listen: SocketAddr::new(ip.into(), 5500),
                database: d.join("messagelog.sqlite"),
                database_url: opts.database_urls.as_ref().map(|urls| urls[usize::from(name == "provider")].clone()),
                database_password_file: None,
                token_dir: d.join("token"),
                pin_file: Some(d.join("pin")),
                auth_cert: d.join("auth.pem"),
                signing_keys: vec![SigningKeyConf { member, cert: d.join("sign.pem") }],
                services,
                ocsp_listen: SocketAddr::new(ip.into(), 5577),
                state_dir: d.join("state"),
                ocsp_fetch_interval_secs: opts.ocsp_fetch_interval_secs,
                ocsp_retry_secs: opts.ocsp_retry_secs,
                conf_check_secs: opts.conf_check_secs,
                acceptable_timestamp_failure_period_secs: opts.acceptable_timestamp_failure_period_secs,
                message_body_logging: name != "consumer" || opts.consumer_body_logging,
                body_logging_off_for: vec![],
                timestamp_immediately: opts.timestamp_immediately,
                archive_dir: None,
                archive_interval_secs: opts.archive_interval_secs,
                archive_grouping: opts.archive_grouping,
                archive_transfer_command: opts.archive_transfer_command.clone().filter(|_| name == "consumer"),
                keep_records_for_secs: opts.keep_records_for_secs,
                max_body_bytes: 32 * 1024 * 1024,
                configuration_anchor: anchor.clone(),
                configuration_download_secs: opts.configuration_download_secs,
                admin_listen: Some(SocketAddr::new(ip.into(), 4000)),
                health_listen: Some(SocketAddr::new(ip.into(), 5588)),
                provider_ca_file: None,
            };
            if register {
                // What an operator writes before setup: the installation's
                // settings; identity, keys and anchor come through the admin API.
                let mut base = toml::Table::try_from(&conf)?;
                for key in [
                    "server_id",
                    "global_conf",
                    "token_dir",
                    "pin_file",
                    "auth_cert",
                    "signing_keys",
                    "configuration_anchor",
                ] {
                    base.remove(key);
                }
                write(&d.join("security-server.toml"), &toml::to_string_pretty(&base)?)?;
                confs.push(Pending::Setup(base));
            } else {
                write(&d.join("security-server.toml"), &toml::to_string_pretty(&conf)?)?;
                confs.push(Pending::Ready(Box::new(conf)));
            }
        }
        let request_file = dir.join("request.xml");
        write(&request_file, &example_request(&service, "demo-query-1"))?;
        let mut adapter_facts = match &adapter {
            Some(a) => {
                let get_request_file = dir.join("adapter-get-request.xml");
                let device = format!("<deviceId>{ac_id}</deviceId>");
                write(
                    &get_request_file,
                    &adapter_request(
                        "getProperties",
                        "demo-home-1",
                        &format!("{device}<property>roomTemperature</property>"),
                    ),
                )?;
                let set_request_file = dir.join("adapter-set-request.xml");
                write(
                    &set_request_file,
                    &adapter_request(
                        "setProperties",
                        "demo-home-2",
                        &format!("{device}<property name=\"targetTemperature\">24</property>"),
                    ),
                )?;
                Some(AdapterFacts {
                    provider_url: format!("http://{}/", a.provider_addr),
                    admin_url: format!("https://{}/", a.admin_addr),
                    admin_dir: a.admin_dir.clone(),
                    home: format!("{}:{}", opts.adapter_ips[1], musubi_adapter::net::PORT),
                    air_conditioner: ac_id.clone(),
                    get_request_file,
                    set_request_file,
                    services: adapter_services.iter().map(|s| s.id.to_string()).collect(),
                })
            }
            None => None,
        };
        let (provider_stop, stop_rx) = watch::channel(false);
        if opts.start_provider {
            let listener = tokio::net::TcpListener::bind((ip_p, 8090))
                .await
                .with_context(|| format!("cannot listen on {ip_p}:8090 for the provider"))?;
            tokio::spawn(serve_provider(listener, stop_rx));
        }
        let logs = [dir.join("consumer").join("messagelog.sqlite"), dir.join("provider").join("messagelog.sqlite")];
        let mut started = Vec::new();
        for (pending, (name, ip, id)) in confs.into_iter().zip([("consumer", ip_a, &ss_a), ("provider", ip_b, &ss_b)]) {
            let what = || format!("starting the {name}'s security server");
            started.push(match pending {
                Pending::Ready(conf) => {
                    let handle = musubi_security_server::start(*conf).await.with_context(what)?;
                    let e = enrolled.as_ref().context("enrolled servers have certificates")?;
                    let index = usize::from(name == "provider");
                    (handle, e[index].clone(), e[index + 2].clone())
                }
                Pending::Setup(base) => {
                    let anchor = anchor.as_deref().context("registering servers follow a central server")?;
                    let (handle, auth, sign) =
                        set_up_through_api(base, id, &dir.join(name), &ca, anchor).await.with_context(what)?;
                    // The operator's `musubi certs register`.
                    let api = admin_client(&handle)?;
                    let hash = musubi_pki::cert_hash(&auth.cert_der);
                    api.post(
                        &format!("/api/v1/certificates/{hash}/register"),
                        &serde_json::json!({ "address": ip.to_string() }),
                    )
                    .await
                    .with_context(|| format!("registering the authentication certificate of {}", handle.server_id()))?;
                    (handle, auth, sign)
                }
            });
        }
        let mut started = started.into_iter();
        let (Some((consumer_handle, auth_a, sign_a)), Some((provider_handle, auth_b, _))) =
            (started.next(), started.next())
        else {
            unreachable!("two servers started")
        };
        if opts.central.as_ref().is_some_and(|c| c.register && c.auto_approve) {
            // With auto-approval the servers are registered at once; their
            // clients follow, added and registered through the admin API.
            take_new_configuration(&central, &[&consumer_handle, &provider_handle]).await?;
            for (handle, client) in [(&consumer_handle, &consumer), (&provider_handle, &provider)] {
                add_and_register_client(handle, client).await?;
            }
            take_new_configuration(&central, &[&consumer_handle, &provider_handle]).await?;
            publish_demo_services(&admin_client(&provider_handle)?, dir, &provider_url).await?;
            if let (Some(a), Some(facts)) = (&adapter, adapter_facts.as_mut()) {
                let published = crate::admin::publish_adapter(
                    &admin_client(&provider_handle)?,
                    &provider.to_string(),
                    &format!("http://{}/", a.provider_addr),
                    &[consumer.to_string()],
                )
                .await
                .context("publishing the adapter's services (musubi adapter publish)")?;
                facts.services = published["services"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|s| s.as_str().map(str::to_owned))
                    .collect();
            }
        }
        // The web UIs, each with a demo user made the way the first-run wizard does.
        let mut web_ui = Vec::new();
        let ui_password = random_pin()?.to_string();
        let central_ui =
            central.as_ref().map(|(cs, _)| (cs.admin_addr, dir.join("central/admin"), cs.ui_setup_token.clone()));
        for (name, addr, admin_dir, token) in [
            (
                "consumer",
                consumer_handle.admin_addr,
                consumer_handle.state_dir().join("admin"),
                consumer_handle.ui_setup_token.clone(),
            ),
            (
                "provider",
                provider_handle.admin_addr,
                provider_handle.state_dir().join("admin"),
                provider_handle.ui_setup_token.clone(),
            ),
        ]
        .into_iter()
        .chain(central_ui.map(|(addr, d, token)| ("central", addr, d, token)))
        .chain(adapter.as_ref().map(|a| ("adapter", Some(a.admin_addr), a.admin_dir.clone(), a.ui_setup_token.clone())))
        {
            if let (Some(addr), Some(token)) = (addr, token) {
                make_ui_user(addr, &admin_dir, &token, DEMO_UI_USER, &ui_password)
                    .await
                    .with_context(|| format!("making the demo's web UI user on the {name} server"))?;
                web_ui.push(WebUi { server: name.to_string(), url: format!("https://{addr}/") });
            }
        }
        let web_ui_login = (!web_ui.is_empty()).then(|| (DEMO_UI_USER.to_string(), ui_password));
        let facts = Facts {
            web_ui,
            web_ui_login,
            client_proxy_url: format!("http://{}/", consumer_handle.client_proxy_addr),
            client: consumer.to_string(),
            service: service.to_string(),
            denied_service: denied.to_string(),
            request_file,
            provider_server_proxy: provider_handle.server_proxy_addr.to_string(),
            provider_url,
            ocsp_responder_url,
            tsa_url: format!("http://{tsa_addr}/"),
            message_logs: logs,
            adapter: adapter_facts,
        };
        write(&dir.join("demo.json"), &serde_json::to_string_pretty(&facts)?)?;
        Ok(Self {
            consumer: consumer_handle,
            provider: provider_handle,
            ca,
            provider_auth: auth_b,
            consumer_auth: auth_a,
            consumer_sign: sign_a,
            facts,
            provider_stop,
            ocsp_stop,
            tsa_stop,
            tsa,
            home,
            adapter,
            central,
        })
    }

    /// Approves every pending registration request on the central server (as
    /// its registration officer) and has both servers take the result into use.
    pub async fn approve_pending(&self) -> Result<Vec<i64>> {
        use musubi_central_server::requests::Status;
        let (cs, _) = self.central.as_ref().context("the demo runs no central server")?;
        let mut approved = Vec::new();
        for r in cs.registry.requests(Some(Status::Pending)).await? {
            cs.registry.approve(r.id, "demo registration officer").await?;
            approved.push(r.id);
        }
        take_new_configuration(&self.central, &[&self.consumer, &self.provider]).await?;
        Ok(approved)
    }

    /// Adds each server's client subsystem and asks the central server to
    /// register it, through the servers' admin APIs.
    pub async fn request_client_registrations(&self) -> Result<()> {
        let (consumer, provider, ..) = ids();
        add_and_register_client(&self.consumer, &consumer).await?;
        add_and_register_client(&self.provider, &provider).await?;
        Ok(())
    }

    /// Splits the network into its two servers and the rest (CA services and
    /// provider), which keeps running until [`Services::shutdown`] — for tests
    /// that run a server elsewhere.
    pub fn into_parts(self) -> (musubi_security_server::Handle, musubi_security_server::Handle, Services) {
        let services =
            Services { provider_stop: self.provider_stop, ocsp_stop: self.ocsp_stop, tsa_stop: self.tsa_stop };
        (self.consumer, self.provider, services)
    }

    /// Stops the dev CA's OCSP responder (to test a responder outage).
    pub fn stop_ocsp_responder(&self) {
        let _ = self.ocsp_stop.send(true);
    }

    /// Starts the OCSP responder again at the same address.
    pub async fn restart_ocsp_responder(&mut self) -> Result<()> {
        let addr: SocketAddr = self
            .facts
            .ocsp_responder_url
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .parse()
            .context("OCSP responder address")?;
        let (_, stop) = musubi_pki::http::start_ocsp_responder(self.ca.clone(), addr).await?;
        self.ocsp_stop = stop;
        Ok(())
    }

    /// Stops the dev TSA (to test a time-stamping outage).
    pub fn stop_tsa(&self) {
        let _ = self.tsa_stop.send(true);
    }

    /// Starts the dev TSA again at the same address.
    pub async fn restart_tsa(&mut self) -> Result<()> {
        let addr: SocketAddr =
            self.facts.tsa_url.trim_start_matches("http://").trim_end_matches('/').parse().context("TSA address")?;
        let (_, stop) = musubi_pki::http::start_tsa(self.tsa.clone(), addr).await?;
        self.tsa_stop = stop;
        Ok(())
    }

    /// Stops everything, finishing in-flight exchanges.
    pub async fn shutdown(self) {
        if let Some(a) = self.adapter {
            a.stop().await;
        }
        if let Some(h) = self.home {
            h.stop();
        }
        let _ = self.provider_stop.send(true);
        self.consumer.shutdown().await;
        self.provider.shutdown().await;
        if let Some((c, _)) = self.central {
            c.shutdown();
        }
        let _ = self.ocsp_stop.send(true);
        let _ = self.tsa_stop.send(true);
    }
}

/// The CA services and the provider of a split [`Network`].
pub struct Services {
    provider_stop: watch::Sender<bool>,
    ocsp_stop: watch::Sender<bool>,
    tsa_stop: watch::Sender<bool>,
}

impl Services {
    /// Stops them.
    pub fn shutdown(self) {
        let _ = self.provider_stop.send(true);
        let _ = self.ocsp_stop.send(true);
        let _ = self.tsa_stop.send(true);
    }
}

/// The demo provider: answers every X-Road request with a `…Response` that
/// carries the same header, as a real provider information system does.
async fn serve_provider(listener: tokio::net::TcpListener, mut stop: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            accepted = listener.accept() => {
                let Ok((tcp, _)) = accepted else { continue };
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(|req: Request<hyper::body::Incoming>| async move {
                        let ct = req.headers().get(hyper::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("text/xml").to_owned();
                        let body = req.into_body().collect().await.map(|c| c.to_bytes()).unwrap_or_default();
                        Ok::<_, std::convert::Infallible>(provider_answer(&ct, &body))
                    });
                    let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(tcp), svc).await;
                });
            }
        }
    }
}

/// The demo provider's answer to one request (also served over TLS by tests).
pub fn provider_answer(content_type: &str, body: &[u8]) -> Response<Full<Bytes>> {
    let parsed =
        musubi_protocol::package::decode(content_type, body, Direction::Request, &Limits::default()).map(|p| p.soap);
    let reply = match parsed {
        Ok(Soap::Message(m)) => {
            let h = m.header();
            let code = h.service.service_code();
            let inner = format!(
                "    <{code}Response xmlns=\"http://example.org/home\"><room>living</room><temperature unit=\"celsius\">22.5</temperature><attachments>{n}</attachments></{code}Response>",
                n = attachment_count(content_type, body)
            );
            soap::build_request(&h.client, &h.service, &h.id, h.user_id.as_deref(), &inner)
        }
        _ => musubi_protocol::Code::INVALID_SOAP
            .client("the demo provider could not read the request")
            .to_xml()
            .into_iter()
            .map(char::from)
            .collect(),
    };
    let mut r = Response::new(Full::new(Bytes::from(reply)));
    r.headers_mut()
        .insert(hyper::header::CONTENT_TYPE, hyper::header::HeaderValue::from_static("text/xml; charset=UTF-8"));
    r
}

fn attachment_count(content_type: &str, body: &[u8]) -> usize {
    musubi_protocol::package::decode(content_type, body, Direction::Request, &Limits::default())
        .map(|p| p.attachments.len())
        .unwrap_or(0)
}
