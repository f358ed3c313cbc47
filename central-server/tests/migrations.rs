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

fn previous_release(dialect: &str, dir: &Path) -> std::path::PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations").join(dialect);
    let mut files: Vec<_> = std::fs::read_dir(&src).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    assert!(files.len() > PREVIOUS_RELEASE_MIGRATIONS, "no migration since the previous release to test");
    let out = dir.join(format!("previous-{dialect}"));
    std::fs::create_dir_all(&out).unwrap();
    for f in &files[..PREVIOUS_RELEASE_MIGRATIONS] {
        std::fs::copy(f, out.join(f.file_name().unwrap())).unwrap();
    }
    out
}

#[tokio::test]
async fn a_registry_at_the_previous_releases_schema_is_migrated_at_start_and_keeps_everything() {
    sqlx::any::install_default_drivers();
    let dir = std::env::temp_dir().join(format!("musubi-cs-migrations-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut urls = vec![("sqlite", format!("sqlite://{}?mode=rwc", dir.join("registry.sqlite").display()))];
    urls.extend(common::postgres("cs_migrations").await.map(|u| ("postgres", u)));
    for (dialect, url) in urls {
        let pool = sqlx::AnyPool::connect(&url).await.unwrap();
        sqlx::migrate::Migrator::new(previous_release(dialect, &dir)).await.unwrap().run(&pool).await.unwrap();
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
        let pool = sqlx::AnyPool::connect(&url).await.unwrap();
        let applied: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations WHERE success").fetch_one(&pool).await.unwrap();
        let shipped =
            std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations").join(dialect)).unwrap().count();
        assert_eq!(applied as usize, shipped, "{dialect}: every migration applied once");
        pool.close().await;
    }
    let _ = std::fs::remove_dir_all(&dir);
}
