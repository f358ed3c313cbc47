//! Exchanges as an information system makes them, through the client proxy.

use musubi::demo::{example_request, ids};
use musubi_protocol::xades::sha512_b64;

use musubi::demo::Options;
use musubi_pki::token::{KeyAlgorithm, KeyRole, SoftToken, TokenOptions};

use crate::{conformance_query, http, network, network_with};

const XML: &str = "text/xml; charset=UTF-8";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_exchange_goes_through_both_servers_and_both_logs_hold_it() {
    let net = network("exchange", 10, true).await;
    let (_, _, service, _) = ids();
    let request = example_request(&service, "it-query-1");
    let reply = http(net.consumer.client_proxy_addr, "POST", XML, request.clone().into_bytes()).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert!(reply.content_type.starts_with("text/xml"), "{}", reply.content_type);
    assert!(reply.body.contains("<temperature unit=\"celsius\">22.5</temperature>"), "{}", reply.body);
    let hash = format!(
        "<xroad:requestHash algorithmId=\"http://www.w3.org/2001/04/xmlenc#sha512\">{}</xroad:requestHash>",
        sha512_b64(request.as_bytes())
    );
    assert!(reply.body.contains(&hash), "requestHash of the request missing in {}", reply.body);

    for (side, log) in [("consumer", net.consumer.message_log()), ("provider", net.provider.message_log())] {
        let records = log.find("it-query-1").await.unwrap();
        let directions: Vec<&str> = records.iter().map(|(d, _)| d.as_str()).collect();
        assert_eq!(directions, ["request", "response"], "{side} log");
        assert_eq!(records[0].1, request.as_bytes(), "{side} logs the request as the IS sent it");
        assert!(
            String::from_utf8_lossy(&records[1].1).contains(&hash),
            "{side} logs the response with its requestHash"
        );
    }

    // The pooled connection is reused for the next exchange.
    let again =
        http(net.consumer.client_proxy_addr, "POST", XML, example_request(&service, "it-query-2").into_bytes()).await;
    assert_eq!(again.status, 200, "{}", again.body);
    net.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_get_x_road_faults_and_the_server_keeps_serving() {
    let net = network("refusals", 11, true).await;
    let (consumer, _, service, denied) = ids();
    let cp = net.consumer.client_proxy_addr;

    // A service without an access right.
    let reply = http(cp, "POST", XML, example_request(&denied, "it-denied").into_bytes()).await;
    assert_eq!(reply.status, 500);
    assert_eq!(reply.fault_code(), Some("server.serverproxy.access_denied"), "{}", reply.body);

    // A client that is not hosted on this security server.
    let stranger = musubi_protocol::ClientId::subsystem("DEMO", "GOV", "1001", "stranger").unwrap();
    let body = musubi_protocol::soap::build_request(&stranger, &service, "it-unknown", None, "<getRoomTemperature/>");
    let reply = http(cp, "POST", XML, body.into_bytes()).await;
    assert_eq!(reply.fault_code(), Some("server.clientproxy.unknown_member"), "{}", reply.body);

    // A service unknown to the provider's server.
    let unknown = musubi_protocol::ServiceId::new(service.provider().clone(), "getNothing", None).unwrap();
    let reply = http(cp, "POST", XML, example_request(&unknown, "it-unknown-service").into_bytes()).await;
    assert_eq!(reply.fault_code(), Some("server.serverproxy.unknown_service"), "{}", reply.body);

    // Bad input from the information system.
    let reply = http(cp, "GET", XML, Vec::new()).await;
    assert_eq!(reply.fault_code(), Some("client.invalid_http_method"));
    let reply = http(cp, "POST", "text/html", example_request(&service, "x").into_bytes()).await;
    assert_eq!(reply.fault_code(), Some("client.invalid_content_type"));
    let reply = http(cp, "POST", XML, b"<SOAP-ENV:Envelope".to_vec()).await;
    assert_eq!(reply.fault_code(), Some("client.invalid_xml"));
    // Entity expansion, deep nesting, declared gigabytes, oversized
    // multipart and hostile connections: see hostile.rs.
    if let Some(q) = conformance_query("faulty-header2.query") {
        let reply = http(cp, "POST", XML, q).await;
        assert_eq!(reply.fault_code(), Some("client.duplicate_header_field"));
    }
    // A client that sends a SOAP fault as its request (X-Road's SoapFaultToClientProxy).
    if let Some(q) = conformance_query("fault.query") {
        let reply = http(cp, "POST", XML, q).await;
        assert_eq!(reply.fault_code(), Some("client.code"));
    }
    let reply = http(cp, "POST", XML, example_request(&service, "x").into_bytes()).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let quoted = example_request(&service, "x").into_bytes();
    let reply = crate::http_with(cp, "POST", XML, &[("SOAPAction", "http://example.org/action")], quoted).await;
    assert_eq!(reply.fault_code(), Some("client.invalid_soap_action"));

    // And a good request still works afterwards.
    let reply = http(cp, "POST", XML, example_request(&service, "it-after").into_bytes()).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert!(consumer.subsystem_code().is_some());
    net.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provider_down_gives_service_failed() {
    let net = network("provider-down", 12, false).await;
    let (_, _, service, _) = ids();
    let reply =
        http(net.consumer.client_proxy_addr, "POST", XML, example_request(&service, "it-down").into_bytes()).await;
    assert_eq!(reply.status, 500);
    assert_eq!(reply.fault_code(), Some("server.serverproxy.service_failed.network_error"), "{}", reply.body);
    // The request was logged by both sides before it was forwarded; no response was released.
    let records = net.provider.message_log().find("it-down").await.unwrap();
    assert_eq!(records.len(), 1);
    net.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attachments_travel_signed_through_both_servers() {
    let net = network("attachments", 13, true).await;
    let (_, _, service, _) = ids();
    let soap = example_request(&service, "it-attach");
    let boundary = "jetty771207119h3h10dty";
    let body = format!(
        "--{boundary}\r\nContent-Type: text/xml; charset=UTF-8\r\n\r\n{soap}\r\n--{boundary}\r\nContent-Type: application/octet-stream\r\nClient-Header: FooBar\r\n\r\n\x01\x02binary\r\n--{boundary}\r\nContent-Type: text/plain\r\n\r\nsecond\r\n--{boundary}--\r\n"
    );
    let ct = format!("multipart/related; charset=UTF-8; boundary={boundary}");
    let reply = http(net.consumer.client_proxy_addr, "POST", &ct, body.into_bytes()).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert!(reply.body.contains("<attachments>2</attachments>"), "provider saw both attachments: {}", reply.body);
    net.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_log_that_cannot_be_written_stops_the_exchange_until_it_is_back() {
    let net = network("logfail", 14, true).await;
    let (_, _, service, _) = ids();
    // Take the provider's log away underneath the running server.
    let path = net.facts.message_logs[1].clone();
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", path.display())).await.unwrap();
    sqlx::query("ALTER TABLE message_log RENAME TO message_log_away").execute(&pool).await.unwrap();
    let reply =
        http(net.consumer.client_proxy_addr, "POST", XML, example_request(&service, "it-logfail").into_bytes()).await;
    assert_eq!(reply.status, 500);
    assert_eq!(reply.fault_code(), Some("server.serverproxy.logging_failed"), "{}", reply.body);
    assert!(!reply.body.contains("22.5"), "no provider data may be released unlogged");
    // The store is back: traffic resumes without a restart, and the refused
    // exchange left no half-written record behind.
    sqlx::query("ALTER TABLE message_log_away RENAME TO message_log").execute(&pool).await.unwrap();
    pool.close().await;
    let reply =
        http(net.consumer.client_proxy_addr, "POST", XML, example_request(&service, "it-logback").into_bytes()).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert!(net.provider.message_log().find("it-logfail").await.unwrap().is_empty());
    assert_eq!(net.provider.message_log().find("it-logback").await.unwrap().len(), 2);
    net.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provider_server_with_an_unregistered_authentication_certificate_is_refused() {
    // Something else answers at the provider server's address, with a certificate
    // from the same CA that is not registered: the client proxy must not send it
    // the request.
    let opts =
        Options { edit_global: Some(|g| g.security_servers[1].address = "127.0.15.9".into()), ..Options::default() };
    let net = network_with("impostor", 15, opts).await;
    let impostor = net.ca.issue("ss-provider", "Demo Home Cloud", musubi_pki::Usage::Auth, &["127.0.15.9"]).unwrap();
    let config =
        rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![impostor.cert_der.clone().into()],
                rustls::pki_types::PrivateKeyDer::Pkcs8(impostor.key_pkcs8.clone().into()),
            )
            .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.15.9:5500").await.unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config));
    let accepted = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        acceptor.accept(tcp).await.is_ok()
    });
    let (_, _, service, _) = ids();
    let reply =
        http(net.consumer.client_proxy_addr, "POST", XML, example_request(&service, "it-impostor").into_bytes()).await;
    assert_eq!(reply.fault_code(), Some("server.clientproxy.ssl_authentication_failed"), "{}", reply.body);
    assert!(!accepted.await.unwrap(), "the consumer's server must abort the handshake with the impostor");
    net.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provider_server_not_listening_gives_network_error() {
    let opts =
        Options { edit_global: Some(|g| g.security_servers[1].address = "127.0.16.9".into()), ..Options::default() };
    let net = network_with("noserver", 16, opts).await;
    let (_, _, service, _) = ids();
    let reply =
        http(net.consumer.client_proxy_addr, "POST", XML, example_request(&service, "it-noserver").into_bytes()).await;
    assert_eq!(reply.fault_code(), Some("server.clientproxy.network_error"), "{}", reply.body);
    net.shutdown().await;
}

/// A provider information system that answers every request with `answer(request)`.
async fn custom_provider(ip: [u8; 4], answer: fn(&str, &str) -> (u16, &'static str, String)) {
    let listener = tokio::net::TcpListener::bind((std::net::Ipv4Addr::from(ip), 8090)).await.unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else { return };
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| async move {
                    use http_body_util::BodyExt;
                    let ct =
                        req.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
                    let body = req.into_body().collect().await.unwrap().to_bytes();
                    let (status, ct, text) = answer(&ct, std::str::from_utf8(&body).unwrap());
                    let mut r = http::Response::new(http_body_util::Full::new(bytes::Bytes::from(text)));
                    *r.status_mut() = http::StatusCode::from_u16(status).unwrap();
                    r.headers_mut().insert("content-type", http::HeaderValue::from_static(ct));
                    Ok::<_, std::convert::Infallible>(r)
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(tcp), svc)
                    .await;
            });
        }
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_provider_answers_get_service_failed_faults() {
    let net = network("badprovider", 17, false).await;
    custom_provider([127, 0, 17, 4], |_, req| {
        let id = req.split("<xroad:id>").nth(1).unwrap().split('<').next().unwrap();
        let (_, _, service, _) = ids();
        match id {
            "http-502" => (502, "text/plain", "bad gateway".into()),
            "wrong-ct" => (200, "blah", "x".into()),
            "empty" => (200, "text/xml", String::new()),
            "other-query" => {
                let body = "<getRoomTemperatureResponse/>";
                (200, "text/xml", musubi_protocol::soap::build_request(&ids().0, &service, "not-the-same", None, body))
            }
            "no-header" => (
                200,
                "text/xml",
                "<s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\"><s:Body><x/></s:Body></s:Envelope>".into(),
            ),
            _ => (
                500,
                "text/xml",
                "<s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\"><s:Body><s:Fault><faultcode>CODE</faultcode><faultstring>provider says no</faultstring></s:Fault></s:Body></s:Envelope>".into(),
            ),
        }
    })
    .await;
    let (_, _, service, _) = ids();
    let cp = net.consumer.client_proxy_addr;
    for (id, expected) in [
        ("http-502", "server.serverproxy.service_failed.http_error"),
        ("wrong-ct", "server.serverproxy.service_failed.invalid_content_type"),
        ("empty", "server.serverproxy.service_failed.invalid_soap"),
        ("other-query", "server.serverproxy.service_failed.inconsistent_response"),
        ("no-header", "server.serverproxy.service_failed.missing_header"),
        ("fault", "CODE"),
    ] {
        let reply = http(cp, "POST", XML, example_request(&service, id).into_bytes()).await;
        assert_eq!(reply.status, 500, "{id}");
        assert_eq!(reply.fault_code(), Some(expected), "{id}: {}", reply.body);
    }
    net.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mtom_packages_reach_the_provider_and_come_back_unchanged() {
    const REQ_CT: &str =
        "Multipart/Related; start-info=\"application/soap+xml\"; type=\"application/xop+xml\"; boundary=\"mtom-b\"";
    const RESP_CT: &str = "Multipart/Related; start-info=\"application/soap+xml\"; type=\"application/xop+xml\"; boundary=\"mtom-r\"; charset=UTF-8";
    let net = network("mtom", 18, false).await;
    custom_provider([127, 0, 18, 4], |ct, req| {
        // The provider sees the client's content type, part headers and bytes.
        let ok = ct == REQ_CT
            && req.contains("Content-ID: <soap-part>")
            && req.contains("Content-ID: <photo>")
            && req.contains("Content-Type: image/png")
            && req.contains("PNGDATA");
        let id = req.split("<xroad:id>").nth(1).unwrap().split('<').next().unwrap();
        let (client, _, service, _) = ids();
        let soap = musubi_protocol::soap::build_request(
            &client,
            &service,
            id,
            None,
            &format!("<getRoomTemperatureResponse><seen>{ok}</seen></getRoomTemperatureResponse>"),
        );
        let body = format!(
            "--mtom-r\r\nContent-Type: application/xop+xml; type=\"application/soap+xml\"; charset=utf-8\r\nContent-ID: <resp>\r\n\r\n{soap}\r\n--mtom-r\r\nContent-Type: text/plain\r\nContent-ID: <r1>\r\n\r\nreply-attachment\r\n--mtom-r--\r\n"
        );
        (200, RESP_CT, body)
    })
    .await;
    let (_, _, service, _) = ids();
    let soap = example_request(&service, "it-mtom");
    let body = format!(
        "--mtom-b\r\nContent-Type: application/xop+xml; type=\"application/soap+xml\"; charset=utf-8\r\nContent-ID: <soap-part>\r\n\r\n{soap}\r\n--mtom-b\r\nContent-Type: image/png\r\nContent-ID: <photo>\r\n\r\nPNGDATA\r\n--mtom-b--\r\n"
    );
    let reply = http(net.consumer.client_proxy_addr, "POST", REQ_CT, body.into_bytes()).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.content_type, RESP_CT);
    assert!(reply.body.contains("<seen>true</seen>"), "provider saw the package unchanged: {}", reply.body);
    assert!(reply.body.contains("Content-ID: <r1>") && reply.body.contains("reply-attachment"), "{}", reply.body);
    net.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_whose_certificate_is_not_registered_refuses_to_start() {
    let opts = Options { edit_global: Some(|g| g.security_servers[0].auth_cert_hashes.clear()), ..Options::default() };
    let result = musubi::demo::Network::start(
        &crate::scratch("unregistered"),
        Options {
            ips: [[127, 0, 19, 2].into(), [127, 0, 19, 3].into(), [127, 0, 19, 4].into()],
            pki_ip: [127, 0, 19, 5].into(),
            ..opts
        },
    )
    .await;
    let Err(e) = result else { panic!("a server with an unregistered authentication certificate started") };
    let text = format!("{e:#}");
    assert!(text.contains("authentication certificate") && text.contains("not registered"), "{text}");
}

/// Waits (bounded) for the next OCSP fetch rounds of `handle` until `done` holds.
async fn until_ocsp(handle: &musubi_security_server::Handle, done: impl Fn() -> bool) {
    let mut updates = handle.ocsp_updates();
    tokio::time::timeout(std::time::Duration::from_secs(30), async {
        while !done() {
            updates.changed().await.unwrap();
        }
    })
    .await
    .expect("OCSP state reached within 30 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_the_provider_authentication_certificate_stops_the_exchange_and_reissuing_restores_it() {
    let opts = Options { ocsp_fetch_interval_secs: 1, conf_check_secs: 1, ..Options::default() };
    let net = network_with("revoke", 21, opts).await;
    let (_, _, service, _) = ids();
    let cp = net.consumer.client_proxy_addr;
    let reply = http(cp, "POST", XML, example_request(&service, "it-before").into_bytes()).await;
    assert_eq!(reply.status, 200, "{}", reply.body);

    assert!(net.ca.revoke(&net.provider_auth.cert_der));
    let cert = net.provider_auth.cert_der.clone();
    until_ocsp(&net.provider, || {
        matches!(net.provider.own_ocsp_status(&cert), Some(musubi_pki::ocsp::Status::Revoked { .. }))
    })
    .await;
    let reply = http(cp, "POST", XML, example_request(&service, "it-after").into_bytes()).await;
    assert_eq!(reply.fault_code(), Some("server.serverproxy.cert_validation"), "{}", reply.body);
    assert!(
        reply.body.contains("ss-provider") && reply.body.contains("revoked"),
        "the fault names the certificate: {}",
        reply.body
    );
    assert!(net.provider.message_log().find("it-after").await.unwrap().is_empty(), "nothing is forwarded");

    // Re-issuing restores traffic, without restarting anything: the provider's
    // operator replaces the key and certificate in its token, the trust file
    // registers the new certificate, and both servers take them into use.
    let dir = net.facts.request_file.parent().unwrap().join("provider");
    let pin = std::fs::read_to_string(dir.join("pin")).unwrap();
    let token = SoftToken::open(&dir.join("token"), TokenOptions::default()).unwrap();
    token.login(&pin).await.unwrap();
    let old = token.list().into_iter().find(|k| k.role == KeyRole::Auth).unwrap();
    token.delete(&old.id).unwrap();
    let new = token.generate(KeyRole::Auth, "renewed", KeyAlgorithm::EcdsaP256).unwrap();
    let key = token.private_key(&new.id).unwrap();
    let server = musubi_protocol::SecurityServerId::new(ids().1.member_id(), "ss-provider").unwrap();
    let request = musubi_pki::csr::create(&key, &musubi_pki::csr::Subject::Auth(server)).unwrap();
    let cert = net.ca.sign_csr(&request, musubi_pki::Usage::Auth).unwrap();
    std::fs::write(dir.join("auth.pem"), musubi_pki::pem("CERTIFICATE", &cert)).unwrap();
    let global_path = dir.parent().unwrap().join("global-conf.toml");
    let mut global: musubi_security_server::conf::GlobalConf =
        musubi_security_server::conf::read_toml(&global_path).unwrap();
    global.security_servers[1].auth_cert_hashes = vec![musubi_pki::cert_hash(&cert)];
    let (mut consumer_updates, mut provider_updates) = (net.consumer.conf_updates(), net.provider.conf_updates());
    std::fs::write(&global_path, toml::to_string_pretty(&global).unwrap()).unwrap();
    tokio::time::timeout(std::time::Duration::from_secs(30), async {
        consumer_updates.changed().await.unwrap();
        provider_updates.changed().await.unwrap();
    })
    .await
    .expect("both servers took the new trust file into use");
    let reply = http(cp, "POST", XML, example_request(&service, "it-reissued").into_bytes()).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    net.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_token_pin_keeps_the_server_from_starting() {
    let net = network("pin", 23, false).await;
    let dir = net.facts.request_file.parent().unwrap().to_owned();
    let net_auth = net.consumer_auth.cert_der.clone();
    net.shutdown().await;
    let conf_path = dir.join("consumer").join("security-server.toml");
    let conf: musubi_security_server::conf::ServerConf = musubi_security_server::conf::read_toml(&conf_path).unwrap();
    let pin_file = conf.pin_file.clone().unwrap();
    let right = std::fs::read_to_string(&pin_file).unwrap();
    std::fs::write(&pin_file, "not-the-pin").unwrap();
    let Err(e) = musubi_security_server::start(conf.clone()).await else { panic!("started with a wrong PIN") };
    assert!(e.to_string().contains("wrong PIN"), "{e}");
    // A certificate the operator disabled in the token is not used.
    std::fs::write(&pin_file, &right).unwrap();
    let token = SoftToken::open(&conf.token_dir, TokenOptions::default()).unwrap();
    let auth = musubi_pki::cert_hash(&net_auth);
    token.set_active(&auth, false).unwrap();
    let Err(e) = musubi_security_server::start(conf.clone()).await else {
        panic!("started with a disabled certificate")
    };
    assert!(e.to_string().contains("disabled"), "{e}");
    // With the right PIN and the certificate active again, the same configuration starts.
    token.set_active(&auth, true).unwrap();
    musubi_security_server::start(conf).await.unwrap().shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_needs_no_ocsp_responder_while_saved_responses_are_fresh() {
    let net = network("restart", 24, true).await;
    let dir = net.facts.request_file.parent().unwrap().to_owned();
    let auth = net.consumer_auth.cert_der.clone();
    net.shutdown().await; // stops the OCSP responder too
    let conf: musubi_security_server::conf::ServerConf =
        musubi_security_server::conf::read_toml(&dir.join("consumer").join("security-server.toml")).unwrap();
    let handle = musubi_security_server::start(conf).await.unwrap();
    assert_eq!(
        handle.own_ocsp_status(&auth),
        Some(musubi_pki::ocsp::Status::Good),
        "the saved response is used while the responder is down"
    );
    handle.shutdown().await;
}

/// Waits (bounded) for time-stamping rounds of `handle` until `done` holds.
async fn until_stamped<F: std::future::Future<Output = bool>>(
    handle: &musubi_security_server::Handle,
    done: impl Fn() -> F,
) {
    let mut updates = handle.timestamp_updates();
    tokio::time::timeout(std::time::Duration::from_secs(30), async {
        while !done().await {
            updates.changed().await.unwrap();
        }
    })
    .await
    .expect("time-stamping state reached within 30 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn message_logs_are_time_stamped_with_verifiable_tokens() {
    let opts = Options { timestamping_interval_seconds: 1, ..Options::default() };
    let net = network_with("stamps", 25, opts).await;
    let (_, _, service, _) = ids();
    let cp = net.consumer.client_proxy_addr;
    // Several exchanges: their records are stamped in batches over a hash chain.
    for i in 0..3 {
        let reply = http(cp, "POST", XML, example_request(&service, &format!("it-ts-{i}")).into_bytes()).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
    }
    let global: musubi_security_server::conf::GlobalConf =
        musubi_security_server::conf::read_toml(&net.facts.request_file.parent().unwrap().join("global-conf.toml"))
            .unwrap();
    let tsa_cert = musubi_pki::pem_decode("CERTIFICATE", &global.approved_tsas[0].cert).unwrap();
    for handle in [&net.consumer, &net.provider] {
        let log = handle.message_log();
        until_stamped(handle, || async {
            let mut all = true;
            for i in 0..3 {
                all &= log.timestamps_of(&format!("it-ts-{i}")).await.unwrap().iter().all(Option::is_some);
            }
            all
        })
        .await;
        for i in 0..3 {
            for stamp in log.timestamps_of(&format!("it-ts-{i}")).await.unwrap() {
                let (token, stamped) = stamp.unwrap();
                musubi_pki::tsp::verify_token(&token, &stamped, &[&tsa_cert]).unwrap();
            }
        }
    }
    net.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_only_logging_and_immediate_time_stamps() {
    // The consumer logs no bodies and stamps every record before answering.
    let opts = Options { consumer_body_logging: false, timestamp_immediately: true, ..Options::default() };
    let net = network_with("metadata", 27, opts).await;
    let (_, _, service, _) = ids();
    let reply =
        http(net.consumer.client_proxy_addr, "POST", XML, example_request(&service, "it-meta").into_bytes()).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let consumer = net.consumer.message_log().find("it-meta").await.unwrap();
    assert_eq!(consumer.len(), 2);
    for (_, message) in &consumer {
        let text = String::from_utf8_lossy(message);
        assert!(text.contains("<xroad:id>it-meta</xroad:id>"), "the header is kept: {text}");
        assert!(!text.contains("living") && !text.contains("22.5"), "the body is not: {text}");
    }
    // Immediate mode: both records carry their time stamp already.
    let stamps = net.consumer.message_log().timestamps_of("it-meta").await.unwrap();
    assert!(stamps.iter().all(Option::is_some), "{stamps:?}");
    // The provider keeps bodies (its own setting).
    let provider = net.provider.message_log().find("it-meta").await.unwrap();
    assert!(String::from_utf8_lossy(&provider[1].1).contains("22.5"));
    net.shutdown().await;
}

/// The demo network's trust as an offline verifier takes it (Musubi's
/// certificates follow the default profile, so the signer check runs).
fn network_trust(net: &musubi::demo::Network) -> musubi_pki::verify::VerificationConf {
    let global: musubi_security_server::conf::GlobalConf =
        musubi_security_server::conf::read_toml(&net.facts.request_file.parent().unwrap().join("global-conf.toml"))
            .unwrap();
    let pem = |p: &str| musubi_pki::pem_decode("CERTIFICATE", p).unwrap();
    musubi_pki::verify::VerificationConf {
        cas: global.approved_cas.iter().map(|c| pem(&c.cert)).collect(),
        ocsp_responders: vec![],
        tsas: global.approved_tsas.iter().map(|t| pem(&t.cert)).collect(),
        ocsp_freshness: std::time::Duration::from_secs(3600),
        profiles: global
            .approved_cas
            .iter()
            .map(|c| (pem(&c.cert), musubi_pki::verify::SignerProfile::Default))
            .collect(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exported_containers_verify_offline() {
    let opts = Options { timestamping_interval_seconds: 1, ..Options::default() };
    let net = network_with("export", 28, opts).await;
    let (consumer, _, service, _) = ids();
    let cp = net.consumer.client_proxy_addr;
    // Two exchanges in flight together may share a batch signature; the
    // first carries an attachment, which its container must hold too.
    let boundary = "it-export-boundary";
    let multipart = format!(
        "--{boundary}\r\nContent-Type: text/xml; charset=UTF-8\r\n\r\n{}\r\n--{boundary}\r\n\
         Content-Type: application/octet-stream\r\n\r\n\x01\x02logged too\r\n--{boundary}--\r\n",
        example_request(&service, "it-export")
    );
    let ct = format!("multipart/related; charset=UTF-8; boundary={boundary}");
    let (a, b) = tokio::join!(
        http(cp, "POST", &ct, multipart.into_bytes()),
        http(cp, "POST", XML, example_request(&service, "it-export-2").into_bytes())
    );
    assert_eq!((a.status, b.status), (200, 200), "{} {}", a.body, b.body);
    let log = net.consumer.message_log();
    until_stamped(&net.consumer, || async {
        log.timestamps_of("it-export").await.unwrap().iter().all(Option::is_some)
    })
    .await;

    // X-Road's /asic export on the client proxy.
    let url = format!(
        "/asic?queryId=it-export&xRoadInstance={}&memberClass={}&memberCode={}&subsystemCode={}",
        consumer.instance(),
        consumer.member_class(),
        consumer.member_code(),
        consumer.subsystem_code().unwrap()
    );
    let tcp = tokio::net::TcpStream::connect(cp).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tcp)).await.unwrap();
    tokio::spawn(conn);
    let req = http::Request::get(url)
        .header("host", cp.to_string())
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .unwrap();
    let resp = sender.send_request(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    use http_body_util::BodyExt;
    let zip = resp.into_body().collect().await.unwrap().to_bytes();
    let files = musubi_protocol::asic::read_zip(&zip, &musubi_protocol::asic::Limits::default()).unwrap();
    let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["it-export-request.asice", "it-export-response.asice"]);
    let request = musubi_protocol::asic::read(&files[0].1, &Default::default()).unwrap();
    assert_eq!(request.get("attachment1"), Some(&b"\x01\x02logged too"[..]));

    // Each container verifies offline against the network's trust.
    let conf = network_trust(&net);
    for (name, bytes) in &files {
        let v = musubi_pki::verify::verify_container(bytes, &conf).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(!v.signer_cert.is_empty());
        // A changed message does not verify.
        let mut entries: Vec<(String, Vec<u8>)> =
            musubi_protocol::asic::read(bytes, &Default::default()).unwrap().entries;
        for (n, b) in entries.iter_mut() {
            if n == "message.xml" {
                b.extend_from_slice(b" ");
            }
        }
        let rebuilt: Vec<(&str, &[u8])> =
            entries.iter().filter(|(n, _)| n != "mimetype").map(|(n, b)| (n.as_str(), b.as_slice())).collect();
        let tampered = musubi_protocol::asic::write(&rebuilt).unwrap();
        assert!(musubi_pki::verify::verify_container(&tampered, &conf).is_err(), "{name} tampered");
    }
    // Another client may not export this query's containers.
    let other = url_for_other(cp).await;
    assert_eq!(other, 500);
    net.shutdown().await;
}

async fn url_for_other(cp: std::net::SocketAddr) -> u16 {
    let tcp = tokio::net::TcpStream::connect(cp).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tcp)).await.unwrap();
    tokio::spawn(conn);
    let req = http::Request::get(
        "/asic?queryId=it-export&xRoadInstance=DEMO&memberClass=GOV&memberCode=1001&subsystemCode=other",
    )
    .header("host", cp.to_string())
    .body(http_body_util::Full::new(bytes::Bytes::new()))
    .unwrap();
    sender.send_request(req).await.unwrap().status().as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn time_stamped_records_are_archived_in_linked_files_then_deleted() {
    // The transfer command copies each new archive file elsewhere, as an
    // operator's script would move it off the server.
    let moved = crate::scratch("archive-moved");
    std::fs::create_dir_all(&moved).unwrap();
    let script = moved.with_extension("sh");
    std::fs::write(&script, format!("#!/bin/sh\ncp \"$1\" '{}/'\n", moved.display())).unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let opts = Options {
        timestamp_immediately: true,
        archive_interval_secs: 1,
        keep_records_for_secs: 0,
        archive_grouping: musubi_security_server::conf::ArchiveGrouping::Subsystem,
        archive_transfer_command: Some(script.display().to_string()),
        ..Options::default()
    };
    let net = network_with("archive", 29, opts).await;
    let (_, _, service, _) = ids();
    let cp = net.consumer.client_proxy_addr;
    let archive_dir = net.facts.request_file.parent().unwrap().join("consumer").join("state").join("archive");
    let mut updates = net.consumer.archive_updates();
    // Two rounds of exchanges, each archived in its own file: the second links to the first.
    for round in 0..2 {
        for i in 0..2 {
            let reply =
                http(cp, "POST", XML, example_request(&service, &format!("it-arch-{round}-{i}")).into_bytes()).await;
            assert_eq!(reply.status, 200, "{}", reply.body);
        }
        let log = net.consumer.message_log();
        tokio::time::timeout(std::time::Duration::from_secs(30), async {
            // keep_records_for_secs = 0: archived records leave the database.
            while !log.find(&format!("it-arch-{round}-1")).await.unwrap().is_empty() {
                updates.changed().await.unwrap();
            }
        })
        .await
        .expect("records archived and deleted within 30 s");
    }
    let mut files: Vec<std::path::PathBuf> = std::fs::read_dir(&archive_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "zip"))
        .collect();
    files.sort_by_key(|p| std::fs::metadata(p).unwrap().modified().unwrap());
    assert!(files.len() >= 2, "{files:?}");
    // Grouped by subsystem: the file names say whose records they hold.
    for f in &files {
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        assert!(name.starts_with("mlog-SUBSYSTEM_DEMO_GOV_1001_care-"), "{name}");
        // … and the transfer command got every one of them, byte for byte.
        assert_eq!(std::fs::read(moved.join(&name)).unwrap(), std::fs::read(f).unwrap(), "{name}");
    }
    let conf = network_trust(&net);
    let limits = musubi_protocol::asic::Limits::default();
    let mut previous: Option<String> = None;
    let mut containers = 0;
    for file in &files {
        let bytes = std::fs::read(file).unwrap();
        let last = musubi_protocol::asic::verify_archive(&bytes, previous.as_deref(), &limits)
            .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        for (name, container) in musubi_protocol::asic::read_zip(&bytes, &limits).unwrap() {
            if name.ends_with(".asice") {
                musubi_pki::verify::verify_container(&container, &conf).unwrap_or_else(|e| panic!("{name}: {e}"));
                containers += 1;
            }
        }
        previous = Some(last);
    }
    assert!(containers >= 8, "{containers} containers for 4 exchanges");
    // A file taken out of the chain breaks it.
    let second = std::fs::read(&files[1]).unwrap();
    assert!(musubi_protocol::asic::verify_archive(&second, None, &limits).is_err());
    net.shutdown().await;
}

/// A fresh PostgreSQL database, or `None` (skipped) without a server.
pub(crate) async fn postgres_database(name: &str) -> Option<String> {
    let admin = match std::env::var("MUSUBI_TEST_POSTGRES_URL") {
        Ok(url) => url,
        Err(_) if std::env::var("MUSUBI_REQUIRE_PEERS").as_deref() == Ok("1") => {
            panic!("MUSUBI_TEST_POSTGRES_URL is not set and MUSUBI_REQUIRE_PEERS=1: PostgreSQL is required")
        }
        Err(_) => {
            println!("skipped: PostgreSQL end-to-end test (set MUSUBI_TEST_POSTGRES_URL)");
            return None;
        }
    };
    sqlx::any::install_default_drivers();
    let db = format!("musubi_it_{name}_{}", std::process::id());
    let pool = sqlx::AnyPool::connect(&admin).await.expect("PostgreSQL admin connection");
    sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {db}"))).execute(&pool).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {db}"))).execute(&pool).await.unwrap();
    pool.close().await;
    Some(format!("{}/{db}", admin.rsplit_once('/').map(|(b, _)| b).unwrap_or(&admin)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_servers_log_to_postgresql() {
    let (Some(a), Some(b)) = (postgres_database("consumer").await, postgres_database("provider").await) else { return };
    let opts = Options { database_urls: Some([a, b]), timestamp_immediately: true, ..Options::default() };
    let net = network_with("postgres", 31, opts).await;
    let (_, _, service, _) = ids();
    let reply =
        http(net.consumer.client_proxy_addr, "POST", XML, example_request(&service, "it-pg").into_bytes()).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    for handle in [&net.consumer, &net.provider] {
        assert_eq!(handle.message_log().find("it-pg").await.unwrap().len(), 2);
        assert!(handle.message_log().timestamps_of("it-pg").await.unwrap().iter().all(Option::is_some));
    }
    net.shutdown().await;
}

/// A small filesystem of its own (tmpfs), unmounted when dropped.
pub(crate) struct SmallDisk(pub(crate) std::path::PathBuf);

impl SmallDisk {
    /// Mounts one of `bytes`; none (the test skipped, or failed when
    /// `MUSUBI_REQUIRE_PEERS=1`) when this process may not mount.
    pub(crate) fn mount(name: &str, bytes: usize) -> Option<Self> {
        let dir = std::env::temp_dir().join(format!("musubi-it-disk-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={bytes}"), "tmpfs"])
            .arg(&dir)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            if std::env::var("MUSUBI_REQUIRE_PEERS").as_deref() == Ok("1") {
                panic!("cannot mount a tmpfs for the full-disk test (needs root); MUSUBI_REQUIRE_PEERS=1");
            }
            println!("skipped: cannot mount a tmpfs for the full-disk test (needs root)");
        }
        ok.then_some(Self(dir))
    }

    /// Writes a filler file until the filesystem is full.
    pub(crate) fn fill(&self) {
        use std::io::Write as _;
        let mut f = std::fs::File::create(self.0.join("filler")).unwrap();
        let chunk = vec![0xa5u8; 16 * 1024];
        while f.write_all(&chunk).is_ok() {}
        let _ = f.sync_all();
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg("-l").arg(&self.0).status();
        let _ = std::fs::remove_dir(&self.0);
    }
}
