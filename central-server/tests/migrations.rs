//! Upgrades: a registry at the previous release's schema is migrated when the
//! new central server opens it, and its members and servers are all there
//! (SQLite, and PostgreSQL when `MUSUBI_TEST_POSTGRES_URL` names a server).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

#[path = "../../security-server/tests/common/mod.rs"]
mod common;

/// Migrations the previous release shipped. No release is tagged yet, so the
/// schema one migration back stands for it; tagging a release sets this to
/// its last migration.
const PREVIOUS_RELEASE_MIGRATIONS: usize = 2;

fn migrations() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations")
}

#[tokio::test]
async fn a_registry_at_the_previous_releases_schema_is_migrated_at_start_and_keeps_everything() {
    sqlx::any::install_default_drivers();
    let dir = std::env::temp_dir().join(format!("musubi-cs-migrations-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let urls = common::backends("cs_migrations", &dir, "registry.sqlite").await;
    for (dialect, url) in urls {
        let pool = common::at_previous_release(&url, &migrations(), dialect, PREVIOUS_RELEASE_MIGRATIONS, &dir).await;
        for sql in [
            "INSERT INTO member_classes (code, description) VALUES ('GOV', 'Government')",
            "INSERT INTO members (class, code, name) VALUES ('GOV', '1001', 'Care City')",
            "INSERT INTO subsystems (class, code, subsystem) VALUES ('GOV', '1001', 'care')",
            "INSERT INTO servers (owner_class, owner_code, server_code, address) VALUES ('GOV', '1001', 'ss1', 'ss1.example.jp')",
        ] {
            sqlx::query(sql).execute(&pool).await.unwrap();
        }
        pool.close().await;

        let keys = dir.join(format!("keys-{dialect}"));
        let registry = musubi_central_server::registry::Registry::connect(&url, "DEMO", &keys)
            .await
            .unwrap_or_else(|e| panic!("{dialect}: {e}"));
        let (params, _) = registry.snapshot("cs.example.jp").await.unwrap();
        let directory = format!("{:?}", params.directory);
        for expected in ["Care City", "care", "ss1.example.jp", "Government"] {
            assert!(directory.contains(expected), "{dialect}: {expected} lost in the upgrade: {directory}");
        }
        assert_eq!(
            common::applied(&url).await,
            common::shipped(&migrations(), dialect),
            "{dialect}: every migration applied once"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
