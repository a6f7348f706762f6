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
    let name = format!("{PREFIX}{}_{}", now_secs(), uuid::Uuid::new_v4().simple());
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut admin)
        .await
        .expect("create test database");
    let _ = admin.close().await;
    format!("{server}/{name}")
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
