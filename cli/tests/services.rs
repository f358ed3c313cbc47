//! A data provider publishes a service with the `musubi` CLI and decides who
//! may call it: a WSDL added to its subsystem, access granted to a local
//! group holding the consumer's subsystem, the service disabled with a
//! notice and enabled again, the right revoked; then granted to a global
//! group whose membership the central server's officer changes. The consumer's calls go
//! through both security servers of a demo network whose servers registered
//! themselves with its central server.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use musubi::demo::{CentralOptions, Network, Options, example_request, ids};
use serde_json::Value;

const NET: u8 = 51;

/// Runs `musubi ARGS --output json` against the admin API in `admin_dir`.
async fn musubi(addr: std::net::SocketAddr, admin_dir: &Path, args: &[&str]) -> Result<Value, String> {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_musubi"))
        .args(args)
        .args(["--output", "json"])
        .env("MUSUBI_SERVER", format!("https://{addr}"))
        .env("MUSUBI_SERVER_CERT", admin_dir.join("admin-tls.pem"))
        .env("MUSUBI_API_KEY_FILE", admin_dir.join("admin-api-key"))
        .env("RUST_LOG", "warn")
        .output()
        .await
        .unwrap();
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    Ok(serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("musubi {args:?} printed no JSON: {e}")))
}

/// The consumer's information system calls `service`; returns (status, body).
async fn call(cp: std::net::SocketAddr, service: &musubi_protocol::ServiceId, n: u32) -> (u16, String) {
    let (status, _, body) = http(cp, "POST", "/", &[], example_request(service, &format!("svc-{n}"))).await;
    (status, body)
}

/// One HTTP request to the consumer's client proxy; (status, content type, body).
async fn http(
    cp: std::net::SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: String,
) -> (u16, String, String) {
    let tcp = tokio::net::TcpStream::connect(cp).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await.unwrap();
    tokio::spawn(conn);
    let mut req = hyper::Request::builder()
        .method(method)
        .uri(path)
        .header("host", cp.to_string())
        .header("content-type", "text/xml; charset=UTF-8");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = sender.send_request(req.body(Full::new(Bytes::from(body))).unwrap()).await.unwrap();
    let status = resp.status().as_u16();
    let ct = resp.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
    (status, ct, String::from_utf8_lossy(&resp.into_body().collect().await.unwrap().to_bytes()).into_owned())
}

