//! Owns opening storage: which backend a URL names, the pool limits and
//! connection set-up of each, and running that backend's migrations.
//!
//! Both backends are reached through sqlx's `Any` driver, which only takes a
//! URL; settings the URL cannot carry (WAL, busy timeout) are applied to each
//! new SQLite connection instead.

use std::time::Duration;

use sqlx::AnyPool;
use sqlx::any::AnyPoolOptions;
use sqlx::migrate::Migrator;

use crate::store::{Error, Result};

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("migrations/postgres");

/// How long a SQLite writer waits for another's lock before failing: 5 s.
const SQLITE_BUSY_TIMEOUT: &str = "PRAGMA busy_timeout = 5000";
/// WAL lets readers go on while one writer commits; a few connections are enough.
const SQLITE_MAX_CONNECTIONS: u32 = 4;
/// Guardian writes in batches from one queue; a few connections serve it and the API.
const POSTGRES_MAX_CONNECTIONS: u32 = 5;
/// Short, so a PostgreSQL outage fails a call fast and the write queue takes over.
const POSTGRES_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(3);
/// Long enough to wait out a SQLite writer holding the lock.
const SQLITE_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

/// Which database a storage URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Backend {
    SqliteFile,
    /// One private database per connection, so its pool holds exactly one, forever.
    SqliteMemory,
    Postgres,
}

impl Backend {
    pub(super) fn of(url: &str) -> Option<Self> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Some(Self::Postgres)
        } else if url.starts_with("sqlite:") {
            let memory = url.contains(":memory:") || url.contains("mode=memory");
            Some(if memory { Self::SqliteMemory } else { Self::SqliteFile })
        } else {
            None
        }
    }

    fn migrator(self) -> &'static Migrator {
        match self {
            Self::SqliteFile | Self::SqliteMemory => &SQLITE_MIGRATIONS,
            Self::Postgres => &POSTGRES_MIGRATIONS,
        }
    }

    fn pool_options(self) -> AnyPoolOptions {
        match self {
            Self::Postgres => AnyPoolOptions::new()
                .max_connections(POSTGRES_MAX_CONNECTIONS)
                .acquire_timeout(POSTGRES_ACQUIRE_TIMEOUT),
            Self::SqliteFile => AnyPoolOptions::new()
                .max_connections(SQLITE_MAX_CONNECTIONS)
                .acquire_timeout(SQLITE_ACQUIRE_TIMEOUT)
                .after_connect(|conn, _| Box::pin(sqlite_setup(conn, true))),
            Self::SqliteMemory => AnyPoolOptions::new()
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
                .acquire_timeout(SQLITE_ACQUIRE_TIMEOUT)
                .after_connect(|conn, _| Box::pin(sqlite_setup(conn, false))),
        }
    }
}

async fn sqlite_setup(conn: &mut sqlx::AnyConnection, wal: bool) -> sqlx::Result<()> {
    sqlx::query(SQLITE_BUSY_TIMEOUT).execute(&mut *conn).await?;
    if wal {
        sqlx::query("PRAGMA journal_mode = WAL").execute(&mut *conn).await?;
    }
    Ok(())
}

/// Opens a pool on `url` and runs the backend's pending migrations.
pub(super) async fn open_pool(url: &str) -> Result<AnyPool> {
    sqlx::any::install_default_drivers();
    let backend = Backend::of(url).ok_or_else(|| Error::Unsupported(redact(url)))?;
    let pool = backend
        .pool_options()
        .connect(&connect_url(url, backend))
        .await
        .map_err(|source| Error::Open { url: redact(url), source })?;
    backend.migrator().run(&pool).await.map_err(|source| Error::Migrate { url: redact(url), source })?;
    Ok(pool)
}

/// The URL handed to sqlx: a SQLite file is created when missing unless the URL chose a mode.
fn connect_url(url: &str, backend: Backend) -> String {
    if backend != Backend::SqliteFile || url.contains("mode=") {
        return url.to_owned();
    }
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}mode=rwc")
}

/// The URL without its password, for messages and logs (one rule for the whole crate).
pub(super) fn redact(url: &str) -> String {
    crate::config::redact_url(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_their_backend() {
        let cases = [
            ("relative file", "sqlite://guardian.db", Some(Backend::SqliteFile)),
            ("absolute file", "sqlite:///var/lib/guardian/g.db", Some(Backend::SqliteFile)),
            ("memory", "sqlite::memory:", Some(Backend::SqliteMemory)),
            ("memory mode", "sqlite://x?mode=memory", Some(Backend::SqliteMemory)),
            ("postgres", "postgres://u@db/guardian", Some(Backend::Postgres)),
            ("postgresql", "postgresql://u@db/guardian", Some(Backend::Postgres)),
            ("mysql", "mysql://u@db/guardian", None),
            ("no scheme", "guardian.db", None),
        ];
        for (name, url, want) in cases {
            assert_eq!(Backend::of(url), want, "{name}");
        }
    }

    #[test]
    fn a_sqlite_file_is_created_when_missing_unless_a_mode_is_given() {
        assert_eq!(connect_url("sqlite://guardian.db", Backend::SqliteFile), "sqlite://guardian.db?mode=rwc");
        assert_eq!(
            connect_url("sqlite://g.db?cache=shared", Backend::SqliteFile),
            "sqlite://g.db?cache=shared&mode=rwc"
        );
        assert_eq!(connect_url("sqlite://g.db?mode=ro", Backend::SqliteFile), "sqlite://g.db?mode=ro");
        assert_eq!(connect_url("sqlite::memory:", Backend::SqliteMemory), "sqlite::memory:");
        assert_eq!(connect_url("postgres://db/g", Backend::Postgres), "postgres://db/g");
    }

    #[test]
    fn passwords_never_reach_messages() {
        assert_eq!(redact("postgres://guardian:s3cret@db:5432/g"), "postgres://guardian:***@db:5432/g");
        assert_eq!(redact("postgres://guardian@db/g"), "postgres://guardian@db/g");
        assert_eq!(redact("sqlite://guardian.db"), "sqlite://guardian.db");
    }

    #[tokio::test]
    async fn an_unknown_scheme_is_refused_by_name() {
        let err = open_pool("mysql://root:pw@db/g").await.err().map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some("unsupported storage URL \"mysql://root:***@db/g\": use sqlite://PATH or postgres://…")
        );
    }
}
