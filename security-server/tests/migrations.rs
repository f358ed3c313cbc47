//! Upgrades: a message log written at the previous release's schema is
//! migrated when the new server opens it, and what it held reads back the same
//! (SQLite, and PostgreSQL when `MUSUBI_TEST_POSTGRES_URL` names a server).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use musubi_security_server::messagelog::MessageLog;

mod common;

/// Migrations the previous release shipped: its schema is the state after
/// them. No release is tagged yet, so the schema one migration back stands
/// for it; tagging a release sets this to its last migration.
const PREVIOUS_RELEASE_MIGRATIONS: usize = 8;

fn migrations() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations")
}

#[tokio::test]
async fn a_log_at_the_previous_releases_schema_is_migrated_at_start_and_reads_back() {
    sqlx::any::install_default_drivers();
    let dir = std::env::temp_dir().join(format!("musubi-migrations-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let urls = common::backends("migrations", &dir, "log.sqlite").await;
    for (dialect, url) in urls {
        // The previous release's server: its schema, and records it wrote.
        let pool = common::at_previous_release(&url, &migrations(), dialect, PREVIOUS_RELEASE_MIGRATIONS, &dir).await;
        for (i, direction) in ["request", "response"].into_iter().enumerate() {
            let message = format!("<Envelope>previous release {direction}</Envelope>");
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO message_log (query_id, client, service, side, direction, created_at) \
                 VALUES ($1, $2, $3, 'client', $4, $5) RETURNING id",
            )
            .bind("prev-1")
            .bind("SUBSYSTEM:DEMO/GOV/1001/care")
            .bind("SERVICE:DEMO/COM/2002/home/getRoomTemperature/v1")
            .bind(direction)
            .bind(format!("2026-11-0{}T00:00:00Z", i + 1))
            .fetch_one(&pool)
            .await
            .unwrap();
            sqlx::query("INSERT INTO message_log_body (record_id, signature, message) VALUES ($1, $2, $3)")
                .bind(id)
                .bind(b"<Signature/>".to_vec())
                .bind(message.into_bytes())
                .execute(&pool)
                .await
                .unwrap();
        }
        pool.close().await;

        // The new release opens it: the migrations since run, the records read back.
        let log = MessageLog::connect(&url).await.unwrap_or_else(|e| panic!("{dialect}: {e}"));
        let found = log.find("prev-1").await.unwrap();
        let found: Vec<(&str, String)> =
            found.iter().map(|(d, m)| (d.as_str(), String::from_utf8_lossy(m).into_owned())).collect();
        assert_eq!(
            found,
            [
                ("request", "<Envelope>previous release request</Envelope>".to_string()),
                ("response", "<Envelope>previous release response</Envelope>".to_string())
            ],
            "{dialect}"
        );
        assert_eq!(
            common::applied(&url).await,
            common::shipped(&migrations(), dialect),
            "{dialect}: every migration applied once"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
