//! Helpers shared by the security server's integration tests.

/// A fresh PostgreSQL database for `name`, or `None` (skipped) without a server.
pub(crate) async fn postgres(name: &str) -> Option<String> {
    let admin = match std::env::var("MUSUBI_TEST_POSTGRES_URL") {
        Ok(url) => url,
        Err(_) if std::env::var("MUSUBI_REQUIRE_PEERS").as_deref() == Ok("1") => {
            panic!("MUSUBI_TEST_POSTGRES_URL is not set and MUSUBI_REQUIRE_PEERS=1: PostgreSQL is required")
        }
        Err(_) => {
            println!("skipped: PostgreSQL message-log tests (set MUSUBI_TEST_POSTGRES_URL)");
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
