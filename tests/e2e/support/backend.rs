//! Database backends for tests: a fresh SQLite file or a fresh PostgreSQL database per test.

use sqlx::Connection;
use std::path::Path;

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

async fn fresh_postgres() -> String {
    let server = postgres_server();
    let server = server.trim_end_matches('/');
    let mut admin = sqlx::PgConnection::connect(&format!("{server}/postgres"))
        .await
        .unwrap_or_else(|e| panic!("cannot reach PostgreSQL at {server}: {e}"));
    let name = format!("weft_test_{}", uuid::Uuid::new_v4().simple());
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut admin)
        .await
        .expect("create test database");
    let _ = admin.close().await;
    format!("{server}/{name}")
}
