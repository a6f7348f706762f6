//! The database: one sqlx pool over SQLite (the embedded default) or PostgreSQL (to scale).
//!
//! Every query in Weft is written once, in portable SQL with `$n` placeholders, and runs on both
//! backends through sqlx's `Any` driver. Schema changes are embedded migrations in
//! `host/migrations/`. Domain modules own their queries; this module owns only the connection.

pub(crate) mod recent;
use anyhow::Context as _;
use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::{AnyPool, Executor};
use std::path::Path;
use std::time::Duration;

/// Which database engine backs the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// An SQLite file (the default).
    Sqlite,
    /// A PostgreSQL server (to share one database between hosts).
    Postgres,
}

/// A connection pool plus the backend it talks to.
#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
}

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

impl Store {
    /// Connects to `url` (`sqlite://...` or `postgres://...`) and applies pending migrations.
    pub async fn open(url: &str) -> anyhow::Result<Self> {
        install_default_drivers();
        let backend = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else {
            anyhow::bail!(
                "unsupported database URL '{url}': use sqlite://PATH or postgres://USER@HOST/DB"
            );
        };
        if backend == Backend::Sqlite {
            ensure_sqlite_parent(url)?;
        }
        let pool = AnyPoolOptions::new()
            // SQLite allows one writer at a time; a small pool avoids busy waits between writers.
            .max_connections(if backend == Backend::Sqlite { 4 } else { 16 })
            .acquire_timeout(Duration::from_secs(10))
            // A pinged connection costs a round trip per query; an embedded SQLite connection
            // cannot go stale the way a server's can.
            .test_before_acquire(backend == Backend::Postgres)
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // LIKE case-sensitive as on PostgreSQL (and as MLflow sets it: its
                        // searches' LIKE is case-sensitive, ILIKE is not).
                        conn.execute(
                            "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
                             PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000; \
                             PRAGMA case_sensitive_like = ON;",
                        )
                        .await?;
                    }
                    Ok(())
                })
            })
            .connect(url)
            .await
            .with_context(|| format!("cannot open the database at {}", redact(url)))?;
        MIGRATOR
            .run(&pool)
            .await
            .context("cannot apply database migrations")?;
        Ok(Self { pool, backend })
    }

    /// The connection pool, for the queries of each domain's `records.rs`.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Which database this is (some statements differ).
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Answers whether the database responds, for health checks.
    pub async fn ping(&self) -> bool {
        sqlx::query("SELECT 1").execute(&self.pool).await.is_ok()
    }

    /// Closes every connection, waiting for in-flight queries.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Gives a unit-variant enum stored as text its `as_str` and `parse` (an unknown stored word is
/// an internal error: the store holds something this version did not write).
macro_rules! text_enum {
    ($ty:ident { $($variant:ident = $text:literal),* $(,)? }) => {
        impl $ty {
            /// The word stored for it.
            pub fn as_str(self) -> &'static str {
                match self { $($ty::$variant => $text),* }
            }

            pub(crate) fn parse(text: &str) -> $crate::error::Result<Self> {
                match text {
                    $($text => Ok($ty::$variant),)*
                    other => Err($crate::error::Error::internal(format!("unknown {} '{other}' in the store", stringify!($ty)))),
                }
            }
        }
    };
}
pub(crate) use text_enum;

/// The current time in Unix milliseconds, the unit of every stored timestamp.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// A stored Unix-millisecond timestamp as a UTC time.
pub fn time(ms: i64) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

/// A new sortable identifier (UUIDv7) as text.
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// Creates the folder of an SQLite file so a fresh data folder works.
fn ensure_sqlite_parent(url: &str) -> anyhow::Result<()> {
    let path = url
        .trim_start_matches("sqlite://")
        .trim_start_matches("sqlite:");
    let path = path.split('?').next().unwrap_or_default();
    if path.is_empty() || path == ":memory:" {
        return Ok(());
    }
    if let Some(parent) = Path::new(path)
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
    {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create the folder {}", parent.display()))?;
    }
    Ok(())
}

/// The URL without its password, for messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{}{}@{}", &url[..scheme + 3], user, &url[at + 1..])
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_password() {
        assert_eq!(
            redact("postgres://weft:secret@db:5432/weft"),
            "postgres://weft@db:5432/weft"
        );
        assert_eq!(
            redact("sqlite://weft-data/weft.db"),
            "sqlite://weft-data/weft.db"
        );
    }

    #[tokio::test]
    async fn opens_fresh_sqlite_and_migrates_twice() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/nested/weft.db?mode=rwc", dir.path().display());
        let store = Store::open(&url).await.unwrap();
        assert!(store.ping().await);
        store.close().await;
        // Reopening finds the migrations applied and changes nothing.
        let store = Store::open(&url).await.unwrap();
        let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM users")
            .fetch_one(store.pool())
            .await
            .unwrap();
        assert_eq!(n, 0);
    }

    #[tokio::test]
    async fn rejects_unknown_scheme() {
        let err = Store::open("mysql://x").await.err().unwrap();
        assert!(err.to_string().contains("unsupported database URL"));
    }
}
