//! Generation → download → verification → application: a central server on
//! loopback and a security server's configuration client, through a global
//! group change and a signing-key rotation.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use musubi_central_server::CentralConf;
use musubi_protocol::ClientId;
use musubi_protocol::globalconf;
use musubi_protocol::sharedparams;
use musubi_security_server::confclient;
use musubi_security_server::confdir::{self, Params};

/// A fresh PostgreSQL database, or `None` (skipped) without a server.
async fn postgres(name: &str) -> Option<String> {
    let admin = match std::env::var("MUSUBI_TEST_POSTGRES_URL") {
        Ok(url) => url,
        Err(_) if std::env::var("MUSUBI_REQUIRE_PEERS").as_deref() == Ok("1") => {
            panic!("MUSUBI_TEST_POSTGRES_URL is not set and MUSUBI_REQUIRE_PEERS=1: PostgreSQL is required")
        }
        Err(_) => {
            println!("skipped: the central registry on PostgreSQL (set MUSUBI_TEST_POSTGRES_URL)");
            return None;
        }
    };
    sqlx::any::install_default_drivers();
    let db = format!("musubi_{name}_{}", std::process::id());
    let pool = sqlx::AnyPool::connect(&admin).await.expect("PostgreSQL admin connection");
    sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {db}"))).execute(&pool).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {db}"))).execute(&pool).await.unwrap();
    pool.close().await;
    let base = admin.rsplit_once('/').map(|(b, _)| b).unwrap_or(&admin);
    Some(format!("{base}/{db}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_registry_on_sqlite_drives_the_configuration() {
    scenario("sqlite", 2, None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_registry_on_postgresql_drives_the_configuration() {
    if let Some(url) = postgres("central").await {
        scenario("postgres", 3, Some(url)).await;
    }
}

/// Security servers follow the central server's configuration through
/// changes and a key rotation.
async fn scenario(name: &str, host: u8, database_url: Option<String>) {
    let state = std::env::temp_dir().join(format!("musubi-cs-it-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&state);
    let addr = format!("127.0.42.{host}:18081");
    let conf = CentralConf {
        instance: "DEMO".into(),
        state_dir: state.join("cs"),
        database_url,
        conf_listen: addr.parse().unwrap(),
        public_address: addr.clone(),
        generation_interval_secs: 3600,
        expire_after_secs: 600,
    };
    let cs = musubi_central_server::start(conf).await.unwrap();
    let reg = &cs.registry;
    let owner = ClientId::member("DEMO", "COM", "2002").unwrap();
    let sub = ClientId::subsystem("DEMO", "COM", "2002", "home").unwrap();
    reg.add_member_class("COM", "Companies").await.unwrap();
    reg.add_member(&owner, "Demo Home Cloud").await.unwrap();
    reg.add_subsystem(&sub).await.unwrap();
    assert!(
        reg.add_subsystem(&ClientId::subsystem("DEMO", "COM", "9999", "x").unwrap()).await.is_err(),
        "no such member"
    );
    reg.add_server(&owner, "ss-provider", "127.0.42.3", "abcd").await.unwrap();
    reg.add_server_client(&owner, "ss-provider", &sub).await.unwrap();
    reg.add_tsa("Demo TSA", "http://127.0.42.5:8899/", &[0x30, 0x03, 0x02, 0x01, 0x01]).await.unwrap();
    reg.set_setting("ocspFreshnessSeconds", "3600").await.unwrap();
    cs.generate().await.unwrap();

    // A new security server imports the anchor and downloads.
    let anchor = globalconf::parse_anchor(cs.anchor().await.unwrap().as_bytes()).unwrap();
    assert_eq!(anchor.instance, "DEMO");
    let root = state.join("ss/globalconf");
    let t = Duration::from_secs(5);
    let follow = || async {
        let dl = confclient::fetch(&cs.directory_url(), t).await?;
        confclient::check(&anchor, &confclient::in_force(&root), &dl)?;
        confclient::store(&root, "DEMO", &dl)?;
        Ok::<_, confclient::ConfClientError>(dl)
    };
    let dl = follow().await.unwrap();
    let lifetime = dl.directory.expire_date - cs.generated_at().unwrap();
    assert!((599..=601).contains(&lifetime.whole_seconds()), "expires 600 s after generation: {lifetime}");
    let shared = || {
        let dir = confdir::read(&confclient::in_force_dir(&root).unwrap()).unwrap();
        sharedparams::read(&std::fs::read(&dir.find("DEMO", Params::Shared).unwrap().path).unwrap()).unwrap()
    };
    let p = shared();
    assert_eq!(p.directory.members[0].id, owner);
    assert_eq!(p.directory.members[0].subsystems, ["home"]);
    assert_eq!(p.directory.servers[0].clients, std::slice::from_ref(&sub));
    assert!(p.directory.in_group("security-server-owners", &owner), "the automatic owners group");
    assert_eq!(p.ocsp_freshness_seconds, Some(3600));
    assert_eq!(p.tsas[0].url, "http://127.0.42.5:8899/");

    // A global group change reaches the security server with the next generation.
    let consumer = ClientId::subsystem("DEMO", "GOV", "1001", "care").unwrap();
    reg.add_group_member("care-providers", "Care providers", &consumer).await.unwrap();
    cs.generate().await.unwrap();
    follow().await.unwrap();
    assert!(shared().directory.in_group("care-providers", &consumer));
    reg.remove_group_member("care-providers", &consumer).await.unwrap();
    cs.generate().await.unwrap();
    follow().await.unwrap();
    assert!(!shared().directory.in_group("care-providers", &consumer));

    // Rotation: the new key is announced first (still signed by the old one)…
    let new = reg.new_signing_key().await.unwrap();
    cs.generate().await.unwrap();
    follow().await.unwrap();
    assert!(confclient::in_force(&root).announced.contains(&new.cert));
    // …then signs; the server follows although its anchor only knows the old key.
    reg.activate_signing_key(new.id).await.unwrap();
    cs.generate().await.unwrap();
    let dl = follow().await.unwrap();
    assert_eq!(dl.directory.verify(std::slice::from_ref(&new.cert)), Ok(0));
    assert!(dl.directory.verify(&anchor.certs()).is_err(), "the anchor's key no longer signs");

    // A server that skipped the announcement cannot follow: fail closed.
    let fresh_root = state.join("ss2/globalconf");
    let dl = confclient::fetch(&cs.directory_url(), t).await.unwrap();
    let e = confclient::check(&anchor, &confclient::in_force(&fresh_root), &dl).unwrap_err();
    assert!(e.to_string().contains("no trusted verification certificate"), "{e}");

    // The database goes away: generation fails and the last good
    // configuration stays published, whole.
    let before = confclient::fetch(&cs.directory_url(), t).await.unwrap();
    reg.close().await;
    assert!(cs.generate().await.is_err());
    let after = confclient::fetch(&cs.directory_url(), t).await.unwrap();
    assert_eq!(before.directory, after.directory);
    assert_eq!(after.directory.verify(std::slice::from_ref(&new.cert)), Ok(0));
    cs.shutdown();
    let _ = std::fs::remove_dir_all(&state);
}