fn wsdl(provider_url: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<wsdl:definitions xmlns:wsdl="http://schemas.xmlsoap.org/wsdl/" xmlns:soap="http://schemas.xmlsoap.org/wsdl/soap/"
    xmlns:xrd="http://x-road.eu/xsd/xroad.xsd" xmlns:tns="http://example.org/home" targetNamespace="http://example.org/home">
  <wsdl:binding name="homeBinding" type="tns:homePortType">
    <soap:binding style="document" transport="http://schemas.xmlsoap.org/soap/http"/>
    <wsdl:operation name="getHumidity">
      <soap:operation soapAction="" style="document"/>
      <xrd:version>v1</xrd:version>
      <xrd:title>Room humidity</xrd:title>
    </wsdl:operation>
  </wsdl:binding>
  <wsdl:service name="home">
    <wsdl:port binding="tns:homeBinding" name="homePort"><soap:address location="{provider_url}"/></wsdl:port>
  </wsdl:service>
</wsdl:definitions>
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_publishes_a_service_and_grants_it_to_a_local_group_with_the_cli() {
    let dir: PathBuf = std::env::temp_dir().join(format!("musubi-cli-services-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let ip = |n| Ipv4Addr::new(127, 0, NET, n);
    let central = CentralOptions {
        listen: format!("127.0.{NET}.8:8081").parse().unwrap(),
        management_listen: format!("127.0.{NET}.8:4001").parse().unwrap(),
        admin_listen: format!("127.0.{NET}.8:4000").parse().unwrap(),
        generation_interval_secs: 3600,
        expire_after_secs: 600,
        register: true,
        auto_approve: true,
    };
    let opts = Options {
        ips: [ip(2), ip(3), ip(4)],
        pki_ip: ip(5),
        central: Some(central),
        configuration_download_secs: 60,
        ..Options::default()
    };
    let net = Network::start(&dir, opts).await.expect("demo network starts");
    let admin = net.provider.admin_addr.unwrap();
    let admin_dir = dir.join("provider/state/admin");
    let cp = net.consumer.client_proxy_addr;
    let (consumer, provider, ..) = ids();
    let service = musubi_protocol::ServiceId::new(provider.clone(), "getHumidity", Some("v1")).unwrap();
    let fault =
        |body: &str| body.split("<faultcode>").nth(1).and_then(|r| r.split('<').next()).unwrap_or("").to_string();

    // Not published yet.
    let (_, body) = call(cp, &service, 1).await;
    assert_eq!(fault(&body), "server.serverproxy.unknown_service", "{body}");

    // The WSDL: a bad one is refused with its line, a good one publishes getHumidity.
    let wsdl_file = dir.join("home.wsdl");
    std::fs::write(&wsdl_file, wsdl(&format!("http://{}:8090/", ip(4))).replace("</wsdl:binding>", "</wsdl:bindin>"))
        .unwrap();
    let home = provider.to_string();
    let e = musubi(admin, &admin_dir, &["service", "add", "--client", &home, "--wsdl", wsdl_file.to_str().unwrap()])
        .await
        .unwrap_err();
    assert!(e.contains("wsdl: line 11"), "{e}");
    std::fs::write(&wsdl_file, wsdl(&format!("http://{}:8090/", ip(4)))).unwrap();
    let added =
        musubi(admin, &admin_dir, &["service", "add", "--client", &home, "--wsdl", wsdl_file.to_str().unwrap()])
            .await
            .unwrap();
    assert_eq!(added["services"][0], "getHumidity");
    let description = added["id"].to_string();
    let listed = musubi(admin, &admin_dir, &["service", "list", "--client", &home]).await.unwrap();
    assert_eq!(listed[1]["services"][0]["id"], service.to_string());

    // Known, but nobody may call it yet.
    let (_, body) = call(cp, &service, 2).await;
    assert_eq!(fault(&body), "server.serverproxy.access_denied", "{body}");

    // A local group with the consumer's subsystem gets the right: the call goes through.
    musubi(admin, &admin_dir, &["group", "add", "--client", &home, "care-team"]).await.unwrap();
    musubi(admin, &admin_dir, &["group", "add-member", "--client", &home, "care-team", &consumer.to_string()])
        .await
        .unwrap();
    let e = musubi(admin, &admin_dir, &["access", "grant", &service.to_string(), "--to", "local:nobody"])
        .await
        .unwrap_err();
    assert!(e.contains("no local group nobody"), "{e}");
    musubi(admin, &admin_dir, &["access", "grant", &service.to_string(), "--to", "local:care-team"]).await.unwrap();
    let rights = musubi(admin, &admin_dir, &["access", "list", &service.to_string()]).await.unwrap();
    assert_eq!(rights[0]["subject"], "local:care-team");
    let (status, body) = call(cp, &service, 3).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("getHumidityResponse"), "{body}");
    // The same rights seen by client, and the client's groups.
    let by_client =
        musubi(admin, &admin_dir, &["access", "list", "--client", &home, "--to", "local:care-team"]).await.unwrap();
    assert_eq!(by_client, serde_json::json!([{ "service_code": "getHumidity", "subject": "local:care-team" }]));
    let groups = musubi(admin, &admin_dir, &["group", "list", "--client", &home]).await.unwrap();
    assert_eq!(groups[0]["code"], "care-team");
    assert_eq!(groups[0]["members"][0], consumer.to_string());

    // A new client, added and registered with the CLI, publishes a WSDL of its own.
    let (cs, _) = net.central.as_ref().unwrap();
    let garden = "SUBSYSTEM:DEMO/COM/2002/garden";
    musubi(admin, &admin_dir, &["clients", "add", garden]).await.unwrap();
    musubi(admin, &admin_dir, &["clients", "register", garden]).await.unwrap();
    cs.generate().await.unwrap();
    assert!(net.provider.update_global_conf().await && net.consumer.update_global_conf().await);
    let clients = musubi(admin, &admin_dir, &["clients", "list"]).await.unwrap();
    assert!(clients.as_array().unwrap().iter().any(|c| c["id"] == garden && c["status"] == "registered"), "{clients}");
    let garden_wsdl = dir.join("garden.wsdl");
    std::fs::write(&garden_wsdl, wsdl(&format!("http://{}:8090/", ip(4))).replace("getHumidity", "getSoilMoisture"))
        .unwrap();
    musubi(admin, &admin_dir, &["service", "add", "--client", garden, "--wsdl", garden_wsdl.to_str().unwrap()])
        .await
        .unwrap();
    let soil: musubi_protocol::ServiceId = "SERVICE:DEMO/COM/2002/garden/getSoilMoisture/v1".parse().unwrap();
    assert_eq!(fault(&call(cp, &soil, 20).await.1), "server.serverproxy.access_denied");
    musubi(admin, &admin_dir, &["group", "add", "--client", garden, "carers"]).await.unwrap();
    musubi(admin, &admin_dir, &["group", "add-member", "--client", garden, "carers", &consumer.to_string()])
        .await
        .unwrap();
    musubi(admin, &admin_dir, &["access", "grant", &soil.to_string(), "--to", "local:carers"]).await.unwrap();
    let (status, body) = call(cp, &soil, 21).await;
    assert_eq!(status, 200, "granted to a local group holding the consumer's subsystem: {body}");
    musubi(admin, &admin_dir, &["access", "revoke", &soil.to_string(), "--to", "local:carers"]).await.unwrap();
    assert_eq!(fault(&call(cp, &soil, 22).await.1), "server.serverproxy.access_denied", "revoked");
    musubi(admin, &admin_dir, &["access", "grant", &soil.to_string(), "--to", &consumer.to_string()]).await.unwrap();
    assert_eq!(call(cp, &soil, 23).await.0, 200, "granted to the subsystem itself");

    // The metaservices, answered by the provider's server through both servers.
    let meta = |code: &str| musubi_protocol::ServiceId::new(provider.clone(), code, None).unwrap();
    let (status, all) = call(cp, &meta("listMethods"), 30).await;
    assert_eq!(status, 200, "{all}");
    for code in ["getHumidity", "getRoomTemperature", "getDoorLockState"] {
        assert!(all.contains(&format!("<id:serviceCode>{code}</id:serviceCode>")), "{code}: {all}");
    }
    let (status, allowed) = call(cp, &meta("allowedMethods"), 31).await;
    assert_eq!(status, 200, "{allowed}");
    assert!(allowed.contains("<id:serviceCode>getHumidity</id:serviceCode>"), "{allowed}");
    assert!(!allowed.contains("<id:serviceCode>getDoorLockState</id:serviceCode>"), "{allowed}");
    let get_wsdl = musubi_protocol::soap::build_request(
        &consumer,
        &meta("getWsdl"),
        "svc-32",
        None,
        "    <xroad:getWsdl><xroad:serviceCode>getHumidity</xroad:serviceCode><xroad:serviceVersion>v1</xroad:serviceVersion></xroad:getWsdl>",
    );
    let (status, ct, body) = http(cp, "POST", "/", &[], get_wsdl).await;
    assert_eq!(status, 200, "{body}");
    assert!(ct.starts_with("multipart/related; type=\"text/xml\"; charset=UTF-8;"), "{ct}");
    assert!(body.contains("getWsdlResponse") && body.contains("<xrd:title>Room humidity</xrd:title>"), "{body}");
    let (status, ct, xml) = http(cp, "GET", "/listClients?xRoadInstance=DEMO", &[], String::new()).await;
    assert_eq!((status, ct.starts_with("text/xml")), (200, true), "{xml}");
    assert!(xml.contains("<id:subsystemCode>care</id:subsystemCode>") && xml.contains("Demo Home Cloud"), "{xml}");
    let (_, ct, json) = http(cp, "GET", "/listClients", &[("accept", "application/json")], String::new()).await;
    assert_eq!(ct, "application/json");
    let json: Value = serde_json::from_str(&json).unwrap();
    assert!(json["member"].as_array().unwrap().iter().any(|m| m["id"]["subsystem_code"] == "home"), "{json}");

    // Disabled with a notice, then enabled again.
    musubi(admin, &admin_dir, &["service", "disable", &description, "--notice", "sensor recalibration until noon"])
        .await
        .unwrap();
    let (_, body) = call(cp, &service, 4).await;
    assert_eq!(fault(&body), "server.serverproxy.service_disabled", "{body}");
    assert!(body.contains("sensor recalibration until noon"), "{body}");
    musubi(admin, &admin_dir, &["service", "enable", &description]).await.unwrap();
    assert_eq!(call(cp, &service, 5).await.0, 200);

    // A WSDL read from a URL: its service joins the client's.
    let listener = tokio::net::TcpListener::bind((ip(9), 8080)).await.unwrap();
    let second = wsdl(&format!("http://{}:8090/", ip(4))).replace("getHumidity", "getPressure");
    tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let svc = hyper::service::service_fn(move |_req| {
            let body = second.clone();
            async move { Ok::<_, std::convert::Infallible>(hyper::Response::new(Full::new(Bytes::from(body)))) }
        });
        let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(tcp), svc).await;
    });
    let url = format!("http://{}:8080/home.wsdl", ip(9));
    let added = musubi(admin, &admin_dir, &["service", "add", "--client", &home, "--wsdl", &url]).await.unwrap();
    assert_eq!(added["services"][0], "getPressure");
    let listed = musubi(admin, &admin_dir, &["service", "list", "--client", &home]).await.unwrap();
    assert_eq!(listed[2]["url"], url);

    // The provider's counters, as Prometheus reads them from the admin API.
    let pem = std::fs::read_to_string(admin_dir.join("admin-tls.pem")).unwrap();
    let cert = musubi_pki::pem_decode("CERTIFICATE", &pem).unwrap();
    let key = std::fs::read_to_string(admin_dir.join("admin-api-key")).unwrap();
    let auth = format!("X-Road-ApiKey token={}", key.trim());
    let (status, text) = musubi_admin::client::request(
        &format!("https://{admin}/metrics"),
        &cert,
        "GET",
        &[("authorization", &auth)],
        Vec::new(),
        1 << 20,
    )
    .await
    .unwrap();
    let text = String::from_utf8_lossy(&text).into_owned();
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("code=\"server.serverproxy.access_denied\"} 3"), "{text}");
    let served: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("musubi_exchanges_total{proxy=\"server\"} "))
        .and_then(|n| n.parse().ok())
        .unwrap();
    assert!(served >= 5, "{text}");
    assert!(text.contains("musubi_globalconf_expires_in_seconds"), "{text}");
    let (status, _) =
        musubi_admin::client::request(&format!("https://{admin}/metrics"), &cert, "GET", &[], Vec::new(), 1 << 20)
            .await
            .unwrap();
    assert_eq!(status, 401, "metrics need the API key");

    // The dashboard's last hour, as the status tells it.
    let status = musubi(admin, &admin_dir, &["status"]).await.unwrap();
    assert!(status["last_hour"]["exchanges"].as_u64().unwrap() >= 5, "{status}");
    assert!(
        status["last_hour"]["faults_by_code"]["server.serverproxy.access_denied"].as_u64().unwrap() >= 1,
        "{status}"
    );

    // The provider's URL and timeout edited; the file description refreshed with a new operation.
    let edited = musubi(
        admin,
        &admin_dir,
        &["service", "edit", &service.to_string(), "--timeout", "15", "--url", &format!("http://{}:8090/home", ip(4))],
    )
    .await
    .unwrap();
    assert_eq!(
        (edited["timeout_secs"].as_u64(), edited["url"].as_str()),
        (Some(15), Some(&*format!("http://{}:8090/home", ip(4))))
    );
    assert_eq!(call(cp, &service, 7).await.0, 200, "{}", call(cp, &service, 70).await.1);
    // Pointed where nobody listens, the exchange fails at the provider: the edited URL is the one used.
    let nowhere = format!("http://{}:8099/", ip(4));
    musubi(admin, &admin_dir, &["service", "edit", &service.to_string(), "--url", &nowhere]).await.unwrap();
    let (_, body) = call(cp, &service, 71).await;
    assert!(fault(&body).starts_with("server.serverproxy.service_failed"), "{body}");
    let back = format!("http://{}:8090/", ip(4));
    musubi(admin, &admin_dir, &["service", "edit", &service.to_string(), "--url", &back]).await.unwrap();
    let e =
        musubi(admin, &admin_dir, &["service", "edit", &service.to_string(), "--url", "ftp://x"]).await.unwrap_err();
    assert!(e.contains("url:"), "{e}");
    let two = wsdl(&format!("http://{}:8090/", ip(4))).replace(
        "</wsdl:binding>",
        "<wsdl:operation name=\"getDewPoint\"><xrd:version>v1</xrd:version></wsdl:operation></wsdl:binding>",
    );
    std::fs::write(&wsdl_file, two).unwrap();
    let refreshed =
        musubi(admin, &admin_dir, &["service", "refresh", &description, "--wsdl", wsdl_file.to_str().unwrap()])
            .await
            .unwrap();
    assert_eq!(refreshed["added"][0], "getDewPoint");
    let listed = musubi(admin, &admin_dir, &["service", "list", "--client", &home]).await.unwrap();
    assert_eq!(listed[1]["services"].as_array().unwrap().len(), 2);
    assert_eq!(call(cp, &service, 8).await.0, 200, "the kept service keeps its settings and rights");

    // An https provider: encrypted always, its certificate checked only when the service says so.
    let key = musubi_pki::generate_ecdsa_key().unwrap();
    let cert = musubi_pki::self_signed_tls_cert(&key, "home provider", &[ip(4).to_string()]).unwrap();
    let tls =
        rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![rustls::pki_types::CertificateDer::from(cert)],
                rustls::pki_types::PrivateKeyDer::Pkcs8(key.into()),
            )
            .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(tls));
    let listener = tokio::net::TcpListener::bind((ip(4), 8443)).await.unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else { return };
                let svc = hyper::service::service_fn(|req: hyper::Request<hyper::body::Incoming>| async move {
                    let ct = req.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
                    let body = req.into_body().collect().await.unwrap().to_bytes();
                    Ok::<_, std::convert::Infallible>(musubi::demo::provider_answer(&ct, &body))
                });
                let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(tls), svc).await;
            });
        }
    });
    let https = format!("https://{}:8443/", ip(4));
    musubi(admin, &admin_dir, &["service", "edit", &service.to_string(), "--url", &https, "--ssl-verify", "true"])
        .await
        .unwrap();
    let (_, body) = call(cp, &service, 12).await;
    assert!(fault(&body).ends_with("ssl_authentication_failed"), "an unknown certificate is refused: {body}");
    musubi(admin, &admin_dir, &["service", "edit", &service.to_string(), "--ssl-verify", "false"]).await.unwrap();
    let (status, body) = call(cp, &service, 13).await;
    assert_eq!(status, 200, "verification off: {body}");
    let internal =
        musubi_admin::client::AdminClient::new(&format!("https://{admin}"), cert_der(&admin_dir), &api_key(&admin_dir))
            .get("/api/v1/internal-tls-certificate")
            .await
            .unwrap();
    assert!(internal["certificate"].as_str().unwrap().starts_with("-----BEGIN CERTIFICATE-----"), "{internal}");
    musubi(admin, &admin_dir, &["service", "edit", &service.to_string(), "--url", &back]).await.unwrap();

    // Revoked: refused with the access-denied fault.
    musubi(admin, &admin_dir, &["access", "revoke", &service.to_string(), "--to", "local:care-team"]).await.unwrap();
    let (_, body) = call(cp, &service, 6).await;
    assert_eq!(fault(&body), "server.serverproxy.access_denied", "{body}");

    // A global group: granted on the provider's server, its members decided on
    // the central server and carried to the security servers by the global configuration.
    let (officer, officer_dir) = (cs.admin_addr.unwrap(), dir.join("central/admin"));
    let member = consumer.to_string();
    musubi(admin, &admin_dir, &["access", "grant", &service.to_string(), "--to", "global:care-providers"])
        .await
        .unwrap();
    let (_, body) = call(cp, &service, 9).await;
    assert_eq!(fault(&body), "server.serverproxy.access_denied", "not a member yet: {body}");
    let added =
        musubi(officer, &officer_dir, &["global-group", "add-member", "care-providers", &member]).await.unwrap();
    assert_eq!(added["member"], consumer.to_string());
    cs.generate().await.unwrap();
    assert!(net.provider.update_global_conf().await, "the provider's server downloads the new configuration");
    let (status, body) = call(cp, &service, 10).await;
    assert_eq!(status, 200, "a member of the global group may call: {body}");
    musubi(officer, &officer_dir, &["global-group", "remove-member", "care-providers", &member]).await.unwrap();
    cs.generate().await.unwrap();
    assert!(net.provider.update_global_conf().await);
    let (_, body) = call(cp, &service, 11).await;
    assert_eq!(fault(&body), "server.serverproxy.access_denied", "removed from the group: {body}");

    // A local group deleted takes its access rights with it.
    musubi(admin, &admin_dir, &["group", "add", "--client", &home, "night-shift"]).await.unwrap();
    musubi(admin, &admin_dir, &["group", "add-member", "--client", &home, "night-shift", &member]).await.unwrap();
    musubi(admin, &admin_dir, &["access", "grant", &service.to_string(), "--to", "local:night-shift"]).await.unwrap();
    assert_eq!(call(cp, &service, 14).await.0, 200);
    musubi(admin, &admin_dir, &["group", "delete", "--client", &home, "night-shift"]).await.unwrap();
    let (_, body) = call(cp, &service, 15).await;
    assert_eq!(fault(&body), "server.serverproxy.access_denied", "the group is gone: {body}");
    let rights = musubi(admin, &admin_dir, &["access", "list", &service.to_string()]).await.unwrap();
    assert!(!rights.to_string().contains("night-shift"), "{rights}");
    net.shutdown().await;
}

fn cert_der(admin_dir: &Path) -> Vec<u8> {
    musubi_pki::pem_decode("CERTIFICATE", &std::fs::read_to_string(admin_dir.join("admin-tls.pem")).unwrap()).unwrap()
}

fn api_key(admin_dir: &Path) -> String {
    std::fs::read_to_string(admin_dir.join("admin-api-key")).unwrap()
}
