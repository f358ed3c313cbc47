//! Helpers shared by the integration tests of the security server and the
//! central server (which includes this file by its path).

#![allow(dead_code)]

/// A fresh PostgreSQL database for `name`, or `None` (skipped) without a server.
pub(crate) async fn postgres(name: &str) -> Option<String> {
    let admin = match std::env::var("MUSUBI_TEST_POSTGRES_URL") {
        Ok(url) => url,
        Err(_) if std::env::var("MUSUBI_REQUIRE_PEERS").as_deref() == Ok("1") => {
            panic!("MUSUBI_TEST_POSTGRES_URL is not set and MUSUBI_REQUIRE_PEERS=1: PostgreSQL is required")
        }
        Err(_) => {
            println!("skipped: the PostgreSQL half of this test (set MUSUBI_TEST_POSTGRES_URL)");
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

/// The migrations of `dialect` in `migrations_dir` that the previous release
/// shipped (the first `count`), copied to their own folder under `dir`: what
/// `sqlx::migrate::Migrator::new` runs to make that release's schema.
pub(crate) fn previous_release(
    migrations_dir: &std::path::Path,
    dialect: &str,
    count: usize,
    dir: &std::path::Path,
) -> std::path::PathBuf {
    let mut files: Vec<_> =
        std::fs::read_dir(migrations_dir.join(dialect)).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    assert!(files.len() > count, "no migration since the previous release to test");
    let out = dir.join(format!("previous-{dialect}"));
    std::fs::create_dir_all(&out).unwrap();
    for f in &files[..count] {
        std::fs::copy(f, out.join(f.file_name().unwrap())).unwrap();
    }
    out
}

/// How many migrations of `dialect` `migrations_dir` ships.
pub(crate) fn shipped(migrations_dir: &std::path::Path, dialect: &str) -> usize {
    std::fs::read_dir(migrations_dir.join(dialect)).unwrap().count()
}

/// How many migrations the database at `url` has applied.
pub(crate) async fn applied(url: &str) -> usize {
    let pool = sqlx::AnyPool::connect(url).await.unwrap();
    let n: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations WHERE success").fetch_one(&pool).await.unwrap();
    pool.close().await;
    n as usize
}

/// The databases a test runs against: SQLite (the file `file` in `dir`), and
/// PostgreSQL (a fresh database named for `name`) when a server is given.
pub(crate) async fn backends(name: &str, dir: &std::path::Path, file: &str) -> Vec<(&'static str, String)> {
    let mut urls = vec![("sqlite", format!("sqlite://{}?mode=rwc", dir.join(file).display()))];
    urls.extend(postgres(name).await.map(|u| ("postgres", u)));
    urls
}

/// A database at `url` migrated to the previous release's schema (the first
/// `count` migrations of `dialect` in `migrations_dir`), as that release left it.
pub(crate) async fn at_previous_release(
    url: &str,
    migrations_dir: &std::path::Path,
    dialect: &str,
    count: usize,
    dir: &std::path::Path,
) -> sqlx::AnyPool {
    let pool = sqlx::AnyPool::connect(url).await.unwrap();
    let previous = previous_release(migrations_dir, dialect, count, dir);
    sqlx::migrate::Migrator::new(previous).await.unwrap().run(&pool).await.unwrap();
    pool
}
