//! Database backends for tests: a fresh SQLite file or a fresh PostgreSQL database per test.

use sqlx::Connection;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

/// Which database a test server uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// A database URL for a brand-new, empty database.
    pub async fn fresh_database(self, data_dir: &Path) -> String {
        match self {
            Backend::Sqlite => format!("sqlite://{}?mode=rwc", data_dir.join("weft.db").display()),
            Backend::Postgres => fresh_postgres().await,
        }
    }
}

/// The server URL of the test cluster, e.g. `postgres://postgres@127.0.0.1:55432`.
fn postgres_server() -> String {
    std::env::var("WEFT_TEST_POSTGRES_URL").unwrap_or_else(|_| {
        panic!(
            "WEFT_TEST_POSTGRES_URL is not set: run the tests with tests/run.sh, which starts a \
             PostgreSQL cluster, or point it at one (postgres://USER@HOST:PORT)"
        )
    })
}

/// Test databases are named `weft_test_<unix seconds>_<random>`: the age tells leftovers apart.
const PREFIX: &str = "weft_test_";
/// Databases older than this are left over from an earlier run (a test never lives this long).
const LEFTOVER_SECS: u64 = 3600;

async fn fresh_postgres() -> String {
    let server = postgres_server();
    let server = server.trim_end_matches('/');
    let mut admin = sqlx::PgConnection::connect(&format!("{server}/postgres"))
        .await
        .unwrap_or_else(|e| panic!("cannot reach PostgreSQL at {server}: {e}"));
    static SWEPT: AtomicBool = AtomicBool::new(false);
    if !SWEPT.swap(true, Ordering::SeqCst) {
        drop_leftovers(&mut admin).await;
    }
    let name = fresh_name();
    let template = template(server).await;
    // Copied from the migrated template; created empty (and migrated by the server) when the
    // template cannot be had or copied, e.g. another run with other migrations dropped it.
    let copied = match &template {
        Some(template) => sqlx::query(&format!("CREATE DATABASE {name} TEMPLATE {template}"))
            .execute(&mut admin)
            .await
            .is_ok(),
        None => false,
    };
    if !copied {
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .await
            .expect("create test database");
    }
    let _ = admin.close().await;
    format!("{server}/{name}")
}

fn fresh_name() -> String {
    format!("{PREFIX}{}_{}", now_secs(), uuid::Uuid::new_v4().simple())
}

/// Test databases are copies of one database migrated once per test run (migrating each from
/// scratch cost every PostgreSQL test about a second), named for the migrations it holds.
const TEMPLATE_PREFIX: &str = "weft_template_";

/// The name of the migrated template, made by the first test that asks.
async fn template(server: &str) -> Option<String> {
    static TEMPLATE: tokio::sync::OnceCell<Option<String>> = tokio::sync::OnceCell::const_new();
    TEMPLATE.get_or_init(|| make_template(server)).await.clone()
}

async fn make_template(server: &str) -> Option<String> {
    let name = format!("{TEMPLATE_PREFIX}{}", migrations_hash());
    let mut admin = sqlx::PgConnection::connect(&format!("{server}/postgres"))
        .await
        .ok()?;
    let exists: Option<i32> = sqlx::query_scalar("SELECT 1 FROM pg_database WHERE datname = $1")
        .bind(&name)
        .fetch_optional(&mut admin)
        .await
        .ok()?;
    if exists.is_none() {
        // Migrated under a test database's name (swept like one if this run dies), then renamed:
        // runs that race each make one and all but the first rename drop theirs.
        let scratch = fresh_name();
        sqlx::query(&format!("CREATE DATABASE {scratch}"))
            .execute(&mut admin)
            .await
            .ok()?;
        let store = weft::store::Store::open(&format!("{server}/{scratch}"))
            .await
            .expect("migrate the template database");
        store.close().await;
        let rename = format!("ALTER DATABASE {scratch} RENAME TO {name}");
        let mut renamed = false;
        for _ in 0..5 {
            // A closed pool can leave a session behind, and a rename waits 5 s for each.
            let _ = sqlx::query(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                 WHERE datname = $1 AND pid <> pg_backend_pid()",
            )
            .bind(&scratch)
            .execute(&mut admin)
            .await;
            if sqlx::query(&rename).execute(&mut admin).await.is_ok() {
                renamed = true;
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        if !renamed {
            let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {scratch}"))
                .execute(&mut admin)
                .await;
        }
    }
    // Templates of other migrations (older checkouts) go; one in use stays.
    let others: Vec<String> = sqlx::query_scalar(
        "SELECT datname FROM pg_database WHERE datname LIKE 'weft\\_template\\_%'",
    )
    .fetch_all(&mut admin)
    .await
    .unwrap_or_default();
    for other in others.iter().filter(|other| **other != name) {
        let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS \"{other}\""))
            .execute(&mut admin)
            .await;
    }
    let _ = admin.close().await;
    Some(name)
}

/// A hash of the migrations this build applies (host/migrations, names and contents).
fn migrations_hash() -> String {
    use sha2::Digest;
    let dir = super::fixtures::root().join("host").join("migrations");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .collect();
    files.sort();
    let mut hasher = sha2::Sha256::new();
    for file in files {
        hasher.update(file.file_name().unwrap_or_default().as_encoded_bytes());
        hasher.update(std::fs::read(&file).unwrap_or_default());
    }
    hex::encode(&hasher.finalize()[..8])
}

/// Drops the test databases earlier runs left (a test's database outlives it: dropping needs a
/// connection the test's end cannot wait for), so runs on one machine do not fill its disk.
/// One still in use refuses to be dropped, which is ignored.
async fn drop_leftovers(admin: &mut sqlx::PgConnection) {
    let names: Vec<String> =
        sqlx::query_scalar("SELECT datname FROM pg_database WHERE datname LIKE 'weft\\_test\\_%'")
            .fetch_all(&mut *admin)
            .await
            .unwrap_or_default();
    let now = now_secs();
    for name in names {
        let born = name[PREFIX.len()..]
            .split_once('_')
            .and_then(|(secs, _)| secs.parse::<u64>().ok());
        if born.is_none_or(|born| now.saturating_sub(born) > LEFTOVER_SECS) {
            let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\""))
                .execute(&mut *admin)
                .await;
        }
    }
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
